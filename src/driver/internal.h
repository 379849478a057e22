/* driver internal — struct driver and the functions its files share
 * (driver.c: open, close, stepping and the core's actions; requests.c:
 * pending writes, batches, the busy queue and read groups; transfer.c:
 * snapshots taken, sent, received and installed; recover.c: the durable
 * state read back at start). Private to src/driver. */
#ifndef COHORT_DRIVER_INTERNAL_H
#define COHORT_DRIVER_INTERNAL_H

#include <stdarg.h>

#include "driver/driver.h"
#include "storage/meta.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

/* A write proposed to the core, waiting for its ACT_REPLY. */
struct pending {
    uint64_t client_id; /* 0: empty slot */
    uint64_t request_no;
    driver_done_fn done;
    void *ctx;
};

/* A request bound to the term (epoch, view) it was submitted in
 * (driver_submit_in_term): never proposed in another. */
struct term_bound {
    uint64_t client_id;
    uint64_t request_no;
    uint32_t epoch;
    uint64_t view;
};
#define TERM_BOUND_MAX 8u

/* A request the core turned away as busy, queued to be offered again. */
struct deferred {
    uint64_t client_id;
    uint64_t request_no;
    uint8_t *body;
    uint32_t body_size;
    bool over_limit;
};

struct reader_waiter {
    driver_done_fn done; /* NULL: cancelled */
    void *ctx;
};

struct waiters {
    struct reader_waiter *list;
    uint32_t count, cap;
};

/* Reads covered by one EV_READ in flight. */
struct read_group {
    uint64_t tag; /* 0: answered */
    struct waiters w;
};

#define READ_GROUPS_MAX 64u

/* The pace of snapshot attempts after a failure. */
#define SNAPSHOT_RETRY_MIN_MS 1000u
#define SNAPSHOT_RETRY_MAX_MS 8000u

struct snapshot_send {
    bool active;
    struct snapshot_reader reader;
    uint64_t offset;
};

struct driver {
    struct driver_config c;
    struct driver_host host;
    struct driver_sm sm;
    struct vfs *vfs;
    char wal_dir[VFS_PATH_MAX];
    char meta_path[VFS_PATH_MAX];
    char snap_dir[VFS_PATH_MAX];
    struct wal wal;
    struct meta meta;
    bool wal_open, meta_open;
    struct replica *r;
    bool closing;
    bool storage_stalled;
    bool cut_torn_tail; /* recovery cut a torn last log record */
    /* Bytes of log bodies recovered, when they made recovery raise the
     * core's log bounds for this run (recover.c fit_log()); else 0. */
    uint64_t log_bytes_recovered;
    bool snapshots_lost; /* recovery found no snapshot that verifies */
    /* The checkpoints file's notes, read at start for replica_init() and
     * freed after it (drv_recover_release()). */
    uint64_t *checkpoint_op;
    uint64_t *checkpoint_checksum;
    uint8_t *export_table; /* driver_export()'s client table, or NULL */

    /* Requests gathered during one turn, proposed together. */
    struct client_request *batch;
    uint8_t *batch_bytes;
    uint32_t batch_count, batch_cap;
    size_t batch_used, batch_bytes_cap;
    uint32_t batch_scan; /* where a BUSY answer is looked up */

    struct pending *pending; /* open addressing, power-of-two capacity */
    uint32_t pending_cap, pending_count;

    /* Requests the core turned away because its pipeline or log was full
     * or it held proposals (REPLY_BUSY), oldest first, offered again when
     * the commit point or the log's start moves, a hold ends, or this
     * replica leads again. While any wait, new ones queue behind them, so a
     * connection's requests keep their order. During a view change that
     * took the primary role away they wait too (never proposed), until the
     * view's outcome decides, or parked_since_ms + the bound passes. */
    struct deferred *deferred;
    uint32_t deferred_count, deferred_cap;
    uint64_t deferred_bytes;
    uint64_t deferred_commit, deferred_base;
    bool deferred_kick; /* this replica became the primary again, or a
                           hold (drain, wedge) ended: the core changes it
                           only in a step, so drv_step() sees every end */
    bool parked;        /* the queue waits while this replica is not primary */
    uint64_t parked_since_ms;
    bool flushing; /* the batch is being handed to the core */
    /* Term-bound requests still waiting for an answer (answered ones are
     * dropped lazily, at the next batch). */
    struct term_bound bound[TERM_BOUND_MAX];
    uint32_t bound_count;

    /* Linearizable reads (read index, EV_READ). Reads that arrive during a
     * turn form a group; at the end of the turn, after the turn's writes
     * are proposed, the group goes to the core as one EV_READ, and its
     * ACT_READ says when the state machine may answer them all. Up to
     * READ_GROUPS_MAX groups are in flight, oldest first. */
    uint64_t read_tag;         /* the last EV_READ's tag */
    struct waiters waiting;    /* the open group: not yet sent */
    struct read_group *groups; /* ring of READ_GROUPS_MAX */
    uint32_t group_head, group_count;

    /* Snapshots. */
    bool snapshot_running;
    uint64_t snapshot_running_op;
    /* A failed snapshot not yet reported to the core: it would ask again at
     * once, so it hears of the failure when snapshot_retry is due. */
    bool snapshot_failure_held;
    struct retry snapshot_retry;
    /* Receiving a snapshot failed here (a full disk): chunks of a new
     * transfer are dropped, and their sender told to stop, until it is due
     * again (transfer.c, receive_held()). */
    struct retry receive_retry;
    uint64_t snapshot_op;
    uint64_t snapshot_time_ms;
    struct snapshot_send sends[COHORT_REPLICAS_MAX];
    struct snapshot_receiver receiver;
    bool receiving;
    uint32_t receiving_from; /* the replica whose snapshot it is */
    /* The last RESUME this receiver sent (op, offset): one per position,
     * so that a run of out-of-order chunks asks once. */
    uint64_t resume_asked_op, resume_asked_offset;
    uint64_t resume_sent_ms;      /* when the last RESUME went */
    uint64_t receive_progress_ms; /* the transfer began or moved on */
    uint64_t progress_told_ms;    /* last EV_SNAPSHOT_PROGRESS */
    /* Per sender, the snapshot op it was last told to stop sending. */
    uint64_t stop_told_op[COHORT_REPLICAS_MAX];
    uint64_t snapshot_stops; /* stop requests sent */
    uint8_t *chunk;          /* chunk_size bytes, for sending */
    /* Chunks dropped: unasked for (the core awaits no snapshot from their
     * sender), over snapshot_size_max, or of no transfer under way. */
    uint64_t chunks_refused;

    /* Peer messages whose sender field is not the replica whose link
     * delivered them: dropped before the core sees them. */
    uint64_t wrong_sender;
    bool wrong_sender_logged[COHORT_REPLICAS_MAX];
    /* Divergence reports (driver.c, report_divergence()): when each was
     * last logged, and the peer report's op then. */
    uint64_t diverged_logged_ms;
    uint64_t peer_diverged_logged_ms;
    uint64_t peer_diverged_logged_op;

    /* BUG_STORAGE_ACK_EARLY: persists to report before they are durable,
     * after the step that asked for them. */
    struct wal_position early[64];
    uint32_t early_count;

    uint8_t *frame; /* scratch for prefixing frames */
    size_t frame_cap;
    uint64_t view_changes;
    /* The core's ACT_TRANSFER of the current driver_transfer() step. */
    struct transfer_answer transfer_answer;
    bool transfer_answered;
    /* The core's ACT_RECONFIG of the current driver_reconfig() step. */
    struct reconfig_answer reconfig_answer;
    bool reconfig_answered;
};

/* driver.c */
void drv_log(const struct driver *d, enum driver_log_level level,
             const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void drv_step(struct driver *d, struct event *ev);
void drv_send_frame(struct driver *d, uint32_t to, uint8_t kind,
                    const uint8_t *head, size_t head_size, const uint8_t *data,
                    size_t size);
void drv_storage_push(struct driver *d, struct storage_job *job);

/* requests.c */
void drv_requests_free(struct driver *d);
void drv_flush_batch(struct driver *d);
void drv_became_primary(struct driver *d);
void drv_parked_check(struct driver *d);
void drv_resubmit_deferred(struct driver *d);
void drv_start_reads(struct driver *d);
void drv_on_reply(struct driver *d, const struct action *a);
void drv_on_read_answer(struct driver *d, const struct action *a);
/* The view changed and this replica is not the primary: every proposed
 * request has an unknown outcome, reads go elsewhere. */
void drv_lost_primary(struct driver *d);
void drv_fail_all(struct driver *d);

/* transfer.c */
void drv_take_snapshot(struct driver *d, const struct action *a);
/* From driver_tick(): report a held snapshot failure once it is due. */
void drv_snapshot_retry_due(struct driver *d);
void drv_start_snapshot_send(struct driver *d, uint32_t to);
void drv_pump_snapshot_sends(struct driver *d);
/* On a tick: a transfer under way that has not moved for a view-change
 * timeout asks its sender again to resume where it stands. */
void drv_snapshot_receive_stalled(struct driver *d);
void drv_on_snapshot_chunk(struct driver *d, uint32_t from, const uint8_t *data,
                           size_t size);
void drv_on_snapshot_resume(struct driver *d, uint32_t from,
                            const uint8_t *data, size_t size);
void drv_transfer_close(struct driver *d);
/* Load the store and the client table from an open snapshot (the table
 * into a new malloc'd buffer, *table). */
int drv_restore(struct driver *d, struct snapshot_reader *rd, uint8_t **table,
                struct cohort_err *err);

/* recover.c */
/* Open the metadata, the newest snapshot (restored into the state machine)
 * and the log; fill *durable for replica_init(). *table and the recovered
 * entries stay valid until drv_recover_release(). */
int drv_recover(struct driver *d, struct replica_durable *durable,
                uint8_t **table, struct cohort_err *err);
void drv_recover_release(struct driver *d, uint8_t *table);

#endif
