/* sim/disk — one replica's simulated durable storage: the log as copies of
 * encoded entries (64-byte header + body, as the WAL stores them), the
 * metadata, and the latest snapshot (state machine bytes + client table).
 *
 * Writes are queued with a latency and complete in the order they were
 * issued; only a completed write is durable, and completing one is what the
 * cluster turns into EV_PERSISTED, EV_META_PERSISTED, EV_SNAPSHOT_TAKEN or
 * EV_SNAPSHOT_INSTALLED. A log write replaces the durable suffix from the
 * first entry that differs (identical entries are not rewritten, as a real
 * WAL would not rewrite them), so a crash never damages what was durable.
 *
 * Faults: at a crash every pending write is lost, except that the oldest one
 * may have partly reached the platter (torn): some of its entries are written
 * and the next one is garbled. Metadata and snapshots are crash-atomic: the
 * oldest pending one is either fully there or not at all. Corruption flips
 * one bit of a durable log record other than the last. At restart
 * sim_disk_load() verifies every record with entry_verify() and treats a bad
 * one as the WAL does (storage/wal.h): with nothing valid after it, it is a
 * torn tail, cut silently; otherwise it is damage, which cuts the log there
 * and names damaged_op for the replica to repair. (A corrupted last record
 * would look torn; the WAL cannot tell them apart, so corruption is never
 * injected there.)
 *
 * Invariants: (1) durable log records are contiguous ops after log_base;
 * (2) the durable log continues the durable snapshot: its first record after
 * the snapshot has the snapshot's checksum as parent, or it is empty;
 * (3) writes complete in issue order, never earlier than issued + latency.
 */
#ifndef COHORT_SIM_DISK_H
#define COHORT_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/entry.h"
#include "core/prng.h"
#include "core/replica.h"

struct sim_record {
    uint64_t op;
    uint8_t *bytes; /* encoded header + body; may be torn or corrupted */
    size_t size;
    bool corrupted; /* sim_disk_corrupt() flipped a bit here */
};

struct sim_snapshot {
    uint64_t op; /* 0: no snapshot */
    uint64_t checksum;
    uint64_t timestamp_ms;
    uint8_t *state;
    size_t state_size;
    uint8_t *client_table;
    size_t client_table_size;
};

enum sim_write_kind {
    SIM_WRITE_LOG = 1,
    SIM_WRITE_META = 2,
    SIM_WRITE_SNAPSHOT_TAKE = 3,
    SIM_WRITE_SNAPSHOT_INSTALL = 4,
};

struct sim_write {
    enum sim_write_kind kind;
    uint64_t at; /* completion time */
    /* LOG */
    uint64_t op_first;
    uint64_t op_last;  /* op_first - 1: truncate only */
    uint64_t checksum; /* echoed in EV_PERSISTED */
    struct sim_record *records;
    uint32_t record_count;
    /* META */
    uint64_t seq;
    struct replica_meta meta;
    /* SNAPSHOT_* */
    struct sim_snapshot snapshot;
};

struct sim_disk_config {
    uint32_t latency_min_ms;
    uint32_t latency_max_ms;
    uint32_t torn_ppm; /* chance the oldest pending write is torn at a crash */
};

struct sim_disk_stats {
    uint64_t writes;
    uint64_t writes_lost; /* pending at a crash */
    uint64_t torn;
    uint64_t corruptions;
};

/* What a completed write means for the replica; pointers borrow the disk and
 * are valid until the next call that changes it. */
struct sim_disk_done {
    enum sim_write_kind kind;
    uint64_t op;       /* LOG: op_last; SNAPSHOT_*: snapshot op */
    uint64_t checksum; /* LOG: as the persist gave it; SNAPSHOT_* */
    uint64_t seq;      /* META */
    /* LOG: the write would leave a gap after the durable log (op_first is
     * past durable op + 1): the log restarts there. A driver bug or a core
     * bug; the cluster reports it. */
    bool gap;
    uint64_t gap_durable_op;
    const struct sim_snapshot *snapshot; /* SNAPSHOT_INSTALL */
};

/* A durable state read back at restart (sim_disk_load). */
struct sim_disk_image {
    struct replica_durable durable;
    const struct sim_snapshot *snapshot; /* durable.snapshot_op == 0: none */
    /* The log does not continue the snapshot: the op of the first record
     * that does not chain (a stale branch, dropped), else 0. */
    uint64_t unchained_op;
    /* A torn tail was cut at this op (not damage), else 0. */
    uint64_t torn_op;
};

struct sim_disk {
    struct prng *prng; /* borrowed */
    struct sim_disk_config config;
    /* Durable state. */
    bool ever_written;
    bool meta_present;
    uint64_t meta_seq;
    struct replica_meta meta;
    struct sim_snapshot snapshot;
    struct sim_record *log;
    uint64_t log_count;
    uint64_t log_capacity;
    uint64_t log_base; /* log[i].op == log_base + 1 + i */
    /* Pending writes, oldest first: pending[head .. head + count). */
    struct sim_write *pending;
    size_t pending_head;
    size_t pending_count;
    size_t pending_capacity;
    uint64_t last_at;
    /* Scratch for sim_disk_load(). */
    struct entry *image_entries;
    uint64_t image_capacity;
    struct sim_disk_stats stats;
};

void sim_disk_init(struct sim_disk *d, struct prng *prng,
                   const struct sim_disk_config *config);
void sim_disk_deinit(struct sim_disk *d);

/* Queue a log write (ACT_PERSIST): entries[0..count) are ops
 * op_first..op_last, copied now; count 0 truncates after op_first - 1. The
 * completion echoes op_last and checksum. */
void sim_disk_persist(struct sim_disk *d, uint64_t now, uint64_t op_first,
                      uint64_t op_last, uint64_t checksum,
                      const struct entry *entries, uint32_t count);
void sim_disk_meta(struct sim_disk *d, uint64_t now, uint64_t seq,
                   const struct replica_meta *meta);
/* Queue a snapshot write; the bytes are copied. install: it came from a
 * peer (state transfer) rather than from this replica's own state machine. */
void sim_disk_snapshot(struct sim_disk *d, uint64_t now, bool install,
                       const struct sim_snapshot *snapshot);
/* Drop durable records up to op. Returns false (and drops nothing) if op is
 * past the durable snapshot: that would lose committed entries. */
bool sim_disk_compact(struct sim_disk *d, uint64_t op);

/* The completion time of the oldest pending write; false if none. */
bool sim_disk_next_at(const struct sim_disk *d, uint64_t *at);
/* Make the oldest pending write durable and say what it was. */
void sim_disk_complete(struct sim_disk *d, struct sim_disk_done *done);

/* The process died: pending writes are lost, the oldest maybe torn. Returns
 * true if a write was torn. */
bool sim_disk_crash(struct sim_disk *d);
/* Flip one bit of a random durable record with op in (snapshot, op_max],
 * never the last record. Returns the op, or 0 if there is no such record. */
uint64_t sim_disk_corrupt(struct sim_disk *d, uint64_t op_max);

/* The lowest durable record sim_disk_corrupt() damaged that has not been
 * rewritten or dropped since, or 0. */
uint64_t sim_disk_corrupt_op(const struct sim_disk *d);

/* Read back the durable state for replica_init(); the image borrows the disk
 * until the next call that changes it. */
void sim_disk_load(struct sim_disk *d, struct sim_disk_image *image);

/* The durable entry at op, if present and intact (for checks). */
bool sim_disk_entry(const struct sim_disk *d, uint64_t op,
                    struct entry_header *h);
uint64_t sim_disk_last_op(const struct sim_disk *d);

void sim_snapshot_copy(struct sim_snapshot *dst,
                       const struct sim_snapshot *src);
void sim_snapshot_free(struct sim_snapshot *s);

#endif
