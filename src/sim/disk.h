/* sim/disk — one replica's simulated disk: a struct vfs held in memory, so
 * that the simulator runs the real storage code (src/storage: the wal, the
 * metadata, snapshot files, recovery) under the faults of a real disk.
 *
 * The durability model is the one storage/vfs.h promises callers, and no
 * more: file bytes (and sizes) are durable as of the file's last successful
 * sync; created, renamed and unlinked names as of the last sync of their
 * directory; directories themselves at once. A file's bytes are freed (and
 * stop counting against the capacity) once no handle holds it and no name
 * does, nor could after a power loss.
 *
 * Faults:
 *  - a process crash (SIGKILL): every handle dies, nothing written is lost
 *    (the page cache survives);
 *  - a power loss: names fall back to the durable ones plus a prefix of the
 *    later name changes, and each file to its durable bytes plus a prefix
 *    of its later writes, the first write lost torn at a sector boundary
 *    (some of its sectors reached the platter, in order);
 *  - latent corruption: a bit flips in bytes that were synced
 *    (sim_disk_corrupt), which reads return from then on;
 *  - a misdirected write: the next write to a file under a given prefix
 *    lands at another offset of that file, and reports success
 *    (sim_disk_misdirect_next);
 *  - EIO on reads and on writes, at a per-operation rate; EIO on a sync,
 *    after which the file's unsynced bytes may be gone from the cache (the
 *    fsync lesson); ENOSPC once the bytes held would pass a capacity;
 *  - the power goes off at the Nth mutating operation from now (a crash in
 *    a storage round: every operation from then on fails with EIO until
 *    sim_disk_crash()).
 *
 * Every random choice comes from the borrowed prng, in call order, so a run
 * depends on nothing but its seed.
 *
 * States: RUNNING -> (FROZEN: power off, or a crash under way) -> RUNNING
 * after sim_disk_crash(). Handles opened before a crash fail every call
 * (close still frees them).
 */
#ifndef COHORT_SIM_DISK_H
#define COHORT_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/prng.h"
#include "storage/vfs.h"

struct sim_disk_config {
    uint32_t sector_size;   /* torn writes cut at multiples of this */
    uint32_t torn_ppm;      /* a power loss tears the first lost write */
    uint32_t read_eio_ppm;  /* chance a read fails with EIO */
    uint32_t write_eio_ppm; /* chance a write fails with EIO */
    uint32_t sync_eio_ppm;  /* chance a sync fails with EIO */
};

struct sim_disk_stats {
    uint64_t writes;
    uint64_t syncs;
    uint64_t power_losses;
    uint64_t torn;        /* writes torn by a power loss */
    uint64_t lost_writes; /* unsynced writes lost at power losses */
    uint64_t corruptions; /* bits flipped by sim_disk_corrupt */
    uint64_t misdirected; /* writes that landed elsewhere */
    uint64_t eio_reads;
    uint64_t eio_writes;
    uint64_t eio_syncs;
    uint64_t enospc;
};

struct sim_inode;
struct sim_name;
struct sim_name_op;

/* Bytes a fault damaged (a flipped bit, a misdirected write's landing
 * place and the place it missed), until a synced truncation cuts them off
 * or their file is gone (a rewrite does not clear them). */
struct sim_spot {
    uint32_t inode;
    uint64_t offset, size;
};

struct sim_disk {
    struct vfs vfs; /* first: the vfs pointer is the disk */
    struct prng *prng;
    struct sim_disk_config config;
    bool frozen;           /* powered off: mutating calls fail */
    uint64_t power_off_in; /* 0: off; N: N more mutating calls succeed */
    uint32_t generation;   /* handles of older generations are dead */
    bool misdirect_armed;  /* the next write lands elsewhere */
    char misdirect_prefix[VFS_PATH_MAX]; /* ... if its path starts so */
    uint64_t capacity;                   /* bytes; 0: unlimited */
    struct sim_inode *inodes;
    uint32_t inode_count, inode_cap;
    struct sim_name *names; /* current names (files) */
    uint32_t name_count, name_cap;
    struct sim_name *durable; /* durable names (files) */
    uint32_t durable_count, durable_cap;
    struct sim_name_op *name_ops; /* undurable name changes, in order */
    uint32_t name_op_count, name_op_cap;
    char **dirs;
    uint32_t dir_count, dir_cap;
    struct sim_spot *spots;
    uint32_t spot_count, spot_cap;
    /* Optional: one line per mutating call, for --trace. */
    void (*trace)(void *ctx, const char *line);
    void *trace_ctx;
    struct sim_disk_stats stats;
};

void sim_disk_init(struct sim_disk *d, struct prng *prng,
                   const struct sim_disk_config *config);
/* Frees everything; handles must be closed first. */
void sim_disk_deinit(struct sim_disk *d);
/* A copy of the files as they read now into to (initialized and empty),
 * every one of them durable there: what copying a stopped replica's data
 * directory takes, to be put back later (an operator's rollback). */
void sim_disk_copy_files(const struct sim_disk *from, struct sim_disk *to);
static inline struct vfs *sim_disk_vfs(struct sim_disk *d)
{
    return &d->vfs;
}

/* The process died (power false) or the machine lost power (true), as the
 * header comment describes. Every open handle dies. */
void sim_disk_crash(struct sim_disk *d, bool power);
/* The power goes off at the n-th mutating call from now: it and every
 * later call, reads included, fail with EIO until sim_disk_crash(). */
void sim_disk_power_off_after(struct sim_disk *d, uint64_t n);
bool sim_disk_powered_off(const struct sim_disk *d);
/* Cancel a power-off countdown that has not run out. */
void sim_disk_power_stays_on(struct sim_disk *d);

/* Flip one bit in the synced bytes of a random file whose path starts with
 * prefix, below the end of its last synced nonzero byte (so a preallocated
 * file's zero tail is left alone). Returns true and fills path
 * (VFS_PATH_MAX bytes) and *offset if some such file exists. */
bool sim_disk_corrupt(struct sim_disk *d, const char *prefix, char *path,
                      uint64_t *offset);
/* The next write lands at another offset of its file. */
void sim_disk_misdirect_next(struct sim_disk *d, const char *prefix);
/* Writes that would make the disk hold more than capacity bytes fail with
 * ENOSPC (0: no limit). */
void sim_disk_set_capacity(struct sim_disk *d, uint64_t capacity);
/* Whether damaged bytes are still where storage may read them back. */
bool sim_disk_damaged(const struct sim_disk *d);
/* Bytes held now (the sum of file sizes). */
uint64_t sim_disk_used(const struct sim_disk *d);

#endif
