/* The string and keyspace commands of kv/strings.h: each command's
 * semantics, replies and errors as Redis gives them, versions, the ordered
 * index after RENAME, COPY, UNLINK and FLUSHALL, transactions, growth, and
 * hostile log bodies of the new types. */
#include <assert.h>
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
#include "kv/command.h"
#include "kv/kv.h"
#include "kv/strings.h"

#define ARGS_MAX 256

struct t {
    struct kv kv;
    uint64_t op;
    uint8_t *reply;
    size_t reply_max;
    char *text;
};

static void t_init_config(struct t *t, const struct kv_config *config)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(kv_init(&t->kv, config), 0);
    t->reply_max = kv_reply_size_max(config);
    t->reply = malloc(t->reply_max);
    t->text = malloc(t->reply_max + 1);
    assert_non_null(t->reply);
    assert_non_null(t->text);
}

static void t_init(struct t *t)
{
    struct kv_config config = kv_config_default();
    t_init_config(t, &config);
}

static void t_deinit(struct t *t)
{
    kv_deinit(&t->kv);
    free(t->reply);
    free(t->text);
}

static const char *t_apply(struct t *t, const uint8_t *body, size_t size)
{
    t->op++;
    size_t n = kv_apply(&t->kv, t->op, 1000 * t->op, body, size, t->reply,
                        t->reply_max);
    assert_true(n <= t->reply_max);
    memcpy(t->text, t->reply, n);
    t->text[n] = '\0';
    assert_true(kv_invariants_hold(&t->kv));
    return t->text;
}

static const char *t_take(struct t *t, struct resp_buf *out)
{
    assert_true(out->ok);
    memcpy(t->text, out->data, out->size);
    t->text[out->size] = '\0';
    return t->text;
}

/* Parse argv as the server does; a write is encoded and applied as the
 * next op, a read answered from the store. */
static const char *t_argv(struct t *t, uint32_t argc,
                          const struct resp_arg *argv)
{
    struct resp_buf out;
    resp_buf_init(&out, 2);
    const char *reply;
    struct kv_write w;
    if (kv_command_class(&argv[0]) == KV_CLASS_READ) {
        kv_query(&t->kv, argc, argv, &out);
        reply = t_take(t, &out);
    } else if (kv_command_parse(&t->kv.config, argc, argv, &w, &out) != 0) {
        reply = t_take(t, &out);
    } else {
        size_t size = kv_command_size(&w);
        uint8_t *body = malloc(size);
        assert_non_null(body);
        assert_int_equal(kv_command_encode(&w, body, size), size);
        reply = t_apply(t, body, size);
        free(body);
    }
    resp_buf_deinit(&out);
    return reply;
}

/* Words split on spaces; "''" is an empty argument. */
static const char *run(struct t *t, const char *line)
{
    static char copy[1 << 12];
    static struct resp_arg argv[ARGS_MAX];
    uint32_t argc = 0;
    assert_true(strlen(line) < sizeof(copy));
    strcpy(copy, line);
    for (char *word = strtok(copy, " "); word; word = strtok(NULL, " ")) {
        assert_true(argc < ARGS_MAX);
        argv[argc].ptr = word;
        argv[argc++].size = strcmp(word, "''") == 0 ? 0 : strlen(word);
    }
    return t_argv(t, argc, argv);
}

static void expect(struct t *t, const char *line, const char *reply)
{
    const char *got = run(t, line);
    if (strcmp(got, reply) != 0)
        fail_msg("%s: got %s, want %s", line, got, reply);
}

/* "version V create_op C mod_op M" of key, from KVINFO. */
static void expect_meta(struct t *t, const char *key, uint64_t version,
                        uint64_t create_op, uint64_t mod_op)
{
    const struct kv_record *r =
        kv_get(&t->kv, (const uint8_t *)key, strlen(key));
    assert_non_null(r);
    assert_int_equal(r->version, version);
    assert_int_equal(r->create_op, create_op);
    assert_int_equal(r->mod_op, mod_op);
}

static void getdel_getset_setnx_msetnx(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    expect(&t, "GETDEL a", "$-1\r\n");
    expect(&t, "SET a 1", "+OK\r\n");
    expect(&t, "GETDEL a", "$1\r\n1\r\n");
    expect(&t, "EXISTS a", ":0\r\n");
    expect(&t, "GETSET a x", "$-1\r\n");
    expect(&t, "GETSET a y", "$1\r\nx\r\n");
    expect(&t, "GET a", "$1\r\ny\r\n");
    expect(&t, "SETNX a z", ":0\r\n");
    expect(&t, "SETNX b z", ":1\r\n");
    expect(&t, "GET b", "$1\r\nz\r\n");
    /* All or nothing: b exists, so c is not set either. */
    expect(&t, "MSETNX c 1 b 2", ":0\r\n");
    expect(&t, "EXISTS c", ":0\r\n");
    expect(&t, "GET b", "$1\r\nz\r\n");
    expect(&t, "MSETNX c 1 d 2 c 3", ":1\r\n");
    expect(&t, "MGET c d", "*2\r\n$1\r\n3\r\n$1\r\n2\r\n");
    expect(&t, "MSETNX c",
           "-ERR wrong number of arguments for 'msetnx' "
           "command\r\n");
    expect(&t, "MSETNX c 1 d",
           "-ERR wrong number of arguments for 'msetnx' "
           "command\r\n");
    expect(&t, "SETNX a",
           "-ERR wrong number of arguments for 'setnx' "
           "command\r\n");
    expect(&t, "GETDEL a b",
           "-ERR wrong number of arguments for 'getdel' "
           "command\r\n");
    expect(&t, "GETSET a",
           "-ERR wrong number of arguments for 'getset' "
           "command\r\n");
    t_deinit(&t);
}

static void append_strlen_setrange_getrange(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    expect(&t, "STRLEN s", ":0\r\n");
    expect(&t, "APPEND s Hello", ":5\r\n");
    expect(&t, "APPEND s _World", ":11\r\n");
    expect(&t, "STRLEN s", ":11\r\n");
    /* Redis's documented examples. */
    expect(&t, "SET k1 Hello_World", "+OK\r\n");
    expect(&t, "SETRANGE k1 6 Redis", ":11\r\n");
    expect(&t, "GET k1", "$11\r\nHello_Redis\r\n");
    expect(&t, "SETRANGE k2 6 Redis", ":11\r\n");
    expect(&t, "GET k2", "$11\r\n\0\0\0\0\0\0Redis\r\n");
    assert_memory_equal(t.text, "$11\r\n\0\0\0\0\0\0Redis\r\n", 18);
    /* An empty value writes nothing. */
    expect(&t, "SETRANGE none 5 ''", ":0\r\n");
    expect(&t, "EXISTS none", ":0\r\n");
    expect(&t, "SETRANGE k1 100 ''", ":11\r\n");
    expect(&t, "SETRANGE k1 -1 x", "-ERR offset is out of range\r\n");
    expect(&t, "SETRANGE k1 x x",
           "-ERR value is not an integer or out of range\r\n");
    expect(&t, "SETRANGE k1 1048576 x",
           "-ERR string exceeds maximum allowed size: 1048577 bytes; limit "
           "is 1048576 (max-value-size)\r\n");
    expect(&t, "SET mykey This_is_a_string", "+OK\r\n");
    expect(&t, "GETRANGE mykey 0 3", "$4\r\nThis\r\n");
    expect(&t, "GETRANGE mykey -3 -1", "$3\r\ning\r\n");
    expect(&t, "GETRANGE mykey 0 -1", "$16\r\nThis_is_a_string\r\n");
    expect(&t, "GETRANGE mykey 10 100", "$6\r\nstring\r\n");
    expect(&t, "SUBSTR mykey -100 1", "$2\r\nTh\r\n");
    expect(&t, "GETRANGE mykey -1 -5", "$0\r\n\r\n");
    expect(&t, "GETRANGE mykey 5 2", "$0\r\n\r\n");
    expect(&t, "GETRANGE missing 0 -1", "$0\r\n\r\n");
    expect(&t, "GETRANGE mykey a 1",
           "-ERR value is not an integer or out of range\r\n");
    expect(&t, "GETRANGE mykey 1",
           "-ERR wrong number of arguments for 'getrange' command\r\n");
    t_deinit(&t);
}

static void append_and_setrange_respect_the_value_limit(void **state)
{
    (void)state;
    struct t t;
    struct kv_config config = kv_config_default();
    config.value_size_max = 8;
    t_init_config(&t, &config);
    expect(&t, "APPEND a 12345", ":5\r\n");
    expect(&t, "APPEND a 6789",
           "-ERR string exceeds maximum allowed size: 9 bytes; limit is 8 "
           "(max-value-size)\r\n");
    expect(&t, "GET a", "$5\r\n12345\r\n");
    expect(&t, "SETRANGE a 7 x", ":8\r\n");
    expect(&t, "SETRANGE a 8 x",
           "-ERR string exceeds maximum allowed size: 9 bytes; limit is 8 "
           "(max-value-size)\r\n");
    t_deinit(&t);
}

static void incrbyfloat_matches_redis(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    /* Redis's documented example. */
    expect(&t, "SET mykey 10.50", "+OK\r\n");
    expect(&t, "INCRBYFLOAT mykey 0.1", "$4\r\n10.6\r\n");
    expect(&t, "INCRBYFLOAT mykey -5", "$3\r\n5.6\r\n");
    expect(&t, "SET mykey 5.0e3", "+OK\r\n");
    expect(&t, "INCRBYFLOAT mykey 2.0e2", "$4\r\n5200\r\n");
    expect(&t, "GET mykey", "$4\r\n5200\r\n");
    expect(&t, "INCRBYFLOAT new 3", "$1\r\n3\r\n");
    expect(&t, "INCRBYFLOAT new -3", "$1\r\n0\r\n");
    expect(&t, "INCRBYFLOAT new -0.5", "$4\r\n-0.5\r\n");
    expect(&t, "INCRBYFLOAT new 0.5", "$1\r\n0\r\n");
    expect(&t, "INCRBYFLOAT new 1e-5", "$7\r\n0.00001\r\n");
    /* Replies checked against redis-server 7.0.15. */
    expect(&t, "INCRBYFLOAT m 0.1", "$3\r\n0.1\r\n");
    expect(&t, "INCRBYFLOAT m 0.2", "$3\r\n0.3\r\n");
    expect(&t, "INCRBYFLOAT m -123.756", "$8\r\n-123.456\r\n");
    expect(&t, "INCRBYFLOAT m 3.0000000000000000001", "$8\r\n-120.456\r\n");
    expect(&t, "INCRBYFLOAT new abc", "-ERR value is not a valid float\r\n");
    expect(&t, "INCRBYFLOAT new nan", "-ERR value is not a valid float\r\n");
    expect(&t, "INCRBYFLOAT new ''", "-ERR value is not a valid float\r\n");
    expect(&t, "INCRBYFLOAT new 1e99999",
           "-ERR value is not a valid float\r\n");
    expect(&t, "INCRBYFLOAT new inf",
           "-ERR increment would produce NaN or Infinity\r\n");
    expect(&t, "SET s text", "+OK\r\n");
    expect(&t, "INCRBYFLOAT s 1", "-ERR value is not a valid float\r\n");
    expect(&t, "GET new", "$7\r\n0.00001\r\n");
    t_deinit(&t);
}

static void copy_and_rename_keep_the_index_and_versions(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    expect(&t, "SET a 1", "+OK\r\n"); /* op 1 */
    expect(&t, "SET a 2", "+OK\r\n"); /* op 2 */
    expect(&t, "COPY a b", ":1\r\n"); /* op 3 */
    expect_meta(&t, "b", 1, 3, 3);
    expect_meta(&t, "a", 2, 1, 2);
    expect(&t, "COPY a b", ":0\r\n");
    expect(&t, "SET a 3", "+OK\r\n");         /* op 5 */
    expect(&t, "COPY a b REPLACE", ":1\r\n"); /* op 6: b overwritten */
    expect_meta(&t, "b", 2, 3, 6);
    expect(&t, "GET b", "$1\r\n3\r\n");
    expect(&t, "COPY nope b", ":0\r\n");
    expect(&t, "COPY a a",
           "-ERR source and destination objects are the same\r\n");
    expect(&t, "COPY a c DB 0", ":1\r\n");
    expect(&t, "COPY a d DB 1",
           "-ERR DB index is out of range: cohort has one database, 0\r\n");
    expect(&t, "COPY a d DB x",
           "-ERR value is not an integer or out of range\r\n");
    expect(&t, "COPY a d DB", "-ERR syntax error\r\n");
    expect(&t, "COPY a d FOO", "-ERR syntax error\r\n");
    expect(&t, "RENAME nope x", "-ERR no such key\r\n");
    expect(&t, "RENAMENX nope x", "-ERR no such key\r\n");
    uint64_t op = t.op;
    expect(&t, "RENAME a a", "+OK\r\n");
    expect_meta(&t, "a", 3, 1, 5); /* unchanged */
    expect(&t, "RENAMENX a a", ":0\r\n");
    expect(&t, "RENAMENX a b", ":0\r\n");
    expect(&t, "RENAME a z", "+OK\r\n");
    expect_meta(&t, "z", 1, op + 4, op + 4);
    expect(&t, "RENAMENX z y", ":1\r\n");
    expect(&t, "RENAME y b", "+OK\r\n"); /* onto an existing key */
    expect_meta(&t, "b", 3, 3, op + 6);
    expect(&t, "UNLINK b c nope", ":2\r\n");
    expect(&t, "SET m 1", "+OK\r\n");
    /* The ordered index follows every change. */
    expect(&t, "COHORT.RANGE '' ''", "*2\r\n$1\r\nm\r\n$1\r\n1\r\n");
    expect(&t, "DBSIZE", ":1\r\n");
    expect(&t, "RENAME m",
           "-ERR wrong number of arguments for 'rename' "
           "command\r\n");
    t_deinit(&t);
}

static void flushall_removes_every_key_but_keeps_users_and_op(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    for (int i = 0; i < 200; i++) {
        char line[64];
        snprintf(line, sizeof(line), "SET key%03d %d", i, i);
        expect(&t, line, "+OK\r\n");
    }
    expect(&t, "ACL SETUSER alice on nopass ~* +@all", "+OK\r\n");
    uint64_t users = t.kv.acl.digest;
    assert_int_not_equal(users, 0);
    expect(&t, "FLUSHALL", "+OK\r\n");
    assert_int_equal(t.kv.op, t.op);
    assert_int_equal(t.kv.acl.digest, users);
    expect(&t, "DBSIZE", ":0\r\n");
    expect(&t, "COHORT.RANGE '' ''", "*0\r\n");
    assert_int_equal(t.kv.index.count, 0);
    expect(&t, "SET key001 x", "+OK\r\n");
    expect_meta(&t, "key001", 1, t.op, t.op);
    expect(&t, "FLUSHDB ASYNC", "+OK\r\n");
    expect(&t, "FLUSHALL sync", "+OK\r\n");
    expect(&t, "FLUSHALL now", "-ERR syntax error\r\n");
    expect(&t, "FLUSHDB SYNC SYNC", "-ERR syntax error\r\n");
    expect(&t, "DBSIZE", ":0\r\n");
    t_deinit(&t);
}

static void new_commands_run_inside_a_transaction(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    expect(&t, "SET a 1", "+OK\r\n");
    expect(&t,
           "COHORT.EXEC 0 6 3 APPEND a 2 3 RENAME a b 3 INCRBYFLOAT b 0.5 "
           "2 STRLEN b 4 GETRANGE b 0 1 2 GETDEL b",
           "*6\r\n:2\r\n+OK\r\n$4\r\n12.5\r\n:4\r\n$2\r\n12\r\n"
           "$4\r\n12.5\r\n");
    expect(&t, "DBSIZE", ":0\r\n");
    expect(&t, "COHORT.EXEC 0 3 3 MSETNX x 1 1 FLUSHALL 3 SETNX x 2",
           "*3\r\n:1\r\n+OK\r\n:1\r\n");
    expect(&t, "GET x", "$1\r\n2\r\n");
    /* Errors at run time stay in the array. */
    expect(&t, "COHORT.EXEC 0 2 3 RENAME nope y 3 SETNX y 1",
           "*2\r\n-ERR no such key\r\n:1\r\n");
    /* Parse errors refuse the whole transaction. */
    expect(&t, "COHORT.EXEC 0 1 3 COPY a a",
           "-ERR source and destination objects are the same\r\n");
    t_deinit(&t);
}

static void growth_bounds_what_apply_adds(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    static const char *const lines[] = {
        "APPEND a hello",     "APPEND a world",
        "SETRANGE b 10 xyz",  "SETRANGE b 2 q",
        "INCRBYFLOAT f 1.25", "INCRBYFLOAT f 100",
        "MSETNX m 1 n 2",     "COPY a c",
        "RENAME c dd",        "GETSET a 1234567890123",
        "SETNX s 1",          "GETDEL a",
        "FLUSHALL",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct resp_arg argv[8];
        char copy[64];
        uint32_t argc = 0;
        snprintf(copy, sizeof(copy), "%s", lines[i]);
        for (char *w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
            argv[argc].ptr = w;
            argv[argc++].size = strlen(w);
        }
        struct kv_write w;
        struct resp_buf out;
        resp_buf_init(&out, 2);
        assert_int_equal(kv_command_parse(&t.kv.config, argc, argv, &w, &out),
                         0);
        resp_buf_deinit(&out);
        uint64_t before = kv_used_memory(&t.kv);
        uint64_t growth = kv_command_growth(&t.kv, &w);
        (void)t_argv(&t, argc, argv);
        uint64_t after = kv_used_memory(&t.kv);
        if (after > before && after - before > growth)
            fail_msg("%s grew %" PRIu64 " bytes, growth said %" PRIu64,
                     lines[i], after - before, growth);
    }
    t_deinit(&t);
}

/* A body of the given type with the given arguments, as a hostile peer or
 * disk might write it. */
static size_t body_of(uint8_t *body, size_t size_max, uint8_t type,
                      uint16_t flags, uint32_t argc, const char *const *args)
{
    struct writer w = writer_make(body, size_max);
    writer_u8(&w, KV_COMMAND_FORMAT);
    writer_u8(&w, type);
    writer_u16(&w, flags);
    writer_u32(&w, argc);
    for (uint32_t i = 0; i < argc; i++) {
        writer_u32(&w, (uint32_t)strlen(args[i]));
        writer_bytes(&w, args[i], strlen(args[i]));
    }
    assert_true(w.ok);
    return size_max - w.left;
}

static void hostile_bodies_change_nothing(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    expect(&t, "SET a 1", "+OK\r\n");
    uint64_t hash = kv_state_hash(&t.kv);
    static const char *const one[] = {"a"};
    static const char *const two[] = {"a", "b"};
    static const char *const three[] = {"a", "b", "c"};
    static const char *const same[] = {"a", "a"};
    static const char *const offsets[][3] = {
        {"a", "-1", "x"}, {"a", "x", "y"}, {"a", "99999999999", "y"}};
    static const char *const floats[][2] = {
        {"a", "nan"}, {"a", " 1"}, {"a", "1x"}, {"a", ""}, {"a", "inf"}};
    struct {
        uint8_t type;
        uint16_t flags;
        uint32_t argc;
        const char *const *args;
        const char *reply_prefix;
    } cases[] = {
        {KV_CMD_GETDEL, 0, 2, two, "-ERR malformed command"},
        {KV_CMD_GETDEL, 1, 1, one, "-ERR malformed command"},
        {KV_CMD_MSETNX, 0, 3, three, "-ERR malformed command"},
        {KV_CMD_MSETNX, 0, 0, one, "-ERR malformed command"},
        {KV_CMD_APPEND, 0, 1, one, "-ERR malformed command"},
        {KV_CMD_SETRANGE, 0, 2, two, "-ERR malformed command"},
        {KV_CMD_INCRBYFLOAT, 2, 2, two, "-ERR malformed command"},
        {KV_CMD_COPY, 2, 2, two, "-ERR malformed command"},
        {KV_CMD_COPY, 0, 2, same, "-ERR source and destination"},
        {KV_CMD_RENAME, 4, 2, two, "-ERR malformed command"},
        {KV_CMD_RENAME, 0, 3, three, "-ERR malformed command"},
        {KV_CMD_FLUSHALL, 0, 1, one, "-ERR malformed command"},
        {KV_CMD_FLUSHALL, 1, 0, one, "-ERR malformed command"},
        {9, 0, 1, one, "-ERR malformed command"},
        {48, 0, 1, one, "-ERR malformed command"},
        {255, 0, 1, one, "-ERR malformed command"},
        {KV_CMD_SETRANGE, 0, 3, offsets[0], "-ERR offset is out of range"},
        {KV_CMD_SETRANGE, 0, 3, offsets[1], "-ERR value is not an integer"},
        {KV_CMD_SETRANGE, 0, 3, offsets[2], "-ERR string exceeds maximum"},
        {KV_CMD_INCRBYFLOAT, 0, 2, floats[0], "-ERR value is not a valid"},
        {KV_CMD_INCRBYFLOAT, 0, 2, floats[1], "-ERR value is not a valid"},
        {KV_CMD_INCRBYFLOAT, 0, 2, floats[2], "-ERR value is not a valid"},
        {KV_CMD_INCRBYFLOAT, 0, 2, floats[3], "-ERR value is not a valid"},
        {KV_CMD_INCRBYFLOAT, 0, 2, floats[4], "-ERR increment would produce"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t body[256];
        size_t size = body_of(body, sizeof(body), cases[i].type, cases[i].flags,
                              cases[i].argc, cases[i].args);
        const char *reply = t_apply(&t, body, size);
        if (strncmp(reply, cases[i].reply_prefix,
                    strlen(cases[i].reply_prefix)) != 0)
            fail_msg("case %zu: %s", i, reply);
        assert_int_equal(kv_state_hash(&t.kv), hash);
        /* Truncated: every cut is malformed. */
        for (size_t cut = 0; cut < size; cut++)
            assert_ptr_equal(
                strstr(t_apply(&t, body, cut), "-ERR malformed command"),
                t.text);
        assert_int_equal(kv_state_hash(&t.kv), hash);
    }
    t_deinit(&t);
}

/* A destination over the largest key any store allows is refused in
 * apply; one over this member's own limit but not that one is renamed to,
 * as on a member with a larger limit (apply does not read the local
 * limits, kv_apply_config()). */
static void hostile_destination_over_the_key_limit_is_refused(void **state)
{
    (void)state;
    struct kv_config small = kv_config_default();
    small.key_size_max = 1;
    struct t s;
    t_init_config(&s, &small);
    expect(&s, "SET a 1", "+OK\r\n");
    char *huge = malloc(KV_KEY_SIZE_LIMIT + 2);
    assert_non_null(huge);
    memset(huge, 'b', KV_KEY_SIZE_LIMIT + 1);
    huge[KV_KEY_SIZE_LIMIT + 1] = '\0';
    const char *const long_dst[] = {"a", huge};
    size_t body_max = KV_KEY_SIZE_LIMIT + 64;
    uint8_t *body = malloc(body_max);
    assert_non_null(body);
    size_t size = body_of(body, body_max, KV_CMD_RENAME, 0, 2, long_dst);
    assert_string_equal(t_apply(&s, body, size),
                        "-ERR key is 1048577 bytes; limit is 1048576 "
                        "(max-key-size)\r\n");
    expect(&s, "GET a", "$1\r\n1\r\n");
    static const char *const two_byte_dst[] = {"a", "bb"};
    size = body_of(body, body_max, KV_CMD_RENAME, 0, 2, two_byte_dst);
    assert_string_equal(t_apply(&s, body, size), "+OK\r\n");
    expect(&s, "EXISTS a", ":0\r\n");
    free(body);
    free(huge);
    t_deinit(&s);
}

static void same_commands_give_the_same_state_with_other_seeds(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "MSET a 1 b 2 c 3",  "APPEND a x",   "SETRANGE b 4 yy",
        "INCRBYFLOAT c 0.1", "COPY a d",     "RENAME b e",
        "RENAMENX c f",      "GETDEL d",     "MSETNX g 1 h 2",
        "UNLINK g",          "GETSET h 3",   "SETNX i 4",
        "FLUSHALL",          "MSET a 1 b 2", "RENAME a z",
    };
    struct t x, y;
    struct kv_config cx = kv_config_default(), cy = kv_config_default();
    cy.hash_seed = 0x9e3779b97f4a7c15ull;
    t_init_config(&x, &cx);
    t_init_config(&y, &cy);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char a[256];
        snprintf(a, sizeof(a), "%s", run(&x, lines[i]));
        assert_string_equal(run(&y, lines[i]), a);
        assert_int_equal(kv_state_hash(&x.kv), kv_state_hash(&y.kv));
    }
    t_deinit(&x);
    t_deinit(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(getdel_getset_setnx_msetnx),
        cmocka_unit_test(append_strlen_setrange_getrange),
        cmocka_unit_test(append_and_setrange_respect_the_value_limit),
        cmocka_unit_test(incrbyfloat_matches_redis),
        cmocka_unit_test(copy_and_rename_keep_the_index_and_versions),
        cmocka_unit_test(flushall_removes_every_key_but_keeps_users_and_op),
        cmocka_unit_test(new_commands_run_inside_a_transaction),
        cmocka_unit_test(growth_bounds_what_apply_adds),
        cmocka_unit_test(hostile_bodies_change_nothing),
        cmocka_unit_test(hostile_destination_over_the_key_limit_is_refused),
        cmocka_unit_test(same_commands_give_the_same_state_with_other_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
