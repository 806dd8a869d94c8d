/* SPDX-License-Identifier: MIT */
/*
 * test_errors.c — one error namespace: every LEASH_E* code is either the
 * negated errno of the same meaning or outside errno's range, so an I/O
 * call's -errno can never be mistaken for one of leash's own codes (a
 * closed channel used to be -32, the same as -EPIPE from leash_write).
 */
#define _GNU_SOURCE 1 /* strerrordesc_np */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "leash.h"

static const struct {
    int code, same_errno; /* 0: must lie outside errno's range */
    const char *name;
} codes[] = {
    {LEASH_EAGAIN, EAGAIN, "EAGAIN"},
    {LEASH_EINVAL, EINVAL, "EINVAL"},
    {LEASH_ENOMEM, ENOMEM, "ENOMEM"},
    {LEASH_ETIMEDOUT, ETIMEDOUT, "ETIMEDOUT"},
    {LEASH_ECANCELED, ECANCELED, "ECANCELED"},
    {LEASH_E2BIG, E2BIG, "E2BIG"}, /* too long: a line over the maximum */
    {LEASH_ECLOSED, 0, "ECLOSED"}, /* was -32: -EPIPE */
    {LEASH_EORPHANED, 0, "EORPHANED"},
};
#define NCODES (sizeof codes / sizeof codes[0])

Test(errors, codes_share_errnos_only_where_the_meaning_is_the_same) {
    for (size_t i = 0; i < NCODES; i++) {
        cr_expect_lt(codes[i].code, 0, "%s", codes[i].name);
        if (codes[i].same_errno)
            cr_expect_eq(codes[i].code, -codes[i].same_errno, "%s",
                         codes[i].name);
        else /* no errno of the C library has that value */
            cr_expect_null(strerrordesc_np(-codes[i].code),
                           "LEASH_%s = %d is -%s", codes[i].name,
                           codes[i].code, strerrordesc_np(-codes[i].code));
        for (size_t j = 0; j < i; j++)
            cr_expect_neq(codes[i].code, codes[j].code, "%s and %s",
                          codes[i].name, codes[j].name);
    }
}

Test(errors, strerror_names_every_code_and_os_errors) {
    for (size_t i = 0; i < NCODES; i++) {
        const char *t = leash_strerror(codes[i].code);
        cr_expect(t && strcmp(t, "unknown error"), "LEASH_%s", codes[i].name);
    }
    cr_expect_str_eq(leash_strerror(-EPIPE), strerror(EPIPE));
    cr_expect_str_eq(leash_strerror(-ECONNRESET), strerror(ECONNRESET));
    cr_expect_str_eq(leash_strerror(0), "success");
    cr_expect_str_eq(leash_strerror(-99999), "unknown error");
    cr_expect_str_eq(leash_strerror(12345), "unknown error");
}

Test(errors, a_broken_pipe_is_not_a_closed_channel) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    ssize_t r = leash_write(p[1], "x", 1, -1);
    cr_expect_eq(r, -EPIPE);
    cr_expect_neq(r, LEASH_ECLOSED);
    close(p[1]);
}
