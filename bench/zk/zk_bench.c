/* zk_bench — the ZooKeeper side of the side-by-side benchmark.
 *
 * The same load generator as `cohort bench` (same flags, same workloads, same
 * one-line result on stdout, same log-bucketed histogram: src/bench/hist.c is
 * compiled in), driving a ZooKeeper ensemble through its own C client
 * (libzookeeper_mt, the asynchronous API).
 *
 *   zk_bench --workload write --conc 128 --conns 64 --seconds 10
 *
 * Model: --conc N requests are outstanding at all times (closed loop), spread
 * over --conns M ZooKeeper sessions (one TCP connection each). Slot i belongs
 * to session i % M; session j connects to member j % (number of members)
 * only, so connections are spread evenly and deterministically (the C client
 * would shuffle a multi-host connect string). Each session has its own I/O
 * and completion thread (the _mt library); a completion issues the slot's
 * next request from the completion thread.
 *
 * Workloads (keys are the znodes /bench/k<n>, n < --keys, created or
 * overwritten with a --value-size value during preload):
 *   write     zoo_aset of a random key (version -1), value of --value-size
 *   read      linearizable read: zoo_async (sync) then zoo_aget, per op.
 *             A ZooKeeper read is served by the server the session is
 *             connected to and may be stale; "sync" makes that server catch
 *             up with the leader first. The two requests are pipelined
 *             (sent back to back without waiting): a session's requests are
 *             processed in order, so the get waits behind the sync on the
 *             server. Per op rather than one sync per batch of reads
 *             because a sync only covers reads that started before it was
 *             sent: sharing one sync among concurrent reads would need a
 *             batching layer in the client (etcd's ReadIndex does that in the
 *             server), and per op is what a ZooKeeper user who needs a
 *             linearizable read actually writes. The cost is one extra
 *             request to the leader per read.
 *   lread     plain zoo_aget (served locally, possibly stale: serializable)
 *   mixed     --read-percent (90) linearizable reads as above, rest writes
 *   failover  writes (conc 1 by default); after --kill-after-ms runs
 *             --kill-cmd with /bin/sh (timestamp taken just before), then
 *             runs --after-ms more. failover_ms = kill -> first
 *             acknowledged write that was *sent* after the kill command
 *             returned (a write sent while the command runs, e.g. while
 *             it looks up the leader, may still reach the old leader and
 *             would not measure anything). Default --conns is the number
 *             of members (more sessions than --conc: retry targets).
 *
 * Every request has a timeout (--timeout-ms, 2000): a request that failed
 * (e.g. connection loss) or timed out counts as one error and the operation
 * is retried on the next session (the next member), after 5 ms for a
 * failure. An operation's latency runs from its first attempt to its
 * acknowledgement, retries included.
 *
 * Output: one line on stdout
 *   bench system=zookeeper workload=.. conc=.. conns=.. value=.. ops=..
 *   secs=.. ops_per_s=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *   errors=.. [failover_ms=..]
 * and one progress line per second on stderr.
 *
 * Large values: ZooKeeper's default jute.maxbuffer (0xfffff bytes) rejects a
 * 1 MiB value plus its request header; bench/zk/cluster.sh starts the
 * servers with -Djute.maxbuffer=4194304. The C client has no such limit.
 * Sessions use a 10 s session timeout (--session-timeout-ms). */
#define _GNU_SOURCE
#include "bench/hist.h"

#include <zookeeper/zookeeper.h>

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum workload { W_WRITE, W_READ, W_LREAD, W_MIXED, W_FAILOVER };
static const char *const WORKLOAD_NAMES[] = {"write", "read", "lread", "mixed",
                                             "failover"};

enum kind { K_WRITE, K_READ, K_LREAD };

struct opts {
    enum workload workload;
    int conc;
    int conns;
    int value_size;
    int keys;
    double seconds;
    uint64_t ops;
    double warmup_seconds;
    const char *kill_cmd;
    int kill_after_ms;
    int after_ms;
    int read_percent;
    int timeout_ms;
    int session_timeout_ms;
    bool preload;
    bool verbose;
    char **members;
    int nmembers;
};

struct conn {
    zhandle_t *zh;
    char host[256];
    atomic_int connected;
    struct hist hist; /* only this session's completion thread records */
    uint64_t rng;     /* only this session's completion thread uses */
};

struct slot {
    pthread_mutex_t mu;
    uint64_t gen; /* bumped at every attempt: stale completions ignored */
    bool in_flight;
    bool want_retry;
    uint64_t retry_at_ns;
    uint64_t op_start_ns; /* first attempt of the current operation */
    uint64_t attempt_ns;
    int conn;
    enum kind kind;
    int key;
};

struct req {
    struct slot *slot;
    uint64_t gen;
    struct conn *conn;
    atomic_int refs;
    atomic_bool sync_failed;
};

static struct opts O;
static struct conn *CONNS;
static struct slot *SLOTS;
static char *VALUE;

static atomic_bool STOPPING;
static _Atomic uint64_t MEASURE_START_NS; /* 0 until warm-up ends */
static _Atomic uint64_t MEASURE_END_NS;   /* 0 until the run ends */
static _Atomic uint64_t KILL_NS;          /* 0 until the kill */
static _Atomic uint64_t KILL_DONE_NS; /* 0 until the kill command returned */
static _Atomic uint64_t FIRST_ACK_AFTER_KILL_NS;
static atomic_uint_fast64_t OPS_MEASURED;
static atomic_uint_fast64_t OPS_TOTAL;
static atomic_uint_fast64_t ERRORS;
static atomic_int IN_FLIGHT;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void key_path(char *buf, size_t len, int key)
{
    snprintf(buf, len, "/bench/k%d", key);
}

/* Errors count while the measurement window is open. */
static void count_error(void)
{
    if (atomic_load(&MEASURE_START_NS) && !atomic_load(&MEASURE_END_NS))
        atomic_fetch_add(&ERRORS, 1);
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zk_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* ---- issuing ---------------------------------------------------------- */

static void issue_locked(struct slot *s, uint64_t *rng);
static void complete(struct req *r, int rc);

static void req_release(struct req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
}

static void sync_done(int rc, const char *value, const void *data)
{
    (void)value;
    struct req *r = (struct req *)data;
    if (rc != ZOK)
        atomic_store(&r->sync_failed, true);
    req_release(r);
}

static void get_done(int rc, const char *value, int value_len,
                     const struct Stat *stat, const void *data)
{
    (void)value;
    (void)value_len;
    (void)stat;
    struct req *r = (struct req *)data;
    if (rc == ZOK && atomic_load(&r->sync_failed))
        rc = ZCONNECTIONLOSS;
    complete(r, rc);
}

static void set_done(int rc, const struct Stat *stat, const void *data)
{
    (void)stat;
    complete((struct req *)data, rc);
}

static enum kind pick_kind(uint64_t *rng)
{
    switch (O.workload) {
    case W_WRITE:
    case W_FAILOVER:
        return K_WRITE;
    case W_READ:
        return K_READ;
    case W_LREAD:
        return K_LREAD;
    case W_MIXED:
        return (int)(rng_next(rng) % 100) < O.read_percent ? K_READ : K_WRITE;
    }
    return K_WRITE;
}

/* Start a new operation on slot s (caller holds s->mu). */
static void start_op_locked(struct slot *s, uint64_t *rng)
{
    s->kind = pick_kind(rng);
    s->key = (int)(rng_next(rng) % (uint64_t)O.keys);
    s->op_start_ns = now_ns();
    issue_locked(s, rng);
}

/* Send (or resend) the slot's current operation on s->conn. */
static void issue_locked(struct slot *s, uint64_t *rng)
{
    (void)rng;
    struct conn *c = &CONNS[s->conn];
    struct req *r = malloc(sizeof(*r));
    if (!r)
        die("out of memory");
    s->gen++;
    r->slot = s;
    r->gen = s->gen;
    r->conn = c;
    atomic_init(&r->sync_failed, false);
    s->attempt_ns = now_ns();
    s->in_flight = true;
    s->want_retry = false;
    atomic_fetch_add(&IN_FLIGHT, 1);

    char path[32];
    key_path(path, sizeof(path), s->key);
    int rc;
    switch (s->kind) {
    case K_WRITE:
        atomic_init(&r->refs, 1);
        rc = zoo_aset(c->zh, path, VALUE, O.value_size, -1, set_done, r);
        break;
    case K_READ:
        atomic_init(&r->refs, 2);
        rc = zoo_async(c->zh, path, sync_done, r);
        if (rc != ZOK) {
            atomic_init(&r->refs, 1);
            break;
        }
        /* If the get cannot be sent, the release below drops its
         * reference; the sync's stays until sync_done. */
        rc = zoo_aget(c->zh, path, 0, get_done, r);
        break;
    case K_LREAD:
    default:
        atomic_init(&r->refs, 1);
        rc = zoo_aget(c->zh, path, 0, get_done, r);
        break;
    }
    if (rc != ZOK) {
        /* Not sent (session expired, closing, out of memory): count an
         * error and let the main thread retry on the next session. */
        s->in_flight = false;
        s->gen++;
        atomic_fetch_sub(&IN_FLIGHT, 1);
        count_error();
        s->conn = (s->conn + 1) % O.conns;
        s->want_retry = true;
        s->retry_at_ns = now_ns() + 5000000u;
        req_release(r);
        if (O.verbose)
            fprintf(stderr, "zk_bench: send on %s failed: %s\n", c->host,
                    zerror(rc));
    }
}

static void complete(struct req *r, int rc)
{
    struct slot *s = r->slot;
    struct conn *c = r->conn;
    pthread_mutex_lock(&s->mu);
    if (r->gen != s->gen || !s->in_flight) {
        /* Abandoned after a timeout: its replacement is already out. */
        pthread_mutex_unlock(&s->mu);
        if (O.verbose)
            fprintf(stderr, "zk_bench: late reply from %s (%s)\n", c->host,
                    zerror(rc));
        req_release(r);
        return;
    }
    s->in_flight = false;
    atomic_fetch_sub(&IN_FLIGHT, 1);
    uint64_t now = now_ns();
    uint64_t mstart = atomic_load(&MEASURE_START_NS);
    uint64_t mend = atomic_load(&MEASURE_END_NS);
    bool measuring =
        mstart && s->op_start_ns >= mstart && (!mend || now <= mend);
    if (rc == ZOK) {
        atomic_fetch_add(&OPS_TOTAL, 1);
        if (measuring) {
            hist_record(&c->hist, now - s->op_start_ns);
            atomic_fetch_add(&OPS_MEASURED, 1);
        }
        uint64_t kill_done = atomic_load(&KILL_DONE_NS);
        if (kill_done && s->kind == K_WRITE && s->attempt_ns >= kill_done) {
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&FIRST_ACK_AFTER_KILL_NS, &zero,
                                           now);
        }
        if (!atomic_load(&STOPPING))
            start_op_locked(s, &c->rng);
    } else {
        count_error();
        static atomic_bool reported;
        if (O.verbose || !atomic_exchange(&reported, true))
            fprintf(stderr, "zk_bench: request on %s failed: %s%s\n", c->host,
                    zerror(rc),
                    rc == ZNONODE ? " (keys missing: run without --no-preload)"
                    : O.verbose   ? ""
                                  : " (first error; --verbose for all)");
        s->conn = (int)((r->conn - CONNS) + 1) % O.conns;
        s->want_retry = true;
        s->retry_at_ns = now + 5000000u;
    }
    pthread_mutex_unlock(&s->mu);
    req_release(r);
}

/* ---- sessions --------------------------------------------------------- */

static void watcher(zhandle_t *zh, int type, int state, const char *path,
                    void *ctx)
{
    (void)zh;
    (void)path;
    struct conn *c = ctx;
    if (type == ZOO_SESSION_EVENT)
        atomic_store(&c->connected, state == ZOO_CONNECTED_STATE);
}

static void open_sessions(void)
{
    CONNS = calloc((size_t)O.conns, sizeof(*CONNS));
    if (!CONNS)
        die("out of memory");
    for (int i = 0; i < O.conns; i++) {
        struct conn *c = &CONNS[i];
        snprintf(c->host, sizeof(c->host), "%s", O.members[i % O.nmembers]);
        hist_init(&c->hist);
        c->rng = now_ns() ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
        c->zh =
            zookeeper_init(c->host, watcher, O.session_timeout_ms, NULL, c, 0);
        if (!c->zh)
            die("zookeeper_init(%s): %s", c->host, strerror(errno));
    }
    uint64_t deadline = now_ns() + 20000000000ull;
    for (;;) {
        int up = 0;
        for (int i = 0; i < O.conns; i++)
            up += atomic_load(&CONNS[i].connected);
        if (up == O.conns)
            break;
        if (now_ns() > deadline)
            die("only %d of %d sessions connected within 20 s (is the ensemble "
                "up?)",
                up, O.conns);
        usleep(10000);
    }
}

/* ---- preload ---------------------------------------------------------- */

static pthread_mutex_t PL_MU = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t PL_CV = PTHREAD_COND_INITIALIZER;
static int PL_OUTSTANDING;
static int PL_FAILED;

static void pl_finish(int rc)
{
    pthread_mutex_lock(&PL_MU);
    if (rc != ZOK) {
        if (!PL_FAILED)
            fprintf(stderr, "zk_bench: preload: %s\n", zerror(rc));
        PL_FAILED++;
    }
    PL_OUTSTANDING--;
    pthread_cond_broadcast(&PL_CV);
    pthread_mutex_unlock(&PL_MU);
}

static void pl_set_done(int rc, const struct Stat *stat, const void *data)
{
    (void)stat;
    (void)data;
    pl_finish(rc);
}

static void pl_create_done(int rc, const char *name, const void *data)
{
    (void)name;
    if (rc == ZNODEEXISTS) {
        /* Left by an earlier run: overwrite so reads return --value-size. */
        const struct conn *c = &CONNS[0];
        char path[32];
        key_path(path, sizeof(path), (int)(intptr_t)data);
        rc = zoo_aset(c->zh, path, VALUE, O.value_size, -1, pl_set_done, NULL);
        if (rc == ZOK)
            return;
    }
    pl_finish(rc);
}

static void preload(void)
{
    zhandle_t *zh = CONNS[0].zh;
    int rc = zoo_create(zh, "/bench", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc != ZOK && rc != ZNODEEXISTS)
        die("create /bench: %s", zerror(rc));
    /* Keep at most ~8 MiB (and 512 requests) of preload in flight. */
    int window = (int)(8388608 / ((long)O.value_size + 64));
    if (window > 512)
        window = 512;
    if (window < 1)
        window = 1;
    uint64_t t0 = now_ns();
    for (int k = 0; k < O.keys; k++) {
        pthread_mutex_lock(&PL_MU);
        while (PL_OUTSTANDING >= window)
            pthread_cond_wait(&PL_CV, &PL_MU);
        PL_OUTSTANDING++;
        pthread_mutex_unlock(&PL_MU);
        char path[32];
        key_path(path, sizeof(path), k);
        rc = zoo_acreate(zh, path, VALUE, O.value_size, &ZOO_OPEN_ACL_UNSAFE, 0,
                         pl_create_done, (void *)(intptr_t)k);
        if (rc != ZOK)
            pl_finish(rc);
    }
    pthread_mutex_lock(&PL_MU);
    while (PL_OUTSTANDING > 0)
        pthread_cond_wait(&PL_CV, &PL_MU);
    pthread_mutex_unlock(&PL_MU);
    if (PL_FAILED)
        die("preload: %d of %d keys failed", PL_FAILED, O.keys);
    fprintf(stderr, "zk_bench: preloaded %d keys of %d bytes in %.2f s\n",
            O.keys, O.value_size, (double)(now_ns() - t0) / 1e9);
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: zk_bench [options]\n"
        "  --workload write|read|lread|mixed|failover   (write)\n"
        "  --conc N            outstanding requests (16; failover 1)\n"
        "  --conns M           ZooKeeper sessions/connections (min(conc,64);\n"
        "                      failover: number of members)\n"
        "  --value-size B      value bytes (100)\n"
        "  --keys K            key space /bench/k0..k<K-1> (10000)\n"
        "  --seconds S         measured duration (10)\n"
        "  --ops N             stop after N measured operations instead\n"
        "  --warmup-seconds S  unmeasured warm-up (1; failover 0)\n"
        "  --read-percent P    reads in mixed (90)\n"
        "  --kill-cmd CMD      failover: shell command that kills a member\n"
        "  --kill-after-ms T   failover: run CMD T ms into the run (3000)\n"
        "  --after-ms T        failover: run T ms after the kill (5000)\n"
        "  --timeout-ms T      per-request timeout before a retry (2000)\n"
        "  --session-timeout-ms T  ZooKeeper session timeout (10000)\n"
        "  --members h:p,...   "
        "(127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183)\n"
        "  --no-preload        do not create/overwrite the keys first\n"
        "  --verbose           client library errors on stderr\n");
}

static long parse_long(const char *name, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        die("--%s: expected an integer in [%ld, %ld], got '%s'", name, lo, hi,
            s);
    return v;
}

static double parse_double(const char *name, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || v < 0)
        die("--%s: expected a non-negative number, got '%s'", name, s);
    return v;
}

static void parse_members(const char *list)
{
    char *copy = strdup(list);
    int cap = 8;
    O.members = calloc((size_t)cap, sizeof(char *));
    O.nmembers = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (O.nmembers == cap) {
            cap *= 2;
            O.members = realloc(O.members, (size_t)cap * sizeof(char *));
        }
        O.members[O.nmembers++] = strdup(tok);
    }
    free(copy);
    if (O.nmembers == 0)
        die("--members: empty list");
}

static void parse_opts(int argc, char **argv)
{
    enum {
        OPT_WORKLOAD = 1000,
        OPT_CONC,
        OPT_CONNS,
        OPT_VALUE_SIZE,
        OPT_KEYS,
        OPT_SECONDS,
        OPT_OPS,
        OPT_WARMUP,
        OPT_KILL_CMD,
        OPT_KILL_AFTER,
        OPT_AFTER,
        OPT_READ_PCT,
        OPT_TIMEOUT,
        OPT_SESSION_TIMEOUT,
        OPT_MEMBERS,
        OPT_NO_PRELOAD,
        OPT_VERBOSE,
        OPT_SYSTEM,
        OPT_HELP,
    };
    static const struct option longopts[] = {
        {"workload", required_argument, 0, OPT_WORKLOAD},
        {"conc", required_argument, 0, OPT_CONC},
        {"conns", required_argument, 0, OPT_CONNS},
        {"value-size", required_argument, 0, OPT_VALUE_SIZE},
        {"keys", required_argument, 0, OPT_KEYS},
        {"seconds", required_argument, 0, OPT_SECONDS},
        {"ops", required_argument, 0, OPT_OPS},
        {"warmup-seconds", required_argument, 0, OPT_WARMUP},
        {"kill-cmd", required_argument, 0, OPT_KILL_CMD},
        {"kill-after-ms", required_argument, 0, OPT_KILL_AFTER},
        {"after-ms", required_argument, 0, OPT_AFTER},
        {"read-percent", required_argument, 0, OPT_READ_PCT},
        {"timeout-ms", required_argument, 0, OPT_TIMEOUT},
        {"session-timeout-ms", required_argument, 0, OPT_SESSION_TIMEOUT},
        {"members", required_argument, 0, OPT_MEMBERS},
        {"no-preload", no_argument, 0, OPT_NO_PRELOAD},
        {"verbose", no_argument, 0, OPT_VERBOSE},
        {"system", required_argument, 0, OPT_SYSTEM},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    O.workload = W_WRITE;
    O.conc = -1;
    O.conns = -1;
    O.value_size = 100;
    O.keys = 10000;
    O.seconds = 10;
    O.warmup_seconds = -1;
    O.kill_after_ms = 3000;
    O.after_ms = 5000;
    O.read_percent = 90;
    O.timeout_ms = 2000;
    O.session_timeout_ms = 10000;
    O.preload = true;
    const char *members = "127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183";
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_WORKLOAD: {
            int i;
            for (i = 0; i < 5; i++)
                if (strcmp(optarg, WORKLOAD_NAMES[i]) == 0)
                    break;
            if (i == 5)
                die("--workload: expected write, read, lread, mixed or "
                    "failover, got '%s'",
                    optarg);
            O.workload = (enum workload)i;
            break;
        }
        case OPT_CONC:
            O.conc = (int)parse_long("conc", optarg, 1, 100000);
            break;
        case OPT_CONNS:
            O.conns = (int)parse_long("conns", optarg, 1, 10000);
            break;
        case OPT_VALUE_SIZE:
            O.value_size = (int)parse_long("value-size", optarg, 0, 64 << 20);
            break;
        case OPT_KEYS:
            O.keys = (int)parse_long("keys", optarg, 1, 100000000);
            break;
        case OPT_SECONDS:
            O.seconds = parse_double("seconds", optarg);
            break;
        case OPT_OPS:
            O.ops = (uint64_t)parse_long("ops", optarg, 1, INT64_MAX);
            break;
        case OPT_WARMUP:
            O.warmup_seconds = parse_double("warmup-seconds", optarg);
            break;
        case OPT_KILL_CMD:
            O.kill_cmd = optarg;
            break;
        case OPT_KILL_AFTER:
            O.kill_after_ms =
                (int)parse_long("kill-after-ms", optarg, 0, 86400000);
            break;
        case OPT_AFTER:
            O.after_ms = (int)parse_long("after-ms", optarg, 0, 86400000);
            break;
        case OPT_READ_PCT:
            O.read_percent = (int)parse_long("read-percent", optarg, 0, 100);
            break;
        case OPT_TIMEOUT:
            O.timeout_ms = (int)parse_long("timeout-ms", optarg, 1, 3600000);
            break;
        case OPT_SESSION_TIMEOUT:
            O.session_timeout_ms =
                (int)parse_long("session-timeout-ms", optarg, 1, 3600000);
            break;
        case OPT_MEMBERS:
            members = optarg;
            break;
        case OPT_NO_PRELOAD:
            O.preload = false;
            break;
        case OPT_VERBOSE:
            O.verbose = true;
            break;
        case OPT_SYSTEM:
            if (strcmp(optarg, "zookeeper") != 0 && strcmp(optarg, "zk") != 0)
                die("--system: this tool drives zookeeper only, not '%s'",
                    optarg);
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'", argv[optind]);
    parse_members(members);
    bool failover = O.workload == W_FAILOVER;
    if (O.conc < 0)
        O.conc = failover ? 1 : 16;
    if (O.conns < 0)
        O.conns = failover ? O.nmembers : (O.conc < 64 ? O.conc : 64);
    if (O.conns > O.conc && !failover)
        O.conns = O.conc; /* a session without a slot would sit idle */
    if (O.warmup_seconds < 0)
        O.warmup_seconds = failover ? 0 : 1;
    if (failover && !O.kill_cmd)
        die("--workload failover needs --kill-cmd");
}

/* ---- main ------------------------------------------------------------- */

static void check_slots(uint64_t now)
{
    uint64_t timeout = (uint64_t)O.timeout_ms * 1000000u;
    bool stopping = atomic_load(&STOPPING);
    for (int i = 0; i < O.conc; i++) {
        struct slot *s = &SLOTS[i];
        pthread_mutex_lock(&s->mu);
        /* attempt_ns can be later than now: a completion thread may have
         * started the attempt after now was read. */
        if (s->in_flight && now > s->attempt_ns &&
            now - s->attempt_ns > timeout) {
            /* Abandon it (its late completion is ignored) and retry on the
             * next session unless the run is over. */
            s->in_flight = false;
            s->gen++;
            atomic_fetch_sub(&IN_FLIGHT, 1);
            count_error();
            if (O.verbose)
                fprintf(stderr, "zk_bench: request on %s timed out\n",
                        CONNS[s->conn].host);
            s->conn = (s->conn + 1) % O.conns;
            s->want_retry = true;
            s->retry_at_ns = now;
        }
        if (!s->in_flight && s->want_retry && !stopping &&
            now >= s->retry_at_ns) {
            uint64_t rng = now ^ (uint64_t)i;
            issue_locked(s, &rng);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

int main(int argc, char **argv)
{
    parse_opts(argc, argv);
    zoo_set_debug_level(O.verbose ? ZOO_LOG_LEVEL_WARN : ZOO_LOG_LEVEL_ERROR);
    if (!O.verbose) {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull)
            zoo_set_log_stream(devnull);
    }
    VALUE = malloc((size_t)O.value_size + 1);
    for (int i = 0; i < O.value_size; i++)
        VALUE[i] = (char)('a' + i % 26);

    open_sessions();
    if (O.preload)
        preload();

    SLOTS = calloc((size_t)O.conc, sizeof(*SLOTS));
    uint64_t rng = now_ns();
    uint64_t t0 = now_ns();
    uint64_t warm_end = t0 + (uint64_t)(O.warmup_seconds * 1e9);
    if (O.warmup_seconds == 0)
        atomic_store(&MEASURE_START_NS, t0);
    for (int i = 0; i < O.conc; i++) {
        struct slot *s = &SLOTS[i];
        pthread_mutex_init(&s->mu, NULL);
        s->conn = i % O.conns;
        pthread_mutex_lock(&s->mu);
        start_op_locked(s, &rng);
        pthread_mutex_unlock(&s->mu);
    }

    uint64_t tick_ns = O.conc <= 16 ? 1000000u : 10000000u;
    uint64_t next_progress = t0 + 1000000000u;
    uint64_t last_ops = 0;
    uint64_t last_progress = t0;
    bool failover = O.workload == W_FAILOVER;
    uint64_t end_ns = 0;
    uint64_t kill_at = 0;
    for (;;) {
        uint64_t now = now_ns();
        uint64_t mstart = atomic_load(&MEASURE_START_NS);
        if (!mstart && now >= warm_end) {
            mstart = now;
            atomic_store(&MEASURE_START_NS, mstart);
        }
        if (mstart && !end_ns) {
            if (failover) {
                kill_at = mstart + (uint64_t)O.kill_after_ms * 1000000u;
                end_ns = kill_at + (uint64_t)O.after_ms * 1000000u;
            } else {
                end_ns = mstart + (uint64_t)(O.seconds * 1e9);
            }
        }
        if (failover && kill_at && now >= kill_at && !atomic_load(&KILL_NS)) {
            uint64_t k = now_ns();
            atomic_store(&KILL_NS, k);
            fprintf(stderr, "zk_bench: kill: %s\n", O.kill_cmd);
            int rc = system(O.kill_cmd);
            if (rc != 0)
                fprintf(stderr,
                        "zk_bench: kill command exited with status %d\n", rc);
            now = now_ns();
            atomic_store(&KILL_DONE_NS, now);
        }
        bool done = end_ns && now >= end_ns;
        if (O.ops && mstart && atomic_load(&OPS_MEASURED) >= O.ops)
            done = true;
        if (done) {
            atomic_store(&MEASURE_END_NS, now);
            atomic_store(&STOPPING, true);
            break;
        }
        if (now >= next_progress) {
            uint64_t ops = atomic_load(&OPS_TOTAL);
            fprintf(stderr,
                    "zk_bench: t=%.0fs ops_per_s=%.0f total_ops=%" PRIu64
                    " errors=%" PRIu64 "%s\n",
                    (double)(now - t0) / 1e9,
                    (double)(ops - last_ops) /
                        ((double)(now - last_progress) / 1e9),
                    ops, (uint64_t)atomic_load(&ERRORS),
                    mstart ? "" : " (warm-up)");
            last_ops = ops;
            last_progress = now;
            next_progress += 1000000000u;
        }
        check_slots(now);
        struct timespec ts = {0, (long)tick_ns};
        nanosleep(&ts, NULL);
    }

    /* Let the operations in flight finish (not measured), then close. */
    uint64_t drain_deadline = now_ns() + (uint64_t)O.timeout_ms * 1000000u;
    while (atomic_load(&IN_FLIGHT) > 0 && now_ns() < drain_deadline)
        usleep(1000);
    for (int i = 0; i < O.conns; i++)
        zookeeper_close(CONNS[i].zh);

    struct hist total;
    hist_init(&total);
    for (int i = 0; i < O.conns; i++)
        hist_merge(&total, &CONNS[i].hist);
    double secs = (double)(atomic_load(&MEASURE_END_NS) -
                           atomic_load(&MEASURE_START_NS)) /
                  1e9;
    uint64_t ops = total.count;
    printf("bench system=zookeeper workload=%s conc=%d conns=%d value=%d "
           "ops=%" PRIu64 " secs=%.2f ops_per_s=%.1f p50_us=%.1f p90_us=%.1f "
           "p99_us=%.1f p999_us=%.1f"
           " max_us=%.1f errors=%" PRIu64,
           WORKLOAD_NAMES[O.workload], O.conc, O.conns, O.value_size, ops, secs,
           secs > 0 ? (double)ops / secs : 0.0,
           (double)hist_quantile(&total, 0.50) / 1e3,
           (double)hist_quantile(&total, 0.90) / 1e3,
           (double)hist_quantile(&total, 0.99) / 1e3,
           (double)hist_quantile(&total, 0.999) / 1e3,
           (double)total.max_ns / 1e3, (uint64_t)atomic_load(&ERRORS));
    if (failover) {
        uint64_t kill = atomic_load(&KILL_NS);
        uint64_t ack = atomic_load(&FIRST_ACK_AFTER_KILL_NS);
        if (kill && ack)
            printf(" failover_ms=%.1f", (double)(ack - kill) / 1e6);
        else
            printf(" failover_ms=-1");
    }
    printf("\n");
    fflush(stdout);
    return 0;
}
