/* Tests of bench/hist: quantiles of known distributions stay within the
 * bucket error (at most 1/64 of the value, never below it), merging equals
 * recording everything in one histogram, and the whole value range, up to
 * the last bucket and beyond, lands in bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/hist.h"

/* The histogram promises upper bucket edges: v <= got <= v + v / 64. */
static void assert_within_bucket(uint64_t got, uint64_t v)
{
    if (got < v || got > v + v / 64) {
        fail_msg("quantile %llu is not within 1/64 above %llu",
                 (unsigned long long)got, (unsigned long long)v);
    }
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void empty_histogram_reports_zero(void **state)
{
    (void)state;
    struct hist h;
    hist_init(&h);
    assert_int_equal(hist_quantile(&h, 0.5), 0);
    assert_int_equal(hist_quantile(&h, 1.0), 0);
    assert_true(hist_mean(&h) == 0.0);
}

static void values_below_64_are_exact(void **state)
{
    (void)state;
    struct hist h;
    hist_init(&h);
    for (uint64_t v = 1; v <= 63; v++)
        hist_record(&h, v);
    for (uint64_t k = 1; k <= 63; k++)
        assert_int_equal(hist_quantile(&h, (double)k / 63.0), k);
    assert_int_equal(h.min_ns, 1);
    assert_int_equal(h.max_ns, 63);
    assert_true(hist_mean(&h) == 32.0);
}

static void uniform_quantiles_are_within_one_bucket(void **state)
{
    (void)state;
    static struct hist h;
    hist_init(&h);
    const uint64_t n = 1000000;
    for (uint64_t v = 1; v <= n; v++)
        hist_record(&h, v * 1000); /* 1 us .. 1 s */
    const double qs[] = {0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        uint64_t rank = (uint64_t)ceil(qs[i] * (double)n);
        assert_within_bucket(hist_quantile(&h, qs[i]), rank * 1000);
    }
    assert_int_equal(hist_quantile(&h, 1.0), n * 1000);
    assert_int_equal(h.count, n);
}

/* Exponential latencies (mean 2 ms) by the inverse CDF at evenly spaced
 * probabilities: the q-quantile is -mean * ln(1 - q), up to one sample. */
static void exponential_quantiles_match_the_formula(void **state)
{
    (void)state;
    static struct hist h;
    hist_init(&h);
    const uint64_t n = 200000;
    const double mean = 2e6;
    for (uint64_t i = 0; i < n; i++) {
        double u = ((double)i + 0.5) / (double)n;
        hist_record(&h, (uint64_t)(-mean * log(1.0 - u)));
    }
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double exact = -mean * log(1.0 - qs[i]);
        double got = (double)hist_quantile(&h, qs[i]);
        /* One bucket (1/64) plus the gap to the neighbouring sample. */
        double gap = mean / ((double)n * (1.0 - qs[i]));
        assert_true(got >= exact - gap - 1);
        assert_true(got <= exact * (1.0 + 1.0 / 64) + gap + 1);
    }
    assert_true(fabs(hist_mean(&h) - mean) < mean * 0.01);
}

/* The error bound itself, value by value, across the range: with one small
 * and one huge sample, the median is the small one's bucket edge. */
static void every_bucket_spans_at_most_a_64th(void **state)
{
    (void)state;
    uint64_t seed = 88172645463325252ull;
    const uint64_t top = ((uint64_t)1 << (HIST_EXP_MAX + 1)) - 1;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = xorshift(&seed);
        uint64_t v = r >> (r % 64); /* log-spread over 0 .. 2^64 */
        if (v > top / 2)
            v %= top / 2;
        struct hist h;
        hist_init(&h);
        hist_record(&h, v);
        hist_record(&h, top);
        assert_within_bucket(hist_quantile(&h, 0.5), v);
        assert_int_equal(h.count, 2);
    }
}

static void merge_equals_recording_everything_in_one(void **state)
{
    (void)state;
    static struct hist a, b, all;
    hist_init(&a);
    hist_init(&b);
    hist_init(&all);
    uint64_t seed = 2463534242ull;
    for (int i = 0; i < 50000; i++) {
        uint64_t fast = 20000 + xorshift(&seed) % 100000;    /* 20-120 us */
        uint64_t slow = 1000000 + xorshift(&seed) % 9000000; /* 1-10 ms */
        hist_record(&a, fast);
        hist_record(&b, slow);
        hist_record(&all, fast);
        hist_record(&all, slow);
    }
    hist_merge(&a, &b);
    assert_int_equal(a.count, all.count);
    assert_int_equal(a.min_ns, all.min_ns);
    assert_int_equal(a.max_ns, all.max_ns);
    assert_memory_equal(a.counts, all.counts, sizeof(a.counts));
    assert_true(fabs(hist_mean(&a) - hist_mean(&all)) < 1e-6 * hist_mean(&a));
    /* Half the samples are fast: the median sits at their top, p75 within
     * the slow ones. */
    assert_true(hist_quantile(&a, 0.5) <= 120000 + 120000 / 64);
    assert_true(hist_quantile(&a, 0.75) >= 1000000);
}

static void merging_an_empty_histogram_changes_nothing(void **state)
{
    (void)state;
    static struct hist a, empty;
    hist_init(&a);
    hist_init(&empty);
    hist_record(&a, 5000);
    hist_merge(&a, &empty);
    assert_int_equal(a.count, 1);
    assert_int_equal(a.min_ns, 5000);
    assert_int_equal(hist_quantile(&a, 0.5), 5000);
    hist_merge(&empty, &a);
    assert_int_equal(empty.min_ns, 5000);
    assert_int_equal(hist_quantile(&empty, 0.99), 5000);
}

/* The last row of buckets and values past it stay inside the array: the
 * fields after it (count, max) are intact. */
static void largest_values_stay_in_bounds(void **state)
{
    (void)state;
    static struct hist h;
    hist_init(&h);
    const uint64_t top = ((uint64_t)1 << (HIST_EXP_MAX + 1)) - 1;
    hist_record(&h, top);
    hist_record(&h, top - 1);
    hist_record(&h, (uint64_t)1 << HIST_EXP_MAX);
    hist_record(&h, UINT64_MAX);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.max_ns, UINT64_MAX);
    uint64_t total = 0;
    for (uint32_t i = 0; i < HIST_BUCKET_COUNT; i++)
        total += h.counts[i];
    assert_int_equal(total, 4);
    assert_within_bucket(hist_quantile(&h, 0.25), (uint64_t)1 << HIST_EXP_MAX);
    assert_int_equal(hist_quantile(&h, 1.0), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_histogram_reports_zero),
        cmocka_unit_test(values_below_64_are_exact),
        cmocka_unit_test(uniform_quantiles_are_within_one_bucket),
        cmocka_unit_test(exponential_quantiles_match_the_formula),
        cmocka_unit_test(every_bucket_spans_at_most_a_64th),
        cmocka_unit_test(merge_equals_recording_everything_in_one),
        cmocka_unit_test(merging_an_empty_histogram_changes_nothing),
        cmocka_unit_test(largest_values_stay_in_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
