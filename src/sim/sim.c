/* sim — one seeded simulator run from faults to the final checks. See sim.h.
 */
#include "sim/sim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "sim/cluster.h"
#include "sim/faults.h"
#include "sim/linearize.h"

/* Heal by then in any case: two minutes, and 100 ms more per client op so
 * that long histories (--ops 10000 and more) are issued whole. */
#define FAULT_PHASE_MAX_MS(ops) (120u * 1000u + 100u * (uint64_t)(ops))
#define PROGRESS_MS (30u * 1000u) /* phases 2 and 3 each */
#define LIN_BUDGET 2000000u

static char assert_context[512];

static void set_assert_context(const struct sim_options *o)
{
    FILE *f = fmemopen(assert_context, sizeof(assert_context), "w");
    if (!f)
        return;
    fprintf(f, "[sim seed %" PRIu64 "; ", o->seed);
    sim_reproduce_print(o, f);
    fprintf(f, "]");
    fclose(f);
    /* fmemopen ends with a newline from sim_reproduce_print; keep one line */
    char *nl = strchr(assert_context, '\n');
    if (nl)
        memmove(nl, nl + 1, strlen(nl + 1) + 1);
    cohort_assert_context = assert_context;
}

/* Run events and faults until done() holds or virtual time reaches the
 * deadline. Returns true if done() became true. */
static bool run_until(struct cluster *c, struct faults *f, uint64_t deadline,
                      bool (*done)(const struct cluster *))
{
    while (!c->check.failed) {
        if (done(c))
            return true;
        uint64_t tc = 0, tf = 0;
        bool have_c = cluster_next_at(c, &tc);
        bool have_f = faults_next_at(f, &tf);
        if (!have_c && !have_f)
            return false;
        bool fault_first = have_f && (!have_c || tf <= tc);
        uint64_t t = fault_first ? tf : tc;
        if (t > deadline) {
            cluster_advance(c, deadline);
            return false;
        }
        if (fault_first) {
            cluster_advance(c, t > c->now ? t : c->now);
            faults_fire(f);
        } else {
            cluster_step(c);
            coord_pump(c);
            if (f->scenario)
                faults_poll(f);
        }
    }
    return false;
}

static bool all_issued(const struct cluster *c)
{
    const struct workload *w = &c->workload;
    return w->stats.issued >= w->config.ops_total;
}

static bool clients_done(const struct cluster *c)
{
    return workload_done(&c->workload);
}

static bool quiescent(const struct cluster *c)
{
    return cluster_quiescent(c);
}

static void describe_state(struct cluster *c, struct sim_result *res)
{
    FILE *f = fmemopen(res->state, sizeof(res->state), "w");
    if (!f)
        return;
    cluster_describe(c, f);
    fprintf(f,
            "  clients: %" PRIu64 " outstanding, %" PRIu64
            " issued, committed up to op %" PRIu64 "\n",
            workload_outstanding(&c->workload), c->workload.stats.issued,
            c->check.commit_max);
    fclose(f);
}

static void check_linearizable(struct cluster *c, struct sim_result *res)
{
    struct lin_op *ops;
    size_t count;
    workload_lin_ops(&c->workload, &ops, &count);
    struct lin_result lin;
    lin_check(ops, count, LIN_BUDGET, &lin);
    free(ops);
    res->lin_gave_up = lin.gave_up;
    if (!lin.ok)
        check_fail(&c->check, "linearizable", "%s", lin.message);
}

/* Voters replaced so far: the crashed lives' and the live replicas'. */
static uint64_t replacements(const struct cluster *c, uint64_t *spares_added)
{
    uint64_t n = c->stats.replacements;
    uint64_t added = c->stats.spares_added;
    for (uint32_t i = 0; i < c->config.replica_count; i++)
        if (c->replicas[i].driver) {
            const struct replica_stats *rs = replica_stats(c->replicas[i].r);
            n += rs->replacements;
            added += rs->spares_added;
        }
    if (spares_added)
        *spares_added = added;
    return n;
}

/* A scenario that keeps a voter down past the grace period, run with
 * spares: it was replaced, and came back as a learner (it never flaps back
 * in by itself; only another replacement makes it a voter again). Only
 * when the victim was the one replica down: another crash (a disk error
 * ends a process) may take the primary, or the quorum the change needs,
 * away for long enough. */
static void check_replaced(struct cluster *c, uint32_t victim)
{
    if (c->stats.crashes != 1)
        return;
    uint64_t n = replacements(c, NULL);
    if (n == 0) {
        check_fail(&c->check, "expectation",
                   "voter r%u was down past the grace period with spares "
                   "registered, and nobody replaced it",
                   victim);
        return;
    }
    uint32_t p = cluster_primary(c);
    if (victim == UINT32_MAX || p == UINT32_MAX || n >= 2)
        return;
    const struct membership *m = replica_membership(c->replicas[p].r);
    if (membership_is_voter(m, victim))
        check_fail(&c->check, "expectation",
                   "voter r%u was replaced once and is a voter again in "
                   "epoch %u",
                   victim, m->epoch);
}

/* The catch-up scenario's victim installs a snapshot, then continues from
 * the sender's log (pinned for it: core/transfer.c). Another install means
 * the log after its snapshot was gone when it asked; a few can happen
 * (the sender crashed, say), one after another is the livelock of issue
 * 12: under steady writes it never catches up from the log. */
#define CATCH_UP_INSTALLS_MAX 2

static void check_caught_up(struct cluster *c, uint32_t victim)
{
    if (victim == UINT32_MAX || c->stats.crashes != 1 || !c->replicas[victim].r)
        return;
    uint64_t n = replica_stats(c->replicas[victim].r)->snapshots_installed;
    if (n > CATCH_UP_INSTALLS_MAX)
        check_fail(&c->check, "expectation",
                   "r%u installed %" PRIu64 " snapshots after its restart "
                   "(at most %u expected): the log after each was "
                   "compacted away before it asked",
                   victim, n, CATCH_UP_INSTALLS_MAX);
}

static void cluster_config_from(const struct sim_options *o,
                                const struct sim_profile *p,
                                struct cluster_config *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->replica_count = o->replicas;
    cc->seed = o->seed;
    cc->bugs = o->bugs;
    cc->initial_voters = o->voters;
    if (!o->voters && o->spares && o->spares < o->replicas)
        cc->initial_voters = o->replicas - o->spares;
    cc->replace_after_ms = o->replace_after_ms;
    cc->spares = o->spares;
    cc->net = p->net;
    cc->disk = p->disk;
    cc->storage = p->storage;
    cc->clock_drift_ppm = p->clock_drift_ppm;
    cc->tick_interval_ms = 50;
    cc->trace = o->trace;
    cc->workload = (struct workload_config){
        .client_count = o->clients,
        .ops_total = o->ops,
        .key_count = 5,
        .timeout_ms = 400,
        .think_max_ms = 10,
        .give_up_ms = p->give_up_ppm ? 1500 : 0,
        .give_up_ppm = p->give_up_ppm,
        .read_pct = o->reads,
        .volatile_pct = o->volatile_pct,
        .coord_pct = o->coord_pct,
        .flush_pct = o->flush_pct,
    };
}

static void collect(struct cluster *c, struct sim_result *res)
{
    const struct cluster_stats *st = &c->stats;
    res->virtual_ms = c->now;
    res->steps = c->step;
    res->ops_committed = c->check.commit_max;
    res->client_ok = c->workload.stats.ok;
    res->client_unknown = c->workload.stats.unknown;
    uint64_t views = cluster_views(c);
    res->view_changes = views > 0 ? views - 1 : 0;
    res->crashes = st->crashes;
    res->pauses = st->pauses;
    res->partitions = st->partitions;
    res->dropped = c->net.stats.lost + c->net.stats.cut;
    res->duplicated = c->net.stats.duplicated;
    res->corruptions = st->corruptions;
    res->torn = 0;
    for (uint32_t i = 0; i < c->config.replica_count; i++)
        res->torn += c->replicas[i].disk.stats.torn;
    res->snapshots_installed = st->snapshots_installed;
    res->transfers_asked = st->transfers_asked;
    res->transfers_started = st->transfers_started;
    res->replacements = replacements(c, &res->spares_added);
    res->sweep_ops = st->sweep_ops;
    res->slicer_handoffs = st->slicer_handoffs;
    res->session_sweep_ops = st->session_sweep_ops;
    res->sessions_expired = c->check.sessions_expired;
    res->lost_kept_alive = c->workload.stats.lost_kept_alive;
    res->lock_grants = c->check.lock_grants;
    res->client_grants = c->workload.stats.grants;
    res->fenced = c->workload.stats.fenced;
    res->watch_events = c->coord.stats.events;
    res->watch_resumes = c->coord.stats.resumes;
    res->watch_compacted = c->coord.stats.compacted;
    res->watch_failovers = c->coord.stats.failovers;
    res->fd_detections = st->fd_detections;
    memcpy(res->fd_detect_ms, st->fd_detect_ms, sizeof(res->fd_detect_ms));
    res->fd_undetected = st->fd_undetected;
    res->fd_suspicions = st->fd_suspicions;
    res->fd_false = st->fd_false;
    res->trace_hash = cluster_trace_hash(c);
    res->ok = !c->check.failed;
    if (!res->ok) {
        snprintf(res->what, sizeof(res->what), "%s", c->check.what);
        res->step = c->check.failed_step;
        res->fail_ms = c->check.failed_ms;
        snprintf(res->detail, sizeof(res->detail), "%s", c->check.detail);
        describe_state(c, res);
    }
}

bool sim_run(const struct sim_options *o, struct sim_result *res)
{
    memset(res, 0, sizeof(*res));
    const struct sim_profile *named = sim_profile_find(o->profile);
    ASSERT(named != NULL);
    struct sim_profile drawn;
    const struct sim_profile *profile =
        sim_profile_draw(named, o->seed, &drawn);
    const struct sim_scenario *scenario = NULL;
    if (o->scenario) {
        scenario = sim_scenario_find(o->scenario);
        ASSERT(scenario != NULL);
    }
    set_assert_context(o);
    struct cluster_config cc;
    cluster_config_from(o, profile, &cc);
    struct cluster *c = malloc(sizeof(*c));
    ASSERT(c != NULL);
    cluster_init(c, &cc);
    coord_init(&c->coord, o->coord_pct > 0, o->seed);
    struct faults f;
    faults_init(&f, c, profile, scenario);
    faults_transfers(&f, o->seed, o->transfers_ms);
    faults_reconfigs(&f, o->seed, o->reconfig_ms);

    /* 1. Faults while the clients work. */
    run_until(c, &f, FAULT_PHASE_MAX_MS(o->ops), all_issued);
    /* 2. Heal; every request must complete. */
    faults_heal_all(&f);
    c->workload.no_give_up = true;
    c->workload.stop_issuing = true;
    if (!c->check.failed &&
        !run_until(c, &f, c->now + PROGRESS_MS, clients_done) &&
        !c->check.failed) {
        check_fail(&c->check, "progress",
                   "%" PRIu64 " client requests still outstanding %u ms "
                   "after every fault healed",
                   workload_outstanding(&c->workload), PROGRESS_MS);
    }
    /* 3. Settle, then converge and linearize. */
    if (!c->check.failed &&
        !run_until(c, &f, c->now + PROGRESS_MS, quiescent) && !c->check.failed)
        check_fail(&c->check, "progress",
                   "the group did not settle (one view, everything committed "
                   "applied everywhere) %u ms after the clients finished",
                   PROGRESS_MS);
    if (!c->check.failed)
        cluster_check_converged(c);
    if (!c->check.failed && scenario && o->replace_after_ms && o->spares &&
        sim_scenario_expects_replacement(scenario))
        check_replaced(c, f.victim);
    if (!c->check.failed && scenario && sim_scenario_expects_catch_up(scenario))
        check_caught_up(c, f.victim);
    if (!c->check.failed)
        coord_finish(c);
    /* 4. Every replica loses power and restarts from its disk alone: it
     * must recover the state the group agreed on. */
    if (!c->check.failed) {
        for (uint32_t i = 0; i < c->config.replica_count; i++)
            cluster_crash(c, i, true);
        for (uint32_t i = 0; i < c->config.replica_count; i++)
            cluster_restart(c, i);
        if (!run_until(c, &f, c->now + PROGRESS_MS, quiescent) &&
            !c->check.failed)
            check_fail(&c->check, "recovery",
                       "the group did not settle %u ms after every replica "
                       "restarted from its disk",
                       PROGRESS_MS);
        if (!c->check.failed)
            cluster_check_converged(c);
    }
    if (!c->check.failed)
        check_linearizable(c, res);
    collect(c, res);
    cluster_deinit(c);
    free(c);
    cohort_assert_context = NULL;
    return res->ok;
}

static uint64_t median(uint64_t *v, uint64_t n)
{
    for (uint64_t i = 1; i < n; i++)
        for (uint64_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? v[n / 2] : 0;
}

void sim_result_print(const struct sim_options *o, const struct sim_result *r,
                      FILE *out)
{
    uint64_t n = r->fd_detections < 64 ? r->fd_detections : 64;
    uint64_t sorted[64];
    memcpy(sorted, r->fd_detect_ms, sizeof(sorted));
    uint64_t med = median(sorted, n);
    uint64_t max = n ? sorted[n - 1] : 0;
    fprintf(out,
            "seed %" PRIu64 ": %s virtual %" PRIu64 ".%03" PRIu64
            "s, committed %" PRIu64 ", clients %" PRIu64 " ok/%" PRIu64
            " unknown, view changes %" PRIu64 ", crashes %" PRIu64
            ", pauses %" PRIu64 ", partitions %" PRIu64
            ", msgs dropped %" PRIu64 "/dup %" PRIu64 ", corrupt %" PRIu64
            ", torn %" PRIu64 ", snapshots %" PRIu64 ", fd detect %" PRIu64
            " med %" PRIu64 "ms max %" PRIu64 "ms, false %" PRIu64 "/%" PRIu64
            "%s, trace %016" PRIx64 "\n",
            o->seed, r->ok ? "ok" : "FAIL", r->virtual_ms / 1000,
            r->virtual_ms % 1000, r->ops_committed, r->client_ok,
            r->client_unknown, r->view_changes, r->crashes, r->pauses,
            r->partitions, r->dropped, r->duplicated, r->corruptions, r->torn,
            r->snapshots_installed, r->fd_detections, med, max, r->fd_false,
            r->fd_suspicions, r->lin_gave_up ? ", lin inconclusive" : "",
            r->trace_hash);
    if (o->volatile_pct)
        fprintf(out, "  expiry sweep ops proposed %" PRIu64 "\n", r->sweep_ops);
    if (o->flush_pct)
        fprintf(out,
                "  flushes that took the records of a snapshot walk %" PRIu64
                "\n",
                r->slicer_handoffs);
    if (o->coord_pct)
        fprintf(out,
                "  coord: session sweep ops %" PRIu64
                ", sessions expired %" PRIu64 " (%" PRIu64
                " found gone by a timely KEEPALIVE), lock grants %" PRIu64
                " (%" PRIu64 " answered), fenced writes %" PRIu64
                ", watch events %" PRIu64 ", resumes %" PRIu64 " (%" PRIu64
                " compacted, %" PRIu64 " after a failover)\n",
                r->session_sweep_ops, r->sessions_expired, r->lost_kept_alive,
                r->lock_grants, r->client_grants, r->fenced, r->watch_events,
                r->watch_resumes, r->watch_compacted, r->watch_failovers);
    if (o->transfers_ms || r->transfers_asked)
        fprintf(out, "  transfers asked %" PRIu64 ", started %" PRIu64 "\n",
                r->transfers_asked, r->transfers_started);
    if (o->replace_after_ms || o->spares)
        fprintf(out,
                "  spares: voters replaced %" PRIu64 ", spares added %" PRIu64
                "\n",
                r->replacements, r->spares_added);
    if (r->ok)
        return;
    fprintf(out,
            "  check '%s' failed at step %" PRIu64 " (virtual %" PRIu64
            "ms): %s\n",
            r->what, r->step, r->fail_ms, r->detail);
    fputs(r->state, out);
    fputs("  ", out);
    sim_reproduce_print(o, out);
}

void sim_reproduce_print(const struct sim_options *o, FILE *out)
{
    fprintf(out, "reproduce: cohort sim --seed %" PRIu64, o->seed);
    if (o->scenario)
        fprintf(out, " --scenario %s", o->scenario);
    fprintf(out, " --profile %s --replicas %u --ops %" PRIu64, o->profile,
            o->replicas, o->ops);
    if (o->clients != 5)
        fprintf(out, " --clients %u", o->clients);
    if (o->reads != SIM_READS_DEFAULT)
        fprintf(out, " --reads %u", o->reads);
    if (o->transfers_ms)
        fprintf(out, " --transfers %u", o->transfers_ms);
    if (o->reconfig_ms)
        fprintf(out, " --reconfigs %u", o->reconfig_ms);
    if (o->voters)
        fprintf(out, " --voters %u", o->voters);
    if (o->replace_after_ms)
        fprintf(out, " --replace-after %u", o->replace_after_ms);
    if (o->spares)
        fprintf(out, " --spares %u", o->spares);
    if (o->volatile_pct)
        fprintf(out, " --volatile %u", o->volatile_pct);
    if (o->coord_pct)
        fprintf(out, " --coord %u", o->coord_pct);
    if (o->flush_pct)
        fprintf(out, " --flush %u", o->flush_pct);
    if (o->bugs)
        fprintf(out, " --bugs %u", o->bugs);
    fprintf(out, " --trace\n");
}
