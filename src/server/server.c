/* server — the listener, the per-turn handles and the slot pool. See
 * server.h for the API and internal.h for how the modules split the work.
 *
 * Loop handles and what each is for:
 *   listener  accepts connections (conn.c refuses those over the limit);
 *   prepare   runs just before the loop blocks: flushes every connection
 *             and link with output (one write each per turn) and tears down
 *             the connections that asked to close;
 *   idle      while active the loop does not block; it dispatches input
 *             that was held back (pipeline full, a write session's first
 *             request in flight) once the reason is gone, and keeps the
 *             loop turning while confirmed reads wait for a turn's reply
 *             budget (read_pace.c). It stays active
 *             one extra turn after doing work, so the node's check handle
 *             runs and proposes what it submitted before the loop sleeps;
 *   timer     every SERVER_TIMER_MS: the forward link's timeouts, and
 *             probation deadlines and idle clients (admit.c).
 *
 * Invariants: (1) a connection is on the dirty list iff c->dirty, on the
 * resume list iff c->resume_listed; (2) handles_open counts initialized
 * handles of the server itself (not connections); the server is freed when
 * it and conn_count both reach zero after server_close().
 */
#include "server/server.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/assert.h"
#include "runtime/addr.h"
#include "runtime/http.h"
#include "runtime/logline.h"
#include "server/internal.h"

#define LISTEN_BACKLOG 511
/* Descriptors a replica needs besides its clients': connections on
 * probation, backups' forward links, the metrics port's connections, and
 * about 200 for peer connections, log segments, snapshots (files and
 * pipes), listeners and the loop's own. */
#define FDS_RESERVED                                                           \
    (PROBATION_MAX + COHORT_REPLICAS_MAX * LINKS_PER_REPLICA_MAX +             \
     HTTP_CONNECTIONS_MAX + 200u)

void server_config_defaults(struct server_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen_addr = "127.0.0.1:7001";
    c->connections_max = 10000;
    c->pipeline_max = 1024;
    c->request_size_max = (2u << 20) + (64u << 10);
    c->arguments_max = 1 + 2 * 100000;
    c->inline_size_max = 64u << 10;
    c->output_buffer_max = 64u << 20;
    c->password = NULL;
    c->acl_file = NULL;
    c->protected_mode = true;
    c->tls_port = 0;
    c->tls_auth_clients = SERVER_TLS_AUTH_YES;
    c->timeout_s = 0;
    c->connections_per_addr_max = 1000;
}

uint64_t server_now_ms(const struct server *s)
{
    return uv_now(s->loop);
}

static uint64_t random_u64(void)
{
    uint64_t x = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&x, sizeof(x), 1, f) != 1)
            x = 0;
        fclose(f);
    }
    return x ^ (uv_hrtime() * 0x9e3779b97f4a7c15ull) ^
           (uint64_t)(uint32_t)getpid();
}

bool server_recovering(struct server *s)
{
    uint64_t view;
    uint32_t primary;
    if (node_role(s->node, &view, &primary) == STATUS_RECOVERING)
        return true;
    if (s->replayed)
        return false;
    /* Stopped for good (a divergence): its store is all it has, and the
     * writes the group lacks are read back from it (docs/OPERATIONS.md). */
    if (node_diverged(s->node))
        return false;
    /* Back in a view, but the store may not have reapplied what the log
     * held at the start yet (less whatever a view change cut from it). */
    uint64_t target = node_op(s->node);
    if (target > s->start_op)
        target = s->start_op;
    if (s->kv->op < target)
        return true;
    s->replayed = true;
    return false;
}

bool server_removed_error(const struct server *s,
                          char text[SERVER_REMOVED_ERROR_MAX])
{
    uint32_t epoch;
    if (!node_removed(s->node, &epoch))
        return false;
    uint32_t self = s->node_config.self;
    snprintf(text, SERVER_REMOVED_ERROR_MAX,
             "REMOVED this member (replica %" PRIu32
             ") was removed from the group (epoch %" PRIu32
             "); use another member (cohort members lists them), or add it "
             "back with cohort add %" PRIu32,
             self, epoch, self);
    return true;
}

/* At the removal, cut off the subscribers and watchers: this member
 * applies nothing more, so they would wait forever; cut off, they resume
 * on another member (the client library's watches do). Later ones are
 * refused (command_dispatch()). */
static void removal_check(struct server *s)
{
    char text[SERVER_REMOVED_ERROR_MAX];
    bool removed = server_removed_error(s, text);
    if (removed && !s->removed)
        pubsub_cut_all(s, text);
    s->removed = removed;
}

uint64_t server_client_id_new(struct server *s)
{
    /* A random base from the process start plus a counter: unique within
     * the process, and across processes and restarts with overwhelming
     * probability. Zero is not a client id. */
    uint64_t id;
    do {
        id = s->client_id_base + ++s->client_id_counter;
    } while (id == 0);
    return id;
}

/* ------------------------------------------------------------ slots */

struct slot *server_slot_get(struct server *s)
{
    struct slot *slot = s->pool;
    if (slot) {
        s->pool = slot->next;
        s->pool_count--;
    } else {
        slot = calloc(1, sizeof(*slot));
        ASSERT(slot); /* out of memory on the loop: nothing sane to do */
        resp_buf_init(&slot->payload, 2);
        resp_buf_init(&slot->reply, 2);
    }
    struct resp_buf payload = slot->payload;
    struct resp_buf reply = slot->reply;
    memset(slot, 0, sizeof(*slot));
    slot->payload = payload;
    slot->reply = reply;
    slot->payload.size = 0;
    slot->payload.ok = true;
    slot->reply.size = 0;
    slot->reply.ok = true;
    slot->server = s;
    return slot;
}

void server_slot_put(struct server *s, struct slot *slot)
{
    ASSERT(!slot->in_node);
    ASSERT(!slot->forwarded);
    ASSERT(!slot->lock_parked);
    ASSERT(slot->backup_read == BR_NONE && slot->batch == NULL);
    ASSERT(!slot->paced);
    /* Keep small buffers for reuse; return big ones to the allocator. */
    if (slot->payload.capacity > 64u * 1024u)
        resp_buf_deinit(&slot->payload);
    if (slot->reply.capacity > 64u * 1024u)
        resp_buf_deinit(&slot->reply);
    if (s->pool_count >= SLOT_POOL_MAX || s->closing) {
        resp_buf_deinit(&slot->payload);
        resp_buf_deinit(&slot->reply);
        free(slot);
        return;
    }
    slot->next = s->pool;
    s->pool = slot;
    s->pool_count++;
}

/* ------------------------------------------------------------ turns */

void server_mark_dirty(struct server *s, struct conn *c)
{
    if (c->dirty || c->closed_handle)
        return;
    c->dirty = true;
    c->dirty_next = s->dirty;
    s->dirty = c;
}

static void on_idle(uv_idle_t *handle);

static void idle_start(struct server *s)
{
    if (s->idle_active || s->closing)
        return;
    s->idle_active = true;
    uv_idle_start(&s->idle, on_idle);
}

void server_keep_turning(struct server *s)
{
    idle_start(s);
}

void server_mark_resume(struct server *s, struct conn *c)
{
    if (c->resume_listed || c->closing)
        return;
    c->resume_listed = true;
    c->resume_next = s->resume;
    s->resume = c;
    idle_start(s);
}

static void on_prepare(uv_prepare_t *handle)
{
    struct server *s = handle->data;
    pubsub_pump_all(s); /* before the flush below */
    watch_pump_all(s);
    lock_wait_check(s);
    read_pace_run(s); /* reads held from earlier turns come first */
    backup_read_run(s);
    forward_prepare(s);
    /* Flushing may close connections (a write error) which removes them
     * from the list: take the list first. */
    while (s->dirty) {
        struct conn *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (c->closing && !c->closed_handle)
            conn_teardown(c);
        else if (!c->closing)
            conn_flush(c);
    }
    forward_flush_all(s);
    read_pace_turn_end(s);
}

static void on_idle(uv_idle_t *handle)
{
    struct server *s = handle->data;
    bool worked = false;
    /* Take the list: a connection listed again while it is processed waits
     * for the next turn, so one busy connection cannot hold the loop. */
    struct conn *list = s->resume;
    s->resume = NULL;
    while (list) {
        struct conn *c = list;
        list = c->resume_next;
        c->resume_listed = false;
        c->resume_next = NULL;
        if (c->closing)
            continue;
        forward_release(c);
        store_submit_queued(c);
        conn_process(c);
        worked = true;
    }
    if (worked || s->resume || read_pace_pending(s))
        return; /* one more turn: see the file comment */
    s->idle_active = false;
    uv_idle_stop(&s->idle);
}

static void resolve_peers(struct server *s);

static void on_timer(uv_timer_t *handle)
{
    struct server *s = handle->data;
    if (node_address_version(s->node) != s->address_version)
        resolve_peers(s);
    forward_tick(s);
    admit_tick(s);
    removal_check(s);
    expiry_sweep_run(s);
    view_announce_run(s);
    incarnation_run(s);
    session_sweep_run(s);
}

/* ------------------------------------------------------------ open/close */

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0 || s->closing)
        return;
    conn_accept(s, listener);
}

/* Where the other replicas' RESP ports are, for forwarding: as the node
 * has them (--clients, or where a COHORT.ADDRESS moved an id). */
static void resolve_peers(struct server *s)
{
    struct node_status st;
    node_status(s->node, &st);
    s->address_version = node_address_version(s->node);
    for (uint32_t i = 0; i < st.replica_count && i < COHORT_REPLICAS_MAX; i++) {
        s->client_sockaddr_ok[i] = false;
        if (i == st.self || st.client_addr[i] == NULL)
            continue;
        struct cohort_err e;
        err_clear(&e);
        if (addr_parse(st.client_addr[i], &s->client_sockaddr[i], &e) == 0)
            s->client_sockaddr_ok[i] = true;
        else
            logline(LOGLINE_WARN,
                    "replica %u's client address: %s; commands forwarded to "
                    "it will get -TRYAGAIN",
                    i, e.message);
    }
}

static int open_listener(struct server *s, struct cohort_err *err)
{
    struct sockaddr_storage ss;
    int rc = addr_parse(s->config.listen_addr, &ss, err);
    if (rc != 0)
        return err_wrap(err, "listen %s", s->config.listen_addr);
    int fd = addr_listen(&ss, LISTEN_BACKLOG, "port in --clients", err);
    if (fd < 0)
        return fd;
    addr_format((const struct sockaddr *)&ss, s->listen_text,
                sizeof(s->listen_text));
    s->port = addr_port((const struct sockaddr *)&ss);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->handles_open++;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc != 0) {
        close(fd); /* not adopted by the handle */
        return err_set(err, -COHORT_EIO, "listen %s: %s", s->listen_text,
                       uv_strerror(rc));
    }
    rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0)
        return err_set(err, -COHORT_EIO, "listen %s: %s", s->listen_text,
                       uv_strerror(rc));
    return 0;
}

static void start_handles(struct server *s)
{
    uv_prepare_init(s->loop, &s->prepare);
    s->prepare.data = s;
    s->handles_open++;
    uv_prepare_start(&s->prepare, on_prepare);
    uv_idle_init(s->loop, &s->idle);
    s->idle.data = s;
    s->handles_open++;
    uv_timer_init(s->loop, &s->timer);
    s->timer.data = s;
    s->handles_open++;
    uv_timer_start(&s->timer, on_timer, SERVER_TIMER_MS, SERVER_TIMER_MS);
    uv_unref((uv_handle_t *)&s->timer);
    lock_wait_open(s);
    backup_read_open(s);
}

static bool config_valid(const struct server_config *c, struct cohort_err *err)
{
    if (c->listen_addr == NULL) {
        err_set(err, -COHORT_ECONFIG, "no client address to listen on");
        return false;
    }
    if (c->connections_max == 0 || c->pipeline_max == 0 ||
        c->request_size_max < 1024 || c->arguments_max < 3 ||
        c->inline_size_max < 64 || c->output_buffer_max < 64u * 1024u) {
        err_set(err, -COHORT_ECONFIG,
                "server limits out of range: connections, pipeline and "
                "arguments must be positive, request size >= 1024 bytes, "
                "inline size >= 64 bytes, output buffer >= 64 KiB");
        return false;
    }
    return true;
}

/* Fit --max-clients to the open files limit, as Redis does: clients must
 * not take the descriptors the log, the snapshots and the peer links need
 * (a replica out of them fails its snapshots and cannot redial a peer; a
 * client over max-clients only gets an error). Raises the soft limit as
 * far as the hard one allows, then lowers c->connections_max to fit and
 * says so. Fails when the limit leaves no room for a client at all. */
static int fit_fd_limit(struct server_config *c, struct cohort_err *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    rlim_t want = (rlim_t)c->connections_max + FDS_RESERVED;
    if (rl.rlim_cur >= want)
        return 0;
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (raised.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0)
        rl = raised;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_cur <= FDS_RESERVED)
        return err_set(err, -COHORT_ECONFIG,
                       "the open files limit is %llu (ulimit -n); a replica "
                       "needs more than %u, and %llu for --max-clients %u: "
                       "raise it (ulimit -n, or LimitNOFILE= in its service "
                       "unit)",
                       (unsigned long long)rl.rlim_cur, FDS_RESERVED,
                       (unsigned long long)want, c->connections_max);
    uint32_t fit = (uint32_t)(rl.rlim_cur - FDS_RESERVED);
    logline(LOGLINE_WARN,
            "max-clients lowered from %u to %u: the open files limit is "
            "%llu (ulimit -n) and the replica keeps %u for its peers, log "
            "and snapshots; raise the limit to %llu (ulimit -n, or "
            "LimitNOFILE= in its service unit) or lower --max-clients",
            c->connections_max, fit, (unsigned long long)rl.rlim_cur,
            FDS_RESERVED, (unsigned long long)want);
    c->connections_max = fit;
    return 0;
}

/* A client that closes while we write to it must be an EPIPE error on that
 * connection, not a SIGPIPE that kills the replica. Leave a handler the
 * program installed alone. */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int server_files_check(const struct server_config *c, struct cohort_err *err)
{
    struct auth a;
    int rc = auth_init(&a, c, err);
    auth_deinit(&a);
    return rc != 0 ? rc : tls_port_check(c, err);
}

struct server *server_open(uv_loop_t *loop, struct node *node,
                           const struct server_config *config,
                           const struct node_config *node_config,
                           struct cohort_err *err)
{
    if (!config_valid(config, err))
        return NULL;
    struct server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        err_set(err, -COHORT_ENOMEM, "allocate the server");
        return NULL;
    }
    s->loop = loop;
    log_limit_init(&s->tls_failure_log, 10000, 10);
    s->node = node;
    s->kv = node_kv(node);
    s->start_op = node_op(node);
    s->config = *config;
    s->node_config = *node_config;
    if (fit_fd_limit(&s->config, err) != 0) {
        free(s);
        return NULL;
    }
    /* A command carries at most two values and a key (CAS). Room for that
     * lets a value just over max-value-size reach the store's own check,
     * which answers -ERR and keeps the connection. */
    size_t command_max = 2 * (size_t)node_config->kv.value_size_max +
                         node_config->kv.key_size_max;
    if (s->config.request_size_max < command_max)
        s->config.request_size_max = command_max;
    /* And one reply of the largest value (GET) fits the output limit. */
    size_t reply_max = kv_reply_size_max(&node_config->kv);
    if (s->config.output_buffer_max < reply_max)
        s->config.output_buffer_max = reply_max;
    s->limits.arg_count_max = config->arguments_max;
    s->limits.bulk_size_max = s->config.request_size_max;
    s->limits.inline_size_max = config->inline_size_max;
    s->started_ms = uv_now(loop);
    s->client_id_base = random_u64();
    expiry_sweep_init(s);
    view_announce_init(s);
    incarnation_init(s);
    session_sweep_init(s);
    s->backoff_target = UINT32_MAX;
    addr_counts_init(&s->addr_counts);
    if (auth_init(&s->auth, config, err) != 0) {
        auth_deinit(&s->auth);
        addr_counts_deinit(&s->addr_counts);
        free(s);
        return NULL;
    }
    ignore_sigpipe();
    resolve_peers(s);
    if (open_listener(s, err) != 0 || tls_port_open(s, err) != 0 ||
        exporter_open(s, err) != 0) {
        /* Frees s now, or from the listeners' close callbacks. */
        server_close(s);
        return NULL;
    }
    start_handles(s);
    pubsub_open(s);
    return s;
}

static void maybe_free(struct server *s)
{
    if (!s->closing || s->handles_open > 0 || s->conn_count > 0)
        return;
    ASSERT(s->link == NULL);
    ASSERT(s->draining == NULL);
    while (s->pool) {
        struct slot *slot = s->pool;
        s->pool = slot->next;
        resp_buf_deinit(&slot->payload);
        resp_buf_deinit(&slot->reply);
        free(slot);
    }
    free(s->argv);
    free(s->argv2);
    free(s->body);
    addr_counts_deinit(&s->addr_counts);
    auth_deinit(&s->auth);
    free(s);
}

void server_handle_opened(struct server *s)
{
    s->handles_open++;
}

void server_handle_closed(struct server *s)
{
    ASSERT(s->handles_open > 0);
    s->handles_open--;
    maybe_free(s);
}

static void on_handle_closed(uv_handle_t *handle)
{
    server_handle_closed(handle->data);
}

void server_conn_gone(struct server *s)
{
    ASSERT(s->conn_count > 0);
    s->conn_count--;
    maybe_free(s);
}

void server_close(struct server *s)
{
    if (s->closing)
        return;
    s->closing = true;
    pubsub_close(s);
    expiry_sweep_close(s);
    view_announce_close(s);
    incarnation_close(s);
    session_sweep_close(s);
    exporter_close(s);
    forward_close_all(s);
    struct conn *c = s->conns;
    while (c) {
        struct conn *next = c->next;
        if (!c->closed_handle)
            conn_teardown(c);
        c = next;
    }
    if (s->listener.type == UV_TCP)
        uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    tls_port_close(s, on_handle_closed);
    if (s->prepare.type == UV_PREPARE) {
        uv_close((uv_handle_t *)&s->prepare, on_handle_closed);
        uv_close((uv_handle_t *)&s->idle, on_handle_closed);
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
        lock_wait_close(s, on_handle_closed);
        backup_read_close(s, on_handle_closed);
    }
    read_pace_close(s);
    maybe_free(s);
}
