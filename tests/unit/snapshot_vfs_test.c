/* runtime/snapshot_vfs: a snapshot thread writes, publishes and cleans up
 * a snapshot through descriptors the loop opened; any other open, sync or
 * listing is refused; a file the thread never used is removed; a leftover
 * temp file is replaced by a fresh one. Under ThreadSanitizer, a descriptor
 * number the loop read from and closed the way libuv does (a raw close
 * syscall the sanitizer does not see) does not reach the thread. */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/snapshot_job.h"
#include "runtime/snapshot_vfs.h"
#include "storage/snapshot.h"
#include "tmpdir.h"

struct fixture {
    char root[64];
    char dir[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!tmpdir_make(fx->root, sizeof(fx->root), "svfs"))
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/snapshots", fx->root);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    tmpdir_remove(fx->root);
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
    /* The thread waits for this; relaxed on purpose, so that it orders
     * nothing for the sanitizer (as the loop's socket reads are ordered
     * with nothing the thread does). */
    atomic_bool go;
    int names; /* job_list: what it counted */
};

/* Read from a socket in this thread, then close it (both ends) with the
 * raw syscall, as libuv closes its handles: the numbers are free, and the
 * sanitizer still thinks this thread last touched them. */
static void read_then_close_like_libuv(void)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    char c = 'x';
    assert_int_equal(write(fds[1], &c, 1), 1);
    assert_int_equal(read(fds[0], &c, 1), 1);
    syscall(SYS_close, fds[0]);
    syscall(SYS_close, fds[1]);
}

static int job_write(void *ctx, struct cohort_err *err)
{
    struct job *j = ctx;
    while (!atomic_load_explicit(&j->go, memory_order_relaxed))
        usleep(1000);
    return write_snapshot(&j->sv.vfs, j->dir, j->op, 100000, err);
}

static int count_name(void *ctx, const char *name)
{
    (void)name;
    (*(int *)ctx)++;
    return 0;
}

/* Only list the directory, as delete_older() does after publishing. */
static int job_list(void *ctx, struct cohort_err *err)
{
    struct job *j = ctx;
    while (!atomic_load_explicit(&j->go, memory_order_relaxed))
        usleep(1000);
    return vfs_list(&j->sv.vfs, j->dir, count_name, &j->names, err);
}

static void job_release(void *ctx)
{
    struct job *j = ctx;
    snapshot_vfs_close(&j->sv);
    j->released++;
}

/* Open j's files for a snapshot at op 9 in fx->dir (as the loop does), run
 * fn in a snapshot thread while this thread reads a socket and closes it
 * as libuv does (a descriptor the thread opened itself would get that
 * number), and reap it: it must have succeeded and released j once. The
 * temp file's path goes to temp. */
static void run_thread_job(struct fixture *fx, struct job *j,
                           snapshot_job_write_fn fn, char *temp)
{
    struct cohort_err err;
    j->dir = fx->dir;
    j->op = 9;
    assert_int_equal(snapshot_temp_path(temp, fx->dir, 9, &err), 0);
    assert_int_equal(
        snapshot_vfs_open(&j->sv, vfs_posix(), fx->dir, temp, &err), 0);
    struct snapshot_job sj;
    snapshot_job_init(&sj);
    char why[COHORT_ERR_MESSAGE_MAX];
    assert_true(snapshot_job_start_thread(&sj, 9, fn, j, job_release, why,
                                          sizeof(why)));
    read_then_close_like_libuv();
    atomic_store_explicit(&j->go, true, memory_order_relaxed);
    uint64_t op = 0;
    bool ok = false, reaped = false;
    for (int i = 0; i < 10000 && !reaped; i++) {
        reaped = snapshot_job_reap(&sj, &op, &ok, why, sizeof(why));
        if (!reaped)
            usleep(1000);
    }
    assert_true(reaped);
    assert_true(ok);
    assert_int_equal(j->released, 1);
}

static void a_thread_publishes_through_it_and_older_ones_go(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    /* An older snapshot, written the ordinary way. */
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 3, 5000, &err), 0);
    struct job j = {.released = 0};
    char temp[VFS_PATH_MAX];
    run_thread_job(fx, &j, job_write, temp);
    /* Only the new snapshot is left: published, temp gone, older deleted. */
    assert_int_equal(count_entries(fx->dir), 1);
    assert_false(exists(temp));
    struct snapshot_reader r;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    assert_int_equal(snapshot_info(&r)->op, 9);
    assert_int_equal(snapshot_info(&r)->state_size, 100000);
    snapshot_close(&r);
}

/* The sanitizer's view of descriptors: closedir(3) in the thread counts as
 * a write of the descriptor's number, opendir(3) does not reset what the
 * loop did with it before, and a raw close syscall (libuv's) resets
 * nothing. So a thread that lists a directory with its own opendir races,
 * for ThreadSanitizer, with the loop's last read of a socket that had that
 * number; the replica stopped on exactly that in CI. Listing through the
 * loop's directory handle does not. (Fails under TSan with the thread
 * listing through vfs_posix(); in other builds it checks the listing.) */
static void a_thread_lists_through_the_loops_directory(void **state)
{
    struct fixture *fx = *state;
    struct cohort_err err;
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 3, 100, &err), 0);
    struct job j = {.released = 0};
    char temp[VFS_PATH_MAX];
    run_thread_job(fx, &j, job_list, temp);
    /* The older snapshot and the new temp file, which the thread never
     * opened and the release removed. */
    assert_int_equal(j.names, 2);
    assert_int_equal(count_entries(fx->dir), 1);
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
            a_thread_lists_through_the_loops_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(
            other_opens_syncs_and_listings_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            an_unused_file_is_removed_and_a_leftover_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
