/* cli/cmd_bench — `cohort bench`: its flags, their checks and defaults, and
 * the output (progress on stderr, one result line on stdout). The load
 * generator itself is src/bench. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/probe.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "runtime/addr.h"

#define DEFAULT_PORT "7001"
#define DEFAULT_CONNS_MAX 64u
#define CONC_MAX 100000u
#define CONNS_MAX 10000u
#define VALUE_SIZE_MAX (512ull << 20)
/* Preloading more than this is almost surely a mistake (it is kept by
 * every replica); the message says how to shrink it. */
#define PRELOAD_BYTES_MAX (2ull << 30)
#define PRINT_PRIMARY_TIMEOUT_MS 10000u

static const struct cli_flag_spec flags[] = {
    {"host", "HOST", "server host (default 127.0.0.1)"},
    {"port", "PORT", "server port (default " DEFAULT_PORT ")"},
    {"members", "H:P,H:P,...",
     "spread connections round-robin over these members "
     "(instead of --host/--port)"},
    {"system", "NAME",
     "system label in the result line (default cohort; e.g. redis)"},
    {"workload", "W",
     "write (SET), read (GET), lread (READONLY, then GET), mixed "
     "(GET/SET), exec (a transaction of 5 INCRs: what EXEC commits), "
     "publish (PUBLISH to channel k<n>, --value-size bytes) or failover "
     "(default write)"},
    {"conc", "N",
     "requests kept outstanding (default 64; failover: 1, the only "
     "value it takes)"},
    {"conns", "M",
     "connections (default min(N, 64)); with N > M each pipelines N/M "
     "requests"},
    {"value-size", "BYTES",
     "SET value size (default 100; cohort's limit is "
     "1048576, its --max-value-size)"},
    {"keys", "N", "keys k0 .. k<N-1>, picked uniformly (default 10000)"},
    {"read-percent", "P", "mixed: percent of GETs (default 90)"},
    {"preload", NULL,
     "SET every key first, pipelined, not measured (default for read, "
     "lread, mixed)"},
    {"no-preload", NULL, "skip the preload of read, lread and mixed"},
    {"seconds", "S",
     "measured duration (default 10; failover: a cap, default 60)"},
    {"ops", "N", "stop after N acknowledged ops, if before --seconds"},
    {"warmup-seconds", "S", "load before measuring, not counted (default 0)"},
    {"timeout-ms", "MS",
     "per request and connect, then reconnect to the next member "
     "(default 10000; failover 2000)"},
    {"kill-cmd", "CMD",
     "failover: shell command (/bin/sh -c) to run, e.g. \"kill -9 PID\""},
    {"kill-after-ms", "MS",
     "failover: run --kill-cmd this long after the "
     "start (default 2000)"},
    {"after-ms", "MS",
     "failover: keep writing this long after the first acknowledgement "
     "after the kill (default 1000)"},
    {"seed", "N", "seed of the key choice (default 1)"},
    {"quiet", NULL, "no progress lines on stderr"},
    {"print-primary", NULL,
     "print \"primary=H:P index=I pid=P view=V\" and exit (cohort only)"},
    {"help", NULL, "this text"},
};
#define FLAG_COUNT (sizeof(flags) / sizeof(flags[0]))

/* Print text as words after a space each, wrapped at width; continuation
 * lines start at column indent. The cursor is at column indent - 1. */
static void print_wrapped(const char *text, int indent, int width)
{
    int column = indent - 1;
    bool line_empty = true;
    while (*text) {
        int word = (int)strcspn(text, " ");
        if (!line_empty && column + 1 + word > width) {
            printf("\n%*s", indent - 1, "");
            column = indent - 1;
        }
        printf(" %.*s", word, text);
        column += 1 + word;
        line_empty = false;
        text += word;
        while (*text == ' ')
            text++;
    }
    putchar('\n');
}

static void usage(void)
{
    printf("usage: cohort bench [options]\n\n"
           "Keep N requests outstanding over M connections to a cohort "
           "cluster (or any\nRedis-protocol server) for a time or an op "
           "count; print progress each second\non stderr and one result "
           "line on stdout:\n\n"
           "  bench system=cohort workload=write conc=128 conns=64 "
           "value=100 ops=123456\n"
           "    secs=10.00 ops_per_s=12345.6 p50_us=.. p90_us=.. p99_us=.. "
           "p999_us=..\n"
           "    max_us=.. errors=0 [failover_ms=..]\n\n"
           "Latencies run from sending a request to reading its reply, in "
           "microseconds.\nerrors counts error replies, and requests lost "
           "with a connection. A\nconnection that breaks or times out "
           "reconnects to the next member after a\nwait that doubles from "
           "10 ms to 1 s until a connect succeeds; one that gets\n"
           "-TRYAGAIN, -MOVED, -UNKNOWN or the like takes its other replies "
           "and moves\nto the next member after 10 ms. failover writes at "
           "concurrency 1, runs\n--kill-cmd, and reports failover_ms: from "
           "just before the kill to the\nacknowledgement of the first write "
           "sent after the command exited (-1 if\nnone).\n\n"
           "options:\n");
    for (size_t i = 0; i < FLAG_COUNT; i++) {
        char left[40];
        snprintf(left, sizeof(left), "--%s%s%s", flags[i].name,
                 flags[i].arg ? " " : "", flags[i].arg ? flags[i].arg : "");
        printf("  %-24s", left);
        print_wrapped(flags[i].help, 27, 79);
    }
    printf("\nexit status: 0 done, 1 the run failed (no member reachable, no "
           "op acknowledged,\nno write acknowledged after the kill), 2 bad "
           "usage.\n");
}

struct cli {
    struct bench_config c;
    const char *host;
    const char *port;
    const char *members;
    bool conc_set, conns_set, seconds_set, timeout_set;
    int preload; /* -1 default, 0 no, 1 yes */
    bool print_primary;
};

static int bad(const char *name, const char *value, const char *why)
{
    return cli_flag_bad("bench", name, value, why);
}

static int parse_u64(const char *name, const char *value, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    return cli_flag_u64("bench", name, value, min, max, out);
}

static int parse_u32(const char *name, const char *value, uint32_t min,
                     uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    int rc = parse_u64(name, value, min, max, &v);
    *out = (uint32_t)v;
    return rc;
}

static int parse_seconds(const char *name, const char *value, double min,
                         double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || *end || end == value || !(v >= min) || v > 1e7) {
        char why[64];
        snprintf(why, sizeof(why), "expected a number of seconds >= %g", min);
        return bad(name, value, why);
    }
    *out = v;
    return 0;
}

static int add_member(struct bench_config *c, const char *text)
{
    if (c->member_count == BENCH_MEMBERS_MAX)
        return bad("members", text, "too many members (at most 16)");
    struct bench_member *m = &c->members[c->member_count];
    struct cohort_err err;
    err_clear(&err);
    if (strlen(text) >= sizeof(m->text) ||
        addr_parse(text, &m->addr, &err) != 0)
        return bad("members", text,
                   err.code ? err.message : "address too long");
    snprintf(m->text, sizeof(m->text), "%s", text);
    c->member_count++;
    return 0;
}

static int set_members(struct cli *o)
{
    if (!o->members) {
        char text[BENCH_MEMBER_TEXT_MAX];
        bool v6 = strchr(o->host, ':') != NULL;
        snprintf(text, sizeof(text), v6 ? "[%s]:%s" : "%s:%s", o->host,
                 o->port);
        struct cohort_err err;
        err_clear(&err);
        struct bench_member *m = &o->c.members[0];
        if (addr_parse(text, &m->addr, &err) != 0) {
            fprintf(stderr, "cohort bench: --host/--port %s: %s\n", text,
                    err.message);
            return 2;
        }
        snprintf(m->text, sizeof(m->text), "%s", text);
        o->c.member_count = 1;
        return 0;
    }
    char *copy = strdup(o->members);
    int rc = copy ? 0 : 1;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save))
        rc = add_member(&o->c, tok);
    free(copy);
    if (rc == 0 && o->c.member_count == 0)
        rc = bad("members", o->members, "expected host:port,host:port,...");
    return rc;
}

static int set_flag(struct cli *o, const char *name, const char *value)
{
    struct bench_config *c = &o->c;
    uint64_t v = 0;
    int rc = 0;
    if (!strcmp(name, "host")) {
        o->host = value;
    } else if (!strcmp(name, "port")) {
        rc = parse_u64(name, value, 1, 65535, &v);
        o->port = value;
    } else if (!strcmp(name, "members")) {
        o->members = value;
    } else if (!strcmp(name, "system")) {
        if (!*value || strpbrk(value, " \t=\n"))
            return bad(name, value, "expected one word without spaces or =");
        c->system = value;
    } else if (!strcmp(name, "workload")) {
        int w = bench_workload_parse(value);
        if (w < 0)
            return bad(name, value,
                       "expected write, read, lread, mixed, exec, publish "
                       "or failover");
        c->workload = (enum bench_workload)w;
    } else if (!strcmp(name, "conc")) {
        rc = parse_u32(name, value, 1, CONC_MAX, &c->concurrency);
        o->conc_set = true;
    } else if (!strcmp(name, "conns")) {
        rc = parse_u32(name, value, 1, CONNS_MAX, &c->connections);
        o->conns_set = true;
    } else if (!strcmp(name, "value-size")) {
        rc = parse_u64(name, value, 0, VALUE_SIZE_MAX, &v);
        c->value_size = (size_t)v;
    } else if (!strcmp(name, "keys")) {
        rc = parse_u64(name, value, 1, UINT64_MAX / 2, &c->keys);
    } else if (!strcmp(name, "read-percent")) {
        rc = parse_u32(name, value, 0, 100, &c->read_percent);
    } else if (!strcmp(name, "seconds")) {
        rc = parse_seconds(name, value, 0.001, &c->seconds);
        o->seconds_set = true;
    } else if (!strcmp(name, "ops")) {
        rc = parse_u64(name, value, 1, UINT64_MAX / 2, &c->ops);
    } else if (!strcmp(name, "warmup-seconds")) {
        rc = parse_seconds(name, value, 0, &c->warmup_seconds);
    } else if (!strcmp(name, "timeout-ms")) {
        rc = parse_u32(name, value, 10, 3600000, &c->timeout_ms);
        o->timeout_set = true;
    } else if (!strcmp(name, "kill-cmd")) {
        c->kill_cmd = value;
    } else if (!strcmp(name, "kill-after-ms")) {
        rc = parse_u32(name, value, 0, 3600000, &c->kill_after_ms);
    } else if (!strcmp(name, "after-ms")) {
        rc = parse_u32(name, value, 0, 3600000, &c->after_ms);
    } else if (!strcmp(name, "seed")) {
        rc = parse_u64(name, value, 0, UINT64_MAX, &c->seed);
    } else {
        return bad(name, value, "takes no value"); /* a switch, given = */
    }
    return rc;
}

/* Flags that take no value; returns true when name is one (and sets it). */
static bool set_switch(struct cli *o, const char *name)
{
    if (!strcmp(name, "preload"))
        o->preload = 1;
    else if (!strcmp(name, "no-preload"))
        o->preload = 0;
    else if (!strcmp(name, "quiet"))
        o->c.quiet = true;
    else if (!strcmp(name, "print-primary"))
        o->print_primary = true;
    else
        return false;
    return true;
}

static enum cli_flag_kind flag_kind(const char *name)
{
    return cli_flag_kind_in(flags, FLAG_COUNT, name);
}

static int parse_args(struct cli *o, int argc, char **argv)
{
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 1;
        }
        struct cli_flag f;
        int rc = cli_flag_next("bench", argc, argv, &i, flag_kind, &f);
        if (rc == 0 && f.value)
            rc = set_flag(o, f.name, f.value);
        else if (rc == 0)
            set_switch(o, f.name);
        if (rc == 0 && flag_kind(f.name) == CLI_FLAG_VALUE)
            rc = cli_flag_once("bench", &seen, f.name, f.value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void set_defaults(struct cli *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = DEFAULT_PORT;
    o->preload = -1;
    struct bench_config *c = &o->c;
    c->workload = BENCH_WRITE;
    c->system = "cohort";
    c->concurrency = 64;
    c->value_size = 100;
    c->keys = 10000;
    c->seconds = 10;
    c->read_percent = 90;
    c->timeout_ms = 10000;
    c->kill_after_ms = 2000;
    c->after_ms = 1000;
    c->seed = 1;
}

static int check_failover(struct cli *o)
{
    struct bench_config *c = &o->c;
    if (c->workload != BENCH_FAILOVER) {
        if (c->kill_cmd)
            return bad("kill-cmd", c->kill_cmd,
                       "only the failover workload runs it (add --workload "
                       "failover)");
        return 0;
    }
    if (!c->kill_cmd)
        return bad("workload", "failover",
                   "needs --kill-cmd \"kill -9 PID\" (find the primary with "
                   "--print-primary)");
    if ((o->conc_set && c->concurrency != 1) ||
        (o->conns_set && c->connections != 1))
        return bad("workload", "failover",
                   "runs at --conc 1 and --conns 1 only");
    c->concurrency = c->connections = 1;
    if (!o->seconds_set)
        c->seconds = 60;
    if (!o->timeout_set)
        c->timeout_ms = 2000;
    return 0;
}

/* Defaults that depend on other flags, and the checks across flags. */
static int finish_args(struct cli *o)
{
    struct bench_config *c = &o->c;
    if (o->members &&
        (strcmp(o->host, "127.0.0.1") || strcmp(o->port, DEFAULT_PORT)))
        return bad("members", o->members,
                   "give --members or --host/--port, "
                   "not both");
    int rc = check_failover(o);
    if (rc != 0)
        return rc;
    if (!o->conns_set)
        c->connections = c->concurrency < DEFAULT_CONNS_MAX ? c->concurrency
                                                            : DEFAULT_CONNS_MAX;
    if (c->connections > c->concurrency) {
        char value[16];
        snprintf(value, sizeof(value), "%u", c->connections);
        return bad("conns", value,
                   "more connections than --conc requests; lower --conns or "
                   "raise --conc");
    }
    bool reads = c->workload == BENCH_READ || c->workload == BENCH_LREAD ||
                 c->workload == BENCH_MIXED;
    c->preload = o->preload < 0 ? reads : o->preload == 1;
    if (c->preload && (double)c->keys * (double)(c->value_size + 16) >
                          (double)PRELOAD_BYTES_MAX) {
        char value[32];
        snprintf(value, sizeof(value), "%" PRIu64, c->keys);
        return bad("keys", value,
                   "the preload (--keys x --value-size) would store over "
                   "2 GiB; lower --keys or add --no-preload");
    }
    return set_members(o);
}

static int print_primary(const struct bench_config *c)
{
    struct probe_primary p;
    struct cohort_err err;
    err_clear(&err);
    if (probe_primary(c->members, c->member_count, PRINT_PRIMARY_TIMEOUT_MS, &p,
                      &err) != 0) {
        fprintf(stderr,
                "cohort bench: --print-primary: %s; is the cluster running "
                "and does it have a primary (cohort status)?\n",
                err.message);
        return 1;
    }
    printf("primary=%s index=%u pid=%" PRId64 " view=%" PRIu64 "\n", p.addr,
           p.index, p.pid, p.view);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    struct cli *o = malloc(sizeof(*o));
    struct bench_result *result = malloc(sizeof(*result));
    int rc = o && result ? 0 : 1;
    if (rc == 0) {
        set_defaults(o);
        rc = parse_args(o, argc, argv);
        if (rc == 0)
            rc = finish_args(o);
        if (rc == 1) /* --help */
            rc = 0;
        else if (rc == 0)
            rc = -1; /* parsed: run below */
    }
    if (rc == -1 && o->print_primary) {
        rc = print_primary(&o->c);
    } else if (rc == -1) {
        signal(SIGPIPE, SIG_IGN);
        struct cohort_err err;
        rc = bench_run(&o->c, result, &err);
        if (rc != 0) {
            fprintf(stderr, "cohort bench: %s\n", err.message);
            rc = 1;
        } else {
            char line[512];
            bench_result_format(&o->c, result, line, sizeof(line));
            fputs(line, stdout);
            fflush(stdout);
            rc = 0;
            if (result->ops == 0) {
                fprintf(stderr, "cohort bench: no op was acknowledged; see "
                                "the errors above\n");
                rc = 1;
            } else if (o->c.workload == BENCH_FAILOVER &&
                       result->failover_ms < 0) {
                fprintf(stderr, "cohort bench: no write was acknowledged "
                                "after the kill within --seconds\n");
                rc = 1;
            }
        }
    }
    free(o);
    free(result);
    return rc;
}
