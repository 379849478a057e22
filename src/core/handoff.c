/* handoff — leadership transfer: the primary hands its role to a caught-up
 * backup without waiting for a failure detector (docs/PROTOCOL.md,
 * "Leadership transfer").
 *
 * Two phases at the primary of view v, asked (EV_TRANSFER) to hand over to
 * target t:
 *  1. drain: it stays the primary but proposes nothing new (new requests
 *     get REPLY_BUSY: certainly not proposed, held by the driver for the
 *     new primary), lets what is in flight commit and be applied (so
 *     answered), and waits until t has
 *     acknowledged every op in its log;
 *     (the resignation happens on the next tick, which the driver precedes
 *     by handing the core its batch: see vr_handoff_progress())
 *  2. resign: it enters the view change to v', the smallest view above v
 *     whose primary is t, as any replica enters one: durable view first,
 *     START-VIEW-CHANGE to all, DO-VIEW-CHANGE to t. Backups that hear
 *     START-VIEW-CHANGE from the primary of their own view join at once
 *     (vr_on_start_view_change); t starts v' with a quorum of
 *     DO-VIEW-CHANGEs by the usual rule.
 * A drain that does not finish within a view-change timeout is abandoned
 * and the primary orders requests again.
 *
 * Invariants: (1) a transfer exists only while this replica is the NORMAL
 * primary of handoff_view (any change of view or status ends it); (2) the
 * resign step is vr_enter_view_change() and nothing else: no log, commit or
 * vote rule differs from a view change a timeout started, so the safety
 * argument of the view change covers transfers unchanged. */
#include "core/replica_internal.h"

#include <inttypes.h>

bool vr_handoff_active(const struct replica *r)
{
    return r->handoff_target != COHORT_REPLICA_NONE &&
           r->handoff_view == r->view && replica_is_primary(r);
}

/* The smallest view above view whose primary is target (vr_primary_of()
 * alone maps views to replicas); VIEW_NONE if none within one round of
 * views, or the view numbers run out first. */
static uint64_t view_led_by(const struct replica *r, uint64_t view,
                            uint32_t target)
{
    for (uint64_t step = 1; step <= r->cfg.voter_count; step++) {
        if (view > VIEW_MAX - step)
            return VIEW_NONE;
        if (vr_primary_of(r, view + step) == target)
            return view + step;
    }
    return VIEW_NONE;
}

/* Whether the primary has reason to think target is down or cut off: its
 * detector suspects it, or no PREPARE-OK came from it for a suspicion
 * timeout (backups acknowledge every heartbeat). */
static bool target_suspected(const struct replica *r, uint32_t target)
{
    return detector_suspects(&r->detector, target) ||
           r->now_ms - r->ack_heard_ms[target] > 2u * r->c.suspect_timeout_ms;
}

static enum transfer_result refusal(const struct replica *r, uint32_t target)
{
    if (!replica_is_primary(r))
        return TRANSFER_NOT_PRIMARY;
    if (target >= r->c.replica_count || !vr_is_voter(r, target))
        return TRANSFER_NO_SUCH_REPLICA; /* only a voter leads a view */
    if (target == r->c.self)
        return TRANSFER_SELF;
    if (r->handoff_target != COHORT_REPLICA_NONE && vr_handoff_active(r))
        return TRANSFER_BUSY;
    if (view_led_by(r, r->view, target) == VIEW_NONE)
        return TRANSFER_NOT_PRIMARY; /* views exhausted: nothing to lead */
    if (target_suspected(r, target))
        return TRANSFER_SUSPECTED;
    /* More than a pipeline behind: it needs state transfer (or is stuck),
     * which may outlast the drain; the operator retries later. */
    if (r->log.op - r->ack_op[target] > r->c.pipeline_ops_max)
        return TRANSFER_LAGGING;
    return TRANSFER_STARTED;
}

void vr_on_transfer(struct replica *r, uint32_t target)
{
    enum transfer_result result = refusal(r, target);
    struct action *a = vr_action_push(r, ACT_TRANSFER);
    a->transfer = (struct transfer_answer){
        .result = result,
        .target = target,
        .primary = r->status == STATUS_NORMAL ? vr_primary_of(r, r->view)
                                              : COHORT_REPLICA_NONE,
        .view = r->view,
        .op = r->log.op,
        .target_op = target < r->c.replica_count && replica_is_primary(r)
                         ? r->ack_op[target]
                         : 0,
    };
    if (result != TRANSFER_STARTED) {
        vr_trace(r, "transfer to %" PRIu32 " refused (%s)", target,
                 transfer_result_name(result));
        return;
    }
    a->transfer.new_view = view_led_by(r, r->view, target);
    r->handoff_target = target;
    r->handoff_view = r->view;
    r->handoff_started_ms = r->now_ms;
    r->stats.transfers_started++;
    vr_trace(r,
             "transfer to %" PRIu32 ": draining at op %" PRIu64
             " (commit %" PRIu64 ", target at %" PRIu64 ")",
             target, r->log.op, r->commit, r->ack_op[target]);
    vr_handoff_progress(r, false);
}

/* Drained: everything proposed is applied (so answered: a request still
 * unanswered when the primary leaves its view is answered UNKNOWN) and the
 * target acknowledged every op. A damaged log cannot vote: it waits. */
bool vr_handoff_ready(const struct replica *r)
{
    if (!vr_handoff_active(r) || r->damaged || vr_meta_backlogged(r))
        return false;
    uint32_t t = r->handoff_target;
    return r->applied == r->log.op && r->ack_op[t] >= r->log.op;
}

/* Called after every event: on a tick, resign once drained; on any event,
 * give up after a view-change timeout. Only a tick resigns: the driver
 * hands the core its batch of requests before each tick, so none is
 * waiting unproposed in the driver when the view changes (those would be
 * answered UNKNOWN with the proposed ones). */
void vr_handoff_progress(struct replica *r, bool tick)
{
    if (r->handoff_target == COHORT_REPLICA_NONE)
        return;
    if (!vr_handoff_active(r)) {
        r->handoff_target = COHORT_REPLICA_NONE; /* the view moved on */
        return;
    }
    uint32_t t = r->handoff_target;
    if (!vr_handoff_ready(r)) {
        if (r->now_ms - r->handoff_started_ms >= r->c.view_change_timeout_ms) {
            vr_trace(r,
                     "transfer to %" PRIu32 " abandoned: target at op %" PRIu64
                     " of %" PRIu64 ", commit %" PRIu64,
                     t, r->ack_op[t], r->log.op, r->commit);
            r->stats.transfers_abandoned++;
            r->handoff_target = COHORT_REPLICA_NONE;
        }
        return;
    }
    if (!tick)
        return; /* replica_next_tick_ms() asks for one at once */
    uint64_t next = view_led_by(r, r->view, t);
    ASSERT(next != VIEW_NONE);
    r->handoff_target = COHORT_REPLICA_NONE;
    vr_note_why(r, COHORT_VIEW_CAUSE_TRANSFER, r->c.self, t,
                r->now_ms - r->handoff_started_ms);
    vr_trace(r, "transfer to %" PRIu32 ": resigning, view %" PRIu64, t, next);
    vr_enter_view_change(r, next);
}

const char *transfer_result_name(enum transfer_result result)
{
    switch (result) {
    case TRANSFER_STARTED:
        return "started";
    case TRANSFER_NOT_PRIMARY:
        return "not_primary";
    case TRANSFER_NO_SUCH_REPLICA:
        return "no_such_replica";
    case TRANSFER_SELF:
        return "self";
    case TRANSFER_BUSY:
        return "busy";
    case TRANSFER_SUSPECTED:
        return "suspected";
    case TRANSFER_LAGGING:
        return "lagging";
    }
    return "?";
}
