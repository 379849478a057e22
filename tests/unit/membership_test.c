/* membership: who leads a view and what a quorum is, from the epoch's
 * voters alone (learners never count), and the validity rules a peer's
 * configuration must pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/membership.h"

static void epoch_zero_is_every_id_in_order(void **state)
{
    (void)state;
    struct membership m;
    membership_all(&m, 0, 3);
    assert_int_equal(m.voter_count, 3);
    assert_int_equal(m.learner_count, 0);
    for (uint64_t v = 0; v < 9; v++)
        assert_int_equal(membership_primary(&m, v), v % 3);
    assert_int_equal(membership_quorum(&m), 2);
    membership_all(&m, 0, 5);
    assert_int_equal(membership_quorum(&m), 3);
    membership_all(&m, 0, 1);
    assert_int_equal(membership_quorum(&m), 1);
    assert_true(membership_valid(&m, 1));
}

static void primary_walks_the_ordered_voters(void **state)
{
    (void)state;
    struct membership m = {.epoch = 4,
                           .voter_count = 3,
                           .voters = {4, 1, 3},
                           .learner_count = 1,
                           .learners = {0}};
    assert_true(membership_valid(&m, 5));
    assert_int_equal(membership_primary(&m, 0), 4);
    assert_int_equal(membership_primary(&m, 1), 1);
    assert_int_equal(membership_primary(&m, 5), 3);
    assert_true(membership_is_voter(&m, 3));
    assert_false(membership_is_voter(&m, 0));
    assert_true(membership_is_learner(&m, 0));
    assert_true(membership_is_member(&m, 0));
    assert_false(membership_is_member(&m, 2));
    /* A learner does not make the quorum bigger. */
    assert_int_equal(membership_quorum(&m), 2);
}

static void even_voter_counts_need_a_strict_majority(void **state)
{
    (void)state;
    struct membership m;
    membership_all(&m, 0, 4);
    assert_int_equal(membership_quorum(&m), 3); /* two 2s could be disjoint */
    membership_all(&m, 0, 2);
    assert_int_equal(membership_quorum(&m), 2);
}

static void invalid_configurations_are_refused(void **state)
{
    (void)state;
    struct membership m = {.voter_count = 0};
    assert_false(membership_valid(&m, 3)); /* no voters */
    m = (struct membership){.voter_count = 2, .voters = {0, 0}};
    assert_false(membership_valid(&m, 3)); /* a voter twice */
    m = (struct membership){.voter_count = 2, .voters = {0, 3}};
    assert_false(membership_valid(&m, 3)); /* outside the universe */
    m = (struct membership){.voter_count = 2,
                            .voters = {0, 1},
                            .learner_count = 1,
                            .learners = {1}};
    assert_false(membership_valid(&m, 3)); /* voter and learner */
    m = (struct membership){.voter_count = COHORT_REPLICAS_MAX,
                            .learner_count = 1};
    assert_false(membership_valid(&m, COHORT_REPLICAS_MAX)); /* too many */
    m = (struct membership){.voter_count = UINT32_MAX};
    assert_false(membership_valid(&m, 3));
}

static void equality_compares_the_whole_configuration(void **state)
{
    (void)state;
    struct membership a, b;
    membership_all(&a, 1, 3);
    membership_all(&b, 1, 3);
    assert_true(membership_equal(&a, &b));
    b.voters[0] = 2;
    b.voters[2] = 0;
    assert_false(membership_equal(&a, &b));
    membership_all(&b, 2, 3);
    assert_false(membership_equal(&a, &b));
}

static void packing_round_trips_and_refuses_garbage(void **state)
{
    (void)state;
    struct membership m = {.epoch = 9,
                           .voter_count = 3,
                           .voters = {4, 0, 2},
                           .learner_count = 2,
                           .learners = {1, 3}};
    uint64_t packed = membership_pack(&m);
    assert_int_not_equal(packed, 0);
    struct membership out;
    assert_true(membership_unpack(packed, 9, 5, &out));
    assert_true(membership_equal(&m, &out));
    /* The epoch comes from outside the packed value. */
    assert_true(membership_unpack(packed, 10, 5, &out));
    assert_int_equal(out.epoch, 10);
    /* An id outside the universe, no voters, a voter slot past the
     * count, a learner bit past the largest id, a voter also a learner. */
    assert_false(membership_unpack(packed, 9, 4, &out));
    assert_false(membership_unpack(0, 9, 5, &out));
    assert_false(membership_unpack(packed | (UINT64_C(1) << 20), 9, 5, &out));
    assert_false(membership_unpack(
        packed | (UINT64_C(1) << (32 + COHORT_REPLICAS_MAX)), 9, 5, &out));
    assert_false(membership_unpack(packed | (UINT64_C(1) << 32), 9, 5, &out));
    for (uint32_t n = 1; n <= COHORT_REPLICAS_MAX; n++) {
        membership_all(&m, 0, n);
        assert_true(membership_unpack(membership_pack(&m), 0, n, &out));
        assert_true(membership_equal(&m, &out));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(epoch_zero_is_every_id_in_order),
        cmocka_unit_test(primary_walks_the_ordered_voters),
        cmocka_unit_test(even_voter_counts_need_a_strict_majority),
        cmocka_unit_test(invalid_configurations_are_refused),
        cmocka_unit_test(equality_compares_the_whole_configuration),
        cmocka_unit_test(packing_round_trips_and_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
