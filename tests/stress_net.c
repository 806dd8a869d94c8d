/* SPDX-License-Identifier: MIT */
/*
 * stress_net.c — a TCP echo server and thousands of concurrent clients
 * over loopback, every byte checked; read deadlines firing on idle
 * connections while the others are busy. And the netpoller never touches
 * a waiter it has woken (woken_waiter_not_touched, at the end).
 *
 * Scale: 10,000 concurrent connections when RLIMIT_NOFILE allows (raised
 * to the hard limit here; each connection costs two fds, client and
 * server side); fewer, with a note on stderr, when it does not, and under
 * ASan / TSan. Loopback only, port 0.
 *
 * LEASH_TEST_TIMEOUT 300
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core_util.h"
#include "internal.h"
#include "sched_tls.h" /* whether the netpoller runs on a worker */

#if defined(__SANITIZE_THREAD__)
#define NET_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NET_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NET_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NET_ASAN 1
#endif
#endif

#if defined(NET_TSAN)
#define WANT_CONNS 600
#define WANT_IDLE 60
#define TEST_TIMEOUT 1400
#elif defined(NET_ASAN)
#define WANT_CONNS 5000
#define WANT_IDLE 100
#define TEST_TIMEOUT 850
#else
#define WANT_CONNS 10000
#define WANT_IDLE 200
#define TEST_TIMEOUT 280
#endif

#define CONNECT_INFLIGHT 256       /* connects in flight at once */
#define IO_DEADLINE_MS 120000      /* per operation: only a hang reaches it */
#define IDLE_DEADLINE_MS 200       /* idle clients' read deadline */
#define BIG_EVERY 50               /* every 50th client sends > 64 KiB */
#define CHUNK 16384

/* ------------------------------------------------------------- helpers */

static int64_t in_ms(int64_t ms) { return leash_now() + ms * CU_MS; }

static uint8_t pattern(uint32_t seed, size_t i) {
    uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u + 0x9e37u;
    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    return (uint8_t)(x ^ (x >> 12));
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit. */
static long raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

/* ---------------------------------------------------------- the server */

static struct {
    int listener;
    uint16_t port;
    atomic_long accepted, handlers_done, handler_errors, echoed;
    atomic_int accept_error;
    leash_waitgroup handlers;
} srv;

static void handler(void *p) {
    int fd = (int)(intptr_t)p;
    char *buf = malloc(CHUNK);
    for (;;) {
        ssize_t r = leash_read(fd, buf, CHUNK, in_ms(IO_DEADLINE_MS));
        if (r == 0)
            break; /* the client shut its side */
        if (r < 0) {
            /* Idle clients close after their deadline: a reset or EOF. */
            if (r != -ECONNRESET) {
                cu_fail(__FILE__, __LINE__, "server read: %zd (%s)", r,
                        leash_strerror((int)r));
                atomic_fetch_add(&srv.handler_errors, 1);
            }
            break;
        }
        ssize_t w = leash_write(fd, buf, (size_t)r, in_ms(IO_DEADLINE_MS));
        if (w != r) {
            cu_fail(__FILE__, __LINE__, "server write: %zd of %zd", w, r);
            atomic_fetch_add(&srv.handler_errors, 1);
            break;
        }
        atomic_fetch_add(&srv.echoed, r);
    }
    free(buf);
    leash_fd_close(fd); /* the server closes first: TIME_WAIT stays here */
    atomic_fetch_add(&srv.handlers_done, 1);
    leash_waitgroup_done(&srv.handlers);
}

static void acceptor(void *p) {
    (void)p;
    for (;;) {
        int fd = leash_accept(srv.listener, NULL, NULL, -1);
        if (fd == LEASH_ECLOSED)
            return; /* the listener was closed: done */
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
                fd == -ENOMEM) {
                atomic_store(&srv.accept_error, fd);
                leash_sleep(CU_MS);
                continue;
            }
            cu_fail(__FILE__, __LINE__, "accept: %d (%s)", fd, leash_strerror(fd));
            return;
        }
        atomic_fetch_add(&srv.accepted, 1);
        leash_waitgroup_add(&srv.handlers, 1);
        if (leash_go(handler, (void *)(intptr_t)fd) <= 0) {
            cu_fail(__FILE__, __LINE__, "spawning a handler failed");
            leash_fd_close(fd);
            leash_waitgroup_done(&srv.handlers);
        }
    }
}

static bool server_start(void) {
    memset(&srv, 0, sizeof srv);
    srv.handlers = (leash_waitgroup)LEASH_WAITGROUP_INIT;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_CHECK(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        cu_fail(__FILE__, __LINE__, "listener: %s", strerror(errno));
        close(l);
        return false;
    }
    srv.listener = l;
    srv.port = ntohs(a.sin_port);
    /* Two acceptors: they share the listener's poll descriptor. */
    CU_CHECK(leash_go(acceptor, NULL) > 0);
    CU_CHECK(leash_go(acceptor, NULL) > 0);
    return true;
}

/* ---------------------------------------------------------- the clients */

static struct {
    int nconns, nidle;
    leash_chan *tokens;        /* connect limiter */
    leash_waitgroup connected; /* barrier: everyone connected */
    leash_waitgroup finished;
    atomic_long ok, failed, idle_ok, idle_failed, bytes, big_msgs;
    atomic_long late_ns_max;   /* how late the latest idle deadline fired */
} cl;

static int client_connect(void) {
    int tok = 0;
    leash_recv(cl.tokens, &tok);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = fd < 0 ? -errno : 0;
    if (fd >= 0) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(srv.port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r = leash_connect(fd, (struct sockaddr *)&a, sizeof a, in_ms(IO_DEADLINE_MS));
    }
    leash_send(cl.tokens, &tok);
    if (r < 0) {
        cu_fail(__FILE__, __LINE__, "connect: %d (%s)", r, leash_strerror(r));
        if (fd >= 0)
            close(fd);
        return r;
    }
    return fd;
}

typedef struct {
    int fd;
    uint32_t seed;
    size_t len;
    ssize_t result;
    uint64_t sum;
    leash_chan *done;
} big_write;

/* Writes a message concurrently with the client's reading it back: the
 * echo would deadlock if one coroutine did both for a message bigger than
 * the socket buffers. */
static void big_writer(void *p) {
    big_write *b = p;
    uint8_t *buf = malloc(b->len);
    for (size_t i = 0; i < b->len; i++)
        buf[i] = pattern(b->seed, i);
    b->sum = fnv(14695981039346656037ull, buf, b->len);
    b->result = leash_write(b->fd, buf, b->len, in_ms(IO_DEADLINE_MS));
    free(buf);
    leash_send_n(b->done, NULL, 0);
}

/* One message: sends len bytes of pattern(seed), reads them back, checks
 * every byte and the checksum. */
static bool exchange(int fd, uint32_t seed, size_t len) {
    big_write bw = {fd, seed, len, 0, 0, NULL};
    uint8_t *out = NULL;
    uint64_t sent_sum = 14695981039346656037ull;
    if (len > CHUNK) {
        bw.done = leash_chan_make(0, 1);
        if (!bw.done || leash_go(big_writer, &bw, bw.done) <= 0) {
            cu_fail(__FILE__, __LINE__, "big writer");
            leash_release(bw.done);
            return false;
        }
        atomic_fetch_add(&cl.big_msgs, 1);
    } else {
        out = malloc(len);
        for (size_t i = 0; i < len; i++)
            out[i] = pattern(seed, i);
        sent_sum = fnv(sent_sum, out, len);
        ssize_t w = leash_write(fd, out, len, in_ms(IO_DEADLINE_MS));
        free(out);
        if (w != (ssize_t)len) {
            cu_fail(__FILE__, __LINE__, "client write: %zd of %zu", w, len);
            return false;
        }
    }
    uint8_t *in = malloc(CHUNK);
    uint64_t got_sum = 14695981039346656037ull;
    size_t got = 0;
    bool ok = true;
    while (got < len) {
        size_t want = len - got < CHUNK ? len - got : CHUNK;
        ssize_t r = leash_read(fd, in, want, in_ms(IO_DEADLINE_MS));
        if (r <= 0) {
            cu_fail(__FILE__, __LINE__, "client read: %zd after %zu of %zu", r,
                    got, len);
            ok = false;
            break;
        }
        for (ssize_t i = 0; i < r && ok; i++)
            if (in[i] != pattern(seed, got + (size_t)i)) {
                cu_fail(__FILE__, __LINE__, "byte %zu of a %zu-byte message "
                        "differs", got + (size_t)i, len);
                ok = false;
            }
        got_sum = fnv(got_sum, in, (size_t)r);
        got += (size_t)r;
        if (!ok)
            break;
    }
    free(in);
    if (bw.done) {
        leash_recv_n(bw.done, NULL, 0);
        leash_release(bw.done);
        sent_sum = bw.sum;
        if (bw.result != (ssize_t)len) {
            cu_fail(__FILE__, __LINE__, "big write: %zd of %zu", bw.result, len);
            ok = false;
        }
    }
    if (ok && got_sum != sent_sum) {
        cu_fail(__FILE__, __LINE__, "checksum differs");
        ok = false;
    }
    if (ok)
        atomic_fetch_add(&cl.bytes, (long)len);
    return ok;
}

static void client(void *p) {
    int id = (int)(intptr_t)p;
    int fd = client_connect();
    leash_waitgroup_done(&cl.connected);
    leash_waitgroup_wait(&cl.connected); /* all connections open at once */
    bool ok = fd >= 0;
    int nmsg = 2 + id % 4;
    for (int k = 0; k < nmsg && ok; k++) {
        size_t len;
        if (k == 1 && id % BIG_EVERY == 0)
            len = 65536 + 1 + (size_t)(id * 7919 % (256 * 1024)); /* > 64 KiB */
        else
            len = 1 + (size_t)((id * 131 + k * 977) % 4096);
        ok = exchange(fd, (uint32_t)(id * 16 + k), len);
        if (k % 2 == 0)
            leash_yield();
    }
    if (ok) {
        /* Half-close; the server closes its side and we read EOF. */
        shutdown(fd, SHUT_WR);
        char c;
        ssize_t r = leash_read(fd, &c, 1, in_ms(IO_DEADLINE_MS));
        if (r != 0) {
            cu_fail(__FILE__, __LINE__, "expected EOF, got %zd", r);
            ok = false;
        }
    }
    if (fd >= 0)
        leash_fd_close(fd);
    atomic_fetch_add(ok ? &cl.ok : &cl.failed, 1);
    leash_waitgroup_done(&cl.finished);
}

/* Connects, sends nothing, and reads with a short deadline while the busy
 * clients run: it must time out, not early, and not absurdly late. */
static void idle_client(void *p) {
    (void)p;
    int fd = client_connect();
    leash_waitgroup_done(&cl.connected);
    leash_waitgroup_wait(&cl.connected);
    bool ok = false;
    if (fd >= 0) {
        char buf[16];
        int64_t dl = in_ms(IDLE_DEADLINE_MS);
        ssize_t r = leash_read(fd, buf, sizeof buf, dl);
        int64_t now = leash_now();
        ok = r == LEASH_ETIMEDOUT && now >= dl;
        if (!ok)
            cu_fail(__FILE__, __LINE__, "idle read: %zd (%s), %.1f ms after the "
                    "deadline", r, leash_strerror((int)r), cu_ms(dl, now));
        long late = (long)(now - dl);
        long prev = atomic_load(&cl.late_ns_max);
        while (late > prev && !atomic_compare_exchange_weak(&cl.late_ns_max, &prev, late))
            ;
        /* The connection still works after the timeout. */
        if (ok)
            ok = exchange(fd, 0xabcdu, 100);
        leash_fd_close(fd);
    }
    atomic_fetch_add(ok ? &cl.idle_ok : &cl.idle_failed, 1);
    leash_waitgroup_done(&cl.finished);
}

static int echo_main(void *arg) {
    (void)arg;
    if (!server_start())
        return 1;
    cl.tokens = leash_chan_make(sizeof(int), CONNECT_INFLIGHT);
    for (int i = 0; i < CONNECT_INFLIGHT; i++)
        leash_try_send(cl.tokens, &i);
    cl.connected = (leash_waitgroup)LEASH_WAITGROUP_INIT;
    cl.finished = (leash_waitgroup)LEASH_WAITGROUP_INIT;
    int total = cl.nconns + cl.nidle;
    leash_waitgroup_add(&cl.connected, total);
    leash_waitgroup_add(&cl.finished, total);
    int64_t t0 = leash_now();
    for (int i = 0; i < total; i++) {
        /* Idle clients spread among the busy ones. */
        bool idle = cl.nidle && i % (total / cl.nidle) == 0 &&
                    i / (total / cl.nidle) < cl.nidle;
        int64_t id = idle ? leash_go(idle_client, NULL)
                          : leash_go(client, (void *)(intptr_t)i);
        if (id <= 0) {
            cu_fail(__FILE__, __LINE__, "spawning client %d failed", i);
            leash_waitgroup_done(&cl.connected);
            leash_waitgroup_done(&cl.finished);
            atomic_fetch_add(&cl.failed, 1);
        }
    }
    leash_waitgroup_wait(&cl.connected);
    int64_t t1 = leash_now();
    fprintf(stderr, "stress_net: %d connections open at once (%d busy, %d idle), "
            "%ld coroutines, connect phase %.0f ms\n", total, cl.nconns, cl.nidle,
            (long)leash_num_coroutines(), cu_ms(t0, t1));
    leash_waitgroup_wait(&cl.finished);
    int64_t t2 = leash_now();
    /* Every handler ends when its client shuts down or closes. */
    leash_waitgroup_wait(&srv.handlers);
    leash_fd_close(srv.listener); /* wakes the acceptors */
    fprintf(stderr, "stress_net: exchange phase %.0f ms, %ld bytes echoed, "
            "%ld messages > 64 KiB, latest idle deadline %.1f ms late\n",
            cu_ms(t1, t2), atomic_load(&srv.echoed), atomic_load(&cl.big_msgs),
            atomic_load(&cl.late_ns_max) / 1e6);

    CU_CHECK_EQ(atomic_load(&cl.failed), 0);
    CU_CHECK_EQ(atomic_load(&cl.ok), cl.nconns);
    CU_CHECK_EQ(atomic_load(&cl.idle_failed), 0);
    CU_CHECK_EQ(atomic_load(&cl.idle_ok), cl.nidle);
    CU_CHECK_EQ(atomic_load(&srv.accepted), total);
    CU_CHECK_EQ(atomic_load(&srv.handlers_done), total);
    CU_CHECK_EQ(atomic_load(&srv.handler_errors), 0);
    CU_CHECK_EQ(atomic_load(&srv.echoed), atomic_load(&cl.bytes));
    CU_CHECK(atomic_load(&cl.big_msgs) >= cl.nconns / BIG_EVERY - 1);
    /* The acceptors return once the listener is closed. */
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 30000));
    leash_release(cl.tokens);
    return 0;
}

Test(stress_net, echo_10000_connections, .timeout = TEST_TIMEOUT) {
    signal(SIGPIPE, SIG_IGN);
    long nofile = raise_nofile();
    /* Two fds per connection (client and server side), plus slack for the
     * runtime, Criterion and the sanitizers. */
    long fit = (nofile - 512) / 2;
    int want = WANT_CONNS + WANT_IDLE;
    int total = want < fit ? want : (int)fit;
    if (total < want)
        fprintf(stderr, "stress_net: note: RLIMIT_NOFILE hard limit is %ld, "
                "scaling %d connections down to %d\n", nofile, want, total);
    cr_assert_gt(total, 100, "RLIMIT_NOFILE %ld is too low for this test", nofile);
    cl.nidle = WANT_IDLE * total / want;
    cl.nconns = total - cl.nidle;
    cr_assert_eq(leash_run(echo_main, NULL), 0);
    CU_ASSERT_CLEAN();
}

/* ------------------------------------------- a woken waiter is not touched
 *
 * A waiter lives on its coroutine's stack. Once the netpoller has readied
 * it, the coroutine may run at once on another worker, return from its
 * wait and reuse that stack while the poller still holds the descriptor's
 * lock (its own fd_leave then waits for that lock). The poller read the
 * waiter's events after waking it: ASan caught it in stress_observer,
 * where an HTTP connection's reader had reached llock_slow, whose frame
 * lay over its old waiter. Which frames land there is luck; here a test
 * hook makes every readied waiter unreadable (ASan poison) until the
 * poller is done with the descriptor. On one worker nobody can run the
 * woken reader meanwhile, so only a read by the poller itself trips. */

#if defined(NET_ASAN)
#include <sanitizer/asan_interface.h>
#endif

void netpoll_test_wake_hook(void (*fn)(const void *w, size_t size));

#define WAKE_ROUNDS 20
static struct {
    int a, b;
    const void *hidden;
    size_t hidden_size;
    _Atomic int hid;        /* rounds in which a waiter was hidden */
    _Atomic long bad;
    leash_waitgroup wg;
} wk;

static void hide_woken(const void *w, size_t size) {
    if (!sched_tls_w)
        return; /* sysmon's poll: a worker may run the reader meanwhile */
    if (w) {
#if defined(NET_ASAN)
        ASAN_POISON_MEMORY_REGION(w, size);
#endif
        wk.hidden = w;
        wk.hidden_size = size;
        atomic_fetch_add(&wk.hid, 1);
    } else if (wk.hidden) {
#if defined(NET_ASAN)
        ASAN_UNPOISON_MEMORY_REGION(wk.hidden, wk.hidden_size);
#endif
        wk.hidden = NULL;
    }
}

static void wake_reader(void *p) {
    (void)p;
    unsigned char c = 0;
    ssize_t n = leash_read(wk.a, &c, 1, in_ms(IO_DEADLINE_MS));
    if (n != 1 || c != 'x' || leash_fd_close(wk.a) != 0)
        atomic_fetch_add(&wk.bad, 1);
    leash_waitgroup_done(&wk.wg);
}

static int wake_main(void *arg) {
    (void)arg;
    netpoll_test_wake_hook(hide_woken);
    for (int r = 0; r < WAKE_ROUNDS; r++) {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        wk.a = sv[0];
        wk.b = sv[1];
        wk.wg = (leash_waitgroup)LEASH_WAITGROUP_INIT;
        leash_waitgroup_add(&wk.wg, 1);
        cr_assert_gt(leash_go(wake_reader, NULL), 0);
        /* Inside its read, then parked (most rounds) before the byte. */
        cr_assert(CU_WAIT_UNTIL(fd_calls_inside(wk.a) == 1, 30000));
        leash_sleep(5 * CU_MS);
        cr_assert_eq(write(wk.b, "x", 1), 1);
        leash_waitgroup_wait(&wk.wg);
        close(wk.b);
    }
    netpoll_test_wake_hook(NULL);
    CU_CHECK_EQ(atomic_load(&wk.bad), 0);
    /* Not vacuous: the readers were woken by the poller, and hidden. */
    CU_CHECK(atomic_load(&wk.hid) >= WAKE_ROUNDS / 2);
    return 0;
}

Test(stress_net, woken_waiter_not_touched) {
    setenv("LEASH_PROCS", "1", 1);
    cr_assert_eq(cu_run(wake_main, NULL), 0);
    CU_ASSERT_CLEAN();
}
