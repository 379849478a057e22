/* node — one replica process: the core driven by libuv, the storage thread,
 * the transport, snapshots and snapshot transfer. See node.h. */
#include "runtime/node.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "kv/command.h"
#include "kv/snapshot.h"
#include "runtime/persister.h"
#include "runtime/transport.h"
#include "storage/meta.h"
#include "storage/snapshot.h"
#include "storage/vfs.h"
#include "storage/wal.h"

#define FRAME_PROTOCOL 1
#define FRAME_SNAPSHOT 2
/* Receiver to sender: "I hold the first N bytes of your snapshot at op X;
 * go on from there" (a transfer resumed after a dropped connection). */
#define FRAME_SNAPSHOT_RESUME 3
#define SNAPSHOT_CHUNK_SIZE (256u << 10)
#define SNAPSHOT_CHUNK_HEADER (1 + 8 + 8 + 8)
#define TICK_MS 5
#define PENDING_INITIAL 1024
#define NODE_SNAPSHOT_INTERVAL_DEFAULT 100000u
#define NODE_LOG_BYTES_MIN (64u << 20)

struct pending {
    uint64_t client_id; /* 0: empty */
    uint64_t request_no;
    node_done_fn done;
    void *ctx;
};

struct reader_waiter {
    node_done_fn done;
    void *ctx;
};

struct waiters {
    struct reader_waiter *list;
    uint32_t count, cap;
};

/* Reads covered by one EV_READ in flight. */
struct read_group {
    uint64_t tag; /* 0: answered */
    struct waiters w;
};

/* The snapshot child's nice value. */
#define SNAPSHOT_NICE 10

#define READ_GROUPS_MAX 64u

struct snapshot_send {
    bool active;
    struct snapshot_reader reader;
    uint64_t offset;
};

struct node {
    uv_loop_t *loop;
    struct node_config c;
    char wal_dir[VFS_PATH_MAX];
    char meta_path[VFS_PATH_MAX];
    char snap_dir[VFS_PATH_MAX];
    struct vfs *vfs;
    struct wal wal;
    struct meta meta;
    bool wal_open, meta_open;
    struct persister persister;
    uv_async_t persist_async;
    uv_timer_t tick;
    uv_check_t check;
    uv_signal_t sigchld;
    uint32_t handles_open;
    bool closing;

    struct kv kv;
    bool kv_ready;
    struct cohort_sm sm;
    struct replica *r;
    struct replica_config rc;
    struct transport *transport;

    /* Requests gathered during one loop iteration, proposed together. */
    struct client_request *batch;
    uint8_t *batch_bytes;
    uint32_t batch_count, batch_cap;
    size_t batch_used, batch_bytes_cap;

    struct pending *pending;
    uint32_t pending_cap, pending_count;

    /* Requests the core turned away because its pipeline or log was full
     * (REPLY_BUSY), oldest first, offered again when the commit point or
     * the log's start moves. While any wait, new ones queue behind them,
     * so a connection's requests keep their order. */
    struct deferred *deferred;
    uint32_t deferred_count, deferred_cap;
    uint64_t deferred_bytes;
    uint64_t deferred_commit, deferred_base;
    uint32_t batch_scan; /* where on_reply looks for a BUSY request */

    /* Linearizable reads (read index, core/replica.h EV_READ). Reads that
     * arrive during a loop turn form a group; at the end of the turn, after
     * the turn's writes are proposed, the group goes to the core as one
     * EV_READ, and its ACT_READ says when the store may answer them all.
     * Up to READ_GROUPS_MAX groups are in flight, oldest first. */
    uint64_t read_tag;         /* the last EV_READ's tag */
    struct waiters waiting;    /* the open group: not yet sent */
    struct read_group *groups; /* ring of READ_GROUPS_MAX */
    uint32_t group_head, group_count;

    /* Snapshots. */
    pid_t snapshot_child;
    uint64_t snapshot_child_op;
    uint64_t snapshot_op;
    uint64_t snapshot_time_s;
    struct snapshot_send sends[COHORT_REPLICAS_MAX];
    struct snapshot_receiver receiver;
    bool receiving;
    uint32_t receiving_from; /* the replica whose snapshot it is */

    uint8_t *frame; /* scratch for prefixing frames */
    size_t frame_cap;
    uint64_t view_changes;
};

/* ------------------------------------------------------------ logging */

__attribute__((format(printf, 2, 3))) static void node_log(const struct node *n,
                                                           const char *fmt, ...)
{
    if (n->c.quiet)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "cohort[%u]: %s\n", n->c.self, line);
}

static void transport_log(void *ctx, const char *line)
{
    node_log(ctx, "%s", line);
}

static uint64_t now_ms(const struct node *n)
{
    (void)n;
    return uv_hrtime() / 1000000u;
}

/* ------------------------------------------------------------ pending */

static uint32_t pending_slot(const struct node *n, uint64_t client_id,
                             uint64_t request_no)
{
    uint64_t h = (client_id ^ (request_no * 0x9e3779b97f4a7c15ull)) *
                 0xff51afd7ed558ccdull;
    uint32_t mask = n->pending_cap - 1;
    uint32_t i = (uint32_t)(h >> 32) & mask;
    while (n->pending[i].client_id != 0 &&
           (n->pending[i].client_id != client_id ||
            n->pending[i].request_no != request_no))
        i = (i + 1) & mask;
    return i;
}

static void pending_grow(struct node *n)
{
    struct pending *old = n->pending;
    uint32_t old_cap = n->pending_cap;
    n->pending_cap = old_cap ? old_cap * 2 : PENDING_INITIAL;
    n->pending = calloc(n->pending_cap, sizeof(*n->pending));
    ASSERT(n->pending);
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].client_id)
            n->pending[pending_slot(n, old[i].client_id, old[i].request_no)] =
                old[i];
    free(old);
}

static void pending_remove_at(struct node *n, uint32_t i)
{
    uint32_t mask = n->pending_cap - 1;
    n->pending[i].client_id = 0;
    n->pending_count--;
    uint32_t j = (i + 1) & mask;
    while (n->pending[j].client_id) {
        struct pending p = n->pending[j];
        n->pending[j].client_id = 0;
        n->pending[pending_slot(n, p.client_id, p.request_no)] = p;
        j = (j + 1) & mask;
    }
}

/* A queued request (see node.deferred). */
struct deferred {
    uint64_t client_id;
    uint64_t request_no;
    uint8_t *body;
    uint32_t body_size;
};

/* Bytes of request bodies the deferred queue may hold; beyond it requests
 * are answered "try again". */
#define DEFERRED_BYTES_MAX (64u << 20)

static bool deferred_push(struct node *n, uint64_t client_id,
                          uint64_t request_no, const uint8_t *body,
                          uint32_t body_size)
{
    if (n->deferred_bytes + body_size > DEFERRED_BYTES_MAX)
        return false;
    if (n->deferred_count == n->deferred_cap) {
        n->deferred_cap = n->deferred_cap ? n->deferred_cap * 2 : 256;
        n->deferred =
            realloc(n->deferred, n->deferred_cap * sizeof(*n->deferred));
        ASSERT(n->deferred);
    }
    uint8_t *copy = NULL;
    if (body_size) {
        copy = malloc(body_size);
        ASSERT(copy);
        memcpy(copy, body, body_size);
    }
    n->deferred[n->deferred_count++] =
        (struct deferred){client_id, request_no, copy, body_size};
    n->deferred_bytes += body_size;
    n->deferred_commit = replica_commit(n->r);
    n->deferred_base = replica_log_base(n->r);
    return true;
}

static void deferred_clear(struct node *n)
{
    for (uint32_t i = 0; i < n->deferred_count; i++)
        free(n->deferred[i].body);
    n->deferred_count = 0;
    n->deferred_bytes = 0;
}

/* Take the callback waiting for (client, request); false if none. */
static bool pending_take(struct node *n, uint64_t client_id,
                         uint64_t request_no, struct pending *out)
{
    if (!n->pending_cap)
        return false;
    uint32_t i = pending_slot(n, client_id, request_no);
    if (!n->pending[i].client_id)
        return false;
    *out = n->pending[i];
    pending_remove_at(n, i);
    return true;
}

static void pending_add(struct node *n, uint64_t client_id, uint64_t request_no,
                        node_done_fn done, void *ctx)
{
    if ((n->pending_count + 1) * 2 > n->pending_cap)
        pending_grow(n);
    uint32_t i = pending_slot(n, client_id, request_no);
    if (n->pending[i].client_id) {
        /* The same request again while in flight: the older caller learns
         * nothing certain about it. */
        struct pending old = n->pending[i];
        n->pending[i].done = done;
        n->pending[i].ctx = ctx;
        old.done(old.ctx, NODE_UNKNOWN, NULL, 0, 0);
        return;
    }
    n->pending[i] = (struct pending){client_id, request_no, done, ctx};
    n->pending_count++;
}

/* Every proposed request of ours has an unknown outcome now. */
static void pending_fail_all(struct node *n, enum node_outcome outcome)
{
    for (uint32_t i = 0; i < n->pending_cap; i++) {
        if (!n->pending[i].client_id)
            continue;
        struct pending p = n->pending[i];
        n->pending[i].client_id = 0;
        n->pending_count--;
        p.done(p.ctx, outcome, NULL, 0, replica_primary(n->r));
    }
}

void node_cancel(struct node *n, void *ctx)
{
    for (uint32_t i = 0; i < n->pending_cap; i++)
        if (n->pending[i].client_id && n->pending[i].ctx == ctx) {
            pending_remove_at(n, i);
            i = (uint32_t)-1; /* the table shifted: scan again */
        }
    for (uint32_t g = 0; g <= n->group_count; g++) {
        struct waiters *w =
            g == n->group_count
                ? &n->waiting
                : &n->groups[(n->group_head + g) % READ_GROUPS_MAX].w;
        for (uint32_t i = 0; i < w->count; i++)
            if (w->list[i].ctx == ctx)
                w->list[i].done = NULL;
    }
}

/* ------------------------------------------------------------ stepping */

static void carry_out(struct node *n, const struct actions *acts);
static uint64_t random_u64(void);
static void start_reads(struct node *n);
static void waiters_push(struct waiters *w, node_done_fn done, void *ctx);
static void waiters_finish(struct node *n, struct waiters *w,
                           enum node_outcome outcome);
static void fail_reads(struct node *n, enum node_outcome outcome);
static void batch_add(struct node *n, uint64_t client_id, uint64_t request_no,
                      const uint8_t *body, size_t body_size);

static void step(struct node *n, struct event *ev)
{
    if (n->closing)
        return;
    ev->now_ms = now_ms(n);
    struct actions acts;
    replica_step(n->r, ev, &acts);
    carry_out(n, &acts);
}

static void send_frame(struct node *n, uint32_t to, uint8_t kind,
                       const uint8_t *head, size_t head_size,
                       const uint8_t *data, size_t size)
{
    size_t total = 1 + head_size + size;
    if (total > n->frame_cap) {
        free(n->frame);
        n->frame_cap = total * 2;
        n->frame = malloc(n->frame_cap);
        ASSERT(n->frame);
    }
    n->frame[0] = kind;
    if (head_size)
        memcpy(n->frame + 1, head, head_size);
    if (size)
        memcpy(n->frame + 1 + head_size, data, size);
    transport_send(n->transport, to, n->frame, total);
}

/* The core turned (client, no) away as busy while a batch was being
 * proposed: queue it to be offered again. False if it cannot wait. */
static bool defer_busy(struct node *n, uint64_t client, uint64_t no)
{
    if (!n->pending_cap || !n->pending[pending_slot(n, client, no)].client_id)
        return false; /* nobody waits for it any more */
    /* The core answers a batch in order: resume the search where the last
     * one stopped. */
    for (uint32_t k = 0; k < n->batch_count; k++) {
        uint32_t i = (n->batch_scan + k) % n->batch_count;
        const struct client_request *q = &n->batch[i];
        if (q->client_id == client && q->request_no == no) {
            n->batch_scan = i + 1;
            return deferred_push(n, client, no, q->body, q->body_size);
        }
    }
    return false;
}

/* Offer the deferred requests again, in order, if the core may have room
 * now. Requests turned away again go back to the queue, and everything
 * after them with them. */
static void resubmit_deferred(struct node *n)
{
    if (n->deferred_count == 0 || !replica_is_primary(n->r))
        return;
    if (replica_commit(n->r) == n->deferred_commit &&
        replica_log_base(n->r) == n->deferred_base)
        return;
    struct deferred *list = n->deferred;
    uint32_t count = n->deferred_count;
    n->deferred = NULL;
    n->deferred_count = n->deferred_cap = 0;
    n->deferred_bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct deferred *d = &list[i];
        if (n->deferred_count > 0 || !replica_is_primary(n->r)) {
            if (!replica_is_primary(n->r) ||
                !deferred_push(n, d->client_id, d->request_no, d->body,
                               d->body_size)) {
                struct pending p;
                if (pending_take(n, d->client_id, d->request_no, &p))
                    p.done(p.ctx, NODE_RETRY, NULL, 0, replica_primary(n->r));
            }
        } else {
            batch_add(n, d->client_id, d->request_no, d->body, d->body_size);
        }
        free(d->body);
    }
    free(list);
}

/* Move the reads of a group in flight back to the open group, to be
 * covered by a later EV_READ. */
static void regroup(struct node *n, struct read_group *g)
{
    for (uint32_t i = 0; i < g->w.count; i++)
        if (g->w.list[i].done)
            waiters_push(&n->waiting, g->w.list[i].done, g->w.list[i].ctx);
    g->w.count = 0;
}

static void on_read_answer(struct node *n, const struct action *a)
{
    /* The core answers reads in order: normally the oldest group, or one
     * turned away as busy. */
    for (uint32_t k = 0; k < n->group_count; k++) {
        struct read_group *g =
            &n->groups[(n->group_head + k) % READ_GROUPS_MAX];
        if (g->tag != a->read.tag)
            continue;
        if (a->read.status == REPLY_BUSY) {
            regroup(n, g); /* stays as an empty group until it is oldest */
        } else {
            enum node_outcome o = a->read.status == REPLY_OK ? NODE_DONE
                                  : a->read.status == REPLY_NOT_PRIMARY
                                      ? NODE_NOT_PRIMARY
                                      : NODE_RETRY;
            waiters_finish(n, &g->w, o);
        }
        g->tag = 0;
        break;
    }
    /* Retire answered groups from the front. */
    while (n->group_count > 0 && n->groups[n->group_head].tag == 0) {
        n->group_head = (n->group_head + 1) % READ_GROUPS_MAX;
        n->group_count--;
    }
}

static void on_reply(struct node *n, const struct action *a)
{
    uint64_t client = a->reply.client_id;
    uint64_t no = a->reply.request_no;
    if (a->reply.status == REPLY_BUSY && defer_busy(n, client, no))
        return;
    struct pending p;
    if (!pending_take(n, client, no, &p))
        return;
    static const char lost[] =
        "-ERR request already applied; its reply was too large to keep\r\n";
    static const char expired[] =
        "-ERR client session expired: start again at request number 1\r\n";
    static const char too_big[] =
        "-ERR request too large for the replication log\r\n";
    uint32_t hint = a->reply.primary_hint;
    switch (a->reply.status) {
    case REPLY_OK:
        p.done(p.ctx, NODE_DONE, a->reply.data, a->reply.size, hint);
        break;
    case REPLY_NOT_PRIMARY:
        p.done(p.ctx, NODE_NOT_PRIMARY, NULL, 0, hint);
        break;
    case REPLY_VIEW_CHANGE:
    case REPLY_RECOVERING:
    case REPLY_BUSY:
        p.done(p.ctx, NODE_RETRY, NULL, 0, hint);
        break;
    case REPLY_TOO_BIG:
        p.done(p.ctx, NODE_REJECTED, (const uint8_t *)too_big,
               sizeof(too_big) - 1, hint);
        break;
    case REPLY_EXPIRED:
        p.done(p.ctx, NODE_REJECTED, (const uint8_t *)expired,
               sizeof(expired) - 1, hint);
        break;
    case REPLY_APPLIED_REPLY_LOST:
        p.done(p.ctx, NODE_REJECTED, (const uint8_t *)lost, sizeof(lost) - 1,
               hint);
        break;
    }
}

static void on_view(struct node *n, const struct cohort_view_info *v)
{
    n->view_changes++;
    const char *role = v->roles[v->self] == COHORT_ROLE_PRIMARY  ? "primary"
                       : v->roles[v->self] == COHORT_ROLE_BACKUP ? "backup"
                                                                 : "changing";
    node_log(n, "view %" PRIu64 ": primary is replica %u; this replica is %s",
             v->view, v->primary, role);
    if (!replica_is_primary(n->r)) {
        deferred_clear(n); /* their callbacks are in pending */
        pending_fail_all(n, NODE_UNKNOWN);
        fail_reads(n, NODE_NOT_PRIMARY);
    }
}

static int snapshot_write_cb(void *ctx, const void *data, size_t size)
{
    struct snapshot_writer *w = ctx;
    struct cohort_err err;
    return snapshot_write(w, data, size, &err);
}

/* In the forked child: write the store to a snapshot file and exit. */
static void snapshot_child(struct node *n, const struct action *a)
{
    /* Background work: yield the CPU to the replicas serving requests (on
     * a small machine the child otherwise takes a core from them). */
    (void)setpriority(PRIO_PROCESS, 0, SNAPSHOT_NICE); /* best effort */
    struct snapshot_info info = {
        .op = a->snapshot_take.op,
        .checksum = a->snapshot_take.checksum,
        .timestamp_ms = a->snapshot_take.timestamp_ms,
        .view = replica_view(n->r),
        .client_table_size = a->snapshot_take.client_table_size,
    };
    struct snapshot_writer w;
    struct cohort_err err;
    err_clear(&err);
    int rc = snapshot_write_begin(&w, n->vfs, n->snap_dir, &info,
                                  a->snapshot_take.client_table, &err);
    if (rc == 0)
        rc = kv_snapshot_write(&n->kv, snapshot_write_cb, &w, &err);
    if (rc == 0)
        rc = snapshot_write_end(&w, NULL, &err);
    if (rc != 0) {
        fprintf(stderr, "cohort[%u]: snapshot at op %" PRIu64 ": %s\n",
                n->c.self, info.op, err.message);
        snapshot_write_abort(&w);
        _exit(1);
    }
    _exit(0);
}

/* The snapshot child reads the store and the client table, never the log:
 * mapping the log's arena into it would only make fork() copy its page
 * tables and make the replica copy each arena page it writes afterwards. */
static void keep_arena_from_children(struct node *n)
{
    void *data;
    size_t size;
    replica_log_arena(n->r, &data, &size);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)data + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)data + size) & ~(uintptr_t)(page - 1);
    if (end > start && madvise((void *)start, end - start, MADV_DONTFORK) != 0)
        node_log(n,
                 "madvise(MADV_DONTFORK) of the log arena: %s (snapshots "
                 "fork more slowly)",
                 strerror(errno));
}

static void take_snapshot(struct node *n, const struct action *a)
{
    if (n->snapshot_child > 0)
        return; /* one at a time; the core asks again later */
    pid_t pid = fork();
    if (pid == 0)
        snapshot_child(n, a);
    if (pid < 0) {
        node_log(n, "fork for a snapshot failed: %s", strerror(errno));
        struct event ev = {.type = EV_SNAPSHOT_TAKEN};
        ev.snapshot_taken.op = 0;
        step(n, &ev);
        return;
    }
    n->snapshot_child = pid;
    n->snapshot_child_op = a->snapshot_take.op;
}

static void start_snapshot_send(struct node *n, uint32_t to)
{
    struct snapshot_send *s = &n->sends[to];
    if (s->active)
        snapshot_close(&s->reader);
    s->active = false;
    struct cohort_err err;
    if (snapshot_open_latest(&s->reader, n->vfs, n->snap_dir, &err) != 0) {
        node_log(n, "cannot send a snapshot to replica %u: %s", to,
                 err.message);
        return;
    }
    s->active = true;
    s->offset = 0;
}

static void persist(struct node *n, const struct action *a)
{
    uint64_t first = a->persist.op_first;
    uint64_t last = a->persist.op_last;
    struct persist_job *job;
    if (last >= first) {
        job = persist_job_entries(n->r, first, last, a->persist.checksum);
    } else if (replica_entry(n->r, last)) {
        /* Truncate after `last`: re-append it (the wal replaces the suffix
         * from an op it already holds). */
        job = persist_job_entries(n->r, last, last, a->persist.checksum);
        job->op_first = first;
    } else {
        job = persist_job_entries(n->r, first, last, a->persist.checksum);
    }
    persister_push(&n->persister, job);
}

static void carry_out(struct node *n, const struct actions *acts)
{
    for (uint32_t i = 0; i < acts->count; i++) {
        const struct action *a = &acts->list[i];
        switch (a->type) {
        case ACT_SEND:
            send_frame(n, a->send.to, FRAME_PROTOCOL, NULL, 0, a->send.data,
                       a->send.size);
            break;
        case ACT_PERSIST:
            persist(n, a);
            break;
        case ACT_PERSIST_META: {
            struct persist_job *job = calloc(1, sizeof(*job));
            ASSERT(job);
            job->type = PJOB_META;
            job->seq = a->meta.seq;
            job->meta.cluster_id = n->c.cluster_id;
            job->meta.meta = a->meta.meta;
            persister_push(&n->persister, job);
            break;
        }
        case ACT_REPLY:
            on_reply(n, a);
            break;
        case ACT_VIEW:
            on_view(n, &a->view);
            break;
        case ACT_SNAPSHOT_TAKE:
            take_snapshot(n, a);
            break;
        case ACT_LOG_COMPACT: {
            struct persist_job *job = calloc(1, sizeof(*job));
            ASSERT(job);
            job->type = PJOB_COMPACT;
            job->compact_op = a->compact.op;
            persister_push(&n->persister, job);
            break;
        }
        case ACT_SNAPSHOT_SEND:
            start_snapshot_send(n, a->snapshot_send.to);
            break;
        case ACT_READ:
            on_read_answer(n, a);
            break;
        }
    }
}

/* ---------------------------------------------------------- callbacks */

static void on_persist_done(uv_async_t *handle)
{
    struct node *n = handle->data;
    if (n->persister.failed) {
        pthread_mutex_lock(&n->persister.lock);
        struct cohort_err e = n->persister.error;
        pthread_mutex_unlock(&n->persister.lock);
        fprintf(stderr,
                "cohort[%u]: storage failed, stopping: %s; check the disk "
                "under %s and restart the server (acknowledged writes are on "
                "a majority)\n",
                n->c.self, e.message, n->c.data_dir);
        _exit(3);
    }
    struct persist_job *j = persister_take_done(&n->persister);
    while (j) {
        struct persist_job *next = j->next;
        struct event ev = {0};
        if (j->type == PJOB_PERSIST) {
            ev.type = EV_PERSISTED;
            ev.persisted.op = j->op_last;
            ev.persisted.checksum = j->checksum;
            step(n, &ev);
        } else if (j->type == PJOB_META) {
            ev.type = EV_META_PERSISTED;
            ev.meta.seq = j->seq;
            step(n, &ev);
        }
        persist_job_free(j);
        j = next;
    }
}

static void flush_batch(struct node *n)
{
    if (n->batch_count == 0)
        return;
    struct event ev = {.type = EV_CLIENT_REQUEST};
    ev.client.requests = n->batch;
    ev.client.count = n->batch_count;
    n->batch_scan = 0;
    step(n, &ev);
    n->batch_count = 0;
    n->batch_used = 0;
}

static void on_check(uv_check_t *handle)
{
    struct node *n = handle->data;
    resubmit_deferred(n);
    flush_batch(n);
    start_reads(n);
}

static void pump_snapshot_sends(struct node *n)
{
    static uint8_t chunk[SNAPSHOT_CHUNK_SIZE];
    for (uint32_t to = 0; to < n->c.replica_count; to++) {
        struct snapshot_send *s = &n->sends[to];
        if (!s->active)
            continue;
        struct transport_peer_stats st;
        transport_stats(n->transport, to, &st);
        if (!st.connected) {
            snapshot_close(&s->reader);
            s->active = false;
            continue;
        }
        for (int k = 0; k < 4 && st.bytes_queued < (8u << 20); k++) {
            size_t done = 0;
            struct cohort_err err;
            if (snapshot_read_chunk(&s->reader, s->offset, chunk, sizeof(chunk),
                                    &done, &err) != 0) {
                node_log(n, "snapshot send to %u: %s", to, err.message);
                done = 0;
            }
            uint8_t head[SNAPSHOT_CHUNK_HEADER - 1];
            put_u64(head, s->reader.info.op);
            put_u64(head + 8, s->offset);
            put_u64(head + 16, s->reader.info.file_size);
            send_frame(n, to, FRAME_SNAPSHOT, head, sizeof(head), chunk, done);
            s->offset += done;
            if (done == 0 || s->offset >= s->reader.info.file_size) {
                snapshot_close(&s->reader);
                s->active = false;
                break;
            }
            transport_stats(n->transport, to, &st);
        }
    }
}

static void on_tick(uv_timer_t *handle)
{
    struct node *n = handle->data;
    resubmit_deferred(n);
    flush_batch(n);
    start_reads(n);
    struct event ev = {.type = EV_TICK};
    step(n, &ev);
    pump_snapshot_sends(n);
}

static void on_sigchld(uv_signal_t *handle, int signum)
{
    (void)signum;
    struct node *n = handle->data;
    if (n->snapshot_child <= 0)
        return;
    int status = 0;
    pid_t pid = waitpid(n->snapshot_child, &status, WNOHANG);
    if (pid != n->snapshot_child)
        return;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    n->snapshot_child = 0;
    struct event ev = {.type = EV_SNAPSHOT_TAKEN};
    ev.snapshot_taken.op = ok ? n->snapshot_child_op : 0;
    if (ok) {
        n->snapshot_op = n->snapshot_child_op;
        n->snapshot_time_s = (uint64_t)time(NULL);
    } else {
        node_log(n, "snapshot at op %" PRIu64 " failed; will retry",
                 n->snapshot_child_op);
    }
    step(n, &ev);
}

static int reader_read_cb(void *ctx, void *data, size_t size, size_t *got)
{
    struct {
        struct snapshot_reader *r;
        uint64_t offset;
    } *c = ctx;
    struct cohort_err err;
    int rc = snapshot_read_state(c->r, c->offset, data, size, got, &err);
    if (rc == 0)
        c->offset += *got;
    return rc;
}

/* Load the store and the client table from an open snapshot. The table
 * bytes are malloc'd into *table. */
static int restore_from_snapshot(struct node *n, struct snapshot_reader *rd,
                                 uint8_t **table, struct cohort_err *err)
{
    const struct snapshot_info *info = snapshot_info(rd);
    *table = malloc(info->client_table_size ? info->client_table_size : 1);
    ASSERT(*table);
    int rc = snapshot_read_client_table(rd, *table, err);
    if (rc != 0)
        return rc;
    struct {
        struct snapshot_reader *r;
        uint64_t offset;
    } ctx = {rd, 0};
    return kv_restore(&n->kv, reader_read_cb, &ctx, err);
}

static void install_received_snapshot(struct node *n)
{
    struct snapshot_info info;
    struct cohort_err err;
    if (snapshot_receive_end(&n->receiver, &info, &err) != 0) {
        node_log(n, "received snapshot rejected: %s", err.message);
        snapshot_receive_abort(&n->receiver);
        return;
    }
    if (info.op <= replica_applied(n->r))
        return; /* we caught up meanwhile */
    struct snapshot_reader rd;
    uint8_t *table = NULL;
    if (snapshot_open_latest(&rd, n->vfs, n->snap_dir, &err) != 0 ||
        snapshot_info(&rd)->op != info.op) {
        node_log(n, "cannot reopen the received snapshot: %s", err.message);
        return;
    }
    int rc = restore_from_snapshot(n, &rd, &table, &err);
    snapshot_close(&rd);
    if (rc != 0) {
        /* The store is empty now: we cannot go on without state. */
        fprintf(stderr,
                "cohort[%u]: installing snapshot at op %" PRIu64 ": %s\n",
                n->c.self, info.op, err.message);
        _exit(3);
    }
    n->snapshot_op = info.op;
    n->snapshot_time_s = (uint64_t)time(NULL);
    struct event ev = {.type = EV_SNAPSHOT_INSTALLED};
    ev.snapshot.op = info.op;
    ev.snapshot.checksum = info.checksum;
    ev.snapshot.timestamp_ms = info.timestamp_ms;
    ev.snapshot.client_table = table;
    ev.snapshot.client_table_size = info.client_table_size;
    step(n, &ev);
    free(table);
    if (replica_op(n->r) == info.op) {
        /* Nothing of our old log chains on: start the wal afresh. */
        struct persist_job *job = calloc(1, sizeof(*job));
        ASSERT(job);
        job->type = PJOB_RESET;
        persister_push(&n->persister, job);
    }
    node_log(n, "installed a snapshot at op %" PRIu64, info.op);
}

static void on_snapshot_resume(struct node *n, uint32_t from,
                               const uint8_t *data, size_t size)
{
    if (size < 16 || from >= n->c.replica_count)
        return;
    struct snapshot_send *s = &n->sends[from];
    uint64_t op = get_u64(data);
    uint64_t offset = get_u64(data + 8);
    if (!s->active || s->reader.info.op != op ||
        offset > s->reader.info.file_size)
        return;
    node_log(n,
             "snapshot at op %" PRIu64 " to replica %u: resuming at byte "
             "%" PRIu64 " of %" PRIu64,
             op, from, offset, s->reader.info.file_size);
    s->offset = offset;
}

static void on_snapshot_chunk(struct node *n, uint32_t from,
                              const uint8_t *data, size_t size)
{
    if (size < SNAPSHOT_CHUNK_HEADER - 1)
        return;
    uint64_t op = get_u64(data);
    uint64_t offset = get_u64(data + 8);
    uint64_t file_size = get_u64(data + 16);
    const uint8_t *bytes = data + 24;
    size_t count = size - 24;
    struct cohort_err err;
    bool same = n->receiving && n->receiving_from == from &&
                n->receiver.op == op && n->receiver.file_size == file_size;
    if (offset == 0 && same && n->receiver.received > 0) {
        /* The sender started this snapshot over (a new connection, or the
         * core asked again): keep what we hold and ask it to go on from
         * there. Chunks we already hold are rewritten meanwhile. */
        uint8_t head[16];
        put_u64(head, op);
        put_u64(head + 8, n->receiver.received);
        send_frame(n, from, FRAME_SNAPSHOT_RESUME, head, sizeof(head), NULL, 0);
    } else if (offset == 0 && !same) {
        if (n->receiving)
            snapshot_receive_abort(&n->receiver);
        n->receiving_from = from;
        n->receiving = snapshot_receive_begin(&n->receiver, n->vfs, n->snap_dir,
                                              op, file_size, &err) == 0;
        if (!n->receiving) {
            node_log(n, "snapshot from %u: %s", from, err.message);
            return;
        }
    }
    if (!same && offset != 0)
        return; /* not the snapshot we are receiving */
    if (!n->receiving || offset > n->receiver.received)
        return; /* a gap: the core asks again and the sender restarts */
    if (snapshot_receive_chunk(&n->receiver, offset, bytes, count, &err) != 0) {
        node_log(n, "snapshot from %u: %s", from, err.message);
        snapshot_receive_abort(&n->receiver);
        n->receiving = false;
        return;
    }
    if (n->receiver.received == file_size) {
        n->receiving = false;
        install_received_snapshot(n);
    }
}

static void on_peer_down(void *ctx, uint32_t peer)
{
    struct node *n = ctx;
    if (n->closing)
        return;
    flush_batch(n);
    struct event ev = {.type = EV_PEER_DOWN};
    ev.peer_down.peer = peer;
    step(n, &ev);
}

static void on_peer_message(void *ctx, uint32_t from, const uint8_t *data,
                            size_t size)
{
    struct node *n = ctx;
    if (size < 1 || n->closing)
        return;
    if (data[0] == FRAME_SNAPSHOT) {
        on_snapshot_chunk(n, from, data + 1, size - 1);
        return;
    }
    if (data[0] == FRAME_SNAPSHOT_RESUME) {
        on_snapshot_resume(n, from, data + 1, size - 1);
        return;
    }
    if (data[0] != FRAME_PROTOCOL)
        return;
    flush_batch(n);
    struct event ev = {.type = EV_MESSAGE};
    ev.message.data = data + 1;
    ev.message.size = size - 1;
    step(n, &ev);
}

/* ------------------------------------------------------------ requests */

static void batch_reserve(struct node *n, size_t body_size)
{
    if (n->batch_count == n->batch_cap ||
        n->batch_used + body_size > n->batch_bytes_cap) {
        /* The batch holds pointers into batch_bytes: flush before growing. */
        flush_batch(n);
    }
    if (n->batch_cap == 0) {
        n->batch_cap = 4096;
        n->batch = calloc(n->batch_cap, sizeof(*n->batch));
        ASSERT(n->batch);
    }
    if (body_size > n->batch_bytes_cap) {
        free(n->batch_bytes);
        n->batch_bytes_cap = body_size > (4u << 20) ? body_size : (4u << 20);
        n->batch_bytes = malloc(n->batch_bytes_cap);
        ASSERT(n->batch_bytes);
    }
}

static void batch_add(struct node *n, uint64_t client_id, uint64_t request_no,
                      const uint8_t *body, size_t body_size)
{
    batch_reserve(n, body_size);
    uint8_t *copy = n->batch_bytes + n->batch_used;
    if (body_size)
        memcpy(copy, body, body_size);
    n->batch_used += body_size;
    n->batch[n->batch_count++] = (struct client_request){
        .client_id = client_id,
        .request_no = request_no,
        .body = copy,
        .body_size = (uint32_t)body_size,
    };
}

void node_submit(struct node *n, uint64_t client_id, uint64_t request_no,
                 const uint8_t *body, size_t body_size, node_done_fn done,
                 void *ctx)
{
    if (n->persister.stalled) {
        static const char full[] =
            "-ERR cannot write to this replica's disk (full or failing); "
            "free space under the data directory\r\n";
        done(ctx, NODE_REJECTED, (const uint8_t *)full, sizeof(full) - 1,
             replica_primary(n->r));
        return;
    }
    if (!replica_is_primary(n->r)) {
        enum node_outcome o = replica_status(n->r) == STATUS_NORMAL
                                  ? NODE_NOT_PRIMARY
                                  : NODE_RETRY;
        done(ctx, o, NULL, 0, replica_primary(n->r));
        return;
    }
    if (n->deferred_count > 0) {
        /* Behind the requests already waiting for room. */
        if (!deferred_push(n, client_id, request_no, body,
                           (uint32_t)body_size)) {
            done(ctx, NODE_RETRY, NULL, 0, replica_primary(n->r));
            return;
        }
    } else {
        batch_add(n, client_id, request_no, body, body_size);
    }
    pending_add(n, client_id, request_no, done, ctx);
}

static void waiters_push(struct waiters *w, node_done_fn done, void *ctx)
{
    if (w->count == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->list = realloc(w->list, w->cap * sizeof(*w->list));
        ASSERT(w->list);
    }
    w->list[w->count++] = (struct reader_waiter){done, ctx};
}

static void waiters_finish(struct node *n, struct waiters *w,
                           enum node_outcome outcome)
{
    uint32_t count = w->count;
    w->count = 0;
    for (uint32_t i = 0; i < count; i++)
        if (w->list[i].done)
            w->list[i].done(w->list[i].ctx, outcome, NULL, 0,
                            replica_primary(n->r));
}

/* Send the open group of reads to the core as one EV_READ (once per loop
 * turn, so a stream of reads costs one PING round per turn, not one per
 * read). The core's read index covers every write it was handed before, so
 * the turn's writes go first, and while writes wait in the deferred queue
 * the reads wait too: a read never overtakes a write sent before it. */
static void start_reads(struct node *n)
{
    if (n->waiting.count == 0 || n->group_count == READ_GROUPS_MAX ||
        n->deferred_count > 0 || !replica_is_primary(n->r))
        return;
    struct read_group *g =
        &n->groups[(n->group_head + n->group_count) % READ_GROUPS_MAX];
    n->group_count++;
    struct waiters t = g->w;
    g->w = n->waiting;
    n->waiting = t;
    n->waiting.count = 0;
    g->tag = ++n->read_tag;
    struct event ev = {.type = EV_READ};
    ev.read.tag = g->tag;
    ev.read.min_op = replica_op(n->r); /* the writes submitted before */
    step(n, &ev);
}

static void fail_reads(struct node *n, enum node_outcome outcome)
{
    for (uint32_t k = 0; k < n->group_count; k++)
        waiters_finish(n, &n->groups[(n->group_head + k) % READ_GROUPS_MAX].w,
                       outcome);
    n->group_count = 0;
    waiters_finish(n, &n->waiting, outcome);
}

void node_read(struct node *n, node_done_fn done, void *ctx)
{
    if (!replica_is_primary(n->r)) {
        enum node_outcome o = replica_status(n->r) == STATUS_NORMAL
                                  ? NODE_NOT_PRIMARY
                                  : NODE_RETRY;
        done(ctx, o, NULL, 0, replica_primary(n->r));
        return;
    }
    waiters_push(&n->waiting, done, ctx); /* proposed at the turn's end */
}

const struct kv *node_kv(const struct node *n)
{
    return &n->kv;
}

void node_status(const struct node *n, struct node_status *out)
{
    memset(out, 0, sizeof(*out));
    out->status = replica_status(n->r);
    out->view = replica_view(n->r);
    out->primary = replica_primary(n->r);
    out->self = n->c.self;
    out->replica_count = n->c.replica_count;
    out->op = replica_op(n->r);
    out->commit = replica_commit(n->r);
    out->applied = replica_applied(n->r);
    for (uint32_t i = 0; i < n->c.replica_count; i++) {
        out->peer_op[i] = replica_peer_op(n->r, i);
        out->peer_suspected[i] = i != n->c.self && replica_suspects(n->r, i);
        out->client_addr[i] = n->c.client_addr[i];
        if (i != n->c.self) {
            struct transport_peer_stats st;
            transport_stats(n->transport, i, &st);
            out->peer_connected[i] = st.connected;
        }
    }
    out->log_bytes = 0;
    uint64_t segments = wal_segment_count(&n->wal);
    out->log_bytes = segments * n->c.wal_segment_size;
    out->snapshot_op = n->snapshot_op;
    out->snapshot_time_s = n->snapshot_time_s;
    out->last_sync_us = n->persister.last_sync_us;
    out->syncs = n->persister.syncs;
    out->view_changes = replica_stats(n->r)->view_changes;
}

/* ------------------------------------------------------------ open/close */

/* Entries from the wal that continue the snapshot's chain: those at or below
 * the snapshot are dropped, and a suffix that does not chain on (left from
 * before a snapshot was installed) is stale, not damage. */
static void durable_entries(const struct wal_recovery *rec,
                            const struct snapshot_info *snap,
                            struct replica_durable *d)
{
    uint64_t base = snap ? snap->op : 0;
    uint64_t parent = snap ? snap->checksum : 0;
    uint64_t i = 0;
    while (i < rec->entry_count && rec->entries[i].h.op <= base)
        i++;
    if (i < rec->entry_count && (rec->entries[i].h.op != base + 1 ||
                                 rec->entries[i].h.parent != parent))
        i = rec->entry_count; /* does not continue the snapshot: stale */
    d->entries = rec->entries + i;
    d->entry_count = rec->entry_count - i;
    d->damaged_op = rec->damaged_op;
}

/* Create dir and any missing parents, each made durable. */
static int mkdir_parents(struct vfs *vfs, const char *dir,
                         struct cohort_err *err)
{
    char path[VFS_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path))
        return err_set(err, -COHORT_EINVAL, "data directory path '%s'", dir);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        int rc = vfs_mkdir_durable(vfs, path, err);
        path[i] = saved;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Boot ids. A process that dies without its machine restarting loses no
 * write it made (they are in the page cache), so a bad last log record is
 * then damage, not a torn write (see wal_config.torn_writes_possible). The
 * data directory keeps the kernel's id of the boot that last opened it. */
#define BOOT_ID_FILE "boot_id"
#define BOOT_ID_MAX 64

/* The running kernel's boot id, or "" if it cannot be read. (Read with
 * stdio, not the vfs: /proc files report a size of 0.) */
static void boot_id_current(char out[BOOT_ID_MAX])
{
    out[0] = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (!fgets(out, BOOT_ID_MAX, f))
        out[0] = 0;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

/* Whether the data directory was last opened in the running boot. */
static bool boot_id_same(struct node *n, const char *current)
{
    char path[VFS_PATH_MAX];
    struct cohort_err ignored;
    if (!current[0] ||
        vfs_path_join(path, n->c.data_dir, BOOT_ID_FILE, &ignored) != 0)
        return false;
    uint8_t *data = NULL;
    size_t size = 0;
    if (vfs_read_file(n->vfs, path, &data, &size, &ignored) != 0)
        return false;
    bool same = size == strlen(current) && memcmp(data, current, size) == 0;
    free(data);
    return same;
}

/* Record id (may be "") as the boot that last opened the data directory.
 * Not synced: after a power loss the old id (or none) is read back, which
 * only makes the next start treat the last record as possibly torn. */
static void boot_id_record(struct node *n, const char *id)
{
    char path[VFS_PATH_MAX], temp[VFS_PATH_MAX];
    struct cohort_err err;
    struct vfs_file *file = NULL;
    if (vfs_path_join(path, n->c.data_dir, BOOT_ID_FILE, &err) != 0 ||
        vfs_path_join(temp, n->c.data_dir, BOOT_ID_FILE ".tmp", &err) != 0)
        return;
    vfs_unlink(n->vfs, temp, &err);
    int rc = vfs_open(n->vfs, temp, VFS_CREATE | VFS_EXCLUSIVE, &file, &err);
    if (rc == 0) {
        rc = vfs_write(n->vfs, file, 0, id, strlen(id), &err);
        vfs_close(n->vfs, file);
    }
    if (rc == 0)
        rc = vfs_rename(n->vfs, temp, path, &err);
    if (rc != 0)
        node_log(n,
                 "could not record the boot id (%s); a crash will be "
                 "taken for a possible power loss",
                 err.message);
}

static int open_storage(struct node *n, struct replica_durable *d,
                        struct snapshot_info *snap_info, bool *have_snap,
                        uint8_t **table, struct wal_recovery *rec,
                        struct cohort_err *err)
{
    int rc = mkdir_parents(n->vfs, n->c.data_dir, err);
    if (rc != 0)
        return err_wrap(err, "data directory %s (is it writable?)",
                        n->c.data_dir);
    struct meta_record meta;
    memset(&meta, 0, sizeof(meta));
    bool present = false;
    rc = meta_open(&n->meta, n->vfs, n->meta_path, &meta, &present, err);
    if (rc != 0)
        return rc;
    n->meta_open = true;
    if (present && meta.cluster_id != n->c.cluster_id)
        return err_set(err, -COHORT_ECONFIG,
                       "%s belongs to cluster %016" PRIx64 ", not %016" PRIx64
                       ": point --data-dir at this cluster's data",
                       n->meta_path, meta.cluster_id, n->c.cluster_id);
    d->meta_present = present;
    d->view = meta.meta.view;
    d->last_normal_view = meta.meta.last_normal_view;
    d->epoch = meta.meta.epoch;
    d->meta_flags = meta.meta.flags;
    struct snapshot_reader rd;
    rc = snapshot_open_latest(&rd, n->vfs, n->snap_dir, err);
    *have_snap = rc == 0;
    if (rc != 0 && rc != -COHORT_ENOTFOUND)
        return rc;
    if (*have_snap) {
        *snap_info = *snapshot_info(&rd);
        rc = restore_from_snapshot(n, &rd, table, err);
        snapshot_close(&rd);
        if (rc != 0)
            return err_wrap(err, "snapshot in %s", n->snap_dir);
        d->snapshot_op = snap_info->op;
        d->snapshot_checksum = snap_info->checksum;
        d->snapshot_timestamp_ms = snap_info->timestamp_ms;
        d->client_table = *table;
        d->client_table_size = snap_info->client_table_size;
        n->snapshot_op = snap_info->op;
    }
    struct wal_config wc;
    wal_config_defaults(&wc);
    if (n->c.wal_segment_size)
        wc.segment_size = n->c.wal_segment_size;
    n->c.wal_segment_size = wc.segment_size;
    char boot_id[BOOT_ID_MAX];
    boot_id_current(boot_id);
    wc.torn_writes_possible = !boot_id_same(n, boot_id);
    rc = wal_open(&n->wal, n->vfs, n->wal_dir, &wc, rec, err);
    if (rc != 0)
        return rc;
    n->wal_open = true;
    /* A cut torn tail stays on disk until the log moves past it: until then
     * the next start must judge it the same way. */
    boot_id_record(n, rec->torn_tail ? "" : boot_id);
    if (rec->damaged_op)
        node_log(n, "log damage, repairing from peers: %s",
                 rec->damage.message);
    if (rec->torn_tail)
        node_log(n, "cut a torn last record: %s", rec->torn.message);
    durable_entries(rec, *have_snap ? snap_info : NULL, d);
    return 0;
}

static void configure_replica(struct node *n)
{
    struct replica_config *rc = &n->rc;
    replica_config_defaults(rc, n->c.replica_count, n->c.self, random_u64());
    if (n->c.heartbeat_ms)
        rc->heartbeat_ms = n->c.heartbeat_ms;
    if (n->c.suspect_timeout_ms)
        rc->suspect_timeout_ms = n->c.suspect_timeout_ms;
    if (n->c.view_change_timeout_ms)
        rc->view_change_timeout_ms = n->c.view_change_timeout_ms;
    /* Snapshots fork and write the whole store: every 100,000 ops by
     * default (etcd's and ZooKeeper's default too), or sooner when the log
     * holds half its byte budget. The log keeps room for two intervals. */
    rc->snapshot_interval_ops = n->c.snapshot_interval_ops
                                    ? n->c.snapshot_interval_ops
                                    : NODE_SNAPSHOT_INTERVAL_DEFAULT;
    rc->reply_size_max = (uint32_t)kv_reply_size_max(&n->c.kv);
    rc->body_size_max =
        (uint32_t)n->c.kv.value_size_max + n->c.kv.key_size_max + 4096u;
    if (rc->pipeline_bytes_max < 4u * rc->body_size_max)
        rc->pipeline_bytes_max = 4u * rc->body_size_max;
    rc->log_bytes_max = 4u * rc->pipeline_bytes_max;
    if (rc->log_bytes_max < NODE_LOG_BYTES_MIN)
        rc->log_bytes_max = NODE_LOG_BYTES_MIN;
    rc->log_ops_max =
        2u * rc->snapshot_interval_ops + 2u * rc->pipeline_ops_max;
    /* Every client connection on every replica is a client of the core. */
    rc->client_table_max = 16384;
    rc->sm = &n->sm;
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
    x ^= uv_hrtime() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    return x ? x : 1;
}

static int start_handles(struct node *n, struct cohort_err *err)
{
    uv_async_init(n->loop, &n->persist_async, on_persist_done);
    n->persist_async.data = n;
    n->handles_open++;
    int rc = persister_start(&n->persister, &n->wal, &n->meta,
                             &n->persist_async, err);
    if (rc != 0)
        return rc;
    uv_timer_init(n->loop, &n->tick);
    n->tick.data = n;
    n->handles_open++;
    uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
    uv_check_init(n->loop, &n->check);
    n->check.data = n;
    n->handles_open++;
    uv_check_start(&n->check, on_check);
    uv_signal_init(n->loop, &n->sigchld);
    n->sigchld.data = n;
    n->handles_open++;
    uv_signal_start(&n->sigchld, on_sigchld, SIGCHLD);
    struct transport_config tc = {
        .cluster_id = n->c.cluster_id,
        .self = n->c.self,
        .replica_count = n->c.replica_count,
        .bind_host = n->c.bind_host,
        .frame_size_max =
            replica_message_size_max(n->r) + 64u + SNAPSHOT_CHUNK_SIZE,
        .send_queue_bytes_max = 64u << 20,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 1000,
        .on_message = on_peer_message,
        .on_peer_down = on_peer_down,
        .on_log = transport_log,
        .ctx = n,
    };
    for (uint32_t i = 0; i < n->c.replica_count; i++)
        tc.peers[i] = n->c.peer_addr[i];
    n->transport = transport_open(n->loop, &tc, err);
    return n->transport ? 0 : err->code;
}

struct node *node_open(uv_loop_t *loop, const struct node_config *config,
                       struct cohort_err *err)
{
    struct node *n = calloc(1, sizeof(*n));
    ASSERT(n);
    n->loop = loop;
    n->c = *config;
    n->vfs = vfs_posix();
    n->groups = calloc(READ_GROUPS_MAX, sizeof(*n->groups));
    ASSERT(n->groups);
    if (vfs_path_join(n->wal_dir, config->data_dir, "wal", err) != 0 ||
        vfs_path_join(n->meta_path, config->data_dir, "meta", err) != 0 ||
        vfs_path_join(n->snap_dir, config->data_dir, "snapshots", err) != 0)
        goto fail;
    if (kv_init(&n->kv, &n->c.kv) != 0) {
        err_set(err, -COHORT_ENOMEM, "allocate the store");
        goto fail;
    }
    n->kv_ready = true;
    n->sm = kv_sm(&n->kv);
    configure_replica(n);
    struct replica_durable d = {0};
    struct snapshot_info snap = {0};
    bool have_snap = false;
    uint8_t *table = NULL;
    struct wal_recovery rec;
    memset(&rec, 0, sizeof(rec));
    if (open_storage(n, &d, &snap, &have_snap, &table, &rec, err) != 0) {
        free(table);
        goto fail;
    }
    n->r = replica_init(&n->rc, &d, now_ms(n));
    free(table);
    wal_recovery_release(&n->wal);
    if (!n->r) {
        err_set(err, -COHORT_ECONFIG,
                "cannot start the replica (bad limits or out of memory)");
        goto fail;
    }
    keep_arena_from_children(n);
    if (start_handles(n, err) != 0)
        goto fail;
    node_log(n,
             "replica %u of %u started: data in %s, op %" PRIu64
             ", snapshot at op %" PRIu64,
             n->c.self, n->c.replica_count, n->c.data_dir, replica_op(n->r),
             d.snapshot_op);
    struct event ev = {.type = EV_TICK};
    step(n, &ev);
    return n;
fail:
    node_close(n);
    return NULL;
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct node *n = handle->data;
    ASSERT(n->handles_open > 0);
    if (--n->handles_open > 0)
        return;
    if (n->r)
        replica_deinit(n->r);
    if (n->wal_open)
        wal_close(&n->wal);
    if (n->meta_open)
        meta_close(&n->meta);
    if (n->kv_ready)
        kv_deinit(&n->kv);
    free(n->pending);
    free(n->batch);
    free(n->batch_bytes);
    deferred_clear(n);
    free(n->deferred);
    for (uint32_t k = 0; k < READ_GROUPS_MAX && n->groups; k++)
        free(n->groups[k].w.list);
    free(n->groups);
    free(n->waiting.list);
    free(n->frame);
    free(n);
}

void node_close(struct node *n)
{
    if (n->closing)
        return;
    n->closing = true;
    pending_fail_all(n, NODE_UNKNOWN);
    if (n->r)
        fail_reads(n, NODE_RETRY);
    for (uint32_t i = 0; i < COHORT_REPLICAS_MAX; i++)
        if (n->sends[i].active)
            snapshot_close(&n->sends[i].reader);
    if (n->receiving)
        snapshot_receive_abort(&n->receiver);
    persister_stop(&n->persister);
    if (n->snapshot_child > 0) {
        kill(n->snapshot_child, SIGKILL);
        waitpid(n->snapshot_child, NULL, 0);
    }
    if (n->transport)
        transport_close(n->transport);
    if (n->handles_open == 0) {
        n->handles_open = 1;
        uv_handle_t fake = {.data = n};
        on_handle_closed(&fake);
        return;
    }
    uv_close((uv_handle_t *)&n->persist_async, on_handle_closed);
    if (n->handles_open > 1) {
        uv_close((uv_handle_t *)&n->tick, on_handle_closed);
        uv_close((uv_handle_t *)&n->check, on_handle_closed);
        uv_close((uv_handle_t *)&n->sigchld, on_handle_closed);
    }
}
