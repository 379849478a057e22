/* cli/options — flags and config file of `cohort server`. See options.h. */
#include "cli/options.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "cli/flags.h"
#include "common/grow.h"
#include "runtime/addr.h"
#include "kv/kv.h"

static const struct cli_flag_spec specs[] = {
    {"id", "N", "this replica's index in --peers (required)"},
    {"peers", "H:P,H:P,...", "peer (replication) address of every replica"},
    {"clients", "H:P,H:P,...", "client (RESP) address of every replica"},
    {"voters", "N",
     "at the group's first start, replicas 0..N-1 vote and the others wait "
     "outside until `cohort add` (default: all)"},
    {"data-dir", "DIR",
     "where the log, metadata and snapshots live "
     "(default ./data/replica-N)"},
    {"cluster-id", "HEX",
     "must match on every replica (default: a hash of "
     "--peers and --clients)"},
    {"bind", "HOST", "listen on HOST instead of the hosts in the addresses"},
    {"cluster-secret-file", "FILE",
     "authenticate peers with the secret in FILE (same on every replica, "
     "at least 16 bytes, mode 0600)"},
    {"peer-tls-cert-file", "FILE",
     "this replica's certificate (PEM) for mutual TLS between replicas; its "
     "URI name is cohort://<cluster-id>/replica/<id>"},
    {"peer-tls-key-file", "FILE", "the private key of --peer-tls-cert-file"},
    {"peer-tls-ca-cert-file", "FILE",
     "CA certificates that replicas' certificates must chain to"},
    {"max-snapshot-size", "BYTES",
     "largest snapshot accepted from a peer (default 64gb)"},
    {"config", "FILE", "read options from FILE (name = value per line)"},
    {"heartbeat-ms", "MS", "primary's idle heartbeat interval (default 25)"},
    {"suspect-timeout-ms", "MS", "failure detector base timeout (default 150)"},
    {"view-change-timeout-ms", "MS",
     "view change attempt timeout (default 300)"},
    {"snapshot-interval-ops", "N",
     "snapshot every N ops, 64..1000000 (default 100000)"},
    {"wal-segment-size", "BYTES",
     "log segment size (default 64mb, or one entry of --max-value-size "
     "if larger)"},
    {"log-memory", "BYTES",
     "memory for the log's recent entries (default 64mb): a snapshot is due "
     "when they fill half of it, so large values snapshot less often with "
     "more"},
    {"max-value-size", "BYTES",
     "largest value (default 1mb; at most about 200mb: five values fit "
     "a message between replicas)"},
    {"max-key-size", "BYTES", "largest key (default 64kb; at most 1mb)"},
    {"pubsub-history-messages", "N",
     "published messages each member retains for COHORT.SUBSCRIBE FROM "
     "(default 100000)"},
    {"pubsub-history-bytes", "BYTES",
     "bytes of published messages each member retains (default 64mb)"},
    {"max-clients", "N",
     "client connections (default 10000; backups' forward links do not "
     "count)"},
    {"max-clients-per-ip", "N",
     "client connections from one IP address (default 1000; 0: no limit)"},
    {"timeout", "SECONDS",
     "close a client idle this long, a half-sent command counting as idle "
     "(default 0: never)"},
    {"maxmemory", "BYTES",
     "refuse writes that would grow the store past BYTES (100mb, 1gb; "
     "default 0: no limit)"},
    {"requirepass", "PASSWORD",
     "clients must AUTH with PASSWORD (the default user's) until the "
     "group's first ACL SETUSER"},
    {"acl-file", "FILE",
     "users in Redis's ACL file format (user <name> <rules...>), in force "
     "until the group's first ACL SETUSER"},
    {"protected-mode", "yes|no",
     "without a password, refuse clients from other than loopback "
     "(default yes)"},
    {"tls-port", "PORT",
     "also serve clients over TLS on PORT, on the host of this replica's "
     "--clients address (default 0: off)"},
    {"tls-cert-file", "FILE", "the TLS port's certificate chain (PEM)"},
    {"tls-key-file", "FILE", "its private key (PEM)"},
    {"tls-ca-cert-file", "FILE",
     "CA certificates that client certificates must chain to (PEM)"},
    {"tls-auth-clients", "yes|no|optional",
     "require a client certificate (default yes), never ask, or check one "
     "if given; certificates are reloaded on SIGHUP"},
    {"metrics-port", "PORT",
     "serve Prometheus /metrics and the status page / over HTTP on PORT, "
     "on the client address's host or --bind (default 0: off)"},
    {"replace-after", "MS",
     "the primary replaces a voter silent for MS by a caught-up learner; "
     "the voter becomes a learner (default 10000; 0: never)"},
    {"spare", NULL,
     "start as a spare: outside the membership, ask the primary to be "
     "added as a learner"},
    {"quiet", NULL, "log errors only"},
};
#define SPEC_COUNT (sizeof(specs) / sizeof(specs[0]))

void server_options_usage(void)
{
    printf("usage: cohort server --id N --peers H:P,... --clients H:P,... "
           "[options]\n\noptions (also as `name = value` lines in "
           "--config FILE):\n");
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", specs[i].name,
                 specs[i].arg ? " " : "", specs[i].arg ? specs[i].arg : "");
        printf("  %-32s %s\n", left, specs[i].help);
    }
}

/* An owned copy of s, freed by server_options_free(). Every option given
 * keeps one, also one given again (a config file's line repeated, or a
 * flag overriding the file), so the table grows: a fixed one used to run
 * out after 64 and hand back NULL, which left --data-dir unset (a crash at
 * start) or --peers empty. NULL only when memory runs out, noted in
 * o->out_of_memory for finish() to refuse. */
static char *keep(struct server_options *o, const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL ||
        !grow_array_u32((void **)&o->strings, &o->string_capacity,
                        (size_t)o->string_count + 1, sizeof(o->strings[0]),
                        16)) {
        free(copy);
        o->out_of_memory = true;
        return NULL;
    }
    o->strings[o->string_count++] = copy;
    return copy;
}

static int bad(const char *name, const char *value, const char *why)
{
    return cli_flag_bad("server", name, value, why);
}

static int parse_u64(const char *name, const char *value, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    return cli_flag_u64("server", name, value, min, max, out);
}

/* Split "a,b,c" into addresses. Returns the count, -1 if there are too
 * many or one is not host:port, or -2 if one is empty ("a,,b", "a,b,"):
 * skipping it, as strtok() did, gave the replicas after it other ids than
 * the list written on the other replicas says. */
static int split_addresses(struct server_options *o, const char *value,
                           const char **out)
{
    char *copy = keep(o, value);
    if (copy == NULL || *copy == '\0')
        return -1;
    int count = 0;
    for (char *tok = copy; tok != NULL;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (*tok == '\0')
            return -2;
        if (count == COHORT_REPLICAS_MAX || !strchr(tok, ':'))
            return -1;
        out[count++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    return count;
}

static int set_option(struct server_options *o, const char *name,
                      const char *value, uint32_t *peers, uint32_t *clients,
                      bool *have_id, bool *have_cluster);
static enum cli_flag_kind flag_kind(const char *name);

static int read_config_file(struct server_options *o, const char *path,
                            uint32_t *peers, uint32_t *clients, bool *have_id,
                            bool *have_cluster)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cohort server: --config %s: %s\n", path,
                strerror(errno));
        return 2;
    }
    /* getline(): a line of any length is one line (fgets() into 1 KiB
     * cut a longer one in two, the rest parsed as a line of its own), and
     * its length tells a NUL byte (binary garbage) from the line's end. */
    char *line = NULL;
    size_t line_size = 0;
    ssize_t got;
    int lineno = 0;
    int rc = 0;
    struct cli_flag_seen seen = {.count = 0};
    while (rc == 0 && (got = getline(&line, &line_size, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)got) != NULL) {
            fprintf(stderr,
                    "cohort server: %s:%d: a NUL byte; a config file is "
                    "text, `name = value` per line\n",
                    path, lineno);
            rc = 2;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '\n' || *p == '\r')
            continue;
        char *eq = strchr(p, '=');
        char *end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' ||
                           end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!eq) {
            if (!strcmp(p, "quiet")) {
                o->node.quiet = true;
                continue;
            }
            if (!strcmp(p, "spare")) {
                o->node.spare = true;
                continue;
            }
            fprintf(stderr, "cohort server: %s:%d: expected `name = value`\n",
                    path, lineno);
            rc = 2;
            break;
        }
        char *name_end = eq;
        while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        *name_end = '\0';
        char *value = eq + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (!strcmp(p, "config")) {
            fprintf(stderr, "cohort server: %s:%d: config files do not nest\n",
                    path, lineno);
            rc = 2;
            break;
        }
        char where[300];
        snprintf(where, sizeof(where), "%s line %d", path, lineno);
        cli_flag_where(where);
        rc = set_option(o, p, value, peers, clients, have_id, have_cluster);
        if (rc == 0)
            rc = cli_flag_once("server", &seen, p, value);
        cli_flag_where(NULL);
    }
    /* A directory opens, and its first read fails (EISDIR): it used to
     * pass for an empty file. */
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "cohort server: --config %s: %s; give a file\n", path,
                strerror(errno));
        rc = 2;
    }
    free(line);
    fclose(f);
    return rc;
}

static int set_option(struct server_options *o, const char *name,
                      const char *value, uint32_t *peers, uint32_t *clients,
                      bool *have_id, bool *have_cluster)
{
    uint64_t v = 0;
    struct node_config *n = &o->node;
    /* No option takes an empty value (--requirepass says so its own way):
     * an unset variable in a unit file or script ("--data-dir $DIR") used
     * to surface later naming no option ("data directory : directory path
     * ''", "cannot resolve host ''", "create it with `openssl rand -hex 32
     * > `"). */
    if (value[0] == '\0' && flag_kind(name) == CLI_FLAG_VALUE &&
        strcmp(name, "requirepass") != 0)
        return bad(name, value,
                   "expected a value (leave the option out for its "
                   "default)");
    if (!strcmp(name, "id")) {
        if (parse_u64(name, value, 0, COHORT_REPLICAS_MAX - 1, &v))
            return 2;
        n->self = (uint32_t)v;
        *have_id = true;
    } else if (!strcmp(name, "peers") || !strcmp(name, "clients")) {
        const char **list =
            !strcmp(name, "peers") ? n->peer_addr : n->client_addr;
        int count = split_addresses(o, value, list);
        if (count == -2)
            return bad(name, value,
                       "an empty entry in the list; give one host:port per "
                       "replica, separated by single commas");
        if (count <= 0)
            return bad(name, value,
                       "expected host:port,host:port,... (1 to 7 replicas)");
        /* Checked here, before anything is created: a bad port used to
         * surface only when the transport opened, after the data
         * directory was made. */
        for (int i = 0; i < count; i++) {
            char host[ADDR_HOST_MAX];
            uint16_t port = 0;
            struct cohort_err e;
            if (addr_split(list[i], host, sizeof(host), &port, &e) != 0)
                return bad(name, value, e.message);
            if (port == 0)
                return bad(name, value,
                           "port 0 is not a port peers or clients can "
                           "find; give each replica a fixed port");
        }
        *(!strcmp(name, "peers") ? peers : clients) = (uint32_t)count;
    } else if (!strcmp(name, "data-dir")) {
        n->data_dir = keep(o, value);
    } else if (!strcmp(name, "cluster-id")) {
        /* Hexadecimal by design (it is printed so); no sign or space. */
        char *end = NULL;
        errno = 0;
        if (isxdigit((unsigned char)value[0]))
            n->cluster_id = strtoull(value, &end, 16);
        if (end == NULL || errno || *end)
            return bad(name, value,
                       "expected a hexadecimal number (up to 16 digits)");
        *have_cluster = true;
    } else if (!strcmp(name, "bind")) {
        n->bind_host = keep(o, value);
    } else if (!strcmp(name, "cluster-secret-file")) {
        n->cluster_secret_file = keep(o, value);
    } else if (!strcmp(name, "peer-tls-cert-file")) {
        n->peer_tls_cert_file = keep(o, value);
    } else if (!strcmp(name, "peer-tls-key-file")) {
        n->peer_tls_key_file = keep(o, value);
    } else if (!strcmp(name, "peer-tls-ca-cert-file")) {
        n->peer_tls_ca_file = keep(o, value);
    } else if (!strcmp(name, "max-snapshot-size")) {
        if (cli_flag_bytes("server", name, value, 1, 1ull << 50, &v))
            return 2;
        n->snapshot_size_max = v;
    } else if (!strcmp(name, "voters")) {
        if (parse_u64(name, value, 1, COHORT_REPLICAS_MAX, &v))
            return 2;
        n->initial_voters = (uint32_t)v;
    } else if (!strcmp(name, "heartbeat-ms")) {
        if (parse_u64(name, value, 1, 60000, &v))
            return 2;
        n->heartbeat_ms = (uint32_t)v;
    } else if (!strcmp(name, "suspect-timeout-ms")) {
        if (parse_u64(name, value, 2, 600000, &v))
            return 2;
        n->suspect_timeout_ms = (uint32_t)v;
    } else if (!strcmp(name, "view-change-timeout-ms")) {
        if (parse_u64(name, value, 1, 600000, &v))
            return 2;
        n->view_change_timeout_ms = (uint32_t)v;
    } else if (!strcmp(name, "snapshot-interval-ops")) {
        if (parse_u64(name, value, 64, 1000000, &v))
            return 2;
        n->snapshot_interval_ops = (uint32_t)v;
    } else if (!strcmp(name, "wal-segment-size")) {
        if (cli_flag_bytes("server", name, value, 1u << 20, 1ull << 34, &v))
            return 2;
        n->wal_segment_size = v & ~7ull;
    } else if (!strcmp(name, "log-memory")) {
        if (cli_flag_bytes("server", name, value, 16u << 20, 64ull << 30, &v))
            return 2;
        n->log_memory_bytes = v;
    } else if (!strcmp(name, "max-value-size")) {
        /* Its maximum depends on --max-key-size: finish() checks it. */
        if (cli_flag_bytes("server", name, value, 1, UINT32_MAX, &v))
            return 2;
        n->kv.value_size_max = (uint32_t)v;
    } else if (!strcmp(name, "max-key-size")) {
        if (cli_flag_bytes("server", name, value, 1, KV_KEY_SIZE_LIMIT, &v))
            return 2;
        n->kv.key_size_max = (uint32_t)v;
    } else if (!strcmp(name, "pubsub-history-messages")) {
        if (parse_u64(name, value, 1, HISTORY_COUNT_LIMIT, &v))
            return 2;
        n->kv.history_count_max = (uint32_t)v;
    } else if (!strcmp(name, "pubsub-history-bytes")) {
        if (cli_flag_bytes("server", name, value, 1, 1ull << 40, &v))
            return 2;
        n->kv.history_bytes_max = v;
    } else if (!strcmp(name, "max-clients")) {
        if (parse_u64(name, value, 1, 1000000, &v))
            return 2;
        o->server.connections_max = (uint32_t)v;
    } else if (!strcmp(name, "max-clients-per-ip")) {
        if (parse_u64(name, value, 0, 1000000, &v))
            return 2;
        o->server.connections_per_addr_max = (uint32_t)v;
    } else if (!strcmp(name, "timeout")) {
        if (parse_u64(name, value, 0, 365u * 86400u, &v))
            return 2;
        o->server.timeout_s = (uint32_t)v;
    } else if (!strcmp(name, "maxmemory")) {
        if (cli_flag_bytes("server", name, value, 0, 1ull << 50, &v))
            return 2;
        o->server.maxmemory = v;
    } else if (!strcmp(name, "requirepass")) {
        if (value[0] == '\0')
            return bad(name, value,
                       "expected a password (leave the option "
                       "out for none)");
        o->server.password = keep(o, value);
    } else if (!strcmp(name, "acl-file")) {
        o->server.acl_file = keep(o, value);
    } else if (!strcmp(name, "protected-mode")) {
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
            return bad(name, value, "expected yes or no");
        o->server.protected_mode = !strcmp(value, "yes");
    } else if (!strcmp(name, "tls-port")) {
        if (parse_u64(name, value, 0, 65535, &v))
            return 2;
        o->server.tls_port = (uint16_t)v;
    } else if (!strcmp(name, "tls-cert-file")) {
        o->server.tls_cert_file = keep(o, value);
    } else if (!strcmp(name, "tls-key-file")) {
        o->server.tls_key_file = keep(o, value);
    } else if (!strcmp(name, "tls-ca-cert-file")) {
        o->server.tls_ca_cert_file = keep(o, value);
    } else if (!strcmp(name, "tls-auth-clients")) {
        if (!strcmp(value, "yes"))
            o->server.tls_auth_clients = SERVER_TLS_AUTH_YES;
        else if (!strcmp(value, "no"))
            o->server.tls_auth_clients = SERVER_TLS_AUTH_NO;
        else if (!strcmp(value, "optional"))
            o->server.tls_auth_clients = SERVER_TLS_AUTH_OPTIONAL;
        else
            return bad(name, value, "expected yes, no or optional");
    } else if (!strcmp(name, "metrics-port")) {
        if (parse_u64(name, value, 0, 65535, &v))
            return 2;
        o->metrics_port = (uint16_t)v;
    } else if (!strcmp(name, "replace-after")) {
        if (parse_u64(name, value, 0, 3600000, &v))
            return 2;
        n->replace_after_ms = (uint32_t)v;
    } else if (!strcmp(name, "spare") || !strcmp(name, "quiet")) {
        bool *sw = !strcmp(name, "spare") ? &n->spare : &n->quiet;
        if (!strcmp(value, "1") || !strcmp(value, "yes") ||
            !strcmp(value, "true") || !strcmp(value, "on"))
            *sw = true;
        else if (!strcmp(value, "0") || !strcmp(value, "no") ||
                 !strcmp(value, "false") || !strcmp(value, "off"))
            *sw = false;
        else
            return bad(name, value, "expected yes or no");
    } else {
        /* Only a config file gets here: cli_flag_next() refuses an unknown
         * flag. */
        return cli_flag_bad("server", name, value, "no such option");
    }
    return 0;
}

/* text as a resolved numeric "host:port", so that two spellings of one
 * address compare equal; text itself if it does not parse (whoever
 * listens on it or dials it reports that). */
static void canonical_address(const char *text, char *out, size_t size)
{
    struct sockaddr_storage ss;
    struct cohort_err e;
    if (addr_parse(text, &ss, &e) == 0)
        addr_format((const struct sockaddr *)&ss, out, size);
    else
        snprintf(out, size, "%s", text);
}

/* Every address of every replica, peer and client, must be its own: two
 * replicas on one peer address reach one process, which then refuses the
 * other's cluster id forever instead of failing at start. */
static int check_distinct(const struct node_config *n, uint32_t count)
{
    const char *const *lists[2] = {n->peer_addr, n->client_addr};
    const char *names[2] = {"--peers", "--clients"};
    char canon[2 * COHORT_REPLICAS_MAX][ADDR_HOST_MAX + 16];
    for (uint32_t a = 0; a < 2 * count; a++)
        canonical_address(lists[a / count][a % count], canon[a],
                          sizeof(canon[a]));
    for (uint32_t a = 0; a < 2 * count; a++) {
        for (uint32_t b = a + 1; b < 2 * count; b++) {
            if (strcmp(canon[a], canon[b]) != 0)
                continue;
            const char *y = lists[b / count][b % count];
            if (a / count == b / count)
                fprintf(stderr,
                        "cohort server: %s gives %s to replicas %u and %u; "
                        "every replica needs its own address\n",
                        names[a / count], y, a % count, b % count);
            else
                fprintf(stderr,
                        "cohort server: %s is replica %u's peer address "
                        "(--peers) and replica %u's client address "
                        "(--clients); use a different port for each\n",
                        y, a % count, b % count);
            return 2;
        }
    }
    return 0;
}

/* --metrics-port and --tls-port listen on this replica's client host (or
 * --bind): one equal to its client port, to its peer port on that host, or
 * to the other failed at start as "address in use; is another cohort
 * server running?". */
static int check_ports(const struct server_options *o)
{
    const struct node_config *n = &o->node;
    const char *client = n->client_addr[n->self];
    const char *peer = n->peer_addr[n->self];
    char chost[ADDR_HOST_MAX], phost[ADDR_HOST_MAX];
    uint16_t cport = 0, pport = 0;
    struct cohort_err e;
    if (addr_split(client, chost, sizeof(chost), &cport, &e) != 0 ||
        addr_split(peer, phost, sizeof(phost), &pport, &e) != 0)
        return 0; /* the listener says so */
    bool peer_here = n->bind_host != NULL || strcmp(chost, phost) == 0;
    const char *names[2] = {"--metrics-port", "--tls-port"};
    uint16_t ports[2] = {o->metrics_port, o->server.tls_port};
    for (int i = 0; i < 2; i++) {
        char what[ADDR_HOST_MAX + 64];
        if (ports[i] == 0)
            continue;
        if (ports[i] == cport)
            snprintf(what, sizeof(what), "client port (--clients %s)", client);
        else if (peer_here && ports[i] == pport)
            snprintf(what, sizeof(what), "peer port (--peers %s)", peer);
        else if (i == 1 && ports[i] == ports[0])
            snprintf(what, sizeof(what), "--metrics-port");
        else
            continue;
        fprintf(stderr,
                "cohort server: %s %u is also replica %u's %s; pick "
                "another port\n",
                names[i], (unsigned)ports[i], n->self, what);
        return 2;
    }
    return 0;
}

/* The metrics endpoint listens on --bind, or on the host of this replica's
 * client address, at --metrics-port. */
static int metrics_address(struct server_options *o)
{
    if (o->metrics_port == 0)
        return 0;
    char host[ADDR_HOST_MAX], text[ADDR_HOST_MAX + 16];
    uint16_t port = 0;
    struct cohort_err err;
    const char *client = o->node.client_addr[o->node.self];
    if (o->node.bind_host) {
        snprintf(host, sizeof(host), "%s", o->node.bind_host);
    } else if (addr_split(client, host, sizeof(host), &port, &err) != 0) {
        fprintf(stderr, "cohort server: --clients: %s\n", err.message);
        return 2;
    }
    snprintf(text, sizeof(text), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             (unsigned)o->metrics_port);
    o->server.metrics_addr = keep(o, text);
    return 0;
}

static int finish(struct server_options *o, uint32_t peers, uint32_t clients,
                  bool have_id, bool have_cluster)
{
    struct node_config *n = &o->node;
    if (!have_id || peers == 0 || clients == 0) {
        fprintf(stderr, "cohort server: --id, --peers and --clients are "
                        "required; see 'cohort server --help' (or use "
                        "'cohort up' for a local cluster)\n");
        return 2;
    }
    if (peers != clients) {
        fprintf(stderr,
                "cohort server: --peers lists %u replicas but --clients "
                "lists %u; give one address of each kind per replica\n",
                peers, clients);
        return 2;
    }
    if (n->self >= peers) {
        fprintf(stderr,
                "cohort server: --id %u but only %u replicas in "
                "--peers (ids count from 0)\n",
                n->self, peers);
        return 2;
    }
    if (check_distinct(n, peers) != 0)
        return 2;
    if (n->initial_voters > peers) {
        fprintf(stderr,
                "cohort server: --voters %u but only %u replicas in --peers; "
                "give at most %u\n",
                n->initial_voters, peers, peers);
        return 2;
    }
    if (n->initial_voters == peers)
        n->initial_voters = 0; /* the default: all */
    n->replica_count = peers;
    struct cohort_err e;
    if (node_config_check(n, &e) != 0) {
        fprintf(stderr, "cohort server: %s\n", e.message);
        return 2;
    }
    if (!n->data_dir) {
        char dir[64];
        snprintf(dir, sizeof(dir), "data/replica-%u", n->self);
        n->data_dir = keep(o, dir);
    }
    if (!have_cluster) {
        /* Every replica started with the same member list derives the same
         * id; a replica of another cluster does not. */
        XXH64_hash_t h = 0;
        for (uint32_t i = 0; i < peers; i++) {
            h = XXH64(n->peer_addr[i], strlen(n->peer_addr[i]), h);
            h = XXH64(n->client_addr[i], strlen(n->client_addr[i]), h);
        }
        /* Epoch 0's quorum depends on --voters: replicas started with
         * different values must not talk to each other. */
        if (n->initial_voters != 0) {
            uint8_t v[4] = {'v', 'o', 't', (uint8_t)n->initial_voters};
            h = XXH64(v, sizeof(v), h);
        }
        n->cluster_id = h ? h : 1;
    }
    o->server.listen_addr = n->client_addr[n->self];
    if (check_ports(o) != 0)
        return 2;
    return metrics_address(o);
}

static enum cli_flag_kind flag_kind(const char *name)
{
    return cli_flag_kind_in(specs, SPEC_COUNT, name);
}

int server_options_parse(struct server_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->node.kv = kv_config_default();
    o->node.replace_after_ms = NODE_REPLACE_AFTER_DEFAULT_MS;
    server_config_defaults(&o->server);
    uint32_t peers = 0, clients = 0;
    bool have_id = false, have_cluster = false;
    struct cli_flag_seen seen = {.count = 0};
    /* Two passes, so that a flag wins over a config file wherever it
     * stands (options.h): the files first, then the other flags. A flag
     * before --config used to be overwritten by the file's line. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *arg = argv[i];
            if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
                server_options_usage();
                return 1;
            }
            struct cli_flag f;
            if (cli_flag_next("server", argc, argv, &i, flag_kind, &f) != 0)
                return 2;
            const char *name = f.name;
            const char *value = f.value ? f.value : "1";
            bool config = !strcmp(name, "config");
            if (config != (pass == 0))
                continue;
            int rc = config ? read_config_file(o, value, &peers, &clients,
                                               &have_id, &have_cluster)
                            : set_option(o, name, value, &peers, &clients,
                                         &have_id, &have_cluster);
            if (rc == 0 && flag_kind(name) == CLI_FLAG_VALUE)
                rc = cli_flag_once("server", &seen, name, value);
            if (rc != 0)
                return rc;
        }
    }
    if (o->out_of_memory) {
        fprintf(stderr, "cohort server: out of memory reading the options\n");
        return 2;
    }
    return finish(o, peers, clients, have_id, have_cluster);
}

void server_options_free(struct server_options *o)
{
    for (uint32_t i = 0; i < o->string_count; i++)
        free(o->strings[i]);
    free(o->strings);
    o->strings = NULL;
    o->string_count = 0;
    o->string_capacity = 0;
}
