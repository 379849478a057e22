/* command — the store's commands: parsing a client's argv, the binary
 * encoding of a write as the body of a log entry, and applying and querying.
 *
 * A write travels like this: the server parses the client's argv with
 * kv_command_parse() (syntax and limit errors are answered at once, before
 * anything is proposed), encodes it with kv_command_encode() into the body of
 * a log entry, and once the op commits every replica runs kv_apply() on the
 * body, which answers with the RESP reply for the client. Reads go to
 * kv_query() and change nothing.
 *
 * Commands follow Redis's documented semantics and error texts:
 *     SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
 *     EXPIRE key s [NX|XX|GT|LT]   PEXPIRE, EXPIREAT, PEXPIREAT alike
 *     PERSIST key   GETEX key [EX|PX|EXAT|PXAT|PERSIST]   TTL key   PTTL key
 *                                  (expiry in log time: kv/expire.h)
 *     DEL key [key ...]            INCR key   INCRBY key n
 *     DECR key   DECRBY key n      MSET key value [key value ...]
 *     GET key   MGET key [key ...]   EXISTS key [key ...]   DBSIZE
 * the two ACL writes (kv/acl.h), whose replies are Redis's:
 *     ACL SETUSER name [rule ...]  +OK, or the rule's error
 *     ACL DELUSER name [name ...]  how many existed (never "default")
 * the listing reads SCAN, KEYS, TYPE, RANDOMKEY and COHORT.RANGE
 * (kv/listing.h), the other string and keyspace commands (GETDEL, GETSET,
 * SETNX, MSETNX, APPEND, SETRANGE, INCRBYFLOAT, UNLINK, COPY, RENAME,
 * RENAMENX, FLUSHDB, FLUSHALL, STRLEN, GETRANGE: kv/strings.h), and two of
 * cohort's own:
 *     CAS key expected new   set key to new if its value is expected: :1 if
 *                            it set, :0 otherwise (a missing key never
 *                            matches)
 *     KVINFO key             the pairs value <v> version <n> create_op <op>
 *                            mod_op <op>: a map in RESP3, a flat array of
 *                            name/value pairs in RESP2 (as Redis answers
 *                            CONFIG GET); a null array if the key is missing
 *     COHORT.REVS key [key ...]  each key's mod op (the op of its last
 *                            change), 0 for a missing key: what WATCH reads
 *     COHORT.GET key [WITHREV]  GET; with WITHREV the array [value,
 *                            revision, version, store revision]: value or
 *                            null, the key's mod op and version (0 0 when
 *                            missing), and the op the read reflects, from
 *                            which COHORT.WATCH ... FROM sees every later
 *                            change
 *     COHORT.TXN ..., COHORT.EXEC ...   transactions, see kv/txn.h
 * and pub/sub's one write:
 *     PUBLISH channel message  retained in kv->history at position op, and
 *                            handed to kv->publish_hook; the reply is the
 *                            hook; the reply is :0 on every member (the
 *                            replicated outcome, kept in the client table,
 *                            must not depend on a member's subscribers):
 *                            the server that answers the client puts its
 *                            own count of receivers in its place.
 *
 * Body layout (format 1), little-endian:
 *     0  u8   format     KV_COMMAND_FORMAT
 *     1  u8   type       enum kv_command_type
 *     2  u16  flags      SET: KV_SET_* bits; zero for other types
 *     4  u32  arg_count  keys and values, in command order
 *     8  i64  delta      only some types and flags (kv_expire_has_delta()):
 *                        INCRBY's increment (DECR is INCRBY -1), SET's
 *                        and GETEX's expiry or session, PEXPIRE's time,
 *                        the proposer's max-value-size (KV_VALUE_LIMIT)
 *        then arg_count times: u32 size, size bytes
 * Arities: SET 2 (key value), DEL >= 1, INCRBY 1, MSET even >= 2, CAS 3
 * (key expected new), ACL SETUSER >= 1 (name, rules), ACL DELUSER >= 1
 * (names), TXN >= 2 (the arguments after COHORT.TXN or COHORT.EXEC, with
 * flag KV_TXN_EXEC for the latter), PUBLISH 2 (channel message; the
 * channel is held to max-key-size, the message to max-value-size, where
 * it is proposed), and
 * kv/strings.h's types (FLUSHALL has none), ADDRESS 3 (id as a 4-byte
 * u32, peer address, client address: kv/address.h). The body ends after the
 * last argument. A malformed body is counted in kv->malformed_ops.
 *
 * An ACL write never carries a password: encoding turns each >password and
 * <password rule into #hash and !hash (SHA-256), so neither the log nor a
 * snapshot holds one. With flag KV_ACL_BASE its first argument is the
 * proposing server's own users (acl_encode()): if the group's acl has never
 * been changed, apply starts it from them (the users that were in force
 * until then), else ignores them; without it, from Redis's default user.
 *
 * Log bytes are untrusted: kv_apply() decodes them with bounds checks and
 * answers a malformed body with an error reply. Every replica sees the same
 * bytes, so all of them give the same answer and the state stays equal.
 */
#ifndef COHORT_KV_COMMAND_H
#define COHORT_KV_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h"
#include "common/bytes.h"
#include "common/resp.h"
#include "kv/kv.h"

#define KV_COMMAND_FORMAT 1
#define KV_COMMAND_HEADER_SIZE 8
/* Room kv_apply() needs beyond the largest value: a bulk string's header, or
 * the longest error apply writes (fixed texts and numbers). */
#define KV_REPLY_OVERHEAD 512
/* What a transaction's reply may use beyond that: KV_TXN_REPLY_SLOT bytes
 * for each of KV_TXN_COMMANDS_MAX elements, and two for its header. */
#define KV_TXN_REPLY_ROOM ((1024u + 2u) * 64u)

enum kv_command_type {
    KV_CMD_SET = 1,
    KV_CMD_DEL = 2,
    KV_CMD_INCRBY = 3,
    KV_CMD_MSET = 4,
    KV_CMD_CAS = 5,
    KV_CMD_ACL_SETUSER = 6,
    KV_CMD_ACL_DELUSER = 7,
    KV_CMD_TXN = 8, /* COHORT.TXN and COHORT.EXEC (kv/txn.h) */
    KV_CMD_PUBLISH = 9,
    /* Expiry (kv/expire.h), numbered apart to leave room for others. */
    KV_CMD_PEXPIRE = 20,    /* key; delta ms; KV_EXPIRE_* flags */
    KV_CMD_PERSIST = 21,    /* key */
    KV_CMD_GETEX = 22,      /* key; KV_SET_PX/PXAT (delta) or PERSIST */
    KV_CMD_EXPIRE_DUE = 23, /* keys the primary found due: removal */
    /* kv/strings.h, from 40: other branches in flight take 9 (publish)
     * and 20-23 (expiry); a type's number is part of the log format. */
    KV_CMD_GETDEL = 40,
    KV_CMD_MSETNX = 41, /* and SETNX */
    KV_CMD_APPEND = 42,
    KV_CMD_SETRANGE = 43,
    KV_CMD_INCRBYFLOAT = 44,
    KV_CMD_COPY = 45,
    KV_CMD_RENAME = 46,   /* and RENAMENX */
    KV_CMD_FLUSHALL = 47, /* and FLUSHDB; no arguments */
    /* Sessions (kv/session_cmd.h), from 60. */
    KV_CMD_SESSION_OPEN = 60,      /* ttl-ms */
    KV_CMD_SESSION_KEEPALIVE = 61, /* id */
    KV_CMD_SESSION_CLOSE = 62,     /* id */
    KV_CMD_SESSION_EXTEND = 63,    /* the new primary's: no arguments */
    KV_CMD_SESSION_EXPIRE = 64,    /* the primary's: ids found due */
    KV_CMD_LOCK = 65,              /* name session; flag KV_LOCK_WAIT */
    KV_CMD_UNLOCK = 66,            /* name session */
    KV_CMD_FENCE = 67,             /* name token key value */
    KV_CMD_GROUP_JOIN = 68,        /* group member session data */
    KV_CMD_GROUP_LEAVE = 69,       /* group member */
    KV_CMD_GROUP_VIEW = 70,        /* group */
    KV_CMD_ELECT = 71,             /* group */
    /* The replicas' address table (kv/address.h): id peer client. Built
     * only by kv_address_encode() (the server's admin command); no client
     * command name parses to it. */
    KV_CMD_ADDRESS = 80,
    /* The group's incarnation (kv/incarnation.h): the 8-byte value. Built
     * only by kv_incarnation_encode() (the server's proposer). */
    KV_CMD_INCARNATION = 81,
};

/* LOCK: join the queue if the lock is held (else fail at once). */
#define KV_LOCK_WAIT 0x1u

/* TXN: COHORT.EXEC (EXEC's reply shape, no ELSE list). */
#define KV_TXN_EXEC 0x1u

/* APPEND, SETRANGE, INCRBYFLOAT and TXN: delta is the proposer's
 * max-value-size, the largest value the op may make (kv_value_limit()).
 * Apply never reads the local limits, so that every replica reaches the
 * same state whatever its flags; without this flag (a body written before
 * it) the limit is KV_VALUE_SIZE_LIMIT. */
#define KV_VALUE_LIMIT 0x8000u

/* PEXPIRE flags: delta is a log time, not a length; Redis 7's options. */
#define KV_EXPIRE_AT 0x1u
#define KV_EXPIRE_NX 0x2u
#define KV_EXPIRE_XX 0x4u
#define KV_EXPIRE_GT 0x8u
#define KV_EXPIRE_LT 0x10u

/* ACL SETUSER and DELUSER: the first argument is a base acl. */
#define KV_ACL_BASE 0x1u

/* COPY: REPLACE. RENAME: NX (RENAMENX). */
#define KV_COPY_REPLACE 0x1u
#define KV_RENAME_NX 0x1u

/* SET options. NX and XX exclude each other. */
#define KV_SET_NX 0x1u
#define KV_SET_XX 0x2u
#define KV_SET_GET 0x4u
/* SET and GETEX expiry: at most one of these. PX: delta is a TTL in ms;
 * PXAT: delta is a log time in ms; KEEPTTL (SET): keep the old expiry;
 * PERSIST (GETEX): clear it. Without any, SET clears the expiry. */
#define KV_SET_PX 0x8u
#define KV_SET_PXAT 0x10u
#define KV_SET_KEEPTTL 0x20u
#define KV_SET_PERSIST 0x40u
/* SET ... SESSION id (kv/session_cmd.h): delta is the session's id; not
 * with an expiry option. */
#define KV_SET_SESSION 0x80u

/* Whether the server proposes a command (write), serves it from the store
 * (read), or the store does not know it. */
enum kv_class {
    KV_CLASS_NONE = 0,
    KV_CLASS_WRITE = 1,
    KV_CLASS_READ = 2,
};

/* A command's entry in the store's tables (command.c, kv/strings.c): its
 * name (lowercase, as Redis names it in arity errors), an id private to the
 * table's module, its class, and its arity as in Redis's command table (n:
 * exactly n arguments, -n: at least n, the name included). */
struct kv_command_def {
    const char *name;
    int id;
    enum kv_class class;
    int arity;
};

/* What an argument of a write is, for the key and value limit checks. */
enum kv_arg_role {
    KV_ARG_KEY,
    KV_ARG_VALUE,
    KV_ARG_OTHER,
};

/* A write command, parsed from a client's argv: what kv_command_encode()
 * turns into a body. Borrows the argument bytes. */
struct kv_write {
    enum kv_command_type type;
    uint16_t flags;
    int64_t delta;
    uint32_t arg_count;
    const struct resp_arg *args; /* arg_count keys and values */
    /* The stored arguments of a command whose key and value are not
     * adjacent in argv (SETEX key seconds value): args points here then,
     * so a copy of the struct must not outlive the original. */
    struct resp_arg own_args[2];
    /* ACL writes: the base to encode first (KV_ACL_BASE), or NULL. Set by
     * the server after parsing; borrowed. */
    const uint8_t *acl_base;
    size_t acl_base_size;
    /* COHORT.LOCK ... WAIT ms: how long the member the client is connected
     * to holds a queued answer (server/lock_wait.h). Not encoded: the op
     * is WAIT's either way. */
    uint64_t wait_ms;
};

/* A write command decoded from a body: like struct kv_write, but the
 * arguments are read in order with kv_command_next_arg(). Borrows the body. */
struct kv_command {
    enum kv_command_type type;
    uint16_t flags;
    int64_t delta;
    uint32_t arg_count;
    struct cursor args; /* the arguments not read yet */
};

/* Whether argv is ACL SETUSER or ACL DELUSER (a write of the store that the
 * server's ACL command hands to kv_command_parse()). */
bool kv_command_is_acl_write(uint32_t argc, const struct resp_arg *argv);

/* The class of the command named name (ASCII case-insensitive). */
enum kv_class kv_command_class(const struct resp_arg *name);

/* Whether the read command named name answers a map in RESP3 (a flat array
 * of name/value pairs in RESP2): KVINFO. A server relaying the RESP2 form
 * to a RESP3 client turns it into the map. */
bool kv_command_replies_map(const struct resp_arg *name);

/* Parse a client's write command (argv[0] is its name, as the server's
 * resp_request_parse() gives it) to propose it. On success returns 0 and
 * fills w, which borrows argv. On a client error (unknown command, wrong
 * arity, syntax, a bad integer, an unsupported option, a key or value over
 * the limits, a relative expiry past kv_expire_check_proposed()'s limit)
 * returns -COHORT_EINVAL and appends Redis's error reply to out. Such an
 * error certainly did not take effect: nothing was proposed. */
int kv_command_parse(const struct kv_config *config, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *out);
/* kv_command_parse() without the checks only a proposer makes: how apply
 * parses a logged transaction's commands, accepting what older builds
 * proposed (kv/txn.h). */
int kv_command_parse_logged(const struct kv_config *config, uint32_t argc,
                            const struct resp_arg *argv, struct kv_write *w,
                            struct resp_buf *out);

/* How much w may add to kv_used_memory() if applied to kv as it is now:
 * per key written, the value's growth if the key exists (0 if it shrinks),
 * else kv_record_cost() of the new record (exact for INCRBY's result; CAS
 * of a missing key and DEL add nothing). An upper bound (SET NX on an
 * existing key counts as a set), for the server's maxmemory check at the
 * primary before it proposes the write. */
uint64_t kv_command_growth(const struct kv *kv, const struct kv_write *w);

/* The size of w's body. */
size_t kv_command_size(const struct kv_write *w);
/* Encode w into body, which has room for kv_command_size(w) bytes (asserted).
 * Returns the size written. */
size_t kv_command_encode(const struct kv_write *w, uint8_t *body,
                         size_t body_size_max);
/* Encode w into a caller-owned scratch buffer, first grown to exactly
 * kv_command_size(w) bytes if it is smaller. Returns the size written (a
 * body is never empty), or 0 if out of memory, with *body and *capacity
 * unchanged. */
size_t kv_command_encode_into(const struct kv_write *w, uint8_t **body,
                              size_t *capacity);

/* Decode untrusted body bytes. Returns 0 and fills c (which borrows body), or
 * -COHORT_EPROTO and sets *why to a constant saying what is wrong. The whole
 * body is checked, so kv_command_next_arg() then cannot fail. */
int kv_command_decode(const uint8_t *body, size_t body_size,
                      struct kv_command *c, const char **why);
/* The next argument of a decoded command; asserts one is left. */
void kv_command_next_arg(struct kv_command *c, const uint8_t **arg,
                         size_t *arg_size);
/* The largest value a decoded command may make: the limit it carries
 * (KV_VALUE_LIMIT, clamped to 0..KV_VALUE_SIZE_LIMIT), else
 * KV_VALUE_SIZE_LIMIT. */
uint32_t kv_value_limit(const struct kv_command *c);
/* The limits apply() checks a command's arguments against: the largest
 * any store allows (KV_KEY_SIZE_LIMIT, KV_VALUE_SIZE_LIMIT), with
 * value_size_max the command's kv_value_limit(); the rest of kv's config.
 * Never the local max-key-size and max-value-size: the proposer checked
 * those, and a replica started with other limits (lowered since, or not
 * yet raised) must still reach the same state. */
struct kv_config kv_apply_config(const struct kv *kv,
                                 const struct kv_command *c);

/* The reply buffer kv_apply() needs: the largest value as a bulk string, or
 * the longest error, plus room for a transaction's array of replies
 * (kv/txn.h): value_size_max + KV_REPLY_OVERHEAD + KV_TXN_REPLY_ROOM. */
size_t kv_reply_size_max(const struct kv_config *config);

/* Apply the write in body as op, and write the client's reply into reply
 * (reply_size_max >= kv_reply_size_max(), asserted). Returns the reply size.
 * The reply is always RESP2, whatever protocol the client speaks: it is part
 * of the replicated outcome (the client table keeps it for retries), so it
 * must not depend on the connection. The RESP2 and RESP3 forms of these
 * replies differ only in nulls ("$-1", "*-1" against "_"); a server may
 * translate them for a RESP3 client.
 * Ops arrive in increasing order (asserted). Deterministic: depends only on
 * the store and the arguments; timestamp_ms is the log time by which expiry
 * is judged (kv/expire.h).
 * A malformed body changes nothing and gets an error reply. Running out of
 * memory stops the process: a replica that cannot apply a committed op must
 * not go on (it recovers from its snapshot and log). */
size_t kv_apply(struct kv *kv, uint64_t op, uint64_t timestamp_ms,
                const uint8_t *body, size_t body_size, uint8_t *reply,
                size_t reply_size_max);

/* For txn.c: apply the parsed write w as part of op, appending its reply to
 * r (kv->apply_reply); kv->op is already op. */
void kv_apply_write(struct kv *kv, uint64_t op, const struct kv_write *w,
                    struct resp_buf *r);

/* Whether argv is a store read with the right number of arguments; and
 * the arity error for one that is not. */
bool kv_command_read_arity_ok(uint32_t argc, const struct resp_arg *argv);
void kv_command_reply_arity(struct resp_buf *out, uint32_t argc,
                            const struct resp_arg *argv);

/* Answer a read command (argv[0] is its name) from the store, appending
 * the reply to out in out's protocol version (RESP3 nulls for a RESP3
 * client); changes nothing. Errors (arity; a write or unknown command) are
 * replies. An allocation failure shows as out->ok == false. */
void kv_query(const struct kv *kv, uint32_t argc, const struct resp_arg *argv,
              struct resp_buf *out);
/* kv_query() hiding keys expired at max(now_ms, kv->time_ms); kv_query()
 * itself judges by kv->time_ms, the last applied entry's timestamp. */
void kv_query_at(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                 const struct resp_arg *argv, struct resp_buf *out);

/* Whether kv_query_at(now_ms) of argv answers as kv_query() would from
 * the applied state: no key the read looks at expires between the last
 * applied op's log time and now_ms (kv_expire_read_settled()). */
bool kv_query_settled(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                      const struct resp_arg *argv);

/* The store as the replication core's state machine. The core's reply
 * buffer must hold kv_reply_size_max() bytes. kv is borrowed. */
struct cohort_sm kv_sm(struct kv *kv);

#endif
