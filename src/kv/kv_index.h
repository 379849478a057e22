/* kv_index — the store's keys in order: a skip list of pointers to the
 * records of the hash table (kv.h), kept up to date by every insert, delete
 * and record move, so that COHORT.RANGE finds its start key in O(log n) and
 * then walks forward, doing work bounded by its LIMIT, not by the store.
 *
 * Order is bytewise on the key, a prefix first (as snapshots are written).
 * Node levels come from a splitmix64 sequence seeded with the store's hash
 * seed (p = 1/4), not from the keys, so a client cannot choose keys that
 * degrade the list into a linked list. The index is local, like the table
 * layout: nothing replicated depends on it, only the order it gives.
 *
 * Invariants: (1) the nodes at level 0 are exactly the store's records, in
 * strictly increasing key order; (2) a node of level L is linked at levels
 * 0..L-1; (3) count and memory_size match the nodes; (4) tail[i] is the
 * last node at level i, NULL if there is none.
 *
 * Memory: one allocation per key, 16 bytes plus 8 per level (1.33 levels on
 * average), which malloc rounds to 32 bytes for most keys.
 */
#ifndef COHORT_KV_INDEX_H
#define COHORT_KV_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_INDEX_LEVEL_MAX 16

struct kv_record;

struct kv_index_node {
    const struct kv_record *record;
    uint32_t level;
    struct kv_index_node *next[];
};

struct kv_index {
    struct kv_index_node *head[KV_INDEX_LEVEL_MAX];
    /* The last node at each level (NULL where the level is empty): a key
     * past the last one is linked there without a search, so keys inserted
     * in order (a snapshot's restore) cost O(1) each instead of O(log n)
     * cache misses. */
    struct kv_index_node *tail[KV_INDEX_LEVEL_MAX];
    uint32_t level; /* the highest level in use, >= 1 */
    uint64_t count;
    uint64_t memory_size; /* bytes allocated for nodes */
    uint64_t rng;         /* splitmix64 state for node levels */
};

void kv_index_init(struct kv_index *x, uint64_t seed);
/* Free every node. */
void kv_index_clear(struct kv_index *x);

/* Link r, whose key is not in the index (asserted). Returns 0 or
 * -COHORT_ENOMEM with the index unchanged. */
int kv_index_insert(struct kv_index *x, const struct kv_record *r);
/* Unlink the node of key; asserts it is there. */
void kv_index_remove(struct kv_index *x, const uint8_t *key, size_t key_size);
/* The node of key; asserts it is there. A record about to move (realloc)
 * is looked up here first, and the node's record set to the new address
 * after: once freed, the old record must not be read. */
struct kv_index_node *kv_index_find(struct kv_index *x, const uint8_t *key,
                                    size_t key_size);

/* The first node whose key is >= key, or NULL. O(log n) expected. */
const struct kv_index_node *kv_index_seek(const struct kv_index *x,
                                          const uint8_t *key, size_t key_size);
static inline const struct kv_index_node *
kv_index_next(const struct kv_index_node *n)
{
    return n->next[0];
}

/* Bytewise key order, a prefix first: <0, 0 or >0. */
int kv_key_compare(const uint8_t *a, size_t a_size, const uint8_t *b,
                   size_t b_size);

/* Whole-index check of invariants (1)-(3) against count records; O(n). */
bool kv_index_valid(const struct kv_index *x, uint64_t key_count);

#endif
