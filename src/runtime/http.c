/* http — a minimal HTTP/1.1 GET server. See http.h.
 *
 * A connection goes READING (the head arrives into a fixed buffer of
 * HTTP_HEAD_MAX bytes) -> WRITING (the response, built at once by the
 * handler or an error status) -> DRAINING (socket shut down for writing;
 * what the client still sends is read into a scratch buffer and dropped
 * until it closes) -> closed. The periodic timer closes every connection
 * older than HTTP_TIMEOUT_MS, whatever its state.
 *
 * Invariants: (1) conn_count is the number of connections on the list,
 * each with an open (or closing) handle; (2) the handler is called at most
 * once per connection and never after http_server_close(); (3) a
 * connection never holds more than HTTP_HEAD_MAX bytes of input. */
#include "runtime/http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "runtime/addr.h"

#define HTTP_BACKLOG 64
#define HTTP_TIMER_MS 250u
#define HTTP_SCRATCH_SIZE 4096u

/* ------------------------------------------------------------ parsing */

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Find the end of the head: the lines up to the first empty one. Sets
 * *line_count (request line included) and *head_size. */
static enum http_parse find_head(const char *buf, size_t size,
                                 uint32_t *line_count, size_t *head_size)
{
    size_t limit = size < HTTP_HEAD_MAX ? size : HTTP_HEAD_MAX;
    size_t pos = 0;
    uint32_t lines = 0;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', limit - pos);
        if (nl == NULL)
            return size >= HTTP_HEAD_MAX ? HTTP_PARSE_TOO_BIG : HTTP_PARSE_MORE;
        size_t len = (size_t)(nl - (buf + pos));
        if (len > 0 && buf[pos + len - 1] == '\r')
            len--;
        pos = (size_t)(nl - buf) + 1;
        if (len == 0) {
            if (lines == 0)
                return HTTP_PARSE_BAD; /* no request line */
            *line_count = lines;
            *head_size = pos;
            return HTTP_PARSE_DONE;
        }
        if (++lines > HTTP_HEADERS_MAX + 1)
            return HTTP_PARSE_TOO_BIG;
    }
}

/* The line at *pos (without its CR LF); advances *pos past it. */
static size_t next_line(const char *buf, size_t *pos, const char **line)
{
    const char *start = buf + *pos;
    const char *nl = strchr(start, '\n'); /* the head ends in one */
    ASSERT(nl != NULL);
    size_t len = (size_t)(nl - start);
    if (len > 0 && start[len - 1] == '\r')
        len--;
    *pos += (size_t)(nl - start) + 1;
    *line = start;
    return len;
}

static enum http_parse parse_version(const char *v, size_t len)
{
    if (len == 8 && memcmp(v, "HTTP/1.", 7) == 0 &&
        (v[7] == '0' || v[7] == '1'))
        return HTTP_PARSE_DONE;
    if (len == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' &&
        v[6] == '.' && v[7] >= '0' && v[7] <= '9')
        return HTTP_PARSE_VERSION;
    return HTTP_PARSE_BAD;
}

/* "METHOD SP target SP HTTP/1.x". */
static enum http_parse parse_request_line(const char *line, size_t len,
                                          struct http_request *req)
{
    const char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line)
        return HTTP_PARSE_BAD;
    size_t method_len = (size_t)(sp1 - line);
    for (size_t i = 0; i < method_len; i++)
        if (!is_tchar((unsigned char)line[i]))
            return HTTP_PARSE_BAD;
    const char *target = sp1 + 1;
    size_t rest = len - method_len - 1;
    const char *sp2 = memchr(target, ' ', rest);
    if (sp2 == NULL || sp2 == target)
        return HTTP_PARSE_BAD;
    size_t target_len = (size_t)(sp2 - target);
    for (size_t i = 0; i < target_len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c >= 0x7f)
            return HTTP_PARSE_BAD;
    }
    if (target[0] != '/')
        return HTTP_PARSE_BAD;
    enum http_parse v = parse_version(sp2 + 1, rest - target_len - 1);
    if (v != HTTP_PARSE_DONE)
        return v;
    if (method_len == 3 && memcmp(line, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (method_len == 4 && memcmp(line, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else
        return HTTP_PARSE_METHOD;
    size_t path_len = strcspn(target, "?# ");
    if (path_len >= sizeof(req->path))
        return HTTP_PARSE_NOT_FOUND;
    memcpy(req->path, target, path_len);
    req->path[path_len] = '\0';
    return HTTP_PARSE_DONE;
}

static bool name_is(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(name, word, len) == 0;
}

/* "name: value". A request with a body (a nonzero Content-Length) or any
 * Transfer-Encoding is refused: GET and HEAD carry none, and a body we do
 * not read is where request smuggling starts. */
static enum http_parse parse_header(const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line)
        return HTTP_PARSE_BAD;
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)line[i]))
            return HTTP_PARSE_BAD;
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return HTTP_PARSE_BAD;
    }
    while (value_len > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        value_len--;
    }
    while (value_len > 0 &&
           (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    if (name_is(line, name_len, "transfer-encoding"))
        return HTTP_PARSE_BAD;
    if (name_is(line, name_len, "content-length") &&
        !(value_len == 1 && value[0] == '0'))
        return HTTP_PARSE_BAD;
    return HTTP_PARSE_DONE;
}

enum http_parse http_request_parse(const char *buf, size_t size,
                                   struct http_request *req)
{
    memset(req, 0, sizeof(*req));
    uint32_t lines = 0;
    size_t head_size = 0;
    enum http_parse rc = find_head(buf, size, &lines, &head_size);
    if (rc != HTTP_PARSE_DONE)
        return rc;
    /* Work on a terminated copy: every line below ends in '\n'. */
    char head[HTTP_HEAD_MAX + 1];
    memcpy(head, buf, head_size);
    head[head_size] = '\0';
    if (memchr(head, '\0', head_size) != NULL)
        return HTTP_PARSE_BAD;
    size_t pos = 0;
    const char *line = NULL;
    size_t len = next_line(head, &pos, &line);
    enum http_parse request_line = parse_request_line(line, len, req);
    if (request_line == HTTP_PARSE_BAD || request_line == HTTP_PARSE_VERSION)
        return request_line;
    for (uint32_t i = 1; i < lines; i++) {
        len = next_line(head, &pos, &line);
        if (line[0] == ' ' || line[0] == '\t')
            return HTTP_PARSE_BAD; /* obsolete line folding */
        rc = parse_header(line, len);
        if (rc != HTTP_PARSE_DONE)
            return rc;
    }
    if (request_line != HTTP_PARSE_DONE)
        return request_line; /* well formed, but a method or path we refuse */
    req->header_count = lines - 1;
    req->head_size = head_size;
    return HTTP_PARSE_DONE;
}

/* ------------------------------------------------------------ server */

enum conn_state {
    CONN_READING = 1,
    CONN_WRITING = 2,
    CONN_DRAINING = 3,
};

struct http_conn {
    uv_tcp_t tcp;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    struct http_server *server;
    struct http_conn *prev, *next;
    enum conn_state state;
    bool closing;
    bool eof; /* the client sends no more */
    uint64_t accepted_ms;
    size_t used;
    char head[HTTP_HEAD_MAX];
    struct resp_buf out;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    uint32_t handles_open;
    bool closing;
    uint16_t port;
    http_handler_fn handler;
    void *ctx;
    struct http_conn *conns;
    uint32_t conn_count;
    struct http_server_stats stats;
    char scratch[HTTP_SCRATCH_SIZE]; /* input after the head, dropped */
};

static void maybe_free(struct http_server *s)
{
    if (s->closing && s->handles_open == 0 && s->conn_count == 0)
        free(s);
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct http_conn *c = handle->data;
    struct http_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ASSERT(s->conn_count > 0);
    s->conn_count--;
    resp_buf_deinit(&c->out);
    free(c);
    maybe_free(s);
}

static void conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (status != 0 || c->eof)
        conn_close(c);
    /* Otherwise keep reading (and dropping) until the client closes. */
}

static void on_write(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->closing)
        return;
    if (status != 0 || c->eof) {
        conn_close(c);
        return;
    }
    c->state = CONN_DRAINING;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Send the status line, the headers and (unless HEAD) body. */
static void respond(struct http_conn *c, bool head_only, int status,
                    const char *content_type, const struct resp_buf *body)
{
    char header[512];
    int n = snprintf(header, sizeof(header),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: default-src 'none'; "
                     "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                     "connect-src 'self'; img-src 'self' data:\r\n"
                     "%s\r\n",
                     status, status_text(status), content_type, body->size,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    ASSERT(n > 0 && (size_t)n < sizeof(header));
    resp_buf_init(&c->out, 2);
    resp_write_raw(&c->out, header, (size_t)n);
    if (!head_only && body->size > 0)
        resp_write_raw(&c->out, body->data, body->size);
    if (!c->out.ok) {
        conn_close(c);
        return;
    }
    c->state = CONN_WRITING;
    c->write_req.data = c;
    uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.size);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0)
        conn_close(c);
}

static void respond_error(struct http_conn *c, int status)
{
    struct resp_buf body;
    resp_buf_init(&body, 2);
    char text[64];
    snprintf(text, sizeof(text), "%d %s\n", status, status_text(status));
    resp_write_raw(&body, text, strlen(text));
    respond(c, false, status, "text/plain; charset=utf-8", &body);
    resp_buf_deinit(&body);
}

static void serve(struct http_conn *c, const struct http_request *req)
{
    struct http_server *s = c->server;
    struct http_response res = {
        .status = 200,
        .content_type = "text/plain; charset=utf-8",
    };
    resp_buf_init(&res.body, 2);
    s->handler(s->ctx, req, &res);
    s->stats.requests++;
    if (res.body.ok)
        respond(c, req->method == HTTP_HEAD, res.status, res.content_type,
                &res.body);
    else
        respond_error(c, 503);
    resp_buf_deinit(&res.body);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct http_conn *c = handle->data;
    if (c->state == CONN_READING) {
        ASSERT(c->used < sizeof(c->head));
        *buf = uv_buf_init(c->head + c->used,
                           (unsigned)(sizeof(c->head) - c->used));
    } else {
        *buf = uv_buf_init(c->server->scratch, sizeof(c->server->scratch));
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct http_conn *c = stream->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        c->eof = true;
        uv_read_stop(stream);
        if (c->state != CONN_WRITING)
            conn_close(c); /* reading: nothing to answer; draining: done */
        return;
    }
    if (c->state != CONN_READING)
        return; /* dropped */
    c->used += (size_t)nread;
    struct http_request req;
    enum http_parse rc = http_request_parse(c->head, c->used, &req);
    if (rc == HTTP_PARSE_MORE)
        return;
    if (rc == HTTP_PARSE_DONE && !c->server->closing) {
        serve(c, &req);
        return;
    }
    c->server->stats.bad++;
    respond_error(c, (int)rc);
}

/* The connection a new one may take the place of when the server is full:
 * the oldest still waiting for its request after HTTP_EVICT_AFTER_MS, not
 * `fresh`; NULL when there is none. */
static struct http_conn *evictable(struct http_server *s,
                                   const struct http_conn *fresh)
{
    uint64_t now = uv_now(s->loop);
    struct http_conn *oldest = NULL;
    for (struct http_conn *c = s->conns; c; c = c->next) {
        if (c == fresh || c->closing || c->state != CONN_READING ||
            now - c->accepted_ms < HTTP_EVICT_AFTER_MS)
            continue;
        if (!oldest || c->accepted_ms < oldest->accepted_ms)
            oldest = c;
    }
    return oldest;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0 || s->closing)
        return;
    struct http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->server = s;
    c->state = CONN_READING;
    c->accepted_ms = uv_now(s->loop);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->conn_count > HTTP_CONNECTIONS_MAX) {
        struct http_conn *old = evictable(s, c);
        if (old == NULL) {
            s->stats.refused++;
            conn_close(c);
            return;
        }
        s->stats.evicted++;
        conn_close(old);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_timer(uv_timer_t *timer)
{
    struct http_server *s = timer->data;
    uint64_t now = uv_now(s->loop);
    for (struct http_conn *c = s->conns; c; c = c->next) {
        if (!c->closing && now - c->accepted_ms >= HTTP_TIMEOUT_MS) {
            s->stats.timed_out++;
            conn_close(c);
        }
    }
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct http_server *s = handle->data;
    ASSERT(s->handles_open > 0);
    s->handles_open--;
    maybe_free(s);
}

struct http_server *http_server_open(uv_loop_t *loop, const char *listen_addr,
                                     const char *port_flag,
                                     http_handler_fn handler, void *ctx,
                                     struct cohort_err *err)
{
    struct sockaddr_storage ss;
    if (addr_parse(listen_addr, &ss, err) != 0) {
        err_wrap(err, "listen %s", listen_addr);
        return NULL;
    }
    int fd = addr_listen(&ss, HTTP_BACKLOG, port_flag, err);
    if (fd < 0)
        return NULL;
    struct http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        err_set(err, -COHORT_ENOMEM, "allocate the HTTP server");
        return NULL;
    }
    s->loop = loop;
    s->handler = handler;
    s->ctx = ctx;
    s->port = addr_port((const struct sockaddr *)&ss);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles_open++;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->handles_open++;
    int rc = uv_tcp_open(&s->listener, fd);
    if (rc != 0)
        close(fd); /* not adopted by the handle */
    if (rc == 0)
        rc =
            uv_listen((uv_stream_t *)&s->listener, HTTP_BACKLOG, on_connection);
    if (rc != 0) {
        err_set(err, -COHORT_EIO, "listen %s: %s", listen_addr,
                uv_strerror(rc));
        http_server_close(s);
        return NULL;
    }
    uv_timer_start(&s->timer, on_timer, HTTP_TIMER_MS, HTTP_TIMER_MS);
    uv_unref((uv_handle_t *)&s->timer);
    return s;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_close(struct http_server *s)
{
    if (s->closing)
        return;
    s->closing = true;
    for (struct http_conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

void http_server_stats(const struct http_server *s,
                       struct http_server_stats *out)
{
    *out = s->stats;
}
