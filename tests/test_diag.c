/* SPDX-License-Identifier: MIT */
/*
 * test_diag.c — leash_dump and leash_leak_dump in every format.
 *
 *   debug=2  Go's runtime.Stack(all) text: every wait reason, the
 *            `goroutine N [reason]:` header (no minutes for short waits),
 *            `func(...)` / `\tfile:line +0x..` frames, `created by F in
 *            goroutine N` with the leash_go call's file:line;
 *   debug=1  Go's goroutine profile text: `goroutine profile: total N`,
 *            `count @ 0x..` and `#\t0x..\tfunc+0x..\tfile:line` lines,
 *            identical stacks aggregated, `# labels: {...}`;
 *   debug=3  leash's text: exact waits, wait objects, spawn sites;
 *   debug=4  JSON, parsed with a strict reader (diag_util.h);
 *   debug=0  pprof, read back with `go tool pprof -raw` and `-top`
 *            (skipped when Go is not installed).
 * Also: labels in every format, Go's own output for the same scenario
 * (tests/go/queryall.go) compared structurally, the dump on a signal
 * (testprog_diag_sigdump), running and runnable coroutines.
 *
 * Each Criterion test runs in its own process, so every test sets its
 * LEASH_* variables before the runtime starts. Checks on coroutines go
 * through CU_CHECK*; dumps are captured on the main coroutine and judged
 * on the test thread.
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_util.h"
#include "diag_util.h"

#define MS CU_MS
#define NOINLINE __attribute__((noinline))

static void setup_procs(const char *n) { setenv("LEASH_PROCS", n, 1); }

/* Failure messages built on the test thread. */
static char msgbuf[8192];
#define FAILF(...) (snprintf(msgbuf, sizeof msgbuf, __VA_ARGS__), msgbuf)

/* ====================================================== the wait zoo */

/* One coroutine per wait reason, each parked on its own object. */
enum {
    W_SEND, W_RECV, W_SEND_NIL, W_RECV_NIL, W_SELECT, W_SELECT0, W_SLEEP,
    W_IO, W_MUTEX, W_RLOCK, W_WLOCK, W_COND, W_WG, W_SYSCALL, W_SPIN, W_N
};

typedef struct {
    const char *state;  /* du_state's words */
    const char *reason; /* inside Go's brackets */
    const char *func;   /* the coroutine's own function */
    const char *api;    /* the leash_* call it blocks in (top of 1/3/4/0) */
    const char *leak;   /* JSON "leak" */
    const char *suspect;/* JSON "suspect" */
    int64_t id;
    int line;           /* the leash_go call's line */
    const char *creator;/* the function that called leash_go */
} wcase;

static wcase W[W_N] = {
    [W_SEND] = {"waiting:chan send", "chan send", "w_send", "leash_send_n", NULL, NULL, 0, 0, NULL},
    [W_RECV] = {"waiting:chan receive", "chan receive", "w_recv", "leash_recv_n", NULL, NULL, 0, 0, NULL},
    [W_SEND_NIL] = {"waiting:chan send (nil chan)", "chan send (nil chan)", "w_send_nil", "leash_send_n", "nil_chan", NULL, 0, 0, NULL},
    [W_RECV_NIL] = {"waiting:chan receive (nil chan)", "chan receive (nil chan)", "w_recv_nil", "leash_recv_n", "nil_chan", NULL, 0, 0, NULL},
    [W_SELECT] = {"waiting:select", "select", "w_select", "leash_select", NULL, NULL, 0, 0, NULL},
    [W_SELECT0] = {"waiting:select (no cases)", "select (no cases)", "w_select0", "leash_select", "nil_chan", NULL, 0, 0, NULL},
    [W_SLEEP] = {"waiting:sleep", "sleep", "w_sleep", "leash_sleep", NULL, NULL, 0, 0, NULL},
    [W_IO] = {"waiting:IO wait", "IO wait", "w_io", "leash_read", NULL, "io_no_deadline", 0, 0, NULL},
    [W_MUTEX] = {"waiting:sync.Mutex.Lock", "sync.Mutex.Lock", "w_mutex", "leash_mutex_lock", NULL, NULL, 0, 0, NULL},
    [W_RLOCK] = {"waiting:sync.RWMutex.RLock", "sync.RWMutex.RLock", "w_rlock", "leash_rwmutex_rlock", NULL, NULL, 0, 0, NULL},
    [W_WLOCK] = {"waiting:sync.RWMutex.Lock", "sync.RWMutex.Lock", "w_wlock", "leash_rwmutex_lock", NULL, NULL, 0, 0, NULL},
    [W_COND] = {"waiting:sync.Cond.Wait", "sync.Cond.Wait", "w_cond", "leash_cond_wait", NULL, NULL, 0, 0, NULL},
    [W_WG] = {"waiting:sync.WaitGroup.Wait", "sync.WaitGroup.Wait", "w_wg", "leash_waitgroup_wait", NULL, NULL, 0, 0, NULL},
    [W_SYSCALL] = {"waiting:syscall", "syscall", "w_syscall", "leash_blocking", NULL, NULL, 0, 0, NULL},
    [W_SPIN] = {"running", "running", "spin_inner", NULL, NULL, NULL, 0, 0, "spawn_spinner"},
};

static leash_chan *z_send, *z_recv, *z_sel1, *z_sel2;
static int z_io[2], z_sys[2];
static leash_mutex z_mu = LEASH_MUTEX_INIT;
static leash_rwmutex z_rw_w = LEASH_RWMUTEX_INIT; /* main holds it to write */
static leash_rwmutex z_rw_r = LEASH_RWMUTEX_INIT; /* main holds it to read */
static leash_cond z_cv = LEASH_COND_INIT;
static leash_mutex z_cmu = LEASH_MUTEX_INIT;
static leash_waitgroup z_wg = LEASH_WAITGROUP_INIT;
static atomic_int z_spin_stop, z_spin_in;

static const int w_send_decl_line = __LINE__ + 1; /* pprof start_line */
static NOINLINE void w_send(void *a) {
    (void)a;
    int v = 1;
    leash_send(z_send, &v);
}
static NOINLINE void w_recv(void *a) {
    (void)a;
    int v;
    leash_recv(z_recv, &v);
}
static NOINLINE void w_send_nil(void *a) {
    (void)a;
    int v = 1;
    leash_send_n(NULL, &v, sizeof v);
}
static NOINLINE void w_recv_nil(void *a) {
    (void)a;
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}
static NOINLINE void w_select(void *a) {
    (void)a;
    int v;
    leash_case cs[2] = {LEASH_RECV_CASE(z_sel1, &v), LEASH_RECV_CASE(z_sel2, &v)};
    leash_select(cs, 2);
}
static NOINLINE void w_select0(void *a) {
    (void)a;
    leash_select(NULL, 0);
}
static NOINLINE void w_sleep(void *a) {
    (void)a;
    leash_sleep(3600LL * 1000 * MS);
}
static NOINLINE void w_io(void *a) {
    (void)a;
    char b;
    leash_read(z_io[0], &b, 1, -1);
}
static NOINLINE void w_mutex(void *a) {
    (void)a;
    leash_mutex_lock(&z_mu);
    leash_mutex_unlock(&z_mu);
}
static NOINLINE void w_rlock(void *a) {
    (void)a;
    leash_rwmutex_rlock(&z_rw_w);
    leash_rwmutex_runlock(&z_rw_w);
}
static NOINLINE void w_wlock(void *a) {
    (void)a;
    leash_rwmutex_lock(&z_rw_r);
    leash_rwmutex_unlock(&z_rw_r);
}
static NOINLINE void w_cond(void *a) {
    (void)a;
    leash_mutex_lock(&z_cmu);
    leash_cond_wait(&z_cv, &z_cmu);
    leash_mutex_unlock(&z_cmu);
}
static NOINLINE void w_wg(void *a) {
    (void)a;
    leash_waitgroup_wait(&z_wg);
}
static intptr_t sys_read(void *a) {
    (void)a;
    char b;
    return read(z_sys[0], &b, 1); /* blocks its helper thread */
}
static NOINLINE void w_syscall(void *a) {
    (void)a;
    leash_blocking(sys_read, NULL);
}
/* The volatile local gives spin_inner a frame: GCC 12 sets up no frame
 * pointer in a leaf function that needs no stack, whatever the flags,
 * and a signal-sampled walk from such a leaf cannot see its caller. */
static NOINLINE void spin_inner(void) {
    volatile unsigned spins = 0;
    atomic_store(&z_spin_in, 1);
    while (!atomic_load_explicit(&z_spin_stop, memory_order_relaxed))
        spins = spins + 1u;
}
static NOINLINE void w_spin(void *a) {
    (void)a;
    spin_inner();
    __asm__ volatile(""); /* keep w_spin's frame: no tail call */
}

#define SPAWN(i, fn) (W[i].line = __LINE__, W[i].id = leash_go(fn, NULL))

static NOINLINE void spawn_all(void) {
    SPAWN(W_SEND, w_send);
    SPAWN(W_RECV, w_recv);
    SPAWN(W_SEND_NIL, w_send_nil);
    SPAWN(W_RECV_NIL, w_recv_nil);
    SPAWN(W_SELECT, w_select);
    SPAWN(W_SELECT0, w_select0);
    SPAWN(W_SLEEP, w_sleep);
    SPAWN(W_IO, w_io);
    SPAWN(W_MUTEX, w_mutex);
    SPAWN(W_RLOCK, w_rlock);
    SPAWN(W_WLOCK, w_wlock);
    SPAWN(W_COND, w_cond);
    SPAWN(W_WG, w_wg);
    SPAWN(W_SYSCALL, w_syscall);
}

/* The spinner comes last, once the others are parked: a coroutine that
 * never yields keeps its worker, and what waits in that worker's queue
 * then waits on the scheduler (see the "spinning" tests below). */
static NOINLINE void spawn_spinner(void) { SPAWN(W_SPIN, w_spin); }

/* The zoo's keeper: a coroutine that holds the locks the others wait
 * for, starts them all (so each is "created by spawn_all in goroutine
 * <keeper>") and then waits on z_keep until the test is done, when it
 * lets go of everything. The test itself runs on the plain test thread
 * and dumps from there. */
static leash_chan *z_keep;
static _Atomic int64_t z_keeper;
static atomic_int z_spawned;

static NOINLINE void zoo_keeper(void *a) {
    (void)a;
    CU_CHECK_EQ(leash_mutex_lock(&z_mu), 0);
    CU_CHECK_EQ(leash_rwmutex_lock(&z_rw_w), 0);
    CU_CHECK_EQ(leash_rwmutex_rlock(&z_rw_r), 0);
    CU_CHECK_EQ(leash_waitgroup_add(&z_wg, 1), 0);
    spawn_all();
    atomic_store(&z_spawned, 1);
    int v;
    leash_recv(z_keep, &v);
    spawn_spinner();
    atomic_store(&z_spawned, 2);
    leash_recv(z_keep, &v);
    atomic_store(&z_spin_stop, 1);
    leash_mutex_unlock(&z_mu);
    leash_rwmutex_unlock(&z_rw_w);
    leash_rwmutex_runlock(&z_rw_r);
    leash_waitgroup_done(&z_wg);
    leash_mutex_lock(&z_cmu);
    leash_cond_broadcast(&z_cv);
    leash_mutex_unlock(&z_cmu);
    CU_CHECK(write(z_io[1], "x", 1) == 1);
    CU_CHECK(write(z_sys[1], "x", 1) == 1);
    leash_recv(z_send, &v);
    leash_send(z_recv, &v);
    leash_send(z_sel1, &v);
}

/* Dumps of the zoo, taken on the test thread. */
static char *zoo_dump[5];
static size_t zoo_len[5];
static int zoo_rc[5], zoo_ncoro;

static void run_zoo(void) {
    setup_procs("2");
    z_send = leash_chan_make(sizeof(int), 0);
    z_recv = leash_chan_make(sizeof(int), 0);
    z_sel1 = leash_chan_make(sizeof(int), 0);
    z_sel2 = leash_chan_make(sizeof(int), 0);
    z_keep = leash_chan_make(sizeof(int), 0);
    cr_assert(pipe(z_io) == 0 && pipe(z_sys) == 0);
    z_keeper = leash_go(zoo_keeper, NULL);
    cr_assert_gt(z_keeper, 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&z_spawned), 10000));
    int v = 1;
    for (int i = 0; i < W_N; i++) {
        if (i == W_SPIN) {
            leash_send(z_keep, &v);
            cr_assert(CU_WAIT_UNTIL(atomic_load(&z_spawned) == 2, 10000));
        }
        char buf[128];
        cr_assert_gt(W[i].id, 0);
        cr_assert(du_wait_state(W[i].id, W[i].state, 10000),
                  "coroutine %s (%lld) never got to %s: %s", W[i].func,
                  (long long)W[i].id, W[i].state,
                  du_state(W[i].id, buf, sizeof buf));
    }
    cr_assert(atomic_load(&z_spin_in));
    zoo_ncoro = (int)leash_num_coroutines();
    for (int d = 0; d <= 4; d++)
        zoo_dump[d] = du_dump_ex(d, false, &zoo_rc[d], &zoo_len[d]);
    leash_send(z_keep, &v);
    CU_ASSERT_CLEAN();
    for (int d = 0; d <= 4; d++) {
        cr_assert_not_null(zoo_dump[d]);
        cr_assert_gt(zoo_rc[d], 0, "leash_dump(%d) = %d", d, zoo_rc[d]);
    }
}

static const char *basename_of(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ------------------------------------------------------------ debug=2 */

/* Checks one block of Go's debug=2 text; NULL if fine. */
static const char *check_go_block(const char *dump, const wcase *w) {
    char *blk = du_block(dump, w->id);
    if (!blk)
        return FAILF("no block for goroutine %lld (%s)", (long long)w->id,
                     w->func);
    int n;
    char **l = du_lines(blk, &n);
    const char *err = NULL;
    char want[256];
    snprintf(want, sizeof want, "goroutine %lld [%s]:", (long long)w->id,
             w->reason);
    char re[512];
    snprintf(re, sizeof re, "^\t/.*/%s:[0-9]+ \\+0x[0-9a-f]+$",
             basename_of(__FILE__));
    char created[256], site[512];
    snprintf(created, sizeof created, "created by %s in goroutine %lld",
             w->creator ? w->creator : "spawn_all", (long long)z_keeper);
    snprintf(site, sizeof site, "\t%s:%d +0x", __FILE__, w->line);
    int fi = 1; /* frames from line 1 on, until "created by" */
    if (n < 5)
        err = FAILF("block too short (%d lines):\n%s", n, blk);
    else if (strcmp(l[0], want))
        err = FAILF("header %s, want %s", l[0], want);
    else {
        char fr[128];
        snprintf(fr, sizeof fr, "%s(...)", w->func);
        if (strcmp(l[1], fr))
            err = FAILF("first frame %s, want %s, in:\n%s", l[1], fr, blk);
        for (; !err && fi < n && strncmp(l[fi], "created by ", 11); fi += 2) {
            if (!du_match(l[fi], "^[A-Za-z_][A-Za-z0-9_.]*\\(\\.\\.\\.\\)$"))
                err = FAILF("frame line '%s' is not func(...):\n%s", l[fi], blk);
            else if (fi + 1 >= n ||
                     !du_match(l[fi + 1], "^\t[^ ]+:[0-9]+ \\+0x[0-9a-f]+$"))
                err = FAILF("no '\\tfile:line +0x..' after '%s':\n%s", l[fi],
                            blk);
        }
        if (!err && !du_match(l[2], re))
            err = FAILF("frame line '%s' does not match %s", l[2], re);
        if (!err) {
            if (fi + 1 >= n || strcmp(l[fi], created))
                err = FAILF("want '%s' after the frames:\n%s", created, blk);
            else if (strncmp(l[fi + 1], site, strlen(site)) ||
                     !du_match(l[fi + 1], "\\+0x[0-9a-f]+$"))
                err = FAILF("created-by site '%s', want '%s..':\n%s",
                            l[fi + 1], site, blk);
            else if (fi + 2 != n)
                err = FAILF("lines after created by:\n%s", blk);
        }
        /* The frames hide the runtime: no leash_* or coro_* frame. */
        if (!err && (strstr(blk, "\nleash_") || strstr(blk, "\ncoro_")))
            err = FAILF("runtime frames shown in Go's format:\n%s", blk);
    }
    du_free_lines(l);
    free(blk);
    return err;
}

Test(debug2, every_wait_reason, .timeout = 60) {
    run_zoo();
    const char *dump = zoo_dump[2];
    for (int i = 0; i < W_N; i++) {
        const char *e = check_go_block(dump, &W[i]);
        cr_expect(e == NULL, "%s: %s", W[i].reason, e);
    }
    /* Every header has Go's shape; no minutes after a short wait. */
    int n, blocks = 0;
    char **l = du_lines(dump, &n);
    for (int i = 0; i < n; i++) {
        if (strncmp(l[i], "goroutine ", 10))
            continue;
        blocks++;
        cr_expect(du_match(l[i], "^goroutine [0-9]+ \\[[^],]+\\]:$"),
                  "header '%s' is not Go's 'goroutine N [reason]:'", l[i]);
        cr_expect(!strstr(l[i], "minutes"), "minutes after a short wait: %s",
                  l[i]);
        cr_expect(i == 0 || l[i - 1][0] == 0, "no blank line before '%s'",
                  l[i]);
    }
    du_free_lines(l);
    cr_expect_eq(blocks, zoo_rc[2], "%d blocks, leash_dump returned %d",
                 blocks, zoo_rc[2]);
    cr_expect_geq(blocks, W_N + 1);
    cr_expect_eq(zoo_rc[2], zoo_ncoro, "leash_dump counted %d of %d",
                 zoo_rc[2], zoo_ncoro);
}

/* ------------------------------------------------------------ debug=3 */

static const char *check_leash_block(const char *dump, const wcase *w) {
    char *blk = du_block(dump, w->id);
    if (!blk)
        return FAILF("no block for goroutine %lld (%s)", (long long)w->id,
                     w->func);
    const char *err = NULL;
    char esc[512], rs[128];
    du_re_escape(w->reason, rs, sizeof rs);
    if (w->api)
        snprintf(esc, sizeof esc,
                 "^goroutine %lld \\[%s, [0-9]+\\.[0-9]{3}s\\]:", (long long)w->id,
                 rs);
    else
        snprintf(esc, sizeof esc, "^goroutine %lld \\[running[],]",
                 (long long)w->id);
    char spawned[512];
    snprintf(spawned, sizeof spawned,
             "\n    spawned at %s:%d in %s by goroutine %lld\n", __FILE__,
             w->line, w->creator ? w->creator : "spawn_all",
             (long long)z_keeper);
    char top[128], fn[128];
    snprintf(top, sizeof top, "\n  %s\n\t", w->api ? w->api : w->func);
    snprintf(fn, sizeof fn, "\n  %s\n\t", w->func);
    if (!du_match(blk, esc))
        err = FAILF("header does not match %s:\n%s", esc, blk);
    else if (!strstr(blk, spawned))
        err = FAILF("no '%s' in:\n%s", spawned + 1, blk);
    else if (!strstr(blk, top))
        err = FAILF("no top frame %s in:\n%s", w->api ? w->api : w->func, blk);
    else if (!strstr(blk, fn))
        err = FAILF("no frame %s in:\n%s", w->func, blk);
    else if (w->leak && !strstr(blk, "LEAKED ("))
        err = FAILF("not marked LEAKED:\n%s", blk);
    else if (!w->leak && strstr(blk, "LEAKED"))
        err = FAILF("marked LEAKED:\n%s", blk);
    else if (w->suspect && !strstr(blk, "SUSPECT ("))
        err = FAILF("not marked SUSPECT:\n%s", blk);
    else if (!w->suspect && strstr(blk, "SUSPECT"))
        err = FAILF("marked SUSPECT:\n%s", blk);
    if (!err && w->api) {
        /* Frames: "  func\n\tfile:line +0x.." pairs. */
        const char *p = strstr(blk, top) + 1;
        int n;
        char **l = du_lines(p, &n);
        for (int i = 0; i + 1 < n && !err; i += 2)
            if (!du_match(l[i], "^  [A-Za-z_][A-Za-z0-9_.]*$") ||
                !du_match(l[i + 1], "^\t[^ ]+:[0-9]+ \\+0x[0-9a-f]+$"))
                err = FAILF("bad frame lines '%s' / '%s'", l[i], l[i + 1]);
        du_free_lines(l);
    }
    free(blk);
    return err;
}

Test(debug3, every_wait_reason_with_wait_objects, .timeout = 60) {
    run_zoo();
    const char *dump = zoo_dump[3];
    for (int i = 0; i < W_N; i++) {
        const char *e = check_leash_block(dump, &W[i]);
        cr_expect(e == NULL, "%s: %s", W[i].reason, e);
    }
    /* Wait objects. */
    char *b = du_block(dump, W[W_SEND].id);
    cr_expect(b && du_match(b, "\n    waiting on chan#[0-9]+ made at [^ ]*test_diag\\.c:[0-9]+ "
                               "\\(unbuffered 0/0, 1 sender\\(s\\), 0 receiver\\(s\\) waiting, open, "
                               "1 reference\\(s\\)\\)\n"),
              "chan send wait object:\n%s", b);
    free(b);
    b = du_block(dump, W[W_RECV].id);
    cr_expect(b && strstr(b, "0 sender(s), 1 receiver(s) waiting, open"),
              "chan receive wait object:\n%s", b);
    free(b);
    /* The lock's name (from the symbol table) is optional here; see
     * global_lock_names. */
    char re[512];
    b = du_block(dump, W[W_MUTEX].id);
    snprintf(re, sizeof re, "\n    waiting on mutex (z_mu \\()?0x[0-9a-f]+\\)? "
             "held by goroutine %lld\n", (long long)z_keeper);
    cr_expect(b && du_match(b, re), "mutex wait object (want %s):\n%s", re, b);
    free(b);
    b = du_block(dump, W[W_RLOCK].id);
    snprintf(re, sizeof re, "\n    waiting on rwmutex (z_rw_w \\()?0x[0-9a-f]+\\)? "
             "\\(0 reader\\(s\\) inside, held by goroutine %lld\\)\n",
             (long long)z_keeper);
    cr_expect(b && du_match(b, re), "rwmutex (writer inside) wait object "
              "(want %s):\n%s", re, b);
    free(b);
    b = du_block(dump, W[W_WLOCK].id);
    snprintf(re, sizeof re, "\n    waiting on rwmutex (z_rw_r \\()?0x[0-9a-f]+\\)? "
             "\\(1 reader\\(s\\) inside, held by goroutine %lld\\)\n",
             (long long)z_keeper);
    cr_expect(b && du_match(b, re), "rwmutex (reader inside) wait object "
              "(want %s):\n%s", re, b);
    free(b);
    b = du_block(dump, W[W_IO].id);
    cr_expect(b && strstr(b, "\n    waiting for I/O with no deadline\n"),
              "I/O wait object:\n%s", b);
    free(b);
}

/* issue 9, item 4: a cond waiter's dump shows the cond's mutex. */
Test(debug3, cond_wait_shows_its_mutex, .timeout = 60) {
    run_zoo();
    char *b = du_block(zoo_dump[3], W[W_COND].id);
    cr_assert_not_null(b);
    cr_expect(strstr(b, "z_cmu") || du_match(b, "\n    waiting on cond"),
              "a sync.Cond.Wait shows no wait object (the cond, its mutex "
              "z_cmu):\n%s", b);
    free(b);
}

/* dump_leash.c names a global lock from the symbol table ("a global mutex
 * has a name"): z_mu and z_rw_w are static globals of this file. */
Test(debug3, global_lock_names, .timeout = 60) {
    run_zoo();
    char *b = du_block(zoo_dump[3], W[W_MUTEX].id);
    cr_expect(b && strstr(b, "waiting on mutex z_mu (0x"),
              "the global mutex z_mu is not named:\n%s", b);
    free(b);
    b = du_block(zoo_dump[3], W[W_RLOCK].id);
    cr_expect(b && strstr(b, "waiting on rwmutex z_rw_w (0x"),
              "the global rwmutex z_rw_w is not named:\n%s", b);
    free(b);
}

/* ------------------------------------------------------------ debug=4 */

Test(debug4, json_parses_with_every_wait_reason, .timeout = 60) {
    run_zoo();
    const char *err = NULL;
    long at = 0;
    dj *doc = dj_parse(zoo_dump[4], &err, &at);
    cr_assert_not_null(doc, "JSON does not parse: %s at offset %ld:\n%.*s", err,
                       at, 200, zoo_dump[4] + (at > 100 ? at - 100 : 0));
    cr_expect_str_eq(dj_str(dj_get(doc, "format")), "leash-dump/1");
    const dj *mono = dj_get(doc, "monotonic_ns");
    cr_expect(mono && mono->type == DJ_NUM && mono->inum > 0);
    const dj *arr = dj_get(doc, "coroutines");
    cr_assert(arr && arr->type == DJ_ARR);
    cr_expect_eq(arr->n, zoo_rc[4], "%d entries, leash_dump returned %d",
                 arr->n, zoo_rc[4]);
    /* Every entry has the documented fields with the right types. */
    for (int i = 0; i < arr->n; i++) {
        const dj *g = arr->items[i];
        cr_expect(dj_int(dj_get(g, "id"), -1) > 0);
        cr_expect(dj_get(g, "parent") && dj_get(g, "parent")->type == DJ_NUM);
        const dj *nm = dj_get(g, "name");
        cr_expect(nm && (nm->type == DJ_STR || nm->type == DJ_NULL));
        const char *st = dj_str(dj_get(g, "state"));
        cr_expect(st && (!strcmp(st, "running") || !strcmp(st, "runnable") ||
                         !strcmp(st, "waiting")),
                  "state %s", st ? st : "(none)");
        cr_expect(dj_get(g, "labels") && dj_get(g, "labels")->type == DJ_OBJ);
        if (st && !strcmp(st, "waiting")) {
            cr_expect(dj_str(dj_get(g, "wait_reason")) != NULL);
            cr_expect(dj_int(dj_get(g, "wait_ns"), -1) >= 0);
        }
        const dj *lk = dj_get(g, "leak"), *sp = dj_get(g, "suspect");
        cr_expect(lk && (lk->type == DJ_NULL || lk->type == DJ_STR));
        cr_expect(sp && (sp->type == DJ_NULL || sp->type == DJ_STR));
        const dj *spawn = dj_get(g, "spawn");
        cr_expect(spawn && spawn->type == DJ_OBJ && dj_get(spawn, "line") &&
                  dj_get(spawn, "func"));
        const dj *fr = dj_get(g, "frames");
        cr_expect(fr && fr->type == DJ_ARR && fr->n > 0, "no frames for %lld",
                  dj_int(dj_get(g, "id"), -1));
        for (int k = 0; fr && k < fr->n; k++) {
            const char *pc = dj_str(dj_get(fr->items[k], "pc"));
            cr_expect(pc && du_match(pc, "^0x[0-9a-f]+$"));
            cr_expect(dj_str(dj_get(fr->items[k], "func")) != NULL);
            cr_expect(dj_get(fr->items[k], "line") != NULL);
        }
    }
    for (int i = 0; i < W_N; i++) {
        const wcase *w = &W[i];
        const dj *g = dj_coroutine(doc, w->id);
        cr_expect_not_null(g, "%s: coroutine %lld missing", w->reason,
                           (long long)w->id);
        if (!g)
            continue;
        cr_expect_eq(dj_int(dj_get(g, "parent"), -1), z_keeper);
        if (w->api) {
            cr_expect_str_eq(dj_str(dj_get(g, "state")), "waiting");
            cr_expect_str_eq(dj_str(dj_get(g, "wait_reason")), w->reason);
        } else {
            cr_expect_str_eq(dj_str(dj_get(g, "state")), "running");
        }
        const dj *lk = dj_get(g, "leak"), *sp = dj_get(g, "suspect");
        if (w->leak)
            cr_expect(dj_str(lk) && !strcmp(dj_str(lk), w->leak),
                      "%s: leak %s", w->reason, dj_str(lk));
        else
            cr_expect(lk && lk->type == DJ_NULL, "%s: leak %s", w->reason,
                      dj_str(lk));
        if (w->suspect)
            cr_expect(dj_str(sp) && !strcmp(dj_str(sp), w->suspect),
                      "%s: suspect %s", w->reason, dj_str(sp));
        else
            cr_expect(sp && sp->type == DJ_NULL, "%s: suspect %s", w->reason,
                      dj_str(sp));
        const dj *spawn = dj_get(g, "spawn");
        cr_expect_str_eq(dj_str(dj_get(spawn, "file")), __FILE__);
        cr_expect_eq(dj_int(dj_get(spawn, "line"), -1), w->line, "%s",
                     w->reason);
        cr_expect_str_eq(dj_str(dj_get(spawn, "func")),
                         w->creator ? w->creator : "spawn_all");
        const dj *fr = dj_get(g, "frames");
        const char *top = fr && fr->n ? dj_str(dj_get(fr->items[0], "func")) : NULL;
        cr_expect(top && !strcmp(top, w->api ? w->api : w->func),
                  "%s: top frame %s", w->reason, top);
        bool found = false;
        for (int k = 0; fr && k < fr->n; k++) {
            const char *f = dj_str(dj_get(fr->items[k], "func"));
            if (f && !strcmp(f, w->func)) {
                found = true;
                cr_expect_str_eq(dj_str(dj_get(fr->items[k], "file")), __FILE__);
            }
        }
        cr_expect(found, "%s: no frame %s", w->reason, w->func);
        if (i == W_SEND || i == W_RECV) {
            const dj *o = dj_get(g, "wait_obj");
            cr_expect(o && !strcmp(dj_str(dj_get(o, "kind")), "chan"));
            cr_expect_eq(dj_int(dj_get(o, "cap"), -1), 0);
            cr_expect_eq(dj_int(dj_get(o, i == W_SEND ? "senders" : "receivers"), -1), 1);
            cr_expect_str_eq(dj_str(dj_get(o, "file")), __FILE__);
        }
        if (i == W_MUTEX) {
            const dj *o = dj_get(g, "wait_obj");
            cr_expect(o && !strcmp(dj_str(dj_get(o, "kind")), "mutex") &&
                          dj_int(dj_get(o, "owner"), -1) == z_keeper,
                      "mutex wait_obj");
        }
    }
    /* The running coroutine's stack goes down through its caller. */
    const dj *g = dj_coroutine(doc, W[W_SPIN].id);
    const dj *fr = g ? dj_get(g, "frames") : NULL;
    char names[512] = "";
    for (int k = 0; fr && k < fr->n; k++)
        snprintf(names + strlen(names), sizeof names - strlen(names), " %s",
                 dj_str(dj_get(fr->items[k], "func")));
    cr_expect(fr && fr->n >= 2 &&
                  !strcmp(dj_str(dj_get(fr->items[1], "func")), "w_spin"),
              "running coroutine: want frames spin_inner w_spin, got%s",
              names);
    dj_free(doc);
}

/* ------------------------------------------------------ inlined calls */

/* A coroutine blocked inside a function the compiler inlined: every
 * format shows both source levels, as Go's tracebacks do (the inlined
 * function at its line, then its caller at the line of the call), and
 * the spawn site names the function that called leash_go. */
static leash_chan *inl_ch;
static int inl_line_recv, inl_line_call;
static int64_t inl_id;
static char *inl_text[3]; /* debug=2, debug=1, JSON */

enum { INL_RECV_LINE = __LINE__ + 3 }; /* the leash_recv line below */
static inline __attribute__((always_inline)) void inl_wait(void) {
    int v;
    leash_recv(inl_ch, &v);
}
enum { INL_CALL_LINE = __LINE__ + 3 }; /* the inl_wait() call below */
static __attribute__((noinline)) void inl_outer(void *a) {
    (void)a;
    inl_wait();
}

static int inl_main(void *a) {
    (void)a;
    inl_ch = leash_chan_make(sizeof(int), 0);
    inl_id = leash_go(inl_outer, NULL, inl_ch);
    CU_CHECK(du_wait_state(inl_id, "waiting:chan receive", 10000));
    inl_text[0] = du_dump(LEASH_DUMP_STACKS);
    inl_text[1] = du_dump(LEASH_DUMP_COUNTS);
    inl_text[2] = du_dump(LEASH_DUMP_JSON);
    leash_close(inl_ch);
    leash_release(inl_ch);
    return 0;
}

Test(inlined, every_source_level_of_an_inlined_call, .timeout = 60) {
    setup_procs("2");
    inl_line_recv = INL_RECV_LINE;
    inl_line_call = INL_CALL_LINE;
    cr_assert_eq(leash_run(inl_main, NULL), 0);
    CU_ASSERT_CLEAN();
    char want[400];
    /* debug=2: inl_wait at the receive, no offset; inl_outer at the call,
     * with the machine frame's offset. */
    char *b = du_block(inl_text[0], inl_id);
    snprintf(want, sizeof want,
             "\ninl_wait\\(\\.\\.\\.\\)\n\t[^\n]*test_diag\\.c:%d\n"
             "inl_outer\\(\\.\\.\\.\\)\n\t[^\n]*test_diag\\.c:%d \\+0x[0-9a-f]+\n",
             inl_line_recv, inl_line_call);
    cr_expect(b && du_match(b, want), "debug=2: want /%s/ in:\n%s", want,
              b ? b : inl_text[0]);
    free(b);
    /* debug=1: a '#' line per level, the same address on both. */
    char *caps[2] = {NULL, NULL};
    snprintf(want, sizeof want,
             "\n#\t(0x[0-9a-f]+)\tinl_wait\\+0x[0-9a-f]+\t[^\n]*test_diag\\.c:%d\n"
             "#\t(0x[0-9a-f]+)\tinl_outer\\+0x[0-9a-f]+\t[^\n]*test_diag\\.c:%d\n",
             inl_line_recv, inl_line_call);
    cr_expect(du_match_caps(inl_text[1], want, caps, 2) && caps[0] && caps[1] &&
                  !strcmp(caps[0], caps[1]),
              "debug=1: want /%s/, one address, in:\n%s", want, inl_text[1]);
    free(caps[0]);
    free(caps[1]);
    /* JSON: two frames, the first marked inlined. */
    dj *doc = dj_parse(inl_text[2], NULL, NULL);
    const dj *g = dj_coroutine(doc, inl_id);
    const dj *fr = g ? dj_get(g, "frames") : NULL;
    int k = -1;
    for (int i = 0; fr && i < fr->n; i++)
        if (!strcmp(dj_str(dj_get(fr->items[i], "func")), "inl_wait"))
            k = i;
    cr_assert(k >= 0 && k + 1 < fr->n, "JSON frames:\n%s", inl_text[2]);
    const dj *in = dj_get(fr->items[k], "inlined");
    cr_expect(in && in->b, "inl_wait not marked inlined:\n%s", inl_text[2]);
    cr_expect_str_eq(dj_str(dj_get(fr->items[k + 1], "func")), "inl_outer");
    cr_expect(!dj_get(fr->items[k + 1], "inlined"), "%s", inl_text[2]);
    cr_expect_str_eq(dj_str(dj_get(fr->items[k], "pc")),
                     dj_str(dj_get(fr->items[k + 1], "pc")));
    dj_free(doc);
    for (int i = 0; i < 3; i++)
        free(inl_text[i]);
}

/* ------------------------------------------------------------ debug=1 */

typedef struct {
    long count;
    int naddr;
    unsigned long addr[64];
    int nfr;
    char *fn[64];
    char *labels;
} pgroup;

/* Parses Go's goroutine profile text; returns the groups (NULL-ended by
 * count 0) or NULL with *err set. */
static pgroup *parse_profile_text_ex(const char *text, const char *name,
                                     bool strict, long *total,
                                     const char **err) {
    int n;
    char **l = du_lines(text, &n);
    pgroup *gs = calloc((size_t)n + 1, sizeof *gs);
    int ng = 0;
    *err = NULL;
    char hdr[128];
    snprintf(hdr, sizeof hdr, "^%s profile: total [0-9]+$", name);
    if (n == 0 || !du_match(l[0], hdr)) {
        *err = FAILF("first line '%s' is not '%s profile: total N'",
                     n ? l[0] : "", name);
        goto out;
    }
    *total = atol(strrchr(l[0], ' ') + 1);
    for (int i = 1; i < n && !*err; i++) {
        if (!l[i][0])
            continue;
        if (!du_match(l[i], "^[0-9]+ @( 0x[0-9a-f]+)+$")) {
            *err = FAILF("line %d '%s' is not 'N @ 0x..'", i + 1, l[i]);
            break;
        }
        pgroup *g = &gs[ng++];
        g->count = atol(l[i]);
        for (char *p = strstr(l[i], "@") + 1; *p && g->naddr < 64;) {
            g->addr[g->naddr++] = strtoul(p, &p, 16);
            while (*p == ' ')
                p++;
        }
        i++;
        if (i < n && !strncmp(l[i], "# labels: ", 10)) {
            if (!du_match(l[i], "^# labels: \\{(\"[^\"]*\":\"[^\"]*\")(, \"[^\"]*\":\"[^\"]*\")*\\}$"))
                *err = FAILF("bad labels line '%s'", l[i]);
            g->labels = strdup(l[i] + 10);
            i++;
        }
        int ai = 0; /* the '@' address the '#' lines are at */
        for (; i < n && l[i][0]; i++) {
            char *caps[3];
            if (!du_match_caps(l[i], "^#\t(0x[0-9a-f]+)\t+([^+\t]+)\\+0x[0-9a-f]+\t+([^ ]+:[0-9]+)$", caps, 3)) {
                *err = FAILF("line %d '%s' is not '#\\t0x..\\tfunc+0x..\\tfile:line'", i + 1, l[i]);
                break;
            }
            /* Go's form: the '@' addresses in order, each on one '#' line
             * per source level (an inlined call adds a line, same pc). */
            unsigned long a = strtoul(caps[0], NULL, 16);
            if (g->nfr > 0 && ai + 1 < g->naddr && a == g->addr[ai + 1] - 1)
                ai++;
            if (strict && (ai >= g->naddr || a != g->addr[ai] - 1))
                *err = FAILF("'#' address %s is not the '@' address %#lx - 1",
                             caps[0], ai < g->naddr ? g->addr[ai] : 0ul);
            if (g->nfr < 64)
                g->fn[g->nfr++] = caps[1];
            else
                free(caps[1]);
            free(caps[0]);
            free(caps[2]);
        }
        if (!*err && strict && ai != g->naddr - 1)
            *err = FAILF("group with %d addresses has '#' lines for %d",
                         g->naddr, ai + 1);
        i--;
    }
out:
    du_free_lines(l);
    return gs;
}

/* leash's text: '#' lines for each '@' address in turn (more than one for
 * inlined calls), each the address - 1. */
static pgroup *parse_profile_text(const char *text, const char *name,
                                  long *total, const char **err) {
    return parse_profile_text_ex(text, name, true, total, err);
}

static void free_groups(pgroup *gs) {
    for (pgroup *g = gs; g && g->count; g++) {
        for (int i = 0; i < g->nfr; i++)
            free(g->fn[i]);
        free(g->labels);
    }
    free(gs);
}

static const pgroup *group_with(const pgroup *gs, const char *fn) {
    for (const pgroup *g = gs; g->count; g++)
        for (int i = 0; i < g->nfr; i++)
            if (!strcmp(g->fn[i], fn))
                return g;
    return NULL;
}

/* ------------------------------------------------- frames by address */

/* A user's functions that share names with the runtime's entry functions
 * and its public prefix: dumps tell them apart by address, so all show. */
void member_main(void *a);
void g_entry(void);
void leash_user_helper(void);
static leash_chan *nm_ch;
static int64_t nm_id;
static char *nm_text[3]; /* debug=2, debug=1, debug=3 */

NOINLINE void leash_user_helper(void) {
    int v;
    leash_recv(nm_ch, &v);
    __asm__ volatile("" ::: "memory"); /* no tail call */
}
NOINLINE void g_entry(void) {
    leash_user_helper();
    __asm__ volatile("" ::: "memory");
}
NOINLINE void member_main(void *a) {
    (void)a;
    g_entry();
    __asm__ volatile("" ::: "memory");
}

static int nm_main(void *a) {
    (void)a;
    nm_ch = leash_chan_make(sizeof(int), 0);
    nm_id = leash_go(member_main, NULL, nm_ch);
    CU_CHECK(du_wait_state(nm_id, "waiting:chan receive", 10000));
    nm_text[0] = du_dump(LEASH_DUMP_STACKS);
    nm_text[1] = du_dump(LEASH_DUMP_COUNTS);
    nm_text[2] = du_dump(3);
    leash_close(nm_ch);
    leash_release(nm_ch);
    return 0;
}

Test(frames, user_functions_named_like_the_runtime_show, .timeout = 60) {
    setup_procs("2");
    cr_assert_eq(leash_run(nm_main, NULL), 0);
    CU_ASSERT_CLEAN();
    /* debug=2: the user's three frames, from the one that called
     * leash_recv (hidden, as Go hides runtime frames) down to the entry,
     * then the creation site: no runtime frame on either side. */
    char *b = du_block(nm_text[0], nm_id);
    cr_assert(b, "no block for %lld in:\n%s", (long long)nm_id, nm_text[0]);
    cr_expect(du_match(b, "\\]:\n"
                          "leash_user_helper\\(\\.\\.\\.\\)\n\t[^\n]*test_diag\\.c:[0-9]+ \\+0x[0-9a-f]+\n"
                          "g_entry\\(\\.\\.\\.\\)\n\t[^\n]*test_diag\\.c:[0-9]+ \\+0x[0-9a-f]+\n"
                          "member_main\\(\\.\\.\\.\\)\n\t[^\n]*test_diag\\.c:[0-9]+ \\+0x[0-9a-f]+\n"
                          "created by "),
              "debug=2 block:\n%s", b);
    free(b);
    /* debug=1: the public call on top, then the user's frames, and no
     * entry frame of the runtime (coro_body, the trampoline). */
    long total;
    const char *err;
    pgroup *gs = parse_profile_text(nm_text[1], "goroutine", &total, &err);
    cr_assert(gs, "%s:\n%s", err, nm_text[1]);
    const pgroup *g = group_with(gs, "leash_user_helper");
    cr_assert(g, "no group with leash_user_helper:\n%s", nm_text[1]);
    cr_expect(g->nfr == 4, "debug=1: %d frames:\n%s", g->nfr, nm_text[1]);
    static const char *const want[] = {"leash_recv_n", "leash_user_helper",
                                       "g_entry", "member_main"};
    for (int i = 0; i < 4 && i < g->nfr; i++)
        cr_expect_str_eq(g->fn[i], want[i], "debug=1 frame %d:\n%s", i,
                         nm_text[1]);
    free_groups(gs);
    /* debug=3 as debug=1: the runtime's entry frames are trimmed. */
    cr_expect(!strstr(nm_text[2], "coro_body") &&
                  !strstr(nm_text[2], "mctx_trampoline"),
              "debug=3:\n%s", nm_text[2]);
    cr_expect(strstr(nm_text[2], "member_main") &&
                  strstr(nm_text[2], "leash_user_helper"),
              "debug=3:\n%s", nm_text[2]);
    for (int i = 0; i < 3; i++)
        free(nm_text[i]);
}

Test(debug1, every_wait_reason, .timeout = 60) {
    run_zoo();
    long total = -1;
    const char *err;
    pgroup *gs = parse_profile_text(zoo_dump[1], "goroutine", &total, &err);
    cr_assert(err == NULL, "%s\n%s", err, zoo_dump[1]);
    long sum = 0;
    for (pgroup *g = gs; g->count; g++)
        sum += g->count;
    cr_expect_eq(total, sum, "total %ld, counts add up to %ld", total, sum);
    cr_expect_eq(total, zoo_rc[1], "total %ld, leash_dump returned %d", total,
                 zoo_rc[1]);
    for (int i = 0; i < W_N; i++) {
        const pgroup *g = group_with(gs, W[i].func);
        cr_expect_not_null(g, "%s: no stack with %s", W[i].reason, W[i].func);
        if (!g)
            continue;
        cr_expect_eq(g->count, 1, "%s: count %ld", W[i].reason, g->count);
        const char *top = W[i].api ? W[i].api : W[i].func;
        cr_expect_str_eq(g->fn[0], top, "%s: top frame %s, want %s",
                         W[i].reason, g->fn[0], top);
    }
    /* Most frequent first, as Go sorts them. */
    for (pgroup *g = gs; g->count && g[1].count; g++)
        cr_expect_geq(g->count, g[1].count);
    free_groups(gs);
}

/* Identical stacks are counted together; labels split them. */
static leash_chan *agg_ch;
static NOINLINE void agg_worker(void *a) {
    (void)a;
    int v;
    leash_recv(agg_ch, &v);
}
static char *agg_text;
static int64_t agg_ids[8];
static int agg_main(void *a) {
    (void)a;
    agg_ch = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 8; i++) {
        if (i == 5)
            leash_label_set("team", "x");
        agg_ids[i] = leash_go(agg_worker, NULL);
    }
    for (int i = 0; i < 8; i++)
        CU_CHECK(du_wait_state(agg_ids[i], "waiting:chan receive", 10000));
    agg_text = du_dump(LEASH_DUMP_COUNTS);
    leash_close(agg_ch);
    return 0;
}

Test(debug1, identical_stacks_aggregated_and_labels, .timeout = 60) {
    setup_procs("2");
    cr_assert_eq(leash_run(agg_main, NULL), 0);
    CU_ASSERT_CLEAN();
    long total = -1;
    const char *err;
    pgroup *gs = parse_profile_text(agg_text, "goroutine", &total, &err);
    cr_assert(err == NULL, "%s\n%s", err, agg_text);
    cr_expect_eq(total, 9, "total %ld (8 workers and main)\n%s", total, agg_text);
    int five = 0, three = 0;
    for (pgroup *g = gs; g->count; g++) {
        bool mine = g->nfr >= 2 && !strcmp(g->fn[1], "agg_worker");
        if (!mine)
            continue;
        cr_expect_str_eq(g->fn[0], "leash_recv_n");
        if (g->count == 5) {
            five++;
            cr_expect_null(g->labels, "unlabelled group has labels %s", g->labels);
        } else if (g->count == 3) {
            three++;
            cr_expect(g->labels && !strcmp(g->labels, "{\"team\":\"x\"}"),
                      "labelled group: labels %s", g->labels);
        } else {
            cr_expect(false, "agg_worker group with count %ld\n%s", g->count,
                      agg_text);
        }
    }
    cr_expect(five == 1 && three == 1, "want groups of 5 and 3:\n%s", agg_text);
    /* The 5 come first (most frequent). */
    cr_expect(gs[0].count == 5, "first group has count %ld", gs[0].count);
    free_groups(gs);
}

/* ------------------------------------------------------------ debug=0 */

/* Writes buf to a fresh temporary file; returns its malloc'd path. */
static char *write_temp(const char *buf, size_t len, const char *suffix) {
    char *path = NULL;
    if (asprintf(&path, "/tmp/leash-test-XXXXXX%s", suffix) < 0)
        return NULL;
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) {
        free(path);
        return NULL;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    return path;
}

static char go_tmp[64];
static const char *go_env(void) {
    static char env[1024];
    if (!go_tmp[0]) {
        strcpy(go_tmp, "/tmp/leash-go-XXXXXX");
        if (!mkdtemp(go_tmp))
            return NULL;
    }
    du_go_env(env, sizeof env, go_tmp);
    return env;
}

/* `go tool pprof ARGS FILE`'s output. */
static char *pprof_run(const char *args, const char *file, int *st) {
    char *cmd = NULL;
    if (asprintf(&cmd, "%s && %s tool pprof -symbolize=none %s '%s'",
                 go_env(), du_go(), args, file) < 0)
        return NULL;
    char *out = du_run_cmd(cmd, st);
    free(cmd);
    return out;
}

typedef struct {
    long total;
    int nsamples;
    char *funcs; /* every location line, for searching */
    char *raw;
} rawprof;

/* Reads `go tool pprof -raw`'s text of a count profile named type
 * ("goroutine", "goroutineleak"): the sum of the sample values and the
 * location lines ("id: 0xaddr M=n func file:line"). */
static const char *parse_raw_type(const char *raw, rawprof *rp,
                                  const char *type) {
    memset(rp, 0, sizeof *rp);
    char want[96];
    snprintf(want, sizeof want, "PeriodType: %s count", type);
    if (!strstr(raw, want))
        return FAILF("no '%s':\n%s", want, raw);
    snprintf(want, sizeof want, "Samples:\n%s/count\n", type);
    if (!strstr(raw, want))
        return FAILF("no sample type %s/count:\n%s", type, raw);
    const char *s = strstr(raw, "Samples:\n");
    const char *loc = strstr(raw, "\nLocations\n");
    if (!s || !loc)
        return FAILF("no Samples/Locations sections:\n%s", raw);
    int n;
    char *samples = strndup(s, (size_t)(loc - s));
    char **l = du_lines(samples, &n);
    for (int i = 2; i < n; i++) { /* "Samples:", "goroutine/count" */
        char *caps[1];
        if (du_match_caps(l[i], "^ +([0-9]+): [0-9 ]+$", caps, 1)) {
            rp->total += atol(caps[0]);
            rp->nsamples++;
            free(caps[0]);
        }
    }
    du_free_lines(l);
    free(samples);
    rp->funcs = strdup(loc);
    rp->raw = strdup(raw);
    return NULL;
}

static const char *parse_raw(const char *raw, rawprof *rp) {
    return parse_raw_type(raw, rp, "goroutine");
}

static void free_raw(rawprof *rp) {
    free(rp->funcs);
    free(rp->raw);
}

/* Does the profile's location list name fn (as a whole word)? */
static bool raw_has_func(const rawprof *rp, const char *fn) {
    char re[256];
    snprintf(re, sizeof re, "\n +[0-9]+: 0x[0-9a-f]+ M=[0-9]+ %s [^ ]+:[0-9]+", fn);
    if (du_match(rp->funcs, re))
        return true;
    /* Inlined frames are listed on following lines. */
    snprintf(re, sizeof re, "\n +%s [^ ]+:[0-9]+", fn);
    return du_match(rp->funcs, re);
}

Test(pprof, read_by_go_tool_pprof, .timeout = 180) {
    if (!du_go())
        cr_skip_test("Go is not installed: `go tool pprof` cannot read the profile");
    run_zoo();
    /* gzip magic */
    cr_assert(zoo_len[0] > 2 && (unsigned char)zoo_dump[0][0] == 0x1f &&
              (unsigned char)zoo_dump[0][1] == 0x8b, "not gzipped");
    char *file = write_temp(zoo_dump[0], zoo_len[0], ".pb.gz");
    cr_assert_not_null(file);
    int st;
    char *raw = pprof_run("-raw", file, &st);
    cr_assert(raw && st == 0, "go tool pprof -raw failed (%d):\n%s", st, raw);
    rawprof rp;
    const char *e = parse_raw(raw, &rp);
    cr_assert(e == NULL, "%s", e);
    cr_expect_eq(rp.total, zoo_rc[0], "pprof samples add up to %ld, leash_dump "
                 "returned %d:\n%s", rp.total, zoo_rc[0], raw);
    for (int i = 0; i < W_N; i++) {
        cr_expect(raw_has_func(&rp, W[i].func), "%s: no location in %s:\n%s",
                  W[i].reason, W[i].func, raw);
        if (W[i].api)
            cr_expect(raw_has_func(&rp, W[i].api), "%s: no location in %s",
                      W[i].reason, W[i].api);
    }
    /* Lines point into this file. */
    char re[256];
    snprintf(re, sizeof re, " w_send [^ ]*/%s:[0-9]+", basename_of(__FILE__));
    cr_expect(du_match(rp.funcs, re), "w_send's location has no file:line:\n%s", raw);
    /* Function.start_line: the line of the declaration, which -raw
     * prints as " s=N" after the location's file:line. */
    snprintf(re, sizeof re, " w_send [^ ]*/%s:[0-9]+ s=%d\n",
             basename_of(__FILE__), w_send_decl_line);
    cr_expect(du_match(rp.funcs, re),
              "w_send's Function has no start_line %d:\n%s", w_send_decl_line,
              raw);

    char *top = pprof_run("-top", file, &st);
    cr_assert(top && st == 0, "go tool pprof -top failed (%d):\n%s", st, top);
    char want[128];
    snprintf(want, sizeof want, "Showing nodes accounting for %d, 100%% of %d total",
             zoo_rc[0], zoo_rc[0]);
    cr_expect(strstr(top, want), "want '%s' in:\n%s", want, top);
    cr_expect(strstr(top, "Type: goroutine"), "-top: no 'Type: goroutine'");
    for (int i = 0; i < W_N; i++) {
        /* "flat flat% sum% cum cum% name": each worker has cum 1. */
        char re2[256];
        snprintf(re2, sizeof re2, "\n +[0-9]+ +[0-9.]+%% +[0-9.]+%% +1 +[0-9.]+%% +%s\n",
                 W[i].func);
        cr_expect(du_match(top, re2), "-top: no line with cum 1 for %s:\n%s",
                  W[i].func, top);
    }
    unlink(file);
    free(file);
    free(raw);
    free(top);
    free_raw(&rp);
}

/* ------------------------------------------------------------ labels */

static int64_t lab_a, lab_b;
static _Atomic int64_t lab_c;
static char *lab_dump[5];
static size_t lab_len[5];
static leash_chan *lab_ch;
static char lab_get[3][32];

static NOINLINE void lab_block(void *a) {
    (void)a;
    int v;
    const char *x = leash_label_get("user");
    snprintf(lab_get[2], sizeof lab_get[2], "%s", x ? x : "(null)");
    leash_recv(lab_ch, &v);
}

static NOINLINE void lab_blocker_a(void *a) {
    (void)a;
    const char *x = leash_label_get("team");
    snprintf(lab_get[0], sizeof lab_get[0], "%s", x ? x : "(null)");
    int v;
    leash_recv(lab_ch, &v);
}

static NOINLINE void lab_applier(void *a) {
    (void)a;
    leash_ctx *c1 = leash_ctx_with_label(leash_ctx_background(), "req", "41");
    leash_ctx *c2 = leash_ctx_with_label(c1, "user", "bob");
    CU_CHECK(c1 && c2);
    CU_CHECK_EQ(leash_label_apply(c2), 0);
    const char *x = leash_label_get("req");
    snprintf(lab_get[1], sizeof lab_get[1], "%s", x ? x : "(null)");
    lab_c = leash_go(lab_block, NULL);
    leash_release(c2);
    leash_release(c1);
    int v;
    leash_recv(lab_ch, &v);
}

static int lab_main(void *a) {
    (void)a;
    lab_ch = leash_chan_make(sizeof(int), 0);
    CU_CHECK_EQ(leash_label_set("team", "core"), 0);
    lab_a = leash_go(lab_blocker_a, NULL);
    lab_b = leash_go(lab_applier, NULL);
    CU_CHECK(du_wait_state(lab_a, "waiting:chan receive", 10000));
    CU_CHECK(du_wait_state(lab_b, "waiting:chan receive", 10000));
    CU_CHECK(CU_WAIT_UNTIL(lab_c > 0, 10000));
    CU_CHECK(du_wait_state(lab_c, "waiting:chan receive", 10000));
    for (int d = 0; d <= 4; d++)
        lab_dump[d] = du_dump_ex(d, false, NULL, &lab_len[d]);
    leash_close(lab_ch);
    return 0;
}

Test(labels, inherited_and_shown_in_every_format, .timeout = 180) {
    setup_procs("2");
    cr_assert_eq(leash_run(lab_main, NULL), 0);
    CU_ASSERT_CLEAN();
    cr_expect_str_eq(lab_get[0], "core", "leash_label_get in a child");
    cr_expect_str_eq(lab_get[1], "41", "leash_label_get after leash_label_apply");
    cr_expect_str_eq(lab_get[2], "bob", "label_get in a grandchild");
    /* debug=3 */
    struct { int64_t id; const char *kv[3]; } want[] = {
        {lab_a, {"team=core", NULL, NULL}},
        {lab_b, {"team=core", "req=41", "user=bob"}},
        {lab_c, {"team=core", "req=41", "user=bob"}},
    };
    for (int i = 0; i < 3; i++) {
        char *b = du_block(lab_dump[3], want[i].id);
        cr_expect(b && strstr(b, "\n    labels:"), "no labels line:\n%s", b);
        for (int k = 0; b && k < 3 && want[i].kv[k]; k++) {
            char tok[64];
            snprintf(tok, sizeof tok, " %s", want[i].kv[k]);
            cr_expect(strstr(b, tok), "debug=3: no %s in:\n%s", want[i].kv[k], b);
        }
        free(b);
    }
    /* debug=4 */
    dj *doc = dj_parse(lab_dump[4], NULL, NULL);
    cr_assert_not_null(doc);
    const dj *c = dj_coroutine(doc, lab_c);
    const dj *l = c ? dj_get(c, "labels") : NULL;
    cr_expect(l && l->n == 3, "grandchild should have 3 labels");
    cr_expect_str_eq(dj_str(dj_get(l, "team")), "core");
    cr_expect_str_eq(dj_str(dj_get(l, "req")), "41");
    cr_expect_str_eq(dj_str(dj_get(l, "user")), "bob");
    const dj *aa = dj_coroutine(doc, lab_a);
    cr_expect(aa && dj_get(aa, "labels")->n == 1);
    dj_free(doc);
    /* debug=1: a labelled group per label set. */
    long total;
    const char *err;
    pgroup *gs = parse_profile_text(lab_dump[1], "goroutine", &total, &err);
    cr_assert(err == NULL, "%s", err);
    const pgroup *ga = group_with(gs, "lab_blocker_a");
    const pgroup *gc = group_with(gs, "lab_block");
    cr_expect(ga && ga->labels && !strcmp(ga->labels, "{\"team\":\"core\"}"),
              "lab_blocker_a labels %s", ga ? ga->labels : "-");
    cr_expect(gc && gc->labels && strstr(gc->labels, "\"team\":\"core\"") &&
                  strstr(gc->labels, "\"req\":\"41\"") &&
                  strstr(gc->labels, "\"user\":\"bob\""),
              "lab_block labels %s", gc ? gc->labels : "-");
    free_groups(gs);
    /* pprof */
    if (!du_go()) {
        cr_log_warn("Go is not installed: pprof labels not checked");
        return;
    }
    char *file = write_temp(lab_dump[0], lab_len[0], ".pb.gz");
    int st;
    char *raw = pprof_run("-raw", file, &st);
    cr_assert(raw && st == 0, "go tool pprof -raw failed:\n%s", raw);
    cr_expect(strstr(raw, "team:[core]"), "pprof: no team label:\n%s", raw);
    cr_expect(strstr(raw, "req:[41]") && strstr(raw, "user:[bob]"),
              "pprof: no req/user labels:\n%s", raw);
    /* Tags pprof can filter by: exactly the two labelled lab_block /
     * lab_applier samples carry user=bob. */
    char *tags = pprof_run("-tags", file, &st);
    cr_expect(tags && st == 0 &&
                  du_match(tags, "user: Total 2(\\.0)?\n +2(\\.0)? \\( *100(\\.0)?%\\): bob"),
              "pprof -tags:\n%s", tags);
    unlink(file);
    free(file);
    free(raw);
    free(tags);
}

/* ------------------------------------------------- running and runnable */

/* A coroutine spinning on another worker is sampled by a signal and
 * shown [running] with its stack in every text format (zoo: W_SPIN); here
 * a coroutine that is ready but has no worker shows as [runnable]. One
 * worker, taken by a spinner; the plain test thread starts a second
 * coroutine and dumps. */
static atomic_int rr_stop, rr_ran;
#if defined(__aarch64__)
#define SPIN_HINT "yield"
#define SELF_LOOP "1: b 1b"
#else
#define SPIN_HINT "pause"
#define SELF_LOOP "1: jmp 1b"
#endif
static NOINLINE void rr_spin(void *a) {
    (void)a;
    while (!atomic_load_explicit(&rr_stop, memory_order_relaxed))
        __asm__ volatile(SPIN_HINT);
}
static NOINLINE void rr_later(void *a) {
    (void)a;
    atomic_store(&rr_ran, 1);
}

Test(states, running_and_runnable, .timeout = 60) {
    setup_procs("1");
    int64_t s = leash_go(rr_spin, NULL);
    cr_assert_gt(s, 0);
    char buf[64];
    cr_assert(du_wait_state(s, "running", 10000), "spinner: %s",
              du_state(s, buf, sizeof buf));
    int64_t r = leash_go(rr_later, NULL);
    cr_assert_gt(r, 0);
    char *d2 = du_dump(LEASH_DUMP_STACKS);
    char *d3 = du_dump(LEASH_DUMP_LEASH);
    char *d4 = du_dump(LEASH_DUMP_JSON);
    atomic_store(&rr_stop, 1);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&rr_ran), 10000));
    CU_WAIT_UNTIL(leash_num_coroutines() == 0, 10000);

    char *b = du_block(d2, s);
    cr_expect(b && du_match(b, "^goroutine [0-9]+ \\[running\\]:\nrr_spin\\(\\.\\.\\.\\)\n\t[^ ]+:[0-9]+ \\+0x[0-9a-f]+\ncreated by "),
              "spinner in debug=2:\n%s", b);
    free(b);
    b = du_block(d2, r);
    cr_expect(b && du_match(b, "^goroutine [0-9]+ \\[runnable\\]:\n"),
              "ready coroutine in debug=2:\n%s", b);
    /* Go prints "created by" even for a goroutine that has not run; the
     * spawner here is the test function (a plain thread). */
    cr_expect(b && strstr(b, "created by "), "no created by:\n%s", b);
    free(b);
    b = du_block(d3, r);
    cr_expect(b && du_match(b, "^goroutine [0-9]+ \\[runnable\\]:"),
              "ready coroutine in debug=3:\n%s", b);
    free(b);
    dj *doc = dj_parse(d4, NULL, NULL);
    cr_assert_not_null(doc);
    cr_expect_str_eq(dj_str(dj_get(dj_coroutine(doc, r), "state")), "runnable");
    cr_expect_str_eq(dj_str(dj_get(dj_coroutine(doc, s), "state")), "running");
    dj_free(doc);
    free(d2);
    free(d3);
    free(d4);
}

/* ------------------------------------------------------------ spinning */

/* A coroutine that never yields keeps its worker; with LEASH_PROCS=2 the
 * other worker must still run everything else, or a dump taken on a
 * coroutine (which parks it in leash_blocking and is readied by the
 * helper thread) never returns. leash_run runs on a thread of its own so
 * that the test thread can report a stall instead of timing out. */
static atomic_int sp_stop, sp_progress;
static leash_waitgroup sp_wg = LEASH_WAITGROUP_INIT;
static NOINLINE void sp_spin(void *a) {
    (void)a;
    volatile unsigned n = 0;
    while (!atomic_load_explicit(&sp_stop, memory_order_relaxed))
        n = n + 1u;
}
static NOINLINE void sp_inc(void *a) {
    (void)a;
    atomic_fetch_add(&sp_progress, 1);
    leash_waitgroup_done(&sp_wg);
}
static int sp_spawn_main(void *a) {
    (void)a;
    leash_go(sp_spin, NULL);
    leash_waitgroup_add(&sp_wg, 10);
    for (int i = 0; i < 10; i++)
        leash_go(sp_inc, NULL);
    leash_waitgroup_wait(&sp_wg);
    return 0;
}
static void *sp_thread(void *fn) {
    leash_run((int (*)(void *))fn, NULL);
    return NULL;
}
static void sp_run(int (*fn)(void *), int want, const char *what) {
    setup_procs("2");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, sp_thread, (void *)fn), 0);
    bool ok = CU_WAIT_UNTIL(atomic_load(&sp_progress) >= want, 20000);
    int got = atomic_load(&sp_progress);
    atomic_store(&sp_stop, 1);
    cr_assert(ok, "%s: stalled at %d of %d while a coroutine spins on the "
              "other worker (an idle worker is never woken for the work "
              "queued behind it)", what, got, want);
    pthread_join(t, NULL);
}

/* testprog_diag_spinner: 200 leash_blocking calls (10 of them dumps)
 * from the main coroutine while another spins. Ten runs, 5 s each. */
Test(spinning, dumps_from_a_coroutine_while_another_spins, .timeout = 120) {
    const char *env[] = {"LEASH_PROCS=2", NULL};
    int stalls = 0;
    char last[4096] = "";
    for (int i = 0; i < 10; i++) {
        char *out = NULL;
        bool to = false;
        int st = cu_run_prog("diag_spinner", NULL, env, &out, 5, &to);
        if (to || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
            !strstr(out, "done\n")) {
            stalls++;
            snprintf(last, sizeof last, "%s", out ? out : "");
        }
        free(out);
    }
    cr_expect_eq(stalls, 0, "%d of 10 runs stalled (the main coroutine, "
                 "readied by the leash_blocking helper, is never run while "
                 "the other worker idles); last output:\n%s", stalls, last);
}

Test(spinning, coroutines_queued_behind_a_spinner_run, .timeout = 60) {
    sp_run(sp_spawn_main, 10, "coroutines started after a spinner");
}

/* The exact pc of a running coroutine's leaf is not a return address:
 * every format must resolve it as is. The loop is one instruction on its
 * own line, so the pc always sits at that line's first byte, where
 * resolving pc-1 would give the line before. */
static atomic_int leaf_started;
enum { LEAF_LINE = __LINE__ + 4 }; /* the asm line below */
static NOINLINE void leaf_spin(void *a) {
    (void)a;
    atomic_store(&leaf_started, 1);
    __asm__ volatile(SELF_LOOP);
}
static const int leaf_line = LEAF_LINE;
static char *leaf_dump[5];
static size_t leaf_len[5];
static int64_t leaf_id;

/* From the plain test thread (leaf_spin never stops: the process ends
 * with the test). */
Test(states, running_leaf_line_in_every_format, .timeout = 120) {
    setup_procs("2");
    leaf_id = leash_go(leaf_spin, NULL);
    cr_assert_gt(leaf_id, 0);
    cr_assert(CU_WAIT_UNTIL(atomic_load(&leaf_started), 10000));
    cr_assert(du_wait_state(leaf_id, "running", 10000));
    for (int d = 0; d <= 4; d++)
        leaf_dump[d] = du_dump_ex(d, false, NULL, &leaf_len[d]);
    char site[512];
    snprintf(site, sizeof site, "%s:%d", __FILE__, leaf_line);
    char *b = du_block(leaf_dump[2], leaf_id);
    cr_expect(b && strstr(b, "leaf_spin(...)\n") && strstr(b, site),
              "debug=2: want leaf_spin at %s:\n%s", site, b);
    free(b);
    b = du_block(leaf_dump[3], leaf_id);
    cr_expect(b && strstr(b, "  leaf_spin\n") && strstr(b, site),
              "debug=3: want leaf_spin at %s:\n%s", site, b);
    free(b);
    dj *doc = dj_parse(leaf_dump[4], NULL, NULL);
    const dj *g = dj_coroutine(doc, leaf_id);
    const dj *fr = g ? dj_get(g, "frames") : NULL;
    cr_expect(fr && fr->n > 0 &&
                  !strcmp(dj_str(dj_get(fr->items[0], "func")), "leaf_spin") &&
                  dj_int(dj_get(fr->items[0], "line"), 0) == leaf_line,
              "debug=4: want leaf_spin at line %d", leaf_line);
    dj_free(doc);
    long total;
    const char *err;
    pgroup *gs = parse_profile_text(leaf_dump[1], "goroutine", &total, &err);
    cr_assert(err == NULL, "%s", err);
    const pgroup *lg = group_with(gs, "leaf_spin");
    cr_expect(lg != NULL, "debug=1: no leaf_spin frame:\n%s", leaf_dump[1]);
    char want[600];
    snprintf(want, sizeof want, "\tleaf_spin+0x");
    const char *p = strstr(leaf_dump[1], want);
    const char *eol = p ? strchr(p, '\n') : NULL;
    char line[512] = "";
    if (p)
        snprintf(line, sizeof line, "%.*s", (int)(eol ? eol - p : 200), p);
    cr_expect(p && strstr(line, site),
              "debug=1: the running leaf resolves as '%s', want %s (its pc "
              "is exact, not a return address: no pc-1)\n%s", line, site,
              leaf_dump[1]);
    free_groups(gs);
    if (!du_go())
        return;
    char *file = write_temp(leaf_dump[0], leaf_len[0], ".pb.gz");
    int st;
    char *raw = pprof_run("-raw", file, &st);
    cr_assert(raw && st == 0);
    char re[600];
    /* go tool pprof -raw may append the function's start line (" s=N"). */
    snprintf(re, sizeof re, " leaf_spin %s", site);
    const char *hit = strstr(raw, re);
    char after = hit ? hit[strlen(re)] : 0;
    cr_expect(hit && (after == '\n' || after == ' '),
              "pprof: want location 'leaf_spin %s':\n%s", site, raw);
    unlink(file);
    free(file);
    free(raw);
}

/* ------------------------------------------------------------ misc */

static char *esc_json;
static int64_t esc_id;
static NOINLINE void esc_worker(void *a) {
    (void)a;
    leash_set_name("we\"ird\\name\n\t\x01");
    leash_label_set("k\"ey", "va\\l\"ue\n");
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}
static int esc_main(void *a) {
    (void)a;
    esc_id = leash_go(esc_worker, NULL);
    CU_CHECK(du_wait_state(esc_id, "waiting:chan receive (nil chan)", 10000));
    esc_json = du_dump(LEASH_DUMP_JSON);
    return 0;
}

Test(debug4, strings_are_escaped, .timeout = 60) {
    setup_procs("2");
    cr_assert_eq(leash_run(esc_main, NULL), 0);
    CU_ASSERT_CLEAN();
    const char *err;
    long at;
    dj *doc = dj_parse(esc_json, &err, &at);
    cr_assert_not_null(doc, "JSON with odd strings does not parse: %s at %ld:\n%s",
                       err, at, esc_json);
    const dj *g = dj_coroutine(doc, esc_id);
    cr_assert_not_null(g);
    cr_expect_str_eq(dj_str(dj_get(g, "name")), "we\"ird\\name\n\t\x01");
    cr_expect_str_eq(dj_str(dj_get(dj_get(g, "labels"), "k\"ey")), "va\\l\"ue\n");
    dj_free(doc);
}

Test(api, bad_arguments, .timeout = 30) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cr_expect_eq(leash_dump(NULL, 2), LEASH_EINVAL);
    cr_expect_eq(leash_dump(f, 5), LEASH_EINVAL);
    cr_expect_eq(leash_dump(f, -1), LEASH_EINVAL);
    cr_expect_eq(leash_leak_dump(NULL, 2), LEASH_EINVAL);
    cr_expect_eq(leash_leak_dump(f, 7), LEASH_EINVAL);
    /* Nothing running: an empty dump in each format. */
    for (int d = 1; d <= 4; d++)
        cr_expect_eq(leash_dump(f, d), 0, "leash_dump(%d) with no coroutines", d);
    fclose(f);
    cr_expect(strstr(buf, "goroutine profile: total 0\n"), "%s", buf);
    free(buf);
}

/* leash_leak_dump: only the coroutines proven leaked, in every format. */
static char *ld[5];
static size_t ld_len[5];
static int ld_rc[5];
static int64_t ld_nil1, ld_nil2, ld_ok;
static leash_chan *ld_ch;
static NOINLINE void ld_nil(void *a) {
    (void)a;
    int v;
    leash_recv_n(NULL, &v, sizeof v);
}
static NOINLINE void ld_live(void *a) {
    (void)a;
    int v;
    leash_recv(ld_ch, &v);
}
static int ld_main(void *a) {
    (void)a;
    ld_ch = leash_chan_make(sizeof(int), 0);
    ld_nil1 = leash_go(ld_nil, NULL);
    ld_nil2 = leash_go(ld_nil, NULL);
    ld_ok = leash_go(ld_live, NULL);
    CU_CHECK(du_wait_state(ld_nil1, "waiting:chan receive (nil chan)", 10000));
    CU_CHECK(du_wait_state(ld_nil2, "waiting:chan receive (nil chan)", 10000));
    CU_CHECK(du_wait_state(ld_ok, "waiting:chan receive", 10000));
    for (int d = 0; d <= 4; d++)
        ld[d] = du_dump_ex(d, true, &ld_rc[d], &ld_len[d]);
    leash_close(ld_ch);
    return 0;
}

Test(leakdump, every_format_lists_only_the_leaked, .timeout = 180) {
    setup_procs("2");
    cr_assert_eq(leash_run(ld_main, NULL), 0);
    CU_ASSERT_CLEAN();
    for (int d = 0; d <= 4; d++)
        cr_expect_eq(ld_rc[d], 2, "leash_leak_dump(%d) = %d", d, ld_rc[d]);
    cr_expect(du_has_block(ld[2], ld_nil1) && du_has_block(ld[2], ld_nil2) &&
                  !du_has_block(ld[2], ld_ok) && !du_has_block(ld[2], 1),
              "debug=2:\n%s", ld[2]);
    cr_expect_eq(du_count(ld[2], "\ngoroutine ") + (strncmp(ld[2], "goroutine ", 10) == 0), 2);
    long total = 0;
    const char *err;
    pgroup *gs = parse_profile_text(ld[1], "goroutineleak", &total, &err);
    cr_expect(err == NULL, "%s", err);
    cr_expect_eq(total, 2, "debug=1:\n%s", ld[1]);
    cr_expect(gs && gs[0].count == 2 && !gs[1].count, "one group of 2:\n%s", ld[1]);
    free_groups(gs);
    char *b = du_block(ld[3], ld_nil1);
    cr_expect(b && strstr(b, "LEAKED (blocked forever on a nil channel)"), "%s", b);
    free(b);
    dj *doc = dj_parse(ld[4], NULL, NULL);
    cr_assert_not_null(doc);
    cr_expect_eq(dj_get(doc, "coroutines")->n, 2);
    dj_free(doc);
    if (!du_go())
        return;
    char *file = write_temp(ld[0], ld_len[0], ".pb.gz");
    int st;
    char *raw = pprof_run("-raw", file, &st);
    cr_assert(raw && st == 0, "%s", raw);
    rawprof rp;
    /* Go 1.26's name for it: goroutineleak/count. */
    const char *perr = parse_raw_type(raw, &rp, "goroutineleak");
    cr_assert(perr == NULL, "%s", perr);
    cr_expect_eq(rp.total, 2, "%s", raw);
    cr_expect(raw_has_func(&rp, "ld_nil") && !raw_has_func(&rp, "ld_live"), "%s", raw);
    free_raw(&rp);
    unlink(file);
    free(file);
    free(raw);
}

/* ------------------------------------------------- compared with Go */

/* The same scenario as tests/go/queryall.go: queryAll four times, each
 * time two of three senders left blocked for good. */
static leash_chan *qa_chans[4];
static int qa_delay_ms[3] = {0, 20, 40};
typedef struct {
    leash_chan *ch;
    int i;
} qa_arg;
static qa_arg qa_args[4][3];

/* noipa: no clone (queryAll.isra.0) of these; see test_leakcheck.c.
 * clang makes no such clones and has no noipa. */
#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif
static NOIPA void ask(void *arg) {
    qa_arg *a = arg;
    leash_sleep(qa_delay_ms[a->i] * MS);
    leash_send(a->ch, &a->i); /* the two losers block here for good */
}

static NOIPA int queryAll(int round) {
    leash_chan *ch = leash_chan_make(sizeof(int), 0);
    for (int i = 0; i < 3; i++) {
        qa_args[round][i] = (qa_arg){ch, i};
        leash_go(ask, &qa_args[round][i], ch);
    }
    int v = -1;
    leash_recv(ch, &v);
    leash_release(ch);
    qa_chans[round] = ch;
    return v;
}

static char *qa_d2, *qa_d1;
static int qa_main(void *a) {
    (void)a;
    leash_label_set("test", "queryall");
    leash_label_set("b", "2");
    for (int i = 0; i < 4; i++)
        queryAll(i);
    leash_sleep(100 * MS); /* every loser is blocked by now */
    qa_d2 = du_dump(LEASH_DUMP_STACKS);
    qa_d1 = du_dump(LEASH_DUMP_COUNTS);
    return 0;
}

typedef struct {
    char reason[64];
    char top[128];      /* first frame's function, package stripped */
    char creator[128];  /* created by, package stripped */
    int nframes;
} gblock;

static void strip_pkg(char *dst, size_t n, const char *fn) {
    const char *p = strncmp(fn, "main.", 5) ? fn : fn + 5;
    snprintf(dst, n, "%s", p);
}

/* Parses debug=2 text into blocks, checking each line's shape against
 * Go's; returns the number of blocks or -1 with *err. */
static int parse_go_stacks(const char *text, gblock *out, int max,
                           const char **err) {
    int n, nb = 0;
    char **l = du_lines(text, &n);
    *err = NULL;
    for (int i = 0; i < n && !*err;) {
        if (!l[i][0]) {
            i++;
            continue;
        }
        char *caps[2];
        if (!du_match_caps(l[i], "^goroutine ([0-9]+) \\[([^],]+)(, [0-9]+ minutes)?\\]:$", caps, 2)) {
            *err = FAILF("line %d: '%s' is not a goroutine header", i + 1, l[i]);
            break;
        }
        gblock *b = nb < max ? &out[nb] : NULL;
        nb++;
        if (b) {
            memset(b, 0, sizeof *b);
            snprintf(b->reason, sizeof b->reason, "%s", caps[1]);
        }
        free(caps[0]);
        free(caps[1]);
        i++;
        for (; i < n && l[i][0]; i += 2) {
            char *fc[1];
            bool created = !strncmp(l[i], "created by ", 11);
            if (created) {
                if (!du_match_caps(l[i], "^created by ([^ ]+)( in goroutine [0-9]+)?$", fc, 1)) {
                    *err = FAILF("line %d: '%s' is not 'created by F'", i + 1, l[i]);
                    break;
                }
                if (b)
                    strip_pkg(b->creator, sizeof b->creator, fc[0]);
            } else {
                if (!du_match_caps(l[i], "^([^ (]+(\\([^)]*\\)[^ (]*)?)\\(.*\\)$", fc, 1)) {
                    *err = FAILF("line %d: '%s' is not 'func(args)'", i + 1, l[i]);
                    break;
                }
                if (b && b->nframes++ == 0)
                    strip_pkg(b->top, sizeof b->top, fc[0]);
            }
            free(fc[0]);
            if (i + 1 >= n || !du_match(l[i + 1], "^\t[^ ]+:[0-9]+( \\+0x[0-9a-f]+)?$")) {
                *err = FAILF("line %d: '%s' is not '\\tfile:line +0x..'", i + 2,
                             i + 1 < n ? l[i + 1] : "");
                break;
            }
        }
    }
    du_free_lines(l);
    return *err ? -1 : nb;
}

/* Runs tests/go/queryall.go; its output, or NULL (then *why). */
static char *run_go_queryall(const char **why) {
    char *cmd = NULL;
    if (asprintf(&cmd, "%s && cd '%s' && timeout 120 %s run '%s/tests/go/queryall.go'",
                 go_env(), go_tmp, du_go(), LEASH_SOURCE_DIR) < 0)
        return NULL;
    int st;
    char *out = du_run_cmd(cmd, &st);
    free(cmd);
    if (st != 0 || !out || !strstr(out, "=== debug=1\n")) {
        *why = FAILF("go run tests/go/queryall.go failed (%d):\n%s", st, out);
        free(out);
        return NULL;
    }
    return out;
}

static int count_reason(const gblock *b, int n, const char *reason,
                        const char *top, const char *creator) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(b[i].reason, reason) && (!top || !strcmp(b[i].top, top)) &&
            (!creator || !strcmp(b[i].creator, creator)))
            k++;
    return k;
}

Test(go_compat, queryall_debug2_and_debug1_like_go, .timeout = 240) {
    if (!du_go())
        cr_skip_test("Go is not installed: no comparison with Go's output");
    setup_procs("2");
    cr_assert_eq(leash_run(qa_main, NULL), 0);
    CU_ASSERT_CLEAN();
    const char *why = NULL;
    char *go = run_go_queryall(&why);
    cr_assert_not_null(go, "%s", why);
    char *go1 = strstr(go, "=== debug=1\n");
    *go1 = 0;
    go1 += strlen("=== debug=1\n");
    char *go2 = strstr(go, "=== debug=2\n") + strlen("=== debug=2\n");

    gblock gb[64], lb[64];
    const char *err;
    int ng = parse_go_stacks(go2, gb, 64, &err);
    cr_assert_geq(ng, 0, "Go's own debug=2 does not parse (the checker is "
                  "wrong): %s\n%s", err, go2);
    int nl = parse_go_stacks(qa_d2, lb, 64, &err);
    cr_assert_geq(nl, 0, "leash's debug=2 is not Go's shape: %s\n%s", err, qa_d2);
    /* Same leaked goroutines: 8 in [chan send], top frame ask, created by
     * queryAll, one frame each. */
    int gsend = count_reason(gb, ng, "chan send", "ask", "queryAll");
    int lsend = count_reason(lb, nl, "chan send", "ask", "queryAll");
    cr_expect_eq(gsend, 8, "Go: %d blocked senders\n%s", gsend, go2);
    cr_expect_eq(lsend, gsend, "leash: %d blocked senders in ask created by "
                 "queryAll, Go %d\n%s", lsend, gsend, qa_d2);
    for (int i = 0; i < nl; i++)
        if (!strcmp(lb[i].reason, "chan send"))
            cr_expect_eq(lb[i].nframes, 1, "leash shows %d frames for a "
                         "sender (Go shows 1: ask)", lb[i].nframes);
    /* Every goroutine but the caller is a sender, in both. */
    cr_expect_eq(ng, 9);
    cr_expect_eq(nl, ng, "leash: %d goroutines, Go %d", nl, ng);

    /* debug=1: the 8 senders in one group, with the labels line. */
    long gtot = 0, ltot = 0;
    /* Go's '#' lines skip runtime frames. */
    pgroup *ggs = parse_profile_text_ex(go1, "goroutine", false, &gtot, &err);
    cr_assert(err == NULL, "Go's own debug=1 does not parse (the checker is "
              "wrong): %s\n%s", err, go1);
    pgroup *lgs = parse_profile_text(qa_d1, "goroutine", &ltot, &err);
    cr_assert(err == NULL, "leash's debug=1: %s\n%s", err, qa_d1);
    cr_expect_eq(ltot, gtot, "total: leash %ld, Go %ld", ltot, gtot);
    const pgroup *g8 = group_with(ggs, "main.ask");
    const pgroup *l8 = group_with(lgs, "ask");
    cr_assert(g8 && l8, "no ask group:\n%s\n%s", go1, qa_d1);
    cr_expect_eq(l8->count, g8->count, "ask group: leash %ld, Go %ld",
                 l8->count, g8->count);
    cr_expect_eq(g8->count, 8);
    /* Go sorts the labels by key: {"b":"2", "test":"queryall"}. */
    cr_expect(g8->labels && l8->labels && !strcmp(l8->labels, g8->labels),
              "labels line: leash %s, Go %s", l8->labels, g8->labels);
    free_groups(ggs);
    free_groups(lgs);
    free(go);
}

/* Go prints the goroutine that asks for the dump first, as [running]. */
static char *self_d2;
static int self_main(void *a) {
    (void)a;
    self_d2 = du_dump(LEASH_DUMP_STACKS);
    return 0;
}
Test(go_compat, caller_is_running_and_first, .timeout = 60) {
    setup_procs("2");
    cr_assert_eq(leash_run(self_main, NULL), 0);
    char *b = du_block(self_d2, 1);
    cr_assert_not_null(b, "%s", self_d2);
    cr_expect(!strncmp(b, "goroutine 1 [running]:\n", 23),
              "the coroutine calling leash_dump shows as '%.*s' (Go: "
              "'goroutine 1 [running]:')", (int)(strchr(b, '\n') - b), b);
    cr_expect(strstr(b, "\nself_main(...)\n"), "%s", b);
    cr_expect(!strncmp(self_d2, "goroutine 1 ", 12), "the caller is not first");
    free(b);
}

/* ---------------------------------------------------- dump on a signal */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    char tmp[4096];
    for (size_t r; (r = fread(tmp, 1, sizeof tmp, f)) > 0;)
        fwrite(tmp, 1, r, m);
    fclose(m);
    fclose(f);
    return buf;
}

static void check_sigdump(const char *format) {
    char path[] = "/tmp/leash-sigdump-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char envf[128], envfmt[64];
    snprintf(envf, sizeof envf, "LEASH_DUMP_FILE=%s", path);
    snprintf(envfmt, sizeof envfmt, "LEASH_DUMP_FORMAT=%s", format);
    const char *env[] = {"LEASH_DUMP_SIGNAL=USR1", envf, envfmt, NULL};
    char *out = NULL;
    bool to = false;
    int st = cu_run_prog("diag_sigdump", NULL, env, &out, 60, &to);
    cr_assert(!to, "timed out:\n%s", out);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "status %#x (a dump on a signal must not end the process):\n%s",
              st, out);
    cr_expect(strstr(out, "alive after 2 dump(s)"), "%s", out);
    char *site = strstr(out, "spawn-site=");
    cr_assert_not_null(site, "%s", out);
    site += strlen("spawn-site=");
    *strchr(site, '\n') = 0;
    char *dump = slurp(path);
    cr_assert_not_null(dump);
    if (!strcmp(format, "2")) {
        cr_expect_eq(du_count(dump, "goroutine 2 [chan receive]:\nwaiter(...)\n"), 2,
                     "want the waiter in both dumps:\n%s", dump);
        char cb[600];
        snprintf(cb, sizeof cb, "created by run in goroutine 1\n\t%s +0x", site);
        cr_expect_eq(du_count(dump, cb), 2, "want '%s' twice:\n%s", cb, dump);
    } else {
        cr_expect_eq(du_count(dump, "goroutine 2 \"sig-waiter\" [chan receive, "), 2,
                     "want the named waiter in both dumps:\n%s", dump);
        char sp[600];
        snprintf(sp, sizeof sp, "    spawned at %s in run by goroutine 1\n", site);
        cr_expect_eq(du_count(dump, sp), 2, "want '%s' twice:\n%s", sp, dump);
    }
    unlink(path);
    free(dump);
    free(out);
}

Test(sigdump, go_format_does_not_end_the_process, .timeout = 120) {
    check_sigdump("2");
}

Test(sigdump, leash_format_does_not_end_the_process, .timeout = 120) {
    check_sigdump("3");
}
