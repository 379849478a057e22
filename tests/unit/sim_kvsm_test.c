/* sim/kvsm: the simulator's int64 key-value state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/kvsm.h"

static struct kvsm_reply run(struct kvsm *k, uint8_t kind, uint8_t key,
                             int64_t arg, int64_t arg2)
{
    struct kvsm_cmd cmd = {kind, key, arg, arg2};
    uint8_t body[KVSM_BODY_SIZE];
    uint8_t reply[KVSM_REPLY_SIZE];
    kvsm_cmd_encode(&cmd, body);
    size_t size = kvsm_apply(k, body, sizeof(body), reply, sizeof(reply));
    assert_int_equal(size, KVSM_REPLY_SIZE);
    struct kvsm_reply r;
    assert_true(kvsm_reply_decode(reply, size, &r));
    return r;
}

static void commands_answer_as_documented(void **state)
{
    (void)state;
    struct kvsm k;
    kvsm_init(&k);
    struct kvsm_reply r = run(&k, KVSM_GET, 3, 0, 0);
    assert_int_equal(r.result, 0);
    r = run(&k, KVSM_INCR, 3, 1, 0);
    assert_int_equal(r.value, 1);
    r = run(&k, KVSM_SET, 3, 41, 0);
    assert_int_equal(r.result, 1);
    r = run(&k, KVSM_INCR, 3, 1, 0);
    assert_int_equal(r.value, 42);
    r = run(&k, KVSM_INCR, 3, -50, 0);
    assert_int_equal(r.value, -8);
    r = run(&k, KVSM_SET, 3, 42, 0);
    r = run(&k, KVSM_CAS, 3, 7, 9);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.value, 42);
    r = run(&k, KVSM_CAS, 3, 42, 9);
    assert_int_equal(r.result, 1);
    assert_int_equal(r.value, 9);
    r = run(&k, KVSM_GET, 3, 0, 0);
    assert_int_equal(r.result, 1);
    assert_int_equal(r.value, 9);
    r = run(&k, KVSM_DEL, 3, 0, 0);
    assert_int_equal(r.result, 1);
    r = run(&k, KVSM_DEL, 3, 0, 0);
    assert_int_equal(r.result, 0);
    r = run(&k, KVSM_CAS, 3, 0, 5); /* absent: CAS fails */
    assert_int_equal(r.result, 0);
}

static void incr_that_would_overflow_fails_and_changes_nothing(void **state)
{
    (void)state;
    struct kvsm k;
    kvsm_init(&k);
    run(&k, KVSM_SET, 0, INT64_MAX, 0);
    uint64_t before = kvsm_hash(&k);
    struct kvsm_reply r = run(&k, KVSM_INCR, 0, 1, 0);
    assert_int_equal(r.result, 0);
    assert_true(kvsm_hash(&k) == before);
    r = run(&k, KVSM_INCR, 0, -1, 0);
    assert_int_equal(r.result, 1);
    assert_true(r.value == INT64_MAX - 1);
}

static void bad_bodies_change_nothing(void **state)
{
    (void)state;
    struct kvsm k;
    kvsm_init(&k);
    uint64_t before = kvsm_hash(&k);
    uint8_t body[KVSM_BODY_SIZE] = {KVSM_SET, KVSM_KEYS, 1};
    uint8_t reply[KVSM_REPLY_SIZE];
    kvsm_apply(&k, body, sizeof(body), reply, sizeof(reply));
    assert_int_equal(reply[0], KVSM_RESULT_BAD);
    body[0] = 99;
    body[1] = 0;
    kvsm_apply(&k, body, sizeof(body), reply, sizeof(reply));
    assert_int_equal(reply[0], KVSM_RESULT_BAD);
    kvsm_apply(&k, body, 3, reply, sizeof(reply));
    assert_int_equal(reply[0], KVSM_RESULT_BAD);
    assert_true(kvsm_hash(&k) == before);
}

static void snapshot_restores_the_same_state(void **state)
{
    (void)state;
    struct kvsm a, b;
    kvsm_init(&a);
    kvsm_init(&b);
    run(&a, KVSM_SET, 1, -5, 0);
    run(&a, KVSM_INCR, 7, 3, 0);
    assert_true(kvsm_hash(&a) != kvsm_hash(&b));
    uint8_t snap[KVSM_STATE_SIZE];
    kvsm_encode(&a, snap);
    assert_true(kvsm_restore(&b, snap, sizeof(snap)));
    assert_true(kvsm_hash(&a) == kvsm_hash(&b));
    assert_true(run(&b, KVSM_GET, 1, 0, 0).value == -5);
    snap[0] = 2; /* not a presence flag */
    assert_false(kvsm_restore(&b, snap, sizeof(snap)));
    assert_false(kvsm_restore(&b, snap, sizeof(snap) - 1));
    assert_true(kvsm_hash(&a) == kvsm_hash(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commands_answer_as_documented),
        cmocka_unit_test(incr_that_would_overflow_fails_and_changes_nothing),
        cmocka_unit_test(bad_bodies_change_nothing),
        cmocka_unit_test(snapshot_restores_the_same_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
