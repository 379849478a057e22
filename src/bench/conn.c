/* bench/conn — one load-generator connection: a non-blocking socket in the
 * engine's epoll set, its ring of request slots (see internal.h), pipelined
 * writes with writev straight from the slots and the shared value buffer,
 * and replies parsed in place with the RESP reply parser. A connection that
 * fails counts its unanswered requests as errors and reconnects, after a
 * backoff, to the next member. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench/internal.h"
#include "common/assert.h"
#include "runtime/addr.h"

/* Read buffer at start; it grows to the largest reply seen. */
#define READ_BUFFER_MIN (64u * 1024u)
/* Bytes asked of one read() at least (the buffer grows to leave room). */
#define READ_CHUNK_MIN (16u * 1024u)
/* Pieces per writev (IOV_MAX is 1024); a request is up to three. */
#define IOV_BATCH 192
/* Nodes of a reply tree: the workload's replies are one node (exec's
 * array of 5 is six); INFO one. */
#define REPLY_NODES 8
#define BACKOFF_MS_MIN 10u
#define BACKOFF_MS_MAX 1000u

static const struct resp_reply_limits reply_limits = {
    .depth_max = 8,
    .bulk_size_max = (size_t)1 << 30,
    .element_count_max = (uint64_t)1 << 20,
};

int conn_init(struct conn *conn, struct engine *e, uint32_t index,
              uint32_t depth, uint32_t member)
{
    ASSERT(depth > 0);
    memset(conn, 0, sizeof(*conn));
    conn->engine = e;
    conn->fd = -1;
    conn->index = index;
    conn->member = member;
    conn->depth = depth;
    conn->slots = calloc(depth, sizeof(*conn->slots));
    size_t cap = READ_BUFFER_MIN;
    if (e->c->workload != BENCH_WRITE && e->c->workload != BENCH_FAILOVER &&
        e->c->workload != BENCH_PRELOAD && e->c->value_size + 64 > cap)
        cap = e->c->value_size + 64 + READ_CHUNK_MIN;
    conn->rbuf = malloc(cap);
    conn->rcap = cap;
    if (!conn->slots || !conn->rbuf)
        return -COHORT_ENOMEM;
    return 0;
}

void conn_deinit(struct conn *conn)
{
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
    free(conn->slots);
    free(conn->rbuf);
    conn->slots = NULL;
    conn->rbuf = NULL;
}

static const char *member_text(const struct conn *conn)
{
    return conn->engine->c->members[conn->member].text;
}

static void epoll_set(struct conn *conn, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = conn};
    int rc = epoll_ctl(conn->engine->epfd, op, conn->fd, &ev);
    ASSERT(rc == 0);
}

static void want_write(struct conn *conn, bool on)
{
    if (conn->epollout == on)
        return;
    conn->epollout = on;
    epoll_set(conn, EPOLLIN | (on ? EPOLLOUT : 0u), EPOLL_CTL_MOD);
}

/* Requests among the unanswered slots (setup commands are not requests). */
static uint64_t requests_in_ring(const struct conn *conn)
{
    uint64_t n = 0;
    for (uint32_t k = 0; k < conn->count; k++) {
        const struct slot *s = &conn->slots[(conn->head + k) % conn->depth];
        if (s->op != BENCH_OP_READONLY)
            n++;
    }
    return n;
}

/* Close the socket and schedule a connect to the next member. With
 * count_failure the unanswered requests (at least one error, for the failed
 * connection itself) are counted as errors and why is noted. */
static void conn_close(struct conn *conn, bool count_failure, const char *why)
{
    struct engine *e = conn->engine;
    uint64_t lost = requests_in_ring(conn);
    ASSERT(e->in_flight >= lost);
    e->in_flight -= lost;
    if (count_failure)
        engine_count_errors(e, lost > 0 ? lost : 1);
    if (conn->state == CONN_OPEN || conn->state == CONN_DRAINING) {
        ASSERT(e->open_count > 0);
        e->open_count--;
    }
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
    uint32_t from = conn->member;
    conn->member = (conn->member + 1) % e->c->member_count;
    /* A member that said "retry" is left for the next one at once; a
     * failure doubles the wait, which a successful connect resets. */
    uint32_t delay_ms = BACKOFF_MS_MIN;
    if (count_failure) {
        conn->backoff_ms =
            conn->backoff_ms == 0 ? BACKOFF_MS_MIN : conn->backoff_ms * 2;
        if (conn->backoff_ms > BACKOFF_MS_MAX)
            conn->backoff_ms = BACKOFF_MS_MAX;
        delay_ms = conn->backoff_ms;
    }
    conn->state = CONN_IDLE;
    conn->since_ns = e->now_ns + (uint64_t)delay_ms * 1000000u;
    conn->head = conn->count = conn->written = 0;
    conn->partial = 0;
    conn->rsize = conn->rwant = 0;
    conn->epollout = false;
    if (count_failure)
        engine_note(e,
                    "connection %u to %s: %s (%" PRIu64
                    " requests lost); reconnecting to %s in %u ms",
                    conn->index, e->c->members[from].text, why, lost,
                    member_text(conn), delay_ms);
}

void conn_connect(struct conn *conn)
{
    struct engine *e = conn->engine;
    ASSERT(conn->state == CONN_IDLE);
    ASSERT(conn->fd < 0);
    const struct sockaddr *sa =
        (const struct sockaddr *)&e->c->members[conn->member].addr;
    conn->state = CONN_CONNECTING;
    conn->since_ns = e->now_ns;
    conn->fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn->fd < 0) {
        conn_close(conn, true, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(conn->fd, sa, addr_size(sa)) != 0 && errno != EINPROGRESS) {
        conn_close(conn, true, strerror(errno));
        return;
    }
    epoll_set(conn, EPOLLOUT, EPOLL_CTL_ADD);
}

static void push_slot(struct conn *conn, enum bench_op op, uint64_t key)
{
    struct engine *e = conn->engine;
    ASSERT(conn->count < conn->depth);
    struct slot *s = &conn->slots[(conn->head + conn->count) % conn->depth];
    s->op = op;
    s->start_ns = e->now_ns;
    s->header_size =
        (uint32_t)bench_request_header(s->header, op, key, e->c->value_size);
    conn->count++;
    if (op != BENCH_OP_READONLY)
        e->in_flight++;
}

static void on_connected(struct conn *conn)
{
    struct engine *e = conn->engine;
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
        so_error = errno;
    if (so_error != 0) {
        conn_close(conn, true, strerror(so_error));
        return;
    }
    conn->state = CONN_OPEN;
    conn->epollout = false;
    conn->backoff_ms = 0;
    e->open_count++;
    epoll_set(conn, EPOLLIN, EPOLL_CTL_MOD);
    if (e->c->workload == BENCH_LREAD)
        push_slot(conn, BENCH_OP_READONLY, 0);
    conn_fill(conn);
}

static size_t slot_size(const struct conn *conn, const struct slot *s)
{
    size_t n = s->header_size;
    if (bench_op_has_value(s->op))
        n += conn->engine->c->value_size + 2;
    return n;
}

/* Gather the unwritten bytes into iov; returns the piece count. */
static int gather(struct conn *conn, struct iovec *iov, size_t *total)
{
    static char crlf[2] = {'\r', '\n'};
    int n = 0;
    *total = 0;
    for (uint32_t k = conn->written; k < conn->count && n + 3 <= IOV_BATCH;
         k++) {
        struct slot *s = &conn->slots[(conn->head + k) % conn->depth];
        iov[n++] = (struct iovec){s->header, s->header_size};
        if (bench_op_has_value(s->op)) {
            iov[n++] = (struct iovec){conn->engine->value,
                                      conn->engine->c->value_size};
            iov[n++] = (struct iovec){crlf, 2};
        }
    }
    /* Skip what an earlier short write sent of the first request. */
    size_t skip = conn->partial;
    int first = 0;
    while (skip > 0 && first < n) {
        size_t take = skip < iov[first].iov_len ? skip : iov[first].iov_len;
        iov[first].iov_base = (char *)iov[first].iov_base + take;
        iov[first].iov_len -= take;
        skip -= take;
        if (iov[first].iov_len == 0)
            first++;
    }
    ASSERT(skip == 0);
    if (first > 0)
        memmove(iov, iov + first, (size_t)(n - first) * sizeof(*iov));
    n -= first;
    for (int i = 0; i < n; i++)
        *total += iov[i].iov_len;
    return n;
}

/* Account for sent bytes: whole requests advance `written`. */
static void advance(struct conn *conn, size_t sent)
{
    while (sent > 0) {
        ASSERT(conn->written < conn->count);
        const struct slot *s =
            &conn->slots[(conn->head + conn->written) % conn->depth];
        size_t left = slot_size(conn, s) - conn->partial;
        if (sent < left) {
            conn->partial += sent;
            return;
        }
        sent -= left;
        conn->partial = 0;
        conn->written++;
    }
}

static void conn_flush(struct conn *conn)
{
    struct iovec iov[IOV_BATCH];
    while (conn->written < conn->count) {
        size_t total = 0;
        int n = gather(conn, iov, &total);
        ASSERT(n > 0);
        ssize_t sent = writev(conn->fd, iov, n);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_write(conn, true);
            return;
        }
        if (sent < 0) {
            conn_close(conn, true, strerror(errno));
            return;
        }
        advance(conn, (size_t)sent);
        if ((size_t)sent < total) {
            want_write(conn, true);
            return;
        }
    }
    want_write(conn, false);
}

void conn_fill(struct conn *conn)
{
    if (conn->state != CONN_OPEN)
        return;
    enum bench_op op;
    uint64_t key;
    while (conn->count < conn->depth && engine_next_op(conn->engine, &op, &key))
        push_slot(conn, op, key);
    if (conn->written < conn->count)
        conn_flush(conn);
}

/* Returns false when the connection was closed. */
static bool on_reply(struct conn *conn, const struct resp_node *reply)
{
    struct engine *e = conn->engine;
    if (conn->count == 0 || conn->written == 0) {
        char why[160];
        snprintf(why, sizeof(why), "unexpected reply %c%.*s", (char)reply->type,
                 reply->str ? (int)(reply->len % 100) : 0,
                 reply->str ? reply->str : "");
        conn_close(conn, true, why);
        return false;
    }
    struct slot *s = &conn->slots[conn->head];
    conn->head = (conn->head + 1) % conn->depth;
    conn->count--;
    conn->written--;
    enum bench_reply kind = bench_reply_classify(s->op, reply);
    if (s->op == BENCH_OP_READONLY) {
        if (kind != BENCH_REPLY_OK)
            engine_fatal(e,
                         "%s refused READONLY (%.*s); the lread workload "
                         "needs cohort's local reads (try --workload read)",
                         member_text(conn), reply->str ? (int)reply->len : 0,
                         reply->str ? reply->str : "");
        return kind == BENCH_REPLY_OK;
    }
    ASSERT(e->in_flight > 0);
    e->in_flight--;
    engine_on_reply(e, s, kind, reply);
    if (kind == BENCH_REPLY_RETRY && conn->state == CONN_OPEN)
        conn->state = CONN_DRAINING;
    if (conn->state == CONN_DRAINING && conn->count == 0) {
        conn_close(conn, false, "drained");
        return false;
    }
    return true;
}

/* Grow the read buffer to hold want bytes and a read's worth more. */
static bool grow(struct conn *conn, size_t want)
{
    size_t cap = conn->rcap * 2;
    if (cap < want + READ_CHUNK_MIN)
        cap = want + READ_CHUNK_MIN;
    char *p = realloc(conn->rbuf, cap);
    if (!p)
        return false;
    conn->rbuf = p;
    conn->rcap = cap;
    return true;
}

static void parse_replies(struct conn *conn)
{
    struct resp_node nodes[REPLY_NODES];
    struct resp_reply reply = {.nodes = nodes, .node_capacity = REPLY_NODES};
    struct cohort_err perr;
    size_t off = 0;
    conn->rwant = 0;
    while (off < conn->rsize) {
        enum resp_result r = resp_reply_parse(
            conn->rbuf + off, conn->rsize - off, &reply_limits, &reply, &perr);
        if (r == RESP_NEED_MORE) {
            conn->rwant = reply.size_wanted;
            break;
        }
        if (r != RESP_COMPLETE) {
            conn_close(conn, true,
                       r == RESP_ERROR ? perr.message
                                       : "reply has too many elements");
            return;
        }
        off += reply.consumed;
        if (!on_reply(conn, &nodes[0]))
            return;
    }
    memmove(conn->rbuf, conn->rbuf + off, conn->rsize - off);
    conn->rsize -= off;
    if (conn->rwant + READ_CHUNK_MIN > conn->rcap && !grow(conn, conn->rwant))
        engine_fatal(conn->engine, "out of memory for a %zu-byte reply",
                     conn->rwant);
}

static void conn_read(struct conn *conn)
{
    if (conn->rcap - conn->rsize < READ_CHUNK_MIN && !grow(conn, conn->rsize)) {
        engine_fatal(conn->engine, "out of memory for replies");
        return;
    }
    ssize_t n =
        read(conn->fd, conn->rbuf + conn->rsize, conn->rcap - conn->rsize);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(conn, true,
                   n == 0 ? "connection closed by the server"
                          : strerror(errno));
        return;
    }
    conn->rsize += (size_t)n;
    if (conn->rsize < conn->rwant)
        return;
    parse_replies(conn);
}

void conn_on_events(struct conn *conn, uint32_t events)
{
    if (conn->state == CONN_CONNECTING) {
        on_connected(conn);
        return;
    }
    if (conn->state == CONN_IDLE)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(conn);
    if (conn->state == CONN_IDLE)
        return;
    if ((events & EPOLLOUT) && conn->written < conn->count)
        conn_flush(conn);
    conn_fill(conn);
}

void conn_tick(struct conn *conn)
{
    struct engine *e = conn->engine;
    uint64_t timeout_ns = (uint64_t)e->c->timeout_ms * 1000000u;
    switch (conn->state) {
    case CONN_IDLE:
        if (e->now_ns >= conn->since_ns)
            conn_connect(conn);
        break;
    case CONN_CONNECTING:
        if (e->now_ns - conn->since_ns > timeout_ns)
            conn_close(conn, true, "connect timed out");
        break;
    case CONN_OPEN:
    case CONN_DRAINING:
        if (conn->count > 0 &&
            e->now_ns - conn->slots[conn->head].start_ns > timeout_ns) {
            char why[64];
            snprintf(why, sizeof(why), "no reply in %u ms", e->c->timeout_ms);
            conn_close(conn, true, why);
        }
        break;
    }
}
