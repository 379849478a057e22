/* snapshot_vfs — the vfs a snapshot thread (runtime/snapshot_job) writes
 * through: every descriptor it uses was opened by the loop before the
 * thread started, and the loop closes what is left after joining it.
 *
 * Why: libuv closes its sockets with a raw close syscall, which
 * ThreadSanitizer does not see, so a descriptor number the thread got from
 * open(2) could be one the loop had just read from; the checker reports
 * that reuse as a race and stops the replica. A descriptor opened by the
 * loop reaches the thread through pthread_create, which orders the two,
 * and the thread's close(2) is seen. The rule also keeps the thread's file
 * work to one directory and one file, which is all a snapshot needs.
 *
 * What it holds: one directory (opened for fsync and listing) and one new
 * file in it (created exclusively, after removing a leftover of the same
 * name). Through it the thread may: open that file (once; an unlink of it
 * before then is a no-op, since it is already fresh), read, write, sync
 * and close files, rename and unlink names, mkdir (of the directory:
 * already there), and sync or list the directory. Any other open, sync or
 * listing fails with -COHORT_EINVAL naming the path, so code that would
 * open a descriptor in the thread fails its tests instead of a sanitizer
 * run.
 *
 * States: CLOSED -> OPEN (snapshot_vfs_open, in the loop) -> in use by the
 * thread -> CLOSED (snapshot_vfs_close, in the loop, after the join). */
#ifndef COHORT_SNAPSHOT_VFS_H
#define COHORT_SNAPSHOT_VFS_H

#include <dirent.h>
#include <stdbool.h>

#include "storage/vfs.h"

struct snapshot_vfs {
    struct vfs vfs; /* first: the ops the thread calls */
    struct vfs *base;
    char dir[VFS_PATH_MAX];
    char file_path[VFS_PATH_MAX];
    DIR *dirp;             /* OPEN: the directory */
    struct vfs_file *file; /* OPEN: the file, until the thread closes it */
    bool file_handed_out;  /* the thread opened it */
};

/* In the loop: create dir if missing (durably), open it, and create
 * file_path (a name in dir) afresh through base. 0, or a negative code
 * with err; nothing stays open on failure. */
int snapshot_vfs_open(struct snapshot_vfs *s, struct vfs *base, const char *dir,
                      const char *file_path, struct cohort_err *err);
/* In the loop, once the thread is gone: close what it left open. A file
 * the thread never opened is unlinked. Safe on a CLOSED one. */
void snapshot_vfs_close(struct snapshot_vfs *s);

#endif
