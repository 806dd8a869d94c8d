/* SPDX-License-Identifier: MIT */
/*
 * recv_nosender_fixed.c — fix for recv_nosender.c: close the channel on
 * every path (Go's `defer close(results)`).
 *
 * A receive on a closed, drained channel returns at once (LEASH_ECLOSED,
 * Go's `r, ok := <-results` with ok false), so the logger returns whether
 * the search succeeded or not. The count stays at 1.
 *
 * Run:   make demo SCENARIO=recv_nosender_fixed
 * Exit:  0 (also under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include "example.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char text[32];
} result;

static void logger(void *arg)
{
    leash_chan *results = arg;
    result r;
    if (leash_recv(results, &r) == 0)
        printf("  logged: %s\n", r.text);
    else
        printf("  logger: no result (channel closed)\n");
}

static int search(const char *term, result *r)
{
    leash_sleep(1000 * 1000);
    if (!*term)
        return -1;
    snprintf(r->text, sizeof r->text, "results for '%s'", term);
    return 0;
}

static int handle(const char *term)
{
    leash_chan *results = leash_chan_make(sizeof(result), 0);
    leash_go(logger, results, results);
    result r;
    int rc = search(term, &r);
    if (rc == 0)
        leash_send(results, &r);
    leash_close(results); /* defer close(results): on every path */
    leash_release(results);
    return rc;
}

static int run(void *arg)
{
    (void)arg;
    leash_snapshot *snap = leash_snapshot_take();
    const char *terms[] = {"go", "", "leash", ""};
    for (int i = 0; i < 4; i++) {
        int rc = handle(terms[i]);
        leash_sleep(50 * 1000 * 1000);
        printf("handle(\"%s\") = %d, #goroutines: %zu\n", terms[i], rc,
               leash_num_coroutines());
    }

    report_fixed(snap, NULL);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
