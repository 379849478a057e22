/* acl — users, their rules, the encoding and the digest. See acl.h. */
#include "kv/acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "common/hex.h"

static_assert(ACL_CAT_COUNT <= 32, "categories are a 32-bit mask");
static_assert(ACL_ERROR_MAX >= 2 * ACL_COMMAND_NAME_MAX + 256,
              "room to quote a rule in an error");

static const char *const category_names[ACL_CAT_COUNT] = {
    "keyspace",  "read",     "write",     "set",        "sortedset",
    "list",      "hash",     "string",    "bitmap",     "hyperloglog",
    "geo",       "stream",   "pubsub",    "admin",      "fast",
    "slow",      "blocking", "dangerous", "connection", "transaction",
    "scripting",
};

#define ERR_SYNTAX "Syntax error"
#define ERR_UNKNOWN "Unknown command or category name in ACL"
#define ERR_KEYS_AFTER_ALL                                                     \
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not "     \
    "valid and does not have any effect. Try 'resetkeys' to start with an "    \
    "empty list of patterns"
#define ERR_CHANNELS_AFTER_ALL                                                 \
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not " \
    "valid and does not have any effect. Try 'resetchannels' to start with "   \
    "an empty list of channels"
#define ERR_NO_SUCH_PASSWORD                                                   \
    "The password you are trying to remove from the user does not exist"
#define ERR_BAD_HASH                                                           \
    "The password hash must be exactly 64 characters and contain only "        \
    "lowercase hexadecimal characters"

const char *acl_category_name(unsigned id)
{
    return id < ACL_CAT_COUNT ? category_names[id] : NULL;
}

static bool same_word(const void *text, size_t size, const char *word)
{
    size_t n = strlen(word);
    if (size != n)
        return false;
    const uint8_t *p = text;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (b >= 'A' && b <= 'Z')
            b = (uint8_t)(b - 'A' + 'a');
        if (b != (uint8_t)word[i])
            return false;
    }
    return true;
}

int acl_category_find(const char *name, size_t size)
{
    for (unsigned i = 0; i < ACL_CAT_COUNT; i++)
        if (same_word(name, size, category_names[i]))
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------ users */

static void patterns_free(struct acl_pattern *p, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        free(p[i].bytes);
    free(p);
}

static void user_free(struct acl_user *u)
{
    if (u == NULL)
        return;
    free(u->name);
    free(u->passwords);
    for (uint32_t i = 0; i < u->rule_count; i++)
        free(u->rules[i]);
    free(u->rules);
    patterns_free(u->keys, u->key_count);
    patterns_free(u->channels, u->channel_count);
    free(u);
}

static struct acl_user *user_new(const void *name, size_t size)
{
    struct acl_user *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->name = malloc(size + 1);
    /* Lists are allocated to their limits once: a user is small, and the
     * rules never fail for want of memory halfway. */
    u->passwords = malloc(ACL_PASSWORDS_MAX * sizeof(*u->passwords));
    u->rules = calloc(ACL_COMMAND_RULES_MAX, sizeof(*u->rules));
    u->keys = calloc(ACL_PATTERNS_MAX, sizeof(*u->keys));
    u->channels = calloc(ACL_PATTERNS_MAX, sizeof(*u->channels));
    if (!u->name || !u->passwords || !u->rules || !u->keys || !u->channels) {
        user_free(u);
        return NULL;
    }
    memcpy(u->name, name, size);
    u->name[size] = '\0';
    return u;
}

static bool patterns_copy(struct acl_pattern *to,
                          const struct acl_pattern *from, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        to[i].size = from[i].size;
        to[i].bytes = malloc(from[i].size ? from[i].size : 1);
        if (to[i].bytes == NULL)
            return false;
        memcpy(to[i].bytes, from[i].bytes, from[i].size);
    }
    return true;
}

static struct acl_user *user_copy(const struct acl_user *from)
{
    struct acl_user *u = user_new(from->name, strlen(from->name));
    if (u == NULL)
        return NULL;
    u->flags = from->flags;
    u->password_count = from->password_count;
    memcpy(u->passwords, from->passwords,
           from->password_count * sizeof(*u->passwords));
    bool ok = true;
    for (uint32_t i = 0; i < from->rule_count && ok; i++) {
        u->rules[i] = strdup(from->rules[i]);
        ok = u->rules[i] != NULL;
        u->rule_count = i + 1;
    }
    u->key_count = from->key_count;
    u->channel_count = from->channel_count;
    ok = ok && patterns_copy(u->keys, from->keys, from->key_count) &&
         patterns_copy(u->channels, from->channels, from->channel_count);
    if (!ok) {
        user_free(u);
        return NULL;
    }
    return u;
}

/* ------------------------------------------------------------ passwords */

void acl_hash_password(const void *password, size_t size,
                       uint8_t out[ACL_HASH_SIZE])
{
    unsigned int n = 0;
    int rc = EVP_Digest(password, size, out, &n, EVP_sha256(), NULL);
    ASSERT(rc == 1 && n == ACL_HASH_SIZE); /* nothing to fail but memory */
}

static int find_hash(const struct acl_user *u, const uint8_t h[ACL_HASH_SIZE])
{
    for (uint32_t i = 0; i < u->password_count; i++)
        if (memcmp(u->passwords[i], h, ACL_HASH_SIZE) == 0)
            return (int)i;
    return -1;
}

bool acl_user_password_ok(const struct acl_user *u, const void *password,
                          size_t size)
{
    if (!(u->flags & ACL_USER_ON))
        return false;
    if (u->flags & ACL_USER_NOPASS)
        return true;
    uint8_t h[ACL_HASH_SIZE];
    acl_hash_password(password, size, h);
    uint8_t found = 0;
    for (uint32_t i = 0; i < u->password_count; i++) {
        uint8_t diff = 0;
        for (size_t k = 0; k < ACL_HASH_SIZE; k++)
            diff |= (uint8_t)(u->passwords[i][k] ^ h[k]);
        found |= (uint8_t)(diff == 0);
    }
    return found != 0;
}

/* ------------------------------------------------------------ glob */

/* Redis's stringmatchlen_impl(), bounds-checked (and "*" matches an empty
 * string): a '*' whose rest matches
 * nowhere in the string ends the search for every earlier '*' too
 * (skip_longer), which keeps many stars against a long key linear-ish. */
static bool glob(const uint8_t *p, size_t pn, const uint8_t *s, size_t sn,
                 bool *skip_longer, int nesting)
{
    if (nesting > 1000)
        return false;
    while (pn > 0 && sn > 0) {
        switch (p[0]) {
        case '*':
            while (pn > 1 && p[1] == '*') {
                p++;
                pn--;
            }
            if (pn == 1)
                return true;
            while (sn > 0) {
                if (glob(p + 1, pn - 1, s, sn, skip_longer, nesting + 1))
                    return true;
                if (*skip_longer)
                    return false;
                s++;
                sn--;
            }
            *skip_longer = true;
            return false;
        case '?':
            s++;
            sn--;
            break;
        case '[': {
            p++;
            pn--;
            bool negate = pn > 0 && p[0] == '^';
            if (negate) {
                p++;
                pn--;
            }
            bool match = false;
            for (;;) {
                if (pn == 0) {
                    p--; /* the loop's step below lands on the end */
                    pn++;
                    break;
                }
                if (p[0] == '\\' && pn >= 2) {
                    p++;
                    pn--;
                    match |= p[0] == s[0];
                } else if (p[0] == ']') {
                    break;
                } else if (pn >= 3 && p[1] == '-') {
                    uint8_t lo = p[0], hi = p[2];
                    if (lo > hi) {
                        uint8_t t = lo;
                        lo = hi;
                        hi = t;
                    }
                    match |= s[0] >= lo && s[0] <= hi;
                    p += 2;
                    pn -= 2;
                } else {
                    match |= p[0] == s[0];
                }
                p++;
                pn--;
            }
            if (negate)
                match = !match;
            if (!match)
                return false;
            s++;
            sn--;
            break;
        }
        case '\\':
            if (pn >= 2) {
                p++;
                pn--;
            }
            if (p[0] != s[0])
                return false;
            s++;
            sn--;
            break;
        default:
            if (p[0] != s[0])
                return false;
            s++;
            sn--;
            break;
        }
        p++;
        pn--;
        if (sn == 0)
            break;
    }
    /* Stars match the empty rest (unlike Redis for an empty key: its loop
     * never starts, so "*" does not match ""). */
    while (sn == 0 && pn > 0 && p[0] == '*') {
        p++;
        pn--;
    }
    return pn == 0 && sn == 0;
}

bool acl_glob_match(const void *pattern, size_t pattern_size,
                    const void *string, size_t string_size)
{
    bool skip_longer = false;
    return glob(pattern, pattern_size, string, string_size, &skip_longer, 0);
}

bool acl_user_key_ok(const struct acl_user *u, const void *key, size_t size)
{
    if (u->flags & ACL_USER_ALLKEYS)
        return true;
    for (uint32_t i = 0; i < u->key_count; i++)
        if (acl_glob_match(u->keys[i].bytes, u->keys[i].size, key, size))
            return true;
    return false;
}

/* ------------------------------------------------------------ rules */

/* One rule's failure: the error text (rule quoted) and the code. */
static int rule_error(char *err, const uint8_t *rule, size_t size,
                      const char *why)
{
    char shown[2 * ACL_COMMAND_NAME_MAX + 1];
    snprintf(err, ACL_ERROR_MAX, "Error in ACL SETUSER modifier '%s': %s",
             resp_show(shown, sizeof(shown), rule, size), why);
    return -COHORT_EINVAL;
}

static void passwords_add(struct acl_user *u, const uint8_t h[ACL_HASH_SIZE])
{
    u->flags &= ~ACL_USER_NOPASS;
    if (find_hash(u, h) >= 0)
        return;
    memcpy(u->passwords[u->password_count++], h, ACL_HASH_SIZE);
}

static int rule_password(struct acl_user *u, const uint8_t *rule, size_t size,
                         char *err)
{
    uint8_t h[ACL_HASH_SIZE];
    bool add = rule[0] == '>' || rule[0] == '#';
    if (rule[0] == '>' || rule[0] == '<')
        acl_hash_password(rule + 1, size - 1, h);
    else if (!hex_decode((const char *)rule + 1, size - 1, false, h,
                         ACL_HASH_SIZE))
        return rule_error(err, rule, size, ERR_BAD_HASH);
    if (!add) {
        int at = find_hash(u, h);
        if (at < 0)
            return rule_error(err, rule, size, ERR_NO_SUCH_PASSWORD);
        u->password_count--;
        memmove(u->passwords[at], u->passwords[at + 1],
                (u->password_count - (uint32_t)at) * ACL_HASH_SIZE);
        return 0;
    }
    if (find_hash(u, h) < 0 && u->password_count == ACL_PASSWORDS_MAX)
        return rule_error(err, rule, size,
                          "too many passwords for one user (at most 32)");
    passwords_add(u, h);
    return 0;
}

static void patterns_clear(struct acl_pattern *p, uint32_t *count)
{
    for (uint32_t i = 0; i < *count; i++) {
        free(p[i].bytes);
        p[i].bytes = NULL;
    }
    *count = 0;
}

/* ~pattern or &pattern. */
static int rule_pattern(struct acl_user *u, const uint8_t *rule, size_t size,
                        char *err)
{
    bool keys = rule[0] == '~';
    uint32_t all = keys ? ACL_USER_ALLKEYS : ACL_USER_ALLCHANNELS;
    struct acl_pattern *list = keys ? u->keys : u->channels;
    uint32_t *count = keys ? &u->key_count : &u->channel_count;
    const uint8_t *pat = rule + 1;
    size_t n = size - 1;
    if (u->flags & all)
        return rule_error(err, rule, size,
                          keys ? ERR_KEYS_AFTER_ALL : ERR_CHANNELS_AFTER_ALL);
    if (n == 1 && pat[0] == '*') {
        u->flags |= all;
        patterns_clear(list, count);
        return 0;
    }
    if (n > ACL_PATTERN_SIZE_MAX)
        return rule_error(err, rule, size,
                          "the pattern is over 1024 bytes, the most cohort "
                          "keeps");
    for (uint32_t i = 0; i < *count; i++)
        if (list[i].size == n && memcmp(list[i].bytes, pat, n) == 0)
            return 0;
    if (*count == ACL_PATTERNS_MAX)
        return rule_error(err, rule, size,
                          "too many patterns for one user (at most 128)");
    list[*count].bytes = malloc(n ? n : 1);
    if (list[*count].bytes == NULL)
        return -COHORT_ENOMEM;
    memcpy(list[*count].bytes, pat, n);
    list[*count].size = (uint32_t)n;
    (*count)++;
    return 0;
}

static void rules_clear(struct acl_user *u)
{
    for (uint32_t i = 0; i < u->rule_count; i++) {
        free(u->rules[i]);
        u->rules[i] = NULL;
    }
    u->rule_count = 0;
}

/* A command name: letters, digits, '.', '_', '-'. */
static bool command_name_ok(const uint8_t *name, size_t size)
{
    if (size == 0 || size > ACL_COMMAND_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++) {
        uint8_t b = name[i];
        bool ok = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                  (b >= '0' && b <= '9') || b == '.' || b == '_' || b == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* +@category -@category +command -command. */
static int rule_command(struct acl_user *u, const uint8_t *rule, size_t size,
                        char *err)
{
    const uint8_t *target = rule + 1;
    size_t n = size - 1;
    bool category = n > 0 && target[0] == '@';
    if (category && same_word(target + 1, n - 1, "all")) {
        rules_clear(u);
        if (rule[0] == '+')
            u->flags |= ACL_USER_ALLCOMMANDS;
        else
            u->flags &= ~ACL_USER_ALLCOMMANDS;
        return 0;
    }
    if (category && acl_category_find((const char *)target + 1, n - 1) < 0)
        return rule_error(err, rule, size, ERR_UNKNOWN);
    if (!category && memchr(target, '|', n))
        return rule_error(err, rule, size,
                          "subcommand rules (+command|subcommand) are not "
                          "supported; allow or deny the whole command");
    if (!category && !command_name_ok(target, n))
        return rule_error(err, rule, size, ERR_UNKNOWN);
    char text[ACL_COMMAND_NAME_MAX + 3];
    ASSERT(size < sizeof(text));
    for (size_t i = 0; i < size; i++) {
        uint8_t b = rule[i];
        text[i] = (char)(b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
    }
    text[size] = '\0';
    /* A later rule with the same target decides for every command the
     * earlier one named: the earlier one goes. */
    for (uint32_t i = 0; i < u->rule_count; i++) {
        if (strcmp(u->rules[i] + 1, text + 1) != 0)
            continue;
        free(u->rules[i]);
        memmove(&u->rules[i], &u->rules[i + 1],
                (u->rule_count - i - 1) * sizeof(u->rules[0]));
        u->rules[--u->rule_count] = NULL;
        break;
    }
    if (u->rule_count == ACL_COMMAND_RULES_MAX)
        return rule_error(err, rule, size,
                          "too many command rules for one user (at most "
                          "256); start again from +@all or -@all");
    u->rules[u->rule_count] = strdup(text);
    if (u->rules[u->rule_count] == NULL)
        return -COHORT_ENOMEM;
    u->rule_count++;
    return 0;
}

static void user_reset(struct acl_user *u)
{
    u->password_count = 0;
    patterns_clear(u->keys, &u->key_count);
    patterns_clear(u->channels, &u->channel_count);
    rules_clear(u);
    u->flags = 0; /* off, resetpass, resetkeys, resetchannels, -@all */
}

/* A rule that is one word. Returns 1 if rule is not one of them. */
static int rule_word(struct acl_user *u, const uint8_t *rule, size_t size)
{
    if (same_word(rule, size, "on")) {
        u->flags |= ACL_USER_ON;
    } else if (same_word(rule, size, "off")) {
        u->flags &= ~ACL_USER_ON;
    } else if (same_word(rule, size, "nopass")) {
        u->flags |= ACL_USER_NOPASS;
        u->password_count = 0;
    } else if (same_word(rule, size, "resetpass")) {
        u->flags &= ~ACL_USER_NOPASS;
        u->password_count = 0;
    } else if (same_word(rule, size, "allkeys")) {
        u->flags |= ACL_USER_ALLKEYS;
        patterns_clear(u->keys, &u->key_count);
    } else if (same_word(rule, size, "resetkeys")) {
        u->flags &= ~ACL_USER_ALLKEYS;
        patterns_clear(u->keys, &u->key_count);
    } else if (same_word(rule, size, "allchannels")) {
        u->flags |= ACL_USER_ALLCHANNELS;
        patterns_clear(u->channels, &u->channel_count);
    } else if (same_word(rule, size, "resetchannels")) {
        u->flags &= ~ACL_USER_ALLCHANNELS;
        patterns_clear(u->channels, &u->channel_count);
    } else if (same_word(rule, size, "allcommands")) {
        rules_clear(u);
        u->flags |= ACL_USER_ALLCOMMANDS;
    } else if (same_word(rule, size, "nocommands")) {
        rules_clear(u);
        u->flags &= ~ACL_USER_ALLCOMMANDS;
    } else if (same_word(rule, size, "reset")) {
        user_reset(u);
    } else if (same_word(rule, size, "sanitize-payload") ||
               same_word(rule, size, "skip-sanitize-payload") ||
               same_word(rule, size, "clearselectors")) {
        /* Accepted for compatibility: cohort has no RESTORE payloads and
         * no selectors, so they change nothing. */
    } else {
        return 1;
    }
    return 0;
}

static int rule_apply(struct acl_user *u, const struct resp_arg *arg, char *err)
{
    const uint8_t *rule = (const uint8_t *)arg->ptr;
    size_t size = arg->size;
    if (size == 0)
        return rule_error(err, rule, size, ERR_SYNTAX);
    if (rule_word(u, rule, size) == 0)
        return 0;
    switch (rule[0]) {
    case '>':
    case '<':
    case '#':
    case '!':
        return rule_password(u, rule, size, err);
    case '~':
    case '&':
        return rule_pattern(u, rule, size, err);
    case '+':
    case '-':
        return rule_command(u, rule, size, err);
    case '%':
        return rule_error(err, rule, size,
                          "read and write key permissions (%R~, %W~) are not "
                          "supported; use ~pattern");
    case '(':
        return rule_error(err, rule, size, "selectors are not supported");
    default:
        return rule_error(err, rule, size, ERR_SYNTAX);
    }
}

/* ------------------------------------------------------------ describing */

/* Every canonical rule of u, in the order that rebuilds it from a new user:
 * on|off, nopass or #hashes, key patterns, channel patterns, the command
 * base and rules. */
static void user_rules(const struct acl_user *u,
                       void (*emit)(void *ctx, const char *prefix,
                                    const void *data, size_t size),
                       void *ctx)
{
    emit(ctx, (u->flags & ACL_USER_ON) ? "on" : "off", NULL, 0);
    if (u->flags & ACL_USER_NOPASS)
        emit(ctx, "nopass", NULL, 0);
    for (uint32_t i = 0; i < u->password_count; i++) {
        char hex[2 * ACL_HASH_SIZE + 1];
        hex_encode(u->passwords[i], ACL_HASH_SIZE, hex);
        emit(ctx, "#", hex, 2 * ACL_HASH_SIZE);
    }
    if (u->flags & ACL_USER_ALLKEYS)
        emit(ctx, "~*", NULL, 0);
    for (uint32_t i = 0; i < u->key_count; i++)
        emit(ctx, "~", u->keys[i].bytes, u->keys[i].size);
    if (u->flags & ACL_USER_ALLCHANNELS)
        emit(ctx, "&*", NULL, 0);
    else if (u->channel_count == 0)
        emit(ctx, "resetchannels", NULL, 0);
    for (uint32_t i = 0; i < u->channel_count; i++)
        emit(ctx, "&", u->channels[i].bytes, u->channels[i].size);
    emit(ctx, (u->flags & ACL_USER_ALLCOMMANDS) ? "+@all" : "-@all", NULL, 0);
    for (uint32_t i = 0; i < u->rule_count; i++)
        emit(ctx, "", u->rules[i], strlen(u->rules[i]));
}

static void describe_emit(void *ctx, const char *prefix, const void *data,
                          size_t size)
{
    struct resp_buf *out = ctx;
    resp_write_raw(out, " ", 1);
    resp_write_raw(out, prefix, strlen(prefix));
    if (size > 0)
        resp_write_raw(out, data, size);
}

void acl_user_describe(const struct acl_user *u, struct resp_buf *out)
{
    resp_write_raw(out, "user ", 5);
    resp_write_raw(out, u->name, strlen(u->name));
    user_rules(u, describe_emit, out);
}

/* ------------------------------------------------------------ encoding */

/* One user: u32 argument count, then (u32 size, bytes) per argument, the
 * name first. Sized by a first pass (writer NULL). */
struct encoder {
    struct writer *w;
    size_t size;
    uint32_t count;
};

static void encode_emit(void *ctx, const char *prefix, const void *data,
                        size_t size)
{
    struct encoder *e = ctx;
    size_t n = strlen(prefix) + size;
    e->count++;
    e->size += 4 + n;
    if (e->w == NULL)
        return;
    writer_u32(e->w, (uint32_t)n);
    writer_bytes(e->w, prefix, strlen(prefix));
    if (size > 0)
        writer_bytes(e->w, data, size);
}

/* The size of u's encoding and its argument count. */
static size_t user_encoded_size(const struct acl_user *u, uint32_t *argc)
{
    struct encoder e = {.size = 4};
    encode_emit(&e, u->name, NULL, 0);
    user_rules(u, encode_emit, &e);
    *argc = e.count;
    return e.size;
}

static void user_encode(const struct acl_user *u, struct writer *w)
{
    uint32_t argc = 0;
    (void)user_encoded_size(u, &argc);
    writer_u32(w, argc);
    struct encoder e = {.w = w};
    encode_emit(&e, u->name, NULL, 0);
    user_rules(u, encode_emit, &e);
    ASSERT(e.count == argc);
}

static uint64_t user_digest(const struct acl_user *u)
{
    uint32_t argc = 0;
    size_t size = user_encoded_size(u, &argc);
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        return 0; /* the caller treats 0 as out of memory */
    struct writer w = writer_make(buf, size);
    user_encode(u, &w);
    ASSERT(w.ok && w.left == 0);
    uint64_t h = XXH3_64bits(buf, size);
    free(buf);
    return h ? h : 1;
}

size_t acl_encoded_size(const struct acl *a)
{
    size_t size = 4;
    uint32_t argc = 0;
    for (uint32_t i = 0; i < a->user_count; i++)
        size += user_encoded_size(a->users[i], &argc);
    return size;
}

void acl_encode(const struct acl *a, uint8_t *out, size_t size)
{
    struct writer w = writer_make(out, size);
    writer_u32(&w, a->user_count);
    for (uint32_t i = 0; i < a->user_count; i++)
        user_encode(a->users[i], &w);
    ASSERT(w.ok);
    ASSERT(w.left == 0);
}

/* ------------------------------------------------------------ the table */

static bool name_valid(const uint8_t *name, size_t size)
{
    if (size == 0 || size > ACL_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if (name[i] <= ' ' || name[i] > '~')
            return false;
    return true;
}

/* Bytewise order of a user's name and name/size. */
static int name_cmp(const char *a, const void *name, size_t size)
{
    size_t asize = strlen(a);
    int c = memcmp(a, name, asize < size ? asize : size);
    if (c != 0)
        return c;
    return asize < size ? -1 : asize > size ? 1 : 0;
}

/* The index of name, or where it would go (*found false). */
static uint32_t user_index(const struct acl *a, const void *name, size_t size,
                           bool *found)
{
    uint32_t lo = 0, hi = a->user_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(a->users[mid]->name, name, size);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const struct acl_user *acl_find(const struct acl *a, const void *name,
                                size_t size)
{
    bool found = false;
    uint32_t i = user_index(a, name, size, &found);
    return found ? a->users[i] : NULL;
}

void acl_init(struct acl *a)
{
    memset(a, 0, sizeof(*a));
    a->generation = 1;
}

void acl_clear(struct acl *a)
{
    for (uint32_t i = 0; i < a->user_count; i++)
        user_free(a->users[i]);
    a->user_count = 0;
    a->initialized = false;
    a->digest_sum = 0;
    a->digest = 0;
    a->generation++;
}

void acl_deinit(struct acl *a)
{
    acl_clear(a);
    free(a->users);
    a->users = NULL;
    a->user_capacity = 0;
}

/* Something changed: initialized, new digest, new generation. */
static void changed(struct acl *a)
{
    uint8_t sum[8];
    put_u64(sum, a->digest_sum);
    a->initialized = true;
    a->digest = XXH3_64bits_withSeed(sum, sizeof(sum), a->user_count);
    if (a->digest == 0)
        a->digest = 1;
    a->generation++;
}

static int reserve(struct acl *a, uint32_t count)
{
    if (!grow_array_u32((void **)&a->users, &a->user_capacity, count,
                        sizeof(*a->users), 8))
        return -COHORT_ENOMEM;
    return 0;
}

static int no_memory(char *err)
{
    snprintf(err, ACL_ERROR_MAX, "out of memory");
    return -COHORT_ENOMEM;
}

/* The user `name` would be after the rules, with its digest, or an error;
 * *index and *found say where it goes. The caller frees the result. */
static int user_after(const struct acl *a, const void *name, size_t size,
                      uint32_t rule_count, const struct resp_arg *rules,
                      char *err, struct acl_user **out, uint32_t *index,
                      bool *found)
{
    *out = NULL;
    if (!name_valid(name, size)) {
        snprintf(err, ACL_ERROR_MAX,
                 "Usernames can't contain spaces or null characters (cohort "
                 "takes printable ASCII, at most %u bytes)",
                 ACL_NAME_MAX);
        return -COHORT_EINVAL;
    }
    *index = user_index(a, name, size, found);
    if (!*found && a->user_count >= ACL_USERS_MAX) {
        snprintf(err, ACL_ERROR_MAX,
                 "too many users (at most %u); delete one first",
                 ACL_USERS_MAX);
        return -COHORT_EINVAL;
    }
    struct acl_user *u =
        *found ? user_copy(a->users[*index]) : user_new(name, size);
    if (u == NULL)
        return no_memory(err);
    for (uint32_t i = 0; i < rule_count; i++) {
        int rc = rule_apply(u, &rules[i], err);
        if (rc != 0) {
            user_free(u);
            return rc == -COHORT_ENOMEM ? no_memory(err) : rc;
        }
    }
    u->digest = user_digest(u);
    if (u->digest == 0) {
        user_free(u);
        return no_memory(err);
    }
    *out = u;
    return 0;
}

int acl_setuser_check(const struct acl *a, const void *name, size_t name_size,
                      uint32_t rule_count, const struct resp_arg *rules,
                      char *err)
{
    struct acl_user *u = NULL;
    uint32_t index = 0;
    bool found = false;
    int rc = user_after(a, name, name_size, rule_count, rules, err, &u, &index,
                        &found);
    user_free(u);
    return rc;
}

/* acl_setuser() without the digest and generation update. */
static int setuser(struct acl *a, const void *name, size_t name_size,
                   uint32_t rule_count, const struct resp_arg *rules, char *err)
{
    struct acl_user *u = NULL;
    uint32_t index = 0;
    bool found = false;
    int rc = user_after(a, name, name_size, rule_count, rules, err, &u, &index,
                        &found);
    if (rc != 0)
        return rc;
    if (found) {
        a->digest_sum -= a->users[index]->digest;
        user_free(a->users[index]);
        a->users[index] = u;
    } else {
        if (reserve(a, a->user_count + 1) != 0) {
            user_free(u);
            return no_memory(err);
        }
        memmove(&a->users[index + 1], &a->users[index],
                (a->user_count - index) * sizeof(a->users[0]));
        a->users[index] = u;
        a->user_count++;
    }
    a->digest_sum += u->digest;
    return 0;
}

int acl_setuser(struct acl *a, const void *name, size_t name_size,
                uint32_t rule_count, const struct resp_arg *rules, char *err)
{
    int rc = setuser(a, name, name_size, rule_count, rules, err);
    if (rc == 0)
        changed(a);
    return rc;
}

bool acl_deluser(struct acl *a, const void *name, size_t size)
{
    bool found = false;
    uint32_t i = user_index(a, name, size, &found);
    if (!found)
        return false;
    a->digest_sum -= a->users[i]->digest;
    user_free(a->users[i]);
    memmove(&a->users[i], &a->users[i + 1],
            (a->user_count - i - 1) * sizeof(a->users[0]));
    a->user_count--;
    changed(a);
    return true;
}

int acl_set_default(struct acl *a)
{
    static const struct resp_arg rules[] = {
        {"on", 2}, {"nopass", 6}, {"~*", 2}, {"&*", 2}, {"+@all", 5},
    };
    char err[ACL_ERROR_MAX];
    acl_clear(a);
    return acl_setuser(a, "default", 7, sizeof(rules) / sizeof(rules[0]), rules,
                       err);
}

/* ------------------------------------------------------------ decoding */

/* The most arguments one encoded user may have: name, on/off, nopass,
 * passwords, patterns, resetchannels, the base, rules. */
#define USER_ARGS_MAX                                                          \
    (5 + ACL_PASSWORDS_MAX + 2 * ACL_PATTERNS_MAX + 2 + ACL_COMMAND_RULES_MAX)

static int corrupt(char *err, const char *why)
{
    snprintf(err, ACL_ERROR_MAX, "%s", why);
    return -COHORT_ECORRUPT;
}

static int decode_user(struct acl *into, struct cursor *in,
                       struct resp_arg *args, char *err)
{
    uint32_t argc = cursor_u32(in);
    if (!in->ok || argc == 0 || argc > USER_ARGS_MAX)
        return corrupt(err, "bad argument count");
    for (uint32_t k = 0; k < argc; k++) {
        uint32_t n = cursor_u32(in);
        args[k].ptr = (const char *)cursor_take(in, n);
        args[k].size = n;
        if (!in->ok)
            return corrupt(err, "truncated");
    }
    if (into->user_count > 0 &&
        name_cmp(into->users[into->user_count - 1]->name, args[0].ptr,
                 args[0].size) >= 0)
        return corrupt(err, "users out of order");
    char why[ACL_ERROR_MAX];
    int rc = setuser(into, args[0].ptr, args[0].size, argc - 1, args + 1, why);
    if (rc == -COHORT_ENOMEM)
        return no_memory(err);
    if (rc != 0) {
        snprintf(err, ACL_ERROR_MAX, "%.*s", (int)(ACL_ERROR_MAX - 1), why);
        return -COHORT_ECORRUPT;
    }
    return 0;
}

int acl_decode(struct acl *a, const uint8_t *data, size_t size, char *err)
{
    struct cursor in = cursor_make(data, size);
    uint32_t count = cursor_u32(&in);
    if (!in.ok || count > ACL_USERS_MAX)
        return corrupt(err, "bad user count");
    struct acl fresh;
    acl_init(&fresh);
    struct resp_arg *args = malloc(USER_ARGS_MAX * sizeof(*args));
    int rc = args ? 0 : no_memory(err);
    for (uint32_t i = 0; i < count && rc == 0; i++)
        rc = decode_user(&fresh, &in, args, err);
    free(args);
    if (rc == 0 && in.left != 0)
        rc = corrupt(err, "trailing bytes");
    if (rc != 0) {
        acl_deinit(&fresh);
        return rc;
    }
    uint64_t generation = a->generation;
    acl_deinit(a);
    *a = fresh;
    a->generation = generation;
    changed(a); /* initialized, even with no users */
    return 0;
}
