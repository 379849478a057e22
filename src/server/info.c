/* info — INFO's text. See info.h. */
#include "server/info.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "runtime/view_log.h"
#include "server/command.h"

#define INFO_LINE_MAX 512

__attribute__((format(printf, 2, 3))) static void line(struct resp_buf *t,
                                                       const char *fmt, ...)
{
    char text[INFO_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text) - 2, fmt, ap);
    va_end(ap);
    ASSERT(n >= 0);
    size_t size = (size_t)n < sizeof(text) - 2 ? (size_t)n : sizeof(text) - 3;
    text[size] = '\r';
    text[size + 1] = '\n';
    resp_write_raw(t, text, size + 2);
}

unsigned info_sections(uint32_t argc, const struct resp_arg *argv)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        {"server", INFO_SERVER},
        {"clients", INFO_CLIENTS},
        {"replication", INFO_REPLICATION},
        {"persistence", INFO_PERSISTENCE},
        {"stats", INFO_STATS},
        {"keyspace", INFO_KEYSPACE},
        {"memory", INFO_MEMORY},
        {"all", INFO_ALL},
        {"everything", INFO_ALL},
        {"default", INFO_ALL},
    };
    if (argc <= 1)
        return INFO_ALL;
    unsigned sections = 0;
    for (uint32_t i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (command_word_is(&argv[i], names[k].name))
                sections |= names[k].bit;
    return sections;
}

const char *info_role(const struct node_status *status)
{
    /* Before "recovering": it is not catching up, and never will be until
     * an epoch names it (it stays RECOVERING in the core meanwhile). */
    if (status->diverged_op)
        return "stopped"; /* a divergence (docs/OPERATIONS.md) */
    if (status->left)
        return "removed";
    if (status->removed)
        return "outside";
    if (status->status == STATUS_RECOVERING)
        return "recovering";
    if (status->status == STATUS_VIEW_CHANGE)
        return "view_change";
    return status->primary == status->self ? "primary" : "backup";
}

static const char *addr_or_unknown(const struct node_status *st, uint32_t i)
{
    return st->client_addr[i] ? st->client_addr[i] : "?";
}

/* A member's health as this replica knows it. The failure detector is fed
 * by what a replica hears, and in a normal view a replica hears only from
 * the primary (a backup) or from every backup (the primary): its opinion of
 * anyone else is only how long ago the last view change was, so for them
 * the answer is "unknown". Outside a normal view nobody's silence means
 * much (votes and view changes are sporadic), so every peer is "unknown"
 * too. */
const char *info_member_health(const struct node_status *st, uint32_t i)
{
    if (i == st->self)
        return "self";
    bool hears = st->status == STATUS_NORMAL &&
                 (st->self == st->primary || i == st->primary);
    if (!hears)
        return "unknown";
    return st->peer_suspected[i] ? "suspected" : "ok";
}

static void section_server(struct resp_buf *t, const struct info_input *in)
{
    line(t, "# Server");
    line(t, "cohort_version:%s", in->version);
    line(t, "redis_version:%s", INFO_REDIS_VERSION);
    line(t, "redis_mode:standalone");
    line(t, "arch_bits:%u", (unsigned)(sizeof(void *) * 8));
    line(t, "process_id:%" PRId64, in->process_id);
    line(t, "tcp_port:%u", (unsigned)in->tcp_port);
    line(t, "run_id:%016" PRIx64, in->run_id);
    line(t, "uptime_in_seconds:%" PRIu64, in->uptime_s);
    line(t, "uptime_in_days:%" PRIu64, in->uptime_s / 86400);
    line(t, "cluster_id:%016" PRIx64, in->cluster_id);
    line(t, "cluster_incarnation:%016" PRIx64, in->incarnation);
    line(t, "replica_index:%u", in->status->self);
    line(t, "replica_count:%u", in->status->replica_count);
}

static void section_clients(struct resp_buf *t, const struct info_input *in)
{
    line(t, "# Clients");
    line(t, "connected_clients:%u", in->connected_clients);
    line(t, "connected_forward_links:%u", in->connected_forward_links);
    line(t, "maxclients:%u", in->maxclients);
    line(t, "blocked_clients:0");
}

/* Each member line ends with ",snapshot_sent=<bytes>,snapshot_size=<bytes>"
 * while this replica sends it a snapshot (state transfer).
 * member<i>:addr=<client address>,peer=<peer
 * address>,role=primary|backup|learner|outside (outside: not in the epoch's
 * membership, a spare or removed),health=<see
 * member_health>,link=up|down[,op=<n>,lag=<n>]. link is this replica's own
 * peer connection to the member (a frozen process keeps it up); op and lag
 * only from a primary in a normal view: the highest op the member has
 * durably acknowledged in this view, and how far that is behind commit_op. */
static const char *peer_or_unknown(const struct node_status *st, uint32_t i)
{
    return st->peer_addr[i] ? st->peer_addr[i] : "?";
}

static const char *member_role(const struct node_status *st, uint32_t i)
{
    if (membership_is_learner(&st->membership, i))
        return "learner";
    if (!membership_is_voter(&st->membership, i))
        return "outside";
    return i == st->primary ? "primary" : "backup";
}

static void member_line(struct resp_buf *t, const struct node_status *st,
                        uint32_t i, bool primary_view)
{
    const char *role = member_role(st, i);
    const char *addr = addr_or_unknown(st, i);
    if (i == st->self) {
        line(t, "member%u:addr=%s,peer=%s,role=%s,health=self", i, addr,
             peer_or_unknown(st, i), role);
        return;
    }
    const char *health = info_member_health(st, i);
    const char *link = st->peer_connected[i] ? "up" : "down";
    if (!primary_view) {
        line(t, "member%u:addr=%s,peer=%s,role=%s,health=%s,link=%s", i, addr,
             peer_or_unknown(st, i), role, health, link);
        return;
    }
    uint64_t lag =
        st->commit > st->peer_op[i] ? st->commit - st->peer_op[i] : 0;
    char transfer[64] = "";
    if (st->transfer.sending_size[i])
        snprintf(transfer, sizeof(transfer),
                 ",snapshot_sent=%" PRIu64 ",snapshot_size=%" PRIu64,
                 st->transfer.sending_offset[i], st->transfer.sending_size[i]);
    line(t,
         "member%u:addr=%s,peer=%s,role=%s,health=%s,link=%s,op=%" PRIu64
         ",lag=%" PRIu64 "%s",
         i, addr, peer_or_unknown(st, i), role, health, link, st->peer_op[i],
         lag, transfer);
}

void info_bytes_human(uint64_t bytes, char *out, size_t size)
{
    static const char units[] = "KMGTPE";
    if (bytes < 1024) {
        snprintf(out, size, "%" PRIu64 "B", bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) - 1) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, size, "%.2f%c", v, units[u]);
}

/* Redis's field names. used_memory is the store's accounted memory, the
 * same on every replica with the same data (what maxmemory compares); RSS
 * is the whole process (log buffers, client buffers, allocator slack). */
static void section_memory(struct resp_buf *t, const struct info_input *in)
{
    char used[32], rss[32], max[32];
    info_bytes_human(in->used_memory, used, sizeof(used));
    info_bytes_human(in->used_memory_rss, rss, sizeof(rss));
    info_bytes_human(in->maxmemory, max, sizeof(max));
    line(t, "# Memory");
    line(t, "used_memory:%" PRIu64, in->used_memory);
    line(t, "used_memory_human:%s", used);
    line(t, "used_memory_rss:%" PRIu64, in->used_memory_rss);
    line(t, "used_memory_rss_human:%s", rss);
    line(t, "maxmemory:%" PRIu64, in->maxmemory);
    line(t, "maxmemory_human:%s", max);
    line(t, "maxmemory_policy:noeviction");
}

/* transfer_in_progress, rejuvenating, rejuvenation_in_progress (and its
 * note), and view_history:<n> then
 * view_history<k>:view=<v>,primary=<id>,role=<this replica's>,cause=<word,
 * view_log.h>,time_ms=<wall clock> for the latest view notifications,
 * oldest first. */
static void operations(struct resp_buf *t, const struct info_input *in)
{
    line(t, "epochs_entered:%" PRIu64, in->epochs_entered);
    line(t, "spares_replaced_voters:%" PRIu64, in->replacements);
    line(t, "spares_added:%" PRIu64, in->spares_added);
    line(t, "compactions_pinned:%" PRIu64, in->compactions_pinned);
    line(t, "pins_overrun:%" PRIu64, in->pins_overrun);
    line(t, "snapshot_stops:%" PRIu64, in->snapshot_stops);
    line(t, "transfer_in_progress:%d", in->transfer_in_progress ? 1 : 0);
    if (in->transfer_in_progress)
        line(t, "transfer_target:%u", in->transfer_target);
    line(t, "rejuvenating:%d", in->rejuvenating ? 1 : 0);
    bool rolling = in->rejuvenation != NULL && in->rejuvenation[0] != '\0';
    line(t, "rejuvenation_in_progress:%d", rolling ? 1 : 0);
    if (rolling)
        line(t, "rejuvenation_progress:%s", in->rejuvenation);
    uint32_t n = in->view_history_count, first = 0;
    if (n > INFO_VIEW_HISTORY) {
        first = n - INFO_VIEW_HISTORY;
        n = INFO_VIEW_HISTORY;
    }
    line(t, "view_history:%u", n);
    for (uint32_t k = 0; k < n; k++) {
        const struct node_view_record *v = &in->view_history[first + k];
        const char *role = view_role_token(v->role);
        line(t,
             "view_history%u:view=%" PRIu64 ",epoch=%" PRIu64
             ",primary=%u,role=%s,cause=%s,time_ms=%" PRIu64,
             k, v->view, v->epoch, v->primary, role, view_cause_name(v->cause),
             v->wall_ms);
    }
}

/* "<name>:<n>,<key>=<ids joined by '+'>", e.g. epoch:2,voters=0+1+2 (a
 * '+' list keeps the line one comma-separated field list). */
static void list_line(struct resp_buf *t, const char *name, uint32_t n,
                      const char *key, const uint32_t *ids, uint32_t count)
{
    char text[8 * COHORT_REPLICAS_MAX + 64];
    int len = snprintf(text, sizeof(text), "%s:%" PRIu32 ",%s=", name, n, key);
    for (uint32_t k = 0; k < count && k < COHORT_REPLICAS_MAX && len > 0 &&
                         (size_t)len < sizeof(text);
         k++)
        len += snprintf(text + len, sizeof(text) - (size_t)len, "%s%" PRIu32,
                        k ? "+" : "", ids[k]);
    line(t, "%s", text);
}

/* Redis's fields on a replica: master_link_status:down when this backup
 * lost its primary (suspects it, or heard nothing from it for longer than
 * its suspicion timeout), and master_last_io_seconds_ago (-1: never heard
 * from it since start). A lone backup of a group of three stays a backup
 * of its view, as no view change gets the quorum it needs: only these
 * show that it follows nobody. Only on role:backup, like Redis. */
static void primary_link(struct resp_buf *t, const struct node_status *st)
{
    if (strcmp(info_role(st), "backup") != 0)
        return;
    line(t, "master_link_status:%s", st->primary_lost ? "down" : "up");
    int64_t ago_s =
        st->primary_heard_ago_ms < 0 ? -1 : st->primary_heard_ago_ms / 1000;
    line(t, "master_last_io_seconds_ago:%" PRId64, ago_s);
}

static void section_replication(struct resp_buf *t, const struct info_input *in)
{
    const struct node_status *st = in->status;
    bool primary = st->status == STATUS_NORMAL && st->primary == st->self;
    line(t, "# Replication");
    line(t, "role:%s", info_role(st));
    line(t, "view:%" PRIu64, st->view);
    if (st->primary < st->replica_count) {
        line(t, "primary:%s", addr_or_unknown(st, st->primary));
        line(t, "primary_index:%u", st->primary);
    }
    primary_link(t, st);
    line(t, "self_index:%u", st->self);
    list_line(t, "epoch", st->membership.epoch, "voters", st->membership.voters,
              st->membership.voter_count);
    list_line(t, "learners", st->membership.learner_count, "ids",
              st->membership.learners, st->membership.learner_count);
    line(t, "self_member:%s",
         st->removed                                        ? "outside"
         : membership_is_learner(&st->membership, st->self) ? "learner"
                                                            : "voter");
    line(t, "op:%" PRIu64, st->op);
    if (st->transfer.receiving)
        line(t,
             "state_transfer:from=%" PRIu32 ",op=%" PRIu64 ",received=%" PRIu64
             ",size=%" PRIu64,
             st->transfer.receiving_from, st->transfer.receiving_op,
             st->transfer.received, st->transfer.receiving_size);
    line(t, "commit_op:%" PRIu64, st->commit);
    line(t, "applied_op:%" PRIu64, st->applied);
    line(t, "view_changes:%" PRIu64, st->view_changes);
    line(t, "members:%u", st->replica_count);
    for (uint32_t i = 0; i < st->replica_count && i < COHORT_REPLICAS_MAX; i++)
        member_line(t, st, i, primary);
    operations(t, in);
}

static void section_persistence(struct resp_buf *t, const struct info_input *in)
{
    const struct node_status *st = in->status;
    line(t, "# Persistence");
    line(t, "loading:%d", st->status == STATUS_RECOVERING ? 1 : 0);
    line(t, "log_bytes:%" PRIu64, st->log_bytes);
    line(t, "log_memory:%" PRIu64, st->log_memory);
    line(t, "log_memory_used:%" PRIu64, st->log_memory_used);
    line(t, "last_snapshot_op:%" PRIu64, st->snapshot_op);
    line(t, "last_snapshot_time:%" PRIu64, st->snapshot_time_s);
    line(t, "last_sync_latency_us:%" PRIu64, st->last_sync_us);
    line(t, "syncs:%" PRIu64, st->syncs);
    line(t, "disk_status:%s", st->disk_stalled ? "stalled" : "ok");
    line(t, "disk_stalled_since:%" PRIu64,
         st->disk_stalled ? st->disk.since_wall_ms / 1000u : 0);
    line(t, "disk_write_failures:%" PRIu64, st->disk.failures_total);
    line(t, "disk_last_error:%s", st->disk.error);
    line(t, "snapshot_in_progress:%d", st->snapshot_running ? 1 : 0);
    line(t, "snapshot_status:%s", st->snapshots.failures ? "failing" : "ok");
    line(t, "snapshot_failures:%" PRIu64, st->snapshots.failures);
    line(t, "snapshot_failing_since:%" PRIu64,
         st->snapshots.failures ? st->snapshots.since_wall_ms / 1000u : 0);
    line(t, "snapshot_last_error:%s", st->snapshots.error);
}

static void section_stats(struct resp_buf *t, const struct info_input *in)
{
    line(t, "# Stats");
    line(t, "total_connections_received:%" PRIu64, in->connections_received);
    line(t, "total_commands_processed:%" PRIu64, in->commands_processed);
    line(t, "total_net_input_bytes:%" PRIu64, in->net_input_bytes);
    line(t, "total_net_output_bytes:%" PRIu64, in->net_output_bytes);
    /* Redis's name: clients closed for being output-buffer-max behind. */
    line(t, "client_output_buffer_limit_disconnections:%" PRIu64,
         in->output_limit_closes);
    line(t, "rejected_connections:%" PRIu64, in->connections_rejected);
    line(t, "timedout_connections:%" PRIu64, in->connections_timed_out);
    line(t, "forwarded_commands:%" PRIu64, in->forwarded_commands);
    line(t, "forward_failures:%" PRIu64, in->forward_failures);
    line(t, "forward_link_writes:%" PRIu64, in->forward_link_writes);
    line(t, "forward_bounced:%" PRIu64, in->forward_bounced);
    line(t, "forward_resent:%" PRIu64, in->forward_resent);
    line(t, "forward_resend_failed:%" PRIu64, in->forward_resend_failed);
    line(t, "forward_gated:%" PRIu64, in->forward_gated);
    line(t, "session_renewals:%" PRIu64, in->session_renewals);
    line(t, "tls_port:%u", (unsigned)in->tls_port);
    line(t, "tls_certificate_reloads:%" PRIu64, in->tls_reloads);
    line(t, "tls_connection_failures:%" PRIu64, in->tls_failures);
    line(t, "peer_messages_invalid:%" PRIu64, in->status->messages_invalid);
    line(t, "peer_views_refused:%" PRIu64, in->status->views_refused);
    line(t, "diverged_op:%" PRIu64, in->status->diverged_op);
    if (in->status->diverged_op)
        line(t, "diverged_from:%" PRIu32, in->status->diverged_from);
    line(t, "peer_divergences:%" PRIu64, in->status->divergences);
    line(t, "peer_auth:%s",
         in->status->peer_auth ? in->status->peer_auth : "none");
    line(t, "peer_connections_refused:%" PRIu64,
         in->status->peer_connections_refused);
    line(t, "peer_connections_evicted:%" PRIu64,
         in->status->peer_connections_evicted);
    line(t, "peer_frames_rejected:%" PRIu64, in->status->peer_frames_rejected);
    line(t, "peer_messages_wrong_sender:%" PRIu64,
         in->status->peer_messages_wrong_sender);
    line(t, "snapshot_chunks_refused:%" PRIu64,
         in->status->snapshot_chunks_refused);
    line(t, "pubsub_clients:%u", (unsigned)in->pubsub_clients);
    line(t, "pubsub_messages_delivered:%" PRIu64,
         in->pubsub_messages_delivered);
    line(t, "pubsub_subscribers_cut:%" PRIu64, in->pubsub_subscribers_cut);
    line(t, "pubsub_history_messages:%" PRIu64, in->pubsub_history_messages);
    line(t, "pubsub_history_bytes:%" PRIu64, in->pubsub_history_bytes);
    line(t, "pubsub_history_floor:%" PRIu64, in->pubsub_history_floor);
    line(t, "watch_clients:%u", (unsigned)in->watch_clients);
    line(t, "watch_events_delivered:%" PRIu64, in->watch_events_delivered);
    line(t, "watch_watchers_cut:%" PRIu64, in->watch_watchers_cut);
    line(t, "lock_waits:%u", (unsigned)in->lock_waits);
    line(t, "lock_waits_granted:%" PRIu64, in->lock_waits_granted);
    line(t, "lock_waits_timed_out:%" PRIu64, in->lock_waits_timed_out);
    line(t, "backup_read_rounds:%" PRIu64, in->backup_read_rounds);
    line(t, "backup_reads_served:%" PRIu64, in->backup_reads_served);
    line(t, "backup_reads_forwarded:%" PRIu64, in->backup_reads_forwarded);
    line(t, "reads_paced:%" PRIu64, in->reads_paced);
    line(t, "read_pace_turns:%" PRIu64, in->read_pace_turns);
    line(t, "read_pace_conn_waits:%" PRIu64, in->read_pace_conn_waits);
    line(t, "read_pace_feed_waits:%" PRIu64, in->read_pace_feed_waits);
    line(t, "watch_history_events:%" PRIu64, in->watch_history_events);
    line(t, "watch_history_bytes:%" PRIu64, in->watch_history_bytes);
    line(t, "watch_history_floor:%" PRIu64, in->watch_history_floor);
    line(t, "store_keys:%" PRIu64, in->kv->key_count);
    line(t, "store_data_bytes:%" PRIu64, in->kv->data_size);
    line(t, "store_memory_bytes:%" PRIu64, in->kv->memory_size);
    line(t, "store_slots:%" PRIu64, in->kv->slot_count);
    line(t, "store_malformed_ops:%" PRIu64, in->kv->malformed_ops);
    line(t, "expired_keys:%" PRIu64, in->kv->expired_keys);
    line(t, "expire_ops_proposed:%" PRIu64, in->expire_ops_proposed);
    line(t, "expire_clock_ops:%" PRIu64, in->expire_clock_ops);
    line(t, "sessions:%" PRIu64, in->kv->session_count);
    line(t, "sessions_expired:%" PRIu64, in->kv->sessions_expired);
    line(t, "locks:%" PRIu64, in->kv->lock_count);
    line(t, "groups:%" PRIu64, in->kv->group_count);
    line(t, "loop_stalls:%" PRIu64, in->status->loop_stalls);
    line(t, "loop_stalled_ms:%" PRIu64, in->status->loop_stalled_ms);
}

static void section_keyspace(struct resp_buf *t, const struct info_input *in)
{
    line(t, "# Keyspace");
    if (in->kv->key_count > 0)
        line(t, "db0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0",
             in->kv->key_count, in->kv->expires_count);
}

void info_format(struct resp_buf *text, const struct info_input *in,
                 unsigned sections)
{
    ASSERT(in->status != NULL);
    ASSERT(in->kv != NULL);
    typedef void (*section_fn)(struct resp_buf *, const struct info_input *);
    static const struct {
        unsigned bit;
        section_fn fn;
    } order[] = {
        {INFO_SERVER, section_server},
        {INFO_CLIENTS, section_clients},
        {INFO_MEMORY, section_memory},
        {INFO_REPLICATION, section_replication},
        {INFO_PERSISTENCE, section_persistence},
        {INFO_STATS, section_stats},
        {INFO_KEYSPACE, section_keyspace},
    };
    bool first = true;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(sections & order[i].bit))
            continue;
        if (!first)
            resp_write_raw(text, "\r\n", 2);
        first = false;
        order[i].fn(text, in);
    }
}
