/* actions — what a step emits, and the helpers every part of the protocol
 * shares: the primary of a view, quorum arithmetic, tracing, encoding and
 * sending messages, persistence requests (log and metadata), client replies
 * and view reports.
 *
 * Invariants: (1) every action and every byte it points to lives in the
 * replica's step buffers, valid until the next replica_step(); (2) a message
 * that does not fit the send buffer is dropped, never truncated (the
 * protocol tolerates loss); (3) ACT_PERSIST covers the log from the lowest
 * changed op to log.op, and nothing from that op on counts as durable until
 * its EV_PERSISTED (vr_log_changed_from). */
#include "core/replica_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The primary of `view` in the current epoch: voters[view mod voters]. */
uint32_t vr_primary_of(const struct replica *r, uint64_t view)
{
    return membership_primary(&r->cfg, view);
}

/* The view after view: views never wrap. At VIEW_MAX (reachable only by
 * VIEW_JUMP_MAX-sized forged jumps, 2^31 of them) the replica stays. */
uint64_t vr_next_view(uint64_t view)
{
    ASSERT(view <= VIEW_MAX);
    return view < VIEW_MAX ? view + 1 : VIEW_MAX;
}

/* Drop a peer message the core cannot act on: counted, traced, never
 * asserted on. */
void vr_invalid(struct replica *r, const char *why)
{
    r->stats.messages_invalid++;
    vr_trace(r, "invalid message dropped: %s", why);
}

/* A majority of the current epoch's voters; learners never count. */
uint32_t vr_quorum(const struct replica *r)
{
    return membership_quorum(&r->cfg);
}

bool vr_is_voter(const struct replica *r, uint32_t id)
{
    return membership_is_voter(&r->cfg, id);
}

/* Whose durable copy counts toward a commit: the voters' alone (the
 * injected bugs add learners or removed voters). */
bool vr_counts_for_commit(const struct replica *r, uint32_t id)
{
    if (vr_is_voter(r, id))
        return true;
    if (vr_bug(r, BUG_COUNT_LEARNER) && membership_is_learner(&r->cfg, id))
        return true;
    return vr_bug(r, BUG_COUNT_REMOVED) &&
           (r->bug_removed_mask & (1u << id)) != 0;
}

/* A voter or a learner of the current epoch: it receives the log. */
bool vr_is_member(const struct replica *r, uint32_t id)
{
    return membership_is_member(&r->cfg, id);
}

/* The k-th largest of v[0..n) (k from 1): what a quorum of k has reached.
 * Sorts v (descending) in place. */
uint64_t vr_kth_largest(uint64_t *v, uint32_t n, uint32_t k)
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

bool vr_bug(const struct replica *r, enum replica_bug b)
{
    return (r->c.bugs & (uint32_t)b) != 0;
}

__attribute__((format(printf, 2, 3))) void vr_trace(const struct replica *r,
                                                    const char *fmt, ...)
{
    if (!r->c.trace)
        return;
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "r%u v%" PRIu64 " %s op=%" PRIu64 " commit=%" PRIu64 ": ",
                     r->c.self, r->view, replica_status_name(r->status),
                     r->log.op, r->commit);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    r->c.trace(r->c.trace_ctx, line);
}

struct action *vr_action_push(struct replica *r, enum action_type type)
{
    ASSERT(r->action_count < r->action_max);
    struct action *a = &r->actions[r->action_count++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    return a;
}

uint64_t vr_checksum_at(const struct replica *r, uint64_t op)
{
    uint64_t sum = 0;
    bool known = log_checksum(&r->log, op, &sum);
    ASSERT(known);
    return sum;
}

/* Encode a message into the step's send buffer; NULL if it does not fit (the
 * message is dropped: the protocol tolerates loss). */
const uint8_t *vr_encode(struct replica *r, struct message *m,
                         const struct entry *entries, size_t *size)
{
    m->from = (uint8_t)r->c.self;
    m->epoch = r->cfg.epoch;
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

void vr_send_bytes(struct replica *r, uint32_t to, const uint8_t *data,
                   size_t size)
{
    ASSERT(to != r->c.self);
    ASSERT(to < r->c.replica_count);
    if (r->action_count + 1 >= r->action_max)
        return; /* dropped; retransmission recovers */
    struct action *a = vr_action_push(r, ACT_SEND);
    a->send.to = to;
    a->send.data = data;
    a->send.size = size;
}

void vr_send_to(struct replica *r, uint32_t to, struct message *m,
                const struct entry *entries)
{
    size_t size;
    const uint8_t *data = vr_encode(r, m, entries, &size);
    if (data)
        vr_send_bytes(r, to, data, size);
}

void vr_broadcast(struct replica *r, struct message *m,
                  const struct entry *entries)
{
    size_t size;
    const uint8_t *data = vr_encode(r, m, entries, &size);
    if (!data)
        return;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        if (i != r->c.self && vr_is_member(r, i))
            vr_send_bytes(r, i, data, size);
}

/* Gather log entries (from, to] into scratch, bounded by the batch size and
 * the message size. Returns how many. */
uint32_t vr_gather(struct replica *r, uint64_t from, uint64_t to)
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

void vr_persist_meta(struct replica *r)
{
    struct action *a = vr_action_push(r, ACT_PERSIST_META);
    r->meta_seq++;
    struct replica_meta meta = {
        .view = r->view,
        .last_normal_view = r->lnv_disk,
        .epoch = r->cfg.epoch,
        .replica_count = r->c.replica_count,
        .flags = (r->damaged ? META_FLAG_DAMAGED : 0) |
                 (r->removed ? META_FLAG_REMOVED : 0) |
                 (r->left ? META_FLAG_LEFT : 0),
        .membership = membership_pack(&r->cfg),
        .epoch_op = r->epoch_op,
        .epoch_checksum = r->epoch_checksum,
    };
    r->meta_ring[r->meta_seq % META_RING] = meta;
    a->meta.seq = r->meta_seq;
    a->meta.meta = meta;
}

/* Too many metadata writes in flight to enter another view: a slow or
 * stalled disk with views changing fast (transfers) would otherwise
 * overrun the ring. Entering a view later is always allowed. */
bool vr_meta_backlogged(const struct replica *r)
{
    return r->meta_seq - r->meta_seq_done >= META_BACKLOG_MAX;
}

bool vr_meta_durable_for_view(const struct replica *r)
{
    return r->meta_durable_valid && r->meta_durable.epoch == r->cfg.epoch &&
           r->meta_durable.view == r->view;
}

bool vr_meta_durable_normal(const struct replica *r)
{
    return vr_meta_durable_for_view(r) &&
           r->meta_durable.last_normal_view == r->view;
}

/* Note that the log changed from op on: it will be persisted at the end of
 * the step, and nothing from op on counts as durable until then. */
void vr_log_changed_from(struct replica *r, uint64_t op)
{
    if (r->persist_from == 0 || op < r->persist_from)
        r->persist_from = op;
    if (r->op_persisted >= op)
        r->op_persisted = op - 1;
}

void vr_truncate_log(struct replica *r, uint64_t op)
{
    ASSERT(op >= r->commit);
    if (op >= r->log.op)
        return;
    log_truncate(&r->log, op);
    vr_log_changed_from(r, op + 1);
    if (r->op_verified > op)
        r->op_verified = op;
    if (r->prepare_sent_op > op)
        r->prepare_sent_op = op;
}

/* The log's base moved (compaction, or a snapshot installed) past ops whose
 * current version was never persisted (a damaged replica defers its writes
 * until the damage is on record): those ops are in a durable snapshot now,
 * so what remains to persist starts right after the base, and the driver
 * restarts the on-disk log there (a persist from base + 1 restarts it). */
void vr_persist_after_base(struct replica *r)
{
    if (r->persist_from == 0 || r->persist_from > r->log.base)
        return;
    r->persist_from = r->log.base + 1;
    ASSERT(r->persist_from > r->log.base);
}

void vr_flush_persist(struct replica *r)
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
    struct action *a = vr_action_push(r, ACT_PERSIST);
    a->persist.op_first = from;
    a->persist.op_last = r->log.op;
    a->persist.checksum = vr_checksum_at(r, r->log.op);
    r->persists_inflight++;
}

void vr_report_view(struct replica *r)
{
    struct action *a = vr_action_push(r, ACT_VIEW);
    struct cohort_view_info *v = &a->view;
    v->epoch = r->cfg.epoch;
    v->view = r->view;
    v->primary = vr_primary_of(r, r->view);
    v->self = r->c.self;
    v->replica_count = r->c.replica_count;
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        v->roles[i] = !vr_is_member(r, i) ? COHORT_ROLE_OUTSIDE
                      : i == v->primary   ? COHORT_ROLE_PRIMARY
                      : vr_is_voter(r, i) ? COHORT_ROLE_BACKUP
                                          : COHORT_ROLE_LEARNER;
    if (r->removed)
        v->roles[r->c.self] = COHORT_ROLE_OUTSIDE;
    else if (r->status == STATUS_VIEW_CHANGE)
        v->roles[r->c.self] = COHORT_ROLE_VIEW_CHANGE;
    else if (r->status == STATUS_RECOVERING)
        v->roles[r->c.self] = COHORT_ROLE_RECOVERING;
    v->why = r->why;
}

void vr_reply(struct replica *r, uint64_t client_id, uint64_t request_no,
              enum reply_status status)
{
    if (r->action_count + 1 >= r->action_max)
        return;
    struct action *a = vr_action_push(r, ACT_REPLY);
    a->reply.client_id = client_id;
    a->reply.request_no = request_no;
    a->reply.status = status;
    a->reply.primary_hint = vr_primary_of(r, r->view);
}

/* Room in the reply arena for one more reply of the largest size? Replies are
 * copied there because the client table may move records while later ops
 * of the same step are applied. */
bool vr_reply_room(const struct replica *r)
{
    return r->send_cap - r->send_used >= r->c.reply_size_max &&
           r->action_count + 4 < r->action_max;
}

/* The stored reply of rec, or NULL if it was too large to keep. */
const uint8_t *vr_stored_reply(const struct replica *r,
                               const struct client_record *rec)
{
    return rec->reply_kept ? client_table_reply(&r->table, rec) : NULL;
}

void vr_reply_ok(struct replica *r, const struct client_record *rec,
                 const uint8_t *data)
{
    ASSERT(r->send_cap - r->send_used >= rec->reply_size);
    struct action *a = vr_action_push(r, ACT_REPLY);
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
