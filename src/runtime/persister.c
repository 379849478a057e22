/* persister — the storage thread with group commit. See persister.h. */
#include "runtime/persister.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"

struct persist_job *persist_job_entries(const struct replica *r,
                                        uint64_t op_first, uint64_t op_last,
                                        uint64_t checksum)
{
    struct persist_job *job = calloc(1, sizeof(*job));
    ASSERT(job);
    job->type = PJOB_PERSIST;
    job->op_first = op_first;
    job->op_last = op_last;
    job->checksum = checksum;
    if (op_last < op_first)
        return job;
    uint64_t count = op_last - op_first + 1;
    size_t bytes = 0;
    for (uint64_t op = op_first; op <= op_last; op++)
        bytes += replica_entry(r, op)->h.body_size;
    job->entries = calloc(count, sizeof(*job->entries));
    job->bytes = malloc(bytes ? bytes : 1);
    ASSERT(job->entries && job->bytes);
    size_t at = 0;
    for (uint64_t op = op_first; op <= op_last; op++) {
        const struct entry *e = replica_entry(r, op);
        ASSERT(e);
        struct entry *copy = &job->entries[op - op_first];
        copy->h = e->h;
        memcpy(job->bytes + at, e->body, e->h.body_size);
        copy->body = job->bytes + at;
        at += e->h.body_size;
    }
    job->entry_count = (uint32_t)count;
    return job;
}

void persist_job_free(struct persist_job *job)
{
    free(job->entries);
    free(job->bytes);
    free(job);
}

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Append a PERSIST job's entries; appending an op the wal already holds
 * replaces the suffix from there. The node turns a truncation after op n
 * into a job that re-appends entry n; a job with no entries empties the log
 * (nothing is kept above the snapshot). */
static int apply_persist(struct persister *p, const struct persist_job *job,
                         struct cohort_err *err)
{
    if (job->entry_count == 0) {
        wal_reset(p->wal);
        return 0;
    }
    for (uint32_t i = 0; i < job->entry_count; i++) {
        int rc = wal_append(p->wal, &job->entries[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* One round: append everything, one sync, metadata, completions. */
static void run_batch(struct persister *p, struct persist_job *batch)
{
    struct cohort_err err;
    err_clear(&err);
    bool need_sync = false;
    for (struct persist_job *j = batch; j; j = j->next) {
        int rc = 0;
        switch (j->type) {
        case PJOB_PERSIST:
            rc = apply_persist(p, j, &err);
            need_sync = true;
            break;
        case PJOB_COMPACT:
            rc = wal_compact(p->wal, j->compact_op, &err);
            break;
        case PJOB_RESET:
            wal_reset(p->wal);
            need_sync = true;
            break;
        case PJOB_META:
            break;
        }
        ASSERT(rc == 0 || wal_state(p->wal) != WAL_OPEN || rc != 0);
        if (rc < 0) {
            pthread_mutex_lock(&p->lock);
            p->failed = true;
            p->error = err;
            pthread_mutex_unlock(&p->lock);
            return;
        }
    }
    for (;;) {
        if (!need_sync)
            break;
        uint64_t start = monotonic_us();
        int rc = wal_sync(p->wal, NULL, &err);
        uint64_t took = monotonic_us() - start;
        pthread_mutex_lock(&p->lock);
        p->syncs++;
        p->last_sync_us = took;
        if (rc == 0) {
            p->stalled = false;
            pthread_mutex_unlock(&p->lock);
            break;
        }
        p->error = err;
        if (wal_state(p->wal) == WAL_FAILED) {
            p->failed = true;
            pthread_mutex_unlock(&p->lock);
            return;
        }
        p->stalled = true; /* ENOSPC or EIO on write: nothing lost, retry */
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return;
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    for (struct persist_job *j = batch; j; j = j->next) {
        if (j->type != PJOB_META)
            continue;
        for (;;) {
            int rc = meta_write(p->meta, &j->meta, &err);
            if (rc == 0)
                break;
            pthread_mutex_lock(&p->lock);
            p->error = err;
            if (p->meta->state == META_FAILED) {
                p->failed = true;
                pthread_mutex_unlock(&p->lock);
                return;
            }
            p->stalled = true;
            pthread_mutex_unlock(&p->lock);
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
}

static void *thread_main(void *arg)
{
    struct persister *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->queue_head && !p->stop)
            pthread_cond_wait(&p->wake, &p->lock);
        if (!p->queue_head && p->stop)
            break;
        struct persist_job *batch = p->queue_head;
        p->queue_head = p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        run_batch(p, batch);
        pthread_mutex_lock(&p->lock);
        if (p->failed) {
            /* Hand nothing back: the node sees `failed` and stops. */
            while (batch) {
                struct persist_job *next = batch->next;
                persist_job_free(batch);
                batch = next;
            }
        } else {
            struct persist_job *last = batch;
            while (last->next)
                last = last->next;
            if (p->done_tail)
                p->done_tail->next = batch;
            else
                p->done_head = batch;
            p->done_tail = last;
        }
        pthread_mutex_unlock(&p->lock);
        uv_async_send(p->async);
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
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
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
    struct persist_job *j = persister_take_done(p);
    while (j) {
        struct persist_job *next = j->next;
        persist_job_free(j);
        j = next;
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
}

void persister_push(struct persister *p, struct persist_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->queue_tail)
        p->queue_tail->next = job;
    else
        p->queue_head = job;
    p->queue_tail = job;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

struct persist_job *persister_take_done(struct persister *p)
{
    pthread_mutex_lock(&p->lock);
    struct persist_job *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return list;
}
