/* exporter — the metrics port (--metrics-port): an HTTP endpoint
 * (runtime/http) on the replica's own loop that serves
 *
 *   /metrics      Prometheus text: commands by outcome and their latency,
 *                 fsync rounds and batch sizes, views and their causes, the
 *                 failure detector, per-member lag, snapshots, memory,
 *                 connections, peer links (docs/OPERATIONS.md lists them);
 *   /status.json  this replica's view of the group, for the status page;
 *   /             the status page (server/status_page.c).
 *
 * Everything is read when a request arrives, from counters the server,
 * the node and the storage thread keep anyway: a scrape costs the loop a
 * few tens of microseconds and the hot path nothing. Names follow
 * Prometheus's conventions: a cohort_ prefix, the unit in the name
 * (_seconds, _bytes, _ops), _total on counters. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/assert.h"
#include "core/detector.h"
#include "runtime/http.h"
#include "runtime/prom.h"
#include "runtime/view_log.h"
#include "server/command.h"
#include "server/info.h"
#include "server/internal.h"
#include "server/status_page.h"

/* Histogram ranges, as powers of two of the recorded unit. */
#define LATENCY_K_FIRST 4u   /* 16 us */
#define LATENCY_K_LAST 24u   /* 16.8 s */
#define ROUND_K_FIRST 4u     /* 16 us */
#define ROUND_K_LAST 24u     /* 16.8 s */
#define SNAPSHOT_K_FIRST 10u /* 1 ms */
#define SNAPSHOT_K_LAST 32u  /* 72 min */
#define BATCH_OPS_K_LAST 12u /* 4096 entries */
#define BATCH_BYTES_K_FIRST 6u
#define BATCH_BYTES_K_LAST 26u /* 64 MiB */
#define US 1e-6

/* What one request reads, once. */
struct snapshot {
    struct node_status st;
    struct node_metrics nm;
    struct kv_stats kv;
};

static void gather(struct server *s, struct snapshot *g)
{
    node_status(s->node, &g->st);
    node_metrics(s->node, &g->nm);
    kv_stats(node_kv(s->node), &g->kv);
}

static void labels1(char *out, size_t size, const char *name, const char *value)
{
    out[0] = '\0';
    prom_label(out, size, name, value);
}

static void labels_member(char *out, size_t size, uint32_t i)
{
    char id[16];
    snprintf(id, sizeof(id), "%u", i);
    labels1(out, size, "member", id);
}

/* ------------------------------------------------------------ /metrics */

static void gauge(struct resp_buf *out, const char *name, const char *help,
                  uint64_t value)
{
    prom_family(out, name, "gauge", help);
    prom_u64(out, name, NULL, value);
}

static void counter(struct resp_buf *out, const char *name, const char *help,
                    uint64_t value)
{
    prom_family(out, name, "counter", help);
    prom_u64(out, name, NULL, value);
}

static void metrics_process(struct resp_buf *out, struct server *s,
                            const struct snapshot *g)
{
    char labels[PROM_LABELS_MAX], text[32];
    labels1(labels, sizeof(labels), "version", COHORT_VERSION);
    snprintf(text, sizeof(text), "%016" PRIx64, s->node_config.cluster_id);
    prom_label(labels, sizeof(labels), "cluster_id", text);
    snprintf(text, sizeof(text), "%u", g->st.self);
    prom_label(labels, sizeof(labels), "replica", text);
    prom_family(out, "cohort_build_info", "gauge",
                "Always 1; the labels say which cohort, cluster and replica");
    prom_u64(out, "cohort_build_info", labels, 1);
    gauge(out, "cohort_uptime_seconds", "Seconds since this replica started",
          (server_now_ms(s) - s->started_ms) / 1000u);
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
              ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * US;
    prom_family(out, "cohort_process_cpu_seconds_total", "counter",
                "CPU time of this process, user and system");
    prom_double(out, "cohort_process_cpu_seconds_total", NULL, cpu);
    gauge(out, "cohort_process_resident_memory_bytes",
          "Resident set of this process", admin_process_rss());
    gauge(out, "cohort_memory_used_bytes",
          "The store's accounted memory (INFO used_memory, what maxmemory "
          "limits)",
          kv_used_memory(node_kv(s->node)));
    gauge(out, "cohort_maxmemory_bytes", "The maxmemory limit (0: none)",
          s->config.maxmemory);
    gauge(out, "cohort_keys", "Keys in the store", g->kv.key_count);
}

static void metrics_connections(struct resp_buf *out, struct server *s)
{
    gauge(out, "cohort_connected_clients", "Client connections",
          s->client_count + s->probation_count);
    gauge(out, "cohort_connected_forward_links",
          "Verified forward links from backups", s->link_count);
    gauge(out, "cohort_max_clients", "The max-clients limit",
          s->config.connections_max);
    counter(out, "cohort_connections_received_total",
            "Client connections accepted", s->stats.connections_received);
    counter(out, "cohort_connections_rejected_total",
            "Connections refused over a client limit",
            s->stats.connections_rejected);
    counter(out, "cohort_connections_timed_out_total",
            "Clients closed by --timeout", s->stats.connections_timed_out);
    counter(out, "cohort_net_input_bytes_total", "Bytes read from clients",
            s->stats.net_input_bytes);
    counter(out, "cohort_net_output_bytes_total", "Bytes written to clients",
            s->stats.net_output_bytes);
    counter(out, "cohort_forwarded_commands_total",
            "Commands this backup forwarded to the primary",
            s->stats.forwarded);
    counter(out, "cohort_forward_failures_total",
            "Forwarded commands that failed without the primary's answer",
            s->stats.forward_failures);
}

static void metrics_commands(struct resp_buf *out, struct server *s)
{
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    char labels[PROM_LABELS_MAX];
    prom_family(out, "cohort_commands_total", "counter",
                "Commands answered, by command and outcome (ok, err, "
                "tryagain, unknown, oom, noauth, noperm)");
    for (size_t i = 0; i < count; i++) {
        const struct metrics_command *m = &s->metrics.commands[i];
        for (uint32_t o = 0; o < METRICS_OUTCOMES; o++) {
            if (m->outcomes[o] == 0)
                continue;
            labels1(labels, sizeof(labels), "command", table[i].name);
            prom_label(labels, sizeof(labels), "outcome",
                       metrics_outcome_name(o));
            prom_u64(out, "cohort_commands_total", labels, m->outcomes[o]);
        }
    }
    counter(out, "cohort_commands_unknown_total",
            "Commands whose name is not a cohort command",
            s->metrics.unknown_commands);
    prom_family(out, "cohort_command_duration_seconds", "histogram",
                "From dispatch to a complete reply (a write: committed on a "
                "majority and applied), by command");
    for (size_t i = 0; i < count; i++) {
        const struct metrics_command *m = &s->metrics.commands[i];
        if (m->latency_us.count == 0)
            continue;
        labels1(labels, sizeof(labels), "command", table[i].name);
        prom_histogram(out, "cohort_command_duration_seconds", labels,
                       &m->latency_us, LATENCY_K_FIRST, LATENCY_K_LAST, US);
    }
}

static void role_gauges(struct resp_buf *out, const struct node_status *st)
{
    static const char *const roles[] = {"primary",    "backup",  "view_change",
                                        "recovering", "removed", "outside",
                                        "stopped"};
    const char *role = info_role(st);
    char labels[PROM_LABELS_MAX];
    prom_family(out, "cohort_role", "gauge",
                "1 for this replica's role, 0 for the others");
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        labels1(labels, sizeof(labels), "role", roles[i]);
        prom_u64(out, "cohort_role", labels, strcmp(role, roles[i]) == 0);
    }
}

static void metrics_replication(struct resp_buf *out, const struct snapshot *g)
{
    const struct node_status *st = &g->st;
    role_gauges(out, st);
    gauge(out, "cohort_view", "The current view", st->view);
    gauge(out, "cohort_primary",
          "The primary of the current view (replica "
          "index)",
          st->primary);
    gauge(out, "cohort_op", "The highest op in this replica's log", st->op);
    gauge(out, "cohort_commit_op", "The highest op known committed",
          st->commit);
    gauge(out, "cohort_applied_op", "The highest op applied to the store",
          st->applied);
    counter(out, "cohort_ops_committed_total", "Ops this replica saw committed",
            g->nm.core.ops_committed);
    counter(out, "cohort_views_started_total",
            "Views this replica started as primary", st->view_changes);
    char labels[PROM_LABELS_MAX];
    prom_family(out, "cohort_view_changes_total", "counter",
                "Views this replica entered as primary or backup, by why it "
                "left the view before (suspected, lost_quorum, votes, "
                "timeout, recovery, learned, transfer)");
    for (uint32_t c = 0; c < NODE_VIEW_CAUSES; c++) {
        labels1(labels, sizeof(labels), "cause", view_cause_name(c));
        prom_u64(out, "cohort_view_changes_total", labels,
                 g->nm.view_changes[c]);
    }
    counter(out, "cohort_peer_messages_invalid_total",
            "Peer messages dropped as invalid", g->nm.core.messages_invalid);
    counter(out, "cohort_requests_duplicate_total",
            "Retried requests answered from the client table",
            g->nm.core.requests_duplicate);
    counter(out, "cohort_reads_served_total", "Linearizable reads served",
            g->nm.core.reads_served);
    counter(out, "cohort_state_transfers_total",
            "State transfers this replica asked for",
            g->nm.core.state_transfers);
}

/* What was refused at the peer port: forged, unauthenticated or misrouted
 * traffic (INFO stats' peer_* lines). */
static void metrics_peer_refusals(struct resp_buf *out,
                                  const struct snapshot *g)
{
    const struct node_status *st = &g->st;
    counter(out, "cohort_peer_views_refused_total",
            "Peer messages dropped for a view too far ahead",
            st->views_refused);
    counter(out, "cohort_peer_frames_rejected_total",
            "Peer frames rejected (bad MAC or checksum)",
            st->peer_frames_rejected);
    counter(out, "cohort_peer_messages_wrong_sender_total",
            "Peer messages naming a sender other than their link's replica",
            st->peer_messages_wrong_sender);
    counter(out, "cohort_snapshot_chunks_refused_total",
            "Snapshot chunks nobody asked for, or over the size cap",
            st->snapshot_chunks_refused);
}

/* Time the event loop could not run (runtime/run_clock): on a saturated
 * machine, the cause of false suspicions and slow replies. */
static void metrics_loop(struct resp_buf *out, const struct snapshot *g)
{
    counter(out, "cohort_loop_stalls_total",
            "Times the event loop could not run for over 50 ms",
            g->st.loop_stalls);
    prom_family(out, "cohort_loop_stalled_seconds_total", "counter",
                "Time beyond 50 ms per stall the event loop could not run");
    prom_double(out, "cohort_loop_stalled_seconds_total", NULL,
                (double)g->st.loop_stalled_ms / 1000.0);
}

static bool primary_view(const struct node_status *st)
{
    return st->status == STATUS_NORMAL && st->primary == st->self;
}

/* A backup's view of its primary, as INFO replication's master_link_status
 * and master_last_io_seconds_ago; no sample on other roles. */
static void metrics_primary_link(struct resp_buf *out,
                                 const struct node_status *st)
{
    bool backup = strcmp(info_role(st), "backup") == 0;
    prom_family(out, "cohort_primary_link_up", "gauge",
                "1 if this backup hears from its primary, 0 if it lost it "
                "(reported by backups only)");
    if (backup)
        prom_u64(out, "cohort_primary_link_up", NULL,
                 st->primary_lost ? 0u : 1u);
    prom_family(out, "cohort_primary_last_io_seconds", "gauge",
                "Seconds since this backup last heard from its primary "
                "(backups that heard from it only)");
    if (backup && st->primary_heard_ago_ms >= 0)
        prom_double(out, "cohort_primary_last_io_seconds", NULL,
                    (double)st->primary_heard_ago_ms / 1000.0);
}

/* Per member: link, suspicion, and (on the primary) acknowledged op and
 * lag, as INFO replication's member lines. */
static void metrics_members(struct resp_buf *out, const struct snapshot *g)
{
    const struct node_status *st = &g->st;
    char labels[PROM_LABELS_MAX];
    prom_family(out, "cohort_member_lag_ops", "gauge",
                "commit_op minus the op the member durably acknowledged "
                "(reported by the primary only)");
    if (primary_view(st)) {
        for (uint32_t i = 0; i < st->replica_count; i++) {
            uint64_t lag = i == st->self || st->commit <= st->peer_op[i]
                               ? 0
                               : st->commit - st->peer_op[i];
            labels_member(labels, sizeof(labels), i);
            prom_u64(out, "cohort_member_lag_ops", labels, lag);
        }
    }
    prom_family(out, "cohort_member_link_up", "gauge",
                "1 if this replica's peer connection to the member is up");
    for (uint32_t i = 0; i < st->replica_count; i++) {
        if (i == st->self)
            continue;
        labels_member(labels, sizeof(labels), i);
        prom_u64(out, "cohort_member_link_up", labels, st->peer_connected[i]);
    }
    prom_family(out, "cohort_member_suspected", "gauge",
                "1 if the failure detector suspects the member now (only "
                "for members this replica hears from in its view: the "
                "primary about its backups, a backup about the primary)");
    for (uint32_t i = 0; i < st->replica_count; i++) {
        const char *health = info_member_health(st, i);
        if (strcmp(health, "ok") != 0 && strcmp(health, "suspected") != 0)
            continue;
        labels_member(labels, sizeof(labels), i);
        prom_u64(out, "cohort_member_suspected", labels, st->peer_suspected[i]);
    }
    metrics_primary_link(out, st);
}

static void member_family(struct resp_buf *out, const struct snapshot *g,
                          const char *name, const char *type, const char *help,
                          size_t offset)
{
    char labels[PROM_LABELS_MAX];
    prom_family(out, name, type, help);
    for (uint32_t i = 0; i < g->st.replica_count; i++) {
        if (i == g->st.self)
            continue;
        uint64_t v;
        memcpy(&v, (const char *)&g->nm.peers[i] + offset, sizeof(v));
        labels_member(labels, sizeof(labels), i);
        prom_u64(out, name, labels, v);
    }
}

static void metrics_detector(struct resp_buf *out, const struct snapshot *g)
{
    member_family(out, g, "cohort_detector_suspicions_total", "counter",
                  "Times the failure detector began suspecting the member",
                  offsetof(struct node_peer_metrics, suspicions));
    member_family(out, g, "cohort_detector_false_suspicions_total", "counter",
                  "Suspicions that ended with a message from the member",
                  offsetof(struct node_peer_metrics, false_suspicions));
    char labels[PROM_LABELS_MAX];
    prom_family(out, "cohort_detector_false_suspicion_ratio", "gauge",
                "False suspicions over suspicions since start (0 when none)");
    for (uint32_t i = 0; i < g->st.replica_count; i++) {
        if (i == g->st.self)
            continue;
        const struct node_peer_metrics *p = &g->nm.peers[i];
        labels_member(labels, sizeof(labels), i);
        prom_double(out, "cohort_detector_false_suspicion_ratio", labels,
                    p->suspicions
                        ? (double)p->false_suspicions / (double)p->suspicions
                        : 0.0);
    }
    prom_family(out, "cohort_detector_timeout_seconds", "gauge",
                "The failure detector's current timeout for the member");
    for (uint32_t i = 0; i < g->st.replica_count; i++) {
        if (i == g->st.self)
            continue;
        labels_member(labels, sizeof(labels), i);
        prom_double(out, "cohort_detector_timeout_seconds", labels,
                    (double)g->nm.peers[i].timeout_ms / 1000.0);
    }
}

static void metrics_links(struct resp_buf *out, const struct snapshot *g)
{
    member_family(out, g, "cohort_peer_messages_sent_total", "counter",
                  "Frames queued to the member",
                  offsetof(struct node_peer_metrics, messages_sent));
    member_family(out, g, "cohort_peer_messages_received_total", "counter",
                  "Frames received from the member",
                  offsetof(struct node_peer_metrics, messages_received));
    member_family(out, g, "cohort_peer_messages_dropped_total", "counter",
                  "Frames to the member dropped (queue full or link down)",
                  offsetof(struct node_peer_metrics, messages_dropped));
    member_family(out, g, "cohort_peer_connects_total", "counter",
                  "Connections this replica made to the member",
                  offsetof(struct node_peer_metrics, connects));
    member_family(out, g, "cohort_peer_queued_bytes", "gauge",
                  "Bytes queued on the link to the member",
                  offsetof(struct node_peer_metrics, bytes_queued));
    counter(out, "cohort_peer_connections_refused_total",
            "Inbound peer connections refused before a valid handshake "
            "(or authentication)",
            g->nm.peer_connections_refused);
    counter(out, "cohort_peer_connections_evicted_total",
            "Of those, connections still in their handshake closed to make "
            "room for a newer one",
            g->nm.peer_connections_evicted);
}

static void metrics_storage(struct resp_buf *out, const struct snapshot *g)
{
    const struct node_status *st = &g->st;
    const struct persister_metrics *pm = &g->nm.storage;
    prom_family(out, "cohort_wal_fsync_duration_seconds", "histogram",
                "One group-commit round: the appends, the metadata and the "
                "one fdatasync that makes them durable");
    prom_histogram(out, "cohort_wal_fsync_duration_seconds", NULL,
                   &pm->round_us, ROUND_K_FIRST, ROUND_K_LAST, US);
    prom_family(out, "cohort_wal_batch_entries", "histogram",
                "Log entries made durable by one fdatasync");
    prom_histogram(out, "cohort_wal_batch_entries", NULL, &pm->batch_ops, 0,
                   BATCH_OPS_K_LAST, 1.0);
    prom_family(out, "cohort_wal_batch_bytes", "histogram",
                "Bytes of entry bodies made durable by one fdatasync");
    prom_histogram(out, "cohort_wal_batch_bytes", NULL, &pm->batch_bytes,
                   BATCH_BYTES_K_FIRST, BATCH_BYTES_K_LAST, 1.0);
    gauge(out, "cohort_wal_bytes", "Bytes of log records on disk",
          st->log_bytes);
    counter(out, "cohort_wal_zero_chunks_total",
            "Chunks of zeros the idle storage thread wrote (and synced) "
            "ahead of the log's tail, so that appends overwrite written "
            "blocks",
            st->log_zero_chunks);
    gauge(out, "cohort_disk_stalled",
          "1 while log or metadata writes fail (a full or failing disk)",
          st->disk_stalled);
    counter(out, "cohort_disk_write_failures_total",
            "Failed log or metadata write attempts", st->disk.failures_total);
    prom_family(out, "cohort_snapshot_duration_seconds", "histogram",
                "Snapshots, from their start to the file written and renamed");
    prom_histogram(out, "cohort_snapshot_duration_seconds", NULL,
                   &g->nm.snapshot_us, SNAPSHOT_K_FIRST, SNAPSHOT_K_LAST, US);
    counter(out, "cohort_snapshot_failures_total",
            "Snapshot attempts that "
            "failed",
            g->nm.snapshot_failures);
    gauge(out, "cohort_snapshot_op", "The op of the last snapshot taken",
          st->snapshot_op);
    gauge(out, "cohort_snapshot_timestamp_seconds",
          "Wall clock of the last snapshot taken (0: none yet)",
          st->snapshot_time_s);
    counter(out, "cohort_snapshots_installed_total",
            "Snapshots received from a peer and installed",
            g->nm.core.snapshots_installed);
}

static void write_metrics(struct server *s, struct resp_buf *out)
{
    struct snapshot g;
    gather(s, &g);
    metrics_process(out, s, &g);
    metrics_connections(out, s);
    metrics_commands(out, s);
    metrics_replication(out, &g);
    metrics_peer_refusals(out, &g);
    metrics_loop(out, &g);
    metrics_members(out, &g);
    metrics_detector(out, &g);
    metrics_links(out, &g);
    metrics_storage(out, &g);
    struct http_server_stats hs;
    http_server_stats(s->http, &hs);
    counter(out, "cohort_metrics_requests_total",
            "HTTP requests answered on the metrics port", hs.requests + 1);
    counter(out, "cohort_metrics_connections_evicted_total",
            "Metrics port connections closed, still without a whole request "
            "after 250 ms, to make way for a new one",
            hs.evicted);
}

/* ------------------------------------------------------------ /status.json */

static void json_raw(struct resp_buf *out, const char *text)
{
    resp_write_raw(out, text, strlen(text));
}

static void json_string(struct resp_buf *out, const char *text)
{
    resp_write_raw(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            resp_write_raw(out, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            resp_write_raw(out, esc, 6);
        } else {
            resp_write_raw(out, (const char *)p, 1);
        }
    }
    resp_write_raw(out, "\"", 1);
}

__attribute__((format(printf, 2, 3))) static void
json_printf(struct resp_buf *out, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    ASSERT(n >= 0 && (size_t)n < sizeof(text));
    resp_write_raw(out, text, (size_t)n);
}

static void json_member(struct resp_buf *out, const struct node_status *st,
                        uint32_t i)
{
    json_printf(out, "%s{\"id\":%u,\"addr\":", i ? "," : "", i);
    json_string(out, st->client_addr[i] ? st->client_addr[i] : "?");
    const char *role = i == st->self      ? info_role(st)
                       : i == st->primary ? "primary"
                                          : "backup";
    json_raw(out, ",\"role\":");
    json_string(out, role);
    json_raw(out, ",\"health\":");
    json_string(out, info_member_health(st, i));
    json_printf(out, ",\"link\":\"%s\"",
                i == st->self           ? "self"
                : st->peer_connected[i] ? "up"
                                        : "down");
    if (primary_view(st)) {
        uint64_t op = i == st->self ? st->op : st->peer_op[i];
        uint64_t lag = i == st->self || st->commit <= op ? 0 : st->commit - op;
        json_printf(out, ",\"op\":%" PRIu64 ",\"lag\":%" PRIu64, op, lag);
    } else {
        json_raw(out, ",\"op\":null,\"lag\":null");
    }
    json_raw(out, "}");
}

static void json_views(struct resp_buf *out, const struct node_metrics *nm)
{
    json_raw(out, ",\"views\":[");
    for (uint32_t i = 0; i < nm->view_history_count; i++) {
        const struct node_view_record *v = &nm->views[i];
        json_printf(out,
                    "%s{\"view\":%" PRIu64
                    ",\"primary\":%u,\"time_ms\":%" PRIu64 ",\"cause\":",
                    i ? "," : "", v->view, v->primary, v->wall_ms);
        json_string(out, view_cause_name(v->cause));
        json_raw(out, ",\"text\":");
        json_string(out, v->text);
        json_raw(out, "}");
    }
    json_raw(out, "]");
}

/* A backup's view of its primary, named and valued as INFO replication's
 * fields (master_last_io_seconds_ago -1: never heard from it since start);
 * absent on other roles, as there. */
static void json_primary_link(struct resp_buf *out,
                              const struct node_status *st)
{
    if (strcmp(info_role(st), "backup") != 0)
        return;
    int64_t ago_s =
        st->primary_heard_ago_ms < 0 ? -1 : st->primary_heard_ago_ms / 1000;
    json_printf(out,
                ",\"master_link_status\":\"%s\""
                ",\"master_last_io_seconds_ago\":%" PRId64,
                st->primary_lost ? "down" : "up", ago_s);
}

static void write_status(struct server *s, struct resp_buf *out)
{
    struct snapshot g;
    gather(s, &g);
    const struct node_status *st = &g.st;
    json_printf(
        out,
        "{\"replica\":%u,\"replica_count\":%u,\"cluster_id\":\"%016" PRIx64
        "\",\"version\":\"%s\",\"time_ms\":%" PRIu64,
        st->self, st->replica_count, s->node_config.cluster_id, COHORT_VERSION,
        node_wall_ms());
    json_raw(out, ",\"role\":");
    json_string(out, info_role(st));
    json_printf(out,
                ",\"view\":%" PRIu64 ",\"primary\":%u,\"op\":%" PRIu64
                ",\"commit_op\":%" PRIu64 ",\"applied_op\":%" PRIu64
                ",\"commands\":%" PRIu64 ",\"keys\":%" PRIu64
                ",\"clients\":%u,\"used_memory\":%" PRIu64,
                (uint64_t)st->view, st->primary, st->op, st->commit,
                st->applied, s->stats.commands, g.kv.key_count,
                s->client_count + s->probation_count,
                kv_used_memory(node_kv(s->node)));
    json_primary_link(out, st);
    json_raw(out, ",\"members\":[");
    for (uint32_t i = 0; i < st->replica_count; i++)
        json_member(out, st, i);
    json_raw(out, "]");
    json_views(out, &g.nm);
    json_raw(out, "}\n");
}

/* ------------------------------------------------------------ routes */

static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *res)
{
    struct server *s = ctx;
    if (strcmp(req->path, "/metrics") == 0) {
        res->content_type = "text/plain; version=0.0.4; charset=utf-8";
        write_metrics(s, &res->body);
    } else if (strcmp(req->path, "/status.json") == 0) {
        res->content_type = "application/json";
        write_status(s, &res->body);
    } else if (strcmp(req->path, "/") == 0 ||
               strcmp(req->path, "/index.html") == 0) {
        res->content_type = "text/html; charset=utf-8";
        status_page_write(&res->body);
    } else {
        res->status = 404;
        json_raw(&res->body, "not found; try /metrics, /status.json or /\n");
    }
}

int exporter_open(struct server *s, struct cohort_err *err)
{
    if (s->config.metrics_addr == NULL)
        return 0;
    s->http = http_server_open(s->loop, s->config.metrics_addr,
                               "--metrics-port", on_request, s, err);
    return s->http ? 0 : (err->code ? err->code : -COHORT_EIO);
}

void exporter_close(struct server *s)
{
    if (s->http)
        http_server_close(s->http);
    s->http = NULL;
}
