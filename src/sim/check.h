/* sim/check — the simulator's safety checks and its reference model.
 *
 * It keeps, for every op the group has committed, the entry's checksum and
 * contents, learned from whichever replica first reports the op at or below
 * its commit number; and a reference state machine that applies the
 * committed ops in op order, with the client table's rules (a retry of a
 * request already applied is not applied again; a request_no > 1 from an
 * unknown client is not applied), recording per op the state hash after it
 * and the reply it gave.
 *
 * Checks (the first failure is kept, with the step and a description):
 *  agreement  no two replicas hold different entries at a committed op;
 *  commit     a replica's commit number never goes back while it runs, and
 *             applied <= commit <= op;
 *  primary    at most one replica acts as primary in any view;
 *  apply      every op a replica's state machine applies is the committed
 *             entry at that op, is not a retry already applied, and leaves
 *             the same state as the reference model; a restored snapshot
 *             equals the reference state at its op;
 *  reply      every REPLY_OK equals the reference's reply for the op it
 *             names, which must be the op that applied that request;
 *  session    no session ends by expiry less than its TTL of log time after
 *             the first op of the view that expires it (a new primary
 *             extends every session before it expires any: the failover's
 *             time is not held against a session kept alive), nor less
 *             than its TTL after its last OPEN or KEEPALIVE;
 *  lock       per lock, every grant's fencing token is the op that granted
 *             it and above the lock's previous token; at every op at most
 *             one session holds each lock (kv/lock.h's invariants), and
 *             every replica agrees (the apply check's state hash).
 * Checks that need an op the reference has not reached yet wait for it;
 * check_finish() fails those still waiting.
 */
#ifndef COHORT_SIM_CHECK_H
#define COHORT_SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/entry.h"
#include "core/replica.h"
#include "sim/kvsm.h"

#define CHECK_BODY_MAX KVSM_LOG_BODY_MAX
#define CHECK_DETAIL_MAX 1024

enum check_ref_status {
    REF_NONE = 0,
    REF_APPLIED = 1,   /* the state machine ran it */
    REF_DUPLICATE = 2, /* a retry of a request already applied */
    REF_EXPIRED = 3,   /* an unknown client's request_no > 1: not applied */
    REF_NOOP = 4,
};

struct check_entry {
    bool known;
    uint32_t learned_from;
    struct entry_header h;
    uint8_t body[CHECK_BODY_MAX];
    uint64_t body_hash;
    /* Reference model, once it reached this op. */
    uint8_t ref_status;
    uint64_t state_hash;
    uint8_t reply[KVSM_REPLY_MAX];
    uint32_t reply_size;
};

struct check_client {
    uint64_t client_id;
    uint64_t request_no;
    uint64_t op;
};

struct check_wait {
    uint8_t kind; /* enum check_wait_kind in check.c */
    uint32_t replica;
    uint64_t op;
    uint64_t step;
    uint64_t client_id;
    uint64_t request_no;
    uint64_t timestamp_ms;
    uint64_t body_hash;
    uint64_t hash; /* state hash (apply, restore) */
    uint8_t data[KVSM_REPLY_MAX];
    uint32_t size; /* KVSM_REPLY_MAX + 1: longer (not kept) */
};

/* The last fencing token seen per lock (the coordination workload's
 * locks; names up to 8 bytes). */
#define CHECK_LOCKS_MAX 16
struct check_lock {
    uint8_t name[8];
    uint32_t size;
    uint64_t token;
};

/* A session of the reference model before an op: id, TTL, deadline. */
struct check_session {
    uint64_t id;
    uint64_t ttl_ms;
    uint64_t deadline_ms;
};

struct check {
    struct check_entry *entries; /* entries[op], op >= 1 */
    uint64_t entry_capacity;
    uint64_t commit_max; /* highest op any replica reported committed */
    uint64_t ref_op;     /* the reference has applied up to here */
    struct kvsm ref;
    struct check_client *clients;
    uint64_t client_count;
    uint64_t client_capacity;
    uint32_t *primary_of_view; /* UINT32_MAX: none seen */
    uint64_t view_capacity;
    struct check_wait *waits;
    uint64_t wait_count;
    uint64_t wait_capacity;
    /* The step being checked, for reports. */
    uint64_t step;
    uint64_t now_ms;
    /* First failure. */
    bool failed;
    char what[32];
    uint64_t failed_step;
    uint64_t failed_ms;
    char detail[CHECK_DETAIL_MAX];
    /* Counters. */
    uint64_t replies_checked;
    uint64_t applies_checked;
    /* Coordination (the reference model's sessions and locks). */
    /* The term (epoch, view; each epoch's views start at 0) of the last op
     * the reference saw, and the timestamp of its first op in that term. */
    uint32_t epoch;
    uint64_t view;
    uint64_t view_start_ms;
    struct check_session *sessions;
    uint64_t session_count;
    uint64_t session_capacity;
    struct check_lock locks[CHECK_LOCKS_MAX];
    uint32_t lock_count;
    uint64_t sessions_expired;
    uint64_t lock_grants;
};

void check_init(struct check *c);
void check_deinit(struct check *c);

/* Record a failure (only the first is kept). */
void check_fail(struct check *c, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replica `replica` holds e at e->h.op, at or below its commit number. */
void check_committed_entry(struct check *c, uint32_t replica,
                           const struct entry *e);
/* Some replica reports commit number op. */
void check_commit_number(struct check *c, uint64_t op);
/* replica is primary (NORMAL) in view. */
/* Views a simulation can reach; a primary of a higher view fails the check
 * (views come from view changes only: nothing in a simulation jumps). */
#define CHECK_VIEWS_MAX (UINT64_C(1) << 24)
void check_primary(struct check *c, uint32_t replica, uint64_t view);
/* The state machine of replica applied op; state_hash is its state after. */
void check_apply(struct check *c, uint32_t replica, uint64_t op,
                 uint64_t timestamp_ms, const uint8_t *body, size_t size,
                 const uint8_t *reply, size_t reply_size, uint64_t state_hash);
/* The state machine of replica was restored to a snapshot taken at op. */
void check_restore(struct check *c, uint32_t replica, uint64_t op,
                   uint64_t state_hash);
/* A REPLY_OK left replica. */
void check_reply(struct check *c, uint32_t replica, uint64_t client_id,
                 uint64_t request_no, uint64_t op, const uint8_t *data,
                 size_t size);
/* Advance the reference model over newly known ops and run the checks that
 * were waiting for them. Call after each step. */
void check_advance(struct check *c);
/* The end of a run: every waiting check must have run. */
void check_finish(struct check *c);

/* The reference state hash after op (op <= ref_op), 0 for op 0 is the empty
 * state's hash. */
uint64_t check_state_hash(const struct check *c, uint64_t op);
const struct check_entry *check_entry_at(const struct check *c, uint64_t op);

#endif
