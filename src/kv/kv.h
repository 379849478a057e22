/* kv — the coordination store's data: a hash table from binary-safe keys to
 * records {value, version, create op, mod op}. command.c applies client
 * commands to it, snapshot.c writes and restores it.
 *
 * The table is open addressing with linear probing and backward-shift
 * deletion, hashed with XXH3 under config.hash_seed. It doubles when three
 * quarters full and halves when below an eighth. The layout depends on the
 * seed and on the history, so nothing that leaves this module depends on it:
 * snapshots are written in key order and the state hash is a sum over
 * records. Two replicas with different seeds therefore give the same
 * replies, snapshots and state hash. The records are also linked in key
 * order by kv->index (kv_index.h), kept up to date by every change, for
 * COHORT.RANGE; SCAN's cursor (kv_scan()) is the one thing that exposes
 * the layout, which is why a cursor is only meaningful on one member.
 *
 * Invariants: (1) every key is in the table at most once; (2) each record's
 * digest is record_digest() of its current contents, and kv->digest_sum is
 * their sum; (3) 1 <= version <= mod_op - create_op + 1 (a key changes at
 * most once per op) and mod_op <= kv->op; (4) key_count, data_size and
 * memory_size match the records; (5) every key and value is within the
 * limits in the config.
 *
 * Versions count the ops that changed the key since it was created: a new key
 * has version 1 and create_op == mod_op; each later op that writes it (even
 * the same bytes) adds one and moves mod_op. A deleted and re-created key
 * starts again at version 1, as etcd does. An op that writes one key twice
 * (MSET a 1 a 2) counts as one change.
 */
#ifndef COHORT_KV_H
#define COHORT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"
#include "kv/acl.h"
#include "kv/address.h"
#include "kv/history.h"
#include "kv/expire_index.h"
#include "kv/kv_index.h"
#include "kv/session.h"

#define KV_KEY_SIZE_MAX_DEFAULT (64u * 1024)
#define KV_VALUE_SIZE_MAX_DEFAULT (1024u * 1024)
/* The smallest table; it never shrinks below this. */
#define KV_SLOT_COUNT_MIN 16u
/* The largest limits a config may set. */
#define KV_KEY_SIZE_LIMIT (1024u * 1024)
#define KV_VALUE_SIZE_LIMIT (512u * 1024 * 1024)

/* The key and value limits are checked where a command is proposed
 * (kv_command_parse()), not at apply: apply holds arguments to the largest
 * limits any store allows (KV_KEY_SIZE_LIMIT, KV_VALUE_SIZE_LIMIT) and the
 * values an op makes (APPEND, SETRANGE, INCRBYFLOAT, transactions) to the
 * limit the op carries (KV_VALUE_LIMIT, the proposer's), and a snapshot
 * restores whatever it holds within the largest limits. So replicas with
 * different limits reach the same state from the same log, and a limit
 * lowered keeps what was acknowledged under the old one. (Replication has
 * its own bounds from the limits: README "Limits" says how to change them.)
 * Only a reply may differ: one too long for a member's reply buffer is an error
 * there (kv_apply()). The hash seed only shapes the table layout and may differ
 * between replicas (a server may pick it per process to resist hash
 * flooding): no result depends on it. */
struct kv_config {
    uint32_t key_size_max;   /* bytes; 1..KV_KEY_SIZE_LIMIT */
    uint32_t value_size_max; /* bytes; 1..KV_VALUE_SIZE_LIMIT */
    uint64_t hash_seed;
    /* The published messages each member retains for COHORT.SUBSCRIBE
     * FROM (kv/history.h): not state, so members may differ. 0: the
     * default (HISTORY_COUNT_MAX_DEFAULT, HISTORY_BYTES_MAX_DEFAULT). */
    uint32_t history_count_max;
    uint64_t history_bytes_max;
};

/* Who hears of published messages as they are applied (the server, which
 * delivers them to its subscribers). Not state: set on each member. */
struct kv_publish_hook {
    void *ctx;
    /* A PUBLISH at op `position` was applied: returns how many of this
     * member's subscribers it goes to (PUBLISH's reply). Called inside
     * apply: it must not call back into the node. */
    uint64_t (*deliver)(void *ctx, uint64_t position, const uint8_t *channel,
                        size_t channel_size, const uint8_t *message,
                        size_t message_size);
    /* A snapshot replaced the state: the messages (and key changes) up to
     * floor were never applied here and will not be. */
    void (*reset)(void *ctx, uint64_t floor);
    /* A key changed at revision (kv/changes.h); seq numbers the event in
     * kv->changes. Called inside apply: it must not call back into the
     * node. NULL: nobody watches. */
    void (*change)(void *ctx, uint64_t seq, uint64_t revision, uint8_t kind,
                   const uint8_t *key, size_t key_size, const uint8_t *value,
                   size_t value_size);
};

/* One key's record. key and value are stored back to back in data. */
struct kv_record {
    uint64_t version;   /* ops that changed the key since creation, >= 1 */
    uint64_t create_op; /* op that created the key */
    uint64_t mod_op;    /* op of the last change */
    uint64_t digest;    /* record_digest(): the record's share of the hash */
    /* Log time (ms) at which the key expires; 0 if it does not. Part of
     * the state and its hash (only when nonzero, so stores without expiries
     * hash as before), kept by value changes; SET without KEEPTTL clears it
     * (command.c). See expire() in command.c and docs/PROTOCOL.md. */
    uint64_t expire_at_ms;
    uint64_t expire_pos; /* not state: its place in kv->expiry */
    uint32_t key_size;
    uint32_t value_size;
    uint8_t data[];
};

struct kv_slot {
    uint64_t hash;            /* XXH3 of the key under config.hash_seed */
    struct kv_record *record; /* NULL when the slot is empty */
};

struct kv_slicer;

struct kv {
    struct kv_config config;
    struct kv_slot *slots;
    uint64_t slot_count; /* a power of two, >= KV_SLOT_COUNT_MIN */
    uint64_t key_count;
    uint64_t data_size;     /* sum of key and value sizes */
    uint64_t memory_size;   /* bytes allocated: slots, records */
    uint64_t digest_sum;    /* sum of record digests, mod 2^64 */
    uint64_t op;            /* the last op applied (0 before the first) */
    uint64_t expires_count; /* records with expire_at_ms != 0 */
    /* Not part of the state hash: the timestamp of the last applied entry,
     * the log time reads judge expiry by (kv_query_at()). */
    uint64_t time_ms;
    /* The users (ACL SETUSER/DELUSER are log ops): part of the state, its
     * hash and snapshots once initialized (acl.h). */
    struct acl acl;
    /* The sessions and their ephemeral keys (session.h): part of the
     * state, its hash (once one exists) and snapshots. */
    struct kv_sessions sessions;
    /* The replicas' addresses (KV_CMD_ADDRESS ops, kv/address.h): part of
     * the state, its hash and snapshots while it has an entry. */
    struct kv_addresses addresses;
    /* Not state: bumped whenever the address table may have changed (an
     * applied ADDRESS op, kv_clear() and so every restore); FLUSHALL
     * keeps the table. kv_address_changes() reads it. */
    uint64_t addresses_changes;
    /* The group's incarnation (KV_CMD_INCARNATION, kv/incarnation.h), 0
     * until one is applied: part of the state, its hash and snapshots
     * while nonzero. FLUSHALL keeps it. */
    uint64_t incarnation;
    /* Not state: the keys in order, for COHORT.RANGE (kv_index.h). */
    struct kv_index index;
    /* Not state: the keys with an expiry, by it (expire_index.h). */
    struct kv_expire_index expiry;
    /* Not state: keys removed because they expired (EXPIRE_DUE, or an op
     * that found them due) by this process. */
    uint64_t expired_keys;
    /* Not state: how many times the table was resized (kv_reserve()). */
    uint64_t table_resizes;
    /* Not state: kv_apply()'s reply is built here (RESP2), then copied to
     * the core's buffer. Reused, so applying allocates only to grow it. */
    struct resp_buf apply_reply;
    /* Not state: the body of a transaction's command (txn.c), reused. */
    uint8_t *txn_body;
    size_t txn_body_capacity;
    /* Not state: the retained messages and who hears of new ones. */
    struct history history;
    struct kv_publish_hook publish_hook;
    /* Not state: the key change events, for watches (kv/changes.h). */
    struct history changes;
    /* Not state: log entries kv_apply() found malformed (answered with an
     * error, nothing changed). Local to this process. */
    uint64_t malformed_ops;
    /* Not state: a snapshot being written in slices (kv/snapshot.h), NULL
     * if none. */
    struct kv_slicer *slicer;
    /* Not state: flushes and restores that handed the store's records to
     * the walk of a snapshot being sliced (kv_snapshot_take_records). */
    uint64_t records_handed_to_slicer;
};

/* What INFO reports. data_size is the same on every replica with the same
 * state; memory_size depends on the table's history and is local. */
struct kv_stats {
    uint64_t key_count;
    uint64_t data_size;
    uint64_t memory_size;
    uint64_t slot_count;
    uint64_t malformed_ops;    /* log entries apply found malformed */
    uint64_t expires_count;    /* keys with an expiry */
    uint64_t expired_keys;     /* keys removed by expiry (kv->expired_keys) */
    uint64_t session_count;    /* kv/session.h */
    uint64_t sessions_expired; /* ended by expiry in this process */
    uint64_t lock_count;
    uint64_t group_count;
};

/* The default limits: 64 KiB keys, 1 MiB values, hash seed 0. */
struct kv_config kv_config_default(void);

/* Initialize an empty store. Returns -COHORT_EINVAL if a limit is out of
 * range, -COHORT_ENOMEM if the first table cannot be allocated. */
int kv_init(struct kv *kv, const struct kv_config *config);
void kv_deinit(struct kv *kv);
/* Remove every key, user, session and address and set op to 0; keeps the
 * config (and bumps kv->addresses_changes). */
void kv_clear(struct kv *kv);
/* Remove every key (FLUSHALL), as a change made by kv->op (a del event
 * per key, in key order): keeps the users and op. O(slots + keys):
 * one free() per record and per index node, then the table shrinks to
 * KV_SLOT_COUNT_MIN slots. */
void kv_flush(struct kv *kv);

static inline const uint8_t *kv_record_key(const struct kv_record *r)
{
    return r->data;
}

static inline const uint8_t *kv_record_value(const struct kv_record *r)
{
    return r->data + r->key_size;
}

/* The record of key, or NULL. Valid until the next change to the store. */
const struct kv_record *kv_get(const struct kv *kv, const uint8_t *key,
                               size_t key_size);

/* Create key with value, or replace its value, as a change made by op, and
 * raise kv->op to op. Preconditions (asserted): sizes within the config's
 * limits, op >= 1 and op >= kv->op (ops are applied in order); value does
 * not point into the store. Returns 0, or -COHORT_ENOMEM with the store
 * unchanged. */
int kv_put(struct kv *kv, const uint8_t *key, size_t key_size,
           const uint8_t *value, size_t value_size, uint64_t op);

/* Insert a record with explicit metadata, as restore does (after setting
 * kv->op). Returns 0, -COHORT_EEXIST if the key is present, -COHORT_EINVAL
 * if a size is over the limits or the metadata breaks invariant (3), or
 * -COHORT_ENOMEM; the store is unchanged on error. */
int kv_insert(struct kv *kv, const uint8_t *key, size_t key_size,
              const uint8_t *value, size_t value_size, uint64_t version,
              uint64_t create_op, uint64_t mod_op);

/* Set key's expiry (0: none). Returns false if key is absent. Does not count
 * as a change of the key (version and mod_op stay), as in Redis, where
 * EXPIRE does not touch the value; the state hash does change. */
bool kv_expire_set(struct kv *kv, const uint8_t *key, size_t key_size,
                   uint64_t expire_at_ms);

/* Whether rec has expired at log time now_ms. */
static inline bool kv_record_expired(const struct kv_record *rec,
                                     uint64_t now_ms)
{
    return rec->expire_at_ms != 0 && rec->expire_at_ms <= now_ms;
}

/* Remove key, as a change made by kv->op. Returns true if it was
 * present. */
bool kv_del(struct kv *kv, const uint8_t *key, size_t key_size);
/* kv_del() of a key whose expiry passed: its event says expire. */
bool kv_del_expired(struct kv *kv, const uint8_t *key, size_t key_size);

/* An order-independent hash of every record's key, value, version, create op
 * and mod op, of the users once the acl is initialized, of the
 * sessions while there are any, and of the address table while it has an
 * entry (not of kv->op,
 * the table layout or the seed). Equal states
 * give equal hashes on every replica; O(1), kept up to date by each change. */
uint64_t kv_state_hash(const struct kv *kv);

void kv_stats(const struct kv *kv, struct kv_stats *stats);

/* Table bytes counted per key by kv_used_memory(): two slots, about what
 * the table holds per key between its growth and shrink points. */
#define KV_SLOT_BYTES_PER_KEY (2 * sizeof(struct kv_slot))

/* Size the table for keys keys up front (a restore knows its count), so
 * that it does not double its way there, moving every record each time.
 * Local: the table's size is layout, not state. Returns 0, or
 * -COHORT_ENOMEM (keys over KV_RESERVE_KEYS_MAX, or no memory) with the
 * table unchanged. */
#define KV_RESERVE_KEYS_MAX (1ull << 30)
int kv_reserve(struct kv *kv, uint64_t keys);
/* kv_reserve(kv, keys) only if the table is full (the next new key would
 * make it double), so that a caller who learns in stages how many keys
 * are coming (a restore, kv/snapshot.c) grows the table when it must, to
 * its best guess then, rather than at every doubling. Returns 0 if the
 * table has room for a key, else kv_reserve()'s result: on an error the
 * table is unchanged, and a table still full (also when keys fit it
 * already) is doubled by the next insert as usual. */
int kv_reserve_when_full(struct kv *kv, uint64_t keys);

/* The store's accounted memory: every record (its header, key and value)
 * plus KV_SLOT_BYTES_PER_KEY per key. A function of the keys and values
 * only (not of the table's history or the allocator), so it is the same on
 * every replica with the same state: what maxmemory compares with. */
uint64_t kv_used_memory(const struct kv *kv);
/* The share of kv_used_memory() of one record of these sizes. */
uint64_t kv_record_cost(size_t key_size, size_t value_size);

/* SCAN's step: call fn on every record whose home slot is cursor's bucket
 * (cursor & (slot_count - 1)), then return the next cursor, 0 after the
 * last bucket. The cursor counts buckets in reverse-binary order, as Redis's
 * dictScan: a key present from the first call to the last is visited at
 * least once even if the table doubles or halves between calls (a key's
 * bucket depends only on its hash and the mask; linear probing keeps every
 * record in the run of full slots that starts at its home slot, so the
 * bucket's records are found by walking that run). Any 64-bit cursor is
 * accepted. fn must not change the store. */
typedef void (*kv_scan_fn)(void *ctx, const struct kv_record *r);
uint64_t kv_scan(const struct kv *kv, uint64_t cursor, kv_scan_fn fn,
                 void *ctx);

/* The first record at or after slot (random & mask), wrapping; NULL if the
 * store is empty. For RANDOMKEY (not uniform, as Redis's is not). */
const struct kv_record *kv_random(const struct kv *kv, uint64_t random);

/* Whole-state check of invariants (1)-(5), O(n): for tests and
 * DEBUG_ASSERT. */
bool kv_invariants_hold(const struct kv *kv);

#endif
