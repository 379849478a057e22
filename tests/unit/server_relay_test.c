/* Relaying RESP2 replies: unchanged for RESP2 clients, nulls rewritten for
 * RESP3 clients (and pairs turned into a map where the command asks), malformed
 * bytes copied as they are, and the "session expired" rejection recognized. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/relay.h"

static void relay_as(int proto, const char *in, const char *expected)
{
    struct resp_buf b;
    resp_buf_init(&b, proto);
    relay_reply(&b, in, strlen(in));
    assert_true(b.ok);
    assert_int_equal(b.size, strlen(expected));
    assert_memory_equal(b.data, expected, b.size);
    resp_buf_deinit(&b);
}

static void resp2_clients_get_the_bytes_unchanged(void **state)
{
    (void)state;
    relay_as(2, "$-1\r\n", "$-1\r\n");
    relay_as(2, "*2\r\n$-1\r\n$1\r\na\r\n", "*2\r\n$-1\r\n$1\r\na\r\n");
    relay_as(2, "garbage", "garbage");
}

static void resp3_clients_get_resp3_nulls(void **state)
{
    (void)state;
    relay_as(3, "$-1\r\n", "_\r\n");
    relay_as(3, "*-1\r\n", "_\r\n");
    relay_as(3, "*3\r\n$-1\r\n$3\r\n$-1\r\n:5\r\n",
             "*3\r\n_\r\n$3\r\n$-1\r\n:5\r\n");
    relay_as(3, "*2\r\n*-1\r\n*1\r\n$-1\r\n", "*2\r\n_\r\n*1\r\n_\r\n");
}

static void other_types_pass_through(void **state)
{
    (void)state;
    relay_as(3, "+OK\r\n", "+OK\r\n");
    relay_as(3, "-ERR no\r\n", "-ERR no\r\n");
    relay_as(3, ":-7\r\n", ":-7\r\n");
    relay_as(3, "$0\r\n\r\n", "$0\r\n\r\n");
    relay_as(3, "*0\r\n", "*0\r\n");
}

static void malformed_or_partial_bytes_are_copied_whole(void **state)
{
    (void)state;
    const char *bad[] = {
        "*2\r\n$-1\r\n", "$5\r\nab\r\n", "$-1\r\n+extra\r\n",        "?\r\n",
        "*x\r\n",        "$-1",          "*99999999999999999999\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        relay_as(3, bad[i], bad[i]);
}

static void relay_map_as(int proto, const char *in, const char *expected)
{
    struct resp_buf b;
    resp_buf_init(&b, proto);
    relay_reply_map(&b, in, strlen(in));
    assert_true(b.ok);
    assert_int_equal(b.size, strlen(expected));
    assert_memory_equal(b.data, expected, b.size);
    resp_buf_deinit(&b);
}

static void pairs_become_a_map_for_resp3_clients_only(void **state)
{
    (void)state;
    const char *pairs = "*4\r\n$5\r\nvalue\r\n$-1\r\n$7\r\nversion\r\n:2\r\n";
    relay_map_as(2, pairs, pairs);
    relay_map_as(3, pairs, "%2\r\n$5\r\nvalue\r\n_\r\n$7\r\nversion\r\n:2\r\n");
    /* A missing key's null, an error, an odd count: as relay_reply. */
    relay_map_as(3, "*-1\r\n", "_\r\n");
    relay_map_as(3, "-ERR no\r\n", "-ERR no\r\n");
    relay_map_as(3, "*1\r\n:1\r\n", "*1\r\n:1\r\n");
    /* Only the top level. */
    relay_map_as(3, "*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n",
                 "%1\r\n*2\r\n:1\r\n:2\r\n:3\r\n");
}

static void session_expired_is_recognized(void **state)
{
    (void)state;
    const char *e =
        "-ERR client session expired: start again at request number 1\r\n";
    assert_true(relay_is_session_expired(e, strlen(e)));
    assert_false(relay_is_session_expired("-ERR client", 11));
    assert_false(relay_is_session_expired("+OK\r\n", 5));
}

/* The bounce a backup re-sends: this server's marked text and the text
 * older servers sent, and nothing else (another -TRYAGAIN, an -UNKNOWN, a
 * value that happens to hold the words). */
static void not_primary_hop_is_recognized(void **state)
{
    (void)state;
    const char *now = "-" RELAY_NOT_PRIMARY_HOP "\r\n";
    const char *legacy = "-TRYAGAIN this replica is not the primary (a "
                         "forwarded command is not forwarded again); retry\r\n";
    assert_true(relay_is_not_primary_hop(now, strlen(now)));
    assert_true(relay_is_not_primary_hop(legacy, strlen(legacy)));
    const char *other[] = {
        ("-TRYAGAIN view change or recovery in progress, or the write "
         "pipeline is full; retry\r\n"),
        "-UNKNOWN the primary changed after the write was proposed\r\n",
        "$21\r\nTRYAGAIN NOTPRIMARY x\r\n",
        "+TRYAGAIN NOTPRIMARY\r\n",
        "-TRYAGAIN NOTPRIMARY",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(relay_is_not_primary_hop(other[i], strlen(other[i])));
    assert_false(relay_is_not_primary_hop(now, 10)); /* cut short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resp2_clients_get_the_bytes_unchanged),
        cmocka_unit_test(resp3_clients_get_resp3_nulls),
        cmocka_unit_test(other_types_pass_through),
        cmocka_unit_test(malformed_or_partial_bytes_are_copied_whole),
        cmocka_unit_test(pairs_become_a_map_for_resp3_clients_only),
        cmocka_unit_test(session_expired_is_recognized),
        cmocka_unit_test(not_primary_hop_is_recognized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
