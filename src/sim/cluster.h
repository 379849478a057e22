/* sim/cluster — the simulated group: it owns the replicas (one struct replica
 * each, with its own state machine, disk and drifting clock), the network,
 * the clients and the checks, and drives the core by its contract
 * (core/replica.h): it picks the earliest pending event in virtual time,
 * steps one replica with it, carries out every action, and runs the checks
 * for that replica.
 *
 * Faults it carries out for sim/sim.c: crash (the replica is deinit'ed, its
 * pending writes lost or torn), restart (replica_init() from what the disk
 * verifies, the state machine from the disk's snapshot), pause (no events for
 * a while; its messages, disk completions and requests wait), disk
 * corruption, and partitions through the network.
 *
 * Tie-breaking is fixed (resumes, then disks by replica index, then the
 * network, then ticks by replica index, then clients), so a run depends on
 * nothing but the seed. trace_hash digests every event and action.
 */
#ifndef COHORT_SIM_CLUSTER_H
#define COHORT_SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/prng.h"
#include "core/replica.h"
#include "sim/check.h"
#include "sim/disk.h"
#include "sim/kvsm.h"
#include "sim/net.h"
#include "sim/workload.h"

struct cluster_config {
    uint32_t replica_count;
    uint64_t seed;
    uint32_t bugs; /* replica_config.bugs for every replica */
    struct sim_net_config net;
    struct sim_disk_config disk;
    struct workload_config workload; /* replica_count is filled in */
    uint32_t clock_drift_ppm;        /* each clock's rate within +-this */
    uint32_t tick_interval_ms;       /* a tick at least this often */
    uint32_t snapshot_interval_ops;  /* 0: the core's default */
    FILE *trace;                     /* --trace output, or NULL */
};

/* A read by read index waiting for the core's ACT_READ. */
struct sim_read {
    uint64_t tag;
    uint64_t client_id;
    uint64_t request_no;
    uint8_t key;
};

#define SIM_READS_MAX 128

struct sim_replica {
    struct cluster *cluster;
    uint32_t index;
    struct replica *r; /* NULL while crashed */
    bool paused;
    uint64_t paused_until;
    struct kvsm sm;
    struct cohort_sm sm_iface;
    struct sim_disk disk;
    /* Local monotonic clock: local = base_local + (now - base_global) *
     * rate_ppm / 1e6. */
    uint64_t clock_base_global;
    uint64_t clock_base_local;
    uint32_t rate_ppm;
    uint64_t tick_at;
    /* Check state for this incarnation. */
    uint64_t learned_upto;
    uint64_t commit_seen;
    uint32_t view_seen;
    enum replica_status status_seen;
    bool suspected[COHORT_REPLICAS_MAX];
    uint64_t incarnation;
    /* Reads handed to this incarnation's core (EV_READ), unanswered. */
    struct sim_read reads[SIM_READS_MAX];
    uint32_t read_count;
};

struct cluster_stats {
    uint64_t crashes;
    uint64_t restarts;
    uint64_t pauses;
    uint64_t partitions;
    uint64_t corruptions;
    uint64_t torn_writes;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    uint64_t snapshots_dropped;
    /* Failure detector: from a primary's crash, pause or isolation to the
     * first backup suspecting it. */
    uint64_t fd_detections;
    uint64_t fd_detect_ms[64]; /* the first 64 detection times */
    uint64_t fd_undetected;    /* faults healed before anyone noticed */
    uint64_t fd_suspicions;    /* a backup began suspecting its primary */
    uint64_t fd_false;         /* ... while it was up and reachable */
};

struct cluster {
    struct cluster_config config;
    struct prng prng; /* THE source of randomness of a run */
    uint64_t now;     /* virtual milliseconds */
    uint64_t step;
    uint64_t steps_at_now; /* steps since virtual time last moved */
    struct sim_replica replicas[COHORT_REPLICAS_MAX];
    struct sim_net net;
    struct workload workload;
    struct check check;
    void *trace_hash; /* XXH3_state_t over every event and action */
    uint64_t fd_fault_at[COHORT_REPLICAS_MAX]; /* 0: no pending fault */
    uint64_t read_tag;                         /* the last EV_READ tag */
    struct cluster_stats stats;
    char line[512];        /* trace line scratch */
    struct entry *scratch; /* ACT_PERSIST entries */
    uint64_t scratch_capacity;
};

void cluster_init(struct cluster *c, const struct cluster_config *config);
void cluster_deinit(struct cluster *c);

/* The time of the next event; false if nothing is pending at all. */
bool cluster_next_at(const struct cluster *c, uint64_t *at);
/* Process the next event (at cluster_next_at()). */
void cluster_step(struct cluster *c);
/* Move virtual time forward to at (>= now) without an event. */
void cluster_advance(struct cluster *c, uint64_t at);

/* Faults. Each is a no-op when it does not apply (crashing a crashed
 * replica). */
void cluster_crash(struct cluster *c, uint32_t i);
void cluster_restart(struct cluster *c, uint32_t i);
void cluster_pause(struct cluster *c, uint32_t i, uint64_t duration_ms);
/* Flip a bit of a durable log record of replica i with op <= op_max (0: any
 * op). Returns the op or 0. */
uint64_t cluster_corrupt(struct cluster *c, uint32_t i, uint64_t op_max);
/* A partition changed the reachability matrix (for the stats and the
 * failure detector report). */
void cluster_partitioned(struct cluster *c);
void cluster_healed(struct cluster *c);

/* The replica acting as primary in the highest view, or UINT32_MAX. */
uint32_t cluster_primary(const struct cluster *c);
bool cluster_alive(const struct cluster *c, uint32_t i);
/* Live, unpaused replicas all NORMAL in one view, applied == commit ==
 * the highest commit known, and no writes pending. */
bool cluster_quiescent(const struct cluster *c);
/* The end-of-run checks: convergence of the live replicas and every
 * committed op present and equal. Records failures in c->check. */
void cluster_check_converged(struct cluster *c);
/* Views in which some replica acted as primary. */
uint64_t cluster_views(const struct cluster *c);
uint64_t cluster_trace_hash(const struct cluster *c);
/* One line per replica describing its state, for failure reports. */
void cluster_describe(const struct cluster *c, FILE *out);

/* Print a trace line (if tracing) and mix it into nothing: trace lines are
 * for people; the hash covers the binary events. */
void cluster_trace(struct cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
