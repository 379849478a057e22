/* server/internal — what the server's modules share: the server, its client
 * connections, the command slots that keep replies in order, and the link
 * that forwards commands from a backup to the primary. Nothing outside
 * src/server includes this; the API is server.h.
 *
 * Threads: everything runs on the loop thread.
 *
 * The one rule that shapes this code: the node calls us back (driver_done_fn)
 * from inside its own stepping, so a callback never calls into the node again
 * (no node_submit, node_read_barrier or node_cancel) and never frees a
 * connection. It records the outcome in the command's slot and schedules the
 * rest: replies are flushed by the prepare handle (once per loop turn, one
 * write per connection), and commands that were held back are dispatched by
 * the idle handle. Closing a connection is deferred the same way.
 */
#ifndef COHORT_SERVER_INTERNAL_H
#define COHORT_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "common/resp.h"
#include "kv/incarnation.h"
#include "kv/session_cmd.h"
#include "runtime/log_limit.h"
#include "runtime/node.h"
#include "server/addr_count.h"
#include "server/auth.h"
#include "server/client_tls.h"
#include "server/feed.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/watch.h"

/* Unsent output over which a connection stops reading new commands
 * (backpressure). It is closed, as a client that does not read its replies,
 * only past server_config.output_buffer_max. */
#define CONN_OUTPUT_SOFT_MAX (256u * 1024u)
/* The read buffer starts at this and shrinks back to it when idle. */
#define CONN_READ_BUFFER_SIZE (16u * 1024u)
/* Bytes of commands held in slots (copies kept for a later read or a
 * forward) before the connection stops reading. */
#define CONN_INFLIGHT_BYTES_MAX (16u * 1024u * 1024u)
/* An argument over the command size limit is read and dropped (with the
 * rest of its command) up to this size, so the connection answers -ERR and
 * goes on; past it the connection answers and closes. */
#define CONN_DISCARD_MAX (1ull << 30)
/* Slots kept for reuse by the whole server. */
#define SLOT_POOL_MAX 4096u
/* A forwarded command that waits longer than this for the primary's reply
 * fails the link (its writes get -UNKNOWN, its reads -TRYAGAIN). */
#define FORWARD_REPLY_TIMEOUT_MS 10000u
/* A link whose replica is no longer the primary as this replica knows it (a
 * view change is under way, or a newer view has another primary) gets this
 * long for the replies still owed, then fails. An old primary that runs
 * answers at once (-TRYAGAIN for what it had not proposed, -UNKNOWN for what
 * it had); one that is frozen or cut off never does, and must not hold its
 * clients for FORWARD_REPLY_TIMEOUT_MS. */
#define FORWARD_STALE_GRACE_MS 200u
#define FORWARD_CONNECT_TIMEOUT_MS 2000u
/* After a failed connect, forwards to the same replica fail at once for this
 * long instead of dialing again for every command. */
#define FORWARD_BACKOFF_MS 100u
/* A forwarded command that the old primary bounced as "not the primary"
 * (certainly not executed, forward.c) waits at most this long for this
 * replica to learn a new primary to re-send it to, then gets -TRYAGAIN:
 * the driver parks requests through a view change for two view-change
 * timeouts (300 ms by default) and this is the same bound. */
#define FORWARD_RESEND_WAIT_MS 600u
/* Times one command is re-sent after such a bounce (a transfer chain). */
#define FORWARD_RESEND_MAX 3u
#define SERVER_TIMER_MS 100u
/* Writes this server keeps in the node at once (submitted, not answered),
 * and their bytes. The core refuses a request (REPLY_BUSY, which reaches a
 * client as -TRYAGAIN) once 1024 ops are uncommitted or its pipeline bytes
 * are full (replica_config pipeline_ops_max, pipeline_bytes_max); staying
 * below that turns overload into backpressure: a write over the cap waits
 * in its connection (which stops reading) until an earlier one answers. */
#define WRITES_IN_NODE_MAX 768u
#define WRITE_BYTES_IN_NODE_MAX (2u * 1024u * 1024u)
/* Connections accepted over a client limit wait here (admit.c) for a
 * backup's proof that they are its forward link; the oldest is refused
 * when a newer one needs the room. */
#define PROBATION_MAX 16u
#define PROBATION_MS 2000u
/* Verified forward links per replica: its current link and a draining one
 * to the same primary, with room to spare; past it the oldest is closed
 * (a process that restarted left it behind). */
#define LINKS_PER_REPLICA_MAX 4u

struct server;
struct command_spec;
struct conn;
struct link;

/* Where a command stands. */
enum slot_state {
    SLOT_RUNNING = 1, /* the node or the primary has it */
    SLOT_QUEUED = 2,  /* a write to (re)submit when the session and the
                         server's write cap allow */
    SLOT_READY = 3,   /* reply complete, waiting for the slots before it */
};

enum fwd_wait {
    FWD_NONE = 0,
    FWD_GATED = 1,
    FWD_BOUNCED = 2,
};

enum slot_kind {
    SLOT_OTHER = 0,
    SLOT_READ = 1,  /* a store read (GET ...): payload is the command */
    SLOT_WRITE = 2, /* a store write (SET ...): payload is the command */
};

/* One command of a connection that could not be answered at once, or was
 * answered while an earlier one was still running. Its address is the ctx
 * given to the node: unique while it runs, and never freed before the node
 * has called back or node_cancel() has forgotten it.
 *
 * A forwarded slot is on a link's list as well. When its connection closes
 * first, it becomes an orphan (conn == NULL) that the link frees when the
 * primary's reply arrives or the link fails. */
struct slot {
    struct slot *next;      /* the connection's FIFO, or the free pool */
    struct slot *link_next; /* the link's FIFO while forwarded */
    struct conn *conn;      /* NULL: orphan */
    struct server *server;
    enum slot_state state;
    enum slot_kind kind;
    bool in_node;   /* node_submit/node_read called, no answer yet */
    bool forwarded; /* on a link's list, no answer yet */
    /* Held back from the forward links (forward.c): FWD_GATED (never sent:
     * an earlier command of its connection may still be re-sent) or
     * FWD_BOUNCED (the old primary answered "not the primary": certainly
     * not executed, to re-send to the new one), since fwd_since_ms. */
    uint8_t fwd_wait;
    uint8_t resends;       /* times re-sent after a bounce */
    uint32_t bounced_from; /* FWD_BOUNCED: the replica that bounced it */
    uint64_t fwd_since_ms;
    bool session_write;        /* numbered by the connection's own session */
    bool fixed_ids;            /* COHORT.REQ: the client's own id and number */
    bool holds_permit;         /* counted in the server's write cap */
    bool watch;                /* WATCH: its COHORT.REVS reply is recorded, then
                                  answered +OK (cmd_txn.c) */
    uint64_t watch_generation; /* the connection's when WATCH started */
    /* COHORT.LOCK ... WAIT ms (lock_wait.c): ms to hold a queued answer
     * (0: answer at once), and once parked, the loop time to give up. */
    bool lock_parked;
    uint32_t lock_wait_ms;
    uint64_t lock_deadline_ms;
    /* Linearizable reads served on a backup (backup_read.c). */
    bool ri_request;        /* a COHORT.READINDEX on the link: `batch` */
    bool ri_answer;         /* the primary's slot answering one: read_op */
    uint8_t backup_read;    /* enum backup_read_state of a client's read */
    struct slot *batch;     /* ri_request: the reads its round serves */
    struct slot *br_next;   /* a read: the next in its list */
    uint32_t read_primary;  /* where the round went (to forward instead) */
    uint64_t read_op;       /* the round's read index: serve once applied */
    uint64_t read_time_ms;  /* the round's log time: judge expiry at it */
    uint64_t read_since_ms; /* when the round answered */
    /* A confirmed read held for a later turn (read_pace.c). */
    bool paced;
    struct slot *pace_next;
    size_t permit_bytes;
    uint64_t client_id;
    uint64_t request_no;
    /* For the metrics: 1 + the command's index in the command table, counted
     * when the reply is complete (0: not counted), and when it was
     * dispatched (uv_hrtime). */
    uint16_t command;
    uint64_t started_ns;
    /* The command as RESP (resp_write_command of argv without any
     * COHORT.REQ prefix): what a later read queries, what a forward sends,
     * and what a resubmission parses again. */
    struct resp_buf payload;
    struct resp_buf reply; /* in the connection's protocol */
};

struct conn_session {
    uint64_t client_id;
    uint64_t next_request_no; /* 1: nothing submitted under this id */
    struct slot *gate;        /* request 1 while it runs (see cmd_store.c) */
    uint32_t running;         /* its writes submitted and not answered */
    uint32_t stale_running;   /* writes of earlier ids not answered */
    uint32_t queued;          /* slots in SLOT_QUEUED */
};

/* MULTI ... EXEC and WATCH (cmd_txn.c). The queued commands and the
 * watched keys are kept as RESP bulk strings in the form COHORT.EXEC takes
 * (kv/txn.h): "<argc> <name> <arg>..." per command, "<key> MODOP = <rev>"
 * per watched key. */
struct conn_txn {
    bool active; /* MULTI was called */
    bool dirty;  /* a command was refused while queuing: EXEC aborts */
    uint32_t command_count;
    uint32_t queued_args; /* bulk strings in queued */
    size_t body_bytes;    /* what queued adds to the log body (at most) */
    struct resp_buf queued;
    uint32_t watch_count;
    size_t watch_bytes; /* what watched adds to the log body (at most) */
    struct resp_buf watched;
    /* Moves on at UNWATCH, DISCARD and EXEC: a WATCH that started before
     * records nothing. */
    uint64_t watch_generation;
    bool watch_failed; /* a WATCH got an error: EXEC answers nil */
};

/* Subscriptions one connection may hold: a publish is matched against
 * every subscription of the member, inside apply. */
#define PUBSUB_SUBS_PER_CONN_MAX 10000u

/* One subscription of a connection (pubsub.c): a channel, or a glob
 * pattern, and the position after which its messages are delivered. */
struct pubsub_sub {
    char *name; /* owned */
    uint32_t size;
    bool pattern;
    uint64_t after;
};

/* A connection's subscriptions and where its delivery stands. */
struct conn_pubsub {
    struct pubsub_sub *subs; /* channels and patterns, in the order made */
    uint32_t count, capacity;
    uint32_t channels, patterns;
    bool positioned; /* COHORT.SUBSCRIBE: messages carry positions */
    /* On server->pubsub.feed while count > 0. When behind, messages from
     * position link.resume on are delivered from the history
     * (pubsub_pump_all) rather than as they are applied: the output was
     * full, or an earlier reply was still owed, or FROM asked for them. */
    struct feed_link link;
};

/* The server's subscribers (pubsub.c). */
#define PUBSUB_COUNTS 1024u
struct server_pubsub {
    struct feed feed; /* the connections with a subscription */
    uint64_t messages_delivered;
    uint64_t subscribers_cut;
    /* How many of this member's subscriptions received the PUBLISH applied
     * at op, for the reply (slot op % PUBSUB_COUNTS, tagged by op). */
    uint64_t counted_op[PUBSUB_COUNTS];
    uint64_t counted[PUBSUB_COUNTS];
};

/* What a connection counts against (admit.c). */
enum conn_kind {
    CONN_NEW = 0,       /* accepted, not counted yet */
    CONN_CLIENT = 1,    /* a client: max-clients, max-clients-per-ip, timeout */
    CONN_PROBATION = 2, /* over a client limit; refused unless it proves to
                           be a forward link within PROBATION_MS */
    CONN_LINK = 3,      /* a backup's verified forward link: no limits */
};

/* One client connection. */
struct conn {
    uv_tcp_t tcp;
    uv_write_t write_req;
    struct server *server;
    struct conn *prev, *next; /* server->conns */
    struct conn *dirty_next;  /* server->dirty: output to flush */
    struct conn *resume_next; /* server->resume: input to process */
    struct conn *permit_prev, *permit_next; /* server->permit_*: waiting */
    bool permit_listed;
    bool permit_woken;  /* a release chose it to try for the cap next */
    size_t permit_need; /* bytes of the write it waits to submit */
    bool dirty, resume_listed;
    bool reading;       /* uv_read_start active */
    bool writing;       /* write_req in flight */
    bool input_stopped; /* QUIT, protocol error, refused */
    bool eof;           /* the peer sends no more */
    bool closing;       /* teardown scheduled or done */
    bool closed_handle; /* uv_close called */
    bool authenticated;
    /* Accepted on the TLS port: the session, and where ciphertext is read
     * (tls_port.c); NULL on the plain port. */
    struct client_tls_session *tls;
    char *tls_rbuf;
    /* The user (auth.c): its name, and where it was last looked up. */
    char user[ACL_NAME_MAX + 1];
    const struct acl *auth_users; /* NULL: look it up at the next command */
    uint64_t auth_generation;
    const struct acl_user *acl_user;
    struct auth_perm perm;
    bool readonly; /* READONLY: reads served locally */
    /* The turn's read budget was used up: dispatches nothing until a later
     * turn (on the resume list meanwhile; read_pace_admit()). */
    bool pace_wait;
    bool no_forward; /* COHORT.NOFORWARD: a link from a backup */
    enum conn_kind kind;
    uint32_t link_from; /* CONN_LINK: the backup's replica index */
    uint64_t probation_until_ms;
    const char *refusal;    /* CONN_PROBATION: the error if it is refused */
    bool protected_refusal; /* refused by protected mode, not a limit */
    struct addr_key addr_key;
    bool addr_counted; /* counted in server->addr_counts */
    uint64_t id;       /* CLIENT ID */
    char name[128];    /* CLIENT SETNAME */
    char addr[64], laddr[64];
    uint64_t created_ms, last_ms;
    char last_command[32];
    /* The command being dispatched, for the slot its handler pushes (see
     * struct slot's command); 0 outside command_dispatch(). */
    uint16_t dispatching;
    uint64_t dispatch_ns;

    /* Input. */
    char *rbuf;
    size_t rbuf_size, rbuf_used, rbuf_pos; /* capacity, filled, parsed */
    /* Dropping a command refused for an oversized argument: payload bytes
     * of the argument still to drop, bytes of its CRLF still to check (2,
     * 1 or 0: checked as a parsed bulk's are), then how many whole
     * arguments follow. */
    uint64_t discard_size;
    uint32_t discard_crlf;
    uint32_t discard_args;

    /* Output: replies are appended to out; writing holds what the write in
     * flight covers (libuv keeps pointing into it until the callback). */
    struct resp_buf out;
    struct resp_buf writing_buf;
    int proto;

    /* Commands not answered yet, in arrival order. */
    struct slot *head, *tail;
    uint32_t slot_count;
    size_t slot_bytes;       /* payload and reply bytes held by the slots */
    size_t slot_reply_bytes; /* of which replies waiting their turn */
    struct conn_session session;
    struct conn_txn txn;
    struct conn_pubsub ps;
    struct conn_watch w; /* watch.h */
    /* Per-connection order between reads and writes (conn.c): store reads
     * and writes whose slots are not ready yet, and whether the next
     * command waits for the other kind to finish. */
    uint32_t reads_running, writes_running;
    bool order_blocked;
    /* Its slots parked as COHORT.LOCK ... WAIT (lock_wait.c): while any
     * is, the connection reads on (a bounded amount) even when it cannot
     * dispatch, so that it sees the client close (conn.c). */
    uint32_t lock_parked;
    /* The forward gate (forward.c): this connection's slots on forward
     * links (all on fwd_link), and its slots held back (fwd_wait), of
     * which fwd_bounced wait to be re-sent. */
    uint32_t fwd_count;
    struct link *fwd_link;
    uint32_t fwd_waiting;
    uint32_t fwd_bounced;
    const struct slot *fwd_passing; /* being released: passes the gate */
};

/* The outbound connection to the primary's RESP port. One per server at a
 * time; an old one drains (no new commands) until its list is empty. */
enum link_state {
    LINK_CONNECTING = 1,
    LINK_READY = 2,
    LINK_CLOSING = 3,
};

struct link {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct server *server;
    struct link *next_draining;
    enum link_state state;
    uint32_t target; /* replica index of the primary it talks to */
    bool writing;
    uint32_t handshake_pending; /* replies to AUTH, COHORT.NOFORWARD owed */
    uint64_t started_ms;
    struct resp_buf out, writing_buf;
    /* Slots whose commands were sent or queued, oldest first; `unsent`
     * counts the newest ones not yet handed to a write: they certainly did
     * not reach the primary. */
    struct slot *head, *tail;
    uint32_t count;
    uint32_t unsent;
    uint64_t head_since_ms; /* when the head's reply started being awaited */
    bool stale;             /* target is not the primary of our view */
    uint64_t stale_since_ms;
    char *rbuf;
    size_t rbuf_size, rbuf_used;
    struct resp_node *nodes;
    uint32_t node_capacity;
};

struct server_stats {
    uint64_t connections_received;
    uint64_t connections_rejected;
    uint64_t connections_timed_out; /* closed by --timeout */
    uint64_t commands;
    uint64_t forwarded;
    uint64_t forward_link_writes; /* socket writes on forward links */
    uint64_t forward_failures;
    uint64_t forward_bounced;       /* "not the primary" from an old one */
    uint64_t forward_resent;        /* of those, re-sent */
    uint64_t forward_resend_failed; /* of those, answered -TRYAGAIN */
    uint64_t forward_gated;         /* held behind an earlier command */
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t output_limit_closes; /* clients closed: output far behind */
    uint64_t session_renewals;
    uint64_t tls_reloads;  /* SIGHUP reloads that took */
    uint64_t tls_failures; /* TLS connections failed (handshake, record) */
};

/* The primary's remover of expired keys (expiry_sweep.c). */
struct sweeper {
    struct server *server;
    uint64_t client_id; /* its own identity in the client table */
    uint64_t request_no;
    bool in_flight;
    uint64_t ops_proposed; /* EXPIRE_DUE ops this member proposed */
    uint64_t ops_done;     /* ... and saw applied */
    uint64_t clock_ops;    /* of those proposed, clock ticks (nothing due) */
    uint8_t *body;         /* the op's body until node_submit copies it */
    size_t body_capacity;
};

/* The announcer of views on "cohort:views" (view_announce.c). */
#define VIEW_ANNOUNCE_CHANNEL "cohort:views"
struct announcer {
    struct server *server;
    uint64_t client_id;
    uint64_t request_no;
    bool in_flight;
    /* Views are ordered by (epoch, view): each epoch's views start at 0. */
    uint32_t epoch; /* the epoch of the request in flight or last */
    uint64_t view;  /* the view of the request in flight or last */
    uint32_t announced_epoch;
    uint64_t announced_view; /* the newest view this member saw announced */
    uint64_t proposed;
    uint64_t done;
    uint8_t body[192];
};

/* The group incarnation's proposer (incarnation.c). */
struct incarnation_proposer {
    struct server *server;
    uint64_t client_id;
    uint64_t request_no;
    bool in_flight;
    bool sent;      /* request_no was used: a retry keeps it */
    uint64_t value; /* what this member proposes; 0 until chosen */
    uint64_t proposed;
    uint8_t body[KV_INCARNATION_BODY_MAX];
};

#define SERVER_ADMIN_NOTE_MAX 120u

/* Operations an operator started on this member, for INFO (cmd_transfer.c,
 * cmd_rejuvenate.c): the view an accepted COHORT.TRANSFER will start, and
 * the core's count of abandoned drains when it was accepted (a transfer is
 * in progress while this replica's view is older and no drain was
 * abandoned since); whether COHORT.REJUVENATE was accepted (the process is
 * about to re-execute); a rolling restart's progress note. */
struct server_admin {
    uint64_t transfer_view; /* 0: none accepted */
    uint64_t transfer_abandoned;
    uint32_t transfer_target;
    bool rejuvenating;
    /* What `cohort rejuvenate` last said it is doing (COHORT.REJUVENATE
     * PROGRESS, printable ASCII); "": no rolling restart under way. */
    char rejuvenation[SERVER_ADMIN_NOTE_MAX + 1];
};

/* The primary's EXTEND and session EXPIRE ops (session_sweep.c). */
struct session_sweeper {
    struct server *server;
    uint64_t client_id;
    uint64_t request_no;
    bool in_flight;
    bool extending;          /* the op in flight is an EXTEND */
    struct kv_term proposed; /* the term the op in flight was proposed in */
    bool extended_set;       /* an EXTEND proposed in `extended` is done */
    struct kv_term extended;
    uint64_t extend_ops_proposed;
    uint64_t expire_ops_proposed;
    uint64_t expire_ops_done;
    uint8_t *body;
    size_t body_capacity;
};

/* Where a backup's linearizable read stands (backup_read.c). */
enum backup_read_state {
    BR_NONE = 0,
    BR_PENDING = 1, /* waits for the next round */
    BR_SENT = 2,    /* in a round's batch, on the link */
    BR_WAITING = 3, /* the round answered: waits to apply its read index */
};

/* A backup waits at most this long to apply a round's read index (the
 * primary tells backups its commit point with its next PREPARE, or on an
 * idle log its COMMIT heartbeat) before it forwards the read instead. */
#define BACKUP_READ_WAIT_MS 5u

struct server_backup_read {
    struct slot *pending, *pending_tail; /* for the next round */
    uint32_t pending_primary;
    struct slot *waiting, *waiting_tail; /* rounds answered */
    uv_timer_t timer;                    /* the oldest waiting's limit */
    uint64_t rounds;                     /* COHORT.READINDEX sent */
    uint64_t served;                     /* reads served here */
    uint64_t forwarded;                  /* reads forwarded after all */
};

/* Bytes of read replies one loop turn builds before the rest of the
 * confirmed reads wait for the next (read_pace.c). */
#define READ_PACE_TURN_BYTES (4u << 20)

struct server_read_pace {
    size_t used;              /* reply bytes built this turn */
    struct slot *head, *tail; /* confirmed reads held, in order */
    bool short_turn;          /* this turn refused room to a read */
    bool again;               /* the last turn did: keep turning */
    uint64_t held;            /* reads held to a later turn */
    uint64_t short_turns;     /* turns that ran out of room */
    uint64_t conn_waits;      /* connections held to a later turn */
    uint64_t feed_waits;      /* deliveries held to a later turn */
};

/* The slots of COHORT.LOCK ... WAIT ms answers held until a grant or
 * their deadline (lock_wait.c). */
#define LOCK_WAITS_MAX 10000u
struct server_lock_wait {
    struct slot **slots;
    uint32_t count, capacity;
    uv_timer_t timer;    /* the earliest deadline */
    uint64_t checked_op; /* the applied op at the last check */
    uint64_t granted;    /* answered with a token after waiting */
    uint64_t timed_out;  /* answered nil at the deadline */
};

struct server {
    uv_loop_t *loop;
    struct node *node;
    const struct kv *kv; /* node_kv(node) */
    /* server_recovering(): the log's last op when the server opened, and
     * whether the store has reapplied up to it since. */
    uint64_t start_op;
    bool replayed;
    /* Removed from the group (server_removed_error()) as of the last tick:
     * the subscribers and watchers were cut off then. */
    bool removed;
    struct auth auth;
    struct server_config config;
    struct node_config node_config; /* copy; strings borrowed */
    struct resp_limits limits;
    char listen_text[128];
    uint16_t port;
    uv_tcp_t listener;
    /* The TLS port (tls_port.c): listener, certificates (NULL: no TLS
     * port), SIGHUP to reload them. */
    uv_tcp_t tls_listener;
    char tls_listen_text[128];
    struct client_tls_context *tls_ctx;
    struct log_limit tls_failure_log; /* handshake failures: not a flood */
    uv_signal_t sighup;
    uv_prepare_t prepare;
    uv_idle_t idle;
    uv_timer_t timer;
    uint32_t handles_open;
    bool closing;
    bool idle_active;
    bool idle_again; /* run the idle handle one more turn: see server.c */
    uint64_t started_ms;
    uint64_t next_conn_id;
    uint64_t client_id_base;
    uint64_t client_id_counter;

    struct conn *conns;
    uint32_t conn_count;      /* every connection, of any kind */
    uint32_t client_count;    /* CONN_CLIENT */
    uint32_t probation_count; /* CONN_PROBATION */
    uint32_t link_count;      /* CONN_LINK */
    uint32_t links_from[COHORT_REPLICAS_MAX];
    struct conn *probation[PROBATION_MAX + 1]; /* oldest first */
    struct addr_counts addr_counts; /* clients and probation, per address */
    struct conn *dirty;
    struct conn *resume;

    struct slot *pool;
    uint32_t pool_count;

    /* The write cap (WRITES_IN_NODE_MAX) and who waits for it, in order. */
    uint32_t writes_in_node;
    size_t write_bytes_in_node;
    struct conn *permit_head, *permit_tail;

    /* Scratch argv for parsing; grows to the largest command seen. */
    struct resp_arg *argv;
    uint32_t argv_capacity;
    /* Scratch for callbacks and resubmissions, which may run while argv
     * is in use by the command being dispatched. */
    struct resp_arg *argv2;
    uint32_t argv2_capacity;
    uint8_t *body; /* a write's encoded body before node_submit copies it */
    size_t body_capacity;

    /* Forwarding. */
    struct sockaddr_storage client_sockaddr[COHORT_REPLICAS_MAX];
    bool client_sockaddr_ok[COHORT_REPLICAS_MAX];
    uint64_t address_version; /* node_address_version() they are from */
    struct link *link;
    struct link *draining;
    uint32_t backoff_target;
    uint64_t backoff_until_ms;
    /* Slots held by the forward gate, over every connection, and the view
     * (status, view, primary) when they were last looked at. */
    uint32_t fwd_waiting;
    int fwd_seen_status;
    uint64_t fwd_seen_view;
    uint32_t fwd_seen_primary;

    struct sweeper sweeper;
    struct announcer announcer;
    struct incarnation_proposer incarnation;
    struct session_sweeper session_sweeper;
    struct server_stats stats;
    struct server_pubsub pubsub;
    struct server_watch watch;             /* watch.h */
    struct server_lock_wait lock_wait;     /* lock_wait.c */
    struct server_backup_read backup_read; /* backup_read.c */
    struct server_read_pace read_pace;     /* read_pace.c */
    struct server_metrics metrics;
    struct http_server *http; /* the metrics port (exporter.c), or NULL */
    struct server_admin admin;
};

/* ---- read_pace.c: the bytes of read replies one loop turn builds. See
 * read_pace.c. */
/* Whether a confirmed read may be answered this turn (the budget is not
 * used up and no read is held before it); false notes a short turn. */
bool read_pace_room(struct server *s);
/* Whether a pub/sub or watch delivery must wait for a later turn: the
 * turn's budget is used up (then counted, and a short turn: the loop keeps
 * turning). The subscriber or watcher then falls behind and is fed from
 * the history in the next turns, as when its output is full. */
bool read_pace_feed_held(struct server *s);
/* Whether the turn's budget is used up (nothing counted): the feeds' pump
 * walks stop there (feed_pump_all()). */
bool read_pace_spent(const struct server *s);
/* The prepare handle's walk of feed f (feed_pump_all() with pump), only
 * while the budget lasts; if it is used up with connections still behind,
 * the turn is a short one and the loop turns again to feed them. */
void read_pace_pump_feed(struct server *s, struct feed *f,
                         bool (*pump)(struct conn *c));
/* A read's reply of bytes was built (store_serve_read()), or a delivery's
 * (pubsub.c, watch.c). */
void read_pace_count(struct server *s, size_t bytes);
/* Whether client connection c may dispatch commands now. Not once the
 * turn's budget is used up (by reads served locally after READONLY, most
 * often): c then waits on the resume list for a later turn, with
 * c->pace_wait set (conn_can_dispatch()). Links from backups are not held
 * here: their reads are paced as confirmed reads. */
bool read_pace_admit(struct server *s, struct conn *c);
/* Hold slot (a confirmed read on the primary) for a later turn. */
void read_pace_hold(struct server *s, struct slot *slot);
/* The prepare handle: answer held reads while the budget allows. */
void read_pace_run(struct server *s);
/* After the flush: a new budget; keep the loop turning while reads wait. */
void read_pace_turn_end(struct server *s);
/* Whether reads wait for a later turn (the idle handle stays on). */
bool read_pace_pending(const struct server *s);
void read_pace_close(struct server *s);

/* ---- backup_read.c: a backup serves linearizable reads itself, after one
 * read-index round with the primary per loop turn (COHORT.READINDEX on the
 * link) instead of forwarding each. See backup_read.c. */
void backup_read_open(struct server *s);
/* slot (a linearizable read of c, kept) could not be served by the node
 * (not the primary; primary is the primary's id): serve it after a round. */
void backup_read_queue(struct conn *c, struct slot *slot, uint32_t primary);
/* Send the pending reads' round; serve the waiting reads applied here. */
void backup_read_run(struct server *s);
/* The link answered (or failed) the round in ri (ri_request). */
void backup_read_answered(struct server *s, struct slot *ri, const char *reply,
                          size_t size);
void backup_read_failed(struct server *s, struct slot *ri);
void backup_read_close(struct server *s, uv_close_cb closed);
/* The primary's side: COHORT.READINDEX on a link. */
void cmd_cohort_readindex(struct conn *c, struct resp_buf *out, uint32_t argc,
                          const struct resp_arg *argv);
/* cmd_store.c: answer the kept read in slot from this member's store with
 * expiry judged at now_ms; false (nothing done) if a key it reads expires
 * between the applied state and now_ms (kv_query_settled()). */
bool store_serve_read(struct conn *c, struct slot *slot, uint64_t now_ms);
/* cmd_store.c: forward the kept read in slot to primary, or answer
 * -TRYAGAIN. */
void store_forward_read(struct conn *c, struct slot *slot, uint32_t primary);

/* ---- lock_wait.c: COHORT.LOCK name session WAIT ms. The member the client
 * is connected to holds a queued (nil) answer until this member's applied
 * state shows the lock granted to the session (then ":token"), the
 * session left the queue, or ms pass (nil). See lock_wait.c. */
void lock_wait_open(struct server *s);
/* slot's write answered raw reply (RESP2): true if it was a queued
 * COHORT.LOCK with WAIT ms that is now held (the slot stays in c's FIFO,
 * not ready); false to answer as usual. */
bool lock_wait_park(struct conn *c, struct slot *slot, const void *reply,
                    size_t size);
/* c's client sent EOF: answer its held waits nil now (its session stays
 * queued), so that the connection can finish instead of holding on. */
void lock_wait_conn_eof(struct conn *c);
/* slot is being freed with its connection: stop holding it. */
void lock_wait_forget(struct server *s, struct slot *slot);
/* Answer the held slots whose lock was granted (or whose session left the
 * queue) since the last check, and those past their deadline. */
void lock_wait_check(struct server *s);
void lock_wait_close(struct server *s, uv_close_cb closed);

/* ---- server.c */
uint64_t server_now_ms(const struct server *s);
/* A fresh, nonzero client id for a connection's session. */
uint64_t server_client_id_new(struct server *s);
/* Whether this member is recovering: restarted, and not yet back in a view
 * with its store at the op its log held at the start (server->start_op,
 * or the log's end if a view change cut it shorter; once reached, never
 * again; a member that stopped for a divergence has what it has). Its store may
 * be far behind what it served before, so what reads it locally (READONLY
 * reads, a subscription or watch that starts "now") gets
 * SERVER_RECOVERING_ERROR instead. */
bool server_recovering(struct server *s);
#define SERVER_RECOVERING_ERROR                                                \
    "TRYAGAIN this member is recovering (it restarted and has not caught "     \
    "up with the group yet); retry, or use another member"
/* Whether a membership change removed this member from the group
 * (node_removed()); then text holds the one-line error its clients get
 * for store commands, subscriptions and watches (without the '-'): the
 * code word REMOVED, which clients take as "use another member". */
#define SERVER_REMOVED_ERROR_MAX 256u
bool server_removed_error(const struct server *s,
                          char text[SERVER_REMOVED_ERROR_MAX]);
/* Flush c's output at the end of this loop turn. */
void server_mark_dirty(struct server *s, struct conn *c);
/* Process c's buffered input (and queued writes) from the idle handle. */
void server_mark_resume(struct server *s, struct conn *c);
/* Keep the loop from blocking until the idle handle finds nothing to do
 * (work held for a later turn: read_pace.c). */
void server_keep_turning(struct server *s);
struct slot *server_slot_get(struct server *s);
/* Handles of the server's own (links) count toward freeing it. */
void server_handle_opened(struct server *s);
void server_handle_closed(struct server *s);
/* A connection's handle closed (conn.c has freed it). */
void server_conn_gone(struct server *s);
void server_slot_put(struct server *s, struct slot *slot);

/* ---- conn.c */
/* Accept a connection waiting on listener (the plain or the TLS port). */
void conn_accept(struct server *s, uv_stream_t *listener);
/* Where more input can go in rbuf (compacting or growing it up to the
 * request limit), and how many bytes; 0 when it is full. */
size_t conn_read_room(struct conn *c, char **at);
/* Append a slot for the current command to c's FIFO. */
struct slot *conn_slot_push(struct conn *c);
/* Whether command spec (argv: the whole command) must wait for the
 * connection's earlier commands of the other kind, reads for writes and
 * writes for reads, to be answered first (see conn.c, "Order"). */
bool conn_must_wait(const struct conn *c, const struct command_spec *spec,
                    uint32_t argc, const struct resp_arg *argv);
/* Mark a pushed slot as a store read or write (counted until it is ready,
 * for the order between a connection's reads and writes). */
void conn_slot_kind(struct conn *c, struct slot *slot, enum slot_kind kind);
/* The slot's reply is complete: move every ready reply at the head of the
 * FIFO to the output. Safe inside a node callback. */
void conn_slot_ready(struct conn *c, struct slot *slot);
/* Move the replies of the ready slots at the head to the output, in order,
 * while it holds less than output_buffer_max (at least one when empty);
 * close a client twice that far behind. */
void conn_move_ready(struct conn *c);
/* Whether c may dispatch another command now. */
bool conn_can_dispatch(const struct conn *c);
/* Process what is in the read buffer, then read more if allowed. Never
 * inside a node callback. */
void conn_process(struct conn *c);
void conn_flush(struct conn *c);
/* Answer with an error in order (after the replies owed). */
void conn_reply_error(struct conn *c, const char *msg);
/* Tear c down at the end of this loop turn (safe inside callbacks). */
void conn_close_soon(struct conn *c);
/* Tear down now: cancel the slots in the node, orphan forwarded ones, close
 * the handle. Never inside a node callback. */
void conn_teardown(struct conn *c);
/* Bytes of output waiting to be sent. */
size_t conn_output_size(const struct conn *c);

/* ---- admit.c */
/* c was just accepted and named: count it, and refuse it (or put it on
 * probation) when it is over a client limit. */
void admit_accepted(struct server *s, struct conn *c);
/* Whether c may run command spec (NULL: unknown) with argc arguments; a
 * connection on probation may only authenticate and prove to be a forward
 * link, anything else refuses it (the refusal is written; returns false). */
bool admit_command_allowed(struct conn *c, const struct command_spec *spec,
                           uint32_t argc);
/* What COHORT.NOFORWARD <replica> <token> proves: OK, the token is the
 * one that replica sent this replica over the peer transport; UNKNOWN,
 * that replica has not sent one yet (it has not dialed this replica since
 * it started), so a real backup cannot be told from a client; MISMATCH, it
 * sent another (or the token is not hex); NO_REPLICA, replica is not the
 * index of another replica of the group. */
enum admit_proof {
    ADMIT_PROOF_OK,
    ADMIT_PROOF_UNKNOWN,
    ADMIT_PROOF_MISMATCH,
    ADMIT_PROOF_NO_REPLICA,
};
/* COHORT.NOFORWARD <replica> <token>: make c a verified forward link if
 * the proof is OK; *id is the replica parsed (0 if not a number). A
 * connection on probation that fails is refused. */
enum admit_proof admit_link(struct conn *c, const struct resp_arg *replica,
                            const struct resp_arg *token, uint64_t *id);
/* Every SERVER_TIMER_MS: probation deadlines and the idle timeout. */
void admit_tick(struct server *s);
/* c is being torn down: uncount it. */
void admit_gone(struct server *s, struct conn *c);

/* ---- tls_port.c */
/* Open the TLS port if --tls-port is set, and the SIGHUP handler. */
int tls_port_open(struct server *s, struct cohort_err *err);
/* Whether --tls-port's certificate files load (nothing kept). */
int tls_port_check(const struct server_config *c, struct cohort_err *err);
void tls_port_close(struct server *s, uv_close_cb on_closed);
/* c was accepted from listener: give it a session if that is the TLS
 * port. Returns false if out of memory. */
bool tls_port_conn_start(struct conn *c, const uv_stream_t *listener);
void tls_port_conn_free(struct conn *c);
/* size bytes of ciphertext arrived in c->tls_rbuf. False: out of memory. */
bool tls_port_feed(struct conn *c, size_t size);
/* Decrypt what the session holds into rbuf; returns the bytes added. On a
 * TLS error the connection is closing. */
size_t tls_port_pull(struct conn *c);
/* Encrypt out's plaintext; out then holds ciphertext (handshake bytes
 * too). False on a TLS error (the connection is closing). */
bool tls_port_seal(struct conn *c);

/* ---- cmd_acl.c */
/* ACL LIST or ACL USERS (argv), from the users in force, into out. */
void acl_query(const struct server *s, uint32_t argc,
               const struct resp_arg *argv, struct resp_buf *out);

/* ---- cmd_store.c */
/* Submit c's queued writes (from the idle handle). */
void store_submit_queued(struct conn *c);
/* c is going away: give back the write cap its slot holds (after
 * node_cancel) and leave the wait list. */
void store_slot_cancelled(struct server *s, struct slot *slot);
void store_conn_gone(struct server *s, struct conn *c);
/* Read the command kept in slot's payload on the linearizable read path
 * (forwarded to the primary from a backup), like GET. */
void store_read_kept(struct conn *c, struct slot *slot);
/* Answer the confirmed read in slot at the primary's log time now, or, if
 * a key it reads expires before that, have the expiry swept and read
 * again. */
void store_answer_read(struct conn *c, struct slot *slot);
/* Parse slot's kept command into s->argv2; returns the count, 0 if out of
 * memory. */
uint32_t store_parse_kept(struct server *s, struct slot *slot);
/* The primary answered a forwarded slot (raw RESP2 bytes); the slot may be
 * an orphan. Frees orphans. */
void store_forward_reply(struct server *s, struct slot *slot, const char *reply,
                         size_t size);
/* A forwarded slot failed without an answer; sent: its command may have
 * reached the primary. Frees orphans. */
/* Run the forwarded slot (bounced by an old primary, or held back by the
 * gate) through the node again, as when it was dispatched: a write with
 * its client id and request number, a read as a read. */
void store_resend(struct conn *c, struct slot *slot);
void store_forward_failed(struct server *s, struct slot *slot, bool sent,
                          const char *why);

/* ---- cmd_txn.c */
/* Whether c is inside MULTI and spec is queued rather than run (all but
 * EXEC, DISCARD, MULTI, WATCH and QUIT). */
bool txn_queues(const struct conn *c, const struct command_spec *spec);
/* Queue a command inside MULTI (checked first; a refusal marks the
 * transaction so that EXEC aborts), answering +QUEUED or the error. */
void txn_queue(struct conn *c, const struct command_spec *spec, uint32_t argc,
               const struct resp_arg *argv);
/* A command was refused (unknown, arity, permission) inside MULTI. */
void txn_refused(struct conn *c);
/* WATCH's slot has its COHORT.REVS reply (RESP2) in slot->reply: record the
 * revisions and answer +OK (or the error it is). */
void txn_watch_done(struct conn *c, struct slot *slot);
/* WATCH's slot is answered with an error: the next EXEC answers nil. */
void txn_watch_failed(struct conn *c, struct slot *slot);
/* Whether every command of the transaction argv (COHORT.TXN or COHORT.EXEC,
 * argv[0] its name) is a store command (one the server knows otherwise,
 * PING, is refused by name) that the user of c may run. On refusal writes
 * it. */
bool txn_commands_allowed(struct conn *c, uint32_t argc,
                          const struct resp_arg *argv,
                          char refusal[AUTH_REFUSAL_MAX]);
/* Free c's queued commands and watched keys. */
void txn_conn_gone(struct conn *c);

/* ---- pubsub.c */
/* Hear of published messages from the node (node_set_publish_hook), and
 * stop. */
void pubsub_open(struct server *s);
/* PUBLISH's reply on this member: the count of its subscriptions that
 * received the message applied at op (0 if it no longer knows). */
uint64_t pubsub_receivers(const struct server *s, uint64_t op);
void pubsub_close(struct server *s);
/* Deliver what behind subscribers have room for (the prepare handle). */
void pubsub_pump_all(struct server *s);
/* c is being torn down: drop its subscriptions. */
void pubsub_conn_gone(struct conn *c);
/* Cut off every subscriber and watcher: each gets the error why (without
 * the '-') after the replies owed, then its connection closes. */
void pubsub_cut_all(struct server *s, const char *why);
/* Whether c may run spec: a RESP2 connection with subscriptions may only
 * (un)subscribe, PING and QUIT, as in Redis. On refusal writes it. */
bool pubsub_command_allowed(struct conn *c, const struct command_spec *spec,
                            char refusal[AUTH_REFUSAL_MAX]);
/* Whether c's output may take a message or event now: not closing, no
 * RESP2 reply owed ahead of it, output under CONN_OUTPUT_SOFT_MAX. */
bool pubsub_has_room(const struct conn *c);
/* Subscribe c to a channel or pattern (bytes borrowed, copied), for the
 * messages after position `after`. Returns 1 if added, 0 if c had it,
 * -COHORT_ENOSPC at PUBSUB_SUBS_PER_CONN_MAX, -COHORT_ENOMEM. */
int pubsub_sub_add(struct conn *c, const char *name, size_t size, bool pattern,
                   uint64_t after);
/* Drop c's newest subscriptions until it holds count (pubsub_sub_add()
 * appends): how a (P)SUBSCRIBE that did not fit takes back its own. */
void pubsub_sub_truncate(struct conn *c, uint32_t count);
/* Unsubscribe; returns whether c had it. */
bool pubsub_sub_remove(struct conn *c, const char *name, size_t size,
                       bool pattern);
/* c (which has subscriptions) is delivered the messages from position
 * `from` on out of the history (COHORT.SUBSCRIBE FROM). */
void pubsub_start_behind(struct conn *c, uint64_t from);
/* PING on a RESP2 connection with subscriptions: ["pong", arg or ""].
 * Returns false (nothing written) on any other connection. */
bool pubsub_ping(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv);

/* ---- cmd_admin.c */
/* This process's resident set in bytes (/proc/self/statm); 0 if unknown. */
uint64_t admin_process_rss(void);

/* ---- command.c */
/* Count the store command spec for the slot the running handler pushes
 * next (COHORT.REQ counts the command it wraps). */
void command_count_as(struct conn *c, const struct command_spec *spec);

/* ---- exporter.c */
/* Open the metrics port (config.metrics_addr), or do nothing if unset. */
int exporter_open(struct server *s, struct cohort_err *err);
void exporter_close(struct server *s);

/* ---- expiry_sweep.c */
void expiry_sweep_init(struct server *s);
/* Propose the next batch of due keys if this member is the primary and no
 * batch is in flight; on the timer, after each batch, and when a read
 * waits for an expiry to commit. */
void expiry_sweep_run(struct server *s);
/* Cancel the batch in flight (server_close). */
void expiry_sweep_close(struct server *s);

/* ---- view_announce.c */
void view_announce_init(struct server *s);
/* Announce this member's view if it leads one not yet announced and no
 * announcement is in flight (on the timer). */
void view_announce_run(struct server *s);
void view_announce_close(struct server *s);

/* ---- incarnation.c */
void incarnation_init(struct server *s);
/* Hand the store's incarnation to the node; propose one if this member is
 * a caught-up primary and the store has none (on the timer). */
void incarnation_run(struct server *s);
void incarnation_close(struct server *s);

/* ---- session_sweep.c */
void session_sweep_init(struct server *s);
/* Propose this view's EXTEND, then the next batch of due sessions, if this
 * member is the primary and no op is in flight; on the timer and after
 * each op. */
void session_sweep_run(struct server *s);
void session_sweep_close(struct server *s);

/* ---- forward.c */
/* Send slot's payload to replica `primary` (as COHORT.REQ for a write that
 * carries ids). On a failure that is certain at once (no address, backoff)
 * returns false and the caller answers -TRYAGAIN. */
bool forward_send(struct server *s, struct slot *slot, uint32_t primary);
/* The slot's connection closed: the reply, when it comes, is dropped. */
void forward_orphan(struct slot *slot);
void forward_flush_all(struct server *s);
/* The prepare handle: when slots are held back and the view moved, put
 * their connections on the resume list. */
void forward_prepare(struct server *s);
/* The idle handle, before anything else of c runs: re-send or release
 * c's held-back slots, in order, as far as the gate allows. */
void forward_release(struct conn *c);
/* c is being torn down: its held-back slots are freed with it. */
void forward_conn_gone(struct server *s, struct conn *c);
/* Whether this replica is a backup of a normal view (its new commands are
 * forwarded at once). */
bool forward_backup_normal(const struct server *s);
void forward_tick(struct server *s);
void forward_close_all(struct server *s);

/* A HELP reply: the lines as an array of simple strings (cmd_admin.c). */
void write_help(struct resp_buf *out, const char *const *lines, size_t n);

#endif
