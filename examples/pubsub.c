/* SPDX-License-Identifier: MIT */
/*
 * pubsub.c — a line-based TCP publish/subscribe broker: a network service
 * on leash, walked through in docs/NETWORK-SERVICE.md. Its Go twin is
 * bench/go/pubsub/main.go; bench/run.sh's pubsub workload runs both.
 *
 *   SUB topic / UNSUB topic   -> OK
 *   PUB topic message         -> every subscriber of topic gets
 *                                "MSG topic message"
 *   PING                      -> PONG
 *   a line over -maxline      -> ERR line too long (the connection stays)
 *   anything else             -> ERR unknown command
 *
 * Each client has a reader and a writer coroutine and a bounded queue of
 * lines: a client too slow to take its lines is disconnected. A client
 * silent for -idle is disconnected. SIGTERM or SIGINT stops it: no new
 * connection, every reader ends, and main returns 0 once every client is
 * gone (so LEASH_LEAKCHECK=1 finds nothing).
 *
 * Run:   build/example_pubsub [-addr 127.0.0.1:7000] [-idle 10s]
 *            [-queue 256] [-maxline 4096] [-debug 127.0.0.1:0]
 *        nc 127.0.0.1 7000
 */
#include <leash.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *addr = "127.0.0.1:7000", *debug_addr;
static int64_t idle = 10000000000; /* ns */
static size_t queue = 256, max_line = 4096;

static leash_ctx *stopping; /* cancelled on SIGTERM */
static leash_waitgroup clients = LEASH_WAITGROUP_INIT;

typedef struct client {
    leash_conn *conn; /* the client owns its connection and its queue */
    leash_chan *out;  /* char *: lines for the writer, malloc'd */
    atomic_int refs;  /* its reader and its writer */
} client;

static void *must(void *p) { /* out of memory: abort, as Go panics */
    return p ? p : (abort(), NULL);
}

/* Queues a copy of line for c; a client too slow to take it goes. */
static void send_line(client *c, const char *line) {
    char *m = must(strdup(line));
    if (leash_try_send(c->out, &m) != 0) {
        free(m);
        leash_conn_close(c->conn); /* from any coroutine: its reader wakes */
    }
}

/* ---------------------------------------------------------------- topics */

typedef struct sub { client *c; struct sub *next; } sub;
typedef struct topic { struct topic *next; sub *subs; char name[]; } topic;

static topic *topics[1024]; /* a hash table of lists */
static leash_mutex hub = LEASH_MUTEX_INIT;

static topic **find(const char *name) {
    unsigned h = 5381;
    for (const char *p = name; *p; p++)
        h = h * 33 + (unsigned char)*p;
    topic **t = &topics[h % 1024];
    while (*t && strcmp((*t)->name, name))
        t = &(*t)->next;
    return t;
}

static sub **find_sub(topic *t, client *c) {
    sub **s = &t->subs;
    while (*s && (*s)->c != c)
        s = &(*s)->next;
    return s;
}

/* Takes c off topic *t, which goes with its last subscriber. */
static void drop(topic **t, client *c) {
    sub **s = find_sub(*t, c), *gone = *s;
    if (gone) {
        *s = gone->next;
        free(gone);
    }
    if (!(*t)->subs) {
        topic *empty = *t;
        *t = empty->next;
        free(empty);
    }
}

static void subscribe(client *c, const char *name) {
    leash_mutex_lock(&hub);
    topic **t = find(name);
    if (!*t) {
        *t = must(calloc(1, sizeof **t + strlen(name) + 1));
        strcpy((*t)->name, name);
    }
    sub **s = find_sub(*t, c);
    if (!*s)
        *s = must(calloc(1, sizeof **s));
    (*s)->c = c;
    leash_mutex_unlock(&hub);
}

static void unsubscribe(client *c, const char *name) {
    leash_mutex_lock(&hub);
    topic **t = find(name);
    if (*t)
        drop(t, c);
    leash_mutex_unlock(&hub);
}

static void unsubscribe_all(client *c) {
    leash_mutex_lock(&hub);
    for (size_t i = 0; i < 1024; i++)
        for (topic **t = &topics[i]; *t;) {
            topic *was = *t;
            drop(t, c);
            if (*t == was)
                t = &was->next;
        }
    leash_mutex_unlock(&hub);
}

static void publish(const char *name, const char *line) {
    leash_mutex_lock(&hub);
    topic *t = *find(name);
    for (sub *s = t ? t->subs : NULL; s; s = s->next)
        send_line(s->c, line);
    leash_mutex_unlock(&hub);
}

/* --------------------------------------------------------------- clients */

static void handle(client *c, const char *line, size_t n) { /* n: with '\n' */
    char *l = must(strndup(line, n - 1)), *rest = l;
    char *cmd = strsep(&rest, " "), *topic = strsep(&rest, " ");
    if (memchr(line, 0, n) || (topic && !*topic)) /* a NUL byte, no topic */
        send_line(c, "ERR unknown command\n");
    else if (!strcmp(cmd, "PING") && !topic)
        send_line(c, "PONG\n");
    else if (!strcmp(cmd, "SUB") && topic && !rest)
        subscribe(c, topic), send_line(c, "OK\n");
    else if (!strcmp(cmd, "UNSUB") && topic && !rest)
        unsubscribe(c, topic), send_line(c, "OK\n");
    else if (!strcmp(cmd, "PUB") && rest) {
        char *msg = must(strndup(line, n));
        memcpy(msg, "MSG", 3); /* "PUB topic message\n" */
        publish(topic, msg);
        free(msg);
    } else
        send_line(c, "ERR unknown command\n");
    free(l);
}

/* The reader or the writer is done with c; the last one frees it. */
static void client_put(client *c) {
    if (atomic_fetch_sub(&c->refs, 1) > 1)
        return;
    for (char *m; leash_recv(c->out, &m) == 0;) /* closed: no wait */
        free(m);
    leash_release_detached(c->out);
    leash_release_detached(c->conn);
    free(c);
    leash_waitgroup_done(&clients);
}

static void reader(void *arg) {
    client *c = arg;
    leash_reader *r = leash_reader_new(c->conn, max_line);
    leash_reader_set_ctx(r, stopping); /* a read ends on SIGTERM too */
    const char *line;
    ssize_t n;
    while (leash_conn_set_read_deadline(c->conn, leash_now() + idle) == 0 &&
           ((n = leash_reader_read_line(r, &line)) > 0 || n == LEASH_E2BIG)) {
        if (n == LEASH_E2BIG)
            send_line(c, "ERR line too long\n");
        else if (line[n - 1] == '\n') /* not a last line cut short */
            handle(c, line, (size_t)n);
    }
    leash_reader_free(r);
    unsubscribe_all(c); /* no publisher can queue a line any more */
    leash_conn_close(c->conn);
    leash_close(c->out);
    client_put(c);
}

static void writer(void *arg) {
    client *c = arg;
    leash_writer *w = leash_writer_new(c->conn, 0);
    char *m;
    while (leash_recv(c->out, &m) == 0) {
        ssize_t rc = leash_writer_write(w, m, strlen(m));
        free(m);
        if (rc < 0 || (leash_chan_len(c->out) == 0 && leash_writer_flush(w) < 0))
            break;
    }
    leash_writer_close(w);
    leash_conn_close(c->conn); /* wakes the reader if writing failed */
    client_put(c);
}

static void start_client(leash_conn *conn) {
    client *c = must(calloc(1, sizeof *c));
    c->conn = conn;
    c->out = must(leash_chan_make(sizeof(char *), queue));
    atomic_init(&c->refs, 2);
    leash_ref_detach(c->conn); /* owned by c, not by this coroutine */
    leash_ref_detach(c->out);
    leash_waitgroup_add(&clients, 1);
    if (leash_go(reader, c) < 0 || leash_go(writer, c) < 0)
        abort();
}

static int serve(void *arg) {
    (void)arg;
    leash_conn *ln, *conn;
    int rc = leash_listen(&ln, "tcp", addr);
    if (rc < 0)
        return fprintf(stderr, "pubsub: %s: %s\n", addr, leash_strerror(rc)), 1;
    printf("listening on port %d\n", leash_conn_local_port(ln));
    if (debug_addr && (rc = leash_debug_listen(debug_addr)) > 0)
        printf("debug on port %d\n", rc);
    fflush(stdout);

    LEASH_AUTO leash_chan *sig = leash_chan_make(sizeof(int), 1);
    leash_signal_notify(sig, SIGTERM, SIGINT);
    stopping = leash_ctx_with_cancel(leash_ctx_background());
    int signo;
    leash_case cs[] = {LEASH_READABLE_CASE(ln), LEASH_RECV_CASE(sig, &signo)};
    while (leash_select(cs, 2) == 0) { /* a connection waits, or a signal */
        if (leash_conn_accept(ln, &conn) == 0)
            start_client(conn);
        else
            leash_sleep(10000000); /* out of fds: let some go */
    }

    leash_conn_close(ln);
    leash_ctx_cancel(stopping);
    leash_waitgroup_wait(&clients);
    leash_debug_stop();
    leash_signal_stop(sig);
    leash_release(stopping);
    leash_release(ln);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        char *unit;
        if (!strcmp(f, "-addr"))
            addr = v;
        else if (!strcmp(f, "-debug"))
            debug_addr = v;
        else if (!strcmp(f, "-queue"))
            queue = strtoul(v, NULL, 10);
        else if (!strcmp(f, "-maxline"))
            max_line = strtoul(v, NULL, 10);
        else if (!strcmp(f, "-idle")) /* "10s", "500ms" */
            idle = (int64_t)(strtod(v, &unit) * (strcmp(unit, "ms") ? 1e9 : 1e6));
        else
            return fprintf(stderr, "pubsub: unknown flag %s\n", f), 2;
    }
    return leash_run(serve, NULL);
}
