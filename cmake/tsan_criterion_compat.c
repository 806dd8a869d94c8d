/* SPDX-License-Identifier: MIT */
/*
 * tsan_criterion_compat.c — linked into the Criterion tests of a
 * LEASH_SANITIZE=thread build only (never into the library).
 *
 * Criterion's sandbox (BoxFort) creates its shared "inheritable arena" with
 * mmap(MAP_FIXED) at base 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB,
 * probing with msync() that the range is unmapped. Most of that range lies
 * outside ThreadSanitizer's application memory, so TSan's mmap interceptor
 * refuses it and Criterion dies ("Could not initialize inheritable arena",
 * or a SEGV in libcriterion) in about 19 runs out of 20.
 *
 * This rand_r() interposes on the one libcriterion imports: for calls made
 * from libcriterion it returns offsets that put the arena in TSan's
 * mid application range (0x5500'0000'0000 - 0x5680'0000'0000, where PIE
 * binaries live); BoxFort's msync probe still skips pages already mapped.
 * Every other caller gets the real rand_r().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

int rand_r(unsigned int *seed);

int rand_r(unsigned int *seed)
{
    static unsigned int next;
    Dl_info info;

    if (dladdr(__builtin_return_address(0), &info) && info.dli_fname &&
        strstr(info.dli_fname, "libcriterion")) {
        /* (0x5580'0000'0000 - 0x2000'0000'0000) / 16 MiB = 0x358000 */
        unsigned int i = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
        return (int)(0x358000u + i % 0x10000u);
    }

    static int (*real_rand_r)(unsigned int *);
    int (*fn)(unsigned int *) =
        __atomic_load_n(&real_rand_r, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (int (*)(unsigned int *))dlsym(RTLD_NEXT, "rand_r");
        __atomic_store_n(&real_rand_r, fn, __ATOMIC_RELEASE);
    }
    return fn(seed);
}
