/* runtime/view_log: a view notification in words, with its cause. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/view_log.h"

static struct cohort_view_info view(uint32_t self, enum cohort_role role)
{
    struct cohort_view_info v;
    memset(&v, 0, sizeof(v));
    v.view = 7;
    v.primary = 2;
    v.self = self;
    v.replica_count = 3;
    v.roles[self] = role;
    v.why.from_view = 6;
    v.why.by = COHORT_REPLICA_NONE;
    v.why.suspect = COHORT_REPLICA_NONE;
    return v;
}

static void suspicion_names_who_whom_and_how_long(void **state)
{
    (void)state;
    char out[512];
    struct cohort_view_info v = view(0, COHORT_ROLE_BACKUP);
    v.why.cause = COHORT_VIEW_CAUSE_SUSPECTED;
    v.why.by = 0;
    v.why.suspect = 1;
    v.why.silence_ms = 161;
    v.why.timeout_ms = 150;
    assert_string_equal(
        view_log_format(&v, out, sizeof(out)),
        "view 7: primary is replica 2; this replica is backup; why: replica "
        "0 suspected replica 1, the primary of view 6, after 161 ms of "
        "silence (timeout 150 ms)");
    v.why.silence_ms = 20;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "after 20 ms of silence (its peer port refused "
                           "connections; timeout 150 ms)"));
}

static void every_cause_has_words(void **state)
{
    (void)state;
    char out[512];
    struct cohort_view_info v = view(1, COHORT_ROLE_VIEW_CHANGE);
    v.why.cause = COHORT_VIEW_CAUSE_VOTES;
    v.why.by = 2;
    assert_string_equal(view_log_format(&v, out, sizeof(out)),
                        "view 7: this replica is changing views (the primary "
                        "would be replica 2); why: a quorum asked to leave "
                        "view 6, replica 2 first; this replica had not "
                        "suspected anyone");
    v.why.cause = COHORT_VIEW_CAUSE_TIMEOUT;
    v.why.suspect = 0;
    v.why.silence_ms = 600;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "why: the view change to view 6 did not finish "
                           "within 600 ms (its primary would be replica 0)"));
    v.why.cause = COHORT_VIEW_CAUSE_LOST_QUORUM;
    v.why.by = 1;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "why: replica 1, the primary of view 6, heard from "
                           "too few backups for 600 ms"));
    v.why.cause = COHORT_VIEW_CAUSE_RECOVERY;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "why: replica 1 (re)started and recovered"));
    v.why.cause = COHORT_VIEW_CAUSE_LEARNED;
    v.why.by = 2;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "why: replica 2, its primary, told this replica "
                           "of it (this replica missed the view change from "
                           "view 6)"));
    v.why.cause = COHORT_VIEW_CAUSE_TRANSFER;
    v.why.by = 0;
    v.why.suspect = 2;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "why: replica 0, the primary of view 6, handed "
                           "over to replica 2 (leadership transfer)"));
    v.why.cause = COHORT_VIEW_CAUSE_EPOCH;
    v.why.by = 3;
    assert_non_null(strstr(view_log_format(&v, out, sizeof(out)),
                           "why: a membership change committed after view 6 "
                           "of the epoch before; replica 3 leads the new "
                           "epoch's first view"));
    v.why.cause = COHORT_VIEW_CAUSE_UNKNOWN;
    assert_non_null(
        strstr(view_log_format(&v, out, sizeof(out)), "why: not known"));
}

/* A reconfigured group's lines name the epoch; a member outside the
 * membership, and a learner, say so. */
static void epochs_and_membership_roles(void **state)
{
    (void)state;
    struct cohort_view_info v;
    memset(&v, 0, sizeof(v));
    v.epoch = 2;
    v.view = 0;
    v.primary = 1;
    v.self = 3;
    v.replica_count = 5;
    v.roles[3] = COHORT_ROLE_OUTSIDE;
    v.why.cause = COHORT_VIEW_CAUSE_EPOCH;
    v.why.by = 1;
    char out[512];
    const char *t = view_log_format(&v, out, sizeof(out));
    assert_non_null(strstr(t, "epoch 2, view 0: this replica is outside the "
                              "membership (removed or not yet added)"));
    v.roles[3] = COHORT_ROLE_LEARNER;
    t = view_log_format(&v, out, sizeof(out));
    assert_non_null(strstr(t, "epoch 2, view 0: primary is replica 1; this "
                              "replica is a learner; why: a membership"));
    v.epoch = 0;
    t = view_log_format(&v, out, sizeof(out));
    assert_true(strncmp(t, "view 0: ", 8) == 0);
    assert_string_equal(view_cause_name(COHORT_VIEW_CAUSE_EPOCH),
                        "reconfiguration");
    v.why.cause = COHORT_VIEW_CAUSE_REPLACEMENT;
    v.why.suspect = 2;
    v.why.from_view = 4;
    t = view_log_format(&v, out, sizeof(out));
    assert_non_null(strstr(t, "why: voter 2 was replaced by a caught-up "
                              "learner after view 4 of the epoch before; "
                              "replica 1 leads the new epoch's first view"));
    assert_string_equal(view_cause_name(COHORT_VIEW_CAUSE_REPLACEMENT),
                        "replacement");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(suspicion_names_who_whom_and_how_long),
        cmocka_unit_test(every_cause_has_words),
        cmocka_unit_test(epochs_and_membership_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
