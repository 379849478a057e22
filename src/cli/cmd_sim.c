/* cli/cmd_sim — `cohort sim`: run the deterministic simulator over one seed,
 * a block of seeds, a named scenario, or for a while (soak), and report one
 * line per seed, the failure detector figures, and 'N passed, M failed'.
 * Exit 0 when every seed passed, 1 when one failed, 2 on bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "core/prng.h"
#include "sim/faults.h"
#include "sim/sim.h"

#define FD_SAMPLES_MAX 100000

struct sim_cli {
    struct sim_options o;
    uint64_t seed_first;
    uint64_t seed_last;
    uint64_t soak_minutes;
    /* Which of --seed, --seeds and --soak chose the seeds, as typed: a
     * second one is refused (the last used to win in silence). */
    const char *seeds_by, *seeds_value;
    bool quiet;
    bool stop;
    bool trace;
};

struct sim_totals {
    uint64_t passed;
    uint64_t failed;
    uint64_t first_failed_seed;
    uint64_t ops_committed;
    uint64_t virtual_ms;
    uint64_t fd_suspicions;
    uint64_t fd_false;
    uint64_t fd_undetected;
    uint64_t replacements;
    uint64_t spares_added;
    uint64_t slicer_handoffs;
    uint64_t *fd_samples;
    uint64_t fd_count;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: cohort sim [--seed S | --seeds A..B | --soak MINUTES]\n"
        "                  [--profile P] [--scenario NAME] [--replicas 3|5]\n"
        "                  [--ops N] [--clients N] [--reads PCT] [--bugs "
        "MASK]\n"
        "                  [--transfers MS] [--reconfigs MS] [--voters N]\n"
        "                  [--replace-after MS] [--spares N]\n"
        "                  [--volatile PCT] [--coord PCT] [--flush PCT]\n"
        "                  [--trace] [--quiet] [--stop] [--list-scenarios]\n"
        "\n"
        "  --seed S          run one seed (default 1)\n"
        "  --seeds A..B      run seeds A to B inclusive (also A-B)\n"
        "  --soak MINUTES    run seeds from a random start until time is up\n"
        "  --profile P       faults: %s (default: default)\n"
        "  --scenario NAME   a fixed fault schedule instead of random faults\n"
        "  --replicas N      group size, 3, 5 or 7 (default 3)\n"
        "  --ops N           client operations per seed (default 300)\n"
        "  --clients N       concurrent clients (default 5, at most 16)\n"
        "  --reads PCT       percent of GETs served by read index (default "
        "50)\n"
        "  --transfers MS    ask for a leadership transfer every MS on "
        "average\n"
        "                    (default 0: none)\n"
        "  --reconfigs MS    ask for a membership change every MS on average\n"
        "                    (default 0: none)\n"
        "  --voters N        epoch 0's voters: the first N replicas (default "
        "all)\n"
        "  --replace-after MS  a primary replaces a voter silent for MS by a\n"
        "                    caught-up learner (default 0: never)\n"
        "  --spares N        the last N replicas start as spares, outside "
        "epoch 0\n"
        "                    (unless --voters), and ask to be added as "
        "learners\n"
        "  --volatile PCT    percent of ops that use key expiry and "
        "pub/sub\n"
        "                    (SET PX, GET, PUBLISH on keys of their own; "
        "default 0)\n"
        "  --coord PCT       percent of ops that use sessions and locks with "
        "fencing\n"
        "                    tokens; each client keeps a session alive and "
        "watchers\n"
        "                    follow the change stream across replicas "
        "(default 0)\n"
        "  --flush PCT       percent of ops that are FLUSHALL (0..20, not "
        "with\n"
        "                    --coord; default 0)\n"
        "  --bugs MASK       inject core bugs (enum replica_bug bits)\n"
        "  --trace           print every event and action\n"
        "  --quiet           print only failures and the totals\n"
        "  --stop            stop at the first failing seed\n"
        "  --list-scenarios  list the named scenarios\n",
        sim_profile_names());
}

static bool parse_u64(const char *s, uint64_t *out)
{
    return cli_decimal_u64(s, out);
}

static bool parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    const char *sep = strstr(s, "..");
    size_t skip = 2;
    if (!sep) {
        sep = strchr(s, '-');
        skip = 1;
    }
    if (!sep)
        return parse_u64(s, a) && (*b = *a, true);
    char first[32];
    size_t n = (size_t)(sep - s);
    if (n == 0 || n >= sizeof(first))
        return false;
    memcpy(first, s, n);
    first[n] = 0;
    return parse_u64(first, a) && parse_u64(sep + skip, b) && *a <= *b;
}

/* flag ("--name") and its value, which is not what; or no value at all. */
static int bad(const char *flag, const char *value, const char *what)
{
    if (value == NULL)
        return cli_flag_needs_value("sim", flag + 2);
    char why[128];
    snprintf(why, sizeof(why), "expected %s", what);
    return cli_flag_bad("sim", flag + 2, value, why);
}

static int list_scenarios(void)
{
    const struct sim_scenario *s;
    for (uint32_t i = 0; (s = sim_scenario_at(i)) != NULL; i++)
        printf("%-42s %s\n", sim_scenario_name(s), sim_scenario_summary(s));
    return 0;
}

static int parse_value(struct sim_cli *cli, const char *flag, const char *v)
{
    uint64_t n;
    bool chooses_seeds = !strcmp(flag, "--seed") || !strcmp(flag, "--seeds") ||
                         !strcmp(flag, "--soak");
    if (chooses_seeds && v != NULL && cli->seeds_by != NULL &&
        strcmp(cli->seeds_by, flag) != 0) {
        fprintf(stderr,
                "cohort sim: %s %s and %s %s both choose the seeds; give "
                "one of them\n",
                cli->seeds_by, cli->seeds_value, flag, v);
        return 2;
    }
    if (chooses_seeds && v != NULL) {
        cli->seeds_by = flag;
        cli->seeds_value = v;
    }
    if (!strcmp(flag, "--seed")) {
        if (!parse_u64(v, &cli->seed_first))
            return bad(flag, v, "a decimal number");
        cli->seed_last = cli->seed_first;
    } else if (!strcmp(flag, "--seeds")) {
        if (!v || !parse_range(v, &cli->seed_first, &cli->seed_last))
            return bad(flag, v, "a range of decimal numbers A..B");
    } else if (!strcmp(flag, "--soak")) {
        if (!parse_u64(v, &cli->soak_minutes) || cli->soak_minutes == 0)
            return bad(flag, v, "a decimal number of minutes above 0");
    } else if (!strcmp(flag, "--profile")) {
        if (!v || !sim_profile_find(v))
            return bad(flag, v, "a profile name (see --help)");
        cli->o.profile = v;
    } else if (!strcmp(flag, "--scenario")) {
        if (!v || !sim_scenario_find(v))
            return bad(flag, v, "a scenario name (see --list-scenarios)");
        cli->o.scenario = v;
    } else if (!strcmp(flag, "--replicas")) {
        if (!parse_u64(v, &n) || (n != 3 && n != 5 && n != 7))
            return bad(flag, v, "a decimal number: 3, 5 or 7");
        cli->o.replicas = (uint32_t)n;
    } else if (!strcmp(flag, "--ops")) {
        if (!parse_u64(v, &n) || n == 0 || n > 1000000)
            return bad(flag, v, "a decimal number from 1 to 1000000");
        cli->o.ops = n;
    } else if (!strcmp(flag, "--clients")) {
        if (!parse_u64(v, &n) || n == 0 || n > 16)
            return bad(flag, v, "a decimal number from 1 to 16");
        cli->o.clients = (uint32_t)n;
    } else if (!strcmp(flag, "--reads")) {
        if (!parse_u64(v, &n) || n > 100)
            return bad(flag, v, "a decimal number from 0 to 100");
        cli->o.reads = (uint32_t)n;
    } else if (!strcmp(flag, "--transfers")) {
        if (!parse_u64(v, &n) || (n != 0 && n < 50) || n > 600000)
            return bad(flag, v, "a decimal number of ms: 0, or 50 to 600000");
        cli->o.transfers_ms = (uint32_t)n;
    } else if (!strcmp(flag, "--reconfigs")) {
        if (!parse_u64(v, &n) || (n != 0 && n < 50) || n > 600000)
            return bad(flag, v, "a decimal number of ms: 0, or 50 to 600000");
        cli->o.reconfig_ms = (uint32_t)n;
    } else if (!strcmp(flag, "--voters")) {
        if (!parse_u64(v, &n) || n > COHORT_REPLICAS_MAX)
            return bad(flag, v, "a decimal number from 0 (all) to 7");
        cli->o.voters = (uint32_t)n;
    } else if (!strcmp(flag, "--replace-after")) {
        if (!parse_u64(v, &n) || (n != 0 && n < 50) || n > 600000)
            return bad(flag, v, "a decimal number of ms: 0, or 50 to 600000");
        cli->o.replace_after_ms = (uint32_t)n;
    } else if (!strcmp(flag, "--spares")) {
        if (!parse_u64(v, &n) || n >= COHORT_REPLICAS_MAX)
            return bad(flag, v, "a decimal number below the replica count");
        cli->o.spares = (uint32_t)n;
    } else if (!strcmp(flag, "--volatile")) {
        if (!parse_u64(v, &n) || n > 100)
            return bad(flag, v, "a decimal number from 0 to 100");
        cli->o.volatile_pct = (uint32_t)n;
    } else if (!strcmp(flag, "--coord")) {
        if (!parse_u64(v, &n) || n > 100)
            return bad(flag, v, "a decimal number from 0 to 100");
        cli->o.coord_pct = (uint32_t)n;
    } else if (!strcmp(flag, "--flush")) {
        if (!parse_u64(v, &n) || n > 20)
            return bad(flag, v, "a decimal number from 0 to 20");
        cli->o.flush_pct = (uint32_t)n;
    } else if (!strcmp(flag, "--bugs")) {
        if (!parse_u64(v, &n) || n > UINT32_MAX)
            return bad(flag, v, "a decimal bug mask");
        cli->o.bugs = (uint32_t)n;
    } else {
        return -1;
    }
    return 0;
}

static int parse(struct sim_cli *cli, int argc, char **argv)
{
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--list-scenarios"))
            return list_scenarios() + 1;
        if (!strcmp(a, "--trace")) {
            cli->trace = true;
        } else if (!strcmp(a, "--quiet")) {
            cli->quiet = true;
        } else if (!strcmp(a, "--stop")) {
            cli->stop = true;
        } else {
            const char *v = i + 1 < argc ? argv[i + 1] : NULL;
            int rc = parse_value(cli, a, v);
            if (rc < 0)
                return cli_flag_unknown("sim", a);
            if (rc == 0)
                rc = cli_flag_once("sim", &seen, a + 2, v);
            if (rc)
                return rc;
            i++;
        }
    }
    return 0;
}

static void totals_add(struct sim_totals *t, const struct sim_options *o,
                       const struct sim_result *r)
{
    if (r->ok) {
        t->passed++;
    } else {
        if (t->failed == 0)
            t->first_failed_seed = o->seed;
        t->failed++;
    }
    t->ops_committed += r->ops_committed;
    t->virtual_ms += r->virtual_ms;
    t->fd_suspicions += r->fd_suspicions;
    t->replacements += r->replacements;
    t->spares_added += r->spares_added;
    t->slicer_handoffs += r->slicer_handoffs;
    t->fd_false += r->fd_false;
    t->fd_undetected += r->fd_undetected;
    uint64_t n = r->fd_detections < 64 ? r->fd_detections : 64;
    for (uint64_t i = 0; i < n && t->fd_count < FD_SAMPLES_MAX; i++)
        t->fd_samples[t->fd_count++] = r->fd_detect_ms[i];
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_totals(const struct sim_cli *cli, struct sim_totals *t,
                         double seconds)
{
    uint64_t seeds = t->passed + t->failed;
    qsort(t->fd_samples, t->fd_count, sizeof(uint64_t), compare_u64);
    uint64_t med = t->fd_count ? t->fd_samples[t->fd_count / 2] : 0;
    uint64_t max = t->fd_count ? t->fd_samples[t->fd_count - 1] : 0;
    double minutes = (double)t->virtual_ms / 60000.0;
    printf("sim: %" PRIu64 " seeds in %.1fs (%.1f seeds/s, %.0f seeds/min), "
           "%" PRIu64 " ops committed (%.0f simulated ops/s)\n",
           seeds, seconds, seconds > 0 ? (double)seeds / seconds : 0.0,
           seconds > 0 ? (double)seeds * 60.0 / seconds : 0.0, t->ops_committed,
           seconds > 0 ? (double)t->ops_committed / seconds : 0.0);
    printf("failure detector: detection median %" PRIu64 "ms max %" PRIu64
           "ms over %" PRIu64 " primary faults (%" PRIu64
           " healed undetected); false suspicions %" PRIu64 " of %" PRIu64
           " (%.2f per virtual minute)\n",
           med, max, t->fd_count, t->fd_undetected, t->fd_false,
           t->fd_suspicions, minutes > 0 ? (double)t->fd_false / minutes : 0);
    if (cli->o.replace_after_ms || cli->o.spares)
        printf("spares: %" PRIu64 " voters replaced, %" PRIu64
               " spares added\n",
               t->replacements, t->spares_added);
    if (cli->o.flush_pct)
        printf("flushes: %" PRIu64 " took the records of a snapshot walk\n",
               t->slicer_handoffs);
    if (t->failed)
        printf("first failing seed: %" PRIu64 "\n", t->first_failed_seed);
    (void)cli;
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", t->passed, t->failed);
}

static bool run_one(struct sim_cli *cli, struct sim_totals *t, uint64_t seed)
{
    struct sim_result *r = malloc(sizeof(*r));
    if (!r) {
        fprintf(stderr, "cohort sim: out of memory\n");
        exit(1);
    }
    cli->o.seed = seed;
    bool ok = sim_run(&cli->o, r);
    totals_add(t, &cli->o, r);
    if (!ok || !cli->quiet)
        sim_result_print(&cli->o, r, stdout);
    fflush(stdout); /* a core assertion aborts: keep what was printed */
    free(r);
    return ok;
}

int cmd_sim(int argc, char **argv)
{
    struct sim_cli cli = {
        .o = {.replicas = 3,
              .profile = "default",
              .ops = 300,
              .clients = 5,
              .reads = SIM_READS_DEFAULT},
        .seed_first = 1,
        .seed_last = 1,
    };
    int rc = parse(&cli, argc, argv);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (cli.o.spares >= cli.o.replicas) {
        fprintf(stderr, "cohort sim: --spares must be below --replicas\n");
        return 2;
    }
    if (cli.o.flush_pct && cli.o.coord_pct) {
        fprintf(stderr, "cohort sim: --flush cannot run with --coord (a "
                        "FLUSHALL deletes the locks' keys); drop one\n");
        return 2;
    }
    if (cli.trace) {
        /* Line buffered: a core assertion aborts, and the trace up to it
         * is what explains it. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        cli.o.trace = stdout;
    }
    struct sim_totals t = {0};
    t.fd_samples = malloc(FD_SAMPLES_MAX * sizeof(uint64_t));
    if (!t.fd_samples) {
        fprintf(stderr, "cohort sim: out of memory\n");
        return 1;
    }
    double start = wall_seconds();
    if (cli.soak_minutes) {
        struct prng p;
        prng_init(&p, (uint64_t)time(NULL) ^ (uint64_t)start);
        uint64_t seed = prng_below(&p, UINT64_C(1) << 40);
        double end = start + 60.0 * (double)cli.soak_minutes;
        cli.quiet = true;
        printf("soak: %" PRIu64 " minutes from seed %" PRIu64 "\n",
               cli.soak_minutes, seed);
        while (wall_seconds() < end)
            if (!run_one(&cli, &t, seed++) && cli.stop)
                break;
    } else {
        for (uint64_t s = cli.seed_first; s <= cli.seed_last; s++) {
            if (!run_one(&cli, &t, s) && cli.stop)
                break;
            if (s == UINT64_MAX)
                break;
        }
    }
    print_totals(&cli, &t, wall_seconds() - start);
    free(t.fd_samples);
    return t.failed ? 1 : 0;
}
