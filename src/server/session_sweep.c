/* session_sweep — the primary's ending of expired sessions.
 *
 * While this member is the primary of a normal view it first proposes one
 * EXTEND op (kv/session_cmd.h) for the view, and only once that op is done
 * does it propose EXPIRE ops naming the sessions due at its log time
 * (node_log_time()), at most KV_SESSION_EXPIRE_BATCH per op, one op in
 * flight at a time, on each timer tick (SERVER_TIMER_MS) and after each op.
 *
 * Why EXTEND first: while no member was primary, no KEEPALIVE could
 * commit, so a deadline that passed during the failover says nothing about
 * the client. EXTEND gives every session a full TTL from the new
 * primary's first op; an EXPIRE of this primary is ordered after it in the
 * log (the sweeper waits for it), and apply ends a session only if its
 * deadline is at or before the EXPIRE op's own time. A session whose client
 * sends a KEEPALIVE (through any member; forwarded like any write) at least
 * once per TTL of log time therefore never expires, however many
 * failovers. The term (epoch, view) an EXTEND was proposed in is
 * remembered; a primary of any other term (this member again after losing
 * the view, or in a new epoch, whose views start at 0 again) extends
 * again.
 *
 * The choice of the next op is kv_session_sweep_next() (kv/session_cmd.h),
 * which the simulator's sweeper (sim/sweep.c) runs too.
 *
 * Like the key sweeper (expiry_sweep.c) it is a client of the log of its
 * own (client id, request numbers), and its ops bypass maxmemory.
 *
 * Invariant: at most one op in flight (ss->in_flight); no EXPIRE is
 * proposed in term (e, v) before an EXTEND proposed in (e, v) was done.
 */
#include <stdlib.h>

#include "common/assert.h"
#include "kv/command.h"
#include "kv/session_cmd.h"
#include "server/internal.h"

static void session_sweep_done(void *ctx, const struct driver_reply *r)
{
    struct session_sweeper *ss = ctx;
    struct server *s = ss->server;
    ASSERT(ss->in_flight);
    ss->in_flight = false;
    if (r->outcome == DRIVER_DONE) {
        if (ss->extending) {
            ss->extended = ss->proposed;
            ss->extended_set = true;
        } else
            ss->expire_ops_done++;
    } else if (r->outcome == DRIVER_REJECTED) {
        ss->client_id = server_client_id_new(s);
    }
    if (r->outcome == DRIVER_DONE && !s->closing)
        session_sweep_run(s);
}

void session_sweep_init(struct server *s)
{
    struct session_sweeper *ss = &s->session_sweeper;
    ss->server = s;
    ss->client_id = server_client_id_new(s);
    ss->request_no = 0;
    ss->in_flight = false;
    ss->extended_set = false; /* none yet */
}

static void propose(struct server *s, const struct kv_write *w, bool extend,
                    struct kv_term term)
{
    struct session_sweeper *ss = &s->session_sweeper;
    size_t size = kv_command_encode_into(w, &ss->body, &ss->body_capacity);
    if (size == 0)
        return; /* out of memory: try again on the next tick */
    ss->in_flight = true;
    ss->extending = extend;
    ss->proposed = term;
    if (extend)
        ss->extend_ops_proposed++;
    else
        ss->expire_ops_proposed++;
    /* Bound to the term: an EXPIRE parked through a view change must not
     * land in a later term before that term's EXTEND. */
    node_submit_in_term(s->node, ss->client_id, ++ss->request_no, ss->body,
                        size, session_sweep_done, ss);
}

void session_sweep_run(struct server *s)
{
    struct session_sweeper *ss = &s->session_sweeper;
    if (ss->in_flight || s->closing || !node_is_primary(s->node))
        return;
    struct kv_term term;
    node_view(s->node, &term.epoch, &term.view);
    struct kv_write w;
    char text[KV_SESSION_EXPIRE_BATCH][KV_SESSION_ID_TEXT];
    struct resp_arg args[KV_SESSION_EXPIRE_BATCH];
    enum kv_session_sweep next = kv_session_sweep_next(
        s->kv, term, ss->extended_set ? &ss->extended : NULL,
        node_log_time(s->node), text, args, &w);
    if (next != KV_SWEEP_IDLE)
        propose(s, &w, next == KV_SWEEP_EXTEND, term);
}

void session_sweep_close(struct server *s)
{
    struct session_sweeper *ss = &s->session_sweeper;
    if (ss->in_flight) {
        node_cancel(s->node, ss);
        ss->in_flight = false;
    }
    free(ss->body);
    ss->body = NULL;
    ss->body_capacity = 0;
}
