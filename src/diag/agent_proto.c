/* SPDX-License-Identifier: MIT */
/*
 * agent_proto.c — parsing and formatting of the agent protocol (proto.h).
 * Pure: shared by the agent in the library and the `leash` CLI, and
 * compiled alone into tests/fuzz_agent.c.
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int agent_socket_dir(char *buf, size_t n) {
    const char *x = getenv("XDG_RUNTIME_DIR");
    int r = x && x[0] == '/' ? snprintf(buf, n, "%s/leash", x)
                             : snprintf(buf, n, "/tmp/leash-%u",
                                        (unsigned)geteuid());
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

static const char *const names[AC__COUNT] = {
    [AC_PS_INFO] = "ps-info", [AC_STATS] = "stats",   [AC_STACK] = "stack",
    [AC_DUMP] = "dump",       [AC_JSON] = "json",     [AC_LEAKS] = "leaks",
    [AC_PROFILE] = "profile", [AC_TOP] = "top",       [AC_VERSION] = "version",
    [AC_TRACE] = "trace",
};

const char *agent_cmd_name(int cmd) {
    return cmd > AC_NONE && cmd < AC__COUNT ? names[cmd] : NULL;
}

int agent_cmd_lookup(const char *name, size_t n) {
    for (int c = AC_NONE + 1; c < AC__COUNT; c++)
        if (strlen(names[c]) == n && !memcmp(names[c], name, n))
            return c;
    if (n == 6 && !memcmp(name, "vitals", 6))
        return AC_STATS;
    return AC_NONE;
}

const char *agent_strerror(int err) {
    switch (err) {
    case AGENT_E_SYNTAX: return "malformed request (want \"LEASH1 <command>[ <arg>]\")";
    case AGENT_E_VERSION: return "unsupported protocol version (this agent speaks LEASH1)";
    case AGENT_E_COMMAND: return "unknown command";
    case AGENT_E_TOOLONG: return "line too long";
    case AGENT_E_ARG: return "bad argument for this command";
    default: return "protocol error";
    }
}

int agent_cpu_seconds(const char *a) {
    if (!strcmp(a, "cpu"))
        return 30;
    if (strncmp(a, "cpu-", 4) || !a[4] || strlen(a) > 7 || a[4] == '0')
        return 0;
    int v = 0;
    for (const char *p = a + 4; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v <= AGENT_CPU_MAX_S ? v : 0;
}

int agent_trace_seconds(const char *a) {
    if (!*a)
        return 5;
    if (strlen(a) > 2 || a[0] == '0')
        return 0;
    int v = 0;
    for (const char *p = a; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v <= AGENT_TRACE_MAX_S ? v : 0;
}

static bool arg_char(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

/* Which arguments a command accepts (NULL list: none). */
static bool arg_ok(int cmd, const char *a) {
    static const char *const stack[] = {"1", "2", "3", "4", NULL};
    static const char *const leaks[] = {"json", "text", NULL};
    static const char *const profile[] = {"leak", "all", "block", "mutex",
                                          "cpu", NULL};
    const char *const *ok = NULL;
    switch (cmd) {
    case AC_STACK: ok = stack; break;
    case AC_LEAKS: ok = leaks; break;
    case AC_PROFILE: ok = profile; break;
    default: break;
    }
    if (cmd == AC_TRACE)
        return agent_trace_seconds(a) > 0;
    if (!*a)
        return true;
    if (cmd == AC_PROFILE && agent_cpu_seconds(a) > 0)
        return true;
    for (; ok && *ok; ok++)
        if (!strcmp(*ok, a))
            return true;
    return false;
}

int agent_parse_request(const char *buf, size_t len, agent_req *out) {
    memset(out, 0, sizeof *out);
    size_t lim = len < AGENT_MAX_REQ ? len : AGENT_MAX_REQ;
    const char *nl = memchr(buf, '\n', lim);
    if (!nl)
        return len >= AGENT_MAX_REQ ? AGENT_E_TOOLONG : 0;
    size_t n = (size_t)(nl - buf);
    size_t consumed = n + 1;
    if (n && buf[n - 1] == '\r')
        n--;
    /* "LEASH<digits>" */
    if (n < 6 || memcmp(buf, "LEASH", 5))
        return AGENT_E_SYNTAX;
    size_t i = 5;
    while (i < n && buf[i] >= '0' && buf[i] <= '9')
        i++;
    if (i == 5 || (i < n && buf[i] != ' '))
        return AGENT_E_SYNTAX;
    if (i != 6 || buf[5] != '1')
        return AGENT_E_VERSION;
    if (i == n || buf[i] != ' ')
        return AGENT_E_SYNTAX;
    i++;
    size_t cs = i;
    while (i < n && buf[i] != ' ')
        i++;
    if (i == cs)
        return AGENT_E_SYNTAX;
    for (size_t k = cs; k < i; k++)
        if (!arg_char((unsigned char)buf[k]))
            return AGENT_E_SYNTAX;
    out->cmd = agent_cmd_lookup(buf + cs, i - cs);
    if (!out->cmd)
        return AGENT_E_COMMAND;
    if (i < n) {
        i++; /* the space */
        size_t as = i;
        if (n - as == 0 || n - as > AGENT_MAX_ARG)
            return AGENT_E_ARG;
        for (size_t k = as; k < n; k++)
            if (!arg_char((unsigned char)buf[k]))
                return AGENT_E_ARG;
        memcpy(out->arg, buf + as, n - as);
        out->arg[n - as] = 0;
    }
    if (!arg_ok(out->cmd, out->arg)) {
        out->arg[0] = 0;
        return AGENT_E_ARG;
    }
    return (int)consumed;
}

int agent_parse_reply(const char *buf, size_t len, agent_reply *out) {
    memset(out, 0, sizeof *out);
    size_t lim = len < AGENT_MAX_HEAD ? len : AGENT_MAX_HEAD;
    const char *nl = memchr(buf, '\n', lim);
    if (!nl)
        return len >= AGENT_MAX_HEAD ? AGENT_E_TOOLONG : 0;
    size_t n = (size_t)(nl - buf);
    if (n < 7 || memcmp(buf, "LEASH", 5))
        return AGENT_E_SYNTAX;
    if (memcmp(buf, AGENT_MAGIC " ", 7))
        return AGENT_E_VERSION;
    size_t i = 7;
    if (n - i >= 3 && !memcmp(buf + i, "OK ", 3)) {
        out->ok = true;
        i += 3;
    } else if (n - i >= 4 && !memcmp(buf + i, "ERR ", 4)) {
        i += 4;
    } else {
        return AGENT_E_SYNTAX;
    }
    if (i == n || n - i > 12)
        return AGENT_E_SYNTAX;
    int64_t v = 0;
    for (; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return AGENT_E_SYNTAX;
        v = v * 10 + (buf[i] - '0');
    }
    if (v > AGENT_MAX_BODY)
        return AGENT_E_TOOLONG;
    out->length = v;
    return (int)(nl - buf) + 1;
}

int agent_format_request(char *buf, size_t n, int cmd, const char *arg) {
    const char *name = agent_cmd_name(cmd);
    if (!name || !buf)
        return -1;
    if (!arg)
        arg = "";
    size_t an = strlen(arg);
    if (an > AGENT_MAX_ARG || !arg_ok(cmd, arg))
        return -1;
    for (size_t i = 0; i < an; i++)
        if (!arg_char((unsigned char)arg[i]))
            return -1;
    size_t need = 7 + strlen(name) + (an ? an + 1 : 0) + 1;
    if (need + 1 > n)
        return -1;
    size_t o = 0;
    memcpy(buf + o, AGENT_MAGIC " ", 7);
    o += 7;
    memcpy(buf + o, name, strlen(name));
    o += strlen(name);
    if (an) {
        buf[o++] = ' ';
        memcpy(buf + o, arg, an);
        o += an;
    }
    buf[o++] = '\n';
    buf[o] = 0;
    return (int)o;
}
