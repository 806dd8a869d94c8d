/* SPDX-License-Identifier: MIT */
/*
 * analyze.h — `leash analyze`'s dump reader (analyze.c), shared with the
 * fleet view over many dumps (fleet.c).
 */
#ifndef LEASH_CLI_ANALYZE_H
#define LEASH_CLI_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *func, *loc;
} frame;

/* One goroutine (or, in a debug=1 profile, one counted stack). Strings
 * point into the buffer that was parsed. */
typedef struct {
    long long id, count;
    const char *state;      /* wait reason / state, "unknown" for debug=1 */
    double minutes;         /* -1: not given */
    const char *leak_note;  /* leash's LEAKED (...) text */
    const char *sus_note;   /* leash's SUSPECT (...) text */
    int io_deadline;        /* -1 unknown, 0 none, 1 has one */
    int first_frame, nframes;
    const char *creator, *creator_loc;
    char *key;
} grec;

typedef struct {
    grec *r;
    int n, cap;
    frame *f;
    int nf, capf;
    bool debug1, leash3;
} dump;

/* Parses a dump held in buf (modified in place; keep it while d is
 * used) into d (zeroed first): the number of records, 0 if it is no
 * goroutine dump. */
int analyze_parse(char *buf, dump *d);
/* Whether a state is a wait (not running, runnable, syscall, unknown). */
bool analyze_blocking_state(const char *s);
/* A file's (or "-": standard input's) contents, NUL-terminated, or NULL
 * with errno set. */
char *analyze_read(const char *path, size_t *len);

/* fleet.c: `leash analyze` over several sources (files, directories,
 * http:// endpoints); EXIT_* */
int fleet_analyze(const char *const *src, int nsrc, bool json, long crowd,
                  int timeout_ms);
/* Fetches url ("http://host:port[/path]") into a malloc'd,
 * NUL-terminated buffer: EXIT_OK, or another EXIT_* with the reason in
 * err. Without a path: leash's dump (/debug/leash?format=text), or Go's
 * goroutine stacks (/debug/pprof/goroutine?debug=2) from a server
 * without it. */
int fleet_fetch(const char *url, int timeout_ms, char **buf, size_t *len,
                char *err, size_t errn);

#endif /* LEASH_CLI_ANALYZE_H */
