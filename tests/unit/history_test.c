/* The retained published messages (kv/history.h): order, the count and
 * byte bounds, the floor that says what is retained, the binary search,
 * the byte ring the entries share, and the glob matching that pattern
 * subscriptions use. */
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

static size_t footprint_of(size_t channel_size, size_t message_size)
{
    return (size_t)((history_entry_cost(channel_size, message_size) + 7) &
                    ~(uint64_t)7);
}

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

/* The message of position p: size bytes derived from p. */
static void message_of(uint64_t p, uint8_t *out, size_t size)
{
    for (size_t i = 0; i < size; i++)
        out[i] = (uint8_t)(p * 31 + i * 7);
}

/* Entries share one byte ring: over many wraps with sizes that vary (the
 * ring's tail never lines up the same way twice), every retained entry
 * still holds exactly what was appended, the budget keeps all but the
 * space the wrap wastes, and the ring stays about as long as what the
 * live entries need. */
static void survive_wraps_with(uint64_t budget, bool mapped)
{
    struct history h;
    assert_int_equal(history_init(&h, 100000, budget), 0);
    uint8_t msg[3000], want[3000];
    uint64_t seed = 12345, largest = 0, max_live = 0, max_count = 0;
    for (uint64_t p = 1; p <= 20000; p++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        /* Runs of big messages (up to ~3 KB) and of tiny ones, whose
         * alignment costs more: after a run of big ones, a wrapped ring
         * must evict to make room (place() fails there). */
        size_t size = (size_t)(seed >> 33) % ((p / 1500) % 2 ? 3000 : 16);
        char channel[16];
        int channel_size =
            snprintf(channel, sizeof(channel), "c%u", (unsigned)(p % 97));
        message_of(p, msg, size);
        assert_int_equal(
            history_append(&h, p, channel, (size_t)channel_size, msg, size), 0);
        uint64_t cost = history_entry_cost((size_t)channel_size, size);
        if (cost > largest)
            largest = cost;
        assert_true(h.bytes <= budget);
        /* What the ring may cost: each entry's alignment, and the largest
         * entry twice over for a wrap. */
        assert_true(h.bytes + 7 * h.count + 2 * (largest + 8) >= budget ||
                    h.floor == 0);
        if (h.bytes > max_live)
            max_live = h.bytes;
        if (h.count > max_count)
            max_count = h.count;
        /* The oldest entry is the one a new entry would overwrite: checked
         * every time, all of them now and then. */
        bool all = p % 997 == 0 || p == 20000;
        for (uint32_t i = 0; i < (all ? h.count : 1); i++) {
            const struct history_entry *e = history_at(&h, i);
            message_of(e->position, want, e->message_size);
            assert_memory_equal(history_message(e), want, e->message_size);
            char c[16];
            int n = snprintf(c, sizeof(c), "c%u", (unsigned)(e->position % 97));
            assert_int_equal(e->channel_size, n);
            assert_memory_equal(history_channel(e), c, (size_t)n);
            if (i > 0)
                assert_int_equal(history_at(&h, i - 1)->position + 1,
                                 e->position);
        }
        assert_int_equal(h.floor + 1, history_at(&h, 0)->position);
    }
    /* Touched: at most the live bytes with each entry's 8-byte alignment,
     * plus about one wrap's waste. */
    assert_true(h.extent <= max_live + 7 * max_count + 2 * (largest + 8));
    assert_true(h.extent <= h.buf_size);
    assert_true(h.buf_mapped == mapped);
    history_deinit(&h);
}

static void entries_survive_the_byte_rings_wraps(void **state)
{
    (void)state;
    survive_wraps_with(64 * 1024, false);
}

/* The same past HISTORY_MAP_MIN, where the ring moves once into a reserved
 * mapping instead of doubling on. */
static void entries_survive_the_move_to_a_mapped_ring(void **state)
{
    (void)state;
    survive_wraps_with(2 * HISTORY_MAP_MIN, true);
}

/* Few live entries in a large budget: the ring starts over at its start as
 * soon as that has room, so the pages written stay few. */
static void a_small_history_touches_few_pages(void **state)
{
    (void)state;
    struct history h;
    assert_int_equal(history_init(&h, 10, 64u << 20), 0);
    uint8_t msg[1000];
    memset(msg, 'm', sizeof(msg));
    for (uint64_t p = 1; p <= 100000; p++)
        assert_int_equal(history_append(&h, p, "ch", 2, msg, sizeof(msg)), 0);
    assert_int_equal(h.count, 10);
    assert_true(h.extent <= 11 * footprint_of(2, sizeof(msg)));
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
        cmocka_unit_test(entries_survive_the_byte_rings_wraps),
        cmocka_unit_test(entries_survive_the_move_to_a_mapped_ring),
        cmocka_unit_test(a_small_history_touches_few_pages),
        cmocka_unit_test(refuses_a_bad_count),
        cmocka_unit_test(channel_patterns_are_redis_globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
