/* expire — key expiry for the store's commands: parsing the expiry options
 * of SET and the EXPIRE family, applying them at an op's log timestamp, and
 * answering TTL and PTTL. command.c calls in here; the record's expiry
 * itself (expire_at_ms, counted in kv->expires_count) lives in kv.c.
 *
 * Time is log time: apply() judges every expiry against the op's
 * timestamp_ms (the primary's batch timestamp), never a clock, so every
 * replica decides the same. A relative TTL (EX, PX, EXPIRE, PEXPIRE) travels
 * in the log as its length and becomes timestamp_ms + length when applied;
 * an absolute one (EXAT, PXAT, EXPIREAT, PEXPIREAT) is a Unix time from the
 * client, which the proposer turns into log time before it encodes the
 * body (kv_expire_absolute_to_log(): the same distance from its wall clock
 * as from its log time), and travels as that log time. Inside a
 * transaction, whose commands are parsed again at apply, where no clock
 * may be read, they are refused (kv_expire_absolute()).
 *
 * Invariants: (1) a key expired at an op's timestamp is, for that op and
 * every later one, absent: kv_expire_drop_due() removes the op's keys that
 * are due before the op runs (Redis's lazy expiry, but decided by log time);
 * (2) KV_CMD_EXPIRE_DUE removes only keys whose expiry is <= its own
 * timestamp, so a key whose TTL was changed or cleared after the primary
 * chose it is left alone; (3) a read hides keys due at the store's latest
 * applied timestamp (kv->time_ms) or a later now the caller gives.
 *
 * Body layout additions (format 1): the i64 after the header is present for
 * INCRBY, PEXPIRE, GETEX with KV_SET_PX or KV_SET_PXAT, and SET with
 * KV_SET_PX or KV_SET_PXAT; for expiry it is milliseconds (a length with
 * KV_SET_PX, a log time with KV_SET_PXAT).
 */
#ifndef COHORT_KV_EXPIRE_H
#define COHORT_KV_EXPIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/resp.h"
#include "kv/command.h"
#include "kv/kv.h"

/* Whether w sets an absolute expiry (SET or GETEX with EXAT or PXAT,
 * EXPIREAT or PEXPIREAT): a Unix time in w->delta, in ms. */
bool kv_expire_absolute(const struct kv_write *w);
/* The proposer, before encoding w: an absolute expiry, a Unix time in ms,
 * becomes the log time as far from log_ms as it is from wall_ms (the
 * proposer's clocks now; saturating). Nothing else changes. */
void kv_expire_absolute_to_log(struct kv_write *w, uint64_t wall_ms,
                               uint64_t log_ms);

/* The log time a relative expiry leaves room for: 2^41 ms, 69 years (log
 * time starts at the first primary's monotonic clock, its uptime, and
 * advances with real time). A
 * proposer refuses a relative TTL (EX, PX, SETEX, PSETEX, EXPIRE, PEXPIRE,
 * GETEX EX/PX) over INT64_MAX - this many ms with Redis's "invalid expire
 * time in '<command>' command", as Redis refuses one that overflows when
 * added to the Unix time (2^40.7 ms in 2025), so apply's own overflow
 * check, which knows only the op's type and would name 'set' for SETEX or
 * 'pexpire' for EXPIRE, is not reached by a group younger than that. */
#define KV_EXPIRE_LOG_ROOM_MS (INT64_C(1) << 41)
#define KV_EXPIRE_RELATIVE_MAX_MS (INT64_MAX - KV_EXPIRE_LOG_ROOM_MS)

/* Where a write is proposed (never at apply, which must keep applying what
 * older builds logged): refuse a relative expiry over
 * KV_EXPIRE_RELATIVE_MAX_MS, naming command (the name the client typed,
 * lower case, as Redis names it). -COHORT_EINVAL with the error appended to
 * r; 0 for anything else. */
int kv_expire_check_proposed(const struct kv_write *w, const char *command,
                             struct resp_buf *r);

/* Whether a body of this type and flags carries the i64 after the header. */
bool kv_expire_has_delta(enum kv_command_type type, uint16_t flags);

/* SET's option at argv[*j] if it is EX, PX, EXAT, PXAT or KEEPTTL: returns 1
 * and advances *j past its value, 0 if it is another option, or
 * -COHORT_EINVAL after writing Redis's error. */
int kv_expire_parse_set_option(uint32_t argc, const struct resp_arg *argv,
                               uint32_t *j, struct kv_write *w,
                               struct resp_buf *r);

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, GETEX, SETEX and PSETEX
 * (argv[0] names which; arity checked). Returns 0 or -COHORT_EINVAL after the
 * error. */
int kv_expire_parse(uint32_t argc, const struct resp_arg *argv,
                    struct kv_write *w, struct resp_buf *r);

/* Header check for the expiry types and SET's expiry flags: NULL or why. */
const char *kv_expire_check_header(const struct kv_command *c);

/* Remove the keys c names that are due at now_ms (invariant 1). */
void kv_expire_drop_due(struct kv *kv, const struct kv_command *c,
                        uint64_t now_ms);

/* SET's expiry: the expire_at_ms for its flags and delta at now_ms (0 if
 * none), or false if the time overflows (write nothing then). */
bool kv_expire_set_time(const struct kv_command *c, uint64_t now_ms,
                        uint64_t *at_ms);

/* Apply PEXPIRE, PERSIST, GETEX or EXPIRE_DUE; writes the reply. */
void kv_expire_apply(struct kv *kv, uint64_t now_ms, struct kv_command *c,
                     struct resp_buf *r);

/* The primary's removal batch: keys due at now_ms, found in O(batch) from
 * kv->expiry, at most KV_EXPIRE_BATCH_KEYS of them and (but for the first)
 * at most KV_EXPIRE_BATCH_BYTES of encoded keys (less when max-key-size is
 * small, so the body stays within the log's limit). Fills keys and an
 * EXPIRE_DUE write w naming them; returns how many (0: none due). The keys
 * borrow the records: encode w before the store changes. */
#define KV_EXPIRE_BATCH_KEYS 256u
#define KV_EXPIRE_BATCH_BYTES (16u * 1024u)
uint32_t kv_expire_batch(const struct kv *kv, uint64_t now_ms,
                         struct resp_arg keys[KV_EXPIRE_BATCH_KEYS],
                         struct kv_write *w);

/* Whether a read answered from the applied state (log time kv->time_ms)
 * gives the same answer as at the later log time now_ms: no key it looks
 * at (argv[1..argc) if keyed, else any key) expires in (time_ms, now_ms].
 * A primary answers a linearizable read only once this holds, waiting for
 * an op stamped at or after the expiry to commit (see docs/PROTOCOL.md),
 * so what a read hides stays hidden across a failover. */
bool kv_expire_read_settled(const struct kv *kv, uint64_t now_ms, bool keyed,
                            uint32_t argc, const struct resp_arg *argv);

/* TTL (ms false) or PTTL (ms true) of key at now_ms, as Redis answers:
 * -2 if missing or expired, -1 without expiry. */
void kv_expire_query_ttl(const struct kv *kv, uint64_t now_ms,
                         const struct resp_arg *key, bool ms,
                         struct resp_buf *r);

#endif
