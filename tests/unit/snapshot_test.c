/* storage/snapshot: snapshots round-trip, every corrupt byte is caught,
 * chunks reassemble into the same snapshot on a peer, only the newest is
 * kept, and a crash while writing leaves the previous one usable. */
#include <errno.h>
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

#include "common/entry.h"
#include "storage/snapshot.h"
#include "storage/vfs_fault.h"
#include "tmpdir.h"

struct fixture {
    char root[64];
    char dir[128];  /* snapshots */
    char peer[128]; /* a peer's snapshots */
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!tmpdir_make(fx->root, sizeof(fx->root), "snap"))
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/snap", fx->root);
    snprintf(fx->peer, sizeof(fx->peer), "%s/peer", fx->root);
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

static uint8_t state_byte(uint64_t op, uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13 ^ op);
}

static const uint8_t client_table[] = "client 1: request 7, reply OK";

static struct snapshot_info info_for(uint64_t op)
{
    struct snapshot_info info = {.op = op,
                                 .checksum = op * 0x9e3779b97f4a7c15ull,
                                 .timestamp_ms = 1700000000000ull + op,
                                 .view = (uint32_t)op / 3,
                                 .epoch = 2,
                                 .client_table_size = sizeof(client_table)};
    return info;
}

/* Write a snapshot for op with state_size bytes of state, in uneven
 * pieces, through vfs. Returns the first failing code, or 0. */
static int write_snapshot(struct vfs *vfs, const char *dir, uint64_t op,
                          uint64_t state_size, struct snapshot_info *out)
{
    struct snapshot_writer w;
    struct cohort_err err;
    struct snapshot_info info = info_for(op);
    int rc = snapshot_write_begin(&w, vfs, dir, &info, client_table, &err);
    if (rc != 0)
        return rc;
    uint8_t piece[5000];
    uint64_t at = 0;
    for (size_t n = 1; rc == 0 && at < state_size; n = n * 3 % 4999 + 1) {
        if (n > state_size - at)
            n = (size_t)(state_size - at);
        for (size_t i = 0; i < n; i++)
            piece[i] = state_byte(op, at + i);
        rc = snapshot_write(&w, piece, n, &err);
        at += n;
    }
    if (rc == 0)
        rc = snapshot_write_end(&w, out, &err);
    if (rc != 0)
        snapshot_write_abort(&w);
    return rc;
}

static void assert_snapshot_content(struct snapshot_reader *r, uint64_t op,
                                    uint64_t state_size)
{
    struct cohort_err err;
    const struct snapshot_info *info = snapshot_info(r);
    struct snapshot_info want = info_for(op);
    assert_int_equal(info->op, op);
    assert_int_equal(info->checksum, want.checksum);
    assert_int_equal(info->timestamp_ms, want.timestamp_ms);
    assert_int_equal(info->view, want.view);
    assert_int_equal(info->epoch, want.epoch);
    assert_int_equal(info->client_table_size, sizeof(client_table));
    assert_int_equal(info->state_size, state_size);
    uint8_t table[sizeof(client_table)];
    assert_int_equal(snapshot_read_client_table(r, table, &err), 0);
    assert_memory_equal(table, client_table, sizeof(client_table));
    uint8_t buf[3000];
    uint64_t at = 0;
    for (;;) {
        size_t done;
        assert_int_equal(
            snapshot_read_state(r, at, buf, sizeof(buf), &done, &err), 0);
        for (size_t i = 0; i < done; i++)
            assert_int_equal(buf[i], state_byte(op, at + i));
        at += done;
        if (done < sizeof(buf))
            break;
    }
    assert_int_equal(at, state_size);
}

static void snapshot_path(char *out, const char *dir, uint64_t op)
{
    snprintf(out, VFS_PATH_MAX, "%s/snapshot-%020" PRIu64 ".snap", dir, op);
}

static void snapshot_round_trips_and_rejects_a_flipped_byte(void **state)
{
    struct fixture *fx = *state;
    struct snapshot_info written;
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 42, 200000, &written),
                     0);
    assert_int_equal(written.file_size, SNAPSHOT_HEADER_SIZE +
                                            sizeof(client_table) + 200000 +
                                            SNAPSHOT_TRAILER_SIZE);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    assert_int_equal(r.skipped.code, 0);
    assert_snapshot_content(&r, 42, 200000);
    snapshot_close(&r);
    /* A small one, so that every byte can be flipped in turn. */
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 43, 700, &written),
                     0);
    char path[VFS_PATH_MAX];
    snapshot_path(path, fx->dir, 43);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    for (long at = 0; at < (long)written.file_size; at++) {
        assert_int_equal(fseek(f, at, SEEK_SET), 0);
        int c = fgetc(f);
        assert_int_equal(fseek(f, at, SEEK_SET), 0);
        fputc(c ^ 0x10, f);
        fflush(f);
        assert_int_equal(snapshot_open(&r, vfs_posix(), path, &err),
                         -COHORT_ECORRUPT);
        assert_non_null(strstr(err.message, "snapshot-00000000000000000043"));
        assert_int_equal(fseek(f, at, SEEK_SET), 0);
        fputc(c, f);
        fflush(f);
    }
    fclose(f);
    assert_int_equal(snapshot_open(&r, vfs_posix(), path, &err), 0);
    assert_snapshot_content(&r, 43, 700);
    snapshot_close(&r);
    /* A cut file is caught too. */
    assert_int_equal(truncate(path, (off_t)written.file_size - 1), 0);
    assert_int_equal(snapshot_open(&r, vfs_posix(), path, &err),
                     -COHORT_ECORRUPT);
}

static void snapshot_chunks_reassemble(void **state)
{
    struct fixture *fx = *state;
    struct snapshot_info written;
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 77, 100003, &written),
                     0);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    struct snapshot_receiver rc;
    assert_int_equal(snapshot_receive_begin(&rc, vfs_posix(), fx->peer, 77,
                                            r.info.file_size, &err),
                     0);
    uint8_t chunk[4000];
    uint64_t at = 0;
    int round = 0;
    for (;;) {
        size_t done;
        assert_int_equal(
            snapshot_read_chunk(&r, at, chunk, sizeof(chunk), &done, &err), 0);
        if (done == 0)
            break;
        /* A chunk past what was received is refused, with where to
         * resume; a repeated chunk is harmless. */
        assert_int_equal(snapshot_receive_chunk(&rc, at + 1, chunk, 1, &err),
                         -COHORT_EINVAL);
        assert_non_null(strstr(err.message, "resume at"));
        assert_int_equal(snapshot_receive_chunk(&rc, at, chunk, done, &err), 0);
        if (round++ % 5 == 0)
            assert_int_equal(snapshot_receive_chunk(&rc, at, chunk, done, &err),
                             0);
        at += done;
    }
    assert_int_equal(at, written.file_size);
    snapshot_close(&r);
    struct snapshot_info got;
    assert_int_equal(snapshot_receive_end(&rc, &got, &err), 0);
    assert_int_equal(got.op, 77);
    assert_int_equal(got.state_size, 100003);
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->peer, &err), 0);
    assert_snapshot_content(&r, 77, 100003);
    snapshot_close(&r);
}

static void received_snapshot_with_a_bad_byte_is_refused(void **state)
{
    struct fixture *fx = *state;
    struct snapshot_info written;
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 5, 1000, &written),
                     0);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    uint8_t all[2000];
    size_t done;
    assert_int_equal(snapshot_read_chunk(&r, 0, all, sizeof(all), &done, &err),
                     0);
    assert_int_equal(done, written.file_size);
    snapshot_close(&r);
    all[500] ^= 1;
    struct snapshot_receiver rc;
    assert_int_equal(
        snapshot_receive_begin(&rc, vfs_posix(), fx->peer, 5, done, &err), 0);
    assert_int_equal(snapshot_receive_chunk(&rc, 0, all, done, &err), 0);
    assert_int_equal(snapshot_receive_end(&rc, NULL, &err), -COHORT_ECORRUPT);
    snapshot_receive_abort(&rc);
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->peer, &err),
                     -COHORT_ENOTFOUND);
}

struct count {
    int files;
    int final;
};

static int count_file(void *ctx, const char *name)
{
    struct count *c = ctx;
    c->files++;
    c->final += strstr(name, ".snap") && !strstr(name, ".snap.") ? 1 : 0;
    return 0;
}

static struct count count_files(const char *dir)
{
    struct count c = {0, 0};
    struct cohort_err err;
    assert_int_equal(vfs_list(vfs_posix(), dir, count_file, &c, &err), 0);
    return c;
}

static void finishing_a_snapshot_deletes_older_ones(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 10, 100, NULL), 0);
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 20, 100, NULL), 0);
    struct count c = count_files(fx->dir);
    assert_int_equal(c.files, 1);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    assert_int_equal(r.info.op, 20);
    snapshot_close(&r);
    /* An abandoned write leaves nothing behind. */
    struct snapshot_writer w;
    struct snapshot_info info = info_for(30);
    assert_int_equal(snapshot_write_begin(&w, vfs_posix(), fx->dir, &info,
                                          client_table, &err),
                     0);
    assert_int_equal(snapshot_write(&w, "abc", 3, &err), 0);
    snapshot_write_abort(&w);
    assert_int_equal(count_files(fx->dir).files, 1);
}

static void newest_bad_snapshot_falls_back_to_an_older_good_one(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 20, 500, NULL), 0);
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 10, 500, NULL), 0);
    assert_int_equal(count_files(fx->dir).final, 2);
    char path[VFS_PATH_MAX];
    snapshot_path(path, fx->dir, 20);
    FILE *f = fopen(path, "r+b");
    assert_int_equal(fseek(f, 300, SEEK_SET), 0);
    fputc(0xff, f);
    fclose(f);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    assert_int_equal(r.info.op, 10);
    assert_int_equal(r.skipped.code, -COHORT_ECORRUPT);
    assert_non_null(strstr(r.skipped.message, "snapshot-00000000000000000020"));
    snapshot_close(&r);
}

static void no_snapshot_is_not_found(void **state)
{
    struct fixture *fx = *state;
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err),
                     -COHORT_ENOTFOUND);
    assert_int_equal(mkdir(fx->dir, 0755), 0);
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err),
                     -COHORT_ENOTFOUND);
    assert_non_null(strstr(err.message, "no snapshot"));
}

/* A snapshot claiming an op above ENTRY_OP_MAX (only a crafted file does)
 * is corrupt: installed, it would put the replica where op + 1 wraps. The
 * older good one is used instead. */
static void a_snapshot_beyond_the_op_limit_is_corrupt(void **state)
{
    struct fixture *fx = *state;
    struct snapshot_info info;
    /* The bad one first: finishing a snapshot deletes older ones. */
    assert_int_equal(
        write_snapshot(vfs_posix(), fx->dir, ENTRY_OP_MAX + 1, 100, &info), 0);
    assert_int_equal(write_snapshot(vfs_posix(), fx->dir, 10, 100, &info), 0);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, vfs_posix(), fx->dir, &err), 0);
    assert_int_equal(snapshot_info(&r)->op, 10);
    assert_non_null(strstr(r.skipped.message, "op beyond any log"));
    snapshot_close(&r);
}

/* Snapshot 10 is durable; writing 20 loses the power after `ops`
 * operations; after the crash the newest usable snapshot is 10 or 20, and
 * 20 if its write returned 0. Returns true if the write went through. */
static bool crash_while_writing(struct fixture *fx, uint64_t ops, uint64_t keep,
                                uint64_t names)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    tmpdir_remove(fx->dir);
    assert_int_equal(write_snapshot(&f.vfs, fx->dir, 10, 3000, NULL), 0);
    vfs_fault_power_off_after(&f, ops);
    bool done = write_snapshot(&f.vfs, fx->dir, 20, 150000, NULL) == 0;
    bool all = done && !f.powered_off;
    struct cohort_err err;
    if (keep == 1)
        keep = vfs_fault_unsynced_bytes(&f) / 2;
    if (names == 1)
        names = vfs_fault_unsynced_names(&f)
                    ? (uint64_t)1 << (vfs_fault_unsynced_names(&f) - 1)
                    : 0;
    assert_int_equal(vfs_fault_crash(&f, keep, names, &err), 0);
    struct snapshot_reader r;
    int rc = snapshot_open_latest(&r, &f.vfs, fx->dir, &err);
    if (rc != 0)
        fail_msg("power off after %" PRIu64 ": %s", ops, err.message);
    if (done)
        assert_int_equal(r.info.op, 20);
    assert_snapshot_content(&r, r.info.op, r.info.op == 20 ? 150000 : 3000);
    snapshot_close(&r);
    vfs_fault_deinit(&f);
    return all;
}

static void crash_while_writing_keeps_a_usable_snapshot(void **state)
{
    struct fixture *fx = *state;
    bool all = false;
    uint64_t ops = 0;
    for (; !all; ops++) {
        all = crash_while_writing(fx, ops, 0, VFS_FAULT_NAMES_NONE);
        crash_while_writing(fx, ops, 1, VFS_FAULT_NAMES_NONE);
        crash_while_writing(fx, ops, VFS_FAULT_KEEP_ALL, VFS_FAULT_NAMES_ALL);
        crash_while_writing(fx, ops, 0, 1); /* only the last name change */
        assert_true(ops < 100);
    }
    assert_true(ops > 5);
}

/* A big snapshot is handed to writeback chunk by chunk, each waited for
 * before the next but one, so its dirty pages stay bounded (issue 16): at
 * most about two 8 MiB chunks (and a 64 KiB buffer) written and not waited
 * for, not the whole file until the final fdatasync. */
static void big_snapshot_is_written_back_in_bounded_chunks(void **state)
{
    struct fixture *fx = *state;
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    uint64_t size = 30u << 20;
    assert_int_equal(write_snapshot(&f.vfs, fx->dir, 30, size, NULL), 0);
    const struct vfs_fault_stats *st = vfs_fault_stats(&f);
    uint64_t chunk = 8u << 20, buffer = 64u * 1024;
    assert_true(st->writebacks >= 2 * (size / chunk) - 1);
    assert_true(st->writeback_waits >= size / chunk - 1);
    assert_true(st->writeback_max_size <= chunk + buffer);
    if (st->unwaited_max > 2 * (chunk + buffer))
        fail_msg("%" PRIu64 " bytes were written and not waited for",
                 st->unwaited_max);
    struct snapshot_reader r;
    struct cohort_err err;
    assert_int_equal(snapshot_open_latest(&r, &f.vfs, fx->dir, &err), 0);
    assert_snapshot_content(&r, 30, size);
    snapshot_close(&r);
    vfs_fault_deinit(&f);
    /* A small one needs none. */
    vfs_fault_init(&f, vfs_posix());
    assert_int_equal(write_snapshot(&f.vfs, fx->dir, 31, 150000, NULL), 0);
    assert_int_equal(vfs_fault_stats(&f)->writebacks, 0);
    vfs_fault_deinit(&f);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(snapshot_round_trips_and_rejects_a_flipped_byte),
        T(snapshot_chunks_reassemble),
        T(received_snapshot_with_a_bad_byte_is_refused),
        T(finishing_a_snapshot_deletes_older_ones),
        T(newest_bad_snapshot_falls_back_to_an_older_good_one),
        T(no_snapshot_is_not_found),
        T(a_snapshot_beyond_the_op_limit_is_corrupt),
        T(crash_while_writing_keeps_a_usable_snapshot),
        T(big_snapshot_is_written_back_in_bounded_chunks),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
