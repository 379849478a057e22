/* driver — one replica: the protocol core (src/core) with its state machine
 * and its storage (src/storage), driven on behalf of a host. The host is
 * whatever owns the I/O and the passage of time: the runtime's libuv loop
 * (src/runtime/node.c), the simulator (src/sim/cluster.c) and the unit-test
 * harness all run this same driver, so the code that carries out the core's
 * actions (batching client requests, the queue of requests the core turned
 * away as busy, read groups for read index, snapshot take, transfer and
 * install, log recovery at start) is the code every test exercises.
 *
 * The host provides (struct driver_host): a monotonic clock, frames to peers
 * (send, and the state of its link for pacing), a storage executor that runs
 * storage jobs (storage/batch.h: group commit, completions in order, through
 * driver_storage_done()), and a background snapshot writer (the runtime
 * forks; the simulator copies the state and writes it later), which ends in
 * driver_snapshot_done(). Files are reached only through the struct vfs the
 * host gives (vfs_posix, or the simulator's faulty in-memory disk).
 *
 * The host calls in: driver_turn_end() at the end of each batch of input
 * (a libuv loop turn; the simulator after the events of one instant),
 * driver_tick() at least every few milliseconds, driver_frame() for every
 * frame a peer sent (`from` being the replica its connection proved to be:
 * a protocol message that names another sender is dropped and counted, and
 * snapshot chunks are taken only from the replica the core asked),
 * driver_peer_down() when a peer's port refused us, and the completions.
 *
 * Threads: none inside. Every call, and every callback, on the host's one
 * thread (the storage executor may run elsewhere; its completions come back
 * on this thread).
 *
 * Invariants: (1) every driver_submit() and driver_read() ends in exactly
 * one call of its done function (possibly before the call returns, at the
 * latest in driver_close()), unless driver_cancel() forgot it first; (2) a
 * connection's requests reach the core in the order submitted, including
 * those queued after a busy answer; (3) a read is handed to the core only
 * after the writes submitted in the same turn before it. */
#ifndef COHORT_DRIVER_H
#define COHORT_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h"
#include "common/err.h"
#include "common/retry.h"
#include "core/replica.h"
#include "storage/batch.h"
#include "storage/snapshot.h"
#include "storage/vfs.h"

/* The default cap on a snapshot received from a peer: 64 GiB, far above
 * what a store held in memory writes, far below what fills a disk by
 * surprise. */
#define DRIVER_SNAPSHOT_SIZE_MAX (64ull << 30)

/* Frame kinds between drivers (the first byte of every frame). */
#define DRIVER_FRAME_PROTOCOL 1 /* a core message */
#define DRIVER_FRAME_SNAPSHOT 2 /* a chunk of a snapshot file */
/* Receiver to sender: "I hold the first N bytes of your snapshot at op X;
 * go on from there" (a transfer resumed after a dropped connection). N of
 * UINT64_MAX: "stop sending it", from a receiver that takes its snapshot
 * from another replica (a sender before that ignores it: past the file). */
#define DRIVER_FRAME_SNAPSHOT_RESUME 3
#define DRIVER_SNAPSHOT_STOP UINT64_MAX

/* How a write or a linearizable read ends. */
enum driver_outcome {
    DRIVER_DONE = 0,        /* applied (or safe to read): data is the reply */
    DRIVER_NOT_PRIMARY = 1, /* certainly not applied; primary_hint names it */
    DRIVER_RETRY = 2,       /* certainly not applied: view change, recovery,
                               busy; try again soon */
    DRIVER_UNKNOWN = 3,     /* proposed, outcome unknown (view changed) */
    DRIVER_REJECTED = 4,    /* certainly not applied; status says why
                               (REPLY_TOO_BIG, REPLY_EXPIRED,
                               REPLY_APPLIED_REPLY_LOST, REPLY_STALE,
                               REPLY_OVER_LIMIT, REPLY_STORAGE) */
    DRIVER_SUPERSEDED = 5,  /* the same (client, request) was submitted again
                               while this one was in flight: the later
                               caller gets the answer (applied at most
                               once); status REPLY_SUPERSEDED */
};

/* The core's statuses end at REPLY_OVER_LIMIT; the driver adds two of its
 * own: for DRIVER_REJECTED, this replica cannot write to its disk; for
 * DRIVER_SUPERSEDED, a later copy of the request took this one's place. */
#define REPLY_STORAGE ((enum reply_status)100)
#define REPLY_SUPERSEDED ((enum reply_status)101)

struct driver_reply {
    enum driver_outcome outcome;
    enum reply_status status; /* the core's status behind the outcome */
    uint32_t primary_hint;
    uint64_t op;         /* DONE writes: the op that applied it */
    const uint8_t *data; /* DONE writes: the state machine's reply */
    size_t size;
};

typedef void (*driver_done_fn)(void *ctx, const struct driver_reply *reply);

/* A snapshot to write in the background (ACT_SNAPSHOT_TAKE): the state
 * machine as it is when the host is asked, with this client table. The
 * pointers are valid only during the host's snapshot() call. */
struct driver_snapshot {
    struct snapshot_info info;
    const uint8_t *client_table; /* info.client_table_size bytes */
};

/* Streams a state machine's bytes into a snapshot file: returns 0 or a
 * negative code, having called write(wctx, data, size) any number of times.
 */
typedef int (*driver_state_fn)(void *ctx,
                               int (*write)(void *wctx, const void *data,
                                            size_t size),
                               void *wctx);

enum driver_log_level {
    DRIVER_LOG_INFO = 0,
    DRIVER_LOG_WARN = 1,
    DRIVER_LOG_ERROR = 2,
    DRIVER_LOG_DEBUG = 3, /* for traces (the simulator's); a server drops it */
};

struct driver_host {
    void *ctx;
    uint64_t (*now_ms)(void *ctx); /* monotonic */
    /* Send one frame to replica `to` (may drop it: the protocol tolerates
     * loss; the bytes are valid only during the call). */
    void (*send)(void *ctx, uint32_t to, const uint8_t *frame, size_t size);
    /* The outbound link to `to`: up or not, and bytes queued on it. */
    void (*link)(void *ctx, uint32_t to, bool *up, uint64_t *bytes_queued);
    /* Run a storage job (takes ownership). Jobs complete in the order
     * queued, each through driver_storage_done(). */
    void (*storage)(void *ctx, struct storage_job *job);
    /* Start writing a snapshot of the state machine as it is now in the
     * background, with driver_snapshot_write(); then driver_snapshot_done().
     * Returns false, with a one-line reason in why (capacity why_size), if
     * none can start: a failed attempt, retried after a backoff. */
    bool (*snapshot)(void *ctx, const struct driver_snapshot *snap, char *why,
                     size_t why_size);
    /* A view notification (optional). */
    void (*view)(void *ctx, const struct cohort_view_info *view);
    /* One log line (optional). */
    void (*log)(void *ctx, enum driver_log_level level, const char *line);
    /* This replica cannot go on (its state machine could not be restored
     * from a verified snapshot: code is -COHORT_EIO when reading it failed,
     * else a bug): stop it, with this one-line reason. The
     * driver must not be called again except driver_close(). */
    void (*fatal)(void *ctx, int code, const char *why);
    /* Wall-clock milliseconds, for status reports only (optional). */
    uint64_t (*wall_ms)(void *ctx);
};

/* The state machine the driver replicates: apply (struct cohort_sm) and
 * restore from a snapshot stream. (Writing a snapshot is the host's: it
 * streams the state in the background into driver_snapshot_write().) */
struct driver_sm {
    struct cohort_sm sm;
    /* Replace the state by a snapshot stream, read through read() (0 with
     * *got bytes, fewer than size only at the end, or a negative code).
     * Returns 0, or a negative code with err naming the fault; the state is
     * then unusable. */
    int (*restore)(void *ctx,
                   int (*read)(void *rctx, void *data, size_t size,
                               size_t *got),
                   void *rctx, struct cohort_err *err);
    void *ctx;
};

struct driver_config {
    uint32_t self;
    uint32_t replica_count;
    uint64_t cluster_id;
    const char *data_dir;
    struct vfs *vfs;
    /* Whether a crash may have torn the last log record (the machine may
     * have restarted since the log was last written; wal_config). */
    bool torn_writes_possible;
    uint64_t wal_segment_size; /* 0: the default */
    /* The core's configuration, filled by the host from
     * replica_config_defaults(); the driver sets sm. */
    struct replica_config replica;
    /* Snapshot transfer: bytes per chunk frame and bytes in flight. */
    uint32_t chunk_size;
    uint64_t send_window;
    /* The largest snapshot file accepted from a peer (the size its first
     * chunk announces); 0: the default, DRIVER_SNAPSHOT_SIZE_MAX. */
    uint64_t snapshot_size_max;
    /* Bytes of request bodies the busy queue may hold. */
    uint64_t deferred_bytes_max;
};

void driver_config_defaults(struct driver_config *config);

struct driver;

/* Recover the replica from config->data_dir (created on first start):
 * metadata, the newest snapshot (restored into sm), the log; then start the
 * core. On failure returns NULL with err naming the file and the fix. The
 * host's callbacks may be called from the first driver_tick() on. */
struct driver *driver_open(const struct driver_config *config,
                           const struct driver_host *host,
                           const struct driver_sm *sm, struct cohort_err *err);
/* Answer every pending request (DRIVER_UNKNOWN) and read (DRIVER_RETRY),
 * close files and free everything. Storage jobs still with the host are the
 * host's to finish or drop before this (the wal and meta close here). */
void driver_close(struct driver *d);

/* Propose a write (a state machine command body) as request request_no of
 * client client_id. done is called exactly once. over_limit: the host's
 * resource limit is reached (the server's maxmemory); the core then answers
 * a retry of an applied or in-flight request as usual and refuses anything
 * new (DRIVER_REJECTED, REPLY_OVER_LIMIT) before proposing it. */
void driver_submit(struct driver *d, uint64_t client_id, uint64_t request_no,
                   const uint8_t *body, size_t body_size, bool over_limit,
                   driver_done_fn done, void *ctx);
/* driver_submit(), bound to the term (epoch, view) this replica leads now:
 * a request still waiting in the driver (busy, or parked through a view
 * change) when the term ends is never proposed in the next one, even if
 * this replica leads it, but answered DRIVER_RETRY (REPLY_VIEW_CHANGE).
 * For a primary's own housekeeping ops whose meaning depends on the term
 * (the session sweeper's EXPIRE, which must follow that term's EXTEND).
 * At most TERM_BOUND_MAX (8) such requests wait at a time; past that one
 * is answered DRIVER_RETRY (REPLY_BUSY) at once. */
void driver_submit_in_term(struct driver *d, uint64_t client_id,
                           uint64_t request_no, const uint8_t *body,
                           size_t body_size, driver_done_fn done, void *ctx);
/* Linearizable read (read index): done(DRIVER_DONE) once this replica is
 * the primary, a quorum confirmed after the call that it still holds its
 * view, and it has applied every write committed before the call (writes
 * still in flight may be ordered after the read: a caller that must see its
 * own writes submits the read once they are answered); the caller then
 * reads its state machine. No log op and no disk write. Otherwise
 * NOT_PRIMARY / RETRY. */
void driver_read(struct driver *d, driver_done_fn done, void *ctx);
/* Forget the callbacks of pending writes and reads with this ctx. */
void driver_cancel(struct driver *d, void *ctx);

/* Leadership transfer (docs/PROTOCOL.md): ask this replica, if it is the
 * primary, to hand the role to replica target. Answers at once in out:
 * TRANSFER_STARTED (the primary drains, then resigns to target; the view
 * change shows in driver_status() and the host's view callback) or why
 * not. */
void driver_transfer(struct driver *d, uint32_t target,
                     struct transfer_answer *out);

/* Membership change (docs/PROTOCOL.md, "Epochs"): ask this replica, if it
 * is the primary, to propose the next epoch's voters and learners. Answers
 * at once: RECONFIG_PROPOSED (the epoch changes once the entry commits;
 * driver_status() and the view callback show it) or why not. */
void driver_reconfig(struct driver *d, const struct membership *next,
                     struct reconfig_answer *out);

/* Inputs from the host. */
void driver_turn_end(struct driver *d);
void driver_tick(struct driver *d);
void driver_frame(struct driver *d, uint32_t from, const uint8_t *data,
                  size_t size);
void driver_peer_down(struct driver *d, uint32_t peer);
/* A storage job finished (the driver frees it). */
void driver_storage_done(struct driver *d, struct storage_job *job);
/* The storage executor is stalled (a full or failing disk: new writes are
 * refused) or not; why is a one-line message (may be NULL when not). */
void driver_storage_stalled(struct driver *d, bool stalled, const char *why);
/* The background snapshot at op finished: ok, or failed (why: one line,
 * may be NULL). A failure is reported to the core, which asks for a new
 * snapshot at once, only after a backoff (1 s doubling to 8 s), and a run
 * of failures is logged once when it starts and once when it ends. */
void driver_snapshot_done(struct driver *d, uint64_t op, bool ok,
                          const char *why);

/* Write a snapshot file for snap into the driver's snapshot directory,
 * streaming the state from state(state_ctx, ...). Safe in a forked child
 * (it touches only the files and the state it streams). */
int driver_snapshot_write(struct vfs *vfs, const char *data_dir,
                          const struct driver_snapshot *snap,
                          driver_state_fn state, void *state_ctx,
                          struct cohort_err *err);

/* The same into the snapshot directory dir (created if needed), for a
 * snapshot kept apart from the replica's own: a backup. */
int driver_snapshot_write_dir(struct vfs *vfs, const char *dir,
                              const struct driver_snapshot *snap,
                              driver_state_fn state, void *state_ctx,
                              struct cohort_err *err);

/* A snapshot of the state machine as it is now, at the applied op, taken
 * outside the core's schedule (an operator's backup): fills snap, whose
 * client table points into the driver and stays valid until the next call
 * into the driver. The host writes the state machine's bytes in the same
 * turn (fork) with driver_snapshot_write_dir(). The core is not told: its
 * own snapshots and compaction go on as before. Returns 0, -COHORT_EAGAIN
 * when nothing was applied yet, or -COHORT_ENOMEM. */
int driver_export(struct driver *d, struct driver_snapshot *snap);

/* Milliseconds until the driver needs driver_tick() (0: at once). */
uint64_t driver_next_tick_ms(const struct driver *d);

/* State transfer under way: a snapshot being received (from whom, its op,
 * bytes written of its size), and per peer one being sent (offset of size;
 * size 0: none). */
struct driver_transfer_status {
    bool receiving;
    uint32_t receiving_from;
    uint64_t receiving_op, received, receiving_size;
    uint64_t sending_offset[COHORT_REPLICAS_MAX];
    uint64_t sending_size[COHORT_REPLICAS_MAX];
    uint64_t stops_sent; /* a second sender told to stop (one sender) */
};

struct driver_status {
    enum replica_status status;
    uint64_t view;
    uint32_t primary;
    uint32_t self;
    uint32_t replica_count;
    uint64_t op;
    uint64_t commit;
    uint64_t applied;
    uint64_t peer_op[COHORT_REPLICAS_MAX];    /* primary only */
    bool peer_connected[COHORT_REPLICAS_MAX]; /* outbound link up */
    bool peer_suspected[COHORT_REPLICAS_MAX];
    uint64_t log_bytes; /* 0 here: the wal belongs to the storage thread,
                           so the host reports wal_bytes_used() from it */
    uint64_t snapshot_op;
    uint64_t snapshot_time_ms; /* wall clock of the last snapshot, 0: none */
    uint64_t view_changes;
    /* Peer messages the core dropped (replica_stats): invalid ones, and
     * ones for a view too far ahead. */
    uint64_t messages_invalid;
    uint64_t views_refused;
    /* Divergence (core/replica.h, replica_diverged()): this replica
     * stopped at this op (0: no), shown by replica diverged_from; and
     * peers' requests that showed another history of committed ops. */
    uint64_t diverged_op;
    uint32_t diverged_from;
    uint64_t divergences;
    bool storage_stalled;
    bool snapshot_running;
    struct retry snapshots; /* failing snapshots (failures 0: none) */
    /* Peer input dropped: messages naming another sender than their link's
     * replica, snapshot chunks not asked for (or over the size cap). */
    uint64_t messages_wrong_sender;
    uint64_t snapshot_chunks_refused;
    /* The epoch's membership as this replica knows it (its epoch field is
     * the epoch), whether this replica is outside it, and whether it left
     * it (removed after being a member: replica_left()). */
    struct membership membership;
    bool removed;
    bool left;
    struct driver_transfer_status transfer;
    /* A replica following a primary in a normal view: whether it lost that
     * primary (suspects it, or heard nothing from it for longer than the
     * detector's timeout, which no tick judged yet), and the milliseconds
     * since it last heard from it (-1: never since it started). On a lone
     * backup the core stays in its view (a view change needs a quorum of
     * votes), so this is what shows that it follows nobody. false and -1
     * on a primary or outside a normal view. */
    bool primary_lost;
    int64_t primary_heard_ago_ms;
};
void driver_status(const struct driver *d, struct driver_status *out);

/* Whether recovery at driver_open() cut a torn last log record (it stays
 * on disk until the log moves past it). */
bool driver_cut_torn_tail(const struct driver *d);

/* Fresh and empty: replica_fresh() without even a snapshot (a directory
 * `cohort restore` filled is not empty); and replica_distrust_fresh()
 * (core/replica.h). */
bool driver_fresh(const struct driver *d);
void driver_distrust_fresh(struct driver *d);

/* The core, for the simulator's checks and INFO. */
const struct replica *driver_replica(const struct driver *d);
/* The wal, for the host's storage executor (and tests). */
struct wal *driver_wal(struct driver *d);
struct meta *driver_meta(struct driver *d);

#endif
