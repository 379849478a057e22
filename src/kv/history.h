/* history — the published messages a member retains, for COHORT.SUBSCRIBE
 * ... FROM <position>: a ring of {position, channel, message}, bounded by a
 * message count and a byte budget, oldest evicted first.
 *
 * A message's position is the op of the PUBLISH that carried it (one
 * message per op), so positions increase along the log and are the same on
 * every member. The ring is not replicated state: it is rebuilt from the
 * ops a member applies (after a restart, from the log above its snapshot),
 * and neither snapshots nor the state hash include it.
 *
 * The same ring holds the key change events of watches (kv/changes.h),
 * where one op may change many keys: a ring made with shared_positions
 * set takes several entries at one position (non-decreasing order), and
 * counts every entry it is given with a sequence number (entry i has
 * first_seq + i), so a reader can resume inside a position.
 *
 * Memory: the entries sit in one byte ring, 8-byte aligned, in append
 * order; an entry goes to the ring's start as soon as that has room, so
 * the ring stays about as long as the live entries need. The ring starts
 * at 4 KiB and doubles (moving the entries, in order, to the new buffer's
 * start) when an entry does not fit; past HISTORY_MAP_MIN it is instead
 * moved once into a reserved mapping of twice bytes_max (MAP_NORESERVE:
 * pages are backed only as the ring reaches them), so a busy replica never
 * stalls to copy a big ring, and a small store (a fuzzer's, a test's)
 * never maps 128 MiB. Only at that size does fitting evict. An entry is reached
 * through history_at(), never kept across an append. No malloc or free per
 * entry: at 1 KiB writes the allocator's free alone was 6.7% of a primary's CPU
 * with one malloc'd entry per change.
 *
 * Invariants: (1) entries are in increasing position order (non-decreasing
 * with shared_positions); (2) every
 * message with a position above floor that was appended since the last
 * reset is retained (floor only moves up: an eviction raises it to the
 * evicted position, a reset sets it); (3) count <= count_max and
 * bytes <= bytes_max, where an entry costs history_entry_cost().
 */
#ifndef COHORT_KV_HISTORY_H
#define COHORT_KV_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The defaults, and the largest count a config may set. */
#define HISTORY_COUNT_MAX_DEFAULT 100000u
#define HISTORY_BYTES_MAX_DEFAULT (64ull << 20)
/* Past this size the byte ring is a reserved mapping (see Memory above). */
#define HISTORY_MAP_MIN (1u << 20)
#define HISTORY_COUNT_LIMIT (1u << 24)

struct history_entry {
    uint64_t position;
    uint32_t channel_size;
    uint32_t message_size;
    uint8_t data[]; /* channel, then message */
};

struct history {
    struct history_entry **ring; /* capacity slots, grown up to count_max */
    /* The entries live in one byte ring (see Memory above). */
    uint8_t *buf;
    size_t buf_size; /* bytes allocated */
    bool buf_mapped; /* buf is a reserved mapping (over HISTORY_MAP_MIN) */
    size_t tail;     /* where the next entry goes */
    size_t extent;   /* the highest byte ever used */
    uint32_t capacity;
    uint32_t count_max;
    uint64_t bytes_max;
    uint32_t head;  /* slot of the oldest entry */
    uint32_t count; /* entries held */
    uint64_t bytes; /* history_entry_cost() of the entries */
    uint64_t floor; /* every message above it is retained */
    uint64_t last;  /* the newest position appended, or floor */
    uint64_t evicted;
    bool shared_positions; /* entries may share a position */
    /* The sequence number of the oldest entry: every entry appended (or
     * refused for its size) gets the next one, and eviction never reuses
     * them, so entry i has first_seq + i. */
    uint64_t first_seq;
};

/* An empty ring (floor 0). count_max 1..HISTORY_COUNT_LIMIT; bytes_max 0
 * retains nothing. The ring's slots grow with use (a store that never
 * publishes pays nothing). Returns -COHORT_EINVAL for a count out of
 * range. */
int history_init(struct history *h, uint32_t count_max, uint64_t bytes_max);
void history_deinit(struct history *h);

/* Forget every entry; messages up to floor are unknown from now on. */
void history_reset(struct history *h, uint64_t floor);

/* What an entry of these sizes costs against bytes_max. */
uint64_t history_entry_cost(size_t channel_size, size_t message_size);

/* Retain a message at position > h->last (asserted; >= with
 * shared_positions), evicting the oldest
 * entries to make room. A message over bytes_max alone is not retained
 * (floor moves to its position). Returns -COHORT_ENOMEM and changes
 * nothing if more slots cannot be allocated, and -COHORT_ENOMEM after
 * evicting what the bounds required if the byte ring cannot grow to hold
 * the entry. */
int history_append(struct history *h, uint64_t position, const void *channel,
                   size_t channel_size, const void *message,
                   size_t message_size);

/* history_append() of a message whose first byte is tag (the stored
 * message is tag then message; the cost counts the tag). */
int history_append_tagged(struct history *h, uint64_t position,
                          const void *channel, size_t channel_size, uint8_t tag,
                          const void *message, size_t message_size);

/* The sequence number the next entry appended gets. */
static inline uint64_t history_next_seq(const struct history *h)
{
    return h->first_seq + h->count;
}

/* The i-th oldest entry, i < h->count (asserted). */
const struct history_entry *history_at(const struct history *h, uint32_t i);
/* The index of the oldest entry with position >= position (h->count if
 * none): a binary search. */
uint32_t history_find(const struct history *h, uint64_t position);

static inline const uint8_t *history_channel(const struct history_entry *e)
{
    return e->data;
}

static inline const uint8_t *history_message(const struct history_entry *e)
{
    return e->data + e->channel_size;
}

#endif
