/* cli/rpc — one blocking RESP connection for the command-line tools that
 * talk to a running replica (`cohort backup`): connect, send a command,
 * read its one reply into a bounded buffer.
 *
 * Invariants: (1) a reply larger than the buffer is an error, never a
 * truncation; (2) the nodes of a reply borrow the buffer and stay valid
 * until the next call. */
#ifndef COHORT_CLI_RPC_H
#define COHORT_CLI_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/resp.h"

#define CLI_RPC_NODES_MAX 64u

struct cli_rpc {
    int fd;
    char addr[256];
    char *buf;
    size_t cap, have, consumed;
    struct resp_node nodes[CLI_RPC_NODES_MAX];
    uint32_t node_count;
};

/* Connect to addr (host:port) with a receive timeout of timeout_s; replies
 * may be up to reply_size_max bytes. -COHORT_EIO with err on failure. */
int cli_rpc_open(struct cli_rpc *c, const char *addr, size_t reply_size_max,
                 int timeout_s, struct cohort_err *err);
/* Send one command and read its reply: c->nodes[0, c->node_count). An
 * error reply is a reply (type RESP_TYPE_ERROR), not a failure. */
int cli_rpc_call(struct cli_rpc *c, uint32_t argc, const struct resp_arg *argv,
                 struct cohort_err *err);
void cli_rpc_close(struct cli_rpc *c);

#endif
