/* node — one replica process: the driver (src/driver) hosted on libuv, with
 * the storage thread (persister), the peer transport, snapshots written by
 * a thread (or a forked child), and the store (src/kv) as the state
 * machine. See node.h.
 *
 * Everything that does not need the event loop lives in the driver, which
 * the simulator runs too; this file only connects it to real I/O: the loop
 * turn (uv_check: driver_turn_end), a 5 ms timer (driver_tick), peer frames
 * from the transport, storage completions through a uv_async_t, and
 * SIGCHLD for the snapshot child (runtime/snapshot_job). It holds the data
 * directory's lock (runtime/dirlock) for the process's life and writes its
 * log lines through runtime/logline. */
#include "runtime/node.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/grow.h"
#include "core/detector.h"
#include "core/log.h"
#include "kv/address.h"
#include "kv/command.h"
#include "kv/incarnation.h"
#include "kv/snapshot.h"
#include "runtime/addrbook.h"
#include "runtime/dirlock.h"
#include "runtime/identity.h"
#include "runtime/logline.h"
#include "runtime/peer_auth.h"
#include "runtime/persister.h"
#include "runtime/run_clock.h"
#include "runtime/snapshot_job.h"
#include "runtime/snapshot_stream.h"
#include "runtime/snapshot_vfs.h"
#include "runtime/transport.h"
#include "runtime/view_log.h"
#include "storage/vfs.h"
#include "storage/wal.h"

#define SNAPSHOT_CHUNK_SIZE (256u << 10)
#define TICK_MS 5
#define NODE_SNAPSHOT_INTERVAL_DEFAULT 100000u
#define NODE_LOG_BYTES_MIN (64u << 20)
/* The loop reads the clock on every 5 ms tick: a longer step between two
 * reads (more than ten ticks) is time the process could not run, and the
 * protocol clock counts only this much of it (runtime/run_clock). On a
 * saturated 2-core machine the loop's ticks came 30 to 70 ms apart, and
 * stalls that cost views were 150 to 500 ms. */
#define NODE_CLOCK_STEP_MAX_MS 50u

/* What a snapshot thread writes (runtime/snapshot_job): the store,
 * serialized by the loop a slice per turn and streamed to the thread
 * (runtime/snapshot_stream), and a copy of the client table. The thread
 * reads snap, table and vfs alone until it is reaped. */
struct snapshot_copy {
    char dir[VFS_PATH_MAX];      /* the snapshot directory written into */
    struct driver_snapshot snap; /* client_table points into table */
    uint8_t *table;
    size_t table_cap;
    struct snapshot_vfs vfs; /* the thread's files, opened by the loop */
    struct snapshot_stream stream;
    bool stream_ready;          /* stream initialized */
    struct cohort_err read_err; /* the thread's: why the stream ended */
    /* The store is being serialized into the stream, a slice per loop
     * turn (kv_snapshot_begin), while the thread writes it. */
    bool slicing;
};

struct node {
    uv_loop_t *loop;
    struct node_config c;
    struct kv kv;
    bool kv_ready;
    struct driver *driver;
    struct persister persister;
    uv_async_t persist_async;
    uv_timer_t tick;
    uv_check_t check;
    uv_idle_t slice_idle;   /* active while a snapshot is serialized */
    uv_async_t slice_async; /* the thread: the stream has room again */
    uv_signal_t sigchld;
    uint32_t handles_open;
    bool closing;
    struct transport *transport;
    /* The group incarnation this replica's data belongs to (kv/
     * incarnation.h): from the data directory's file, the store, or
     * node_set_incarnation(); 0 while not known. */
    uint64_t incarnation;
    bool incarnation_unsaved;      /* the file's write failed: try again */
    uint64_t incarnation_retry_ms; /* not before this (uv_now) */
    /* Fresh (an empty data directory) and no peer heard yet: peer messages
     * are dropped until one has completed a handshake (fresh_decide()). */
    bool fresh_hold;
    uint64_t fresh_hold_until_ms; /* uv_now: decide with the peers heard */
    uint64_t fresh_held_frames;
    uint64_t wal_segment_size;
    struct dirlock lock; /* held for the process's life */
    struct snapshot_job snapshot_job;
    struct snapshot_copy snapshot_copy;
    /* An operator's backup written from slices as well (backup_thread);
     * the store has one slicer, so at most one of the two copies slices. */
    struct snapshot_copy backup_copy;
    uint64_t snapshot_started_ns;
    uint64_t arena_released_base; /* the log base at the last release_arena */
    struct backup backup;         /* an operator's backup (COHORT.BACKUP) */
    /* Metrics (node_metrics): view notifications, the last
     * NODE_VIEW_HISTORY of them in a ring (views_next: the next slot),
     * snapshot children's durations. */
    uint64_t view_changes[NODE_VIEW_CAUSES];
    bool view_counted;
    uint64_t view_counted_last;
    uint64_t view_notifications;
    struct node_view_record views[NODE_VIEW_HISTORY];
    uint32_t views_next;
    struct loghist snapshot_us;
    uint64_t snapshot_failures;
    struct run_clock clock; /* the protocol's time (host_now_ms) */
    /* Where each id is (c.peer_addr and c.client_addr point into it), and
     * the store's address table as of the last look (addresses_sync). */
    struct addrbook book;
    uint64_t address_changes_seen;
    uint64_t address_version; /* bumped when an id moves */
    bool addresses_unsaved;   /* the file lags the book: retried each tick */
    /* The removal was logged (note_removal); cleared when added back, so
     * that a second removal is logged too. */
    bool removal_logged;
};

static_assert(NODE_VIEW_CAUSES == VIEW_CAUSE_COUNT, "one count per cause");

/* ------------------------------------------------------------ logging */

static void transport_log(void *ctx, enum logline_level level, const char *line)
{
    (void)ctx;
    logline(level, "%s", line);
}

/* ------------------------------------------------------------ the host */

static uint64_t host_now_ms(void *ctx)
{
    struct node *n = ctx;
    return run_clock_read(&n->clock, uv_hrtime() / 1000000u);
}

uint64_t node_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t host_wall_ms(void *ctx)
{
    (void)ctx;
    return node_wall_ms();
}

static void addresses_sync(struct node *n);

static void host_send(void *ctx, uint32_t to, const uint8_t *frame, size_t size)
{
    struct node *n = ctx;
    /* A move just applied is in force before anything else is sent: the
     * fencing argument (docs/PROTOCOL.md, "Moving a replica id") needs
     * every message after the move, an epoch's START_EPOCH first of all,
     * to go to the new address. */
    if (kv_address_changes(&n->kv) != n->address_changes_seen)
        addresses_sync(n);
    transport_send(n->transport, to, frame, size);
}

static void host_link(void *ctx, uint32_t to, bool *up, uint64_t *queued)
{
    struct node *n = ctx;
    struct transport_peer_stats st;
    transport_stats(n->transport, to, &st);
    *up = st.connected;
    *queued = st.bytes_queued;
}

static void host_storage(void *ctx, struct storage_job *job)
{
    struct node *n = ctx;
    persister_push(&n->persister, job);
}

/* Keep the notification in the history ring, and count each view this
 * replica enters as primary or backup by its cause (a view change notifies
 * more than once: when it starts, and when the view is normal). */
static void note_view(struct node *n, const struct cohort_view_info *v)
{
    enum cohort_role role =
        v->self < COHORT_REPLICAS_MAX ? v->roles[v->self] : 0;
    bool normal = role == COHORT_ROLE_PRIMARY || role == COHORT_ROLE_BACKUP ||
                  role == COHORT_ROLE_LEARNER;
    if (normal && (!n->view_counted || v->view != n->view_counted_last)) {
        uint32_t cause = (uint32_t)v->why.cause;
        n->view_changes[cause < NODE_VIEW_CAUSES ? cause : 0]++;
        n->view_counted = true;
        n->view_counted_last = v->view;
    }
    n->view_notifications++;
    struct node_view_record *rec = &n->views[n->views_next];
    n->views_next = (n->views_next + 1) % NODE_VIEW_HISTORY;
    rec->view = v->view;
    rec->epoch = v->epoch;
    rec->primary = v->primary;
    rec->role = role;
    rec->cause = v->why.cause;
    rec->wall_ms = host_wall_ms(n);
    view_log_format(v, rec->text, sizeof(rec->text));
}

static void host_view(void *ctx, const struct cohort_view_info *v)
{
    note_view(ctx, v);
    view_log(v);
}

static void host_log(void *ctx, enum driver_log_level level, const char *line)
{
    (void)ctx;
    if (level == DRIVER_LOG_DEBUG)
        return;
    logline(level == DRIVER_LOG_ERROR  ? LOGLINE_ERROR
            : level == DRIVER_LOG_WARN ? LOGLINE_WARN
                                       : LOGLINE_INFO,
            "%s", line);
}

static void host_fatal(void *ctx, int code, const char *why)
{
    (void)ctx;
    (void)code;
    logline(LOGLINE_ERROR, "stopping: %s", why);
    _exit(3);
}

static int kv_state(void *ctx, int (*write)(void *, const void *, size_t),
                    void *wctx)
{
    struct cohort_err err;
    return kv_snapshot_write(ctx, write, wctx, &err);
}

static int kv_restore_cb(void *ctx,
                         int (*read)(void *, void *, size_t, size_t *),
                         void *rctx, struct cohort_err *err)
{
    return kv_restore(ctx, read, rctx, err);
}

struct snapshot_write {
    struct node *n;
    const struct driver_snapshot *snap;
};

/* In the forked child (runtime/snapshot_job): write the store to a
 * snapshot file. */
static int write_snapshot(void *ctx, struct cohort_err *err)
{
    struct snapshot_write *w = ctx;
    return driver_snapshot_write(vfs_posix(), w->n->c.data_dir, w->snap,
                                 kv_state, &w->n->kv, err);
}

/* Every store is snapshotted by a thread from slices the loop serializes,
 * SNAPSHOT_SLICE_BYTES per loop turn, while writes go on (kv_snapshot_begin:
 * keys changed meanwhile are kept as they were), and streams to it through
 * a few MiB (runtime/snapshot_stream.h); a forked child writes it only if
 * that cannot start (memory, a thread). A fork stalls the loop for the
 * page-table copy and then costs a copy-on-write fault (a page copy and a
 * TLB shootdown) for each store page written while the child lives.
 * Measured in A/B pairs through all members (bench/RESULTS.md, "Byte-ring
 * history and copy snapshots", "Sliced snapshots"): with a copy instead of
 * a fork, 1 KiB writes at 128 outstanding (an 11 MiB store) went from
 * 16-17k/s to 30-33k/s and their p99.9 from 218-245 ms to 42-56 ms, and
 * 64 KiB and 1 MiB writes doubled. The memory is the stream's chunks plus
 * a copy of each key changed while the slices are taken. */
/* What one loop turn serializes: about 0.1-0.3 ms of the loop. */
#define SNAPSHOT_SLICE_BYTES (128u << 10)

static int stream_state(void *ctx, int (*write)(void *, const void *, size_t),
                        void *wctx)
{
    struct snapshot_copy *c = ctx;
    return snapshot_stream_read(&c->stream, write, wctx, &c->read_err);
}

/* In the snapshot thread: write the stream to a snapshot file. The
 * stream's own error (the slicer's, say) names the cause better than the
 * writer's wrapping of it. */
static int write_snapshot_stream(void *ctx, struct cohort_err *err)
{
    struct snapshot_copy *c = ctx;
    err_clear(&c->read_err);
    int rc = driver_snapshot_write_dir(&c->vfs.vfs, c->dir, &c->snap,
                                       stream_state, c, err);
    if (rc != 0 && c->read_err.code != 0)
        *err = c->read_err;
    return rc;
}

/* In the loop, after the thread was joined. */
static void release_snapshot_copy(void *ctx)
{
    struct snapshot_copy *c = ctx;
    snapshot_vfs_close(&c->vfs);
}

/* Open what the thread will write through (runtime/snapshot_vfs.h): the
 * snapshot directory and the snapshot's temp file. */
static int snapshot_copy_open_files(struct snapshot_copy *c,
                                    struct cohort_err *err)
{
    char temp[VFS_PATH_MAX];
    int rc = snapshot_temp_path(temp, c->dir, c->snap.info.op, err);
    if (rc == 0)
        rc = snapshot_vfs_open(&c->vfs, vfs_posix(), c->dir, temp, err);
    return rc;
}

/* The copy whose slices are being taken, if any. */
static struct snapshot_copy *slicing_copy(struct node *n)
{
    if (n->snapshot_copy.slicing)
        return &n->snapshot_copy;
    if (n->backup_copy.slicing)
        return &n->backup_copy;
    return NULL;
}

static void on_slice_idle(uv_idle_t *handle);

/* Start a thread on job that writes snap into the snapshot directory dir,
 * and the slicing of the store that feeds it through c (snapshot_slice),
 * and copy the client table. False if it could not start (the caller forks
 * instead): the store's one slicer is busy, or memory, or a thread; nothing
 * is left running then. */
static bool snapshot_copy_begin(struct node *n, struct snapshot_copy *c,
                                struct snapshot_job *job, const char *dir,
                                const struct driver_snapshot *snap)
{
    if (!c->stream_ready || slicing_copy(n) != NULL)
        return false;
    if (strlen(dir) >= sizeof(c->dir))
        return false;
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    c->snap = *snap;
    size_t table_size = (size_t)snap->info.client_table_size;
    if (!grow_bytes_exact(&c->table, &c->table_cap, table_size))
        return false;
    if (table_size)
        memcpy(c->table, snap->client_table, table_size);
    c->snap.client_table = c->table;
    snapshot_stream_reset(&c->stream);
    struct cohort_err err;
    if (kv_snapshot_begin(&n->kv, snapshot_stream_append, &c->stream, &err) !=
        0)
        return false;
    snapshot_stream_publish(&c->stream);
    char why[COHORT_ERR_MESSAGE_MAX];
    if (snapshot_copy_open_files(c, &err) != 0 ||
        !snapshot_job_start_thread(job, snap->info.op, write_snapshot_stream, c,
                                   release_snapshot_copy, why, sizeof(why))) {
        snapshot_vfs_close(&c->vfs);
        kv_snapshot_abort(&n->kv);
        return false;
    }
    c->slicing = true;
    uv_idle_start(&n->slice_idle, on_slice_idle);
    return true;
}

/* Drop the slicing of c (closing, or the thread stopped reading): the
 * thread's read returns an error, and the reap reports it. */
static void snapshot_slicing_stop(struct node *n, struct snapshot_copy *c)
{
    if (!c->slicing)
        return;
    c->slicing = false;
    uv_idle_stop(&n->slice_idle);
    kv_snapshot_abort(&n->kv);
    snapshot_stream_end(&c->stream, -COHORT_ECLOSED, NULL);
}

/* One slice of the store into the stream, if it has room (else the
 * thread's wake-up, on_slice_async, resumes); after the last, end the
 * stream: the thread finishes the file and the reap reports it. */
static void snapshot_slice(struct node *n)
{
    struct snapshot_copy *c = slicing_copy(n);
    if (c == NULL)
        return;
    if (snapshot_stream_failed(&c->stream)) {
        snapshot_slicing_stop(n, c);
        return;
    }
    if (!snapshot_stream_has_room(&c->stream)) {
        uv_idle_stop(&n->slice_idle);
        return;
    }
    struct cohort_err err;
    err_clear(&err);
    bool done = false;
    int rc = kv_snapshot_step(&n->kv, SNAPSHOT_SLICE_BYTES, &done, &err);
    snapshot_stream_publish(&c->stream);
    if (!done)
        return;
    c->slicing = false;
    uv_idle_stop(&n->slice_idle);
    snapshot_stream_end(&c->stream, rc, &err);
}

static void on_slice_idle(uv_idle_t *handle)
{
    struct node *n = handle->data;
    if (!n->closing)
        snapshot_slice(n);
}

static void on_slice_async(uv_async_t *handle)
{
    struct node *n = handle->data;
    if (!n->closing && slicing_copy(n) != NULL)
        uv_idle_start(&n->slice_idle, on_slice_idle);
}

/* The stream's wake-up, from the snapshot thread. */
static void wake_slicer(void *ctx)
{
    uv_async_send(ctx);
}

static bool host_snapshot(void *ctx, const struct driver_snapshot *snap,
                          char *why, size_t why_size)
{
    struct node *n = ctx;
    if (snapshot_job_running(&n->snapshot_job) || n->snapshot_copy.slicing) {
        snprintf(why, why_size, "the previous snapshot is still being written");
        return false;
    }
    n->snapshot_started_ns = uv_hrtime();
    char dir[VFS_PATH_MAX];
    struct cohort_err err;
    /* Sliced from the next loop turn on; forked if the backup slices. */
    if (vfs_path_join(dir, n->c.data_dir, "snapshots", &err) == 0 &&
        snapshot_copy_begin(n, &n->snapshot_copy, &n->snapshot_job, dir, snap))
        return true;
    struct snapshot_write w = {n, snap};
    return snapshot_job_start(&n->snapshot_job, snap->info.op, &n->lock,
                              write_snapshot, &w, why, why_size);
}

/* The snapshot child reads the store and the client table, never the log:
 * mapping the log's arena into it would only make fork() copy its page
 * tables and make the replica copy each arena page it writes afterwards. */
/* madvise(advice) on the whole pages inside [data, data + size); 0 when
 * there are none. */
static int madvise_pages_within(void *data, size_t size, int advice)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)data + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)data + size) & ~(page - 1);
    return end > start ? madvise((void *)start, end - start, advice) : 0;
}

static void keep_arena_from_children(struct node *n)
{
    void *data;
    size_t size;
    replica_log_arena(driver_replica(n->driver), &data, &size);
    if (madvise_pages_within(data, size, MADV_DONTFORK) != 0)
        logline(LOGLINE_WARN,
                "madvise(MADV_DONTFORK) of the log arena: %s (snapshots "
                "fork more slowly)",
                strerror(errno));
}

/* Give back the memory of the log arena's parts that hold no body (a page
 * at a time, inward), after the log's base moved (a snapshot compacted it,
 * or one was installed): the body ring moves on through the whole arena, so
 * otherwise every page it ever passed would stay resident, whatever the log
 * holds. A page is faulted in again when the ring reaches it. Only for an
 * arena larger than the default (--log-memory): the default's pages stay,
 * since alternated runs of small writes were ~7% slower with them given
 * back (bench/RESULTS.md, "Log memory"), for ~50 MB less RSS. */
static void release_arena(struct node *n)
{
    const struct replica *r = driver_replica(n->driver);
    void *data;
    size_t size;
    replica_log_arena(r, &data, &size);
    if (size <= NODE_LOG_BYTES_MIN)
        return;
    uint64_t base = replica_log_base(r);
    if (base == n->arena_released_base)
        return;
    n->arena_released_base = base;
    struct log_range free_ranges[2];
    uint32_t count = replica_log_arena_free(r, free_ranges);
    for (uint32_t i = 0; i < count; i++)
        (void)madvise_pages_within((uint8_t *)data + free_ranges[i].offset,
                                   (size_t)free_ranges[i].size, MADV_DONTNEED);
}

/* ---------------------------------------------------------- callbacks */

static void sync_storage_state(struct node *n)
{
    struct persister_state st;
    persister_state(&n->persister, &st);
    if (st.failed) {
        logline(LOGLINE_ERROR,
                "storage failed, stopping: %s; check the disk under %s and "
                "restart the server (acknowledged writes are on a majority)",
                st.error.message, n->c.data_dir);
        _exit(3);
    }
    driver_storage_stalled(n->driver, st.stalled, st.error.message);
}

static void on_persist_done(uv_async_t *handle)
{
    struct node *n = handle->data;
    if (n->closing)
        return;
    sync_storage_state(n);
    struct storage_job *j = persister_take_done(&n->persister);
    while (j) {
        struct storage_job *next = j->next;
        driver_storage_done(n->driver, j);
        j = next;
    }
}

static void on_check(uv_check_t *handle)
{
    struct node *n = handle->data;
    if (!n->closing)
        driver_turn_end(n->driver);
}

/* Follow the store's address table (kv/address.h): an id that a committed
 * COHORT.ADDRESS moved is dialled at its new address and recorded in
 * <data-dir>/addresses. Runs before any message is sent after an apply
 * that changed the table (host_send), and on every tick. */
static void addresses_save(struct node *n)
{
    struct cohort_err e;
    err_clear(&e);
    if (addrbook_save(&n->book, n->c.data_dir, &e) == 0) {
        if (n->addresses_unsaved)
            logline(LOGLINE_INFO, "recorded the members' addresses in %s/%s",
                    n->c.data_dir, ADDRBOOK_FILE);
        n->addresses_unsaved = false;
        return;
    }
    if (!n->addresses_unsaved)
        logline(LOGLINE_ERROR,
                "could not record the members' addresses in %s/%s (%s); "
                "retrying: until then a restart uses --peers until it "
                "replays the move",
                n->c.data_dir, ADDRBOOK_FILE, e.message);
    n->addresses_unsaved = true;
}

static void addresses_sync(struct node *n)
{
    if (n->transport == NULL)
        return; /* still opening: addresses_recovered() follows */
    if (n->addresses_unsaved)
        addresses_save(n);
    uint64_t changes = kv_address_changes(&n->kv);
    if (changes == n->address_changes_seen)
        return;
    n->address_changes_seen = changes;
    bool moved = false;
    for (uint32_t i = 0; i < n->book.count; i++) {
        const char *peer, *client;
        if (!kv_address_get(&n->kv, i, &peer, &client) ||
            (!strcmp(peer, n->book.peer[i]) &&
             !strcmp(client, n->book.client[i])))
            continue;
        struct cohort_err e;
        err_clear(&e);
        if (i != n->c.self && transport_set_peer(n->transport, i, peer, &e)) {
            logline(LOGLINE_ERROR,
                    "replica %" PRIu32 " moved to %s, but this replica "
                    "cannot use that address: %s",
                    i, peer, e.message);
            continue;
        }
        logline(LOGLINE_INFO,
                "replica %" PRIu32 " is now at peer address %s, client "
                "address %s (COHORT.ADDRESS)",
                i, peer, client);
        snprintf(n->book.peer[i], sizeof(n->book.peer[i]), "%s", peer);
        snprintf(n->book.client[i], sizeof(n->book.client[i]), "%s", client);
        n->book.moved[i] = true;
        moved = true;
    }
    if (!moved)
        return;
    n->address_version++;
    addresses_save(n);
}

/* At start: the file's moves over the flags, then any move the store
 * recovered that the file does not have (a crash before it was written). */
static int addresses_open(struct node *n, struct cohort_err *err)
{
    if (!addrbook_init(&n->book, n->c.replica_count, n->c.peer_addr,
                       n->c.client_addr))
        return err_set(err, -COHORT_ECONFIG,
                       "an address in --peers or --clients is longer than "
                       "%u bytes",
                       ADDRBOOK_TEXT_MAX - 1u);
    int rc = addrbook_load(&n->book, n->c.data_dir, err);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < n->book.count; i++) {
        n->c.peer_addr[i] = n->book.peer[i];
        n->c.client_addr[i] = n->book.client[i];
    }
    return 0;
}

static void addresses_recovered(struct node *n)
{
    n->address_changes_seen = kv_address_changes(&n->kv);
    for (uint32_t i = 0; i < n->book.count; i++) {
        const char *peer, *client;
        if (n->book.moved[i] || !kv_address_get(&n->kv, i, &peer, &client))
            continue;
        snprintf(n->book.peer[i], sizeof(n->book.peer[i]), "%s", peer);
        snprintf(n->book.client[i], sizeof(n->book.client[i]), "%s", client);
        n->book.moved[i] = true;
        n->addresses_unsaved = true; /* written on the first tick */
    }
}

int node_check_peer_address(const struct node *n, uint32_t id, const char *addr,
                            struct cohort_err *err)
{
    struct sockaddr_storage ss;
    return transport_check_peer_addr(n->transport, id, addr, &ss, err);
}

bool node_changing_members(const struct node *n)
{
    return replica_holding(driver_replica(n->driver));
}

uint64_t node_address_version(const struct node *n)
{
    return n->address_version;
}

static void reap_jobs(struct node *n);

/* A replica that a membership change took out (replica_left()) says so
 * once, and what to do: at the change, or at its start if it restarts
 * removed. Its commands get -REMOVED meanwhile (server). */
static void note_removal(struct node *n)
{
    uint32_t epoch;
    bool removed = node_removed(n, &epoch);
    if (removed && !n->removal_logged)
        logline(LOGLINE_WARN,
                "replica %" PRIu32 " was removed from the group in epoch "
                "%" PRIu32 "; stop it, or add it back with cohort add %" PRIu32,
                n->c.self, epoch, n->c.self);
    n->removal_logged = removed;
}

static void fresh_decide(struct node *n);

static void on_tick(uv_timer_t *handle)
{
    struct node *n = handle->data;
    if (n->closing)
        return;
    sync_storage_state(n);
    addresses_sync(n);
    if (n->snapshot_job.thread_running || n->backup.job.thread_running)
        reap_jobs(n); /* a thread sends no SIGCHLD */
    backup_expire_previous(&n->backup, uv_hrtime());
    fresh_decide(n);
    driver_tick(n->driver);
    note_removal(n);
    release_arena(n);
}

/* Reap a finished snapshot child or thread, and a backup's. */
static void reap_jobs(struct node *n)
{
    uint64_t op = 0;
    bool ok = false;
    char why[COHORT_ERR_MESSAGE_MAX];
    if (snapshot_job_reap(&n->snapshot_job, &op, &ok, why, sizeof(why))) {
        /* the thread stopped reading */
        snapshot_slicing_stop(n, &n->snapshot_copy);
        if (ok)
            loghist_record(&n->snapshot_us,
                           (uv_hrtime() - n->snapshot_started_ns) / 1000u);
        else
            n->snapshot_failures++;
        driver_snapshot_done(n->driver, op, ok, ok ? NULL : why);
    }
    if (backup_reap(&n->backup, uv_hrtime())) {
        snapshot_slicing_stop(n, &n->backup_copy);
        if (n->backup.state == BACKUP_DONE)
            logline(LOGLINE_INFO,
                    "backup of op %" PRIu64 " written to %s (%" PRIu64
                    " bytes)",
                    n->backup.op, n->backup.path, n->backup.size);
        else
            logline(LOGLINE_WARN, "backup of op %" PRIu64 " failed: %s",
                    n->backup.op, n->backup.error);
    }
}

static void on_sigchld(uv_signal_t *handle, int signum)
{
    (void)signum;
    struct node *n = handle->data;
    if (!n->closing)
        reap_jobs(n);
}

static void on_peer_down(void *ctx, uint32_t peer)
{
    struct node *n = ctx;
    if (!n->closing)
        driver_peer_down(n->driver, peer);
}

static void on_peer_message(void *ctx, uint32_t from, const uint8_t *data,
                            size_t size)
{
    struct node *n = ctx;
    if (n->closing)
        return;
    if (n->fresh_hold) {
        n->fresh_held_frames++; /* the sender's timers send it again */
        return;
    }
    driver_frame(n->driver, from, data, size);
}

/* A replica on an empty data directory cannot tell a new member (or a new
 * group) from one whose disk was emptied, and the second must not vote as
 * if it had never acknowledged anything: that vote, with a lagging
 * replica's, could choose a log without ops the emptied one acknowledged
 * (docs/PROTOCOL.md, "Recovery after a restart"). Its peers can tell: a
 * group that stored data has drawn an incarnation (kv/incarnation.h) and
 * announces it in every handshake. So the fresh replica takes in no
 * protocol message (it learns nothing and votes for nothing; it could not
 * without a quorum anyway) until a peer announces an incarnation, or every
 * peer has completed a handshake without one, or FRESH_HOLD_MS passed with
 * at least one heard: peers that start together are all heard before it
 * decides, so a member restored from a backup is not missed because two
 * empty ones heard each other first. If one announces an incarnation, its
 * log counts as damaged (driver_distrust_fresh()): it waits for a primary
 * to bring it up to date before it takes part in choosing one. Peers
 * without one are a new group's (or an older version's). A group of one
 * has nobody to ask. */
#define FRESH_HOLD_MS 2000u
static void fresh_decide(struct node *n)
{
    if (!n->fresh_hold)
        return;
    uint32_t announcer, tag;
    uint32_t heard = transport_peers_heard(n->transport, &announcer, &tag);
    if (heard == 0)
        return;
    if (announcer == UINT32_MAX && heard + 1 < n->c.replica_count &&
        uv_now(n->loop) < n->fresh_hold_until_ms)
        return; /* more peers may answer, one with data */
    n->fresh_hold = false;
    if (announcer == UINT32_MAX)
        return;
    driver_distrust_fresh(n->driver);
    logline(LOGLINE_INFO,
            "replica %" PRIu32 " has an empty data directory but its group "
            "already holds data (replica %" PRIu32 " announces incarnation "
            "tag %08" PRIx32 "): a member being added, or a lost or wiped "
            "disk; it counts its log as damaged and takes no part in "
            "choosing a primary until one has brought it up to date",
            n->c.self, announcer, tag);
}

/* ------------------------------------------------------------ the API */

void node_submit(struct node *n, uint64_t client_id, uint64_t request_no,
                 const uint8_t *body, size_t body_size, bool over_limit,
                 driver_done_fn done, void *ctx)
{
    driver_submit(n->driver, client_id, request_no, body, body_size, over_limit,
                  done, ctx);
}

void node_submit_in_term(struct node *n, uint64_t client_id,
                         uint64_t request_no, const uint8_t *body,
                         size_t body_size, driver_done_fn done, void *ctx)
{
    driver_submit_in_term(n->driver, client_id, request_no, body, body_size,
                          done, ctx);
}

void node_transfer(struct node *n, uint32_t target, struct transfer_answer *out)
{
    driver_transfer(n->driver, target, out);
}

void node_reconfig(struct node *n, const struct membership *next,
                   struct reconfig_answer *out)
{
    driver_reconfig(n->driver, next, out);
}

void node_read(struct node *n, driver_done_fn done, void *ctx)
{
    driver_read(n->driver, done, ctx);
}

void node_cancel(struct node *n, void *ctx)
{
    driver_cancel(n->driver, ctx);
}

const struct kv *node_kv(const struct node *n)
{
    return &n->kv;
}

void node_set_publish_hook(struct node *n, const struct kv_publish_hook *hook)
{
    if (hook != NULL)
        n->kv.publish_hook = *hook;
    else
        memset(&n->kv.publish_hook, 0, sizeof(n->kv.publish_hook));
}

bool node_is_primary(const struct node *n)
{
    return replica_is_primary(driver_replica(n->driver));
}

enum replica_status node_role(const struct node *n, uint64_t *view,
                              uint32_t *primary)
{
    const struct replica *r = driver_replica(n->driver);
    *view = replica_view(r);
    *primary = replica_primary(r);
    return replica_status(r);
}

void node_view(const struct node *n, uint32_t *epoch, uint64_t *view)
{
    const struct replica *r = driver_replica(n->driver);
    *epoch = replica_membership(r)->epoch;
    *view = replica_view(r);
}

bool node_outside(const struct node *n)
{
    return replica_removed(driver_replica(n->driver));
}

bool node_removed(const struct node *n, uint32_t *epoch)
{
    const struct replica *r = driver_replica(n->driver);
    *epoch = replica_membership(r)->epoch;
    return replica_left(r);
}

uint64_t node_diverged(const struct node *n)
{
    return replica_diverged(driver_replica(n->driver), NULL);
}

uint64_t node_log_time(const struct node *n)
{
    return replica_log_time(driver_replica(n->driver));
}

uint64_t node_op(const struct node *n)
{
    return replica_op(driver_replica(n->driver));
}

uint64_t node_read_index(const struct node *n)
{
    return replica_read_index(driver_replica(n->driver));
}

uint64_t node_client_applied(const struct node *n, uint64_t client_id)
{
    return replica_client_applied(driver_replica(n->driver), client_id);
}

static_assert(NODE_TOKEN_SIZE == TRANSPORT_TOKEN_SIZE, "one token size");

void node_link_token(const struct node *n, uint8_t out[NODE_TOKEN_SIZE])
{
    transport_token(n->transport, out);
}

bool node_peer_link_token(const struct node *n, uint32_t peer,
                          uint8_t out[NODE_TOKEN_SIZE])
{
    return peer != n->c.self && transport_peer_token(n->transport, peer, out);
}

static void peer_status(const struct node *n, struct node_status *out)
{
    static const char *const modes[] = {
        [PEER_AUTH_NONE] = "none",
        [PEER_AUTH_SECRET] = "secret",
        [PEER_AUTH_TLS] = "tls",
    };
    out->peer_auth = modes[transport_auth_mode(n->transport)];
    out->peer_connections_refused = transport_refused_count(n->transport);
    out->peer_connections_evicted = transport_evicted_count(n->transport);
    for (uint32_t i = 0; i < n->c.replica_count; i++) {
        if (i == n->c.self)
            continue;
        struct transport_peer_stats ps;
        transport_stats(n->transport, i, &ps);
        out->peer_frames_rejected += ps.frames_rejected;
    }
}

void node_status(const struct node *n, struct node_status *out)
{
    memset(out, 0, sizeof(*out));
    struct driver_status ds;
    driver_status(n->driver, &ds);
    out->status = ds.status;
    out->view = ds.view;
    out->primary = ds.primary;
    out->self = ds.self;
    out->replica_count = ds.replica_count;
    out->membership = ds.membership;
    out->removed = ds.removed;
    out->left = ds.left;
    out->transfer = ds.transfer;
    out->op = ds.op;
    out->commit = ds.commit;
    out->applied = ds.applied;
    memcpy(out->peer_op, ds.peer_op, sizeof(out->peer_op));
    memcpy(out->peer_connected, ds.peer_connected, sizeof(out->peer_connected));
    memcpy(out->peer_suspected, ds.peer_suspected, sizeof(out->peer_suspected));
    out->primary_lost = ds.primary_lost;
    out->primary_heard_ago_ms = ds.primary_heard_ago_ms;
    for (uint32_t i = 0; i < n->c.replica_count; i++) {
        out->client_addr[i] = n->c.client_addr[i];
        out->peer_addr[i] = n->c.peer_addr[i];
    }
    out->snapshot_op = ds.snapshot_op;
    out->snapshot_time_s = ds.snapshot_time_ms / 1000u;
    struct persister_state st;
    persister_state((struct persister *)&n->persister, &st);
    out->log_bytes = st.log_bytes; /* the storage thread owns the wal */
    const struct replica *r = driver_replica(n->driver);
    void *arena;
    size_t arena_size;
    replica_log_arena(r, &arena, &arena_size);
    out->log_memory = arena_size;
    out->log_memory_used = replica_log_arena_used(r);
    out->log_zero_chunks = st.zero_chunks;
    out->last_sync_us = st.last_sync_us;
    out->syncs = st.syncs;
    out->view_changes = ds.view_changes;
    out->messages_invalid = ds.messages_invalid;
    out->views_refused = ds.views_refused;
    out->diverged_op = ds.diverged_op;
    out->diverged_from = ds.diverged_from;
    out->divergences = ds.divergences;
    out->loop_stalls = n->clock.stalls;
    out->loop_stalled_ms = n->clock.stalled_ms;
    out->disk_stalled = st.stalled;
    out->disk = st.retry;
    out->snapshot_running = ds.snapshot_running;
    out->snapshots = ds.snapshots;
    peer_status(n, out);
    out->peer_messages_wrong_sender = ds.messages_wrong_sender;
    out->snapshot_chunks_refused = ds.snapshot_chunks_refused;
}

void node_metrics(const struct node *n, struct node_metrics *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->view_changes, n->view_changes, sizeof(out->view_changes));
    out->view_notifications = n->view_notifications;
    uint32_t count = n->view_notifications < NODE_VIEW_HISTORY
                         ? (uint32_t)n->view_notifications
                         : NODE_VIEW_HISTORY;
    uint32_t first =
        (n->views_next + NODE_VIEW_HISTORY - count) % NODE_VIEW_HISTORY;
    for (uint32_t i = 0; i < count; i++)
        out->views[i] = n->views[(first + i) % NODE_VIEW_HISTORY];
    out->view_history_count = count;
    out->snapshot_us = n->snapshot_us;
    out->snapshot_failures = n->snapshot_failures;
    persister_metrics((struct persister *)&n->persister, &out->storage);
    const struct replica *r = driver_replica(n->driver);
    out->core = *replica_stats(r);
    const struct detector *det = replica_detector(r);
    for (uint32_t i = 0; i < n->c.replica_count; i++) {
        struct node_peer_metrics *p = &out->peers[i];
        p->suspicions = det->peers[i].suspicions;
        p->false_suspicions = det->peers[i].false_suspicions;
        p->timeout_ms = detector_timeout_ms(det, i);
        if (i == n->c.self)
            continue;
        struct transport_peer_stats ts;
        transport_stats(n->transport, i, &ts);
        p->messages_sent = ts.messages_sent;
        p->messages_received = ts.messages_received;
        p->messages_dropped = ts.messages_dropped;
        p->connects = ts.connects;
        p->bytes_queued = ts.bytes_queued;
    }
    out->peer_connections_refused = transport_refused_count(n->transport);
    out->peer_connections_evicted = transport_evicted_count(n->transport);
}

/* backup_start's thread: the store sliced into the backup's stream. */
static bool backup_thread(void *ctx, const struct driver_snapshot *snap,
                          struct snapshot_job *job, const char *dir)
{
    struct node *n = ctx;
    struct cohort_err err;
    /* The thread cannot make it (runtime/snapshot_vfs): a first backup's
     * directory is made here. */
    return vfs_mkdir_durable(vfs_posix(), dir, &err) == 0 &&
           snapshot_copy_begin(n, &n->backup_copy, job, dir, snap);
}

int node_backup_start(struct node *n, struct cohort_err *err)
{
    bool threaded = false;
    int rc = backup_start(&n->backup, n->driver, &n->lock, backup_thread, n,
                          kv_state, &n->kv, uv_hrtime(), &threaded, err);
    if (rc == 0 && n->backup.state == BACKUP_DONE)
        logline(LOGLINE_INFO,
                "backup of op %" PRIu64 " asked for again: nothing was "
                "applied since, so %s serves it",
                n->backup.op, n->backup.path);
    else if (rc == 0)
        logline(LOGLINE_INFO, "backup of op %" PRIu64 " started into %s (%s)",
                n->backup.op, n->backup.dir,
                threaded ? "written by a thread from slices of the store"
                         : "written by a forked child");
    return rc;
}

const struct backup *node_backup(const struct node *n)
{
    return &n->backup;
}

bool node_backup_find(struct node *n, uint64_t op, const char **path,
                      uint64_t *size)
{
    return backup_find(&n->backup, op, uv_hrtime(), path, size);
}

/* ------------------------------------------------------------ open/close */

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
    if (vfs_read_file(vfs_posix(), path, &data, &size, &ignored) != 0)
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
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX], temp[VFS_PATH_MAX];
    struct cohort_err err;
    struct vfs_file *file = NULL;
    if (vfs_path_join(path, n->c.data_dir, BOOT_ID_FILE, &err) != 0 ||
        vfs_path_join(temp, n->c.data_dir, BOOT_ID_FILE ".tmp", &err) != 0)
        return;
    vfs_unlink(vfs, temp, &err);
    int rc = vfs_open(vfs, temp, VFS_CREATE | VFS_EXCLUSIVE, &file, &err);
    if (rc == 0) {
        rc = vfs_write(vfs, file, 0, id, strlen(id), &err);
        vfs_close(vfs, file);
    }
    if (rc == 0)
        rc = vfs_rename(vfs, temp, path, &err);
    if (rc != 0)
        logline(LOGLINE_WARN,
                "could not record the boot id (%s); a crash will be taken "
                "for a possible power loss",
                err.message);
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

static void configure_replica(struct node *n, struct replica_config *rc)
{
    node_replica_config(&n->c, random_u64(), rc);
}

void node_replica_config(const struct node_config *c, uint64_t seed,
                         struct replica_config *rc)
{
    replica_config_defaults(rc, c->replica_count, c->self, seed);
    rc->initial_voters = c->initial_voters;
    if (c->heartbeat_ms)
        rc->heartbeat_ms = c->heartbeat_ms;
    if (c->suspect_timeout_ms)
        rc->suspect_timeout_ms = c->suspect_timeout_ms;
    if (c->view_change_timeout_ms)
        rc->view_change_timeout_ms = c->view_change_timeout_ms;
    rc->replace_after_ms = c->replace_after_ms;
    rc->spare = c->spare;
    /* Snapshots write the whole store: every 100,000 ops by
     * default (etcd's and ZooKeeper's default too), or sooner when the log
     * holds half its byte budget. */
    rc->snapshot_interval_ops = c->snapshot_interval_ops
                                    ? c->snapshot_interval_ops
                                    : NODE_SNAPSHOT_INTERVAL_DEFAULT;
    rc->reply_size_max = (uint32_t)kv_reply_size_max(&c->kv);
    rc->body_size_max =
        (uint32_t)c->kv.value_size_max + c->kv.key_size_max + 4096u;
    /* The bound on uncommitted bytes, and with it the largest message,
     * never goes below what the default limits give: a replica restarted
     * with lower limits must still send a suffix appended under the old
     * ones in one DO-VIEW-CHANGE, and its commit floor (core/replica.c)
     * must not rise above what was committed. */
    uint32_t body_default =
        KV_VALUE_SIZE_MAX_DEFAULT + KV_KEY_SIZE_MAX_DEFAULT + 4096u;
    if (rc->pipeline_bytes_max < 4u * body_default)
        rc->pipeline_bytes_max = 4u * body_default;
    if (rc->pipeline_bytes_max < 4u * rc->body_size_max)
        rc->pipeline_bytes_max = 4u * rc->body_size_max;
    /* The log's bodies are held in memory (--log-memory): a snapshot is
     * due when they fill about half of it, so with large values a larger
     * arena means fewer snapshots of the whole store. */
    rc->log_bytes_max = 4u * rc->pipeline_bytes_max;
    uint64_t log_memory =
        c->log_memory_bytes ? c->log_memory_bytes : NODE_LOG_BYTES_MIN;
    if (rc->log_bytes_max < log_memory)
        rc->log_bytes_max = log_memory;
    /* Three intervals: the log keeps half an interval behind each
     * snapshot, or up to half of it for a snapshot it sends to a new
     * member (core/transfer.c: the pin), with an interval of room left. */
    rc->log_ops_max =
        3u * rc->snapshot_interval_ops + 2u * rc->pipeline_ops_max;
    /* Every client connection on every replica is a client of the core. */
    rc->client_table_max = 16384;
}

/* A peer frame holds one core message or a snapshot chunk and its fields. */
#define NODE_FRAME_ROOM (64u + SNAPSHOT_CHUNK_SIZE)
/* Each peer's send queue holds this much besides one largest frame, so a
 * large --max-value-size needs no flag of its own. */
#define NODE_SEND_QUEUE_BYTES (64u << 20)

uint64_t node_frame_size(const struct node_config *c)
{
    struct replica_config rc;
    node_replica_config(c, 0, &rc);
    return replica_config_message_size(&rc) + NODE_FRAME_ROOM;
}

uint32_t node_value_size_max(const struct node_config *c)
{
    struct node_config t = *c;
    uint32_t lo = 0, hi = KV_VALUE_SIZE_LIMIT; /* lo fits (or is 0) */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        t.kv.value_size_max = mid;
        if (node_frame_size(&t) <= TRANSPORT_FRAME_SIZE_LIMIT)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* A segment's header and the record of one largest entry. */
static uint64_t wal_segment_needed(const struct node_config *c)
{
    struct replica_config rc;
    node_replica_config(c, 0, &rc);
    return WAL_SEGMENT_HEADER_SIZE + wal_record_size(rc.body_size_max);
}

uint64_t node_wal_segment_size(const struct node_config *c)
{
    if (c->wal_segment_size != 0)
        return c->wal_segment_size;
    uint64_t need = wal_segment_needed(c);
    if (need <= WAL_SEGMENT_SIZE_DEFAULT)
        return WAL_SEGMENT_SIZE_DEFAULT;
    return (need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
}

int node_config_check(const struct node_config *c, struct cohort_err *err)
{
    /* The failure detector suspects a primary silent for the suspect
     * timeout: a heartbeat no more often than that would have every backup
     * suspect a healthy primary (replica_init() refuses it). */
    struct replica_config rc;
    node_replica_config(c, 1, &rc);
    if (rc.suspect_timeout_ms <= rc.heartbeat_ms)
        return err_set(err, -COHORT_EINVAL,
                       "--suspect-timeout-ms %" PRIu32
                       " must be longer than --heartbeat-ms %" PRIu32
                       " (the primary's idle heartbeat); raise "
                       "--suspect-timeout-ms (a few heartbeats: %" PRIu32
                       ") or lower --heartbeat-ms",
                       rc.suspect_timeout_ms, rc.heartbeat_ms,
                       6u * rc.heartbeat_ms);
    if (c->kv.value_size_max <= KV_VALUE_SIZE_LIMIT &&
        c->kv.key_size_max <= KV_KEY_SIZE_LIMIT && c->wal_segment_size != 0 &&
        c->wal_segment_size < wal_segment_needed(c))
        return err_set(err, -COHORT_EINVAL,
                       "--wal-segment-size %" PRIu64
                       " cannot hold one entry of the largest value and key "
                       "(--max-value-size %" PRIu32 ", --max-key-size %" PRIu32
                       "); give at least %" PRIu64 " or leave it out",
                       c->wal_segment_size, c->kv.value_size_max,
                       c->kv.key_size_max, wal_segment_needed(c));
    if (c->kv.value_size_max <= KV_VALUE_SIZE_LIMIT &&
        c->kv.key_size_max <= KV_KEY_SIZE_LIMIT &&
        node_frame_size(c) <= TRANSPORT_FRAME_SIZE_LIMIT)
        return 0;
    if (c->kv.key_size_max > KV_KEY_SIZE_LIMIT)
        return err_set(err, -COHORT_EINVAL,
                       "--max-key-size %" PRIu32 " is too large: at most %u",
                       c->kv.key_size_max, KV_KEY_SIZE_LIMIT);
    return err_set(err, -COHORT_EINVAL,
                   "--max-value-size %" PRIu32 " is too large: at most %" PRIu32
                   " with --max-key-size %" PRIu32
                   " (a message between replicas carries up to five values "
                   "and is at most %u MiB); lower --max-value-size",
                   c->kv.value_size_max, node_value_size_max(c),
                   c->kv.key_size_max, TRANSPORT_FRAME_SIZE_LIMIT >> 20);
}

int node_files_check(const struct node_config *c, struct cohort_err *err)
{
    struct peer_auth_config ac = {
        .cluster_id = c->cluster_id,
        .self = c->self,
        .replica_count = c->replica_count,
        .secret_file = c->cluster_secret_file,
        .tls_cert_file = c->peer_tls_cert_file,
        .tls_key_file = c->peer_tls_key_file,
        .tls_ca_file = c->peer_tls_ca_file,
    };
    char warn[512]; /* said when the transport opens */
    struct peer_auth *a = peer_auth_open(&ac, warn, sizeof(warn), err);
    if (a == NULL)
        return err->code ? err->code : -COHORT_ECONFIG;
    peer_auth_free(a);
    return 0;
}

static int open_driver(struct node *n, struct cohort_err *err)
{
    struct driver_config dc;
    driver_config_defaults(&dc);
    dc.self = n->c.self;
    dc.replica_count = n->c.replica_count;
    dc.cluster_id = n->c.cluster_id;
    dc.data_dir = n->c.data_dir;
    dc.vfs = vfs_posix();
    dc.wal_segment_size = node_wal_segment_size(&n->c);
    dc.chunk_size = SNAPSHOT_CHUNK_SIZE;
    if (n->c.snapshot_size_max != 0)
        dc.snapshot_size_max = n->c.snapshot_size_max;
    configure_replica(n, &dc.replica);
    char boot_id[BOOT_ID_MAX];
    boot_id_current(boot_id);
    dc.torn_writes_possible = !boot_id_same(n, boot_id);
    struct driver_host host = {
        .ctx = n,
        .now_ms = host_now_ms,
        .send = host_send,
        .link = host_link,
        .storage = host_storage,
        .snapshot = host_snapshot,
        .view = host_view,
        .log = host_log,
        .fatal = host_fatal,
        .wall_ms = host_wall_ms,
    };
    struct driver_sm sm = {
        .sm = kv_sm(&n->kv),
        .restore = kv_restore_cb,
        .ctx = &n->kv,
    };
    n->driver = driver_open(&dc, &host, &sm, err);
    if (!n->driver)
        return err->code ? err->code : -COHORT_EIO;
    /* A cut torn tail stays on disk until the log moves past it: until then
     * the next start must judge it the same way. */
    boot_id_record(n, driver_cut_torn_tail(n->driver) ? "" : boot_id);
    return 0;
}

static int start_handles(struct node *n, struct cohort_err *err)
{
    /* First: a failure past the first handle closes them all. */
    int rc = snapshot_stream_init(&n->snapshot_copy.stream, wake_slicer,
                                  &n->slice_async);
    if (rc != 0)
        return err_set(err, rc, "start the snapshot stream");
    n->snapshot_copy.stream_ready = true;
    rc = snapshot_stream_init(&n->backup_copy.stream, wake_slicer,
                              &n->slice_async);
    if (rc != 0)
        return err_set(err, rc, "start the backup stream");
    n->backup_copy.stream_ready = true;
    uv_async_init(n->loop, &n->persist_async, on_persist_done);
    n->persist_async.data = n;
    n->handles_open++;
    rc = persister_start(&n->persister, driver_wal(n->driver),
                         driver_meta(n->driver), &n->persist_async, err);
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
    uv_idle_init(n->loop, &n->slice_idle);
    n->slice_idle.data = n;
    n->handles_open++;
    uv_async_init(n->loop, &n->slice_async, on_slice_async);
    n->slice_async.data = n;
    n->handles_open++;
    uv_signal_init(n->loop, &n->sigchld);
    n->sigchld.data = n;
    n->handles_open++;
    uv_signal_start(&n->sigchld, on_sigchld, SIGCHLD);
    struct transport_config tc = {
        .cluster_id = n->c.cluster_id,
        .incarnation = n->incarnation,
        .self = n->c.self,
        .replica_count = n->c.replica_count,
        .bind_host = n->c.bind_host,
        .secret_file = n->c.cluster_secret_file,
        .tls_cert_file = n->c.peer_tls_cert_file,
        .tls_key_file = n->c.peer_tls_key_file,
        .tls_ca_file = n->c.peer_tls_ca_file,
        .frame_size_max = replica_message_size_max(driver_replica(n->driver)) +
                          NODE_FRAME_ROOM,
        .send_queue_bytes_max =
            NODE_SEND_QUEUE_BYTES +
            replica_message_size_max(driver_replica(n->driver)) +
            NODE_FRAME_ROOM + PEER_LINK_HEADER_MAX,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 500,
        /* 1 s, or two suspect timeouts if longer: a stalled connection is
         * redialled well before a healed partition would notice. */
        .stall_timeout_ms = 2u * n->c.suspect_timeout_ms > 1000u
                                ? 2u * n->c.suspect_timeout_ms
                                : 1000u,
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

void node_set_incarnation(struct node *n, uint64_t incarnation)
{
    if (incarnation == 0 || (incarnation == n->incarnation &&
                             (!n->incarnation_unsaved ||
                              uv_now(n->loop) < n->incarnation_retry_ms)))
        return;
    if (incarnation != n->incarnation) {
        if (n->incarnation != 0)
            logline(LOGLINE_WARN,
                    "the store holds group incarnation %016" PRIx64
                    " but data directory %s recorded %016" PRIx64
                    ": recording the store's",
                    incarnation, n->c.data_dir, n->incarnation);
        else
            logline(LOGLINE_INFO,
                    "this replica's data belongs to group incarnation "
                    "%016" PRIx64 " (handshake tag %08" PRIx32 ")",
                    incarnation, peer_link_incarnation_tag(incarnation));
        n->incarnation = incarnation;
        if (n->transport != NULL)
            transport_set_incarnation(n->transport, incarnation);
    }
    struct cohort_err err;
    bool failed =
        identity_incarnation_write(n->c.data_dir, incarnation, &err) != 0;
    if (failed && !n->incarnation_unsaved)
        logline(LOGLINE_WARN,
                "cannot record the group incarnation in data directory %s: "
                "%s; trying again every second",
                n->c.data_dir, err.message);
    n->incarnation_unsaved = failed;
    n->incarnation_retry_ms = uv_now(n->loop) + 1000u;
}

uint64_t node_incarnation(const struct node *n)
{
    return n->incarnation;
}

bool node_peer_announces_incarnation(const struct node *n)
{
    uint32_t announcer = UINT32_MAX, tag;
    if (n->transport != NULL)
        (void)transport_peers_heard(n->transport, &announcer, &tag);
    return announcer != UINT32_MAX;
}

/* A write of the largest value is copied whole several times on each
 * replica's loop in one turn (README, "Limits"); measured on the 2-core
 * test machine, about NODE_LOOP_MS_PER_MIB per MiB. When that is longer
 * than the failure detector's timeout, one such write can cost a view
 * change: say so at start, with the figure to raise it to. */
#define NODE_LOOP_MS_PER_MIB 50u

static void warn_value_size_vs_timeouts(const struct node *n)
{
    uint64_t mib = ((uint64_t)n->c.kv.value_size_max + (1u << 20) - 1) >> 20;
    if (mib <= 2 || n->c.replica_count < 2)
        return;
    struct replica_config rc;
    node_replica_config(&n->c, 0, &rc);
    uint64_t hold_ms = mib * NODE_LOOP_MS_PER_MIB;
    if (rc.suspect_timeout_ms >= hold_ms)
        return;
    logline(
        LOGLINE_WARN,
        "--max-value-size %" PRIu64 "mb: one write of that size can hold "
        "each replica's event loop about %" PRIu64 " ms (%u ms per MiB "
        "measured on 2 cores), longer than --suspect-timeout-ms %" PRIu32
        ", so it may change the view; raise --suspect-timeout-ms to %" PRIu64
        " or more and --view-change-timeout-ms to twice that",
        mib, hold_ms, NODE_LOOP_MS_PER_MIB, rc.suspect_timeout_ms, hold_ms);
}

struct node *node_open(uv_loop_t *loop, const struct node_config *config,
                       struct cohort_err *err)
{
    if (node_config_check(config, err) != 0)
        return NULL;
    struct node *n = calloc(1, sizeof(*n));
    ASSERT(n);
    n->loop = loop;
    n->c = *config;
    n->lock.fd = -1;
    snapshot_job_init(&n->snapshot_job);
    if (backup_init(&n->backup, n->c.data_dir, err) != 0)
        goto fail;
    run_clock_init(&n->clock, uv_hrtime() / 1000000u, NODE_CLOCK_STEP_MAX_MS);
    if (dirlock_acquire(&n->lock, n->c.data_dir, err) != 0 ||
        identity_check(n->c.data_dir, n->c.self, err) != 0 ||
        identity_incarnation_read(n->c.data_dir, &n->incarnation, err) != 0)
        goto fail;
    unsigned mode = dirlock_loose_mode(n->c.data_dir);
    if (mode != 0)
        logline(LOGLINE_WARN,
                "data directory %s has mode %04o: other users may read the "
                "log and snapshots (every value); run chmod 700 %s",
                n->c.data_dir, mode, n->c.data_dir);
    if (kv_init(&n->kv, &n->c.kv) != 0) {
        err_set(err, -COHORT_ENOMEM, "allocate the store");
        goto fail;
    }
    n->kv_ready = true;
    if (addresses_open(n, err) != 0 || open_driver(n, err) != 0)
        goto fail;
    addresses_recovered(n);
    /* The snapshot's incarnation, if the file lacked it: in the first
     * handshake already. */
    node_set_incarnation(n, kv_incarnation(&n->kv));
    n->fresh_hold = driver_fresh(n->driver) && n->c.replica_count > 1;
    n->fresh_hold_until_ms = uv_now(n->loop) + FRESH_HOLD_MS;
    keep_arena_from_children(n);
    warn_value_size_vs_timeouts(n);
    if (start_handles(n, err) != 0)
        goto fail;
    driver_tick(n->driver);
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
    if (n->kv_ready && !n->c.keep_store_on_close)
        kv_deinit(&n->kv);
    dirlock_release(&n->lock);
    free(n);
}

void node_close(struct node *n)
{
    if (n->closing)
        return;
    n->closing = true;
    /* The storage thread finishes its queue first; then the driver answers
     * what is still pending and closes the files. */
    persister_stop(&n->persister);
    driver_close(n->driver);
    n->driver = NULL;
    /* Before the joins: the threads read the streams. */
    snapshot_slicing_stop(n, &n->snapshot_copy);
    snapshot_slicing_stop(n, &n->backup_copy);
    snapshot_job_stop(&n->snapshot_job);
    backup_stop(&n->backup);
    struct snapshot_copy *copies[] = {&n->snapshot_copy, &n->backup_copy};
    for (size_t i = 0; i < 2; i++) {
        if (copies[i]->stream_ready)
            snapshot_stream_destroy(&copies[i]->stream);
        free(copies[i]->table);
        memset(copies[i], 0, sizeof(*copies[i]));
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
        uv_close((uv_handle_t *)&n->slice_idle, on_handle_closed);
        uv_close((uv_handle_t *)&n->slice_async, on_handle_closed);
        uv_close((uv_handle_t *)&n->sigchld, on_handle_closed);
    }
}
