/* sim/cluster — drives the replicas of a simulated group by the core's
 * contract and runs the per-step checks. See cluster.h. */
#include "sim/cluster.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "core/message.h"

#define PPM 1000000u
#define REQUEST_HEADER 16 /* client_id, request_no */
#define REPLY_HEADER 29   /* client_id, request_no, status, hint, op */
#define SNAPSHOT_HEADER 32
#define LIVELOCK_STEPS 1000000u /* steps at one virtual instant */

/* Sources of events, in tie-break order. */
enum source {
    SOURCE_NONE = 0,
    SOURCE_RESUME,
    SOURCE_DISK,
    SOURCE_NET,
    SOURCE_TICK,
    SOURCE_CLIENT,
};

/* ------------------------------------------------------------- tracing */

static void hash_mix(struct cluster *c, uint64_t a, uint64_t b, uint64_t x,
                     uint64_t y)
{
    uint8_t raw[40];
    put_u64(raw, c->now);
    put_u64(raw + 8, a);
    put_u64(raw + 16, b);
    put_u64(raw + 24, x);
    put_u64(raw + 32, y);
    XXH3_64bits_update(c->trace_hash, raw, sizeof(raw));
}

void cluster_trace(struct cluster *c, const char *fmt, ...)
{
    if (!c->config.trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->line, sizeof(c->line), fmt, ap);
    va_end(ap);
    fprintf(c->config.trace, "%8" PRIu64 "ms #%-7" PRIu64 " %s\n", c->now,
            c->step, c->line);
}

static void core_trace(void *ctx, const char *line)
{
    struct sim_replica *rep = ctx;
    struct cluster *c = rep->cluster;
    if (c->config.trace)
        fprintf(c->config.trace, "%8" PRIu64 "ms #%-7" PRIu64 " core %s\n",
                c->now, c->step, line);
}

static const char *event_name(enum event_type type)
{
    static const char *names[] = {"?",
                                  "EV_TICK",
                                  "EV_MESSAGE",
                                  "EV_CLIENT_REQUEST",
                                  "EV_PERSISTED",
                                  "EV_META_PERSISTED",
                                  "EV_SNAPSHOT_TAKEN",
                                  "EV_SNAPSHOT_INSTALLED",
                                  "EV_PEER_DOWN",
                                  "EV_READ"};
    return type <= EV_READ ? names[type] : "?";
}

static void describe_message(const struct cluster *c, const uint8_t *data,
                             size_t size, char *out, size_t out_size)
{
    struct message m;
    if (!message_decode(data, size, c->config.replica_count, &m)) {
        snprintf(out, out_size, "undecodable %zu bytes", size);
        return;
    }
    snprintf(out, out_size,
             "%s from r%u view=%" PRIu32 " op=%" PRIu64 " commit=%" PRIu64
             " base=%" PRIu64 " entries=%" PRIu32,
             message_type_name(m.type), m.from, m.view, m.op, m.commit,
             m.base_op, m.entry_count);
}

/* ------------------------------------------------------------- clocks */

static uint64_t local_now(const struct sim_replica *rep, uint64_t now)
{
    uint64_t elapsed = now - rep->clock_base_global;
    return rep->clock_base_local + elapsed * rep->rate_ppm / PPM;
}

static uint64_t global_delay(const struct sim_replica *rep, uint64_t local_ms)
{
    return (local_ms * PPM + rep->rate_ppm - 1) / rep->rate_ppm;
}

/* ---------------------------------------------------------- state machine */

static size_t sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                       const uint8_t *body, size_t body_size, uint8_t *reply,
                       size_t reply_size_max)
{
    struct sim_replica *rep = ctx;
    size_t size = kvsm_apply(&rep->sm, body, body_size, reply, reply_size_max);
    check_apply(&rep->cluster->check, rep->index, op, timestamp_ms, body,
                body_size, reply, size, kvsm_hash(&rep->sm));
    return size;
}

/* ------------------------------------------------------------- lifecycle */

void cluster_init(struct cluster *c, const struct cluster_config *config)
{
    ASSERT(config->replica_count >= 1);
    ASSERT(config->replica_count <= COHORT_REPLICAS_MAX);
    ASSERT(config->workload.client_count + config->replica_count <=
           SIM_NODES_MAX);
    memset(c, 0, sizeof(*c));
    c->config = *config;
    c->config.workload.replica_count = config->replica_count;
    prng_init(&c->prng, config->seed);
    c->trace_hash = XXH3_createState();
    ASSERT(c->trace_hash != NULL);
    XXH3_64bits_reset(c->trace_hash);
    sim_net_init(&c->net, &c->prng, config->replica_count, &config->net);
    workload_init(&c->workload, &c->prng, &c->config.workload, 0);
    check_init(&c->check);
    for (uint32_t i = 0; i < config->replica_count; i++) {
        struct sim_replica *rep = &c->replicas[i];
        rep->cluster = c;
        rep->index = i;
        rep->sm_iface.ctx = rep;
        rep->sm_iface.apply = sm_apply;
        sim_disk_init(&rep->disk, &c->prng, &config->disk);
        uint32_t drift = config->clock_drift_ppm;
        rep->rate_ppm =
            PPM - drift + (uint32_t)prng_range(&c->prng, 0, 2ull * drift);
        rep->clock_base_local = prng_range(&c->prng, 1000, 1000000);
    }
    for (uint32_t i = 0; i < config->replica_count; i++)
        cluster_restart(c, i);
}

void cluster_deinit(struct cluster *c)
{
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        replica_deinit(c->replicas[i].r);
        sim_disk_deinit(&c->replicas[i].disk);
    }
    sim_net_deinit(&c->net);
    workload_deinit(&c->workload);
    check_deinit(&c->check);
    XXH3_freeState(c->trace_hash);
    free(c->scratch);
    memset(c, 0, sizeof(*c));
}

bool cluster_alive(const struct cluster *c, uint32_t i)
{
    return c->replicas[i].r != NULL;
}

static bool runnable(const struct sim_replica *rep)
{
    return rep->r && !rep->paused;
}

/* ----------------------------------------------------- failure detector */

static void fd_fault(struct cluster *c, uint32_t i)
{
    if (cluster_primary(c) == i && !c->fd_fault_at[i])
        c->fd_fault_at[i] = c->now ? c->now : 1;
}

static void fd_fault_over(struct cluster *c, uint32_t i)
{
    if (c->fd_fault_at[i]) {
        c->fd_fault_at[i] = 0;
        c->stats.fd_undetected++;
    }
}

static bool fd_healthy(const struct cluster *c, uint32_t p, uint32_t b)
{
    const struct sim_replica *rp = &c->replicas[p];
    return runnable(rp) && replica_is_primary(rp->r) &&
           sim_net_reachable(&c->net, p, b) && sim_net_reachable(&c->net, b, p);
}

static void fd_observe(struct cluster *c, struct sim_replica *rep)
{
    struct replica *r = rep->r;
    bool active = replica_status(r) != STATUS_RECOVERING;
    for (uint32_t p = 0; p < c->config.replica_count; p++) {
        if (p == rep->index)
            continue;
        bool s = replica_suspects(r, p);
        bool rising = s && !rep->suspected[p];
        rep->suspected[p] = s;
        if (!rising || !active)
            continue;
        if (c->fd_fault_at[p]) {
            struct cluster_stats *st = &c->stats;
            if (st->fd_detections < 64)
                st->fd_detect_ms[st->fd_detections] =
                    c->now - c->fd_fault_at[p];
            st->fd_detections++;
            cluster_trace(c, "fd: r%u suspects primary r%u after %" PRIu64 "ms",
                          rep->index, p, c->now - c->fd_fault_at[p]);
            c->fd_fault_at[p] = 0;
            continue;
        }
        if (replica_primary(r) != p)
            continue;
        c->stats.fd_suspicions++;
        if (fd_healthy(c, p, rep->index)) {
            c->stats.fd_false++;
            cluster_trace(c, "fd: r%u falsely suspects primary r%u", rep->index,
                          p);
        }
    }
}

/* ------------------------------------------------------ per-step checks */

static void learn_committed(struct cluster *c, struct sim_replica *rep,
                            uint64_t from, uint64_t to)
{
    for (uint64_t op = from + 1; op <= to; op++) {
        const struct entry *e = replica_entry(rep->r, op);
        if (!e) {
            check_fail(&c->check, "commit",
                       "replica %" PRIu32 " has commit %" PRIu64
                       " but no entry at op %" PRIu64 " (log base %" PRIu64 ")",
                       rep->index, replica_commit(rep->r), op,
                       replica_log_base(rep->r));
            return;
        }
        check_committed_entry(&c->check, rep->index, e);
    }
}

static void after_step(struct cluster *c, struct sim_replica *rep, bool full)
{
    struct replica *r = rep->r;
    uint64_t base = replica_log_base(r);
    uint64_t applied = replica_applied(r);
    uint64_t commit = replica_commit(r);
    uint64_t op = replica_op(r);
    uint32_t view = replica_view(r);
    enum replica_status status = replica_status(r);
    if (base > applied || applied > commit || commit > op)
        check_fail(&c->check, "commit",
                   "replica %" PRIu32 " has log base %" PRIu64
                   ", applied %" PRIu64 ", commit %" PRIu64 ", op %" PRIu64
                   ": not base <= applied <= commit <= op",
                   rep->index, base, applied, commit, op);
    if (commit < rep->commit_seen)
        check_fail(&c->check, "commit",
                   "replica %" PRIu32 " commit number went back from %" PRIu64
                   " to %" PRIu64 " while it ran",
                   rep->index, rep->commit_seen, commit);
    if (view < rep->view_seen)
        check_fail(&c->check, "primary",
                   "replica %" PRIu32 " view went back from %" PRIu32
                   " to %" PRIu32,
                   rep->index, rep->view_seen, view);
    uint64_t from = rep->learned_upto;
    if (full || view != rep->view_seen || status != rep->status_seen)
        from = 0; /* re-check the whole committed log after a change */
    if (from < base)
        from = base;
    if (commit > from)
        learn_committed(c, rep, from, commit);
    check_commit_number(&c->check, commit);
    rep->learned_upto = commit;
    rep->commit_seen = commit;
    rep->view_seen = view;
    rep->status_seen = status;
    if (replica_is_primary(r))
        check_primary(&c->check, rep->index, view);
    fd_observe(c, rep);
}

/* ------------------------------------------------------------- actions */

static struct entry *persist_scratch(struct cluster *c, uint64_t count)
{
    if (count > c->scratch_capacity) {
        c->scratch_capacity = count * 2;
        free(c->scratch);
        c->scratch = malloc(c->scratch_capacity * sizeof(*c->scratch));
        ASSERT(c->scratch != NULL);
    }
    return c->scratch;
}

static void do_persist(struct cluster *c, struct sim_replica *rep,
                       const struct action *a)
{
    uint64_t first = a->persist.op_first;
    uint64_t last = a->persist.op_last;
    if (last + 1 < first || first == 0) {
        check_fail(&c->check, "contract",
                   "replica %" PRIu32 " ACT_PERSIST op_first %" PRIu64
                   " op_last %" PRIu64,
                   rep->index, first, last);
        return;
    }
    uint64_t count = last + 1 - first;
    struct entry *list = persist_scratch(c, count ? count : 1);
    for (uint64_t i = 0; i < count; i++) {
        const struct entry *e = replica_entry(rep->r, first + i);
        if (!e) {
            check_fail(&c->check, "contract",
                       "replica %" PRIu32 " ACT_PERSIST %" PRIu64 "..%" PRIu64
                       " but replica_entry(%" PRIu64 ") is NULL",
                       rep->index, first, last, first + i);
            return;
        }
        list[i] = *e; /* replica_entry() reuses one struct */
    }
    sim_disk_persist(&rep->disk, c->now, first, last, a->persist.checksum, list,
                     (uint32_t)count);
    cluster_trace(c, "r%u ACT_PERSIST %" PRIu64 "..%" PRIu64, rep->index, first,
                  last);
}

static void do_snapshot_take(struct cluster *c, struct sim_replica *rep,
                             const struct action *a)
{
    uint8_t state[KVSM_STATE_SIZE];
    kvsm_encode(&rep->sm, state);
    struct sim_snapshot s = {
        .op = a->snapshot_take.op,
        .checksum = a->snapshot_take.checksum,
        .timestamp_ms = a->snapshot_take.timestamp_ms,
        .state = state,
        .state_size = sizeof(state),
        .client_table = (uint8_t *)a->snapshot_take.client_table,
        .client_table_size = a->snapshot_take.client_table_size,
    };
    if (s.op != replica_applied(rep->r))
        check_fail(&c->check, "contract",
                   "replica %" PRIu32 " ACT_SNAPSHOT_TAKE at op %" PRIu64
                   " but it has applied %" PRIu64,
                   rep->index, s.op, replica_applied(rep->r));
    check_restore(&c->check, rep->index, s.op, kvsm_hash(&rep->sm));
    sim_disk_snapshot(&rep->disk, c->now, false, &s);
    cluster_trace(c, "r%u ACT_SNAPSHOT_TAKE op=%" PRIu64, rep->index, s.op);
}

static void do_snapshot_send(struct cluster *c, struct sim_replica *rep,
                             uint32_t to)
{
    const struct sim_snapshot *s = &rep->disk.snapshot;
    if (s->op == 0) {
        check_fail(&c->check, "contract",
                   "replica %" PRIu32 " ACT_SNAPSHOT_SEND to %" PRIu32
                   " with no durable snapshot",
                   rep->index, to);
        return;
    }
    size_t size = SNAPSHOT_HEADER + s->state_size + s->client_table_size;
    uint8_t *blob = malloc(size);
    ASSERT(blob != NULL);
    put_u64(blob, s->op);
    put_u64(blob + 8, s->checksum);
    put_u64(blob + 16, s->timestamp_ms);
    put_u32(blob + 24, (uint32_t)s->state_size);
    put_u32(blob + 28, (uint32_t)s->client_table_size);
    memcpy(blob + SNAPSHOT_HEADER, s->state, s->state_size);
    memcpy(blob + SNAPSHOT_HEADER + s->state_size, s->client_table,
           s->client_table_size);
    sim_net_send(&c->net, c->now, rep->index, to, SIM_MSG_SNAPSHOT, blob, size);
    free(blob);
    c->stats.snapshots_sent++;
    cluster_trace(c, "r%u ACT_SNAPSHOT_SEND op=%" PRIu64 " to r%u", rep->index,
                  s->op, to);
}

/* Send a reply from rep to the client of session id. */
static void send_reply(struct cluster *c, struct sim_replica *rep, uint64_t id,
                       uint64_t request_no, enum reply_status status,
                       uint32_t hint, uint64_t op, const uint8_t *data,
                       size_t data_size)
{
    uint32_t client = (uint32_t)(id & 0xffff) - 1;
    if (client >= c->config.workload.client_count)
        return;
    size_t size = REPLY_HEADER + data_size;
    uint8_t buf[REPLY_HEADER + 64];
    if (size > sizeof(buf)) {
        check_fail(&c->check, "reply", "replica %" PRIu32 " reply of %zu bytes",
                   rep->index, data_size);
        return;
    }
    put_u64(buf, id);
    put_u64(buf + 8, request_no);
    buf[16] = (uint8_t)status;
    put_u32(buf + 17, hint);
    put_u64(buf + 21, op);
    if (data_size)
        memcpy(buf + REPLY_HEADER, data, data_size);
    sim_net_send(&c->net, c->now, rep->index, c->config.replica_count + client,
                 SIM_MSG_REPLY, buf, size);
}

static void do_reply(struct cluster *c, struct sim_replica *rep,
                     const struct action *a)
{
    uint64_t id = a->reply.client_id;
    if (a->reply.status == REPLY_OK)
        check_reply(&c->check, rep->index, id, a->reply.request_no, a->reply.op,
                    a->reply.data, a->reply.size);
    cluster_trace(c,
                  "r%u ACT_REPLY client=%" PRIx64 " request=%" PRIu64
                  " status=%d op=%" PRIu64 " hint=%u",
                  rep->index, id, a->reply.request_no, (int)a->reply.status,
                  a->reply.op, a->reply.primary_hint);
    send_reply(c, rep, id, a->reply.request_no, a->reply.status,
               a->reply.primary_hint, a->reply.op, a->reply.data,
               a->reply.size);
}

/* The core answered a read: serve it from this replica's state machine as it
 * is now (REPLY_OK; op 0 in the reply: no log op), or pass the refusal on.
 * Only the linearizability check judges the value. */
static void do_read(struct cluster *c, struct sim_replica *rep,
                    const struct action *a)
{
    uint32_t i = 0;
    while (i < rep->read_count && rep->reads[i].tag != a->read.tag)
        i++;
    if (i == rep->read_count) {
        check_fail(&c->check, "read",
                   "replica %" PRIu32 " answered unknown read tag %" PRIu64,
                   rep->index, a->read.tag);
        return;
    }
    struct sim_read rd = rep->reads[i];
    rep->reads[i] = rep->reads[--rep->read_count];
    hash_mix(c, rep->index, 6000 + a->read.status, rd.client_id, rd.request_no);
    cluster_trace(c,
                  "r%u ACT_READ tag=%" PRIu64 " client=%" PRIx64
                  " request=%" PRIu64 " status=%d",
                  rep->index, a->read.tag, rd.client_id, rd.request_no,
                  (int)a->read.status);
    uint8_t reply[KVSM_REPLY_SIZE];
    size_t size = 0;
    if (a->read.status == REPLY_OK) {
        struct kvsm_cmd get = {.kind = KVSM_GET, .key = rd.key};
        struct kvsm_reply value = kvsm_exec(&rep->sm, &get);
        kvsm_reply_encode(&value, reply);
        size = sizeof(reply);
    }
    send_reply(c, rep, rd.client_id, rd.request_no, a->read.status,
               a->read.primary_hint, 0, reply, size);
}

static void do_action(struct cluster *c, struct sim_replica *rep,
                      const struct action *a)
{
    hash_mix(c, rep->index, 1000 + a->type, 0, 0);
    switch (a->type) {
    case ACT_SEND:
        hash_mix(c, a->send.to, a->send.size,
                 XXH3_64bits(a->send.data, a->send.size), 0);
        if (c->config.trace) {
            char d[160];
            describe_message(c, a->send.data, a->send.size, d, sizeof(d));
            cluster_trace(c, "r%u ACT_SEND to r%u %s", rep->index, a->send.to,
                          d);
        }
        sim_net_send(&c->net, c->now, rep->index, a->send.to, SIM_MSG_PEER,
                     a->send.data, a->send.size);
        break;
    case ACT_PERSIST:
        hash_mix(c, a->persist.op_first, a->persist.op_last,
                 a->persist.checksum, 0);
        do_persist(c, rep, a);
        break;
    case ACT_PERSIST_META:
        hash_mix(c, a->meta.seq, a->meta.meta.view,
                 a->meta.meta.last_normal_view, 0);
        sim_disk_meta(&rep->disk, c->now, a->meta.seq, &a->meta.meta);
        cluster_trace(c,
                      "r%u ACT_PERSIST_META seq=%" PRIu64 " view=%" PRIu32
                      " lnv=%" PRIu32,
                      rep->index, a->meta.seq, a->meta.meta.view,
                      a->meta.meta.last_normal_view);
        break;
    case ACT_REPLY:
        hash_mix(c, a->reply.client_id, a->reply.request_no, a->reply.status,
                 a->reply.op);
        do_reply(c, rep, a);
        break;
    case ACT_VIEW:
        hash_mix(c, a->view.view, a->view.primary, 0, 0);
        cluster_trace(c, "r%u ACT_VIEW view=%" PRIu64 " primary=r%u",
                      rep->index, a->view.view, a->view.primary);
        break;
    case ACT_SNAPSHOT_TAKE:
        hash_mix(c, a->snapshot_take.op, a->snapshot_take.checksum, 0, 0);
        do_snapshot_take(c, rep, a);
        break;
    case ACT_LOG_COMPACT:
        hash_mix(c, a->compact.op, 0, 0, 0);
        cluster_trace(c, "r%u ACT_LOG_COMPACT op=%" PRIu64, rep->index,
                      a->compact.op);
        if (!sim_disk_compact(&rep->disk, a->compact.op))
            check_fail(&c->check, "contract",
                       "replica %" PRIu32 " ACT_LOG_COMPACT through op %" PRIu64
                       " but its durable snapshot is at op %" PRIu64,
                       rep->index, a->compact.op, rep->disk.snapshot.op);
        break;
    case ACT_READ:
        do_read(c, rep, a);
        break;
    case ACT_SNAPSHOT_SEND:
        hash_mix(c, a->snapshot_send.to, 0, 0, 0);
        do_snapshot_send(c, rep, a->snapshot_send.to);
        break;
    default:
        check_fail(&c->check, "contract", "replica %" PRIu32 " action type %d",
                   rep->index, (int)a->type);
    }
}

/* Step replica rep with ev (now_ms filled in here), carry out its actions
 * and check it. */
static void deliver(struct cluster *c, struct sim_replica *rep,
                    struct event *ev)
{
    ASSERT(runnable(rep));
    ev->now_ms = local_now(rep, c->now);
    hash_mix(c, rep->index, ev->type, ev->now_ms, 0);
    c->check.step = c->step;
    c->check.now_ms = c->now;
    struct actions out;
    replica_step(rep->r, ev, &out);
    for (uint32_t i = 0; i < out.count; i++)
        do_action(c, rep, &out.list[i]);
    after_step(c, rep, false);
    check_advance(&c->check);
    uint64_t next = replica_next_tick_ms(rep->r, ev->now_ms);
    if (next > c->config.tick_interval_ms)
        next = c->config.tick_interval_ms;
    rep->tick_at = c->now + global_delay(rep, next);
}

/* ------------------------------------------------------------- events */

static void on_disk_done(struct cluster *c, struct sim_replica *rep)
{
    struct sim_disk_done done;
    sim_disk_complete(&rep->disk, &done);
    struct event ev = {0};
    switch (done.kind) {
    case SIM_WRITE_LOG:
        if (done.gap)
            check_fail(&c->check, "contract",
                       "replica %" PRIu32 " ACT_PERSIST through op %" PRIu64
                       " starts past its durable log, which ends at op %" PRIu64
                       ": the log would have a hole",
                       rep->index, done.op, done.gap_durable_op);
        ev.type = EV_PERSISTED;
        ev.persisted.op = done.op;
        ev.persisted.checksum = done.checksum;
        break;
    case SIM_WRITE_META:
        ev.type = EV_META_PERSISTED;
        ev.meta.seq = done.seq;
        break;
    case SIM_WRITE_SNAPSHOT_TAKE:
        ev.type = EV_SNAPSHOT_TAKEN;
        ev.snapshot_taken.op = done.op;
        break;
    case SIM_WRITE_SNAPSHOT_INSTALL: {
        const struct sim_snapshot *s = done.snapshot;
        if (done.op <= replica_applied(rep->r) || s->op != done.op) {
            c->stats.snapshots_dropped++;
            cluster_trace(c, "r%u snapshot op=%" PRIu64 " not installed",
                          rep->index, done.op);
            return;
        }
        if (!kvsm_restore(&rep->sm, s->state, s->state_size)) {
            check_fail(&c->check, "contract",
                       "replica %" PRIu32 " got a snapshot it cannot restore",
                       rep->index);
            return;
        }
        check_restore(&c->check, rep->index, s->op, kvsm_hash(&rep->sm));
        c->stats.snapshots_installed++;
        ev.type = EV_SNAPSHOT_INSTALLED;
        ev.snapshot.op = s->op;
        ev.snapshot.checksum = s->checksum;
        ev.snapshot.timestamp_ms = s->timestamp_ms;
        ev.snapshot.client_table = s->client_table;
        ev.snapshot.client_table_size = s->client_table_size;
        break;
    }
    }
    if (ev.type == EV_META_PERSISTED)
        cluster_trace(c, "r%u EV_META_PERSISTED seq=%" PRIu64, rep->index,
                      done.seq);
    else
        cluster_trace(c, "r%u %s op=%" PRIu64, rep->index, event_name(ev.type),
                      done.op);
    deliver(c, rep, &ev);
}

static void on_snapshot_arrival(struct cluster *c, struct sim_replica *rep,
                                const uint8_t *data, size_t size)
{
    struct sim_snapshot s = {0};
    ASSERT(size >= SNAPSHOT_HEADER);
    s.op = get_u64(data);
    s.checksum = get_u64(data + 8);
    s.timestamp_ms = get_u64(data + 16);
    s.state_size = get_u32(data + 24);
    s.client_table_size = get_u32(data + 28);
    ASSERT(size == SNAPSHOT_HEADER + s.state_size + s.client_table_size);
    s.state = (uint8_t *)data + SNAPSHOT_HEADER;
    s.client_table = (uint8_t *)data + SNAPSHOT_HEADER + s.state_size;
    if (s.op <= replica_applied(rep->r)) {
        c->stats.snapshots_dropped++;
        cluster_trace(c, "r%u snapshot op=%" PRIu64 " arrives, dropped",
                      rep->index, s.op);
        return;
    }
    cluster_trace(c, "r%u snapshot op=%" PRIu64 " arrives, installing",
                  rep->index, s.op);
    sim_disk_snapshot(&rep->disk, c->now, true, &s);
}

static void on_request_arrival(struct cluster *c, struct sim_replica *rep,
                               const uint8_t *data, size_t size)
{
    ASSERT(size >= REQUEST_HEADER);
    struct client_request req = {
        .client_id = get_u64(data),
        .request_no = get_u64(data + 8),
        .body = data + REQUEST_HEADER,
        .body_size = (uint32_t)(size - REQUEST_HEADER),
    };
    struct event ev = {.type = EV_CLIENT_REQUEST};
    ev.client.requests = &req;
    ev.client.count = 1;
    cluster_trace(c,
                  "r%u EV_CLIENT_REQUEST client=%" PRIx64 " request=%" PRIu64,
                  rep->index, req.client_id, req.request_no);
    deliver(c, rep, &ev);
}

/* A GET by read index: the driver's part, as in src/runtime/node.c. */
static void on_read_arrival(struct cluster *c, struct sim_replica *rep,
                            const uint8_t *data, size_t size)
{
    ASSERT(size >= REQUEST_HEADER);
    struct kvsm_cmd cmd;
    bool valid =
        kvsm_cmd_decode(data + REQUEST_HEADER, size - REQUEST_HEADER, &cmd);
    ASSERT(valid && cmd.kind == KVSM_GET);
    if (rep->read_count == SIM_READS_MAX) {
        cluster_trace(c, "r%u read dropped: too many waiting", rep->index);
        return; /* the client times out and retries */
    }
    struct sim_read *rd = &rep->reads[rep->read_count++];
    rd->tag = ++c->read_tag;
    rd->client_id = get_u64(data);
    rd->request_no = get_u64(data + 8);
    rd->key = cmd.key;
    struct event ev = {.type = EV_READ};
    ev.read.tag = rd->tag;
    cluster_trace(
        c, "r%u EV_READ tag=%" PRIu64 " client=%" PRIx64 " request=%" PRIu64,
        rep->index, rd->tag, rd->client_id, rd->request_no);
    deliver(c, rep, &ev);
}

static void on_reply_arrival(struct cluster *c, uint32_t client,
                             const uint8_t *data, size_t size)
{
    ASSERT(size >= REPLY_HEADER);
    hash_mix(c, 2000 + client, get_u64(data), get_u64(data + 8), data[16]);
    workload_on_reply(&c->workload, c->now, client, get_u64(data),
                      get_u64(data + 8), (enum reply_status)data[16],
                      get_u32(data + 17), get_u64(data + 21),
                      data + REPLY_HEADER, size - REPLY_HEADER);
}

static void on_net(struct cluster *c)
{
    struct sim_msg m;
    if (!sim_net_pop(&c->net, &m)) {
        cluster_trace(c, "net: %u -> %u cut by a partition", m.from, m.to);
        return;
    }
    if (m.to >= c->config.replica_count) {
        on_reply_arrival(c, m.to - c->config.replica_count, m.data, m.size);
        free(m.data);
        return;
    }
    struct sim_replica *rep = &c->replicas[m.to];
    if (!rep->r) {
        cluster_trace(c, "net: %u -> r%u dropped: crashed", m.from, m.to);
        free(m.data);
        return;
    }
    if (rep->paused) {
        sim_net_requeue(&c->net, &m, rep->paused_until);
        return;
    }
    if (m.kind == SIM_MSG_PEER) {
        if (c->config.trace) {
            char d[160];
            describe_message(c, m.data, m.size, d, sizeof(d));
            cluster_trace(c, "r%u EV_MESSAGE %s%s", m.to, d,
                          m.duplicate ? " (duplicate)" : "");
        }
        struct event ev = {.type = EV_MESSAGE};
        ev.message.data = m.data;
        ev.message.size = m.size;
        deliver(c, rep, &ev);
    } else if (m.kind == SIM_MSG_SNAPSHOT) {
        on_snapshot_arrival(c, rep, m.data, m.size);
    } else if (m.kind == SIM_MSG_READ) {
        on_read_arrival(c, rep, m.data, m.size);
    } else {
        on_request_arrival(c, rep, m.data, m.size);
    }
    free(m.data);
}

/* Tell rep that peer is down, as the runtime does when a peer's port
 * refuses a connection. */
static void peer_down(struct cluster *c, struct sim_replica *rep, uint32_t peer)
{
    struct event ev = {.type = EV_PEER_DOWN};
    ev.peer_down.peer = peer;
    cluster_trace(c, "r%u EV_PEER_DOWN r%u", rep->index, peer);
    deliver(c, rep, &ev);
}

static void on_tick(struct cluster *c, struct sim_replica *rep)
{
    /* Now and then a wrong hint: the core must stay safe when the driver
     * calls a live peer down. */
    if (prng_chance(&c->prng, 200)) {
        uint32_t peer = (uint32_t)prng_below(&c->prng, c->config.replica_count);
        if (peer != rep->index)
            peer_down(c, rep, peer);
        if (!rep->r)
            return;
    }
    struct event ev = {.type = EV_TICK};
    cluster_trace(c, "r%u EV_TICK local %" PRIu64 "ms", rep->index,
                  local_now(rep, c->now));
    deliver(c, rep, &ev);
}

static void on_resume(struct cluster *c, struct sim_replica *rep)
{
    rep->paused = false;
    fd_fault_over(c, rep->index);
    cluster_trace(c, "r%u resumes", rep->index);
    hash_mix(c, rep->index, 3000, 0, 0);
    /* What arrived during the pause is handled before the overdue tick
     * (network before ticks at equal times), as a libuv process stopped
     * in epoll_wait runs its I/O callbacks before its timers: a stale
     * primary sees client reads before it notices it lost its quorum. */
    rep->tick_at = c->now;
}

static void on_client(struct cluster *c)
{
    struct workload_send s;
    if (!workload_fire(&c->workload, c->now, &s))
        return;
    uint8_t buf[REQUEST_HEADER + KVSM_BODY_SIZE];
    put_u64(buf, s.client_id);
    put_u64(buf + 8, s.request_no);
    memcpy(buf + REQUEST_HEADER, s.body, KVSM_BODY_SIZE);
    hash_mix(c, 4000 + s.client, s.replica, s.client_id, s.request_no);
    cluster_trace(c, "client %u sends request %" PRIu64 " (%s) to r%u",
                  s.client, s.request_no, kvsm_kind_name(s.body[0]), s.replica);
    sim_net_send(&c->net, c->now, c->config.replica_count + s.client, s.replica,
                 s.read ? SIM_MSG_READ : SIM_MSG_REQUEST, buf, sizeof(buf));
}

static void consider(enum source *best, uint64_t *best_at, uint32_t *best_i,
                     enum source source, uint64_t at, uint32_t i)
{
    if (*best == SOURCE_NONE || at < *best_at) {
        *best = source;
        *best_at = at;
        *best_i = i;
    }
}

static enum source next_source(const struct cluster *c, uint64_t *at,
                               uint32_t *index)
{
    enum source best = SOURCE_NONE;
    uint32_t n = c->config.replica_count;
    uint64_t t;
    for (uint32_t i = 0; i < n; i++)
        if (c->replicas[i].r && c->replicas[i].paused)
            consider(&best, at, index, SOURCE_RESUME,
                     c->replicas[i].paused_until, i);
    for (uint32_t i = 0; i < n; i++)
        if (runnable(&c->replicas[i]) &&
            sim_disk_next_at(&c->replicas[i].disk, &t))
            consider(&best, at, index, SOURCE_DISK, t, i);
    if (sim_net_next_at(&c->net, &t))
        consider(&best, at, index, SOURCE_NET, t, 0);
    for (uint32_t i = 0; i < n; i++)
        if (runnable(&c->replicas[i]))
            consider(&best, at, index, SOURCE_TICK, c->replicas[i].tick_at, i);
    if (workload_next_at(&c->workload, &t))
        consider(&best, at, index, SOURCE_CLIENT, t, 0);
    return best;
}

bool cluster_next_at(const struct cluster *c, uint64_t *at)
{
    uint32_t index;
    uint64_t t = 0;
    if (next_source(c, &t, &index) == SOURCE_NONE)
        return false;
    *at = t > c->now ? t : c->now;
    return true;
}

void cluster_advance(struct cluster *c, uint64_t at)
{
    ASSERT(at >= c->now);
    c->now = at;
}

void cluster_step(struct cluster *c)
{
    uint64_t at = 0;
    uint32_t i = 0;
    enum source source = next_source(c, &at, &i);
    ASSERT(source != SOURCE_NONE);
    if (at > c->now) {
        c->now = at;
        c->steps_at_now = 0;
    }
    if (++c->steps_at_now > LIVELOCK_STEPS)
        check_fail(&c->check, "progress",
                   "livelock: %u steps without virtual time moving "
                   "(replica_next_tick_ms() keeps answering 0?)",
                   LIVELOCK_STEPS);
    c->step++;
    c->check.step = c->step;
    c->check.now_ms = c->now;
    switch (source) {
    case SOURCE_RESUME:
        on_resume(c, &c->replicas[i]);
        break;
    case SOURCE_DISK:
        on_disk_done(c, &c->replicas[i]);
        break;
    case SOURCE_NET:
        on_net(c);
        break;
    case SOURCE_TICK:
        on_tick(c, &c->replicas[i]);
        break;
    case SOURCE_CLIENT:
        on_client(c);
        break;
    default:
        UNREACHABLE();
    }
}

/* ------------------------------------------------------------- faults */

void cluster_crash(struct cluster *c, uint32_t i)
{
    struct sim_replica *rep = &c->replicas[i];
    if (!rep->r)
        return;
    fd_fault(c, i);
    replica_deinit(rep->r);
    rep->r = NULL;
    rep->read_count = 0; /* their clients time out and retry */
    rep->paused = false;
    if (sim_disk_crash(&rep->disk))
        c->stats.torn_writes++;
    c->stats.crashes++;
    hash_mix(c, i, 5000, 0, 0);
    cluster_trace(c, "r%u CRASH", i);
    /* Peers usually notice a crash at once (its port refuses them). */
    for (uint32_t j = 0; j < c->config.replica_count; j++) {
        struct sim_replica *o = &c->replicas[j];
        if (j != i && o->r && !o->paused && prng_chance(&c->prng, 500000))
            peer_down(c, o, i);
    }
}

/* The core's configuration in the simulator: small limits, so that
 * pipelines fill, snapshots and compaction happen within a few hundred ops,
 * and lagging replicas need state transfer. */
static void replica_config_for(struct cluster *c, struct sim_replica *rep,
                               struct replica_config *config)
{
    replica_config_defaults(config, c->config.replica_count, rep->index,
                            prng_next(&c->prng));
    config->body_size_max = 256;
    config->reply_size_max = 64;
    config->pipeline_ops_max = 64;
    config->pipeline_bytes_max = 64u * 256u;
    config->batch_ops_max = 32;
    config->snapshot_interval_ops =
        c->config.snapshot_interval_ops ? c->config.snapshot_interval_ops : 48;
    config->log_ops_max =
        2u * config->pipeline_ops_max + config->snapshot_interval_ops + 64u;
    config->log_bytes_max = 4u * config->pipeline_bytes_max;
    /* Room for every session a run can open, so the core never forgets a
     * client: the reference model in sim/check.c does not model eviction. */
    config->client_table_max = 1024;
    config->sm = &rep->sm_iface;
    config->trace = c->config.trace ? core_trace : NULL;
    config->trace_ctx = rep;
    config->bugs = c->config.bugs;
}

void cluster_restart(struct cluster *c, uint32_t i)
{
    struct sim_replica *rep = &c->replicas[i];
    if (rep->r)
        return;
    struct sim_disk_image img;
    sim_disk_load(&rep->disk, &img);
    /* A log suffix that does not continue the snapshot is a stale branch:
     * the snapshot holds a committed op this replica had not yet rewritten
     * on disk when it crashed. The loader drops it, as src/runtime/node.c
     * does; only the entries that chain reach the core. */
    if (img.unchained_op && c->config.trace)
        printf("%8" PRIu64 "ms          r%" PRIu32 " stale log from op %" PRIu64
               " dropped (snapshot op %" PRIu64 ")\n",
               c->now, i, img.unchained_op, img.durable.snapshot_op);
    kvsm_init(&rep->sm);
    if (img.durable.snapshot_op) {
        bool ok = kvsm_restore(&rep->sm, img.snapshot->state,
                               img.snapshot->state_size);
        ASSERT(ok);
        check_restore(&c->check, i, img.durable.snapshot_op,
                      kvsm_hash(&rep->sm));
    }
    struct replica_config config;
    replica_config_for(c, rep, &config);
    uint64_t now_local = local_now(rep, c->now);
    rep->r = replica_init(&config, &img.durable, now_local);
    if (!rep->r) {
        check_fail(&c->check, "init",
                   "replica_init() of replica %" PRIu32 " returned NULL", i);
        return;
    }
    rep->incarnation++;
    rep->paused = false;
    rep->tick_at = c->now;
    rep->learned_upto = 0;
    rep->commit_seen = 0;
    rep->view_seen = 0;
    rep->status_seen = 0;
    memset(rep->suspected, 0, sizeof(rep->suspected));
    fd_fault_over(c, i);
    if (c->now > 0)
        c->stats.restarts++;
    hash_mix(c, i, 6000, img.durable.entry_count, img.durable.damaged_op);
    cluster_trace(c,
                  "r%u RESTART snapshot=%" PRIu64 " entries=%" PRIu64
                  " damaged_op=%" PRIu64 " torn_op=%" PRIu64 " view=%" PRIu32
                  " lnv=%" PRIu32,
                  i, img.durable.snapshot_op, img.durable.entry_count,
                  img.durable.damaged_op, img.torn_op, img.durable.view,
                  img.durable.last_normal_view);
    after_step(c, rep, true);
    check_advance(&c->check);
}

void cluster_pause(struct cluster *c, uint32_t i, uint64_t duration_ms)
{
    struct sim_replica *rep = &c->replicas[i];
    if (!rep->r || rep->paused)
        return;
    fd_fault(c, i);
    rep->paused = true;
    rep->paused_until = c->now + duration_ms;
    c->stats.pauses++;
    hash_mix(c, i, 7000, duration_ms, 0);
    cluster_trace(c, "r%u PAUSE for %" PRIu64 "ms", i, duration_ms);
}

uint64_t cluster_corrupt(struct cluster *c, uint32_t i, uint64_t op_max)
{
    uint64_t op = sim_disk_corrupt(&c->replicas[i].disk, op_max);
    if (op) {
        c->stats.corruptions++;
        hash_mix(c, i, 8000, op, 0);
        cluster_trace(c, "r%u CORRUPT durable record op=%" PRIu64, i, op);
    }
    return op;
}

void cluster_partitioned(struct cluster *c)
{
    c->stats.partitions++;
    uint32_t p = cluster_primary(c);
    if (p != UINT32_MAX)
        for (uint32_t b = 0; b < c->config.replica_count; b++)
            if (b != p && !sim_net_reachable(&c->net, p, b)) {
                fd_fault(c, p);
                break;
            }
    hash_mix(c, 9000, 0, 0, 0);
}

void cluster_healed(struct cluster *c)
{
    for (uint32_t i = 0; i < c->config.replica_count; i++)
        if (c->replicas[i].r && !c->replicas[i].paused)
            fd_fault_over(c, i);
    hash_mix(c, 9001, 0, 0, 0);
}

/* ------------------------------------------------------------- queries */

uint32_t cluster_primary(const struct cluster *c)
{
    uint32_t best = UINT32_MAX;
    uint32_t best_view = 0;
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        const struct replica *r = c->replicas[i].r;
        if (!r || !replica_is_primary(r))
            continue;
        if (best == UINT32_MAX || replica_view(r) > best_view) {
            best = i;
            best_view = replica_view(r);
        }
    }
    return best;
}

bool cluster_quiescent(const struct cluster *c)
{
    uint32_t view = 0;
    bool first = true;
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        const struct sim_replica *rep = &c->replicas[i];
        if (!rep->r)
            continue;
        if (rep->paused || rep->disk.pending_count > 0)
            return false;
        if (replica_status(rep->r) != STATUS_NORMAL)
            return false;
        if (!first && replica_view(rep->r) != view)
            return false;
        view = replica_view(rep->r);
        first = false;
        uint64_t commit = replica_commit(rep->r);
        if (commit != c->check.commit_max ||
            replica_applied(rep->r) != commit || replica_op(rep->r) != commit)
            return false;
    }
    return !first;
}

void cluster_check_converged(struct cluster *c)
{
    struct check *chk = &c->check;
    check_finish(chk);
    if (chk->ref_op != chk->commit_max)
        check_fail(chk, "converge",
                   "ops up to %" PRIu64 " are committed but only %" PRIu64
                   " are known",
                   chk->commit_max, chk->ref_op);
    for (uint32_t i = 0; i < c->config.replica_count && !chk->failed; i++) {
        struct sim_replica *rep = &c->replicas[i];
        if (!rep->r)
            continue;
        uint64_t applied = replica_applied(rep->r);
        if (applied != chk->commit_max) {
            check_fail(chk, "converge",
                       "replica %" PRIu32 " applied %" PRIu64
                       " ops; the group committed %" PRIu64,
                       i, applied, chk->commit_max);
            break;
        }
        uint64_t hash = kvsm_hash(&rep->sm);
        if (hash != check_state_hash(chk, applied))
            check_fail(chk, "converge",
                       "replica %" PRIu32 " state %016" PRIx64
                       " differs from the reference state %016" PRIx64
                       " at op %" PRIu64,
                       i, hash, check_state_hash(chk, applied), applied);
        /* Every committed op it still holds is the committed one. */
        after_step(c, rep, true);
    }
}

uint64_t cluster_views(const struct cluster *c)
{
    uint64_t n = 0;
    for (uint64_t v = 0; v < c->check.view_capacity; v++)
        n += c->check.primary_of_view[v] != UINT32_MAX;
    return n;
}

uint64_t cluster_trace_hash(const struct cluster *c)
{
    return XXH3_64bits_digest(c->trace_hash);
}

void cluster_describe(const struct cluster *c, FILE *out)
{
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        const struct sim_replica *rep = &c->replicas[i];
        if (!rep->r) {
            fprintf(out, "  r%u: crashed\n", i);
            continue;
        }
        const struct replica *r = rep->r;
        fprintf(out,
                "  r%u: %s%s view=%" PRIu32 " primary=r%u op=%" PRIu64
                " commit=%" PRIu64 " applied=%" PRIu64 " base=%" PRIu64
                " disk_op=%" PRIu64 " pending_writes=%zu\n",
                i, replica_status_name(replica_status(r)),
                rep->paused ? " (paused)" : "", replica_view(r),
                replica_primary(r), replica_op(r), replica_commit(r),
                replica_applied(r), replica_log_base(r),
                sim_disk_last_op(&rep->disk), rep->disk.pending_count);
    }
}
