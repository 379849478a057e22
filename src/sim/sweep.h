/* sim/sweep — the simulated primary's expiry sweeper: what
 * src/server/expiry_sweep.c does for a real member, over a simulated
 * replica's driver and store. While the replica is the primary of a normal
 * view and keys are due at its log time, it proposes EXPIRE_DUE ops
 * (kv_expire_batch()) one at a time, as a client of the log with an id of
 * its own and request numbers counting up, so that the removal ops run
 * under every fault the simulator throws, and the reference model checks
 * that every replica removes exactly the keys due at each op's timestamp.
 *
 * Ids are (1 << 63) | replica << 32 | n, n counting the sweeper's ids over
 * the replica's incarnations: never a workload client's (sim/workload.c)
 * and never reused, so a restarted replica's sweeper is a new client.
 *
 * With the coordination workload (workload's coord_pct) the primary also
 * runs the session sweeper of server/session_sweep.c: the same choice of
 * op (kv_session_sweep_next(): an EXTEND once per view, done before any
 * EXPIRE of the sessions due at its log time), one op in flight, as a
 * client of its own ((3 << 62) | replica << 32 | n). The mutant
 * BUG_SESSION_NO_EXTEND skips the EXTEND.
 *
 * Invariant: at most one sweep op is in the replica's driver
 * (rep->sweep_in_flight), and none of a dead incarnation counts; the same
 * for the session sweeper (rep->ss.in_flight).
 */
#ifndef COHORT_SIM_SWEEP_H
#define COHORT_SIM_SWEEP_H

#include "sim/cluster.h"

/* Propose the next EXPIRE_DUE op if rep should and can. */
void sim_sweep_run(struct cluster *c, struct sim_replica *rep);
/* The replica's process started (a new incarnation): a new sweeper. */
void sim_sweep_start(struct sim_replica *rep);
/* Propose body as an op of a host client of its own ((1 << 62) | replica
 * << 32 | incarnation), not waiting for the answer: the mutant
 * BUG_KV_SPLIT_EXEC's first half. */
void sim_sweep_submit_extra(struct cluster *c, struct sim_replica *rep,
                            const uint8_t *body, size_t size);

#endif
