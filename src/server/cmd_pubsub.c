/* cmd_pubsub — the pub/sub commands on a connection: SUBSCRIBE,
 * UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, COHORT.SUBSCRIBE and PUBSUB, with
 * Redis's reply shapes (pushes in RESP3, arrays in RESP2), and what a RESP2
 * connection with subscriptions may run. Delivery is pubsub.c's; PUBLISH
 * is a store write (cmd_store.c).
 *
 * COHORT.SUBSCRIBE channel [channel ...] [FROM position] subscribes like
 * SUBSCRIBE, and from then on every message the connection receives
 * carries its position as a last element:
 *     message  <channel> <message> <position>
 *     pmessage <pattern> <channel> <message> <position>
 * With FROM, the connection (which must have no subscriptions yet) is
 * first given the retained messages of those channels after <position>,
 * then the live ones, with none lost or repeated; a position older than
 * this member's retained history is refused with the oldest it accepts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/acl.h"
#include "kv/history.h"
#include "kv/kv.h"
#include "server/command.h"
#include "server/internal.h"

/* The confirmation of one (un)subscription: [kind, name, count], a push
 * in RESP3. A NULL name is the null of an UNSUBSCRIBE with nothing to
 * drop. */
static void write_confirm(struct resp_buf *out, const char *kind,
                          const char *name, size_t size, uint32_t count)
{
    resp_write_push(out, 3);
    resp_write_bulk(out, kind, strlen(kind));
    if (name != NULL)
        resp_write_bulk(out, name, size);
    else
        resp_write_null(out);
    resp_write_integer(out, count);
}

/* All or nothing, as Redis clients expect every confirmation or an error:
 * the confirmations are written aside, and a name that does not fit (the
 * per-connection limit, memory) drops the ones this command added and
 * answers only the error. */
static void subscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                      const struct resp_arg *argv, bool pattern, uint64_t after)
{
    const char *kind = pattern ? "psubscribe" : "subscribe";
    uint32_t before = c->ps.count;
    struct resp_buf confirms;
    resp_buf_init(&confirms, out->proto);
    int rc = 0;
    for (uint32_t i = 0; i < argc && rc >= 0; i++) {
        rc = pubsub_sub_add(c, argv[i].ptr, argv[i].size, pattern, after);
        if (rc >= 0)
            write_confirm(&confirms, kind, argv[i].ptr, argv[i].size,
                          c->ps.count);
    }
    if (rc >= 0 && !confirms.ok)
        rc = -COHORT_ENOMEM;
    if (rc >= 0) {
        if (confirms.size > 0)
            resp_write_raw(out, confirms.data, confirms.size);
    } else {
        pubsub_sub_truncate(c, before);
        if (rc == -COHORT_ENOSPC)
            resp_write_errorf(out,
                              "ERR a connection may hold at most %u "
                              "subscriptions; this one has %u, and the %u "
                              "%s named would pass that: none were added; "
                              "use another connection",
                              PUBSUB_SUBS_PER_CONN_MAX, before, argc,
                              pattern ? "patterns" : "channels");
        else
            resp_write_error(out, "ERR out of memory for the subscriptions; "
                                  "none were added");
    }
    resp_buf_deinit(&confirms);
}

/* UNSUBSCRIBE and PUNSUBSCRIBE; without names, every channel (pattern). */
static void unsubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv, bool pattern)
{
    const char *kind = pattern ? "punsubscribe" : "unsubscribe";
    if (argc > 0) {
        for (uint32_t i = 0; i < argc; i++) {
            (void)pubsub_sub_remove(c, argv[i].ptr, argv[i].size, pattern);
            write_confirm(out, kind, argv[i].ptr, argv[i].size, c->ps.count);
        }
        return;
    }
    if ((pattern ? c->ps.patterns : c->ps.channels) == 0) {
        write_confirm(out, kind, NULL, 0, c->ps.count);
        return;
    }
    uint32_t i = 0;
    while (i < c->ps.count) {
        const struct pubsub_sub *sub = &c->ps.subs[i];
        if (sub->pattern != pattern) {
            i++;
            continue;
        }
        resp_write_push(out, 3);
        resp_write_bulk(out, kind, strlen(kind));
        resp_write_bulk(out, sub->name, sub->size);
        bool removed = pubsub_sub_remove(c, sub->name, sub->size, pattern);
        ASSERT(removed);
        resp_write_integer(out, c->ps.count);
    }
}

/* A subscription that starts "now" on a member still replaying its log
 * after a restart would be given the messages of that replay, which it
 * delivered before (or which were published before the subscriber came). */
static bool refuse_recovering(struct conn *c, struct resp_buf *out)
{
    if (!server_recovering(c->server))
        return false;
    resp_write_error(out, SERVER_RECOVERING_ERROR);
    return true;
}

void cmd_subscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                   const struct resp_arg *argv)
{
    if (!refuse_recovering(c, out))
        subscribe(c, out, argc - 1, argv + 1, false, c->server->kv->op);
}

void cmd_psubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                    const struct resp_arg *argv)
{
    if (!refuse_recovering(c, out))
        subscribe(c, out, argc - 1, argv + 1, true, c->server->kv->op);
}

void cmd_unsubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                     const struct resp_arg *argv)
{
    unsubscribe(c, out, argc - 1, argv + 1, false);
}

void cmd_punsubscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                      const struct resp_arg *argv)
{
    unsubscribe(c, out, argc - 1, argv + 1, true);
}

void cmd_cohort_subscribe(struct conn *c, struct resp_buf *out, uint32_t argc,
                          const struct resp_arg *argv)
{
    const struct history *h = &c->server->kv->history;
    uint64_t from = 0;
    bool has_from = argc >= 4 && command_word_is(&argv[argc - 2], "from");
    if (has_from) {
        if (!command_parse_u64(&argv[argc - 1], &from) || from >= INT64_MAX) {
            resp_write_error(out, "ERR FROM position is not an integer or "
                                  "out of range");
            return;
        }
        if (c->ps.count > 0) {
            resp_write_error(out, "ERR COHORT.SUBSCRIBE FROM needs a "
                                  "connection without subscriptions; "
                                  "UNSUBSCRIBE first or use a new one");
            return;
        }
        if (from < h->floor) {
            resp_write_errorf(out,
                              "ERR position %" PRIu64 " is no longer "
                              "retained on this member: the oldest FROM it "
                              "accepts is %" PRIu64
                              " (pubsub-history-messages, "
                              "pubsub-history-bytes)",
                              from, h->floor);
            return;
        }
        argc -= 2;
    } else if (refuse_recovering(c, out)) {
        return;
    }
    if (c->ps.count > 0 && !c->ps.positioned) {
        resp_write_error(out, "ERR this connection has SUBSCRIBE or "
                              "PSUBSCRIBE subscriptions; use a new one for "
                              "COHORT.SUBSCRIBE");
        return;
    }
    c->ps.positioned = true;
    subscribe(c, out, argc - 1, argv + 1, false,
              has_from ? from : c->server->kv->op);
    if (c->ps.count == 0) {
        c->ps.positioned = false; /* refused: none were added */
        return;
    }
    if (has_from)
        pubsub_start_behind(c, from + 1);
}

/* ------------------------------------------------------------ PUBSUB */

static int compare_names(const void *a, const void *b)
{
    const struct pubsub_sub *x = *(const struct pubsub_sub *const *)a;
    const struct pubsub_sub *y = *(const struct pubsub_sub *const *)b;
    size_t n = x->size < y->size ? x->size : y->size;
    int d = n ? memcmp(x->name, y->name, n) : 0;
    if (d != 0)
        return d;
    return x->size < y->size ? -1 : x->size > y->size;
}

/* Every distinct channel (or pattern) of this member's subscribers that
 * matches glob (NULL: all), sorted, into *list (caller frees). Returns the
 * count; -1 if out of memory. */
static int64_t distinct(const struct server *s, bool pattern,
                        const struct resp_arg *glob,
                        const struct pubsub_sub ***list)
{
    size_t total = 0;
    for (const struct feed_link *l = s->pubsub.feed.head; l; l = l->next)
        total += pattern ? l->conn->ps.patterns : l->conn->ps.channels;
    const struct pubsub_sub **all = malloc((total ? total : 1) * sizeof(*all));
    if (all == NULL)
        return -1;
    size_t n = 0;
    for (const struct feed_link *l = s->pubsub.feed.head; l; l = l->next) {
        const struct conn *c = l->conn;
        for (uint32_t i = 0; i < c->ps.count; i++) {
            const struct pubsub_sub *sub = &c->ps.subs[i];
            if (sub->pattern != pattern)
                continue;
            if (glob &&
                !acl_glob_match(glob->ptr, glob->size, sub->name, sub->size))
                continue;
            all[n++] = sub;
        }
    }
    qsort(all, n, sizeof(*all), compare_names);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || compare_names(&all[kept - 1], &all[i]) != 0)
            all[kept++] = all[i];
    *list = all;
    return (int64_t)kept;
}

static void pubsub_channels(struct conn *c, struct resp_buf *out,
                            const struct resp_arg *glob, bool pattern)
{
    const struct pubsub_sub **list;
    int64_t n = distinct(c->server, pattern, glob, &list);
    if (n < 0) {
        resp_write_error(out, "ERR out of memory");
        return;
    }
    if (pattern) {
        resp_write_integer(out, n);
    } else {
        resp_write_array(out, (size_t)n);
        for (int64_t i = 0; i < n; i++)
            resp_write_bulk(out, list[i]->name, list[i]->size);
    }
    free(list);
}

static void pubsub_numsub(struct conn *c, struct resp_buf *out, uint32_t argc,
                          const struct resp_arg *argv)
{
    resp_write_array(out, 2 * (size_t)argc); /* as Redis, in RESP3 too */
    for (uint32_t i = 0; i < argc; i++) {
        int64_t n = 0;
        const struct feed_link *l = c->server->pubsub.feed.head;
        for (; l; l = l->next)
            for (uint32_t j = 0; j < l->conn->ps.count; j++) {
                const struct pubsub_sub *sub = &l->conn->ps.subs[j];
                n += !sub->pattern && sub->size == argv[i].size &&
                     (sub->size == 0 ||
                      memcmp(sub->name, argv[i].ptr, sub->size) == 0);
            }
        resp_write_bulk(out, argv[i].ptr, argv[i].size);
        resp_write_integer(out, n);
    }
}

void cmd_pubsub(struct conn *c, struct resp_buf *out, uint32_t argc,
                const struct resp_arg *argv)
{
    const struct resp_arg *sub = &argv[1];
    if (command_word_is(sub, "channels")) {
        if (argc > 3)
            command_reply_arity(out, "pubsub|channels");
        else
            pubsub_channels(c, out, argc == 3 ? &argv[2] : NULL, false);
    } else if (command_word_is(sub, "numpat")) {
        if (argc != 2)
            command_reply_arity(out, "pubsub|numpat");
        else
            pubsub_channels(c, out, NULL, true);
    } else if (command_word_is(sub, "numsub")) {
        pubsub_numsub(c, out, argc - 2, argv + 2);
    } else if (command_word_is(sub, "help") && argc == 2) {
        static const char *const lines[] = {
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> "
            "(default: '*'), on this member.",
            "NUMPAT",
            "    Return number of subscriptions to patterns, on this member.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, "
            "on this member.",
            "HELP",
            "    Print this help.",
        };
        write_help(out, lines, sizeof(lines) / sizeof(lines[0]));
    } else {
        command_reply_unknown_subcommand(out, sub, "PUBSUB");
    }
}

/* ------------------------------------------------------------ context */

bool pubsub_command_allowed(struct conn *c, const struct command_spec *spec,
                            char refusal[AUTH_REFUSAL_MAX])
{
    if ((c->ps.count == 0 && c->w.count == 0) || c->proto != 2)
        return true;
    if (spec->run == cmd_subscribe || spec->run == cmd_unsubscribe ||
        spec->run == cmd_psubscribe || spec->run == cmd_punsubscribe ||
        spec->run == cmd_cohort_subscribe || spec->run == cmd_cohort_watch ||
        spec->run == cmd_cohort_unwatch || spec->run == cmd_ping ||
        spec->run == cmd_quit)
        return true;
    /* Redis's words, but naming only what this server has (no RESET, no
     * SSUBSCRIBE) and what lifts the restriction. */
    snprintf(refusal, AUTH_REFUSAL_MAX,
             "ERR Can't execute '%s': only SUBSCRIBE / PSUBSCRIBE / "
             "UNSUBSCRIBE / PUNSUBSCRIBE / COHORT.SUBSCRIBE / COHORT.WATCH / "
             "COHORT.UNWATCH / PING / QUIT are allowed in this context; "
             "unsubscribe and unwatch first, or use HELLO 3",
             spec->name);
    return false;
}

bool pubsub_ping(struct conn *c, struct resp_buf *out, uint32_t argc,
                 const struct resp_arg *argv)
{
    if ((c->ps.count == 0 && c->w.count == 0) || c->proto != 2 || argc > 2)
        return false;
    resp_write_array(out, 2);
    resp_write_bulk(out, "pong", 4);
    if (argc == 2)
        resp_write_bulk(out, argv[1].ptr, argv[1].size);
    else
        resp_write_bulk(out, "", 0);
    return true;
}
