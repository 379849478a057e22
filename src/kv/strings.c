/* strings — more string and keyspace commands. See strings.h. */
#include "kv/strings.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

#define ERR_NOT_INTEGER "ERR value is not an integer or out of range"
#define ERR_NOT_FLOAT "ERR value is not a valid float"
#define ERR_SYNTAX "ERR syntax error"
#define ERR_NO_SUCH_KEY "ERR no such key"
#define ERR_SAME_OBJECT "ERR source and destination objects are the same"
#define ERR_OFFSET "ERR offset is out of range"

enum strings_id {
    ID_GETDEL = KV_STRINGS_ID_FIRST,
    ID_GETSET,
    ID_SETNX,
    ID_MSETNX,
    ID_APPEND,
    ID_SETRANGE,
    ID_INCRBYFLOAT,
    ID_UNLINK,
    ID_COPY,
    ID_RENAME,
    ID_RENAMENX,
    ID_FLUSHDB,
    ID_FLUSHALL,
    ID_STRLEN,
    ID_GETRANGE,
    ID_SUBSTR,
};

static const struct kv_command_def table[] = {
    {"getdel", ID_GETDEL, KV_CLASS_WRITE, 2},
    {"getset", ID_GETSET, KV_CLASS_WRITE, 3},
    {"setnx", ID_SETNX, KV_CLASS_WRITE, 3},
    {"msetnx", ID_MSETNX, KV_CLASS_WRITE, -3},
    {"append", ID_APPEND, KV_CLASS_WRITE, 3},
    {"setrange", ID_SETRANGE, KV_CLASS_WRITE, 4},
    {"incrbyfloat", ID_INCRBYFLOAT, KV_CLASS_WRITE, 3},
    {"unlink", ID_UNLINK, KV_CLASS_WRITE, -2},
    {"copy", ID_COPY, KV_CLASS_WRITE, -3},
    {"rename", ID_RENAME, KV_CLASS_WRITE, 3},
    {"renamenx", ID_RENAMENX, KV_CLASS_WRITE, 3},
    {"flushdb", ID_FLUSHDB, KV_CLASS_WRITE, -1},
    {"flushall", ID_FLUSHALL, KV_CLASS_WRITE, -1},
    {"strlen", ID_STRLEN, KV_CLASS_READ, 2},
    {"getrange", ID_GETRANGE, KV_CLASS_READ, 4},
    {"substr", ID_SUBSTR, KV_CLASS_READ, 4},
};

#define TABLE_COUNT (sizeof(table) / sizeof(table[0]))

const struct kv_command_def *kv_strings_find(const struct resp_arg *name)
{
    for (size_t i = 0; i < TABLE_COUNT; i++)
        if (resp_arg_is(name, table[i].name))
            return &table[i];
    return NULL;
}

/* ------------------------------------------------------------ numbers */

/* Redis's string2ld(): the whole text, no leading space, not nan, and not
 * out of range (overflow to inf or underflow to zero). "inf" is accepted,
 * as in Redis; the sum then fails. strtold reads the C locale's digits. */
static bool parse_float(const void *text, size_t size, long double *out)
{
    char buf[KV_FLOAT_TEXT_MAX];
    if (size == 0 || size >= sizeof(buf))
        return false;
    memcpy(buf, text, size);
    buf[size] = '\0';
    if (isspace((unsigned char)buf[0]))
        return false;
    char *end = NULL;
    errno = 0;
    long double v = strtold(buf, &end);
    if (end != buf + size || isnan(v))
        return false;
    if (errno == ERANGE &&
        (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO))
        return false;
    *out = v;
    return true;
}

/* Redis's ld2string() in LD_STR_HUMAN mode: "%.17Lf", then the trailing
 * zeros (and a bare '.') cut, "-0" as "0". v is finite. Returns the size of
 * the text in buf (KV_FLOAT_TEXT_MAX bytes: the largest long double takes
 * 4933 digits before the point). */
static size_t format_float(long double v, char *buf)
{
    int n = snprintf(buf, KV_FLOAT_TEXT_MAX, "%.17Lf", v);
    ASSERT(n > 0 && (size_t)n < KV_FLOAT_TEXT_MAX);
    size_t size = (size_t)n;
    if (memchr(buf, '.', size) != NULL) {
        while (buf[size - 1] == '0')
            size--;
        if (buf[size - 1] == '.')
            size--;
    }
    if (size == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        size = 1;
    }
    return size;
}

/* INCRBYFLOAT's result from the stored value (NULL: missing, read as 0).
 * Returns its text size in buf, or 0 after writing the error to r (r may
 * be NULL). */
static size_t incrbyfloat_result(const struct kv_record *old,
                                 const uint8_t *incr, size_t incr_size,
                                 char *buf, struct resp_buf *r)
{
    long double value = 0, by = 0;
    if ((old != NULL &&
         !parse_float(kv_record_value(old), old->value_size, &value)) ||
        !parse_float(incr, incr_size, &by)) {
        if (r != NULL)
            resp_write_error(r, ERR_NOT_FLOAT);
        return 0;
    }
    value += by;
    if (isnan(value) || isinf(value)) {
        if (r != NULL)
            resp_write_error(r, "ERR increment would produce NaN or Infinity");
        return 0;
    }
    return format_float(value, buf);
}

/* SETRANGE's offset: a non-negative integer. */
static bool parse_offset(const void *text, size_t size, int64_t *offset,
                         struct resp_buf *r)
{
    if (!resp_parse_i64(text, size, offset)) {
        resp_write_error(r, ERR_NOT_INTEGER);
        return false;
    }
    if (*offset < 0) {
        resp_write_error(r, ERR_OFFSET);
        return false;
    }
    return true;
}

/* Redis's checkStringLength(), against limit: the proposer's
 * max-value-size (at parse, the store's own; at apply, the one the op
 * carries, kv_value_limit()). */
static bool length_ok(uint32_t limit, uint64_t size, struct resp_buf *r)
{
    if (size <= limit)
        return true;
    resp_write_errorf(r,
                      "ERR string exceeds maximum allowed size: %" PRIu64
                      " bytes; limit is %" PRIu32 " (max-value-size)",
                      size, limit);
    return false;
}

/* ------------------------------------------------------------ parsing */

static const struct kv_record *get_arg(const struct kv *kv,
                                       const struct resp_arg *key)
{
    return kv_get(kv, (const uint8_t *)key->ptr, key->size);
}

static bool same_bytes(const void *a, size_t a_size, const void *b,
                       size_t b_size)
{
    return a_size == b_size && (a_size == 0 || memcmp(a, b, a_size) == 0);
}

/* COPY src dst [DB n] [REPLACE], options as Redis's copyCommand(). */
static int parse_copy(uint32_t argc, const struct resp_arg *argv,
                      struct kv_write *w, struct resp_buf *r)
{
    w->type = KV_CMD_COPY;
    w->arg_count = 2;
    for (uint32_t j = 3; j < argc; j++) {
        if (resp_arg_is(&argv[j], "replace")) {
            w->flags |= KV_COPY_REPLACE;
            continue;
        }
        if (!resp_arg_is(&argv[j], "db") || j + 1 >= argc) {
            resp_write_error(r, ERR_SYNTAX);
            return -COHORT_EINVAL;
        }
        int64_t db;
        if (!resp_parse_i64(argv[j + 1].ptr, argv[j + 1].size, &db)) {
            resp_write_error(r, ERR_NOT_INTEGER);
            return -COHORT_EINVAL;
        }
        if (db != 0) {
            resp_write_error(r, "ERR DB index is out of range: cohort has "
                                "one database, 0");
            return -COHORT_EINVAL;
        }
        j++;
    }
    if (same_bytes(argv[1].ptr, argv[1].size, argv[2].ptr, argv[2].size)) {
        resp_write_error(r, ERR_SAME_OBJECT);
        return -COHORT_EINVAL;
    }
    return 0;
}

/* FLUSHDB and FLUSHALL [ASYNC|SYNC]: both run synchronously in apply. */
static int parse_flush(uint32_t argc, const struct resp_arg *argv,
                       struct kv_write *w, struct resp_buf *r)
{
    if (argc > 2 || (argc == 2 && !resp_arg_is(&argv[1], "async") &&
                     !resp_arg_is(&argv[1], "sync"))) {
        resp_write_error(r, ERR_SYNTAX);
        return -COHORT_EINVAL;
    }
    w->type = KV_CMD_FLUSHALL;
    w->arg_count = 0;
    return 0;
}

/* The checks that need the argument values, not the state. */
static int parse_values(const struct kv_config *config,
                        const struct kv_command_def *def,
                        const struct resp_arg *argv, struct resp_buf *r)
{
    int64_t offset = 0;
    long double f;
    switch (def->id) {
    case ID_SETRANGE:
        if (!parse_offset(argv[2].ptr, argv[2].size, &offset, r))
            return -COHORT_EINVAL;
        if (argv[3].size > 0 && !length_ok(config->value_size_max,
                                           (uint64_t)offset + argv[3].size, r))
            return -COHORT_EINVAL;
        return 0;
    case ID_INCRBYFLOAT:
        if (!parse_float(argv[2].ptr, argv[2].size, &f)) {
            resp_write_error(r, ERR_NOT_FLOAT);
            return -COHORT_EINVAL;
        }
        return 0;
    default:
        return 0;
    }
}

int kv_strings_parse(const struct kv_config *config,
                     const struct kv_command_def *def, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *r)
{
    static const enum kv_command_type types[] = {
        [ID_GETDEL - KV_STRINGS_ID_FIRST] = KV_CMD_GETDEL,
        [ID_GETSET - KV_STRINGS_ID_FIRST] = KV_CMD_SET,
        [ID_SETNX - KV_STRINGS_ID_FIRST] = KV_CMD_MSETNX,
        [ID_MSETNX - KV_STRINGS_ID_FIRST] = KV_CMD_MSETNX,
        [ID_APPEND - KV_STRINGS_ID_FIRST] = KV_CMD_APPEND,
        [ID_SETRANGE - KV_STRINGS_ID_FIRST] = KV_CMD_SETRANGE,
        [ID_INCRBYFLOAT - KV_STRINGS_ID_FIRST] = KV_CMD_INCRBYFLOAT,
        [ID_UNLINK - KV_STRINGS_ID_FIRST] = KV_CMD_DEL,
        [ID_RENAME - KV_STRINGS_ID_FIRST] = KV_CMD_RENAME,
        [ID_RENAMENX - KV_STRINGS_ID_FIRST] = KV_CMD_RENAME,
    };
    ASSERT(kv_strings_owns(def));
    ASSERT(def->class == KV_CLASS_WRITE);
    if (def->id == ID_COPY)
        return parse_copy(argc, argv, w, r);
    if (def->id == ID_FLUSHDB || def->id == ID_FLUSHALL)
        return parse_flush(argc, argv, w, r);
    size_t i = (size_t)(def->id - KV_STRINGS_ID_FIRST);
    ASSERT(i < sizeof(types) / sizeof(types[0]) && types[i] != 0);
    if (def->id == ID_MSETNX && argc % 2 == 0) {
        resp_write_errorf(r, "ERR wrong number of arguments for '%s' command",
                          def->name);
        return -COHORT_EINVAL;
    }
    w->type = types[i];
    w->arg_count = argc - 1;
    if (def->id == ID_GETSET)
        w->flags = KV_SET_GET;
    if (def->id == ID_RENAMENX)
        w->flags = KV_RENAME_NX;
    if (def->id == ID_APPEND || def->id == ID_SETRANGE ||
        def->id == ID_INCRBYFLOAT) {
        w->flags = KV_VALUE_LIMIT;
        w->delta = config->value_size_max;
    }
    return parse_values(config, def, argv, r);
}

enum kv_arg_role kv_strings_arg_role(enum kv_command_type type, uint32_t i)
{
    switch (type) {
    case KV_CMD_MSETNX:
        return i % 2 == 0 ? KV_ARG_KEY : KV_ARG_VALUE;
    case KV_CMD_APPEND:
    case KV_CMD_INCRBYFLOAT:
        return i == 0 ? KV_ARG_KEY : i == 1 ? KV_ARG_VALUE : KV_ARG_OTHER;
    case KV_CMD_SETRANGE:
        return i == 0 ? KV_ARG_KEY : i == 2 ? KV_ARG_VALUE : KV_ARG_OTHER;
    case KV_CMD_COPY:
    case KV_CMD_RENAME:
        /* A source over the key limit cannot exist. */
        return i == 1 ? KV_ARG_KEY : KV_ARG_OTHER;
    default:
        /* GETDEL: a key over the limit cannot exist. FLUSHALL: none. */
        return KV_ARG_OTHER;
    }
}

const char *kv_strings_check_header(const struct kv_command *c)
{
    uint16_t allowed = 0;
    uint32_t want = 0;
    switch (c->type) {
    case KV_CMD_GETDEL:
        want = 1;
        break;
    case KV_CMD_MSETNX:
        if (c->flags != 0)
            return "flags on MSETNX";
        if (c->arg_count < 2 || c->arg_count % 2 != 0)
            return "MSETNX needs key-value pairs";
        return NULL;
    case KV_CMD_APPEND:
    case KV_CMD_INCRBYFLOAT:
        allowed = KV_VALUE_LIMIT;
        want = 2;
        break;
    case KV_CMD_SETRANGE:
        allowed = KV_VALUE_LIMIT;
        want = 3;
        break;
    case KV_CMD_COPY:
        allowed = KV_COPY_REPLACE;
        want = 2;
        break;
    case KV_CMD_RENAME:
        allowed = KV_RENAME_NX;
        want = 2;
        break;
    case KV_CMD_FLUSHALL:
        want = 0;
        break;
    default:
        return "unknown command type";
    }
    if (c->flags & ~allowed)
        return "unknown flags for the command type";
    return c->arg_count == want ? NULL : "wrong argument count for the type";
}

/* ------------------------------------------------------------ growth */

/* What giving key a value of value_size adds to kv_used_memory(). */
static uint64_t put_growth(const struct kv *kv, const void *key,
                           size_t key_size, size_t value_size)
{
    const struct kv_record *old = kv_get(kv, key, key_size);
    if (old == NULL)
        return kv_record_cost(key_size, value_size);
    return value_size > old->value_size ? value_size - old->value_size : 0;
}

static uint64_t setrange_growth(const struct kv *kv, const struct kv_write *w)
{
    int64_t offset = 0;
    if (w->args[2].size == 0 ||
        !resp_parse_i64(w->args[1].ptr, w->args[1].size, &offset) || offset < 0)
        return 0;
    const struct kv_record *old = get_arg(kv, &w->args[0]);
    uint64_t end = (uint64_t)offset + w->args[2].size;
    if (old != NULL && old->value_size >= end)
        return 0;
    return put_growth(kv, w->args[0].ptr, w->args[0].size, (size_t)end);
}

uint64_t kv_strings_growth(const struct kv *kv, const struct kv_write *w)
{
    const struct resp_arg *a = w->args;
    const struct kv_record *old = NULL;
    uint64_t growth = 0;
    char text[KV_FLOAT_TEXT_MAX];
    size_t size;
    switch (w->type) {
    case KV_CMD_MSETNX:
        for (uint32_t i = 0; i + 1 < w->arg_count; i += 2)
            growth += put_growth(kv, a[i].ptr, a[i].size, a[i + 1].size);
        return growth;
    case KV_CMD_APPEND:
        old = get_arg(kv, &a[0]);
        return old ? a[1].size : kv_record_cost(a[0].size, a[1].size);
    case KV_CMD_SETRANGE:
        return setrange_growth(kv, w);
    case KV_CMD_INCRBYFLOAT:
        old = get_arg(kv, &a[0]);
        size = incrbyfloat_result(old, (const uint8_t *)a[1].ptr, a[1].size,
                                  text, NULL);
        return size ? put_growth(kv, a[0].ptr, a[0].size, size) : 0;
    case KV_CMD_COPY:
    case KV_CMD_RENAME:
        old = get_arg(kv, &a[0]);
        return old ? put_growth(kv, a[1].ptr, a[1].size, old->value_size) : 0;
    default:
        return 0; /* GETDEL, FLUSHALL */
    }
}

/* ------------------------------------------------------------ apply */

static void die_oom(void)
{
    cohort_assert_fail("out of memory applying a committed op", __FILE__,
                       __LINE__);
}

/* A replica that cannot apply a committed op must stop rather than diverge
 * from the group; it recovers from its snapshot and log on restart. */
static void must_put(struct kv *kv, const uint8_t *key, size_t key_size,
                     const uint8_t *value, size_t value_size, uint64_t op)
{
    if (kv_put(kv, key, key_size, value, value_size, op) != 0)
        die_oom();
}

/* A copy of a record's value, which kv_put() may not read from the store:
 * malloc'd, freed by the caller. */
static uint8_t *value_copy(const struct kv_record *rec)
{
    uint8_t *copy = malloc(rec->value_size ? rec->value_size : 1);
    if (copy == NULL)
        die_oom();
    if (rec->value_size)
        memcpy(copy, kv_record_value(rec), rec->value_size);
    return copy;
}

struct arg {
    const uint8_t *ptr;
    size_t size;
};

static struct arg next_arg(struct kv_command *c)
{
    struct arg a;
    kv_command_next_arg(c, &a.ptr, &a.size);
    return a;
}

static void apply_getdel(struct kv *kv, struct kv_command *c,
                         struct resp_buf *r)
{
    struct arg key = next_arg(c);
    const struct kv_record *rec = kv_get(kv, key.ptr, key.size);
    if (rec == NULL) {
        resp_write_null(r);
        return;
    }
    resp_write_bulk(r, kv_record_value(rec), rec->value_size);
    (void)kv_del(kv, key.ptr, key.size);
}

/* MSETNX (and SETNX): every key is checked before any is set. */
static void apply_msetnx(struct kv *kv, uint64_t op, struct kv_command *c,
                         struct resp_buf *r)
{
    struct kv_command scan = *c;
    for (uint32_t i = 0; i < c->arg_count; i += 2) {
        struct arg key = next_arg(&scan);
        (void)next_arg(&scan);
        if (kv_get(kv, key.ptr, key.size) != NULL) {
            resp_write_integer(r, 0);
            return;
        }
    }
    for (uint32_t i = 0; i < c->arg_count; i += 2) {
        struct arg key = next_arg(c);
        struct arg value = next_arg(c);
        must_put(kv, key.ptr, key.size, value.ptr, value.size, op);
    }
    resp_write_integer(r, 1);
}

/* APPEND and SETRANGE: the new value is built in a buffer, then put. */
static void put_spliced(struct kv *kv, uint64_t op, const struct kv_command *c,
                        struct arg key, const struct kv_record *old,
                        uint64_t offset, struct arg piece, struct resp_buf *r)
{
    size_t old_size = old ? old->value_size : 0;
    uint64_t end = offset + piece.size;
    if (!length_ok(kv_value_limit(c), end, r))
        return;
    size_t size = end > old_size ? (size_t)end : old_size;
    uint8_t *value = calloc(size ? size : 1, 1);
    if (value == NULL)
        die_oom();
    if (old_size)
        memcpy(value, kv_record_value(old), old_size);
    if (piece.size)
        memcpy(value + offset, piece.ptr, piece.size);
    must_put(kv, key.ptr, key.size, value, size, op);
    free(value);
    resp_write_integer(r, (int64_t)size);
}

static void apply_append(struct kv *kv, uint64_t op, struct kv_command *c,
                         struct resp_buf *r)
{
    struct arg key = next_arg(c);
    struct arg piece = next_arg(c);
    const struct kv_record *old = kv_get(kv, key.ptr, key.size);
    put_spliced(kv, op, c, key, old, old ? old->value_size : 0, piece, r);
}

/* As Redis's setrangeCommand(): an empty value writes nothing. */
static void apply_setrange(struct kv *kv, uint64_t op, struct kv_command *c,
                           struct resp_buf *r)
{
    struct arg key = next_arg(c);
    struct arg offset_text = next_arg(c);
    struct arg piece = next_arg(c);
    int64_t offset;
    if (!parse_offset(offset_text.ptr, offset_text.size, &offset, r))
        return;
    const struct kv_record *old = kv_get(kv, key.ptr, key.size);
    if (piece.size == 0) {
        resp_write_integer(r, old ? (int64_t)old->value_size : 0);
        return;
    }
    put_spliced(kv, op, c, key, old, (uint64_t)offset, piece, r);
}

static void apply_incrbyfloat(struct kv *kv, uint64_t op, struct kv_command *c,
                              struct resp_buf *r)
{
    struct arg key = next_arg(c);
    struct arg incr = next_arg(c);
    char text[KV_FLOAT_TEXT_MAX];
    const struct kv_record *old = kv_get(kv, key.ptr, key.size);
    size_t size = incrbyfloat_result(old, incr.ptr, incr.size, text, r);
    if (size == 0)
        return;
    if (!length_ok(kv_value_limit(c), size, r))
        return;
    must_put(kv, key.ptr, key.size, (const uint8_t *)text, size, op);
    resp_write_bulk(r, text, size);
}

/* COPY: the destination takes the source's expiry too (none if it has
 * none), as in Redis. */
static void apply_copy(struct kv *kv, uint64_t op, struct kv_command *c,
                       struct resp_buf *r)
{
    struct arg src = next_arg(c);
    struct arg dst = next_arg(c);
    if (same_bytes(src.ptr, src.size, dst.ptr, dst.size)) {
        resp_write_error(r, ERR_SAME_OBJECT);
        return;
    }
    const struct kv_record *from = kv_get(kv, src.ptr, src.size);
    if (from == NULL ||
        (!(c->flags & KV_COPY_REPLACE) && kv_get(kv, dst.ptr, dst.size))) {
        resp_write_integer(r, 0);
        return;
    }
    size_t size = from->value_size;
    uint64_t expire_at_ms = from->expire_at_ms;
    uint8_t *value = value_copy(from);
    must_put(kv, dst.ptr, dst.size, value, size, op);
    free(value);
    (void)kv_expire_set(kv, dst.ptr, dst.size, expire_at_ms);
    resp_write_integer(r, 1);
}

/* RENAME and RENAMENX: the destination takes the source's expiry (and a
 * RENAME over a key with a TTL drops that TTL), as in Redis. */
static void apply_rename(struct kv *kv, uint64_t op, struct kv_command *c,
                         struct resp_buf *r)
{
    bool nx = (c->flags & KV_RENAME_NX) != 0;
    struct arg src = next_arg(c);
    struct arg dst = next_arg(c);
    const struct kv_record *from = kv_get(kv, src.ptr, src.size);
    if (from == NULL) {
        resp_write_error(r, ERR_NO_SUCH_KEY);
        return;
    }
    bool done = false;
    if (same_bytes(src.ptr, src.size, dst.ptr, dst.size)) {
        /* Redis: nothing changes. */
    } else if (nx && kv_get(kv, dst.ptr, dst.size) != NULL) {
        /* RENAMENX onto an existing key: nothing changes. */
    } else {
        size_t size = from->value_size;
        uint64_t expire_at_ms = from->expire_at_ms;
        uint8_t *value = value_copy(from);
        must_put(kv, dst.ptr, dst.size, value, size, op);
        free(value);
        (void)kv_expire_set(kv, dst.ptr, dst.size, expire_at_ms);
        bool removed = kv_del(kv, src.ptr, src.size);
        ASSERT(removed);
        done = true;
    }
    if (nx)
        resp_write_integer(r, done ? 1 : 0);
    else
        resp_write_simple(r, "OK");
}

void kv_strings_apply(struct kv *kv, uint64_t op, struct kv_command *c,
                      struct resp_buf *r)
{
    switch (c->type) {
    case KV_CMD_GETDEL:
        apply_getdel(kv, c, r);
        return;
    case KV_CMD_MSETNX:
        apply_msetnx(kv, op, c, r);
        return;
    case KV_CMD_APPEND:
        apply_append(kv, op, c, r);
        return;
    case KV_CMD_SETRANGE:
        apply_setrange(kv, op, c, r);
        return;
    case KV_CMD_INCRBYFLOAT:
        apply_incrbyfloat(kv, op, c, r);
        return;
    case KV_CMD_COPY:
        apply_copy(kv, op, c, r);
        return;
    case KV_CMD_RENAME:
        apply_rename(kv, op, c, r);
        return;
    case KV_CMD_FLUSHALL:
        kv_flush(kv);
        resp_write_simple(r, "OK");
        return;
    default:
        UNREACHABLE(); /* kv_strings_check_header() passed */
    }
}

/* ------------------------------------------------------------ reads */

/* GETRANGE key start end, as Redis 7's getrangeCommand(): negative
 * indexes count from the end, and the range is clamped to the value. */
static void query_getrange(const struct kv_record *rec,
                           const struct resp_arg *argv, struct resp_buf *r)
{
    int64_t start, end;
    if (!resp_parse_i64(argv[2].ptr, argv[2].size, &start) ||
        !resp_parse_i64(argv[3].ptr, argv[3].size, &end)) {
        resp_write_error(r, ERR_NOT_INTEGER);
        return;
    }
    int64_t size = rec ? (int64_t)rec->value_size : 0;
    if ((start < 0 && end < 0 && start > end) || size == 0) {
        resp_write_bulk(r, "", 0);
        return;
    }
    if (start < 0)
        start = start < -size ? 0 : size + start;
    if (end < 0)
        end = end < -size ? 0 : size + end;
    if (end >= size)
        end = size - 1;
    if (start > end) {
        resp_write_bulk(r, "", 0);
        return;
    }
    resp_write_bulk(r, kv_record_value(rec) + start, (size_t)(end - start + 1));
}

void kv_strings_query(const struct kv *kv, uint64_t now_ms,
                      const struct kv_command_def *def, uint32_t argc,
                      const struct resp_arg *argv, struct resp_buf *r)
{
    (void)argc;
    ASSERT(kv_strings_owns(def));
    const struct kv_record *rec = get_arg(kv, &argv[1]);
    if (rec != NULL && kv_record_expired(rec, now_ms))
        rec = NULL; /* expired (kv/expire.h): as a missing key */
    if (def->id == ID_STRLEN) {
        resp_write_integer(r, rec ? (int64_t)rec->value_size : 0);
        return;
    }
    ASSERT(def->id == ID_GETRANGE || def->id == ID_SUBSTR);
    query_getrange(rec, argv, r);
}
