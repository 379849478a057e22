/* runtime/log_limit: a flood of warnings becomes a few lines and a count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/log_limit.h"

static void a_burst_passes_then_lines_are_counted(void **state)
{
    (void)state;
    struct log_limit l;
    log_limit_init(&l, 10000, 3);
    uint64_t left = 99;
    for (int i = 0; i < 3; i++) {
        assert_true(log_limit_allow(&l, 1000 + (uint64_t)i, &left));
        assert_int_equal(left, 0);
    }
    for (int i = 0; i < 100; i++)
        assert_false(log_limit_allow(&l, 2000, &left));
    assert_int_equal(l.suppressed, 100);
}

static void the_next_window_reports_the_count_once(void **state)
{
    (void)state;
    struct log_limit l;
    log_limit_init(&l, 10000, 2);
    uint64_t left = 0;
    assert_true(log_limit_allow(&l, 0, &left));
    assert_true(log_limit_allow(&l, 1, &left));
    assert_false(log_limit_allow(&l, 2, &left));
    assert_false(log_limit_allow(&l, 9999, &left));
    assert_true(log_limit_allow(&l, 10000, &left));
    assert_int_equal(left, 2);
    assert_true(log_limit_allow(&l, 10001, &left));
    assert_int_equal(left, 0);
    assert_false(log_limit_allow(&l, 10002, &left));
}

static void a_clock_that_goes_back_starts_a_window(void **state)
{
    (void)state;
    struct log_limit l;
    log_limit_init(&l, 10000, 1);
    uint64_t left = 0;
    assert_true(log_limit_allow(&l, 50000, &left));
    assert_false(log_limit_allow(&l, 50001, &left));
    assert_true(log_limit_allow(&l, 40000, &left));
    assert_int_equal(left, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_burst_passes_then_lines_are_counted),
        cmocka_unit_test(the_next_window_reports_the_count_once),
        cmocka_unit_test(a_clock_that_goes_back_starts_a_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
