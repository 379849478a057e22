/* bench/internal — the engine's state, shared by engine.c (the clock, the
 * phases, the workload, the failover kill and the report) and conn.c (one
 * connection: its socket, its ring of request slots, writes and replies).
 * Nothing outside src/bench includes this file.
 *
 * A connection's slots form a ring of `depth` entries (its share of the
 * concurrency). Unanswered requests are [head, head + count); the first
 * `written` of them are on the wire, and `partial` bytes of the next one.
 * Replies arrive in order, so a reply always answers slots[head], and a
 * slot is reused only after it is both written and answered. */
#ifndef COHORT_BENCH_INTERNAL_H
#define COHORT_BENCH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/bench.h"
#include "bench/request.h"

enum conn_state {
    CONN_IDLE = 0,       /* closed; connects again at since_ns */
    CONN_CONNECTING = 1, /* connect() in progress since since_ns */
    CONN_OPEN = 2,       /* sending requests */
    CONN_DRAINING = 3,   /* a member said "retry": no new requests; closes
                            and moves to the next member when count is 0 */
};

struct slot {
    uint64_t start_ns;
    enum bench_op op;
    uint32_t header_size;
    char header[BENCH_HEADER_MAX];
};

struct engine;

struct conn {
    struct engine *engine;
    int fd; /* -1 when IDLE */
    uint32_t index;
    uint32_t member; /* index into config->members */
    enum conn_state state;
    bool epollout; /* EPOLLOUT is registered: a write is pending */
    uint64_t since_ns;
    uint32_t backoff_ms;
    struct slot *slots; /* owned, depth entries */
    uint32_t depth;
    uint32_t head;
    uint32_t count;
    uint32_t written;
    size_t partial;
    char *rbuf; /* owned; grows to fit the largest reply, never shrinks */
    size_t rsize;
    size_t rcap;
    size_t rwant; /* do not parse again before rsize reaches this */
};

enum phase {
    PHASE_CONNECT = 0, /* connections opening; nothing sent yet */
    PHASE_WARMUP = 1,
    PHASE_MEASURE = 2,
    PHASE_DONE = 3,
};

struct engine {
    const struct bench_config *c;
    struct bench_result *result;
    struct cohort_err *err;
    bool fatal; /* err is set; stop */
    int epfd;
    struct conn *conns; /* owned, c->connections entries */
    uint32_t conn_count;
    uint32_t open_count;
    char *value; /* owned, c->value_size bytes sent by every SET */
    uint64_t prng;
    enum phase phase;
    uint64_t now_ns;
    uint64_t run_start_ns;   /* bench_run() began */
    uint64_t phase_start_ns; /* the current phase began */
    uint64_t in_flight;      /* requests (not setup commands) unanswered */
    uint64_t preload_next;   /* PRELOAD: next key to write */
    uint64_t acked_total;    /* every phase, for progress */
    uint64_t errors_total;
    /* Failover. */
    uint64_t kill_ns;      /* 0 until the kill command ran */
    uint64_t kill_done_ns; /* 0 until it exited */
    uint64_t first_ack_ns;
    pid_t child;
    /* Progress and messages. */
    uint64_t progress_last_ns;
    uint64_t progress_next_ns;
    uint64_t progress_acked;
    uint32_t notes_left;
    bool error_reply_seen;
};

/* engine.c, for conn.c. */
/* Pick the next request to send, or return false when none is due now
 * (connecting, done, or the op bound is covered by requests in flight). */
bool engine_next_op(struct engine *e, enum bench_op *op, uint64_t *key);
/* A reply to a request (not a setup command) arrived. */
void engine_on_reply(struct engine *e, const struct slot *slot,
                     enum bench_reply kind, const struct resp_node *reply);
/* count requests failed (unanswered on a broken connection, or a failed
 * connect). */
void engine_count_errors(struct engine *e, uint64_t count);
/* A setup command was refused: stop the run with this message. */
void engine_fatal(struct engine *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A line on stderr about a connection, until the budget is spent. */
void engine_note(struct engine *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t engine_clock_ns(void);

/* conn.c, for engine.c. */
int conn_init(struct conn *conn, struct engine *e, uint32_t index,
              uint32_t depth, uint32_t member);
void conn_deinit(struct conn *conn);
/* Start a non-blocking connect to the connection's member. */
void conn_connect(struct conn *conn);
/* Handle epoll events for the connection. */
void conn_on_events(struct conn *conn, uint32_t events);
/* Send new requests until the ring is full or the engine has none. */
void conn_fill(struct conn *conn);
/* Reconnect when the backoff is over; fail a connect or a request that
 * took longer than the timeout. */
void conn_tick(struct conn *conn);

#endif
