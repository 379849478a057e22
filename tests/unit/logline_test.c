/* runtime/logline: every line carries an ISO-8601 UTC timestamp with
 * milliseconds, a level and the source; a message never spans lines and a
 * long one is cut, never overflowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/logline.h"

static void line_has_timestamp_level_and_source(void **state)
{
    (void)state;
    char out[256];
    /* 2023-11-14T22:13:20.007Z is 1700000000007 ms after the epoch. */
    size_t n = logline_format(out, sizeof(out), 1700000000007LL, LOGLINE_WARN,
                              "r1", "cannot reach replica 2");
    assert_string_equal(
        out, "2023-11-14T22:13:20.007Z WARN r1 cannot reach replica 2");
    assert_int_equal(n, strlen(out));
    logline_format(out, sizeof(out), 0, LOGLINE_INFO, "up", "x");
    assert_string_equal(out, "1970-01-01T00:00:00.000Z INFO up x");
    logline_format(out, sizeof(out), 86399999, LOGLINE_ERROR, "r0", "y");
    assert_string_equal(out, "1970-01-01T23:59:59.999Z ERROR r0 y");
}

static void newlines_in_a_message_become_spaces(void **state)
{
    (void)state;
    char out[256];
    logline_format(out, sizeof(out), 0, LOGLINE_INFO, "r0", "a\nb\r\nc");
    assert_string_equal(out, "1970-01-01T00:00:00.000Z INFO r0 a b  c");
}

static void a_long_message_is_cut_to_the_buffer(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char out[128];
    memset(out, 0x55, sizeof(out));
    size_t n = logline_format(out, sizeof(out), 0, LOGLINE_INFO, "r0", big);
    assert_int_equal(n, sizeof(out) - 1);
    assert_int_equal(out[n], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(line_has_timestamp_level_and_source),
        cmocka_unit_test(newlines_in_a_message_become_spaces),
        cmocka_unit_test(a_long_message_is_cut_to_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
