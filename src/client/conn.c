/* client/conn — one deadline-bounded RESP connection. See conn.h. */
#include "client/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/hostport.h"

#define NODES_INITIAL 16u
#define BUF_INITIAL 4096u

uint64_t client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void client_conn_init(struct client_conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    resp_buf_init(&c->out, 2);
}

void client_conn_close(struct client_conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    c->ssl = NULL;
    c->handshaking = false;
    c->ssl_want = 0;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->readonly = false;
    c->connecting = false;
    c->reading = false;
    c->out.size = 0;
    c->out.ok = true;
    c->out_sent = 0;
    c->have = 0;
    c->consumed = 0;
    c->node_count = 0;
}

void client_conn_deinit(struct client_conn *c)
{
    client_conn_close(c);
    resp_buf_deinit(&c->out);
    free(c->buf);
    free(c->nodes);
    c->buf = NULL;
    c->nodes = NULL;
    c->cap = 0;
    c->node_cap = 0;
}

/* Connect to the first address of addr that accepts a non-blocking
 * connect; errnum gets the last failure. */
static int connect_any(const struct addrinfo *res, bool *in_progress,
                       int *errnum)
{
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            *errnum = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            *in_progress = false;
            return fd;
        }
        if (errno == EINPROGRESS) {
            *in_progress = true;
            return fd;
        }
        *errnum = errno;
        close(fd);
    }
    return -1;
}

bool client_addr_split(const char *addr, char *host, size_t host_size,
                       uint16_t *port)
{
    uint16_t value = 0;
    if (addr_split(addr, host, host_size, &value, NULL) != 0 || value == 0)
        return false;
    if (port != NULL)
        *port = value;
    return true;
}

int client_conn_connect(struct client_conn *c, const char *addr,
                        struct cohort_err *err)
{
    client_conn_close(c);
    c->cert_rejected = false;
    char host[256], service[8];
    uint16_t port = 0;
    if (!client_addr_split(addr, host, sizeof(host), &port))
        return err_set(err, -COHORT_EINVAL,
                       "member address '%s' is not host:port with a port in "
                       "1..65535",
                       addr);
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return err_set(err, -COHORT_EIO, "member %s: %s", addr,
                       gai_strerror(rc));
    int errnum = ECONNREFUSED;
    bool in_progress = false;
    c->fd = connect_any(res, &in_progress, &errnum);
    freeaddrinfo(res);
    if (c->fd < 0)
        return err_set(err, -COHORT_EIO, "connect to member %s: %s", addr,
                       strerror(errnum));
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->connecting = in_progress;
    return in_progress ? 1 : 0;
}

int client_conn_connect_done(struct client_conn *c, struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    if (!c->connecting)
        return 0;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    int n = poll(&p, 1, 0);
    if (n == 0 || (n < 0 && errno == EINTR))
        return 1;
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (n < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) ||
        so_error != 0) {
        int errnum = n < 0 ? errno : so_error ? so_error : errno;
        client_conn_close(c);
        return err_set(err, -COHORT_EIO, "connect: %s", strerror(errnum));
    }
    c->connecting = false;
    return 0;
}

/* The reason of a failed TLS call, for messages. */
static const char *tls_reason(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_ZERO_RETURN)
        return "the member closed the TLS session";
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return rc == 0 ? "the member closed the connection" : strerror(errno);
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK)
        return X509_verify_cert_error_string(v);
    unsigned long code = ERR_get_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    return r ? r : "TLS error";
}

/* After a TLS call returned rc <= 0: 1 to wait (ssl_want set), or a
 * negative code with the connection closed. */
static int tls_wait_or_fail(struct client_conn *c, int rc, const char *what,
                            struct cohort_err *err)
{
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->ssl_want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 1;
    }
    c->cert_rejected = SSL_get_verify_result(c->ssl) != X509_V_OK;
    err_set(err, -COHORT_EIO, "TLS %s: %s", what, tls_reason(c->ssl, rc));
    ERR_clear_error();
    client_conn_close(c);
    return -COHORT_EIO;
}

int client_conn_tls_start(struct client_conn *c, void *ctx, const char *host,
                          struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    ASSERT(!c->connecting);
    SSL *ssl = SSL_new(ctx);
    unsigned char ip[16];
    bool is_ip =
        inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    bool ok = ssl != NULL && SSL_set_fd(ssl, c->fd) == 1;
    /* The certificate must name the member: its IP address or DNS name. */
    if (ok && is_ip)
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    else if (ok)
        ok = SSL_set1_host(ssl, host) == 1 &&
             SSL_set_tlsext_host_name(ssl, host) == 1;
    if (!ok) {
        if (ssl != NULL)
            SSL_free(ssl);
        client_conn_close(c);
        return err_set(err, -COHORT_ENOMEM, "TLS session for %s", host);
    }
    SSL_set_connect_state(ssl);
    c->ssl = ssl;
    c->handshaking = true;
    return 1;
}

/* OpenSSL writes to the socket with write(), which raises SIGPIPE when the
 * member closed the connection (a failover, a restart), and SIGPIPE's
 * default action kills the application. A library must not, and cannot
 * change the process's handlers: around each OpenSSL call that may write,
 * SIGPIPE is blocked in the calling thread, and one the call raised is
 * taken back before the old mask returns (one already pending before the
 * call is left for the application). The call's error (EPIPE) is reported
 * as any failed write. */
struct sigpipe_guard {
    sigset_t old;
    bool pending_before;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    (void)sigpending(&pending);
    g->pending_before = sigismember(&pending, SIGPIPE) == 1;
    (void)pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
    int saved = errno;
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    if (!g->pending_before && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    (void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = saved;
}

int client_conn_handshake(struct client_conn *c, struct cohort_err *err)
{
    ASSERT(c->ssl != NULL);
    if (!c->handshaking)
        return 0;
    ERR_clear_error();
    struct sigpipe_guard g;
    sigpipe_block(&g);
    int rc = SSL_do_handshake(c->ssl);
    sigpipe_restore(&g);
    if (rc == 1) {
        c->handshaking = false;
        c->ssl_want = 0;
        return 0;
    }
    return tls_wait_or_fail(c, rc, "handshake", err);
}

int client_conn_queue(struct client_conn *c, uint32_t argc,
                      const struct resp_arg *argv, struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    resp_write_command(&c->out, argc, argv);
    if (!c->out.ok) {
        client_conn_close(c);
        return err_set(err, -COHORT_ENOMEM, "a command buffer");
    }
    c->reading = true;
    return 0;
}

bool client_conn_flushed(const struct client_conn *c)
{
    return c->out_sent == c->out.size;
}

int client_conn_flush(struct client_conn *c, struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    while (c->out_sent < c->out.size) {
        if (c->ssl != NULL) {
            ERR_clear_error();
            struct sigpipe_guard g;
            sigpipe_block(&g);
            int n = SSL_write(c->ssl, c->out.data + c->out_sent,
                              (int)(c->out.size - c->out_sent > INT32_MAX
                                        ? INT32_MAX
                                        : c->out.size - c->out_sent));
            sigpipe_restore(&g);
            if (n <= 0)
                return tls_wait_or_fail(c, n, "write", err);
            c->ssl_want = 0;
            c->out_sent += (size_t)n;
            continue;
        }
        ssize_t n = send(c->fd, c->out.data + c->out_sent,
                         c->out.size - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        int errnum = errno;
        client_conn_close(c);
        return err_set(err, -COHORT_EIO, "send: %s", strerror(errnum));
    }
    resp_buf_consume(&c->out, c->out.size);
    c->out_sent = 0;
    return 0;
}

short client_conn_wants(const struct client_conn *c)
{
    if (c->fd < 0)
        return 0;
    if (c->ssl_want != 0)
        return c->ssl_want;
    if (c->connecting || !client_conn_flushed(c))
        return POLLOUT;
    return c->reading ? POLLIN : 0;
}

/* Make room to read more: at least size_wanted bytes in all. */
static int grow_buf(struct client_conn *c, size_t size_wanted)
{
    if (size_wanted <= c->cap && c->have < c->cap)
        return 0;
    size_t cap = c->cap ? c->cap * 2 : BUF_INITIAL;
    while (cap < size_wanted)
        cap *= 2;
    if (cap > CLIENT_REPLY_SIZE_MAX + 64)
        return -COHORT_ETOOBIG;
    char *buf = realloc(c->buf, cap);
    if (buf == NULL)
        return -COHORT_ENOMEM;
    c->buf = buf;
    c->cap = cap;
    return 0;
}

static int grow_nodes(struct client_conn *c, uint32_t count)
{
    uint32_t cap = c->node_cap ? c->node_cap : NODES_INITIAL;
    while (cap < count)
        cap *= 2;
    struct resp_node *nodes = realloc(c->nodes, cap * sizeof(*nodes));
    if (nodes == NULL)
        return -COHORT_ENOMEM;
    c->nodes = nodes;
    c->node_cap = cap;
    return 0;
}

/* Read what the socket has: 0 some bytes, 1 none yet. */
static int read_some(struct client_conn *c, struct cohort_err *err)
{
    if (c->ssl != NULL) {
        ERR_clear_error();
        int cap =
            (int)(c->cap - c->have > INT32_MAX ? INT32_MAX : c->cap - c->have);
        struct sigpipe_guard g; /* a read may write: an alert, a key */
        sigpipe_block(&g);
        int n = SSL_read(c->ssl, c->buf + c->have, cap);
        sigpipe_restore(&g);
        if (n <= 0)
            return tls_wait_or_fail(c, n, "read", err);
        c->ssl_want = 0;
        c->have += (size_t)n;
        return 0;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, c->cap - c->have, 0);
        if (n > 0) {
            c->have += (size_t)n;
            return 0;
        }
        if (n == 0)
            return err_set(err, -COHORT_EIO,
                           "the member closed the connection");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        return err_sys(err, errno, "recv");
    }
}

static int parse_or_read(struct client_conn *c, struct cohort_err *err)
{
    static const struct resp_reply_limits limits = {
        .depth_max = 16,
        .bulk_size_max = CLIENT_REPLY_SIZE_MAX,
        .element_count_max = 1u << 24,
    };
    if (c->nodes == NULL && grow_nodes(c, NODES_INITIAL) != 0)
        return err_set(err, -COHORT_ENOMEM, "reply nodes");
    for (;;) {
        struct resp_reply r = {.nodes = c->nodes, .node_capacity = c->node_cap};
        enum resp_result res =
            resp_reply_parse(c->buf, c->have, &limits, &r, err);
        if (res == RESP_COMPLETE) {
            c->node_count = r.node_count;
            c->consumed = r.consumed;
            return 0;
        }
        if (res == RESP_ERROR)
            return -COHORT_EPROTO;
        if (res == RESP_NEED_SPACE) {
            if (grow_nodes(c, r.node_count) != 0)
                return err_set(err, -COHORT_ENOMEM, "reply nodes");
            continue;
        }
        int rc = grow_buf(c, r.size_wanted);
        if (rc != 0)
            return err_set(err, rc, "a reply buffer of %zu bytes",
                           r.size_wanted);
        rc = read_some(c, err);
        if (rc != 0)
            return rc;
    }
}

int client_conn_read(struct client_conn *c, struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    ASSERT(c->consumed == 0);
    if (c->have == 0 && grow_buf(c, BUF_INITIAL) != 0) {
        client_conn_close(c);
        return err_set(err, -COHORT_ENOMEM, "a reply buffer");
    }
    int rc = parse_or_read(c, err);
    if (rc < 0)
        client_conn_close(c);
    return rc;
}

void client_conn_consume(struct client_conn *c)
{
    ASSERT(c->consumed <= c->have);
    memmove(c->buf, c->buf + c->consumed, c->have - c->consumed);
    c->have -= c->consumed;
    c->consumed = 0;
    c->node_count = 0;
    c->reading = false;
}
