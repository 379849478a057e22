/* fuzz_group — a group of replica cores (src/core, no driver) run on a
 * script of fuzz bytes, for message_fuzz: the core must never assert on
 * what a peer sends it, whatever state it is in.
 *
 * The group is three cores with small limits, a FIFO network, storage that
 * completes when the script says (every persist, metadata write and
 * snapshot reports done at the next storage round of its replica), and a
 * counter state machine. fuzz_group_run() first brings the group, by
 * honest traffic only, into the state the script's first byte picks:
 *
 *   FRESH        every core just started (RECOVERING); the target is 0
 *   PRIMARY      a normal view with committed ops, snapshots and a
 *                compacted log; the target is the primary
 *   BACKUP       the same; the target is a backup
 *   VIEW_CHANGE  the same, then the primary is cut off until the target
 *                (a backup) has left its view
 *
 * then runs the rest of the script, a sequence of steps: deliver honest
 * frames (some dropped), advance time, run a storage round, submit client
 * requests and reads, hint that a peer is down, and the hostile ones:
 * inject a message built field by field from the script (types, sender
 * index, views, ops, commits, checksums and a hash-chained run of entries
 * drawn from values near the target's own state and from the edges: 0,
 * 2^31, 2^32, VIEW_MAX, UINT64_MAX), usually repaired to pass
 * message_decode() so that it reaches the handlers; inject raw bytes; or
 * patch a field of an honest frame in flight. Finally the group runs on
 * honestly for a while, so that whatever the hostile messages left behind
 * meets every handler and the invariants (replica_invariants() after each
 * step, and the DEBUG_ASSERTs when built with COHORT_DEBUG_ASSERT).
 *
 * Everything is deterministic in the script bytes. */
#ifndef COHORT_FUZZ_GROUP_H
#define COHORT_FUZZ_GROUP_H

#include <stddef.h>
#include <stdint.h>

/* What a run did, for the plain program's summary. */
struct fuzz_group_stats {
    uint64_t runs;
    uint64_t steps;
    uint64_t injected;         /* hostile messages handed to a core */
    uint64_t injected_decoded; /* of which message_decode() accepted */
    uint64_t invalid;          /* replica_stats: messages_invalid */
    uint64_t views_refused;    /* replica_stats: views_refused */
    uint64_t view_changes;
};

/* Run one script. Asserts (aborts) only when a core does. */
void fuzz_group_run(const uint8_t *script, size_t size);

const struct fuzz_group_stats *fuzz_group_stats(void);

#endif
