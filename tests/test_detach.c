/* SPDX-License-Identifier: MIT */
/*
 * test_detach.c — references owned by data structures (leash_ref_detach,
 * leash_ref_adopt, leash_release_detached), and what the exit check says
 * about them and about dropped channels (tests/progs/service_leaks.c).
 *
 *   - a channel in a shared struct outlives its creator's return, is used
 *     by several coroutines, and the teardown releases it;
 *   - adopting makes it the adopter's own reference again;
 *   - misuse is LEASH_EINVAL (detach without a reference, adopt or
 *     release with none detached, not an object), never a crash;
 *   - a detached reference keeps the orphan proof off under
 *     LEASH_ORPHANS=wake (anyone who reaches the struct can still act);
 *   - LEASH_LEAKCHECK=1 names a detached object never released, with its
 *     creation site and the detach call; a channel dropped by several
 *     returning holders is listed once.
 *
 * LEASH_TEST_TIMEOUT 120
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS

/* A shared structure owning a channel, as a client table would. */
typedef struct {
    leash_chan *inbox;
    _Atomic int made;
    _Atomic int sent, got;
} client;

static void make_client(void *arg) {
    client *c = arg;
    c->inbox = leash_chan_make(sizeof(int), 0);
    CU_CHECK_EQ(leash_ref_detach(c->inbox), 0);
    CU_CHECK_EQ(leash_ref_detached(c->inbox), 1);
    atomic_store(&c->made, 1);
    /* returns: the detached reference stays */
}

static void sender(void *arg) {
    client *c = arg;
    for (int i = 0; i < 20; i++) {
        int v = i;
        CU_CHECK_EQ(leash_send(c->inbox, &v), 0); /* borrowed from c */
        atomic_fetch_add(&c->sent, 1);
    }
}

static void receiver(void *arg) {
    client *c = arg;
    for (int i = 0; i < 30; i++) {
        int v;
        CU_CHECK_EQ(leash_recv(c->inbox, &v), 0);
        atomic_fetch_add(&c->got, 1);
    }
}

static int struct_owns_channel(void *arg) {
    (void)arg;
    client c = {0};
    leash_go(make_client, &c);
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&c.made), 5000));
    leash_sleep(5 * MS); /* the creator has returned */
    int64_t ids[5];
    for (int i = 0; i < 3; i++)
        ids[i] = leash_go(sender, &c);
    for (int i = 0; i < 2; i++)
        ids[3 + i] = leash_go(receiver, &c);
    (void)ids;
    CU_CHECK(CU_WAIT_UNTIL(atomic_load(&c.got) == 60, 5000));
    CU_CHECK_EQ(atomic_load(&c.sent), 60);
    CU_CHECK_EQ(leash_chan_len(c.inbox), 0); /* still alive */
    /* Teardown: not the creator, holds no reference of its own. */
    CU_CHECK_EQ(leash_release_checked(c.inbox), LEASH_EINVAL);
    CU_CHECK_EQ(leash_release_detached(c.inbox), 0);
    CU_CHECK_EQ(leash_chan_len(c.inbox), LEASH_EINVAL); /* gone */
    CU_CHECK_EQ(leash_release_detached(c.inbox), LEASH_EINVAL);
    return 0;
}

Test(detach, a_struct_owns_a_channel_past_its_creator, .timeout = 30) {
    cr_assert_eq(leash_run(struct_owns_channel, NULL), 0);
    CU_ASSERT_CLEAN();
}

static int adopt_and_misuse(void *arg) {
    (void)arg;
    leash_chan *c = leash_chan_make(sizeof(int), 1);
    CU_CHECK_EQ(leash_ref_adopt(c), LEASH_EINVAL);          /* none detached */
    CU_CHECK_EQ(leash_release_detached(c), LEASH_EINVAL);
    CU_CHECK_EQ(leash_ref_detach(c), 0);
    CU_CHECK_EQ(leash_ref_detach(c), LEASH_EINVAL); /* no reference left */
    CU_CHECK_EQ(leash_release_checked(c), LEASH_EINVAL);
    CU_CHECK_EQ(leash_ref_adopt(c), 0);
    CU_CHECK_EQ(leash_ref_detached(c), 0);
    CU_CHECK_EQ(leash_ref_adopt(c), LEASH_EINVAL);
    int v = 1;
    CU_CHECK_EQ(leash_send(c, &v), 0);
    CU_CHECK_EQ(leash_release_checked(c), 0); /* the adopter's own now */
    CU_CHECK_EQ(leash_chan_len(c), LEASH_EINVAL);
    CU_CHECK_EQ(leash_ref_detach(NULL), LEASH_EINVAL);
    CU_CHECK_EQ(leash_ref_adopt((void *)0x1000), LEASH_EINVAL);
    CU_CHECK_EQ(leash_release_detached(&v), LEASH_EINVAL);
    CU_CHECK_EQ(leash_ref_detached(NULL), LEASH_EINVAL);
    /* Contexts too; the background one is immortal (a no-op). */
    leash_ctx *x = leash_ctx_with_cancel(leash_ctx_background());
    CU_CHECK_EQ(leash_ref_detach(x), 0);
    CU_CHECK_EQ(leash_ctx_err(x), 0); /* not cancelled: still referenced */
    CU_CHECK_EQ(leash_release_detached(x), 0);
    CU_CHECK_EQ(leash_ref_detach(leash_ctx_background()), 0);
    return 0;
}

Test(detach, adopt_and_bad_input, .timeout = 30) {
    cr_assert_eq(leash_run(adopt_and_misuse, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------- no false proof (wake mode) */

/* Only a plain thread (which the proof cannot walk) and the detached
 * reference can still reach the channel once the helper renounces its
 * reference: every coroutine left is the receiver, stuck on it. A proof
 * there would wake the receiver with LEASH_EORPHANED. */
static client shared;
static _Atomic int recv_rc = 1, recv_val = -1;

static void waiter(void *arg) {
    (void)arg;
    leash_retain(shared.inbox);
    int v = -1;
    atomic_store(&recv_rc, leash_recv(shared.inbox, &v));
    atomic_store(&recv_val, v);
    leash_release(shared.inbox);
}

static void renouncer(void *arg) {
    (void)arg;
    leash_retain(shared.inbox);
    leash_sleep(20 * MS); /* the waiter has parked */
    leash_release(shared.inbox);
}

static void wake_env(void) {
    setenv("LEASH_ORPHANS", "wake", 1);
    setenv("LEASH_PROCS", "2", 1);
}

Test(detach, no_false_proof_under_orphans_wake, .init = wake_env,
     .timeout = 30) {
    leash_go(make_client, &shared);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&shared.made), 5000));
    leash_sleep(5 * MS);
    leash_go(waiter, NULL);
    leash_go(renouncer, NULL);
    leash_sleep(80 * MS); /* the release ran the check long ago */
    int v = 42;
    cr_assert_eq(leash_send(shared.inbox, &v), 0); /* this plain thread */
    cr_assert(CU_WAIT_UNTIL(atomic_load(&recv_rc) != 1, 5000));
    cr_expect_eq(atomic_load(&recv_rc), 0, "receiver got %d",
                 atomic_load(&recv_rc));
    cr_expect_eq(atomic_load(&recv_val), 42);
    FILE *f = fopen("/dev/null", "w");
    cr_expect_eq(leash_leak_dump(f, LEASH_DUMP_LEASH), 0);
    fclose(f);
    cr_expect_eq(leash_release_detached(shared.inbox), 0);
    CU_ASSERT_CLEAN();
}

/* A dump names a channel's detached references. */
static void parked_on(void *arg) {
    int v;
    leash_recv((leash_chan *)arg, &v);
}

Test(detach, dumps_show_detached_references, .timeout = 30) {
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    leash_go(parked_on, c);
    cr_assert_eq(leash_ref_detach(c), 0);
    leash_sleep(20 * MS);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    leash_dump(f, LEASH_DUMP_LEASH);
    fclose(f);
    cr_expect(du_match(buf, "waiting on chan#[0-9]+ made at [^\n]*test_detach"
                            "\\.c:[0-9]+ [^\n]*, 1 detached\\)"),
              "%s", buf);
    free(buf);
    int v = 1;
    leash_send(c, &v);
    leash_release_detached(c);
}

/* ------------------------------------------------- LEASH_LEAKCHECK=1 */


static char *run_leaks(const char *mode, int *st) {
    const char *env[] = {"LEASH_LEAKCHECK=1", "LEASH_PROCS=2",
                         "LEASH_LEAKCHECK_TIMEOUT_MS=200", NULL};
    const char *args[] = {mode, NULL};
    char *out = NULL;
    bool to = false;
    *st = cu_run_prog("service_leaks", args, env, &out, 60, &to);
    cr_assert(!to, "%s timed out:\n%s", mode, out);
    return out;
}

Test(detach_leakcheck, a_detached_object_never_released_is_named,
     .timeout = 60) {
    int st;
    char *out = run_leaks("detached", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 23, "status %#x:\n%s", st,
              out);
    char *made = site_of(out, "detached"), *det = site_of(out, "detach");
    cr_assert(made && det, "%s", out);
    char re[1024], e1[300], e2[300];
    snprintf(re, sizeof re,
             "\n  channel#[0-9]+ created at %s( in [a-z_]+)? by goroutine [0-9]+ \\(1 "
             "reference\\(s\\) left\\)\n    1 detached reference\\(s\\) never "
             "released: detached by goroutine [0-9]+ at %s ",
             du_re_escape(made, e1, sizeof e1), du_re_escape(det, e2, sizeof e2));
    cr_expect(du_match(out, re), "want /%s/:\n%s", re, out);
    free(made);
    free(det);
    free(out);
    out = run_leaks("tidy", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strstr(out, "leash:"),
              "status %#x:\n%s", st, out);
    free(out);
}

Test(detach_leakcheck, a_channel_dropped_by_several_holders_is_listed_once,
     .timeout = 60) {
    int st;
    char *out = run_leaks("dropped", &st);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 23, "status %#x:\n%s", st,
              out);
    char *s = site_of(out, "dropped");
    cr_assert_not_null(s, "%s", out);
    char key[400];
    /* "created at FILE:LINE[ in FUNC], owned by ...": once. */
    snprintf(key, sizeof key, "created at %s", s);
    const char *p = strstr(out, key);
    cr_expect(p, "not listed:\n%s", out);
    cr_expect(p && !strstr(p + 1, key), "listed more than once:\n%s", out);
    cr_expect(strstr(out, "LEASH_LEAKCHECK: 1 leak(s) found"), "%s", out);
    free(s);
    free(out);
}
