/* core/transfer divergence, through the real driver and storage code over
 * simulated disks (harness.h): a member started on an older copy of its
 * data directory lets a quorum form without writes the primary P holds
 * committed; when P returns it must find that out and stop, keeping every
 * write, whichever way the group's log shows it:
 *  - behind: the group wrote nothing since (its log a prefix of P's): the
 *    primary's NEW-STATE ends below P's commit (test 2);
 *  - other: the group wrote other ops at those op numbers, still in its
 *    log: another checksum at an op both hold committed (test 1), seen by
 *    the primary P asked as well;
 *  - compacted: the group wrote so many that it compacted its log past
 *    P's ops: P is offered a snapshot, whose checkpoint shows another
 *    history (test 1's snapshot form, checkpoints.h);
 *  - restarted: as compacted, and then the whole group restarts before P
 *    returns: the checkpoints come back from each member's checkpoints
 *    file (storage/checkpoint_file.h), not from memory;
 *  - own base: as compacted, but P compacted its own log too, past the
 *    checkpoint offered: P compares it with its own checkpoint there.
 * docs/PROTOCOL.md, "Divergence"; tests/system/test_rollback.py runs the
 * same on real processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/checkpoints.h"
#include "core/replica.h"
#include "harness.h"

#define N 3
#define BASE 10   /* writes every copy holds */
#define WRITES 40 /* acknowledged by P and A alone */

enum kind { BEHIND, OTHER, COMPACTED, RESTARTED, OWN_BASE };

static struct harness *h;

static int teardown(void **s)
{
    (void)s;
    if (h)
        harness_free(h);
    h = NULL;
    return 0;
}

static void rollback(enum kind kind)
{
    h = harness_new(N, 7);
    if (kind == OWN_BASE)
        h->config.replica.snapshot_interval_ops = 8;
    harness_start_all(h);
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t a = (p + 1) % N, b = (p + 2) % N;
    harness_write_each(h, p, 100, BASE);
    harness_run(h, 300);

    /* 1. A's directory copied while A is down. */
    harness_crash(h, a, false);
    struct sim_disk saved;
    sim_disk_init(&saved, &h->prng, &h->r[a].disk.config);
    sim_disk_copy_files(&h->r[a].disk, &saved);
    harness_start(h, a);
    harness_run(h, 500);

    /* 2. B down; the writes are acknowledged by P and A alone. */
    harness_crash(h, b, false);
    harness_write_each(h, p, 200, WRITES);
    harness_run(h, 300);
    uint64_t p_commit = replica_commit(harness_core(h, p));
    /* OWN_BASE: on until P's log no longer holds its last checkpoint. */
    for (int k = 0; kind == OWN_BASE && k < 4 * (int)CHECKPOINT_FINE &&
                    replica_log_base(harness_core(h, p)) <=
                        p_commit - p_commit % CHECKPOINT_FINE;
         k++) {
        harness_write_each(h, p, 250 + (uint64_t)k, 1);
        harness_run(h, 100);
        p_commit = replica_commit(harness_core(h, p));
    }
    assert_true(p_commit >= BASE + WRITES);
    if (kind == OWN_BASE)
        assert_true(replica_log_base(harness_core(h, p)) >
                    p_commit - p_commit % CHECKPOINT_FINE);

    /* 3. A gets its old copy back; P goes down. */
    harness_crash(h, a, false);
    sim_disk_deinit(&h->r[a].disk);
    h->r[a].disk = saved;
    harness_crash(h, p, false);

    /* 4. A and B form a view without the writes. */
    bool compacted = kind == COMPACTED || kind == RESTARTED || kind == OWN_BASE;
    if (compacted)
        h->config.replica.snapshot_interval_ops = 8;
    harness_start(h, a);
    harness_start(h, b);
    harness_run(h, 3000);
    int q = harness_primary(h);
    assert_true(q == (int)a || q == (int)b);
    assert_true(h->r[q].total < BASE + WRITES);
    if (kind != BEHIND)
        harness_write_each(h, (uint32_t)q, 300,
                           compacted ? 3 * WRITES : WRITES);
    harness_run(h, 500);
    if (compacted)
        assert_true(replica_log_base(harness_core(h, (uint32_t)q)) > p_commit);
    else
        assert_true(replica_log_base(harness_core(h, (uint32_t)q)) <= BASE);
    h->config.replica.snapshot_interval_ops = 0;
    if (kind == RESTARTED) {
        /* Their memory of the ops compacted is gone; their files stay. */
        harness_crash(h, a, false);
        harness_crash(h, b, false);
        harness_start(h, a);
        harness_start(h, b);
        harness_run(h, 3000);
        q = harness_primary(h);
        assert_true(q == (int)a || q == (int)b);
        assert_true(replica_log_base(harness_core(h, (uint32_t)q)) > p_commit);
        assert_true(replica_stats(harness_core(h, a))->checkpoints_loaded > 0);
        assert_true(replica_stats(harness_core(h, b))->checkpoints_loaded > 0);
    }

    /* 5. P returns: it must stop, not drop the writes. */
    harness_start(h, p);
    uint64_t restores = h->r[p].restores; /* its own snapshot, at start */
    harness_run(h, 3000);
    const struct replica *rp = harness_core(h, p);
    uint32_t from = N;
    uint64_t at = replica_diverged(rp, &from);
    assert_true(at > BASE && at <= p_commit);
    assert_true(from == a || from == b);
    if (compacted) /* a checkpoint's op */
        assert_true(checkpoints_due(at));
    /* It keeps its log and its store as they were. */
    harness_run(h, 1000);
    assert_int_equal(replica_diverged(rp, &from), at);
    assert_true(replica_op(rp) >= p_commit);
    /* All but perhaps the last write, which no commit note covers. */
    assert_true(h->r[p].total >= BASE + WRITES - 1);
    assert_int_equal(h->r[p].restores, restores);
    /* The other side of test 1 saw it too, when it had the ops. */
    uint32_t peer = N;
    uint64_t seen = replica_peer_diverged(harness_core(h, from), &peer);
    if (kind == OTHER) {
        assert_int_equal(peer, p);
        assert_true(seen > BASE && seen <= p_commit);
    } else {
        assert_int_equal(seen, 0);
    }
    /* The group itself goes on without P. */
    q = harness_primary(h);
    assert_true(q == (int)a || q == (int)b);
    harness_write_each(h, (uint32_t)q, 900, 3);
}

static void group_behind_is_found(void **s)
{
    (void)s;
    rollback(BEHIND);
}

static void other_history_is_found(void **s)
{
    (void)s;
    rollback(OTHER);
}

static void history_compacted_past_is_found_by_the_snapshot_offer(void **s)
{
    (void)s;
    rollback(COMPACTED);
}

static void history_compacted_past_is_found_after_the_group_restarted(void **s)
{
    (void)s;
    rollback(RESTARTED);
}

static void history_compacted_past_is_found_below_its_own_log(void **s)
{
    (void)s;
    rollback(OWN_BASE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(group_behind_is_found, teardown),
        cmocka_unit_test_teardown(other_history_is_found, teardown),
        cmocka_unit_test_teardown(
            history_compacted_past_is_found_by_the_snapshot_offer, teardown),
        cmocka_unit_test_teardown(
            history_compacted_past_is_found_after_the_group_restarted,
            teardown),
        cmocka_unit_test_teardown(
            history_compacted_past_is_found_below_its_own_log, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
