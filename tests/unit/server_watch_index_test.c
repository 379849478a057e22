/* The watch index (server/watch.h, watch_index.c): a key finds its own
 * target and every watched prefix of it, shortest first, and nothing
 * else; one target serves every watch of a name, so many watchers on one
 * prefix cost one lookup per event; targets go with their last watch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/watch.h"

struct heard {
    char text[1024];
    uint32_t calls;
};

static void on_match(void *ctx, struct watch_target *t)
{
    struct heard *h = ctx;
    size_t n = strlen(h->text);
    static const char *const on[] = {"k", "p", "g"};
    snprintf(h->text + n, sizeof(h->text) - n, "%s:%.*s/%u ", on[t->on],
             (int)t->size, (const char *)t->name, t->count);
    h->calls++;
}

static const char *match(const struct server_watch *w, const char *key)
{
    static struct heard h;
    memset(&h, 0, sizeof(h));
    watch_index_match(w, (const uint8_t *)key, strlen(key), false, on_match,
                      &h);
    return h.text;
}

static void add(struct server_watch *w, struct watch *watch, const char *name,
                bool prefix)
{
    assert_int_equal(watch_index_add(w, watch, (const uint8_t *)name,
                                     strlen(name),
                                     prefix ? WATCH_ON_PREFIX : WATCH_ON_KEY),
                     0);
    assert_true(watch_index_valid(w));
}

static void a_key_finds_its_target_and_its_prefixes(void **s)
{
    (void)s;
    struct server_watch w;
    memset(&w, 0, sizeof(w));
    struct watch ws[8];
    memset(ws, 0, sizeof(ws));
    add(&w, &ws[0], "app/", true);
    add(&w, &ws[1], "app/x", false);
    add(&w, &ws[2], "", true); /* everything */
    add(&w, &ws[3], "app/xy", true);
    add(&w, &ws[4], "ap", true);
    add(&w, &ws[5], "b", true);
    add(&w, &ws[6], "app/", true); /* a second watch of one prefix */
    assert_int_equal(w.on[WATCH_ON_PREFIX].count, 5);
    assert_int_equal(w.on[WATCH_ON_KEY].count, 1);
    assert_string_equal(match(&w, "app/x"), "k:app/x/1 p:/1 p:ap/1 p:app//2 ");
    assert_string_equal(match(&w, "app/xyz"),
                        "p:/1 p:ap/1 p:app//2 p:app/xy/1 ");
    assert_string_equal(match(&w, "a"), "p:/1 ");
    assert_string_equal(match(&w, "b"), "p:/1 p:b/1 ");
    watch_index_remove(&w, &ws[2]);
    assert_string_equal(match(&w, "zzz"), "");
    watch_index_remove(&w, &ws[0]);
    assert_string_equal(match(&w, "app/q"), "p:ap/1 p:app//1 ");
    for (int i = 1; i < 7; i++)
        if (i != 2)
            watch_index_remove(&w, &ws[i]);
    assert_int_equal(w.on[WATCH_ON_PREFIX].count + w.on[WATCH_ON_KEY].count, 0);
    assert_null(w.on[WATCH_ON_PREFIX].items);
    assert_null(w.on[WATCH_ON_KEY].items);
    assert_string_equal(match(&w, "app/x"), "");
}

/* Binary keys: a prefix with a zero byte, and keys that sort around it. */
static void binary_names_match_bytewise(void **s)
{
    (void)s;
    struct server_watch w;
    memset(&w, 0, sizeof(w));
    struct watch a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        watch_index_add(&w, &a, (const uint8_t *)"x\0y", 3, WATCH_ON_PREFIX),
        0);
    assert_int_equal(
        watch_index_add(&w, &b, (const uint8_t *)"x", 1, WATCH_ON_KEY), 0);
    struct heard h;
    memset(&h, 0, sizeof(h));
    watch_index_match(&w, (const uint8_t *)"x\0yz", 4, false, on_match, &h);
    assert_int_equal(h.calls, 1);
    memset(&h, 0, sizeof(h));
    watch_index_match(&w, (const uint8_t *)"x\0z", 3, false, on_match, &h);
    assert_int_equal(h.calls, 0);
    memset(&h, 0, sizeof(h));
    watch_index_match(&w, (const uint8_t *)"x", 1, false, on_match, &h);
    assert_int_equal(h.calls, 1);
    watch_index_remove(&w, &a);
    watch_index_remove(&w, &b);
}

/* 10,000 watches of one prefix are one target: an event is one lookup
 * per prefix length, and one callback. */
static void many_watches_of_one_prefix_are_one_target(void **s)
{
    (void)s;
    enum { N = 10000 };
    static struct watch ws[N];
    struct server_watch w;
    memset(&w, 0, sizeof(w));
    for (int i = 0; i < N; i++)
        assert_int_equal(watch_index_add(&w, &ws[i], (const uint8_t *)"jobs/",
                                         5, WATCH_ON_PREFIX),
                         0);
    assert_int_equal(w.on[WATCH_ON_PREFIX].count, 1);
    struct heard h;
    memset(&h, 0, sizeof(h));
    watch_index_match(&w, (const uint8_t *)"jobs/17", 7, false, on_match, &h);
    assert_int_equal(h.calls, 1);
    assert_string_equal(h.text, "p:jobs//10000 ");
    for (int i = N - 1; i >= 0; i--)
        watch_index_remove(&w, &ws[i]);
    assert_int_equal(w.on[WATCH_ON_PREFIX].count, 0);
}

/* A group's target hears only the group's views, and a key or prefix
 * target of the same name hears only key changes. */
static void groups_and_keys_of_one_name_are_apart(void **s)
{
    (void)s;
    struct server_watch w;
    memset(&w, 0, sizeof(w));
    struct watch ws[3];
    memset(ws, 0, sizeof(ws));
    add(&w, &ws[0], "svc", false);
    add(&w, &ws[1], "sv", true);
    assert_int_equal(
        watch_index_add(&w, &ws[2], (const uint8_t *)"svc", 3, WATCH_ON_GROUP),
        0);
    assert_true(watch_index_valid(&w));
    assert_string_equal(match(&w, "svc"), "k:svc/1 p:sv/1 ");
    struct heard h;
    memset(&h, 0, sizeof(h));
    watch_index_match(&w, (const uint8_t *)"svc", 3, true, on_match, &h);
    assert_string_equal(h.text, "g:svc/1 ");
    assert_true(
        watch_target_matches(ws[2].target, (const uint8_t *)"svc", 3, true));
    assert_false(
        watch_target_matches(ws[2].target, (const uint8_t *)"svc", 3, false));
    assert_false(
        watch_target_matches(ws[1].target, (const uint8_t *)"svc", 3, true));
    assert_true(
        watch_target_matches(ws[1].target, (const uint8_t *)"svc", 3, false));
    for (int i = 0; i < 3; i++)
        watch_index_remove(&w, &ws[i]);
    assert_true(watch_index_valid(&w));
    assert_null(w.on[WATCH_ON_GROUP].items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_key_finds_its_target_and_its_prefixes),
        cmocka_unit_test(binary_names_match_bytewise),
        cmocka_unit_test(many_watches_of_one_prefix_are_one_target),
        cmocka_unit_test(groups_and_keys_of_one_name_are_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
