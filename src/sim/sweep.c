/* sim/sweep — see sweep.h. */
#include "sim/sweep.h"

#include <inttypes.h>
#include <stdlib.h>

#include "common/assert.h"
#include "driver/driver.h"
#include "kv/command.h"
#include "kv/expire.h"
#include "kv/expire_index.h"
#include "kv/session_cmd.h"
#include "sim/host.h"

/* What the reference model keeps of a body (sim/check.h), below the
 * simulated core's body_size_max (sim/host.c). */
#define SESSION_BODY_MAX KVSM_LOG_BODY_MAX

struct sweep_op {
    struct cluster *c;
    uint32_t replica;
    uint64_t incarnation;
};

static void new_id(struct sim_replica *rep)
{
    rep->sweep_client_id =
        (1ull << 63) | ((uint64_t)rep->index << 32) | ++rep->sweep_ids;
    rep->sweep_request_no = 0;
}

static void session_new_id(struct sim_replica *rep)
{
    rep->ss.client_id =
        (3ull << 62) | ((uint64_t)rep->index << 32) | ++rep->ss.ids;
    rep->ss.request_no = 0;
}

void sim_sweep_start(struct sim_replica *rep)
{
    rep->sweep_in_flight = false;
    rep->extra_request_no = 0;
    new_id(rep);
    rep->ss.in_flight = false;
    rep->ss.extended_set = false;
    session_new_id(rep);
}

static void extra_done(void *ctx, const struct driver_reply *r)
{
    (void)r;
    free(ctx);
}

void sim_sweep_submit_extra(struct cluster *c, struct sim_replica *rep,
                            const uint8_t *body, size_t size)
{
    (void)c;
    uint64_t id = (1ull << 62) | ((uint64_t)rep->index << 32) |
                  (rep->incarnation & 0xffffffffu);
    void *ctx = malloc(1);
    ASSERT(ctx != NULL);
    driver_submit(rep->driver, id, ++rep->extra_request_no, body, size, false,
                  extra_done, ctx);
}

/* The replica a finished sweep op (ctx, freed here) was proposed by, or
 * NULL if that process is gone. */
static struct sim_replica *op_finished(void *ctx, struct cluster **c)
{
    struct sweep_op *s = ctx;
    *c = s->c;
    struct sim_replica *rep = &s->c->replicas[s->replica];
    bool live = rep->driver && rep->incarnation == s->incarnation;
    free(s);
    return live ? rep : NULL;
}

static void sweep_done(void *ctx, const struct driver_reply *r)
{
    struct cluster *c;
    struct sim_replica *rep = op_finished(ctx, &c);
    if (rep == NULL)
        return;
    ASSERT(rep->sweep_in_flight);
    rep->sweep_in_flight = false;
    cluster_hash(c, 8000u + rep->index, rep->sweep_request_no,
                 (uint64_t)r->outcome, r->op);
    if (r->outcome == DRIVER_REJECTED)
        new_id(rep); /* e.g. the client table forgot this id */
    if (r->outcome == DRIVER_DONE)
        sim_sweep_run(c, rep); /* more may be due: keep going */
}

static void session_sweep_run(struct cluster *c, struct sim_replica *rep);

static void session_sweep_done(void *ctx, const struct driver_reply *r)
{
    struct cluster *c;
    struct sim_replica *rep = op_finished(ctx, &c);
    if (rep == NULL)
        return;
    ASSERT(rep->ss.in_flight);
    rep->ss.in_flight = false;
    cluster_hash(c, 8100u + rep->index, rep->ss.request_no,
                 (uint64_t)r->outcome, r->op);
    if (r->outcome == DRIVER_DONE && rep->ss.extending) {
        rep->ss.extended = rep->ss.proposed;
        rep->ss.extended_set = true;
    }
    if (r->outcome == DRIVER_REJECTED)
        session_new_id(rep);
    if (r->outcome == DRIVER_DONE)
        session_sweep_run(c, rep);
}

/* server/session_sweep.c's session_sweep_run() on a simulated replica. */
static void session_sweep_run(struct cluster *c, struct sim_replica *rep)
{
    if (!c->config.workload.coord_pct || !rep->driver || !rep->sm_ready ||
        rep->ss.in_flight || !replica_is_primary(rep->r))
        return;
    struct kv_term term = {replica_membership(rep->r)->epoch,
                           replica_view(rep->r)};
    const struct kv_term *extended =
        c->config.bugs & BUG_SESSION_NO_EXTEND
            ? &term /* the mutant: as if extended */
            : (rep->ss.extended_set ? &rep->ss.extended : NULL);
    char text[KV_SESSION_EXPIRE_BATCH][KV_SESSION_ID_TEXT];
    struct resp_arg args[KV_SESSION_EXPIRE_BATCH];
    struct kv_write w;
    enum kv_session_sweep next = kv_session_sweep_next(
        &rep->sm.kv, term, extended, replica_log_time(rep->r), text, args, &w);
    if (next == KV_SWEEP_IDLE)
        return;
    /* The simulation's bodies are small: fewer ids per EXPIRE. */
    while (kv_command_size(&w) > SESSION_BODY_MAX && w.arg_count > 1)
        w.arg_count--;
    uint8_t body[SESSION_BODY_MAX];
    size_t size = kv_command_size(&w);
    ASSERT(size <= sizeof(body));
    size = kv_command_encode(&w, body, sizeof(body));
    struct sweep_op *s = malloc(sizeof(*s));
    ASSERT(s != NULL);
    *s = (struct sweep_op){c, rep->index, rep->incarnation};
    rep->ss.in_flight = true;
    rep->ss.extending = next == KV_SWEEP_EXTEND;
    rep->ss.proposed = term;
    rep->turn_pending = true;
    c->stats.session_sweep_ops++;
    cluster_trace(c, "r%u session sweep %s at log time %" PRIu64, rep->index,
                  rep->ss.extending ? "EXTEND" : "EXPIRE",
                  replica_log_time(rep->r));
    driver_submit_in_term(rep->driver, rep->ss.client_id, ++rep->ss.request_no,
                          body, size, session_sweep_done, s);
}

void sim_sweep_run(struct cluster *c, struct sim_replica *rep)
{
    session_sweep_run(c, rep);
    if (!rep->driver || !rep->sm_ready || rep->sweep_in_flight ||
        rep->sm.kv.expires_count == 0 || !replica_is_primary(rep->r))
        return;
    uint64_t now_ms = replica_log_time(rep->r);
    if (kv_expire_index_first(&rep->sm.kv.expiry) > now_ms)
        return;
    struct resp_arg keys[KV_EXPIRE_BATCH_KEYS];
    struct kv_write w;
    if (kv_expire_batch(&rep->sm.kv, now_ms, keys, &w) == 0)
        return;
    uint8_t body[KVSM_LOG_BODY_MAX];
    size_t size = kv_command_size(&w);
    ASSERT(size <= sizeof(body)); /* KVSM_VOLATILE_KEYS short keys */
    size = kv_command_encode(&w, body, sizeof(body));
    struct sweep_op *s = malloc(sizeof(*s));
    ASSERT(s != NULL);
    *s = (struct sweep_op){c, rep->index, rep->incarnation};
    rep->sweep_in_flight = true;
    rep->turn_pending = true;
    c->stats.sweep_ops++;
    cluster_trace(c, "r%u sweeps at log time %" PRIu64, rep->index, now_ms);
    driver_submit(rep->driver, rep->sweep_client_id, ++rep->sweep_request_no,
                  body, size, false, sweep_done, s);
}
