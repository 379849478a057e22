/* batch — one group-commit round over the wal and the metadata. See
 * batch.h. */
#include "storage/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "storage/checkpoint_file.h"

struct storage_job *storage_job_new(enum storage_job_type type)
{
    struct storage_job *job = calloc(1, sizeof(*job));
    ASSERT(job);
    job->type = type;
    return job;
}

void storage_job_free(struct storage_job *job)
{
    if (!job)
        return;
    free(job->entries);
    free(job->bytes);
    free(job->checkpoints);
    free(job);
}

void storage_job_free_list(struct storage_job *list)
{
    while (list) {
        struct storage_job *next = list->next;
        storage_job_free(list);
        list = next;
    }
}

void storage_batch_init(struct storage_batch *b, struct storage_job *jobs)
{
    memset(b, 0, sizeof(*b));
    b->jobs = jobs;
}

/* Append a PERSIST job's entries; appending an op the wal already holds
 * replaces the suffix from there. A PERSIST with no entries drops the ops
 * after op_last, which stays where it is (rewriting it would leave it not
 * durable for a moment: a crash then would lose an op this replica may
 * have acknowledged). A RESET empties the log down to op_last, the
 * snapshot's op (nothing is kept above the snapshot). No I/O. */
static int append_job(struct wal *wal, const struct storage_job *job,
                      struct cohort_err *err)
{
    struct wal_position last = {job->op_last, job->checksum};
    if (job->type == STORAGE_RESET) {
        wal_reset(wal, &last);
        return 0;
    }
    if (job->entry_count == 0) {
        wal_truncate_after(wal, &last);
        return 0;
    }
    for (uint32_t i = 0; i < job->entry_count; i++) {
        int rc = wal_append(wal, &job->entries[i], job->commit, err);
        ASSERT(rc <= 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A compaction's checkpoints pass to the round, to be written once its
 * jobs are complete (storage_batch_finish()); of two compactions in one
 * round the later one's, which include the earlier's. */
static void take_checkpoints(struct storage_batch *b, struct storage_job *j)
{
    if (!j->checkpoints)
        return;
    free(b->checkpoints);
    b->checkpoints = j->checkpoints;
    b->checkpoints_size = j->checkpoints_size;
    j->checkpoints = NULL;
    j->checkpoints_size = 0;
}

void storage_batch_finish(struct storage_batch *b, const struct meta *meta)
{
    if (b->checkpoints && b->state == STORAGE_BATCH_DONE && meta && meta->vfs) {
        /* Advisory (checkpoint_file.h): a failure is left for the next
         * compaction to mend. */
        char dir[VFS_PATH_MAX];
        vfs_path_dir(dir, meta->path);
        struct cohort_err ignored;
        err_clear(&ignored);
        (void)checkpoint_file_write(meta->vfs, dir, b->checkpoints,
                                    b->checkpoints_size, &ignored);
    }
    free(b->checkpoints);
    b->checkpoints = NULL;
    b->checkpoints_size = 0;
}

/* Every log change of the round, in queue order. */
static int append_all(struct storage_batch *b, struct wal *wal,
                      struct cohort_err *err)
{
    for (struct storage_job *j = b->jobs; j; j = j->next) {
        int rc = 0;
        switch (j->type) {
        case STORAGE_PERSIST:
        case STORAGE_RESET:
            rc = append_job(wal, j, err);
            b->need_sync = true;
            /* wal_append() fails on a wal that is not OPEN. */
            ASSERT(rc < 0 || j->entry_count == 0 || wal_state(wal) == WAL_OPEN);
            break;
        case STORAGE_COMPACT:
            wal_note_snapshot(wal, j->snapshot_op);
            rc = wal_compact(wal, j->compact_op, err);
            /* Likewise, and a failed directory fsync returns an error. */
            ASSERT(rc < 0 || wal_state(wal) == WAL_OPEN);
            if (rc == 0)
                take_checkpoints(b, j);
            break;
        case STORAGE_META:
            break;
        }
        ASSERT(rc <= 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A failure of a write (ENOSPC, EIO) leaves the files as they were before
 * it and may be retried; a failed sync leaves the file FAILED. */
static int classify(int rc, bool failed)
{
    ASSERT(rc < 0);
    if (failed)
        return rc == -COHORT_EAGAIN ? -COHORT_EIO : rc;
    return -COHORT_EAGAIN;
}

/* The metadata's log end bound never exceeds what the log will hold
 * (meta.h): before a sync that takes the durable log below it (a suffix
 * replacement or a reset, appended already), lower it, durably. */
static int bound_lower(struct wal *wal, struct meta *meta,
                       struct cohort_err *err)
{
    struct wal_position durable = wal_durable(wal);
    if (meta_seq(meta) == 0 || meta_log_end_min(meta) <= durable.op)
        return 0;
    int rc = meta_write_log_end(meta, durable.op, durable.checksum, err);
    return rc < 0 ? classify(rc, meta->state == META_FAILED) : 0;
}

/* After a round in which the wal started a segment, or wrote metadata
 * (which carries the op from before the sync), or in which the durable log
 * passed the newest snapshot while the bound had not: raise the bound to
 * the durable op, so that it covers the first records of the newest
 * segment and passes the snapshot (losing that segment then shows; with
 * the bound at or below the snapshot, recovery took a lost segment holding
 * ops above the snapshot for ops the snapshot covers, and came back
 * without them). A failed write only leaves the bound lower: no harm,
 * unless meta is FAILED. */
static int bound_raise(struct storage_batch *b, struct wal *wal,
                       struct meta *meta, struct cohort_err *err)
{
    struct wal_position durable = wal_durable(wal);
    uint64_t snapshot = wal_snapshot_op(wal);
    bool behind = b->meta_written ||
                  wal_segments_created(wal) != b->segments_before ||
                  (meta_log_end_min(meta) <= snapshot && durable.op > snapshot);
    if (!behind || meta_seq(meta) == 0 || meta_log_end_min(meta) >= durable.op)
        return 0;
    int rc = meta_write_log_end(meta, durable.op, durable.checksum, err);
    return rc < 0 && meta->state == META_FAILED ? rc : 0;
}

/* Write the round's metadata records, in order, from where a retry left
 * off. Each carries the wal's durable op as the log end bound. */
static int write_meta(struct storage_batch *b, struct wal *wal,
                      struct meta *meta, struct cohort_err *err)
{
    for (; b->meta_next; b->meta_next = b->meta_next->next) {
        if (b->meta_next->type != STORAGE_META)
            continue;
        /* Written before the sync: the log on disk may still end where
         * it ended before the round, or already where the round takes
         * it. */
        struct wal_position durable = wal_durable(wal);
        if (b->durable_before.op < durable.op)
            durable = b->durable_before;
        b->meta_next->meta.log_end_min = durable.op;
        b->meta_next->meta.log_end_check =
            durable.op ? (uint32_t)durable.checksum : 0;
        int rc = meta_write(meta, &b->meta_next->meta, err);
        if (rc < 0)
            return classify(rc, meta->state == META_FAILED);
        b->meta_written = true;
    }
    return 0;
}

int storage_batch_run(struct storage_batch *b, struct wal *wal,
                      struct meta *meta, struct cohort_err *err)
{
    ASSERT(b->state != STORAGE_BATCH_DONE);
    if (b->state == STORAGE_BATCH_FAILED)
        return err_set(err, -COHORT_EIO, "storage failed earlier");
    if (b->state == STORAGE_BATCH_NEW) {
        /* Appends change only memory: an error here (a record larger
         * than a segment, no memory, a FAILED wal) is final. */
        b->durable_before = wal_durable(wal);
        int rc = append_all(b, wal, err);
        if (rc < 0) {
            b->state = STORAGE_BATCH_FAILED;
            return rc == -COHORT_EAGAIN ? -COHORT_EIO : rc;
        }
        b->state = STORAGE_BATCH_APPENDED;
        b->meta_next = b->jobs;
        b->segments_before = wal_segments_created(wal);
    }
    int rc = 0;
    if (b->state == STORAGE_BATCH_APPENDED) {
        /* The bound first (before a sync takes the log below it), then the
         * metadata, then the log: a crash in between never leaves log
         * records of a view whose metadata is missing, which recovery
         * must take for lost metadata. */
        if (b->need_sync)
            rc = bound_lower(wal, meta, err);
        if (rc == 0)
            rc = write_meta(b, wal, meta, err);
        if (rc < 0) {
            if (rc != -COHORT_EAGAIN)
                b->state = STORAGE_BATCH_FAILED;
            return rc;
        }
        b->state = STORAGE_BATCH_META_WRITTEN;
    }
    if (b->state == STORAGE_BATCH_META_WRITTEN) {
        if (b->need_sync) {
            rc = wal_sync(wal, NULL, err);
            if (rc < 0) {
                rc = classify(rc, wal_state(wal) == WAL_FAILED);
                if (rc != -COHORT_EAGAIN)
                    b->state = STORAGE_BATCH_FAILED;
                return rc;
            }
        }
        b->state = STORAGE_BATCH_SYNCED;
    }
    rc = bound_raise(b, wal, meta, err);
    if (rc < 0) {
        b->state = STORAGE_BATCH_FAILED;
        return rc;
    }
    b->state = STORAGE_BATCH_DONE;
    return 0;
}
