/* replica — the protocol core (Viewstamped Replication Revisited with durable
 * logs, hash-chained entries and protocol-aware recovery). See replica.h for
 * the event/action contract and docs/PROTOCOL.md for the protocol as
 * implemented.
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
#include "core/replica.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "core/client_table.h"
#include "core/detector.h"
#include "core/log.h"
#include "core/message.h"
#include "core/prng.h"

#define META_RING 16
#define VIEW_OP_UNKNOWN UINT64_MAX
#define SEND_SLOTS 8

struct dvc_info {
    bool have;
    uint32_t lnv;
    uint64_t op;
    uint64_t commit;
};

struct rr_info {
    bool have;
    uint32_t view;
    uint32_t lnv;
    uint8_t status;
    uint8_t flags;
    uint64_t op;
    uint64_t commit;
};

/* A linearizable read waiting at the primary (see "Read index" in
 * docs/PROTOCOL.md): answered once applied >= index and f backups answered
 * a PING numbered seq or later in this view. */
struct pending_read {
    uint64_t tag;
    uint64_t index; /* max(commit, view_op) at arrival, or min_op */
    uint64_t seq;   /* the PING that covers it; 0: not sent yet */
};

struct replica {
    struct replica_config c;
    uint32_t f; /* failures tolerated: (replica_count - 1) / 2 */
    struct prng prng;
    uint64_t now_ms;

    enum replica_status status;
    uint32_t view;
    uint32_t last_normal_view; /* the view whose log ours is (in memory) */
    uint32_t lnv_disk;         /* the same, as safe to write to disk (inv 5) */
    uint32_t epoch;
    uint64_t view_op;    /* op at which the current view started */
    uint64_t primary_op; /* highest op the primary of this view reported */
    uint64_t commit;
    uint64_t applied;
    uint64_t op_persisted; /* durable in its current version */
    uint64_t op_verified;  /* known equal to the current primary's log */
    uint32_t persists_inflight;
    uint64_t persist_from; /* lowest op to persist at the end of the step */
    bool damaged;          /* the log lost records we may have acked */
    bool fresh;            /* nothing was ever stored */

    struct log log;
    struct client_table table;
    struct detector detector;

    /* Metadata persistence: requests in flight, newest durable. */
    uint64_t meta_seq;
    struct replica_meta meta_ring[META_RING];
    struct replica_meta meta_durable;
    bool meta_durable_valid;

    /* Primary. */
    uint64_t ack_op[COHORT_REPLICAS_MAX];
    uint64_t ack_progress_ms[COHORT_REPLICAS_MAX];
    uint64_t ack_heard_ms[COHORT_REPLICAS_MAX]; /* last PREPARE-OK, any op */
    uint64_t prepare_sent_op;
    uint64_t heartbeat_ms;
    uint64_t clock_base_ms; /* now at view start */
    uint64_t clock_base_ts; /* log time at view start */
    /* Read index: reads in arrival order, all of view reads_view. */
    struct pending_read reads[REPLICA_READS_MAX];
    uint32_t read_head, read_count;
    uint32_t reads_view;
    bool reads_unpinged; /* some read has seq 0 */
    uint64_t ping_seq;   /* the last PING sent */
    uint64_t ping_sent_ms;
    uint64_t pong_seq[COHORT_REPLICAS_MAX]; /* highest PONG, this view */

    /* Backup. */
    uint64_t acked_op;
    uint64_t state_request_ms; /* last GET_STATE sent; 0: none pending */
    bool awaiting_snapshot;

    /* View change. */
    uint32_t votes[COHORT_REPLICAS_MAX]; /* highest view each voted for */
    uint64_t vote_ms[COHORT_REPLICAS_MAX];
    uint64_t vote_since_ms[COHORT_REPLICAS_MAX]; /* voting above our view */
    uint64_t vote_sent_ms;
    uint64_t vc_started_ms;
    uint32_t vc_attempts;
    bool dvc_sent;
    uint64_t dvc_sent_ms;
    uint32_t lead_forbidden_view; /* recovered into it: never lead it */
    bool learned; /* a quorum told us the current view since the restart */
    bool damage_recorded; /* the damage mark was sent to the metadata */
    struct dvc_info dvc[COHORT_REPLICAS_MAX];
    uint32_t best_from; /* UINT32_MAX: no DVC yet */
    uint64_t best_base_checksum;
    uint8_t *best_buf; /* the raw DVC of best_from when it is not us */
    size_t best_size;

    /* Recovery. */
    uint64_t nonce;
    uint64_t recovery_started_ms;
    uint64_t recovery_sent_ms;
    struct rr_info rr[COHORT_REPLICAS_MAX];

    /* Snapshots. */
    uint64_t snapshot_op;
    uint64_t snapshot_checksum;
    uint64_t snapshot_timestamp_ms;
    bool snapshot_running;
    uint8_t *table_buf;
    size_t table_buf_size;

    /* Output of the current step. */
    struct action *actions;
    uint32_t action_count;
    uint32_t action_max;
    uint8_t *send_buf;
    size_t send_used;
    size_t send_cap;
    uint8_t *reply_buf;
    struct entry *scratch; /* entries for encoding messages */
    uint32_t scratch_max;

    struct replica_stats stats;
};

/* ---------------------------------------------------------------- helpers */

static uint32_t primary_of(const struct replica *r, uint32_t view)
{
    return view % r->c.replica_count;
}

static uint32_t quorum(const struct replica *r)
{
    return r->f + 1;
}

/* The k-th largest of v[0..n) (k from 1): what a quorum of k has reached.
 * Sorts v (descending) in place. */
static uint64_t kth_largest(uint64_t *v, uint32_t n, uint32_t k)
{
    ASSERT(k >= 1 && k <= n);
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j] > v[j - 1]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[k - 1];
}

static bool bug(const struct replica *r, enum replica_bug b)
{
    return (r->c.bugs & (uint32_t)b) != 0;
}

__attribute__((format(printf, 2, 3))) static void trace(const struct replica *r,
                                                        const char *fmt, ...)
{
    if (!r->c.trace)
        return;
    char line[256];
    int n = snprintf(
        line, sizeof(line), "r%u v%u %s op=%llu commit=%llu: ", r->c.self,
        r->view, replica_status_name(r->status), (unsigned long long)r->log.op,
        (unsigned long long)r->commit);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    r->c.trace(r->c.trace_ctx, line);
}

static struct action *action_push(struct replica *r, enum action_type type)
{
    ASSERT(r->action_count < r->action_max);
    struct action *a = &r->actions[r->action_count++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    return a;
}

static uint64_t checksum_at(const struct replica *r, uint64_t op)
{
    uint64_t sum = 0;
    bool known = log_checksum(&r->log, op, &sum);
    ASSERT(known);
    return sum;
}

/* Encode a message into the step's send buffer; NULL if it does not fit (the
 * message is dropped: the protocol tolerates loss). */
static const uint8_t *encode(struct replica *r, struct message *m,
                             const struct entry *entries, size_t *size)
{
    m->from = (uint8_t)r->c.self;
    m->epoch = r->epoch;
    size_t room = r->send_cap - r->send_used;
    if (room > r->c.message_size_max)
        room = r->c.message_size_max;
    uint8_t *at = r->send_buf + r->send_used;
    *size = message_encode(m, entries, at, room);
    if (*size == 0)
        return NULL;
    r->send_used += *size;
    return at;
}

static void send_bytes(struct replica *r, uint32_t to, const uint8_t *data,
                       size_t size)
{
    ASSERT(to != r->c.self);
    ASSERT(to < r->c.replica_count);
    if (r->action_count + 1 >= r->action_max)
        return; /* dropped; retransmission recovers */
    struct action *a = action_push(r, ACT_SEND);
    a->send.to = to;
    a->send.data = data;
    a->send.size = size;
}

static void send_to(struct replica *r, uint32_t to, struct message *m,
                    const struct entry *entries)
{
    size_t size;
    const uint8_t *data = encode(r, m, entries, &size);
    if (data)
        send_bytes(r, to, data, size);
}

static void broadcast(struct replica *r, struct message *m,
                      const struct entry *entries)
{
    size_t size;
    const uint8_t *data = encode(r, m, entries, &size);
    if (!data)
        return;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self)
            send_bytes(r, i, data, size);
}

/* Gather log entries (from, to] into scratch, bounded by the batch size and
 * the message size. Returns how many. */
static uint32_t gather(struct replica *r, uint64_t from, uint64_t to)
{
    uint32_t n = 0;
    size_t size = MESSAGE_HEADER_SIZE;
    for (uint64_t op = from + 1; op <= to && n < r->scratch_max; op++) {
        struct entry e;
        bool present = log_entry(&r->log, op, &e);
        ASSERT(present);
        size_t more = ENTRY_HEADER_SIZE + e.h.body_size;
        if (size + more > r->c.message_size_max)
            break;
        size += more;
        r->scratch[n++] = e;
    }
    return n;
}

/* ------------------------------------------------------------ persistence */

static void persist_meta(struct replica *r)
{
    struct action *a = action_push(r, ACT_PERSIST_META);
    r->meta_seq++;
    struct replica_meta meta = {
        .view = r->view,
        .last_normal_view = r->lnv_disk,
        .epoch = r->epoch,
        .replica_count = r->c.replica_count,
        .flags = r->damaged ? META_FLAG_DAMAGED : 0,
    };
    r->meta_ring[r->meta_seq % META_RING] = meta;
    a->meta.seq = r->meta_seq;
    a->meta.meta = meta;
}

static bool meta_durable_for_view(const struct replica *r)
{
    return r->meta_durable_valid && r->meta_durable.view == r->view;
}

static bool meta_durable_normal(const struct replica *r)
{
    return meta_durable_for_view(r) &&
           r->meta_durable.last_normal_view == r->view;
}

/* Note that the log changed from op on: it will be persisted at the end of
 * the step, and nothing from op on counts as durable until then. */
static void log_changed_from(struct replica *r, uint64_t op)
{
    if (r->persist_from == 0 || op < r->persist_from)
        r->persist_from = op;
    if (r->op_persisted >= op)
        r->op_persisted = op - 1;
}

static void truncate_log(struct replica *r, uint64_t op)
{
    ASSERT(op >= r->commit);
    if (op >= r->log.op)
        return;
    log_truncate(&r->log, op);
    log_changed_from(r, op + 1);
    if (r->op_verified > op)
        r->op_verified = op;
    if (r->prepare_sent_op > op)
        r->prepare_sent_op = op;
}

static void flush_persist(struct replica *r)
{
    if (r->persist_from == 0)
        return;
    /* A damaged replica writes its log only once the damage is on record:
     * a rewritten log must not look whole after another crash. */
    if (r->damaged &&
        !(r->meta_durable_valid && (r->meta_durable.flags & META_FLAG_DAMAGED)))
        return;
    uint64_t from = r->persist_from;
    r->persist_from = 0;
    ASSERT(from > r->log.base);
    struct action *a = action_push(r, ACT_PERSIST);
    a->persist.op_first = from;
    a->persist.op_last = r->log.op;
    a->persist.checksum = checksum_at(r, r->log.op);
    r->persists_inflight++;
}

/* ------------------------------------------------------------- reporting */

static void report_view(struct replica *r)
{
    struct action *a = action_push(r, ACT_VIEW);
    struct cohort_view_info *v = &a->view;
    v->epoch = r->epoch;
    v->view = r->view;
    v->primary = primary_of(r, r->view);
    v->self = r->c.self;
    v->replica_count = r->c.replica_count;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        v->roles[i] =
            i == v->primary ? COHORT_ROLE_PRIMARY : COHORT_ROLE_BACKUP;
    if (r->status == STATUS_VIEW_CHANGE)
        v->roles[r->c.self] = COHORT_ROLE_VIEW_CHANGE;
    else if (r->status == STATUS_RECOVERING)
        v->roles[r->c.self] = COHORT_ROLE_RECOVERING;
}

static void reply(struct replica *r, uint64_t client_id, uint64_t request_no,
                  enum reply_status status)
{
    if (r->action_count + 1 >= r->action_max)
        return;
    struct action *a = action_push(r, ACT_REPLY);
    a->reply.client_id = client_id;
    a->reply.request_no = request_no;
    a->reply.status = status;
    a->reply.primary_hint = primary_of(r, r->view);
}

/* Room in the reply arena for one more reply of the largest size? Replies are
 * copied there because the client table may move records while later ops
 * of the same step are applied. */
static bool reply_room(const struct replica *r)
{
    return r->send_cap - r->send_used >= r->c.reply_size_max &&
           r->action_count + 4 < r->action_max;
}

/* The stored reply of rec, or NULL if it was too large to keep. */
static const uint8_t *stored_reply(const struct replica *r,
                                   const struct client_record *rec)
{
    return rec->reply_kept ? client_table_reply(&r->table, rec) : NULL;
}

static void reply_ok(struct replica *r, const struct client_record *rec,
                     const uint8_t *data)
{
    ASSERT(r->send_cap - r->send_used >= rec->reply_size);
    struct action *a = action_push(r, ACT_REPLY);
    a->reply.client_id = rec->client_id;
    a->reply.request_no = rec->request_no;
    a->reply.op = rec->op;
    if (!data) {
        a->reply.status = REPLY_APPLIED_REPLY_LOST;
        return;
    }
    a->reply.status = REPLY_OK;
    uint8_t *copy = r->send_buf + r->send_used;
    if (rec->reply_size)
        memcpy(copy, data, rec->reply_size);
    r->send_used += rec->reply_size;
    a->reply.data = copy;
    a->reply.size = rec->reply_size;
}

/* ----------------------------------------------------------------- apply */

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
    if (e->h.kind != ENTRY_CLIENT)
        return;
    bool primary = replica_is_primary(r);
    const struct client_record *rec =
        client_table_find(&r->table, e->h.client_id);
    if (rec && e->h.request_no <= rec->request_no &&
        !bug(r, BUG_APPLY_RETRY_TWICE)) {
        /* A retry ordered twice: the first copy already took effect. */
        r->stats.requests_duplicate++;
        if (primary && e->h.request_no == rec->request_no)
            reply_ok(r, rec, stored_reply(r, rec));
        return;
    }
    if (!rec && e->h.request_no > 1) {
        /* The client was forgotten: we cannot tell whether this retry was
         * applied before, so it is not applied now. */
        if (primary)
            reply(r, e->h.client_id, e->h.request_no, REPLY_EXPIRED);
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
        reply_ok(r, rec, r->reply_buf);
}

static void request_snapshot(struct replica *r)
{
    if (r->snapshot_running || r->c.snapshot_interval_ops == 0)
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
    if (!interval_due && r->log.bytes < bytes_due)
        return;
    if (r->applied <= r->snapshot_op)
        return;
    struct action *a = action_push(r, ACT_SNAPSHOT_TAKE);
    a->snapshot_take.op = r->applied;
    a->snapshot_take.checksum = checksum_at(r, r->applied);
    a->snapshot_take.timestamp_ms =
        log_header(&r->log, r->applied)->timestamp_ms;
    size_t size =
        client_table_encode(&r->table, r->table_buf, r->table_buf_size);
    a->snapshot_take.client_table = r->table_buf;
    a->snapshot_take.client_table_size = size;
    r->snapshot_running = true;
}

static void apply_committed(struct replica *r)
{
    while (r->applied < r->commit && reply_room(r)) {
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
static void commit_to(struct replica *r, uint64_t op)
{
    if (op > r->op_verified)
        op = r->op_verified;
    if (op > r->commit) {
        r->commit = op;
        trace(r, "commit %llu", (unsigned long long)op);
    }
}

/* ------------------------------------------------- last normal view (inv 5) */

/* A backup (or a new primary) raises its durable last_normal_view to the
 * current view once its disk log equals its memory log and that log is the
 * primary's up to the op at which the view started. */
static void maybe_raise_lnv(struct replica *r)
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
    persist_meta(r);
    trace(r, "last normal view %u", r->view);
}

/* A damaged replica (its log lost records it may have acknowledged) is
 * whole again once its log is durable and equal to the primary's up to an
 * op the primary reported *after our restart* (in its RECOVERY-RESPONSE, or
 * a NEW-STATE answering a GET-STATE that carried our nonce; a delayed
 * PREPARE may report an older op): every op we acknowledged before the
 * crash was at most the op our primary had then, a view's log only grows,
 * and ops of earlier views that committed are in this view's log below
 * view_op. */
static void maybe_clear_damage(struct replica *r)
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
    persist_meta(r); /* clears the damage mark */
    trace(r, "log repaired up to %llu", (unsigned long long)r->log.op);
}

static void note_primary_op(struct replica *r, uint64_t op)
{
    if (op > r->primary_op)
        r->primary_op = op;
}

/* ------------------------------------------------------------ primary */

static uint64_t log_time(const struct replica *r)
{
    uint64_t ts = r->clock_base_ts + (r->now_ms - r->clock_base_ms);
    uint64_t last = log_last_timestamp(&r->log);
    return ts > last ? ts : last;
}

/* Send PREPAREs for (from, upto] to one replica or (to == UINT32_MAX) all.
 * Returns the last op sent; less than upto when the step's send buffer is
 * full (the rest goes out on a later step). */
static uint64_t send_prepare(struct replica *r, uint32_t to, uint64_t from,
                             uint64_t upto)
{
    while (from < upto) {
        uint32_t n = gather(r, from, upto);
        if (n == 0)
            return from;
        size_t used = r->send_used;
        struct message m = {
            .type = MSG_PREPARE,
            .view = r->view,
            .op = r->log.op,
            .commit = r->commit,
            .view_op = r->view_op,
            .checksum = checksum_at(r, from),
            .base_op = from,
            .entry_count = n,
        };
        if (to == UINT32_MAX)
            broadcast(r, &m, r->scratch);
        else
            send_to(r, to, &m, r->scratch);
        if (r->send_used == used)
            return from; /* did not fit */
        from += n;
    }
    return from;
}

static void flush_prepares(struct replica *r)
{
    if (!replica_is_primary(r) || r->prepare_sent_op >= r->log.op)
        return;
    r->prepare_sent_op =
        send_prepare(r, UINT32_MAX, r->prepare_sent_op, r->log.op);
    r->heartbeat_ms = r->now_ms;
}

static void primary_try_commit(struct replica *r)
{
    if (!replica_is_primary(r))
        return;
    uint64_t acks[COHORT_REPLICAS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self)
            acks[n++] = meta_durable_normal(r) ? r->op_persisted : 0;
        else
            acks[n++] = r->ack_op[i];
    }
    /* The quorum-th largest is durable on a quorum. */
    uint32_t q = quorum(r);
    if (bug(r, BUG_COMMIT_WITH_F) && q > 1)
        q--;
    uint64_t durable = kth_largest(acks, n, q);
    if (durable > r->commit) {
        ASSERT(durable <= r->log.op);
        commit_to(r, durable);
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
        reply(r, req->client_id, req->request_no, REPLY_RECOVERING);
        return;
    }
    if (r->status == STATUS_VIEW_CHANGE) {
        reply(r, req->client_id, req->request_no, REPLY_VIEW_CHANGE);
        return;
    }
    if (!replica_is_primary(r)) {
        reply(r, req->client_id, req->request_no, REPLY_NOT_PRIMARY);
        return;
    }
    if (req->client_id == 0 || req->request_no == 0 ||
        req->body_size > r->c.body_size_max) {
        reply(r, req->client_id, req->request_no, REPLY_TOO_BIG);
        return;
    }
    const struct client_record *rec =
        client_table_find(&r->table, req->client_id);
    if (rec && req->request_no <= rec->request_no) {
        r->stats.requests_duplicate++;
        if (req->request_no == rec->request_no && reply_room(r))
            reply_ok(r, rec, stored_reply(r, rec));
        return; /* an older request: the client has moved on */
    }
    if (!rec && req->request_no > 1 && !client_in_flight(r, req->client_id)) {
        reply(r, req->client_id, req->request_no, REPLY_EXPIRED);
        return;
    }
    if (request_in_flight(r, req->client_id, req->request_no)) {
        r->stats.requests_duplicate++;
        return; /* answered when it commits */
    }
    /* After one request of a batch is turned away, so are the rest: a
     * driver that queues and resubmits them keeps their order. */
    if (*busy || r->log.op + 1 - r->commit > r->c.pipeline_ops_max ||
        *pending_bytes + req->body_size > r->c.pipeline_bytes_max ||
        !log_has_room(&r->log, req->body_size)) {
        *busy = true;
        reply(r, req->client_id, req->request_no, REPLY_BUSY);
        return;
    }
    struct entry e = {
        .h =
            {
                .parent = checksum_at(r, r->log.op),
                .op = r->log.op + 1,
                .client_id = req->client_id,
                .request_no = req->request_no,
                .timestamp_ms = log_time(r),
                .view = r->view,
                .body_size = req->body_size,
                .epoch = r->epoch,
                .kind = ENTRY_CLIENT,
            },
        .body = req->body,
    };
    entry_seal(&e.h, e.body);
    bool appended = log_append(&r->log, &e);
    ASSERT(appended);
    *pending_bytes += req->body_size;
    log_changed_from(r, e.h.op);
    r->op_verified = r->log.op; /* the primary's log is the view's log */
}

static void on_client_requests(struct replica *r, const struct event *ev)
{
    uint64_t pending = replica_is_primary(r) ? bytes_after_commit(r) : 0;
    bool busy = false;
    for (uint32_t i = 0; i < ev->client.count; i++)
        on_request(r, &ev->client.requests[i], &pending, &busy);
}

/* ----------------------------------------------------------- read index */

/* Why a read answered this way is linearizable (docs/PROTOCOL.md, "Read
 * index"): the primary of view v, NORMAL when the read arrives, knows every
 * op committed so far is at or below max(commit, view_op). f backups that
 * answer a PING sent after the read arrived were NORMAL in view v when they
 * answered, so they had not yet sent a DO-VIEW-CHANGE for a later view; with
 * the primary they are a majority, which every later view needs, so no later
 * view had started (nor committed anything) when the read arrived. */

static void read_answer(struct replica *r, uint64_t tag,
                        enum reply_status status)
{
    struct action *a = action_push(r, ACT_READ);
    a->read.tag = tag;
    a->read.status = status;
    a->read.primary_hint = primary_of(r, r->view);
    if (status == REPLY_OK)
        r->stats.reads_served++;
}

/* Why a read cannot be served here now. */
static enum reply_status not_serving(const struct replica *r)
{
    switch (r->status) {
    case STATUS_RECOVERING:
        return REPLY_RECOVERING;
    case STATUS_VIEW_CHANGE:
        return REPLY_VIEW_CHANGE;
    case STATUS_NORMAL:
    default:
        return replica_is_primary(r) ? REPLY_VIEW_CHANGE : REPLY_NOT_PRIMARY;
    }
}

static void on_read(struct replica *r, uint64_t tag, uint64_t min_op)
{
    if (!replica_is_primary(r)) {
        read_answer(r, tag, not_serving(r));
        return;
    }
    if (r->read_count == REPLICA_READS_MAX) {
        read_answer(r, tag, REPLY_BUSY);
        return;
    }
    if (r->read_count == 0)
        r->reads_view = r->view;
    struct pending_read *p =
        &r->reads[(r->read_head + r->read_count) % REPLICA_READS_MAX];
    r->read_count++;
    p->tag = tag;
    p->index = r->commit > r->view_op ? r->commit : r->view_op;
    if (min_op > p->index)
        p->index = min_op < r->log.op ? min_op : r->log.op;
    p->seq = 0;
    r->reads_unpinged = true;
}

static void send_ping(struct replica *r)
{
    r->ping_seq++;
    r->ping_sent_ms = r->now_ms;
    r->stats.read_rounds++;
    struct message m = {
        .type = MSG_PING,
        .view = r->view,
        .nonce = r->ping_seq,
    };
    broadcast(r, &m, NULL);
}

/* The newest PING that a quorum (the primary and f backups) has answered
 * in this view; the primary counts as having answered its own last PING,
 * and no PONG is above it (on_pong). */
static uint64_t ping_confirmed(const struct replica *r)
{
    uint64_t seqs[COHORT_REPLICAS_MAX];
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        seqs[i] = i == r->c.self ? r->ping_seq : r->pong_seq[i];
    return kth_largest(seqs, r->c.replica_count, quorum(r));
}

/* After every step: fail reads if the primary lost its view, send one PING
 * for the reads that arrived, answer the reads that are now safe. */
static void reads_progress(struct replica *r)
{
    if (r->read_count == 0)
        return;
    /* Answers need room among the step's actions; what does not fit is
     * answered in a later step (every tick is one). */
    if (!replica_is_primary(r) || r->view != r->reads_view) {
        enum reply_status status = not_serving(r);
        for (; r->read_count > 0 && r->action_count < r->action_max;
             r->read_count--) {
            read_answer(r, r->reads[r->read_head].tag, status);
            r->read_head = (r->read_head + 1) % REPLICA_READS_MAX;
        }
        if (r->read_count == 0)
            r->reads_unpinged = false;
        return;
    }
    if (r->reads_unpinged) {
        send_ping(r);
        for (uint32_t k = r->read_count; k > 0; k--) {
            struct pending_read *p =
                &r->reads[(r->read_head + k - 1) % REPLICA_READS_MAX];
            if (p->seq != 0)
                break; /* the unpinged reads are the newest ones */
            p->seq = r->ping_seq;
        }
        r->reads_unpinged = false;
    }
    uint64_t confirmed =
        bug(r, BUG_READ_WITHOUT_QUORUM) ? UINT64_MAX : ping_confirmed(r);
    while (r->read_count > 0 && r->action_count < r->action_max) {
        const struct pending_read *p = &r->reads[r->read_head];
        if (p->seq > confirmed ||
            (r->applied < p->index && !bug(r, BUG_READ_WITHOUT_INDEX)))
            break;
        read_answer(r, p->tag, REPLY_OK);
        r->read_head = (r->read_head + 1) % REPLICA_READS_MAX;
        r->read_count--;
    }
}

/* Backup: answer the primary's PING if we are NORMAL in its view. */
static void on_ping(struct replica *r, const struct message *m)
{
    if (r->status != STATUS_NORMAL || m->view != r->view ||
        m->from != primary_of(r, r->view) || replica_is_primary(r))
        return;
    struct message pong = {
        .type = MSG_PONG,
        .view = r->view,
        .nonce = m->nonce,
    };
    send_to(r, m->from, &pong, NULL);
}

static void on_pong(struct replica *r, const struct message *m)
{
    if (!replica_is_primary(r) || m->view != r->view || m->nonce > r->ping_seq)
        return;
    if (m->nonce > r->pong_seq[m->from])
        r->pong_seq[m->from] = m->nonce;
}

/* ------------------------------------------------------- status changes */

static void clear_votes_upto(struct replica *r, uint32_t view)
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
        r->pong_seq[i] = 0;
    }
    r->prepare_sent_op = r->log.op;
    r->heartbeat_ms = 0;
}

/* May this replica take part in a view change (enter one, send
 * DO-VIEW-CHANGE, lead one)? Only when its log holds everything it ever
 * acknowledged and it has learned the current view. */
static bool can_vote(const struct replica *r)
{
    if (r->status == STATUS_RECOVERING)
        return false;
    return !r->damaged || bug(r, BUG_VOTE_BEFORE_RECOVERED);
}

/* May it ask for one (START-VIEW-CHANGE)? A vote is only a wish: safety
 * rests on the DO-VIEW-CHANGEs of whole logs. So a damaged replica that has
 * learned the view from a quorum may vote too, which lets a group move on
 * when it is waiting for a damaged primary, or strands it otherwise. */
static bool can_wish(const struct replica *r)
{
    return can_vote(r) || r->learned;
}

/* Join view `view` as a backup whose log is not yet known to match the
 * primary's beyond the commit number. */
static void become_backup(struct replica *r, uint32_t view)
{
    ASSERT(view >= r->view);
    ASSERT(primary_of(r, view) != r->c.self);
    bool changed = view != r->view || r->status != STATUS_NORMAL;
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
    detector_reset(&r->detector, primary_of(r, view), r->now_ms);
    if (changed) {
        persist_meta(r);
        report_view(r);
        trace(r, "backup of view %u", view);
    }
}

static void request_state(struct replica *r)
{
    if (r->status != STATUS_NORMAL || replica_is_primary(r))
        return;
    uint64_t retry = r->awaiting_snapshot ? 4u * r->c.view_change_timeout_ms
                                          : r->c.heartbeat_ms * 2u;
    if (r->state_request_ms && r->now_ms - r->state_request_ms < retry)
        return;
    r->state_request_ms = r->now_ms;
    r->awaiting_snapshot = false;
    uint64_t base = r->op_verified;
    struct message m = {
        .type = MSG_GET_STATE,
        .view = r->view,
        .commit = r->commit,
        .base_op = base,
        .checksum = checksum_at(r, base),
        .nonce = r->nonce,
    };
    send_to(r, primary_of(r, r->view), &m, NULL);
    r->stats.state_transfers++;
}

static void vote(struct replica *r, uint32_t view)
{
    if (!can_wish(r))
        return;
    /* Join the highest view others are voting for: votes are wishes, and
     * agreeing on one view gets a quorum sooner. */
    uint64_t ttl = 8u * r->c.view_change_timeout_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && r->votes[i] > view &&
            r->now_ms - r->vote_ms[i] <= ttl)
            view = r->votes[i];
    if (r->votes[r->c.self] < view)
        r->votes[r->c.self] = view;
    r->vote_ms[r->c.self] = r->now_ms;
    r->vote_sent_ms = r->now_ms;
    struct message m = {.type = MSG_START_VIEW_CHANGE,
                        .view = r->votes[r->c.self]};
    broadcast(r, &m, NULL);
}

static void try_send_dvc(struct replica *r);
static void record_dvc(struct replica *r, uint32_t from, uint32_t lnv,
                       uint64_t op, uint64_t commit, uint64_t base_checksum,
                       const uint8_t *raw, size_t raw_size);

/* Enter the view change for `view` (VR Revisited §4.2 step 2). */
static void enter_view_change(struct replica *r, uint32_t view)
{
    ASSERT(view > r->view || (view == r->view && r->status != STATUS_NORMAL));
    ASSERT(can_vote(r));
    r->view = view;
    r->status = STATUS_VIEW_CHANGE;
    r->vc_started_ms = r->now_ms;
    r->dvc_sent = false;
    r->view_op = 0;
    r->op_verified = r->commit;
    r->best_from = UINT32_MAX;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        r->dvc[i].have = false;
    persist_meta(r);
    report_view(r);
    trace(r, "view change to %u", view);
    vote(r, view);
    try_send_dvc(r);
}

/* Count votes: enter the view change for the highest view that a quorum
 * has voted for, if it is above ours. A vote from a replica that still hears
 * the primary never happens, so a returning replica alone cannot force a
 * healthy group into a view change. */
static void check_votes(struct replica *r)
{
    if (!can_vote(r))
        return;
    uint64_t ttl = 8u * r->c.view_change_timeout_ms;
    uint64_t views[COHORT_REPLICAS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (r->votes[i] && r->now_ms - r->vote_ms[i] <= ttl)
            views[n++] = r->votes[i];
    }
    if (n < quorum(r))
        return;
    uint32_t target = (uint32_t)kth_largest(views, n, quorum(r));
    if (target > r->view)
        enter_view_change(r, target);
}

static void try_send_dvc(struct replica *r)
{
    if (r->status != STATUS_VIEW_CHANGE || !can_vote(r))
        return;
    if (!meta_durable_for_view(r))
        return; /* DVC promises we left older views: durable first */
    uint32_t primary = primary_of(r, r->view);
    if (primary == r->c.self && r->view == r->lead_forbidden_view)
        return; /* we may have led this view before a crash: let it pass */
    if (primary == r->c.self) {
        if (!r->dvc[r->c.self].have)
            record_dvc(r, r->c.self, r->last_normal_view, r->log.op, r->commit,
                       checksum_at(r, r->commit), NULL, 0);
        r->dvc_sent = true;
        return;
    }
    uint32_t n = gather(r, r->commit, r->log.op);
    /* The pipeline bounds keep the uncommitted suffix within one message. */
    ASSERT(r->commit + n == r->log.op);
    struct message m = {
        .type = MSG_DO_VIEW_CHANGE,
        .view = r->view,
        .last_normal_view = r->last_normal_view,
        .op = r->log.op,
        .commit = r->commit,
        .base_op = r->commit,
        .checksum = checksum_at(r, r->commit),
        .entry_count = n,
    };
    send_to(r, primary, &m, r->scratch);
    r->dvc_sent = true;
    r->dvc_sent_ms = r->now_ms;
}

/* ----------------------------------------------------- new primary (§4.2) */

static bool dvc_better(const struct replica *r, uint32_t lnv, uint64_t op)
{
    if (r->best_from == UINT32_MAX)
        return true;
    if (bug(r, BUG_ADOPT_ANY_LOG))
        return false; /* keeps the first log it saw */
    const struct dvc_info *b = &r->dvc[r->best_from];
    return lnv > b->lnv || (lnv == b->lnv && op > b->op);
}

/* Record a DO-VIEW-CHANGE (ours has raw == NULL) and keep the best log:
 * highest last normal view, then highest op (VR Revisited §4.2 step 3). */
static void record_dvc(struct replica *r, uint32_t from, uint32_t lnv,
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
        truncate_log(r, e.h.op - 1);
        if (!log_append(&r->log, &e))
            return ADOPT_FETCH; /* no room: retried on the next tick */
        log_changed_from(r, e.h.op);
    }
    truncate_log(r, m.op);
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
    uint32_t n = gather(r, base, r->log.op);
    struct message m = {
        .type = MSG_START_VIEW,
        .view = r->view,
        .op = r->log.op,
        .commit = r->commit,
        .view_op = r->view_op,
        .base_op = base,
        .checksum = checksum_at(r, base),
        .entry_count = n,
    };
    if (base + n < r->log.op) {
        /* Too much to send: send none; backups fetch with GET-STATE. */
        m.base_op = r->log.op;
        m.checksum = checksum_at(r, r->log.op);
        m.entry_count = 0;
    }
    if (to == UINT32_MAX)
        broadcast(r, &m, r->scratch);
    else
        send_to(r, to, &m, r->scratch);
}

static void start_view(struct replica *r)
{
    ASSERT(r->status == STATUS_VIEW_CHANGE);
    ASSERT(primary_of(r, r->view) == r->c.self);
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
    report_view(r);
    trace(r, "start view %u as primary (op %llu)", r->view,
          (unsigned long long)r->log.op);
    send_start_view(r, UINT32_MAX);
    /* The durable lnv follows once the adopted log is on disk; our own copy
     * counts toward commits only then (invariant 4). */
    maybe_raise_lnv(r);
}

static void fetch_committed_from(struct replica *r, uint32_t from)
{
    if (r->state_request_ms &&
        r->now_ms - r->state_request_ms < r->c.heartbeat_ms * 2u)
        return;
    r->state_request_ms = r->now_ms;
    struct message m = {
        .type = MSG_GET_STATE,
        .view = r->view,
        .commit = r->commit,
        .base_op = r->commit,
        .checksum = checksum_at(r, r->commit),
    };
    send_to(r, from, &m, NULL);
}

/* With a quorum of DVCs (ours among them), adopt the best log and start the
 * view (VR Revisited §4.2 steps 3-5). */
static void check_dvc_quorum(struct replica *r)
{
    if (r->status != STATUS_VIEW_CHANGE || primary_of(r, r->view) != r->c.self)
        return;
    if (!r->dvc[r->c.self].have)
        return;
    uint32_t count = 0;
    uint64_t commit = r->commit;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (!r->dvc[i].have)
            continue;
        count++;
        if (r->dvc[i].commit > commit)
            commit = r->dvc[i].commit;
    }
    if (count < quorum(r))
        return;
    enum adopt_result adopted = adopt_best_log(r);
    if (adopted == ADOPT_FETCH)
        fetch_committed_from(r, r->best_from);
    if (adopted != ADOPT_DONE)
        return;
    ASSERT(commit <= r->log.op);
    r->op_verified = r->log.op;
    commit_to(r, commit);
    start_view(r);
}

/* ------------------------------------------------------ log adoption */

/* Adopt m's entries up to op `upto` into our log, replacing whatever differs;
 * our checksum at m->base_op must equal m->checksum (so our log up to there
 * is the sender's). Returns the last op adopted (m->base_op if none). */
static uint64_t adopt_entries(struct replica *r, const struct message *m,
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
        truncate_log(r, e.h.op - 1);
        if (!log_append(&r->log, &e))
            break; /* full: the rest comes again later */
        log_changed_from(r, e.h.op);
        last = e.h.op;
    }
    return last;
}

static bool attaches(const struct replica *r, const struct message *m)
{
    uint64_t ours;
    return log_checksum(&r->log, m->base_op, &ours) && ours == m->checksum;
}

/* After adopting the primary's log up to op, drop what follows it if it
 * came from an older view. Entries prepared in this view by its primary are
 * kept: a START-VIEW or NEW-STATE may be older than PREPAREs we already
 * took, and only the primary of a view stamps entries with that view. */
static void truncate_older_views_after(struct replica *r, uint64_t op)
{
    if (op < r->op_verified)
        op = r->op_verified;
    while (op < r->log.op && log_header(&r->log, op + 1)->view == r->view)
        op++;
    truncate_log(r, op);
}

/* ------------------------------------------------------ message handlers */

/* Backup: PREPARE, VR Revisited §4.1 step 4. */
static void on_prepare(struct replica *r, const struct message *m)
{
    if (m->view > r->view || r->status == STATUS_VIEW_CHANGE)
        become_backup(r, m->view);
    r->view_op = m->view_op;
    if (!attaches(r, m)) {
        /* Our entries up to op_verified are this primary's or committed in
         * a later view; a PREPARE that contradicts them comes from a log a
         * later view superseded, and is dropped. Beyond them, we are
         * missing something: ask. */
        if (m->base_op >= r->log.base && m->base_op > r->op_verified)
            request_state(r);
        return;
    }
    uint64_t last = adopt_entries(r, m, UINT64_MAX);
    if (last > r->op_verified)
        r->op_verified = last;
    commit_to(r, m->commit);
    if (last < m->base_op + m->entry_count)
        request_state(r);
}

/* Primary: PREPARE-OK, VR Revisited §4.1 step 5. */
static void on_prepare_ok(struct replica *r, const struct message *m)
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
    }
}

/* Backup: COMMIT (the primary's heartbeat), VR Revisited §4.1 step 7. */
static void on_commit(struct replica *r, const struct message *m)
{
    if (m->view > r->view || r->status == STATUS_VIEW_CHANGE)
        become_backup(r, m->view);
    r->view_op = m->view_op;
    uint64_t ours;
    if (log_checksum(&r->log, m->commit, &ours) && ours == m->checksum) {
        if (m->commit > r->op_verified)
            r->op_verified = m->commit;
        commit_to(r, m->commit);
    }
    if (r->op_verified < m->commit || r->view_op == VIEW_OP_UNKNOWN ||
        r->op_verified < r->view_op)
        request_state(r);
}

static void on_start_view_change(struct replica *r, const struct message *m)
{
    if (m->view > r->votes[m->from])
        r->votes[m->from] = m->view;
    r->vote_ms[m->from] = r->now_ms;
    if (m->view > r->view && r->vote_since_ms[m->from] == 0)
        r->vote_since_ms[m->from] = r->now_ms;
}

/* A replica left in a higher view by a view change that did not finish
 * keeps voting above us and can never rejoin a lower view (view numbers
 * only grow). Only a view change the group itself began can strand a
 * replica (a lone replica never enters one), so after several timeouts we
 * join its vote rather than leave it out forever. */
static void join_stranded_votes(struct replica *r)
{
    uint64_t patience = 4u * r->c.view_change_timeout_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self || r->votes[i] <= r->view ||
            r->vote_since_ms[i] == 0)
            continue;
        if (r->now_ms - r->vote_since_ms[i] >= patience &&
            r->now_ms - r->vote_ms[i] <= r->c.view_change_timeout_ms) {
            r->vote_since_ms[i] = r->now_ms;
            vote(r, r->votes[i]);
        }
    }
}

/* New primary: DO-VIEW-CHANGE, VR Revisited §4.2 step 3. */
static void on_do_view_change(struct replica *r, const struct message *m,
                              const uint8_t *raw, size_t raw_size)
{
    if (r->status == STATUS_RECOVERING)
        return; /* we learn the view through recovery first */
    if (m->view > r->view) {
        if (!can_vote(r))
            return;
        enter_view_change(r, m->view);
    }
    if (m->view < r->view)
        return;
    if (replica_is_primary(r)) {
        send_start_view(r, m->from); /* it missed START-VIEW */
        return;
    }
    if (r->status != STATUS_VIEW_CHANGE || primary_of(r, r->view) != r->c.self)
        return;
    record_dvc(r, m->from, m->last_normal_view, m->op, m->commit, m->checksum,
               raw, raw_size);
    check_dvc_quorum(r);
}

/* Backup: START-VIEW, VR Revisited §4.2 step 5. */
static void on_start_view(struct replica *r, const struct message *m)
{
    if (m->view < r->view || r->status == STATUS_RECOVERING)
        return;
    if (m->view == r->view && r->status == STATUS_NORMAL &&
        r->op_verified >= m->op)
        return; /* a duplicate */
    if (m->view > r->view || r->status != STATUS_NORMAL)
        become_backup(r, m->view);
    r->view_op = m->view_op;
    if (!attaches(r, m)) {
        request_state(r);
        return;
    }
    uint64_t last = adopt_entries(r, m, UINT64_MAX);
    if (last > r->op_verified)
        r->op_verified = last;
    if (last == m->op)
        truncate_older_views_after(r, m->op);
    commit_to(r, m->commit);
    if (r->op_verified < m->op)
        request_state(r);
}

/* Any replica: GET-STATE (VR Revisited §5.2). The primary serves its whole
 * log; others serve only committed entries, which never change. */
static void on_get_state(struct replica *r, const struct message *m)
{
    if (r->status == STATUS_RECOVERING)
        return;
    uint64_t limit = replica_is_primary(r) ? r->log.op : r->commit;
    uint64_t start = m->base_op;
    uint64_t ours;
    if (start >= r->log.base &&
        (!log_checksum(&r->log, start, &ours) || ours != m->checksum))
        start = m->commit; /* diverged after its commit: resend from there */
    if (start < r->log.base) {
        if (r->snapshot_op == 0 || r->snapshot_op < r->log.base)
            return;
        struct message snap = {.type = MSG_NEW_STATE,
                               .view = r->view,
                               .status = (uint8_t)r->status,
                               .flags = MSG_FLAG_SNAPSHOT,
                               .op = limit,
                               .commit = r->commit,
                               .base_op = r->snapshot_op};
        send_to(r, m->from, &snap, NULL);
        struct action *a = action_push(r, ACT_SNAPSHOT_SEND);
        a->snapshot_send.to = m->from;
        return;
    }
    if (start > r->log.op)
        return; /* it is ahead of us */
    if (start > limit)
        start = limit;
    uint32_t n = gather(r, start, limit);
    struct message reply_m = {
        .type = MSG_NEW_STATE,
        .view = r->view,
        .nonce = m->nonce,
        .status = (uint8_t)r->status, /* only a NORMAL primary's counts */
        .op = limit,
        .commit = r->commit,
        .view_op = r->view_op,
        .base_op = start,
        .checksum = checksum_at(r, start),
        .entry_count = n,
    };
    send_to(r, m->from, &reply_m, r->scratch);
}

/* NEW-STATE: entries up to the sender's commit are the group's; beyond it
 * they are the primary's log and count only when the primary of our view
 * sent them. */
static void on_new_state(struct replica *r, const struct message *m)
{
    if (r->status == STATUS_RECOVERING)
        return;
    /* Only a primary that has started its view speaks for the view's log;
     * a replica still changing views serves committed entries alone. */
    bool from_primary =
        m->from == primary_of(r, m->view) && m->status == STATUS_NORMAL;
    if (from_primary && m->view > r->view)
        become_backup(r, m->view); /* that view started without us */
    if (m->flags & MSG_FLAG_SNAPSHOT) {
        r->awaiting_snapshot = true;
        return;
    }
    if (!attaches(r, m))
        return;
    bool trusted = from_primary && m->view == r->view &&
                   r->status == STATUS_NORMAL && !replica_is_primary(r);
    uint64_t upto = trusted ? m->op : m->commit;
    uint64_t last = adopt_entries(r, m, upto);
    /* Untrusted, only what the sender knows committed is the group's: our
     * entries may match its log further, but that log may be superseded. */
    uint64_t known = trusted || last <= m->commit ? last : m->commit;
    if (known > r->op_verified)
        r->op_verified = known;
    commit_to(r, trusted ? m->commit : known);
    r->state_request_ms = 0;
    if (trusted) {
        r->view_op = m->view_op;
        if (m->nonce == r->nonce) /* answers a request made since restart */
            note_primary_op(r, m->op);
        if (last == m->op)
            truncate_older_views_after(r, m->op);
        else
            request_state(r);
    }
    check_dvc_quorum(r);
}

/* ----------------------------------------------------------- recovery */

static void send_recovery(struct replica *r)
{
    r->recovery_sent_ms = r->now_ms;
    struct message m = {
        .type = MSG_RECOVERY, .view = r->view, .nonce = r->nonce};
    size_t size;
    const uint8_t *data = encode(r, &m, NULL, &size);
    if (!data)
        return;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && !r->rr[i].have)
            send_bytes(r, i, data, size);
}

/* Start a new round of recovery: a fresh nonce makes older answers
 * worthless, so what we learn describes the group as it is now. */
static void recovery_round(struct replica *r)
{
    r->nonce = prng_next(&r->prng);
    r->recovery_started_ms = r->now_ms;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        r->rr[i].have = false;
    send_recovery(r);
}

/* Any replica: RECOVERY (VR Revisited §4.3 step 2). Recovering replicas
 * answer too, with their durable state, so a group that restarts all at
 * once can recover. */
static void on_recovery(struct replica *r, const struct message *m)
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
    send_to(r, m->from, &reply_m, NULL);
    /* Our primary restarted: it is not acting as primary any more. */
    if (r->status == STATUS_NORMAL && m->from == primary_of(r, r->view) &&
        m->from != r->c.self)
        detector_suspect(&r->detector, m->from, r->now_ms);
}

static void on_recovery_response(struct replica *r, const struct message *m)
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
static void check_recovery(struct replica *r)
{
    if (r->status != STATUS_RECOVERING)
        return;
    uint32_t count = 1;
    uint32_t view = r->view;
    bool all_fresh = r->fresh;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self || !r->rr[i].have)
            continue;
        count++;
        if (r->rr[i].view > view)
            view = r->rr[i].view;
        if (!(r->rr[i].flags & MSG_FLAG_FRESH) || r->rr[i].op != 0)
            all_fresh = false;
    }
    if (count < quorum(r))
        return;
    r->learned = true;
    uint32_t primary = primary_of(r, view);
    const struct rr_info *p = &r->rr[primary];
    if (primary != r->c.self && p->have && p->status == STATUS_NORMAL &&
        p->view == view) {
        trace(r, "recovered: view %u primary %u", view, primary);
        r->view_op = VIEW_OP_UNKNOWN;
        become_backup(r, view);
        note_primary_op(r, p->op); /* its op after our restart */
        request_state(r);
        return;
    }
    if (r->now_ms - r->recovery_started_ms < 2u * r->c.recovery_retry_ms)
        return; /* give the primary time to answer */
    if (all_fresh) {
        r->damaged = false; /* a quorum never stored anything: nothing lost */
    }
    if (r->damaged && !bug(r, BUG_VOTE_BEFORE_RECOVERED)) {
        /* Wait for a normal primary to repair us, and ask for a view that
         * will have one. */
        if (r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms)
            vote(r, view + 1);
        return;
    }
    /* Wait in `view` (a live primary of it pulls us back in with its next
     * message) and vote for the next one. We never lead `view` itself: if
     * we were its primary we may have started it before the crash, and a
     * view must never start twice with different logs. */
    trace(r, "recovered: no normal primary for view %u", view);
    r->status = STATUS_VIEW_CHANGE;
    r->lead_forbidden_view = view;
    enter_view_change(r, view);
    vote(r, view + 1);
}

/* --------------------------------------------------------------- ticks */

static uint64_t vc_deadline(struct replica *r)
{
    uint32_t attempts = r->vc_attempts < 4 ? r->vc_attempts : 4;
    return r->vc_started_ms +
           (uint64_t)r->c.view_change_timeout_ms * (1u + attempts);
}

/* Check quorum: a primary that has not heard PREPARE-OK from enough backups
 * for a while may have been left behind by a view change it cannot see;
 * it votes for the next view so that the group can gather a quorum. */
static void primary_check_quorum(struct replica *r)
{
    uint64_t window = 4u * r->c.suspect_timeout_ms;
    uint32_t heard = 1;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && r->now_ms - r->ack_heard_ms[i] <= window)
            heard++;
    if (heard >= quorum(r))
        return;
    if (r->votes[r->c.self] <= r->view ||
        r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms / 2)
        vote(r, r->view + 1);
}

static void tick_primary(struct replica *r)
{
    primary_check_quorum(r);
    /* A PING or its PONGs were lost: a newer PING covers the older reads. */
    if (r->read_count > 0 && r->now_ms - r->ping_sent_ms >= r->c.heartbeat_ms)
        r->reads_unpinged = true;
    if (r->now_ms - r->heartbeat_ms >= r->c.heartbeat_ms) {
        r->heartbeat_ms = r->now_ms;
        struct message m = {
            .type = MSG_COMMIT,
            .view = r->view,
            .op = r->log.op,
            .commit = r->commit,
            .view_op = r->view_op,
            .checksum = checksum_at(r, r->commit),
        };
        broadcast(r, &m, NULL);
    }
    /* Retransmit to backups whose acknowledgements stalled. */
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == r->c.self || r->ack_op[i] >= r->prepare_sent_op)
            continue;
        if (r->now_ms - r->ack_progress_ms[i] < 2u * r->c.heartbeat_ms)
            continue;
        r->ack_progress_ms[i] = r->now_ms;
        uint64_t from = r->ack_op[i] > r->commit ? r->ack_op[i] : r->commit;
        if (from < r->log.base)
            from = r->log.base;
        send_prepare(r, i, from, r->prepare_sent_op);
    }
}

static void tick_backup(struct replica *r)
{
    uint32_t primary = primary_of(r, r->view);
    if (detector_suspects(&r->detector, primary)) {
        if (r->votes[r->c.self] <= r->view ||
            r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms / 2)
            vote(r, r->view + 1);
    }
    if (r->view_op == VIEW_OP_UNKNOWN || r->op_verified < r->view_op ||
        r->state_request_ms || r->damaged)
        request_state(r);
}

static void tick_view_change(struct replica *r)
{
    if (r->now_ms >= vc_deadline(r)) {
        r->vc_attempts++;
        r->vc_started_ms =
            r->now_ms +
            prng_below(&r->prng, r->c.view_change_timeout_ms / 4 + 1);
        vote(r, r->view + 1);
        return;
    }
    if (r->now_ms - r->vote_sent_ms >= r->c.view_change_timeout_ms / 2)
        vote(r, r->votes[r->c.self] > r->view ? r->votes[r->c.self] : r->view);
    if (primary_of(r, r->view) == r->c.self) {
        try_send_dvc(r);
        check_dvc_quorum(r);
    } else if (!r->dvc_sent ||
               r->now_ms - r->dvc_sent_ms >= r->c.view_change_timeout_ms / 2) {
        r->dvc_sent = false;
        try_send_dvc(r);
    }
}

static void on_tick(struct replica *r)
{
    detector_tick(&r->detector, r->now_ms);
    switch (r->status) {
    case STATUS_RECOVERING:
        if (r->now_ms - r->recovery_started_ms >= 5u * r->c.recovery_retry_ms)
            recovery_round(r); /* answers went stale: ask again */
        else if (r->now_ms - r->recovery_sent_ms >= r->c.recovery_retry_ms)
            send_recovery(r);
        check_recovery(r);
        break;
    case STATUS_NORMAL:
        if (replica_is_primary(r))
            tick_primary(r);
        else
            tick_backup(r);
        join_stranded_votes(r);
        break;
    case STATUS_VIEW_CHANGE:
        tick_view_change(r);
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
    trace(r, "peer %u is down", peer);
    detector_suspect(&r->detector, peer, r->now_ms);
    on_tick(r);
}

/* ------------------------------------------------------------ dispatch */

/* Messages from the primary of our view that show it acting as primary;
 * anything else from it (a vote, a recovery) does not prove it alive. */
static bool shows_primary_alive(const struct replica *r,
                                const struct message *m)
{
    if (m->from != primary_of(r, r->view))
        return true;
    if (m->view < r->view)
        return false;
    return m->type == MSG_PREPARE || m->type == MSG_COMMIT ||
           m->type == MSG_START_VIEW || m->type == MSG_NEW_STATE ||
           m->type == MSG_PING;
}

static void on_message(struct replica *r, const uint8_t *data, size_t size)
{
    struct message m;
    if (!message_decode(data, size, r->c.replica_count, &m) ||
        m.from == r->c.self) {
        r->stats.messages_invalid++;
        return;
    }
    if (m.type != MSG_RECOVERY && m.type != MSG_RECOVERY_RESPONSE &&
        shows_primary_alive(r, &m))
        detector_heard(&r->detector, m.from, r->now_ms);
    bool from_view_primary = m.from == primary_of(r, m.view);
    switch (m.type) {
    case MSG_PREPARE:
    case MSG_COMMIT:
        if (r->status == STATUS_RECOVERING || m.view < r->view ||
            !from_view_primary)
            return;
        if (m.view == r->view && replica_is_primary(r))
            return;
        if (m.type == MSG_PREPARE)
            on_prepare(r, &m);
        else
            on_commit(r, &m);
        return;
    case MSG_PREPARE_OK:
        on_prepare_ok(r, &m);
        return;
    case MSG_START_VIEW_CHANGE:
        on_start_view_change(r, &m);
        return;
    case MSG_DO_VIEW_CHANGE:
        on_do_view_change(r, &m, data, size);
        return;
    case MSG_START_VIEW:
        if (from_view_primary)
            on_start_view(r, &m);
        return;
    case MSG_GET_STATE:
        on_get_state(r, &m);
        return;
    case MSG_NEW_STATE:
        on_new_state(r, &m);
        return;
    case MSG_RECOVERY:
        on_recovery(r, &m);
        return;
    case MSG_RECOVERY_RESPONSE:
        on_recovery_response(r, &m);
        check_recovery(r);
        return;
    case MSG_PING:
        on_ping(r, &m);
        return;
    case MSG_PONG:
        on_pong(r, &m);
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
    r->meta_durable = r->meta_ring[seq % META_RING];
    r->meta_durable_valid = true;
    try_send_dvc(r);
    check_dvc_quorum(r);
}

static void on_snapshot_taken(struct replica *r, uint64_t op)
{
    r->snapshot_running = false;
    if (op <= r->snapshot_op || op > r->applied)
        return;
    r->snapshot_op = op;
    r->snapshot_checksum = checksum_at(r, op);
    r->snapshot_timestamp_ms = log_header(&r->log, op)
                                   ? log_header(&r->log, op)->timestamp_ms
                                   : r->log.base_timestamp_ms;
    r->stats.snapshots_taken++;
    /* Keep some entries behind the snapshot for backups that lag a little,
     * so they catch up from the log rather than by a whole snapshot. */
    uint64_t keep = r->c.snapshot_interval_ops / 2;
    uint64_t to = op > keep ? op - keep : 0;
    /* ... but no more than a quarter of the arena's bytes. */
    uint64_t kept_bytes = 0;
    for (uint64_t o = op; o > to && o > r->log.base; o--) {
        kept_bytes += log_header(&r->log, o)->body_size;
        if (kept_bytes > r->log.bytes_max / 4) {
            to = o;
            break;
        }
    }
    if (to <= r->log.base)
        return;
    log_compact(&r->log, to);
    struct action *a = action_push(r, ACT_LOG_COMPACT);
    a->compact.op = to;
}

static void on_snapshot_installed(struct replica *r, const struct event *ev)
{
    uint64_t op = ev->snapshot.op;
    ASSERT(op > r->applied);
    uint64_t ours;
    bool keep =
        log_checksum(&r->log, op, &ours) && ours == ev->snapshot.checksum;
    if (keep) {
        log_compact(&r->log, op);
    } else {
        log_reset(&r->log, op, ev->snapshot.checksum,
                  ev->snapshot.timestamp_ms);
        r->op_persisted = op;
        r->persist_from = 0;
        r->prepare_sent_op = op;
        /* Nothing of our old log continues the snapshot: have the driver
         * drop it from disk too (a truncation after op). */
        log_changed_from(r, op + 1);
    }
    bool decoded = client_table_decode(&r->table, ev->snapshot.client_table,
                                       ev->snapshot.client_table_size);
    ASSERT(decoded); /* the driver verified the snapshot's checksum */
    r->applied = op;
    if (r->commit < op)
        r->commit = op;
    if (r->op_verified < op)
        r->op_verified = op;
    if (r->op_persisted < op)
        r->op_persisted = op;
    r->snapshot_op = op;
    r->snapshot_checksum = ev->snapshot.checksum;
    r->snapshot_timestamp_ms = ev->snapshot.timestamp_ms;
    r->awaiting_snapshot = false;
    r->state_request_ms = 0;
    r->stats.snapshots_installed++;
    struct action *a = action_push(r, ACT_LOG_COMPACT);
    a->compact.op = op;
    trace(r, "installed snapshot at %llu", (unsigned long long)op);
    request_state(r);
}

/* Backup: acknowledge what is durable and known to be the primary's. */
static void backup_ack(struct replica *r, bool force)
{
    if (r->status != STATUS_NORMAL || replica_is_primary(r))
        return;
    if (!meta_durable_normal(r))
        return;
    uint64_t ack =
        r->op_persisted < r->op_verified ? r->op_persisted : r->op_verified;
    if (bug(r, BUG_ACK_BEFORE_DURABLE))
        ack = r->op_verified;
    if (ack < r->log.base || (ack <= r->acked_op && !force))
        return;
    r->acked_op = ack;
    struct message m = {.type = MSG_PREPARE_OK,
                        .view = r->view,
                        .op = ack,
                        .checksum = checksum_at(r, ack)};
    send_to(r, primary_of(r, r->view), &m, NULL);
}

/* ---------------------------------------------------------- invariants */

static void replica_invariants(const struct replica *r)
{
    ASSERT(r->applied <= r->commit);
    ASSERT(r->commit <= r->log.op);
    ASSERT(r->log.base <= r->applied);
    ASSERT(r->op_verified >= r->commit);
    ASSERT(r->op_verified <= r->log.op);
    ASSERT(r->op_persisted <= r->log.op);
    ASSERT(r->last_normal_view <= r->view);
    ASSERT(r->lnv_disk <= r->last_normal_view);
    if (replica_is_primary(r)) {
        ASSERT(r->last_normal_view == r->view);
        ASSERT(r->op_verified == r->log.op);
        ASSERT(r->log.op - r->commit <= r->c.pipeline_ops_max);
    }
}

/* ------------------------------------------------------------- the API */

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
           c->self < c->replica_count && c->sm && c->sm->apply &&
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

static bool load_durable(struct replica *r, const struct replica_durable *d)
{
    r->fresh = !d->meta_present;
    r->view = d->view;
    r->last_normal_view = d->last_normal_view;
    r->lnv_disk = d->last_normal_view;
    r->epoch = d->epoch;
    if (d->meta_present) {
        r->meta_durable = (struct replica_meta){
            .view = d->view,
            .last_normal_view = d->last_normal_view,
            .epoch = d->epoch,
            .replica_count = r->c.replica_count,
            .flags = d->meta_flags,
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
            !entry_verify(&e->h, e->body) || !log_append(&r->log, e)) {
            r->damaged = true;
            break;
        }
    }
    if (!client_table_decode(&r->table, d->client_table, d->client_table_size))
        return false;
    r->snapshot_op = d->snapshot_op;
    r->snapshot_checksum = d->snapshot_checksum;
    r->snapshot_timestamp_ms = d->snapshot_timestamp_ms;
    r->applied = d->snapshot_op;
    r->commit = d->snapshot_op;
    r->op_persisted = r->log.op;
    r->commit = commit_floor(r);
    r->op_verified = r->commit;
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
    r->f = (c.replica_count - 1) / 2;
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
    r->lead_forbidden_view = UINT32_MAX;
    r->view_op = VIEW_OP_UNKNOWN;
    r->clock_base_ms = now_ms;
    r->clock_base_ts = log_last_timestamp(&r->log);
    if (bug(r, BUG_VOTE_BEFORE_RECOVERED) && durable->meta_present) {
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

static void after_event(struct replica *r, bool force_ack)
{
    check_votes(r);
    primary_try_commit(r);
    apply_committed(r);
    maybe_raise_lnv(r);
    maybe_clear_damage(r);
    backup_ack(r, force_ack);
    flush_prepares(r);
    flush_persist(r);
    maybe_raise_lnv(r);
    reads_progress(r);
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
        persist_meta(r); /* on record before the log is rewritten */
    }
    bool force_ack = false;
    switch (ev->type) {
    case EV_TICK:
        on_tick(r);
        break;
    case EV_MESSAGE:
        on_message(r, ev->message.data, ev->message.size);
        force_ack = true;
        break;
    case EV_CLIENT_REQUEST:
        on_client_requests(r, ev);
        break;
    case EV_PERSISTED:
        on_persisted(r, ev->persisted.op, ev->persisted.checksum);
        break;
    case EV_META_PERSISTED:
        on_meta_persisted(r, ev->meta.seq);
        break;
    case EV_SNAPSHOT_TAKEN:
        on_snapshot_taken(r, ev->snapshot_taken.op);
        break;
    case EV_SNAPSHOT_INSTALLED:
        on_snapshot_installed(r, ev);
        break;
    case EV_PEER_DOWN:
        on_peer_down(r, ev->peer_down.peer);
        break;
    case EV_READ:
        on_read(r, ev->read.tag, ev->read.min_op);
        break;
    }
    after_event(r, force_ack && r->status == STATUS_NORMAL);
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

uint32_t replica_view(const struct replica *r)
{
    return r->view;
}

uint32_t replica_primary(const struct replica *r)
{
    return primary_of(r, r->view);
}

bool replica_is_primary(const struct replica *r)
{
    return r->status == STATUS_NORMAL && primary_of(r, r->view) == r->c.self;
}

uint64_t replica_op(const struct replica *r)
{
    return r->log.op;
}

uint64_t replica_commit(const struct replica *r)
{
    return r->commit;
}

uint64_t replica_applied(const struct replica *r)
{
    return r->applied;
}

uint64_t replica_log_base(const struct replica *r)
{
    return r->log.base;
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

const struct replica_stats *replica_stats(const struct replica *r)
{
    return &r->stats;
}

uint64_t replica_next_tick_ms(const struct replica *r, uint64_t now_ms)
{
    if (r->applied < r->commit)
        return 0;
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

uint32_t replica_message_size_max(const struct replica *r)
{
    return r->c.message_size_max;
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
