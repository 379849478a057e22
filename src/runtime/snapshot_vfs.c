/* snapshot_vfs — see snapshot_vfs.h. */
#include "runtime/snapshot_vfs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"

static struct snapshot_vfs *of(struct vfs *vfs)
{
    return (struct snapshot_vfs *)vfs;
}

static int not_opened(struct cohort_err *err, const char *what,
                      const char *path)
{
    return err_set(err, -COHORT_EINVAL,
                   "%s %.900s: not opened for the snapshot thread", what, path);
}

static int sv_open(struct vfs *vfs, const char *path, int flags,
                   struct vfs_file **file, struct cohort_err *err)
{
    (void)flags;
    struct snapshot_vfs *s = of(vfs);
    if (s->file_handed_out || !s->file || strcmp(path, s->file_path) != 0)
        return not_opened(err, "open", path);
    s->file_handed_out = true;
    *file = s->file;
    return 0;
}

static void sv_close(struct vfs *vfs, struct vfs_file *file)
{
    struct snapshot_vfs *s = of(vfs);
    if (file == s->file)
        s->file = NULL;
    vfs_close(s->base, file);
}

static int sv_read(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                   void *buf, size_t size, size_t *done, struct cohort_err *err)
{
    return vfs_read(of(vfs)->base, file, offset, buf, size, done, err);
}

static int sv_write(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                    const void *buf, size_t size, struct cohort_err *err)
{
    return vfs_write(of(vfs)->base, file, offset, buf, size, err);
}

static int sv_sync(struct vfs *vfs, struct vfs_file *file,
                   struct cohort_err *err)
{
    return vfs_sync(of(vfs)->base, file, err);
}

static int sv_allocate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                       struct cohort_err *err)
{
    return vfs_allocate(of(vfs)->base, file, size, err);
}

static int sv_truncate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                       struct cohort_err *err)
{
    return vfs_truncate(of(vfs)->base, file, size, err);
}

static int sv_size(struct vfs *vfs, struct vfs_file *file, uint64_t *size,
                   struct cohort_err *err)
{
    return vfs_size(of(vfs)->base, file, size, err);
}

static int sv_rename(struct vfs *vfs, const char *from, const char *to,
                     struct cohort_err *err)
{
    return vfs_rename(of(vfs)->base, from, to, err);
}

static int sv_unlink(struct vfs *vfs, const char *path, struct cohort_err *err)
{
    struct snapshot_vfs *s = of(vfs);
    /* The file is fresh until the thread opens it. */
    if (!s->file_handed_out && strcmp(path, s->file_path) == 0)
        return 0;
    return vfs_unlink(s->base, path, err);
}

static int sv_mkdir(struct vfs *vfs, const char *path, struct cohort_err *err)
{
    struct snapshot_vfs *s = of(vfs);
    if (strcmp(path, s->dir) == 0)
        return err_set(err, -COHORT_EEXIST, "mkdir %.900s: %s", path,
                       strerror(EEXIST));
    return vfs_mkdir(s->base, path, err);
}

static int sv_sync_dir(struct vfs *vfs, const char *path,
                       struct cohort_err *err)
{
    struct snapshot_vfs *s = of(vfs);
    if (!s->dirp || strcmp(path, s->dir) != 0)
        return not_opened(err, "fsync directory", path);
    if (fsync(dirfd(s->dirp)) != 0)
        return err_file(err, errno, "fsync directory %.900s", path);
    return 0;
}

static int sv_list(struct vfs *vfs, const char *path, vfs_list_fn fn, void *ctx,
                   struct cohort_err *err)
{
    struct snapshot_vfs *s = of(vfs);
    if (!s->dirp || strcmp(path, s->dir) != 0)
        return not_opened(err, "list directory", path);
    rewinddir(s->dirp); /* and see the names as they are now */
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(s->dirp);
        if (!de)
            return errno ? err_file(err, errno, "list directory %.900s", path)
                         : 0;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int rc = fn(ctx, de->d_name);
        if (rc != 0)
            return rc;
    }
}

static int sv_writeback(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                        uint64_t size, bool wait, struct cohort_err *err)
{
    return vfs_writeback(of(vfs)->base, file, offset, size, wait, err);
}

static const struct vfs sv_ops = {
    .open = sv_open,
    .close = sv_close,
    .read = sv_read,
    .write = sv_write,
    .sync = sv_sync,
    .allocate = sv_allocate,
    .truncate = sv_truncate,
    .size = sv_size,
    .rename = sv_rename,
    .unlink = sv_unlink,
    .mkdir = sv_mkdir,
    .sync_dir = sv_sync_dir,
    .list = sv_list,
    .writeback = sv_writeback,
};

int snapshot_vfs_open(struct snapshot_vfs *s, struct vfs *base, const char *dir,
                      const char *file_path, struct cohort_err *err)
{
    memset(s, 0, sizeof(*s));
    s->vfs = sv_ops;
    s->base = base;
    if (strlen(dir) >= sizeof(s->dir) ||
        strlen(file_path) >= sizeof(s->file_path))
        return err_set(err, -COHORT_EINVAL, "snapshot: path too long: %.200s",
                       file_path);
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->file_path, sizeof(s->file_path), "%s", file_path);
    int rc = vfs_mkdir_durable(base, dir, err);
    if (rc != 0)
        return rc;
    s->dirp = opendir(dir);
    if (!s->dirp)
        return err_file(err, errno, "open directory %.900s", dir);
    struct cohort_err ignored;
    vfs_unlink(base, file_path, &ignored); /* a leftover of a killed writer */
    rc = vfs_open(base, file_path, VFS_CREATE | VFS_EXCLUSIVE, &s->file, err);
    if (rc != 0) {
        closedir(s->dirp);
        s->dirp = NULL;
        s->file = NULL;
    }
    return rc;
}

void snapshot_vfs_close(struct snapshot_vfs *s)
{
    if (s->file) {
        vfs_close(s->base, s->file);
        if (!s->file_handed_out) {
            struct cohort_err ignored;
            vfs_unlink(s->base, s->file_path, &ignored);
        }
        s->file = NULL;
    }
    if (s->dirp) {
        closedir(s->dirp);
        s->dirp = NULL;
    }
}
