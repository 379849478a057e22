/* sim: a run is exactly reproduced by its seed. Runs seeds twice in one
 * process (so no state may leak from one run into the next) and compares the
 * hash of the full event trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim.h"

static uint64_t run(uint64_t seed, const char *profile, uint32_t replicas)
{
    struct sim_options o = {.seed = seed,
                            .replicas = replicas,
                            .profile = profile,
                            .ops = 150,
                            .clients = 5,
                            .reads = SIM_READS_DEFAULT};
    struct sim_result *r = malloc(sizeof(*r));
    assert_non_null(r);
    sim_run(&o, r);
    uint64_t hash = r->trace_hash;
    assert_true(r->steps > 0);
    free(r);
    return hash;
}

static void the_same_seed_gives_the_same_trace(void **state)
{
    (void)state;
    static const char *profiles[] = {"none", "default", "harsh"};
    for (size_t p = 0; p < 3; p++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            uint64_t a = run(seed, profiles[p], 3);
            uint64_t b = run(seed, profiles[p], 3);
            assert_true(a == b);
        }
    assert_true(run(9, "default", 5) == run(9, "default", 5));
}

static void different_seeds_give_different_traces(void **state)
{
    (void)state;
    assert_true(run(1, "default", 3) != run(2, "default", 3));
    assert_true(run(1, "default", 3) != run(1, "harsh", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_same_seed_gives_the_same_trace),
        cmocka_unit_test(different_seeds_give_different_traces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
