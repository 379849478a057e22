/* The server's command table: lookup, Redis's arity rule, and the error
 * replies for unknown commands, wrong arity and unknown subcommands, word
 * for word as Redis sends them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/command.h"

static struct resp_arg arg(const char *s)
{
    struct resp_arg a = {s, strlen(s)};
    return a;
}

/* The bytes written to a fresh RESP2 buffer by fn, NUL-terminated. */
static void check_reply(struct resp_buf *b, const char *expected)
{
    assert_true(b->ok);
    assert_int_equal(b->size, strlen(expected));
    assert_memory_equal(b->data, expected, b->size);
}

static void lookup_ignores_case_and_finds_every_command(void **state)
{
    (void)state;
    struct resp_arg names[] = {arg("get"), arg("GET"), arg("gEt")};
    for (size_t i = 0; i < 3; i++) {
        const struct command_spec *spec = command_lookup(&names[i]);
        assert_non_null(spec);
        assert_string_equal(spec->name, "get");
    }
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    assert_true(count >= 25);
    for (size_t i = 0; i < count; i++) {
        struct resp_arg a = arg(table[i].name);
        assert_ptr_equal(command_lookup(&a), &table[i]);
        assert_int_not_equal(table[i].arity, 0);
    }
}

static void unknown_and_odd_names_are_not_found(void **state)
{
    (void)state;
    struct resp_arg names[] = {arg("foo"), arg(""), arg("ge"), arg("gett"),
                               arg("get\0")};
    names[4].size = 4; /* an embedded NUL */
    for (size_t i = 0; i < 5; i++)
        assert_null(command_lookup(&names[i]));
}

static void arity_follows_the_redis_rule(void **state)
{
    (void)state;
    struct resp_arg get = arg("get"), set = arg("set"), ping = arg("ping");
    const struct command_spec *g = command_lookup(&get);
    const struct command_spec *s = command_lookup(&set);
    const struct command_spec *p = command_lookup(&ping);
    assert_false(command_arity_ok(g, 1));
    assert_true(command_arity_ok(g, 2));
    assert_false(command_arity_ok(g, 3)); /* positive: exactly */
    assert_false(command_arity_ok(s, 2));
    assert_true(command_arity_ok(s, 3));
    assert_true(command_arity_ok(s, 6)); /* negative: at least */
    assert_true(command_arity_ok(p, 1));
    assert_true(command_arity_ok(p, 2));
}

static void store_commands_carry_the_right_flags(void **state)
{
    (void)state;
    const char *writes[] = {"set",  "del",        "incr",       "incrby",
                            "decr", "decrby",     "mset",       "cas",
                            "exec", "cohort.txn", "cohort.exec"};
    const char *reads[] = {"get",    "mget",  "exists",     "dbsize",
                           "kvinfo", "watch", "cohort.revs"};
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        struct resp_arg a = arg(writes[i]);
        assert_true(command_lookup(&a)->flags & CMD_WRITE);
    }
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        struct resp_arg a = arg(reads[i]);
        assert_true(command_lookup(&a)->flags & CMD_READ);
        assert_false(command_lookup(&a)->flags & CMD_WRITE);
    }
}

/* Redis's arities; MULTI, DISCARD and UNWATCH are answered at once. */
static void transaction_commands_have_redis_arities(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int arity;
    } want[] = {{"multi", 1},        {"exec", 1},        {"discard", 1},
                {"watch", -2},       {"unwatch", 1},     {"cohort.txn", -4},
                {"cohort.exec", -3}, {"cohort.revs", -2}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct resp_arg a = arg(want[i].name);
        const struct command_spec *spec = command_lookup(&a);
        assert_non_null(spec);
        assert_int_equal(spec->arity, want[i].arity);
    }
    const char *fast[] = {"multi", "discard", "unwatch"};
    for (size_t i = 0; i < 3; i++) {
        struct resp_arg a = arg(fast[i]);
        assert_true(command_lookup(&a)->flags & CMD_FAST);
    }
}

static void unknown_command_error_quotes_name_and_arguments(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 2);
    struct resp_arg argv[] = {arg("FOO"), arg("a"), arg("b")};
    command_reply_unknown(&b, 3, argv);
    check_reply(&b, "-ERR unknown command 'FOO', with args beginning with: "
                    "'a' 'b' \r\n");
    b.size = 0;
    command_reply_unknown(&b, 1, argv);
    check_reply(&b, "-ERR unknown command 'FOO', with args beginning with: "
                    "\r\n");
    resp_buf_deinit(&b);
}

static void unknown_command_error_is_bounded_and_stays_one_line(void **s)
{
    (void)s;
    char long_arg[400];
    memset(long_arg, 'x', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    struct resp_arg argv[] = {arg("BAD\r\n+OK"), arg(long_arg), arg(long_arg)};
    struct resp_buf b;
    resp_buf_init(&b, 2);
    command_reply_unknown(&b, 3, argv);
    assert_true(b.ok);
    assert_true(b.size < 400);
    /* One line: the only CRLF ends it. */
    assert_null(memchr(b.data, '\n', b.size - 1));
    assert_memory_equal(b.data, "-ERR unknown command 'BAD\\x0d\\x0a+OK'", 37);
    resp_buf_deinit(&b);
}

/* Echoed names and arguments are shown whole, NULs and other bytes
 * escaped: "%.*s" stopped at a NUL, so 'a\0b' read as 'a'. */
static void echoed_arguments_are_binary_safe(void **state)
{
    (void)state;
    struct resp_arg argv[] = {{"NO\0SUCH", 7}, {"x\0\xffy\\", 5}};
    struct resp_buf b;
    resp_buf_init(&b, 2);
    command_reply_unknown(&b, 2, argv);
    check_reply(&b, "-ERR unknown command 'NO\\x00SUCH', with args beginning "
                    "with: 'x\\x00\\xffy\\\\' \r\n");
    b.size = 0;
    struct resp_arg sub = {"ab\0cd", 5};
    command_reply_unknown_subcommand(&b, &sub, "CLIENT");
    check_reply(&b,
                "-ERR unknown subcommand 'ab\\x00cd'. Try CLIENT HELP.\r\n");
    resp_buf_deinit(&b);
}

static void arity_and_subcommand_errors_match_redis(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 2);
    command_reply_arity(&b, "get");
    check_reply(&b, "-ERR wrong number of arguments for 'get' command\r\n");
    b.size = 0;
    command_reply_arity(&b, "client|setname");
    check_reply(&b, "-ERR wrong number of arguments for 'client|setname' "
                    "command\r\n");
    b.size = 0;
    struct resp_arg sub = arg("foo");
    command_reply_unknown_subcommand(&b, &sub, "CLIENT");
    check_reply(&b, "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n");
    resp_buf_deinit(&b);
}

static void integers_parse_as_redis_does(void **state)
{
    (void)state;
    int64_t v = 0;
    struct resp_arg ok[] = {arg("0"), arg("-1"), arg("9223372036854775807"),
                            arg("-9223372036854775808")};
    int64_t want[] = {0, -1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < 4; i++) {
        assert_true(command_parse_i64(&ok[i], &v));
        assert_true(v == want[i]);
    }
    struct resp_arg bad[] = {arg(""),   arg("01"), arg("+1"),
                             arg("-0"), arg(" 1"), arg("9223372036854775808"),
                             arg("1x")};
    for (size_t i = 0; i < 7; i++)
        assert_false(command_parse_i64(&bad[i], &v));
    uint64_t u = 0;
    struct resp_arg max = arg("18446744073709551615");
    assert_true(command_parse_u64(&max, &u));
    assert_true(u == UINT64_MAX);
    struct resp_arg over = arg("18446744073709551616");
    assert_false(command_parse_u64(&over, &u));
    struct resp_arg neg = arg("-1");
    assert_false(command_parse_u64(&neg, &u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_ignores_case_and_finds_every_command),
        cmocka_unit_test(unknown_and_odd_names_are_not_found),
        cmocka_unit_test(arity_follows_the_redis_rule),
        cmocka_unit_test(store_commands_carry_the_right_flags),
        cmocka_unit_test(transaction_commands_have_redis_arities),
        cmocka_unit_test(unknown_command_error_quotes_name_and_arguments),
        cmocka_unit_test(unknown_command_error_is_bounded_and_stays_one_line),
        cmocka_unit_test(echoed_arguments_are_binary_safe),
        cmocka_unit_test(arity_and_subcommand_errors_match_redis),
        cmocka_unit_test(integers_parse_as_redis_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
