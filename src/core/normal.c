/* normal — the normal case (VR Revisited §4.1): the primary orders client
 * requests, sends PREPAREs and commits on a quorum of durable copies;
 * backups adopt PREPAREs and COMMITs and acknowledge what is durable; every
 * replica applies committed ops in order and asks for snapshots.
 *
 * Invariants: (1) the primary appends only within the pipeline bounds
 * (op - commit <= pipeline_ops_max, uncommitted bytes <=
 * pipeline_bytes_max); (2) commit never exceeds op_verified, the prefix
 * known equal to the primary's log; (3) a backup acknowledges op n only
 * when n is durable in its current version and its durable metadata says
 * view == last_normal_view == the current view (replica.c invariant 4);
 * (4) ops are applied exactly once, in order, and a retried request is
 * answered from the client table instead of applied again. */
#include "core/replica_internal.h"

#include <inttypes.h>

/* Apply one committed entry to the state machine and the client table.
 * Deterministic: every replica does the same at the same op. */
static void apply_entry(struct replica *r, const struct entry *e)
{
    ASSERT(e->h.op == r->applied + 1);
    ASSERT(e->h.op <= r->commit);
    uint64_t previous_ts = r->applied == r->log.base
                               ? r->log.base_timestamp_ms
                               : log_header(&r->log, r->applied)->timestamp_ms;
    uint64_t period = r->c.client_expiry_ms / 4 + 1;
    if (e->h.timestamp_ms / period != previous_ts / period)
        client_table_expire(&r->table, e->h.timestamp_ms,
                            r->c.client_expiry_ms);
    r->applied = e->h.op;
    r->stats.ops_committed++;
    if (e->h.kind == ENTRY_RECONFIG)
        vr_epoch_applied(r, e);
    if (e->h.kind != ENTRY_CLIENT)
        return;
    bool primary = replica_is_primary(r);
    const struct client_record *rec =
        client_table_find(&r->table, e->h.client_id);
    if (rec && e->h.request_no <= rec->request_no &&
        !vr_bug(r, BUG_APPLY_RETRY_TWICE)) {
        /* A retry ordered twice: the first copy already took effect. An
         * older number than the latest is not answered from the table
         * (it keeps the latest reply only), but it is answered. */
        r->stats.requests_duplicate++;
        if (primary && e->h.request_no == rec->request_no)
            vr_reply_ok(r, rec, vr_stored_reply(r, rec));
        else if (primary)
            vr_reply(r, e->h.client_id, e->h.request_no, REPLY_STALE);
        return;
    }
    if (!rec && e->h.request_no > 1) {
        /* The client was forgotten: we cannot tell whether this retry was
         * applied before, so it is not applied now. */
        if (primary)
            vr_reply(r, e->h.client_id, e->h.request_no, REPLY_EXPIRED);
        return;
    }
    size_t size =
        r->c.sm->apply(r->c.sm->ctx, e->h.op, e->h.timestamp_ms, e->body,
                       e->h.body_size, r->reply_buf, r->c.reply_size_max);
    ASSERT(size <= r->c.reply_size_max);
    uint64_t request_no = e->h.request_no;
    if (rec && request_no <= rec->request_no)
        request_no = rec->request_no + 1; /* only under BUG_APPLY_RETRY_TWICE */
    rec = client_table_record(&r->table, e->h.client_id, request_no, e->h.op,
                              e->h.timestamp_ms, r->reply_buf, (uint32_t)size);
    if (primary)
        vr_reply_ok(r, rec, r->reply_buf);
}

static void request_snapshot(struct replica *r)
{
    if (r->snapshot_running || r->c.snapshot_interval_ops == 0)
        return;
    /* Not past the start of an epoch whose metadata is not durable yet: a
     * crash would bring back the older epoch with a snapshot of the newer
     * one's ops. */
    if (!r->meta_durable_valid || r->meta_durable.epoch != r->cfg.epoch)
        return;
    /* Every snapshot_interval_ops ops, or sooner when the log's bodies
     * fill half its arena (large values), so the log never runs out of
     * room waiting for a snapshot. Replicas are staggered (by a share of
     * the interval, and of the arena, that grows with their index), so
     * that they do not all fork at once: a quorum stays undisturbed. */
    uint64_t interval = r->c.snapshot_interval_ops;
    uint64_t phase = interval * r->c.self / r->c.replica_count;
    bool interval_due =
        (r->applied + phase) / interval > (r->snapshot_op + phase) / interval;
    uint64_t bytes_due = r->log.bytes_max / 2 + r->log.bytes_max * r->c.self /
                                                    (8u * r->c.replica_count);
    /* ... and when its slots are 3/4 full (a log kept back for a
     * snapshot being sent, transfer.c), before appends must stop. */
    bool slots_due = r->log.op - r->log.base >= r->log.ops_max / 4 * 3;
    if (!interval_due && r->log.bytes < bytes_due && !slots_due)
        return;
    if (r->applied <= r->snapshot_op)
        return;
    struct action *a = vr_action_push(r, ACT_SNAPSHOT_TAKE);
    a->snapshot_take.op = r->applied;
    a->snapshot_take.checksum = vr_checksum_at(r, r->applied);
    a->snapshot_take.timestamp_ms =
        log_header(&r->log, r->applied)->timestamp_ms;
    size_t size =
        client_table_encode(&r->table, r->table_buf, r->table_buf_size);
    a->snapshot_take.client_table = r->table_buf;
    a->snapshot_take.client_table_size = size;
    r->snapshot_running = true;
}

void vr_apply_committed(struct replica *r)
{
    while (r->applied < r->commit && vr_reply_room(r)) {
        struct entry e;
        bool present = log_entry(&r->log, r->applied + 1, &e);
        ASSERT(present);
        apply_entry(r, &e);
    }
    if (r->applied < r->commit)
        return;
    if (r->log.op > r->log.base && r->applied > r->log.base)
        request_snapshot(r);
}

/* Raise the commit number to op (bounded by what we know matches). */
void vr_commit_to(struct replica *r, uint64_t op)
{
    if (op > r->op_verified)
        op = r->op_verified;
    if (op > r->commit) {
        r->commit = op;
        vr_trace(r, "commit %llu", (unsigned long long)op);
    }
}

/* A backup (or a new primary) raises its durable last_normal_view to the
 * current view once its disk log equals its memory log and that log is the
 * primary's up to the op at which the view started. */
void vr_maybe_raise_lnv(struct replica *r)
{
    if (r->status != STATUS_NORMAL || r->lnv_disk == r->view)
        return;
    if (r->persists_inflight > 0 || r->persist_from != 0)
        return;
    if (r->view_op == VIEW_OP_UNKNOWN || r->op_verified < r->view_op ||
        r->op_verified != r->log.op)
        return;
    r->last_normal_view = r->view;
    r->lnv_disk = r->view;
    vr_persist_meta(r);
    vr_trace(r, "last normal view %" PRIu64, r->view);
}

/* A damaged replica (its log lost records it may have acknowledged) is
 * whole again once its log is durable and equal to the primary's up to an
 * op the primary reported *after our restart* (in its RECOVERY-RESPONSE, or
 * a NEW-STATE answering a GET-STATE that carried our nonce; a delayed
 * PREPARE may report an older op): every op we acknowledged before the
 * crash was at most the op our primary had then, a view's log only grows,
 * and ops of earlier views that committed are in this view's log below
 * view_op. */
void vr_maybe_clear_damage(struct replica *r)
{
    if (!r->damaged || r->status != STATUS_NORMAL || replica_is_primary(r))
        return;
    if (r->persists_inflight > 0 || r->persist_from != 0)
        return;
    if (r->view_op == VIEW_OP_UNKNOWN || r->primary_op == 0)
        return;
    if (r->op_verified != r->log.op || r->op_verified < r->view_op ||
        r->op_verified < r->primary_op)
        return;
    r->damaged = false;
    r->fresh = false;
    vr_persist_meta(r); /* clears the damage mark */
    vr_trace(r, "log repaired up to %llu", (unsigned long long)r->log.op);
}

void vr_note_primary_op(struct replica *r, uint64_t op)
{
    if (op > r->primary_op)
        r->primary_op = op;
}

static uint64_t log_time(const struct replica *r)
{
    uint64_t ts = r->clock_base_ts + (r->now_ms - r->clock_base_ms);
    uint64_t last = log_last_timestamp(&r->log);
    return ts > last ? ts : last;
}

uint64_t replica_client_applied(const struct replica *r, uint64_t client_id)
{
    const struct client_record *rec = client_table_find(&r->table, client_id);
    return rec ? rec->request_no : 0;
}

uint64_t replica_log_time(const struct replica *r)
{
    return log_time(r);
}

/* Send PREPAREs for (from, upto] to one replica or (to == UINT32_MAX) all.
 * Returns the last op sent; less than upto when the step's send buffer is
 * full (the rest goes out on a later step). */
static uint64_t send_prepare(struct replica *r, uint32_t to, uint64_t from,
                             uint64_t upto)
{
    while (from < upto) {
        uint32_t n = vr_gather(r, from, upto);
        if (n == 0)
            return from;
        size_t used = r->send_used;
        struct message m = {
            .type = MSG_PREPARE,
            .view = r->view,
            .op = r->log.op,
            .commit = r->commit,
            .view_op = r->view_op,
            .checksum = vr_checksum_at(r, from),
            .base_op = from,
            .entry_count = n,
        };
        if (to == UINT32_MAX) {
            vr_broadcast(r, &m, r->scratch);
            r->commit_sent = r->commit;
        } else
            vr_send_to(r, to, &m, r->scratch);
        if (r->send_used == used)
            return from; /* did not fit */
        from += n;
    }
    return from;
}

void vr_flush_prepares(struct replica *r)
{
    if (!replica_is_primary(r) || r->prepare_sent_op >= r->log.op)
        return;
    r->prepare_sent_op =
        send_prepare(r, UINT32_MAX, r->prepare_sent_op, r->log.op);
    r->heartbeat_ms = r->now_ms;
    r->prepare_flush_ms = r->now_ms;
}

void vr_primary_try_commit(struct replica *r)
{
    if (!replica_is_primary(r))
        return;
    uint64_t acks[COHORT_REPLICAS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (!vr_counts_for_commit(r, i)) /* the primary counts */
            continue;
        if (i == r->c.self)
            acks[n++] = vr_meta_durable_normal(r) ? r->op_persisted : 0;
        else
            acks[n++] = r->ack_op[i];
    }
    /* The quorum-th largest is durable on a quorum. */
    uint32_t q = vr_quorum(r);
    if (vr_bug(r, BUG_COMMIT_WITH_F) && q > 1)
        q--;
    uint64_t durable = vr_kth_largest(acks, n, q);
    if (durable > r->commit) {
        ASSERT(durable <= r->log.op);
        vr_commit_to(r, durable);
    }
}

static bool request_in_flight(const struct replica *r, uint64_t client_id,
                              uint64_t request_no)
{
    for (uint64_t op = r->commit + 1; op <= r->log.op; op++) {
        const struct entry_header *h = log_header(&r->log, op);
        if (h->client_id == client_id && h->request_no == request_no)
            return true;
    }
    return false;
}

/* Does the uncommitted log hold a request of this client? (Then a higher
 * request number is a pipelined one, not a forgotten session.) */
static bool client_in_flight(const struct replica *r, uint64_t client_id)
{
    for (uint64_t op = r->commit + 1; op <= r->log.op; op++)
        if (log_header(&r->log, op)->client_id == client_id)
            return true;
    return false;
}

static uint64_t bytes_after_commit(const struct replica *r)
{
    uint64_t bytes = 0;
    for (uint64_t op = r->commit + 1; op <= r->log.op; op++)
        bytes += log_header(&r->log, op)->body_size;
    return bytes;
}

/* Primary: order one client request (VR Revisited §4.1 steps 1-3). */
static void on_request(struct replica *r, const struct client_request *req,
                       uint64_t *pending_bytes, bool *busy)
{
    if (r->status == STATUS_RECOVERING) {
        vr_reply(r, req->client_id, req->request_no, REPLY_RECOVERING);
        return;
    }
    if (r->status == STATUS_VIEW_CHANGE) {
        vr_reply(r, req->client_id, req->request_no, REPLY_VIEW_CHANGE);
        return;
    }
    if (!replica_is_primary(r)) {
        vr_reply(r, req->client_id, req->request_no, REPLY_NOT_PRIMARY);
        return;
    }
    if (req->client_id == 0 || req->request_no == 0 ||
        req->body_size > r->c.body_size_max) {
        vr_reply(r, req->client_id, req->request_no, REPLY_TOO_BIG);
        return;
    }
    if (*busy) {
        /* After one request of a batch is turned away, so are the rest,
         * before any other check: a request that follows a busy one of
         * its client (a fresh client's second, say) would otherwise be
         * judged without the one it follows. */
        vr_reply(r, req->client_id, req->request_no, REPLY_BUSY);
        return;
    }
    const struct client_record *rec =
        client_table_find(&r->table, req->client_id);
    if (rec && req->request_no <= rec->request_no) {
        r->stats.requests_duplicate++;
        if (req->request_no < rec->request_no) {
            /* The client sent a later request since: this one is not
             * applied now, and its reply is no longer kept. */
            vr_reply(r, req->client_id, req->request_no, REPLY_STALE);
        } else if (vr_reply_room(r)) {
            vr_reply_ok(r, rec, vr_stored_reply(r, rec));
        } else {
            *busy = true; /* no room to copy the reply in this step */
            vr_reply(r, req->client_id, req->request_no, REPLY_BUSY);
        }
        return;
    }
    if (!rec && req->request_no > 1 && !client_in_flight(r, req->client_id)) {
        vr_reply(r, req->client_id, req->request_no, REPLY_EXPIRED);
        return;
    }
    if (request_in_flight(r, req->client_id, req->request_no)) {
        r->stats.requests_duplicate++;
        return; /* answered when it commits */
    }
    if (replica_holding(r)) {
        /* Draining for a leadership transfer, or wedged behind a RECONFIG
         * entry: nothing new is proposed now. BUSY (certainly not applied,
         * and the rest of the batch with it): a driver holds it and offers
         * it again when the commit point moves or the hold ends, so a
         * primary that stays primary in the next epoch orders it there,
         * and one that does not passes it on to the new primary. */
        *busy = true;
        vr_reply(r, req->client_id, req->request_no, REPLY_BUSY);
        return;
    }
    if (req->over_limit) {
        vr_reply(r, req->client_id, req->request_no, REPLY_OVER_LIMIT);
        return;
    }
    /* No room: this one and the rest of the batch are turned away; a
     * driver that queues and resubmits them keeps their order. */
    if (r->log.op + 1 - r->commit > r->c.pipeline_ops_max ||
        *pending_bytes + req->body_size > r->c.pipeline_bytes_max ||
        !log_has_room(&r->log, req->body_size)) {
        vr_trace(r, "busy: pipeline %llu/%u ops, %llu+%u/%llu bytes, log %s",
                 (unsigned long long)(r->log.op - r->commit),
                 r->c.pipeline_ops_max, (unsigned long long)*pending_bytes,
                 req->body_size, (unsigned long long)r->c.pipeline_bytes_max,
                 log_has_room(&r->log, req->body_size) ? "has room" : "full");
        *busy = true;
        vr_reply(r, req->client_id, req->request_no, REPLY_BUSY);
        return;
    }
    struct entry e = {
        .h =
            {
                .parent = vr_checksum_at(r, r->log.op),
                .op = r->log.op + 1,
                .client_id = req->client_id,
                .request_no = req->request_no,
                .timestamp_ms = log_time(r),
                .view = r->view,
                .body_size = req->body_size,
                .epoch = r->cfg.epoch,
                .kind = ENTRY_CLIENT,
            },
        .body = req->body,
    };
    entry_seal(&e.h, e.body);
    bool appended = log_append(&r->log, &e);
    ASSERT(appended);
    *pending_bytes += req->body_size;
    vr_log_changed_from(r, e.h.op);
    r->op_verified = r->log.op; /* the primary's log is the view's log */
}

/* Primary: append the RECONFIG entry that ends this epoch (the wedge);
 * the caller checked the pipeline and that we are not wedged already. */
uint64_t vr_append_reconfig(struct replica *r, uint64_t packed)
{
    uint8_t body[8];
    for (uint32_t i = 0; i < 8; i++)
        body[i] = (uint8_t)(packed >> (8u * i));
    struct entry e = {
        .h =
            {
                .parent = vr_checksum_at(r, r->log.op),
                .op = r->log.op + 1,
                .timestamp_ms = log_time(r),
                .view = r->view,
                .body_size = sizeof(body),
                .epoch = r->cfg.epoch,
                .kind = ENTRY_RECONFIG,
            },
        .body = body,
    };
    entry_seal(&e.h, e.body);
    if (!log_append(&r->log, &e))
        return 0;
    vr_log_changed_from(r, e.h.op);
    r->op_verified = r->log.op;
    return e.h.op;
}

void vr_on_client_requests(struct replica *r, const struct event *ev)
{
    uint64_t pending = replica_is_primary(r) ? bytes_after_commit(r) : 0;
    bool busy = false;
    for (uint32_t i = 0; i < ev->client.count; i++)
        on_request(r, &ev->client.requests[i], &pending, &busy);
}

/* Adopt m's entries up to op `upto` into our log, replacing whatever differs;
 * our checksum at m->base_op must equal m->checksum (so our log up to there
 * is the sender's). Returns the last op adopted (m->base_op if none). */
uint64_t vr_adopt_entries(struct replica *r, const struct message *m,
                          uint64_t upto)
{
    uint64_t ours;
    ASSERT(log_checksum(&r->log, m->base_op, &ours));
    ASSERT(ours == m->checksum);
    uint64_t last = m->base_op;
    size_t offset = 0;
    struct entry e;
    while (message_entry_next(m, &offset, &e) && e.h.op <= upto) {
        uint64_t have;
        if (log_checksum(&r->log, e.h.op, &have) && have == e.h.checksum) {
            last = e.h.op;
            continue;
        }
        if (e.h.op <= r->commit)
            break; /* a committed op never changes: the sender is stale */
        vr_truncate_log(r, e.h.op - 1);
        if (!log_append(&r->log, &e))
            break; /* full: the rest comes again later */
        vr_log_changed_from(r, e.h.op);
        last = e.h.op;
    }
    return last;
}

bool vr_attaches(const struct replica *r, const struct message *m)
{
    uint64_t ours;
    return log_checksum(&r->log, m->base_op, &ours) && ours == m->checksum;
}

/* After adopting the primary's log up to op, drop what follows it if it
 * came from an older view. Entries prepared in this view by its primary are
 * kept: a START-VIEW or NEW-STATE may be older than PREPAREs we already
 * took, and only the primary of a view stamps entries with that view. */
void vr_truncate_older_views_after(struct replica *r, uint64_t op)
{
    if (op < r->op_verified)
        op = r->op_verified;
    while (op < r->log.op && log_header(&r->log, op + 1)->view == r->view)
        op++;
    vr_truncate_log(r, op);
}

/* Backup: PREPARE, VR Revisited §4.1 step 4. */
void vr_on_prepare(struct replica *r, const struct message *m)
{
    if (m->view > r->view || r->status == STATUS_VIEW_CHANGE)
        vr_become_backup(r, m->view);
    r->view_op = m->view_op;
    if (!vr_attaches(r, m)) {
        /* Our entries up to op_verified are this primary's or committed in
         * a later view; a PREPARE that contradicts them comes from a log a
         * later view superseded, and is dropped. Beyond them, we are
         * missing something: ask. */
        if (m->base_op >= r->log.base && m->base_op > r->op_verified)
            vr_request_state(r);
        return;
    }
    uint64_t last = vr_adopt_entries(r, m, UINT64_MAX);
    if (last > r->op_verified)
        r->op_verified = last;
    vr_commit_to(r, m->commit);
    if (last < m->base_op + m->entry_count)
        vr_request_state(r);
}

/* Primary: PREPARE-OK, VR Revisited §4.1 step 5. */
void vr_on_prepare_ok(struct replica *r, const struct message *m)
{
    if (!replica_is_primary(r) || m->view != r->view)
        return;
    uint64_t ours;
    if (!log_checksum(&r->log, m->op, &ours) || ours != m->checksum)
        return;
    r->ack_heard_ms[m->from] = r->now_ms;
    if (m->op > r->ack_op[m->from]) {
        r->ack_op[m->from] = m->op;
        r->ack_progress_ms[m->from] = r->now_ms;
        r->retransmit_wait_ms[m->from] = 2u * r->c.heartbeat_ms;
    }
}

/* Backup: COMMIT (the primary's heartbeat), VR Revisited §4.1 step 7. */
void vr_on_commit(struct replica *r, const struct message *m)
{
    if (m->view > r->view || r->status == STATUS_VIEW_CHANGE)
        vr_become_backup(r, m->view);
    r->view_op = m->view_op;
    uint64_t ours;
    if (log_checksum(&r->log, m->commit, &ours) && ours == m->checksum) {
        if (m->commit > r->op_verified)
            r->op_verified = m->commit;
        vr_commit_to(r, m->commit);
    }
    /* Our log may also run past the primary's with ops of an older view
     * (we led it, cut off, and learned of this view by this COMMIT): no
     * PREPARE replaces them while no client writes, and they would keep us
     * from raising our last normal view. The primary's NEW-STATE cuts them
     * (vr_truncate_older_views_after). */
    bool stale_tail = r->log.op > r->op_verified && m->op < r->log.op;
    if (r->op_verified < m->commit || r->view_op == VIEW_OP_UNKNOWN ||
        r->op_verified < r->view_op || stale_tail)
        vr_request_state(r);
}

/* Check quorum: a primary that has not heard PREPARE-OK from enough backups
 * for a while may have been left behind by a view change it cannot see;
 * it votes for the next view so that the group can gather a quorum. */
static void primary_check_quorum(struct replica *r)
{
    uint64_t window = 4u * r->c.suspect_timeout_ms;
    uint32_t heard = 1;
    for (uint32_t k = 0; k < r->cfg.voter_count; k++) {
        uint32_t i = r->cfg.voters[k];
        if (i != r->c.self && r->now_ms - r->ack_heard_ms[i] <= window)
            heard++;
    }
    if (heard >= vr_quorum(r))
        return;
    if (r->votes[r->c.self] <= r->view) {
        /* Silent for: since the last ack of the backup that would have
         * completed a quorum. */
        uint64_t acks[COHORT_REPLICAS_MAX];
        uint32_t n = 0;
        for (uint32_t k = 0; k < r->cfg.voter_count; k++)
            if (r->cfg.voters[k] != r->c.self)
                acks[n++] = r->ack_heard_ms[r->cfg.voters[k]];
        uint64_t last = vr_kth_largest(acks, n, vr_quorum(r) - 1);
        vr_note_why(r, COHORT_VIEW_CAUSE_LOST_QUORUM, r->c.self,
                    COHORT_REPLICA_NONE, r->now_ms - last);
    }
    if (r->votes[r->c.self] <= r->view ||
        r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms / 2)
        vr_vote(r, vr_next_view(r->view));
}

void vr_send_commit(struct replica *r)
{
    r->heartbeat_ms = r->now_ms;
    r->commit_sent = r->commit;
    struct message m = {
        .type = MSG_COMMIT,
        .view = r->view,
        .op = r->log.op,
        .commit = r->commit,
        .view_op = r->view_op,
        .checksum = vr_checksum_at(r, r->commit),
    };
    vr_broadcast(r, &m, NULL);
}

void vr_tick_primary(struct replica *r)
{
    primary_check_quorum(r);
    /* A PING or its PONGs were lost: a newer PING covers the older reads. */
    if (r->read_count > 0 && r->now_ms - r->ping_sent_ms >= r->c.heartbeat_ms)
        r->reads_unpinged = true;
    if (r->now_ms - r->heartbeat_ms >= r->c.heartbeat_ms)
        vr_send_commit(r);
    /* Retransmit to backups whose acknowledgements stalled. Not while new
     * PREPAREs flow: a backup that lost one finds the gap from the next
     * and asks for state (vr_on_prepare). A stall that outlasts a
     * retransmission doubles the wait for the next: over TCP, a backup
     * whose acknowledgements lag is nearly always one slow to sync, and
     * sending it megabytes again every 50 ms only slows both sides more. */
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self || !vr_is_member(r, i) ||
            r->ack_op[i] >= r->prepare_sent_op)
            continue;
        uint64_t wait = r->retransmit_wait_ms[i] ? r->retransmit_wait_ms[i]
                                                 : 2u * r->c.heartbeat_ms;
        if (r->now_ms - r->ack_progress_ms[i] < wait ||
            r->now_ms - r->prepare_flush_ms < wait)
            continue;
        r->retransmit_wait_ms[i] =
            wait * 2u > RETRANSMIT_WAIT_MAX_HEARTBEATS * r->c.heartbeat_ms
                ? RETRANSMIT_WAIT_MAX_HEARTBEATS * r->c.heartbeat_ms
                : wait * 2u;
        r->ack_progress_ms[i] = r->now_ms;
        uint64_t from = r->ack_op[i] > r->commit ? r->ack_op[i] : r->commit;
        if (from < r->log.base)
            from = r->log.base;
        send_prepare(r, i, from, r->prepare_sent_op);
    }
}

void vr_tick_backup(struct replica *r)
{
    uint32_t primary = vr_primary_of(r, r->view);
    if (detector_suspects(&r->detector, primary)) {
        if (r->votes[r->c.self] <= r->view) {
            const struct detector_peer *p = &r->detector.peers[primary];
            vr_note_why(r, COHORT_VIEW_CAUSE_SUSPECTED, r->c.self, primary,
                        r->now_ms - p->heard_ms);
            r->why.timeout_ms = detector_timeout_ms(&r->detector, primary);
        }
        if (r->votes[r->c.self] <= r->view ||
            r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms / 2)
            vr_vote(r, vr_next_view(r->view));
    }
    if (r->view_op == VIEW_OP_UNKNOWN || r->op_verified < r->view_op ||
        r->state_request_ms || r->damaged)
        vr_request_state(r);
}

/* Backup: acknowledge what is durable and known to be the primary's. */
void vr_backup_ack(struct replica *r, bool force)
{
    if (r->status != STATUS_NORMAL || replica_is_primary(r) ||
        !vr_is_member(r, r->c.self) || r->catching_up)
        return;
    if (!vr_meta_durable_normal(r))
        return;
    uint64_t ack =
        r->op_persisted < r->op_verified ? r->op_persisted : r->op_verified;
    if (vr_bug(r, BUG_ACK_BEFORE_DURABLE))
        ack = r->op_verified;
    if (ack < r->log.base || (ack <= r->acked_op && !force))
        return;
    r->acked_op = ack;
    struct message m = {.type = MSG_PREPARE_OK,
                        .view = r->view,
                        .op = ack,
                        .checksum = vr_checksum_at(r, ack)};
    vr_send_to(r, vr_primary_of(r, r->view), &m, NULL);
}
