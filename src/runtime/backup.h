/* backup — an operator's backup: a consistent snapshot of the store, at the
 * op this replica has applied, written into <data-dir>/backup/ apart from
 * the replica's own snapshots, and read back in bounded pieces by `cohort
 * backup` (COHORT.BACKUP on the client port). It is written by a thread
 * from slices the loop takes of the store (the node's start hook, as its
 * own snapshots are), or by a forked child when that cannot start (the
 * store's one slicer is busy with the replica's own snapshot, or memory).
 *
 * The snapshot is taken from the driver outside the core's schedule
 * (driver_export): the core is not told, so its own snapshots and the
 * compaction of the log go on as before. The file has the same format as a
 * replica's snapshot (storage/snapshot, checksummed), so `cohort restore`
 * puts it as is into a new replica's snapshots/ directory.
 *
 * Invariants: (1) at most one backup job (thread or child) runs; (2) the
 * file of a backup that is DONE is complete and verified by the writer's
 * trailer (written, fdatasync'ed and renamed into place before the job
 * reports success); (3) the backup directory keeps the newest backup (the
 * writer deletes older snapshot files there) and, while someone may still
 * be copying it, the one before: a hard link BACKUP_PREVIOUS_NAME, which
 * that cleanup does not touch, made when the next backup starts and
 * removed once nobody has read it for BACKUP_PREVIOUS_KEEP_NS. So two
 * operators' `cohort backup` may overlap: the second waits for a running
 * one and then starts its own, and the first goes on copying its file.
 *
 * States: IDLE -> RUNNING (a thread or a child) -> DONE | FAILED ->
 * RUNNING ... */
#ifndef COHORT_RUNTIME_BACKUP_H
#define COHORT_RUNTIME_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "driver/driver.h"
#include "runtime/dirlock.h"
#include "runtime/snapshot_job.h"
#include "storage/vfs.h"

#define BACKUP_DIR_NAME "backup"
#define BACKUP_PREVIOUS_NAME "previous.backup"
#define BACKUP_PREVIOUS_KEEP_NS (60ull * 1000 * 1000 * 1000)

enum backup_state {
    BACKUP_IDLE = 0,
    BACKUP_RUNNING,
    BACKUP_DONE,
    BACKUP_FAILED,
};

struct backup {
    enum backup_state state;
    struct snapshot_job job;
    uint64_t op;                        /* RUNNING, DONE, FAILED */
    uint64_t size;                      /* DONE: the file's size */
    uint64_t started_ns, duration_us;   /* DONE: how long the child took */
    char dir[VFS_PATH_MAX];             /* <data-dir>/backup */
    char path[VFS_PATH_MAX];            /* DONE: the file */
    char error[COHORT_ERR_MESSAGE_MAX]; /* FAILED: why */
    /* The previous DONE backup, still readable (prev_op 0: none): its
     * op, size, file (the hard link) and when it was made or last read. */
    uint64_t prev_op, prev_size, prev_duration_us, prev_used_ns;
    char prev_path[VFS_PATH_MAX];
};

/* IDLE, with the backup directory under data_dir. */
int backup_init(struct backup *b, const char *data_dir, struct cohort_err *err);
/* Starts a thread on job that writes snap into the snapshot directory dir
 * (the node's slices of the store); false if it cannot (the caller forks
 * instead), with nothing left running. */
typedef bool (*backup_thread_fn)(void *ctx, const struct driver_snapshot *snap,
                                 struct snapshot_job *job, const char *dir);

/* Start a backup of the driver's state machine at the applied op: through
 * start_thread(thread_ctx, ...) if it is set and starts, else in a forked
 * child that writes state(state_ctx) (its bytes). *threaded says which.
 * If the latest backup is DONE at the applied op, its file holds exactly
 * that state: nothing starts, 0 with the state left DONE (so overlapping
 * requests on a quiet group share one file instead of rewriting it under
 * a reader).
 * -COHORT_EAGAIN if one runs or nothing was applied yet, -COHORT_EIO if no
 * child could start; err says which. now_ns is the monotonic clock. */
int backup_start(struct backup *b, struct driver *d, struct dirlock *lock,
                 backup_thread_fn start_thread, void *thread_ctx,
                 driver_state_fn state, void *state_ctx, uint64_t now_ns,
                 bool *threaded, struct cohort_err *err);
/* After SIGCHLD, or on a tick while a thread runs (b->job.thread_running):
 * if the job ended, RUNNING -> DONE or FAILED and true. */
bool backup_reap(struct backup *b, uint64_t now_ns);
/* The finished backup of op, the latest or the previous one: its file's
 * path and size, and true; the previous is kept BACKUP_PREVIOUS_KEEP_NS
 * from now_ns (a read). False if neither is op. */
bool backup_find(struct backup *b, uint64_t op, uint64_t now_ns,
                 const char **path, uint64_t *size);
/* On a tick: remove the previous backup once unread for
 * BACKUP_PREVIOUS_KEEP_NS. */
void backup_expire_previous(struct backup *b, uint64_t now_ns);
/* Stop a running job: kill a child, join a thread (closing; the caller
 * first ends what the thread reads). */
void backup_stop(struct backup *b);
const char *backup_state_name(enum backup_state state);

#endif
