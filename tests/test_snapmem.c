/* SPDX-License-Identifier: MIT */
/*
 * test_snapmem.c — the record memory a snapshot leaves for the next one
 * (snapshot.c, "record memory"): kept after a dump, reused by the next
 * one, and unmapped by sysmon's snapshot_trim once unused for 10 s.
 *
 * LEASH_TEST_TIMEOUT 60
 */
#include <stdio.h>

#include "core_util.h"
#include "internal.h"
#include "snapshot.h"

static void parked(void *p) { (void)leash_recv_n(p, NULL, 0); }

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
    CU_CHECK_EQ(leash_close(gate), 0);
    CU_CHECK(CU_WAIT_UNTIL(leash_num_coroutines() == 1, 5000));
    leash_release(gate);
    return 0;
}

Test(snapmem, kept_reused_then_trimmed, .timeout = 30) {
    cu_run(kept_main, NULL);
}
