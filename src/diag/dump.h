/* SPDX-License-Identifier: MIT */
/*
 * dump.h — what the dump formats share (dump.c) and each format's writer,
 * for diag_format (dump.c): dump_go.c (debug=0, 1 and 2), dump_leash.c
 * (debug=3: diag_print_leash, in diag.h) and dump_json.c (debug=4). The
 * rest of the diagnostics calls diag_write or diag_format (diag.h).
 */
#ifndef LEASH_DIAG_DUMP_H
#define LEASH_DIAG_DUMP_H

#include "diag.h"

#include <stdio.h>

/* The frames of d's stack a dump shows (diag_trim_frames). */
INTERNAL int diag_visible_frames(const dgor *d, bool hide_api, int *first);
/* d's state as Go prints it in a goroutine's header: the wait reason of
 * a waiting one. */
INTERNAL const char *diag_state_str(const dgor *d);
/* One machine frame, two lines per source level, in Go's form (go) or
 * leash's. */
INTERNAL void diag_print_frame(FILE *out, uintptr_t pc, bool go);

/* dump_go.c. debug=0: the goroutine profile as pprof (profile: its name,
 * "goroutine" or "goroutineleak"). */
INTERNAL int diag_write_go_pprof(FILE *out, const dsnap *s, const bool *sel,
                                 const char *profile);
/* debug=1: Go's aggregated goroutine profile text. */
INTERNAL int diag_print_go_profile(FILE *out, const dsnap *s,
                                   const bool *sel, const char *name);
/* debug=2: Go's runtime.Stack(all) text; marked: leaked goroutines say so
 * in their headers (the goroutineleak profile). */
INTERNAL void diag_print_go_stacks(FILE *out, const dsnap *s,
                                   const bool *sel, bool marked);

/* dump_json.c. debug=4: the JSON document. */
INTERNAL void diag_print_json(FILE *out, const dsnap *s, const bool *sel);

#endif /* LEASH_DIAG_DUMP_H */
