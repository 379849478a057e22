/* cmd_conn — commands about the connection itself: PING, ECHO, QUIT, HELLO,
 * AUTH, SELECT, CLIENT, READONLY, READWRITE, COHORT.APPLIED and
 * COHORT.NOFORWARD. Replies
 * and errors are Redis's, word for word, where Redis has the command. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "server/command.h"
#include "server/info.h"
#include "server/internal.h"

#define NAME_ERROR                                                             \
    "ERR Client names cannot contain spaces, newlines or special characters."

void cmd_ping(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv)
{
    if (pubsub_ping(c, out, argc, argv))
        return;
    if (argc > 2)
        command_reply_arity(out, "ping");
    else if (argc == 2)
        resp_write_bulk(out, argv[1].ptr, argv[1].size);
    else
        resp_write_simple(out, "PONG");
}

void cmd_echo(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv)
{
    (void)c;
    (void)argc;
    resp_write_bulk(out, argv[1].ptr, argv[1].size);
}

void cmd_quit(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    resp_write_simple(out, "OK");
    c->input_stopped = true; /* answer what came before, then close */
}

void cmd_select(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv)
{
    (void)c;
    (void)argc;
    int64_t db = 0;
    if (!command_parse_i64(&argv[1], &db))
        resp_write_error(out, "ERR value is not an integer or out of range");
    else if (db != 0)
        resp_write_error(out, "ERR DB index is out of range");
    else
        resp_write_simple(out, "OK");
}

void cmd_readonly(struct conn *c, struct resp_buf *out, uint32_t argc,
                  const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    c->readonly = true;
    resp_write_simple(out, "OK");
}

void cmd_readwrite(struct conn *c, struct resp_buf *out, uint32_t argc,
                   const struct resp_arg *argv)
{
    (void)argc;
    (void)argv;
    c->readonly = false;
    resp_write_simple(out, "OK");
}

/* COHORT.APPLIED [revision]: the revision (op) this member has applied;
 * with a revision it has not reached yet, -TRYAGAIN naming both. A client
 * pipelines it before a READONLY read to get a read that reflects at
 * least that revision (the read runs after it, on state as new or newer):
 * bounded staleness, read-your-writes with the revision of the write. It
 * does not wait: the client retries here or on another member. */
void cmd_cohort_applied(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv)
{
    uint64_t applied = c->server->kv->op;
    uint64_t want = 0;
    if (argc > 2) {
        command_reply_arity(out, "cohort.applied");
        return;
    }
    if (argc == 2 &&
        (!command_parse_u64(&argv[1], &want) || want >= INT64_MAX)) {
        resp_write_error(out, "ERR COHORT.APPLIED revision is not an "
                              "integer or out of range");
        return;
    }
    if (applied < want) {
        resp_write_errorf(out,
                          "TRYAGAIN this member has applied revision "
                          "%" PRIu64 ", not yet %" PRIu64
                          "; retry, or read from another member",
                          applied, want);
        return;
    }
    ASSERT(applied < INT64_MAX);
    resp_write_integer(out, (int64_t)applied);
}

/* The refusal of COHORT.NOFORWARD <replica> <token> that proved nothing
 * (MISMATCH or NO_REPLICA), into out. */
static void reply_bad_proof(struct conn *c, struct resp_buf *out,
                            enum admit_proof proof, uint64_t id)
{
    char text[256];
    uint32_t count = c->server->node_config.replica_count;
    if (proof == ADMIT_PROOF_NO_REPLICA)
        snprintf(text, sizeof(text),
                 "ERR COHORT.NOFORWARD: the replica must be the index of "
                 "another replica of this group (0..%" PRIu32 ", not %" PRIu32
                 "); a client sends COHORT.NOFORWARD alone",
                 count - 1, c->server->node_config.self);
    else
        snprintf(text, sizeof(text),
                 "ERR COHORT.NOFORWARD: the peer token does not match what "
                 "replica %" PRIu64 " sent this replica; only its forward "
                 "link can use this form, a client sends COHORT.NOFORWARD "
                 "alone",
                 id);
    resp_write_error(out, text);
}

/* COHORT.NOFORWARD [<replica> <token>]: see command.c and admit.c.
 *
 * A token that proves nothing (another replica's, one that replica did not
 * send, a replica that does not exist) is an error, and the connection
 * stays what it was: an ordinary client, forwarding as before. A replica
 * whose token is not known yet (it has not dialed this one since either
 * started) may be a real backup that learned of this primary before its
 * peer connection here came up: it is answered as COHORT.NOFORWARD alone
 * would be (+OK for an authenticated connection), so its link keeps
 * working, as an ordinary client that does not forward (it counts against
 * the client limits until it proves itself on a later link). That grants
 * nothing COHORT.NOFORWARD alone does not. */
void cmd_noforward(struct conn *c, struct resp_buf *out, uint32_t argc,
                   const struct resp_arg *argv)
{
    if (argc != 1 && argc != 3) {
        command_reply_arity(out, "cohort.noforward");
        return;
    }
    enum admit_proof proof = ADMIT_PROOF_UNKNOWN;
    uint64_t id = 0;
    if (argc == 3)
        proof = admit_link(c, &argv[1], &argv[2], &id);
    if (argc == 3 && proof != ADMIT_PROOF_OK && c->kind == CONN_PROBATION)
        return; /* refused, the refusal written */
    if (c->input_stopped)
        return;
    if (proof == ADMIT_PROOF_MISMATCH || proof == ADMIT_PROOF_NO_REPLICA) {
        reply_bad_proof(c, out, proof, id);
        return;
    }
    if (proof != ADMIT_PROOF_OK && !c->authenticated) {
        /* A link's proof is its authentication; without one the backup's
         * forwards would fail with -NOAUTH one by one: fail the link now
         * (its commands get -TRYAGAIN), and the backup dials again. */
        char text[200];
        snprintf(text, sizeof(text),
                 "NOAUTH COHORT.NOFORWARD: replica %" PRIu64 " has not "
                 "connected to this replica's peer port yet, so its token "
                 "cannot be checked; AUTH first, or retry once it has",
                 id);
        resp_write_error(out,
                         argc == 3 ? text : "NOAUTH Authentication required.");
        return;
    }
    c->no_forward = true;
    resp_write_simple(out, "OK");
}

/* ------------------------------------------------------------ AUTH */

static void reply_auth_failure(struct resp_buf *out, enum auth_result r)
{
    if (r == AUTH_NO_PASSWORD)
        resp_write_error(out, "ERR AUTH <password> called without any "
                              "password configured for the default user. Are "
                              "you sure your configuration is correct?");
    else
        resp_write_error(out, "WRONGPASS invalid username-password pair or "
                              "user is disabled.");
}

void cmd_auth(struct conn *c, struct resp_buf *out, uint32_t argc,
              const struct resp_arg *argv)
{
    if (argc > 3) {
        resp_write_error(out, "ERR syntax error");
        return;
    }
    const struct resp_arg *user = argc == 3 ? &argv[1] : NULL;
    enum auth_result r = auth_login(c, user, &argv[argc - 1]);
    if (r != AUTH_OK) {
        reply_auth_failure(out, r);
        return;
    }
    resp_write_simple(out, "OK");
}

/* ------------------------------------------------------------ names */

/* Redis's rule: a name is printable ASCII without spaces. */
static bool name_valid(const struct resp_arg *name)
{
    for (size_t i = 0; i < name->size; i++)
        if (name->ptr[i] < '!' || name->ptr[i] > '~')
            return false;
    return true;
}

/* Set c's name or write the error. Returns whether it was set. */
static bool set_name(struct conn *c, struct resp_buf *out,
                     const struct resp_arg *name)
{
    if (!name_valid(name)) {
        resp_write_error(out, NAME_ERROR);
        return false;
    }
    if (name->size >= sizeof(c->name)) {
        resp_write_errorf(out, "ERR client name is %zu bytes; limit is %zu",
                          name->size, sizeof(c->name) - 1);
        return false;
    }
    memcpy(c->name, name->ptr, name->size);
    c->name[name->size] = '\0';
    return true;
}

/* ------------------------------------------------------------ HELLO */

struct hello_args {
    int64_t proto;
    const struct resp_arg *user, *pass, *name;
};

/* Parse HELLO [protover [AUTH username password] [SETNAME clientname]].
 * Returns false after writing the error. */
static bool hello_parse(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv, struct hello_args *h)
{
    memset(h, 0, sizeof(*h));
    h->proto = c->proto;
    if (argc < 2)
        return true;
    if (!command_parse_i64(&argv[1], &h->proto)) {
        resp_write_error(
            out, "ERR Protocol version is not an integer or out of range");
        return false;
    }
    for (uint32_t i = 2; i < argc; i++) {
        uint32_t more = argc - i - 1;
        if (command_word_is(&argv[i], "auth") && more >= 2) {
            h->user = &argv[i + 1];
            h->pass = &argv[i + 2];
            i += 2;
        } else if (command_word_is(&argv[i], "setname") && more >= 1) {
            h->name = &argv[i + 1];
            i += 1;
        } else {
            char shown[129];
            resp_write_errorf(
                out, "ERR Syntax error in HELLO option '%s'",
                resp_show(shown, sizeof(shown), argv[i].ptr, argv[i].size));
            return false;
        }
    }
    if (h->proto < 2 || h->proto > 3) {
        resp_write_error(out, "NOPROTO unsupported protocol version");
        return false;
    }
    return true;
}

static void hello_reply(struct conn *c, struct resp_buf *out)
{
    struct node_status st;
    node_status(c->server->node, &st);
    resp_write_map(out, 7);
    resp_write_bulk(out, "server", 6);
    resp_write_bulk(out, "cohort", 6);
    resp_write_bulk(out, "version", 7);
    resp_write_bulk(out, COHORT_VERSION, strlen(COHORT_VERSION));
    resp_write_bulk(out, "proto", 5);
    resp_write_integer(out, c->proto);
    resp_write_bulk(out, "id", 2);
    resp_write_integer(out, (int64_t)c->id);
    /* As INFO's redis_mode: one keyspace, no Redis Cluster slots (the
     * replicas form a group, not a sharded cluster). */
    resp_write_bulk(out, "mode", 4);
    resp_write_bulk(out, "standalone", 10);
    const char *role = info_role(&st);
    resp_write_bulk(out, "role", 4);
    resp_write_bulk(out, role, strlen(role));
    resp_write_bulk(out, "modules", 7);
    resp_write_array(out, 0);
}

void cmd_hello(struct conn *c, struct resp_buf *out, uint32_t argc,
               const struct resp_arg *argv)
{
    struct hello_args h;
    if (!hello_parse(c, out, argc, argv, &h))
        return;
    if (h.pass != NULL) {
        enum auth_result r = auth_login(c, h.user, h.pass);
        if (r != AUTH_OK) {
            reply_auth_failure(out, r);
            return;
        }
    }
    if (!c->authenticated) {
        resp_write_error(out,
                         "NOAUTH HELLO must be called with the client already "
                         "authenticated, otherwise the HELLO <proto> AUTH "
                         "<user> <pass> option can be used to authenticate "
                         "the client and select the RESP protocol version at "
                         "the same time");
        return;
    }
    if (h.name != NULL && !set_name(c, out, h.name))
        return;
    c->proto = (int)h.proto;
    c->out.proto = c->proto;
    out->proto = c->proto;
    hello_reply(c, out);
}

/* ------------------------------------------------------------ CLIENT */

/* One line of CLIENT LIST, in Redis's field order (fields cohort does not
 * track are given their idle values). */
static void client_line(const struct conn *c, uint64_t now_ms,
                        struct resp_buf *text)
{
    uv_os_fd_t fd = -1;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        fd = -1;
    char line[768];
    int n = snprintf(
        line, sizeof(line),
        "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64
        " idle=%" PRIu64 " flags=%s db=0 sub=%u psub=%u ssub=0 multi=-1 "
        "qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 obl=0 oll=%u "
        "omem=%zu tot-mem=%zu events=r cmd=%s user=%s redir=-1 "
        "resp=%d\n",
        c->id, c->addr, c->laddr, (int)fd, c->name,
        (now_ms - c->created_ms) / 1000, (now_ms - c->last_ms) / 1000,
        c->kind == CONN_LINK ? "S"
        : c->readonly        ? "r"
                             : "N",
        c->ps.channels, c->ps.patterns, c->rbuf_used - c->rbuf_pos,
        c->rbuf_size - c->rbuf_used, c->slot_count, conn_output_size(c),
        c->rbuf_size + conn_output_size(c),
        c->last_command[0] ? c->last_command : "NULL", c->user, c->proto);
    ASSERT(n > 0);
    size_t size = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    resp_write_raw(text, line, size);
}

static void client_list(struct conn *c, struct resp_buf *out, bool only_self)
{
    struct resp_buf text;
    resp_buf_init(&text, 2);
    uint64_t now = server_now_ms(c->server);
    if (only_self) {
        client_line(c, now, &text);
    } else {
        for (const struct conn *x = c->server->conns; x; x = x->next)
            if (!x->closing)
                client_line(x, now, &text);
    }
    if (text.ok)
        resp_write_verbatim(out, "txt", text.data, text.size);
    else
        resp_write_error(out, "ERR out of memory");
    resp_buf_deinit(&text);
}

static void client_help(struct resp_buf *out)
{
    static const char *lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ID",
        "    Return the ID of the current connection.",
        "GETNAME",
        "    Return the name of the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "LIST",
        "    Return information about client connections.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        ("    Checked as Redis checks it and not kept, for client libraries "
         "that send it."),
        "NO-EVICT (ON|OFF)",
        "NO-TOUCH (ON|OFF)",
        "    Accepted and ignored (cohort never evicts or tracks LRU).",
        "HELP",
        "    Print this help."};
    write_help(out, lines, sizeof(lines) / sizeof(lines[0]));
}

/* CLIENT SETINFO <attr> <value>, as Redis 7.2 checks it: LIB-NAME or
 * LIB-VER (any case), with a value of printable ASCII and no spaces (CLIENT
 * LIST must split on spaces). Accepted values are not kept. */
static void client_setinfo(struct resp_buf *out, const struct resp_arg *attr,
                           const struct resp_arg *value)
{
    if (!command_word_is(attr, "lib-name") &&
        !command_word_is(attr, "lib-ver")) {
        char shown[129];
        resp_write_errorf(
            out, "ERR Unrecognized option '%s'",
            resp_show(shown, sizeof(shown), attr->ptr, attr->size));
        return;
    }
    for (size_t i = 0; i < value->size; i++) {
        if (value->ptr[i] < '!' || value->ptr[i] > '~') {
            /* attr is lib-name or lib-ver in some case: safe to echo. */
            resp_write_errorf(out,
                              "ERR %.*s cannot contain spaces, newlines or "
                              "special characters.",
                              (int)attr->size, attr->ptr);
            return;
        }
    }
    resp_write_simple(out, "OK");
}

/* Arity of a subcommand, the command and subcommand counted, as in Redis:
 * "client|setname" is 3. */
static bool sub_arity_ok(uint32_t argc, int arity)
{
    return arity > 0 ? argc == (uint32_t)arity : argc >= (uint32_t)-arity;
}

void cmd_client(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv)
{
    static const struct {
        const char *name;
        const char *full;
        int arity;
    } subs[] = {
        {"id", "client|id", 2},
        {"getname", "client|getname", 2},
        {"setname", "client|setname", 3},
        {"info", "client|info", 2},
        {"list", "client|list", -2},
        {"setinfo", "client|setinfo", 4},
        {"no-evict", "client|no-evict", 3},
        {"no-touch", "client|no-touch", 3},
        {"help", "client|help", 2},
    };
    size_t k = 0;
    size_t count = sizeof(subs) / sizeof(subs[0]);
    while (k < count && !command_word_is(&argv[1], subs[k].name))
        k++;
    if (k == count) {
        command_reply_unknown_subcommand(out, &argv[1], "CLIENT");
        return;
    }
    if (!sub_arity_ok(argc, subs[k].arity)) {
        command_reply_arity(out, subs[k].full);
        return;
    }
    const char *sub = subs[k].name;
    snprintf(c->last_command, sizeof(c->last_command), "%s", subs[k].full);
    if (!strcmp(sub, "id")) {
        resp_write_integer(out, (int64_t)c->id);
    } else if (!strcmp(sub, "getname")) {
        if (c->name[0])
            resp_write_bulk(out, c->name, strlen(c->name));
        else
            resp_write_null(out);
    } else if (!strcmp(sub, "setname")) {
        if (set_name(c, out, &argv[2]))
            resp_write_simple(out, "OK");
    } else if (!strcmp(sub, "info")) {
        client_list(c, out, true);
    } else if (!strcmp(sub, "list")) {
        if (argc > 2)
            resp_write_error(out, "ERR syntax error");
        else
            client_list(c, out, false);
    } else if (!strcmp(sub, "help")) {
        client_help(out);
    } else if (!strcmp(sub, "setinfo")) {
        client_setinfo(out, &argv[2], &argv[3]);
    } else if (!command_word_is(&argv[2], "on") &&
               !command_word_is(&argv[2], "off")) {
        /* no-evict, no-touch: ON or OFF, else Redis's syntax error. */
        resp_write_error(out, "ERR syntax error");
    } else {
        resp_write_simple(out, "OK"); /* no-evict, no-touch */
    }
}
