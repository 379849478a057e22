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

struct replica_meta {
    uint64_t view;             /* 0..VIEW_MAX (common/entry.h) */
    uint64_t last_normal_view; /* <= view */
    uint32_t epoch;
    uint32_t replica_count;
    uint32_t flags; /* META_FLAG_* */
};

#endif
