/* batch — one round of group commit over the write-ahead log and the
 * metadata: the storage work a driver queues for a replica (storage jobs),
 * carried out by whoever runs the disk: the runtime's storage thread
 * (runtime/persister) or the simulator's virtual disk (sim/cluster), with the
 * same code.
 *
 * A round takes a list of jobs in the order they were queued, appends every
 * log entry (no I/O), writes the metadata jobs in order (each crash-atomic
 * and synced), then makes the log entries durable with ONE wal_sync() (one
 * fdatasync). Metadata goes first so that a crash in between never leaves
 * log records of a view whose metadata is missing. Compactions and resets
 * take effect in their place in the list.
 *
 * The round also keeps the metadata's log end bound (meta.h) true: every
 * metadata record it writes carries the wal's durable op (as of before the
 * round's sync); a round that started a segment raises the bound after its
 * sync (a metadata write of its own); and before a sync that takes the
 * durable log below the bound (a suffix replacement, a reset), it lowers
 * it first.
 *
 * A compaction that carries checkpoints hands them to the round, which
 * writes them to the data directory (the metadata file's) only in
 * storage_batch_finish(), after the caller has reported the round's jobs
 * complete: the file (two more fsyncs) never delays an acknowledgement.
 * It is advisory (checkpoint_file.h), so failing to write it fails
 * nothing.
 *
 * Invariants: (1) a job is reported complete only after everything it asked
 * for is durable; (2) a round is resumable: after a retryable failure (a
 * full disk, an I/O error on a write) calling storage_batch_run() again
 * with the same batch goes on from where it stopped and never appends an
 * entry twice; (3) after a failed fdatasync the round fails for good
 * (wal or meta FAILED): the caller must stop using the files.
 *
 * States: NEW -> APPENDED -> META_WRITTEN -> SYNCED -> DONE, or FAILED from
 * any. */
#ifndef COHORT_STORAGE_BATCH_H
#define COHORT_STORAGE_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/entry.h"
#include "common/err.h"
#include "storage/meta.h"
#include "storage/wal.h"

enum storage_job_type {
    STORAGE_PERSIST = 1, /* append entries (replacing a suffix) */
    STORAGE_META,        /* write the metadata record */
    STORAGE_COMPACT,     /* drop log segments up to compact_op */
    STORAGE_RESET, /* empty the log down to a snapshot installed past it */
};

struct storage_job {
    struct storage_job *next;
    enum storage_job_type type;
    /* PERSIST: entries op_first..op_last (copies, bodies in `bytes`);
     * op_last == op_first - 1 with no entries: truncate after op_last,
     * whose checksum is `checksum`. The completion echoes op_last and
     * checksum. RESET: op_last and checksum are the snapshot's. */
    uint64_t op_first, op_last, checksum;
    uint64_t commit; /* PERSIST: the op committed when queued (wal.h) */
    struct entry *entries;
    uint32_t entry_count;
    uint8_t *bytes;
    /* META */
    uint64_t seq;
    struct meta_record meta;
    /* COMPACT; snapshot_op is the newest durable snapshot's (above
     * compact_op, which keeps some log for lagging peers). */
    uint64_t compact_op;
    uint64_t snapshot_op;
    /* COMPACT, optional: the encoded checkpoints (checkpoint_file.h), for
     * the data directory's file once the log is compacted. */
    uint8_t *checkpoints;
    size_t checkpoints_size;
    /* PERSIST: its completion was already reported (a deliberate bug,
     * BUG_STORAGE_ACK_EARLY: the driver skips the real one). */
    bool acked_early;
};

/* A new job of the given type (zeroed); never NULL (aborts when out of
 * memory, as the hot path cannot do anything better). */
struct storage_job *storage_job_new(enum storage_job_type type);
/* Free a job and its entries. */
void storage_job_free(struct storage_job *job);
/* Free a whole list. */
void storage_job_free_list(struct storage_job *list);

enum storage_batch_state {
    STORAGE_BATCH_NEW = 0,
    STORAGE_BATCH_APPENDED,
    STORAGE_BATCH_META_WRITTEN,
    STORAGE_BATCH_SYNCED,
    STORAGE_BATCH_DONE,
    STORAGE_BATCH_FAILED,
};

struct storage_batch {
    struct storage_job *jobs; /* borrowed list, in queue order */
    enum storage_batch_state state;
    struct storage_job *meta_next; /* the next META job to write */
    bool need_sync;
    bool meta_written;                  /* a META job was written this round */
    struct wal_position durable_before; /* wal_durable() before the round */
    uint64_t segments_before; /* wal_segments_created() before the sync */
    uint64_t sync_us;         /* filled in by the caller if it times the sync */
    /* The newest compaction's encoded checkpoints, taken from its job
     * (owned; storage_batch_finish() writes and frees them). */
    uint8_t *checkpoints;
    size_t checkpoints_size;
};

void storage_batch_init(struct storage_batch *b, struct storage_job *jobs);

/* Run (or resume) the round on wal and meta. Returns 0 when every job is
 * durable; -COHORT_EAGAIN when a retryable error stopped it (err names the
 * file and the fault; call again later, e.g. once space is free); any other
 * negative code when it failed for good (err says why; FAILED). */
int storage_batch_run(struct storage_batch *b, struct wal *wal,
                      struct meta *meta, struct cohort_err *err);

/* Every round ends here, whatever its outcome: a round that is DONE writes
 * the checkpoints file of its compaction (call it after reporting the
 * jobs complete; it must come before the next round, whose compaction
 * would write a newer one); any other, or a NULL meta, just frees what it
 * holds. */
void storage_batch_finish(struct storage_batch *b, const struct meta *meta);

#endif
