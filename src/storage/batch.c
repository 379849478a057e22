/* batch — one group-commit round over the wal and the metadata. See
 * batch.h. */
#include "storage/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

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
 * replaces the suffix from there. A job with no entries empties the log
 * (nothing is kept above the snapshot). No I/O. */
static int append_job(struct wal *wal, const struct storage_job *job,
                      struct cohort_err *err)
{
    if (job->entry_count == 0) {
        wal_reset(wal);
        return 0;
    }
    for (uint32_t i = 0; i < job->entry_count; i++) {
        int rc = wal_append(wal, &job->entries[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Every log change of the round, in queue order. */
static int append_all(struct storage_batch *b, struct wal *wal,
                      struct cohort_err *err)
{
    for (struct storage_job *j = b->jobs; j; j = j->next) {
        int rc = 0;
        switch (j->type) {
        case STORAGE_PERSIST:
            rc = append_job(wal, j, err);
            b->need_sync = true;
            break;
        case STORAGE_COMPACT:
            rc = wal_compact(wal, j->compact_op, err);
            break;
        case STORAGE_RESET:
            wal_reset(wal);
            b->need_sync = true;
            break;
        case STORAGE_META:
            break;
        }
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

int storage_batch_run(struct storage_batch *b, struct wal *wal,
                      struct meta *meta, struct cohort_err *err)
{
    ASSERT(b->state != STORAGE_BATCH_DONE);
    if (b->state == STORAGE_BATCH_FAILED)
        return err_set(err, -COHORT_EIO, "storage failed earlier");
    if (b->state == STORAGE_BATCH_NEW) {
        /* Appends change only memory: an error here (a record larger
         * than a segment, no memory, a FAILED wal) is final. */
        int rc = append_all(b, wal, err);
        if (rc < 0) {
            b->state = STORAGE_BATCH_FAILED;
            return rc == -COHORT_EAGAIN ? -COHORT_EIO : rc;
        }
        b->state = STORAGE_BATCH_APPENDED;
        b->meta_next = b->jobs;
    }
    if (b->state == STORAGE_BATCH_APPENDED) {
        if (b->need_sync) {
            int rc = wal_sync(wal, NULL, err);
            if (rc < 0) {
                rc = classify(rc, wal_state(wal) == WAL_FAILED);
                if (rc != -COHORT_EAGAIN)
                    b->state = STORAGE_BATCH_FAILED;
                return rc;
            }
        }
        b->state = STORAGE_BATCH_SYNCED;
    }
    for (; b->meta_next; b->meta_next = b->meta_next->next) {
        if (b->meta_next->type != STORAGE_META)
            continue;
        int rc = meta_write(meta, &b->meta_next->meta, err);
        if (rc < 0) {
            rc = classify(rc, meta->state == META_FAILED);
            if (rc != -COHORT_EAGAIN)
                b->state = STORAGE_BATCH_FAILED;
            return rc;
        }
    }
    b->state = STORAGE_BATCH_DONE;
    return 0;
}
