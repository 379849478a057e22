#include "kv/listing.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"
#include "common/grow.h"
#include "kv/acl.h"
#include "kv/kv_index.h"

#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INTEGER "ERR value is not an integer or out of range"
#define ERR_OOM_LISTING "ERR out of memory while listing keys; retry later"

/* Records gathered before the reply's length is known. */
struct gather {
    const struct kv_record **items;
    size_t count, cap;
    bool failed;
    const struct resp_arg *pattern; /* NULL: every key */
    bool type_none;                 /* TYPE names a type no key has */
    uint64_t now_ms;                /* keys expired at this log time hide */
};

static void gather_one(void *ctx, const struct kv_record *r)
{
    struct gather *g = ctx;
    if (g->failed || g->type_none || kv_record_expired(r, g->now_ms))
        return;
    if (g->pattern != NULL && !acl_glob_match(g->pattern->ptr, g->pattern->size,
                                              kv_record_key(r), r->key_size))
        return;
    if (!grow_array((void **)&g->items, &g->cap, g->count + 1,
                    sizeof(*g->items), 16)) {
        g->failed = true;
        return;
    }
    g->items[g->count++] = r;
}

static void reply_keys(struct gather *g, struct resp_buf *out)
{
    resp_write_array(out, g->count);
    for (size_t i = 0; i < g->count; i++)
        resp_write_bulk(out, kv_record_key(g->items[i]), g->items[i]->key_size);
}

/* Redis's SCAN cursor: an unsigned decimal that fits 64 bits. */
static bool parse_cursor(const struct resp_arg *arg, uint64_t *out)
{
    if (arg->size == 0 || arg->size > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < arg->size; i++) {
        uint8_t d = (uint8_t)arg->ptr[i];
        if (d < '0' || d > '9')
            return false;
        if (v > (UINT64_MAX - (d - '0')) / 10)
            return false;
        v = v * 10 + (d - '0');
    }
    *out = v;
    return true;
}

/* Redis's type names; every key here is a string. */
static int type_known(const struct resp_arg *name)
{
    static const char *const names[] = {"string", "list", "set",
                                        "zset",   "hash", "stream"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (resp_arg_is(name, names[i]))
            return (int)i;
    }
    return -1;
}

struct scan_options {
    int64_t count;
    const struct resp_arg *pattern;
    bool type_none;
};

/* Parse SCAN's options from argv[2]; on error writes it to out. */
static bool parse_scan_options(uint32_t argc, const struct resp_arg *argv,
                               struct scan_options *o, struct resp_buf *out)
{
    o->count = LISTING_SCAN_COUNT_DEFAULT;
    o->pattern = NULL;
    o->type_none = false;
    for (uint32_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            resp_write_error(out, ERR_SYNTAX);
            return false;
        }
        const struct resp_arg *v = &argv[i + 1];
        if (resp_arg_is(&argv[i], "count")) {
            if (!resp_parse_i64(v->ptr, v->size, &o->count)) {
                resp_write_error(out, ERR_NOT_INTEGER);
                return false;
            }
            if (o->count < 1) {
                resp_write_error(out, ERR_SYNTAX);
                return false;
            }
        } else if (resp_arg_is(&argv[i], "match")) {
            o->pattern = v;
        } else if (resp_arg_is(&argv[i], "type")) {
            int t = type_known(v);
            if (t < 0) {
                char shown[129];
                resp_write_errorf(out, "ERR unknown type name '%s'",
                                  resp_show(shown, sizeof(shown), v->ptr,
                                            v->ptr ? v->size : 0));
                return false;
            }
            o->type_none = t != 0;
        } else {
            resp_write_error(out, ERR_SYNTAX);
            return false;
        }
    }
    if (o->count > LISTING_SCAN_COUNT_MAX)
        o->count = LISTING_SCAN_COUNT_MAX;
    return true;
}

void listing_scan(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                  const struct resp_arg *argv, struct resp_buf *out)
{
    uint64_t cursor;
    if (!parse_cursor(&argv[1], &cursor)) {
        resp_write_error(out, "ERR invalid cursor");
        return;
    }
    struct scan_options o;
    if (!parse_scan_options(argc, argv, &o, out))
        return;
    struct gather g = {
        .pattern = o.pattern, .type_none = o.type_none, .now_ms = now_ms};
    /* As Redis: up to COUNT * 10 buckets, stopping at COUNT keys. */
    int64_t buckets = o.count * 10;
    do {
        cursor = kv_scan(kv, cursor, gather_one, &g);
    } while (cursor != 0 && --buckets > 0 && (int64_t)g.count < o.count &&
             !g.failed);
    if (g.failed) {
        free(g.items);
        resp_write_error(out, ERR_OOM_LISTING);
        return;
    }
    char text[24];
    int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)cursor);
    ASSERT(n > 0 && (size_t)n < sizeof(text));
    resp_write_array(out, 2);
    resp_write_bulk(out, text, (size_t)n);
    reply_keys(&g, out);
    free(g.items);
}

void listing_keys(const struct kv *kv, uint64_t now_ms,
                  const struct resp_arg *pattern, struct resp_buf *out)
{
    struct gather g = {.pattern = pattern, .now_ms = now_ms};
    /* "*" matches everything: skip the matcher. */
    if (pattern->size == 1 && pattern->ptr[0] == '*')
        g.pattern = NULL;
    uint64_t cursor = 0;
    do {
        cursor = kv_scan(kv, cursor, gather_one, &g);
    } while (cursor != 0 && !g.failed);
    if (g.failed)
        resp_write_error(out, ERR_OOM_LISTING);
    else
        reply_keys(&g, out);
    free(g.items);
}

void listing_type(const struct kv *kv, uint64_t now_ms,
                  const struct resp_arg *key, struct resp_buf *out)
{
    const struct kv_record *r =
        kv_get(kv, (const uint8_t *)key->ptr, key->size);
    bool found = r != NULL && !kv_record_expired(r, now_ms);
    resp_write_simple(out, found ? "string" : "none");
}

/* The first key in key order not expired at now_ms, or NULL: RANDOMKEY's
 * fallback when its draws keep landing on expired keys. */
static const struct kv_record *first_live(const struct kv *kv, uint64_t now_ms)
{
    for (const struct kv_index_node *x = kv->index.head[0]; x;
         x = kv_index_next(x)) {
        if (!kv_record_expired(x->record, now_ms))
            return x->record;
    }
    return NULL;
}

void listing_randomkey(const struct kv *kv, uint64_t now_ms,
                       struct resp_buf *out)
{
    /* Not state, not replicated: each call looks at another slot. */
    static _Atomic uint64_t calls;
    const struct kv_record *r = NULL;
    /* As Redis: draw again when the key drawn has expired, a bounded
     * number of times. */
    for (int tries = 0; tries < LISTING_RANDOMKEY_TRIES; tries++) {
        uint64_t call = atomic_fetch_add(&calls, 1);
        uint64_t random = XXH3_64bits_withSeed(&call, sizeof(call),
                                               kv->config.hash_seed ^ kv->op);
        r = kv_random(kv, random);
        if (r == NULL || !kv_record_expired(r, now_ms))
            break;
    }
    if (r != NULL && kv_record_expired(r, now_ms))
        r = first_live(kv, now_ms);
    if (r == NULL)
        resp_write_null(out);
    else
        resp_write_bulk(out, kv_record_key(r), r->key_size);
}

/* COHORT.RANGE's LIMIT, from argv[3..]; on error writes it to out. */
static bool parse_range_limit(uint32_t argc, const struct resp_arg *argv,
                              int64_t *limit, struct resp_buf *out)
{
    *limit = LISTING_RANGE_LIMIT_DEFAULT;
    if (argc == 3)
        return true;
    if (argc != 5 || !resp_arg_is(&argv[3], "limit")) {
        resp_write_error(out, ERR_SYNTAX);
        return false;
    }
    if (!resp_parse_i64(argv[4].ptr, argv[4].size, limit)) {
        resp_write_error(out, ERR_NOT_INTEGER);
        return false;
    }
    if (*limit < 1 || *limit > LISTING_RANGE_LIMIT_MAX) {
        resp_write_errorf(out,
                          "ERR LIMIT must be between 1 and %d; page through "
                          "a longer range with start = last key + \"\\x00\"",
                          LISTING_RANGE_LIMIT_MAX);
        return false;
    }
    return true;
}

/* The first node at or after x whose key has not expired at now_ms. */
static const struct kv_index_node *live_from(const struct kv_index_node *x,
                                             uint64_t now_ms)
{
    while (x != NULL && kv_record_expired(x->record, now_ms))
        x = kv_index_next(x);
    return x;
}

void listing_range(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                   const struct resp_arg *argv, struct resp_buf *out)
{
    int64_t limit;
    if (!parse_range_limit(argc, argv, &limit, out))
        return;
    const struct resp_arg *start = &argv[1], *end = &argv[2];
    const struct kv_index_node *first = live_from(
        kv_index_seek(&kv->index, (const uint8_t *)start->ptr, start->size),
        now_ms);
    int64_t n = 0;
    for (const struct kv_index_node *x = first; x && n < limit;
         x = live_from(kv_index_next(x), now_ms), n++) {
        const struct kv_record *r = x->record;
        if (end->size > 0 &&
            kv_key_compare(kv_record_key(r), r->key_size,
                           (const uint8_t *)end->ptr, end->size) >= 0)
            break;
    }
    resp_write_array(out, (size_t)n * 2);
    const struct kv_index_node *x = first;
    for (int64_t i = 0; i < n; i++, x = live_from(kv_index_next(x), now_ms)) {
        const struct kv_record *r = x->record;
        resp_write_bulk(out, kv_record_key(r), r->key_size);
        resp_write_bulk(out, kv_record_value(r), r->value_size);
    }
}
