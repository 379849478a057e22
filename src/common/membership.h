/* membership — a group's configuration in one epoch: the epoch number, the
 * ordered list of voters and the list of learners, each a stable replica id
 * (an index into the fixed universe of --peers addresses). It alone says who
 * leads a view and how many make a quorum (docs/PROTOCOL.md, "Epochs").
 *
 * Invariants of a valid membership (membership_valid()): 1 <= voter_count;
 * every id is below the universe size; no id appears twice across voters and
 * learners. Learners never count in a quorum and never lead a view. Kept in
 * src/common because the metadata record and peer messages carry it. */
#ifndef COHORT_MEMBERSHIP_H
#define COHORT_MEMBERSHIP_H

#include <stdbool.h>
#include <stdint.h>

#include "cohort.h" /* COHORT_REPLICAS_MAX */

struct membership {
    uint32_t epoch;
    uint32_t voter_count;   /* 1..COHORT_REPLICAS_MAX */
    uint32_t learner_count; /* 0..COHORT_REPLICAS_MAX - voter_count */
    uint32_t voters[COHORT_REPLICAS_MAX];   /* ordered: view v's primary is
                                               voters[v mod voter_count] */
    uint32_t learners[COHORT_REPLICAS_MAX]; /* ascending */
};

/* Epoch `epoch` with every id 0..n-1 as a voter in order: epoch 0 of a
 * group started with n --peers. n is 1..COHORT_REPLICAS_MAX. */
void membership_all(struct membership *m, uint32_t epoch, uint32_t n);
/* Whether m keeps the invariants above in a universe of `universe` ids. */
bool membership_valid(const struct membership *m, uint32_t universe);
bool membership_is_voter(const struct membership *m, uint32_t id);
bool membership_is_learner(const struct membership *m, uint32_t id);
/* A voter or a learner: receives the log. */
bool membership_is_member(const struct membership *m, uint32_t id);
/* The primary of view `view` in this epoch. */
uint32_t membership_primary(const struct membership *m, uint64_t view);
/* A majority of the voters. */
uint32_t membership_quorum(const struct membership *m);
bool membership_equal(const struct membership *a, const struct membership *b);

/* The voters and learners (not the epoch) in one nonzero u64, for the
 * metadata record, a RECONFIG entry's body and START_EPOCH / NEW_EPOCH:
 * bits 0..3 voter_count, then 4 bits per voter in order (up to 7), then
 * from bit 32 a mask of the learners. membership_unpack() refuses any
 * value that does not describe a valid membership in `universe`. */
uint64_t membership_pack(const struct membership *m);
bool membership_unpack(uint64_t packed, uint32_t epoch, uint32_t universe,
                       struct membership *out);

#endif
