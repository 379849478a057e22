/* storage/wal: records survive reopen, group commit reports what is durable,
 * crashes lose only what was never reported durable, torn tails are cut,
 * damage is reported with file and offset, suffixes are replaced, segments
 * rotate and are compacted, and I/O errors have the documented effect. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/vfs_fault.h"
#include "storage/wal.h"
#include "storage/wal_internal.h"

#define OPS_MAX 200
#define BODY_MAX 200
#define SEGMENT_SIZE 4096

/* The log a test expects: entries by op, bodies derived from (op, tag) so
 * that two tags give two diverging logs. */
struct model {
    struct entry e[OPS_MAX + 1];
    uint8_t body[OPS_MAX + 1][BODY_MAX];
    uint64_t last;
};

static uint32_t body_size_for(uint64_t op, uint8_t tag)
{
    return (uint32_t)((op * 37 + tag * 11) % BODY_MAX) + 1;
}

/* Set the entry at op (the log becomes ..op), chained to op - 1. */
static void model_put(struct model *m, uint64_t op, uint8_t tag)
{
    assert_true(op >= 1 && op <= OPS_MAX);
    struct entry *e = &m->e[op];
    memset(e, 0, sizeof(*e));
    uint32_t n = body_size_for(op, tag);
    for (uint32_t i = 0; i < n; i++)
        m->body[op][i] = (uint8_t)(op * 131 + i * 7 + tag);
    e->h.parent = op > 1 ? m->e[op - 1].h.checksum : 0;
    e->h.op = op;
    e->h.client_id = 1;
    e->h.request_no = op;
    e->h.timestamp_ms = op * 10;
    e->h.view = tag + 1u;
    e->h.body_size = n;
    e->h.kind = ENTRY_CLIENT;
    e->body = m->body[op];
    entry_seal(&e->h, e->body);
    m->last = op;
}

static struct model *model_new(void)
{
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    return m;
}

/* Put ops from..to with tag into the model and append them. */
static void append_ops(struct wal *w, struct model *m, uint64_t from,
                       uint64_t to, uint8_t tag)
{
    struct cohort_err err;
    for (uint64_t op = from; op <= to; op++) {
        model_put(m, op, tag);
        int rc = wal_append(w, &m->e[op], &err);
        if (rc != 0)
            fail_msg("append op %" PRIu64 ": %s", op, err.message);
    }
}

static void sync_ok(struct wal *w, uint64_t want_op)
{
    struct cohort_err err;
    struct wal_position pos;
    int rc = wal_sync(w, &pos, &err);
    if (rc != 0)
        fail_msg("sync: %s", err.message);
    assert_int_equal(pos.op, want_op);
}

static void entry_equal(const struct entry *got, const struct entry *want)
{
    assert_int_equal(got->h.op, want->h.op);
    assert_int_equal(got->h.checksum, want->h.checksum);
    assert_int_equal(got->h.parent, want->h.parent);
    assert_int_equal(got->h.body_size, want->h.body_size);
    assert_memory_equal(got->body, want->body, want->h.body_size);
}

/* The recovered log is exactly ops first..last of m, undamaged. */
static void assert_log(const struct wal_recovery *rec, const struct model *m,
                       uint64_t first, uint64_t last)
{
    if (rec->damaged_op)
        fail_msg("unexpected damage: %s", rec->damage.message);
    assert_int_equal(rec->entry_count, last - first + 1);
    for (uint64_t i = 0; i < rec->entry_count; i++)
        entry_equal(&rec->entries[i], &m->e[first + i]);
}

/* Fixture: a temp directory; the wal lives in <dir>/wal. */
struct fixture {
    char root[64];
    char dir[128];
    struct wal_config config;
};

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->root, sizeof(fx->root), "/tmp/cohort-wal-XXXXXX");
    if (!mkdtemp(fx->root))
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/wal", fx->root);
    wal_config_defaults(&fx->config);
    fx->config.segment_size = SEGMENT_SIZE;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->root);
    free(fx);
    return 0;
}

static void open_ok(struct fixture *fx, struct vfs *vfs, struct wal *w,
                    struct wal_recovery *rec)
{
    struct cohort_err err;
    int rc = wal_open(w, vfs, fx->dir, &fx->config, rec, &err);
    if (rc != 0)
        fail_msg("wal_open: %s", err.message);
    assert_int_equal(wal_state(w), WAL_OPEN);
}

static void segment_file(const struct fixture *fx, uint64_t first_op, char *out)
{
    snprintf(out, VFS_PATH_MAX, "%s/%020" PRIu64 ".log", fx->dir, first_op);
}

/* Byte offset of op's record in a segment starting at first_op. */
static uint64_t record_offset(const struct model *m, uint64_t first_op,
                              uint64_t op)
{
    uint64_t off = WAL_SEGMENT_HEADER_SIZE;
    for (uint64_t o = first_op; o < op; o++)
        off += wal_record_size(m->e[o].h.body_size);
    return off;
}

static void flip_byte(const char *path, uint64_t offset)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)offset, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_not_equal(c, EOF);
    assert_int_equal(fseek(f, (long)offset, SEEK_SET), 0);
    fputc(c ^ 0x40, f);
    fclose(f);
}

struct segs {
    uint64_t first[256];
    int count;
};

static int collect_segment(void *ctx, const char *name)
{
    struct segs *s = ctx;
    uint64_t op;
    char tail[16];
    if (sscanf(name, "%20" SCNu64 "%15s", &op, tail) == 2 &&
        strcmp(tail, ".log") == 0 && s->count < 256)
        s->first[s->count++] = op;
    return 0;
}

/* The segment files in the directory, sorted by first op. */
static struct segs list_segments(const struct fixture *fx)
{
    struct segs s = {.count = 0};
    struct cohort_err err;
    assert_int_equal(vfs_list(vfs_posix(), fx->dir, collect_segment, &s, &err),
                     0);
    for (int i = 1; i < s.count; i++)
        for (int j = i; j > 0 && s.first[j - 1] > s.first[j]; j--) {
            uint64_t t = s.first[j];
            s.first[j] = s.first[j - 1];
            s.first[j - 1] = t;
        }
    return s;
}

/* Tests. */

static void appended_records_survive_reopen(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.entry_count, 0);
    assert_int_equal(rec.damaged_op, 0);
    append_ops(&w, m, 1, 50, 0);
    sync_ok(&w, 50);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_false(rec.torn_tail);
    assert_log(&rec, m, 1, 50);
    assert_int_equal(wal_op_last(&w), 50);
    assert_int_equal(wal_op_durable(&w), 50);
    /* Appending goes on where the log ended. */
    append_ops(&w, m, 51, 60, 0);
    sync_ok(&w, 60);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_log(&rec, m, 1, 60);
    wal_close(&w);
    free(m);
}

static void sync_reports_highest_durable_op(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, &f.vfs, &w, &rec);
    append_ops(&w, m, 1, 3, 0);
    assert_int_equal(wal_op_durable(&w), 0);
    struct wal_position pos;
    assert_int_equal(wal_sync(&w, &pos, &err), 0);
    assert_int_equal(pos.op, 3);
    assert_int_equal(pos.checksum, m->e[3].h.checksum);
    /* Group commit: one fdatasync covers a batch in one segment. */
    append_ops(&w, m, 4, 12, 0);
    uint64_t syncs = vfs_fault_stats(&f)->syncs;
    uint64_t writes = vfs_fault_stats(&f)->writes;
    assert_int_equal(wal_sync(&w, &pos, &err), 0);
    assert_int_equal(vfs_fault_stats(&f)->syncs - syncs, 1);
    assert_int_equal(vfs_fault_stats(&f)->writes - writes, 1);
    assert_int_equal(pos.op, 12);
    assert_int_equal(pos.checksum, m->e[12].h.checksum);
    assert_int_equal(wal_op_durable(&w), 12);
    /* Nothing new: nothing to do, the same answer. */
    syncs = vfs_fault_stats(&f)->syncs;
    assert_int_equal(wal_sync(&w, &pos, &err), 0);
    assert_int_equal(vfs_fault_stats(&f)->syncs, syncs);
    assert_int_equal(pos.op, 12);
    wal_close(&w);
    vfs_fault_deinit(&f);
    free(m);
}

/* Append 1..5 and sync; append 6..8 and lose the power right after their
 * write (before the fdatasync); crash keeping `keep` unsynced bytes. */
static void crash_after_unsynced_write(struct fixture *fx, struct model *m,
                                       uint64_t keep, struct wal_recovery *rec,
                                       struct wal *w2, struct vfs_fault *f)
{
    struct wal w;
    struct cohort_err err;
    open_ok(fx, &f->vfs, &w, rec);
    append_ops(&w, m, 1, 5, 0);
    sync_ok(&w, 5);
    append_ops(&w, m, 6, 8, 0);
    vfs_fault_power_off_after(f, 1); /* the write goes, the sync fails */
    assert_int_equal(wal_sync(&w, NULL, &err), -COHORT_EIO);
    assert_int_equal(wal_op_durable(&w), 5);
    if (keep == UINT64_MAX / 2)
        keep = vfs_fault_unsynced_bytes(f) / 2;
    assert_int_equal(vfs_fault_crash(f, keep, VFS_FAULT_NAMES_NONE, &err), 0);
    wal_close(&w);
    open_ok(fx, &f->vfs, w2, rec);
}

static void unsynced_records_are_lost_at_crash_synced_ones_survive(void **s)
{
    struct fixture *fx = *s;
    struct model *m = model_new();
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct wal w;
    struct wal_recovery rec;
    crash_after_unsynced_write(fx, m, 0, &rec, &w, &f);
    assert_false(rec.torn_tail);
    assert_log(&rec, m, 1, 5);
    wal_close(&w);
    /* The disk may also have kept them all: then they are all there. */
    remove_tree(fx->dir);
    crash_after_unsynced_write(fx, m, VFS_FAULT_KEEP_ALL, &rec, &w, &f);
    assert_log(&rec, m, 1, 8);
    wal_close(&w);
    vfs_fault_deinit(&f);
    free(m);
}

static void torn_last_record_is_dropped_on_open(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, &f.vfs, &w, &rec);
    append_ops(&w, m, 1, 5, 0);
    sync_ok(&w, 5);
    append_ops(&w, m, 6, 6, 0);
    vfs_fault_power_off_after(&f, 1);
    assert_int_equal(wal_sync(&w, NULL, &err), -COHORT_EIO);
    uint64_t half = wal_record_size(m->e[6].h.body_size) / 2;
    assert_int_equal(vfs_fault_crash(&f, half, VFS_FAULT_NAMES_NONE, &err), 0);
    wal_close(&w);
    open_ok(fx, &f.vfs, &w, &rec);
    assert_log(&rec, m, 1, 5);
    assert_true(rec.torn_tail);
    char want[160];
    snprintf(want, sizeof(want),
             "00000000000000000001.log offset %" PRIu64 ": record for op 6",
             record_offset(m, 1, 6));
    assert_non_null(strstr(rec.torn.message, want));
    /* Op 6 goes again, into a new segment, and the log is whole. */
    append_ops(&w, m, 6, 7, 0);
    sync_ok(&w, 7);
    assert_int_equal(wal_segment_count(&w), 2);
    wal_close(&w);
    open_ok(fx, &f.vfs, &w, &rec);
    assert_false(rec.torn_tail);
    assert_log(&rec, m, 1, 7);
    wal_close(&w);
    vfs_fault_deinit(&f);
    free(m);
}

static void corrupt_middle_record_is_reported_with_file_and_offset(void **s)
{
    struct fixture *fx = *s;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 10, 0);
    sync_ok(&w, 10);
    assert_int_equal(wal_segment_count(&w), 1);
    wal_close(&w);
    char path[VFS_PATH_MAX];
    segment_file(fx, 1, path);
    uint64_t off5 = record_offset(m, 1, 5);
    flip_byte(path, off5 + WAL_RECORD_HEADER_SIZE + ENTRY_HEADER_SIZE);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.damaged_op, 5);
    assert_int_equal(rec.damage.code, -COHORT_ECORRUPT);
    assert_false(rec.torn_tail);
    char want[200];
    snprintf(want, sizeof(want),
             "00000000000000000001.log offset %" PRIu64
             ": record for op 5 fails its checksum, and a valid record "
             "follows at offset %" PRIu64,
             off5, record_offset(m, 1, 6));
    if (!strstr(rec.damage.message, want))
        fail_msg("damage message: %s", rec.damage.message);
    assert_int_equal(rec.entry_count, 4); /* cut before the bad record */
    for (uint64_t i = 0; i < 4; i++)
        entry_equal(&rec.entries[i], &m->e[1 + i]);
    /* The replica repairs from op 5 on; the log is whole again. */
    for (uint64_t op = 5; op <= 10; op++) {
        struct cohort_err err;
        assert_int_equal(wal_append(&w, &m->e[op], &err), 0);
    }
    sync_ok(&w, 10);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_log(&rec, m, 1, 10);
    wal_close(&w);
    free(m);
}

static void zero_range(const char *path, uint64_t from, uint64_t to)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)from, SEEK_SET), 0);
    for (uint64_t i = from; i < to; i++)
        fputc(0, f);
    fclose(f);
}

/* Without a reboot nothing is torn: a flipped byte in the last record of
 * the log is damage (it may have been synced and acknowledged). */
static void bad_last_record_without_reboot_is_damage(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 5, 0);
    sync_ok(&w, 5);
    wal_close(&w);
    char path[VFS_PATH_MAX];
    segment_file(fx, 1, path);
    flip_byte(path, record_offset(m, 1, 5) + 40);
    fx->config.torn_writes_possible = false;
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.damaged_op, 5);
    assert_false(rec.torn_tail);
    assert_non_null(strstr(rec.damage.message, "cannot be a torn write"));
    assert_int_equal(rec.entry_count, 4);
    wal_close(&w);
    /* After a power loss the same bytes read as a torn write. */
    fx->config.torn_writes_possible = true;
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_true(rec.torn_tail);
    assert_int_equal(rec.damaged_op, 0);
    wal_close(&w);
    free(m);
}

/* Without a reboot, a write cut short by a kill stops at a page boundary:
 * a last record whose bytes are zero from a page boundary on is cut. */
static void last_record_cut_at_a_page_is_torn_without_reboot(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    fx->config.segment_size = 4 * WAL_PAGE_SIZE;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 60, 0);
    sync_ok(&w, 60);
    wal_close(&w);
    uint64_t op = 1;
    while (record_offset(m, 1, op + 1) <= WAL_PAGE_SIZE)
        op++;
    /* op's record straddles the first page boundary; zero from there on,
     * as if the write of ops op.. stopped at the boundary. */
    assert_true(record_offset(m, 1, op) < WAL_PAGE_SIZE);
    char path[VFS_PATH_MAX];
    segment_file(fx, 1, path);
    zero_range(path, WAL_PAGE_SIZE, record_offset(m, 1, 61));
    fx->config.torn_writes_possible = false;
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.damaged_op, 0);
    assert_true(rec.torn_tail);
    assert_log(&rec, m, 1, op - 1);
    wal_close(&w);
    free(m);
}

static void bad_record_in_a_full_segment_is_damage_not_a_torn_tail(void **s)
{
    struct fixture *fx = *s;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 60, 0);
    sync_ok(&w, 60);
    wal_close(&w);
    struct segs segs = list_segments(fx);
    assert_true(segs.count >= 3);
    /* The last record of the first segment: nothing valid follows it in
     * that file, but the segment was synced in full. */
    uint64_t last_op = segs.first[1] - 1;
    char path[VFS_PATH_MAX];
    segment_file(fx, 1, path);
    flip_byte(path, record_offset(m, 1, last_op) + 30);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.damaged_op, last_op);
    assert_false(rec.torn_tail);
    assert_non_null(strstr(rec.damage.message, "synced in full"));
    assert_int_equal(rec.entry_count, last_op - 1);
    wal_close(&w);
    /* A whole segment gone is damage too. */
    remove_tree(fx->dir);
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 60, 0);
    sync_ok(&w, 60);
    wal_close(&w);
    segs = list_segments(fx);
    segment_file(fx, segs.first[1], path);
    assert_int_equal(remove(path), 0);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.damaged_op, segs.first[1]);
    assert_non_null(strstr(rec.damage.message, "is missing"));
    wal_close(&w);
    free(m);
}

static void record_that_breaks_the_hash_chain_is_damage(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct model *other = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 5, 0);
    sync_ok(&w, 5);
    wal_close(&w);
    /* A well-formed record for op 6 whose parent is another log's op 5:
     * its checksums pass, only the chain gives it away. */
    model_put(other, 5, 7);
    model_put(other, 6, 7);
    uint8_t bytes[WAL_RECORD_HEADER_SIZE + ENTRY_HEADER_SIZE + BODY_MAX + 8];
    wal_record_encode(&other->e[6], bytes);
    char path[VFS_PATH_MAX];
    segment_file(fx, 1, path);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)record_offset(m, 1, 6), SEEK_SET), 0);
    size_t size = (size_t)wal_record_size(other->e[6].h.body_size);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    fclose(f);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_int_equal(rec.damaged_op, 6);
    assert_non_null(strstr(rec.damage.message, "does not follow"));
    assert_log(&(struct wal_recovery){.entries = rec.entries,
                                      .entry_count = rec.entry_count},
               m, 1, 5);
    wal_close(&w);
    free(m);
    free(other);
}

static void suffix_replacement_truncates_later_ops(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 10, 0);
    sync_ok(&w, 10);
    /* Replace ops 6.. with a shorter, different suffix. */
    append_ops(&w, m, 6, 8, 1);
    assert_int_equal(wal_op_last(&w), 8);
    assert_int_equal(wal_op_durable(&w), 5);
    struct wal_position pos;
    assert_int_equal(wal_sync(&w, &pos, &err), 0);
    assert_int_equal(pos.op, 8);
    assert_int_equal(pos.checksum, m->e[8].h.checksum);
    uint32_t segments = wal_segment_count(&w);
    /* Replacing records still in the buffer costs no new segment. */
    append_ops(&w, m, 9, 12, 1);
    append_ops(&w, m, 11, 12, 2);
    sync_ok(&w, 12);
    assert_int_equal(wal_segment_count(&w), segments);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_log(&rec, m, 1, 12);
    assert_int_equal(rec.entries[5].h.view, 2);  /* op 6 is the new one */
    assert_int_equal(rec.entries[10].h.view, 3); /* op 11 the newest */
    wal_close(&w);
    free(m);
}

static void suffix_replacement_across_segments_deletes_them(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    for (uint64_t op = 1; op <= 80; op += 10) {
        append_ops(&w, m, op, op + 9, 0);
        sync_ok(&w, op + 9);
    }
    assert_true(list_segments(fx).count >= 4);
    append_ops(&w, m, 20, 30, 1);
    sync_ok(&w, 30);
    /* The segments that started past op 20 are gone; op 20 starts one. */
    struct segs segs = list_segments(fx);
    int at = 0;
    while (at < segs.count && segs.first[at] < 20)
        at++;
    assert_true(at < segs.count);
    assert_int_equal(segs.first[at], 20);
    assert_true(segs.count - at <= 2);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_log(&rec, m, 1, 30);
    wal_close(&w);
    free(m);
}

static void segments_rotate_and_compact_deletes_old_ones(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, vfs_posix(), &w, &rec);
    for (uint64_t op = 1; op <= 150; op += 15) {
        append_ops(&w, m, op, op + 14, 0);
        sync_ok(&w, op + 14);
    }
    struct segs before = list_segments(fx);
    assert_true(before.count > 5);
    assert_int_equal(wal_segment_count(&w), (uint32_t)before.count);
    assert_int_equal(before.first[0], 1);
    assert_int_equal(wal_compact(&w, 100, &err), 0);
    struct segs after = list_segments(fx);
    assert_true(after.count < before.count);
    /* The first kept segment holds op 101; the deleted ones did not. */
    assert_true(after.first[0] <= 101);
    assert_true(after.count == 1 || after.first[1] > 101);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_log(&rec, m, after.first[0], 150);
    assert_int_equal(wal_op_first(&w), after.first[0]);
    /* The last segment always stays. */
    assert_int_equal(wal_compact(&w, 150, &err), 0);
    assert_int_equal(list_segments(fx).count, 1);
    wal_close(&w);
    free(m);
}

static void fsync_failure_makes_wal_failed(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, &f.vfs, &w, &rec);
    append_ops(&w, m, 1, 3, 0);
    sync_ok(&w, 3);
    append_ops(&w, m, 4, 6, 0);
    vfs_fault_fail_sync(&f, 1, EIO);
    assert_int_equal(wal_sync(&w, NULL, &err), -COHORT_EIO);
    assert_non_null(strstr(err.message, "fdatasync"));
    assert_int_equal(wal_state(&w), WAL_FAILED);
    assert_int_equal(wal_op_durable(&w), 3);
    /* Every later call fails, naming the first failure; no retry. */
    model_put(m, 7, 0);
    assert_int_equal(wal_append(&w, &m->e[7], &err), -COHORT_EIO);
    assert_non_null(strstr(err.message, "failed earlier"));
    assert_non_null(strstr(err.message, "fdatasync"));
    uint64_t syncs = vfs_fault_stats(&f)->syncs;
    assert_int_equal(wal_sync(&w, NULL, &err), -COHORT_EIO);
    assert_int_equal(vfs_fault_stats(&f)->syncs, syncs);
    assert_int_equal(wal_compact(&w, 2, &err), -COHORT_EIO);
    wal_close(&w);
    /* Reopening starts afresh from what is on disk. */
    open_ok(fx, &f.vfs, &w, &rec);
    assert_true(rec.entry_count >= 3);
    wal_close(&w);
    vfs_fault_deinit(&f);
    free(m);
}

static void enospc_is_reported_and_retry_succeeds(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, &f.vfs, &w, &rec);
    /* Full while creating the first segment. */
    append_ops(&w, m, 1, 5, 0);
    vfs_fault_fail_write(&f, 1, ENOSPC);
    assert_int_equal(wal_sync(&w, NULL, &err), -COHORT_ENOSPC);
    assert_non_null(strstr(err.message, "No space left on device"));
    assert_int_equal(wal_state(&w), WAL_OPEN);
    assert_int_equal(wal_op_durable(&w), 0);
    sync_ok(&w, 5);
    /* Full while writing records. */
    append_ops(&w, m, 6, 8, 0);
    vfs_fault_fail_write(&f, 1, ENOSPC);
    assert_int_equal(wal_sync(&w, NULL, &err), -COHORT_ENOSPC);
    assert_non_null(strstr(err.message, "00000000000000000001.log"));
    assert_int_equal(wal_op_durable(&w), 5);
    /* More appends while full are kept too. */
    append_ops(&w, m, 9, 9, 0);
    sync_ok(&w, 9);
    wal_close(&w);
    open_ok(fx, &f.vfs, &w, &rec);
    assert_log(&rec, m, 1, 9);
    wal_close(&w);
    vfs_fault_deinit(&f);
    free(m);
}

static void enospc_at_segment_rotation_is_retried(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    /* Ops 11..40 fill a segment and start the next: fail each write of
     * that sync in turn (records, the new segment's header, its
     * preallocation), then retry. */
    for (uint64_t nth = 1;; nth++) {
        remove_tree(fx->dir);
        open_ok(fx, &f.vfs, &w, &rec);
        append_ops(&w, m, 1, 10, 0);
        sync_ok(&w, 10);
        append_ops(&w, m, 11, 40, 0);
        vfs_fault_fail_write(&f, nth, ENOSPC);
        int rc = wal_sync(&w, NULL, &err);
        bool hit = f.fail_write_in == 0;
        f.fail_write_in = 0;
        assert_int_equal(rc, hit ? -COHORT_ENOSPC : 0);
        assert_int_equal(wal_state(&w), WAL_OPEN);
        if (hit)
            sync_ok(&w, 40);
        assert_true(wal_segment_count(&w) >= 2);
        wal_close(&w);
        open_ok(fx, &f.vfs, &w, &rec);
        assert_log(&rec, m, 1, 40);
        wal_close(&w);
        if (!hit)
            break;
        assert_true(nth < 10);
    }
    vfs_fault_deinit(&f);
    free(m);
}

/* A run of appends, syncs, a suffix replacement, compaction and a
 * buffer-only replacement, stopping at the first error. acked is the log
 * as of the last successful sync; att the log as asked for; replaced the
 * lowest op replaced since the last successful sync (0 if none). */
struct workload {
    struct model *att, *acked;
    uint64_t replaced;
};

static int work_append(struct wal *w, struct workload *wl, uint64_t from,
                       uint64_t to, uint8_t tag)
{
    struct cohort_err err;
    if (from <= wl->att->last && (!wl->replaced || from < wl->replaced))
        wl->replaced = from;
    for (uint64_t op = from; op <= to; op++) {
        model_put(wl->att, op, tag);
        int rc = wal_append(w, &wl->att->e[op], &err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int work_sync(struct wal *w, struct workload *wl)
{
    struct cohort_err err;
    struct wal_position pos;
    int rc = wal_sync(w, &pos, &err);
    if (rc != 0)
        return rc;
    assert_int_equal(pos.op, wl->att->last);
    *wl->acked = *wl->att;
    wl->replaced = 0;
    return 0;
}

static int workload_run(struct wal *w, struct workload *wl)
{
    struct cohort_err err;
    int rc = 0;
    if (!rc)
        rc = work_append(w, wl, 1, 8, 0);
    if (!rc)
        rc = work_sync(w, wl);
    if (!rc)
        rc = work_append(w, wl, 9, 30, 0); /* rotates */
    if (!rc)
        rc = work_sync(w, wl);
    if (!rc)
        rc = work_append(w, wl, 12, 34, 1); /* replaces across segments */
    if (!rc)
        rc = work_sync(w, wl);
    if (!rc)
        rc = wal_compact(w, 20, &err);
    if (!rc)
        rc = work_append(w, wl, 35, 50, 1);
    if (!rc)
        rc = work_append(w, wl, 45, 52, 2); /* only buffered ones replaced */
    if (!rc)
        rc = work_sync(w, wl);
    return rc;
}

/* R (the recovered log) must hold every op reported durable, except ops
 * being replaced, and match one of the two logs in every op it holds. */
static const struct model *check_recovered(const struct wal_recovery *rec,
                                           const struct workload *wl)
{
    if (rec->damaged_op)
        fail_msg("a crash must not look like damage: %s", rec->damage.message);
    /* Replaced ops were given up, durable or not. */
    uint64_t floor = wl->acked->last;
    if (wl->replaced && wl->replaced - 1 < floor)
        floor = wl->replaced - 1;
    uint64_t last =
        rec->entry_count ? rec->entries[rec->entry_count - 1].h.op : 0;
    if (last < floor)
        fail_msg("recovered up to op %" PRIu64 ", reported durable %" PRIu64,
                 last, floor);
    const struct model *models[2] = {wl->acked, wl->att};
    for (int k = 0; k < 2; k++) {
        const struct model *m = models[k];
        if (last > m->last)
            continue;
        bool same = true;
        for (uint64_t i = 0; i < rec->entry_count && same; i++) {
            const struct entry *e = &rec->entries[i];
            same = e->h.checksum == m->e[e->h.op].h.checksum;
        }
        if (same)
            return m;
    }
    fail_msg("recovered log matches neither the durable nor the asked log");
    return NULL;
}

/* How a crash treats what was not durable: unsynced bytes kept (0, half,
 * all) and name changes kept (none, all, or only the last one: a later
 * rename reaching the disk without the unlinks before it). */
struct crash_mode {
    int bytes; /* 0: none, 1: half, 2: all */
    int names; /* 0: none, 1: all, 2: only the last */
};

static const struct crash_mode crash_modes[] = {
    {0, 0}, {1, 0}, {2, 1}, {0, 2}, {2, 2},
};

static void crash_apply(struct vfs_fault *f, struct crash_mode mode)
{
    struct cohort_err err;
    uint64_t unsynced = vfs_fault_unsynced_bytes(f);
    uint64_t keep = mode.bytes == 0   ? 0
                    : mode.bytes == 1 ? unsynced / 2
                                      : VFS_FAULT_KEEP_ALL;
    uint32_t n = vfs_fault_unsynced_names(f);
    uint64_t names = mode.names == 0   ? VFS_FAULT_NAMES_NONE
                     : mode.names == 1 ? VFS_FAULT_NAMES_ALL
                     : n == 0          ? 0
                              : (uint64_t)1 << (n - 1 < 63 ? n - 1 : 63);
    assert_int_equal(vfs_fault_crash(f, keep, names, &err), 0);
}

static void crash_run(struct fixture *fx, uint64_t power_ops,
                      struct crash_mode mode, bool *completed)
{
    struct vfs_fault f;
    vfs_fault_init(&f, vfs_posix());
    struct workload wl = {.att = model_new(), .acked = model_new()};
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    remove_tree(fx->dir);
    vfs_fault_power_off_after(&f, power_ops);
    int rc = wal_open(&w, &f.vfs, fx->dir, &fx->config, &rec, &err);
    if (rc == 0) {
        rc = workload_run(&w, &wl);
        *completed = rc == 0 && !f.powered_off;
    }
    crash_apply(&f, mode);
    wal_close(&w);
    open_ok(fx, &f.vfs, &w, &rec);
    const struct model *match = check_recovered(&rec, &wl);
    /* The recovered wal takes the next op. */
    struct model *next = model_new();
    *next = *match;
    uint64_t last = wal_op_last(&w);
    wal_recovery_release(&w);
    model_put(next, last + 1, 9);
    assert_int_equal(wal_append(&w, &next->e[last + 1], &err), 0);
    sync_ok(&w, last + 1);
    wal_close(&w);
    open_ok(fx, &f.vfs, &w, &rec);
    assert_int_equal(rec.damaged_op, 0);
    assert_int_equal(rec.entries[rec.entry_count - 1].h.checksum,
                     next->e[last + 1].h.checksum);
    wal_close(&w);
    vfs_fault_deinit(&f);
    free(next);
    free(wl.att);
    free(wl.acked);
}

static void wal_survives_crash_at_every_write_point(void **state)
{
    struct fixture *fx = *state;
    bool completed = false;
    uint64_t points = 0;
    for (uint64_t k = 0; !completed; k++) {
        for (size_t i = 0; i < sizeof(crash_modes) / sizeof(crash_modes[0]);
             i++)
            crash_run(fx, k, crash_modes[i], &completed);
        points++;
        assert_true(points < 1000);
    }
    assert_true(points > 20); /* the workload did reach the disk */
}

static void reset_starts_the_log_at_any_op(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct model *m2 = model_new();
    struct wal w;
    struct wal_recovery rec;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 40, 0);
    sync_ok(&w, 40);
    wal_reset(&w);
    assert_int_equal(wal_op_last(&w), 0);
    for (uint64_t op = 150; op <= 155; op++) {
        struct cohort_err err;
        model_put(m2, op, 3);
        assert_int_equal(wal_append(&w, &m2->e[op], &err), 0);
    }
    sync_ok(&w, 155);
    assert_int_equal(list_segments(fx).count, 1);
    wal_close(&w);
    open_ok(fx, vfs_posix(), &w, &rec);
    assert_log(&rec, m2, 150, 155);
    assert_int_equal(wal_op_first(&w), 150);
    wal_close(&w);
    free(m);
    free(m2);
}

static void oversized_entry_is_refused_and_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    struct model *m = model_new();
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    open_ok(fx, vfs_posix(), &w, &rec);
    append_ops(&w, m, 1, 2, 0);
    static uint8_t big[SEGMENT_SIZE];
    struct entry e = {.h = {.parent = m->e[2].h.checksum,
                            .op = 3,
                            .view = 1,
                            .body_size = sizeof(big),
                            .kind = ENTRY_CLIENT},
                      .body = big};
    entry_seal(&e.h, e.body);
    assert_int_equal(wal_append(&w, &e, &err), -COHORT_ETOOBIG);
    assert_non_null(strstr(err.message, "segment size"));
    assert_int_equal(wal_op_last(&w), 2);
    sync_ok(&w, 2);
    wal_close(&w);
    free(m);
}

static void record_decode_rejects_every_flipped_byte(void **state)
{
    (void)state;
    struct model *m = model_new();
    model_put(m, 1, 0);
    model_put(m, 2, 0);
    uint8_t rec[WAL_RECORD_HEADER_SIZE + ENTRY_HEADER_SIZE + BODY_MAX + 8];
    uint64_t size = wal_record_size(m->e[2].h.body_size);
    wal_record_encode(&m->e[2], rec);
    struct entry e;
    uint64_t got;
    const char *why;
    assert_int_equal(wal_record_decode(rec, size, &e, &got, &why), 0);
    assert_int_equal(got, size);
    entry_equal(&e, &m->e[2]);
    uint64_t used =
        WAL_RECORD_HEADER_SIZE + ENTRY_HEADER_SIZE + m->e[2].h.body_size;
    for (uint64_t i = 0; i < used; i++) {
        rec[i] ^= 1;
        assert_int_equal(wal_record_decode(rec, size, &e, &got, &why),
                         -COHORT_ECORRUPT);
        rec[i] ^= 1;
    }
    /* Cut short anywhere: rejected, never read past the end. */
    for (uint64_t n = 0; n < size; n++)
        assert_int_equal(wal_record_decode(rec, n, &e, &got, &why),
                         -COHORT_ECORRUPT);
    free(m);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(appended_records_survive_reopen),
        T(sync_reports_highest_durable_op),
        T(unsynced_records_are_lost_at_crash_synced_ones_survive),
        T(torn_last_record_is_dropped_on_open),
        T(corrupt_middle_record_is_reported_with_file_and_offset),
        T(bad_record_in_a_full_segment_is_damage_not_a_torn_tail),
        T(bad_last_record_without_reboot_is_damage),
        T(last_record_cut_at_a_page_is_torn_without_reboot),
        T(record_that_breaks_the_hash_chain_is_damage),
        T(suffix_replacement_truncates_later_ops),
        T(suffix_replacement_across_segments_deletes_them),
        T(segments_rotate_and_compact_deletes_old_ones),
        T(fsync_failure_makes_wal_failed),
        T(enospc_is_reported_and_retry_succeeds),
        T(enospc_at_segment_rotation_is_retried),
        T(wal_survives_crash_at_every_write_point),
        T(reset_starts_the_log_at_any_op),
        T(oversized_entry_is_refused_and_changes_nothing),
        T(record_decode_rejects_every_flipped_byte),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
