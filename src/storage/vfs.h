/* vfs — the small file interface through which all storage code (wal, meta,
 * snapshot) reaches the disk. Two implementations: vfs_posix.c (the real
 * files) and vfs_fault.c (a wrapper for tests that fails the Nth write or
 * sync, returns ENOSPC, and on a simulated crash throws away what was never
 * synced). Storage code never calls open(2) or friends directly, so every
 * crash and fault path can be driven from a unit test.
 *
 * Durability model the callers must respect (the fault vfs enforces it):
 *  (1) bytes written to a file are durable only after vfs_sync() of that
 *      file returned 0; the file's size counts as data (fdatasync);
 *  (2) a created, renamed or unlinked name is durable only after
 *      vfs_sync_dir() of its directory returned 0;
 *  (3) after a failed vfs_sync() nothing is known about the file's contents
 *      (Linux may have dropped the dirty pages): callers stop using it.
 *
 * vfs_writeback() is optional: a vfs without it (NULL) does nothing.
 *
 * Every operation returns 0 or a negative COHORT_E* code and fills err with
 * one line naming the path (and the offset for reads and writes). A missing
 * file or directory is -COHORT_ENOTFOUND, an existing one where none was
 * expected -COHORT_EEXIST, a full disk -COHORT_ENOSPC, anything else
 * -COHORT_EIO.
 *
 * Files are struct vfs_file handles, opaque to callers; each implementation
 * casts its own struct to and from this tag. A handle belongs to the vfs
 * that opened it and is not shared between threads. */
#ifndef COHORT_VFS_H
#define COHORT_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The longest path storage builds (directory + file name), with the NUL. */
#define VFS_PATH_MAX 1024
/* What the posix vfs creates: data is for the server's user alone (the log
 * and snapshots hold every value). */
#define VFS_FILE_MODE 0600
#define VFS_DIR_MODE 0700

enum vfs_open_flags {
    VFS_CREATE = 1,    /* create the file if it does not exist */
    VFS_EXCLUSIVE = 2, /* with VFS_CREATE: fail with EEXIST if it exists */
    VFS_READ_ONLY = 4, /* open for reading only */
};

struct vfs_file;
struct vfs;

/* Called by vfs_list() for every name in a directory ("." and ".." left
 * out), in no particular order. A nonzero return stops the listing and is
 * returned by vfs_list(). */
typedef int (*vfs_list_fn)(void *ctx, const char *name);

struct vfs {
    int (*open)(struct vfs *vfs, const char *path, int flags,
                struct vfs_file **file, struct cohort_err *err);
    /* Never fails; the handle is gone afterwards. */
    void (*close)(struct vfs *vfs, struct vfs_file *file);
    /* Read up to size bytes at offset; *done is less than size only at the
     * end of the file. */
    int (*read)(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                void *buf, size_t size, size_t *done, struct cohort_err *err);
    /* Write all size bytes at offset, or fail (then any part of them may
     * have been written). */
    int (*write)(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                 const void *buf, size_t size, struct cohort_err *err);
    /* fdatasync: the file's data and size are durable when this returns 0. */
    int (*sync)(struct vfs *vfs, struct vfs_file *file, struct cohort_err *err);
    /* Make the file at least size bytes long with its blocks reserved, so
     * that later writes below size neither fail for space nor change the
     * size. New bytes read as zero. */
    int (*allocate)(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                    struct cohort_err *err);
    /* Set the file's size; bytes past it are gone, new bytes read zero. */
    int (*truncate)(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                    struct cohort_err *err);
    int (*size)(struct vfs *vfs, struct vfs_file *file, uint64_t *size,
                struct cohort_err *err);
    /* Atomically replace `to` (if it exists) by `from`. */
    int (*rename)(struct vfs *vfs, const char *from, const char *to,
                  struct cohort_err *err);
    int (*unlink)(struct vfs *vfs, const char *path, struct cohort_err *err);
    /* Create a directory; -COHORT_EEXIST if it already exists. */
    int (*mkdir)(struct vfs *vfs, const char *path, struct cohort_err *err);
    /* fsync the directory: names created, renamed or unlinked in it are
     * durable when this returns 0. */
    int (*sync_dir)(struct vfs *vfs, const char *path, struct cohort_err *err);
    int (*list)(struct vfs *vfs, const char *path, vfs_list_fn fn, void *ctx,
                struct cohort_err *err);
    /* Optional (NULL: nothing to do). Start writing the file's dirty bytes
     * in [offset, offset + size) to the disk (sync_file_range), and if wait,
     * return only once they are written. Pacing, never durability: it
     * neither covers the size nor flushes the disk's cache, so only sync()
     * makes bytes durable. A failure means what a failed sync() means (3):
     * Linux reports a writeback error once per open file, so the sync()
     * after it would not see it again. */
    int (*writeback)(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                     uint64_t size, bool wait, struct cohort_err *err);
};

/* The process-wide POSIX implementation (open/pread/pwrite/fdatasync/
 * posix_fallocate/rename/unlink/fsync of the directory/readdir). */
struct vfs *vfs_posix(void);

/* Call-through helpers, so storage code reads vfs_write(vfs, ...). */
static inline int vfs_open(struct vfs *vfs, const char *path, int flags,
                           struct vfs_file **file, struct cohort_err *err)
{
    return vfs->open(vfs, path, flags, file, err);
}

static inline void vfs_close(struct vfs *vfs, struct vfs_file *file)
{
    vfs->close(vfs, file);
}

static inline int vfs_read(struct vfs *vfs, struct vfs_file *file,
                           uint64_t offset, void *buf, size_t size,
                           size_t *done, struct cohort_err *err)
{
    return vfs->read(vfs, file, offset, buf, size, done, err);
}

static inline int vfs_write(struct vfs *vfs, struct vfs_file *file,
                            uint64_t offset, const void *buf, size_t size,
                            struct cohort_err *err)
{
    return vfs->write(vfs, file, offset, buf, size, err);
}

static inline int vfs_sync(struct vfs *vfs, struct vfs_file *file,
                           struct cohort_err *err)
{
    return vfs->sync(vfs, file, err);
}

static inline int vfs_allocate(struct vfs *vfs, struct vfs_file *file,
                               uint64_t size, struct cohort_err *err)
{
    return vfs->allocate(vfs, file, size, err);
}

static inline int vfs_truncate(struct vfs *vfs, struct vfs_file *file,
                               uint64_t size, struct cohort_err *err)
{
    return vfs->truncate(vfs, file, size, err);
}

static inline int vfs_size(struct vfs *vfs, struct vfs_file *file,
                           uint64_t *size, struct cohort_err *err)
{
    return vfs->size(vfs, file, size, err);
}

static inline int vfs_rename(struct vfs *vfs, const char *from, const char *to,
                             struct cohort_err *err)
{
    return vfs->rename(vfs, from, to, err);
}

static inline int vfs_unlink(struct vfs *vfs, const char *path,
                             struct cohort_err *err)
{
    return vfs->unlink(vfs, path, err);
}

static inline int vfs_mkdir(struct vfs *vfs, const char *path,
                            struct cohort_err *err)
{
    return vfs->mkdir(vfs, path, err);
}

static inline int vfs_sync_dir(struct vfs *vfs, const char *path,
                               struct cohort_err *err)
{
    return vfs->sync_dir(vfs, path, err);
}

static inline int vfs_writeback(struct vfs *vfs, struct vfs_file *file,
                                uint64_t offset, uint64_t size, bool wait,
                                struct cohort_err *err)
{
    return vfs->writeback ? vfs->writeback(vfs, file, offset, size, wait, err)
                          : 0;
}

static inline int vfs_list(struct vfs *vfs, const char *path, vfs_list_fn fn,
                           void *ctx, struct cohort_err *err)
{
    return vfs->list(vfs, path, fn, ctx, err);
}

/* Helpers shared by the storage modules (vfs_util in vfs_posix.c). */

/* Read a whole file into a new malloc'd buffer (*data, *size; the caller
 * frees *data). -COHORT_ENOTFOUND if it does not exist. */
int vfs_read_file(struct vfs *vfs, const char *path, uint8_t **data,
                  size_t *size, struct cohort_err *err);
/* Join dir and name into out (VFS_PATH_MAX bytes). Returns -COHORT_EINVAL
 * with a message if the result does not fit. */
int vfs_path_join(char *out, const char *dir, const char *name,
                  struct cohort_err *err);
/* The directory part of path into out ("." if path has no slash). */
void vfs_path_dir(char *out, const char *path);
/* Write dir/name durably in place of what it held: data to dir/name.tmp,
 * synced, renamed over dir/name, dir synced. A crash leaves the old file
 * or the new one, never a mix. */
int vfs_replace_file(struct vfs *vfs, const char *dir, const char *name,
                     const void *data, size_t size, struct cohort_err *err);
/* Create dir if missing, and if it was created make its name durable by
 * syncing its parent. */
int vfs_mkdir_durable(struct vfs *vfs, const char *dir, struct cohort_err *err);
/* vfs_mkdir_durable() of dir and of each missing parent, outermost first
 * (mkdir -p, each name made durable; new ones get VFS_DIR_MODE). */
int vfs_mkdir_parents_durable(struct vfs *vfs, const char *dir,
                              struct cohort_err *err);

#endif
