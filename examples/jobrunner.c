/* jobrunner — a replicated job runner on libcohort-client: a group of
 * workers, a lock with a fencing token per job, and a watch on the jobs.
 *
 *   jobrunner submit COUNT HOST:PORT...
 *       jobs/0000 ... jobs/<COUNT-1> = "todo <n>" (SET NX: a job that
 *       exists, done or not, is left alone).
 *   jobrunner [-t ttl-ms] [-w work-ms] work NAME HOST:PORT...
 *       a worker: runs jobs until killed, printing what it does.
 *
 *   cc jobrunner.c $(pkg-config --cflags --libs cohort-client) -o jobrunner
 *   cohort up                 # in another terminal: members 7001-7003
 *   ./jobrunner submit 20 127.0.0.1:7001
 *   ./jobrunner work w1 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 &
 *   ./jobrunner work w2 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 &
 *   kill -STOP %1; sleep 5; kill -CONT %1        # w1 pauses past its TTL
 *
 * What a worker does (each step one store command):
 *   1. COHORT.SESSION OPEN ttl, then COHORT.GROUP JOIN jobrunners NAME id:
 *      it is a member while it sends KEEPALIVEs (every ttl/3, from the
 *      main loop). It prints the group's view (COHORT.GROUP VIEW), then
 *      each new one from the library's group watch (cohort_watch_open
 *      with COHORT_WATCH_GROUP, FROM that view, driven from the main
 *      loop's poll): every view once, in order, across failovers.
 *   2. It reads the store revision R, lists the jobs (KEYS on the
 *      prefix), and watches them: COHORT.WATCH PREFIX jobs/ FROM R on a
 *      connection of its own, to any member; after a disconnect it resumes
 *      on the next member FROM the last revision it saw: no job is missed.
 *      It PINGs that connection every tick and leaves a silent member.
 *   3. For a job still "todo": COHORT.LOCK jobs/<n> id gives a fencing
 *      token T (or nil: another worker holds it; retry later). It works,
 *      then records the result with COHORT.FENCE jobs/<n> T jobs/<n>
 *      "done by NAME token T result R", which writes only if T is still
 *      the lock's current token. A worker paused past its TTL lost its
 *      session, so its lock went to another worker with a larger token:
 *      its FENCE is refused ("refused ..." is printed) and writes nothing.
 *      So each job gets at most one result, and, as locks of dead workers
 *      are freed with their sessions, every job eventually gets one.
 *
 * Output, one line per event: "NAME: session S", "NAME: view V: a b c",
 * "NAME: took jobs/n token T", "NAME: recorded jobs/n token T",
 * "NAME: refused jobs/n token T: <the store's error>".
 * To show the commands, it sends them itself: its own keepalive loop, and
 * its jobs watch in plain RESP2 on a socket of its own (libcohort-client's
 * cohort_session_* and cohort_watch_* do both for a real program, as its
 * group watch shows). No passwords or TLS in this example.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cohort_client.h>

#define GROUP "jobrunners"
#define PREFIX "jobs/"
#define KEY_MAX 64
#define PENDING_MAX 4096

static struct cohort_client *client;
static const char *name;
static uint32_t ttl_ms = 3000, work_ms = 200;
static char session[24]; /* the session id as text; "" when we have none */

/* Jobs seen "todo"; tried once when seen, then again at every tick. */
static struct {
    char key[KEY_MAX];
    int tried;
} pending[PENDING_MAX];
static int pending_count;

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Run one command (NULL-terminated arguments). Every command here but
 * GET and KEYS changes state, so it goes as a write: exactly once, even
 * when a failover makes the library retry it. NULL: no answer before the
 * deadline (printed). */
static struct cohort_reply *cmd(int flags, const char *arg, ...)
{
    const char *argv[8];
    int argc = 0;
    va_list ap;
    va_start(ap, arg);
    for (; arg != NULL && argc < 8; arg = va_arg(ap, const char *))
        argv[argc++] = arg;
    va_end(ap);
    struct cohort_reply *r = NULL;
    if (cohort_client_call(client, flags, argc, argv, NULL, &r) != 0) {
        printf("%s: %s: %s\n", name, argv[0], cohort_client_error(client));
        return NULL;
    }
    return r;
}

static int is_error(const struct cohort_reply *r, const char *text)
{
    return r->type == COHORT_REPLY_ERROR && strstr(r->str, text) != NULL;
}

/* ------------------------------------------------------------ session */

static void session_open(void)
{
    char ttl[16], data[32];
    snprintf(ttl, sizeof(ttl), "%" PRIu32, ttl_ms);
    struct cohort_reply *r =
        cmd(COHORT_CALL_WRITE, "COHORT.SESSION", "OPEN", ttl, NULL);
    if (r != NULL && r->type == COHORT_REPLY_INTEGER) {
        snprintf(session, sizeof(session), "%" PRId64, r->integer);
        printf("%s: session %s (ttl %" PRIu32 " ms)\n", name, session, ttl_ms);
        snprintf(data, sizeof(data), "pid %ld", (long)getpid());
        cohort_reply_free(cmd(COHORT_CALL_WRITE, "COHORT.GROUP", "JOIN", GROUP,
                              name, session, data, NULL));
    }
    cohort_reply_free(r);
}

/* The session ended (we were paused, or cut off, past the TTL): it took
 * our group membership and our locks with it. Open a new one. */
static void session_lost(void)
{
    printf("%s: session %s expired; opening a new one\n", name, session);
    session[0] = '\0';
    session_open();
}

static void keepalive(void)
{
    if (session[0] == '\0') {
        session_open();
        return;
    }
    struct cohort_reply *r =
        cmd(COHORT_CALL_WRITE, "COHORT.SESSION", "KEEPALIVE", session, NULL);
    if (r != NULL && is_error(r, "no such session"))
        session_lost();
    cohort_reply_free(r);
}

/* ------------------------------------------------------------ views */

static struct cohort_client_options opts;
static struct cohort_watch *views; /* the library's watch of GROUP */

/* Each new view of the group, as the library's group watch delivers it
 * (once each, in order, across failovers). */
static void on_view(struct cohort_watch *vw, const struct cohort_watch_event *e,
                    void *ctx)
{
    (void)vw;
    (void)ctx;
    printf("%s: view %" PRIu64 ":", name, e->revision);
    for (size_t i = 0; i < e->member_count; i++)
        printf(" %.*s", (int)e->members[i].name_len, e->members[i].name);
    printf("\n");
}

/* Print the group's view now, then watch it from there. */
static void views_open(void)
{
    uint64_t view = 0;
    struct cohort_reply *r =
        cmd(COHORT_CALL_WRITE, "COHORT.GROUP", "VIEW", GROUP, NULL);
    if (r != NULL && r->type == COHORT_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == COHORT_REPLY_INTEGER) {
        view = (uint64_t)r->element[0]->integer;
        const struct cohort_reply *m = r->element[1];
        printf("%s: view %" PRIu64 ":", name, view);
        for (size_t i = 0; i + 1 < m->elements; i += 2) /* name, data */
            if (m->element[i]->type == COHORT_REPLY_STRING)
                printf(" %s", m->element[i]->str);
        printf("\n");
    }
    cohort_reply_free(r);
    if (cohort_watch_open(&views, &opts,
                          COHORT_WATCH_GROUP | COHORT_WATCH_AFTER, GROUP,
                          strlen(GROUP), view, on_view, NULL) != 0) {
        fprintf(stderr, "jobrunner: cannot watch the group\n");
        exit(1);
    }
}

/* ------------------------------------------------------------ jobs */

static int pending_find(const char *key)
{
    for (int i = 0; i < pending_count; i++)
        if (strcmp(pending[i].key, key) == 0)
            return i;
    return -1;
}

/* What the watch (or the listing) says of a key: value NULL is deleted. */
static void job_seen(const char *key, size_t key_size, const char *value)
{
    char k[KEY_MAX];
    if (key_size >= KEY_MAX)
        return; /* not one of ours */
    memcpy(k, key, key_size);
    k[key_size] = '\0';
    int i = pending_find(k);
    int todo = value != NULL && strncmp(value, "todo ", 5) == 0;
    if (todo && i < 0 && pending_count < PENDING_MAX) {
        strcpy(pending[pending_count].key, k);
        pending[pending_count++].tried = 0;
    } else if (!todo && i >= 0) {
        pending[i] = pending[--pending_count]; /* done (or deleted) */
    }
}

/* Lock, work, record with the fence, unlock. */
static void job_run(const char *key)
{
    struct cohort_reply *r =
        cmd(COHORT_CALL_WRITE, "COHORT.LOCK", key, session, NULL);
    if (r == NULL || r->type != COHORT_REPLY_INTEGER) {
        if (r != NULL && is_error(r, "no such session"))
            session_lost();
        cohort_reply_free(r); /* nil: another worker has it */
        return;
    }
    char token[24], value[128];
    snprintf(token, sizeof(token), "%" PRId64, r->integer);
    cohort_reply_free(r);
    /* Holding the lock, read the job: a worker before us may have done it. */
    r = cmd(0, "GET", key, NULL);
    if (r != NULL && r->type == COHORT_REPLY_STRING &&
        strncmp(r->str, "todo ", 5) == 0) {
        long n = strtol(r->str + 5, NULL, 10);
        printf("%s: took %s token %s\n", name, key, token);
        fflush(stdout);
        struct timespec t = {work_ms / 1000, (long)(work_ms % 1000) * 1000000};
        nanosleep(&t, NULL); /* the work; a pause may strike here */
        snprintf(value, sizeof(value), "done by %s token %s result %ld", name,
                 token, n * n);
        cohort_reply_free(r);
        r = cmd(COHORT_CALL_WRITE, "COHORT.FENCE", key, token, key, value,
                NULL);
        if (r != NULL && r->type == COHORT_REPLY_STATUS) {
            printf("%s: recorded %s token %s\n", name, key, token);
            job_seen(key, strlen(key), value);
        } else if (r != NULL && r->type == COHORT_REPLY_ERROR)
            printf("%s: refused %s token %s: %s\n", name, key, token, r->str);
    } else if (r != NULL) {
        job_seen(key, strlen(key),
                 r->type == COHORT_REPLY_STRING ? r->str : NULL);
    }
    cohort_reply_free(r);
    cohort_reply_free(
        cmd(COHORT_CALL_WRITE, "COHORT.UNLOCK", key, session, NULL));
}

/* ------------------------------------------------------------ watch */

static struct {
    const char *const *members;
    int member_count, next;
    int fd;
    char buf[65536];
    size_t len;
    uint64_t revision; /* the last one seen: resume after it */
    int quiet_ticks;   /* ticks since the member last sent anything */
} w = {.fd = -1};

/* Close the watch connection; the next tick resumes on another member. */
static void watch_drop(const char *why)
{
    printf("%s: watch connection lost (%s); resuming after revision %" PRIu64
           "\n",
           name, why, w.revision);
    close(w.fd);
    w.fd = -1;
}

/* The jobs as they are now; the watch resumes after the revision read
 * before listing them, so nothing between is missed. */
static void jobs_list(void)
{
    struct cohort_reply *r =
        cmd(0, "COHORT.GET", PREFIX, "WITHREV", NULL); /* [v, rev, ver, R] */
    if (r == NULL || r->type != COHORT_REPLY_ARRAY || r->elements != 4 ||
        r->element[3]->type != COHORT_REPLY_INTEGER) {
        cohort_reply_free(r);
        return;
    }
    w.revision = (uint64_t)r->element[3]->integer;
    cohort_reply_free(r);
    struct cohort_reply *keys = cmd(0, "KEYS", PREFIX "*", NULL);
    for (size_t i = 0; keys != NULL && i < keys->elements; i++) {
        const char *key = keys->element[i]->str;
        if (keys->element[i]->type != COHORT_REPLY_STRING)
            continue;
        r = cmd(0, "GET", key, NULL);
        if (r != NULL)
            job_seen(key, strlen(key),
                     r->type == COHORT_REPLY_STRING ? r->str : NULL);
        cohort_reply_free(r);
    }
    cohort_reply_free(keys);
}

/* Connect to the next member that answers and watch FROM w.revision. */
static void watch_connect(void)
{
    for (int tries = 0; tries < w.member_count && w.fd < 0; tries++) {
        char host[256], cmdtext[160], rev[24];
        const char *member = w.members[w.next];
        w.next = (w.next + 1) % w.member_count;
        const char *colon = strrchr(member, ':');
        const char *start = member, *end = colon;
        if (colon != NULL && member[0] == '[' && colon > member &&
            colon[-1] == ']') { /* "[v6]:port" */
            start = member + 1;
            end = colon - 1;
        }
        if (colon == NULL || end <= start ||
            (size_t)(end - start) >= sizeof(host))
            continue;
        memcpy(host, start, (size_t)(end - start));
        host[end - start] = '\0';
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
            continue;
        w.fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (w.fd >= 0 && connect(w.fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(w.fd);
            w.fd = -1;
        }
        freeaddrinfo(ai);
        if (w.fd < 0)
            continue;
        int n = snprintf(rev, sizeof(rev), "%" PRIu64, w.revision);
        int len = snprintf(cmdtext, sizeof(cmdtext),
                           "*5\r\n$12\r\nCOHORT.WATCH\r\n$6\r\nPREFIX\r\n"
                           "$%zu\r\n%s\r\n$4\r\nFROM\r\n$%d\r\n%s\r\n",
                           strlen(PREFIX), PREFIX, n, rev);
        w.len = 0;
        w.quiet_ticks = 0;
        if (write(w.fd, cmdtext, (size_t)len) != len) {
            close(w.fd);
            w.fd = -1;
            continue;
        }
        printf("%s: watching %s* on %s from revision %s\n", name, PREFIX,
               member, rev);
    }
}

/* One RESP2 message at p[0, n): an error line, or a flat array such as
 * ["watch", revision, kind, key, value]. Returns its length, 0 if it is
 * not all there yet, -1 if it is not what a watch sends. */
struct element {
    const char *str; /* NULL: an integer (in num) or a nil */
    long long num;
};
static long parse(const char *p, size_t n, struct element e[5], long *count)
{
    const char *end = memchr(p, '\n', n);
    if (end == NULL)
        return 0;
    if (p[0] == '-') { /* an error: the watch is over */
        *count = -1;
        e[0].str = p + 1;
        e[0].num = end - p - 2;
        return end - p + 1;
    }
    *count = strtol(p + 1, NULL, 10);
    if (p[0] != '*' || *count < 1 || *count > 5)
        return -1;
    size_t pos = (size_t)(end - p) + 1;
    for (long i = 0; i < *count; i++) {
        end = pos < n ? memchr(p + pos, '\n', n - pos) : NULL;
        if (end == NULL)
            return 0;
        long long v = strtoll(p + pos + 1, NULL, 10);
        char type = p[pos];
        pos = (size_t)(end - p) + 1;
        e[i] = (struct element){NULL, v};
        if (type == '$' && v >= 0) { /* a bulk string of v bytes, CRLF */
            if (v > (long long)sizeof(w.buf))
                return -1;
            if (n - pos < (size_t)v + 2)
                return 0;
            e[i].str = p + pos;
            pos += (size_t)v + 2;
        } else if (type != ':' && type != '$') {
            return -1;
        }
    }
    return (long)pos;
}

/* Read what the watch sent and act on each event. */
static void watch_read(void)
{
    ssize_t got = read(w.fd, w.buf + w.len, sizeof(w.buf) - w.len);
    if (got > 0)
        w.len += (size_t)got;
    long used = 0, count;
    struct element e[5];
    size_t off = 0;
    while (got > 0 && (used = parse(w.buf + off, w.len - off, e, &count)) > 0) {
        off += (size_t)used;
        w.quiet_ticks = 0;
        if (count == -1) {
            printf("%s: watch: %.*s\n", name, (int)e[0].num, e[0].str);
            if (memmem(e[0].str, (size_t)e[0].num, "compacted", 9) != NULL)
                jobs_list(); /* too far behind: list again */
            got = 0;
        } else if (count == 5 && e[0].str != NULL &&
                   memcmp(e[0].str, "watch", 5) == 0 && e[1].str == NULL &&
                   e[3].str != NULL) {
            /* A value is bytes, not a C string: copy it to compare. */
            char value[16] = "";
            if (e[4].str != NULL)
                memcpy(value, e[4].str, e[4].num < 15 ? (size_t)e[4].num : 15);
            job_seen(e[3].str, (size_t)e[3].num, e[4].str ? value : NULL);
            w.revision = (uint64_t)e[1].num;
        } /* else the "watching" confirmation */
    }
    /* Closed, failed, garbled or a message larger than the buffer (read
     * got 0 bytes): resume on another connection. */
    if (got <= 0 || used < 0) {
        watch_drop(used < 0 ? "garbled" : "closed");
        return;
    }
    memmove(w.buf, w.buf + off, w.len - off);
    w.len -= off;
}

/* At each tick: watch if we do not; else PING the watch connection (a
 * watcher may PING) and drop it when its member has sent nothing for two
 * ticks: a frozen member would otherwise hide new jobs from us. */
static void watch_tick(void)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    if (w.fd >= 0 && w.quiet_ticks++ >= 2)
        watch_drop("the member is silent");
    if (w.fd < 0)
        watch_connect();
    else if (write(w.fd, ping, sizeof(ping) - 1) != (ssize_t)sizeof(ping) - 1)
        watch_drop("write failed");
}

/* ------------------------------------------------------------ main */

static int submit(long count)
{
    long added = 0;
    for (long i = 0; i < count; i++) {
        char key[KEY_MAX], value[32];
        snprintf(key, sizeof(key), PREFIX "%04ld", i);
        snprintf(value, sizeof(value), "todo %ld", i);
        struct cohort_reply *r = cmd(0, "SET", key, value, "NX", NULL);
        if (r == NULL)
            return 1;
        added += r->type == COHORT_REPLY_STATUS;
        cohort_reply_free(r);
    }
    printf("submitted %ld new jobs (of %ld)\n", added, count);
    return 0;
}

/* A job seen "todo" and not tried since the last tick, or -1. */
static int job_next(void)
{
    for (int i = 0; i < pending_count && session[0] != '\0'; i++)
        if (!pending[i].tried)
            return i;
    return -1;
}

static void work(void)
{
    int64_t next_tick = 0;
    jobs_list();
    keepalive(); /* opens the session and joins */
    views_open();
    for (;;) {
        if (now_ms() >= next_tick) { /* every ttl/3 */
            keepalive();
            watch_tick();
            for (int i = 0; i < pending_count; i++)
                pending[i].tried = 0; /* try held jobs again */
            next_tick = now_ms() + ttl_ms / 3;
        }
        int i = job_next();
        if (i >= 0) {
            char key[KEY_MAX];
            pending[i].tried = 1;
            strcpy(key, pending[i].key); /* job_run may move it */
            job_run(key);
        }
        /* Wait for watch events until the tick, unless a job is ready:
         * on our own jobs watch, and on the library's group watch. */
        int64_t wait = job_next() >= 0 ? 0 : next_tick - now_ms();
        if (wait > cohort_watch_timeout_ms(views))
            wait = cohort_watch_timeout_ms(views);
        int vw = cohort_watch_wants(views);
        struct pollfd p[2] = {
            {w.fd, POLLIN, 0},
            {cohort_watch_fd(views),
             (short)((vw & COHORT_CLIENT_WANT_READ ? POLLIN : 0) |
                     (vw & COHORT_CLIENT_WANT_WRITE ? POLLOUT : 0)),
             0}};
        if (poll(p, 2, wait > 0 ? (int)wait : 0) > 0 && w.fd >= 0 &&
            p[0].revents)
            watch_read();
        int rc = cohort_watch_process(views); /* calls on_view */
        if (rc != -COHORT_EAGAIN) {
            printf("%s: the group watch ended: %s\n", name,
                   cohort_watch_error(views));
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "+t:w:")) != -1) {
        if (opt == 't')
            ttl_ms = (uint32_t)strtoul(optarg, NULL, 10);
        else if (opt == 'w')
            work_ms = (uint32_t)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    argv += optind;
    argc -= optind;
    int submitting = argc >= 3 && strcmp(argv[0], "submit") == 0;
    if ((!submitting && (argc < 3 || strcmp(argv[0], "work") != 0)) ||
        ttl_ms < 100) {
        fprintf(stderr, "usage: jobrunner submit COUNT HOST:PORT...\n"
                        "       jobrunner [-t ttl-ms (>= 100)] [-w work-ms] "
                        "work NAME HOST:PORT...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    name = submitting ? "submit" : argv[1];
    struct cohort_client_options *o = &opts;
    cohort_client_options_init(o);
    o->members = (const char *const *)argv + 2;
    o->member_count = (size_t)(argc - 2);
    o->deadline_ms = 60000; /* ride out failovers */
    if (cohort_client_open(&client, o) != 0) {
        fprintf(stderr, "jobrunner: bad member list\n");
        return 2;
    }
    w.members = o->members;
    w.member_count = argc - 2;
    if (submitting)
        return submit(strtol(argv[1], NULL, 10));
    work();
}
