/* SPDX-License-Identifier: MIT */
/* A user's program that happens to use names leash uses internally: it
 * must link against both the static and the shared library, and leash must
 * keep using its own functions, not these. */
#include <leash.h>
#include <stdio.h>

int S;
int timer_add(int x) { return x + 1; }
int futex_wait(int x) { return x * 2; }
int netpoll(void) { return 7; }
int lmalloc(void) { return 5; }

static void producer(void *arg) {
    leash_chan *ch = arg;
    for (int i = 1; i <= 3; i++) {
        leash_sleep(1000 * 1000); /* timers and futexes inside leash */
        leash_send(ch, &i);
    }
    leash_close(ch);
}

static int clash_main(void *arg) {
    (void)arg;
    leash_chan *ch = leash_chan_make(sizeof(int), 1);
    leash_go(producer, ch);
    int v, sum = 0;
    while (leash_recv(ch, &v) == 0)
        sum += v;
    leash_release(ch);
    S = sum + timer_add(0) + futex_wait(1) + netpoll() + lmalloc();
    return 0;
}

int main(void) {
    int rc = leash_run(clash_main, NULL);
    printf("clash: rc=%d S=%d\n", rc, S); /* 6 + 1 + 2 + 7 + 5 = 21 */
    return rc == 0 && S == 21 ? 0 : 1;
}
