/* wal — the write-ahead log: checksummed records in preallocated segment
 * files, made durable by group commit (one fdatasync per wal_sync()).
 *
 * On disk: a directory of segment files named by the first op they hold,
 * "%020llu.log" (00000000000000000001.log). A segment is a 64-byte header
 * followed by records, each 8-byte aligned; the rest of the preallocated
 * file is zeros. A record is a 24-byte header, a payload, which is the
 * entry's 72-byte header (entry_header_encode()) and its body, and a
 * 16-byte trailer:
 *
 *     segment header, little-endian       record header, little-endian
 *      0 u32 magic  "COWS"                  0 u32 magic  "COWR"
 *      4 u32 crc32c of 0..4 and 8..64       4 u32 crc32c of 0..4, 8..24 and
 *      8 u32 version (4)                          the payload
 *     12 u32 header size (64)               8 u32 payload size (72 + body)
 *     16 u64 first op (= the file name)    12 u32 commit note
 *     24 u64 segment size when created     16 u64 op (= the entry's op)
 *     32..63 zero                          24 payload, then zeros to 8
 *                                          then the trailer:
 *                                           0 u32 magic "COWE"
 *                                           4 u32 the header's crc32c
 *                                           8 u64 op
 *
 * The commit note says what the replica knew committed when it wrote the
 * record: n > 0 means ops up to op - (n - 1) were committed (1: the op
 * itself); 0 says nothing (a commit more than 2^32 - 2 ops behind, and
 * every record of format 3, which wrote 0 there). It is local knowledge,
 * outside the entry and its hash chain. After a restart the core counts
 * what the notes of the recovered records say as committed
 * (wal_recovery.commit), instead of only what the pipeline bound implies:
 * a replica that took part in committing ops refuses a log that lacks them
 * (core/transfer.c, "Divergence").
 *
 * Formats: 4 added the commit note. Format 3 segments (zero notes) are
 * read; new segments are format 4, and a format 3 tail is not appended to
 * (a new segment starts), so an older build refuses the log by its format
 * ("upgrade cohort") instead of seeing unknown bits in its records.
 *
 * The trailer tells a torn write from damage: a write reaches the disk in
 * order (sector by sector), so a record cut short by a crash has no
 * trailer, while a record that was written whole and later damaged (a
 * flipped bit) still has it. A bad last record with its trailer intact is
 * damage, never cut as torn.
 *
 * A segment's records are ops first, first+1, ... with no gaps; a segment
 * holds the log only up to the op before the next segment's first op
 * (its "range"). Records are only ever appended behind the last record of
 * the last segment, never overwritten: replacing a suffix (ACT_PERSIST
 * with op_first <= the last op) starts a new segment at op_first, after
 * deleting the segments that start after it (one that starts at it is
 * replaced atomically, by the rename that creates the new one).
 *
 * The log has a base: the op before its first (the snapshot it follows,
 * or 0), and its checksum. wal_open() takes the base from the snapshot
 * the replica restored (struct wal_expect) and recovers what follows it;
 * wal_reset() moves it (a snapshot was installed past the log). So the
 * wal's log is always the core's: ops base+1..last, chained onto the base.
 *
 * Invariants:
 *  (1) the log is ops op_first..op_last in order, each entry's parent the
 *      checksum of the one before, the first's the base's (checked by
 *      wal_append() with ASSERT and by wal_open() on every record);
 *  (2) every segment but the last is synced in full, and its name is
 *      durable, before any record of a later segment is written: a crash
 *      can only lose or tear records of the last segment;
 *  (3) wal_sync() reports op N durable only after an fdatasync that
 *      covered every record up to N returned 0;
 *  (4) a segment's name is made durable (rename of a synced temp file,
 *      directory fsync) before a record in it is reported durable, and
 *      deleted segments' names are durably gone before a segment replacing
 *      them is created;
 *  (5) a bad record that may have been synced is never truncated away
 *      silently: wal_open() reports it as damaged (file, offset, op) and
 *      cuts the log before it, for the replica to repair from its peers;
 *  (6) from the first wal_open() on, the directory holds at least one
 *      segment at every instant: wal_open() creates one in an empty
 *      directory, compaction keeps the last, and a reset or suffix
 *      replacement at op T deletes only the segments after T (newest
 *      first, each unlink durable before the next, so the survivors are
 *      a prefix), keeps those before T, and creates T by a rename that
 *      atomically replaces an old T; if no segment starts before T, T is
 *      created before any is deleted. Each segment's name is evidence
 *      that the log reached the op before it. So a directory without
 *      segments, where the metadata says a log existed, lost it;
 *  (7) records at or below the base are never needed: damage there is
 *      noted, not reported, and the log restarts after the base; a suffix
 *      whose first record does not chain onto the base is stale (a log
 *      left from before a snapshot was installed), dropped, not damage.
 *
 * What a log can lose without wal_open() seeing a bad record, and how it
 * is caught (each is reported as damage, like a bad record):
 *  - all of it (a deleted directory): invariant 6, with
 *    wal_expect.log_exists from the metadata;
 *  - a middle segment: the segment before it does not hold its range;
 *  - its first segments: the first segment starts after base + 1;
 *  - a cut-short segment: its file is shorter than the size its header
 *    records (segments are preallocated, and never shrink);
 *  - its last segments: wal_expect.log_end_min, a lower bound of the
 *    durable log's end that the metadata keeps (see meta.h), against the
 *    end the segments still show (their records, and their names); and
 *    the checksum of that op, against the one recovered (losing the
 *    segment a suffix replacement started brings the replaced records
 *    back in the segment before it).
 *
 * States: CLOSED -> OPEN -> FAILED (-> CLOSED by wal_close()). FAILED
 * follows a failed fdatasync or directory fsync and lasts until the wal is
 * reopened: after such a failure nobody knows what reached the disk, and
 * Linux may have dropped the unwritten pages (the PostgreSQL/SQLite fsync
 * lesson), so every later call fails. A failed write (EIO, ENOSPC) is not
 * fatal: the in-memory log is unchanged and the next wal_sync() writes the
 * same bytes again.
 *
 * Pre-writing: wal_prepare(), called when the caller has nothing else to
 * do, writes zeros ahead of the next record so that appends overwrite
 * written blocks (see it below). It changes no byte's value, so the format
 * and recovery do not know about it.
 *
 * Threads: none inside. The runtime calls wal_append() for every
 * ACT_PERSIST of a batch, then wal_sync() once, and wal_prepare() when
 * idle, all from one thread. */
#ifndef COHORT_WAL_H
#define COHORT_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/entry.h"
#include "storage/vfs.h"

#define WAL_SEGMENT_HEADER_SIZE 64
#define WAL_RECORD_HEADER_SIZE 24
#define WAL_RECORD_TRAILER_SIZE 16
#define WAL_RECORD_ALIGN 8
#define WAL_SEGMENT_SIZE_DEFAULT (64u << 20)
#define WAL_SEGMENT_SIZE_MIN 4096u
/* wal_prepare(): how far ahead of the next record the tail's preallocated
 * bytes are written with zeros (refilled when less than half is left), and
 * how much one call writes. */
#define WAL_ZERO_AHEAD_DEFAULT (1u << 20)
#define WAL_ZERO_CHUNK (256u << 10)

struct wal_config {
    /* Bytes per segment file, preallocated at creation; a multiple of 8,
     * at least WAL_SEGMENT_SIZE_MIN. The largest record is this minus the
     * segment header. */
    uint64_t segment_size;
    /* Whether the last record can have been torn by a crash. True after a
     * power loss or an OS crash (the default); false when the machine has
     * not restarted since the records were written (only the process died:
     * every write it made reached the page cache whole), so a bad last
     * record with nothing valid after it is damage, not a torn write. */
    bool torn_writes_possible;
    /* wal_prepare() keeps this many bytes ahead of the next record written
     * (zeros, synced); 0: it does nothing (the segment's blocks stay as
     * vfs_allocate() left them). */
    uint64_t zero_ahead;
    /* A deliberate bug for the simulator's mutant tests (never set in
     * real use): recovery keeps a record that fails its checksum. */
    bool bug_trust_records;
};

void wal_config_defaults(struct wal_config *config);

enum wal_state {
    WAL_CLOSED = 0,
    WAL_OPEN = 1,
    WAL_FAILED = 2,
};

/* An op and the checksum of its entry (what EV_PERSISTED carries). */
struct wal_position {
    uint64_t op;
    uint64_t checksum;
};

/* What the replica's other durable state says about the log, for
 * wal_open() to recover against. All zero: a fresh replica. */
struct wal_expect {
    /* The snapshot the state machine was restored from (op 0: none). The
     * log recovered is what follows it (invariant 7). */
    struct wal_position base;
    /* The metadata exists (format 2 on), so the log does too: a directory
     * without segments lost it (invariant 6). False for a fresh replica,
     * and for metadata of format 1 (older cohort could leave none). */
    bool log_exists;
    /* The metadata records that the durable log reached this op (meta.h,
     * log_end_min), whose entry's checksum has these low 32 bits
     * (log_end_check): segments that end below it lost their last ones,
     * and a different op there says the log is not the one stored (a
     * replaced suffix came back: the segment that replaced it is lost). */
    uint64_t log_end_min;
    uint32_t log_end_check;
};

/* What wal_open() found. entries (with their bodies) belong to the wal and
 * stay valid until wal_recovery_release() or wal_close(). */
struct wal_recovery {
    /* Ops base+1.. in order, chained onto the base; may be empty. */
    const struct entry *entries;
    uint64_t entry_count;
    /* Records that may have been synced (and acknowledged) above the base
     * are bad or missing: entries from this op on are not in `entries`.
     * 0 if none. damage names the file, offset, op and what is wrong, or
     * what is missing; the caller logs it and the replica repairs. */
    uint64_t damaged_op;
    struct cohort_err damage;
    /* The last record was torn by a crash while it was written (it was
     * never reported durable) and was cut off; torn says where. */
    bool torn_tail;
    struct cohort_err torn;
    /* Notes that cost nothing (invariant 7): a bad record at or below the
     * base, passed over; a suffix that does not chain onto the base,
     * dropped. */
    bool covered_damage;
    struct cohort_err covered;
    bool stale_suffix;
    struct cohort_err stale;
    /* The highest op the recovered records' commit notes say was
     * committed (0: none say). At most the last entry's op. */
    uint64_t commit;
};

/* The fields are private; read them through the functions below. */
struct wal {
    enum wal_state state;
    struct vfs *vfs;
    struct wal_config config;
    char dir[VFS_PATH_MAX];
    char failure[COHORT_ERR_MESSAGE_MAX]; /* why FAILED */
    /* Segment files on disk by first op, oldest first; the last is the
     * tail. Includes segments wal_sync() will delete (truncate_from). */
    uint64_t *segments;
    uint64_t *segment_bytes; /* bytes used in each: header and records */
    uint32_t segment_count, segment_cap;
    /* The tail segment open for appending; NULL: the next record written
     * starts a new segment. */
    struct vfs_file *tail;
    uint64_t tail_offset; /* where the next record goes */
    uint64_t tail_size;   /* the tail segment's size */
    bool tail_dirty;      /* written since its last fdatasync */
    /* The tail's bytes below this were written (records or zeros) and
     * synced since the segment was created or reopened: appending there
     * overwrites blocks the file system already maps as written. */
    uint64_t tail_zeroed;
    uint64_t zero_chunks; /* written by wal_prepare() since wal_open() */
    /* The log: ops op_first..op_last, after its base op_first - 1 (empty
     * when op_last is the base; checksum_last is then the base's). Ops up
     * to op_written are in segment files; the buffer holds the records of
     * op_written+1..op_last from buf_head on; ops up to op_durable are
     * durable. */
    uint64_t op_first, op_last, checksum_last;
    uint64_t op_written, checksum_written;
    uint64_t op_durable, checksum_durable;
    /* Nonzero (then op_written + 1): before writing, start a new segment
     * here, replacing every segment that starts at or after it (a suffix
     * replacement, a reset, or a cut found by wal_open()). */
    uint64_t truncate_from;
    uint64_t segments_created; /* by this wal since it was opened */
    /* The newest snapshot's op as this wal knows it (wal_open()'s base,
     * then wal_note_snapshot() with each compaction): the metadata's log end
     * bound must pass it once the durable log does (storage/batch.c), or a lost
     * segment holding ops above it would look like ops the snapshot covers. */
    uint64_t snapshot_op;
    uint8_t *buf;
    size_t buf_head, buf_size, buf_cap;
    /* Recovery results, until wal_recovery_release(). */
    struct entry *recovered;
    uint64_t recovered_count, recovered_cap;
    /* The highest commit note of the recovered entries (0: none); the
     * recovered log is only ever appended to or emptied whole. */
    uint64_t recovered_commit;
    uint8_t **blocks; /* entry bodies, one block per segment */
    uint32_t block_count, block_cap;
};

/* Open (creating dir if needed) and recover the log in dir against
 * *expect (NULL: all zero): skip the segments wholly at or below the base,
 * read the rest in order, verify every record's checksum, op continuity
 * and the hash chain from the base on, check that no segment is missing
 * or cut short and that the log reaches expect->log_end_min, and fill
 * *recovery. A bad or missing record in the last segment with nothing
 * valid after it is a torn tail: cut, noted in recovery->torn. Any other
 * bad or missing record above the base is damage: reported in recovery
 * (the call still succeeds), the log cut before it; nothing on disk
 * changes until the next wal_sync(), so that the damage is still there to
 * see if the replica dies before it recorded it. Leftover temp files are
 * deleted; an empty directory of a fresh replica gets its first segment.
 * Returns 0, or a negative code with err naming the file (I/O errors, out
 * of memory, bad config). On failure the wal is CLOSED. */
int wal_open(struct wal *wal, struct vfs *vfs, const char *dir,
             const struct wal_config *config, const struct wal_expect *expect,
             struct wal_recovery *recovery, struct cohort_err *err);

/* Close files and free memory. Records appended but not synced are lost,
 * as in a crash. */
void wal_close(struct wal *wal);

/* Free the recovered entries early (after replica_init() copied them). */
void wal_recovery_release(struct wal *wal);

/* Append one entry; it becomes durable at the next successful wal_sync().
 * commit is what the caller knows committed now (the record's commit
 * note; 0: nothing).
 * Preconditions (ASSERT): op_first <= entry->h.op <= op_last + 1 (the
 * core's log is the wal's: it starts at the same base), and when the op
 * follows the last, its parent is the last entry's checksum (or the
 * base's). An op <= op_last first truncates the log to the ops below it
 * (suffix replacement). The body is copied; the entry is borrowed. No
 * I/O: errors are -COHORT_ETOOBIG (record larger than a segment),
 * -COHORT_ENOMEM, or -COHORT_EIO when FAILED; on error nothing changed. */
int wal_append(struct wal *wal, const struct entry *entry, uint64_t commit,
               struct cohort_err *err);

/* Write every record appended since the last sync (after deleting
 * replaced segments, rotating to new segments as they fill), then one
 * fdatasync. On success fills *durable (may be NULL) with the last op and
 * its checksum, all durable now. Errors: -COHORT_ENOSPC or -COHORT_EIO
 * from a write or segment creation (nothing lost: call again, e.g. after
 * space is freed), or -COHORT_EIO after a failed fdatasync, which leaves
 * the wal FAILED. err names the file and offset. */
int wal_sync(struct wal *wal, struct wal_position *durable,
             struct cohort_err *err);

/* Off the hot path (the storage thread, when no round is waiting): write
 * zeros over the tail segment's preallocated bytes ahead of the next
 * record, at most WAL_ZERO_CHUNK per call, up to config.zero_ahead bytes
 * ahead, and fdatasync them. A segment is preallocated with
 * vfs_allocate(), which on ext4 and XFS leaves its blocks *unwritten*: the
 * first write into each block converts its extent, a metadata change that
 * the next fdatasync must commit to the journal. Written ahead as zeros,
 * the blocks are plain overwrites and an fdatasync flushes only data
 * (measured on ext4: bench/analysis.md, "pre-written segments").
 * The bytes keep their value (zeros over zeros), so a crash at any point
 * leaves the log as it was; bytes below the next record are never written.
 * Does nothing (returns 0) unless the wal is OPEN with a clean tail, no
 * buffered records and no pending truncation, or when enough is written
 * ahead already (refilled once less than half of zero_ahead is left).
 * Returns 1 after writing a chunk (call again while idle: more may be
 * wanted), 0 when nothing is to do, or a negative code: a failed write
 * changes nothing (the next call tries again); a failed fdatasync leaves
 * the wal FAILED, as in wal_sync(). */
int wal_prepare(struct wal *wal, struct cohort_err *err);
/* Chunks wal_prepare() wrote since wal_open(). */
uint64_t wal_zero_chunks(const struct wal *wal);

/* Delete every segment whose ops are all <= op (never the last one): the
 * entries up to op are in a durable snapshot. A segment stays while the
 * one after it is to be replaced by a pending truncation. */
int wal_compact(struct wal *wal, uint64_t op, struct cohort_err *err);

/* Empty the log down to *base (a snapshot holds every op up to it): the
 * next wal_append() is base->op + 1, chained onto base->checksum, and the
 * next wal_sync() makes the log durably empty there (a new segment at
 * base->op + 1 replaces every record above the base). No I/O. */
void wal_reset(struct wal *wal, const struct wal_position *base);

/* Drop the ops after op, which stays (checksum: op's entry checksum, or the
 * base's when op is the base). Unlike replacing the suffix by appending op
 * again, op is never rewritten: it stays durable where it is, and the next
 * wal_sync() starts a new segment at op + 1 only if written records go.
 * Nothing to drop is a no-op. Precondition (ASSERT): op_first - 1 <= op.
 * No I/O. */
void wal_truncate_after(struct wal *wal, const struct wal_position *keep);

enum wal_state wal_state(const struct wal *wal);
uint64_t wal_op_first(const struct wal *wal); /* 0 if empty */
uint64_t wal_op_last(const struct wal *wal);  /* the base if empty */
uint64_t wal_op_durable(const struct wal *wal);
/* The last durable op and its checksum (the base's when empty). */
struct wal_position wal_durable(const struct wal *wal);
uint32_t wal_segment_count(const struct wal *wal);
/* Segments created since wal_open(): a change says the log rolled over. */
uint64_t wal_segments_created(const struct wal *wal);
/* wal->snapshot_op: see struct wal. wal_note_snapshot() raises it to op
 * (a durable snapshot at op exists). */
uint64_t wal_snapshot_op(const struct wal *wal);
void wal_note_snapshot(struct wal *wal, uint64_t op);
/* Bytes the segment files hold in headers and records (not the
 * preallocated zeros behind them). */
uint64_t wal_bytes_used(const struct wal *wal);

/* Record encoding, exposed for tests and the wal_record_decode fuzzer. */

/* Bytes a record with a body of body_size takes in a segment. */
uint64_t wal_record_size(uint32_t body_size);
/* Encode entry into out (wal_record_size() bytes, padding zeroed), with
 * the commit note for `commit` (the op committed when written; 0: none). */
void wal_record_encode(const struct entry *entry, uint64_t commit,
                       uint8_t *out);
/* Decode a record from size bytes of untrusted input at p. Returns 0 with
 * *entry (body pointing into p), *commit (its commit note's op, at most the
 * entry's; 0: none) and *record_size (with padding), or -COHORT_ECORRUPT
 * with *reason a phrase such as "fails its checksum". */
int wal_record_decode(const uint8_t *p, size_t size, struct entry *entry,
                      uint64_t *commit, uint64_t *record_size,
                      const char **reason);

#endif
