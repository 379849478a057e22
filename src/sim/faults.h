/* sim/faults — what goes wrong during a simulated run, and when.
 *
 * A profile (default, harsh, partition, crash, disk, none) sets the network
 * and disk fault rates and how often the fault injector strikes: crashes
 * (the primary half the time), pauses, partitions (isolate the primary,
 * symmetric splits, one-way links, bridges), corruption of a durable record
 * followed by a crash so that the restart reads it, misdirected writes, a
 * full disk, and in the harsher profiles crashes of every replica at once.
 * A crash is a process crash or a power loss (storage.power_ppm). Each
 * fault heals on its own after a drawn duration. Limits keep a run within
 * the fault model: at most max_down replicas crashed or paused at once, and
 * at most one replica whose disk holds unrepaired damage at a time.
 *
 * The "swarm" profile draws its own fault mix for every seed: which kinds
 * strike and how often, and the network and disk rates, as TigerBeetle's
 * VOPR does (sim_profile_draw).
 *
 * A scenario is a fixed schedule instead, steps fired by conditions on the
 * group ("the primary has prepared ops it has not committed", "20 ops are
 * committed", "1500 ms after the previous step"), for the named cases in
 * tests/sim/scenarios.
 */
#ifndef COHORT_SIM_FAULTS_H
#define COHORT_SIM_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/prng.h"
#include "sim/cluster.h"

struct sim_profile {
    const char *name;
    struct sim_net_config net;
    struct sim_disk_config disk;
    struct sim_storage_config storage;
    uint32_t clock_drift_ppm;
    uint32_t fault_every_min_ms; /* 0: no faults */
    uint32_t fault_every_max_ms;
    /* Weights of the fault kinds. */
    uint32_t w_crash;
    uint32_t w_pause;
    uint32_t w_partition;
    uint32_t w_corrupt;
    uint32_t w_crash_all;
    uint32_t w_misdirect; /* a misdirected write */
    uint32_t w_disk_full; /* a replica's disk fills up for a while */
    bool max_down_all;    /* else at most f replicas down at once */
    uint32_t down_min_ms;
    uint32_t down_max_ms;
    uint32_t pause_min_ms;
    uint32_t pause_max_ms;
    uint32_t partition_min_ms;
    uint32_t partition_max_ms;
    uint32_t give_up_ppm; /* clients giving up on a request per timeout */
};

struct sim_scenario;

const struct sim_profile *sim_profile_find(const char *name);
/* The profile a seed runs: the named one, or for "swarm" one drawn from
 * the seed into *out. */
const struct sim_profile *sim_profile_draw(const struct sim_profile *p,
                                           uint64_t seed,
                                           struct sim_profile *out);
const char *sim_profile_names(void);
const struct sim_scenario *sim_scenario_find(const char *name);
/* Scenario i (0-based), NULL past the end. */
const struct sim_scenario *sim_scenario_at(uint32_t i);
const char *sim_scenario_name(const struct sim_scenario *s);
const char *sim_scenario_summary(const struct sim_scenario *s);
bool sim_scenario_expects_replacement(const struct sim_scenario *s);
/* Whether the scenario's victim, restarted under writes, must catch up
 * with few snapshot installs (sim.c, check_caught_up()). */
bool sim_scenario_expects_catch_up(const struct sim_scenario *s);

struct faults {
    struct cluster *c; /* borrowed */
    const struct sim_profile *profile;
    const struct sim_scenario *scenario; /* NULL: random faults */
    uint32_t scenario_step;
    uint64_t scenario_step_ms; /* when the previous step fired */
    uint32_t victim;           /* the scenario's remembered replica */
    bool active;               /* still injecting */
    uint64_t next_fault_at;
    uint64_t restart_at[COHORT_REPLICAS_MAX]; /* 0: none */
    uint64_t room_at[COHORT_REPLICAS_MAX];    /* a full disk frees; 0: none */
    uint64_t heal_at;                         /* 0: no partition */
    /* Leadership transfers: their own random stream, so turning them on
     * leaves the fault stream of a seed as it was. */
    struct prng transfer_prng;
    uint32_t transfer_every_ms; /* 0: none */
    uint64_t next_transfer_at;
    /* Membership changes: likewise a stream of their own. */
    struct prng reconfig_prng;
    uint32_t reconfig_every_ms; /* 0: none */
    uint64_t next_reconfig_at;
};

void faults_init(struct faults *f, struct cluster *c,
                 const struct sim_profile *profile,
                 const struct sim_scenario *scenario);
/* Ask for a leadership transfer every every_ms on average (0: never) while
 * faults are injected: mostly the primary to a random other replica, now
 * and then a refusal (a non-primary asked, itself, an unknown index). */
void faults_transfers(struct faults *f, uint64_t seed, uint32_t every_ms);
/* Ask the primary for a membership change every every_ms on average (0:
 * never) while faults are injected: a voter removed, one added back from
 * the universe, 3 -> 5 and 5 -> 3 in a universe of 5, now and then with
 * the rest as learners, and now and then an invalid one. */
void faults_reconfigs(struct faults *f, uint64_t seed, uint32_t every_ms);
/* The time of the next scheduled fault or repair; false if none. */
bool faults_next_at(const struct faults *f, uint64_t *at);
/* Carry out what is due at c->now. */
void faults_fire(struct faults *f);
/* After each step: fire scenario steps whose condition now holds. */
void faults_poll(struct faults *f);
/* Stop injecting; heal every partition, resume and restart every replica. */
void faults_heal_all(struct faults *f);

#endif
