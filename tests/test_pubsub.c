/* SPDX-License-Identifier: MIT */
/*
 * test_pubsub.c — the example service examples/pubsub.c, run as a child
 * process (build/example_pubsub) under LEASH_LEAKCHECK=1 at LEASH_PROCS=1
 * and 2, and driven with faults while well-behaved clients use it:
 *
 *   - three subscribers get every message of their topic once and in
 *     order (count and checksum), while around them:
 *   - a slow reader (small receive buffer, never reads) is disconnected
 *     once its queue is full: it then reads a gap-free prefix, then the
 *     end, and nothing else is held up;
 *   - a client reset (RST, SO_LINGER 0) in the middle of a PUB line, one
 *     that closes (FIN) in the middle of one, and one that goes silent in
 *     the middle of one (idle timeout) never get a partial message out;
 *   - an idle client is disconnected after -idle, not before;
 *   - an over-long line (100 kB) gets "ERR line too long" and the
 *     connection goes on; garbage (unknown commands, empty lines, NUL
 *     bytes, missing topics) gets "ERR unknown command";
 *   - the debug endpoint (-debug) serves a goroutine dump meanwhile;
 *   - SIGTERM while a publisher sends flat out and subscribers drain:
 *     the broker exits 0 (LEASH_LEAKCHECK=1: nothing left) within 5 s.
 *
 * Nothing waits for a fixed time to synchronise: the publisher sends in
 * batches and waits until every well-behaved subscriber has read each
 * one, and a PING's PONG marks the end of a subscriber's stream. The
 * only timed assertion is the idle timeout's (with seconds of slack).
 *
 * LEASH_TEST_TIMEOUT 240
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LEASH_TEST_BINDIR
#error "LEASH_TEST_BINDIR must name the build directory"
#endif

#define IDLE_S 2.0       /* the broker's -idle */
#define QUEUE "16"       /* its -queue */
#define BATCH 8          /* messages the publisher sends per round: with a
                          * PONG, fewer than -queue, which a subscriber
                          * that reads every round can never overflow */
#define MESSAGES 5000    /* of 1 kB: more than a slow reader's buffers */
#define PAYLOAD 1000
#define WAIT_MS 10000    /* the longest any single read may wait */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- server */

typedef struct {
    pid_t pid;
    int port, debug_port;
    char errpath[64]; /* its stderr */
} server;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    if (f && buf)
        buf[fread(buf, 1, (1 << 20) - 1, f)] = 0;
    if (f)
        fclose(f);
    return buf;
}

static server start(const char *procs) {
    server s = {.port = 0};
    snprintf(s.errpath, sizeof s.errpath, "/tmp/leash-pubsub-err-XXXXXX");
    int efd = mkstemp(s.errpath), out[2];
    cr_assert(efd >= 0 && pipe(out) == 0, "%s", strerror(errno));
    s.pid = fork();
    cr_assert(s.pid >= 0, "fork: %s", strerror(errno));
    if (s.pid == 0) {
        dup2(out[1], 1);
        dup2(efd, 2);
        extern char **environ;
        for (char **e = environ; *e;) { /* no LEASH_* nor Criterion's */
            if (!strncmp(*e, "LEASH_", 6) || !strncmp(*e, "BXFI_", 5)) {
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
            } else {
                e++;
            }
        }
        setenv("LEASH_LEAKCHECK", "1", 1);
        setenv("LEASH_PROCS", procs, 1);
        const char *bin = LEASH_TEST_BINDIR "/example_pubsub";
        execl(bin, bin, "-addr", "127.0.0.1:0", "-idle", "2s", "-queue", QUEUE,
              "-maxline", "2048", "-debug", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(efd);
    char text[256] = "";
    size_t len = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    ssize_t k = 1;
    while (!strstr(text, "debug on port") && k > 0 && len < sizeof text - 1 &&
           poll(&p, 1, WAIT_MS) == 1)
        if ((k = read(out[0], text + len, sizeof text - 1 - len)) > 0)
            text[len += (size_t)k] = 0;
    close(out[0]); /* it prints nothing more */
    const char *d = strstr(text, "debug on port");
    sscanf(text, "listening on port %d", &s.port);
    if (d)
        sscanf(d, "debug on port %d", &s.debug_port);
    cr_assert(s.port > 0 && s.debug_port > 0, "example_pubsub did not start:\n%s",
              slurp(s.errpath));
    return s;
}

/* SIGTERM, then its exit status (killed after 5 s: a failure). */
static int stop(server *s, double *secs) {
    double t0 = now_s();
    kill(s->pid, SIGTERM);
    int st = 0;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (now_s() - t0 > 5) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            cr_assert_fail("SIGTERM: still running after 5 s:\n%s",
                           slurp(s->errpath));
        }
        usleep(2000);
    }
    *secs = now_s() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------------- clients */

typedef struct {
    int fd;
    size_t r, w;
    char buf[1 << 16];
} client;

static client *dial(int port, int rcvbuf) {
    client *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0,
              "connect: %s", strerror(errno));
    return c;
}

/* All of p, or -errno. */
static int say(client *c, const char *p, size_t n) {
    for (size_t off = 0; off < n;) {
        ssize_t k = send(c->fd, p + off, n - off, MSG_NOSIGNAL);
        if (k < 0)
            return -errno;
        off += (size_t)k;
    }
    return 0;
}
#define SAY(c, s) cr_assert_eq(say((c), (s), strlen(s)), 0, "send %s", (s))

enum { LINE_EOF = -1, LINE_TIMEOUT = -2, LINE_ERROR = -3 };

/* The next line without its '\n' into *line (inside c, valid until the
 * next call): its length, or LINE_*. wait_ms 0: only what has come. */
static ssize_t get_line(client *c, const char **line, int wait_ms) {
    for (;;) {
        char *nl = memchr(c->buf + c->r, '\n', c->w - c->r);
        if (nl) {
            *line = c->buf + c->r;
            ssize_t n = nl - *line;
            c->r += (size_t)n + 1;
            return n;
        }
        if (c->r > 0) {
            memmove(c->buf, c->buf + c->r, c->w - c->r);
            c->w -= c->r;
            c->r = 0;
        }
        cr_assert(c->w < sizeof c->buf, "line too long for the test");
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, wait_ms) == 0)
            return LINE_TIMEOUT;
        ssize_t k = recv(c->fd, c->buf + c->w, sizeof c->buf - c->w, 0);
        if (k == 0)
            return LINE_EOF;
        if (k < 0)
            return LINE_ERROR;
        c->w += (size_t)k;
    }
}

static void expect_line(client *c, const char *want) {
    const char *l;
    ssize_t n = get_line(c, &l, WAIT_MS);
    cr_assert(n == (ssize_t)strlen(want) && !memcmp(l, want, (size_t)n),
              "expected \"%s\", got %zd \"%.*s\"", want, n, n > 0 ? (int)n : 0,
              n > 0 ? l : "");
}

static void hangup(client *c, bool reset) {
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd);
    free(c);
}

/* Message k: "m<k> " then PAYLOAD bytes that depend on k. */
static size_t message(char *out, int k) {
    int n = sprintf(out, "m%d ", k);
    for (int i = 0; i < PAYLOAD; i++)
        out[n + i] = (char)('a' + (k * 7 + i) % 26);
    return (size_t)n + PAYLOAD;
}

static uint64_t fnv(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

/* A well-behaved subscriber's view of the stream. */
typedef struct {
    client *c;
    int next;      /* the message expected next */
    uint64_t sum;  /* of the messages received */
    int pings, pongs;
} sub;

/* Reads until sub has message `upto` - 1 (and, with sync, the PONG of
 * every PING it sent, then nothing else); each message must be the next
 * one. */
static void take(sub *s, int upto, bool sync) {
    char want[PAYLOAD + 32];
    while (s->next < upto || (sync && s->pongs < s->pings)) {
        const char *l;
        ssize_t n = get_line(s->c, &l, WAIT_MS);
        cr_assert(n >= 0, "subscriber: %s after message %d",
                  n == LINE_TIMEOUT ? "nothing" : "disconnected", s->next);
        if (n == 4 && !memcmp(l, "PONG", 4)) {
            s->pongs++;
            continue;
        }
        size_t m = message(want, s->next);
        cr_assert(n == (ssize_t)m + 6 && !memcmp(l, "MSG t ", 6) &&
                      !memcmp(l + 6, want, m),
                  "subscriber: expected message %d, got \"%.60s\"", s->next, l);
        s->sum = fnv(s->sum, l + 6, m);
        s->next++;
    }
}

/* ----------------------------------------------------- under load */

typedef struct {
    atomic_bool stop;
    atomic_long sent, received;
    atomic_int drained, timeouts;
} load;

typedef struct {
    load *ld;
    client *c;
} worker;

/* Threads: no cr_assert there (Criterion's belong to the test's). */
static void *flood(void *arg) { /* a publisher, as fast as it is served */
    worker *w = arg;
    static char lines[8 * (PAYLOAD + 32)];
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        n += (size_t)sprintf(lines + n, "PUB load ");
        n += message(lines + n, i);
        lines[n++] = '\n';
    }
    n += (size_t)sprintf(lines + n, "PING\n");
    const char *l;
    while (!atomic_load(&w->ld->stop) && say(w->c, lines, n) == 0 &&
           get_line(w->c, &l, WAIT_MS) >= 0) /* its PONG */
        atomic_fetch_add(&w->ld->sent, 8);
    return NULL;
}

static void *drain(void *arg) { /* a subscriber, until the end */
    worker *w = arg;
    const char *l;
    ssize_t n;
    while ((n = get_line(w->c, &l, WAIT_MS)) >= 0)
        atomic_fetch_add(&w->ld->received, 1);
    if (n == LINE_TIMEOUT)
        atomic_fetch_add(&w->ld->timeouts, 1);
    atomic_fetch_add(&w->ld->drained, 1);
    return NULL;
}

/* ------------------------------------------------------------- the run */

static void debug_dump(int port) {
    client *c = dial(port, 0);
    SAY(c, "GET /debug/pprof/goroutine?debug=1 HTTP/1.0\r\n\r\n");
    static char all[1 << 20];
    size_t len = 0;
    for (ssize_t k; (k = recv(c->fd, all + len, sizeof all - 1 - len, 0)) > 0;)
        len += (size_t)k;
    all[len] = 0;
    hangup(c, false);
    cr_expect(strstr(all, "200 OK") && strstr(all, "reader") &&
                  strstr(all, "writer"),
              "debug endpoint:\n%.2000s", all);
}

static void faults(const char *procs) {
    server s = start(procs);
    double t_idle = now_s();
    client *idle = dial(s.port, 0);
    sub good[3];
    for (int i = 0; i < 3; i++) {
        good[i] = (sub){.c = dial(s.port, 0), .sum = 14695981039346656037ULL};
        SAY(good[i].c, "SUB t\n");
        expect_line(good[i].c, "OK");
    }
    client *slow = dial(s.port, 4096);
    SAY(slow, "SUB t\n");

    /* Partial lines: reset, closed, gone silent. None may come out. */
    client *rst = dial(s.port, 0), *fin = dial(s.port, 0), *half = dial(s.port, 0);
    SAY(rst, "SUB t\n");
    expect_line(rst, "OK");
    SAY(rst, "PUB t partial-then-reset");
    SAY(fin, "PUB t partial-then-fin");
    SAY(half, "PUB t partial-then-silence");
    hangup(rst, true);
    hangup(fin, false);

    /* Garbage and an over-long line: errors, and the connection goes on. */
    client *bad = dial(s.port, 0);
    static const char junk[] = "FOO\n\nSUB\nSUB \nUNSUB\nPUB t\nPING x\n"
                               "PUB t with\0nul\n\x01\x02\xff\n";
    cr_assert_eq(say(bad, junk, sizeof junk - 1), 0);
    for (int i = 0; i < 9; i++)
        expect_line(bad, "ERR unknown command");
    char *big = malloc(100016);
    memset(big, 'y', 100016);
    memcpy(big, "PUB t ", 6);
    big[100015] = '\n';
    cr_assert_eq(say(bad, big, 100016), 0);
    free(big);
    SAY(bad, "PING\n");
    expect_line(bad, "ERR line too long");
    expect_line(bad, "PONG");

    /* The messages, in batches each good subscriber reads before the
     * next; everyone but the idle clients pings now and then. */
    client *pub = dial(s.port, 0);
    static char batch[BATCH * (PAYLOAD + 32)];
    uint64_t want = 14695981039346656037ULL;
    double t_closed = 0;
    for (int k0 = 0; k0 < MESSAGES; k0 += BATCH) {
        size_t len = 0;
        for (int k = k0; k < k0 + BATCH && k < MESSAGES; k++) {
            len += (size_t)sprintf(batch + len, "PUB t ");
            size_t m = message(batch + len, k);
            want = fnv(want, batch + len, m);
            len += m;
            batch[len++] = '\n';
        }
        cr_assert_eq(say(pub, batch, len), 0, "publisher disconnected");
        if (k0 % (8 * BATCH) == 0) {
            for (int i = 0; i < 3; i++) {
                SAY(good[i].c, "PING\n");
                good[i].pings++;
            }
            say(slow, "PING\n", 5); /* fails once it is disconnected */
            SAY(pub, "PING\n");
        }
        for (int i = 0; i < 3; i++)
            take(&good[i], k0 + BATCH < MESSAGES ? k0 + BATCH : MESSAGES, false);
        const char *l;
        if (!t_closed && get_line(idle, &l, 0) == LINE_EOF)
            t_closed = now_s();
        if (k0 == 80 * BATCH)
            debug_dump(s.debug_port);
    }
    for (int i = 0; i < 3; i++) {
        SAY(good[i].c, "PING\n");
        good[i].pings++;
        take(&good[i], MESSAGES, true);
        cr_expect_eq(good[i].next, MESSAGES);
        cr_expect_eq(good[i].sum, want, "subscriber %d: checksum", i);
    }

    /* The slow reader: a gap-free prefix, then the end. */
    int got = 0;
    const char *l;
    ssize_t n;
    char want_msg[PAYLOAD + 32];
    while ((n = get_line(slow, &l, WAIT_MS)) >= 0) {
        if ((n == 2 && !memcmp(l, "OK", 2)) || (n == 4 && !memcmp(l, "PONG", 4)))
            continue;
        size_t m = message(want_msg, got);
        cr_assert(n == (ssize_t)m + 6 && !memcmp(l + 6, want_msg, m),
                  "slow reader: expected message %d, got \"%.60s\"", got, l);
        got++;
    }
    cr_expect(n != LINE_TIMEOUT, "the slow reader was not disconnected");
    cr_expect(got < MESSAGES, "the slow reader got all %d messages", got);
    hangup(slow, false);

    /* The idle ones: closed after -idle, not before. The good ones, which
     * stay, speak meanwhile (their PONGs are read below). */
    for (int i = 0; i < 3; i++)
        SAY(good[i].c, "PING\n");
    if (!t_closed)
        cr_expect_eq(get_line(idle, &l, WAIT_MS), LINE_EOF, "idle client");
    t_closed = t_closed ? t_closed : now_s();
    cr_expect(t_closed - t_idle > IDLE_S - 0.2 && t_closed - t_idle < IDLE_S + 5,
              "idle client closed after %.2f s (-idle %.0fs)", t_closed - t_idle,
              IDLE_S);
    cr_expect_eq(get_line(half, &l, WAIT_MS), LINE_EOF, "silent mid-line");
    hangup(idle, false);
    hangup(half, false);

    /* Nothing else reached the good subscribers (no partial line). */
    for (int i = 0; i < 3; i++) {
        SAY(good[i].c, "PING\n");
        expect_line(good[i].c, "PONG");
        expect_line(good[i].c, "PONG");
    }

    /* SIGTERM under load: three subscribers drain, one floods. */
    load ld = {.sent = 0};
    worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.ld = &ld, .c = dial(s.port, 0)};
        if (i < 3) {
            SAY(w[i].c, "SUB load\n");
            expect_line(w[i].c, "OK");
        }
        pthread_create(&th[i], NULL, i < 3 ? drain : flood, &w[i]);
    }
    double t_load = now_s(); /* until the load is under way: */
    while (atomic_load(&ld.received) < 2000 && atomic_load(&ld.drained) < 3 &&
           now_s() - t_load < 10)
        usleep(1000);
    double secs;
    int status = stop(&s, &secs);
    atomic_store(&ld.stop, true);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        hangup(w[i].c, false);
    }
    cr_expect(atomic_load(&ld.sent) > 0 && atomic_load(&ld.received) > 0,
              "no load: %ld sent, %ld received", atomic_load(&ld.sent),
              atomic_load(&ld.received));
    cr_expect_eq(atomic_load(&ld.timeouts), 0, "a subscriber got nothing for 10 s");
    for (int i = 0; i < 3; i++)
        hangup(good[i].c, false);
    hangup(bad, false);
    hangup(pub, false);
    char *err = slurp(s.errpath);
    unlink(s.errpath);
    cr_expect_eq(status, 0, "exit status %d after SIGTERM (23: leaks):\n%s",
                 status, err);
    cr_expect(secs < 2, "SIGTERM took %.2f s", secs);
    cr_log_info("LEASH_PROCS=%s: slow reader cut after %d messages; idle "
                "client closed after %.2f s; %ld sent, %ld received under "
                "load; SIGTERM took %.3f s",
                procs, got, t_closed - t_idle, atomic_load(&ld.sent),
                atomic_load(&ld.received), secs);
    free(err);
}

Test(pubsub, faults_at_one_worker, .timeout = 120) { faults("1"); }
Test(pubsub, faults_at_two_workers, .timeout = 120) { faults("2"); }
