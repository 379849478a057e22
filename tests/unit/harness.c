/* harness — a small group of drivers for unit tests. See harness.h. */
#include "harness.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"

#define BODY_SIZE 9 /* amount, request_no */
#define SETTLE_STEPS_MAX 1000000u

/* Every replica's simulated disk. */
#define HARNESS_DISK                                                           \
    {                                                                          \
        .sector_size = 512, .torn_ppm = 500000                                 \
    }

static struct harness_replica *rep_of(void *ctx)
{
    return ctx;
}

/* ------------------------------------------------------------ answers */

static void on_done(void *ctx, const struct driver_reply *reply)
{
    struct harness_reply *q = ctx;
    if (q->answers++ > 0)
        fail_msg("request %" PRIu64 " of client %" PRIu64
                 " answered twice (outcome %d, then %d)",
                 q->request_no, q->client_id, (int)q->outcome,
                 (int)reply->outcome);
    q->outcome = reply->outcome;
    q->status = reply->status;
    q->primary_hint = reply->primary_hint;
    q->op = reply->op;
    if (reply->outcome != DRIVER_DONE)
        return;
    if (q->read) {
        q->value = q->rep->total; /* read now, as the server does */
        return;
    }
    assert_int_equal(reply->size, 8);
    q->value = get_u64(reply->data);
}

static struct harness_reply *reply_new(struct harness *h, uint32_t i,
                                       uint64_t client_id, uint64_t request_no,
                                       bool read)
{
    assert_true(h->reply_count < HARNESS_REPLIES_MAX);
    struct harness_reply *q = &h->replies[h->reply_count++];
    memset(q, 0, sizeof(*q));
    q->client_id = client_id;
    q->request_no = request_no;
    q->read = read;
    q->rep = &h->r[i];
    return q;
}

struct harness_reply *harness_submit_limit(struct harness *h, uint32_t i,
                                           uint64_t client_id,
                                           uint64_t request_no, uint8_t amount,
                                           bool over_limit)
{
    assert_non_null(h->r[i].driver);
    struct harness_reply *q = reply_new(h, i, client_id, request_no, false);
    uint8_t body[BODY_SIZE];
    body[0] = amount;
    put_u64(body + 1, request_no);
    driver_submit(h->r[i].driver, client_id, request_no, body, sizeof(body),
                  over_limit, on_done, q);
    return q;
}

struct harness_reply *harness_submit(struct harness *h, uint32_t i,
                                     uint64_t client_id, uint64_t request_no,
                                     uint8_t amount)
{
    return harness_submit_limit(h, i, client_id, request_no, amount, false);
}

void harness_write_each(struct harness *h, uint32_t i, uint64_t client_base,
                        uint64_t count)
{
    for (uint64_t k = 1; k <= count; k++) {
        struct harness_reply *r = harness_submit(h, i, client_base + k, 1, 1);
        harness_run(h, 20);
        assert_int_equal(r->answers, 1);
        assert_int_equal(r->outcome, DRIVER_DONE);
    }
}

struct harness_reply *harness_read(struct harness *h, uint32_t i)
{
    assert_non_null(h->r[i].driver);
    struct harness_reply *q = reply_new(h, i, 0, 0, true);
    driver_read(h->r[i].driver, on_done, q);
    return q;
}

const struct harness_reply *harness_find(const struct harness *h,
                                         uint64_t client_id,
                                         uint64_t request_no,
                                         enum reply_status status)
{
    for (uint32_t k = 0; k < h->reply_count; k++) {
        const struct harness_reply *q = &h->replies[k];
        if (q->answers && !q->read && q->client_id == client_id &&
            q->request_no == request_no && q->status == status)
            return q;
    }
    return NULL;
}

/* ------------------------------------------------------------ the counter */

static size_t counter_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                            const uint8_t *body, size_t size, uint8_t *reply,
                            size_t reply_size_max)
{
    (void)timestamp_ms;
    struct harness_replica *rep = ctx;
    assert_int_equal(size, BODY_SIZE);
    assert_true(op > rep->applied_op);
    assert_true(reply_size_max >= 8);
    rep->total += body[0];
    rep->applied_op = op;
    if (rep->order_count < HARNESS_ORDER_MAX)
        rep->order[rep->order_count++] = get_u64(body + 1);
    put_u64(reply, rep->total);
    return 8;
}

/* The snapshot stream: the op it holds, then the total. */
static int counter_restore(void *ctx,
                           int (*read)(void *rctx, void *data, size_t size,
                                       size_t *got),
                           void *rctx, struct cohort_err *err)
{
    struct harness_replica *rep = ctx;
    uint8_t buf[17];
    size_t got = 0;
    int rc = read(rctx, buf, sizeof(buf), &got);
    if (rc != 0)
        return err_set(err, rc, "read the counter");
    if (got != 16)
        return err_set(err, -COHORT_ECORRUPT, "counter of %zu bytes", got);
    rep->applied_op = get_u64(buf);
    rep->total = get_u64(buf + 8);
    rep->order_count = 0;
    rep->restores++;
    return 0;
}

static int counter_state(void *ctx,
                         int (*write)(void *wctx, const void *data,
                                      size_t size),
                         void *wctx)
{
    struct harness_replica *rep = ctx;
    uint8_t buf[16];
    put_u64(buf, rep->applied_op);
    put_u64(buf + 8, rep->total);
    return write(wctx, buf, sizeof(buf));
}

/* ------------------------------------------------------------ the host */

static uint64_t host_now_ms(void *ctx)
{
    return rep_of(ctx)->h->now;
}

static bool linked(const struct harness *h, uint32_t from, uint32_t to)
{
    return !h->r[from].cut && !h->r[to].cut;
}

static void host_send(void *ctx, uint32_t to, const uint8_t *frame, size_t size)
{
    struct harness_replica *rep = rep_of(ctx);
    struct harness *h = rep->h;
    assert_true(to < h->count);
    if (!linked(h, rep->index, to))
        return;
    if (h->frame_count == h->frame_cap) {
        /* Grow the ring, keeping its order. */
        size_t cap = h->frame_cap ? h->frame_cap * 2 : 1024;
        struct harness_frame *f = calloc(cap, sizeof(*f));
        assert_non_null(f);
        for (size_t k = 0; k < h->frame_count; k++)
            f[k] = h->frames[(h->frame_head + k) % h->frame_cap];
        free(h->frames);
        h->frames = f;
        h->frame_cap = cap;
        h->frame_head = 0;
    }
    struct harness_frame *f =
        &h->frames[(h->frame_head + h->frame_count++) % h->frame_cap];
    f->from = rep->index;
    f->to = to;
    f->size = size;
    f->data = malloc(size);
    assert_non_null(f->data);
    memcpy(f->data, frame, size);
}

static void host_link(void *ctx, uint32_t to, bool *up, uint64_t *queued)
{
    struct harness_replica *rep = rep_of(ctx);
    *up = rep->h->r[to].driver != NULL && linked(rep->h, rep->index, to);
    *queued = 0;
}

static void host_storage(void *ctx, struct storage_job *job)
{
    struct harness_replica *rep = rep_of(ctx);
    job->next = NULL;
    if (rep->queue_tail)
        rep->queue_tail->next = job;
    else
        rep->queue_head = job;
    rep->queue_tail = job;
}

/* Written at once, as of now (what fork() would freeze); reported done
 * from the run loop. */
static bool host_snapshot(void *ctx, const struct driver_snapshot *snap,
                          char *why, size_t why_size)
{
    struct harness_replica *rep = rep_of(ctx);
    if (rep->snapshot_refuse) {
        snprintf(why, why_size, "refused by the test");
        return false;
    }
    assert_false(rep->snapshot_due); /* one at a time */
    /* Entries that are not client requests (a RECONFIG) reach no state
     * machine: the counter's last op may be below the snapshot's. */
    assert_true(rep->applied_op <= snap->info.op);
    struct cohort_err err;
    err_clear(&err);
    int rc = driver_snapshot_write(sim_disk_vfs(&rep->disk), HARNESS_DATA_DIR,
                                   snap, counter_state, rep, &err);
    rep->snapshot_due = true;
    rep->snapshot_ok = rc == 0;
    rep->snapshot_op = snap->info.op;
    rep->snapshots_written += rc == 0;
    return true;
}

static void host_view(void *ctx, const struct cohort_view_info *view)
{
    rep_of(ctx)->last_view = *view;
}

static void host_log(void *ctx, enum driver_log_level level, const char *line)
{
    struct harness_replica *rep = rep_of(ctx);
    if (rep->h->verbose)
        fprintf(stderr, "%8" PRIu64 "ms r%u [%d] %s\n", rep->h->now, rep->index,
                (int)level, line);
}

static void host_fatal(void *ctx, int code, const char *why)
{
    struct harness_replica *rep = rep_of(ctx);
    rep->fatal_code = code ? code : -1;
    fprintf(stderr, "replica %u cannot go on: %s\n", rep->index, why);
}

/* ------------------------------------------------------------ storage */

static void storage_drop(struct harness_replica *rep)
{
    storage_job_free_list(rep->queue_head);
    storage_job_free_list(rep->round_jobs);
    rep->queue_head = rep->queue_tail = rep->round_jobs = NULL;
    storage_batch_finish(&rep->round, NULL);
}

int harness_storage_run(struct harness *h, uint32_t i)
{
    struct harness_replica *rep = &h->r[i];
    assert_non_null(rep->driver);
    if (!rep->round_jobs) {
        if (!rep->queue_head)
            return 0;
        rep->round_jobs = rep->queue_head; /* every job queued: one round */
        rep->queue_head = rep->queue_tail = NULL;
        storage_batch_init(&rep->round, rep->round_jobs);
    }
    struct cohort_err err;
    err_clear(&err);
    int rc = storage_batch_run(&rep->round, driver_wal(rep->driver),
                               driver_meta(rep->driver), &err);
    if (rc == -COHORT_EAGAIN) {
        rep->stalled = true;
        driver_storage_stalled(rep->driver, true, err.message);
        return rc;
    }
    if (rc != 0)
        fail_msg("replica %u: storage failed: %s", i, err.message);
    if (rep->stalled) {
        rep->stalled = false;
        driver_storage_stalled(rep->driver, false, NULL);
    }
    struct storage_job *jobs = rep->round_jobs;
    rep->round_jobs = NULL;
    while (jobs) {
        struct storage_job *next = jobs->next;
        driver_storage_done(rep->driver, jobs);
        jobs = next;
    }
    /* As the runtime's storage thread: after the replies. */
    storage_batch_finish(&rep->round, driver_meta(rep->driver));
    return 0;
}

/* ------------------------------------------------------------ the loop */

static void check_fatal(const struct harness *h)
{
    for (uint32_t i = 0; i < h->count; i++)
        if (h->r[i].fatal_code)
            fail_msg("replica %u stopped (code %d)", i, h->r[i].fatal_code);
}

static void deliver_one(struct harness *h)
{
    struct harness_frame f = h->frames[h->frame_head];
    h->frame_head = (h->frame_head + 1) % h->frame_cap;
    h->frame_count--;
    struct harness_replica *to = &h->r[f.to];
    bool keep = to->driver && linked(h, f.from, f.to);
    if (keep && h->deliver)
        keep = h->deliver(h, h->deliver_ctx, f.from, f.to, f.data, f.size);
    if (keep && to->driver) /* the hook may have crashed it */
        driver_frame(to->driver, f.from, f.data, f.size);
    free(f.data);
}

bool harness_step(struct harness *h)
{
    for (uint32_t i = 0; i < h->count; i++) {
        struct harness_replica *rep = &h->r[i];
        if (rep->driver && !rep->hold_storage && !rep->stalled &&
            (rep->queue_head || rep->round_jobs)) {
            harness_storage_run(h, i);
            return true;
        }
    }
    for (uint32_t i = 0; i < h->count; i++) {
        struct harness_replica *rep = &h->r[i];
        if (rep->driver && rep->snapshot_due) {
            rep->snapshot_due = false;
            driver_snapshot_done(rep->driver, rep->snapshot_op,
                                 rep->snapshot_ok, NULL);
            return true;
        }
    }
    if (h->frame_count == 0)
        return false;
    deliver_one(h);
    return true;
}

static bool busy(const struct harness *h)
{
    if (h->frame_count)
        return true;
    for (uint32_t i = 0; i < h->count; i++) {
        const struct harness_replica *rep = &h->r[i];
        if (rep->driver &&
            (rep->snapshot_due ||
             (!rep->hold_storage && !rep->stalled && rep->queue_head)))
            return true;
    }
    return false;
}

void harness_turn_end(struct harness *h, uint32_t i)
{
    assert_non_null(h->r[i].driver);
    driver_turn_end(h->r[i].driver);
}

void harness_settle(struct harness *h)
{
    for (uint32_t n = 0;; n++) {
        if (n == SETTLE_STEPS_MAX)
            fail_msg("no rest after %u steps at %" PRIu64 " ms", n, h->now);
        check_fatal(h);
        if (harness_step(h))
            continue;
        for (uint32_t i = 0; i < h->count; i++)
            if (h->r[i].driver)
                driver_turn_end(h->r[i].driver);
        if (!busy(h))
            return;
    }
}

void harness_run(struct harness *h, uint64_t ms)
{
    uint64_t end = h->now + ms;
    while (h->now < end) {
        harness_settle(h);
        h->now += HARNESS_TICK_MS;
        for (uint32_t i = 0; i < h->count; i++) {
            struct harness_replica *rep = &h->r[i];
            if (rep->stalled && rep->driver)
                harness_storage_run(h, i); /* retry, as a host would */
            if (rep->driver)
                driver_tick(rep->driver);
        }
    }
    harness_settle(h);
    check_fatal(h);
}

/* ------------------------------------------------------------ lifecycle */

struct harness *harness_new(uint32_t count, uint64_t seed)
{
    assert_true(count >= 1 && count <= HARNESS_REPLICAS_MAX);
    struct harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->count = count;
    h->now = 1000;
    prng_init(&h->prng, seed);
    struct driver_config *c = &h->config;
    driver_config_defaults(c);
    c->replica_count = count;
    c->cluster_id = 0xc0c0;
    c->wal_segment_size = 8u << 10;
    c->chunk_size = 64;
    c->send_window = 256;
    struct replica_config *rc = &c->replica;
    replica_config_defaults(rc, count, 0, seed);
    rc->body_size_max = 64;
    rc->reply_size_max = 64;
    rc->reply_keep_max = 64;
    rc->pipeline_bytes_max = 64u * 64u;
    rc->log_ops_max = 8192;
    rc->log_bytes_max = 1u << 20;
    rc->snapshot_interval_ops = 0;
    struct sim_disk_config disk = HARNESS_DISK;
    for (uint32_t i = 0; i < count; i++) {
        h->r[i].h = h;
        h->r[i].index = i;
        sim_disk_init(&h->r[i].disk, &h->prng, &disk);
    }
    return h;
}

void harness_start(struct harness *h, uint32_t i)
{
    struct harness_replica *rep = &h->r[i];
    assert_null(rep->driver);
    struct driver_config c = h->config;
    c.self = i;
    c.replica.self = i;
    c.data_dir = HARNESS_DATA_DIR;
    c.vfs = sim_disk_vfs(&rep->disk);
    c.torn_writes_possible = rep->power_lost;
    struct driver_host host = {
        .ctx = rep,
        .now_ms = host_now_ms,
        .send = host_send,
        .link = host_link,
        .storage = host_storage,
        .snapshot = host_snapshot,
        .view = host_view,
        .log = host_log,
        .fatal = host_fatal,
    };
    struct driver_sm sm = {
        .sm = {.ctx = rep, .apply = counter_apply},
        .restore = counter_restore,
        .ctx = rep,
    };
    rep->total = rep->applied_op = 0;
    rep->order_count = 0;
    rep->stalled = false;
    rep->fatal_code = 0;
    struct cohort_err err;
    err_clear(&err);
    rep->driver = driver_open(&c, &host, &sm, &err);
    if (!rep->driver)
        fail_msg("replica %u cannot start: %s", i, err.message);
    /* A cut torn tail stays on disk until the log passes it. */
    rep->power_lost = driver_cut_torn_tail(rep->driver);
}

void harness_start_all(struct harness *h)
{
    for (uint32_t i = 0; i < h->count; i++)
        harness_start(h, i);
}

void harness_crash(struct harness *h, uint32_t i, bool power)
{
    struct harness_replica *rep = &h->r[i];
    assert_non_null(rep->driver);
    storage_drop(rep);
    rep->snapshot_due = false;
    struct driver *d = rep->driver;
    rep->driver = NULL;
    driver_close(d);
    sim_disk_crash(&rep->disk, power);
    rep->power_lost = rep->power_lost || power;
}

void harness_wipe(struct harness *h, uint32_t i)
{
    struct harness_replica *rep = &h->r[i];
    assert_null(rep->driver);
    struct sim_disk_config disk = HARNESS_DISK;
    sim_disk_deinit(&rep->disk);
    sim_disk_init(&rep->disk, &h->prng, &disk);
    rep->power_lost = false;
}

void harness_free(struct harness *h)
{
    for (uint32_t i = 0; i < h->count; i++) {
        if (h->r[i].driver)
            harness_crash(h, i, false);
        sim_disk_deinit(&h->r[i].disk);
    }
    for (size_t k = 0; k < h->frame_count; k++)
        free(h->frames[(h->frame_head + k) % h->frame_cap].data);
    free(h->frames);
    free(h);
}

/* ------------------------------------------------------------ queries */

int harness_primary(const struct harness *h)
{
    for (uint32_t i = 0; i < h->count; i++)
        if (h->r[i].driver &&
            replica_is_primary(driver_replica(h->r[i].driver)))
            return (int)i;
    return -1;
}

const struct replica *harness_core(const struct harness *h, uint32_t i)
{
    assert_non_null(h->r[i].driver);
    return driver_replica(h->r[i].driver);
}

int harness_state_bytes(void *ctx,
                        int (*write)(void *wctx, const void *data, size_t size),
                        void *wctx)
{
    const struct harness_replica *rep = ctx;
    uint8_t buf[16];
    put_u64(buf, rep->applied_op);
    put_u64(buf + 8, rep->total);
    return write(wctx, buf, sizeof(buf));
}

void harness_cut(struct harness *h, uint32_t i, bool cut)
{
    h->r[i].cut = cut;
}
