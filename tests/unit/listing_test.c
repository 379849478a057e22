/* The listing reads (kv/listing.h) and what they stand on: the SCAN cursor
 * (kv_scan) returns every key present for the whole scan through inserts,
 * deletes and table resizes between calls; the ordered index (kv_index.h)
 * stays equal to the table; COHORT.RANGE pages in key order within its
 * bounds; hostile arguments get Redis's errors. Randomized with fixed
 * seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/command.h"
#include "kv/kv.h"
#include "kv/kv_index.h"

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t key_name(char *buf, size_t size, const char *prefix, uint64_t n)
{
    int len = snprintf(buf, size, "%s%llu", prefix, (unsigned long long)n);
    assert_true(len > 0 && (size_t)len < size);
    return (size_t)len;
}

static uint64_t op;

static void put(struct kv *kv, const char *key, const char *value)
{
    assert_int_equal(kv_put(kv, (const uint8_t *)key, strlen(key),
                            (const uint8_t *)value, strlen(value), ++op),
                     0);
}

static char *query_args(struct kv *kv, uint32_t argc,
                        const struct resp_arg *argv)
{
    struct resp_buf out;
    resp_buf_init(&out, 2);
    kv_query(kv, argc, argv, &out);
    assert_true(out.ok);
    char *text = malloc(out.size + 1);
    assert_non_null(text);
    memcpy(text, out.data, out.size);
    text[out.size] = '\0';
    resp_buf_deinit(&out);
    return text;
}

/* A reply as text, NUL-terminated; the caller frees it. */
static char *query(struct kv *kv, uint32_t argc, const char *const *words)
{
    struct resp_arg argv[8];
    assert_true(argc <= 8);
    for (uint32_t i = 0; i < argc; i++) {
        argv[i].ptr = words[i];
        argv[i].size = strlen(words[i]);
    }
    return query_args(kv, argc, argv);
}

static void expect_reply(struct kv *kv, uint32_t argc, const char *const *words,
                         const char *want)
{
    char *got = query(kv, argc, words);
    assert_string_equal(got, want);
    free(got);
}

/* Parse "*N\r\n" then N bulk strings (printable, no CRLF inside) into
 * items (each a new string). Returns N. */
static size_t parse_flat(const char *p, char ***items)
{
    assert_true(*p == '*');
    size_t n = strtoul(p + 1, (char **)&p, 10);
    p += 2;
    *items = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        assert_true(*p == '$');
        size_t len = strtoul(p + 1, (char **)&p, 10);
        p += 2;
        (*items)[i] = strndup(p, len);
        p += len + 2;
    }
    assert_true(*p == '\0');
    return n;
}

static void free_items(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

struct seen {
    uint8_t *flags; /* per stable key: times returned */
    uint64_t stable;
};

static void mark(void *ctx, const struct kv_record *r)
{
    struct seen *s = ctx;
    if (r->key_size < 2 || memcmp(kv_record_key(r), "s:", 2) != 0)
        return;
    char buf[32];
    size_t len = r->key_size - 2 < 31 ? r->key_size - 2 : 31;
    memcpy(buf, kv_record_key(r) + 2, len);
    buf[len] = '\0';
    uint64_t i = strtoull(buf, NULL, 10);
    assert_true(i < s->stable);
    if (s->flags[i] < 255)
        s->flags[i]++;
}

/* Volatile keys "v:<n>" added and removed between scan steps: up to 7
 * per step, growing to cap keys (the table doubles on the way) and then
 * deleting down to none (it halves), again and again. */
struct churn {
    uint64_t next, low, cap;
    bool growing;
};

static void churn_step(struct kv *kv, struct churn *c)
{
    char key[32];
    uint64_t n = rng() % 8;
    for (uint64_t i = 0; i < n; i++) {
        if (c->growing && c->next - c->low >= c->cap)
            c->growing = false;
        else if (!c->growing && c->next == c->low)
            c->growing = true;
        if (c->growing) {
            key_name(key, sizeof(key), "v:", c->next++);
            put(kv, key, "x");
        } else {
            size_t len = key_name(key, sizeof(key), "v:", c->low++);
            assert_true(kv_del(kv, (const uint8_t *)key, len));
        }
    }
}

static void churn_drop(struct kv *kv, struct churn *c)
{
    char key[32];
    while (c->low < c->next) {
        size_t len = key_name(key, sizeof(key), "v:", c->low++);
        assert_true(kv_del(kv, (const uint8_t *)key, len));
    }
}

static void mark_nothing(void *ctx, const struct kv_record *r)
{
    (void)ctx;
    (void)r;
}

/* One scan, one bucket per step, from cursor 0 until it returns 0, with
 * churn between steps. */
static void scan_with_churn(struct kv *kv, uint64_t stable, uint64_t seed)
{
    rng_state = seed;
    struct seen s = {.flags = calloc(stable, 1), .stable = stable};
    struct churn c = {.cap = stable * 8, .growing = true};
    uint64_t cursor = 0, steps = 0;
    do {
        cursor = kv_scan(kv, cursor, mark, &s);
        churn_step(kv, &c);
        assert_true(++steps < 1000u * 1000);
    } while (cursor != 0);
    for (uint64_t i = 0; i < stable; i++) {
        if (s.flags[i] == 0)
            fail_msg("stable key s:%llu was never returned (seed %llu)",
                     (unsigned long long)i, (unsigned long long)seed);
    }
    free(s.flags);
    churn_drop(kv, &c);
}

static void scan_returns_every_stable_key_through_resizes(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    for (uint64_t seed = 1; seed <= 8; seed++) {
        config.hash_seed = seed * 7919;
        struct kv kv;
        assert_int_equal(kv_init(&kv, &config), 0);
        uint64_t stable = 50 + seed * 97;
        char key[32];
        for (uint64_t i = 0; i < stable; i++) {
            key_name(key, sizeof(key), "s:", i);
            put(&kv, key, "stable");
        }
        scan_with_churn(&kv, stable, seed);
        scan_with_churn(&kv, stable, seed + 1000);
        assert_true(kv_invariants_hold(&kv));
        kv_deinit(&kv);
    }
}

static void scan_churn_resizes_the_table(void **state)
{
    (void)state;
    /* The churn above makes the table double and halve during one scan
     * (else that test would prove little): count it on the same sizes. */
    struct kv_config config = kv_config_default();
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    uint64_t stable = 147;
    char key[32];
    for (uint64_t i = 0; i < stable; i++) {
        key_name(key, sizeof(key), "s:", i);
        put(&kv, key, "stable");
    }
    rng_state = 1;
    struct churn c = {.cap = stable * 8, .growing = true};
    uint64_t slots = kv.slot_count, grew = 0, shrank = 0, cursor = 0;
    do {
        cursor = kv_scan(&kv, cursor, mark_nothing, NULL);
        churn_step(&kv, &c);
        grew += kv.slot_count > slots;
        shrank += kv.slot_count < slots;
        slots = kv.slot_count;
    } while (cursor != 0);
    assert_true(grew >= 3);
    assert_true(shrank >= 2);
    kv_deinit(&kv);
}

static void scan_command_pages_and_matches(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    char key[32];
    for (uint64_t i = 0; i < 300; i++) {
        key_name(key, sizeof(key), i % 3 ? "user:" : "job:", i);
        put(&kv, key, "v");
    }
    uint64_t jobs = 0, calls = 0;
    char cursor[32] = "0";
    do {
        const char *w[] = {"SCAN", cursor, "MATCH", "job:*", "COUNT", "7"};
        char *text = query(&kv, 6, w);
        /* *2 $len cursor *n keys */
        const char *p = strchr(text, '\n') + 1;
        assert_true(*p == '$');
        p = strchr(p, '\n') + 1;
        size_t len = (size_t)(strchr(p, '\r') - p);
        memcpy(cursor, p, len);
        cursor[len] = '\0';
        p = strchr(p, '\n') + 1;
        char **items;
        size_t n = parse_flat(p, &items);
        for (size_t i = 0; i < n; i++)
            assert_memory_equal(items[i], "job:", 4);
        jobs += n;
        free_items(items, n);
        free(text);
        calls++;
    } while (strcmp(cursor, "0") != 0);
    assert_int_equal(jobs, 100);
    assert_true(calls > 1);
    const char *type_list[] = {"SCAN", "0", "TYPE", "list", "COUNT", "1000"};
    expect_reply(&kv, 6, type_list, "*2\r\n$1\r\n0\r\n*0\r\n");
    kv_deinit(&kv);
}

/* SCAN's hostile arguments: Redis's errors, no crash. */
static void hostile_arguments_get_redis_errors(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    put(&kv, "a", "1");
    const char *bad_cursors[] = {"-1", "abc", "18446744073709551616", "", "1 "};
    for (size_t i = 0; i < 5; i++) {
        const char *w[] = {"SCAN", bad_cursors[i]};
        expect_reply(&kv, 2, w, "-ERR invalid cursor\r\n");
    }
    const char *huge_cursor[] = {"scan", "18446744073709551615"};
    char *text = query(&kv, 2, huge_cursor);
    assert_memory_equal(text, "*2\r\n", 4);
    free(text);
    const char *count0[] = {"SCAN", "0", "COUNT", "0"};
    expect_reply(&kv, 4, count0, "-ERR syntax error\r\n");
    const char *countneg[] = {"SCAN", "0", "COUNT", "-5"};
    expect_reply(&kv, 4, countneg, "-ERR syntax error\r\n");
    const char *countbig[] = {"SCAN", "0", "COUNT", "99999999999999999999"};
    expect_reply(&kv, 4, countbig,
                 "-ERR value is not an integer or out of range\r\n");
    const char *counthuge[] = {"SCAN", "0", "COUNT", "9223372036854775807"};
    expect_reply(&kv, 4, counthuge, "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n");
    const char *type_bad[] = {"SCAN", "0", "TYPE", "foo"};
    expect_reply(&kv, 4, type_bad, "-ERR unknown type name 'foo'\r\n");
    const char *dangling[] = {"SCAN", "0", "MATCH"};
    expect_reply(&kv, 3, dangling, "-ERR syntax error\r\n");
    const char *unknown[] = {"SCAN", "0", "FOO", "1"};
    expect_reply(&kv, 4, unknown, "-ERR syntax error\r\n");
    kv_deinit(&kv);
}

static void range_and_key_reads_answer_as_redis(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    put(&kv, "a", "1");
    const char *limit0[] = {"COHORT.RANGE", "a", "b", "LIMIT", "0"};
    char *text = query(&kv, 5, limit0);
    assert_memory_equal(text, "-ERR LIMIT must be between 1 and 10000", 38);
    free(text);
    const char *limitbig[] = {"COHORT.RANGE", "a", "b", "LIMIT", "10001"};
    text = query(&kv, 5, limitbig);
    assert_memory_equal(text, "-ERR LIMIT", 10);
    free(text);
    const char *limitword[] = {"COHORT.RANGE", "a", "b", "LIMIT", "x"};
    expect_reply(&kv, 5, limitword,
                 "-ERR value is not an integer or out of range\r\n");
    const char *limitsyntax[] = {"COHORT.RANGE", "a", "b", "LIMIT"};
    expect_reply(&kv, 4, limitsyntax, "-ERR syntax error\r\n");
    const char *type_a[] = {"TYPE", "a"};
    expect_reply(&kv, 2, type_a, "+string\r\n");
    const char *type_b[] = {"TYPE", "b"};
    expect_reply(&kv, 2, type_b, "+none\r\n");
    const char *keys[] = {"KEYS", "[a-c]"};
    expect_reply(&kv, 2, keys, "*1\r\n$1\r\na\r\n");
    const char *rk[] = {"RANDOMKEY"};
    expect_reply(&kv, 1, rk, "$1\r\na\r\n");
    assert_true(kv_del(&kv, (const uint8_t *)"a", 1));
    expect_reply(&kv, 1, rk, "$-1\r\n");
    kv_deinit(&kv);
}

static int compare_strings(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return kv_key_compare((const uint8_t *)x, strlen(x), (const uint8_t *)y,
                          strlen(y));
}

/* Page through [start, end) with LIMIT limit, continuing from the last
 * key + "\x00" as the README says; the keys must be want[]. */
static void expect_range(struct kv *kv, const char *start, const char *end,
                         const char *limit, char **want, size_t want_n)
{
    char next[64];
    size_t next_size = strlen(start), got = 0;
    size_t lim = strtoul(limit, NULL, 10);
    memcpy(next, start, next_size);
    for (;;) {
        struct resp_arg w[] = {{"COHORT.RANGE", 12},
                               {next, next_size},
                               {end, strlen(end)},
                               {"LIMIT", 5},
                               {limit, strlen(limit)}};
        char *text = query_args(kv, 5, w);
        char **items;
        size_t n = parse_flat(text, &items);
        free(text);
        assert_true(n % 2 == 0 && n / 2 <= lim);
        for (size_t i = 0; i < n; i += 2) {
            assert_true(got < want_n);
            assert_string_equal(items[i], want[got]);
            assert_string_equal(items[i + 1], want[got]); /* value = key */
            got++;
        }
        bool more = n / 2 == lim;
        if (more) {
            next_size = strlen(items[n - 2]);
            memcpy(next, items[n - 2], next_size);
            next[next_size++] = '\0';
        }
        free_items(items, n);
        if (!more)
            break;
    }
    assert_int_equal(got, want_n);
}

static void range_is_ordered_bounded_and_pages(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    rng_state = 42;
    enum { N = 2000 };
    char *keys[N];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        char key[32];
        /* Prefixes of one another too: "k1", "k12", "k123"... */
        key_name(key, sizeof(key), "k", rng() % 100000);
        if (kv_get(&kv, (const uint8_t *)key, strlen(key)) == NULL)
            keys[n++] = strdup(key);
        put(&kv, key, key);
    }
    /* Delete a third. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0) {
            assert_true(kv_del(&kv, (const uint8_t *)keys[i], strlen(keys[i])));
            free(keys[i]);
        } else {
            keys[kept++] = keys[i];
        }
    }
    n = kept;
    assert_true(kv_invariants_hold(&kv));
    qsort(keys, n, sizeof(keys[0]), compare_strings);
    expect_range(&kv, "", "", "100", keys, n);
    expect_range(&kv, "", "", "1", keys, n);
    /* A bounded range: [k3, k5). */
    size_t lo = 0, hi = 0;
    while (lo < n && strcmp(keys[lo], "k3") < 0)
        lo++;
    hi = lo;
    while (hi < n && strcmp(keys[hi], "k5") < 0)
        hi++;
    expect_range(&kv, "k3", "k5", "7", keys + lo, hi - lo);
    expect_range(&kv, "k5", "k3", "7", keys, 0);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    kv_deinit(&kv);
}

static void index_follows_every_change(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    config.hash_seed = 99;
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    rng_state = 7;
    char key[32], value[300];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (int round = 0; round < 20000; round++) {
        key_name(key, sizeof(key), "", rng() % 3000);
        uint64_t r = rng() % 4;
        if (r == 0) {
            (void)kv_del(&kv, (const uint8_t *)key, strlen(key));
        } else {
            /* Different value sizes make replace() realloc the record. */
            size_t size = rng() % 299;
            assert_int_equal(kv_put(&kv, (const uint8_t *)key, strlen(key),
                                    (const uint8_t *)value, size, ++op),
                             0);
        }
        if (round % 2000 == 0)
            assert_true(kv_invariants_hold(&kv));
    }
    assert_true(kv_invariants_hold(&kv));
    kv_clear(&kv);
    assert_true(kv_invariants_hold(&kv));
    assert_int_equal(kv.index.count, 0);
    kv_deinit(&kv);
}

/* Keys inserted in order take the index's tail path (kv_index.h); deleting
 * the last keys moves the tails back, at every level; the index stays whole
 * and ordered, and later inserts before, between and after keep it so. */
/* Keys whose bytewise order is their numeric order. */
static void padded(char *buf, size_t size, uint64_t n)
{
    int len = snprintf(buf, size, "%08llu", (unsigned long long)n);
    assert_true(len > 0 && (size_t)len < size);
}

static void index_tails_follow_appends_and_deletes_at_the_end(void **state)
{
    (void)state;
    struct kv_config config = kv_config_default();
    config.hash_seed = 5;
    struct kv kv;
    assert_int_equal(kv_init(&kv, &config), 0);
    char key[32];
    for (uint64_t n = 0; n < 5000; n++) {
        padded(key, sizeof(key), n);
        assert_int_equal(kv_put(&kv, (const uint8_t *)key, strlen(key),
                                (const uint8_t *)"x", 1, ++op),
                         0);
    }
    assert_true(kv_invariants_hold(&kv));
    /* Off the end, one by one: the tail of each level the deleted node
     * was on goes back to the node before it there. */
    for (uint64_t n = 5000; n-- > 4000;) {
        padded(key, sizeof(key), n);
        assert_int_equal(kv_del(&kv, (const uint8_t *)key, strlen(key)), 1);
        if (n % 50 == 0)
            assert_true(kv_invariants_hold(&kv));
    }
    assert_true(kv_invariants_hold(&kv));
    /* Appends after the shortened end, then keys among the others. */
    for (uint64_t n = 4000; n < 4500; n++) {
        padded(key, sizeof(key), n);
        assert_int_equal(kv_put(&kv, (const uint8_t *)key, strlen(key),
                                (const uint8_t *)"y", 1, ++op),
                         0);
    }
    rng_state = 11;
    for (int i = 0; i < 2000; i++) {
        key_name(key, sizeof(key), "m", rng() % 9000);
        assert_int_equal(kv_put(&kv, (const uint8_t *)key, strlen(key),
                                (const uint8_t *)"z", 1, ++op),
                         0);
    }
    assert_true(kv_invariants_hold(&kv));
    /* Emptied from the end down to nothing, then refilled. */
    while (kv.key_count > 0) {
        const struct kv_index_node *last = kv.index.tail[0];
        assert_non_null(last);
        assert_null(kv_index_next(last));
        char copy[64];
        size_t len = last->record->key_size;
        memcpy(copy, kv_record_key(last->record), len);
        assert_int_equal(kv_del(&kv, (const uint8_t *)copy, len), 1);
    }
    assert_true(kv_invariants_hold(&kv));
    for (uint64_t n = 0; n < 300; n++) {
        padded(key, sizeof(key), n);
        assert_int_equal(kv_put(&kv, (const uint8_t *)key, strlen(key),
                                (const uint8_t *)"w", 1, ++op),
                         0);
    }
    assert_true(kv_invariants_hold(&kv));
    assert_int_equal(kv.index.count, 300);
    kv_deinit(&kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scan_returns_every_stable_key_through_resizes),
        cmocka_unit_test(scan_churn_resizes_the_table),
        cmocka_unit_test(scan_command_pages_and_matches),
        cmocka_unit_test(hostile_arguments_get_redis_errors),
        cmocka_unit_test(range_and_key_reads_answer_as_redis),
        cmocka_unit_test(range_is_ordered_bounded_and_pages),
        cmocka_unit_test(index_follows_every_change),
        cmocka_unit_test(index_tails_follow_appends_and_deletes_at_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
