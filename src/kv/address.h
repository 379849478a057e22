/* address — the replicas' address table: for each replica id
 * (0..COHORT_REPLICAS_MAX-1) whether it is set, its peer address and its
 * client address ("host:port" text). Part of the store's replicated state,
 * so a member that catches up by snapshot or log learns the addresses in
 * force: it is changed only by a committed KV_CMD_ADDRESS op (which no
 * client command name reaches; the server's admin command proposes it with
 * kv_address_encode()), kept in snapshots (kv/snapshot.h, formats 9 to 16)
 * and hashed into kv_state_hash() while it has an entry.
 *
 * A valid address is 1..KV_ADDRESS_MAX bytes of printable ASCII without
 * spaces or commas (the --peers and --clients lists are comma-separated)
 * and holds a ':'. The table does not resolve or parse them further.
 *
 * KV_CMD_ADDRESS's body is an ordinary command body (kv/command.h) with
 * flags 0 and three arguments: the id (4 bytes, u32 little-endian), the
 * peer address and the client address. Apply stores both addresses for
 * the id (replacing any earlier ones) and answers +OK. The body comes from
 * the log and is untrusted: a bad id or address is answered with an error,
 * counted in kv->malformed_ops, and changes nothing (kv_address_encode()
 * never produces one).
 *
 * kv->addresses_changes is not state: it counts the times the table may
 * have changed in this process (an applied ADDRESS op, kv_clear(), hence
 * every kv_restore()), so the server can notice a change without
 * comparing the table. FLUSHALL removes keys only: the table stays.
 *
 * Invariants: (1) count is the number of entries set; (2) an entry set
 * holds two valid addresses, one not set holds two empty strings;
 * (3) digest is addresses_digest() of the table (0 when empty).
 */
#ifndef COHORT_KV_ADDRESS_H
#define COHORT_KV_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h" /* COHORT_REPLICAS_MAX */

#define KV_ADDRESS_MAX 255u

struct kv;
struct kv_command;
struct resp_buf;

struct kv_address_entry {
    bool set;
    char peer[KV_ADDRESS_MAX + 1];   /* NUL-terminated */
    char client[KV_ADDRESS_MAX + 1]; /* NUL-terminated */
};

struct kv_addresses {
    struct kv_address_entry entries[COHORT_REPLICAS_MAX];
    uint32_t count;  /* entries set */
    uint64_t digest; /* the table's share of the state hash; 0 if empty */
};

/* The body of a KV_CMD_ADDRESS command; returns its size, or 0 if
 * out_cap is too small or an address is invalid (then nothing is
 * valid to submit). An id >= COHORT_REPLICAS_MAX also gives 0. */
size_t kv_address_encode(uint32_t id, const char *peer, const char *client,
                         uint8_t *out, size_t out_cap);
/* The largest body kv_address_encode() writes. */
#define KV_ADDRESS_BODY_MAX (8u + 3u * 4u + 4u + 2u * KV_ADDRESS_MAX)

/* Whether text is a valid address for the table (rules above). */
bool kv_address_valid(const char *text);
/* Id's addresses if the table has them (NUL-terminated, owned by kv,
 * valid until the next apply or restore), else false. */
bool kv_address_get(const struct kv *kv, uint32_t id, const char **peer,
                    const char **client);
/* Bumped whenever the table may have changed (not replicated state). */
uint64_t kv_address_changes(const struct kv *kv);

/* For kv/kv.c: an empty table. */
void kv_addresses_clear(struct kv_addresses *a);

/* For kv/command.c: whether a decoded header of type KV_CMD_ADDRESS is
 * well formed (NULL) or what is wrong; and the op's apply, which writes
 * the reply to r. */
const char *kv_address_check_header(const struct kv_command *c);
void kv_address_apply(struct kv *kv, uint64_t op, struct kv_command *c,
                      struct resp_buf *r);

/* For kv/snapshot.c: the table's section payload (only written while
 * count > 0), little-endian:
 *     0  u32  count      1..COHORT_REPLICAS_MAX
 *        then count times, ids strictly increasing:
 *     0  u32  id         < COHORT_REPLICAS_MAX
 *     4  u32  size       1..KV_ADDRESS_MAX
 *     8       the peer address, size bytes
 *        u32  size       1..KV_ADDRESS_MAX
 *             the client address, size bytes
 * decode checks every byte (the payload may be hostile) and on success
 * replaces the table; on failure returns -COHORT_ECORRUPT, sets *why and
 * leaves the table empty. */
size_t kv_addresses_encoded_size(const struct kv_addresses *a);
void kv_addresses_encode(const struct kv_addresses *a, uint8_t *out,
                         size_t size);
int kv_addresses_decode(struct kv_addresses *a, const uint8_t *data,
                        size_t size, const char **why);
#define KV_ADDRESSES_ENCODED_MAX                                               \
    (4u + COHORT_REPLICAS_MAX * (4u + 2u * (4u + KV_ADDRESS_MAX)))

/* Whole-table check of the invariants: for tests and DEBUG_ASSERT. */
bool kv_addresses_invariants_hold(const struct kv_addresses *a);

#endif
