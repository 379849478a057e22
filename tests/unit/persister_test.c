/* runtime/persister: the storage thread reports a stalled write and a
 * failed sync through persister_state(), which the loop thread reads while
 * the storage thread writes the state. Under the TSan build (make tsan)
 * this is the test that sees a data race if the state is read without the
 * lock. No test waits on a clock: each polls until a state that, once
 * reached, stays. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "runtime/persister.h"
#include "storage/meta.h"
#include "storage/vfs_fault.h"
#include "storage/wal.h"
#include "tmpdir.h"

#define POLL_LIMIT 600000 /* 1 ms polls: ten minutes, a hung thread */

struct fixture {
    char root[64];
    char dir[128];
    struct vfs_fault fault;
    struct wal wal;
    struct meta meta;
    uv_loop_t loop;
    uv_async_t async;
    struct persister p;
    struct entry entries[4];
    uint8_t bodies[4][16];
};

static void on_async(uv_async_t *handle)
{
    (void)handle;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    if (!tmpdir_make(fx->root, sizeof(fx->root), "persister"))
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/wal", fx->root);
    vfs_fault_init(&fx->fault, vfs_posix());
    struct wal_config config;
    wal_config_defaults(&config);
    config.segment_size = 4096;
    struct wal_recovery rec;
    struct cohort_err err;
    struct wal_expect expect = {.log_exists = false};
    if (wal_open(&fx->wal, &fx->fault.vfs, fx->dir, &config, &expect, &rec,
                 &err))
        return -1;
    char meta_path[128];
    snprintf(meta_path, sizeof(meta_path), "%s/meta", fx->root);
    struct meta_record meta_rec;
    bool present;
    if (meta_open(&fx->meta, &fx->fault.vfs, meta_path, &meta_rec, &present,
                  &err))
        return -1;
    uint64_t parent = 0;
    for (int i = 0; i < 4; i++) {
        memset(fx->bodies[i], 'a' + i, sizeof(fx->bodies[i]));
        fx->entries[i].h = (struct entry_header){
            .parent = parent,
            .op = (uint64_t)i + 1,
            .client_id = 1,
            .request_no = (uint64_t)i + 1,
            .view = 1,
            .body_size = sizeof(fx->bodies[i]),
            .kind = ENTRY_CLIENT,
        };
        fx->entries[i].body = fx->bodies[i];
        entry_seal(&fx->entries[i].h, fx->entries[i].body);
        parent = fx->entries[i].h.checksum;
    }
    uv_loop_init(&fx->loop);
    uv_async_init(&fx->loop, &fx->async, on_async);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    persister_stop(&fx->p);
    uv_close((uv_handle_t *)&fx->async, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_loop_close(&fx->loop);
    wal_close(&fx->wal);
    meta_close(&fx->meta);
    vfs_fault_deinit(&fx->fault);
    tmpdir_remove(fx->root);
    free(fx);
    return 0;
}

static void start(struct fixture *fx)
{
    struct cohort_err err;
    assert_int_equal(
        persister_start(&fx->p, &fx->wal, &fx->meta, &fx->async, &err), 0);
}

/* A PERSIST job of entry i (the persister takes ownership). */
static void push_entry(struct fixture *fx, int i)
{
    struct storage_job *job = storage_job_new(STORAGE_PERSIST);
    job->op_first = job->op_last = fx->entries[i].h.op;
    job->checksum = fx->entries[i].h.checksum;
    job->entries = calloc(1, sizeof(*job->entries));
    job->bytes = malloc(sizeof(fx->bodies[i]));
    assert_non_null(job->entries);
    assert_non_null(job->bytes);
    memcpy(job->bytes, fx->bodies[i], sizeof(fx->bodies[i]));
    job->entries[0].h = fx->entries[i].h;
    job->entries[0].body = job->bytes;
    job->entry_count = 1;
    persister_push(&fx->p, job);
}

static void pause_1ms(void)
{
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* Poll, reading the state each time (what TSan watches), until the first
 * done job arrives; returns its op and frees the list. */
static uint64_t wait_done(struct fixture *fx, bool *saw_stalled)
{
    for (long i = 0; i < POLL_LIMIT; i++) {
        struct persister_state st;
        persister_state(&fx->p, &st);
        if (st.stalled)
            *saw_stalled = true;
        assert_false(st.failed);
        struct storage_job *j = persister_take_done(&fx->p);
        if (j) {
            uint64_t op = j->op_last;
            storage_job_free_list(j);
            return op;
        }
        pause_1ms();
    }
    fail_msg("the storage thread never finished a job");
    return 0;
}

static void jobs_complete_and_count_their_syncs(void **state)
{
    struct fixture *fx = *state;
    start(fx);
    bool stalled = false;
    push_entry(fx, 0);
    assert_int_equal(wait_done(fx, &stalled), 1);
    push_entry(fx, 1);
    assert_int_equal(wait_done(fx, &stalled), 2);
    struct persister_state st;
    persister_state(&fx->p, &st);
    assert_int_equal(st.syncs, 2);
    assert_true(st.log_bytes > 0); /* the one record, in one segment */
    assert_true(st.log_bytes <= 4096);
    assert_false(stalled);
    assert_false(st.stalled);
}

/* ENOSPC on the write: the job waits (stalled), is retried, and completes;
 * stalled is clear again once it has. */
static void a_failed_write_is_retried_and_clears_stalled(void **state)
{
    struct fixture *fx = *state;
    vfs_fault_fail_write(&fx->fault, 1, ENOSPC);
    start(fx);
    bool stalled = false;
    push_entry(fx, 0);
    assert_int_equal(wait_done(fx, &stalled), 1);
    struct persister_state st;
    persister_state(&fx->p, &st);
    assert_false(st.stalled);
    assert_int_equal(st.syncs, 2); /* the failed attempt and the retry */
    assert_int_equal(wal_op_durable(&fx->wal), 1);
}

/* A failed fdatasync: failed for good, the error readable, the batch never
 * handed back, and the thread still stops with a job queued behind it. */
static void a_failed_sync_fails_for_good(void **state)
{
    struct fixture *fx = *state;
    vfs_fault_fail_sync(&fx->fault, 1, EIO);
    start(fx);
    push_entry(fx, 0);
    struct persister_state st;
    persister_state(&fx->p, &st);
    for (long i = 0; !st.failed && i < POLL_LIMIT; i++) {
        pause_1ms();
        persister_state(&fx->p, &st);
    }
    assert_true(st.failed);
    assert_non_null(strstr(st.error.message, fx->dir));
    assert_null(persister_take_done(&fx->p));
    push_entry(fx, 1);
    persister_stop(&fx->p);
    assert_int_equal(wal_state(&fx->wal), WAL_FAILED);
    assert_int_equal(wal_op_durable(&fx->wal), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(jobs_complete_and_count_their_syncs),
        T(a_failed_write_is_retried_and_clears_stalled),
        T(a_failed_sync_fails_for_good),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
