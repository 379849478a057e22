/* view_log — a view notification in words. See view_log.h. */
#include "runtime/view_log.h"

#include <inttypes.h>
#include <stdio.h>

#include "common/assert.h"
#include "runtime/logline.h"

/* A role as one word (INFO) or as the log line says it. */
static const char *role_text(enum cohort_role role, bool word)
{
    switch (role) {
    case COHORT_ROLE_PRIMARY:
        return "primary";
    case COHORT_ROLE_BACKUP:
        return "backup";
    case COHORT_ROLE_RECOVERING:
        return "recovering";
    case COHORT_ROLE_VIEW_CHANGE:
        return word ? "changing" : "changing views";
    case COHORT_ROLE_LEARNER:
        return word ? "learner" : "a learner";
    case COHORT_ROLE_OUTSIDE:
        return word ? "outside"
                    : "outside the membership (removed or not yet added)";
    }
    return "?";
}

const char *view_role_token(enum cohort_role role)
{
    return role_text(role, true);
}

static const char *role_name(enum cohort_role role)
{
    return role_text(role, false);
}

static_assert(COHORT_VIEW_CAUSE_REPLACEMENT + 1 == VIEW_CAUSE_COUNT,
              "VIEW_CAUSE_COUNT counts every cause");

const char *view_cause_name(enum cohort_view_cause cause)
{
    switch (cause) {
    case COHORT_VIEW_CAUSE_SUSPECTED:
        return "suspected";
    case COHORT_VIEW_CAUSE_LOST_QUORUM:
        return "lost_quorum";
    case COHORT_VIEW_CAUSE_VOTES:
        return "votes";
    case COHORT_VIEW_CAUSE_TIMEOUT:
        return "timeout";
    case COHORT_VIEW_CAUSE_RECOVERY:
        return "recovery";
    case COHORT_VIEW_CAUSE_LEARNED:
        return "learned";
    case COHORT_VIEW_CAUSE_TRANSFER:
        return "transfer";
    case COHORT_VIEW_CAUSE_EPOCH:
        return "reconfiguration";
    case COHORT_VIEW_CAUSE_REPLACEMENT:
        return "replacement";
    case COHORT_VIEW_CAUSE_UNKNOWN:
        break;
    }
    return "unknown";
}

static void format_why(const struct cohort_view_why *w, char *out, size_t size)
{
    switch (w->cause) {
    case COHORT_VIEW_CAUSE_SUSPECTED:
        snprintf(out, size,
                 "replica %" PRIu32 " suspected replica %" PRIu32
                 ", the primary of view %" PRIu64 ", after %" PRIu32
                 " ms of silence (%s %" PRIu32 " ms)",
                 w->by, w->suspect, w->from_view, w->silence_ms,
                 w->silence_ms > w->timeout_ms
                     ? "timeout"
                     : "its peer port refused connections; timeout",
                 w->timeout_ms);
        return;
    case COHORT_VIEW_CAUSE_LOST_QUORUM:
        snprintf(out, size,
                 "replica %" PRIu32 ", the primary of view %" PRIu64
                 ", heard from too few backups for %" PRIu32 " ms",
                 w->by, w->from_view, w->silence_ms);
        return;
    case COHORT_VIEW_CAUSE_VOTES:
        if (w->by == COHORT_REPLICA_NONE)
            snprintf(out, size,
                     "a quorum asked to leave view %" PRIu64
                     "; this replica had not suspected anyone",
                     w->from_view);
        else
            snprintf(out, size,
                     "a quorum asked to leave view %" PRIu64
                     ", replica %" PRIu32 " first; this replica had not "
                     "suspected anyone",
                     w->from_view, w->by);
        return;
    case COHORT_VIEW_CAUSE_TIMEOUT:
        snprintf(out, size,
                 "the view change to view %" PRIu64
                 " did not finish within %" PRIu32
                 " ms (its primary would be replica %" PRIu32 ")",
                 w->from_view, w->silence_ms, w->suspect);
        return;
    case COHORT_VIEW_CAUSE_RECOVERY:
        snprintf(out, size,
                 "replica %" PRIu32 " (re)started and recovered the view "
                 "from a quorum",
                 w->by);
        return;
    case COHORT_VIEW_CAUSE_LEARNED:
        snprintf(out, size,
                 "replica %" PRIu32 ", its primary, told this replica of it "
                 "(this replica missed the view change from view %" PRIu64 ")",
                 w->by, w->from_view);
        return;
    case COHORT_VIEW_CAUSE_TRANSFER:
        snprintf(out, size,
                 "replica %" PRIu32 ", the primary of view %" PRIu64
                 ", handed over to replica %" PRIu32 " (leadership transfer)",
                 w->by, w->from_view, w->suspect);
        return;
    case COHORT_VIEW_CAUSE_EPOCH:
        snprintf(out, size,
                 "a membership change committed after view %" PRIu64
                 " of the epoch before; replica %" PRIu32 " leads the new "
                 "epoch's first view",
                 w->from_view, w->by);
        return;
    case COHORT_VIEW_CAUSE_REPLACEMENT:
        snprintf(out, size,
                 "voter %" PRIu32 " was replaced by a caught-up learner "
                 "after view %" PRIu64 " of the epoch before; replica %" PRIu32
                 " leads the new epoch's first view",
                 w->suspect, w->from_view, w->by);
        return;
    case COHORT_VIEW_CAUSE_UNKNOWN:
        break;
    }
    snprintf(out, size, "not known");
}

const char *view_log_format(const struct cohort_view_info *v, char *out,
                            size_t size)
{
    ASSERT(v->self < COHORT_REPLICAS_MAX);
    char why[256];
    format_why(&v->why, why, sizeof(why));
    enum cohort_role role = v->roles[v->self];
    char at[64];
    /* Epoch 0 (a group never reconfigured) keeps the short form. */
    if (v->epoch)
        snprintf(at, sizeof(at), "epoch %" PRIu64 ", view %" PRIu64, v->epoch,
                 v->view);
    else
        snprintf(at, sizeof(at), "view %" PRIu64, v->view);
    if (role == COHORT_ROLE_PRIMARY || role == COHORT_ROLE_BACKUP ||
        role == COHORT_ROLE_LEARNER)
        snprintf(out, size,
                 "%s: primary is replica %" PRIu32 "; this replica is %s; "
                 "why: %s",
                 at, v->primary, role_name(role), why);
    else
        snprintf(out, size,
                 "%s: this replica is %s (the primary would be replica "
                 "%" PRIu32 "); why: %s",
                 at, role_name(role), v->primary, why);
    return out;
}

void view_log(const struct cohort_view_info *v)
{
    char line[512];
    logline(LOGLINE_INFO, "%s", view_log_format(v, line, sizeof(line)));
}
