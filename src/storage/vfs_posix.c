/* vfs_posix — struct vfs on real files, plus the path and whole-file helpers
 * every vfs user shares. See vfs.h. */
#include "storage/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/assert.h"

/* The handle behind struct vfs_file for this implementation. */
struct posix_file {
    int fd;
    char path[VFS_PATH_MAX];
};

static struct posix_file *posix_file_of(struct vfs_file *file)
{
    struct posix_file *pf = (struct posix_file *)file;
    ASSERT(pf != NULL);
    ASSERT(pf->fd >= 0);
    return pf;
}

static int posix_not_found(struct cohort_err *err, const char *what,
                           const char *path)
{
    return err_set(err, -COHORT_ENOTFOUND, "%s %.900s: %s", what, path,
                   strerror(ENOENT));
}

static int posix_open(struct vfs *vfs, const char *path, int flags,
                      struct vfs_file **file, struct cohort_err *err)
{
    (void)vfs;
    ASSERT(file != NULL);
    ASSERT(strlen(path) < VFS_PATH_MAX);
    /* O_NONBLOCK: a FIFO put where a file belongs must not hang the open
     * (it is refused below, as is anything but a regular file). */
    int oflags =
        O_CLOEXEC | O_NONBLOCK | ((flags & VFS_READ_ONLY) ? O_RDONLY : O_RDWR);
    if (flags & VFS_CREATE)
        oflags |= O_CREAT;
    if (flags & VFS_EXCLUSIVE)
        oflags |= O_EXCL;
    int fd;
    do {
        fd = open(path, oflags, VFS_FILE_MODE);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT)
            return posix_not_found(err, "open", path);
        if (errno == EEXIST)
            return err_set(err, -COHORT_EEXIST, "create %.900s: %s", path,
                           strerror(EEXIST));
        return err_file(err, errno, "open %.900s", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, -COHORT_EIO,
                       "open %.900s: not a regular file (a directory, FIFO, "
                       "socket or device): move it aside",
                       path);
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct posix_file *pf = malloc(sizeof(*pf));
    if (!pf) {
        close(fd);
        return err_set(err, -COHORT_ENOMEM, "open %.900s: out of memory", path);
    }
    pf->fd = fd;
    snprintf(pf->path, sizeof(pf->path), "%s", path);
    *file = (struct vfs_file *)pf;
    return 0;
}

static void posix_close(struct vfs *vfs, struct vfs_file *file)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    /* close() errors carry no durability information: that is what
     * fdatasync reported already. */
    close(pf->fd);
    pf->fd = -1;
    free(pf);
}

static int posix_read(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                      void *buf, size_t size, size_t *done,
                      struct cohort_err *err)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(pf->fd, (uint8_t *)buf + got, size - got,
                          (off_t)(offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_file(err, errno, "read %s at %" PRIu64, pf->path,
                            offset + got);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    ASSERT(got <= size);
    *done = got;
    return 0;
}

static int posix_write(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                       const void *buf, size_t size, struct cohort_err *err)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    size_t put = 0;
    while (put < size) {
        ssize_t n = pwrite(pf->fd, (const uint8_t *)buf + put, size - put,
                           (off_t)(offset + put));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_file(err, errno, "write %s at %" PRIu64, pf->path,
                            offset + put);
        ASSERT(n > 0); /* pwrite of a nonzero count never returns 0 */
        put += (size_t)n;
    }
    return 0;
}

static int posix_sync(struct vfs *vfs, struct vfs_file *file,
                      struct cohort_err *err)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    if (fdatasync(pf->fd) != 0)
        return err_file(err, errno, "fdatasync %s", pf->path);
    return 0;
}

static int posix_writeback(struct vfs *vfs, struct vfs_file *file,
                           uint64_t offset, uint64_t size, bool wait,
                           struct cohort_err *err)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    unsigned flags = SYNC_FILE_RANGE_WRITE;
    if (wait)
        flags |= SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER;
    if (sync_file_range(pf->fd, (off_t)offset, (off_t)size, flags) != 0)
        return err_file(err, errno, "sync_file_range %s at %" PRIu64, pf->path,
                        offset);
    return 0;
}

static int posix_size(struct vfs *vfs, struct vfs_file *file, uint64_t *size,
                      struct cohort_err *err)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    struct stat st;
    if (fstat(pf->fd, &st) != 0)
        return err_file(err, errno, "stat %s", pf->path);
    ASSERT(st.st_size >= 0);
    *size = (uint64_t)st.st_size;
    return 0;
}

static int posix_truncate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                          struct cohort_err *err)
{
    (void)vfs;
    struct posix_file *pf = posix_file_of(file);
    int rc;
    do {
        rc = ftruncate(pf->fd, (off_t)size);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0)
        return err_file(err, errno, "truncate %s to %" PRIu64, pf->path, size);
    return 0;
}

static int posix_allocate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                          struct cohort_err *err)
{
    struct posix_file *pf = posix_file_of(file);
    /* posix_fallocate returns the error instead of setting errno. */
    int rc = posix_fallocate(pf->fd, 0, (off_t)size);
    if (rc == 0)
        return 0;
    if (rc != EOPNOTSUPP && rc != EINVAL)
        return err_file(err, rc, "allocate %" PRIu64 " bytes for %s", size,
                        pf->path);
    /* The file system cannot reserve blocks: at least fix the size, so
     * that a sync never has to change it. */
    uint64_t now;
    int ret = posix_size(vfs, file, &now, err);
    if (ret != 0 || now >= size)
        return ret;
    return posix_truncate(vfs, file, size, err);
}

static int posix_rename(struct vfs *vfs, const char *from, const char *to,
                        struct cohort_err *err)
{
    (void)vfs;
    if (rename(from, to) == 0)
        return 0;
    if (errno == ENOENT)
        return posix_not_found(err, "rename", from);
    return err_file(err, errno, "rename %.450s to %.450s", from, to);
}

static int posix_unlink(struct vfs *vfs, const char *path,
                        struct cohort_err *err)
{
    (void)vfs;
    if (unlink(path) == 0)
        return 0;
    if (errno == ENOENT)
        return posix_not_found(err, "unlink", path);
    return err_file(err, errno, "unlink %.900s", path);
}

static int posix_mkdir(struct vfs *vfs, const char *path,
                       struct cohort_err *err)
{
    (void)vfs;
    if (mkdir(path, VFS_DIR_MODE) == 0)
        return 0;
    if (errno == EEXIST)
        return err_set(err, -COHORT_EEXIST, "mkdir %.900s: %s", path,
                       strerror(EEXIST));
    if (errno == ENOENT)
        return posix_not_found(err, "mkdir", path);
    return err_file(err, errno, "mkdir %.900s", path);
}

static int posix_sync_dir(struct vfs *vfs, const char *path,
                          struct cohort_err *err)
{
    (void)vfs;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return posix_not_found(err, "open directory", path);
        return err_file(err, errno, "open directory %.900s", path);
    }
    int rc = 0;
    if (fsync(fd) != 0)
        rc = err_file(err, errno, "fsync directory %.900s", path);
    close(fd);
    return rc;
}

static int posix_list(struct vfs *vfs, const char *path, vfs_list_fn fn,
                      void *ctx, struct cohort_err *err)
{
    (void)vfs;
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return posix_not_found(err, "list directory", path);
        return err_file(err, errno, "list directory %.900s", path);
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0)
                rc = err_file(err, errno, "list directory %.900s", path);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = fn(ctx, de->d_name);
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

static struct vfs posix_vfs = {
    .open = posix_open,
    .close = posix_close,
    .read = posix_read,
    .write = posix_write,
    .sync = posix_sync,
    .allocate = posix_allocate,
    .truncate = posix_truncate,
    .size = posix_size,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .mkdir = posix_mkdir,
    .sync_dir = posix_sync_dir,
    .list = posix_list,
    .writeback = posix_writeback,
};

struct vfs *vfs_posix(void)
{
    return &posix_vfs;
}

/* Helpers shared by every vfs user. */

int vfs_read_file(struct vfs *vfs, const char *path, uint8_t **data,
                  size_t *size, struct cohort_err *err)
{
    struct vfs_file *file;
    int rc = vfs_open(vfs, path, VFS_READ_ONLY, &file, err);
    if (rc != 0)
        return rc;
    uint64_t file_size;
    rc = vfs_size(vfs, file, &file_size, err);
    if (rc == 0 && file_size > SIZE_MAX / 2)
        rc = err_set(err, -COHORT_ETOOBIG, "read %.900s: %" PRIu64 " bytes",
                     path, file_size);
    uint8_t *buf = NULL;
    if (rc == 0) {
        buf = malloc(file_size ? (size_t)file_size : 1);
        if (!buf)
            rc = err_set(err, -COHORT_ENOMEM,
                         "read %.900s: out of memory for %" PRIu64 " bytes",
                         path, file_size);
    }
    size_t done = 0;
    if (rc == 0)
        rc = vfs_read(vfs, file, 0, buf, (size_t)file_size, &done, err);
    vfs_close(vfs, file);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    /* A file that shrank under us is read as it is now. */
    ASSERT(done <= file_size);
    *data = buf;
    *size = done;
    return 0;
}

int vfs_path_join(char *out, const char *dir, const char *name,
                  struct cohort_err *err)
{
    int n = snprintf(out, VFS_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= VFS_PATH_MAX)
        return err_set(err, -COHORT_EINVAL,
                       "path %.400s/%.100s is longer than %d bytes", dir, name,
                       VFS_PATH_MAX - 1);
    return 0;
}

void vfs_path_dir(char *out, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, VFS_PATH_MAX, ".");
        return;
    }
    size_t len = (size_t)(slash - path);
    if (len == 0)
        len = 1; /* "/name" lives in "/" */
    ASSERT(len < VFS_PATH_MAX);
    memcpy(out, path, len);
    out[len] = '\0';
}

int vfs_mkdir_durable(struct vfs *vfs, const char *dir, struct cohort_err *err)
{
    int rc = vfs_mkdir(vfs, dir, err);
    if (rc == -COHORT_EEXIST) {
        err_clear(err);
        return 0;
    }
    if (rc != 0)
        return rc;
    char parent[VFS_PATH_MAX];
    vfs_path_dir(parent, dir);
    return vfs_sync_dir(vfs, parent, err);
}

int vfs_mkdir_parents_durable(struct vfs *vfs, const char *dir,
                              struct cohort_err *err)
{
    char path[VFS_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(path))
        return err_set(err, -COHORT_EINVAL, "directory path '%.900s'", dir);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        int rc = vfs_mkdir_durable(vfs, path, err);
        path[i] = saved;
        if (rc != 0)
            return rc;
    }
    return 0;
}

int vfs_replace_file(struct vfs *vfs, const char *dir, const char *name,
                     const void *data, size_t size, struct cohort_err *err)
{
    char path[VFS_PATH_MAX], temp[VFS_PATH_MAX], temp_name[VFS_PATH_MAX];
    if ((size_t)snprintf(temp_name, sizeof(temp_name), "%s.tmp", name) >=
            sizeof(temp_name) ||
        vfs_path_join(path, dir, name, err) != 0 ||
        vfs_path_join(temp, dir, temp_name, err) != 0)
        return err->code ? err->code : -COHORT_EINVAL;
    struct cohort_err ignored;
    vfs_unlink(vfs, temp, &ignored);
    struct vfs_file *file = NULL;
    int rc = vfs_open(vfs, temp, VFS_CREATE | VFS_EXCLUSIVE, &file, err);
    if (rc != 0)
        return rc;
    rc = vfs_write(vfs, file, 0, data, size, err);
    if (rc == 0)
        rc = vfs_sync(vfs, file, err);
    vfs_close(vfs, file);
    if (rc == 0)
        rc = vfs_rename(vfs, temp, path, err);
    if (rc == 0)
        rc = vfs_sync_dir(vfs, dir, err);
    return rc;
}
