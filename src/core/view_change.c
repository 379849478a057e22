/* view_change — votes, the view change and the start of a new view (VR
 * Revisited §4.2, with durable logs): START-VIEW-CHANGE votes,
 * DO-VIEW-CHANGE with the sender's uncommitted suffix, the new primary's
 * choice of the best log (highest last normal view, then highest op) and
 * START-VIEW.
 *
 * Invariants: (1) a replica sends DO-VIEW-CHANGE for view v only after its
 * metadata durably records view v (it promises to leave older views);
 * (2) only replicas whose logs hold everything they acknowledged
 * (vr_can_vote) take part; (3) a new primary starts its view only with a
 * quorum of DO-VIEW-CHANGEs, its own among them, after adopting the best
 * log; (4) committed ops are never rewritten: a chosen log that
 * contradicts them marks the view change stale; (5) a replica never leads
 * a view it recovered into (it may have led it before a crash). */
#include "core/replica_internal.h"

#include <inttypes.h>
#include <string.h>

static void record_dvc(struct replica *r, uint32_t from, uint64_t lnv,
                       uint64_t op, uint64_t commit, uint64_t base_checksum,
                       const uint8_t *raw, size_t raw_size);

static void clear_votes_upto(struct replica *r, uint64_t view)
{
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (r->votes[i] <= view)
            r->votes[i] = 0;
        r->vote_since_ms[i] = 0;
    }
}

static void reset_primary_state(struct replica *r)
{
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        r->ack_op[i] = 0;
        r->ack_progress_ms[i] = r->now_ms;
        r->ack_heard_ms[i] = r->now_ms;
        r->retransmit_wait_ms[i] = 2u * r->c.heartbeat_ms;
        r->pong_seq[i] = 0;
    }
    r->prepare_flush_ms = 0;
    r->prepare_sent_op = r->log.op;
    r->heartbeat_ms = 0;
}

/* May this replica take part in a view change (enter one, send
 * DO-VIEW-CHANGE, lead one)? Only when its log holds everything it ever
 * acknowledged and it has learned the current view. */
static bool can_vote(const struct replica *r)
{
    if (r->status == STATUS_RECOVERING || !vr_is_voter(r, r->c.self) ||
        r->catching_up)
        return false;
    return !r->damaged || vr_bug(r, BUG_VOTE_BEFORE_RECOVERED);
}

/* May it ask for one (START-VIEW-CHANGE)? A vote is only a wish: safety
 * rests on the DO-VIEW-CHANGEs of whole logs. So a damaged replica that has
 * learned the view from a quorum may vote too, which lets a group move on
 * when it is waiting for a damaged primary, or strands it otherwise. */
static bool can_wish(const struct replica *r)
{
    return vr_is_voter(r, r->c.self) && (can_vote(r) || r->learned);
}

void vr_note_why(struct replica *r, enum cohort_view_cause cause, uint32_t by,
                 uint32_t suspect, uint64_t silence_ms)
{
    ASSERT(by == COHORT_REPLICA_NONE || by < r->c.replica_count);
    ASSERT(suspect == COHORT_REPLICA_NONE || suspect < r->c.replica_count);
    r->why_arrival = false;
    r->why = (struct cohort_view_why){
        .cause = cause,
        .from_view = r->view,
        .by = by,
        .suspect = suspect,
        .silence_ms =
            silence_ms < UINT32_MAX ? (uint32_t)silence_ms : UINT32_MAX,
    };
}

/* Has this replica noted why it leaves its current view? (A note of the
 * view that says how it arrived there does not count.) */
bool vr_why_noted(const struct replica *r)
{
    return r->why.from_view == r->view && !r->why_arrival;
}

/* Whether this replica's vote or DO-VIEW-CHANGE for `view` says that it
 * left its view because that view's primary resigned to `view`'s primary. */
static uint8_t resigned_flag(const struct replica *r, uint64_t view)
{
    return r->why.cause == COHORT_VIEW_CAUSE_TRANSFER &&
                   r->why.by != r->c.self && r->why.from_view < view &&
                   r->why.suspect == vr_primary_of(r, view)
               ? MSG_FLAG_RESIGNED
               : 0;
}

/* A NORMAL backup hears that a replica left this view because its primary
 * resigned (MSG_FLAG_RESIGNED on a vote or DO-VIEW-CHANGE for a view this
 * primary does not lead): unless it noted a cause of its own, that is why
 * it leaves too, however it comes to (the vote, the DO-VIEW-CHANGE, or the
 * new primary's START-VIEW), and even if the primary's own START-VIEW-CHANGE
 * reaches it last or never. */
static void note_resigned(struct replica *r, const struct message *m)
{
    uint32_t primary = vr_primary_of(r, r->view);
    if (!(m->flags & MSG_FLAG_RESIGNED) || r->status != STATUS_NORMAL ||
        m->view <= r->view || primary == r->c.self ||
        vr_primary_of(r, m->view) == primary || vr_why_noted(r))
        return;
    if (m->type == MSG_DO_VIEW_CHANGE && m->last_normal_view != r->view)
        return; /* the sender left another view than ours */
    vr_note_why(r, COHORT_VIEW_CAUSE_TRANSFER, primary,
                vr_primary_of(r, m->view), 0);
}

/* Who asked first for a view at or above `view`: the replica whose vote
 * above our view we have had the longest (ties: the lowest index). */
static uint32_t first_voter(const struct replica *r, uint64_t view)
{
    uint32_t first = COHORT_REPLICA_NONE;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self || !vr_is_voter(r, i) || r->votes[i] < view ||
            r->vote_since_ms[i] == 0)
            continue;
        if (first == COHORT_REPLICA_NONE ||
            r->vote_since_ms[i] < r->vote_since_ms[first])
            first = i;
    }
    return first;
}

/* Join view `view` as a backup whose log is not yet known to match the
 * primary's beyond the commit number. */
void vr_become_backup(struct replica *r, uint64_t view)
{
    ASSERT(view >= r->view);
    ASSERT(vr_primary_of(r, view) != r->c.self);
    bool changed = view != r->view || r->status != STATUS_NORMAL;
    if (view > r->view && r->status == STATUS_NORMAL && !vr_why_noted(r))
        vr_note_why(r, COHORT_VIEW_CAUSE_LEARNED, vr_primary_of(r, view),
                    COHORT_REPLICA_NONE, 0); /* it missed the view change */
    if (changed) {
        r->view_op = VIEW_OP_UNKNOWN; /* learned from the primary's messages */
        r->primary_op = 0;
    }
    r->view = view;
    r->status = STATUS_NORMAL;
    r->op_verified = r->commit;
    r->state_request_ms = 0;
    r->vc_attempts = 0;
    r->acked_op = 0;
    clear_votes_upto(r, view);
    detector_reset(&r->detector, vr_primary_of(r, view), r->now_ms);
    if (changed) {
        vr_persist_meta(r);
        vr_report_view(r);
        vr_trace(r, "backup of view %" PRIu64, view);
    }
}

void vr_vote(struct replica *r, uint64_t view)
{
    if (!can_wish(r))
        return;
    /* Join the highest view others are voting for: votes are wishes, and
     * agreeing on one view gets a quorum sooner. */
    uint64_t ttl = 8u * r->c.view_change_timeout_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && vr_is_voter(r, i) && r->votes[i] > view &&
            r->now_ms - r->vote_ms[i] <= ttl)
            view = r->votes[i];
    if (r->votes[r->c.self] < view)
        r->votes[r->c.self] = view;
    r->vote_ms[r->c.self] = r->now_ms;
    r->vote_sent_ms = r->now_ms;
    struct message m = {.type = MSG_START_VIEW_CHANGE,
                        .flags = resigned_flag(r, r->votes[r->c.self]),
                        .view = r->votes[r->c.self]};
    vr_broadcast(r, &m, NULL);
}

/* Enter the view change for `view` (VR Revisited §4.2 step 2). */
void vr_enter_view_change(struct replica *r, uint64_t view)
{
    ASSERT(view > r->view || (view == r->view && r->status != STATUS_NORMAL));
    ASSERT(can_vote(r));
    if (!vr_why_noted(r)) /* it did not ask for this itself */
        vr_note_why(r, COHORT_VIEW_CAUSE_VOTES, first_voter(r, view),
                    COHORT_REPLICA_NONE, 0);
    r->view = view;
    r->status = STATUS_VIEW_CHANGE;
    r->vc_started_ms = r->now_ms;
    r->dvc_sent = false;
    r->view_op = 0;
    r->op_verified = r->commit;
    r->best_from = UINT32_MAX;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        r->dvc[i].have = false;
    vr_persist_meta(r);
    vr_report_view(r);
    vr_trace(r, "view change to %" PRIu64, view);
    vr_vote(r, view);
    vr_try_send_dvc(r);
}

/* Count votes: enter the view change for the highest view that a quorum
 * has voted for, if it is above ours. A vote from a replica that still hears
 * the primary never happens, so a returning replica alone cannot force a
 * healthy group into a view change. */
void vr_check_votes(struct replica *r)
{
    if (!can_vote(r) || vr_meta_backlogged(r))
        return;
    uint64_t ttl = 8u * r->c.view_change_timeout_ms;
    uint64_t views[COHORT_REPLICAS_MAX];
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->cfg.voter_count; k++) {
        uint32_t i = r->cfg.voters[k];
        if (r->votes[i] && r->now_ms - r->vote_ms[i] <= ttl)
            views[n++] = r->votes[i];
    }
    if (n < vr_quorum(r))
        return;
    uint64_t target = vr_kth_largest(views, n, vr_quorum(r));
    if (target > r->view)
        vr_enter_view_change(r, target);
}

void vr_try_send_dvc(struct replica *r)
{
    if (r->status != STATUS_VIEW_CHANGE || !can_vote(r))
        return;
    if (!vr_meta_durable_for_view(r))
        return; /* DVC promises we left older views: durable first */
    uint32_t primary = vr_primary_of(r, r->view);
    if (primary == r->c.self && r->view == r->lead_forbidden_view)
        return; /* we may have led this view before a crash: let it pass */
    if (primary == r->c.self) {
        if (!r->dvc[r->c.self].have)
            record_dvc(r, r->c.self, r->last_normal_view, r->log.op, r->commit,
                       vr_checksum_at(r, r->commit), NULL, 0);
        r->dvc_sent = true;
        return;
    }
    uint32_t n = vr_gather(r, r->commit, r->log.op);
    if (r->commit + n != r->log.op) {
        /* The pipeline bounds keep a correct primary's uncommitted suffix,
         * and so ours, within one message (invariant 6); entries beyond it
         * came from forged PREPAREs, and none of them can have been
         * committed with our acknowledgement. Keep what fits. */
        vr_invalid(r, "uncommitted suffix beyond one DO-VIEW-CHANGE");
        vr_truncate_log(r, r->commit + n);
    }
    struct message m = {
        .type = MSG_DO_VIEW_CHANGE,
        .flags = resigned_flag(r, r->view),
        .view = r->view,
        .last_normal_view = r->last_normal_view,
        .op = r->log.op,
        .commit = r->commit,
        .base_op = r->commit,
        .checksum = vr_checksum_at(r, r->commit),
        .entry_count = n,
    };
    vr_send_to(r, primary, &m, r->scratch);
    r->dvc_sent = true;
    r->dvc_sent_ms = r->now_ms;
}

static bool dvc_better(const struct replica *r, uint64_t lnv, uint64_t op)
{
    if (r->best_from == UINT32_MAX)
        return true;
    if (vr_bug(r, BUG_ADOPT_ANY_LOG))
        return false; /* keeps the first log it saw */
    const struct dvc_info *b = &r->dvc[r->best_from];
    return lnv > b->lnv || (lnv == b->lnv && op > b->op);
}

/* Record a DO-VIEW-CHANGE (ours has raw == NULL) and keep the best log:
 * highest last normal view, then highest op (VR Revisited §4.2 step 3). */
static void record_dvc(struct replica *r, uint32_t from, uint64_t lnv,
                       uint64_t op, uint64_t commit, uint64_t base_checksum,
                       const uint8_t *raw, size_t raw_size)
{
    /* Within one view change a sender's (lnv, op) never goes back: an
     * older pair is a reordered or duplicated message, and is dropped. */
    const struct dvc_info *prev = &r->dvc[from];
    if (prev->have && (lnv < prev->lnv || (lnv == prev->lnv && op < prev->op)))
        return;
    /* Judged before dvc[from] changes: the best sender's newer DVC must
     * replace the kept one (dvc_better would compare it with itself, and
     * best_buf would keep the old log under the new op and commit). */
    bool better = from == r->best_from || dvc_better(r, lnv, op);
    r->dvc[from] = (struct dvc_info){
        .have = true,
        .lnv = lnv,
        .op = op,
        .commit = commit,
    };
    if (!better)
        return;
    r->best_from = from;
    r->best_base_checksum = base_checksum;
    if (from != r->c.self) {
        ASSERT(raw);
        ASSERT(raw_size <= r->c.message_size_max);
        memcpy(r->best_buf, raw, raw_size);
        r->best_size = raw_size;
    }
}

enum adopt_result {
    ADOPT_DONE,  /* our log is the chosen log */
    ADOPT_FETCH, /* committed entries are missing: fetch them first */
    ADOPT_STALE, /* the chosen log contradicts what we know is committed:
                    this view change is stale; let it time out */
};

/* Make our log equal to the best DVC's log, if our log reaches its base. */
static enum adopt_result adopt_best_log(struct replica *r)
{
    if (r->best_from == r->c.self)
        return ADOPT_DONE;
    struct message m;
    bool ok = message_decode(r->best_buf, r->best_size, r->c.replica_count, &m);
    ASSERT(ok);
    uint64_t ours;
    if (!log_checksum(&r->log, m.base_op, &ours))
        return m.base_op < r->log.base ? ADOPT_STALE : ADOPT_FETCH;
    if (ours != r->best_base_checksum)
        return m.base_op <= r->commit ? ADOPT_STALE : ADOPT_FETCH;
    if (m.op < r->commit)
        return ADOPT_STALE;
    size_t offset = 0;
    struct entry e;
    while (message_entry_next(&m, &offset, &e)) {
        uint64_t have;
        if (log_checksum(&r->log, e.h.op, &have) && have == e.h.checksum)
            continue;
        if (e.h.op <= r->commit)
            return ADOPT_STALE; /* would rewrite a committed op */
        vr_truncate_log(r, e.h.op - 1);
        if (!log_append(&r->log, &e))
            return ADOPT_FETCH; /* no room: retried on the next tick */
        vr_log_changed_from(r, e.h.op);
    }
    vr_truncate_log(r, m.op);
    ASSERT(r->log.op == m.op);
    return ADOPT_DONE;
}

static void send_start_view(struct replica *r, uint32_t to)
{
    /* Send what fits after the lowest commit among the DVCs we heard; a
     * backup that cannot attach it asks for state. */
    uint64_t base = r->commit;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (r->dvc[i].have && r->dvc[i].commit < base &&
            r->dvc[i].commit >= r->log.base)
            base = r->dvc[i].commit;
    uint32_t n = vr_gather(r, base, r->log.op);
    struct message m = {
        .type = MSG_START_VIEW,
        .view = r->view,
        .op = r->log.op,
        .commit = r->commit,
        .view_op = r->view_op,
        .base_op = base,
        .checksum = vr_checksum_at(r, base),
        .entry_count = n,
    };
    if (base + n < r->log.op) {
        /* Too much to send: send none; backups fetch with GET-STATE. */
        m.base_op = r->log.op;
        m.checksum = vr_checksum_at(r, r->log.op);
        m.entry_count = 0;
    }
    if (to == UINT32_MAX)
        vr_broadcast(r, &m, r->scratch);
    else
        vr_send_to(r, to, &m, r->scratch);
}

void vr_start_view(struct replica *r)
{
    ASSERT(r->status == STATUS_VIEW_CHANGE);
    ASSERT(vr_primary_of(r, r->view) == r->c.self);
    r->status = STATUS_NORMAL;
    r->last_normal_view = r->view; /* in memory; durable via maybe_raise_lnv */
    r->view_op = r->log.op;
    r->op_verified = r->log.op;
    r->vc_attempts = 0;
    r->clock_base_ms = r->now_ms;
    r->clock_base_ts = log_last_timestamp(&r->log);
    reset_primary_state(r);
    clear_votes_upto(r, r->view);
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        detector_reset(&r->detector, i, r->now_ms);
    r->stats.view_changes++;
    vr_report_view(r);
    vr_trace(r, "start view %" PRIu64 " as primary (op %" PRIu64 ")", r->view,
             r->log.op);
    send_start_view(r, UINT32_MAX);
    /* The durable lnv follows once the adopted log is on disk; our own copy
     * counts toward commits only then (invariant 4). */
    vr_maybe_raise_lnv(r);
}

static void fetch_committed_from(struct replica *r, uint32_t from)
{
    if (r->state_request_ms &&
        r->now_ms - r->state_request_ms < r->c.heartbeat_ms * 2u)
        return;
    r->state_request_ms = r->now_ms;
    r->state_asked = from;
    struct message m = {
        .type = MSG_GET_STATE,
        .view = r->view,
        .commit = r->commit,
        .base_op = r->commit,
        .checksum = vr_checksum_at(r, r->commit),
    };
    vr_send_to(r, from, &m, NULL);
}

static uint32_t dvc_count(const struct replica *r)
{
    uint32_t count = 0;
    for (uint32_t k = 0; k < r->cfg.voter_count; k++)
        count += r->dvc[r->cfg.voters[k]].have;
    return count;
}

/* After adopting the chosen log: a DO-VIEW-CHANGE whose commit lies beyond
 * that log contradicts it (the chosen log holds every committed op), which
 * no correct replica sends; it is forgotten (counted as invalid) and the
 * view waits for a quorum of consistent ones. Ours and the chosen one never
 * are (adopt_best_log() refuses a log below our commit). */
static void forget_contradicting_dvcs(struct replica *r)
{
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (!r->dvc[i].have || r->dvc[i].commit <= r->log.op)
            continue;
        ASSERT(i != r->c.self);
        ASSERT(i != r->best_from);
        r->dvc[i].have = false;
        vr_invalid(r, "DO-VIEW-CHANGE commit beyond the chosen log");
    }
}

/* With a quorum of DVCs (ours among them), adopt the best log and start the
 * view (VR Revisited §4.2 steps 3-5). */
void vr_check_dvc_quorum(struct replica *r)
{
    if (r->status != STATUS_VIEW_CHANGE ||
        vr_primary_of(r, r->view) != r->c.self)
        return;
    if (!r->dvc[r->c.self].have || dvc_count(r) < vr_quorum(r))
        return;
    enum adopt_result adopted = adopt_best_log(r);
    if (adopted == ADOPT_FETCH)
        fetch_committed_from(r, r->best_from);
    if (adopted != ADOPT_DONE)
        return;
    forget_contradicting_dvcs(r);
    if (dvc_count(r) < vr_quorum(r))
        return;
    uint64_t commit = r->commit;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (r->dvc[i].have && r->dvc[i].commit > commit)
            commit = r->dvc[i].commit;
    ASSERT(commit <= r->log.op);
    if (r->log.op - commit > r->c.pipeline_ops_max) {
        /* A correct primary never let its uncommitted suffix grow past
         * the pipeline, so the chosen log is not one (or its senders'
         * commits are): leave this view change to time out. */
        vr_invalid(r, "DO-VIEW-CHANGE log beyond the pipeline");
        return;
    }
    r->op_verified = r->log.op;
    vr_commit_to(r, commit);
    vr_start_view(r);
}

void vr_on_start_view_change(struct replica *r, const struct message *m)
{
    if (!vr_is_voter(r, m->from)) {
        vr_invalid(r, "START-VIEW-CHANGE from a learner");
        return;
    }
    if (m->view > r->votes[m->from])
        r->votes[m->from] = m->view;
    r->vote_ms[m->from] = r->now_ms;
    if (m->view > r->view && r->vote_since_ms[m->from] == 0)
        r->vote_since_ms[m->from] = r->now_ms;
    note_resigned(r, m);
    /* The primary of our view asks for a view it does not lead: it
     * resigns (a leadership transfer, or it lost its quorum). Join at once
     * rather than wait to suspect it; entering a higher view is always
     * safe, and the new primary still needs a quorum of DO-VIEW-CHANGEs. */
    if (r->status == STATUS_NORMAL && m->view > r->view &&
        m->from == vr_primary_of(r, r->view) &&
        vr_primary_of(r, m->view) != m->from) {
        /* Noted even if we cannot join yet (still catching up after a
         * restart, metadata not durable): the view change that follows is
         * the primary's doing, not what an older note of this view says
         * (a restart's recovery was reported for a transfer's target). */
        vr_note_why(r, COHORT_VIEW_CAUSE_TRANSFER, m->from,
                    vr_primary_of(r, m->view), 0);
        if (can_vote(r) && !vr_meta_backlogged(r))
            vr_enter_view_change(r, m->view);
    }
}

/* A replica left in a higher view by a view change that did not finish
 * keeps voting above us and can never rejoin a lower view (view numbers
 * only grow). Only a view change the group itself began can strand a
 * replica (a lone replica never enters one), so after several timeouts we
 * join its vote rather than leave it out forever. */
void vr_join_stranded_votes(struct replica *r)
{
    uint64_t patience = 4u * r->c.view_change_timeout_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self || !vr_is_voter(r, i) || r->votes[i] <= r->view ||
            r->vote_since_ms[i] == 0)
            continue;
        if (r->now_ms - r->vote_since_ms[i] >= patience &&
            r->now_ms - r->vote_ms[i] <= r->c.view_change_timeout_ms) {
            if (r->votes[r->c.self] <= r->view)
                vr_note_why(r, COHORT_VIEW_CAUSE_VOTES, i, COHORT_REPLICA_NONE,
                            0);
            r->vote_since_ms[i] = r->now_ms;
            vr_vote(r, r->votes[i]);
        }
    }
}

/* New primary: DO-VIEW-CHANGE, VR Revisited §4.2 step 3. */
void vr_on_do_view_change(struct replica *r, const struct message *m,
                          const uint8_t *raw, size_t raw_size)
{
    if (r->status == STATUS_RECOVERING)
        return; /* we learn the view through recovery first */
    if (!vr_is_voter(r, m->from)) {
        vr_invalid(r, "DO-VIEW-CHANGE from a learner");
        return;
    }
    note_resigned(r, m);
    if (m->view > r->view) {
        if (!can_vote(r))
            return;
        vr_enter_view_change(r, m->view);
    }
    if (m->view < r->view)
        return;
    if (replica_is_primary(r)) {
        send_start_view(r, m->from); /* it missed START-VIEW */
        return;
    }
    if (r->status != STATUS_VIEW_CHANGE ||
        vr_primary_of(r, r->view) != r->c.self)
        return;
    record_dvc(r, m->from, m->last_normal_view, m->op, m->commit, m->checksum,
               raw, raw_size);
    vr_check_dvc_quorum(r);
}

/* Backup: START-VIEW, VR Revisited §4.2 step 5. */
void vr_on_start_view(struct replica *r, const struct message *m)
{
    if (m->view < r->view || r->status == STATUS_RECOVERING)
        return;
    if (m->view == r->view && r->status == STATUS_NORMAL &&
        r->op_verified >= m->op)
        return; /* a duplicate */
    if (m->view > r->view || r->status != STATUS_NORMAL)
        vr_become_backup(r, m->view);
    r->view_op = m->view_op;
    if (!vr_attaches(r, m)) {
        vr_request_state(r);
        return;
    }
    uint64_t last = vr_adopt_entries(r, m, UINT64_MAX);
    if (last > r->op_verified)
        r->op_verified = last;
    if (last == m->op)
        vr_truncate_older_views_after(r, m->op);
    vr_commit_to(r, m->commit);
    if (r->op_verified < m->op)
        vr_request_state(r);
}

static uint64_t vc_deadline(struct replica *r)
{
    uint32_t attempts = r->vc_attempts < 4 ? r->vc_attempts : 4;
    return r->vc_started_ms +
           (uint64_t)r->c.view_change_timeout_ms * (1u + attempts);
}

void vr_tick_view_change(struct replica *r)
{
    if (r->now_ms >= vc_deadline(r)) {
        vr_note_why(r, COHORT_VIEW_CAUSE_TIMEOUT, r->c.self,
                    vr_primary_of(r, r->view), r->now_ms - r->vc_started_ms);
        r->vc_attempts++;
        r->vc_started_ms =
            r->now_ms +
            prng_below(&r->prng, r->c.view_change_timeout_ms / 4 + 1);
        vr_vote(r, vr_next_view(r->view));
        return;
    }
    if (r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms / 2)
        vr_vote(r,
                r->votes[r->c.self] > r->view ? r->votes[r->c.self] : r->view);
    if (vr_primary_of(r, r->view) == r->c.self) {
        vr_try_send_dvc(r);
        vr_check_dvc_quorum(r);
    } else if (!r->dvc_sent ||
               r->now_ms - r->dvc_sent_ms >= r->c.view_change_timeout_ms / 2) {
        r->dvc_sent = false;
        vr_try_send_dvc(r);
    }
}
