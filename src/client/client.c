/* client — the handle of libcohort-client (options, open, close, its id)
 * and the blocking call: the non-blocking engine (engine.c) driven with
 * poll(). The public contract is include/cohort_client.h; the handle's
 * invariants are in internal.h. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client/call.h"
#include "client/internal.h"
#include "client/reply.h"
#include "client/tls.h"
#include "common/assert.h"

uint64_t client_random_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        ssize_t n = getrandom(&id, sizeof(id), 0);
        if (n != (ssize_t)sizeof(id)) {
            /* getrandom cannot fail for 8 bytes once the pool is ready;
             * a signal may interrupt it before. */
            ASSERT(n < 0 && errno == EINTR);
            id = 0;
        }
    }
    return id;
}

COHORT_API void cohort_client_options_init(struct cohort_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->deadline_ms = COHORT_CLIENT_DEADLINE_MS_DEFAULT;
    o->attempt_timeout_ms = COHORT_CLIENT_ATTEMPT_TIMEOUT_MS_DEFAULT;
    o->connect_timeout_ms = COHORT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    o->hedge_ms = COHORT_CLIENT_HEDGE_MS_DEFAULT;
    o->read_your_writes = 1;
}

static int check_options(const struct cohort_client_options *o)
{
    if (o == NULL || o->members == NULL || o->member_count == 0 ||
        o->member_count > COHORT_CLIENT_MEMBERS_MAX)
        return -COHORT_EINVAL;
    for (size_t i = 0; i < o->member_count; i++) {
        const char *m = o->members[i];
        char host[CLIENT_ADDR_MAX];
        if (m == NULL || strlen(m) >= CLIENT_ADDR_MAX ||
            !client_addr_split(m, host, sizeof(host), NULL))
            return -COHORT_EINVAL;
    }
    if (o->username != NULL && o->password == NULL)
        return -COHORT_EINVAL;
    if (o->tls_key_file != NULL && o->tls_cert_file == NULL)
        return -COHORT_EINVAL;
    return 0;
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

COHORT_API int cohort_client_open(struct cohort_client **out,
                                  const struct cohort_client_options *o)
{
    *out = NULL;
    int rc = check_options(o);
    if (rc != 0)
        return rc;
    struct cohort_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -COHORT_ENOMEM;
    for (size_t i = 0; i < o->member_count; i++)
        snprintf(c->members[i], CLIENT_ADDR_MAX, "%s", o->members[i]);
    c->member_count = (uint32_t)o->member_count;
    c->given_count = c->member_count;
    bool ok = true;
    c->username = dup_or_null(o->username, &ok);
    c->password = dup_or_null(o->password, &ok);
    c->deadline_ms =
        o->deadline_ms ? o->deadline_ms : COHORT_CLIENT_DEADLINE_MS_DEFAULT;
    c->attempt_timeout_ms = o->attempt_timeout_ms
                                ? o->attempt_timeout_ms
                                : COHORT_CLIENT_ATTEMPT_TIMEOUT_MS_DEFAULT;
    c->connect_timeout_ms = o->connect_timeout_ms
                                ? o->connect_timeout_ms
                                : COHORT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    c->hedge_ms = o->hedge_ms ? o->hedge_ms : COHORT_CLIENT_HEDGE_MS_DEFAULT;
    c->read_your_writes = o->read_your_writes != 0;
    c->client_id = client_random_id();
    c->next_request_no = 1;
    c->primary = -1;
    client_conn_init(&c->wconn);
    client_conn_init(&c->linger);
    for (uint32_t i = 0; i < COHORT_CLIENT_MEMBERS_MAX; i++)
        client_conn_init(&c->rconns[i]);
    if (!ok) {
        cohort_client_close(c);
        return -COHORT_ENOMEM;
    }
    if (o->tls) {
        c->tls_ctx = client_tls_ctx_new(o, &c->err);
        if (c->tls_ctx == NULL) {
            /* tidy: allow printing: open has no handle to hold it. */
            fprintf(stderr, "cohort_client_open: %s\n", c->err.message);
            rc = c->err.code;
            cohort_client_close(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

COHORT_API void cohort_client_close(struct cohort_client *c)
{
    if (c == NULL)
        return;
    client_conn_deinit(&c->wconn);
    client_conn_deinit(&c->linger);
    for (uint32_t i = 0; i < COHORT_CLIENT_MEMBERS_MAX; i++)
        client_conn_deinit(&c->rconns[i]);
    cohort_reply_free(c->reply);
    if (c->tls_ctx != NULL)
        client_tls_ctx_free(c->tls_ctx);
    free(c->probe_key);
    free(c->arg_bytes);
    free(c->args);
    free(c->username);
    free(c->password);
    free(c);
}

COHORT_API const char *cohort_client_error(const struct cohort_client *c)
{
    return c->err.message;
}

COHORT_API uint64_t cohort_client_id(const struct cohort_client *c)
{
    return c->client_id;
}

COHORT_API uint64_t cohort_client_next_request_no(const struct cohort_client *c)
{
    return c->next_request_no;
}

COHORT_API void cohort_client_set_deadline(struct cohort_client *c,
                                           uint32_t deadline_ms)
{
    c->deadline_ms =
        deadline_ms ? deadline_ms : COHORT_CLIENT_DEADLINE_MS_DEFAULT;
}

COHORT_API void cohort_client_set_min_revision(struct cohort_client *c,
                                               uint64_t revision)
{
    c->min_revision = revision;
}

COHORT_API uint64_t cohort_client_min_revision(const struct cohort_client *c)
{
    return c->min_revision;
}

/* ------------------------------------------------------------ blocking */

/* Wait (poll) for what the call in progress waits for: its connection,
 * and a hedged attempt's connection that may still answer. */
static void wait_for_call(struct cohort_client *c)
{
    int fd = cohort_client_fd(c);
    int wants = cohort_client_wants(c);
    struct pollfd p[2] = {{.fd = fd, .events = 0}, {.fd = -1}};
    if (wants & COHORT_CLIENT_WANT_READ)
        p[0].events |= POLLIN;
    if (wants & COHORT_CLIENT_WANT_WRITE)
        p[0].events |= POLLOUT;
    if (p[0].events == 0)
        p[0].fd = -1;
    nfds_t n = 1;
    if (c->linger.fd >= 0) {
        p[1] = (struct pollfd){.fd = c->linger.fd, .events = POLLIN};
        n = 2;
    }
    int timeout = client_timeout_ms(c, false);
    if (p[0].fd < 0 && p[1].fd < 0) {
        struct timespec ts = {.tv_sec = timeout / 1000,
                              .tv_nsec = (long)(timeout % 1000) * 1000000L};
        (void)nanosleep(&ts, NULL);
        return;
    }
    (void)poll(p, n, timeout);
}

COHORT_API int cohort_client_call(struct cohort_client *c, int flags, int argc,
                                  const char *const *argv,
                                  const size_t *argv_len,
                                  struct cohort_reply **reply)
{
    *reply = NULL;
    int rc = cohort_client_start(c, flags, argc, argv, argv_len);
    if (rc != 0)
        return rc;
    while ((rc = cohort_client_process(c, reply)) == -COHORT_EAGAIN)
        wait_for_call(c);
    return rc;
}
