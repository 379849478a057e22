/* replica — the protocol core: one replica of a group, as a pure state
 * machine driven by events and answering with actions (Viewstamped
 * Replication Revisited, Liskov & Cowling 2012, with durable logs).
 *
 * No sockets, files, clocks, randomness or threads: time arrives in
 * event->now_ms, randomness comes from a prng seeded by config.seed, and every
 * effect on the world is an action for the driver (the runtime or the
 * simulator) to carry out. The same events in the same order give the same
 * actions, so a simulator run is reproduced by its seed.
 *
 * Statuses: RECOVERING -> NORMAL <-> VIEW_CHANGE. Every replica starts
 * RECOVERING (even a fresh one) and learns the current view from a majority
 * before it votes or acknowledges anything.
 *
 * The driver's contract:
 *  - ACT_PERSIST: make the on-disk log equal to the log up to op_first - 1
 *    followed by entries op_first..op_last (replica_entry(); copy them now).
 *    op_last == op_first - 1 means "truncate after op_last" with nothing to
 *    write. When op_first - 1 is replica_log_base() (the log starts right
 *    after the durable snapshot), the on-disk log restarts at op_first:
 *    whatever it held before may be dropped (it is in the snapshot, or
 *    stale). Persists complete in the order given, one EV_PERSISTED each,
 *    echoing persist.op_last and persist.checksum.
 *  - ACT_PERSIST_META: write the metadata crash-atomically; then deliver
 *    EV_META_PERSISTED with its seq. Metadata writes complete in order.
 *  - ACT_SEND: deliver the bytes to replica `to` (or drop them: the protocol
 *    tolerates loss). Bytes are valid until the next replica_step().
 *  - ACT_REPLY: answer the client.
 *  - ACT_SNAPSHOT_TAKE: snapshot the state machine as it is now (applied up
 *    to op) together with the client table bytes in the action; when durable
 *    deliver EV_SNAPSHOT_TAKEN.
 *  - ACT_LOG_COMPACT: entries up to op may be dropped from disk.
 *  - ACT_SNAPSHOT_SEND: send the latest durable snapshot to replica `to`;
 *    the receiving driver installs it into its state machine and disk only if
 *    its op is above replica_applied() of the receiver (otherwise it drops
 *    it), then delivers EV_SNAPSHOT_INSTALLED to its replica.
 *  - ACT_VIEW: report a view change to the application, with why this
 *    replica left its previous view (struct cohort_view_why: who suspected
 *    whom after how long, a quorum's votes, a timed-out view change, a
 *    recovery, or a view learned from its primary).
 *  - ACT_READ: the answer to an EV_READ. REPLY_OK: the state machine as it
 *    is after this step (or any later state) answers the read
 *    linearizably; answer it from the local state machine now. Any other
 *    status: not served here, retry (REPLY_NOT_PRIMARY: at primary_hint).
 *    Reads are answered in the order their EV_READs arrived.
 *  - ACT_TRANSFER: the answer to an EV_TRANSFER, in the same step. A
 *    started transfer ends later without another action: once drained the
 *    primary resigns on the next EV_TICK (replica_next_tick_ms() answers 0
 *    then; the driver hands the core its batch before each tick) and
 *    reports ACT_VIEW for the new view, or goes on as primary if the
 *    target did not catch up within a view-change timeout.
 */
#ifndef COHORT_REPLICA_H
#define COHORT_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h"
#include "common/entry.h"
#include "common/membership.h"
#include "common/replica_meta.h"
#include "core/checkpoints.h"

enum replica_status {
    STATUS_RECOVERING = 1,
    STATUS_NORMAL = 2,
    STATUS_VIEW_CHANGE = 3,
};

struct replica_config {
    /* The universe of replica ids, 0..replica_count-1 (the --peers list):
     * 1..COHORT_REPLICAS_MAX. Epoch 0's voters are all of them in order;
     * who votes and leads later is the epoch's membership. */
    uint32_t replica_count;
    uint32_t self;
    /* Epoch 0's voters: ids 0..initial_voters-1 (0: all replica_count).
     * The others wait outside until an epoch adds them. */
    uint32_t initial_voters;
    uint64_t seed;
    uint32_t heartbeat_ms;           /* idle COMMIT interval; default 20 */
    uint32_t suspect_timeout_ms;     /* detector base timeout; default 150 */
    uint32_t view_change_timeout_ms; /* before voting the next view; 300 */
    uint32_t recovery_retry_ms;      /* RECOVERY resend interval; default 100 */
    uint32_t pipeline_ops_max;       /* op - commit bound at the primary */
    uint64_t pipeline_bytes_max;     /* uncommitted body bytes bound */
    uint32_t batch_ops_max;          /* entries per PREPARE message */
    uint32_t log_ops_max;            /* entries held in memory */
    uint64_t log_bytes_max;          /* body bytes held in memory */
    uint32_t body_size_max;          /* largest client request body */
    uint32_t reply_size_max;         /* largest state machine reply */
    uint32_t reply_keep_max;         /* largest reply the client table keeps */
    uint32_t client_table_max;       /* clients remembered */
    uint64_t client_expiry_ms;      /* idle client forgotten after (log time) */
    uint32_t snapshot_interval_ops; /* take a snapshot every N applied ops */
    /* A snapshot sent to a peer pins the log back to the snapshot's op
     * (transfer.c) until the peer has caught up from the log, or has not
     * asked for state for this long (a dead or stuck peer). Bounded by
     * the log's room whatever this is: see docs/PROTOCOL.md. */
    uint32_t transfer_pin_ms;
    uint32_t message_size_max; /* largest peer message */
    /* Spares (epoch.c, docs/PROTOCOL.md "Spares"). A primary that has had
     * no PREPARE-OK from a voter, and suspects it, for longer than this
     * replaces it by a caught-up learner in a new epoch, the voter becoming
     * a learner (a spare). 0: never. */
    uint32_t replace_after_ms;
    /* Started as a spare: while outside the membership it asks the primary
     * (a flag on its RECOVERY) to be added as a learner. */
    bool spare;
    const struct cohort_sm *sm; /* borrowed; outlives the replica */
    /* Optional tracing: one line per protocol event, for --trace. */
    void (*trace)(void *ctx, const char *line);
    void *trace_ctx;
    /* Deliberate bugs for tests/sim/inject_bugs.sh; all zero in real use. */
    uint32_t bugs;
};

/* The bugs a build can inject (config.bugs bits) to show the simulator
 * catches them. Only the bug-injection script sets these. */
enum replica_bug {
    BUG_COMMIT_WITH_F = 1,          /* commit with f durable copies */
    BUG_ADOPT_ANY_LOG = 2,          /* new primary takes the first DVC log */
    BUG_ACK_BEFORE_DURABLE = 4,     /* PREPARE-OK before the write is durable */
    BUG_APPLY_RETRY_TWICE = 8,      /* client table bypassed at apply */
    BUG_VOTE_BEFORE_RECOVERED = 16, /* restarted replica votes at once */
    BUG_READ_WITHOUT_QUORUM = 32,   /* serve reads without the PING round */
    BUG_READ_WITHOUT_INDEX = 64,    /* serve reads before applying the index */
    /* Bugs of the driver and storage (src/driver, src/storage), which read
     * the same bits: */
    BUG_STORAGE_ACK_EARLY = 128,    /* report a persist before fdatasync */
    BUG_STORAGE_TRUST_RECORD = 256, /* recovery keeps a record that fails
                                       its checksum (the wal, and the
                                       core's re-check of what it is
                                       handed at start) */
    BUG_STORAGE_LOG_RESTART = 512,  /* after a snapshot is installed the
                                        log on disk restarts one op early */
    /* Bugs of the simulator's host (sim/host.c), standing for a store
     * whose apply reads a clock and a server that splits a transaction: */
    BUG_KV_LOCAL_CLOCK = 1024, /* apply judges expiry by the replica's own
                                  clock, not the op's log timestamp */
    BUG_KV_SPLIT_EXEC = 2048,  /* a transaction's writes proposed as
                                  separate ops */
    /* ... and a server whose backup serves a read without applying the
     * primary's read index first (server/backup_read.c): */
    BUG_BACKUP_READ_NO_INDEX = 1u << 20,
    /* Epochs (core/epoch.c): */
    BUG_EPOCH_BEFORE_COMMIT = 4096, /* move to the next epoch as soon as
                                       the RECONFIG entry is in the log */
    BUG_COUNT_REMOVED = 8192,       /* removed voters stay on as learners and
                                       their acks count toward commits */
    BUG_COUNT_LEARNER = 16384,      /* learners' acks count toward commits */
    /* Spares (core/epoch.c): a replacement takes any learner, caught up or
     * not, puts it first (it leads the new epoch's first view), and that
     * replica leads from its own log instead of fetching the log through
     * the RECONFIG entry first. */
    BUG_REPLACE_UNCAUGHT = 1u << 21,
    /* State transfer (core/transfer.c): compaction after a snapshot
     * ignores the pins of snapshots being sent, so a peer that installs
     * one may find the log after it compacted away (another snapshot,
     * without end under steady writes). */
    BUG_PIN_OFF = 1u << 22,
    /* Bugs of the simulator's coordination workload (sim/sweep.c,
     * sim/coord.c), standing for the server's session sweeper and watch
     * resume: */
    BUG_SESSION_NO_EXTEND = 1 << 16, /* a new primary expires sessions
                                        without extending them first */
    BUG_WATCH_RESUME_OFF = 1 << 17,  /* a watch resumes FROM the revision
                                        before the one asked */
};

/* Fill config with defaults for a group of replica_count, self, seed. */
void replica_config_defaults(struct replica_config *config,
                             uint32_t replica_count, uint32_t self,
                             uint64_t seed);

/* What survived on disk, handed to replica_init() at start. Everything is
 * borrowed for the duration of the call (the replica copies what it keeps). */
struct replica_durable {
    bool meta_present;         /* false: nothing was ever stored (fresh) */
    uint64_t view;             /* 0..VIEW_MAX */
    uint64_t last_normal_view; /* <= view */
    uint32_t epoch;
    uint32_t meta_flags; /* META_FLAG_* from the metadata */
    /* The epoch's membership, and the RECONFIG entry that started it, as
     * the metadata holds them (struct replica_meta); 0 in epoch 0. */
    uint64_t membership;
    uint64_t epoch_op;
    uint64_t epoch_checksum;
    /* The snapshot the state machine was restored from (op 0: none). */
    uint64_t snapshot_op;
    uint64_t snapshot_checksum;     /* checksum of the entry at snapshot_op */
    uint64_t snapshot_timestamp_ms; /* log time at snapshot_op */
    const uint8_t *client_table;    /* client table bytes from the snapshot */
    size_t client_table_size;
    /* Verified log entries after snapshot_op, in op order, chained. */
    const struct entry *entries;
    uint64_t entry_count;
    /* A record failed its checksum: entries from this op on are lost (the
     * log above is cut before it). 0 if the log was undamaged. */
    uint64_t damaged_op;
    /* The highest op the stored log says this replica knew committed (the
     * wal's commit notes; 0: unknown). Ops above `entries` are ignored. */
    uint64_t commit;
    /* Checkpoints noted before the restart (replica_checkpoints()), as the
     * driver kept them: advisory. Notes at or below the snapshot are taken;
     * one the log holds must match it, or none is taken (stats). */
    const uint64_t *checkpoint_op;
    const uint64_t *checkpoint_checksum;
    size_t checkpoint_count;
};

enum event_type {
    EV_TICK = 1,
    EV_MESSAGE,
    EV_CLIENT_REQUEST,
    EV_PERSISTED,
    EV_META_PERSISTED,
    EV_SNAPSHOT_TAKEN,
    EV_SNAPSHOT_INSTALLED,
    EV_PEER_DOWN, /* the driver knows a peer's process is gone */
    EV_READ,      /* a linearizable read wants a safe state to read from */
    EV_TRANSFER,  /* an operator asks the primary to hand over to a backup */
    EV_RECONFIG,  /* an operator asks the primary to change the membership */
    /* The snapshot being received from a peer grew (the driver's chunk
     * receive): the core waits on for it instead of asking elsewhere. */
    EV_SNAPSHOT_PROGRESS,
};

struct client_request {
    uint64_t client_id;  /* nonzero */
    uint64_t request_no; /* 1, 2, 3, ... per client */
    const uint8_t *body;
    uint32_t body_size;
    /* The driver's own resource limit is reached (the server's maxmemory):
     * a retry of a request that is applied or being ordered is answered as
     * usual, anything new gets REPLY_OVER_LIMIT and is not proposed. The
     * decision is the primary's, before proposing, so replicas that apply
     * the log never disagree about it. */
    bool over_limit;
};

struct event {
    enum event_type type;
    uint64_t now_ms; /* monotonic milliseconds; never goes back */
    union {
        struct { /* EV_MESSAGE: raw bytes from a peer, untrusted */
            const uint8_t *data;
            size_t size;
        } message;
        struct { /* EV_CLIENT_REQUEST: a batch read in one go */
            const struct client_request *requests;
            uint32_t count;
        } client;
        struct { /* EV_PERSISTED */
            uint64_t op;
            uint64_t checksum;
        } persisted;
        struct { /* EV_META_PERSISTED */
            uint64_t seq;
        } meta;
        struct { /* EV_SNAPSHOT_TAKEN */
            uint64_t op;
        } snapshot_taken;
        struct { /* EV_PEER_DOWN: e.g. its port refused a connection */
            uint32_t peer;
        } peer_down;
        struct {             /* EV_READ */
            uint64_t tag;    /* the driver's name for the read, or for a
                                group of reads; echoed in its ACT_READ */
            uint64_t min_op; /* the read must also see ops up to here (at
                                most replica_op()): e.g. the writes its
                                client sent before it; 0 for none */
        } read;
        struct { /* EV_SNAPSHOT_PROGRESS: any value (unknown: ignored) */
            uint32_t from;
        } snapshot_progress;
        struct {             /* EV_TRANSFER: answered by one ACT_TRANSFER */
            uint32_t target; /* any value: out of range is refused */
        } transfer;
        struct { /* EV_RECONFIG: answered by one ACT_RECONFIG */
            /* The next epoch's voters (ordered: voters[0] leads its first
             * view) and learners; the epoch field is ignored. Any value:
             * an invalid one is refused. */
            struct membership next;
        } reconfig;
        struct { /* EV_SNAPSHOT_INSTALLED: the state machine now holds it */
            uint64_t op;
            uint64_t checksum;
            uint64_t timestamp_ms;
            const uint8_t *client_table;
            size_t client_table_size;
        } snapshot;
    };
};

enum action_type {
    ACT_SEND = 1,
    ACT_PERSIST,
    ACT_PERSIST_META,
    ACT_REPLY,
    ACT_VIEW,
    ACT_SNAPSHOT_TAKE,
    ACT_LOG_COMPACT,
    ACT_SNAPSHOT_SEND,
    ACT_READ,
    ACT_TRANSFER,
    ACT_RECONFIG,
};

/* The answer to an EV_RECONFIG (docs/PROTOCOL.md, "Epochs"). */
enum reconfig_result {
    RECONFIG_PROPOSED = 0,    /* the RECONFIG entry is at op; the epoch
                                 changes once it commits */
    RECONFIG_NOT_PRIMARY = 1, /* only the NORMAL primary proposes */
    RECONFIG_INVALID = 2,     /* no voters, an id twice or outside --peers */
    RECONFIG_BUSY = 3,        /* a change is already in the log (wedged), or
                                 the pipeline is full */
};

struct reconfig_answer {
    enum reconfig_result result;
    uint32_t epoch; /* the epoch the entry ends (PROPOSED) or the current */
    uint64_t op;    /* PROPOSED: the RECONFIG entry's op */
};

const char *reconfig_result_name(enum reconfig_result result);

/* The answer to an EV_TRANSFER (leadership transfer, docs/PROTOCOL.md). */
enum transfer_result {
    TRANSFER_STARTED = 0,     /* draining; then the view change to new_view */
    TRANSFER_NOT_PRIMARY = 1, /* only the NORMAL primary hands over */
    TRANSFER_NO_SUCH_REPLICA = 2, /* target is not a voter's id */
    TRANSFER_SELF = 3,            /* target is this replica */
    TRANSFER_BUSY = 4,            /* a transfer is already draining */
    TRANSFER_SUSPECTED = 5,       /* target silent: down or cut off */
    TRANSFER_LAGGING = 6,         /* target more than a pipeline behind */
};

struct transfer_answer {
    enum transfer_result result;
    uint32_t target;
    uint32_t primary;   /* of view if NORMAL, else COHORT_REPLICA_NONE */
    uint64_t view;      /* this replica's view when asked */
    uint64_t new_view;  /* STARTED: the view target will lead */
    uint64_t op;        /* this replica's op when asked */
    uint64_t target_op; /* primary only: what target acknowledged */
};

const char *transfer_result_name(enum transfer_result result);

enum reply_status {
    REPLY_OK = 0,          /* applied; reply holds the state machine's answer */
    REPLY_NOT_PRIMARY = 1, /* certainly not applied here; try primary_hint */
    REPLY_VIEW_CHANGE = 2, /* certainly not proposed: view change under way */
    REPLY_RECOVERING = 3,  /* certainly not proposed: replica recovering */
    REPLY_BUSY = 4,        /* certainly not proposed: pipeline full */
    REPLY_TOO_BIG = 5,     /* certainly not proposed: body too large */
    REPLY_EXPIRED = 6,     /* the client's session was forgotten */
    REPLY_APPLIED_REPLY_LOST = 7, /* a retry of an applied request whose
                                     reply was too large to keep */
    REPLY_STALE = 8,              /* certainly not applied now: the client has
                                     sent a later request, and only the latest one
                                     is answered again (request numbers only grow) */
    REPLY_OVER_LIMIT = 9,         /* certainly not proposed: over_limit was set
                                     and the request is not a retry */
};

struct action {
    enum action_type type;
    union {
        struct {
            uint32_t to;
            const uint8_t *data;
            size_t size;
        } send;
        struct {
            uint64_t op_first;
            uint64_t op_last;  /* op_first - 1: truncate only */
            uint64_t checksum; /* of the entry at op_last; echo it back */
        } persist;
        struct {
            uint64_t seq;
            struct replica_meta meta;
        } meta;
        struct {
            uint64_t client_id;
            uint64_t request_no;
            enum reply_status status;
            uint32_t primary_hint; /* for REPLY_NOT_PRIMARY */
            uint64_t op;           /* REPLY_OK: the op that applied it */
            const uint8_t *data;
            size_t size;
        } reply;
        struct cohort_view_info view;
        struct {
            uint64_t op;
            uint64_t checksum;
            uint64_t timestamp_ms;
            const uint8_t *client_table;
            size_t client_table_size;
        } snapshot_take;
        struct {
            uint64_t op;
        } compact;
        struct {
            uint32_t to;
        } snapshot_send;
        struct {
            uint64_t tag;
            enum reply_status status;
            uint32_t primary_hint; /* for REPLY_NOT_PRIMARY */
        } read;
        struct transfer_answer transfer;
        struct reconfig_answer reconfig;
    };
};

/* The actions of one step; owned by the replica, valid until the next
 * replica_step(). */
struct actions {
    const struct action *list;
    uint32_t count;
};

struct replica;

/* Counters for reports and tests; all monotonic. */
struct replica_stats {
    uint64_t view_changes; /* views this replica started as normal */
    uint64_t ops_committed;
    /* Peer messages dropped as invalid: malformed (message_decode), or
     * impossible for this replica (its own index, another epoch, too
     * large, a DO-VIEW-CHANGE that contradicts the chosen log). */
    uint64_t messages_invalid;
    /* Peer messages dropped for a view more than VIEW_JUMP_MAX (2^32)
     * above this replica's (not counted in messages_invalid). */
    uint64_t views_refused;
    uint64_t requests_duplicate;
    uint64_t state_transfers;
    uint64_t snapshots_taken;
    uint64_t snapshots_installed;
    /* Compactions after a snapshot held back by a snapshot being sent
     * (the log kept back to its op, transfer.c), and those the log's room
     * cut short of it. */
    uint64_t compactions_pinned;
    uint64_t pins_overrun;
    uint64_t reads_served;        /* ACT_READ with REPLY_OK */
    uint64_t read_rounds;         /* PINGs sent for reads */
    uint64_t transfers_started;   /* leadership transfers begun here */
    uint64_t transfers_abandoned; /* drains that did not finish in time */
    /* Messages of a higher view dropped while too many metadata writes
     * were in flight to enter another view (a stalled disk). */
    uint64_t views_deferred;
    uint64_t epochs_entered; /* epoch changes taken here */
    uint64_t epoch_answers;  /* NEW_EPOCH sent to an older epoch's sender */
    uint64_t epochs_ahead;   /* messages of a newer epoch dropped (also
                                in messages_invalid; the epoch is learned
                                by START_EPOCH / NEW_EPOCH) */
    uint64_t replacements;   /* silent voters replaced by a learner (the
                                RECONFIG entries this primary appended) */
    uint64_t spares_added;   /* spares added as learners (likewise; an
                                entry a view change lost is proposed
                                again and counted again) */
    uint64_t divergences;    /* peers' requests showing another history
                                of ops both hold committed */
    /* Checkpoints taken from replica_durable at start, and whether its
     * list was refused (not rising, or contradicting the log). */
    uint64_t checkpoints_loaded;
    bool checkpoints_refused;
};

/* Allocate and initialize a replica from config and what survived on disk.
 * Returns NULL if out of memory or config is invalid. The replica starts
 * RECOVERING; the first replica_step() (any event) starts recovery. */
struct replica *replica_init(const struct replica_config *config,
                             const struct replica_durable *durable,
                             uint64_t now_ms);
void replica_deinit(struct replica *r);

/* The checkpoints this replica noted as its log compacted (checkpoints.h),
 * each once in rising op order, into op[] and checksum[] (room for max;
 * CHECKPOINTS_MAX is enough); returns the count. The driver keeps them on
 * disk at each ACT_LOG_COMPACT and hands them back at start. */
size_t replica_checkpoints(const struct replica *r, uint64_t *op,
                           uint64_t *checksum, size_t max);

/* Handle one event. Never fails: bad peer input is dropped and counted. */
void replica_step(struct replica *r, const struct event *ev,
                  struct actions *out);

/* The entry at op, for ACT_PERSIST; valid until the next replica_step(). */
const struct entry *replica_entry(const struct replica *r, uint64_t op);

/* Linearizable reads the core can hold at once (more answer REPLY_BUSY). */
#define REPLICA_READS_MAX 64u

/* Read-only views of the state, for drivers, INFO and the simulator. */
enum replica_status replica_status(const struct replica *r);
uint64_t replica_view(const struct replica *r);
/* Why this replica left (or is leaving) view why.from_view, as the next
 * ACT_VIEW will report it: reporting only, no protocol decision reads it. */
struct cohort_view_why replica_view_why(const struct replica *r);
/* The current epoch's membership (its epoch field is the epoch). Views are
 * ordered by (epoch, view): each epoch's views start at 0. */
const struct membership *replica_membership(const struct replica *r);
/* Removed: not a member of the epoch it knows; it takes no part. */
bool replica_removed(const struct replica *r);
/* Removed, and a member of an earlier epoch: a membership change took it
 * out (replica_removed() alone is also true of an id never added). Kept
 * across restarts; false again once an epoch names it. */
bool replica_left(const struct replica *r);
uint32_t replica_primary(const struct replica *r); /* of the current view */
bool replica_is_primary(const struct replica *r);  /* and NORMAL */
/* A primary that proposes nothing new for now: draining for a leadership
 * transfer, or wedged behind its epoch's RECONFIG entry. Requests get
 * REPLY_BUSY meanwhile. */
bool replica_holding(const struct replica *r);
uint64_t replica_op(const struct replica *r);
uint64_t replica_commit(const struct replica *r);
/* The index a linearizable read arriving now is served at (read_index.c):
 * a primary's max(commit, view_op), since ops up to view_op may have been
 * committed in an earlier view; a backup's commit. */
uint64_t replica_read_index(const struct replica *r);
uint64_t replica_applied(const struct replica *r);
uint64_t replica_log_base(const struct replica *r);    /* first op held - 1 */
uint64_t replica_snapshot_op(const struct replica *r); /* latest taken */
/* The log time (ms) this replica would stamp a batch with now (as of its
 * last step): the view's start time in log time plus the time since, never
 * behind the last entry's timestamp. Only a primary's is the log's clock. */
uint64_t replica_log_time(const struct replica *r);

/* The last request number of client_id that this replica has applied (0:
 * none it remembers; the client table forgets idle clients). Every replica
 * applies in log order, so once this reaches a request's number, this
 * replica's state includes that request's effect: a server waits on it
 * before judging a client's own write from local state. */
uint64_t replica_client_applied(const struct replica *r, uint64_t client_id);
/* The highest op this replica knows peer has durable (primary only; 0 for
 * backups and unknown peers). */
uint64_t replica_peer_op(const struct replica *r, uint32_t peer);
bool replica_suspects(const struct replica *r, uint32_t peer);
/* When this replica last heard from peer (monotonic ms, the clock of its
 * events), into *heard_ms: a message that shows the peer alive, or the
 * start of a view it leads. Returns false, leaving *heard_ms alone, when
 * it heard nothing from peer since replica_init() (or peer is self or out
 * of range). Read only, for hosts: INFO's master_last_io_seconds_ago. */
bool replica_heard(const struct replica *r, uint32_t peer, uint64_t *heard_ms);
/* Whether the log lost records this replica may have acknowledged and a
 * primary has not repaired it yet (it then takes no part in view changes). */
bool replica_damaged(const struct replica *r);
/* Whether it is fetching the log through the start of its epoch (it does
 * not hold that entry yet; epoch.c). A replica whose damage cleared when
 * it learned a new epoch may still lack records until then. */
bool replica_catching_up(const struct replica *r);
/* Divergence (docs/PROTOCOL.md, "Divergence"): a peer showed a history
 * without ops this replica holds committed (one of the two was started on
 * an older copy of its data). replica_diverged(): the op where this
 * replica's log and the group's part, at or before (0: none), and who
 * showed it; the replica then takes no part in anything and keeps its log
 * for the operator. replica_peer_diverged(): the last peer whose request
 * showed such a history to this replica, and the op (0: none). */
uint64_t replica_diverged(const struct replica *r, uint32_t *from);
uint64_t replica_peer_diverged(const struct replica *r, uint32_t *peer);
/* Whether nothing was ever stored here (no metadata), no primary has
 * brought the replica up to date since, and its host did not distrust it
 * (replica_distrust_fresh()). */
bool replica_fresh(const struct replica *r);
/* The host learned that the group stored data before this fresh replica
 * existed (its peers announce a group incarnation, kv/incarnation.h): a
 * new member, or a replica whose disk was emptied. Either way its empty
 * log may lack ops it once acknowledged, so it counts as damaged: it takes
 * no part in choosing a primary until a primary has repaired it, and it
 * is no longer fresh (it does not tell peers that it never stored
 * anything, which would let two such replicas start the group anew).
 * Does nothing unless fresh with an empty log (no
 * snapshot either: a restored directory is not empty), not damaged, not
 * primary. */
void replica_distrust_fresh(struct replica *r);
/* The replica whose snapshot this one awaits: it asked that replica for
 * state (GET_STATE) and was answered that a snapshot is on its way
 * (NEW_STATE with MSG_FLAG_SNAPSHOT). COHORT_REPLICA_NONE when it awaits
 * none. The driver accepts snapshot chunks that start a transfer only from
 * this replica. */
uint32_t replica_snapshot_source(const struct replica *r);
const struct replica_stats *replica_stats(const struct replica *r);
/* The failure detector (per peer: suspicions, false ones, the timeout), for
 * metrics. Valid until the next replica_step(). */
struct detector;
const struct detector *replica_detector(const struct replica *r);

/* The state as of the applied op, for a snapshot taken outside the core's
 * own schedule (a backup an operator asked for): the op, its entry's
 * checksum and log time, and the client table as of that op, encoded into
 * table (capacity table_size, at least replica_client_table_size_max()).
 * Returns the table's encoded size. Changes nothing: the state machine, which
 * the caller snapshots in the same turn, is at the same op. */
struct replica_export {
    uint64_t op;
    uint64_t checksum;
    uint64_t timestamp_ms;
};
size_t replica_client_table_size_max(const struct replica *r);
size_t replica_export(const struct replica *r, struct replica_export *out,
                      uint8_t *table, size_t table_size);
/* The largest peer message this replica sends or accepts (derived from the
 * pipeline limits when the config left it 0). */
uint32_t replica_message_size_max(const struct replica *r);
/* The largest peer message a replica with config c would send or accept:
 * c->message_size_max, or what replica_init() derives when it is 0. Pure:
 * a host checks its transport's limits with it before starting. */
uint64_t replica_config_message_size(const struct replica_config *c);
/* The log's body arena: the replica's largest buffer, allocated once at
 * replica_init() and never moved. A driver that forks to write snapshots
 * may keep it out of the child (ACT_SNAPSHOT_TAKE never points into it). */
void replica_log_arena(const struct replica *r, void **data, size_t *size);
/* Bytes of entries' bodies the arena holds now. */
uint64_t replica_log_arena_used(const struct replica *r);
/* The parts of that arena no log entry's body occupies now (log.h,
 * log_free_ranges()): a driver may give their memory back, until the next
 * change to the log. Returns how many (at most 2). */
struct log_range;
uint32_t replica_log_arena_free(const struct replica *r,
                                struct log_range *out /* room for 2 */);
/* Milliseconds from now_ms until the replica needs an EV_TICK. */
uint64_t replica_next_tick_ms(const struct replica *r, uint64_t now_ms);

const char *replica_status_name(enum replica_status status);

#endif
