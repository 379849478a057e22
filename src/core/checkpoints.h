/* checkpoints — the checksums of committed ops the log no longer holds, at
 * fixed op numbers, kept so that a snapshot offer can still show whether a
 * returning member's committed history is the group's (transfer.c,
 * "Divergence").
 *
 * Ops are noted at three spacings (every 16th, 1,024th and 65,536th op),
 * the last CHECKPOINT_SLOTS (8,192) of each: every 16th op over the last
 * 131,072 ops compacted, coarser as far back as 537 million (384 KiB, in
 * pages touched only as notes come). A chained checksum (log.h) at op x
 * stands for the whole history up to x, so one match or mismatch there
 * settles that prefix. Nothing is allocated. The driver keeps a copy on
 * disk (storage/checkpoint_file.h), written at each compaction and handed
 * back at start (replica_durable), so a restart keeps them too.
 */
#ifndef COHORT_CHECKPOINTS_H
#define COHORT_CHECKPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_LEVELS 3
#define CHECKPOINT_SLOTS 8192u
#define CHECKPOINT_FINE 16u /* the finest spacing; the others are multiples */
/* The most distinct notes the levels hold at once. */
#define CHECKPOINTS_MAX (CHECKPOINT_LEVELS * CHECKPOINT_SLOTS)

struct checkpoint_ring {
    uint64_t op[CHECKPOINT_SLOTS];
    uint64_t checksum[CHECKPOINT_SLOTS];
    uint32_t next;  /* slot the next note goes to */
    uint32_t count; /* slots in use, up to CHECKPOINT_SLOTS */
};

struct checkpoints {
    struct checkpoint_ring level[CHECKPOINT_LEVELS];
};

/* Whether op is one of the fixed op numbers noted. */
bool checkpoints_due(uint64_t op);

/* Note the checksum of committed op (checkpoints_due(op)). Notes come in
 * rising op order; one at or below a level's last is ignored there. */
void checkpoints_note(struct checkpoints *c, uint64_t op, uint64_t checksum);

/* The highest noted op at most at_most, with its checksum; false if none. */
bool checkpoints_find(const struct checkpoints *c, uint64_t at_most,
                      uint64_t *op, uint64_t *checksum);

/* Every noted op, each once, in rising op order, into op[] and checksum[]
 * (room for max; CHECKPOINTS_MAX is always enough). Returns the count. */
size_t checkpoints_list(const struct checkpoints *c, uint64_t *op,
                        uint64_t *checksum, size_t max);

#endif
