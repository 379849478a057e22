/* The replica core through the driver, in a tiny harness (harness.h): three
 * replicas, a FIFO network that can cut a replica off, and a simulated disk
 * that persists as soon as the driver asks. The simulator (src/sim) does
 * this with faults and many seeds; these tests pin down the basic facts one
 * by one. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "core/message.h"
#include "harness.h"

#define N 3
#define BODY_SIZE 9 /* harness.c */

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
     * it learns that, not that the view changed (it did not). */
    assert_int_equal(first->answers, 1);
    assert_int_equal(first->outcome, DRIVER_SUPERSEDED);
    assert_int_equal(first->status, REPLY_SUPERSEDED);
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
    uint64_t old_view = replica_view(harness_core(h, p));
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
    uint64_t view = replica_view(harness_core(h, p));
    harness_cut(h, b, true);
    harness_run(h, 5000); /* b suspects the primary and votes, alone */
    harness_cut(h, b, false);
    harness_run(h, 3000);
    assert_int_equal(harness_primary(h), (int)p);
    assert_int_equal(replica_view(harness_core(h, p)), view);
    assert_int_equal(replica_status(harness_core(h, b)), STATUS_NORMAL);
}

/* A primary cut off with an op of its own past the others' logs: they
 * form the next view without it, and no client writes afterwards. Back,
 * it learns that view from the new primary's COMMITs; its stale op must
 * go (the new primary's state cuts it) and it must become a full backup
 * of the view. Before the fix (sim soak seed 991894020810) it kept the op
 * past its commit for good and never raised its last normal view. */
static void stale_op_of_an_old_view_goes_when_no_client_writes(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    for (uint64_t k = 1; k <= 5; k++)
        harness_submit(h, p, 300 + k, 1, 1);
    harness_run(h, 200);
    uint64_t op = replica_op(harness_core(h, p));
    harness_cut(h, p, true);
    harness_submit(h, p, 400, 1, 1); /* appended by p alone */
    harness_run(h, 100);
    assert_int_equal(replica_op(harness_core(h, p)), op + 1);
    harness_run(h, 3000);
    /* p, cut off, may still think itself primary of the older view. */
    uint32_t q = (p + 1) % N;
    if (!replica_is_primary(harness_core(h, q)))
        q = (p + 2) % N;
    assert_true(replica_is_primary(harness_core(h, q)));
    assert_true(replica_view(harness_core(h, q)) >
                replica_view(harness_core(h, p)));
    harness_cut(h, p, false);
    harness_run(h, 3000);
    assert_int_equal(harness_primary(h), (int)q);
    const struct replica *old = harness_core(h, p);
    assert_int_equal(replica_status(old), STATUS_NORMAL);
    assert_int_equal(replica_view(old), replica_view(harness_core(h, q)));
    assert_int_equal(replica_op(old), replica_op(harness_core(h, q)));
    assert_int_equal(replica_commit(old), replica_op(old));
    assert_null(harness_find(h, 400, 1, REPLY_OK));
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

/* ------------------------------------------------ forged peer messages */

/* Hand replica `to` a message as if its peer m->from had sent it (no
 * entries): the frames a stranger on the peer port could send. */
static void inject(uint32_t to, const struct message *m)
{
    uint8_t buf[1 + 256];
    buf[0] = DRIVER_FRAME_PROTOCOL;
    size_t n = message_encode(m, NULL, buf + 1, sizeof(buf) - 1);
    assert_true(n > 0);
    driver_frame(h->r[to].driver, m->from, buf, n + 1);
}

/* The same for a view message_encode() refuses to write (above VIEW_MAX):
 * encode it with view 0 and patch the view field (message.h, offset 8). */
static void inject_raw_view(uint32_t to, const struct message *m)
{
    struct message copy = *m;
    copy.view = 0;
    uint8_t buf[1 + 256];
    buf[0] = DRIVER_FRAME_PROTOCOL;
    size_t n = message_encode(&copy, NULL, buf + 1, sizeof(buf) - 1);
    assert_true(n > 0);
    put_u64(buf + 1 + 8, m->view);
    driver_frame(h->r[to].driver, m->from, buf, n + 1);
}

/* The lowest view above `above` whose primary is replica i. */
static uint64_t view_led_by(uint64_t above, uint32_t i)
{
    uint64_t v = above + 1;
    while (v % N != i)
        v++;
    return v;
}

/* Commits a write at the primary (whichever it is) and checks every
 * replica applied it. */
static void group_still_commits(uint64_t client_id, uint64_t total)
{
    int p = harness_primary(h);
    assert_true(p >= 0);
    harness_submit(h, (uint32_t)p, client_id, 1, 1);
    harness_run(h, 300);
    const struct harness_reply *g = harness_find(h, client_id, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, total);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(h->r[i].total, total);
}

/* Issue 17: a DO-VIEW-CHANGE whose commit is above its op, for a view the
 * receiver leads, killed the receiver (assertion commit <= r->log.op when
 * it counted the DVCs); two such messages took the group down. */
static void forged_dvc_with_commit_above_op_is_dropped(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    group_still_commits(1, 1);
    uint64_t view = replica_view(harness_core(h, p));
    for (uint32_t t = 0; t < N; t++) {
        uint32_t from = (t + 1) % N;
        struct message m = {
            .type = MSG_DO_VIEW_CHANGE,
            .from = (uint8_t)from,
            .view = view_led_by(view, t),
            .op = 0,
            .commit = 1000000,
        };
        inject(t, &m);
    }
    harness_run(h, 2000);
    for (uint32_t t = 0; t < N; t++) {
        assert_non_null(h->r[t].driver);
        assert_true(replica_stats(harness_core(h, t))->messages_invalid >= 1);
        assert_int_equal(replica_view(harness_core(h, t)), view);
    }
    assert_int_equal(harness_primary(h), (int)p);
    group_still_commits(2, 2);
}

/* Issue 17: START-VIEW-CHANGE votes for view 2^32 - 1, sent to every
 * replica as if from each other one, moved a healthy group into that view,
 * where view + 1 wrapped. Views are 64-bit now, and votes for views beyond
 * VIEW_MAX or more than 2^31 above the group's are dropped: the group
 * stays where it is. */
static void forged_vote_storm_for_huge_views_does_not_move_the_group(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint64_t view = replica_view(harness_core(h, p));
    const uint64_t huge[] = {
        UINT64_MAX, UINT64_MAX - 1, VIEW_MAX + 1,
        VIEW_MAX,   UINT32_MAX,     view + (UINT64_C(1) << 31) + 1,
    };
    for (uint32_t round = 0; round < 10; round++) {
        for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++)
            for (uint32_t t = 0; t < N; t++)
                for (uint32_t from = 0; from < N; from++) {
                    if (from == t)
                        continue;
                    struct message m = {.type = MSG_START_VIEW_CHANGE,
                                        .from = (uint8_t)from,
                                        .view = huge[k]};
                    if (m.view > VIEW_MAX)
                        inject_raw_view(t, &m);
                    else
                        inject(t, &m);
                }
        harness_run(h, 100);
    }
    harness_run(h, 2000);
    for (uint32_t t = 0; t < N; t++) {
        assert_int_equal(replica_status(harness_core(h, t)), STATUS_NORMAL);
        assert_int_equal(replica_view(harness_core(h, t)), view);
        const struct replica_stats *st = replica_stats(harness_core(h, t));
        /* 3 views above VIEW_MAX and 3 too far ahead, from 2 peers, 10
         * times. */
        assert_true(st->messages_invalid >= 3 * 2 * 10);
        assert_true(st->views_refused >= 3 * 2 * 10);
    }
    assert_int_equal(harness_primary(h), (int)p);
    group_still_commits(1, 1);
}

/* Votes from a quorum for a plausible view are a view change, forged or
 * not (without peer authentication the core cannot tell): the group moves
 * once and keeps working. Past 2^32 nothing wraps: two such jumps take it
 * to view 2^32 - 1, and the view change after that goes to 2^32. */
static void views_past_2_to_the_32_do_not_wrap(void **s)
{
    (void)s;
    harness_run(h, 2000);
    const uint64_t targets[] = {UINT64_C(1) << 31, UINT32_MAX};
    for (size_t k = 0; k < 2; k++) {
        for (uint32_t t = 0; t < N; t++)
            for (uint32_t from = 0; from < N; from++) {
                if (from == t)
                    continue;
                struct message m = {.type = MSG_START_VIEW_CHANGE,
                                    .from = (uint8_t)from,
                                    .view = targets[k]};
                inject(t, &m);
            }
        harness_run(h, 3000);
        int p = harness_primary(h);
        assert_true(p >= 0);
        assert_int_equal(replica_view(harness_core(h, (uint32_t)p)),
                         targets[k]);
    }
    group_still_commits(1, 1);
    uint32_t p = (uint32_t)harness_primary(h);
    harness_crash(h, p, false);
    harness_run(h, 3000);
    int q = harness_primary(h);
    assert_true(q >= 0);
    assert_true(replica_view(harness_core(h, (uint32_t)q)) > UINT32_MAX);
    harness_submit(h, (uint32_t)q, 2, 1, 1);
    harness_run(h, 300);
    const struct harness_reply *g = harness_find(h, 2, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, 2);
}

/* A COMMIT heartbeat "from the primary" of a view far above the group's
 * would make a backup leave its primary for a view nobody started. */
static void commit_from_a_far_view_is_not_followed(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint64_t view = replica_view(harness_core(h, p));
    for (uint32_t t = 0; t < N; t++) {
        uint32_t from = (t + 1) % N;
        struct message m = {
            .type = MSG_COMMIT,
            .from = (uint8_t)from,
            .view = view_led_by(view + (1u << 31), from),
        };
        inject(t, &m);
    }
    harness_run(h, 2000);
    for (uint32_t t = 0; t < N; t++)
        assert_int_equal(replica_view(harness_core(h, t)), view);
    assert_int_equal(harness_primary(h), (int)p);
    group_still_commits(1, 1);
}

/* Each kind of message the core cannot act on is dropped and counted once
 * (messages_invalid, or views_refused for a view too far ahead), whatever
 * it claims, and the group goes on as if it had never come: malformed
 * bytes, a field message_decode() refuses, and the checks against the
 * receiver's own state (its own index, another epoch, a size above
 * message_size_max, a view more than VIEW_JUMP_MAX ahead). */
static void every_kind_of_invalid_message_is_dropped_and_counted(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t b = (p + 1) % N;
    uint64_t view = replica_view(harness_core(h, p));
    const struct replica *r = harness_core(h, b);
    const struct replica_stats *st = replica_stats(r);
    const struct message honest = {.type = MSG_COMMIT,
                                   .from = (uint8_t)p,
                                   .view = view,
                                   .op = replica_commit(r),
                                   .commit = replica_commit(r)};
    struct {
        const char *what;
        struct message m;
        bool far; /* counted in views_refused */
    } cases[] = {
        {"from the receiver's own index", honest, false},
        {"of another epoch", honest, false},
        {"commit above op", honest, false},
        {"a DO-VIEW-CHANGE with commit above op", honest, false},
        {"a field its type does not use", honest, false},
        {"a vote 2^31 + 1 views ahead", honest, true},
        {"a COMMIT 2^32 views ahead", honest, true},
    };
    cases[0].m.from = (uint8_t)b;
    cases[1].m.epoch = 7;
    cases[2].m.commit = cases[2].m.op + 1;
    cases[3].m = (struct message){.type = MSG_DO_VIEW_CHANGE,
                                  .from = (uint8_t)p,
                                  .view = view_led_by(view, b),
                                  .commit = 1000000};
    cases[4].m.nonce = 1;
    cases[5].m = (struct message){.type = MSG_START_VIEW_CHANGE,
                                  .from = (uint8_t)p,
                                  .view = view + (UINT64_C(1) << 31) + 1};
    cases[6].m.view = view_led_by(view + (UINT64_C(1) << 32), p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t invalid = st->messages_invalid, far = st->views_refused;
        inject(b, &cases[i].m);
        if (st->messages_invalid != invalid + !cases[i].far ||
            st->views_refused != far + cases[i].far)
            fail_msg("%s: invalid %" PRIu64 " -> %" PRIu64 ", far %" PRIu64
                     " -> %" PRIu64,
                     cases[i].what, invalid, st->messages_invalid, far,
                     st->views_refused);
    }
    /* Bytes that are no message: too short, and a message cut short. */
    uint64_t invalid = st->messages_invalid;
    uint8_t buf[1 + MESSAGE_HEADER_SIZE];
    buf[0] = DRIVER_FRAME_PROTOCOL;
    size_t n = message_encode(&honest, NULL, buf + 1, sizeof(buf) - 1);
    driver_frame(h->r[b].driver, p, buf, 1 + n - 1);
    driver_frame(h->r[b].driver, p, buf, 1 + 7);
    assert_int_equal(st->messages_invalid, invalid + 2);
    /* A well-formed PREPARE too large for message_size_max. */
    uint32_t body_size = replica_message_size_max(r);
    uint8_t *body = calloc(1, body_size);
    assert_non_null(body);
    struct entry e = {.h = {.parent = 5,
                            .op = replica_op(r) + 1,
                            .client_id = 9,
                            .request_no = 1,
                            .view = view,
                            .body_size = body_size,
                            .kind = ENTRY_CLIENT},
                      .body = body};
    entry_seal(&e.h, body);
    struct message big = {.type = MSG_PREPARE,
                          .from = (uint8_t)p,
                          .view = view,
                          .op = e.h.op,
                          .commit = replica_commit(r),
                          .checksum = 5,
                          .base_op = e.h.op - 1,
                          .entry_count = 1};
    size_t cap = 1 + message_size(1, body_size);
    uint8_t *frame = malloc(cap);
    assert_non_null(frame);
    frame[0] = DRIVER_FRAME_PROTOCOL;
    n = message_encode(&big, &e, frame + 1, cap - 1);
    assert_true(n > body_size);
    driver_frame(h->r[b].driver, p, frame, n + 1);
    assert_int_equal(st->messages_invalid, invalid + 3);
    free(frame);
    free(body);
    harness_run(h, 2000);
    for (uint32_t t = 0; t < N; t++)
        assert_int_equal(replica_view(harness_core(h, t)), view);
    assert_int_equal(harness_primary(h), (int)p);
    group_still_commits(1, 1);
}

/* PREPAREs "from the primary" that each look sound but together grow a
 * backup's log far past its commit number (more than the pipeline lets a
 * correct primary run ahead) must not leave it unable to send its
 * DO-VIEW-CHANGE when the primary fails: each is dropped and counted. */
/* Spares (docs/PROTOCOL.md, "Spares: replacing a silent voter"): in a
 * universe of 4 whose epoch 0 has 3 voters, replica 3 starts as a spare
 * outside the membership and is added as a learner when it asks; when a
 * backup voter dies for longer than the grace period, the learner takes
 * its place; when the dead voter returns it is a learner, not a voter. */
static const struct membership *primary_membership(void)
{
    int p = harness_primary(h);
    assert_true(p >= 0);
    return replica_membership(harness_core(h, (uint32_t)p));
}

static void spare_registers_then_replaces_a_dead_voter(void **s)
{
    (void)s;
    h = harness_new(4, 42);
    h->config.replica.initial_voters = 3;
    h->config.replica.replace_after_ms = 400;
    h->config.replica.spare = true; /* matters only outside the membership */
    harness_start_all(h);
    harness_run(h, 2000);
    const struct membership *m = primary_membership();
    assert_true(membership_is_learner(m, 3));
    assert_int_equal(m->voter_count, 3);
    uint32_t p = (uint32_t)harness_primary(h);
    assert_int_equal(replica_stats(harness_core(h, p))->spares_added, 1);
    for (uint64_t k = 1; k <= 10; k++)
        harness_submit(h, p, 100 + k, 1, 1);
    harness_run(h, 300);
    /* A grace period's silence of a voter replaces nothing yet... */
    uint32_t dead = m->voters[1] == p ? m->voters[2] : m->voters[1];
    harness_crash(h, dead, false);
    harness_run(h, 300);
    assert_true(membership_is_voter(primary_membership(), dead));
    /* ... longer does, once. */
    harness_run(h, 2000);
    m = primary_membership();
    assert_true(membership_is_voter(m, 3));
    assert_true(membership_is_learner(m, dead));
    assert_int_equal(m->voter_count, 3);
    p = (uint32_t)harness_primary(h);
    assert_int_equal(replica_stats(harness_core(h, p))->replacements, 1);
    /* Reported as a replacement, naming the voter replaced. */
    assert_int_equal(h->r[p].last_view.why.cause,
                     COHORT_VIEW_CAUSE_REPLACEMENT);
    assert_int_equal(h->r[p].last_view.why.suspect, dead);
    /* The group commits with the new voter; the dead one returns as a
     * learner, catches up, and stays one. */
    harness_submit(h, p, 500, 1, 2);
    harness_run(h, 300);
    assert_non_null(harness_find(h, 500, 1, REPLY_OK));
    harness_start(h, dead);
    harness_run(h, 3000);
    m = primary_membership();
    assert_true(membership_is_learner(m, dead));
    assert_true(membership_is_voter(m, 3));
    assert_int_equal(replica_membership(harness_core(h, dead))->epoch,
                     m->epoch);
    assert_int_equal(replica_status(harness_core(h, dead)), STATUS_NORMAL);
    assert_int_equal(h->r[dead].total, 12);
    assert_int_equal(h->r[3].total, 12);
}

/* A replica that learns a new epoch while cut off, installs a snapshot
 * taken past the epoch's first entry E, and crashes before the new epoch's
 * metadata is on disk restarts in the old epoch with its log starting past
 * E. Its snapshot holds committed state, so it holds the decided E: it
 * must accept the NEW_EPOCH it is sent (it refused every one, forever,
 * because E's checksum is not in its log; sim seed swarm 9 --replicas 5
 * --replace-after 300 --spares 2 found it). */
static void crash_installing_a_snapshot_past_the_epoch_start(void **s)
{
    (void)s;
    h = harness_new(N, 42);
    h->config.replica.snapshot_interval_ops = 4;
    harness_start_all(h);
    harness_run(h, 500);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t x = (p + 1) % N;
    harness_cut(h, x, true);
    for (uint64_t k = 1; k <= 3; k++)
        harness_submit(h, p, 100 + k, 1, 1);
    harness_run(h, 200);
    /* A new epoch with the same voters, ordered while x is away. */
    struct membership next = *replica_membership(harness_core(h, p));
    struct reconfig_answer a;
    driver_reconfig(h->r[p].driver, &next, &a);
    assert_int_equal(a.result, RECONFIG_PROPOSED);
    harness_run(h, 300);
    p = (uint32_t)harness_primary(h);
    assert_int_equal(replica_membership(harness_core(h, p))->epoch, 1);
    uint64_t e_op = a.op;
    /* Enough writes that the members' snapshots and logs start past E. */
    for (uint64_t k = 1; k <= 20; k++) {
        harness_submit(h, p, 200 + k, 1, 1);
        harness_run(h, 20);
    }
    harness_run(h, 300);
    assert_true(replica_log_base(harness_core(h, p)) > e_op);
    /* x comes back with its disk writes held: it enters the epoch and
     * installs a snapshot, but its metadata never reaches the disk. */
    h->r[x].hold_storage = true;
    harness_cut(h, x, false);
    harness_run(h, 300);
    assert_true(h->r[x].restores > 0);
    assert_true(replica_log_base(harness_core(h, x)) > e_op);
    harness_crash(h, x, false);
    h->r[x].hold_storage = false;
    harness_start(h, x);
    assert_int_equal(replica_membership(harness_core(h, x))->epoch, 0);
    assert_true(replica_log_base(harness_core(h, x)) > e_op);
    /* It learns the epoch, takes part and catches up. */
    harness_run(h, 2000);
    assert_int_equal(replica_membership(harness_core(h, x))->epoch, 1);
    assert_int_equal(replica_status(harness_core(h, x)), STATUS_NORMAL);
    group_still_commits(300, 24);
}

/* Ask the primary for the next epoch (the CLI's COHORT.RECONFIG). */
static void reconfig(uint32_t p, const struct membership *next)
{
    struct reconfig_answer a;
    driver_reconfig(h->r[p].driver, next, &a);
    assert_int_equal(a.result, RECONFIG_PROPOSED);
    harness_run(h, 500);
}

/* A voter removed by a membership change knows it was removed (not merely
 * outside, as an id never added is), across a restart, and takes no part;
 * added back, it is a member again and forgets it. */
static void a_removed_voter_knows_it_left_until_added_back(void **s)
{
    (void)s;
    h = harness_new(4, 42);
    h->config.replica.initial_voters = 3;
    harness_start_all(h);
    harness_run(h, 2000);
    const struct replica *spare = harness_core(h, 3);
    assert_true(replica_removed(spare));
    assert_false(replica_left(spare)); /* never added */
    uint32_t p = (uint32_t)harness_primary(h);
    struct membership m = *primary_membership();
    uint32_t b = m.voters[1] == p ? m.voters[2] : m.voters[1];
    struct membership next = {.voter_count = 2, .voters = {p, 3 - p - b}};
    reconfig(p, &next);
    const struct replica *gone = harness_core(h, b);
    assert_int_equal(replica_membership(gone)->epoch, 1);
    assert_true(replica_removed(gone));
    assert_true(replica_left(gone));
    assert_int_equal(replica_status(gone), STATUS_RECOVERING);
    assert_false(replica_left(harness_core(h, 3)));
    /* The other two commit without it. */
    harness_submit(h, p, 100, 1, 1);
    harness_run(h, 300);
    assert_non_null(harness_find(h, 100, 1, REPLY_OK));
    assert_int_equal(h->r[b].total, 0);
    /* Restarted, it knows from its metadata alone. */
    harness_crash(h, b, false);
    harness_start(h, b);
    assert_true(replica_left(harness_core(h, b)));
    harness_run(h, 500);
    assert_true(replica_left(harness_core(h, b)));
    assert_int_equal(replica_status(harness_core(h, b)), STATUS_RECOVERING);
    /* Added back as a learner: a member again, caught up. */
    p = (uint32_t)harness_primary(h);
    next = *primary_membership();
    next.learners[next.learner_count++] = b;
    reconfig(p, &next);
    harness_run(h, 1500);
    gone = harness_core(h, b);
    assert_false(replica_removed(gone));
    assert_false(replica_left(gone));
    assert_true(membership_is_learner(replica_membership(gone), b));
    assert_int_equal(replica_status(gone), STATUS_NORMAL);
    assert_int_equal(h->r[b].total, 1);
}

/* A voter whose disk was emptied, told by its host that the group holds
 * data (replica_distrust_fresh(): the runtime hears the group's
 * incarnation in a peer's handshake), counts as damaged: with a lagging
 * replica it does not choose a primary from the laggard's shorter log; it
 * waits for the replica holding the acknowledged ops, and once repaired
 * both marks clear. Without the call (the mutant) the two form a view and
 * lose the ops. */
static void wiped(bool distrust)
{
    h = harness_new(N, 42);
    harness_start_all(h);
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t lag = (p + 1) % N, wiped_id = (p + 2) % N;
    harness_crash(h, lag, false);
    for (uint64_t k = 1; k <= 10; k++)
        harness_submit(h, p, 100 + k, 1, 1);
    harness_run(h, 300);
    for (uint64_t k = 1; k <= 10; k++)
        assert_non_null(harness_find(h, 100 + k, 1, REPLY_OK));
    harness_crash(h, p, false);
    harness_crash(h, wiped_id, false);
    harness_wipe(h, wiped_id);
    harness_start(h, lag);
    harness_start(h, wiped_id);
    const struct replica *w = harness_core(h, wiped_id);
    assert_true(replica_fresh(w));
    assert_false(replica_damaged(w));
    if (distrust)
        driver_distrust_fresh(h->r[wiped_id].driver);
    harness_run(h, 3000);
    int q = harness_primary(h);
    if (!distrust) {
        /* The loss this guards against: a primary without the ops. */
        assert_true(q >= 0);
        assert_int_equal(h->r[q].total, 0);
        return;
    }
    assert_int_equal(q, -1);
    assert_true(replica_damaged(harness_core(h, wiped_id)));
    harness_start(h, p);
    harness_run(h, 3000);
    q = harness_primary(h);
    assert_true(q >= 0);
    harness_submit(h, (uint32_t)q, 200, 1, 1);
    harness_run(h, 500);
    const struct harness_reply *g = harness_find(h, 200, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, 11);
    w = harness_core(h, wiped_id);
    assert_int_equal(replica_status(w), STATUS_NORMAL);
    assert_false(replica_damaged(w));
    assert_false(replica_fresh(w));
    assert_int_equal(h->r[wiped_id].total, 11);
}

static void a_wiped_voter_told_the_group_has_data_waits(void **s)
{
    (void)s;
    wiped(true);
}

static void a_wiped_voter_not_told_loses_acknowledged_ops(void **s)
{
    (void)s;
    wiped(false);
}

/* Two voters' disks emptied while the group was down, the third whole
 * (as after restoring one member only): the two empty ones, told the
 * group holds data, must not agree among themselves that nobody ever
 * stored anything and start an empty group beside the one with the data.
 * Either no primary forms, or one that holds every acknowledged op. */
static void
two_wiped_voters_told_the_group_has_data_start_nothing_empty(void **s)
{
    (void)s;
    h = harness_new(N, 42);
    harness_start_all(h);
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    for (uint64_t k = 1; k <= 10; k++)
        harness_submit(h, p, 100 + k, 1, 1);
    harness_run(h, 300);
    for (uint32_t i = 0; i < N; i++)
        harness_crash(h, i, false);
    uint32_t a = (p + 1) % N, b = (p + 2) % N;
    harness_wipe(h, a);
    harness_wipe(h, b);
    harness_start(h, a);
    harness_start(h, b);
    driver_distrust_fresh(h->r[a].driver);
    driver_distrust_fresh(h->r[b].driver);
    harness_run(h, 3000); /* the one with the data starts late */
    int q = harness_primary(h);
    if (q >= 0)
        assert_int_equal(h->r[q].total, 10);
    harness_start(h, p);
    harness_run(h, 5000);
    q = harness_primary(h);
    if (q >= 0)
        assert_int_equal(h->r[q].total, 10);
    for (uint32_t i = 0; i < N; i++)
        if (replica_status(harness_core(h, i)) == STATUS_NORMAL)
            assert_int_equal(h->r[i].total, 10);
}

static void forged_prepares_past_the_pipeline_are_dropped(void **s)
{
    (void)s;
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t b = (p + 1) % N;
    const struct replica *r = harness_core(h, b);
    uint64_t view = replica_view(r);
    uint64_t invalid = replica_stats(r)->messages_invalid;
    uint64_t commit = replica_commit(r);
    enum { COUNT = 256 };
    /* Bodies the harness's counter takes: the entries are "committed" by
     * the view change (peer authentication, not the core, stops that). */
    static uint8_t body[BODY_SIZE]; /* harness.c: amount, request_no */
    size_t cap = 1 + message_size(COUNT, (size_t)COUNT * BODY_SIZE);
    uint8_t *frame = malloc(cap);
    struct entry *e = calloc(COUNT, sizeof(*e));
    assert_non_null(frame);
    assert_non_null(e);
    for (uint32_t round = 0; round < 16; round++) {
        uint64_t base = replica_op(r);
        const struct entry *last = replica_entry(r, base);
        uint64_t parent = last ? last->h.checksum : 0;
        for (uint32_t k = 0; k < COUNT; k++) {
            e[k].h = (struct entry_header){.parent = parent,
                                           .op = base + 1 + k,
                                           .client_id = 99,
                                           .request_no = base + 1 + k,
                                           .view = view,
                                           .body_size = BODY_SIZE,
                                           .kind = ENTRY_CLIENT};
            e[k].body = body;
            entry_seal(&e[k].h, body);
            parent = e[k].h.checksum;
        }
        struct message m = {.type = MSG_PREPARE,
                            .from = (uint8_t)p,
                            .view = view,
                            .op = base + COUNT,
                            .commit = commit,
                            .checksum = last ? last->h.checksum : 0,
                            .base_op = base,
                            .entry_count = COUNT};
        frame[0] = DRIVER_FRAME_PROTOCOL;
        size_t n = message_encode(&m, e, frame + 1, cap - 1);
        assert_true(n > 0);
        driver_frame(h->r[b].driver, p, frame, n + 1);
        harness_run(h, 5);
    }
    free(frame);
    free(e);
    harness_crash(h, p, false);
    harness_run(h, 3000);
    assert_true(replica_stats(r)->messages_invalid > invalid);
    int q = harness_primary(h);
    assert_true(q >= 0 && (uint32_t)q != p);
}

/* Issue 12: a snapshot being sent pins the sender's log back to its op.
 * Replica `peer` is cut off (it stands for a new member busy installing);
 * a GET_STATE from it below the primary's log base draws a snapshot at S.
 * Returns S after `more` further writes (snapshots every 16 ops meanwhile)
 * and leaves the primary in *primary. */
#define PIN_INTERVAL 16

static uint64_t pin_setup(uint32_t bugs, uint32_t pin_ms, uint32_t *primary,
                          uint32_t *peer)
{
    h = harness_new(N, 42);
    h->config.replica.snapshot_interval_ops = PIN_INTERVAL;
    h->config.replica.bugs = bugs;
    if (pin_ms)
        h->config.replica.transfer_pin_ms = pin_ms;
    harness_start_all(h);
    harness_run(h, 1000);
    int p = harness_primary(h);
    assert_true(p >= 0);
    *primary = (uint32_t)p;
    *peer = ((uint32_t)p + 1) % N;
    for (uint64_t k = 1; k <= 3 * PIN_INTERVAL; k++) {
        harness_submit(h, *primary, 1000 + k, 1, 1);
        harness_run(h, 20);
    }
    const struct replica *r = harness_core(h, *primary);
    assert_true(replica_log_base(r) > 0);
    harness_cut(h, *peer, true);
    struct message get = {.type = MSG_GET_STATE,
                          .from = *peer,
                          .view = replica_view(r),
                          .commit = 0,
                          .base_op = 0,
                          .checksum = 0};
    inject(*primary, &get);
    uint64_t sent = replica_snapshot_op(r);
    assert_true(sent >= replica_log_base(r));
    return sent;
}

static void pin_writes(uint32_t primary, uint64_t from, uint64_t count)
{
    for (uint64_t k = 0; k < count; k++) {
        harness_submit(h, primary, from + k, 1, 1);
        harness_run(h, 20);
    }
}

static void snapshot_being_sent_keeps_the_log_after_it(void **s)
{
    (void)s;
    uint32_t p, peer;
    uint64_t sent = pin_setup(0, 0, &p, &peer);
    pin_writes(p, 2000, 3 * PIN_INTERVAL);
    const struct replica *r = harness_core(h, p);
    /* Newer snapshots were taken, but the log still starts at or before
     * the snapshot sent: the peer can continue from it. */
    assert_true(replica_snapshot_op(r) > sent + PIN_INTERVAL);
    assert_true(replica_log_base(r) <= sent);
    assert_true(replica_stats(r)->compactions_pinned > 0);
    /* The peer asks for the log after the snapshot it installed, and is
     * served all of it: the pin goes, and the next compaction passes. */
    struct message get = {.type = MSG_GET_STATE,
                          .from = peer,
                          .view = replica_view(r),
                          .commit = sent,
                          .base_op = sent,
                          .checksum = 0};
    inject(p, &get); /* (checksum 0 differs: served from its commit, sent) */
    pin_writes(p, 3000, 3 * PIN_INTERVAL);
    assert_true(replica_log_base(r) > sent);
}

/* The mutant: compaction ignores the pin, and the log after the snapshot
 * being sent is gone after the next snapshot or two. */
static void pin_off_mutant_compacts_past_the_snapshot_sent(void **s)
{
    (void)s;
    uint32_t p, peer;
    uint64_t sent = pin_setup(BUG_PIN_OFF, 0, &p, &peer);
    pin_writes(p, 2000, 3 * PIN_INTERVAL);
    const struct replica *r = harness_core(h, p);
    assert_true(replica_log_base(r) > sent);
    assert_int_equal(replica_stats(r)->compactions_pinned, 0);
}

/* A peer that stops asking (dead) releases its pin after transfer_pin_ms. */
static void pin_expires_when_the_peer_stops_asking(void **s)
{
    (void)s;
    uint32_t p, peer;
    uint64_t sent = pin_setup(0, 500, &p, &peer);
    pin_writes(p, 2000, PIN_INTERVAL + 4);
    const struct replica *r = harness_core(h, p);
    assert_true(replica_log_base(r) <= sent); /* still pinned */
    harness_run(h, 600);
    pin_writes(p, 3000, 3 * PIN_INTERVAL);
    assert_true(replica_log_base(r) > sent);
}

/* However long the pin, the log compacts before it fills: writes go on
 * (the pin keeps at most half of the log's slots). */
static void pin_never_fills_the_log(void **s)
{
    (void)s;
    h = harness_new(N, 42);
    h->config.replica.snapshot_interval_ops = PIN_INTERVAL;
    h->config.replica.pipeline_ops_max = 8;
    h->config.replica.log_ops_max = 2 * 8 + PIN_INTERVAL; /* the minimum */
    harness_start_all(h);
    harness_run(h, 1000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t peer = (p + 1) % N;
    pin_writes(p, 1000, 3 * PIN_INTERVAL);
    harness_cut(h, peer, true);
    const struct replica *r = harness_core(h, p);
    struct message get = {.type = MSG_GET_STATE,
                          .from = peer,
                          .view = replica_view(r),
                          .base_op = 0};
    inject(p, &get);
    uint64_t sent = replica_snapshot_op(r);
    uint64_t ops = 10 * PIN_INTERVAL;
    pin_writes(p, 2000, ops);
    for (uint64_t k = 0; k < ops; k++)
        assert_non_null(harness_find(h, 2000 + k, 1, REPLY_OK));
    assert_true(replica_log_base(r) > sent); /* the pin was cut short */
    assert_true(replica_stats(r)->pins_overrun > 0);
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
            stale_op_of_an_old_view_goes_when_no_client_writes, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            isolated_backup_does_not_disturb_the_group_when_it_returns, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            whole_group_restart_keeps_committed_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(
            forged_dvc_with_commit_above_op_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            forged_vote_storm_for_huge_views_does_not_move_the_group, setup,
            teardown),
        cmocka_unit_test_setup_teardown(views_past_2_to_the_32_do_not_wrap,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(commit_from_a_far_view_is_not_followed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            every_kind_of_invalid_message_is_dropped_and_counted, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            forged_prepares_past_the_pipeline_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            spare_registers_then_replaces_a_dead_voter, NULL, teardown),
        cmocka_unit_test_setup_teardown(
            crash_installing_a_snapshot_past_the_epoch_start, NULL, teardown),
        cmocka_unit_test_setup_teardown(
            a_removed_voter_knows_it_left_until_added_back, NULL, teardown),
        cmocka_unit_test_setup_teardown(
            a_wiped_voter_told_the_group_has_data_waits, NULL, teardown),
        cmocka_unit_test_setup_teardown(
            a_wiped_voter_not_told_loses_acknowledged_ops, NULL, teardown),
        cmocka_unit_test_setup_teardown(
            two_wiped_voters_told_the_group_has_data_start_nothing_empty, NULL,
            teardown),
        cmocka_unit_test_setup_teardown(
            snapshot_being_sent_keeps_the_log_after_it, NULL, teardown),
        cmocka_unit_test_setup_teardown(
            pin_off_mutant_compacts_past_the_snapshot_sent, NULL, teardown),
        cmocka_unit_test_setup_teardown(pin_expires_when_the_peer_stops_asking,
                                        NULL, teardown),
        cmocka_unit_test_setup_teardown(pin_never_fills_the_log, NULL,
                                        teardown),
    };
    const char *filter = getenv("CMOCKA_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
