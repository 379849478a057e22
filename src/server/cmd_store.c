/* cmd_store — the store's commands on a connection: reads (linearizable, or
 * local after READONLY), writes through the log with exactly-once request
 * numbers, COHORT.REQ, and what each outcome from the node or the primary
 * becomes on the wire.
 *
 * Exactly-once wire form, for clients that retry:
 *
 *     COHORT.REQ <client-id> <request-no> <command> [args...]
 *
 * runs the store write <command> (SET, DEL, INCR, ..., the writes of
 * kv/strings.h, COHORT.TXN, COHORT.EXEC) as request <request-no> of client
 * <client-id>. The client picks client-id at random (a nonzero u64, in decimal)
 * and keeps it for its session; request numbers start at 1 and go up by one per
 * write. Sending the same id and number again, to any replica, after a timeout,
 * an -UNKNOWN or a lost connection, returns the first attempt's reply from the
 * replicated client table and does not apply the write twice. Rules:
 *   - send request n+1 only after request n has an answer (the client table
 *     knows a client only once its first request is applied, so a pipelined
 *     request 2 can be refused while request 1 is in flight);
 *   - "-ERR client session expired: start again at request number 1": the
 *     table forgot the client (idle for an hour, or evicted when full); the
 *     write was not applied; continue with a new client id from 1;
 *   - "-ERR stale request: ...": the number is below the client's latest
 *     (the table keeps only the latest reply); not applied now;
 *   - a read wrapped in COHORT.REQ runs as the plain read.
 *
 * Plain writes (no COHORT.REQ) are numbered by the connection's session:
 * a client id drawn per connection (server_client_id_new) and a counter.
 * Two rules keep that correct under pipelining:
 *   (1) the gate: while request 1 of a session runs, nothing more is
 *       dispatched on the connection (request 2 would be refused as above);
 *       if request 1 certainly was not proposed, its number is reused;
 *   (2) renewal: when a write comes back "session expired" (the client
 *       table forgot this connection), it certainly did not take effect, so
 *       the connection starts a new session and submits it again. Writes of
 *       the old session still running will be refused the same way; they are
 *       queued and resubmitted in their original order, and nothing new is
 *       dispatched until the last of them is resubmitted. A client therefore
 *       never sees "session expired" on a plain connection.
 *
 * The write cap: at most WRITES_IN_NODE_MAX writes (and their bytes) of this
 * server are in the node at once, so the core's pipeline never overflows
 * into -TRYAGAIN under load. A write over the cap is queued like a renewed
 * one, its connection waits on the server's list, and a write's answer
 * wakes the next waiter. On a backup writes leave the node at once
 * (forwarded), so the cap only bites at the primary.
 *
 * Outcomes: DRIVER_DONE relays the store's reply; DRIVER_NOT_PRIMARY forwards
 * to the primary (forward.c), or answers "-TRYAGAIN NOTPRIMARY ..." on a
 * connection that is itself a forward (the backup re-sends it); DRIVER_RETRY is
 * -TRYAGAIN; DRIVER_UNKNOWN is -UNKNOWN (the write was proposed; a COHORT.REQ
 * retry resolves it), and so is DRIVER_SUPERSEDED, with its own text (a copy
 * of the same COHORT.REQ arrived while this one was in flight: that copy gets
 * the answer); DRIVER_REJECTED becomes the error its status names
 * (REPLY_OVER_LIMIT is Redis's -OOM, for maxmemory). Only -UNKNOWN says "may
 * have taken effect"; every -TRYAGAIN is certain that it did not.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/assert.h"
#include "kv/address.h"
#include "kv/command.h"
#include "kv/expire.h"
#include "kv/kv.h"
#include "server/command.h"
#include "server/internal.h"
#include "server/relay.h"

/* DRIVER_RETRY covers a view change, recovery and a full write pipeline at
 * the primary; the node does not say which. */
#define ERR_RETRY                                                              \
    "TRYAGAIN view change or recovery in progress, or the write pipeline is "  \
    "full; retry"
#define ERR_OUTSIDE                                                            \
    "TRYAGAIN this replica is outside the membership (not yet added); use a "  \
    "member (cohort members lists them)"
#define ERR_UNKNOWN                                                            \
    "UNKNOWN the primary changed after the write was proposed; it may or may " \
    "not have taken effect"
/* Redis's text, word for word (clients match on it). */
#define ERR_OOM "OOM command not allowed when used memory > 'maxmemory'."
#define ERR_NO_PRIMARY "TRYAGAIN no primary reachable from this replica; retry"
/* DRIVER_NOT_PRIMARY on a forward link: marked, so that the backup re-sends
 * the command (relay.h). */
#define ERR_NOT_PRIMARY_HOP RELAY_NOT_PRIMARY_HOP

static void finish_error(struct conn *c, struct slot *slot, const char *msg)
{
    if (slot->watch)
        txn_watch_failed(c, slot);
    slot->reply.size = 0;
    resp_write_error(&slot->reply, msg);
    conn_slot_ready(c, slot);
}

/* DRIVER_RETRY: certainly not proposed. Why, as far as this member knows:
 * it was removed from the group (a client's connection gets -REMOVED, see
 * command_dispatch(); a backup's forward link the retryable answer), it is
 * outside the membership, or a view change, recovery or a full pipeline. */
static void finish_retry(struct conn *c, struct slot *slot)
{
    char removed[SERVER_REMOVED_ERROR_MAX];
    if (!c->no_forward && server_removed_error(c->server, removed))
        finish_error(c, slot, removed);
    else if (node_outside(c->server->node))
        finish_error(c, slot, ERR_OUTSIDE);
    else
        finish_error(c, slot, ERR_RETRY);
}

/* DRIVER_SUPERSEDED: the same (client, request) arrived again while this
 * copy was in flight; the newer copy's caller gets the answer. Still
 * -UNKNOWN (this caller cannot know whether it took effect, and clients
 * retry the same request on it), but saying what happened. */
static void finish_superseded(struct conn *c, struct slot *slot)
{
    if (slot->watch)
        txn_watch_failed(c, slot);
    slot->reply.size = 0;
    resp_write_errorf(&slot->reply,
                      "UNKNOWN request %" PRIu64 "/%" PRIu64
                      " was sent again while in flight (a retry, perhaps on "
                      "another connection); the retry gets the answer",
                      slot->client_id, slot->request_no);
    conn_slot_ready(c, slot);
}

static void finish_relay(struct conn *c, struct slot *slot, const void *reply,
                         size_t size)
{
    if (lock_wait_park(c, slot, reply, size))
        return; /* a queued COHORT.LOCK ... WAIT ms: lock_wait.c answers */
    slot->reply.size = 0;
    relay_reply(&slot->reply, reply, size);
    conn_slot_ready(c, slot);
}

/* Whether the slot's kept command (RESP, "*N\r\n$len\r\nname...") is
 * PUBLISH. */
static bool payload_is_publish(const struct slot *slot)
{
    const char *p = (const char *)slot->payload.data;
    size_t size = slot->payload.size;
    if (size == 0)
        return false;
    const char *name = memchr(p, '\n', size);
    if (name == NULL || (size_t)(name - p) + 1 + 4 + 7 + 2 > size)
        return false;
    name += 1;
    return !memcmp(name, "$7\r\n", 4) &&
           strncasecmp(name + 4, "publish", 7) == 0;
}

static const struct kv_config *kv_config(const struct conn *c)
{
    return &c->server->node_config.kv;
}

/* Answer a store read: the store's own, or ACL LIST and ACL USERS, which
 * read the users. */
static void store_query_at(const struct server *s, uint64_t now_ms,
                           uint32_t argc, const struct resp_arg *argv,
                           struct resp_buf *out)
{
    if (argc >= 1 && command_word_is(&argv[0], "acl"))
        acl_query(s, argc, argv, out);
    else
        kv_query_at(s->kv, now_ms, argc, argv, out);
}

/* A local read: at this replica's applied log time. */
static void store_query(const struct server *s, uint32_t argc,
                        const struct resp_arg *argv, struct resp_buf *out)
{
    store_query_at(s, 0, argc, argv, out);
}

/* Keep the command (argv) in the slot as RESP, for a later read, a forward
 * or a resubmission. */
static void keep_command(struct conn *c, struct slot *slot, uint32_t argc,
                         const struct resp_arg *argv)
{
    slot->payload.size = 0;
    resp_write_command(&slot->payload, argc, argv);
    c->slot_bytes += slot->payload.size;
}

/* Parse the slot's kept command into the server's second scratch argv.
 * Returns the argument count, 0 if it cannot (out of memory). */
uint32_t store_parse_kept(struct server *s, struct slot *slot)
{
    struct resp_limits limits = s->limits;
    limits.bulk_size_max = slot->payload.size;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct resp_request req = {.argv = s->argv2,
                                   .arg_capacity = s->argv2_capacity};
        struct cohort_err err;
        enum resp_result r = resp_request_parse(
            slot->payload.data, slot->payload.size, &limits, &req, &err);
        if (r == RESP_COMPLETE)
            return req.argc;
        if (r != RESP_NEED_SPACE)
            return 0;
        struct resp_arg *p = realloc(s->argv2, req.argc * sizeof(*p));
        if (p == NULL)
            return 0;
        s->argv2 = p;
        s->argv2_capacity = req.argc;
    }
    return 0;
}

static void queue_write(struct conn *c, struct slot *slot);

/* ------------------------------------------------------------ sessions */

/* A session write has its final answer (not a renewal). */
static void session_write_done(struct conn *c, struct slot *slot,
                               bool not_proposed)
{
    struct conn_session *ss = &c->session;
    if (!slot->session_write)
        return;
    slot->session_write = false;
    if (slot->client_id != ss->client_id) {
        ASSERT(ss->stale_running > 0);
        ss->stale_running--;
        return;
    }
    ASSERT(ss->running > 0);
    ss->running--;
    if (ss->gate == slot) {
        ss->gate = NULL;
        /* Nothing else was numbered while the gate was up: if request 1
         * certainly was not proposed, the next write may be request 1. */
        ASSERT(ss->next_request_no == 2);
        if (not_proposed)
            ss->next_request_no = 1;
    }
}

/* Whether reply says the client table forgot slot's session (the core
 * says so only for a request after the first; a reply claiming it for
 * request 1 is passed on as it is rather than trusted). */
static bool renewable(const struct slot *slot, const char *reply, size_t size)
{
    return slot->session_write && slot->request_no > 1 &&
           relay_is_session_expired(reply, size);
}

/* The client table forgot this session: renew it and queue slot for
 * resubmission (store_submit_queued, from the idle handle). */
static void session_expired(struct conn *c, struct slot *slot)
{
    struct conn_session *ss = &c->session;
    ASSERT(slot->session_write);
    ASSERT(slot->request_no > 1); /* request 1 is never "expired" */
    if (slot->client_id == ss->client_id) {
        ASSERT(ss->gate == NULL);
        ASSERT(ss->running > 0);
        ss->running--;
        ss->stale_running += ss->running;
        ss->running = 0;
        ss->client_id = server_client_id_new(c->server);
        ss->next_request_no = 1;
        c->server->stats.session_renewals++;
    } else {
        ASSERT(ss->stale_running > 0);
        ss->stale_running--;
    }
    slot->session_write = false;
    queue_write(c, slot);
}

/* ------------------------------------------------------------ write cap */

static bool permit_free(const struct server *s, size_t size)
{
    if (s->writes_in_node >= WRITES_IN_NODE_MAX)
        return false;
    return s->writes_in_node == 0 ||
           s->write_bytes_in_node + size <= WRITE_BYTES_IN_NODE_MAX;
}

/* A new write may go ahead: the cap has room for it and, when connections
 * wait, still for the first waiter's write as well. Waiters keep their
 * place in the list until they take a permit, and each release wakes the
 * next waiter not yet woken, so a newcomer never takes the room a woken
 * waiter needs (with 1 MiB writes and a 2 MiB cap, that race starved
 * connections for seconds), while small writes keep flowing past a
 * waiting list without a trip through it. */
static bool permit_ready(const struct server *s, size_t size)
{
    if (!permit_free(s, size))
        return false;
    const struct conn *first = s->permit_head;
    if (first == NULL || s->writes_in_node == 0)
        return true;
    return s->writes_in_node + 2 <= WRITES_IN_NODE_MAX &&
           s->write_bytes_in_node + size + first->permit_need <=
               WRITE_BYTES_IN_NODE_MAX;
}

/* Wake the first waiter that no release has woken yet. */
static void permit_wake(struct server *s)
{
    for (struct conn *c = s->permit_head; c; c = c->permit_next)
        if (!c->permit_woken) {
            c->permit_woken = true;
            server_mark_resume(s, c);
            return;
        }
}

/* While the cap has room, keep waking waiters: without this the writes in
 * the node would stay at whatever count they had when a list first formed
 * (each release waking one waiter that submits one write). */
static void permit_wake_if_room(struct server *s)
{
    if (s->permit_head && s->writes_in_node < WRITES_IN_NODE_MAX &&
        s->write_bytes_in_node < WRITE_BYTES_IN_NODE_MAX)
        permit_wake(s);
}

static void permit_wait(struct server *s, struct conn *c)
{
    if (c->permit_listed)
        return;
    c->permit_listed = true;
    c->permit_next = NULL;
    c->permit_prev = s->permit_tail;
    if (s->permit_tail)
        s->permit_tail->permit_next = c;
    else
        s->permit_head = c;
    s->permit_tail = c;
}

static void permit_unwait(struct server *s, struct conn *c)
{
    if (!c->permit_listed)
        return;
    if (c->permit_prev)
        c->permit_prev->permit_next = c->permit_next;
    else
        s->permit_head = c->permit_next;
    if (c->permit_next)
        c->permit_next->permit_prev = c->permit_prev;
    else
        s->permit_tail = c->permit_prev;
    c->permit_prev = c->permit_next = NULL;
    c->permit_listed = false;
    c->permit_woken = false;
}

static void permit_take(struct server *s, struct slot *slot)
{
    ASSERT(!slot->holds_permit);
    slot->holds_permit = true;
    slot->permit_bytes = slot->payload.size;
    s->writes_in_node++;
    s->write_bytes_in_node += slot->permit_bytes;
}

/* Give back slot's place in the cap and wake the first waiter. Safe
 * inside callbacks. */
static void permit_release(struct server *s, struct slot *slot)
{
    if (!slot->holds_permit)
        return;
    slot->holds_permit = false;
    ASSERT(s->writes_in_node > 0);
    ASSERT(s->write_bytes_in_node >= slot->permit_bytes);
    s->writes_in_node--;
    s->write_bytes_in_node -= slot->permit_bytes;
    permit_wake(s);
}

void store_slot_cancelled(struct server *s, struct slot *slot)
{
    permit_release(s, slot);
}

void store_conn_gone(struct server *s, struct conn *c)
{
    bool woken = c->permit_woken;
    permit_unwait(s, c);
    if (woken)
        permit_wake(s); /* its turn passes to the next */
}

/* Hold slot (its command kept) until the cap and the session allow it:
 * store_submit_queued() sends it, and the connection dispatches nothing
 * meanwhile, so commands still run in order. */
static void queue_write(struct conn *c, struct slot *slot)
{
    slot->state = SLOT_QUEUED;
    slot->reply.size = 0;
    c->session.queued++;
    if (!permit_ready(c->server, slot->payload.size)) {
        permit_wait(c->server, c);
        c->permit_need = slot->payload.size;
        permit_wake_if_room(c->server);
    }
    server_mark_resume(c->server, c);
}

/* ------------------------------------------------------------ writes */

static void on_write_done(void *ctx, const struct driver_reply *r);

/* w's body into s->body. An absolute expiry (EXAT, PXAT, EXPIREAT,
 * PEXPIREAT: a Unix time) goes into the log as the log time as far from
 * this member's log time as it is from its wall clock (kv/expire.h). */
static bool encode_body(struct server *s, const struct kv_write *w,
                        size_t *size)
{
    if (kv_expire_absolute(w)) {
        struct kv_write at = *w; /* args may point into *w: used before it */
        kv_expire_absolute_to_log(&at, node_wall_ms(), node_log_time(s->node));
        *size = kv_command_encode_into(&at, &s->body, &s->body_capacity);
    } else {
        *size = kv_command_encode_into(w, &s->body, &s->body_capacity);
    }
    return *size > 0;
}

/* maxmemory (noeviction, as Redis): whether w would take the store's
 * accounted memory past the limit, counting the bytes of the writes
 * already in the node as if each grew it (applied state lags them). A
 * write that grows nothing (DEL, an overwrite with a value no longer) always
 * passes. The core refuses only what is new (not a retry of an applied or
 * in-flight request), so an -OOM is always "certainly not applied". */
static bool over_maxmemory(const struct server *s, const struct kv_write *w)
{
    uint64_t max = s->config.maxmemory;
    if (max == 0)
        return false;
    const struct kv *kv = node_kv(s->node);
    uint64_t growth = kv_command_growth(kv, w);
    if (growth == 0)
        return false;
    uint64_t used = kv_used_memory(kv) + s->write_bytes_in_node;
    return used >= max || growth > max - used;
}

/* Propose slot's write w under the slot's client id and request number. */
static void submit(struct conn *c, struct slot *slot, const struct kv_write *w)
{
    struct server *s = c->server;
    size_t size = 0;
    struct kv_write with_base = *w;
    auth_acl_base(s, &with_base);
    w = &with_base;
    if (!encode_body(s, w, &size)) {
        session_write_done(c, slot, true);
        finish_error(c, slot, "ERR out of memory encoding the command");
        return;
    }
    bool over = over_maxmemory(s, w);
    slot->lock_wait_ms = (uint32_t)w->wait_ms;
    slot->state = SLOT_RUNNING;
    slot->in_node = true;
    permit_take(s, slot);
    node_submit(s->node, slot->client_id, slot->request_no, s->body, size, over,
                on_write_done, slot);
}

/* Number slot in the connection's session and submit it. */
static void submit_in_session(struct conn *c, struct slot *slot,
                              const struct kv_write *w)
{
    struct conn_session *ss = &c->session;
    ASSERT(ss->gate == NULL);
    ASSERT(ss->stale_running == 0);
    slot->session_write = true;
    slot->client_id = ss->client_id;
    slot->request_no = ss->next_request_no++;
    if (slot->request_no == 1)
        ss->gate = slot;
    ss->running++;
    submit(c, slot, w);
}

/* The node says another replica is the primary: forward the command there,
 * unless this connection is itself a forward. */
static void forward_or_fail(struct conn *c, struct slot *slot,
                            uint32_t primary_hint)
{
    if (c->no_forward) {
        session_write_done(c, slot, true);
        finish_error(c, slot, ERR_NOT_PRIMARY_HOP);
        return;
    }
    if (primary_hint == c->server->node_config.self) {
        /* This replica leads the view but could not act as primary (it
         * has not confirmed its view yet): nothing to forward to. */
        session_write_done(c, slot, true);
        finish_error(c, slot, ERR_RETRY);
        return;
    }
    if (!forward_send(c->server, slot, primary_hint)) {
        c->server->stats.forward_failures++;
        session_write_done(c, slot, true);
        finish_error(c, slot, ERR_NO_PRIMARY);
    }
}

/* The RESP error for a write the node refused (DRIVER_REJECTED). */
static const char *rejection_text(enum reply_status status)
{
    switch (status) {
    case REPLY_EXPIRED:
        return "-ERR client session expired: start again at request number "
               "1\r\n";
    case REPLY_APPLIED_REPLY_LOST:
        return "-ERR request already applied; its reply was too large to "
               "keep\r\n";
    case REPLY_TOO_BIG:
        return "-ERR request too large for the replication log\r\n";
    default:
        return "-ERR cannot write to this replica's disk (full or failing); "
               "free space under the data directory\r\n";
    }
}

/* The node refused slot's write: it certainly did not take effect. */
static void on_rejected(struct conn *c, struct slot *slot,
                        enum reply_status status)
{
    char text[COHORT_ERR_MESSAGE_MAX];
    if (status == REPLY_OVER_LIMIT || status == REPLY_STALE) {
        if (status == REPLY_STALE)
            snprintf(text, sizeof(text),
                     "ERR stale request: client %" PRIu64
                     " has sent a request numbered above %" PRIu64
                     "; this one was not applied now",
                     slot->client_id, slot->request_no);
        session_write_done(c, slot, true);
        finish_error(c, slot, status == REPLY_STALE ? text : ERR_OOM);
        return;
    }
    const char *reply = rejection_text(status);
    char big[COHORT_ERR_MESSAGE_MAX];
    if (status == REPLY_TOO_BIG) {
        /* The core's bound on a log entry, as the node configured it. */
        struct replica_config rc;
        node_replica_config(&c->server->node_config, 0, &rc);
        snprintf(big, sizeof(big),
                 "-ERR request too large for the replication log: one write "
                 "holds at most %" PRIu32 " bytes (max-value-size + "
                 "max-key-size + 4096); send it as smaller writes\r\n",
                 rc.body_size_max);
        reply = big;
    }
    size_t size = strlen(reply);
    if (renewable(slot, reply, size)) {
        session_expired(c, slot);
        return;
    }
    session_write_done(c, slot, true);
    finish_relay(c, slot, (const uint8_t *)reply, size);
}

static void on_write_done(void *ctx, const struct driver_reply *r)
{
    struct slot *slot = ctx;
    struct conn *c = slot->conn;
    ASSERT(slot->in_node);
    ASSERT(c != NULL); /* teardown cancels before it orphans */
    slot->in_node = false;
    permit_release(c->server, slot);
    switch (r->outcome) {
    case DRIVER_DONE:
        session_write_done(c, slot, false);
        if (payload_is_publish(slot)) {
            /* The replicated reply is :0; the count is this member's. */
            char count[32];
            int n = snprintf(count, sizeof(count), ":%" PRIu64 "\r\n",
                             pubsub_receivers(c->server, r->op));
            finish_relay(c, slot, count, (size_t)n);
            break;
        }
        finish_relay(c, slot, r->data, r->size);
        break;
    case DRIVER_REJECTED:
        on_rejected(c, slot, r->status);
        break;
    case DRIVER_NOT_PRIMARY:
        forward_or_fail(c, slot, r->primary_hint);
        break;
    case DRIVER_RETRY:
        session_write_done(c, slot, true);
        finish_retry(c, slot);
        break;
    case DRIVER_UNKNOWN:
        session_write_done(c, slot, false);
        finish_error(c, slot, ERR_UNKNOWN);
        break;
    case DRIVER_SUPERSEDED:
        session_write_done(c, slot, false);
        finish_superseded(c, slot);
        break;
    }
}

void cmd_store_write(struct conn *c, struct resp_buf *out, uint32_t argc,
                     const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    struct slot *slot = conn_slot_push(c);
    conn_slot_kind(c, slot, SLOT_WRITE);
    struct kv_write w;
    if (kv_command_parse(kv_config(c), argc, argv, &w, &slot->reply) != 0) {
        conn_slot_ready(c, slot); /* certainly not proposed */
        return;
    }
    keep_command(c, slot, argc, argv);
    if (!permit_ready(c->server, slot->payload.size)) {
        queue_write(c, slot);
        return;
    }
    submit_in_session(c, slot, &w);
}

void cmd_store_write_address(struct conn *c, uint32_t id, const char *peer,
                             const char *client, uint32_t argc,
                             const struct resp_arg *argv)
{
    struct slot *slot = conn_slot_push(c);
    conn_slot_kind(c, slot, SLOT_WRITE);
    keep_command(c, slot, argc, argv);
    if (!permit_ready(c->server, slot->payload.size)) {
        /* Not queued: a queued write is parsed again from its command,
         * which kv_command_parse() does not know. */
        resp_write_errorf(&slot->reply, "ERR too many writes in flight on "
                                        "this replica; try again");
        conn_slot_ready(c, slot);
        return;
    }
    uint8_t id_le[4] = {(uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16),
                        (uint8_t)(id >> 24)};
    struct resp_arg args[3] = {
        {(const char *)id_le, sizeof(id_le)},
        {peer, strlen(peer)},
        {client, strlen(client)},
    };
    struct kv_write w = {.type = KV_CMD_ADDRESS, .arg_count = 3, .args = args};
    submit_in_session(c, slot, &w); /* the body is encoded before it returns */
}

/* Resubmit a queued write: parse its kept command again. */
static void resubmit(struct conn *c, struct slot *slot)
{
    struct server *s = c->server;
    uint32_t argc = store_parse_kept(s, slot);
    struct kv_write w;
    if (argc == 0 ||
        kv_command_parse(kv_config(c), argc, s->argv2, &w, &slot->reply) != 0) {
        if (slot->reply.size == 0)
            resp_write_error(&slot->reply, "ERR out of memory");
        conn_slot_ready(c, slot);
        return;
    }
    if (slot->fixed_ids)
        submit(c, slot, &w);
    else
        submit_in_session(c, slot, &w);
}

void store_submit_queued(struct conn *c)
{
    struct server *s = c->server;
    struct conn_session *ss = &c->session;
    while (ss->queued > 0 && !c->closing) {
        if (ss->gate != NULL || ss->stale_running > 0)
            return;
        /* From the head each time: a submission may answer at once and
         * free the slots behind it. */
        struct slot *slot = c->head;
        while (slot && slot->state != SLOT_QUEUED)
            slot = slot->next;
        ASSERT(slot != NULL);
        /* A waiter goes when a release woke it and its write fits; then,
         * no longer waiting, it goes on like any newcomer. */
        bool go = c->permit_listed
                      ? c->permit_woken && permit_free(s, slot->payload.size)
                      : permit_ready(s, slot->payload.size);
        if (!go) {
            c->permit_woken = false; /* the next release wakes it again */
            permit_wait(s, c);       /* keeps its place if already waiting */
            c->permit_need = slot->payload.size;
            return;
        }
        permit_unwait(s, c);
        ss->queued--;
        resubmit(c, slot);
    }
    permit_wake_if_room(s);
}

/* ------------------------------------------------------------ reads */

/* The primary's answer to a backup's COHORT.READINDEX, once its round
 * confirmed the view: [read index, log time] (backup_read.c). */
static void answer_read_index(struct conn *c, struct slot *slot)
{
    slot->reply.size = 0;
    resp_write_array(&slot->reply, 2);
    resp_write_integer(&slot->reply, (int64_t)slot->read_op);
    resp_write_integer(&slot->reply, (int64_t)node_log_time(c->server->node));
    conn_slot_ready(c, slot);
}

bool store_serve_read(struct conn *c, struct slot *slot, uint64_t now_ms)
{
    struct server *s = c->server;
    uint32_t argc = store_parse_kept(s, slot);
    if (argc == 0) {
        finish_error(c, slot, "ERR out of memory");
        return true;
    }
    if (!kv_query_settled(s->kv, now_ms, argc, s->argv2))
        return false;
    slot->reply.size = 0;
    store_query_at(s, now_ms, argc, s->argv2, &slot->reply);
    read_pace_count(s, slot->reply.size);
    if (slot->watch)
        txn_watch_done(c, slot);
    conn_slot_ready(c, slot);
    return true;
}

void store_forward_read(struct conn *c, struct slot *slot, uint32_t primary)
{
    forward_or_fail(c, slot, primary);
}

static void on_read_done(void *ctx, const struct driver_reply *r)
{
    struct slot *slot = ctx;
    struct conn *c = slot->conn;
    ASSERT(slot->in_node);
    ASSERT(c != NULL);
    slot->in_node = false;
    struct server *s = c->server;
    if (r->outcome == DRIVER_NOT_PRIMARY) {
        if (!c->no_forward && !slot->ri_answer &&
            r->primary_hint < s->node_config.replica_count &&
            r->primary_hint != s->node_config.self)
            backup_read_queue(c, slot, r->primary_hint);
        else
            forward_or_fail(c, slot, r->primary_hint);
        return;
    }
    if (r->outcome != DRIVER_DONE) {
        finish_retry(c, slot);
        return;
    }
    if (slot->ri_answer) {
        answer_read_index(c, slot);
        return;
    }
    if (!read_pace_room(s)) {
        read_pace_hold(s, slot); /* answered in a later turn */
        return;
    }
    store_answer_read(c, slot);
}

void store_answer_read(struct conn *c, struct slot *slot)
{
    struct server *s = c->server;
    /* Expiry is judged at the primary's log time now, not the last applied
     * op's, which lags on an idle log. But a key hidden at a log time the
     * log has not reached could come back after a failover (the next
     * primary's clock starts from the log's last timestamp): so when a key
     * the read looks at expires in between, wait for an op stamped after
     * its expiry (the sweeper proposes one) to commit, and read again. */
    if (!store_serve_read(c, slot, node_log_time(s->node))) {
        expiry_sweep_run(s);
        store_read_kept(c, slot);
    }
}

void store_read_kept(struct conn *c, struct slot *slot)
{
    slot->in_node = true;
    node_read(c->server->node, on_read_done, slot);
}

void cmd_store_read(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    struct server *s = c->server;
    struct slot *slot = conn_slot_push(c);
    conn_slot_kind(c, slot, SLOT_READ);
    if (c->readonly) {
        /* The weaker guarantee the client asked for: this replica's applied
         * state, possibly stale, never an uncommitted write; but not the
         * state of a restart still replaying its log, behind what this
         * member served before it. */
        if (server_recovering(s))
            resp_write_error(&slot->reply, SERVER_RECOVERING_ERROR);
        else
            store_query(s, argc, argv, &slot->reply);
        read_pace_count(s, slot->reply.size);
        conn_slot_ready(c, slot);
        return;
    }
    keep_command(c, slot, argc, argv);
    slot->in_node = true;
    node_read(s->node, on_read_done, slot);
}

/* ------------------------------------------------------------ COHORT.REQ */

static void reply_slot_error(struct conn *c, const char *msg)
{
    struct slot *slot = conn_slot_push(c);
    resp_write_error(&slot->reply, msg);
    conn_slot_ready(c, slot);
}

void cmd_cohort_req(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    uint64_t client_id = 0;
    uint64_t request_no = 0;
    if (!command_parse_u64(&argv[1], &client_id) || client_id == 0) {
        reply_slot_error(c, "ERR COHORT.REQ client id must be a nonzero "
                            "64-bit number in decimal");
        return;
    }
    if (!command_parse_u64(&argv[2], &request_no) || request_no == 0) {
        reply_slot_error(c, "ERR COHORT.REQ request number must be a "
                            "positive 64-bit number in decimal");
        return;
    }
    const struct resp_arg *inner = argv + 3;
    uint32_t inner_argc = argc - 3;
    const struct command_spec *spec = command_lookup(&inner[0]);
    if (spec == NULL) {
        struct slot *slot = conn_slot_push(c);
        command_reply_unknown(&slot->reply, inner_argc, inner);
        conn_slot_ready(c, slot);
        return;
    }
    if (!command_arity_ok(spec, inner_argc)) {
        struct slot *slot = conn_slot_push(c);
        command_reply_arity(&slot->reply, spec->name);
        conn_slot_ready(c, slot);
        return;
    }
    uint32_t kind = command_kind(spec, inner_argc, inner);
    command_count_as(c, spec); /* the slot below counts as the inner command */
    if (kind == CMD_READ) {
        cmd_store_read(c, NULL, inner_argc, inner);
        return;
    }
    if (kind != CMD_WRITE || spec->run == cmd_cohort_req) {
        reply_slot_error(c, "ERR COHORT.REQ wraps a store command (a store "
                            "write such as SET, INCR or RENAME, ACL "
                            "SETUSER, ACL DELUSER, COHORT.TXN, COHORT.EXEC, "
                            "or a read)");
        return;
    }
    if (spec->run == cmd_acl) {
        struct resp_buf refusal;
        resp_buf_init(&refusal, 2);
        bool ok = auth_acl_write_check(c->server, inner_argc, inner, &refusal);
        if (!ok) {
            struct slot *slot = conn_slot_push(c);
            resp_write_raw(&slot->reply, refusal.data, refusal.size);
            conn_slot_ready(c, slot);
        }
        resp_buf_deinit(&refusal);
        if (!ok)
            return;
    }
    char refusal[AUTH_REFUSAL_MAX];
    if (spec->run == cmd_cohort_txn &&
        !txn_commands_allowed(c, inner_argc, inner, refusal)) {
        reply_slot_error(c, refusal);
        return;
    }
    struct slot *slot = conn_slot_push(c);
    conn_slot_kind(c, slot, SLOT_WRITE);
    struct kv_write w;
    if (kv_command_parse(kv_config(c), inner_argc, inner, &w, &slot->reply) !=
        0) {
        conn_slot_ready(c, slot);
        return;
    }
    keep_command(c, slot, inner_argc, inner);
    slot->client_id = client_id;
    slot->request_no = request_no;
    slot->fixed_ids = true;
    if (!permit_ready(c->server, slot->payload.size)) {
        queue_write(c, slot);
        return;
    }
    submit(c, slot, &w);
}

/* ------------------------------------------------------------ forwards */

/* Whether the forwarded read in slot answers a map in RESP3, which the
 * primary sent as RESP2 pairs (the link speaks RESP2). */
static bool reply_is_map(struct server *s, struct slot *slot)
{
    uint32_t argc = store_parse_kept(s, slot);
    return argc > 0 && kv_command_replies_map(&s->argv2[0]);
}

void store_forward_reply(struct server *s, struct slot *slot, const char *reply,
                         size_t size)
{
    ASSERT(!slot->forwarded);
    if (slot->ri_request) {
        backup_read_answered(s, slot, reply, size);
        return;
    }
    struct conn *c = slot->conn;
    if (c == NULL) {
        server_slot_put(s, slot); /* its connection closed meanwhile */
        return;
    }
    if (renewable(slot, reply, size)) {
        session_expired(c, slot);
        return;
    }
    session_write_done(c, slot, false);
    if (slot->watch) {
        slot->reply.size = 0;
        resp_write_raw(&slot->reply, reply, size);
        txn_watch_done(c, slot);
        conn_slot_ready(c, slot);
        return;
    }
    if (c->proto == 3 && slot->kind == SLOT_READ && reply_is_map(s, slot)) {
        slot->reply.size = 0;
        relay_reply_map(&slot->reply, reply, size);
        conn_slot_ready(c, slot);
        return;
    }
    finish_relay(c, slot, reply, size);
}

void store_resend(struct conn *c, struct slot *slot)
{
    ASSERT(slot->conn == c && !slot->forwarded && !slot->in_node);
    if (slot->kind != SLOT_WRITE) {
        store_read_kept(c, slot);
        return;
    }
    /* The same client id and request number: if an earlier attempt took
     * effect after all, the client table answers it and does not apply it
     * again. Not renumbered, even in a session. */
    struct server *s = c->server;
    uint32_t argc = store_parse_kept(s, slot);
    struct kv_write w;
    slot->reply.size = 0;
    if (argc == 0 ||
        kv_command_parse(kv_config(c), argc, s->argv2, &w, &slot->reply) != 0) {
        session_write_done(c, slot, true);
        if (slot->reply.size == 0)
            resp_write_error(&slot->reply, "ERR out of memory");
        conn_slot_ready(c, slot);
        return;
    }
    submit(c, slot, &w);
}

void store_forward_failed(struct server *s, struct slot *slot, bool sent,
                          const char *why)
{
    ASSERT(!slot->forwarded);
    if (slot->ri_request) {
        backup_read_failed(s, slot);
        return;
    }
    struct conn *c = slot->conn;
    if (c == NULL) {
        server_slot_put(s, slot);
        return;
    }
    char text[COHORT_ERR_MESSAGE_MAX];
    if (slot->kind == SLOT_WRITE && sent) {
        session_write_done(c, slot, false);
        snprintf(text, sizeof(text),
                 "UNKNOWN the write was forwarded to the primary, but %s; it "
                 "may or may not have taken effect",
                 why);
        finish_error(c, slot, text);
        return;
    }
    session_write_done(c, slot, true);
    snprintf(text, sizeof(text), "TRYAGAIN %s; retry", why);
    finish_error(c, slot, text);
}
