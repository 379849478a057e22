/* view_announce — the group's views, told to applications in the log's
 * order: the application-side view upcall.
 *
 * When this member is the primary of a normal view it has not announced,
 * it proposes one PUBLISH on the reserved channel "cohort:views" with the
 * text "view <v> primary <id> replicas <n> epoch <e> voters <ids> learners
 * <ids>" (ids joined by '+', "-" for none; views are ordered by (epoch,
 * view), and an epoch change starts at view 0). Being a log op, the
 * announcement reaches every subscriber on every member in the same
 * order as every other message and change, once, and a subscriber that
 * reconnects resumes with COHORT.SUBSCRIBE cohort:views FROM <position>
 * like any channel (kv/history.h). Clients cannot publish on "cohort:"
 * channels (kv/command.c refuses them), so every message there is the
 * group's own.
 *
 * Only views that a primary started are announced: a view change that
 * never completed had no primary and served nothing. A view is announced
 * at most once: the announcer is a client of the log with its own id, and
 * a proposal whose outcome was unknown is sent again with the same
 * request number, which the client table answers without applying it
 * twice. A primary that loses its view before its announcement commits
 * leaves it to the next primary, whose own view is announced instead.
 *
 * Invariant: at most one announcement is in the node (in_flight), and
 * server_close() cancels it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "kv/command.h"
#include "server/internal.h"

static void announce_done(void *ctx, const struct driver_reply *r)
{
    struct announcer *a = ctx;
    ASSERT(a->in_flight);
    a->in_flight = false;
    if (r->outcome == DRIVER_DONE) {
        a->announced_epoch = a->epoch;
        a->announced_view = a->view;
        a->done++;
    } else if (r->outcome == DRIVER_REJECTED) {
        /* The client table forgot us (or a stale number): a new id. */
        a->client_id = server_client_id_new(a->server);
        a->request_no = 0;
        a->epoch = 0;
        a->view = 0; /* the next try is request 1 of the new id */
    }
    /* Otherwise (RETRY, UNKNOWN, NOT_PRIMARY) the next tick decides: the
     * same request again if this member still leads that view. */
}

/* "0+1+2", or "-" for none. */
static void ids_text(const uint32_t *ids, uint32_t count, char *out,
                     size_t size)
{
    size_t len = 0;
    snprintf(out, size, "-");
    for (uint32_t k = 0; k < count && k < COHORT_REPLICAS_MAX; k++) {
        int n =
            snprintf(out + len, size - len, "%s%" PRIu32, k ? "+" : "", ids[k]);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
    }
}

void view_announce_init(struct server *s)
{
    struct announcer *a = &s->announcer;
    memset(a, 0, sizeof(*a));
    a->server = s;
    a->client_id = server_client_id_new(s);
}

void view_announce_run(struct server *s)
{
    struct announcer *a = &s->announcer;
    if (a->in_flight || s->closing || !node_is_primary(s->node))
        return;
    uint32_t epoch;
    uint64_t view;
    node_view(s->node, &epoch, &view); /* runs every loop turn: cheap */
    bool newer = epoch > a->announced_epoch ||
                 (epoch == a->announced_epoch && view > a->announced_view);
    if (!newer && a->done > 0)
        return;
    struct node_status st;
    node_status(s->node, &st);
    if (st.view != a->view || epoch != a->epoch) {
        /* A new view: a new request (a retry keeps its number). */
        a->epoch = epoch;
        a->view = st.view;
        a->request_no++;
    }
    char channel[] = VIEW_ANNOUNCE_CHANNEL;
    char text[160], voters[32], learners[32];
    ids_text(st.membership.voters, st.membership.voter_count, voters,
             sizeof(voters));
    ids_text(st.membership.learners, st.membership.learner_count, learners,
             sizeof(learners));
    int n =
        snprintf(text, sizeof(text),
                 "view %" PRIu64 " primary %" PRIu32 " replicas %" PRIu32
                 " epoch %" PRIu32 " voters %s learners %s",
                 st.view, st.self, st.replica_count, epoch, voters, learners);
    ASSERT(n > 0 && (size_t)n < sizeof(text));
    struct resp_arg args[2] = {{channel, strlen(channel)}, {text, (size_t)n}};
    struct kv_write w = {.type = KV_CMD_PUBLISH, .arg_count = 2, .args = args};
    size_t size = kv_command_size(&w);
    ASSERT(size <= sizeof(a->body));
    size = kv_command_encode(&w, a->body, sizeof(a->body));
    a->in_flight = true;
    a->proposed++;
    node_submit(s->node, a->client_id, a->request_no, a->body, size, false,
                announce_done, a);
}

void view_announce_close(struct server *s)
{
    struct announcer *a = &s->announcer;
    if (a->in_flight) {
        node_cancel(s->node, a);
        a->in_flight = false;
    }
}
