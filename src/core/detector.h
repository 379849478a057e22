/* detector — the failure detector: one per replica, watching every peer.
 *
 * An eventually perfect detector with a per-peer adaptive timeout. A peer is
 * suspected when nothing was heard from it for longer than its timeout. Each
 * false suspicion (we hear from a peer we suspected) doubles that peer's
 * timeout, up to timeout_max_ms; after timeout_decay_ms of continuous health
 * the timeout shrinks by a quarter, never below timeout_base_ms. Suspicions
 * are inputs to the protocol, never the sole basis of a safety decision.
 *
 * The timeout also follows the gaps between messages: a peer is suspected
 * only after a silence longer than DETECTOR_GAP_FACTOR times the longest
 * gap recently heard from it (the longest gap shrinks by a quarter with the
 * timeout's decay), bounded by timeout_max_ms. A primary sends every
 * heartbeat interval when its machine is idle, so the timeout stays at its
 * base there; on a saturated machine a live primary's messages come 80 to
 * 120 ms apart, and its loop waits up to 200 to 350 ms for a CPU (measured
 * on 2 cores under a parallel build: stalls up to 3.5 times the gaps just
 * before them), and a fixed 150 ms timeout took that for a failure. Like a
 * phi-accrual detector, the suspicion threshold is a multiple of the observed
 * arrival pattern, learned before a false suspicion (which in a group of three
 * costs a view change), not after.
 *
 * Pure and deterministic: time comes in as now_ms (monotonic), nothing is
 * allocated, and ties are broken by replica index.
 */
#ifndef COHORT_DETECTOR_H
#define COHORT_DETECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "cohort.h"

#define DETECTOR_GAP_FACTOR 4u

struct detector_config {
    uint32_t peer_count;       /* replicas in the group, self included */
    uint32_t self;             /* never suspected */
    uint32_t timeout_base_ms;  /* e.g. 150 */
    uint32_t timeout_max_ms;   /* e.g. 8 * base */
    uint32_t timeout_decay_ms; /* e.g. 20 * base */
};

struct detector_peer {
    uint64_t heard_ms; /* last time we heard from the peer */
    /* detector_heard() was called for the peer since init: heard_ms is
     * then a message's time or a later reset's, never init's. Read by
     * hosts only (INFO's master_last_io_seconds_ago), never by the core. */
    bool heard_ever;
    uint64_t healthy_since_ms; /* start of the current healthy stretch */
    uint32_t timeout_ms;
    uint32_t gap_max_ms; /* longest recent gap between messages */
    bool suspected;
    uint64_t suspicions;       /* times we began suspecting it */
    uint64_t false_suspicions; /* of those, times it turned out alive */
};

struct detector {
    struct detector_config config;
    struct detector_peer peers[COHORT_REPLICAS_MAX];
};

/* Start with every peer healthy as of now_ms. */
void detector_init(struct detector *d, const struct detector_config *config,
                   uint64_t now_ms);
/* We heard from peer at now_ms. If we suspected it, that was a false
 * suspicion: its timeout grows. Returns true if this cleared a suspicion. */
bool detector_heard(struct detector *d, uint32_t peer, uint64_t now_ms);
/* Advance time: suspect every peer silent for longer than its timeout and
 * shrink the timeouts of long-healthy peers. Returns how many peers became
 * suspected by this call. */
uint32_t detector_tick(struct detector *d, uint64_t now_ms);
/* Suspect peer now, whatever its timeout (e.g. it told us it restarted). */
void detector_suspect(struct detector *d, uint32_t peer, uint64_t now_ms);
/* Forget the past of a peer: healthy as of now_ms, timeout unchanged (used
 * when a new view starts, so the new primary gets a full timeout). */
void detector_reset(struct detector *d, uint32_t peer, uint64_t now_ms);
bool detector_suspects(const struct detector *d, uint32_t peer);
/* The silence after which peer is suspected: its timeout, or
 * DETECTOR_GAP_FACTOR times its longest recent gap, up to timeout_max_ms. */
uint32_t detector_timeout_ms(const struct detector *d, uint32_t peer);
/* Milliseconds until some peer's timeout expires (for scheduling a tick);
 * UINT64_MAX if every peer is already suspected. */
uint64_t detector_next_deadline_ms(const struct detector *d, uint64_t now_ms);

#endif
