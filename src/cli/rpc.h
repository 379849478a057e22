/* cli/rpc — one blocking RESP connection for the command-line tools that
 * talk to a running replica (`cohort backup`, `status`, `members`):
 * connect (and AUTH from COHORT_USER/COHORT_PASSWORD), find the primary,
 * send a command, read its one reply into a bounded buffer; and read the
 * INFO text the tools act on (a field, a list entry, whether the member
 * reaches a majority of the voters).
 *
 * Invariants: (1) a reply larger than the buffer is an error, never a
 * truncation; (2) the nodes of a reply borrow the buffer and stay valid
 * until the next call. */
#ifndef COHORT_CLI_RPC_H
#define COHORT_CLI_RPC_H

#include <stdbool.h>
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

/* cli_rpc_call, then an error reply or a reply of another type than want
 * becomes a failure naming the member. */
int cli_rpc_expect(struct cli_rpc *c, uint32_t argc,
                   const struct resp_arg *argv, enum resp_type want,
                   struct cohort_err *err);
/* AUTH as COHORT_USER (default: the default user) with COHORT_PASSWORD, if
 * that is set: a password never appears on the command line. */
int cli_rpc_auth(struct cli_rpc *c, struct cohort_err *err);
/* cli_rpc_open (10 s timeout) and cli_rpc_auth; closed on failure. */
int cli_rpc_open_member(struct cli_rpc *c, const char *addr,
                        size_t reply_size_max, struct cohort_err *err);
/* Connect to the primary of the cluster addr belongs to, following the
 * member's INFO replication (its primary, and on), for up to 10 s of view
 * changes. Each try starts again at addr: a primary it names that does not
 * answer (refused, timed out) is one it has not yet seen fail. When addr
 * cannot be asked, its error; when no try reached a primary, -COHORT_EAGAIN
 * with one line "no primary reachable: replica <i> (<addr>) knows no
 * working primary (<why>); <the fix>", whatever addr's state (but see
 * cli_rpc_open_primary_any for a removed member). */
int cli_rpc_open_primary(struct cli_rpc *c, const char *addr,
                         size_t reply_size_max, struct cohort_err *err);
/* How long cli_rpc_open_primary waits: a view change has 10 s. */
#define CLI_PRIMARY_WAIT_MS 10000u
/* The same over several members at once, addrs[0] first (count > 0), for
 * up to wait_ms in all, not per member: each round asks each of them in
 * turn. A member that does not answer is skipped while another does; when
 * none answers, addrs[0]'s error (or the first's that failed). The "no
 * primary reachable" line is about addrs[0] if it answered, else the
 * first that did. When the member it is about was removed from the group
 * (role removed or outside), the line says so and names a current member
 * to ask instead. */
int cli_rpc_open_primary_any(struct cli_rpc *c, const char *const *addrs,
                             uint32_t count, uint64_t wait_ms,
                             size_t reply_size_max, struct cohort_err *err);
/* INFO <section> on c: its text (valid until the next call on c). */
int cli_rpc_info(struct cli_rpc *c, const char *section, const char **text,
                 size_t *len, struct cohort_err *err);
/* The value of "name:" in INFO text, into out; false if absent. */
bool cli_info_field(const char *text, size_t len, const char *name, char *out,
                    size_t size);
/* The value of key=value in a comma-separated list (an INFO line such as
 * "member1:addr=...,role=backup"), into out; "" and false if absent. */
bool cli_list_field(const char *line, const char *key, char *out, size_t size);
/* How many of the voters on INFO replication's epoch line
 * ("epoch:2,voters=0+1+2") the member whose INFO it is reaches, itself
 * included: with heard, those its peer link to is up and that it does not
 * suspect (the rule for a primary, which commits nothing without a
 * majority of them); without, those its link to is up. */
struct cli_majority {
    unsigned voters;    /* on the epoch line; 0 when INFO has none */
    unsigned connected; /* of those, the ones reached */
    unsigned needed;    /* a majority of voters */
};
/* Fill *out from INFO replication text; true when the member reaches
 * fewer voters than a majority (never when there is no epoch line). The
 * rule `cohort status` states and `cohort add`, `remove` and `replace`
 * refuse by: one place, so they always agree. */
bool cli_info_lacks_majority(const char *text, size_t len, bool heard,
                             struct cli_majority *out);
/* Milliseconds on the monotonic clock: for deadlines and elapsed times,
 * which a change of the wall clock must not stretch or cut short. */
uint64_t cli_monotonic_ms(void);
/* Sleep ms milliseconds (resumed after signals). */
void cli_pause_ms(long ms);
/* Whether a refusal of COHORT.TRANSFER is one that says "try again": the
 * target is behind or briefly unheard, a transfer or a view change is
 * under way. */
bool cli_transfer_retryable(const char *msg, size_t len);

#endif
