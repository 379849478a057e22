/* sim/sweep — see sweep.h. */
#include "sim/sweep.h"

#include <inttypes.h>
#include <stdlib.h>

#include "common/assert.h"
#include "driver/driver.h"
#include "kv/command.h"
#include "kv/expire.h"
#include "kv/expire_index.h"
#include "sim/host.h"

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

void sim_sweep_start(struct sim_replica *rep)
{
    rep->sweep_in_flight = false;
    rep->extra_request_no = 0;
    new_id(rep);
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

static void sweep_done(void *ctx, const struct driver_reply *r)
{
    struct sweep_op *s = ctx;
    struct cluster *c = s->c;
    struct sim_replica *rep = &c->replicas[s->replica];
    bool live = rep->driver && rep->incarnation == s->incarnation;
    free(s);
    if (!live)
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

void sim_sweep_run(struct cluster *c, struct sim_replica *rep)
{
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
