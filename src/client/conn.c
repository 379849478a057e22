/* client/conn — one deadline-bounded RESP connection. See conn.h. */
#include "client/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"

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
}

void client_conn_close(struct client_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->readonly = false;
    c->have = 0;
    c->consumed = 0;
    c->node_count = 0;
}

void client_conn_deinit(struct client_conn *c)
{
    client_conn_close(c);
    free(c->buf);
    free(c->nodes);
    c->buf = NULL;
    c->nodes = NULL;
    c->cap = 0;
    c->node_cap = 0;
}

/* Wait for events on fd until deadline_ms: 1 ready, 0 timed out, -1 error
 * (errno). */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = client_now_ms();
        if (now >= deadline_ms)
            return 0;
        uint64_t left = deadline_ms - now;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 0)
            return n < 0 ? -1 : 1;
    }
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms,
                       int *errnum)
{
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *errnum = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        *errnum = errno;
        close(fd);
        return -1;
    }
    int w = wait_fd(fd, POLLOUT, deadline_ms);
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (w <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 ||
        so_error != 0) {
        *errnum = w == 0 ? ETIMEDOUT : (so_error ? so_error : errno);
        close(fd);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int client_conn_open(struct client_conn *c, const char *addr,
                     uint64_t deadline_ms, struct cohort_err *err)
{
    client_conn_close(c);
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return err_set(err, -COHORT_EINVAL,
                       "member address '%s' is not host:port", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        return err_set(err, -COHORT_EIO, "member %s: %s", addr,
                       gai_strerror(rc));
    int errnum = 0;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        c->fd = connect_one(ai, deadline_ms, &errnum);
        if (c->fd >= 0)
            break;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return err_set(err, -COHORT_EIO, "connect to member %s: %s", addr,
                       strerror(errnum));
    return 0;
}

int client_conn_send(struct client_conn *c, const char *data, size_t size,
                     uint64_t deadline_ms, struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    while (size > 0) {
        ssize_t n = send(c->fd, data, size, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            size -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_fd(c->fd, POLLOUT, deadline_ms) > 0)
            continue;
        int errnum = n < 0 && errno != EAGAIN ? errno : ETIMEDOUT;
        client_conn_close(c);
        return err_set(err, -COHORT_EIO, "send: %s", strerror(errnum));
    }
    return 0;
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

/* Read what the socket has, waiting until deadline_ms. */
static int read_some(struct client_conn *c, uint64_t deadline_ms,
                     struct cohort_err *err)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->have, c->cap - c->have, 0);
        if (n > 0) {
            c->have += (size_t)n;
            return 0;
        }
        if (n == 0)
            return err_set(err, -COHORT_EIO,
                           "the member closed the "
                           "connection");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return err_sys(err, errno, "recv");
        int w = wait_fd(c->fd, POLLIN, deadline_ms);
        if (w == 0)
            return err_set(err, -COHORT_EIO,
                           "no reply within the attempt "
                           "timeout");
        if (w < 0)
            return err_sys(err, errno, "poll");
    }
}

static int parse_or_read(struct client_conn *c, uint64_t deadline_ms,
                         struct cohort_err *err)
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
        rc = read_some(c, deadline_ms, err);
        if (rc != 0)
            return rc;
    }
}

int client_conn_recv(struct client_conn *c, uint64_t deadline_ms,
                     struct cohort_err *err)
{
    ASSERT(c->fd >= 0);
    ASSERT(c->consumed == 0);
    if (c->have == 0 && grow_buf(c, BUF_INITIAL) != 0)
        return err_set(err, -COHORT_ENOMEM, "a reply buffer");
    int rc = parse_or_read(c, deadline_ms, err);
    if (rc != 0)
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
}
