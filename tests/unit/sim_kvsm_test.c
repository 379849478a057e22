/* sim/kvsm: the simulator's commands through the real store, in both
 * forms (the store's own command and a transaction), read back as the
 * linearizability checker sees them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/kvsm.h"

static uint64_t next_op;

static struct kvsm_reply run_form(struct kvsm *k, uint8_t kind, uint8_t key,
                                  int64_t arg, int64_t arg2, uint8_t form)
{
    struct kvsm_cmd cmd = {kind, key, form, arg, arg2};
    uint8_t request[KVSM_BODY_SIZE];
    kvsm_cmd_encode(&cmd, request);
    struct kvsm_cmd back;
    assert_true(kvsm_cmd_decode(request, sizeof(request), &back));
    assert_int_equal(back.kind, kind);
    assert_int_equal(back.key, key);
    assert_int_equal(back.form, form);
    assert_true(back.arg == arg && back.arg2 == arg2);
    uint8_t body[KVSM_LOG_BODY_MAX];
    size_t body_size = kvsm_body(&cmd, body);
    uint8_t reply[KVSM_REPLY_MAX];
    size_t size = kvsm_sm_apply(k, ++next_op, 1000, body, body_size, reply,
                                sizeof(reply));
    struct kvsm_reply r;
    assert_true(kvsm_reply_decode(&cmd, false, reply, size, &r));
    return r;
}

/* Every command in both forms must give the same answers. */
static void check_commands(uint8_t form)
{
    struct kvsm k;
    kvsm_init(&k);
    next_op = 0;
    struct kvsm_reply r = run_form(&k, KVSM_GET, 3, 0, 0, form);
    assert_int_equal(r.result, 0);
    r = run_form(&k, KVSM_INCR, 3, 1, 0, form);
    assert_int_equal(r.value, 1);
    r = run_form(&k, KVSM_SET, 3, 41, 0, form);
    assert_int_equal(r.result, 1);
    r = run_form(&k, KVSM_INCR, 3, 1, 0, form);
    assert_int_equal(r.value, 42);
    r = run_form(&k, KVSM_INCR, 3, -50, 0, form);
    assert_int_equal(r.value, -8);
    run_form(&k, KVSM_SET, 3, 42, 0, form);
    r = run_form(&k, KVSM_CAS, 3, 7, 9, form);
    assert_int_equal(r.result, 0);
    r = run_form(&k, KVSM_CAS, 3, 42, 9, form);
    assert_int_equal(r.result, 1);
    r = run_form(&k, KVSM_GET, 3, 0, 0, form);
    assert_int_equal(r.result, 1);
    assert_int_equal(r.value, 9);
    uint8_t reply[KVSM_REPLY_MAX];
    size_t size = kvsm_read(&k, 3, reply);
    struct kvsm_cmd get = {.kind = KVSM_GET, .key = 3};
    assert_true(kvsm_reply_decode(&get, true, reply, size, &r));
    assert_int_equal(r.value, 9);
    r = run_form(&k, KVSM_DEL, 3, 0, 0, form);
    assert_int_equal(r.result, 1);
    r = run_form(&k, KVSM_DEL, 3, 0, 0, form);
    assert_int_equal(r.result, 0);
    r = run_form(&k, KVSM_CAS, 3, 0, 5, form); /* absent: CAS fails */
    assert_int_equal(r.result, 0);
    size = kvsm_read(&k, 3, reply);
    assert_true(kvsm_reply_decode(&get, true, reply, size, &r));
    assert_int_equal(r.result, 0);
    kvsm_deinit(&k);
}

static void commands_answer_as_documented(void **state)
{
    (void)state;
    check_commands(KVSM_FORM_PLAIN);
    check_commands(KVSM_FORM_TXN);
}

static void incr_that_would_overflow_fails_and_changes_nothing(void **state)
{
    (void)state;
    for (uint8_t form = 0; form <= KVSM_FORM_TXN; form++) {
        struct kvsm k;
        kvsm_init(&k);
        next_op = 0;
        run_form(&k, KVSM_SET, 0, INT64_MAX, 0, form);
        uint64_t before = kvsm_hash(&k);
        struct kvsm_reply r = run_form(&k, KVSM_INCR, 0, 1, 0, form);
        assert_int_equal(r.result, 0);
        assert_true(kvsm_hash(&k) == before);
        r = run_form(&k, KVSM_INCR, 0, -1, 0, form);
        assert_int_equal(r.result, 1);
        assert_true(r.value == INT64_MAX - 1);
        kvsm_deinit(&k);
    }
}

/* FLUSHALL removes every key, of every kind, and answers +OK. */
static void flush_removes_every_key(void **state)
{
    (void)state;
    struct kvsm k;
    kvsm_init(&k);
    uint64_t empty = kvsm_hash(&k);
    next_op = 0;
    run_form(&k, KVSM_SET, 1, 5, 0, KVSM_FORM_PLAIN);
    run_form(&k, KVSM_SET, 2, 6, 0, KVSM_FORM_TXN);
    run_form(&k, KVSM_PAIRSET, 0, 7, 0, KVSM_FORM_PLAIN);
    assert_true(kvsm_hash(&k) != empty);
    struct kvsm_reply r = run_form(&k, KVSM_FLUSH, 0, 0, 0, KVSM_FORM_PLAIN);
    assert_int_equal(r.result, 1);
    assert_int_equal(k.kv.key_count, 0);
    r = run_form(&k, KVSM_GET, 1, 0, 0, KVSM_FORM_PLAIN);
    assert_int_equal(r.result, 0);
    r = run_form(&k, KVSM_PAIRGET, 0, 0, 0, KVSM_FORM_PLAIN);
    assert_int_equal(r.value, 0);
    struct kvsm_cmd cmd = {.kind = KVSM_FLUSH, .key = 1};
    uint8_t request[KVSM_BODY_SIZE];
    kvsm_cmd_encode(&cmd, request);
    assert_false(kvsm_cmd_decode(request, sizeof(request), &cmd)); /* key 0 */
    kvsm_deinit(&k);
}

static void bad_requests_and_replies_are_refused(void **state)
{
    (void)state;
    struct kvsm_cmd cmd;
    uint8_t request[KVSM_BODY_SIZE] = {KVSM_SET, KVSM_KEYS, 0};
    assert_false(kvsm_cmd_decode(request, sizeof(request), &cmd));
    request[1] = 0;
    request[2] = 2; /* no such form */
    assert_false(kvsm_cmd_decode(request, sizeof(request), &cmd));
    request[2] = 0;
    request[0] = 99;
    assert_false(kvsm_cmd_decode(request, sizeof(request), &cmd));
    assert_false(kvsm_cmd_decode(request, 3, &cmd));
    struct kvsm_cmd set = {.kind = KVSM_SET};
    struct kvsm_reply r;
    assert_false(
        kvsm_reply_decode(&set, false, (const uint8_t *)":1\r\n", 4, &r));
    assert_false(
        kvsm_reply_decode(&set, false, (const uint8_t *)"+OK\r", 4, &r));
}

static struct {
    uint8_t data[4096];
    size_t size, at;
} stream;

static int to_stream(void *ctx, const void *data, size_t size)
{
    (void)ctx;
    assert_true(stream.size + size <= sizeof(stream.data));
    memcpy(stream.data + stream.size, data, size);
    stream.size += size;
    return 0;
}

static int from_stream(void *ctx, void *data, size_t size, size_t *got)
{
    (void)ctx;
    *got = size < stream.size - stream.at ? size : stream.size - stream.at;
    memcpy(data, stream.data + stream.at, *got);
    stream.at += *got;
    return 0;
}

static void snapshot_restores_the_same_state(void **state)
{
    (void)state;
    struct kvsm a, b;
    kvsm_init(&a);
    kvsm_init(&b);
    next_op = 0;
    run_form(&a, KVSM_SET, 1, -5, 0, KVSM_FORM_PLAIN);
    run_form(&a, KVSM_INCR, 7, 3, 0, KVSM_FORM_TXN);
    assert_true(kvsm_hash(&a) != kvsm_hash(&b));
    assert_true(kvsm_hash(&b) == kvsm_empty_hash());
    stream.size = stream.at = 0;
    assert_int_equal(kvsm_snapshot_write(&a, to_stream, NULL), 0);
    struct cohort_err err;
    assert_int_equal(kvsm_restore(&b, from_stream, NULL, &err), 0);
    assert_true(kvsm_hash(&a) == kvsm_hash(&b));
    stream.data[stream.size / 2] ^= 1; /* a damaged stream is refused */
    stream.at = 0;
    assert_int_not_equal(kvsm_restore(&b, from_stream, NULL, &err), 0);
    kvsm_deinit(&a);
    kvsm_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commands_answer_as_documented),
        cmocka_unit_test(incr_that_would_overflow_fails_and_changes_nothing),
        cmocka_unit_test(flush_removes_every_key),
        cmocka_unit_test(bad_requests_and_replies_are_refused),
        cmocka_unit_test(snapshot_restores_the_same_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
