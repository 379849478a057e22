/* cli/cmd_restore — `cohort restore <file> <data-dir>`: put a backup made by
 * `cohort backup` into an empty data directory (made, with any missing
 * parents, mode 0700, as `cohort server` makes its --data-dir), as that
 * replica's snapshot, so that a new cluster starts from the backed-up
 * state.
 *
 * Every member of the new cluster is restored from the same file: the
 * replicas start with no metadata and no log, at view 0, each with the
 * snapshot's op as its base, and number new ops from the op after it. A
 * member started empty beside restored ones would be told a log that does
 * not hold the backup's ops; so restore refuses a data directory that holds
 * anything, and OPERATIONS.md says to restore all members before starting
 * any. The file is verified (its checksums) before it is copied, and the
 * copy again before it is renamed into place. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "storage/snapshot.h"
#include "storage/vfs.h"

static int verify(const char *path, uint64_t *op, struct cohort_err *err)
{
    struct snapshot_reader rd;
    int rc = snapshot_open(&rd, vfs_posix(), path, err);
    if (rc != 0)
        return rc;
    *op = snapshot_info(&rd)->op;
    snapshot_close(&rd);
    return 0;
}

/* The data directory must be missing or empty. */
static int check_empty(const char *dir, struct cohort_err *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : err_file(err, errno, "open %s", dir);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && rc == 0)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc = err_set(err, -COHORT_EEXIST,
                         "%s is not empty (it holds %s); restore into a new, "
                         "empty data directory",
                         dir, e->d_name);
    closedir(d);
    return rc;
}

static int copy_to(const char *from, const char *to, struct cohort_err *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return err_file(err, errno, "open %s", from);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return err_file(err, errno, "create %s", to);
    }
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = err_file(err, errno, "read %s", from);
        if (n <= 0)
            break;
        if (write(out, buf, (size_t)n) != n) {
            rc = err_file(err, errno, "write %s", to);
            break;
        }
    }
    if (rc == 0 && fsync(out) != 0)
        rc = err_file(err, errno, "fsync %s", to);
    close(in);
    close(out);
    return rc;
}

static int restore(const char *file, const char *dir, uint64_t *op,
                   struct cohort_err *err)
{
    struct vfs *vfs = vfs_posix();
    char snaps[VFS_PATH_MAX], name[64], path[VFS_PATH_MAX], tmp[VFS_PATH_MAX];
    int rc = verify(file, op, err);
    if (rc == 0)
        rc = check_empty(dir, err);
    /* As `cohort server` makes its --data-dir: parents too, mode 0700. */
    if (rc == 0 && vfs_mkdir_parents_durable(vfs, dir, err) != 0)
        rc = err_wrap(err, "data directory %s", dir);
    if (rc == 0)
        rc = vfs_path_join(snaps, dir, "snapshots", err);
    if (rc == 0)
        rc = vfs_mkdir_durable(vfs, snaps, err);
    snprintf(name, sizeof(name), "snapshot-%020" PRIu64 ".snap", *op);
    if (rc == 0)
        rc = vfs_path_join(path, snaps, name, err);
    if (rc == 0 && snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= VFS_PATH_MAX)
        rc = err_set(err, -COHORT_EINVAL, "path %s is too long", path);
    if (rc == 0)
        rc = copy_to(file, tmp, err);
    uint64_t copied = 0;
    if (rc == 0)
        rc = verify(tmp, &copied, err);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_file(err, errno, "rename %s to %s", tmp, path);
    if (rc == 0)
        rc = vfs_sync_dir(vfs, snaps, err);
    return rc;
}

int cmd_restore(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: cohort restore <file> <data-dir>\n"
               "Put a backup made by 'cohort backup' into a new, empty data "
               "directory (made\nwith its missing parents, mode 0700). "
               "Restore every member of the new cluster\nfrom the same file "
               "before starting any of them.\n");
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-')
            return cli_flag_unknown("restore", argv[i]);
    if (argc != 3) {
        fprintf(stderr, "cohort restore: takes <file> <data-dir>; see "
                        "'cohort restore --help'\n");
        return 2;
    }
    uint64_t op = 0;
    struct cohort_err err;
    err_clear(&err);
    if (restore(argv[1], argv[2], &op, &err) != 0) {
        fprintf(stderr, "cohort restore: %s\n", err.message);
        return 1;
    }
    printf("cohort restore: op %" PRIu64 " from %s restored into %s; start "
           "the replica with --data-dir %s\n",
           op, argv[1], argv[2], argv[2]);
    return 0;
}
