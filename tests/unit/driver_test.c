/* driver: the driver's own logic, over a group of three (harness.h). A
 * connection's writes reach the core in the order submitted, also through
 * the busy queue; no write is answered before it is durable; every write
 * and read is answered exactly once, also at close, unless cancelled;
 * reads of one turn are one EV_READ; snapshot chunks that do not belong to
 * the transfer under way never touch its file and never crash the replica;
 * a transfer resumes after a lost chunk; chunks nobody asked for, or of a
 * file over the size cap, write nothing; a message whose sender field is
 * not its link's replica is dropped and counted; an export (an operator's
 * backup) is the state at the applied op and leaves the core's snapshots
 * alone. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "harness.h"
#include "storage/snapshot.h"

#define N 3
#define PIPELINE 4u
#define CHUNK 32u
#define CHUNK_HEADER 24u /* op, offset, file size */

static struct harness *h;

static int setup(void **state)
{
    (void)state;
    h = harness_new(N, 7);
    h->config.replica.pipeline_ops_max = PIPELINE;
    h->config.replica.batch_ops_max = PIPELINE;
    harness_start_all(h);
    harness_run(h, 2000);
    assert_true(harness_primary(h) >= 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_free(h);
    h = NULL;
    return 0;
}

static uint32_t primary(void)
{
    int p = harness_primary(h);
    assert_true(p >= 0);
    return (uint32_t)p;
}

static void hold_all_storage(bool hold)
{
    for (uint32_t i = 0; i < N; i++)
        h->r[i].hold_storage = hold;
}

/* ------------------------------------------------------------ requests */

/* More writes than the pipeline holds, in one turn and then while the
 * first ones still wait in the busy queue: the core sees them in order,
 * so each reply is the counter after exactly the writes before it. */
static void writes_reach_the_core_in_order_through_the_busy_queue(void **s)
{
    (void)s;
    uint32_t p = primary();
    const struct replica *core = harness_core(h, p);
    uint64_t op0 = replica_op(core);
    struct harness_reply *q[60];
    for (uint64_t no = 1; no <= 30; no++)
        q[no - 1] = harness_submit(h, p, 7, no, 1);
    harness_turn_end(h, p);
    /* The core took a pipeline's worth; the rest wait for room. */
    assert_true(replica_op(core) - op0 <= PIPELINE);
    for (int k = 0; k < 30; k++)
        assert_int_equal(q[k]->answers, 0);
    /* Some commit and leave the queue; more arrive behind the rest. */
    while (q[0]->answers == 0)
        assert_true(harness_step(h));
    assert_int_equal(q[29]->answers, 0);
    for (uint64_t no = 31; no <= 60; no++)
        q[no - 1] = harness_submit(h, p, 7, no, 1);
    harness_run(h, 1000);
    for (uint64_t no = 1; no <= 60; no++) {
        const struct harness_reply *r = q[no - 1];
        assert_int_equal(r->answers, 1);
        assert_int_equal(r->outcome, DRIVER_DONE);
        assert_int_equal(r->value, no); /* the counter after 1..no */
        if (no > 1)
            assert_true(r->op > q[no - 2]->op);
    }
    assert_int_equal(h->r[p].order_count, 60);
    for (uint32_t k = 0; k < 60; k++)
        assert_int_equal(h->r[p].order[k], k + 1);
}

/* A new client's pipelined writes that find the pipeline full wait in the
 * busy queue behind its first one; none is refused as if the client's
 * session had been forgotten (the first is not in the table yet). */
static void a_new_clients_writes_wait_behind_a_busy_first_one(void **s)
{
    (void)s;
    uint32_t p = primary();
    for (uint64_t c = 0; c < PIPELINE; c++)
        harness_submit(h, p, 30 + c, 1, 1);
    struct harness_reply *q[5];
    for (uint64_t no = 1; no <= 5; no++)
        q[no - 1] = harness_submit(h, p, 40, no, 1);
    harness_run(h, 500);
    for (uint64_t no = 1; no <= 5; no++) {
        assert_int_equal(q[no - 1]->answers, 1);
        assert_int_equal(q[no - 1]->status, REPLY_OK);
        assert_int_equal(q[no - 1]->value, PIPELINE + no);
    }
}

/* The storage of every replica is slow, and then they all lose power: a
 * write answered before that is on a quorum's disks, so it is back. */
static void no_write_is_answered_before_it_is_durable(void **s)
{
    (void)s;
    uint32_t p = primary();
    hold_all_storage(true);
    for (uint64_t no = 1; no <= PIPELINE; no++)
        harness_submit(h, p, 50, no, 1);
    harness_run(h, 100);
    uint64_t answered = 0;
    for (uint32_t k = 0; k < h->reply_count; k++)
        answered +=
            h->replies[k].outcome == DRIVER_DONE && h->replies[k].answers == 1;
    for (uint32_t i = 0; i < N; i++)
        harness_crash(h, i, true); /* the held jobs never ran */
    hold_all_storage(false);
    harness_start_all(h);
    harness_run(h, 3000);
    uint32_t q = primary();
    struct harness_reply *last = harness_submit(h, q, 51, 1, 1);
    harness_run(h, 300);
    assert_int_equal(last->outcome, DRIVER_DONE);
    assert_true(last->value >= answered + 1);
}

/* A log written under larger bounds than the group restarts with (a
 * lowered --log-memory, or a shorter snapshot interval): every replica
 * keeps its whole log for that run, so the group comes back with every
 * acknowledged write instead of taking the records past the new bounds
 * for lost and waiting for peers in the same case. */
static void a_log_longer_than_lowered_bounds_is_kept(void **s)
{
    (void)s;
    uint32_t p = primary();
    const uint64_t writes = 1200; /* 9-byte bodies: 10,800 bytes */
    for (uint64_t no = 1; no <= writes; no++) {
        harness_submit(h, p, 60, no, 1);
        if (no % 100 == 0)
            harness_run(h, 50);
    }
    harness_run(h, 500);
    const struct harness_reply *last = harness_find(h, 60, writes, REPLY_OK);
    assert_non_null(last);
    assert_int_equal(last->value, writes);
    uint64_t op = replica_op(harness_core(h, p));
    for (uint32_t i = 0; i < N; i++)
        harness_crash(h, i, false);
    struct replica_config *rc = &h->config.replica;
    rc->log_bytes_max = 2u * rc->pipeline_bytes_max; /* 8 KiB */
    rc->log_ops_max = 2u * PIPELINE + 8u;
    harness_start_all(h);
    for (uint32_t i = 0; i < N; i++) {
        assert_false(replica_damaged(harness_core(h, i)));
        assert_true(replica_op(harness_core(h, i)) >= op);
    }
    harness_run(h, 3000);
    struct harness_reply *after = harness_submit(h, primary(), 61, 1, 1);
    harness_run(h, 300);
    assert_int_equal(after->outcome, DRIVER_DONE);
    assert_int_equal(after->value, writes + 1);
}

/* A replica restarted with a smaller bound on uncommitted bytes (the
 * runtime derives it from the value and key limits) keeps the largest
 * its data directory ran with (recover.c, dir/bounds): its commit floor
 * and its largest message stay those its log was appended under. A bounds
 * file that does not check out is ignored and written again. */
static void the_pipeline_bound_never_shrinks_across_restarts(void **s)
{
    (void)s;
    uint32_t p = primary();
    for (uint64_t no = 1; no <= 20; no++) {
        harness_submit(h, p, 80, no, 1);
        harness_run(h, 20);
    }
    uint32_t wide = replica_message_size_max(harness_core(h, 0));
    for (uint32_t i = 0; i < N; i++)
        harness_crash(h, i, false);
    struct replica_config *rc = &h->config.replica;
    uint64_t was = rc->pipeline_bytes_max;
    rc->pipeline_bytes_max = 4u * rc->body_size_max; /* 256, from 4096 */
    /* Replica 2's record is damaged: it falls back to the smaller bound. */
    struct cohort_err err;
    static const uint8_t junk[16] = {1, 2, 3};
    assert_int_equal(vfs_replace_file(sim_disk_vfs(&h->r[2].disk),
                                      HARNESS_DATA_DIR, "bounds", junk,
                                      sizeof(junk), &err),
                     0);
    harness_start_all(h);
    assert_int_equal(replica_message_size_max(harness_core(h, 0)), wide);
    assert_int_equal(replica_message_size_max(harness_core(h, 1)), wide);
    uint32_t narrow = replica_message_size_max(harness_core(h, 2));
    assert_true(narrow < wide);
    /* Written again with the bound it ran with: kept from now on. */
    harness_crash(h, 2, false);
    rc->pipeline_bytes_max = rc->body_size_max;
    harness_start(h, 2);
    assert_int_equal(replica_message_size_max(harness_core(h, 2)), narrow);
    harness_run(h, 3000);
    struct harness_reply *after = harness_submit(h, primary(), 81, 1, 1);
    harness_run(h, 300);
    assert_int_equal(after->outcome, DRIVER_DONE);
    assert_int_equal(after->value, 21);
    rc->pipeline_bytes_max = was;
}

/* Writes proposed, writes in the busy queue and reads waiting behind them:
 * closing the driver answers each exactly once, with what is known. */
static void close_answers_every_write_and_read_once(void **s)
{
    (void)s;
    uint32_t p = primary();
    hold_all_storage(true); /* nothing commits */
    struct harness_reply *w[10], *r[3];
    for (uint64_t no = 1; no <= 10; no++)
        w[no - 1] = harness_submit(h, p, 8, no, 1);
    harness_turn_end(h, p);
    for (int k = 0; k < 3; k++)
        r[k] = harness_read(h, p);
    harness_turn_end(h, p);
    harness_settle(h);
    for (int k = 0; k < 10; k++)
        assert_int_equal(w[k]->answers, 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(r[k]->answers, 0);
    harness_crash(h, p, false);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(w[k]->answers, 1);
        /* Proposed: may yet commit. Queued: certainly not applied. */
        assert_int_equal(w[k]->outcome,
                         k < (int)PIPELINE ? DRIVER_UNKNOWN : DRIVER_RETRY);
    }
    for (int k = 0; k < 3; k++) {
        assert_int_equal(r[k]->answers, 1);
        assert_int_equal(r[k]->outcome, DRIVER_RETRY);
    }
}

/* Every answer in a busy run, through view changes, is given once (the
 * harness fails at a second answer) and none is missing. */
static void every_write_and_read_is_answered_once(void **s)
{
    (void)s;
    for (uint32_t round = 0; round < 6; round++) {
        uint32_t p = primary();
        for (uint64_t no = 1; no <= 12; no++) {
            harness_submit(h, p, 100 + round, no, 1);
            if (no % 4 == 0)
                harness_read(h, p);
        }
        harness_submit(h, (p + 1) % N, 200 + round, 1, 1); /* a backup */
        harness_read(h, (p + 1) % N);
        if (round % 2 == 1) {
            harness_crash(h, p, false); /* answers what it held */
            harness_run(h, 2000);
            harness_start(h, p);
        }
        harness_run(h, 2000);
    }
    for (uint32_t k = 0; k < h->reply_count; k++)
        assert_int_equal(h->replies[k].answers, 1);
}

static void cancel_forgets_the_callbacks(void **s)
{
    (void)s;
    uint32_t p = primary();
    struct driver *d = h->r[p].driver;
    hold_all_storage(true);
    struct harness_reply *w[6];
    for (uint64_t no = 1; no <= 6; no++)
        w[no - 1] = harness_submit(h, p, 9, no, 1);
    harness_turn_end(h, p); /* 1..4 proposed, 5..6 queued */
    struct harness_reply *r1 = harness_read(h, p);
    struct harness_reply *r2 = harness_read(h, p);
    driver_cancel(d, w[1]); /* proposed */
    driver_cancel(d, w[5]); /* queued */
    driver_cancel(d, r1);
    hold_all_storage(false);
    harness_run(h, 500);
    assert_int_equal(w[1]->answers, 0);
    assert_int_equal(w[5]->answers, 0);
    assert_int_equal(r1->answers, 0);
    for (int k = 0; k < 6; k++)
        if (k != 1 && k != 5) {
            assert_int_equal(w[k]->answers, 1);
            assert_int_equal(w[k]->outcome, DRIVER_DONE);
        }
    assert_int_equal(r2->answers, 1);
    assert_int_equal(r2->outcome, DRIVER_DONE);
    /* Cancelling forgets the caller, not the write: all six applied. */
    assert_int_equal(h->r[p].total, 6);
    /* Nor does closing call a forgotten callback. */
    struct harness_reply *w7 = harness_submit(h, p, 9, 7, 1);
    driver_cancel(d, w7);
    harness_crash(h, p, false);
    assert_int_equal(w7->answers, 0);
}

/* Reads that arrive in one turn cost the core one EV_READ (one PING
 * round), however many they are: more than the core could hold apart. */
static void reads_of_one_turn_are_one_ev_read(void **s)
{
    (void)s;
    uint32_t p = primary();
    const struct replica *core = harness_core(h, p);
    uint64_t rounds = replica_stats(core)->read_rounds;
    harness_submit(h, p, 10, 1, 5);
    harness_run(h, 100);
    struct harness_reply *r[REPLICA_READS_MAX + 40];
    for (uint32_t k = 0; k < REPLICA_READS_MAX + 30; k++)
        r[k] = harness_read(h, p);
    harness_turn_end(h, p);
    assert_int_equal(replica_stats(core)->read_rounds, rounds + 1);
    for (uint32_t k = REPLICA_READS_MAX + 30; k < REPLICA_READS_MAX + 40; k++)
        r[k] = harness_read(h, p);
    harness_turn_end(h, p);
    assert_int_equal(replica_stats(core)->read_rounds, rounds + 2);
    harness_run(h, 100);
    for (uint32_t k = 0; k < REPLICA_READS_MAX + 40; k++) {
        assert_int_equal(r[k]->answers, 1);
        assert_int_equal(r[k]->outcome, DRIVER_DONE);
        assert_int_equal(r[k]->value, 5);
    }
}

/* ------------------------------------------------------------ transfer */

/* Frames seen as they were delivered. */
struct watch {
    uint32_t from, to; /* the transfer: sender and receiver */
    uint64_t op, file_size;
    uint32_t chunks_from_zero; /* chunks at offset 0 delivered */
    uint32_t resumes;
    uint64_t resume_offset;
    uint32_t stops_to_others; /* "stop sending" to a replica not the sender */
    bool only_sender;         /* drop chunks to the receiver from others */
    bool drop_armed;
    uint64_t drop_offset; /* drop the first chunk at this offset */
    bool dropped;
    bool hostile_armed; /* inject hostile frames before this offset */
    uint64_t hostile_offset;
    bool hostile_done;
    bool backing_off;         /* the receiver may tell its sender to stop */
    uint32_t stops_to_sender; /* (then) "stop sending" to the sender */
};

/* A group whose replica b was down while the primary took snapshots and
 * compacted its log past b's: b can only catch up by a snapshot. */
static void lagging_replica(uint32_t *p_out, uint32_t *b_out)
{
    harness_free(h);
    h = harness_new(N, 11);
    struct replica_config *rc = &h->config.replica;
    rc->pipeline_ops_max = PIPELINE;
    rc->batch_ops_max = PIPELINE;
    rc->snapshot_interval_ops = 8;
    rc->log_ops_max = 2 * PIPELINE + 8 + 8;
    h->config.chunk_size = CHUNK;
    harness_start_all(h);
    harness_run(h, 2000);
    uint32_t p = primary(), b = (p + 1) % N;
    harness_crash(h, b, false);
    for (uint64_t no = 1; no <= 60; no++)
        harness_submit(h, p, 20 + (no - 1) % 5, (no - 1) / 5 + 1, 1);
    harness_run(h, 1000);
    assert_int_equal(h->r[p].total, 60);
    assert_true(replica_log_base(harness_core(h, p)) > 24);
    *p_out = p;
    *b_out = b;
}

static void receiving_path(const struct watch *w, char *path)
{
    snprintf(path, VFS_PATH_MAX,
             HARNESS_DATA_DIR "/snapshots/snapshot-%020" PRIu64 ".snap.recv",
             w->op);
}

/* The file being received, whole, into buf; returns its size. */
static size_t receiving_file(uint32_t b, const struct watch *w, uint8_t *buf,
                             size_t cap)
{
    char path[VFS_PATH_MAX];
    receiving_path(w, path);
    struct vfs *vfs = sim_disk_vfs(&h->r[b].disk);
    struct vfs_file *f = NULL;
    struct cohort_err err;
    if (vfs_open(vfs, path, VFS_READ_ONLY, &f, &err) != 0)
        fail_msg("%s", err.message);
    size_t done = 0;
    assert_int_equal(vfs_read(vfs, f, 0, buf, cap, &done, &err), 0);
    vfs_close(vfs, f);
    return done;
}

static void chunk(uint32_t from, uint32_t to, uint64_t op, uint64_t offset,
                  uint64_t file_size, size_t bytes)
{
    static uint8_t frame[1 + CHUNK_HEADER + 4096];
    assert_true(bytes <= 4096);
    frame[0] = DRIVER_FRAME_SNAPSHOT;
    put_u64(frame + 1, op);
    put_u64(frame + 9, offset);
    put_u64(frame + 17, file_size);
    memset(frame + 1 + CHUNK_HEADER, 0xee, bytes);
    driver_frame(h->r[to].driver, from, frame, 1 + CHUNK_HEADER + bytes);
}

/* Chunks that are not the next piece of the transfer under way, frames too
 * short to hold a chunk, and frames from no replica. */
static void send_hostile_frames(const struct watch *w, uint64_t received)
{
    uint32_t b = w->to, p = w->from, c = 3 - p - b;
    uint64_t op = w->op, size = w->file_size;
    /* The right piece, from a replica that is not the sender. */
    chunk(c, b, op, received, size, CHUNK);
    /* From the sender: past the announced size, or overflowing it. */
    chunk(p, b, op, received, size, (size_t)(size - received + 1));
    chunk(p, b, op, size + 1, size, 1);
    chunk(p, b, op, UINT64_MAX - 8, size, 16);
    chunk(p, b, op, received, UINT64_MAX, CHUNK);
    chunk(p, b, op, received, received + 1, 8);
    /* A chunk of another snapshot that is not a first chunk. */
    chunk(p, b, op + 1, received, size, CHUNK);
    /* Frames too short, from nowhere, or of no known kind. */
    uint8_t raw[1 + CHUNK_HEADER];
    memset(raw, 0xff, sizeof(raw));
    for (size_t n = 0; n < sizeof(raw); n++) {
        raw[0] = DRIVER_FRAME_SNAPSHOT;
        driver_frame(h->r[b].driver, p, raw, n);
        raw[0] = DRIVER_FRAME_SNAPSHOT_RESUME;
        driver_frame(h->r[b].driver, p, raw, n);
        raw[0] = DRIVER_FRAME_PROTOCOL;
        driver_frame(h->r[b].driver, p, raw, n);
    }
    raw[0] = 99;
    driver_frame(h->r[b].driver, p, raw, sizeof(raw));
    raw[0] = DRIVER_FRAME_SNAPSHOT;
    put_u64(raw + 1, op);
    put_u64(raw + 9, received);
    put_u64(raw + 17, size);
    driver_frame(h->r[b].driver, 7, raw, sizeof(raw));
    driver_frame(h->r[b].driver, UINT32_MAX, raw, sizeof(raw));
    driver_frame(h->r[b].driver, b, raw, sizeof(raw));
}

static bool watch_deliver(struct harness *hh, void *ctx, uint32_t from,
                          uint32_t to, const uint8_t *frame, size_t size)
{
    (void)hh;
    struct watch *w = ctx;
    if (size < 1)
        return true;
    if (frame[0] == DRIVER_FRAME_SNAPSHOT_RESUME && from == w->to) {
        assert_true(size >= 17);
        if (get_u64(frame + 9) == DRIVER_SNAPSHOT_STOP) {
            if (to == w->from) {
                /* never to the sender it takes, unless backing off */
                assert_true(w->backing_off);
                w->stops_to_sender++;
                return true;
            }
            w->stops_to_others++;
            return true;
        }
        w->resumes++;
        w->resume_offset = get_u64(frame + 9);
        return true;
    }
    if (frame[0] != DRIVER_FRAME_SNAPSHOT || to != w->to)
        return true;
    if (from != w->from)
        return !w->only_sender; /* the core may ask another replica */
    assert_true(size >= 1 + CHUNK_HEADER);
    uint64_t offset = get_u64(frame + 9);
    w->op = get_u64(frame + 1);
    w->file_size = get_u64(frame + 17);
    w->chunks_from_zero += offset == 0;
    if (w->drop_armed && !w->dropped && offset == w->drop_offset) {
        w->dropped = true;
        return false;
    }
    if (w->hostile_armed && !w->hostile_done && offset == w->hostile_offset) {
        w->hostile_done = true;
        static uint8_t before[4096], after[4096];
        size_t n = receiving_file(to, w, before, sizeof(before));
        assert_int_equal(n, offset); /* the chunks so far, in order */
        send_hostile_frames(w, offset);
        assert_non_null(h->r[to].driver); /* it did not stop */
        assert_int_equal(receiving_file(to, w, after, sizeof(after)), n);
        assert_memory_equal(before, after, n);
    }
    return true;
}

/* b caught up by installing the primary's snapshot. */
static void assert_caught_up(uint32_t p, uint32_t b)
{
    assert_int_equal(replica_status(harness_core(h, b)), STATUS_NORMAL);
    assert_true(h->r[b].restores >= 1);
    assert_int_equal(h->r[b].total, h->r[p].total);
    assert_int_equal(replica_applied(harness_core(h, b)),
                     replica_applied(harness_core(h, p)));
}

static void snapshot_transfer_resumes_after_a_lost_chunk(void **s)
{
    (void)s;
    uint32_t p, b;
    lagging_replica(&p, &b);
    struct watch w = {.from = p, .to = b};
    w.only_sender = true;
    w.drop_armed = true;
    w.drop_offset = 2 * CHUNK;
    h->deliver = watch_deliver;
    h->deliver_ctx = &w;
    harness_start(h, b);
    harness_run(h, 3000);
    assert_true(w.dropped);
    assert_true(w.file_size > 4 * CHUNK); /* chunks went on after the loss */
    /* The next chunk showed the receiver a gap: it asked the sender to go
     * back to the two chunks it held, at once, rather than wait for the
     * core to ask again and the sender to start over from zero. */
    assert_int_equal(w.chunks_from_zero, 1);
    assert_true(w.resumes >= 1);
    assert_int_equal(w.resume_offset, 2 * CHUNK);
    assert_caught_up(p, b);
}

/* A receiver whose disk is full fails to write the snapshot: it backs off
 * (1 s, then 2, 4, 8) instead of having the sender start the file over at
 * once, again and again, and catches up once the disk has room. */
static void a_full_disk_backs_off_receiving_snapshots(void **s)
{
    (void)s;
    uint32_t p, b;
    lagging_replica(&p, &b);
    struct watch w = {.from = p, .to = b};
    w.only_sender = true;
    w.backing_off = true;
    h->deliver = watch_deliver;
    h->deliver_ctx = &w;
    sim_disk_set_capacity(&h->r[b].disk, sim_disk_used(&h->r[b].disk) + 64);
    harness_start(h, b);
    harness_run(h, 3000);
    /* Attempts at about 0, 1 and 3 s: a handful, not one per round trip. */
    assert_true(w.chunks_from_zero >= 2);
    assert_true(w.chunks_from_zero <= 6);
    assert_true(w.stops_to_sender >= 1);
    assert_true(h->r[b].restores == 0);
    sim_disk_set_capacity(&h->r[b].disk, 0); /* room again */
    harness_run(h, 20000);
    assert_caught_up(p, b);
}

static void hostile_chunks_never_touch_the_file_being_received(void **s)
{
    (void)s;
    uint32_t p, b;
    lagging_replica(&p, &b);
    struct watch w = {.from = p, .to = b};
    w.hostile_armed = true;
    w.hostile_offset = 2 * CHUNK;
    h->deliver = watch_deliver;
    h->deliver_ctx = &w;
    harness_start(h, b);
    harness_run(h, 3000);
    assert_true(w.hostile_done);
    assert_int_equal(w.resumes, 0); /* the transfer was not disturbed */
    /* The chunks from the third replica drew one "stop sending" each
     * snapshot op, to it alone. */
    assert_true(w.stops_to_others >= 1);
    assert_int_equal(w.chunks_from_zero, 1);
    assert_caught_up(p, b);
}

/* A first chunk that announces an enormous file starts a transfer that can
 * never finish, and costs nothing but its own bytes: the real one replaces
 * it when the core asks again. */
static void a_huge_announced_size_does_not_hurt(void **s)
{
    (void)s;
    uint32_t p, b;
    lagging_replica(&p, &b);
    harness_start(h, b);
    harness_settle(h);
    uint64_t op = replica_log_base(harness_core(h, p)) + 1000;
    chunk(p, b, op, 0, UINT64_MAX, CHUNK);
    chunk(p, b, op, CHUNK, UINT64_MAX, CHUNK);
    chunk(p, b, op + 1, 0, UINT64_MAX / 2, CHUNK);
    chunk(p, b, op + 2, 0, 1, 0); /* smaller than any snapshot */
    assert_true(sim_disk_used(&h->r[b].disk) < (1u << 20));
    harness_run(h, 3000);
    assert_caught_up(p, b);
}

/* ------------------------------------------------------------ export */

/* driver_export() (an operator's backup): the state at the applied op and
 * the client table, written apart from the replica's snapshots, readable
 * as a snapshot; the core's own snapshots and log are untouched. */
static void an_export_is_the_state_at_the_applied_op(void **s)
{
    (void)s;
    uint32_t p = primary();
    struct driver *d = h->r[p].driver;
    struct driver_snapshot snap;
    if (replica_applied(harness_core(h, p)) == 0)
        assert_int_equal(driver_export(d, &snap), -COHORT_EAGAIN);
    for (uint64_t no = 1; no <= 10; no++)
        harness_submit(h, p, 300, no, 2);
    harness_run(h, 2000);
    uint64_t base = replica_log_base(harness_core(h, p));
    uint64_t written = h->r[p].snapshots_written;
    assert_int_equal(driver_export(d, &snap), 0);
    assert_int_equal(snap.info.op, replica_applied(harness_core(h, p)));
    assert_int_equal(snap.info.op, h->r[p].applied_op);
    assert_true(snap.info.client_table_size > 0);

    struct vfs *vfs = sim_disk_vfs(&h->r[p].disk);
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(driver_snapshot_write_dir(vfs, "/backup", &snap,
                                               harness_state_bytes, &h->r[p],
                                               &err),
                     0);
    struct snapshot_reader rd;
    assert_int_equal(snapshot_open_latest(&rd, vfs, "/backup", &err), 0);
    assert_int_equal(snapshot_info(&rd)->op, snap.info.op);
    assert_int_equal(snapshot_info(&rd)->checksum, snap.info.checksum);
    size_t table_size = snap.info.client_table_size;
    uint8_t *table = malloc(table_size);
    assert_non_null(table);
    assert_int_equal(snapshot_read_client_table(&rd, table, &err), 0);
    assert_memory_equal(table, snap.client_table, table_size);
    uint8_t state[16];
    size_t got = 0;
    assert_int_equal(snapshot_read_state(&rd, 0, state, 16, &got, &err), 0);
    assert_int_equal(got, 16);
    assert_int_equal(get_u64(state), snap.info.op);
    assert_int_equal(get_u64(state + 8), 20);
    snapshot_close(&rd);
    free(table);

    assert_int_equal(replica_log_base(harness_core(h, p)), base);
    assert_int_equal(h->r[p].snapshots_written, written);
    struct harness_reply *r = harness_submit(h, p, 300, 11, 2);
    harness_run(h, 2000);
    assert_int_equal(r->outcome, DRIVER_DONE);
    assert_int_equal(r->value, 22);
}

static struct driver_status status_of(uint32_t i)
{
    struct driver_status st;
    driver_status(h->r[i].driver, &st);
    return st;
}

/* A peer posing as a replica that was never asked (b awaits no snapshot:
 * it is up to date) streams 20 MiB of chunks above b's applied op: nothing
 * is written, every chunk is counted, and b goes on. */
static void unasked_snapshot_chunks_write_nothing(void **s)
{
    (void)s;
    uint32_t p = primary(), b = (p + 1) % N, c = (p + 2) % N;
    harness_submit(h, p, 1, 1, 1);
    harness_run(h, 200);
    assert_int_equal(replica_snapshot_source(harness_core(h, b)),
                     COHORT_REPLICA_NONE);
    uint64_t op = replica_applied(harness_core(h, b)) + 1;
    uint64_t size = 20u << 20, sent = 0, chunks = 0;
    for (uint64_t off = 0; off < size; off += 4096, chunks++) {
        chunk(c, b, op, off, size, 4096);
        sent += 4096;
    }
    assert_int_equal(status_of(b).snapshot_chunks_refused, chunks);
    assert_true(sim_disk_used(&h->r[b].disk) < (1u << 20));
    struct watch w = {.op = op};
    char path[VFS_PATH_MAX];
    receiving_path(&w, path);
    struct vfs_file *f = NULL;
    struct cohort_err err;
    assert_int_not_equal(
        vfs_open(sim_disk_vfs(&h->r[b].disk), path, VFS_READ_ONLY, &f, &err),
        0);
    harness_submit(h, p, 1, 2, 1);
    harness_run(h, 200);
    assert_int_equal(h->r[b].total, 2);
    (void)sent;
}

/* b awaits p's snapshot, but it is larger than b's cap: refused and
 * counted, never received, nothing installed. */
static void a_snapshot_over_the_size_cap_is_refused(void **s)
{
    (void)s;
    uint32_t p, b;
    lagging_replica(&p, &b);
    h->config.snapshot_size_max = 64; /* smaller than any snapshot */
    harness_start(h, b);
    harness_run(h, 1000);
    assert_int_equal(h->r[b].restores, 0);
    assert_true(status_of(b).snapshot_chunks_refused > 0);
    assert_int_not_equal(h->r[b].total, h->r[p].total);
}

/* Frames copied from the primary's link to a backup and delivered again as
 * if the third replica's link carried them: every one names the primary as
 * its sender, so every one is dropped and counted, and the group works. */
struct resend {
    uint32_t p, b, c;
    uint64_t copies;
};

static bool resend_deliver(struct harness *hh, void *ctx, uint32_t from,
                           uint32_t to, const uint8_t *frame, size_t size)
{
    struct resend *r = ctx;
    if (from == r->p && to == r->b && size > 1 + 72 &&
        frame[0] == DRIVER_FRAME_PROTOCOL) {
        r->copies++;
        driver_frame(hh->r[r->b].driver, r->c, frame, size);
    }
    return true;
}

static void a_message_naming_another_sender_is_dropped(void **s)
{
    (void)s;
    uint32_t p = primary();
    struct resend r = {p, (p + 1) % N, (p + 2) % N, 0};
    h->deliver = resend_deliver;
    h->deliver_ctx = &r;
    for (uint64_t no = 1; no <= 10; no++)
        harness_submit(h, p, 5, no, 1);
    harness_run(h, 500);
    h->deliver = NULL;
    print_message("    %" PRIu64 " copies\n", r.copies);
    assert_true(r.copies >= 3);
    assert_int_equal(status_of(r.b).messages_wrong_sender, r.copies);
    assert_int_equal(status_of(r.c).messages_wrong_sender, 0);
    assert_int_equal(h->r[r.b].total, 10);
    assert_int_equal(primary(), p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            writes_reach_the_core_in_order_through_the_busy_queue, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            a_new_clients_writes_wait_behind_a_busy_first_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            no_write_is_answered_before_it_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_log_longer_than_lowered_bounds_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            the_pipeline_bound_never_shrinks_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(close_answers_every_write_and_read_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(every_write_and_read_is_answered_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_forgets_the_callbacks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reads_of_one_turn_are_one_ev_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_full_disk_backs_off_receiving_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(
            snapshot_transfer_resumes_after_a_lost_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(
            hostile_chunks_never_touch_the_file_being_received, setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_huge_announced_size_does_not_hurt,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            an_export_is_the_state_at_the_applied_op, setup, teardown),
        cmocka_unit_test_setup_teardown(unasked_snapshot_chunks_write_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_snapshot_over_the_size_cap_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_message_naming_another_sender_is_dropped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
