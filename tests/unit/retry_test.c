/* common/retry: bounded exponential backoff, and a run of failures has one
 * start and one end, however long it lasts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/retry.h"

static void delays_double_up_to_the_bound_and_reset(void **state)
{
    (void)state;
    struct retry r;
    retry_init(&r, 100, 1000);
    assert_true(retry_due(&r, 0));
    assert_false(retry_failing(&r));
    uint32_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    uint64_t now = 5000;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool first = retry_failed(&r, now, 1700000000000ull + now, "ENOSPC");
        assert_int_equal(first, i == 0);
        assert_int_equal(r.delay_ms, want[i]);
        assert_false(retry_due(&r, now + want[i] - 1));
        assert_true(retry_due(&r, now + want[i]));
        now += want[i];
    }
    assert_true(retry_failing(&r));
    assert_int_equal(r.failures, 7);
    assert_int_equal(r.since_ms, 5000);
    assert_int_equal(r.since_wall_ms, 1700000005000ull);
    assert_string_equal(r.error, "ENOSPC");
    assert_int_equal(retry_succeeded(&r), 7);
    assert_int_equal(retry_succeeded(&r), 0); /* healthy already */
    assert_false(retry_failing(&r));
    assert_int_equal(r.failures_total, 7);
    assert_true(retry_due(&r, 0));
    assert_true(retry_failed(&r, now, 0, "again")); /* a new run */
    assert_int_equal(r.delay_ms, 100);
}

static void a_long_run_starts_and_ends_once(void **state)
{
    (void)state;
    struct retry r;
    retry_init(&r, 1000, 8000);
    unsigned starts = 0;
    uint64_t now = 0;
    for (int i = 0; i < 10000; i++) {
        starts += retry_failed(&r, now, 0, "snapshot at op 9: ENOSPC");
        now = r.next_ms;
    }
    assert_int_equal(starts, 1);
    assert_int_equal(r.delay_ms, 8000);
    assert_int_equal(retry_succeeded(&r), 10000);
}

static void a_long_error_is_cut(void **state)
{
    (void)state;
    char big[2 * RETRY_ERROR_MAX];
    memset(big, 'e', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct retry r;
    retry_init(&r, 1, 1);
    retry_failed(&r, 0, 0, big);
    assert_int_equal(strlen(r.error), RETRY_ERROR_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delays_double_up_to_the_bound_and_reset),
        cmocka_unit_test(a_long_run_starts_and_ends_once),
        cmocka_unit_test(a_long_error_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
