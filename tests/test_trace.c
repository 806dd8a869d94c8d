/* SPDX-License-Identifier: MIT */
/*
 * test_trace.c — the execution trace (src/diag/trace.c): a small program
 * (a ping-pong pair, a sleeper, a spawn tree, a receive woken by a send)
 * is traced, and the JSON is checked by python3 against the trace-event
 * format: every event has ph/ts/pid/tid, B/E balance per track, every
 * flow start has its finish at or after it, spawns are all there; then
 * the HTTP route, the lost-event count, and bad inputs.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core_util.h"
#include "dbg_util.h"

#define MS CU_MS

/* Checks a trace file; argv: file, then "key=value" expectations. */
static const char *const validator =
    "import json, sys, collections\n"
    "d = json.load(open(sys.argv[1]))\n"
    "want = dict(a.split('=', 1) for a in sys.argv[2:])\n"
    "ev = d['traceEvents']\n"
    "err = []\n"
    "depth = collections.Counter(); last = {}\n"
    "flows = {}; names = {}\n"
    "for e in ev:\n"
    "    for k in ('ph', 'ts', 'pid', 'tid'):\n"
    "        if k not in e: err.append('no %s: %r' % (k, e))\n"
    "    t = (e['pid'], e['tid'])\n"
    "    if e['ph'] == 'M' and e['name'] == 'thread_name':\n"
    "        names[t] = e['args']['name']\n"
    "    if e['ph'] in 'BE':\n"
    "        if e['ts'] < last.get(t, 0): err.append('out of order %r' % e)\n"
    "        last[t] = e['ts']\n"
    "        depth[t] += 1 if e['ph'] == 'B' else -1\n"
    "        if depth[t] < 0: err.append('E without B %r' % e)\n"
    "    if e['ph'] == 'X' and e['dur'] < 0: err.append('dur %r' % e)\n"
    "    if e['ph'] in 'sf': flows.setdefault(e['id'], {})[e['ph']] = e\n"
    "for t, n in depth.items():\n"
    "    if n: err.append('unbalanced track %r: %d' % (t, n))\n"
    "byname = {}\n"
    "for t, n in names.items(): byname.setdefault(n.split(' ', 2)[-1], []).append(t)\n"
    "wakes = collections.Counter()\n"
    "for i, f in flows.items():\n"
    "    if set(f) != {'s', 'f'}: err.append('flow %r unmatched' % i); continue\n"
    "    if f['f']['ts'] < f['s']['ts']: err.append('flow %r backwards' % i)\n"
    "    wakes[(names.get((2, f['s']['tid']), '?').split(' ', 2)[-1],\n"
    "           names.get((2, f['f']['tid']), '?').split(' ', 2)[-1])] += 1\n"
    "def states(n):\n"
    "    ts = byname.get(n, [])\n"
    "    return [e['name'] for e in ev if e['ph'] == 'B' and (e['pid'], e['tid']) in ts]\n"
    "spawns = [e for e in ev if e['ph'] == 'i' and e['name'] == 'spawn']\n"
    "def spawned(n):\n"
    "    return sum(1 for e in spawns if (e['pid'], e['tid']) in byname.get(n, []))\n"
    "for k, v in want.items():\n"
    "    if k == 'tree': got = spawned('tree')\n"
    "    elif k == 'pingpong': got = min(wakes[('ping', 'pong')], wakes[('pong', 'ping')])\n"
    "    elif k == 'recv_woken': got = wakes[('sender', 'receiver')]\n"
    "    elif k == 'recv_waits': got = states('receiver').count('chan receive')\n"
    "    elif k == 'sleeps': got = states('sleeper').count('sleep')\n"
    "    elif k == 'longname': got = len(byname.get('0123456789abcdef0123456789ABCDE', []))\n"
    "    elif k == 'weird': got = len(byname.get('we\"ird\\nname k\"=v\\u2028', []))\n"
    "    elif k == 'workers': got = sum(1 for e in ev if e['ph'] == 'X' and e['pid'] == 1)\n"
    "    elif k == 'dropped': got = d['otherData']['dropped_events']\n"
    "    else: err.append('unknown key ' + k); continue\n"
    "    op, v = (v[0], int(v[1:])) if v[0] in '<>' else ('=', int(v))\n"
    "    if not {'=': got == v, '>': got > v, '<': got < v}[op]:\n"
    "        err.append('%s: got %r, want %s%d' % (k, got, op if op != '=' else '', v))\n"
    "print('\\n'.join(err[:20]) or 'ok')\n"
    "sys.exit(1 if err else 0)\n";

static void validate(const char *data, size_t len, const char *const *want) {
    char *dir = dbg_tmpdir();
    char file[256];
    snprintf(file, sizeof file, "%s/trace.json", dir);
    dbg_write_file(file, data, len);
    char *py = dbg_which("python3");
    cr_assert(py, "python3 is needed to check the trace");
    const char *argv[16] = {py, "-c", validator, file};
    int n = 4;
    for (; want[n - 4] && n < 15; n++)
        argv[n] = want[n - 4];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int st = dbg_run(argv, NULL, 60, &out, &err);
    cr_expect_eq(st, 0, "trace check failed:\n%s%s", out ? out : "",
                 err ? err : "");
    free(out);
    free(err);
    free(py);
    dbg_rmrf(dir);
    free(dir);
}

/* ------------------------------------------------------------ program */

static void pinger(void *arg) {
    leash_chan **ch = arg;
    leash_set_name("ping");
    for (int i = 0; i < 100; i++) {
        int v = i;
        leash_send(ch[0], &v);
        leash_recv(ch[1], &v);
    }
}

static void ponger(void *arg) {
    leash_chan **ch = arg;
    leash_set_name("pong");
    for (int i = 0; i < 100; i++) {
        int v;
        leash_recv(ch[0], &v);
        leash_send(ch[1], &v);
    }
}

static void sleeper(void *arg) {
    (void)arg;
    leash_set_name("sleeper");
    for (int i = 0; i < 3; i++)
        leash_sleep(2 * MS);
}

static leash_chan *tree_done;
static void tree(void *arg) {
    intptr_t depth = (intptr_t)arg;
    leash_set_name("tree");
    for (int i = 0; depth < 2 && i < 3; i++)
        leash_go(tree, (void *)(depth + 1));
    int one = 1;
    leash_send(tree_done, &one);
}

static void receiver(void *arg) {
    leash_chan *ch = arg;
    leash_set_name("receiver");
    int v;
    leash_recv(ch, &v);
}

/* A name of 31 bytes: two ring slots, read back as one. */
static void longname(void *arg) {
    (void)arg;
    leash_set_name("0123456789abcdef0123456789ABCDEFGH");
    leash_sleep(MS);
}

static void weird(void *arg) {
    (void)arg;
    leash_set_name("we\"ird\nname");
    leash_label_set("k\"", "v\xe2\x80\xa8");
    leash_sleep(MS);
}

static char *trace_buf;
static size_t trace_len;

static int traced_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_trace_start(0), 0);
    CU_CHECK_EQ(leash_trace_start(0), -EBUSY);
    leash_chan *pp[2] = {leash_chan_make(sizeof(int), 0),
                         leash_chan_make(sizeof(int), 0)};
    leash_go(pinger, pp, pp[0], pp[1]);
    leash_go(ponger, pp, pp[0], pp[1]);
    leash_go(sleeper, NULL);
    leash_go(weird, NULL);
    leash_go(longname, NULL);
    tree_done = leash_chan_make(sizeof(int), 16);
    leash_go(tree, (void *)0);
    leash_chan *rc = leash_chan_make(sizeof(int), 0);
    leash_go(receiver, rc, rc);
    leash_set_name("sender");
    leash_sleep(20 * MS); /* the receiver parks first */
    int v = 7;
    CU_CHECK_EQ(leash_send(rc, &v), 0);
    for (int i = 0; i < 13; i++) /* 1 + 3 + 9 tree nodes */
        CU_CHECK_EQ(leash_recv(tree_done, &v), 0);
    leash_sleep(20 * MS); /* the rest finish */
    FILE *f = open_memstream(&trace_buf, &trace_len);
    CU_CHECK_EQ(leash_trace_stop(f), 0);
    fclose(f);
    CU_CHECK_EQ(leash_trace_stop(NULL), LEASH_EINVAL);
    leash_release(pp[0]);
    leash_release(pp[1]);
    leash_release(rc);
    leash_release(tree_done);
    return 0;
}

Test(trace, program, .timeout = 120) {
    setenv("LEASH_PROCS", "2", 1);
    cu_run(traced_main, NULL);
    cr_assert(trace_buf && trace_len > 0);
    /* recv_woken: the arrows of its spawn and of the send. */
    const char *want[] = {"tree=13",      "pingpong=>90", "recv_woken=2",
                          "recv_waits=1", "sleeps=3",     "weird=1",
                          "longname=1",
                          "workers=>100", "dropped=0",    NULL};
    validate(trace_buf, trace_len, want);
    free(trace_buf);
    trace_buf = NULL;
}

/* A ring far too small: events are overwritten, counted, and the JSON
 * stays well formed. */
static int small_main(void *arg) {
    (void)arg;
    CU_CHECK_EQ(leash_trace_start(16), 0);
    for (int i = 0; i < 200; i++)
        leash_yield();
    leash_chan *pp[2] = {leash_chan_make(sizeof(int), 0),
                         leash_chan_make(sizeof(int), 0)};
    leash_go(pinger, pp, pp[0], pp[1]);
    leash_go(ponger, pp, pp[0], pp[1]);
    leash_sleep(20 * MS);
    FILE *f = open_memstream(&trace_buf, &trace_len);
    CU_CHECK_EQ(leash_trace_stop(f), 0);
    fclose(f);
    leash_release(pp[0]);
    leash_release(pp[1]);
    return 0;
}

Test(trace, dropped_counted, .timeout = 120) {
    setenv("LEASH_PROCS", "1", 1);
    cu_run(small_main, NULL);
    const char *want[] = {"dropped=>100", NULL};
    validate(trace_buf, trace_len, want);
    free(trace_buf);
    trace_buf = NULL;
}

Test(trace, bad_inputs, .timeout = 60) {
    cr_expect_eq(leash_trace_stop(NULL), LEASH_EINVAL);
    cr_expect_eq(leash_trace_start((size_t)1 << 25), LEASH_EINVAL);
    cr_expect_eq(leash_trace(NULL, MS), LEASH_EINVAL);
    cr_expect_eq(leash_trace(stdout, 0), LEASH_EINVAL);
    cr_expect_eq(leash_trace(stdout, -1), LEASH_EINVAL);
    /* From a plain thread: start, stop with nothing to write. */
    cr_expect_eq(leash_trace_start(100), 0);
    cr_expect_eq(leash_trace_stop(NULL), 0);
}

/* ------------------------------------------------------------ HTTP */

static int port;
static _Atomic int http_done;
static char *resp_a;
static size_t len_a;

static void *get_a(void *arg) {
    (void)arg;
    resp_a = dbg_http_get(port, "/debug/leash/trace?seconds=1", &len_a);
    return NULL;
}

static void *http_client(void *arg) {
    (void)arg;
    static const struct {
        const char *path;
        int status;
    } bad[] = {
        {"/debug/leash/trace?seconds=0", 400},
        {"/debug/leash/trace?seconds=61", 400},
        {"/debug/leash/trace?seconds=abc", 400},
        {"/debug/leash/trace?seconds=-1", 400},
        {"/debug/leash/trace?seconds=", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *r = dbg_http_get(port, bad[i].path, NULL);
        if (dbg_http_status(r) != bad[i].status ||
            !strstr(dbg_http_body(r), "seconds must be"))
            cu_fail(__FILE__, __LINE__, "GET %s: want %d, got: %.300s",
                    bad[i].path, bad[i].status, r ? r : "(no answer)");
        free(r);
    }
    pthread_t t;
    pthread_create(&t, NULL, get_a, NULL);
    usleep(300 * 1000);
    char *b = dbg_http_get(port, "/debug/leash/trace?seconds=1", NULL);
    if (dbg_http_status(b) != 409 ||
        !strstr(dbg_http_body(b), "a trace is already running"))
        cu_fail(__FILE__, __LINE__, "want 409, got: %.300s", b ? b : "");
    free(b);
    pthread_join(t, NULL);
    atomic_store(&http_done, 1);
    return NULL;
}

static void busy(void *arg) {
    (void)arg;
    leash_set_name("busy");
    while (!atomic_load(&http_done))
        leash_sleep(MS);
}

static int http_main(void *arg) {
    (void)arg;
    port = leash_debug_listen("127.0.0.1:0");
    CU_CHECK(port > 0);
    leash_go(busy, NULL);
    pthread_t t;
    pthread_create(&t, NULL, http_client, NULL);
    while (!atomic_load(&http_done))
        leash_sleep(10 * MS);
    pthread_join(t, NULL);
    leash_debug_stop();
    return 0;
}

Test(trace, http, .timeout = 120) {
    setenv("LEASH_PROCS", "2", 1);
    cu_run(http_main, NULL);
    cr_assert_eq(dbg_http_status(resp_a), 200, "%.300s", resp_a);
    cr_expect(strstr(resp_a, "application/json"), "%.300s", resp_a);
    const char *body = dbg_http_body(resp_a);
    const char *want[] = {"workers=>10", NULL};
    validate(body, len_a - (size_t)(body - resp_a), want);
    free(resp_a);
}
