/* persister — the storage thread with group commit. See persister.h. */
#include "runtime/persister.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"

#define STALL_RETRY_MIN_MS 100
#define STALL_RETRY_MAX_MS 1000

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A retryable failure: note it and wait out the backoff, or until stopped
 * (then true). New jobs do not cut the wait short. Called and returns with
 * the lock held. */
static bool stall_wait(struct persister *p, const struct cohort_err *err)
{
    uint64_t now = monotonic_us() / 1000u;
    retry_failed(&p->retry, now, wall_ms(), err->message);
    uint64_t until = p->retry.next_ms;
    while (!p->stop && monotonic_us() / 1000u < until) {
        struct timespec ts = {(time_t)(until / 1000u),
                              (long)(until % 1000u) * 1000000L};
        pthread_cond_timedwait(&p->wake, &p->lock, &ts);
    }
    return p->stop;
}

/* The entries and body bytes a round appends. */
static void round_size(const struct storage_job *jobs, uint64_t *ops,
                       uint64_t *bytes)
{
    *ops = 0;
    *bytes = 0;
    for (const struct storage_job *j = jobs; j; j = j->next) {
        if (j->type != STORAGE_PERSIST)
            continue;
        *ops += j->entry_count;
        for (uint32_t i = 0; i < j->entry_count; i++)
            *bytes += j->entries[i].h.body_size;
    }
}

/* One round, retried while the failure is retryable and nobody asked us to
 * stop. Returns true when every job is durable. */
static bool run_round(struct persister *p, struct storage_batch *batch,
                      struct storage_job *jobs)
{
    storage_batch_init(batch, jobs);
    uint64_t ops, bytes;
    round_size(jobs, &ops, &bytes);
    for (;;) {
        struct cohort_err err;
        err_clear(&err);
        uint64_t start = monotonic_us();
        int rc = storage_batch_run(batch, p->wal, p->meta, &err);
        uint64_t took = monotonic_us() - start;
        pthread_mutex_lock(&p->lock);
        p->syncs++;
        p->last_sync_us = took;
        p->log_bytes = wal_bytes_used(p->wal);
        if (rc == 0) {
            loghist_record(&p->metrics.round_us, took);
            if (ops > 0) {
                loghist_record(&p->metrics.batch_ops, ops);
                loghist_record(&p->metrics.batch_bytes, bytes);
            }
            retry_succeeded(&p->retry);
            p->stalled = false;
            pthread_mutex_unlock(&p->lock);
            return true;
        }
        p->error = err;
        if (rc != -COHORT_EAGAIN) {
            p->failed = true;
            pthread_mutex_unlock(&p->lock);
            return false;
        }
        p->stalled = true; /* a full disk or EIO on a write: retry */
        bool stop = stall_wait(p, &err);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return false;
    }
}

static void hand_back(struct persister *p, struct storage_job *batch)
{
    struct storage_job *last = batch;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&p->lock);
    if (p->done_tail)
        p->done_tail->next = batch;
    else
        p->done_head = batch;
    p->done_tail = last;
    pthread_mutex_unlock(&p->lock);
}

static void *thread_main(void *arg)
{
    struct persister *p = arg;
    pthread_mutex_lock(&p->lock);
    bool prepare = true;
    for (;;) {
        while (!p->queue_head && !p->stop) {
            /* Idle: write zeros ahead of the log (wal_prepare()), a chunk
             * at a time, checking for jobs between chunks; a job that
             * comes meanwhile waits for at most one chunk. */
            if (prepare && !p->failed) {
                pthread_mutex_unlock(&p->lock);
                struct cohort_err err;
                int rc = wal_prepare(p->wal, &err);
                pthread_mutex_lock(&p->lock);
                if (rc > 0) {
                    p->zero_chunks++;
                    continue;
                }
                /* Nothing to do, or a failure: the next round reports a
                 * failed wal; a failed write is tried again next time. */
                prepare = false;
                continue;
            }
            p->idle = true;
            pthread_cond_wait(&p->wake, &p->lock);
            p->idle = false;
            prepare = true;
        }
        if (!p->queue_head || p->failed)
            break;
        struct storage_job *batch = p->queue_head;
        p->queue_head = p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        struct storage_batch round;
        if (run_round(p, &round, batch))
            hand_back(p, batch);
        else /* failed, or stopped while stalled: nothing is handed back */
            storage_job_free_list(batch);
        uv_async_send(p->async);
        /* After the hand-back: the checkpoints file delays no reply. */
        storage_batch_finish(&round, p->meta);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int persister_start(struct persister *p, struct wal *wal, struct meta *meta,
                    uv_async_t *async, struct cohort_err *err)
{
    memset(p, 0, sizeof(*p));
    p->wal = wal;
    p->meta = meta;
    p->async = async;
    retry_init(&p->retry, STALL_RETRY_MIN_MS, STALL_RETRY_MAX_MS);
    p->log_bytes = wal_bytes_used(wal);
    pthread_mutex_init(&p->lock, NULL);
    /* Stall waits are deadlines on the monotonic clock. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&p->thread, NULL, thread_main, p) != 0)
        return err_set(err, -COHORT_ENOMEM, "start the storage thread");
    p->started = true;
    return 0;
}

void persister_stop(struct persister *p)
{
    if (!p->started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    p->started = false;
    storage_job_free_list(p->queue_head);
    p->queue_head = p->queue_tail = NULL;
    storage_job_free_list(persister_take_done(p));
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
}

void persister_push(struct persister *p, struct storage_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->queue_tail)
        p->queue_tail->next = job;
    else
        p->queue_head = job;
    p->queue_tail = job;
    /* Wake the thread only if it waits for jobs (busy, it takes this one
     * with the next round; stalled, new jobs do not cut its backoff
     * short), and after unlocking, so that it does not wake into a lock
     * this thread still holds: one futex call and one context switch
     * less per group commit (bench/analysis.md). It cannot miss the
     * wake-up: it set idle and entered the wait under the lock this
     * thread took after it. */
    bool wake = p->idle;
    pthread_mutex_unlock(&p->lock);
    if (wake)
        pthread_cond_signal(&p->wake);
}

struct storage_job *persister_take_done(struct persister *p)
{
    pthread_mutex_lock(&p->lock);
    struct storage_job *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return list;
}

void persister_state(struct persister *p, struct persister_state *out)
{
    pthread_mutex_lock(&p->lock);
    out->stalled = p->stalled;
    out->failed = p->failed;
    out->error = p->error;
    out->syncs = p->syncs;
    out->last_sync_us = p->last_sync_us;
    out->retry = p->retry;
    out->log_bytes = p->log_bytes;
    out->zero_chunks = p->zero_chunks;
    pthread_mutex_unlock(&p->lock);
}

void persister_metrics(struct persister *p, struct persister_metrics *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->metrics;
    pthread_mutex_unlock(&p->lock);
}
