/* cmd_reconfig — COHORT.RECONFIG, behind `cohort add`, `remove` and
 * `replace`: ask this replica, the primary, to change the group's
 * membership (an epoch change, docs/PROTOCOL.md "Epochs"). An admin
 * command: under ACLs only a user allowed @admin runs it.
 *
 *   COHORT.RECONFIG [EPOCH e] VOTERS id... [LEARNERS id...]
 *     -> *2 :<epoch> :<op>  the next epoch's RECONFIG entry is at <op>; the
 *                           change takes effect when it commits (watch
 *                           INFO replication's epoch line)
 *     -> -ERR ...           one line saying why not and what to do
 *
 * Ids index the --peers universe; voters are ordered (the first leads the
 * new epoch's first view). EPOCH e makes it a compare-and-set: refused
 * unless the current epoch is e, so two operators computing a change from
 * the same membership cannot both apply theirs. Nothing is forwarded: the
 * CLI finds the primary first, and a change sent to a backup is refused
 * with the primary's address. */
#include <inttypes.h>
#include <stdio.h>

#include "common/membership.h"
#include "server/command.h"
#include "server/internal.h"

/* Parse the arguments into next; false with the error written. */
static bool parse(struct resp_buf *out, uint32_t argc,
                  const struct resp_arg *argv, uint32_t universe,
                  struct membership *next, uint64_t *epoch, bool *have_epoch)
{
    *next = (struct membership){0};
    *have_epoch = false;
    enum { NONE, VOTERS, LEARNERS } list = NONE;
    bool seen_voters = false, seen_learners = false;
    bool in_list[COHORT_REPLICAS_MAX] = {false};
    for (uint32_t i = 1; i < argc; i++) {
        if (command_word_is(&argv[i], "epoch") && list == NONE &&
            !*have_epoch && i + 1 < argc) {
            if (!command_parse_u64(&argv[i + 1], epoch)) {
                resp_write_errorf(out, "ERR EPOCH must be an integer (see "
                                       "INFO replication's epoch line)");
                return false;
            }
            *have_epoch = true;
            i++;
            continue;
        }
        if (command_word_is(&argv[i], "voters") && !seen_voters) {
            list = VOTERS;
            seen_voters = true;
            continue;
        }
        if (command_word_is(&argv[i], "learners") && !seen_learners) {
            list = LEARNERS;
            seen_learners = true;
            continue;
        }
        uint64_t id;
        if (list == NONE) {
            resp_write_errorf(out, "ERR syntax: COHORT.RECONFIG [EPOCH e] "
                                   "VOTERS id... [LEARNERS id...]");
            return false;
        }
        if (!command_parse_u64(&argv[i], &id) || id >= universe) {
            resp_write_errorf(out,
                              "ERR replica id must be an integer 0..%" PRIu32
                              " (the group's --peers; see cohort members)",
                              universe - 1);
            return false;
        }
        if (in_list[id]) {
            resp_write_errorf(out,
                              "ERR replica %" PRIu64 " is named twice; name "
                              "each member once, as a voter or a learner",
                              id);
            return false;
        }
        in_list[id] = true;
        if (list == VOTERS)
            next->voters[next->voter_count++] = (uint32_t)id;
        else
            next->learners[next->learner_count++] = (uint32_t)id;
    }
    if (next->voter_count == 0) {
        resp_write_errorf(out, "ERR the group needs at least one voter: "
                               "COHORT.RECONFIG [EPOCH e] VOTERS id... "
                               "[LEARNERS id...]");
        return false;
    }
    /* Learners ascending, as the membership keeps them. */
    for (uint32_t a = 1; a < next->learner_count; a++)
        for (uint32_t b = a; b > 0 && next->learners[b - 1] > next->learners[b];
             b--) {
            uint32_t t = next->learners[b];
            next->learners[b] = next->learners[b - 1];
            next->learners[b - 1] = t;
        }
    return true;
}

void command_reply_not_primary(struct resp_buf *out,
                               const struct node_status *st, const char *what)
{
    if (st->primary < st->replica_count && st->primary != st->self &&
        st->client_addr[st->primary])
        resp_write_errorf(out,
                          "ERR this replica is not the primary; replica "
                          "%" PRIu32 " at %s is: send the %s there",
                          st->primary, st->client_addr[st->primary], what);
    else
        resp_write_errorf(out, "ERR this replica is not the primary (view "
                               "change or recovery under way); try again");
}

bool command_reply_stale_epoch(struct resp_buf *out,
                               const struct node_status *st, uint64_t epoch)
{
    if (epoch == st->membership.epoch)
        return false;
    resp_write_errorf(out,
                      "ERR the group is in epoch %" PRIu32 ", not %" PRIu64
                      ": its membership changed meanwhile; look again "
                      "(cohort members) and retry",
                      st->membership.epoch, epoch);
    return true;
}

static void refuse(struct conn *c, struct resp_buf *out,
                   const struct reconfig_answer *a)
{
    struct node_status st;
    node_status(c->server->node, &st);
    switch (a->result) {
    case RECONFIG_NOT_PRIMARY:
        command_reply_not_primary(out, &st, "change");
        return;
    case RECONFIG_INVALID:
        resp_write_errorf(out, "ERR invalid membership: voters and learners "
                               "must be distinct ids of the group's --peers");
        return;
    case RECONFIG_BUSY:
        resp_write_errorf(out, "ERR a membership change or transfer is under "
                               "way, or the log is full; try again");
        return;
    case RECONFIG_PROPOSED:
        break;
    }
    resp_write_errorf(out, "ERR membership change refused (%s)",
                      reconfig_result_name(a->result));
}

void cmd_cohort_reconfig(struct conn *c, struct resp_buf *out, uint32_t argc,
                         const struct resp_arg *argv)
{
    struct node_status st;
    node_status(c->server->node, &st);
    struct membership next;
    uint64_t epoch = 0;
    bool have_epoch;
    if (!parse(out, argc, argv, st.replica_count, &next, &epoch, &have_epoch))
        return;
    if (have_epoch && command_reply_stale_epoch(out, &st, epoch))
        return;
    struct reconfig_answer a;
    node_reconfig(c->server->node, &next, &a);
    if (a.result != RECONFIG_PROPOSED) {
        refuse(c, out, &a);
        return;
    }
    resp_write_array(out, 2);
    resp_write_integer(out, (int64_t)a.epoch + 1);
    resp_write_integer(out, (int64_t)a.op);
}
