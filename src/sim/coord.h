/* sim/coord — the coordination workload's watchers (cohort sim --coord):
 * simulated clients of COHORT.WATCH that read a replica's change ring
 * (kv->changes, kv/changes.h) as the server feeds a watcher, and move from
 * replica to replica resuming "FROM the last revision seen", as a client
 * does after a failover, a member's restart or a cut.
 *
 * A watcher connects to a running replica and resumes with
 * kv_changes_resume() (the server's rule): past the replica's retained
 * changes it gets the compacted error (counted; the watcher then re-reads,
 * as a client re-reads with COHORT.GET ... WITHREV, and goes on from the
 * replica's floor), else it reads the events after its revision in ring
 * order. It is cut, as the server cuts, when its replica stops or
 * restarts, when the replica installs a snapshot (the ring is reset), and
 * when its next event has left the ring; it follows a failover (a watcher
 * on the primary moves when that replica stops being the primary of its
 * view, half the time to the new primary, as a client that watches on
 * the leader does); and it moves on by itself at drawn times. It reads only
 * events of ops the reference model has applied (sim/check.h), one whole
 * revision at a time.
 *
 * The check ("watch"): every event a watcher receives is the next one of
 * the reference model's own change ring, the committed changes in
 * revision order: an event lost, duplicated, reordered or altered across
 * any number of reconnects fails the run at once. At the end of a run
 * every watcher resumes once more on a live replica and must receive the
 * rest of the committed changes.
 *
 * Deterministic: its choices come from a prng of its own, seeded from the
 * run's seed, and drawn only when the workload is on, so that a seed
 * without --coord runs as before.
 */
#ifndef COHORT_SIM_COORD_H
#define COHORT_SIM_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/prng.h"

#define COORD_WATCHERS 3

struct cluster;

struct coord_watcher {
    bool connected;
    uint32_t replica;
    uint64_t incarnation; /* the replica's, when it connected */
    uint64_t floor;       /* the ring's floor then: a reset cuts */
    uint64_t seq;         /* the next entry to read in the replica's ring */
    uint64_t after;       /* the watch's FROM: events above it */
    uint64_t last_rev;    /* every event up to this revision received */
    uint64_t ref_seq;     /* the next event expected, in the reference's */
    uint64_t move_at;     /* connected: move on; else: try to connect */
    bool on_primary;      /* connected to the primary of view `view` */
    uint64_t view;
};

struct coord_stats {
    uint64_t events;    /* events received and checked */
    uint64_t resumes;   /* connections that resumed FROM a revision */
    uint64_t compacted; /* ... refused as compacted */
    uint64_t cuts;      /* replica stopped, reset its ring, or fell past */
    uint64_t failovers; /* moves because the watched primary lost its view */
};

struct coord {
    bool enabled;
    struct prng prng;
    struct coord_watcher watchers[COORD_WATCHERS];
    struct coord_stats stats;
};

void coord_init(struct coord *co, bool enabled, uint64_t seed);
/* Feed every watcher what its replica has applied; connect, cut and move
 * watchers. Call after each step of the cluster. */
void coord_pump(struct cluster *c);
/* The end of a run (the group settled): every watcher resumes on a live
 * replica and must receive the rest of the committed changes. */
void coord_finish(struct cluster *c);

#endif
