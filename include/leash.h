/* SPDX-License-Identifier: MIT */
/*
 * leash.h — Go-style concurrency for C: coroutines, channels, select,
 * timers, on an M:N work-stealing scheduler, with leak diagnostics.
 *
 * Conventions
 *   - Every name starts with leash_ / LEASH_.
 *   - Functions return 0 or a non-negative value on success and a negative
 *     LEASH_E* code on failure; leash_strerror() turns a code into text.
 *   - No function aborts on bad input: NULL, a wrong element size or a
 *     pointer that is not a live leash object gives LEASH_EINVAL. That
 *     includes wild pointers (0x1000, an unmapped or PROT_NONE page):
 *     objects live in one range leash reserves, and nothing outside it is
 *     read. A stale pointer reads as dead until its memory is reused by a
 *     new object of the same kind.
 *   - NULL, call by call (tests/test_nullconv.c checks each): a call that
 *     returns an error code gives LEASH_EINVAL; a constructor or a lookup
 *     returns NULL (a NULL parent context included); a void call ignores
 *     it. Where a comment below gives NULL a meaning (an optional FILE,
 *     options, context, creation site or receive buffer), it has that
 *     meaning instead. One exception, Go's nil channel: a send or receive
 *     on a NULL channel blocks forever (dumps show it as a leak), a
 *     select never picks a NULL channel's case, and leash_try_send_n /
 *     leash_try_recv_n on one return LEASH_EAGAIN.
 *   - Any OS thread may call any function. On a coroutine a blocking call
 *     parks the coroutine and its worker runs others; on a thread that is
 *     not a coroutine it blocks that thread on an OS wait.
 *   - The runtime starts on first use; leash_run() is the usual entry point.
 *
 * What user code must not assume
 *   A coroutine may resume on another worker thread after any call that can
 *   block or yield. Do not keep the address of a thread-local variable
 *   (errno included) across such a call, and do not hold an OS mutex across
 *   it. Coroutine stacks are fixed-size (LEASH_STACK_SIZE, default 64 KiB,
 *   committed lazily); an overflow is reported, not silent.
 */
#ifndef LEASH_H
#define LEASH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LEASH_VERSION_MAJOR 0
#define LEASH_VERSION_MINOR 1
#define LEASH_VERSION_PATCH 0

/* Marks what libleash exports: the library is built with hidden
 * visibility, so anything without it stays internal. */
#ifndef LEASH_API /* the library's build adds a section (src/internal.h) */
#if defined(__GNUC__) || defined(__clang__)
#define LEASH_API __attribute__((visibility("default")))
#else
#define LEASH_API
#endif
#endif

/* ------------------------------------------------------------------ errors */

/* One namespace with errno: I/O calls return -errno for the OS's errors,
 * so a LEASH_E* code either is the negated errno of the same meaning
 * (EAGAIN, EINVAL, ENOMEM, ETIMEDOUT, ECANCELED, E2BIG) or has no errno meaning
 * (-1001 and below). leash_strerror names both kinds. */
enum {
    LEASH_EAGAIN    = -11,  /* the operation would block */
    LEASH_ECLOSED   = -1002, /* the channel (or connection) is closed */
    LEASH_ECANCELED = -125, /* the context was canceled */
    LEASH_ETIMEDOUT = -110, /* the deadline passed */
    LEASH_EINVAL    = -22,  /* bad argument or not a live leash object */
    LEASH_ENOMEM    = -12,  /* out of memory */
    LEASH_E2BIG     = -7,   /* a line longer than the reader's maximum */
    LEASH_EORPHANED = -1001 /* every other holder of the channel is gone */
};

/* Text for a LEASH_E* code, or for a negated errno (-EPIPE: "Broken
 * pipe"), or "unknown error"; never NULL, never changes. */
LEASH_API const char *leash_strerror(int err);

/* ------------------------------------------------------- runtime, coroutines */

typedef struct leash_chan leash_chan;
typedef struct leash_ctx leash_ctx;
typedef struct leash_ticker leash_ticker;
typedef struct leash_group leash_group;
typedef struct leash_conn leash_conn;

/* A leash object as void *, for the typed spawns; a compile error for a
 * pointer of any other type. */
#ifdef __cplusplus
}
inline void *LEASH_OBJ_(leash_chan *o) { return o; }
inline void *LEASH_OBJ_(leash_ctx *o) { return o; }
inline void *LEASH_OBJ_(leash_ticker *o) { return o; }
inline void *LEASH_OBJ_(leash_group *o) { return o; }
inline void *LEASH_OBJ_(leash_conn *o) { return o; }
extern "C" {
#else
#define LEASH_OBJ_(o)                                                   \
    _Generic((o), leash_chan *: (void *)(o), leash_ctx *: (void *)(o), \
             leash_ticker *: (void *)(o), leash_group *: (void *)(o), \
             leash_conn *: (void *)(o))
#endif

/* Runs main_fn as coroutine 1 on the scheduler and returns its result.
 * The calling thread waits (on an OS wait) until main_fn returns. */
LEASH_API int leash_run(int (*main_fn)(void *), void *arg);

/* Starts a coroutine running fn(arg); returns its id (> 0) or LEASH_E*.
 * Trailing arguments are leash objects (channels, contexts, tickers,
 * groups) whose references are handed to the child: retained for it before
 * it starts and released when it returns. The list ends at the macro's own
 * terminator or at the first NULL. The macro records the call's file:line
 * as the coroutine's spawn site. The caller goes on running, except after
 * a whole slice (10 ms) on its worker while others wait: then it yields
 * first, as Go's preemption would make it (a spawn loop cannot keep
 * everything it starts from running). */
#define leash_go(fn, ...) \
    leash_go_at(__FILE__, __LINE__, (fn), __VA_ARGS__, (void *)0)
LEASH_API int64_t leash_go_at(const char *file, int line, void (*fn)(void *), void *arg,
                              ...);

/* Typed forms of leash_go with a fixed number of handed objects and no
 * terminator: each object must be a leash_chan *, leash_ctx *,
 * leash_ticker *, leash_group * or leash_conn * (anything else, a void * or a NULL
 * constant, does not compile), and a NULL pointer at run time is
 * LEASH_EINVAL rather than the silent end of a list. Use them where an
 * object forgotten in leash_go's list would go unnoticed. */
#define leash_go1(fn, arg, a) \
    leash_go_n_at(__FILE__, __LINE__, (fn), (arg), 1, LEASH_OBJ_(a), 0, 0)
#define leash_go2(fn, arg, a, b)                                       \
    leash_go_n_at(__FILE__, __LINE__, (fn), (arg), 2, LEASH_OBJ_(a),   \
                  LEASH_OBJ_(b), 0)
#define leash_go3(fn, arg, a, b, c)                                    \
    leash_go_n_at(__FILE__, __LINE__, (fn), (arg), 3, LEASH_OBJ_(a),   \
                  LEASH_OBJ_(b), LEASH_OBJ_(c))
LEASH_API int64_t leash_go_n_at(const char *file, int line, void (*fn)(void *),
                      void *arg, int n, void *a, void *b, void *c);

LEASH_API int64_t leash_self(void);          /* current coroutine id, 0 if none */
LEASH_API void leash_yield(void);            /* let other coroutines run */
LEASH_API void leash_set_name(const char *); /* shown in dumps and tools (copied); NULL: none */
LEASH_API size_t leash_num_coroutines(void); /* live coroutines, like NumGoroutine */
LEASH_API int leash_num_workers(void);       /* worker threads (LEASH_PROCS) */

/* Stops the workers and frees the runtime's memory once no coroutine is
 * left (LEASH_EAGAIN otherwise). The runtime restarts on next use. */
LEASH_API int leash_shutdown(void);

/* ------------------------------------------------------ objects, references */

/* Channels, contexts, tickers and groups are reference counted. A
 * reference belongs to the coroutine (or thread) that took it; a
 * coroutine's references are released when it returns. A release drops
 * one of the caller's own references: a caller that holds none (a second
 * release, or a borrower) gets LEASH_EINVAL and changes nothing (under
 * LEASH_STRICT=1 it panics), so it cannot free the object under another
 * holder. To pass a reference on, the receiver retains and the sender
 * releases, or leash_go hands it. A coroutine started by a plain thread
 * (leash_run's main) acts for that thread: it may release the thread's
 * references. leash_ticker_stop drops the start reference whoever calls
 * it. */
LEASH_API void *leash_retain(void *obj);   /* returns obj, or NULL if not live */
LEASH_API void leash_release(void *obj);   /* no-op on NULL or a dead object */
LEASH_API int leash_release_checked(void *obj); /* 0 or LEASH_EINVAL */

/* `LEASH_AUTO leash_chan *ch = leash_chan_make(...);` releases the
 * reference at scope exit. */
LEASH_API void leash_release_ptr_(void *pobj);
#define LEASH_AUTO __attribute__((cleanup(leash_release_ptr_)))

/* ---- detached references: owned by a data structure ---- */

/* A reference stored in a shared structure (a client table, a channel in
 * a struct several coroutines use) must outlive the coroutine that made
 * it. leash_ref_detach turns one of the caller's references into a
 * detached one, owned by no coroutine: the caller's return does not drop
 * it. Whichever coroutine tears the structure down then either adopts it
 * (leash_ref_adopt: it becomes that coroutine's reference) or drops it
 * (leash_release_detached). A detached reference never released is
 * reported by LEASH_LEAKCHECK with the object's creation site and who
 * detached it where; dumps show a channel's detached references. While
 * one exists, nobody is proven orphaned on that channel: anyone who can
 * reach the structure can still use it.
 * Each returns 0, or LEASH_EINVAL (not a live object; detach: the caller
 * holds no reference; adopt, release: none is detached), or LEASH_ENOMEM. */
#define leash_ref_detach(obj) leash_ref_detach_at(__FILE__, __LINE__, (obj))
LEASH_API int leash_ref_detach_at(const char *file, int line, void *obj);
LEASH_API int leash_ref_adopt(void *obj);
LEASH_API int leash_release_detached(void *obj);
/* How many detached references obj has, or LEASH_EINVAL. */
LEASH_API int leash_ref_detached(void *obj);

/* ---------------------------------------------------------------- channels */

typedef struct leash_chan leash_chan;

/* A channel of elements of elem_size bytes (0: a signal channel) with
 * capacity cap (0: unbuffered). NULL on bad size or out of memory. (The
 * _at forms' file may be NULL: no creation site.) A NULL element is
 * LEASH_EINVAL to send and discards the value received. */
#define leash_chan_make(elem_size, cap) \
    leash_chan_make_at(__FILE__, __LINE__, (elem_size), (cap))
LEASH_API leash_chan *leash_chan_make_at(const char *file, int line, size_t elem_size,
                                         size_t cap);

LEASH_API int leash_send_n(leash_chan *ch, const void *elem, size_t size);
LEASH_API int leash_recv_n(leash_chan *ch, void *out, size_t size);
LEASH_API int leash_try_send_n(leash_chan *ch, const void *elem, size_t size);
LEASH_API int leash_try_recv_n(leash_chan *ch, void *out, size_t size);

/* Size-checked forms: the element size is sizeof *ptr. */
#define leash_send(ch, elem) leash_send_n((ch), (elem), sizeof *(elem))
#define leash_recv(ch, out) leash_recv_n((ch), (out), sizeof *(out))
#define leash_try_send(ch, elem) leash_try_send_n((ch), (elem), sizeof *(elem))
#define leash_try_recv(ch, out) leash_try_recv_n((ch), (out), sizeof *(out))

LEASH_API int leash_close(leash_chan *ch);
LEASH_API int leash_chan_len(leash_chan *ch); /* elements buffered, or LEASH_EINVAL */
LEASH_API int leash_chan_cap(leash_chan *ch); /* capacity, or LEASH_EINVAL */

/* ------------------------------------------------------------------ select */

/* LEASH_READABLE / LEASH_WRITABLE: I/O cases on a connection (see
 * "Connections" below: LEASH_READABLE_CASE). */
enum { LEASH_SEND = 1, LEASH_RECV = 2, LEASH_READABLE = 3, LEASH_WRITABLE = 4 };

typedef struct {
    leash_chan *ch;  /* I/O cases: the leash_conn (LEASH_READABLE_CASE) */
    int dir;     /* LEASH_SEND, LEASH_RECV, LEASH_READABLE, LEASH_WRITABLE */
    void *elem;  /* value to send / where to receive (NULL: discard) */
    size_t size; /* element size (checked against the channel) */
    int ok;      /* receive: 1 for a value, 0 for a closed channel;
                  * I/O: 1 ready, 0 the connection is closed */
} leash_case;

/* C++ has neither compound literals nor (before C++20) designated
 * initializers: there the cases are aggregate temporaries, as assignable
 * and as type-checked (a const pointer is no receive buffer). */
#ifdef __cplusplus
#define LEASH_SEND_CASE(c, ptr) \
    (leash_case{(c), LEASH_SEND, (void *)(ptr), sizeof *(ptr), 0})
#define LEASH_RECV_CASE(c, ptr) \
    (leash_case{(c), LEASH_RECV, (ptr), sizeof *(ptr), 0})
#else
#define LEASH_SEND_CASE(c, ptr) \
    ((leash_case){.ch = (c), .dir = LEASH_SEND, .elem = (void *)(ptr), \
                  .size = sizeof *(ptr), .ok = 0})
#define LEASH_RECV_CASE(c, ptr) \
    ((leash_case){.ch = (c), .dir = LEASH_RECV, .elem = (ptr), \
                  .size = sizeof *(ptr), .ok = 0})
#endif

/* Blocks until a case can proceed, picks uniformly among ready ones and
 * returns its index. NULL channels are never ready; n == 0 blocks
 * forever. LEASH_EINVAL on a bad case. */
LEASH_API int leash_select(leash_case *cases, size_t n);
/* Go's select with default: LEASH_EAGAIN when no case is ready. */
LEASH_API int leash_try_select(leash_case *cases, size_t n);

/* -------------------------------------------------------------------- time */

LEASH_API int64_t leash_now(void);        /* monotonic nanoseconds */
/* Parks the caller for ns (<= 0: yields). Every duration of this header
 * saturates: one too long to add to the clock means "never". */
LEASH_API void leash_sleep(int64_t ns);

/* A channel (cap 1) that receives one int64_t (leash_now() then) after ns. */
#define leash_after(ns) leash_after_at(__FILE__, __LINE__, (ns))
LEASH_API leash_chan *leash_after_at(const char *file, int line, int64_t ns);

typedef struct leash_ticker leash_ticker;
#define leash_ticker_start(period_ns) \
    leash_ticker_start_at(__FILE__, __LINE__, (period_ns))
LEASH_API leash_ticker *leash_ticker_start_at(const char *file, int line,
                                              int64_t period_ns);
/* The ticker's channel (borrowed; cap 1; carries int64_t; ticks are
 * dropped while it is full, as in Go). */
LEASH_API leash_chan *leash_ticker_chan(leash_ticker *t);
/* Stops the ticker and drops the reference leash_ticker_start gave. */
LEASH_API void leash_ticker_stop(leash_ticker *t);


/* ----------------------------------------------------------------- context */

/* Go's context: a tree of cancellation scopes with deadlines and values.
 * Contexts are leash objects (retain/release). Cancelling one cancels all
 * its descendants; releasing the last reference cancels it. */
typedef struct leash_ctx leash_ctx;

LEASH_API leash_ctx *leash_ctx_background(void); /* borrowed, never cancelled */
#define leash_ctx_with_cancel(parent) \
    leash_ctx_with_cancel_at(__FILE__, __LINE__, (parent))
#define leash_ctx_with_timeout(parent, ns) \
    leash_ctx_with_timeout_at(__FILE__, __LINE__, (parent), (ns))
#define leash_ctx_with_deadline(parent, abs_ns) \
    leash_ctx_with_deadline_at(__FILE__, __LINE__, (parent), (abs_ns))
#define leash_ctx_with_value(parent, key, value) \
    leash_ctx_with_value_at(__FILE__, __LINE__, (parent), (key), (value))
LEASH_API leash_ctx *leash_ctx_with_cancel_at(const char *file, int line,
                                              leash_ctx *parent);
LEASH_API leash_ctx *leash_ctx_with_deadline_at(const char *file, int line,
                                                leash_ctx *parent, int64_t abs_ns);
LEASH_API leash_ctx *leash_ctx_with_timeout_at(const char *file, int line,
                                               leash_ctx *parent, int64_t ns);
LEASH_API leash_ctx *leash_ctx_with_value_at(const char *file, int line,
                                             leash_ctx *parent, const void *key,
                                             void *value);
/* The value stored under key by the nearest ancestor, or NULL. */
LEASH_API void *leash_ctx_value(leash_ctx *ctx, const void *key);
LEASH_API void leash_ctx_cancel(leash_ctx *ctx); /* idempotent; NULL is ignored */
/* Closed when ctx is cancelled (borrowed; element size 0). NULL for a
 * context that can never be cancelled, like Go's nil Done channel.
 * A zero-size channel takes a receive buffer of any size and writes
 * nothing to it: `char c; leash_recv(leash_ctx_done(ctx), &c);` waits for
 * the cancel (LEASH_ECLOSED then), and so does a LEASH_RECV_CASE. */
LEASH_API leash_chan *leash_ctx_done(leash_ctx *ctx);
/* 0 while live, then LEASH_ECANCELED or LEASH_ETIMEDOUT; EINVAL on a bad
 * pointer. */
LEASH_API int leash_ctx_err(leash_ctx *ctx);
/* The deadline (absolute leash_now() ns), or -1 if none; LEASH_EINVAL on
 * a bad pointer. */
LEASH_API int64_t leash_ctx_deadline(leash_ctx *ctx);

/* ----------------------------------------------------------------- signals */

/* Go's signal.Notify: each listed signal (a 0 ends the list; the macro
 * adds one, so `leash_signal_notify(ch, SIGINT, SIGTERM)` works) is sent
 * to ch, a channel of int, as its number, with a non-blocking send:
 * dropped while ch is full, as in Go (give it a buffer). Several channels
 * may ask for one signal: each gets it. A later call adds signals. leash
 * handles the signal from then on (its handler only wakes leash's
 * delivery thread, so a signal landing on any thread is safe and system
 * calls restart); the channel is kept alive while registered. A
 * coroutine waiting on such a channel is normal: no proof, no deadlock,
 * no long-wait suspect. LEASH_EINVAL: not a channel of int, no signal,
 * or a signal leash cannot deliver (KILL, STOP, SEGV, BUS, FPE, ILL,
 * TRAP, SYS, URG: the stack sampler's, glibc's private real-time ones). */
#define leash_signal_notify(ch, ...) \
    leash_signal_notify_list((ch), __VA_ARGS__, 0)
LEASH_API int leash_signal_notify_list(leash_chan *ch, ...);
/* Go's signal.Stop: ch gets no more signals once it returns; a signal no
 * channel asks for any more gets back the handling it had before. 0 (also
 * for a channel that was never registered) or LEASH_EINVAL. */
LEASH_API int leash_signal_stop(leash_chan *ch);

/* ------------------------------------------------------- sync: plain values */

/* These are plain values, like Go's sync types: put them anywhere,
 * initialise with the macro, never copy one in use. They block the
 * coroutine, not the worker thread, and work from plain threads too. */
typedef struct {
    int64_t count_;
    void *waiters_;     /* waiting coroutines (internal) */
    unsigned lock_;
} leash_waitgroup;
#define LEASH_WAITGROUP_INIT {0, 0, 0}
/* Adds n (may be negative) to the counter; LEASH_EINVAL if it would go
 * negative (Go panics). Waiters are released when it reaches zero. */
LEASH_API int leash_waitgroup_add(leash_waitgroup *wg, int64_t n);
LEASH_API int leash_waitgroup_done(leash_waitgroup *wg);
/* Blocks until the counter is zero. A wait group may live on the waiter's
 * stack: the last _done touches nothing after it wakes the waiter. */
LEASH_API int leash_waitgroup_wait(leash_waitgroup *wg);

typedef struct {
    unsigned state_;    /* 0 free, 1 locked */
    unsigned lock_;
    void *head_, *tail_;
    void *owner_;       /* holder, for the diagnostics */
} leash_mutex;
#define LEASH_MUTEX_INIT {0, 0, 0, 0, 0}
LEASH_API int leash_mutex_lock(leash_mutex *mu);
LEASH_API int leash_mutex_trylock(leash_mutex *mu); /* 0 or LEASH_EAGAIN */
/* LEASH_EINVAL if the mutex is not locked (Go: fatal error). */
LEASH_API int leash_mutex_unlock(leash_mutex *mu);

/* Go's sync.RWMutex: many readers or one writer; a waiting writer keeps
 * new readers out, so writers do not starve. Unlocking what is not
 * locked is LEASH_EINVAL (Go: fatal error); as in Go, an RUnlock without
 * its RLock is caught only when no reader at all is in. */
typedef struct {
    int readers_;       /* readers counted in, minus 2^30 while a writer is
                           in or waits for the readers to leave */
    int rwait_;         /* readers that writer still waits for */
    unsigned lock_;     /* guards the fields below */
    int writer_;        /* 0; 1: a writer waits for readers to leave; 2: in */
    int wwait_;         /* writers queued behind it */
    int rperm_;         /* readers let in before they could queue */
    void *rhead_, *rtail_, *whead_, *wtail_;
    void *wdrain_;      /* the writer waiting for the readers to leave */
    void *owner_;       /* the writer inside, for the diagnostics */
    void *rowners_[4];  /* some readers inside, for the diagnostics */
} leash_rwmutex;
#define LEASH_RWMUTEX_INIT {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, {0, 0, 0, 0}}
LEASH_API int leash_rwmutex_rlock(leash_rwmutex *rw);
LEASH_API int leash_rwmutex_runlock(leash_rwmutex *rw);
LEASH_API int leash_rwmutex_lock(leash_rwmutex *rw);
LEASH_API int leash_rwmutex_unlock(leash_rwmutex *rw);

/* Go's sync.Cond, with a leash_mutex. */
typedef struct {
    unsigned lock_;
    void *head_, *tail_;
} leash_cond;
#define LEASH_COND_INIT {0, 0, 0}
/* Atomically unlocks mu and waits for a signal, then locks mu again. */
LEASH_API int leash_cond_wait(leash_cond *c, leash_mutex *mu);
LEASH_API int leash_cond_signal(leash_cond *c);    /* wakes one waiter, if any */
LEASH_API int leash_cond_broadcast(leash_cond *c); /* wakes them all */

/* Go's sync.Once: fn runs exactly once; concurrent callers wait until
 * that first call has returned. */
typedef struct {
    unsigned done_;
    leash_mutex mu_;
} leash_once;
#define LEASH_ONCE_INIT {0, LEASH_MUTEX_INIT}
LEASH_API int leash_once_do(leash_once *o, void (*fn)(void *), void *arg);
/* After the first call, leash_once_do is one acquire load, inlined in the
 * caller (Go inlines its fast path too); the function above does the rest.
 * (leash_once_do)(...) or &leash_once_do call the function directly. */
static inline int leash_once_do_inline_(leash_once *o, void (*fn)(void *),
                                        void *arg) {
    if (o && fn && __atomic_load_n(&o->done_, __ATOMIC_ACQUIRE))
        return 0;
    return (leash_once_do)(o, fn, arg);
}
#define leash_once_do(o, fn, arg) leash_once_do_inline_((o), (fn), (arg))

/* ------------------------------------------------------------------- group */

/* Go's errgroup with a context: members run as coroutines; the first one
 * to return non-zero cancels the group's context; leash_group_wait joins
 * every member and returns that first result, so nothing outlives it. */
typedef struct leash_group leash_group;
#define leash_group_new(parent) leash_group_new_at(__FILE__, __LINE__, (parent))
LEASH_API leash_group *leash_group_new_at(const char *file, int line, leash_ctx *parent);
/* The group's context (borrowed): cancelled by the first error or by
 * leash_group_wait's return. */
LEASH_API leash_ctx *leash_group_ctx(leash_group *g);
#define leash_group_go(g, fn, ...) \
    leash_group_go_at(__FILE__, __LINE__, (g), (fn), __VA_ARGS__, (void *)0)
LEASH_API int64_t leash_group_go_at(const char *file, int line, leash_group *g,
                                    int (*fn)(void *), void *arg, ...);
/* Waits for every member; returns the first non-zero result (0 if none).
 * Releases nothing: the creator still releases the group. */
LEASH_API int leash_group_wait(leash_group *g);

/* --------------------------------------------------------------------- I/O */

/* Non-blocking I/O through the runtime's epoll netpoller. Each call makes
 * the fd non-blocking, parks the coroutine ("IO wait") until the fd is
 * ready, and gives up at `deadline` (absolute leash_now() ns; -1 or
 * INT64_MAX: none; another negative value is LEASH_EINVAL) with
 * LEASH_ETIMEDOUT. OS errors come back as -errno. On a plain thread
 * they block the thread in poll(2).
 *
 * Close an fd that coroutines may wait on with leash_fd_close: it wakes
 * them with LEASH_ECLOSED. A plain close(2) cannot wake them (the kernel
 * drops the registration silently). An fd that another coroutine may
 * close belongs in a leash_conn ("connections" below): see
 * leash_fd_close for what a plain number can and cannot promise. */
struct sockaddr;
#define LEASH_POLLIN 0x001  /* same values as POLLIN / POLLOUT */
#define LEASH_POLLOUT 0x004
LEASH_API ssize_t leash_read(int fd, void *buf, size_t n, int64_t deadline);
/* Writes all n bytes unless an error or the deadline stops it; returns n,
 * or the bytes written so far if any, else the error. On a socket it
 * never raises SIGPIPE: a peer that went away is -EPIPE. */
LEASH_API ssize_t leash_write(int fd, const void *buf, size_t n, int64_t deadline);
LEASH_API int leash_accept(int fd, struct sockaddr *addr, unsigned *addrlen,
                           int64_t deadline); /* new fd, non-blocking, CLOEXEC */
LEASH_API int leash_connect(int fd, const struct sockaddr *addr, unsigned addrlen,
                            int64_t deadline);
/* Waits until fd is ready for `events` (LEASH_POLLIN/OUT): the ready ones,
 * LEASH_ETIMEDOUT or LEASH_ECLOSED. */
LEASH_API int leash_fd_wait(int fd, int events, int64_t deadline);
/* Closes fd and wakes its waiters with LEASH_ECLOSED. What it guarantees
 * about the number being reused: a call on fd that is inside leash
 * (leash_read/write/accept/connect/fd_wait) when leash_fd_close begins
 * never touches another file: it returns LEASH_ECLOSED (or completes on
 * the old file), and the close(2) itself is done by the last such call
 * out, so the number cannot be reused under it. A call made after the
 * close has finished uses whatever the number means then, possibly a new
 * socket: a plain fd carries no identity. An fd that one coroutine may
 * close while another may still start calls on it belongs in a
 * leash_conn (leash_conn_from_fd), whose close covers those too.
 * 0, -errno from close(2), or LEASH_ECLOSED if a close is pending. */
LEASH_API int leash_fd_close(int fd);

/* Runs fn(arg) on a helper thread while the calling coroutine parks, so
 * a blocking library call does not stall its worker; returns fn's result
 * (LEASH_ENOMEM if no helper could be had). On a plain thread, calls fn. */
LEASH_API intptr_t leash_blocking(intptr_t (*fn)(void *), void *arg);

/* ------------------------------------------------------------- connections */

/* Go's net.Conn and net.Listener in one object. A leash_conn owns its fd
 * and is a leash object (leash_retain / leash_release, handed by leash_go;
 * one never released is reported as leaked). Every call is safe from any
 * coroutine at any time, like Go's:
 *   - leash_conn_close wakes every waiter with LEASH_ECLOSED, and every
 *     later call gets LEASH_ECLOSED. The fd is closed (close(2)) only once
 *     no call is inside, so no call ever touches a reused number.
 *   - Deadlines (absolute leash_now() ns; -1: none) apply to every read
 *     (and accept) or write, current and future, and moving one wakes the
 *     calls waiting now, which then wait for the new one (Go's
 *     SetDeadline). Past it, calls return LEASH_ETIMEDOUT.
 *   - The last leash_release closes the connection if nobody did.
 *   - TCP connections (accepted or dialed) start with TCP_NODELAY set,
 *     as Go's do (setsockopt on leash_conn_fd to change it).
 * Errors are LEASH_E* or -errno (-ECONNRESET, -EPIPE, -ECONNREFUSED...);
 * NULL or a pointer that is not a live connection is LEASH_EINVAL. */
typedef struct leash_conn leash_conn;
struct iovec;

/* Listens on network "tcp", "tcp4", "tcp6" or "unix". A TCP address is
 * "host:port", "[v6host]:port" or ":port" (all interfaces), with a
 * numeric host or "localhost" (no name lookup); port 0 picks one
 * (leash_conn_local_port tells which). A unix address is a path, removed
 * again when the listener is closed. *out gets the listener; returns 0 or
 * an error (*out is then NULL). */
#define leash_listen(out, network, address) \
    leash_listen_at(__FILE__, __LINE__, (out), (network), (address))
LEASH_API int leash_listen_at(const char *file, int line, leash_conn **out,
                    const char *network, const char *address);
/* Connects to address on network (as leash_listen; ":port" and
 * "localhost" mean 127.0.0.1), giving up at deadline (-1: none). */
#define leash_dial(out, network, address, deadline) \
    leash_dial_at(__FILE__, __LINE__, (out), (network), (address), (deadline))
LEASH_API int leash_dial_at(const char *file, int line, leash_conn **out,
                  const char *network, const char *address, int64_t deadline);
/* Waits for the next connection on listener l (bounded by l's read
 * deadline; LEASH_ECLOSED once l is closed): 0 and *out, or an error.
 * The caller owns the new connection's reference. */
#define leash_conn_accept(l, out) leash_conn_accept_at(__FILE__, __LINE__, (l), (out))
LEASH_API int leash_conn_accept_at(const char *file, int line, leash_conn *l,
                         leash_conn **out);
/* Adopts an open fd (a socket, pipe, tty...): from now on the connection
 * closes it. LEASH_EINVAL for a negative fd. */
#define leash_conn_from_fd(out, fd) \
    leash_conn_from_fd_at(__FILE__, __LINE__, (out), (fd))
LEASH_API int leash_conn_from_fd_at(const char *file, int line, leash_conn **out,
                          int fd);

/* Reads at most n bytes, waiting for some: their count, 0 at end of
 * stream (or n == 0), or an error. */
LEASH_API ssize_t leash_conn_read(leash_conn *c, void *buf, size_t n);
/* Writes all n bytes (writev: every byte of iov[0..iovcnt), which is not
 * modified): n, or the count written before an error stopped it, or the
 * error if none was. A peer that went away is -EPIPE, never SIGPIPE. */
LEASH_API ssize_t leash_conn_write(leash_conn *c, const void *buf, size_t n);
LEASH_API ssize_t leash_conn_writev(leash_conn *c, const struct iovec *iov, int iovcnt);
/* The same, also ending when ctx is done, with ctx's error
 * (LEASH_ECANCELED, LEASH_ETIMEDOUT): a reader can wait for data or a
 * shutdown at once. NULL ctx: as without _ctx. */
LEASH_API ssize_t leash_conn_read_ctx(leash_conn *c, leash_ctx *ctx, void *buf, size_t n);
LEASH_API ssize_t leash_conn_write_ctx(leash_conn *c, leash_ctx *ctx, const void *buf,
                             size_t n);
/* Closes the connection (see above); LEASH_ECLOSED if it was already.
 * The caller's reference stays: leash_release it too. */
LEASH_API int leash_conn_close(leash_conn *c);
LEASH_API int leash_conn_set_deadline(leash_conn *c, int64_t deadline); /* both */
LEASH_API int leash_conn_set_read_deadline(leash_conn *c, int64_t deadline);
LEASH_API int leash_conn_set_write_deadline(leash_conn *c, int64_t deadline);
/* The local / peer address as text ("127.0.0.1:4000", "[::1]:80", a
 * unix path) into buf: its length, or an error (LEASH_EINVAL if buf is
 * too small). The port alone, for TCP. */
LEASH_API int leash_conn_local_addr(leash_conn *c, char *buf, size_t n);
LEASH_API int leash_conn_remote_addr(leash_conn *c, char *buf, size_t n);
LEASH_API int leash_conn_local_port(leash_conn *c);
/* The fd, for setsockopt and the like; LEASH_ECLOSED once closed. Do not
 * close it, and do not use it after leash_conn_close. */
LEASH_API int leash_conn_fd(leash_conn *c);

/* Select cases that are ready when a read (LEASH_READABLE_CASE) or a
 * write (LEASH_WRITABLE_CASE) on conn would not wait: data, end of
 * stream, an error, or the connection closed (then `ok` is 0). Like
 * poll(2), readiness is a hint: the read that follows may still wait. A
 * coroutine in such a select shows as "IO wait". */
#ifdef __cplusplus
#define LEASH_CONN_CASE_(conn, d) \
    (leash_case{(leash_chan *)(true ? (conn) : (leash_conn *)nullptr), (d), \
                nullptr, 0, 0})
#else
#define LEASH_CONN_CASE_(conn, d) \
    ((leash_case){.ch = (leash_chan *)(1 ? (conn) : (leash_conn *)0), \
                  .dir = (d), .elem = (void *)0, .size = 0, .ok = 0})
#endif
#define LEASH_READABLE_CASE(conn) LEASH_CONN_CASE_((conn), LEASH_READABLE)
#define LEASH_WRITABLE_CASE(conn) LEASH_CONN_CASE_((conn), LEASH_WRITABLE)

/* ------------------------------------------------------------- buffered I/O */

/* Go's bufio over a connection or a plain fd. A reader or writer belongs
 * to one coroutine at a time (like Go's); it does not own its source:
 * free it before the connection goes. Over a connection its calls are
 * bounded by the connection's deadlines; over an fd by the deadline set
 * with leash_reader_set_deadline / leash_writer_set_deadline (absolute,
 * -1: none; LEASH_EINVAL on a connection's reader or writer).
 * Constructors return NULL on bad arguments or out of memory. */
typedef struct leash_reader leash_reader;
typedef struct leash_writer leash_writer;

/* max_line is the buffer's size and the longest line read_line accepts,
 * delimiter included (0: 4096). */
LEASH_API leash_reader *leash_reader_new(leash_conn *c, size_t max_line);
LEASH_API leash_reader *leash_reader_new_fd(int fd, size_t max_line);
LEASH_API void leash_reader_free(leash_reader *r); /* NULL is ignored */
LEASH_API int leash_reader_set_deadline(leash_reader *r, int64_t deadline);
/* Reads also end when ctx is done, with its error (LEASH_ECANCELED,
 * LEASH_ETIMEDOUT), as leash_conn_read_ctx's do: a coroutine waits for
 * its next line or a shutdown at once. The unfinished line's bytes are
 * kept, as after a timeout, so a later call may go on. The reader
 * borrows ctx (keep your reference while it is set); NULL: none.
 * 0 or LEASH_EINVAL. */
LEASH_API int leash_reader_set_ctx(leash_reader *r, leash_ctx *ctx);
/* Reads up to and including the next `delim` (read_line: '\n'): sets
 * *line to the bytes, inside the reader's buffer and valid until its next
 * call, and returns their count. At end of stream the last bytes without
 * a delimiter are returned as a final line (Go returns them with io.EOF;
 * the missing delimiter tells), then 0. Errors, never a partial line:
 *   LEASH_E2BIG  the line is longer than max_line; the reader skips the
 *                rest of it, so the next call returns the next line;
 *   an I/O error (-ECONNRESET, LEASH_ETIMEDOUT, LEASH_ECLOSED...): the
 *                bytes of the unfinished line are dropped; a timeout or
 *                the reader's context (LEASH_ECANCELED) can be retried
 *                (they are kept then), other errors repeat. */
LEASH_API ssize_t leash_reader_read_until(leash_reader *r, int delim, const char **line);
LEASH_API ssize_t leash_reader_read_line(leash_reader *r, const char **line);
/* Reads up to n bytes, buffered ones first: their count, 0 at the end. */
LEASH_API ssize_t leash_reader_read(leash_reader *r, void *buf, size_t n);

/* A writer with a size-byte buffer (0: 4096): writes are gathered and
 * written when the buffer fills (a write larger than it goes straight
 * through) and by flush. After a write error every call returns it. */
LEASH_API leash_writer *leash_writer_new(leash_conn *c, size_t size);
LEASH_API leash_writer *leash_writer_new_fd(int fd, size_t size);
LEASH_API int leash_writer_set_deadline(leash_writer *w, int64_t deadline);
/* n, or an error (what was accepted before it stays buffered). */
LEASH_API ssize_t leash_writer_write(leash_writer *w, const void *buf, size_t n);
LEASH_API int leash_writer_flush(leash_writer *w); /* 0 or the write error */
/* Flushes, frees the writer and returns the flush's result (NULL: 0). */
LEASH_API int leash_writer_close(leash_writer *w);

/* ------------------------------------------------------------- diagnostics */

/* key=value labels on the current coroutine, inherited by the coroutines
 * it starts and shown in every dump format (pprof sample labels, the
 * `# labels:` line of Go's profile text). At most LEASH_MAX_LABELS (one
 * more key is LEASH_EINVAL; LEASH_ENOMEM means memory ran out); a NULL
 * value removes the key. Strings are copied (interned for good). */
#define LEASH_MAX_LABELS 8
LEASH_API int leash_label_set(const char *key, const char *value);
LEASH_API const char *leash_label_get(const char *key); /* NULL if unset */
/* A context carrying a label; leash_label_apply(ctx) copies a context's
 * labels (its own and its ancestors') to the current coroutine, like
 * Go's pprof.Do. */
#define leash_ctx_with_label(parent, key, value) \
    leash_ctx_with_label_at(__FILE__, __LINE__, (parent), (key), (value))
LEASH_API leash_ctx *leash_ctx_with_label_at(const char *file, int line,
                                             leash_ctx *parent, const char *key,
                                             const char *value);
LEASH_API int leash_label_apply(leash_ctx *ctx);

/* Dump formats (`debug`): 0, 1 and 2 are Go's, for its tools and people. */
enum {
    LEASH_DUMP_PPROF = 0,  /* gzipped pprof profile.proto (go tool pprof) */
    LEASH_DUMP_COUNTS = 1, /* Go's goroutine profile text, stacks counted */
    LEASH_DUMP_STACKS = 2, /* Go's runtime.Stack(all) text */
    LEASH_DUMP_LEASH = 3,  /* leash's text: exact waits, wait objects */
    LEASH_DUMP_JSON = 4    /* stable JSON (docs/FORMATS.md) */
};
/* Writes every live coroutine in the given format; returns how many. */
LEASH_API int leash_dump(FILE *out, int debug);
/* The same for the coroutines proven leaked only (Go's goroutineleak). */
LEASH_API int leash_leak_dump(FILE *out, int debug);

/* Profiles as Go's runtime/pprof writes them. The block profile (Go's
 * runtime.SetBlockProfileRate): waits on
 * channels, selects, mutexes, RWMutexes, conds, wait groups, groups,
 * joins and I/O are recorded with their delay and stack; a wait of
 * rate_ns or longer always, a shorter one with probability
 * delay/rate_ns (weighted as Go does). 1: every wait; <= 0: off (the
 * default; also LEASH_BLOCKPROFILERATE=ns). */
LEASH_API void leash_set_block_profile_rate(int rate_ns);
/* The mutex profile (Go's runtime.SetMutexProfileFraction): one in
 * `rate` contended hand-overs of a mutex or RWMutex is recorded, with
 * the time the waiter waited, on the stack of the coroutine that
 * unlocked. 0: off (the default; also LEASH_MUTEXPROFILEFRACTION=n);
 * < 0: only reads. Returns the previous rate. */
LEASH_API int leash_set_mutex_profile_fraction(int rate);
/* Writes the "block" or "mutex" profile: debug 0 gzipped pprof
 * (contentions/count, delay/nanoseconds), 1 Go's text. Returns how many
 * records, or LEASH_EINVAL (unknown name or debug) / LEASH_ENOMEM. */
LEASH_API int leash_profile_write(FILE *out, const char *name, int debug);
/* Samples the CPU for duration_ns (SIGPROF at 100 Hz on every worker
 * thread, stacks of the coroutine running, with its labels), then
 * writes a gzipped pprof profile (samples/count, cpu/nanoseconds) to
 * out. Parks the calling coroutine (or sleeps the calling thread)
 * meanwhile. One at a time: -EBUSY while another runs; -ENOTSUP under
 * ThreadSanitizer; LEASH_EINVAL for duration_ns <= 0 or > 1 hour. */
LEASH_API int leash_cpu_profile(FILE *out, int64_t duration_ns);
/* The execution trace (Go's runtime/trace), in Chrome's trace-event JSON
 * (Perfetto, about:tracing): scheduler events (spawn, run, park with its
 * reason and object, unpark with the waker, yield, exit, netpoll waits)
 * into a bounded ring per worker, events_per_worker each (0: 65536; at
 * most 2^24; rounded up to a power of two); a full ring overwrites its
 * oldest events and the trace reports how many (dropped_events). Off by
 * default, and then free. Start: 0, -EBUSY if a trace runs, LEASH_EINVAL,
 * LEASH_ENOMEM. Stop writes the trace to out (NULL: discards it); 0,
 * LEASH_EINVAL if no trace runs, or LEASH_ENOMEM. */
LEASH_API int leash_trace_start(size_t events_per_worker);
LEASH_API int leash_trace_stop(FILE *out);
/* Starts a trace, waits duration_ns (parks the calling coroutine, or
 * sleeps the calling thread), stops and writes it; as above, and
 * LEASH_EINVAL for duration_ns <= 0 or > 1 hour. */
LEASH_API int leash_trace(FILE *out, int64_t duration_ns);

/* Leak checks for tests, like goleak / leaktest. Taking a snapshot opens
 * a leak scope: coroutines the caller starts from then on (and theirs)
 * belong to it, so a check sees only what its own test started. */
typedef struct leash_snapshot leash_snapshot;
LEASH_API leash_snapshot *leash_snapshot_take(void);
/* Frees a snapshot and closes its scope. NULL is ignored. */
LEASH_API void leash_snapshot_free(leash_snapshot *s);

typedef struct {
    int64_t timeout_ns;                /* retry until then; 0: 2 s */
    FILE *out;                         /* report; NULL: stderr */
    const char *const *ignore_top;     /* NULL-terminated function names */
    const char *const *ignore_creator; /* NULL-terminated function names */
    int quiet;                         /* non-zero: no report */
} leash_leak_opts;

/* Counts the coroutines of baseline's scope that are still alive (NULL
 * baseline: every coroutine but the caller), retrying with backoff until
 * they are gone or opts->timeout_ns passes; returns at once when every
 * one left is provably stuck. Writes a report with each one's stack,
 * wait object and spawn site. Returns the count (0: clean) or LEASH_E*.
 * opts may be NULL (defaults). */
LEASH_API int leash_leak_verify(const leash_snapshot *baseline,
                                const leash_leak_opts *opts);

/* ---- debug endpoint, agent (issue 6) ---- */

/* Starts the HTTP debug endpoint, served by the runtime's coroutines:
 * /debug/pprof/ (index), /debug/pprof/goroutine?debug=0|1|2,
 * /debug/pprof/goroutineleak?debug=0|1|2, /debug/leash?format=text|json,
 * /debug/leash/ (live page), /metrics (Prometheus). addr is "host:port", ":port" or "port" (host
 * 127.0.0.1), "[::1]:port", or NULL / "" for 127.0.0.1 with a free port;
 * port 0 picks one. Returns the bound port, LEASH_EINVAL for a malformed
 * address, -EACCES for a non-loopback one unless LEASH_DEBUG_ALLOW_REMOTE=1,
 * or another -errno (bind). Also started at runtime start by
 * LEASH_DEBUG_ADDR=addr. Requests: see docs/CLI.md. */
LEASH_API int leash_debug_listen(const char *addr);
/* Stops every debug endpoint (leash_debug_listen, LEASH_DEBUG_ADDR): no
 * new connection once it returns (their ports are closed); requests
 * being answered finish. Returns how many were stopped (0: none). */
LEASH_API int leash_debug_stop(void);

/* Embedding (issue 16): the same routes in an application's own HTTP
 * server on leash (docs/CLI.md, "Embedding"). write gets the answer's
 * bytes in order; it writes all n of them and returns 0, or a negative
 * error that stops the answer. */
typedef int (*leash_debug_write_fn)(void *arg, const void *buf, size_t n);
/* flags: serve /metrics only; every other path is 404. */
#define LEASH_DEBUG_METRICS_ONLY 1u
/* Answers one request, given its method and request-target as they came
 * ("GET", "/debug/pprof/goroutine?debug=1"), by writing a complete
 * HTTP/1.1 response through write: status line, Content-Type,
 * Content-Length, then the body (none for HEAD). No Connection header:
 * the caller decides whether its connection stays open. Returns the HTTP
 * status written (200; 400 a malformed method or target, 404 an unknown
 * path, 405 a method other than GET or HEAD, 414 a target of 2 KiB or
 * more, 500), write's error if it failed, or LEASH_EINVAL (NULL
 * arguments, unknown flags: nothing written). No access check: mount the
 * routes behind your own, or pass LEASH_DEBUG_METRICS_ONLY. */
LEASH_API int leash_debug_handle(const char *method, const char *target,
                                 unsigned flags, leash_debug_write_fn write,
                                 void *arg);
/* Reads one request head from c (within LEASH_DEBUG_HEADER_TIMEOUT_MS)
 * and answers it as the standalone endpoint would, with "Connection:
 * close"; c's deadlines are cleared afterwards and c stays open (close
 * and release it). A peer that is not loopback gets /metrics only (403
 * for the rest) unless LEASH_DEBUG_ALLOW_REMOTE=1. Returns the status
 * answered, a negative error (the client went away), or LEASH_EINVAL. */
LEASH_API int leash_debug_serve_conn(leash_conn *c, unsigned flags);
/* Writes the /metrics text (Prometheus text format 0.0.4: leash_* and
 * the standard process_* series) to out: 0 or LEASH_E*. */
LEASH_API int leash_metrics_write(FILE *out);
/* Starts a listener that serves /metrics only (everything else is 404),
 * for Prometheus on other hosts: it may bind a non-loopback address
 * ("0.0.0.0:9464") without LEASH_DEBUG_ALLOW_REMOTE, and does not check
 * Host. addr as for leash_debug_listen; returns the bound port or an
 * error. Also started at runtime start by LEASH_METRICS_ADDR=addr;
 * leash_debug_stop stops it too. */
LEASH_API int leash_metrics_listen(const char *addr);

/* Starts the agent the `leash` CLI talks to: a Unix socket
 * $XDG_RUNTIME_DIR/leash/<pid>.sock (else /tmp/leash-<uid>/<pid>.sock),
 * directory 0700, socket 0600, clients of another uid (but root) refused,
 * removed at exit. 0 (also if already running) or -errno. Also started
 * at runtime start by LEASH_AGENT=1. */
LEASH_API int leash_agent_start(void);
/* Stops the agent and removes its socket (no-op if not running). */
LEASH_API void leash_agent_stop(void);
/* The agent's socket path into buf: its length, or LEASH_EINVAL if the
 * agent is not running or buf is too small. */
LEASH_API int leash_agent_path(char *buf, size_t n);

/* ---- end debug endpoint, agent (issue 6) ---- */

#ifdef __cplusplus
}
#endif
#endif /* LEASH_H */
