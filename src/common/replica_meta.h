/* replica_meta — the replica's durable metadata record as the core emits
 * it (ACT_PERSIST_META) and storage keeps it (storage/meta): the one format
 * the two share besides log entries (common/entry.h), kept below both so
 * that neither includes the other. */
#ifndef COHORT_REPLICA_META_H
#define COHORT_REPLICA_META_H

#include <stdint.h>

#include "common/entry.h" /* VIEW_MAX */

/* Metadata flags. */
/* The log lost records that may have been acknowledged; cleared once
 * repaired from peers. */
#define META_FLAG_DAMAGED 1u
/* This replica is not a member of the epoch it records: it was removed
 * and takes no part until a later epoch names it again. */
#define META_FLAG_REMOVED 2u
/* With META_FLAG_REMOVED: the replica was a member of an earlier epoch, so
 * an operator removed it (rather than never adding it). Only reported;
 * versions before it ignore the bit. */
#define META_FLAG_LEFT 4u

struct replica_meta {
    uint64_t view;             /* 0..VIEW_MAX (common/entry.h) */
    uint64_t last_normal_view; /* <= view */
    uint32_t epoch;
    uint32_t replica_count;
    uint32_t flags; /* META_FLAG_* */
    /* The epoch's membership (membership_pack()); 0 before format 4 and in
     * epoch 0 of a group whose voters are every --peers id. */
    uint64_t membership;
    /* The op and checksum of the RECONFIG entry that started the epoch
     * (its first view's view_op); 0 in epoch 0. */
    uint64_t epoch_op;
    uint64_t epoch_checksum;
};

#endif
