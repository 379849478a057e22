/* requests — client writes and reads on their way through the core: the
 * pending table (who waits for which request), the batch of one turn, the
 * queue of requests the core turned away as busy, and read groups (one
 * EV_READ per turn). See driver.h for the guarantees.
 *
 * Invariants: (1) a request is in the pending table from driver_submit()
 * until its done function is called or cancelled, and is answered once;
 * (2) the batch and the busy queue keep submission order, and while the
 * queue is not empty nothing overtakes it; (3) reads wait for the busy
 * queue to drain and follow the turn's writes into the core. */
#include "driver/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"

#define PENDING_INITIAL 1024u

/* ------------------------------------------------------------ answers */

static void answer(driver_done_fn done, void *ctx, enum driver_outcome outcome,
                   enum reply_status status, uint32_t hint)
{
    struct driver_reply reply = {
        .outcome = outcome,
        .status = status,
        .primary_hint = hint,
    };
    done(ctx, &reply);
}

/* The outcome for a request or read turned away by this replica. */
static enum driver_outcome not_here(const struct replica *r)
{
    return replica_status(r) == STATUS_NORMAL ? DRIVER_NOT_PRIMARY
                                              : DRIVER_RETRY;
}

static enum reply_status not_here_status(const struct replica *r)
{
    switch (replica_status(r)) {
    case STATUS_RECOVERING:
        return REPLY_RECOVERING;
    case STATUS_VIEW_CHANGE:
        return REPLY_VIEW_CHANGE;
    default:
        return REPLY_NOT_PRIMARY;
    }
}

/* ------------------------------------------------------------ pending */

static uint32_t pending_slot(const struct driver *d, uint64_t client_id,
                             uint64_t request_no)
{
    uint64_t h = (client_id ^ (request_no * 0x9e3779b97f4a7c15ull)) *
                 0xff51afd7ed558ccdull;
    uint32_t mask = d->pending_cap - 1;
    uint32_t i = (uint32_t)(h >> 32) & mask;
    while (d->pending[i].client_id != 0 &&
           (d->pending[i].client_id != client_id ||
            d->pending[i].request_no != request_no))
        i = (i + 1) & mask;
    return i;
}

static void pending_grow(struct driver *d)
{
    struct pending *old = d->pending;
    uint32_t old_cap = d->pending_cap;
    d->pending_cap = old_cap ? old_cap * 2 : PENDING_INITIAL;
    d->pending = calloc(d->pending_cap, sizeof(*d->pending));
    ASSERT(d->pending);
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].client_id)
            d->pending[pending_slot(d, old[i].client_id, old[i].request_no)] =
                old[i];
    free(old);
}

static void pending_remove_at(struct driver *d, uint32_t i)
{
    uint32_t mask = d->pending_cap - 1;
    d->pending[i].client_id = 0;
    d->pending_count--;
    uint32_t j = (i + 1) & mask;
    while (d->pending[j].client_id) {
        struct pending p = d->pending[j];
        d->pending[j].client_id = 0;
        d->pending[pending_slot(d, p.client_id, p.request_no)] = p;
        j = (j + 1) & mask;
    }
}

static bool pending_has(const struct driver *d, uint64_t client_id,
                        uint64_t request_no)
{
    return d->pending_cap &&
           d->pending[pending_slot(d, client_id, request_no)].client_id;
}

/* Take the callback waiting for (client, request); false if none. */
static bool pending_take(struct driver *d, uint64_t client_id,
                         uint64_t request_no, struct pending *out)
{
    if (!pending_has(d, client_id, request_no))
        return false;
    uint32_t i = pending_slot(d, client_id, request_no);
    *out = d->pending[i];
    pending_remove_at(d, i);
    return true;
}

static void pending_add(struct driver *d, uint64_t client_id,
                        uint64_t request_no, driver_done_fn done, void *ctx)
{
    if ((d->pending_count + 1) * 2 > d->pending_cap)
        pending_grow(d);
    uint32_t i = pending_slot(d, client_id, request_no);
    if (d->pending[i].client_id) {
        /* The same request again while in flight (a client's retry, maybe
         * on another connection): one caller waits per request, so the
         * newer one takes the answer and the older learns only that. The
         * client table applies the request at most once. */
        struct pending old = d->pending[i];
        d->pending[i].done = done;
        d->pending[i].ctx = ctx;
        answer(old.done, old.ctx, DRIVER_SUPERSEDED, REPLY_SUPERSEDED,
               replica_primary(d->r));
        return;
    }
    d->pending[i] = (struct pending){client_id, request_no, done, ctx};
    d->pending_count++;
}

/* Every proposed request of ours ends with this outcome now. */
static void pending_fail_all(struct driver *d, enum driver_outcome outcome)
{
    for (uint32_t i = 0; i < d->pending_cap; i++) {
        if (!d->pending[i].client_id)
            continue;
        struct pending p = d->pending[i];
        d->pending[i].client_id = 0;
        d->pending_count--;
        answer(p.done, p.ctx, outcome, REPLY_VIEW_CHANGE,
               replica_primary(d->r));
    }
}

/* ------------------------------------------------------------ busy queue */

static bool deferred_push(struct driver *d, uint64_t client_id,
                          uint64_t request_no, const uint8_t *body,
                          uint32_t body_size, bool over_limit)
{
    if (d->deferred_bytes + body_size > d->c.deferred_bytes_max)
        return false;
    bool grown = grow_array_u32((void **)&d->deferred, &d->deferred_cap,
                                (size_t)d->deferred_count + 1,
                                sizeof(*d->deferred), 256);
    ASSERT(grown);
    uint8_t *copy = NULL;
    if (body_size) {
        copy = malloc(body_size);
        ASSERT(copy);
        memcpy(copy, body, body_size);
    }
    /* The core may have room again once the commit point or the log's
     * start moves past where they were when the queue began: a later
     * arrival must not move that mark, or a move that happened meanwhile
     * is never seen (an idle group would leave the queue waiting). */
    if (d->deferred_count == 0) {
        d->deferred_commit = replica_commit(d->r);
        d->deferred_base = replica_log_base(d->r);
    }
    d->deferred[d->deferred_count++] =
        (struct deferred){client_id, request_no, copy, body_size, over_limit};
    d->deferred_bytes += body_size;
    return true;
}

static void deferred_clear(struct driver *d)
{
    for (uint32_t i = 0; i < d->deferred_count; i++)
        free(d->deferred[i].body);
    d->deferred_count = 0;
    d->deferred_bytes = 0;
    d->parked = false;
}

/* The core turned (client, no) away as busy while a batch was being
 * proposed: queue it to be offered again. False if it cannot wait. */
static bool defer_busy(struct driver *d, uint64_t client, uint64_t no)
{
    if (!pending_has(d, client, no))
        return false; /* nobody waits for it any more */
    /* The core answers a batch in order: resume the search where the last
     * one stopped. */
    for (uint32_t k = 0; k < d->batch_count; k++) {
        uint32_t i = (d->batch_scan + k) % d->batch_count;
        const struct client_request *q = &d->batch[i];
        if (q->client_id == client && q->request_no == no) {
            d->batch_scan = i + 1;
            drv_log(d, DRIVER_LOG_DEBUG,
                    "busy: client %" PRIx64 " request %" PRIu64 " waits",
                    client, no);
            return deferred_push(d, client, no, q->body, q->body_size,
                                 q->over_limit);
        }
    }
    return false;
}

/* ------------------------------------------------------------ batches */

/* The term this replica is in. */
static bool term_is(const struct driver *d, const struct term_bound *b)
{
    return b->epoch == replica_membership(d->r)->epoch &&
           b->view == replica_view(d->r);
}

/* Before the batch goes to the core: a term-bound request of an earlier
 * term is taken out of it and answered RETRY; answered ones are forgotten.
 * A bound request of an earlier term that is not in the batch either was
 * proposed in its term (it is in the log there) or still waits in the
 * busy queue, to be caught when it is batched. */
/* Forget the term-bound requests already answered. */
static void bound_prune(struct driver *d)
{
    uint32_t kept = 0;
    for (uint32_t k = 0; k < d->bound_count; k++)
        if (pending_has(d, d->bound[k].client_id, d->bound[k].request_no))
            d->bound[kept++] = d->bound[k];
    d->bound_count = kept;
}

static void batch_drop_other_terms(struct driver *d)
{
    bound_prune(d);
    uint32_t kept = 0;
    for (uint32_t k = 0; k < d->bound_count; k++) {
        struct term_bound b = d->bound[k];
        uint32_t i = 0;
        while (i < d->batch_count && (d->batch[i].client_id != b.client_id ||
                                      d->batch[i].request_no != b.request_no))
            i++;
        if (i == d->batch_count || term_is(d, &b)) {
            d->bound[kept++] = b;
            continue;
        }
        memmove(&d->batch[i], &d->batch[i + 1],
                (d->batch_count - i - 1) * sizeof(*d->batch));
        d->batch_count--;
        struct pending p;
        if (pending_take(d, b.client_id, b.request_no, &p))
            answer(p.done, p.ctx, DRIVER_RETRY, REPLY_VIEW_CHANGE,
                   replica_primary(d->r));
    }
    d->bound_count = kept;
}

void drv_flush_batch(struct driver *d)
{
    if (d->bound_count)
        batch_drop_other_terms(d);
    if (d->batch_count == 0)
        return;
    struct event ev = {.type = EV_CLIENT_REQUEST};
    ev.client.requests = d->batch;
    ev.client.count = d->batch_count;
    d->batch_scan = 0;
    d->flushing = true;
    drv_step(d, &ev);
    d->flushing = false;
    d->batch_count = 0;
    d->batch_used = 0;
}

/* The batch not yet handed to the core was never proposed: it joins the
 * busy queue (behind it: while the queue is not empty, new requests go
 * there, so the batch is newer), or is answered RETRY if that is full. */
static void batch_park(struct driver *d)
{
    if (d->flushing)
        return; /* the core has it: proposed, or answered */
    for (uint32_t i = 0; i < d->batch_count; i++) {
        const struct client_request *q = &d->batch[i];
        if (!pending_has(d, q->client_id, q->request_no))
            continue;
        if (deferred_push(d, q->client_id, q->request_no, q->body, q->body_size,
                          q->over_limit))
            continue;
        struct pending p;
        if (pending_take(d, q->client_id, q->request_no, &p))
            answer(p.done, p.ctx, DRIVER_RETRY, REPLY_BUSY,
                   replica_primary(d->r));
    }
    d->batch_count = 0;
    d->batch_used = 0;
}

static void batch_reserve(struct driver *d, size_t body_size)
{
    if (d->batch_count == d->batch_cap ||
        d->batch_used + body_size > d->batch_bytes_cap) {
        /* The batch holds pointers into batch_bytes: flush before growing. */
        drv_flush_batch(d);
    }
    if (d->batch_cap == 0) {
        d->batch_cap = 4096;
        d->batch = calloc(d->batch_cap, sizeof(*d->batch));
        ASSERT(d->batch);
    }
    if (body_size > d->batch_bytes_cap) {
        free(d->batch_bytes);
        d->batch_bytes_cap = body_size > (4u << 20) ? body_size : (4u << 20);
        d->batch_bytes = malloc(d->batch_bytes_cap);
        ASSERT(d->batch_bytes);
    }
}

static void batch_add(struct driver *d, uint64_t client_id, uint64_t request_no,
                      const uint8_t *body, size_t body_size, bool over_limit)
{
    batch_reserve(d, body_size);
    uint8_t *copy = d->batch_bytes + d->batch_used;
    if (body_size)
        memcpy(copy, body, body_size);
    d->batch_used += body_size;
    d->batch[d->batch_count++] = (struct client_request){
        .client_id = client_id,
        .request_no = request_no,
        .body = copy,
        .body_size = (uint32_t)body_size,
        .over_limit = over_limit,
    };
}

/* Offer the deferred requests again, in order, if the core may have room
 * now: the commit point or the log's start moved, or a hold (a transfer's
 * drain, an epoch's wedge) ended without either moving, as when a transfer
 * gives up. Requests turned away again go back to the queue, and
 * everything after them with them. */
void drv_resubmit_deferred(struct driver *d)
{
    if (d->deferred_count == 0 || !replica_is_primary(d->r))
        return;
    d->parked = false;
    if (replica_commit(d->r) == d->deferred_commit &&
        replica_log_base(d->r) == d->deferred_base && !d->deferred_kick)
        return;
    d->deferred_kick = false;
    struct deferred *list = d->deferred;
    uint32_t count = d->deferred_count;
    d->deferred = NULL;
    d->deferred_count = d->deferred_cap = 0;
    d->deferred_bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct deferred *q = &list[i];
        bool queue = d->deferred_count > 0 || !replica_is_primary(d->r);
        if (!queue) {
            batch_add(d, q->client_id, q->request_no, q->body, q->body_size,
                      q->over_limit);
        } else if (!replica_is_primary(d->r) ||
                   !deferred_push(d, q->client_id, q->request_no, q->body,
                                  q->body_size, q->over_limit)) {
            struct pending p;
            if (pending_take(d, q->client_id, q->request_no, &p))
                answer(p.done, p.ctx, DRIVER_RETRY, REPLY_BUSY,
                       replica_primary(d->r));
        }
        free(q->body);
    }
    free(list);
}

void driver_submit(struct driver *d, uint64_t client_id, uint64_t request_no,
                   const uint8_t *body, size_t body_size, bool over_limit,
                   driver_done_fn done, void *ctx)
{
    if (d->closing) {
        answer(done, ctx, DRIVER_RETRY, REPLY_RECOVERING, d->c.self);
        return;
    }
    if (d->storage_stalled && replica_is_primary(d->r)) {
        /* A backup forwards the write to the primary instead. */
        answer(done, ctx, DRIVER_REJECTED, REPLY_STORAGE,
               replica_primary(d->r));
        return;
    }
    if (!replica_is_primary(d->r)) {
        /* During a view change it waits for the view's outcome (behind
         * the requests already waiting, in order): proposed here if this
         * replica leads it, else passed on to the one that does. */
        bool park = d->parked || replica_status(d->r) == STATUS_VIEW_CHANGE;
        if (!park || body_size > UINT32_MAX ||
            !deferred_push(d, client_id, request_no, body, (uint32_t)body_size,
                           over_limit)) {
            answer(done, ctx, not_here(d->r), not_here_status(d->r),
                   replica_primary(d->r));
            return;
        }
        if (!d->parked)
            d->parked_since_ms = d->host.now_ms(d->host.ctx);
        d->parked = true;
    } else if (d->deferred_count > 0) {
        /* Behind the requests already waiting for room. */
        if (body_size > UINT32_MAX ||
            !deferred_push(d, client_id, request_no, body, (uint32_t)body_size,
                           over_limit)) {
            answer(done, ctx, DRIVER_RETRY, REPLY_BUSY, replica_primary(d->r));
            return;
        }
    } else {
        batch_add(d, client_id, request_no, body, body_size, over_limit);
    }
    pending_add(d, client_id, request_no, done, ctx);
}

void driver_submit_in_term(struct driver *d, uint64_t client_id,
                           uint64_t request_no, const uint8_t *body,
                           size_t body_size, driver_done_fn done, void *ctx)
{
    bound_prune(d);
    if (d->bound_count == TERM_BOUND_MAX) {
        answer(done, ctx, DRIVER_RETRY, REPLY_BUSY, replica_primary(d->r));
        return;
    }
    d->bound[d->bound_count++] = (struct term_bound){
        client_id, request_no, replica_membership(d->r)->epoch,
        replica_view(d->r)};
    driver_submit(d, client_id, request_no, body, body_size, false, done, ctx);
}

static enum driver_outcome outcome_of(enum reply_status status)
{
    switch (status) {
    case REPLY_OK:
        return DRIVER_DONE;
    case REPLY_NOT_PRIMARY:
        return DRIVER_NOT_PRIMARY;
    case REPLY_VIEW_CHANGE:
    case REPLY_RECOVERING:
    case REPLY_BUSY:
        return DRIVER_RETRY;
    case REPLY_TOO_BIG:
    case REPLY_EXPIRED:
    case REPLY_APPLIED_REPLY_LOST:
    case REPLY_STALE:
    case REPLY_OVER_LIMIT:
    default:
        return DRIVER_REJECTED;
    }
}

void drv_on_reply(struct driver *d, const struct action *a)
{
    uint64_t client = a->reply.client_id;
    uint64_t no = a->reply.request_no;
    if (a->reply.status == REPLY_BUSY && defer_busy(d, client, no))
        return;
    struct pending p;
    if (!pending_take(d, client, no, &p))
        return;
    struct driver_reply reply = {
        .outcome = outcome_of(a->reply.status),
        .status = a->reply.status,
        .primary_hint = a->reply.primary_hint,
        .op = a->reply.op,
        .data = a->reply.data,
        .size = a->reply.size,
    };
    p.done(p.ctx, &reply);
}

/* ------------------------------------------------------------ reads */

static void waiters_push(struct waiters *w, driver_done_fn done, void *ctx)
{
    bool grown = grow_array_u32((void **)&w->list, &w->cap,
                                (size_t)w->count + 1, sizeof(*w->list), 64);
    ASSERT(grown);
    w->list[w->count++] = (struct reader_waiter){done, ctx};
}

static void waiters_finish(struct driver *d, struct waiters *w,
                           enum driver_outcome outcome,
                           enum reply_status status)
{
    uint32_t count = w->count;
    w->count = 0;
    for (uint32_t i = 0; i < count; i++)
        if (w->list[i].done)
            answer(w->list[i].done, w->list[i].ctx, outcome, status,
                   replica_primary(d->r));
}

/* Send the open group of reads to the core as one EV_READ (once per turn,
 * so a stream of reads costs one PING round per turn, not one per read).
 * The turn's writes go to the core first, and while writes wait in the
 * busy queue the reads wait too. */
void drv_start_reads(struct driver *d)
{
    if (d->waiting.count == 0 || d->group_count == READ_GROUPS_MAX ||
        d->deferred_count > 0 || !replica_is_primary(d->r))
        return;
    struct read_group *g =
        &d->groups[(d->group_head + d->group_count) % READ_GROUPS_MAX];
    d->group_count++;
    struct waiters t = g->w;
    g->w = d->waiting;
    d->waiting = t;
    d->waiting.count = 0;
    g->tag = ++d->read_tag;
    struct event ev = {.type = EV_READ};
    ev.read.tag = g->tag;
    /* The bare rule: a connection's own earlier writes are answered (so
     * applied) before its read is submitted (the server keeps each
     * connection's order), and writes of others still in flight may be
     * ordered after the read. */
    ev.read.min_op = 0;
    drv_step(d, &ev);
}

static void fail_reads(struct driver *d, enum driver_outcome outcome,
                       enum reply_status status)
{
    for (uint32_t k = 0; k < d->group_count; k++)
        waiters_finish(d, &d->groups[(d->group_head + k) % READ_GROUPS_MAX].w,
                       outcome, status);
    d->group_count = 0;
    waiters_finish(d, &d->waiting, outcome, status);
}

/* Move the reads of a group in flight back to the open group, to be
 * covered by a later EV_READ. */
static void regroup(struct driver *d, struct read_group *g)
{
    for (uint32_t i = 0; i < g->w.count; i++)
        if (g->w.list[i].done)
            waiters_push(&d->waiting, g->w.list[i].done, g->w.list[i].ctx);
    g->w.count = 0;
}

void drv_on_read_answer(struct driver *d, const struct action *a)
{
    /* The core answers reads in order: normally the oldest group, or one
     * turned away as busy. */
    for (uint32_t k = 0; k < d->group_count; k++) {
        struct read_group *g =
            &d->groups[(d->group_head + k) % READ_GROUPS_MAX];
        if (g->tag != a->read.tag)
            continue;
        if (a->read.status == REPLY_BUSY)
            regroup(d, g); /* stays as an empty group until it is oldest */
        else
            waiters_finish(d, &g->w, outcome_of(a->read.status),
                           a->read.status);
        g->tag = 0;
        break;
    }
    /* Retire answered groups from the front. */
    while (d->group_count > 0 && d->groups[d->group_head].tag == 0) {
        d->group_head = (d->group_head + 1) % READ_GROUPS_MAX;
        d->group_count--;
    }
}

void driver_read(struct driver *d, driver_done_fn done, void *ctx)
{
    if (d->closing) {
        answer(done, ctx, DRIVER_RETRY, REPLY_RECOVERING, d->c.self);
        return;
    }
    if (!replica_is_primary(d->r)) {
        answer(done, ctx, not_here(d->r), not_here_status(d->r),
               replica_primary(d->r));
        return;
    }
    waiters_push(&d->waiting, done, ctx); /* proposed at the turn's end */
}

void driver_cancel(struct driver *d, void *ctx)
{
    for (uint32_t i = 0; i < d->pending_cap; i++)
        if (d->pending[i].client_id && d->pending[i].ctx == ctx) {
            pending_remove_at(d, i);
            i = (uint32_t)-1; /* the table shifted: scan again */
        }
    for (uint32_t g = 0; g <= d->group_count; g++) {
        struct waiters *w =
            g == d->group_count
                ? &d->waiting
                : &d->groups[(d->group_head + g) % READ_GROUPS_MAX].w;
        for (uint32_t i = 0; i < w->count; i++)
            if (w->list[i].ctx == ctx)
                w->list[i].done = NULL;
    }
}

/* The busy queue's requests were never proposed: they certainly did not
 * take effect. When this replica stopped being the primary (a transfer, or
 * an epoch that another voter leads) each is answered as if it had just
 * arrived: NOT_PRIMARY in a normal view, so the host passes it on to the
 * new primary in its order; otherwise, and when the driver closes, RETRY. */
static void deferred_fail(struct driver *d, bool lost_primary)
{
    enum driver_outcome outcome = DRIVER_RETRY;
    enum reply_status status = REPLY_BUSY;
    if (lost_primary) {
        outcome = not_here(d->r);
        status = not_here_status(d->r);
    }
    for (uint32_t i = 0; i < d->deferred_count; i++) {
        struct pending p;
        if (pending_take(d, d->deferred[i].client_id, d->deferred[i].request_no,
                         &p))
            answer(p.done, p.ctx, outcome, status, replica_primary(d->r));
    }
    deferred_clear(d);
}

/* Every proposed request ends UNKNOWN; the busy queue's keep waiting. */
static void pending_fail_proposed(struct driver *d)
{
    uint32_t n = d->deferred_count;
    struct pending *keep = NULL;
    uint32_t kept = 0;
    if (n) {
        keep = malloc(n * sizeof(*keep));
        ASSERT(keep);
    }
    for (uint32_t i = 0; i < n; i++)
        if (pending_take(d, d->deferred[i].client_id, d->deferred[i].request_no,
                         &keep[kept]))
            kept++;
    pending_fail_all(d, DRIVER_UNKNOWN);
    for (uint32_t i = 0; i < kept; i++)
        pending_add(d, keep[i].client_id, keep[i].request_no, keep[i].done,
                    keep[i].ctx);
    free(keep);
}

/* This replica stopped being the primary. Its proposed requests have
 * unknown outcomes. The ones never proposed (the busy queue, and this
 * turn's batch when the role went away before the core saw it: an epoch
 * moves on any event, not only a tick) certainly did not take effect:
 * during a view change they keep waiting, since this replica may lead the
 * next view (a primary that stays primary in a new epoch passes through
 * one until its metadata is durable); otherwise each is answered as not
 * here, NOT_PRIMARY in a normal view (the host passes it on to the new
 * primary, in order), RETRY while recovering or outside the membership. */
void drv_lost_primary(struct driver *d)
{
    batch_park(d);
    pending_fail_proposed(d);
    if (replica_status(d->r) != STATUS_VIEW_CHANGE)
        deferred_fail(d, true);
    else if (d->deferred_count && !d->parked) {
        d->parked_since_ms = d->host.now_ms(d->host.ctx);
        d->parked = true;
    }
    fail_reads(d, DRIVER_NOT_PRIMARY, REPLY_NOT_PRIMARY);
}

/* On a tick: requests parked through a view change are answered as not
 * here once the view change is over without this replica leading (the
 * view report usually does it first), or when it does not end (this
 * replica is cut off, say) after two view-change timeouts. */
void drv_parked_check(struct driver *d)
{
    if (!d->parked)
        return;
    if (d->deferred_count == 0 || replica_is_primary(d->r)) {
        d->parked = false;
        return;
    }
    uint64_t now = d->host.now_ms(d->host.ctx);
    if (replica_status(d->r) != STATUS_VIEW_CHANGE ||
        now - d->parked_since_ms >=
            2ull * d->c.replica.view_change_timeout_ms) {
        d->parked = false;
        deferred_fail(d, true);
    }
}

void drv_became_primary(struct driver *d)
{
    d->parked = false;
    d->deferred_kick = d->deferred_count > 0;
}

void drv_fail_all(struct driver *d)
{
    batch_park(d);
    deferred_fail(d, false);
    pending_fail_all(d, DRIVER_UNKNOWN);
    if (d->groups)
        fail_reads(d, DRIVER_RETRY, REPLY_VIEW_CHANGE);
}

void drv_requests_free(struct driver *d)
{
    free(d->pending);
    free(d->batch);
    free(d->batch_bytes);
    deferred_clear(d);
    free(d->deferred);
    for (uint32_t k = 0; k < READ_GROUPS_MAX && d->groups; k++)
        free(d->groups[k].w.list);
    free(d->groups);
    free(d->waiting.list);
}
