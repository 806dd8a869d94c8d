/* SPDX-License-Identifier: MIT */
/*
 * objmem.c — the address range every leash object is carved from.
 *
 * The API promises LEASH_EINVAL, not a crash, for any pointer that is not
 * a live leash object, and obj_check tells them apart by a magic word. But
 * reading the magic through a wild pointer (0x1000, an unmapped or
 * PROT_NONE page) is the crash. So objects live in one range reserved at
 * the first allocation, and obj_check reads a magic only inside its
 * committed part: two loads and a compare on the hot path, with no lock
 * and no syscall.
 *
 * The range is reserved PROT_NONE (address space only, nothing counted
 * against memory) and committed in steps with mprotect, so it works under
 * strict overcommit. Object memory is type-stable and never returned
 * (obj.c keeps free lists), so the committed part only grows: a pointer
 * once inside stays readable. Its size caps the live objects at once:
 * 8 GiB (some ten million channels), less if the address space is limited.
 */
#include "internal.h"

#include <sys/mman.h>

#if defined(LEASH_ASAN)
#include <sanitizer/lsan_interface.h>
#endif

#define RESERVE_MAX (8ull << 30)
#define RESERVE_MIN (64ull << 20)
#define COMMIT_STEP (1u << 20)
#define OBJ_ALIGN 64 /* a cache line: neighbours never share one */

struct objmem objmem;

static struct {
    size_t reserved; /* bytes of address space at objmem.base */
    size_t used;     /* bytes handed out (under the caller's lock) */
} M;

static bool reserve(void) {
    for (size_t n = RESERVE_MAX; n >= RESERVE_MIN; n /= 2) {
        void *p = mmap(NULL, n, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED) {
            /* Out of core dumps (gdb's gcore, the kernel's) until
             * committed: else every core carries 8 GiB of holes. */
            madvise(p, n, MADV_DONTDUMP);
            M.reserved = n;
            atomic_store_explicit(&objmem.base, p, memory_order_relaxed);
            return true;
        }
    }
    return false;
}

/* Makes [committed, need) readable and writable, in COMMIT_STEP steps. */
static bool commit(size_t need) {
    size_t have = atomic_load_explicit(&objmem.committed, memory_order_relaxed);
    if (need <= have)
        return true;
    size_t to = (need + COMMIT_STEP - 1) / COMMIT_STEP * COMMIT_STEP;
    if (to > M.reserved)
        return false;
    char *base = atomic_load_explicit(&objmem.base, memory_order_relaxed);
    if (mprotect(base + have, to - have, PROT_READ | PROT_WRITE) != 0)
        return false;
    madvise(base + have, to - have, MADV_DODUMP); /* objects: in cores */
#if defined(LEASH_ASAN)
    /* LeakSanitizer scans malloc'd memory and globals, not this range:
     * what only an object points to (a channel's buffer) would look
     * leaked. */
    __lsan_register_root_region(base + have, to - have);
#endif
    /* Release: a reader that sees the new size sees base and the pages. */
    atomic_store_explicit(&objmem.committed, to, memory_order_release);
    return true;
}

/* Fresh zeroed memory for an object; NULL when out of memory or when the
 * range is full. Callers serialise (obj.c holds R.lock). */
void *objmem_alloc(size_t size) {
    if (lalloc_should_fail())
        return NULL;
    if (!atomic_load_explicit(&objmem.base, memory_order_relaxed) &&
        !reserve())
        return NULL;
    size = (size + OBJ_ALIGN - 1) & ~(size_t)(OBJ_ALIGN - 1);
    if (size > M.reserved - M.used || !commit(M.used + size))
        return NULL;
    char *p = atomic_load_explicit(&objmem.base, memory_order_relaxed) + M.used;
    M.used += size;
    return p; /* zero: never used before */
}
