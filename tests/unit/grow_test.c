/* Growable arrays: the doubling and exact policies, the typed capacities,
 * and the refusals that leave an array as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/grow.h"

static void growth_from_zero_starts_at_the_minimum(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    size_t cap = 0;
    assert_true(grow_array((void **)&a, &cap, 1, sizeof(*a), 16));
    assert_non_null(a);
    assert_int_equal(cap, 16);
    a[15] = 7; /* all 16 are usable (ASan checks) */
    free(a);
}

static void growth_from_zero_without_minimum_fits_need(void **state)
{
    (void)state;
    uint8_t *a = NULL;
    size_t cap = 0;
    assert_true(grow_bytes(&a, &cap, 5, 0));
    assert_int_equal(cap, 8); /* 1, 2, 4, 8 */
    free(a);
}

static void capacity_doubles_until_need_fits(void **state)
{
    (void)state;
    uint64_t *a = NULL;
    size_t cap = 0;
    assert_true(grow_array((void **)&a, &cap, 4, sizeof(*a), 4));
    assert_int_equal(cap, 4);
    assert_true(grow_array((void **)&a, &cap, 5, sizeof(*a), 4));
    assert_int_equal(cap, 8);
    assert_true(grow_array((void **)&a, &cap, 33, sizeof(*a), 4));
    assert_int_equal(cap, 64);
    free(a);
}

static void enough_capacity_changes_nothing(void **state)
{
    (void)state;
    uint8_t *a = NULL;
    size_t cap = 0;
    assert_true(grow_bytes(&a, &cap, 100, 64));
    uint8_t *before = a;
    assert_int_equal(cap, 128);
    assert_true(grow_bytes(&a, &cap, 128, 64));
    assert_true(grow_bytes(&a, &cap, 0, 64));
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 128);
    free(a);
}

static void exact_growth_takes_exactly_need(void **state)
{
    (void)state;
    uint8_t *a = NULL;
    size_t cap = 0;
    assert_true(grow_bytes_exact(&a, &cap, 1000));
    assert_int_equal(cap, 1000);
    assert_true(grow_bytes_exact(&a, &cap, 999));
    assert_int_equal(cap, 1000);
    assert_true(grow_bytes_exact(&a, &cap, 1001));
    assert_int_equal(cap, 1001);
    free(a);
}

static void contents_are_preserved(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    uint32_t cap = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        assert_true(
            grow_array_u32((void **)&a, &cap, (size_t)i + 1, sizeof(*a), 4));
        a[i] = i * 3 + 1;
    }
    assert_int_equal(cap, 1024);
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(a[i], i * 3 + 1);
    uint8_t *b = NULL;
    size_t b_cap = 0;
    assert_true(grow_bytes_exact(&b, &b_cap, 3));
    memcpy(b, "abc", 3);
    assert_true(grow_bytes_exact(&b, &b_cap, 4096));
    assert_memory_equal(b, "abc", 3);
    free(b);
    free(a);
}

static void overflowing_size_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    uint8_t *a = NULL;
    size_t cap = 0;
    assert_true(grow_bytes(&a, &cap, 8, 8));
    memcpy(a, "12345678", 8);
    uint8_t *before = a;
    /* 9 items (one past the capacity) of SIZE_MAX / 2 bytes overflow. */
    assert_false(grow_array((void **)&a, &cap, 9, SIZE_MAX / 2, 1));
    assert_false(grow_array((void **)&a, &cap, SIZE_MAX, 2, 1));
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 8);
    assert_memory_equal(a, "12345678", 8);
    free(a);
}

static void u32_capacity_refuses_what_it_cannot_count(void **state)
{
    (void)state;
    uint8_t *a = NULL;
    uint32_t cap = 0;
    assert_true(grow_array_u32((void **)&a, &cap, 10, 1, 16));
    assert_int_equal(cap, 16);
    uint8_t *before = a;
    assert_false(
        grow_array_u32((void **)&a, &cap, (size_t)UINT32_MAX + 1, 1, 16));
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 16);
    free(a);
}

static void u64_capacity_doubles_and_refuses_overflow(void **state)
{
    (void)state;
    uint64_t *a = NULL;
    uint64_t cap = 0;
    assert_true(grow_array_u64((void **)&a, &cap, 1, sizeof(*a), 64));
    assert_true(cap == 64);
    assert_true(grow_array_u64((void **)&a, &cap, 65, sizeof(*a), 64));
    assert_true(cap == 128);
    uint64_t *before = a;
    assert_false(grow_array_u64((void **)&a, &cap, UINT64_MAX, sizeof(*a), 64));
    assert_ptr_equal(a, before);
    assert_true(cap == 128);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(growth_from_zero_starts_at_the_minimum),
        cmocka_unit_test(growth_from_zero_without_minimum_fits_need),
        cmocka_unit_test(capacity_doubles_until_need_fits),
        cmocka_unit_test(enough_capacity_changes_nothing),
        cmocka_unit_test(exact_growth_takes_exactly_need),
        cmocka_unit_test(contents_are_preserved),
        cmocka_unit_test(overflowing_size_is_refused_and_changes_nothing),
        cmocka_unit_test(u32_capacity_refuses_what_it_cannot_count),
        cmocka_unit_test(u64_capacity_doubles_and_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
