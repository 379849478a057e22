/* cmd_watch — the watch commands on a connection (delivery is watch.c's):
 *
 *     COHORT.WATCH KEY key [FROM revision]
 *     COHORT.WATCH PREFIX prefix [FROM revision]
 *     COHORT.WATCH GROUP group [FROM revision]
 *         confirmed by ["watching", "key"|"prefix"|"group", name, after,
 *         count]: events with revisions above `after` (FROM's revision,
 *         else the last op this member applied) follow as
 *         ["watch", revision, "set"|"del"|"expire", key, value or null],
 *         or for a group each new view as ["watch", view, "group", group,
 *         [member, data, ...]] (empty when the last member left),
 *         pushes in RESP3, arrays in RESP2 (where, as after SUBSCRIBE, the
 *         connection may then only (un)watch, (un)subscribe, PING and
 *         QUIT). FROM needs a connection without watches; a revision older
 *         than this member's retained changes is refused as compacted,
 *         naming the oldest FROM it accepts.
 *     COHORT.UNWATCH [KEY key | PREFIX prefix | GROUP group]
 *         drops one watch, or every one: ["unwatching", kind, name, count]
 *         for each (kind and name null when there was none).
 */
#include <inttypes.h>
#include <string.h>

#include "common/assert.h"
#include "kv/acl.h"
#include "kv/changes.h"
#include "kv/history.h"
#include "kv/kv.h"
#include "server/command.h"
#include "server/internal.h"

static const char *const watch_syntax =
    "ERR syntax error: use COHORT.WATCH KEY key [FROM revision], "
    "COHORT.WATCH PREFIX prefix [FROM revision] or COHORT.WATCH GROUP group "
    "[FROM revision]";

static const char *const on_names[WATCH_ON_COUNT] = {"key", "prefix", "group"};

/* KEY, PREFIX or GROUP in *on; false if none. */
static bool parse_kind(const struct resp_arg *arg, enum watch_on *on)
{
    for (uint32_t i = 0; i < WATCH_ON_COUNT; i++) {
        if (command_word_is(arg, on_names[i])) {
            *on = (enum watch_on)i;
            return true;
        }
    }
    return false;
}

static void write_confirm(struct resp_buf *out, const char *what, bool known,
                          enum watch_on on, const void *name, size_t size,
                          int64_t after, uint32_t count)
{
    resp_write_push(out, after >= 0 ? 5 : 4);
    resp_write_bulk(out, what, strlen(what));
    if (known) {
        resp_write_bulk(out, on_names[on], strlen(on_names[on]));
        resp_write_bulk(out, name, size);
    } else {
        resp_write_null(out);
        resp_write_null(out);
    }
    if (after >= 0)
        resp_write_integer(out, after);
    resp_write_integer(out, count);
}

/* Whether pattern is Q* with no glob character in Q, and Q is a prefix of
 * name: then every key under name matches it. */
static bool covers_prefix(const struct acl_pattern *pattern,
                          const struct resp_arg *name)
{
    size_t q = pattern->size;
    if (q == 0 || pattern->bytes[q - 1] != '*' || q - 1 > name->size)
        return false;
    for (size_t i = 0; i + 1 < q; i++) {
        uint8_t b = pattern->bytes[i];
        if (b == '*' || b == '?' || b == '[' || b == '\\' ||
            b != (uint8_t)name->ptr[i])
            return false;
    }
    return true;
}

/* Whether c's user may read every key the watch can show: the key (or
 * the group's name, which COHORT.GROUP's key rules cover), or (for a
 * prefix) every key under it, which a pattern `Q*` with Q a prefix of it
 * guarantees (a conservative test: other patterns do not count). */
static bool permitted(const struct conn *c, const struct resp_arg *name,
                      enum watch_on on)
{
    const struct acl_user *u = c->acl_user;
    if (c->perm.all_keys)
        return true;
    if (u == NULL)
        return false;
    if (on != WATCH_ON_PREFIX)
        return acl_user_key_ok(u, name->ptr, name->size);
    for (uint32_t i = 0; i < u->key_count; i++)
        if (covers_prefix(&u->keys[i], name))
            return true;
    return false;
}

/* FROM's revision into *from; writes the error and returns false if it is
 * malformed, not allowed here, or compacted. */
static bool parse_from(struct conn *c, struct resp_buf *out,
                       const struct resp_arg *argv, uint64_t *from)
{
    const struct history *h = &c->server->kv->changes;
    if (!command_word_is(&argv[0], "from")) {
        resp_write_error(out, watch_syntax);
        return false;
    }
    if (!command_parse_u64(&argv[1], from) || *from >= INT64_MAX) {
        resp_write_error(out, "ERR FROM revision is not an integer or out "
                              "of range");
        return false;
    }
    if (c->w.count > 0) {
        resp_write_error(out, "ERR COHORT.WATCH FROM needs a connection "
                              "without watches; COHORT.UNWATCH first or use "
                              "a new one");
        return false;
    }
    uint64_t seq;
    if (!kv_changes_resume(h, *from, &seq)) {
        resp_write_errorf(out,
                          "ERR revision %" PRIu64 " is compacted: this "
                          "member retains the changes after revision "
                          "%" PRIu64 ", the oldest FROM it accepts; re-read "
                          "with COHORT.GET key WITHREV and watch FROM the "
                          "revision it returns",
                          *from, h->floor);
        return false;
    }
    return true;
}

void cmd_cohort_watch(struct conn *c, struct resp_buf *out, uint32_t argc,
                      const struct resp_arg *argv)
{
    enum watch_on on;
    if ((argc != 3 && argc != 5) || !parse_kind(&argv[1], &on)) {
        resp_write_error(out, watch_syntax);
        return;
    }
    const struct resp_arg *name = &argv[2];
    uint32_t key_max = c->server->kv->config.key_size_max;
    if (name->size > key_max) {
        resp_write_errorf(out,
                          "ERR the watched %s is %zu bytes, longer than any "
                          "key (key-size-max %" PRIu32 ")",
                          on_names[on], name->size, key_max);
        return;
    }
    if (!permitted(c, name, on)) {
        resp_write_errorf(out,
                          "NOPERM this user may not read every key %s; "
                          "watch a key or prefix its key patterns (~Q*) "
                          "cover",
                          on == WATCH_ON_PREFIX ? "under the prefix"
                                                : "watched");
        return;
    }
    uint64_t from = c->server->kv->op;
    if (argc == 5 && !parse_from(c, out, &argv[3], &from))
        return;
    if (argc == 3 && server_recovering(c->server)) {
        /* "Now" is not known yet: the store is replaying its log. */
        resp_write_error(out, SERVER_RECOVERING_ERROR);
        return;
    }
    int rc = watch_add(c, (const uint8_t *)name->ptr, name->size, on, from);
    if (rc == -COHORT_ENOSPC) {
        resp_write_errorf(out,
                          "ERR this connection has %u watches, the most one "
                          "may hold; use another connection",
                          WATCH_PER_CONN_MAX);
        return;
    }
    if (rc < 0) {
        resp_write_error(out, "ERR out of memory for the watch");
        return;
    }
    ASSERT(from <= INT64_MAX);
    write_confirm(out, "watching", true, on, name->ptr, name->size,
                  (int64_t)from, c->w.count);
    if (argc == 5)
        watch_start_behind(c, from);
}

void cmd_cohort_unwatch(struct conn *c, struct resp_buf *out, uint32_t argc,
                        const struct resp_arg *argv)
{
    enum watch_on on;
    if (argc == 3 && parse_kind(&argv[1], &on)) {
        (void)watch_remove(c, (const uint8_t *)argv[2].ptr, argv[2].size, on);
        write_confirm(out, "unwatching", true, on, argv[2].ptr, argv[2].size,
                      -1, c->w.count);
        return;
    }
    if (argc != 1) {
        resp_write_error(out, "ERR syntax error: use COHORT.UNWATCH, "
                              "COHORT.UNWATCH KEY key, COHORT.UNWATCH "
                              "PREFIX prefix or COHORT.UNWATCH GROUP group");
        return;
    }
    if (c->w.count == 0) {
        write_confirm(out, "unwatching", false, WATCH_ON_KEY, NULL, 0, -1, 0);
        return;
    }
    while (c->w.count > 0) {
        const struct watch_target *t = c->w.watches[c->w.count - 1]->target;
        /* Write before removing: the target may go with the watch. */
        resp_write_push(out, 4);
        resp_write_bulk(out, "unwatching", 10);
        resp_write_bulk(out, on_names[t->on], strlen(on_names[t->on]));
        resp_write_bulk(out, t->name, t->size);
        bool removed = watch_remove(c, t->name, t->size, t->on);
        ASSERT(removed);
        resp_write_integer(out, c->w.count);
    }
}
