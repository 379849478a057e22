/* admit — who may hold a connection to the client port.
 *
 * Clients count against --max-clients and --max-clients-per-ip and are
 * closed by --timeout when idle. A backup's forward link (forward.c) is not
 * a client: it carries every client of that backup, so refusing it (or
 * timing it out) would take the whole backup down because of one busy or
 * hostile address. It proves what it is with COHORT.NOFORWARD <replica>
 * <token>, quoting the token that replica sent in its peer handshake
 * (transport.h): a client cannot know it without reaching the peer network.
 *
 * A connection accepted over a client limit is not refused at once (as
 * Redis does), since it may be a forward link that has not spoken yet: it
 * goes on probation, where it may only AUTH and prove itself within
 * PROBATION_MS; anything else, a wrong token, or the deadline refuses it
 * with the limit's error. Protected mode works the same way: while the
 * default user needs no password, a client from other than loopback goes
 * on probation and is refused with Redis's -DENIED text (AUTH does not
 * help it), unless it proves to be a backup's forward link (those come from
 * other machines). At most PROBATION_MAX wait: a newer arrival
 * refuses the oldest, so connections that stay silent cannot keep a link
 * out, and the memory they hold is bounded.
 *
 * Invariants: (1) client_count, probation_count and link_count count the
 * connections of each kind that are not torn down; (2) probation[] holds
 * the probation connections not yet refused, oldest first; (3) a
 * connection is in addr_counts iff addr_counted, and links never are.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/hex.h"
#include "server/command.h"
#include "server/internal.h"

#define ERR_MAX_CLIENTS "ERR max number of clients reached"
#define ERR_MAX_PER_ADDR                                                       \
    "ERR max number of clients reached for this address "                      \
    "(max-clients-per-ip)"
/* Redis's protected-mode text, with cohort's fixes. */
#define ERR_DENIED                                                             \
    "DENIED cohort is running in protected mode because protected mode is "    \
    "enabled and no password is set for the default user. In this mode "       \
    "connections are only accepted from the loopback interface. If you want "  \
    "to connect from external computers to cohort you may adopt one of the "   \
    "following solutions: 1) Set a password for the default user: restart "    \
    "every replica with --requirepass <password> (or requirepass in its "      \
    "config file, or an --acl-file), or run 'ACL SETUSER default on "          \
    ">password' from the loopback interface. 2) If the client port is not "    \
    "reachable from the internet, restart the replicas with --protected-mode " \
    "no. NOTE: You only need to do one of the above things in order for the "  \
    "server to start accepting connections from the outside."

static void probation_remove(struct server *s, struct conn *c)
{
    for (uint32_t i = 0; i < s->probation_count; i++) {
        if (s->probation[i] != c)
            continue;
        memmove(&s->probation[i], &s->probation[i + 1],
                (s->probation_count - i - 1) * sizeof(s->probation[0]));
        s->probation_count--;
        return;
    }
}

/* Take c out of whatever it counts against. */
static void uncount(struct server *s, struct conn *c)
{
    switch (c->kind) {
    case CONN_NEW:
        break;
    case CONN_CLIENT:
        ASSERT(s->client_count > 0);
        s->client_count--;
        break;
    case CONN_PROBATION:
        probation_remove(s, c);
        break;
    case CONN_LINK:
        ASSERT(s->link_count > 0);
        ASSERT(s->links_from[c->link_from] > 0);
        s->link_count--;
        s->links_from[c->link_from]--;
        break;
    }
    c->kind = CONN_NEW;
}

/* Answer c's refusal after what it is owed, and close it. */
static void refuse(struct server *s, struct conn *c)
{
    ASSERT(c->kind == CONN_PROBATION);
    probation_remove(s, c);
    if (c->input_stopped || c->closing)
        return;
    s->stats.connections_rejected++;
    conn_reply_error(c, c->refusal);
    c->input_stopped = true; /* closed once the reply is written */
    server_mark_resume(s, c);
}

void admit_accepted(struct server *s, struct conn *c)
{
    ASSERT(c->kind == CONN_NEW);
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_key_from((const struct sockaddr *)&ss, &c->addr_key);
    uint32_t from_addr = addr_counts_add(&s->addr_counts, &c->addr_key);
    c->addr_counted = from_addr > 0;
    c->kind = CONN_CLIENT;
    s->client_count++;
    uint32_t per_addr = s->config.connections_per_addr_max;
    const char *why = NULL;
    c->protected_refusal =
        !addr_key_is_loopback(&c->addr_key) && auth_protected(s);
    if (c->protected_refusal)
        why = ERR_DENIED;
    else if (per_addr > 0 && from_addr > per_addr)
        why = ERR_MAX_PER_ADDR; /* the more specific reason first */
    else if (s->client_count > s->config.connections_max)
        why = ERR_MAX_CLIENTS;
    if (why == NULL)
        return;
    uncount(s, c);
    c->kind = CONN_PROBATION;
    c->refusal = why;
    c->probation_until_ms = server_now_ms(s) + PROBATION_MS;
    s->probation[s->probation_count++] = c;
    if (s->probation_count > PROBATION_MAX)
        refuse(s, s->probation[0]);
    ASSERT(s->probation_count <= PROBATION_MAX);
}

bool admit_command_allowed(struct conn *c, const struct command_spec *spec,
                           uint32_t argc)
{
    if (c->kind != CONN_PROBATION)
        return true;
    if (spec != NULL && spec->run == cmd_quit)
        return true;
    if (spec != NULL && spec->run == cmd_auth && !c->protected_refusal)
        return true;
    if (spec != NULL && spec->run == cmd_noforward && argc == 3)
        return true; /* the proof; admit_link() judges it */
    refuse(c->server, c);
    return false;
}

/* How token compares with the one replica sent us, in constant time. */
static enum admit_proof token_check(const struct server *s, uint64_t replica,
                                    const struct resp_arg *token)
{
    uint8_t given[NODE_TOKEN_SIZE], known[NODE_TOKEN_SIZE];
    if (replica >= s->node_config.replica_count ||
        replica == s->node_config.self)
        return ADMIT_PROOF_NO_REPLICA;
    if (!node_peer_link_token(s->node, (uint32_t)replica, known))
        return ADMIT_PROOF_UNKNOWN;
    if (!hex_decode(token->ptr, token->size, true, given, NODE_TOKEN_SIZE))
        return ADMIT_PROOF_MISMATCH;
    uint8_t diff = 0, any = 0;
    for (size_t i = 0; i < NODE_TOKEN_SIZE; i++) {
        diff |= (uint8_t)(given[i] ^ known[i]);
        any |= known[i];
    }
    if (any == 0) /* zeros: what an accepted side sends */
        return ADMIT_PROOF_UNKNOWN;
    return diff == 0 ? ADMIT_PROOF_OK : ADMIT_PROOF_MISMATCH;
}

/* More links from one replica than it can use: close its oldest (the
 * leftover of a process that restarted, or of a link that broke). */
static void close_oldest_link(struct server *s, uint32_t replica)
{
    struct conn *oldest = NULL;
    for (struct conn *x = s->conns; x; x = x->next)
        if (x->kind == CONN_LINK && x->link_from == replica && !x->closing &&
            (oldest == NULL || x->id < oldest->id))
            oldest = x;
    if (oldest != NULL)
        conn_close_soon(oldest);
}

enum admit_proof admit_link(struct conn *c, const struct resp_arg *replica,
                            const struct resp_arg *token, uint64_t *id)
{
    struct server *s = c->server;
    *id = 0;
    enum admit_proof proof = ADMIT_PROOF_NO_REPLICA;
    if (command_parse_u64(replica, id))
        proof = token_check(s, *id, token);
    if (proof != ADMIT_PROOF_OK) {
        if (c->kind == CONN_PROBATION)
            refuse(s, c);
        return proof;
    }
    if (c->kind == CONN_LINK)
        return proof;
    uncount(s, c);
    if (c->addr_counted) {
        addr_counts_remove(&s->addr_counts, &c->addr_key);
        c->addr_counted = false;
    }
    c->kind = CONN_LINK;
    c->link_from = (uint32_t)*id;
    auth_conn_trusted(c);
    s->link_count++;
    if (++s->links_from[*id] > LINKS_PER_REPLICA_MAX)
        close_oldest_link(s, (uint32_t)*id);
    return proof;
}

void admit_tick(struct server *s)
{
    uint64_t now = server_now_ms(s);
    /* Oldest first, so deadlines come in order. */
    while (s->probation_count > 0 && s->probation[0]->probation_until_ms <= now)
        refuse(s, s->probation[0]);
    if (s->config.timeout_s == 0)
        return;
    uint64_t idle_max = (uint64_t)s->config.timeout_s * 1000u;
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->kind != CONN_CLIENT || c->closing || c->head != NULL)
            continue;
        if (c->ps.count > 0 || c->w.count > 0)
            continue; /* a subscriber waits for messages: as Redis */
        if (now - c->last_ms < idle_max)
            continue;
        s->stats.connections_timed_out++;
        conn_close_soon(c);
    }
}

void admit_gone(struct server *s, struct conn *c)
{
    uncount(s, c);
    if (c->addr_counted) {
        addr_counts_remove(&s->addr_counts, &c->addr_key);
        c->addr_counted = false;
    }
}
