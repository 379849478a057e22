/* forward — a backup's link to the primary's RESP port: the commands a
 * backup cannot serve (writes, linearizable reads) go there over ONE
 * connection per server, and the replies come back in the same order.
 *
 * A link opens with "COHORT.NOFORWARD <self> <token>", which tells the
 * primary not to forward these commands again (a replica whose view is
 * stale answers -TRYAGAIN instead of bouncing them on), and proves with
 * this replica's peer token that the link is not a client: it is exempt
 * from the primary's client limits and idle timeout (admit.c), and
 * authenticated without a password. This replica has already checked each
 * command against its client's user (auth.h), so the primary runs what
 * the link sends. Then each forwarded slot's command is
 * appended to the link's output (a write as COHORT.REQ with its connection's
 * client id and request number, so it stays exactly-once), and the slot joins
 * the link's FIFO. resp_reply_parse() finds where each reply ends; its bytes
 * are relayed raw to the slot at the head.
 *
 * When the primary changes, the current link drains: it takes no new
 * commands and closes once its FIFO is empty, while a new link dials the new
 * primary. The server's timer (forward_tick) compares each link with the
 * node's view: a link to a replica that is no longer the primary of a normal
 * view drains too, and fails once it has waited FORWARD_STALE_GRACE_MS, so a
 * primary that froze (SIGSTOP, a stalled VM) or was cut off costs its
 * clients the view change plus that grace, not FORWARD_REPLY_TIMEOUT_MS.
 * A link also fails on a connect error or timeout, EOF, a read or write
 * error, a malformed reply, or a head that waits FORWARD_REPLY_TIMEOUT_MS;
 * then every slot on it is answered: a read -TRYAGAIN, a write that was
 * never handed to a socket write -TRYAGAIN, any other write -UNKNOWN.
 *
 * Invariants: (1) slots on a link are in the order their commands were
 * appended to its output; (2) the newest `unsent` slots' bytes are still in
 * `out`, the others were in a uv_write; (3) a link in LINK_CLOSING has no
 * slots and is neither s->link nor on the draining list.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/hex.h"
#include "runtime/addr.h"
#include "runtime/logline.h"
#include "server/internal.h"

#define LINK_READ_SIZE (64u * 1024u)
#define LINK_DEPTH_MAX 8u

static void link_flush(struct link *l);

/* ------------------------------------------------------------ failure */

static void on_link_closed(uv_handle_t *handle)
{
    struct link *l = handle->data;
    struct server *s = l->server;
    resp_buf_deinit(&l->out);
    resp_buf_deinit(&l->writing_buf);
    free(l->rbuf);
    free(l->nodes);
    free(l);
    server_handle_closed(s);
}

static void detach(struct server *s, struct link *l)
{
    if (s->link == l) {
        s->link = NULL;
        return;
    }
    for (struct link **p = &s->draining; *p; p = &(*p)->next_draining)
        if (*p == l) {
            *p = l->next_draining;
            return;
        }
}

/* Close l and answer every slot on it. */
static void link_fail(struct link *l, const char *why)
{
    if (l->state == LINK_CLOSING)
        return;
    struct server *s = l->server;
    l->state = LINK_CLOSING;
    detach(s, l);
    uint32_t sent = l->count - l->unsent;
    uint32_t index = 0;
    while (l->head) {
        struct slot *slot = l->head;
        l->head = slot->link_next;
        slot->link_next = NULL;
        slot->forwarded = false;
        store_forward_failed(s, slot, index < sent, why);
        index++;
    }
    l->tail = NULL;
    l->count = l->unsent = 0;
    uv_close((uv_handle_t *)&l->tcp, on_link_closed);
}

/* A draining link with nothing left to answer closes. */
static void link_maybe_retire(struct link *l)
{
    if (l->state != LINK_CLOSING && l != l->server->link && l->count == 0)
        link_fail(l, "primary changed");
}

/* ------------------------------------------------------------ reading */

static void on_link_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct link *l = handle->data;
    if (l->rbuf_size - l->rbuf_used < LINK_READ_SIZE / 4) {
        size_t size = l->rbuf_size ? l->rbuf_size * 2 : LINK_READ_SIZE;
        char *p = realloc(l->rbuf, size);
        if (p) {
            l->rbuf = p;
            l->rbuf_size = size;
        }
    }
    *buf = uv_buf_init(l->rbuf + l->rbuf_used,
                       (unsigned)(l->rbuf_size - l->rbuf_used));
}

/* One reply at the start of buf: 0 (need more), its size, or -1. */
static long long reply_size(struct link *l, const char *buf, size_t size)
{
    struct server *s = l->server;
    struct resp_reply_limits limits = {
        .depth_max = LINK_DEPTH_MAX,
        .bulk_size_max = s->config.request_size_max,
        .element_count_max = s->config.arguments_max,
    };
    for (;;) {
        struct resp_reply reply = {.nodes = l->nodes,
                                   .node_capacity = l->node_capacity};
        struct cohort_err err;
        enum resp_result r = resp_reply_parse(buf, size, &limits, &reply, &err);
        if (r == RESP_COMPLETE)
            return (long long)reply.consumed;
        if (r == RESP_NEED_MORE)
            return 0;
        if (r == RESP_ERROR)
            return -1;
        struct resp_node *p =
            realloc(l->nodes, (size_t)reply.node_count * sizeof(*p));
        if (p == NULL)
            return -1;
        l->nodes = p;
        l->node_capacity = reply.node_count;
    }
}

/* Hand one complete reply to the slot at the head. Returns false if the
 * link failed. */
static bool deliver(struct link *l, const char *reply, size_t size)
{
    struct server *s = l->server;
    if (l->handshake_pending > 0) {
        l->handshake_pending--;
        if (reply[0] == '-') {
            logline(LOGLINE_WARN,
                    "the primary (replica %u) refused this replica's forward "
                    "link: %.*s",
                    l->target, (int)(size > 200 ? 200 : size - 2), reply);
            link_fail(l, "the primary refused the forward link");
            return false;
        }
        return true;
    }
    struct slot *slot = l->head;
    if (slot == NULL || l->count - l->unsent == 0) {
        link_fail(l, "the primary sent a reply nobody asked for");
        return false;
    }
    l->head = slot->link_next;
    if (l->head == NULL)
        l->tail = NULL;
    l->count--;
    l->head_since_ms = server_now_ms(s);
    slot->link_next = NULL;
    slot->forwarded = false;
    store_forward_reply(s, slot, reply, size);
    return true;
}

static void link_parse(struct link *l)
{
    size_t pos = 0;
    while (pos < l->rbuf_used && l->state != LINK_CLOSING) {
        long long n = reply_size(l, l->rbuf + pos, l->rbuf_used - pos);
        if (n == 0)
            break;
        if (n < 0) {
            link_fail(l, "malformed reply from the primary");
            return;
        }
        if (!deliver(l, l->rbuf + pos, (size_t)n))
            return;
        pos += (size_t)n;
    }
    if (l->state == LINK_CLOSING)
        return;
    memmove(l->rbuf, l->rbuf + pos, l->rbuf_used - pos);
    l->rbuf_used -= pos;
    if (l->rbuf_used == 0 && l->rbuf_size > 4 * LINK_READ_SIZE) {
        free(l->rbuf);
        l->rbuf = NULL;
        l->rbuf_size = 0;
    }
    link_maybe_retire(l);
}

static void on_link_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf)
{
    (void)buf;
    struct link *l = stream->data;
    if (l->state == LINK_CLOSING)
        return;
    if (nread > 0) {
        l->rbuf_used += (size_t)nread;
        size_t limit = l->server->config.output_buffer_max +
                       l->server->config.request_size_max;
        if (l->rbuf_used > limit) {
            link_fail(l, "reply from the primary too large");
            return;
        }
        link_parse(l);
        return;
    }
    if (nread == 0)
        return;
    link_fail(l, nread == UV_EOF ? "the primary closed the connection"
                                 : "lost the connection to the primary");
}

/* ------------------------------------------------------------ writing */

static void on_link_write(uv_write_t *req, int status)
{
    struct link *l = req->data;
    l->writing = false;
    l->writing_buf.size = 0;
    if (l->state == LINK_CLOSING)
        return;
    if (status < 0) {
        link_fail(l, "lost the connection to the primary");
        return;
    }
    link_flush(l);
}

static void link_flush(struct link *l)
{
    if (l->state != LINK_READY || l->writing || l->out.size == 0)
        return;
    if (!l->out.ok) {
        link_fail(l, "out of memory");
        return;
    }
    struct resp_buf t = l->writing_buf;
    l->writing_buf = l->out;
    l->out = t;
    if (l->out.data == NULL)
        resp_buf_init(&l->out, 2);
    l->out.size = 0;
    l->out.ok = true;
    uv_buf_t b =
        uv_buf_init(l->writing_buf.data, (unsigned)l->writing_buf.size);
    l->server->stats.forward_link_writes++;
    /* Most turns' commands fit the socket buffer: write them now. A
     * uv_write that completes at once costs libuv an epoll_ctl and defers
     * the next flush to its callback; on a busy backup that was one
     * epoll_ctl per link write (bench/analysis.md). */
    int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    if (n == (int)b.len) {
        l->writing_buf.size = 0;
        l->unsent = 0; /* every queued command was written */
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        /* Nothing of this buffer was written: its commands stay unsent. */
        l->writing_buf.size = 0;
        link_fail(l, "lost the connection to the primary");
        return;
    }
    if (n > 0) {
        /* Part is out: any queued write may reach the primary (-UNKNOWN,
         * not -TRYAGAIN, if the link fails now). */
        l->unsent = 0;
        b.base += n;
        b.len -= (unsigned)n;
    }
    l->write_req.data = l;
    int rc =
        uv_write(&l->write_req, (uv_stream_t *)&l->tcp, &b, 1, on_link_write);
    if (rc != 0) {
        l->writing_buf.size = 0;
        link_fail(l, "lost the connection to the primary");
        return;
    }
    l->writing = true;
    l->unsent = 0; /* every queued command is in this write */
}

void forward_flush_all(struct server *s)
{
    if (s->link)
        link_flush(s->link);
    struct link *l = s->draining;
    while (l) {
        struct link *next = l->next_draining;
        link_flush(l);
        l = next;
    }
}

/* ------------------------------------------------------------ opening */

static void on_link_connect(uv_connect_t *req, int status)
{
    struct link *l = req->data;
    struct server *s = l->server;
    if (l->state == LINK_CLOSING)
        return;
    if (status < 0) {
        s->backoff_target = l->target;
        s->backoff_until_ms = server_now_ms(s) + FORWARD_BACKOFF_MS;
        link_fail(l, "cannot connect to the primary");
        return;
    }
    l->state = LINK_READY;
    if (uv_read_start((uv_stream_t *)&l->tcp, on_link_alloc, on_link_read)) {
        link_fail(l, "cannot read from the primary");
        return;
    }
    link_flush(l);
}

static void write_handshake(struct server *s, struct link *l)
{
    /* Our replica index and peer token (admit.c): the primary counts a
     * link that proves itself apart from its clients. */
    uint8_t token[NODE_TOKEN_SIZE];
    node_link_token(s->node, token);
    char hex[2 * NODE_TOKEN_SIZE + 1], self[16];
    hex_encode(token, NODE_TOKEN_SIZE, hex);
    int n = snprintf(self, sizeof(self), "%" PRIu32, s->node_config.self);
    ASSERT(n > 0 && (size_t)n < sizeof(self));
    struct resp_arg hop[3] = {
        {"COHORT.NOFORWARD", 16},
        {self, (size_t)n},
        {hex, 2 * NODE_TOKEN_SIZE},
    };
    resp_write_command(&l->out, 3, hop);
    l->handshake_pending++;
}

static struct link *link_open(struct server *s, uint32_t target)
{
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->server = s;
    l->target = target;
    l->state = LINK_CONNECTING;
    l->started_ms = server_now_ms(s);
    resp_buf_init(&l->out, 2);
    resp_buf_init(&l->writing_buf, 2);
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    server_handle_opened(s);
    uv_tcp_nodelay(&l->tcp, 1);
    write_handshake(s, l);
    l->connect_req.data = l;
    int rc = uv_tcp_connect(
        &l->connect_req, &l->tcp,
        (const struct sockaddr *)&s->client_sockaddr[target], on_link_connect);
    if (rc != 0) {
        link_fail(l, "cannot connect to the primary");
        return NULL;
    }
    return l;
}

/* Append the command bytes of slot to l's output. */
static void write_command(struct link *l, const struct slot *slot)
{
    const char *p = slot->payload.data;
    size_t size = slot->payload.size;
    if (slot->kind != SLOT_WRITE) {
        resp_write_raw(&l->out, p, size);
        return;
    }
    /* "*<n>\r\n" then the arguments: insert COHORT.REQ, id and number. */
    const char *lf = memchr(p, '\n', size);
    ASSERT(lf != NULL && p[0] == '*');
    long argc = strtol(p + 1, NULL, 10);
    ASSERT(argc > 0);
    char header[96];
    int n = snprintf(header, sizeof(header), "*%ld\r\n$10\r\nCOHORT.REQ\r\n",
                     argc + 3);
    ASSERT(n > 0 && (size_t)n < sizeof(header));
    resp_write_raw(&l->out, header, (size_t)n);
    char number[24];
    n = snprintf(number, sizeof(number), "%" PRIu64, slot->client_id);
    resp_write_bulk(&l->out, number, (size_t)n);
    n = snprintf(number, sizeof(number), "%" PRIu64, slot->request_no);
    resp_write_bulk(&l->out, number, (size_t)n);
    size_t skip = (size_t)(lf - p) + 1;
    resp_write_raw(&l->out, p + skip, size - skip);
}

bool forward_send(struct server *s, struct slot *slot, uint32_t primary)
{
    ASSERT(slot->conn != NULL || slot->ri_request);
    ASSERT(!slot->forwarded);
    ASSERT(slot->payload.size > 0);
    if (s->closing || primary >= s->node_config.replica_count ||
        primary == s->node_config.self || !s->client_sockaddr_ok[primary])
        return false;
    uint64_t now = server_now_ms(s);
    if (s->backoff_target == primary && now < s->backoff_until_ms)
        return false;
    struct link *l = s->link;
    if (l && l->target != primary) {
        s->link = NULL; /* drain the old one */
        l->next_draining = s->draining;
        s->draining = l;
        link_maybe_retire(l);
        l = NULL;
    }
    if (l == NULL) {
        l = link_open(s, primary);
        if (l == NULL)
            return false;
        s->link = l;
    }
    write_command(l, slot);
    slot->forwarded = true;
    slot->link_next = NULL;
    if (l->tail)
        l->tail->link_next = slot;
    else {
        l->head = slot;
        l->head_since_ms = now;
    }
    l->tail = slot;
    l->count++;
    l->unsent++;
    s->stats.forwarded++;
    return true;
}

void forward_orphan(struct slot *slot)
{
    ASSERT(slot->forwarded);
    slot->conn = NULL;
}

static void link_tick(struct link *l, uint64_t now)
{
    if (l->state == LINK_CONNECTING &&
        now - l->started_ms > FORWARD_CONNECT_TIMEOUT_MS) {
        l->server->backoff_target = l->target;
        l->server->backoff_until_ms = now + FORWARD_BACKOFF_MS;
        link_fail(l, "connecting to the primary timed out");
        return;
    }
    if (l->head && now - l->head_since_ms > FORWARD_REPLY_TIMEOUT_MS) {
        char why[64];
        snprintf(why, sizeof(why), "the primary did not answer for %u ms",
                 FORWARD_REPLY_TIMEOUT_MS);
        link_fail(l, why);
    }
}

/* Whether l's replica is the primary of this replica's view. */
static bool link_current(const struct node_status *st, const struct link *l)
{
    return st->status == STATUS_NORMAL && st->primary == l->target;
}

/* The view moved away from l's replica: l takes no new commands, and what
 * it still owes fails after FORWARD_STALE_GRACE_MS. A write that was handed
 * to the socket may still take effect (the old primary may have prepared it
 * on a quorum, and the new view then commits it), so it gets -UNKNOWN;
 * reads and writes still in l->out never reached it and get -TRYAGAIN (see
 * store_forward_failed). Nothing is re-sent, although a COHORT.REQ write or
 * a read could be: a connection's later commands may already have gone to
 * the new primary, and a re-sent command would run after them. */
static void link_check_view(struct link *l, const struct node_status *st,
                            uint64_t now)
{
    struct server *s = l->server;
    if (link_current(st, l)) {
        l->stale = false;
        return;
    }
    if (s->link == l) {
        s->link = NULL; /* drain it */
        l->next_draining = s->draining;
        s->draining = l;
    }
    if (!l->stale) {
        l->stale = true;
        l->stale_since_ms = now;
    }
    if (l->count == 0) {
        link_maybe_retire(l);
        return;
    }
    if (now - l->stale_since_ms < FORWARD_STALE_GRACE_MS)
        return;
    char why[128];
    if (st->status == STATUS_NORMAL)
        snprintf(why, sizeof(why),
                 "replica %u is no longer the primary (view %" PRIu64
                 " has replica %u)",
                 l->target, st->view, st->primary);
    else
        snprintf(why, sizeof(why),
                 "replica %u is no longer the primary (this replica is "
                 "changing views or recovering)",
                 l->target);
    link_fail(l, why);
}

void forward_tick(struct server *s)
{
    if (s->link == NULL && s->draining == NULL)
        return;
    uint64_t now = server_now_ms(s);
    struct node_status st;
    node_status(s->node, &st);
    if (s->link) {
        struct link *l = s->link;
        link_tick(l, now);
        if (l->state != LINK_CLOSING)
            link_check_view(l, &st, now);
    }
    struct link *l = s->draining;
    while (l) {
        struct link *next = l->next_draining;
        link_tick(l, now);
        if (l->state != LINK_CLOSING)
            link_check_view(l, &st, now);
        l = next;
    }
}

void forward_close_all(struct server *s)
{
    if (s->link)
        link_fail(s->link, "server shutting down");
    while (s->draining)
        link_fail(s->draining, "server shutting down");
}
