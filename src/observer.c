/* SPDX-License-Identifier: MIT */
/*
 * observer.c — the core's side of the observer (observer.h): the flags
 * the hot paths read inline before calling a hook. The layer above sets
 * them (leash_trace_start, leash_set_block_profile_rate,
 * leash_set_mutex_profile_fraction) and defines observer_impl.
 */
#include "internal.h"

_Atomic int trace_on;           /* TRACE: observer_impl.trace_* */
_Atomic int prof_wait_on;       /* g_wait_begin/g_wait_end: .wait_end */
_Atomic int64_t prof_mutex_rate; /* g_unlock_event: .unlock */
