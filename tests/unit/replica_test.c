/* The replica core in a tiny harness: three replicas, a FIFO network that
 * can cut a replica off, and a disk that persists at once. The simulator
 * (src/sim) does this with faults and many seeds; these tests pin down the
 * basic facts one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/replica.h"

#define N 3
#define QUEUE_MAX 100000

struct msg {
    uint32_t to;
    size_t size;
    uint8_t *data;
};

struct counter_sm {
    uint64_t total;
    uint64_t applied;
};

static size_t counter_apply(void *ctx, uint64_t op, uint64_t ts,
                            const uint8_t *body, size_t size, uint8_t *reply,
                            size_t reply_max)
{
    (void)op;
    (void)ts;
    struct counter_sm *sm = ctx;
    assert_true(size == 1);
    sm->total += body[0];
    sm->applied++;
    assert_true(reply_max >= 8);
    memcpy(reply, &sm->total, 8);
    return 8;
}

struct stored {
    struct entry e;
    uint8_t body[8];
};

struct node {
    struct replica *r;
    struct counter_sm sm;
    struct cohort_sm iface;
    bool up;
    bool cut; /* network cut off */
    /* durable state */
    bool meta_present;
    struct replica_meta meta;
    struct stored log[4096];
    uint64_t log_op;
    struct cohort_view_info last_view; /* the latest ACT_VIEW */
};

struct got_reply {
    uint64_t client_id, request_no, op, value;
    enum reply_status status;
};

static struct node nodes[N];
static struct msg *queue;
static size_t queue_head, queue_tail;
static uint64_t now;
static struct got_reply replies[1024];
static size_t reply_count;

/* Events produced while handling an action are queued, not stepped at once:
 * the replica's action list is only valid until its next step. */
struct pending {
    uint32_t node;
    enum event_type type;
    uint64_t a, b;
};
static struct pending pend[QUEUE_MAX];
static size_t pend_head, pend_tail;

static void carry_out(uint32_t i, const struct actions *acts)
{
    struct node *n = &nodes[i];
    for (uint32_t k = 0; k < acts->count; k++) {
        const struct action *a = &acts->list[k];
        switch (a->type) {
        case ACT_SEND: {
            struct msg *m = &queue[queue_tail++ % QUEUE_MAX];
            m->to = a->send.to;
            m->size = a->send.size;
            m->data = malloc(a->send.size);
            memcpy(m->data, a->send.data, a->send.size);
            if (n->cut || nodes[a->send.to].cut) {
                free(m->data);
                queue_tail--;
            }
            break;
        }
        case ACT_PERSIST:
            for (uint64_t op = a->persist.op_first; op <= a->persist.op_last;
                 op++) {
                const struct entry *e = replica_entry(n->r, op);
                assert_non_null(e);
                struct stored *s = &n->log[op];
                s->e = *e;
                memcpy(s->body, e->body, e->h.body_size);
                s->e.body = s->body;
            }
            n->log_op = a->persist.op_last;
            pend[pend_tail++ % QUEUE_MAX] = (struct pending){
                i, EV_PERSISTED, a->persist.op_last, a->persist.checksum};
            break;
        case ACT_PERSIST_META:
            n->meta = a->meta.meta;
            n->meta_present = true;
            pend[pend_tail++ % QUEUE_MAX] =
                (struct pending){i, EV_META_PERSISTED, a->meta.seq, 0};
            break;
        case ACT_REPLY: {
            struct got_reply *g = &replies[reply_count++ % 1024];
            g->client_id = a->reply.client_id;
            g->request_no = a->reply.request_no;
            g->status = a->reply.status;
            g->op = a->reply.op;
            g->value = 0;
            if (a->reply.status == REPLY_OK)
                memcpy(&g->value, a->reply.data, 8);
            break;
        }
        case ACT_VIEW:
            n->last_view = a->view;
            break;
        default:
            break;
        }
    }
}

static void step(uint32_t i, const struct event *ev)
{
    struct actions acts;
    replica_step(nodes[i].r, ev, &acts);
    carry_out(i, &acts);
}

static void boot(uint32_t i)
{
    struct node *n = &nodes[i];
    memset(&n->sm, 0, sizeof(n->sm));
    n->iface = (struct cohort_sm){.ctx = &n->sm, .apply = counter_apply};
    struct replica_config c;
    replica_config_defaults(&c, N, i, 42);
    c.sm = &n->iface;
    c.log_ops_max = 8192;
    c.log_bytes_max = 8u << 20;
    c.snapshot_interval_ops = 0;
    struct entry entries[4096];
    for (uint64_t op = 1; op <= n->log_op; op++)
        entries[op - 1] = n->log[op].e;
    struct replica_durable d = {
        .meta_present = n->meta_present,
        .view = n->meta.view,
        .last_normal_view = n->meta.last_normal_view,
        .entries = entries,
        .entry_count = n->log_op,
    };
    n->r = replica_init(&c, &d, now);
    assert_non_null(n->r);
    n->up = true;
}

static void crash(uint32_t i)
{
    replica_deinit(nodes[i].r);
    nodes[i].r = NULL;
    nodes[i].up = false;
}

/* Deliver everything queued, then tick everyone, for ms milliseconds. */
static void run(uint64_t ms)
{
    uint64_t end = now + ms;
    while (now < end) {
        for (int rounds = 0; rounds < 100000; rounds++) {
            if (pend_head != pend_tail) {
                struct pending p = pend[pend_head++ % QUEUE_MAX];
                if (!nodes[p.node].up)
                    continue;
                struct event ev = {.type = p.type, .now_ms = now};
                if (p.type == EV_PERSISTED) {
                    ev.persisted.op = p.a;
                    ev.persisted.checksum = p.b;
                } else {
                    ev.meta.seq = p.a;
                }
                step(p.node, &ev);
                continue;
            }
            if (queue_head == queue_tail)
                break;
            struct msg m = queue[queue_head++ % QUEUE_MAX];
            if (nodes[m.to].up && !nodes[m.to].cut) {
                struct event ev = {.type = EV_MESSAGE, .now_ms = now};
                ev.message.data = m.data;
                ev.message.size = m.size;
                step(m.to, &ev);
            }
            free(m.data);
        }
        now += 5;
        for (uint32_t i = 0; i < N; i++) {
            if (!nodes[i].up)
                continue;
            struct event ev = {.type = EV_TICK, .now_ms = now};
            step(i, &ev);
        }
    }
}

static int current_primary(void)
{
    for (uint32_t i = 0; i < N; i++)
        if (nodes[i].up && replica_is_primary(nodes[i].r))
            return (int)i;
    return -1;
}

static void submit(uint32_t i, uint64_t client, uint64_t request_no,
                   uint8_t amount)
{
    struct client_request req = {.client_id = client,
                                 .request_no = request_no,
                                 .body = &amount,
                                 .body_size = 1};
    struct event ev = {.type = EV_CLIENT_REQUEST, .now_ms = now};
    ev.client.requests = &req;
    ev.client.count = 1;
    step(i, &ev);
}

static const struct got_reply *find_reply(uint64_t client, uint64_t no,
                                          enum reply_status status)
{
    for (size_t k = 0; k < reply_count && k < 1024; k++)
        if (replies[k].client_id == client && replies[k].request_no == no &&
            replies[k].status == status)
            return &replies[k];
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(nodes, 0, sizeof(nodes));
    queue = calloc(QUEUE_MAX, sizeof(*queue));
    queue_head = queue_tail = pend_head = pend_tail = 0;
    reply_count = 0;
    now = 1000;
    for (uint32_t i = 0; i < N; i++)
        boot(i);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < N; i++)
        if (nodes[i].up)
            crash(i);
    while (queue_head != queue_tail)
        free(queue[queue_head++ % QUEUE_MAX].data);
    free(queue);
    return 0;
}

static void fresh_group_elects_a_primary(void **state)
{
    (void)state;
    run(2000);
    int p = current_primary();
    assert_true(p >= 0);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(replica_status(nodes[i].r), STATUS_NORMAL);
        assert_int_equal(replica_view(nodes[i].r), replica_view(nodes[p].r));
    }
}

static void request_commits_on_all_and_is_answered(void **state)
{
    (void)state;
    run(2000);
    int p = current_primary();
    assert_true(p >= 0);
    submit((uint32_t)p, 7, 1, 5);
    run(200);
    const struct got_reply *g = find_reply(7, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, 5);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(nodes[i].sm.total, 5);
        assert_int_equal(replica_commit(nodes[i].r), g->op);
    }
}

static void backup_redirects_to_primary(void **state)
{
    (void)state;
    run(2000);
    int p = current_primary();
    uint32_t b = (uint32_t)(p + 1) % N;
    submit(b, 7, 1, 5);
    const struct got_reply *g = find_reply(7, 1, REPLY_NOT_PRIMARY);
    assert_non_null(g);
    assert_int_equal(nodes[(uint32_t)p].sm.total, 0);
}

static void retried_request_is_applied_once(void **state)
{
    (void)state;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    submit(p, 9, 1, 3);
    submit(p, 9, 1, 3); /* in flight: dropped */
    run(200);
    submit(p, 9, 1, 3); /* applied: answered from the client table */
    run(200);
    assert_int_equal(nodes[p].sm.total, 3);
    size_t ok = 0;
    for (size_t k = 0; k < reply_count; k++)
        if (replies[k].client_id == 9 && replies[k].status == REPLY_OK) {
            assert_int_equal(replies[k].value, 3);
            ok++;
        }
    assert_int_equal(ok, 2);
}

static void submit_over_limit(uint32_t i, uint64_t client, uint64_t request_no,
                              uint8_t amount)
{
    struct client_request req = {.client_id = client,
                                 .request_no = request_no,
                                 .body = &amount,
                                 .body_size = 1,
                                 .over_limit = true};
    struct event ev = {.type = EV_CLIENT_REQUEST, .now_ms = now};
    ev.client.requests = &req;
    ev.client.count = 1;
    step(i, &ev);
}

/* Issue 11 item 3: a request older than the client's latest used to be
 * dropped without an answer (the client waited forever). */
static void older_request_is_answered_stale_at_once(void **state)
{
    (void)state;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    submit(p, 77, 1, 1);
    run(200);
    submit(p, 77, 2, 2);
    run(200);
    size_t before = reply_count;
    submit(p, 77, 1, 4); /* no run(): answered in the same step */
    assert_int_equal(reply_count, before + 1);
    assert_non_null(find_reply(77, 1, REPLY_STALE));
    run(200);
    assert_int_equal(nodes[p].sm.total, 3); /* not applied */
    /* The latest is still answered from the table. */
    submit(p, 77, 2, 2);
    assert_int_equal(reply_count, before + 2);
    assert_int_equal(replies[reply_count - 1].status, REPLY_OK);
}

/* over_limit refuses what is new, before it is proposed, and answers a
 * retry of an applied or in-flight request as usual. */
static void over_limit_refuses_new_requests_but_not_retries(void **state)
{
    (void)state;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    submit(p, 5, 1, 1);
    run(200);
    submit_over_limit(p, 5, 1, 1); /* applied: the stored reply */
    assert_int_equal(replies[reply_count - 1].status, REPLY_OK);
    submit_over_limit(p, 5, 2, 1); /* new: refused */
    assert_int_equal(replies[reply_count - 1].status, REPLY_OVER_LIMIT);
    submit(p, 6, 1, 1);
    submit_over_limit(p, 6, 1, 1); /* in flight: answered when it commits */
    run(200);
    assert_int_equal(nodes[p].sm.total, 2);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(nodes[i].sm.total, 2);
    size_t ok6 = 0;
    for (size_t k = 0; k < reply_count; k++)
        ok6 += replies[k].client_id == 6 && replies[k].status == REPLY_OK;
    assert_int_equal(ok6, 1);
    assert_null(find_reply(6, 1, REPLY_OVER_LIMIT));
}

static void primary_crash_leads_to_new_primary_with_committed_state(void **s)
{
    (void)s;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    for (uint64_t k = 1; k <= 20; k++)
        submit(p, 100 + k, 1, 1);
    run(200);
    assert_int_equal(nodes[p].sm.total, 20);
    crash(p);
    run(3000);
    int q = current_primary();
    assert_true(q >= 0);
    assert_int_not_equal(q, (int)p);
    submit((uint32_t)q, 500, 1, 2);
    run(300);
    const struct got_reply *g = find_reply(500, 1, REPLY_OK);
    assert_non_null(g);
    assert_int_equal(g->value, 22);
    /* The old primary comes back, recovers and catches up. */
    boot(p);
    run(3000);
    assert_int_equal(replica_status(nodes[p].r), STATUS_NORMAL);
    assert_int_equal(nodes[p].sm.total, 22);
}

/* The view notifications after a primary crash say why: each survivor
 * suspected the primary after at least its detector timeout of silence
 * (this harness gives no peer-down hints); the restarted replica rejoined
 * by recovery. */
static void view_change_reports_who_suspected_whom_and_recovery(void **s)
{
    (void)s;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    uint32_t old_view = replica_view(nodes[p].r);
    crash(p);
    run(3000);
    int q = current_primary();
    assert_true(q >= 0);
    for (uint32_t i = 0; i < N; i++) {
        if (i == p)
            continue;
        const struct cohort_view_info *v = &nodes[i].last_view;
        assert_int_equal(v->view, replica_view(nodes[i].r));
        assert_int_equal(v->primary, (uint32_t)q);
        assert_int_equal(v->why.cause, COHORT_VIEW_CAUSE_SUSPECTED);
        assert_int_equal(v->why.by, i);
        assert_int_equal(v->why.suspect, p);
        assert_int_equal(v->why.from_view, old_view);
        assert_true(v->why.timeout_ms >= 150);
        assert_true(v->why.silence_ms > v->why.timeout_ms);
    }
    boot(p);
    run(3000);
    assert_int_equal(replica_status(nodes[p].r), STATUS_NORMAL);
    const struct cohort_view_info *v = &nodes[p].last_view;
    assert_int_equal(v->primary, (uint32_t)q);
    assert_int_equal(v->why.cause, COHORT_VIEW_CAUSE_RECOVERY);
    assert_int_equal(v->why.by, p);
}

static void isolated_backup_does_not_disturb_the_group_when_it_returns(void **s)
{
    (void)s;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    uint32_t b = (p + 1) % N;
    uint32_t view = replica_view(nodes[p].r);
    nodes[b].cut = true;
    run(5000); /* b suspects the primary and votes, alone */
    nodes[b].cut = false;
    run(3000);
    assert_int_equal(current_primary(), (int)p);
    assert_int_equal(replica_view(nodes[p].r), view);
    assert_int_equal(replica_status(nodes[b].r), STATUS_NORMAL);
}

static void whole_group_restart_keeps_committed_writes(void **s)
{
    (void)s;
    run(2000);
    uint32_t p = (uint32_t)current_primary();
    for (uint64_t k = 1; k <= 10; k++)
        submit(p, 200 + k, 1, 1);
    run(200);
    for (uint32_t i = 0; i < N; i++)
        crash(i);
    run(100);
    for (uint32_t i = 0; i < N; i++)
        boot(i);
    run(5000);
    int q = current_primary();
    assert_true(q >= 0);
    submit((uint32_t)q, 300, 1, 1);
    run(300);
    const struct got_reply *g = find_reply(300, 1, REPLY_OK);
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
