/* SPDX-License-Identifier: MIT */
/*
 * sampler.c — the stacks of running coroutines, by a signal to their
 * worker (snapshot.h).
 *
 * A coroutine running on another worker cannot be walked from outside:
 * its registers are live. Its worker is sent SIGURG (ignored by default,
 * as Go uses it for preemption), whose handler walks the frame-pointer
 * chain from the interrupted context and only reads memory. The handler
 * answers every request it finds, hit or miss, so nobody waits for a
 * coroutine that parked before the signal came.
 */
#define _GNU_SOURCE 1
#include "snapshot.h"

#include <errno.h>
#include <signal.h>
#include <ucontext.h>

/* A request to sample the coroutine running on one worker, on the
 * requester's stack. The worker's signal handler claims it (takes it out
 * of the mailbox) and always answers: the frames if the target runs
 * there, else SAMPLE_MISSED -- it parked or moved before the signal came,
 * and the requester looks again rather than waiting for an answer that
 * never comes. A request nobody claimed in time is withdrawn. */
enum { SAMPLE_PENDING, SAMPLE_HIT, SAMPLE_MISSED, SAMPLE_TIMEOUT };
#define SAMPLE_TIMEOUT_NS 100000000 /* signals blocked, thread stuck */
#define SAMPLE_TRIES 12 /* looks at a coroutine that keeps switching */
#define SAMPLE_MIN_TRIES 4 /* ... however long they take (a loaded machine) */
#define SAMPLE_BUDGET_NS 2000000 /* no new round of looks after this */
#define SWITCH_WAIT_NS 20000 /* for it to park by itself before a signal */

typedef struct {
    coroutine *target;
    uintptr_t pcs[SNAP_MAX_FRAMES];
    int n;
    int slot;                /* where in its mailbox it was posted */
    _Atomic uint32_t result; /* SAMPLE_*; a futex word */
} sample_req;

/* One mailbox per worker (by index, modulo NMAILBOX), MB_SLOTS slots of
 * one request each and no lock: a requester posts by CAS (an empty slot
 * -> its request) and then signals; the handler claims every slot by
 * exchange (-> empty) and answers each; a requester whose request nobody
 * claimed in time withdraws it by CAS (its request -> empty), and if that
 * fails the handler has it and the answer is coming. A request is posted
 * before its signal is sent, so a signal delivered after the post finds
 * it (or finds it claimed by an earlier signal): none waits for a signal
 * that merged with another. Dumps on several threads therefore sample in
 * parallel (up to MB_SLOTS per worker with one signal; more take turns,
 * each lasting one signal delivery), and one dump samples every worker at
 * once (sampler_sample_all). */
#define NMAILBOX 64
#define MB_SLOTS 4
static struct mailbox {
    _Alignas(64) sample_req *_Atomic req[MB_SLOTS];
} MB[NMAILBOX];
static pthread_once_t sampler_once = PTHREAD_ONCE_INIT;

/* Answers r from the interrupted context of worker w. */
static void sample_answer_req(worker *w, sample_req *r, uintptr_t pc,
                              uintptr_t fp, uintptr_t sp) {
    coroutine *g = r->target;
    /* Its own stack in use, not the scheduler's on the way to or from a
     * switch (w->cur changes a little after the stack does). */
    int res = SAMPLE_MISSED;
    if (__atomic_load_n(&w->cur, __ATOMIC_RELAXED) == g &&
        sp >= (uintptr_t)g->stack->lo && sp < (uintptr_t)g) {
        r->n = walk_frames(pc, fp, (uintptr_t)g->stack->lo, (uintptr_t)g,
                           r->pcs, SNAP_MAX_FRAMES);
        res = SAMPLE_HIT;
    }
    atomic_store_explicit(&r->result, (uint32_t)res, memory_order_release);
    /* The requester sleeps rather than spins (on a loaded machine its
     * spinning would keep this very thread off the CPU). Waking an address
     * the requester has since left wakes nobody, or someone who checks. */
    futex_wake(&r->result, 1);
}

static void sample_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    worker *w = sched_worker();
    if (!w)
        return;
    uintptr_t pc, fp, sp;
    uc_regs(ucv, &pc, &fp, &sp);
    int e = errno;
    struct mailbox *mb = &MB[w->idx % NMAILBOX];
    for (int i = 0; i < MB_SLOTS; i++) {
        /* Claimed by the exchange: from here the requester waits for the
         * answer, so r stays valid until `result` is stored. A late
         * signal finds the slot empty. */
        sample_req *r = atomic_exchange(&mb->req[i], NULL);
        if (r)
            sample_answer_req(w, r, pc, fp, sp);
    }
    errno = e;
}

static void sampler_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sample_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, NULL);
}

static int sample_result(sample_req *r) {
    return (int)atomic_load_explicit(&r->result, memory_order_acquire);
}

/* Posts r to w's mailbox and signals w: false if the mailbox stayed
 * taken (another sampler's turn) until `until`, or the signal could not
 * be sent (r->result is then SAMPLE_TIMEOUT). */
static bool sample_post(worker *w, sample_req *r, int64_t until) {
    pthread_once(&sampler_once, sampler_init);
    struct mailbox *mb = &MB[w->idx % NMAILBOX];
    atomic_store(&r->result, SAMPLE_PENDING);
    for (;;) {
        bool ok = false;
        for (int i = 0; i < MB_SLOTS && !ok; i++) {
            sample_req *empty = NULL;
            ok = atomic_compare_exchange_strong(&mb->req[i], &empty, r);
            r->slot = i;
        }
        if (ok)
            break;
        if (leash_now() >= until) {
            atomic_store(&r->result, SAMPLE_TIMEOUT);
            return false;
        }
        sched_yield();
    }
    if (pthread_kill(w->thread, SIGURG) != 0) {
        sample_req *mine = r;
        if (!atomic_compare_exchange_strong(&mb->req[r->slot], &mine, NULL))
            while (sample_result(r) == SAMPLE_PENDING) /* claimed anyway */
                sched_yield();
        else
            atomic_store(&r->result, SAMPLE_TIMEOUT);
        return false;
    }
    return true;
}

/* The answer to a posted r: waits for it (asleep: the CPU goes to the
 * worker that is to answer) until `until`, then withdraws r
 * (SAMPLE_TIMEOUT) unless the handler claimed it meanwhile. */
static int sample_answer(worker *w, sample_req *r, int64_t until) {
    while (sample_result(r) == SAMPLE_PENDING && leash_now() < until)
        futex_wait(&r->result, SAMPLE_PENDING, until);
    if (sample_result(r) == SAMPLE_PENDING) {
        sample_req *mine = r;
        if (atomic_compare_exchange_strong(
                &MB[w->idx % NMAILBOX].req[r->slot], &mine, NULL))
            return SAMPLE_TIMEOUT; /* withdrawn: nobody will write r */
        while (sample_result(r) == SAMPLE_PENDING) /* claimed: answering */
            sched_yield();
    }
    return sample_result(r);
}

/* One signal round trip to w: SAMPLE_HIT (frames in r), _MISSED or
 * _TIMEOUT. */
static int sample_once(worker *w, sample_req *r) {
    int64_t until = leash_now() + SAMPLE_TIMEOUT_NS;
    if (!sample_post(w, r, until))
        return sample_result(r);
    return sample_answer(w, r, until);
}

int sampler_sample(worker *w, coroutine *g, uintptr_t *pcs, int max) {
    sample_req r = {.target = g};
    if (sample_once(w, &r) != SAMPLE_HIT)
        return 0;
    int n = r.n < max ? r.n : max;
    memcpy(pcs, r.pcs, sizeof *pcs * (size_t)n);
    return n;
}

/* The coroutines found running, sampled together: each round signals
 * every worker that still runs one at once and waits for all the answers,
 * so a dump waits for the slowest worker, not for the sum of them (on a
 * loaded machine a signal waits for its thread to get a CPU back). Before
 * every other round each is given a moment (SWITCH_WAIT_NS, shared) to
 * park by itself: one that parks at once (a channel hand-off) is then
 * walked parked, with no signal. A miss (it switched before the signal
 * came) is looked up again (recapture) and tried in the next round; no
 * new round starts after SAMPLE_BUDGET_NS once SAMPLE_MIN_TRIES rounds
 * were made (on a loaded machine one round alone may outlast the budget,
 * and a dump that shows no running stack helps nobody), and one still
 * unsampled then keeps no frames (running, stack unavailable), as a dump
 * of a busy program must not wait on its busiest coroutines. Reads only
 * workers, which outlive every g. */
void sampler_sample_all(sample_target *t, int n,
                        worker *(*recapture)(void *arg, int i),
                        void (*hit)(void *arg, int i, const uintptr_t *pcs,
                                    int npcs),
                        void *arg) {
    if (n <= 0)
        return;
    sample_req *req = lcalloc((size_t)n, sizeof *req);
    bool *posted = lcalloc((size_t)n, sizeof *posted);
    if (!req || !posted) {
        lfree(req);
        lfree(posted);
        return; /* out of memory: the running keep no frames */
    }
    int64_t budget = leash_now() + SAMPLE_BUDGET_NS;
    for (int tries = 0; tries < SAMPLE_TRIES; tries++) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += t[i].w != NULL;
        if (!left || (tries >= SAMPLE_MIN_TRIES && leash_now() >= budget))
            break;
        if (tries % 2 == 0) {
            /* Those that switch within the moment are walked parked. */
            int64_t until = leash_now() + SWITCH_WAIT_NS;
            bool all = false;
            while (!all && leash_now() < until) {
                all = true;
                for (int i = 0; i < n; i++) {
                    sample_target *rg = &t[i];
                    if (rg->w && __atomic_load_n(&rg->w->cur,
                                                 __ATOMIC_RELAXED) == rg->g)
                        all = false;
                }
                for (int k = 0; k < 64; k++)
                    cpu_relax();
            }
            left = 0;
            for (int i = 0; i < n; i++) {
                sample_target *rg = &t[i];
                if (rg->w && __atomic_load_n(&rg->w->cur,
                                             __ATOMIC_RELAXED) != rg->g)
                    rg->w = recapture(arg, i);
                left += rg->w != NULL;
            }
            if (!left)
                break;
        }
        int64_t until = leash_now() + SAMPLE_TIMEOUT_NS;
        for (int i = 0; i < n; i++) {
            sample_target *rg = &t[i];
            posted[i] = false;
            if (!rg->w)
                continue;
            req[i].target = rg->g;
            /* Two of ours for one mailbox (a stale worker): the second
             * waits for the next round. */
            bool dup = false;
            for (int k = 0; k < i; k++)
                dup |= posted[k] &&
                       t[k].w->idx % NMAILBOX == rg->w->idx % NMAILBOX;
            if (dup)
                continue;
            posted[i] = sample_post(rg->w, &req[i], until);
            if (!posted[i] && sample_result(&req[i]) == SAMPLE_TIMEOUT)
                rg->w = NULL; /* cannot be signalled: no frames */
        }
        for (int i = 0; i < n; i++) {
            sample_target *rg = &t[i];
            if (!posted[i])
                continue;
            int res = sample_answer(rg->w, &req[i], until);
            if (res == SAMPLE_HIT) {
                hit(arg, i, req[i].pcs, req[i].n);
                rg->w = NULL;
            } else if (res == SAMPLE_TIMEOUT) {
                rg->w = NULL;
            } else {
                rg->w = recapture(arg, i);
            }
        }
    }
    lfree(req);
    lfree(posted);
}
