/* transport — replica-to-replica messaging over TCP on a libuv loop. See
 * transport.h for the contract; this file is the mechanism.
 *
 * Outbound (we dial peer p): struct peer lives as long as the transport and
 * holds the state, the backoff timer and the stats; struct dial is one
 * connection attempt and owns its TCP handle and the send queue. A broken
 * dial is detached from its peer at once and freed by its handle's close
 * callback, so the next attempt never waits for the old handle. The send
 * queue is a list of fixed-size chunks that frames are copied into back to
 * back; one uv_write covers every queued chunk (an array of uv_buf_t, one
 * writev), and written chunks are recycled, so a steady stream allocates
 * nothing.
 *
 * Every connection, either way, has a struct peer_link (runtime/peer_link)
 * that runs the handshake and seals or opens frames; bytes read go through
 * it until it is READY, and so does every byte on a TLS connection. Its
 * output (HELLO, TLS records, AUTH, TLS-sealed frames) goes into the dial's
 * send queue, or, on an accepted connection, out in small writes of their
 * own (an accepted connection carries only the handshake that way).
 *
 * Inbound (a peer dials us): struct conn owns the accepted TCP handle, a
 * handshake timer and one read buffer that frames are parsed from in place.
 * The buffer grows only to hold one frame of at most frame_size_max.
 * Without TLS, a READY connection reads straight into it.
 *
 * Invariants: (1) at most one uv_write per dial is in flight, and it covers a
 * prefix of the queue, so bytes leave in queue order; (2) a frame is queued
 * only if the queue stays within send_queue_bytes_max, and only whole
 * (sealed TLS bytes included); (3) no frame reaches on_message before its
 * connection's link is READY (the peer proved who it is, as the mode
 * demands) and its CRC or MAC matched, and it is delivered as from that
 * proved replica; (4) handles_open counts initialized, not yet closed
 * handles, and the close callback that takes it to zero after
 * transport_close() frees the transport.
 */
#include "runtime/transport.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/grow.h"
#include "runtime/addr.h"
#include "runtime/log_limit.h"

#define FRAME_HEADER_SIZE PEER_LINK_HEADER_MAX /* the largest */
#define RX_SIZE 16384u /* handshake bytes, and TLS records */
#define FRAME_SIZE_LIMIT TRANSPORT_FRAME_SIZE_LIMIT
#define CHUNK_SIZE (64u * 1024u)
#define CHUNK_SPARES_MAX 4u
#define WRITE_BUFS_MAX 64u
#define READ_BUFFER_SIZE (64u * 1024u)
#define INBOUND_MAX 64u
/* Connections from one host still in their handshake: room for every
 * replica of a group on one host redialing at once. */
#define PENDING_PER_HOST_MAX 8u
static_assert(PENDING_PER_HOST_MAX >= COHORT_REPLICAS_MAX - 1,
              "a host's replicas must all fit");
#define LISTEN_BACKLOG 128
#define KEEPALIVE_DELAY_S 10u
/* Refusal warnings: at most this many lines per window (the rest counted). */
#define REFUSAL_LOG_WINDOW_MS 10000u
#define REFUSAL_LOG_BURST 10u
/* Each source host gets its own few lines per window, so that one host's
 * flood cannot hide another's refusal (a member with the wrong secret,
 * say); the hosts seen last are remembered, the least recent making way. */
#define REFUSAL_HOSTS 16u
#define REFUSAL_HOST_BURST 3u
#define HANDSHAKE_TIMEOUT_MS_DEFAULT 5000u
#define STALL_TIMEOUT_MS_DEFAULT 1000u
#define LOG_LINE_MAX 400u
#define PEER_TEXT_MAX 128u
#define REPLICA_NONE UINT32_MAX

static_assert(FRAME_SIZE_LIMIT <= UINT32_MAX - FRAME_HEADER_SIZE,
              "a frame with its header fits in u32");

enum peer_state { PEER_IDLE, PEER_CONNECTING, PEER_HANDSHAKING, PEER_READY };

struct chunk {
    struct chunk *next;
    uint32_t begin; /* first byte not yet written */
    uint32_t end;   /* first free byte */
    uint8_t data[CHUNK_SIZE];
};

struct peer;

struct dial {
    struct transport *t;
    struct peer *peer; /* NULL once detached: closing, callbacks ignored */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    bool writing;
    uint64_t writing_size; /* bytes covered by the write in flight */
    uint64_t queued_size;  /* bytes in the queue, in flight included */
    struct chunk *head;
    struct chunk *tail;
    struct chunk *spares;
    uint32_t spare_count;
    struct peer_link *link;
    uint8_t rx[RX_SIZE]; /* the peer's handshake; later, only TLS records */
};

struct peer {
    struct transport *t;
    uint32_t id;
    enum peer_state state;
    bool flush_pending;
    struct dial *dial; /* the current attempt; NULL when IDLE */
    uv_timer_t timer;  /* IDLE: backoff; CONNECTING, HANDSHAKING: deadline */
    uint32_t backoff_ms;
    uint32_t failures; /* failed attempts since the last READY */
    struct sockaddr_storage addr;
    char text[PEER_TEXT_MAX]; /* "host:port" as configured */
    /* While READY: the token of the process that answered at `addr` (its
     * AUTH; all zeros from a version that did not send it). */
    uint8_t token[TRANSPORT_TOKEN_SIZE];
    struct transport_peer_stats stats;
    uint32_t refusal_hash;    /* of the handshake refusal logged last */
    uint32_t refused_in_hash; /* likewise, on its connections to us */
    uint32_t refused_in;      /* its connections refused since then */
};

struct conn {
    struct transport *t;
    struct conn *prev;
    struct conn *next;
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline */
    uint32_t handles_open;
    bool closing;
    uint32_t from; /* replica id once the link is READY, REPLICA_NONE before */
    struct peer_link *link;
    struct peer_buf in;           /* received frames, parsed in place */
    uint8_t rx[RX_SIZE];          /* handshake bytes, and TLS records */
    char text[ADDR_TEXT_MAX];     /* the remote address */
    struct sockaddr_storage addr; /* the same, if addr_known */
    bool addr_known;
};

/* One write of link output on an accepted connection. */
struct conn_write {
    uv_write_t req;
    struct conn *c;
    size_t size;
    uint8_t data[];
};

struct transport {
    uv_loop_t *loop;
    struct transport_config config; /* peers and bind_host cleared */
    uint32_t handshake_timeout_ms;
    uint32_t stall_timeout_ms;
    bool closing;
    uint32_t handles_open;
    uv_tcp_t listener;
    uv_prepare_t flusher; /* runs queued writes before the loop polls */
    uint16_t port;
    char listen_text[ADDR_TEXT_MAX];
    struct peer peers[COHORT_REPLICAS_MAX];
    struct conn *inbound;
    uint32_t inbound_count;
    uint64_t refused_count;
    uint64_t evicted_count;       /* of which closed by make_room() */
    struct log_limit refusal_log; /* the refusals' warnings, not a flood */
    struct refusal_host {
        struct sockaddr_storage addr;
        uint64_t last_ms; /* 0: slot unused */
        struct log_limit log;
    } refusal_hosts[REFUSAL_HOSTS];
    uint64_t refusals_unlogged; /* since the last refusal line */
    struct peer_auth *auth;     /* how peers prove who they are; our token */
    /* Each peer's token, from its last valid handshake on a connection it
     * dialed to us. */
    uint8_t peer_token[COHORT_REPLICAS_MAX][TRANSPORT_TOKEN_SIZE];
    bool peer_token_known[COHORT_REPLICAS_MAX];
    uint64_t incarnation; /* the group's, 0 while not known (peer_link.h) */
};

static void dial_fail(struct dial *d, const char *reason);
static void flush_schedule(struct peer *p);
static void conn_close(struct conn *c);

__attribute__((format(printf, 3, 4))) static void
transport_log(struct transport *t, enum logline_level level, const char *fmt,
              ...)
{
    if (t->config.on_log == NULL)
        return;
    char line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    t->config.on_log(t->config.ctx, level, line);
}

static void handle_opened(struct transport *t)
{
    t->handles_open++;
}

static void handle_closed(struct transport *t)
{
    ASSERT(t->handles_open > 0);
    t->handles_open--;
    if (t->handles_open > 0)
        return;
    ASSERT(t->closing);
    ASSERT(t->inbound == NULL);
    peer_auth_free(t->auth);
    free(t);
}

static void on_transport_handle_closed(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

/* ---- send queue --------------------------------------------------------- */

static struct chunk *chunk_take(struct dial *d)
{
    struct chunk *c = d->spares;
    ASSERT(c != NULL);
    ASSERT(d->spare_count > 0);
    d->spares = c->next;
    d->spare_count--;
    c->next = NULL;
    c->begin = 0;
    c->end = 0;
    return c;
}

static void chunk_give(struct dial *d, struct chunk *c)
{
    if (d->spare_count >= CHUNK_SPARES_MAX) {
        free(c);
        return;
    }
    c->next = d->spares;
    d->spares = c;
    d->spare_count++;
}

/* Make sure size more bytes fit: the tail chunk's free space plus spare
 * chunks. Returns false when out of memory; the queue is unchanged, so a
 * frame is queued whole or not at all. */
static bool queue_reserve(struct dial *d, size_t size)
{
    size_t room = d->tail != NULL ? CHUNK_SIZE - d->tail->end : 0;
    room += (size_t)d->spare_count * CHUNK_SIZE;
    while (room < size) {
        struct chunk *c = malloc(sizeof(*c));
        if (c == NULL)
            return false;
        c->next = d->spares;
        d->spares = c;
        d->spare_count++;
        room += CHUNK_SIZE;
    }
    return true;
}

/* The queue's last chunk if it has room, else a new chunk put at the end
 * (queue_reserve() made sure one is there to take). */
static struct chunk *tail_with_room(struct dial *d)
{
    struct chunk *c = d->tail;
    if (c != NULL && c->end < CHUNK_SIZE)
        return c;
    c = chunk_take(d);
    if (d->tail != NULL)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    return c;
}

/* Copy bytes to the end of the queue; queue_reserve() made the room. The
 * tail chunk may be in flight: its bytes before `end` stay untouched. */
static void queue_append(struct dial *d, const uint8_t *src, size_t size)
{
    d->queued_size += size;
    while (size > 0) {
        struct chunk *c = tail_with_room(d);
        size_t take = CHUNK_SIZE - c->end;
        if (take > size)
            take = size;
        memcpy(c->data + c->end, src, take);
        c->end += (uint32_t)take;
        src += take;
        size -= take;
    }
}

/* Move everything the link has for the socket to the end of the queue. The
 * caller reserved the room (queue_reserve); bytes are copied straight into
 * the chunks. */
static void queue_append_link(struct dial *d)
{
    size_t size = peer_link_output_size(d->link);
    d->queued_size += size;
    while (size > 0) {
        struct chunk *c = tail_with_room(d);
        size_t room = CHUNK_SIZE - c->end;
        size_t got = peer_link_output_take(d->link, c->data + c->end,
                                           room < size ? room : size);
        ASSERT(got > 0);
        c->end += (uint32_t)got;
        size -= got;
    }
}

/* Drop size written bytes from the front of the queue. No write is in
 * flight, so an emptied tail chunk can be reused from its start. */
static void queue_consume(struct dial *d, uint64_t size)
{
    ASSERT(!d->writing);
    ASSERT(size <= d->queued_size);
    d->queued_size -= size;
    while (size > 0) {
        struct chunk *c = d->head;
        ASSERT(c != NULL);
        uint64_t take = c->end - c->begin;
        if (take > size)
            take = size;
        c->begin += (uint32_t)take;
        size -= take;
        if (c->begin < c->end)
            break;
        if (c == d->tail) {
            c->begin = 0;
            c->end = 0;
            break;
        }
        d->head = c->next;
        chunk_give(d, c);
    }
    ASSERT(size == 0);
}

static void queue_free(struct dial *d)
{
    while (d->head != NULL) {
        struct chunk *c = d->head;
        d->head = c->next;
        free(c);
    }
    while (d->spares != NULL) {
        struct chunk *c = d->spares;
        d->spares = c->next;
        free(c);
    }
    d->tail = NULL;
    d->spare_count = 0;
    d->queued_size = 0;
}

/* ---- outbound ----------------------------------------------------------- */

static void on_dial_written(uv_write_t *req, int status)
{
    struct dial *d = req->data;
    ASSERT(d->writing);
    d->writing = false;
    if (d->peer == NULL)
        return; /* detached: the close callback frees the queue */
    if (status < 0) {
        dial_fail(d, uv_strerror(status));
        return;
    }
    queue_consume(d, d->writing_size);
    d->writing_size = 0;
    if (d->queued_size > 0)
        flush_schedule(d->peer);
}

/* The queued chunks as buffers (up to WRITE_BUFS_MAX); returns the count
 * and their total size in *size. */
static unsigned queue_bufs(const struct dial *d, uv_buf_t *bufs, uint64_t *size)
{
    unsigned count = 0;
    *size = 0;
    for (struct chunk *c = d->head; c != NULL && count < WRITE_BUFS_MAX;
         c = c->next) {
        uint32_t n = c->end - c->begin;
        if (n == 0)
            continue;
        bufs[count++] = uv_buf_init((char *)c->data + c->begin, n);
        *size += n;
    }
    ASSERT(count > 0);
    ASSERT(*size <= d->queued_size);
    return count;
}

/* Write everything queued: what the socket takes at once, the rest (up to
 * WRITE_BUFS_MAX chunks) in one uv_write. */
static void dial_flush(struct dial *d)
{
    ASSERT(d->peer != NULL);
    if (d->writing || d->queued_size == 0)
        return;
    uv_buf_t bufs[WRITE_BUFS_MAX];
    uint64_t size;
    unsigned count;
    /* Write what the socket takes now (usually everything): a uv_write
     * that completes at once still costs libuv an epoll_ctl afterwards. */
    for (;;) {
        count = queue_bufs(d, bufs, &size);
        int n = uv_try_write((uv_stream_t *)&d->tcp, bufs, count);
        if (n < 0 && n != UV_EAGAIN) {
            dial_fail(d, uv_strerror(n));
            return;
        }
        if (n <= 0)
            break;
        d->peer->stats.writes++;
        queue_consume(d, (uint64_t)n);
        if (d->queued_size == 0)
            return;
        if ((uint64_t)n < size) {
            count = queue_bufs(d, bufs, &size);
            break; /* the socket is full: let libuv wait for room */
        }
    }
    int rc = uv_write(&d->write_req, (uv_stream_t *)&d->tcp, bufs, count,
                      on_dial_written);
    if (rc != 0) {
        dial_fail(d, uv_strerror(rc));
        return;
    }
    d->writing = true;
    d->writing_size = size;
    d->peer->stats.writes++;
}

static void on_flush(uv_prepare_t *handle)
{
    struct transport *t = handle->data;
    uv_prepare_stop(handle);
    for (uint32_t i = 0; i < t->config.replica_count; i++) {
        struct peer *p = &t->peers[i];
        if (!p->flush_pending)
            continue;
        p->flush_pending = false;
        if (p->dial != NULL)
            dial_flush(p->dial);
    }
}

static void flush_schedule(struct peer *p)
{
    if (p->flush_pending)
        return;
    p->flush_pending = true;
    uv_prepare_start(&p->t->flusher, on_flush);
}

static void on_dial_closed(uv_handle_t *handle)
{
    struct dial *d = handle->data;
    struct transport *t = d->t;
    ASSERT(d->peer == NULL);
    queue_free(d);
    peer_link_free(d->link);
    free(d);
    handle_closed(t);
}

static void dial_detach(struct dial *d)
{
    struct peer *p = d->peer;
    ASSERT(p != NULL);
    ASSERT(p->dial == d);
    p->dial = NULL;
    p->flush_pending = false;
    d->peer = NULL;
    uv_close((uv_handle_t *)&d->tcp, on_dial_closed);
}

static void on_peer_timer(uv_timer_t *timer);

static uint32_t connect_timeout_ms(const struct transport *t)
{
    return t->stall_timeout_ms / 2;
}

/* Wait before the next attempt: backoff_ms, doubling up to the maximum. */
static void peer_backoff(struct peer *p)
{
    struct transport *t = p->t;
    p->state = PEER_IDLE;
    uv_timer_start(&p->timer, on_peer_timer, p->backoff_ms, 0);
    uint64_t next = (uint64_t)p->backoff_ms * 2;
    if (next > t->config.reconnect_max_ms)
        next = t->config.reconnect_max_ms;
    p->backoff_ms = (uint32_t)next;
}

/* End this attempt and schedule the next. reason NULL: already logged. A
 * peer that stays unreachable is logged once, not at every attempt. */
static void dial_fail(struct dial *d, const char *reason)
{
    struct peer *p = d->peer;
    ASSERT(p != NULL);
    ASSERT(!p->t->closing);
    struct transport *t = p->t;
    if (reason != NULL && p->state == PEER_READY)
        transport_log(t, LOGLINE_WARN,
                      "lost connection to replica %" PRIu32 " at %s: %s", p->id,
                      p->text, reason);
    else if (reason != NULL && p->failures == 0)
        transport_log(t, LOGLINE_WARN,
                      "cannot reach replica %" PRIu32
                      " at %s: %s; retrying every %" PRIu32 "..%" PRIu32 " ms",
                      p->id, p->text, reason, t->config.reconnect_min_ms,
                      t->config.reconnect_max_ms);
    dial_detach(d);
    p->failures++;
    peer_backoff(p);
}

static void peer_ready(struct peer *p)
{
    struct transport *t = p->t;
    ASSERT(p->state == PEER_HANDSHAKING);
    uv_timer_stop(&p->timer);
    p->state = PEER_READY;
    memcpy(p->token, peer_link_peer_token(p->dial->link), sizeof(p->token));
    p->stats.connects++;
    if (p->failures > 0)
        transport_log(t, LOGLINE_INFO,
                      "connected to replica %" PRIu32 " at %s after %" PRIu32
                      " failed attempt%s",
                      p->id, p->text, p->failures, p->failures == 1 ? "" : "s");
    else
        transport_log(t, LOGLINE_INFO, "connected to replica %" PRIu32 " at %s",
                      p->id, p->text);
    p->failures = 0;
    p->backoff_ms = t->config.reconnect_min_ms;
}

static void on_dial_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct dial *d = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char *)d->rx, sizeof(d->rx));
}

/* Queue what the link has to send; false (the attempt failed) when out of
 * memory. */
static bool dial_queue_output(struct dial *d)
{
    if (peer_link_output_size(d->link) == 0)
        return true;
    if (!queue_reserve(d, peer_link_output_size(d->link))) {
        dial_fail(d, "out of memory for the send queue");
        return false;
    }
    queue_append_link(d);
    flush_schedule(d->peer);
    return true;
}

/* Reads on our outbound connection: the peer's handshake, then nothing
 * but TLS records that carry no data (an alert, say). */
/* A handshake the peer's side refused or we refused on our dial: logged
 * when it is new (another reason than the last logged, or the first of a
 * run of failures) and then every REFUSAL_REPEAT attempts, not at every
 * redial (at most every reconnect_max_ms, for as long as it lasts). */
#define REFUSAL_REPEAT 120u
/* Tells one refusal's reason from the next (not a security hash). */
static uint32_t text_hash(const char *text)
{
    return crc32c(0, text, strlen(text));
}

static void log_refusal(struct peer *p, const char *why)
{
    uint32_t hash = text_hash(why);
    if (p->failures == 0 || hash != p->refusal_hash)
        transport_log(p->t, LOGLINE_WARN, "%s", why);
    else if (p->failures % REFUSAL_REPEAT == 0)
        transport_log(p->t, LOGLINE_WARN,
                      "%s (still refused after %" PRIu32 " attempts)", why,
                      p->failures);
    p->refusal_hash = hash;
}

/* Whether a link's peer announced an incarnation other than the one this
 * transport knows now (both nonzero): the link began before this replica
 * learned its group's incarnation. why receives the refusal. */
static bool incarnation_differs(const struct transport *t,
                                const struct peer_link *link, uint32_t id,
                                char *why, size_t size)
{
    uint32_t ours = peer_link_incarnation_tag(t->incarnation);
    uint32_t theirs = peer_link_peer_incarnation(link);
    if (ours == 0 || theirs == 0 || ours == theirs)
        return false;
    peer_link_incarnation_mismatch(t->peers[id].text, id, theirs, ours, why,
                                   size);
    return true;
}

static void on_dial_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf)
{
    struct dial *d = stream->data;
    (void)buf;
    if (d->peer == NULL || nread == 0)
        return;
    struct peer *p = d->peer;
    if (nread < 0) {
        dial_fail(d, nread == UV_EOF ? "connection closed by the peer"
                                     : uv_strerror((int)nread));
        return;
    }
    struct peer_buf plain = {0};
    long used = peer_link_input(d->link, d->rx, (size_t)nread, &plain);
    free(plain.data);
    if (used < 0) {
        /* A refusal (a handshake that did not pass) is logged in full. */
        bool ready = p->state == PEER_READY;
        if (!ready)
            log_refusal(p, peer_link_error(d->link));
        dial_fail(d, ready ? peer_link_error(d->link) : NULL);
        return;
    }
    if ((size_t)used < (size_t)nread || plain.size > 0) {
        dial_fail(d, "unexpected bytes from the peer on our outbound "
                     "connection");
        return;
    }
    if (!dial_queue_output(d))
        return;
    if (p->state == PEER_HANDSHAKING &&
        peer_link_state(d->link) == PEER_LINK_READY) {
        char why[LOG_LINE_MAX];
        if (incarnation_differs(p->t, d->link, p->id, why, sizeof(why))) {
            log_refusal(p, why);
            dial_fail(d, NULL);
            return;
        }
        peer_ready(p);
    }
}

/* Nagle off, keepalive on, and TCP_USER_TIMEOUT (transport.h's
 * stall_timeout_ms): a connection whose sent bytes go unacknowledged that
 * long fails, and the peer is dialled afresh. */
static void tune_socket(struct transport *t, uv_tcp_t *tcp)
{
    uv_tcp_nodelay(tcp, 1);
    uv_tcp_keepalive(tcp, 1, KEEPALIVE_DELAY_S);
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)tcp, &fd) == 0) {
        unsigned int ms = t->stall_timeout_ms;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
    }
}

static void on_dial_connected(uv_connect_t *req, int status)
{
    struct dial *d = req->data;
    if (d->peer == NULL)
        return; /* detached: the connect was cancelled */
    if (status < 0) {
        struct transport *t = d->t;
        uint32_t id = d->peer->id;
        dial_fail(d, uv_strerror(status));
        if (status == UV_ECONNREFUSED && t->config.on_peer_down)
            t->config.on_peer_down(t->config.ctx, id);
        return;
    }
    d->peer->state = PEER_HANDSHAKING;
    tune_socket(d->t, &d->tcp);
    /* Connected: the rest of the deadline is the handshake's. */
    uv_timer_start(&d->peer->timer, on_peer_timer, d->t->handshake_timeout_ms,
                   0);
    d->link = peer_link_new(d->t->auth, d->peer->id, d->peer->text,
                            d->t->incarnation);
    if (d->link == NULL) {
        dial_fail(d, "out of memory (or no random bytes) for the handshake");
        return;
    }
    if (!dial_queue_output(d))
        return;
    int rc = uv_read_start((uv_stream_t *)&d->tcp, on_dial_alloc, on_dial_read);
    if (rc != 0) {
        dial_fail(d, uv_strerror(rc));
        return;
    }
    dial_flush(d);
}

static void dial_start(struct peer *p)
{
    struct transport *t = p->t;
    ASSERT(p->state == PEER_IDLE);
    ASSERT(p->dial == NULL);
    struct dial *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        transport_log(t, LOGLINE_WARN,
                      "cannot dial replica %" PRIu32 ": out of memory", p->id);
        peer_backoff(p);
        return;
    }
    d->t = t;
    d->peer = p;
    int rc = uv_tcp_init(t->loop, &d->tcp);
    ASSERT(rc == 0); /* no socket yet: nothing to fail */
    handle_opened(t);
    d->tcp.data = d;
    d->connect_req.data = d;
    d->write_req.data = d;
    p->dial = d;
    p->state = PEER_CONNECTING;
    /* A SYN lost in a partition is sent again only after 1, 3, 7 s: a
     * connect that has not completed in half the stall timeout is started
     * over (after the back-off), so a healed path is used within about
     * that plus the back-off. */
    uv_timer_start(&p->timer, on_peer_timer, connect_timeout_ms(t), 0);
    rc = uv_tcp_connect(&d->connect_req, &d->tcp,
                        (const struct sockaddr *)&p->addr, on_dial_connected);
    if (rc != 0)
        dial_fail(d, uv_strerror(rc));
}

static void on_peer_timer(uv_timer_t *timer)
{
    struct peer *p = timer->data;
    ASSERT(p->state != PEER_READY);
    if (p->state == PEER_IDLE) {
        dial_start(p);
        return;
    }
    char reason[96];
    bool connecting = p->state == PEER_CONNECTING;
    snprintf(reason, sizeof(reason), "%s within %" PRIu32 " ms",
             connecting ? "no connection" : "no handshake",
             connecting ? connect_timeout_ms(p->t)
                        : p->t->handshake_timeout_ms);
    dial_fail(p->dial, reason);
}

static void on_peer_timer_closed(uv_handle_t *handle)
{
    struct peer *p = handle->data;
    handle_closed(p->t);
}

/* ---- inbound ------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    struct transport *t = c->t;
    ASSERT(c->closing);
    ASSERT(c->handles_open > 0);
    c->handles_open--;
    if (c->handles_open == 0) {
        free(c->in.data);
        peer_link_free(c->link);
        free(c);
    }
    handle_closed(t);
}

static void conn_close(struct conn *c)
{
    struct transport *t = c->t;
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->inbound = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ASSERT(t->inbound_count > 0);
    t->inbound_count--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static bool same_host(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b);

/* Whether c's source host may log another refusal line now: its own
 * REFUSAL_HOST_BURST per window (a host not remembered takes the least
 * recently seen slot). A source not known passes. */
static bool refusal_host_allows(struct transport *t, const struct conn *c,
                                uint64_t now)
{
    if (!c->addr_known)
        return true;
    struct refusal_host *slot = &t->refusal_hosts[0];
    for (uint32_t i = 0; i < REFUSAL_HOSTS; i++) {
        struct refusal_host *h = &t->refusal_hosts[i];
        if (h->last_ms != 0 && same_host(&h->addr, &c->addr)) {
            slot = h;
            break;
        }
        if (h->last_ms < slot->last_ms)
            slot = h;
    }
    if (slot->last_ms == 0 || !same_host(&slot->addr, &c->addr)) {
        slot->addr = c->addr;
        log_limit_init(&slot->log, REFUSAL_LOG_WINDOW_MS, REFUSAL_HOST_BURST);
    }
    slot->last_ms = now ? now : 1;
    uint64_t ignored;
    return log_limit_allow(&slot->log, now, &ignored);
}

/* Refuse an inbound connection before a valid handshake: count it, warn
 * (at most REFUSAL_HOST_BURST lines per source host and REFUSAL_LOG_BURST
 * in all per REFUSAL_LOG_WINDOW_MS, since anyone who can reach the port can
 * make these), close. */
__attribute__((format(printf, 2, 3))) static void
conn_refuse(struct conn *c, const char *fmt, ...)
{
    struct transport *t = c->t;
    t->refused_count++;
    uint64_t now = uv_now(t->loop);
    uint64_t ignored;
    bool allowed = refusal_host_allows(t, c, now) &&
                   log_limit_allow(&t->refusal_log, now, &ignored);
    if (!allowed) {
        t->refusals_unlogged++;
    } else {
        uint64_t left_out = t->refusals_unlogged;
        t->refusals_unlogged = 0;
        char why[LOG_LINE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        if (left_out == 0)
            transport_log(t, LOGLINE_WARN, "refusing %s", why);
        else
            transport_log(t, LOGLINE_WARN,
                          "refusing %s (and %" PRIu64
                          " refusals not logged before it: too many; "
                          "peer_connections_refused in INFO counts all)",
                          why, left_out);
    }
    conn_close(c);
}

/* A bad frame from an authenticated peer: count, log, close. */
static void conn_reject(struct conn *c, const char *what)
{
    struct transport *t = c->t;
    ASSERT(c->from < t->config.replica_count);
    t->peers[c->from].stats.frames_rejected++;
    transport_log(t, LOGLINE_WARN,
                  "replica %" PRIu32 " at %s sent %s: closing the connection",
                  c->from, c->text, what);
    conn_close(c);
}

/* Check one complete frame at `at` (header_size bytes of header, then size
 * bytes) and hand it to on_message. Returns false when it was rejected
 * (the connection is closing). */
static bool frame_deliver(struct conn *c, const uint8_t *at, size_t header_size,
                          uint32_t size)
{
    struct transport *t = c->t;
    const uint8_t *payload = at + header_size;
    char what[200];
    if (!peer_link_open(c->link, at, payload, size, what, sizeof(what))) {
        conn_reject(c, what);
        return false;
    }
    t->peers[c->from].stats.messages_received++;
    t->config.on_message(t->config.ctx, c->from, payload, size);
    return true;
}

/* Move the unparsed tail to the front and make room for `need` bytes, the
 * whole of the frame that starts there. */
static void conn_compact(struct conn *c, size_t off, size_t need)
{
    struct peer_buf *in = &c->in;
    ASSERT(off <= in->size);
    if (off > 0) {
        memmove(in->data, in->data + off, in->size - off);
        in->size -= off;
    }
    if (!grow_bytes_exact(&in->data, &in->cap, need)) {
        transport_log(c->t, LOGLINE_WARN,
                      "replica %" PRIu32
                      " at %s: out of memory for a frame of %zu bytes",
                      c->from, c->text, need);
        conn_close(c);
        return;
    }
    ASSERT(in->size < in->cap);
}

/* Deliver every complete frame in the buffer. Lengths are checked before
 * anything is read past the header. on_message may close the transport, so
 * the loop stops as soon as this connection is closing. */
static void conn_parse(struct conn *c)
{
    struct transport *t = c->t;
    size_t header_size = peer_link_header_size(c->link);
    size_t off = 0;
    size_t need = header_size;
    while (!c->closing) {
        size_t avail = c->in.size - off;
        need = header_size;
        if (avail < need)
            break;
        const uint8_t *at = c->in.data + off;
        uint32_t size = get_u32(at);
        if (size > t->config.frame_size_max) {
            char what[200];
            snprintf(what, sizeof(what),
                     "a frame of %" PRIu32 " bytes; our limit is %" PRIu32
                     " (the largest peer message, which follows "
                     "--max-value-size and --max-key-size: give every "
                     "replica the same limits)",
                     size, t->config.frame_size_max);
            conn_reject(c, what);
            return;
        }
        need = header_size + (size_t)size;
        if (avail < need)
            break;
        if (!frame_deliver(c, at, header_size, size))
            return;
        off += need;
    }
    if (!c->closing)
        conn_compact(c, off, need < READ_BUFFER_SIZE ? READ_BUFFER_SIZE : need);
}

static void on_conn_written(uv_write_t *req, int status)
{
    struct conn_write *w = req->data;
    struct conn *c = w->c;
    free(w);
    if (status < 0 && !c->closing)
        conn_close(c); /* the read side reports why, if anything */
}

/* Send what the link has for the peer (the handshake's bytes) in one
 * write of its own. */
static void conn_send_output(struct conn *c)
{
    size_t size = peer_link_output_size(c->link);
    if (size == 0 || c->closing)
        return;
    struct conn_write *w = malloc(sizeof(*w) + size);
    if (w == NULL) {
        transport_log(c->t, LOGLINE_WARN, "peer %s: out of memory", c->text);
        conn_close(c);
        return;
    }
    w->c = c;
    w->req.data = w;
    w->size = peer_link_output_take(c->link, w->data, size);
    ASSERT(w->size == size);
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)w->size);
    int rc =
        uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_conn_written);
    if (rc != 0) {
        free(w);
        transport_log(c->t, LOGLINE_WARN, "peer %s: %s", c->text,
                      uv_strerror(rc));
        conn_close(c);
    }
}

/* Replica id just reached us: the path between us works. If our own
 * connection to it is waiting out its back-off, or stuck in a connect whose
 * SYN a partition lost, dial again now rather than when the timer says, so
 * that both directions come back together when a partition heals. */
static void peer_path_works(struct transport *t, uint32_t id)
{
    if (id == t->config.self || t->closing)
        return;
    struct peer *p = &t->peers[id];
    if (p->state == PEER_CONNECTING)
        dial_detach(p->dial);
    else if (p->state != PEER_IDLE)
        return;
    uv_timer_stop(&p->timer);
    p->state = PEER_IDLE;
    p->backoff_ms = t->config.reconnect_min_ms;
    dial_start(p);
}

/* Whether the process that dialed c (token) is not the one our READY
 * connection to that id reached at its address: another process claiming
 * the id, e.g. a replica that moved (COHORT.ADDRESS) whose old process still
 * runs. Unknown (no READY connection, or a peer that sends no token):
 * not refused. */
static bool conn_elsewhere(const struct conn *c, uint32_t id)
{
    static const uint8_t zero[TRANSPORT_TOKEN_SIZE];
    const struct peer *p = &c->t->peers[id];
    const uint8_t *token = peer_link_peer_token(c->link);
    return p->state == PEER_READY && memcmp(p->token, zero, sizeof(zero)) &&
           memcmp(token, zero, sizeof(zero)) &&
           memcmp(token, p->token, sizeof(p->token)) != 0;
}

/* The link just became READY: the peer proved it is replica `id`. */
static void conn_authenticated(struct conn *c)
{
    struct transport *t = c->t;
    uint32_t id = peer_link_peer(c->link);
    ASSERT(id < t->config.replica_count);
    uv_timer_stop(&c->timer);
    char why[LOG_LINE_MAX];
    if (incarnation_differs(t, c->link, id, why, sizeof(why))) {
        /* The peer proved its id: one line per reason, then every
         * REFUSAL_REPEAT of its connections, as on the dial side. */
        struct peer *p = &t->peers[id];
        uint32_t hash = text_hash(why);
        if (hash != p->refused_in_hash || ++p->refused_in % REFUSAL_REPEAT == 0)
            transport_log(t, LOGLINE_WARN, "refusing a connection from %s: %s",
                          c->text, why);
        if (hash != p->refused_in_hash)
            p->refused_in = 0;
        p->refused_in_hash = hash;
        t->refused_count++;
        conn_close(c);
        return;
    }
    if (conn_elsewhere(c, id)) {
        conn_refuse(c,
                    "a connection from %s claiming to be replica %" PRIu32
                    ": replica %" PRIu32 " is the process at %s; is an old "
                    "copy of it still running (moved, or its data directory "
                    "copied)? stop it",
                    c->text, id, id, t->peers[id].text);
        return;
    }
    c->from = id;
    memcpy(t->peer_token[id], peer_link_peer_token(c->link),
           TRANSPORT_TOKEN_SIZE);
    t->peer_token_known[id] = true;
    /* A replica that dialed again has abandoned its older connection: close
     * it, so frames still buffered there cannot arrive after newer ones. */
    struct conn *next = NULL;
    for (struct conn *o = t->inbound; o != NULL; o = next) {
        next = o->next;
        if (o != c && o->from == id)
            conn_close(o);
    }
    peer_path_works(t, id);
}

/* Bytes that went through the link: the handshake, or TLS records. */
static void conn_input(struct conn *c, size_t n)
{
    bool was_ready = c->from != REPLICA_NONE;
    long used = peer_link_input(c->link, c->rx, n, &c->in);
    conn_send_output(c);
    if (used < 0) {
        if (was_ready) {
            conn_reject(c, peer_link_error(c->link));
            return;
        }
        conn_refuse(c, "%s", peer_link_error(c->link));
        return;
    }
    if (c->closing || peer_link_state(c->link) != PEER_LINK_READY)
        return;
    if (!was_ready)
        conn_authenticated(c);
    size_t rest = n - (size_t)used; /* frames behind the AUTH, no TLS */
    if (rest > 0) {
        if (!peer_buf_reserve(&c->in, rest)) {
            conn_reject(c, "more than we have memory for");
            return;
        }
        memcpy(c->in.data + c->in.size, c->rx + used, rest);
        c->in.size += rest;
    }
    conn_parse(c);
}

/* Whether reads go straight into the frame buffer: READY, without TLS. */
static bool conn_direct(const struct conn *c)
{
    return c->from != REPLICA_NONE &&
           peer_auth_mode(c->t->auth) != PEER_AUTH_TLS;
}

static void on_conn_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    (void)suggested;
    if (!conn_direct(c)) {
        *buf = uv_buf_init((char *)c->rx, sizeof(c->rx));
        return;
    }
    if (c->in.data == NULL && !peer_buf_reserve(&c->in, READ_BUFFER_SIZE)) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    ASSERT(c->in.size < c->in.cap);
    *buf = uv_buf_init((char *)c->in.data + c->in.size,
                       (unsigned)(c->in.cap - c->in.size));
}

static void conn_read_error(struct conn *c, ssize_t nread)
{
    struct transport *t = c->t;
    uint32_t got = peer_link_hello_received(c->link);
    if (c->from == REPLICA_NONE && got > 0) {
        conn_refuse(c, "peer %s: it left %s", c->text,
                    got < PEER_LINK_HELLO_SIZE
                        ? "in the middle of its handshake"
                        : "before finishing its handshake");
        return;
    }
    if (c->from != REPLICA_NONE && nread != UV_EOF)
        transport_log(t, LOGLINE_WARN,
                      "connection from replica %" PRIu32 " at %s: %s", c->from,
                      c->text, uv_strerror((int)nread));
    conn_close(c);
}

static void on_conn_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        conn_read_error(c, nread);
        return;
    }
    if (!conn_direct(c)) {
        conn_input(c, (size_t)nread);
        return;
    }
    c->in.size += (size_t)nread;
    ASSERT(c->in.size <= c->in.cap);
    conn_parse(c);
}

static void on_conn_timer(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    ASSERT(c->from == REPLICA_NONE);
    uint32_t got = peer_link_hello_received(c->link);
    conn_refuse(c,
                "peer %s: no handshake within %" PRIu32 " ms (got %" PRIu32
                " of the %u hello bytes%s)",
                c->text, c->t->handshake_timeout_ms, got, PEER_LINK_HELLO_SIZE,
                got == PEER_LINK_HELLO_SIZE ? ", then no proof" : "");
}

/* Send our HELLO, start reading and the handshake deadline. */
static void conn_start(struct conn *c)
{
    struct transport *t = c->t;
    tune_socket(t, &c->tcp);
    uv_timer_start(&c->timer, on_conn_timer, t->handshake_timeout_ms, 0);
    c->link = peer_link_new(t->auth, PEER_LINK_NOBODY, c->text, t->incarnation);
    if (c->link == NULL) {
        transport_log(t, LOGLINE_WARN, "peer %s: out of memory", c->text);
        conn_close(c);
        return;
    }
    conn_send_output(c);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read);
    if (rc != 0 && !c->closing) {
        transport_log(t, LOGLINE_WARN, "peer %s: %s", c->text, uv_strerror(rc));
        conn_close(c);
    }
}

static struct conn *conn_new(struct transport *t)
{
    struct conn *c = calloc(1, sizeof(*c));
    ASSERT(c != NULL); /* a few KiB; libuv stalls the listener until the
                          connection is accepted */
    c->t = t;
    c->from = REPLICA_NONE;
    int rc = uv_tcp_init(t->loop, &c->tcp);
    ASSERT(rc == 0);
    rc = uv_timer_init(t->loop, &c->timer);
    ASSERT(rc == 0);
    handle_opened(t);
    handle_opened(t);
    c->handles_open = 2;
    c->tcp.data = c;
    c->timer.data = c;
    snprintf(c->text, sizeof(c->text), "?");
    c->next = t->inbound;
    if (t->inbound != NULL)
        t->inbound->prev = c;
    t->inbound = c;
    t->inbound_count++;
    return c;
}

/* Whether to talk to the peer at ss: anyone may try the handshake when
 * peers authenticate; without authentication, loopback addresses only. */
static bool conn_admissible(struct conn *c, const struct sockaddr_storage *ss,
                            bool known)
{
    struct transport *t = c->t;
    return peer_auth_mode(t->auth) != PEER_AUTH_NONE ||
           (known && peer_auth_loopback((const struct sockaddr *)ss));
}

static bool same_host(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}

/* Room for c, just accepted: a host may hold PENDING_PER_HOST_MAX
 * connections in their handshake, and all hosts INBOUND_MAX connections.
 * Past either, the oldest connection still in its handshake (of c's host,
 * for the first bound) makes way: anyone who can reach the port can open
 * connections and send nothing for the handshake's timeout, and refusing
 * newcomers instead locked real peers out while such connections were held.
 * With the bound per host, one host's connections only ever displace its
 * own. Returns false if c must be refused: every other connection is a
 * proved peer. */
static bool make_room(struct transport *t, struct conn *c)
{
    struct conn *oldest = NULL, *oldest_same = NULL;
    uint32_t same = 0;
    for (struct conn *o = t->inbound; o != NULL; o = o->next) {
        if (o == c || o->from != REPLICA_NONE)
            continue;
        oldest = o; /* the list is newest first */
        if (c->addr_known && o->addr_known && same_host(&o->addr, &c->addr)) {
            oldest_same = o;
            same++;
        }
    }
    struct conn *evict = NULL;
    if (same >= PENDING_PER_HOST_MAX)
        evict = oldest_same;
    else if (t->inbound_count > INBOUND_MAX)
        evict = oldest;
    else
        return true;
    if (evict == NULL)
        return false;
    t->evicted_count++;
    conn_refuse(evict,
                "peer %s: closed before finishing its handshake, to make "
                "room for a newer connection (%u from one host, %u in all, "
                "may be open)",
                evict->text, PENDING_PER_HOST_MAX, INBOUND_MAX);
    return true;
}

static void on_listener_connection(uv_stream_t *server, int status)
{
    struct transport *t = server->data;
    if (status < 0) {
        transport_log(t, LOGLINE_WARN, "accept on %s: %s", t->listen_text,
                      uv_strerror(status));
        return;
    }
    struct conn *c = conn_new(t);
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        transport_log(t, LOGLINE_WARN, "accept on %s: %s", t->listen_text,
                      uv_strerror(rc));
        conn_close(c);
        return;
    }
    int ss_size = (int)sizeof(c->addr);
    c->addr_known =
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->addr, &ss_size) == 0;
    if (c->addr_known)
        addr_format((const struct sockaddr *)&c->addr, c->text,
                    sizeof(c->text));
    if (!conn_admissible(c, &c->addr, c->addr_known)) {
        conn_refuse(c,
                    "peer %s: peers are not authenticated, so only "
                    "loopback addresses may connect; give every replica "
                    "--cluster-secret-file (or --peer-tls-*)",
                    c->text);
        return;
    }
    if (!make_room(t, c)) {
        conn_refuse(c, "peer %s: %u inbound connections are open already",
                    c->text, INBOUND_MAX);
        return;
    }
    conn_start(c);
}

/* ---- open and close ----------------------------------------------------- */

static int config_check(const struct transport_config *cfg,
                        struct cohort_err *err)
{
    if (cfg->replica_count == 0 || cfg->replica_count > COHORT_REPLICAS_MAX)
        return err_set(err, -COHORT_ECONFIG,
                       "transport: replica_count %" PRIu32 " is not in 1..%d",
                       cfg->replica_count, COHORT_REPLICAS_MAX);
    if (cfg->self >= cfg->replica_count)
        return err_set(err, -COHORT_ECONFIG,
                       "transport: self %" PRIu32 " is not in 0..%" PRIu32,
                       cfg->self, cfg->replica_count - 1);
    if (cfg->frame_size_max == 0 || cfg->frame_size_max > FRAME_SIZE_LIMIT)
        return err_set(err, -COHORT_ECONFIG,
                       "transport: frame_size_max %" PRIu32 " is not in 1..%u",
                       cfg->frame_size_max, FRAME_SIZE_LIMIT);
    if (cfg->send_queue_bytes_max <
        (uint64_t)cfg->frame_size_max + FRAME_HEADER_SIZE)
        return err_set(err, -COHORT_ECONFIG,
                       "transport: send_queue_bytes_max %" PRIu64
                       " cannot hold one largest frame (%" PRIu64 " bytes)",
                       cfg->send_queue_bytes_max,
                       (uint64_t)cfg->frame_size_max + FRAME_HEADER_SIZE);
    if (cfg->reconnect_min_ms == 0 ||
        cfg->reconnect_max_ms < cfg->reconnect_min_ms)
        return err_set(err, -COHORT_ECONFIG,
                       "transport: reconnect_min_ms %" PRIu32
                       " and reconnect_max_ms %" PRIu32
                       " must satisfy 0 < min <= max",
                       cfg->reconnect_min_ms, cfg->reconnect_max_ms);
    if (cfg->on_message == NULL)
        return err_set(err, -COHORT_EINVAL, "transport: on_message is NULL");
    for (uint32_t i = 0; i < cfg->replica_count; i++)
        if (cfg->peers[i] == NULL)
            return err_set(err, -COHORT_ECONFIG,
                           "transport: no peer address for replica %" PRIu32,
                           i);
    return 0;
}

static int peers_resolve(struct transport *t,
                         const struct transport_config *cfg,
                         struct cohort_err *err)
{
    for (uint32_t i = 0; i < cfg->replica_count; i++) {
        struct peer *p = &t->peers[i];
        p->t = t;
        p->id = i;
        p->backoff_ms = cfg->reconnect_min_ms;
        snprintf(p->text, sizeof(p->text), "%s", cfg->peers[i]);
        if (i == cfg->self)
            continue;
        int rc = addr_parse(cfg->peers[i], &p->addr, err);
        if (rc != 0)
            return err_wrap(err, "peer address of replica %" PRIu32, i);
        if (addr_port((const struct sockaddr *)&p->addr) == 0)
            return err_set(err, -COHORT_ECONFIG,
                           "peer address of replica %" PRIu32
                           " '%s' has port 0; peers need a real port",
                           i, cfg->peers[i]);
    }
    return 0;
}

/* Without authentication, peers are trusted by address: every one must be
 * a loopback address (resolved, so "localhost" counts). */
static int peers_loopback(const struct transport *t,
                          const struct transport_config *cfg,
                          struct cohort_err *err)
{
    if (peer_auth_mode(t->auth) != PEER_AUTH_NONE)
        return 0;
    for (uint32_t i = 0; i < cfg->replica_count; i++) {
        struct sockaddr_storage ss;
        if (addr_parse(cfg->peers[i], &ss, err) != 0)
            return err_wrap(err, "peer address of replica %" PRIu32, i);
        if (peer_auth_loopback((const struct sockaddr *)&ss))
            continue;
        return err_set(err, -COHORT_ECONFIG,
                       "peer address of replica %" PRIu32
                       " (%s) is not a loopback address and peers are not "
                       "authenticated: give every replica "
                       "--cluster-secret-file FILE (or --peer-tls-cert-file, "
                       "--peer-tls-key-file and --peer-tls-ca-cert-file)",
                       i, cfg->peers[i]);
    }
    return 0;
}

/* How peers authenticate: the secret or the certificates, loaded now. */
static int auth_open(struct transport *t, const struct transport_config *cfg,
                     struct cohort_err *err)
{
    struct peer_auth_config ac = {
        .cluster_id = cfg->cluster_id,
        .self = cfg->self,
        .replica_count = cfg->replica_count,
        .secret_file = cfg->secret_file,
        .tls_cert_file = cfg->tls_cert_file,
        .tls_key_file = cfg->tls_key_file,
        .tls_ca_file = cfg->tls_ca_file,
    };
    char warn[LOG_LINE_MAX];
    t->auth = peer_auth_open(&ac, warn, sizeof(warn), err);
    if (t->auth == NULL)
        return err->code ? err->code : -COHORT_ECONFIG;
    if (warn[0])
        transport_log(t, LOGLINE_WARN, "%s", warn);
    return 0;
}

/* Bind and listen on our own address before any libuv handle exists, so
 * every failure is reported here and nothing needs an asynchronous close.
 * Returns the listening socket, or -1 with err filled. */
static int listen_open(struct transport *t, const struct transport_config *cfg,
                       struct cohort_err *err)
{
    char host[ADDR_HOST_MAX];
    uint16_t port = 0;
    struct sockaddr_storage ss;
    int rc = addr_split(cfg->peers[cfg->self], host, sizeof(host), &port, err);
    if (rc == 0)
        rc = addr_resolve(cfg->bind_host != NULL ? cfg->bind_host : host, port,
                          &ss, err);
    if (rc != 0) {
        err_wrap(err, "our peer address (replica %" PRIu32 ")", cfg->self);
        return -1;
    }
    int fd = addr_listen(&ss, LISTEN_BACKLOG, "port in --peers", err);
    if (fd < 0)
        return -1;
    addr_format((const struct sockaddr *)&ss, t->listen_text,
                sizeof(t->listen_text));
    t->port = addr_port((const struct sockaddr *)&ss);
    return fd;
}

/* Hand the listening socket to libuv and schedule the first dials. */
static void transport_start(struct transport *t, int fd)
{
    int rc = uv_tcp_init(t->loop, &t->listener);
    ASSERT(rc == 0);
    handle_opened(t);
    t->listener.data = t;
    /* A fresh, valid, listening socket: neither call can fail. */
    rc = uv_tcp_open(&t->listener, fd);
    ASSERT(rc == 0);
    rc = uv_listen((uv_stream_t *)&t->listener, LISTEN_BACKLOG,
                   on_listener_connection);
    ASSERT(rc == 0);
    rc = uv_prepare_init(t->loop, &t->flusher);
    ASSERT(rc == 0);
    handle_opened(t);
    t->flusher.data = t;
    for (uint32_t i = 0; i < t->config.replica_count; i++) {
        if (i == t->config.self)
            continue;
        struct peer *p = &t->peers[i];
        rc = uv_timer_init(t->loop, &p->timer);
        ASSERT(rc == 0);
        handle_opened(t);
        p->timer.data = p;
        uv_timer_start(&p->timer, on_peer_timer, 0, 0);
    }
}

struct transport *transport_open(uv_loop_t *loop,
                                 const struct transport_config *config,
                                 struct cohort_err *err)
{
    ASSERT(loop != NULL);
    ASSERT(config != NULL);
    err_clear(err);
    if (config_check(config, err) != 0)
        return NULL;
    struct transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        err_set(err, -COHORT_ENOMEM, "transport: out of memory");
        return NULL;
    }
    t->loop = loop;
    t->config = *config;
    t->incarnation = config->incarnation;
    log_limit_init(&t->refusal_log, REFUSAL_LOG_WINDOW_MS, REFUSAL_LOG_BURST);
    t->handshake_timeout_ms = config->handshake_timeout_ms != 0
                                  ? config->handshake_timeout_ms
                                  : HANDSHAKE_TIMEOUT_MS_DEFAULT;
    t->stall_timeout_ms = config->stall_timeout_ms != 0
                              ? config->stall_timeout_ms
                              : STALL_TIMEOUT_MS_DEFAULT;
    int fd = -1;
    if (auth_open(t, config, err) != 0 || peers_resolve(t, config, err) != 0 ||
        peers_loopback(t, config, err) != 0 ||
        (fd = listen_open(t, config, err)) < 0) {
        peer_auth_free(t->auth);
        free(t);
        return NULL;
    }
    /* Borrowed strings: copied into peers[].text, not kept. */
    memset(t->config.peers, 0, sizeof(t->config.peers));
    t->config.bind_host = NULL;
    t->config.secret_file = NULL;
    t->config.tls_cert_file = NULL;
    t->config.tls_key_file = NULL;
    t->config.tls_ca_file = NULL;
    char line[LOG_LINE_MAX];
    peer_auth_describe(t->auth, line, sizeof(line));
    transport_log(t, LOGLINE_INFO, "%s", line);
    transport_start(t, fd);
    return t;
}

void transport_send(struct transport *t, uint32_t to, const uint8_t *data,
                    size_t size)
{
    ASSERT(to < t->config.replica_count);
    ASSERT(to != t->config.self);
    ASSERT(size <= t->config.frame_size_max);
    struct peer *p = &t->peers[to];
    struct dial *d = p->dial;
    if (p->state != PEER_READY) {
        p->stats.messages_dropped++;
        return;
    }
    /* Whole or not at all: the room for the sealed frame is reserved before
     * sealing, since sealed TLS bytes cannot be taken back. */
    uint64_t frame_size = peer_link_sealed_size(d->link, size);
    bool fits = d->queued_size + frame_size <= t->config.send_queue_bytes_max;
    if (!fits || !queue_reserve(d, (size_t)frame_size)) {
        p->stats.messages_dropped++;
        return;
    }
    uint8_t header[FRAME_HEADER_SIZE];
    if (!peer_link_seal(d->link, data, (uint32_t)size, header)) {
        p->stats.messages_dropped++;
        dial_fail(d, peer_link_error(d->link));
        return;
    }
    if (peer_auth_mode(t->auth) == PEER_AUTH_TLS) {
        ASSERT(peer_link_output_size(d->link) <= frame_size);
        queue_append_link(d);
    } else {
        queue_append(d, header, peer_link_header_size(d->link));
        queue_append(d, data, size);
    }
    p->stats.messages_sent++;
    flush_schedule(p);
}

int transport_check_peer_addr(const struct transport *t, uint32_t peer,
                              const char *addr, struct sockaddr_storage *out,
                              struct cohort_err *err)
{
    if (peer >= t->config.replica_count || peer == t->config.self)
        return err_set(err, -COHORT_EINVAL,
                       "transport: replica %" PRIu32
                       " is not a peer of this replica",
                       peer);
    if (strlen(addr) >= PEER_TEXT_MAX)
        return err_set(err, -COHORT_ECONFIG,
                       "peer address of replica %" PRIu32
                       " is longer than %u bytes",
                       peer, PEER_TEXT_MAX - 1u);
    if (addr_parse(addr, out, err) != 0)
        return err_wrap(err, "peer address of replica %" PRIu32, peer);
    if (addr_port((const struct sockaddr *)out) == 0)
        return err_set(err, -COHORT_ECONFIG,
                       "peer address of replica %" PRIu32
                       " '%s' has port 0; peers need a real port",
                       peer, addr);
    if (peer_auth_mode(t->auth) == PEER_AUTH_NONE &&
        !peer_auth_loopback((const struct sockaddr *)out))
        return err_set(err, -COHORT_ECONFIG,
                       "peer address of replica %" PRIu32
                       " (%s) is not a loopback address and peers are not "
                       "authenticated: give every replica "
                       "--cluster-secret-file FILE (or --peer-tls-*)",
                       peer, addr);
    return 0;
}

int transport_set_peer(struct transport *t, uint32_t peer, const char *addr,
                       struct cohort_err *err)
{
    ASSERT(!t->closing);
    struct sockaddr_storage ss;
    int rc = transport_check_peer_addr(t, peer, addr, &ss, err);
    if (rc != 0)
        return rc;
    struct peer *p = &t->peers[peer];
    if (strcmp(p->text, addr) == 0)
        return 0;
    transport_log(t, LOGLINE_INFO, "replica %" PRIu32 " moved: %s -> %s", peer,
                  p->text, addr);
    p->addr = ss;
    snprintf(p->text, sizeof(p->text), "%s", addr);
    /* Connections the old address's process dialed to us: it no longer
     * speaks for this id (the new one dials us itself). */
    for (struct conn *c = t->inbound, *next; c != NULL; c = next) {
        next = c->next;
        if (c->from == peer)
            conn_close(c);
    }
    t->peer_token_known[peer] = false;
    /* Dial the new address at once: the current attempt or connection goes
     * to the old one. */
    p->backoff_ms = t->config.reconnect_min_ms;
    p->failures = 0;
    if (p->dial != NULL) {
        dial_detach(p->dial);
        p->state = PEER_IDLE;
    }
    if (p->state == PEER_IDLE)
        uv_timer_start(&p->timer, on_peer_timer, 0, 0);
    return 0;
}

void transport_stats(const struct transport *t, uint32_t peer,
                     struct transport_peer_stats *out)
{
    ASSERT(peer < t->config.replica_count);
    const struct peer *p = &t->peers[peer];
    *out = p->stats;
    out->connected = p->state == PEER_READY;
    out->bytes_queued = p->dial != NULL ? p->dial->queued_size : 0;
}

void transport_set_incarnation(struct transport *t, uint64_t incarnation)
{
    if (t->closing || incarnation == t->incarnation)
        return;
    t->incarnation = incarnation;
    char why[LOG_LINE_MAX];
    struct conn *next = NULL;
    for (struct conn *c = t->inbound; c != NULL; c = next) {
        next = c->next;
        if (c->from < t->config.replica_count &&
            incarnation_differs(t, c->link, c->from, why, sizeof(why))) {
            transport_log(t, LOGLINE_WARN, "closing %s", why);
            conn_close(c);
        }
    }
    for (uint32_t id = 0; id < t->config.replica_count; id++) {
        struct peer *p = &t->peers[id];
        if (p->state == PEER_READY &&
            incarnation_differs(t, p->dial->link, id, why, sizeof(why))) {
            transport_log(t, LOGLINE_WARN, "%s", why);
            dial_fail(p->dial, NULL);
        }
    }
}

uint64_t transport_incarnation(const struct transport *t)
{
    return t->incarnation;
}

uint32_t transport_peers_heard(const struct transport *t, uint32_t *announcer,
                               uint32_t *tag)
{
    bool heard[COHORT_REPLICAS_MAX] = {false};
    *announcer = UINT32_MAX;
    *tag = 0;
    for (uint32_t id = 0; id < t->config.replica_count; id++) {
        const struct peer *p = &t->peers[id];
        const struct peer_link *link = NULL;
        if (p->state == PEER_READY)
            link = p->dial->link;
        for (const struct conn *c = t->inbound; c != NULL && link == NULL;
             c = c->next)
            if (c->from == id)
                link = c->link;
        if (link == NULL)
            continue;
        heard[id] = true;
        if (*announcer == UINT32_MAX && peer_link_peer_incarnation(link)) {
            *announcer = id;
            *tag = peer_link_peer_incarnation(link);
        }
    }
    uint32_t count = 0;
    for (uint32_t id = 0; id < t->config.replica_count; id++)
        count += heard[id] ? 1u : 0u;
    return count;
}

uint16_t transport_port(const struct transport *t)
{
    return t->port;
}

uint64_t transport_refused_count(const struct transport *t)
{
    return t->refused_count;
}

uint64_t transport_evicted_count(const struct transport *t)
{
    return t->evicted_count;
}

enum peer_auth_mode transport_auth_mode(const struct transport *t)
{
    return peer_auth_mode(t->auth);
}

void transport_token(const struct transport *t,
                     uint8_t out[TRANSPORT_TOKEN_SIZE])
{
    peer_auth_token(t->auth, out);
}

bool transport_peer_token(const struct transport *t, uint32_t peer,
                          uint8_t out[TRANSPORT_TOKEN_SIZE])
{
    if (peer >= t->config.replica_count || !t->peer_token_known[peer])
        return false;
    memcpy(out, t->peer_token[peer], TRANSPORT_TOKEN_SIZE);
    return true;
}

void transport_close(struct transport *t)
{
    ASSERT(!t->closing);
    t->closing = true;
    uv_close((uv_handle_t *)&t->listener, on_transport_handle_closed);
    uv_close((uv_handle_t *)&t->flusher, on_transport_handle_closed);
    for (uint32_t i = 0; i < t->config.replica_count; i++) {
        if (i == t->config.self)
            continue;
        struct peer *p = &t->peers[i];
        if (p->dial != NULL)
            dial_detach(p->dial);
        p->state = PEER_IDLE;
        uv_close((uv_handle_t *)&p->timer, on_peer_timer_closed);
    }
    while (t->inbound != NULL)
        conn_close(t->inbound);
}
