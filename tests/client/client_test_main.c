/* cohort-client-test — drives libcohort-client for the system tests
 * (tests/system/test_client_lib.py), linked against the shared library
 * as an application is.
 *
 *   cohort-client-test incr [options] --key K --count N [--threads T]
 *                          [--stop-file F]
 *       T threads (default 1), each with its own handle, make N INCRs of K
 *       each, one at a time (fewer if file F appears: it is looked for
 *       before each call); prints "progress <calls>" as they go and at the
 *       end one line
 *       "result ok=.. unknown=.. notapplied=.. other=.. out_of_order=..
 *        duplicates=.. last=.. max_call_ms=.."
 *       where out_of_order counts successful replies that are not the
 *       previous one of the thread plus one (one thread: a lost or doubled
 *       INCR) or not above it (several: linearizability), duplicates the
 *       replies two calls got, last the highest reply and max_call_ms the
 *       longest single call (the stall a failover costs the application).
 *   cohort-client-test uvincr [options] --key K --count N [--threads T]
 *                            [--stop-file F]
 *       the same with T handles in one libuv loop, each driven through
 *       include/cohort_client_uv.h (one call at a time per handle, the
 *       next started from the previous one's callback); same output.
 *   cohort-client-test casincr [options] --key K --count N [--threads T]
 *                             [--stop-file F]
 *       the same as incr, but each increment is a compare-and-set: GET K
 *       (linearizable), then CAS K v v+1, again from the GET while the CAS
 *       answers 0 (another thread won); a call is one increment that
 *       succeeded, its reply the value it stored. A CAS applied twice, or
 *       one whose success was lost, leaves K unequal to the calls made.
 *       K must hold an integer before it starts.
 *   cohort-client-test call [options] [--local] [--warmup] -- ARG...
 *       one call; with --warmup it first runs PING (which finds and
 *       connects to the primary), prints "ready" and waits for a line on
 *       stdin before the call (the test freezes the group meanwhile);
 *       prints "rc=<name> type=<n> text=<str or integer>" and
 *       "error=<cohort_client_error>".
 *   cohort-client-test ryw [options] --key K --count N
 *       N times: SET K <i> through the library, then GET K with
 *       COHORT_CALL_READ_LOCAL (the members in turn, backups included);
 *       prints "ryw ok=.. stale=.. failed=.. min_revision=..", stale
 *       counting the reads that did not see the write just made.
 *
 * With --no-ryw the read_your_writes option is off; --hedge-ms H sets
 * hedge_ms (0: the library's default, "off": COHORT_CLIENT_HEDGE_OFF).
 *
 * options: --members a,b,c  --deadline-ms D  --attempt-timeout-ms T
 *          --min-revision R (local reads only from members at R or later)
 *          --user U  --password P
 *          --tls --tls-cacert F --tls-cert F --tls-key F
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cohort_client.h"
#include "cohort_client_uv.h"

#define MEMBERS_MAX 16
#define THREADS_MAX 64

struct args {
    const char *members[MEMBERS_MAX];
    size_t member_count;
    struct cohort_client_options o;
    const char *key;
    long count;
    int threads;
    const char *stop_file;
    int flags;
    bool warmup;
    bool cas; /* casincr: increments by GET and CAS */
    int rest; /* index of the first argument after "--" */
    uint64_t min_revision;
};

static void usage(void)
{
    fprintf(stderr, "usage: cohort-client-test incr|casincr|uvincr|call "
                    "--members a,b "
                    "[--deadline-ms D] [--attempt-timeout-ms T] [--user U] "
                    "[--password P] [--key K --count N] [--local] -- ARG...\n");
    exit(2);
}

static void split_members(struct args *a, char *list)
{
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m != NULL;
         m = strtok_r(NULL, ",", &save)) {
        if (a->member_count == MEMBERS_MAX)
            usage();
        a->members[a->member_count++] = m;
    }
}

static void parse(struct args *a, int argc, char **argv)
{
    cohort_client_options_init(&a->o);
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--") == 0) {
            a->rest = i + 1;
            return;
        }
        if (strcmp(f, "--local") == 0) {
            a->flags |= COHORT_CALL_READ_LOCAL;
            continue;
        }
        if (strcmp(f, "--tls") == 0) {
            a->o.tls = 1;
            continue;
        }
        if (strcmp(f, "--no-ryw") == 0) {
            a->o.read_your_writes = 0;
            continue;
        }
        if (strcmp(f, "--warmup") == 0) {
            a->warmup = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        char *v = argv[++i];
        if (strcmp(f, "--members") == 0)
            split_members(a, v);
        else if (strcmp(f, "--deadline-ms") == 0)
            a->o.deadline_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(f, "--attempt-timeout-ms") == 0)
            a->o.attempt_timeout_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(f, "--tls-cacert") == 0)
            a->o.tls_ca_cert_file = v;
        else if (strcmp(f, "--tls-cert") == 0)
            a->o.tls_cert_file = v;
        else if (strcmp(f, "--tls-key") == 0)
            a->o.tls_key_file = v;
        else if (strcmp(f, "--user") == 0)
            a->o.username = v;
        else if (strcmp(f, "--password") == 0)
            a->o.password = v;
        else if (strcmp(f, "--key") == 0)
            a->key = v;
        else if (strcmp(f, "--stop-file") == 0)
            a->stop_file = v;
        else if (strcmp(f, "--threads") == 0)
            a->threads = atoi(v);
        else if (strcmp(f, "--min-revision") == 0)
            a->min_revision = strtoull(v, NULL, 10);
        else if (strcmp(f, "--hedge-ms") == 0)
            a->o.hedge_ms = strcmp(v, "off") == 0
                                ? COHORT_CLIENT_HEDGE_OFF
                                : (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(f, "--count") == 0)
            a->count = strtol(v, NULL, 10);
        else
            usage();
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct worker {
    const struct args *a;
    pthread_t thread;
    long ok, unknown, notapplied, other, out_of_order;
    int64_t last, max_call_ms;
    int64_t *replies; /* the successful replies, in order */
    size_t reply_count, reply_cap;
};

static _Atomic long calls_made;

static void record(struct worker *w, int64_t v)
{
    bool alone = w->a->threads == 1;
    if (alone ? v != w->last + 1 : v <= w->last)
        w->out_of_order++;
    w->last = v;
    w->ok++;
    if (w->reply_count == w->reply_cap) {
        w->reply_cap = w->reply_cap ? 2 * w->reply_cap : 1024;
        w->replies = realloc(w->replies, w->reply_cap * sizeof(int64_t));
        if (w->replies == NULL)
            abort();
    }
    w->replies[w->reply_count++] = v;
}

/* GET key as an integer (absent: 0). */
static int get_i64(struct cohort_client *c, const char *key, int64_t *v)
{
    char *text = NULL;
    int rc = cohort_client_get(c, 0, key, &text, NULL);
    *v = 0;
    if (rc == -COHORT_ENOTFOUND)
        return 0;
    if (rc == 0) {
        *v = strtoll(text, NULL, 10);
        free(text);
    }
    return rc;
}

/* One increment by compare-and-set: the value stored in *v. */
static int cas_incr(struct cohort_client *c, const char *key, int64_t *v)
{
    for (;;) {
        int64_t old;
        int rc = get_i64(c, key, &old);
        if (rc != 0)
            return rc;
        char from[24], to[24];
        snprintf(from, sizeof(from), "%" PRId64, old);
        snprintf(to, sizeof(to), "%" PRId64, old + 1);
        const char *argv[4] = {"CAS", key, from, to};
        struct cohort_reply *r = NULL;
        rc = cohort_client_call(c, 0, 4, argv, NULL, &r);
        if (rc != 0)
            return rc;
        bool won = r->type == COHORT_REPLY_INTEGER && r->integer == 1;
        bool lost = r->type == COHORT_REPLY_INTEGER && r->integer == 0;
        cohort_reply_free(r);
        if (won) {
            *v = old + 1;
            return 0;
        }
        if (!lost)
            return -COHORT_EINVAL; /* an error reply */
    }
}

/* One thread, one handle: INCRs until the count or the stop file. */
static void *incr_main(void *arg)
{
    struct worker *w = arg;
    const struct args *a = w->a;
    struct cohort_client *c = NULL;
    if (cohort_client_open(&c, &a->o) != 0)
        abort();
    for (long i = 0; i < a->count; i++) {
        if (a->stop_file != NULL && access(a->stop_file, F_OK) == 0)
            break;
        int64_t v = 0;
        int64_t t0 = now_ms();
        int rc = a->cas ? cas_incr(c, a->key, &v)
                        : cohort_client_incr(c, a->key, &v);
        if (now_ms() - t0 > w->max_call_ms)
            w->max_call_ms = now_ms() - t0;
        if (rc == 0)
            record(w, v);
        else if (rc == -COHORT_EUNKNOWN)
            w->unknown++;
        else if (rc == -COHORT_ENOTAPPLIED)
            w->notapplied++;
        else
            w->other++;
        if (rc != 0)
            fprintf(stderr, "incr %ld: %s\n", i, cohort_client_error(c));
        calls_made++;
    }
    cohort_client_close(c);
    return NULL;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Replies seen twice across the threads (a write applied for two calls,
 * or one reply given to two). */
static long duplicate_replies(struct worker *w, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += w[i].reply_count;
    int64_t *all = malloc((total + 1) * sizeof(int64_t));
    if (all == NULL)
        abort();
    size_t k = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < w[i].reply_count; j++)
            all[k++] = w[i].replies[j];
    qsort(all, total, sizeof(int64_t), cmp_i64);
    long dups = 0;
    for (size_t i = 1; i < total; i++)
        dups += all[i] == all[i - 1];
    free(all);
    return dups;
}

static void print_result(struct worker *w, int n);

static int run_incr(const struct args *a)
{
    struct worker w[THREADS_MAX];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < a->threads; i++) {
        w[i].a = a;
        if (pthread_create(&w[i].thread, NULL, incr_main, &w[i]) != 0)
            abort();
    }
    for (int i = 0; i < a->threads; i++) {
        /* Progress while the threads run (thread 0's join waits last). */
        while (i == 0 && pthread_tryjoin_np(w[0].thread, NULL) != 0) {
            printf("progress %ld\n", (long)calls_made);
            fflush(stdout);
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (i > 0)
            pthread_join(w[i].thread, NULL);
    }
    print_result(w, a->threads);
    for (int i = 0; i < a->threads; i++)
        free(w[i].replies);
    return 0;
}

static void print_result(struct worker *w, int n)
{
    struct worker sum = {0};
    for (int i = 0; i < n; i++) {
        sum.ok += w[i].ok;
        sum.unknown += w[i].unknown;
        sum.notapplied += w[i].notapplied;
        sum.other += w[i].other;
        sum.out_of_order += w[i].out_of_order;
        sum.last = w[i].last > sum.last ? w[i].last : sum.last;
        if (w[i].max_call_ms > sum.max_call_ms)
            sum.max_call_ms = w[i].max_call_ms;
    }
    printf("result ok=%ld unknown=%ld notapplied=%ld other=%ld "
           "out_of_order=%ld duplicates=%ld last=%" PRId64
           " max_call_ms=%" PRId64 "\n",
           sum.ok, sum.unknown, sum.notapplied, sum.other, sum.out_of_order,
           duplicate_replies(w, n), sum.last, sum.max_call_ms);
}

/* ------------------------------------------------------------ uvincr */

struct uv_worker {
    struct worker w;
    struct cohort_client *c;
    struct cohort_client_uv u;
    long calls;
    int64_t started_ms;
    bool done;
};

static int uv_workers_left;
static uv_timer_t uv_progress;

static void uv_next(struct uv_worker *x);

static void uv_incr_done(struct cohort_client_uv *u, int rc,
                         struct cohort_reply *reply, void *ctx)
{
    struct uv_worker *x = ctx;
    struct worker *w = &x->w;
    int64_t took = now_ms() - x->started_ms;
    if (took > w->max_call_ms)
        w->max_call_ms = took;
    if (rc == 0 && reply->type == COHORT_REPLY_INTEGER)
        record(w, reply->integer);
    else if (rc == 0)
        w->other++;
    else if (rc == -COHORT_EUNKNOWN)
        w->unknown++;
    else if (rc == -COHORT_ENOTAPPLIED)
        w->notapplied++;
    else
        w->other++;
    if (rc != 0)
        fprintf(stderr, "incr %ld: %s\n", x->calls, cohort_client_error(x->c));
    cohort_reply_free(reply);
    (void)u;
    x->calls++;
    calls_made++;
    uv_next(x);
}

static void uv_closed(struct cohort_client_uv *u)
{
    (void)u;
    if (--uv_workers_left == 0)
        uv_close((uv_handle_t *)&uv_progress, NULL);
}

static void uv_next(struct uv_worker *x)
{
    const struct args *a = x->w.a;
    bool stop = x->calls >= a->count ||
                (a->stop_file != NULL && access(a->stop_file, F_OK) == 0);
    const char *argv[2] = {"INCR", a->key};
    x->started_ms = now_ms();
    if (stop ||
        cohort_client_uv_call(&x->u, 0, 2, argv, NULL, uv_incr_done, x) != 0) {
        x->done = true;
        cohort_client_uv_close(&x->u, uv_closed);
    }
}

static void uv_on_progress(uv_timer_t *t)
{
    (void)t;
    printf("progress %ld\n", (long)calls_made);
    fflush(stdout);
}

static int run_uvincr(const struct args *a)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        abort();
    struct uv_worker *x = calloc((size_t)a->threads, sizeof(*x));
    struct worker *w = calloc((size_t)a->threads, sizeof(*w));
    if (x == NULL || w == NULL)
        abort();
    uv_timer_init(&loop, &uv_progress);
    uv_timer_start(&uv_progress, uv_on_progress, 20, 20);
    uv_workers_left = a->threads;
    for (int i = 0; i < a->threads; i++) {
        x[i].w.a = a;
        if (cohort_client_open(&x[i].c, &a->o) != 0 ||
            cohort_client_uv_init(&x[i].u, &loop, x[i].c) != 0)
            abort();
        uv_next(&x[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < a->threads; i++) {
        cohort_client_close(x[i].c);
        w[i] = x[i].w;
    }
    free(x);
    int rc = uv_loop_close(&loop);
    print_result(w, a->threads);
    for (int i = 0; i < a->threads; i++)
        free(w[i].replies);
    free(w);
    return rc == 0 ? 0 : 1;
}

static int run_call(struct cohort_client *c, const struct args *a, int argc,
                    char **argv)
{
    if (a->rest == 0 || a->rest >= argc)
        usage();
    struct cohort_reply *r = NULL;
    if (a->warmup) {
        const char *ping[1] = {"PING"};
        int rc = cohort_client_call(c, 0, 1, ping, NULL, &r);
        cohort_reply_free(r);
        r = NULL;
        printf("ready %s\n", rc == 0 ? "OK" : cohort_client_error(c));
        fflush(stdout);
        char line[16];
        if (fgets(line, sizeof(line), stdin) == NULL)
            return 1;
    }
    int rc = cohort_client_call(c, a->flags, argc - a->rest,
                                (const char *const *)argv + a->rest, NULL, &r);
    printf("rc=%s", rc == 0 ? "OK" : cohort_err_name(rc));
    if (r != NULL && r->str != NULL)
        printf(" type=%d text=%s\n", (int)r->type, r->str);
    else if (r != NULL)
        printf(" type=%d text=%" PRId64 "\n", (int)r->type, r->integer);
    else
        printf("\n");
    printf("error=%s\n", cohort_client_error(c));
    cohort_reply_free(r);
    return 0;
}

static int run_ryw(struct cohort_client *c, const struct args *a)
{
    long ok = 0, stale = 0, failed = 0;
    for (long i = 1; i <= a->count; i++) {
        char want[32];
        snprintf(want, sizeof(want), "%ld", i);
        char *got = NULL;
        int rc = cohort_client_set(c, a->key, want, strlen(want));
        if (rc == 0)
            rc = cohort_client_get(c, COHORT_CALL_READ_LOCAL, a->key, &got,
                                   NULL);
        if (rc == -COHORT_ENOTFOUND) {
            stale++; /* a member that has not applied the first SET */
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "ryw %ld: %s\n", i, cohort_client_error(c));
            failed++;
            continue;
        }
        if (strcmp(got, want) == 0)
            ok++;
        else
            stale++;
        free(got);
    }
    printf("ryw ok=%ld stale=%ld failed=%ld min_revision=%" PRIu64 "\n", ok,
           stale, failed, cohort_client_min_revision(c));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct args a;
    memset(&a, 0, sizeof(a));
    parse(&a, argc, argv);
    a.o.members = a.members;
    a.o.member_count = a.member_count;
    struct cohort_client *c = NULL;
    int rc = cohort_client_open(&c, &a.o);
    if (rc != 0) {
        fprintf(stderr, "cohort-client-test: open: %s\n", cohort_strerror(rc));
        return 2;
    }
    cohort_client_set_min_revision(c, a.min_revision);
    if (a.threads <= 0 || a.threads > THREADS_MAX)
        a.threads = 1;
    a.cas = strcmp(argv[1], "casincr") == 0;
    if ((a.cas || strcmp(argv[1], "incr") == 0) && a.key != NULL && a.count > 0)
        rc = run_incr(&a);
    else if (strcmp(argv[1], "uvincr") == 0 && a.key != NULL && a.count > 0)
        rc = run_uvincr(&a);
    else if (strcmp(argv[1], "ryw") == 0 && a.key != NULL && a.count > 0)
        rc = run_ryw(c, &a);
    else if (strcmp(argv[1], "call") == 0)
        rc = run_call(c, &a, argc, argv);
    else
        usage();
    cohort_client_close(c);
    return rc;
}
