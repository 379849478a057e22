/* replica — the protocol core (Viewstamped Replication Revisited with durable
 * logs, hash-chained entries and protocol-aware recovery). See replica.h for
 * the event/action contract and docs/PROTOCOL.md for the protocol as
 * implemented.
 *
 * The protocol is split by concern over one internal header
 * (replica_internal.h: struct replica and the functions the files share):
 *   replica.c      the API: init, step dispatch, the per-step pipeline
 *                  (after_event), queries, invariants
 *   actions.c      what a step emits: messages, persists, replies, views
 *   normal.c       the normal case: ordering, prepare, commit, apply
 *   view_change.c  votes, DO-VIEW-CHANGE, START-VIEW
 *   recovery.c     a restarted replica learns the current view
 *   transfer.c     state transfer and snapshots
 *   read_index.c   linearizable reads by read index
 *   handoff.c      leadership transfer (the primary resigns to a backup)
 *
 * Invariants (checked by replica_invariants(), run after every step):
 *  (1) applied <= commit <= log.op, and log.base <= applied;
 *  (2) op_verified >= commit: the committed prefix of our log is the group's;
 *  (3) a primary in NORMAL status has lnv == view;
 *  (4) we send PREPARE-OK(v, n) and count our own copy only when n is durable
 *      in its current version (op_persisted) and the metadata on disk says
 *      view == last_normal_view == v;
 *  (5) the durable last_normal_view is raised to v only when the disk log
 *      equals the memory log and that log is primary(v)'s up to view_op.
 */
#include "core/replica_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static_assert(STATUS_VIEW_CHANGE == 3, "message_decode() takes status 1..3");
static_assert(VIEW_MAX < UINT64_MAX - VIEW_JUMP_MAX, "view + jump never wraps");

static void on_tick(struct replica *r)
{
    detector_tick(&r->detector, r->now_ms);
    switch (r->status) {
    case STATUS_RECOVERING:
        if (r->now_ms - r->recovery_started_ms >= 5u * r->c.recovery_retry_ms)
            vr_recovery_round(r); /* answers went stale: ask again */
        else if (r->now_ms - r->recovery_sent_ms >= r->c.recovery_retry_ms)
            vr_send_recovery(r);
        vr_check_recovery(r);
        break;
    case STATUS_NORMAL:
        if (replica_is_primary(r)) {
            vr_tick_primary(r);
            if (replica_is_primary(r)) /* still: it may have resigned */
                vr_replace_progress(r);
        } else {
            vr_tick_backup(r);
        }
        vr_join_stranded_votes(r);
        break;
    case STATUS_VIEW_CHANGE:
        vr_tick_view_change(r);
        break;
    }
}

/* The driver learned that peer's process is gone (its port refused a
 * connection): suspect it now rather than after its timeout, and act on it
 * as a tick would. Only a hint: a wrong one costs at most a view change,
 * which still needs a quorum of suspecting replicas. */
static void on_peer_down(struct replica *r, uint32_t peer)
{
    if (peer >= r->c.replica_count || peer == r->c.self ||
        detector_suspects(&r->detector, peer))
        return;
    vr_trace(r, "peer %u is down", peer);
    detector_suspect(&r->detector, peer, r->now_ms);
    on_tick(r);
}

/* Messages from the primary of our view that show it acting as primary;
 * anything else from it (a vote, a recovery) does not prove it alive. */
static bool shows_primary_alive(const struct replica *r,
                                const struct message *m)
{
    if (m->from != vr_primary_of(r, r->view))
        return true;
    if (m->view < r->view)
        return false;
    return m->type == MSG_PREPARE || m->type == MSG_COMMIT ||
           m->type == MSG_START_VIEW || m->type == MSG_NEW_STATE ||
           m->type == MSG_PING;
}

/* What the core checks of a decoded message against its own state before
 * anything acts on it (message_decode() checked the rest): a message that
 * fails is dropped and counted, never asserted on. */
static bool message_acceptable(struct replica *r, const struct message *m,
                               size_t size)
{
    if (m->from == r->c.self) {
        vr_invalid(r, "our own replica index");
        return false;
    }
    if (size > r->c.message_size_max) {
        vr_invalid(r, "larger than message_size_max");
        return false;
    }
    if (!vr_epoch_filter(r, m))
        return false; /* an epoch message, or another epoch's */
    if (m->type == MSG_RECOVERY && (m->flags & MSG_FLAG_SPARE) &&
        !vr_is_member(r, m->from)) {
        vr_on_spare(r, m->from); /* a spare asks to be added */
        return false;
    }
    if (!vr_is_member(r, m->from) &&
        !(m->type == MSG_NEW_STATE && r->catching_up)) {
        /* (A member catching up takes committed entries from anyone.) */
        vr_invalid(r, "from a replica outside the configuration");
        return false;
    }
    /* A primary never runs more than the pipeline ahead of its commit
     * number (replica_invariants()); PREPARE and START-VIEW carry its op
     * and commit. Beyond that they would grow our uncommitted suffix past
     * what one DO-VIEW-CHANGE holds. */
    if ((m->type == MSG_PREPARE || m->type == MSG_START_VIEW) &&
        m->op - m->commit > r->c.pipeline_ops_max) {
        vr_invalid(r, "op more than the pipeline above commit");
        return false;
    }
    /* VIEW_JUMP_MAX: no view change gets a group that far, and a forged
     * view must not move it near VIEW_MAX. Saturating: r->view <= VIEW_MAX
     * < UINT64_MAX - VIEW_JUMP_MAX. */
    if (m->view > r->view + VIEW_JUMP_MAX) {
        r->stats.views_refused++;
        vr_trace(r, "%s from %u for view %" PRIu64 " dropped: too far ahead",
                 message_type_name(m->type), m->from, m->view);
        return false;
    }
    return true;
}

static void on_message(struct replica *r, const uint8_t *data, size_t size)
{
    struct message m;
    if (!message_decode(data, size, r->c.replica_count, &m)) {
        vr_invalid(r, "malformed");
        return;
    }
    if (!message_acceptable(r, &m, size))
        return;
    if (m.type != MSG_RECOVERY && m.type != MSG_RECOVERY_RESPONSE &&
        shows_primary_alive(r, &m))
        detector_heard(&r->detector, m.from, r->now_ms);
    bool from_view_primary = m.from == vr_primary_of(r, m.view);
    if (m.view > r->view && vr_meta_backlogged(r) &&
        m.type != MSG_START_VIEW_CHANGE && m.type != MSG_RECOVERY &&
        m.type != MSG_RECOVERY_RESPONSE) {
        /* Its disk lags: the sender repeats it once we can follow. */
        r->stats.views_deferred++;
        return;
    }
    switch (m.type) {
    case MSG_PREPARE:
    case MSG_COMMIT:
        if (r->status == STATUS_RECOVERING || m.view < r->view ||
            !from_view_primary)
            return;
        if (m.view == r->view && replica_is_primary(r))
            return;
        if (m.type == MSG_PREPARE)
            vr_on_prepare(r, &m);
        else
            vr_on_commit(r, &m);
        return;
    case MSG_PREPARE_OK:
        vr_on_prepare_ok(r, &m);
        return;
    case MSG_START_VIEW_CHANGE:
        vr_on_start_view_change(r, &m);
        return;
    case MSG_DO_VIEW_CHANGE:
        vr_on_do_view_change(r, &m, data, size);
        return;
    case MSG_START_VIEW:
        if (from_view_primary)
            vr_on_start_view(r, &m);
        return;
    case MSG_GET_STATE:
        vr_on_get_state(r, &m);
        return;
    case MSG_NEW_STATE:
        vr_on_new_state(r, &m);
        return;
    case MSG_RECOVERY:
        vr_on_recovery(r, &m);
        return;
    case MSG_RECOVERY_RESPONSE:
        vr_on_recovery_response(r, &m);
        vr_check_recovery(r);
        return;
    case MSG_PING:
        vr_on_ping(r, &m);
        return;
    case MSG_PONG:
        vr_on_pong(r, &m);
        return;
    }
}

static void on_persisted(struct replica *r, uint64_t op, uint64_t checksum)
{
    ASSERT(r->persists_inflight > 0);
    r->persists_inflight--;
    uint64_t ours;
    if (op > r->op_persisted && log_checksum(&r->log, op, &ours) &&
        ours == checksum)
        r->op_persisted = op;
}

static void on_meta_persisted(struct replica *r, uint64_t seq)
{
    ASSERT(seq <= r->meta_seq);
    ASSERT(seq + META_RING > r->meta_seq);
    if (seq > r->meta_seq_done)
        r->meta_seq_done = seq;
    r->meta_durable = r->meta_ring[seq % META_RING];
    r->meta_durable_valid = true;
    vr_try_send_dvc(r);
    vr_check_dvc_quorum(r);
}

static void replica_invariants(const struct replica *r)
{
    ASSERT(r->applied <= r->commit);
    ASSERT(r->commit <= r->log.op);
    ASSERT(r->log.base <= r->applied);
    ASSERT(r->op_verified >= r->commit);
    ASSERT(r->op_verified <= r->log.op);
    ASSERT(r->op_persisted <= r->log.op);
    ASSERT(r->view <= VIEW_MAX);
    ASSERT(r->last_normal_view <= r->view);
    ASSERT(r->lnv_disk <= r->last_normal_view);
    /* Outside the membership it takes no part: it only asks around (the
     * mutant that acts on its durable view at start aside). */
    if (r->removed && !vr_bug(r, BUG_VOTE_BEFORE_RECOVERED))
        ASSERT(r->status == STATUS_RECOVERING);
    if (r->left)
        ASSERT(r->removed);
    if (replica_is_primary(r)) {
        ASSERT(r->last_normal_view == r->view);
        ASSERT(r->op_verified == r->log.op);
        ASSERT(r->log.op - r->commit <= r->c.pipeline_ops_max);
    }
}

void replica_config_defaults(struct replica_config *c, uint32_t replica_count,
                             uint32_t self, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    c->replica_count = replica_count;
    c->self = self;
    c->seed = seed;
    c->heartbeat_ms = 25;
    c->suspect_timeout_ms = 150;
    c->view_change_timeout_ms = 300;
    c->recovery_retry_ms = 100;
    c->pipeline_ops_max = 1024;
    c->pipeline_bytes_max = 4u << 20;
    c->batch_ops_max = 256;
    c->log_ops_max = 32768;
    c->log_bytes_max = 64u << 20;
    c->body_size_max = (1u << 20) + 4096;
    c->reply_size_max = 16u << 10;
    c->reply_keep_max = 1024;
    c->client_table_max = 1024;
    c->client_expiry_ms = 3600u * 1000u;
    c->snapshot_interval_ops = 8192;
    c->transfer_pin_ms = 120u * 1000u;
    c->message_size_max = 0; /* derived in replica_init when 0 */
}

static size_t message_size_needed(const struct replica_config *c)
{
    uint64_t ops = (uint64_t)c->pipeline_ops_max + c->batch_ops_max;
    return MESSAGE_HEADER_SIZE + ops * ENTRY_HEADER_SIZE +
           c->pipeline_bytes_max + c->body_size_max;
}

static bool config_valid(const struct replica_config *c)
{
    return c->replica_count >= 1 && c->replica_count <= COHORT_REPLICAS_MAX &&
           c->self < c->replica_count &&
           c->initial_voters <= c->replica_count && c->sm && c->sm->apply &&
           c->heartbeat_ms > 0 && c->suspect_timeout_ms > c->heartbeat_ms &&
           c->view_change_timeout_ms > 0 && c->recovery_retry_ms > 0 &&
           c->pipeline_ops_max > 0 && c->batch_ops_max > 0 &&
           c->body_size_max <= c->pipeline_bytes_max &&
           c->log_ops_max >=
               2u * c->pipeline_ops_max + c->snapshot_interval_ops &&
           c->log_bytes_max >= 2u * c->pipeline_bytes_max &&
           c->client_table_max > 0 && c->client_expiry_ms > 0 &&
           c->reply_keep_max <= c->reply_size_max &&
           c->message_size_max >= message_size_needed(c);
}

/* Everything up to the op a primary had committed when it appended our last
 * entry is committed: a primary appends op n only while n - commit <=
 * pipeline_ops_max and the uncommitted bytes fit pipeline_bytes_max. */
static uint64_t commit_floor(const struct replica *r)
{
    uint64_t op = r->log.op;
    uint64_t floor =
        op > r->c.pipeline_ops_max ? op - r->c.pipeline_ops_max : 0;
    uint64_t bytes = 0;
    for (uint64_t o = op; o > r->log.base && o > floor; o--) {
        bytes += log_header(&r->log, o)->body_size;
        if (bytes > r->c.pipeline_bytes_max) {
            floor = o;
            break;
        }
    }
    return floor > r->log.base ? floor : r->log.base;
}

/* The checkpoints kept from before the restart (the driver's file; a copy
 * of what replica_checkpoints() gave). Advisory: taking none only checks
 * less. A list that is not strictly rising, or that contradicts our log
 * where the log holds the op, is another history's (a mixed-up data
 * directory) and is refused whole: a wrong note would stop a member that
 * is right. The log holds what lies above its base, so only notes at or
 * below the base are taken. */
static void load_checkpoints(struct replica *r, const struct replica_durable *d)
{
    if (d->checkpoint_count == 0 || !d->checkpoint_op ||
        !d->checkpoint_checksum)
        return;
    for (size_t i = 0; i < d->checkpoint_count; i++) {
        uint64_t op = d->checkpoint_op[i];
        uint64_t ours;
        if (!checkpoints_due(op) || (i > 0 && op <= d->checkpoint_op[i - 1]) ||
            (op >= r->log.base && op <= r->log.op &&
             (!log_checksum(&r->log, op, &ours) ||
              ours != d->checkpoint_checksum[i]))) {
            r->stats.checkpoints_refused = true;
            return;
        }
    }
    for (size_t i = 0; i < d->checkpoint_count; i++) {
        if (d->checkpoint_op[i] > r->log.base)
            break;
        checkpoints_note(&r->checkpoints, d->checkpoint_op[i],
                         d->checkpoint_checksum[i]);
        r->stats.checkpoints_loaded++;
    }
}

size_t replica_checkpoints(const struct replica *r, uint64_t *op,
                           uint64_t *checksum, size_t max)
{
    return checkpoints_list(&r->checkpoints, op, checksum, max);
}

static bool load_durable(struct replica *r, const struct replica_durable *d)
{
    if (d->view > VIEW_MAX || d->last_normal_view > d->view)
        return false; /* storage/meta refuses such a record */
    r->fresh = !d->meta_present;
    r->view = d->view;
    r->last_normal_view = d->last_normal_view;
    r->lnv_disk = d->last_normal_view;
    if (d->membership != 0 || d->epoch != 0) {
        if (!membership_unpack(d->membership, d->epoch, r->c.replica_count,
                               &r->cfg))
            return false; /* storage/meta checks the record's checksum */
        if (d->epoch != 0 && (d->epoch_op == 0 || d->epoch_checksum == 0))
            return false;
        r->epoch_op = d->epoch_op;
        r->epoch_checksum = d->epoch_checksum;
    }
    r->removed = !vr_is_member(r, r->c.self);
    r->left = r->removed && (d->meta_flags & META_FLAG_LEFT) != 0;
    if (d->meta_present) {
        r->meta_durable = (struct replica_meta){
            .view = d->view,
            .last_normal_view = d->last_normal_view,
            .epoch = d->epoch,
            .replica_count = r->c.replica_count,
            .flags = d->meta_flags,
            .membership = membership_pack(&r->cfg),
            .epoch_op = r->epoch_op,
            .epoch_checksum = r->epoch_checksum,
        };
        r->meta_durable_valid = true;
    }
    log_reset(&r->log, d->snapshot_op, d->snapshot_checksum,
              d->snapshot_timestamp_ms);
    /* A replica without metadata never acknowledged anything (an ack needs
     * durable metadata), unless log records survive without it. A data
     * directory wiped and reused under the same replica id is beyond this:
     * replace such a replica by reconfiguration instead. */
    r->damaged = d->damaged_op != 0 || (!d->meta_present && d->entry_count) ||
                 (d->meta_flags & META_FLAG_DAMAGED) != 0;
    for (uint64_t i = 0; i < d->entry_count; i++) {
        const struct entry *e = &d->entries[i];
        uint64_t parent;
        log_checksum(&r->log, r->log.op, &parent);
        if (e->h.op != r->log.op + 1 || e->h.parent != parent ||
            (!entry_verify(&e->h, e->body) &&
             !vr_bug(r, BUG_STORAGE_TRUST_RECORD)) ||
            !log_append(&r->log, e)) {
            r->damaged = true;
            break;
        }
    }
    if (!client_table_decode(&r->table, d->client_table, d->client_table_size))
        return false;
    load_checkpoints(r, d);
    r->snapshot_op = d->snapshot_op;
    r->snapshot_checksum = d->snapshot_checksum;
    r->snapshot_timestamp_ms = d->snapshot_timestamp_ms;
    r->applied = d->snapshot_op;
    r->commit = d->snapshot_op;
    r->op_persisted = r->log.op;
    r->commit = commit_floor(r);
    /* What the log's commit notes say we knew committed (storage/wal.h):
     * usually far above the floor, which assumes a full pipeline. */
    uint64_t noted = d->commit < r->log.op ? d->commit : r->log.op;
    if (noted > r->commit)
        r->commit = noted;
    r->commit_at_start = r->commit;
    r->epoch_at_start = r->cfg.epoch;
    r->op_verified = r->commit;
    /* Restarted before the log reached the epoch's first op: fetch it
     * first (epoch.c). Recomputed, never stored. */
    uint64_t start;
    r->catching_up = r->epoch_op > r->log.base &&
                     !(log_checksum(&r->log, r->epoch_op, &start) &&
                       start == r->epoch_checksum);
    if (!r->catching_up && r->epoch_op > r->commit) {
        r->op_verified = r->epoch_op; /* decided: it started the epoch */
        r->commit = r->epoch_op;
    }
    return true;
}

static bool allocate(struct replica *r)
{
    const struct replica_config *c = &r->c;
    r->scratch_max = c->pipeline_ops_max + c->batch_ops_max + 1;
    r->action_max = c->pipeline_ops_max + 64u + 32u * c->replica_count +
                    REPLICA_READS_MAX + 1u;
    r->send_cap = (size_t)c->message_size_max * SEND_SLOTS +
                  (size_t)c->reply_size_max * 64u;
    r->table_buf_size = 0;
    bool ok =
        log_init(&r->log, c->log_ops_max, c->log_bytes_max) &&
        client_table_init(&r->table, c->client_table_max, c->reply_keep_max);
    if (!ok)
        return false;
    r->table_buf_size = client_table_encoded_size_max(&r->table);
    r->actions = calloc(r->action_max, sizeof(*r->actions));
    r->send_buf = malloc(r->send_cap);
    r->reply_buf = malloc(c->reply_size_max ? c->reply_size_max : 1);
    r->scratch = calloc(r->scratch_max, sizeof(*r->scratch));
    r->best_buf = malloc(c->message_size_max);
    r->table_buf = malloc(r->table_buf_size);
    return r->actions && r->send_buf && r->reply_buf && r->scratch &&
           r->best_buf && r->table_buf;
}

struct replica *replica_init(const struct replica_config *config,
                             const struct replica_durable *durable,
                             uint64_t now_ms)
{
    struct replica_config c = *config;
    if (c.message_size_max == 0)
        c.message_size_max = (uint32_t)message_size_needed(&c);
    if (c.reply_keep_max == 0 || c.reply_keep_max > c.reply_size_max)
        c.reply_keep_max = c.reply_size_max;
    if (!config_valid(&c))
        return NULL;
    struct replica *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->c = c;
    /* Epoch 0: the first initial_voters ids of --peers (all by default);
     * load_durable() replaces it with a later epoch's. */
    membership_all(&r->cfg, 0,
                   c.initial_voters ? c.initial_voters : c.replica_count);
    r->now_ms = now_ms;
    prng_init(&r->prng, c.seed ^ (0x51ed27u * (c.self + 1)));
    if (!allocate(r) || !load_durable(r, durable)) {
        replica_deinit(r);
        return NULL;
    }
    struct detector_config dc = {
        .peer_count = c.replica_count,
        .self = c.self,
        .timeout_base_ms = c.suspect_timeout_ms,
        .timeout_max_ms = 8u * c.suspect_timeout_ms,
        .timeout_decay_ms = 20u * c.suspect_timeout_ms,
    };
    detector_init(&r->detector, &dc, now_ms);
    r->status = STATUS_RECOVERING;
    r->nonce = prng_next(&r->prng);
    /* PING numbers start at a value drawn from the seed (the prng's stream
     * is left alone), so that no PONG from an earlier life of this replica
     * can pass for an answer to a new one. */
    r->ping_seq = (c.seed * 0x9e3779b97f4a7c15ull) >> 16;
    r->recovery_started_ms = now_ms;
    r->recovery_sent_ms = 0;
    r->best_from = UINT32_MAX;
    r->state_asked = COHORT_REPLICA_NONE;
    r->snapshot_from = COHORT_REPLICA_NONE;
    r->state_prefer = COHORT_REPLICA_NONE;
    r->diverged_from = COHORT_REPLICA_NONE;
    r->recovered_view = VIEW_NONE;
    r->peer_diverged = COHORT_REPLICA_NONE;
    r->lead_forbidden_view = VIEW_NONE;
    r->handoff_target = COHORT_REPLICA_NONE;
    r->view_op = VIEW_OP_UNKNOWN;
    vr_note_why(r, COHORT_VIEW_CAUSE_RECOVERY, c.self, COHORT_REPLICA_NONE, 0);
    r->clock_base_ms = now_ms;
    r->clock_base_ts = log_last_timestamp(&r->log);
    if (vr_bug(r, BUG_VOTE_BEFORE_RECOVERED) && durable->meta_present) {
        /* The injected bug: act on the durable view at once, as if no view
         * could have passed while we were down and our log were whole. */
        r->damaged = false;
        r->status = STATUS_VIEW_CHANGE;
        r->vc_started_ms = now_ms;
        r->best_from = UINT32_MAX;
        r->dvc_sent = false;
    }
    replica_invariants(r);
    return r;
}

void replica_deinit(struct replica *r)
{
    if (!r)
        return;
    log_deinit(&r->log);
    client_table_deinit(&r->table);
    free(r->actions);
    free(r->send_buf);
    free(r->reply_buf);
    free(r->scratch);
    free(r->best_buf);
    free(r->table_buf);
    free(r);
}

static void after_event(struct replica *r, bool force_ack, bool tick)
{
    vr_check_votes(r);
    vr_primary_try_commit(r);
    vr_apply_committed(r);
    vr_epoch_progress(r, tick);
    vr_handoff_progress(r, tick);
    vr_maybe_raise_lnv(r);
    vr_maybe_clear_damage(r);
    vr_backup_ack(r, force_ack);
    vr_flush_prepares(r);
    vr_flush_persist(r);
    vr_maybe_raise_lnv(r);
    vr_reads_progress(r);
    replica_invariants(r);
}

void replica_step(struct replica *r, const struct event *ev,
                  struct actions *out)
{
    if (ev->now_ms > r->now_ms)
        r->now_ms = ev->now_ms;
    r->action_count = 0;
    r->send_used = 0;
    if (r->damaged && !r->damage_recorded) {
        r->damage_recorded = true;
        vr_persist_meta(r); /* on record before the log is rewritten */
    }
    bool force_ack = false;
    switch (ev->type) {
    case EV_TICK:
        if (!r->diverged_op) /* it stays as it is (transfer.c) */
            on_tick(r);
        break;
    case EV_MESSAGE:
        if (r->diverged_op)
            break;
        on_message(r, ev->message.data, ev->message.size);
        force_ack = true;
        break;
    case EV_CLIENT_REQUEST:
        vr_on_client_requests(r, ev);
        break;
    case EV_PERSISTED:
        on_persisted(r, ev->persisted.op, ev->persisted.checksum);
        break;
    case EV_META_PERSISTED:
        on_meta_persisted(r, ev->meta.seq);
        break;
    case EV_SNAPSHOT_TAKEN:
        vr_on_snapshot_taken(r, ev->snapshot_taken.op);
        break;
    case EV_SNAPSHOT_INSTALLED:
        vr_on_snapshot_installed(r, ev);
        break;
    case EV_SNAPSHOT_PROGRESS:
        vr_on_snapshot_progress(r, ev->snapshot_progress.from);
        break;
    case EV_PEER_DOWN:
        on_peer_down(r, ev->peer_down.peer);
        break;
    case EV_READ:
        vr_on_read(r, ev->read.tag, ev->read.min_op);
        break;
    case EV_TRANSFER:
        vr_on_transfer(r, ev->transfer.target);
        break;
    case EV_RECONFIG:
        vr_on_reconfig(r, &ev->reconfig.next);
        break;
    }
    after_event(r, force_ack && r->status == STATUS_NORMAL,
                ev->type == EV_TICK);
    out->list = r->actions;
    out->count = r->action_count;
}

const struct entry *replica_entry(const struct replica *r, uint64_t op)
{
    static _Thread_local struct entry e;
    if (!log_entry(&r->log, op, &e))
        return NULL;
    return &e;
}

enum replica_status replica_status(const struct replica *r)
{
    return r->status;
}

uint64_t replica_view(const struct replica *r)
{
    return r->view;
}

struct cohort_view_why replica_view_why(const struct replica *r)
{
    return r->why;
}

const struct membership *replica_membership(const struct replica *r)
{
    return &r->cfg;
}

bool replica_removed(const struct replica *r)
{
    return r->removed;
}

bool replica_left(const struct replica *r)
{
    ASSERT(!r->left || r->removed);
    return r->left;
}

uint32_t replica_primary(const struct replica *r)
{
    return vr_primary_of(r, r->view);
}

bool replica_holding(const struct replica *r)
{
    return vr_handoff_active(r) || vr_wedged(r);
}

bool replica_is_primary(const struct replica *r)
{
    return r->status == STATUS_NORMAL && vr_primary_of(r, r->view) == r->c.self;
}

uint64_t replica_op(const struct replica *r)
{
    return r->log.op;
}

uint64_t replica_commit(const struct replica *r)
{
    return r->commit;
}

uint64_t replica_read_index(const struct replica *r)
{
    if (!replica_is_primary(r) || r->view_op == VIEW_OP_UNKNOWN)
        return r->commit;
    return r->commit > r->view_op ? r->commit : r->view_op;
}

uint64_t replica_applied(const struct replica *r)
{
    return r->applied;
}

uint64_t replica_log_base(const struct replica *r)
{
    return r->log.base;
}

uint64_t replica_snapshot_op(const struct replica *r)
{
    return r->snapshot_op;
}

uint64_t replica_peer_op(const struct replica *r, uint32_t peer)
{
    if (!replica_is_primary(r) || peer >= r->c.replica_count)
        return 0;
    return peer == r->c.self ? r->op_persisted : r->ack_op[peer];
}

bool replica_suspects(const struct replica *r, uint32_t peer)
{
    return detector_suspects(&r->detector, peer);
}

bool replica_heard(const struct replica *r, uint32_t peer, uint64_t *heard_ms)
{
    if (peer >= r->c.replica_count || peer == r->c.self)
        return false;
    const struct detector_peer *p = &r->detector.peers[peer];
    if (!p->heard_ever)
        return false;
    ASSERT(p->heard_ms <= r->now_ms); /* time is monotonic */
    *heard_ms = p->heard_ms;
    return true;
}

uint32_t replica_snapshot_source(const struct replica *r)
{
    return r->awaiting_snapshot ? r->snapshot_from : COHORT_REPLICA_NONE;
}

bool replica_damaged(const struct replica *r)
{
    return r->damaged;
}

bool replica_catching_up(const struct replica *r)
{
    return r->catching_up;
}

uint64_t replica_diverged(const struct replica *r, uint32_t *from)
{
    if (from)
        *from = r->diverged_from;
    return r->diverged_op;
}

uint64_t replica_peer_diverged(const struct replica *r, uint32_t *peer)
{
    if (peer)
        *peer = r->peer_diverged;
    return r->peer_diverged_op;
}

bool replica_fresh(const struct replica *r)
{
    return r->fresh;
}

void replica_distrust_fresh(struct replica *r)
{
    if (!r->fresh || r->log.op != 0 || r->damaged || replica_is_primary(r))
        return;
    /* Recorded (META_FLAG_DAMAGED) at the next step, before it acts. And
     * no longer fresh: its RECOVERY_RESPONSE stops saying it never stored
     * anything, so two such replicas cannot agree that the group is new
     * and clear their damage (vr_check_recovery()'s all_fresh) while the
     * member holding the data is down. */
    r->damaged = true;
    r->damage_recorded = false;
    r->fresh = false;
}

const struct replica_stats *replica_stats(const struct replica *r)
{
    return &r->stats;
}

const struct detector *replica_detector(const struct replica *r)
{
    return &r->detector;
}

size_t replica_client_table_size_max(const struct replica *r)
{
    return r->table_buf_size;
}

size_t replica_export(const struct replica *r, struct replica_export *out,
                      uint8_t *table, size_t table_size)
{
    ASSERT(table_size >= r->table_buf_size);
    ASSERT(r->applied >= r->log.base);
    ASSERT(r->applied <= r->commit);
    out->op = r->applied;
    out->checksum = vr_checksum_at(r, r->applied);
    const struct entry_header *h = log_header(&r->log, r->applied);
    out->timestamp_ms = h ? h->timestamp_ms : r->log.base_timestamp_ms;
    return client_table_encode(&r->table, table, table_size);
}

uint64_t replica_next_tick_ms(const struct replica *r, uint64_t now_ms)
{
    if (r->applied < r->commit || vr_handoff_ready(r))
        return 0;
    if (r->diverged_op)
        return r->c.heartbeat_ms; /* its ticks do nothing (its detector's
                                     deadlines passed: not "due now") */
    uint64_t next = r->c.heartbeat_ms;
    uint64_t d = detector_next_deadline_ms(&r->detector, now_ms);
    if (d < next)
        next = d;
    return next;
}

void replica_log_arena(const struct replica *r, void **data, size_t *size)
{
    *data = r->log.arena;
    *size = (size_t)r->log.bytes_max;
}

uint64_t replica_log_arena_used(const struct replica *r)
{
    return r->log.bytes;
}

uint32_t replica_log_arena_free(const struct replica *r, struct log_range *out)
{
    return log_free_ranges(&r->log, out);
}

uint32_t replica_message_size_max(const struct replica *r)
{
    return r->c.message_size_max;
}

uint64_t replica_config_message_size(const struct replica_config *c)
{
    return c->message_size_max ? c->message_size_max
                               : (uint64_t)message_size_needed(c);
}

const char *replica_status_name(enum replica_status status)
{
    switch (status) {
    case STATUS_RECOVERING:
        return "recovering";
    case STATUS_NORMAL:
        return "normal";
    case STATUS_VIEW_CHANGE:
        return "view_change";
    }
    return "?";
}
