/* snapshot_job — the thread, or the forked child, that writes a snapshot
 * (the runtime's background snapshot writer for the driver).
 *
 * A snapshot can be written by a child process (fork: copy-on-write, the store
 * as it was at the fork, as Redis does) at nice 10. The child first lets go
 * of what it must not keep: its copy of the data directory's lock
 * (dirlock_forget_in_child(): the lock must die with the replica, not with
 * its last child) and its life past the parent's (PR_SET_PDEATHSIG: an
 * orphan would go on writing snapshot files under a restarted replica). A
 * child that fails writes its one-line error into a pipe and exits 1; the
 * parent reads it when it reaps the child. The pace of attempts after a
 * failure is the driver's (driver/transfer.c).
 *
 * Snapshots are normally written by a thread instead
 * (snapshot_job_start_thread): the caller serializes the store in slices
 * across loop turns, as of one op (kv_snapshot_begin), and streams them to
 * the thread (runtime/snapshot_stream), which at nice 10 writes them to the
 * file as they come; the fork is left for when a thread cannot start. No
 * fork: a fork stalls the loop (page tables), and then
 * every page of the store the replica writes while the child lives takes a
 * copy-on-write fault. On the 2-core VM of bench/RESULTS.md those faults
 * (~2,600 per snapshot of a 10,000-key store, each with a TLB shootdown)
 * were what made writes slow during snapshots (issue 16). The thread touches
 * only the copy it was given (ctx), never the store or the driver, and opens no
 * file descriptor (the node hands it runtime/snapshot_vfs); reaping joins
 * it and hands ctx back to release().
 *
 * States: IDLE -> RUNNING (a child or a thread) -> IDLE (reaped, or
 * stopped). */
#ifndef COHORT_SNAPSHOT_JOB_H
#define COHORT_SNAPSHOT_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "runtime/dirlock.h"

/* Runs in the child or the thread: write the snapshot; 0 or a negative
 * code with err. */
typedef int (*snapshot_job_write_fn)(void *ctx, struct cohort_err *err);

struct snapshot_job {
    pid_t child;  /* 0: no child */
    int error_fd; /* a child: read end of the child's error pipe */
    uint64_t op;  /* RUNNING: the snapshot's op */
    /* A thread (snapshot_job_start_thread). */
    bool thread_running;
    pthread_t thread;
    atomic_bool thread_done; /* set by the thread as its last act */
    snapshot_job_write_fn thread_write;
    void *thread_ctx;
    void (*thread_release)(void *ctx);
    int thread_rc;
    struct cohort_err thread_err;
};

void snapshot_job_init(struct snapshot_job *j);
/* Fork a child (IDLE only) that forgets lock, runs write(ctx) and exits.
 * False if none could start: error (capacity size) says why. */
bool snapshot_job_start(struct snapshot_job *j, uint64_t op,
                        struct dirlock *lock, snapshot_job_write_fn write,
                        void *ctx, char *error, size_t size);
/* Start a thread (IDLE only) that runs write(ctx) at nice 10. ctx must be
 * the thread's alone until the reap, which calls release(ctx) (may be
 * NULL). False if none could start (then release(ctx) was called): error
 * says why. */
bool snapshot_job_start_thread(struct snapshot_job *j, uint64_t op,
                               snapshot_job_write_fn write, void *ctx,
                               void (*release)(void *ctx), char *error,
                               size_t size);
/* After SIGCHLD, or polled: if the child exited (or the thread finished),
 * reap it and return true with its op, whether it wrote the snapshot, and
 * if not why (error, capacity size). */
bool snapshot_job_reap(struct snapshot_job *j, uint64_t *op, bool *ok,
                       char *error, size_t size);
bool snapshot_job_running(const struct snapshot_job *j);
/* Kill and reap a running child, or wait for a running thread (closing). */
void snapshot_job_stop(struct snapshot_job *j);

#endif
