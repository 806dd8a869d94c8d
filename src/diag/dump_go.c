/* SPDX-License-Identifier: MIT */
/*
 * dump_go.c — the dumps in the formats of Go's goroutine profile, which
 * Go's tools read (docs/FORMATS.md):
 *
 *   debug=0  gzipped pprof profile.proto (encoded by pprof.c), one sample
 *            per distinct stack and label set
 *   debug=1  Go's aggregated goroutine profile text: `N @ pc...`, then
 *            `# labels: {...}` and a `#\tpc\tfunc+0xoff\tfile:line` line
 *            per frame
 *   debug=2  Go's runtime.Stack(all) text: `goroutine N [reason, M
 *            minutes]:`, two lines a frame, `created by`
 *
 * Go's debug=2 hides the runtime's frames; the others keep the leash_*
 * call that blocked on top (dump.c, "Frames").
 */
#include "dump.h"
#include "quote.h"

#include <inttypes.h>

/* ------------------------------------------------------ Go: debug=2 */

static void print_created_by(FILE *out, const dgor *d) {
    if (!d->spawn_pc || !d->spawn_file)
        return; /* leash_run's main coroutine: Go prints none for main */
    dsym s;
    sym_lookup(d->spawn_pc, true, &s);
    /* Go's form always names a goroutine; 0 is a plain thread. */
    fprintf(out, "created by %s in goroutine %" PRId64 "\n", s.func,
            d->parent_id);
    const char *file = d->spawn_file ? d->spawn_file : s.file;
    int line = d->spawn_file ? d->spawn_line : s.line;
    fprintf(out, "\t%s:%d +0x%" PRIxPTR "\n", file ? file : "?", line,
            s.offset);
}

/* Go 1.26 marks a goroutine its leak detector found in its header, after
 * the wait reason: `goroutine 7 [chan send (leaked)]:`; the leak
 * profile's does too (marked: the goroutineleak profile). */
void diag_print_go_stacks(FILE *out, const dsnap *s, const bool *sel,
                          bool marked) {
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (sel && !sel[i])
            continue;
        fprintf(out, "goroutine %" PRId64 " [%s", d->id, diag_state_str(d));
        if (marked && d->leak)
            fprintf(out, " (leaked)");
        if (d->state == G_WAITING && d->wait_ns >= INT64_C(60000000000))
            fprintf(out, ", %" PRId64 " minutes", d->wait_ns / INT64_C(60000000000));
        fprintf(out, "]:\n");
        int first, n = diag_visible_frames(d, true, &first);
        for (int k = 0; k < n; k++)
            diag_print_frame(out, d->pcs[first + k], true);
        print_created_by(out, d);
        fputc('\n', out);
    }
}

/* ------------------------------------------------------ Go: debug=1 */

typedef struct {
    const uintptr_t *pcs;
    int n;
    int64_t count;
    const dgor *d; /* a representative, for its labels */
} stackgroup;

static bool same_labels(const dgor *a, const dgor *b) {
    if (a->nlabels != b->nlabels)
        return false;
    for (int i = 0; i < a->nlabels; i++) {
        int k = 0;
        while (k < b->nlabels && b->label_key[k] != a->label_key[i])
            k++;
        if (k == b->nlabels || b->label_val[k] != a->label_val[i])
            return false; /* interned: pointers compare */
    }
    return true;
}

static int group_stacks(const dsnap *s, const bool *sel, stackgroup **out) {
    stackgroup *gs = lmalloc(sizeof *gs * (size_t)(s->n ? s->n : 1));
    if (!gs)
        return LEASH_ENOMEM;
    int ng = 0;
    for (int i = 0; i < s->n; i++) {
        const dgor *d = &s->g[i];
        if (sel && !sel[i])
            continue;
        int first, n = diag_visible_frames(d, false, &first);
        const uintptr_t *pcs = d->pcs + first;
        int k = 0;
        for (; k < ng; k++)
            if (gs[k].n == n &&
                !memcmp(gs[k].pcs, pcs, sizeof *pcs * (size_t)n) &&
                same_labels(gs[k].d, d))
                break;
        if (k == ng)
            gs[ng++] = (stackgroup){pcs, n, 0, d};
        gs[k].count++;
    }
    /* Most frequent first, as Go prints them. */
    for (int i = 1; i < ng; i++) {
        stackgroup x = gs[i];
        int j = i - 1;
        while (j >= 0 && gs[j].count < x.count) {
            gs[j + 1] = gs[j];
            j--;
        }
        gs[j + 1] = x;
    }
    *out = gs;
    return ng;
}

int diag_print_go_profile(FILE *out, const dsnap *s, const bool *sel,
                          const char *name) {
    stackgroup *gs;
    int ng = group_stacks(s, sel, &gs);
    if (ng < 0)
        return ng;
    int64_t total = 0;
    for (int i = 0; i < ng; i++)
        total += gs[i].count;
    fprintf(out, "%s profile: total %" PRId64 "\n", name, total);
    for (int i = 0; i < ng; i++) {
        fprintf(out, "%" PRId64 " @", gs[i].count);
        for (int k = 0; k < gs[i].n; k++)
            fprintf(out, " 0x%" PRIxPTR, gs[i].pcs[k]);
        fputc('\n', out);
        const dgor *d = gs[i].d;
        if (d->nlabels) { /* sorted by key, as Go prints them */
            int ord[LEASH_MAX_LABELS];
            for (int k = 0; k < d->nlabels; k++) {
                int j = k;
                while (j > 0 && strcmp(d->label_key[ord[j - 1]],
                                       d->label_key[k]) > 0) {
                    ord[j] = ord[j - 1];
                    j--;
                }
                ord[j] = k;
            }
            fprintf(out, "# labels: {"); /* Go: %q:%q */
            for (int k = 0; k < d->nlabels; k++) {
                fputs(k ? ", " : "", out);
                quote_go(out, d->label_key[ord[k]]);
                fputc(':', out);
                quote_go(out, d->label_val[ord[k]]);
            }
            fprintf(out, "}\n");
        }
        for (int k = 0; k < gs[i].n; k++) {
            dsym sy;
            diag_frame_sym(gs[i].pcs[k], &sy);
            for (int v = 0; v < dsym_levels(&sy); v++) { /* Go: a line
                                                          * per inlined level */
                dpos p = dsym_level(&sy, v);
                fprintf(out, "#\t0x%" PRIxPTR "\t%s+0x%" PRIxPTR "\t%s:%d\n",
                        gs[i].pcs[k] - 1, p.func, sy.offset,
                        p.file ? p.file : "?", p.line);
            }
        }
        fputc('\n', out);
    }
    lfree(gs);
    return 0;
}

/* ------------------------------------------------------ Go: debug=0 */

int diag_write_go_pprof(FILE *out, const dsnap *s, const bool *sel,
                        const char *profile) {
    stackgroup *gs;
    int ng = group_stacks(s, sel, &gs);
    if (ng < 0)
        return ng;
    dsample *samples = lcalloc((size_t)(ng ? ng : 1), sizeof *samples);
    if (!samples) {
        lfree(gs);
        return LEASH_ENOMEM;
    }
    for (int i = 0; i < ng; i++)
        samples[i] = (dsample){.pcs = gs[i].pcs, .npcs = gs[i].n,
                               .count = gs[i].count,
                               .label_keys = gs[i].d->label_key,
                               .label_vals = gs[i].d->label_val,
                               .nlabels = gs[i].d->nlabels};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = pprof_write_goroutine(out, samples, ng,
                                   (int64_t)ts.tv_sec * 1000000000 +
                                       ts.tv_nsec,
                                   profile);
    lfree(samples);
    lfree(gs);
    return rc;
}
