/* client/engine — one call of libcohort-client as a non-blocking state
 * machine over the handle's connections: connect, log in, find the primary,
 * send the command (wrapped in COHORT.REQ for a write), read the reply, and
 * hand each attempt's outcome to the retry state machine (call.c). The
 * blocking calls (sync.c) and the caller's event loop both drive it through
 * cohort_client_process().
 *
 * An attempt: BACKOFF -> [CONNECT -> [AUTH] -> [INFO | READONLY]] ->
 * REQUEST, where the bracketed steps run only on a new connection, INFO
 * only when the primary is not known for sure (also on an open connection
 * to a member that named no primary; it may lead to one more CONNECT, to
 * the primary it names) and READONLY only for a local read. A failure
 * before the whole command was handed to the kernel is "not sent"; after
 * it, "lost". Every failure closes the attempt's connection (conn.c
 * invariant 3) and, on the write connection, forgets the primary.
 *
 * Hedging: a REQUEST on the write connection unanswered at hedge_at_ms
 * keeps its connection as the linger (internal.h invariant 5) and the next
 * attempt starts at once elsewhere; advance() reads the linger at every
 * step, and its real answer ends the call. Read your writes: a local read
 * after a write first runs the probe (COHORT.GET key WITHREV, linearizable)
 * as an ordinary call on the write connection, then itself (end_probe). */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/call.h"
#include "client/internal.h"
#include "client/reply.h"
#include "common/assert.h"

static struct resp_arg arg(const char *s)
{
    return (struct resp_arg){.ptr = s, .size = strlen(s)};
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

/* Forget the primary after a failure on member m: the next attempt starts
 * discovery at the member after it. */
static void forget_primary(struct cohort_client *c, uint32_t m)
{
    c->primary = -1;
    c->primary_confirmed = false;
    c->next_try = (m + 1) % c->member_count;
}

/* ------------------------------------------------------------ endings */

static void close_linger(struct cohort_client *c)
{
    client_conn_close(&c->linger);
}

static void finish(struct cohort_client *c, int result)
{
    close_linger(c); /* invariant 5: a late answer has no call to go to */
    c->result = result;
    c->phase = CLIENT_PHASE_DONE;
}

/* A write ended that may have taken effect: the next local read asks the
 * primary for a revision that covers it, on the write's first key (the
 * one key the caller surely may read, under an ACL of key patterns). */
static void remember_write(struct cohort_client *c)
{
    if (!c->read_your_writes)
        return;
    c->revision_wanted = true;
    const struct resp_arg *key = c->argc >= 2 ? &c->args[4] : NULL;
    size_t n = key != NULL ? key->size : 0;
    char *copy = realloc(c->probe_key, n + 1);
    if (copy == NULL) {
        c->probe_key_len = 0; /* "" then: still a revision */
        return;
    }
    if (n > 0)
        memcpy(copy, key->ptr, n);
    copy[n] = '\0';
    c->probe_key = copy;
    c->probe_key_len = n;
}

static void finish_fail(struct cohort_client *c, int error)
{
    const struct client_call *call = &c->call;
    if (call->is_write && error == -COHORT_EUNKNOWN) {
        c->next_request_no++; /* it may be in the table: never reuse it */
        remember_write(c);
    }
    /* Unless the last failure says so already. */
    bool cert_too = c->cert_err.message[0] != '\0' &&
                    strstr(c->attempt_err.message, "certificate") == NULL;
    bool behind_too = c->behind_err.message[0] != '\0' &&
                      strstr(c->attempt_err.message, "not yet") == NULL;
    err_set(&c->err, error,
            "%s: %s after %" PRIu32 " attempts in %" PRIu32
            " ms (deadline; cohort_client_set_deadline() changes it); "
            "last failure: %s%s%s%s%s",
            c->name,
            error == -COHORT_EUNKNOWN ? "may or may not have taken effect"
            : call->is_write          ? "certainly not applied"
                                      : "no answer",
            call->attempts, c->deadline_ms,
            c->attempt_err.message[0] ? c->attempt_err.message : "none",
            cert_too ? "; a member's certificate was rejected: " : "",
            cert_too ? c->cert_err.message : "",
            behind_too ? "; before it, " : "",
            behind_too ? c->behind_err.message : "");
    finish(c, error);
}

/* After an auth refusal nothing of this attempt was sent, but an earlier
 * attempt of a write may have been. */
static void finish_auth(struct cohort_client *c)
{
    if (c->call.is_write && c->call.maybe_applied) {
        finish_fail(c, -COHORT_EUNKNOWN);
        return;
    }
    err_set(&c->err, -COHORT_EAUTH, "%s: %s", c->name, c->attempt_err.message);
    finish(c, -COHORT_EAUTH);
}

/* The probe (COHORT.GET key WITHREV at the primary) answered: raise the
 * minimum revision to its store revision, then run the caller's local
 * read, within what is left of the call's deadline. A refusal (NOPERM, an
 * older server) leaves the minimum as it was. */
static void end_probe(struct cohort_client *c)
{
    struct client_conn *conn = c->conn;
    struct cohort_reply *r = client_reply_build(conn->nodes, conn->node_count);
    client_conn_consume(conn);
    if (r != NULL && r->type == COHORT_REPLY_ARRAY && r->elements == 4 &&
        r->element[3]->type == COHORT_REPLY_INTEGER &&
        r->element[3]->integer > 0 &&
        (uint64_t)r->element[3]->integer > c->min_revision)
        c->min_revision = (uint64_t)r->element[3]->integer;
    cohort_reply_free(r);
    close_linger(c); /* a late answer would be the probe's, not the read's */
    c->probing = false;
    c->revision_wanted = false;
    c->local = true;
    uint64_t deadline = c->call.deadline_ms;
    client_call_start(&c->call, false, client_now_ms(), 0);
    c->call.deadline_ms = deadline;
    c->phase = CLIENT_PHASE_BACKOFF;
}

static void finish_reply(struct cohort_client *c)
{
    struct client_conn *conn = c->conn;
    if (c->probing) {
        end_probe(c);
        return;
    }
    c->reply = client_reply_build(conn->nodes, conn->node_count);
    client_conn_consume(conn);
    if (c->is_write) {
        c->next_request_no++;
        remember_write(c);
    }
    if (c->reply == NULL) {
        err_set(&c->err, -COHORT_ENOMEM, "%s: the reply", c->name);
        finish(c, -COHORT_ENOMEM);
        return;
    }
    finish(c, 0);
}

/* The attempt ended (ev; reply for CALL_EV_REPLY): on to the next step of
 * the retry state machine. */
static void attempt_over(struct cohort_client *c, enum call_event ev)
{
    struct client_conn *conn = c->conn;
    const struct resp_node *r = ev == CALL_EV_REPLY ? conn->nodes : NULL;
    enum call_step step = client_call_step(&c->call, ev, r, client_now_ms());
    if (step == CALL_DONE) {
        finish_reply(c);
        return;
    }
    if (ev == CALL_EV_REPLY)
        err_set(&c->attempt_err, -COHORT_EAGAIN, "member %s: -%.*s",
                c->members[conn->member], (int)r->len, r->str);
    uint32_t m = conn->member;
    client_conn_close(conn);
    if (conn == &c->wconn)
        forget_primary(c, m);
    if (step == CALL_FAIL) {
        finish_fail(c, c->call.error);
        return;
    }
    if (step == CALL_RENEW) {
        c->client_id = client_random_id();
        c->next_request_no = 1;
        c->call.retry_at_ms = client_now_ms();
    }
    c->phase = CLIENT_PHASE_BACKOFF;
}

/* The attempt's connection failed (err in attempt_err). */
static void conn_failed(struct cohort_client *c)
{
    /* Only a command handed to the kernel whole can have run: a server
     * never runs part of one. */
    bool sent = c->phase == CLIENT_PHASE_REQUEST && c->request_flushed;
    err_wrap(&c->attempt_err, "member %s", c->members[c->conn->member]);
    if (c->conn->cert_rejected && c->cert_err.message[0] == '\0')
        c->cert_err = c->attempt_err;
    c->conn->cert_rejected = false;
    attempt_over(c, sent ? CALL_EV_LOST : CALL_EV_NOT_SENT);
}

/* ------------------------------------------------------------ steps */

static void send_request(struct cohort_client *c)
{
    char id[24], no[24];
    const struct resp_arg *argv = c->args + 3;
    uint32_t argc = c->argc;
    if (c->probing) {
        argv = c->probe_args;
        argc = 3;
    }
    if (c->is_write) {
        snprintf(id, sizeof(id), "%" PRIu64, c->client_id);
        snprintf(no, sizeof(no), "%" PRIu64, c->next_request_no);
        c->args[0] = arg("COHORT.REQ");
        c->args[1] = arg(id);
        c->args[2] = arg(no);
        argv = c->args;
        argc += 3;
    }
    c->phase = CLIENT_PHASE_REQUEST;
    c->request_flushed = false;
    if (c->local && c->min_revision > 0) {
        /* The read runs after it on this member, on state at least as
         * new: it reflects min_revision if COHORT.APPLIED says so. */
        char rev[24];
        snprintf(rev, sizeof(rev), "%" PRIu64, c->min_revision);
        struct resp_arg at[2] = {arg("COHORT.APPLIED"), arg(rev)};
        c->phase = CLIENT_PHASE_APPLIED;
        if (client_conn_queue(c->conn, 2, at, &c->attempt_err) != 0) {
            conn_failed(c);
            return;
        }
    }
    if (client_conn_queue(c->conn, argc, argv, &c->attempt_err) != 0)
        conn_failed(c);
}

/* COHORT.APPLIED answered: on to the read's reply, or (the member is
 * behind: -TRYAGAIN) another attempt; another error is the answer. The
 * read's reply still due is dropped with the connection. */
static void on_applied_reply(struct cohort_client *c)
{
    const struct resp_node *r = &c->conn->nodes[0];
    if (r->type == RESP_TYPE_INTEGER) {
        client_conn_consume(c->conn);
        c->conn->reading = true;
        c->phase = CLIENT_PHASE_REQUEST;
        return;
    }
    if (client_reply_is_error_code(r, "TRYAGAIN")) {
        err_set(&c->attempt_err, -COHORT_EAGAIN, "member %s: -%.*s",
                c->members[c->conn->member], (int)r->len, r->str);
        c->behind_err = c->attempt_err;
        client_conn_close(c->conn);
        attempt_over(c, CALL_EV_NOT_SENT);
        return;
    }
    finish_reply(c);
    client_conn_close(c->conn);
}

/* Logged in (or no password): discovery, READONLY or the command. */
static void after_login(struct cohort_client *c)
{
    if (c->local) {
        struct resp_arg argv[1] = {arg("READONLY")};
        c->phase = CLIENT_PHASE_READONLY;
        if (client_conn_queue(c->conn, 1, argv, &c->attempt_err) != 0)
            conn_failed(c);
        return;
    }
    if (c->discovering) {
        struct resp_arg argv[2] = {arg("INFO"), arg("replication")};
        c->phase = CLIENT_PHASE_INFO;
        if (client_conn_queue(c->conn, 2, argv, &c->attempt_err) != 0)
            conn_failed(c);
        return;
    }
    send_request(c);
}

static void after_connect(struct cohort_client *c)
{
    if (c->password == NULL) {
        after_login(c);
        return;
    }
    struct resp_arg argv[3] = {arg("AUTH")};
    uint32_t argc = 1;
    if (c->username != NULL)
        argv[argc++] = arg(c->username);
    argv[argc++] = arg(c->password);
    c->phase = CLIENT_PHASE_AUTH;
    if (client_conn_queue(c->conn, argc, argv, &c->attempt_err) != 0)
        conn_failed(c);
}

/* The TCP connection is up: TLS first if configured. */
static void after_tcp(struct cohort_client *c)
{
    if (c->tls_ctx == NULL) {
        after_connect(c);
        return;
    }
    /* The certificate is checked against the host, brackets stripped; the
     * connect split the same address. */
    char host[CLIENT_ADDR_MAX];
    bool split = client_addr_split(c->members[c->conn->member], host,
                                   sizeof(host), NULL);
    ASSERT(split);
    c->phase = CLIENT_PHASE_HANDSHAKE;
    if (client_conn_tls_start(c->conn, c->tls_ctx, host, &c->attempt_err) < 0)
        conn_failed(c);
}

/* Connect the attempt's connection to member m. */
static void dial(struct cohort_client *c, uint32_t m)
{
    ASSERT(m < c->member_count);
    c->conn->member = m;
    c->phase = CLIENT_PHASE_CONNECT;
    c->connect_deadline_ms = client_now_ms() + c->connect_timeout_ms;
    int rc = client_conn_connect(c->conn, c->members[m], &c->attempt_err);
    if (rc < 0)
        conn_failed(c);
    else if (rc == 0)
        after_tcp(c);
}

static void start_attempt(struct cohort_client *c, uint64_t now)
{
    if (!client_call_may_attempt(&c->call, now)) {
        finish_fail(c, client_call_expired_error(&c->call));
        return;
    }
    c->attempt_deadline_ms = now + c->attempt_timeout_ms;
    if (c->attempt_deadline_ms > c->call.deadline_ms)
        c->attempt_deadline_ms = c->call.deadline_ms;
    uint32_t m;
    if (c->local) {
        m = c->next_read++ % c->member_count;
        c->conn = &c->rconns[m];
    } else {
        c->conn = &c->wconn;
        m = c->primary >= 0 ? (uint32_t)c->primary
                            : c->next_try % c->member_count;
        if (c->linger.fd >= 0 && m == c->linger_member)
            m = (m + 1) % c->member_count; /* hedged away from it */
    }
    c->hedge_at_ms = UINT64_MAX; /* set when the command is sent */
    /* Ask again while the primary is only a hint (a member that named
     * none, as in a view change): on the open connection, no reconnect. */
    c->discovering = !c->local && !c->primary_confirmed;
    c->hops = 0;
    if (c->conn->fd < 0)
        dial(c, m);
    else if (c->discovering)
        after_login(c);
    else
        send_request(c);
}

/* ------------------------------------------------------------ replies */

static void on_auth_reply(struct cohort_client *c)
{
    const struct resp_node *r = &c->conn->nodes[0];
    if (r->type == RESP_TYPE_ERROR) {
        err_set(&c->attempt_err, -COHORT_EAUTH,
                "member %s refused AUTH as user '%s': %.*s; check the "
                "username and password options",
                c->members[c->conn->member],
                c->username ? c->username : "default", (int)r->len, r->str);
        client_conn_close(c->conn);
        finish_auth(c);
        return;
    }
    client_conn_consume(c->conn);
    after_login(c);
}

/* TLS: INFO names plain client addresses, so the primary is the member
 * that says role:primary. Ask each in turn; settle for a forwarding
 * member when none does (a view change). */
static void on_info_reply_tls(struct cohort_client *c,
                              const struct client_layout *layout)
{
    uint32_t m = c->conn->member;
    uint32_t next = (m + 1) % c->member_count;
    if (c->linger.fd >= 0 && next == c->linger_member)
        next = (next + 1) % c->member_count; /* hedged away from it */
    if (layout->is_primary || c->hops + 1 >= c->member_count || next == m) {
        c->discovering = false;
        c->primary = (int)m;
        c->primary_confirmed = layout->is_primary;
        send_request(c);
        return;
    }
    c->hops++;
    client_conn_close(c->conn);
    dial(c, next);
}

static void on_info_reply(struct cohort_client *c)
{
    const struct resp_node *r = &c->conn->nodes[0];
    struct client_layout layout;
    memset(&layout, 0, sizeof(layout));
    if (r->type == RESP_TYPE_BULK || r->type == RESP_TYPE_VERBATIM)
        client_layout_parse(r->str, r->len, &layout);
    client_conn_consume(c->conn);
    if (c->tls_ctx != NULL) {
        on_info_reply_tls(c, &layout);
        return;
    }
    for (size_t i = 0; i < layout.member_count; i++)
        (void)member_index(c, layout.members[i]);
    int p = layout.has_primary ? member_index(c, layout.primary) : -1;
    uint32_t m = c->conn->member;
    c->discovering = false;
    if (p >= 0 && c->linger.fd >= 0 && (uint32_t)p == c->linger_member) {
        /* Hedged away from it, and this member still names it: ask again
         * shortly (a view change will name another) until the hedged
         * attempt would have timed out, then let this member forward. */
        uint64_t now = client_now_ms();
        if (now + CLIENT_REASK_MS < c->reask_until_ms) {
            c->primary = -1;
            c->primary_confirmed = false;
            c->call.retry_at_ms = now + CLIENT_REASK_MS;
            c->phase = CLIENT_PHASE_BACKOFF; /* INFO on this connection */
            return;
        }
        p = -1;
    }
    if (p < 0 || (uint32_t)p == m) {
        /* It is the primary, or a member that forwards to one. */
        c->primary = (int)m;
        c->primary_confirmed = p >= 0;
        send_request(c);
        return;
    }
    c->primary = p;
    c->primary_confirmed = true;
    client_conn_close(c->conn);
    dial(c, (uint32_t)p);
}

static void on_readonly_reply(struct cohort_client *c)
{
    bool ok = c->conn->nodes[0].type == RESP_TYPE_SIMPLE;
    client_conn_consume(c->conn);
    if (!ok) {
        client_conn_close(c->conn);
        err_set(&c->attempt_err, -COHORT_EPROTO, "refused READONLY");
        conn_failed(c);
        return;
    }
    c->conn->readonly = true;
    send_request(c);
}

static void on_reply(struct cohort_client *c)
{
    switch (c->phase) {
    case CLIENT_PHASE_AUTH:
        on_auth_reply(c);
        return;
    case CLIENT_PHASE_INFO:
        on_info_reply(c);
        return;
    case CLIENT_PHASE_READONLY:
        on_readonly_reply(c);
        return;
    case CLIENT_PHASE_APPLIED:
        on_applied_reply(c);
        return;
    case CLIENT_PHASE_REQUEST:
        attempt_over(c, CALL_EV_REPLY);
        return;
    default:
        UNREACHABLE();
    }
}

/* ------------------------------------------------------------ driving */

/* When the current phase of the attempt gives up. */
static uint64_t phase_deadline(const struct cohort_client *c)
{
    if ((c->phase == CLIENT_PHASE_CONNECT ||
         c->phase == CLIENT_PHASE_HANDSHAKE) &&
        c->connect_deadline_ms < c->attempt_deadline_ms)
        return c->connect_deadline_ms;
    if (c->phase == CLIENT_PHASE_REQUEST &&
        c->hedge_at_ms < c->attempt_deadline_ms)
        return c->hedge_at_ms;
    return c->attempt_deadline_ms;
}

/* Whether the attempt may be hedged once its command is sent: a write or a
 * linearizable read (on the write connection), another member to ask, and
 * no hedged attempt still open (one at a time: the member it avoids). */
static bool may_hedge(const struct cohort_client *c)
{
    return c->conn == &c->wconn && c->member_count > 1 &&
           c->hedge_ms < c->attempt_timeout_ms && c->linger.fd < 0;
}

/* No reply within the hedge delay: keep the connection open as the
 * linger, and send the same request to another member at once. */
static void hedge(struct cohort_client *c, uint64_t now)
{
    ASSERT(c->conn == &c->wconn && c->linger.fd < 0);
    uint32_t m = c->wconn.member;
    struct client_conn tmp = c->linger;
    c->linger = c->wconn;
    c->wconn = tmp;
    c->linger_member = m;
    c->reask_until_ms = now + c->attempt_timeout_ms - c->hedge_ms;
    forget_primary(c, m);
    err_set(&c->attempt_err, -COHORT_EIO,
            "member %s: no reply within the hedge delay (%" PRIu32
            " ms); asked another member too",
            c->members[m], c->hedge_ms);
    enum call_step step = client_call_step(&c->call, CALL_EV_HEDGE, NULL, now);
    if (step == CALL_FAIL) {
        finish_fail(c, c->call.error);
        return;
    }
    c->phase = CLIENT_PHASE_BACKOFF;
}

/* The hedged attempt's connection, if open: read what it says. True when
 * its answer ended the call (the attempt in progress is then abandoned). */
static bool check_linger(struct cohort_client *c)
{
    struct client_conn *l = &c->linger;
    if (l->fd < 0)
        return false;
    struct cohort_err err;
    int rc = client_conn_read(l, &err);
    if (rc > 0)
        return false;
    if (rc < 0) {
        (void)client_call_late(&c->call, CALL_EV_LOST, NULL);
        return false; /* closed by the read */
    }
    if (client_call_late(&c->call, CALL_EV_REPLY, l->nodes) != CALL_DONE) {
        client_conn_close(l);
        return false;
    }
    if (c->phase >= CLIENT_PHASE_CONNECT && c->phase <= CLIENT_PHASE_REQUEST)
        client_conn_close(c->conn); /* its late reply must not be read */
    client_conn_close(&c->wconn);
    struct client_conn tmp = c->wconn;
    c->wconn = c->linger;
    c->linger = tmp;
    c->conn = &c->wconn;
    /* It answered: likely the primary again; INFO says at the next call. */
    c->primary = (int)c->linger_member;
    c->primary_confirmed = false;
    finish_reply(c);
    return true;
}

/* One step of I/O in a connection phase: false when it must wait. */
static bool io_step(struct cohort_client *c, uint64_t now)
{
    struct client_conn *conn = c->conn;
    if (c->phase == CLIENT_PHASE_REQUEST && now >= c->hedge_at_ms &&
        now < c->attempt_deadline_ms) {
        hedge(c, now);
        return true;
    }
    if (now >= phase_deadline(c)) {
        if (c->phase == CLIENT_PHASE_CONNECT ||
            c->phase == CLIENT_PHASE_HANDSHAKE)
            err_set(
                &c->attempt_err, -COHORT_EIO, "%s timed out (%" PRIu32 " ms)",
                c->phase == CLIENT_PHASE_CONNECT ? "connect" : "TLS handshake",
                c->connect_timeout_ms);
        else
            err_set(&c->attempt_err, -COHORT_EIO,
                    "no reply within the attempt timeout (%" PRIu32 " ms)",
                    c->attempt_timeout_ms);
        client_conn_close(conn);
        conn_failed(c);
        return true;
    }
    if (c->phase == CLIENT_PHASE_CONNECT) {
        int rc = client_conn_connect_done(conn, &c->attempt_err);
        if (rc < 0)
            conn_failed(c);
        else if (rc == 0)
            after_tcp(c);
        return rc <= 0;
    }
    if (c->phase == CLIENT_PHASE_HANDSHAKE) {
        int rc = client_conn_handshake(conn, &c->attempt_err);
        if (rc < 0)
            conn_failed(c);
        else if (rc == 0)
            after_connect(c);
        return rc <= 0;
    }
    int rc = client_conn_flush(conn, &c->attempt_err);
    if (rc < 0) {
        conn_failed(c);
        return true;
    }
    if (rc > 0)
        return false;
    if ((c->phase == CLIENT_PHASE_REQUEST ||
         c->phase == CLIENT_PHASE_APPLIED) &&
        !c->request_flushed) {
        c->request_flushed = true;
        if (c->phase == CLIENT_PHASE_REQUEST && may_hedge(c))
            c->hedge_at_ms = now + c->hedge_ms;
    }
    rc = client_conn_read(conn, &c->attempt_err);
    if (rc < 0)
        conn_failed(c);
    else if (rc == 0)
        on_reply(c);
    return rc <= 0;
}

static void advance(struct cohort_client *c)
{
    for (;;) {
        uint64_t now = client_now_ms();
        if (c->phase == CLIENT_PHASE_IDLE || c->phase == CLIENT_PHASE_DONE)
            return;
        if (check_linger(c)) /* a hedged attempt answered */
            return;
        switch (c->phase) {
        case CLIENT_PHASE_BACKOFF:
            if (now < c->call.retry_at_ms && now < c->call.deadline_ms)
                return;
            start_attempt(c, now);
            break;
        default:
            if (!io_step(c, now))
                return;
            break;
        }
    }
}

/* Copy the caller's arguments after three reserved slots (COHORT.REQ, the
 * id, the number): the call outlives the caller's array. */
static int take_args(struct cohort_client *c, int argc, const char *const *argv,
                     const size_t *argv_len)
{
    uint32_t need = (uint32_t)argc + 3;
    size_t bytes = 0;
    for (int i = 0; i < argc; i++) {
        if (argv[i] == NULL)
            return -COHORT_EINVAL;
        bytes += argv_len ? argv_len[i] : strlen(argv[i]);
    }
    if (need > c->arg_capacity) {
        struct resp_arg *args = realloc(c->args, need * sizeof(*args));
        if (args == NULL)
            return -COHORT_ENOMEM;
        c->args = args;
        c->arg_capacity = need;
    }
    if (bytes + 1 > c->arg_bytes_capacity) {
        char *b = realloc(c->arg_bytes, bytes + 1);
        if (b == NULL)
            return -COHORT_ENOMEM;
        c->arg_bytes = b;
        c->arg_bytes_capacity = bytes + 1;
    }
    size_t off = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = argv_len ? argv_len[i] : strlen(argv[i]);
        memcpy(c->arg_bytes + off, argv[i], n);
        c->args[3 + i].ptr = c->arg_bytes + off;
        c->args[3 + i].size = n;
        off += n;
    }
    c->argc = (uint32_t)argc;
    return 0;
}

COHORT_API int cohort_client_start(struct cohort_client *c, int flags, int argc,
                                   const char *const *argv,
                                   const size_t *argv_len)
{
    err_clear(&c->err);
    if (c->phase != CLIENT_PHASE_IDLE)
        return err_set(&c->err, -COHORT_EINVAL,
                       "a call is in progress on this handle; finish it "
                       "with cohort_client_process() first");
    if (argc <= 0 || argv == NULL || argc > 1000000)
        return err_set(&c->err, -COHORT_EINVAL,
                       "argc is %d; give 1 or more arguments", argc);
    int rc = take_args(c, argc, argv, argv_len);
    if (rc != 0)
        return err_set(&c->err, rc, "%s",
                       rc == -COHORT_EINVAL ? "an argument is NULL"
                                            : "out of memory");
    snprintf(c->name, sizeof(c->name), "%.*s", (int)c->args[3].size,
             c->args[3].ptr);
    c->is_write = (flags & COHORT_CALL_WRITE) ||
                  client_command_is_write(c->argc, c->args + 3);
    c->local = !c->is_write && (flags & COHORT_CALL_READ_LOCAL);
    c->probing = c->local && c->read_your_writes && c->revision_wanted;
    if (c->probing) {
        /* Read your writes: first the primary's revision (end_probe). */
        c->local = false;
        c->probe_args[0] = arg("COHORT.GET");
        c->probe_args[1] = (struct resp_arg){
            .ptr = c->probe_key ? c->probe_key : "", .size = c->probe_key_len};
        c->probe_args[2] = arg("WITHREV");
    }
    client_call_start(&c->call, c->is_write, client_now_ms(), c->deadline_ms);
    err_clear(&c->attempt_err);
    err_clear(&c->cert_err);
    err_clear(&c->behind_err);
    c->reply = NULL;
    c->result = 0;
    c->phase = CLIENT_PHASE_BACKOFF; /* retry_at is now: attempt at once */
    return 0;
}

COHORT_API int cohort_client_process(struct cohort_client *c,
                                     struct cohort_reply **reply)
{
    *reply = NULL;
    if (c->phase == CLIENT_PHASE_IDLE)
        return err_set(&c->err, -COHORT_EINVAL,
                       "no call in progress (cohort_client_start)");
    advance(c);
    if (c->phase != CLIENT_PHASE_DONE)
        return -COHORT_EAGAIN;
    c->phase = CLIENT_PHASE_IDLE;
    *reply = c->reply;
    c->reply = NULL;
    return c->result;
}

COHORT_API int cohort_client_fd(const struct cohort_client *c)
{
    if (c->phase < CLIENT_PHASE_CONNECT || c->phase > CLIENT_PHASE_REQUEST)
        return -1;
    return c->conn->fd;
}

COHORT_API int cohort_client_wants(const struct cohort_client *c)
{
    if (cohort_client_fd(c) < 0)
        return 0;
    short w = client_conn_wants(c->conn);
    return ((w & POLLIN) ? COHORT_CLIENT_WANT_READ : 0) |
           ((w & POLLOUT) ? COHORT_CLIENT_WANT_WRITE : 0);
}

COHORT_API int cohort_client_timeout_ms(const struct cohort_client *c)
{
    return client_timeout_ms(c, true);
}

int client_timeout_ms(const struct cohort_client *c, bool capped)
{
    uint64_t now = client_now_ms();
    uint64_t until;
    if (c->phase == CLIENT_PHASE_BACKOFF)
        until = c->call.retry_at_ms < c->call.deadline_ms ? c->call.retry_at_ms
                                                          : c->call.deadline_ms;
    else if (c->phase >= CLIENT_PHASE_CONNECT &&
             c->phase <= CLIENT_PHASE_REQUEST)
        until = phase_deadline(c);
    else
        return 0;
    if (until <= now)
        return 0;
    uint64_t cap = capped && c->linger.fd >= 0 ? CLIENT_LINGER_POLL_MS : 60000;
    return until - now > cap ? (int)cap : (int)(until - now);
}

void client_call_abort(struct cohort_client *c)
{
    if (c->phase == CLIENT_PHASE_IDLE)
        return;
    if (c->phase >= CLIENT_PHASE_CONNECT && c->phase <= CLIENT_PHASE_REQUEST) {
        uint32_t m = c->conn->member;
        client_conn_close(c->conn);
        if (c->conn == &c->wconn)
            forget_primary(c, m);
    }
    /* An abandoned write may be in the table: never reuse its number. */
    if (c->phase != CLIENT_PHASE_DONE && c->is_write)
        c->next_request_no++;
    close_linger(c);
    c->probing = false;
    cohort_reply_free(c->reply);
    c->reply = NULL;
    c->phase = CLIENT_PHASE_IDLE;
}
