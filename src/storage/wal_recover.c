/* wal_recover — wal_open(): find the segments, read and verify every record
 * after the base (the snapshot the replica restored), tell a torn tail
 * (cut) from damage (reported), find what is missing, and leave the wal
 * ready to append after the log the replica gets. See wal.h for the format
 * and invariants.
 *
 * The base. Segments whose range ends at or below the base are not read
 * (wal.h invariant 7). In the segment that holds base + 1, records up to
 * the base are passed over: a bad one is skipped by looking for the next
 * valid record (a record's checksums make a false match practically
 * impossible), and only noted. From base + 1 on, every record is checked
 * as below, and base + 1 must chain onto the base's checksum, or the rest
 * is a stale suffix.
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
#include "common/grow.h"
#include "common/bytes.h"
#include "storage/wal.h"
#include "storage/wal_internal.h"

enum scan_outcome {
    SCAN_COMPLETE = 1, /* the segment holds its whole range */
    SCAN_CLEAN_END,    /* last segment: ends in zeros; append after it */
    SCAN_TORN,         /* last segment: torn last record, cut */
    SCAN_DAMAGED,      /* a record that may have been synced is bad */
    SCAN_STALE,        /* op base + 1 does not chain onto the base */
    SCAN_BELOW_END,    /* last segment: ends at or below the base, not in
                          clean zeros (a bad record the base covers) */
};

/* The recovery of one wal_open(). */
struct recovery {
    const struct wal_expect *expect;
    struct wal_recovery *rec;
    enum scan_outcome outcome;
    bool tail_reusable; /* the last segment can take the next record */
    /* The log's end as the segments show it: the last record read, a bad
     * one passed over, and the names (wal.h invariant 6). */
    uint64_t end_seen;
};

/* One segment being scanned. */
struct scan {
    char path[VFS_PATH_MAX];
    uint8_t *data;
    size_t size;           /* bytes scanned: the file, up to created_size */
    uint64_t file_size;    /* as found */
    uint64_t created_size; /* as its header records; 0: header bad */
    uint64_t first_op;
    uint64_t range_end; /* last op the segment must hold; max if last */
    uint64_t base;      /* ops up to this are the snapshot's */
    bool last;
    bool bug_trust_records;
    bool torn_writes_possible;
    uint64_t offset;    /* where the scan stopped */
    uint64_t expected;  /* the op wanted there */
    const char *reason; /* what is wrong there; NULL: zeros or the end */
    bool in_header;     /* the segment header itself is bad */
    bool out_of_order;  /* a valid record with the wrong op or parent */
    bool stale;         /* op base + 1 does not chain onto the base */
    uint64_t last_op;   /* the op of the last record read; 0: none */
    /* Not last: the next segment's path, and what is wrong with its
     * header (NULL: it is a segment of this log), read when the scan
     * stops short of the next segment's first op in clean zeros. */
    char next_path[VFS_PATH_MAX];
    const char *next_reason;
    /* The first bad spot passed over at or below the base. */
    bool covered;
    uint64_t covered_offset;
    const char *covered_reason;
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
    if (strcmp(name + 20, suffix) != 0 || v == 0 || v > ENTRY_OP_MAX)
        return false; /* no wal wrote it: not a segment */
    *first_op = v;
    return true;
}

static int push_u64(uint64_t **array, uint32_t *count, uint32_t *cap,
                    uint64_t v)
{
    void *p = *array;
    if (!grow_array_u32(&p, cap, (size_t)*count + 1, sizeof(**array), 16))
        return -COHORT_ENOMEM;
    *array = p;
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
    /* Filled in as each segment is scanned; a segment not scanned (past
     * damage) counts nothing and is deleted at the next sync. */
    wal->segment_bytes =
        calloc(wal->segment_cap ? wal->segment_cap : 1, sizeof(uint64_t));
    if (wal->segment_bytes == NULL)
        return err_set(err, -COHORT_ENOMEM,
                       "wal %.300s: out of memory listing it", wal->dir);
    return 0;
}

/* Recovered entries. */

static int recovered_push(struct wal *wal, const struct entry *e,
                          uint64_t commit, struct cohort_err *err)
{
    if (!grow_array_u64((void **)&wal->recovered, &wal->recovered_cap,
                        wal->recovered_count + 1, sizeof(*wal->recovered),
                        1024))
        return err_set(err, -COHORT_ENOMEM,
                       "wal: out of memory recovering %" PRIu64 " entries",
                       wal->recovered_count + 1);
    if (commit > wal->recovered_commit)
        wal->recovered_commit = commit;
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
    if (!grow_array_u32((void **)&wal->blocks, &wal->block_cap,
                        (size_t)wal->block_count + 1, sizeof(*wal->blocks), 16))
        return err_set(err, -COHORT_ENOMEM, "wal: out of memory");
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
        uint64_t size, commit;
        const char *reason;
        if (wal_record_decode(s->data + at, s->size - (size_t)at, &e, &commit,
                              &size, &reason) == 0)
            return at;
    }
    return 0;
}

/* Whether a valid record for an op at or above min_op lies anywhere in the
 * segment. Records are appended in op order, so one that the scan did not
 * reach in order was written somewhere it should not be (a misdirected
 * write): the ops from min_op on were acknowledged and are not where the
 * log has them. */
static bool record_from_op_anywhere(const struct scan *s, uint64_t min_op)
{
    for (uint64_t at = WAL_SEGMENT_HEADER_SIZE;
         at + WAL_RECORD_HEADER_SIZE <= s->size; at += WAL_RECORD_ALIGN) {
        if (get_u32(s->data + at) != WAL_RECORD_MAGIC)
            continue;
        struct entry e;
        uint64_t size, commit;
        const char *reason;
        if (wal_record_decode(s->data + at, s->size - (size_t)at, &e, &commit,
                              &size, &reason) == 0 &&
            e.h.op >= min_op)
            return true;
    }
    return false;
}

/* BUG_STORAGE_TRUST_RECORD, the deliberate bug: take a record's fields as
 * they are, checksums unchecked (the bounds still are). */
static bool trust_record(const uint8_t *p, size_t size, struct entry *e,
                         uint64_t *record_size)
{
    if (size < WAL_RECORD_HEADER_SIZE || get_u32(p) != WAL_RECORD_MAGIC)
        return false;
    uint32_t payload = get_u32(p + 8);
    if (payload < ENTRY_HEADER_SIZE || payload > size - WAL_RECORD_HEADER_SIZE)
        return false;
    const uint8_t *h = p + WAL_RECORD_HEADER_SIZE;
    e->h.checksum = get_u64(h);
    e->h.parent = get_u64(h + 8);
    e->h.op = get_u64(h + 16);
    e->h.client_id = get_u64(h + 24);
    e->h.request_no = get_u64(h + 32);
    e->h.timestamp_ms = get_u64(h + 40);
    e->h.view = get_u64(h + 48);
    e->h.body_size = payload - ENTRY_HEADER_SIZE;
    e->h.epoch = get_u32(h + 60);
    e->h.kind = get_u16(h + 64);
    e->body = h + ENTRY_HEADER_SIZE;
    *record_size = wal_record_size(e->h.body_size);
    return *record_size <= size;
}

/* Whether the trailer of the record for op s->expected lies after
 * s->offset in the segment: the record's write reached its end, so the
 * record was written whole and is damaged, not torn. (Ops only grow within
 * a segment and records are only appended, so no older record for that op
 * can have left a trailer there.) */
static bool trailer_after(const struct scan *s)
{
    if (s->in_header)
        return false;
    for (uint64_t at = s->offset + WAL_RECORD_HEADER_SIZE;
         at + WAL_RECORD_TRAILER_SIZE <= s->size; at += WAL_RECORD_ALIGN) {
        const uint8_t *t = s->data + at;
        if (get_u32(t) == WAL_TRAILER_MAGIC && get_u64(t + 8) == s->expected)
            return true;
    }
    return false;
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

/* Below the base, where nothing is needed: skip a bad spot (s->reason, or
 * zeros) to the next valid record. False if none follows in the segment:
 * the segment's records end there. */
static bool pass_over(struct scan *s)
{
    uint64_t next = valid_record_after(s, s->offset);
    if ((next || s->reason) && !s->covered) {
        s->covered = true;
        s->covered_offset = s->offset;
        s->covered_reason = s->reason ? s->reason : "is missing (zeros)";
    }
    if (!next)
        return false;
    s->offset = next;
    s->reason = NULL;
    return true;
}

/* The record e for op >= base + 1 at s->offset: take it into the log, or
 * set why not (returns 1 to stop the scan there). */
static int take_record(struct wal *wal, struct scan *s, const struct entry *e,
                       uint64_t commit, struct cohort_err *err)
{
    if (s->expected <= s->base && e->h.op == s->base + 1)
        s->expected = s->base + 1; /* the log starts here */
    if (e->h.op != s->expected) {
        if (s->expected <= s->base)
            s->expected = s->base + 1;
        s->reason = "is missing: a valid record for another op is there";
        s->out_of_order = true;
        return 1;
    }
    if (e->h.parent != wal->checksum_last) {
        s->stale = wal->op_last == s->base;
        s->reason = "does not follow the op before it (its parent "
                    "checksum differs)";
        s->out_of_order = true;
        return 1;
    }
    int rc = recovered_push(wal, e, commit, err);
    if (rc != 0)
        return rc;
    wal->op_last = e->h.op;
    wal->checksum_last = e->h.checksum;
    return 0;
}

/* Read the segment's records until its range is complete or something
 * stops the scan; s->offset, expected and reason say where and why. Records
 * at or below the base are passed over; the others go into the log. */
static int scan_records(struct wal *wal, struct scan *s, struct cohort_err *err)
{
    s->expected = s->first_op;
    s->offset = WAL_SEGMENT_HEADER_SIZE;
    uint32_t version = wal_segment_other_version(s->data, s->file_size);
    if (version > WAL_FORMAT_VERSION)
        return err_set(err, -COHORT_ENOTSUP,
                       "wal segment %.300s is log format %u, newer than this "
                       "cohort reads (%u): upgrade cohort",
                       s->path, version, WAL_FORMAT_VERSION);
    if (version != 0)
        return err_set(err, -COHORT_ENOTSUP,
                       "wal segment %.300s is log format %u, from cohort "
                       "before 64-bit views; this build reads format %u "
                       "only: run the older cohort on this data directory, "
                       "or move it aside to start the replica empty",
                       s->path, version, WAL_FORMAT_VERSION);
    s->reason = wal_segment_header_check(s->data, s->file_size, s->first_op);
    if (s->reason) {
        s->offset = 0;
        s->in_header = true;
        if (s->first_op <= s->base) {
            s->covered = true;
            s->covered_offset = 0;
            s->covered_reason = s->reason;
        }
        return 0;
    }
    while (s->expected <= s->range_end) {
        if (s->offset + WAL_RECORD_HEADER_SIZE > s->size)
            return 0; /* the segment is full */
        const uint8_t *p = s->data + s->offset;
        struct entry e;
        uint64_t size, commit = 0;
        bool bad = all_zero(p, WAL_RECORD_HEADER_SIZE);
        if (bad)
            s->reason = NULL;
        else
            bad = wal_record_decode(p, s->size - (size_t)s->offset, &e, &commit,
                                    &size, &s->reason) != 0;
        if (bad && s->bug_trust_records)
            bad = !trust_record(p, s->size - (size_t)s->offset, &e, &size);
        if (bad && s->expected <= s->base && pass_over(s))
            continue;
        if (bad)
            return 0;
        if (s->expected <= s->base && e.h.op <= s->base) {
            s->expected = e.h.op + 1; /* the snapshot's: not checked */
        } else {
            int rc = take_record(wal, s, &e, commit, err);
            if (rc != 0)
                return rc < 0 ? rc : 0;
            s->expected++;
        }
        s->last_op = e.h.op;
        s->offset += size;
    }
    return 0;
}

/* Judging where a scan stopped. */

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

/* The scan stopped before the log above the base began, in a segment that
 * had to hold it. */
static void report_missing_above_base(struct wal_recovery *rec,
                                      const struct scan *s)
{
    rec->damaged_op = s->base + 1;
    err_set(&rec->damage, -COHORT_ECORRUPT,
            "%.400s offset %" PRIu64 ": the records from op %" PRIu64
            " on (above the snapshot) are missing: the segment's records "
            "stop there (%s)%s",
            s->path, s->offset, s->base + 1, s->reason ? s->reason : "zeros",
            s->last ? ""
                    : ", but it was synced in full before the next "
                      "segment began");
}

static void report_cut_short(struct wal_recovery *rec, const struct scan *s)
{
    rec->damaged_op = s->expected > s->base ? s->expected : s->base + 1;
    err_set(&rec->damage, -COHORT_ECORRUPT,
            "%.400s is %" PRIu64 " bytes, shorter than the %" PRIu64
            " it was created with: the segment was cut short (truncated?), "
            "so the records from op %" PRIu64 " on may be lost",
            s->path, s->file_size, s->created_size, rec->damaged_op);
}

/* The scan stopped in clean zeros before the next segment's first op,
 * and that file's header does not check out: it is no segment of this log
 * (a stray file), so it is the one to name, not the segment before it. It
 * is still damage (the records may have been zeroed instead), repaired
 * from peers (the truncation after the repair deletes the file); without
 * the file the log ends there, and the metadata's log end (wal_expect)
 * still catches a loss. */
static void report_stray(struct wal_recovery *rec, const struct scan *s)
{
    rec->damaged_op = s->expected > s->base ? s->expected : s->base + 1;
    err_set(&rec->damage, -COHORT_ECORRUPT,
            "%.300s offset 0: %s, so it is not a segment of this log (a "
            "stray file?); the log before it ends at op %" PRIu64
            " in %.300s: ops from %" PRIu64 " on are repaired from peers, "
            "or move that file out of the wal directory and restart",
            s->next_path, s->next_reason, rec->damaged_op - 1, s->path,
            rec->damaged_op);
}

/* Where the log above the base goes on (see the comment at the top): the
 * scan stopped in the last segment, at op expected > base. */
static enum scan_outcome judge_last(const struct scan *s,
                                    struct wal_recovery *rec)
{
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
    if (record_from_op_anywhere(s, s->expected)) {
        report_damage(rec, s,
                      ", and a valid record for it or a later op lies "
                      "elsewhere in the segment (a misdirected write)");
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
    if (trailer_after(s)) {
        report_damage(rec, s,
                      " (its trailer shows it was written whole: it was "
                      "damaged after it was written, not torn)");
        return SCAN_DAMAGED;
    }
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

/* Decide what the stop of a scan means (see the comment at the top). */
static enum scan_outcome scan_judge(const struct scan *s,
                                    struct wal_recovery *rec)
{
    if (s->stale)
        return SCAN_STALE;
    if (s->expected > s->range_end)
        return SCAN_COMPLETE;
    if (s->created_size > s->file_size) {
        report_cut_short(rec, s);
        return SCAN_DAMAGED;
    }
    if (s->next_reason) {
        report_stray(rec, s);
        return SCAN_DAMAGED;
    }
    if (s->expected <= s->base) {
        /* The log above the base never began in this segment, unless a
         * valid record above the base lies past the bad spot (a damaged
         * segment header, or records below the base, hid the way to it):
         * then what the log held above the base is lost here. */
        if (!s->last || s->out_of_order ||
            record_from_op_anywhere(s, s->base + 1)) {
            report_missing_above_base(rec, s);
            return SCAN_DAMAGED;
        }
        bool clean = !s->reason && !s->in_header &&
                     all_zero(s->data + s->offset, s->size - (size_t)s->offset);
        return clean ? SCAN_CLEAN_END : SCAN_BELOW_END;
    }
    if (!s->last) {
        report_damage(rec, s,
                      " (its segment was synced in full before the "
                      "next one began)");
        return SCAN_DAMAGED;
    }
    return judge_last(s, rec);
}

/* Read segment i (its header's size says how much of it is the segment). */
static int segment_read(struct wal *wal, struct scan *s, struct cohort_err *err)
{
    wal_segment_path(wal, s->first_op, false, s->path);
    int rc = vfs_read_file(wal->vfs, s->path, &s->data, &s->size, err);
    if (rc != 0)
        return err_wrap(err, "wal: recover");
    s->file_size = s->size;
    if (!wal_segment_header_check(s->data, s->size, s->first_op)) {
        s->created_size = get_u64(s->data + 24);
        if (s->size > s->created_size)
            s->size = (size_t)s->created_size;
    }
    return 0;
}

/* The header of segment i + 1, when segment i stopped in clean zeros
 * short of it (see struct scan). Only a better message: a file that
 * cannot be read leaves the damage reported as it was. */
static void next_header_check(struct wal *wal, uint32_t i, struct scan *s)
{
    if (s->last || s->expected > s->range_end || s->reason || s->in_header ||
        s->out_of_order || s->stale)
        return;
    ASSERT(i + 1 < wal->segment_count);
    wal_segment_path(wal, wal->segments[i + 1], false, s->next_path);
    struct cohort_err ignored;
    struct vfs_file *file;
    if (vfs_open(wal->vfs, s->next_path, VFS_READ_ONLY, &file, &ignored) != 0)
        return;
    uint8_t head[WAL_SEGMENT_HEADER_SIZE];
    size_t done = 0;
    int rc = vfs_read(wal->vfs, file, 0, head, sizeof(head), &done, &ignored);
    vfs_close(wal->vfs, file);
    if (rc == 0)
        s->next_reason =
            wal_segment_header_check(head, done, wal->segments[i + 1]);
}

static int scan_segment(struct wal *wal, uint32_t i, struct recovery *r,
                        struct cohort_err *err)
{
    const struct wal_expect *x = r->expect;
    struct scan s = {.first_op = wal->segments[i], .base = x->base.op};
    s.torn_writes_possible = wal->config.torn_writes_possible;
    s.bug_trust_records = wal->config.bug_trust_records;
    s.last = i + 1 == wal->segment_count;
    s.range_end = s.last ? UINT64_MAX : wal->segments[i + 1] - 1;
    int rc = segment_read(wal, &s, err);
    if (rc != 0)
        return rc;
    uint64_t from = wal->recovered_count;
    rc = scan_records(wal, &s, err);
    wal->segment_bytes[i] = s.offset;
    int rc2 = recovered_rehome(wal, from, err); /* before data is freed */
    if (rc == 0)
        rc = rc2;
    if (rc == 0)
        next_header_check(wal, i, &s);
    if (rc == 0) {
        r->outcome = scan_judge(&s, r->rec);
        if (s.last_op > r->end_seen)
            r->end_seen = s.last_op;
        if (r->outcome == SCAN_BELOW_END && s.reason &&
            s.expected > r->end_seen)
            r->end_seen = s.expected; /* the bad record was there */
        if (s.covered && !r->rec->covered_damage) {
            r->rec->covered_damage = true;
            err_set(&r->rec->covered, -COHORT_ECORRUPT,
                    "%.400s offset %" PRIu64 ": a record %s, at or below the "
                    "snapshot at op %" PRIu64 " (not needed: ignored)",
                    s.path, s.covered_offset, s.covered_reason, s.base);
        }
        if (s.stale) {
            r->rec->stale_suffix = true;
            err_set(&r->rec->stale, -COHORT_ECORRUPT,
                    "%.400s offset %" PRIu64 ": the log after the snapshot "
                    "at op %" PRIu64 " is from another history (left from "
                    "before a snapshot was installed): dropped",
                    s.path, s.offset, s.base);
        }
        /* The next record can go behind the last one read, in zeros, in
         * a segment of this format (an older format's records have no
         * commit notes, and an older build reading ours should refuse the
         * whole segment by its format, not see damage in its records). */
        r->tail_reusable =
            r->outcome == SCAN_CLEAN_END &&
            s.created_size == wal->config.segment_size &&
            !wal_segment_header_check(s.data, s.size, s.first_op) &&
            wal_segment_version(s.data) == WAL_FORMAT_VERSION &&
            (s.last_op == wal->op_last ||
             (s.last_op == 0 && s.first_op == wal->op_last + 1));
        wal->tail_offset = s.offset;
        wal->tail_size = s.size;
    }
    free(s.data);
    return rc;
}

/* Recovering the whole log. */

/* Make the wal ready to append behind what was recovered: in the tail
 * segment if it can take it, else in a new segment at the next op (made,
 * and the segments at or after it deleted, at the next wal_sync(): the
 * disk does not change before the replica has recorded any damage). */
/* Make what recovery read durable: a killed process's last writes (and
 * segment names) may still be only in the page cache, and the replica
 * will take every recovered record as durable. Segments before the last
 * were synced in full before the next one began (invariant 2). */
static int recover_sync(struct wal *wal, struct cohort_err *err)
{
    if (wal->segment_count == 0)
        return 0;
    char path[VFS_PATH_MAX];
    wal_segment_path(wal, wal->segments[wal->segment_count - 1], false, path);
    struct vfs_file *file;
    int rc = vfs_open(wal->vfs, path, VFS_READ_ONLY, &file, err);
    if (rc == 0) {
        rc = vfs_sync(wal->vfs, file, err);
        vfs_close(wal->vfs, file);
    }
    if (rc == 0)
        rc = vfs_sync_dir(wal->vfs, wal->dir, err);
    return rc != 0 ? err_wrap(err, "wal: sync what recovery read") : 0;
}

static int recover_finish(struct wal *wal, const struct recovery *r,
                          struct cohort_err *err)
{
    int rc_sync = recover_sync(wal, err);
    if (rc_sync != 0)
        return rc_sync;
    wal->op_written = wal->op_last;
    wal->checksum_written = wal->checksum_last;
    wal->op_durable = wal->op_last;
    wal->checksum_durable = wal->checksum_last;
    if (wal->segment_count == 0 && !r->expect->log_exists)
        return wal_segment_create(wal, wal->op_last + 1, err); /* fresh */
    if (wal->segment_count == 0 || !r->tail_reusable) {
        wal->truncate_from = wal->op_last + 1;
        return 0;
    }
    char path[VFS_PATH_MAX];
    wal_segment_path(wal, wal->segments[wal->segment_count - 1], false, path);
    int rc = vfs_open(wal->vfs, path, 0, &wal->tail, err);
    if (rc != 0)
        return err_wrap(err, "wal: reopen tail segment");
    ASSERT(wal->tail_offset >= WAL_SEGMENT_HEADER_SIZE);
    ASSERT(wal->tail_offset <= wal->tail_size);
    /* Unknown how far earlier wal_prepare() calls wrote: from here on. */
    wal->tail_zeroed = wal->tail_offset;
    return 0;
}

/* Before any segment is read: a log with no segment at all, or whose first
 * segment starts after base + 1. */
static bool recover_missing_start(struct wal *wal, struct recovery *r)
{
    uint64_t base = r->expect->base.op;
    struct wal_recovery *rec = r->rec;
    if (wal->segment_count == 0 && r->expect->log_exists) {
        rec->damaged_op = base + 1;
        err_set(&rec->damage, -COHORT_ECORRUPT,
                "wal %.400s holds no log segment, but this replica's "
                "metadata exists, so it had a log: the log was deleted, and "
                "every op from %" PRIu64 " on is lost here",
                wal->dir, base + 1);
        return true;
    }
    if (wal->segment_count > 0 && wal->segments[0] > base + 1) {
        rec->damaged_op = base + 1;
        err_set(&rec->damage, -COHORT_ECORRUPT,
                "wal %.400s: its first segment starts at op %" PRIu64
                ", but the log must go on from op %" PRIu64
                " (after the snapshot): ops %" PRIu64 "..%" PRIu64
                " are missing (a deleted segment or snapshot?)",
                wal->dir, wal->segments[0], base + 1, base + 1,
                wal->segments[0] - 1);
        return true;
    }
    return wal->segment_count == 0;
}

/* The metadata says the log reached log_end_min, with that entry there:
 * the segments show less, or another entry. */
static void recover_check_end(struct wal *wal, struct recovery *r)
{
    struct wal_recovery *rec = r->rec;
    const struct wal_expect *x = r->expect;
    uint64_t want = x->log_end_min;
    uint64_t base = x->base.op;
    if (rec->damaged_op || rec->stale_suffix)
        return;
    /* Ops at or below the base are in the snapshot: their records may be
     * gone (a reset or a compaction got that far) at no loss. */
    if (r->end_seen < want && want > base) {
        rec->damaged_op = wal->op_last + 1;
        err_set(&rec->damage, -COHORT_ECORRUPT,
                "wal %.400s: its segments end at op %" PRIu64
                ", but the metadata records that the log reached op %" PRIu64
                ": its last segments were lost (deleted?), and every op from "
                "%" PRIu64 " on is lost here",
                wal->dir, r->end_seen, want, wal->op_last + 1);
        return;
    }
    if (want <= base || want > wal->op_last ||
        (uint32_t)wal->recovered[want - base - 1].h.checksum ==
            x->log_end_check)
        return;
    /* Where the stored log and this one part is unknown: all of it goes. */
    wal->recovered_count = 0;
    wal->recovered_commit = 0;
    wal->op_last = base;
    wal->checksum_last = x->base.checksum;
    r->tail_reusable = false;
    rec->damaged_op = base + 1;
    err_set(&rec->damage, -COHORT_ECORRUPT,
            "wal %.400s: its op %" PRIu64 " is not the one the metadata "
            "records (another checksum): the segment that replaced it was "
            "lost (deleted?), and the log from op %" PRIu64 " on is "
            "repaired from peers",
            wal->dir, want, base + 1);
}

static int recover(struct wal *wal, const struct wal_expect *x,
                   struct wal_recovery *rec, struct cohort_err *err)
{
    struct recovery r = {.expect = x, .rec = rec, .outcome = SCAN_CLEAN_END};
    uint64_t base = x->base.op;
    wal->snapshot_op = base;
    wal->op_first = base + 1;
    wal->op_last = base;
    wal->checksum_last = x->base.checksum;
    if (!recover_missing_start(wal, &r)) {
        /* Segments wholly at or below the base are not needed. */
        uint32_t i = 0;
        while (i + 1 < wal->segment_count && wal->segments[i + 1] <= base + 1)
            i++;
        r.end_seen = wal->segments[wal->segment_count - 1] - 1;
        for (; i < wal->segment_count; i++) {
            /* Earlier segments ended complete, so this one goes on. */
            ASSERT(wal->op_last == base ||
                   wal->op_last + 1 == wal->segments[i]);
            int rc = scan_segment(wal, i, &r, err);
            if (rc != 0)
                return rc;
            if (r.outcome != SCAN_COMPLETE)
                break;
        }
        ASSERT(r.outcome != SCAN_COMPLETE); /* the last never completes */
        recover_check_end(wal, &r);
    }
    int rc = recover_finish(wal, &r, err);
    if (rc != 0)
        return rc;
    rec->entries = wal->recovered;
    rec->entry_count = wal->recovered_count;
    rec->commit = wal->recovered_commit;
    ASSERT(rec->entry_count == wal->op_last - base);
    ASSERT(rec->damaged_op == 0 || rec->damaged_op == wal->op_last + 1);
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
             const struct wal_config *config, const struct wal_expect *expect,
             struct wal_recovery *recovery, struct cohort_err *err)
{
    static const struct wal_expect fresh;
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
        rc = recover(wal, expect ? expect : &fresh, recovery, err);
    if (rc != 0) {
        wal_close(wal);
        memset(recovery, 0, sizeof(*recovery));
        return rc;
    }
    return 0;
}
