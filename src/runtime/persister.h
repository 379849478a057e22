/* persister — the storage thread: runs the driver's storage jobs off the
 * event loop with group commit. Each round takes every job queued since the
 * last one and runs them as one storage batch (storage/batch.h: append all,
 * ONE fdatasync, then the metadata), then hands the jobs back to the loop
 * through a uv_async_t, in the order they were queued.
 *
 * Failure: a retryable failure (a full disk, EIO on a write) is retried
 * with bounded exponential backoff (100 ms doubling to 1 s, common/retry),
 * with `stalled` set, so the node can refuse new writes with a clear error
 * (the driver logs the stall's start and end). A failed
 * fdatasync leaves the wal or meta FAILED and the persister `failed`: the
 * node must stop (after an fsync error nobody knows what reached the
 * disk).
 *
 * Idle, the thread writes zeros ahead of the log's tail (wal_prepare(),
 * one chunk at a time, checking for jobs in between), so that a round's
 * fdatasync finds the blocks it appends to already written and commits no
 * file-system metadata.
 *
 * Threads: the loop thread pushes jobs and takes completions; the storage
 * thread runs batches. Every field below `lock` is guarded by it; the loop
 * reads the shared state only through persister_state(). A push wakes the
 * thread only when it is `idle` (waiting for jobs): a busy thread takes
 * the job with its next round, a stalled one waits out its backoff. */
#ifndef COHORT_PERSISTER_H
#define COHORT_PERSISTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"
#include "common/retry.h"
#include "runtime/loghist.h"
#include "storage/batch.h"
#include "storage/meta.h"
#include "storage/wal.h"

/* What the storage thread measures of each group-commit round that
 * succeeded: its duration (appends, metadata, the one fdatasync; the sync
 * dominates), in microseconds, and its size in log entries and bytes of
 * entry bodies. Recorded under the lock, on the storage thread. */
struct persister_metrics {
    struct loghist round_us;
    struct loghist batch_ops;
    struct loghist batch_bytes;
};

struct persister {
    struct wal *wal;   /* borrowed; used only by the storage thread */
    struct meta *meta; /* borrowed; likewise */
    pthread_t thread;
    uv_async_t *async; /* signals done jobs */
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* Guarded by lock. */
    struct storage_job *queue_head, *queue_tail; /* to the thread */
    struct storage_job *done_head, *done_tail;   /* back to the loop */
    bool stop;
    bool idle; /* the thread waits for jobs: a push must wake it */
    bool stalled;
    bool failed;
    struct cohort_err error;
    uint64_t syncs;
    uint64_t last_sync_us;
    struct retry retry;   /* retryable failures: backoff, the stall's start */
    uint64_t log_bytes;   /* wal_bytes_used() after the last round */
    uint64_t zero_chunks; /* wal_prepare() chunks written while idle */
    struct persister_metrics metrics;
};

/* What the loop may read of the storage thread's state. */
struct persister_state {
    bool stalled;
    bool failed;
    struct cohort_err error; /* why, when stalled or failed */
    uint64_t syncs;
    uint64_t last_sync_us;
    struct retry retry; /* the current stall (failures 0: none) */
    uint64_t log_bytes; /* wal_bytes_used() after the last round */
    uint64_t zero_chunks;
};

int persister_start(struct persister *p, struct wal *wal, struct meta *meta,
                    uv_async_t *async, struct cohort_err *err);
/* Finish queued jobs (unless failed or stalled), then stop the thread and
 * free whatever was not handed back. */
void persister_stop(struct persister *p);
/* Queue a job (the persister takes ownership). */
void persister_push(struct persister *p, struct storage_job *job);
/* Take the completed jobs (a list in queue order; the caller frees each). */
struct storage_job *persister_take_done(struct persister *p);
void persister_state(struct persister *p, struct persister_state *out);
/* A copy of the round histograms (a few KiB; for the metrics endpoint). */
void persister_metrics(struct persister *p, struct persister_metrics *out);

#endif
