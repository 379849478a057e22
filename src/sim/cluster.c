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
#include "sim/host.h"
#include "sim/sweep.h"

#define PPM 1000000u
#define REQUEST_HEADER 16       /* client_id, request_no */
#define REPLY_HEADER 29         /* client_id, request_no, status, hint, op */
#define LIVELOCK_STEPS 1000000u /* steps at one virtual instant */

/* Sources of events, in tie-break order. */
enum source {
    SOURCE_NONE = 0,
    SOURCE_RESUME,
    SOURCE_DISK,
    SOURCE_NET,
    SOURCE_TURN,
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

void cluster_hash(struct cluster *c, uint64_t a, uint64_t b, uint64_t x,
                  uint64_t y)
{
    hash_mix(c, a, b, x, y);
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

static void describe_message(const struct cluster *c, const uint8_t *data,
                             size_t size, char *out, size_t out_size)
{
    struct message m;
    if (size >= 1 && data[0] == DRIVER_FRAME_SNAPSHOT) {
        snprintf(out, out_size, "snapshot chunk of %zu bytes", size);
        return;
    }
    if (size >= 1 && data[0] == DRIVER_FRAME_SNAPSHOT_RESUME) {
        snprintf(out, out_size, "snapshot resume");
        return;
    }
    if (size < 1 || data[0] != DRIVER_FRAME_PROTOCOL ||
        !message_decode(data + 1, size - 1, c->config.replica_count, &m)) {
        snprintf(out, out_size, "undecodable %zu bytes", size);
        return;
    }
    snprintf(out, out_size,
             "%s from r%u view=%" PRIu64 " op=%" PRIu64 " commit=%" PRIu64
             " base=%" PRIu64 " entries=%" PRIu32,
             message_type_name(m.type), m.from, m.view, m.op, m.commit,
             m.base_op, m.entry_count);
}

/* ------------------------------------------------------------- clocks */

uint64_t cluster_local_now(const struct sim_replica *rep, uint64_t now)
{
    uint64_t elapsed = now - rep->clock_base_global;
    return rep->clock_base_local + elapsed * rep->rate_ppm / PPM;
}

static uint64_t global_delay(const struct sim_replica *rep, uint64_t local_ms)
{
    return (local_ms * PPM + rep->rate_ppm - 1) / rep->rate_ppm;
}

/* ------------------------------------------------------------- lifecycle */

static void disk_trace(void *ctx, const char *line)
{
    struct sim_replica *rep = ctx;
    cluster_trace(rep->cluster, "r%u disk: %s", rep->index, line);
}

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
        sim_disk_init(&rep->disk, &c->prng, &config->disk);
        if (config->trace) {
            rep->disk.trace = disk_trace;
            rep->disk.trace_ctx = rep;
        }
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
        sim_host_stop(c, &c->replicas[i]);
        sim_disk_deinit(&c->replicas[i].disk);
        if (c->replicas[i].sm_ready)
            kvsm_deinit(&c->replicas[i].sm);
        free(c->replicas[i].snapshot.state);
    }
    sim_net_deinit(&c->net);
    workload_deinit(&c->workload);
    check_deinit(&c->check);
    XXH3_freeState(c->trace_hash);
    memset(c, 0, sizeof(*c));
}

bool cluster_alive(const struct cluster *c, uint32_t i)
{
    return c->replicas[i].driver != NULL;
}

static bool runnable(const struct sim_replica *rep)
{
    return rep->driver && !rep->paused;
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
    const struct replica *r = rep->r;
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

/* At most one primary per (epoch, view): views restart at 0 in each epoch. */
static void check_epoch_primary(struct cluster *c, uint32_t replica,
                                uint32_t epoch, uint64_t view)
{
    if (epoch == 0) {
        check_primary(&c->check, replica, view);
        return;
    }
    for (uint32_t k = 0; k < c->epoch_primary_count; k++) {
        const struct epoch_primary *e = &c->epoch_primaries[k];
        if (e->epoch != epoch || e->view != view)
            continue;
        if (e->primary != replica)
            check_fail(&c->check, "primary",
                       "replicas %" PRIu32 " and %" PRIu32
                       " both acted as primary of epoch %" PRIu32
                       " view %" PRIu64,
                       e->primary, replica, epoch, view);
        return;
    }
    if (c->epoch_primary_count < CLUSTER_EPOCH_VIEWS_MAX)
        c->epoch_primaries[c->epoch_primary_count++] =
            (struct epoch_primary){epoch, view, replica};
}

static void after_step(struct cluster *c, struct sim_replica *rep, bool full)
{
    const struct replica *r = rep->r;
    uint64_t base = replica_log_base(r);
    uint64_t applied = replica_applied(r);
    uint64_t commit = replica_commit(r);
    uint64_t op = replica_op(r);
    uint64_t view = replica_view(r);
    uint32_t epoch = replica_membership(r)->epoch;
    enum replica_status status = replica_status(r);
    if (base > applied || applied > commit || commit > op)
        check_fail(&c->check, "commit",
                   "replica %" PRIu32 " has log base %" PRIu64
                   ", applied %" PRIu64 ", commit %" PRIu64 ", op %" PRIu64
                   ": not base <= applied <= commit <= op",
                   rep->index, base, applied, commit, op);
    if (replica_damaged(r))
        rep->lost_records = true;
    else if (!replica_catching_up(r))
        rep->lost_records = false;
    uint32_t diverged_from = 0;
    uint64_t diverged = replica_diverged(r, &diverged_from);
    uint32_t peer = 0;
    uint64_t peer_diverged = replica_peer_diverged(r, &peer);
    /* No fault here starts a replica on an older copy of its data, so
     * neither report may ever appear (core/transfer.c, "Divergence"). */
    if (diverged || peer_diverged)
        check_fail(&c->check, "divergence",
                   "replica %" PRIu32 " reports a history of committed ops "
                   "other than its peer's, with no disk rolled back: it "
                   "stopped at op %" PRIu64 " shown by replica %" PRIu32
                   ", or replica %" PRIu32 "'s request showed op %" PRIu64,
                   rep->index, diverged, diverged_from, peer, peer_diverged);
    if (commit < rep->commit_seen)
        check_fail(&c->check, "commit",
                   "replica %" PRIu32 " commit number went back from %" PRIu64
                   " to %" PRIu64 " while it ran",
                   rep->index, rep->commit_seen, commit);
    if (epoch < rep->epoch_seen ||
        (epoch == rep->epoch_seen && view < rep->view_seen))
        check_fail(&c->check, "primary",
                   "replica %" PRIu32 " (epoch, view) went back from (%" PRIu32
                   ", %" PRIu64 ") to (%" PRIu32 ", %" PRIu64 ")",
                   rep->index, rep->epoch_seen, rep->view_seen, epoch, view);
    uint64_t from = rep->learned_upto;
    if (full || view != rep->view_seen || epoch != rep->epoch_seen ||
        status != rep->status_seen)
        from = 0; /* re-check the whole committed log after a change */
    if (from < base)
        from = base;
    if (commit > from)
        learn_committed(c, rep, from, commit);
    check_commit_number(&c->check, commit);
    rep->learned_upto = commit;
    rep->commit_seen = commit;
    rep->view_seen = view;
    rep->epoch_seen = epoch;
    rep->status_seen = status;
    if (replica_is_primary(r))
        check_epoch_primary(c, rep->index, epoch, view);
    fd_observe(c, rep);
}

/* ------------------------------------------------------------- events */

/* After an input handed to rep's driver: check it and schedule its tick. */
static void settle(struct cluster *c, struct sim_replica *rep)
{
    if (rep->driver && rep->exit_pending) {
        rep->exit_pending = false;
        cluster_process_exit(c, rep->index, rep->exit_why);
    }
    if (!rep->driver)
        return; /* it crashed during the input */
    after_step(c, rep, false);
    sim_host_backup_reads(c, rep);
    check_advance(&c->check);
    uint64_t next = driver_next_tick_ms(rep->driver);
    if (next > c->config.tick_interval_ms)
        next = c->config.tick_interval_ms;
    /* An input may bring the tick closer, never push it back: the
     * runtime's tick timer repeats whatever arrives, and a replica whose
     * messages come faster than its tick interval must still tick (a
     * recovering replica fed COMMITs it ignores once never asked again). */
    uint64_t at = c->now + global_delay(rep, next);
    if (at < rep->tick_at)
        rep->tick_at = at;
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
    if (!rep->driver) {
        cluster_trace(c, "net: %u -> r%u dropped: crashed", m.from, m.to);
        free(m.data);
        return;
    }
    if (rep->paused) {
        sim_net_requeue(&c->net, &m, rep->paused_until);
        return;
    }
    hash_mix(c, 1000 + m.to, m.from, m.kind, XXH3_64bits(m.data, m.size));
    if (m.kind == SIM_MSG_PEER) {
        if (c->config.trace) {
            char d[160];
            describe_message(c, m.data, m.size, d, sizeof(d));
            cluster_trace(c, "r%u <- r%u %s%s", m.to, m.from, d,
                          m.duplicate ? " (duplicate)" : "");
        }
        driver_frame(rep->driver, m.from, m.data, m.size);
    } else if (m.kind == SIM_MSG_READINDEX ||
               m.kind == SIM_MSG_READINDEX_REPLY) {
        sim_host_read_round(c, rep, m.kind, m.from, m.data, m.size);
    } else {
        sim_host_request(c, rep, m.data, m.size, m.kind == SIM_MSG_READ);
    }
    free(m.data);
    settle(c, rep);
}

/* Tell rep that peer is down, as the runtime does when a peer's port
 * refuses a connection. */
static void peer_down(struct cluster *c, struct sim_replica *rep, uint32_t peer)
{
    cluster_trace(c, "r%u peer r%u is down", rep->index, peer);
    hash_mix(c, 3100 + rep->index, peer, 0, 0);
    driver_peer_down(rep->driver, peer);
    settle(c, rep);
}

static void on_tick(struct cluster *c, struct sim_replica *rep)
{
    /* Now and then a wrong hint: the core must stay safe when the driver
     * calls a live peer down. */
    if (prng_chance(&c->prng, 200)) {
        uint32_t peer = (uint32_t)prng_below(&c->prng, c->config.replica_count);
        if (peer != rep->index)
            peer_down(c, rep, peer);
        if (!rep->driver)
            return;
    }
    cluster_trace(c, "r%u tick local %" PRIu64 "ms", rep->index,
                  cluster_local_now(rep, c->now));
    hash_mix(c, 3200 + rep->index, cluster_local_now(rep, c->now), 0, 0);
    rep->turn_pending = false;
    rep->tick_at = UINT64_MAX; /* settle() schedules the next */
    driver_tick(rep->driver);
    sim_sweep_run(c, rep);
    settle(c, rep);
}

static void on_turn(struct cluster *c, struct sim_replica *rep)
{
    rep->turn_pending = false;
    hash_mix(c, 3300 + rep->index, 0, 0, 0);
    driver_turn_end(rep->driver);
    settle(c, rep);
}

static void on_disk(struct cluster *c, struct sim_replica *rep)
{
    bool storage = rep->round_active && (!rep->snapshot.active ||
                                         rep->storage_at <= rep->snapshot.at);
    if (storage)
        sim_host_storage_due(c, rep);
    else
        sim_host_snapshot_due(c, rep);
    settle(c, rep);
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

static void on_restart_retry(struct cluster *c, struct sim_replica *rep)
{
    rep->restart_at = 0;
    cluster_restart(c, rep->index);
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

/* The replica's next disk completion (a storage round or a snapshot). */
static bool disk_next_at(const struct sim_replica *rep, uint64_t *at)
{
    bool any = false;
    if (rep->round_active) {
        *at = rep->storage_at;
        any = true;
    }
    if (rep->snapshot.active && (!any || rep->snapshot.at < *at)) {
        *at = rep->snapshot.at;
        any = true;
    }
    return any;
}

static enum source next_source(const struct cluster *c, uint64_t *at,
                               uint32_t *index)
{
    enum source best = SOURCE_NONE;
    uint32_t n = c->config.replica_count;
    uint64_t t;
    for (uint32_t i = 0; i < n; i++) {
        const struct sim_replica *rep = &c->replicas[i];
        if (rep->driver && rep->paused)
            consider(&best, at, index, SOURCE_RESUME, rep->paused_until, i);
        if (!rep->driver && rep->restart_at)
            consider(&best, at, index, SOURCE_RESUME, rep->restart_at, i);
    }
    for (uint32_t i = 0; i < n; i++)
        if (runnable(&c->replicas[i]) && disk_next_at(&c->replicas[i], &t))
            consider(&best, at, index, SOURCE_DISK, t, i);
    if (sim_net_next_at(&c->net, &t))
        consider(&best, at, index, SOURCE_NET, t, 0);
    for (uint32_t i = 0; i < n; i++)
        if (runnable(&c->replicas[i]) && c->replicas[i].turn_pending)
            consider(&best, at, index, SOURCE_TURN, c->now, i);
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
                   "(driver_next_tick_ms() keeps answering 0?)",
                   LIVELOCK_STEPS);
    c->step++;
    c->check.step = c->step;
    c->check.now_ms = c->now;
    struct sim_replica *rep = &c->replicas[i];
    switch (source) {
    case SOURCE_RESUME:
        if (rep->driver)
            on_resume(c, rep);
        else
            on_restart_retry(c, rep);
        break;
    case SOURCE_DISK:
        on_disk(c, rep);
        break;
    case SOURCE_NET:
        on_net(c);
        break;
    case SOURCE_TURN:
        on_turn(c, rep);
        break;
    case SOURCE_TICK:
        on_tick(c, rep);
        break;
    case SOURCE_CLIENT:
        on_client(c);
        break;
    default:
        UNREACHABLE();
    }
}

/* ------------------------------------------------------------- faults */

void cluster_crash(struct cluster *c, uint32_t i, bool power)
{
    struct sim_replica *rep = &c->replicas[i];
    if (!rep->driver) {
        rep->restart_at = 0;
        return;
    }
    fd_fault(c, i);
    c->stats.replacements += replica_stats(rep->r)->replacements;
    c->stats.spares_added += replica_stats(rep->r)->spares_added;
    rep->damaged_at_crash = replica_damaged(rep->r) || rep->meta_damaged;
    /* Usually the crash finds the disk busy with the round in flight. */
    if (prng_chance(&c->prng, 500000))
        sim_host_crash_mid_round(c, rep);
    sim_disk_crash(&rep->disk, power);
    sim_host_stop(c, rep);
    rep->paused = false;
    rep->turn_pending = false;
    rep->restart_at = 0;
    rep->power_lost = power || rep->torn_left;
    c->stats.crashes++;
    c->stats.power_losses += power;
    hash_mix(c, i, 5000, power, 0);
    cluster_trace(c, "r%u CRASH (%s)", i, power ? "power loss" : "process");
    /* Peers usually notice a crash at once (its port refuses them). */
    for (uint32_t j = 0; j < c->config.replica_count; j++) {
        struct sim_replica *o = &c->replicas[j];
        if (j != i && o->driver && !o->paused && prng_chance(&c->prng, 500000))
            peer_down(c, o, i);
    }
}

void cluster_process_exit(struct cluster *c, uint32_t i, const char *why)
{
    cluster_trace(c, "r%u exits: %s", i, why);
    cluster_crash(c, i, false);
    /* A supervisor restarts it. */
    c->replicas[i].restart_at = c->now + prng_range(&c->prng, 100, 600);
}

void cluster_power_lost(struct cluster *c, uint32_t i, const char *when)
{
    cluster_trace(c, "r%u power lost %s", i, when);
    cluster_crash(c, i, true);
    c->replicas[i].restart_at = c->now + prng_range(&c->prng, 50, 600);
}

void cluster_restart(struct cluster *c, uint32_t i)
{
    struct sim_replica *rep = &c->replicas[i];
    if (rep->driver)
        return;
    rep->restart_at = 0;
    /* A read error at start may damage this replica (a snapshot it cannot
     * read is passed over as a corrupt one is, and the log above the older
     * one may not reach it). The fault model has one damaged replica at a
     * time (faults.c, may_hurt()), so while another is hurt its start
     * reads do not fail: two damaged voters of three halt the group by
     * design, which the progress check would report. */
    uint32_t read_eio_ppm = rep->disk.config.read_eio_ppm;
    if (cluster_other_hurt(c, i))
        rep->disk.config.read_eio_ppm = 0;
    bool started = sim_host_start(c, rep);
    rep->disk.config.read_eio_ppm = read_eio_ppm;
    if (!started) {
        /* A transient read error, say: the supervisor tries again. */
        c->stats.start_failures++;
        rep->restart_at = c->now + prng_range(&c->prng, 100, 600);
        return;
    }
    rep->paused = false;
    rep->turn_pending = false;
    rep->tick_at = c->now;
    rep->learned_upto = 0;
    rep->commit_seen = 0;
    rep->view_seen = 0;
    rep->epoch_seen = 0;
    rep->status_seen = 0;
    memset(rep->suspected, 0, sizeof(rep->suspected));
    fd_fault_over(c, i);
    if (c->now > 0)
        c->stats.restarts++;
    const struct replica *r = rep->r;
    hash_mix(c, i, 6000, replica_op(r), replica_log_base(r));
    cluster_trace(
        c, "r%u RESTART op=%" PRIu64 " base=%" PRIu64 " view=%" PRIu64 "%s", i,
        replica_op(r), replica_log_base(r), replica_view(r),
        replica_damaged(r) ? " damaged" : "");
    after_step(c, rep, true);
    check_advance(&c->check);
}

void cluster_pause(struct cluster *c, uint32_t i, uint64_t duration_ms)
{
    struct sim_replica *rep = &c->replicas[i];
    if (!rep->driver || rep->paused)
        return;
    fd_fault(c, i);
    rep->paused = true;
    rep->paused_until = c->now + duration_ms;
    c->stats.pauses++;
    hash_mix(c, i, 7000, duration_ms, 0);
    cluster_trace(c, "r%u PAUSE for %" PRIu64 "ms", i, duration_ms);
}

void cluster_transfer(struct cluster *c, uint32_t i, uint32_t target)
{
    struct sim_replica *rep = &c->replicas[i];
    if (!rep->driver || rep->paused)
        return;
    struct transfer_answer a;
    driver_transfer(rep->driver, target, &a);
    c->stats.transfers_asked++;
    c->stats.transfers_started += a.result == TRANSFER_STARTED;
    hash_mix(c, i, 9000, target, a.result);
    cluster_trace(c,
                  "r%u TRANSFER to r%u: %s (view %" PRIu64 " -> %" PRIu64
                  ", op %" PRIu64 ", target at %" PRIu64 ")",
                  i, target, transfer_result_name(a.result), a.view, a.new_view,
                  a.op, a.target_op);
}

void cluster_reconfig(struct cluster *c, uint32_t i,
                      const struct membership *next)
{
    struct sim_replica *rep = &c->replicas[i];
    if (!rep->driver || rep->paused)
        return;
    struct reconfig_answer a;
    driver_reconfig(rep->driver, next, &a);
    c->stats.reconfigs_asked++;
    c->stats.reconfigs_proposed += a.result == RECONFIG_PROPOSED;
    hash_mix(c, i, 9100, a.op, a.result);
    cluster_trace(c,
                  "r%u RECONFIG to %u voters (first r%u), %u learners: %s "
                  "(epoch %u, op %" PRIu64 ")",
                  i, next->voter_count, next->voters[0], next->learner_count,
                  reconfig_result_name(a.result), a.epoch, a.op);
}

bool cluster_corrupt(struct cluster *c, uint32_t i)
{
    struct sim_replica *rep = &c->replicas[i];
    char path[VFS_PATH_MAX];
    uint64_t offset = 0;
    /* Mostly the log; now and then a snapshot file. */
    const char *where =
        prng_chance(&c->prng, 200000) ? "/data/snapshots/" : "/data/wal/";
    if (!sim_disk_corrupt(&rep->disk, where, path, &offset))
        return false;
    c->stats.corruptions++;
    hash_mix(c, i, 8000, offset, 0);
    cluster_trace(c, "r%u CORRUPT %s at byte %" PRIu64, i, path, offset);
    return true;
}

void cluster_misdirect(struct cluster *c, uint32_t i)
{
    struct sim_replica *rep = &c->replicas[i];
    /* The log's records are checksummed, chained and end with a trailer,
     * and what a lost write leaves behind is found at recovery. Metadata
     * has no such redundancy: a misdirected write there (or a corrupt
     * newest slot) silently brings back an older record, and is outside
     * the fault model (docs/ARCHITECTURE.md). */
    sim_disk_misdirect_next(&rep->disk, "/data/wal/");
    hash_mix(c, i, 8100, 0, 0);
    cluster_trace(c, "r%u its next write is misdirected", i);
}

bool cluster_hurt(const struct cluster *c, uint32_t i)
{
    const struct sim_replica *rep = &c->replicas[i];
    if (sim_disk_damaged(&rep->disk))
        return true;
    if (rep->lost_records)
        return true;
    if (rep->driver)
        return replica_damaged(rep->r) || rep->meta_damaged;
    return rep->damaged_at_crash;
}

bool cluster_other_hurt(const struct cluster *c, uint32_t i)
{
    for (uint32_t k = 0; k < c->config.replica_count; k++)
        if (k != i && cluster_hurt(c, k))
            return true;
    return false;
}

void cluster_disk_full(struct cluster *c, uint32_t i, bool full)
{
    struct sim_replica *rep = &c->replicas[i];
    uint64_t used = sim_disk_used(&rep->disk);
    sim_disk_set_capacity(&rep->disk, full ? used + 64u : 0);
    c->stats.disk_full += full;
    hash_mix(c, i, 8200, full, 0);
    cluster_trace(c, "r%u disk %s", i, full ? "FULL" : "has room again");
}

void cluster_heal_disks(struct cluster *c)
{
    c->config.storage.mid_crash_ppm = 0;
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        struct sim_disk_config *d = &c->replicas[i].disk.config;
        d->read_eio_ppm = 0;
        d->write_eio_ppm = 0;
        d->sync_eio_ppm = 0;
    }
    hash_mix(c, 9002, 0, 0, 0);
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
        if (c->replicas[i].driver && !c->replicas[i].paused)
            fd_fault_over(c, i);
    hash_mix(c, 9001, 0, 0, 0);
}

/* ------------------------------------------------------------- queries */

uint32_t cluster_primary(const struct cluster *c)
{
    uint32_t best = UINT32_MAX;
    uint32_t best_epoch = 0;
    uint64_t best_view = 0;
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        const struct replica *r = c->replicas[i].r;
        if (!r || !replica_is_primary(r))
            continue;
        uint32_t epoch = replica_membership(r)->epoch;
        if (best == UINT32_MAX || epoch > best_epoch ||
            (epoch == best_epoch && replica_view(r) > best_view)) {
            best = i;
            best_epoch = epoch;
            best_view = replica_view(r);
        }
    }
    return best;
}

/* Whether replica i takes part in the newest epoch any replica knows: a
 * replica left outside it (removed, or an id never added) stops where it
 * was left, and the settle and converge checks leave it out. */
bool cluster_in_latest_epoch(const struct cluster *c, uint32_t i)
{
    const struct membership *latest = NULL;
    for (uint32_t k = 0; k < c->config.replica_count; k++) {
        const struct replica *r = c->replicas[k].r;
        if (r && (!latest || replica_membership(r)->epoch > latest->epoch))
            latest = replica_membership(r);
    }
    return !latest || membership_is_member(latest, i);
}

bool cluster_quiescent(const struct cluster *c)
{
    uint64_t view = 0;
    uint32_t epoch = 0;
    bool first = true;
    for (uint32_t i = 0; i < c->config.replica_count; i++) {
        const struct sim_replica *rep = &c->replicas[i];
        if (!rep->r)
            continue;
        if (rep->paused || !sim_host_idle(rep) || rep->turn_pending)
            return false;
        if (!cluster_in_latest_epoch(c, i))
            continue; /* outside the membership: it takes no part */
        if (replica_status(rep->r) != STATUS_NORMAL)
            return false;
        uint32_t e = replica_membership(rep->r)->epoch;
        if (!first && (replica_view(rep->r) != view || e != epoch))
            return false;
        view = replica_view(rep->r);
        epoch = e;
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
        if (!rep->r || !cluster_in_latest_epoch(c, i))
            continue; /* a removed replica stopped where it was removed */
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
        /* What a subscriber resuming FROM a position gets there: the
         * messages the group committed, in its order. */
        uint64_t at;
        if (!kvsm_history_agrees(&rep->sm, &chk->ref, &at))
            check_fail(chk, "converge",
                       "replica %" PRIu32 " retains published messages other "
                       "than the group's (first at position %" PRIu64 ")",
                       i, at);
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
            fprintf(out, "  r%u: crashed%s\n", i,
                    rep->restart_at ? " (restarting)" : "");
            continue;
        }
        const struct replica *r = rep->r;
        fprintf(out,
                "  r%u: %s%s view=%" PRIu64 " primary=r%u op=%" PRIu64
                " commit=%" PRIu64 " applied=%" PRIu64 " base=%" PRIu64
                " wal_op=%" PRIu64 " storage=%s%s\n",
                i, replica_status_name(replica_status(r)),
                rep->paused ? " (paused)" : "", replica_view(r),
                replica_primary(r), replica_op(r), replica_commit(r),
                replica_applied(r), replica_log_base(r),
                wal_op_last(driver_wal(rep->driver)),
                sim_host_idle(rep) ? "idle" : "busy",
                rep->stalled ? " (stalled)" : "");
    }
}
