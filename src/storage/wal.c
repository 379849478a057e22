/* wal — the write-ahead log: records, group commit, segments, compaction.
 * Recovery (wal_open) is in wal_recover.c. See wal.h for the format, the
 * invariants and the states. */
#include "storage/wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "storage/wal_internal.h"

static_assert(WAL_SEGMENT_HEADER_SIZE % WAL_RECORD_ALIGN == 0,
              "records start aligned");
static_assert(WAL_RECORD_HEADER_SIZE % WAL_RECORD_ALIGN == 0,
              "payloads start aligned");
static_assert(WAL_SEGMENT_SIZE_MIN >= WAL_SEGMENT_HEADER_SIZE +
                                          WAL_RECORD_HEADER_SIZE +
                                          ENTRY_HEADER_SIZE,
              "the smallest segment holds an empty entry");

void wal_config_defaults(struct wal_config *config)
{
    memset(config, 0, sizeof(*config));
    config->segment_size = WAL_SEGMENT_SIZE_DEFAULT;
    config->torn_writes_possible = true;
    config->zero_ahead = WAL_ZERO_AHEAD_DEFAULT;
}

/* Records. */

uint64_t wal_record_size(uint32_t body_size)
{
    uint64_t raw =
        (uint64_t)WAL_RECORD_HEADER_SIZE + ENTRY_HEADER_SIZE + body_size;
    uint64_t padded =
        (raw + WAL_RECORD_ALIGN - 1) & ~(uint64_t)(WAL_RECORD_ALIGN - 1);
    return padded + WAL_RECORD_TRAILER_SIZE;
}

static uint32_t record_crc(const uint8_t *record, uint32_t payload_size)
{
    uint32_t crc = crc32c(0, record, 4);
    return crc32c(crc, record + 8,
                  WAL_RECORD_HEADER_SIZE - 8 + (size_t)payload_size);
}

/* The record's header word at 12: 0 says nothing (format 3 records, and
 * a commit too far behind to say in 32 bits); n says ops up to
 * op - (n - 1) were committed when the record was written. */
static uint32_t commit_note_encode(uint64_t op, uint64_t commit)
{
    if (commit >= op)
        return 1;
    uint64_t behind = op - commit;
    return behind < UINT32_MAX ? (uint32_t)behind + 1 : 0;
}

static uint64_t commit_note_decode(uint64_t op, uint32_t note)
{
    return note == 0 || note - 1u > op ? 0 : op - (note - 1u);
}

void wal_record_encode(const struct entry *entry, uint64_t commit, uint8_t *out)
{
    const struct entry_header *h = &entry->h;
    uint32_t payload_size = ENTRY_HEADER_SIZE + h->body_size;
    uint64_t size = wal_record_size(h->body_size);
    put_u32(out + 0, WAL_RECORD_MAGIC);
    put_u32(out + 8, payload_size);
    put_u32(out + 12, commit_note_encode(h->op, commit));
    put_u64(out + 16, h->op);
    entry_header_encode(h, out + WAL_RECORD_HEADER_SIZE);
    if (h->body_size)
        memcpy(out + WAL_RECORD_HEADER_SIZE + ENTRY_HEADER_SIZE, entry->body,
               h->body_size);
    uint64_t used = WAL_RECORD_HEADER_SIZE + (uint64_t)payload_size;
    uint8_t *trailer = out + size - WAL_RECORD_TRAILER_SIZE;
    memset(out + used, 0, (size_t)(trailer - out - (ptrdiff_t)used));
    uint32_t crc = record_crc(out, payload_size);
    put_u32(out + 4, crc);
    /* The trailer goes last on disk: found intact behind a bad record, it
     * shows the record was written whole (then damaged), not torn. */
    put_u32(trailer, WAL_TRAILER_MAGIC);
    put_u32(trailer + 4, crc);
    put_u64(trailer + 8, h->op);
    /* The same fact on the way back: what we wrote decodes to the entry. */
    DEBUG_ASSERT(wal_record_decode(out, (size_t)size, &(struct entry){0},
                                   &(uint64_t){0}, &(uint64_t){0},
                                   &(const char *){NULL}) == 0);
}

int wal_record_decode(const uint8_t *p, size_t size, struct entry *entry,
                      uint64_t *commit, uint64_t *record_size,
                      const char **reason)
{
    if (size < WAL_RECORD_HEADER_SIZE) {
        *reason = "is cut short by the end of the segment";
        return -COHORT_ECORRUPT;
    }
    if (get_u32(p) != WAL_RECORD_MAGIC) {
        *reason = "has a bad magic number";
        return -COHORT_ECORRUPT;
    }
    uint32_t payload_size = get_u32(p + 8);
    if (payload_size < ENTRY_HEADER_SIZE ||
        payload_size > size - WAL_RECORD_HEADER_SIZE) {
        *reason = "has an impossible length";
        return -COHORT_ECORRUPT;
    }
    if (record_crc(p, payload_size) != get_u32(p + 4)) {
        *reason = "fails its checksum";
        return -COHORT_ECORRUPT;
    }
    const uint8_t *payload = p + WAL_RECORD_HEADER_SIZE;
    if (!entry_header_decode(payload, &entry->h) ||
        entry->h.body_size != payload_size - ENTRY_HEADER_SIZE ||
        entry->h.op != get_u64(p + 16)) {
        *reason = "has an invalid entry header";
        return -COHORT_ECORRUPT;
    }
    entry->body = payload + ENTRY_HEADER_SIZE;
    *commit = commit_note_decode(entry->h.op, get_u32(p + 12));
    if (!entry_verify(&entry->h, entry->body)) {
        *reason = "fails its entry checksum";
        return -COHORT_ECORRUPT;
    }
    *record_size = wal_record_size(entry->h.body_size);
    ASSERT(*record_size >= WAL_RECORD_HEADER_SIZE + (uint64_t)payload_size +
                               WAL_RECORD_TRAILER_SIZE);
    if (*record_size > size) {
        *reason = "is cut short by the end of the segment";
        return -COHORT_ECORRUPT;
    }
    return 0;
}

/* States and errors. */

int wal_check_open(const struct wal *wal, struct cohort_err *err)
{
    ASSERT(wal->state != WAL_CLOSED);
    if (wal->state == WAL_OPEN)
        return 0;
    return err_set(err, -COHORT_EIO,
                   "wal %.300s failed earlier and must be reopened (restart "
                   "the replica): %.150s",
                   wal->dir, wal->failure);
}

/* A failed fdatasync or directory fsync: FAILED until reopened. */
int wal_fail(struct wal *wal, int rc, struct cohort_err *err)
{
    ASSERT(rc < 0);
    wal->state = WAL_FAILED;
    snprintf(wal->failure, sizeof(wal->failure), "%s",
             err ? err->message : cohort_strerror(rc));
    return rc;
}

/* Segments. */

void wal_segment_path(const struct wal *wal, uint64_t first_op, bool temp,
                      char *out)
{
    int n = snprintf(out, VFS_PATH_MAX, "%s/%020" PRIu64 ".log%s", wal->dir,
                     first_op, temp ? ".tmp" : "");
    /* wal_open() checked that the directory leaves room for the name. */
    ASSERT(n > 0 && n < VFS_PATH_MAX);
}

void wal_segment_header_encode(uint64_t first_op, uint64_t segment_size,
                               uint8_t *out)
{
    memset(out, 0, WAL_SEGMENT_HEADER_SIZE);
    put_u32(out + 0, WAL_SEGMENT_MAGIC);
    put_u32(out + 8, WAL_FORMAT_VERSION);
    put_u32(out + 12, WAL_SEGMENT_HEADER_SIZE);
    put_u64(out + 16, first_op);
    put_u64(out + 24, segment_size);
    uint32_t crc = crc32c(0, out, 4);
    crc = crc32c(crc, out + 8, WAL_SEGMENT_HEADER_SIZE - 8);
    put_u32(out + 4, crc);
}

const char *wal_segment_header_check(const uint8_t *p, size_t size,
                                     uint64_t first_op)
{
    if (size < WAL_SEGMENT_HEADER_SIZE)
        return "is shorter than a segment header";
    if (get_u32(p) != WAL_SEGMENT_MAGIC)
        return "has a bad segment magic number";
    uint32_t crc = crc32c(0, p, 4);
    crc = crc32c(crc, p + 8, WAL_SEGMENT_HEADER_SIZE - 8);
    if (crc != get_u32(p + 4))
        return "has a segment header that fails its checksum";
    uint32_t version = get_u32(p + 8);
    if (version < WAL_FORMAT_VERSION_READ_MIN || version > WAL_FORMAT_VERSION)
        return "has an unknown format version (log formats 1 and 2 are from "
               "older cohort builds, before 64-bit views; this one reads "
               "formats 3 and 4)";
    if (get_u64(p + 16) != first_op)
        return "has a segment header naming another first op";
    uint64_t created = get_u64(p + 24);
    if (created < WAL_SEGMENT_SIZE_MIN || created % WAL_RECORD_ALIGN != 0)
        return "has a segment header with an impossible size";
    return NULL;
}

uint32_t wal_segment_other_version(const uint8_t *p, size_t size)
{
    if (size < WAL_SEGMENT_HEADER_SIZE || get_u32(p) != WAL_SEGMENT_MAGIC)
        return 0;
    uint32_t crc = crc32c(0, p, 4);
    crc = crc32c(crc, p + 8, WAL_SEGMENT_HEADER_SIZE - 8);
    uint32_t version = get_u32(p + 8);
    if (crc != get_u32(p + 4) || (version >= WAL_FORMAT_VERSION_READ_MIN &&
                                  version <= WAL_FORMAT_VERSION))
        return 0;
    return version;
}

uint32_t wal_segment_version(const uint8_t *p)
{
    return get_u32(p + 8);
}

/* Insert first_op into the sorted segment list (normally at its end). */
static int segment_list_add(struct wal *wal, uint64_t first_op,
                            struct cohort_err *err)
{
    /* The two lists share segment_cap: it moves once both have grown. */
    uint32_t cap = wal->segment_cap, bytes_cap = wal->segment_cap;
    size_t need = (size_t)wal->segment_count + 1;
    if (!grow_array_u32((void **)&wal->segments, &cap, need,
                        sizeof(*wal->segments), 16) ||
        !grow_array_u32((void **)&wal->segment_bytes, &bytes_cap, need,
                        sizeof(*wal->segment_bytes), 16))
        return err_set(err, -COHORT_ENOMEM,
                       "wal %.300s: out of memory for the segment list",
                       wal->dir);
    ASSERT(cap == bytes_cap);
    wal->segment_cap = cap;
    uint32_t at = wal->segment_count;
    while (at > 0 && wal->segments[at - 1] > first_op)
        at--;
    ASSERT(at == 0 || wal->segments[at - 1] < first_op); /* not listed */
    memmove(wal->segments + at + 1, wal->segments + at,
            (wal->segment_count - at) * sizeof(*wal->segments));
    memmove(wal->segment_bytes + at + 1, wal->segment_bytes + at,
            (wal->segment_count - at) * sizeof(*wal->segment_bytes));
    wal->segments[at] = first_op;
    wal->segment_bytes[at] = WAL_SEGMENT_HEADER_SIZE;
    wal->segment_count++;
    return 0;
}

/* Create the segment for first_op and make it the tail: a temp file with
 * the header, preallocated and synced, renamed into place (replacing a
 * file of that name, which must not be listed any more), directory synced
 * (invariant 4). */
int wal_segment_create(struct wal *wal, uint64_t first_op,
                       struct cohort_err *err)
{
    ASSERT(wal->tail == NULL);
    ASSERT(first_op >= 1);
    char temp[VFS_PATH_MAX], path[VFS_PATH_MAX];
    wal_segment_path(wal, first_op, true, temp);
    wal_segment_path(wal, first_op, false, path);
    struct cohort_err ignored;
    vfs_unlink(wal->vfs, temp, &ignored); /* a leftover of a crash */
    struct vfs_file *file;
    int rc = vfs_open(wal->vfs, temp, VFS_CREATE | VFS_EXCLUSIVE, &file, err);
    if (rc != 0)
        return err_wrap(err, "wal: start segment for op %" PRIu64, first_op);
    uint8_t header[WAL_SEGMENT_HEADER_SIZE];
    wal_segment_header_encode(first_op, wal->config.segment_size, header);
    rc = vfs_write(wal->vfs, file, 0, header, sizeof(header), err);
    if (rc == 0)
        rc = vfs_allocate(wal->vfs, file, wal->config.segment_size, err);
    bool fatal = false;
    if (rc == 0) {
        rc = vfs_sync(wal->vfs, file, err);
        fatal = rc != 0;
    }
    if (rc == 0)
        rc = vfs_rename(wal->vfs, temp, path, err);
    if (rc == 0) {
        rc = vfs_sync_dir(wal->vfs, wal->dir, err);
        fatal = rc != 0;
    }
    if (rc == 0)
        rc = segment_list_add(wal, first_op, err);
    if (rc != 0) {
        vfs_close(wal->vfs, file);
        vfs_unlink(wal->vfs, temp, &ignored);
        err_wrap(err, "wal: start segment for op %" PRIu64, first_op);
        return fatal ? wal_fail(wal, rc, err) : rc;
    }
    wal->segments_created++;
    wal->tail = file;
    wal->tail_offset = WAL_SEGMENT_HEADER_SIZE;
    wal->tail_size = wal->config.segment_size;
    wal->tail_dirty = false;
    wal->tail_zeroed = WAL_SEGMENT_HEADER_SIZE; /* the header, synced */
    return 0;
}

static int tail_sync(struct wal *wal, struct cohort_err *err)
{
    ASSERT(wal->tail != NULL);
    ASSERT(wal->tail_dirty);
    int rc = vfs_sync(wal->vfs, wal->tail, err);
    if (rc != 0)
        return wal_fail(wal, rc, err);
    wal->tail_dirty = false;
    if (wal->tail_offset > wal->tail_zeroed)
        wal->tail_zeroed = wal->tail_offset;
    wal->op_durable = wal->op_written;
    wal->checksum_durable = wal->checksum_written;
    return 0;
}

static void tail_close(struct wal *wal)
{
    if (wal->tail)
        vfs_close(wal->vfs, wal->tail);
    wal->tail = NULL;
    wal->tail_dirty = false;
}

/* Delete the segments from index `keep` on, newest first, each deletion
 * made durable before the next (invariant 4): a disk may keep a later
 * unlink and lose an earlier one, and the survivors must stay a prefix of
 * the log, never one with a gap. The tail, if open, is not among them. */
static int segments_delete_from(struct wal *wal, uint32_t keep,
                                struct cohort_err *err)
{
    ASSERT(keep <= wal->segment_count);
    while (wal->segment_count > keep) {
        char path[VFS_PATH_MAX];
        wal_segment_path(wal, wal->segments[wal->segment_count - 1], false,
                         path);
        int rc = vfs_unlink(wal->vfs, path, err);
        if (rc != 0 && rc != -COHORT_ENOTFOUND)
            return err_wrap(err, "wal: delete replaced segment");
        rc = vfs_sync_dir(wal->vfs, wal->dir, err);
        if (rc != 0)
            return wal_fail(wal, err_wrap(err, "wal: delete replaced segments"),
                            err);
        wal->segment_count--;
    }
    return 0;
}

/* A pending truncation at T = truncate_from: make the ops below T durable
 * where they are, then make a new, empty segment T the tail, replacing
 * every segment at or after T. Invariant 6: the segments after T go first
 * (newest first, durably), then T is created, replacing an old T
 * atomically by its rename; only when no segment before T exists is T
 * created first (a crash then leaves T before the others: damage, but
 * that log had already lost its beginning). Until T exists the truncation
 * is not done, and a retry starts over. */
static int sync_truncate(struct wal *wal, struct cohort_err *err)
{
    uint64_t from = wal->truncate_from;
    ASSERT(from > 0);
    ASSERT(from == wal->op_written + 1);
    if (wal->tail_dirty) {
        int rc = tail_sync(wal, err);
        if (rc != 0)
            return rc;
    }
    tail_close(wal);
    uint32_t before = 0;
    while (before < wal->segment_count && wal->segments[before] < from)
        before++;
    bool listed = before < wal->segment_count && wal->segments[before] == from;
    int rc;
    if (before == 0 && !listed) {
        rc = wal_segment_create(wal, from, err);
        if (rc == 0)
            rc = segments_delete_from(wal, 1, err);
    } else {
        rc = segments_delete_from(wal, before + (listed ? 1u : 0u), err);
        if (rc == 0 && listed)
            wal->segment_count--; /* the new one's rename replaces it */
        if (rc == 0)
            rc = wal_segment_create(wal, from, err);
    }
    if (rc != 0)
        return rc;
    ASSERT(wal->segments[wal->segment_count - 1] == from);
    wal->truncate_from = 0;
    return 0;
}

/* Bytes of whole buffered records, from buf_head, that fit in the tail;
 * *ops counts them and *checksum is the last one's entry checksum. */
static size_t buffer_fit(const struct wal *wal, uint64_t room, uint64_t *ops,
                         uint64_t *checksum)
{
    size_t at = wal->buf_head;
    *ops = 0;
    while (at < wal->buf_size) {
        const uint8_t *rec = wal->buf + at;
        uint64_t size = wal_record_size(get_u32(rec + 8) - ENTRY_HEADER_SIZE);
        ASSERT(get_u32(rec) == WAL_RECORD_MAGIC); /* our own bytes */
        ASSERT(get_u64(rec + 16) == wal->op_written + *ops + 1);
        if (at - wal->buf_head + size > room)
            break;
        *checksum = get_u64(rec + WAL_RECORD_HEADER_SIZE); /* entry checksum */
        at += (size_t)size;
        (*ops)++;
    }
    return at - wal->buf_head;
}

/* Write the buffered records into the tail, rotating to a new segment when
 * it is full (after syncing the full one: invariant 2). */
static int sync_write(struct wal *wal, struct cohort_err *err)
{
    while (wal->buf_head < wal->buf_size) {
        if (!wal->tail) {
            int rc = wal_segment_create(wal, wal->op_written + 1, err);
            if (rc != 0)
                return rc;
        }
        uint64_t ops, checksum = 0;
        size_t n =
            buffer_fit(wal, wal->tail_size - wal->tail_offset, &ops, &checksum);
        if (n == 0) {
            /* wal_append() refused records larger than a segment. */
            ASSERT(wal->tail_offset > WAL_SEGMENT_HEADER_SIZE);
            int rc = wal->tail_dirty ? tail_sync(wal, err) : 0;
            if (rc != 0)
                return rc;
            tail_close(wal);
            continue;
        }
        int rc = vfs_write(wal->vfs, wal->tail, wal->tail_offset,
                           wal->buf + wal->buf_head, n, err);
        if (rc != 0)
            return err_wrap(err, "wal: write ops %" PRIu64 "..%" PRIu64,
                            wal->op_written + 1, wal->op_written + ops);
        wal->tail_dirty = true;
        wal->tail_offset += n;
        /* The tail is the last segment (sync_truncate() asserts it). */
        wal->segment_bytes[wal->segment_count - 1] = wal->tail_offset;
        wal->buf_head += n;
        wal->op_written += ops;
        wal->checksum_written = checksum;
    }
    ASSERT(wal->op_written == wal->op_last);
    wal->buf_head = 0;
    wal->buf_size = 0;
    return 0;
}

int wal_sync(struct wal *wal, struct wal_position *durable,
             struct cohort_err *err)
{
    int rc = wal_check_open(wal, err);
    if (rc == 0 && wal->truncate_from)
        rc = sync_truncate(wal, err);
    if (rc == 0)
        rc = sync_write(wal, err);
    if (rc == 0 && wal->tail_dirty)
        rc = tail_sync(wal, err);
    if (rc == -COHORT_ENOSPC)
        err_wrap(err, "disk full (free space; the next sync retries)");
    if (rc != 0)
        return rc;
    ASSERT(wal->op_durable == wal->op_last);
    ASSERT(wal->checksum_durable == wal->checksum_last);
    if (durable) {
        durable->op = wal->op_durable;
        durable->checksum = wal->checksum_durable;
    }
    return 0;
}

/* Writing zeros ahead (see wal.h). */

int wal_prepare(struct wal *wal, struct cohort_err *err)
{
    static const uint8_t zeros[WAL_ZERO_CHUNK];
    if (wal->state != WAL_OPEN || !wal->tail || wal->tail_dirty ||
        wal->buf_size > wal->buf_head || wal->truncate_from ||
        wal->config.zero_ahead == 0)
        return 0;
    uint64_t page = WAL_PAGE_SIZE;
    /* The block that holds the next record's first byte is written already
     * unless that byte starts it; never write below the next record. */
    uint64_t from = (wal->tail_offset + page - 1) / page * page;
    if (wal->tail_zeroed > from)
        from = wal->tail_zeroed;
    uint64_t want = wal->tail_offset + wal->config.zero_ahead;
    if (want > wal->tail_size)
        want = wal->tail_size;
    /* Refill only once less than half of zero_ahead is left, so that an
     * idle storage thread does not sync a few bytes after every round:
     * one chunk per WAL_ZERO_CHUNK bytes of log. */
    uint64_t left = wal->tail_zeroed > wal->tail_offset
                        ? wal->tail_zeroed - wal->tail_offset
                        : 0;
    if (from >= want || left >= wal->config.zero_ahead / 2)
        return 0;
    uint64_t n = want - from;
    if (n > WAL_ZERO_CHUNK)
        n = WAL_ZERO_CHUNK;
    ASSERT(from >= wal->tail_offset);
    int rc = vfs_write(wal->vfs, wal->tail, from, zeros, (size_t)n, err);
    if (rc != 0)
        return err_wrap(err, "wal: write zeros ahead of the log");
    rc = vfs_sync(wal->vfs, wal->tail, err);
    if (rc != 0)
        return wal_fail(wal, err_wrap(err, "wal: sync zeros ahead of the log"),
                        err);
    wal->tail_zeroed = from + n;
    wal->zero_chunks++;
    return 1;
}

uint64_t wal_zero_chunks(const struct wal *wal)
{
    return wal->zero_chunks;
}

/* Appending. */

static int buffer_reserve(struct wal *wal, uint64_t more,
                          struct cohort_err *err)
{
    uint64_t need = wal->buf_size + more;
    if (need > SIZE_MAX ||
        !grow_bytes(&wal->buf, &wal->buf_cap, (size_t)need, 64 * 1024))
        return err_set(err, -COHORT_ENOMEM,
                       "wal: out of memory for %" PRIu64 " bytes of records",
                       need);
    return 0;
}

/* The buffer offset of the record for op (buffered), and its checksum. */
static size_t buffer_find(const struct wal *wal, uint64_t op,
                          uint64_t *checksum)
{
    ASSERT(op > wal->op_written);
    ASSERT(op <= wal->op_last);
    size_t at = wal->buf_head;
    for (uint64_t o = wal->op_written + 1; o < op; o++)
        at += (size_t)wal_record_size(get_u32(wal->buf + at + 8) -
                                      ENTRY_HEADER_SIZE);
    ASSERT(get_u64(wal->buf + at + 16) == op);
    *checksum = get_u64(wal->buf + at + WAL_RECORD_HEADER_SIZE);
    return at;
}

/* The log becomes ops up to op - 1 (parent: the checksum of op - 1). */
static void truncate_to(struct wal *wal, uint64_t op, uint64_t parent)
{
    ASSERT(op >= 1);
    ASSERT(op <= wal->op_last);
    if (op > wal->op_written) {
        /* Only buffered records go: cut the buffer. */
        uint64_t checksum;
        wal->buf_size = buffer_find(wal, op, &checksum);
        if (op - 1 > wal->op_written) {
            buffer_find(wal, op - 1, &checksum);
            ASSERT(checksum == parent);
        } else {
            ASSERT(wal->checksum_written == parent);
        }
    } else {
        /* Written records go: a new segment at op (see sync_truncate).
         * Their checksums are not kept, so parent cannot be checked. */
        ASSERT(op <= wal->op_written);
        wal->buf_head = 0;
        wal->buf_size = 0;
        wal->truncate_from =
            wal->truncate_from
                ? (op < wal->truncate_from ? op : wal->truncate_from)
                : op;
        wal->op_written = op - 1;
        wal->checksum_written = parent;
        if (wal->op_durable > op - 1) {
            wal->op_durable = op - 1;
            wal->checksum_durable = parent;
        }
    }
    wal->op_last = op - 1;
    wal->checksum_last = parent;
}

int wal_append(struct wal *wal, const struct entry *entry, uint64_t commit,
               struct cohort_err *err)
{
    const struct entry_header *h = &entry->h;
    /* The core's log is the wal's: wal_open() and wal_reset() put the
     * wal's base where the core's log starts, so an op either follows the
     * last or replaces a suffix, and never starts before the log. */
    ASSERT(h->op >= wal->op_first);
    ASSERT(h->op <= wal->op_last + 1);
    ASSERT(h->op <= ENTRY_OP_MAX);
    ASSERT(h->body_size == 0 || entry->body != NULL);
    DEBUG_ASSERT(entry_verify(h, entry->body));
    int rc = wal_check_open(wal, err);
    if (rc != 0)
        return rc;
    uint64_t size = wal_record_size(h->body_size);
    if (size > wal->config.segment_size - WAL_SEGMENT_HEADER_SIZE)
        return err_set(err, -COHORT_ETOOBIG,
                       "wal: entry for op %" PRIu64 " is %" PRIu32
                       " bytes; a segment holds at most %" PRIu64
                       " (raise the segment size)",
                       h->op, h->body_size,
                       wal->config.segment_size - WAL_SEGMENT_HEADER_SIZE -
                           WAL_RECORD_HEADER_SIZE - ENTRY_HEADER_SIZE);
    rc = buffer_reserve(wal, size, err);
    if (rc != 0)
        return rc;
    if (h->op <= wal->op_last)
        truncate_to(wal, h->op, h->parent);
    ASSERT(h->op == wal->op_last + 1);
    ASSERT(h->parent == wal->checksum_last); /* invariant 1 */
    wal_record_encode(entry, commit, wal->buf + wal->buf_size);
    wal->buf_size += (size_t)size;
    wal->op_last = h->op;
    wal->checksum_last = h->checksum;
    return 0;
}

void wal_truncate_after(struct wal *wal, const struct wal_position *keep)
{
    ASSERT(wal->state != WAL_CLOSED);
    ASSERT(keep->op + 1 >= wal->op_first);
    if (keep->op >= wal->op_last)
        return;
    truncate_to(wal, keep->op + 1, keep->checksum);
}

void wal_reset(struct wal *wal, const struct wal_position *base)
{
    ASSERT(wal->state != WAL_CLOSED);
    ASSERT(base->op < UINT64_MAX);
    wal->buf_head = 0;
    wal->buf_size = 0;
    wal->op_first = base->op + 1;
    wal->op_last = base->op;
    wal->op_written = base->op;
    wal->op_durable = base->op;
    wal->checksum_last = base->checksum;
    wal->checksum_written = base->checksum;
    wal->checksum_durable = base->checksum;
    /* Done at the next sync: a new segment at op_first replaces the rest. */
    wal->truncate_from = base->op + 1;
}

/* Compaction. */

int wal_compact(struct wal *wal, uint64_t op, struct cohort_err *err)
{
    int rc = wal_check_open(wal, err);
    if (rc != 0)
        return rc;
    /* Segment i holds no op of the log at or above segments[i + 1], so it
     * can go once that is <= op + 1, unless a pending truncation is to
     * delete segment i + 1 (it starts after truncate_from). Never delete
     * the last segment (invariant 6). */
    uint32_t drop = 0;
    while (drop + 1 < wal->segment_count && wal->segments[drop + 1] <= op + 1 &&
           (wal->truncate_from == 0 ||
            wal->segments[drop + 1] <= wal->truncate_from))
        drop++;
    uint32_t done = 0;
    for (; done < drop; done++) {
        char path[VFS_PATH_MAX];
        wal_segment_path(wal, wal->segments[done], false, path);
        rc = vfs_unlink(wal->vfs, path, err);
        if (rc != 0 && rc != -COHORT_ENOTFOUND)
            break;
        rc = 0;
    }
    if (done > 0) {
        memmove(wal->segments, wal->segments + done,
                (wal->segment_count - done) * sizeof(*wal->segments));
        memmove(wal->segment_bytes, wal->segment_bytes + done,
                (wal->segment_count - done) * sizeof(*wal->segment_bytes));
    }
    wal->segment_count -= done;
    if (wal->truncate_from == 0 && wal->segment_count > 0 &&
        wal->op_first < wal->segments[0])
        wal->op_first = wal->segments[0] <= wal->op_last + 1 ? wal->segments[0]
                                                             : wal->op_last + 1;
    if (rc != 0)
        return err_wrap(err, "wal: compact up to op %" PRIu64, op);
    if (done > 0) {
        rc = vfs_sync_dir(wal->vfs, wal->dir, err);
        if (rc != 0)
            return wal_fail(
                wal, err_wrap(err, "wal: compact up to op %" PRIu64, op), err);
    }
    return 0;
}

/* Closing and accessors. */

void wal_recovery_release(struct wal *wal)
{
    for (uint32_t i = 0; i < wal->block_count; i++)
        free(wal->blocks[i]);
    free(wal->blocks);
    free(wal->recovered);
    wal->recovered_commit = 0;
    wal->blocks = NULL;
    wal->block_count = 0;
    wal->block_cap = 0;
    wal->recovered = NULL;
    wal->recovered_count = 0;
    wal->recovered_cap = 0;
}

void wal_close(struct wal *wal)
{
    if (wal->state == WAL_CLOSED)
        return;
    tail_close(wal);
    wal_recovery_release(wal);
    free(wal->segments);
    free(wal->segment_bytes);
    free(wal->buf);
    memset(wal, 0, sizeof(*wal));
    ASSERT(wal->state == WAL_CLOSED);
}

enum wal_state wal_state(const struct wal *wal)
{
    return wal->state;
}

uint64_t wal_op_first(const struct wal *wal)
{
    return wal->op_last >= wal->op_first ? wal->op_first : 0;
}

uint64_t wal_op_last(const struct wal *wal)
{
    return wal->op_last;
}

uint64_t wal_op_durable(const struct wal *wal)
{
    return wal->op_durable;
}

struct wal_position wal_durable(const struct wal *wal)
{
    return (struct wal_position){wal->op_durable, wal->checksum_durable};
}

uint32_t wal_segment_count(const struct wal *wal)
{
    return wal->segment_count;
}

uint64_t wal_snapshot_op(const struct wal *wal)
{
    return wal->snapshot_op;
}

void wal_note_snapshot(struct wal *wal, uint64_t op)
{
    if (op > wal->snapshot_op)
        wal->snapshot_op = op;
}

uint64_t wal_segments_created(const struct wal *wal)
{
    return wal->segments_created;
}

uint64_t wal_bytes_used(const struct wal *wal)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < wal->segment_count; i++)
        bytes += wal->segment_bytes[i];
    return bytes;
}
