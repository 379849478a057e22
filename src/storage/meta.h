/* meta — the replica's durable metadata (struct replica_meta: view, last
 * normal view, epoch, replica count, flags; plus the cluster id, a lower
 * bound of the log's end, and the format version), written so that a crash
 * at any byte leaves the old or the new copy readable.
 *
 * On disk: one file of two 4096-byte slots; a slot is a 72-byte record,
 * the rest zero. Slots are a page apart so that a torn write of one never
 * touches the other. Format 3, little-endian:
 *
 *      0 u32 magic "COMT"          32 u64 view (0..VIEW_MAX)
 *      4 u32 crc32c of 0..4, 8..72 40 u64 last normal view (<= view)
 *      8 u32 format version (3)    48 u32 epoch
 *     12 u32 reserved (0)          52 u32 replica count
 *     16 u64 seq (1, 2, ...)       56 u32 flags (META_FLAG_*)
 *     24 u64 cluster id            60 u32 log end check
 *                                  64 u64 log end bound
 *
 * Formats: 3 widens the view and the last normal view to 64 bits (views
 * never wrap; docs/PROTOCOL.md). Formats 1 and 2 are 64-byte records with
 * the crc over 0..4 and 8..64 and, from byte 32: u32 view, u32 last normal
 * view, u32 epoch, u32 replica count, u32 flags, then in format 2 the u32
 * log end check and the u64 log end bound (zero in format 1).
 * Format 1 and 2 files are read (format 1: bound 0; the wal then does not
 * insist that a log exists, since older cohort could leave a wal without
 * segments), and the next write makes them format 3. A newer format is
 * refused: "upgrade cohort".
 *
 * The log end bound (log_end_min): the durable log (the wal, with the
 * snapshot it was reset to) reached at least this op when the record was
 * written, and nothing cohort does takes it back below without first
 * lowering the bound: each group-commit round (storage/batch.c) writes the
 * wal's durable op here with each metadata record, when the wal started
 * a new segment, and once the durable log passed the newest snapshot while
 * the bound had not (ops at or below the snapshot count as held, so a bound
 * there would hide a lost segment above it), and lowers it, durably,
 * before a sync that truncates the log below it. So at start, a log that ends
 * below the bound lost records behind cohort's back (deleted segments): damage
 * (wal.h). The check is the low 32 bits of the checksum of the entry at the
 * bound (0 when the bound is 0): at start the log must hold that very entry
 * there.
 *
 * A write puts the record, with seq one above the newest, into the slot
 * that does not hold the newest, then fdatasyncs. Loading takes the valid
 * slot with the highest seq.
 *
 * Invariants: (1) after meta_write() returns 0 the record survives any
 * crash; (2) a crash during meta_write() leaves the previous record or the
 * new one, never neither: the newest slot is not written until a newer one
 * is durable; (3) the file exists only with a valid record: it is born as a
 * synced temp file renamed into place, so a missing file means nothing was
 * ever stored, and a file with no valid slot is an error, never "fresh".
 *
 * States: CLOSED -> OPEN -> FAILED (after a failed fdatasync or directory
 * fsync; every later write fails until the file is reopened). */
#ifndef COHORT_META_H
#define COHORT_META_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/replica_meta.h"
#include "storage/vfs.h"

#define META_FORMAT_VERSION 4u
#define META_SLOT_SIZE 4096u
#define META_RECORD_SIZE 96u    /* format 4: epochs */
#define META_RECORD_SIZE_V3 72u /* format 3 */
#define META_RECORD_SIZE_V2 64u /* formats 1 and 2 */
#define META_FILE_SIZE (2u * META_SLOT_SIZE)

struct meta_record {
    uint64_t cluster_id;
    struct replica_meta meta;
    uint64_t log_end_min;    /* see the header comment; 0 in format 1 */
    uint32_t log_end_check;  /* likewise */
    uint32_t format_version; /* set by meta_open(); ignored by meta_write() */
};

enum meta_state {
    META_CLOSED = 0,
    META_OPEN = 1,
    META_FAILED = 2,
};

/* Private fields; use the functions. */
struct meta {
    enum meta_state state;
    struct vfs *vfs;
    char path[VFS_PATH_MAX];
    struct vfs_file *file;     /* NULL until the file exists */
    uint64_t seq;              /* of the newest durable record; 0: none */
    struct meta_record newest; /* valid when seq > 0 */
    char failure[COHORT_ERR_MESSAGE_MAX];
};

/* Open the metadata file at path and load the newest valid record into
 * *record (*present true), or find that none was ever written (*present
 * false: the file does not exist). Errors: -COHORT_ECORRUPT when neither
 * slot is valid (the message names the file and each slot's offset and
 * fault), -COHORT_ENOTSUP for a newer format, I/O errors. On error the
 * meta is CLOSED. */
int meta_open(struct meta *m, struct vfs *vfs, const char *path,
              struct meta_record *record, bool *present,
              struct cohort_err *err);

/* Write record durably (see the header comment); creates the file on the
 * first write. Preconditions: replica_count 1..COHORT_REPLICAS_MAX and
 * last_normal_view <= view <= VIEW_MAX. A failed write leaves the previous
 * record in force and may be retried; a failed sync leaves the meta FAILED. */
int meta_write(struct meta *m, const struct meta_record *record,
               struct cohort_err *err);

/* Write the newest record again with the log end bound at op, whose
 * entry's checksum is checksum. Precondition: a record exists (meta_seq()
 * > 0). Errors as meta_write(). */
int meta_write_log_end(struct meta *m, uint64_t op, uint64_t checksum,
                       struct cohort_err *err);

void meta_close(struct meta *m);

/* The seq of the newest durable record (0 if none). */
uint64_t meta_seq(const struct meta *m);
/* The newest durable record's log end bound (0 if none). */
uint64_t meta_log_end_min(const struct meta *m);

/* Slot encoding (always the current format), exposed for tests and
 * fuzzing. decode reads every format this build knows, from the
 * META_RECORD_SIZE bytes at in; it returns NULL if the slot is valid, or
 * what is wrong with it. */
void meta_slot_encode(const struct meta_record *record, uint64_t seq,
                      uint8_t *out);
const char *meta_slot_decode(const uint8_t *in, struct meta_record *record,
                             uint64_t *seq);

#endif
