/* SPDX-License-Identifier: MIT */
/*
 * nilchan_main.c — main blocked on a NULL channel: Go's deadlock message.
 *
 * The write-up's first nil-channel program, in main:
 *
 *     func main() {
 *         var ch chan struct{}
 *         ch <- struct{}{}
 *         <-ch
 *     }
 *
 * Main blocks forever in the send and nothing else can run: leash's
 * deadlock detector prints Go's
 *
 *     fatal error: all goroutines are asleep - deadlock!
 *
 * with every coroutine's stack (Go's debug=2 format), and exits with
 * status 2, as Go does. LEASH_DEADLOCK=0 turns the detector off (the
 * program then hangs, as a C program would).
 *
 * Run:   make demo SCENARIO=nilchan_main
 * Exit:  2
 */
#include <leash.h>

#include <stdio.h>

static int run(void *arg)
{
    (void)arg;
    leash_chan *ch = NULL;           /* var ch chan struct{} */
    printf("main: sending on a nil channel...\n");
    fflush(stdout);
    leash_send_n(ch, NULL, 0);       /* ch <- struct{}{}: blocks forever */
    leash_recv_n(ch, NULL, 0);       /* <-ch: never reached */
    printf("main: unreachable\n");
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
