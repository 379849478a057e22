/* dirlock — one process per data directory.
 *
 * A replica holds an exclusive flock(2) on <data-dir>/LOCK for its whole
 * life and writes its PID into the file, so a second `cohort server`
 * pointed at the same directory refuses to start with one line naming the
 * holder. The kernel drops the lock when the holder's last descriptor for
 * the file closes, i.e. when it exits, however it dies: a stale LOCK file
 * (a dead PID in it) never blocks a restart.
 *
 * Forks: a flock belongs to the open file description, which a forked child
 * shares. The snapshot child must therefore close its copy first thing
 * (dirlock_forget_in_child()): otherwise a child still writing when the
 * parent is killed would keep the directory locked, and the restart would
 * be refused in the name of a dead PID. Closing the child's copy does not
 * release the parent's lock (the parent's descriptor still refers to the
 * description). The descriptor is O_CLOEXEC, so an exec'd program never
 * inherits it.
 *
 * Invariants: (1) while a struct dirlock is held, no other process (and no
 * other dirlock in this process) holds <dir>/LOCK; (2) the PID in the file
 * is the holder's, once dirlock_acquire() returned 0. */
#ifndef COHORT_DIRLOCK_H
#define COHORT_DIRLOCK_H

#include <stdbool.h>

#include "common/err.h"

#define DIRLOCK_FILE "LOCK"

struct dirlock {
    int fd; /* -1: not held */
};

/* Lock dir, creating it (and its parents, durably, mode 0700) if missing.
 * On failure
 * returns -COHORT_ECONFIG with a line naming the holder's PID and the fix,
 * or an I/O error. */
int dirlock_acquire(struct dirlock *lock, const char *dir,
                    struct cohort_err *err);
/* Release (closing the file drops the lock). Safe on a lock never held. */
void dirlock_release(struct dirlock *lock);
/* In a forked child: close the child's copy of the descriptor, so that the
 * lock lives exactly as long as the process that took it. */
void dirlock_forget_in_child(struct dirlock *lock);
/* dir's permission bits if other users have any access to it (group or
 * other bits set: they may read the log and snapshots), else 0. */
unsigned dirlock_loose_mode(const char *dir);

#endif
