/* expiry_sweep — the primary's removal of expired keys.
 *
 * While this member is the primary of a normal view, it proposes
 * EXPIRE_DUE ops naming keys due at its log time (kv_expire_batch(): at
 * most KV_EXPIRE_BATCH_KEYS keys and KV_EXPIRE_BATCH_BYTES of them per op,
 * found in O(batch) from the store's expiry index), one op in flight at a
 * time, the next as soon as the last is done: a million keys due at once
 * become a stream of small ops interleaved with clients' writes, never one
 * op or loop turn that scans or removes them all. A backup proposes
 * nothing; after a failover the new primary's sweeper takes over on its
 * next timer tick (SERVER_TIMER_MS) or read that waits for an expiry.
 *
 * The sweeper is a client of the log of its own: a client id from
 * server_client_id_new() (renewed if the client table forgot it) and
 * request numbers counting up, so the client table's exactly-once rules
 * hold for it as for any session. Its ops bypass maxmemory: they only free.
 * Apply removes only keys still due at the op's own timestamp (expire.h),
 * so a key whose TTL changed after the batch was chosen stays.
 *
 * Log time on an idle log: a new primary continues log time from the last
 * entry's timestamp, so whatever time passed on an idle log before a
 * failover would be lost, and every deadline would slip by it. While keys
 * have expiries and nothing was applied for EXPIRY_CLOCK_MS of log time,
 * the sweeper proposes an EXPIRE_DUE of the keys due soonest though they
 * are not due yet: it removes nothing (apply removes only keys due at the
 * op's own timestamp) and puts the time in the log. So a key outlives its
 * deadline by at most about EXPIRY_CLOCK_MS plus the time without a
 * primary. (EXPIRE_DUE, not a new op type: every build applies it.)
 *
 * Invariant: at most one sweep op is in the node (sweep->in_flight), and
 * server_close() cancels it.
 */
#include <stdlib.h>

#include "common/assert.h"
#include "kv/command.h"
#include "kv/expire.h"
#include "server/internal.h"

/* Log time an idle log may go without an entry while keys have expiries. */
#define EXPIRY_CLOCK_MS 1000u

static void sweep_done(void *ctx, const struct driver_reply *r)
{
    struct sweeper *sw = ctx;
    struct server *s = sw->server;
    ASSERT(sw->in_flight);
    sw->in_flight = false;
    if (r->outcome == DRIVER_DONE)
        sw->ops_done++;
    else if (r->outcome == DRIVER_REJECTED)
        sw->client_id = server_client_id_new(s); /* e.g. forgotten */
    if (r->outcome == DRIVER_DONE && !s->closing)
        expiry_sweep_run(s); /* more may be due: keep going */
}

void expiry_sweep_init(struct server *s)
{
    struct sweeper *sw = &s->sweeper;
    sw->server = s;
    sw->client_id = server_client_id_new(s);
    sw->request_no = 0;
    sw->in_flight = false;
}

void expiry_sweep_run(struct server *s)
{
    struct sweeper *sw = &s->sweeper;
    if (sw->in_flight || s->closing || s->kv->expires_count == 0 ||
        !node_is_primary(s->node))
        return;
    uint64_t now_ms = node_log_time(s->node);
    uint64_t first = kv_expire_index_first(&s->kv->expiry);
    bool clock = first > now_ms; /* nothing due: only the clock */
    if (clock && now_ms < s->kv->time_ms + EXPIRY_CLOCK_MS)
        return; /* ... and only on a log idle that long */
    uint64_t at = clock ? first : now_ms;
    struct resp_arg keys[KV_EXPIRE_BATCH_KEYS];
    struct kv_write w;
    if (kv_expire_batch(s->kv, at, keys, &w) == 0)
        return;
    size_t size = kv_command_encode_into(&w, &sw->body, &sw->body_capacity);
    if (size == 0)
        return; /* out of memory: try again on the next tick */
    sw->in_flight = true;
    sw->ops_proposed++;
    sw->clock_ops += clock;
    node_submit(s->node, sw->client_id, ++sw->request_no, sw->body, size, false,
                sweep_done, sw);
}

void expiry_sweep_close(struct server *s)
{
    struct sweeper *sw = &s->sweeper;
    if (sw->in_flight) {
        node_cancel(s->node, sw);
        sw->in_flight = false;
    }
    free(sw->body);
    sw->body = NULL;
    sw->body_capacity = 0;
}
