/* SPDX-License-Identifier: MIT */
/* core_util.c — see core_util.h. Linked into every test executable. */
#define _GNU_SOURCE 1
#include "core_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_long fail_count;
static atomic_flag fail_msg_taken = ATOMIC_FLAG_INIT;
static char fail_msg[512] = "(none)";

void cu_fail(const char *file, int line, const char *fmt, ...) {
    if (atomic_fetch_add(&fail_count, 1) == 0 &&
        !atomic_flag_test_and_set(&fail_msg_taken)) {
        char buf[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        const char *base = strrchr(file, '/');
        snprintf(fail_msg, sizeof fail_msg, "%s:%d: %s", base ? base + 1 : file,
                 line, buf);
    }
    /* Also visible in the test's output, from whatever thread. */
    fprintf(stderr, "CU_CHECK failure at %s:%d\n", file, line);
}

long cu_failures(void) { return atomic_load(&fail_count); }
const char *cu_first_failure(void) { return fail_msg; }

size_t cu_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

bool cu_sanitized(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cu_run_prog_in(const char *bindir, const char *name,
                   const char *const *args, const char *const *env, char **out,
                   int timeout_s, bool *timed_out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/testprog_%s", bindir, name);
    *out = NULL;
    if (timed_out)
        *timed_out = false;
    const char *argv[32];
    int argc = 0;
    argv[argc++] = path;
    for (int i = 0; args && args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        /* Default signal dispositions for the program's own handlers. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);

    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
    bool killed = false;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            if (!killed) {
                kill(pid, SIGKILL);
                killed = true;
            }
            left = 1000;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(left > 100 ? 100 : left));
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0) {
            if (len + 1024 > cap) {
                cap *= 2;
                buf = realloc(buf, cap);
            }
            ssize_t n = read(fds[0], buf + len, cap - len - 1);
            if (n <= 0)
                break; /* EOF: the program (and its children) closed it */
            len += (size_t)n;
        }
    }
    close(fds[0]);
    buf[len] = 0;
    *out = buf;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out)
        *timed_out = killed;
    return status;
}
