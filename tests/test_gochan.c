/* SPDX-License-Identifier: MIT */
/*
 * test_gochan.c — the behaviour Go's own test/chan programs check,
 * re-expressed for leash (written from the behaviour, not translated):
 * nonblock, fifo, doubleselect, sieve, zerosize, select2 (no allocation
 * per select), select6 (a woken select leaves no stale waiter), select7
 * (receive in every form), goroutines (a daisy chain).
 *
 * Same harness as test_chan.c: CHECK() records failures from coroutines
 * and threads, finish() asserts on the test thread.
 */
#define _GNU_SOURCE 1
#include "chan_harness.h"

/* Coroutine-count barrier: waits until only `n` coroutines are left. */
#define WAIT_COROUTINES(n) CHECK(WAIT_UNTIL(leash_num_coroutines() == (n), 30))

/* ------------------------------------------------------------ nonblock */

/* Element types of several sizes, as Go's test uses int32/int64/bool/
 * string; the "value" of each is derived from a seed byte. */
typedef struct {
    size_t size;
    unsigned char seed;
} nb_type;

static void nb_fill(unsigned char *p, const nb_type *t) {
    for (size_t i = 0; i < t->size; i++)
        p[i] = (unsigned char)(t->seed + i * 13);
}

static bool nb_equal(const unsigned char *p, const nb_type *t) {
    for (size_t i = 0; i < t->size; i++)
        if (p[i] != (unsigned char)(t->seed + i * 13))
            return false;
    return true;
}

typedef struct {
    leash_chan *c, *strobe;
    const nb_type *t;
} nb_args;

static void nb_receiver(void *arg) {
    nb_args *a = arg;
    unsigned char buf[64];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(leash_recv_n(a->c, a->t->size ? buf : NULL, a->t->size), 0);
    CHECK(nb_equal(buf, a->t));
    CHECK_EQ(leash_send_n(a->strobe, NULL, 0), 0);
}

static void nb_sender(void *arg) {
    nb_args *a = arg;
    unsigned char buf[64];
    nb_fill(buf, a->t);
    CHECK_EQ(leash_send_n(a->c, a->t->size ? buf : NULL, a->t->size), 0);
    CHECK_EQ(leash_send_n(a->strobe, NULL, 0), 0);
}

/* Retries a non-blocking op, yielding / sleeping in between, until it
 * succeeds: the partner must show up (bounded by 10 s). */
#define NB_RETRY(op)                                                       \
    ({                                                                     \
        int _rc;                                                           \
        int64_t _dl = leash_now() + 10 * SEC;                              \
        int _tries = 0;                                                    \
        while ((_rc = (op)) == LEASH_EAGAIN && leash_now() < _dl) {        \
            if (++_tries % 64)                                             \
                leash_yield();                                             \
            else                                                           \
                leash_sleep(100000);                                       \
        }                                                                  \
        _rc;                                                               \
    })

static int nonblock_main(void *arg) {
    (void)arg;
    static const nb_type types[] = {{1, 0x11}, {4, 0x22}, {8, 0x33},
                                    {24, 0x44}, {64, 0x55}, {0, 0}};
    static const size_t caps[] = {0, 1, 2, 5, 10};
    unsigned char buf[64];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
            const nb_type *t = &types[ti];
            size_t cap = caps[ci];
            void *b = t->size ? buf : NULL;
            leash_chan *c = leash_chan_make(t->size, cap);
            leash_chan *strobe = leash_chan_make(0, 0);
            nb_args a = {c, strobe, t};

            /* Nothing to receive. */
            CHECK_EQ(leash_try_recv_n(c, b, t->size), LEASH_EAGAIN);
            /* Unbuffered with nobody receiving: a send is not ready. */
            nb_fill(buf, t);
            if (cap == 0)
                CHECK_EQ(leash_try_send_n(c, b, t->size), LEASH_EAGAIN);

            /* A partner receives: the non-blocking send gets through. */
            go_ok(leash_go(nb_receiver, &a, c, strobe));
            CHECK_EQ(NB_RETRY(leash_try_send_n(c, b, t->size)), 0);
            CHECK_EQ(leash_recv_n(strobe, NULL, 0), 0);

            /* A partner sends: the non-blocking receive gets it. */
            go_ok(leash_go(nb_sender, &a, c, strobe));
            memset(buf, 0, sizeof buf);
            CHECK_EQ(NB_RETRY(leash_try_recv_n(c, b, t->size)), 0);
            CHECK(nb_equal(buf, t));
            CHECK_EQ(leash_recv_n(strobe, NULL, 0), 0);

            /* Buffered: exactly cap non-blocking sends fit. */
            nb_fill(buf, t);
            for (size_t i = 0; i < cap; i++)
                CHECK_EQ(leash_try_send_n(c, b, t->size), 0);
            CHECK_EQ(leash_try_send_n(c, b, t->size), LEASH_EAGAIN);
            CHECK_EQ(leash_chan_len(c), (int)cap);
            for (size_t i = 0; i < cap; i++) {
                memset(buf, 0, sizeof buf);
                CHECK_EQ(leash_try_recv_n(c, b, t->size), 0);
                CHECK(nb_equal(buf, t));
            }
            CHECK_EQ(leash_try_recv_n(c, b, t->size), LEASH_EAGAIN);

            /* The same through try_select (Go's select with default). */
            leash_case k = {.ch = c, .dir = LEASH_RECV, .elem = b,
                            .size = t->size};
            CHECK_EQ(leash_try_select(&k, 1), LEASH_EAGAIN);
            go_ok(leash_go(nb_sender, &a, c, strobe));
            memset(buf, 0, sizeof buf);
            CHECK_EQ(NB_RETRY(leash_try_select(&k, 1)), 0);
            CHECK(nb_equal(buf, t));
            CHECK_EQ(leash_recv_n(strobe, NULL, 0), 0);
            go_ok(leash_go(nb_receiver, &a, c, strobe));
            nb_fill(buf, t);
            k.dir = LEASH_SEND;
            CHECK_EQ(NB_RETRY(leash_try_select(&k, 1)), 0);
            CHECK_EQ(leash_recv_n(strobe, NULL, 0), 0);

            WAIT_COROUTINES(1);
            leash_release(c);
            leash_release(strobe);
        }
    }
    return 0;
}

Test(gochan, nonblock, .timeout = TMO(60)) { run_main(nonblock_main, NULL); }

/* Go's nonblock polls with runtime.Gosched() while its partners sleep on
 * timers. Here the partner sleeps a little before it receives or sends,
 * and the main coroutine polls with try ops and leash_yield() only: the
 * partner's timer must fire although a worker is busy polling. */
typedef struct {
    leash_chan *c;
    int64_t nap;
    bool send;
    _Atomic int done;
} nap_args;

static void nap_partner(void *arg) {
    nap_args *a = arg;
    leash_sleep(a->nap);
    int v = 7;
    if (a->send)
        CHECK_EQ(leash_send(a->c, &v), 0);
    else
        CHECK_EQ(leash_recv(a->c, &v), 0);
    atomic_store(&a->done, 1);
}

static int nonblock_nap_main(void *arg) {
    (void)arg;
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    uint32_t seed = 2463534242u;
    int64_t worst = 0;
    for (int round = 0; round < 1000; round++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        nap_args a = {c, 1 + (int64_t)(seed % 2000000), round & 1, 0};
        go_ok(leash_go(nap_partner, &a, c));
        int v = 7, rc;
        int64_t t0 = leash_now(), dl = t0 + 5 * SEC;
        while ((rc = a.send ? leash_try_recv(c, &v) : leash_try_send(c, &v)) ==
                   LEASH_EAGAIN &&
               leash_now() < dl)
            leash_yield();
        int64_t took = leash_now() - t0;
        if (took > worst)
            worst = took;
        if (!CHECK_EQ(rc, 0)) {
            fprintf(stderr,
                    "nonblock: round %d: a partner sleeping %.3f ms never "
                    "woke while this coroutine polled (%.1f s)\n",
                    round, a.nap / 1e6, took / 1e9);
            return 1; /* the partner still points at `a`: stop here */
        }
        CHECK(WAIT_UNTIL(atomic_load(&a.done), 10));
        WAIT_COROUTINES(1);
    }
    fprintf(stderr, "nonblock with sleeping partners: worst wait %.3f ms\n",
            worst / 1e6);
    leash_release(c);
    return 0;
}

Test(gochan, nonblock_partner_sleeps, .timeout = TMO(60)) {
    run_main(nonblock_nap_main, NULL);
}

/* The other way round: a coroutine naps, then polls with try_recv and
 * leash_yield() until the main coroutine, back from leash_sleep(1 ms),
 * sends. The poller gives up (and closes the channel) after 5 s. */
typedef struct {
    leash_chan *c;
    int64_t nap;
    _Atomic int outcome; /* 0 polling, 1 received, -1 gave up */
} poll_args;

static void poller(void *arg) {
    poll_args *a = arg;
    leash_sleep(a->nap);
    int v = 0, rc;
    int64_t dl = leash_now() + 5 * SEC;
    while ((rc = leash_try_recv(a->c, &v)) == LEASH_EAGAIN &&
           leash_now() < dl)
        leash_yield();
    if (rc == 0 && v == 7) {
        atomic_store(&a->outcome, 1);
    } else {
        CHECK_EQ(leash_close(a->c), 0);
        atomic_store(&a->outcome, -1);
    }
}

static int poll_sleeper_main(void *arg) {
    (void)arg;
    uint32_t seed = 88172645u;
    for (int round = 0; round < 1500; round++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        poll_args a = {leash_chan_make(sizeof(int), 0),
                       1 + (int64_t)(seed % 2000000), 0};
        go_ok(leash_go(poller, &a, a.c));
        int64_t t0 = leash_now();
        leash_sleep(MS);
        int64_t slept = leash_now() - t0;
        int v = 7;
        int rc = leash_send(a.c, &v);
        CHECK(WAIT_UNTIL(atomic_load(&a.outcome) != 0, 10));
        if (!CHECK_EQ(rc, 0) || !CHECK_EQ(atomic_load(&a.outcome), 1)) {
            fprintf(stderr,
                    "round %d: leash_sleep(1 ms) took %.3f s while another "
                    "coroutine polled with leash_yield()\n",
                    round, slept / 1e9);
            break;
        }
        WAIT_COROUTINES(1);
        leash_release(a.c);
    }
    return 0;
}

Test(gochan, nonblock_poller_waits_for_sleeper, .timeout = TMO(60)) {
    run_main(poll_sleeper_main, NULL);
}

/* ---------------------------------------------------------------- fifo */

Test(gochan, fifo_async, .timeout = TMO(10)) {
    enum { N = 10 };
    leash_chan *c = leash_chan_make(sizeof(int), N);
    cr_assert_not_null(c);
    for (int i = 0; i < N; i++)
        cr_assert_eq(leash_send(c, &i), 0);
    for (int i = 0; i < N; i++) {
        int v = -1;
        cr_assert_eq(leash_recv(c, &v), 0);
        cr_assert_eq(v, i);
    }
    leash_release(c);
}

/* Receivers chained: receiver i may receive only after receiver i-1
 * did; the values, sent 0..N-1 on one channel, arrive in that order. */
typedef struct {
    leash_chan *c, *in, *out;
    int want;
} link_args;

static void chain_receiver(void *arg) {
    link_args *l = arg;
    CHECK_EQ(leash_recv_n(l->in, NULL, 0), 0);
    int v = -1;
    CHECK_EQ(leash_recv(l->c, &v), 0);
    CHECK_EQ(v, l->want);
    CHECK_EQ(leash_send_n(l->out, NULL, 0), 0);
}

/* Senders chained: sender i sends only after sender i-1's send
 * completed. */
static void chain_sender(void *arg) {
    link_args *l = arg;
    CHECK_EQ(leash_recv_n(l->in, NULL, 0), 0);
    CHECK_EQ(leash_send(l->c, &l->want), 0);
    CHECK_EQ(leash_send_n(l->out, NULL, 0), 0);
}

static int fifo_sync_main(void *arg) {
    size_t cap = (size_t)(uintptr_t)arg;
    enum { N = 300 };
    leash_chan *c = leash_chan_make(sizeof(int), cap);
    leash_chan *sig[N + 1];
    static link_args links[N];
    for (int i = 0; i <= N; i++)
        sig[i] = leash_chan_make(0, 0);

    /* Receivers. */
    for (int i = 0; i < N; i++) {
        links[i] = (link_args){c, sig[i], sig[i + 1], i};
        go_ok(leash_go(chain_receiver, &links[i], c, sig[i], sig[i + 1]));
    }
    CHECK_EQ(leash_send_n(sig[0], NULL, 0), 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ(leash_send(c, &i), 0);
    CHECK_EQ(leash_recv_n(sig[N], NULL, 0), 0);
    WAIT_COROUTINES(1);

    /* Senders. */
    for (int i = 0; i < N; i++) {
        links[i] = (link_args){c, sig[i], sig[i + 1], 1000 + i};
        go_ok(leash_go(chain_sender, &links[i], c, sig[i], sig[i + 1]));
    }
    CHECK_EQ(leash_send_n(sig[0], NULL, 0), 0);
    for (int i = 0; i < N; i++) {
        int v = -1;
        CHECK_EQ(leash_recv(c, &v), 0);
        CHECK_EQ(v, 1000 + i);
    }
    CHECK_EQ(leash_recv_n(sig[N], NULL, 0), 0);
    WAIT_COROUTINES(1);
    for (int i = 0; i <= N; i++)
        leash_release(sig[i]);
    leash_release(c);
    return 0;
}

Test(gochan, fifo_sync_chained_unbuffered, .timeout = TMO(30)) {
    run_main(fifo_sync_main, (void *)(uintptr_t)0);
}

Test(gochan, fifo_sync_chained_buffered, .timeout = TMO(30)) {
    run_main(fifo_sync_main, (void *)(uintptr_t)4);
}

/* -------------------------------------------------------- doubleselect */

#define DS_CH 4
#define DS_SENDERS 4
#define DS_N (SAN ? 5000 : 20000) /* values per sender */

typedef struct {
    leash_chan *in[DS_CH];
    leash_chan *mux;
    leash_chan *done; /* cap large: one signal per finished coroutine */
    int base;
} ds_args;

/* Sends base..base+N-1, each through a select over the DS_CH channels. */
static void ds_sender(void *arg) {
    ds_args *a = arg;
    for (int i = 0; i < DS_N; i++) {
        int v = a->base + i;
        leash_case cs[DS_CH];
        for (int k = 0; k < DS_CH; k++)
            cs[k] = LEASH_SEND_CASE(a->in[k], &v);
        int rc = leash_select(cs, DS_CH);
        if (!CHECK(rc >= 0 && rc < DS_CH))
            break;
        if ((i & 255) == 0)
            leash_yield();
    }
    CHECK_EQ(leash_send_n(a->done, NULL, 0), 0);
}

typedef struct {
    leash_chan *in, *out, *done;
} mux_args;

static void ds_mux(void *arg) {
    mux_args *m = arg;
    int v, rc;
    while ((rc = leash_recv(m->in, &v)) == 0)
        if (!CHECK_EQ(leash_send(m->out, &v), 0))
            break;
    CHECK_EQ(rc, LEASH_ECLOSED);
    CHECK_EQ(leash_send_n(m->done, NULL, 0), 0);
}

static void ds_receiver(void *arg) {
    ds_args *a = arg;
    int total = DS_SENDERS * DS_N;
    unsigned char *seen = calloc((size_t)total, 1);
    if (!CHECK(seen))
        return;
    int v, rc, n = 0;
    while ((rc = leash_recv(a->mux, &v)) == 0) {
        if (!CHECK(v >= 0 && v < total))
            continue;
        if (seen[v]++)
            note_fail(__FILE__, __LINE__, "value received twice", v, seen[v]);
        n++;
    }
    CHECK_EQ(rc, LEASH_ECLOSED);
    CHECK_EQ(n, total);
    for (int i = 0; i < total; i++)
        if (seen[i] != 1) {
            note_fail(__FILE__, __LINE__, "value lost or duplicated", i,
                      seen[i]);
            break;
        }
    free(seen);
    CHECK_EQ(leash_send_n(a->done, NULL, 0), 0);
}

static int doubleselect_main(void *arg) {
    size_t cap = (size_t)(uintptr_t)arg;
    ds_args a = {.mux = leash_chan_make(sizeof(int), cap),
                 .done = leash_chan_make(0, 64)};
    for (int k = 0; k < DS_CH; k++)
        a.in[k] = leash_chan_make(sizeof(int), cap);
    ds_args sa[DS_SENDERS];
    mux_args ma[DS_CH];
    go_ok(leash_go(ds_receiver, &a));
    for (int k = 0; k < DS_CH; k++) {
        ma[k] = (mux_args){a.in[k], a.mux, a.done};
        go_ok(leash_go(ds_mux, &ma[k]));
    }
    for (int s = 0; s < DS_SENDERS; s++) {
        sa[s] = a;
        sa[s].base = s * DS_N;
        go_ok(leash_go(ds_sender, &sa[s]));
    }
    for (int s = 0; s < DS_SENDERS; s++)
        CHECK_EQ(leash_recv_n(a.done, NULL, 0), 0);
    for (int k = 0; k < DS_CH; k++)
        CHECK_EQ(leash_close(a.in[k]), 0);
    for (int k = 0; k < DS_CH; k++)
        CHECK_EQ(leash_recv_n(a.done, NULL, 0), 0);
    CHECK_EQ(leash_close(a.mux), 0);
    CHECK_EQ(leash_recv_n(a.done, NULL, 0), 0);
    WAIT_COROUTINES(1);
    for (int k = 0; k < DS_CH; k++)
        leash_release(a.in[k]);
    leash_release(a.mux);
    leash_release(a.done);
    return 0;
}

Test(gochan, doubleselect_unbuffered, .timeout = TMO(60)) {
    run_main(doubleselect_main, (void *)(uintptr_t)0);
}

Test(gochan, doubleselect_buffered, .timeout = TMO(60)) {
    run_main(doubleselect_main, (void *)(uintptr_t)8);
}

/* --------------------------------------------------------------- sieve */

/* Each stage stops when `quit` is closed: every send selects on it. */
typedef struct {
    leash_chan *in, *out, *quit;
    int prime;
} stage;

static bool send_or_quit(leash_chan *out, int v, leash_chan *quit) {
    leash_case cs[2] = {LEASH_SEND_CASE(out, &v),
                        {.ch = quit, .dir = LEASH_RECV, .elem = NULL}};
    int rc = leash_select(cs, 2);
    CHECK(rc == 0 || rc == 1);
    return rc == 0;
}

static void generate(void *arg) {
    stage *s = arg;
    for (int i = 2; send_or_quit(s->out, i, s->quit); i++)
        ;
    free(s);
}

static void filter(void *arg) {
    stage *s = arg;
    for (;;) {
        int v;
        leash_case cs[2] = {LEASH_RECV_CASE(s->in, &v),
                            {.ch = s->quit, .dir = LEASH_RECV, .elem = NULL}};
        int rc = leash_select(cs, 2);
        if (rc != 0)
            break;
        if (!CHECK_EQ(cs[0].ok, 1))
            break;
        if (v % s->prime != 0 && !send_or_quit(s->out, v, s->quit))
            break;
    }
    free(s);
}

static int sieve_main(void *arg) {
    (void)arg;
    enum { NPRIMES = 100 };
    static const int first[NPRIMES] = {
        2,   3,   5,   7,   11,  13,  17,  19,  23,  29,  31,  37,  41,
        43,  47,  53,  59,  61,  67,  71,  73,  79,  83,  89,  97,  101,
        103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
        173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233, 239,
        241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307, 311, 313,
        317, 331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389, 397,
        401, 409, 419, 421, 431, 433, 439, 443, 449, 457, 461, 463, 467,
        479, 487, 491, 499, 503, 509, 521, 523, 541};
    leash_chan *quit = leash_chan_make(0, 0);
    leash_chan *chans[NPRIMES + 1];
    int nchans = 0;
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    chans[nchans++] = c;
    stage *g = malloc(sizeof *g);
    *g = (stage){NULL, c, quit, 0};
    go_ok(leash_go(generate, g, c, quit));
    for (int i = 0; i < NPRIMES; i++) {
        int p = -1;
        CHECK_EQ(leash_recv(c, &p), 0);
        if (!CHECK_EQ(p, first[i]))
            break;
        leash_chan *next = leash_chan_make(sizeof(int), 0);
        chans[nchans++] = next;
        stage *f = malloc(sizeof *f);
        *f = (stage){c, next, quit, p};
        go_ok(leash_go(filter, f, c, next, quit));
        c = next;
    }
    CHECK_EQ(leash_num_coroutines(), 1 + 1 + NPRIMES);
    /* Closing quit stops the whole pipeline: nothing leaks. */
    CHECK_EQ(leash_close(quit), 0);
    WAIT_COROUTINES(1);
    for (int i = 0; i < nchans; i++)
        leash_release(chans[i]);
    leash_release(quit);
    return 0;
}

Test(gochan, sieve_first_100_primes, .timeout = TMO(30)) {
    run_main(sieve_main, NULL);
}

/* ------------------------------------------------------------ zerosize */

static void zs_sender(void *arg) {
    leash_chan *c = arg;
    char z[0];
    for (int i = 0; i < 1000; i++)
        if (!CHECK_EQ(leash_send(c, &z), 0))
            break;
    CHECK_EQ(leash_close(c), 0);
}

static int zerosize_main(void *arg) {
    (void)arg;
    /* Distinct zero-size channels are distinct objects. */
    leash_chan *a = leash_chan_make(0, 0), *b = leash_chan_make(0, 0);
    leash_chan *bb = leash_chan_make(0, 100);
    CHECK(a && b && bb && a != b && b != bb);
    CHECK_EQ(leash_chan_cap(bb), 100);

    char z[0];
    go_ok(leash_go(zs_sender, a, a));
    int n = 0, rc;
    while ((rc = leash_recv(a, &z)) == 0)
        n++;
    CHECK_EQ(rc, LEASH_ECLOSED);
    CHECK_EQ(n, 1000);

    /* Buffered: len counts zero-size elements. */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(leash_try_send(bb, &z), 0);
    CHECK_EQ(leash_chan_len(bb), 100);
    CHECK_EQ(leash_try_send(bb, &z), LEASH_EAGAIN);

    /* Zero-size select cases, through the macros and by hand. */
    leash_case cs[3] = {LEASH_RECV_CASE(bb, &z), LEASH_SEND_CASE(b, &z),
                        {.ch = bb, .dir = LEASH_RECV, .elem = NULL,
                         .size = 0}};
    CHECK_EQ(cs[0].size, 0);
    for (int i = 0; i < 100; i++) {
        rc = leash_select(cs, 3);
        CHECK(rc == 0 || rc == 2);
        CHECK_EQ(cs[rc].ok, 1);
    }
    CHECK_EQ(leash_chan_len(bb), 0);
    CHECK_EQ(leash_try_select(cs, 3), LEASH_EAGAIN);
    CHECK_EQ(leash_close(bb), 0);
    rc = leash_select(cs, 3);
    CHECK(rc == 0 || rc == 2);
    CHECK_EQ(cs[rc].ok, 0);

    leash_release(a);
    leash_release(b);
    leash_release(bb);
    return 0;
}

Test(gochan, zerosize, .timeout = TMO(20)) { run_main(zerosize_main, NULL); }

/* ------------------------------------------------------------- select2 */

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

typedef struct {
    leash_chan *c;
    long n;
} s2_args;

static void s2_sender(void *arg) {
    s2_args *a = arg;
    for (long i = 0; i < a->n; i++) {
        int v = (int)i;
        if (!CHECK_EQ(leash_send(a->c, &v), 0))
            break;
    }
}

static void s2_receive(leash_chan *c, leash_chan *dummy, long n) {
    for (long i = 0; i < n; i++) {
        int v = -1, d;
        leash_case cs[2] = {LEASH_RECV_CASE(c, &v),
                            LEASH_RECV_CASE(dummy, &d)};
        if (!CHECK_EQ(leash_select(cs, 2), 0) || !CHECK_EQ(v, (int)i % 100000))
            break;
    }
}

static int select2_main(void *arg) {
    (void)arg;
    enum { WARM = 20000, N = 100000 };
    leash_chan *c = leash_chan_make(sizeof(int), 0);
    leash_chan *dummy = leash_chan_make(sizeof(int), 0);
    s2_args a = {c, WARM};
    go_ok(leash_go(s2_sender, &a, c));
    s2_receive(c, dummy, WARM);
    WAIT_COROUTINES(1);

    long before = rss_kib();
    for (int round = 0; round < 3; round++) {
        a.n = N;
        go_ok(leash_go(s2_sender, &a, c));
        s2_receive(c, dummy, N);
        WAIT_COROUTINES(1);
    }
    long after = rss_kib();
    /* 300k selects: even 16 bytes each (32 with malloc's header) would
     * be 9 MiB. Sanitizers keep their own accounting: report only. */
    fprintf(stderr, "select2: RSS %ld KiB -> %ld KiB over %d selects\n",
            before, after, 3 * N);
    if (!SAN)
        CHECK(before > 0 && after - before < 2048);
    leash_release(c);
    leash_release(dummy);
    return 0;
}

Test(gochan, select2_no_memory_per_select, .timeout = TMO(60)) {
    run_main(select2_main, NULL);
}

/* ------------------------------------------------------------- select6 */

/* A select woken through one channel must leave no waiter behind on the
 * others: later values on them go to their real receivers. */
typedef struct {
    leash_chan *c1, *c2, *c3;
} s6_args;

static void s6_plain(void *arg) {
    s6_args *a = arg;
    int v;
    CHECK_EQ(leash_recv(a->c1, &v), 0);
}

static void s6_selector(void *arg) {
    s6_args *a = arg;
    int v = -1, w = -1;
    leash_case cs[2] = {LEASH_RECV_CASE(a->c1, &v),
                        LEASH_RECV_CASE(a->c2, &w)};
    int rc = leash_select(cs, 2);
    CHECK_EQ(rc, 1); /* c1 gets a value only after c3 is signalled */
    CHECK_EQ(w, 2);
    int t = 3;
    CHECK_EQ(leash_send(a->c3, &t), 0);
    CHECK_EQ(leash_recv(a->c1, &v), 0);
}

static void s6_c2(void *arg) {
    s6_args *a = arg;
    int v = 2;
    CHECK_EQ(leash_send(a->c2, &v), 0);
}

static int select6_main(void *arg) {
    (void)arg;
    for (int round = 0; round < 200; round++) {
        s6_args a = {leash_chan_make(sizeof(int), 0),
                     leash_chan_make(sizeof(int), 0),
                     leash_chan_make(sizeof(int), 0)};
        go_ok(leash_go(s6_plain, &a, a.c1));
        go_ok(leash_go(s6_selector, &a, a.c1, a.c2, a.c3));
        go_ok(leash_go(s6_c2, &a, a.c2));
        int v = 0;
        CHECK_EQ(leash_recv(a.c3, &v), 0);
        CHECK_EQ(v, 3);
        v = 1;
        CHECK_EQ(leash_send(a.c1, &v), 0);
        CHECK_EQ(leash_send(a.c1, &v), 0);
        WAIT_COROUTINES(1);
        leash_release(a.c1);
        leash_release(a.c2);
        leash_release(a.c3);
    }
    return 0;
}

Test(gochan, select6_no_stale_waiter, .timeout = TMO(30)) {
    run_main(select6_main, NULL);
}

/* ------------------------------------------------------------- select7 */

/* Receive one value in several forms while a sender sends it, the sender
 * starting first or second. */
enum { R_PLAIN, R_SELECT1, R_SELECT2, R_SELECT_DUP, R_SELECT_NIL,
       R_SELECT_MANY, R_TRY_LOOP, R_NFORMS };

static int recv_form(int form, leash_chan *c, leash_chan *idle) {
    int v = -1, d = -1;
    switch (form) {
    case R_PLAIN:
        CHECK_EQ(leash_recv(c, &v), 0);
        break;
    case R_SELECT1: {
        leash_case k = LEASH_RECV_CASE(c, &v);
        CHECK_EQ(leash_select(&k, 1), 0);
        break;
    }
    case R_SELECT2: {
        leash_case k[2] = {LEASH_RECV_CASE(idle, &d), LEASH_RECV_CASE(c, &v)};
        CHECK_EQ(leash_select(k, 2), 1);
        break;
    }
    case R_SELECT_DUP: {
        int v2 = -1;
        leash_case k[2] = {LEASH_RECV_CASE(c, &v), LEASH_RECV_CASE(c, &v2)};
        int rc = leash_select(k, 2);
        CHECK(rc == 0 || rc == 1);
        if (rc == 1)
            v = v2;
        break;
    }
    case R_SELECT_NIL: {
        leash_case k[3] = {LEASH_RECV_CASE((leash_chan *)NULL, &d),
                           LEASH_RECV_CASE(c, &v),
                           LEASH_SEND_CASE((leash_chan *)NULL, &d)};
        CHECK_EQ(leash_select(k, 3), 1);
        break;
    }
    case R_SELECT_MANY: {
        leash_case k[12];
        for (int i = 0; i < 12; i++)
            k[i] = LEASH_RECV_CASE(idle, &d);
        k[7] = LEASH_RECV_CASE(c, &v);
        CHECK_EQ(leash_select(k, 12), 7);
        break;
    }
    case R_TRY_LOOP: {
        leash_case k[2] = {LEASH_RECV_CASE(idle, &d), LEASH_RECV_CASE(c, &v)};
        int rc;
        int64_t dl = leash_now() + 10 * SEC;
        while ((rc = leash_try_select(k, 2)) == LEASH_EAGAIN &&
               leash_now() < dl)
            leash_yield();
        CHECK_EQ(rc, 1);
        break;
    }
    }
    return v;
}

typedef struct {
    leash_chan *c;
    int delay_ms;
} s7_args;

static void s7_send(void *arg) {
    s7_args *a = arg;
    if (a->delay_ms)
        leash_sleep(a->delay_ms * MS);
    int v = 1;
    CHECK_EQ(leash_send(a->c, &v), 0);
}

static int select7_main(void *arg) {
    (void)arg;
    leash_chan *idle = leash_chan_make(sizeof(int), 0);
    for (int form = 0; form < R_NFORMS; form++) {
        for (int order = 0; order < 3; order++) {
            for (size_t cap = 0; cap < 2; cap++) {
                leash_chan *c = leash_chan_make(sizeof(int), cap);
                /* order 0: sender first (yield to let it run), 1: the
                 * receiver first, 2: sender on another thread's timing. */
                s7_args a = {c, order == 1 ? 5 : 0};
                go_ok(leash_go(s7_send, &a, c));
                if (order == 0)
                    leash_sleep(2 * MS);
                int v = recv_form(form, c, idle);
                if (!CHECK_EQ(v, 1))
                    fprintf(stderr, "select7: form %d order %d cap %zu\n",
                            form, order, cap);
                WAIT_COROUTINES(1);
                leash_release(c);
            }
        }
    }
    CHECK_EQ(chan_waiters(idle), 0);
    leash_release(idle);
    return 0;
}

Test(gochan, select7_receive_forms, .timeout = TMO(30)) {
    run_main(select7_main, NULL);
}

/* A sender on a plain thread, receiver on a coroutine, every form. */
static void s7_thread_send(void *arg) {
    leash_chan *c = arg;
    int v = 1;
    CHECK_EQ(leash_send(c, &v), 0);
}

typedef struct {
    int form;
    leash_chan *c, *idle;
    _Atomic int got;
} s7_recv_args;

static void s7_coroutine_recv(void *arg) {
    s7_recv_args *r = arg;
    atomic_store(&r->got, recv_form(r->form, r->c, r->idle));
}

Test(gochan, select7_thread_sender, .timeout = TMO(30)) {
    leash_chan *idle = leash_chan_make(sizeof(int), 0);
    cr_assert_not_null(idle);
    for (int form = 0; form < R_NFORMS; form++) {
        leash_chan *c = leash_chan_make(sizeof(int), 0);
        s7_recv_args r = {form, c, idle, -2};
        go_ok(leash_go(s7_coroutine_recv, &r, c, idle));
        pthread_t t = thread_go(s7_thread_send, c);
        pthread_join(t, NULL);
        cr_expect(WAIT_UNTIL(atomic_load(&r.got) != -2, 10), "form %d", form);
        cr_expect_eq(atomic_load(&r.got), 1, "form %d", form);
        cr_expect(WAIT_UNTIL(leash_num_coroutines() == 0, 10));
        leash_release(c);
    }
    leash_release(idle);
    finish();
}

/* ---------------------------------------------------------- goroutines */

/* A daisy chain of N coroutines, each adding one to what it receives. */
static void whisper(void *arg) {
    leash_chan **lr = arg;
    int v = 0;
    CHECK_EQ(leash_recv(lr[1], &v), 0);
    v++;
    CHECK_EQ(leash_send(lr[0], &v), 0);
    free(lr);
}

static int daisy_main(void *arg) {
    (void)arg;
    enum { N = SAN ? 1000 : 5000 };
    leash_chan *leftmost = leash_chan_make(sizeof(int), 0);
    leash_chan *left = leftmost, *right = leftmost;
    for (int i = 0; i < N; i++) {
        right = leash_chan_make(sizeof(int), 0);
        if (!CHECK(right))
            return 1;
        leash_chan **lr = malloc(2 * sizeof *lr);
        lr[0] = left;
        lr[1] = right;
        go_ok(leash_go(whisper, lr, left, right));
        if (left != leftmost)
            leash_release(left);
        left = right;
    }
    int v = 1;
    CHECK_EQ(leash_send(right, &v), 0);
    leash_release(right);
    CHECK_EQ(leash_recv(leftmost, &v), 0);
    CHECK_EQ(v, N + 1);
    WAIT_COROUTINES(1);
    leash_release(leftmost);
    return 0;
}

Test(gochan, goroutines_daisy_chain, .timeout = TMO(60)) {
    run_main(daisy_main, NULL);
}
