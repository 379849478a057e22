/* expire_index — the store's keys that have an expiry, ordered by it: a
 * binary min-heap of records keyed by expire_at_ms, so the primary finds the
 * keys due at a log time in O(due) rather than by scanning the store.
 *
 * Not state: it is derived from the records (kv.c keeps it in step with
 * every change of expire_at_ms, every removal and every record move) and
 * rebuilt as a snapshot loads, since loading sets each key's expiry through
 * kv_expire_set(). Its layout depends on the order of those changes, which
 * may differ between replicas; nothing replicated depends on it: the
 * primary's choice of keys travels in the EXPIRE_DUE op itself.
 *
 * Invariants: (1) items[0..count) are exactly the records with
 * expire_at_ms != 0, each once; (2) items[i]->expire_pos == i; (3) heap
 * order: items[(i-1)/2]->expire_at_ms <= items[i]->expire_at_ms.
 */
#ifndef COHORT_KV_EXPIRE_INDEX_H
#define COHORT_KV_EXPIRE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv_record;

struct kv_expire_index {
    struct kv_record **items;
    uint64_t count;
    uint64_t cap;
};

/* The records visited by kv_expire_index_due(); false stops the walk. */
typedef bool (*kv_expire_visit_fn)(void *ctx, const struct kv_record *r);

void kv_expire_index_init(struct kv_expire_index *x);
void kv_expire_index_deinit(struct kv_expire_index *x);
/* Forget every record (they are being freed); keeps the array. */
void kv_expire_index_clear(struct kv_expire_index *x);

/* r's expire_at_ms changed from old_ms (0: it had none) to its current
 * value (0: none now): add, remove or move it. Out of memory stops the
 * process, as in apply. */
void kv_expire_index_update(struct kv_expire_index *x, struct kv_record *r,
                            uint64_t old_ms);
/* r (with an expiry) is being removed. */
void kv_expire_index_remove(struct kv_expire_index *x, struct kv_record *r);
/* r (with an expiry) moved in memory (realloc): point at its new place. */
void kv_expire_index_moved(struct kv_expire_index *x, struct kv_record *r);

/* Visit records due at now_ms (expire_at_ms <= now_ms), at most max of
 * them, in no particular order, until fn returns false. Work: O(visited).
 * max is at most KV_EXPIRE_VISIT_MAX. Returns how many were visited. */
#define KV_EXPIRE_VISIT_MAX 4096u
size_t kv_expire_index_due(const struct kv_expire_index *x, uint64_t now_ms,
                           size_t max, kv_expire_visit_fn fn, void *ctx);

/* How many records are due at now_ms. Work: O(that count). */
uint64_t kv_expire_index_count_due(const struct kv_expire_index *x,
                                   uint64_t now_ms);

/* Whether some record has from_ms < expire_at_ms <= to_ms, looking at most
 * at KV_EXPIRE_VISIT_MAX records (true, conservatively, past that). */
bool kv_expire_index_any_between(const struct kv_expire_index *x,
                                 uint64_t from_ms, uint64_t to_ms);

/* The earliest expiry, 0 if none. */
uint64_t kv_expire_index_first(const struct kv_expire_index *x);

/* Invariants (1)-(3) with expires_count records. O(n), for tests. */
bool kv_expire_index_valid(const struct kv_expire_index *x,
                           uint64_t expires_count);

#endif
