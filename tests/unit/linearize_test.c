/* Tests for the linearizability checker: hand-built histories for each rule
 * of the model, unknown outcomes, per-key checking and the budget; random
 * histories made from real sequential executions (linearizable by
 * construction) and then corrupted; and agreement with a brute-force
 * checker that tries every order on small random histories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/linearize.h"

#define HISTORY_MAX 1024
#define BUDGET 1000000

struct history {
    struct lin_op ops[HISTORY_MAX];
    size_t count;
};

static struct history *history_new(void)
{
    struct history *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    return h;
}

/* Append an ok op; ids count from 1 in the order ops are added. */
static struct lin_op *add(struct history *h, uint64_t key, enum lin_kind kind,
                          uint64_t invoke, uint64_t response)
{
    assert_true(h->count < HISTORY_MAX);
    struct lin_op *op = &h->ops[h->count++];
    memset(op, 0, sizeof(*op));
    op->key = key;
    op->kind = kind;
    op->invoke = invoke;
    op->response = response;
    op->id = h->count;
    return op;
}

static void get(struct history *h, uint64_t key, uint64_t invoke,
                uint64_t response, int64_t value)
{
    add(h, key, LIN_GET, invoke, response)->result = value;
}

static void get_absent(struct history *h, uint64_t key, uint64_t invoke,
                       uint64_t response)
{
    add(h, key, LIN_GET, invoke, response)->result_absent = true;
}

static void set(struct history *h, uint64_t key, uint64_t invoke,
                uint64_t response, int64_t value)
{
    add(h, key, LIN_SET, invoke, response)->arg1 = value;
}

static void cas(struct history *h, uint64_t key, uint64_t invoke,
                uint64_t response, int64_t expected, int64_t value,
                int64_t result)
{
    struct lin_op *op = add(h, key, LIN_CAS, invoke, response);
    op->arg1 = expected;
    op->arg2 = value;
    op->result = result;
}

static void incr(struct history *h, uint64_t key, uint64_t invoke,
                 uint64_t response, int64_t delta, int64_t result)
{
    struct lin_op *op = add(h, key, LIN_INCR, invoke, response);
    op->arg1 = delta;
    op->result = result;
}

static void del(struct history *h, uint64_t key, uint64_t invoke,
                uint64_t response, int64_t result)
{
    add(h, key, LIN_DEL, invoke, response)->result = result;
}

static void clear(struct history *h, uint64_t key, uint64_t invoke,
                  uint64_t response)
{
    add(h, key, LIN_CLEAR, invoke, response)->result = -777; /* unchecked */
}

/* The last op added got no reply. */
static void lost(struct history *h)
{
    struct lin_op *op = &h->ops[h->count - 1];
    op->unknown = true;
    op->response = UINT64_MAX;
    op->result = -12345; /* never looked at */
}

static bool linearizable(const struct history *h)
{
    struct lin_result r;
    lin_check(h->ops, h->count, BUDGET, &r);
    assert_false(r.gave_up);
    if (r.ok)
        assert_int_equal(r.ops_checked, h->count);
    return r.ok;
}

static void sequential_history_is_linearizable(void **state)
{
    (void)state;
    struct history *h = history_new();
    get_absent(h, 1, 0, 1);
    set(h, 1, 2, 3, 1);
    get(h, 1, 4, 5, 1);
    incr(h, 1, 6, 7, 2, 3);
    cas(h, 1, 8, 9, 3, 4, 1);
    get(h, 1, 10, 11, 4);
    del(h, 1, 12, 13, 1);
    get_absent(h, 1, 14, 15);

    struct lin_result r;
    lin_check(h->ops, h->count, BUDGET, &r);
    assert_true(r.ok);
    assert_false(r.gave_up);
    assert_int_equal(r.ops_checked, 8);
    assert_int_equal(r.states_explored, 8); /* one path, no backtracking */
    free(h);
}

static void concurrent_writes_allow_either_order(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 10, 1);
    set(h, 1, 0, 10, 2);
    get(h, 1, 20, 30, 1);
    assert_true(linearizable(h));
    h->ops[2].result = 2;
    assert_true(linearizable(h));
    h->ops[2].result = 3;
    assert_false(linearizable(h));
    h->ops[2].result_absent = true;
    assert_false(linearizable(h));
    free(h);
}

static void stale_read_after_completed_write_is_not_linearizable(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 7, 0, 10, 1);
    set(h, 7, 20, 30, 2);
    get(h, 7, 40, 50, 1);

    struct lin_result r;
    lin_check(h->ops, h->count, BUDGET, &r);
    assert_false(r.ok);
    assert_false(r.gave_up);
    assert_int_equal(r.key, 7);
    assert_non_null(strstr(r.message, "key 7 is not linearizable"));
    assert_non_null(strstr(r.message, "op 3 GET -> 1 [40,50] cannot"));
    assert_non_null(strstr(r.message, "2 of 3 ops:"));
    assert_non_null(strstr(r.message, "op 2 SET 2 [20,30], leaving 2"));

    /* The same read while the second write is in flight is fine. */
    h->ops[2].invoke = 25;
    h->ops[2].response = 50;
    assert_true(linearizable(h));
    free(h);
}

static void lost_acknowledged_write_is_detected(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 10, 5);
    get_absent(h, 1, 20, 30);
    assert_false(linearizable(h));

    struct history *g = history_new();
    set(g, 1, 0, 10, 5);
    incr(g, 1, 20, 30, 1, 6);
    incr(g, 1, 40, 50, 1, 1); /* as if the first INCR were lost */
    assert_false(linearizable(g));
    g->ops[2].result = 7;
    assert_true(linearizable(g));
    free(g);
    free(h);
}

static void unknown_write_may_take_effect_late(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 10, 1);
    set(h, 1, 5, 0, 2);
    lost(h);
    get(h, 1, 20, 30, 1);
    get(h, 1, 100, 110, 2);
    assert_true(linearizable(h));

    /* Once seen, it has taken effect: the old value cannot come back. */
    get(h, 1, 120, 130, 1);
    assert_false(linearizable(h));
    free(h);
}

static void unknown_write_may_never_take_effect(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 10, 1);
    set(h, 1, 5, 0, 2);
    lost(h);
    incr(h, 1, 6, 0, 10, 0);
    lost(h);
    get(h, 1, 100, 110, 1);
    get(h, 1, 200, 210, 1);
    assert_true(linearizable(h));

    free(h);

    /* Never, not merely after everything else: this INCR would overflow
     * wherever it went, so it cannot have taken effect at all. */
    struct history *f = history_new();
    set(f, 1, 0, 10, INT64_MAX);
    incr(f, 1, 20, 0, 1, 0);
    lost(f);
    get(f, 1, 30, 40, INT64_MAX);
    assert_true(linearizable(f));
    free(f);

    /* But it cannot take effect before it was sent. */
    struct history *g = history_new();
    set(g, 1, 0, 10, 1);
    get(g, 1, 20, 30, 2);
    set(g, 1, 40, 0, 2);
    lost(g);
    assert_false(linearizable(g));
    g->ops[2].invoke = 25;
    assert_true(linearizable(g));
    free(g);
}

static void cas_success_requires_matching_value(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 10, 1);
    cas(h, 1, 20, 30, 2, 3, 1);
    assert_false(linearizable(h));
    h->ops[1].result = 0;
    assert_true(linearizable(h));

    struct history *g = history_new();
    set(g, 1, 0, 10, 1);
    cas(g, 1, 20, 30, 1, 3, 1);
    get(g, 1, 40, 50, 3);
    assert_true(linearizable(g));
    g->ops[1].result = 0; /* it matched, so it must have stored */
    assert_false(linearizable(g));
    free(g);
    free(h);
}

static void cas_on_missing_key_never_matches(void **state)
{
    (void)state;
    struct history *h = history_new();
    cas(h, 1, 0, 10, 0, 5, 1);
    assert_false(linearizable(h));
    h->ops[0].result = 0;
    get_absent(h, 1, 20, 30);
    assert_true(linearizable(h));

    struct history *g = history_new();
    set(g, 1, 0, 10, 0);
    del(g, 1, 20, 30, 1);
    cas(g, 1, 40, 50, 0, 5, 1);
    assert_false(linearizable(g));
    free(g);
    free(h);
}

static void incr_on_absent_starts_from_zero(void **state)
{
    (void)state;
    struct history *h = history_new();
    incr(h, 1, 0, 10, 5, 5);
    incr(h, 1, 20, 30, -7, -2);
    get(h, 1, 40, 50, -2);
    assert_true(linearizable(h));
    h->ops[0].result = 6;
    assert_false(linearizable(h));

    /* An INCR that would overflow changes nothing, so no ok INCR can. */
    struct history *g = history_new();
    set(g, 1, 0, 10, INT64_MAX);
    incr(g, 1, 20, 30, 1, INT64_MIN);
    assert_false(linearizable(g));
    free(g);
    free(h);
}

static void del_reports_whether_key_existed(void **state)
{
    (void)state;
    struct history *h = history_new();
    del(h, 1, 0, 10, 0);
    set(h, 1, 20, 30, 4);
    del(h, 1, 40, 50, 1);
    del(h, 1, 60, 70, 0);
    get_absent(h, 1, 80, 90);
    assert_true(linearizable(h));
    h->ops[0].result = 1;
    assert_false(linearizable(h));
    h->ops[0].result = 0;
    h->ops[3].result = 1;
    assert_false(linearizable(h));
    free(h);
}

/* A FLUSHALL's share of one key: the key is gone after it, whatever the
 * recorded result; a value that survives a completed clear is caught, and
 * a clear concurrent with a read may fall on either side of it. */
static void clear_removes_the_key(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 1, 5);
    clear(h, 1, 2, 3);
    get_absent(h, 1, 4, 5);
    incr(h, 1, 6, 7, 1, 1); /* from absent */
    assert_true(linearizable(h));

    h->count = 0;
    set(h, 1, 0, 1, 5);
    clear(h, 1, 2, 3);
    get(h, 1, 4, 5, 5); /* the value outlived the flush */
    assert_false(linearizable(h));

    h->count = 0;
    set(h, 1, 0, 1, 5);
    clear(h, 1, 2, 10);
    get(h, 1, 3, 4, 5);     /* before the clear took effect */
    get_absent(h, 1, 5, 6); /* after */
    assert_true(linearizable(h));

    h->count = 0;
    set(h, 1, 0, 1, 5);
    clear(h, 1, 2, 10);
    get_absent(h, 1, 3, 4);
    get(h, 1, 5, 6, 5); /* the key came back with nothing to write it */
    assert_false(linearizable(h));

    h->count = 0;
    set(h, 1, 0, 1, 5);
    clear(h, 1, 2, 3);
    lost(h); /* a flush with no reply may never have happened */
    get(h, 1, 10, 11, 5);
    assert_true(linearizable(h));
    free(h);
}

static void keys_are_checked_independently(void **state)
{
    (void)state;
    struct history *h = history_new();
    set(h, 1, 0, 10, 1);
    get_absent(h, 2, 20, 30);
    get(h, 1, 20, 30, 1);
    set(h, 2, 40, 50, 2);
    assert_true(linearizable(h));

    /* A stale read on key 2 is reported as key 2's. */
    get_absent(h, 2, 60, 70);
    struct lin_result r;
    lin_check(h->ops, h->count, BUDGET, &r);
    assert_false(r.ok);
    assert_int_equal(r.key, 2);
    assert_non_null(strstr(r.message, "key 2 is not linearizable: op 5"));
    free(h);
}

/* Many unknown INCRs in flight at once, then an impossible read: refuting
 * it means trying, for each count k, every k of the n INCRs. */
static void pile_of_unknown_incrs(struct history *h, int n)
{
    for (int i = 0; i < n; i++) {
        incr(h, 1, (uint64_t)i, 0, 1, 0);
        lost(h);
    }
    get(h, 1, 1000, 1010, -1);
}

static void budget_exhaustion_is_reported_not_failed(void **state)
{
    (void)state;
    struct history *h = history_new();
    pile_of_unknown_incrs(h, 10);
    struct lin_result r;
    lin_check(h->ops, h->count, LIN_BUDGET_UNLIMITED, &r);
    assert_false(r.ok); /* small enough to refute */
    assert_false(r.gave_up);

    h->count = 0;
    pile_of_unknown_incrs(h, 60);
    lin_check(h->ops, h->count, 10000, &r);
    assert_true(r.ok);
    assert_true(r.gave_up);
    assert_int_equal(r.key, 1);
    assert_int_equal(r.states_explored, 10000);
    assert_non_null(strstr(r.message, "gave up"));

    /* A later key that fails still fails the history. */
    set(h, 2, 0, 10, 1);
    get(h, 2, 20, 30, 2);
    lin_check(h->ops, h->count, 10000, &r);
    assert_false(r.ok);
    assert_true(r.gave_up);
    assert_int_equal(r.key, 2);
    free(h);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static uint64_t rng_below(uint64_t *s, uint64_t bound)
{
    return rng_next(s) % bound;
}

struct kv_cell {
    bool present;
    int64_t value;
};

/* Run one op against the real state; fills its result. Values stay >= 0:
 * SET and CAS store 0..20 and INCR adds 1..3. */
static void execute(struct lin_op *op, struct kv_cell *cell, uint64_t *rng)
{
    op->kind = (enum lin_kind)(1 + rng_below(rng, 6));
    op->arg1 = (int64_t)rng_below(rng, 21);
    op->arg2 = (int64_t)rng_below(rng, 21);
    switch (op->kind) {
    case LIN_GET:
        op->result_absent = !cell->present;
        op->result = cell->value;
        break;
    case LIN_SET:
        *cell = (struct kv_cell){true, op->arg1};
        break;
    case LIN_CAS:
        if (cell->present && rng_below(rng, 2))
            op->arg1 = cell->value;
        op->result = cell->present && cell->value == op->arg1;
        if (op->result)
            cell->value = op->arg2;
        break;
    case LIN_INCR:
        op->arg1 = 1 + (int64_t)rng_below(rng, 3);
        *cell = (struct kv_cell){true, cell->value + op->arg1};
        op->result = cell->value;
        break;
    case LIN_DEL:
        op->result = cell->present;
        *cell = (struct kv_cell){false, 0};
        break;
    case LIN_CLEAR:
        *cell = (struct kv_cell){false, 0};
        break;
    }
}

/* A history from a real sequential execution over key_count keys: op i takes
 * effect at time 10 * i + 100 inside a random interval up to 60 wide on
 * either side, so about a dozen ops overlap. One op in 20 loses its reply;
 * half of those never take effect. */
static void random_history(struct history *h, size_t count, uint64_t key_count,
                           uint64_t seed)
{
    struct kv_cell cells[4] = {{false, 0}};
    uint64_t rng = seed * 0x9e3779b97f4a7c15u + 1;
    assert_true(key_count <= 4);
    h->count = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t at = 10 * i + 100;
        uint64_t key = rng_below(&rng, key_count);
        uint64_t invoke = at - rng_below(&rng, 60);
        uint64_t response = at + 1 + rng_below(&rng, 60);
        struct lin_op *op = add(h, key, LIN_GET, invoke, response);
        bool unknown = rng_below(&rng, 20) == 0;
        struct kv_cell scratch = cells[op->key];
        execute(op, unknown && rng_below(&rng, 2) ? &scratch : &cells[op->key],
                &rng);
        if (unknown)
            lost(h);
    }
}

/* The first ok GET at or after position from. */
static struct lin_op *find_read(struct history *h, size_t from)
{
    for (size_t i = from; i < h->count; i++)
        if (h->ops[i].kind == LIN_GET && !h->ops[i].unknown)
            return &h->ops[i];
    fail();
    return NULL;
}

static void random_sequential_executions_are_linearizable(void **state)
{
    (void)state;
    struct history *h = history_new();
    for (uint64_t seed = 1; seed <= 100; seed++) {
        random_history(h, 400, 4, seed);
        struct lin_result r;
        lin_check(h->ops, h->count, BUDGET, &r);
        if (!r.ok)
            print_error("seed %llu: %s\n", (unsigned long long)seed, r.message);
        assert_true(r.ok);
        assert_false(r.gave_up);
        assert_int_equal(r.ops_checked, 400);
    }
    free(h);
}

static void corrupted_read_is_not_linearizable(void **state)
{
    (void)state;
    struct history *h = history_new();
    int subtle_caught = 0;
    for (uint64_t seed = 1; seed <= 100; seed++) {
        random_history(h, 400, 4, seed);
        struct lin_op *read = find_read(h, (size_t)(seed % 300));

        /* Values are never negative, so no order can return -1. */
        bool absent = read->result_absent;
        int64_t value = read->result;
        read->result_absent = false;
        read->result = -1;
        struct lin_result r;
        lin_check(h->ops, h->count, BUDGET, &r);
        assert_false(r.ok);
        assert_false(r.gave_up);
        assert_int_equal(r.key, read->key);

        /* Off by one is usually, not always, refuted: a concurrent write
         * may have stored the other value. */
        read->result_absent = false;
        read->result = absent ? 0 : value + 1;
        lin_check(h->ops, h->count, BUDGET, &r);
        assert_false(r.gave_up);
        subtle_caught += !r.ok;
    }
    assert_true(subtle_caught >= 50);
    free(h);
}

static void long_concurrent_history_stays_well_within_budget(void **state)
{
    (void)state;
    struct history *h = history_new();
    random_history(h, HISTORY_MAX, 1, 42);
    struct lin_result r;
    lin_check(h->ops, h->count, BUDGET, &r);
    assert_true(r.ok);
    assert_false(r.gave_up);
    assert_true(r.states_explored < 100 * h->count);
    free(h);
}

/* The brute-force checker: try every order that respects real time, with
 * any subset of the unknown ops. Its own model, written independently. */
static bool brute_step(const struct lin_op *op, struct kv_cell *c)
{
    struct kv_cell before = *c;
    bool ok = true;
    if (op->kind == LIN_GET)
        ok = op->result_absent ? !before.present
                               : before.present && before.value == op->result;
    if (op->kind == LIN_SET)
        *c = (struct kv_cell){true, op->arg1};
    if (op->kind == LIN_CAS) {
        bool match = before.present && before.value == op->arg1;
        if (match)
            c->value = op->arg2;
        ok = op->result == (match ? 1 : 0);
    }
    if (op->kind == LIN_INCR) {
        *c = (struct kv_cell){true, before.value + op->arg1};
        ok = op->result == c->value;
    }
    if (op->kind == LIN_DEL) {
        *c = (struct kv_cell){false, 0};
        ok = op->result == (before.present ? 1 : 0);
    }
    if (op->kind == LIN_CLEAR)
        *c = (struct kv_cell){false, 0};
    return op->unknown || ok;
}

static bool brute_search(const struct history *h, unsigned done,
                         struct kv_cell cell)
{
    bool all_known_done = true;
    for (size_t i = 0; i < h->count; i++)
        if (!(done & (1u << i)) && !h->ops[i].unknown)
            all_known_done = false;
    if (all_known_done)
        return true;
    for (size_t i = 0; i < h->count; i++) {
        if (done & (1u << i))
            continue;
        bool may_go = true;
        for (size_t j = 0; j < h->count; j++)
            if (!(done & (1u << j)) && !h->ops[j].unknown &&
                h->ops[j].response < h->ops[i].invoke)
                may_go = false;
        struct kv_cell next = cell;
        if (may_go && brute_step(&h->ops[i], &next) &&
            brute_search(h, done | (1u << i), next))
            return true;
    }
    return false;
}

static void search_agrees_with_brute_force_on_small_histories(void **state)
{
    (void)state;
    struct history *h = history_new();
    uint64_t rng = 7;
    int verdicts[2] = {0, 0};
    for (int round = 0; round < 5000; round++) {
        h->count = 0;
        size_t n = 1 + rng_below(&rng, 8);
        for (size_t i = 0; i < n; i++) {
            uint64_t invoke = rng_below(&rng, 30);
            struct lin_op *op =
                add(h, 3, (enum lin_kind)(1 + rng_below(&rng, 5)), invoke,
                    invoke + rng_below(&rng, 15));
            op->arg1 = (int64_t)rng_below(&rng, 3);
            op->arg2 = (int64_t)rng_below(&rng, 3);
            op->result = (int64_t)rng_below(&rng, op->kind == LIN_INCR ? 5 : 2);
            op->result_absent = op->kind == LIN_GET && rng_below(&rng, 3) == 0;
            if (rng_below(&rng, 4) == 0)
                lost(h);
        }
        bool expected = brute_search(h, 0, (struct kv_cell){false, 0});
        struct lin_result r;
        lin_check(h->ops, h->count, BUDGET, &r);
        assert_false(r.gave_up);
        assert_int_equal(r.ok, expected);
        verdicts[expected]++;
    }
    assert_true(verdicts[0] > 500);
    assert_true(verdicts[1] > 500);
    free(h);
}

static void empty_history_is_linearizable(void **state)
{
    (void)state;
    struct lin_result r;
    lin_check(NULL, 0, BUDGET, &r);
    assert_true(r.ok);
    assert_false(r.gave_up);
    assert_int_equal(r.ops_checked, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sequential_history_is_linearizable),
        cmocka_unit_test(concurrent_writes_allow_either_order),
        cmocka_unit_test(stale_read_after_completed_write_is_not_linearizable),
        cmocka_unit_test(lost_acknowledged_write_is_detected),
        cmocka_unit_test(unknown_write_may_take_effect_late),
        cmocka_unit_test(unknown_write_may_never_take_effect),
        cmocka_unit_test(cas_success_requires_matching_value),
        cmocka_unit_test(cas_on_missing_key_never_matches),
        cmocka_unit_test(incr_on_absent_starts_from_zero),
        cmocka_unit_test(del_reports_whether_key_existed),
        cmocka_unit_test(clear_removes_the_key),
        cmocka_unit_test(keys_are_checked_independently),
        cmocka_unit_test(budget_exhaustion_is_reported_not_failed),
        cmocka_unit_test(random_sequential_executions_are_linearizable),
        cmocka_unit_test(corrupted_read_is_not_linearizable),
        cmocka_unit_test(long_concurrent_history_stays_well_within_budget),
        cmocka_unit_test(search_agrees_with_brute_force_on_small_histories),
        cmocka_unit_test(empty_history_is_linearizable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
