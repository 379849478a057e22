/* Key expiry in the store's state machine (kv/expire.h): SET's expiry
 * options, the EXPIRE family, PERSIST, GETEX, TTL and PTTL, reads hiding
 * expired keys, the primary's EXPIRE_DUE removal, snapshots and the state
 * hash. Time is the op's log timestamp, given explicitly by each step. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "kv/command.h"
#include "kv/expire.h"
#include "kv/kv.h"
#include "kv/snapshot.h"
#include "kv/txn.h"
#include "kv_run.h"

static void set_ex_px_exat_pxat_set_the_expiry_and_reads_hide_it(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(kv_run_line(&t, 1000, "SET k v EX 10"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":10000\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "TTL k"), ":10\r\n");
    assert_string_equal(kv_run_line(&t, 10999, "GET k"), "$1\r\nv\r\n");
    /* Due at 11000: hidden from reads although not removed yet. */
    assert_string_equal(kv_run_line(&t, 11000, "GET k"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 11000, "EXISTS k"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 11000, "TTL k"), ":-2\r\n");
    assert_string_equal(kv_run_line(&t, 11000, "PTTL missing"), ":-2\r\n");
    assert_int_equal(t.kv.key_count, 1);
    assert_string_equal(kv_run_line(&t, 2000, "SET p v PX 1500"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "PTTL p"), ":1500\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "SET a v EXAT 50"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "PTTL a"), ":48000\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "SET b v PXAT 2500"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "PTTL b"), ":500\r\n");
    /* A time already past removes the key, as Redis does. */
    assert_string_equal(kv_run_line(&t, 3000, "SET b v PXAT 2500"), "+OK\r\n");
    assert_null(kv_get(&t.kv, (const uint8_t *)"b", 1));
    /* A reply never depends on a time before the store's last op. */
    assert_string_equal(kv_run_line(&t, 0, "PTTL p"), ":500\r\n");
    kv_run_deinit(&t);
}

static void keepttl_keeps_and_plain_writes_clear_or_keep_as_redis(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v PX 5000");
    assert_string_equal(kv_run_line(&t, 2000, "SET k w KEEPTTL"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "PTTL k"), ":4000\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "GET k"), "$1\r\nw\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "SET k x"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "PTTL k"), ":-1\r\n");
    kv_run_line(&t, 3000, "SET n 1 PX 5000");
    assert_string_equal(kv_run_line(&t, 3500, "INCR n"), ":2\r\n");
    assert_string_equal(kv_run_line(&t, 3500, "PTTL n"),
                        ":4500\r\n"); /* kept */
    kv_run_line(&t, 3500, "MSET n 7");
    assert_string_equal(kv_run_line(&t, 3500, "PTTL n"),
                        ":-1\r\n"); /* cleared */
    assert_int_equal(t.kv.expires_count, 0);
    kv_run_deinit(&t);
}

static void persist_clears_and_expire_family_follows_redis(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    assert_string_equal(kv_run_line(&t, 1000, "PERSIST k"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 10"), ":1\r\n");
    assert_int_equal(t.kv.expires_count, 1);
    assert_string_equal(kv_run_line(&t, 1000, "PERSIST k"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "TTL k"), ":-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PERSIST missing"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE missing 10"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 10 XX"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 10 NX"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 20 NX"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 5 GT"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 20 GT"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PEXPIRE k 3000 LT"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":3000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PEXPIREAT k 9000"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":8000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIREAT k 30"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":29000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 1 NX GT"),
                        "-ERR NX and XX, GT or LT options at the same time "
                        "are not compatible\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k x"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k 99999999999999999"),
                        "-ERR invalid expire time in 'expire' command\r\n");
    /* A time in the past deletes the key. */
    assert_string_equal(kv_run_line(&t, 1000, "EXPIRE k -1"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "DBSIZE"), ":0\r\n");
    kv_run_line(&t, 1000, "SET k v");
    assert_string_equal(kv_run_line(&t, 5000, "PEXPIREAT k 4000"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 5000, "DBSIZE"), ":0\r\n");
    assert_int_equal(t.kv.expires_count, 0);
    kv_run_deinit(&t);
}

static void getex_reads_then_changes_the_expiry(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(kv_run_line(&t, 1000, "GETEX k EX 5"), "$-1\r\n");
    kv_run_line(&t, 1000, "SET k v");
    assert_string_equal(kv_run_line(&t, 1000, "GETEX k"), "$1\r\nv\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GETEX k PX 700"), "$1\r\nv\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":700\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GETEX k PERSIST"),
                        "$1\r\nv\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GETEX k PERSIST EX 1"),
                        "-ERR syntax error\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GETEX k EX 0"),
                        "-ERR invalid expire time in 'getex' command\r\n");
    kv_run_deinit(&t);
}

/* SETEX and PSETEX are SET EX/PX with the value after the time; inside a
 * transaction too (the txn re-parses its commands at apply). */
static void setex_and_psetex_set_value_and_expiry(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(kv_run_line(&t, 1000, "SETEX k 10 v1"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GET k"), "$2\r\nv1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL k"), ":10000\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "PSETEX k 250 v2"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "GET k"), "$2\r\nv2\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "PTTL k"), ":250\r\n");
    assert_string_equal(kv_run_line(&t, 2250, "GET k"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "COHORT.EXEC 0 1 4 SETEX j 3 w"),
                        "*1\r\n+OK\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "GET j"), "$1\r\nw\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "TTL j"), ":3\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "SETEX k 0 v"),
                        "-ERR invalid expire time in 'setex' command\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "PSETEX k -5 v"),
                        "-ERR invalid expire time in 'psetex' command\r\n");
    assert_string_equal(kv_run_line(&t, 3000, "SETEX k x v"),
                        "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(
        kv_run_line(&t, 3000, "SETEX k 1"),
        "-ERR wrong number of arguments for 'setex' command\r\n");
    kv_run_deinit(&t);
}

/* An op touching a due key sees it absent: INCR starts from 0, SET NX sets,
 * at every replica alike, before any removal op. */
static void apply_treats_a_due_key_as_absent(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k 41 PX 100");
    assert_string_equal(kv_run_line(&t, 1099, "INCR k"), ":42\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "INCR k"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "PTTL k"), ":-1\r\n");
    kv_run_line(&t, 1100, "SET n v PX 100");
    assert_string_equal(kv_run_line(&t, 1200, "SET n w NX"), "+OK\r\n");
    kv_run_deinit(&t);
}

static const char *expire_due(struct kv_run *t, uint64_t now_ms, uint32_t n,
                              const struct resp_arg *keys)
{
    struct kv_write w = {
        .type = KV_CMD_EXPIRE_DUE, .arg_count = n, .args = keys};
    return kv_run_write(t, now_ms, &w);
}

static void expire_due_removes_only_keys_due_at_its_time(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET a v PX 100");
    kv_run_line(&t, 1000, "SET b v PX 5000");
    kv_run_line(&t, 1000, "SET c v");
    kv_run_line(&t, 1000, "SET d v PX 100");
    /* The primary chose d as due, then d's TTL was cleared. */
    kv_run_line(&t, 1050, "PERSIST d");
    const struct resp_arg keys[] = {
        {"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}};
    assert_string_equal(expire_due(&t, 1100, 5, keys), ":1\r\n");
    assert_null(kv_get(&t.kv, (const uint8_t *)"a", 1));
    assert_non_null(kv_get(&t.kv, (const uint8_t *)"b", 1));
    assert_non_null(kv_get(&t.kv, (const uint8_t *)"c", 1));
    assert_non_null(kv_get(&t.kv, (const uint8_t *)"d", 1));
    assert_string_equal(expire_due(&t, 6000, 5, keys), ":1\r\n");
    assert_int_equal(t.kv.key_count, 2);
    assert_int_equal(t.kv.expires_count, 0);
    kv_run_deinit(&t);
}

static void malformed_expiry_ops_are_dropped(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v PX 100");
    uint64_t hash = kv_state_hash(&t.kv);
    /* SET with PX and PXAT; EXPIRE_DUE with flags; PEXPIRE without its
     * delta; PERSIST with two keys; an unknown type. */
    static const uint8_t bad[][24] = {
        {1, 1, 0x18, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0},
        {1, 23, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'k'},
        {1, 20, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'k'},
        {1, 21, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 'k', 1, 0, 0, 0, 'j'},
        {1, 24, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'k'},
    };
    static const size_t sizes[] = {16, 13, 13, 18, 13};
    for (size_t i = 0; i < 5; i++) {
        const char *reply = kv_run_apply(&t, 5000, bad[i], sizes[i]);
        assert_non_null(strstr(reply, "-ERR malformed command"));
    }
    assert_int_equal(kv_state_hash(&t.kv), hash);
    assert_int_equal(t.kv.key_count, 1);
    kv_run_deinit(&t);
}

static uint16_t round_trip(struct kv_run *t, struct kv *copy)
{
    static struct kv_run_buf b;
    memset(&b, 0, sizeof(b));
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(kv_snapshot_write(&t->kv, kv_run_buf_write, &b, &err), 0);
    assert_int_equal(kv_init(copy, &t->kv.config), 0);
    err_clear(&err);
    assert_int_equal(kv_restore(copy, kv_run_buf_read, &b, &err), 0);
    assert_int_equal(kv_state_hash(copy), kv_state_hash(&t->kv));
    assert_true(kv_invariants_hold(copy));
    return (uint16_t)(b.data[4] | b.data[5] << 8);
}

static void snapshots_keep_expiries_and_old_formats_when_none(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET plain v");
    struct kv copy;
    /* No expiry: the format older versions read, unchanged. */
    assert_int_equal(round_trip(&t, &copy), 1);
    kv_deinit(&copy);
    uint64_t before = kv_state_hash(&t.kv);
    kv_run_line(&t, 1000, "SET k v PX 4000");
    kv_run_line(&t, 1000, "PERSIST k");
    /* Clearing an expiry hashes as never having had one (and version and
     * mod_op do not move on PERSIST, so only k's SET differs). */
    assert_int_equal(t.kv.expires_count, 0);
    assert_int_not_equal(kv_state_hash(&t.kv), before);
    kv_run_line(&t, 1000, "PEXPIRE k 4000");
    assert_int_equal(round_trip(&t, &copy), 3);
    const struct kv_record *rec = kv_get(&copy, (const uint8_t *)"k", 1);
    assert_non_null(rec);
    assert_int_equal(rec->expire_at_ms, 5000);
    assert_int_equal(copy.expires_count, 1);
    kv_deinit(&copy);
    kv_run_line(&t, 1000, "ACL SETUSER alice on nopass +@all ~*");
    assert_int_equal(round_trip(&t, &copy), 4);
    assert_true(copy.acl.initialized);
    assert_int_equal(kv_get(&copy, (const uint8_t *)"k", 1)->expire_at_ms,
                     5000);
    kv_deinit(&copy);
    kv_run_deinit(&t);
}

/* The expiry is part of the state: the same keys and values with different
 * expiries hash differently. */
static void expiry_is_in_the_state_hash(void **s)
{
    (void)s;
    struct kv_run a, b;
    kv_run_init(&a, NULL);
    kv_run_init(&b, NULL);
    kv_run_line(&a, 1000, "SET k v PX 100");
    kv_run_line(&b, 1000, "SET k v PX 200");
    assert_int_not_equal(kv_state_hash(&a.kv), kv_state_hash(&b.kv));
    kv_run_line(&b, 1000, "PEXPIRE k 100");
    assert_int_equal(kv_state_hash(&a.kv), kv_state_hash(&b.kv));
    kv_run_deinit(&a);
    kv_run_deinit(&b);
}

/* Apply w with a body of any size. */
static const char *t_write_big(struct kv_run *t, uint64_t now_ms,
                               const struct kv_write *w)
{
    size_t size = kv_command_size(w);
    uint8_t *body = malloc(size);
    assert_non_null(body);
    assert_int_equal(kv_command_encode(w, body, size), size);
    const char *reply = kv_run_apply(t, now_ms, body, size);
    free(body);
    return reply;
}

/* Put key<i> for i < n, expiring at base_ms + i % spread (PXAT). */
static void put_expiring(struct kv_run *t, uint64_t now_ms, uint32_t n,
                         uint64_t base_ms, uint64_t spread, size_t key_size)
{
    char key[2048], at[32];
    for (uint32_t i = 0; i < n; i++) {
        int len = snprintf(key, sizeof(key), "key%u", i);
        assert_true(len > 0 && (size_t)len <= key_size);
        memset(key + len, 'x', key_size - (size_t)len);
        snprintf(at, sizeof(at), "%llu",
                 (unsigned long long)(base_ms + i % spread));
        struct resp_arg argv[] = {{"SET", 3},
                                  {key, key_size},
                                  {"v", 1},
                                  {"PXAT", 4},
                                  {at, strlen(at)}};
        struct kv_write w;
        struct resp_buf out;
        resp_buf_init(&out, 2);
        assert_int_equal(kv_command_parse(&t->kv.config, 5, argv, &w, &out), 0);
        resp_buf_deinit(&out);
        assert_string_equal(t_write_big(t, now_ms, &w), "+OK\r\n");
    }
}

static void the_index_finds_due_keys_in_bounded_batches(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    /* 3000 keys due between 5000 and 5999, 500 due much later. */
    put_expiring(&t, 1000, 3000, 5000, 1000, 8);
    kv_run_line(&t, 1000, "SET later v PX 100000");
    assert_int_equal(kv_expire_index_first(&t.kv.expiry), 5000);
    struct resp_arg keys[KV_EXPIRE_BATCH_KEYS];
    struct kv_write w;
    assert_int_equal(kv_expire_batch(&t.kv, 4999, keys, &w), 0);
    /* Half of them due at 5499: batches of at most 256, each key due. */
    uint64_t removed = 0;
    uint32_t ops = 0;
    for (;;) {
        uint32_t n = kv_expire_batch(&t.kv, 5499, keys, &w);
        if (n == 0)
            break;
        assert_true(n <= KV_EXPIRE_BATCH_KEYS);
        for (uint32_t i = 0; i < n; i++) {
            const struct kv_record *r =
                kv_get(&t.kv, (const uint8_t *)keys[i].ptr, keys[i].size);
            assert_non_null(r);
            assert_true(r->expire_at_ms != 0 && r->expire_at_ms <= 5499);
        }
        const char *reply = t_write_big(&t, 5499, &w);
        assert_int_equal(strtoull(reply + 1, NULL, 10), n);
        removed += n;
        ops++;
    }
    assert_int_equal(removed, 1500);
    assert_true(ops >= 1500 / KV_EXPIRE_BATCH_KEYS);
    assert_int_equal(t.kv.key_count, 1501);
    assert_int_equal(t.kv.expired_keys, 1500);
    assert_int_equal(kv_expire_index_first(&t.kv.expiry), 5500);
    assert_int_equal(kv_expire_index_count_due(&t.kv.expiry, 5999), 1500);
    /* Changing expiries keeps the index in step (invariants are checked
     * after every apply). */
    kv_run_line(&t, 5500, "PERSIST later");
    kv_run_line(&t, 5500, "PEXPIREAT key1999x 9000");
    assert_int_equal(kv_expire_index_count_due(&t.kv.expiry, 5999), 1499);
    kv_run_deinit(&t);
}

static void a_batch_stays_within_its_byte_bound(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    put_expiring(&t, 1000, 100, 2000, 1, 1000);
    struct resp_arg keys[KV_EXPIRE_BATCH_KEYS];
    struct kv_write w;
    uint32_t n = kv_expire_batch(&t.kv, 2000, keys, &w);
    assert_true(n > 0 && n < 100);
    assert_true(kv_command_size(&w) <= KV_EXPIRE_BATCH_BYTES + 64);
    kv_run_deinit(&t);
}

static void snapshot_load_rebuilds_the_index(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    put_expiring(&t, 1000, 300, 5000, 300, 8);
    struct kv copy;
    assert_int_equal(round_trip(&t, &copy), 3);
    /* kv_invariants_hold() (in round_trip) checks the index's shape. */
    assert_int_equal(kv_expire_index_count_due(&copy.expiry, 5099), 100);
    assert_int_equal(kv_expire_index_first(&copy.expiry), 5000);
    kv_deinit(&copy);
    kv_run_deinit(&t);
}

static void transactions_see_expiry_at_their_op_time(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v PX 100");
    kv_run_line(&t, 1000, "SET w v PX 100");
    /* EXISTS compare: k is missing once due, so ELSE runs. */
    assert_string_equal(kv_run_line(&t, 1100,
                                    "COHORT.TXN 1 k EXISTS 1 2 GET k 1 "
                                    "2 TTL k"),
                        "*2\r\n:0\r\n*1\r\n:-2\r\n");
    /* WATCH read w's revision (its mod op, 2) before it expired: EXEC
     * aborts, as Redis does when a watched key expires. */
    assert_string_equal(
        kv_run_line(&t, 1200, "COHORT.EXEC 1 w MODOP = 2 1 2 GET w"),
        "*-1\r\n");
    /* EXPIRE, TTL and PERSIST inside a transaction, at its time. */
    kv_run_line(&t, 2000, "SET a v");
    assert_string_equal(kv_run_line(&t, 3000,
                                    "COHORT.EXEC 0 3 3 EXPIRE a 10 2 TTL "
                                    "a 2 PTTL a"),
                        "*3\r\n:1\r\n:10\r\n:10000\r\n");
    assert_string_equal(
        kv_run_line(&t, 13000, "COHORT.EXEC 0 2 2 GET a 3 SET a x"),
        "*2\r\n$-1\r\n+OK\r\n");
    assert_string_equal(kv_run_line(&t, 13000, "PTTL a"), ":-1\r\n");
    kv_run_deinit(&t);
}

static void listings_never_show_expired_keys(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET a v PX 100");
    kv_run_line(&t, 1000, "SET b v");
    kv_run_line(&t, 1000, "SET c v PX 100");
    assert_string_equal(kv_run_line(&t, 1000, "DBSIZE"), ":3\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "DBSIZE"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "KEYS *"), "*1\r\n$1\r\nb\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "SCAN 0 COUNT 100"),
                        "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "COHORT.RANGE a d"),
                        "*2\r\n$1\r\nb\r\n$1\r\nv\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "TYPE a"), "+none\r\n");
    for (int i = 0; i < 20; i++)
        assert_string_equal(kv_run_line(&t, 1100, "RANDOMKEY"), "$1\r\nb\r\n");
    kv_run_line(&t, 1100, "DEL b");
    assert_string_equal(kv_run_line(&t, 1100, "RANDOMKEY"), "$-1\r\n");
    kv_run_deinit(&t);
}

static void a_read_is_settled_only_without_expiries_in_between(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET a v PX 100");
    kv_run_line(&t, 1000, "SET b v");
    struct resp_arg get_a[] = {{"GET", 3}, {"a", 1}};
    struct resp_arg get_b[] = {{"GET", 3}, {"b", 1}};
    struct resp_arg dbsize[] = {{"DBSIZE", 6}};
    /* Applied up to 1000; a expires at 1100. */
    assert_true(kv_query_settled(&t.kv, 1099, 2, get_a));
    assert_false(kv_query_settled(&t.kv, 1100, 2, get_a));
    assert_true(kv_query_settled(&t.kv, 5000, 2, get_b));
    assert_false(kv_query_settled(&t.kv, 5000, 1, dbsize));
    /* An op stamped at 1100 commits: settled from then on. */
    kv_run_line(&t, 1100, "SET c v");
    assert_true(kv_query_settled(&t.kv, 5000, 2, get_a));
    assert_true(kv_query_settled(&t.kv, 5000, 1, dbsize));
    kv_run_deinit(&t);
}

static void string_commands_follow_redis_ttl_rules(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    /* RENAME and COPY carry the source's TTL; a RENAME drops the old
     * destination's. */
    kv_run_line(&t, 1000, "SET a v PX 5000");
    kv_run_line(&t, 1000, "SET b w PX 100000");
    assert_string_equal(kv_run_line(&t, 1000, "RENAME a b"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL b"), ":5000\r\n");
    kv_run_line(&t, 1000, "SET plain x");
    assert_string_equal(kv_run_line(&t, 1000, "COPY b c"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL c"), ":5000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COPY plain c REPLACE"),
                        ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL c"), ":-1\r\n");
    /* GETSET clears the TTL, as a plain SET; APPEND keeps it. */
    kv_run_line(&t, 1000, "SET g v PX 5000");
    assert_string_equal(kv_run_line(&t, 1000, "APPEND g x"), ":2\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL g"), ":5000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GETSET g y"), "$2\r\nvx\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "PTTL g"), ":-1\r\n");
    /* A due key is missing to the string commands. */
    kv_run_line(&t, 1000, "SET e abc PX 100");
    assert_string_equal(kv_run_line(&t, 1100, "STRLEN e"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "GETRANGE e 0 -1"), "$0\r\n\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "SETNX e new"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "PTTL e"), ":-1\r\n");
    kv_run_line(&t, 1100, "SET f abc PX 100");
    assert_string_equal(kv_run_line(&t, 1200, "APPEND f d"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "RENAME b z"), "+OK\r\n");
    kv_run_line(&t, 1200, "SET h v PX 100");
    assert_string_equal(kv_run_line(&t, 1300, "RENAME h z"),
                        "-ERR no such key\r\n");
    assert_string_equal(kv_run_line(&t, 1300, "FLUSHALL"), "+OK\r\n");
    assert_int_equal(t.kv.expires_count, 0);
    kv_run_deinit(&t);
}

/* Parse a write from words split at single spaces (at most 16). */
static int parse_words(char *line, struct kv_write *w, struct resp_buf *r)
{
    struct resp_arg argv[16];
    uint32_t argc = 0;
    for (char *tok = strtok(line, " "); tok && argc < 16;
         tok = strtok(NULL, " "))
        argv[argc++] = (struct resp_arg){tok, strlen(tok)};
    static struct kv_config config;
    config = kv_config_default();
    return kv_command_parse(&config, argc, argv, w, r);
}

/* An absolute expiry is a Unix time from the client: the proposer makes it
 * the log time as far from its log time as from its wall clock; relative
 * ones and other commands are left alone; the ends of i64 saturate. */
static void absolute_expiry_becomes_log_time_at_the_proposer(void **s)
{
    (void)s;
    struct resp_buf r;
    resp_buf_init(&r, 2);
    struct {
        const char *line;
        bool absolute;
        int64_t delta; /* after the conversion below */
    } cases[] = {
        {"SET k v EXAT 1800000010", true, 5000 + 10000},
        {"SET k v PXAT 1800000010000", true, 5000 + 10000},
        {"GETEX k PXAT 1799999999000", true, 5000 - 1000},
        {"EXPIREAT k 1800000060", true, 5000 + 60000},
        {"PEXPIREAT k 1700000000000", true, 5000 - 100000000000},
        {"SET k v EX 10", false, 10000},
        {"PEXPIRE k 300", false, 300},
        {"SET k v NX", false, 0},
        {"INCRBY k 7", false, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "%s", cases[i].line);
        struct kv_write w;
        assert_int_equal(parse_words(line, &w, &r), 0);
        assert_int_equal(kv_expire_absolute(&w), cases[i].absolute);
        kv_expire_absolute_to_log(&w, 1800000000000ull, 5000);
        assert_int_equal(w.delta, cases[i].delta);
    }
    /* Saturation, both ways. */
    char far[] = "PEXPIREAT k 9223372036854775807";
    struct kv_write w;
    assert_int_equal(parse_words(far, &w, &r), 0);
    kv_expire_absolute_to_log(&w, 1000, 5000); /* log ahead of wall */
    assert_int_equal(w.delta, INT64_MAX);
    char past[] = "PEXPIREAT k -9223372036854775807";
    assert_int_equal(parse_words(past, &w, &r), 0);
    kv_expire_absolute_to_log(&w, 1800000000000ull, 5000);
    assert_int_equal(w.delta, INT64_MIN);
    resp_buf_deinit(&r);
}

/* Inside a transaction an absolute expiry is refused where it is proposed
 * (its commands are parsed again at apply, where no clock may be read),
 * but a transaction body that holds one, logged by an older build, still
 * applies as it did. */
static void absolute_expiry_is_refused_in_a_proposed_transaction(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    const char *reply =
        kv_run_line(&t, 1000, "COHORT.EXEC 0 1 5 SET k v EXAT 50");
    assert_non_null(strstr(reply, "cannot run inside a transaction"));
    reply = kv_run_line(&t, 1000, "COHORT.EXEC 0 1 5 SET k v EX 50");
    assert_null(strstr(reply, "ERR"));
    struct resp_arg argv[] = {
        {"SET", 3}, {"k", 1}, {"v", 1}, {"PXAT", 4}, {"2500", 4}};
    struct resp_buf r;
    resp_buf_init(&r, 2);
    struct kv_config config = kv_config_default();
    assert_int_equal(kv_txn_check_proposed(&config, 5, argv, &r),
                     -COHORT_EINVAL);
    assert_int_equal(kv_txn_check_proposed(&config, 3, argv, &r), 0);
    resp_buf_deinit(&r);
    /* An old body: the same transaction encoded without the check. */
    struct resp_arg body_args[] = {{"0", 1},    {"1", 1},   {"5", 1},
                                   {"SET", 3},  {"k", 1},   {"v", 1},
                                   {"PXAT", 4}, {"2500", 4}};
    struct kv_write w = {.type = KV_CMD_TXN,
                         .flags = KV_TXN_EXEC,
                         .arg_count = 8,
                         .args = body_args};
    reply = kv_run_write(&t, 2000, &w);
    assert_null(strstr(reply, "ERR"));
    assert_string_equal(kv_run_line(&t, 2000, "PTTL k"), ":500\r\n");
    kv_run_deinit(&t);
}

/* Redis names the command the client typed when a relative time would
 * overflow: SETEX is a SET op and EXPIRE a PEXPIRE op, whose apply could
 * name only 'set' and 'pexpire', so the proposer refuses a TTL past
 * KV_EXPIRE_RELATIVE_MAX_MS (here at a log time of 2^40 ms, where the old
 * apply overflowed). A transaction logged by an older build with such a TTL
 * still applies as it did. */
static void an_overflowing_ttl_names_the_command_typed(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    const uint64_t now = 1ull << 40;
    kv_run_line(&t, now, "SET k v");
    static const struct {
        const char *line, *name;
    } cases[] = {
        {"SETEX k 9223372036854775 v", "setex"},
        {"PSETEX k 9223372036854775807 v", "psetex"},
        {"EXPIRE k 9223372036854775", "expire"},
        {"PEXPIRE k 9223372036854775807", "pexpire"},
        {"SET k v EX 9223372036854775", "set"},
        {"SET k v PX 9223372036854775807", "set"},
        {"GETEX k EX 9223372036854775", "getex"},
        {"COHORT.TXN 0 1 4 PSETEX k 9223372036854775807 v 0", "psetex"},
        {"COHORT.EXEC 0 1 3 EXPIRE k 9223372036854775", "expire"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[96];
        snprintf(want, sizeof(want),
                 "-ERR invalid expire time in '%s' command\r\n", cases[i].name);
        assert_string_equal(kv_run_line(&t, now, cases[i].line), want);
    }
    /* The longest TTL accepted, and absolute times (no sum to overflow). */
    char line[64];
    snprintf(line, sizeof(line), "PEXPIRE k %" PRId64,
             (int64_t)KV_EXPIRE_RELATIVE_MAX_MS);
    assert_string_equal(kv_run_line(&t, now, line), ":1\r\n");
    assert_string_equal(kv_run_line(&t, now, "PEXPIREAT k 9223372036854775807"),
                        ":1\r\n");
    /* An old body: the transaction encoded without the proposer's check
     * applies as before, at 2^40 ms and at a young group's log time. */
    struct resp_arg body_args[] = {{"0", 1}, {"1", 1},
                                   {"3", 1}, {"EXPIRE", 6},
                                   {"k", 1}, {"9223372036854775", 16}};
    struct kv_write w = {.type = KV_CMD_TXN,
                         .flags = KV_TXN_EXEC,
                         .arg_count = 6,
                         .args = body_args};
    assert_string_equal(kv_run_write(&t, now, &w),
                        "*1\r\n-ERR invalid expire time in 'pexpire' "
                        "command\r\n");
    kv_run_deinit(&t);
    kv_run_init(&t, NULL);
    kv_run_line(&t, 500, "SET k v");
    assert_string_equal(kv_run_write(&t, 500, &w), "*1\r\n:1\r\n");
    kv_run_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_ex_px_exat_pxat_set_the_expiry_and_reads_hide_it),
        cmocka_unit_test(absolute_expiry_becomes_log_time_at_the_proposer),
        cmocka_unit_test(absolute_expiry_is_refused_in_a_proposed_transaction),
        cmocka_unit_test(keepttl_keeps_and_plain_writes_clear_or_keep_as_redis),
        cmocka_unit_test(persist_clears_and_expire_family_follows_redis),
        cmocka_unit_test(getex_reads_then_changes_the_expiry),
        cmocka_unit_test(setex_and_psetex_set_value_and_expiry),
        cmocka_unit_test(an_overflowing_ttl_names_the_command_typed),
        cmocka_unit_test(apply_treats_a_due_key_as_absent),
        cmocka_unit_test(expire_due_removes_only_keys_due_at_its_time),
        cmocka_unit_test(malformed_expiry_ops_are_dropped),
        cmocka_unit_test(snapshots_keep_expiries_and_old_formats_when_none),
        cmocka_unit_test(expiry_is_in_the_state_hash),
        cmocka_unit_test(the_index_finds_due_keys_in_bounded_batches),
        cmocka_unit_test(a_batch_stays_within_its_byte_bound),
        cmocka_unit_test(snapshot_load_rebuilds_the_index),
        cmocka_unit_test(transactions_see_expiry_at_their_op_time),
        cmocka_unit_test(listings_never_show_expired_keys),
        cmocka_unit_test(a_read_is_settled_only_without_expiries_in_between),
        cmocka_unit_test(string_commands_follow_redis_ttl_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
