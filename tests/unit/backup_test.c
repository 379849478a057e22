/* runtime/backup: the forked child that writes an operator's backup when no
 * thread can (the store's one slicer is busy, or memory). A refused thread
 * falls back to the child, which writes a verified snapshot file of the
 * state at the applied op into <data-dir>/backup/; a second backup is
 * refused until the first is reaped; a child that fails hands its error
 * line back; a stopped child leaves the backup idle and startable. The
 * threaded path runs in the system tests (test_backup.py). */
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

#include "common/bytes.h"
#include "harness.h"
#include "runtime/backup.h"
#include "storage/snapshot.h"
#include "tmpdir.h"

struct fixture {
    struct harness *h;
    char dir[256];
    struct dirlock lock;
    struct backup b;
    int thread_calls; /* refuse_thread() calls */
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->h = harness_new(3, 11);
    harness_start_all(fx->h);
    harness_run(fx->h, 2000);
    assert_true(harness_primary(fx->h) >= 0);
    assert_true(tmpdir_make(fx->dir, sizeof(fx->dir), "backup"));
    struct cohort_err err;
    assert_int_equal(dirlock_acquire(&fx->lock, fx->dir, &err), 0);
    assert_int_equal(backup_init(&fx->b, fx->dir, &err), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    backup_stop(&fx->b);
    dirlock_release(&fx->lock);
    tmpdir_remove(fx->dir);
    harness_free(fx->h);
    free(fx);
    return 0;
}

/* A thread that cannot start (the node's hook when the slicer is busy). */
static bool refuse_thread(void *ctx, const struct driver_snapshot *snap,
                          struct snapshot_job *job, const char *dir)
{
    (void)snap;
    (void)job;
    (void)dir;
    struct fixture *fx = ctx;
    fx->thread_calls++;
    return false;
}

/* count new writes (a new client each call: no retry is a duplicate). */
static uint32_t write_some(struct fixture *fx, uint64_t count)
{
    static uint64_t client = 500;
    client++;
    int p = harness_primary(fx->h);
    assert_true(p >= 0);
    for (uint64_t no = 1; no <= count; no++)
        harness_submit(fx->h, (uint32_t)p, client, no, 3);
    harness_run(fx->h, 2000);
    assert_true(fx->h->r[p].applied_op > 0);
    return (uint32_t)p;
}

static int start(struct fixture *fx, uint32_t p, bool *threaded,
                 struct cohort_err *err)
{
    return backup_start(&fx->b, fx->h->r[p].driver, &fx->lock, refuse_thread,
                        fx, harness_state_bytes, &fx->h->r[p], 1000, threaded,
                        err);
}

/* Reap as the node's SIGCHLD handler does, for up to 10 s. */
static bool reap_within(struct backup *b)
{
    for (int i = 0; i < 10000; i++) {
        if (backup_reap(b, 2000000))
            return true;
        usleep(1000);
    }
    return false;
}

static void a_refused_thread_falls_back_to_a_forked_child(void **state)
{
    struct fixture *fx = *state;
    uint32_t p = write_some(fx, 12);
    struct cohort_err err;
    err_clear(&err);
    bool threaded = true;
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    assert_false(threaded);
    assert_int_equal(fx->thread_calls, 1);
    assert_int_equal(fx->b.state, BACKUP_RUNNING);
    uint64_t op = fx->h->r[p].applied_op;
    uint64_t total = fx->h->r[p].total;
    assert_int_equal(fx->b.op, op);

    /* The writer may have finished, but nothing was reaped: one at a time. */
    assert_int_equal(start(fx, p, &threaded, &err), -COHORT_EAGAIN);
    assert_non_null(strstr(err.message, "still being written"));

    assert_true(reap_within(&fx->b));
    assert_int_equal(fx->b.state, BACKUP_DONE);
    assert_int_equal(fx->b.duration_us, (2000000 - 1000) / 1000);
    struct stat st;
    assert_int_equal(stat(fx->b.path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, fx->b.size);
    assert_non_null(strstr(fx->b.path, "/backup/snapshot-"));

    /* The file is a verified snapshot of the state at that op. */
    struct snapshot_reader rd;
    assert_int_equal(snapshot_open_latest(&rd, vfs_posix(), fx->b.dir, &err),
                     0);
    assert_int_equal(snapshot_info(&rd)->op, op);
    assert_true(snapshot_info(&rd)->client_table_size > 0);
    uint8_t bytes[16];
    size_t got = 0;
    assert_int_equal(snapshot_read_state(&rd, 0, bytes, 16, &got, &err), 0);
    assert_int_equal(got, 16);
    assert_int_equal(get_u64(bytes), op);
    assert_int_equal(get_u64(bytes + 8), total);
    snapshot_close(&rd);

    /* Asked for again with nothing applied since: the finished one is
     * reused, no child forked, its file untouched. */
    struct stat before;
    assert_int_equal(stat(fx->b.path, &before), 0);
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    assert_int_equal(fx->b.state, BACKUP_DONE);
    assert_int_equal(fx->b.op, op);
    assert_int_equal(fx->thread_calls, 1);
    assert_int_equal(stat(fx->b.path, &st), 0);
    assert_int_equal(st.st_ino, before.st_ino);

    /* The next backup, later, replaces it: the directory keeps one, and
     * the one before stays readable as previous.backup. */
    write_some(fx, 5);
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    assert_true(reap_within(&fx->b));
    assert_int_equal(fx->b.state, BACKUP_DONE);
    assert_true(fx->b.op > op);
    assert_int_equal(stat(fx->b.path, &st), 0);
    char old[VFS_PATH_MAX + 64];
    snprintf(old, sizeof(old), "%s/snapshot-%020" PRIu64 ".snap", fx->b.dir,
             op);
    assert_int_not_equal(stat(old, &st), 0);
    const char *path;
    uint64_t size;
    assert_true(backup_find(&fx->b, op, 3000, &path, &size));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, size);
    assert_non_null(strstr(path, BACKUP_PREVIOUS_NAME));
    /* Unread for BACKUP_PREVIOUS_KEEP_NS: removed. */
    backup_expire_previous(&fx->b, 3000 + BACKUP_PREVIOUS_KEEP_NS - 1);
    assert_true(backup_find(&fx->b, op, 3000 + BACKUP_PREVIOUS_KEEP_NS - 1,
                            &path, &size));
    backup_expire_previous(&fx->b, 2 * BACKUP_PREVIOUS_KEEP_NS + 3000);
    assert_false(backup_find(&fx->b, op, 2 * BACKUP_PREVIOUS_KEEP_NS + 3000,
                             &path, &size));
    assert_int_not_equal(stat(path, &st), 0);
}

/* The child cannot make the directory (a file is in its place): FAILED,
 * with the child's own line, not a generic one. */
static void a_failing_child_hands_its_error_back(void **state)
{
    struct fixture *fx = *state;
    uint32_t p = write_some(fx, 3);
    FILE *f = fopen(fx->b.dir, "w");
    assert_non_null(f);
    fclose(f);
    struct cohort_err err;
    bool threaded = true;
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    assert_false(threaded);
    assert_true(reap_within(&fx->b));
    assert_int_equal(fx->b.state, BACKUP_FAILED);
    assert_string_equal(fx->b.path, "");
    assert_non_null(strstr(fx->b.error, fx->b.dir));

    /* Once the obstacle is gone the next one succeeds. */
    assert_int_equal(unlink(fx->b.dir), 0);
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    assert_true(reap_within(&fx->b));
    assert_int_equal(fx->b.state, BACKUP_DONE);
}

/* Nothing applied yet: refused, and no child forked. */
static void nothing_applied_is_refused_without_a_child(void **state)
{
    struct fixture *fx = *state;
    struct harness *fresh = harness_new(3, 12);
    harness_start_all(fresh);
    struct cohort_err err;
    bool threaded = true;
    assert_int_equal(backup_start(&fx->b, fresh->r[0].driver, &fx->lock,
                                  refuse_thread, fx, harness_state_bytes,
                                  &fresh->r[0], 1000, &threaded, &err),
                     -COHORT_EAGAIN);
    assert_int_equal(fx->thread_calls, 0);
    assert_int_equal(fx->b.state, BACKUP_IDLE);
    assert_false(snapshot_job_running(&fx->b.job));
    harness_free(fresh);
}

/* A stopped child (the node closing) leaves the backup idle: startable. */
static void a_stopped_child_leaves_the_backup_idle(void **state)
{
    struct fixture *fx = *state;
    uint32_t p = write_some(fx, 4);
    struct cohort_err err;
    bool threaded = true;
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    backup_stop(&fx->b);
    assert_int_equal(fx->b.state, BACKUP_IDLE);
    assert_false(snapshot_job_running(&fx->b.job));
    assert_int_equal(start(fx, p, &threaded, &err), 0);
    assert_true(reap_within(&fx->b));
    assert_int_equal(fx->b.state, BACKUP_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_refused_thread_falls_back_to_a_forked_child, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failing_child_hands_its_error_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            nothing_applied_is_refused_without_a_child, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stopped_child_leaves_the_backup_idle,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
