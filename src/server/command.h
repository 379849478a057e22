/* command — the server's command table: each command's name, its arity by
 * Redis's rule (n: exactly n arguments, -n: at least n, the name counted),
 * its flags and key positions (for COMMAND), and the error replies Redis
 * gives for an unknown command, a wrong argument count and an unknown
 * subcommand, word for word.
 *
 * command_dispatch() runs one parsed command on a connection: AUTH check,
 * lookup, arity, the user's permissions (auth.c), then the handler. The lookup
 * and the error replies are pure (no connection, no node) and unit-tested in
 * tests/unit/server_command_test.c.
 */
#ifndef COHORT_SERVER_COMMAND_H
#define COHORT_SERVER_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"

struct conn;

#define CMD_WRITE 0x01u  /* proposes a write through the log */
#define CMD_READ 0x02u   /* reads the store */
#define CMD_ADMIN 0x04u  /* about the server, not the data */
#define CMD_NOAUTH 0x08u /* allowed before AUTH when a password is set */
#define CMD_SLOT 0x10u   /* the handler manages its own reply slot */
#define CMD_FAST 0x20u   /* answered at once from memory */
/* reads values of keys it does not name (COHORT.RANGE): refused to a user
 * whose key patterns do not admit every key */
#define CMD_ALL_KEYS 0x40u

/* A handler writes its reply to out; a CMD_SLOT handler gets out == NULL,
 * pushes a slot (conn_slot_push) and completes it now or later. */
typedef void (*command_fn)(struct conn *c, struct resp_buf *out, uint32_t argc,
                           const struct resp_arg *argv);

struct command_spec {
    const char *name; /* lowercase, as arity errors quote it */
    int arity;
    uint32_t flags;
    int first_key, last_key, key_step; /* as COMMAND reports them */
    uint32_t categories; /* ACL categories: bits 1u << ACL_CAT_* */
    command_fn run;
};

/* The command named name (ASCII case-insensitive), or NULL. */
const struct command_spec *command_lookup(const struct resp_arg *name);
/* Every command, for COMMAND and COMMAND COUNT. */
const struct command_spec *command_table(size_t *count);
/* CMD_WRITE for a store write, CMD_READ for a store read, 0 otherwise: the
 * spec's flags, but by subcommand for ACL (SETUSER and DELUSER write, LIST
 * and USERS read) and by the wrapped command for COHORT.REQ. */
uint32_t command_kind(const struct command_spec *spec, uint32_t argc,
                      const struct resp_arg *argv);
/* Whether argc (the name included) satisfies spec's arity. */
bool command_arity_ok(const struct command_spec *spec, uint32_t argc);

/* "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' " */
void command_reply_unknown(struct resp_buf *out, uint32_t argc,
                           const struct resp_arg *argv);
/* "-ERR wrong number of arguments for 'get' command"; name is the command's
 * lowercase name, or "client|setname" for a subcommand. */
void command_reply_arity(struct resp_buf *out, const char *name);
/* "-ERR unknown subcommand 'foo'. Try CLIENT HELP." */
void command_reply_unknown_subcommand(struct resp_buf *out,
                                      const struct resp_arg *sub,
                                      const char *command_upper);

/* ASCII case-insensitive comparison of client bytes with a lowercase word. */
bool command_word_is(const struct resp_arg *arg, const char *word);
/* Parse a Redis integer argument (no spaces, no '+', no leading zeros). */
bool command_parse_i64(const struct resp_arg *arg, int64_t *out);
bool command_parse_u64(const struct resp_arg *arg, uint64_t *out);

/* Run one command (argc >= 1) on c. Returns false, having done nothing,
 * when it must wait for the connection's earlier commands of the other kind
 * (conn_must_wait); the caller parses it again once they are answered. */
bool command_dispatch(struct conn *c, uint32_t argc,
                      const struct resp_arg *argv);

/* Handlers, by file. cmd_conn.c: */
void cmd_ping(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv);
void cmd_echo(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv);
void cmd_quit(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv);
void cmd_hello(struct conn *c, struct resp_buf *out, uint32_t argc,
               const struct resp_arg *argv);
void cmd_auth(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv);
void cmd_select(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv);
void cmd_client(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv);
void cmd_readonly(struct conn *c, struct resp_buf *out, uint32_t argc,
                  const struct resp_arg *argv);
void cmd_readwrite(struct conn *c, struct resp_buf *out, uint32_t argc,
                   const struct resp_arg *argv);
void cmd_cohort_applied(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv);
void cmd_noforward(struct conn *c, struct resp_buf *out, uint32_t argc,
                   const struct resp_arg *argv);
/* cmd_backup.c: */
void cmd_cohort_backup(struct conn *c, struct resp_buf *out, uint32_t argc,
                       const struct resp_arg *argv);
/* cmd_transfer.c: */
void cmd_cohort_transfer(struct conn *c, struct resp_buf *out, uint32_t argc,
                         const struct resp_arg *argv);
/* cmd_reconfig.c: */
/* "-ERR this replica is not the primary; replica N at ADDR is: send the
 * <what> there" (or "... try again" while no primary is known): the admin
 * commands that only the primary runs (cmd_reconfig.c). */
struct node_status;
void command_reply_not_primary(struct resp_buf *out,
                               const struct node_status *st, const char *what);
/* EPOCH e of a compare-and-set admin command: whether e is not the
 * group's epoch, and if so "-ERR the group is in epoch E, not e: its
 * membership changed meanwhile; ..." (cohort add/remove/replace look for
 * "changed meanwhile"). */
bool command_reply_stale_epoch(struct resp_buf *out,
                               const struct node_status *st, uint64_t epoch);
void cmd_cohort_address(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv);
void cmd_cohort_reconfig(struct conn *c, struct resp_buf *out, uint32_t argc,
                         const struct resp_arg *argv);
/* cmd_rejuvenate.c: */
void cmd_cohort_rejuvenate(struct conn *c, struct resp_buf *out, uint32_t argc,
                           const struct resp_arg *argv);
/* cmd_admin.c: */
void cmd_command(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv);
void cmd_config(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv);
void cmd_info(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv);
/* cmd_acl.c: */
void cmd_acl(struct conn *c, struct resp_buf *out, uint32_t argc,
             const struct resp_arg *argv);
/* cmd_store.c: */
void cmd_store_read(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv);
/* COHORT.ADDRESS once cmd_address.c checked it: propose the store write
 * KV_CMD_ADDRESS (id to peer and client); argv is the command, kept for a
 * forward. Not reachable by any client command name. */
void cmd_store_write_address(struct conn *c, uint32_t id, const char *peer,
                             const char *client, uint32_t argc,
                             const struct resp_arg *argv);
void cmd_store_write(struct conn *c, struct resp_buf *out, uint32_t argc,
                     const struct resp_arg *argv);
void cmd_cohort_req(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv);
/* cmd_pubsub.c: */
void cmd_subscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                   const struct resp_arg *argv);
void cmd_unsubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                     const struct resp_arg *argv);
void cmd_psubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv);
void cmd_punsubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                      const struct resp_arg *argv);
void cmd_cohort_subscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                          const struct resp_arg *argv);
void cmd_pubsub(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv);
/* cmd_watch.c: */
void cmd_cohort_watch(struct conn *c, struct resp_buf *out, uint32_t argc,
                      const struct resp_arg *argv);
void cmd_cohort_unwatch(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv);
/* cmd_txn.c: */
void cmd_multi(struct conn *c, struct resp_buf *out, uint32_t argc,
               const struct resp_arg *argv);
void cmd_exec(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv);
void cmd_discard(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv);
void cmd_watch(struct conn *c, struct resp_buf *out, uint32_t argc,
               const struct resp_arg *argv);
void cmd_unwatch(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv);
void cmd_cohort_txn(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv);

#endif
