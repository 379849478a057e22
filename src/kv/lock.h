/* lock — locks with fencing tokens, held by sessions: the lock table
 * (kept in struct kv_sessions, kv/session.h, so that it shares the
 * sessions' snapshot section and state hash) and its changes. The commands
 * are in kv/session_cmd.c.
 *
 * A lock is a FIFO queue of sessions: the first holds it, the others wait
 * in the order they asked. A grant's fencing token is the op that granted
 * it, so tokens strictly increase across every lock and every grant, and a
 * holder's token is current exactly while it is queue[0]'s. Releasing
 * (UNLOCK, or the session's end by CLOSE or expiry) grants the next
 * waiter in that same op.
 *
 * Invariants: (1) queue[0].token != 0 and every other entry's token is 0;
 * (2) a session appears at most once per queue, and every entry's session
 * exists (the session's end removes it everywhere); (3) no lock has an
 * empty queue; (4) each digest is lock_digest() of its lock.
 * Lookups are linear in the number of locks (bounded by KV_LOCKS_MAX):
 * enough for coordination, where locks number in the thousands.
 */
#ifndef COHORT_KV_LOCK_H
#define COHORT_KV_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "kv/session.h"

#define KV_LOCKS_MAX 100000u
#define KV_LOCK_WAITERS_MAX 10000u
/* COHORT.LOCK ... WAIT ms: the longest a member holds the answer (1 h). */
#define KV_LOCK_WAIT_MS_MAX 3600000u

/* The lock named name, or NULL. */
struct kv_lock *kv_lock_find(struct kv_sessions *t, const uint8_t *name,
                             size_t name_size);

enum kv_lock_result {
    KV_LOCK_GRANTED, /* session holds it: *token is its token */
    KV_LOCK_QUEUED,  /* session waits (wait true) */
    KV_LOCK_BUSY,    /* held by another and wait false: nothing changed */
    KV_LOCK_FULL,    /* KV_LOCKS_MAX or KV_LOCK_WAITERS_MAX reached */
};

/* session asks for the lock as op (session exists: the caller checked).
 * Already holding: GRANTED with its old token; already waiting: QUEUED. */
enum kv_lock_result kv_lock_acquire(struct kv_sessions *t, const uint8_t *name,
                                    size_t name_size, uint64_t session,
                                    bool wait, uint64_t op, uint64_t *token);
/* session leaves the lock's queue (releasing it if it held it, which
 * grants the next waiter at op). Returns whether it was in the queue. */
bool kv_lock_release(struct kv_sessions *t, const uint8_t *name,
                     size_t name_size, uint64_t session, uint64_t op);
/* A session ended at op: it leaves every queue. */
void kv_lock_session_ended(struct kv_sessions *t, uint64_t session,
                           uint64_t op);
/* Where session stands in the queue of the lock name: 0 holds it (*token
 * set), k > 0 the k-th waiter, -1 not queued (or no such lock). */
int64_t kv_lock_position(const struct kv_sessions *t, const uint8_t *name,
                         size_t name_size, uint64_t session, uint64_t *token);
/* The holder's token, 0 if the lock is free. */
uint64_t kv_lock_token(struct kv_sessions *t, const uint8_t *name,
                       size_t name_size);

/* Free every lock (kv_sessions_clear()). */
void kv_lock_clear_all(struct kv_sessions *t);
/* The locks' part of the snapshot encoding (session.h). */
size_t kv_lock_encoded_size(const struct kv_sessions *t);
void kv_lock_encode(const struct kv_sessions *t, struct writer *w);
int kv_lock_decode(struct kv_sessions *t, struct cursor *in,
                   uint32_t name_size_max, const char **why);
bool kv_lock_invariants_hold(const struct kv_sessions *t);

#endif
