/* lock_wait — blocking lock waits: COHORT.LOCK name session WAIT ms.
 *
 * The LOCK op answers at once, as every write does: the token if the lock
 * was granted, nil if the session was queued. With WAIT ms, the member the
 * client is connected to holds a nil answer (the slot stays in the
 * connection's FIFO, so later replies wait behind it, as behind Redis's
 * BLPOP) and answers it later, from its own applied state:
 *
 *   - `:token` once the session is first in the lock's queue (granted by
 *     the holder's UNLOCK, or the op that ended the holder's session);
 *   - nil once the session is no longer queued (it unlocked from another
 *     connection, or it ended), or when ms pass, or when the client closes
 *     its connection (it stays queued: ask again, or UNLOCK to leave the
 *     queue).
 *
 * The state must include the LOCK op itself before it is judged: on a
 * member that lags (a backup relays the primary's answer before applying
 * the op), a session that held the lock earlier would still look like the
 * holder, with its old token. So a held slot is judged only once this
 * member's client table shows the slot's request applied
 * (node_client_applied(); every replica applies in log order). After that,
 * the session first in the queue means a grant after the LOCK op (at the
 * op it was queued, so not first), and the token is the current one.
 *
 * A forwarded LOCK (a link from a backup, COHORT.NOFORWARD) is answered at
 * once by the primary: the backup that holds the client does the waiting,
 * and a link's FIFO never blocks. A retry of the same COHORT.REQ on
 * another member gets the kept nil answer and waits there.
 *
 * Checked when the applied op moved (the prepare handle, before the
 * flush) and at the earliest deadline (a timer). At most LOCK_WAITS_MAX
 * are held per member; beyond it a WAIT answers nil at once.
 *
 * Invariants: a slot is in lock_wait.slots iff slot->lock_parked; a held
 * slot is in its connection's FIFO, not READY, and not in the node or on
 * a link.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"
#include "kv/kv.h"
#include "kv/lock.h"
#include "server/internal.h"

static bool is_nil(const void *reply, size_t size)
{
    return size == 5 && memcmp(reply, "$-1\r\n", 5) == 0;
}

static void arm_timer(struct server *s);

bool lock_wait_park(struct conn *c, struct slot *slot, const void *reply,
                    size_t size)
{
    struct server_lock_wait *lw = &c->server->lock_wait;
    if (slot->lock_wait_ms == 0 || c->no_forward || !is_nil(reply, size) ||
        lw->count >= LOCK_WAITS_MAX)
        return false;
    if (!grow_array_u32((void **)&lw->slots, &lw->capacity,
                        (size_t)lw->count + 1, sizeof(*lw->slots), 8))
        return false;
    slot->lock_parked = true;
    c->lock_parked++;
    slot->lock_deadline_ms = server_now_ms(c->server) + slot->lock_wait_ms;
    lw->slots[lw->count++] = slot;
    lw->checked_op = 0; /* check it at the next turn */
    arm_timer(c->server);
    /* The connection may have stopped reading while this write ran (the
     * session's gate holds its request 1, see cmd_store.c) and nothing
     * else would look at it again before the answer: look now, so that it
     * reads on and sees the client close (answered nil, as promised above)
     * instead of holding the wait until its deadline. */
    server_mark_resume(c->server, c);
    return true;
}

static void unlist(struct server_lock_wait *lw, uint32_t i)
{
    ASSERT(i < lw->count);
    lw->slots[i]->lock_parked = false;
    ASSERT(lw->slots[i]->conn->lock_parked > 0);
    lw->slots[i]->conn->lock_parked--;
    lw->slots[i] = lw->slots[--lw->count];
}

void lock_wait_forget(struct server *s, struct slot *slot)
{
    struct server_lock_wait *lw = &s->lock_wait;
    for (uint32_t i = 0; i < lw->count; i++) {
        if (lw->slots[i] == slot) {
            unlist(lw, i);
            return;
        }
    }
    UNREACHABLE();
}

enum verdict {
    WAITING, /* not applied here yet, or still queued */
    GRANTED, /* *token */
    LEFT,    /* no longer in the queue */
};

/* Where the held LOCK of slot stands in this member's applied state. */
static enum verdict judge(struct server *s, struct slot *slot, uint64_t *token)
{
    if (node_client_applied(s->node, slot->client_id) < slot->request_no)
        return WAITING;
    uint32_t argc = store_parse_kept(s, slot);
    int64_t session;
    if (argc < 3 ||
        !resp_parse_i64(s->argv2[2].ptr, s->argv2[2].size, &session))
        return LEFT; /* cannot happen: the op parsed the same bytes */
    int64_t at =
        kv_lock_position(&s->kv->sessions, (const uint8_t *)s->argv2[1].ptr,
                         s->argv2[1].size, (uint64_t)session, token);
    return at == 0 ? GRANTED : at > 0 ? WAITING : LEFT;
}

/* Answer held slot i (unlisting it) with the token, or nil if 0. */
static void answer(struct server *s, uint32_t i, uint64_t token)
{
    struct slot *slot = s->lock_wait.slots[i];
    struct conn *c = slot->conn;
    unlist(&s->lock_wait, i);
    slot->reply.size = 0;
    if (token > 0)
        resp_write_integer(&slot->reply, (int64_t)token);
    else
        resp_write_null(&slot->reply);
    conn_slot_ready(c, slot);
}

void lock_wait_conn_eof(struct conn *c)
{
    struct server *s = c->server;
    uint32_t i = 0;
    bool answered = false;
    while (i < s->lock_wait.count) {
        if (s->lock_wait.slots[i]->conn == c) {
            answer(s, i, 0);
            answered = true;
        } else {
            i++;
        }
    }
    if (answered)
        arm_timer(s);
}

void lock_wait_check(struct server *s)
{
    struct server_lock_wait *lw = &s->lock_wait;
    if (lw->count == 0)
        return;
    uint64_t now = server_now_ms(s);
    uint64_t applied = s->kv->op;
    bool moved = applied != lw->checked_op;
    lw->checked_op = applied;
    uint32_t i = 0;
    while (i < lw->count) {
        struct slot *slot = lw->slots[i];
        uint64_t token = 0;
        enum verdict v = moved ? judge(s, slot, &token) : WAITING;
        if (v == GRANTED) {
            lw->granted++;
            answer(s, i, token);
        } else if (v == LEFT || now >= slot->lock_deadline_ms) {
            lw->timed_out += v != LEFT;
            answer(s, i, 0);
        } else {
            i++;
        }
    }
    arm_timer(s);
}

static void on_timer(uv_timer_t *timer)
{
    struct server *s = timer->data;
    lock_wait_check(s);
}

/* Start the timer for the earliest deadline, or stop it. */
static void arm_timer(struct server *s)
{
    struct server_lock_wait *lw = &s->lock_wait;
    if (lw->count == 0) {
        uv_timer_stop(&lw->timer);
        return;
    }
    uint64_t first = UINT64_MAX;
    for (uint32_t i = 0; i < lw->count; i++)
        if (lw->slots[i]->lock_deadline_ms < first)
            first = lw->slots[i]->lock_deadline_ms;
    uint64_t now = server_now_ms(s);
    uv_timer_start(&lw->timer, on_timer, first > now ? first - now : 0, 0);
}

void lock_wait_open(struct server *s)
{
    uv_timer_init(s->loop, &s->lock_wait.timer);
    s->lock_wait.timer.data = s;
    s->handles_open++;
}

void lock_wait_close(struct server *s, uv_close_cb closed)
{
    ASSERT(s->lock_wait.count == 0); /* the connections went first */
    free(s->lock_wait.slots);
    s->lock_wait.slots = NULL;
    s->lock_wait.capacity = 0;
    uv_close((uv_handle_t *)&s->lock_wait.timer, closed);
}
