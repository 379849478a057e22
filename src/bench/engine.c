/* bench/engine — one run of the load generator: the epoll loop, the clock,
 * the phases (connect, warmup, measure), which request comes next, the
 * failover kill, the progress lines and the result. See bench.h.
 *
 * Phases: CONNECT -> [WARMUP ->] MEASURE -> DONE. CONNECT ends when every
 * connection is open (or after the timeout, as some member may be down).
 * MEASURE ends at --seconds or --ops; for failover, --after-ms after the
 * first write acknowledged after the kill (--seconds is then only a cap).
 * Errors and ops count in the result only while measuring. */
#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/internal.h"
#include "bench/probe.h"
#include "common/assert.h"

extern char **environ;

#define EVENTS_MAX 256
/* The loop wakes at least this often to run timers. */
#define TICK_MS 2
#define NOTES_MAX 40
#define PROBE_TIMEOUT_MS 2000u
/* Preload: bytes in flight at most, and requests in flight at most. */
#define PRELOAD_BYTES_IN_FLIGHT (32u << 20)
#define PRELOAD_DEPTH_MAX 256u
#define PRELOAD_CONNS_MAX 8u

static const char *const workload_names[] = {
    [BENCH_WRITE] = "write",       [BENCH_READ] = "read",
    [BENCH_LREAD] = "lread",       [BENCH_MIXED] = "mixed",
    [BENCH_FAILOVER] = "failover", [BENCH_EXEC] = "exec",
    [BENCH_PRELOAD] = "preload",   [BENCH_PUBLISH] = "publish",
};

const char *bench_workload_name(enum bench_workload w)
{
    ASSERT((size_t)w < sizeof(workload_names) / sizeof(workload_names[0]));
    return workload_names[w];
}

int bench_workload_parse(const char *name)
{
    for (int i = 0; i < BENCH_PRELOAD; i++)
        if (!strcmp(name, workload_names[i]))
            return i;
    return !strcmp(name, "publish") ? BENCH_PUBLISH : -1;
}

uint64_t engine_clock_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* splitmix64: keys and the value's bytes. */
static uint64_t next_random(struct engine *e)
{
    uint64_t z = (e->prng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void engine_note(struct engine *e, const char *fmt, ...)
{
    if (e->notes_left == 0)
        return;
    e->notes_left--;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr,
            e->notes_left == 0 ? " (further notes suppressed)\n" : "\n");
    va_end(ap);
}

void engine_fatal(struct engine *e, const char *fmt, ...)
{
    if (e->fatal)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err->message, sizeof(e->err->message), fmt, ap);
    va_end(ap);
    e->err->code = -COHORT_EIO;
    e->fatal = true;
}

void engine_count_errors(struct engine *e, uint64_t count)
{
    e->errors_total += count;
    if (e->phase == PHASE_MEASURE)
        e->result->errors += count;
}

static void finish(struct engine *e)
{
    if (e->phase == PHASE_DONE)
        return;
    ASSERT(e->phase == PHASE_MEASURE);
    e->result->seconds = (double)(e->now_ns - e->phase_start_ns) / 1e9;
    e->phase = PHASE_DONE;
}

static void reap_child(struct engine *e, bool wait)
{
    if (e->child <= 0)
        return;
    int status = 0;
    pid_t pid = waitpid(e->child, &status, wait ? 0 : WNOHANG);
    if (pid != e->child)
        return;
    e->child = 0;
    e->kill_done_ns = engine_clock_ns();
    engine_note(e, "--kill-cmd exited %.1f ms after it started",
                (double)(e->kill_done_ns - e->kill_ns) / 1e6);
    /* A failover time measured around a kill that did not happen would
     * mean nothing: stop with the reason. */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        engine_fatal(
            e, "--kill-cmd \"%s\" failed (%s %d); fix the command",
            e->c->kill_cmd, WIFEXITED(status) ? "exit status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

bool engine_next_op(struct engine *e, enum bench_op *op, uint64_t *key)
{
    const struct bench_config *c = e->c;
    if (e->fatal || (e->phase != PHASE_WARMUP && e->phase != PHASE_MEASURE))
        return false;
    if (e->phase == PHASE_MEASURE && c->ops > 0 &&
        e->result->ops + e->in_flight >= c->ops)
        return false;
    if (e->kill_ns != 0 && e->kill_done_ns == 0) {
        /* Stamp the kill's end before this request's start. */
        reap_child(e, false);
        e->now_ns = engine_clock_ns();
    }
    switch (c->workload) {
    case BENCH_PRELOAD:
        if (e->preload_next >= c->keys)
            return false;
        *op = BENCH_OP_SET;
        *key = e->preload_next++;
        return true;
    case BENCH_READ:
    case BENCH_LREAD:
        *op = BENCH_OP_GET;
        break;
    case BENCH_MIXED:
        *op = next_random(e) % 100 < c->read_percent ? BENCH_OP_GET
                                                     : BENCH_OP_SET;
        break;
    case BENCH_WRITE:
    case BENCH_FAILOVER:
        *op = BENCH_OP_SET;
        break;
    case BENCH_EXEC:
        *op = BENCH_OP_EXEC;
        break;
    case BENCH_PUBLISH:
        *op = BENCH_OP_PUBLISH;
        break;
    }
    *key = next_random(e) % c->keys;
    return true;
}

/* The first write acknowledged that was sent after the kill command
 * exited. A write in flight at the kill may be answered by the dying
 * member (it can finish a reply while the shell delivers the signal, and a
 * backup relays that reply later), which would report a failover of a few
 * milliseconds that never happened; a write sent after the command exited
 * cannot. Counting from it instead costs at most one request's latency. */
static void on_failover_ack(struct engine *e)
{
    e->first_ack_ns = e->now_ns;
    e->result->failover_ms = (double)(e->now_ns - e->kill_ns) / 1e6;
    engine_note(e, "first write acknowledged %.1f ms after the kill",
                e->result->failover_ms);
}

void engine_on_reply(struct engine *e, const struct slot *slot,
                     enum bench_reply kind, const struct resp_node *reply)
{
    if (kind != BENCH_REPLY_OK) {
        engine_count_errors(e, 1);
        if (!e->error_reply_seen) {
            e->error_reply_seen = true;
            int len =
                reply->str ? (int)(reply->len < 200 ? reply->len : 200) : 0;
            fprintf(stderr, "bench: first failed reply: %c%.*s\n",
                    (char)reply->type, len, reply->str ? reply->str : "");
        }
        return;
    }
    e->acked_total++;
    if (e->phase != PHASE_MEASURE)
        return;
    e->result->ops++;
    hist_record(&e->result->hist, e->now_ns - slot->start_ns);
    if (e->c->workload == BENCH_FAILOVER && e->kill_done_ns != 0 &&
        e->first_ack_ns == 0 && slot->start_ns >= e->kill_done_ns)
        on_failover_ack(e);
    if (e->c->ops > 0 && e->result->ops >= e->c->ops)
        finish(e);
}

static void phase_begin(struct engine *e, enum phase phase)
{
    e->phase = phase;
    e->phase_start_ns = e->now_ns;
    if (phase == PHASE_MEASURE) {
        hist_init(&e->result->hist);
        e->result->ops = 0;
        e->result->errors = 0;
    }
    for (uint32_t i = 0; i < e->conn_count; i++)
        conn_fill(&e->conns[i]);
}

static void run_kill(struct engine *e)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    /* The command's output goes to stderr: stdout has the result only. */
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
    char *argv[] = {"/bin/sh", "-c", (char *)e->c->kill_cmd, NULL};
    e->kill_ns = e->now_ns = engine_clock_ns();
    int rc = posix_spawn(&e->child, "/bin/sh", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        engine_fatal(e, "cannot run --kill-cmd with /bin/sh: %s", strerror(rc));
        return;
    }
    engine_note(e, "ran --kill-cmd at %.3f s: %s",
                (double)(e->kill_ns - e->phase_start_ns) / 1e9, e->c->kill_cmd);
}

static void measure_tick(struct engine *e)
{
    const struct bench_config *c = e->c;
    uint64_t elapsed = e->now_ns - e->phase_start_ns;
    if (c->workload == BENCH_PRELOAD) {
        if (e->preload_next >= c->keys && e->in_flight == 0)
            finish(e);
        return;
    }
    if (c->workload == BENCH_FAILOVER) {
        if (e->kill_ns == 0 && elapsed >= (uint64_t)c->kill_after_ms * 1000000u)
            run_kill(e);
        if (e->first_ack_ns != 0 &&
            e->now_ns - e->first_ack_ns >= (uint64_t)c->after_ms * 1000000u)
            finish(e);
    }
    if ((double)elapsed >= c->seconds * 1e9)
        finish(e);
}

static void progress(struct engine *e)
{
    if (e->now_ns < e->progress_next_ns || e->phase == PHASE_DONE)
        return;
    static const char *const names[] = {"connect", "warmup", "run", "done"};
    double interval = (double)(e->now_ns - e->progress_last_ns) / 1e9;
    double rate = (double)(e->acked_total - e->progress_acked) / interval;
    e->progress_acked = e->acked_total;
    e->progress_last_ns = e->now_ns;
    e->progress_next_ns = e->now_ns + 1000000000u;
    if (e->c->quiet)
        return;
    const char *phase =
        e->c->workload == BENCH_PRELOAD ? "preload" : names[e->phase];
    fprintf(stderr,
            "bench: %6.1fs %-7s ops=%" PRIu64 " ops/s=%.1f errors=%" PRIu64
            " open=%u/%u\n",
            (double)(e->now_ns - e->run_start_ns) / 1e9, phase, e->acked_total,
            rate, e->errors_total, e->open_count, e->conn_count);
}

static void tick(struct engine *e)
{
    const struct bench_config *c = e->c;
    e->now_ns = engine_clock_ns();
    switch (e->phase) {
    case PHASE_CONNECT:
        if (e->open_count == e->conn_count ||
            e->now_ns - e->run_start_ns > (uint64_t)c->timeout_ms * 1000000u)
            phase_begin(e,
                        c->warmup_seconds > 0 ? PHASE_WARMUP : PHASE_MEASURE);
        break;
    case PHASE_WARMUP:
        if ((double)(e->now_ns - e->phase_start_ns) >= c->warmup_seconds * 1e9)
            phase_begin(e, PHASE_MEASURE);
        break;
    case PHASE_MEASURE:
        measure_tick(e);
        break;
    case PHASE_DONE:
        break;
    }
    progress(e);
    for (uint32_t i = 0; i < e->conn_count && e->phase != PHASE_DONE; i++)
        conn_tick(&e->conns[i]);
    reap_child(e, false);
}

static int engine_init(struct engine *e, const struct bench_config *c,
                       struct bench_result *result, struct cohort_err *err)
{
    ASSERT(c->connections > 0);
    ASSERT(c->concurrency >= c->connections);
    ASSERT(c->member_count > 0);
    ASSERT(c->keys > 0);
    memset(e, 0, sizeof(*e));
    e->epfd = -1;
    e->c = c;
    e->result = result;
    e->err = err;
    e->prng = c->seed;
    e->notes_left = NOTES_MAX;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0)
        return err_sys(err, errno, "epoll_create1");
    e->value = malloc(c->value_size > 0 ? c->value_size : 1);
    e->conns = calloc(c->connections, sizeof(*e->conns));
    if (!e->value || !e->conns)
        return err_set(err, -COHORT_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->value_size; i++)
        e->value[i] = (char)('a' + next_random(e) % 26);
    uint32_t base = c->concurrency / c->connections;
    uint32_t extra = c->concurrency % c->connections;
    for (uint32_t i = 0; i < c->connections; i++) {
        uint32_t depth = base + (i < extra ? 1 : 0);
        int rc = conn_init(&e->conns[i], e, i, depth, i % c->member_count);
        e->conn_count++; /* conn_deinit() frees what a failed init got */
        if (rc != 0)
            return err_set(err, -COHORT_ENOMEM, "out of memory");
    }
    memset(result, 0, sizeof(*result));
    hist_init(&result->hist);
    result->failover_ms = -1.0;
    return 0;
}

static void engine_deinit(struct engine *e)
{
    reap_child(e, true);
    for (uint32_t i = 0; i < e->conn_count; i++)
        conn_deinit(&e->conns[i]);
    free(e->conns);
    free(e->value);
    if (e->epfd >= 0)
        close(e->epfd);
}

static int engine_run(const struct bench_config *c, struct bench_result *out,
                      struct cohort_err *err)
{
    struct engine e;
    int rc = engine_init(&e, c, out, err);
    e.now_ns = e.run_start_ns = engine_clock_ns();
    e.progress_last_ns = e.now_ns;
    e.progress_next_ns = e.now_ns + 1000000000u;
    for (uint32_t i = 0; rc == 0 && i < e.conn_count; i++)
        conn_connect(&e.conns[i]);
    struct epoll_event events[EVENTS_MAX];
    while (rc == 0 && e.phase != PHASE_DONE && !e.fatal) {
        int n = epoll_wait(e.epfd, events, EVENTS_MAX, TICK_MS);
        if (n < 0 && errno != EINTR) {
            rc = err_sys(err, errno, "epoll_wait");
            break;
        }
        for (int i = 0; i < n && !e.fatal; i++) {
            e.now_ns = engine_clock_ns();
            conn_on_events(events[i].data.ptr, events[i].events);
        }
        tick(&e);
    }
    reap_child(&e, true); /* its failure fails the run */
    if (rc == 0 && e.fatal)
        rc = err->code;
    engine_deinit(&e);
    return rc;
}

/* Let the process open every connection, or say how to allow it. */
static int raise_fd_limit(const struct bench_config *c, struct cohort_err *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rlim_t need = (rlim_t)c->connections + 64;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need)
        return err_set(err, -COHORT_ECONFIG,
                       "--conns %u needs %llu open files but the limit is "
                       "%llu; lower --conns or raise `ulimit -n`",
                       c->connections, (unsigned long long)need,
                       (unsigned long long)rl.rlim_max);
    rl.rlim_cur = need;
    setrlimit(RLIMIT_NOFILE, &rl);
    return 0;
}

/* PING every member; fail when none answers, else warn about the others. */
static int check_members(const struct bench_config *c, struct cohort_err *err)
{
    static const char *const ping[] = {"PING"};
    struct cohort_err failed[BENCH_MEMBERS_MAX];
    uint32_t failed_count = 0;
    for (uint32_t i = 0; i < c->member_count; i++) {
        char text[256];
        enum resp_type type;
        struct cohort_err *perr = &failed[failed_count];
        err_clear(perr);
        if (probe_command(&c->members[i], 1, ping, PROBE_TIMEOUT_MS, &type,
                          text, sizeof(text), perr) != 0)
            failed_count++;
    }
    if (failed_count == c->member_count)
        return err_set(err, -COHORT_EIO,
                       "%s; is the server running? (start one with "
                       "bench/cohort_cluster.sh start or cohort up, or fix "
                       "--host/--port/--members)",
                       failed[0].message);
    for (uint32_t i = 0; i < failed_count; i++)
        fprintf(stderr,
                "bench: warning: %s; its connections will move to the next "
                "member\n",
                failed[i].message);
    return 0;
}

static int preload(const struct bench_config *c, struct cohort_err *err)
{
    struct bench_config p = *c;
    p.workload = BENCH_PRELOAD;
    uint64_t depth = PRELOAD_BYTES_IN_FLIGHT / (c->value_size + 64);
    if (depth > PRELOAD_DEPTH_MAX)
        depth = PRELOAD_DEPTH_MAX;
    if (depth > c->keys)
        depth = c->keys;
    if (depth == 0)
        depth = 1;
    p.concurrency = (uint32_t)depth;
    p.connections =
        p.concurrency < PRELOAD_CONNS_MAX ? p.concurrency : PRELOAD_CONNS_MAX;
    p.ops = 0;
    p.warmup_seconds = 0;
    p.seconds = 1e9;
    struct bench_result *r = malloc(sizeof(*r));
    if (!r)
        return err_set(err, -COHORT_ENOMEM, "out of memory");
    int rc = engine_run(&p, r, err);
    if (rc == 0 && !c->quiet)
        fprintf(stderr,
                "bench: preloaded %" PRIu64
                " keys of %zu bytes in %.1f s (%" PRIu64 " errors)\n",
                r->ops, c->value_size, r->seconds, r->errors);
    free(r);
    if (rc != 0)
        err_wrap(err, "preload");
    return rc;
}

int bench_run(const struct bench_config *config, struct bench_result *out,
              struct cohort_err *err)
{
    err_clear(err);
    int rc = raise_fd_limit(config, err);
    if (rc == 0)
        rc = check_members(config, err);
    if (rc == 0 && config->preload)
        rc = preload(config, err);
    if (rc == 0)
        rc = engine_run(config, out, err);
    return rc;
}

void bench_result_format(const struct bench_config *c,
                         const struct bench_result *r, char *buf, size_t size)
{
    const struct hist *h = &r->hist;
    double us = 1e3;
    double rate = r->seconds > 0 ? (double)r->ops / r->seconds : 0.0;
    int n = snprintf(
        buf, size,
        "bench system=%s workload=%s conc=%u conns=%u value=%zu ops=%" PRIu64
        " secs=%.2f ops_per_s=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
        "p999_us=%.1f max_us=%.1f errors=%" PRIu64,
        c->system, bench_workload_name(c->workload), c->concurrency,
        c->connections, c->value_size, r->ops, r->seconds, rate,
        (double)hist_quantile(h, 0.5) / us, (double)hist_quantile(h, 0.9) / us,
        (double)hist_quantile(h, 0.99) / us,
        (double)hist_quantile(h, 0.999) / us, (double)h->max_ns / us,
        r->errors);
    if (n < 0 || (size_t)n >= size)
        return;
    if (c->workload == BENCH_FAILOVER) {
        if (r->failover_ms >= 0)
            snprintf(buf + n, size - (size_t)n, " failover_ms=%.1f\n",
                     r->failover_ms);
        else
            snprintf(buf + n, size - (size_t)n, " failover_ms=-1\n");
    } else {
        snprintf(buf + n, size - (size_t)n, "\n");
    }
}
