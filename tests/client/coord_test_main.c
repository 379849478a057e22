/* cohort-coord-test — drives the sessions and watches of libcohort-client
 * for the system test tests/system/test_client_coord.py, linked against
 * the shared library as an application is.
 *
 *   cohort-coord-test session --members a,b,c --ttl-ms T --key K
 *       opens a session kept alive by the library's thread, writes K as
 *       its ephemeral key (SET K held SESSION id, through a handle of its
 *       own) and prints "ready <id>"; then per line of stdin: "check"
 *       prints "state=live|lost keepalives=N key=present|missing
 *       last_ok_ms=M", "close" closes the session, prints "closed
 *       rc=<name>" and exits. "lost" is printed when the library reports
 *       the session lost.
 *   cohort-coord-test watch --members a,b,c --key K [--prefix]
 *                           [--after R] [--until-key U] --count N
 *                           --timeout-ms T
 *       watches K (a prefix with --prefix, a group's views with --group:
 *       "view <view> <group> <member>=<data>,...|-" per view), prints
 *       "ready <rev>" once the
 *       watch has started, "member <host:port>" when it moves, "event <rev>
 * <set|del|expire> <key> <value|->" per event, and after N events, an event on
 * key U, T ms or a refusal "done events=N resumes=R rc=<name> error=<message>".
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cohort_client.h"

#define MEMBERS_MAX 16

struct args {
    const char *members[MEMBERS_MAX];
    size_t member_count;
    struct cohort_client_options o;
    const char *key;
    const char *until_key;
    uint32_t ttl_ms;
    long count;
    long timeout_ms;
    bool prefix;
    bool group;
    bool after_given;
    uint64_t after;
};

static void usage(void)
{
    fprintf(stderr, "usage: cohort-coord-test session|watch --members a,b "
                    "--key K [--ttl-ms T] [--prefix] [--after R] "
                    "[--count N] [--timeout-ms T]\n");
    exit(2);
}

static void parse(struct args *a, int argc, char **argv)
{
    cohort_client_options_init(&a->o);
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--prefix") == 0) {
            a->prefix = true;
            continue;
        }
        if (strcmp(f, "--group") == 0) {
            a->group = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        char *v = argv[++i];
        if (strcmp(f, "--members") == 0) {
            for (char *save = NULL, *m = strtok_r(v, ",", &save); m != NULL;
                 m = strtok_r(NULL, ",", &save)) {
                if (a->member_count == MEMBERS_MAX)
                    usage();
                a->members[a->member_count++] = m;
            }
        } else if (strcmp(f, "--key") == 0) {
            a->key = v;
        } else if (strcmp(f, "--until-key") == 0) {
            a->until_key = v;
        } else if (strcmp(f, "--ttl-ms") == 0) {
            a->ttl_ms = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(f, "--count") == 0) {
            a->count = strtol(v, NULL, 10);
        } else if (strcmp(f, "--timeout-ms") == 0) {
            a->timeout_ms = strtol(v, NULL, 10);
        } else if (strcmp(f, "--after") == 0) {
            a->after_given = true;
            a->after = strtoull(v, NULL, 10);
        } else {
            usage();
        }
    }
    a->o.members = a->members;
    a->o.member_count = a->member_count;
    if (a->key == NULL || a->member_count == 0)
        usage();
}

/* ------------------------------------------------------------ session */

static void on_lost(struct cohort_session *s, void *ctx)
{
    (void)ctx;
    printf("lost %" PRIu64 "\n", cohort_session_id(s));
    fflush(stdout);
}

static bool key_present(struct cohort_client *c, const char *key)
{
    char *v = NULL;
    int rc = cohort_client_get(c, 0, key, &v, NULL);
    free(v);
    return rc == 0;
}

static int run_session(const struct args *a)
{
    struct cohort_session *s = NULL;
    int rc = cohort_session_open(&s, &a->o, a->ttl_ms, on_lost, NULL);
    if (rc != 0) {
        printf("failed rc=%s\n", cohort_err_name(rc));
        return 1;
    }
    struct cohort_client *c = NULL;
    if (cohort_client_open(&c, &a->o) != 0 ||
        cohort_session_start_thread(s) != 0)
        return 1;
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, cohort_session_id(s));
    const char *set[5] = {"SET", a->key, "held", "SESSION", id};
    struct cohort_reply *r = NULL;
    rc = cohort_client_call(c, 0, 5, set, NULL, &r);
    if (rc != 0 || r->type != COHORT_REPLY_STATUS) {
        printf("failed rc=%s set: %s\n", cohort_err_name(rc),
               rc == 0 ? r->str : cohort_client_error(c));
        return 1;
    }
    cohort_reply_free(r);
    printf("ready %s\n", id);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strncmp(line, "check", 5) == 0) {
            bool present = key_present(c, a->key);
            printf("state=%s keepalives=%" PRIu64 " key=%s last_ok_ms=%" PRIu64
                   "\n",
                   cohort_session_state(s) == COHORT_SESSION_LIVE ? "live"
                                                                  : "lost",
                   cohort_session_keepalives(s),
                   present ? "present" : "missing",
                   cohort_session_last_ok_ms(s));
            fflush(stdout);
        } else if (strncmp(line, "close", 5) == 0) {
            break;
        }
    }
    rc = cohort_session_close(s);
    printf("closed rc=%s\n", rc == 0 ? "OK" : cohort_err_name(rc));
    fflush(stdout);
    cohort_client_close(c);
    return 0;
}

/* ------------------------------------------------------------ watch */

static long events_seen;
static bool until_seen;

/* Print "member <addr>" when the watch has moved. */
static void note_member(const struct cohort_watch *w)
{
    static char member[256];
    if (strcmp(member, cohort_watch_member(w)) != 0) {
        snprintf(member, sizeof(member), "%s", cohort_watch_member(w));
        printf("member %s\n", member);
    }
}

static void on_event(struct cohort_watch *w, const struct cohort_watch_event *e,
                     void *ctx)
{
    const char *until = ctx;
    note_member(w);
    if (until != NULL && strlen(until) == e->key_len &&
        memcmp(until, e->key, e->key_len) == 0)
        until_seen = true;
    if (e->kind == COHORT_WATCH_VIEW) {
        printf("view %" PRIu64 " %.*s ", e->revision, (int)e->key_len, e->key);
        for (size_t i = 0; i < e->member_count; i++)
            printf("%s%.*s=%.*s", i ? "," : "", (int)e->members[i].name_len,
                   e->members[i].name, (int)e->members[i].data_len,
                   e->members[i].data);
        printf("%s\n", e->member_count ? "" : "-");
        events_seen++;
        return;
    }
    static const char *const kinds[] = {"?", "set", "del", "expire"};
    printf("event %" PRIu64 " %s %.*s %.*s\n", e->revision, kinds[e->kind],
           (int)e->key_len, e->key, e->value ? (int)e->value_len : 1,
           e->value ? e->value : "-");
    events_seen++;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run_watch(const struct args *a)
{
    struct cohort_watch *w = NULL;
    int flags = (a->prefix ? COHORT_WATCH_PREFIX : 0) |
                (a->group ? COHORT_WATCH_GROUP : 0) |
                (a->after_given ? COHORT_WATCH_AFTER : 0);
    int rc = cohort_watch_open(&w, &a->o, flags, a->key, strlen(a->key),
                               a->after, on_event, (void *)a->until_key);
    if (rc != 0) {
        printf("done events=0 resumes=0 rc=%s error=open\n",
               cohort_err_name(rc));
        return 1;
    }
    int64_t end = now_ms() + a->timeout_ms;
    bool ready = false;
    rc = 0;
    while (rc == 0 && !until_seen && events_seen < a->count && now_ms() < end) {
        rc = cohort_watch_run(w, 50);
        if (!ready && (a->after_given || cohort_watch_revision(w) > 0)) {
            printf("ready %" PRIu64 "\n", cohort_watch_revision(w));
            ready = true;
        }
        note_member(w);
        fflush(stdout);
    }
    printf("done events=%ld resumes=%" PRIu64 " rc=%s error=%s\n", events_seen,
           cohort_watch_resumes(w), rc == 0 ? "OK" : cohort_err_name(rc),
           cohort_watch_error(w));
    fflush(stdout);
    cohort_watch_close(w);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct args a;
    memset(&a, 0, sizeof(a));
    parse(&a, argc, argv);
    if (strcmp(argv[1], "session") == 0 && a.ttl_ms > 0)
        return run_session(&a);
    if (strcmp(argv[1], "watch") == 0 && a.count > 0 && a.timeout_ms > 0)
        return run_watch(&a);
    usage();
    return 2;
}
