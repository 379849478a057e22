/* expire — see expire.h. */
#include "kv/expire.h"

#include <string.h>

#include "common/assert.h"

static bool word_is(const struct resp_arg *arg, const char *word)
{
    size_t n = strlen(word);
    if (arg->size != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = arg->ptr[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

bool kv_expire_has_delta(enum kv_command_type type, uint16_t flags)
{
    switch (type) {
    case KV_CMD_INCRBY:
    case KV_CMD_PEXPIRE:
        return true;
    case KV_CMD_SET:
        return (flags & (KV_SET_PX | KV_SET_PXAT | KV_SET_SESSION)) != 0;
    case KV_CMD_GETEX:
        return (flags & (KV_SET_PX | KV_SET_PXAT)) != 0;
    case KV_CMD_APPEND:
    case KV_CMD_SETRANGE:
    case KV_CMD_INCRBYFLOAT:
    case KV_CMD_TXN:
        return (flags & KV_VALUE_LIMIT) != 0; /* delta: the limit */
    default:
        return false;
    }
}

/* A time argument in seconds (scale 1000) or ms (scale 1) as ms. Redis
 * rejects non-integers, and (for SET and GETEX, positive) values <= 0 or
 * that overflow in ms with "invalid expire time in '<cmd>' command". */
static int parse_ms(const struct resp_arg *arg, int64_t scale, bool positive,
                    const char *cmd, int64_t *ms, struct resp_buf *r)
{
    int64_t n;
    if (!resp_parse_i64((const uint8_t *)arg->ptr, arg->size, &n)) {
        resp_write_error(r, "ERR value is not an integer or out of range");
        return -COHORT_EINVAL;
    }
    if ((positive && n <= 0) || n > INT64_MAX / scale ||
        n < INT64_MIN / scale) {
        resp_write_errorf(r, "ERR invalid expire time in '%s' command", cmd);
        return -COHORT_EINVAL;
    }
    *ms = n * scale;
    return 0;
}

int kv_expire_check_proposed(const struct kv_write *w, const char *command,
                             struct resp_buf *r)
{
    bool relative = false;
    switch (w->type) {
    case KV_CMD_SET:
    case KV_CMD_GETEX:
        relative = (w->flags & KV_SET_PX) != 0;
        break;
    case KV_CMD_PEXPIRE:
        relative = (w->flags & KV_EXPIRE_AT) == 0;
        break;
    default:
        break;
    }
    if (!relative || w->delta <= KV_EXPIRE_RELATIVE_MAX_MS)
        return 0;
    resp_write_errorf(r, "ERR invalid expire time in '%s' command", command);
    return -COHORT_EINVAL;
}

/* EX, PX, EXAT, PXAT (with a value) and, if persist_word, PERSIST or
 * KEEPTTL (without). Returns 1, 0 or -COHORT_EINVAL as the header says. */
static int parse_option(uint32_t argc, const struct resp_arg *argv, uint32_t *j,
                        struct kv_write *w, const char *cmd,
                        const char *bare_word, uint16_t bare_flag,
                        struct resp_buf *r)
{
    static const struct {
        const char *word;
        uint16_t flag;
        int64_t scale;
    } timed[] = {{"ex", KV_SET_PX, 1000},
                 {"px", KV_SET_PX, 1},
                 {"exat", KV_SET_PXAT, 1000},
                 {"pxat", KV_SET_PXAT, 1}};
    const uint16_t all =
        KV_SET_PX | KV_SET_PXAT | KV_SET_KEEPTTL | KV_SET_PERSIST;
    const struct resp_arg *opt = &argv[*j];
    if (word_is(opt, bare_word)) {
        if (w->flags & all) {
            resp_write_error(r, "ERR syntax error");
            return -COHORT_EINVAL;
        }
        w->flags |= bare_flag;
        return 1;
    }
    for (size_t k = 0; k < sizeof(timed) / sizeof(timed[0]); k++) {
        if (!word_is(opt, timed[k].word))
            continue;
        if ((w->flags & all) || *j + 1 >= argc) {
            resp_write_error(r, "ERR syntax error");
            return -COHORT_EINVAL;
        }
        int rc =
            parse_ms(&argv[*j + 1], timed[k].scale, true, cmd, &w->delta, r);
        if (rc != 0)
            return rc;
        w->flags |= timed[k].flag;
        *j += 1;
        return 1;
    }
    return 0;
}

int kv_expire_parse_set_option(uint32_t argc, const struct resp_arg *argv,
                               uint32_t *j, struct kv_write *w,
                               struct resp_buf *r)
{
    return parse_option(argc, argv, j, w, "set", "keepttl", KV_SET_KEEPTTL, r);
}

static int parse_getex(uint32_t argc, const struct resp_arg *argv,
                       struct kv_write *w, struct resp_buf *r)
{
    w->type = KV_CMD_GETEX;
    w->arg_count = 1;
    for (uint32_t j = 2; j < argc; j++) {
        int rc = parse_option(argc, argv, &j, w, "getex", "persist",
                              KV_SET_PERSIST, r);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            resp_write_error(r, "ERR syntax error");
            return -COHORT_EINVAL;
        }
    }
    return 0;
}

/* EXPIRE key n [NX|XX|GT|LT]: NX excludes the others, GT excludes LT, as
 * Redis 7 answers. */
static int parse_expire_flags(uint32_t argc, const struct resp_arg *argv,
                              struct kv_write *w, struct resp_buf *r)
{
    static const struct {
        const char *word;
        uint16_t flag;
    } opts[] = {{"nx", KV_EXPIRE_NX},
                {"xx", KV_EXPIRE_XX},
                {"gt", KV_EXPIRE_GT},
                {"lt", KV_EXPIRE_LT}};
    for (uint32_t j = 3; j < argc; j++) {
        size_t k = 0;
        while (k < 4 && !word_is(&argv[j], opts[k].word))
            k++;
        if (k == 4) {
            char shown[129];
            resp_write_errorf(
                r, "ERR Unsupported option %s",
                resp_show(shown, sizeof(shown), argv[j].ptr, argv[j].size));
            return -COHORT_EINVAL;
        }
        w->flags |= opts[k].flag;
    }
    uint16_t f = w->flags;
    if ((f & KV_EXPIRE_NX) &&
        (f & (KV_EXPIRE_XX | KV_EXPIRE_GT | KV_EXPIRE_LT))) {
        resp_write_error(r, "ERR NX and XX, GT or LT options at the same "
                            "time are not compatible");
        return -COHORT_EINVAL;
    }
    if ((f & KV_EXPIRE_GT) && (f & KV_EXPIRE_LT)) {
        resp_write_error(r, "ERR GT and LT options at the same time are not "
                            "compatible");
        return -COHORT_EINVAL;
    }
    return 0;
}

/* SETEX key seconds value and PSETEX key ms value: SET key value EX|PX n,
 * the same log op. Redis refuses n <= 0 as it does for SET's EX and PX. */
static int parse_setex(const struct resp_arg *argv, bool seconds,
                       struct kv_write *w, struct resp_buf *r)
{
    w->type = KV_CMD_SET;
    w->flags = KV_SET_PX;
    w->own_args[0] = argv[1];
    w->own_args[1] = argv[3];
    w->args = w->own_args;
    w->arg_count = 2;
    return parse_ms(&argv[2], seconds ? 1000 : 1, true,
                    seconds ? "setex" : "psetex", &w->delta, r);
}

int kv_expire_parse(uint32_t argc, const struct resp_arg *argv,
                    struct kv_write *w, struct resp_buf *r)
{
    if (word_is(&argv[0], "setex") || word_is(&argv[0], "psetex"))
        return parse_setex(argv, word_is(&argv[0], "setex"), w, r);
    if (word_is(&argv[0], "persist")) {
        w->type = KV_CMD_PERSIST;
        w->arg_count = 1;
        return 0;
    }
    if (word_is(&argv[0], "getex"))
        return parse_getex(argc, argv, w, r);
    bool seconds = word_is(&argv[0], "expire") || word_is(&argv[0], "expireat");
    bool at = word_is(&argv[0], "expireat") || word_is(&argv[0], "pexpireat");
    static const char *const names[2][2] = {{"pexpire", "pexpireat"},
                                            {"expire", "expireat"}};
    w->type = KV_CMD_PEXPIRE;
    w->arg_count = 1;
    w->flags = at ? KV_EXPIRE_AT : 0;
    int rc = parse_ms(&argv[2], seconds ? 1000 : 1, false, names[seconds][at],
                      &w->delta, r);
    if (rc != 0)
        return rc;
    return parse_expire_flags(argc, argv, w, r);
}

static const char *check_set_flags(uint16_t flags, uint16_t allowed)
{
    if (flags & ~allowed)
        return "unknown expiry flags";
    uint16_t f = flags & (KV_SET_PX | KV_SET_PXAT | KV_SET_KEEPTTL |
                          KV_SET_PERSIST | KV_SET_SESSION);
    if ((f & (f - 1)) != 0)
        return "more than one expiry option";
    return NULL;
}

const char *kv_expire_check_header(const struct kv_command *c)
{
    const uint16_t set = KV_SET_NX | KV_SET_XX | KV_SET_GET | KV_SET_PX |
                         KV_SET_PXAT | KV_SET_KEEPTTL | KV_SET_SESSION;
    const uint16_t expire = KV_EXPIRE_AT | KV_EXPIRE_NX | KV_EXPIRE_XX |
                            KV_EXPIRE_GT | KV_EXPIRE_LT;
    switch (c->type) {
    case KV_CMD_SET:
        return check_set_flags(c->flags, set);
    case KV_CMD_GETEX:
        if (c->arg_count != 1)
            return "GETEX needs 1 argument";
        return check_set_flags(c->flags,
                               KV_SET_PX | KV_SET_PXAT | KV_SET_PERSIST);
    case KV_CMD_PEXPIRE:
        if (c->flags & ~expire)
            return "unknown PEXPIRE flags";
        return c->arg_count == 1 ? NULL : "PEXPIRE needs 1 argument";
    case KV_CMD_PERSIST:
        if (c->flags != 0)
            return "flags on PERSIST";
        return c->arg_count == 1 ? NULL : "PERSIST needs 1 argument";
    case KV_CMD_EXPIRE_DUE:
        if (c->flags != 0)
            return "flags on EXPIRE_DUE";
        return c->arg_count >= 1 ? NULL : "EXPIRE_DUE needs a key";
    default:
        return "unknown command type";
    }
}

/* Whether argument i of a command of this type names a key. */
static bool arg_is_key(enum kv_command_type type, uint32_t i)
{
    switch (type) {
    case KV_CMD_SET:
    case KV_CMD_INCRBY:
    case KV_CMD_CAS:
    case KV_CMD_PEXPIRE:
    case KV_CMD_PERSIST:
    case KV_CMD_GETEX:
        return i == 0;
    case KV_CMD_DEL:
        return true;
    case KV_CMD_MSET:
    case KV_CMD_MSETNX:
        return i % 2 == 0;
    case KV_CMD_GETDEL:
    case KV_CMD_APPEND:
    case KV_CMD_SETRANGE:
    case KV_CMD_INCRBYFLOAT:
        return i == 0;
    case KV_CMD_COPY:
    case KV_CMD_RENAME:
        return i <= 1;
    default:
        return false; /* ACL names; EXPIRE_DUE checks its own */
    }
}

void kv_expire_drop_due(struct kv *kv, const struct kv_command *c,
                        uint64_t now_ms)
{
    if (kv->expires_count == 0)
        return;
    struct kv_command scan = *c;
    for (uint32_t i = 0; i < c->arg_count; i++) {
        const uint8_t *key;
        size_t key_size;
        kv_command_next_arg(&scan, &key, &key_size);
        if (!arg_is_key(c->type, i))
            continue;
        const struct kv_record *rec = kv_get(kv, key, key_size);
        if (rec != NULL && kv_record_expired(rec, now_ms) &&
            kv_del_expired(kv, key, key_size))
            kv->expired_keys++;
    }
}

bool kv_expire_absolute(const struct kv_write *w)
{
    switch (w->type) {
    case KV_CMD_SET:
    case KV_CMD_GETEX:
        return (w->flags & KV_SET_PXAT) != 0;
    case KV_CMD_PEXPIRE:
        return (w->flags & KV_EXPIRE_AT) != 0;
    default:
        return false;
    }
}

void kv_expire_absolute_to_log(struct kv_write *w, uint64_t wall_ms,
                               uint64_t log_ms)
{
    if (!kv_expire_absolute(w))
        return;
    /* delta - (wall - log), saturating at the ends of i64. */
    int64_t at = w->delta;
    if (wall_ms >= log_ms) {
        uint64_t back = wall_ms - log_ms;
        if (back > (uint64_t)INT64_MAX || at < INT64_MIN + (int64_t)back)
            at = INT64_MIN;
        else
            at -= (int64_t)back;
    } else {
        uint64_t ahead = log_ms - wall_ms;
        if (ahead > (uint64_t)INT64_MAX || at > INT64_MAX - (int64_t)ahead)
            at = INT64_MAX;
        else
            at += (int64_t)ahead;
    }
    w->delta = at;
}

/* The expiry a PX (relative) or PXAT (absolute) delta gives at now_ms. */
static bool expiry_time(uint16_t flags, int64_t delta, uint64_t now_ms,
                        uint64_t *at_ms)
{
    if (flags & KV_SET_PXAT) {
        *at_ms = delta > 0 ? (uint64_t)delta : 1;
        return true;
    }
    if (delta <= 0) {
        *at_ms = 1; /* already past: now_ms >= 1 or the key is due anyway */
        return now_ms >= 1;
    }
    if ((uint64_t)delta > (uint64_t)INT64_MAX - now_ms)
        return false;
    *at_ms = now_ms + (uint64_t)delta;
    return true;
}

bool kv_expire_set_time(const struct kv_command *c, uint64_t now_ms,
                        uint64_t *at_ms)
{
    *at_ms = 0;
    if (!(c->flags & (KV_SET_PX | KV_SET_PXAT)))
        return true;
    return expiry_time(c->flags, c->delta, now_ms, at_ms);
}

/* Whether Redis 7's NX/XX/GT/LT let an expiry at at_ms replace old_ms (0:
 * none, which counts as infinite for GT and LT). */
static bool expire_allowed(uint16_t flags, uint64_t old_ms, uint64_t at_ms)
{
    if ((flags & KV_EXPIRE_NX) && old_ms != 0)
        return false;
    if ((flags & KV_EXPIRE_XX) && old_ms == 0)
        return false;
    if ((flags & KV_EXPIRE_GT) && (old_ms == 0 || at_ms <= old_ms))
        return false;
    if ((flags & KV_EXPIRE_LT) && old_ms != 0 && at_ms >= old_ms)
        return false;
    return true;
}

/* PEXPIRE: :1 if the expiry was set (or the key deleted because the time
 * is already past), :0 if the key is missing or an option forbade it. */
static void apply_pexpire(struct kv *kv, uint64_t now_ms, const uint8_t *key,
                          size_t key_size, const struct kv_command *c,
                          struct resp_buf *r)
{
    const struct kv_record *rec = kv_get(kv, key, key_size);
    if (rec == NULL) {
        resp_write_integer(r, 0);
        return;
    }
    bool at = (c->flags & KV_EXPIRE_AT) != 0;
    bool past =
        at ? c->delta <= 0 || (uint64_t)c->delta <= now_ms : c->delta <= 0;
    uint64_t at_ms = 0;
    if (!past &&
        !expiry_time(at ? KV_SET_PXAT : KV_SET_PX, c->delta, now_ms, &at_ms)) {
        resp_write_error(r, at ? "ERR invalid expire time in 'pexpireat' "
                                 "command"
                               : "ERR invalid expire time in 'pexpire' "
                                 "command");
        return;
    }
    if (!expire_allowed(c->flags, rec->expire_at_ms, past ? now_ms : at_ms)) {
        resp_write_integer(r, 0);
        return;
    }
    if (past)
        (void)kv_del(kv, key, key_size);
    else
        (void)kv_expire_set(kv, key, key_size, at_ms);
    resp_write_integer(r, 1);
}

/* GETEX: the value (or nil), then the expiry change if the key exists. */
static void apply_getex(struct kv *kv, uint64_t now_ms, const uint8_t *key,
                        size_t key_size, const struct kv_command *c,
                        struct resp_buf *r)
{
    const struct kv_record *rec = kv_get(kv, key, key_size);
    uint64_t at_ms = 0;
    if (!kv_expire_set_time(c, now_ms, &at_ms)) {
        resp_write_error(r, "ERR invalid expire time in 'getex' command");
        return;
    }
    if (rec == NULL) {
        resp_write_null(r);
        return;
    }
    resp_write_bulk(r, kv_record_value(rec), rec->value_size);
    if (at_ms != 0 && at_ms <= now_ms)
        (void)kv_del(kv, key, key_size);
    else if (at_ms != 0 || (c->flags & KV_SET_PERSIST))
        (void)kv_expire_set(kv, key, key_size, at_ms);
}

/* EXPIRE_DUE: remove the named keys that are due at the op's own time
 * (invariant 2); :n removed. */
static void apply_expire_due(struct kv *kv, uint64_t now_ms,
                             struct kv_command *c, struct resp_buf *r)
{
    int64_t removed = 0;
    for (uint32_t i = 0; i < c->arg_count; i++) {
        const uint8_t *key;
        size_t key_size;
        kv_command_next_arg(c, &key, &key_size);
        const struct kv_record *rec = kv_get(kv, key, key_size);
        if (rec != NULL && kv_record_expired(rec, now_ms))
            removed += kv_del_expired(kv, key, key_size);
    }
    kv->expired_keys += (uint64_t)removed;
    resp_write_integer(r, removed);
}

struct batch {
    struct resp_arg *keys;
    uint32_t count;
    size_t bytes, bytes_max;
};

static bool batch_add(void *ctx, const struct kv_record *r)
{
    struct batch *b = ctx;
    size_t cost = 4 + (size_t)r->key_size;
    if (b->count > 0 && b->bytes + cost > b->bytes_max)
        return false;
    b->keys[b->count].ptr = (const char *)kv_record_key(r);
    b->keys[b->count].size = r->key_size;
    b->count++;
    b->bytes += cost;
    return true;
}

uint32_t kv_expire_batch(const struct kv *kv, uint64_t now_ms,
                         struct resp_arg keys[KV_EXPIRE_BATCH_KEYS],
                         struct kv_write *w)
{
    size_t bytes_max = KV_EXPIRE_BATCH_BYTES;
    if (bytes_max > 2048u + kv->config.key_size_max)
        bytes_max = 2048u + kv->config.key_size_max;
    struct batch b = {.keys = keys, .bytes_max = bytes_max};
    (void)kv_expire_index_due(&kv->expiry, now_ms, KV_EXPIRE_BATCH_KEYS,
                              batch_add, &b);
    memset(w, 0, sizeof(*w));
    w->type = KV_CMD_EXPIRE_DUE;
    w->arg_count = b.count;
    w->args = keys;
    return b.count;
}

/* Whether key's expiry lies in (from_ms, to_ms]. */
static bool key_between(const struct kv *kv, const struct resp_arg *key,
                        uint64_t from_ms, uint64_t to_ms)
{
    const struct kv_record *rec =
        kv_get(kv, (const uint8_t *)key->ptr, key->size);
    return rec != NULL && rec->expire_at_ms > from_ms &&
           rec->expire_at_ms <= to_ms;
}

bool kv_expire_read_settled(const struct kv *kv, uint64_t now_ms, bool keyed,
                            uint32_t argc, const struct resp_arg *argv)
{
    if (now_ms <= kv->time_ms || kv->expires_count == 0)
        return true;
    if (!keyed)
        return !kv_expire_index_any_between(&kv->expiry, kv->time_ms, now_ms);
    for (uint32_t i = 1; i < argc; i++) {
        if (key_between(kv, &argv[i], kv->time_ms, now_ms))
            return false;
    }
    return true;
}

void kv_expire_apply(struct kv *kv, uint64_t now_ms, struct kv_command *c,
                     struct resp_buf *r)
{
    if (c->type == KV_CMD_EXPIRE_DUE) {
        apply_expire_due(kv, now_ms, c, r);
        return;
    }
    const uint8_t *key;
    size_t key_size;
    kv_command_next_arg(c, &key, &key_size);
    switch (c->type) {
    case KV_CMD_PEXPIRE:
        apply_pexpire(kv, now_ms, key, key_size, c, r);
        return;
    case KV_CMD_PERSIST: {
        const struct kv_record *rec = kv_get(kv, key, key_size);
        bool had = rec != NULL && rec->expire_at_ms != 0;
        if (had)
            (void)kv_expire_set(kv, key, key_size, 0);
        resp_write_integer(r, had);
        return;
    }
    case KV_CMD_GETEX:
        apply_getex(kv, now_ms, key, key_size, c, r);
        return;
    default:
        UNREACHABLE();
    }
}

void kv_expire_query_ttl(const struct kv *kv, uint64_t now_ms,
                         const struct resp_arg *key, bool ms,
                         struct resp_buf *r)
{
    const struct kv_record *rec =
        kv_get(kv, (const uint8_t *)key->ptr, key->size);
    if (rec == NULL || kv_record_expired(rec, now_ms)) {
        resp_write_integer(r, -2);
        return;
    }
    if (rec->expire_at_ms == 0) {
        resp_write_integer(r, -1);
        return;
    }
    uint64_t left = rec->expire_at_ms - now_ms;
    /* As Redis: TTL rounds to the nearest second. */
    uint64_t v = ms ? left : (left + 500) / 1000;
    resp_write_integer(r, v > INT64_MAX ? INT64_MAX : (int64_t)v);
}
