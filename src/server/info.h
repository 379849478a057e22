/* info — the text of INFO: "# Section" headers and "field:value" lines
 * separated by CRLF, as Redis writes them, from a snapshot of the node's
 * status, the store's statistics and the server's counters.
 *
 * Sections: server, clients, memory, replication, persistence, stats,
 * keyspace.
 * Redis's words where Redis has the field (connected_clients,
 * total_commands_processed, db0:keys=...); the protocol's words where it
 * has none (role:primary|backup, view, commit_op, member<i>:...).
 *
 * Pure: no sockets, no node, no clock. Unit-tested in
 * tests/unit/server_info_test.c.
 */
#ifndef COHORT_SERVER_INFO_H
#define COHORT_SERVER_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"
#include "kv/kv.h"
#include "runtime/node.h"

#define INFO_SERVER 0x01u
#define INFO_CLIENTS 0x02u
#define INFO_REPLICATION 0x04u
#define INFO_PERSISTENCE 0x08u
#define INFO_STATS 0x10u
#define INFO_KEYSPACE 0x20u
#define INFO_MEMORY 0x40u
#define INFO_ALL 0x7fu

/* The Redis API level whose commands and error texts cohort follows; some
 * clients read redis_version to decide which commands they may send. */
#define INFO_REDIS_VERSION "7.0.0"

struct info_input {
    const struct node_status *status;
    const struct kv_stats *kv;
    /* Server. */
    const char *version;
    uint64_t cluster_id;
    uint64_t incarnation; /* the group's, 0 while not known */
    int64_t process_id;
    uint16_t tcp_port;
    uint64_t uptime_s;
    /* Clients. */
    uint32_t connected_clients;
    uint32_t connected_forward_links; /* verified links from backups */
    uint32_t maxclients;
    /* Memory: the store's accounted bytes (kv_used_memory(), what maxmemory
     * limits), the process's resident set, and the limit (0: none). */
    uint64_t used_memory;
    uint64_t used_memory_rss;
    uint64_t maxmemory;
    /* Stats. */
    uint64_t connections_received;
    uint64_t connections_rejected;
    uint64_t connections_timed_out;
    uint64_t commands_processed;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t output_limit_closes;
    uint64_t forwarded_commands;
    uint64_t forward_failures;
    uint64_t forward_link_writes; /* socket writes on forward links */
    /* Forwarded commands an old primary bounced ("not the primary"), those
     * re-sent to the new one, those answered -TRYAGAIN after all, and
     * commands held behind an earlier one of their connection (forward.c). */
    uint64_t forward_bounced;
    uint64_t forward_resent;
    uint64_t forward_resend_failed;
    uint64_t forward_gated;
    uint64_t session_renewals;
    /* Expiry: EXPIRE_DUE ops this member proposed as primary. */
    uint64_t expire_ops_proposed;
    uint64_t expire_clock_ops; /* of those, clock ticks on an idle log */
    /* The TLS port: its port (0: none), reloads on SIGHUP, failures. */
    uint16_t tls_port;
    uint64_t tls_reloads;
    uint64_t tls_failures;
    /* Pub/sub: subscribed connections, messages written to them,
     * subscribers cut off, and the retained history (kv/history.h). */
    uint32_t pubsub_clients;
    uint64_t pubsub_messages_delivered;
    uint64_t pubsub_subscribers_cut;
    uint64_t pubsub_history_messages;
    uint64_t pubsub_history_bytes;
    uint64_t pubsub_history_floor;
    /* Watches (watch.h): connections with a watch, events written to
     * them, watchers cut off, and the retained changes (kv/changes.h). */
    uint32_t watch_clients;
    uint64_t watch_events_delivered;
    uint64_t watch_watchers_cut;
    uint32_t lock_waits;
    uint64_t lock_waits_granted;
    uint64_t lock_waits_timed_out;
    uint64_t backup_read_rounds;
    uint64_t backup_reads_served;
    uint64_t backup_reads_forwarded;
    uint64_t reads_paced;          /* confirmed reads held for a later turn */
    uint64_t read_pace_turns;      /* turns that used up the reply budget */
    uint64_t read_pace_conn_waits; /* connections held to a later turn */
    uint64_t read_pace_feed_waits; /* deliveries held to a later turn */
    uint64_t watch_history_events;
    uint64_t watch_history_bytes;
    uint64_t watch_history_floor;
    /* Operations (cmd_transfer.c, cmd_rejuvenate.c): this process's random
     * run id (new at every start, also after COHORT.REJUVENATE), whether a
     * transfer this replica accepted is still under way and to whom,
     * whether it is about to re-execute, and its latest view changes
     * (oldest first, at most INFO_VIEW_HISTORY shown). */
    uint64_t run_id;
    bool transfer_in_progress;
    uint32_t transfer_target;
    bool rejuvenating;
    const char *rejuvenation; /* a rolling restart's note; "" or NULL: none */
    uint32_t view_history_count;
    const struct node_view_record *view_history;
    /* Membership changes this replica took part in (replica_stats): epochs
     * entered here, and as a primary voters replaced by spares and spares
     * added as learners. */
    uint64_t epochs_entered, replacements, spares_added;
    /* State transfer: compactions a snapshot being sent held back, pins cut
     * short by the log's room, second senders told to stop. */
    uint64_t compactions_pinned, pins_overrun, snapshot_stops;
};

#define INFO_VIEW_HISTORY 8u

/* The sections named by INFO's arguments (argv[1..argc-1]; none: the
 * default set, which is every section). "all", "everything" and "default"
 * name every section; unknown names add nothing, as in Redis. */
unsigned info_sections(uint32_t argc, const struct resp_arg *argv);

/* This replica's role word: "primary" or "backup" in a normal view,
 * "view_change" or "recovering" otherwise; "removed" once a membership
 * change took it out of the group, "outside" while outside the membership
 * without having been in it (a spare, an id not yet added). */
const char *info_role(const struct node_status *status);

/* Member i's health as this replica knows it: "self", "ok", "suspected",
 * or "unknown" for a member it does not hear from in its current status
 * (INFO replication's member<i> health; see README). */
const char *info_member_health(const struct node_status *status, uint32_t i);

/* Bytes as Redis's INFO writes them for humans: "512B", "1.50K", "2.00M",
 * "1.00G" (powers of 1024). */
void info_bytes_human(uint64_t bytes, char *out, size_t size);

/* Append the text of the chosen sections to text (raw bytes; the caller
 * sends them as one bulk or verbatim string). */
void info_format(struct resp_buf *text, const struct info_input *in,
                 unsigned sections);

#endif
