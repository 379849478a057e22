/* sim/check: the simulator's safety checks catch what they claim to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sim/check.h"

struct op {
    struct entry e;
    uint8_t body[KVSM_LOG_BODY_MAX];
    size_t body_size;
};

/* A client entry at op with parent, for client/request, running cmd. */
static void make(struct op *o, uint64_t op, uint64_t parent, uint64_t client,
                 uint64_t request, uint8_t kind, int64_t arg)
{
    memset(o, 0, sizeof(*o));
    struct kvsm_cmd cmd = {.kind = kind, .key = 1, .arg = arg};
    o->body_size = kvsm_body(&cmd, o->body);
    o->e.h.parent = parent;
    o->e.h.op = op;
    o->e.h.client_id = client;
    o->e.h.request_no = request;
    o->e.h.timestamp_ms = 100 + op;
    o->e.h.view = 1;
    o->e.h.body_size = (uint32_t)o->body_size;
    o->e.h.kind = ENTRY_CLIENT;
    o->e.body = o->body;
    entry_seal(&o->e.h, o->body);
}

/* The store's reply to INCRBY: ":value\r\n". Returns its size. */
static size_t reply_bytes(int64_t value, uint8_t out[KVSM_REPLY_MAX])
{
    return (size_t)snprintf((char *)out, KVSM_REPLY_MAX, ":%lld\r\n",
                            (long long)value);
}

static void two_replicas_committing_different_entries_disagree(void **state)
{
    (void)state;
    struct check c;
    check_init(&c);
    struct op a, b;
    make(&a, 1, 0, 7, 1, KVSM_SET, 5);
    make(&b, 1, 0, 7, 1, KVSM_SET, 6);
    check_committed_entry(&c, 0, &a.e);
    check_committed_entry(&c, 1, &a.e);
    assert_false(c.failed);
    check_committed_entry(&c, 2, &b.e);
    assert_true(c.failed);
    assert_string_equal(c.what, "agreement");
    check_deinit(&c);
}

static void two_primaries_in_one_view_are_caught(void **state)
{
    (void)state;
    struct check c;
    check_init(&c);
    check_primary(&c, 0, 3);
    check_primary(&c, 0, 3);
    check_primary(&c, 1, 4);
    assert_false(c.failed);
    check_primary(&c, 2, 3);
    assert_true(c.failed);
    assert_string_equal(c.what, "primary");
    check_deinit(&c);
}

static void replies_are_compared_with_the_reference_model(void **state)
{
    (void)state;
    struct check c;
    check_init(&c);
    struct op o1, o2, o3;
    make(&o1, 1, 0, 7, 1, KVSM_INCR, 2);
    make(&o2, 2, o1.e.h.checksum, 7, 1, KVSM_INCR, 2); /* a retry */
    make(&o3, 3, o2.e.h.checksum, 8, 1, KVSM_INCR, 3);
    uint8_t r[KVSM_REPLY_MAX];
    size_t n;
    /* Answered before the reference knows op 1: the check waits. */
    n = reply_bytes(2, r);
    check_reply(&c, 0, 7, 1, 1, r, n);
    check_committed_entry(&c, 0, &o1.e);
    check_committed_entry(&c, 0, &o2.e);
    check_committed_entry(&c, 0, &o3.e);
    check_advance(&c);
    assert_false(c.failed);
    assert_int_equal(c.replies_checked, 1);
    /* The retry at op 2 must be answered as op 1 with the same reply. */
    check_reply(&c, 0, 7, 1, 1, r, n);
    check_advance(&c);
    assert_false(c.failed);
    n = reply_bytes(5, r);
    check_reply(&c, 0, 8, 1, 3, r, n);
    check_advance(&c);
    assert_false(c.failed);
    /* Naming the duplicate's op is wrong: it applied nothing. */
    n = reply_bytes(2, r);
    check_reply(&c, 1, 7, 1, 2, r, n);
    check_advance(&c);
    assert_true(c.failed);
    assert_string_equal(c.what, "reply");
    check_deinit(&c);
}

static void a_wrong_reply_value_is_caught(void **state)
{
    (void)state;
    struct check c;
    check_init(&c);
    struct op o1;
    make(&o1, 1, 0, 7, 1, KVSM_INCR, 2);
    check_committed_entry(&c, 0, &o1.e);
    uint8_t r[KVSM_REPLY_MAX];
    size_t n;
    n = reply_bytes(3, r);
    check_reply(&c, 0, 7, 1, 1, r, n);
    check_advance(&c);
    assert_true(c.failed);
    assert_string_equal(c.what, "reply");
    check_deinit(&c);
}

static void applying_a_retry_twice_is_caught(void **state)
{
    (void)state;
    struct check c;
    check_init(&c);
    struct op o1, o2;
    make(&o1, 1, 0, 7, 1, KVSM_INCR, 2);
    make(&o2, 2, o1.e.h.checksum, 7, 1, KVSM_INCR, 2);
    struct kvsm sm;
    kvsm_init(&sm);
    uint8_t r[KVSM_REPLY_MAX];
    size_t n;
    n = kvsm_sm_apply(&sm, 1, o1.e.h.timestamp_ms, o1.body, o1.body_size, r,
                      sizeof(r));
    check_apply(&c, 0, 1, o1.e.h.timestamp_ms, o1.body, o1.body_size, r, n,
                kvsm_hash(&sm));
    check_committed_entry(&c, 0, &o1.e);
    check_advance(&c);
    assert_false(c.failed);
    assert_int_equal(c.applies_checked, 1);
    n = kvsm_sm_apply(&sm, 2, o2.e.h.timestamp_ms, o2.body, o2.body_size, r,
                      sizeof(r));
    check_apply(&c, 0, 2, o2.e.h.timestamp_ms, o2.body, o2.body_size, r, n,
                kvsm_hash(&sm));
    check_committed_entry(&c, 0, &o2.e);
    check_advance(&c);
    assert_true(c.failed);
    assert_string_equal(c.what, "apply");
    kvsm_deinit(&sm);
    check_deinit(&c);
}

static void a_check_still_waiting_at_the_end_fails(void **state)
{
    (void)state;
    struct check c;
    check_init(&c);
    uint8_t r[KVSM_REPLY_MAX];
    size_t n;
    n = reply_bytes(1, r);
    check_reply(&c, 0, 7, 1, 4, r, n);
    check_advance(&c);
    assert_false(c.failed);
    check_finish(&c);
    assert_true(c.failed);
    check_deinit(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_replicas_committing_different_entries_disagree),
        cmocka_unit_test(two_primaries_in_one_view_are_caught),
        cmocka_unit_test(replies_are_compared_with_the_reference_model),
        cmocka_unit_test(a_wrong_reply_value_is_caught),
        cmocka_unit_test(applying_a_retry_twice_is_caught),
        cmocka_unit_test(a_check_still_waiting_at_the_end_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
