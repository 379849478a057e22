/* txn — parsing and applying transactions. See txn.h. */
#include "kv/txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"
#include "kv/command.h"
#include "kv/expire.h"

static_assert(KV_TXN_REPLY_SLOT > sizeof(KV_TXN_REPLY_TOO_BIG) + 3,
              "the replacement error fits an element's room");

size_t kv_txn_size_max(const struct kv_config *config)
{
    return (size_t)config->value_size_max + config->key_size_max +
           KV_TXN_SIZE_OVERHEAD;
}

/* A count or number argument: decimal, 0..max. */
static bool parse_count(const struct resp_arg *arg, uint64_t max, uint64_t *out)
{
    int64_t v;
    if (!resp_parse_i64(arg->ptr, arg->size, &v) || v < 0 || (uint64_t)v > max)
        return false;
    *out = (uint64_t)v;
    return true;
}

int kv_txn_check_command(const struct kv_config *config, uint32_t argc,
                         const struct resp_arg *argv, struct resp_buf *out)
{
    ASSERT(argc >= 1);
    /* SCAN, KEYS and RANDOMKEY answer from the member's hash table, whose
     * layout is seeded per member: run inside apply they would give each
     * replica another reply (and KEYS would hold apply for a whole-store
     * walk). TYPE and COHORT.RANGE depend only on the state and may run. */
    if (resp_arg_is(&argv[0], "scan") || resp_arg_is(&argv[0], "keys") ||
        resp_arg_is(&argv[0], "randomkey")) {
        char shown[65];
        resp_write_errorf(
            out,
            "ERR '%s' cannot run inside a transaction: its "
            "reply depends on the member; use COHORT.RANGE",
            resp_show(shown, sizeof(shown), argv[0].ptr, argv[0].size));
        return -COHORT_EINVAL;
    }
    /* A message's position is its op: a transaction would give two
     * messages one position. */
    if (resp_arg_is(&argv[0], "publish")) {
        resp_write_error(out, "ERR 'publish' cannot run inside a "
                              "transaction; publish outside MULTI");
        return -COHORT_EINVAL;
    }
    if (resp_arg_is(&argv[0], "cohort.txn") ||
        resp_arg_is(&argv[0], "cohort.exec") ||
        kv_command_is_acl_write(argc, argv)) {
        char shown[65];
        resp_write_errorf(
            out,
            "ERR '%s' cannot run inside a transaction; only "
            "store reads and writes can",
            resp_show(shown, sizeof(shown), argv[0].ptr, argv[0].size));
        return -COHORT_EINVAL;
    }
    if (kv_command_class(&argv[0]) == KV_CLASS_READ) {
        if (!kv_command_read_arity_ok(argc, argv)) {
            kv_command_reply_arity(out, argc, argv);
            return -COHORT_EINVAL;
        }
        return 0;
    }
    struct kv_write w;
    return kv_command_parse_logged(config, argc, argv, &w, out);
}

int kv_txn_check_proposed(const struct kv_config *config, uint32_t argc,
                          const struct resp_arg *argv, struct resp_buf *out)
{
    if (kv_command_class(&argv[0]) != KV_CLASS_WRITE)
        return 0;
    struct kv_write w;
    struct resp_buf sink;
    resp_buf_init(&sink, 2);
    int rc = kv_command_parse_logged(config, argc, argv, &w, &sink);
    resp_buf_deinit(&sink);
    if (rc != 0)
        return 0; /* kv_txn_check_command() answers a bad command */
    /* What only a proposer refuses: a relative expiry past the limit. */
    if (kv_command_parse(config, argc, argv, &w, out) != 0)
        return -COHORT_EINVAL;
    if (!kv_expire_absolute(&w))
        return 0;
    char shown[65];
    resp_write_errorf(
        out,
        "ERR '%s' with an absolute time (EXAT, PXAT, "
        "EXPIREAT, PEXPIREAT) cannot run inside a transaction; "
        "use a relative one (EX, PX, EXPIRE, PEXPIRE)",
        resp_show(shown, sizeof(shown), argv[0].ptr, argv[0].size));
    return -COHORT_EINVAL;
}

bool kv_txn_each_command(const struct kv_txn *t, kv_txn_command_fn fn,
                         void *ctx)
{
    const struct resp_arg *lists[2] = {t->then_list, t->else_list};
    uint32_t counts[2] = {t->then_count, t->else_count};
    for (int l = 0; l < 2; l++) {
        const struct resp_arg *pos = lists[l];
        for (uint32_t i = 0; i < counts[l]; i++) {
            uint32_t argc;
            const struct resp_arg *argv;
            kv_txn_next_command(&pos, &argc, &argv);
            if (!fn(ctx, argc, argv))
                return false;
        }
    }
    return true;
}

struct proposed_check {
    const struct kv_config *config;
    struct resp_buf *out;
};

static bool proposed_ok(void *ctx, uint32_t argc, const struct resp_arg *argv)
{
    struct proposed_check *pc = ctx;
    return kv_txn_check_proposed(pc->config, argc, argv, pc->out) == 0;
}

int kv_txn_check_proposed_lists(const struct kv_config *config,
                                const struct kv_txn *t, struct resp_buf *out)
{
    struct proposed_check pc = {config, out};
    return kv_txn_each_command(t, proposed_ok, &pc) ? 0 : -COHORT_EINVAL;
}

/* One compare: returns how many arguments it takes (2 or 4), 0 on error. */
static uint32_t check_compare(const struct kv_config *config, uint32_t left,
                              const struct resp_arg *a, struct resp_buf *out)
{
    if (left >= 2 && a[0].size > config->key_size_max) {
        resp_write_errorf(
            out, "ERR key is %zu bytes; limit is %" PRIu32 " (max-key-size)",
            a[0].size, config->key_size_max);
        return 0;
    }
    if (left >= 2 &&
        (resp_arg_is(&a[1], "exists") || resp_arg_is(&a[1], "missing")))
        return 2;
    bool number = left >= 2 && (resp_arg_is(&a[1], "version") ||
                                resp_arg_is(&a[1], "modop"));
    bool value = left >= 2 && resp_arg_is(&a[1], "value");
    if ((number || value) && left >= 4) {
        const struct resp_arg *op = &a[2];
        bool eq = resp_arg_is(op, "=") || resp_arg_is(op, "!=");
        bool order = resp_arg_is(op, "<") || resp_arg_is(op, ">");
        uint64_t n;
        if (value && eq)
            return 4;
        if (number && (eq || order) && parse_count(&a[3], UINT64_MAX >> 1, &n))
            return 4;
    }
    resp_write_error(out, "ERR syntax error in a compare: expected <key> "
                          "EXISTS|MISSING, <key> VALUE =|!= <bytes>, or <key> "
                          "VERSION|MODOP =|!=|<|> <n>");
    return 0;
}

/* A list of count commands at a[0..left), each checked if check_commands:
 * returns the arguments it takes, or UINT32_MAX after writing the error. */
static uint32_t check_list(const struct kv_config *config, bool check_commands,
                           uint64_t count, uint32_t left,
                           const struct resp_arg *a, struct resp_buf *out)
{
    uint32_t used = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t argc;
        if (used >= left || !parse_count(&a[used], left - used - 1, &argc) ||
            argc == 0) {
            resp_write_error(out, "ERR syntax error in a transaction: each "
                                  "command is <argc> <name> [<arg> ...]");
            return UINT32_MAX;
        }
        if (check_commands && kv_txn_check_command(config, (uint32_t)argc,
                                                   &a[used + 1], out) != 0)
            return UINT32_MAX;
        used += 1 + (uint32_t)argc;
    }
    return used;
}

static int syntax_error(struct resp_buf *out, const char *what)
{
    resp_write_errorf(out, "ERR syntax error in a transaction: %s", what);
    return -COHORT_EINVAL;
}

static int parse(const struct kv_config *config, bool check_commands, bool exec,
                 uint32_t argc, const struct resp_arg *argv, struct kv_txn *t,
                 struct resp_buf *out)
{
    memset(t, 0, sizeof(*t));
    t->exec = exec;
    uint64_t n;
    uint32_t at = 0;
    if (argc < 1 || !parse_count(&argv[0], UINT32_MAX, &n))
        return syntax_error(out, "expected the number of compares");
    if (n > KV_TXN_COMPARES_MAX) {
        resp_write_errorf(out,
                          "ERR transaction has %" PRIu64
                          " compares; limit is %u (watched keys count)",
                          n, KV_TXN_COMPARES_MAX);
        return -COHORT_EINVAL;
    }
    t->compare_count = (uint32_t)n;
    t->compares = &argv[1];
    at = 1;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t took = check_compare(config, argc - at, &argv[at], out);
        if (took == 0)
            return -COHORT_EINVAL;
        at += took;
    }
    uint64_t counts[2] = {0, 0};
    for (int list = 0; list < (exec ? 1 : 2); list++) {
        if (at >= argc || !parse_count(&argv[at], UINT32_MAX, &counts[list]))
            return syntax_error(out, list == 0 ? "expected the number of THEN "
                                                 "commands"
                                               : "expected the number of ELSE "
                                                 "commands");
        if (counts[0] + counts[1] > KV_TXN_COMMANDS_MAX) {
            resp_write_errorf(out,
                              "ERR transaction has over %u commands "
                              "(the limit)",
                              KV_TXN_COMMANDS_MAX);
            return -COHORT_EINVAL;
        }
        at++;
        const struct resp_arg *start = &argv[at];
        uint32_t took = check_list(config, check_commands, counts[list],
                                   argc - at, start, out);
        if (took == UINT32_MAX)
            return -COHORT_EINVAL;
        at += took;
        if (list == 0) {
            t->then_count = (uint32_t)counts[0];
            t->then_list = start;
        } else {
            t->else_count = (uint32_t)counts[1];
            t->else_list = start;
        }
    }
    if (at != argc)
        return syntax_error(out, "arguments after the last command");
    return 0;
}

int kv_txn_parse(const struct kv_config *config, bool exec, uint32_t argc,
                 const struct resp_arg *argv, struct kv_txn *t,
                 struct resp_buf *out)
{
    return parse(config, true, exec, argc, argv, t, out);
}

int kv_txn_parse_shape(const struct kv_config *config, bool exec, uint32_t argc,
                       const struct resp_arg *argv, struct kv_txn *t,
                       struct resp_buf *out)
{
    return parse(config, false, exec, argc, argv, t, out);
}

void kv_txn_next_command(const struct resp_arg **pos, uint32_t *argc,
                         const struct resp_arg **argv)
{
    uint64_t n = 0;
    bool ok = parse_count(*pos, UINT32_MAX, &n);
    ASSERT(ok && n >= 1);
    *argc = (uint32_t)n;
    *argv = *pos + 1;
    *pos += 1 + n;
}

static uint64_t list_growth(const struct kv *kv, uint32_t count,
                            const struct resp_arg *pos)
{
    uint64_t growth = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        const struct resp_arg *argv;
        kv_txn_next_command(&pos, &argc, &argv);
        if (kv_command_class(&argv[0]) != KV_CLASS_WRITE)
            continue;
        struct kv_write w;
        struct resp_buf sink;
        resp_buf_init(&sink, 2);
        if (kv_command_parse_logged(&kv->config, argc, argv, &w, &sink) == 0)
            growth += kv_command_growth(kv, &w);
        resp_buf_deinit(&sink);
    }
    return growth;
}

uint64_t kv_txn_growth(const struct kv *kv, const struct kv_txn *t)
{
    return list_growth(kv, t->then_count, t->then_list) +
           list_growth(kv, t->else_count, t->else_list);
}

static int compare_u64(uint64_t have, const struct resp_arg *op, uint64_t want)
{
    if (resp_arg_is(op, "="))
        return have == want;
    if (resp_arg_is(op, "!="))
        return have != want;
    if (resp_arg_is(op, "<"))
        return have < want;
    return have > want;
}

/* Whether compare a (validated) holds at log time now_ms: a key expired
 * then is missing (version 0), so a WATCHed key that expired since the
 * WATCH fails the EXEC, as in Redis. */
static bool compare_holds(const struct kv *kv, uint64_t now_ms,
                          const struct resp_arg *a)
{
    const struct kv_record *rec =
        kv_get(kv, (const uint8_t *)a[0].ptr, a[0].size);
    if (rec != NULL && kv_record_expired(rec, now_ms))
        rec = NULL;
    if (resp_arg_is(&a[1], "exists"))
        return rec != NULL;
    if (resp_arg_is(&a[1], "missing"))
        return rec == NULL;
    if (resp_arg_is(&a[1], "value")) {
        bool equal = rec != NULL && rec->value_size == a[3].size &&
                     (a[3].size == 0 ||
                      memcmp(kv_record_value(rec), a[3].ptr, a[3].size) == 0);
        return resp_arg_is(&a[2], "=") ? equal : !equal;
    }
    uint64_t want = 0;
    bool ok = parse_count(&a[3], UINT64_MAX >> 1, &want);
    ASSERT(ok);
    uint64_t have = 0;
    if (rec != NULL)
        have = resp_arg_is(&a[1], "version") ? rec->version : rec->mod_op;
    return compare_u64(have, &a[2], want);
}

static bool compares_hold(const struct kv *kv, uint64_t now_ms,
                          const struct kv_txn *t)
{
    const struct resp_arg *a = t->compares;
    for (uint32_t i = 0; i < t->compare_count; i++) {
        if (!compare_holds(kv, now_ms, a))
            return false;
        bool two =
            resp_arg_is(&a[1], "exists") || resp_arg_is(&a[1], "missing");
        a += two ? 2 : 4;
    }
    return true;
}

/* Run one command of the list into r; its reply is one element. */
static void run_command(struct kv *kv, uint64_t op, uint64_t now_ms,
                        const struct kv_config *limits, uint32_t argc,
                        const struct resp_arg *argv, struct resp_buf *r)
{
    if (kv_command_class(&argv[0]) == KV_CLASS_READ) {
        kv_query_at(kv, now_ms, argc, argv, r);
        return;
    }
    struct kv_write w;
    int rc = kv_command_parse_logged(limits, argc, argv, &w, r);
    ASSERT(rc == 0); /* checked by kv_txn_parse() with the same limits */
    kv_apply_write(kv, op, &w, r);
}

/* Run a list, keeping the reply within kv_reply_size_max(): before element
 * i of n, r holds at most limit - (n - i) * KV_TXN_REPLY_SLOT bytes. */
static void run_list(struct kv *kv, uint64_t op, uint64_t now_ms,
                     const struct kv_config *limits, uint32_t count,
                     const struct resp_arg *pos, struct resp_buf *r)
{
    size_t limit = kv_reply_size_max(&kv->config);
    resp_write_array(r, count);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        const struct resp_arg *argv;
        kv_txn_next_command(&pos, &argc, &argv);
        size_t start = r->size;
        run_command(kv, op, now_ms, limits, argc, argv, r);
        size_t reserve = (size_t)(count - i - 1) * KV_TXN_REPLY_SLOT;
        if (r->ok && r->size - start > KV_TXN_REPLY_SLOT &&
            r->size + reserve > limit) {
            r->size = start;
            resp_write_error(r, KV_TXN_REPLY_TOO_BIG);
        }
    }
}

void kv_txn_apply(struct kv *kv, uint64_t op, uint64_t now_ms,
                  const struct kv_txn *t, const struct kv_config *limits,
                  struct resp_buf *r)
{
    ASSERT(r->size == 0);
    bool holds = compares_hold(kv, now_ms, t);
    if (t->exec) {
        if (!holds) {
            resp_write_null_array(r);
            return;
        }
        run_list(kv, op, now_ms, limits, t->then_count, t->then_list, r);
        return;
    }
    resp_write_array(r, 2);
    resp_write_integer(r, holds ? 1 : 0);
    if (holds)
        run_list(kv, op, now_ms, limits, t->then_count, t->then_list, r);
    else
        run_list(kv, op, now_ms, limits, t->else_count, t->else_list, r);
}
