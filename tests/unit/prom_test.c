/* Tests of runtime/loghist and runtime/prom: power-of-two buckets hold what
 * they claim (v <= 2^k, and above 2^(k-1)), and the Prometheus text has the
 * format's shape: HELP/TYPE lines, escaped label values, cumulative
 * histogram buckets ending in +Inf with _sum and _count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/loghist.h"
#include "runtime/prom.h"

static void buckets_are_powers_of_two(void **state)
{
    (void)state;
    assert_int_equal(loghist_bucket(0), 0);
    assert_int_equal(loghist_bucket(1), 0);
    assert_int_equal(loghist_bucket(2), 1);
    assert_int_equal(loghist_bucket(3), 2);
    assert_int_equal(loghist_bucket(4), 2);
    assert_int_equal(loghist_bucket(5), 3);
    assert_int_equal(loghist_bucket(1024), 10);
    assert_int_equal(loghist_bucket(1025), 11);
    assert_int_equal(loghist_bucket(UINT64_MAX), 64);
    for (uint32_t k = 1; k < 64; k++) {
        uint64_t p = (uint64_t)1 << k;
        assert_int_equal(loghist_bucket(p), k);
        assert_int_equal(loghist_bucket(p + 1), k + 1);
        assert_int_equal(loghist_bucket(p / 2 + 1), k);
    }
}

static void counts_at_most_are_cumulative(void **state)
{
    (void)state;
    struct loghist h;
    loghist_init(&h);
    uint64_t values[] = {0, 1, 2, 3, 100, 1000, 1u << 20};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        loghist_record(&h, values[i]);
        sum += values[i];
    }
    assert_int_equal(h.count, 7);
    assert_int_equal(h.sum, sum);
    assert_int_equal(loghist_count_at_most(&h, 0), 2); /* 0, 1 */
    assert_int_equal(loghist_count_at_most(&h, 1), 3);
    assert_int_equal(loghist_count_at_most(&h, 2), 4);
    assert_int_equal(loghist_count_at_most(&h, 7), 5);  /* 100 <= 128 */
    assert_int_equal(loghist_count_at_most(&h, 9), 5);  /* 1000 > 512 */
    assert_int_equal(loghist_count_at_most(&h, 10), 6); /* 1000 <= 1024 */
    assert_int_equal(loghist_count_at_most(&h, 20), 7);
    assert_int_equal(loghist_count_at_most(&h, 64), 7);
}

static char *text_of(struct resp_buf *b)
{
    char *s = malloc(b->size + 1);
    memcpy(s, b->data, b->size);
    s[b->size] = '\0';
    return s;
}

static void samples_have_help_type_and_escaped_labels(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 2);
    char labels[PROM_LABELS_MAX] = "";
    prom_label(labels, sizeof(labels), "command", "set");
    prom_label(labels, sizeof(labels), "why", "a \"b\"\\c\nd");
    prom_family(&b, "cohort_x_total", "counter", "What x counts");
    prom_u64(&b, "cohort_x_total", labels, 42);
    prom_double(&b, "cohort_y", NULL, 0.5);
    char *t = text_of(&b);
    assert_string_equal(t, "# HELP cohort_x_total What x counts\n"
                           "# TYPE cohort_x_total counter\n"
                           "cohort_x_total{command=\"set\",why=\"a "
                           "\\\"b\\\"\\\\c\\nd\"} 42\n"
                           "cohort_y 0.5\n");
    free(t);
    resp_buf_deinit(&b);
}

static void a_label_that_does_not_fit_is_cut_and_closed(void **state)
{
    (void)state;
    char labels[24] = "";
    prom_label(labels, sizeof(labels), "k", "0123456789012345678901234");
    size_t n = strlen(labels);
    assert_true(n < sizeof(labels));
    assert_int_equal(labels[n - 1], '"');
    assert_memory_equal(labels, "k=\"", 3);
}

static void histograms_are_cumulative_with_inf_sum_and_count(void **state)
{
    (void)state;
    struct loghist h;
    loghist_init(&h);
    loghist_record(&h, 1);  /* below the first exported bucket */
    loghist_record(&h, 3);  /* le 4 */
    loghist_record(&h, 8);  /* le 8 */
    loghist_record(&h, 99); /* past the last exported bucket */
    struct resp_buf b;
    resp_buf_init(&b, 2);
    prom_histogram(&b, "h", "a=\"b\"", &h, 1, 3, 1.0);
    char *t = text_of(&b);
    assert_string_equal(t, "h_bucket{a=\"b\",le=\"2\"} 1\n"
                           "h_bucket{a=\"b\",le=\"4\"} 2\n"
                           "h_bucket{a=\"b\",le=\"8\"} 3\n"
                           "h_bucket{a=\"b\",le=\"+Inf\"} 4\n"
                           "h_sum{a=\"b\"} 111\n"
                           "h_count{a=\"b\"} 4\n");
    free(t);
    resp_buf_deinit(&b);
}

static void a_scale_turns_microseconds_into_seconds(void **state)
{
    (void)state;
    struct loghist h;
    loghist_init(&h);
    loghist_record(&h, 1500); /* 1.5 ms */
    struct resp_buf b;
    resp_buf_init(&b, 2);
    prom_histogram(&b, "d_seconds", NULL, &h, 10, 11, 1e-6);
    char *t = text_of(&b);
    assert_string_equal(t, "d_seconds_bucket{le=\"0.001024\"} 0\n"
                           "d_seconds_bucket{le=\"0.002048\"} 1\n"
                           "d_seconds_bucket{le=\"+Inf\"} 1\n"
                           "d_seconds_sum 0.0015\n"
                           "d_seconds_count 1\n");
    free(t);
    resp_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_are_powers_of_two),
        cmocka_unit_test(counts_at_most_are_cumulative),
        cmocka_unit_test(samples_have_help_type_and_escaped_labels),
        cmocka_unit_test(a_label_that_does_not_fit_is_cut_and_closed),
        cmocka_unit_test(histograms_are_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(a_scale_turns_microseconds_into_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
