/* SPDX-License-Identifier: MIT */
/*
 * chan_harness.h — the harness shared by test_chan.c, test_select.c and
 * test_gochan.c: CHECK() records failures from coroutines and threads,
 * finish() asserts on the test thread; bounded waits and a watchdog.
 * Define _GNU_SOURCE before including it. Not every file uses every
 * helper, hence the pragma.
 */
#ifndef LEASH_TESTS_CHAN_HARNESS_H
#define LEASH_TESTS_CHAN_HARNESS_H

#pragma GCC diagnostic ignored "-Wunused-function"
#include <unistd.h>

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leash.h"
#include "internal.h" /* struct leash_chan: waiter count (white-box) */

/* ------------------------------------------------------------ harness */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SAN 1
#endif
#endif
#ifndef SAN
#define SAN 0
#endif
#define TMO(s) ((double)(s) * (SAN ? 6 : 1)) /* Criterion .timeout */
#define MS (1000000LL)
#define SEC (1000000000LL)

#include "chan_checks.h"

static void run_main(int (*fn)(void *), void *arg) {
#include "chan_waits.h"

#endif /* LEASH_TESTS_CHAN_HARNESS_H */
