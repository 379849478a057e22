/* The failure detector: suspicion after a peer's timeout, exponential back-off
 * on false suspicions up to the maximum, decay back toward the base after
 * long health, and the deadline used to schedule the next tick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/detector.h"

#define BASE_MS 100
#define MAX_MS 800
#define DECAY_MS 2000
#define START_MS 1000

/* Three replicas, self is 0, every peer healthy as of START_MS. */
static void detector_make(struct detector *d)
{
    struct detector_config config = {
        .peer_count = 3,
        .self = 0,
        .timeout_base_ms = BASE_MS,
        .timeout_max_ms = MAX_MS,
        .timeout_decay_ms = DECAY_MS,
    };
    memset(d, 0xa5, sizeof(*d)); /* init must not rely on zeroed memory */
    detector_init(d, &config, START_MS);
}

/* Silence peer until tick suspects it, then hear from it at once: one false
 * suspicion. Returns the time it was heard. */
static uint64_t suspect_falsely(struct detector *d, uint32_t peer,
                                uint64_t now_ms)
{
    uint64_t late_ms = d->peers[peer].heard_ms + d->peers[peer].timeout_ms + 1;
    if (late_ms < now_ms)
        late_ms = now_ms;
    detector_tick(d, late_ms);
    assert_true(detector_suspects(d, peer));
    assert_true(detector_heard(d, peer, late_ms));
    return late_ms;
}

static void fresh_detector_suspects_nobody(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    for (uint32_t i = 0; i < 3; i++) {
        assert_false(detector_suspects(&d, i));
        assert_int_equal(d.peers[i].timeout_ms, BASE_MS);
        assert_int_equal(d.peers[i].suspicions, 0);
        assert_int_equal(d.peers[i].false_suspicions, 0);
    }
    assert_int_equal(detector_tick(&d, START_MS), 0);
}

static void silent_peer_is_suspected_after_its_timeout(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    /* Exactly the timeout of silence is still within it. */
    assert_int_equal(detector_tick(&d, START_MS + BASE_MS), 0);
    assert_false(detector_suspects(&d, 1));
    assert_int_equal(detector_tick(&d, START_MS + BASE_MS + 1), 2);
    assert_true(detector_suspects(&d, 1));
    assert_true(detector_suspects(&d, 2));
    assert_int_equal(d.peers[1].suspicions, 1);
}

static void peer_heard_within_timeout_is_not_suspected(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = START_MS;
    uint32_t suspected_count = 0;
    for (int i = 0; i < 50; i++) {
        now_ms += BASE_MS / 2;
        assert_false(detector_heard(&d, 1, now_ms));
        suspected_count += detector_tick(&d, now_ms);
    }
    assert_int_equal(suspected_count, 1);
    /* Peer 2 stayed silent and was suspected once; peer 1 never. */
    assert_false(detector_suspects(&d, 1));
    assert_int_equal(d.peers[1].suspicions, 0);
    assert_true(detector_suspects(&d, 2));
    assert_int_equal(d.peers[2].suspicions, 1);
}

static void suspected_peer_is_counted_once_per_suspicion(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    assert_int_equal(detector_tick(&d, START_MS + BASE_MS + 1), 2);
    assert_int_equal(detector_tick(&d, START_MS + 10 * BASE_MS), 0);
    detector_suspect(&d, 1, START_MS + 10 * BASE_MS);
    assert_int_equal(d.peers[1].suspicions, 1);
    assert_int_equal(d.peers[2].suspicions, 1);
}

static void false_suspicion_doubles_the_timeout(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = suspect_falsely(&d, 1, START_MS);
    assert_false(detector_suspects(&d, 1));
    assert_int_equal(d.peers[1].timeout_ms, 2 * BASE_MS);
    assert_int_equal(d.peers[1].false_suspicions, 1);
    assert_int_equal(d.peers[1].healthy_since_ms, now_ms);
    /* The longer timeout is the one tick now applies. */
    assert_int_equal(detector_tick(&d, now_ms + 2 * BASE_MS), 0);
    assert_false(detector_suspects(&d, 1));
    assert_int_equal(detector_tick(&d, now_ms + 2 * BASE_MS + 1), 1);
    assert_true(detector_suspects(&d, 1));
}

static void heard_from_healthy_peer_keeps_its_timeout(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    assert_false(detector_heard(&d, 1, START_MS + 10));
    assert_int_equal(d.peers[1].timeout_ms, BASE_MS);
    assert_int_equal(d.peers[1].false_suspicions, 0);
    assert_int_equal(d.peers[1].heard_ms, START_MS + 10);
}

static void only_hearing_marks_a_peer_heard(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    assert_false(d.peers[1].heard_ever);
    detector_reset(&d, 1, START_MS + 5);
    detector_suspect(&d, 2, START_MS + 5);
    assert_int_equal(detector_tick(&d, START_MS + 8 * BASE_MS), 1);
    assert_false(d.peers[1].heard_ever); /* init and reset are not hearing */
    assert_false(d.peers[2].heard_ever);
    detector_heard(&d, 2, START_MS + 8 * BASE_MS + 1);
    assert_true(d.peers[2].heard_ever);
    assert_false(d.peers[1].heard_ever);
}

static void timeout_never_exceeds_max(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = START_MS;
    uint32_t expected_ms = BASE_MS;
    for (int i = 0; i < 10; i++) {
        now_ms = suspect_falsely(&d, 1, now_ms);
        expected_ms = expected_ms * 2 > MAX_MS ? MAX_MS : expected_ms * 2;
        assert_int_equal(d.peers[1].timeout_ms, expected_ms);
        assert_true(d.peers[1].timeout_ms <= MAX_MS);
    }
    assert_int_equal(d.peers[1].timeout_ms, MAX_MS);
    assert_int_equal(d.peers[1].false_suspicions, 10);
}

static void long_health_shrinks_timeout_back_toward_base(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = START_MS;
    for (int i = 0; i < 3; i++)
        now_ms = suspect_falsely(&d, 1, now_ms);
    assert_int_equal(d.peers[1].timeout_ms, MAX_MS);

    /* Not yet: health must last the whole decay interval. */
    uint64_t stretch_ms = now_ms;
    detector_heard(&d, 1, stretch_ms + DECAY_MS - 1);
    detector_tick(&d, stretch_ms + DECAY_MS - 1);
    assert_int_equal(d.peers[1].timeout_ms, MAX_MS);

    /* Each full stretch takes off a quarter: 800, 600, 450, 337, 252, ...
     * until the base, and the stretch restarts after each step. */
    uint32_t expected_ms = MAX_MS;
    for (int i = 0; i < 20; i++) {
        stretch_ms += DECAY_MS;
        detector_heard(&d, 1, stretch_ms);
        detector_tick(&d, stretch_ms);
        expected_ms -= expected_ms / 4;
        if (expected_ms < BASE_MS)
            expected_ms = BASE_MS;
        assert_int_equal(d.peers[1].timeout_ms, expected_ms);
        assert_int_equal(d.peers[1].healthy_since_ms, stretch_ms);
        assert_false(detector_suspects(&d, 1));
    }
    assert_int_equal(d.peers[1].timeout_ms, BASE_MS);
}

static void timeout_decays_one_step_per_tick_however_late(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = START_MS;
    for (int i = 0; i < 3; i++)
        now_ms = suspect_falsely(&d, 1, now_ms);
    /* Ten decay intervals pass with the peer heard but no tick. */
    now_ms += 10 * DECAY_MS;
    detector_heard(&d, 1, now_ms);
    detector_tick(&d, now_ms);
    assert_int_equal(d.peers[1].timeout_ms, MAX_MS - MAX_MS / 4);
}

static void suspicion_ends_the_healthy_stretch(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = START_MS;
    for (int i = 0; i < 3; i++)
        now_ms = suspect_falsely(&d, 1, now_ms);
    /* Suspected for most of a decay interval, then heard: the timeout
     * doubles (already at max) and the stretch starts over. */
    detector_suspect(&d, 1, now_ms);
    detector_tick(&d, now_ms + DECAY_MS - 1);
    assert_true(detector_heard(&d, 1, now_ms + DECAY_MS - 1));
    detector_tick(&d, now_ms + DECAY_MS + 1);
    assert_int_equal(d.peers[1].timeout_ms, MAX_MS);
}

static void self_is_never_suspected(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    assert_int_equal(detector_tick(&d, START_MS + 100 * MAX_MS), 2);
    assert_false(detector_suspects(&d, 0));
    assert_int_equal(d.peers[0].suspicions, 0);
    /* Nor does self keep the next deadline finite. */
    assert_int_equal(detector_next_deadline_ms(&d, START_MS + 100 * MAX_MS),
                     UINT64_MAX);
}

static void suspect_forces_suspicion_at_once(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    detector_heard(&d, 2, START_MS + 5);
    detector_suspect(&d, 2, START_MS + 5);
    assert_true(detector_suspects(&d, 2));
    assert_false(detector_suspects(&d, 1));
    assert_int_equal(d.peers[2].suspicions, 1);
    /* Already suspected: tick does not count it again. */
    assert_int_equal(detector_tick(&d, START_MS + BASE_MS + 1), 1);
    assert_int_equal(d.peers[2].suspicions, 1);
}

static void reset_clears_suspicion_without_changing_the_timeout(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t now_ms = suspect_falsely(&d, 1, START_MS);
    assert_int_equal(detector_tick(&d, now_ms + 2 * BASE_MS + 1), 1);
    assert_true(detector_suspects(&d, 1));
    detector_reset(&d, 1, now_ms + 2 * BASE_MS + 1);
    assert_false(detector_suspects(&d, 1));
    assert_int_equal(d.peers[1].timeout_ms, 2 * BASE_MS);
    assert_int_equal(d.peers[1].false_suspicions, 1);
    assert_int_equal(d.peers[1].heard_ms, now_ms + 2 * BASE_MS + 1);
    /* Reset is not a false suspicion: hearing now changes nothing. */
    assert_false(detector_heard(&d, 1, now_ms + 2 * BASE_MS + 2));
    assert_int_equal(d.peers[1].timeout_ms, 2 * BASE_MS);
}

static void next_deadline_is_earliest_unsuspected_peer(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    /* Peer 1 heard later than peer 2: peer 2's deadline comes first. (Gaps
     * under BASE_MS / DETECTOR_GAP_FACTOR leave the timeouts at base.) */
    detector_heard(&d, 1, START_MS + 15);
    detector_heard(&d, 1, START_MS + 30);
    assert_int_equal(detector_next_deadline_ms(&d, START_MS + 40),
                     BASE_MS + 1 - 40);
    /* Once peer 2 is suspected, only peer 1's deadline counts. */
    detector_suspect(&d, 2, START_MS + 40);
    assert_int_equal(detector_next_deadline_ms(&d, START_MS + 40),
                     30 + BASE_MS + 1 - 40);
    /* A tick at the reported time suspects the peer, not earlier. */
    uint64_t at_ms =
        START_MS + 40 + detector_next_deadline_ms(&d, START_MS + 40);
    assert_int_equal(detector_tick(&d, at_ms - 1), 0);
    assert_int_equal(detector_tick(&d, at_ms), 1);
    assert_int_equal(detector_next_deadline_ms(&d, at_ms), UINT64_MAX);
}

static void next_deadline_follows_each_peer_timeout(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    /* Peer 1's timeout doubled, so peer 2, heard later, expires first. */
    detector_suspect(&d, 1, START_MS);
    assert_true(detector_heard(&d, 1, START_MS));
    for (uint64_t t = START_MS + 10; t <= START_MS + 50; t += 10)
        detector_heard(&d, 2, t); /* gaps under base / DETECTOR_GAP_FACTOR */
    assert_int_equal(detector_next_deadline_ms(&d, START_MS + 50),
                     50 + BASE_MS + 1 - 50);
    detector_suspect(&d, 2, START_MS + 50);
    assert_int_equal(detector_next_deadline_ms(&d, START_MS + 50),
                     2 * BASE_MS + 1 - 50);
}

/* Messages that came 80 ms apart (a live primary on a saturated machine)
 * make a silence of 4 x 80 ms the threshold, not the base timeout; regular
 * heartbeats keep the base. */
static void timeout_follows_the_gaps_heard(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t t = START_MS;
    for (int i = 0; i < 5; i++) {
        t += 20;
        detector_heard(&d, 1, t);
        detector_heard(&d, 2, t);
    }
    assert_int_equal(detector_timeout_ms(&d, 1), BASE_MS);
    t += 80;
    detector_heard(&d, 1, t);
    assert_int_equal(detector_timeout_ms(&d, 1), DETECTOR_GAP_FACTOR * 80);
    assert_int_equal(detector_timeout_ms(&d, 2), BASE_MS);
    assert_int_equal(detector_tick(&d, t + DETECTOR_GAP_FACTOR * 80),
                     1); /* peer 2 only */
    assert_false(detector_suspects(&d, 1));
    assert_true(detector_suspects(&d, 2));
    assert_int_equal(detector_tick(&d, t + DETECTOR_GAP_FACTOR * 80 + 1), 1);
    assert_true(detector_suspects(&d, 1));
}

/* The longest gap shrinks with the timeout's decay, and never lifts the
 * timeout past its maximum. */
static void gap_threshold_decays_and_is_bounded(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    uint64_t t = START_MS + MAX_MS / DETECTOR_GAP_FACTOR + 50;
    detector_heard(&d, 1, t - 1); /* not suspected: one tick never ran */
    assert_int_equal(detector_timeout_ms(&d, 1), MAX_MS);
    for (uint64_t end = t + 4 * DECAY_MS; t < end; t += 10) {
        detector_heard(&d, 1, t);
        detector_tick(&d, t);
    }
    assert_true(detector_timeout_ms(&d, 1) < MAX_MS);
}

static void next_deadline_already_passed_is_zero(void **state)
{
    (void)state;
    struct detector d;
    detector_make(&d);
    assert_int_equal(detector_next_deadline_ms(&d, START_MS + 5 * BASE_MS), 0);
}

static void single_replica_group_has_no_deadline(void **state)
{
    (void)state;
    struct detector d;
    struct detector_config config = {
        .peer_count = 1,
        .self = 0,
        .timeout_base_ms = BASE_MS,
        .timeout_max_ms = BASE_MS,
        .timeout_decay_ms = DECAY_MS,
    };
    detector_init(&d, &config, START_MS);
    assert_int_equal(detector_tick(&d, START_MS + 10 * BASE_MS), 0);
    assert_false(detector_suspects(&d, 0));
    assert_int_equal(detector_next_deadline_ms(&d, START_MS), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fresh_detector_suspects_nobody),
        cmocka_unit_test(silent_peer_is_suspected_after_its_timeout),
        cmocka_unit_test(peer_heard_within_timeout_is_not_suspected),
        cmocka_unit_test(suspected_peer_is_counted_once_per_suspicion),
        cmocka_unit_test(false_suspicion_doubles_the_timeout),
        cmocka_unit_test(heard_from_healthy_peer_keeps_its_timeout),
        cmocka_unit_test(timeout_never_exceeds_max),
        cmocka_unit_test(long_health_shrinks_timeout_back_toward_base),
        cmocka_unit_test(timeout_decays_one_step_per_tick_however_late),
        cmocka_unit_test(suspicion_ends_the_healthy_stretch),
        cmocka_unit_test(self_is_never_suspected),
        cmocka_unit_test(only_hearing_marks_a_peer_heard),
        cmocka_unit_test(suspect_forces_suspicion_at_once),
        cmocka_unit_test(reset_clears_suspicion_without_changing_the_timeout),
        cmocka_unit_test(next_deadline_is_earliest_unsuspected_peer),
        cmocka_unit_test(next_deadline_follows_each_peer_timeout),
        cmocka_unit_test(timeout_follows_the_gaps_heard),
        cmocka_unit_test(gap_threshold_decays_and_is_bounded),
        cmocka_unit_test(next_deadline_already_passed_is_zero),
        cmocka_unit_test(single_replica_group_has_no_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
