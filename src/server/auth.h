/* auth — who a client is and what it may run: AUTH and HELLO's AUTH, each
 * command's ACL check (the user's command rules and key patterns, compiled
 * against the command table), protected mode, and the server's own users.
 *
 * Where users live. The group's users are replicated state (kv/acl.h in the
 * store: ACL SETUSER and ACL DELUSER are log ops, and snapshots hold them),
 * so a change made through any member holds on every member and survives
 * restarts. Until the group's first ACL change the server's own users are
 * in force: "default" with --requirepass (nopass without it), or the users
 * of --acl-file (Redis's aclfile format: "user <name> <rules...>" lines).
 * That first change carries them (auth_acl_base), so the group starts from
 * what was in force; from then on --requirepass and --acl-file are unused.
 * Give every member the same ones.
 *
 * Forwarded commands. A backup checks a command against the user of the
 * client's connection before it forwards it (it has the same replicated
 * users); the primary trusts a forward link that proved it comes from a
 * replica (COHORT.NOFORWARD with the replica's peer token, admit.c) and
 * checks nothing more on it. So the permission that counts is the one of
 * the client's own user, judged where the client connected. That trust is
 * as strong as the peer network's: the token comes from the peer
 * handshake, so whoever can pose as a replica there can pose as its link
 * (and could already write to the log directly); authenticated peers
 * (mutual TLS or a cluster secret) close both.
 *
 * Invariants: (1) a connection's acl_user and perm are those of its user in
 * auth_users() as of generation auth_generation (the users' generation
 * moves on every change, and only then are they looked up again); (2) a
 * verified forward link (CONN_LINK) is authenticated and runs everything.
 */
#ifndef COHORT_SERVER_AUTH_H
#define COHORT_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/resp.h"
#include "kv/acl.h"
#include "kv/command.h"

struct server;
struct server_config;
struct conn;
struct command_spec;

/* Room for a refusal (NOPERM, or a deleted user). */
#define AUTH_REFUSAL_MAX 256u
/* Commands and subcommands an ACL rule can tell apart. */
#define AUTH_ENTRIES_MAX 128u

/* What one user may run, compiled against the command table. */
struct auth_perm {
    uint64_t allowed[AUTH_ENTRIES_MAX / 64];
    bool all_commands;
    bool all_keys;
};

/* The server's own users. */
struct auth {
    struct acl bootstrap;
    uint8_t *base; /* acl_encode(bootstrap) */
    size_t base_size;
};

/* Build the server's own users from config (password, acl_file). On a bad
 * ACL file returns an error naming the file, the line and the fix. */
int auth_init(struct auth *a, const struct server_config *config,
              struct cohort_err *err);
void auth_deinit(struct auth *a);

/* The users in force: the group's once it has changed them, else the
 * server's own. */
const struct acl *auth_users(const struct server *s);

/* The entry (command, or command|subcommand) argv runs, and its name as
 * NOPERM quotes it ("set", "acl|setuser"). */
uint32_t auth_entry(const struct command_spec *spec, uint32_t argc,
                    const struct resp_arg *argv);
const char *auth_entry_name(uint32_t entry);
/* The categories of an entry; the entries in a category (for ACL CAT). */
uint32_t auth_entry_categories(uint32_t entry);
uint32_t auth_entry_count(void);

/* Compile u's command rules against the table. */
void auth_perm_compile(const struct acl_user *u, struct auth_perm *p);
/* Whether p (u's) allows argv: its command, then its keys (as COMMAND
 * reports their positions; COHORT.REQ is judged by the command it wraps).
 * On a refusal writes Redis's NOPERM text into refusal. Pure. */
bool auth_perm_check(const struct auth_perm *p, const struct acl_user *u,
                     const struct command_spec *spec, uint32_t argc,
                     const struct resp_arg *argv,
                     char refusal[AUTH_REFUSAL_MAX]);

/* A connection was accepted: its user is "default", authenticated if that
 * user needs no password (on and nopass). */
void auth_conn_start(struct conn *c);
/* Whether c may run argv; otherwise refusal is the error to answer (and c
 * stops reading when its user was deleted: Redis closes such clients). */
bool auth_command_allowed(struct conn *c, const struct command_spec *spec,
                          uint32_t argc, const struct resp_arg *argv,
                          char refusal[AUTH_REFUSAL_MAX]);
/* c is a verified forward link: authenticated, allowed everything. */
void auth_conn_trusted(struct conn *c);

enum auth_result {
    AUTH_OK,
    AUTH_WRONG,       /* -WRONGPASS */
    AUTH_NO_PASSWORD, /* AUTH <password>, and default needs none */
};
/* AUTH [user] password: on success c is that user. */
enum auth_result auth_login(struct conn *c, const struct resp_arg *user,
                            const struct resp_arg *password);

/* Protected mode is on and the default user can be used without a
 * password: only loopback clients may connect. */
bool auth_protected(const struct server *s);

/* Check ACL SETUSER or ACL DELUSER (argv: the whole command) before it is
 * proposed: command names the table knows, then a dry run against the
 * users in force. Returns false after writing the error reply into out. */
bool auth_acl_write_check(const struct server *s, uint32_t argc,
                          const struct resp_arg *argv, struct resp_buf *out);
/* w is about to be proposed: if it is an ACL write and the group has not
 * changed its users yet, attach the server's own as its base. */
void auth_acl_base(const struct server *s, struct kv_write *w);

#endif
