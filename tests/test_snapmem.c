/* SPDX-License-Identifier: MIT */
/*
 * test_snapmem.c — the record memory a snapshot leaves for the next one
 * (snapshot.c, "record memory"): kept after a dump, reused by the next
 * one, and unmapped by sysmon's snapshot_trim once unused for 10 s.
 *
 * LEASH_TEST_TIMEOUT 60
 */
#include <stdio.h>
#include <stdlib.h>

#include "core_util.h"
#include "internal.h"
#include "snapshot.h"

static void parked(void *p) { (void)leash_recv_n(p, NULL, 0); }

/* Lets every parked coroutine go, waits for them to exit, drops gate. */
static void unpark_all(leash_chan *gate) {
    CU_CHECK_EQ(leash_close(gate), 0);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    leash_release(gate);
}

static int kept_main(void *arg) {
    (void)arg;
    leash_chan *gate = leash_chan_make(0, 0);
    for (int i = 0; i < 2000; i++)
        CU_CHECK(leash_go(parked, gate) > 0);
    FILE *f = fopen("/dev/null", "w");
    CU_CHECK(f != NULL);
    CU_CHECK(leash_dump(f, 2) > 0);
    size_t kept = snapshot_kept_bytes();
    CU_CHECK(kept >= 2000 * sizeof(dgor)); /* room for every record */
    CU_CHECK(leash_dump(f, 2) > 0);
    CU_CHECK_EQ(snapshot_kept_bytes(), kept); /* the same memory again */
    snapshot_trim(leash_now());
    CU_CHECK_EQ(snapshot_kept_bytes(), kept); /* used just now: kept */
    snapshot_trim(leash_now() + 11 * 1000 * CU_MS);
    CU_CHECK_EQ(snapshot_kept_bytes(), 0); /* unused for 10 s: unmapped */
    CU_CHECK(leash_dump(f, 2) > 0); /* and a dump maps afresh */
    CU_CHECK(snapshot_kept_bytes() >= 2000 * sizeof(dgor));
    fclose(f);
    unpark_all(gate);
    return 0;
}

Test(snapmem, kept_reused_then_trimmed, .timeout = 30) {
    cu_run(kept_main, NULL);
}

/* Every record's frames pointer is valid, with or without frames: the
 * formatters memcmp and memcpy d->pcs[0..nframes), and a NULL there is
 * undefined even for 0 bytes (UBSan caught it in a dump under load, for
 * a running coroutine whose sample missed). The frames' block failing to
 * allocate leaves records without frames the same way: the nth
 * allocation of the snapshot fails, for each n in turn. */
void alloc_test_fail(long nth);

static int frames_main(void *arg) {
    (void)arg;
    leash_chan *gate = leash_chan_make(0, 0);
    for (int i = 0; i < 8; i++)
        CU_CHECK(leash_go(parked, gate) > 0);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 9, 5000));
    int without = 0;
    for (long n = 1; n <= 12; n++) {
        dsnap s;
        alloc_test_fail(n);
        int rc = snapshot_take(&s, sched_getg(), true);
        alloc_test_fail(0);
        if (rc != 0)
            continue; /* the records' own memory failed: no snapshot */
        for (int i = 0; i < s.n; i++) {
            CU_CHECK(s.g[i].pcs != NULL);
            without += s.g[i].nframes == 0;
        }
        snapshot_free(&s);
    }
    CU_CHECK(without > 0); /* the case this is about did occur */
    unpark_all(gate);
    return 0;
}

Test(snapmem, records_without_frames_have_a_frames_pointer, .timeout = 30) {
    cu_run(frames_main, NULL);
}
