/* sim/workload — simulated clients with retries and a recorded history. See
 * workload.h. */
#include "sim/workload.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"

/* Back-off after an answer that says "certainly not proposed, try later". */
#define BACKOFF_MIN_MS 5
#define BACKOFF_MAX_MS 40
/* A small value range so CAS sometimes matches and keys collide. */
#define VALUE_MAX 9

static uint64_t session_id(uint32_t client, uint32_t session)
{
    return ((uint64_t)session << 16) | (client + 1u);
}

void workload_init(struct workload *w, struct prng *prng,
                   const struct workload_config *config, uint64_t now)
{
    ASSERT(config->client_count >= 1);
    ASSERT(config->client_count <= SIM_CLIENTS_MAX);
    ASSERT(config->key_count >= 1);
    ASSERT(config->key_count <= KVSM_KEYS);
    ASSERT(config->replica_count >= 1);
    memset(w, 0, sizeof(*w));
    w->prng = prng;
    w->config = *config;
    for (uint32_t i = 0; i < config->client_count; i++) {
        struct sim_client *c = &w->clients[i];
        c->sessions = 1;
        c->client_id = session_id(i, c->sessions);
        c->target = (uint32_t)prng_below(prng, config->replica_count);
        c->timer_at = now + prng_range(prng, 0, config->think_max_ms);
    }
}

void workload_deinit(struct workload *w)
{
    free(w->history);
    memset(w, 0, sizeof(*w));
}

static bool client_wants_timer(const struct workload *w,
                               const struct sim_client *c)
{
    if (c->busy)
        return true;
    return !w->stop_issuing && w->stats.issued < w->config.ops_total;
}

bool workload_next_at(const struct workload *w, uint64_t *at)
{
    bool any = false;
    for (uint32_t i = 0; i < w->config.client_count; i++) {
        const struct sim_client *c = &w->clients[i];
        if (!client_wants_timer(w, c))
            continue;
        if (!any || c->timer_at < *at)
            *at = c->timer_at;
        any = true;
    }
    return any;
}

/* SET PX (a TTL of 1..300 ms, so that keys expire within a run), GET of a
 * volatile key, PUBLISH, or a pair transaction; half the SETs as
 * transactions. */
static struct kvsm_cmd volatile_cmd(struct workload *w)
{
    struct kvsm_cmd cmd = {0};
    uint64_t roll = prng_below(w->prng, 100);
    cmd.key = (uint8_t)(KVSM_KEYS + prng_below(w->prng, KVSM_VOLATILE_KEYS));
    cmd.arg = (int64_t)prng_range(w->prng, 0, VALUE_MAX);
    if (roll < 40) {
        cmd.kind = KVSM_SETPX;
        cmd.arg2 = (int64_t)prng_range(w->prng, 1, 300);
        cmd.form = prng_below(w->prng, 2) ? KVSM_FORM_TXN : KVSM_FORM_PLAIN;
    } else if (roll < 65) {
        cmd.kind = KVSM_GETV;
    } else if (roll < 80) {
        cmd.kind = KVSM_PUBLISH;
        cmd.key = (uint8_t)prng_below(w->prng, KVSM_CHANNELS);
    } else {
        cmd.kind = roll < 90 ? KVSM_PAIRSET : KVSM_PAIRGET;
        cmd.key = 0;
    }
    return cmd;
}

/* A coordination op for client c (sessions, ephemeral keys, locks, fenced
 * writes): OPEN while it has no session, else a lock op on one of
 * KVSM_LOCKS locks or an ephemeral key of its session. */
static struct kvsm_cmd coord_cmd(struct workload *w, struct sim_client *c)
{
    struct kvsm_cmd cmd = {0};
    if (c->session == 0) {
        cmd.kind = KVSM_SOPEN;
        cmd.arg2 = (int64_t)prng_range(w->prng, 800, 2000);
        return cmd;
    }
    cmd.key = (uint8_t)prng_below(w->prng, KVSM_LOCKS);
    cmd.arg = (int64_t)c->session;
    uint64_t roll = prng_below(w->prng, 100);
    if (roll < 40) {
        cmd.kind = KVSM_LOCK;
        cmd.arg2 = (int64_t)prng_below(w->prng, 2); /* WAIT */
    } else if (roll < 55) {
        cmd.kind = KVSM_UNLOCK;
    } else if (roll < 70) {
        cmd.kind = KVSM_SSET;
        cmd.arg2 = (int64_t)prng_range(w->prng, 0, VALUE_MAX);
    } else if (roll < 90) {
        /* With the token it holds, or a stale or unknown one. */
        cmd.kind = KVSM_FENCE;
        cmd.arg = c->tokens[cmd.key] && prng_below(w->prng, 4)
                      ? c->tokens[cmd.key]
                      : (int64_t)prng_range(w->prng, 1, w->stats.issued + 1);
        cmd.arg2 = (int64_t)prng_range(w->prng, 0, VALUE_MAX);
    } else {
        cmd.kind = roll < 95 ? KVSM_SKEEP : KVSM_SCLOSE;
        cmd.key = 0;
    }
    return cmd;
}

static struct kvsm_cmd random_cmd(struct workload *w)
{
    if (w->config.flush_pct && prng_below(w->prng, 100) < w->config.flush_pct)
        return (struct kvsm_cmd){.kind = KVSM_FLUSH};
    if (w->config.volatile_pct &&
        prng_below(w->prng, 100) < w->config.volatile_pct)
        return volatile_cmd(w);
    struct kvsm_cmd cmd = {0};
    cmd.key = (uint8_t)prng_below(w->prng, w->config.key_count);
    uint64_t roll = prng_below(w->prng, 100);
    if (roll < 30) {
        cmd.kind = KVSM_GET;
    } else if (roll < 50) {
        cmd.kind = KVSM_SET;
        cmd.arg = (int64_t)prng_range(w->prng, 0, VALUE_MAX);
    } else if (roll < 75) {
        cmd.kind = KVSM_INCR;
        cmd.arg = (int64_t)prng_range(w->prng, 0, 4) - 1;
    } else if (roll < 90) {
        cmd.kind = KVSM_CAS;
        cmd.arg = (int64_t)prng_range(w->prng, 0, VALUE_MAX);
        cmd.arg2 = (int64_t)prng_range(w->prng, 0, VALUE_MAX);
    } else {
        cmd.kind = KVSM_DEL;
    }
    /* Half the writes as transactions (kvsm.h), chosen from what was drawn
     * so that a seed draws the same numbers as before the store's forms. */
    cmd.form = ((uint64_t)cmd.key ^ (uint64_t)cmd.arg) & 1 ? KVSM_FORM_TXN
                                                           : KVSM_FORM_PLAIN;
    return cmd;
}

/* The client's next op: a KEEPALIVE once a third of its session's TTL
 * passed since the last, else a drawn one. */
static struct kvsm_cmd next_cmd(struct workload *w, struct sim_client *c,
                                uint64_t now)
{
    struct kvsm_cmd cmd = {0};
    if (w->config.coord_pct && c->session &&
        now - c->renew_at >= c->session_ttl / 3) {
        cmd.kind = KVSM_SKEEP;
        cmd.arg = (int64_t)c->session;
    } else if (w->config.coord_pct &&
               prng_below(w->prng, 100) < w->config.coord_pct) {
        cmd = coord_cmd(w, c);
    } else {
        return random_cmd(w);
    }
    if (cmd.kind == KVSM_SKEEP || cmd.kind == KVSM_SOPEN)
        c->renew_at = now;
    return cmd;
}

static struct sim_history_op *history_push(struct workload *w)
{
    bool grown = grow_array_u64((void **)&w->history, &w->history_capacity,
                                w->history_count + 1, sizeof(*w->history), 256);
    ASSERT(grown);
    struct sim_history_op *op = &w->history[w->history_count++];
    memset(op, 0, sizeof(*op));
    return op;
}

static void fill_send(struct workload *w, uint32_t index, uint64_t now,
                      struct workload_send *out)
{
    struct sim_client *c = &w->clients[index];
    struct sim_history_op *op = &w->history[c->history];
    out->client = index;
    out->replica = c->target;
    out->client_id = c->client_id;
    out->request_no = c->request_no;
    out->read = op->read;
    kvsm_cmd_encode(&op->cmd, out->body);
    op->sends++;
    c->deadline_at = now + w->config.timeout_ms;
    c->timer_at = c->deadline_at;
    w->stats.sends++;
}

static void issue(struct workload *w, uint32_t index, uint64_t now,
                  struct workload_send *out)
{
    struct sim_client *c = &w->clients[index];
    ASSERT(!c->busy);
    struct sim_history_op *op = history_push(w);
    op->cmd = next_cmd(w, c, now);
    /* Only drawn when enabled, so that with read_pct 0 a seed issues the
     * same ops as before read index existed. */
    op->read = op->cmd.kind == KVSM_GET && w->config.read_pct &&
               prng_below(w->prng, 100) < w->config.read_pct;
    /* Half the reads go to any replica, as from a client that spreads its
     * reads: they reach stale primaries, which must not answer them. */
    if (op->read && prng_chance(w->prng, 500000))
        c->target = (uint32_t)prng_below(w->prng, w->config.replica_count);
    op->client_id = c->client_id;
    op->request_no = ++c->request_no;
    op->invoke_ms = now;
    c->history = w->history_count - 1;
    c->busy = true;
    w->stats.issued++;
    fill_send(w, index, now, out);
}

static void finish(struct workload *w, struct sim_client *c, uint64_t now)
{
    c->busy = false;
    c->timer_at = now + prng_range(w->prng, 0, w->config.think_max_ms);
}

static void give_up(struct workload *w, struct sim_client *c, uint64_t now)
{
    struct sim_history_op *op = &w->history[c->history];
    op->unknown = true;
    w->stats.unknown++;
    finish(w, c, now);
}

static uint32_t other_replica(struct workload *w, uint32_t not )
{
    uint32_t n = w->config.replica_count;
    if (n == 1)
        return 0;
    return (not +1 + (uint32_t)prng_below(w->prng, n - 1)) % n;
}

bool workload_fire(struct workload *w, uint64_t now, struct workload_send *out)
{
    for (uint32_t i = 0; i < w->config.client_count; i++) {
        struct sim_client *c = &w->clients[i];
        if (!client_wants_timer(w, c) || c->timer_at > now)
            continue;
        if (!c->busy) {
            issue(w, i, now, out);
            return true;
        }
        const struct sim_history_op *op = &w->history[c->history];
        if (now >= c->deadline_at) {
            /* Timed out: maybe give up, else resend elsewhere. */
            if (!w->no_give_up && w->config.give_up_ms &&
                now - op->invoke_ms >= w->config.give_up_ms &&
                prng_chance(w->prng, w->config.give_up_ppm)) {
                give_up(w, c, now);
                return false;
            }
            w->stats.retries++;
            c->target = other_replica(w, c->target);
        }
        fill_send(w, i, now, out);
        return true;
    }
    return false;
}

static void forget_session(struct sim_client *c)
{
    c->session = 0;
    memset(c->tokens, 0, sizeof(c->tokens));
}

/* What a coordination reply tells the client about its session and locks. */
static void coord_learn(struct workload *w, struct sim_client *c,
                        const struct sim_history_op *h)
{
    const struct kvsm_cmd *cmd = &h->cmd;
    bool mine = cmd->kind == KVSM_SOPEN || (uint64_t)cmd->arg == c->session;
    switch (cmd->kind) {
    case KVSM_SOPEN:
        if (h->reply.result) {
            forget_session(c);
            c->session = (uint64_t)h->reply.value;
            c->session_ttl = (uint64_t)cmd->arg2;
            c->renewed_at = h->response_ms;
        }
        return;
    case KVSM_SKEEP:
        if (mine && h->reply.result)
            c->renewed_at = h->response_ms;
        if (mine && !h->reply.result) {
            if (h->invoke_ms - c->renewed_at <= c->session_ttl / 2)
                w->stats.lost_kept_alive++;
            forget_session(c); /* gone: expired or closed */
        }
        return;
    case KVSM_SCLOSE:
        if (mine)
            forget_session(c);
        return;
    case KVSM_LOCK:
        if (mine && h->reply.result) {
            c->tokens[cmd->key] = h->reply.value;
            w->stats.grants++;
        }
        return;
    case KVSM_UNLOCK:
        if (mine)
            c->tokens[cmd->key] = 0;
        return;
    case KVSM_FENCE:
        if (h->reply.result)
            w->stats.fenced++;
        else if (cmd->arg == c->tokens[cmd->key])
            c->tokens[cmd->key] = 0; /* no longer current */
        return;
    default:
        return;
    }
}

static void on_ok(struct workload *w, struct sim_client *c, uint64_t now,
                  uint64_t op, const uint8_t *data, size_t size)
{
    struct sim_history_op *h = &w->history[c->history];
    struct kvsm_reply reply;
    bool valid = kvsm_reply_decode(&h->cmd, h->read, data, size, &reply);
    ASSERT(valid); /* sim/check.c compares every reply with the model */
    h->done = true;
    h->reply = reply;
    h->op = op;
    h->response_ms = now;
    w->stats.ok++;
    if (kvsm_kind_coord(h->cmd.kind))
        coord_learn(w, c, h);
    finish(w, c, now);
}

void workload_on_reply(struct workload *w, uint64_t now, uint32_t client,
                       uint64_t client_id, uint64_t request_no,
                       enum reply_status status, uint32_t primary_hint,
                       uint64_t op, const uint8_t *data, size_t size)
{
    ASSERT(client < w->config.client_count);
    struct sim_client *c = &w->clients[client];
    if (!c->busy || client_id != c->client_id || request_no != c->request_no)
        return; /* an answer to an earlier send; already settled */
    switch (status) {
    case REPLY_OK:
        on_ok(w, c, now, op, data, size);
        return;
    case REPLY_NOT_PRIMARY:
        w->stats.redirects++;
        c->target = primary_hint < w->config.replica_count
                        ? primary_hint
                        : other_replica(w, c->target);
        c->timer_at = now + 1;
        return;
    case REPLY_EXPIRED:
        /* The session is gone; a copy may have been applied before. */
        w->stats.expired++;
        give_up(w, c, now);
        c->sessions++;
        c->client_id = session_id(client, c->sessions);
        c->request_no = 0;
        return;
    case REPLY_TOO_BIG:
    case REPLY_APPLIED_REPLY_LOST:
    case REPLY_STALE:
    case REPLY_OVER_LIMIT:
        /* Certainly not applied, or applied with its reply lost (or, for
         * STALE, applied earlier under a number the client has since
         * passed): either way "unknown" admits it. The workload never
         * sends an old number nor sets over_limit; listed for
         * completeness. */
        give_up(w, c, now);
        return;
    case REPLY_VIEW_CHANGE:
    case REPLY_RECOVERING:
    case REPLY_BUSY:
    default:
        w->stats.backoffs++;
        if (status != REPLY_BUSY)
            c->target = other_replica(w, c->target);
        c->timer_at = now + prng_range(w->prng, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        if (c->timer_at > c->deadline_at)
            c->deadline_at = c->timer_at;
        return;
    }
}

uint64_t workload_outstanding(const struct workload *w)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < w->config.client_count; i++)
        n += w->clients[i].busy;
    return n;
}

bool workload_done(const struct workload *w)
{
    if (workload_outstanding(w) > 0)
        return false;
    return w->stop_issuing || w->stats.issued >= w->config.ops_total;
}

static enum lin_kind lin_kind_of(uint8_t kind)
{
    switch (kind) {
    case KVSM_GET:
        return LIN_GET;
    case KVSM_SET:
        return LIN_SET;
    case KVSM_CAS:
        return LIN_CAS;
    case KVSM_INCR:
        return LIN_INCR;
    case KVSM_FLUSH:
        return LIN_CLEAR;
    default:
        return LIN_DEL;
    }
}

/* One checked op's lin_op: a client's op, or a FLUSHALL's share of key. */
static void lin_op_of(const struct sim_history_op *h, uint64_t i, uint8_t key,
                      struct lin_op *o)
{
    memset(o, 0, sizeof(*o));
    o->key = key;
    o->kind = lin_kind_of(h->cmd.kind);
    o->arg1 = h->cmd.arg;
    o->arg2 = h->cmd.arg2;
    o->invoke = h->invoke_ms;
    o->id = i;
    /* A failed INCR (overflow) changed nothing: "unknown" admits it. */
    o->unknown = !h->done || (h->cmd.kind == KVSM_INCR && h->reply.result != 1);
    if (o->unknown)
        return;
    o->response = h->response_ms;
    o->result_absent = h->cmd.kind == KVSM_GET && h->reply.result == 0;
    o->result = h->reply.value;
    if (h->cmd.kind == KVSM_CAS || h->cmd.kind == KVSM_DEL)
        o->result = h->reply.result;
}

void workload_lin_ops(const struct workload *w, struct lin_op **ops,
                      size_t *count)
{
    uint64_t flushes = 0;
    for (uint64_t i = 0; i < w->history_count; i++)
        flushes += w->history[i].cmd.kind == KVSM_FLUSH;
    uint64_t room = w->history_count + flushes * w->config.key_count + 1;
    struct lin_op *out = malloc(room * sizeof(*out));
    ASSERT(out != NULL);
    size_t n = 0;
    for (uint64_t i = 0; i < w->history_count; i++) {
        const struct sim_history_op *h = &w->history[i];
        if (h->cmd.kind == KVSM_FLUSH) {
            for (uint32_t key = 0; key < w->config.key_count; key++)
                lin_op_of(h, i, (uint8_t)key, &out[n++]);
        } else if (!kvsm_kind_volatile(h->cmd.kind)) {
            lin_op_of(h, i, h->cmd.key, &out[n++]);
        } /* else judged by the reference model (kvsm.h) */
    }
    *ops = out;
    *count = n;
}
