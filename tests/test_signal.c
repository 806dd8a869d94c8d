/* SPDX-License-Identifier: MIT */
/*
 * test_signal.c — signals as channels (leash_signal_notify /
 * leash_signal_stop, Go's signal.Notify / Stop):
 *
 *   - SIGUSR1 and SIGTERM raised with kill(getpid()) arrive on the
 *     channel as their numbers, to a coroutine parked on it;
 *   - two channels asking for one signal both get it; a full channel
 *     drops it (non-blocking send) without stalling the other;
 *   - after stop the channel gets nothing and the signal has its old
 *     handling back (here: a handler the test installed before);
 *   - bad input is LEASH_EINVAL;
 *   - the coroutine waiting for signals is no suspect (long wait) while
 *     one waiting as long on a plain channel is.
 *
 * LEASH_TEST_TIMEOUT 60
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_util.h"
#include "diag/debug.h"

#define MS CU_MS

static void setup(void) {
    setenv("LEASH_PROCS", "2", 1);
    setenv("LEASH_SUSPECT_WAIT_MS", "50", 1);
}

static _Atomic int got[4];

static void waiter(void *arg) {
    leash_chan *ch = arg;
    for (int i = 0; i < 2; i++) {
        int s = 0;
        CU_CHECK_EQ(leash_recv(ch, &s), 0);
        atomic_store(&got[i], s);
    }
}

static int arrive(void *arg) {
    (void)arg;
    leash_chan *ch = leash_chan_make(sizeof(int), 1);
    cr_assert_eq(leash_signal_notify(ch, SIGUSR1, SIGTERM), 0);
    leash_go(waiter, ch, ch);
    leash_sleep(10 * MS); /* parked on it */
    kill(getpid(), SIGUSR1);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&got[0]) != 0, 5000));
    kill(getpid(), SIGTERM); /* its default would end the process */
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&got[1]) != 0, 5000));
    CU_CHECK_EQ(atomic_load(&got[0]), SIGUSR1);
    CU_CHECK_EQ(atomic_load(&got[1]), SIGTERM);
    CU_CHECK_EQ(leash_signal_stop(ch), 0);
    leash_release(ch);
    return 0;
}

Test(signal, usr1_and_term_arrive_on_the_channel, .init = setup,
     .timeout = 30) {
    cr_assert_eq(leash_run(arrive, NULL), 0);
    CU_ASSERT_CLEAN();
}

static _Atomic int old_handler_ran;
static void old_handler(int s) {
    (void)s;
    atomic_fetch_add(&old_handler_ran, 1);
}

static int two_and_stop(void *arg) {
    (void)arg;
    leash_chan *a = leash_chan_make(sizeof(int), 4);
    leash_chan *b = leash_chan_make(sizeof(int), 1);
    CU_CHECK_EQ(leash_signal_notify(a, SIGUSR2, 0), 0); /* explicit 0 too */
    CU_CHECK_EQ(leash_signal_notify(b, SIGUSR2), 0);
    int s = 0;
    for (int i = 0; i < 3; i++) {
        kill(getpid(), SIGUSR2);
        CU_CHECK(CU_WAIT_UNTIL(leash_chan_len(a) == i + 1, 5000));
    }
    CU_CHECK_EQ(leash_chan_len(b), 1); /* the later ones were dropped */
    CU_CHECK_EQ(leash_try_recv(b, &s), 0);
    CU_CHECK_EQ(s, SIGUSR2);
    for (int i = 0; i < 3; i++) {
        s = 0;
        CU_CHECK_EQ(leash_try_recv(a, &s), 0);
        CU_CHECK_EQ(s, SIGUSR2);
    }
    /* Stop one: the other still gets it. Stop both: the old handler. */
    CU_CHECK_EQ(leash_signal_stop(a), 0);
    kill(getpid(), SIGUSR2);
    CU_CHECK(CU_WAIT_UNTIL(leash_chan_len(b) == 1, 5000));
    CU_CHECK_EQ(leash_chan_len(a), 0);
    CU_CHECK_EQ(atomic_load(&old_handler_ran), 0);
    CU_CHECK_EQ(leash_signal_stop(b), 0);
    CU_CHECK_EQ(leash_signal_stop(b), 0); /* not registered: no-op */
    kill(getpid(), SIGUSR2);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&old_handler_ran) == 1, 5000));
    leash_sleep(20 * MS);
    CU_CHECK_EQ(leash_chan_len(a), 0);
    CU_CHECK_EQ(leash_chan_len(b), 1);
    /* Bad input. */
    leash_chan *wrong = leash_chan_make(sizeof(int64_t), 1);
    CU_CHECK_EQ(leash_signal_notify(wrong, SIGUSR1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify(a, SIGKILL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify(a, SIGSEGV), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify(a, SIGURG), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify(a, 9999), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify(a, -3), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify_list(a, 0), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_notify(NULL, SIGUSR1), LEASH_EINVAL);
    CU_CHECK_EQ(leash_signal_stop((leash_chan *)(void *)&s), LEASH_EINVAL);
    leash_release(wrong);
    leash_release(a);
    leash_release(b);
    return 0;
}

Test(signal, two_channels_drop_when_full_and_stop_restores, .init = setup,
     .timeout = 30) {
    signal(SIGUSR2, old_handler);
    cr_assert_eq(leash_run(two_and_stop, NULL), 0);
    CU_ASSERT_CLEAN();
}

static void plain_waiter(void *arg) {
    int v;
    leash_recv((leash_chan *)arg, &v);
}

static int not_a_suspect(void *arg) {
    (void)arg;
    leash_chan *sig = leash_chan_make(sizeof(int), 1);
    leash_chan *plain = leash_chan_make(sizeof(int), 0);
    CU_CHECK_EQ(leash_signal_notify(sig, SIGUSR1), 0);
    leash_go(plain_waiter, sig, sig);
    leash_go(plain_waiter, plain, plain);
    leash_sleep(200 * MS); /* both past LEASH_SUSPECT_WAIT_MS=50 */
    dbg_vitals v;
    CU_CHECK_EQ(dbg_vitals_get(&v), 0);
    CU_CHECK_EQ(v.suspect_kind[DBG_SUS_LONG_WAIT], 1); /* the plain one */
    CU_CHECK_EQ(v.suspects, 1);
    kill(getpid(), SIGUSR1);
    int x = 1;
    leash_send(plain, &x);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    leash_signal_stop(sig);
    leash_release(sig);
    leash_release(plain);
    return 0;
}

Test(signal, the_signal_waiter_is_no_suspect, .init = setup, .timeout = 30) {
    cr_assert_eq(leash_run(not_a_suspect, NULL), 0);
    CU_ASSERT_CLEAN();
}
