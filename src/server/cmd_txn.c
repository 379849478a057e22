/* cmd_txn — transactions on a connection: MULTI, EXEC, DISCARD, WATCH,
 * UNWATCH, and COHORT.TXN / COHORT.EXEC sent by a client.
 *
 * MULTI starts queuing: every later command except EXEC, DISCARD, MULTI,
 * WATCH and QUIT is checked (a store read or write, its arity and syntax,
 * the user's permission, the transaction's limits) and answered +QUEUED, or
 * with its error, which makes EXEC answer -EXECABORT (Redis's rule; cohort
 * also finds SET's syntax errors now rather than inside EXEC's array).
 * EXEC sends the queued commands as ONE store write, COHORT.EXEC (kv/txn.h),
 * through the same path as SET: the log, the client table, forwarding from
 * a backup, the write cap. Every EXEC goes through the log, a read-only one
 * too, which makes it linearizable.
 *
 * WATCH reads each key's revision (its mod op, 0 when missing) with
 * COHORT.REVS on the linearizable read path, so it is a read like GET: a
 * backup forwards it to the primary. EXEC carries "<key> MODOP = <rev>" for
 * each watched key, and apply() compares them with the committed state when
 * it runs the op: a key changed since WATCH (or deleted and created again,
 * which a version alone would miss) gives EXEC's null reply on every
 * replica alike, also when the primary changed in between. A revision read
 * from a state older than the client's own later reads can only make a
 * compare fail (a spurious abort), never let a changed key through: the
 * check happens on the committed state. Differences from Redis: a key that
 * was missing at WATCH, then created and deleted again before EXEC, counts
 * as unchanged; and WATCH waits for the read barrier.
 *
 * EXEC, DISCARD and an aborted EXEC forget the watched keys. A WATCH still
 * running when they happen is recorded under the old generation and
 * ignored. A WATCH that fails (-TRYAGAIN: view change, no primary) guards
 * nothing, so the next EXEC answers nil without running, as if the key had
 * changed, rather than run unguarded behind a client that pipelined it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/command.h"
#include "kv/txn.h"
#include "server/command.h"
#include "server/internal.h"

/* Redis's texts, word for word. */
#define ERR_NESTED "ERR MULTI calls can not be nested"
#define ERR_EXEC_WITHOUT "ERR EXEC without MULTI"
#define ERR_DISCARD_WITHOUT "ERR DISCARD without MULTI"
#define ERR_WATCH_INSIDE "ERR WATCH inside MULTI is not allowed"
#define ERR_EXECABORT                                                          \
    "EXECABORT Transaction discarded because of previous errors."
/* Room kept under --max-arguments for what EXEC adds around the queued
 * commands (its name, counts, a COHORT.REQ prefix when forwarded). */
#define TXN_ARGS_SPARE 16u

/* Answer in order: at once when nothing runs before, else in a slot. */
static void reply_raw(struct conn *c, const char *resp, size_t size)
{
    if (c->head == NULL) {
        resp_write_raw(&c->out, resp, size);
        server_mark_dirty(c->server, c);
        return;
    }
    struct slot *slot = conn_slot_push(c);
    resp_write_raw(&slot->reply, resp, size);
    conn_slot_ready(c, slot);
}

static void slot_error(struct conn *c, const char *msg)
{
    struct slot *slot = conn_slot_push(c);
    resp_write_error(&slot->reply, msg);
    conn_slot_ready(c, slot);
}

static void txn_reset(struct conn_txn *t, bool unwatch)
{
    t->active = false;
    t->dirty = false;
    t->command_count = 0;
    t->queued_args = 0;
    t->queued.size = 0;
    t->queued.ok = true;
    t->body_bytes = 0;
    if (unwatch) {
        t->watch_count = 0;
        t->watch_bytes = 0;
        t->watched.size = 0;
        t->watched.ok = true;
        t->watch_failed = false;
        t->watch_generation++;
    }
}

/* The log body bytes argument arg adds to COHORT.EXEC (kv_command_size). */
static size_t body_bytes(size_t arg_size)
{
    return 4 + arg_size;
}

static void write_count(struct resp_buf *b, uint64_t n)
{
    char text[24];
    int len = snprintf(text, sizeof(text), "%" PRIu64, n);
    resp_write_bulk(b, text, (size_t)len);
}

bool txn_queues(const struct conn *c, const struct command_spec *spec)
{
    return c->txn.active && spec->run != cmd_exec && spec->run != cmd_discard &&
           spec->run != cmd_multi && spec->run != cmd_watch &&
           spec->run != cmd_quit;
}

void txn_refused(struct conn *c)
{
    if (c->txn.active)
        c->txn.dirty = true;
}

static void queue_refuse(struct conn *c, const char *msg)
{
    c->txn.dirty = true;
    conn_reply_error(c, msg);
}

/* The arguments a transaction may hold under the server's per-command
 * limit, and its log bytes. */
static bool over_limits(struct conn *c, uint32_t argc,
                        const struct resp_arg *argv)
{
    const struct server *s = c->server;
    const struct conn_txn *t = &c->txn;
    char text[256];
    uint64_t args = (uint64_t)t->queued_args + 4u * t->watch_count + 1 + argc;
    if (args + TXN_ARGS_SPARE > s->limits.arg_count_max) {
        snprintf(text, sizeof(text),
                 "ERR transaction over its limit of %" PRIu32
                 " arguments (max-arguments); EXEC will fail",
                 s->limits.arg_count_max - TXN_ARGS_SPARE);
        queue_refuse(c, text);
        return true;
    }
    size_t bytes = KV_COMMAND_HEADER_SIZE + t->body_bytes + t->watch_bytes +
                   body_bytes(10);
    for (uint32_t i = 0; i < argc; i++)
        bytes += body_bytes(argv[i].size);
    size_t max = kv_txn_size_max(&s->node_config.kv);
    if (bytes > max) {
        snprintf(text, sizeof(text),
                 "ERR transaction over its limit of %zu bytes (max-value-size "
                 "+ max-key-size + %u); EXEC will fail",
                 max, KV_TXN_SIZE_OVERHEAD);
        queue_refuse(c, text);
        return true;
    }
    return false;
}

void txn_queue(struct conn *c, const struct command_spec *spec, uint32_t argc,
               const struct resp_arg *argv)
{
    struct conn_txn *t = &c->txn;
    char text[256];
    if (spec->run != cmd_store_read && spec->run != cmd_store_write) {
        snprintf(text, sizeof(text),
                 "ERR '%s' cannot be queued in a transaction; only store "
                 "reads and writes can",
                 spec->name);
        queue_refuse(c, text);
        return;
    }
    if (t->command_count >= KV_TXN_COMMANDS_MAX) {
        snprintf(text, sizeof(text),
                 "ERR transaction over its limit of %u commands; EXEC will "
                 "fail",
                 KV_TXN_COMMANDS_MAX);
        queue_refuse(c, text);
        return;
    }
    if (over_limits(c, argc, argv))
        return;
    struct resp_buf err;
    resp_buf_init(&err, 2);
    int rc = kv_txn_check_command(&c->server->node_config.kv, argc, argv, &err);
    if (rc == 0)
        rc =
            kv_txn_check_proposed(&c->server->node_config.kv, argc, argv, &err);
    if (rc != 0) {
        t->dirty = true;
        if (err.ok && err.size > 3)
            reply_raw(c, err.data, err.size); /* "-<text>\r\n" */
        else
            conn_reply_error(c, "ERR out of memory");
        resp_buf_deinit(&err);
        return;
    }
    resp_buf_deinit(&err);
    write_count(&t->queued, argc);
    t->body_bytes += body_bytes(10);
    for (uint32_t i = 0; i < argc; i++) {
        resp_write_bulk(&t->queued, argv[i].ptr, argv[i].size);
        t->body_bytes += body_bytes(argv[i].size);
    }
    t->queued_args += 1 + argc;
    t->command_count++;
    if (!t->queued.ok) {
        queue_refuse(c, "ERR out of memory queuing the command");
        return;
    }
    reply_raw(c, "+QUEUED\r\n", 9);
}

void cmd_multi(struct conn *c, struct resp_buf *out, uint32_t argc,
               const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    if (c->txn.active) {
        resp_write_error(out, ERR_NESTED);
        return;
    }
    txn_reset(&c->txn, false);
    c->txn.active = true;
    c->txn.body_bytes = body_bytes(11) * 3; /* name and the two counts */
    resp_write_simple(out, "OK");
}

void cmd_discard(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    if (!c->txn.active) {
        resp_write_error(out, ERR_DISCARD_WITHOUT);
        return;
    }
    txn_reset(&c->txn, true);
    resp_write_simple(out, "OK");
}

void cmd_unwatch(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    struct conn_txn *t = &c->txn;
    t->watch_count = 0;
    t->watch_bytes = 0;
    t->watched.size = 0;
    t->watched.ok = true;
    t->watch_failed = false;
    t->watch_generation++;
    resp_write_simple(out, "OK");
}

/* Build "COHORT.EXEC <watches> <quads> <n> <commands>" and parse it into
 * a new argv (pointing into cmd). Returns the count, 0 if out of memory. */
static uint32_t build_exec(struct conn *c, struct resp_buf *cmd,
                           struct resp_arg **argv)
{
    const struct conn_txn *t = &c->txn;
    uint32_t argc = 3 + 4 * t->watch_count + t->queued_args;
    resp_write_array(cmd, argc);
    resp_write_bulk(cmd, "COHORT.EXEC", 11);
    write_count(cmd, t->watch_count);
    resp_write_raw(cmd, t->watched.data, t->watched.size);
    write_count(cmd, t->command_count);
    resp_write_raw(cmd, t->queued.data, t->queued.size);
    *argv = malloc(argc * sizeof(**argv));
    if (!cmd->ok || *argv == NULL)
        return 0;
    struct resp_limits limits = {.arg_count_max = argc,
                                 .bulk_size_max = cmd->size,
                                 .inline_size_max = 1};
    struct resp_request req = {.argv = *argv, .arg_capacity = argc};
    struct cohort_err err;
    enum resp_result r =
        resp_request_parse(cmd->data, cmd->size, &limits, &req, &err);
    ASSERT(r == RESP_COMPLETE && req.argc == argc);
    return argc;
}

void cmd_exec(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    (void)argc;
    (void)argv;
    struct conn_txn *t = &c->txn;
    if (!t->active) {
        slot_error(c, ERR_EXEC_WITHOUT);
        return;
    }
    if (t->dirty) {
        txn_reset(t, true);
        slot_error(c, ERR_EXECABORT);
        return;
    }
    if (t->watch_failed) {
        /* A WATCH got an error: its key is not guarded, so run nothing
         * and answer as if it had changed (the client tries again). */
        txn_reset(t, true);
        struct slot *slot = conn_slot_push(c);
        resp_write_null_array(&slot->reply);
        conn_slot_ready(c, slot);
        return;
    }
    struct resp_buf cmd;
    resp_buf_init(&cmd, 2);
    struct resp_arg *exec_argv = NULL;
    uint32_t exec_argc = build_exec(c, &cmd, &exec_argv);
    txn_reset(t, true);
    if (exec_argc == 0)
        slot_error(c, "ERR out of memory building the transaction");
    else
        cmd_store_write(c, NULL, exec_argc, exec_argv);
    free(exec_argv);
    resp_buf_deinit(&cmd);
}

void cmd_watch(struct conn *c, struct resp_buf *out, uint32_t argc,
               const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    struct conn_txn *t = &c->txn;
    if (t->active) {
        slot_error(c, ERR_WATCH_INSIDE);
        return;
    }
    if (t->watch_count + (argc - 1) > KV_TXN_COMPARES_MAX) {
        /* A refused WATCH guards nothing, like one that fails: the next
         * EXEC answers nil instead of running unguarded. */
        char text[160];
        snprintf(text, sizeof(text),
                 "ERR too many watched keys: the limit is %u; UNWATCH "
                 "first (the next EXEC answers nil)",
                 KV_TXN_COMPARES_MAX);
        t->watch_failed = true;
        slot_error(c, text);
        return;
    }
    struct slot *slot = conn_slot_push(c);
    conn_slot_kind(c, slot, SLOT_READ);
    slot->watch = true;
    slot->watch_generation = t->watch_generation;
    resp_write_array(&slot->payload, argc);
    resp_write_bulk(&slot->payload, "COHORT.REVS", 11);
    for (uint32_t i = 1; i < argc; i++)
        resp_write_bulk(&slot->payload, argv[i].ptr, argv[i].size);
    c->slot_bytes += slot->payload.size;
    store_read_kept(c, slot);
}

/* Parse ":<n>\r\n" at *p; moves *p past it. */
static bool parse_int_line(const char **p, const char *end, int64_t *v)
{
    const char *q = *p;
    if (q >= end || *q != ':')
        return false;
    const char *cr = memchr(q, '\r', (size_t)(end - q));
    if (cr == NULL || cr + 1 >= end || cr[1] != '\n')
        return false;
    if (!resp_parse_i64(q + 1, (size_t)(cr - q - 1), v))
        return false;
    *p = cr + 2;
    return true;
}

/* Append "<key> MODOP = <rev>" for each key of the kept COHORT.REVS
 * command, the revisions read from reply. False if the reply is not the
 * array of integers it should be. */
static bool record_watches(struct conn *c, struct slot *slot)
{
    struct conn_txn *t = &c->txn;
    uint32_t argc = store_parse_kept(c->server, slot);
    const struct resp_arg *keys = c->server->argv2;
    const char *p = slot->reply.data;
    const char *end = p + slot->reply.size;
    char head[24];
    int n = snprintf(head, sizeof(head), "*%" PRIu32 "\r\n", argc - 1);
    if (argc < 2 || slot->reply.size < (size_t)n || memcmp(p, head, (size_t)n))
        return false;
    p += n;
    for (uint32_t i = 1; i < argc; i++) {
        int64_t rev;
        if (!parse_int_line(&p, end, &rev) || rev < 0)
            return false;
        resp_write_bulk(&t->watched, keys[i].ptr, keys[i].size);
        resp_write_bulk(&t->watched, "MODOP", 5);
        resp_write_bulk(&t->watched, "=", 1);
        write_count(&t->watched, (uint64_t)rev);
        t->watch_count++;
        t->watch_bytes += body_bytes(keys[i].size) + body_bytes(5) +
                          body_bytes(1) + body_bytes(20);
    }
    return p == end && t->watched.ok;
}

void txn_watch_failed(struct conn *c, struct slot *slot)
{
    ASSERT(slot->watch);
    slot->watch = false;
    if (slot->watch_generation == c->txn.watch_generation)
        c->txn.watch_failed = true;
}

void txn_watch_done(struct conn *c, struct slot *slot)
{
    ASSERT(slot->watch);
    if (slot->reply.size > 0 && slot->reply.data[0] == '-') {
        txn_watch_failed(c, slot); /* answer the read's error */
        return;
    }
    slot->watch = false;
    if (slot->watch_generation == c->txn.watch_generation &&
        !record_watches(c, slot)) {
        c->txn.watch_failed = true;
        slot->reply.size = 0;
        resp_write_error(&slot->reply,
                         "ERR WATCH could not read the keys' revisions; "
                         "retry");
        return;
    }
    slot->reply.size = 0;
    resp_write_simple(&slot->reply, "OK");
}

struct allowed_check {
    struct conn *c;
    char *refusal;
    const char *outer; /* COHORT.TXN or COHORT.EXEC */
};

/* A command the server knows but the store does not (PING, INFO, ...) is
 * named as not allowed; one neither knows is the store's "unknown
 * command", as outside a transaction. */
static bool command_in_store(void *ctx, uint32_t argc,
                             const struct resp_arg *argv)
{
    (void)argc;
    struct allowed_check *ac = ctx;
    const struct command_spec *spec = command_lookup(&argv[0]);
    if (spec == NULL || kv_command_class(&argv[0]) != KV_CLASS_NONE)
        return true;
    snprintf(ac->refusal, AUTH_REFUSAL_MAX,
             "ERR '%s' is not allowed inside %s; only store reads and writes "
             "can",
             spec->name, ac->outer);
    return false;
}

static bool command_allowed(void *ctx, uint32_t argc,
                            const struct resp_arg *argv)
{
    struct allowed_check *ac = ctx;
    const struct command_spec *spec = command_lookup(&argv[0]);
    return !spec || auth_command_allowed(ac->c, spec, argc, argv, ac->refusal);
}

bool txn_commands_allowed(struct conn *c, uint32_t argc,
                          const struct resp_arg *argv,
                          char refusal[AUTH_REFUSAL_MAX])
{
    if (argc < 1)
        return true;
    const struct kv_config *config = &c->server->node_config.kv;
    bool exec = command_word_is(&argv[0], "cohort.exec");
    struct allowed_check ac = {c, refusal, exec ? "COHORT.EXEC" : "COHORT.TXN"};
    struct kv_txn t;
    struct resp_buf sink;
    resp_buf_init(&sink, 2);
    int rc = kv_txn_parse_shape(config, exec, argc - 1, argv + 1, &t, &sink);
    if (rc == 0 && !kv_txn_each_command(&t, command_in_store, &ac)) {
        resp_buf_deinit(&sink);
        return false;
    }
    if (rc == 0 && c->kind != CONN_LINK)
        rc = kv_txn_parse(config, exec, argc - 1, argv + 1, &t, &sink);
    resp_buf_deinit(&sink);
    if (rc != 0 || c->kind == CONN_LINK)
        return true; /* the store's parse answers the syntax error */
    return kv_txn_each_command(&t, command_allowed, &ac);
}

void cmd_cohort_txn(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv)
{
    ASSERT(out == NULL);
    char refusal[AUTH_REFUSAL_MAX];
    if (!txn_commands_allowed(c, argc, argv, refusal)) {
        slot_error(c, refusal);
        return;
    }
    cmd_store_write(c, NULL, argc, argv);
}

void txn_conn_gone(struct conn *c)
{
    resp_buf_deinit(&c->txn.queued);
    resp_buf_deinit(&c->txn.watched);
}
