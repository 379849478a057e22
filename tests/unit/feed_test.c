/* feed (src/server/feed.c): the list of a stream's connections, which of
 * them are behind, and the pump walk's fairness: when a turn's budget runs
 * out part way down the list, the next walk starts where this one stopped,
 * so under sustained fan-out every connection takes its turn at waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/feed.h"

#define N 10u

/* The connections: feed.c only carries the pointer. */
struct conn {
    struct feed_link link;
    uint32_t served; /* pump calls that delivered */
    bool cut_next;   /* the next pump cuts it */
};

static struct feed f;
static struct conn conns[N];
static uint32_t budget; /* deliveries left in this turn */

static bool pump(struct conn *c)
{
    assert_true(c->link.linked && c->link.behind);
    if (c->cut_next) {
        feed_remove(&f, &c->link);
        return budget == 0;
    }
    if (budget > 0) {
        budget--;
        c->served++;
    }
    return budget == 0; /* it stays behind: there is always more */
}

static void check_list(void)
{
    uint32_t count = 0, behind = 0;
    const struct feed_link *prev = NULL;
    for (const struct feed_link *l = f.head; l; l = l->next) {
        assert_true(l->linked);
        assert_ptr_equal(l->prev, prev);
        count++;
        behind += l->behind;
        prev = l;
    }
    assert_ptr_equal(f.tail, prev);
    assert_int_equal(count, f.count);
    assert_int_equal(behind, f.behind);
}

static void setup_all_behind(void)
{
    memset(&f, 0, sizeof(f));
    memset(conns, 0, sizeof(conns));
    for (uint32_t i = 0; i < N; i++) {
        feed_add(&f, &conns[i].link, &conns[i]);
        feed_set_behind(&f, &conns[i].link, true, 1);
    }
    check_list();
}

/* 3 deliveries a turn among 10 connections that are always behind: after
 * 10 turns each was served 3 times. Walking from the head every turn (the
 * old walk) served the first three 10 times and the others never. */
static void a_short_budget_is_shared_by_turns(void **s)
{
    (void)s;
    setup_all_behind();
    for (uint32_t turn = 0; turn < N; turn++) {
        budget = 3;
        feed_pump_all(&f, pump);
        assert_int_equal(budget, 0);
        check_list();
    }
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(conns[i].served, 3);
}

/* The link the budget ran out on, if still behind, goes first next time;
 * one cut by its pump is skipped and the list stays whole. */
static void rotation_survives_cuts(void **s)
{
    (void)s;
    setup_all_behind();
    struct conn *first = f.head->conn;
    first->cut_next = true;
    budget = 2;
    feed_pump_all(&f, pump);
    check_list();
    assert_false(first->link.linked);
    assert_int_equal(f.count, N - 1);
    /* Two served after the cut one, and the walk stopped on the second:
     * it is the tail now, and the head is the one after it. */
    struct feed_link *stop = f.tail;
    assert_int_equal(stop->conn->served, 1);
    assert_int_equal(stop->prev->conn->served, 1);
    assert_int_equal(f.head->conn->served, 0);
    /* A link that stops being behind is skipped by the walk. */
    struct feed_link *skipped = f.head;
    feed_set_behind(&f, skipped, false, 0);
    budget = 1;
    feed_pump_all(&f, pump);
    check_list();
    assert_int_equal(skipped->conn->served, 0);
    assert_int_equal(f.tail->conn->served, 1);
    assert_ptr_equal(f.tail->prev, skipped);
    /* Removing the head and the tail keeps head, tail and count right. */
    feed_remove(&f, f.head);
    feed_remove(&f, f.tail);
    check_list();
    while (f.head)
        feed_remove(&f, f.head);
    check_list();
    assert_null(f.tail);
}

/* Rotating keeps every link, in the same cyclic order. */
static void rotate_keeps_the_cycle(void **s)
{
    (void)s;
    setup_all_behind();
    struct feed_link *order[N];
    uint32_t k = 0;
    for (struct feed_link *l = f.head; l; l = l->next)
        order[k++] = l;
    for (uint32_t r = 0; r < 2 * N; r++) {
        uint32_t at = (r * 7u) % N;
        /* Find order[at] and make it the head. */
        feed_rotate(&f, order[at]);
        check_list();
        uint32_t j = at;
        for (struct feed_link *l = f.head; l; l = l->next, j = (j + 1) % N)
            assert_ptr_equal(l, order[j]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_short_budget_is_shared_by_turns),
        cmocka_unit_test(rotation_survives_cuts),
        cmocka_unit_test(rotate_keeps_the_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
