/* kvsm — the simulator's state machine over the real store. See kvsm.h. */
#include "sim/kvsm.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/resp.h"
#include "kv/command.h"
#include "kv/session.h"
#include "kv/snapshot.h"

static_assert(KVSM_KEYS + KVSM_VOLATILE_KEYS <= 10, "keys are k0..k9");

static struct kv_config sim_kv_config(void)
{
    struct kv_config config = kv_config_default();
    config.hash_seed = 0x5eed; /* any fixed seed: the sim is deterministic */
    return config;
}

void kvsm_init(struct kvsm *k)
{
    struct kv_config config = sim_kv_config();
    int rc = kv_init(&k->kv, &config);
    ASSERT(rc == 0);
}

void kvsm_deinit(struct kvsm *k)
{
    kv_deinit(&k->kv);
}

/* ------------------------------------------------------------ requests */

void kvsm_cmd_encode(const struct kvsm_cmd *cmd, uint8_t out[KVSM_BODY_SIZE])
{
    out[0] = cmd->kind;
    out[1] = cmd->key;
    out[2] = cmd->form;
    put_u64(out + 3, (uint64_t)cmd->arg);
    put_u64(out + 11, (uint64_t)cmd->arg2);
}

bool kvsm_cmd_decode(const uint8_t *data, size_t size, struct kvsm_cmd *cmd)
{
    if (size != KVSM_BODY_SIZE)
        return false;
    cmd->kind = data[0];
    cmd->key = data[1];
    cmd->form = data[2];
    cmd->arg = (int64_t)get_u64(data + 3);
    cmd->arg2 = (int64_t)get_u64(data + 11);
    if (cmd->form > KVSM_FORM_TXN)
        return false;
    switch (cmd->kind) {
    case KVSM_GET:
    case KVSM_SET:
    case KVSM_CAS:
    case KVSM_INCR:
    case KVSM_DEL:
        return cmd->key < KVSM_KEYS;
    case KVSM_SETPX:
        return cmd->key >= KVSM_KEYS &&
               cmd->key < KVSM_KEYS + KVSM_VOLATILE_KEYS && cmd->arg2 >= 1;
    case KVSM_GETV:
        return cmd->key >= KVSM_KEYS &&
               cmd->key < KVSM_KEYS + KVSM_VOLATILE_KEYS;
    case KVSM_PUBLISH:
        return cmd->key < KVSM_CHANNELS;
    case KVSM_PAIRSET:
    case KVSM_PAIRGET:
    case KVSM_FLUSH:
        return cmd->key == 0;
    case KVSM_SOPEN:
        return cmd->key == 0 && cmd->arg2 >= KV_SESSION_TTL_MIN_MS &&
               cmd->arg2 <= KV_SESSION_TTL_MAX_MS;
    case KVSM_SKEEP:
    case KVSM_SCLOSE:
        return cmd->key == 0 && cmd->arg >= 1;
    case KVSM_LOCK:
    case KVSM_UNLOCK:
    case KVSM_FENCE:
    case KVSM_SSET:
        return cmd->key < KVSM_LOCKS && cmd->arg >= 1;
    default:
        return false;
    }
}

/* ------------------------------------------------------------ log bodies */

#define ARGS_MAX 12
#define TEXT_MAX 24

struct argv_builder {
    struct resp_arg argv[ARGS_MAX];
    char text[ARGS_MAX][TEXT_MAX];
    uint32_t argc;
};

static void word(struct argv_builder *b, const char *s);

static void number(struct argv_builder *b, int64_t n)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%" PRId64, n);
    word(b, text);
}

static void key(struct argv_builder *b, uint8_t index)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "k%u", (unsigned)index);
    word(b, text);
}

static void word(struct argv_builder *b, const char *s)
{
    ASSERT(b->argc < ARGS_MAX && strlen(s) < TEXT_MAX);
    snprintf(b->text[b->argc], TEXT_MAX, "%s", s);
    b->argv[b->argc] = (struct resp_arg){b->text[b->argc], strlen(s)};
    b->argc++;
}

/* The store command that has cmd's effect, without the CAS form's compare:
 * its words (for a transaction: after their count). */
static void plain(struct argv_builder *b, const struct kvsm_cmd *cmd,
                  bool counted)
{
    static const char *const name[] = {
        [KVSM_GET] = "GET",     [KVSM_SET] = "SET",        [KVSM_CAS] = "CAS",
        [KVSM_INCR] = "INCRBY", [KVSM_DEL] = "DEL",        [KVSM_SETPX] = "SET",
        [KVSM_GETV] = "GET",    [KVSM_PUBLISH] = "PUBLISH"};
    static const uint8_t words[] = {
        [KVSM_GET] = 2, [KVSM_SET] = 3,   [KVSM_CAS] = 4,  [KVSM_INCR] = 3,
        [KVSM_DEL] = 2, [KVSM_SETPX] = 5, [KVSM_GETV] = 2, [KVSM_PUBLISH] = 3};
    bool txn_cas = counted && cmd->kind == KVSM_CAS; /* its THEN: SET k new */
    if (counted)
        number(b, txn_cas ? 3 : words[cmd->kind]);
    word(b, txn_cas ? "SET" : name[cmd->kind]);
    if (cmd->kind == KVSM_PUBLISH) {
        char channel[TEXT_MAX];
        snprintf(channel, sizeof(channel), "c%u", (unsigned)cmd->key);
        word(b, channel);
    } else {
        key(b, cmd->key);
    }
    if (cmd->kind == KVSM_SET || cmd->kind == KVSM_INCR ||
        cmd->kind == KVSM_SETPX || cmd->kind == KVSM_PUBLISH ||
        (cmd->kind == KVSM_CAS && !txn_cas))
        number(b, cmd->arg);
    if (cmd->kind == KVSM_CAS)
        number(b, cmd->arg2);
    if (cmd->kind == KVSM_SETPX) {
        word(b, "PX");
        number(b, cmd->arg2);
    }
}

/* COHORT.EXEC 0 2 3 SET pa v 3 SET pb v, or ... 2 GET pa 2 GET pb (first
 * is "pa" but for the split mutant's second half). */
static void pair(struct argv_builder *b, const struct kvsm_cmd *cmd,
                 const char *first)
{
    bool set = cmd->kind == KVSM_PAIRSET;
    word(b, "COHORT.EXEC");
    word(b, "0");
    word(b, "2");
    for (int i = 0; i < 2; i++) {
        word(b, set ? "3" : "2");
        word(b, set ? "SET" : "GET");
        word(b, i == 0 ? first : "pb");
        if (set)
            number(b, cmd->arg);
    }
}

static void named(struct argv_builder *b, char prefix, uint8_t index)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%c%u", prefix, (unsigned)index);
    word(b, text);
}

/* The coordination commands (kvsm_kind_coord()). */
static void coord(struct argv_builder *b, const struct kvsm_cmd *cmd)
{
    switch (cmd->kind) {
    case KVSM_SOPEN:
    case KVSM_SKEEP:
    case KVSM_SCLOSE:
        word(b, "COHORT.SESSION");
        word(b, cmd->kind == KVSM_SOPEN   ? "OPEN"
                : cmd->kind == KVSM_SKEEP ? "KEEPALIVE"
                                          : "CLOSE");
        number(b, cmd->kind == KVSM_SOPEN ? cmd->arg2 : cmd->arg);
        return;
    case KVSM_LOCK:
    case KVSM_UNLOCK:
        word(b, cmd->kind == KVSM_LOCK ? "COHORT.LOCK" : "COHORT.UNLOCK");
        named(b, 'L', cmd->key);
        number(b, cmd->arg);
        if (cmd->kind == KVSM_LOCK && cmd->arg2)
            word(b, "WAIT");
        return;
    case KVSM_SSET:
        word(b, "SET");
        named(b, 'e', cmd->key);
        number(b, cmd->arg2);
        word(b, "SESSION");
        number(b, cmd->arg);
        return;
    default:
        word(b, "COHORT.FENCE");
        named(b, 'L', cmd->key);
        number(b, cmd->arg);
        named(b, 'f', cmd->key);
        number(b, cmd->arg2);
        return;
    }
}

static void build_argv(struct argv_builder *b, const struct kvsm_cmd *cmd)
{
    b->argc = 0;
    if (kvsm_kind_coord(cmd->kind))
        coord(b, cmd);
    else if (cmd->kind == KVSM_FLUSH)
        word(b, "FLUSHALL");
    else if (cmd->kind == KVSM_PAIRSET || cmd->kind == KVSM_PAIRGET)
        pair(b, cmd, "pa");
    else if (cmd->kind == KVSM_CAS && cmd->form == KVSM_FORM_TXN) {
        /* COHORT.TXN 1 k VALUE = expected 1 3 SET k new 0 */
        word(b, "COHORT.TXN");
        word(b, "1");
        key(b, cmd->key);
        word(b, "VALUE");
        word(b, "=");
        number(b, cmd->arg);
        word(b, "1");
        plain(b, cmd, true);
        word(b, "0");
    } else if (cmd->kind == KVSM_GET || cmd->kind == KVSM_GETV ||
               (cmd->form == KVSM_FORM_TXN && cmd->kind != KVSM_PUBLISH)) {
        word(b, "COHORT.EXEC");
        word(b, "0");
        word(b, "1");
        plain(b, cmd, true);
    } else {
        plain(b, cmd, false);
    }
}

static size_t encode(const struct argv_builder *b,
                     uint8_t body[KVSM_LOG_BODY_MAX]);

size_t kvsm_body(const struct kvsm_cmd *cmd, uint8_t body[KVSM_LOG_BODY_MAX])
{
    struct argv_builder b;
    build_argv(&b, cmd);
    return encode(&b, body);
}

size_t kvsm_pair_half_body(const struct kvsm_cmd *cmd, int half,
                           uint8_t body[KVSM_LOG_BODY_MAX])
{
    ASSERT(cmd->kind == KVSM_PAIRSET);
    struct argv_builder b = {.argc = 0};
    if (half == 0) {
        word(&b, "SET");
        word(&b, "pa");
        number(&b, cmd->arg);
        return encode(&b, body);
    }
    /* The transaction's reply shape (*2 +OK +OK), pb written twice. */
    pair(&b, cmd, "pb");
    return encode(&b, body);
}

static size_t encode(const struct argv_builder *b,
                     uint8_t body[KVSM_LOG_BODY_MAX])
{
    struct kv_config config = sim_kv_config();
    struct kv_write w;
    struct resp_buf err;
    resp_buf_init(&err, 2);
    int rc = kv_command_parse(&config, b->argc, b->argv, &w, &err);
    ASSERT(rc == 0); /* the simulator's commands are all well formed */
    resp_buf_deinit(&err);
    size_t size = kv_command_size(&w);
    ASSERT(size <= KVSM_LOG_BODY_MAX);
    return kv_command_encode(&w, body, KVSM_LOG_BODY_MAX);
}

/* ------------------------------------------------------------ replies */

/* The value of a bulk (or null) node: a GET's answer. */
static bool bulk_value(const struct resp_node *n, struct kvsm_reply *r)
{
    if (n->type == RESP_TYPE_NULL) {
        *r = (struct kvsm_reply){0, 0};
        return true;
    }
    r->result = 1;
    return n->type == RESP_TYPE_BULK &&
           resp_parse_i64(n->str, n->len, &r->value);
}

/* One store command's own reply (node n) as the checker sees it. */
static bool plain_reply(uint8_t kind, const struct resp_node *n,
                        struct kvsm_reply *r)
{
    *r = (struct kvsm_reply){1, 0};
    switch (kind) {
    case KVSM_GET:
    case KVSM_GETV:
        return bulk_value(n, r);
    case KVSM_PUBLISH:
        return n->type == RESP_TYPE_INTEGER && n->integer >= 0;
    case KVSM_SET:
    case KVSM_SETPX:
    case KVSM_FLUSH:
        return n->type == RESP_TYPE_SIMPLE && n->len == 2 &&
               !memcmp(n->str, "OK", 2);
    case KVSM_INCR:
        if (n->type == RESP_TYPE_ERROR) {
            r->result = 0; /* overflow: failed, changed nothing */
            return true;
        }
        r->value = n->integer;
        return n->type == RESP_TYPE_INTEGER;
    case KVSM_CAS:
    case KVSM_DEL:
        r->result = (uint8_t)(n->integer == 1);
        return n->type == RESP_TYPE_INTEGER &&
               (n->integer == 0 || n->integer == 1);
    default:
        return false;
    }
}

static bool parse(const uint8_t *data, size_t size, struct resp_node *nodes,
                  struct resp_reply *parsed)
{
    *parsed = (struct resp_reply){.nodes = nodes, .node_capacity = 8};
    struct resp_reply_limits limits = {4, KVSM_REPLY_MAX, 8};
    struct cohort_err err;
    return resp_reply_parse((const char *)data, size, &limits, parsed, &err) ==
               RESP_COMPLETE &&
           parsed->consumed == size;
}

/* PAIRSET's *2 +OK +OK; PAIRGET's *2 and two bulks or nils (pa's value). */
static bool pair_reply(uint8_t kind, const struct resp_reply *parsed,
                       struct kvsm_reply *r)
{
    const struct resp_node *n = parsed->nodes;
    if (parsed->node_count != 3 || n[0].type != RESP_TYPE_ARRAY ||
        n[0].len != 2)
        return false;
    if (kind == KVSM_PAIRSET) {
        *r = (struct kvsm_reply){1, 0};
        return plain_reply(KVSM_SET, &n[1], r) &&
               plain_reply(KVSM_SET, &n[2], r);
    }
    struct kvsm_reply b;
    return bulk_value(&n[1], r) && bulk_value(&n[2], &b) &&
           ((r->result = 1) != 0);
}

bool kvsm_pair_consistent(const uint8_t *data, size_t size)
{
    struct resp_node n[8];
    struct resp_reply parsed;
    if (!parse(data, size, n, &parsed) || parsed.node_count != 3)
        return false;
    if (n[1].type != n[2].type)
        return false;
    return n[1].type == RESP_TYPE_NULL ||
           (n[1].len == n[2].len && !memcmp(n[1].str, n[2].str, n[1].len));
}

/* A coordination command's reply: an integer (its value), +OK, nil, or
 * an error (result 0). */
static bool coord_reply(uint8_t kind, const struct resp_node *n,
                        struct kvsm_reply *r)
{
    *r = (struct kvsm_reply){1, 0};
    switch (n->type) {
    case RESP_TYPE_ERROR:
    case RESP_TYPE_NULL:
        r->result = 0;
        return n->type == RESP_TYPE_ERROR || kind == KVSM_LOCK;
    case RESP_TYPE_INTEGER:
        r->value = n->integer;
        return kind != KVSM_FENCE && kind != KVSM_SSET;
    case RESP_TYPE_SIMPLE:
        return kind == KVSM_FENCE || kind == KVSM_SSET;
    default:
        return false;
    }
}

bool kvsm_reply_decode(const struct kvsm_cmd *cmd, bool read,
                       const uint8_t *data, size_t size,
                       struct kvsm_reply *reply)
{
    struct resp_node nodes[8];
    struct resp_reply parsed;
    if (!parse(data, size, nodes, &parsed))
        return false;
    if (kvsm_kind_coord(cmd->kind))
        return !read && parsed.node_count == 1 &&
               coord_reply(cmd->kind, nodes, reply);
    if (cmd->kind == KVSM_PAIRSET || cmd->kind == KVSM_PAIRGET)
        return pair_reply(cmd->kind, &parsed, reply);
    const struct resp_node *n = nodes;
    bool exec = cmd->kind == KVSM_GET || cmd->kind == KVSM_GETV ||
                (cmd->form == KVSM_FORM_TXN && cmd->kind != KVSM_PUBLISH &&
                 cmd->kind != KVSM_FLUSH);
    if (read || !exec)
        return plain_reply(cmd->kind, n, reply);
    if (cmd->kind == KVSM_CAS) {
        /* *2 :1 *1 +OK, or *2 :0 *0 */
        if (parsed.node_count < 3 || n[0].type != RESP_TYPE_ARRAY ||
            n[0].len != 2 || n[1].type != RESP_TYPE_INTEGER ||
            n[2].type != RESP_TYPE_ARRAY)
            return false;
        *reply = (struct kvsm_reply){(uint8_t)(n[1].integer == 1), 0};
        return (n[1].integer == 1 && n[2].len == 1 && parsed.node_count == 4 &&
                plain_reply(KVSM_SET, &n[3], &(struct kvsm_reply){0})) ||
               (n[1].integer == 0 && n[2].len == 0);
    }
    /* COHORT.EXEC of one command: *1 and its reply */
    if (parsed.node_count != 2 || n[0].type != RESP_TYPE_ARRAY || n[0].len != 1)
        return false;
    return plain_reply(cmd->kind, &n[1], reply);
}

/* ------------------------------------------------------------ pub/sub */

static bool entries_equal(const struct history_entry *x,
                          const struct history_entry *y)
{
    return x->position == y->position && x->channel_size == y->channel_size &&
           x->message_size == y->message_size &&
           !memcmp(x->data, y->data, x->channel_size + x->message_size);
}

bool kvsm_history_agrees(const struct kvsm *a, const struct kvsm *b,
                         uint64_t *at)
{
    const struct history *ha = &a->kv.history, *hb = &b->kv.history;
    uint64_t lo = ha->floor > hb->floor ? ha->floor : hb->floor;
    uint64_t hi = ha->last < hb->last ? ha->last : hb->last;
    uint32_t i = history_find(ha, lo + 1), j = history_find(hb, lo + 1);
    for (;;) {
        const struct history_entry *x =
            i < ha->count ? history_at(ha, i) : NULL;
        const struct history_entry *y =
            j < hb->count ? history_at(hb, j) : NULL;
        if (x != NULL && x->position > hi)
            x = NULL;
        if (y != NULL && y->position > hi)
            y = NULL;
        if (x == NULL && y == NULL)
            return true;
        if (x == NULL || y == NULL || !entries_equal(x, y)) {
            *at = x == NULL                   ? y->position
                  : y == NULL                 ? x->position
                  : x->position < y->position ? x->position
                                              : y->position;
            return false;
        }
        i++;
        j++;
    }
}

/* ------------------------------------------------------------ the machine */

/* kv_apply() wants room for the largest reply any write may have (a value
 * of max-value-size, a transaction's array); the simulator's are short. */
static uint8_t apply_scratch[KV_VALUE_SIZE_MAX_DEFAULT + KV_REPLY_OVERHEAD +
                             KV_TXN_REPLY_ROOM];

size_t kvsm_sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                     const uint8_t *body, size_t body_size, uint8_t *reply,
                     size_t reply_size_max)
{
    struct kvsm *k = ctx;
    ASSERT(kv_reply_size_max(&k->kv.config) <= sizeof(apply_scratch));
    size_t size = kv_apply(&k->kv, op, timestamp_ms, body, body_size,
                           apply_scratch, sizeof(apply_scratch));
    if (size > reply_size_max && apply_scratch[0] == '-')
        size = (size_t)snprintf((char *)apply_scratch, sizeof(apply_scratch),
                                "-ERR long %016" PRIx64 "\r\n",
                                XXH3_64bits(apply_scratch, size));
    ASSERT(size <= reply_size_max);
    memcpy(reply, apply_scratch, size);
    return size;
}

size_t kvsm_read(const struct kvsm *k, uint8_t key,
                 uint8_t reply[KVSM_REPLY_MAX])
{
    char name[8];
    int len = snprintf(name, sizeof(name), "k%u", (unsigned)key);
    struct resp_arg argv[2] = {{"GET", 3}, {name, (size_t)len}};
    struct resp_buf out;
    resp_buf_init(&out, 2);
    kv_query(&k->kv, 2, argv, &out);
    ASSERT(out.ok && out.size <= KVSM_REPLY_MAX);
    size_t size = out.size;
    memcpy(reply, out.data, size);
    resp_buf_deinit(&out);
    return size;
}

int kvsm_snapshot_write(const struct kvsm *k,
                        int (*write)(void *ctx, const void *data, size_t size),
                        void *ctx)
{
    struct cohort_err err;
    return kv_snapshot_write(&k->kv, write, ctx, &err);
}

int kvsm_restore(struct kvsm *k,
                 int (*read)(void *ctx, void *data, size_t size, size_t *got),
                 void *ctx, struct cohort_err *err)
{
    return kv_restore(&k->kv, read, ctx, err);
}

uint64_t kvsm_hash(const struct kvsm *k)
{
    return kv_state_hash(&k->kv);
}

uint64_t kvsm_empty_hash(void)
{
    struct kvsm k;
    kvsm_init(&k);
    uint64_t h = kvsm_hash(&k);
    kvsm_deinit(&k);
    return h;
}

const char *kvsm_kind_name(uint8_t kind)
{
    switch (kind) {
    case KVSM_GET:
        return "GET";
    case KVSM_SET:
        return "SET";
    case KVSM_CAS:
        return "CAS";
    case KVSM_INCR:
        return "INCR";
    case KVSM_DEL:
        return "DEL";
    case KVSM_SETPX:
        return "SETPX";
    case KVSM_GETV:
        return "GETV";
    case KVSM_PUBLISH:
        return "PUBLISH";
    case KVSM_PAIRSET:
        return "PAIRSET";
    case KVSM_PAIRGET:
        return "PAIRGET";
    case KVSM_SOPEN:
        return "SOPEN";
    case KVSM_SKEEP:
        return "SKEEP";
    case KVSM_SCLOSE:
        return "SCLOSE";
    case KVSM_LOCK:
        return "LOCK";
    case KVSM_UNLOCK:
        return "UNLOCK";
    case KVSM_FENCE:
        return "FENCE";
    case KVSM_SSET:
        return "SSET";
    case KVSM_FLUSH:
        return "FLUSHALL";
    default:
        return "?";
    }
}
