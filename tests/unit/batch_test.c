/* storage/batch: a group-commit round keeps the metadata's log end bound
 * (meta.h) true. Metadata records carry the wal's durable op, a round that
 * starts a segment raises the bound, and a round that takes the log below
 * it (a suffix replacement, a reset) lowers it first: at every crash point
 * the log, recovered against the bound, shows no loss; and a log that lost
 * its last segment behind cohort's back does. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/batch.h"
#include "storage/checkpoint_file.h"
#include "storage/vfs_fault.h"
#include "tmpdir.h"

#define OPS_MAX 200
#define BODY_SIZE 150
#define SEGMENT_SIZE 4096

/* A log: entries by op, bodies from (op, tag), chained. */
struct model {
    struct entry e[OPS_MAX + 1];
    uint8_t body[OPS_MAX + 1][BODY_SIZE];
};

static void model_put(struct model *m, uint64_t op, uint8_t tag)
{
    struct entry *e = &m->e[op];
    memset(e, 0, sizeof(*e));
    for (uint32_t i = 0; i < BODY_SIZE; i++)
        m->body[op][i] = (uint8_t)(op * 31 + i + tag);
    e->h.parent = op > 1 ? m->e[op - 1].h.checksum : 0;
    e->h.op = op;
    e->h.client_id = 1;
    e->h.request_no = op;
    e->h.view = tag + 1u;
    e->h.body_size = BODY_SIZE;
    e->h.kind = ENTRY_CLIENT;
    e->body = m->body[op];
    entry_seal(&e->h, e->body);
}

static struct storage_job *persist_job(struct model *m, uint64_t from,
                                       uint64_t to, uint8_t tag)
{
    struct storage_job *job = storage_job_new(STORAGE_PERSIST);
    uint64_t count = to - from + 1;
    job->entries = calloc(count, sizeof(*job->entries));
    job->bytes = malloc(count * BODY_SIZE);
    assert_true(job->entries && job->bytes);
    for (uint64_t op = from; op <= to; op++) {
        model_put(m, op, tag);
        struct entry *copy = &job->entries[op - from];
        copy->h = m->e[op].h;
        memcpy(job->bytes + (op - from) * BODY_SIZE, m->body[op], BODY_SIZE);
        copy->body = job->bytes + (op - from) * BODY_SIZE;
    }
    job->op_first = from;
    job->op_last = to;
    job->checksum = m->e[to].h.checksum;
    job->entry_count = (uint32_t)count;
    return job;
}

static struct storage_job *meta_job(uint32_t view)
{
    struct storage_job *job = storage_job_new(STORAGE_META);
    job->meta.cluster_id = 7;
    job->meta.meta = (struct replica_meta){.view = view, .replica_count = 3};
    job->meta.log_end_min = 999999; /* the round writes its own */
    return job;
}

/* Run one round of the jobs (a NULL-terminated list of up to 3). */
static int round_run(struct wal *w, struct meta *m, struct storage_job *a,
                     struct storage_job *b)
{
    a->next = b;
    struct storage_batch batch;
    storage_batch_init(&batch, a);
    struct cohort_err err;
    int rc = storage_batch_run(&batch, w, m, &err);
    storage_batch_finish(&batch, m);
    storage_job_free_list(a);
    return rc;
}

static void round_ok(struct wal *w, struct meta *m, struct storage_job *a,
                     struct storage_job *b)
{
    assert_int_equal(round_run(w, m, a, b), 0);
}

struct fixture {
    char root[64];
    char dir[128];
    char meta_path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!tmpdir_make(fx->root, sizeof(fx->root), "batch"))
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/wal", fx->root);
    snprintf(fx->meta_path, sizeof(fx->meta_path), "%s/meta", fx->root);
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

/* Open meta and the wal as a replica does: the wal against the snapshot
 * base and what the metadata says. */
static void open_both(struct fixture *fx, struct vfs *vfs, struct wal *w,
                      struct meta *m, struct wal_recovery *rec,
                      struct wal_position base)
{
    struct cohort_err err;
    struct meta_record r;
    bool present;
    if (meta_open(m, vfs, fx->meta_path, &r, &present, &err) != 0)
        fail_msg("meta_open: %s", err.message);
    struct wal_config config;
    wal_config_defaults(&config);
    config.segment_size = SEGMENT_SIZE;
    struct wal_expect x = {.base = base,
                           .log_exists = present,
                           .log_end_min = present ? r.log_end_min : 0,
                           .log_end_check = present ? r.log_end_check : 0};
    if (wal_open(w, vfs, fx->dir, &config, &x, rec, &err) != 0)
        fail_msg("wal_open: %s", err.message);
}

static void close_both(struct wal *w, struct meta *m)
{
    wal_close(w);
    meta_close(m);
}

static uint64_t last_op(const struct wal_recovery *rec, uint64_t base)
{
    return rec->entry_count ? rec->entries[rec->entry_count - 1].h.op : base;
}

static void bound_follows_the_durable_log(void **state)
{
    struct fixture *fx = *state;
    struct model *m = calloc(1, sizeof(*m));
    struct wal w;
    struct meta mt;
    struct wal_recovery rec;
    const struct wal_position zero = {0, 0};
    open_both(fx, vfs_posix(), &w, &mt, &rec, zero);
    round_ok(&w, &mt, persist_job(m, 1, 10, 0), meta_job(1));
    assert_int_equal(meta_log_end_min(&mt), 10);
    /* A round that starts segments raises it without a metadata job. */
    uint64_t seq = meta_seq(&mt);
    round_ok(&w, &mt, persist_job(m, 11, 60, 0), NULL);
    assert_int_equal(meta_log_end_min(&mt), 60);
    assert_int_equal(meta_seq(&mt), seq + 1);
    /* A suffix replacement from op 20 on takes it down first. */
    round_ok(&w, &mt, persist_job(m, 20, 25, 1), NULL);
    assert_true(meta_log_end_min(&mt) >= 19);
    assert_true(meta_log_end_min(&mt) <= 25);
    close_both(&w, &mt);
    open_both(fx, vfs_posix(), &w, &mt, &rec, zero);
    if (rec.damaged_op)
        fail_msg("damage: %s", rec.damage.message);
    assert_int_equal(last_op(&rec, 0), 25);
    close_both(&w, &mt);
    /* The segment the replacement started, deleted behind cohort's back,
     * shows: the replaced records (ops 20..32 of the first log) in the
     * segment before it come back, but not the entry the bound names. */
    char path[VFS_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%020d.log", fx->dir, 20);
    assert_int_equal(remove(path), 0);
    open_both(fx, vfs_posix(), &w, &mt, &rec, zero);
    assert_int_equal(rec.damaged_op, 1);
    assert_int_equal(rec.entry_count, 0);
    if (!strstr(rec.damage.message, "not the one the metadata records"))
        fail_msg("damage: %s", rec.damage.message);
    close_both(&w, &mt);
    free(m);
}

static bool checkpoints_file_exists(const struct fixture *fx)
{
    char path[VFS_PATH_MAX];
    snprintf(path, sizeof(path), "%s/" CHECKPOINT_FILE, fx->root);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* A compaction's checkpoints are written only by storage_batch_finish(),
 * which the storage thread calls after handing the round's jobs back: the
 * file's two fsyncs never delay a reply. */
static void checkpoints_are_written_after_the_round(void **state)
{
    struct fixture *fx = *state;
    struct model *m = calloc(1, sizeof(*m));
    struct wal w;
    struct meta mt;
    struct wal_recovery rec;
    const struct wal_position zero = {0, 0};
    open_both(fx, vfs_posix(), &w, &mt, &rec, zero);
    round_ok(&w, &mt, persist_job(m, 1, 60, 0), meta_job(1));
    const uint64_t op[2] = {16, 32};
    const uint64_t sum[2] = {m->e[16].h.checksum, m->e[32].h.checksum};
    struct storage_job *compact = storage_job_new(STORAGE_COMPACT);
    compact->compact_op = 40;
    compact->snapshot_op = 40;
    compact->checkpoints_size = checkpoint_file_size(2);
    compact->checkpoints = malloc(compact->checkpoints_size);
    assert_non_null(compact->checkpoints);
    checkpoint_file_encode(compact->checkpoints, 7, op, sum, 2);
    struct storage_batch batch;
    storage_batch_init(&batch, compact);
    struct cohort_err err;
    assert_int_equal(storage_batch_run(&batch, &w, &mt, &err), 0);
    assert_false(checkpoints_file_exists(fx));
    storage_batch_finish(&batch, &mt);
    assert_null(batch.checkpoints);
    uint64_t got_op[4], got_sum[4];
    size_t count = 0;
    assert_int_equal(checkpoint_file_read(vfs_posix(), fx->root, 7, got_op,
                                          got_sum, 4, &count, &err),
                     0);
    assert_int_equal(count, 2);
    assert_int_equal(got_op[1], 32);
    assert_int_equal(got_sum[1], sum[1]);
    storage_job_free_list(compact);
    close_both(&w, &mt);
    free(m);
}

/* Crash modes (see wal_test.c): unsynced bytes kept (none, all) and name
 * changes kept (none, all, the last only). */
static const int crash_modes[][2] = {{0, 0}, {1, 1}, {0, 2}, {1, 2}};

static void crash_apply(struct vfs_fault *f, const int mode[2])
{
    struct cohort_err err;
    uint32_t n = vfs_fault_unsynced_names(f);
    uint64_t names = mode[1] == 0   ? VFS_FAULT_NAMES_NONE
                     : mode[1] == 1 ? VFS_FAULT_NAMES_ALL
                     : n == 0       ? 0
                                    : (uint64_t)1 << (n - 1 < 63 ? n - 1 : 63);
    assert_int_equal(
        vfs_fault_crash(f, mode[0] ? VFS_FAULT_KEEP_ALL : 0, names, &err), 0);
}

/* Ops 1..60 and metadata, then a round that replaces the log from op 20
 * (or, with reset, empties it down to a snapshot at op 100) with the power
 * going off after `power_ops` operations. Recovered against the metadata,
 * the log shows no loss. */
static void shrink_run(struct fixture *fx, bool reset, uint64_t power_ops,
                       const int mode[2], bool *completed)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct model *m = calloc(1, sizeof(*m));
    struct model *snap = calloc(1, sizeof(*snap));
    struct wal w;
    struct meta mt;
    struct wal_recovery rec;
    tmpdir_remove(fx->dir);
    remove(fx->meta_path);
    const struct wal_position zero = {0, 0};
    open_both(fx, &f.vfs, &w, &mt, &rec, zero);
    round_ok(&w, &mt, persist_job(m, 1, 60, 0), meta_job(1));
    assert_int_equal(meta_log_end_min(&mt), 60);
    struct wal_position base = zero;
    struct storage_job *job;
    if (reset) {
        for (uint64_t op = 1; op <= 100; op++)
            model_put(snap, op, 2);
        base = (struct wal_position){100, snap->e[100].h.checksum};
        job = storage_job_new(STORAGE_RESET);
        job->op_last = base.op;
        job->checksum = base.checksum;
    } else {
        job = persist_job(m, 20, 25, 1);
    }
    vfs_fault_power_off_after(&f, power_ops);
    *completed = round_run(&w, &mt, job, meta_job(2)) == 0 && !f.powered_off;
    crash_apply(&f, mode);
    close_both(&w, &mt);
    open_both(fx, &f.vfs, &w, &mt, &rec, base);
    if (rec.damaged_op)
        fail_msg("%s, crash after %" PRIu64 " operations: %s",
                 reset ? "reset" : "suffix replacement", power_ops,
                 rec.damage.message);
    if (*completed)
        assert_int_equal(last_op(&rec, base.op), reset ? 100 : 25);
    close_both(&w, &mt);
    vfs_fault_deinit(&f);
    free(m);
    free(snap);
}

static void shrinking_rounds_lower_the_bound_at_every_crash_point(void **s)
{
    struct fixture *fx = *s;
    for (int reset = 0; reset <= 1; reset++) {
        bool completed = false;
        uint64_t points = 0;
        for (uint64_t k = 0; !completed; k++) {
            for (size_t i = 0; i < sizeof(crash_modes) / sizeof(crash_modes[0]);
                 i++)
                shrink_run(fx, reset, k, crash_modes[i], &completed);
            points++;
            assert_true(points < 200);
        }
        assert_true(points > 3);
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(bound_follows_the_durable_log),
        T(checkpoints_are_written_after_the_round),
        T(shrinking_rounds_lower_the_bound_at_every_crash_point),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
