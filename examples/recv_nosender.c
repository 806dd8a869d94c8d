/* SPDX-License-Identifier: MIT */
/*
 * recv_nosender.c — scenario 2 of the write-up: a receive that no sender
 * will ever complete (openmymind.net/Leaking-Goroutines).
 *
 * handle() starts a logger coroutine that waits for the search result,
 * then searches. An empty term makes the search fail and handle() skips
 * the send: nobody sends the result and nobody closes the channel, so the
 * logger waits in leash_recv forever. Each failed request leaks one
 * coroutine: the count goes 1, 2, 2, 3.
 *
 * leash proves it when handle() drops its reference: only the logger,
 * blocked on the channel, still holds one ("chan receive", orphaned).
 *
 * Fix: recv_nosender_fixed.c closes the channel on every path.
 *
 * Run:   make demo SCENARIO=recv_nosender
 * Exit:  0 (23 under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include <stdio.h>
#include <string.h>

typedef struct {
    char text[32];
} result;

/* go func() { r := <-results; log(r) }() */
static void logger(void *arg)
{
    leash_chan *results = arg;
    result r;
    if (leash_recv(results, &r) == 0) /* blocks forever after an error */
        printf("  logged: %s\n", r.text);
}

/* A backend call: 1 ms, then a result, or an error for an empty term. */
static int search(const char *term, result *r)
{
    leash_sleep(1000 * 1000);
    if (!*term)
        return -1; /* "invalid request" */
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
        leash_send(results, &r); /* on an error nothing is sent, nothing closed */
    leash_release(results);
    return rc;
}

static int run(void *arg)
{
    (void)arg;
    const char *terms[] = {"go", "", "leash", ""};
    for (int i = 0; i < 4; i++) {
        int rc = handle(terms[i]);
        leash_sleep(50 * 1000 * 1000); /* let the logger finish if it can */
        printf("handle(\"%s\") = %d, #goroutines: %zu\n", terms[i], rc,
               leash_num_coroutines());
    }

    printf("\nleash_leak_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    int n = leash_leak_dump(stdout, LEASH_DUMP_LEASH);
    printf("%d coroutine(s) proven leaked\n", n);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
