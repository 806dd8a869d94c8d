/* SPDX-License-Identifier: MIT */
/*
 * fleet.c — `leash analyze SRC SRC...`: many goroutine dumps at once, one
 * per instance of a service, ranked the way Uber's LeakProf ranks them.
 *
 * Sources are files, "-", directories (their regular files, one level,
 * in name order, hidden ones skipped) and http:// endpoints: "http://
 * host:port" fetches leash's dump (/debug/leash?format=text: exact waits,
 * proofs, spawn sites), or Go's goroutine stacks (/debug/pprof/goroutine?
 * debug=2) from a server that has no /debug/leash; a URL with a path is
 * fetched as it is. A source that cannot be read or is no dump is listed
 * as an error and the rest go on.
 *
 * Every waiting goroutine (and every counted stack of a debug=1 profile,
 * which has no states) is attributed to
 *   its blocked site  the first frame outside the runtime (leash_*,
 *                     runtime., internal/, sync.): where the program
 *                     waits, with its wait reason;
 *   its spawn site    where it was created (leash_go, `go`).
 * Per site and instance: the count. An instance is *affected* at a site
 * when --crowd (default 10) or more goroutines wait there, or one of
 * them is a proven leak (leash's LEAKED, a nil channel, select with no
 * cases). Sites are ranked by the share of instances affected, then by
 * the goroutines waiting there over all instances: a leak in the code
 * shows on most instances at once, a one-off pile-up on one.
 */
#define _GNU_SOURCE 1
#include "analyze.h"
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FETCH_MAX ((size_t)512 << 20) /* bytes of one answer */

/* ------------------------------------------------------------ fetching */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_timeout(int fd, int64_t ms) {
    if (ms < 1)
        ms = 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* "http://host[:port][/path]" into its parts; false if malformed. */
static bool split_url(const char *url, char *host, size_t hn, char *port,
                      size_t pn, const char **path) {
    const char *h = url + 7, *end = h + strcspn(h, "/?#");
    const char *hs = h, *he, *ps = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return false;
        hs = h + 1;
        he = rb;
        if (rb + 1 < end && rb[1] != ':')
            return false;
        ps = rb + 1 < end ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
        ps = colon ? colon + 1 : NULL;
    }
    if (he == hs || (size_t)(he - hs) >= hn || memchr(hs, '@', (size_t)(he - hs)))
        return false;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    if (ps) {
        if (ps >= end || (size_t)(end - ps) >= pn || end - ps > 5)
            return false;
        long v = 0;
        for (const char *c = ps; c < end; c++) {
            if (*c < '0' || *c > '9')
                return false;
            v = v * 10 + (*c - '0');
        }
        if (v < 1 || v > 65535)
            return false;
        memcpy(port, ps, (size_t)(end - ps));
        port[end - ps] = 0;
    } else {
        snprintf(port, pn, "80");
    }
    *path = *end == '/' ? end : NULL;
    return *end == 0 || *end == '/';
}

/* One GET: EXIT_OK with the body and *status, or an error in err. */
static int http_get(const char *host, const char *port, const char *path,
                    int timeout_ms, int *status, char **body, size_t *blen,
                    char *err, size_t errn) {
    int64_t deadline = now_ms() + timeout_ms;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g) {
        snprintf(err, errn, "cannot resolve %s: %s", host, gai_strerror(g));
        return EXIT_NOPROC;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        set_timeout(fd, deadline - now_ms());
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, errn, "cannot connect: %s",
                 e == EINPROGRESS || e == EAGAIN ? "timed out" : strerror(e));
        return EXIT_NOPROC;
    }
    char req[1024];
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: %s%s%s:%s\r\n"
                     "User-Agent: leash-analyze\r\nAccept-Encoding: identity\r\n\r\n",
                     path, v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= sizeof req ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errn, "cannot send the request: %s", strerror(errno));
        close(fd);
        return EXIT_NOPROC;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    int rc = EXIT_OK;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, errn, "timed out after %d ms", timeout_ms);
            rc = EXIT_NOPROC;
            break;
        }
        set_timeout(fd, left);
        if (!buf) {
            snprintf(err, errn, "out of memory");
            rc = EXIT_PROTO;
            break;
        }
        if (len == cap) {
            if (cap >= FETCH_MAX) {
                snprintf(err, errn, "answer larger than %zu MiB", FETCH_MAX >> 20);
                rc = EXIT_PROTO;
                break;
            }
            char *v = realloc(buf, cap * 2 + 1);
            if (!v) {
                snprintf(err, errn, "out of memory");
                rc = EXIT_PROTO;
                break;
            }
            buf = v;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errn, "%s", errno == EAGAIN || errno == EWOULDBLOCK
                                          ? "timed out" : strerror(errno));
            rc = EXIT_NOPROC;
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = 0;
    char *hend = strstr(buf, "\r\n\r\n");
    int st = 0;
    if (!hend || sscanf(buf, "HTTP/1.%*d %d", &st) != 1) {
        snprintf(err, errn, "not an HTTP answer");
        free(buf);
        return EXIT_PROTO;
    }
    *hend = 0;
    for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
        if (!strncasecmp(h + 2, "Transfer-Encoding:", 18) ||
            (!strncasecmp(h + 2, "Content-Encoding:", 17) &&
             !strstr(h + 2, "identity"))) {
            snprintf(err, errn, "encoded answer (chunked or compressed)");
            free(buf);
            return EXIT_PROTO;
        }
    size_t off = (size_t)(hend + 4 - buf);
    memmove(buf, buf + off, len - off + 1);
    *status = st;
    *body = buf;
    *blen = len - off;
    return EXIT_OK;
}

int fleet_fetch(const char *url, int timeout_ms, char **buf, size_t *len,
                char *err, size_t errn) {
    *buf = NULL;
    if (!strncmp(url, "https://", 8)) {
        snprintf(err, errn, "https is not supported (fetch with curl, then "
                            "analyze the file)");
        return EXIT_USAGE;
    }
    char host[256], port[8];
    const char *path;
    if (strncmp(url, "http://", 7) ||
        !split_url(url, host, sizeof host, port, sizeof port, &path)) {
        snprintf(err, errn, "malformed URL (want http://host:port[/path])");
        return EXIT_USAGE;
    }
    bool guess = !path || !strcmp(path, "/");
    int st = 0;
    int rc = http_get(host, port, guess ? "/debug/leash?format=text" : path,
                      timeout_ms, &st, buf, len, err, errn);
    if (rc == EXIT_OK && guess && st == 404) { /* not leash: Go's stacks */
        free(*buf);
        *buf = NULL;
        rc = http_get(host, port, "/debug/pprof/goroutine?debug=2", timeout_ms,
                      &st, buf, len, err, errn);
    }
    if (rc == EXIT_OK && st != 200) {
        snprintf(err, errn, "HTTP status %d", st);
        free(*buf);
        *buf = NULL;
        return EXIT_PROTO;
    }
    return rc;
}

/* ------------------------------------------------------------ sources */

typedef struct {
    char *name;
    char *buf;     /* the dump's text; parsed in place */
    dump d;
    char err[256]; /* why it was not used ("" if it was) */
    long long goroutines, leaked;
} instance;

typedef struct {
    instance *v;
    int n, cap;
} instances;

static instance *inst_add(instances *is, const char *name) {
    if (is->n == is->cap) {
        int nc = is->cap ? is->cap * 2 : 16;
        instance *v = realloc(is->v, sizeof *v * (size_t)nc);
        if (!v) {
            cli_err("analyze: out of memory");
            exit(EXIT_PROTO);
        }
        is->v = v;
        is->cap = nc;
    }
    instance *x = &is->v[is->n++];
    memset(x, 0, sizeof *x);
    x->name = strdup(name);
    return x;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_one(instances *is, const char *src, int timeout_ms) {
    instance *x = inst_add(is, strcmp(src, "-") ? src : "(stdin)");
    size_t len = 0;
    if (!strncmp(src, "http://", 7) || !strncmp(src, "https://", 8)) {
        if (fleet_fetch(src, timeout_ms, &x->buf, &len, x->err, sizeof x->err))
            return;
    } else if (!(x->buf = analyze_read(src, &len))) {
        snprintf(x->err, sizeof x->err, "cannot read: %s", strerror(errno));
        return;
    }
    if (len >= 2 && (unsigned char)x->buf[0] == 0x1f &&
        (unsigned char)x->buf[1] == 0x8b)
        snprintf(x->err, sizeof x->err, "a gzipped (pprof) profile: fetch "
                                        "debug=1 or debug=2 text");
    else if (memchr(x->buf, 0, len))
        snprintf(x->err, sizeof x->err, "binary, not a goroutine dump");
    else if (analyze_parse(x->buf, &x->d) == 0)
        snprintf(x->err, sizeof x->err, "not a goroutine dump");
}

static void load(instances *is, const char *src, int timeout_ms) {
    struct stat st;
    if (!strncmp(src, "http://", 7) || !strncmp(src, "https://", 8)) {
        load_one(is, src, timeout_ms);
        return;
    }
    if (!strcmp(src, "-") || stat(src, &st) != 0 || !S_ISDIR(st.st_mode)) {
        load_one(is, src, timeout_ms);
        return;
    }
    DIR *d = opendir(src);
    if (!d) {
        instance *x = inst_add(is, src);
        snprintf(x->err, sizeof x->err, "cannot read: %s", strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char *p;
        if (asprintf(&p, "%s/%s", src, e->d_name) < 0)
            continue;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **v = realloc(names, sizeof *v * cap);
            if (!v) {
                free(p);
                break;
            }
            names = v;
        }
        names[n++] = p;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        load_one(is, names[i], timeout_ms);
        free(names[i]);
    }
    free(names);
    if (!n) {
        instance *x = inst_add(is, src);
        snprintf(x->err, sizeof x->err, "a directory with no files");
    }
}

/* ------------------------------------------------------------ sites */

typedef struct {
    const char *state, *func, *loc; /* spawn sites: state is "" */
    long long *per;                 /* per instance */
    long long *per_leaked;          /* proven leaks, per instance */
    long long total, max, leaked;
    int affected;
    /* blocked sites: the spawn sites that fed them */
    struct feed { const char *func, *loc; long long n; } *feeds;
    int nfeeds, capfeeds;
} site;

typedef struct {
    site *v;
    int n, cap, ninst;
} sites;

static bool runtime_frame(const char *f) {
    return !strncmp(f, "leash_", 6) || !strncmp(f, "runtime.", 8) ||
           !strncmp(f, "internal/", 9) || !strncmp(f, "sync.", 5);
}

/* Linear lookups: a fleet has tens to hundreds of distinct sites. A
 * site is its function and location; its state is the first wait reason
 * seen there (a debug=1 profile has none: "unknown"). */
static site *site_get(sites *ss, const char *state, const char *func,
                      const char *loc) {
    for (int i = 0; i < ss->n; i++)
        if (!strcmp(ss->v[i].func, func) && !strcmp(ss->v[i].loc, loc)) {
            if (!strcmp(ss->v[i].state, "unknown"))
                ss->v[i].state = state;
            return &ss->v[i];
        }
    if (ss->n == ss->cap) {
        int nc = ss->cap ? ss->cap * 2 : 64;
        site *v = realloc(ss->v, sizeof *v * (size_t)nc);
        if (!v) {
            cli_err("analyze: out of memory");
            exit(EXIT_PROTO);
        }
        ss->v = v;
        ss->cap = nc;
    }
    site *s = &ss->v[ss->n++];
    memset(s, 0, sizeof *s);
    s->state = state;
    s->func = func;
    s->loc = loc;
    s->per = calloc((size_t)ss->ninst, sizeof *s->per);
    s->per_leaked = calloc((size_t)ss->ninst, sizeof *s->per_leaked);
    if (!s->per || !s->per_leaked) {
        cli_err("analyze: out of memory");
        exit(EXIT_PROTO);
    }
    return s;
}

static void feed_add(site *s, const char *func, const char *loc, long long n) {
    for (int i = 0; i < s->nfeeds; i++)
        if (!strcmp(s->feeds[i].func, func) && !strcmp(s->feeds[i].loc, loc)) {
            s->feeds[i].n += n;
            return;
        }
    if (s->nfeeds == s->capfeeds) {
        int nc = s->capfeeds ? s->capfeeds * 2 : 4;
        struct feed *v = realloc(s->feeds, sizeof *v * (size_t)nc);
        if (!v)
            return;
        s->feeds = v;
        s->capfeeds = nc;
    }
    s->feeds[s->nfeeds++] = (struct feed){func, loc, n};
}

static bool proven(const grec *r) {
    return r->leak_note || strstr(r->state, "(nil chan)") ||
           !strcmp(r->state, "select (no cases)");
}

static void tally(instances *is, sites *blocked, sites *spawned, long crowd) {
    for (int i = 0; i < is->n; i++) {
        instance *x = &is->v[i];
        if (x->err[0])
            continue;
        for (int k = 0; k < x->d.n; k++) {
            grec *r = &x->d.r[k];
            bool leak = proven(r);
            x->goroutines += r->count;
            x->leaked += leak ? r->count : 0;
            if (!analyze_blocking_state(r->state) && strcmp(r->state, "unknown"))
                continue;
            const frame *f = &x->d.f[r->first_frame];
            int top = 0;
            while (top < r->nframes - 1 && runtime_frame(f[top].func))
                top++;
            const char *bf = r->nframes ? f[top].func : "?",
                       *bl = r->nframes ? f[top].loc : "?";
            const char *sf = r->creator ? r->creator : "?",
                       *sl = r->creator_loc ? r->creator_loc : "?";
            site *b = site_get(blocked, r->state, bf, bl);
            site *s = site_get(spawned, "", sf, sl);
            b->per[i] += r->count;
            s->per[i] += r->count;
            if (leak) {
                b->leaked += r->count;
                s->leaked += r->count;
                b->per_leaked[i] += r->count;
                s->per_leaked[i] += r->count;
            }
            feed_add(b, sf, sl, r->count);
        }
    }
    sites *both[2] = {blocked, spawned};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < both[t]->n; k++) {
            site *s = &both[t]->v[k];
            for (int i = 0; i < is->n; i++) {
                s->total += s->per[i];
                if (s->per[i] > s->max)
                    s->max = s->per[i];
            }
        }
    /* Affected: over the threshold, or a proven leak there. */
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < both[t]->n; k++) {
            site *s = &both[t]->v[k];
            for (int i = 0; i < is->n; i++)
                if (s->per[i] >= crowd || s->per_leaked[i] > 0)
                    s->affected++;
        }
}

static int cmp_site(const void *a, const void *b) {
    const site *x = a, *y = b;
    if (x->affected != y->affected)
        return y->affected - x->affected;
    if (x->total != y->total)
        return (y->total > x->total) - (y->total < x->total);
    if (x->leaked != y->leaked)
        return (y->leaked > x->leaked) - (y->leaked < x->leaked);
    return strcmp(x->loc, y->loc);
}

static int cmp_feed(const void *a, const void *b) {
    const struct feed *x = a, *y = b;
    return (y->n > x->n) - (y->n < x->n);
}

/* ------------------------------------------------------------ output */

static void print_sites_text(const char *title, const sites *ss, int nok,
                             bool blocked) {
    int shown = 0;
    printf("%s\n", title);
    for (int k = 0; k < ss->n; k++) {
        const site *s = &ss->v[k];
        if (!s->affected)
            continue;
        if (!shown++)
            printf("  RANK  INSTANCES  SHARE  TOTAL    MAX  LEAKED  %s\n",
                   blocked ? "WAIT, BLOCKED AT" : "SPAWNED AT");
        char inst[32];
        snprintf(inst, sizeof inst, "%d/%d", s->affected, nok);
        printf("  %4d  %-9s  %4.0f%%  %5lld  %5lld  %6lld  ", shown, inst,
               100.0 * s->affected / nok, s->total, s->max, s->leaked);
        if (blocked)
            printf("[%s] ", cli_cell(s->state));
        printf("%s (%s)\n", cli_cell(s->func), cli_cell(s->loc));
        if (blocked)
            for (int f = 0; f < s->nfeeds && f < 3; f++)
                printf("                                              "
                       "spawned at %s (%s): %lld\n",
                       cli_cell(s->feeds[f].func), cli_cell(s->feeds[f].loc),
                       s->feeds[f].n);
    }
    if (!shown)
        printf("  (none)\n");
    printf("\n");
}

static void print_sites_json(const char *key, const sites *ss,
                             const instances *is, int nok, bool blocked) {
    printf(",\n\"%s\":[", key);
    int shown = 0;
    for (int k = 0; k < ss->n; k++) {
        const site *s = &ss->v[k];
        if (!s->total)
            continue;
        printf("%s\n{\"rank\":%d,", shown ? "," : "", shown + 1);
        shown++;
        if (blocked) {
            printf("\"state\":");
            cli_json_str(stdout, s->state);
            printf(",");
        }
        printf("\"func\":");
        cli_json_str(stdout, s->func);
        printf(",\"location\":");
        cli_json_str(stdout, s->loc);
        printf(",\"instances_affected\":%d,\"share\":%.4f,\"total\":%lld,"
               "\"max\":%lld,\"leaked\":%lld,\"suspect\":%s,\"per_instance\":[",
               s->affected, nok ? (double)s->affected / nok : 0.0, s->total,
               s->max, s->leaked, s->affected ? "true" : "false");
        bool first = true;
        for (int i = 0; i < is->n; i++) {
            if (is->v[i].err[0])
                continue;
            printf("%s%lld", first ? "" : ",", s->per[i]);
            first = false;
        }
        printf("]");
        if (blocked) {
            printf(",\"spawned_by\":[");
            for (int f = 0; f < s->nfeeds; f++) {
                printf("%s{\"func\":", f ? "," : "");
                cli_json_str(stdout, s->feeds[f].func);
                printf(",\"location\":");
                cli_json_str(stdout, s->feeds[f].loc);
                printf(",\"count\":%lld}", s->feeds[f].n);
            }
            printf("]");
        }
        printf("}");
    }
    printf("]");
}

static const char *kind_of(const dump *d) {
    return d->debug1 ? "debug1" : d->leash3 ? "leash3" : "debug2";
}

int fleet_analyze(const char *const *src, int nsrc, bool json, long crowd,
                  int timeout_ms) {
    instances is = {0};
    for (int i = 0; i < nsrc; i++)
        load(&is, src[i], timeout_ms);
    int nok = 0, nread = 0;
    for (int i = 0; i < is.n; i++) {
        nok += !is.v[i].err[0];
        nread += is.v[i].buf != NULL;
    }
    sites blocked = {.ninst = is.n}, spawned = {.ninst = is.n};
    tally(&is, &blocked, &spawned, crowd);
    if (blocked.n)
        qsort(blocked.v, (size_t)blocked.n, sizeof *blocked.v, cmp_site);
    if (spawned.n)
        qsort(spawned.v, (size_t)spawned.n, sizeof *spawned.v, cmp_site);
    for (int k = 0; k < blocked.n; k++)
        if (blocked.v[k].nfeeds > 1)
            qsort(blocked.v[k].feeds, (size_t)blocked.v[k].nfeeds,
                  sizeof *blocked.v[k].feeds, cmp_feed);
    int suspects = 0;
    for (int k = 0; k < blocked.n; k++)
        suspects += blocked.v[k].affected > 0;
    for (int i = 0; i < is.n; i++)
        if (is.v[i].err[0])
            cli_err("analyze: %s: %s", cli_cell(is.v[i].name), is.v[i].err);
    if (json) {
        printf("{\"format\":\"leash-analyze-fleet/1\",\"crowd\":%ld,"
               "\"instances\":[", crowd);
        bool first = true;
        for (int i = 0; i < is.n; i++) {
            instance *x = &is.v[i];
            if (x->err[0])
                continue;
            printf("%s\n{\"source\":", first ? "" : ",");
            first = false;
            cli_json_str(stdout, x->name);
            printf(",\"kind\":\"%s\",\"goroutines\":%lld,\"leaked\":%lld}",
                   kind_of(&x->d), x->goroutines, x->leaked);
        }
        printf("],\n\"errors\":[");
        first = true;
        for (int i = 0; i < is.n; i++) {
            instance *x = &is.v[i];
            if (!x->err[0])
                continue;
            printf("%s\n{\"source\":", first ? "" : ",");
            first = false;
            cli_json_str(stdout, x->name);
            printf(",\"error\":");
            cli_json_str(stdout, x->err);
            printf("}");
        }
        printf("],\"suspects\":%d", suspects);
        print_sites_json("blocked_sites", &blocked, &is, nok, true);
        print_sites_json("spawn_sites", &spawned, &is, nok, false);
        printf("}\n");
    } else if (nok) {
        printf("leash analyze: %d instance(s)", nok);
        if (is.n > nok)
            printf(", %d source(s) skipped", is.n - nok);
        printf("; an instance counts at a site with %ld or more goroutines "
               "waiting there (--crowd) or a proven leak\n\n", crowd);
        print_sites_text("Suspects by blocked site (share of instances, then "
                         "goroutines):", &blocked, nok, true);
        print_sites_text("Suspects by spawn site:", &spawned, nok, false);
        printf("Instances:\n");
        for (int i = 0; i < is.n; i++) {
            instance *x = &is.v[i];
            if (!x->err[0])
                printf("  %s: %s, %lld goroutine(s), %lld proven leaked\n",
                       cli_cell(x->name), kind_of(&x->d), x->goroutines,
                       x->leaked);
        }
    }
    for (int i = 0; i < is.n; i++) {
        free(is.v[i].name);
        free(is.v[i].buf);
        for (int k = 0; k < is.v[i].d.n; k++)
            free(is.v[i].d.r[k].key);
        free(is.v[i].d.r);
        free(is.v[i].d.f);
    }
    free(is.v);
    sites *both[2] = {&blocked, &spawned};
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < both[t]->n; k++) {
            free(both[t]->v[k].per);
            free(both[t]->v[k].per_leaked);
            free(both[t]->v[k].feeds);
        }
        free(both[t]->v);
    }
    if (!nok) {
        cli_err("analyze: no goroutine dump among the sources");
        return nread ? EXIT_PROTO : EXIT_NOPROC;
    }
    return suspects ? EXIT_LEAKS : EXIT_OK;
}
