/* runtime/snapshot_vfs: a snapshot thread writes, publishes and cleans up
 * a snapshot through descriptors the loop opened; any other open, sync or
 * listing is refused; a file the thread never used is removed; a leftover
 * temp file is replaced by a fresh one. */
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/snapshot_job.h"
#include "runtime/snapshot_vfs.h"
#include "storage/snapshot.h"

struct fixture {
    char root[64];
    char dir[128];
};

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->root, sizeof(fx->root), "/tmp/cohort-svfs-XXXXXX");
    if (!mkdtemp(fx->root))
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/snapshots", fx->root);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nftw(fx->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static struct snapshot_info info_for(uint64_t op)
{
    struct snapshot_info info = {.op = op, .checksum = op * 77, .epoch = 1};
    return info;
}

/* Write a snapshot at op with size bytes of state through vfs. */
static int write_snapshot(struct vfs *vfs, const char *dir, uint64_t op,
                          size_t size, struct cohort_err *err)
{
    struct snapshot_writer w;
    struct snapshot_info info = info_for(op);
    int rc = snapshot_write_begin(&w, vfs, dir, &info, NULL, err);
    uint8_t chunk[4096];
    for (size_t done = 0; rc == 0 && done < size; done += sizeof(chunk)) {
        memset(chunk, (int)(done / sizeof(chunk) + op), sizeof(chunk));
        size_t n = size - done < sizeof(chunk) ? size - done : sizeof(chunk);
        rc = snapshot_write(&w, chunk, n, err);
    }
    if (rc == 0)
        rc = snapshot_write_end(&w, NULL, err);
    if (rc != 0)
        snapshot_write_abort(&w);
    return rc;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

struct job {
    struct snapshot_vfs sv;
    const char *dir;
    uint64_t op;
    int released;
};

static int job_write(void *ctx, struct cohort_err *err)
{
    struct job *j = ctx;
    return write_snapshot(&j->sv.vfs, j->dir, j->op, 100000, err);
}

static void job_release(void *ctx)
{
    struct job *j = ctx;
    snapshot_vfs_close(&j->sv);
    j->released++;
}

static void a_thread_publishes_through_it_and_older_ones_go(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    /* An older snapshot, written the ordinary way. */
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 3, 5000, &err), 0);
    struct job j = {.dir = fx->dir, .op = 9};
    char temp[VFS_PATH_MAX];
    assert_int_equal(snapshot_temp_path(temp, fx->dir, 9, &err), 0);
    assert_int_equal(snapshot_vfs_open(&j.sv, vfs_posix(), fx->dir, temp, &err),
                     0);
    struct snapshot_job sj;
    snapshot_job_init(&sj);
    char why[COHORT_ERR_MESSAGE_MAX];
    assert_true(snapshot_job_start_thread(&sj, 9, job_write, &j, job_release,
                                          why, sizeof(why)));
    uint64_t op = 0;
    bool ok = false, reaped = false;
    for (int i = 0; i < 10000 && !reaped; i++) {
        reaped = snapshot_job_reap(&sj, &op, &ok, why, sizeof(why));
        if (!reaped)
            usleep(1000);
    }
    assert_true(reaped);
    assert_true(ok);
    assert_int_equal(j.released, 1);
    /* Only the new snapshot is left: published, temp gone, older deleted. */
    assert_int_equal(count_entries(fx->dir), 1);
    assert_false(exists(temp));
    struct snapshot_reader r;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    assert_int_equal(snapshot_info(&r)->op, 9);
    assert_int_equal(snapshot_info(&r)->state_size, 100000);
    snapshot_close(&r);
}

static void other_opens_syncs_and_listings_are_refused(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    char temp[VFS_PATH_MAX], other[VFS_PATH_MAX];
    assert_int_equal(snapshot_temp_path(temp, fx->dir, 4, &err), 0);
    assert_int_equal(snapshot_temp_path(other, fx->dir, 5, &err), 0);
    struct snapshot_vfs sv;
    assert_int_equal(snapshot_vfs_open(&sv, vfs_posix(), fx->dir, temp, &err),
                     0);
    struct vfs *vfs = &sv.vfs;
    struct vfs_file *f = NULL, *g = NULL;
    assert_int_equal(vfs_open(vfs, other, VFS_CREATE, &g, &err),
                     -COHORT_EINVAL);
    assert_non_null(strstr(err.message, other));
    assert_false(exists(other));
    assert_int_equal(vfs_sync_dir(vfs, fx->root, &err), -COHORT_EINVAL);
    assert_int_equal(vfs_list(vfs, fx->root, NULL, NULL, &err), -COHORT_EINVAL);
    /* Its own file: once. */
    assert_int_equal(vfs_open(vfs, temp, VFS_CREATE, &f, &err), 0);
    assert_int_equal(vfs_open(vfs, temp, VFS_CREATE, &g, &err), -COHORT_EINVAL);
    assert_int_equal(vfs_write(vfs, f, 0, "abc", 3, &err), 0);
    assert_int_equal(vfs_sync(vfs, f, &err), 0);
    vfs_close(vfs, f);
    assert_int_equal(vfs_sync_dir(vfs, fx->dir, &err), 0);
    snapshot_vfs_close(&sv);
    /* The thread used the file: it stays for the writer to publish. */
    assert_true(exists(temp));
}

static void an_unused_file_is_removed_and_a_leftover_replaced(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    char temp[VFS_PATH_MAX];
    assert_int_equal(snapshot_temp_path(temp, fx->dir, 6, &err), 0);
    assert_int_equal(mkdir(fx->dir, 0700), 0);
    FILE *leftover = fopen(temp, "w");
    assert_non_null(leftover);
    fputs("half a snapshot", leftover);
    fclose(leftover);
    struct snapshot_vfs sv;
    assert_int_equal(snapshot_vfs_open(&sv, vfs_posix(), fx->dir, temp, &err),
                     0);
    struct stat st;
    assert_int_equal(stat(temp, &st), 0);
    assert_int_equal(st.st_size, 0); /* fresh */
    snapshot_vfs_close(&sv);
    assert_false(exists(temp));
    snapshot_vfs_close(&sv); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_thread_publishes_through_it_and_older_ones_go, setup, teardown),
        cmocka_unit_test_setup_teardown(
            other_opens_syncs_and_listings_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            an_unused_file_is_removed_and_a_leftover_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
