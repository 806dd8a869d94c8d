/* SPDX-License-Identifier: MIT */
/*
 * test_objects.c — object references and validation at the API edge:
 * a release by a coroutine that holds no reference, and pointers that are
 * not leash objects at all (0x1000, a PROT_NONE or unmapped page, stack
 * memory that happens to hold the magic).
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core_util.h"

/* ------------------------------------------------------ double release */

typedef struct {
    leash_chan *ch;   /* the child holds its own reference (handed) */
    leash_chan *go;   /* main signals: it has released twice */
    int send_rc;
} holder_job;

static void holder(void *arg) {
    holder_job *j = arg;
    leash_recv_n(j->go, NULL, 0);
    int v = 42;
    j->send_rc = leash_try_send(j->ch, &v);
}

/* Main releases twice while its child holds a reference of its own: the
 * second release must be refused, not take the child's reference (which
 * would free the channel, let a new channel reuse its slot and put the
 * child's send into that new channel). */
static int double_release(void *arg) {
    (void)arg;
    holder_job j = {.ch = leash_chan_make(sizeof(int), 1),
                    .go = leash_chan_make(0, 0)};
    CU_CHECK(leash_go(holder, &j, j.ch, j.go) > 0);
    CU_CHECK_EQ(leash_release_checked(j.ch), 0);
    CU_CHECK_EQ(leash_release_checked(j.ch), LEASH_EINVAL);
    leash_chan *other = leash_chan_make(sizeof(int), 1); /* may reuse a slot */
    CU_CHECK_EQ(leash_close(j.go), 0);
    CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000);
    CU_CHECK_EQ(j.send_rc, 0);
    CU_CHECK_EQ(leash_chan_len(other), 0); /* the send did not land here */
    leash_release(other);
    leash_release(j.go);
    return 0;
}

Test(release, double_release_keeps_the_other_holders_reference,
     .timeout = 30) {
    cr_assert_eq(leash_run(double_release, NULL), 0);
    CU_ASSERT_CLEAN();
}

static int release_unheld(void *arg) {
    (void)arg;
    leash_chan *ch = leash_chan_make(sizeof(int), 1);
    holder_job j = {.ch = ch, .go = leash_chan_make(0, 0)};
    CU_CHECK(leash_go(holder, &j, j.go) > 0); /* borrows ch, holds none */
    leash_close(j.go);
    CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000);
    CU_CHECK_EQ(j.send_rc, 0);
    CU_CHECK_EQ(leash_chan_len(ch), 1);
    CU_CHECK_EQ(leash_release_checked(ch), 0);
    leash_release(j.go);
    return 0;
}

Test(release, borrower_send_then_owner_release, .timeout = 30) {
    cr_assert_eq(leash_run(release_unheld, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* A plain thread that never took a reference (it has no g at all)
 * cannot drop another thread's. */
static void *release_from_thread(void *ch) {
    return (void *)(intptr_t)leash_release_checked(ch);
}

Test(release, thread_without_reference_is_refused, .timeout = 30) {
    leash_chan *ch = leash_chan_make(sizeof(int), 1); /* this thread's */
    pthread_t t;
    void *rc;
    cr_assert_eq(pthread_create(&t, NULL, release_from_thread, ch), 0);
    pthread_join(t, &rc);
    cr_expect_eq((intptr_t)rc, LEASH_EINVAL);
    int v = 1;
    cr_expect_eq(leash_try_send(ch, &v), 0, "the channel was freed");
    cr_expect_eq(leash_release_checked(ch), 0);
}

/* ------------------------------------------------------- wild pointers */

/* Pointers that are not leash objects and cannot even be read: each call
 * must return LEASH_EINVAL, not fault. */
static void expect_rejected(void *p, const char *what) {
    int v = 1;
    cr_expect_eq(leash_send((leash_chan *)p, &v), LEASH_EINVAL, "send %s", what);
    cr_expect_eq(leash_try_recv((leash_chan *)p, &v), LEASH_EINVAL,
                 "try_recv %s", what);
    cr_expect_eq(leash_close((leash_chan *)p), LEASH_EINVAL, "close %s", what);
    cr_expect_eq(leash_release_checked(p), LEASH_EINVAL, "release %s", what);
    leash_release(p);
    cr_expect_null(leash_retain(p), "retain %s", what);
    cr_expect_eq(leash_chan_len((leash_chan *)p), LEASH_EINVAL, "len %s", what);
    cr_expect_eq(leash_ctx_err((leash_ctx *)p), LEASH_EINVAL, "ctx_err %s",
                 what);
}

Test(wild, low_address_is_einval, .timeout = 30) {
    expect_rejected((void *)0x1000, "0x1000");
}

Test(wild, prot_none_page_is_einval, .timeout = 30) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    expect_rejected(p, "PROT_NONE page");
    expect_rejected(p + 64, "PROT_NONE page + 64");
    munmap(p, (size_t)pg);
}

Test(wild, unmapped_and_non_object_memory_is_einval, .timeout = 30) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    munmap(p, (size_t)pg); /* now nothing is mapped there */
    expect_rejected(p, "unmapped page");
    uint64_t junk[32] = {0x4c455348u, 0x4c455348u}; /* a magic on the stack */
    expect_rejected(junk, "stack memory holding the magic");
    /* Still a live object afterwards. */
    leash_chan *ch = leash_chan_make(sizeof(int), 1);
    int v = 7;
    cr_expect_eq(leash_send(ch, &v), 0);
    cr_expect_eq(leash_chan_len(ch), 1);
    cr_expect_eq(leash_release_checked(ch), 0);
    cr_expect_eq(leash_chan_len(ch), LEASH_EINVAL, "stale pointer");
}
