/* log — the in-memory log of one replica: the entries after the last
 * compaction point (base), with their bodies in one byte ring.
 *
 * Invariants: (1) entries base+1..op are present, in op order, and each
 * entry's parent is the checksum of the one before it (base_checksum for
 * base+1); (2) bodies are laid out in op order around the ring, so dropping
 * entries from either end frees bytes at that end; (3) nothing is allocated
 * after log_init().
 */
#ifndef COHORT_LOG_H
#define COHORT_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/entry.h"

struct log_slot {
    struct entry_header h;
    uint64_t body_offset;
};

struct log {
    uint64_t base;          /* ops <= base are compacted away */
    uint64_t base_checksum; /* checksum of the entry at base (0 if base 0) */
    uint64_t base_timestamp_ms;
    uint64_t op; /* last op held; == base when empty */
    uint32_t ops_max;
    uint64_t bytes_max;
    struct log_slot *slots; /* slot of op is slots[op % ops_max] */
    uint8_t *arena;         /* body ring */
    uint64_t head;          /* ring offset of the first body */
    uint64_t tail;          /* ring offset past the last body */
    uint64_t bytes;         /* body bytes held (excluding ring gaps) */
};

/* Allocate room for ops_max entries and bytes_max body bytes. Returns false
 * when out of memory. */
bool log_init(struct log *l, uint32_t ops_max, uint64_t bytes_max);
void log_deinit(struct log *l);

/* Empty the log and start it after base. */
void log_reset(struct log *l, uint64_t base, uint64_t base_checksum,
               uint64_t base_timestamp_ms);
/* Room for one more entry with a body of body_size bytes? */
bool log_has_room(const struct log *l, uint32_t body_size);
/* Append e (op must be l->op + 1 and parent the last checksum); copies the
 * body. Returns false, changing nothing, when there is no room. */
bool log_append(struct log *l, const struct entry *e);
/* Drop the entries after op (base <= op <= l->op). */
void log_truncate(struct log *l, uint64_t op);
/* Drop the entries up to op (base <= op <= l->op); op becomes the base. */
void log_compact(struct log *l, uint64_t op);
/* The entry at op, or NULL if op is outside base+1..op. Valid until the next
 * change to the log. */
const struct entry_header *log_header(const struct log *l, uint64_t op);
bool log_entry(const struct log *l, uint64_t op, struct entry *out);
/* The checksum of the entry at op for base <= op <= l->op; false outside. */
bool log_checksum(const struct log *l, uint64_t op, uint64_t *checksum);
/* The timestamp of the last entry (base's when empty). */
uint64_t log_last_timestamp(const struct log *l);

/* A byte range of the body ring: [offset, offset + size). */
struct log_range {
    uint64_t offset;
    uint64_t size;
};
/* The parts of the ring that hold no body now (at most two, none empty),
 * for a driver to give their memory back (madvise): bodies appended later
 * are copied in again, so their bytes may be lost. In a wrapped ring the
 * gap at its end, behind the last body before the wrap, is not reported
 * (it is smaller than one body). Returns how many. */
uint32_t log_free_ranges(const struct log *l, struct log_range out[2]);

#endif
