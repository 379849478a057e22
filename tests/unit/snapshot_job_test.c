/* runtime/snapshot_job: a snapshot thread runs its write function in this
 * process (no fork: what it writes is what the caller copied), is reaped
 * only once it finished, hands its error back, and gives its context back
 * to release() exactly once, also when stopped while running. A forked
 * child still works as before. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/snapshot_job.h"

struct ctx {
    atomic_int ran; /* set by the write function */
    atomic_bool go; /* the write function waits for this */
    int rc;         /* what the write function returns */
    pid_t pid;      /* the process it ran in */
    int released;   /* release() calls */
};

static int write_fn(void *arg, struct cohort_err *err)
{
    struct ctx *c = arg;
    while (!atomic_load(&c->go))
        usleep(1000);
    c->pid = getpid();
    atomic_fetch_add(&c->ran, 1);
    if (c->rc != 0)
        return err_set(err, c->rc, "snapshot at op 7: the disk said no");
    return 0;
}

static void release_fn(void *arg)
{
    struct ctx *c = arg;
    c->released++;
}

/* Poll the reap (as the node's tick does) for up to 10 s. */
static bool reap_within(struct snapshot_job *j, uint64_t *op, bool *ok,
                        char *error, size_t size)
{
    for (int i = 0; i < 10000; i++) {
        if (snapshot_job_reap(j, op, ok, error, size))
            return true;
        usleep(1000);
    }
    return false;
}

static void thread_runs_in_this_process_and_is_reaped_once_done(void **state)
{
    (void)state;
    struct snapshot_job j;
    snapshot_job_init(&j);
    struct ctx c = {.rc = 0};
    char error[COHORT_ERR_MESSAGE_MAX];
    assert_true(snapshot_job_start_thread(&j, 7, write_fn, &c, release_fn,
                                          error, sizeof(error)));
    assert_true(snapshot_job_running(&j));
    uint64_t op = 0;
    bool ok = false;
    /* Not finished: not reaped, and its context not released. */
    assert_false(snapshot_job_reap(&j, &op, &ok, error, sizeof(error)));
    assert_int_equal(c.released, 0);
    atomic_store(&c.go, true);
    assert_true(reap_within(&j, &op, &ok, error, sizeof(error)));
    assert_true(ok);
    assert_int_equal(op, 7);
    assert_false(snapshot_job_running(&j));
    /* It ran here, in this process, once: a forked child's effects would
     * not be seen. */
    assert_int_equal(atomic_load(&c.ran), 1);
    assert_int_equal(c.pid, getpid());
    assert_int_equal(c.released, 1);
    assert_false(snapshot_job_reap(&j, &op, &ok, error, sizeof(error)));
}

static void thread_error_is_handed_back(void **state)
{
    (void)state;
    struct snapshot_job j;
    snapshot_job_init(&j);
    struct ctx c = {.rc = -COHORT_EIO};
    atomic_store(&c.go, true);
    char error[COHORT_ERR_MESSAGE_MAX];
    assert_true(snapshot_job_start_thread(&j, 9, write_fn, &c, release_fn,
                                          error, sizeof(error)));
    uint64_t op = 0;
    bool ok = true;
    assert_true(reap_within(&j, &op, &ok, error, sizeof(error)));
    assert_false(ok);
    assert_int_equal(op, 9);
    assert_non_null(strstr(error, "the disk said no"));
    assert_int_equal(c.released, 1);
}

static void stop_waits_for_a_running_thread(void **state)
{
    (void)state;
    struct snapshot_job j;
    snapshot_job_init(&j);
    struct ctx c = {.rc = 0};
    char error[COHORT_ERR_MESSAGE_MAX];
    assert_true(snapshot_job_start_thread(&j, 3, write_fn, &c, release_fn,
                                          error, sizeof(error)));
    atomic_store(&c.go, true);
    snapshot_job_stop(&j);
    assert_false(snapshot_job_running(&j));
    assert_int_equal(atomic_load(&c.ran), 1);
    assert_int_equal(c.released, 1);
    /* IDLE again: another one can start. */
    assert_true(snapshot_job_start_thread(&j, 4, write_fn, &c, NULL, error,
                                          sizeof(error)));
    uint64_t op = 0;
    bool ok = false;
    assert_true(reap_within(&j, &op, &ok, error, sizeof(error)));
    assert_int_equal(op, 4);
    assert_int_equal(atomic_load(&c.ran), 2);
    assert_int_equal(c.released, 1);
}

static int child_fn(void *arg, struct cohort_err *err)
{
    struct ctx *c = arg;
    atomic_fetch_add(&c->ran, 1); /* the child's copy, not ours */
    if (c->rc != 0)
        return err_set(err, c->rc, "child: the disk said no");
    return 0;
}

static void forked_child_still_works(void **state)
{
    (void)state;
    struct snapshot_job j;
    snapshot_job_init(&j);
    struct ctx c = {.rc = -COHORT_EIO};
    char error[COHORT_ERR_MESSAGE_MAX];
    struct dirlock lock = {.fd = -1};
    assert_true(
        snapshot_job_start(&j, 5, &lock, child_fn, &c, error, sizeof(error)));
    uint64_t op = 0;
    bool ok = true;
    assert_true(reap_within(&j, &op, &ok, error, sizeof(error)));
    assert_false(ok);
    assert_int_equal(op, 5);
    assert_non_null(strstr(error, "the disk said no"));
    assert_int_equal(atomic_load(&c.ran), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thread_runs_in_this_process_and_is_reaped_once_done),
        cmocka_unit_test(thread_error_is_handed_back),
        cmocka_unit_test(stop_waits_for_a_running_thread),
        cmocka_unit_test(forked_child_still_works),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
