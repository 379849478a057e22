/* dirlock — one process per data directory. See dirlock.h. */
#include "runtime/dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "storage/vfs.h"

#define PID_TEXT_MAX 32

/* The PID written in the lock file, or 0 if it holds none (yet). */
static long holder_pid(int fd)
{
    char text[PID_TEXT_MAX];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end = NULL;
    long pid = strtol(text, &end, 10);
    return end != text && pid > 0 ? pid : 0;
}

static int refuse(int fd, const char *path, const char *dir,
                  struct cohort_err *err)
{
    long pid = holder_pid(fd);
    if (pid > 0)
        return err_set(err, -COHORT_ECONFIG,
                       "data directory %s is in use by another process (pid "
                       "%ld holds %s): stop that server first, or give this "
                       "one its own --data-dir",
                       dir, pid, path);
    return err_set(err, -COHORT_ECONFIG,
                   "data directory %s is in use by another process (it holds "
                   "%s): stop that server first, or give this one its own "
                   "--data-dir",
                   dir, path);
}

static int write_pid(int fd, const char *path, struct cohort_err *err)
{
    char text[PID_TEXT_MAX];
    int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    ASSERT(len > 0 && (size_t)len < sizeof(text));
    if (ftruncate(fd, 0) != 0)
        return err_file(err, errno, "truncate %s", path);
    ssize_t n = pwrite(fd, text, (size_t)len, 0);
    if (n != len)
        return err_file(err, n < 0 ? errno : ENOSPC, "write %s", path);
    return 0;
}

/* Create dir and any missing parents, each made durable. */
static int mkdir_parents(const char *dir, struct cohort_err *err)
{
    int rc = vfs_mkdir_parents_durable(vfs_posix(), dir, err);
    if (rc != 0)
        return err_wrap(err, "data directory %s", dir);
    return 0;
}

int dirlock_acquire(struct dirlock *lock, const char *dir,
                    struct cohort_err *err)
{
    lock->fd = -1;
    char path[VFS_PATH_MAX];
    int rc = vfs_path_join(path, dir, DIRLOCK_FILE, err);
    if (rc == 0)
        rc = mkdir_parents(dir, err);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, VFS_FILE_MODE);
    if (fd < 0)
        return err_file(err, errno, "open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        rc = e == EWOULDBLOCK ? refuse(fd, path, dir, err)
                              : err_file(err, e, "lock %s", path);
        close(fd);
        return rc;
    }
    rc = write_pid(fd, path, err);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    lock->fd = fd;
    return 0;
}

unsigned dirlock_loose_mode(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return 0;
    unsigned mode = (unsigned)(st.st_mode & 07777);
    return (mode & 077u) != 0 ? mode : 0;
}

void dirlock_release(struct dirlock *lock)
{
    if (lock->fd >= 0)
        close(lock->fd);
    lock->fd = -1;
}

void dirlock_forget_in_child(struct dirlock *lock)
{
    dirlock_release(lock);
}
