/* SPDX-License-Identifier: MIT */
/*
 * nilchan.c — scenario 3 of the write-up: nil channels.
 *
 * A send on, or a receive from, a NULL channel blocks forever, exactly
 * like Go's nil channel:
 *
 *     var ch chan struct{}
 *     ch <- struct{}{} // blocks forever
 *     <-ch             // blocks forever
 *
 * Here each runs in a coroutine of its own (nilchan_main.c does it in
 * main, where it ends in the deadlock detector). Nothing can ever wake
 * either one, and leash knows it the moment they block: leash_leak_dump
 * lists them as "chan send (nil chan)" and "chan receive (nil chan)".
 *
 * Run:   make demo SCENARIO=nilchan
 * Exit:  0 (23 under LEASH_LEAKCHECK=1)
 */
#include <leash.h>

#include <stdio.h>

static void send_nil(void *arg)
{
    (void)arg;
    leash_chan *ch = NULL;      /* var ch chan struct{} */
    leash_send_n(ch, NULL, 0);  /* ch <- struct{}{} */
}

static void recv_nil(void *arg)
{
    (void)arg;
    leash_chan *ch = NULL;
    leash_recv_n(ch, NULL, 0);  /* <-ch */
}

static int run(void *arg)
{
    (void)arg;
    printf("#goroutines: %zu\n", leash_num_coroutines());
    leash_go(send_nil, NULL);
    leash_go(recv_nil, NULL);
    leash_sleep(10 * 1000 * 1000);
    printf("#goroutines: %zu\n", leash_num_coroutines());

    printf("\nleash_leak_dump(stdout, LEASH_DUMP_LEASH):\n\n");
    int n = leash_leak_dump(stdout, LEASH_DUMP_LEASH);
    printf("%d coroutine(s) proven leaked\n", n);
    return 0;
}

int main(void)
{
    return leash_run(run, NULL);
}
