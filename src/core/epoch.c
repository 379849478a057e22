/* epoch — membership changes: VR's epoch change with a wedge
 * (docs/PROTOCOL.md, "Epochs").
 *
 * A change is a RECONFIG log entry carrying the next epoch's membership.
 * The primary that appends it appends nothing after it (the wedge): new
 * requests get REPLY_BUSY (the driver holds them for the next epoch's
 * primary), and since a view change keeps every entry that may have
 * committed, every later primary of the epoch finds the wedge last in its
 * log too. When the entry (op E) commits, every replica that
 * applies it moves to epoch e+1 at the end of that step: view (e+1, 0),
 * primary voters_{e+1}[0], view_op = E, log through E. The primary that
 * committed it sends START_EPOCH to the members of e+1 until a quorum of
 * them answered EPOCH_STARTED; any message of an older epoch is answered
 * with NEW_EPOCH (the same content) instead of being processed.
 *
 * Invariants: (1) a replica moves to epoch e+1 only once entry E is
 * committed (applied here, or named by a START_EPOCH / NEW_EPOCH, which
 * only a replica that moved sends); (2) it takes part in e+1 (acks, votes,
 * DO_VIEW_CHANGE, leads) only with its log through E equal to the decided
 * one: if its log does not hold E it enters catching_up, cut back to its
 * commit, and fetches committed entries from the other members;
 * (3) epoch, membership and E are in the metadata before anything in e+1
 * is acknowledged (acks and leading wait for the metadata of the new
 * (epoch, view)); (4) a replica outside the membership (removed, or not
 * yet added) never votes, acks or leads: it only asks around (RECOVERY
 * rounds) to learn a later epoch that names it. */
#include "core/replica_internal.h"

#include <inttypes.h>

/* Wedged: the log ends with this epoch's RECONFIG entry (committed or
 * not), or it committed and the replica moves at the end of the step. */
bool vr_wedged(const struct replica *r)
{
    if (r->next_pending)
        return true;
    if (r->log.op <= r->log.base)
        return false;
    const struct entry_header *h = log_header(&r->log, r->log.op);
    return h->kind == ENTRY_RECONFIG && h->epoch == r->cfg.epoch;
}

const char *reconfig_result_name(enum reconfig_result result)
{
    switch (result) {
    case RECONFIG_PROPOSED:
        return "proposed";
    case RECONFIG_NOT_PRIMARY:
        return "not the primary";
    case RECONFIG_INVALID:
        return "invalid membership";
    case RECONFIG_BUSY:
        return "busy";
    }
    return "?";
}

static enum reconfig_result reconfig_refusal(const struct replica *r,
                                             const struct membership *next)
{
    if (!replica_is_primary(r))
        return RECONFIG_NOT_PRIMARY;
    if (r->cfg.epoch >= UINT32_MAX - 1 ||
        !membership_valid(next, r->c.replica_count))
        return RECONFIG_INVALID;
    if (vr_wedged(r) || vr_handoff_active(r) ||
        r->log.op + 1 - r->commit > r->c.pipeline_ops_max ||
        !log_has_room(&r->log, 8))
        return RECONFIG_BUSY;
    return RECONFIG_PROPOSED;
}

void vr_on_reconfig(struct replica *r, const struct membership *next)
{
    struct membership m = *next;
    m.epoch = r->cfg.epoch + 1;
    enum reconfig_result result = reconfig_refusal(r, &m);
    uint64_t op = 0;
    if (result == RECONFIG_PROPOSED) {
        op = vr_append_reconfig(r, membership_pack(&m));
        if (op == 0)
            result = RECONFIG_BUSY;
    }
    struct action *a = vr_action_push(r, ACT_RECONFIG);
    a->reconfig = (struct reconfig_answer){
        .result = result, .epoch = r->cfg.epoch, .op = op};
    vr_trace(r, "reconfig to %u voters, %u learners: %s (op %" PRIu64 ")",
             m.voter_count < COHORT_REPLICAS_MAX ? m.voter_count : 0,
             m.learner_count, reconfig_result_name(result), op);
}

/* ------------------------------------------------------------- spares */

/* The next membership with this primary first: it leads the new epoch's
 * first view, so the change costs no view change. */
static void primary_first(const struct replica *r, struct membership *m)
{
    for (uint32_t k = 1; k < m->voter_count; k++)
        if (m->voters[k] == r->c.self) {
            m->voters[k] = m->voters[0];
            m->voters[0] = r->c.self;
        }
}

/* Learners are kept ascending (membership_pack() stores a mask). */
static void learner_add(struct membership *m, uint32_t id)
{
    ASSERT(m->voter_count + m->learner_count < COHORT_REPLICAS_MAX);
    uint32_t k = m->learner_count++;
    while (k > 0 && m->learners[k - 1] > id) {
        m->learners[k] = m->learners[k - 1];
        k--;
    }
    m->learners[k] = id;
}

static void learner_remove(struct membership *m, uint32_t id)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < m->learner_count; k++)
        if (m->learners[k] != id)
            m->learners[n++] = m->learners[k];
    m->learner_count = n;
}

/* A change the core proposes itself (a replacement, a spare added): as
 * EV_RECONFIG's, with no answer to give, and never while the previous
 * change is still being announced or this replica catches up. */
static bool propose_own(struct replica *r, struct membership *next,
                        const char *what)
{
    next->epoch = r->cfg.epoch + 1;
    if (r->announcing || r->catching_up ||
        reconfig_refusal(r, next) != RECONFIG_PROPOSED)
        return false;
    uint64_t op = vr_append_reconfig(r, membership_pack(next));
    if (op == 0)
        return false;
    vr_trace(r, "%s: epoch %" PRIu32 " proposed at op %" PRIu64, what,
             next->epoch, op);
    return true;
}

/* A voter the primary has had no PREPARE-OK from (backups acknowledge every
 * heartbeat) and suspects, for longer than the grace period. ack_heard_ms
 * restarts at every view start, so a new primary waits a whole grace
 * period of its own. */
static bool voter_gone(const struct replica *r, uint32_t v)
{
    return v != r->c.self && detector_suspects(&r->detector, v) &&
           r->now_ms - r->ack_heard_ms[v] > r->c.replace_after_ms;
}

/* A learner fit to vote at once: heard from lately, and its acknowledged
 * op within one batch (batch_ops_max) of our commit point. Only liveness
 * rests on this (the new epoch's voters take part only with the log
 * through its RECONFIG entry, invariant 2): a lagging learner would make
 * the new epoch wait for it to catch up, with one voter fewer meanwhile. */
static bool learner_caught_up(const struct replica *r, uint32_t id)
{
    return !detector_suspects(&r->detector, id) &&
           r->now_ms - r->ack_heard_ms[id] <= 2u * r->c.suspect_timeout_ms &&
           r->ack_op[id] + r->c.batch_ops_max >= r->commit;
}

/* Primary, every tick: replace one gone voter by a caught-up learner, the
 * voter becoming a learner (a spare), in one ordinary epoch change
 * (docs/PROTOCOL.md, "Spares"). One at a time: the wedge holds off any
 * other change until this one is announced. */
void vr_replace_progress(struct replica *r)
{
    if (r->c.replace_after_ms == 0 || r->cfg.learner_count == 0)
        return;
    uint32_t slot = COHORT_REPLICAS_MAX;
    for (uint32_t k = 0; k < r->cfg.voter_count && slot == COHORT_REPLICAS_MAX;
         k++)
        if (voter_gone(r, r->cfg.voters[k]))
            slot = k;
    if (slot == COHORT_REPLICAS_MAX)
        return;
    bool bug = vr_bug(r, BUG_REPLACE_UNCAUGHT);
    uint32_t best = COHORT_REPLICA_NONE;
    for (uint32_t k = 0; k < r->cfg.learner_count; k++) {
        uint32_t id = r->cfg.learners[k];
        if (bug) { /* the least caught-up learner */
            if (best == COHORT_REPLICA_NONE || r->ack_op[id] < r->ack_op[best])
                best = id;
        } else if (learner_caught_up(r, id) &&
                   (best == COHORT_REPLICA_NONE ||
                    r->ack_op[id] > r->ack_op[best])) {
            best = id;
        }
    }
    if (best == COHORT_REPLICA_NONE)
        return;
    uint32_t gone = r->cfg.voters[slot];
    struct membership next = r->cfg;
    next.voters[slot] = best;
    learner_remove(&next, best);
    learner_add(&next, gone);
    if (bug) { /* the uncaught learner leads the first view */
        next.voters[slot] = next.voters[0];
        next.voters[0] = best;
    } else {
        primary_first(r, &next);
    }
    if (!propose_own(r, &next, "replace a gone voter"))
        return;
    r->stats.replacements++;
    vr_trace(r, "voter %u silent for %" PRIu64 " ms: replaced by learner %u",
             gone, r->now_ms - r->ack_heard_ms[gone], best);
}

/* A spare outside the membership asked to be added (RECOVERY with
 * MSG_FLAG_SPARE; from is in range, not us, and of our epoch): the primary
 * adds it as a learner, if there is room and nothing else is changing.
 * Learners never count, so a forged request costs a log entry and a
 * member that receives the log, no safety. */
void vr_on_spare(struct replica *r, uint32_t from)
{
    if (!replica_is_primary(r) || from >= r->c.replica_count ||
        from == r->c.self || vr_is_member(r, from) ||
        r->cfg.voter_count + r->cfg.learner_count >= COHORT_REPLICAS_MAX)
        return;
    struct membership next = r->cfg;
    learner_add(&next, from);
    primary_first(r, &next);
    if (propose_own(r, &next, "add a spare as a learner"))
        r->stats.spares_added++;
}

/* A committed RECONFIG entry was applied: move at the end of the step (not
 * in the middle of whatever committed it). An older epoch's entry (the one
 * that started ours, applied late) changes nothing. */
void vr_epoch_applied(struct replica *r, const struct entry *e)
{
    if (e->h.epoch != r->cfg.epoch || r->next_pending)
        return;
    uint64_t packed = 0;
    for (uint32_t i = 0; i < 8; i++)
        packed |= (uint64_t)e->body[i] << (8u * i);
    struct membership next;
    if (!membership_unpack(packed, e->h.epoch + 1, r->c.replica_count, &next)) {
        /* A primary checked it before appending it: only a forged or
         * damaged entry gets here. The group stays wedged. */
        vr_invalid(r, "RECONFIG entry with an invalid membership");
        return;
    }
    r->next_pending = true;
    r->next_cfg = next;
    r->next_op = e->h.op;
    r->next_checksum = e->h.checksum;
}

static void send_epoch(struct replica *r, uint8_t type, uint32_t to)
{
    /* EPOCH_STARTED carries only E (message.h): any other field set makes
     * it malformed at the receiver. */
    bool started = type == MSG_EPOCH_STARTED;
    struct message m = {
        .type = type,
        .op = r->epoch_op,
        .checksum = started ? 0 : r->epoch_checksum,
        .nonce = started ? 0 : membership_pack(&r->cfg),
    };
    vr_send_to(r, to, &m, NULL);
}

/* Resend START_EPOCH to the members that did not answer, until a quorum of
 * the voters did (stragglers learn the epoch by NEW_EPOCH). */
static void announce(struct replica *r)
{
    uint32_t answered = 0;
    for (uint32_t k = 0; k < r->cfg.voter_count; k++) {
        uint32_t v = r->cfg.voters[k];
        answered += v == r->c.self || r->epoch_started[v];
    }
    if (answered >= vr_quorum(r)) {
        r->announcing = false;
        return;
    }
    r->announce_ms = r->now_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && vr_is_member(r, i) && !r->epoch_started[i])
            send_epoch(r, MSG_START_EPOCH, i);
}

static void forget_view_state(struct replica *r)
{
    for (uint32_t i = 0; i < COHORT_REPLICAS_MAX; i++) {
        r->votes[i] = 0;
        r->vote_ms[i] = 0;
        r->vote_since_ms[i] = 0;
        r->dvc[i].have = false;
        r->rr[i].have = false;
        r->epoch_started[i] = false;
        r->ack_op[i] = 0;
        r->pong_seq[i] = 0;
    }
    r->vc_attempts = 0;
    r->dvc_sent = false;
    r->best_from = UINT32_MAX;
    r->state_request_ms = 0;
    r->state_retries = 0;
    r->acked_op = 0;
    r->lead_forbidden_view = VIEW_NONE;
    r->handoff_target = COHORT_REPLICA_NONE;
    r->reads_view = VIEW_NONE; /* pending reads fail: the view is gone */
    r->next_pending = false;
    r->lead_pending = false;
}

/* Whether the log holds the entry that started this epoch (or a snapshot
 * past it): then it is the decided log through E (the hash chain). */
static bool holds_epoch_start(const struct replica *r)
{
    if (r->epoch_op <= r->log.base)
        return true;
    uint64_t ours;
    return log_checksum(&r->log, r->epoch_op, &ours) &&
           ours == r->epoch_checksum;
}

/* Take the log through E: ours if it holds E, else cut back to our commit
 * (the rest may be another view's) and fetch the rest (catching_up,
 * invariant 2). Either way it acknowledged nothing in the new epoch, so
 * damage from the old one (records it may have acknowledged there) no
 * longer matters once it holds E. */
static void take_log_through(struct replica *r, bool leads_first)
{
    if (vr_bug(r, BUG_REPLACE_UNCAUGHT) && leads_first &&
        !holds_epoch_start(r)) {
        /* The mutant: lead from our own log, without the decided one. */
        r->op_verified = r->log.op;
        r->catching_up = false;
    } else if (holds_epoch_start(r)) {
        vr_truncate_log(r, r->epoch_op > r->commit ? r->epoch_op : r->commit);
        if (r->op_verified < r->epoch_op)
            r->op_verified = r->epoch_op;
        vr_commit_to(r, r->epoch_op);
        r->catching_up = false;
    } else {
        vr_truncate_log(r, r->commit);
        r->op_verified = r->commit;
        r->catching_up = true;
    }
    r->damaged = false;
}

/* A replica catching up asks the members in turn for committed entries
 * (any member serves those: vr_on_get_state()) until it holds E. */
static void catch_up(struct replica *r, bool tick)
{
    if (!r->catching_up)
        return;
    if (holds_epoch_start(r)) {
        r->catching_up = false;
        if (r->op_verified < r->epoch_op)
            r->op_verified = r->epoch_op;
        vr_commit_to(r, r->epoch_op);
        vr_trace(r, "holds the log through %" PRIu64 ": takes part",
                 r->epoch_op);
        return;
    }
    /* A snapshot on its way (the asked replica compacted past our log)
     * takes longer than a few heartbeats: wait for it as state transfer
     * does. */
    uint64_t retry = r->awaiting_snapshot ? 4u * r->c.view_change_timeout_ms
                                          : 2u * r->c.heartbeat_ms;
    if (!tick ||
        (r->state_request_ms && r->now_ms - r->state_request_ms < retry))
        return;
    if (r->c.replica_count < 2)
        return;
    /* Anyone may hold E, a removed member too (it serves): ask each in
     * turn, but the one whose last answer moved us on (or whose snapshot
     * we installed: its log is pinned for us) again while it does. */
    uint32_t to;
    if (r->state_request_ms == 0 && vr_valid_peer(r, r->state_prefer)) {
        to = r->state_prefer;
    } else {
        r->state_prefer = COHORT_REPLICA_NONE;
        r->catch_up_next = (r->catch_up_next + 1) % r->c.replica_count;
        if (r->catch_up_next == r->c.self)
            r->catch_up_next = (r->catch_up_next + 1) % r->c.replica_count;
        to = r->catch_up_next;
    }
    r->state_request_ms = r->now_ms;
    r->state_asked = to;
    r->awaiting_snapshot = false;
    struct message m = {
        .type = MSG_GET_STATE,
        .view = r->view,
        .commit = r->commit,
        .base_op = r->op_verified,
        .checksum = vr_checksum_at(r, r->op_verified),
        .nonce = r->nonce,
        .flags = MSG_FLAG_CATCH_UP,
    };
    vr_send_to(r, to, &m, NULL);
}

/* BUG_COUNT_REMOVED: the voters a change removes stay on as learners
 * (and vr_counts_for_commit() counts them). */
static void bug_keep_removed(struct replica *r, struct membership *next)
{
    r->bug_removed_mask = 0;
    if (!vr_bug(r, BUG_COUNT_REMOVED))
        return;
    for (uint32_t k = 0; k < r->cfg.voter_count; k++) {
        uint32_t id = r->cfg.voters[k];
        if (membership_is_member(next, id) ||
            next->voter_count + next->learner_count >= COHORT_REPLICAS_MAX)
            continue;
        next->learners[next->learner_count++] = id;
        r->bug_removed_mask |= 1u << id;
    }
}

/* The voter that next swaps for one of cur's learners (a replacement: same
 * number of voters, exactly one leaves them and stays as a learner, and
 * the one that joins them was a learner); COHORT_REPLICA_NONE otherwise. */
static uint32_t replaced_voter(const struct membership *cur,
                               const struct membership *next)
{
    if (cur->voter_count != next->voter_count)
        return COHORT_REPLICA_NONE;
    uint32_t left = COHORT_REPLICA_NONE, joined = COHORT_REPLICA_NONE;
    uint32_t lefts = 0, joins = 0;
    for (uint32_t i = 0; i < cur->voter_count; i++)
        if (!membership_is_voter(next, cur->voters[i])) {
            left = cur->voters[i];
            lefts++;
        }
    for (uint32_t i = 0; i < next->voter_count; i++)
        if (!membership_is_voter(cur, next->voters[i])) {
            joined = next->voters[i];
            joins++;
        }
    if (lefts != 1 || joins != 1 || !membership_is_learner(next, left) ||
        !membership_is_learner(cur, joined))
        return COHORT_REPLICA_NONE;
    return left;
}

static void enter_epoch(struct replica *r, const struct membership *given,
                        uint64_t op, uint64_t checksum, bool announcer)
{
    struct membership copy = *given;
    struct membership *next = &copy;
    bug_keep_removed(r, next);
    ASSERT(next->epoch > r->cfg.epoch);
    uint32_t replaced = replaced_voter(&r->cfg, next);
    vr_note_why(r,
                replaced == COHORT_REPLICA_NONE ? COHORT_VIEW_CAUSE_EPOCH
                                                : COHORT_VIEW_CAUSE_REPLACEMENT,
                next->voters[0], replaced, 0);
    /* It tells how this replica arrived in view 0 of the new epoch (from
     * view 0 of the old one, often): leaving it will have its own cause. */
    r->why_arrival = true;
    r->epoch_op = op;
    r->epoch_checksum = checksum;
    take_log_through(r, next->voters[0] == r->c.self);
    r->cfg = *next;
    forget_view_state(r);
    r->view = 0;
    r->last_normal_view = 0;
    r->lnv_disk = 0;
    r->view_op = op;
    r->primary_op = op;
    r->learned = true;
    bool was_member = !r->removed;
    r->removed = !vr_is_member(r, r->c.self);
    if (was_member && r->removed)
        r->spare_retired = true;
    /* Still left out by a later epoch it learns, until one names it. */
    r->left = r->removed && (was_member || r->left);
    ASSERT(!r->left || r->removed);
    uint32_t primary = vr_primary_of(r, 0);
    if (r->removed) {
        r->status = STATUS_RECOVERING; /* asks around for a later epoch */
        r->recovery_started_ms = r->now_ms;
    } else if (primary == r->c.self) {
        r->status = STATUS_VIEW_CHANGE; /* leads once the metadata is on disk */
        r->vc_started_ms = r->now_ms;
        r->lead_pending = !r->catching_up; /* else: view 1 leads */
    } else {
        r->status = STATUS_NORMAL;
        detector_reset(&r->detector, primary, r->now_ms);
    }
    vr_persist_meta(r);
    r->stats.epochs_entered++;
    vr_report_view(r);
    vr_trace(
        r, "epoch %" PRIu32 " from op %" PRIu64 ": %u voters, primary %u%s%s",
        r->cfg.epoch, op, r->cfg.voter_count, primary,
        r->removed ? ", removed" : "", r->catching_up ? ", catching up" : "");
    r->announcing = announcer;
    if (announcer)
        announce(r);
}

static void on_start_epoch(struct replica *r, const struct message *m)
{
    if (m->epoch <= r->cfg.epoch) {
        if (m->type == MSG_START_EPOCH && m->epoch == r->cfg.epoch &&
            m->op == r->epoch_op)
            send_epoch(r, MSG_EPOCH_STARTED, m->from);
        return;
    }
    struct membership next;
    if (!membership_unpack(m->nonce, m->epoch, r->c.replica_count, &next)) {
        vr_invalid(r, "epoch with an invalid membership");
        return;
    }
    /* Our commit is at or below E, or our log holds E: a replica whose
     * metadata of the new epoch was lost in a crash may have persisted
     * (and committed, by commit_floor()) entries of the new epoch, or
     * installed a snapshot past E. A snapshot holds committed state only,
     * and committed prefixes agree, so one past E holds the decided E. */
    uint64_t ours;
    bool holds = m->op < r->log.base ||
                 (log_checksum(&r->log, m->op, &ours) && ours == m->checksum);
    if ((m->op < r->commit && !holds) ||
        (m->op <= r->commit && log_checksum(&r->log, m->op, &ours) &&
         ours != m->checksum)) {
        vr_invalid(r, "epoch starts below our commit");
        return;
    }
    if (vr_meta_backlogged(r)) {
        r->stats.views_deferred++; /* the sender repeats it */
        return;
    }
    enter_epoch(r, &next, m->op, m->checksum, false);
    if (m->type == MSG_START_EPOCH)
        send_epoch(r, MSG_EPOCH_STARTED, m->from);
}

/* A message of a newer epoch came from `to`: show it ours, which it answers
 * with NEW_EPOCH (below). A replica that sends nothing on its own would
 * otherwise wait for good once the epoch's START_EPOCHs to it were lost
 * (the primary sends them only until a quorum answered): a learner never
 * suspects anyone, and a backup's primary may have moved with the group
 * (simulator soak, seed 588924888439: a learner of epoch 5 dropped the
 * messages of epochs 6 and 7 for 34 s, to the end of the run). A PONG with
 * nonce 0 is the smallest message there is; the newer epoch answers it
 * before reading it. At most one per heartbeat. */
static void ask_epoch(struct replica *r, uint32_t to)
{
    if (r->epoch_asked_ms && r->now_ms - r->epoch_asked_ms < r->c.heartbeat_ms)
        return;
    r->epoch_asked_ms = r->now_ms;
    struct message m = {.type = MSG_PONG, .view = r->view};
    vr_send_to(r, to, &m, NULL);
}

/* Before anything else looks at a message: the epoch messages themselves,
 * and the epoch rule for the rest. Returns whether normal processing may
 * go on. */
bool vr_epoch_filter(struct replica *r, const struct message *m)
{
    switch (m->type) {
    case MSG_START_EPOCH:
    case MSG_NEW_EPOCH:
        on_start_epoch(r, m);
        return false;
    case MSG_EPOCH_STARTED:
        if (m->epoch == r->cfg.epoch && m->op == r->epoch_op &&
            vr_is_member(r, m->from))
            r->epoch_started[m->from] = true;
        return false;
    default:
        break;
    }
    if (m->epoch < r->cfg.epoch) {
        /* It missed the change: tell it rather than act on old news. */
        r->stats.epoch_answers++;
        send_epoch(r, MSG_NEW_EPOCH, m->from);
        return false;
    }
    if (m->epoch > r->cfg.epoch) {
        /* We learn it by START_EPOCH/NEW_EPOCH, not from this. */
        r->stats.epochs_ahead++;
        vr_invalid(r, "of a newer epoch");
        ask_epoch(r, m->from);
        return false;
    }
    /* A removed replica still serves the committed log to the members
     * that need it through E (they may have nobody else). */
    return !r->removed ||
           (m->type == MSG_GET_STATE && (m->flags & MSG_FLAG_CATCH_UP));
}

/* After every step: move to the next epoch once its RECONFIG applied, lead
 * the first view once its metadata is durable, resend START_EPOCH. */
void vr_epoch_progress(struct replica *r, bool tick)
{
    if (vr_bug(r, BUG_EPOCH_BEFORE_COMMIT) && !r->next_pending &&
        vr_wedged(r)) {
        struct entry e;
        if (log_entry(&r->log, r->log.op, &e))
            vr_epoch_applied(r, &e); /* as if it had committed */
    }
    if (r->next_pending) {
        struct membership next = r->next_cfg;
        enter_epoch(r, &next, r->next_op, r->next_checksum,
                    replica_is_primary(r));
    }
    catch_up(r, tick);
    if (r->lead_pending && (r->view != 0 || r->status != STATUS_VIEW_CHANGE))
        r->lead_pending = false; /* the group moved past the first view */
    if (r->lead_pending && vr_meta_durable_for_view(r)) {
        r->lead_pending = false;
        vr_start_view(r);
    }
    if (tick && r->announcing &&
        r->now_ms - r->announce_ms >= r->c.heartbeat_ms)
        announce(r);
}
