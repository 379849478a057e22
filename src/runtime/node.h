/* node — one replica process: the protocol core driven by real I/O.
 *
 * A node owns a libuv loop's worth of state: the replica core, the store
 * (src/kv) as its state machine, the peer transport, a storage thread that
 * appends to the write-ahead log with group commit (one fdatasync per batch),
 * metadata and snapshots (streamed to a snapshot thread). The RESP
 * server (src/server) sits on top and talks to the node only through this
 * header.
 *
 * Threads: everything here runs on the loop thread except the storage
 * thread, which only touches files and hands completions back through a
 * uv_async_t.
 */
#ifndef COHORT_NODE_H
#define COHORT_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cohort.h"
#include "common/err.h"
#include "core/replica.h"
#include "driver/driver.h"
#include "kv/kv.h"
#include "common/retry.h"
#include "runtime/backup.h"
#include "runtime/loghist.h"
#include "runtime/persister.h"

struct node_config {
    uint64_t cluster_id;
    uint32_t self;
    uint32_t replica_count;
    /* "host:port" per replica: where its peer transport listens, and where
     * its RESP server listens (for redirects, forwarding and status). */
    const char *peer_addr[COHORT_REPLICAS_MAX];
    const char *client_addr[COHORT_REPLICAS_MAX];
    const char *data_dir;
    const char *bind_host; /* NULL: the host of our own addresses */
    /* How peers authenticate (runtime/peer_auth.h): a cluster secret file,
     * or the three TLS files; none: peers must all be on loopback. */
    const char *cluster_secret_file;
    const char *peer_tls_cert_file;
    const char *peer_tls_key_file;
    const char *peer_tls_ca_file;
    /* The largest snapshot accepted from a peer; 0: the driver's default. */
    uint64_t snapshot_size_max;
    uint64_t wal_segment_size;
    /* Memory for the log's bodies (--log-memory); 0: 64 MiB. A snapshot is
     * due when they fill about half of it. */
    uint64_t log_memory_bytes;
    struct kv_config kv;
    /* Protocol timing and limits; replica_config_defaults() then these. */
    uint32_t heartbeat_ms;
    uint32_t suspect_timeout_ms;
    uint32_t view_change_timeout_ms;
    uint32_t snapshot_interval_ops;
    /* Epoch 0's voters: ids 0..initial_voters-1 (0: every replica). The
     * others start outside the group and join by a reconfiguration
     * (`cohort add`). Only a group's first start reads it: later the
     * membership is the metadata's. */
    uint32_t initial_voters;
    /* Spares (docs/PROTOCOL.md, "Spares: replacing a silent voter"): the
     * primary replaces a voter silent for this long by a caught-up learner
     * (0: never; `cohort server` defaults to NODE_REPLACE_AFTER_DEFAULT_MS),
     * and a spare outside the membership asks to be added as a learner. */
    uint32_t replace_after_ms;
    bool spare;
    bool quiet; /* log ERROR lines only (see runtime/logline.h) */
    /* The process exits (or re-executes itself) right after node_close():
     * leave the store's memory to the kernel instead of freeing it key by
     * key, which takes seconds at millions of keys (3 s at 1M here) and
     * delays the stop that SIGTERM asked for. */
    bool keep_store_on_close;
};

#define NODE_REPLACE_AFTER_DEFAULT_MS 10000u

struct node;

/* Load durable state from config->data_dir (creating it on first start),
 * open the transport and start the replica. On failure returns NULL with a
 * one-line message naming the file or address and the fix. */
struct node *node_open(uv_loop_t *loop, const struct node_config *config,
                       struct cohort_err *err);
/* Stop: finish the storage thread's work, close the transport. The loop must
 * run until every handle is closed; then the node frees itself. Close the
 * server (server_close) first: it may still hold pending requests. */
void node_close(struct node *n);

/* Propose a write (a kv command body, kv_command_encode()) as request
 * request_no of client client_id. done is called exactly once, on the loop
 * thread, possibly before node_submit returns. over_limit: the server's
 * maxmemory is reached (see driver_submit()). */
void node_submit(struct node *n, uint64_t client_id, uint64_t request_no,
                 const uint8_t *body, size_t body_size, bool over_limit,
                 driver_done_fn done, void *ctx);
/* node_submit() bound to the term (epoch, view) this replica leads now
 * (driver_submit_in_term()): never proposed in a later one. */
void node_submit_in_term(struct node *n, uint64_t client_id,
                         uint64_t request_no, const uint8_t *body,
                         size_t body_size, driver_done_fn done, void *ctx);
/* Forget the callback of a pending request (its connection closed). */
void node_cancel(struct node *n, void *ctx);

/* The core's configuration for c (its limits, pipeline and log bounds),
 * the core's prng seeded with seed. Pure: node_open() uses it. */
void node_replica_config(const struct node_config *c, uint64_t seed,
                         struct replica_config *rc);
/* The largest peer frame a node with config c sends: its core's largest
 * message (about five bodies of max-value-size + max-key-size: one in a
 * PREPARE, four in the uncommitted pipeline a DO-VIEW-CHANGE carries) and
 * room for a snapshot chunk. Pure. */
uint64_t node_frame_size(const struct node_config *c);
/* The largest kv.value_size_max with c's other limits whose frames fit
 * TRANSPORT_FRAME_SIZE_LIMIT. Pure. */
uint32_t node_value_size_max(const struct node_config *c);
/* The log's segment size: c->wal_segment_size if given, else the default
 * (64 MiB) or, for a larger --max-value-size, what holds one largest entry
 * (rounded up to a MiB). Pure. */
uint64_t node_wal_segment_size(const struct node_config *c);
/* Whether c's limits fit the store's format, the transport and a given
 * --wal-segment-size: 0, or -COHORT_EINVAL with a line naming the flag,
 * its limit and the fix. node_open() checks it first; `cohort server` when
 * it parses its flags. */
int node_config_check(const struct node_config *c, struct cohort_err *err);
/* Whether the files c names for peers (--cluster-secret-file, --peer-tls-*)
 * load: 0, or their error in one line. Reads them and keeps nothing:
 * `cohort server` checks them before it creates or opens the data
 * directory, so a refused start leaves nothing behind. */
int node_files_check(const struct node_config *c, struct cohort_err *err);

/* The store, for reads. Local reads may be stale on a backup. */
const struct kv *node_kv(const struct node *n);
/* Who hears of applied PUBLISH ops (kv.h); NULL: nobody. The hook runs
 * inside the node's stepping: it must not call into the node. */
void node_set_publish_hook(struct node *n, const struct kv_publish_hook *hook);
/* Whether this node is the primary of a normal view, and its log time
 * (replica_log_time(): what it would stamp a write with now, as of the
 * protocol's last step). A linearizable read that node_read() confirmed
 * judges expiry at this time (kv/expire.h). */
bool node_is_primary(const struct node *n);
/* Whether replica id (not this one) may move to peer address addr: the
 * checks transport_set_peer() makes when the move is applied. 0, or the
 * error with its one-line message. */
int node_check_peer_address(const struct node *n, uint32_t id, const char *addr,
                            struct cohort_err *err);
/* A membership change (its wedge) or a leadership transfer (its drain) is
 * under way here: replica_holding(). */
bool node_changing_members(const struct node *n);
/* Bumped whenever a replica id moved to new addresses (COHORT.ADDRESS):
 * node_status()'s addresses changed. Starts at 0. */
uint64_t node_address_version(const struct node *n);
/* The (epoch, view) this replica is in: cheap, unlike node_status(). */
void node_view(const struct node *n, uint32_t *epoch, uint64_t *view);
/* Cheap, unlike node_status(): this replica's status, view and the
 * primary of that view (which leads it once the status is normal). */
enum replica_status node_role(const struct node *n, uint64_t *view,
                              uint32_t *primary);
/* Outside the membership of the epoch it knows (removed, or a spare not
 * yet added): it serves no writes. */
bool node_outside(const struct node *n);
/* Removed by a membership change (replica_left()): outside the membership
 * of the epoch it knows after being a member of an earlier one; it serves
 * nothing until `cohort add` names it again. *epoch: the epoch it knows.
 * Cheap. */
bool node_removed(const struct node *n, uint32_t *epoch);
/* Stopped because a peer showed a history without ops it holds committed
 * (replica_diverged()): the op, or 0. Cheap. */
uint64_t node_diverged(const struct node *n);
uint64_t node_log_time(const struct node *n);
/* The group incarnation this replica's data belongs to (kv/incarnation.h),
 * 0 while not known; and learning it (the server calls this with the
 * store's, which wins over what the data directory recorded): it is
 * recorded in the data directory and announced in every later peer
 * handshake, and connections to peers of another incarnation are closed
 * (runtime/transport.h). 0 changes nothing. */
uint64_t node_incarnation(const struct node *n);
void node_set_incarnation(struct node *n, uint64_t incarnation);
/* Whether a connected peer announced an incarnation in its handshake. */
bool node_peer_announces_incarnation(const struct node *n);
/* Unix time in milliseconds (the wall clock; for display, and for what
 * clients give as Unix times). */
uint64_t node_wall_ms(void);
/* The last op in this replica's log (cheap). */
uint64_t node_op(const struct node *n);
/* The last request number of client_id this node has applied (0: none
 * remembered): replica_client_applied(). */
uint64_t node_client_applied(const struct node *n, uint64_t client_id);
/* The index a linearizable read arriving now is served at
 * (replica_read_index()). */
uint64_t node_read_index(const struct node *n);
/* Linearizable read (read index): done(DRIVER_DONE) once this node is the
 * primary, a quorum confirmed after the call that it still holds its view,
 * and it has applied every write committed before the call (a connection's
 * own earlier writes are the server's to order); then the caller reads
 * node_kv(). No log
 * op and no disk write. Otherwise NOT_PRIMARY / RETRY (driver.h). */
void node_read(struct node *n, driver_done_fn done, void *ctx);

/* The peer transport's tokens (transport.h): ours, which this replica
 * quotes to prove it is itself, and the one replica `peer` last sent us
 * (false if none yet), to check such a proof. */
#define NODE_TOKEN_SIZE 16u
void node_link_token(const struct node *n, uint8_t out[NODE_TOKEN_SIZE]);
bool node_peer_link_token(const struct node *n, uint32_t peer,
                          uint8_t out[NODE_TOKEN_SIZE]);

/* Status for INFO and `cohort status`. */
struct node_status {
    enum replica_status status;
    uint64_t view;
    uint32_t primary;
    uint32_t self;
    uint32_t replica_count;
    /* The epoch's voters and learners (membership.epoch is the epoch);
     * removed: this replica is outside it (never added, or removed); left:
     * outside after being a member (removed by a membership change). */
    struct membership membership;
    bool removed;
    bool left;
    struct driver_transfer_status transfer; /* snapshots in flight */
    uint64_t op;
    uint64_t commit;
    uint64_t applied;
    uint64_t peer_op[COHORT_REPLICAS_MAX];    /* primary only */
    bool peer_connected[COHORT_REPLICAS_MAX]; /* outbound link up */
    bool peer_suspected[COHORT_REPLICAS_MAX];
    /* driver_status(): a backup lost its primary; ms since it heard from
     * it (-1: never, or not a backup in a normal view). */
    bool primary_lost;
    int64_t primary_heard_ago_ms;
    uint64_t log_bytes;  /* bytes of log records on disk (wal_bytes_used) */
    uint64_t log_memory; /* the log's arena (--log-memory) */
    uint64_t log_memory_used; /* bytes of bodies in it */
    uint64_t log_zero_chunks; /* wal_prepare() chunks (zeros ahead) */
    uint64_t snapshot_op;
    uint64_t snapshot_time_s; /* wall clock of the last snapshot, 0: none */
    uint64_t last_sync_us;    /* duration of the last fdatasync */
    uint64_t syncs;
    uint64_t view_changes;
    uint64_t messages_invalid; /* peer messages dropped as invalid */
    uint64_t views_refused;    /* ... for a view too far ahead */
    /* Divergence (driver_status): stopped at this op (0: no), shown by
     * diverged_from; peers' requests that showed another history. */
    uint64_t diverged_op;
    uint32_t diverged_from;
    uint64_t divergences;
    /* Times the event loop could not run for over 50 ms (waiting for a CPU,
     * stopped), and the time beyond those 50 ms the protocol's clock did
     * not count (runtime/run_clock). */
    uint64_t loop_stalls;
    uint64_t loop_stalled_ms;
    const char *client_addr[COHORT_REPLICAS_MAX];
    const char *peer_addr[COHORT_REPLICAS_MAX];
    /* Disk trouble: writes of the log or metadata failing (a full or
     * failing disk; this replica refuses writes meanwhile), and snapshots
     * failing. Each: failures in the current run (0: healthy), its start
     * (since_s, wall clock) and the latest error. */
    bool disk_stalled;
    struct retry disk;
    bool snapshot_running;
    struct retry snapshots;
    /* Peers: how they authenticate ("secret", "tls" or "none"), inbound
     * connections refused at the handshake, frames that failed their MAC,
     * CRC or TLS record, messages naming another sender than their link's
     * replica, snapshot chunks nobody asked for. */
    const char *peer_auth;
    uint64_t peer_connections_refused;
    uint64_t peer_connections_evicted; /* of them, to make room */
    uint64_t peer_frames_rejected;
    uint64_t peer_messages_wrong_sender;
    uint64_t snapshot_chunks_refused;
};
void node_status(const struct node *n, struct node_status *out);

/* Metrics for the metrics endpoint (server/exporter), gathered from the
 * node, its storage thread, its core's failure detector and its transport.
 * Counting them costs nothing per op on the loop: view notifications and
 * snapshots are rare, and the storage thread counts per round. */
#define NODE_VIEW_CAUSES 10u  /* enum cohort_view_cause: 0 .. 9 */
#define NODE_VIEW_HISTORY 32u /* view notifications kept, newest last */
#define NODE_VIEW_WHY_MAX 320u

/* One view notification: the view, its primary, why this replica left its
 * previous view (the cause, and the log line's words), and when. */
struct node_view_record {
    uint64_t view;
    uint64_t epoch;
    uint32_t primary;
    enum cohort_role role; /* this replica's */
    enum cohort_view_cause cause;
    uint64_t wall_ms;
    char text[NODE_VIEW_WHY_MAX];
};

struct node_peer_metrics {
    /* The failure detector's opinion of this peer (docs/OPERATIONS.md: a
     * backup suspects the other backups it never hears from once per
     * view, so the primary's numbers about its backups, and a backup's
     * about the primary, are the ones to read). */
    uint64_t suspicions;
    uint64_t false_suspicions;
    uint32_t timeout_ms;
    /* The transport's link to it. */
    uint64_t messages_sent;
    uint64_t messages_received;
    uint64_t messages_dropped;
    uint64_t connects;
    uint64_t bytes_queued;
};

struct node_metrics {
    /* Views entered as primary or backup, by why this replica left the
     * view before. */
    uint64_t view_changes[NODE_VIEW_CAUSES];
    uint64_t view_notifications; /* every one since start */
    uint32_t view_history_count; /* records in views[], oldest first */
    struct node_view_record views[NODE_VIEW_HISTORY];
    struct loghist snapshot_us; /* forked snapshot children that worked */
    uint64_t snapshot_failures;
    struct persister_metrics storage;
    struct node_peer_metrics peers[COHORT_REPLICAS_MAX];
    uint64_t peer_connections_refused;
    uint64_t peer_connections_evicted;
    struct replica_stats core;
};
void node_metrics(const struct node *n, struct node_metrics *out);

/* Leadership transfer (COHORT.TRANSFER): driver_transfer(). */
void node_reconfig(struct node *n, const struct membership *next,
                   struct reconfig_answer *out);
void node_transfer(struct node *n, uint32_t target,
                   struct transfer_answer *out);

/* An operator's backup (runtime/backup, COHORT.BACKUP): start one at the
 * applied op (0, or a negative code with err saying why), and what the
 * latest one is doing. The pointer is valid until the next loop turn.
 * node_backup_find(): the file of the finished backup of op, the latest
 * or the one before it (kept while it is being read: backup_find()). */
int node_backup_start(struct node *n, struct cohort_err *err);
const struct backup *node_backup(const struct node *n);
bool node_backup_find(struct node *n, uint64_t op, const char **path,
                      uint64_t *size);

#endif
