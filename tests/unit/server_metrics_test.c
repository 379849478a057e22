/* Tests of server/metrics: a reply's outcome read from its first bytes
 * (RESP2 simple errors, RESP3 blob errors, non-errors), and counting by
 * command and outcome with a latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/metrics.h"

static enum metrics_outcome of(const char *reply)
{
    return metrics_outcome_of(reply, strlen(reply));
}

static void non_errors_are_ok(void **state)
{
    (void)state;
    assert_int_equal(of("+OK\r\n"), METRICS_OK);
    assert_int_equal(of("$-1\r\n"), METRICS_OK);
    assert_int_equal(of(":3\r\n"), METRICS_OK);
    assert_int_equal(of("*2\r\n$1\r\na\r\n$1\r\nb\r\n"), METRICS_OK);
    assert_int_equal(of("_\r\n"), METRICS_OK);
}

static void error_code_words_name_the_outcome(void **state)
{
    (void)state;
    assert_int_equal(of("-ERR wrong number of arguments\r\n"), METRICS_ERR);
    assert_int_equal(of("-TRYAGAIN view change in progress\r\n"),
                     METRICS_TRYAGAIN);
    assert_int_equal(of("-UNKNOWN the primary changed\r\n"), METRICS_UNKNOWN);
    assert_int_equal(of("-OOM command not allowed\r\n"), METRICS_OOM);
    assert_int_equal(of("-NOAUTH Authentication required.\r\n"),
                     METRICS_NOAUTH);
    assert_int_equal(of("-WRONGPASS invalid\r\n"), METRICS_NOAUTH);
    assert_int_equal(of("-NOPERM no\r\n"), METRICS_NOPERM);
    assert_int_equal(of("-LOADING\r\n"), METRICS_TRYAGAIN);
    assert_int_equal(of("-REMOVED this member was removed\r\n"),
                     METRICS_REMOVED);
    /* A code word is a whole word: a prefix of another is not it. */
    assert_int_equal(of("-OOMPH\r\n"), METRICS_ERR);
    assert_int_equal(of("-SOMETHING else\r\n"), METRICS_ERR);
    assert_int_equal(of(""), METRICS_ERR);
    assert_int_equal(of("-"), METRICS_ERR);
}

static void resp3_blob_errors_are_read_too(void **state)
{
    (void)state;
    assert_int_equal(of("!21\r\nTRYAGAIN view change\r\n"), METRICS_TRYAGAIN);
    assert_int_equal(of("!3\r\nERR\r\n"), METRICS_ERR);
    assert_int_equal(of("!3"), METRICS_ERR);
}

static void commands_count_by_outcome_with_latency(void **state)
{
    (void)state;
    static struct server_metrics m;
    memset(&m, 0, sizeof(m));
    const char ok[] = "+OK\r\n", busy[] = "-TRYAGAIN busy\r\n";
    metrics_command_done(&m, 5, ok, sizeof(ok) - 1, 3000);     /* 3 us */
    metrics_command_done(&m, 5, busy, sizeof(busy) - 1, 9000); /* 9 us */
    metrics_command_done(&m, 6, ok, sizeof(ok) - 1, 500);
    assert_int_equal(m.commands[5].outcomes[METRICS_OK], 1);
    assert_int_equal(m.commands[5].outcomes[METRICS_TRYAGAIN], 1);
    assert_int_equal(m.commands[5].latency_us.count, 2);
    assert_int_equal(m.commands[5].latency_us.sum, 12);
    assert_int_equal(loghist_count_at_most(&m.commands[5].latency_us, 2), 1);
    assert_int_equal(m.commands[6].outcomes[METRICS_OK], 1);
    assert_string_equal(metrics_outcome_name(METRICS_TRYAGAIN), "tryagain");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(non_errors_are_ok),
        cmocka_unit_test(error_code_words_name_the_outcome),
        cmocka_unit_test(resp3_blob_errors_are_read_too),
        cmocka_unit_test(commands_count_by_outcome_with_latency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
