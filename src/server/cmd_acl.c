/* cmd_acl — ACL: WHOAMI, LIST, USERS, SETUSER, DELUSER, CAT and HELP, with
 * Redis's replies and errors.
 *
 * SETUSER and DELUSER change the replicated users: once auth.c has checked
 * them against the users in force (so a bad rule is answered at once and
 * nothing is proposed), they take the store's write path (cmd_store.c: the
 * log, exactly-once numbering, forwarding from a backup). LIST and USERS
 * take the store's read path, so they are linearizable like GET and show a
 * change made through another member as soon as it was acknowledged (after
 * READONLY, this member's users). WHOAMI, CAT and HELP answer at once. */
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "server/auth.h"
#include "server/command.h"
#include "server/internal.h"

static void acl_help(struct resp_buf *out)
{
    static const char *const lines[] = {
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command "
        "categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users (on every replica: users are replicated).",
        "LIST",
        "    Show users details in config file format.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes (on every "
        "replica).",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help."};
    write_help(out, lines, sizeof(lines) / sizeof(lines[0]));
}

static void acl_cat(struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv)
{
    if (argc == 2) {
        resp_write_array(out, ACL_CAT_COUNT);
        for (unsigned i = 0; i < ACL_CAT_COUNT; i++) {
            const char *name = acl_category_name(i);
            resp_write_bulk(out, name, strlen(name));
        }
        return;
    }
    int id = acl_category_find(argv[2].ptr, argv[2].size);
    if (id < 0) {
        char shown[129];
        resp_write_errorf(
            out, "ERR Unknown category '%s'",
            resp_show(shown, sizeof(shown), argv[2].ptr, argv[2].size));
        return;
    }
    uint32_t n = auth_entry_count(), matched = 0;
    for (uint32_t e = 0; e < n; e++)
        matched += (auth_entry_categories(e) >> id) & 1u;
    resp_write_array(out, matched);
    for (uint32_t e = 0; e < n; e++)
        if ((auth_entry_categories(e) >> id) & 1u)
            resp_write_bulk(out, auth_entry_name(e),
                            strlen(auth_entry_name(e)));
}

void acl_query(const struct server *s, uint32_t argc,
               const struct resp_arg *argv, struct resp_buf *out)
{
    const struct acl *users = auth_users(s);
    if (argc < 2 || !command_word_is(&argv[1], "list")) {
        resp_write_array(out, users->user_count);
        for (uint32_t i = 0; i < users->user_count; i++)
            resp_write_bulk(out, users->users[i]->name,
                            strlen(users->users[i]->name));
        return;
    }
    struct resp_buf line;
    resp_buf_init(&line, 2);
    resp_write_array(out, users->user_count);
    for (uint32_t i = 0; i < users->user_count; i++) {
        line.size = 0;
        acl_user_describe(users->users[i], &line);
        if (!line.ok) {
            out->ok = false;
            break;
        }
        resp_write_bulk(out, line.data, line.size);
    }
    resp_buf_deinit(&line);
}

/* Answer at once, in order after the connection's earlier commands. */
static struct resp_buf *immediate(struct conn *c, struct slot **slot)
{
    *slot = conn_slot_push(c);
    return &(*slot)->reply;
}

static bool arity(struct resp_buf *out, uint32_t argc, int want,
                  const char *name)
{
    bool ok = want > 0 ? argc == (uint32_t)want : argc >= (uint32_t)-want;
    if (!ok)
        command_reply_arity(out, name);
    return ok;
}

void cmd_acl(struct conn *c, struct resp_buf *out, uint32_t argc,
             const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    const struct resp_arg *sub = &argv[1];
    struct slot *slot = NULL;
    if (command_word_is(sub, "setuser") || command_word_is(sub, "deluser")) {
        struct resp_buf refusal;
        resp_buf_init(&refusal, 2);
        if (auth_acl_write_check(c->server, argc, argv, &refusal)) {
            /* The store's write path answers it (and an arity error). */
            cmd_store_write(c, NULL, argc, argv);
        } else {
            out = immediate(c, &slot);
            resp_write_raw(out, refusal.data, refusal.size);
            conn_slot_ready(c, slot);
        }
        resp_buf_deinit(&refusal);
        return;
    }
    if (command_word_is(sub, "list") || command_word_is(sub, "users")) {
        if (argc == 2) {
            cmd_store_read(c, NULL, argc, argv);
            return;
        }
        out = immediate(c, &slot);
        command_reply_arity(out, command_word_is(sub, "list") ? "acl|list"
                                                              : "acl|users");
        conn_slot_ready(c, slot);
        return;
    }
    out = immediate(c, &slot);
    if (command_word_is(sub, "whoami")) {
        if (arity(out, argc, 2, "acl|whoami"))
            resp_write_bulk(out, c->user, strlen(c->user));
    } else if (command_word_is(sub, "cat")) {
        if (argc > 3)
            command_reply_arity(out, "acl|cat");
        else
            acl_cat(out, argc, argv);
    } else if (command_word_is(sub, "help")) {
        if (arity(out, argc, 2, "acl|help"))
            acl_help(out);
    } else {
        command_reply_unknown_subcommand(out, sub, "ACL");
    }
    conn_slot_ready(c, slot);
}
