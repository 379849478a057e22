/* core/checkpoints: notes at the three spacings are found again, the
 * highest at or below the op asked for, across ring wrap-around; notes out
 * of order are ignored; nothing is found below the oldest kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/checkpoints.h"

static uint64_t sum_of(uint64_t op)
{
    return op * 0x9e3779b97f4a7c15ull + 1;
}

static struct checkpoints *fresh(void)
{
    struct checkpoints *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    return c;
}

/* Note every due op in (from, to]. */
static void note_range(struct checkpoints *c, uint64_t from, uint64_t to)
{
    for (uint64_t op = from + 1; op <= to; op++)
        if (checkpoints_due(op))
            checkpoints_note(c, op, sum_of(op));
}

static void expect_found(const struct checkpoints *c, uint64_t at_most,
                         uint64_t want)
{
    uint64_t op = 0;
    uint64_t sum = 0;
    assert_true(checkpoints_find(c, at_most, &op, &sum));
    assert_int_equal(op, want);
    assert_int_equal(sum, sum_of(want));
}

static void empty_finds_nothing(void **state)
{
    (void)state;
    struct checkpoints *c = fresh();
    uint64_t op;
    uint64_t sum;
    assert_false(checkpoints_find(c, UINT64_MAX, &op, &sum));
    assert_false(checkpoints_due(0));
    assert_false(checkpoints_due(CHECKPOINT_FINE + 1));
    assert_true(checkpoints_due(CHECKPOINT_FINE * 3));
    free(c);
}

static void highest_at_or_below(void **state)
{
    (void)state;
    struct checkpoints *c = fresh();
    note_range(c, 0, 1000);
    expect_found(c, 1000, 992);
    expect_found(c, 992, 992);
    expect_found(c, 991, 976);
    expect_found(c, 16, 16);
    uint64_t op;
    uint64_t sum;
    assert_false(checkpoints_find(c, 15, &op, &sum));
    /* A later note below the last is ignored. */
    checkpoints_note(c, 512, 7);
    expect_found(c, 512, 512);
    free(c);
}

/* Past the fine ring's reach, the coarser levels answer. */
static void coarse_levels_reach_further(void **state)
{
    (void)state;
    struct checkpoints *c = fresh();
    uint64_t fine_reach = (uint64_t)CHECKPOINT_FINE * CHECKPOINT_SLOTS;
    uint64_t end = 3 * fine_reach + 100;
    note_range(c, 0, end);
    uint64_t last = end - end % CHECKPOINT_FINE;
    expect_found(c, end, last);
    /* The oldest fine note kept, and just below it the 1,024 level. */
    uint64_t oldest = last - (CHECKPOINT_SLOTS - 1) * CHECKPOINT_FINE;
    expect_found(c, oldest, oldest);
    uint64_t below = oldest - 1;
    expect_found(c, below, below - below % (CHECKPOINT_FINE * 64u));
    expect_found(c, 5000, 4096);
    uint64_t op;
    uint64_t sum;
    assert_false(checkpoints_find(c, 1023, &op, &sum)); /* fine notes gone */
    free(c);
}

/* The list is every kept note once, rising; noted again in that order
 * into empty rings, it answers every question as the original does. */
static void list_is_rising_and_notes_again(void **state)
{
    (void)state;
    struct checkpoints *c = fresh();
    uint64_t fine_reach = (uint64_t)CHECKPOINT_FINE * CHECKPOINT_SLOTS;
    note_range(c, 0, 2 * fine_reach + 500);
    uint64_t *op = calloc(CHECKPOINTS_MAX, sizeof(*op));
    uint64_t *sum = calloc(CHECKPOINTS_MAX, sizeof(*sum));
    assert_non_null(op);
    assert_non_null(sum);
    size_t n = checkpoints_list(c, op, sum, CHECKPOINTS_MAX);
    /* All fine notes kept, and the coarser ones below them. */
    assert_true(n > CHECKPOINT_SLOTS);
    assert_true(n < CHECKPOINTS_MAX);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sum[i], sum_of(op[i]));
        if (i > 0)
            assert_true(op[i] > op[i - 1]);
    }
    struct checkpoints *again = fresh();
    for (size_t i = 0; i < n; i++)
        checkpoints_note(again, op[i], sum[i]);
    for (uint64_t at = 0; at <= 2 * fine_reach + 600; at += 7) {
        uint64_t o1 = 0, s1 = 0, o2 = 0, s2 = 0;
        bool f1 = checkpoints_find(c, at, &o1, &s1);
        bool f2 = checkpoints_find(again, at, &o2, &s2);
        assert_int_equal(f1, f2);
        assert_int_equal(o1, o2);
        assert_int_equal(s1, s2);
    }
    /* Room for fewer: the lowest ones. */
    assert_int_equal(checkpoints_list(c, op, sum, 5), 5);
    assert_int_equal(op[0], 1024);
    free(op);
    free(sum);
    free(again);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_finds_nothing),
        cmocka_unit_test(highest_at_or_below),
        cmocka_unit_test(coarse_levels_reach_further),
        cmocka_unit_test(list_is_rising_and_notes_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
