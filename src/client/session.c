/* client/session — a session of the group kept alive by libcohort-client
 * (the contract is "sessions" in include/cohort_client.h).
 *
 * The session owns a client handle of its own and drives one KEEPALIVE at
 * a time through the handle's non-blocking call: due every TTL/3 from the
 * start of the previous answered one, retried at once (the handle's own
 * backoff and failover apply) when a call reaches its deadline. The
 * background thread is that same loop with poll(), woken by an eventfd to
 * stop.
 *
 * Invariants: (1) state goes LIVE -> LOST once, and on_lost runs exactly
 * then; (2) calling is true exactly while a KEEPALIVE is started on the
 * handle and not yet handed back by cohort_client_process(); (3) while the
 * thread runs, only it touches the handle and the fields below `state`
 * (the other threads read state, keepalives and last_ok_at atomically). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/internal.h"

struct cohort_session {
    struct cohort_client *client;
    uint64_t id;
    uint32_t ttl_ms;
    cohort_session_lost_fn on_lost;
    void *ctx;
    _Atomic int state;
    _Atomic uint64_t keepalives;
    _Atomic uint64_t last_ok_at; /* monotonic ms */
    bool calling;
    uint64_t call_started_at;
    uint64_t due_at;
    struct cohort_err err;
    /* The thread. */
    bool threaded;
    pthread_t thread;
    int wake_fd; /* eventfd: close asks the thread to stop */
    _Atomic bool stop;
};

static int session_call(struct cohort_client *c, const char *verb,
                        const char *arg, struct cohort_reply **r)
{
    const char *argv[3] = {"COHORT.SESSION", verb, arg};
    return cohort_client_call(c, COHORT_CALL_WRITE, 3, argv, NULL, r);
}

COHORT_API int cohort_session_open(struct cohort_session **out,
                                   const struct cohort_client_options *o,
                                   uint32_t ttl_ms,
                                   cohort_session_lost_fn on_lost, void *ctx)
{
    *out = NULL;
    struct cohort_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -COHORT_ENOMEM;
    s->wake_fd = -1;
    int rc = cohort_client_open(&s->client, o);
    if (rc != 0) {
        free(s);
        return rc;
    }
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%" PRIu32, ttl_ms);
    struct cohort_reply *r = NULL;
    rc = session_call(s->client, "OPEN", ttl, &r);
    if (rc == 0 && r->type != COHORT_REPLY_INTEGER) {
        rc = -COHORT_EREPLY;
        /* tidy: allow printing: there is no session to hold the message. */
        fprintf(stderr, "cohort_session_open: COHORT.SESSION OPEN %s: %s\n",
                ttl, r->type == COHORT_REPLY_ERROR ? r->str : "a non-integer");
    } else if (rc != 0) {
        fprintf(stderr, "cohort_session_open: %s\n",
                cohort_client_error(s->client));
    }
    if (rc != 0) {
        cohort_reply_free(r);
        cohort_client_close(s->client);
        free(s);
        return rc;
    }
    s->id = (uint64_t)r->integer;
    cohort_reply_free(r);
    s->ttl_ms = ttl_ms;
    s->on_lost = on_lost;
    s->ctx = ctx;
    s->state = COHORT_SESSION_LIVE;
    uint64_t now = client_now_ms();
    s->last_ok_at = now;
    s->due_at = now + ttl_ms / 3;
    /* A KEEPALIVE that takes longer than the TTL is started again. */
    cohort_client_set_deadline(s->client, ttl_ms < 1000 ? 1000 : ttl_ms);
    *out = s;
    return 0;
}

COHORT_API uint64_t cohort_session_id(const struct cohort_session *s)
{
    return s->id;
}

COHORT_API enum cohort_session_state
cohort_session_state(const struct cohort_session *s)
{
    return (enum cohort_session_state)atomic_load(&s->state);
}

COHORT_API uint64_t cohort_session_keepalives(const struct cohort_session *s)
{
    return atomic_load(&s->keepalives);
}

COHORT_API uint64_t cohort_session_last_ok_ms(const struct cohort_session *s)
{
    uint64_t at = atomic_load(&s->last_ok_at);
    uint64_t now = client_now_ms();
    return now > at ? now - at : 0;
}

COHORT_API const char *cohort_session_error(const struct cohort_session *s)
{
    return s->err.message;
}

static bool is_no_such_session(const struct cohort_reply *r)
{
    static const char text[] = "ERR no such session";
    return r->type == COHORT_REPLY_ERROR && r->len >= sizeof(text) - 1 &&
           memcmp(r->str, text, sizeof(text) - 1) == 0;
}

/* The KEEPALIVE handed back rc and r. */
static void keepalive_done(struct cohort_session *s, int rc,
                           struct cohort_reply *r)
{
    uint64_t now = client_now_ms();
    if (rc == 0 && r->type == COHORT_REPLY_INTEGER) {
        atomic_store(&s->last_ok_at, s->call_started_at);
        atomic_fetch_add(&s->keepalives, 1);
        s->due_at = s->call_started_at + s->ttl_ms / 3;
    } else if (rc == 0 && is_no_such_session(r)) {
        err_set(&s->err, -COHORT_ENOTFOUND, "session %" PRIu64 " lost: -%s",
                s->id, r->str);
        atomic_store(&s->state, COHORT_SESSION_LOST);
        if (s->on_lost != NULL)
            s->on_lost(s, s->ctx);
    } else if (rc == 0) {
        /* Another reply (an error such as -NOPERM or -OOM): again after
         * a tenth of the TTL, not in a tight loop. */
        err_set(&s->err, -COHORT_EREPLY, "KEEPALIVE %" PRIu64 ": %s%s", s->id,
                r->type == COHORT_REPLY_ERROR ? "-" : "",
                r->type == COHORT_REPLY_ERROR ? r->str : "an odd reply");
        s->due_at = now + s->ttl_ms / 10;
    } else {
        /* No answer before the deadline: again at once (the handle backs
         * off between its attempts within a call). */
        err_set(&s->err, rc, "%s", cohort_client_error(s->client));
        s->due_at = now;
    }
    cohort_reply_free(r);
}

COHORT_API int cohort_session_process(struct cohort_session *s)
{
    for (;;) {
        if (atomic_load(&s->state) != COHORT_SESSION_LIVE)
            return -COHORT_ENOTFOUND;
        if (!s->calling) {
            uint64_t now = client_now_ms();
            if (now < s->due_at)
                return -COHORT_EAGAIN;
            char id[24];
            snprintf(id, sizeof(id), "%" PRIu64, s->id);
            const char *argv[3] = {"COHORT.SESSION", "KEEPALIVE", id};
            if (cohort_client_start(s->client, COHORT_CALL_WRITE, 3, argv,
                                    NULL) != 0)
                return -COHORT_EINVAL; /* cannot happen: one call */
            s->calling = true;
            s->call_started_at = now;
        }
        struct cohort_reply *r = NULL;
        int rc = cohort_client_process(s->client, &r);
        if (rc == -COHORT_EAGAIN)
            return -COHORT_EAGAIN;
        s->calling = false;
        keepalive_done(s, rc, r);
    }
}

COHORT_API int cohort_session_fd(const struct cohort_session *s)
{
    return s->calling ? cohort_client_fd(s->client) : -1;
}

COHORT_API int cohort_session_wants(const struct cohort_session *s)
{
    return s->calling ? cohort_client_wants(s->client) : 0;
}

COHORT_API int cohort_session_timeout_ms(const struct cohort_session *s)
{
    if (atomic_load(&s->state) != COHORT_SESSION_LIVE)
        return 60000;
    if (s->calling)
        return cohort_client_timeout_ms(s->client);
    uint64_t now = client_now_ms();
    if (s->due_at <= now)
        return 0;
    return s->due_at - now > 60000 ? 60000 : (int)(s->due_at - now);
}

/* ------------------------------------------------------------ thread */

static void *keeper_main(void *arg)
{
    struct cohort_session *s = arg;
    while (!atomic_load(&s->stop)) {
        if (cohort_session_process(s) != -COHORT_EAGAIN)
            break;
        struct pollfd p[2] = {{.fd = s->wake_fd, .events = POLLIN},
                              {.fd = cohort_session_fd(s), .events = 0}};
        int w = cohort_session_wants(s);
        if (w & COHORT_CLIENT_WANT_READ)
            p[1].events |= POLLIN;
        if (w & COHORT_CLIENT_WANT_WRITE)
            p[1].events |= POLLOUT;
        if (p[1].events == 0)
            p[1].fd = -1;
        (void)poll(p, 2, cohort_session_timeout_ms(s));
    }
    return NULL;
}

COHORT_API int cohort_session_start_thread(struct cohort_session *s)
{
    if (s->threaded || atomic_load(&s->state) != COHORT_SESSION_LIVE)
        return err_set(&s->err, -COHORT_EINVAL,
                       "the session's thread runs already, or it is lost");
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0)
        return err_sys(&s->err, errno, "eventfd for the keepalive thread");
    int rc = pthread_create(&s->thread, NULL, keeper_main, s);
    if (rc != 0) {
        close(s->wake_fd);
        s->wake_fd = -1;
        return err_sys(&s->err, rc, "pthread_create for the keepalive thread");
    }
    s->threaded = true;
    return 0;
}

/* Abandon a KEEPALIVE in progress so that CLOSE can use the handle. */
static void finish_keepalive(struct cohort_session *s)
{
    if (!s->calling)
        return;
    client_call_abort(s->client);
    s->calling = false;
}

COHORT_API int cohort_session_close(struct cohort_session *s)
{
    if (s == NULL)
        return 0;
    if (s->threaded) {
        atomic_store(&s->stop, true);
        uint64_t one = 1;
        (void)!write(s->wake_fd, &one, sizeof(one));
        pthread_join(s->thread, NULL);
        close(s->wake_fd);
    }
    int rc = 0;
    if (atomic_load(&s->state) == COHORT_SESSION_LIVE) {
        finish_keepalive(s);
        char id[24];
        snprintf(id, sizeof(id), "%" PRIu64, s->id);
        struct cohort_reply *r = NULL;
        rc = session_call(s->client, "CLOSE", id, &r);
        cohort_reply_free(r);
    }
    cohort_client_close(s->client);
    free(s);
    return rc;
}
