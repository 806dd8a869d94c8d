/* SPDX-License-Identifier: MIT */
/*
 * pprof.c — a profile as gzipped google/pprof profile.proto: the
 * goroutine profiles (dump_go.c), block and mutex (contention.c) and CPU
 * (cpuprof.c) profiles, each with its sample and period types
 * (pprof_spec).
 *
 * A hand-written protobuf encoder (varints and length-delimited fields
 * only; no libprotobuf). Field numbers follow google/pprof's
 * proto/profile.proto. The message is built in memory in two passes:
 *   1. intern: every distinct pc of the samples becomes one Location
 *      (its Mapping found in the executable mappings of /proc/self/maps,
 *      its Function and line from sym_lookup), every distinct
 *      (name, file) one Function, every distinct string one string_table
 *      entry (index 0 is "");
 *   2. emit: Profile's fields in field order, then gzip (zlib, gzip
 *      wrapper) to the stream.
 *
 * Conventions (Go's runtime/pprof does the same):
 *   - every pc of a sample is a return address: Location.address is pc-1
 *     (inside the call instruction, where pprof's own symbolizer expects
 *     a non-leaf address) and the line is sym_lookup(pc, is_return=true);
 *   - a pc that resolves to no function gets a Location with no Line, so
 *     pprof shows its address instead of merging every unknown into "?";
 *   - every Mapping says has_functions (we symbolized, so pprof does not
 *     try again); has_filenames/has_line_numbers when any of its
 *     locations got a file:line; the main executable's mappings come
 *     first; build_id is the GNU build-id note, read from memory.
 *
 * Ids are 1-based indexes into the tables. Everything allocated here is
 * freed before returning; strings borrowed from sym_lookup live forever,
 * the samples' labels for the duration of the call. Reentrant: no
 * global state besides the symbol cache, which is thread-safe.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "diag.h"

#include <errno.h>
#include <link.h>
#include <unistd.h>
#include <zlib.h>

/* profile.proto field numbers */
enum {
    PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4, PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9, PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12,
    VALUETYPE_TYPE = 1, VALUETYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
    LABEL_KEY = 1, LABEL_STR = 2,
    MAPPING_ID = 1, MAPPING_START = 2, MAPPING_LIMIT = 3, MAPPING_OFFSET = 4,
    MAPPING_FILENAME = 5, MAPPING_BUILD_ID = 6, MAPPING_HAS_FUNCTIONS = 7,
    MAPPING_HAS_FILENAMES = 8, MAPPING_HAS_LINE_NUMBERS = 9,
    LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3,
    LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1, LINE_LINE = 2,
    FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3,
    FUNCTION_FILENAME = 4, FUNCTION_START_LINE = 5,
};
enum { WT_VARINT = 0, WT_LEN = 2 };

/* ------------------------------------------------------------ encoder */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} pbuf;

static bool pb_reserve(pbuf *b, size_t n) {
    if (b->oom)
        return false;
    if (b->len + n <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + n)
        ncap *= 2;
    uint8_t *np = lrealloc(b->p, ncap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = ncap;
    return true;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v as a varint at p; returns its length. */
static size_t put_varint_at(uint8_t *p, uint64_t v) {
    size_t n = 1;
    for (; v >= 0x80; v >>= 7, n++)
        *p++ = (uint8_t)(v | 0x80);
    *p = (uint8_t)v;
    return n;
}

static void pb_varint(pbuf *b, uint64_t v) {
    if (pb_reserve(b, 10))
        b->len += put_varint_at(b->p + b->len, v);
}

static void pb_key(pbuf *b, int field, int wt) {
    pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

/* A varint field; proto3 omits zero values. int64 values are encoded as
 * their two's complement (10 bytes when negative), as protobuf does. */
static void pb_uint(pbuf *b, int field, uint64_t v) {
    if (v == 0)
        return;
    pb_key(b, field, WT_VARINT);
    pb_varint(b, v);
}

static void pb_bytes(pbuf *b, int field, const char *s, size_t n) {
    pb_key(b, field, WT_LEN);
    pb_varint(b, n);
    if (n && pb_reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* Opens a length-delimited field (a message or a packed list); returns
 * where its body starts, for pb_end. */
static size_t pb_begin(pbuf *b, int field) {
    pb_key(b, field, WT_LEN);
    return b->len;
}

/* Closes it: moves the body up to make room for its length. */
static void pb_end(pbuf *b, size_t start) {
    if (b->oom)
        return;
    size_t body = b->len - start, k = varint_len(body);
    if (!pb_reserve(b, k))
        return;
    memmove(b->p + start + k, b->p + start, body);
    put_varint_at(b->p + start, body);
    b->len += k;
}

/* ------------------------------------------------------------ tables */

/* u64 -> u32 id; id 0 marks an empty slot (ids start at 1). */
typedef struct {
    uint64_t key;
    uint32_t val;
} idslot;
typedef struct {
    idslot *slots;
    size_t cap, len; /* cap: a power of two */
} idmap;

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint32_t idmap_get(const idmap *m, uint64_t key) {
    if (!m->cap)
        return 0;
    for (size_t i = mix64(key) & (m->cap - 1); m->slots[i].val;
         i = (i + 1) & (m->cap - 1))
        if (m->slots[i].key == key)
            return m->slots[i].val;
    return 0;
}

static bool idmap_put(idmap *m, uint64_t key, uint32_t val) {
    if ((m->len + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        idslot *ns = lcalloc(ncap, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].val)
                continue;
            size_t j = mix64(m->slots[i].key) & (ncap - 1);
            while (ns[j].val)
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
        lfree(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t i = mix64(key) & (m->cap - 1);
    while (m->slots[i].val)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (idslot){.key = key, .val = val};
    m->len++;
    return true;
}

static void idmap_free(idmap *m) { lfree(m->slots); }

/* Returns arr grown to hold one more `sz`-byte element than len, or NULL
 * (arr is then left alone). */
static void *grow_impl(void *arr, size_t *cap, size_t len, size_t sz) {
    if (len < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 32;
    void *np = lrealloc(arr, ncap * sz);
    if (np)
        *cap = ncap;
    return np;
}
#define GROW(arr, cap, len)                                                \
    __extension__({                                                        \
        void *np_ = grow_impl((arr), &(cap), (len), sizeof *(arr));        \
        if (np_)                                                           \
            (arr) = np_;                                                   \
        np_ != NULL;                                                       \
    })

typedef struct {
    uint64_t start, limit, offset;
    char *file;     /* owned */
    char *build_id; /* owned, hex; NULL if none */
    bool has_files, has_lines;
} pmapping;

/* A location's lines: one per inlined level, innermost first (pprof:
 * the last is the function the others were inlined into). */
typedef struct {
    uint64_t addr;
    uint32_t mapping_id; /* 0: none */
    int nlines;          /* 0: no function known */
    uint32_t func_id[1 + DSYM_MAX_INLINE];
    int line[1 + DSYM_MAX_INLINE];
} plocation;

typedef struct {
    int64_t name, file; /* string indexes */
    int start_line;     /* 0: unknown (omitted) */
} pfunction;

typedef struct {
    const char **strs; /* strs[0] = "" */
    size_t nstrs, cap_strs;
    pmapping *maps;
    size_t nmaps, cap_maps;
    plocation *locs;
    size_t nlocs, cap_locs;
    pfunction *funcs;
    size_t nfuncs, cap_funcs;
    idmap loc_ids;  /* pc -> location id */
    idmap func_ids; /* name << 32 | file -> function id */
    idmap str_ids;  /* hash of a string (+ collisions) -> index + 1 */
    bool oom;
} pctx;

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return mix64(h);
}

/* The string table index of s (which must outlive the write); 0 for
 * NULL or "" or on allocation failure (then c->oom). */
static int64_t str_idx(pctx *c, const char *s) {
    if (!s || !s[0] || c->oom)
        return 0;
    /* Strings whose hashes collide take successive keys: walk the chain. */
    uint64_t key = hash_str(s);
    uint32_t id;
    for (; (id = idmap_get(&c->str_ids, key)) != 0; key++)
        if (strcmp(c->strs[id - 1], s) == 0)
            return id - 1;
    if (!GROW(c->strs, c->cap_strs, c->nstrs) ||
        !idmap_put(&c->str_ids, key, (uint32_t)c->nstrs + 1)) {
        c->oom = true;
        return 0;
    }
    c->strs[c->nstrs] = s;
    return (int64_t)c->nstrs++;
}

/* ------------------------------------------------------------ mappings */

static char *hex_dup(const uint8_t *p, size_t n) {
    char *s = lmalloc(n * 2 + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = "0123456789abcdef"[p[i] >> 4];
        s[2 * i + 1] = "0123456789abcdef"[p[i] & 15];
    }
    s[n * 2] = 0;
    return s;
}

/* Finds the GNU build-id note of each loaded object in memory and gives
 * it to the mappings that the object's PT_LOAD segments overlap. */
static int build_id_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    pctx *c = data;
    const uint8_t *id = NULL;
    size_t idlen = 0;
    for (int i = 0; i < info->dlpi_phnum && !id; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        size_t al = ph->p_align == 8 ? 7 : 3; /* .note.gnu.property: 8 */
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name = (nh->n_namesz + al) & ~al;
            size_t desc = (nh->n_descsz + al) & ~al;
            const uint8_t *d = p + sizeof *nh + name;
            if (d + desc > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(p + sizeof *nh, "GNU", 4) == 0 && nh->n_descsz) {
                id = d;
                idlen = nh->n_descsz;
                break;
            }
            p = d + desc;
        }
    }
    if (!id)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        for (size_t m = 0; m < c->nmaps; m++) {
            pmapping *mp = &c->maps[m];
            if (mp->build_id || mp->start >= hi || mp->limit <= lo)
                continue;
            if (!(mp->build_id = hex_dup(id, idlen)))
                c->oom = true;
        }
    }
    return 0;
}

/* Reads the executable mappings of /proc/self/maps, the main
 * executable's first. Returns 0 or a negative error. */
static int read_mappings(pctx *c) {
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0; /* no mappings: locations just have none */
    size_t linecap = PATH_MAX + 256;
    char *line = lmalloc(linecap), *exe = lmalloc(PATH_MAX);
    if (!line || !exe) {
        lfree(line);
        lfree(exe);
        fclose(f);
        return LEASH_ENOMEM;
    }
    ssize_t el = readlink("/proc/self/exe", exe, PATH_MAX - 1);
    exe[el > 0 ? el : 0] = 0;
    size_t nmain = 0; /* main-executable mappings at the front */
    int rc = 0;
    while (fgets(line, (int)linecap, f)) {
        unsigned long start, limit, off;
        char perms[8];
        int pos = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &start, &limit, perms,
                   &off, &pos) < 4 || !strchr(perms, 'x'))
            continue;
        char *name = line + pos;
        name[strcspn(name, "\n")] = 0;
        size_t nlen = strlen(name) + 1;
        char *copy = GROW(c->maps, c->cap_maps, c->nmaps) ? lmalloc(nlen)
                                                           : NULL;
        if (!copy) {
            rc = LEASH_ENOMEM;
            break;
        }
        name = memcpy(copy, name, nlen);
        pmapping m = {.start = start, .limit = limit, .offset = off,
                      .file = name};
        bool is_main = exe[0] && strcmp(name, exe) == 0;
        size_t at = is_main ? nmain++ : c->nmaps;
        memmove(&c->maps[at + 1], &c->maps[at],
                (c->nmaps - at) * sizeof *c->maps);
        c->maps[at] = m;
        c->nmaps++;
    }
    lfree(line);
    lfree(exe);
    fclose(f);
    if (rc == 0)
        dl_iterate_phdr(build_id_cb, c);
    return rc;
}

static uint32_t mapping_of(const pctx *c, uint64_t addr) {
    for (size_t i = 0; i < c->nmaps; i++)
        if (addr >= c->maps[i].start && addr < c->maps[i].limit)
            return (uint32_t)i + 1;
    return 0;
}

/* ------------------------------------------------------------ intern */

static uint32_t func_id(pctx *c, const dpos *s) {
    int64_t name = str_idx(c, s->func), file = str_idx(c, s->file);
    if (c->oom)
        return 0;
    uint64_t key = (uint64_t)name << 32 | (uint64_t)file;
    uint32_t id = idmap_get(&c->func_ids, key);
    if (id)
        return id;
    if (!GROW(c->funcs, c->cap_funcs, c->nfuncs)) {
        c->oom = true;
        return 0;
    }
    c->funcs[c->nfuncs] =
        (pfunction){.name = name, .file = file, .start_line = s->start_line};
    id = (uint32_t)++c->nfuncs;
    if (!idmap_put(&c->func_ids, key, id))
        c->oom = true;
    return id;
}

/* The location id for return address pc (0 on allocation failure). */
static uint32_t loc_id(pctx *c, uintptr_t pc) {
    uint32_t id = idmap_get(&c->loc_ids, pc);
    if (id || c->oom)
        return id;
    dsym s;
    diag_frame_sym(pc, &s);
    plocation l = {.addr = pc - 1};
    l.mapping_id = mapping_of(c, l.addr);
    if (strcmp(s.func, "?") != 0) {
        for (int k = 0; k < dsym_levels(&s); k++) {
            dpos p = dsym_level(&s, k);
            l.func_id[k] = func_id(c, &p);
            l.line[k] = p.line;
        }
        l.nlines = dsym_levels(&s);
        if (l.mapping_id) {
            pmapping *m = &c->maps[l.mapping_id - 1];
            m->has_files |= s.file != NULL;
            m->has_lines |= s.line > 0;
        }
    }
    if (c->oom || !GROW(c->locs, c->cap_locs, c->nlocs)) {
        c->oom = true;
        return 0;
    }
    c->locs[c->nlocs] = l;
    id = (uint32_t)++c->nlocs;
    if (!idmap_put(&c->loc_ids, pc, id))
        c->oom = true;
    return id;
}

/* ------------------------------------------------------------ emit */

static void emit_value_type(pbuf *b, int field, int64_t type, int64_t unit) {
    size_t m = pb_begin(b, field);
    pb_uint(b, VALUETYPE_TYPE, (uint64_t)type);
    pb_uint(b, VALUETYPE_UNIT, (uint64_t)unit);
    pb_end(b, m);
}

static void emit_sample(pctx *c, pbuf *b, const dsample *s, int nvalues) {
    size_t m = pb_begin(b, PROFILE_SAMPLE);
    size_t ids = pb_begin(b, SAMPLE_LOCATION_ID); /* packed */
    for (int i = 0; i < s->npcs; i++)
        if (s->pcs[i])
            pb_varint(b, idmap_get(&c->loc_ids, s->pcs[i]));
    pb_end(b, ids);
    size_t vals = pb_begin(b, SAMPLE_VALUE); /* packed */
    pb_varint(b, (uint64_t)s->count);
    if (nvalues > 1)
        pb_varint(b, (uint64_t)s->value);
    pb_end(b, vals);
    for (int i = 0; i < s->nlabels; i++) {
        if (!s->label_keys[i])
            continue;
        size_t l = pb_begin(b, SAMPLE_LABEL);
        pb_uint(b, LABEL_KEY, (uint64_t)str_idx(c, s->label_keys[i]));
        pb_uint(b, LABEL_STR, (uint64_t)str_idx(c, s->label_vals[i]));
        pb_end(b, l);
    }
    pb_end(b, m);
}

static void emit_tables(pctx *c, pbuf *b) {
    for (size_t i = 0; i < c->nmaps; i++) {
        const pmapping *mp = &c->maps[i];
        size_t m = pb_begin(b, PROFILE_MAPPING);
        pb_uint(b, MAPPING_ID, i + 1);
        pb_uint(b, MAPPING_START, mp->start);
        pb_uint(b, MAPPING_LIMIT, mp->limit);
        pb_uint(b, MAPPING_OFFSET, mp->offset);
        pb_uint(b, MAPPING_FILENAME, (uint64_t)str_idx(c, mp->file));
        pb_uint(b, MAPPING_BUILD_ID, (uint64_t)str_idx(c, mp->build_id));
        pb_uint(b, MAPPING_HAS_FUNCTIONS, 1);
        pb_uint(b, MAPPING_HAS_FILENAMES, mp->has_files);
        pb_uint(b, MAPPING_HAS_LINE_NUMBERS, mp->has_lines);
        pb_end(b, m);
    }
    for (size_t i = 0; i < c->nlocs; i++) {
        const plocation *l = &c->locs[i];
        size_t m = pb_begin(b, PROFILE_LOCATION);
        pb_uint(b, LOCATION_ID, i + 1);
        pb_uint(b, LOCATION_MAPPING_ID, l->mapping_id);
        pb_uint(b, LOCATION_ADDRESS, l->addr);
        for (int k = 0; k < l->nlines; k++) {
            size_t ln = pb_begin(b, LOCATION_LINE);
            pb_uint(b, LINE_FUNCTION_ID, l->func_id[k]);
            pb_uint(b, LINE_LINE, (uint64_t)(int64_t)l->line[k]);
            pb_end(b, ln);
        }
        pb_end(b, m);
    }
    for (size_t i = 0; i < c->nfuncs; i++) {
        const pfunction *f = &c->funcs[i];
        size_t m = pb_begin(b, PROFILE_FUNCTION);
        pb_uint(b, FUNCTION_ID, i + 1);
        pb_uint(b, FUNCTION_NAME, (uint64_t)f->name);
        pb_uint(b, FUNCTION_SYSTEM_NAME, (uint64_t)f->name);
        pb_uint(b, FUNCTION_FILENAME, (uint64_t)f->file);
        /* The line of the declaration, as Go writes it (0: omitted). */
        pb_uint(b, FUNCTION_START_LINE, (uint64_t)(int64_t)f->start_line);
        pb_end(b, m);
    }
}

/* ------------------------------------------------------------ gzip */

static int gzip_write(FILE *out, const uint8_t *p, size_t n) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (n > UINT_MAX / 2 ||
        deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return LEASH_ENOMEM;
    uLong cap = deflateBound(&zs, (uLong)n);
    uint8_t *buf = lmalloc(cap);
    int rc = LEASH_ENOMEM;
    if (buf) {
        zs.next_in = (Bytef *)(uintptr_t)p;
        zs.avail_in = (uInt)n;
        zs.next_out = buf;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END) { /* one shot: fits */
            errno = 0;
            if (fwrite(buf, 1, zs.total_out, out) != zs.total_out ||
                fflush(out) != 0)
                rc = errno ? -errno : -EIO;
            else
                rc = 0;
        }
    }
    deflateEnd(&zs);
    lfree(buf);
    return rc;
}

/* ------------------------------------------------------------ entry */

int pprof_write(FILE *out, const pprof_spec *sp, const dsample *samples,
                int n) {
    if (!out || !sp || !sp->sample_type[0] || !sp->sample_unit[0] ||
        sp->nvalues < 1 || sp->nvalues > 2 ||
        (sp->nvalues == 2 && (!sp->sample_type[1] || !sp->sample_unit[1])) ||
        !sp->period_type || !sp->period_unit || n < 0 || (n > 0 && !samples))
        return LEASH_EINVAL;
    for (int i = 0; i < n; i++) {
        const dsample *s = &samples[i];
        if (s->npcs < 0 || (s->npcs && !s->pcs) || s->nlabels < 0 ||
            (s->nlabels && (!s->label_keys || !s->label_vals)))
            return LEASH_EINVAL;
    }

    pctx c = {0};
    pbuf b = {0};
    int rc = 0;
    if (!GROW(c.strs, c.cap_strs, 0)) {
        rc = LEASH_ENOMEM;
        goto out;
    }
    c.strs[c.nstrs++] = "";
    if ((rc = read_mappings(&c)) != 0)
        goto out;

    /* Pass 1: locations, functions, strings. */
    int64_t s_type[2], s_unit[2];
    for (int v = 0; v < sp->nvalues; v++) {
        s_type[v] = str_idx(&c, sp->sample_type[v]);
        s_unit[v] = str_idx(&c, sp->sample_unit[v]);
    }
    int64_t s_ptype = str_idx(&c, sp->period_type);
    int64_t s_punit = str_idx(&c, sp->period_unit);
    for (int i = 0; i < n && !c.oom; i++) {
        for (int j = 0; j < samples[i].npcs && !c.oom; j++)
            if (samples[i].pcs[j])
                loc_id(&c, samples[i].pcs[j]);
        for (int j = 0; j < samples[i].nlabels; j++) {
            str_idx(&c, samples[i].label_keys[j]);
            str_idx(&c, samples[i].label_vals[j]);
        }
    }
    for (size_t i = 0; i < c.nmaps; i++) {
        str_idx(&c, c.maps[i].file);
        str_idx(&c, c.maps[i].build_id);
    }
    if (c.oom) {
        rc = LEASH_ENOMEM;
        goto out;
    }

    /* Pass 2: the message, fields in order. No string is added from here
     * on (each was interned above), so the string table is complete. */
    for (int v = 0; v < sp->nvalues; v++)
        emit_value_type(&b, PROFILE_SAMPLE_TYPE, s_type[v], s_unit[v]);
    for (int i = 0; i < n; i++)
        emit_sample(&c, &b, &samples[i], sp->nvalues);
    emit_tables(&c, &b);
    for (size_t i = 0; i < c.nstrs; i++)
        pb_bytes(&b, PROFILE_STRING_TABLE, c.strs[i], strlen(c.strs[i]));
    pb_uint(&b, PROFILE_TIME_NANOS, (uint64_t)sp->time_ns);
    pb_uint(&b, PROFILE_DURATION_NANOS, (uint64_t)sp->duration_ns);
    emit_value_type(&b, PROFILE_PERIOD_TYPE, s_ptype, s_punit);
    pb_uint(&b, PROFILE_PERIOD, (uint64_t)sp->period);
    if (b.oom || c.oom) {
        rc = LEASH_ENOMEM;
        goto out;
    }
    rc = gzip_write(out, b.p, b.len);

out:
    lfree(b.p);
    for (size_t i = 0; i < c.nmaps; i++) {
        lfree(c.maps[i].file);
        lfree(c.maps[i].build_id);
    }
    lfree(c.maps);
    lfree(c.locs);
    lfree(c.funcs);
    lfree(c.strs);
    idmap_free(&c.str_ids);
    idmap_free(&c.loc_ids);
    idmap_free(&c.func_ids);
    return rc;
}

int pprof_write_goroutine(FILE *out, const dsample *samples, int n,
                          int64_t time_ns, const char *type) {
    if (!type)
        return LEASH_EINVAL;
    pprof_spec sp = {.sample_type = {type}, .sample_unit = {"count"},
                     .nvalues = 1, .period_type = type,
                     .period_unit = "count", .period = 1,
                     .time_ns = time_ns};
    return pprof_write(out, &sp, samples, n);
}
