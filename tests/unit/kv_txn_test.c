/* Transactions in the store (kv/txn.h): COHORT.EXEC and COHORT.TXN applied
 * as one op, in order, with their compares; parse errors; malformed log
 * bytes; the reply bound. */
#include <assert.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/command.h"
#include "kv/kv.h"
#include "kv/txn.h"

#define ARGS_MAX 4096

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
    return t->text;
}

static const char *t_take(struct t *t, struct resp_buf *out)
{
    assert_true(out->ok);
    memcpy(t->text, out->data, out->size);
    t->text[out->size] = '\0';
    return t->text;
}

/* Encode argv as the server would propose it; the body is malloc'd. */
static uint8_t *encode(struct t *t, uint32_t argc, const struct resp_arg *argv,
                       size_t *size)
{
    struct resp_buf out;
    resp_buf_init(&out, 2);
    struct kv_write w;
    assert_int_equal(kv_command_parse(&t->kv.config, argc, argv, &w, &out), 0);
    resp_buf_deinit(&out);
    *size = kv_command_size(&w);
    uint8_t *body = malloc(*size);
    assert_non_null(body);
    assert_int_equal(kv_command_encode(&w, body, *size), *size);
    return body;
}

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
        size_t size;
        uint8_t *body = encode(t, argc, argv, &size);
        reply = t_apply(t, body, size);
        free(body);
    }
    resp_buf_deinit(&out);
    return reply;
}

static uint32_t split(const char *line, struct resp_arg *argv)
{
    static char copy[1 << 16];
    uint32_t argc = 0;
    assert_true(strlen(line) < sizeof(copy));
    strcpy(copy, line);
    for (char *word = strtok(copy, " "); word; word = strtok(NULL, " ")) {
        assert_true(argc < ARGS_MAX);
        argv[argc].ptr = word;
        argv[argc++].size = strlen(word);
    }
    return argc;
}

static const char *run(struct t *t, const char *line)
{
    static struct resp_arg argv[ARGS_MAX];
    uint32_t argc = split(line, argv);
    return t_argv(t, argc, argv);
}

static void exec_runs_commands_in_order_as_one_op(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    assert_string_equal(run(&t, "SET a 10"), "+OK\r\n");
    assert_string_equal(
        run(&t, "COHORT.EXEC 0 5 3 SET a 1 2 INCR a 2 GET a 3 SET a 7 2 GET a"),
        "*5\r\n+OK\r\n:2\r\n$1\r\n2\r\n+OK\r\n$1\r\n7\r\n");
    /* One op (2): the key changed once, at op 2. */
    assert_string_equal(
        run(&t, "KVINFO a"),
        "*8\r\n$5\r\nvalue\r\n$1\r\n7\r\n$7\r\nversion\r\n:2\r\n"
        "$9\r\ncreate_op\r\n:1\r\n$6\r\nmod_op\r\n:2\r\n");
    assert_int_equal(t.kv.op, 2);
    /* An empty transaction: an empty array. */
    assert_string_equal(run(&t, "COHORT.EXEC 0 0"), "*0\r\n");
    t_deinit(&t);
}

static void runtime_errors_stay_in_the_array_and_the_rest_runs(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    run(&t, "SET s text");
    assert_string_equal(
        run(&t, "COHORT.EXEC 0 3 2 INCR s 3 SET b 1 2 INCR b"),
        "*3\r\n-ERR value is not an integer or out of range\r\n+OK\r\n:2\r\n");
    assert_string_equal(run(&t, "GET b"), "$1\r\n2\r\n");
    t_deinit(&t);
}

static void
exec_with_a_changed_revision_answers_null_and_changes_nothing(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    run(&t, "SET w 1"); /* op 1 */
    assert_string_equal(run(&t, "COHORT.REVS w nope"), "*2\r\n:1\r\n:0\r\n");
    run(&t, "SET w 2"); /* op 2 */
    assert_string_equal(run(&t, "COHORT.EXEC 1 w MODOP = 1 1 3 SET x 1"),
                        "*-1\r\n");
    assert_string_equal(run(&t, "EXISTS x"), ":0\r\n");
    assert_string_equal(run(&t, "COHORT.EXEC 1 w MODOP = 2 1 3 SET x 1"),
                        "*1\r\n+OK\r\n");
    /* Deleted and created again: version 1 again, but a new mod op. */
    run(&t, "DEL w");
    run(&t, "SET w 1");
    assert_string_equal(run(&t, "COHORT.REVS w"), "*1\r\n:6\r\n");
    assert_string_equal(run(&t, "COHORT.EXEC 1 w MODOP = 2 1 3 SET x 2"),
                        "*-1\r\n");
    /* A key watched while missing: 0 until it is created. */
    assert_string_equal(run(&t, "COHORT.EXEC 1 m MODOP = 0 1 3 SET m 1"),
                        "*1\r\n+OK\r\n");
    assert_string_equal(run(&t, "COHORT.EXEC 1 m MODOP = 0 1 3 SET m 2"),
                        "*-1\r\n");
    t_deinit(&t);
}

static void txn_runs_then_or_else_by_its_compares(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    run(&t, "SET k v1");
    run(&t, "SET k v2"); /* version 2, mod op 2 */
    static const char *const hold[] = {
        "k EXISTS",        "gone MISSING",     "k VALUE = v2",  "k VALUE != v1",
        "gone VALUE != x", "k VERSION = 2",    "k VERSION > 1", "k VERSION < 3",
        "k VERSION != 7",  "gone VERSION = 0", "k MODOP = 2",   "k modop > 1",
    };
    static const char *const fail[] = {
        "k MISSING",     "gone EXISTS",    "k VALUE = v1",  "gone VALUE = x",
        "k VALUE != v2", "k VERSION = 1",  "k VERSION > 2", "k VERSION < 2",
        "k MODOP != 2",  "gone MODOP > 0",
    };
    char line[256];
    for (size_t i = 0; i < sizeof(hold) / sizeof(*hold); i++) {
        snprintf(line, sizeof(line), "COHORT.TXN 1 %s 1 2 GET k 1 2 GET gone",
                 hold[i]);
        assert_string_equal(run(&t, line), "*2\r\n:1\r\n*1\r\n$2\r\nv2\r\n");
    }
    for (size_t i = 0; i < sizeof(fail) / sizeof(*fail); i++) {
        snprintf(line, sizeof(line), "COHORT.TXN 1 %s 1 2 GET k 1 2 GET gone",
                 fail[i]);
        assert_string_equal(run(&t, line), "*2\r\n:0\r\n*1\r\n$-1\r\n");
    }
    /* All compares must hold; ELSE writes too. */
    assert_string_equal(run(&t,
                            "COHORT.TXN 2 k EXISTS k VERSION = 9 1 3 SET a 1 2 "
                            "3 SET b 2 3 SET c 3"),
                        "*2\r\n:0\r\n*2\r\n+OK\r\n+OK\r\n");
    assert_string_equal(run(&t, "MGET a b c"),
                        "*3\r\n$-1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    t_deinit(&t);
}

static void parse_errors_are_answered_before_anything_is_proposed(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    static const struct {
        const char *line, *reply;
    } cases[] = {
        {"COHORT.EXEC 0 1 2 NOPE a",
         "-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n"},
        {"COHORT.EXEC 0 1 1 GET",
         "-ERR wrong number of arguments for 'get' command\r\n"},
        {"COHORT.EXEC 0 1 2 SET a",
         "-ERR wrong number of arguments for 'set' command\r\n"},
        {"COHORT.EXEC 0 1 4 SET a b BAD", "-ERR syntax error\r\n"},
        {"COHORT.EXEC 0 1 4 COHORT.EXEC 0 0 x",
         "-ERR 'COHORT.EXEC' cannot run inside a transaction; only store "
         "reads and writes can\r\n"},
        {"COHORT.EXEC 0 1 2 SCAN 0",
         "-ERR 'SCAN' cannot run inside a transaction: its reply depends on "
         "the member; use COHORT.RANGE\r\n"},
        {"COHORT.EXEC 0 1 1 RANDOMKEY",
         "-ERR 'RANDOMKEY' cannot run inside a transaction: its reply "
         "depends on the member; use COHORT.RANGE\r\n"},
        {"COHORT.EXEC 0 1 3 ACL DELUSER bob",
         "-ERR 'ACL' cannot run inside a transaction; only store reads and "
         "writes can\r\n"},
        {"COHORT.EXEC 0 1 9 GET a",
         "-ERR syntax error in a transaction: each command is <argc> <name> "
         "[<arg> ...]\r\n"},
        {"COHORT.EXEC 0 2 2 GET a",
         "-ERR syntax error in a transaction: each command is <argc> <name> "
         "[<arg> ...]\r\n"},
        {"COHORT.EXEC 0 1 2 GET a extra",
         "-ERR syntax error in a transaction: arguments after the last "
         "command\r\n"},
        {"COHORT.EXEC x 0",
         "-ERR syntax error in a transaction: expected the number of "
         "compares\r\n"},
        {"COHORT.TXN 1 k VERSION = x 0 0",
         "-ERR syntax error in a compare: expected <key> EXISTS|MISSING, "
         "<key> VALUE =|!= <bytes>, or <key> VERSION|MODOP =|!=|<|> <n>\r\n"},
        {"COHORT.TXN 1 k VALUE < x 0 0",
         "-ERR syntax error in a compare: expected <key> EXISTS|MISSING, "
         "<key> VALUE =|!= <bytes>, or <key> VERSION|MODOP =|!=|<|> <n>\r\n"},
        {"COHORT.TXN 0 0",
         "-ERR wrong number of arguments for 'cohort.txn' command\r\n"},
        {"COHORT.TXN 0 0 1 1",
         "-ERR syntax error in a transaction: each command is <argc> <name> "
         "[<arg> ...]\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        assert_string_equal(run(&t, cases[i].line), cases[i].reply);
    assert_int_equal(t.kv.op, 0); /* nothing was applied */
    t_deinit(&t);
}

static void limits_on_commands_and_bytes_name_the_limit(void **state)
{
    (void)state;
    struct t t;
    struct kv_config config = kv_config_default();
    config.value_size_max = 1000;
    config.key_size_max = 100;
    t_init_config(&t, &config);
    static char line[1 << 16];
    /* KV_TXN_COMMANDS_MAX + 1 commands. */
    size_t used = (size_t)snprintf(line, sizeof(line), "COHORT.EXEC 0 %u",
                                   KV_TXN_COMMANDS_MAX + 1);
    for (uint32_t i = 0; i <= KV_TXN_COMMANDS_MAX; i++)
        used += (size_t)snprintf(line + used, sizeof(line) - used, " 2 GET a");
    assert_string_equal(run(&t, line),
                        "-ERR transaction has over 1024 commands (the "
                        "limit)\r\n");
    /* Bytes: four values of 900 bytes are over 1000 + 100 + 2048. */
    char value[901];
    memset(value, 'v', 900);
    value[900] = '\0';
    used = (size_t)snprintf(line, sizeof(line), "COHORT.EXEC 0 4");
    for (int i = 0; i < 4; i++)
        used += (size_t)snprintf(line + used, sizeof(line) - used,
                                 " 3 SET k%d %s", i, value);
    const char *reply = run(&t, line);
    assert_non_null(strstr(reply, "-ERR transaction is "));
    assert_non_null(
        strstr(reply, "limit is 3148 (max-value-size + max-key-size + 2048)"));
    assert_int_equal(t.kv.op, 0);
    t_deinit(&t);
}

static void
reply_over_its_limit_replaces_elements_but_all_commands_run(void **state)
{
    (void)state;
    struct t t;
    struct kv_config config = kv_config_default();
    config.value_size_max = 1000;
    t_init_config(&t, &config);
    static char line[1 << 16];
    char value[1001];
    memset(value, 'v', 1000);
    value[1000] = '\0';
    snprintf(line, sizeof(line), "SET big %s", value);
    run(&t, line);
    /* 100 GETs of 1000 bytes are over 1000 + 512 + 1026 * 64 bytes; the
     * INCR after them still runs and answers. */
    size_t used = (size_t)snprintf(line, sizeof(line), "COHORT.EXEC 0 101");
    for (int i = 0; i < 100; i++)
        used +=
            (size_t)snprintf(line + used, sizeof(line) - used, " 2 GET big");
    snprintf(line + used, sizeof(line) - used, " 2 INCR n");
    const char *reply = run(&t, line);
    assert_true(strlen(reply) <= kv_reply_size_max(&config));
    assert_non_null(strstr(reply, "-" KV_TXN_REPLY_TOO_BIG "\r\n"));
    assert_true(strncmp(reply, "*101\r\n$1000\r\n", 13) == 0);
    size_t n = strlen(reply);
    assert_string_equal(reply + n - 4, ":1\r\n");
    assert_string_equal(run(&t, "GET n"), "$1\r\n1\r\n");
    t_deinit(&t);
}

static void
malformed_transaction_bytes_change_nothing_and_are_counted(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    run(&t, "SET a 1");
    uint64_t hash = kv_state_hash(&t.kv);
    static struct resp_arg argv[ARGS_MAX];
    uint32_t argc = split("COHORT.EXEC 1 a EXISTS 2 3 SET a 2 3 SET b 9", argv);
    size_t size;
    uint8_t *body = encode(&t, argc, argv, &size);
    /* The count of THEN commands is argument 4 ("2"): make it "9", so the
     * list runs past the end. The framing stays valid. */
    uint8_t *count = memchr(body + KV_COMMAND_HEADER_SIZE, '2', size);
    assert_non_null(count);
    uint8_t saved = *count;
    *count = '9';
    uint64_t before = t.kv.malformed_ops;
    assert_string_equal(t_apply(&t, body, size),
                        "-ERR malformed transaction in log entry at op 2\r\n");
    assert_int_equal(t.kv.malformed_ops, before + 1);
    assert_int_equal(kv_state_hash(&t.kv), hash);
    *count = saved;
    /* Flipping any byte never crashes, and either applies all or nothing. */
    for (size_t i = 0; i < size; i++) {
        for (int bit = 0; bit < 8; bit++) {
            struct t u;
            t_init(&u);
            run(&u, "SET a 1");
            body[i] ^= (uint8_t)(1u << bit);
            const char *r = t_apply(&u, body, size);
            body[i] ^= (uint8_t)(1u << bit);
            if (r[0] == '-') {
                assert_int_equal(kv_state_hash(&u.kv), hash);
                assert_true(u.kv.malformed_ops >= 1 ||
                            strncmp(r, "-ERR", 4) == 0);
            }
            assert_true(kv_invariants_hold(&u.kv));
            t_deinit(&u);
        }
    }
    assert_string_equal(t_apply(&t, body, size), "*2\r\n+OK\r\n+OK\r\n");
    free(body);
    t_deinit(&t);
}

static void same_transactions_give_the_same_state_on_every_replica(void **state)
{
    (void)state;
    struct t a, b;
    struct kv_config config = kv_config_default();
    t_init_config(&a, &config);
    config.hash_seed = 12345;
    t_init_config(&b, &config);
    static const char *const lines[] = {
        "SET x 1",
        "COHORT.EXEC 0 3 3 SET y 2 2 INCR x 5 MSET p 1 q 2",
        "COHORT.TXN 1 x VALUE = 2 2 2 DEL y 2 INCR p 1 2 INCR q",
        "COHORT.EXEC 1 x MODOP = 1 1 2 DEL x",
        "COHORT.EXEC 1 x MODOP = 2 1 2 DEL x",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
        char ra[256];
        snprintf(ra, sizeof(ra), "%s", run(&a, lines[i]));
        assert_string_equal(run(&b, lines[i]), ra);
    }
    assert_int_equal(kv_state_hash(&a.kv), kv_state_hash(&b.kv));
    assert_string_equal(run(&a, "MGET x y p q"),
                        "*4\r\n$-1\r\n$-1\r\n$1\r\n2\r\n$1\r\n2\r\n");
    t_deinit(&a);
    t_deinit(&b);
}

static void growth_counts_every_write_of_the_transaction(void **state)
{
    (void)state;
    struct t t;
    t_init(&t);
    static struct resp_arg argv[ARGS_MAX];
    uint32_t argc =
        split("COHORT.TXN 0 1 3 SET a 12345 1 5 MSET b 1 c 22", argv);
    struct resp_buf out;
    resp_buf_init(&out, 2);
    struct kv_write w;
    assert_int_equal(kv_command_parse(&t.kv.config, argc, argv, &w, &out), 0);
    uint64_t expect =
        kv_record_cost(1, 5) + kv_record_cost(1, 1) + kv_record_cost(1, 2);
    assert_int_equal(kv_command_growth(&t.kv, &w), expect);
    resp_buf_deinit(&out);
    t_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exec_runs_commands_in_order_as_one_op),
        cmocka_unit_test(runtime_errors_stay_in_the_array_and_the_rest_runs),
        cmocka_unit_test(
            exec_with_a_changed_revision_answers_null_and_changes_nothing),
        cmocka_unit_test(txn_runs_then_or_else_by_its_compares),
        cmocka_unit_test(parse_errors_are_answered_before_anything_is_proposed),
        cmocka_unit_test(limits_on_commands_and_bytes_name_the_limit),
        cmocka_unit_test(
            reply_over_its_limit_replaces_elements_but_all_commands_run),
        cmocka_unit_test(
            malformed_transaction_bytes_change_nothing_and_are_counted),
        cmocka_unit_test(
            same_transactions_give_the_same_state_on_every_replica),
        cmocka_unit_test(growth_counts_every_write_of_the_transaction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
