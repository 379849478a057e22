/* incarnation — the group's incarnation: a random 64-bit number drawn
 * once, when a group first has a primary, that tells this group's data
 * from another group's started with the same flags (the cluster id is a
 * hash of the address lists, so a cluster redeployed on the same hosts has
 * the same one). Part of the store's replicated state, so every member
 * learns it from the log or a snapshot: it is set only by a committed
 * KV_CMD_INCARNATION op (which no client command name reaches; the
 * server's proposer, server/incarnation.c, writes it with
 * kv_incarnation_encode()), kept in snapshots (kv/snapshot.h, formats 17
 * to 32) and hashed into kv_state_hash() while set. The runtime puts it
 * in the peer handshake (runtime/peer_link.h): replicas of two
 * incarnations refuse each other (docs/PROTOCOL.md, "Incarnations").
 *
 * KV_CMD_INCARNATION's body is an ordinary command body (kv/command.h),
 * flags 0, one argument: the incarnation, 8 bytes, u64 little-endian,
 * nonzero. Apply sets kv->incarnation if it is 0 and answers :1, else
 * leaves it and answers :0 (the first op in the log wins; a second
 * primary's proposal that raced it changes nothing). The body comes from
 * the log and is untrusted: a bad one is answered with an error, counted
 * in kv->malformed_ops, and changes nothing. FLUSHALL keeps it.
 *
 * Invariant: once nonzero, kv->incarnation never changes but by a restore
 * (kv_restore(), kv_clear()). */
#ifndef COHORT_KV_INCARNATION_H
#define COHORT_KV_INCARNATION_H

#include <stddef.h>
#include <stdint.h>

struct kv;
struct kv_command;
struct resp_buf;

/* The body of a KV_CMD_INCARNATION op setting incarnation (nonzero);
 * returns its size, or 0 if out_cap is too small or incarnation is 0. */
size_t kv_incarnation_encode(uint64_t incarnation, uint8_t *out,
                             size_t out_cap);
#define KV_INCARNATION_BODY_MAX (8u + 4u + 8u)

/* The group's incarnation, 0 while none was applied. */
uint64_t kv_incarnation(const struct kv *kv);

/* For kv/command.c: whether a decoded header of type KV_CMD_INCARNATION
 * is well formed (NULL) or what is wrong; and the op's apply. */
const char *kv_incarnation_check_header(const struct kv_command *c);
void kv_incarnation_apply(struct kv *kv, uint64_t op, struct kv_command *c,
                          struct resp_buf *r);

#endif
