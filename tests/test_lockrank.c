/* SPDX-License-Identifier: MIT */
/*
 * test_lockrank.c — the lock-order checker of LEASH_LOCKRANK builds
 * (src/lockrank.h): an acquisition out of rank order, two locks of one
 * class out of address order, a lock of no rank and the release of a lock
 * not held each abort with a message naming both locks; the orders the
 * runtime uses (rank order, channels in address order, a try-lock at any
 * rank) pass. In a build without LEASH_LOCKRANK every test is disabled:
 * the checks compile to nothing there.
 *
 * The whole runtime runs under the checker in `make test` (the clang and
 * TSan builds); these tests show it is switched on and can fail.
 */
#include <criterion/criterion.h>
#include <signal.h>

#include "internal.h"

#ifdef LEASH_LOCKRANK
#define RANKED 1
#else
#define RANKED 0
#endif

static llock chan_like_a, obj_lock = LLOCK_INIT(LR_OBJ);
static llock shard_lock = LLOCK_INIT(LR_SHARD);
static slock chans[2];

static void init_chans(void) {
    slock_init(&chans[0], LR_CHAN);
    slock_init(&chans[1], LR_CHAN);
}

Test(lockrank, rank_order_passes, .disabled = !RANKED) {
    init_chans();
    slock_acquire(&chans[0]);
    slock_acquire(&chans[1]); /* address order */
    llock_acquire(&shard_lock);
    llock_acquire(&obj_lock);
    cr_assert_eq(lockrank_held(), 4);
    llock_release(&shard_lock); /* out of acquisition order: fine */
    llock_release(&obj_lock);
    slock_release(&chans[0]);
    slock_release(&chans[1]);
    cr_assert_eq(lockrank_held(), 0);
}

Test(lockrank, try_lock_at_any_rank_passes, .disabled = !RANKED) {
    init_chans();
    llock_acquire(&shard_lock);
    /* snapshot.c's zombie channels: a channel try-locked under a shard. */
    cr_assert(slock_try(&chans[0]));
    slock_release(&chans[0]);
    llock_release(&shard_lock);
}

/* The lock-order inversion of issue 13: a dump took a registry shard and
 * then a channel, while the channel path takes them the other way. */
Test(lockrank, channel_under_shard_aborts,
    .signal = SIGABRT, .disabled = !RANKED) {
    init_chans();
    llock_acquire(&shard_lock);
    slock_acquire(&chans[0]);
}

Test(lockrank, channels_out_of_address_order_abort,
    .signal = SIGABRT, .disabled = !RANKED) {
    init_chans();
    slock_acquire(&chans[1]);
    slock_acquire(&chans[0]);
}

Test(lockrank, lower_rank_under_a_try_locked_higher_aborts,
     .signal = SIGABRT, .disabled = !RANKED) {
    cr_assert(llock_try(&obj_lock));
    llock_acquire(&shard_lock); /* would wait under OBJ: a cycle */
}

Test(lockrank, a_lock_with_no_rank_aborts,
    .signal = SIGABRT, .disabled = !RANKED) {
    llock_acquire(&chan_like_a); /* zeroed, never given a rank */
}

Test(lockrank, releasing_a_lock_not_held_aborts,
    .signal = SIGABRT, .disabled = !RANKED) {
    llock_release(&obj_lock);
}

Test(lockrank, the_same_lock_twice_aborts,
    .signal = SIGABRT, .disabled = !RANKED) {
    llock_acquire(&shard_lock);
    llock_acquire(&shard_lock); /* would spin for ever */
}
