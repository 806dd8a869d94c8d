/* SPDX-License-Identifier: MIT */
/*
 * symbolize.c — pc -> function, file:line, offset, module; with a cache.
 *
 * Resolution:
 *   - With elfutils' libdw (LEASH_HAVE_LIBDW): one process-wide Dwfl
 *     session over /proc/self/maps. The function and its start come from
 *     the ELF symbol tables (the debuginfo file's too, when one is found),
 *     file:line from the DWARF line table. A return address is looked up
 *     at pc-1 (inside the call instruction, as Go does), but the offset is
 *     reported against the original pc (Go's "+0x1d" is pc - entry).
 *     A module loaded after the session was built (dlopen) makes
 *     dwfl_addrmodule miss, or hit the wrong module (a module reported
 *     from the maps also claims the anonymous mappings after it): each
 *     hit is checked against dladdr's load base, and on a miss or a
 *     mismatch the maps are reported again and the lookup retried once —
 *     if the dynamic linker's load/unload counters moved since the last
 *     report (else dladdr's answer is used).
 *   - Without libdw, or where libdw knows nothing: dladdr, which gives
 *     exported (dynamic) symbol names and the module, no file:line.
 *   - File:line is the line table's, i.e. the innermost inlined
 *     function's. Where the address is in inlined code, the DWARF scopes
 *     holding it (DW_TAG_inlined_subroutine) give the chain of source
 *     frames, as Go's tracebacks show them: `func` is the innermost
 *     inlined function and `callers` the functions it was inlined into,
 *     each at the line of the inlined call (DW_AT_call_file/line); the
 *     last is the symbol, the machine frame's function.
 *
 * Invariants:
 *   - Every string handed out lives in an intern table that is never freed
 *     (the Dwfl session's own strings die when a re-report drops a
 *     module, so none of them is ever handed out directly).
 *   - The cache maps (pc, is_return) to a resolved dsym and only grows;
 *     a result is cached only if every string could be interned, so an
 *     allocation failure costs precision once, never correctness later.
 *   - A dlclose()d object whose range is later reused by another keeps
 *     its stale cached entries (Go has no dlclose; we accept this).
 *
 * Memory: system libraries' separate debug files are skipped unless
 * LEASH_SYSTEM_DEBUGINFO=1, and the session ends with the resolver
 * thread (find_debuginfo, resolver_main; docs/TUNING.md).
 *
 * Stack: libdw's line-table reader needs ~160 KiB of stack, more than a
 * coroutine has, so every libdw call runs on a resolver thread of ours
 * (1 MiB stack, all signals blocked), started on a cache miss and gone
 * after 2 s without one; the caller uses < 10 KiB. Cache hits and dladdr
 * run on the caller's stack.
 *
 * Thread-safety: one mutex (sym_mu) guards the cache, the intern table
 * and, through the hand-off to the resolver, the Dwfl session (libdw
 * sessions are not thread-safe): one miss is resolved at a time. Lookups
 * from any thread may run concurrently; pthread_atfork handlers keep a
 * child from inheriting a lock held or a resolver that does not exist.
 * Never call this from a signal handler.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "diag.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#ifdef LEASH_HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#endif

/* ------------------------------------------------------------ state */

typedef struct {
    uintptr_t pc;
    bool used;
    bool is_return;
    dsym sym;
} sym_entry;

typedef struct {
    const char **slots; /* interned strings, NULL = empty */
    size_t cap;         /* power of two */
    size_t len;
} str_set;

static pthread_mutex_t sym_mu = PTHREAD_MUTEX_INITIALIZER;
static sym_entry *cache;    /* open addressing, linear probing */
static size_t cache_cap;    /* power of two, 0 before the first insert */
static size_t cache_len;
static str_set strings;

#ifdef LEASH_HAVE_LIBDW
static Dwfl *dwfl;          /* NULL: not built yet, or failed */
static bool dwfl_failed;    /* dwfl_begin/report failed: use dladdr only */
static char *debuginfo_path; /* NULL: libdw's default search path */

/* Memory (docs/TUNING.md, "Symbolizer"): libdw keeps what it loads for as
 * long as the session lives, and a system library's separate debug file
 * is big (libc6-dbg's: +18 MB of RSS for one libc frame in a dump). So
 * those are not loaded unless LEASH_SYSTEM_DEBUGINFO=1 -- a system
 * library's frame is then named from its own symbol table, with no
 * file:line -- and the whole session ends with the resolver thread,
 * after RES_IDLE_NS without a cache miss (the cache keeps every answer).
 * The program's own objects keep their debug info, embedded or not. */
static bool want_system_debuginfo; /* read as each session begins */

static bool system_object(const char *path) {
    static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/",
                                       "/usr/lib64/", "/usr/libexec/"};
    for (size_t i = 0; path && i < sizeof dirs / sizeof dirs[0]; i++)
        if (!strncmp(path, dirs[i], strlen(dirs[i])))
            return true;
    return false;
}

static int find_debuginfo(Dwfl_Module *mod, void **ud, const char *modname,
                          Dwarf_Addr base, const char *file_name,
                          const char *debuglink_file, GElf_Word crc,
                          char **debuginfo_file_name) {
    if (!want_system_debuginfo &&
        system_object(file_name ? file_name : modname))
        return -1; /* the object's own symbol table will do */
    return dwfl_standard_find_debuginfo(mod, ud, modname, base, file_name,
                                        debuglink_file, crc,
                                        debuginfo_file_name);
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};
#endif

/* ------------------------------------------------------------ hashing */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return mix64(h);
}

/* ------------------------------------------------------------ interning */

/* Returns the interned copy of s (NULL in -> NULL out), or NULL on
 * allocation failure (*ok is then cleared). Caller holds sym_mu. */
static const char *intern(const char *s, bool *ok) {
    if (!s)
        return NULL;
    if (strings.len * 2 >= strings.cap) {
        size_t ncap = strings.cap ? strings.cap * 2 : 256;
        const char **ns = lcalloc(ncap, sizeof *ns);
        if (!ns) {
            if (strings.len + 1 >= strings.cap) { /* no room at all */
                *ok = false;
                return NULL;
            }
        } else {
            for (size_t i = 0; i < strings.cap; i++) {
                const char *o = strings.slots[i];
                if (!o)
                    continue;
                size_t j = hash_str(o) & (ncap - 1);
                while (ns[j])
                    j = (j + 1) & (ncap - 1);
                ns[j] = o;
            }
            lfree(strings.slots);
            strings.slots = ns;
            strings.cap = ncap;
        }
    }
    size_t mask = strings.cap - 1, i = hash_str(s) & mask;
    for (; strings.slots[i]; i = (i + 1) & mask)
        if (strcmp(strings.slots[i], s) == 0)
            return strings.slots[i];
    size_t n = strlen(s) + 1;
    char *copy = lmalloc(n);
    if (!copy) {
        *ok = false;
        return NULL;
    }
    memcpy(copy, s, n);
    strings.slots[i] = copy;
    strings.len++;
    return copy;
}

/* ------------------------------------------------------------ the cache */

static size_t cache_slot(uintptr_t pc, bool is_return) {
    return mix64((uint64_t)pc * 2 + is_return) & (cache_cap - 1);
}

static const sym_entry *cache_find(uintptr_t pc, bool is_return) {
    if (!cache_cap)
        return NULL;
    for (size_t i = cache_slot(pc, is_return); cache[i].used;
         i = (i + 1) & (cache_cap - 1))
        if (cache[i].pc == pc && cache[i].is_return == is_return)
            return &cache[i];
    return NULL;
}

/* Best effort: a failed growth just leaves the result uncached. */
static void cache_put(uintptr_t pc, bool is_return, const dsym *s) {
    if ((cache_len + 1) * 2 > cache_cap) {
        size_t ncap = cache_cap ? cache_cap * 2 : 512;
        sym_entry *nc = lcalloc(ncap, sizeof *nc);
        if (!nc) {
            if (cache_len + 1 >= cache_cap)
                return;
        } else {
            size_t ocap = cache_cap;
            sym_entry *old = cache;
            cache = nc;
            cache_cap = ncap;
            for (size_t i = 0; i < ocap; i++) {
                if (!old[i].used)
                    continue;
                size_t j = cache_slot(old[i].pc, old[i].is_return);
                while (cache[j].used)
                    j = (j + 1) & (ncap - 1);
                cache[j] = old[i];
            }
            lfree(old);
        }
    }
    size_t i = cache_slot(pc, is_return);
    while (cache[i].used)
        i = (i + 1) & (cache_cap - 1);
    cache[i].pc = pc;
    cache[i].is_return = is_return;
    cache[i].sym = *s;
    cache[i].used = true;
    cache_len++;
}

/* ------------------------------------------------------------ resolvers */

/* What a resolver found; strings are borrowed (valid until the next call
 * into libdw or dladdr's object is unloaded) and get interned by the
 * caller before the lock is dropped. */
typedef struct {
    const char *func, *file, *module;
    int line;
    int decl_line;   /* the machine frame's function's, 0 if unknown */
    uintptr_t start; /* function entry, 0 if unknown */
    /* Inlined instances holding addr, innermost first: each one's
     * function name, the line it is declared at and the file:line it
     * was called (inlined) from. */
    struct {
        const char *name, *call_file;
        int call_line, decl_line;
    } inl[DSYM_MAX_INLINE];
    int ninl;
} sym_raw;

static void resolve_dladdr(uintptr_t addr, sym_raw *r) {
    Dl_info info;
    if (!dladdr((void *)addr, &info))
        return;
    if (!r->module && info.dli_fname && info.dli_fname[0])
        r->module = info.dli_fname;
    if (!r->func && info.dli_sname && info.dli_saddr) {
        r->func = info.dli_sname;
        r->start = (uintptr_t)info.dli_saddr;
    }
}

#ifdef LEASH_HAVE_LIBDW
static int gen_cb(struct dl_phdr_info *info, size_t size, void *data) {
    uint64_t *gen = data;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        *gen = (uint64_t)info->dlpi_adds * 0x100000001ull + info->dlpi_subs;
    return 1; /* the counters are the same in every entry */
}

/* The dynamic linker's load/unload generation (0 if unknown). */
static uint64_t objects_gen(void) {
    uint64_t gen = 0;
    dl_iterate_phdr(gen_cb, &gen);
    return gen;
}

static uint64_t reported_gen; /* objects_gen() before the last report */

/* (Re)reports the process's modules. Caller holds sym_mu. */
static bool dwfl_report_self(void) {
    reported_gen = objects_gen();
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, getpid());
    /* dwfl_report_end must follow even a failed report. */
    if (dwfl_report_end(dwfl, NULL, NULL) != 0 || rc != 0)
        return false;
    return true;
}

static bool dwfl_ready(void) {
    if (dwfl)
        return true;
    if (dwfl_failed)
        return false;
    want_system_debuginfo = env_bool("LEASH_SYSTEM_DEBUGINFO", false);
    dwfl = dwfl_begin(&dwfl_callbacks);
    if (!dwfl || !dwfl_report_self()) {
        if (dwfl)
            dwfl_end(dwfl);
        dwfl = NULL;
        dwfl_failed = true;
        return false;
    }
    return true;
}

/* The module holding addr, checked against the dynamic linker: a module
 * whose range was taken from /proc/self/maps may also claim the
 * anonymous mappings after it, where a later dlopen can land. On a miss
 * or a disagreement the maps are reported again once, if objects were
 * loaded or unloaded since the last report. */
typedef struct {
    Dwarf_Addr base;
    Dwfl_Module *mod;
} base_find;

static int find_by_base(Dwfl_Module *mod, void **ud, const char *name,
                        Dwarf_Addr start, void *arg) {
    (void)ud, (void)name;
    base_find *f = arg;
    if (start == f->base) {
        f->mod = mod;
        return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

static Dwfl_Module *dwfl_module_of(uintptr_t addr) {
    Dl_info info;
    bool known = dladdr((void *)addr, &info) != 0;
    for (int pass = 0;; pass++) {
        Dwfl_Module *mod = dwfl_addrmodule(dwfl, addr);
        if (mod) {
            Dwarf_Addr start = 0;
            dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
            if (!known || start == (Dwarf_Addr)(uintptr_t)info.dli_fbase)
                return mod;
        }
        if (pass > 0 || objects_gen() == reported_gen || !dwfl_report_self())
            break;
    }
    /* Zero-initialised data (.bss) past the object's file-backed pages is
     * an anonymous mapping, outside the module's range in the maps: find
     * the module by the object the dynamic linker says holds addr. */
    if (!known)
        return NULL;
    base_find f = {(Dwarf_Addr)(uintptr_t)info.dli_fbase, NULL};
    dwfl_getmodules(dwfl, find_by_base, &f, 0);
    return f.mod;
}

/* The DIE offset of the innermost function (or inlined instance of one)
 * whose code holds addr; 0 if unknown. */
static Dwarf_Off function_scope(Dwfl_Module *mod, uintptr_t addr) {
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
    Dwarf_Die *scopes = NULL;
    int n = cu ? dwarf_getscopes(cu, addr - bias, &scopes) : 0;
    Dwarf_Off off = 0;
    for (int i = 0; i < n && !off; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine)
            off = dwarf_dieoffset(&scopes[i]);
    }
    free(scopes);
    return off;
}

/* The line a function is declared at (its DW_AT_decl_line; libdw
 * follows an inlined instance's or a concrete copy's abstract origin),
 * 0 if unknown. */
static int decl_line(Dwarf_Die *die) {
    int line = 0;
    return dwarf_decl_line(die, &line) == 0 && line > 0 ? line : 0;
}

/* The inlined instances whose code holds addr, innermost first, into
 * r->inl: the chain of source frames one machine frame stands for; and
 * the declaration line of the machine frame's function. */
static void inline_chain(Dwfl_Module *mod, uintptr_t addr, sym_raw *r) {
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
    Dwarf_Die *scopes = NULL;
    int n = cu ? dwarf_getscopes(cu, addr - bias, &scopes) : 0;
    if (n <= 0) {
        free(scopes);
        return;
    }
    /* dwarf_getscopes follows an inlined instance with its abstract
     * definition's scopes; the concrete nesting (which instance sits in
     * which) is the innermost scope's chain of parents in the DIE tree. */
    Dwarf_Die inner = scopes[0];
    free(scopes);
    scopes = NULL;
    n = dwarf_getscopes_die(&inner, &scopes);
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    for (int i = 0; i < n; i++) {
        if (dwarf_tag(&scopes[i]) == DW_TAG_subprogram) {
            /* the machine frame's function: the symbol's */
            r->decl_line = decl_line(&scopes[i]);
            break;
        }
        if (r->ninl == DSYM_MAX_INLINE)
            continue; /* levels beyond those kept: only the symbol's */
        if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
            continue; /* a lexical block */
        Dwarf_Attribute a;
        const char *name =
            dwarf_formstring(dwarf_attr_integrate(&scopes[i], DW_AT_name, &a));
        Dwarf_Word fidx = 0, line = 0;
        const char *file = NULL;
        if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a),
                            &fidx) == 0 &&
            (files || dwarf_getsrcfiles(cu, &files, &nfiles) == 0) &&
            fidx < nfiles)
            file = dwarf_filesrc(files, fidx, NULL, NULL);
        dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &line);
        r->inl[r->ninl].name = name ? name : "?";
        r->inl[r->ninl].call_file = file;
        r->inl[r->ninl].call_line = (int)line;
        r->inl[r->ninl].decl_line = decl_line(&scopes[i]);
        r->ninl++;
    }
    free(scopes);
}

static void resolve_dwfl(uintptr_t addr, sym_raw *r) {
    if (!dwfl_ready())
        return;
    Dwfl_Module *mod = dwfl_module_of(addr);
    if (!mod)
        return;
    /* The name reported from the maps: the object's absolute path. */
    r->module = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name =
        dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
    if (name && name[0]) {
        r->func = name;
        r->start = addr - off;
    }

    /* Line 0 is the compiler saying "no single source line": clang gives
     * it to code it merged from several branches (two calls of one
     * function folded into one). The nearest row before it that belongs
     * to the same function (the same inlined instance) names the branch
     * that led there, which beats "?:0"; a row of another function (an
     * inlined callee's) would name a wrong line, so the search stops
     * there and the line stays unknown. */
    uintptr_t lowest = r->start && addr - r->start < 4096 ? r->start
                                                          : addr - 1024;
    Dwarf_Off scope = 0;
    for (uintptr_t a = addr; a >= lowest && a <= addr; a--) {
        Dwfl_Line *line = dwfl_module_getsrc(mod, a);
        int lineno = 0;
        Dwarf_Addr at = 0;
        const char *file =
            line ? dwfl_lineinfo(line, &at, &lineno, NULL, NULL, NULL) : NULL;
        if (!file)
            break;
        Dwarf_Off sc = function_scope(mod, a);
        if (a == addr)
            scope = sc;
        else if (sc != scope || !sc)
            break;
        if (lineno > 0) {
            r->file = file;
            r->line = lineno;
            break;
        }
        if (at == 0 || at > a)
            break;
        a = (uintptr_t)at; /* the row's start; a-- steps before it */
    }
    inline_chain(mod, addr, r);
}

/* The lowest code address of file:line in any module (0: none): where a
 * creation site's call is, to name the function it is in. */
typedef struct {
    const char *file;
    int line;
    Dwarf_Addr addr;
} line_find;

static int find_line(Dwfl_Module *mod, void **ud, const char *name,
                     Dwarf_Addr start, void *arg) {
    (void)ud, (void)name, (void)start;
    line_find *f = arg;
    Dwfl_Line **srcs = NULL;
    size_t n = 0;
    if (dwfl_module_getsrc_file(mod, f->file, f->line, 0, &srcs, &n) != 0)
        return DWARF_CB_OK;
    for (size_t i = 0; i < n; i++) {
        Dwarf_Addr a = 0;
        int ln = 0;
        if (dwfl_lineinfo(srcs[i], &a, &ln, NULL, NULL, NULL) && ln == f->line &&
            a && (!f->addr || a < f->addr))
            f->addr = a;
    }
    free(srcs);
    return f->addr ? DWARF_CB_ABORT : DWARF_CB_OK;
}

static uintptr_t line_addr_dwfl(const char *file, int line) {
    if (!dwfl_ready())
        return 0;
    line_find f = {file, line, 0};
    dwfl_getmodules(dwfl, find_line, &f, 0);
    return (uintptr_t)f.addr;
}
#endif

/* ------------------------------------------------------------ resolver */

/* libdw's line-table reader keeps ~150 KiB of arrays on the stack, more
 * than a coroutine has (64 KiB by default). So libdw runs on a thread of
 * our own: the caller, holding sym_mu (one request at a time), posts the
 * address under res_mu and waits; the thread resolves it and goes away
 * after a while without requests, to be started again on the next miss.
 * Lock order: sym_mu > res_mu. */
static pthread_mutex_t res_mu = PTHREAD_MUTEX_INITIALIZER;
static bool res_running, res_posted, res_done;

#ifdef LEASH_HAVE_LIBDW
static pthread_cond_t res_cv = PTHREAD_COND_INITIALIZER;
static uintptr_t res_addr;
static sym_raw res_out;
static const char *res_file; /* a file:line request (else res_addr) */
static int res_line;
static uintptr_t res_line_out;
#define RES_IDLE_NS 2000000000ll /* the thread exits after 2 s idle */
#define RES_STACK (1u << 20)

static void *resolver_main(void *arg) {
    (void)arg;
    rmutex_lock(&res_mu, LR_SYMRES);
    for (;;) {
        while (!res_posted) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t t = ts.tv_nsec + RES_IDLE_NS;
            ts.tv_sec += t / 1000000000;
            ts.tv_nsec = t % 1000000000;
            if (pthread_cond_timedwait(&res_cv, &res_mu, &ts) != 0 &&
                !res_posted) {
                /* Idle: the session goes too (see find_debuginfo). Under
                 * res_mu, so the next miss, which starts a new resolver,
                 * waits until it is gone. */
                if (dwfl) {
                    dwfl_end(dwfl);
                    dwfl = NULL;
                    malloc_trim(0); /* give the freed heap back to the OS */
                }
                res_running = false;
                rmutex_unlock(&res_mu);
                return NULL;
            }
        }
        res_posted = false;
        rmutex_unlock(&res_mu);
        sym_raw r = {0};
        uintptr_t la = 0;
        if (res_file)
            la = line_addr_dwfl(res_file, res_line);
        else
            resolve_dwfl(res_addr, &r); /* the caller holds sym_mu */
        rmutex_lock(&res_mu, LR_SYMRES);
        res_out = r;
        res_line_out = la;
        res_done = true;
        pthread_cond_broadcast(&res_cv);
    }
}

/* Resolves addr with libdw on the resolver thread; false if that thread
 * could not be started. Caller holds sym_mu. */
static bool resolve_remote_req(uintptr_t addr, const char *file, int line,
                               sym_raw *r, uintptr_t *line_out) {
    rmutex_lock(&res_mu, LR_SYMRES);
    if (!res_running) {
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_t t;
        sigfillset(&all);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, RES_STACK);
        /* The thread takes no signals: they are the runtime's business. */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        res_running = pthread_create(&t, &attr, resolver_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (!res_running) {
            rmutex_unlock(&res_mu);
            return false;
        }
    }
    res_addr = addr;
    res_file = file;
    res_line = line;
    res_done = false;
    res_posted = true;
    pthread_cond_broadcast(&res_cv);
    while (!res_done)
        pthread_cond_wait(&res_cv, &res_mu);
    if (r)
        *r = res_out;
    if (line_out)
        *line_out = res_line_out;
    rmutex_unlock(&res_mu);
    return true;
}

static bool resolve_remote(uintptr_t addr, sym_raw *r) {
    return resolve_remote_req(addr, NULL, 0, r, NULL);
}
#endif

/* Resolver threads alive (0 or 1), for the deadlock detector's count. */
int sym_threads(void) {
    rmutex_lock(&res_mu, LR_SYMRES);
    int n = res_running ? 1 : 0;
    rmutex_unlock(&res_mu);
    return n;
}

/* fork: no lookup is in flight in the child, and no resolver thread. */
static void sym_atfork_prepare(void) {
    rmutex_lock(&sym_mu, LR_SYM);
    rmutex_lock(&res_mu, LR_SYMRES);
}
static void sym_atfork_parent(void) {
    rmutex_unlock(&res_mu);
    rmutex_unlock(&sym_mu);
}
static void sym_atfork_child(void) {
    res_running = res_posted = res_done = false;
#ifdef LEASH_HAVE_LIBDW
    /* The parent's resolver may have been waiting on it: start afresh. */
    pthread_cond_init(&res_cv, NULL);
#endif
    sym_atfork_parent();
}
/* Registered when the library loads, before the runtime's own handlers
 * (proc.c, at the first start): prepare handlers run in the reverse order,
 * so a fork takes the symbolizer's locks last, after the start lock and
 * R.lock, as their ranks require (lockrank.h). */
__attribute__((constructor)) static void sym_atfork_register(void) {
    pthread_atfork(sym_atfork_prepare, sym_atfork_parent, sym_atfork_child);
}

/* ------------------------------------------------------------ entry */

/* Turns the raw inline chain into s's levels: the innermost inlined
 * function becomes s->func (its line is the line table's), and each
 * level above names the function it was inlined into, at the line of
 * that call; the last level is the symbol, s->func before. The array is
 * never freed (cached forever, like the strings). Caller holds sym_mu. */
static void inline_levels(const sym_raw *r, dsym *s, bool *ok) {
    dpos *lv = lmalloc(sizeof *lv * (size_t)r->ninl);
    if (!lv) {
        *ok = false;
        return;
    }
    for (int k = 0; k < r->ninl; k++) {
        lv[k].func = k + 1 < r->ninl ? intern(r->inl[k + 1].name, ok) : s->func;
        lv[k].file = intern(r->inl[k].call_file, ok);
        lv[k].line = lv[k].file ? r->inl[k].call_line : 0;
        lv[k].start_line =
            k + 1 < r->ninl ? r->inl[k + 1].decl_line : r->decl_line;
        if (!lv[k].func)
            lv[k].func = "?";
    }
    const char *inner = intern(r->inl[0].name, ok);
    if (!*ok) {
        lfree(lv);
        return;
    }
    s->func = inner;
    s->start_line = r->inl[0].decl_line;
    s->callers = lv;
    s->ncallers = r->ninl;
}

void sym_lookup(uintptr_t pc, bool is_return, dsym *out) {
    out->func = "?";
    out->file = NULL;
    out->line = 0;
    out->start_line = 0;
    out->offset = 0;
    out->module = NULL;
    out->callers = NULL;
    out->ncallers = 0;
    if (pc == 0 || (is_return && pc == 1))
        return;

    rmutex_lock(&sym_mu, LR_SYM);
    const sym_entry *e = cache_find(pc, is_return);
    if (e) {
        *out = e->sym;
        rmutex_unlock(&sym_mu);
        return;
    }

    uintptr_t addr = is_return ? pc - 1 : pc;
    sym_raw r = {0};
    bool ok = true; /* false: do not cache, a later lookup may do better */
#ifdef LEASH_HAVE_LIBDW
    ok = resolve_remote(addr, &r);
#endif
    if (!r.func || !r.module)
        resolve_dladdr(addr, &r);

    dsym s = {.func = "?", .file = NULL, .line = 0, .start_line = 0,
              .offset = 0, .module = NULL, .callers = NULL, .ncallers = 0};
    if (r.func) {
        /* GCC's clones (f.isra.0, f.constprop.1, f.part.2, f.cold) are
         * still f to a reader. */
        char name[256];
        snprintf(name, sizeof name, "%s", r.func);
        static const char *const clones[] = {".isra.", ".constprop.",
                                             ".part.", ".cold"};
        for (size_t i = 0; i < sizeof clones / sizeof clones[0]; i++) {
            char *c = strstr(name, clones[i]);
            if (c && c != name)
                *c = 0;
        }
        const char *f = intern(name, &ok);
        if (f) {
            s.func = f;
            s.start_line = r.decl_line;
            if (r.start && r.start <= pc)
                s.offset = pc - r.start;
        }
    }
    if (r.file) {
        s.file = intern(r.file, &ok);
        if (s.file)
            s.line = r.line;
    }
    s.module = intern(r.module, &ok);
    if (r.ninl > 0 && ok)
        inline_levels(&r, &s, &ok);
    if (ok)
        cache_put(pc, is_return, &s);
    rmutex_unlock(&sym_mu);
    *out = s;
}

/* The function whose code holds source line file:line (a creation site
 * recorded from __FILE__ and __LINE__), or NULL if unknown. */
const char *sym_func_at_line(const char *file, int line) {
    if (!file || line <= 0)
        return NULL;
    uintptr_t addr = 0;
#ifdef LEASH_HAVE_LIBDW
    rmutex_lock(&sym_mu, LR_SYM);
    if (!resolve_remote_req(0, file, line, NULL, &addr))
        addr = 0;
    rmutex_unlock(&sym_mu);
#endif
    if (!addr)
        return NULL;
    dsym s;
    sym_lookup(addr, false, &s);
    return strcmp(s.func, "?") ? s.func : NULL;
}
