/* storage/meta: metadata survives reopen and a crash at any write, a bad
 * slot falls back to the other, and two bad slots are a clear error. */
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

#include <cmocka.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "storage/meta.h"
#include "storage/vfs_fault.h"
#include "tmpdir.h"

struct fixture {
    char root[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!tmpdir_make(fx->root, sizeof(fx->root), "meta"))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/meta", fx->root);
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

static struct meta_record record_for(uint32_t n)
{
    struct meta_record r = {.cluster_id = 0xc1a55e5ull,
                            .meta = {.view = n * 3,
                                     .last_normal_view = n * 3 - (n % 2),
                                     .epoch = n / 2,
                                     .replica_count = 3,
                                     .flags = n % 2,
                                     .membership = 0x2103u + n,
                                     .epoch_op = n * 10u,
                                     .epoch_checksum = n * 11u},
                            .log_end_min = n * 1000u,
                            .log_end_check = n * 77u};
    return r;
}

static bool record_equal(const struct meta_record *a,
                         const struct meta_record *b)
{
    return a->cluster_id == b->cluster_id && a->meta.view == b->meta.view &&
           a->meta.last_normal_view == b->meta.last_normal_view &&
           a->meta.epoch == b->meta.epoch &&
           a->meta.replica_count == b->meta.replica_count &&
           a->meta.flags == b->meta.flags && a->log_end_min == b->log_end_min &&
           a->log_end_check == b->log_end_check &&
           a->meta.membership == b->meta.membership &&
           a->meta.epoch_op == b->meta.epoch_op &&
           a->meta.epoch_checksum == b->meta.epoch_checksum;
}

static void open_ok(struct meta *m, struct vfs *vfs, const char *path,
                    struct meta_record *r, bool *present)
{
    struct cohort_err err;
    int rc = meta_open(m, vfs, path, r, present, &err);
    if (rc != 0)
        fail_msg("meta_open: %s", err.message);
}

static void write_ok(struct meta *m, uint32_t n)
{
    struct cohort_err err;
    struct meta_record r = record_for(n);
    int rc = meta_write(m, &r, &err);
    if (rc != 0)
        fail_msg("meta_write: %s", err.message);
}

static void flip_byte(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x01, f);
    fclose(f);
}

static void fresh_directory_has_no_metadata(void **state)
{
    struct fixture *fx = *state;
    struct meta m;
    struct meta_record r;
    bool present = true;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_false(present);
    assert_int_equal(meta_seq(&m), 0);
    meta_close(&m);
    assert_null(fopen(fx->path, "rb")); /* opening creates nothing */
}

static void written_metadata_survives_reopen(void **state)
{
    struct fixture *fx = *state;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    for (uint32_t n = 1; n <= 5; n++)
        write_ok(&m, n);
    assert_int_equal(meta_seq(&m), 5);
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_true(present);
    struct meta_record want = record_for(5);
    assert_true(record_equal(&r, &want));
    assert_int_equal(r.format_version, META_FORMAT_VERSION);
    assert_int_equal(meta_seq(&m), 5);
    write_ok(&m, 6); /* goes on from the loaded seq */
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    want = record_for(6);
    assert_true(record_equal(&r, &want));
    assert_int_equal(meta_seq(&m), 6);
    meta_close(&m);
}

/* Crash modes: unsynced bytes kept (none, half, all) and name changes kept
 * (none, all, only the last). */
static const int crash_modes[][2] = {
    {0, 0}, {1, 0}, {2, 0}, {2, 1}, {0, 2}, {1, 1},
};

static void crash(struct vfs_fault *f, const int mode[2])
{
    struct cohort_err err;
    uint64_t unsynced = vfs_fault_unsynced_bytes(f);
    uint64_t keep = mode[0] == 0   ? 0
                    : mode[0] == 1 ? unsynced / 2
                                   : VFS_FAULT_KEEP_ALL;
    uint32_t n = vfs_fault_unsynced_names(f);
    uint64_t names = mode[1] == 0   ? VFS_FAULT_NAMES_NONE
                     : mode[1] == 1 ? VFS_FAULT_NAMES_ALL
                     : n == 0       ? 0
                                    : (uint64_t)1 << (n - 1);
    assert_int_equal(vfs_fault_crash(f, keep, names, &err), 0);
}

/* Write records 1..4 with the power going off after `ops` operations;
 * crash; the loaded record is the last one written or the one in flight.
 * Returns true if every write went through. */
static bool crash_at(struct fixture *fx, uint64_t ops, const int mode[2])
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    tmpdir_remove(fx->root);
    assert_int_equal(mkdir(fx->root, 0755), 0);
    struct meta m;
    struct meta_record r;
    bool present;
    struct cohort_err err;
    vfs_fault_power_off_after(&f, ops);
    uint32_t done = 0;
    if (meta_open(&m, &f.vfs, fx->path, &r, &present, &err) == 0) {
        for (uint32_t n = 1; n <= 4; n++) {
            struct meta_record w = record_for(n);
            if (meta_write(&m, &w, &err) != 0)
                break;
            done = n;
        }
        meta_close(&m);
    }
    bool all = done == 4 && !f.powered_off;
    crash(&f, mode);
    open_ok(&m, &f.vfs, fx->path, &r, &present);
    if (!present) {
        assert_int_equal(done, 0);
    } else {
        struct meta_record last = record_for(done ? done : 1);
        struct meta_record next = record_for(done + 1);
        if (!record_equal(&r, &last) && !record_equal(&r, &next))
            fail_msg("power off after %" PRIu64 " ops, %u written: loaded "
                     "view %" PRIu64,
                     ops, done, r.meta.view);
    }
    /* The survivor takes a new record. */
    write_ok(&m, 9);
    meta_close(&m);
    open_ok(&m, &f.vfs, fx->path, &r, &present);
    struct meta_record nine = record_for(9);
    assert_true(present);
    assert_true(record_equal(&r, &nine));
    meta_close(&m);
    vfs_fault_deinit(&f);
    return all;
}

static void meta_survives_crash_at_every_write_point(void **state)
{
    struct fixture *fx = *state;
    uint64_t ops = 0;
    bool all = false;
    for (; !all; ops++) {
        for (size_t i = 0; i < sizeof(crash_modes) / sizeof(crash_modes[0]);
             i++)
            all = crash_at(fx, ops, crash_modes[i]);
        assert_true(ops < 100);
    }
    assert_true(ops > 8); /* create (several steps) and three writes */
}

static void one_bad_slot_falls_back_to_the_other(void **state)
{
    struct fixture *fx = *state;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    write_ok(&m, 1); /* seq 1: slot 1 */
    write_ok(&m, 2); /* seq 2: slot 0 */
    meta_close(&m);
    flip_byte(fx->path, 33); /* the view in slot 0 */
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    struct meta_record one = record_for(1);
    assert_true(record_equal(&r, &one));
    /* The next write goes over the bad slot, not the good one. */
    write_ok(&m, 3);
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    struct meta_record three = record_for(3);
    assert_true(record_equal(&r, &three));
    meta_close(&m);
}

static void both_meta_slots_corrupt_is_a_clear_error(void **state)
{
    struct fixture *fx = *state;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    write_ok(&m, 1);
    write_ok(&m, 2);
    meta_close(&m);
    flip_byte(fx->path, 40);
    flip_byte(fx->path, META_SLOT_SIZE + 0);
    struct cohort_err err;
    assert_int_equal(meta_open(&m, vfs_posix(), fx->path, &r, &present, &err),
                     -COHORT_ECORRUPT);
    assert_false(present);
    assert_non_null(strstr(err.message, fx->path));
    assert_non_null(strstr(err.message, "offset 0 fails its checksum"));
    assert_non_null(strstr(err.message, "offset 4096 has a bad magic number"));
    assert_non_null(strstr(err.message, "so it must not start"));
    /* An empty file is no "fresh start" either. */
    FILE *f = fopen(fx->path, "wb");
    fclose(f);
    assert_int_equal(meta_open(&m, vfs_posix(), fx->path, &r, &present, &err),
                     -COHORT_ECORRUPT);
}

static void newer_format_is_refused(void **state)
{
    struct fixture *fx = *state;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    write_ok(&m, 1);
    meta_close(&m);
    uint8_t slot[META_RECORD_SIZE];
    struct meta_record rec = record_for(2);
    meta_slot_encode(&rec, 2, slot);
    put_u32(slot + 8, META_FORMAT_VERSION + 1);
    put_u32(slot + 4,
            crc32c(crc32c(0, slot, 4), slot + 8, META_RECORD_SIZE - 8));
    FILE *f = fopen(fx->path, "r+b");
    assert_int_equal(fwrite(slot, 1, sizeof(slot), f), sizeof(slot));
    fclose(f);
    struct cohort_err err;
    assert_int_equal(meta_open(&m, vfs_posix(), fx->path, &r, &present, &err),
                     -COHORT_ENOTSUP);
    assert_non_null(strstr(err.message, "upgrade cohort"));
}

/* Encode r with seq in the 64-byte layout of formats 1 and 2 (meta.h):
 * 32-bit views, the log end bound in format 2 only. */
static void encode_old_slot(uint8_t *slot, uint32_t version,
                            const struct meta_record *r, uint64_t seq)
{
    memset(slot, 0, META_RECORD_SIZE);
    put_u32(slot + 0, 0x544d4f43u); /* "COMT" */
    put_u32(slot + 8, version);
    put_u64(slot + 16, seq);
    put_u64(slot + 24, r->cluster_id);
    put_u32(slot + 32, (uint32_t)r->meta.view);
    put_u32(slot + 36, (uint32_t)r->meta.last_normal_view);
    put_u32(slot + 40, r->meta.epoch);
    put_u32(slot + 44, r->meta.replica_count);
    put_u32(slot + 48, r->meta.flags);
    if (version >= 2) {
        put_u32(slot + 52, r->log_end_check);
        put_u64(slot + 56, r->log_end_min);
    }
    put_u32(slot + 4,
            crc32c(crc32c(0, slot, 4), slot + 8, META_RECORD_SIZE_V2 - 8));
}

/* Write a slot of the given format version over slot `slot` of the file:
 * record r with seq, checksummed. */
static void put_slot(const char *path, uint32_t slot_index, uint32_t version,
                     const struct meta_record *r, uint64_t seq)
{
    uint8_t slot[META_RECORD_SIZE];
    if (version == META_FORMAT_VERSION)
        meta_slot_encode(r, seq, slot);
    else
        encode_old_slot(slot, version, r, seq);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)(slot_index * META_SLOT_SIZE), SEEK_SET),
                     0);
    assert_int_equal(fwrite(slot, 1, sizeof(slot), f), sizeof(slot));
    fclose(f);
}

static void format_1_is_read_without_a_bound_and_rewritten_as_current(void **s)
{
    struct fixture *fx = *s;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    write_ok(&m, 1);
    meta_close(&m);
    struct meta_record old = record_for(2);
    put_slot(fx->path, 0, 1, &old, 2);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_true(present);
    assert_int_equal(r.format_version, 1);
    assert_int_equal(r.log_end_min, 0);
    assert_int_equal(r.meta.view, old.meta.view);
    assert_int_equal(r.meta.last_normal_view, old.meta.last_normal_view);
    assert_int_equal(r.meta.replica_count, old.meta.replica_count);
    assert_int_equal(meta_log_end_min(&m), 0);
    write_ok(&m, 3);
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_int_equal(r.format_version, META_FORMAT_VERSION);
    struct meta_record want = record_for(3);
    assert_true(record_equal(&r, &want));
    meta_close(&m);
    /* Format 1 with bytes where format 2 keeps the bound: not format 1. */
    uint8_t slot[META_RECORD_SIZE];
    encode_old_slot(slot, 2, &old, 9);
    put_u32(slot + 8, 1);
    put_u32(slot + 4,
            crc32c(crc32c(0, slot, 4), slot + 8, META_RECORD_SIZE_V2 - 8));
    struct meta_record got;
    uint64_t seq;
    assert_non_null(meta_slot_decode(slot, &got, &seq));
}

/* Format 2 (32-bit views, with the bound) is read whole, and the next
 * write makes it format 3 with 64-bit views. */
static void format_2_is_read_and_rewritten_with_64_bit_views(void **s)
{
    struct fixture *fx = *s;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    write_ok(&m, 1);
    meta_close(&m);
    struct meta_record old = record_for(2);
    put_slot(fx->path, 0, 2, &old, 2);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_int_equal(r.format_version, 2);
    old.meta.membership = 0; /* format 4 added these: epoch 0 */
    old.meta.epoch_op = 0;
    old.meta.epoch_checksum = 0;
    assert_true(record_equal(&r, &old));
    struct meta_record wide = record_for(3);
    wide.meta.view = (UINT64_C(1) << 40) + 7;
    wide.meta.last_normal_view = UINT64_C(1) << 33;
    struct cohort_err err;
    assert_int_equal(meta_write(&m, &wide, &err), 0);
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_int_equal(r.format_version, META_FORMAT_VERSION);
    assert_true(record_equal(&r, &wide));
    meta_close(&m);
}

/* Format 3 (before epochs) is read as epoch 0's record: no membership,
 * no epoch start; a rewrite is format 4 with them. */
static void format_3_is_read_without_a_membership(void **state)
{
    (void)state;
    uint8_t slot[META_RECORD_SIZE];
    struct meta_record rec = record_for(4), out;
    uint64_t seq;
    meta_slot_encode(&rec, 9, slot);
    memset(slot + META_RECORD_SIZE_V3, 0xee,
           META_RECORD_SIZE - META_RECORD_SIZE_V3); /* not format 3's */
    put_u32(slot + 8, 3);
    put_u32(slot + 4,
            crc32c(crc32c(0, slot, 4), slot + 8, META_RECORD_SIZE_V3 - 8));
    assert_null(meta_slot_decode(slot, &out, &seq));
    assert_int_equal(out.format_version, 3);
    assert_int_equal(out.meta.view, rec.meta.view);
    assert_int_equal(out.meta.membership, 0);
    assert_int_equal(out.meta.epoch_op, 0);
    assert_int_equal(out.meta.epoch_checksum, 0);
    meta_slot_encode(&rec, 10, slot);
    assert_null(meta_slot_decode(slot, &out, &seq));
    assert_true(record_equal(&out, &rec));
}

/* A view above VIEW_MAX (or a last normal view above the view) is
 * corrupt: the core could not move past it. */
static void slot_with_a_view_beyond_the_largest_is_bad(void **state)
{
    (void)state;
    uint8_t slot[META_RECORD_SIZE];
    struct meta_record rec = record_for(4), out;
    uint64_t seq;
    rec.meta.view = VIEW_MAX;
    rec.meta.last_normal_view = VIEW_MAX;
    meta_slot_encode(&rec, 1, slot);
    assert_null(meta_slot_decode(slot, &out, &seq));
    assert_true(record_equal(&out, &rec));
    put_u64(slot + 32, VIEW_MAX + 1);
    put_u32(slot + 4,
            crc32c(crc32c(0, slot, 4), slot + 8, META_RECORD_SIZE - 8));
    assert_string_equal(meta_slot_decode(slot, &out, &seq),
                        "has a view beyond the largest view");
    put_u64(slot + 32, 5);
    put_u64(slot + 40, 6);
    put_u32(slot + 4,
            crc32c(crc32c(0, slot, 4), slot + 8, META_RECORD_SIZE - 8));
    assert_string_equal(meta_slot_decode(slot, &out, &seq),
                        "has a last normal view above its view");
}

static void log_end_bound_is_rewritten_over_the_newest_record(void **state)
{
    struct fixture *fx = *state;
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    write_ok(&m, 4);
    assert_int_equal(meta_log_end_min(&m), 4000);
    struct cohort_err err;
    assert_int_equal(meta_write_log_end(&m, 4321, 0xabcdef0123ull, &err), 0);
    assert_int_equal(meta_write_log_end(&m, 17, 0x5555aaaa0000ffffull, &err),
                     0); /* lowered */
    assert_int_equal(meta_seq(&m), 3);
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    struct meta_record want = record_for(4);
    want.log_end_min = 17;
    want.log_end_check = 0x0000ffff; /* the checksum's low 32 bits */
    assert_true(record_equal(&r, &want));
    assert_int_equal(meta_log_end_min(&m), 17);
    /* A full write records the bound it is given. */
    write_ok(&m, 5);
    meta_close(&m);
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_int_equal(r.log_end_min, 5000);
    meta_close(&m);
}

static void fsync_failure_makes_meta_failed(void **state)
{
    struct fixture *fx = *state;
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct meta m;
    struct meta_record r;
    bool present;
    struct cohort_err err;
    open_ok(&m, &f.vfs, fx->path, &r, &present);
    write_ok(&m, 1);
    vfs_fault_fail_sync(&f, 1, EIO);
    r = record_for(2);
    assert_int_equal(meta_write(&m, &r, &err), -COHORT_EIO);
    assert_non_null(strstr(err.message, "fdatasync"));
    assert_int_equal(m.state, META_FAILED);
    uint64_t writes = vfs_fault_stats(&f)->writes;
    assert_int_equal(meta_write(&m, &r, &err), -COHORT_EIO);
    assert_non_null(strstr(err.message, "failed earlier"));
    assert_int_equal(vfs_fault_stats(&f)->writes, writes);
    meta_close(&m);
    vfs_fault_deinit(&f);
}

static void failed_write_keeps_the_old_record_and_retry_works(void **state)
{
    struct fixture *fx = *state;
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct meta m;
    struct meta_record r;
    bool present;
    struct cohort_err err;
    open_ok(&m, &f.vfs, fx->path, &r, &present);
    /* Full while creating the file: nothing stored, retry creates it. */
    vfs_fault_fail_write(&f, 1, ENOSPC);
    r = record_for(1);
    assert_int_equal(meta_write(&m, &r, &err), -COHORT_ENOSPC);
    assert_int_equal(meta_seq(&m), 0);
    write_ok(&m, 1);
    /* Full while writing a slot. */
    vfs_fault_fail_write(&f, 1, ENOSPC);
    r = record_for(2);
    assert_int_equal(meta_write(&m, &r, &err), -COHORT_ENOSPC);
    assert_non_null(strstr(err.message, "No space left on device"));
    assert_int_equal(meta_seq(&m), 1);
    write_ok(&m, 2);
    meta_close(&m);
    open_ok(&m, &f.vfs, fx->path, &r, &present);
    struct meta_record two = record_for(2);
    assert_true(record_equal(&r, &two));
    meta_close(&m);
    vfs_fault_deinit(&f);
}

/* A slot with the largest seq, checksum and all (only damage or a crafted
 * file makes one): meta_write() could not go on from it (seq + 1 wraps to
 * 0, which meta_slot_encode() ASSERTs against), so it is a bad slot and the
 * other one is used. Found by tests/fuzz/meta_fuzz.c. */
static void a_slot_at_the_last_seq_is_bad_and_the_other_is_used(void **state)
{
    struct fixture *fx = *state;
    uint8_t image[META_FILE_SIZE];
    memset(image, 0, sizeof(image));
    struct meta_record last = record_for(9), other = record_for(2);
    meta_slot_encode(&last, UINT64_MAX, image);
    meta_slot_encode(&other, 2, image + META_SLOT_SIZE);
    FILE *f = fopen(fx->path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(image, 1, sizeof(image), f), sizeof(image));
    fclose(f);
    struct meta m;
    struct meta_record r;
    bool present;
    open_ok(&m, vfs_posix(), fx->path, &r, &present);
    assert_true(record_equal(&r, &other));
    assert_int_equal(meta_seq(&m), 2);
    write_ok(&m, 3);
    meta_close(&m);
    uint64_t seq;
    assert_non_null(meta_slot_decode(image, &r, &seq));
}

static void slot_decode_rejects_every_flipped_bit(void **state)
{
    (void)state;
    uint8_t slot[META_RECORD_SIZE];
    struct meta_record rec = record_for(4), out;
    uint64_t seq;
    meta_slot_encode(&rec, 7, slot);
    assert_null(meta_slot_decode(slot, &out, &seq));
    assert_int_equal(seq, 7);
    assert_true(record_equal(&out, &rec));
    for (size_t bit = 0; bit < sizeof(slot) * 8; bit++) {
        slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_non_null(meta_slot_decode(slot, &out, &seq));
        slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(fresh_directory_has_no_metadata),
        T(written_metadata_survives_reopen),
        T(meta_survives_crash_at_every_write_point),
        T(one_bad_slot_falls_back_to_the_other),
        T(both_meta_slots_corrupt_is_a_clear_error),
        T(newer_format_is_refused),
        T(format_1_is_read_without_a_bound_and_rewritten_as_current),
        T(format_3_is_read_without_a_membership),
        T(format_2_is_read_and_rewritten_with_64_bit_views),
        T(slot_with_a_view_beyond_the_largest_is_bad),
        T(log_end_bound_is_rewritten_over_the_newest_record),
        T(fsync_failure_makes_meta_failed),
        T(failed_write_keeps_the_old_record_and_retry_works),
        T(a_slot_at_the_last_seq_is_bad_and_the_other_is_used),
        T(slot_decode_rejects_every_flipped_bit),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
