/* storage/checkpoint_file and the core's use of it: the file's notes come
 * back as written, and any other bytes (another magic, format, cluster,
 * size or checksum, notes out of order) are refused; through the real
 * driver over a simulated disk (harness.h), a restarted replica takes the
 * notes its file holds at or below its snapshot, refuses the whole file
 * when a note contradicts its log, and passes over a damaged file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "core/replica.h"
#include "harness.h"
#include "storage/checkpoint_file.h"

#define CLUSTER 0xc0c0u /* harness.c's */

static void roundtrip(void **s)
{
    (void)s;
    uint64_t op[3] = {16, 32, 1024};
    uint64_t sum[3] = {7, 8, 9};
    uint8_t buf[CHECKPOINT_FILE_HEADER + 3 * 16];
    assert_int_equal(checkpoint_file_size(3), sizeof(buf));
    checkpoint_file_encode(buf, CLUSTER, op, sum, 3);
    uint64_t got_op[3], got_sum[3];
    size_t n = 99;
    struct cohort_err err;
    assert_int_equal(checkpoint_file_decode(buf, sizeof(buf), CLUSTER, got_op,
                                            got_sum, 3, &n, &err),
                     0);
    assert_int_equal(n, 3);
    assert_memory_equal(got_op, op, sizeof(op));
    assert_memory_equal(got_sum, sum, sizeof(sum));
    /* Room for fewer notes than it holds: refused, nothing written past. */
    assert_int_equal(checkpoint_file_decode(buf, sizeof(buf), CLUSTER, got_op,
                                            got_sum, 2, &n, &err),
                     -COHORT_ECORRUPT);
    assert_int_equal(n, 0);
}

/* Decode buf after changing byte at (to value), expecting a refusal. */
static void refused(const uint8_t *good, size_t size, size_t at, uint8_t value,
                    uint64_t cluster)
{
    uint8_t buf[CHECKPOINT_FILE_HEADER + 3 * 16];
    memcpy(buf, good, size);
    if (at < size)
        buf[at] = value;
    uint64_t op[3], sum[3];
    size_t n = 99;
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(
        checkpoint_file_decode(buf, size, cluster, op, sum, 3, &n, &err),
        -COHORT_ECORRUPT);
    assert_int_equal(n, 0);
    assert_true(err.message[0] != 0);
}

static void other_bytes_are_refused(void **s)
{
    (void)s;
    uint64_t op[3] = {16, 32, 48};
    uint64_t sum[3] = {1, 2, 3};
    uint8_t good[CHECKPOINT_FILE_HEADER + 3 * 16];
    checkpoint_file_encode(good, CLUSTER, op, sum, 3);
    size_t size = sizeof(good);
    refused(good, size, 0, 'X', CLUSTER);                      /* magic */
    refused(good, size, 8, 2, CLUSTER);                        /* format */
    refused(good, size, 12, 4, CLUSTER);                       /* count */
    refused(good, size, 5, (uint8_t)(good[5] ^ 1), CLUSTER);   /* crc */
    refused(good, size, 40, (uint8_t)(good[40] ^ 1), CLUSTER); /* a note */
    refused(good, size, size, 0, CLUSTER + 1);                 /* cluster */
    refused(good, size - 1, size, 0, CLUSTER);                 /* torn */
    refused(good, 3, size, 0, CLUSTER);                        /* short */
    /* Notes out of order, with a checksum that matches. */
    uint64_t back[3] = {16, 48, 32};
    uint8_t bad[sizeof(good)];
    checkpoint_file_encode(bad, CLUSTER, back, sum, 3);
    refused(bad, size, size, 0, CLUSTER);
    uint64_t zero[3] = {0, 16, 32};
    checkpoint_file_encode(bad, CLUSTER, zero, sum, 3);
    refused(bad, size, size, 0, CLUSTER);
}

static struct harness *h;

static int teardown(void **s)
{
    (void)s;
    if (h)
        harness_free(h);
    h = NULL;
    return 0;
}

struct notes {
    uint64_t op[CHECKPOINTS_MAX];
    uint64_t sum[CHECKPOINTS_MAX];
    size_t count;
};

static struct vfs *disk(uint32_t i)
{
    return sim_disk_vfs(&h->r[i].disk);
}

static void read_file(uint32_t i, struct notes *n)
{
    struct cohort_err err;
    assert_int_equal(checkpoint_file_read(disk(i), HARNESS_DATA_DIR, CLUSTER,
                                          n->op, n->sum, CHECKPOINTS_MAX,
                                          &n->count, &err),
                     0);
}

static void write_file(uint32_t i, const struct notes *n)
{
    size_t size = checkpoint_file_size(n->count);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    checkpoint_file_encode(buf, CLUSTER, n->op, n->sum, n->count);
    struct cohort_err err;
    assert_int_equal(
        checkpoint_file_write(disk(i), HARNESS_DATA_DIR, buf, size, &err), 0);
    free(buf);
}

static void restart(uint32_t i)
{
    harness_crash(h, i, false);
    harness_start(h, i);
    harness_run(h, 500);
}

static void a_restart_takes_its_files_notes(void **s)
{
    (void)s;
    static struct notes n;
    h = harness_new(3, 11);
    h->config.replica.snapshot_interval_ops = 8;
    harness_start_all(h);
    harness_run(h, 2000);
    uint32_t p = (uint32_t)harness_primary(h);
    uint32_t b = (p + 1) % 3;
    harness_write_each(h, p, 100, 100);
    harness_run(h, 500);
    h->config.replica.snapshot_interval_ops = 0;

    /* The file holds every note the replica made, at most its base. */
    harness_crash(h, b, false);
    read_file(b, &n);
    assert_true(n.count >= 4);
    harness_start(h, b);
    harness_run(h, 500);
    const struct replica *rb = harness_core(h, b);
    uint64_t base = replica_log_base(rb);
    assert_true(n.op[n.count - 1] <= base);
    assert_int_equal(replica_stats(rb)->checkpoints_loaded, n.count);
    assert_false(replica_stats(rb)->checkpoints_refused);
    uint64_t op[CHECKPOINTS_MAX], sum[CHECKPOINTS_MAX];
    size_t listed = replica_checkpoints(rb, op, sum, CHECKPOINTS_MAX);
    assert_int_equal(listed, n.count);
    assert_memory_equal(op, n.op, n.count * sizeof(uint64_t));
    assert_memory_equal(sum, n.sum, n.count * sizeof(uint64_t));

    /* Ops the log holds past its base; a note there that contradicts the
     * log makes the whole file another history's. */
    harness_write_each(h, (uint32_t)harness_primary(h), 500,
                       2 * CHECKPOINT_FINE);
    harness_run(h, 500);
    base = replica_log_base(harness_core(h, b));
    uint64_t held = base - base % CHECKPOINT_FINE + CHECKPOINT_FINE;
    assert_true(held <= replica_op(harness_core(h, b)));
    harness_crash(h, b, false);
    read_file(b, &n);
    n.op[n.count] = held;
    n.sum[n.count] = 12345;
    n.count++;
    write_file(b, &n);
    harness_start(h, b);
    harness_run(h, 500);
    assert_true(replica_stats(harness_core(h, b))->checkpoints_refused);
    assert_int_equal(replica_stats(harness_core(h, b))->checkpoints_loaded, 0);
    assert_int_equal(
        replica_checkpoints(harness_core(h, b), op, sum, CHECKPOINTS_MAX), 0);

    /* A damaged file is passed over: the replica starts and serves. */
    n.count--;
    write_file(b, &n);
    harness_crash(h, b, false);
    struct vfs_file *f;
    struct cohort_err err;
    char path[VFS_PATH_MAX];
    assert_int_equal(
        vfs_path_join(path, HARNESS_DATA_DIR, CHECKPOINT_FILE, &err), 0);
    assert_int_equal(vfs_open(disk(b), path, 0, &f, &err), 0);
    uint8_t junk = 0xff;
    assert_int_equal(vfs_write(disk(b), f, 30, &junk, 1, &err), 0);
    assert_int_equal(vfs_sync(disk(b), f, &err), 0);
    vfs_close(disk(b), f);
    harness_start(h, b);
    harness_run(h, 500);
    assert_false(replica_stats(harness_core(h, b))->checkpoints_refused);
    assert_int_equal(replica_stats(harness_core(h, b))->checkpoints_loaded, 0);
    harness_write_each(h, (uint32_t)harness_primary(h), 900, 3);
    restart(b);
    assert_int_equal(replica_stats(harness_core(h, b))->checkpoints_loaded, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(other_bytes_are_refused),
        cmocka_unit_test_teardown(a_restart_takes_its_files_notes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
