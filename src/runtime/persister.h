/* persister — the storage thread: appends log entries and writes metadata
 * off the event loop, with group commit: it takes every job queued since its
 * last round, appends all log entries, makes them durable with ONE
 * fdatasync (wal_sync), writes any metadata, and hands the completions back
 * to the loop through a uv_async_t, in the order the jobs were queued.
 *
 * Jobs: PERSIST (entries to append; an empty one truncates), META, COMPACT,
 * RESET (empty the log after a snapshot was installed past it).
 *
 * Failure: a failed write (ENOSPC, EIO) is retried every 100 ms, with
 * `stalled` set so the node can refuse new writes with a clear error; a
 * failed fdatasync leaves the wal FAILED and the persister `failed`: the
 * node must stop (after an fsync error nobody knows what reached the disk).
 */
#ifndef COHORT_PERSISTER_H
#define COHORT_PERSISTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"
#include "core/replica.h"
#include "storage/meta.h"
#include "storage/wal.h"

enum persist_job_type {
    PJOB_PERSIST = 1,
    PJOB_META,
    PJOB_COMPACT,
    PJOB_RESET,
};

struct persist_job {
    struct persist_job *next;
    enum persist_job_type type;
    /* PERSIST: entries op_first..op_last (copies, bodies in `bytes`);
     * op_last == op_first - 1 with no entries: truncate after op_last. */
    uint64_t op_first, op_last, checksum;
    struct entry *entries;
    uint32_t entry_count;
    uint8_t *bytes;
    /* META */
    uint64_t seq;
    struct meta_record meta;
    /* COMPACT */
    uint64_t compact_op;
};

struct persister {
    struct wal *wal;   /* borrowed; owned by the node */
    struct meta *meta; /* borrowed */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct persist_job *queue_head, *queue_tail; /* to the thread */
    struct persist_job *done_head, *done_tail;   /* back to the loop */
    uv_async_t *async;                           /* signals done jobs */
    bool stop;
    bool started;
    /* Written by the thread under lock, read by the loop. */
    bool stalled;
    bool failed;
    struct cohort_err error;
    uint64_t syncs;
    uint64_t last_sync_us;
};

int persister_start(struct persister *p, struct wal *wal, struct meta *meta,
                    uv_async_t *async, struct cohort_err *err);
/* Finish queued jobs, then stop the thread. */
void persister_stop(struct persister *p);
/* Queue a job (the persister takes ownership). */
void persister_push(struct persister *p, struct persist_job *job);
/* Take the completed jobs (a list in queue order; the caller frees each
 * with persist_job_free()). */
struct persist_job *persister_take_done(struct persister *p);
void persist_job_free(struct persist_job *job);

/* Build a PERSIST job by copying entries op_first..op_last from r. */
struct persist_job *persist_job_entries(const struct replica *r,
                                        uint64_t op_first, uint64_t op_last,
                                        uint64_t checksum);

#endif
