/* snapshot — snapshot files: the state machine's bytes as of an op, with the
 * client table, written as a stream (a thread or a forked child can write it
 * while the replica runs on), verified whole when read, and served in chunks by
 * offset for state transfer.
 *
 * On disk, in a snapshot directory: "snapshot-%020llu.snap" named by op.
 *
 *     header, 64 bytes, little-endian     trailer, the last 32 bytes
 *      0 u32 magic "COSN"                  0 u32 magic "COSE"
 *      4 u32 format version (2)            4 u32 reserved (0)
 *      8 u64 op                            8 u64 state size
 *     16 u64 checksum of the entry at op  16 u64 file size
 *     24 u64 timestamp_ms (log time)      24 u32 reserved (0)
 *     32 u64 view (0..VIEW_MAX)           28 u32 crc32c of every byte of
 *     40 u32 epoch                              the file before it
 *     44 u32 reserved (0)
 *     48 u64 client table size
 *     56 u32 reserved (0)
 *     60 u32 crc32c of bytes 0..60
 *    then the client table bytes, then the state bytes, then the trailer.
 *
 * Format 1 (still read) had a u32 view at 32, the u32 epoch at 36 and the
 * client table size at 40; format 2 widened the view to 64 bits.
 *
 * Invariants: (1) a snapshot file under its final name is complete and was
 * synced before the rename that gave it that name, and the rename was made
 * durable by syncing the directory; (2) readers verify the whole file (both
 * checksums, the sizes) before handing out a byte; (3) finishing a snapshot
 * deletes the older ones only after the new one is durable, so the newest
 * valid snapshot always survives.
 *
 * Writer states: IDLE -> WRITING (begin) -> IDLE (end or abort); a failed
 * call leaves it WRITING and only abort may follow. Receiver likewise. */
#ifndef COHORT_SNAPSHOT_H
#define COHORT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "storage/vfs.h"

#define SNAPSHOT_FORMAT_VERSION 2u
#define SNAPSHOT_HEADER_SIZE 64u
#define SNAPSHOT_TRAILER_SIZE 32u

struct snapshot_info {
    uint64_t op;           /* the state machine has applied ops up to op */
    uint64_t checksum;     /* checksum of the entry at op (the hash chain) */
    uint64_t timestamp_ms; /* log time at op */
    uint64_t view;
    uint32_t epoch;
    uint64_t client_table_size;
    uint64_t state_size; /* known when the file is complete */
    uint64_t file_size;  /* likewise */
};

/* Private fields; use the functions. */
struct snapshot_writer {
    bool writing;
    bool failed;
    struct vfs *vfs;
    struct vfs_file *file;
    char dir[VFS_PATH_MAX];
    char temp[VFS_PATH_MAX];
    struct snapshot_info info;
    uint64_t offset; /* bytes handed to the file so far */
    uint32_t crc;    /* over every byte so far, buffered ones included */
    uint64_t writeback_from; /* bytes below it were handed to writeback */
    uint64_t writeback_prev; /* ... and those below this were waited for */
    uint8_t *buf;
    size_t buf_size, buf_cap;
};

/* Start writing the snapshot described by info (op, checksum, timestamp,
 * view, epoch, client_table_size) into dir (created if needed), with the
 * client table's bytes. The state follows through snapshot_write(). */
int snapshot_write_begin(struct snapshot_writer *w, struct vfs *vfs,
                         const char *dir, const struct snapshot_info *info,
                         const uint8_t *client_table, struct cohort_err *err);
/* Append state bytes; buffered, so small calls are cheap. */
int snapshot_write(struct snapshot_writer *w, const void *data, size_t size,
                   struct cohort_err *err);
/* Finish: trailer, fdatasync, rename into place, sync the directory, then
 * delete older snapshots. Fills *info (may be NULL) with the sizes. On
 * error call snapshot_write_abort(). */
int snapshot_write_end(struct snapshot_writer *w, struct snapshot_info *info,
                       struct cohort_err *err);
/* Stop and remove the temp file. Safe after any failure. */
void snapshot_write_abort(struct snapshot_writer *w);
/* The temp file snapshot_write_begin() writes the snapshot at op into
 * (dir/snapshot-<op>.snap.tmp), for a caller that opens it beforehand
 * (runtime/snapshot_vfs). */
int snapshot_temp_path(char *out, const char *dir, uint64_t op,
                       struct cohort_err *err);

/* Private fields; use the functions. */
struct snapshot_reader {
    struct vfs *vfs;
    struct vfs_file *file;
    char path[VFS_PATH_MAX];
    struct snapshot_info info;
    /* snapshot_open_latest(): why newer snapshot files were passed over
     * (code 0 if none were). */
    struct cohort_err skipped;
};

/* Open and verify the snapshot file at path. -COHORT_ECORRUPT names the
 * file, the offset and what is wrong. */
int snapshot_open(struct snapshot_reader *r, struct vfs *vfs, const char *path,
                  struct cohort_err *err);
/* Open the newest snapshot in dir that verifies (r->skipped notes bad newer
 * ones). -COHORT_ENOTFOUND if dir holds none; if every one is bad, the
 * newest one's error. */
int snapshot_open_latest(struct snapshot_reader *r, struct vfs *vfs,
                         const char *dir, struct cohort_err *err);
const struct snapshot_info *snapshot_info(const struct snapshot_reader *r);
/* Read the client table into buf (info.client_table_size bytes). */
int snapshot_read_client_table(struct snapshot_reader *r, uint8_t *buf,
                               struct cohort_err *err);
/* Read state bytes from offset (into the state); *done < size only at its
 * end. */
int snapshot_read_state(struct snapshot_reader *r, uint64_t offset, void *buf,
                        size_t size, size_t *done, struct cohort_err *err);
/* Read raw file bytes at offset, for sending to a peer; *done < size only at
 * the end of the file. Any offset may be asked again (resumable). */
int snapshot_read_chunk(struct snapshot_reader *r, uint64_t offset, void *buf,
                        size_t size, size_t *done, struct cohort_err *err);
void snapshot_close(struct snapshot_reader *r);

/* Receiving a snapshot file from a peer, chunk by chunk. Private fields. */
struct snapshot_receiver {
    bool receiving;
    struct vfs *vfs;
    struct vfs_file *file;
    char dir[VFS_PATH_MAX];
    char temp[VFS_PATH_MAX];
    uint64_t op;
    uint64_t file_size;
    uint64_t received; /* every byte below this has been written */
};

/* Start receiving the snapshot for op, file_size bytes (the sender's
 * snapshot_info), into dir. */
int snapshot_receive_begin(struct snapshot_receiver *rc, struct vfs *vfs,
                           const char *dir, uint64_t op, uint64_t file_size,
                           struct cohort_err *err);
/* Write the chunk at offset. Chunks may repeat, but none may start past
 * rc->received (ask the sender for that offset): -COHORT_EINVAL. */
int snapshot_receive_chunk(struct snapshot_receiver *rc, uint64_t offset,
                           const void *data, size_t size,
                           struct cohort_err *err);
/* All bytes in: sync, verify, rename into place, sync the directory,
 * delete older snapshots; fills *info. On error call abort. */
int snapshot_receive_end(struct snapshot_receiver *rc,
                         struct snapshot_info *info, struct cohort_err *err);
void snapshot_receive_abort(struct snapshot_receiver *rc);

#endif
