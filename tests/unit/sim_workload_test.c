/* sim/workload: simulated clients retry the same request, follow hints,
 * give up only while allowed, and record a history for the checker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim/workload.h"

static const struct workload_config one_client = {
    .client_count = 1,
    .replica_count = 3,
    .ops_total = 3,
    .key_count = 2,
    .timeout_ms = 100,
    .think_max_ms = 0,
    .give_up_ms = 250,
    .give_up_ppm = 1000000,
};

/* A successful answer to the client's current command, as the store
 * words it (a transaction's reply for the transaction form). */
static void ok_reply(struct workload *w, uint64_t now, uint64_t op)
{
    const struct sim_client *c = &w->clients[0];
    const struct sim_history_op *h = &w->history[c->history];
    static const char *const plain[] = {[KVSM_GET] = "$1\r\n4\r\n",
                                        [KVSM_SET] = "+OK\r\n",
                                        [KVSM_CAS] = ":1\r\n",
                                        [KVSM_INCR] = ":4\r\n",
                                        [KVSM_DEL] = ":1\r\n"};
    char data[KVSM_REPLY_MAX];
    if (h->read || (h->cmd.form == KVSM_FORM_PLAIN && h->cmd.kind != KVSM_GET))
        snprintf(data, sizeof(data), "%s", plain[h->cmd.kind]);
    else if (h->cmd.kind == KVSM_CAS)
        snprintf(data, sizeof(data), "*2\r\n:1\r\n*1\r\n+OK\r\n");
    else
        snprintf(data, sizeof(data), "*1\r\n%s", plain[h->cmd.kind]);
    workload_on_reply(w, now, 0, c->client_id, c->request_no, REPLY_OK, 0, op,
                      (const uint8_t *)data, strlen(data));
}

static void a_timeout_resends_the_same_request_elsewhere(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 1);
    struct workload w;
    workload_init(&w, &p, &one_client, 0);
    struct workload_send s, t;
    uint64_t at;
    assert_true(workload_next_at(&w, &at));
    assert_true(workload_fire(&w, at, &s));
    assert_int_equal(s.request_no, 1);
    assert_int_equal(workload_outstanding(&w), 1);
    assert_true(workload_next_at(&w, &at));
    assert_int_equal(at, 100);
    assert_true(workload_fire(&w, at, &t));
    assert_int_equal(t.request_no, 1);
    assert_int_equal(t.client_id, s.client_id);
    assert_int_not_equal(t.replica, s.replica);
    assert_memory_equal(t.body, s.body, KVSM_BODY_SIZE);
    ok_reply(&w, 150, 1);
    assert_int_equal(workload_outstanding(&w), 0);
    assert_int_equal(w.history_count, 1);
    assert_true(w.history[0].done);
    assert_int_equal(w.history[0].invoke_ms, 0);
    assert_int_equal(w.history[0].response_ms, 150);
    assert_int_equal(w.history[0].sends, 2);
    workload_deinit(&w);
}

static void not_primary_follows_the_hint(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 2);
    struct workload w;
    workload_init(&w, &p, &one_client, 0);
    struct workload_send s;
    assert_true(workload_fire(&w, 0, &s));
    uint32_t hint = (s.replica + 1) % 3;
    workload_on_reply(&w, 5, 0, s.client_id, 1, REPLY_NOT_PRIMARY, hint, 0,
                      NULL, 0);
    uint64_t at;
    assert_true(workload_next_at(&w, &at));
    assert_true(workload_fire(&w, at, &s));
    assert_int_equal(s.replica, hint);
    assert_int_equal(s.request_no, 1);
    workload_deinit(&w);
}

static void giving_up_leaves_an_unknown_op_and_moves_on(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 3);
    struct workload w;
    workload_init(&w, &p, &one_client, 0);
    struct workload_send s;
    uint64_t at;
    assert_true(workload_fire(&w, 0, &s));
    while (workload_next_at(&w, &at) && w.history_count == 1 &&
           !w.history[0].unknown)
        workload_fire(&w, at, &s);
    assert_true(w.history[0].unknown);
    assert_true(at >= 250);
    assert_true(workload_fire(&w, at, &s));
    assert_int_equal(s.request_no, 2);
    /* Once faults heal nobody gives up. */
    w.no_give_up = true;
    for (int i = 0; i < 50; i++) {
        assert_true(workload_next_at(&w, &at));
        assert_true(workload_fire(&w, at, &s));
    }
    assert_false(w.history[1].unknown);
    ok_reply(&w, at + 1, 9);
    struct lin_op *ops;
    size_t n;
    workload_lin_ops(&w, &ops, &n);
    assert_int_equal(n, 2);
    assert_true(ops[0].unknown);
    assert_false(ops[1].unknown);
    free(ops);
    workload_deinit(&w);
}

static void an_expired_session_starts_a_new_one(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 4);
    struct workload w;
    workload_init(&w, &p, &one_client, 0);
    struct workload_send s;
    assert_true(workload_fire(&w, 0, &s));
    uint64_t first = s.client_id;
    workload_on_reply(&w, 5, 0, first, 1, REPLY_EXPIRED, 0, 0, NULL, 0);
    assert_true(w.history[0].unknown);
    uint64_t at;
    assert_true(workload_next_at(&w, &at));
    assert_true(workload_fire(&w, at, &s));
    assert_int_not_equal(s.client_id, first);
    assert_int_equal(s.request_no, 1);
    /* A stale reply for the old session changes nothing. */
    workload_on_reply(&w, 6, 0, first, 1, REPLY_OK, 0, 1, NULL, 0);
    assert_int_equal(workload_outstanding(&w), 1);
    workload_deinit(&w);
}

/* The history reaches the checker as the clients saw it: a read that
 * misses a completed write is caught. */
static void a_stale_read_in_the_history_is_not_linearizable(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 5);
    struct workload w;
    workload_init(&w, &p, &one_client, 0);
    struct sim_history_op *h = calloc(2, sizeof(*h));
    assert_non_null(h);
    h[0] = (struct sim_history_op){
        .cmd = {.kind = KVSM_SET, .key = 1, .arg = 5},
        .invoke_ms = 10,
        .response_ms = 20,
        .done = true,
        .reply = {1, 0},
    };
    h[1] = (struct sim_history_op){
        .cmd = {.kind = KVSM_GET, .key = 1},
        .invoke_ms = 30,
        .response_ms = 40,
        .done = true,
        .reply = {0, 0}, /* absent: stale */
    };
    free(w.history);
    w.history = h;
    w.history_count = 2;
    w.history_capacity = 2;
    struct lin_op *ops;
    size_t n;
    struct lin_result r;
    workload_lin_ops(&w, &ops, &n);
    lin_check(ops, n, LIN_BUDGET_UNLIMITED, &r);
    assert_false(r.ok);
    free(ops);
    h[1].reply = (struct kvsm_reply){1, 5};
    workload_lin_ops(&w, &ops, &n);
    lin_check(ops, n, LIN_BUDGET_UNLIMITED, &r);
    assert_true(r.ok);
    free(ops);
    /* An unknown write may have happened: a read may see it or not. */
    h[0].done = false;
    h[0].unknown = true;
    for (int seen = 0; seen < 2; seen++) {
        h[1].reply =
            seen ? (struct kvsm_reply){1, 5} : (struct kvsm_reply){0, 0};
        workload_lin_ops(&w, &ops, &n);
        lin_check(ops, n, LIN_BUDGET_UNLIMITED, &r);
        assert_true(r.ok);
        free(ops);
    }
    workload_deinit(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_timeout_resends_the_same_request_elsewhere),
        cmocka_unit_test(not_primary_follows_the_hint),
        cmocka_unit_test(giving_up_leaves_an_unknown_op_and_moves_on),
        cmocka_unit_test(an_expired_session_starts_a_new_one),
        cmocka_unit_test(a_stale_read_in_the_history_is_not_linearizable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
