/* wal_recover — wal_open(): find the segments, read and verify every record,
 * tell a torn tail (cut) from damage (reported), and leave the wal ready to
 * append. See wal.h for the format and invariants.
 *
 * How a bad spot is judged. Segments are read oldest first; each must hold
 * its whole range (up to the op before the next segment's first op), since
 * by invariant 2 it was synced in full before the next one began: a bad or
 * missing record there is damage. In the last segment a bad record is a
 * torn tail if nothing valid follows it: records are appended in order and
 * only the ones not yet synced can be torn, so a valid record after it
 * means the bad one was written earlier and may have been synced — damage.
 * A record with a good checksum but the wrong op or parent is damage
 * wherever it is: no crash produces it. A corrupt last record that had been
 * synced looks exactly like a torn one after a power loss, and is cut as
 * torn then; when the machine did not restart (config.torn_writes_possible
 * is false: only the process died, and every write it made reached the page
 * cache whole) nothing can be torn, so it is damage too. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "storage/wal.h"
#include "storage/wal_internal.h"

enum scan_outcome {
    SCAN_COMPLETE = 1, /* the segment holds its whole range */
    SCAN_CLEAN_END,    /* last segment: ends in zeros; append after it */
    SCAN_TORN,         /* last segment: torn last record, cut */
    SCAN_DAMAGED,      /* a record that may have been synced is bad */
};

/* One segment being scanned. */
struct scan {
    char path[VFS_PATH_MAX];
    uint8_t *data;
    size_t size;
    uint64_t first_op;
    uint64_t range_end; /* last op the segment must hold; max if last */
    bool last;
    bool torn_writes_possible;
    uint64_t offset;    /* where the scan stopped */
    uint64_t expected;  /* the op wanted there */
    const char *reason; /* what is wrong there; NULL: zeros or the end */
    bool in_header;     /* the segment header itself is bad */
    bool out_of_order;  /* a valid record with the wrong op or parent */
};

/* Listing the directory. */

struct listing {
    struct wal *wal;
    uint64_t *temps;
    uint32_t temp_count, temp_cap;
    int rc;
    struct cohort_err *err;
};

/* Parse "%020llu.log" (suffix ".log") or its ".log.tmp" twin. */
static bool parse_segment_name(const char *name, const char *suffix,
                               uint64_t *first_op)
{
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (strcmp(name + 20, suffix) != 0 || v == 0)
        return false;
    *first_op = v;
    return true;
}

static int push_u64(uint64_t **array, uint32_t *count, uint32_t *cap,
                    uint64_t v)
{
    if (*count == *cap) {
        uint32_t next = *cap ? *cap * 2 : 16;
        uint64_t *p = realloc(*array, next * sizeof(*p));
        if (!p)
            return -COHORT_ENOMEM;
        *array = p;
        *cap = next;
    }
    (*array)[(*count)++] = v;
    return 0;
}

static int on_dir_entry(void *ctx, const char *name)
{
    struct listing *l = ctx;
    struct wal *wal = l->wal;
    uint64_t op;
    if (strlen(name) < 20)
        return 0;
    int rc = 0;
    if (parse_segment_name(name, ".log", &op))
        rc = push_u64(&wal->segments, &wal->segment_count, &wal->segment_cap,
                      op);
    else if (parse_segment_name(name, ".log.tmp", &op))
        rc = push_u64(&l->temps, &l->temp_count, &l->temp_cap, op);
    if (rc != 0)
        return err_set(l->err, rc, "wal %.300s: out of memory listing it",
                       wal->dir);
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Collect the segments in order; delete temp files (segments whose
 * creation a crash interrupted: never part of the log). */
static int list_segments(struct wal *wal, struct cohort_err *err)
{
    struct listing l = {.wal = wal, .err = err};
    int rc = vfs_list(wal->vfs, wal->dir, on_dir_entry, &l, err);
    for (uint32_t i = 0; rc == 0 && i < l.temp_count; i++) {
        char path[VFS_PATH_MAX];
        wal_segment_path(wal, l.temps[i], true, path);
        rc = vfs_unlink(wal->vfs, path, err);
        if (rc == -COHORT_ENOTFOUND)
            rc = 0;
    }
    free(l.temps);
    if (rc != 0)
        return err_wrap(err, "wal: open %.300s", wal->dir);
    if (wal->segment_count > 1)
        qsort(wal->segments, wal->segment_count, sizeof(*wal->segments),
              compare_u64);
    return 0;
}

/* Recovered entries. */

static int recovered_push(struct wal *wal, const struct entry *e,
                          struct cohort_err *err)
{
    if (wal->recovered_count == wal->recovered_cap) {
        uint64_t cap = wal->recovered_cap ? wal->recovered_cap * 2 : 1024;
        struct entry *p = realloc(wal->recovered, cap * sizeof(*p));
        if (!p)
            return err_set(err, -COHORT_ENOMEM,
                           "wal: out of memory recovering %" PRIu64 " entries",
                           cap);
        wal->recovered = p;
        wal->recovered_cap = cap;
    }
    wal->recovered[wal->recovered_count++] = *e;
    return 0;
}

/* Move the bodies of entries from index `from` on (still pointing into the
 * segment's read buffer) into one block the wal keeps. */
static int recovered_rehome(struct wal *wal, uint64_t from,
                            struct cohort_err *err)
{
    uint64_t bytes = 0;
    for (uint64_t i = from; i < wal->recovered_count; i++)
        bytes += wal->recovered[i].h.body_size;
    if (bytes == 0)
        return 0;
    if (wal->block_count == wal->block_cap) {
        uint32_t cap = wal->block_cap ? wal->block_cap * 2 : 16;
        uint8_t **p = realloc(wal->blocks, cap * sizeof(*p));
        if (!p)
            return err_set(err, -COHORT_ENOMEM, "wal: out of memory");
        wal->blocks = p;
        wal->block_cap = cap;
    }
    uint8_t *block = malloc((size_t)bytes);
    if (!block)
        return err_set(err, -COHORT_ENOMEM,
                       "wal: out of memory for %" PRIu64 " bytes of entries",
                       bytes);
    wal->blocks[wal->block_count++] = block;
    for (uint64_t i = from; i < wal->recovered_count; i++) {
        struct entry *e = &wal->recovered[i];
        if (e->h.body_size)
            memcpy(block, e->body, e->h.body_size);
        e->body = block;
        block += e->h.body_size;
    }
    return 0;
}

/* Scanning one segment. */

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The offset of the first valid record after `from`, or 0. */
static uint64_t valid_record_after(const struct scan *s, uint64_t from)
{
    for (uint64_t at = from + WAL_RECORD_ALIGN;
         at + WAL_RECORD_HEADER_SIZE <= s->size; at += WAL_RECORD_ALIGN) {
        if (get_u32(s->data + at) != WAL_RECORD_MAGIC)
            continue;
        struct entry e;
        uint64_t size;
        const char *reason;
        if (wal_record_decode(s->data + at, s->size - (size_t)at, &e, &size,
                              &reason) == 0)
            return at;
    }
    return 0;
}

/* Whether the bad record at s->offset can be the prefix of a write that the
 * process's death cut short: a write stops at a page boundary, so the
 * record's bytes from some page boundary to its end are all zero (the
 * segment was preallocated with zeros). A record whose size field is beyond
 * the segment counts as cut too. */
static bool partial_write(const struct scan *s)
{
    if (s->in_header)
        return false; /* written whole before the segment was renamed in */
    const uint8_t *p = s->data + s->offset;
    uint64_t left = s->size - s->offset;
    if (left < WAL_RECORD_HEADER_SIZE)
        return true;
    uint64_t end = WAL_RECORD_HEADER_SIZE + (uint64_t)get_u32(p + 8);
    if (end > left)
        return true;
    uint64_t last = end; /* one past the last non-zero byte */
    while (last > 0 && p[last - 1] == 0)
        last--;
    uint64_t page = WAL_PAGE_SIZE;
    uint64_t boundary = (s->offset + last + page - 1) / page * page;
    return boundary < s->offset + end;
}

/* Read the segment's records into the log until its range is complete or
 * something stops the scan; s->offset, expected and reason say where and
 * why. */
static int scan_records(struct wal *wal, struct scan *s, struct cohort_err *err)
{
    s->expected = s->first_op;
    s->offset = WAL_SEGMENT_HEADER_SIZE;
    s->reason = wal_segment_header_check(s->data, s->size, s->first_op);
    if (s->reason) {
        s->offset = 0;
        s->in_header = true;
        return 0;
    }
    while (s->expected <= s->range_end) {
        if (s->offset + WAL_RECORD_HEADER_SIZE > s->size)
            return 0; /* the segment is full */
        const uint8_t *p = s->data + s->offset;
        if (all_zero(p, WAL_RECORD_HEADER_SIZE))
            return 0;
        struct entry e;
        uint64_t size;
        if (wal_record_decode(p, s->size - (size_t)s->offset, &e, &size,
                              &s->reason) != 0)
            return 0;
        if (e.h.op != s->expected) {
            s->reason = "is missing: a valid record for another op is there";
            s->out_of_order = true;
            return 0;
        }
        if (wal->op_last && e.h.parent != wal->checksum_last) {
            s->reason = "does not follow the op before it (its parent "
                        "checksum differs)";
            s->out_of_order = true;
            return 0;
        }
        int rc = recovered_push(wal, &e, err);
        if (rc != 0)
            return rc;
        if (wal->op_last == 0)
            wal->op_first = e.h.op;
        wal->op_last = e.h.op;
        wal->checksum_last = e.h.checksum;
        s->expected++;
        s->offset += size;
    }
    return 0;
}

static void report_damage(struct wal_recovery *rec, const struct scan *s,
                          const char *why)
{
    rec->damaged_op = s->expected;
    if (s->in_header)
        err_set(&rec->damage, -COHORT_ECORRUPT,
                "%.400s offset 0: segment for op %" PRIu64 " %s%s", s->path,
                s->first_op, s->reason, why);
    else
        err_set(&rec->damage, -COHORT_ECORRUPT,
                "%.400s offset %" PRIu64 ": record for op %" PRIu64 " %s%s",
                s->path, s->offset, s->expected,
                s->reason ? s->reason : "is missing", why);
}

/* Decide what the stop of a scan means (see the comment at the top). */
static enum scan_outcome scan_judge(const struct scan *s,
                                    struct wal_recovery *rec)
{
    if (s->expected > s->range_end)
        return SCAN_COMPLETE;
    if (!s->last) {
        report_damage(rec, s,
                      " (its segment was synced in full before the "
                      "next one began)");
        return SCAN_DAMAGED;
    }
    if (s->out_of_order) {
        report_damage(rec, s, "");
        return SCAN_DAMAGED;
    }
    uint64_t next = valid_record_after(s, s->offset);
    if (next) {
        char why[96];
        snprintf(why, sizeof(why),
                 ", and a valid record follows at offset %" PRIu64, next);
        report_damage(rec, s, why);
        return SCAN_DAMAGED;
    }
    /* Zeros where the next record goes: the end, unless bytes of a torn
     * write lie behind them. */
    const char *reason = s->reason;
    if (!reason && s->offset < s->size &&
        !all_zero(s->data + s->offset, s->size - (size_t)s->offset))
        reason = "is torn";
    if (!reason)
        return SCAN_CLEAN_END;
    if (!s->torn_writes_possible && !partial_write(s)) {
        report_damage(rec, s,
                      " (the machine has not restarted since it was "
                      "written, so it cannot be a torn write)");
        return SCAN_DAMAGED;
    }
    rec->torn_tail = true;
    if (s->in_header)
        err_set(&rec->torn, -COHORT_ECORRUPT,
                "%.400s offset 0: segment for op %" PRIu64
                " %s and holds no valid record: ignored, and replaced",
                s->path, s->first_op, reason);
    else
        err_set(&rec->torn, -COHORT_ECORRUPT,
                "%.400s offset %" PRIu64 ": record for op %" PRIu64
                " %s: the last write was torn by a crash before it was "
                "synced, and is cut off",
                s->path, s->offset, s->expected, reason);
    return SCAN_TORN;
}

static int scan_segment(struct wal *wal, uint32_t i, struct wal_recovery *rec,
                        enum scan_outcome *outcome, struct cohort_err *err)
{
    struct scan s = {.first_op = wal->segments[i]};
    s.torn_writes_possible = wal->config.torn_writes_possible;
    s.last = i + 1 == wal->segment_count;
    s.range_end = s.last ? UINT64_MAX : wal->segments[i + 1] - 1;
    /* Earlier segments ended complete, so this one starts the next op. */
    ASSERT(wal->op_last == 0 || wal->op_last + 1 == s.first_op);
    wal_segment_path(wal, s.first_op, false, s.path);
    int rc = vfs_read_file(wal->vfs, s.path, &s.data, &s.size, err);
    if (rc != 0)
        return err_wrap(err, "wal: recover");
    uint64_t from = wal->recovered_count;
    rc = scan_records(wal, &s, err);
    int rc2 = recovered_rehome(wal, from, err); /* before data is freed */
    if (rc == 0)
        rc = rc2;
    if (rc == 0) {
        *outcome = scan_judge(&s, rec);
        if (*outcome == SCAN_CLEAN_END) {
            wal->tail_offset = s.offset;
            wal->tail_size = s.size;
        }
    }
    free(s.data);
    return rc;
}

/* Make the wal ready to append behind what was recovered. */
static int recover_finish(struct wal *wal, enum scan_outcome last,
                          struct cohort_err *err)
{
    wal->op_written = wal->op_last;
    wal->checksum_written = wal->checksum_last;
    wal->op_durable = wal->op_last;
    wal->checksum_durable = wal->checksum_last;
    if (wal->segment_count == 0)
        return 0;
    if (last != SCAN_CLEAN_END) {
        /* Torn or damaged: later records start a new segment, and the
         * segments past the cut are deleted then. */
        wal->truncate_from = wal->op_last ? wal->op_last + 1 : 1;
        return 0;
    }
    char path[VFS_PATH_MAX];
    wal_segment_path(wal, wal->segments[wal->segment_count - 1], false, path);
    int rc = vfs_open(wal->vfs, path, 0, &wal->tail, err);
    if (rc != 0)
        return err_wrap(err, "wal: reopen tail segment");
    ASSERT(wal->tail_offset >= WAL_SEGMENT_HEADER_SIZE);
    ASSERT(wal->tail_offset <= wal->tail_size);
    return 0;
}

static int recover(struct wal *wal, struct wal_recovery *rec,
                   struct cohort_err *err)
{
    enum scan_outcome outcome = SCAN_CLEAN_END;
    for (uint32_t i = 0; i < wal->segment_count; i++) {
        int rc = scan_segment(wal, i, rec, &outcome, err);
        if (rc != 0)
            return rc;
        if (outcome != SCAN_COMPLETE)
            break;
    }
    ASSERT(outcome != SCAN_COMPLETE); /* the last segment never completes */
    int rc = recover_finish(wal, outcome, err);
    if (rc != 0)
        return rc;
    rec->entries = wal->recovered;
    rec->entry_count = wal->recovered_count;
    ASSERT(rec->entry_count ==
           (wal->op_last ? wal->op_last - wal->op_first + 1 : 0));
    return 0;
}

static int check_config(const struct wal_config *config, const char *dir,
                        struct cohort_err *err)
{
    if (config->segment_size < WAL_SEGMENT_SIZE_MIN ||
        config->segment_size % WAL_RECORD_ALIGN != 0)
        return err_set(err, -COHORT_ECONFIG,
                       "wal: segment size %" PRIu64
                       " must be a multiple of %d and at least %u",
                       config->segment_size, WAL_RECORD_ALIGN,
                       WAL_SEGMENT_SIZE_MIN);
    if (strlen(dir) + 1 + WAL_SEGMENT_NAME_MAX >= VFS_PATH_MAX)
        return err_set(err, -COHORT_EINVAL,
                       "wal: directory path is longer than %d bytes: %.200s",
                       VFS_PATH_MAX - 2 - WAL_SEGMENT_NAME_MAX, dir);
    return 0;
}

int wal_open(struct wal *wal, struct vfs *vfs, const char *dir,
             const struct wal_config *config, struct wal_recovery *recovery,
             struct cohort_err *err)
{
    ASSERT(vfs != NULL);
    ASSERT(dir != NULL);
    memset(wal, 0, sizeof(*wal));
    memset(recovery, 0, sizeof(*recovery));
    int rc = check_config(config, dir, err);
    if (rc != 0)
        return rc;
    wal->vfs = vfs;
    wal->config = *config;
    snprintf(wal->dir, sizeof(wal->dir), "%s", dir);
    wal->state = WAL_OPEN;
    rc = vfs_mkdir_durable(vfs, dir, err);
    if (rc != 0)
        err_wrap(err, "wal: create directory");
    if (rc == 0)
        rc = list_segments(wal, err);
    if (rc == 0)
        rc = recover(wal, recovery, err);
    if (rc != 0) {
        wal_close(wal);
        memset(recovery, 0, sizeof(*recovery));
        return rc;
    }
    return 0;
}
