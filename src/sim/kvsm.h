/* kvsm — the simulator's state machine: the real store (src/kv) behind
 * struct cohort_sm, driven through a tiny command vocabulary that the
 * workload draws and the linearizability checker models: GET, SET, CAS,
 * INCR and DEL of int64 values over KVSM_KEYS keys, and FLUSHALL.
 *
 * Three forms of the same command travel through a run:
 *   1. the client's request to a host (19 bytes, little-endian):
 *          0  u8  kind   enum kvsm_kind
 *          1  u8  key    < KVSM_KEYS
 *          2  u8  form   enum kvsm_form
 *          3  i64 arg    SET: value; CAS: expected; INCR: increment
 *         11  i64 arg2   CAS: new value
 *   2. the log body the host proposes, as the RESP server does: the
 *      command's argv through kv_command_parse() and kv_command_encode()
 *      (kvsm_body()). Key i is "k<i>", values are decimal. KVSM_FORM_PLAIN
 *      is the store's own command (SET, CAS, INCRBY, DEL); KVSM_FORM_TXN
 *      the same effect as a transaction (COHORT.EXEC of the command; CAS as
 *      COHORT.TXN with a VALUE compare), so that both paths of the store's
 *      apply run under the simulator's faults. A GET through the log is
 *      always COHORT.EXEC of GET (the store has no GET write).
 *   3. the reply: RESP2 bytes from kv_apply() (a write) or kv_query() (a
 *      read by read index), decoded for the checker by kvsm_reply_decode()
 *      knowing the command.
 *
 * apply() and snapshots are the store's (kv_apply, kv_snapshot_write,
 * kv_restore); kvsm_hash() is kv_state_hash(), so replicas and the
 * reference model (sim/check.c, another kvsm) are compared by one number.
 * The semantics the checker models are Redis's: CAS never matches an absent
 * key; an INCR that would overflow fails and changes nothing.
 */
#ifndef COHORT_SIM_KVSM_H
#define COHORT_SIM_KVSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h"
#include "common/err.h"
#include "kv/kv.h"

#define KVSM_KEYS 8
#define KVSM_BODY_SIZE 19     /* the request (form 1) */
#define KVSM_LOG_BODY_MAX 160 /* the log body (form 2) of any command */
#define KVSM_REPLY_MAX 64     /* any reply (form 3) of these commands */

enum kvsm_kind {
    KVSM_GET = 1,  /* result: 1 found, 0 absent; value (0 if absent) */
    KVSM_SET = 2,  /* result 1; value 0 */
    KVSM_CAS = 3,  /* present and == arg: store arg2, result 1; else 0 */
    KVSM_INCR = 4, /* add arg; absent counts as 0; result 1, value: the
                      new value; on overflow result 0 and nothing changes */
    KVSM_DEL = 5,  /* result: 1 if it existed, 0 if not; value 0 */
    /* The volatile kinds (workload's volatile_pct): expiry and pub/sub.
     * Their keys are the KVSM_VOLATILE_KEYS after the checked ones, which
     * only they touch; the linearizability checker does not model them
     * (time decides their answers), but the reference model checks every
     * reply and every replica's state after every op, so a replica that
     * judges expiry by anything but the op's log time is caught. */
    KVSM_SETPX = 6,   /* SET k arg PX arg2 (1..); result 1 */
    KVSM_GETV = 7,    /* GET of a volatile key, through the log */
    KVSM_PUBLISH = 8, /* PUBLISH c<key> arg; result 1 (the reply is :0) */
    /* A transaction's atomicity: PAIRSET writes arg to the keys "pa" and
     * "pb" in one COHORT.EXEC; PAIRGET reads both in one COHORT.EXEC, and
     * the host fails the run ("atomicity") if it ever sees them differ. */
    KVSM_PAIRSET = 9,  /* result 1 */
    KVSM_PAIRGET = 10, /* result 1; value: pa's (0 if absent) */
    /* The coordination kinds (workload's coord_pct, sim/coord.h): sessions
     * and locks with fencing tokens, on lock names "L<key>", fenced keys
     * "f<key>" and ephemeral keys "e<key>" (key < KVSM_LOCKS). An error
     * reply is result 0. */
    KVSM_SOPEN = 11,  /* COHORT.SESSION OPEN arg2 (ttl-ms); value: the id */
    KVSM_SKEEP = 12,  /* COHORT.SESSION KEEPALIVE arg; 0: the session is
                         gone */
    KVSM_SCLOSE = 13, /* COHORT.SESSION CLOSE arg; value: 1 or 0 */
    KVSM_LOCK = 14,   /* COHORT.LOCK L<key> arg [WAIT if arg2]; value: the
                         token, result 0 if not granted (nil or error) */
    KVSM_UNLOCK = 15, /* COHORT.UNLOCK L<key> arg; value: 1 or 0 */
    KVSM_FENCE = 16,  /* COHORT.FENCE L<key> arg f<key> arg2; 0: refused */
    KVSM_SSET = 17,   /* SET e<key> arg2 SESSION arg: an ephemeral key,
                         deleted when the session ends; 0: no session */
    /* FLUSHALL (workload's flush_pct): every key gone at once; result 1.
     * The linearizability checker sees it as a removal of each checked key
     * with no result to check (lin_kind LIN_CLEAR); it is what takes the
     * store's records from under a snapshot being sliced
     * (kv_snapshot_take_records). key 0. */
    KVSM_FLUSH = 18,
};

#define KVSM_LOCKS 2

static inline bool kvsm_kind_coord(uint8_t kind)
{
    return kind >= KVSM_SOPEN && kind <= KVSM_SSET;
}

#define KVSM_VOLATILE_KEYS 2
#define KVSM_CHANNELS 4

static inline bool kvsm_kind_volatile(uint8_t kind)
{
    return kind >= KVSM_SETPX && kind != KVSM_FLUSH;
}

enum kvsm_form {
    KVSM_FORM_PLAIN = 0,
    KVSM_FORM_TXN = 1,
};

struct kvsm_cmd {
    uint8_t kind;
    uint8_t key;
    uint8_t form;
    int64_t arg;
    int64_t arg2;
};

struct kvsm_reply {
    uint8_t result;
    int64_t value;
};

struct kvsm {
    struct kv kv;
};

/* Whether a PAIRGET's reply shows "pa" and "pb" equal (both absent, or
 * the same value). */
bool kvsm_pair_consistent(const uint8_t *data, size_t size);
/* The mutant BUG_KV_SPLIT_EXEC: PAIRSET's half as the log body of an op of
 * its own: 0 is SET pa, 1 the transaction with pb in both writes (so its
 * reply has the transaction's shape and only the atomicity check sees). */
size_t kvsm_pair_half_body(const struct kvsm_cmd *cmd, int half,
                           uint8_t body[KVSM_LOG_BODY_MAX]);

/* Whether a's and b's retained published messages (kv/history.h: what a
 * subscriber resuming FROM a position receives) agree where both hold
 * them: above the higher floor, up to the lower newest position, the same
 * positions with the same channels and messages, in the same order. If
 * not, *at is the first position where they differ. */
bool kvsm_history_agrees(const struct kvsm *a, const struct kvsm *b,
                         uint64_t *at);

/* An empty store (the process aborts if it cannot be allocated). */
void kvsm_init(struct kvsm *k);
void kvsm_deinit(struct kvsm *k);

void kvsm_cmd_encode(const struct kvsm_cmd *cmd, uint8_t out[KVSM_BODY_SIZE]);
/* False if the request is not a well-formed command. */
bool kvsm_cmd_decode(const uint8_t *data, size_t size, struct kvsm_cmd *cmd);

/* The log body a server proposes for cmd (which must not be a read),
 * into body (KVSM_LOG_BODY_MAX bytes); returns its size. */
size_t kvsm_body(const struct kvsm_cmd *cmd, uint8_t body[KVSM_LOG_BODY_MAX]);

/* The reply a client gets for cmd, sent through the log (read false) or
 * by read index (read true, a GET), decoded; false if it is not one of the
 * replies that command can have. */
bool kvsm_reply_decode(const struct kvsm_cmd *cmd, bool read,
                       const uint8_t *data, size_t size,
                       struct kvsm_reply *reply);

/* cohort_sm.apply for a struct kvsm passed as ctx: kv_apply(). The reply
 * must fit reply_size_max (asserted); an error reply that does not (the
 * coordination commands' errors are sentences) is replaced by
 * "-ERR long <hash of the error>", so the reference and the replicas still
 * compare the whole error. */
size_t kvsm_sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                     const uint8_t *body, size_t body_size, uint8_t *reply,
                     size_t reply_size_max);

/* GET of key by read index: kv_query()'s reply, into reply
 * (KVSM_REPLY_MAX bytes); returns its size. */
size_t kvsm_read(const struct kvsm *k, uint8_t key,
                 uint8_t reply[KVSM_REPLY_MAX]);

/* The snapshot stream: kv_snapshot_write() and kv_restore(). */
int kvsm_snapshot_write(const struct kvsm *k,
                        int (*write)(void *ctx, const void *data, size_t size),
                        void *ctx);
int kvsm_restore(struct kvsm *k,
                 int (*read)(void *ctx, void *data, size_t size, size_t *got),
                 void *ctx, struct cohort_err *err);

/* A hash of the state; equal states hash equal. */
uint64_t kvsm_hash(const struct kvsm *k);
/* kvsm_hash() of an empty store. */
uint64_t kvsm_empty_hash(void);

const char *kvsm_kind_name(uint8_t kind);

#endif
