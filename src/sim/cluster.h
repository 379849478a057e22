/* sim/cluster — the simulated group: it owns the replicas (each a driver
 * (src/driver) over the real core and the real storage code, with its own
 * state machine, simulated disk (sim/disk) and drifting clock), the network,
 * the clients and the checks. It picks the earliest pending event in
 * virtual time, hands it to one replica's driver (sim/host carries out what
 * the driver asks of its host), and runs the checks for that replica.
 *
 * Faults it carries out for sim/sim.c: crash (a process crash, keeping what
 * the page cache holds, or a power loss, losing unsynced writes and tearing
 * one), restart (driver_open() recovers from what the disk holds; a failed
 * start is retried), pause (no events for a while; its messages, disk
 * completions and requests wait), latent corruption and misdirected writes
 * on the disk, a full disk, and partitions through the network.
 *
 * Tie-breaking is fixed (resumes, then disks by replica index, then the
 * network, then turn ends and ticks by replica index, then clients), so a
 * run depends on nothing but the seed. trace_hash digests every event and
 * every request of a driver to its host.
 */
#ifndef COHORT_SIM_CLUSTER_H
#define COHORT_SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/prng.h"
#include "core/replica.h"
#include "driver/driver.h"
#include "sim/check.h"
#include "sim/coord.h"
#include "sim/disk.h"
#include "kv/session_cmd.h"
#include "sim/kvsm.h"
#include "sim/net.h"
#include "sim/workload.h"

/* Storage faults beyond the disk's own rates (sim/disk.h). */
struct sim_storage_config {
    uint32_t latency_min_ms; /* a storage round (writes + one fdatasync) */
    uint32_t latency_max_ms;
    uint32_t slow_ppm;      /* chance a round is slow */
    uint32_t slow_max_ms;   /* ... by up to this much more */
    uint32_t mid_crash_ppm; /* a power loss in the middle of a round */
    uint32_t power_ppm;     /* chance a crash is a power loss */
};

struct cluster_config {
    uint32_t replica_count;
    uint64_t seed;
    uint32_t bugs;             /* replica_config.bugs for every replica */
    uint32_t initial_voters;   /* replica_config.initial_voters (0: all) */
    uint32_t replace_after_ms; /* replica_config.replace_after_ms */
    uint32_t spares;           /* the last `spares` replicas: config.spare */
    struct sim_net_config net;
    struct sim_disk_config disk;
    struct sim_storage_config storage;
    struct workload_config workload; /* replica_count is filled in */
    uint32_t clock_drift_ppm;        /* each clock's rate within +-this */
    uint32_t tick_interval_ms;       /* a tick at least this often */
    uint32_t snapshot_interval_ops;  /* 0: the simulator's default */
    FILE *trace;                     /* --trace output, or NULL */
};

/* A background snapshot write (the runtime's snapshot thread). */
struct sim_snapshot_write {
    bool active;
    uint64_t at;
    struct driver_snapshot snap;
    uint8_t *table;
    /* u64 op, then the store's snapshot stream; kept between snapshots */
    uint8_t *state;
    size_t state_size, state_capacity;
    /* The stream is being written in slices, as the runtime does
     * (kv_snapshot_step before each apply, the rest when it is due). */
    bool slicing;
};

struct sim_backup_read;

struct sim_replica {
    struct cluster *cluster;
    uint32_t index;
    struct driver *driver;   /* NULL while crashed */
    const struct replica *r; /* the driver's core, NULL while crashed */
    bool paused;
    uint64_t paused_until;
    struct kvsm sm;
    bool sm_ready; /* sm holds a store (kvsm_init ran) */
    struct sim_disk disk;
    bool power_lost;   /* the last crash lost power (torn writes possible) */
    bool exit_pending; /* the driver asked to stop (host.fatal) */
    char exit_why[160];
    uint64_t restart_at; /* a failed start is retried then; 0: none */
    /* Local monotonic clock: local = base_local + (now - base_global) *
     * rate_ppm / 1e6. */
    uint64_t clock_base_global;
    uint64_t clock_base_local;
    uint32_t rate_ppm;
    uint64_t tick_at;
    bool turn_pending; /* requests arrived: driver_turn_end() at now */
    /* The storage executor: jobs waiting for the next round, and the round
     * in flight (completing, or retrying, at storage_at). */
    struct storage_job *queue_head, *queue_tail;
    struct storage_job *round_jobs;
    struct storage_batch round;
    bool round_active;
    uint64_t storage_at;
    bool stalled;
    struct sim_snapshot_write snapshot;
    bool damaged_at_crash; /* its core was damaged when it crashed */
    /* Its log lost records it may have acknowledged, and it has not
     * fetched them back yet: set while its core says damaged, cleared
     * once it is neither damaged nor catching up to its epoch's start
     * (learning a new epoch clears the core's flag before it holds the
     * epoch's first entry). Kept across crashes. */
    bool lost_records;
    bool meta_damaged; /* its metadata on disk may say damaged */
    bool torn_left;    /* its last start cut a torn last record */
    /* Check state for this incarnation. */
    uint64_t learned_upto;
    uint64_t commit_seen;
    uint64_t view_seen;
    uint32_t epoch_seen;
    enum replica_status status_seen;
    bool suspected[COHORT_REPLICAS_MAX];
    uint64_t incarnation;
    /* Reads this backup serves after a read-index round with the primary
     * (sim/host.c, as server/backup_read.c), this incarnation's. */
    struct sim_backup_read *backup_reads;
    uint64_t backup_read_ids;
    /* The expiry sweeper (sim/sweep.h). */
    bool sweep_in_flight;
    uint64_t sweep_client_id;
    uint64_t sweep_request_no;
    uint32_t sweep_ids;        /* ids taken, over every incarnation */
    uint64_t extra_request_no; /* sim_sweep_submit_extra()'s, this
                                  incarnation */
    /* The session sweeper (sim/sweep.h; only with the coordination
     * workload): server/session_sweep.c's state. */
    struct {
        bool in_flight;
        bool extending;
        uint32_t ids; /* ids taken, over every incarnation */
        uint64_t client_id;
        uint64_t request_no;
        bool extended_set; /* false: none this incarnation */
        struct kv_term extended;
        struct kv_term proposed;
    } ss;
};

struct cluster_stats {
    uint64_t crashes;
    uint64_t power_losses;
    uint64_t restarts;
    uint64_t start_failures;   /* driver_open() failed; retried */
    uint64_t storage_failures; /* a round failed for good: process exit */
    uint64_t disk_full;
    uint64_t pauses;
    uint64_t partitions;
    uint64_t corruptions;
    uint64_t snapshots_installed;
    uint64_t transfers_asked;    /* EV_TRANSFERs given (cluster_transfer) */
    uint64_t transfers_started;  /* ... that a primary accepted */
    uint64_t reconfigs_asked;    /* EV_RECONFIGs given (cluster_reconfig) */
    uint64_t reconfigs_proposed; /* ... that a primary appended */
    /* Changes the cores proposed themselves (replica_stats), summed over
     * the replicas' lives (cluster_crash() adds a life's). */
    uint64_t replacements;
    uint64_t spares_added;
    uint64_t sweep_ops;         /* EXPIRE_DUE ops proposed (sim/sweep) */
    uint64_t session_sweep_ops; /* EXTEND and EXPIRE ops proposed */
    /* FLUSHALLs (and restores) applied while a snapshot was being sliced,
     * which handed the store's records to the walk (kv/snapshot.h). */
    uint64_t slicer_handoffs;
    /* Failure detector: from a primary's crash, pause or isolation to the
     * first backup suspecting it. */
    uint64_t fd_detections;
    uint64_t fd_detect_ms[64]; /* the first 64 detection times */
    uint64_t fd_undetected;    /* faults healed before anyone noticed */
    uint64_t fd_suspicions;    /* a backup began suspecting its primary */
    uint64_t fd_false;         /* ... while it was up and reachable */
};

#define CLUSTER_EPOCH_VIEWS_MAX 4096

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
    struct coord coord; /* the coordination workload's watchers */
    void *trace_hash;   /* XXH3_state_t over every event and action */
    uint64_t fd_fault_at[COHORT_REPLICAS_MAX]; /* 0: no pending fault */
    struct cluster_stats stats;
    /* The primary of each (epoch, view) of epochs after 0 (epoch 0's are
     * in check.primary_of_view): at most one each. */
    struct epoch_primary {
        uint32_t epoch;
        uint64_t view;
        uint32_t primary;
    } epoch_primaries[CLUSTER_EPOCH_VIEWS_MAX];
    uint32_t epoch_primary_count;
    /* Extra delay of every snapshot chunk (a scenario's: a big store's
     * transfer and install); 0: none. */
    uint32_t snapshot_delay_ms;
    /* ... and per chunk before it in its file (a slow link: the transfer
     * takes this times the chunk count); 0: none. */
    uint32_t snapshot_chunk_ms;
    char line[512]; /* trace line scratch */
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
void cluster_crash(struct cluster *c, uint32_t i, bool power);
void cluster_restart(struct cluster *c, uint32_t i);
void cluster_pause(struct cluster *c, uint32_t i, uint64_t duration_ms);
/* Ask replica i (if it runs) to hand the primary role to target (any
 * value: the core refuses what it must). */
void cluster_transfer(struct cluster *c, uint32_t i, uint32_t target);
/* Ask replica i to propose the membership next (EV_RECONFIG). */
void cluster_reconfig(struct cluster *c, uint32_t i,
                      const struct membership *next);
/* Flip a bit of synced data in replica i's log or snapshots. Returns false
 * if it has none. Marks the replica hurt. */
bool cluster_corrupt(struct cluster *c, uint32_t i);
/* The next write of replica i lands elsewhere in its file. */
void cluster_misdirect(struct cluster *c, uint32_t i);
/* Whether replica i's disk may hold damage it has not yet repaired. */
bool cluster_hurt(const struct cluster *c, uint32_t i);
/* Whether some replica other than i is hurt (cluster_hurt()). The fault
 * model allows one at a time (one bad disk among 2f+1; more than f of them
 * halts the group by design rather than lose data): faults.c may_hurt(),
 * and cluster_restart()'s read errors. */
bool cluster_other_hurt(const struct cluster *c, uint32_t i);
/* The faults are over: disks stop failing reads, writes and syncs, and
 * storage rounds stop losing power. */
void cluster_heal_disks(struct cluster *c);
/* Replica i's disk fills up or has room again. */
void cluster_disk_full(struct cluster *c, uint32_t i, bool full);
/* A partition changed the reachability matrix (for the stats and the
 * failure detector report). */
void cluster_partitioned(struct cluster *c);
void cluster_healed(struct cluster *c);

/* The replica acting as primary in the highest view, or UINT32_MAX. */
uint32_t cluster_primary(const struct cluster *c);
bool cluster_alive(const struct cluster *c, uint32_t i);
/* Live, unpaused replicas all NORMAL in one view, applied == commit ==
 * the highest commit known, and no writes pending. */
/* Whether replica i is a member (voter or learner) of the newest epoch any
 * replica knows: one outside it takes no part in the group, and may not
 * even know it was removed. */
bool cluster_in_latest_epoch(const struct cluster *c, uint32_t i);
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
