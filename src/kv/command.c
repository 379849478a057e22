/* command — parsing, encoding, decoding, apply and query. See command.h. */
#include "kv/command.h"
#include "kv/listing.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"
#include "common/resp.h"
#include "kv/acl.h"
#include "kv/address.h"
#include "kv/incarnation.h"
#include "kv/strings.h"
#include "kv/txn.h"
#include "kv/expire.h"
#include "kv/session_cmd.h"

static_assert(KV_REPLY_OVERHEAD >= 256, "room for a bulk header or an error");

/* The commands the store knows. Arity as in Redis's command table: n means
 * exactly n arguments, -n at least n, the name included. */
enum command_id {
    CMD_SET,
    CMD_DEL,
    CMD_INCR,
    CMD_INCRBY,
    CMD_DECR,
    CMD_DECRBY,
    CMD_MSET,
    CMD_CAS,
    CMD_GET,
    CMD_MGET,
    CMD_EXISTS,
    CMD_DBSIZE,
    CMD_KVINFO,
    CMD_SCAN,
    CMD_KEYS,
    CMD_TYPE,
    CMD_RANDOMKEY,
    CMD_RANGE,
    CMD_REVS,
    CMD_TXN,
    CMD_EXEC,
    CMD_PUBLISH,
    CMD_EXPIRE,
    CMD_PERSIST,
    CMD_GETEX,
    CMD_SETEX,
    CMD_TTL,
    CMD_PTTL,
    CMD_COHORT_GET,
};

static const struct kv_command_def commands[] = {
    {"set", CMD_SET, KV_CLASS_WRITE, -3},
    {"del", CMD_DEL, KV_CLASS_WRITE, -2},
    {"incr", CMD_INCR, KV_CLASS_WRITE, 2},
    {"incrby", CMD_INCRBY, KV_CLASS_WRITE, 3},
    {"decr", CMD_DECR, KV_CLASS_WRITE, 2},
    {"decrby", CMD_DECRBY, KV_CLASS_WRITE, 3},
    {"mset", CMD_MSET, KV_CLASS_WRITE, -3},
    {"cas", CMD_CAS, KV_CLASS_WRITE, 4},
    {"get", CMD_GET, KV_CLASS_READ, 2},
    {"mget", CMD_MGET, KV_CLASS_READ, -2},
    {"exists", CMD_EXISTS, KV_CLASS_READ, -2},
    {"dbsize", CMD_DBSIZE, KV_CLASS_READ, 1},
    {"kvinfo", CMD_KVINFO, KV_CLASS_READ, 2},
    /* listing.h */
    {"scan", CMD_SCAN, KV_CLASS_READ, -2},
    {"keys", CMD_KEYS, KV_CLASS_READ, 2},
    {"type", CMD_TYPE, KV_CLASS_READ, 2},
    {"randomkey", CMD_RANDOMKEY, KV_CLASS_READ, 1},
    {"cohort.range", CMD_RANGE, KV_CLASS_READ, -3},
    {"cohort.revs", CMD_REVS, KV_CLASS_READ, -2},
    {"cohort.txn", CMD_TXN, KV_CLASS_WRITE, -4},
    {"cohort.exec", CMD_EXEC, KV_CLASS_WRITE, -3},
    {"publish", CMD_PUBLISH, KV_CLASS_WRITE, 3},
    {"expire", CMD_EXPIRE, KV_CLASS_WRITE, -3},
    {"pexpire", CMD_EXPIRE, KV_CLASS_WRITE, -3},
    {"expireat", CMD_EXPIRE, KV_CLASS_WRITE, -3},
    {"pexpireat", CMD_EXPIRE, KV_CLASS_WRITE, -3},
    {"persist", CMD_PERSIST, KV_CLASS_WRITE, 2},
    {"getex", CMD_GETEX, KV_CLASS_WRITE, -2},
    {"setex", CMD_SETEX, KV_CLASS_WRITE, 4},
    {"psetex", CMD_SETEX, KV_CLASS_WRITE, 4},
    {"ttl", CMD_TTL, KV_CLASS_READ, 2},
    {"pttl", CMD_PTTL, KV_CLASS_READ, 2},
    {"cohort.get", CMD_COHORT_GET, KV_CLASS_READ, -2},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static const struct kv_command_def *command_find(const struct resp_arg *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (resp_arg_is(name, commands[i].name))
            return &commands[i];
    }
    const struct kv_command_def *def = kv_strings_find(name);
    return def != NULL ? def : kv_session_find(name);
}

enum kv_class kv_command_class(const struct resp_arg *name)
{
    const struct kv_command_def *def = command_find(name);
    return def ? def->class : KV_CLASS_NONE;
}

bool kv_command_replies_map(const struct resp_arg *name)
{
    const struct kv_command_def *def = command_find(name);
    return def != NULL && def->id == CMD_KVINFO;
}

static bool arity_ok(const struct kv_command_def *def, uint32_t argc)
{
    if (def->arity > 0)
        return argc == (uint32_t)def->arity;
    return argc >= (uint32_t)-def->arity;
}

static void reply_arity_error(struct resp_buf *r, const char *name)
{
    resp_write_errorf(r, "ERR wrong number of arguments for '%s' command",
                      name);
}

bool kv_command_read_arity_ok(uint32_t argc, const struct resp_arg *argv)
{
    const struct kv_command_def *def = argc > 0 ? command_find(&argv[0]) : NULL;
    return def != NULL && def->class == KV_CLASS_READ && arity_ok(def, argc);
}

void kv_command_reply_arity(struct resp_buf *out, uint32_t argc,
                            const struct resp_arg *argv)
{
    const struct kv_command_def *def = argc > 0 ? command_find(&argv[0]) : NULL;
    reply_arity_error(out, def ? def->name : "?");
}

/* Redis's reply to a command it does not know, from processCommand(): the
 * name and the first arguments, each quoted and followed by a space, while
 * the list is under 128 bytes. */
static void reply_unknown_command(struct resp_buf *r, uint32_t argc,
                                  const struct resp_arg *argv)
{
    char args[256];
    size_t used = 0;
    args[0] = '\0';
    for (uint32_t i = 1; i < argc && used < 128; i++) {
        char arg[129];
        int n = snprintf(args + used, sizeof(args) - used, "'%s' ",
                         resp_show(arg, 128 - used + 1, argv[i].ptr,
                                   argv[i].ptr ? argv[i].size : 0));
        ASSERT(n >= 0 && (size_t)n < sizeof(args) - used);
        used += (size_t)n;
    }
    char name[129];
    resp_write_errorf(
        r,
        "ERR unknown command '%s', with args beginning with: "
        "%s",
        argc > 0 && argv[0].ptr
            ? resp_show(name, sizeof(name), argv[0].ptr, argv[0].size)
            : "",
        args);
}

static void reply_not_integer(struct resp_buf *r)
{
    resp_write_error(r, "ERR value is not an integer or out of range");
}

/* Whether argument i of a command of this type is a key, a value to store,
 * or neither (CAS's expected value), for the limit checks. */
static enum kv_arg_role arg_role(enum kv_command_type type, uint32_t i)
{
    switch (type) {
    case KV_CMD_SET:
        return i == 0 ? KV_ARG_KEY : KV_ARG_VALUE;
    case KV_CMD_DEL:
        /* A key over the limit cannot exist: deleting it is a no-op. */
        return KV_ARG_OTHER;
    case KV_CMD_INCRBY:
        return KV_ARG_KEY;
    case KV_CMD_MSET:
        return i % 2 == 0 ? KV_ARG_KEY : KV_ARG_VALUE;
    case KV_CMD_PUBLISH: /* channel, message */
        return i == 0 ? KV_ARG_KEY : KV_ARG_VALUE;
    case KV_CMD_CAS:
        return i == 0 ? KV_ARG_KEY : i == 2 ? KV_ARG_VALUE : KV_ARG_OTHER;
    case KV_CMD_PEXPIRE:
    case KV_CMD_PERSIST:
    case KV_CMD_GETEX:
        return i == 0 ? KV_ARG_KEY : KV_ARG_OTHER;
    case KV_CMD_EXPIRE_DUE:
    case KV_CMD_ACL_SETUSER:
    case KV_CMD_ACL_DELUSER:
    case KV_CMD_TXN:     /* its commands are checked one by one */
    case KV_CMD_ADDRESS: /* kv_address_apply() checks its own */
    case KV_CMD_INCARNATION:
        return KV_ARG_OTHER;
    default:
        if (kv_session_owns_type(type))
            return kv_session_arg_role(type, i);
        return kv_strings_arg_role(type, i);
    }
}

/* Check argument i against the limits; on failure write the error. */
static bool arg_within_limits(const struct kv_config *config,
                              enum kv_command_type type, uint32_t i,
                              size_t size, struct resp_buf *r)
{
    enum kv_arg_role role = arg_role(type, i);
    if (role == KV_ARG_KEY && size > config->key_size_max) {
        resp_write_errorf(
            r, "ERR key is %zu bytes; limit is %" PRIu32 " (max-key-size)",
            size, config->key_size_max);
        return false;
    }
    if (role == KV_ARG_VALUE && size > config->value_size_max) {
        resp_write_errorf(
            r, "ERR value is %zu bytes; limit is %" PRIu32 " (max-value-size)",
            size, config->value_size_max);
        return false;
    }
    return true;
}

/* SET key value [NX|XX] [GET], option parsing as Redis's
 * parseExtendedStringArgumentsOrReply(): options in any order and case, a
 * repeated option is harmless, NX with XX is a syntax error. */
static int parse_set(uint32_t argc, const struct resp_arg *argv,
                     struct kv_write *w, struct resp_buf *r)
{
    w->type = KV_CMD_SET;
    w->arg_count = 2;
    for (uint32_t j = 3; j < argc; j++) {
        const struct resp_arg *opt = &argv[j];
        if (resp_arg_is(opt, "nx") && !(w->flags & KV_SET_XX)) {
            w->flags |= KV_SET_NX;
            continue;
        }
        if (resp_arg_is(opt, "xx") && !(w->flags & KV_SET_NX)) {
            w->flags |= KV_SET_XX;
            continue;
        }
        if (resp_arg_is(opt, "get")) {
            w->flags |= KV_SET_GET;
            continue;
        }
        int rc = kv_expire_parse_set_option(argc, argv, &j, w, r);
        if (rc == 0)
            rc = kv_session_parse_set_option(argc, argv, &j, w, r);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        resp_write_error(r, "ERR syntax error");
        return -COHORT_EINVAL;
    }
    if ((w->flags & KV_SET_SESSION) &&
        (w->flags & (KV_SET_PX | KV_SET_PXAT | KV_SET_KEEPTTL))) {
        resp_write_error(r, "ERR SET with SESSION takes no EX, PX, EXAT, "
                            "PXAT or KEEPTTL: the key lives as long as the "
                            "session");
        return -COHORT_EINVAL;
    }
    return 0;
}

static int parse_delta(const struct kv_command_def *def,
                       const struct resp_arg *arg, struct kv_write *w,
                       struct resp_buf *r)
{
    int64_t n;
    if (!resp_parse_i64((const uint8_t *)arg->ptr, arg->size, &n)) {
        reply_not_integer(r);
        return -COHORT_EINVAL;
    }
    if (def->id == CMD_DECRBY) {
        /* As Redis: negating the smallest integer would overflow. */
        if (n == INT64_MIN) {
            resp_write_error(r, "ERR decrement would overflow");
            return -COHORT_EINVAL;
        }
        n = -n;
    }
    w->delta = n;
    return 0;
}

/* COHORT.TXN and COHORT.EXEC: the whole structure is checked now, and the
 * body must fit the log. */
static int parse_txn(const struct kv_config *config,
                     const struct kv_command_def *def, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *r)
{
    struct kv_txn t;
    bool exec = def->id == CMD_EXEC;
    if (kv_txn_parse(config, exec, argc - 1, argv + 1, &t, r) != 0 ||
        kv_txn_check_proposed_lists(config, &t, r) != 0)
        return -COHORT_EINVAL;
    w->type = KV_CMD_TXN;
    w->flags = (exec ? KV_TXN_EXEC : 0) | KV_VALUE_LIMIT;
    w->delta = config->value_size_max;
    w->arg_count = argc - 1;
    size_t size = kv_command_size(w);
    if (size > kv_txn_size_max(config)) {
        resp_write_errorf(r,
                          "ERR transaction is %zu bytes; limit is %zu "
                          "(max-value-size + max-key-size + %u)",
                          size, kv_txn_size_max(config), KV_TXN_SIZE_OVERHEAD);
        return -COHORT_EINVAL;
    }
    return 0;
}

/* Fill w for a command whose arity is already checked. */
static int parse_args(const struct kv_config *config,
                      const struct kv_command_def *def, uint32_t argc,
                      const struct resp_arg *argv, struct kv_write *w,
                      struct resp_buf *r)
{
    switch (def->id) {
    case CMD_SET:
        return parse_set(argc, argv, w, r);
    case CMD_DEL:
        w->type = KV_CMD_DEL;
        w->arg_count = argc - 1;
        return 0;
    case CMD_INCR:
    case CMD_DECR:
        w->type = KV_CMD_INCRBY;
        w->arg_count = 1;
        w->delta = def->id == CMD_INCR ? 1 : -1;
        return 0;
    case CMD_INCRBY:
    case CMD_DECRBY:
        w->type = KV_CMD_INCRBY;
        w->arg_count = 1;
        return parse_delta(def, &argv[2], w, r);
    case CMD_MSET:
        if (argc % 2 == 0) {
            reply_arity_error(r, def->name);
            return -COHORT_EINVAL;
        }
        w->type = KV_CMD_MSET;
        w->arg_count = argc - 1;
        return 0;
    case CMD_CAS:
        w->type = KV_CMD_CAS;
        w->arg_count = 3;
        return 0;
    case CMD_PUBLISH:
        if (argv[1].size >= 7 && !strncmp(argv[1].ptr, "cohort:", 7)) {
            char shown[65];
            resp_write_errorf(
                r,
                "ERR channel '%s' is reserved: cohort "
                "announces its own events on 'cohort:' "
                "channels; publish on another channel",
                resp_show(shown, sizeof(shown), argv[1].ptr, argv[1].size));
            return -COHORT_EINVAL;
        }
        w->type = KV_CMD_PUBLISH;
        w->arg_count = 2;
        return 0;
    case CMD_TXN:
    case CMD_EXEC:
        return parse_txn(config, def, argc, argv, w, r);
    case CMD_EXPIRE:
    case CMD_PERSIST:
    case CMD_GETEX:
    case CMD_SETEX:
        return kv_expire_parse(argc, argv, w, r);
    default:
        if (kv_session_owns(def))
            return kv_session_parse(def, argc, argv, w, r);
        return kv_strings_parse(config, def, argc, argv, w, r);
    }
}

bool kv_command_is_acl_write(uint32_t argc, const struct resp_arg *argv)
{
    return argc >= 2 && resp_arg_is(&argv[0], "acl") &&
           (resp_arg_is(&argv[1], "setuser") ||
            resp_arg_is(&argv[1], "deluser"));
}

/* ACL SETUSER name [rule ...], ACL DELUSER name [name ...]. The rules are
 * checked when applied (and by the server before it proposes). */
static int parse_acl(uint32_t argc, const struct resp_arg *argv,
                     struct kv_write *w, struct resp_buf *out)
{
    bool setuser = resp_arg_is(&argv[1], "setuser");
    if (argc < 3) {
        reply_arity_error(out, setuser ? "acl|setuser" : "acl|deluser");
        return -COHORT_EINVAL;
    }
    w->type = setuser ? KV_CMD_ACL_SETUSER : KV_CMD_ACL_DELUSER;
    w->args = argv + 2;
    w->arg_count = argc - 2;
    return 0;
}

static int parse_command(const struct kv_config *config, uint32_t argc,
                         const struct resp_arg *argv, struct kv_write *w,
                         struct resp_buf *out)
{
    memset(w, 0, sizeof(*w));
    if (kv_command_is_acl_write(argc, argv))
        return parse_acl(argc, argv, w, out);
    const struct kv_command_def *def = argc > 0 ? command_find(&argv[0]) : NULL;
    if (def == NULL || def->class != KV_CLASS_WRITE) {
        reply_unknown_command(out, argc, argv);
        return -COHORT_EINVAL;
    }
    if (!arity_ok(def, argc)) {
        reply_arity_error(out, def->name);
        return -COHORT_EINVAL;
    }
    w->args = argv + 1;
    int rc = parse_args(config, def, argc, argv, w, out);
    if (rc != 0)
        return rc;
    ASSERT(w->arg_count >= 1 || w->type == KV_CMD_FLUSHALL);
    ASSERT(w->arg_count <= argc - 1);
    for (uint32_t i = 0; i < w->arg_count; i++) {
        if (!arg_within_limits(config, w->type, i, w->args[i].size, out))
            return -COHORT_EINVAL;
    }
    return 0;
}

int kv_command_parse_logged(const struct kv_config *config, uint32_t argc,
                            const struct resp_arg *argv, struct kv_write *w,
                            struct resp_buf *out)
{
    return parse_command(config, argc, argv, w, out);
}

int kv_command_parse(const struct kv_config *config, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *out)
{
    int rc = parse_command(config, argc, argv, w, out);
    if (rc != 0 || kv_command_is_acl_write(argc, argv))
        return rc;
    /* Redis names the command as the client typed it (SETEX, not the SET
     * it becomes), in lower case: the table's name. */
    const struct kv_command_def *def = command_find(&argv[0]);
    ASSERT(def != NULL);
    return kv_expire_check_proposed(w, def->name, out);
}

/* What setting key to a value of value_size adds to kv_used_memory(). */
static uint64_t set_growth(const struct kv *kv, const struct resp_arg *key,
                           size_t value_size)
{
    const struct kv_record *old =
        kv_get(kv, (const uint8_t *)key->ptr, key->size);
    if (old == NULL)
        return kv_record_cost(key->size, value_size);
    return value_size > old->value_size ? value_size - old->value_size : 0;
}

/* The length of INCRBY's result, or 0 if it answers an error instead. */
static size_t incrby_result_size(const struct kv *kv, const struct kv_write *w)
{
    const struct kv_record *old =
        kv_get(kv, (const uint8_t *)w->args[0].ptr, w->args[0].size);
    int64_t value = 0;
    if (old != NULL &&
        !resp_parse_i64(kv_record_value(old), old->value_size, &value))
        return 0;
    if ((w->delta < 0 && value < 0 && w->delta < INT64_MIN - value) ||
        (w->delta > 0 && value > 0 && w->delta > INT64_MAX - value))
        return 0;
    char text[24];
    int n = snprintf(text, sizeof(text), "%" PRId64, value + w->delta);
    ASSERT(n > 0 && (size_t)n < sizeof(text));
    return (size_t)n;
}

static uint64_t txn_growth(const struct kv *kv, const struct kv_write *w)
{
    struct kv_txn t;
    struct resp_buf sink;
    resp_buf_init(&sink, 2);
    uint64_t growth = 0;
    if (kv_txn_parse(&kv->config, (w->flags & KV_TXN_EXEC) != 0, w->arg_count,
                     w->args, &t, &sink) == 0)
        growth = kv_txn_growth(kv, &t);
    resp_buf_deinit(&sink);
    return growth;
}

uint64_t kv_command_growth(const struct kv *kv, const struct kv_write *w)
{
    uint64_t growth = 0;
    size_t size = 0;
    switch (w->type) {
    case KV_CMD_SET:
    case KV_CMD_MSET:
        for (uint32_t i = 0; i + 1 < w->arg_count; i += 2)
            growth += set_growth(kv, &w->args[i], w->args[i + 1].size);
        return growth;
    case KV_CMD_INCRBY:
        size = incrby_result_size(kv, w);
        return size ? set_growth(kv, &w->args[0], size) : 0;
    case KV_CMD_CAS:
        if (kv_get(kv, (const uint8_t *)w->args[0].ptr, w->args[0].size) ==
            NULL)
            return 0; /* a missing key never matches */
        return set_growth(kv, &w->args[0], w->args[2].size);
    case KV_CMD_TXN:
        return txn_growth(kv, w);
    case KV_CMD_DEL:
    case KV_CMD_ACL_SETUSER:
    case KV_CMD_ACL_DELUSER:
    case KV_CMD_PUBLISH: /* retained in the bounded history, not the store */
    case KV_CMD_PEXPIRE:
    case KV_CMD_PERSIST:
    case KV_CMD_GETEX:
    case KV_CMD_EXPIRE_DUE:
    case KV_CMD_ADDRESS: /* a fixed table, not the store's keys */
    case KV_CMD_INCARNATION:
        return 0;
    default:
        if (kv_session_owns_type(w->type))
            return kv_session_growth(kv, w);
        return kv_strings_growth(kv, w);
    }
}

/* Whether argument i of w is a >password or <password rule, which goes to
 * the log as #hash or !hash. */
static bool is_password_rule(const struct kv_write *w, uint32_t i)
{
    const struct resp_arg *a = &w->args[i];
    return w->type == KV_CMD_ACL_SETUSER && i > 0 && a->size > 0 &&
           (a->ptr[0] == '>' || a->ptr[0] == '<');
}

static size_t arg_encoded_size(const struct kv_write *w, uint32_t i)
{
    return is_password_rule(w, i) ? 1 + 2 * ACL_HASH_SIZE : w->args[i].size;
}

size_t kv_command_size(const struct kv_write *w)
{
    size_t size = KV_COMMAND_HEADER_SIZE;
    if (kv_expire_has_delta(w->type, w->flags))
        size += 8;
    if (w->acl_base != NULL)
        size += 4 + w->acl_base_size;
    for (uint32_t i = 0; i < w->arg_count; i++)
        size += 4 + arg_encoded_size(w, i);
    return size;
}

static void write_password_rule(struct writer *out, const struct resp_arg *a)
{
    uint8_t hash[ACL_HASH_SIZE];
    acl_hash_password(a->ptr + 1, a->size - 1, hash);
    char text[1 + 2 * ACL_HASH_SIZE + 1];
    text[0] = a->ptr[0] == '>' ? '#' : '!';
    for (size_t k = 0; k < ACL_HASH_SIZE; k++)
        snprintf(text + 1 + 2 * k, 3, "%02x", hash[k]);
    writer_u32(out, 1 + 2 * ACL_HASH_SIZE);
    writer_bytes(out, text, 1 + 2 * ACL_HASH_SIZE);
}

size_t kv_command_encode(const struct kv_write *w, uint8_t *body,
                         size_t body_size_max)
{
    ASSERT(body_size_max >= kv_command_size(w));
    struct writer out = writer_make(body, body_size_max);
    bool base = w->acl_base != NULL;
    ASSERT(!base || w->type == KV_CMD_ACL_SETUSER ||
           w->type == KV_CMD_ACL_DELUSER);
    writer_u8(&out, KV_COMMAND_FORMAT);
    writer_u8(&out, (uint8_t)w->type);
    writer_u16(&out, (uint16_t)(w->flags | (base ? KV_ACL_BASE : 0)));
    writer_u32(&out, w->arg_count + (base ? 1 : 0));
    if (kv_expire_has_delta(w->type, w->flags))
        writer_u64(&out, (uint64_t)w->delta);
    if (base) {
        ASSERT(w->acl_base_size <= UINT32_MAX);
        writer_u32(&out, (uint32_t)w->acl_base_size);
        writer_bytes(&out, w->acl_base, w->acl_base_size);
    }
    for (uint32_t i = 0; i < w->arg_count; i++) {
        ASSERT(w->args[i].size <= UINT32_MAX);
        if (is_password_rule(w, i)) {
            write_password_rule(&out, &w->args[i]);
            continue;
        }
        writer_u32(&out, (uint32_t)w->args[i].size);
        writer_bytes(&out, w->args[i].ptr, w->args[i].size);
    }
    ASSERT(out.ok);
    size_t size = body_size_max - out.left;
    ASSERT(size == kv_command_size(w));
    return size;
}

size_t kv_command_encode_into(const struct kv_write *w, uint8_t **body,
                              size_t *capacity)
{
    if (!grow_bytes_exact(body, capacity, kv_command_size(w)))
        return 0;
    size_t size = kv_command_encode(w, *body, *capacity);
    ASSERT(size > 0);
    return size;
}

/* Two's complement without implementation-defined conversion. */
static int64_t i64_from_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return (int64_t)v;
    return -(int64_t)(UINT64_MAX - v) - 1;
}

static const char *check_header(const struct kv_command *c)
{
    switch (c->type) {
    case KV_CMD_SET:
        if (kv_expire_check_header(c) != NULL)
            return kv_expire_check_header(c);
        if ((c->flags & KV_SET_NX) && (c->flags & KV_SET_XX))
            return "SET with both NX and XX";
        return c->arg_count == 2 ? NULL : "SET needs 2 arguments";
    case KV_CMD_DEL:
        if (c->flags != 0)
            return "flags on DEL";
        return c->arg_count >= 1 ? NULL : "DEL needs an argument";
    case KV_CMD_INCRBY:
        if (c->flags != 0)
            return "flags on INCRBY";
        return c->arg_count == 1 ? NULL : "INCRBY needs 1 argument";
    case KV_CMD_MSET:
        if (c->flags != 0)
            return "flags on MSET";
        if (c->arg_count < 2 || c->arg_count % 2 != 0)
            return "MSET needs key-value pairs";
        return NULL;
    case KV_CMD_CAS:
        if (c->flags != 0)
            return "flags on CAS";
        return c->arg_count == 3 ? NULL : "CAS needs 3 arguments";
    case KV_CMD_ACL_SETUSER:
    case KV_CMD_ACL_DELUSER:
        if (c->flags & ~KV_ACL_BASE)
            return "unknown ACL flags";
        if (c->arg_count < 1u + ((c->flags & KV_ACL_BASE) ? 1u : 0u))
            return "ACL write needs a user name";
        return NULL;
    case KV_CMD_TXN:
        if (c->flags & ~(KV_TXN_EXEC | KV_VALUE_LIMIT))
            return "unknown TXN flags";
        return c->arg_count >= 2 ? NULL : "TXN needs at least 2 arguments";
    case KV_CMD_PUBLISH:
        if (c->flags != 0)
            return "flags on PUBLISH";
        return c->arg_count == 2 ? NULL : "PUBLISH needs 2 arguments";
    case KV_CMD_PEXPIRE:
    case KV_CMD_PERSIST:
    case KV_CMD_GETEX:
    case KV_CMD_EXPIRE_DUE:
        return kv_expire_check_header(c);
    case KV_CMD_ADDRESS:
        return kv_address_check_header(c);
    case KV_CMD_INCARNATION:
        return kv_incarnation_check_header(c);
    default:
        if (kv_session_owns_type(c->type))
            return kv_session_check_header(c);
        return kv_strings_check_header(c);
    }
}

int kv_command_decode(const uint8_t *body, size_t body_size,
                      struct kv_command *c, const char **why)
{
    struct cursor in = cursor_make(body, body_size);
    uint8_t format = cursor_u8(&in);
    uint8_t type = cursor_u8(&in);
    c->flags = cursor_u16(&in);
    c->arg_count = cursor_u32(&in);
    c->delta = 0;
    if (!in.ok) {
        *why = "body shorter than the command header";
        return -COHORT_EPROTO;
    }
    if (format != KV_COMMAND_FORMAT) {
        *why = "unknown command format";
        return -COHORT_EPROTO;
    }
    c->type = (enum kv_command_type)type;
    if ((*why = check_header(c)) != NULL)
        return -COHORT_EPROTO;
    if (kv_expire_has_delta(c->type, c->flags))
        c->delta = i64_from_u64(cursor_u64(&in));
    c->args = in;
    for (uint32_t i = 0; i < c->arg_count && in.ok; i++)
        (void)cursor_take(&in, cursor_u32(&in));
    if (!in.ok) {
        *why = "body truncated";
        return -COHORT_EPROTO;
    }
    if (in.left != 0) {
        *why = "trailing bytes after the last argument";
        return -COHORT_EPROTO;
    }
    return 0;
}

void kv_command_next_arg(struct kv_command *c, const uint8_t **arg,
                         size_t *arg_size)
{
    uint32_t size = cursor_u32(&c->args);
    *arg = cursor_take(&c->args, size);
    *arg_size = size;
    ASSERT(c->args.ok);
}

uint32_t kv_value_limit(const struct kv_command *c)
{
    if (!(c->flags & KV_VALUE_LIMIT) || !kv_expire_has_delta(c->type, c->flags))
        return KV_VALUE_SIZE_LIMIT;
    if (c->delta <= 0)
        return 0;
    return c->delta > (int64_t)KV_VALUE_SIZE_LIMIT ? KV_VALUE_SIZE_LIMIT
                                                   : (uint32_t)c->delta;
}

struct kv_config kv_apply_config(const struct kv *kv,
                                 const struct kv_command *c)
{
    struct kv_config config = kv->config;
    config.key_size_max = KV_KEY_SIZE_LIMIT;
    config.value_size_max = kv_value_limit(c);
    return config;
}

size_t kv_reply_size_max(const struct kv_config *config)
{
    return (size_t)config->value_size_max + KV_REPLY_OVERHEAD +
           KV_TXN_REPLY_ROOM;
}

static_assert(KV_TXN_REPLY_ROOM ==
                  (KV_TXN_COMMANDS_MAX + 2u) * KV_TXN_REPLY_SLOT,
              "room for every element of the largest transaction");

/* A replica that cannot apply a committed op must stop rather than diverge
 * from the group; it recovers from its snapshot and log on restart. */
static void must_put(struct kv *kv, const uint8_t *key, size_t key_size,
                     const uint8_t *value, size_t value_size, uint64_t op)
{
    if (kv_put(kv, key, key_size, value, value_size, op) != 0)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
}

static bool value_equal(const struct kv_record *rec, const uint8_t *bytes,
                        size_t size)
{
    if (rec->value_size != size)
        return false;
    return size == 0 || memcmp(kv_record_value(rec), bytes, size) == 0;
}

/* Clear key's expiry, as a plain SET or MSET does in Redis. */
static void clear_expiry(struct kv *kv, const uint8_t *key, size_t key_size)
{
    const struct kv_record *rec = kv_get(kv, key, key_size);
    if (rec != NULL && rec->expire_at_ms != 0)
        (void)kv_expire_set(kv, key, key_size, 0);
}

/* SET's write: the value, then the expiry its flags ask for (at_ms, 0 for
 * none, unless KEEPTTL); a time already past removes the key, as Redis. */
static void set_value(struct kv *kv, uint64_t op, uint64_t now_ms,
                      const struct kv_command *c, const uint8_t *key,
                      size_t key_size, const uint8_t *value, size_t value_size,
                      uint64_t at_ms)
{
    must_put(kv, key, key_size, value, value_size, op);
    if (c->flags & KV_SET_KEEPTTL)
        return;
    if (at_ms != 0 && at_ms <= now_ms)
        (void)kv_del(kv, key, key_size);
    else if (at_ms != 0)
        (void)kv_expire_set(kv, key, key_size, at_ms);
    else
        clear_expiry(kv, key, key_size);
}

static void apply_set(struct kv *kv, uint64_t op, uint64_t now_ms,
                      struct kv_command *c, struct resp_buf *r)
{
    const uint8_t *key, *value;
    size_t key_size, value_size;
    kv_command_next_arg(c, &key, &key_size);
    kv_command_next_arg(c, &value, &value_size);
    uint64_t at_ms;
    if (!kv_expire_set_time(c, now_ms, &at_ms)) {
        resp_write_error(r, "ERR invalid expire time in 'set' command");
        return;
    }
    if (!kv_session_set_check(kv, c, r))
        return;
    const struct kv_record *old = kv_get(kv, key, key_size);
    /* GET answers with the old value whether or not the SET happens; it is
     * copied out before the put may reuse the record's memory. */
    if (c->flags & KV_SET_GET) {
        if (old != NULL)
            resp_write_bulk(r, kv_record_value(old), old->value_size);
        else
            resp_write_null(r);
    }
    bool set = true;
    if ((c->flags & KV_SET_NX) && old != NULL)
        set = false;
    if ((c->flags & KV_SET_XX) && old == NULL)
        set = false;
    if (set) {
        set_value(kv, op, now_ms, c, key, key_size, value, value_size, at_ms);
        kv_session_set_attach(kv, c, key, key_size);
    }
    if (!(c->flags & KV_SET_GET)) {
        if (set)
            resp_write_simple(r, "OK");
        else
            resp_write_null(r);
    }
}

static void apply_del(struct kv *kv, struct kv_command *c, struct resp_buf *r)
{
    int64_t removed = 0;
    for (uint32_t i = 0; i < c->arg_count; i++) {
        const uint8_t *key;
        size_t key_size;
        kv_command_next_arg(c, &key, &key_size);
        if (kv_del(kv, key, key_size))
            removed++;
    }
    resp_write_integer(r, removed);
}

/* INCR, INCRBY, DECR and DECRBY, as Redis's incrDecrCommand(). */
static void apply_incrby(struct kv *kv, uint64_t op, struct kv_command *c,
                         struct resp_buf *r)
{
    const uint8_t *key;
    size_t key_size;
    kv_command_next_arg(c, &key, &key_size);
    const struct kv_record *old = kv_get(kv, key, key_size);
    int64_t value = 0;
    if (old != NULL &&
        !resp_parse_i64(kv_record_value(old), old->value_size, &value)) {
        reply_not_integer(r);
        return;
    }
    int64_t delta = c->delta;
    if ((delta < 0 && value < 0 && delta < INT64_MIN - value) ||
        (delta > 0 && value > 0 && delta > INT64_MAX - value)) {
        resp_write_errorf(r, "ERR increment or decrement would overflow");
        return;
    }
    value += delta;
    char text[24];
    int n = snprintf(text, sizeof(text), "%" PRId64, value);
    ASSERT(n > 0 && (size_t)n < sizeof(text));
    /* At most 20 bytes, stored whatever max-value-size: apply does not read
     * the local limits (kv_apply_config()). */
    must_put(kv, key, key_size, (const uint8_t *)text, (size_t)n, op);
    resp_write_integer(r, value);
}

static void apply_mset(struct kv *kv, uint64_t op, struct kv_command *c,
                       struct resp_buf *r)
{
    ASSERT(c->arg_count % 2 == 0);
    for (uint32_t i = 0; i < c->arg_count; i += 2) {
        const uint8_t *key, *value;
        size_t key_size, value_size;
        kv_command_next_arg(c, &key, &key_size);
        kv_command_next_arg(c, &value, &value_size);
        must_put(kv, key, key_size, value, value_size, op);
        clear_expiry(kv, key, key_size);
    }
    resp_write_simple(r, "OK");
}

static void apply_cas(struct kv *kv, uint64_t op, struct kv_command *c,
                      struct resp_buf *r)
{
    const uint8_t *key, *expected, *value;
    size_t key_size, expected_size, value_size;
    kv_command_next_arg(c, &key, &key_size);
    kv_command_next_arg(c, &expected, &expected_size);
    kv_command_next_arg(c, &value, &value_size);
    const struct kv_record *old = kv_get(kv, key, key_size);
    if (old == NULL || !value_equal(old, expected, expected_size)) {
        resp_write_integer(r, 0);
        return;
    }
    must_put(kv, key, key_size, value, value_size, op);
    resp_write_integer(r, 1);
}

/* PUBLISH: retain the message at position op and hand it to the hook. The
 * reply is :0 everywhere (deterministic); the answering server replaces it
 * with the hook's count on its member (server/pubsub.c). */
static void apply_publish(struct kv *kv, uint64_t op, struct kv_command *c,
                          struct resp_buf *r)
{
    const uint8_t *channel, *message;
    size_t channel_size, message_size;
    kv_command_next_arg(c, &channel, &channel_size);
    kv_command_next_arg(c, &message, &message_size);
    if (history_append(&kv->history, op, channel, channel_size, message,
                       message_size) != 0)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    if (kv->publish_hook.deliver != NULL)
        (void)kv->publish_hook.deliver(kv->publish_hook.ctx, op, channel,
                                       channel_size, message, message_size);
    resp_write_integer(r, 0);
}

/* Check every argument before changing anything, so that a command is all
 * or nothing (an MSET with one value over the limit sets no key). */
static bool command_within_limits(const struct kv_config *config,
                                  const struct kv_command *c,
                                  struct resp_buf *r)
{
    struct kv_command scan = *c;
    for (uint32_t i = 0; i < c->arg_count; i++) {
        const uint8_t *arg;
        size_t size;
        kv_command_next_arg(&scan, &arg, &size);
        if (!arg_within_limits(config, c->type, i, size, r))
            return false;
    }
    return true;
}

/* The group's first ACL change: start from the proposer's users (the base)
 * or, without one, from Redis's default user. Returns false after writing
 * the error (a malformed base; nothing changed). */
static bool acl_start(struct kv *kv, uint64_t op, struct kv_command *c,
                      struct resp_buf *r)
{
    const uint8_t *base = NULL;
    size_t base_size = 0;
    if (c->flags & KV_ACL_BASE)
        kv_command_next_arg(c, &base, &base_size);
    if (kv->acl.initialized)
        return true;
    char err[ACL_ERROR_MAX];
    int rc = base ? acl_decode(&kv->acl, base, base_size, err)
                  : acl_set_default(&kv->acl);
    if (rc == -COHORT_ENOMEM)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    if (rc != 0) {
        resp_write_errorf(
            r, "ERR malformed ACL base in log entry at op %" PRIu64 ": %s", op,
            err);
        return false;
    }
    return true;
}

/* ACL SETUSER and ACL DELUSER, once acl_start() has read any base. */
static void apply_acl(struct kv *kv, struct kv_command *c, uint32_t argc,
                      struct resp_buf *r)
{
    struct resp_arg *args = malloc(argc * sizeof(*args));
    if (args == NULL)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    for (uint32_t i = 0; i < argc; i++) {
        const uint8_t *p;
        kv_command_next_arg(c, &p, &args[i].size);
        args[i].ptr = (const char *)p;
    }
    char err[ACL_ERROR_MAX];
    if (c->type == KV_CMD_ACL_SETUSER) {
        int rc = acl_setuser(&kv->acl, args[0].ptr, args[0].size, argc - 1,
                             args + 1, err);
        if (rc == -COHORT_ENOMEM)
            cohort_assert_fail("out of memory applying a committed op",
                               __FILE__, __LINE__);
        if (rc == 0)
            resp_write_simple(r, "OK");
        else
            resp_write_errorf(r, "ERR %s", err);
        free(args);
        return;
    }
    bool has_default = false;
    for (uint32_t i = 0; i < argc; i++)
        has_default |= args[i].size == 7 && !memcmp(args[i].ptr, "default", 7);
    if (has_default) {
        resp_write_error(r, "ERR The 'default' user cannot be removed");
    } else {
        int64_t removed = 0;
        for (uint32_t i = 0; i < argc; i++)
            removed += acl_deluser(&kv->acl, args[i].ptr, args[i].size);
        resp_write_integer(r, removed);
    }
    free(args);
}

/* A transaction: its arguments as an argv, parsed again (log bytes are
 * untrusted), then run. A malformed one changes nothing. */
static void apply_txn(struct kv *kv, uint64_t op, uint64_t now_ms,
                      struct kv_command *c, struct resp_buf *r)
{
    struct resp_arg *args = malloc(c->arg_count * sizeof(*args));
    if (args == NULL)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    for (uint32_t i = 0; i < c->arg_count; i++) {
        const uint8_t *p;
        kv_command_next_arg(c, &p, &args[i].size);
        args[i].ptr = (const char *)p;
    }
    struct kv_txn t;
    struct resp_buf why;
    resp_buf_init(&why, 2);
    struct kv_config limits = kv_apply_config(kv, c);
    if (kv_txn_parse(&limits, (c->flags & KV_TXN_EXEC) != 0, c->arg_count, args,
                     &t, &why) == 0) {
        kv_txn_apply(kv, op, now_ms, &t, &limits, r);
    } else {
        kv->malformed_ops++;
        resp_write_errorf(r,
                          "ERR malformed transaction in log entry at op "
                          "%" PRIu64,
                          op);
    }
    resp_buf_deinit(&why);
    free(args);
}

static void apply_command(struct kv *kv, uint64_t op, uint64_t now_ms,
                          struct kv_command *c, struct resp_buf *r)
{
    if (c->type == KV_CMD_TXN) {
        apply_txn(kv, op, now_ms, c, r);
        return;
    }
    if (c->type == KV_CMD_ACL_SETUSER || c->type == KV_CMD_ACL_DELUSER) {
        uint32_t argc = c->arg_count - ((c->flags & KV_ACL_BASE) ? 1u : 0u);
        if (acl_start(kv, op, c, r))
            apply_acl(kv, c, argc, r);
        return;
    }
    if (c->type == KV_CMD_ADDRESS) {
        kv_address_apply(kv, op, c, r);
        return;
    }
    if (c->type == KV_CMD_INCARNATION) {
        kv_incarnation_apply(kv, op, c, r);
        return;
    }
    struct kv_config limits = kv_apply_config(kv, c);
    if (!command_within_limits(&limits, c, r))
        return;
    kv_expire_drop_due(kv, c, now_ms);
    switch (c->type) {
    case KV_CMD_SET:
        apply_set(kv, op, now_ms, c, r);
        return;
    case KV_CMD_PEXPIRE:
    case KV_CMD_PERSIST:
    case KV_CMD_GETEX:
    case KV_CMD_EXPIRE_DUE:
        kv_expire_apply(kv, now_ms, c, r);
        return;
    case KV_CMD_DEL:
        apply_del(kv, c, r);
        return;
    case KV_CMD_INCRBY:
        apply_incrby(kv, op, c, r);
        return;
    case KV_CMD_MSET:
        apply_mset(kv, op, c, r);
        return;
    case KV_CMD_CAS:
        apply_cas(kv, op, c, r);
        return;
    case KV_CMD_PUBLISH:
        apply_publish(kv, op, c, r);
        return;
    case KV_CMD_ACL_SETUSER:
    case KV_CMD_ACL_DELUSER:
    case KV_CMD_TXN:
    case KV_CMD_ADDRESS:
    case KV_CMD_INCARNATION:
        UNREACHABLE();
    default:
        if (kv_session_owns_type(c->type))
            kv_session_apply(kv, op, now_ms, c, r);
        else
            kv_strings_apply(kv, op, c, r);
        return;
    }
}

void kv_apply_write(struct kv *kv, uint64_t op, const struct kv_write *w,
                    struct resp_buf *r)
{
    ASSERT(kv->op == op);
    ASSERT(w->type != KV_CMD_TXN && w->acl_base == NULL);
    size_t size =
        kv_command_encode_into(w, &kv->txn_body, &kv->txn_body_capacity);
    if (size == 0)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    struct kv_command c;
    const char *why = NULL;
    int rc = kv_command_decode(kv->txn_body, size, &c, &why);
    ASSERT(rc == 0); /* encoded from a parsed command */
    apply_command(kv, op, kv->time_ms, &c, r);
}

size_t kv_apply(struct kv *kv, uint64_t op, uint64_t timestamp_ms,
                const uint8_t *body, size_t body_size, uint8_t *reply,
                size_t reply_size_max)
{
    ASSERT(reply_size_max >= kv_reply_size_max(&kv->config));
    ASSERT(op > kv->op);
    kv->op = op;
    /* The op's log time; never behind an earlier op's, so a key once
     * expired stays expired (expire.h). */
    if (timestamp_ms > kv->time_ms)
        kv->time_ms = timestamp_ms;
    uint64_t now_ms = kv->time_ms;
    struct resp_buf *r = &kv->apply_reply;
    ASSERT(r->proto == 2);
    ASSERT(r->size == 0);
    struct kv_command c;
    const char *why = NULL;
    if (kv_command_decode(body, body_size, &c, &why) == 0)
        apply_command(kv, op, now_ms, &c, r);
    else {
        kv->malformed_ops++;
        resp_write_errorf(
            r, "ERR malformed command in log entry at op %" PRIu64 ": %s", op,
            why);
    }
    if (!r->ok)
        cohort_assert_fail("out of memory writing the reply to a committed op",
                           __FILE__, __LINE__);
    size_t size = r->size;
    ASSERT(size > 0);
    if (size > reply_size_max) {
        /* A value made under a larger max-value-size than this member's
         * (GETDEL, GETSET...): the op took effect as on every member; only
         * its reply does not fit here. */
        resp_buf_consume(r, size);
        resp_write_errorf(r,
                          "ERR the reply is %zu bytes, over this member's "
                          "max-value-size; the command took effect",
                          size);
        if (!r->ok)
            cohort_assert_fail("out of memory writing the reply to a "
                               "committed op",
                               __FILE__, __LINE__);
        size = r->size;
    }
    ASSERT(size <= reply_size_max);
    memcpy(reply, r->data, size);
    resp_buf_consume(r, size);
    return size;
}

/* The record of key, or NULL if missing or expired at now_ms: a read never
 * returns an expired key, even before its removal is committed. */
static const struct kv_record *get_arg(const struct kv *kv, uint64_t now_ms,
                                       const struct resp_arg *key)
{
    const struct kv_record *rec =
        kv_get(kv, (const uint8_t *)key->ptr, key->size);
    return rec != NULL && !kv_record_expired(rec, now_ms) ? rec : NULL;
}

static void reply_record(struct resp_buf *r, const struct kv_record *rec)
{
    if (rec != NULL)
        resp_write_bulk(r, kv_record_value(rec), rec->value_size);
    else
        resp_write_null(r);
}

static void query_kvinfo(const struct kv *kv, uint64_t now_ms,
                         const struct resp_arg *key, struct resp_buf *r)
{
    const struct kv_record *rec = get_arg(kv, now_ms, key);
    if (rec == NULL) {
        resp_write_null_array(r);
        return;
    }
    ASSERT(rec->mod_op <= INT64_MAX);
    resp_write_map(r, 4);
    resp_write_bulk(r, "value", 5);
    resp_write_bulk(r, kv_record_value(rec), rec->value_size);
    resp_write_bulk(r, "version", 7);
    resp_write_integer(r, (int64_t)rec->version);
    resp_write_bulk(r, "create_op", 9);
    resp_write_integer(r, (int64_t)rec->create_op);
    resp_write_bulk(r, "mod_op", 6);
    resp_write_integer(r, (int64_t)rec->mod_op);
}

/* COHORT.GET key [WITHREV]: GET's reply, or with WITHREV the array
 * [value, revision, version, store revision]: the key's value (null if
 * absent), the op that last changed it and its version (0 and 0 if
 * absent), and the op this read reflects (COHORT.WATCH ... FROM it sees
 * every later change). */
static void query_cohort_get(const struct kv *kv, uint64_t now_ms,
                             uint32_t argc, const struct resp_arg *argv,
                             struct resp_buf *r)
{
    if (argc > 3 || (argc == 3 && !resp_arg_is(&argv[2], "withrev"))) {
        resp_write_error(r, "ERR syntax error: COHORT.GET key [WITHREV]");
        return;
    }
    const struct kv_record *rec = get_arg(kv, now_ms, &argv[1]);
    if (argc == 2) {
        reply_record(r, rec);
        return;
    }
    ASSERT(kv->op <= INT64_MAX);
    resp_write_array(r, 4);
    reply_record(r, rec);
    resp_write_integer(r, rec ? (int64_t)rec->mod_op : 0);
    resp_write_integer(r, rec ? (int64_t)rec->version : 0);
    resp_write_integer(r, (int64_t)kv->op);
}

static void query_listing(const struct kv *kv, uint64_t now_ms,
                          const struct kv_command_def *def, uint32_t argc,
                          const struct resp_arg *argv, struct resp_buf *r)
{
    switch (def->id) {
    case CMD_SCAN:
        listing_scan(kv, now_ms, argc, argv, r);
        return;
    case CMD_KEYS:
        listing_keys(kv, now_ms, &argv[1], r);
        return;
    case CMD_TYPE:
        listing_type(kv, now_ms, &argv[1], r);
        return;
    case CMD_RANDOMKEY:
        listing_randomkey(kv, now_ms, r);
        return;
    case CMD_RANGE:
        listing_range(kv, now_ms, argc, argv, r);
        return;
    default:
        UNREACHABLE();
    }
}

static void query_command(const struct kv *kv, uint64_t now_ms,
                          const struct kv_command_def *def, uint32_t argc,
                          const struct resp_arg *argv, struct resp_buf *r)
{
    int64_t count = 0;
    switch (def->id) {
    case CMD_GET:
        reply_record(r, get_arg(kv, now_ms, &argv[1]));
        return;
    case CMD_MGET:
        resp_write_array(r, argc - 1);
        for (uint32_t i = 1; i < argc; i++)
            reply_record(r, get_arg(kv, now_ms, &argv[i]));
        return;
    case CMD_EXISTS:
        /* As Redis: a key named twice counts twice. */
        for (uint32_t i = 1; i < argc; i++)
            count += get_arg(kv, now_ms, &argv[i]) != NULL;
        resp_write_integer(r, count);
        return;
    case CMD_DBSIZE:
        /* Keys due but not yet removed do not count (O(their number)). */
        ASSERT(kv->key_count <= INT64_MAX);
        resp_write_integer(
            r, (int64_t)(kv->key_count -
                         kv_expire_index_count_due(&kv->expiry, now_ms)));
        return;
    case CMD_KVINFO:
        query_kvinfo(kv, now_ms, &argv[1], r);
        return;
    case CMD_COHORT_GET:
        query_cohort_get(kv, now_ms, argc, argv, r);
        return;
    case CMD_TTL:
    case CMD_PTTL:
        kv_expire_query_ttl(kv, now_ms, &argv[1], def->id == CMD_PTTL, r);
        return;
    case CMD_REVS:
        resp_write_array(r, argc - 1);
        for (uint32_t i = 1; i < argc; i++) {
            const struct kv_record *rec = get_arg(kv, now_ms, &argv[i]);
            ASSERT(rec == NULL || rec->mod_op <= INT64_MAX);
            resp_write_integer(r, rec ? (int64_t)rec->mod_op : 0);
        }
        return;
    default:
        query_listing(kv, now_ms, def, argc, argv, r);
        return;
    }
}

bool kv_query_settled(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                      const struct resp_arg *argv)
{
    const struct kv_command_def *def = argc > 0 ? command_find(&argv[0]) : NULL;
    if (def == NULL || def->class != KV_CLASS_READ || !arity_ok(def, argc))
        return true;
    if (kv_session_owns(def))
        return true;          /* no key: sessions end by their own op */
    if (kv_strings_owns(def)) /* STRLEN, GETRANGE: one key, argv[1] */
        return kv_expire_read_settled(kv, now_ms, true, 2, argv);
    bool whole = def->id == CMD_DBSIZE || def->id == CMD_SCAN ||
                 def->id == CMD_KEYS || def->id == CMD_RANDOMKEY ||
                 def->id == CMD_RANGE;
    return kv_expire_read_settled(kv, now_ms, !whole, argc, argv);
}

void kv_query(const struct kv *kv, uint32_t argc, const struct resp_arg *argv,
              struct resp_buf *out)
{
    kv_query_at(kv, 0, argc, argv, out);
}

void kv_query_at(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                 const struct resp_arg *argv, struct resp_buf *out)
{
    if (now_ms < kv->time_ms)
        now_ms = kv->time_ms;
    size_t size_before = out->size;
    const struct kv_command_def *def = argc > 0 ? command_find(&argv[0]) : NULL;
    if (def == NULL || def->class != KV_CLASS_READ)
        reply_unknown_command(out, argc, argv);
    else if (!arity_ok(def, argc))
        reply_arity_error(out, def->name);
    else if (kv_strings_owns(def))
        kv_strings_query(kv, now_ms, def, argc, argv, out);
    else if (kv_session_owns(def))
        kv_session_query(kv, now_ms, def, argc, argv, out);
    else
        query_command(kv, now_ms, def, argc, argv, out);
    ASSERT(!out->ok || out->size > size_before);
}

static size_t sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                       const uint8_t *body, size_t body_size, uint8_t *reply,
                       size_t reply_size_max)
{
    return kv_apply(ctx, op, timestamp_ms, body, body_size, reply,
                    reply_size_max);
}

struct cohort_sm kv_sm(struct kv *kv)
{
    struct cohort_sm sm = {.ctx = kv, .apply = sm_apply};
    return sm;
}
