/* auth — users, AUTH, ACL checks and protected mode. See auth.h. */
#include "server/auth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "server/command.h"
#include "server/internal.h"

#define CAT(x) (1u << ACL_CAT_##x)
#define ADMIN (CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS))

/* Subcommands whose categories differ from their command's, as Redis files
 * them. An ACL rule names the command (+acl covers every subcommand) or a
 * category. */
static const struct {
    const char *command, *sub, *name;
    uint32_t categories;
} subs[] = {
    {"acl", "whoami", "acl|whoami", CAT(SLOW)},
    {"acl", "cat", "acl|cat", CAT(SLOW)},
    {"acl", "help", "acl|help", CAT(SLOW)},
    {"acl", "list", "acl|list", ADMIN},
    {"acl", "users", "acl|users", ADMIN},
    {"acl", "setuser", "acl|setuser", ADMIN},
    {"acl", "deluser", "acl|deluser", ADMIN},
    {"client", "list", "client|list", ADMIN | CAT(CONNECTION)},
};
#define SUB_COUNT (sizeof(subs) / sizeof(subs[0]))

#define ERR_UNKNOWN_RULE                                                       \
    "ERR Error in ACL SETUSER modifier '%s': Unknown command or category "     \
    "name in ACL"

/* ------------------------------------------------------------ entries */

uint32_t auth_entry_count(void)
{
    size_t count = 0;
    (void)command_table(&count);
    ASSERT(count + SUB_COUNT <= AUTH_ENTRIES_MAX);
    return (uint32_t)(count + SUB_COUNT);
}

uint32_t auth_entry(const struct command_spec *spec, uint32_t argc,
                    const struct resp_arg *argv)
{
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    ASSERT(spec >= table && spec < table + count);
    if (argc >= 2)
        for (size_t i = 0; i < SUB_COUNT; i++)
            if (!strcmp(subs[i].command, spec->name) &&
                command_word_is(&argv[1], subs[i].sub))
                return (uint32_t)(count + i);
    return (uint32_t)(spec - table);
}

const char *auth_entry_name(uint32_t entry)
{
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    if (entry < count)
        return table[entry].name;
    ASSERT(entry - count < SUB_COUNT);
    return subs[entry - count].name;
}

uint32_t auth_entry_categories(uint32_t entry)
{
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    if (entry < count)
        return table[entry].categories;
    ASSERT(entry - count < SUB_COUNT);
    return subs[entry - count].categories;
}

/* The command an entry belongs to (what "+name" rules match). */
static const char *entry_command(uint32_t entry)
{
    size_t count = 0;
    const struct command_spec *table = command_table(&count);
    return entry < count ? table[entry].name : subs[entry - count].command;
}

/* ------------------------------------------------------------ checks */

/* The rules in order, the last that matches deciding; rules that name no
 * command of this table (written by another version, or a typo in a file
 * that the group accepted) match nothing. */
static bool entry_allowed(const struct acl_user *u, uint32_t entry)
{
    bool allowed = (u->flags & ACL_USER_ALLCOMMANDS) != 0;
    uint32_t categories = auth_entry_categories(entry);
    const char *command = entry_command(entry);
    for (uint32_t i = 0; i < u->rule_count; i++) {
        const char *r = u->rules[i];
        bool match;
        if (r[1] == '@') {
            int id = acl_category_find(r + 2, strlen(r + 2));
            match = id >= 0 && (categories & (1u << id));
        } else {
            match = !strcmp(r + 1, command);
        }
        if (match)
            allowed = r[0] == '+';
    }
    return allowed;
}

void auth_perm_compile(const struct acl_user *u, struct auth_perm *p)
{
    memset(p, 0, sizeof(*p));
    uint32_t n = auth_entry_count();
    bool all = true;
    for (uint32_t e = 0; e < n; e++) {
        if (entry_allowed(u, e))
            p->allowed[e / 64] |= 1ull << (e % 64);
        else
            all = false;
    }
    p->all_commands = all;
    p->all_keys = (u->flags & ACL_USER_ALLKEYS) != 0;
}

static bool keys_allowed(const struct acl_user *u,
                         const struct command_spec *spec, uint32_t argc,
                         const struct resp_arg *argv)
{
    if (spec->first_key <= 0 || spec->key_step <= 0)
        return true;
    uint32_t last = spec->last_key < 0 ? argc - 1 : (uint32_t)spec->last_key;
    for (uint32_t i = (uint32_t)spec->first_key; i <= last && i < argc;
         i += (uint32_t)spec->key_step)
        if (!acl_user_key_ok(u, argv[i].ptr, argv[i].size))
            return false;
    return true;
}

bool auth_perm_check(const struct auth_perm *p, const struct acl_user *u,
                     const struct command_spec *spec, uint32_t argc,
                     const struct resp_arg *argv,
                     char refusal[AUTH_REFUSAL_MAX])
{
    if (spec->run == cmd_cohort_req) {
        /* Judged by what it wraps; a bad wrapper is the handler's error. */
        const struct command_spec *inner =
            argc > 3 ? command_lookup(&argv[3]) : NULL;
        if (inner == NULL || inner->run == cmd_cohort_req)
            return true;
        spec = inner;
        argc -= 3;
        argv += 3;
    }
    if (spec->flags & CMD_NOAUTH)
        return true; /* AUTH, HELLO, QUIT: as Redis, never refused */
    if (!p->all_commands) {
        uint32_t e = auth_entry(spec, argc, argv);
        if (!(p->allowed[e / 64] & (1ull << (e % 64)))) {
            snprintf(refusal, AUTH_REFUSAL_MAX,
                     "NOPERM User %s has no permissions to run the '%s' "
                     "command",
                     u->name, auth_entry_name(e));
            return false;
        }
    }
    if (!p->all_keys &&
        ((spec->flags & CMD_ALL_KEYS) || !keys_allowed(u, spec, argc, argv))) {
        snprintf(refusal, AUTH_REFUSAL_MAX,
                 "NOPERM No permissions to access a key");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ connections */

const struct acl *auth_users(const struct server *s)
{
    return s->kv->acl.initialized ? &s->kv->acl : &s->auth.bootstrap;
}

static const struct acl_user *default_user(const struct server *s)
{
    return acl_find(auth_users(s), "default", 7);
}

static bool open_to_all(const struct acl_user *u)
{
    return u != NULL && (u->flags & ACL_USER_ON) &&
           (u->flags & ACL_USER_NOPASS);
}

void auth_conn_start(struct conn *c)
{
    snprintf(c->user, sizeof(c->user), "default");
    c->authenticated = open_to_all(default_user(c->server));
    c->auth_users = NULL; /* looked up at the first command */
}

void auth_conn_trusted(struct conn *c)
{
    c->authenticated = true;
    c->auth_users = NULL;
}

/* Look c's user up again after the users changed. */
static bool refresh(struct conn *c, const struct acl *users,
                    char refusal[AUTH_REFUSAL_MAX])
{
    const struct acl_user *u = acl_find(users, c->user, strlen(c->user));
    if (u == NULL) {
        snprintf(refusal, AUTH_REFUSAL_MAX,
                 "ERR user '%s', whom this connection authenticated as, was "
                 "deleted; connect and AUTH again",
                 c->user);
        c->authenticated = false;
        c->input_stopped = true; /* closed once the reply is out */
        return false;
    }
    c->acl_user = u;
    auth_perm_compile(u, &c->perm);
    c->auth_users = users;
    c->auth_generation = users->generation;
    return true;
}

bool auth_command_allowed(struct conn *c, const struct command_spec *spec,
                          uint32_t argc, const struct resp_arg *argv,
                          char refusal[AUTH_REFUSAL_MAX])
{
    if (c->kind == CONN_LINK || (spec->flags & CMD_NOAUTH))
        return true;
    const struct acl *users = auth_users(c->server);
    if ((c->auth_users != users || c->auth_generation != users->generation) &&
        !refresh(c, users, refusal))
        return false;
    if (c->perm.all_commands && c->perm.all_keys)
        return true;
    return auth_perm_check(&c->perm, c->acl_user, spec, argc, argv, refusal);
}

enum auth_result auth_login(struct conn *c, const struct resp_arg *user,
                            const struct resp_arg *password)
{
    const struct acl *users = auth_users(c->server);
    if (user == NULL && open_to_all(default_user(c->server)))
        return AUTH_NO_PASSWORD;
    const char *name = user ? user->ptr : "default";
    size_t size = user ? user->size : 7;
    const struct acl_user *u = acl_find(users, name, size);
    if (u == NULL || !acl_user_password_ok(u, password->ptr, password->size))
        return AUTH_WRONG;
    snprintf(c->user, sizeof(c->user), "%s", u->name);
    c->authenticated = true;
    c->auth_users = NULL;
    return AUTH_OK;
}

bool auth_protected(const struct server *s)
{
    return s->config.protected_mode && open_to_all(default_user(s));
}

/* ------------------------------------------------------------ ACL writes */

/* "+name" or "-name" naming a command this table does not have. */
static bool unknown_command_rule(const struct resp_arg *r)
{
    if (r->size < 2 || (r->ptr[0] != '+' && r->ptr[0] != '-') ||
        r->ptr[1] == '@' || memchr(r->ptr, '|', r->size))
        return false;
    struct resp_arg name = {r->ptr + 1, r->size - 1};
    return command_lookup(&name) == NULL;
}

bool auth_acl_write_check(const struct server *s, uint32_t argc,
                          const struct resp_arg *argv, struct resp_buf *out)
{
    if (argc < 3)
        return true; /* the store's parser answers the arity error */
    if (command_word_is(&argv[1], "deluser")) {
        for (uint32_t i = 2; i < argc; i++)
            if (argv[i].size == 7 && !memcmp(argv[i].ptr, "default", 7)) {
                resp_write_error(out,
                                 "ERR The 'default' user cannot be removed");
                return false;
            }
        return true;
    }
    for (uint32_t i = 3; i < argc; i++)
        if (unknown_command_rule(&argv[i])) {
            char shown[129];
            resp_write_errorf(
                out, ERR_UNKNOWN_RULE,
                resp_show(shown, sizeof(shown), argv[i].ptr, argv[i].size));
            return false;
        }
    char err[ACL_ERROR_MAX];
    if (acl_setuser_check(auth_users(s), argv[2].ptr, argv[2].size, argc - 3,
                          argv + 3, err) != 0) {
        resp_write_errorf(out, "ERR %s", err);
        return false;
    }
    return true;
}

void auth_acl_base(const struct server *s, struct kv_write *w)
{
    if (w->type != KV_CMD_ACL_SETUSER && w->type != KV_CMD_ACL_DELUSER)
        return;
    if (s->kv->acl.initialized)
        return;
    w->acl_base = s->auth.base;
    w->acl_base_size = s->auth.base_size;
}

/* ------------------------------------------------------------ own users */

#define FILE_RULES_MAX 1024u

/* One line of an ACL file: "user <name> <rules...>". */
static int load_line(struct acl *a, char *line, const char *path, int lineno,
                     struct cohort_err *err)
{
    struct resp_arg words[FILE_RULES_MAX + 2];
    uint32_t n = 0;
    for (char *w = strtok(line, " \t\r\n"); w; w = strtok(NULL, " \t\r\n")) {
        if (n == FILE_RULES_MAX + 2)
            return err_set(err, -COHORT_ECONFIG,
                           "--acl-file %s line %d: more than %u rules", path,
                           lineno, FILE_RULES_MAX);
        words[n++] = (struct resp_arg){w, strlen(w)};
    }
    if (n == 0 || words[0].ptr[0] == '#')
        return 0;
    if (n < 2 || strcmp(words[0].ptr, "user") != 0)
        return err_set(err, -COHORT_ECONFIG,
                       "--acl-file %s line %d: expected 'user <name> "
                       "<rules...>', as in a Redis ACL file",
                       path, lineno);
    if (acl_find(a, words[1].ptr, words[1].size))
        return err_set(err, -COHORT_ECONFIG,
                       "--acl-file %s line %d: user '%s' is defined twice; "
                       "a user can only be defined once",
                       path, lineno, words[1].ptr);
    for (uint32_t i = 2; i < n; i++) {
        if (!unknown_command_rule(&words[i]))
            continue;
        /* Escaped as ACL SETUSER's errors are: the file's bytes, an ESC
         * say, must not reach the log or terminal raw. */
        char shown[129];
        return err_set(
            err, -COHORT_ECONFIG,
            "--acl-file %s line %d: Error in ACL SETUSER "
            "modifier '%s': Unknown command or category name "
            "in ACL",
            path, lineno,
            resp_show(shown, sizeof(shown), words[i].ptr, words[i].size));
    }
    char why[ACL_ERROR_MAX];
    if (acl_setuser(a, words[1].ptr, words[1].size, n - 2, words + 2, why))
        return err_set(err, -COHORT_ECONFIG, "--acl-file %s line %d: %s", path,
                       lineno, why);
    return 0;
}

static int load_file(struct acl *a, const char *path, struct cohort_err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return err_set(err, -COHORT_ECONFIG,
                       "--acl-file %s: %s; give a file the server can read, "
                       "one 'user <name> <rules...>' line per user",
                       path, strerror(errno));
    char line[16384];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        if (strlen(line) == sizeof(line) - 1 && line[sizeof(line) - 2] != '\n')
            rc = err_set(err, -COHORT_ECONFIG,
                         "--acl-file %s line %d: longer than %zu bytes", path,
                         lineno, sizeof(line) - 2);
        else
            rc = load_line(a, line, path, lineno, err);
    }
    fclose(f);
    return rc;
}

static int set_default(struct acl *a, const char *password,
                       struct cohort_err *err)
{
    char pass[1024];
    if (password && strlen(password) >= sizeof(pass) - 1)
        return err_set(err, -COHORT_ECONFIG, "--requirepass is over %zu bytes",
                       sizeof(pass) - 2);
    snprintf(pass, sizeof(pass), ">%s", password ? password : "");
    struct resp_arg rules[5] = {
        {"on", 2},    {password ? pass : "nopass", password ? strlen(pass) : 6},
        {"~*", 2},    {"&*", 2},
        {"+@all", 5},
    };
    char why[ACL_ERROR_MAX];
    if (acl_setuser(a, "default", 7, 5, rules, why) != 0)
        return err_set(err, -COHORT_ECONFIG, "the default user: %s", why);
    return 0;
}

int auth_init(struct auth *a, const struct server_config *config,
              struct cohort_err *err)
{
    memset(a, 0, sizeof(*a));
    acl_init(&a->bootstrap);
    if (config->acl_file && config->password)
        return err_set(err, -COHORT_ECONFIG,
                       "--requirepass and --acl-file are both set; give the "
                       "default user its password in the ACL file (user "
                       "default on >password ~* &* +@all) and drop "
                       "--requirepass");
    int rc = 0;
    if (config->acl_file)
        rc = load_file(&a->bootstrap, config->acl_file, err);
    if (rc == 0 && !acl_find(&a->bootstrap, "default", 7))
        rc = set_default(&a->bootstrap, config->password, err);
    if (rc != 0)
        return rc;
    a->base_size = acl_encoded_size(&a->bootstrap);
    a->base = malloc(a->base_size);
    if (a->base == NULL)
        return err_set(err, -COHORT_ENOMEM, "allocate the users");
    acl_encode(&a->bootstrap, a->base, a->base_size);
    return 0;
}

void auth_deinit(struct auth *a)
{
    acl_deinit(&a->bootstrap);
    free(a->base);
    a->base = NULL;
}
