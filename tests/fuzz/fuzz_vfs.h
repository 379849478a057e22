/* fuzz_vfs — a struct vfs in memory for the storage fuzzers: files and
 * directories in a flat table of paths, no durability model (sync does
 * nothing), no limits but a cap on a file's size (FUZZ_VFS_FILE_MAX; a
 * larger write or allocate fails with ENOSPC, so a fuzzed size field cannot
 * make the harness allocate without bound). Open handles survive unlink and
 * rename, as POSIX ones do. Not thread-safe. */
#ifndef COHORT_FUZZ_VFS_H
#define COHORT_FUZZ_VFS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/vfs.h"

#define FUZZ_VFS_FILE_MAX (8u << 20)

struct fuzz_inode;
struct fuzz_name;

struct fuzz_vfs {
    struct vfs vfs; /* first: storage code is given &fv->vfs */
    struct fuzz_name *names;
    uint32_t name_count, name_cap;
};

void fuzz_vfs_init(struct fuzz_vfs *fv);
/* Frees every file; every handle must be closed. */
void fuzz_vfs_deinit(struct fuzz_vfs *fv);
/* Create (or replace) the file at path with a copy of size bytes. */
void fuzz_vfs_put(struct fuzz_vfs *fv, const char *path, const void *data,
                  size_t size);
/* Create the directory path (and nothing above it). */
void fuzz_vfs_mkdir(struct fuzz_vfs *fv, const char *path);
/* The bytes of the file at path (NULL if none), valid until the next
 * change. */
const uint8_t *fuzz_vfs_get(struct fuzz_vfs *fv, const char *path,
                            size_t *size);

#endif
