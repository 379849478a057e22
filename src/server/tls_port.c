/* tls_port — the RESP server's TLS port (--tls-port, Redis's names for the
 * options): its listener, its certificates and their reload on SIGHUP, and
 * the TLS layer of a connection accepted there.
 *
 * A TLS connection is an ordinary struct conn with a session
 * (client_tls.h): ciphertext read from the socket lands in tls_rbuf and is
 * fed to the session; tls_port_pull() moves plaintext into the connection's
 * rbuf, where conn.c parses it as from a plain socket; tls_port_seal()
 * turns the plaintext replies in `out` into ciphertext in `out` just before
 * conn_flush() writes it. Everything else (admission, protected mode, AUTH,
 * limits) is the plain port's.
 *
 * Reload: SIGHUP loads the files again into a new context; new connections
 * use it, connections already open keep the one they started with. A
 * reload that fails (a missing file, a key that does not match) logs why
 * and keeps the old certificates.
 *
 * Invariants: (1) tls_ctx is non-NULL iff the TLS port is open; (2) a
 * connection with a session reads into tls_rbuf (CLIENT_TLS_READ_SIZE
 * bytes), never straight into rbuf.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/addr.h"
#include "runtime/logline.h"
#include "server/internal.h"

#define LISTEN_BACKLOG 511

static struct client_tls_context *load(const struct server_config *c,
                                       struct cohort_err *err)
{
    static const enum client_tls_verify verify[] = {
        [SERVER_TLS_AUTH_YES] = CLIENT_TLS_VERIFY_REQUIRED,
        [SERVER_TLS_AUTH_NO] = CLIENT_TLS_VERIFY_NONE,
        [SERVER_TLS_AUTH_OPTIONAL] = CLIENT_TLS_VERIFY_OPTIONAL,
    };
    struct client_tls_config tc = {
        .role = CLIENT_TLS_ROLE_SERVER,
        .cert_file = c->tls_cert_file,
        .key_file = c->tls_key_file,
        .ca_file = c->tls_ca_cert_file,
        .verify = verify[c->tls_auth_clients],
        .cert_flag = "--tls-cert-file",
        .key_flag = "--tls-key-file",
        .ca_flag = "--tls-ca-cert-file",
    };
    if (tc.verify != CLIENT_TLS_VERIFY_NONE && tc.ca_file == NULL) {
        err_set(err, -COHORT_ECONFIG,
                "--tls-auth-clients %s checks client certificates against "
                "--tls-ca-cert-file, which is not set; set it, or "
                "--tls-auth-clients no",
                c->tls_auth_clients == SERVER_TLS_AUTH_YES ? "yes"
                                                           : "optional");
        return NULL;
    }
    return client_tls_context_load(&tc, err);
}

static void on_sighup(uv_signal_t *handle, int signum)
{
    (void)signum;
    struct server *s = handle->data;
    if (s->tls_ctx == NULL) {
        logline(LOGLINE_INFO, "SIGHUP: no --tls-port, nothing to reload");
        return;
    }
    struct cohort_err err;
    err_clear(&err);
    struct client_tls_context *fresh = load(&s->config, &err);
    if (fresh == NULL) {
        logline(LOGLINE_ERROR,
                "SIGHUP: TLS certificates not reloaded, the old ones stay in "
                "use: %s",
                err.message);
        return;
    }
    client_tls_context_free(s->tls_ctx);
    s->tls_ctx = fresh;
    s->stats.tls_reloads++;
    logline(LOGLINE_INFO, "SIGHUP: TLS certificates reloaded from %s",
            s->config.tls_cert_file);
}

static void on_tls_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0 || s->closing)
        return;
    conn_accept(s, listener);
}

static int listen_tls(struct server *s, struct cohort_err *err)
{
    struct sockaddr_storage ss;
    int rc = addr_parse(s->config.listen_addr, &ss, err);
    if (rc != 0)
        return err_wrap(err, "listen %s", s->config.listen_addr);
    uint16_t port = htons(s->config.tls_port);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = port;
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = port;
    int fd = addr_listen(&ss, LISTEN_BACKLOG, "--tls-port", err);
    if (fd < 0)
        return fd;
    addr_format((const struct sockaddr *)&ss, s->tls_listen_text,
                sizeof(s->tls_listen_text));
    uv_tcp_init(s->loop, &s->tls_listener);
    s->tls_listener.data = s;
    s->handles_open++;
    rc = uv_tcp_open(&s->tls_listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->tls_listener, LISTEN_BACKLOG,
                       on_tls_connection);
    else
        close(fd); /* not adopted by the handle */
    if (rc != 0)
        return err_set(err, -COHORT_EIO, "listen %s (--tls-port): %s",
                       s->tls_listen_text, uv_strerror(rc));
    return 0;
}

int tls_port_check(const struct server_config *c, struct cohort_err *err)
{
    if (c->tls_port == 0)
        return 0;
    if (!c->tls_cert_file || !c->tls_key_file)
        return err_set(err, -COHORT_ECONFIG,
                       "--tls-port needs --tls-cert-file and --tls-key-file");
    struct client_tls_context *ctx = load(c, err);
    if (ctx == NULL)
        return err->code;
    client_tls_context_free(ctx);
    return 0;
}

int tls_port_open(struct server *s, struct cohort_err *err)
{
    uv_signal_init(s->loop, &s->sighup);
    s->sighup.data = s;
    s->handles_open++;
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    uv_unref((uv_handle_t *)&s->sighup);
    const struct server_config *c = &s->config;
    if (c->tls_port == 0) {
        if (c->tls_cert_file || c->tls_key_file || c->tls_ca_cert_file)
            logline(LOGLINE_WARN, "TLS certificate options are set but "
                                  "--tls-port is not: no TLS port is open");
        return 0;
    }
    if (!c->tls_cert_file || !c->tls_key_file)
        return err_set(err, -COHORT_ECONFIG,
                       "--tls-port needs --tls-cert-file and --tls-key-file");
    s->tls_ctx = load(c, err);
    if (s->tls_ctx == NULL)
        return err->code;
    int rc = listen_tls(s, err);
    if (rc == 0)
        logline(LOGLINE_INFO,
                "TLS clients on %s (client certificates: %s); SIGHUP "
                "reloads the certificates",
                s->tls_listen_text,
                c->tls_auth_clients == SERVER_TLS_AUTH_YES  ? "required"
                : c->tls_auth_clients == SERVER_TLS_AUTH_NO ? "not asked"
                                                            : "optional");
    return rc;
}

void tls_port_close(struct server *s, uv_close_cb on_closed)
{
    if (s->tls_listener.type == UV_TCP)
        uv_close((uv_handle_t *)&s->tls_listener, on_closed);
    if (s->sighup.type == UV_SIGNAL)
        uv_close((uv_handle_t *)&s->sighup, on_closed);
    client_tls_context_free(s->tls_ctx);
    s->tls_ctx = NULL;
}

/* ------------------------------------------------------------ sessions */

bool tls_port_conn_start(struct conn *c, const uv_stream_t *listener)
{
    struct server *s = c->server;
    if (listener != (const uv_stream_t *)&s->tls_listener)
        return true;
    c->tls = client_tls_session_new(s->tls_ctx);
    c->tls_rbuf = malloc(CLIENT_TLS_READ_SIZE);
    return c->tls != NULL && c->tls_rbuf != NULL;
}

void tls_port_conn_free(struct conn *c)
{
    client_tls_session_free(c->tls);
    c->tls = NULL;
    free(c->tls_rbuf);
    c->tls_rbuf = NULL;
}

bool tls_port_feed(struct conn *c, size_t size)
{
    c->server->stats.net_input_bytes += size;
    return client_tls_session_feed(c->tls, c->tls_rbuf, size);
}

static void failed(struct conn *c)
{
    uint64_t left_out = 0;
    if (!client_tls_session_established(c->tls) &&
        log_limit_allow(&c->server->tls_failure_log, uv_now(c->server->loop),
                        &left_out)) {
        if (left_out == 0)
            logline(LOGLINE_INFO, "TLS handshake with %s on %s failed: %s",
                    c->addr, c->server->tls_listen_text,
                    client_tls_session_error(c->tls));
        else
            logline(LOGLINE_INFO,
                    "TLS handshake with %s on %s failed: %s (and %" PRIu64
                    " failures not logged before it: too many; INFO stats "
                    "tls_connection_failures counts all)",
                    c->addr, c->server->tls_listen_text,
                    client_tls_session_error(c->tls), left_out);
    }
    c->server->stats.tls_failures++;
    conn_close_soon(c);
}

size_t tls_port_pull(struct conn *c)
{
    size_t added = 0;
    for (;;) {
        char *at;
        size_t room = conn_read_room(c, &at);
        if (room == 0)
            break; /* parsing makes room, then conn_process pulls again */
        size_t got = 0;
        enum client_tls_result r =
            client_tls_session_read(c->tls, at, room, &got);
        if (r == CLIENT_TLS_OK) {
            c->rbuf_used += got;
            added += got;
            continue;
        }
        if (r == CLIENT_TLS_CLOSED)
            c->eof = true;
        else if (r == CLIENT_TLS_ERROR)
            failed(c);
        break;
    }
    const char *data;
    if (client_tls_session_output(c->tls, &data) > 0)
        server_mark_dirty(c->server, c); /* handshake bytes to send */
    return added;
}

bool tls_port_seal(struct conn *c)
{
    if (c->out.size > 0) {
        if (!client_tls_session_write(c->tls, c->out.data, c->out.size)) {
            failed(c);
            return false;
        }
        c->out.size = 0;
    }
    const char *data;
    size_t n = client_tls_session_output(c->tls, &data);
    if (n > 0) {
        resp_write_raw(&c->out, data, n);
        client_tls_session_output_clear(c->tls);
    }
    return true;
}
