/* session — the store's sessions: their table (which also holds the
 * locks, kv/lock.h, and groups, kv/group.h, of sessions), its share of the
 * state hash, and its snapshot encoding. The commands that change it (OPEN,
 * KEEPALIVE, CLOSE, the primary's EXTEND and EXPIRE, SET ... SESSION) are
 * in session_cmd.c; this module owns only the data.
 *
 * A session is {id, ttl_ms, deadline_ms, ephemeral keys}. Its id is the op
 * that opened it, so ids are unique, nonzero and increase with the log; the
 * table is an array sorted by id (an open appends) and found by binary
 * search. deadline_ms is a log time: apply sets it from an op's timestamp,
 * never from a clock, so every replica holds the same deadlines.
 *
 * An ephemeral key is remembered as {key, mod_op}: the key as the session's
 * SET ... SESSION left it. The session's end deletes the key only if its
 * record still has that mod_op; any later write of the key by another
 * command (a plain SET, INCR, APPEND, a SET ... SESSION of another session)
 * moves mod_op and so makes it an ordinary key again, as etcd's put
 * without a lease detaches a key. A key written twice by its session is
 * remembered once.
 *
 * Invariants: (1) ids strictly increase along items[]; (2) each session's
 * digest is session_digest() of its contents and digest_sum their sum;
 * (3) a session names each key at most once; (4) count <= KV_SESSIONS_MAX
 * and each key_count <= KV_SESSION_KEYS_MAX; ttl_ms within
 * [KV_SESSION_TTL_MIN_MS, KV_SESSION_TTL_MAX_MS].
 */
#ifndef COHORT_KV_SESSION_H
#define COHORT_KV_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_SESSION_TTL_MIN_MS 100u
#define KV_SESSION_TTL_MAX_MS (24u * 3600u * 1000u)
#define KV_SESSIONS_MAX 100000u
#define KV_SESSION_KEYS_MAX 10000u

struct kv_session_key {
    uint8_t *key;
    uint32_t key_size;
    uint64_t mod_op; /* the record's mod_op when the session wrote it */
};

struct kv_session {
    uint64_t id; /* the op that opened it */
    uint64_t ttl_ms;
    uint64_t deadline_ms; /* log time; expired once an op's time reaches it */
    uint64_t digest;
    struct kv_session_key *keys;
    uint32_t key_count;
    uint32_t key_capacity;
};

/* A lock's queue entry: the session, and the fencing token it was granted
 * (the op of the grant), 0 while it waits. */
struct kv_lock_entry {
    uint64_t session;
    uint64_t token;
};

/* A lock (kv/lock.h): queue[0] holds it (token != 0), the rest wait in
 * the order they asked. A lock with an empty queue is not kept. */
struct kv_lock {
    uint8_t *name;
    uint32_t name_size;
    struct kv_lock_entry *queue;
    uint32_t count;
    uint32_t capacity;
    uint64_t digest;
};

/* A group member (kv/group.h): its name, the session that holds it, and
 * the data it joined with. */
struct kv_group_member {
    uint8_t *name;
    uint8_t *data;
    uint32_t name_size;
    uint32_t data_size;
    uint64_t session;
};

/* A group: its members in the order they joined and its view number (the
 * op of its last membership change). A group with no member is not kept. */
struct kv_group {
    uint8_t *name;
    uint32_t name_size;
    uint32_t count;
    uint32_t capacity;
    uint64_t view;
    struct kv_group_member *members;
    uint64_t digest;
};

struct kv_sessions {
    struct kv_session *items; /* sorted by id */
    uint64_t count;
    uint64_t capacity;
    /* The locks (kv/lock.h): every queue entry names a live session, so a
     * store with locks has sessions and their snapshot section. */
    struct kv_lock *locks;
    uint64_t lock_count;
    uint64_t lock_capacity;
    /* The groups (kv/group.h): every member names a live session. */
    struct kv_group *groups;
    uint64_t group_count;
    uint64_t group_capacity;
    /* The sum of the sessions', locks' and groups' digests. */
    uint64_t digest_sum;
    /* Not state: sessions this process saw end by expiry. */
    uint64_t expired;
    /* Not state: told of each new view of a group as it is made, inside
     * apply (g->count is 0 for a group that has just emptied and is about
     * to go). kv_init() points it at kv/changes.h, for watches. */
    void (*view_hook)(void *ctx, const struct kv_group *g, uint64_t op);
    void *view_hook_ctx;
};

void kv_sessions_init(struct kv_sessions *t);
/* Free every session; keeps the counters that are not state. */
void kv_sessions_clear(struct kv_sessions *t);
void kv_sessions_deinit(struct kv_sessions *t);

/* The session with this id, or NULL. Valid until the next change. */
struct kv_session *kv_sessions_find(struct kv_sessions *t, uint64_t id);

/* Append a session (id above every present one, asserted). Returns 0 or
 * -COHORT_ENOMEM with the table unchanged. */
int kv_sessions_add(struct kv_sessions *t, uint64_t id, uint64_t ttl_ms,
                    uint64_t deadline_ms);
/* Remove the session at index i (its keys are the caller's business). */
void kv_sessions_remove(struct kv_sessions *t, uint64_t i);

/* Remember key as written by session s at mod_op (replacing an earlier
 * entry for the key). Returns 0, -COHORT_ENOMEM or -COHORT_ENOSPC (the
 * session has KV_SESSION_KEYS_MAX keys), the session unchanged then. */
int kv_sessions_attach(struct kv_sessions *t, struct kv_session *s,
                       const uint8_t *key, size_t key_size, uint64_t mod_op);
/* Set s's deadline, keeping the digests true. */
void kv_sessions_set_deadline(struct kv_sessions *t, struct kv_session *s,
                              uint64_t deadline_ms);

/* The encoding for snapshots: u64 count, then per session u64 id, u64
 * ttl_ms, u64 deadline_ms, u32 key_count, then per key u32 size, the key,
 * u64 mod_op; then u64 lock_count, per lock u32 name size, the name, u32
 * queue count, per entry u64 session, u64 token; then u64 group_count,
 * per group u32 name size, the name, u64 view, u32 member count, per
 * member u32 name size, the name, u32 data size, the data, u64 session;
 * little-endian. */
size_t kv_sessions_encoded_size(const struct kv_sessions *t);
void kv_sessions_encode(const struct kv_sessions *t, uint8_t *out, size_t size);
/* Decode untrusted bytes into an empty table. Returns 0, -COHORT_ENOMEM, or
 * -COHORT_ECORRUPT with *why saying what is wrong (the table is cleared). */
int kv_sessions_decode(struct kv_sessions *t, const uint8_t *data, size_t size,
                       uint32_t key_size_max, const char **why);

/* Whole-table check of the invariants, O(n): tests and DEBUG_ASSERT. */
bool kv_sessions_invariants_hold(const struct kv_sessions *t);

#endif
