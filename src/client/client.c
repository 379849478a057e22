/* client — the handle of libcohort-client and its blocking calls: finding
 * the primary, connecting and logging in, and driving the retry state
 * machine (call.c) over deadline-bounded connections (conn.c). The public
 * contract is include/cohort_client.h; the handle's invariants are in
 * internal.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client/call.h"
#include "client/internal.h"
#include "client/reply.h"
#include "common/assert.h"

uint64_t client_random_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        ssize_t n = getrandom(&id, sizeof(id), 0);
        if (n != (ssize_t)sizeof(id)) {
            /* getrandom cannot fail for 8 bytes once the pool is ready;
             * a signal may interrupt it before. */
            ASSERT(n < 0 && errno == EINTR);
            id = 0;
        }
    }
    return id;
}

COHORT_API void cohort_client_options_init(struct cohort_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->deadline_ms = COHORT_CLIENT_DEADLINE_MS_DEFAULT;
    o->attempt_timeout_ms = COHORT_CLIENT_ATTEMPT_TIMEOUT_MS_DEFAULT;
    o->connect_timeout_ms = COHORT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
}

static int check_options(const struct cohort_client_options *o)
{
    if (o == NULL || o->members == NULL || o->member_count == 0 ||
        o->member_count > COHORT_CLIENT_MEMBERS_MAX)
        return -COHORT_EINVAL;
    for (size_t i = 0; i < o->member_count; i++) {
        const char *m = o->members[i];
        if (m == NULL || strlen(m) >= CLIENT_ADDR_MAX ||
            strrchr(m, ':') == NULL || strrchr(m, ':') == m)
            return -COHORT_EINVAL;
    }
    if (o->username != NULL && o->password == NULL)
        return -COHORT_EINVAL;
    return 0;
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

COHORT_API int cohort_client_open(struct cohort_client **out,
                                  const struct cohort_client_options *o)
{
    *out = NULL;
    int rc = check_options(o);
    if (rc != 0)
        return rc;
    struct cohort_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -COHORT_ENOMEM;
    for (size_t i = 0; i < o->member_count; i++)
        snprintf(c->members[i], CLIENT_ADDR_MAX, "%s", o->members[i]);
    c->member_count = (uint32_t)o->member_count;
    c->given_count = c->member_count;
    bool ok = true;
    c->username = dup_or_null(o->username, &ok);
    c->password = dup_or_null(o->password, &ok);
    c->deadline_ms =
        o->deadline_ms ? o->deadline_ms : COHORT_CLIENT_DEADLINE_MS_DEFAULT;
    c->attempt_timeout_ms = o->attempt_timeout_ms
                                ? o->attempt_timeout_ms
                                : COHORT_CLIENT_ATTEMPT_TIMEOUT_MS_DEFAULT;
    c->connect_timeout_ms = o->connect_timeout_ms
                                ? o->connect_timeout_ms
                                : COHORT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    c->client_id = client_random_id();
    c->next_request_no = 1;
    c->primary = -1;
    client_conn_init(&c->wconn);
    for (uint32_t i = 0; i < COHORT_CLIENT_MEMBERS_MAX; i++)
        client_conn_init(&c->rconns[i]);
    resp_buf_init(&c->out, 2);
    if (!ok) {
        cohort_client_close(c);
        return -COHORT_ENOMEM;
    }
    *out = c;
    return 0;
}

COHORT_API void cohort_client_close(struct cohort_client *c)
{
    if (c == NULL)
        return;
    client_conn_deinit(&c->wconn);
    for (uint32_t i = 0; i < COHORT_CLIENT_MEMBERS_MAX; i++)
        client_conn_deinit(&c->rconns[i]);
    resp_buf_deinit(&c->out);
    free(c->args);
    free(c->username);
    free(c->password);
    free(c);
}

COHORT_API const char *cohort_client_error(const struct cohort_client *c)
{
    return c->err.message;
}

COHORT_API uint64_t cohort_client_id(const struct cohort_client *c)
{
    return c->client_id;
}

COHORT_API uint64_t cohort_client_next_request_no(const struct cohort_client *c)
{
    return c->next_request_no;
}

COHORT_API void cohort_client_set_deadline(struct cohort_client *c,
                                           uint32_t deadline_ms)
{
    c->deadline_ms =
        deadline_ms ? deadline_ms : COHORT_CLIENT_DEADLINE_MS_DEFAULT;
}

/* ------------------------------------------------------------ connecting */

/* Send argv on conn and read the reply into conn's nodes. */
static int roundtrip(struct cohort_client *c, struct client_conn *conn,
                     uint32_t argc, const struct resp_arg *argv,
                     uint64_t deadline_ms)
{
    c->out.size = 0;
    resp_write_command(&c->out, argc, argv);
    if (!c->out.ok)
        return err_set(&c->attempt_err, -COHORT_ENOMEM, "a command buffer");
    int rc = client_conn_send(conn, c->out.data, c->out.size, deadline_ms,
                              &c->attempt_err);
    return rc != 0 ? rc : client_conn_recv(conn, deadline_ms, &c->attempt_err);
}

static struct resp_arg arg(const char *s)
{
    return (struct resp_arg){.ptr = s, .size = strlen(s)};
}

/* AUTH on a new connection, if a password is set. -COHORT_EAUTH when the
 * member refuses it. */
static int login(struct cohort_client *c, struct client_conn *conn,
                 uint64_t deadline_ms)
{
    if (c->password == NULL)
        return 0;
    struct resp_arg argv[3] = {arg("AUTH")};
    uint32_t argc = 1;
    if (c->username != NULL)
        argv[argc++] = arg(c->username);
    argv[argc++] = arg(c->password);
    int rc = roundtrip(c, conn, argc, argv, deadline_ms);
    if (rc != 0)
        return rc;
    const struct resp_node *r = &conn->nodes[0];
    if (r->type == RESP_TYPE_ERROR) {
        err_set(&c->attempt_err, -COHORT_EAUTH,
                "member %s refused AUTH as user '%s': %.*s; check the "
                "username and password options",
                c->members[conn->member], c->username ? c->username : "default",
                (int)r->len, r->str);
        client_conn_close(conn);
        return -COHORT_EAUTH;
    }
    client_conn_consume(conn);
    return 0;
}

/* Connect conn to member m and log in, by deadline_ms. */
static int dial(struct cohort_client *c, struct client_conn *conn, uint32_t m,
                uint64_t deadline_ms)
{
    ASSERT(m < c->member_count);
    uint64_t connect_by = client_now_ms() + c->connect_timeout_ms;
    conn->member = m;
    int rc = client_conn_open(
        conn, c->members[m],
        connect_by < deadline_ms ? connect_by : deadline_ms, &c->attempt_err);
    if (rc == 0)
        rc = login(c, conn, deadline_ms);
    if (rc == -COHORT_EIO || rc == -COHORT_EPROTO)
        err_wrap(&c->attempt_err, "member %s", c->members[m]);
    return rc;
}

/* The index of addr among the members, added when new (-1: no room). */
static int member_index(struct cohort_client *c, const char *addr)
{
    for (uint32_t i = 0; i < c->member_count; i++)
        if (strcmp(c->members[i], addr) == 0)
            return (int)i;
    if (c->member_count == COHORT_CLIENT_MEMBERS_MAX)
        return -1;
    snprintf(c->members[c->member_count], CLIENT_ADDR_MAX, "%s", addr);
    return (int)c->member_count++;
}

/* Ask the member conn is connected to where the primary is (and learn
 * the members it names). Returns the primary's index, or -1. */
static int discover(struct cohort_client *c, struct client_conn *conn,
                    uint64_t deadline_ms)
{
    struct resp_arg argv[2] = {arg("INFO"), arg("replication")};
    if (roundtrip(c, conn, 2, argv, deadline_ms) != 0) {
        err_wrap(&c->attempt_err, "member %s: INFO replication",
                 c->members[conn->member]);
        return -2;
    }
    const struct resp_node *r = &conn->nodes[0];
    struct client_layout layout;
    memset(&layout, 0, sizeof(layout));
    if (r->type == RESP_TYPE_BULK || r->type == RESP_TYPE_VERBATIM)
        client_layout_parse(r->str, r->len, &layout);
    client_conn_consume(conn);
    for (size_t i = 0; i < layout.member_count; i++)
        (void)member_index(c, layout.members[i]);
    return layout.has_primary ? member_index(c, layout.primary) : -1;
}

/* Forget the primary after a failure on member m: the next attempt starts
 * discovery at the member after it. */
static void forget_primary(struct cohort_client *c, uint32_t m)
{
    c->primary = -1;
    c->next_try = (m + 1) % c->member_count;
}

/* Open the write connection to the primary, or to any member when the
 * primary is not known (a backup forwards). */
static int ready_write_conn(struct cohort_client *c, uint64_t deadline_ms)
{
    struct client_conn *conn = &c->wconn;
    if (conn->fd >= 0)
        return 0;
    if (c->primary >= 0) {
        int rc = dial(c, conn, (uint32_t)c->primary, deadline_ms);
        if (rc != 0)
            forget_primary(c, (uint32_t)c->primary);
        return rc;
    }
    uint32_t m = c->next_try % c->member_count;
    int rc = dial(c, conn, m, deadline_ms);
    int p = rc == 0 ? discover(c, conn, deadline_ms) : -2;
    if (rc != 0 || p == -2) {
        forget_primary(c, m);
        return rc != 0 ? rc : -COHORT_EIO;
    }
    if (p < 0 || (uint32_t)p == m) {
        c->primary = (int)m; /* a hint: it is the primary or forwards */
        return 0;
    }
    client_conn_close(conn);
    rc = dial(c, conn, (uint32_t)p, deadline_ms);
    if (rc != 0) {
        forget_primary(c, (uint32_t)p);
        return rc;
    }
    c->primary = p;
    return 0;
}

/* Open a READONLY connection to the next member in turn. */
static int ready_read_conn(struct cohort_client *c, uint64_t deadline_ms,
                           struct client_conn **out)
{
    uint32_t m = c->next_read++ % c->member_count;
    struct client_conn *conn = &c->rconns[m];
    *out = conn;
    if (conn->fd >= 0)
        return 0;
    int rc = dial(c, conn, m, deadline_ms);
    if (rc != 0)
        return rc;
    struct resp_arg argv[1] = {arg("READONLY")};
    rc = roundtrip(c, conn, 1, argv, deadline_ms);
    if (rc != 0)
        return rc;
    bool ok = conn->nodes[0].type == RESP_TYPE_SIMPLE;
    client_conn_consume(conn);
    if (!ok) {
        client_conn_close(conn);
        return err_set(&c->attempt_err, -COHORT_EPROTO,
                       "member %s refused READONLY", c->members[m]);
    }
    conn->readonly = true;
    return 0;
}

/* ------------------------------------------------------------ calls */

static void sleep_until(uint64_t when_ms)
{
    uint64_t now = client_now_ms();
    if (when_ms <= now)
        return;
    uint64_t ms = when_ms - now;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Copy the caller's arguments after three reserved slots (COHORT.REQ, the
 * id, the number). */
static int take_args(struct cohort_client *c, int argc, const char *const *argv,
                     const size_t *argv_len)
{
    uint32_t need = (uint32_t)argc + 3;
    if (need > c->arg_capacity) {
        struct resp_arg *args = realloc(c->args, need * sizeof(*args));
        if (args == NULL)
            return -COHORT_ENOMEM;
        c->args = args;
        c->arg_capacity = need;
    }
    for (int i = 0; i < argc; i++) {
        if (argv[i] == NULL)
            return -COHORT_EINVAL;
        c->args[3 + i].ptr = argv[i];
        c->args[3 + i].size = argv_len ? argv_len[i] : strlen(argv[i]);
    }
    return 0;
}

/* One attempt on conn: send the command (wrapped for a write), read the
 * reply. */
static enum call_event exchange(struct cohort_client *c,
                                struct client_conn *conn, bool is_write,
                                uint32_t argc, uint64_t deadline_ms)
{
    char id[24], no[24];
    const struct resp_arg *argv = c->args + 3;
    if (is_write) {
        snprintf(id, sizeof(id), "%" PRIu64, c->client_id);
        snprintf(no, sizeof(no), "%" PRIu64, c->next_request_no);
        c->args[0] = arg("COHORT.REQ");
        c->args[1] = arg(id);
        c->args[2] = arg(no);
        argv = c->args;
        argc += 3;
    }
    c->out.size = 0;
    resp_write_command(&c->out, argc, argv);
    if (!c->out.ok) {
        err_set(&c->attempt_err, -COHORT_ENOMEM, "a command buffer");
        return CALL_EV_NOT_SENT;
    }
    if (client_conn_send(conn, c->out.data, c->out.size, deadline_ms,
                         &c->attempt_err) != 0)
        return CALL_EV_NOT_SENT;
    if (client_conn_recv(conn, deadline_ms, &c->attempt_err) != 0) {
        err_wrap(&c->attempt_err, "member %s", c->members[conn->member]);
        return CALL_EV_LOST;
    }
    return CALL_EV_REPLY;
}

/* Ready a connection for this attempt: 0, -COHORT_EAUTH, or another
 * failure (nothing sent). */
static int ready(struct cohort_client *c, bool local, uint64_t deadline_ms,
                 struct client_conn **conn)
{
    if (local)
        return ready_read_conn(c, deadline_ms, conn);
    *conn = &c->wconn;
    return ready_write_conn(c, deadline_ms);
}

/* The attempt failed or was refused: drop its connection so that a late
 * reply cannot be taken for a later attempt's. */
static void drop(struct cohort_client *c, struct client_conn *conn)
{
    uint32_t m = conn->member;
    client_conn_close(conn);
    if (conn == &c->wconn)
        forget_primary(c, m);
}

static int finish_fail(struct cohort_client *c, const struct client_call *call,
                       const char *name, int error)
{
    if (call->is_write && error == -COHORT_EUNKNOWN)
        c->next_request_no++; /* it may be in the table: never reuse it */
    err_set(&c->err, error,
            "%s: %s after %" PRIu32 " attempts in %" PRIu32
            " ms (deadline; cohort_client_set_deadline() changes it); "
            "last failure: %s",
            name,
            error == -COHORT_EUNKNOWN ? "may or may not have taken effect"
            : call->is_write          ? "certainly not applied"
                                      : "no answer",
            call->attempts, c->deadline_ms,
            c->attempt_err.message[0] ? c->attempt_err.message : "none");
    return error;
}

static int finish_done(struct cohort_client *c, struct client_conn *conn,
                       const struct client_call *call,
                       struct cohort_reply **reply)
{
    *reply = client_reply_build(conn->nodes, conn->node_count);
    client_conn_consume(conn);
    if (call->is_write)
        c->next_request_no++;
    if (*reply == NULL)
        return err_set(&c->err, -COHORT_ENOMEM, "the reply");
    return 0;
}

/* After an auth refusal nothing of this attempt was sent, but an earlier
 * attempt of a write may have been. */
static int finish_auth(struct cohort_client *c, const struct client_call *call,
                       const char *name)
{
    if (call->is_write && call->maybe_applied)
        return finish_fail(c, call, name, -COHORT_EUNKNOWN);
    err_set(&c->err, -COHORT_EAUTH, "%s: %s", name, c->attempt_err.message);
    return -COHORT_EAUTH;
}

static int run_call(struct cohort_client *c, bool is_write, bool local,
                    uint32_t argc, struct cohort_reply **reply)
{
    char name[32];
    snprintf(name, sizeof(name), "%.*s", (int)c->args[3].size, c->args[3].ptr);
    struct client_call call;
    client_call_start(&call, is_write, client_now_ms(), c->deadline_ms);
    err_clear(&c->attempt_err);
    for (;;) {
        sleep_until(call.retry_at_ms);
        uint64_t now = client_now_ms();
        if (!client_call_may_attempt(&call, now))
            return finish_fail(c, &call, name,
                               client_call_expired_error(&call));
        uint64_t by = now + c->attempt_timeout_ms;
        if (by > call.deadline_ms)
            by = call.deadline_ms;
        struct client_conn *conn = NULL;
        int rc = ready(c, local, by, &conn);
        if (rc == -COHORT_EAUTH)
            return finish_auth(c, &call, name);
        enum call_event ev =
            rc == 0 ? exchange(c, conn, is_write, argc, by) : CALL_EV_NOT_SENT;
        const struct resp_node *r = ev == CALL_EV_REPLY ? conn->nodes : NULL;
        enum call_step step = client_call_step(&call, ev, r, client_now_ms());
        if (step == CALL_DONE)
            return finish_done(c, conn, &call, reply);
        if (ev == CALL_EV_REPLY)
            err_set(&c->attempt_err, -COHORT_EAGAIN, "member %s: -%.*s",
                    c->members[conn->member], (int)r->len, r->str);
        if (conn != NULL)
            drop(c, conn);
        if (step == CALL_FAIL)
            return finish_fail(c, &call, name, call.error);
        if (step == CALL_RENEW) {
            c->client_id = client_random_id();
            c->next_request_no = 1;
        }
    }
}

COHORT_API int cohort_client_call(struct cohort_client *c, int flags, int argc,
                                  const char *const *argv,
                                  const size_t *argv_len,
                                  struct cohort_reply **reply)
{
    *reply = NULL;
    err_clear(&c->err);
    if (argc <= 0 || argv == NULL || argc > 1000000)
        return err_set(&c->err, -COHORT_EINVAL,
                       "cohort_client_call: argc is %d; give 1 or more "
                       "arguments",
                       argc);
    int rc = take_args(c, argc, argv, argv_len);
    if (rc != 0)
        return err_set(&c->err, rc, "cohort_client_call: %s",
                       rc == -COHORT_EINVAL ? "an argument is NULL"
                                            : "out of memory");
    bool is_write = (flags & COHORT_CALL_WRITE) ||
                    client_command_is_write((uint32_t)argc, c->args + 3);
    bool local = !is_write && (flags & COHORT_CALL_READ_LOCAL);
    return run_call(c, is_write, local, (uint32_t)argc, reply);
}
