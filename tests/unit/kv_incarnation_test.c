/* The group's incarnation in the store's state (kv/incarnation.h): the
 * KV_CMD_INCARNATION op applied from the log (the first wins, hostile
 * bodies refused and counted), the state hash, snapshots (formats 17 to 32
 * only once set; a damaged section refused), FLUSHALL keeping it and
 * kv_clear() dropping it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "kv/address.h"
#include "kv/command.h"
#include "kv/incarnation.h"
#include "kv/kv.h"
#include "kv/snapshot.h"
#include "kv_run.h"

#define A 0x0123456789abcdefull
#define B 0xfedcba9876543210ull

static const char *set_incarnation(struct kv_run *t, uint64_t x)
{
    uint8_t body[KV_INCARNATION_BODY_MAX];
    size_t n = kv_incarnation_encode(x, body, sizeof(body));
    assert_true(n > 0);
    return kv_run_apply(t, 1000, body, n);
}

static void the_first_applied_wins(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    uint64_t hash = kv_state_hash(&t.kv);
    assert_int_equal(kv_incarnation(&t.kv), 0);
    assert_string_equal(set_incarnation(&t, A), ":1\r\n");
    assert_int_equal(kv_incarnation(&t.kv), A);
    uint64_t with_a = kv_state_hash(&t.kv);
    assert_int_not_equal(with_a, hash); /* it is state */
    /* A second proposal (a racing primary) changes nothing. */
    assert_string_equal(set_incarnation(&t, B), ":0\r\n");
    assert_int_equal(kv_incarnation(&t.kv), A);
    assert_int_equal(kv_state_hash(&t.kv), with_a);
    /* Two stores with different incarnations hash apart. */
    struct kv_run u;
    kv_run_init(&u, NULL);
    kv_run_line(&u, 1000, "SET k v");
    set_incarnation(&u, B);
    assert_int_not_equal(kv_state_hash(&u.kv), with_a);
    /* Nothing encodes 0, nor into a short buffer. */
    uint8_t body[KV_INCARNATION_BODY_MAX];
    assert_int_equal(kv_incarnation_encode(0, body, sizeof(body)), 0);
    assert_int_equal(kv_incarnation_encode(A, body, 4), 0);
    assert_int_equal(kv_incarnation_encode(A, NULL, 0), 0);
    kv_run_deinit(&u);
    kv_run_deinit(&t);
}

/* A body framed as kv/command.h says, with any flags and arguments. */
static size_t frame(uint8_t *out, size_t cap, uint16_t flags, uint32_t argc,
                    const uint8_t *arg, uint32_t arg_size)
{
    struct writer w = writer_make(out, cap);
    writer_u8(&w, KV_COMMAND_FORMAT);
    writer_u8(&w, KV_CMD_INCARNATION);
    writer_u16(&w, flags);
    writer_u32(&w, argc);
    for (uint32_t i = 0; i < argc; i++) {
        writer_u32(&w, arg_size);
        writer_bytes(&w, arg, arg_size);
    }
    assert_true(w.ok);
    return cap - w.left;
}

static void hostile_bodies_are_refused_and_counted(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    uint8_t value[9] = {0};
    put_u64(value, A);
    uint8_t zero[8] = {0};
    struct {
        uint16_t flags;
        uint32_t argc;
        const uint8_t *arg;
        uint32_t size;
        const char *want;
    } cases[] = {
        {0, 1, zero, 8, "zero"},
        {0, 1, value, 7, "not 8 bytes"},
        {0, 1, value, 9, "not 8 bytes"},
        {0, 0, value, 8, "INCARNATION needs 1 argument"},
        {0, 2, value, 8, "INCARNATION needs 1 argument"},
        {1, 1, value, 8, "flags on INCARNATION"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t body[64];
        size_t n = frame(body, sizeof(body), cases[i].flags, cases[i].argc,
                         cases[i].arg, cases[i].size);
        uint64_t malformed = t.kv.malformed_ops;
        uint64_t hash = kv_state_hash(&t.kv);
        const char *reply = kv_run_apply(&t, 1000, body, n);
        if (strncmp(reply, "-ERR malformed", 14) != 0 ||
            strstr(reply, cases[i].want) == NULL)
            fail_msg("case %zu: want a malformed error with \"%s\", got "
                     "\"%s\"",
                     i, cases[i].want, reply);
        assert_int_equal(t.kv.malformed_ops, malformed + 1);
        assert_int_equal(kv_state_hash(&t.kv), hash);
        assert_int_equal(kv_incarnation(&t.kv), 0);
    }
    kv_run_deinit(&t);
}

static struct kv_run_buf snap;

static uint16_t snapshot(const struct kv *kv)
{
    return kv_run_snapshot(kv, &snap);
}

static int restore(struct kv *kv, struct cohort_err *err)
{
    return kv_run_restore(kv, &snap, err);
}

static void snapshots_keep_it(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    assert_int_equal(snapshot(&t.kv), 1); /* none: what older versions read */
    size_t old_size = snap.size;
    set_incarnation(&t, A);
    assert_int_equal(snapshot(&t.kv), 17);
    /* One 20-byte section before the trailer. */
    assert_int_equal(snap.size, old_size + 20);
    assert_memory_equal(snap.data + old_size - 16, "CKIN", 4);

    struct kv_run copy;
    kv_run_init(&copy, NULL);
    struct cohort_err err;
    assert_int_equal(restore(&copy.kv, &err), 0);
    assert_int_equal(kv_incarnation(&copy.kv), A);
    assert_int_equal(kv_state_hash(&copy.kv), kv_state_hash(&t.kv));
    assert_true(kv_invariants_hold(&copy.kv));

    /* Every other part too: format 32. */
    kv_run_line(&t, 1000, "ACL SETUSER carol on >pw ~k* +get");
    kv_run_line(&t, 1000, "SET e v PX 100000");
    kv_run_line(&t, 1000, "COHORT.SESSION OPEN 5000");
    uint8_t body[KV_ADDRESS_BODY_MAX];
    size_t n = kv_address_encode(1, "p:1", "c:1", body, sizeof(body));
    kv_run_apply(&t, 1000, body, n);
    assert_int_equal(snapshot(&t.kv), 32);
    assert_int_equal(restore(&copy.kv, &err), 0);
    assert_int_equal(kv_incarnation(&copy.kv), A);
    assert_int_equal(kv_state_hash(&copy.kv), kv_state_hash(&t.kv));

    /* A damaged section: a zero value with a valid checksum, and a flipped
     * byte. */
    snapshot(&t.kv);
    size_t at = snap.size - 16 - 20;
    assert_memory_equal(snap.data + at, "CKIN", 4);
    static struct kv_run_buf good;
    good = snap;
    memset(snap.data + at + 8, 0, 8);
    put_u32(snap.data + at + 16, crc32c(0, snap.data + at, 16));
    uint32_t crc = crc32c(0, snap.data, snap.size - 4);
    put_u32(snap.data + snap.size - 4, crc);
    assert_int_not_equal(restore(&copy.kv, &err), 0);
    assert_non_null(strstr(err.message, "incarnation"));
    assert_int_equal(kv_incarnation(&copy.kv), 0);
    snap = good;
    snap.data[at + 9] ^= 0x10;
    assert_int_not_equal(restore(&copy.kv, &err), 0);
    assert_non_null(
        strstr(err.message, "checksum mismatch in the incarnation"));

    /* Restoring a snapshot without one drops it. */
    struct kv_run plain;
    kv_run_init(&plain, NULL);
    kv_run_line(&plain, 1000, "SET k v");
    snapshot(&plain.kv);
    assert_int_equal(restore(&t.kv, &err), 0);
    assert_int_equal(kv_incarnation(&t.kv), 0);
    kv_run_deinit(&plain);
    kv_run_deinit(&copy);
    kv_run_deinit(&t);
}

static void flushall_keeps_it_and_clear_drops_it(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    set_incarnation(&t, B);
    assert_string_equal(kv_run_line(&t, 1000, "FLUSHALL"), "+OK\r\n");
    assert_int_equal(kv_incarnation(&t.kv), B);
    kv_clear(&t.kv);
    assert_int_equal(kv_incarnation(&t.kv), 0);
    kv_run_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_first_applied_wins),
        cmocka_unit_test(hostile_bodies_are_refused_and_counted),
        cmocka_unit_test(snapshots_keep_it),
        cmocka_unit_test(flushall_keeps_it_and_clear_drops_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
