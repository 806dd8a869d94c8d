/* SPDX-License-Identifier: MIT */
/* A user's program built with a sanitizer (tests/install/run.sh, steps
 * tsan and asan): coroutines on several workers (LEASH_PROCS=2) pass
 * values by copy and heap buffers by pointer over an unbuffered and a
 * buffered channel. Against libleash-tsan.a every hand-over is a
 * happens-before edge TSan sees; against the plain library it is not. */
#include <leash.h>
#include <stdio.h>
#include <stdlib.h>

enum { PRODUCERS = 4, CONSUMERS = 2, PER_PRODUCER = 300, WORDS = 8 };

typedef struct {
    int words[WORDS]; /* copied through the channel */
    int *heap;        /* written by the sender, read and freed by the receiver */
} msg;

static void producer(void *arg) {
    leash_chan *ch = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        msg m;
        m.heap = malloc(WORDS * sizeof(int));
        if (!m.heap)
            abort();
        for (int w = 0; w < WORDS; w++)
            m.words[w] = m.heap[w] = i + w;
        if (leash_send(ch, &m) != 0)
            abort();
        if (i % 16 == 0)
            leash_yield();
    }
}

static leash_chan *results;

static void consumer(void *arg) {
    leash_chan *ch = arg;
    long sum = 0;
    for (int i = 0; i < PRODUCERS * PER_PRODUCER / CONSUMERS; i++) {
        msg m;
        if (leash_recv(ch, &m) != 0)
            abort();
        for (int w = 0; w < WORDS; w++) {
            if (m.words[w] != m.heap[w])
                abort();
            sum += m.words[w];
            m.heap[w] = -1;
        }
        free(m.heap);
    }
    leash_send(results, &sum);
}

static int chanpass_main(void *arg) {
    (void)arg;
    results = leash_chan_make(sizeof(long), 2 * CONSUMERS);
    leash_chan *chans[2] = {leash_chan_make(sizeof(msg), 0),
                            leash_chan_make(sizeof(msg), 4)};
    for (int c = 0; c < 2; c++) {
        for (int p = 0; p < PRODUCERS; p++)
            leash_go(producer, chans[c], chans[c]);
        for (int k = 0; k < CONSUMERS; k++)
            leash_go(consumer, chans[c], chans[c], results);
    }
    long total = 0;
    for (int k = 0; k < 2 * CONSUMERS; k++) {
        long s;
        if (leash_recv(results, &s) != 0)
            return 1;
        total += s;
    }
    leash_release(chans[0]);
    leash_release(chans[1]);
    leash_release(results);
    /* Each producer sends sum over i of (WORDS*i + 0+1+..+WORDS-1). */
    long want = 2L * PRODUCERS *
                (WORDS * (long)PER_PRODUCER * (PER_PRODUCER - 1) / 2 +
                 (long)PER_PRODUCER * WORDS * (WORDS - 1) / 2);
    printf("chanpass: workers=%d total=%ld want=%ld\n", leash_num_workers(), total, want);
    return total == want ? 0 : 1;
}

int main(void) {
    return leash_run(chanpass_main, NULL);
}
