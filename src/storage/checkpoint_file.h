/* checkpoint_file — the replica's checkpoints (core/checkpoints.h: the
 * checksums of committed ops at fixed op numbers, noted as the log
 * compacts past them) kept on disk across restarts, in the data
 * directory's file `checkpoints`.
 *
 * Advisory: a snapshot offer shows a returning member the group's history
 * at a checkpoint (docs/PROTOCOL.md, "Divergence"); without the file a
 * restarted member offers only what its log holds. So the file is never a
 * reason to refuse a start: a missing, torn, foreign or newer-format file
 * is passed over (the driver logs why) and rewritten at the next
 * compaction. It is written whole (vfs_replace_file: a temp file, synced,
 * renamed), by the storage thread as part of a compaction job.
 *
 * Format 1, little-endian:
 *
 *      0 u32 magic "COCP"          12 u32 count
 *      4 u32 crc32c of 8..end      16 u64 cluster id
 *      8 u32 format version (1)    24 count x {u64 op, u64 checksum}
 *
 * Ops are nonzero and strictly rising. */
#ifndef COHORT_CHECKPOINT_FILE_H
#define COHORT_CHECKPOINT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/vfs.h"

#define CHECKPOINT_FILE "checkpoints"
#define CHECKPOINT_FILE_VERSION 1u
#define CHECKPOINT_FILE_HEADER 24u

/* Bytes the file takes for count notes. */
size_t checkpoint_file_size(size_t count);

/* Encode count notes (rising ops) into buf (checkpoint_file_size(count)
 * bytes). */
void checkpoint_file_encode(uint8_t *buf, uint64_t cluster_id,
                            const uint64_t *op, const uint64_t *checksum,
                            size_t count);

/* Decode a file's bytes into op[] and checksum[] (room for max) and *count.
 * -COHORT_ECORRUPT with a message naming what is wrong for anything but a
 * whole file of cluster_id in format 1 with at most max rising notes. */
int checkpoint_file_decode(const uint8_t *data, size_t size,
                           uint64_t cluster_id, uint64_t *op,
                           uint64_t *checksum, size_t max, size_t *count,
                           struct cohort_err *err);

/* Read data_dir's file and decode it (as above); -COHORT_ENOTFOUND when
 * there is none. */
int checkpoint_file_read(struct vfs *vfs, const char *data_dir,
                         uint64_t cluster_id, uint64_t *op, uint64_t *checksum,
                         size_t max, size_t *count, struct cohort_err *err);

/* Write the encoded bytes as data_dir's file, in place of the old one. */
int checkpoint_file_write(struct vfs *vfs, const char *data_dir,
                          const uint8_t *data, size_t size,
                          struct cohort_err *err);

#endif
