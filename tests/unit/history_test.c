/* The retained published messages (kv/history.h): order, the count and
 * byte bounds, the floor that says what is retained, the binary search,
 * and the glob matching that pattern subscriptions use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cohort.h"
#include "kv/acl.h"
#include "kv/history.h"

static void append(struct history *h, uint64_t position, const char *channel,
                   const char *message)
{
    assert_int_equal(history_append(h, position, channel, strlen(channel),
                                    message, strlen(message)),
                     0);
}

static void keeps_the_newest_within_the_count(void **state)
{
    (void)state;
    struct history h;
    assert_int_equal(history_init(&h, 3, 1u << 20), 0);
    assert_int_equal(h.floor, 0);
    assert_int_equal(history_find(&h, 1), 0);
    /* Positions need not be consecutive: other ops lie between. */
    append(&h, 2, "a", "x");
    append(&h, 5, "b", "y");
    append(&h, 6, "a", "z");
    assert_int_equal(h.count, 3);
    assert_int_equal(h.floor, 0);
    append(&h, 9, "c", "w"); /* evicts 2 */
    assert_int_equal(h.count, 3);
    assert_int_equal(h.floor, 2);
    assert_int_equal(history_at(&h, 0)->position, 5);
    assert_int_equal(history_at(&h, 2)->position, 9);
    const struct history_entry *e = history_at(&h, 1);
    assert_memory_equal(history_channel(e), "a", 1);
    assert_memory_equal(history_message(e), "z", 1);
    /* The first entry at or after a position, across the ring's wrap. */
    assert_int_equal(history_find(&h, 0), 0);
    assert_int_equal(history_find(&h, 5), 0);
    assert_int_equal(history_find(&h, 6), 1);
    assert_int_equal(history_find(&h, 7), 2);
    assert_int_equal(history_find(&h, 9), 2);
    assert_int_equal(history_find(&h, 10), 3);
    for (uint64_t p = 10; p < 1000; p += 3)
        append(&h, p, "ch", "m");
    assert_int_equal(h.count, 3);
    assert_int_equal(history_at(&h, 0)->position + 6,
                     history_at(&h, 2)->position);
    assert_int_equal(h.floor + 3, history_at(&h, 0)->position);
    history_deinit(&h);
}

static void keeps_within_the_byte_budget(void **state)
{
    (void)state;
    struct history h;
    uint64_t one = history_entry_cost(2, 10);
    assert_int_equal(history_init(&h, 1000, 3 * one), 0);
    for (uint64_t p = 1; p <= 10; p++)
        append(&h, p, "ch", "0123456789");
    assert_int_equal(h.count, 3);
    assert_int_equal(h.bytes, 3 * one);
    assert_int_equal(h.floor, 7);
    /* A message larger than the whole budget empties it: nothing at or
     * below its position is retained any more. */
    char big[256];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    append(&h, 11, "ch", big);
    assert_int_equal(h.count, 0);
    assert_int_equal(h.bytes, 0);
    assert_int_equal(h.floor, 11);
    append(&h, 12, "ch", "0123456789");
    assert_int_equal(h.count, 1);
    assert_int_equal(history_find(&h, 12), 0);
    history_reset(&h, 40);
    assert_int_equal(h.count, 0);
    assert_int_equal(h.floor, 40);
    append(&h, 41, "", ""); /* empty channel and message */
    assert_int_equal(history_at(&h, 0)->channel_size, 0);
    history_deinit(&h);
}

/* The slots grow with use, keeping the order when the oldest entry is not
 * in slot 0 (evictions by bytes moved it). */
static void grows_in_order_across_the_wrap(void **state)
{
    (void)state;
    struct history h;
    char big[101];
    memset(big, 'b', 100);
    big[100] = '\0';
    uint64_t big_cost = history_entry_cost(2, 100);
    assert_int_equal(history_init(&h, 1000, 5 * big_cost), 0);
    assert_null(h.ring); /* nothing allocated before the first message */
    uint64_t p = 0;
    for (int i = 0; i < 8; i++)
        append(&h, ++p, "ch", big); /* 3 evicted: the oldest is in slot 3 */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.floor, 3);
    for (int i = 0; i < 40; i++)
        append(&h, ++p, "ch", ""); /* small: grows twice, evicts the bigs */
    assert_true(h.capacity >= 32);
    for (uint32_t i = 0; i + 1 < h.count; i++)
        assert_int_equal(history_at(&h, i)->position + 1,
                         history_at(&h, i + 1)->position);
    assert_int_equal(history_at(&h, h.count - 1)->position, p);
    assert_int_equal(h.floor + 1, history_at(&h, 0)->position);
    assert_int_equal(history_find(&h, p), h.count - 1);
    history_deinit(&h);
}

static void refuses_a_bad_count(void **state)
{
    (void)state;
    struct history h;
    assert_int_equal(history_init(&h, 0, 100), -COHORT_EINVAL);
    assert_int_equal(history_init(&h, HISTORY_COUNT_LIMIT + 1, 100),
                     -COHORT_EINVAL);
}

static bool match(const char *pattern, const char *channel)
{
    return acl_glob_match(pattern, strlen(pattern), channel, strlen(channel));
}

/* PSUBSCRIBE patterns are Redis's globs (the matcher ACL and KEYS use). */
static void channel_patterns_are_redis_globs(void **state)
{
    (void)state;
    assert_true(match("news.*", "news.art"));
    assert_true(match("news.*", "news."));
    assert_false(match("news.*", "news"));
    assert_true(match("h?llo", "hello"));
    assert_false(match("h?llo", "hllo"));
    assert_true(match("h[ae]llo", "hallo"));
    assert_false(match("h[ae]llo", "hillo"));
    assert_true(match("h[^e]llo", "hallo"));
    assert_false(match("h[^e]llo", "hello"));
    assert_true(match("h[a-c]llo", "hbllo"));
    assert_true(match("a\\*b", "a*b"));
    assert_false(match("a\\*b", "axb"));
    assert_true(match("*", ""));
    assert_false(match("", "a"));
    /* Hostile patterns end: many stars, an open bracket. */
    assert_false(match("a*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_false(match("[abc", "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_the_newest_within_the_count),
        cmocka_unit_test(keeps_within_the_byte_budget),
        cmocka_unit_test(grows_in_order_across_the_wrap),
        cmocka_unit_test(refuses_a_bad_count),
        cmocka_unit_test(channel_patterns_are_redis_globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
