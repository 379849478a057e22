/* incarnation — the group's incarnation (kv/incarnation.h), drawn and
 * learned.
 *
 * Learned: on every timer tick the store's incarnation, once it has one,
 * is handed to the node (node_set_incarnation()), which records it in the
 * data directory and announces it in the peer handshake, so that a
 * replica whose data belongs to another incarnation is refused by this
 * one and by every member of this group (runtime/peer_link.h).
 *
 * Drawn: while this member is the primary of a normal view, has caught up
 * with its own log (server_recovering() is false) and its store has no
 * incarnation, it proposes one KV_CMD_INCARNATION op: the value its data
 * directory recorded, if any (a store restored from a backup taken before
 * incarnations existed keeps its directory's), else 64 random bits drawn
 * once per process, but only while no connected peer announces an
 * incarnation in its handshake. That peer's group has one this store
 * lacks: a member that ran an older version while the op was applied
 * (it counted it malformed) and then took a snapshot. Drawing a new one
 * would set it in this store alone and cut this member off from its own
 * group; with none it stays compatible with every peer (0 matches any
 * tag). The first such op in the log wins; one that raced it (another
 * primary's, or a store that lagged its log) changes nothing. The
 * proposer is a client of the log with its own id, so a retry of the same
 * request after an unknown outcome is answered by the client table, never
 * applied twice.
 *
 * Invariant: at most one proposal in the node (in_flight); server_close()
 * cancels it. */
#include <string.h>
#include <sys/random.h>

#include "common/assert.h"
#include "kv/incarnation.h"
#include "server/internal.h"

static void propose_done(void *ctx, const struct driver_reply *r)
{
    struct incarnation_proposer *p = ctx;
    ASSERT(p->in_flight);
    p->in_flight = false;
    if (r->outcome == DRIVER_REJECTED) {
        p->client_id = server_client_id_new(p->server);
        p->request_no = 0;
        p->sent = false;
    }
    /* Otherwise the next tick looks at the store again. */
}

void incarnation_init(struct server *s)
{
    struct incarnation_proposer *p = &s->incarnation;
    memset(p, 0, sizeof(*p));
    p->server = s;
    p->client_id = server_client_id_new(s);
}

/* 64 random bits, never 0; 0 if the system has none to give now. */
static uint64_t draw(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
        return 0;
    return x != 0 ? x : 1;
}

void incarnation_run(struct server *s)
{
    struct incarnation_proposer *p = &s->incarnation;
    uint64_t known = kv_incarnation(s->kv);
    node_set_incarnation(s->node, known);
    if (known != 0 || p->in_flight || s->closing || !node_is_primary(s->node) ||
        server_recovering(s))
        return;
    if (p->value == 0 && node_incarnation(s->node) != 0)
        p->value = node_incarnation(s->node);
    else if (p->value == 0 && !node_peer_announces_incarnation(s->node))
        p->value = draw(); /* 0 without randomness yet: the next tick */
    if (p->value == 0)
        return;
    if (!p->sent) {
        p->request_no++; /* a retry keeps its number */
        p->sent = true;
    }
    size_t size = kv_incarnation_encode(p->value, p->body, sizeof(p->body));
    ASSERT(size > 0);
    p->in_flight = true;
    p->proposed++;
    node_submit(s->node, p->client_id, p->request_no, p->body, size, false,
                propose_done, p);
}

void incarnation_close(struct server *s)
{
    struct incarnation_proposer *p = &s->incarnation;
    if (p->in_flight) {
        node_cancel(s->node, p);
        p->in_flight = false;
    }
}
