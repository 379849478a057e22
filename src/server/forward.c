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
 * Re-sending after a move (issue 12). A replica that is no longer the
 * primary answers a link's command it did not run with
 * "-TRYAGAIN NOTPRIMARY ..." (relay.h): the driver's DRIVER_NOT_PRIMARY,
 * which it gives only for a request it never proposed (the busy queue,
 * the batch the core had not seen, or a request that arrived after the
 * role went away; a proposed one ends -UNKNOWN). Its other refusals,
 * -TRYAGAIN for a view change or a full pipeline, are relayed as before:
 * they do not say the primary moved, and a command the same primary
 * refused while busy may be followed on the link by one it ran. Such a
 * bounced slot is held (FWD_BOUNCED) instead of relayed, and
 * forward_release() runs it through the node again, so that it goes to
 * the new primary's link, or is proposed here if this replica now leads.
 * Meanwhile its connection's later commands are held too: the gate.
 *
 *   Gate. A slot of connection c is put on link l only if none of c's
 *   slots is held back and c has no slot on a link other than l (so all
 *   of c's forwarded slots are on one link, c->fwd_link); otherwise it is
 *   held (FWD_GATED). While c holds a slot, c dispatches nothing new, nor,
 *   while c has slots on a link, unless this replica is a backup of a
 *   normal view (a new command could otherwise be proposed here, or parked
 *   by the driver through a view change, ahead of a bounced one). Held
 *   slots are released from the idle handle, in c's order, the first one
 *   first, and the rest only as the gate lets each pass.
 *
 *   Order: a connection's commands take effect in the order sent. Slots
 *   reach the links in c's order (the driver answers NOT_PRIMARY in
 *   submission order, the gate keeps them to one link and behind a held
 *   one), a link and the primary's side of it keep that order, and a
 *   bounced slot h is re-sent only when every later write of c is held
 *   back as well (never sent since, or bounced: certainly not executed and
 *   in flight nowhere) and none of c's slots is on a link other than the
 *   current one (only slots released just before h, in order, can be on
 *   that one); h then goes, and the held ones after it, in order. Were a later
 * write of c answered first (an old primary that leads again and ran it; a
 * write proposed here), it may have taken effect, and h is answered -TRYAGAIN
 *   instead: never run after it. Reads change nothing and conn.c never
 *   runs one together with a write of the same connection.
 *
 *   Exactly once: a re-sent write carries the COHORT.REQ client id and
 *   request number of its first attempt (a session write is not
 *   renumbered), so if any attempt took effect after all, the client
 *   table answers the next with that reply and applies nothing twice.
 *
 *   Bounded: a bounced slot is re-sent at most FORWARD_RESEND_MAX times
 *   and only to a primary other than the one that bounced it, which this
 *   replica must know (a normal view) within resend_wait_ms() (two
 *   view-change timeouts, as the driver parks requests through a view
 *   change): past that it gets the -TRYAGAIN it got before this existed.
 *   A gated slot waits only for the slots before it, each bounded by the
 *   link timeouts above or by that wait. Held slots stay in their
 *   connection's FIFO, so pipeline_max bounds them and the connection's
 *   teardown frees them. The view is looked at each loop turn while
 *   something is held (forward_prepare) and the wait on the 100 ms timer.
 *
 * Invariants: (1) slots on a link are in the order their commands were
 * appended to its output; (2) the newest `unsent` slots' bytes are still in
 * `out`, the others were in a uv_write; (3) a link in LINK_CLOSING has no
 * slots and is neither s->link nor on the draining list; (4) a connection's
 * fwd_count slots on links are all on its fwd_link; (5) a held slot is
 * neither forwarded nor in the node, and is counted in its connection's
 * fwd_waiting (fwd_bounced if bounced) and the server's fwd_waiting.
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
#include "server/relay.h"

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

/* ------------------------------------------------------------ gate */

/* slot (a client's, not orphaned) left its link, answered or failed: the
 * connection's count goes down; its held slots, or commands it stopped
 * dispatching for them, may go on. */
static struct conn *gate_left_link(struct slot *slot)
{
    struct conn *c = slot->ri_request ? NULL : slot->conn;
    if (c == NULL)
        return NULL;
    ASSERT(c->fwd_count > 0);
    if (--c->fwd_count == 0)
        c->fwd_link = NULL;
    if (c->fwd_waiting > 0 || (c->fwd_count == 0 && !c->reading))
        server_mark_resume(c->server, c);
    return c;
}

static bool may_resend(const struct slot *slot)
{
    const struct server *s = slot->server;
    return !s->closing && slot->resends < FORWARD_RESEND_MAX &&
           (slot->kind == SLOT_WRITE || slot->kind == SLOT_READ) &&
           slot->payload.size > 0;
}

/* Hold slot back from the links (kind FWD_GATED or FWD_BOUNCED). */
static void hold(struct conn *c, struct slot *slot, enum fwd_wait kind,
                 uint32_t from)
{
    struct server *s = c->server;
    ASSERT(slot->fwd_wait == FWD_NONE && !slot->forwarded && !slot->in_node);
    slot->fwd_wait = (uint8_t)kind;
    slot->fwd_since_ms = server_now_ms(s);
    slot->bounced_from = from;
    c->fwd_waiting++;
    s->fwd_waiting++;
    if (kind == FWD_BOUNCED) {
        c->fwd_bounced++;
        slot->resends++;
    } else {
        s->stats.forward_gated++;
    }
    server_mark_resume(s, c);
}

static void unhold(struct conn *c, struct slot *slot)
{
    struct server *s = c->server;
    ASSERT(slot->fwd_wait != FWD_NONE);
    ASSERT(c->fwd_waiting > 0 && s->fwd_waiting > 0);
    if (slot->fwd_wait == FWD_BOUNCED) {
        ASSERT(c->fwd_bounced > 0);
        c->fwd_bounced--;
    }
    slot->fwd_wait = FWD_NONE;
    c->fwd_waiting--;
    s->fwd_waiting--;
}

/* c's first held slot, in the connection's order. Searched from the head
 * each time: answering one may free the slots before it. */
static struct slot *first_held(const struct conn *c)
{
    for (struct slot *slot = c->head; slot; slot = slot->next)
        if (slot->fwd_wait != FWD_NONE)
            return slot;
    return NULL;
}

/* Whether the bounced slot h may be re-sent in order: 1 if every later
 * write of its connection is held back too (never sent since, or bounced:
 * certainly not executed, and not in flight); 0 if a later write is still
 * in the node or on a link (wait: it may be bounced as well); -1 if a
 * later write has its answer (it may have taken effect: h can no longer
 * run before it). Every slot after h is still in the FIFO, h not being
 * answered. Reads are skipped: they change nothing, and conn.c never runs
 * one together with a write. */
static int resend_order(const struct slot *h)
{
    for (const struct slot *x = h->next; x; x = x->next) {
        if (x->kind != SLOT_WRITE || x->fwd_wait != FWD_NONE)
            continue;
        return x->state == SLOT_READY ? -1 : 0;
    }
    return 1;
}

/* How long a bounced command waits for a new primary. */
static uint64_t resend_wait_ms(const struct server *s)
{
    uint64_t twice = 2ull * s->node_config.view_change_timeout_ms;
    return twice > FORWARD_RESEND_WAIT_MS ? twice : FORWARD_RESEND_WAIT_MS;
}

static void give_up(struct conn *c, struct slot *slot, const char *why)
{
    unhold(c, slot);
    c->server->stats.forward_resend_failed++;
    store_forward_failed(c->server, slot, false, why);
}

void forward_release(struct conn *c)
{
    struct server *s = c->server;
    uint64_t now = server_now_ms(s);
    while (c->fwd_waiting > 0 && !c->closing) {
        struct slot *slot = first_held(c);
        ASSERT(slot != NULL);
        /* c's slots on a link other than the current one (the one that
         * bounced slot, say) are answered first; those on the current one
         * were released just before slot, which may follow them. */
        bool other_link = c->fwd_count > 0 && c->fwd_link != s->link;
        if (slot->fwd_wait == FWD_BOUNCED) {
            /* Re-sent once no earlier slot of c is on another link, every
             * later write of c is held too, and this replica knows a
             * primary other than the one that bounced it. */
            int order = resend_order(slot);
            if (order < 0) {
                give_up(c, slot,
                        "the primary moved, and a later command of this "
                        "connection ran first");
                continue;
            }
            uint64_t view;
            uint32_t primary;
            bool moved = node_role(s->node, &view, &primary) == STATUS_NORMAL &&
                         primary != slot->bounced_from;
            if (order == 0 || other_link || !moved) {
                if (now - slot->fwd_since_ms < resend_wait_ms(s))
                    return; /* forward_prepare or the timer looks again */
                char why[96];
                snprintf(why, sizeof(why),
                         "the primary moved and no new primary was known "
                         "within %" PRIu64 " ms",
                         resend_wait_ms(s));
                give_up(c, slot, why);
                continue;
            }
            s->stats.forward_resent++;
        } else if (other_link) {
            return; /* gate_left_link() resumes c when they are answered */
        }
        /* Through the node again, as when it was dispatched: to the
         * current primary's link (the gate lets this one pass), or
         * proposed here if this replica leads now. If the gate holds it
         * again (the primary moved meanwhile), stop there. */
        unhold(c, slot);
        uint32_t waiting = c->fwd_waiting;
        c->fwd_passing = slot;
        store_resend(c, slot);
        c->fwd_passing = NULL;
        if (c->fwd_waiting > waiting)
            return; /* held again, first in line */
        /* slot may be freed by now (answered at once): not touched. */
    }
}

bool forward_backup_normal(const struct server *s)
{
    uint64_t view;
    uint32_t primary;
    return node_role(s->node, &view, &primary) == STATUS_NORMAL &&
           primary != s->node_config.self;
}

void forward_conn_gone(struct server *s, struct conn *c)
{
    ASSERT(s->fwd_waiting >= c->fwd_waiting);
    s->fwd_waiting -= c->fwd_waiting;
    c->fwd_waiting = c->fwd_bounced = 0;
}

/* Put every connection with held slots on the resume list. */
static void resume_held(struct server *s)
{
    for (struct conn *c = s->conns; c; c = c->next)
        if (c->fwd_waiting > 0 && !c->closing)
            server_mark_resume(s, c);
}

void forward_prepare(struct server *s)
{
    if (s->fwd_waiting == 0)
        return;
    uint64_t view;
    uint32_t primary;
    int status = (int)node_role(s->node, &view, &primary);
    if (status == s->fwd_seen_status && view == s->fwd_seen_view &&
        primary == s->fwd_seen_primary)
        return;
    s->fwd_seen_status = status;
    s->fwd_seen_view = view;
    s->fwd_seen_primary = primary;
    resume_held(s);
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
        gate_left_link(slot);
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
    struct conn *c = gate_left_link(slot);
    if (c && relay_is_not_primary_hop(reply, size)) {
        /* Certainly not executed, and the primary moved: re-sent to the
         * new one by forward_release(), in the connection's order. */
        s->stats.forward_bounced++;
        if (may_resend(slot)) {
            hold(c, slot, FWD_BOUNCED, l->target);
            return true;
        }
    }
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
    /* The gate: a connection's commands go to one link at a time, and none
     * passes one held back (see the file comment). */
    struct conn *c = slot->ri_request ? NULL : slot->conn;
    if (c && ((c->fwd_waiting > 0 && c->fwd_passing != slot) ||
              (c->fwd_count > 0 && c->fwd_link != l))) {
        hold(c, slot, FWD_GATED, primary);
        return true;
    }
    if (c) {
        c->fwd_count++;
        c->fwd_link = l;
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
 * store_forward_failed). Those are not re-sent: only the old primary's
 * own "not the primary" says that a sent command did not run. */
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
    if (s->fwd_waiting > 0)
        resume_held(s); /* a bounced command's wait may be over */
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
