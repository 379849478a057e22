/* acl — the store's users and what each may do, in the subset of Redis's
 * ACL SETUSER that cohort speaks: on/off, passwords kept as SHA-256 hashes
 * (>pass <pass #hash !hash nopass resetpass), command rules (+@category
 * -@category +command -command allcommands nocommands), key patterns
 * (~pattern allkeys resetkeys), channel patterns (&pattern allchannels
 * resetchannels, kept for compatibility: cohort has no channels yet) and
 * reset.
 *
 * An acl is part of the replicated state (struct kv holds one: ACL SETUSER
 * and ACL DELUSER are log ops, and the users are in snapshots), and the
 * server builds another from its --requirepass or --acl-file, which is in
 * force until the group's first ACL change (see docs/ARCHITECTURE.md). So
 * everything here is deterministic: the same rules give the same users, the
 * same encoding and the same digest on every replica.
 *
 * A user is its flags and lists; command rules are kept as written, in
 * order ("+@read", "-get"), because whether a rule names a command is the
 * server's business (it knows its command table; src/server/auth.c compiles
 * the rules against it). A rule replaces an earlier rule with the same
 * target (a later "+get" or "-get" wins over any earlier one for every
 * command it names), and +@all / -@all drop every rule before them, so the
 * list stays short and its meaning is "start from the base, apply in order,
 * the last match wins".
 *
 * Invariants: (1) users are sorted by name (bytewise) with no duplicates;
 * (2) every list is within the ACL_*_MAX limits; (3) ALLKEYS means no key
 * patterns are kept (likewise ALLCHANNELS), NOPASS means no passwords;
 * (4) digest depends only on the users (a hash of the sum of their
 * digests, so the order of changes does not matter), and is 0 iff the acl
 * is not initialized.
 */
#ifndef COHORT_KV_ACL_H
#define COHORT_KV_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"

#define ACL_NAME_MAX 128u
#define ACL_USERS_MAX 10000u
#define ACL_PASSWORDS_MAX 32u
#define ACL_PATTERNS_MAX 128u
#define ACL_PATTERN_SIZE_MAX 1024u
#define ACL_COMMAND_RULES_MAX 256u
#define ACL_COMMAND_NAME_MAX 64u
#define ACL_HASH_SIZE 32u
/* Room for any error acl_setuser() writes. */
#define ACL_ERROR_MAX 512u

/* Redis's categories, in ACL CAT's order. A command's categories are a
 * bitmask of (1u << ACL_CAT_*). */
enum acl_category {
    ACL_CAT_KEYSPACE,
    ACL_CAT_READ,
    ACL_CAT_WRITE,
    ACL_CAT_SET,
    ACL_CAT_SORTEDSET,
    ACL_CAT_LIST,
    ACL_CAT_HASH,
    ACL_CAT_STRING,
    ACL_CAT_BITMAP,
    ACL_CAT_HYPERLOGLOG,
    ACL_CAT_GEO,
    ACL_CAT_STREAM,
    ACL_CAT_PUBSUB,
    ACL_CAT_ADMIN,
    ACL_CAT_FAST,
    ACL_CAT_SLOW,
    ACL_CAT_BLOCKING,
    ACL_CAT_DANGEROUS,
    ACL_CAT_CONNECTION,
    ACL_CAT_TRANSACTION,
    ACL_CAT_SCRIPTING,
    ACL_CAT_COUNT
};

#define ACL_USER_ON 0x01u
#define ACL_USER_NOPASS 0x02u
#define ACL_USER_ALLKEYS 0x04u
#define ACL_USER_ALLCHANNELS 0x08u
#define ACL_USER_ALLCOMMANDS 0x10u /* the rules start from +@all */

struct acl_pattern {
    uint32_t size;
    uint8_t *bytes;
};

struct acl_user {
    char *name; /* printable ASCII, no spaces, 1..ACL_NAME_MAX bytes */
    uint32_t flags;
    uint32_t password_count;
    uint8_t (*passwords)[ACL_HASH_SIZE];
    uint32_t rule_count;
    char **rules; /* "+@read", "-get": a sign, then @category or a command */
    uint32_t key_count;
    struct acl_pattern *keys;
    uint32_t channel_count;
    struct acl_pattern *channels;
    uint64_t digest; /* XXH3 of the user's encoding (see acl_encode) */
};

struct acl {
    /* The replicated acl: false until the group's first ACL change (the
     * server's own users are in force until then). */
    bool initialized;
    uint32_t user_count;
    uint32_t user_capacity;
    struct acl_user **users; /* sorted by name */
    uint64_t digest_sum;     /* of the users' digests, mod 2^64 */
    uint64_t digest;         /* invariant (4) */
    /* Not state: changes whenever anything here does (never goes back), so
     * a reader can tell that its pointers into the acl are stale. */
    uint64_t generation;
};

/* The name of category id, or NULL past the last. */
const char *acl_category_name(unsigned id);
/* The category named (without '@'), or -1. */
int acl_category_find(const char *name, size_t size);

void acl_init(struct acl *a);
void acl_deinit(struct acl *a);
/* Remove every user; not initialized. */
void acl_clear(struct acl *a);
/* Replace the contents with Redis's default: the one user "default", on,
 * nopass, every key, channel and command; initialized. Returns 0 or
 * -COHORT_ENOMEM (contents then cleared). */
int acl_set_default(struct acl *a);

const struct acl_user *acl_find(const struct acl *a, const void *name,
                                size_t size);

/* ACL SETUSER name rules...: create the user if missing (off, no password,
 * no keys, channels or commands, as Redis does), then apply the rules in
 * order. All or nothing: on an error nothing changes, and err (ACL_ERROR_MAX
 * bytes) holds Redis's text without the "ERR " ("Error in ACL SETUSER
 * modifier '~x': ..."). Marks the acl initialized on success. Returns 0,
 * -COHORT_EINVAL or -COHORT_ENOMEM. */
int acl_setuser(struct acl *a, const void *name, size_t name_size,
                uint32_t rule_count, const struct resp_arg *rules, char *err);
/* The same checks without changing a: would acl_setuser() succeed? */
int acl_setuser_check(const struct acl *a, const void *name, size_t name_size,
                      uint32_t rule_count, const struct resp_arg *rules,
                      char *err);
/* Remove the user; returns whether it existed. */
bool acl_deluser(struct acl *a, const void *name, size_t name_size);

/* SHA-256 of password. */
void acl_hash_password(const void *password, size_t size,
                       uint8_t out[ACL_HASH_SIZE]);
/* Whether password opens u (on, and nopass or one of its hashes);
 * compares every hash in full, so the time does not tell which matched. */
bool acl_user_password_ok(const struct acl_user *u, const void *password,
                          size_t size);
/* Whether u's key patterns admit key. */
bool acl_user_key_ok(const struct acl_user *u, const void *key, size_t size);

/* Redis's glob (stringmatchlen): * ? [set] [^set] [a-z] and \ escapes. */
bool acl_glob_match(const void *pattern, size_t pattern_size,
                    const void *string, size_t string_size);

/* u as ACL LIST shows it: "user <name> <rules...>", appended raw to out. */
void acl_user_describe(const struct acl_user *u, struct resp_buf *out);

/* The acl as bytes (snapshots, and the base a server sends with the
 * group's first ACL change): u32 user count, then per user u32 argument
 * count and that many (u32 size, bytes): its name and canonical rules.
 * acl_encode() writes acl_encoded_size() bytes. */
size_t acl_encoded_size(const struct acl *a);
void acl_encode(const struct acl *a, uint8_t *out, size_t size);
/* Replace a's contents with the decoded bytes (untrusted: every rule is
 * checked as ACL SETUSER checks it, names must be sorted and unique) and
 * mark it initialized. On failure a is left as it was and err says why.
 * Returns 0, -COHORT_ECORRUPT or -COHORT_ENOMEM. */
int acl_decode(struct acl *a, const uint8_t *data, size_t size, char *err);

#endif
