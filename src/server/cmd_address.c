/* cmd_address — COHORT.ADDRESS, behind `cohort add --peer H:P --client H:P`
 * with an address outside --peers, and `cohort move`: ask this replica,
 * the primary, to move a replica id that is not a member (neither voter nor
 * learner) to new peer and client addresses. An admin command.
 *
 *   COHORT.ADDRESS id peer-host:port client-host:port [EPOCH e]
 *     -> +OK        committed: every member dials id at its new address
 *                   (and records it in <data-dir>/addresses)
 *     -> -ERR ...   one line saying why not and what to do
 *
 * The move is a write of the store's address table (kv/address.h), so it
 * is ordered with everything else, in every snapshot, and learnt by a new
 * member as it catches up. Only a non-member moves: whatever process still
 * runs at the old address holds an epoch in which the id was a member or
 * older, and every member has left that epoch behind, so nothing it sends
 * counts (docs/PROTOCOL.md, "Moving a replica id"). EPOCH e makes it a
 * compare-and-set on the epoch, as COHORT.RECONFIG. Checked here, at the
 * primary, before the write is proposed: not forwarded (a backup refuses
 * with the primary's address). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/membership.h"
#include "kv/address.h"
#include "runtime/addr.h"
#include "server/command.h"
#include "server/internal.h"

/* arg as a NUL-terminated address in out; false if it cannot be one. */
static bool address_arg(const struct resp_arg *arg, char *out, size_t cap)
{
    if (arg->size == 0 || arg->size >= cap)
        return false;
    memcpy(out, arg->ptr, arg->size);
    out[arg->size] = '\0';
    return kv_address_valid(out);
}

/* Whether (id, peer, client) cannot be proposed now; if so, why is in out. */
static bool refused(struct conn *c, struct resp_buf *out, uint64_t id,
                    const char *peer, const char *client, bool have_epoch,
                    uint64_t epoch)
{
    struct server *s = c->server;
    struct node_status st;
    node_status(s->node, &st);
    if (st.status != STATUS_NORMAL || st.primary != st.self) {
        command_reply_not_primary(out, &st, "move");
        return true;
    }
    if (have_epoch && command_reply_stale_epoch(out, &st, epoch))
        return true;
    if (id >= st.replica_count) {
        resp_write_errorf(out,
                          "ERR replica id must be an integer 0..%" PRIu32
                          " (the group's --peers; see cohort members)",
                          st.replica_count - 1);
        return true;
    }
    if (membership_is_member(&st.membership, (uint32_t)id)) {
        resp_write_errorf(out,
                          "ERR replica %" PRIu64
                          " is a member of epoch %" PRIu32
                          ": remove it first (cohort remove), then move it",
                          id, st.membership.epoch);
        return true;
    }
    if (node_changing_members(s->node)) {
        resp_write_errorf(out, "ERR a membership change or transfer is under "
                               "way; try again");
        return true;
    }
    for (uint32_t i = 0; i < st.replica_count; i++) {
        if (i == id)
            continue;
        if ((st.peer_addr[i] && !strcmp(st.peer_addr[i], peer)) ||
            (st.client_addr[i] && !strcmp(st.client_addr[i], client))) {
            resp_write_errorf(out,
                              "ERR replica %" PRIu32 " already has that "
                              "address; give replica %" PRIu64
                              " addresses of its own",
                              i, id);
            return true;
        }
    }
    /* The checks every member's transport makes when it applies the move,
     * made here first so that a move they would refuse is never committed. */
    struct cohort_err e;
    err_clear(&e);
    if (node_check_peer_address(s->node, (uint32_t)id, peer, &e) != 0) {
        resp_write_errorf(out, "ERR %s", e.message);
        return true;
    }
    struct sockaddr_storage ss;
    err_clear(&e);
    if (addr_parse(client, &ss, &e) != 0 ||
        addr_port((struct sockaddr *)&ss) == 0) {
        resp_write_errorf(out, "ERR client address %s: %s", client,
                          e.message[0] ? e.message : "port 0");
        return true;
    }
    return false;
}

void cmd_cohort_address(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    struct resp_buf refusal;
    resp_buf_init(&refusal, 2);
    char peer[KV_ADDRESS_MAX + 1], client[KV_ADDRESS_MAX + 1];
    uint64_t id = 0, epoch = 0;
    bool have_epoch = argc == 6 && command_word_is(&argv[4], "epoch");
    if ((argc != 4 && !have_epoch) || !command_parse_u64(&argv[1], &id)) {
        resp_write_errorf(&refusal, "ERR syntax: COHORT.ADDRESS id "
                                    "peer-host:port client-host:port "
                                    "[EPOCH e]");
    } else if (!address_arg(&argv[2], peer, sizeof(peer)) ||
               !address_arg(&argv[3], client, sizeof(client))) {
        resp_write_errorf(&refusal,
                          "ERR an address must be host:port (at most %u "
                          "bytes, no spaces or commas)",
                          KV_ADDRESS_MAX);
    } else if (have_epoch && !command_parse_u64(&argv[5], &epoch)) {
        resp_write_errorf(&refusal, "ERR EPOCH must be an integer (see INFO "
                                    "replication's epoch line)");
    } else if (!refused(c, &refusal, id, peer, client, have_epoch, epoch)) {
        resp_buf_deinit(&refusal);
        cmd_store_write_address(c, (uint32_t)id, peer, client, argc, argv);
        return;
    }
    struct slot *slot = conn_slot_push(c);
    resp_write_raw(&slot->reply, refusal.data, refusal.size);
    conn_slot_ready(c, slot);
    resp_buf_deinit(&refusal);
}
