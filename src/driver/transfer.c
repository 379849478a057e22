/* transfer — snapshots: taken in the background by the host
 * (ACT_SNAPSHOT_TAKE, then driver_snapshot_done()), written to a file by
 * driver_snapshot_write(), sent to a lagging peer in chunk frames
 * (ACT_SNAPSHOT_SEND), received into a temp file, verified and installed
 * into the state machine.
 *
 * The chunk protocol tolerates loss, duplication and reordering (the
 * simulator's network does all three) and dropped connections: a chunk
 * frame carries (op, offset, file size); the receiver writes chunks in
 * order. A chunk past the receiver's position (a gap: a chunk before it
 * was lost or is late), or a later chunk of the awaited snapshot before
 * its first, makes the receiver ask the sender to go back to where it is
 * (FRAME_SNAPSHOT_RESUME, once per position until the transfer makes
 * progress or starts over: the same gap in a later attempt is asked
 * again, seed 175 of the crash profile); a sender that has finished
 * reopens its latest snapshot for that, if it is still the same one; a
 * sender that starts over at offset 0 is told to resume where the
 * receiver is. Without the request, a tail chunk that always overtakes the
 * others (a short frame on a reordering network) made every attempt end
 * one chunk short, and the core's next ask, to another replica with
 * another snapshot, start over: seed 303 of --replicas 5 once the
 * simulator's snapshots grew past one chunk. A transfer that has not moved
 * for a view-change timeout asks again, even for a position already asked
 * (the tail can overtake the resent chunks too, or the request be lost:
 * drv_snapshot_receive_stalled()). A chunk that makes progress
 * is told to the core (EV_SNAPSHOT_PROGRESS, once a heartbeat), which
 * then does not ask another replica while this one is sending: each
 * would send its own snapshot from the start (issue 12). A replica whose
 * chunks are refused because the core takes its snapshot from another is
 * told to stop (RESUME at DRIVER_SNAPSHOT_STOP), once per snapshot op
 * and at each first chunk.
 *
 * Invariants: (1) one background snapshot at a time; (2) a received
 * snapshot reaches the state machine only after snapshot_receive_end()
 * verified the whole file; (3) a chunk from a replica other than the one
 * whose transfer is under way, or past its announced size, never touches
 * the file being received; (4) a snapshot at or below applied is dropped;
 * (5) a transfer begins only from the replica the core awaits a snapshot
 * from (replica_snapshot_source(): it asked that replica for state and was
 * told a snapshot is coming), and only for a file of at most
 * snapshot_size_max bytes, so a peer can neither write files nobody asked
 * for nor claim a size that fills the disk. Refused chunks are counted. */
#include "driver/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"

#define CHUNK_HEADER 24 /* op, offset, file size */

/* ------------------------------------------------------------ take */

static uint64_t now_ms(const struct driver *d)
{
    return d->host.now_ms(d->host.ctx);
}

/* A failed attempt: hold it back from the core until the backoff passes
 * (drv_snapshot_retry_due), and log the first of a run. */
static void snapshot_failed(struct driver *d, const char *why)
{
    uint64_t wall = d->host.wall_ms ? d->host.wall_ms(d->host.ctx) : 0;
    if (retry_failed(&d->snapshot_retry, now_ms(d), wall, why))
        drv_log(d, DRIVER_LOG_WARN,
                "snapshots are failing: %s; retrying in %" PRIu32
                " ms, then less often (every %u ms at most); the log is not "
                "compacted until one works: check the disk under %s",
                why, d->snapshot_retry.delay_ms, SNAPSHOT_RETRY_MAX_MS,
                d->c.data_dir);
    d->snapshot_failure_held = true;
}

void drv_snapshot_retry_due(struct driver *d)
{
    if (!d->snapshot_failure_held || d->closing ||
        !retry_due(&d->snapshot_retry, now_ms(d)))
        return;
    d->snapshot_failure_held = false;
    struct event ev = {.type = EV_SNAPSHOT_TAKEN};
    ev.snapshot_taken.op = 0; /* failed: the core asks again */
    drv_step(d, &ev);
}

void drv_take_snapshot(struct driver *d, const struct action *a)
{
    if (d->snapshot_running || d->snapshot_failure_held)
        return; /* one at a time; the core asks again later */
    struct driver_snapshot snap = {
        .info =
            {
                .op = a->snapshot_take.op,
                .checksum = a->snapshot_take.checksum,
                .timestamp_ms = a->snapshot_take.timestamp_ms,
                .view = replica_view(d->r),
                .client_table_size = a->snapshot_take.client_table_size,
            },
        .client_table = a->snapshot_take.client_table,
    };
    char why[COHORT_ERR_MESSAGE_MAX];
    why[0] = '\0';
    if (!d->host.snapshot(d->host.ctx, &snap, why, sizeof(why))) {
        snapshot_failed(d, why[0] ? why : "could not start one");
        return;
    }
    d->snapshot_running = true;
    d->snapshot_running_op = snap.info.op;
}

void driver_snapshot_done(struct driver *d, uint64_t op, bool ok,
                          const char *why)
{
    if (!d->snapshot_running || op != d->snapshot_running_op)
        return;
    d->snapshot_running = false;
    if (!ok) {
        char text[COHORT_ERR_MESSAGE_MAX];
        if (!why || !why[0])
            snprintf(text, sizeof(text), "snapshot at op %" PRIu64 " failed",
                     op);
        snapshot_failed(d, why && why[0] ? why : text);
        return;
    }
    uint64_t since = d->snapshot_retry.since_ms;
    uint64_t failures = retry_succeeded(&d->snapshot_retry);
    if (failures)
        drv_log(d, DRIVER_LOG_INFO,
                "snapshots work again (op %" PRIu64 "), after %" PRIu64
                " failed attempt%s in %" PRIu64 " ms",
                op, failures, failures == 1 ? "" : "s", now_ms(d) - since);
    d->snapshot_op = op;
    d->snapshot_time_ms = d->host.wall_ms ? d->host.wall_ms(d->host.ctx) : 0;
    struct event ev = {.type = EV_SNAPSHOT_TAKEN};
    ev.snapshot_taken.op = op;
    drv_step(d, &ev);
}

static int state_write_cb(void *ctx, const void *data, size_t size)
{
    struct snapshot_writer *w = ctx;
    struct cohort_err err;
    return snapshot_write(w, data, size, &err);
}

int driver_snapshot_write(struct vfs *vfs, const char *data_dir,
                          const struct driver_snapshot *snap,
                          driver_state_fn state, void *state_ctx,
                          struct cohort_err *err)
{
    char dir[VFS_PATH_MAX];
    int rc = vfs_path_join(dir, data_dir, "snapshots", err);
    if (rc != 0)
        return rc;
    return driver_snapshot_write_dir(vfs, dir, snap, state, state_ctx, err);
}

int driver_snapshot_write_dir(struct vfs *vfs, const char *dir,
                              const struct driver_snapshot *snap,
                              driver_state_fn state, void *state_ctx,
                              struct cohort_err *err)
{
    struct snapshot_writer w;
    int rc = snapshot_write_begin(&w, vfs, dir, &snap->info, snap->client_table,
                                  err);
    if (rc == 0) {
        rc = state(state_ctx, state_write_cb, &w);
        if (rc != 0)
            err_set(err, rc, "write the state into a snapshot in %s", dir);
    }
    if (rc == 0)
        rc = snapshot_write_end(&w, NULL, err);
    if (rc != 0)
        snapshot_write_abort(&w);
    return rc;
}

int driver_export(struct driver *d, struct driver_snapshot *snap)
{
    const struct replica *r = d->r;
    if (replica_applied(r) == 0)
        return -COHORT_EAGAIN;
    size_t max = replica_client_table_size_max(r);
    if (d->export_table == NULL) {
        d->export_table = malloc(max ? max : 1);
        if (d->export_table == NULL)
            return -COHORT_ENOMEM;
    }
    struct replica_export x;
    size_t size = replica_export(r, &x, d->export_table, max);
    ASSERT(size <= max);
    memset(snap, 0, sizeof(*snap));
    snap->info.op = x.op;
    snap->info.checksum = x.checksum;
    snap->info.timestamp_ms = x.timestamp_ms;
    snap->info.view = replica_view(r);
    snap->info.client_table_size = size;
    snap->client_table = d->export_table;
    return 0;
}

/* ------------------------------------------------------------ send */

void drv_start_snapshot_send(struct driver *d, uint32_t to)
{
    if (to >= d->c.replica_count || to == d->c.self)
        return;
    struct snapshot_send *s = &d->sends[to];
    if (s->active)
        snapshot_close(&s->reader);
    s->active = false;
    struct cohort_err err;
    if (snapshot_open_latest(&s->reader, d->vfs, d->snap_dir, &err) != 0) {
        drv_log(d, DRIVER_LOG_WARN, "cannot send a snapshot to replica %u: %s",
                to, err.message);
        return;
    }
    s->active = true;
    s->offset = 0;
}

static void send_close(struct snapshot_send *s)
{
    snapshot_close(&s->reader);
    s->active = false;
}

/* Send what the link to `to` has room for. */
static void pump_one(struct driver *d, uint32_t to)
{
    struct snapshot_send *s = &d->sends[to];
    bool up = false;
    uint64_t queued = 0;
    d->host.link(d->host.ctx, to, &up, &queued);
    if (!up) {
        send_close(s);
        return;
    }
    for (int k = 0; k < 4 && queued < d->c.send_window; k++) {
        size_t done = 0;
        struct cohort_err err;
        if (snapshot_read_chunk(&s->reader, s->offset, d->chunk,
                                d->c.chunk_size, &done, &err) != 0) {
            drv_log(d, DRIVER_LOG_WARN, "snapshot send to %u: %s", to,
                    err.message);
            send_close(s);
            return;
        }
        uint8_t head[CHUNK_HEADER];
        put_u64(head, s->reader.info.op);
        put_u64(head + 8, s->offset);
        put_u64(head + 16, s->reader.info.file_size);
        drv_send_frame(d, to, DRIVER_FRAME_SNAPSHOT, head, sizeof(head),
                       d->chunk, done);
        s->offset += done;
        if (done == 0 || s->offset >= s->reader.info.file_size) {
            send_close(s);
            return;
        }
        d->host.link(d->host.ctx, to, &up, &queued);
    }
}

void drv_pump_snapshot_sends(struct driver *d)
{
    for (uint32_t to = 0; to < d->c.replica_count; to++)
        if (d->sends[to].active)
            pump_one(d, to);
}

void drv_on_snapshot_resume(struct driver *d, uint32_t from,
                            const uint8_t *data, size_t size)
{
    if (size < 16 || from >= d->c.replica_count)
        return;
    struct snapshot_send *s = &d->sends[from];
    uint64_t op = get_u64(data);
    uint64_t offset = get_u64(data + 8);
    if (offset == DRIVER_SNAPSHOT_STOP) {
        /* It takes a snapshot from another replica: two streaming the
         * whole store to one receiver waste both links (issue 12). */
        if (s->active && s->reader.info.op == op) {
            drv_log(d, DRIVER_LOG_INFO,
                    "snapshot at op %" PRIu64 " to replica %u: stopped at "
                    "byte %" PRIu64 " (it receives from another replica)",
                    op, from, s->offset);
            send_close(s);
        }
        return;
    }
    if (!s->active) {
        /* Finished already: serve the request if the snapshot asked for
         * is still our latest (checked first: opening one verifies the
         * whole file, too much to do for every stray request). */
        struct cohort_err err;
        if (op != d->snapshot_op ||
            snapshot_open_latest(&s->reader, d->vfs, d->snap_dir, &err) != 0)
            return;
        s->active = true;
    }
    if (s->reader.info.op != op) {
        send_close(s); /* another snapshot than the one asked for */
        return;
    }
    if (offset > s->reader.info.file_size)
        return;
    drv_log(d, DRIVER_LOG_INFO,
            "snapshot at op %" PRIu64 " to replica %u: resuming at byte "
            "%" PRIu64 " of %" PRIu64,
            op, from, offset, s->reader.info.file_size);
    s->offset = offset;
}

/* ------------------------------------------------------------ receive */

/* The state machine reads the state in small pieces (a record's header,
 * its bytes, its checksum): through a read-ahead buffer, so that a restore
 * costs one pread per RESTORE_READ_AHEAD bytes instead of three per record
 * (over half of a 10M-key install was pread calls). Reads past the state
 * return 0 bytes (snapshot_read_state), so the read-ahead never takes
 * bytes of another section. */
#define RESTORE_READ_AHEAD (1u << 20)

struct restore_reader {
    struct snapshot_reader *r;
    uint64_t offset; /* of the next byte the caller gets */
    uint8_t *buf;    /* RESTORE_READ_AHEAD bytes, or NULL: unbuffered */
    size_t have, at; /* buf[at, have) are the bytes from offset on */
};

static int reader_read_cb(void *ctx, void *data, size_t size, size_t *got)
{
    struct restore_reader *c = ctx;
    struct cohort_err err;
    *got = 0;
    if (c->at == c->have && (c->buf == NULL || size >= RESTORE_READ_AHEAD)) {
        int rc = snapshot_read_state(c->r, c->offset, data, size, got, &err);
        if (rc == 0)
            c->offset += *got;
        return rc;
    }
    if (c->at == c->have) {
        size_t filled = 0;
        int rc = snapshot_read_state(c->r, c->offset, c->buf,
                                     RESTORE_READ_AHEAD, &filled, &err);
        if (rc != 0)
            return rc;
        c->have = filled;
        c->at = 0;
    }
    size_t n = c->have - c->at;
    if (n > size)
        n = size;
    if (n)
        memcpy(data, c->buf + c->at, n);
    c->at += n;
    c->offset += n;
    *got = n;
    return 0;
}

int drv_restore(struct driver *d, struct snapshot_reader *rd, uint8_t **table,
                struct cohort_err *err)
{
    const struct snapshot_info *info = snapshot_info(rd);
    *table = malloc(info->client_table_size ? info->client_table_size : 1);
    ASSERT(*table);
    int rc = snapshot_read_client_table(rd, *table, err);
    if (rc != 0)
        return rc;
    struct restore_reader ctx = {.r = rd, .buf = malloc(RESTORE_READ_AHEAD)};
    rc = d->sm.restore(d->sm.ctx, reader_read_cb, &ctx, err);
    free(ctx.buf);
    return rc;
}

static void install_received(struct driver *d)
{
    struct snapshot_info info;
    struct cohort_err err;
    if (snapshot_receive_end(&d->receiver, &info, &err) != 0) {
        drv_log(d, DRIVER_LOG_WARN, "received snapshot rejected: %s",
                err.message);
        snapshot_receive_abort(&d->receiver);
        return;
    }
    if (info.op <= replica_applied(d->r))
        return; /* we caught up meanwhile */
    struct snapshot_reader rd;
    uint8_t *table = NULL;
    if (snapshot_open_latest(&rd, d->vfs, d->snap_dir, &err) != 0) {
        drv_log(d, DRIVER_LOG_WARN, "cannot reopen the received snapshot: %s",
                err.message);
        return;
    }
    if (snapshot_info(&rd)->op != info.op) {
        /* A newer one of our own was written meanwhile: it will do. */
        drv_log(d, DRIVER_LOG_INFO,
                "received snapshot at op %" PRIu64 " is not the newest (op "
                "%" PRIu64 "); not installed",
                info.op, snapshot_info(&rd)->op);
        snapshot_close(&rd);
        return;
    }
    int rc = drv_restore(d, &rd, &table, &err);
    snapshot_close(&rd);
    if (rc != 0) {
        /* It verified but does not restore (a bug here or at the sender):
         * the state machine is empty now and this replica cannot go on. */
        free(table);
        err_wrap(&err, "installing snapshot at op %" PRIu64, info.op);
        d->host.fatal(d->host.ctx, rc, err.message);
        return;
    }
    d->snapshot_op = info.op;
    d->snapshot_time_ms = d->host.wall_ms ? d->host.wall_ms(d->host.ctx) : 0;
    struct event ev = {.type = EV_SNAPSHOT_INSTALLED};
    ev.snapshot.op = info.op;
    ev.snapshot.checksum = info.checksum;
    ev.snapshot.timestamp_ms = info.timestamp_ms;
    ev.snapshot.client_table = table;
    ev.snapshot.client_table_size = info.client_table_size;
    drv_step(d, &ev);
    free(table);
    if (replica_op(d->r) == info.op) {
        /* Nothing of our old log chains on: start the wal afresh after
         * the snapshot. */
        struct storage_job *job = storage_job_new(STORAGE_RESET);
        job->op_last = info.op;
        job->checksum = info.checksum;
        if (d->c.replica.bugs & BUG_STORAGE_LOG_RESTART)
            job->op_last = info.op - 1; /* the deliberate bug */
        drv_storage_push(d, job);
    }
    drv_log(d, DRIVER_LOG_INFO, "installed a snapshot at op %" PRIu64, info.op);
    uint64_t failures = retry_succeeded(&d->receive_retry);
    if (failures)
        drv_log(d, DRIVER_LOG_INFO,
                "receiving snapshots works again, after %" PRIu64
                " failed attempts",
                failures);
}

/* Writing a received snapshot failed here (a full disk, say): back off
 * before taking the next one, and log the first failure of a run; the
 * sender would otherwise start the file over at once, again and again. */
static void receive_failed(struct driver *d, uint32_t from, const char *why)
{
    uint64_t wall = d->host.wall_ms ? d->host.wall_ms(d->host.ctx) : 0;
    if (retry_failed(&d->receive_retry, now_ms(d), wall, why))
        drv_log(d, DRIVER_LOG_WARN,
                "snapshot from %u: %s; trying again in %" PRIu32
                " ms, then less often (every %u ms at most): check the disk "
                "under %s",
                from, why, d->receive_retry.delay_ms, SNAPSHOT_RETRY_MAX_MS,
                d->c.data_dir);
    else
        drv_log(d, DRIVER_LOG_DEBUG, "snapshot from %u: %s", from, why);
}

/* Ask `from` to stop streaming snapshot op. */
static void send_stop(struct driver *d, uint32_t from, uint64_t op)
{
    d->stop_told_op[from] = op;
    d->snapshot_stops++;
    uint8_t head[16];
    put_u64(head, op);
    put_u64(head + 8, DRIVER_SNAPSHOT_STOP);
    drv_send_frame(d, from, DRIVER_FRAME_SNAPSHOT_RESUME, head, sizeof(head),
                   NULL, 0);
}

/* While receiving backs off: the chunk is dropped and its sender told to
 * stop streaming that snapshot (once per snapshot). */
static bool receive_held(struct driver *d, uint32_t from, uint64_t op)
{
    if (retry_due(&d->receive_retry, now_ms(d)))
        return false;
    if (d->stop_told_op[from] != op)
        send_stop(d, from, op);
    return true;
}

/* A chunk that does not go into the file: counted, and the first of each
 * run of refusals logged (every power of two after it, so a stream of them
 * costs a few lines). */
static void chunk_refused(struct driver *d, uint32_t from, uint64_t op,
                          uint64_t file_size, const char *why)
{
    d->chunks_refused++;
    if ((d->chunks_refused & (d->chunks_refused - 1)) != 0)
        return;
    drv_log(d, DRIVER_LOG_WARN,
            "refused a snapshot chunk from replica %" PRIu32 " (op %" PRIu64
            ", a file of %" PRIu64 " bytes): %s (%" PRIu64
            " chunks refused so far)",
            from, op, file_size, why, d->chunks_refused);
}

/* Chunks from a replica we do not take a snapshot from (we asked it
 * earlier, then another answered first): ask it to stop streaming the rest
 * of the file, once per snapshot and again at each first chunk (the core
 * may ask it again, and it starts that snapshot over). */
static void tell_stop(struct driver *d, uint32_t from, uint64_t op,
                      uint64_t offset)
{
    if (replica_snapshot_source(d->r) == from ||
        (d->stop_told_op[from] == op && offset != 0))
        return;
    send_stop(d, from, op);
}

/* Whether a new transfer from `from` may begin. */
static bool transfer_allowed(struct driver *d, uint32_t from, uint64_t op,
                             uint64_t file_size)
{
    if (replica_snapshot_source(d->r) != from) {
        chunk_refused(d, from, op, file_size,
                      "this replica did not ask it for a snapshot");
        tell_stop(d, from, op, 0);
        return false;
    }
    if (file_size > d->c.snapshot_size_max) {
        char why[200];
        snprintf(why, sizeof(why),
                 "over the limit of %" PRIu64
                 " bytes (--max-snapshot-size; raise it if the store is "
                 "that big)",
                 d->c.snapshot_size_max);
        chunk_refused(d, from, op, file_size, why);
        return false;
    }
    return true;
}

/* A first chunk (offset 0): begin receiving, or, for the snapshot already
 * under way, ask the sender to resume. Returns whether the chunk should be
 * written. */
static bool first_chunk(struct driver *d, uint32_t from, uint64_t op,
                        uint64_t file_size, bool same)
{
    if (same && d->receiver.received > 0) {
        /* The sender started this snapshot over (a new connection, or the
         * core asked again): keep what we hold and ask it to go on from
         * there. Chunks we already hold are rewritten meanwhile. */
        uint8_t head[16];
        put_u64(head, op);
        put_u64(head + 8, d->receiver.received);
        drv_send_frame(d, from, DRIVER_FRAME_SNAPSHOT_RESUME, head,
                       sizeof(head), NULL, 0);
        return true;
    }
    if (same)
        return true;
    if (!transfer_allowed(d, from, op, file_size))
        return false;
    if (d->receiving)
        snapshot_receive_abort(&d->receiver);
    struct cohort_err err;
    d->resume_asked_op = 0; /* a new transfer asks afresh */
    d->receive_progress_ms = now_ms(d);
    d->receiving_from = from;
    d->receiving = snapshot_receive_begin(&d->receiver, d->vfs, d->snap_dir, op,
                                          file_size, &err) == 0;
    if (!d->receiving)
        receive_failed(d, from, err.message);
    return d->receiving;
}

/* Ask `from` to send snapshot op again from offset, once per position. */
static void ask_resume(struct driver *d, uint32_t from, uint64_t op,
                       uint64_t offset)
{
    if (d->resume_asked_op == op && d->resume_asked_offset == offset)
        return;
    d->resume_asked_op = op;
    d->resume_asked_offset = offset;
    d->resume_sent_ms = now_ms(d);
    uint8_t head[16];
    put_u64(head, op);
    put_u64(head + 8, offset);
    drv_send_frame(d, from, DRIVER_FRAME_SNAPSHOT_RESUME, head, sizeof(head),
                   NULL, 0);
}

void drv_on_snapshot_chunk(struct driver *d, uint32_t from, const uint8_t *data,
                           size_t size)
{
    if (size < CHUNK_HEADER || from >= d->c.replica_count || from == d->c.self)
        return;
    uint64_t op = get_u64(data);
    uint64_t offset = get_u64(data + 8);
    uint64_t file_size = get_u64(data + 16);
    const uint8_t *bytes = data + CHUNK_HEADER;
    size_t count = size - CHUNK_HEADER;
    if (op <= replica_applied(d->r) || offset > file_size ||
        count > file_size - offset)
        return; /* stale, or not a chunk of the file it announces */
    bool same = d->receiving && d->receiving_from == from &&
                d->receiver.op == op && d->receiver.file_size == file_size;
    if (!same && receive_held(d, from, op))
        return;
    if (offset == 0 && !first_chunk(d, from, op, file_size, same))
        return;
    if (offset != 0 && !same) {
        if (!d->receiving && replica_snapshot_source(d->r) == from &&
            file_size <= d->c.snapshot_size_max)
            ask_resume(d, from, op, 0); /* its first chunk is late or lost */
        else {
            chunk_refused(d, from, op, file_size,
                          "not part of a transfer under way");
            tell_stop(d, from, op, offset);
        }
        return;
    }
    if (offset > d->receiver.received) {
        ask_resume(d, from, op, d->receiver.received); /* a gap */
        return;
    }
    struct cohort_err err;
    uint64_t before = d->receiver.received;
    if (snapshot_receive_chunk(&d->receiver, offset, bytes, count, &err) != 0) {
        receive_failed(d, from, err.message);
        snapshot_receive_abort(&d->receiver);
        d->receiving = false;
        return;
    }
    if (d->receiver.received > before) {
        d->resume_asked_op = 0; /* progress: a later gap may be asked again */
        d->receive_progress_ms = now_ms(d);
        /* Tell the core (at most once a heartbeat), which then waits for
         * this transfer instead of asking another replica. */
        uint64_t now = now_ms(d);
        if (now - d->progress_told_ms >= d->c.replica.heartbeat_ms &&
            d->receiver.received < file_size) {
            d->progress_told_ms = now;
            struct event ev = {.type = EV_SNAPSHOT_PROGRESS};
            ev.snapshot_progress.from = from;
            drv_step(d, &ev);
            if (!d->receiving || d->receiving_from != from)
                return; /* (the core's actions cannot end it; defensive) */
        }
    }
    if (d->receiver.received == file_size) {
        d->receiving = false;
        install_received(d);
    }
}

/* A RESUME asked once per position is not enough when what it asks for
 * is lost, or when the tail chunk overtakes the others again after it (a
 * short frame on a reordering network, asked about once already): the
 * receiver then holds all but the tail and nothing more arrives. Without
 * this, it waited for the core's next ask, which on every other retry
 * goes to another replica with another snapshot, where the same could
 * happen: the simulator's soak found a learner cycling through four
 * senders (seed 1006523259810, --replicas 5 --transfers 400 --reconfigs
 * 300 --volatile 10). */
void drv_snapshot_receive_stalled(struct driver *d)
{
    if (!d->receiving || d->receiver.received >= d->receiver.file_size)
        return;
    uint64_t now = now_ms(d);
    /* Long enough that a transfer slowed by a busy link or sender (in
     * order, over TCP) is not rewound for nothing, well within the core's
     * patience with a transfer that makes no progress (4 of them). */
    uint64_t wait = d->c.replica.view_change_timeout_ms;
    if (now - d->receive_progress_ms < wait || now - d->resume_sent_ms < wait)
        return;
    d->resume_asked_op = 0; /* ask again, even for the same position */
    ask_resume(d, d->receiving_from, d->receiver.op, d->receiver.received);
}

void drv_transfer_close(struct driver *d)
{
    for (uint32_t i = 0; i < COHORT_REPLICAS_MAX; i++)
        if (d->sends[i].active)
            send_close(&d->sends[i]);
    if (d->receiving)
        snapshot_receive_abort(&d->receiver);
    d->receiving = false;
}
