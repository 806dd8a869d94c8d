/* SPDX-License-Identifier: MIT */
/*
 * stack.c — coroutine stacks: mmap'd in chunks, committed lazily, pooled.
 *
 * Layout of one stack slot of `stack_size` bytes (addresses grow up):
 *
 *     base                lo                               hi
 *     | guard page (opt.) | usable stack ... | coroutine | canary |
 *
 * The coroutine lives at the top of its own stack, so a parked coroutine
 * with a shallow stack occupies one page. Slots are carved from chunks of
 * CHUNK_SLOTS slots (one mapping each) preceded by one canary page.
 *
 * Overflow detection. A PROT_NONE guard page per stack is exact but each
 * one splits a mapping, and vm.max_map_count (65530 by default) would cap
 * the process at ~32k coroutines. So stacks get guard pages while fewer
 * than max_map_count/4 are guarded, and beyond that a canary: the top word
 * of every slot holds STACK_CANARY, and an overflow of the slot above runs
 * into it first. The scheduler checks the canary below a coroutine's stack
 * each time the coroutine switches out, so an overflow is reported with
 * the coroutine's id, name and spawn site before the corruption spreads
 * (like a stack protector, a frame that skips the word entirely is not
 * caught; guard pages catch those).
 *
 * Chunks are mapped without transparent huge pages (new_chunk says why).
 *
 * Valgrind. Each slot is registered with valgrind (VALGRIND_STACK_REGISTER)
 * once, when it is carved, and stays registered while pooled: memcheck
 * then sees a context switch as a change of stack rather than a 60 KiB
 * jump of the stack pointer ("client switching stacks?") that would mark
 * the other coroutine's frames undefined. The slots are deregistered when
 * the chunks are unmapped. The calls come from valgrind's header-only
 * <valgrind/valgrind.h> when it is present at build time: a few no-op
 * instructions outside valgrind, no runtime dependency.
 *
 * Pooling. A freed stack goes to its worker's cache (hot, no locking),
 * then to a global pool. Workers about to sleep return the pages below
 * the top page of pooled stacks beyond POOL_WARM to the kernel
 * (MADV_DONTNEED, stack_trim), so a burst of deep stacks does not pin
 * memory forever, while spawn and exit never make a system call.
 *
 * Prefault. The cost of a fresh coroutine is the first touch of its top
 * page: a page fault whose kernel time is mostly zeroing the page
 * (clear_page; 1.5-9 us per page in a VM, where the host backs the page
 * too), most of parked_spawn's time for 1M fresh coroutines. It cannot be made
 * smaller (one page per coroutine: guard, canary, descriptor, g and first
 * frames are all on the top page, nothing else is touched), so it is made
 * parallel: a slot is reserved under P.lock but touched (init_slot)
 * outside it, so spawning workers fault in parallel, and when a spawn
 * finds the pool dry after PREFAULT_AFTER slots have been carved (a
 * burst; a program whose stacks are recycled never gets here), a helper
 * thread, started then and exiting after PREFAULT_IDLE_NS idle, carves
 * slots from chunks of its own and touches them into the pool until it
 * holds PREFAULT_AHEAD (1 MiB of top pages at 4 KiB; bounded, the memory
 * of 256 coroutines the burst was about to create anyway). The spawner
 * takes those, and carves for itself when the helper falls behind: a
 * burst then faults on two CPUs. While the helper lives (a burst: it
 * exits after PREFAULT_IDLE_NS idle), a spawn that leaves the pool below
 * PREFAULT_LOW wakes it again, so that it refills while the spawner eats
 * what is left, instead of sleeping until the pool is dry (which left
 * one CPU idle for a quarter of a 1M burst). Prefaulted stacks are ordinary pooled
 * stacks (trimmed, reused, unmapped like the rest). The helper takes no
 * injected allocation failures, blocks all signals, is counted by the
 * deadlock detector (stack_threads), and is forgotten by a forked child.
 * Since two threads initialise neighbouring slots in any order, each slot
 * writes the canary below it itself (init_slot).
 */
#define _GNU_SOURCE 1 /* REG_RSP */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <ucontext.h>
#include <stdio.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#if defined(LEASH_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#if !defined(LEASH_NO_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define LEASH_VALGRIND 1
#endif
#endif
#ifndef LEASH_VALGRIND
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#define CHUNK_SLOTS 64
#define CACHE_MAX 64
#define POOL_WARM 1024
#define STACK_MIN (16u << 10)
#define STACK_DEFAULT (64u << 10)
#define PREFAULT_AFTER 256  /* slots carved before the helper is asked */
#define PREFAULT_AHEAD 256  /* pooled slots it fills up to: 1 MiB of pages */
#define PREFAULT_LOW 128    /* a live helper is woken below this */
#define PREFAULT_IDLE_NS 1000000000LL /* idle time before it exits */

/* Where fresh slots are carved: the next unused slot of a chunk. The
 * prefault helper carves from chunks of its own, so that it and the
 * spawners fault pages in parallel without touching each other's. */
typedef struct carver {
    char *next;
    int left;
} carver;
enum { CV_SPAWN, CV_HELPER };

typedef struct chunk {
    char *base; /* canary page, then CHUNK_SLOTS slots */
    struct chunk *next;
} chunk;

static struct {
    llock lock;
    size_t size;      /* slot size, guard included */
    size_t page;
    long guard_limit; /* stacks that may get a guard page */
    long guarded;
    chunk *chunks;
    lstack *pool;     /* free stacks, recently used */
    _Atomic long npool; /* read without the lock by stack_trim */
    lstack *cold;     /* free stacks whose deep pages were returned */
    carver cv[2];     /* CV_SPAWN: spawning workers', CV_HELPER: prefault */
    long ncarved;     /* slots carved since the start (or release_all) */
    long prefaulted;  /* of those, by the prefault helper */
    int inflight;     /* slots the helper is touching outside the lock */
    bool fill;        /* the helper is asked to fill the pool */
    _Atomic int helper;    /* the helper thread is alive (0 or 1) */
    _Atomic uint32_t hseq; /* the helper's futex word */
    _Atomic int configured;
} P = {.lock = LLOCK_INIT(LR_STACK)};

long stack_max_map_count(void) {
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 65530;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

void stack_config(void) {
    if (atomic_load(&P.configured))
        return;
    llock_acquire(&P.lock);
    if (!atomic_load(&P.configured)) {
        P.page = (size_t)sysconf(_SC_PAGESIZE);
        size_t sz = env_u64("LEASH_STACK_SIZE", STACK_DEFAULT, STACK_MIN,
                            (size_t)1 << 30);
        P.size = (sz + P.page - 1) & ~(P.page - 1);
        P.guard_limit = stack_max_map_count() / 4;
        atomic_store(&P.configured, 1);
    }
    llock_release(&P.lock);
}

size_t stack_size(void) {
    stack_config();
    return P.size;
}

/* The lstack descriptor sits just below the canary at the top of the slot;
 * the g is placed below it by the caller (coro.c). */
static lstack *slot_desc(char *base) {
    char *hi = base + P.size;
    return (lstack *)(hi - 64 - sizeof(lstack));
}

/* Memory the kernel can still hand out, in bytes: MemAvailable (page
 * cache it can drop included), read only when free RAM looks short. */
static uint64_t mem_available(void) {
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return UINT64_MAX;
    uint64_t fast = ((uint64_t)si.freeram + si.freeswap) * si.mem_unit;
    if (fast >= (1ull << 30))
        return fast;
    FILE *f = fopen("/proc/meminfo", "r");
    uint64_t kb = 0;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb ? kb * 1024 + (uint64_t)si.freeswap * si.mem_unit : fast;
}

/* Stacks are mapped MAP_NORESERVE, so the kernel never refuses a new
 * chunk: past the RAM there is, the first touch of a stack would wake the
 * OOM killer instead. So a chunk is refused (spawn: LEASH_ENOMEM) while
 * less than 64 MiB would be left after its slots' top pages. */
static bool memory_left_for_chunk(void) {
    return mem_available() >= (64u << 20) + (uint64_t)CHUNK_SLOTS * P.page;
}

/* injectable: false for the prefault helper, which must not take the
 * failures test_alloc_fail injects into the spawner's allocations. */
static bool new_chunk(carver *cv, bool injectable) {
    if ((injectable && lalloc_should_fail()) || !memory_left_for_chunk())
        return false;
    chunk *c = injectable ? lmalloc(sizeof *c) : malloc(sizeof *c);
    if (!c)
        return false;
    size_t len = P.page + (size_t)CHUNK_SLOTS * P.size;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        lfree(c);
        return false;
    }
    /* With transparent huge pages on ("always", Debian's default), the
     * first touch of a slot's top page would fault in a 2 MiB page: 32
     * slots' worth of memory zeroed for one parked coroutine, and past
     * the RAM that takes, the kernel compacts memory on every fault (1M
     * sleepers took minutes). Stacks are touched sparsely: small pages. */
    madvise(m, len, MADV_NOHUGEPAGE);
    /* The canary page guards the lowest slot's lower neighbour check. */
    *(uint64_t *)(m + P.page - 8) = STACK_CANARY;
    c->base = m;
    c->next = P.chunks;
    P.chunks = c;
    cv->next = m + P.page;
    cv->left = CHUNK_SLOTS;
    return true;
}

/* Takes the next unused slot of the newest chunk (mapping a chunk when
 * the last is used up) and decides whether it gets a guard page; under
 * P.lock. The slot is not touched here: init_slot does that outside the
 * lock, so that two threads fault their slots' pages in parallel. */
static char *reserve_slot(carver *cv, bool *guard, bool injectable) {
    if (cv->left == 0 && !new_chunk(cv, injectable))
        return NULL;
    char *base = cv->next;
    cv->next += P.size;
    cv->left--;
    P.ncarved++;
    *guard = P.guarded < P.guard_limit;
    if (*guard)
        P.guarded++;
    return base;
}

/* The first touch of a reserved slot: writes its canary and descriptor
 * (faulting in its top page) and protects its guard page. No lock. It
 * also writes the canary below the slot (the top word of the slot under
 * it, or of the chunk's canary page), which stack_canary_ok checks: that
 * slot was reserved earlier but, by another worker, maybe not yet
 * initialised. Usually the page is there already; the same value either
 * way, hence relaxed atomic stores. */
static lstack *init_slot(char *base, bool guard) {
    char *hi = base + P.size;
    __atomic_store_n((uint64_t *)(base - 8), STACK_CANARY, __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)(hi - 8), STACK_CANARY, __ATOMIC_RELAXED);
    lstack *s = slot_desc(base);
    s->hi = hi;
    s->size = P.size;
    s->guarded = false;
    s->lo = base;
    if (guard) {
        if (mprotect(base, P.page, PROT_NONE) == 0) {
            s->guarded = true;
            s->lo = base + P.page;
        } else {
            llock_acquire(&P.lock);
            P.guarded--;
            llock_release(&P.lock);
        }
    }
    /* Once per slot: pooled stacks stay registered (see the top). */
    s->vg_id = (unsigned)VALGRIND_STACK_REGISTER(s->lo, hi);
    s->next = NULL;
    return s;
}

/* ------------------------------------------------------------ prefault */

/* The helper (see "Prefault" at the top): fills the pool with fresh slots
 * up to PREFAULT_AHEAD while P.fill is set, then sleeps on P.hseq; after
 * PREFAULT_IDLE_NS without work it exits. */
/* Touches fresh slots of cv into the pool while a fill is asked and the
 * pool (with the slots being touched) is short of PREFAULT_AHEAD; P.lock
 * held, dropped around each touch. */
static void pool_fill(carver *cv) {
    while (P.fill && P.npool + P.inflight < PREFAULT_AHEAD) {
        bool guard;
        char *base = reserve_slot(cv, &guard, false);
        if (!base)
            break;
        P.inflight++;
        llock_release(&P.lock);
        lstack *s = init_slot(base, guard);
        llock_acquire(&P.lock);
        s->next = P.pool;
        P.pool = s;
        P.npool++;
        P.inflight--;
        P.prefaulted++;
    }
}

static void *prefault_main(void *arg) {
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the workers' */
    llock_acquire(&P.lock);
    for (;;) {
        pool_fill(&P.cv[CV_HELPER]);
        P.fill = false;
        uint32_t seq = atomic_load(&P.hseq);
        llock_release(&P.lock);
        int rc = futex_wait(&P.hseq, seq,
                            time_add(leash_now(), PREFAULT_IDLE_NS));
        llock_acquire(&P.lock);
        if (rc == -ETIMEDOUT && !P.fill) {
            atomic_store(&P.helper, 0);
            llock_release(&P.lock);
            return NULL;
        }
    }
}

/* The spawner found the pool dry and carved a slot itself: ask the
 * helper (started on first use) to fill the pool ahead of it. Under
 * P.lock; returns what to do after releasing it. */
enum { PF_NONE, PF_WAKE, PF_START };

/* The spawner took a pooled slot: a helper still alive (a burst goes on)
 * and asleep is woken once the pool runs low, unless trimmed stacks are
 * left to take first. Under P.lock. */
static int prefault_low(void) {
    if (P.fill || P.npool >= PREFAULT_LOW || P.cold ||
        !atomic_load(&P.helper))
        return PF_NONE;
    P.fill = true;
    return PF_WAKE;
}
static int prefault_ask(void) {
    if (P.fill || P.ncarved <= PREFAULT_AFTER || in_forked_child())
        return PF_NONE;
    P.fill = true;
    if (atomic_load(&P.helper))
        return PF_WAKE;
    atomic_store(&P.helper, 1);
    return PF_START;
}

static void prefault_kick(int what) {
    if (what == PF_WAKE) {
        atomic_fetch_add(&P.hseq, 1);
        futex_wake(&P.hseq, 1);
    } else if (what == PF_START) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64u << 10);
        bool ok = pthread_create(&t, &attr, prefault_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) { /* the spawner carves for itself, as without a helper */
            llock_acquire(&P.lock);
            atomic_store(&P.helper, 0);
            P.fill = false;
            llock_release(&P.lock);
        }
    }
}

int stack_threads(void) { return atomic_load(&P.helper); }

void stack_prefault_stats(long *pooled, long *prefaulted) {
    llock_acquire(&P.lock);
    *pooled = P.npool;
    *prefaulted = P.prefaulted;
    llock_release(&P.lock);
}

/* fork: the child has no helper; P.lock is held across the fork so that
 * the pool is consistent in the child, and slots the helper was touching
 * are forgotten (never pooled: a few pages of the child's copy). */
void stack_fork_prepare(void) { llock_acquire(&P.lock); }
void stack_fork_parent(void) { llock_release(&P.lock); }
void stack_fork_child(void) {
    atomic_store(&P.helper, 0);
    P.fill = false;
    P.inflight = 0;
    llock_release(&P.lock);
}

lstack *stack_get(worker *w) {
    lstack *s;
    if (w && w->stack_cache) {
        if (unlikely(lalloc_should_fail()))
            return NULL;
        s = w->stack_cache;
        w->stack_cache = s->next;
        w->nstack_cache--;
        return s;
    }
    stack_config();
    llock_acquire(&P.lock);
    if (P.pool || P.cold) {
        int kick = PF_NONE;
        if (P.pool) {
            s = P.pool;
            P.pool = s->next;
            P.npool--;
            kick = prefault_low();
        } else {
            s = P.cold;
            P.cold = s->next;
        }
        llock_release(&P.lock);
        prefault_kick(kick);
        if (unlikely(lalloc_should_fail())) {
            stack_put(NULL, s);
            return NULL;
        }
        return s;
    }
    bool guard;
    char *base = reserve_slot(&P.cv[CV_SPAWN], &guard, true);
    int kick = base ? prefault_ask() : PF_NONE;
    llock_release(&P.lock);
    prefault_kick(kick);
    return base ? init_slot(base, guard) : NULL;
}

static void pool_push(lstack *s) {
    llock_acquire(&P.lock);
    s->next = P.pool;
    P.pool = s;
    P.npool++;
    llock_release(&P.lock);
}

/* Returns the deep pages of pooled stacks beyond POOL_WARM to the kernel
 * and moves those stacks to the cold list, at most `budget` per call.
 * Called by workers about to sleep, never on the spawn/exit path. */
void stack_trim(int budget) {
    if (P.npool <= POOL_WARM)
        return;
    lstack *batch[64];
    int n = 0;
    if (budget > 64)
        budget = 64;
    llock_acquire(&P.lock);
    while (n < budget && P.npool > POOL_WARM) {
        batch[n++] = P.pool;
        P.pool = P.pool->next;
        P.npool--;
    }
    llock_release(&P.lock);
    for (int i = 0; i < n; i++) {
        lstack *s = batch[i];
        /* Keep the top page: it holds the descriptor and the canary. */
        char *top = (char *)(((uintptr_t)s->hi - 1) & ~(uintptr_t)(P.page - 1));
        if (top > s->lo)
            madvise(s->lo, (size_t)(top - s->lo), MADV_DONTNEED);
    }
    llock_acquire(&P.lock);
    for (int i = 0; i < n; i++) {
        batch[i]->next = P.cold;
        P.cold = batch[i];
    }
    llock_release(&P.lock);
}

void stack_put(worker *w, lstack *s) {
#if defined(LEASH_ASAN)
    /* Frames that never returned left their redzones poisoned. */
    __asan_unpoison_memory_region(s->lo, (size_t)(s->hi - s->lo));
#endif
    if (w && w->nstack_cache < CACHE_MAX) {
        s->next = w->stack_cache;
        w->stack_cache = s;
        w->nstack_cache++;
        return;
    }
    pool_push(s);
}

void stack_drain_cache(worker *w) {
    while (w->stack_cache) {
        lstack *s = w->stack_cache;
        w->stack_cache = s->next;
        w->nstack_cache--;
        pool_push(s);
    }
}

bool stack_canary_ok(const lstack *s) {
    if (s->guarded)
        return true;
    /* The top word of the slot (or canary page) just below this stack. */
    return __atomic_load_n((const uint64_t *)(s->lo - 8), __ATOMIC_RELAXED) ==
               STACK_CANARY &&
           __atomic_load_n((const uint64_t *)(s->hi - 8), __ATOMIC_RELAXED) ==
               STACK_CANARY;
}

/* Unmaps everything; only when no coroutine is left (leash_shutdown). */
void stack_release_all(void) {
    llock_acquire(&P.lock);
    P.fill = false; /* the helper stops; wait for the slot it touches */
    while (P.inflight) {
        llock_release(&P.lock);
        sched_yield();
        llock_acquire(&P.lock);
    }
    size_t len = P.page + (size_t)CHUNK_SLOTS * P.size;
    while (P.chunks) {
        chunk *c = P.chunks;
        P.chunks = c->next;
        /* Only a carver's current chunk may have slots never carved. */
        char *slots = c->base + P.page;
        int carved = CHUNK_SLOTS;
        for (int k = 0; k < 2; k++)
            if (P.cv[k].next >= slots && P.cv[k].next <= slots + len - P.page)
                carved = (int)((size_t)(P.cv[k].next - slots) / P.size);
        for (int i = 0; i < carved; i++) {
            lstack *s = slot_desc(slots + (size_t)i * P.size);
            VALGRIND_STACK_DEREGISTER(s->vg_id); /* ids start at 0 */
        }
        munmap(c->base, len);
        lfree(c);
    }
    P.pool = P.cold = NULL;
    P.npool = 0;
    memset(P.cv, 0, sizeof P.cv);
    P.ncarved = 0;
    P.guarded = 0;
    llock_release(&P.lock);
}

/* ---------------------------------------------------- overflow reporting */

/* Finds the coroutine whose guard page holds addr; NULL if none. Runs in a
 * signal handler: reads only, takes no lock (chunks are only prepended). */
static coroutine *g_of_guard(const char *addr) {
    for (chunk *c = P.chunks; c; c = c->next) {
        char *slots = c->base + P.page;
        if (addr < slots || addr >= slots + (size_t)CHUNK_SLOTS * P.size)
            continue;
        size_t i = (size_t)(addr - slots) / P.size;
        char *base = slots + i * P.size;
        if (addr >= base + P.page)
            return NULL; /* not in the guard page */
        lstack *s = slot_desc(base);
        if (!s->guarded)
            return NULL;
        return stack_g(s);
    }
    return NULL;
}

static struct sigaction old_segv;

static void write_str(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

void stack_overflow_report(coroutine *g, const char *how) {
    char buf[512];
    snprintf(buf, sizeof buf,
             "fatal error: leash: stack overflow (%s) in goroutine %lld%s%s%s, "
             "created at %s:%d; stack size %zu bytes (set LEASH_STACK_SIZE)\n",
             how, (long long)g->id, g->name[0] ? " \"" : "", g->name,
             g->name[0] ? "\"" : "", g->spawn_file ? g->spawn_file : "?",
             g->spawn_line, P.size);
    write_str(buf);
}

/* The coroutine running on this thread, if its stack pointer (at the
 * fault) is below its stack: it overflowed, whatever it then hit. */
static coroutine *overflowed_running(void *ucv) {
    worker *w = sched_worker();
    coroutine *g = w ? __atomic_load_n(&w->cur, __ATOMIC_RELAXED) : NULL;
    if (!g)
        return NULL;
#if defined(__x86_64__) || defined(__aarch64__)
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.sp;
#endif
    if (sp < (uintptr_t)g->stack->lo)
        return g;
#else
    (void)ucv;
#endif
    /* Its own top canary gone: the coroutine in the slot above ran into
     * it; name that one (same chunk only). */
    if (*(uint64_t *)(g->stack->hi - 8) != STACK_CANARY) {
        for (chunk *c = P.chunks; c; c = c->next) {
            char *end = c->base + P.page + (size_t)CHUNK_SLOTS * P.size;
            if (g->stack->hi > c->base && g->stack->hi < end)
                return stack_g(slot_desc(g->stack->hi));
        }
    }
    return NULL;
}

/* Installed only without ASan or TSan (they own SIGSEGV and report an
 * overflow themselves), but compiled in every build so that sanitizer
 * builds keep checking it: hence `unused`, or -Werror fails them. */
__attribute__((unused)) static void segv_handler(int sig, siginfo_t *si,
                                                 void *uc) {
    coroutine *run = overflowed_running(uc);
    coroutine *g = g_of_guard((const char *)si->si_addr);
    const char *how = "guard page";
    if (run && run != g) { /* ran past canary stacks into something */
        g = run;
        how = "stack pointer below the stack";
    }
    if (g) {
        stack_overflow_report(g, how);
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* Not ours: hand it to the previous handler or the default action. */
    if (old_segv.sa_flags & SA_SIGINFO) {
        if (old_segv.sa_sigaction) {
            old_segv.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old_segv.sa_handler != SIG_DFL &&
               old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL); /* returning re-faults with the default action */
}

void stack_install_overflow_handler(void) {
#if !defined(LEASH_ASAN) && !defined(LEASH_TSAN)
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
#endif
}
