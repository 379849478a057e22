/* harness — a small group of drivers (src/driver) for unit tests: the
 * driver's host, in its simplest form.
 *
 *  - each replica runs the real driver, over its own simulated disk
 *    (src/sim/disk.c, a struct vfs) with the real storage code;
 *  - a FIFO network between them, without loss, that can cut a replica
 *    off (frames to and from it are dropped) and lets a test see, drop or
 *    add frames as they are delivered (the deliver hook);
 *  - storage jobs run at the next quiet moment as one group-commit round
 *    (storage_batch_run), or only when the test says so (hold_storage,
 *    harness_storage_run);
 *  - snapshots are written at once with driver_snapshot_write(), and
 *    reported done at the next quiet moment;
 *  - the state machine is a counter: a body is one byte to add and the
 *    request number (8 bytes); the reply is the total after it. It
 *    restores from snapshots, and it notes the order in which bodies were
 *    applied.
 *
 * Time is virtual: harness_run() delivers everything, then advances the
 * clock 5 ms and ticks every replica, until the time is up.
 *
 * Every write and read goes through harness_submit()/harness_read(), whose
 * answers land in a struct harness_reply; a second answer to the same one
 * fails the test at once (the driver promises exactly one).
 *
 * Invariant: the harness never calls into a driver from inside one of that
 * driver's host callbacks (the core's actions are valid only until its next
 * step): sends, storage jobs and finished snapshots are queued and handled
 * from the run loop. */
#ifndef COHORT_TEST_HARNESS_H
#define COHORT_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver/driver.h"
#include "sim/disk.h"

#define HARNESS_REPLICAS_MAX 5
#define HARNESS_REPLIES_MAX 4096
#define HARNESS_ORDER_MAX 4096
#define HARNESS_DATA_DIR "/data"
#define HARNESS_TICK_MS 5u

/* One write or read and how it ended. */
struct harness_reply {
    uint64_t client_id, request_no; /* 0 for reads */
    bool read;
    uint32_t answers; /* calls of its done function */
    enum driver_outcome outcome;
    enum reply_status status;
    uint32_t primary_hint;
    uint64_t op;    /* DONE writes */
    uint64_t value; /* DONE: the counter's total (the reply, for writes) */
    struct harness_replica *rep; /* where it was submitted */
};

struct harness;

struct harness_replica {
    struct harness *h;
    uint32_t index;
    struct driver *driver; /* NULL: down */
    struct sim_disk disk;
    bool cut;          /* the network drops its frames */
    bool hold_storage; /* jobs wait for harness_storage_run() */
    bool power_lost;   /* since its last start: a torn tail is possible */
    /* Storage: jobs queued, and the round under way (resumable). */
    struct storage_job *queue_head, *queue_tail;
    struct storage_job *round_jobs;
    struct storage_batch round;
    bool stalled;
    /* A snapshot written; its driver_snapshot_done() is due. */
    bool snapshot_due, snapshot_ok;
    uint64_t snapshot_op;
    bool snapshot_refuse; /* the host cannot start snapshots */
    uint64_t snapshots_written;
    /* The counter. */
    uint64_t total, applied_op;
    uint64_t order[HARNESS_ORDER_MAX]; /* request numbers, apply order */
    uint32_t order_count;
    uint64_t restores; /* snapshots restored (at start or from a peer) */
    /* The latest view notification, and a fatal stop if any. */
    struct cohort_view_info last_view;
    int fatal_code;
};

/* Called for every frame as it is delivered (before the receiver sees it):
 * return false to drop it. It may call into any driver. */
typedef bool (*harness_deliver_fn)(struct harness *h, void *ctx, uint32_t from,
                                   uint32_t to, const uint8_t *frame,
                                   size_t size);

struct harness_frame {
    uint32_t from, to;
    uint8_t *data;
    size_t size;
};

struct harness {
    uint32_t count;
    uint64_t now;
    struct prng prng; /* the disks' faults */
    /* What each replica starts with; tests may change these before
     * harness_start(). self, vfs and data_dir are set per replica. */
    struct driver_config config;
    struct harness_replica r[HARNESS_REPLICAS_MAX];
    harness_deliver_fn deliver;
    void *deliver_ctx;
    bool verbose; /* print driver log lines */
    /* The network: a FIFO ring. */
    struct harness_frame *frames;
    size_t frame_head, frame_count, frame_cap;
    struct harness_reply replies[HARNESS_REPLIES_MAX];
    uint32_t reply_count;
};

/* A group of count replicas (not started), the core seeded with seed. */
struct harness *harness_new(uint32_t count, uint64_t seed);
/* Crash every replica and free everything. */
void harness_free(struct harness *h);

/* Start replica i from its disk (fails the test if it cannot). */
void harness_start(struct harness *h, uint32_t i);
void harness_start_all(struct harness *h);
/* Replica i's process dies (power: the machine loses power too): its
 * storage jobs and unreported snapshot are dropped, then driver_close()
 * answers what it still holds. */
void harness_crash(struct harness *h, uint32_t i, bool power);
/* Empty replica i's disk (it must be down): a lost or wiped disk. */
void harness_wipe(struct harness *h, uint32_t i);

/* Do everything due until nothing is left, ending turns as the runtime
 * does between batches of input. */
void harness_settle(struct harness *h);
/* One unit of work (a storage round, a snapshot done, one frame); false if
 * none was due. Turns do not end. */
bool harness_step(struct harness *h);
/* Settle, then tick every 5 ms, for ms of virtual time. */
void harness_run(struct harness *h, uint64_t ms);
/* End replica i's turn (driver_turn_end). */
void harness_turn_end(struct harness *h, uint32_t i);
/* Run replica i's queued storage jobs now (as one round). Returns the
 * round's result (-COHORT_EAGAIN: stalled, jobs kept). */
int harness_storage_run(struct harness *h, uint32_t i);

/* Write: add amount to the counter, as request_no of client_id. */
struct harness_reply *harness_submit(struct harness *h, uint32_t i,
                                     uint64_t client_id, uint64_t request_no,
                                     uint8_t amount);
/* The same, with the server's memory verdict (driver_submit over_limit). */
struct harness_reply *harness_submit_limit(struct harness *h, uint32_t i,
                                           uint64_t client_id,
                                           uint64_t request_no, uint8_t amount,
                                           bool over_limit);
/* Write count ops at replica i, one at a time (clients client_base + 1,
 * ...), each acknowledged (DRIVER_DONE) within 20 ms, or fail the test. */
void harness_write_each(struct harness *h, uint32_t i, uint64_t client_base,
                        uint64_t count);
struct harness_reply *harness_read(struct harness *h, uint32_t i);
/* The first answered reply to (client_id, request_no) with this status. */
const struct harness_reply *harness_find(const struct harness *h,
                                         uint64_t client_id,
                                         uint64_t request_no,
                                         enum reply_status status);

/* The replica that is primary (and up), or -1. */
int harness_primary(const struct harness *h);
const struct replica *harness_core(const struct harness *h, uint32_t i);
/* A driver_state_fn for an export of replica ctx (a struct
 * harness_replica): its counter's 16 bytes, the applied op and the total. */
int harness_state_bytes(void *ctx,
                        int (*write)(void *wctx, const void *data, size_t size),
                        void *wctx);
/* Frames a replica sends from now on are dropped, and so are frames to it
 * (already queued ones too, when they are delivered). */
void harness_cut(struct harness *h, uint32_t i, bool cut);

#endif
