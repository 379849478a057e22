/* sim/workload — the simulated clients and the history they record.
 *
 * Each client has a client id (a session) and numbers its requests 1, 2, 3...
 * It has at most one request outstanding: it sends it to one replica, follows
 * primary_hint on REPLY_NOT_PRIMARY, backs off on "certainly not proposed"
 * answers (view change, recovering, busy), and on a timeout sends THE SAME
 * request_no again, to another replica, so the client table can answer a
 * retry of an op that was already applied. While faults are active a client
 * may give up on a request after give_up_ms: the op's outcome is then unknown
 * and the client moves on with the next request_no. REPLY_EXPIRED (the group
 * forgot the session) also leaves the outcome unknown; the client starts a
 * new session.
 *
 * A GET may be a read by read index (config.read_pct of them): it is sent
 * as SIM_MSG_READ, answered from the primary's state machine without a log
 * op, and retried like any request.
 *
 * The history holds one record per logical op (however many times it was
 * sent), with the virtual time of the first send and of the reply, for the
 * linearizability checker (sim/linearize.h).
 *
 * Deterministic: every choice comes from the borrowed prng, clients are
 * served in index order when their timers are equal.
 */
#ifndef COHORT_SIM_WORKLOAD_H
#define COHORT_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/prng.h"
#include "core/replica.h"
#include "sim/kvsm.h"
#include "sim/linearize.h"
#include "sim/net.h"

struct workload_config {
    uint32_t client_count; /* <= SIM_CLIENTS_MAX */
    uint32_t replica_count;
    uint64_t ops_total;  /* logical ops to issue, over all clients */
    uint32_t key_count;  /* <= KVSM_KEYS */
    uint32_t timeout_ms; /* resend after this long without an answer */
    uint32_t think_max_ms;
    uint32_t give_up_ms;  /* 0: never give up */
    uint32_t give_up_ppm; /* chance to give up at each timeout past it */
    uint32_t read_pct;    /* GETs served by read index (EV_READ), percent */
    /* Percent of ops of the volatile kinds (kvsm.h: SET PX, GET of a
     * volatile key, PUBLISH). 0 draws nothing for them, so a seed issues
     * the ops it issued before they existed. */
    uint32_t volatile_pct;
    /* Percent of ops of the coordination kinds (kvsm.h: sessions, locks,
     * fenced writes; sim/coord.h). 0 draws nothing for them. With it,
     * each client also holds a session and sends KEEPALIVE every third of
     * its TTL (before any other op once due). */
    uint32_t coord_pct;
    /* Percent of ops that are FLUSHALL (kvsm.h KVSM_FLUSH). 0 draws
     * nothing for them. Not with coord_pct: a flush deletes the keys the
     * coordination checker (sim/coord.h) follows. */
    uint32_t flush_pct;
};

struct sim_history_op {
    uint64_t client_id;
    uint64_t request_no;
    struct kvsm_cmd cmd;
    bool read; /* a GET by read index, not through the log */
    uint64_t invoke_ms;
    uint64_t response_ms;
    bool done;    /* a REPLY_OK arrived */
    bool unknown; /* given up or expired: may or may not have happened */
    struct kvsm_reply reply;
    uint64_t op; /* the log op that applied it (REPLY_OK) */
    uint32_t sends;
};

struct sim_client {
    uint64_t client_id;
    uint64_t request_no;
    bool busy;
    uint32_t target;
    uint64_t timer_at;    /* busy: resend or timeout; idle: next op */
    uint64_t deadline_at; /* busy: resend after this without an answer */
    uint64_t history;
    uint32_t sessions;
    /* Coordination (coord_pct): the store session this client keeps alive
     * (0: none known), its TTL, when its last OPEN or KEEPALIVE was sent,
     * and the fencing token it believes it holds per lock (0: none). */
    uint64_t session;
    uint64_t session_ttl;
    uint64_t renew_at;
    uint64_t renewed_at; /* when the last OPEN or KEEPALIVE was answered */
    int64_t tokens[KVSM_LOCKS];
};

/* A request for the cluster to send from client `client` to replica. */
struct workload_send {
    uint32_t client;
    uint32_t replica;
    uint64_t client_id;
    uint64_t request_no;
    bool read; /* SIM_MSG_READ rather than SIM_MSG_REQUEST */
    uint8_t body[KVSM_BODY_SIZE];
};

struct workload_stats {
    uint64_t issued;
    uint64_t ok;
    uint64_t unknown;
    uint64_t sends;
    uint64_t retries; /* timeouts that resent */
    uint64_t redirects;
    uint64_t backoffs;
    uint64_t expired;
    uint64_t grants; /* LOCK replies that granted a token */
    uint64_t fenced; /* FENCE writes accepted */
    /* KEEPALIVEs sent within half a TTL of the last answered renewal that
     * found the session gone: the group took a TTL to commit one. */
    uint64_t lost_kept_alive;
};

struct workload {
    struct prng *prng; /* borrowed */
    struct workload_config config;
    struct sim_client clients[SIM_CLIENTS_MAX];
    struct sim_history_op *history;
    uint64_t history_count;
    uint64_t history_capacity;
    bool stop_issuing; /* no new ops (the end of a run) */
    bool no_give_up;   /* faults healed: every op must complete */
    struct workload_stats stats;
};

void workload_init(struct workload *w, struct prng *prng,
                   const struct workload_config *config, uint64_t now);
void workload_deinit(struct workload *w);

/* When a client next needs attention; false if none ever will. */
bool workload_next_at(const struct workload *w, uint64_t *at);
/* Serve the first client whose timer is due at now: issue a new op, resend,
 * or give up. Returns true and fills out if a request is to be sent. */
bool workload_fire(struct workload *w, uint64_t now, struct workload_send *out);
/* A reply reached client `client`. data is the state machine's reply for
 * REPLY_OK. */
void workload_on_reply(struct workload *w, uint64_t now, uint32_t client,
                       uint64_t client_id, uint64_t request_no,
                       enum reply_status status, uint32_t primary_hint,
                       uint64_t op, const uint8_t *data, size_t size);

/* Ops issued and not yet answered or given up. */
uint64_t workload_outstanding(const struct workload *w);
/* Every op issued and answered or given up, and no more to issue. */
bool workload_done(const struct workload *w);

/* The history as lin_ops (caller frees *ops). */
void workload_lin_ops(const struct workload *w, struct lin_op **ops,
                      size_t *count);

#endif
