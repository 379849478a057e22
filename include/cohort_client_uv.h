/* cohort_client_uv.h — drive libcohort-client calls from a libuv loop.
 *
 * Header-only, so that libcohort-client itself does not depend on libuv:
 * include it after <uv.h> in a program that links both.
 *
 *     struct cohort_client_uv u;
 *     cohort_client_uv_init(&u, loop, client);
 *     const char *argv[] = {"INCR", "visits"};
 *     cohort_client_uv_call(&u, 0, 2, argv, NULL, on_done, ctx);
 *     ...
 *     static void on_done(struct cohort_client_uv *u, int rc,
 *                         struct cohort_reply *reply, void *ctx)
 *     {   // rc and reply as cohort_client_call() gives them; reply is
 *         // the callback's to free (NULL unless rc == 0)
 *     }
 *     ...
 *     cohort_client_uv_close(&u, on_closed);   // then close the client
 *
 * One call at a time per struct (as per handle); many in one loop. Calls
 * keep every guarantee of the blocking API (exactly once, deadlines,
 * failover). The callback may start the next call on the same struct.
 *
 * How: a uv_poll_t on the handle's socket, for what cohort_client_wants()
 * asks, and a uv_timer_t for cohort_client_timeout_ms(). The library
 * closes and opens sockets as it reconnects, and libuv takes a descriptor
 * out of its epoll set when a poll on it is stopped or closed, by number:
 * done after the library closed it, that could remove a socket of another
 * handle that reused the number. So the poll is closed (synchronously
 * removing its fd) before every cohort_client_process(), while the fd is
 * still the library's, and a new one is made after it: the loop never
 * watches, nor unwatches, a descriptor the library has closed. Name
 * resolution still blocks (see cohort_client.h): give numeric member
 * addresses. */
#ifndef COHORT_CLIENT_UV_H
#define COHORT_CLIENT_UV_H

#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "cohort_client.h"

struct cohort_client_uv;

typedef void (*cohort_client_uv_cb)(struct cohort_client_uv *u, int rc,
                                    struct cohort_reply *reply, void *ctx);
typedef void (*cohort_client_uv_close_cb)(struct cohort_client_uv *u);

struct cohort_client_uv {
    uv_loop_t *loop;
    struct cohort_client *client;
    uv_poll_t *poll; /* on the client's fd while waiting; else NULL */
    uv_timer_t timer;
    cohort_client_uv_cb cb;
    void *ctx;
    bool busy;    /* a call is running */
    bool closing; /* close asked; no new call */
    int open_handles;
    cohort_client_uv_close_cb closed;
};

static void cohort_client_uv__step(struct cohort_client_uv *u);

static void cohort_client_uv__on_handle_closed(uv_handle_t *h)
{
    struct cohort_client_uv *u = (struct cohort_client_uv *)h->data;
    if (h != (uv_handle_t *)&u->timer)
        free(h);
    if (--u->open_handles == 0 && u->closing && u->closed != NULL)
        u->closed(u);
}

/* Close the poll: uv_close() takes its fd out of the loop at once (the
 * handle itself is freed later, from the loop). */
static void cohort_client_uv__drop_poll(struct cohort_client_uv *u)
{
    if (u->poll == NULL)
        return;
    uv_close((uv_handle_t *)u->poll, cohort_client_uv__on_handle_closed);
    u->poll = NULL;
}

static void cohort_client_uv__on_poll(uv_poll_t *p, int status, int events)
{
    (void)status; /* an error on the socket: process() finds it */
    (void)events;
    cohort_client_uv__step((struct cohort_client_uv *)p->data);
}

static void cohort_client_uv__on_timer(uv_timer_t *t)
{
    cohort_client_uv__step((struct cohort_client_uv *)t->data);
}

/* Wait for what the call wants next. */
static void cohort_client_uv__arm(struct cohort_client_uv *u)
{
    int fd = cohort_client_fd(u->client);
    int wants = cohort_client_wants(u->client);
    if (fd >= 0 && wants != 0) {
        u->poll = (uv_poll_t *)malloc(sizeof(*u->poll));
        if (u->poll != NULL && uv_poll_init_socket(u->loop, u->poll, fd) != 0) {
            free(u->poll);
            u->poll = NULL;
        }
        if (u->poll != NULL) {
            u->poll->data = u;
            u->open_handles++;
        }
        if (u->poll != NULL)
            uv_poll_start(
                u->poll,
                (wants & COHORT_CLIENT_WANT_READ ? UV_READABLE : 0) |
                    (wants & COHORT_CLIENT_WANT_WRITE ? UV_WRITABLE : 0),
                cohort_client_uv__on_poll);
    }
    /* Without a poll (none wanted, or no memory for one) the timer alone
     * moves the call on: at worst every 10 ms. */
    int ms = cohort_client_timeout_ms(u->client);
    if (u->poll == NULL && (ms < 0 || ms > 10))
        ms = 10;
    uv_timer_start(&u->timer, cohort_client_uv__on_timer,
                   (uint64_t)(ms < 0 ? 0 : ms), 0);
}

static void cohort_client_uv__step(struct cohort_client_uv *u)
{
    if (!u->busy)
        return;
    cohort_client_uv__drop_poll(u); /* the library may close its fd now */
    uv_timer_stop(&u->timer);
    struct cohort_reply *reply = NULL;
    int rc = cohort_client_process(u->client, &reply);
    if (rc == -COHORT_EAGAIN) {
        cohort_client_uv__arm(u);
        return;
    }
    u->busy = false;
    u->cb(u, rc, rc == 0 ? reply : NULL, u->ctx);
}

/* Bind u to loop and client (both outlive u). 0 or a libuv error. */
static inline int cohort_client_uv_init(struct cohort_client_uv *u,
                                        uv_loop_t *loop,
                                        struct cohort_client *client)
{
    *u = (struct cohort_client_uv){.loop = loop, .client = client};
    int rc = uv_timer_init(loop, &u->timer);
    if (rc != 0)
        return rc;
    u->timer.data = u;
    u->open_handles = 1;
    return 0;
}

/* Start a call (arguments as cohort_client_start(), copied); cb runs once
 * with its result, from the loop, never from inside this function.
 * -COHORT_EINVAL: bad arguments, a call already running, or closing. */
static inline int cohort_client_uv_call(struct cohort_client_uv *u, int flags,
                                        int argc, const char *const *argv,
                                        const size_t *argv_len,
                                        cohort_client_uv_cb cb, void *ctx)
{
    if (u->busy || u->closing || cb == NULL)
        return -COHORT_EINVAL;
    int rc = cohort_client_start(u->client, flags, argc, argv, argv_len);
    if (rc != 0)
        return rc;
    u->busy = true;
    u->cb = cb;
    u->ctx = ctx;
    uv_timer_start(&u->timer, cohort_client_uv__on_timer, 0, 0);
    return 0;
}

/* Close u's handles; closed (may be NULL) runs from the loop once they are
 * closed, after which u and the client may be freed. A running call is
 * abandoned: its callback never runs (a write may or may not take effect,
 * as when a process exits mid-call). */
static inline void cohort_client_uv_close(struct cohort_client_uv *u,
                                          cohort_client_uv_close_cb closed)
{
    u->closing = true;
    u->busy = false;
    u->closed = closed;
    cohort_client_uv__drop_poll(u);
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, cohort_client_uv__on_handle_closed);
}

#endif
