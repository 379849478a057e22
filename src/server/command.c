/* command — the command table and dispatch. See command.h. */
#include "server/command.h"

#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "kv/acl.h"
#include "server/auth.h"
#include "server/internal.h"

/* ACL categories, as Redis files its commands of the same name. */
#define CAT(x) (1u << ACL_CAT_##x)
#define READ_FAST (CAT(READ) | CAT(STRING) | CAT(FAST))
#define WRITE_FAST (CAT(WRITE) | CAT(STRING) | CAT(FAST))
#define READ_SLOW (CAT(READ) | CAT(STRING) | CAT(SLOW))
#define WRITE_SLOW (CAT(WRITE) | CAT(STRING) | CAT(SLOW))
#define FLUSH (CAT(KEYSPACE) | CAT(WRITE) | CAT(SLOW) | CAT(DANGEROUS))
#define CONN_FAST (CAT(FAST) | CAT(CONNECTION))
#define ADMIN (CAT(ADMIN) | CAT(SLOW) | CAT(DANGEROUS))

/* Key positions follow Redis's COMMAND output: first key, last key (-1: the
 * last argument) and step; 0 0 0 for a command without keys. */
static const struct command_spec commands[] = {
    /* The store: reads are linearizable unless the connection said
     * READONLY; writes go through the log. */
    {"get", 2, CMD_READ | CMD_SLOT, 1, 1, 1, READ_FAST, cmd_store_read},
    {"mget", -2, CMD_READ | CMD_SLOT, 1, -1, 1, READ_FAST, cmd_store_read},
    {"exists", -2, CMD_READ | CMD_SLOT, 1, -1, 1,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    {"dbsize", 1, CMD_READ | CMD_SLOT, 0, 0, 0,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    {"kvinfo", 2, CMD_READ | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    {"cohort.get", -2, CMD_READ | CMD_SLOT, 1, 1, 1,
     CAT(READ) | CAT(STRING) | CAT(FAST), cmd_store_read},
    /* Listing (kv/listing.h): key names, as Redis, whatever the user's key
     * patterns; COHORT.RANGE returns values too, so only to ~* users. */
    {"scan", -2, CMD_READ | CMD_SLOT, 0, 0, 0,
     CAT(KEYSPACE) | CAT(READ) | CAT(SLOW), cmd_store_read},
    {"keys", 2, CMD_READ | CMD_SLOT, 0, 0, 0,
     CAT(KEYSPACE) | CAT(READ) | CAT(SLOW) | CAT(DANGEROUS), cmd_store_read},
    {"type", 2, CMD_READ | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    {"randomkey", 1, CMD_READ | CMD_SLOT, 0, 0, 0,
     CAT(KEYSPACE) | CAT(READ) | CAT(SLOW), cmd_store_read},
    {"cohort.range", -3, CMD_READ | CMD_SLOT | CMD_ALL_KEYS, 0, 0, 0,
     CAT(KEYSPACE) | CAT(READ) | CAT(SLOW), cmd_store_read},
    {"set", -3, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(WRITE) | CAT(STRING) | CAT(SLOW), cmd_store_write},
    {"del", -2, CMD_WRITE | CMD_SLOT, 1, -1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(SLOW), cmd_store_write},
    {"incr", 2, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"incrby", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"decr", 2, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"decrby", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"mset", -3, CMD_WRITE | CMD_SLOT, 1, -1, 2,
     CAT(WRITE) | CAT(STRING) | CAT(SLOW), cmd_store_write},
    {"cas", 4, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    /* More strings and keys (kv/strings.h). FLUSHDB and FLUSHALL delete
     * every key, so only a user whose key patterns admit every key (~*,
     * allkeys) may run them, besides the command or @dangerous. */
    {"strlen", 2, CMD_READ | CMD_SLOT, 1, 1, 1, READ_FAST, cmd_store_read},
    {"getrange", 4, CMD_READ | CMD_SLOT, 1, 1, 1, READ_SLOW, cmd_store_read},
    {"substr", 4, CMD_READ | CMD_SLOT, 1, 1, 1, READ_SLOW, cmd_store_read},
    {"getdel", 2, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"getset", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"setnx", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"msetnx", -3, CMD_WRITE | CMD_SLOT, 1, -1, 2, WRITE_SLOW, cmd_store_write},
    {"append", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST, cmd_store_write},
    {"setrange", 4, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_SLOW, cmd_store_write},
    {"incrbyfloat", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_FAST,
     cmd_store_write},
    {"unlink", -2, CMD_WRITE | CMD_SLOT, 1, -1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"copy", -3, CMD_WRITE | CMD_SLOT, 1, 2, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(SLOW), cmd_store_write},
    {"rename", 3, CMD_WRITE | CMD_SLOT, 1, 2, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(SLOW), cmd_store_write},
    {"renamenx", 3, CMD_WRITE | CMD_SLOT, 1, 2, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"flushdb", -1, CMD_WRITE | CMD_SLOT | CMD_ALL_KEYS, 0, 0, 0, FLUSH,
     cmd_store_write},
    {"flushall", -1, CMD_WRITE | CMD_SLOT | CMD_ALL_KEYS, 0, 0, 0, FLUSH,
     cmd_store_write},
    /* Transactions (cmd_txn.c): EXEC sends COHORT.EXEC, one store write;
     * WATCH reads COHORT.REVS. COHORT.TXN and COHORT.EXEC check the user's
     * permission for each command they carry. */
    {"multi", 1, CMD_FAST, 0, 0, 0, CAT(FAST) | CAT(TRANSACTION), cmd_multi},
    {"exec", 1, CMD_WRITE | CMD_SLOT, 0, 0, 0, CAT(SLOW) | CAT(TRANSACTION),
     cmd_exec},
    {"discard", 1, CMD_FAST, 0, 0, 0, CAT(FAST) | CAT(TRANSACTION),
     cmd_discard},
    {"watch", -2, CMD_READ | CMD_SLOT, 1, -1, 1, CAT(FAST) | CAT(TRANSACTION),
     cmd_watch},
    {"unwatch", 1, CMD_FAST, 0, 0, 0, CAT(FAST) | CAT(TRANSACTION),
     cmd_unwatch},
    {"cohort.txn", -4, CMD_WRITE | CMD_SLOT, 0, 0, 0,
     CAT(WRITE) | CAT(SLOW) | CAT(TRANSACTION), cmd_cohort_txn},
    {"cohort.exec", -3, CMD_WRITE | CMD_SLOT, 0, 0, 0,
     CAT(WRITE) | CAT(SLOW) | CAT(TRANSACTION), cmd_cohort_txn},
    {"cohort.revs", -2, CMD_READ | CMD_SLOT, 1, -1, 1,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    /* Expiry (kv/expire.h): judged by log time. */
    {"expire", -3, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"pexpire", -3, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"expireat", -3, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"pexpireat", -3, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"persist", 2, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(WRITE) | CAT(FAST), cmd_store_write},
    {"getex", -2, CMD_WRITE | CMD_SLOT, 1, 1, 1,
     CAT(WRITE) | CAT(STRING) | CAT(FAST), cmd_store_write},
    {"setex", 4, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_SLOW, cmd_store_write},
    {"psetex", 4, CMD_WRITE | CMD_SLOT, 1, 1, 1, WRITE_SLOW, cmd_store_write},
    {"ttl", 2, CMD_READ | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    {"pttl", 2, CMD_READ | CMD_SLOT, 1, 1, 1,
     CAT(KEYSPACE) | CAT(READ) | CAT(FAST), cmd_store_read},
    /* Sessions and locks (kv/session_cmd.h): store writes through the
     * log. */
    {"cohort.session", 3, CMD_WRITE | CMD_SLOT, 0, 0, 0, CAT(WRITE) | CAT(FAST),
     cmd_store_write},
    {"cohort.lock", -3, CMD_WRITE | CMD_SLOT, 1, 1, 1, CAT(WRITE) | CAT(FAST),
     cmd_store_write},
    {"cohort.unlock", 3, CMD_WRITE | CMD_SLOT, 1, 1, 1, CAT(WRITE) | CAT(FAST),
     cmd_store_write},
    {"cohort.fence", 5, CMD_WRITE | CMD_SLOT, 1, 3, 2,
     CAT(WRITE) | CAT(STRING) | CAT(FAST), cmd_store_write},
    {"cohort.group", -3, CMD_WRITE | CMD_SLOT, 2, 2, 1, CAT(WRITE) | CAT(FAST),
     cmd_store_write},
    {"cohort.elect", 2, CMD_WRITE | CMD_SLOT, 1, 1, 1, CAT(WRITE) | CAT(FAST),
     cmd_store_write},
    /* cohort's exactly-once form of a store command (see cmd_store.c); ACL
     * rules judge the command it wraps. */
    {"cohort.req", -4, CMD_WRITE | CMD_SLOT, 0, 0, 0, CAT(WRITE) | CAT(FAST),
     cmd_cohort_req},
    /* Pub/sub (cmd_pubsub.c): PUBLISH is a store write, ordered by the
     * log; subscriptions are this member's. */
    {"publish", 3, CMD_WRITE | CMD_SLOT, 0, 0, 0, CAT(PUBSUB) | CAT(FAST),
     cmd_store_write},
    {"subscribe", -2, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_subscribe},
    {"unsubscribe", -1, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_unsubscribe},
    {"psubscribe", -2, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_psubscribe},
    {"punsubscribe", -1, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_punsubscribe},
    {"cohort.subscribe", -2, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_cohort_subscribe},
    {"pubsub", -2, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW), cmd_pubsub},
    /* Watches (cmd_watch.c): this member's, fed by what it applies. */
    {"cohort.watch", -3, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_cohort_watch},
    {"cohort.unwatch", -1, CMD_FAST, 0, 0, 0, CAT(PUBSUB) | CAT(SLOW),
     cmd_cohort_unwatch},
    /* The connection. */
    {"ping", -1, CMD_FAST, 0, 0, 0, CONN_FAST, cmd_ping},
    {"echo", 2, CMD_FAST, 0, 0, 0, CONN_FAST, cmd_echo},
    {"quit", -1, CMD_FAST | CMD_NOAUTH, 0, 0, 0, CONN_FAST, cmd_quit},
    {"hello", -1, CMD_FAST | CMD_NOAUTH, 0, 0, 0, CONN_FAST, cmd_hello},
    {"auth", -2, CMD_FAST | CMD_NOAUTH, 0, 0, 0, CONN_FAST, cmd_auth},
    {"select", 2, CMD_FAST, 0, 0, 0, CONN_FAST, cmd_select},
    {"client", -2, CMD_ADMIN, 0, 0, 0, CAT(SLOW) | CAT(CONNECTION), cmd_client},
    {"readonly", 1, CMD_FAST, 0, 0, 0, CONN_FAST, cmd_readonly},
    {"readwrite", 1, CMD_FAST, 0, 0, 0, CONN_FAST, cmd_readwrite},
    {"cohort.applied", -1, CMD_FAST, 0, 0, 0, CONN_FAST, cmd_cohort_applied},
    /* A backup's link to the primary says this first: commands on it are
     * not forwarded again, so a stale view cannot bounce them around; with
     * the backup's replica index and peer token it is a verified link,
     * exempt from the client limits and authenticated (admit.c). */
    {"cohort.noforward", -1, CMD_FAST | CMD_NOAUTH, 0, 0, 0, ADMIN,
     cmd_noforward},
    /* A backup's read-index round (backup_read.c); links only. */
    {"cohort.readindex", 1, CMD_SLOT, 0, 0, 0, ADMIN, cmd_cohort_readindex},
    /* The session table, read (kv/session_query.c): like KEYS, it lists
     * names beyond the caller's key patterns. */
    {"cohort.sessions", -1, CMD_READ | CMD_SLOT, 0, 0, 0,
     CAT(READ) | CAT(SLOW) | CAT(DANGEROUS), cmd_store_read},
    {"cohort.locks", -1, CMD_READ | CMD_SLOT, 0, 0, 0,
     CAT(READ) | CAT(SLOW) | CAT(DANGEROUS), cmd_store_read},
    /* The server. */
    {"command", -1, CMD_ADMIN, 0, 0, 0, CAT(SLOW) | CAT(CONNECTION),
     cmd_command},
    {"config", -2, CMD_ADMIN, 0, 0, 0, ADMIN, cmd_config},
    {"info", -1, CMD_ADMIN, 0, 0, 0, CAT(SLOW) | CAT(DANGEROUS), cmd_info},
    /* Users (cmd_acl.c): SETUSER and DELUSER are store writes, LIST and
     * USERS store reads (command_kind()). */
    {"acl", -2, CMD_ADMIN | CMD_SLOT, 0, 0, 0, ADMIN, cmd_acl},
    /* An operator's backup (cmd_backup.c): it reads the whole store, so it
     * is an admin command. */
    {"cohort.backup", -2, CMD_ADMIN, 0, 0, 0, ADMIN, cmd_cohort_backup},
    /* Leadership transfer (cmd_transfer.c): admin, like BACKUP. */
    {"cohort.transfer", 2, CMD_ADMIN, 0, 0, 0, ADMIN, cmd_cohort_transfer},
    /* Membership changes (cmd_reconfig.c): admin. */
    {"cohort.reconfig", -2, CMD_ADMIN, 0, 0, 0, ADMIN, cmd_cohort_reconfig},
    /* Move a non-member id to new addresses (cmd_address.c): admin; a
     * store write once checked. */
    {"cohort.address", -4, CMD_ADMIN | CMD_SLOT, 0, 0, 0, ADMIN,
     cmd_cohort_address},
    /* Restart this replica in place (cmd_rejuvenate.c): admin. */
    {"cohort.rejuvenate", -1, CMD_ADMIN, 0, 0, 0, ADMIN, cmd_cohort_rejuvenate},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))
static_assert(COMMAND_COUNT <= METRICS_COMMANDS_MAX,
              "every command has its counters");

bool command_word_is(const struct resp_arg *arg, const char *word)
{
    size_t n = strlen(word);
    if (arg->size != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)arg->ptr[i];
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (b != (unsigned char)word[i])
            return false;
    }
    return true;
}

const struct command_spec *command_lookup(const struct resp_arg *name)
{
    if (name->size == 0 || name->size > 32)
        return NULL;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (command_word_is(name, commands[i].name))
            return &commands[i];
    return NULL;
}

const struct command_spec *command_table(size_t *count)
{
    *count = COMMAND_COUNT;
    return commands;
}

uint32_t command_kind(const struct command_spec *spec, uint32_t argc,
                      const struct resp_arg *argv)
{
    if (spec->run == cmd_cohort_req && argc > 3) {
        const struct command_spec *inner = command_lookup(&argv[3]);
        return inner && inner->run != cmd_cohort_req
                   ? command_kind(inner, argc - 3, argv + 3)
                   : 0;
    }
    if (spec->run == cmd_acl) {
        if (argc < 2)
            return 0;
        if (command_word_is(&argv[1], "setuser") ||
            command_word_is(&argv[1], "deluser"))
            return CMD_WRITE;
        if (command_word_is(&argv[1], "list") ||
            command_word_is(&argv[1], "users"))
            return CMD_READ;
        return 0;
    }
    return spec->flags & (CMD_READ | CMD_WRITE);
}

bool command_arity_ok(const struct command_spec *spec, uint32_t argc)
{
    ASSERT(spec->arity != 0);
    if (spec->arity > 0)
        return argc == (uint32_t)spec->arity;
    return argc >= (uint32_t)-spec->arity;
}

/* arg as text, at most max characters (resp_show(): NULs and other
 * bytes escaped, where Redis's "%.128s" of a C string stops at a NUL). */
static const char *shown(const struct resp_arg *arg, char *out, size_t max)
{
    return resp_show(out, max + 1, arg->ptr, arg->ptr ? arg->size : 0);
}

/* Redis's processCommand(): the name (at most 128 characters) and the
 * first arguments, each quoted and followed by a space, while the list is
 * under 128 characters (each argument cut to what is left of the 128). */
void command_reply_unknown(struct resp_buf *out, uint32_t argc,
                           const struct resp_arg *argv)
{
    ASSERT(argc >= 1);
    char args[160];
    size_t used = 0;
    args[0] = '\0';
    for (uint32_t i = 1; i < argc && used < 128; i++) {
        char arg[129];
        int n = snprintf(args + used, sizeof(args) - used, "'%s' ",
                         shown(&argv[i], arg, 128 - used));
        ASSERT(n >= 0 && (size_t)n < sizeof(args) - used);
        used += (size_t)n;
    }
    char name[129];
    resp_write_errorf(out,
                      "ERR unknown command '%s', with args beginning with: "
                      "%s",
                      shown(&argv[0], name, 128), args);
}

void command_reply_arity(struct resp_buf *out, const char *name)
{
    resp_write_errorf(out, "ERR wrong number of arguments for '%s' command",
                      name);
}

void command_reply_unknown_subcommand(struct resp_buf *out,
                                      const struct resp_arg *sub,
                                      const char *command_upper)
{
    char name[129];
    resp_write_errorf(out, "ERR unknown subcommand '%s'. Try %s HELP.",
                      shown(sub, name, 128), command_upper);
}

bool command_parse_i64(const struct resp_arg *arg, int64_t *out)
{
    return resp_parse_i64(arg->ptr, arg->size, out);
}

bool command_parse_u64(const struct resp_arg *arg, uint64_t *out)
{
    const char *p = arg->ptr;
    size_t n = arg->size;
    if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static void note_command(struct conn *c, const struct command_spec *spec)
{
    snprintf(c->last_command, sizeof(c->last_command), "%s", spec->name);
}

static uint32_t command_index(const struct command_spec *spec)
{
    ASSERT(spec >= commands && spec < commands + COMMAND_COUNT);
    return (uint32_t)(spec - commands);
}

void command_count_as(struct conn *c, const struct command_spec *spec)
{
    c->dispatching = (uint16_t)(command_index(spec) + 1);
}

static void count_reply(struct conn *c, const struct command_spec *spec,
                        const char *reply, size_t size, uint64_t started_ns)
{
    metrics_command_done(&c->server->metrics, command_index(spec), reply, size,
                         uv_hrtime() - started_ns);
}

/* Run a command whose reply is ready at once: straight into the output when
 * nothing runs before it, else into a slot that waits its turn. */
static void run_immediate(struct conn *c, const struct command_spec *spec,
                          uint32_t argc, const struct resp_arg *argv,
                          uint64_t started_ns)
{
    if (c->head == NULL) {
        size_t before = c->out.size;
        spec->run(c, &c->out, argc, argv);
        if (c->out.ok && c->out.size > before)
            count_reply(c, spec, c->out.data + before, c->out.size - before,
                        started_ns);
        server_mark_dirty(c->server, c);
        return;
    }
    struct slot *slot = conn_slot_push(c);
    spec->run(c, &slot->reply, argc, argv);
    count_reply(c, spec, slot->reply.data, slot->reply.size, started_ns);
    conn_slot_ready(c, slot);
}

static void reply_now(struct conn *c, const char *error)
{
    struct resp_buf *out = &c->out;
    struct slot *slot = NULL;
    if (c->head != NULL) {
        slot = conn_slot_push(c);
        out = &slot->reply;
    }
    resp_write_error(out, error);
    if (slot)
        conn_slot_ready(c, slot);
    else
        server_mark_dirty(c->server, c);
}

/* Whether spec (with its arguments) needs this member's store to be the
 * group's: store reads and writes, and subscriptions and watches (fed by
 * what it applies). */
static bool uses_store(const struct command_spec *spec, uint32_t argc,
                       const struct resp_arg *argv)
{
    if (command_kind(spec, argc, argv) & (CMD_READ | CMD_WRITE))
        return true;
    return spec->run == cmd_subscribe || spec->run == cmd_psubscribe ||
           spec->run == cmd_cohort_subscribe || spec->run == cmd_cohort_watch;
}

/* A member removed from the group applies nothing more and orders
 * nothing: what uses its store gets -REMOVED, which names the fix, rather
 * than a -TRYAGAIN that would never clear. A backup's forward link is
 * left to the usual paths: their retryable answers go on to its clients
 * (cmd_store.c). */
static bool refuse_removed(struct conn *c, const struct command_spec *spec,
                           uint32_t argc, const struct resp_arg *argv,
                           uint64_t started_ns)
{
    char text[1 + SERVER_REMOVED_ERROR_MAX];
    if (c->no_forward || !uses_store(spec, argc, argv) ||
        !server_removed_error(c->server, text + 1))
        return false;
    text[0] = '-';
    count_reply(c, spec, text, strlen(text), started_ns);
    reply_now(c, text + 1);
    return true;
}

static void reply_unknown(struct conn *c, uint32_t argc,
                          const struct resp_arg *argv)
{
    struct resp_buf *out = &c->out;
    struct slot *slot = NULL;
    if (c->head != NULL) {
        slot = conn_slot_push(c);
        out = &slot->reply;
    }
    command_reply_unknown(out, argc, argv);
    if (slot)
        conn_slot_ready(c, slot);
    else
        server_mark_dirty(c->server, c);
}

static void reply_arity(struct conn *c, const struct command_spec *spec,
                        uint64_t started_ns)
{
    char text[96];
    snprintf(text, sizeof(text),
             "-ERR wrong number of arguments for '%s' command", spec->name);
    count_reply(c, spec, text, strlen(text), started_ns);
    reply_now(c, text + 1);
}

bool command_dispatch(struct conn *c, uint32_t argc,
                      const struct resp_arg *argv)
{
    ASSERT(argc >= 1);
    struct server *s = c->server;
    const struct command_spec *spec = command_lookup(&argv[0]);
    if (spec && conn_must_wait(c, spec, argc, argv))
        return false;
    s->stats.commands++;
    uint64_t started_ns = uv_hrtime();
    c->last_ms = server_now_ms(s);
    if (!admit_command_allowed(c, spec, argc))
        return true; /* refused: over a client limit, or protected mode */
    if (!c->authenticated && (spec == NULL || !(spec->flags & CMD_NOAUTH))) {
        static const char noauth[] = "-NOAUTH Authentication required.";
        if (spec)
            count_reply(c, spec, noauth, sizeof(noauth) - 1, started_ns);
        reply_now(c, noauth + 1);
        return true;
    }
    if (spec == NULL) {
        s->metrics.unknown_commands++;
        txn_refused(c);
        reply_unknown(c, argc, argv);
        return true;
    }
    note_command(c, spec);
    if (!command_arity_ok(spec, argc)) {
        txn_refused(c);
        reply_arity(c, spec, started_ns);
        return true;
    }
    char refusal[AUTH_REFUSAL_MAX];
    if (!auth_command_allowed(c, spec, argc, argv, refusal)) {
        txn_refused(c);
        reply_now(c, refusal);
        return true;
    }
    if (!pubsub_command_allowed(c, spec, refusal)) {
        txn_refused(c);
        reply_now(c, refusal);
        return true;
    }
    if (refuse_removed(c, spec, argc, argv, started_ns)) {
        txn_refused(c);
        return true;
    }
    if (txn_queues(c, spec)) {
        txn_queue(c, spec, argc, argv); /* inside MULTI: +QUEUED */
        return true;
    }
    if (spec->flags & CMD_SLOT) {
        /* Its handler pushes the slot that conn_slot_ready() counts. */
        command_count_as(c, spec);
        c->dispatch_ns = started_ns;
        spec->run(c, NULL, argc, argv);
        c->dispatching = 0;
    } else {
        run_immediate(c, spec, argc, argv, started_ns);
    }
    return true;
}
