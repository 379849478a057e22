/* http — a minimal HTTP/1.1 server on the libuv loop, for the metrics port
 * (Prometheus scrapes, the status page and its JSON). Not a web server:
 * GET and HEAD only, one request per connection (every response says
 * "Connection: close"), no request bodies, and hard bounds on everything a
 * stranger controls:
 *
 *   - the request head (request line and headers) is at most HTTP_HEAD_MAX
 *     bytes (431 past it), with at most HTTP_HEADERS_MAX headers;
 *   - a connection lives at most HTTP_TIMEOUT_MS from accept, whatever it
 *     sends (a slow sender is closed: slowloris);
 *   - at most HTTP_CONNECTIONS_MAX connections at once. When full, a new
 *     connection takes the place of the oldest one that has sent no whole
 *     request for HTTP_EVICT_AFTER_MS (a scrape sends its request at once;
 *     a stranger holding slots with half-sent requests no longer locks
 *     scrapes out until HTTP_TIMEOUT_MS); with none such, the new one is
 *     closed at accept.
 *
 * Why not a library: Debian's HTTP server libraries either run their own
 * threads or poll loop (libmicrohttpd) or bring a whole web server (h2o);
 * three GET routes need neither, and a parser this small is easy to bound
 * and to fuzz (http_request_parse() is pure).
 *
 * The handler runs on the loop thread and writes the whole response body
 * at once; the server writes it, shuts the socket down and drains what the
 * client still sends until it closes (so unread bytes never turn the close
 * into a reset that loses the response), within the same time bound.
 *
 * Threads: the loop thread only. */
#ifndef COHORT_HTTP_H
#define COHORT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"
#include "common/resp.h"

#define HTTP_HEAD_MAX 8192u
#define HTTP_HEADERS_MAX 64u
#define HTTP_TIMEOUT_MS 5000u
#define HTTP_CONNECTIONS_MAX 32u
#define HTTP_EVICT_AFTER_MS 250u
#define HTTP_PATH_MAX 256u

enum http_method {
    HTTP_GET = 1,
    HTTP_HEAD = 2,
};

/* What the parser found: a complete head, a prefix of one, or the status
 * to refuse it with. */
enum http_parse {
    HTTP_PARSE_DONE = 0,
    HTTP_PARSE_MORE = 1,
    HTTP_PARSE_BAD = 400,       /* malformed, or a body / Transfer-Encoding */
    HTTP_PARSE_NOT_FOUND = 404, /* a path we will never serve (too long) */
    HTTP_PARSE_METHOD = 405,    /* well formed, not GET or HEAD */
    HTTP_PARSE_TOO_BIG = 431, /* head over HTTP_HEAD_MAX or too many headers */
    HTTP_PARSE_VERSION = 505, /* not HTTP/1.0 or HTTP/1.1 */
};

struct http_request {
    enum http_method method;
    char path[HTTP_PATH_MAX]; /* from '/', without the query string */
    uint32_t header_count;
    size_t head_size; /* bytes of the head, its empty line included */
};

/* Parse the request head at the start of buf (size bytes). Pure. Lines end
 * in CRLF or LF. DONE fills req; MORE means a proper prefix of a head
 * shorter than HTTP_HEAD_MAX; anything else is the status to answer. */
enum http_parse http_request_parse(const char *buf, size_t size,
                                   struct http_request *req);

struct http_response {
    int status;               /* 200 unless the handler says otherwise */
    const char *content_type; /* "text/plain; charset=utf-8" by default */
    struct resp_buf body;     /* the handler appends (resp_write_raw) */
};

/* Fill res for req (HEAD: write the body anyway; the server sends only its
 * length). */
typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *res);

struct http_server;

/* Listen on listen_addr ("host:port"); port_flag names the option that set
 * the port, for the "address in use" message. On failure returns NULL with
 * err naming the address and the fix. */
struct http_server *http_server_open(uv_loop_t *loop, const char *listen_addr,
                                     const char *port_flag,
                                     http_handler_fn handler, void *ctx,
                                     struct cohort_err *err);
/* The port listened on (the kernel's pick for port 0). */
uint16_t http_server_port(const struct http_server *s);
/* Close the listener and every connection; the handler is never called
 * again. The server frees itself once its handles are closed (the loop must
 * run on). */
void http_server_close(struct http_server *s);

/* Requests answered, and connections refused (over the limit) or cut
 * (timeout, bad request), since open. */
struct http_server_stats {
    uint64_t requests;
    uint64_t refused;
    uint64_t evicted; /* made way for a new connection (HTTP_EVICT_AFTER_MS) */
    uint64_t timed_out;
    uint64_t bad;
};
void http_server_stats(const struct http_server *s,
                       struct http_server_stats *out);

#endif
