/* vfs_fault — a struct vfs for tests that wraps another vfs (normally the
 * POSIX one on a mkdtemp directory) and injects the faults storage must
 * survive: the Nth write or sync fails with a chosen errno (EIO, ENOSPC),
 * the power goes off after N operations, and a crash throws away whatever
 * was not made durable, optionally keeping a torn prefix of it.
 *
 * The model (strict POSIX, stricter than ext4 in practice):
 *  (1) a file's contents are durable as of its last successful sync; writes,
 *      allocations and truncations after it are "unsynced";
 *  (2) a name created, renamed or unlinked is durable only after a
 *      successful sync_dir of its directory; directories themselves are
 *      durable at once (mkdir is not modelled);
 *  (3) vfs_fault_crash(f, keep, names) rebuilds the inner directory tree
 *      as it was durable, then replays the unsynced writes in the order they
 *      were made, keeping only the first `keep` bytes of them: keep 0 loses
 *      every unsynced byte, VFS_FAULT_KEEP_ALL keeps them all, anything in
 *      between tears one write in the middle;
 *  (4) likewise for names: of the creates, renames and unlinks not yet
 *      made durable, those whose bit is set in `names` (bit i: the i-th, in
 *      order; bit 63 also every later one) survive, in any combination: a
 *      disk may keep a later rename and lose an earlier unlink;
 *  (5) files that existed before the wrapper first saw them count as
 *      durable as they were then; a rename across directories becomes
 *      durable with its target directory.
 *
 * States: RUNNING -> POWERED_OFF (every mutating call fails with EIO) ->
 * vfs_fault_crash() -> RUNNING. A crash also kills every open handle: later
 * calls on it fail, vfs_close() still frees it.
 *
 * Mutating operations are: a create (open that makes a file), write,
 * allocate, truncate, sync, sync_dir, rename, unlink, mkdir. The countdowns
 * count "writes" (write, allocate, truncate) and "syncs" (sync, sync_dir)
 * separately; power_off counts every mutating operation. */
#ifndef COHORT_VFS_FAULT_H
#define COHORT_VFS_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/vfs.h"

#define VFS_FAULT_KEEP_ALL UINT64_MAX
#define VFS_FAULT_NAMES_NONE 0
#define VFS_FAULT_NAMES_ALL UINT64_MAX

struct vfs_fault_stats {
    uint64_t ops;    /* mutating operations attempted */
    uint64_t writes; /* write, allocate, truncate attempted */
    uint64_t syncs;  /* sync, sync_dir attempted */
    /* writeback hints passed on (pacing only: they make nothing durable
     * here, as on a real disk) */
    uint64_t writebacks;
    uint64_t writeback_waits;    /* of which asked to wait */
    uint64_t writeback_max_size; /* the largest range asked */
    /* the most bytes written to one file and not yet waited for by a
     * writeback or a sync (the writer's bound on dirty data) */
    uint64_t unwaited_max;
};

struct fault_inode;
struct fault_name;
struct fault_write;
struct fault_name_op;
struct fault_file;

/* The caller allocates it; every field is private to vfs_fault.c except
 * `vfs`, which is what storage code is given. */
struct vfs_fault {
    struct vfs vfs; /* first, so the vfs pointer is the fault vfs */
    struct vfs *inner;
    struct vfs_fault_stats stats;
    uint64_t fail_write_in; /* 0: off; N: the Nth write from now fails */
    int fail_write_errnum;
    uint64_t fail_sync_in;
    int fail_sync_errnum;
    uint64_t power_off_in; /* 0: off; N: N more operations succeed */
    bool powered_off;
    struct fault_inode *inodes;
    uint32_t inode_count, inode_cap;
    struct fault_name *names;
    uint32_t name_count, name_cap;
    struct fault_write *pending; /* unsynced writes, in the order made */
    uint32_t pending_count, pending_cap;
    struct fault_name_op *name_ops; /* undurable name changes, in order */
    uint32_t name_op_count, name_op_cap;
    struct fault_file *files; /* open handles */
};

void vfs_fault_init(struct vfs_fault *f, struct vfs *inner);
/* Frees the model; every handle must be closed first. */
void vfs_fault_deinit(struct vfs_fault *f);

/* The nth write (n >= 1; 1 is the next one) fails with errnum, writing
 * nothing. One shot. */
void vfs_fault_fail_write(struct vfs_fault *f, uint64_t nth, int errnum);
/* The nth sync or sync_dir fails with errnum; nothing becomes durable. */
void vfs_fault_fail_sync(struct vfs_fault *f, uint64_t nth, int errnum);
/* After n more mutating operations succeed, the power goes off: every later
 * one fails with EIO until vfs_fault_crash(). */
void vfs_fault_power_off_after(struct vfs_fault *f, uint64_t n);
/* Simulate a crash and restart, as described in the header comment. Returns
 * 0, or a negative code if the inner vfs failed while rebuilding. */
int vfs_fault_crash(struct vfs_fault *f, uint64_t keep_bytes,
                    uint64_t keep_names, struct cohort_err *err);

/* Bytes written since their file's last sync, over all files. */
uint64_t vfs_fault_unsynced_bytes(const struct vfs_fault *f);
/* Creates, renames and unlinks not yet made durable. */
uint32_t vfs_fault_unsynced_names(const struct vfs_fault *f);
const struct vfs_fault_stats *vfs_fault_stats(const struct vfs_fault *f);

#endif
