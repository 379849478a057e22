/* client/watch — a watch of libcohort-client that resumes on any member
 * (the contract is "watches" in include/cohort_client.h): on a key, a
 * prefix, or a group's views (COHORT.WATCH GROUP: one event per view, the
 * members in w->view, resumed by revision like the rest).
 *
 * One connection per watch, in RESP2 subscriber mode: BACKOFF -> CONNECT
 * -> [HANDSHAKE] -> [AUTH] -> CONFIRM (COHORT.WATCH sent) -> STREAM (one
 * event per reply, PING when quiet). Any failure of the connection, and
 * an error the member sends mid-stream (it cut the watcher off, or
 * installed a snapshot), closes it and starts again on the next member
 * FROM the resume point (resume.c). Refusals of COHORT.WATCH itself end
 * the watch (FAILED), except a compacted revision, which is asked of the
 * next member until every one in a row refused it.
 *
 * Invariants: (1) started is false only until the first confirmation of a
 * watch opened without COHORT_WATCH_AFTER; from then on every connection
 * asks FROM client_resume_from(); (2) the callback runs only for events
 * client_resume_accept() takes, so the application sees each change
 * once, in order; (3) FAILED is final and result says why. */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "client/resume.h"
#include "common/assert.h"

enum watch_phase {
    WATCH_BACKOFF = 0,
    WATCH_CONNECT,
    WATCH_HANDSHAKE,
    WATCH_AUTH,
    WATCH_CONFIRM,
    WATCH_STREAM,
    WATCH_FAILED,
};

#define WATCH_BACKOFF_MIN_MS 10u
#define WATCH_BACKOFF_MAX_MS 500u
/* Quiet periods (in attempt timeouts) before a PING, and before giving up
 * on the member. */
#define WATCH_QUIET_PINGS 1u
#define WATCH_QUIET_MAX 3u

struct cohort_watch {
    struct cohort_client *c; /* members, login, TLS; never makes calls */
    struct client_conn conn;
    enum watch_phase phase;
    bool prefix;
    bool group;
    struct cohort_watch_member *view; /* a VIEW event's members */
    size_t view_cap;
    char *name;
    size_t name_len;
    bool started;
    struct client_resume resume;
    uint32_t next_member;
    uint32_t compacted_in_a_row;
    uint32_t backoff_ms;
    uint64_t retry_at;
    uint64_t deadline; /* CONNECT..CONFIRM: give up the member then */
    uint64_t last_rx;  /* STREAM: when the member last sent anything */
    uint64_t ping_at;
    uint64_t connections;
    cohort_watch_fn on_event;
    void *ctx;
    int result; /* FAILED */
    struct cohort_err err;
};

static struct resp_arg arg(const char *s)
{
    return (struct resp_arg){.ptr = s, .size = strlen(s)};
}

COHORT_API int cohort_watch_open(struct cohort_watch **out,
                                 const struct cohort_client_options *o,
                                 int flags, const char *name, size_t name_len,
                                 uint64_t after, cohort_watch_fn on_event,
                                 void *ctx)
{
    *out = NULL;
    if (on_event == NULL || (name == NULL && name_len > 0) ||
        (flags & ~(COHORT_WATCH_PREFIX | COHORT_WATCH_AFTER |
                   COHORT_WATCH_GROUP)) != 0 ||
        ((flags & COHORT_WATCH_PREFIX) && (flags & COHORT_WATCH_GROUP)) ||
        ((flags & COHORT_WATCH_AFTER) && after >= INT64_MAX))
        return -COHORT_EINVAL;
    struct cohort_watch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -COHORT_ENOMEM;
    client_conn_init(&w->conn);
    int rc = cohort_client_open(&w->c, o);
    if (rc != 0) {
        client_conn_deinit(&w->conn);
        free(w);
        return rc;
    }
    w->name = malloc(name_len + 1);
    if (w->name == NULL) {
        cohort_watch_close(w);
        return -COHORT_ENOMEM;
    }
    if (name_len > 0)
        memcpy(w->name, name, name_len);
    w->name[name_len] = '\0';
    w->name_len = name_len;
    w->prefix = (flags & COHORT_WATCH_PREFIX) != 0;
    w->group = (flags & COHORT_WATCH_GROUP) != 0;
    w->started = (flags & COHORT_WATCH_AFTER) != 0;
    client_resume_init(&w->resume, w->started ? after : 0);
    w->backoff_ms = WATCH_BACKOFF_MIN_MS;
    w->retry_at = client_now_ms();
    w->on_event = on_event;
    w->ctx = ctx;
    *out = w;
    return 0;
}

COHORT_API void cohort_watch_close(struct cohort_watch *w)
{
    if (w == NULL)
        return;
    client_conn_deinit(&w->conn);
    cohort_client_close(w->c);
    free(w->view);
    free(w->name);
    free(w);
}

/* The connection failed or the member cut the watch off (err says why):
 * try the next member after a backoff. */
static void reconnect(struct cohort_watch *w)
{
    err_wrap(&w->err, "watch on member %s", w->c->members[w->conn.member]);
    client_conn_close(&w->conn);
    w->phase = WATCH_BACKOFF;
    w->retry_at = client_now_ms() + w->backoff_ms;
    w->backoff_ms = w->backoff_ms * 2 > WATCH_BACKOFF_MAX_MS
                        ? WATCH_BACKOFF_MAX_MS
                        : w->backoff_ms * 2;
    w->next_member = (w->conn.member + 1) % w->c->member_count;
}

static void fail(struct cohort_watch *w, int code)
{
    client_conn_close(&w->conn);
    w->phase = WATCH_FAILED;
    w->result = code;
}

static void queue_or_reconnect(struct cohort_watch *w, uint32_t argc,
                               const struct resp_arg *argv)
{
    if (client_conn_queue(&w->conn, argc, argv, &w->err) != 0)
        reconnect(w);
}

/* KEY, PREFIX or GROUP. */
static const char *watch_on(const struct cohort_watch *w)
{
    return w->group ? "GROUP" : w->prefix ? "PREFIX" : "KEY";
}

static void send_watch(struct cohort_watch *w)
{
    char from[24];
    struct resp_arg argv[5] = {arg("COHORT.WATCH"),
                               arg(watch_on(w)),
                               {.ptr = w->name, .size = w->name_len}};
    uint32_t argc = 3;
    if (w->started) {
        snprintf(from, sizeof(from), "%" PRIu64,
                 client_resume_from(&w->resume));
        argv[argc++] = arg("FROM");
        argv[argc++] = arg(from);
    }
    w->phase = WATCH_CONFIRM;
    queue_or_reconnect(w, argc, argv);
}

static void after_connect(struct cohort_watch *w)
{
    if (w->c->password == NULL) {
        send_watch(w);
        return;
    }
    struct resp_arg argv[3] = {arg("AUTH")};
    uint32_t argc = 1;
    if (w->c->username != NULL)
        argv[argc++] = arg(w->c->username);
    argv[argc++] = arg(w->c->password);
    w->phase = WATCH_AUTH;
    queue_or_reconnect(w, argc, argv);
}

static void after_tcp(struct cohort_watch *w)
{
    if (w->c->tls_ctx == NULL) {
        after_connect(w);
        return;
    }
    /* The certificate is checked against the host, brackets stripped; the
     * connect split the same address. */
    char host[CLIENT_ADDR_MAX];
    bool split = client_addr_split(w->c->members[w->conn.member], host,
                                   sizeof(host), NULL);
    ASSERT(split);
    w->phase = WATCH_HANDSHAKE;
    if (client_conn_tls_start(&w->conn, w->c->tls_ctx, host, &w->err) < 0)
        reconnect(w);
}

static void dial(struct cohort_watch *w)
{
    uint32_t m = w->next_member % w->c->member_count;
    w->conn.member = m;
    w->connections++;
    w->phase = WATCH_CONNECT;
    w->deadline = client_now_ms() + w->c->connect_timeout_ms;
    int rc = client_conn_connect(&w->conn, w->c->members[m], &w->err);
    if (rc < 0) {
        reconnect(w);
        return;
    }
    /* The login and the confirmation get one attempt timeout. */
    w->deadline =
        client_now_ms() + w->c->connect_timeout_ms + w->c->attempt_timeout_ms;
    if (rc == 0)
        after_tcp(w);
}

static bool bulk_is(const struct resp_node *n, const char *text)
{
    size_t len = strlen(text);
    return n->type == RESP_TYPE_BULK && n->len == len &&
           memcmp(n->str, text, len) == 0;
}

static bool is_error(const struct resp_node *n)
{
    return n->type == RESP_TYPE_ERROR || n->type == RESP_TYPE_BLOB_ERROR;
}

/* nodes[0] is an array (or push) of count scalars headed by the bulk
 * string head. */
static bool flat_array(const struct client_conn *conn, size_t count,
                       const char *head)
{
    const struct resp_node *n = conn->nodes;
    if ((n[0].type != RESP_TYPE_ARRAY && n[0].type != RESP_TYPE_PUSH) ||
        n[0].len != count || conn->node_count != count + 1)
        return false;
    for (size_t i = 1; i <= count; i++)
        if (resp_node_children(&n[i]) != 0 || n[i].type == RESP_TYPE_MAP)
            return false;
    return bulk_is(&n[1], head);
}

static void on_auth(struct cohort_watch *w)
{
    const struct resp_node *r = w->conn.nodes;
    if (is_error(r)) {
        err_set(&w->err, -COHORT_EAUTH,
                "watch: member %s refused AUTH as user '%s': %.*s; check "
                "the username and password options",
                w->c->members[w->conn.member],
                w->c->username ? w->c->username : "default", (int)r->len,
                r->str);
        fail(w, -COHORT_EAUTH);
        return;
    }
    client_conn_consume(&w->conn);
    send_watch(w);
}

static void on_refusal(struct cohort_watch *w, const struct resp_node *r)
{
    err_set(&w->err, -COHORT_EREPLY, "COHORT.WATCH %s '%s' on member %s: -%.*s",
            watch_on(w), w->name, w->c->members[w->conn.member], (int)r->len,
            r->str);
    bool compacted = r->len > 4 && memcmp(r->str, "ERR ", 4) == 0 &&
                     memmem(r->str, r->len, "is compacted", 12) != NULL;
    if (compacted) {
        if (++w->compacted_in_a_row >= w->c->member_count) {
            w->err.code = -COHORT_ENOTFOUND;
            fail(w, -COHORT_ENOTFOUND);
            return;
        }
        client_conn_consume(&w->conn);
        reconnect(w);
        return;
    }
    bool final = (r->len >= 4 && memcmp(r->str, "ERR ", 4) == 0) ||
                 (r->len >= 7 && memcmp(r->str, "NOPERM ", 7) == 0);
    client_conn_consume(&w->conn);
    if (final)
        fail(w, -COHORT_EREPLY);
    else
        reconnect(w); /* TRYAGAIN, REMOVED, LOADING...: another member */
}

static void on_confirm(struct cohort_watch *w)
{
    const struct resp_node *r = w->conn.nodes;
    if (is_error(r)) {
        on_refusal(w, r);
        return;
    }
    if (!flat_array(&w->conn, 5, "watching") ||
        r[4].type != RESP_TYPE_INTEGER || r[4].integer < 0) {
        err_set(&w->err, -COHORT_EPROTO, "COHORT.WATCH: not a confirmation");
        client_conn_consume(&w->conn);
        reconnect(w);
        return;
    }
    if (!w->started) {
        client_resume_init(&w->resume, (uint64_t)r[4].integer);
        w->started = true;
    }
    client_conn_consume(&w->conn);
    uint64_t now = client_now_ms();
    w->phase = WATCH_STREAM;
    w->last_rx = now;
    w->ping_at = now + WATCH_QUIET_PINGS * w->c->attempt_timeout_ms;
    w->backoff_ms = WATCH_BACKOFF_MIN_MS;
    w->compacted_in_a_row = 0;
}

static bool parse_kind(const struct resp_node *n, enum cohort_watch_kind *k)
{
    if (bulk_is(n, "set"))
        *k = COHORT_WATCH_SET;
    else if (bulk_is(n, "del"))
        *k = COHORT_WATCH_DEL;
    else if (bulk_is(n, "expire"))
        *k = COHORT_WATCH_EXPIRE;
    else
        return false;
    return true;
}

/* ["watch", view, "group", group, [member, data, ...]] into e (members in
 * w->view): false if it is not one. */
static bool parse_view(struct cohort_watch *w, struct cohort_watch_event *e)
{
    const struct client_conn *conn = &w->conn;
    const struct resp_node *r = conn->nodes;
    if ((r[0].type != RESP_TYPE_ARRAY && r[0].type != RESP_TYPE_PUSH) ||
        r[0].len != 5 || conn->node_count < 6 || !bulk_is(&r[1], "watch") ||
        r[2].type != RESP_TYPE_INTEGER || r[2].integer < 0 ||
        !bulk_is(&r[3], "group") || r[4].type != RESP_TYPE_BULK ||
        r[5].type != RESP_TYPE_ARRAY || r[5].len % 2 != 0 ||
        conn->node_count != 6 + r[5].len)
        return false;
    size_t count = r[5].len / 2;
    for (size_t i = 0; i < r[5].len; i++)
        if (r[6 + i].type != RESP_TYPE_BULK)
            return false;
    if (count > w->view_cap) {
        struct cohort_watch_member *v = realloc(w->view, count * sizeof(*v));
        if (v == NULL)
            return false;
        w->view = v;
        w->view_cap = count;
    }
    for (size_t i = 0; i < count; i++)
        w->view[i] = (struct cohort_watch_member){
            .name = r[6 + 2 * i].str,
            .name_len = r[6 + 2 * i].len,
            .data = r[7 + 2 * i].str,
            .data_len = r[7 + 2 * i].len,
        };
    memset(e, 0, sizeof(*e));
    e->revision = (uint64_t)r[2].integer;
    e->kind = COHORT_WATCH_VIEW;
    e->key = r[4].str;
    e->key_len = r[4].len;
    e->member_count = count;
    e->members = w->view;
    return true;
}

static void on_stream(struct cohort_watch *w)
{
    const struct resp_node *r = w->conn.nodes;
    if (is_error(r)) {
        err_set(&w->err, -COHORT_EIO, "cut off: -%.*s", (int)r->len, r->str);
        client_conn_consume(&w->conn);
        reconnect(w);
        return;
    }
    if (flat_array(&w->conn, 2, "pong")) {
        client_conn_consume(&w->conn);
        return;
    }
    struct cohort_watch_event e;
    if (w->group) {
        if (!parse_view(w, &e)) {
            err_set(&w->err, -COHORT_EPROTO, "not a group view event");
            client_conn_consume(&w->conn);
            reconnect(w);
            return;
        }
        if (client_resume_accept(&w->resume, e.revision))
            w->on_event(w, &e, w->ctx);
        client_conn_consume(&w->conn);
        return;
    }
    memset(&e, 0, sizeof(e));
    if (!flat_array(&w->conn, 5, "watch") || r[2].type != RESP_TYPE_INTEGER ||
        r[2].integer < 0 || !parse_kind(&r[3], &e.kind) ||
        r[4].type != RESP_TYPE_BULK ||
        (r[5].type != RESP_TYPE_BULK && r[5].type != RESP_TYPE_NULL)) {
        err_set(&w->err, -COHORT_EPROTO, "not a watch event");
        client_conn_consume(&w->conn);
        reconnect(w);
        return;
    }
    e.revision = (uint64_t)r[2].integer;
    e.key = r[4].str;
    e.key_len = r[4].len;
    e.value = r[5].type == RESP_TYPE_BULK ? r[5].str : NULL;
    e.value_len = r[5].type == RESP_TYPE_BULK ? r[5].len : 0;
    if (client_resume_accept(&w->resume, e.revision))
        w->on_event(w, &e, w->ctx);
    client_conn_consume(&w->conn);
}

/* STREAM, nothing to read: PING a quiet member, leave a silent one (only
 * after reading, so a caller that drives the watch rarely does not take
 * unread events for silence). False when there is nothing to do. */
static bool quiet_step(struct cohort_watch *w, uint64_t now)
{
    uint64_t quiet = now - w->last_rx;
    if (quiet >= WATCH_QUIET_MAX * w->c->attempt_timeout_ms) {
        err_set(&w->err, -COHORT_EIO, "silent for %" PRIu64 " ms", quiet);
        reconnect(w);
        return true;
    }
    if (now < w->ping_at)
        return false;
    struct resp_arg ping = arg("PING");
    w->ping_at = now + w->c->attempt_timeout_ms;
    queue_or_reconnect(w, 1, &ping);
    return true;
}

/* One step of I/O on the connection: false when it must wait. */
static bool io_step(struct cohort_watch *w, uint64_t now)
{
    struct client_conn *conn = &w->conn;
    if (w->phase != WATCH_STREAM && now >= w->deadline) {
        err_set(&w->err, -COHORT_EIO, "no answer in %" PRIu32 " ms",
                w->c->connect_timeout_ms + w->c->attempt_timeout_ms);
        reconnect(w);
        return true;
    }
    int rc;
    if (w->phase == WATCH_CONNECT || w->phase == WATCH_HANDSHAKE) {
        bool tcp = w->phase == WATCH_CONNECT;
        rc = tcp ? client_conn_connect_done(conn, &w->err)
                 : client_conn_handshake(conn, &w->err);
        if (rc < 0)
            reconnect(w);
        else if (rc == 0 && tcp)
            after_tcp(w);
        else if (rc == 0)
            after_connect(w);
        return rc <= 0;
    }
    rc = client_conn_flush(conn, &w->err);
    if (rc != 0) {
        if (rc < 0)
            reconnect(w);
        return rc < 0;
    }
    conn->reading = true;
    rc = client_conn_read(conn, &w->err);
    if (rc < 0) {
        reconnect(w);
        return true;
    }
    if (rc > 0)
        return w->phase == WATCH_STREAM && quiet_step(w, now);
    w->last_rx = now;
    if (w->phase == WATCH_AUTH)
        on_auth(w);
    else if (w->phase == WATCH_CONFIRM)
        on_confirm(w);
    else
        on_stream(w);
    return true;
}

COHORT_API int cohort_watch_process(struct cohort_watch *w)
{
    for (;;) {
        uint64_t now = client_now_ms();
        if (w->phase == WATCH_FAILED)
            return w->result;
        if (w->phase == WATCH_BACKOFF) {
            if (now < w->retry_at)
                return -COHORT_EAGAIN;
            dial(w);
            continue;
        }
        if (!io_step(w, now))
            return -COHORT_EAGAIN;
    }
}

COHORT_API int cohort_watch_fd(const struct cohort_watch *w)
{
    if (w->phase == WATCH_BACKOFF || w->phase == WATCH_FAILED)
        return -1;
    return w->conn.fd;
}

COHORT_API int cohort_watch_wants(const struct cohort_watch *w)
{
    if (cohort_watch_fd(w) < 0)
        return 0;
    short e = client_conn_wants(&w->conn);
    return ((e & POLLIN) ? COHORT_CLIENT_WANT_READ : 0) |
           ((e & POLLOUT) ? COHORT_CLIENT_WANT_WRITE : 0);
}

COHORT_API int cohort_watch_timeout_ms(const struct cohort_watch *w)
{
    uint64_t until;
    if (w->phase == WATCH_FAILED)
        return 60000;
    if (w->phase == WATCH_BACKOFF)
        until = w->retry_at;
    else if (w->phase == WATCH_STREAM) {
        uint64_t quiet_end =
            w->last_rx + WATCH_QUIET_MAX * w->c->attempt_timeout_ms;
        until = w->ping_at < quiet_end ? w->ping_at : quiet_end;
    } else
        until = w->deadline;
    uint64_t now = client_now_ms();
    if (until <= now)
        return 0;
    return until - now > 60000 ? 60000 : (int)(until - now);
}

COHORT_API int cohort_watch_run(struct cohort_watch *w, int timeout_ms)
{
    uint64_t end =
        client_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int rc = cohort_watch_process(w);
        if (rc != -COHORT_EAGAIN)
            return rc;
        uint64_t now = client_now_ms();
        if (now >= end)
            return 0;
        int t = cohort_watch_timeout_ms(w);
        if ((uint64_t)t > end - now)
            t = (int)(end - now);
        struct pollfd p = {.fd = cohort_watch_fd(w), .events = 0};
        int wants = cohort_watch_wants(w);
        if (wants & COHORT_CLIENT_WANT_READ)
            p.events |= POLLIN;
        if (wants & COHORT_CLIENT_WANT_WRITE)
            p.events |= POLLOUT;
        if (p.events == 0)
            p.fd = -1;
        (void)poll(&p, 1, t);
    }
}

COHORT_API uint64_t cohort_watch_revision(const struct cohort_watch *w)
{
    return w->resume.last;
}

COHORT_API uint64_t cohort_watch_resumes(const struct cohort_watch *w)
{
    return w->connections > 0 ? w->connections - 1 : 0;
}

COHORT_API const char *cohort_watch_error(const struct cohort_watch *w)
{
    return w->err.message;
}

COHORT_API const char *cohort_watch_member(const struct cohort_watch *w)
{
    return w->c->members[w->conn.member % w->c->member_count];
}
