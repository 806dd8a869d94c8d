/* SPDX-License-Identifier: MIT */
/* tcpecho: TCP echo over loopback (127.0.0.1, port picked by the kernel).
 * A server coroutine accepts (leash_conn_accept) and runs one echo coroutine
 * per connection (leash_conn_read / leash_conn_write, no deadline); main
 * ends the acceptor by closing the listener from its own coroutine, which
 * only a leash_conn makes safe. Clients send a
 * TCPE_MSG-byte message and read the echo back (a round trip), TCP_NODELAY
 * on both ends as Go sets it.
 *
 *   tcpecho1  one connection, N/4 round trips (at most 20,000): µs per
 *             round trip (latency)
 *   tcpecho   TCPE_CONNS connections at once, N/TCPE_CONNS round trips
 *             each: total wall time / total round trips, in µs
 *
 * Connections are set up before the clock starts (a barrier); every socket
 * is closed at the end and every coroutine has returned. RLIMIT_NOFILE is
 * raised to the hard limit first (2 fds per connection). Go: the same with
 * net.Listen / net.Dial. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "bench_util.h"

#define TCPE_CONNS 1000
#define TCPE_MSG 64

static int64_t n;
static leash_conn *listener;
static char server_addr[64];
static leash_waitgroup handlers = LEASH_WAITGROUP_INIT;

static void nodelay(leash_conn *c)
{
    int one = 1;
    if (setsockopt(leash_conn_fd(c), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one) < 0)
        bench_fail("tcpecho: TCP_NODELAY: %s", strerror(errno));
}

static void echo_conn(void *arg)
{
    leash_conn *c = arg; /* handed by leash_go */
    char buf[TCPE_MSG];
    for (;;) {
        ssize_t r = leash_conn_read(c, buf, sizeof buf);
        if (r == 0)
            break;
        if (r < 0)
            bench_fail("tcpecho: server read: %s", leash_strerror((int)r));
        ssize_t w = leash_conn_write(c, buf, (size_t)r);
        if (w != r)
            bench_fail("tcpecho: server write: %s",
                       w < 0 ? leash_strerror((int)w) : "short");
    }
    BENCH_CHECK(leash_conn_close(c));
    BENCH_CHECK(leash_waitgroup_done(&handlers));
}

static void acceptor(void *arg)
{
    leash_chan *done = arg;
    for (;;) {
        leash_conn *c;
        int rc = leash_conn_accept(listener, &c);
        if (rc == LEASH_ECLOSED)
            break;
        if (rc < 0)
            bench_fail("tcpecho: accept: %s", leash_strerror(rc));
        nodelay(c);
        BENCH_CHECK(leash_waitgroup_add(&handlers, 1));
        if (leash_go(echo_conn, c, c) <= 0)
            bench_fail("tcpecho: leash_go failed");
        leash_release(c); /* the handler holds its own */
    }
    BENCH_CHECK(leash_close(done));
}

struct run {
    int64_t rounds;            /* per connection */
    leash_chan *start;         /* closed by main to start the clock */
    leash_waitgroup ready, done;
};

static void client(void *arg)
{
    struct run *r = arg;
    leash_conn *c;
    int rc = leash_dial(&c, "tcp", server_addr, -1);
    if (rc < 0)
        bench_fail("tcpecho: dial: %s", leash_strerror(rc));
    nodelay(c);
    BENCH_CHECK(leash_waitgroup_done(&r->ready));
    if (bench_wait(r->start) != LEASH_ECLOSED)
        bench_fail("tcpecho: start not closed");
    char msg[TCPE_MSG], got[TCPE_MSG];
    memset(msg, 'x', sizeof msg);
    for (int64_t i = 0; i < r->rounds; i++) {
        memcpy(msg, &i, sizeof i);
        ssize_t w = leash_conn_write(c, msg, sizeof msg);
        if (w != (ssize_t)sizeof msg)
            bench_fail("tcpecho: client write: %s",
                       w < 0 ? leash_strerror((int)w) : "short");
        size_t have = 0;
        while (have < sizeof got) {
            ssize_t k = leash_conn_read(c, got + have, sizeof got - have);
            if (k <= 0)
                bench_fail("tcpecho: client read: %s",
                           k < 0 ? leash_strerror((int)k) : "EOF");
            have += (size_t)k;
        }
        if (memcmp(msg, got, sizeof msg))
            bench_fail("tcpecho: bad echo");
    }
    leash_release(c); /* closes it */
    BENCH_CHECK(leash_waitgroup_done(&r->done));
}

/* conns clients, rounds round trips each: wall ns of the timed part. */
static int64_t run_clients(int conns, int64_t rounds)
{
    struct run r = {rounds, bench_chan(0, 0, "start"), LEASH_WAITGROUP_INIT,
                    LEASH_WAITGROUP_INIT};
    BENCH_CHECK(leash_waitgroup_add(&r.ready, conns));
    BENCH_CHECK(leash_waitgroup_add(&r.done, conns));
    for (int i = 0; i < conns; i++)
        if (leash_go(client, &r, r.start) <= 0)
            bench_fail("tcpecho: leash_go failed");
    BENCH_CHECK(leash_waitgroup_wait(&r.ready));
    int64_t t0 = bench_now();
    BENCH_CHECK(leash_close(r.start));
    BENCH_CHECK(leash_waitgroup_wait(&r.done));
    int64_t el = bench_now() - t0;
    leash_release(r.start);
    return el;
}

static int bench_main(void *arg)
{
    (void)arg;
    int rc = leash_listen(&listener, "tcp", "127.0.0.1:0");
    if (rc < 0 || leash_conn_local_addr(listener, server_addr,
                                        sizeof server_addr) < 0)
        bench_fail("tcpecho: listen: %s", leash_strerror(rc));
    leash_chan *acc_done = bench_chan(0, 0, "acceptor done");
    if (leash_go(acceptor, acc_done, acc_done) <= 0)
        bench_fail("tcpecho: leash_go failed");

    int64_t n1 = n / 4 > 20000 ? 20000 : n / 4;
    if (n1 < 1)
        n1 = 1;
    int64_t rounds = n / TCPE_CONNS;
    if (rounds < 1)
        rounds = 1;
    run_clients(1, n1 / 10 + 1); /* warm-up */
    int64_t el1 = run_clients(1, n1);
    int64_t el = run_clients(TCPE_CONNS, rounds);

    BENCH_CHECK(leash_conn_close(listener)); /* wakes the acceptor */
    if (bench_wait(acc_done) != LEASH_ECLOSED)
        bench_fail("tcpecho: acceptor did not finish");
    leash_release(acc_done);
    BENCH_CHECK(leash_waitgroup_wait(&handlers));
    leash_release(listener);

    bench_report("tcpecho", (double)el / 1e3 / (double)(rounds * TCPE_CONNS),
                 "us/op");
    bench_report("tcpecho1", (double)el1 / 1e3 / (double)n1, "us/op");
    return 0;
}

int main(int argc, char **argv)
{
    n = bench_arg_n(argc, argv, 100000);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return leash_run(bench_main, NULL);
}
