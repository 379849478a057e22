/* libcohort-client against fake members: scripted RESP servers on loopback
 * (one thread each) that record every command. Checks what the wire shows:
 * a retry carries the same client id and request number, a number is
 * reused only after a write that certainly was not applied, discovery
 * sends writes to the member INFO names as primary, and "session expired"
 * starts a new client id at request 1. No timing is asserted: deadlines
 * only bound how long a failing case takes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cohort_client.h"
#include "common/resp.h"

#define LOG_MAX 256
#define LINE_MAX_ 256
#define CONNS_MAX 64

/* What a fake does with one command: write a reply to out, or return false
 * to close the connection without one. n counts the COHORT.REQ commands
 * this fake has received, from 1. */
typedef bool (*fake_script)(struct resp_buf *out, const char *cmd, int n,
                            void *ctx);

struct fake {
    int listen_fd;
    uint16_t port;
    char addr[32];
    pthread_t thread;
    fake_script script;
    void *ctx;
    pthread_mutex_t lock;
    char log[LOG_MAX][LINE_MAX_]; /* "COHORT.REQ 123 1 INCR k", ... */
    int log_count;
    int writes;
    atomic_int stop;
    pthread_t conns[CONNS_MAX]; /* one thread per connection */
    int conn_count;
};

static void join_args(char *line, uint32_t argc, const struct resp_arg *argv)
{
    size_t off = 0;
    line[0] = '\0';
    for (uint32_t i = 0; i < argc && off + 2 < LINE_MAX_; i++)
        off += (size_t)snprintf(line + off, LINE_MAX_ - off, "%s%.*s",
                                i ? " " : "", (int)argv[i].size, argv[i].ptr);
}

/* Serve one connection until the peer closes or the script closes it. */
static void serve(struct fake *f, int fd)
{
    static const struct resp_limits limits = {64, 1 << 20, 1 << 16};
    char buf[65536];
    size_t have = 0;
    for (;;) {
        struct resp_arg argv[64];
        struct resp_request req = {.argv = argv, .arg_capacity = 64};
        struct cohort_err err;
        enum resp_result r = resp_request_parse(buf, have, &limits, &req, &err);
        if (r == RESP_NEED_MORE) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (f->stop || poll(&p, 1, 50) < 0)
                return;
            if (!(p.revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                return;
            have += (size_t)n;
            continue;
        }
        assert_int_equal(r, RESP_COMPLETE);
        char line[LINE_MAX_];
        join_args(line, req.argc, argv);
        pthread_mutex_lock(&f->lock);
        if (f->log_count < LOG_MAX)
            snprintf(f->log[f->log_count++], LINE_MAX_, "%s", line);
        int n = strncmp(line, "COHORT.REQ", 10) == 0 ? ++f->writes : 0;
        pthread_mutex_unlock(&f->lock);
        memmove(buf, buf + req.consumed, have - req.consumed);
        have -= req.consumed;
        struct resp_buf out;
        resp_buf_init(&out, 2);
        bool keep = f->script(&out, line, n, f->ctx);
        if (keep && out.size > 0)
            assert_int_equal(write(fd, out.data, out.size), out.size);
        resp_buf_deinit(&out);
        if (!keep)
            return;
    }
}

struct served {
    struct fake *f;
    int fd;
};

static void *serve_main(void *arg)
{
    struct served *sv = arg;
    serve(sv->f, sv->fd);
    close(sv->fd);
    free(sv);
    return NULL;
}

/* Accept connections, each served by a thread of its own (a handle keeps
 * a write connection and READONLY ones to the same member). */
static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!f->stop) {
        struct pollfd p = {.fd = f->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        struct served *sv = malloc(sizeof(*sv));
        assert_non_null(sv);
        *sv = (struct served){f, fd};
        if (f->conn_count == CONNS_MAX ||
            pthread_create(&f->conns[f->conn_count], NULL, serve_main, sv) !=
                0) {
            close(fd);
            free(sv);
            continue;
        }
        f->conn_count++;
    }
    for (int i = 0; i < f->conn_count; i++)
        pthread_join(f->conns[i], NULL);
    return NULL;
}

/* Bind a loopback port (f->addr); fake_run() starts serving it. */
static void fake_listen(struct fake *f, fake_script script, void *ctx)
{
    memset(f, 0, sizeof(*f));
    f->script = script;
    f->ctx = ctx;
    pthread_mutex_init(&f->lock, NULL);
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->listen_fd, 16), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&sa, &len),
                     0);
    f->port = ntohs(sa.sin_port);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", f->port);
}

static void fake_run(struct fake *f)
{
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    f->stop = 1;
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    pthread_mutex_destroy(&f->lock);
}

/* The COHORT.REQ lines the fake received, in order. */
static int fake_writes(struct fake *f, char out[][LINE_MAX_], int max)
{
    int k = 0;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->log_count && k < max; i++)
        if (strncmp(f->log[i], "COHORT.REQ", 10) == 0)
            snprintf(out[k++], LINE_MAX_, "%s", f->log[i]);
    pthread_mutex_unlock(&f->lock);
    return k;
}

static struct cohort_client *open_client(const char *const *members,
                                         size_t count, uint32_t deadline_ms)
{
    struct cohort_client_options o;
    cohort_client_options_init(&o);
    o.members = members;
    o.member_count = count;
    o.deadline_ms = deadline_ms;
    o.attempt_timeout_ms = 200;
    struct cohort_client *c = NULL;
    assert_int_equal(cohort_client_open(&c, &o), 0);
    return c;
}

/* INFO replication naming ctx (an address) as the primary; PING answers
 * PONG. Returns true when cmd was one of them (out written). */
static bool answer_admin(struct resp_buf *out, const char *cmd,
                         const char *primary)
{
    if (strncmp(cmd, "INFO", 4) == 0) {
        char text[256];
        snprintf(text, sizeof(text), "role:x\r\nprimary:%s\r\n", primary);
        resp_write_bulk(out, text, strlen(text));
        return true;
    }
    if (strcmp(cmd, "PING") == 0) {
        resp_write_simple(out, "PONG");
        return true;
    }
    return false;
}

struct plan {
    _Atomic(const char *) primary; /* NULL: INFO names none ("?") */
    const char *const *steps;      /* per COHORT.REQ: a reply, or NULL: close */
    int step_count;
    _Atomic(const char *) then; /* the reply after the steps */
};

static bool scripted(struct resp_buf *out, const char *cmd, int n, void *ctx)
{
    const struct plan *p = ctx;
    const char *primary = atomic_load(&p->primary);
    if (answer_admin(out, cmd, primary ? primary : "?"))
        return true;
    if (strcmp(cmd, "READONLY") == 0) {
        resp_write_simple(out, "OK");
        return true;
    }
    if (strncmp(cmd, "GET", 3) == 0) {
        resp_write_bulk(out, "v", 1);
        return true;
    }
    const char *reply =
        n <= p->step_count ? p->steps[n - 1] : atomic_load(&p->then);
    if (reply == NULL)
        return false;
    resp_write_raw(out, reply, strlen(reply));
    return true;
}

/* "COHORT.REQ <id> <no> ..." -> id and no. */
static void id_and_no(const char *line, unsigned long long *id,
                      unsigned long long *no)
{
    assert_int_equal(sscanf(line, "COHORT.REQ %llu %llu", id, no), 2);
}

static void run_retry_case(const char *const *steps, int step_count)
{
    struct fake f;
    struct plan plan = {NULL, steps, step_count, ":5\r\n"};
    fake_listen(&f, scripted, &plan);
    plan.primary = f.addr;
    fake_run(&f);
    const char *members[] = {f.addr};
    struct cohort_client *c = open_client(members, 1, 20000);
    int64_t v = 0;
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    char w[8][LINE_MAX_];
    int count = fake_writes(&f, w, 8);
    assert_int_equal(count, step_count + 2);
    unsigned long long id0, no0, id, no;
    id_and_no(w[0], &id0, &no0);
    assert_int_equal(no0, 1);
    for (int i = 1; i <= step_count; i++) {
        id_and_no(w[i], &id, &no);
        assert_int_equal(id, id0); /* the retry: same id, same number */
        assert_int_equal(no, 1);
    }
    id_and_no(w[step_count + 1], &id, &no);
    assert_int_equal(id, id0);
    assert_int_equal(no, 2); /* the next write */
    assert_int_equal(id0, cohort_client_id(c));
    cohort_client_close(c);
    fake_stop(&f);
}

static void tryagain_and_unknown_retry_the_same_request(void **state)
{
    (void)state;
    const char *steps[] = {"-TRYAGAIN view change in progress\r\n",
                           "-UNKNOWN the primary changed\r\n"};
    run_retry_case(steps, 2);
}

static void a_lost_connection_retries_the_same_request(void **state)
{
    (void)state;
    const char *steps[] = {NULL, NULL};
    run_retry_case(steps, 2);
}

static void deadline_errors_say_what_happened(void **state)
{
    (void)state;
    /* Always -TRYAGAIN: certainly not applied, and the number is reused. */
    struct fake f;
    struct plan busy = {NULL, NULL, 0, "-TRYAGAIN busy\r\n"};
    fake_listen(&f, scripted, &busy);
    busy.primary = f.addr;
    fake_run(&f);
    const char *members[] = {f.addr};
    struct cohort_client *c = open_client(members, 1, 300);
    assert_int_equal(cohort_client_incr(c, "k", NULL), -COHORT_ENOTAPPLIED);
    assert_non_null(strstr(cohort_client_error(c), "certainly not applied"));
    assert_int_equal(cohort_client_next_request_no(c), 1);
    /* Always closing after the command: unknown, and the number moves. */
    atomic_store(&busy.then, NULL);
    assert_int_equal(cohort_client_incr(c, "k", NULL), -COHORT_EUNKNOWN);
    assert_non_null(strstr(cohort_client_error(c), "may or may not"));
    assert_int_equal(cohort_client_next_request_no(c), 2);
    cohort_client_close(c);
    fake_stop(&f);
}

static void writes_go_to_the_primary_info_names(void **state)
{
    (void)state;
    struct fake backup, primary;
    struct plan to_primary = {NULL, NULL, 0, ":1\r\n"};
    fake_listen(&primary, scripted, &to_primary);
    to_primary.primary = primary.addr;
    fake_run(&primary);
    struct plan from_backup = {primary.addr, NULL, 0, "-ERR not here\r\n"};
    fake_listen(&backup, scripted, &from_backup);
    fake_run(&backup);
    const char *members[] = {backup.addr}; /* only the backup is given */
    struct cohort_client *c = open_client(members, 1, 20000);
    int64_t v = 0;
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    assert_int_equal(v, 1);
    char w[4][LINE_MAX_];
    assert_int_equal(fake_writes(&backup, w, 4), 0);
    assert_int_equal(fake_writes(&primary, w, 4), 1);
    cohort_client_close(c);
    fake_stop(&backup);
    fake_stop(&primary);
}

static void session_expired_starts_a_new_client(void **state)
{
    (void)state;
    const char *steps[] = {
        "-ERR client session expired: start again at request number 1\r\n"};
    struct fake f;
    struct plan plan = {NULL, steps, 1, ":1\r\n"};
    fake_listen(&f, scripted, &plan);
    plan.primary = f.addr;
    fake_run(&f);
    const char *members[] = {f.addr};
    struct cohort_client *c = open_client(members, 1, 20000);
    uint64_t first_id = cohort_client_id(c);
    assert_int_equal(cohort_client_incr(c, "k", NULL), 0);
    assert_int_equal(cohort_client_incr(c, "k", NULL), 0);
    char w[4][LINE_MAX_];
    assert_int_equal(fake_writes(&f, w, 4), 3);
    unsigned long long id, no;
    id_and_no(w[1], &id, &no);
    assert_true(id != first_id);
    assert_int_equal(no, 1);
    assert_int_equal(id, cohort_client_id(c));
    id_and_no(w[2], &id, &no);
    assert_int_equal(no, 2);
    cohort_client_close(c);
    fake_stop(&f);
}

static void error_replies_and_reads_are_not_retried(void **state)
{
    (void)state;
    struct fake f;
    struct plan plan = {NULL, NULL, 0, "-ERR wrong type\r\n"};
    fake_listen(&f, scripted, &plan);
    plan.primary = f.addr;
    fake_run(&f);
    const char *members[] = {f.addr};
    struct cohort_client *c = open_client(members, 1, 20000);
    struct cohort_reply *r = NULL;
    const char *argv[] = {"SET", "k", "v"};
    assert_int_equal(cohort_client_call(c, 0, 3, argv, NULL, &r), 0);
    assert_int_equal(r->type, COHORT_REPLY_ERROR);
    assert_string_equal(r->str, "ERR wrong type");
    cohort_reply_free(r);
    assert_int_equal(cohort_client_set(c, "k", "v", 1), -COHORT_EREPLY);
    const char *ping[] = {"PING"};
    assert_int_equal(cohort_client_call(c, 0, 1, ping, NULL, &r), 0);
    assert_int_equal(r->type, COHORT_REPLY_STATUS);
    assert_string_equal(r->str, "PONG");
    cohort_reply_free(r);
    char w[4][LINE_MAX_];
    assert_int_equal(fake_writes(&f, w, 4), 2); /* PING is not wrapped */
    cohort_client_close(c);
    fake_stop(&f);
}

/* Drive the calls of several handles from one poll loop, as an
 * application's event loop would. Returns when every call is done. */
static void drive(struct cohort_client **cs, int n, int *rcs,
                  struct cohort_reply **replies)
{
    bool done[8] = {false};
    int left = n;
    while (left > 0) {
        struct pollfd p[8];
        int timeout = 1000;
        for (int i = 0; i < n; i++) {
            p[i] = (struct pollfd){.fd = -1};
            if (done[i])
                continue;
            rcs[i] = cohort_client_process(cs[i], &replies[i]);
            if (rcs[i] != -COHORT_EAGAIN) {
                done[i] = true;
                left--;
                continue;
            }
            int w = cohort_client_wants(cs[i]);
            p[i].fd = cohort_client_fd(cs[i]);
            p[i].events = (short)((w & COHORT_CLIENT_WANT_READ ? POLLIN : 0) |
                                  (w & COHORT_CLIENT_WANT_WRITE ? POLLOUT : 0));
            if (p[i].events == 0)
                p[i].fd = -1;
            int t = cohort_client_timeout_ms(cs[i]);
            assert_true(t >= 0);
            if (t < timeout)
                timeout = t;
        }
        if (left > 0)
            (void)poll(p, (nfds_t)n, timeout);
    }
}

static void calls_run_from_the_callers_poll_loop(void **state)
{
    (void)state;
    const char *steps[] = {"-TRYAGAIN view change in progress\r\n", NULL};
    struct fake f[2];
    struct plan plans[2] = {{NULL, steps, 2, ":5\r\n"},
                            {NULL, steps, 2, ":5\r\n"}};
    struct cohort_client *cs[2];
    for (int i = 0; i < 2; i++) {
        fake_listen(&f[i], scripted, &plans[i]);
        plans[i].primary = f[i].addr;
        fake_run(&f[i]);
        const char *members[] = {f[i].addr};
        cs[i] = open_client(members, 1, 20000);
        struct cohort_reply *r = NULL;
        assert_int_equal(cohort_client_process(cs[i], &r), -COHORT_EINVAL);
    }
    const char *argv[] = {"INCR", "k"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cohort_client_start(cs[i], 0, 2, argv, NULL), 0);
        assert_int_equal(cohort_client_start(cs[i], 0, 2, argv, NULL),
                         -COHORT_EINVAL); /* one call at a time */
    }
    int rcs[2];
    struct cohort_reply *replies[2];
    drive(cs, 2, rcs, replies);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rcs[i], 0);
        assert_int_equal(replies[i]->type, COHORT_REPLY_INTEGER);
        assert_int_equal(replies[i]->integer, 5);
        cohort_reply_free(replies[i]);
        char w[8][LINE_MAX_];
        assert_int_equal(fake_writes(&f[i], w, 8), 3);
        unsigned long long id0, no0, id, no;
        id_and_no(w[0], &id0, &no0);
        id_and_no(w[2], &id, &no);
        assert_int_equal(id, id0); /* retried after -TRYAGAIN and a close */
        assert_int_equal(no, no0);
        /* The handle is free again, and blocking calls work on it. */
        assert_int_equal(cohort_client_incr(cs[i], "k", NULL), 0);
        assert_int_equal(cohort_client_next_request_no(cs[i]), 3);
        cohort_client_close(cs[i]);
        fake_stop(&f[i]);
    }
}

static void a_forwarding_member_is_asked_again_for_the_primary(void **state)
{
    (void)state;
    struct fake backup, primary;
    struct plan to_primary = {NULL, NULL, 0, ":2\r\n"};
    fake_listen(&primary, scripted, &to_primary);
    to_primary.primary = primary.addr;
    fake_run(&primary);
    /* The backup names no primary at first (a view change) and answers
     * writes itself, as a forwarding backup would. */
    struct plan from_backup = {NULL, NULL, 0, ":1\r\n"};
    fake_listen(&backup, scripted, &from_backup);
    fake_run(&backup);
    const char *members[] = {backup.addr};
    struct cohort_client *c = open_client(members, 1, 20000);
    int64_t v = 0;
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    assert_int_equal(v, 1);
    atomic_store(&from_backup.primary, primary.addr);
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    assert_int_equal(v, 2); /* asked INFO again and went to the primary */
    char w[4][LINE_MAX_];
    assert_int_equal(fake_writes(&backup, w, 4), 1);
    assert_int_equal(fake_writes(&primary, w, 4), 1);
    cohort_client_close(c);
    fake_stop(&backup);
    fake_stop(&primary);
}

/* The commands a fake received that start with prefix. */
static int fake_count(struct fake *f, const char *prefix)
{
    int k = 0;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->log_count; i++)
        k += strncmp(f->log[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&f->lock);
    return k;
}

static void local_reads_go_round_the_members(void **state)
{
    (void)state;
    struct fake f[3];
    struct plan plans[3];
    const char *members[3];
    for (int i = 0; i < 3; i++) {
        plans[i] = (struct plan){NULL, NULL, 0, ":0\r\n"};
        fake_listen(&f[i], scripted, &plans[i]);
        members[i] = f[i].addr;
        fake_run(&f[i]);
    }
    struct cohort_client *c = open_client(members, 3, 20000);
    for (int k = 0; k < 6; k++) {
        char *value = NULL;
        assert_int_equal(
            cohort_client_get(c, COHORT_CALL_READ_LOCAL, "k", &value, NULL), 0);
        assert_string_equal(value, "v");
        free(value);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fake_count(&f[i], "READONLY"), 1); /* once */
        assert_int_equal(fake_count(&f[i], "GET"), 2);
        assert_int_equal(fake_count(&f[i], "INFO"), 0);
    }
    cohort_client_close(c);
    for (int i = 0; i < 3; i++)
        fake_stop(&f[i]);
}

/* A member a membership change removed from the group: -REMOVED to every
 * store command, and (the worst case) an INFO that still names ctx, its
 * own address, as the primary. */
static bool removed_member(struct resp_buf *out, const char *cmd, int n,
                           void *ctx)
{
    (void)n;
    if (answer_admin(out, cmd, ctx))
        return true;
    if (strcmp(cmd, "READONLY") == 0) {
        resp_write_simple(out, "OK");
        return true;
    }
    resp_write_error(out, "REMOVED this member (replica 0) was removed from "
                          "the group (epoch 3); use another member");
    return true;
}

static void a_removed_member_is_left_for_another(void **state)
{
    (void)state;
    struct fake gone, ok;
    struct plan to_ok = {NULL, NULL, 0, ":1\r\n"};
    fake_listen(&ok, scripted, &to_ok);
    to_ok.primary = ok.addr;
    fake_run(&ok);
    fake_listen(&gone, removed_member, gone.addr);
    fake_run(&gone);
    const char *members[] = {gone.addr, ok.addr};
    struct cohort_client *c = open_client(members, 2, 20000);
    /* The write goes to the member that names itself, is refused as
     * certainly not applied, and goes on to the other with the same
     * request number. */
    int64_t v = 0;
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    assert_int_equal(v, 1);
    char w[4][LINE_MAX_];
    assert_int_equal(fake_writes(&gone, w, 4), 1);
    assert_int_equal(fake_writes(&ok, w + 1, 3), 1);
    unsigned long long id0, no0, id, no;
    id_and_no(w[0], &id0, &no0);
    id_and_no(w[1], &id, &no);
    assert_int_equal(id, id0);
    assert_int_equal(no, no0);
    /* Local reads go round the members and pass it by (a new handle: no
     * write of its own to read first). */
    cohort_client_close(c);
    c = open_client(members, 2, 20000);
    for (int k = 0; k < 2; k++) {
        char *value = NULL;
        assert_int_equal(
            cohort_client_get(c, COHORT_CALL_READ_LOCAL, "k", &value, NULL), 0);
        assert_string_equal(value, "v");
        free(value);
    }
    assert_true(fake_count(&gone, "GET") >= 1);
    cohort_client_close(c);
    fake_stop(&gone);
    fake_stop(&ok);
}

/* A member that takes commands and never answers a write (a frozen or
 * cut-off primary): INFO names ctx (itself). */
static bool silent_primary(struct resp_buf *out, const char *cmd, int n,
                           void *ctx)
{
    (void)n;
    if (answer_admin(out, cmd, ctx))
        return true;
    return true; /* COHORT.REQ: keep the connection, say nothing */
}

/* Open a handle on members with the given hedge delay. */
static struct cohort_client *open_hedging(const char *const *members,
                                          size_t count, uint32_t hedge_ms)
{
    struct cohort_client_options o;
    cohort_client_options_init(&o);
    o.members = members;
    o.member_count = count;
    o.deadline_ms = 3000;
    o.attempt_timeout_ms = 400;
    o.hedge_ms = hedge_ms;
    struct cohort_client *c = NULL;
    assert_int_equal(cohort_client_open(&c, &o), 0);
    return c;
}

static void a_silent_primary_is_hedged_to_another_member(void **state)
{
    (void)state;
    struct fake primary, backup;
    fake_listen(&primary, silent_primary, NULL);
    primary.ctx = primary.addr;
    fake_run(&primary);
    /* The backup names the silent primary (no view change yet) and answers
     * the write as if it forwarded it to a primary that does answer. */
    struct plan from_backup = {primary.addr, NULL, 0, ":7\r\n"};
    fake_listen(&backup, scripted, &from_backup);
    fake_run(&backup);
    const char *members[] = {primary.addr, backup.addr};
    /* Without hedging each attempt waits out its timeout on the primary,
     * and INFO at the backup sends the next one back there: no answer
     * within the deadline, and the write may have been applied. */
    struct cohort_client *c = open_hedging(members, 2, COHORT_CLIENT_HEDGE_OFF);
    assert_int_equal(cohort_client_incr(c, "k", NULL), -COHORT_EUNKNOWN);
    cohort_client_close(c);
    assert_int_equal(fake_count(&backup, "COHORT.REQ"), 0);
    /* With a hedge of 20 ms the same request goes to the backup too: it
     * keeps naming the silent primary, so once the hedged attempt would
     * have timed out the backup gets it (to forward), and answers. */
    c = open_hedging(members, 2, 20);
    int64_t v = 0;
    assert_int_equal(cohort_client_incr(c, "k", &v), 0);
    assert_int_equal(v, 7);
    char wp[8][LINE_MAX_], wb[8][LINE_MAX_];
    int np = fake_writes(&primary, wp, 8);
    assert_int_equal(fake_writes(&backup, wb, 8), 1);
    assert_true(np >= 2);
    unsigned long long id0, no0, id, no;
    id_and_no(wp[np - 1], &id0, &no0);
    id_and_no(wb[0], &id, &no);
    assert_int_equal(id, id0); /* the same request, exactly once */
    assert_int_equal(no, no0);
    assert_int_equal(id, cohort_client_id(c));
    assert_int_equal(cohort_client_next_request_no(c), no + 1);
    cohort_client_close(c);
    fake_stop(&primary);
    fake_stop(&backup);
}

/* A backup that names ctx->first as the primary in its first INFO
 * replies, then ctx->then (a view change); it forwards nothing itself. */
struct view_change {
    const char *first, *then;
    int infos, first_infos;
};

static bool changing_backup(struct resp_buf *out, const char *cmd, int n,
                            void *ctx)
{
    (void)n;
    struct view_change *v = ctx;
    if (strncmp(cmd, "INFO", 4) == 0) {
        /* One connection at a time asks (the handle's write connection). */
        int k = v->infos++;
        return answer_admin(out, cmd, k < v->first_infos ? v->first : v->then);
    }
    if (answer_admin(out, cmd, v->then))
        return true;
    resp_write_raw(out, "-TRYAGAIN not the primary\r\n", 27);
    return true;
}

static void a_hedge_finds_the_new_primary_a_backup_names(void **state)
{
    (void)state;
    struct fake primary, backup, next;
    fake_listen(&primary, silent_primary, NULL);
    primary.ctx = primary.addr;
    fake_run(&primary);
    struct plan to_next = {NULL, NULL, 0, ":9\r\n"};
    fake_listen(&next, scripted, &to_next);
    to_next.primary = next.addr;
    fake_run(&next);
    struct view_change v = {primary.addr, next.addr, 0, 3};
    fake_listen(&backup, changing_backup, &v);
    fake_run(&backup);
    /* The backup comes right after the primary, so the hedge asks it. */
    const char *members[] = {primary.addr, backup.addr, next.addr};
    struct cohort_client *c = open_hedging(members, 3, 20);
    int64_t value = 0;
    assert_int_equal(cohort_client_incr(c, "k", &value), 0);
    assert_int_equal(value, 9);
    /* Asked again while it named the silent primary, never forwarded. */
    assert_true(v.infos >= 4);
    assert_int_equal(fake_count(&backup, "COHORT.REQ"), 0);
    assert_int_equal(fake_count(&next, "COHORT.REQ"), 1);
    cohort_client_close(c);
    fake_stop(&primary);
    fake_stop(&backup);
    fake_stop(&next);
}

/* A member for read your writes: INFO names ctx; writes answer :1; the
 * probe COHORT.GET k WITHREV answers store revision 42; COHORT.APPLIED
 * answers 42; READONLY +OK; GET "v". */
static bool revision_member(struct resp_buf *out, const char *cmd, int n,
                            void *ctx)
{
    (void)n;
    if (answer_admin(out, cmd, ctx))
        return true;
    if (strcmp(cmd, "COHORT.GET k WITHREV") == 0) {
        const char *r = "*4\r\n$1\r\nv\r\n:41\r\n:1\r\n:42\r\n";
        resp_write_raw(out, r, strlen(r));
    } else if (strncmp(cmd, "COHORT.APPLIED ", 15) == 0) {
        resp_write_raw(out, ":42\r\n", 5);
    } else if (strcmp(cmd, "READONLY") == 0) {
        resp_write_simple(out, "OK");
    } else if (strncmp(cmd, "GET", 3) == 0) {
        resp_write_bulk(out, "v", 1);
    } else {
        resp_write_raw(out, ":1\r\n", 4);
    }
    return true;
}

static void local_reads_after_a_write_read_your_writes(void **state)
{
    (void)state;
    struct fake f[3];
    const char *members[3];
    for (int i = 0; i < 3; i++) {
        fake_listen(&f[i], revision_member, NULL);
        members[i] = f[i].addr;
    }
    for (int i = 0; i < 3; i++) {
        f[i].ctx = (void *)members[0]; /* f[0] is the primary */
        fake_run(&f[i]);
    }
    struct cohort_client *c = open_client(members, 3, 20000);
    char *value = NULL;
    /* No write yet: no probe, no minimum revision. */
    assert_int_equal(
        cohort_client_get(c, COHORT_CALL_READ_LOCAL, "k", &value, NULL), 0);
    free(value);
    assert_int_equal(cohort_client_min_revision(c), 0);
    assert_int_equal(cohort_client_incr(c, "k", NULL), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(
            cohort_client_get(c, COHORT_CALL_READ_LOCAL, "k", &value, NULL), 0);
        assert_string_equal(value, "v");
        free(value);
    }
    /* One probe at the primary, then every local read asks its member
     * for revision 42 first. */
    assert_int_equal(cohort_client_min_revision(c), 42);
    assert_int_equal(fake_count(&f[0], "COHORT.GET k WITHREV"), 1);
    int applied = 0;
    for (int i = 0; i < 3; i++)
        applied += fake_count(&f[i], "COHORT.APPLIED 42");
    assert_int_equal(applied, 3);
    cohort_client_close(c);
    /* With the option off, no probe. */
    struct cohort_client_options o;
    cohort_client_options_init(&o);
    o.members = members;
    o.member_count = 3;
    o.read_your_writes = 0;
    assert_int_equal(cohort_client_open(&c, &o), 0);
    assert_int_equal(cohort_client_incr(c, "k", NULL), 0);
    assert_int_equal(
        cohort_client_get(c, COHORT_CALL_READ_LOCAL, "k", &value, NULL), 0);
    free(value);
    assert_int_equal(cohort_client_min_revision(c), 0);
    assert_int_equal(fake_count(&f[0], "COHORT.GET k WITHREV"), 1);
    cohort_client_close(c);
    for (int i = 0; i < 3; i++)
        fake_stop(&f[i]);
}

/* A member of a group watch: COHORT.WATCH GROUP g is confirmed at 5 and
 * view 6 (two members) follows; the first PING closes the connection (a
 * failure), and the resumed COHORT.WATCH GROUP g FROM 5 replays view 6,
 * then view 7 (empty). */
static bool group_watch_member(struct resp_buf *out, const char *cmd, int n,
                               void *ctx)
{
    (void)n;
    atomic_int *pings = ctx;
    const char *confirm =
        "*5\r\n$8\r\nwatching\r\n$5\r\ngroup\r\n$1\r\ng\r\n:5\r\n:1\r\n";
    const char *view6 = "*5\r\n$5\r\nwatch\r\n:6\r\n$5\r\ngroup\r\n$1\r\ng\r\n"
                        "*4\r\n$2\r\nm1\r\n$2\r\nd1\r\n$2\r\nm2\r\n$0\r\n\r\n";
    const char *view7 =
        "*5\r\n$5\r\nwatch\r\n:7\r\n$5\r\ngroup\r\n$1\r\ng\r\n*0\r\n";
    if (strcmp(cmd, "PING") == 0) {
        if (atomic_fetch_add(pings, 1) == 0)
            return false;
        const char *pong = "*2\r\n$4\r\npong\r\n$0\r\n\r\n";
        resp_write_raw(out, pong, strlen(pong));
        return true;
    }
    if (strcmp(cmd, "COHORT.WATCH GROUP g") == 0) {
        resp_write_raw(out, confirm, strlen(confirm));
        resp_write_raw(out, view6, strlen(view6));
        return true;
    }
    if (strcmp(cmd, "COHORT.WATCH GROUP g FROM 5") == 0) {
        resp_write_raw(out, confirm, strlen(confirm));
        resp_write_raw(out, view6, strlen(view6));
        resp_write_raw(out, view7, strlen(view7));
        return true;
    }
    return false;
}

struct views_seen {
    int count;
    uint64_t revision[4];
    size_t members[4];
    char text[4][64];
};

static void on_view(struct cohort_watch *w, const struct cohort_watch_event *e,
                    void *ctx)
{
    (void)w;
    struct views_seen *v = ctx;
    assert_int_equal(e->kind, COHORT_WATCH_VIEW);
    assert_int_equal(e->key_len, 1);
    assert_memory_equal(e->key, "g", 1);
    if (v->count == 4)
        return;
    int k = v->count++;
    v->revision[k] = e->revision;
    v->members[k] = e->member_count;
    size_t off = 0;
    for (size_t i = 0; i < e->member_count; i++)
        off += (size_t)snprintf(v->text[k] + off, sizeof(v->text[k]) - off,
                                "%.*s=%.*s;", (int)e->members[i].name_len,
                                e->members[i].name, (int)e->members[i].data_len,
                                e->members[i].data);
}

static void a_group_watch_delivers_each_view_once(void **state)
{
    (void)state;
    struct fake f;
    atomic_int pings = 0;
    fake_listen(&f, group_watch_member, &pings);
    fake_run(&f);
    const char *members[] = {f.addr};
    struct cohort_client_options o;
    cohort_client_options_init(&o);
    o.members = members;
    o.member_count = 1;
    o.attempt_timeout_ms = 50; /* PING soon */
    struct cohort_watch *w = NULL;
    assert_int_equal(cohort_watch_open(&w, &o,
                                       COHORT_WATCH_GROUP | COHORT_WATCH_PREFIX,
                                       "g", 1, 0, on_view, NULL),
                     -COHORT_EINVAL);
    struct views_seen v;
    memset(&v, 0, sizeof(v));
    assert_int_equal(
        cohort_watch_open(&w, &o, COHORT_WATCH_GROUP, "g", 1, 0, on_view, &v),
        0);
    for (int i = 0; i < 200 && v.count < 2; i++)
        assert_int_equal(cohort_watch_run(w, 50), 0);
    assert_int_equal(cohort_watch_run(w, 50), 0); /* nothing more */
    assert_int_equal(v.count, 2); /* view 6 once, though sent twice */
    assert_int_equal(v.revision[0], 6);
    assert_int_equal(v.members[0], 2);
    assert_string_equal(v.text[0], "m1=d1;m2=;");
    assert_int_equal(v.revision[1], 7);
    assert_int_equal(v.members[1], 0);
    assert_int_equal(cohort_watch_revision(w), 7);
    assert_int_equal(fake_count(&f, "COHORT.WATCH GROUP g FROM 5"), 1);
    assert_int_equal(cohort_watch_resumes(w), 1);
    cohort_watch_close(w);
    fake_stop(&f);
}

/* A member address is host:port with a port in 1..65535 ([v6]:port for
 * IPv6), checked at open: 99999 used to be taken and wrap. */
static void member_addresses_are_checked_at_open(void **state)
{
    (void)state;
    const char *bad[] = {"h",       "h:",      ":7001",   "h:0",
                         "h:99999", "h:7x",    "h:-1",    "::1:7001",
                         "[::1]",   "[]:7001", "h:123456"};
    const char *good[] = {"h:1", "127.0.0.1:65535", "[::1]:7001",
                          "db.example:7001"};
    struct cohort_client_options o;
    struct cohort_client *c = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cohort_client_options_init(&o);
        o.members = &bad[i];
        o.member_count = 1;
        if (cohort_client_open(&c, &o) != -COHORT_EINVAL)
            fail_msg("member '%s' was accepted", bad[i]);
        assert_null(c);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cohort_client_options_init(&o);
        o.members = &good[i];
        o.member_count = 1;
        if (cohort_client_open(&c, &o) != 0)
            fail_msg("member '%s' was refused", good[i]);
        cohort_client_close(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tryagain_and_unknown_retry_the_same_request),
        cmocka_unit_test(a_lost_connection_retries_the_same_request),
        cmocka_unit_test(deadline_errors_say_what_happened),
        cmocka_unit_test(writes_go_to_the_primary_info_names),
        cmocka_unit_test(session_expired_starts_a_new_client),
        cmocka_unit_test(error_replies_and_reads_are_not_retried),
        cmocka_unit_test(calls_run_from_the_callers_poll_loop),
        cmocka_unit_test(a_forwarding_member_is_asked_again_for_the_primary),
        cmocka_unit_test(local_reads_go_round_the_members),
        cmocka_unit_test(a_removed_member_is_left_for_another),
        cmocka_unit_test(a_silent_primary_is_hedged_to_another_member),
        cmocka_unit_test(a_hedge_finds_the_new_primary_a_backup_names),
        cmocka_unit_test(local_reads_after_a_write_read_your_writes),
        cmocka_unit_test(a_group_watch_delivers_each_view_once),
        cmocka_unit_test(member_addresses_are_checked_at_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
