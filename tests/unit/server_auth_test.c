/* server/auth's pure part: a user's rules compiled against the command
 * table (categories, commands, subcommands, the last rule winning) and the
 * check of a command's keys against its patterns, with Redis's NOPERM
 * texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kv/acl.h"
#include "server/auth.h"
#include "server/command.h"

#define ARGS_MAX 8

struct cmd {
    uint32_t argc;
    struct resp_arg argv[ARGS_MAX];
};

/* Split "SET k v" at spaces. */
static struct cmd parse(const char *text)
{
    static char copies[16][128];
    static unsigned next;
    char *buf = copies[next++ % 16];
    strcpy(buf, text);
    struct cmd c = {0};
    for (char *w = strtok(buf, " "); w && c.argc < ARGS_MAX;
         w = strtok(NULL, " "))
        c.argv[c.argc++] = (struct resp_arg){w, strlen(w)};
    return c;
}

/* Make user "u" from space-separated rules into a. */
static const struct acl_user *user(struct acl *a, const char *rules)
{
    struct cmd r = parse(rules);
    char err[ACL_ERROR_MAX];
    assert_int_equal(acl_setuser(a, "u", 1, r.argc, r.argv, err), 0);
    return acl_find(a, "u", 1);
}

/* Whether u may run text; the refusal in refusal. */
static bool may(const struct acl_user *u, const char *text,
                char refusal[AUTH_REFUSAL_MAX])
{
    struct auth_perm p;
    auth_perm_compile(u, &p);
    struct cmd c = parse(text);
    const struct command_spec *spec = command_lookup(&c.argv[0]);
    assert_non_null(spec);
    refusal[0] = '\0';
    return auth_perm_check(&p, u, spec, c.argc, c.argv, refusal);
}

static void categories_and_key_patterns(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    const struct acl_user *u = user(&a, "on >pw ~app:* +@read +@write");
    char why[AUTH_REFUSAL_MAX];
    assert_true(may(u, "GET app:1", why));
    assert_true(may(u, "SET app:1 v", why));
    assert_true(may(u, "MGET app:1 app:2", why));
    assert_false(may(u, "SET other v", why));
    assert_string_equal(why, "NOPERM No permissions to access a key");
    assert_false(may(u, "MSET app:1 a other b", why)); /* every key counts */
    assert_false(may(u, "INFO", why));
    assert_string_equal(
        why, "NOPERM User u has no permissions to run the 'info' command");
    assert_false(may(u, "ACL LIST", why));
    assert_string_equal(
        why, "NOPERM User u has no permissions to run the 'acl|list' command");
    assert_true(may(u, "AUTH u pw", why)); /* never refused, as Redis */
    acl_deinit(&a);
}

static void the_last_matching_rule_wins(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    const struct acl_user *u = user(&a, "on nopass allkeys +@read -get");
    char why[AUTH_REFUSAL_MAX];
    assert_false(may(u, "GET k", why));
    assert_true(may(u, "EXISTS k", why));
    assert_false(may(u, "SET k v", why));
    u = user(&a, "+get -@read");
    assert_false(may(u, "GET k", why)); /* -@read came after +get */
    u = user(&a, "+@all -@admin");
    assert_true(may(u, "SET k v", why));
    assert_false(may(u, "CONFIG GET timeout", why));
    assert_false(may(u, "ACL SETUSER x on", why));
    acl_deinit(&a);
}

static void cohort_req_is_judged_by_the_command_it_wraps(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    const struct acl_user *u = user(&a, "on nopass ~app:* +@read");
    char why[AUTH_REFUSAL_MAX];
    assert_true(may(u, "COHORT.REQ 1 1 GET app:1", why));
    assert_false(may(u, "COHORT.REQ 1 1 SET app:1 v", why));
    assert_string_equal(
        why, "NOPERM User u has no permissions to run the 'set' command");
    u = user(&a, "+@write");
    assert_false(may(u, "COHORT.REQ 1 2 SET other v", why));
    assert_string_equal(why, "NOPERM No permissions to access a key");
    acl_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(categories_and_key_patterns),
        cmocka_unit_test(the_last_matching_rule_wins),
        cmocka_unit_test(cohort_req_is_judged_by_the_command_it_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
