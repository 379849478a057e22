/* sim/net: the simulated network's ordering, faults and partitions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/net.h"

static const struct sim_net_config calm = {.delay_min_ms = 1,
                                           .delay_max_ms = 10};

static void messages_come_out_in_time_then_send_order(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 1);
    struct sim_net net;
    sim_net_init(&net, &p, 3, &calm);
    for (uint8_t i = 0; i < 100; i++)
        sim_net_send(&net, i, 0, 1, SIM_MSG_PEER, &i, 1);
    uint64_t last_at = 0, last_seq = 0, at;
    int n = 0;
    while (sim_net_next_at(&net, &at)) {
        struct sim_msg m;
        assert_true(sim_net_pop(&net, &m));
        assert_true(m.at == at);
        assert_true(m.at >= last_at);
        if (m.at == last_at && n > 0)
            assert_true(m.seq > last_seq);
        assert_true(m.at >= m.data[0] + 1u && m.at <= m.data[0] + 10u);
        last_at = m.at;
        last_seq = m.seq;
        free(m.data);
        n++;
    }
    assert_int_equal(n, 100);
    sim_net_deinit(&net);
}

static void a_split_cuts_both_ways_and_messages_in_flight(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 2);
    struct sim_net net;
    sim_net_init(&net, &p, 3, &calm);
    uint8_t b = 7;
    sim_net_send(&net, 0, 0, 1, SIM_MSG_PEER, &b, 1); /* in flight */
    sim_net_split(&net, 1u << 0);
    assert_false(sim_net_reachable(&net, 0, 1));
    assert_false(sim_net_reachable(&net, 2, 0));
    assert_true(sim_net_reachable(&net, 1, 2));
    assert_true(sim_net_reachable(&net, 0, 5)); /* clients always */
    sim_net_send(&net, 0, 1, 0, SIM_MSG_PEER, &b, 1);
    assert_int_equal(net.stats.cut, 1);
    struct sim_msg m;
    assert_false(sim_net_pop(&net, &m));
    assert_int_equal(net.stats.cut, 2);
    sim_net_heal(&net);
    assert_false(sim_net_partitioned(&net));
    sim_net_deinit(&net);
}

static void a_bridge_talks_to_both_sides(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 3);
    struct sim_net net;
    sim_net_init(&net, &p, 5, &calm);
    sim_net_bridge(&net, (1u << 0) | (1u << 1), 2);
    assert_false(sim_net_reachable(&net, 0, 3));
    assert_false(sim_net_reachable(&net, 4, 1));
    assert_true(sim_net_reachable(&net, 0, 1));
    assert_true(sim_net_reachable(&net, 3, 4));
    for (uint32_t i = 0; i < 5; i++) {
        assert_true(sim_net_reachable(&net, 2, i));
        assert_true(sim_net_reachable(&net, i, 2));
    }
    sim_net_heal(&net);
    sim_net_cut_link(&net, 0, 1);
    assert_false(sim_net_reachable(&net, 0, 1));
    assert_true(sim_net_reachable(&net, 1, 0));
    sim_net_deinit(&net);
}

static void loss_and_duplication_happen_at_their_rates(void **state)
{
    (void)state;
    struct prng p;
    prng_init(&p, 4);
    struct sim_net_config c = calm;
    c.loss_ppm = 100000;
    c.dup_ppm = 200000;
    struct sim_net net;
    sim_net_init(&net, &p, 3, &c);
    uint8_t b = 0;
    for (int i = 0; i < 10000; i++)
        sim_net_send(&net, 0, 0, 1, SIM_MSG_PEER, &b, 1);
    assert_in_range(net.stats.lost, 800, 1200);
    assert_in_range(net.stats.duplicated, 1500, 2100);
    assert_int_equal(net.count, 10000 - net.stats.lost + net.stats.duplicated);
    sim_net_deinit(&net);
}

static void the_same_seed_gives_the_same_schedule(void **state)
{
    (void)state;
    uint64_t at[2][50];
    for (int run = 0; run < 2; run++) {
        struct prng p;
        prng_init(&p, 99);
        struct sim_net_config c = calm;
        c.spike_ppm = 100000;
        c.spike_min_ms = 100;
        c.spike_max_ms = 200;
        struct sim_net net;
        sim_net_init(&net, &p, 3, &c);
        uint8_t b = 0;
        for (int i = 0; i < 50; i++)
            sim_net_send(&net, (uint64_t)i, 0, 2, SIM_MSG_PEER, &b, 1);
        for (int i = 0; i < 50; i++) {
            struct sim_msg m;
            assert_true(sim_net_pop(&net, &m));
            at[run][i] = m.at;
            free(m.data);
        }
        sim_net_deinit(&net);
    }
    assert_memory_equal(at[0], at[1], sizeof(at[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages_come_out_in_time_then_send_order),
        cmocka_unit_test(a_split_cuts_both_ways_and_messages_in_flight),
        cmocka_unit_test(a_bridge_talks_to_both_sides),
        cmocka_unit_test(loss_and_duplication_happen_at_their_rates),
        cmocka_unit_test(the_same_seed_gives_the_same_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
