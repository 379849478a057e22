/* sim/host — the driver's host in the simulator. See host.h. */
#include "sim/host.h"
#include "sim/sweep.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "kv/snapshot.h"

#define REQUEST_HEADER 16 /* client_id, request_no */
#define REPLY_HEADER 29   /* client_id, request_no, status, hint, op */
#define DATA_DIR "/data"
#define SEGMENT_SIZE (8u << 10)
#define CHUNK_SIZE 256u
#define RETRY_MIN_MS 50u
#define RETRY_MAX_MS 200u
#define SNAPSHOT_MIN_MS 5u
#define SNAPSHOT_MAX_MS 60u
#define PPM 1000000u

static struct sim_replica *rep_of(void *ctx)
{
    return ctx;
}

/* ------------------------------------------------------------ replies */

/* What a client waits for from one incarnation of a replica. */
struct sim_request {
    struct cluster *c;
    uint32_t replica;
    uint64_t incarnation;
    uint64_t client_id;
    uint64_t request_no;
    bool read;
    struct kvsm_cmd cmd;
};

static void send_reply(struct cluster *c, struct sim_replica *rep,
                       const struct sim_request *q, enum reply_status status,
                       uint32_t hint, uint64_t op, const uint8_t *data,
                       size_t data_size)
{
    uint32_t client = (uint32_t)(q->client_id & 0xffff) - 1;
    if (client >= c->config.workload.client_count)
        return;
    uint8_t buf[REPLY_HEADER + 64];
    if (REPLY_HEADER + data_size > sizeof(buf)) {
        check_fail(&c->check, "reply", "replica %" PRIu32 " reply of %zu bytes",
                   rep->index, data_size);
        return;
    }
    put_u64(buf, q->client_id);
    put_u64(buf + 8, q->request_no);
    buf[16] = (uint8_t)status;
    put_u32(buf + 17, hint);
    put_u64(buf + 21, op);
    if (data_size)
        memcpy(buf + REPLY_HEADER, data, data_size);
    sim_net_send(&c->net, c->now, rep->index, c->config.replica_count + client,
                 SIM_MSG_REPLY, buf, REPLY_HEADER + data_size);
}

/* The status a client sees: the core's, except that an unknown outcome
 * (or one superseded by a copy of the same request) reads as a view change
 * (the client retries the same request number, and the client table makes
 * that safe). */
static enum reply_status client_status(const struct driver_reply *r)
{
    if (r->outcome == DRIVER_UNKNOWN || r->outcome == DRIVER_SUPERSEDED)
        return REPLY_VIEW_CHANGE;
    if (r->outcome == DRIVER_RETRY && r->status == REPLY_OK)
        return REPLY_VIEW_CHANGE;
    return r->status;
}

/* A reply for a failure's detail: its RESP with line ends as spaces. */
static const char *printable(const uint8_t *data, size_t size, char *out,
                             size_t out_size)
{
    size_t n = size < out_size - 1 ? size : out_size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : ' ';
    out[n] = '\0';
    return out;
}

static void check_answer(struct cluster *c, const struct sim_request *q,
                         const struct driver_reply *r)
{
    char text[KVSM_REPLY_MAX + 1];
    struct kvsm_reply decoded;
    if (!kvsm_reply_decode(&q->cmd, false, r->data, r->size, &decoded))
        check_fail(&c->check, "reply", "op %" PRIu64 " answered %s with %s",
                   r->op, kvsm_kind_name(q->cmd.kind),
                   printable(r->data, r->size, text, sizeof(text)));
    else if (q->cmd.kind == KVSM_PAIRGET &&
             !kvsm_pair_consistent(r->data, r->size))
        check_fail(&c->check, "atomicity",
                   "op %" PRIu64 " read the pair pa/pb of COHORT.EXEC "
                   "writes unequal: %s",
                   r->op, printable(r->data, r->size, text, sizeof(text)));
}

/* ------------------------------------------------------------ backup reads */

/* A linearizable read that reached a backup, served there after a read
 * round with the primary, as server/backup_read.c does: the backup sends
 * SIM_MSG_READINDEX to the primary over the simulated network; the primary
 * notes its read index when it arrives (replica_read_index()), runs its
 * read-index round (driver_read) and answers that point
 * (SIM_MSG_READINDEX_REPLY); the backup answers the client from its own state
 * machine once it has applied that op, or gives up (the client retries) if the
 * round fails, its answer does not come within BACKUP_ROUND_MS or the op is not
 * applied within BACKUP_APPLY_MS. The linearizability checker judges the
 * values. */
#define BACKUP_ROUND_MS 200u
#define BACKUP_APPLY_MS 5u
#define ROUND_SIZE 12u  /* u32 backup, u64 id */
#define ANSWER_SIZE 17u /* u64 id, u8 ok, u64 index */

struct sim_backup_read {
    struct sim_backup_read *next;
    struct sim_request *q; /* the client's read, owned */
    uint64_t id;
    uint32_t primary;
    bool answered;
    uint64_t index;
    uint64_t since; /* sent, then answered, at */
};

static void backup_read_start(struct cluster *c, struct sim_replica *rep,
                              struct sim_request *q, uint32_t primary)
{
    struct sim_backup_read *b = calloc(1, sizeof(*b));
    ASSERT(b);
    b->q = q;
    b->id = ++rep->backup_read_ids;
    b->primary = primary;
    b->since = c->now;
    b->next = rep->backup_reads;
    rep->backup_reads = b;
    uint8_t round[ROUND_SIZE];
    put_u32(round, rep->index);
    put_u64(round + 4, b->id);
    cluster_trace(c, "r%u read round %" PRIu64 " to r%u for client=%" PRIx64,
                  rep->index, b->id, primary, q->client_id);
    sim_net_send(&c->net, c->now, rep->index, primary, SIM_MSG_READINDEX, round,
                 sizeof(round));
}

/* The primary's side: a round it answers after its read-index round. */
struct sim_round {
    struct cluster *c;
    uint32_t replica, backup;
    uint64_t incarnation, id, index;
};

static void answer_round(struct cluster *c, uint32_t from, uint32_t to,
                         uint64_t id, bool ok, uint64_t index)
{
    uint8_t answer[ANSWER_SIZE];
    put_u64(answer, id);
    answer[8] = ok;
    put_u64(answer + 9, index);
    sim_net_send(&c->net, c->now, from, to, SIM_MSG_READINDEX_REPLY, answer,
                 sizeof(answer));
}

static void on_round_done(void *ctx, const struct driver_reply *r)
{
    struct sim_round *g = ctx;
    struct cluster *c = g->c;
    struct sim_replica *rep = &c->replicas[g->replica];
    if (rep->driver && rep->incarnation == g->incarnation)
        answer_round(c, g->replica, g->backup, g->id, r->outcome == DRIVER_DONE,
                     g->index);
    free(g);
}

static void backup_read_answered(struct cluster *c, struct sim_replica *rep,
                                 const uint8_t *data)
{
    uint64_t id = get_u64(data);
    for (struct sim_backup_read *b = rep->backup_reads; b; b = b->next) {
        if (b->id != id || b->answered)
            continue;
        if (!data[8]) {
            b->since = 0; /* failed: given up at the next look */
            return;
        }
        b->answered = true;
        b->index = get_u64(data + 9);
        b->since = c->now;
        return;
    }
}

void sim_host_read_round(struct cluster *c, struct sim_replica *rep,
                         uint32_t kind, uint32_t from, const uint8_t *data,
                         size_t size)
{
    if (kind == SIM_MSG_READINDEX_REPLY) {
        ASSERT(size == ANSWER_SIZE);
        backup_read_answered(c, rep, data);
        return;
    }
    ASSERT(kind == SIM_MSG_READINDEX && size == ROUND_SIZE);
    struct sim_round *g = calloc(1, sizeof(*g));
    ASSERT(g);
    *g = (struct sim_round){.c = c,
                            .replica = rep->index,
                            .backup = get_u32(data),
                            .incarnation = rep->incarnation,
                            .id = get_u64(data + 4),
                            .index = replica_read_index(rep->r)};
    ASSERT(g->backup == from);
    rep->turn_pending = true;
    driver_read(rep->driver, on_round_done, g);
}

/* Serve b's read from rep's state machine. */
static void backup_read_serve(struct cluster *c, struct sim_replica *rep,
                              const struct sim_backup_read *b)
{
    uint8_t reply[KVSM_REPLY_MAX];
    size_t size = kvsm_read(&rep->sm, b->q->cmd.key, reply);
    cluster_trace(c,
                  "r%u serves read round %" PRIu64 " at op %" PRIu64
                  " (index %" PRIu64 ")",
                  rep->index, b->id, rep->sm.kv.op, b->index);
    send_reply(c, rep, b->q, REPLY_OK, b->primary, 0, reply, size);
}

void sim_host_backup_reads(struct cluster *c, struct sim_replica *rep)
{
    struct sim_backup_read **p = &rep->backup_reads;
    while (*p) {
        struct sim_backup_read *b = *p;
        bool applied =
            b->answered && (rep->sm.kv.op >= b->index ||
                            (c->config.bugs & BUG_BACKUP_READ_NO_INDEX));
        uint64_t limit = b->answered ? BACKUP_APPLY_MS : BACKUP_ROUND_MS;
        bool late = b->since == 0 || c->now >= b->since + limit;
        if (!applied && !late) {
            p = &b->next;
            continue;
        }
        if (applied)
            backup_read_serve(c, rep, b);
        else
            send_reply(c, rep, b->q, REPLY_VIEW_CHANGE, b->primary, 0, NULL, 0);
        *p = b->next;
        free(b->q);
        free(b);
    }
}

/* The process is gone: its backup reads with it (their clients time
 * out). */
static void backup_reads_free(struct sim_replica *rep)
{
    while (rep->backup_reads) {
        struct sim_backup_read *b = rep->backup_reads;
        rep->backup_reads = b->next;
        free(b->q);
        free(b);
    }
}

static void on_done(void *ctx, const struct driver_reply *r)
{
    struct sim_request *q = ctx;
    struct cluster *c = q->c;
    struct sim_replica *rep = &c->replicas[q->replica];
    bool live = rep->driver && rep->incarnation == q->incarnation;
    cluster_hash(c, 6000u + q->replica, q->client_id, q->request_no,
                 (uint64_t)r->outcome * 256u + (uint64_t)r->status);
    if (!live) {
        free(q); /* the process is gone; its clients time out */
        return;
    }
    cluster_trace(c,
                  "r%u answers client=%" PRIx64 " request=%" PRIu64
                  "%s outcome=%d status=%d op=%" PRIu64,
                  rep->index, q->client_id, q->request_no,
                  q->read ? " (read)" : "", (int)r->outcome, (int)r->status,
                  r->op);
    if (q->read && r->outcome == DRIVER_NOT_PRIMARY &&
        r->primary_hint < c->config.replica_count &&
        r->primary_hint != rep->index) {
        backup_read_start(c, rep, q, r->primary_hint);
        return; /* q is the backup read's now */
    } else if (r->outcome != DRIVER_DONE) {
        send_reply(c, rep, q, client_status(r), r->primary_hint, 0, NULL, 0);
    } else if (q->read) {
        /* Served from this replica's state machine as it is now; only the
         * linearizability check judges the value. */
        uint8_t reply[KVSM_REPLY_MAX];
        size_t size = kvsm_read(&rep->sm, q->cmd.key, reply);
        send_reply(c, rep, q, REPLY_OK, r->primary_hint, 0, reply, size);
    } else {
        check_reply(&c->check, rep->index, q->client_id, q->request_no, r->op,
                    r->data, r->size);
        check_answer(c, q, r);
        send_reply(c, rep, q, REPLY_OK, r->primary_hint, r->op, r->data,
                   r->size);
    }
    free(q);
}

void sim_host_request(struct cluster *c, struct sim_replica *rep,
                      const uint8_t *data, size_t size, bool read)
{
    ASSERT(size >= REQUEST_HEADER);
    struct sim_request *q = calloc(1, sizeof(*q));
    ASSERT(q);
    q->c = c;
    q->replica = rep->index;
    q->incarnation = rep->incarnation;
    q->client_id = get_u64(data);
    q->request_no = get_u64(data + 8);
    q->read = read;
    cluster_trace(c, "r%u %s client=%" PRIx64 " request=%" PRIu64, rep->index,
                  read ? "read" : "request", q->client_id, q->request_no);
    rep->turn_pending = true;
    struct kvsm_cmd cmd;
    bool valid =
        kvsm_cmd_decode(data + REQUEST_HEADER, size - REQUEST_HEADER, &cmd);
    ASSERT(valid && (!read || cmd.kind == KVSM_GET));
    q->cmd = cmd;
    if (read) {
        driver_read(rep->driver, on_done, q);
        return;
    }
    /* As the RESP server does: the command becomes the store's log body. */
    uint8_t body[KVSM_LOG_BODY_MAX];
    size_t body_size = kvsm_body(&cmd, body);
    if (cmd.kind == KVSM_PAIRSET && (c->config.bugs & BUG_KV_SPLIT_EXEC)) {
        /* The mutant: the transaction's first write goes as an op of its
         * own (a client of the host's), the second as the request. */
        sim_sweep_submit_extra(c, rep, body,
                               kvsm_pair_half_body(&cmd, 0, body));
        body_size = kvsm_pair_half_body(&cmd, 1, body);
    }
    driver_submit(rep->driver, q->client_id, q->request_no, body, body_size,
                  false, on_done, q);
}

/* ------------------------------------------------------------ the host */

static uint64_t host_now_ms(void *ctx)
{
    struct sim_replica *rep = rep_of(ctx);
    return cluster_local_now(rep, rep->cluster->now);
}

static void host_send(void *ctx, uint32_t to, const uint8_t *frame, size_t size)
{
    struct sim_replica *rep = rep_of(ctx);
    struct cluster *c = rep->cluster;
    cluster_hash(c, 7000u + rep->index, to, size, XXH3_64bits(frame, size));
    uint64_t at = c->now;
    if (size && frame[0] == DRIVER_FRAME_SNAPSHOT) {
        at += c->snapshot_delay_ms; /* sent now, on the wire that long */
        if (size >= 1 + 16)         /* the chunk's offset: driver/transfer.c */
            at += get_u64(frame + 1 + 8) / CHUNK_SIZE * c->snapshot_chunk_ms;
    }
    sim_net_send(&c->net, at, rep->index, to, SIM_MSG_PEER, frame, size);
}

static void host_link(void *ctx, uint32_t to, bool *up, uint64_t *queued)
{
    struct sim_replica *rep = rep_of(ctx);
    struct cluster *c = rep->cluster;
    *up = c->replicas[to].driver != NULL &&
          sim_net_reachable(&c->net, rep->index, to);
    *queued = 0;
}

static uint64_t draw(struct cluster *c, uint32_t lo, uint32_t hi)
{
    return prng_range(&c->prng, lo, hi > lo ? hi : lo);
}

/* When a storage round started now completes. */
static uint64_t round_latency(struct cluster *c)
{
    const struct sim_storage_config *s = &c->config.storage;
    uint64_t ms = draw(c, s->latency_min_ms, s->latency_max_ms);
    if (s->slow_ppm && prng_chance(&c->prng, s->slow_ppm))
        ms += draw(c, 1, s->slow_max_ms);
    return ms;
}

static void round_schedule(struct cluster *c, struct sim_replica *rep)
{
    if (rep->round_active || !rep->queue_head)
        return;
    rep->round_active = true;
    rep->round_jobs = NULL; /* taken when it runs: a group commit */
    rep->storage_at = c->now + round_latency(c);
}

static void host_storage(void *ctx, struct storage_job *job)
{
    struct sim_replica *rep = rep_of(ctx);
    struct cluster *c = rep->cluster;
    cluster_hash(c, 8000u + rep->index, job->type, job->op_last, job->seq);
    if (job->type == STORAGE_META &&
        (job->meta.meta.flags & META_FLAG_DAMAGED) != 0)
        rep->meta_damaged = true; /* may be on disk from now on */
    job->next = NULL;
    if (rep->queue_tail)
        rep->queue_tail->next = job;
    else
        rep->queue_head = job;
    rep->queue_tail = job;
    round_schedule(c, rep);
}

/* A write callback that appends to the frozen state. */
static int state_append(void *ctx, const void *data, size_t size)
{
    struct sim_snapshot_write *w = ctx;
    bool grown =
        grow_bytes(&w->state, &w->state_capacity, w->state_size + size, 4096);
    ASSERT(grown);
    memcpy(w->state + w->state_size, data, size);
    w->state_size += size;
    return 0;
}

static bool host_snapshot(void *ctx, const struct driver_snapshot *snap,
                          char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    struct sim_replica *rep = rep_of(ctx);
    struct cluster *c = rep->cluster;
    struct sim_snapshot_write *w = &rep->snapshot;
    if (w->active)
        return false;
    /* What fork() would freeze: the state machine now, the table given. */
    w->active = true;
    w->snap = *snap;
    w->state_size = 0;
    uint8_t op[8];
    put_u64(op, snap->info.op);
    int rc = state_append(w, op, sizeof(op));
    struct cohort_err err;
    err_clear(&err);
    if (rc == 0)
        rc = kv_snapshot_begin(&rep->sm.kv, state_append, w, &err);
    ASSERT(rc == 0);
    w->slicing = true;
    check_restore(&c->check, rep->index, snap->info.op, kvsm_hash(&rep->sm));
    size_t n = snap->info.client_table_size;
    w->table = malloc(n ? n : 1);
    ASSERT(w->table);
    if (n)
        memcpy(w->table, snap->client_table, n);
    w->snap.client_table = w->table;
    w->at = c->now + draw(c, SNAPSHOT_MIN_MS, SNAPSHOT_MAX_MS);
    cluster_hash(c, 9000u + rep->index, snap->info.op, w->at, 0);
    cluster_trace(c, "r%u snapshot at op %" PRIu64 " begins", rep->index,
                  snap->info.op);
    return true;
}

static void host_view(void *ctx, const struct cohort_view_info *v)
{
    struct sim_replica *rep = rep_of(ctx);
    cluster_hash(rep->cluster, 10000u + rep->index, v->view, v->primary, 0);
    cluster_trace(rep->cluster, "r%u view %" PRIu64 " primary r%u", rep->index,
                  v->view, v->primary);
}

static void host_log(void *ctx, enum driver_log_level level, const char *line)
{
    struct sim_replica *rep = rep_of(ctx);
    (void)level;
    cluster_trace(rep->cluster, "r%u driver: %s", rep->index, line);
}

static void host_fatal(void *ctx, int code, const char *why)
{
    struct sim_replica *rep = rep_of(ctx);
    if (code == -COHORT_EIO) {
        /* An injected read error: the process exits, a supervisor
         * restarts it, and it recovers from its disk. */
        rep->exit_pending = true;
        snprintf(rep->exit_why, sizeof(rep->exit_why), "%s", why);
        return;
    }
    check_fail(&rep->cluster->check, "storage",
               "replica %" PRIu32 " cannot go on: %s", rep->index, why);
}

/* ------------------------------------------------------------ state machine */

/* One slice of a snapshot being written, of a size drawn from op and the
 * replica (not from the cluster's prng, so that slicing changes no
 * scenario); with budget SIZE_MAX, the rest (one step walks it all). A
 * sliced stream that is not the store at its start fails the run. */
static void snapshot_slice_budget(struct sim_replica *rep, size_t budget)
{
    struct sim_snapshot_write *w = &rep->snapshot;
    struct cohort_err err;
    err_clear(&err);
    bool done = false;
    if (kv_snapshot_step(&rep->sm.kv, budget, &done, &err) != 0)
        check_fail(&rep->cluster->check, "snapshot",
                   "replica %" PRIu32 " snapshot at op %" PRIu64 ": %s",
                   rep->index, w->snap.info.op, err.message);
    ASSERT(done || budget != SIZE_MAX);
    if (done)
        w->slicing = false;
}

static void snapshot_slice(struct sim_replica *rep, uint64_t op)
{
    uint64_t h = (op ^ ((uint64_t)rep->index << 56)) * 0x9e3779b97f4a7c15ull;
    /* 1..4096 bytes. With FLUSHALLs drawn, 1..64, so that a walk of the
     * simulator's small store spans several ops and flushes land in it. */
    unsigned shift = rep->cluster->config.workload.flush_pct ? 58 : 52;
    snapshot_slice_budget(rep, (size_t)(h >> shift) + 1);
}

static size_t sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                       const uint8_t *body, size_t body_size, uint8_t *reply,
                       size_t reply_size_max)
{
    struct sim_replica *rep = ctx;
    if (rep->snapshot.slicing)
        snapshot_slice(rep, op);
    /* The mutant: apply judges expiry by the replica's own clock. */
    uint64_t apply_ms = rep->cluster->config.bugs & BUG_KV_LOCAL_CLOCK
                            ? cluster_local_now(rep, rep->cluster->now)
                            : timestamp_ms;
    uint64_t handoffs = rep->sm.kv.records_handed_to_slicer;
    size_t size = kvsm_sm_apply(&rep->sm, op, apply_ms, body, body_size, reply,
                                reply_size_max);
    rep->cluster->stats.slicer_handoffs +=
        rep->sm.kv.records_handed_to_slicer - handoffs;
    check_apply(&rep->cluster->check, rep->index, op, timestamp_ms, body,
                body_size, reply, size, kvsm_hash(&rep->sm));
    return size;
}

/* The snapshot stream: the op it was taken at, then the store's stream
 * (kv/snapshot.h), which kv_restore() checks. */
static int sm_restore(void *ctx,
                      int (*read)(void *rctx, void *data, size_t size,
                                  size_t *got),
                      void *rctx, struct cohort_err *err)
{
    struct sim_replica *rep = ctx;
    uint8_t op[8];
    size_t got = 0;
    int rc = read(rctx, op, sizeof(op), &got);
    if (rc != 0)
        return err_set(err, rc, "read the state");
    if (got != sizeof(op))
        return err_set(err, -COHORT_ECORRUPT, "state of %zu bytes", got);
    rc = kvsm_restore(&rep->sm, read, rctx, err);
    if (rc != 0)
        return rc;
    check_restore(&rep->cluster->check, rep->index, get_u64(op),
                  kvsm_hash(&rep->sm));
    if (rep->driver) /* not at start: a snapshot from a peer */
        rep->cluster->stats.snapshots_installed++;
    return 0;
}

static int snapshot_state(void *ctx,
                          int (*write)(void *wctx, const void *data,
                                       size_t size),
                          void *wctx)
{
    struct sim_snapshot_write *w = ctx;
    return write(wctx, w->state, w->state_size);
}

/* ------------------------------------------------------------ storage */

static void queue_free(struct sim_replica *rep)
{
    storage_job_free_list(rep->queue_head);
    rep->queue_head = rep->queue_tail = NULL;
    storage_job_free_list(rep->round_jobs);
    rep->round_jobs = NULL;
    storage_batch_finish(&rep->round, NULL);
    rep->round_active = false;
}

static void set_stalled(struct sim_replica *rep, bool stalled, const char *why)
{
    if (rep->stalled == stalled)
        return;
    rep->stalled = stalled;
    driver_storage_stalled(rep->driver, stalled, why);
}

void sim_host_storage_due(struct cluster *c, struct sim_replica *rep)
{
    ASSERT(rep->round_active);
    if (!rep->round_jobs) {
        /* Every job queued by now goes in this round. */
        rep->round_jobs = rep->queue_head;
        rep->queue_head = rep->queue_tail = NULL;
        storage_batch_init(&rep->round, rep->round_jobs);
        const struct sim_storage_config *s = &c->config.storage;
        if (s->mid_crash_ppm && prng_chance(&c->prng, s->mid_crash_ppm))
            sim_disk_power_off_after(&rep->disk, 1 + prng_below(&c->prng, 12));
    }
    struct cohort_err err;
    err_clear(&err);
    int rc = storage_batch_run(&rep->round, driver_wal(rep->driver),
                               driver_meta(rep->driver), &err);
    if (rc == 0 && !sim_disk_powered_off(&rep->disk)) {
        /* What the runtime's storage thread does after a round: the
         * checkpoints file (there once the jobs are handed back; here
         * before, so a crash in it also loses the round's replies: a case
         * the runtime has too), then, idle, zeros ahead of the log. A
         * crash may land in either; a failed zero write shows at the next
         * round. */
        storage_batch_finish(&rep->round, driver_meta(rep->driver));
        struct cohort_err ignored;
        while (wal_prepare(driver_wal(rep->driver), &ignored) > 0)
            ;
    }
    sim_disk_power_stays_on(&rep->disk); /* the countdown is per round */
    cluster_hash(c, 11000u + rep->index, (uint64_t)-rc, 0, 0);
    if (sim_disk_powered_off(&rep->disk)) {
        cluster_power_lost(c, rep->index, "during a storage round");
        return;
    }
    if (rc == -COHORT_EAGAIN) {
        cluster_trace(c, "r%u storage stalled: %s", rep->index, err.message);
        set_stalled(rep, true, err.message);
        rep->storage_at = c->now + draw(c, RETRY_MIN_MS, RETRY_MAX_MS);
        return;
    }
    if (rc != 0) {
        c->stats.storage_failures++;
        cluster_process_exit(c, rep->index, err.message);
        return;
    }
    set_stalled(rep, false, NULL);
    for (const struct storage_job *j = rep->round_jobs; j; j = j->next)
        if (j->type == STORAGE_META)
            rep->meta_damaged = (j->meta.meta.flags & META_FLAG_DAMAGED) != 0;
    struct storage_job *jobs = rep->round_jobs;
    rep->round_jobs = NULL;
    rep->round_active = false;
    uint64_t incarnation = rep->incarnation;
    while (jobs) {
        struct storage_job *next = jobs->next;
        if (rep->driver && rep->incarnation == incarnation)
            driver_storage_done(rep->driver, jobs);
        else
            storage_job_free(jobs);
        jobs = next;
    }
    if (rep->driver && rep->incarnation == incarnation)
        round_schedule(c, rep);
}

void sim_host_snapshot_due(struct cluster *c, struct sim_replica *rep)
{
    struct sim_snapshot_write *w = &rep->snapshot;
    ASSERT(w->active);
    if (w->slicing)
        snapshot_slice_budget(rep, SIZE_MAX);
    struct cohort_err err;
    err_clear(&err);
    const struct sim_storage_config *s = &c->config.storage;
    if (s->mid_crash_ppm && prng_chance(&c->prng, s->mid_crash_ppm))
        sim_disk_power_off_after(&rep->disk, 1 + prng_below(&c->prng, 12));
    int rc = driver_snapshot_write(sim_disk_vfs(&rep->disk), DATA_DIR, &w->snap,
                                   snapshot_state, w, &err);
    sim_disk_power_stays_on(&rep->disk);
    uint64_t op = w->snap.info.op;
    w->active = false;
    free(w->table);
    w->table = NULL;
    cluster_hash(c, 12000u + rep->index, op, (uint64_t)-rc, 0);
    if (sim_disk_powered_off(&rep->disk)) {
        cluster_power_lost(c, rep->index, "writing a snapshot");
        return;
    }
    cluster_trace(c, "r%u snapshot at op %" PRIu64 " %s%s", rep->index, op,
                  rc == 0 ? "written" : "failed: ", rc == 0 ? "" : err.message);
    driver_snapshot_done(rep->driver, op, rc == 0,
                         rc == 0 ? NULL : err.message);
}

void sim_host_crash_mid_round(struct cluster *c, struct sim_replica *rep)
{
    if (!rep->driver || !rep->round_active || sim_disk_powered_off(&rep->disk))
        return;
    if (!rep->round_jobs) {
        rep->round_jobs = rep->queue_head;
        rep->queue_head = rep->queue_tail = NULL;
        storage_batch_init(&rep->round, rep->round_jobs);
    }
    sim_disk_power_off_after(&rep->disk, 2 + prng_below(&c->prng, 4));
    struct cohort_err err;
    (void)storage_batch_run(&rep->round, driver_wal(rep->driver),
                            driver_meta(rep->driver), &err);
    cluster_hash(c, 13000u + rep->index, 0, 0, 0);
}

bool sim_host_idle(const struct sim_replica *rep)
{
    return !rep->round_active && !rep->queue_head && !rep->snapshot.active;
}

/* ------------------------------------------------------------ lifecycle */

/* The core's configuration in the simulator: small limits, so that
 * pipelines fill, snapshots and compaction happen within a few hundred ops,
 * and lagging replicas need state transfer. */
static void replica_config_for(struct cluster *c, struct sim_replica *rep,
                               struct replica_config *config);

static void core_trace(void *ctx, const char *line)
{
    struct sim_replica *rep = ctx;
    struct cluster *c = rep->cluster;
    if (c->config.trace)
        fprintf(c->config.trace, "%8" PRIu64 "ms #%-7" PRIu64 " core %s\n",
                c->now, c->step, line);
}

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
    config->trace = c->config.trace ? core_trace : NULL;
    config->trace_ctx = rep;
    config->bugs = c->config.bugs;
    config->initial_voters = c->config.initial_voters;
    config->replace_after_ms = c->config.replace_after_ms;
    config->spare = rep->index + c->config.spares >= c->config.replica_count;
}

bool sim_host_start(struct cluster *c, struct sim_replica *rep)
{
    struct driver_config dc;
    driver_config_defaults(&dc);
    dc.self = rep->index;
    dc.replica_count = c->config.replica_count;
    dc.cluster_id = 0x5151;
    dc.data_dir = DATA_DIR;
    dc.vfs = sim_disk_vfs(&rep->disk);
    dc.torn_writes_possible = rep->power_lost;
    dc.wal_segment_size = SEGMENT_SIZE;
    dc.chunk_size = CHUNK_SIZE;
    dc.send_window = 4u * CHUNK_SIZE;
    dc.deferred_bytes_max = 64u << 10;
    replica_config_for(c, rep, &dc.replica);
    struct driver_host host = {
        .ctx = rep,
        .now_ms = host_now_ms,
        .send = host_send,
        .link = host_link,
        .storage = host_storage,
        .snapshot = host_snapshot,
        .view = host_view,
        .log = host_log,
        .fatal = host_fatal,
    };
    struct driver_sm sm = {
        .sm = {.ctx = rep, .apply = sm_apply},
        .restore = sm_restore,
        .ctx = rep,
    };
    if (rep->sm_ready)
        kvsm_deinit(&rep->sm); /* drops a snapshot being sliced */
    kvsm_init(&rep->sm);
    rep->sm_ready = true;
    rep->snapshot.slicing = false;
    struct cohort_err err;
    err_clear(&err);
    rep->incarnation++;
    sim_sweep_start(rep);
    rep->stalled = false;
    rep->driver = driver_open(&dc, &host, &sm, &err);
    if (!rep->driver) {
        cluster_trace(c, "r%u cannot start: %s", rep->index, err.message);
        return false;
    }
    rep->r = driver_replica(rep->driver);
    /* As the runtime's boot id does: a torn tail that was cut stays on
     * disk until the log moves past it, so the next start must judge it
     * the same way. */
    rep->torn_left = driver_cut_torn_tail(rep->driver);
    rep->meta_damaged = replica_damaged(rep->r);
    return true;
}

void sim_host_stop(struct cluster *c, struct sim_replica *rep)
{
    (void)c;
    queue_free(rep);
    backup_reads_free(rep);
    if (rep->snapshot.active) {
        free(rep->snapshot.table);
        rep->snapshot.table = NULL;
        rep->snapshot.active = false;
    }
    if (rep->snapshot.slicing) {
        kv_snapshot_abort(&rep->sm.kv);
        rep->snapshot.slicing = false;
    }
    struct driver *d = rep->driver;
    rep->driver = NULL; /* answers during the close go nowhere */
    rep->r = NULL;
    driver_close(d);
}
