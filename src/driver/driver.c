/* driver — open and close, stepping the core and carrying out its actions,
 * and the inputs from the host. See driver.h. */
#include "driver/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "storage/checkpoint_file.h"
#include "core/detector.h"
#include "core/message.h"

void driver_config_defaults(struct driver_config *config)
{
    memset(config, 0, sizeof(*config));
    config->chunk_size = 256u << 10;
    config->send_window = 8u << 20;
    config->deferred_bytes_max = 64u << 20;
    config->snapshot_size_max = DRIVER_SNAPSHOT_SIZE_MAX;
}

/* ------------------------------------------------------------ logging */

void drv_log(const struct driver *d, enum driver_log_level level,
             const char *fmt, ...)
{
    if (!d->host.log)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    d->host.log(d->host.ctx, level, line);
}

/* ------------------------------------------------------------ stepping */

static void carry_out(struct driver *d, const struct actions *acts);
static void ack_early(struct driver *d);

void drv_step(struct driver *d, struct event *ev)
{
    if (d->closing)
        return;
    ev->now_ms = d->host.now_ms(d->host.ctx);
    bool held = replica_holding(d->r);
    struct actions acts;
    replica_step(d->r, ev, &acts);
    carry_out(d, &acts);
    /* The busy queue is offered again when a hold (a drain, a wedge) ends,
     * which only a step does. Seen here, not when the queue began: a drain
     * given up in the very step that turned a batch away was already over
     * when the step's replies were queued (simulator soak, seed
     * 1006523267067: the queue then waited for a commit its own requests
     * blocked). */
    if (held && !replica_holding(d->r) && d->deferred_count > 0)
        d->deferred_kick = true;
    if (d->early_count)
        ack_early(d);
}

void drv_send_frame(struct driver *d, uint32_t to, uint8_t kind,
                    const uint8_t *head, size_t head_size, const uint8_t *data,
                    size_t size)
{
    size_t total = 1 + head_size + size;
    if (total > d->frame_cap) {
        free(d->frame);
        d->frame_cap = total * 2;
        d->frame = malloc(d->frame_cap);
        ASSERT(d->frame);
    }
    d->frame[0] = kind;
    if (head_size)
        memcpy(d->frame + 1, head, head_size);
    if (size)
        memcpy(d->frame + 1 + head_size, data, size);
    d->host.send(d->host.ctx, to, d->frame, total);
}

void drv_storage_push(struct driver *d, struct storage_job *job)
{
    d->host.storage(d->host.ctx, job);
}

/* A PERSIST job: copies of entries op_first..op_last of the core's log. */
static struct storage_job *persist_job(const struct replica *r,
                                       uint64_t op_first, uint64_t op_last,
                                       uint64_t checksum)
{
    struct storage_job *job = storage_job_new(STORAGE_PERSIST);
    job->op_first = op_first;
    job->op_last = op_last;
    job->checksum = checksum;
    if (op_last < op_first)
        return job;
    uint64_t count = op_last - op_first + 1;
    size_t bytes = 0;
    for (uint64_t op = op_first; op <= op_last; op++)
        bytes += replica_entry(r, op)->h.body_size;
    job->entries = calloc(count, sizeof(*job->entries));
    job->bytes = malloc(bytes ? bytes : 1);
    ASSERT(job->entries && job->bytes);
    size_t at = 0;
    for (uint64_t op = op_first; op <= op_last; op++) {
        const struct entry *e = replica_entry(r, op);
        ASSERT(e);
        struct entry *copy = &job->entries[op - op_first];
        copy->h = e->h;
        memcpy(job->bytes + at, e->body, e->h.body_size);
        copy->body = job->bytes + at;
        at += e->h.body_size;
    }
    job->entry_count = (uint32_t)count;
    return job;
}

static void persist(struct driver *d, const struct action *a)
{
    uint64_t first = a->persist.op_first;
    uint64_t last = a->persist.op_last;
    struct storage_job *job;
    if (last >= first && first == replica_log_base(d->r) + 1) {
        /* The log restarts right after the snapshot: whatever the wal
         * holds is in the snapshot or stale (replica.h, ACT_PERSIST). */
        struct storage_job *reset = storage_job_new(STORAGE_RESET);
        reset->op_last = first - 1;
        reset->checksum = replica_entry(d->r, first)->h.parent;
        if ((d->c.replica.bugs & BUG_STORAGE_LOG_RESTART) && first > 1)
            reset->op_last = first - 2; /* the deliberate bug */
        drv_storage_push(d, reset);
        job = persist_job(d->r, first, last, a->persist.checksum);
    } else if (last >= first) {
        job = persist_job(d->r, first, last, a->persist.checksum);
    } else {
        /* Truncate after `last` (perhaps the base), which stays on disk as
         * it is: rewriting it would leave it not durable for a moment. */
        job = persist_job(d->r, first, last, a->persist.checksum);
    }
    /* The record's commit note (wal.h): what is committed as it goes. */
    job->commit = replica_commit(d->r);
    if ((d->c.replica.bugs & BUG_STORAGE_ACK_EARLY) &&
        d->early_count < sizeof(d->early) / sizeof(d->early[0])) {
        job->acked_early = true;
        d->early[d->early_count++] =
            (struct wal_position){job->op_last, job->checksum};
    }
    drv_storage_push(d, job);
}

/* BUG_STORAGE_ACK_EARLY: report the step's persists as durable now. */
static void ack_early(struct driver *d)
{
    uint32_t count = d->early_count;
    struct wal_position list[sizeof(d->early) / sizeof(d->early[0])];
    memcpy(list, d->early, count * sizeof(list[0]));
    d->early_count = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct event ev = {.type = EV_PERSISTED};
        ev.persisted.op = list[i].op;
        ev.persisted.checksum = list[i].checksum;
        drv_step(d, &ev);
    }
}

/* A compaction carries the core's checkpoints to the data directory's file
 * (storage/checkpoint_file.h), so that they outlive a restart. */
static void encode_checkpoints(struct driver *d, struct storage_job *job)
{
    uint64_t *op = malloc(CHECKPOINTS_MAX * sizeof(uint64_t));
    uint64_t *checksum = malloc(CHECKPOINTS_MAX * sizeof(uint64_t));
    ASSERT(op && checksum);
    size_t n = replica_checkpoints(d->r, op, checksum, CHECKPOINTS_MAX);
    if (n > 0) {
        job->checkpoints_size = checkpoint_file_size(n);
        job->checkpoints = malloc(job->checkpoints_size);
        ASSERT(job->checkpoints);
        checkpoint_file_encode(job->checkpoints, d->c.cluster_id, op, checksum,
                               n);
    }
    free(op);
    free(checksum);
}

static void on_view(struct driver *d, const struct cohort_view_info *v)
{
    d->view_changes++;
    if (d->host.view)
        d->host.view(d->host.ctx, v);
    if (!replica_is_primary(d->r))
        drv_lost_primary(d);
    else
        drv_became_primary(d);
}

static void carry_out(struct driver *d, const struct actions *acts)
{
    for (uint32_t i = 0; i < acts->count; i++) {
        const struct action *a = &acts->list[i];
        switch (a->type) {
        case ACT_SEND:
            drv_send_frame(d, a->send.to, DRIVER_FRAME_PROTOCOL, NULL, 0,
                           a->send.data, a->send.size);
            break;
        case ACT_PERSIST:
            persist(d, a);
            break;
        case ACT_PERSIST_META: {
            struct storage_job *job = storage_job_new(STORAGE_META);
            job->seq = a->meta.seq;
            job->meta.cluster_id = d->c.cluster_id;
            job->meta.meta = a->meta.meta;
            drv_storage_push(d, job);
            break;
        }
        case ACT_REPLY:
            drv_on_reply(d, a);
            break;
        case ACT_VIEW:
            on_view(d, &a->view);
            break;
        case ACT_SNAPSHOT_TAKE:
            drv_take_snapshot(d, a);
            break;
        case ACT_LOG_COMPACT: {
            struct storage_job *job = storage_job_new(STORAGE_COMPACT);
            job->compact_op = a->compact.op;
            job->snapshot_op = d->snapshot_op;
            encode_checkpoints(d, job);
            drv_storage_push(d, job);
            break;
        }
        case ACT_SNAPSHOT_SEND:
            drv_start_snapshot_send(d, a->snapshot_send.to);
            break;
        case ACT_READ:
            drv_on_read_answer(d, a);
            break;
        case ACT_TRANSFER:
            d->transfer_answer = a->transfer;
            d->transfer_answered = true;
            break;
        case ACT_RECONFIG:
            d->reconfig_answer = a->reconfig;
            d->reconfig_answered = true;
            break;
        }
    }
}

/* ------------------------------------------------------------ inputs */

void driver_storage_done(struct driver *d, struct storage_job *job)
{
    struct event ev = {0};
    if (job->type == STORAGE_PERSIST && !job->acked_early) {
        ev.type = EV_PERSISTED;
        ev.persisted.op = job->op_last;
        ev.persisted.checksum = job->checksum;
        drv_step(d, &ev);
    } else if (job->type == STORAGE_META) {
        ev.type = EV_META_PERSISTED;
        ev.meta.seq = job->seq;
        drv_step(d, &ev);
    }
    storage_job_free(job);
}

void driver_storage_stalled(struct driver *d, bool stalled, const char *why)
{
    if (stalled == d->storage_stalled)
        return;
    d->storage_stalled = stalled;
    if (stalled)
        drv_log(d, DRIVER_LOG_ERROR,
                "cannot write to the disk, refusing writes until it "
                "recovers (retrying, less often as it goes on): %s; free "
                "space under %s",
                why ? why : "unknown error", d->c.data_dir);
    else
        drv_log(d, DRIVER_LOG_INFO, "the disk accepts writes again");
}

void driver_turn_end(struct driver *d)
{
    drv_resubmit_deferred(d);
    drv_flush_batch(d);
    drv_start_reads(d);
}

/* How often a divergence that stays is logged again. */
#define DIVERGED_LOG_EVERY_MS 60000u

/* The core found that this replica's log and the group's part at an op
 * both hold committed (core/transfer.c, "Divergence"): say so at once,
 * and again every minute while it lasts, for it needs the operator. */
static void report_divergence(struct driver *d)
{
    uint64_t now = d->host.now_ms(d->host.ctx);
    uint32_t from = 0;
    uint64_t op = replica_diverged(d->r, &from);
    if (op && (d->diverged_logged_ms == 0 ||
               now - d->diverged_logged_ms >= DIVERGED_LOG_EVERY_MS)) {
        d->diverged_logged_ms = now ? now : 1;
        drv_log(d, DRIVER_LOG_ERROR,
                "replica %u stopped: replica %" PRIu32 " showed the group's "
                "log without op %" PRIu64 " as this replica holds it "
                "committed, so acknowledged writes may be missing from the "
                "group (a member was started on an older copy of its data "
                "directory); this replica keeps its log and does nothing "
                "more: see docs/OPERATIONS.md, \"A member started on an "
                "older copy of its data\"",
                d->c.self, from, op);
    }
    uint32_t peer = 0;
    op = replica_peer_diverged(d->r, &peer);
    if (op && (op != d->peer_diverged_logged_op ||
               now - d->peer_diverged_logged_ms >= DIVERGED_LOG_EVERY_MS)) {
        d->peer_diverged_logged_op = op;
        d->peer_diverged_logged_ms = now;
        drv_log(d, DRIVER_LOG_ERROR,
                "replica %" PRIu32 " holds another history of op %" PRIu64
                " than this replica, and both hold it committed: one of the "
                "two was started on an older copy of its data directory, and "
                "acknowledged writes may be missing; see docs/OPERATIONS.md, "
                "\"A member started on an older copy of its data\"",
                peer, op);
    }
}

void driver_tick(struct driver *d)
{
    driver_turn_end(d);
    struct event ev = {.type = EV_TICK};
    drv_step(d, &ev);
    report_divergence(d);
    drv_parked_check(d);
    drv_snapshot_retry_due(d);
    drv_snapshot_receive_stalled(d);
    drv_pump_snapshot_sends(d);
}

void driver_transfer(struct driver *d, uint32_t target,
                     struct transfer_answer *out)
{
    /* Requests submitted this turn reach the core first: they are ordered
     * (and answered) before the drain, not turned away by it. */
    driver_turn_end(d);
    d->transfer_answered = false;
    struct event ev = {.type = EV_TRANSFER};
    ev.transfer.target = target;
    drv_step(d, &ev);
    if (d->transfer_answered) {
        *out = d->transfer_answer;
        return;
    }
    *out = (struct transfer_answer){
        /* closing: the core is not stepped */
        .result = TRANSFER_NOT_PRIMARY,
        .target = target,
        .primary = COHORT_REPLICA_NONE,
    };
}

void driver_reconfig(struct driver *d, const struct membership *next,
                     struct reconfig_answer *out)
{
    driver_turn_end(d); /* requests of this turn are ordered before it */
    d->reconfig_answered = false;
    struct event ev = {.type = EV_RECONFIG};
    ev.reconfig.next = *next;
    drv_step(d, &ev);
    if (d->reconfig_answered) {
        *out = d->reconfig_answer;
        return;
    }
    *out = (struct reconfig_answer){.result = RECONFIG_NOT_PRIMARY};
}

void driver_peer_down(struct driver *d, uint32_t peer)
{
    if (d->closing)
        return;
    drv_flush_batch(d);
    struct event ev = {.type = EV_PEER_DOWN};
    ev.peer_down.peer = peer;
    drv_step(d, &ev);
}

/* A message is believed only as coming from the replica whose link
 * delivered it (the transport authenticated that link): one that names
 * another sender is dropped and counted, the first from each link
 * logged. Too short to name one, the core drops it. */
static bool sender_matches(struct driver *d, uint32_t from,
                           const uint8_t *message, size_t size)
{
    uint32_t sender = 0;
    if (!message_sender(message, size, &sender) || sender == from)
        return true;
    d->wrong_sender++;
    if (!d->wrong_sender_logged[from]) {
        d->wrong_sender_logged[from] = true;
        drv_log(d, DRIVER_LOG_WARN,
                "the link from replica %" PRIu32
                " delivered a message that claims to come from replica "
                "%" PRIu32 ": dropped (INFO stats "
                "peer_messages_wrong_sender counts them)",
                from, sender);
    }
    return false;
}

void driver_frame(struct driver *d, uint32_t from, const uint8_t *data,
                  size_t size)
{
    if (size < 1 || d->closing || from >= d->c.replica_count)
        return;
    switch (data[0]) {
    case DRIVER_FRAME_SNAPSHOT:
        drv_on_snapshot_chunk(d, from, data + 1, size - 1);
        return;
    case DRIVER_FRAME_SNAPSHOT_RESUME:
        drv_on_snapshot_resume(d, from, data + 1, size - 1);
        return;
    case DRIVER_FRAME_PROTOCOL:
        break;
    default:
        return;
    }
    if (!sender_matches(d, from, data + 1, size - 1))
        return;
    /* The turn's requests go first: the core sees input in arrival order. */
    drv_flush_batch(d);
    struct event ev = {.type = EV_MESSAGE};
    ev.message.data = data + 1;
    ev.message.size = size - 1;
    drv_step(d, &ev);
}

/* While a snapshot goes out, ticks pace its chunks. */
#define SEND_TICK_MS 5u

uint64_t driver_next_tick_ms(const struct driver *d)
{
    uint64_t next = replica_next_tick_ms(d->r, d->host.now_ms(d->host.ctx));
    for (uint32_t i = 0; i < d->c.replica_count; i++)
        if (d->sends[i].active && next > SEND_TICK_MS)
            next = SEND_TICK_MS;
    return next;
}

/* ------------------------------------------------------------ queries */

static void primary_link(const struct driver *d, struct driver_status *out)
{
    const struct replica *r = d->r;
    out->primary_lost = false;
    out->primary_heard_ago_ms = -1;
    if (out->status != STATUS_NORMAL || out->primary == out->self ||
        out->primary >= out->replica_count)
        return;
    uint64_t now_ms = d->host.now_ms(d->host.ctx);
    uint64_t heard_ms = 0;
    bool heard = replica_heard(r, out->primary, &heard_ms);
    uint64_t ago_ms = heard && now_ms > heard_ms ? now_ms - heard_ms : 0;
    if (heard)
        out->primary_heard_ago_ms =
            ago_ms > INT64_MAX ? INT64_MAX : (int64_t)ago_ms;
    uint32_t timeout_ms =
        detector_timeout_ms(replica_detector(r), out->primary);
    out->primary_lost =
        replica_suspects(r, out->primary) || (heard && ago_ms > timeout_ms);
}

void driver_status(const struct driver *d, struct driver_status *out)
{
    memset(out, 0, sizeof(*out));
    const struct replica *r = d->r;
    out->status = replica_status(r);
    out->view = replica_view(r);
    out->primary = replica_primary(r);
    out->self = d->c.self;
    out->replica_count = d->c.replica_count;
    out->op = replica_op(r);
    out->commit = replica_commit(r);
    out->applied = replica_applied(r);
    for (uint32_t i = 0; i < d->c.replica_count; i++) {
        out->peer_op[i] = replica_peer_op(r, i);
        out->peer_suspected[i] = i != d->c.self && replica_suspects(r, i);
        if (i != d->c.self) {
            uint64_t queued;
            d->host.link(d->host.ctx, i, &out->peer_connected[i], &queued);
        }
    }
    out->snapshot_op = d->snapshot_op;
    out->snapshot_time_ms = d->snapshot_time_ms;
    out->view_changes = replica_stats(r)->view_changes;
    out->messages_invalid = replica_stats(r)->messages_invalid;
    out->views_refused = replica_stats(r)->views_refused;
    out->diverged_op = replica_diverged(r, &out->diverged_from);
    out->divergences = replica_stats(r)->divergences;
    out->storage_stalled = d->storage_stalled;
    out->snapshot_running = d->snapshot_running;
    out->snapshots = d->snapshot_retry;
    out->messages_wrong_sender = d->wrong_sender;
    out->snapshot_chunks_refused = d->chunks_refused;
    out->membership = *replica_membership(r);
    out->removed = replica_removed(r);
    out->left = replica_left(r);
    struct driver_transfer_status *t = &out->transfer;
    t->stops_sent = d->snapshot_stops;
    t->receiving = d->receiving;
    if (d->receiving) {
        t->receiving_from = d->receiving_from;
        t->receiving_op = d->receiver.op;
        t->received = d->receiver.received;
        t->receiving_size = d->receiver.file_size;
    }
    for (uint32_t i = 0; i < d->c.replica_count; i++)
        if (d->sends[i].active) {
            t->sending_offset[i] = d->sends[i].offset;
            t->sending_size[i] = d->sends[i].reader.info.file_size;
        }
    primary_link(d, out);
}

const struct replica *driver_replica(const struct driver *d)
{
    return d->r;
}

struct wal *driver_wal(struct driver *d)
{
    return &d->wal;
}

struct meta *driver_meta(struct driver *d)
{
    return &d->meta;
}

bool driver_cut_torn_tail(const struct driver *d)
{
    return d->cut_torn_tail;
}

bool driver_fresh(const struct driver *d)
{
    return replica_fresh(d->r) && replica_op(d->r) == 0;
}

void driver_distrust_fresh(struct driver *d)
{
    replica_distrust_fresh(d->r);
}

/* ------------------------------------------------------------ open/close */

static int set_paths(struct driver *d, struct cohort_err *err)
{
    const char *dir = d->c.data_dir;
    if (vfs_path_join(d->wal_dir, dir, "wal", err) != 0 ||
        vfs_path_join(d->meta_path, dir, "meta", err) != 0 ||
        vfs_path_join(d->snap_dir, dir, "snapshots", err) != 0)
        return -COHORT_EINVAL;
    return 0;
}

struct driver *driver_open(const struct driver_config *config,
                           const struct driver_host *host,
                           const struct driver_sm *sm, struct cohort_err *err)
{
    ASSERT(config->chunk_size > 0);
    struct driver *d = calloc(1, sizeof(*d));
    ASSERT(d);
    d->c = *config;
    d->host = *host;
    d->sm = *sm;
    d->vfs = config->vfs;
    if (d->c.snapshot_size_max == 0)
        d->c.snapshot_size_max = DRIVER_SNAPSHOT_SIZE_MAX;
    retry_init(&d->snapshot_retry, SNAPSHOT_RETRY_MIN_MS,
               SNAPSHOT_RETRY_MAX_MS);
    retry_init(&d->receive_retry, SNAPSHOT_RETRY_MIN_MS, SNAPSHOT_RETRY_MAX_MS);
    d->groups = calloc(READ_GROUPS_MAX, sizeof(*d->groups));
    d->chunk = malloc(config->chunk_size);
    ASSERT(d->groups && d->chunk);
    if (set_paths(d, err) != 0)
        goto fail;
    struct replica_durable durable;
    uint8_t *table = NULL;
    if (drv_recover(d, &durable, &table, err) != 0) {
        drv_recover_release(d, table);
        goto fail;
    }
    d->c.replica.sm = &d->sm.sm;
    d->r = replica_init(&d->c.replica, &durable, host->now_ms(host->ctx));
    drv_recover_release(d, table);
    if (!d->r && d->log_bytes_recovered) {
        err_set(err, -COHORT_ENOMEM,
                "cannot start the replica: no memory for the %" PRIu64
                " bytes of log after its last snapshot, written under a "
                "larger --log-memory; free memory, or start it once with "
                "that --log-memory until it takes a snapshot",
                d->log_bytes_recovered);
        goto fail;
    }
    if (!d->r) {
        err_set(err, -COHORT_ECONFIG,
                "cannot start the replica: bad limits, or no memory for its "
                "log (%" PRIu64 " bytes of entries, --log-memory; lower it)",
                d->c.replica.log_bytes_max);
        goto fail;
    }
    if (replica_stats(d->r)->checkpoints_refused)
        drv_log(d, DRIVER_LOG_WARN,
                "passed over the checkpoints file in %s: it contradicts the "
                "log (not this data's); it is written again at the next "
                "snapshot",
                d->c.data_dir);
    drv_log(d, DRIVER_LOG_INFO,
            "replica %u of %u started: data in %s, op %" PRIu64
            ", snapshot at op %" PRIu64,
            d->c.self, d->c.replica_count, d->c.data_dir, replica_op(d->r),
            durable.snapshot_op);
    if (!durable.meta_present && replica_op(d->r) == 0)
        /* An empty directory is a new replica, or a disk that was lost:
         * nothing here tells them apart; the host asks its peers
         * (driver_distrust_fresh(), runtime/node.c). */
        drv_log(d, DRIVER_LOG_INFO,
                "replica %u starts on an empty data directory: it waits for "
                "a peer's handshake, and if the group already holds data "
                "(a member being added, or a lost or wiped disk) it votes "
                "only once a primary has brought it up to date",
                d->c.self);
    return d;
fail:
    driver_close(d);
    return NULL;
}

void driver_close(struct driver *d)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    if (d->r)
        drv_fail_all(d);
    drv_transfer_close(d);
    if (d->r)
        replica_deinit(d->r);
    if (d->wal_open)
        wal_close(&d->wal);
    if (d->meta_open)
        meta_close(&d->meta);
    drv_requests_free(d);
    free(d->export_table);
    free(d->chunk);
    free(d->frame);
    free(d);
}
