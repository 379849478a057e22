/* kv/acl: ACL SETUSER's rules as Redis words them, the canonical form ACL
 * LIST shows, passwords, key patterns (Redis's glob), the encoding that
 * snapshots and the log carry, and the digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cohort.h"
#include "kv/acl.h"

#define RULES_MAX 300

/* SHA-256("pw") and SHA-256("other"), as `printf pw | sha256sum` prints. */
#define PW_HASH                                                                \
    "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
#define OTHER_HASH                                                             \
    "d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa"

/* Split a line at spaces into rules. */
static uint32_t split(const char *line, struct resp_arg *out)
{
    uint32_t n = 0;
    const char *p = line;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        assert_true(n < RULES_MAX);
        out[n++] = (struct resp_arg){start, (size_t)(p - start)};
    }
    return n;
}

static char err[ACL_ERROR_MAX];

/* ACL SETUSER name <line>: returns 0 or the error code (err has the text). */
static int setuser(struct acl *a, const char *name, const char *line)
{
    struct resp_arg rules[RULES_MAX];
    uint32_t n = split(line, rules);
    err[0] = '\0';
    return acl_setuser(a, name, strlen(name), n, rules, err);
}

/* What ACL LIST shows for the user (a static buffer). */
static const char *describe(const struct acl *a, const char *name)
{
    static char text[8192];
    const struct acl_user *u = acl_find(a, name, strlen(name));
    if (u == NULL)
        return "(none)";
    struct resp_buf b;
    resp_buf_init(&b, 2);
    acl_user_describe(u, &b);
    assert_true(b.ok && b.size < sizeof(text));
    memcpy(text, b.data, b.size);
    text[b.size] = '\0';
    resp_buf_deinit(&b);
    return text;
}

static bool password_ok(const struct acl *a, const char *name, const char *pw)
{
    const struct acl_user *u = acl_find(a, name, strlen(name));
    assert_non_null(u);
    return acl_user_password_ok(u, pw, strlen(pw));
}

static void new_user_is_off_with_nothing_allowed(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_false(a.initialized);
    assert_int_equal(a.digest, 0);
    assert_int_equal(setuser(&a, "alice", ""), 0);
    assert_true(a.initialized);
    assert_int_not_equal(a.digest, 0);
    assert_string_equal(describe(&a, "alice"),
                        "user alice off resetchannels -@all");
    assert_false(password_ok(&a, "alice", ""));
    acl_deinit(&a);
}

static void rules_build_the_user_acl_list_shows(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(
        setuser(&a, "alice", "on >pw ~cache:* ~app:* &* +@read -get +set"), 0);
    assert_string_equal(describe(&a, "alice"),
                        "user alice on #" PW_HASH
                        " ~cache:* ~app:* &* -@all +@read -get +set");
    /* Rules add to what is there; ~* is allkeys and takes the patterns'
     * place. */
    assert_int_equal(setuser(&a, "alice", "resetkeys allkeys +@all"), 0);
    assert_string_equal(describe(&a, "alice"),
                        "user alice on #" PW_HASH " ~* &* +@all");
    assert_int_equal(setuser(&a, "default", "reset on nopass ~* &* +@all"), 0);
    assert_string_equal(describe(&a, "default"),
                        "user default on nopass ~* &* +@all");
    acl_deinit(&a);
}

static void keywords_and_categories_ignore_case(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(setuser(&a, "u", "ON NoPass AllKeys +@READ -GET"), 0);
    assert_string_equal(describe(&a, "u"),
                        "user u on nopass ~* resetchannels -@all +@read -get");
    acl_deinit(&a);
}

static void passwords_are_kept_as_sha256_and_checked(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(setuser(&a, "u", "on >pw >other >pw"), 0);
    assert_true(password_ok(&a, "u", "pw"));
    assert_true(password_ok(&a, "u", "other"));
    assert_false(password_ok(&a, "u", "wrong"));
    assert_false(password_ok(&a, "u", ""));
    assert_int_equal(setuser(&a, "u", "<pw"), 0);
    assert_false(password_ok(&a, "u", "pw"));
    assert_int_equal(setuser(&a, "u", "!" OTHER_HASH " #" PW_HASH), 0);
    assert_true(password_ok(&a, "u", "pw"));
    assert_false(password_ok(&a, "u", "other"));
    /* off refuses every password; nopass takes any; resetpass none. */
    assert_int_equal(setuser(&a, "u", "off"), 0);
    assert_false(password_ok(&a, "u", "pw"));
    assert_int_equal(setuser(&a, "u", "on nopass"), 0);
    assert_true(password_ok(&a, "u", "anything"));
    assert_string_equal(describe(&a, "u"),
                        "user u on nopass resetchannels -@all");
    /* A password takes nopass away, as in Redis. */
    assert_int_equal(setuser(&a, "u", ">pw"), 0);
    assert_false(password_ok(&a, "u", "anything"));
    assert_int_equal(setuser(&a, "u", "resetpass"), 0);
    assert_false(password_ok(&a, "u", "pw"));
    acl_deinit(&a);
}

static void errors_are_redis_words_and_change_nothing(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(setuser(&a, "u", "on >pw allkeys"), 0);
    uint64_t digest = a.digest;
    uint64_t generation = a.generation;
    static const struct {
        const char *rules;
        const char *error;
    } cases[] = {
        {"+@nosuch", "Error in ACL SETUSER modifier '+@nosuch': Unknown "
                     "command or category name in ACL"},
        {"bogus", "Error in ACL SETUSER modifier 'bogus': Syntax error"},
        {"on ~foo", "Error in ACL SETUSER modifier '~foo': Adding a pattern "
                    "after the * pattern (or the 'allkeys' flag) is not valid "
                    "and does not have any effect. Try 'resetkeys' to start "
                    "with an empty list of patterns"},
        {"<nope", "Error in ACL SETUSER modifier '<nope': The password you are "
                  "trying to remove from the user does not exist"},
        {"#abc", "Error in ACL SETUSER modifier '#abc': The password hash must "
                 "be exactly 64 characters and contain only lowercase "
                 "hexadecimal characters"},
        {"+get|x", "Error in ACL SETUSER modifier '+get|x': subcommand rules "
                   "(+command|subcommand) are not supported; allow or deny the "
                   "whole command"},
        {"+ge$t", "Error in ACL SETUSER modifier '+ge$t': Unknown command or "
                  "category name in ACL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(setuser(&a, "u", cases[i].rules), -COHORT_EINVAL);
        assert_string_equal(err, cases[i].error);
        assert_int_equal(a.digest, digest);
        assert_int_equal(a.generation, generation);
        assert_true(password_ok(&a, "u", "pw"));
    }
    /* A user whose rules fail is not created. */
    assert_int_equal(setuser(&a, "v", "on bogus"), -COHORT_EINVAL);
    assert_null(acl_find(&a, "v", 1));
    /* Names: printable, no spaces, at most ACL_NAME_MAX bytes. */
    struct resp_arg none[1];
    assert_int_equal(acl_setuser(&a, "a b", 3, 0, none, err), -COHORT_EINVAL);
    assert_int_equal(acl_setuser(&a, "", 0, 0, none, err), -COHORT_EINVAL);
    char long_name[ACL_NAME_MAX + 1];
    memset(long_name, 'n', sizeof(long_name));
    assert_int_equal(acl_setuser(&a, long_name, ACL_NAME_MAX + 1, 0, none, err),
                     -COHORT_EINVAL);
    assert_int_equal(acl_setuser(&a, long_name, ACL_NAME_MAX, 0, none, err), 0);
    /* The dry run says the same and changes nothing. */
    struct resp_arg rules[2];
    uint32_t n = split("on +@nosuch", rules);
    generation = a.generation;
    assert_int_equal(acl_setuser_check(&a, "w", 1, n, rules, err),
                     -COHORT_EINVAL);
    n = split("on", rules);
    assert_int_equal(acl_setuser_check(&a, "w", 1, n, rules, err), 0);
    assert_null(acl_find(&a, "w", 1));
    assert_int_equal(a.generation, generation);
    acl_deinit(&a);
}

static void a_later_rule_replaces_one_with_the_same_target(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(setuser(&a, "u", "+get -get +@read +set -@read"), 0);
    assert_string_equal(describe(&a, "u"),
                        "user u off resetchannels -@all -get +set -@read");
    assert_int_equal(setuser(&a, "u", "+@all -@admin"), 0);
    assert_string_equal(describe(&a, "u"),
                        "user u off resetchannels +@all -@admin");
    assert_int_equal(setuser(&a, "u", "nocommands"), 0);
    assert_string_equal(describe(&a, "u"), "user u off resetchannels -@all");
    assert_int_equal(setuser(&a, "u", "on >pw ~k* &c +get reset"), 0);
    assert_string_equal(describe(&a, "u"), "user u off resetchannels -@all");
    acl_deinit(&a);
}

static void limits_are_errors(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    char line[8192];
    size_t used = 0;
    for (int i = 0; i < 33; i++)
        used += (size_t)snprintf(line + used, sizeof(line) - used, ">p%d ", i);
    assert_int_equal(setuser(&a, "u", line), -COHORT_EINVAL);
    assert_non_null(strstr(err, "too many passwords"));
    used = 0;
    for (int i = 0; i < 129; i++)
        used += (size_t)snprintf(line + used, sizeof(line) - used, "~k%d ", i);
    assert_int_equal(setuser(&a, "u", line), -COHORT_EINVAL);
    assert_non_null(strstr(err, "too many patterns"));
    acl_deinit(&a);
}

static void redis_glob(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *string;
        bool match;
    } cases[] = {
        {"*", "", true},
        {"*", "anything", true},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"cache:*", "cache:1", true},
        {"cache:*", "cach", false},
        {"[abc]x", "bx", true},
        {"[abc]x", "dx", false},
        {"[^abc]x", "dx", true},
        {"[^abc]x", "ax", false},
        {"[a-c]", "b", true},
        {"[c-a]", "b", true},
        {"[a-c]", "d", false},
        {"\\*", "*", true},
        {"\\*", "a", false},
        {"a*b*c", "axxbyyc", true},
        {"a*b*c", "axxbyy", false},
        {"[ab", "a", true},
        {"h\\[llo", "h[llo", true},
        {"", "", true},
        {"", "a", false},
        {"**a", "ba", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = acl_glob_match(cases[i].pattern, strlen(cases[i].pattern),
                                  cases[i].string, strlen(cases[i].string));
        if (got != cases[i].match)
            fail_msg("glob '%s' against '%s': got %d", cases[i].pattern,
                     cases[i].string, got);
    }
    /* Many stars against a long key that does not match return (the
     * skip-longer-matches rule keeps it from going exponential). */
    char key[65536];
    memset(key, 'a', sizeof(key));
    const char *p = "*a*a*a*a*a*a*a*a*a*a*a*b";
    assert_false(acl_glob_match(p, strlen(p), key, sizeof(key)));
}

static void key_patterns_admit_keys(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(setuser(&a, "u", "~cache:* ~app:?"), 0);
    const struct acl_user *u = acl_find(&a, "u", 1);
    assert_true(acl_user_key_ok(u, "cache:x", 7));
    assert_true(acl_user_key_ok(u, "app:1", 5));
    assert_false(acl_user_key_ok(u, "app:12", 6));
    assert_false(acl_user_key_ok(u, "other", 5));
    assert_int_equal(setuser(&a, "u", "allkeys"), 0);
    u = acl_find(&a, "u", 1);
    assert_true(acl_user_key_ok(u, "other", 5));
    assert_int_equal(setuser(&a, "u", "resetkeys"), 0);
    u = acl_find(&a, "u", 1);
    assert_false(acl_user_key_ok(u, "cache:x", 7));
    acl_deinit(&a);
}

static void deluser_and_default(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(acl_set_default(&a), 0);
    assert_string_equal(describe(&a, "default"),
                        "user default on nopass ~* &* +@all");
    assert_int_equal(setuser(&a, "bob", "on"), 0);
    assert_int_equal(a.user_count, 2);
    assert_true(acl_deluser(&a, "bob", 3));
    assert_false(acl_deluser(&a, "bob", 3));
    assert_int_equal(a.user_count, 1);
    acl_deinit(&a);
}

/* Encode a, decode into a fresh acl: the same users and digest. */
static void round_trip(const struct acl *a)
{
    size_t size = acl_encoded_size(a);
    uint8_t *buf = malloc(size);
    acl_encode(a, buf, size);
    struct acl b;
    acl_init(&b);
    assert_int_equal(acl_decode(&b, buf, size, err), 0);
    assert_true(b.initialized);
    assert_int_equal(b.digest, a->digest);
    assert_int_equal(b.user_count, a->user_count);
    for (uint32_t i = 0; i < a->user_count; i++) {
        char expect[8192];
        snprintf(expect, sizeof(expect), "%s", describe(a, a->users[i]->name));
        assert_string_equal(describe(&b, a->users[i]->name), expect);
    }
    /* Every strict prefix is refused, and b is left as it was. */
    uint64_t digest = b.digest;
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal(acl_decode(&b, buf, cut, err), -COHORT_ECORRUPT);
    assert_int_equal(b.digest, digest);
    acl_deinit(&b);
    free(buf);
}

static void encoding_round_trips_and_refuses_damage(void **state)
{
    (void)state;
    struct acl a;
    acl_init(&a);
    assert_int_equal(acl_set_default(&a), 0);
    assert_int_equal(setuser(&a, "zed", "on >pw ~a* ~b &c -@all +get"), 0);
    assert_int_equal(setuser(&a, "amy", "on nopass allkeys +@all -@admin"), 0);
    round_trip(&a);
    /* Users out of order are refused: swap the last two by hand. */
    struct acl b;
    acl_init(&b);
    assert_int_equal(setuser(&b, "b", "on"), 0);
    size_t size_b = acl_encoded_size(&b);
    struct acl c;
    acl_init(&c);
    assert_int_equal(setuser(&c, "a", "on"), 0);
    size_t size_c = acl_encoded_size(&c);
    uint8_t buf[512];
    acl_encode(&b, buf, size_b);
    acl_encode(&c, buf + size_b, size_c);
    memmove(buf + size_b, buf + size_b + 4, size_c - 4); /* drop c's count */
    buf[0] = 2;
    struct acl d;
    acl_init(&d);
    assert_int_equal(acl_decode(&d, buf, size_b + size_c - 4, err),
                     -COHORT_ECORRUPT);
    assert_string_equal(err, "users out of order");
    acl_deinit(&b);
    acl_deinit(&c);
    acl_deinit(&d);
    acl_deinit(&a);
}

static void digest_depends_on_the_users_not_the_history(void **state)
{
    (void)state;
    struct acl a, b;
    acl_init(&a);
    acl_init(&b);
    assert_int_equal(setuser(&a, "x", "on >pw"), 0);
    assert_int_equal(setuser(&a, "y", "on +get"), 0);
    assert_int_equal(setuser(&b, "y", "on +set"), 0);
    assert_int_equal(setuser(&b, "x", "on >other"), 0);
    assert_int_not_equal(a.digest, b.digest);
    assert_int_equal(setuser(&b, "y", "+get -set"), 0);
    assert_int_equal(setuser(&b, "x", "<other >pw"), 0);
    /* y has "-set" where a has nothing: still different. */
    assert_int_not_equal(a.digest, b.digest);
    assert_int_equal(setuser(&b, "y", "-@all +get"), 0);
    assert_int_equal(a.digest, b.digest);
    /* An empty initialized acl is not the uninitialized one. */
    assert_true(acl_deluser(&a, "x", 1));
    assert_true(acl_deluser(&a, "y", 1));
    assert_true(a.initialized);
    assert_int_not_equal(a.digest, 0);
    acl_deinit(&a);
    acl_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_user_is_off_with_nothing_allowed),
        cmocka_unit_test(rules_build_the_user_acl_list_shows),
        cmocka_unit_test(keywords_and_categories_ignore_case),
        cmocka_unit_test(passwords_are_kept_as_sha256_and_checked),
        cmocka_unit_test(errors_are_redis_words_and_change_nothing),
        cmocka_unit_test(a_later_rule_replaces_one_with_the_same_target),
        cmocka_unit_test(limits_are_errors),
        cmocka_unit_test(redis_glob),
        cmocka_unit_test(key_patterns_admit_keys),
        cmocka_unit_test(deluser_and_default),
        cmocka_unit_test(encoding_round_trips_and_refuses_damage),
        cmocka_unit_test(digest_depends_on_the_users_not_the_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
