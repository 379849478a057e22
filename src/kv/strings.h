/* strings — the string and keyspace commands Redis users expect beyond SET,
 * GET and INCR: their table, parsing, log encoding checks, apply and query.
 * command.c finds a command here when its own table does not have it, and
 * hands the parsing, apply and query of these to this module.
 *
 * Writes (each one log op; Redis's replies and error texts):
 *     GETDEL key                the value (or nil), then deletes the key
 *     GETSET key value          SET key value GET (the same log op)
 *     SETNX key value           :1 if it set, :0 if the key exists
 *                               (MSETNX's log op with one pair)
 *     MSETNX key value [...]    :1 and sets every pair if no key exists,
 *                               else :0 and sets nothing
 *     APPEND key value          :the new length (creates the key)
 *     SETRANGE key offset value :the new length; pads with zero bytes.
 *                               offset + len(value) must be within
 *                               max-value-size (Redis: 512 MiB, which is
 *                               KV_VALUE_SIZE_LIMIT, the largest setting)
 *     INCRBYFLOAT key incr      the new value as a bulk string
 *     UNLINK key [key ...]      DEL's log op (nothing is freed lazily)
 *     COPY src dst [DB 0] [REPLACE]   :1 if copied, :0 if not
 *     RENAME src dst            +OK, or "ERR no such key"
 *     RENAMENX src dst          :1, :0 if dst exists, or "ERR no such key"
 *     FLUSHDB [ASYNC|SYNC], FLUSHALL [ASYNC|SYNC]   +OK: deletes every key
 *                               (not the users); always synchronous
 * Reads: STRLEN key, GETRANGE key start end (and its old name SUBSTR).
 *
 * Versions follow kv.h: the destination of COPY and RENAME, and the key of
 * APPEND, SETRANGE and INCRBYFLOAT, is written as SET writes it (version + 1
 * if it existed, else a new key at version 1); RENAME deletes its source.
 * RENAME of a key onto itself and SETRANGE with an empty value change
 * nothing, as in Redis.
 *
 * INCRBYFLOAT is computed by apply from the stored value, never proposed:
 * only apply sees the value the op really follows. The arithmetic is Redis's
 * (strtold, long double addition, "%.17Lf" with trailing zeros cut, nan and
 * inf refused), which is deterministic for one binary on one architecture
 * in the C locale: every member of a group must run the same build on the
 * same architecture (x86-64's 80-bit long double; aarch64's 128-bit one
 * gives other digits for some sums).
 *
 * Expiry (Redis's rules; SETEX and PSETEX are SET with EX/PX, parsed in
 * expire.c): GETSET clears the TTL as SET does; SETNX and MSETNX create
 * keys without one; APPEND, SETRANGE and INCRBYFLOAT keep the key's TTL;
 * COPY gives the destination the source's expire_at, RENAME moves it (the
 * destination's own TTL is dropped); GETDEL and FLUSHALL remove it with
 * the record. An expired key reads as missing here (RENAME of one: no such
 * key; MSETNX: absent).
 *
 * Log bodies are command.h's format; these types' arguments are the
 * command's own, in order, numbers as decimal text (SETRANGE's offset,
 * INCRBYFLOAT's increment), so apply checks them again: a hostile body gets
 * an error reply and changes nothing.
 */
#ifndef COHORT_KV_STRINGS_H
#define COHORT_KV_STRINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/resp.h"
#include "kv/command.h"
#include "kv/kv.h"

/* The ids of this module's table start here (command.c's are below). */
#define KV_STRINGS_ID_FIRST 100
/* Redis's MAX_LONG_DOUBLE_CHARS: the longest float text INCRBYFLOAT reads. */
#define KV_FLOAT_TEXT_MAX 5120u

/* The command named name in this module's table, or NULL. */
const struct kv_command_def *kv_strings_find(const struct resp_arg *name);

static inline bool kv_strings_owns(const struct kv_command_def *def)
{
    return def->id >= KV_STRINGS_ID_FIRST && def->id < 200; /* session_cmd */
}

/* Fill w for a write of this module's table whose arity is checked; on a
 * client error append Redis's reply to r and return -COHORT_EINVAL. */
int kv_strings_parse(const struct kv_config *config,
                     const struct kv_command_def *def, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *r);

/* What argument i of a body of type is, for the limit checks: a key, a
 * value to store, or neither. */
enum kv_arg_role kv_strings_arg_role(enum kv_command_type type, uint32_t i);

/* Check the header of a decoded body of one of this module's types: NULL
 * if it is well formed, else what is wrong. */
const char *kv_strings_check_header(const struct kv_command *c);

/* kv_command_growth() of one of this module's writes. */
uint64_t kv_strings_growth(const struct kv *kv, const struct kv_write *w);

/* Apply a decoded write of one of this module's types as op. */
void kv_strings_apply(struct kv *kv, uint64_t op, struct kv_command *c,
                      struct resp_buf *r);

/* Answer a read of this module's table whose arity is checked, at log
 * time now_ms (a key expired then is missing, kv/expire.h). */
void kv_strings_query(const struct kv *kv, uint64_t now_ms,
                      const struct kv_command_def *def, uint32_t argc,
                      const struct resp_arg *argv, struct resp_buf *r);

#endif
