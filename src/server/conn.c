/* conn — one client connection: reading and parsing (pipelined), the FIFO of
 * slots that keeps replies in order, output batching and backpressure, and
 * closing. See internal.h for the structures.
 *
 * Input: bytes land in rbuf; conn_process() parses commands from rbuf_pos
 * and dispatches them while conn_can_dispatch() allows. When it does not
 * (pipeline_max commands unanswered, too many bytes held, output piling up,
 * a write session blocked), reading stops and the unparsed bytes wait; the
 * event that lifts the block puts the connection on the resume list and the
 * idle handle calls conn_process() again. Memory per connection is therefore
 * bounded by the read buffer (one request at most), the slots (pipeline_max)
 * and the output (output_buffer_max, past which the client is closed).
 *
 * Order: a connection's commands take effect in the order sent, as on a
 * single Redis server. Store reads may run together and writes may run
 * together (the log keeps writes in order, and a read's index covers every
 * write submitted before it), but a read waits until the writes before it
 * are answered and a write until the reads before it are: otherwise a
 * pipelined SET k 1, GET k, SET k 2 could read 2. Links from backups
 * (COHORT.NOFORWARD) are exempt: they carry many clients, each ordered at
 * its own backup before it is forwarded.
 *
 * Output: a reply goes straight to `out` when no earlier command is still
 * running, otherwise into its slot; when the head slot completes, it and
 * every completed slot behind it move to `out`. The prepare handle writes
 * `out` once per loop turn (conn_flush), so a pipeline's replies leave in
 * one write.
 *
 * Closing: a peer's EOF stops reading but still answers what was received;
 * QUIT and protocol errors answer and then close; a read error or a client
 * that does not read is closed at once. Teardown cancels the slots that the
 * node holds (node_cancel) and orphans the forwarded ones; the memory goes
 * in the handle's close callback.
 *
 * States: OPEN -> (input stopped: EOF, QUIT, error) -> CLOSING (teardown
 * scheduled) -> CLOSED (uv_close called) -> freed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "runtime/addr.h"
#include "server/command.h"
#include "server/internal.h"

/* Room left in the read buffer below which it is compacted or grown. */
#define READ_ROOM_MIN 4096u
/* Header bytes allowed on top of request_size_max for one command. */
#define REQUEST_SLACK 4096u

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_maybe_finish(struct conn *c);

static size_t request_limit(const struct server *s)
{
    return s->config.request_size_max + REQUEST_SLACK;
}

size_t conn_output_size(const struct conn *c)
{
    return c->out.size + c->writing_buf.size + c->slot_reply_bytes;
}

static bool session_blocked(const struct conn *c)
{
    const struct conn_session *ss = &c->session;
    return ss->gate != NULL || ss->stale_running > 0 || ss->queued > 0;
}

bool conn_can_dispatch(const struct conn *c)
{
    const struct server *s = c->server;
    if (c->closing || c->input_stopped || c->pace_wait)
        return false;
    if (c->slot_count >= s->config.pipeline_max)
        return false;
    if (c->slot_bytes >= CONN_INFLIGHT_BYTES_MAX)
        return false;
    if (c->out.size + c->writing_buf.size >= CONN_OUTPUT_SOFT_MAX)
        return false;
    if (c->order_blocked)
        return false;
    /* The forward gate (forward.c): nothing new while a command is held
     * back to be re-sent or released, nor, while commands are on a forward
     * link, unless this replica is a backup of a normal view (a new command
     * then follows them to the primary through the gate, while here it
     * could be proposed, or parked in a view change, ahead of one that the
     * old primary bounces). */
    if (c->fwd_waiting > 0)
        return false;
    if (c->fwd_count > 0 && !forward_backup_normal(s))
        return false;
    return !session_blocked(c);
}

/* ------------------------------------------------------------ accept */

static void on_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    struct server *s = c->server;
    resp_buf_deinit(&c->out);
    resp_buf_deinit(&c->writing_buf);
    tls_port_conn_free(c);
    free(c->rbuf);
    free(c);
    server_conn_gone(s);
}

static void conn_names(struct conn *c)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    snprintf(c->addr, sizeof(c->addr), "?");
    snprintf(c->laddr, sizeof(c->laddr), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_format((struct sockaddr *)&ss, c->addr, sizeof(c->addr));
    len = (int)sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_format((struct sockaddr *)&ss, c->laddr, sizeof(c->laddr));
}

static void conn_init(struct server *s, struct conn *c)
{
    c->server = s;
    c->tcp.data = c;
    c->id = ++s->next_conn_id;
    c->proto = 2;
    resp_buf_init(&c->out, 2);
    resp_buf_init(&c->writing_buf, 2);
    resp_buf_init(&c->txn.queued, 2);
    resp_buf_init(&c->txn.watched, 2);
    auth_conn_start(c);
    c->session.client_id = server_client_id_new(s);
    c->session.next_request_no = 1;
    c->created_ms = c->last_ms = server_now_ms(s);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    s->stats.connections_received++;
}

void conn_accept(struct server *s, uv_stream_t *listener)
{
    struct conn *c = calloc(1, sizeof(*c));
    ASSERT(c);
    uv_tcp_init(s->loop, &c->tcp);
    conn_init(s, c);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        !tls_port_conn_start(c, listener)) {
        conn_teardown(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    conn_names(c);
    admit_accepted(s, c); /* over a limit: on probation (admit.c) */
    conn_process(c);
}

/* ------------------------------------------------------------ slots */

struct slot *conn_slot_push(struct conn *c)
{
    struct slot *slot = server_slot_get(c->server);
    slot->conn = c;
    slot->state = SLOT_RUNNING;
    slot->reply.proto = c->proto;
    slot->command = c->dispatching;
    slot->started_ns = c->dispatch_ns;
    c->dispatching = 0; /* one slot per command */
    if (c->tail)
        c->tail->next = slot;
    else
        c->head = slot;
    c->tail = slot;
    c->slot_count++;
    return slot;
}

static size_t slot_bytes(const struct slot *slot)
{
    return slot->payload.size + slot->reply.size;
}

void conn_slot_kind(struct conn *c, struct slot *slot, enum slot_kind kind)
{
    ASSERT(slot->conn == c && slot->kind == SLOT_OTHER);
    slot->kind = kind;
    if (kind == SLOT_READ)
        c->reads_running++;
    else if (kind == SLOT_WRITE)
        c->writes_running++;
}

bool conn_must_wait(const struct conn *c, const struct command_spec *spec,
                    uint32_t argc, const struct resp_arg *argv)
{
    if (c->no_forward || (c->reads_running == 0 && c->writes_running == 0))
        return false;
    if (txn_queues(c, spec))
        return false; /* queued inside MULTI: answered at once */
    uint32_t kind = command_kind(spec, argc, argv);
    if (kind & CMD_WRITE)
        return c->reads_running > 0;
    if ((kind & CMD_READ) && !c->readonly)
        return c->writes_running > 0;
    return false;
}

/* One reply larger than the whole output limit becomes an error for that
 * command alone: closing would also fail every other command pipelined on
 * the connection (for a backup's link, every forwarded command). */
static void limit_reply(const struct server *s, struct slot *slot)
{
    size_t max = s->config.output_buffer_max;
    if (slot->reply.ok && slot->reply.size <= max)
        return;
    size_t size = slot->reply.size;
    bool oom = !slot->reply.ok;
    slot->reply.size = 0;
    slot->reply.ok = true;
    if (oom)
        resp_write_error(&slot->reply, "ERR out of memory building the reply");
    else
        resp_write_errorf(&slot->reply,
                          "ERR the reply is %zu bytes, over the limit of %zu "
                          "(output-buffer-max); ask for less at once",
                          size, max);
}

void conn_slot_ready(struct conn *c, struct slot *slot)
{
    ASSERT(slot->conn == c);
    ASSERT(slot->state != SLOT_READY);
    ASSERT(!slot->in_node);
    limit_reply(c->server, slot);
    slot->state = SLOT_READY;
    if (slot->command) {
        metrics_command_done(&c->server->metrics, slot->command - 1u,
                             slot->reply.data, slot->reply.size,
                             uv_hrtime() - slot->started_ns);
        slot->command = 0;
    }
    if (slot->kind == SLOT_READ) {
        ASSERT(c->reads_running > 0);
        c->reads_running--;
    } else if (slot->kind == SLOT_WRITE) {
        ASSERT(c->writes_running > 0);
        c->writes_running--;
    }
    if (c->order_blocked && (c->reads_running == 0 || c->writes_running == 0))
        c->order_blocked = false; /* conn_process() looks again */
    c->slot_bytes += slot->reply.size;
    c->slot_reply_bytes += slot->reply.size;
    conn_move_ready(c);
}

/* Past output_buffer_max of output not yet on the socket, and as much
 * again in replies waiting behind it: a client that does not read. A
 * burst of large replies to a client that does read (64 pipelined GETs of
 * 1 MiB) stays under it: they leave the slots only as the output drains
 * (conn_move_ready()). */
static bool output_over_limit(const struct conn *c)
{
    return conn_output_size(c) > 2 * c->server->config.output_buffer_max;
}

void conn_move_ready(struct conn *c)
{
    size_t max = c->server->config.output_buffer_max;
    bool moved = false;
    while (c->head && c->head->state == SLOT_READY) {
        struct slot *h = c->head;
        size_t queued = c->out.size + c->writing_buf.size;
        if (queued > 0 && queued + h->reply.size > max)
            break; /* the rest follows as the output drains */
        c->head = h->next;
        if (c->head == NULL)
            c->tail = NULL;
        resp_write_raw(&c->out, h->reply.data, h->reply.size);
        ASSERT(c->slot_bytes >= slot_bytes(h));
        ASSERT(c->slot_reply_bytes >= h->reply.size);
        c->slot_bytes -= slot_bytes(h);
        c->slot_reply_bytes -= h->reply.size;
        c->slot_count--;
        server_slot_put(c->server, h);
        moved = true;
    }
    if (c->closing)
        return;
    if (moved)
        server_mark_dirty(c->server, c);
    if (output_over_limit(c)) {
        c->server->stats.output_limit_closes++;
        conn_close_soon(c); /* a client that does not read its replies */
        return;
    }
    /* A slot less may lift the pipeline limit or a session block, or let
     * a connection that stopped reading finish. */
    if (!c->reading || c->rbuf_pos < c->rbuf_used || c->session.queued > 0)
        server_mark_resume(c->server, c);
}

void conn_reply_error(struct conn *c, const char *msg)
{
    if (c->head == NULL) {
        resp_write_error(&c->out, msg);
        server_mark_dirty(c->server, c);
        return;
    }
    struct slot *slot = conn_slot_push(c);
    resp_write_error(&slot->reply, msg);
    conn_slot_ready(c, slot);
}

/* ------------------------------------------------------------ input */

size_t conn_read_room(struct conn *c, char **at)
{
    size_t limit = request_limit(c->server);
    if (c->rbuf == NULL) {
        c->rbuf = malloc(CONN_READ_BUFFER_SIZE);
        c->rbuf_size = c->rbuf ? CONN_READ_BUFFER_SIZE : 0;
        c->rbuf_used = c->rbuf_pos = 0;
    }
    if (c->rbuf_size - c->rbuf_used < READ_ROOM_MIN && c->rbuf_pos > 0) {
        memmove(c->rbuf, c->rbuf + c->rbuf_pos, c->rbuf_used - c->rbuf_pos);
        c->rbuf_used -= c->rbuf_pos;
        c->rbuf_pos = 0;
    }
    if (c->rbuf_size - c->rbuf_used < READ_ROOM_MIN && c->rbuf_size < limit) {
        size_t size = c->rbuf_size * 2 < limit ? c->rbuf_size * 2 : limit;
        char *p = realloc(c->rbuf, size);
        if (p) {
            c->rbuf = p;
            c->rbuf_size = size;
        }
    }
    *at = c->rbuf + c->rbuf_used;
    return c->rbuf_size - c->rbuf_used;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = handle->data;
    if (c->tls) {
        *buf = uv_buf_init(c->tls_rbuf, CLIENT_TLS_READ_SIZE);
        return;
    }
    char *at;
    size_t room = conn_read_room(c, &at);
    *buf = uv_buf_init(at, (unsigned)room);
}

static void set_reading(struct conn *c, bool want)
{
    if (c->closing || want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close_soon(c);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

/* Answer "-ERR Protocol error: ..." after the replies owed, then close. */
static void protocol_error(struct conn *c, const char *message)
{
    char text[COHORT_ERR_MESSAGE_MAX + 8];
    snprintf(text, sizeof(text), "ERR %s", message);
    conn_reply_error(c, text);
    c->input_stopped = true;
}

/* An argument longer than any command may carry (see server_open): answer
 * with the limit the operator sets, in the store's own words, then read and
 * drop the rest of the command (up to CONN_DISCARD_MAX; past that, close as
 * after any protocol error). Returns whether to go on parsing. */
static bool argument_too_big(struct conn *c, const struct resp_request *req)
{
    char text[160];
    snprintf(text, sizeof(text),
             "ERR value is %" PRIu64 " bytes; limit is %" PRIu32
             " (max-value-size)",
             req->bulk_size_refused, c->server->node_config.kv.value_size_max);
    conn_reply_error(c, text);
    if (req->bulk_size_refused > CONN_DISCARD_MAX) {
        c->input_stopped = true;
        return false;
    }
    ASSERT(req->bulk_refused_at <= c->rbuf_used - c->rbuf_pos);
    c->rbuf_pos += req->bulk_refused_at;
    c->discard_size = req->bulk_size_refused;
    c->discard_crlf = 2;
    c->discard_args = req->bulk_refused_args_after;
    return true;
}

/* Drop input of a refused command: the rest of the oversized argument,
 * then each argument after it ("$<len>\r\n<len bytes>\r\n"). A payload
 * not followed by CRLF is a protocol error, as in a command parsed whole
 * (the bytes after it would otherwise be read as the next command).
 * Returns whether to go on parsing. */
static bool discard_input(struct conn *c)
{
    size_t avail = c->rbuf_used - c->rbuf_pos;
    ASSERT(avail > 0);
    if (c->discard_size > 0) {
        size_t n = avail < c->discard_size ? avail : (size_t)c->discard_size;
        c->rbuf_pos += n;
        c->discard_size -= n;
        return c->discard_size == 0;
    }
    if (c->discard_crlf > 0) {
        ASSERT(c->discard_crlf <= 2);
        char want = c->discard_crlf == 2 ? '\r' : '\n';
        if (c->rbuf[c->rbuf_pos] != want) {
            protocol_error(c, "Protocol error: missing CRLF after bulk string");
            return false;
        }
        c->rbuf_pos++;
        c->discard_crlf--;
        return true;
    }
    ASSERT(c->discard_args > 0);
    const char *p = c->rbuf + c->rbuf_pos;
    const char *lf = memchr(p, '\n', avail < 32 ? avail : 32);
    if (lf == NULL) {
        if (avail >= 32)
            protocol_error(c, "Protocol error: invalid bulk length");
        else if (c->eof)
            c->input_stopped = true; /* a partial argument, then EOF */
        return false;
    }
    char *end = NULL;
    unsigned long long len = 0;
    if (p[0] == '$' && p[1] >= '0' && p[1] <= '9')
        len = strtoull(p + 1, &end, 10);
    if (end == NULL || end + 1 != lf || *end != '\r' ||
        len > CONN_DISCARD_MAX) {
        protocol_error(c, "Protocol error: invalid bulk length");
        return false;
    }
    c->rbuf_pos += (size_t)(lf - p) + 1;
    c->discard_size = (uint64_t)len;
    c->discard_crlf = 2;
    c->discard_args--;
    return true;
}

/* Make room for a command of `wanted` bytes at the start of the buffer. */
static bool reserve_request(struct conn *c, size_t wanted)
{
    if (c->rbuf_pos > 0) {
        memmove(c->rbuf, c->rbuf + c->rbuf_pos, c->rbuf_used - c->rbuf_pos);
        c->rbuf_used -= c->rbuf_pos;
        c->rbuf_pos = 0;
    }
    if (wanted <= c->rbuf_size)
        return true;
    size_t size = c->rbuf_size * 2 > wanted ? c->rbuf_size * 2 : wanted;
    if (size > request_limit(c->server))
        size = request_limit(c->server);
    char *p = realloc(c->rbuf, size);
    if (p == NULL)
        return false;
    c->rbuf = p;
    c->rbuf_size = size;
    return true;
}

static bool grow_argv(struct server *s, uint32_t argc)
{
    struct resp_arg *p = realloc(s->argv, (size_t)argc * sizeof(*p));
    if (p == NULL)
        return false;
    s->argv = p;
    s->argv_capacity = argc;
    return true;
}

/* Parse and dispatch one command. Returns false when the loop must stop. */
static bool process_one(struct conn *c)
{
    struct server *s = c->server;
    size_t avail = c->rbuf_used - c->rbuf_pos;
    if (avail == 0)
        return false;
    if (c->discard_size > 0 || c->discard_crlf > 0 || c->discard_args > 0)
        return discard_input(c);
    struct resp_request req = {.argv = s->argv,
                               .arg_capacity = s->argv_capacity};
    struct cohort_err err;
    err_clear(&err);
    enum resp_result r = resp_request_parse(c->rbuf + c->rbuf_pos, avail,
                                            &s->limits, &req, &err);
    switch (r) {
    case RESP_NEED_SPACE:
        if (!grow_argv(s, req.argc)) {
            protocol_error(c, "Protocol error: out of memory for arguments");
            return false;
        }
        return true;
    case RESP_NEED_MORE:
        if (req.size_wanted > request_limit(s)) {
            snprintf(err.message, sizeof(err.message),
                     "Protocol error: the command is over %zu bytes, the "
                     "most one command may carry (twice max-value-size "
                     "plus max-key-size); split it",
                     s->config.request_size_max);
            protocol_error(c, err.message);
        } else if (c->eof) {
            c->input_stopped = true; /* a partial command, then EOF */
        } else if (!reserve_request(c, req.size_wanted)) {
            protocol_error(c, "Protocol error: out of memory for request");
        }
        return false;
    case RESP_ERROR:
        if (req.bulk_size_refused > 0)
            return argument_too_big(c, &req);
        protocol_error(c, err.message);
        return false;
    case RESP_COMPLETE:
        break;
    }
    c->rbuf_pos += req.consumed;
    if (req.argc > 0 && !command_dispatch(c, req.argc, req.argv)) {
        c->rbuf_pos -= req.consumed; /* parsed again when it may run */
        c->order_blocked = true;
        return false;
    }
    return true;
}

/* Input a connection reads on while it cannot dispatch, only to see the
 * client close while a LOCK ... WAIT of it is parked (a command pipelined
 * behind the wait would stop reading by the order rule until the answer,
 * up to the wait's deadline): at most this much. */
#define WATCH_CLOSE_INPUT_MAX (64u * 1024u)

static bool watch_close(const struct conn *c)
{
    return c->lock_parked > 0 && !c->tls &&
           c->rbuf_used - c->rbuf_pos < WATCH_CLOSE_INPUT_MAX;
}

void conn_process(struct conn *c)
{
    for (;;) {
        if (c->closing)
            return;
        /* TLS: plaintext the session holds, as rbuf has room for it. */
        size_t added = c->tls ? tls_port_pull(c) : 0;
        (void)read_pace_admit(c->server, c);
        while (conn_can_dispatch(c) && process_one(c)) {
            if (output_over_limit(c)) {
                c->server->stats.output_limit_closes++;
                conn_close_soon(c);
                return;
            }
            if (!read_pace_admit(c->server, c))
                break;
        }
        if (added == 0 || !conn_can_dispatch(c))
            break;
    }
    if (c->closing)
        return;
    if (c->rbuf_pos == c->rbuf_used) {
        c->rbuf_pos = c->rbuf_used = 0;
        if (c->rbuf_size > 4 * CONN_READ_BUFFER_SIZE) {
            free(c->rbuf); /* a big request passed; allocate afresh */
            c->rbuf = NULL;
            c->rbuf_size = 0;
        }
    }
    set_reading(c, !c->eof && (conn_can_dispatch(c) || watch_close(c)));
    conn_maybe_finish(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = stream->data;
    if (c->closing)
        return;
    if (nread > 0 && c->tls) {
        if (!tls_port_feed(c, (size_t)nread))
            conn_close_soon(c);
        conn_process(c);
        return;
    }
    if (nread > 0) {
        c->rbuf_used += (size_t)nread;
        c->server->stats.net_input_bytes += (uint64_t)nread;
        conn_process(c);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_EOF) {
        /* The client will send no more; answer what it sent, then close. */
        c->eof = true;
        set_reading(c, false);
        lock_wait_conn_eof(c); /* nobody will wait for those */
        conn_process(c);
        return;
    }
    if (nread == UV_ENOBUFS) {
        protocol_error(c, "Protocol error: request too large");
        set_reading(c, false);
        return;
    }
    conn_teardown(c); /* reset or another error: nobody to answer */
}

/* ------------------------------------------------------------ output */

/* writing_buf has gone to the socket. */
static void written(struct conn *c)
{
    c->server->stats.net_output_bytes += c->writing_buf.size;
    c->writing_buf.size = 0;
    if (c->writing_buf.capacity > 1u << 20)
        resp_buf_deinit(&c->writing_buf); /* a burst passed */
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = false;
    if (c->closed_handle) {
        c->writing_buf.size = 0;
        return;
    }
    if (status < 0) {
        c->writing_buf.size = 0;
        conn_close_soon(c);
        return;
    }
    written(c);
    conn_move_ready(c); /* replies held back while the output was full */
    if (c->closing)
        return;
    if (c->out.size > 0 || c->tls) /* TLS: the session may hold output */
        conn_flush(c);
    if (!c->reading || c->rbuf_pos < c->rbuf_used)
        server_mark_resume(c->server, c);
    conn_maybe_finish(c);
}

void conn_flush(struct conn *c)
{
    if (c->writing || c->closed_handle)
        return;
    if (!c->out.ok) {
        conn_close_soon(c); /* out of memory building a reply */
        return;
    }
    if (c->tls && !tls_port_seal(c))
        return;
    if (c->out.size == 0)
        return;
    struct resp_buf t = c->writing_buf;
    c->writing_buf = c->out;
    c->out = t;
    if (c->out.data == NULL)
        resp_buf_init(&c->out, c->proto);
    c->out.proto = c->proto;
    c->out.size = 0;
    c->out.ok = true;
    uv_buf_t b =
        uv_buf_init(c->writing_buf.data, (unsigned)c->writing_buf.size);
    /* Most turns' replies fit the socket buffer: write them now. (A
     * uv_write that completes at once still costs libuv an epoll_ctl.) */
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)b.len) {
        written(c);
        if (!c->reading || c->rbuf_pos < c->rbuf_used)
            server_mark_resume(c->server, c);
        conn_maybe_finish(c);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        c->writing_buf.size = 0;
        conn_close_soon(c);
        return;
    }
    if (n > 0) {
        b.base += n;
        b.len -= (unsigned)n;
    }
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        c->writing_buf.size = 0;
        conn_close_soon(c);
        return;
    }
    c->writing = true;
}

/* ------------------------------------------------------------ closing */

static void conn_maybe_finish(struct conn *c)
{
    if (c->closing)
        return;
    bool input_done =
        c->input_stopped || (c->eof && c->rbuf_pos == c->rbuf_used);
    if (input_done && c->head == NULL && !c->writing && c->out.size == 0)
        conn_close_soon(c);
}

void conn_close_soon(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->dirty = false; /* re-listed below so the prepare handle sees it */
    struct server *s = c->server;
    /* Take it off the dirty list if there, then put it on for teardown. */
    for (struct conn **p = &s->dirty; *p; p = &(*p)->dirty_next)
        if (*p == c) {
            *p = c->dirty_next;
            break;
        }
    c->dirty = true;
    c->dirty_next = s->dirty;
    s->dirty = c;
}

static void unlist(struct server *s, struct conn *c)
{
    if (c->dirty) {
        for (struct conn **p = &s->dirty; *p; p = &(*p)->dirty_next)
            if (*p == c) {
                *p = c->dirty_next;
                break;
            }
        c->dirty = false;
    }
    if (c->resume_listed) {
        for (struct conn **p = &s->resume; *p; p = &(*p)->resume_next)
            if (*p == c) {
                *p = c->resume_next;
                break;
            }
        c->resume_listed = false;
    }
    if (c->prev)
        c->prev->next = c->next;
    else if (s->conns == c)
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void conn_teardown(struct conn *c)
{
    if (c->closed_handle)
        return;
    struct server *s = c->server;
    c->closing = true;
    c->closed_handle = true;
    struct slot *slot = c->head;
    while (slot) {
        struct slot *next = slot->next;
        if (slot->in_node) {
            node_cancel(s->node, slot);
            slot->in_node = false;
            store_slot_cancelled(s, slot);
        }
        if (slot->lock_parked)
            lock_wait_forget(s, slot);
        if (slot->forwarded)
            forward_orphan(slot); /* the link frees it */
        else if (slot->backup_read != BR_NONE)
            slot->conn = NULL; /* backup_read.c frees it */
        else if (slot->paced)
            slot->conn = NULL; /* read_pace.c frees it */
        else
            server_slot_put(s, slot);
        slot = next;
    }
    c->head = c->tail = NULL;
    c->slot_count = 0;
    c->slot_bytes = 0;
    c->slot_reply_bytes = 0;
    forward_conn_gone(s, c); /* its held slots were freed above */
    store_conn_gone(s, c);
    txn_conn_gone(c);
    pubsub_conn_gone(c);
    watch_conn_gone(c);
    admit_gone(s, c);
    unlist(s, c);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}
