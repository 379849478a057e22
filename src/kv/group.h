/* group — application groups of sessions: membership with view numbers,
 * and the leader recipe on top (the first member to have joined). The
 * table is kept in struct kv_sessions (kv/session.h), sharing its snapshot
 * section and state hash; the commands are in kv/session_cmd.c.
 *
 * A group's view number is the op of its last membership change (a join,
 * a leave, a member's data changing, a member's session ending), so view
 * numbers strictly increase, group after group, and every replica and
 * every reader sees the same sequence of views. The leader of a view is
 * its first member: the one that has been in the group longest.
 *
 * Invariants: (1) member names are unique within a group; (2) every
 * member's session exists (its end removes it); (3) no group is empty;
 * (4) each digest is group_digest() of its group.
 */
#ifndef COHORT_KV_GROUP_H
#define COHORT_KV_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "kv/session.h"

#define KV_GROUPS_MAX 100000u
#define KV_GROUP_MEMBERS_MAX 10000u

struct kv_group *kv_group_find(struct kv_sessions *t, const uint8_t *name,
                               size_t name_size);

enum kv_group_result {
    KV_GROUP_CHANGED,   /* joined (or changed its data): a new view */
    KV_GROUP_UNCHANGED, /* already a member with that data */
    KV_GROUP_TAKEN,     /* the member name belongs to another session */
    KV_GROUP_FULL,      /* KV_GROUPS_MAX or KV_GROUP_MEMBERS_MAX */
};

/* member joins group for session (which exists) as op. */
enum kv_group_result kv_group_join(struct kv_sessions *t, const uint8_t *group,
                                   size_t group_size, const uint8_t *member,
                                   size_t member_size, const uint8_t *data,
                                   size_t data_size, uint64_t session,
                                   uint64_t op, uint64_t *holder);
/* member leaves group as op. Returns whether it was a member. */
bool kv_group_leave(struct kv_sessions *t, const uint8_t *group,
                    size_t group_size, const uint8_t *member,
                    size_t member_size, uint64_t op);
/* A session ended at op: its members leave every group. */
void kv_group_session_ended(struct kv_sessions *t, uint64_t session,
                            uint64_t op);

void kv_group_clear_all(struct kv_sessions *t);
size_t kv_group_encoded_size(const struct kv_sessions *t);
void kv_group_encode(const struct kv_sessions *t, struct writer *w);
int kv_group_decode(struct kv_sessions *t, struct cursor *in, uint32_t size_max,
                    const char **why);
bool kv_group_invariants_hold(const struct kv_sessions *t);

#endif
