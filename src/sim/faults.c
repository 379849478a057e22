/* sim/faults — fault profiles, the random fault injector and the named
 * scenarios. See faults.h. */
#include "sim/faults.h"

#include <string.h>

#include "common/assert.h"

/* ------------------------------------------------------------- profiles */

static const struct sim_profile profiles[] = {
    {
        .name = "default",
        .net = {.delay_min_ms = 1,
                .delay_max_ms = 8,
                .loss_ppm = 5000,
                .dup_ppm = 5000,
                .spike_ppm = 5000,
                .spike_min_ms = 50,
                .spike_max_ms = 300},
        .disk = {.sector_size = 512,
                 .torn_ppm = 300000,
                 .write_eio_ppm = 1000,
                 .sync_eio_ppm = 200},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 5,
                    .slow_ppm = 5000,
                    .slow_max_ms = 100,
                    .mid_crash_ppm = 300,
                    .power_ppm = 500000},
        .clock_drift_ppm = 10000,
        .fault_every_min_ms = 300,
        .fault_every_max_ms = 1200,
        .w_crash = 3,
        .w_pause = 2,
        .w_partition = 3,
        .w_corrupt = 1,
        .down_min_ms = 200,
        .down_max_ms = 1500,
        .pause_min_ms = 100,
        .pause_max_ms = 800,
        .partition_min_ms = 300,
        .partition_max_ms = 2000,
        .w_misdirect = 0,
        .w_disk_full = 1,
        .give_up_ppm = 100000,
    },
    {
        .name = "harsh",
        .net = {.delay_min_ms = 1,
                .delay_max_ms = 20,
                .loss_ppm = 50000,
                .dup_ppm = 50000,
                .spike_ppm = 30000,
                .spike_min_ms = 100,
                .spike_max_ms = 1000},
        .disk = {.sector_size = 512,
                 .torn_ppm = 500000,
                 .read_eio_ppm = 2000,
                 .write_eio_ppm = 5000,
                 .sync_eio_ppm = 300},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 15,
                    .slow_ppm = 20000,
                    .slow_max_ms = 200,
                    .mid_crash_ppm = 1000,
                    .power_ppm = 500000},
        .clock_drift_ppm = 50000,
        .fault_every_min_ms = 100,
        .fault_every_max_ms = 700,
        .w_crash = 3,
        .w_pause = 3,
        .w_partition = 3,
        .w_corrupt = 2,
        .w_crash_all = 1,
        .max_down_all = true,
        .down_min_ms = 100,
        .down_max_ms = 2000,
        .pause_min_ms = 50,
        .pause_max_ms = 1500,
        .partition_min_ms = 100,
        .partition_max_ms = 3000,
        .w_misdirect = 1,
        .w_disk_full = 1,
        .give_up_ppm = 200000,
    },
    {
        .name = "partition",
        .net = {.delay_min_ms = 1,
                .delay_max_ms = 10,
                .loss_ppm = 10000,
                .dup_ppm = 5000,
                .spike_ppm = 5000,
                .spike_min_ms = 50,
                .spike_max_ms = 400},
        .disk = {.sector_size = 512, .torn_ppm = 0},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 5,
                    .power_ppm = 500000},
        .clock_drift_ppm = 10000,
        .fault_every_min_ms = 200,
        .fault_every_max_ms = 900,
        .w_partition = 1,
        .partition_min_ms = 200,
        .partition_max_ms = 2500,
        .give_up_ppm = 100000,
    },
    {
        .name = "crash",
        .net = {.delay_min_ms = 1, .delay_max_ms = 8, .loss_ppm = 2000},
        .disk = {.sector_size = 512, .torn_ppm = 500000},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 10,
                    .mid_crash_ppm = 1000,
                    .power_ppm = 500000},
        .clock_drift_ppm = 10000,
        .fault_every_min_ms = 200,
        .fault_every_max_ms = 900,
        .w_crash = 5,
        .w_pause = 1,
        .w_crash_all = 2,
        .max_down_all = true,
        .down_min_ms = 50,
        .down_max_ms = 1500,
        .pause_min_ms = 100,
        .pause_max_ms = 600,
        .give_up_ppm = 100000,
    },
    {
        .name = "disk",
        .net = {.delay_min_ms = 1, .delay_max_ms = 8, .loss_ppm = 2000},
        .disk = {.sector_size = 512,
                 .torn_ppm = 600000,
                 .read_eio_ppm = 5000,
                 .write_eio_ppm = 10000,
                 .sync_eio_ppm = 1000},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 8,
                    .slow_ppm = 50000,
                    .slow_max_ms = 300,
                    .mid_crash_ppm = 2000,
                    .power_ppm = 500000},
        .clock_drift_ppm = 10000,
        .fault_every_min_ms = 200,
        .fault_every_max_ms = 800,
        .w_crash = 2,
        .w_corrupt = 4,
        .w_crash_all = 1,
        .max_down_all = true,
        .down_min_ms = 50,
        .down_max_ms = 1000,
        .w_misdirect = 2,
        .w_disk_full = 2,
        .give_up_ppm = 100000,
    },
    {
        /* Drawn per seed by sim_profile_draw(); these are the bounds. */
        .name = "swarm",
        .net = {.delay_min_ms = 1,
                .delay_max_ms = 20,
                .loss_ppm = 50000,
                .dup_ppm = 50000,
                .spike_ppm = 30000,
                .spike_min_ms = 50,
                .spike_max_ms = 1000},
        .disk = {.sector_size = 512,
                 .torn_ppm = 1000000,
                 .read_eio_ppm = 5000,
                 .write_eio_ppm = 10000,
                 .sync_eio_ppm = 1000},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 15,
                    .slow_ppm = 50000,
                    .slow_max_ms = 300,
                    .mid_crash_ppm = 2000,
                    .power_ppm = 1000000},
        .clock_drift_ppm = 50000,
        .fault_every_min_ms = 100,
        .fault_every_max_ms = 1200,
        .w_crash = 5,
        .w_pause = 5,
        .w_partition = 5,
        .w_corrupt = 5,
        .w_crash_all = 2,
        .w_misdirect = 2,
        .w_disk_full = 2,
        .max_down_all = true,
        .down_min_ms = 50,
        .down_max_ms = 2000,
        .pause_min_ms = 50,
        .pause_max_ms = 1500,
        .partition_min_ms = 100,
        .partition_max_ms = 3000,
        .give_up_ppm = 200000,
    },
    {
        .name = "none",
        .net = {.delay_min_ms = 1, .delay_max_ms = 5},
        .disk = {.sector_size = 512, .torn_ppm = 0},
        .storage = {.latency_min_ms = 1,
                    .latency_max_ms = 3,
                    .power_ppm = 500000},
    },
};
#define PROFILE_COUNT (sizeof(profiles) / sizeof(profiles[0]))

const struct sim_profile *sim_profile_find(const char *name)
{
    for (size_t i = 0; i < PROFILE_COUNT; i++)
        if (!strcmp(profiles[i].name, name))
            return &profiles[i];
    return NULL;
}

/* A value in [0, max], zero a third of the time: a fault kind or rate a
 * seed leaves out. */
static uint32_t swarm_pick(struct prng *p, uint32_t max)
{
    if (max == 0 || prng_below(p, 3) == 0)
        return 0;
    return (uint32_t)prng_range(p, 1, max);
}

const struct sim_profile *sim_profile_draw(const struct sim_profile *p,
                                           uint64_t seed,
                                           struct sim_profile *out)
{
    if (strcmp(p->name, "swarm") != 0)
        return p;
    /* Its own stream, so the run's prng starts as in any profile. */
    struct prng g;
    prng_init(&g, seed ^ 0x5377a4d5eedull);
    *out = *p;
    out->net.loss_ppm = swarm_pick(&g, p->net.loss_ppm);
    out->net.dup_ppm = swarm_pick(&g, p->net.dup_ppm);
    out->net.spike_ppm = swarm_pick(&g, p->net.spike_ppm);
    out->net.delay_max_ms = 1 + swarm_pick(&g, p->net.delay_max_ms);
    out->disk.torn_ppm = swarm_pick(&g, p->disk.torn_ppm);
    out->disk.read_eio_ppm = swarm_pick(&g, p->disk.read_eio_ppm);
    out->disk.write_eio_ppm = swarm_pick(&g, p->disk.write_eio_ppm);
    out->disk.sync_eio_ppm = swarm_pick(&g, p->disk.sync_eio_ppm);
    out->storage.latency_max_ms = 1 + swarm_pick(&g, p->storage.latency_max_ms);
    out->storage.slow_ppm = swarm_pick(&g, p->storage.slow_ppm);
    out->storage.mid_crash_ppm = swarm_pick(&g, p->storage.mid_crash_ppm);
    out->storage.power_ppm = swarm_pick(&g, p->storage.power_ppm);
    out->clock_drift_ppm = swarm_pick(&g, p->clock_drift_ppm);
    out->fault_every_min_ms = (uint32_t)prng_range(&g, 100, 600);
    out->fault_every_max_ms =
        out->fault_every_min_ms + (uint32_t)prng_range(&g, 0, 1200);
    out->w_crash = swarm_pick(&g, p->w_crash);
    out->w_pause = swarm_pick(&g, p->w_pause);
    out->w_partition = swarm_pick(&g, p->w_partition);
    out->w_corrupt = swarm_pick(&g, p->w_corrupt);
    out->w_crash_all = swarm_pick(&g, p->w_crash_all);
    out->w_misdirect = swarm_pick(&g, p->w_misdirect);
    out->w_disk_full = swarm_pick(&g, p->w_disk_full);
    out->max_down_all = prng_below(&g, 2) == 0;
    out->give_up_ppm = swarm_pick(&g, p->give_up_ppm);
    return out;
}

const char *sim_profile_names(void)
{
    return "default, harsh, partition, crash, disk, swarm, none";
}

/* ------------------------------------------------------------ scenarios */

enum trigger {
    T_COMMITTED = 1,   /* arg ops committed */
    T_UNCOMMITTED = 2, /* arg ops committed and the primary has prepared
                          ops it has not committed yet */
    T_AFTER = 3,       /* arg ms after the previous step */
    T_IDLE = 4,        /* arg ops committed and the primary has committed
                          everything it prepared */
};

enum scenario_action {
    A_CRASH_PRIMARY = 1,
    A_CRASH_BACKUP,
    A_CRASH_ALL,
    A_RESTART_ALL,
    A_ISOLATE_PRIMARY,
    A_PRIMARY_IN_MINORITY,
    A_BRIDGE,
    A_PRIMARY_CANNOT_HEAR,
    A_HEAL,
    A_PAUSE_PRIMARY,
    A_CORRUPT_COMMITTED_AND_CRASH,
    A_CRASH_VICTIM,
    A_TRANSFER,           /* the primary hands over to the next replica */
    A_CRASH_VOTER,        /* a backup that votes in the primary's epoch */
    A_SLOW_SNAPSHOTS,     /* every snapshot chunk takes action_arg ms more */
    A_SLOW_SNAPSHOT_LINK, /* action_arg ms per snapshot chunk */
};

struct scenario_step {
    enum trigger trigger;
    uint64_t arg;
    enum scenario_action action;
    uint64_t action_arg;
};

#define SCENARIO_STEPS_MAX 8

struct sim_scenario {
    const char *name;
    const char *summary;
    struct scenario_step steps[SCENARIO_STEPS_MAX];
};

static const struct sim_scenario scenarios[] = {
    {"primary_crash_between_prepare_and_commit",
     "the primary crashes with prepared, uncommitted ops in flight",
     {{T_UNCOMMITTED, 20, A_CRASH_PRIMARY, 0},
      {T_AFTER, 1500, A_RESTART_ALL, 0}}},
    {"primary_isolated",
     "a partition cuts the primary off from every backup, then heals",
     {{T_UNCOMMITTED, 20, A_ISOLATE_PRIMARY, 0}, {T_AFTER, 2000, A_HEAL, 0}}},
    {"primary_in_minority",
     "the primary and f-1 backups are split from the majority",
     {{T_UNCOMMITTED, 20, A_PRIMARY_IN_MINORITY, 0},
      {T_AFTER, 2000, A_HEAL, 0}}},
    {"bridge_partition",
     "two sides that only one backup (the bridge) can reach, the primary "
     "on one side",
     {{T_COMMITTED, 20, A_BRIDGE, 0}, {T_AFTER, 2500, A_HEAL, 0}}},
    {"primary_cannot_hear",
     "one-way partition: the primary reaches the backups but hears nothing",
     {{T_COMMITTED, 20, A_PRIMARY_CANNOT_HEAR, 0}, {T_AFTER, 2000, A_HEAL, 0}}},
    {"idle_primary_isolated",
     "an idle primary is cut off from every backup while clients still "
     "reach it: a new view writes while the old primary gets reads",
     {{T_IDLE, 20, A_ISOLATE_PRIMARY, 0}, {T_AFTER, 2000, A_HEAL, 0}}},
    {"primary_paused",
     "the primary stops for longer than the suspect timeout, then resumes "
     "in an old view",
     {{T_UNCOMMITTED, 20, A_PAUSE_PRIMARY, 1500}}},
    {"total_crash_and_restart",
     "every replica crashes with writes pending, then all restart",
     {{T_UNCOMMITTED, 30, A_CRASH_ALL, 0}, {T_AFTER, 500, A_RESTART_ALL, 0}}},
    {"corrupt_committed_record",
     "a committed record on a backup is corrupted and read back at restart; "
     "then the primary crashes",
     {{T_COMMITTED, 40, A_CORRUPT_COMMITTED_AND_CRASH, 0},
      {T_AFTER, 300, A_RESTART_ALL, 0},
      {T_AFTER, 800, A_CRASH_PRIMARY, 0},
      {T_AFTER, 1500, A_RESTART_ALL, 0}}},
    {"corrupt_then_total_crash",
     "a committed record on a backup is corrupted, then every replica "
     "crashes and restarts",
     {{T_COMMITTED, 40, A_CORRUPT_COMMITTED_AND_CRASH, 0},
      {T_AFTER, 200, A_RESTART_ALL, 0},
      {T_AFTER, 50, A_CRASH_ALL, 0},
      {T_AFTER, 500, A_RESTART_ALL, 0}}},
    {"rolling_crashes",
     "each replica crashes and restarts in turn",
     {{T_COMMITTED, 20, A_CRASH_BACKUP, 0},
      {T_AFTER, 700, A_RESTART_ALL, 0},
      {T_AFTER, 700, A_CRASH_PRIMARY, 0},
      {T_AFTER, 700, A_RESTART_ALL, 0},
      {T_AFTER, 700, A_CRASH_BACKUP, 0},
      {T_AFTER, 700, A_RESTART_ALL, 0}}},
    {"transfer_round",
     "the primary hands over to the next replica with writes in flight, "
     "three times in a row",
     {{T_UNCOMMITTED, 20, A_TRANSFER, 0},
      {T_AFTER, 400, A_TRANSFER, 0},
      {T_AFTER, 400, A_TRANSFER, 0}}},
    {"transfer_then_primary_crash",
     "a transfer starts with writes in flight and the old primary crashes "
     "a moment later (mid-drain or mid-view-change)",
     {{T_UNCOMMITTED, 20, A_TRANSFER, 0},
      {T_AFTER, 3, A_CRASH_PRIMARY, 0},
      {T_AFTER, 1500, A_RESTART_ALL, 0}}},
    {"transfer_then_target_crash",
     "a transfer starts and its target crashes at once",
     {{T_UNCOMMITTED, 20, A_TRANSFER, 0},
      {T_AFTER, 2, A_CRASH_VICTIM, 0},
      {T_AFTER, 1500, A_RESTART_ALL, 0}}},
    {"transfer_into_partition",
     "a transfer starts just as the primary is cut off from every backup",
     {{T_UNCOMMITTED, 20, A_TRANSFER, 0},
      {T_AFTER, 1, A_ISOLATE_PRIMARY, 0},
      {T_AFTER, 2000, A_HEAL, 0}}},
    {"catch_up_under_writes",
     "a backup is down while the others compact past its log, then "
     "restarts under writes; snapshot chunks take 600 ms more (a big "
     "store's transfer and install): it must continue from the log after "
     "the snapshot it installs, not need one snapshot after another",
     {{T_COMMITTED, 20, A_CRASH_BACKUP, 0},
      {T_AFTER, 1500, A_SLOW_SNAPSHOTS, 600},
      {T_AFTER, 0, A_RESTART_ALL, 0}}},
    {"slow_snapshot_link",
     "a backup is down while the others compact past its log, then "
     "restarts under writes; each snapshot chunk takes 400 ms more than "
     "the one before it (a slow link: transfers of seconds): it must "
     "still catch up with at most two installs",
     {{T_COMMITTED, 20, A_CRASH_BACKUP, 0},
      {T_AFTER, 1500, A_SLOW_SNAPSHOT_LINK, 400},
      {T_AFTER, 0, A_RESTART_ALL, 0}}},
    {"voter_down_long",
     "a backup voter crashes for 2500 ms with writes in flight, then "
     "restarts (with --replace-after and spares: replaced by a spare, "
     "and back as a spare itself)",
     {{T_UNCOMMITTED, 60, A_CRASH_VOTER, 0},
      {T_AFTER, 2500, A_RESTART_ALL, 0}}},
};
#define SCENARIO_COUNT (sizeof(scenarios) / sizeof(scenarios[0]))

const struct sim_scenario *sim_scenario_find(const char *name)
{
    for (size_t i = 0; i < SCENARIO_COUNT; i++)
        if (!strcmp(scenarios[i].name, name))
            return &scenarios[i];
    return NULL;
}

const struct sim_scenario *sim_scenario_at(uint32_t i)
{
    return i < SCENARIO_COUNT ? &scenarios[i] : NULL;
}

const char *sim_scenario_name(const struct sim_scenario *s)
{
    return s->name;
}

const char *sim_scenario_summary(const struct sim_scenario *s)
{
    return s->summary;
}

/* Run with --replace-after (below the victim's downtime) and spares, these
 * scenarios' victim must have been replaced, and be no voter at the end
 * unless a second replacement took it back (sim.c). */
bool sim_scenario_expects_replacement(const struct sim_scenario *s)
{
    return !strcmp(s->name, "voter_down_long");
}

bool sim_scenario_expects_catch_up(const struct sim_scenario *s)
{
    return !strcmp(s->name, "catch_up_under_writes") ||
           !strcmp(s->name, "slow_snapshot_link");
}

/* ------------------------------------------------------------ helpers */

static uint32_t replica_count(const struct faults *f)
{
    return f->c->config.replica_count;
}

static uint32_t down_count(const struct faults *f)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < replica_count(f); i++)
        n += !cluster_alive(f->c, i) || f->c->replicas[i].paused;
    return n;
}

static uint32_t down_max(const struct faults *f)
{
    if (f->profile->max_down_all)
        return replica_count(f);
    return (replica_count(f) - 1) / 2;
}

static uint32_t pick(struct faults *f, uint32_t n)
{
    return (uint32_t)prng_below(&f->c->prng, n);
}

static uint64_t draw(struct faults *f, uint32_t lo, uint32_t hi)
{
    return prng_range(&f->c->prng, lo, hi);
}

/* The primary, else any replica. */
static uint32_t primary_or_any(struct faults *f)
{
    uint32_t p = cluster_primary(f->c);
    return p != UINT32_MAX ? p : pick(f, replica_count(f));
}

/* A live replica other than the primary, or UINT32_MAX. */
static uint32_t some_backup(struct faults *f)
{
    uint32_t p = cluster_primary(f->c);
    uint32_t n = replica_count(f);
    uint32_t start = pick(f, n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        if (i != p && cluster_alive(f->c, i))
            return i;
    }
    return UINT32_MAX;
}

static bool power_loss(struct faults *f)
{
    uint32_t ppm = f->profile->storage.power_ppm;
    return ppm && prng_chance(&f->c->prng, ppm);
}

static void crash_for(struct faults *f, uint32_t i, uint64_t down_ms)
{
    if (!cluster_alive(f->c, i))
        return;
    cluster_crash(f->c, i, power_loss(f));
    f->restart_at[i] = down_ms ? f->c->now + down_ms : 0;
}

static void restart_all(struct faults *f)
{
    for (uint32_t i = 0; i < replica_count(f); i++) {
        f->restart_at[i] = 0;
        cluster_restart(f->c, i);
    }
}

static void heal(struct faults *f)
{
    f->heal_at = 0;
    if (!sim_net_partitioned(&f->c->net))
        return;
    sim_net_heal(&f->c->net);
    cluster_trace(f->c, "HEAL partition");
    cluster_healed(f->c);
}

/* Partitions: each returns after changing the matrix. */
static void isolate(struct faults *f, uint32_t i)
{
    sim_net_split(&f->c->net, 1u << i);
    cluster_trace(f->c, "PARTITION isolate r%u", i);
}

static void primary_in_minority(struct faults *f)
{
    uint32_t n = replica_count(f);
    uint32_t p = primary_or_any(f);
    uint32_t mask = 1u << p;
    uint32_t want = (n - 1) / 2; /* f: the minority's size */
    for (uint32_t k = 1; k < n && (uint32_t)__builtin_popcount(mask) < want;
         k++)
        mask |= 1u << ((p + k) % n);
    sim_net_split(&f->c->net, mask);
    cluster_trace(f->c, "PARTITION minority mask=%#x", mask);
}

static void bridge(struct faults *f)
{
    uint32_t n = replica_count(f);
    uint32_t p = primary_or_any(f);
    uint32_t b = (p + 1 + pick(f, n - 1)) % n; /* a backup bridges */
    uint32_t side = 1u << p;
    /* The primary's side takes half of the others (besides the bridge). */
    for (uint32_t k = 1; k < n; k++) {
        uint32_t i = (p + k) % n;
        if (i != b && (uint32_t)__builtin_popcount(side) < (n - 1) / 2)
            side |= 1u << i;
    }
    if (n >= 3)
        sim_net_bridge(&f->c->net, side, b);
    cluster_trace(f->c, "PARTITION bridge r%u side=%#x", b, side);
}

static void primary_cannot_hear(struct faults *f)
{
    uint32_t p = primary_or_any(f);
    for (uint32_t i = 0; i < replica_count(f); i++)
        if (i != p)
            sim_net_cut_link(&f->c->net, i, p);
    cluster_trace(f->c, "PARTITION r%u cannot hear anyone", p);
}

static void random_partition(struct faults *f)
{
    uint32_t n = replica_count(f);
    switch (pick(f, 5)) {
    case 0:
        isolate(f, primary_or_any(f));
        break;
    case 1:
        primary_in_minority(f);
        break;
    case 2: {
        uint32_t mask = 1u + pick(f, (1u << n) - 2); /* a random split */
        sim_net_split(&f->c->net, mask);
        cluster_trace(f->c, "PARTITION split mask=%#x", mask);
        break;
    }
    case 3: {
        uint32_t a = pick(f, n);
        uint32_t b = (a + 1 + pick(f, n - 1)) % n;
        sim_net_cut_link(&f->c->net, a, b);
        cluster_trace(f->c, "PARTITION one-way r%u -/-> r%u", a, b);
        break;
    }
    default:
        bridge(f);
        break;
    }
    cluster_partitioned(f->c);
    f->heal_at = f->c->now + draw(f, f->profile->partition_min_ms,
                                  f->profile->partition_max_ms);
}

/* Whether damage to replica i's disk stays inside the fault model: no
 * other replica hurt, and i a voter of no membership any replica holds
 * with fewer than 3 voters. Such a group tolerates no bad disk among its
 * voters (f = 0): its one voter's damaged log halts it by design, which
 * the progress check would report (--replicas 3 --spares 2 starts with one
 * voter). */
static bool may_hurt(struct faults *f, uint32_t i)
{
    if (cluster_other_hurt(f->c, i))
        return false;
    for (uint32_t k = 0; k < replica_count(f); k++) {
        const struct replica *r = f->c->replicas[k].r;
        if (r == NULL)
            continue;
        const struct membership *m = replica_membership(r);
        if (m->voter_count < 3 && membership_is_voter(m, i))
            return false;
    }
    return true;
}

/* Corrupt synced data on replica i and crash it, so that its restart reads
 * the damage. */
static bool corrupt_and_crash(struct faults *f, uint32_t i)
{
    if (i == UINT32_MAX || !may_hurt(f, i) || !cluster_corrupt(f->c, i))
        return false;
    f->victim = i;
    crash_for(f, i, draw(f, 50, 500));
    return true;
}

/* The next write of a live replica lands elsewhere in its file. */
static void misdirect(struct faults *f, uint32_t i)
{
    if (cluster_alive(f->c, i) && may_hurt(f, i))
        cluster_misdirect(f->c, i);
}

/* Replica i's disk fills up for a while. */
static void disk_full(struct faults *f, uint32_t i)
{
    if (!cluster_alive(f->c, i) || f->room_at[i])
        return;
    cluster_disk_full(f->c, i, true);
    f->room_at[i] = f->c->now + draw(f, 100, 1500);
}

/* ------------------------------------------------------- random faults */

static void inject(struct faults *f)
{
    const struct sim_profile *p = f->profile;
    uint32_t total = p->w_crash + p->w_pause + p->w_partition + p->w_corrupt +
                     p->w_misdirect + p->w_disk_full + p->w_crash_all;
    if (total == 0)
        return;
    uint32_t roll = pick(f, total);
    bool room = down_count(f) < down_max(f);
    uint32_t n = replica_count(f);
    if (roll < p->w_crash) {
        if (!room)
            return;
        uint32_t i = pick(f, 2) ? primary_or_any(f) : pick(f, n);
        crash_for(f, i, draw(f, p->down_min_ms, p->down_max_ms));
        return;
    }
    roll -= p->w_crash;
    if (roll < p->w_pause) {
        if (!room)
            return;
        uint32_t i = pick(f, 2) ? primary_or_any(f) : pick(f, n);
        cluster_pause(f->c, i, draw(f, p->pause_min_ms, p->pause_max_ms));
        return;
    }
    roll -= p->w_pause;
    if (roll < p->w_partition) {
        if (!sim_net_partitioned(&f->c->net))
            random_partition(f);
        return;
    }
    roll -= p->w_partition;
    if (roll < p->w_corrupt) {
        if (room)
            corrupt_and_crash(f, pick(f, n));
        return;
    }
    roll -= p->w_corrupt;
    if (roll < p->w_misdirect) {
        misdirect(f, pick(f, n));
        return;
    }
    roll -= p->w_misdirect;
    if (roll < p->w_disk_full) {
        disk_full(f, pick(f, 2) ? primary_or_any(f) : pick(f, n));
        return;
    }
    /* Every replica at once: the group must come back from its disks. */
    uint64_t base = draw(f, p->down_min_ms, p->down_max_ms);
    for (uint32_t i = 0; i < n; i++)
        crash_for(f, i, base + draw(f, 0, 200));
}

/* ------------------------------------------------------------ transfers */

/* One transfer request: mostly the primary to another replica; one in ten
 * is a request the core must refuse (a backup asked, the primary asked for
 * itself or for an index out of range). */
static void transfer_once(struct faults *f)
{
    struct prng *g = &f->transfer_prng;
    uint32_t n = replica_count(f);
    uint32_t p = cluster_primary(f->c);
    if (p == UINT32_MAX)
        p = (uint32_t)prng_below(g, n);
    uint32_t target = (p + 1 + (uint32_t)prng_below(g, n - 1)) % n;
    if (prng_below(g, 10) == 0) {
        switch (prng_below(g, 3)) {
        case 0:
            p = (p + 1) % n; /* not the primary (most likely) */
            break;
        case 1:
            target = p;
            break;
        default:
            target = n + (uint32_t)prng_below(g, 3);
            break;
        }
    }
    cluster_transfer(f->c, p, target);
}

void faults_transfers(struct faults *f, uint64_t seed, uint32_t every_ms)
{
    prng_init(&f->transfer_prng, seed ^ 0x7a4e5f3b1dull);
    f->transfer_every_ms = every_ms;
    if (every_ms)
        f->next_transfer_at = prng_range(&f->transfer_prng, every_ms / 2,
                                         every_ms + every_ms / 2);
}

/* ------------------------------------------------------------ reconfigs */

/* Draw the next membership from the universe of n ids: 3 or 5 voters in a
 * universe of 5 or more (a group keeps tolerating a failure: 2 voters
 * would not), all of them in a smaller one (a new order: a new primary),
 * in a random order, the primary first when it stays (so that most
 * changes keep the leader); one in four makes the rest learners. */
static void draw_membership(struct prng *g, uint32_t n, uint32_t primary,
                            struct membership *m)
{
    uint32_t ids[COHORT_REPLICAS_MAX];
    for (uint32_t i = 0; i < n; i++)
        ids[i] = i;
    for (uint32_t i = n; i > 1; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)prng_below(g, i);
        uint32_t t = ids[i - 1];
        ids[i - 1] = ids[j];
        ids[j] = t;
    }
    uint32_t voters = n >= 5 ? (prng_below(g, 2) ? 5 : 3) : n;
    memset(m, 0, sizeof(*m));
    m->voter_count = voters;
    for (uint32_t i = 0; i < voters; i++)
        m->voters[i] = ids[i];
    for (uint32_t i = 1; i < voters; i++)
        if (m->voters[i] == primary) {
            m->voters[i] = m->voters[0];
            m->voters[0] = primary;
        }
    if (prng_below(g, 4) == 0) {
        for (uint32_t id = 0; id < n; id++)
            if (!membership_is_voter(m, id))
                m->learners[m->learner_count++] = id;
    }
}

static void reconfig_once(struct faults *f)
{
    struct prng *g = &f->reconfig_prng;
    uint32_t n = replica_count(f);
    uint32_t p = cluster_primary(f->c);
    if (p == UINT32_MAX)
        p = (uint32_t)prng_below(g, n);
    struct membership m;
    draw_membership(g, n, p, &m);
    if (prng_below(g, 10) == 0)
        m.voters[m.voter_count - 1] = m.voters[0]; /* invalid: refused */
    cluster_reconfig(f->c, p, &m);
}

void faults_reconfigs(struct faults *f, uint64_t seed, uint32_t every_ms)
{
    prng_init(&f->reconfig_prng, seed ^ 0x3e9c0f1a77ull);
    f->reconfig_every_ms = every_ms;
    if (every_ms)
        f->next_reconfig_at = prng_range(&f->reconfig_prng, every_ms / 2,
                                         every_ms + every_ms / 2);
}

/* ------------------------------------------------------------ scenarios */

static void scenario_act(struct faults *f, const struct scenario_step *s)
{
    switch (s->action) {
    case A_CRASH_PRIMARY:
        f->victim = primary_or_any(f);
        crash_for(f, f->victim, 0);
        break;
    case A_CRASH_BACKUP:
        f->victim = some_backup(f);
        if (f->victim != UINT32_MAX)
            crash_for(f, f->victim, 0);
        break;
    case A_CRASH_VOTER: {
        f->victim = UINT32_MAX;
        uint32_t p = cluster_primary(f->c);
        uint32_t n = replica_count(f);
        uint32_t start = pick(f, n);
        for (uint32_t k = 0; k < n && p != UINT32_MAX; k++) {
            uint32_t i = (start + k) % n;
            const struct replica *pr = f->c->replicas[p].r;
            if (i != p && cluster_alive(f->c, i) &&
                membership_is_voter(replica_membership(pr), i)) {
                f->victim = i;
                break;
            }
        }
        if (f->victim == UINT32_MAX)
            f->victim = some_backup(f);
        if (f->victim != UINT32_MAX)
            crash_for(f, f->victim, 0);
        break;
    }
    case A_CRASH_VICTIM:
        if (f->victim != UINT32_MAX)
            crash_for(f, f->victim, 0);
        break;
    case A_CRASH_ALL:
        for (uint32_t i = 0; i < replica_count(f); i++)
            crash_for(f, i, 0);
        break;
    case A_RESTART_ALL:
        restart_all(f);
        break;
    case A_ISOLATE_PRIMARY:
        isolate(f, primary_or_any(f));
        cluster_partitioned(f->c);
        break;
    case A_PRIMARY_IN_MINORITY:
        primary_in_minority(f);
        cluster_partitioned(f->c);
        break;
    case A_BRIDGE:
        bridge(f);
        cluster_partitioned(f->c);
        break;
    case A_PRIMARY_CANNOT_HEAR:
        primary_cannot_hear(f);
        cluster_partitioned(f->c);
        break;
    case A_HEAL:
        heal(f);
        break;
    case A_PAUSE_PRIMARY:
        cluster_pause(f->c, primary_or_any(f), s->action_arg);
        break;
    case A_CORRUPT_COMMITTED_AND_CRASH:
        corrupt_and_crash(f, some_backup(f));
        break;
    case A_SLOW_SNAPSHOTS:
        f->c->snapshot_delay_ms = (uint32_t)s->action_arg;
        break;
    case A_SLOW_SNAPSHOT_LINK:
        f->c->snapshot_chunk_ms = (uint32_t)s->action_arg;
        break;
    case A_TRANSFER: {
        uint32_t p = primary_or_any(f);
        f->victim = (p + 1) % replica_count(f); /* the target */
        cluster_transfer(f->c, p, f->victim);
        break;
    }
    }
}

static bool scenario_due(const struct faults *f, const struct scenario_step *s)
{
    const struct cluster *c = f->c;
    switch (s->trigger) {
    case T_COMMITTED:
        return c->check.commit_max >= s->arg;
    case T_UNCOMMITTED:
    case T_IDLE: {
        if (c->check.commit_max < s->arg)
            return false;
        uint32_t p = cluster_primary(c);
        if (p == UINT32_MAX)
            return false;
        const struct replica *r = c->replicas[p].r;
        bool pending = replica_op(r) > replica_commit(r);
        return s->trigger == T_UNCOMMITTED ? pending : !pending;
    }
    case T_AFTER:
        return c->now >= f->scenario_step_ms + s->arg;
    }
    return false;
}

static const struct scenario_step *scenario_next(const struct faults *f)
{
    if (!f->scenario || !f->active || f->scenario_step >= SCENARIO_STEPS_MAX)
        return NULL;
    const struct scenario_step *s = &f->scenario->steps[f->scenario_step];
    return s->trigger ? s : NULL;
}

void faults_poll(struct faults *f)
{
    const struct scenario_step *s = scenario_next(f);
    while (s && scenario_due(f, s)) {
        cluster_trace(f->c, "scenario %s: step %u", f->scenario->name,
                      f->scenario_step + 1);
        scenario_act(f, s);
        f->scenario_step++;
        f->scenario_step_ms = f->c->now;
        s = scenario_next(f);
    }
}

/* ------------------------------------------------------------- the API */

void faults_init(struct faults *f, struct cluster *c,
                 const struct sim_profile *profile,
                 const struct sim_scenario *scenario)
{
    memset(f, 0, sizeof(*f));
    f->c = c;
    f->profile = profile;
    f->scenario = scenario;
    f->victim = UINT32_MAX;
    f->active = true;
    if (!scenario && profile->fault_every_min_ms)
        f->next_fault_at =
            draw(f, profile->fault_every_min_ms, profile->fault_every_max_ms);
}

static void consider(uint64_t *best, bool *any, uint64_t at)
{
    if (at && (!*any || at < *best)) {
        *best = at;
        *any = true;
    }
}

bool faults_next_at(const struct faults *f, uint64_t *at)
{
    bool any = false;
    if (f->active) {
        consider(at, &any, f->next_fault_at);
        consider(at, &any, f->next_transfer_at);
        consider(at, &any, f->next_reconfig_at);
    }
    for (uint32_t i = 0; i < replica_count(f); i++) {
        consider(at, &any, f->restart_at[i]);
        consider(at, &any, f->room_at[i]);
    }
    consider(at, &any, f->heal_at);
    const struct scenario_step *s = scenario_next(f);
    if (s && s->trigger == T_AFTER)
        consider(at, &any, f->scenario_step_ms + s->arg);
    return any;
}

void faults_fire(struct faults *f)
{
    uint64_t now = f->c->now;
    for (uint32_t i = 0; i < replica_count(f); i++) {
        if (f->restart_at[i] && f->restart_at[i] <= now) {
            f->restart_at[i] = 0;
            cluster_restart(f->c, i);
        }
        if (f->room_at[i] && f->room_at[i] <= now) {
            f->room_at[i] = 0;
            cluster_disk_full(f->c, i, false);
        }
    }
    if (f->heal_at && f->heal_at <= now)
        heal(f);
    if (f->active && f->next_fault_at && f->next_fault_at <= now) {
        inject(f);
        f->next_fault_at = now + draw(f, f->profile->fault_every_min_ms,
                                      f->profile->fault_every_max_ms);
    }
    if (f->active && f->next_transfer_at && f->next_transfer_at <= now) {
        transfer_once(f);
        uint32_t e = f->transfer_every_ms;
        f->next_transfer_at =
            now + prng_range(&f->transfer_prng, e / 2, e + e / 2);
    }
    if (f->active && f->next_reconfig_at && f->next_reconfig_at <= now) {
        reconfig_once(f);
        uint32_t e = f->reconfig_every_ms;
        f->next_reconfig_at =
            now + prng_range(&f->reconfig_prng, e / 2, e + e / 2);
    }
    faults_poll(f);
}

void faults_heal_all(struct faults *f)
{
    f->active = false;
    f->next_fault_at = 0;
    f->next_transfer_at = 0;
    f->next_reconfig_at = 0;
    heal(f);
    cluster_heal_disks(f->c);
    for (uint32_t i = 0; i < replica_count(f); i++) {
        if (f->room_at[i]) {
            f->room_at[i] = 0;
            cluster_disk_full(f->c, i, false);
        }
    }
    for (uint32_t i = 0; i < replica_count(f); i++) {
        struct sim_replica *rep = &f->c->replicas[i];
        if (rep->driver && rep->paused && rep->paused_until > f->c->now)
            rep->paused_until = f->c->now; /* resumes at the next step */
    }
    restart_all(f);
}
