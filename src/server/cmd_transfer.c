/* cmd_transfer — COHORT.TRANSFER <replica-id>, behind `cohort transfer`:
 * ask this replica, the primary, to hand its role to a caught-up backup
 * (a leadership transfer, docs/PROTOCOL.md). An admin command: under ACLs
 * only a user allowed @admin runs it.
 *
 *   COHORT.TRANSFER <id>  -> :<view>  the view replica <id> will lead; the
 *                                     transfer is under way (drain, then
 *                                     the view change), watch INFO
 *                                     replication for primary_index
 *                         -> -ERR ... one line saying why not and what to do
 *
 * Nothing is forwarded: the CLI finds the primary first, and a transfer
 * sent to a backup is refused with the primary's address. */
#include <inttypes.h>
#include <stdio.h>

#include "server/command.h"
#include "server/internal.h"

static void refuse(struct conn *c, struct resp_buf *out,
                   const struct transfer_answer *a)
{
    struct node_status st;
    node_status(c->server->node, &st);
    uint32_t n = st.replica_count;
    switch (a->result) {
    case TRANSFER_NOT_PRIMARY:
        if (a->primary < n && st.client_addr[a->primary])
            resp_write_errorf(out,
                              "ERR this replica is not the primary; replica "
                              "%" PRIu32 " at %s is (view %" PRIu64
                              "): send the transfer there",
                              a->primary, st.client_addr[a->primary], a->view);
        else
            resp_write_errorf(out, "ERR this replica is not the primary "
                                   "(view change or recovery under way); "
                                   "try again");
        return;
    case TRANSFER_NO_SUCH_REPLICA:
        resp_write_errorf(out,
                          "ERR no replica %" PRIu32
                          ": the group's replicas are 0..%" PRIu32,
                          a->target, n - 1);
        return;
    case TRANSFER_SELF:
        resp_write_errorf(out, "ERR replica %" PRIu32 " is already the primary",
                          a->target);
        return;
    case TRANSFER_BUSY:
        resp_write_errorf(out, "ERR a transfer is already under way; wait "
                               "for it and try again");
        return;
    case TRANSFER_SUSPECTED:
        resp_write_errorf(out,
                          "ERR replica %" PRIu32 " is not responding to the "
                          "primary; check it (cohort status) and try again",
                          a->target);
        return;
    case TRANSFER_LAGGING:
        resp_write_errorf(out,
                          "ERR replica %" PRIu32
                          " is not caught up (op %" PRIu64 " of %" PRIu64
                          "); try again",
                          a->target, a->target_op, a->op);
        return;
    case TRANSFER_STARTED:
        break;
    }
    resp_write_errorf(out, "ERR transfer refused (%s)",
                      transfer_result_name(a->result));
}

void cmd_cohort_transfer(struct conn *c, struct resp_buf *out, uint32_t argc,
                         const struct resp_arg *argv)
{
    (void)argc;
    uint64_t id;
    if (!command_parse_u64(&argv[1], &id) || id >= COHORT_REPLICAS_MAX) {
        resp_write_errorf(out,
                          "ERR replica id must be an integer 0..%d "
                          "(see cohort status)",
                          COHORT_REPLICAS_MAX - 1);
        return;
    }
    struct transfer_answer a;
    node_transfer(c->server->node, (uint32_t)id, &a);
    if (a.result != TRANSFER_STARTED) {
        refuse(c, out, &a);
        return;
    }
    struct node_metrics m;
    node_metrics(c->server->node, &m);
    c->server->admin.transfer_view = a.new_view;
    c->server->admin.transfer_target = (uint32_t)id;
    c->server->admin.transfer_abandoned = m.core.transfers_abandoned;
    resp_write_integer(out, (int64_t)a.new_view);
}
