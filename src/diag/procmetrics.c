/* SPDX-License-Identifier: MIT */
/*
 * procmetrics.c — Prometheus' standard process metrics, with the names,
 * types and help texts its client libraries write (client_golang's
 * process collector), so that dashboards and rules written for any
 * Prometheus-instrumented service work on a leash one:
 *
 *   process_cpu_seconds_total       counter  utime + stime (/proc/self/stat)
 *   process_open_fds                gauge    entries of /proc/self/fd
 *   process_max_fds                 gauge    RLIMIT_NOFILE's soft limit
 *   process_virtual_memory_bytes    gauge    vsize (/proc/self/stat)
 *   process_virtual_memory_max_bytes gauge   RLIMIT_AS's soft limit
 *   process_resident_memory_bytes   gauge    rss pages * page size
 *   process_start_time_seconds      gauge    boot time (/proc/stat btime)
 *                                            + starttime / CLK_TCK
 *
 * A figure that cannot be read (no /proc) is left out, as client_golang
 * does, rather than written as a made-up value. An unlimited rlimit is
 * written as Prometheus writes it: 1.8446744073709552e+19.
 */
#define _GNU_SOURCE 1
#include "debug.h"

#include <dirent.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    double cpu_s;
    double start_ticks;
    uint64_t vsize, rss_pages;
    bool ok;
} pstat;

/* Fields 14-15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss). */
static pstat read_stat(void) {
    pstat st = {0};
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return st;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces and parens */
    if (!p)
        return st;
    unsigned long long v[25] = {0};
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok && field < 24;
         tok = strtok_r(NULL, " ", &save))
        v[++field] = strtoull(tok, NULL, 10);
    if (field < 24)
        return st;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    st.cpu_s = (double)(v[14] + v[15]) / (double)hz;
    st.start_ticks = (double)v[22] / (double)hz;
    st.vsize = v[23];
    st.rss_pages = v[24];
    st.ok = true;
    return st;
}

static double boot_time(void) {
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static int64_t open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int64_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* not the directory's own fd */
}

static void head(FILE *out, const char *name, const char *type,
                 const char *help) {
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void limit(FILE *out, const char *name, rlim_t v) {
    if (v == RLIM_INFINITY)
        fprintf(out, "%s 1.8446744073709552e+19\n", name);
    else
        fprintf(out, "%s %llu\n", name, (unsigned long long)v);
}

void dbg_write_process_metrics(FILE *out) {
    pstat st = read_stat();
    if (st.ok) {
        head(out, "process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.");
        fprintf(out, "process_cpu_seconds_total %.2f\n", st.cpu_s);
    }
    int64_t fds = open_fds();
    if (fds >= 0) {
        head(out, "process_open_fds", "gauge",
             "Number of open file descriptors.");
        fprintf(out, "process_open_fds %" PRId64 "\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        head(out, "process_max_fds", "gauge",
             "Maximum number of open file descriptors.");
        limit(out, "process_max_fds", rl.rlim_cur);
    }
    if (st.ok) {
        head(out, "process_virtual_memory_bytes", "gauge",
             "Virtual memory size in bytes.");
        fprintf(out, "process_virtual_memory_bytes %" PRIu64 "\n", st.vsize);
    }
    if (getrlimit(RLIMIT_AS, &rl) == 0) {
        head(out, "process_virtual_memory_max_bytes", "gauge",
             "Maximum amount of virtual memory available in bytes.");
        limit(out, "process_virtual_memory_max_bytes", rl.rlim_cur);
    }
    if (st.ok) {
        long page = sysconf(_SC_PAGESIZE);
        head(out, "process_resident_memory_bytes", "gauge",
             "Resident memory size in bytes.");
        fprintf(out, "process_resident_memory_bytes %" PRIu64 "\n",
                st.rss_pages * (uint64_t)(page > 0 ? page : 4096));
    }
    double bt = boot_time();
    if (st.ok && bt >= 0) {
        head(out, "process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
        fprintf(out, "process_start_time_seconds %.2f\n", bt + st.start_ticks);
    }
}
