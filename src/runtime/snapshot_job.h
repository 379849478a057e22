/* snapshot_job — the forked child that writes a snapshot (the runtime's
 * background snapshot writer for the driver).
 *
 * A snapshot is written by a child process (fork: copy-on-write, the store
 * as it was at the fork, as Redis does) at nice 10. The child first lets go
 * of what it must not keep: its copy of the data directory's lock
 * (dirlock_forget_in_child(): the lock must die with the replica, not with
 * its last child) and its life past the parent's (PR_SET_PDEATHSIG: an
 * orphan would go on writing snapshot files under a restarted replica). A
 * child that fails writes its one-line error into a pipe and exits 1; the
 * parent reads it when it reaps the child. The pace of attempts after a
 * failure is the driver's (driver/transfer.c).
 *
 * States: IDLE -> RUNNING (a child) -> IDLE (reaped, or stopped). */
#ifndef COHORT_SNAPSHOT_JOB_H
#define COHORT_SNAPSHOT_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "runtime/dirlock.h"

struct snapshot_job {
    pid_t child;  /* 0: IDLE */
    int error_fd; /* RUNNING: read end of the child's error pipe */
    uint64_t op;  /* RUNNING: the snapshot's op */
};

/* Runs in the child: write the snapshot; 0 or a negative code with err. */
typedef int (*snapshot_job_write_fn)(void *ctx, struct cohort_err *err);

void snapshot_job_init(struct snapshot_job *j);
/* Fork a child (IDLE only) that forgets lock, runs write(ctx) and exits.
 * False if none could start: error (capacity size) says why. */
bool snapshot_job_start(struct snapshot_job *j, uint64_t op,
                        struct dirlock *lock, snapshot_job_write_fn write,
                        void *ctx, char *error, size_t size);
/* After SIGCHLD: if the child exited, reap it and return true with its op,
 * whether it wrote the snapshot, and if not why (error, capacity size). */
bool snapshot_job_reap(struct snapshot_job *j, uint64_t *op, bool *ok,
                       char *error, size_t size);
bool snapshot_job_running(const struct snapshot_job *j);
/* Kill and reap a running child (closing). */
void snapshot_job_stop(struct snapshot_job *j);

#endif
