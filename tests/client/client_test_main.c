/* cohort-client-test — drives libcohort-client for the system tests
 * (tests/system/test_client_lib.py), linked against the shared library
 * as an application is.
 *
 *   cohort-client-test incr [options] --key K --count N [--stop-file F]
 *       N INCRs of K, one at a time (fewer if file F appears: it is
 *       looked for before each call); prints "progress <i>" every 20
 *       calls and at the end one line
 *       "result ok=.. unknown=.. notapplied=.. other=.. out_of_order=..
 *        last=.. client_id=.."
 *       where out_of_order counts successful replies that are not the
 *       previous successful reply plus one (a lost or a doubled INCR as
 *       seen by this one client of the key) and max_call_ms the longest
 *       single call (the stall a failover costs the application).
 *   cohort-client-test call [options] [--local] [--warmup] -- ARG...
 *       one call; with --warmup it first runs PING (which finds and
 *       connects to the primary), prints "ready" and waits for a line on
 *       stdin before the call (the test freezes the group meanwhile);
 *       prints "rc=<name> type=<n> text=<str or integer>" and
 *       "error=<cohort_client_error>".
 *
 * options: --members a,b,c  --deadline-ms D  --attempt-timeout-ms T
 *          --user U  --password P
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cohort_client.h"

#define MEMBERS_MAX 16

struct args {
    const char *members[MEMBERS_MAX];
    size_t member_count;
    struct cohort_client_options o;
    const char *key;
    long count;
    const char *stop_file;
    int flags;
    bool warmup;
    int rest; /* index of the first argument after "--" */
};

static void usage(void)
{
    fprintf(stderr, "usage: cohort-client-test incr|call --members a,b "
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
        else if (strcmp(f, "--user") == 0)
            a->o.username = v;
        else if (strcmp(f, "--password") == 0)
            a->o.password = v;
        else if (strcmp(f, "--key") == 0)
            a->key = v;
        else if (strcmp(f, "--stop-file") == 0)
            a->stop_file = v;
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

static int run_incr(struct cohort_client *c, const struct args *a)
{
    int64_t max_call_ms = 0;
    long ok = 0, unknown = 0, notapplied = 0, other = 0, out_of_order = 0;
    int64_t last = 0;
    for (long i = 0; i < a->count; i++) {
        if (a->stop_file != NULL && access(a->stop_file, F_OK) == 0)
            break;
        int64_t v = 0;
        int64_t t0 = now_ms();
        int rc = cohort_client_incr(c, a->key, &v);
        if (now_ms() - t0 > max_call_ms)
            max_call_ms = now_ms() - t0;
        if (rc == 0) {
            if (v != last + 1)
                out_of_order++;
            last = v;
            ok++;
        } else if (rc == -COHORT_EUNKNOWN) {
            unknown++;
        } else if (rc == -COHORT_ENOTAPPLIED) {
            notapplied++;
        } else {
            other++;
        }
        if (rc != 0)
            fprintf(stderr, "incr %ld: %s\n", i, cohort_client_error(c));
        if ((i + 1) % 20 == 0) {
            printf("progress %ld\n", i + 1);
            fflush(stdout);
        }
    }
    printf("result ok=%ld unknown=%ld notapplied=%ld other=%ld "
           "out_of_order=%ld last=%" PRId64 " max_call_ms=%" PRId64
           " client_id=%" PRIu64 "\n",
           ok, unknown, notapplied, other, out_of_order, last, max_call_ms,
           cohort_client_id(c));
    return 0;
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
    if (strcmp(argv[1], "incr") == 0 && a.key != NULL && a.count > 0)
        rc = run_incr(c, &a);
    else if (strcmp(argv[1], "call") == 0)
        rc = run_call(c, &a, argc, argv);
    else
        usage();
    cohort_client_close(c);
    return rc;
}
