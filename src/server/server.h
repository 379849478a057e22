/* server — the RESP server on a replica's client port: connections,
 * pipelining, the command table, limits, and forwarding from a backup to the
 * primary. It talks to the replica only through src/runtime/node.h.
 */
#ifndef COHORT_SERVER_H
#define COHORT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"
#include "runtime/node.h"

/* --tls-auth-clients, as Redis names its values. */
enum server_tls_auth {
    SERVER_TLS_AUTH_YES,      /* a client certificate is required */
    SERVER_TLS_AUTH_NO,       /* none is asked for */
    SERVER_TLS_AUTH_OPTIONAL, /* checked if the client sends one */
};

struct server_config {
    const char *listen_addr;  /* "host:port" */
    uint32_t connections_max; /* clients; default 10000 (forward links
                                 from backups are not counted) */
    uint32_t pipeline_max;    /* commands in flight per connection; 1024 */
    size_t request_size_max;  /* bytes of one command (and of one argument);
                                 raised to 2 x value + key size max */
    uint32_t arguments_max;   /* per command; 1 + 2 * 100000 */
    size_t inline_size_max;   /* 64 KiB */
    size_t output_buffer_max; /* per connection before it is closed */
    const char *password; /* --requirepass: the default user's; NULL: none */
    const char *acl_file; /* --acl-file: users in Redis's aclfile format */
    /* Refuse clients from other than loopback while the default user needs
     * no password (Redis's protected-mode); default on. */
    bool protected_mode;
    /* --tls-port: a second listener speaking TLS (tls_port.c); 0: none. */
    uint16_t tls_port;
    const char *tls_cert_file, *tls_key_file, *tls_ca_cert_file;
    enum server_tls_auth tls_auth_clients; /* default YES, as Redis */
    /* Bytes of kv_used_memory() past which writes that would grow the
     * store get -OOM (Redis's noeviction); reads and deletes still work.
     * 0: no limit. Decided by the primary before it proposes a write. */
    uint64_t maxmemory;
    /* Close a client that has sent no complete command for this many
     * seconds and has none running (a partial command does not count: a
     * slow sender is closed too); 0: never, as Redis's default. Forward
     * links from backups are exempt. */
    uint32_t timeout_s;
    /* Client connections one IP address may hold; 0: no limit. Default
     * 1000. Forward links from backups are exempt. */
    uint32_t connections_per_addr_max;
    /* "host:port" of the metrics endpoint (Prometheus /metrics, the status
     * page at /, /status.json; server/exporter.c); NULL: none. */
    const char *metrics_addr;
    /* COHORT.REJUVENATE (cmd_rejuvenate.c): asks the process to stop and
     * re-execute its binary (cli/cmd_server.c); called at most once, on the
     * loop thread, after the reply is queued. NULL: the command is refused
     * (the server is embedded, nothing can re-execute it). */
    void (*rejuvenate)(void *ctx);
    void *rejuvenate_ctx;
};

void server_config_defaults(struct server_config *c);
/* Whether the files c names load: --acl-file (with --requirepass), and
 * --tls-cert-file, --tls-key-file and --tls-ca-cert-file when --tls-port
 * is set. 0, or their error in one line naming the flag. Reads them and
 * keeps nothing: `cohort server` checks them before it creates or opens
 * the data directory, so a refused start leaves nothing behind. */
int server_files_check(const struct server_config *c, struct cohort_err *err);

struct server;

/* Listen on config->listen_addr. On failure returns NULL with a one-line
 * message naming the address and the fix ("port in use"). */
struct server *server_open(uv_loop_t *loop, struct node *node,
                           const struct server_config *config,
                           const struct node_config *node_config,
                           struct cohort_err *err);
/* Close the listener and every connection (the loop must run on until they
 * are closed; then the server frees itself). */
void server_close(struct server *s);

#endif
