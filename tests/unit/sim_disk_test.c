/* sim/disk: durable log, metadata and snapshots under crashes, torn writes
 * and corruption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/disk.h"

/* A chain of entries 1..n with one-byte bodies; tag changes the bodies so
 * two chains diverge. */
struct chain {
    struct entry e[64];
    uint8_t body[64];
};

static void chain_make(struct chain *c, uint64_t from, uint64_t n,
                       uint64_t parent, uint8_t tag)
{
    for (uint64_t i = 0; i < n; i++) {
        struct entry *e = &c->e[i];
        memset(e, 0, sizeof(*e));
        c->body[i] = (uint8_t)(tag + i);
        e->h.parent = i ? c->e[i - 1].h.checksum : parent;
        e->h.op = from + i;
        e->h.view = 1;
        e->h.body_size = 1;
        e->h.kind = ENTRY_CLIENT;
        e->body = &c->body[i];
        entry_seal(&e->h, e->body);
    }
}

static void persist(struct sim_disk *d, uint64_t now, const struct chain *c,
                    uint32_t from_index, uint32_t count)
{
    const struct entry *last = &c->e[from_index + count - 1];
    sim_disk_persist(d, now, c->e[from_index].h.op, last->h.op,
                     last->h.checksum, &c->e[from_index], count);
}

static void drain(struct sim_disk *d)
{
    struct sim_disk_done done;
    uint64_t at;
    while (sim_disk_next_at(d, &at))
        sim_disk_complete(d, &done);
}

static const struct sim_disk_config fast = {.latency_min_ms = 1,
                                            .latency_max_ms = 5};

static void writes_complete_in_order_and_echo_the_persist(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 1);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain c;
    chain_make(&c, 1, 10, 0, 0);
    persist(&d, 0, &c, 0, 5);
    struct replica_meta meta = {.view = 1};
    sim_disk_meta(&d, 0, 1, &meta);
    persist(&d, 1, &c, 5, 5);
    uint64_t last = 0, at;
    struct sim_disk_done done;
    int n = 0;
    while (sim_disk_next_at(&d, &at)) {
        assert_true(at >= last);
        last = at;
        sim_disk_complete(&d, &done);
        if (n == 0) {
            assert_int_equal(done.kind, SIM_WRITE_LOG);
            assert_int_equal(done.op, 5);
            assert_true(done.checksum == c.e[4].h.checksum);
        } else if (n == 1) {
            assert_int_equal(done.kind, SIM_WRITE_META);
            assert_int_equal(done.seq, 1);
        }
        assert_false(done.gap);
        n++;
    }
    assert_int_equal(n, 3);
    struct sim_disk_image img;
    sim_disk_load(&d, &img);
    assert_true(img.durable.meta_present);
    assert_int_equal(img.durable.view, 1);
    assert_int_equal(img.durable.entry_count, 10);
    assert_int_equal(img.durable.damaged_op, 0);
    assert_int_equal(img.unchained_op, 0);
    sim_disk_deinit(&d);
}

static void a_crash_loses_pending_writes(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 2);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain c;
    chain_make(&c, 1, 10, 0, 0);
    persist(&d, 0, &c, 0, 4);
    drain(&d);
    persist(&d, 10, &c, 4, 6);
    assert_false(sim_disk_crash(&d)); /* torn_ppm is 0 */
    struct sim_disk_image img;
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.entry_count, 4);
    assert_int_equal(img.durable.damaged_op, 0);
    sim_disk_deinit(&d);
}

static void a_torn_write_never_damages_what_was_durable(void **state)
{
    (void)state;
    struct sim_disk_config torn = fast;
    torn.torn_ppm = 1000000;
    for (uint64_t seed = 0; seed < 200; seed++) {
        struct prng p;
        prng_init(&p, seed);
        struct sim_disk d;
        sim_disk_init(&d, &p, &torn);
        struct chain c;
        chain_make(&c, 1, 10, 0, 0);
        persist(&d, 0, &c, 0, 6);
        drain(&d);
        /* Rewrites 3..6 identically and appends 7..10. */
        persist(&d, 5, &c, 2, 8);
        assert_true(sim_disk_crash(&d));
        struct sim_disk_image img;
        sim_disk_load(&d, &img);
        assert_true(img.durable.entry_count >= 6);
        assert_int_equal(img.durable.damaged_op, 0); /* a torn tail */
        if (img.torn_op)
            assert_int_equal(img.torn_op, img.durable.entry_count + 1);
        assert_int_equal(img.unchained_op, 0);
        sim_disk_deinit(&d);
    }
}

static void a_replaced_suffix_cuts_the_old_one(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 3);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain a, b;
    chain_make(&a, 1, 10, 0, 0);
    persist(&d, 0, &a, 0, 10);
    /* A new view keeps 1..4 and replaces the rest with two other entries. */
    chain_make(&b, 5, 2, a.e[3].h.checksum, 100);
    persist(&d, 0, &b, 0, 2);
    drain(&d);
    struct sim_disk_image img;
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.entry_count, 6);
    assert_true(img.durable.entries[5].h.checksum == b.e[1].h.checksum);
    /* Truncate only. */
    sim_disk_persist(&d, 0, 4, 3, a.e[2].h.checksum, NULL, 0);
    drain(&d);
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.entry_count, 3);
    sim_disk_deinit(&d);
}

static void corruption_cuts_the_log_and_names_the_op(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 4);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain c;
    chain_make(&c, 1, 10, 0, 0);
    persist(&d, 0, &c, 0, 10);
    drain(&d);
    uint64_t op = sim_disk_corrupt(&d, 0);
    assert_in_range(op, 1, 9); /* never the last record */
    assert_int_equal(sim_disk_corrupt_op(&d), op);
    struct sim_disk_image img;
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.damaged_op, op);
    assert_int_equal(img.durable.entry_count, op - 1);
    /* Rewriting the record repairs it. */
    persist(&d, 0, &c, (uint32_t)op - 1, 10 - (uint32_t)op + 1);
    drain(&d);
    assert_int_equal(sim_disk_corrupt_op(&d), 0);
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.damaged_op, 0);
    assert_int_equal(img.durable.entry_count, 10);
    sim_disk_deinit(&d);
}

static void snapshots_compact_and_installs_drop_stale_suffixes(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 5);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain c;
    chain_make(&c, 1, 10, 0, 0);
    persist(&d, 0, &c, 0, 10);
    uint8_t state_bytes[3] = {1, 2, 3};
    struct sim_snapshot s = {.op = 6,
                             .checksum = c.e[5].h.checksum,
                             .state = state_bytes,
                             .state_size = 3};
    sim_disk_snapshot(&d, 0, false, &s);
    assert_false(sim_disk_compact(&d, 6)); /* not durable yet */
    drain(&d);
    assert_true(sim_disk_compact(&d, 6));
    struct sim_disk_image img;
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.snapshot_op, 6);
    assert_int_equal(img.durable.entry_count, 4);
    assert_int_equal(img.durable.entries[0].h.op, 7);
    /* A peer's snapshot at 8 of another history drops our 7..10. */
    struct sim_snapshot t = {
        .op = 8, .checksum = 12345, .state = state_bytes, .state_size = 3};
    sim_disk_snapshot(&d, 0, true, &t);
    drain(&d);
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.snapshot_op, 8);
    assert_int_equal(img.durable.entry_count, 0);
    assert_int_equal(img.unchained_op, 0);
    sim_disk_deinit(&d);
}

static void a_write_past_the_durable_end_is_a_gap(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 6);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain c;
    chain_make(&c, 1, 10, 0, 0);
    persist(&d, 0, &c, 0, 3);
    persist(&d, 0, &c, 5, 2);
    struct sim_disk_done done;
    sim_disk_complete(&d, &done);
    assert_false(done.gap);
    sim_disk_complete(&d, &done);
    assert_true(done.gap);
    assert_int_equal(done.gap_durable_op, 3);
    sim_disk_deinit(&d);
}

static void a_log_behind_its_snapshot_restarts_after_it(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 7);
    struct sim_disk d;
    sim_disk_init(&d, &p, &fast);
    struct chain c;
    chain_make(&c, 1, 10, 0, 0);
    persist(&d, 0, &c, 0, 3);
    /* Ops 4..6 were applied before they were durable here, and a snapshot
     * at 6 was taken; the next write starts at 7. */
    uint8_t state_bytes[1] = {0};
    struct sim_snapshot s = {.op = 6,
                             .checksum = c.e[5].h.checksum,
                             .state = state_bytes,
                             .state_size = 1};
    sim_disk_snapshot(&d, 0, false, &s);
    persist(&d, 0, &c, 6, 4);
    struct sim_disk_done done;
    sim_disk_complete(&d, &done);
    sim_disk_complete(&d, &done);
    sim_disk_complete(&d, &done);
    assert_false(done.gap);
    struct sim_disk_image img;
    sim_disk_load(&d, &img);
    assert_int_equal(img.durable.snapshot_op, 6);
    assert_int_equal(img.durable.entry_count, 4);
    assert_int_equal(img.unchained_op, 0);
    sim_disk_deinit(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_complete_in_order_and_echo_the_persist),
        cmocka_unit_test(a_crash_loses_pending_writes),
        cmocka_unit_test(a_torn_write_never_damages_what_was_durable),
        cmocka_unit_test(a_replaced_suffix_cuts_the_old_one),
        cmocka_unit_test(corruption_cuts_the_log_and_names_the_op),
        cmocka_unit_test(snapshots_compact_and_installs_drop_stale_suffixes),
        cmocka_unit_test(a_write_past_the_durable_end_is_a_gap),
        cmocka_unit_test(a_log_behind_its_snapshot_restarts_after_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
