/* runtime/run_clock: the protocol clock skips the time the process could
 * not run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/run_clock.h"

static void steps_up_to_the_limit_count_in_full(void **state)
{
    (void)state;
    struct run_clock c;
    run_clock_init(&c, 1000, 50);
    assert_int_equal(run_clock_read(&c, 1000), 1000);
    assert_int_equal(run_clock_read(&c, 1005), 1005);
    assert_int_equal(run_clock_read(&c, 1055), 1055);
    assert_int_equal(c.stalls, 0);
    assert_int_equal(c.stalled_ms, 0);
}

static void a_stall_counts_only_the_limit(void **state)
{
    (void)state;
    struct run_clock c;
    run_clock_init(&c, 1000, 50);
    /* 220 ms in a run queue: the peers' silence grows by 50 ms only. */
    assert_int_equal(run_clock_read(&c, 1220), 1050);
    assert_int_equal(c.stalls, 1);
    assert_int_equal(c.stalled_ms, 170);
    /* Then time runs normally again. */
    assert_int_equal(run_clock_read(&c, 1225), 1055);
    assert_int_equal(c.now_ms + c.stalled_ms - 1000, 225);
}

static void never_goes_back(void **state)
{
    (void)state;
    struct run_clock c;
    run_clock_init(&c, 1000, 50);
    assert_int_equal(run_clock_read(&c, 1010), 1010);
    assert_int_equal(run_clock_read(&c, 900), 1010);
    assert_int_equal(run_clock_read(&c, 1015), 1015);
}

static void many_short_steps_are_real_time(void **state)
{
    (void)state;
    struct run_clock c;
    run_clock_init(&c, 0, 50);
    for (uint64_t t = 5; t <= 10000; t += 5)
        run_clock_read(&c, t);
    assert_int_equal(c.now_ms, 10000);
    assert_int_equal(c.stalls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(steps_up_to_the_limit_count_in_full),
        cmocka_unit_test(a_stall_counts_only_the_limit),
        cmocka_unit_test(never_goes_back),
        cmocka_unit_test(many_short_steps_are_real_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
