/* The replica core through the driver, in a tiny harness (harness.h): three
 * replicas, a FIFO network that can cut a replica off, and a simulated disk
 * that persists as soon as the driver asks. The simulator (src/sim) does
 * this with faults and many seeds; these tests pin down the basic facts one
 * by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define N 3

static struct harness *h;

static int setup(void **state)
{
    (void)state;
    h = harness_new(N, 42);
    harness_start_all(h);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_free(h);
    h = NULL;
    return 0;
}

static void fresh_group_elects_a_primary(void **state)
{
    (void)state;
    harness_run(h, 2000);
    int p = harness_primary(h);
    assert_true(p >= 0);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(replica_status(harness_core(h, i)), STATUS_NORMAL);
        assert_int_equal(replica_view(harness_core(h, i)),
                         replica_view(harness_core(h, (uint32_t)p)));
    }
}

static void request_commits_on_all_and_is_answered(void **state)
{
    (void)state;
    harness_run(h, 2000);
    int p = harness_primary(h);
    assert_true(p >= 0);
    harness_submit(h, (uint32_t)p, 7, 1, 5);
    harness_run(h, 200);
    const struct harness_reply *g = harness_find(h, 7, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->outcome, DRIVER_DONE);
    assert_int_equal(g->value, 5);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(h->r[i].total, 5);
        assert_int_equal(replica_commit(harness_core(h, i)), g->op);
    }
}

static void backup_redirects_to_primary(void **state)
{
    (void)state;
    harness_run(h, 2000);
    int p = harness_primary(h);
    assert_true(p >= 0);
    uint32_t b = (uint32_t)(p + 1) % N;
    harness_submit(h, b, 7, 1, 5);
    harness_settle(h);
    const struct harness_reply *g = harness_find(h, 7, 1, REPLY_NOT_PRIMARY);
    assert_non_null(g);
    assert_int_equal(g->outcome, DRIVER_NOT_PRIMARY);
    assert_int_equal(g->primary_hint, (uint32_t)p);
    assert_int_equal(h->r[p].total, 0);
}

static void retried_request_is_applied_once(void **state)
{
    (void)state;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    struct harness_reply *first = harness_submit(h, p, 9, 1, 3);
    harness_turn_end(h, p);        /* proposed */
    harness_submit(h, p, 9, 1, 3); /* in flight: dropped by the core */
    harness_run(h, 200);
    harness_submit(h, p, 9, 1, 3); /* applied: answered from the table */
    harness_run(h, 200);
    assert_int_equal(h->r[p].total, 3);
    /* The first caller was superseded by the retry on the same replica:
     * it learns only that the outcome is unknown. */
    assert_int_equal(first->answers, 1);
    assert_int_equal(first->outcome, DRIVER_UNKNOWN);
    size_t ok = 0;
    for (uint32_t k = 0; k < h->reply_count; k++) {
        const struct harness_reply *q = &h->replies[k];
        assert_int_equal(q->answers, 1);
        if (q->client_id == 9 && q->status == REPLY_OK &&
            q->outcome == DRIVER_DONE) {
            assert_int_equal(q->value, 3);
            ok++;
        }
    }
    assert_int_equal(ok, 2);
}

/* Issue 11 item 3: a request older than the client's latest used to be
 * dropped without an answer (the client waited forever). */
static void older_request_is_answered_stale_at_once(void **state)
{
    (void)state;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    harness_submit(h, p, 77, 1, 1);
    harness_run(h, 200);
    harness_submit(h, p, 77, 2, 2);
    harness_run(h, 200);
    struct harness_reply *old = harness_submit(h, p, 77, 1, 4);
    harness_turn_end(h, p); /* answered in the step that proposes it */
    assert_int_equal(old->answers, 1);
    assert_int_equal(old->status, REPLY_STALE);
    assert_int_equal(old->outcome, DRIVER_REJECTED);
    harness_run(h, 200);
    assert_int_equal(h->r[p].total, 3); /* not applied */
    /* The latest is still answered from the table. */
    struct harness_reply *latest = harness_submit(h, p, 77, 2, 2);
    harness_turn_end(h, p);
    assert_int_equal(latest->answers, 1);
    assert_int_equal(latest->status, REPLY_OK);
}

/* over_limit refuses what is new, before it is proposed, and answers a
 * retry of an applied or in-flight request as usual. */
static void over_limit_refuses_new_requests_but_not_retries(void **state)
{
    (void)state;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    harness_submit(h, p, 5, 1, 1);
    harness_run(h, 200);
    struct harness_reply *q = harness_submit_limit(h, p, 5, 1, 1, true);
    harness_turn_end(h, p);
    assert_int_equal(q->status, REPLY_OK); /* applied: the stored reply */
    q = harness_submit_limit(h, p, 5, 2, 1, true);
    harness_turn_end(h, p);
    assert_int_equal(q->status, REPLY_OVER_LIMIT); /* new: refused */
    harness_submit(h, p, 6, 1, 1);
    harness_turn_end(h, p);                    /* proposed */
    harness_submit_limit(h, p, 6, 1, 1, true); /* in flight */
    harness_run(h, 200);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(h->r[i].total, 2);
    uint32_t ok6 = 0;
    for (uint32_t k = 0; k < h->reply_count; k++)
        ok6 += h->replies[k].client_id == 6 && h->replies[k].status == REPLY_OK;
    assert_int_equal(ok6, 1);
    assert_null(harness_find(h, 6, 1, REPLY_OVER_LIMIT));
}

static void primary_crash_leads_to_new_primary_with_committed_state(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    for (uint64_t k = 1; k <= 20; k++)
        harness_submit(h, p, 100 + k, 1, 1);
    harness_run(h, 200);
    assert_int_equal(h->r[p].total, 20);
    harness_crash(h, p, false);
    harness_run(h, 3000);
    int q = harness_primary(h);
    assert_true(q >= 0);
    assert_int_not_equal(q, (int)p);
    harness_submit(h, (uint32_t)q, 500, 1, 2);
    harness_run(h, 300);
    const struct harness_reply *g = harness_find(h, 500, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, 22);
    /* The old primary comes back, recovers and catches up. */
    harness_start(h, p);
    harness_run(h, 3000);
    assert_int_equal(replica_status(harness_core(h, p)), STATUS_NORMAL);
    assert_int_equal(h->r[p].total, 22);
}

/* The view notifications after a primary crash say why: each survivor
 * suspected the primary after at least its detector timeout of silence
 * (this harness gives no peer-down hints); the restarted replica rejoined
 * by recovery. */
static void view_change_reports_who_suspected_whom_and_recovery(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t old_view = replica_view(harness_core(h, p));
    harness_crash(h, p, false);
    harness_run(h, 3000);
    int q = harness_primary(h);
    assert_true(q >= 0);
    for (uint32_t i = 0; i < N; i++) {
        if (i == p)
            continue;
        const struct cohort_view_info *v = &h->r[i].last_view;
        assert_int_equal(v->view, replica_view(harness_core(h, i)));
        assert_int_equal(v->primary, (uint32_t)q);
        assert_int_equal(v->why.cause, COHORT_VIEW_CAUSE_SUSPECTED);
        assert_int_equal(v->why.by, i);
        assert_int_equal(v->why.suspect, p);
        assert_int_equal(v->why.from_view, old_view);
        assert_true(v->why.timeout_ms >= 150);
        assert_true(v->why.silence_ms > v->why.timeout_ms);
    }
    harness_start(h, p);
    harness_run(h, 3000);
    assert_int_equal(replica_status(harness_core(h, p)), STATUS_NORMAL);
    const struct cohort_view_info *v = &h->r[p].last_view;
    assert_int_equal(v->primary, (uint32_t)q);
    assert_int_equal(v->why.cause, COHORT_VIEW_CAUSE_RECOVERY);
    assert_int_equal(v->why.by, p);
}

static void isolated_backup_does_not_disturb_the_group_when_it_returns(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t b = (p + 1) % N;
    uint32_t view = replica_view(harness_core(h, p));
    harness_cut(h, b, true);
    harness_run(h, 5000); /* b suspects the primary and votes, alone */
    harness_cut(h, b, false);
    harness_run(h, 3000);
    assert_int_equal(harness_primary(h), (int)p);
    assert_int_equal(replica_view(harness_core(h, p)), view);
    assert_int_equal(replica_status(harness_core(h, b)), STATUS_NORMAL);
}

/* Every replica loses power at once: what was acknowledged was synced, and
 * comes back from the disks. */
static void whole_group_restart_keeps_committed_writes(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    for (uint64_t k = 1; k <= 10; k++)
        harness_submit(h, p, 200 + k, 1, 1);
    harness_run(h, 200);
    for (uint64_t k = 1; k <= 10; k++)
        assert_non_null(harness_find(h, 200 + k, 1, REPLY_OK));
    for (uint32_t i = 0; i < N; i++)
        harness_crash(h, i, true);
    harness_run(h, 100);
    harness_start_all(h);
    harness_run(h, 5000);
    int q = harness_primary(h);
    assert_true(q >= 0);
    harness_submit(h, (uint32_t)q, 300, 1, 1);
    harness_run(h, 300);
    const struct harness_reply *g = harness_find(h, 300, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(fresh_group_elects_a_primary, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_commits_on_all_and_is_answered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(backup_redirects_to_primary, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retried_request_is_applied_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(older_request_is_answered_stale_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            over_limit_refuses_new_requests_but_not_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(
            primary_crash_leads_to_new_primary_with_committed_state, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            view_change_reports_who_suspected_whom_and_recovery, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            isolated_backup_does_not_disturb_the_group_when_it_returns, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            whole_group_restart_keeps_committed_writes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
