// SPDX-License-Identifier: MIT
// header.cpp — include/leash.h must compile as C++17 with no warning
// (ctest cxx_header_*: -Wall -Wextra -Wpedantic -Werror -fsyntax-only).
// Uses every macro a C++ program would: the select cases (assignable, as
// in C, and the I/O cases), the INIT values, the size-checked channel calls, leash_go with
// and without handed objects, LEASH_AUTO.
#include "leash.h"

static void worker(void *arg) { (void)arg; }

static int body(void *) {
    LEASH_AUTO leash_chan *c = leash_chan_make(sizeof(int), 1);
    int v = 0;
    const int cv = 1;
    leash_case cs[3];
    cs[0] = LEASH_SEND_CASE(c, &v);
    cs[1] = LEASH_RECV_CASE(c, &v);
    cs[2] = LEASH_SEND_CASE(c, &cv);
    leash_conn *conn = nullptr;
    leash_case io[2];
    io[0] = LEASH_READABLE_CASE(conn);
    io[1] = LEASH_WRITABLE_CASE(conn);
    (void)leash_try_select(io, 2);
    leash_waitgroup wg = LEASH_WAITGROUP_INIT;
    leash_mutex mu = LEASH_MUTEX_INIT;
    leash_rwmutex rw = LEASH_RWMUTEX_INIT;
    leash_cond cond = LEASH_COND_INIT;
    leash_once once = LEASH_ONCE_INIT;
    (void)wg, (void)mu, (void)rw, (void)cond, (void)once;
    leash_go(worker, nullptr);
    leash_go(worker, nullptr, c);
    leash_send(c, &v);
    leash_recv(c, &v);
    return leash_select(cs, 3) < 0 || leash_try_select(cs, 2) < 0;
}

int main() { return leash_run(body, nullptr); }
