/* recovery — a restarted replica learns the current view (VR Revisited
 * §4.3, with durable logs): RECOVERY to every peer with a fresh nonce,
 * RECOVERY-RESPONSE from each, and the decision once a quorum answered.
 *
 * Invariants: (1) a recovering replica neither votes nor acknowledges until
 * a quorum answered its current nonce; (2) a damaged replica (its log lost
 * records it may have acknowledged) waits for a normal primary to repair
 * it, unless a quorum never stored anything; (3) a replica never leads the
 * view it recovered into. */
#include "core/replica_internal.h"

#include <inttypes.h>

void vr_send_recovery(struct replica *r)
{
    r->recovery_sent_ms = r->now_ms;
    struct message m = {
        .type = MSG_RECOVERY, .view = r->view, .nonce = r->nonce};
    if (r->c.spare && !r->spare_retired && !vr_is_member(r, r->c.self))
        m.flags = MSG_FLAG_SPARE; /* add me (epoch.c, vr_on_spare()) */
    size_t size;
    const uint8_t *data = vr_encode(r, &m, NULL, &size);
    if (!data)
        return;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && vr_is_member(r, i) && !r->rr[i].have)
            vr_send_bytes(r, i, data, size);
}

/* Start a new round of recovery: a fresh nonce makes older answers
 * worthless, so what we learn describes the group as it is now. */
void vr_recovery_round(struct replica *r)
{
    r->nonce = prng_next(&r->prng);
    r->recovery_started_ms = r->now_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        r->rr[i].have = false;
    vr_send_recovery(r);
}

/* Any replica: RECOVERY (VR Revisited §4.3 step 2). Recovering replicas
 * answer too, with their durable state, so a group that restarts all at
 * once can recover. */
void vr_on_recovery(struct replica *r, const struct message *m)
{
    uint8_t flags = 0;
    if (!r->damaged)
        flags |= MSG_FLAG_INTACT;
    if (r->fresh)
        flags |= MSG_FLAG_FRESH;
    struct message reply_m = {
        .type = MSG_RECOVERY_RESPONSE,
        .view = r->view,
        .status = (uint8_t)r->status,
        .flags = flags,
        .last_normal_view = r->last_normal_view,
        .op = r->log.op,
        .commit = r->commit,
        .nonce = m->nonce,
    };
    vr_send_to(r, m->from, &reply_m, NULL);
    /* Our primary restarted: it is not acting as primary any more. */
    if (r->status == STATUS_NORMAL && m->from == vr_primary_of(r, r->view) &&
        m->from != r->c.self)
        detector_suspect(&r->detector, m->from, r->now_ms);
}

void vr_on_recovery_response(struct replica *r, const struct message *m)
{
    if (r->status != STATUS_RECOVERING || m->nonce != r->nonce)
        return;
    r->rr[m->from] = (struct rr_info){
        .have = true,
        .view = m->view,
        .lnv = m->last_normal_view,
        .status = m->status,
        .flags = m->flags,
        .op = m->op,
        .commit = m->commit,
    };
}

/* With answers from a quorum (us included), we know the latest view any
 * quorum has reached. Join it behind its primary if that primary is normal;
 * otherwise, if our log is whole, take part in the view change. */
void vr_check_recovery(struct replica *r)
{
    if (r->status != STATUS_RECOVERING || !vr_is_member(r, r->c.self))
        return; /* outside the membership: it waits for a later epoch */
    uint32_t count = vr_is_voter(r, r->c.self) ? 1 : 0;
    uint64_t view = r->view;
    bool all_fresh = r->fresh;
    for (uint32_t k = 0; k < r->cfg.voter_count; k++) {
        uint32_t i = r->cfg.voters[k];
        if (i == r->c.self || !r->rr[i].have)
            continue;
        count++;
        if (r->rr[i].view > view)
            view = r->rr[i].view;
        if (!(r->rr[i].flags & MSG_FLAG_FRESH) || r->rr[i].op != 0)
            all_fresh = false;
    }
    if (count < vr_quorum(r))
        return;
    r->learned = true;
    uint32_t primary = vr_primary_of(r, view);
    const struct rr_info *p = &r->rr[primary];
    if (primary != r->c.self && p->have && p->status == STATUS_NORMAL &&
        p->view == view) {
        vr_trace(r, "recovered: view %" PRIu64 " primary %u", view, primary);
        vr_note_why(r, COHORT_VIEW_CAUSE_RECOVERY, r->c.self,
                    COHORT_REPLICA_NONE, 0);
        r->view_op = VIEW_OP_UNKNOWN;
        r->recovered_view = view;
        vr_become_backup(r, view);
        /* The note told how it arrived; from_view may be this very view
         * (it restarted in it), and leaving it later has its own cause. */
        r->why_arrival = true;
        vr_note_primary_op(r, p->op); /* its op after our restart */
        vr_request_state(r);
        return;
    }
    if (r->now_ms - r->recovery_started_ms < 2u * r->c.recovery_retry_ms)
        return; /* give the primary time to answer */
    if (all_fresh) {
        r->damaged = false; /* a quorum never stored anything: nothing lost */
    }
    if (!vr_is_voter(r, r->c.self))
        return; /* a learner votes for nothing: it waits for a primary */
    if ((r->damaged || r->catching_up) &&
        !vr_bug(r, BUG_VOTE_BEFORE_RECOVERED)) {
        /* Wait for a normal primary to repair us, and ask for a view that
         * will have one. */
        if (r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms)
            vr_vote(r, vr_next_view(view));
        return;
    }
    /* Wait in `view` (a live primary of it pulls us back in with its next
     * message) and vote for the next one. We never lead `view` itself: if
     * we were its primary we may have started it before the crash, and a
     * view must never start twice with different logs. */
    vr_trace(r, "recovered: no normal primary for view %" PRIu64, view);
    vr_note_why(r, COHORT_VIEW_CAUSE_RECOVERY, r->c.self, COHORT_REPLICA_NONE,
                0);
    r->status = STATUS_VIEW_CHANGE;
    r->lead_forbidden_view = view;
    r->recovered_view = view;
    vr_enter_view_change(r, view);
    vr_vote(r, vr_next_view(view));
}
