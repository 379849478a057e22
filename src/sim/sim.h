/* sim — one simulator run: a seed, a fault profile (or a named scenario) and
 * a workload, driven to the end and checked.
 *
 * A run has four phases in virtual time:
 *  1. faults: the clients issue their ops while the fault injector strikes
 *     (until every op is issued, or a time cap);
 *  2. heal: every partition heals, paused replicas resume, crashed ones
 *     restart, clients stop giving up; every outstanding request must
 *     complete within progress_ms, or the run fails the "progress" check;
 *  3. quiesce: the group must settle (every replica NORMAL in one view,
 *     everything committed applied) within progress_ms; then the live
 *     replicas must have converged on the reference state, and the client
 *     history must be linearizable (sim/linearize.h).
 * The per-step checks (sim/check.h) run all along; the first failure ends the
 * run.
 */
#ifndef COHORT_SIM_SIM_H
#define COHORT_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/check.h"

/* Percent of GETs served by read index unless --reads says otherwise. */
#define SIM_READS_DEFAULT 50u

struct sim_options {
    uint64_t seed;
    uint32_t replicas; /* 3 or 5 */
    const char *profile;
    const char *scenario; /* NULL: random faults from the profile */
    uint64_t ops;         /* client ops */
    uint32_t clients;
    uint32_t reads; /* percent of GETs served by read index */
    /* Leadership transfers: one every transfers_ms on average (drawn from
     * a stream of their own, so 0 leaves a seed's run as it was). */
    uint32_t transfers_ms;
    /* Membership changes: one every reconfig_ms on average (a stream of
     * their own, like transfers), drawn from the universe of `replicas`
     * ids; epoch 0's voters are the first `voters` (0: all). */
    uint32_t reconfig_ms;
    uint32_t voters;
    /* Spares (docs/PROTOCOL.md "Spares"): primaries replace a voter silent
     * for replace_after_ms by a caught-up learner (0: never); the last
     * `spares` replicas start as spares (outside epoch 0 unless --voters
     * says otherwise) and ask to be added as learners. */
    uint32_t replace_after_ms;
    uint32_t spares;
    /* Percent of ops that use expiry and pub/sub (workload.h). */
    uint32_t volatile_pct;
    /* Percent of ops that use sessions and locks, with watchers
     * (sim/coord.h); 0: none. */
    uint32_t coord_pct;
    /* Percent of ops that are FLUSHALL (workload.h); not with coord_pct. */
    uint32_t flush_pct;
    uint32_t bugs;
    FILE *trace; /* NULL: no trace */
};

struct sim_result {
    bool ok;
    char what[32]; /* the violated check */
    uint64_t step;
    uint64_t fail_ms;
    char detail[CHECK_DETAIL_MAX];
    char state[1024]; /* the replicas at the failure */
    /* Figures. */
    uint64_t virtual_ms;
    uint64_t steps;
    uint64_t ops_committed;
    uint64_t client_ok;
    uint64_t client_unknown;
    uint64_t view_changes; /* views started after the first */
    uint64_t crashes;
    uint64_t pauses;
    uint64_t partitions;
    uint64_t sweep_ops;       /* EXPIRE_DUE ops proposed by primaries */
    uint64_t slicer_handoffs; /* cluster.h's */
    /* The coordination workload. */
    uint64_t session_sweep_ops; /* EXTEND and EXPIRE ops proposed */
    uint64_t sessions_expired;
    uint64_t lost_kept_alive; /* workload.h's */
    uint64_t lock_grants;     /* grants the reference model saw */
    uint64_t client_grants;   /* LOCK replies granting a token */
    uint64_t fenced;          /* FENCE writes accepted */
    uint64_t watch_events;    /* events the watchers received and checked */
    uint64_t watch_resumes;   /* FROM a revision, on any replica */
    uint64_t watch_compacted; /* ... refused as compacted */
    uint64_t watch_failovers; /* moves after the watched primary's view */
    uint64_t dropped;
    uint64_t duplicated;
    uint64_t corruptions;
    uint64_t torn;
    uint64_t snapshots_installed;
    uint64_t transfers_asked;   /* EV_TRANSFERs given to a replica */
    uint64_t transfers_started; /* ... that a primary accepted */
    uint64_t replacements;      /* voters replaced by a learner */
    uint64_t spares_added;      /* spares added as learners */
    uint64_t fd_detections;
    uint64_t fd_detect_ms[64];
    uint64_t fd_undetected;
    uint64_t fd_suspicions;
    uint64_t fd_false;
    bool lin_gave_up;
    uint64_t trace_hash;
};

/* Run one seed. Returns false (and fills the failure fields) on a failure;
 * an unknown profile or scenario is the caller's to reject first. */
bool sim_run(const struct sim_options *options, struct sim_result *result);

/* The one-line summary of a run. */
void sim_result_print(const struct sim_options *options,
                      const struct sim_result *result, FILE *out);
/* The command that replays a run with its trace. */
void sim_reproduce_print(const struct sim_options *options, FILE *out);

#endif
