/* kvsm — the simulator's state machine: a tiny deterministic key-value store
 * of int64 values over a small key space, behind struct cohort_sm.
 *
 * A command body is 18 bytes, little-endian:
 *     0  u8  kind   enum kvsm_kind
 *     1  u8  key    < KVSM_KEYS
 *     2  i64 arg    SET: value; CAS: expected
 *    10  i64 arg2   CAS: new value
 * A reply is 9 bytes: u8 result, i64 value (see enum kvsm_kind for what each
 * command answers). A body that does not parse answers KVSM_RESULT_BAD and
 * changes nothing: apply() never fails, because every replica must do the
 * same thing with the same bytes.
 *
 * The state is the map alone; the client table belongs to the core. The
 * snapshot is the map's bytes (kvsm_encode / kvsm_restore) and kvsm_hash()
 * names the state, so replicas and the reference model can be compared by one
 * number. The semantics are the ones sim/linearize.h checks against (Redis:
 * CAS never matches an absent key; an INCR that would overflow fails).
 */
#ifndef COHORT_SIM_KVSM_H
#define COHORT_SIM_KVSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h"

#define KVSM_KEYS 8
#define KVSM_BODY_SIZE 18
#define KVSM_REPLY_SIZE 9
#define KVSM_STATE_SIZE (KVSM_KEYS * 9)

enum kvsm_kind {
    KVSM_GET = 1,  /* result: 1 found, 0 absent; value (0 if absent) */
    KVSM_SET = 2,  /* result 1; value 0 */
    KVSM_CAS = 3,  /* present and == arg: store arg2, result 1; else 0;
                      value: the value after (0 if absent) */
    KVSM_INCR = 4, /* add arg; absent counts as 0; result 1, value: the
                      new value; on overflow result 0 and nothing changes */
    KVSM_DEL = 5,  /* result: 1 if it existed, 0 if not; value 0 */
};

#define KVSM_RESULT_BAD 0xff

struct kvsm_cmd {
    uint8_t kind;
    uint8_t key;
    int64_t arg;
    int64_t arg2;
};

struct kvsm_reply {
    uint8_t result;
    int64_t value;
};

struct kvsm {
    int64_t value[KVSM_KEYS];
    bool present[KVSM_KEYS];
};

void kvsm_init(struct kvsm *k);

void kvsm_cmd_encode(const struct kvsm_cmd *cmd, uint8_t out[KVSM_BODY_SIZE]);
/* False if the body is not a well-formed command. */
bool kvsm_cmd_decode(const uint8_t *body, size_t size, struct kvsm_cmd *cmd);
void kvsm_reply_encode(const struct kvsm_reply *reply,
                       uint8_t out[KVSM_REPLY_SIZE]);
bool kvsm_reply_decode(const uint8_t *data, size_t size,
                       struct kvsm_reply *reply);

/* Apply one command body; writes the reply (KVSM_REPLY_SIZE bytes, reply_max
 * must allow it) and returns its size. */
size_t kvsm_apply(struct kvsm *k, const uint8_t *body, size_t body_size,
                  uint8_t *reply, size_t reply_max);
/* The same, as the answer to a decoded command. */
struct kvsm_reply kvsm_exec(struct kvsm *k, const struct kvsm_cmd *cmd);

/* The snapshot: KVSM_STATE_SIZE bytes. Restore returns false (and leaves k
 * unchanged) for bytes that are not a state. */
void kvsm_encode(const struct kvsm *k, uint8_t out[KVSM_STATE_SIZE]);
bool kvsm_restore(struct kvsm *k, const uint8_t *data, size_t size);

/* A hash of the state; equal states hash equal. */
uint64_t kvsm_hash(const struct kvsm *k);

/* cohort_sm.apply for a struct kvsm passed as ctx. */
size_t kvsm_sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                     const uint8_t *body, size_t body_size, uint8_t *reply,
                     size_t reply_size_max);

const char *kvsm_kind_name(uint8_t kind);

#endif
