/* txn — transactions of the store: one log op that runs a list of commands
 * atomically and in order, guarded by compares on keys. It carries both
 * COHORT.TXN (etcd's Txn: compares, then one list or the other) and
 * COHORT.EXEC (what the server sends for MULTI ... EXEC, the compares being
 * the WATCHed keys' revisions).
 *
 * Wire form (argv after the command name), counts in decimal:
 *
 *     COHORT.TXN  <ncmp> <cmp>... <nthen> <cmd>... <nelse> <cmd>...
 *     COHORT.EXEC <ncmp> <cmp>... <nthen> <cmd>...
 *     cmp := <key> EXISTS | <key> MISSING
 *          | <key> VALUE (= | !=) <bytes>
 *          | <key> VERSION (= | != | < | >) <n>
 *          | <key> MODOP (= | != | < | >) <n>
 *     cmd := <argc> <name> [<arg>...]        (argc counts the name)
 *
 * A missing key has version 0 and mod op 0, and no value: VALUE = never
 * matches it, VALUE != always does. Every compare must hold for the THEN
 * list to run. A command is a store write (SET, DEL, INCR, INCRBY, DECR,
 * DECRBY, MSET, CAS, kv/strings.h's writes, FLUSHALL included, and the
 * expiry writes EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, GETEX,
 * SETEX, PSETEX) or a
 * store read (GET, MGET, EXISTS, DBSIZE, KVINFO, COHORT.REVS, TYPE,
 * COHORT.RANGE, STRLEN, GETRANGE, TTL, PTTL); ACL writes and transactions
 * do not nest, and SCAN, KEYS and RANDOMKEY cannot run inside.
 *
 * Replies (RESP2, as kv_apply() gives them):
 *     COHORT.TXN:  *2 :1 (THEN ran) or :0 (ELSE ran), then the array of the
 *                  list's replies;
 *     COHORT.EXEC: the array of the replies, or a null array (*-1) when a
 *                  compare fails (EXEC's reply when a WATCHed key changed).
 * A command that fails when it runs (INCR of a non-integer) has its error in
 * the array and the others still run, as in Redis; syntax, arity and limit
 * errors are found by parsing, before anything is proposed.
 *
 * The whole transaction is one op: every key it writes gets that op as its
 * mod op and gains one version however many of its commands write it.
 *
 * Bounds: at most KV_TXN_COMMANDS_MAX commands and KV_TXN_COMPARES_MAX
 * compares, and at most kv_txn_size_max() bytes of log body. The reply is
 * at most kv_reply_size_max(): each of its n elements keeps KV_TXN_REPLY_SLOT
 * bytes of room, and an element that does not fit in what the others leave
 * is replaced by a short error (see KV_TXN_REPLY_TOO_BIG); the commands
 * still ran.
 *
 * The log bytes are untrusted: apply parses them again with kv_txn_parse()
 * and answers a malformed transaction with an error, changing nothing.
 */
#ifndef COHORT_KV_TXN_H
#define COHORT_KV_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"
#include "kv/kv.h"

#define KV_TXN_COMMANDS_MAX 1024u
#define KV_TXN_COMPARES_MAX 1024u
/* Room each element of a transaction's reply keeps: more than any reply
 * but a bulk string or an array. */
#define KV_TXN_REPLY_SLOT 64u
/* Body bytes over max-value-size + max-key-size a transaction may use (the
 * replication log takes bodies of that sum + 4096, see runtime/node.c). */
#define KV_TXN_SIZE_OVERHEAD 2048u
#define KV_TXN_REPLY_TOO_BIG "ERR reply over the transaction reply limit"

/* A parsed transaction. Borrows the argv it was parsed from. */
struct kv_txn {
    bool exec; /* COHORT.EXEC: no ELSE list, a null reply if compares fail */
    uint32_t compare_count;
    const struct resp_arg *compares;
    uint32_t then_count;
    const struct resp_arg *then_list;
    uint32_t else_count;
    const struct resp_arg *else_list;
};

/* The largest log body of a transaction. */
size_t kv_txn_size_max(const struct kv_config *config);

/* Check one command of a transaction (argv[0] is its name): a store write
 * that kv_command_parse_logged() accepts, or a store read with the right arity.
 * On error returns -COHORT_EINVAL and appends the error reply to out
 * (Redis's text where Redis has one). */
int kv_txn_check_command(const struct kv_config *config, uint32_t argc,
                         const struct resp_arg *argv, struct resp_buf *out);

/* Where a transaction is proposed (never at apply, which must keep
 * applying what older builds logged): a write with an absolute expiry
 * (EXAT, PXAT, EXPIREAT, PEXPIREAT) is refused, since a Unix time becomes
 * log time only where a clock may be read (kv/expire.h), and the commands
 * are parsed again at apply; so is what kv_command_parse() refuses beyond
 * kv_command_parse_logged() (a relative expiry past
 * KV_EXPIRE_RELATIVE_MAX_MS). -COHORT_EINVAL with the error appended to
 * out; 0 for anything else (kv_txn_check_command() judges the rest). */
int kv_txn_check_proposed(const struct kv_config *config, uint32_t argc,
                          const struct resp_arg *argv, struct resp_buf *out);
/* Call fn(ctx, argc, argv) for each command of a parsed transaction, THEN
 * list first, until one returns false; false then. */
typedef bool (*kv_txn_command_fn)(void *ctx, uint32_t argc,
                                  const struct resp_arg *argv);
bool kv_txn_each_command(const struct kv_txn *t, kv_txn_command_fn fn,
                         void *ctx);
/* kv_txn_check_proposed() for every command of a parsed transaction. */
int kv_txn_check_proposed_lists(const struct kv_config *config,
                                const struct kv_txn *t, struct resp_buf *out);

/* Parse argv (the arguments after COHORT.TXN or COHORT.EXEC). Returns 0 and
 * fills t, or -COHORT_EINVAL with the error reply appended to out. */
int kv_txn_parse(const struct kv_config *config, bool exec, uint32_t argc,
                 const struct resp_arg *argv, struct kv_txn *t,
                 struct resp_buf *out);
/* kv_txn_parse() of the structure only (counts, compares, where each
 * command starts), not of the commands: for the server to name a command
 * it knows but a transaction cannot hold (PING) before the store, which
 * knows only its own commands, calls it unknown. */
int kv_txn_parse_shape(const struct kv_config *config, bool exec, uint32_t argc,
                       const struct resp_arg *argv, struct kv_txn *t,
                       struct resp_buf *out);

/* The next command of a parsed list: *pos points at its argc; sets argc and
 * argv and moves *pos past it. */
void kv_txn_next_command(const struct resp_arg **pos, uint32_t *argc,
                         const struct resp_arg **argv);

/* kv_command_growth() of the transaction: the sum over both lists. */
uint64_t kv_txn_growth(const struct kv *kv, const struct kv_txn *t);

/* Run t as op at its log time now_ms: the compares, then one list, each
 * write applied and each read answered in order; the reply goes to r
 * (RESP2, empty on entry). Every command sees expiry at now_ms, as it would
 * alone: a key expired then is missing to compares, reads and writes, and
 * the writes drop the due keys they touch (kv/expire.h). The commands are
 * parsed again with limits, the op's (kv_apply_config()), which t was
 * parsed with. */
void kv_txn_apply(struct kv *kv, uint64_t op, uint64_t now_ms,
                  const struct kv_txn *t, const struct kv_config *limits,
                  struct resp_buf *r);

#endif
