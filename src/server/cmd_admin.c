/* cmd_admin — commands about the server: COMMAND (the table, for clients
 * that ask), CONFIG (a read-only view of a few settings that tools query at
 * start: redis-benchmark asks for "save" and "appendonly") and INFO. */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "kv/kv.h"
#include "server/command.h"
#include "server/info.h"
#include "server/internal.h"

static bool sub_arity_ok(uint32_t argc, int arity)
{
    return arity > 0 ? argc == (uint32_t)arity : argc >= (uint32_t)-arity;
}

void write_help(struct resp_buf *out, const char *const *lines, size_t n)
{
    resp_write_array(out, n);
    for (size_t i = 0; i < n; i++)
        resp_write_simple(out, lines[i]);
}

/* ------------------------------------------------------------ COMMAND */

static void write_flags(struct resp_buf *out, const struct command_spec *spec)
{
    const char *flags[4];
    size_t n = 0;
    if (spec->flags & CMD_WRITE)
        flags[n++] = "write";
    if (spec->flags & CMD_READ)
        flags[n++] = "readonly";
    if (spec->flags & CMD_ADMIN)
        flags[n++] = "admin";
    if (spec->flags & (CMD_FAST | CMD_NOAUTH))
        flags[n++] = (spec->flags & CMD_NOAUTH) ? "no_auth" : "fast";
    resp_write_set(out, n);
    for (size_t i = 0; i < n; i++)
        resp_write_simple(out, flags[i]);
}

/* Redis 7's ten-element entry: name, arity, flags, first key, last key,
 * step, ACL categories, tips, key specs, subcommands (the last four empty). */
static void write_entry(struct resp_buf *out, const struct command_spec *spec)
{
    resp_write_array(out, 10);
    resp_write_bulk(out, spec->name, strlen(spec->name));
    resp_write_integer(out, spec->arity);
    write_flags(out, spec);
    resp_write_integer(out, spec->first_key);
    resp_write_integer(out, spec->last_key);
    resp_write_integer(out, spec->key_step);
    resp_write_set(out, 0);
    resp_write_set(out, 0);
    resp_write_array(out, 0);
    resp_write_array(out, 0);
}

static void command_info(struct resp_buf *out, uint32_t argc,
                         const struct resp_arg *argv)
{
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    if (argc <= 2) {
        resp_write_array(out, count);
        for (size_t i = 0; i < count; i++)
            write_entry(out, &table[i]);
        return;
    }
    resp_write_array(out, argc - 2);
    for (uint32_t i = 2; i < argc; i++) {
        const struct command_spec *spec = command_lookup(&argv[i]);
        if (spec)
            write_entry(out, spec);
        else
            resp_write_null_array(out);
    }
}

static void command_getkeys(struct resp_buf *out, uint32_t argc,
                            const struct resp_arg *argv)
{
    const struct resp_arg *cmd = argv + 2;
    uint32_t cmd_argc = argc - 2;
    const struct command_spec *spec = command_lookup(&cmd[0]);
    if (spec == NULL) {
        resp_write_error(out, "ERR Invalid command specified");
        return;
    }
    if (!command_arity_ok(spec, cmd_argc)) {
        resp_write_error(out, "ERR Invalid number of arguments specified for "
                              "command");
        return;
    }
    if (spec->first_key == 0) {
        resp_write_error(out, "ERR The command has no key arguments");
        return;
    }
    uint32_t last =
        spec->last_key < 0 ? cmd_argc - 1 : (uint32_t)spec->last_key;
    uint32_t step = (uint32_t)spec->key_step;
    size_t n = 0;
    for (uint32_t i = (uint32_t)spec->first_key; i <= last; i += step)
        n++;
    resp_write_array(out, n);
    for (uint32_t i = (uint32_t)spec->first_key; i <= last; i += step)
        resp_write_bulk(out, cmd[i].ptr, cmd[i].size);
}

void cmd_command(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv)
{
    (void)c;
    static const char *const help[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands.",
        "LIST",
        "    Return a list of all commands.",
        "INFO [<command-name> ...]",
        "    Return details about the given commands, or all of them.",
        "DOCS [<command-name> ...]",
        "    An empty map: cohort keeps no command documentation.",
        "GETKEYS <full-command>",
        "    Return the keys from a full command.",
        "HELP",
        "    Print this help."};
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    if (argc == 1) {
        command_info(out, 2, argv);
    } else if (command_word_is(&argv[1], "count")) {
        if (sub_arity_ok(argc, 2))
            resp_write_integer(out, (int64_t)count);
        else
            command_reply_arity(out, "command|count");
    } else if (command_word_is(&argv[1], "list")) {
        resp_write_array(out, count);
        for (size_t i = 0; i < count; i++)
            resp_write_bulk(out, table[i].name, strlen(table[i].name));
    } else if (command_word_is(&argv[1], "info")) {
        command_info(out, argc, argv);
    } else if (command_word_is(&argv[1], "docs")) {
        resp_write_map(out, 0);
    } else if (command_word_is(&argv[1], "getkeys")) {
        if (sub_arity_ok(argc, -3))
            command_getkeys(out, argc, argv);
        else
            command_reply_arity(out, "command|getkeys");
    } else if (command_word_is(&argv[1], "help")) {
        write_help(out, help, sizeof(help) / sizeof(help[0]));
    } else {
        command_reply_unknown_subcommand(out, &argv[1], "COMMAND");
    }
}

/* ------------------------------------------------------------ CONFIG */

struct config_param {
    const char *name;
    char value[32];
};

/* The settings CONFIG GET shows: what tools ask for at start, answered
 * truthfully (every write is synced to a majority's log before its reply,
 * which is what appendonly yes / appendfsync always promise). */
static size_t config_params(const struct server *s, struct config_param *p)
{
    size_t n = 0;
    p[n++] = (struct config_param){"save", ""};
    p[n++] = (struct config_param){"appendonly", "yes"};
    p[n++] = (struct config_param){"appendfsync", "always"};
    p[n++] = (struct config_param){"databases", "1"};
    p[n] = (struct config_param){"maxclients", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", s->config.connections_max);
    p[n] = (struct config_param){"port", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", (unsigned)s->port);
    p[n] = (struct config_param){"timeout", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", s->config.timeout_s);
    p[n] = (struct config_param){"maxmemory", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%" PRIu64, s->config.maxmemory);
    p[n++] = (struct config_param){"maxmemory-policy", "noeviction"};
    p[n] = (struct config_param){"proto-max-bulk-len", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%zu",
             s->config.request_size_max);
    return n;
}

#define CONFIG_PARAMS_MAX 16

static void config_get(struct conn *c, struct resp_buf *out, uint32_t argc,
                       const struct resp_arg *argv)
{
    struct config_param params[CONFIG_PARAMS_MAX];
    size_t n = config_params(c->server, params);
    ASSERT(n <= CONFIG_PARAMS_MAX);
    bool match[CONFIG_PARAMS_MAX] = {false};
    size_t matched = 0;
    for (uint32_t i = 2; i < argc; i++) {
        char pattern[256];
        if (argv[i].size >= sizeof(pattern) ||
            memchr(argv[i].ptr, '\0', argv[i].size))
            continue;
        memcpy(pattern, argv[i].ptr, argv[i].size);
        pattern[argv[i].size] = '\0';
        for (size_t k = 0; k < n; k++) {
            if (!match[k] &&
                fnmatch(pattern, params[k].name, FNM_CASEFOLD) == 0) {
                match[k] = true;
                matched++;
            }
        }
    }
    resp_write_map(out, matched);
    for (size_t k = 0; k < n; k++) {
        if (!match[k])
            continue;
        resp_write_bulk(out, params[k].name, strlen(params[k].name));
        resp_write_bulk(out, params[k].value, strlen(params[k].value));
    }
}

void cmd_config(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv)
{
    static const char *const help[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob <pattern>, with values.",
        "SET <directive> <value>",
        "    Not supported: cohort is configured by its command line.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Print this help."};
    if (command_word_is(&argv[1], "get")) {
        if (sub_arity_ok(argc, -3))
            config_get(c, out, argc, argv);
        else
            command_reply_arity(out, "config|get");
    } else if (command_word_is(&argv[1], "set")) {
        if (!sub_arity_ok(argc, -4)) {
            command_reply_arity(out, "config|set");
            return;
        }
        char shown[129];
        resp_write_errorf(
            out,
            "ERR Unknown option or number of arguments for CONFIG SET - '%s'",
            resp_show(shown, sizeof(shown), argv[2].ptr, argv[2].size));
    } else if (command_word_is(&argv[1], "resetstat")) {
        memset(&c->server->stats, 0, sizeof(c->server->stats));
        resp_write_simple(out, "OK");
    } else if (command_word_is(&argv[1], "rewrite")) {
        resp_write_error(out, "ERR The server is running without a config "
                              "file");
    } else if (command_word_is(&argv[1], "help")) {
        write_help(out, help, sizeof(help) / sizeof(help[0]));
    } else {
        command_reply_unknown_subcommand(out, &argv[1], "CONFIG");
    }
}

/* ------------------------------------------------------------ INFO */

/* This process's resident set in bytes, from /proc/self/statm; 0 if it
 * cannot be read. */
uint64_t admin_process_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0)
        return 0;
    return (uint64_t)resident * (uint64_t)page;
}

void cmd_info(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv)
{
    struct server *s = c->server;
    struct node_status st;
    node_status(s->node, &st);
    struct kv_stats kvs;
    kv_stats(node_kv(s->node), &kvs);
    struct info_input in = {
        .status = &st,
        .kv = &kvs,
        .version = COHORT_VERSION,
        .cluster_id = s->node_config.cluster_id,
        .incarnation = node_incarnation(s->node),
        .process_id = (int64_t)getpid(),
        .tcp_port = s->port,
        .uptime_s = (server_now_ms(s) - s->started_ms) / 1000,
        .connected_clients = s->client_count + s->probation_count,
        .connected_forward_links = s->link_count,
        .connections_timed_out = s->stats.connections_timed_out,
        .maxclients = s->config.connections_max,
        .used_memory = kv_used_memory(node_kv(s->node)),
        .used_memory_rss = admin_process_rss(),
        .maxmemory = s->config.maxmemory,
        .connections_received = s->stats.connections_received,
        .connections_rejected = s->stats.connections_rejected,
        .commands_processed = s->stats.commands,
        .net_input_bytes = s->stats.net_input_bytes,
        .tls_port = s->tls_ctx ? s->config.tls_port : 0,
        .tls_reloads = s->stats.tls_reloads,
        .tls_failures = s->stats.tls_failures,
        .net_output_bytes = s->stats.net_output_bytes,
        .output_limit_closes = s->stats.output_limit_closes,
        .forwarded_commands = s->stats.forwarded,
        .forward_failures = s->stats.forward_failures,
        .forward_link_writes = s->stats.forward_link_writes,
        .forward_bounced = s->stats.forward_bounced,
        .forward_resent = s->stats.forward_resent,
        .forward_resend_failed = s->stats.forward_resend_failed,
        .forward_gated = s->stats.forward_gated,
        .session_renewals = s->stats.session_renewals,
        .pubsub_clients = s->pubsub.feed.count,
        .pubsub_messages_delivered = s->pubsub.messages_delivered,
        .pubsub_subscribers_cut = s->pubsub.subscribers_cut,
        .pubsub_history_messages = s->kv->history.count,
        .pubsub_history_bytes = s->kv->history.bytes,
        .pubsub_history_floor = s->kv->history.floor,
        .watch_clients = s->watch.feed.count,
        .watch_events_delivered = s->watch.events_delivered,
        .watch_watchers_cut = s->watch.watchers_cut,
        .lock_waits = s->lock_wait.count,
        .lock_waits_granted = s->lock_wait.granted,
        .lock_waits_timed_out = s->lock_wait.timed_out,
        .backup_read_rounds = s->backup_read.rounds,
        .backup_reads_served = s->backup_read.served,
        .backup_reads_forwarded = s->backup_read.forwarded,
        .reads_paced = s->read_pace.held,
        .read_pace_turns = s->read_pace.short_turns,
        .read_pace_conn_waits = s->read_pace.conn_waits,
        .read_pace_feed_waits = s->read_pace.feed_waits,
        .watch_history_events = s->kv->changes.count,
        .watch_history_bytes = s->kv->changes.bytes,
        .watch_history_floor = s->kv->changes.floor,
        .expire_ops_proposed = s->sweeper.ops_proposed,
        .expire_clock_ops = s->sweeper.clock_ops,
        .run_id = s->client_id_base,
        .rejuvenating = s->admin.rejuvenating,
        .rejuvenation = s->admin.rejuvenation,
    };
    struct node_metrics m;
    node_metrics(s->node, &m);
    in.view_history_count = m.view_history_count;
    in.view_history = m.views;
    /* A transfer this replica accepted is under way until its view reaches
     * the one the transfer named, or the core abandons the drain. */
    in.transfer_in_progress =
        s->admin.transfer_view > st.view &&
        m.core.transfers_abandoned == s->admin.transfer_abandoned;
    in.transfer_target = s->admin.transfer_target;
    in.epochs_entered = m.core.epochs_entered;
    in.replacements = m.core.replacements;
    in.spares_added = m.core.spares_added;
    in.compactions_pinned = m.core.compactions_pinned;
    in.pins_overrun = m.core.pins_overrun;
    in.snapshot_stops = st.transfer.stops_sent;
    struct resp_buf text;
    resp_buf_init(&text, 2);
    info_format(&text, &in, info_sections(argc, argv));
    if (text.ok)
        resp_write_verbatim(out, "txt", text.data ? text.data : "", text.size);
    else
        resp_write_error(out, "ERR out of memory");
    resp_buf_deinit(&text);
}
