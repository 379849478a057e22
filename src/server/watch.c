/* watch — a connection's watches and the delivery of key change events to
 * them. See watch.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "kv/changes.h"
#include "kv/history.h"
#include "kv/kv.h"
#include "server/internal.h"
#include "server/watch.h"

/* ------------------------------------------------------------ the list */

static void set_behind(struct conn *c, bool behind, uint64_t seq)
{
    feed_set_behind(&c->server->watch.feed, &c->w.link, behind, seq);
}

static int find(const struct conn *c, const uint8_t *name, size_t size,
                enum watch_on on)
{
    for (uint32_t i = 0; i < c->w.count; i++) {
        const struct watch_target *t = c->w.watches[i]->target;
        if (t->on == on && t->size == size &&
            (size == 0 || memcmp(t->name, name, size) == 0))
            return (int)i;
    }
    return -1;
}

int watch_add(struct conn *c, const uint8_t *name, size_t size,
              enum watch_on on, uint64_t after)
{
    if (find(c, name, size, on) >= 0)
        return 0;
    if (c->w.count >= WATCH_PER_CONN_MAX)
        return -COHORT_ENOSPC;
    if (!grow_array_u32((void **)&c->w.watches, &c->w.capacity,
                        (size_t)c->w.count + 1, sizeof(*c->w.watches), 4))
        return -COHORT_ENOMEM;
    struct watch *watch = malloc(sizeof(*watch));
    if (watch == NULL)
        return -COHORT_ENOMEM;
    *watch = (struct watch){.conn = c, .after = after};
    if (watch_index_add(&c->server->watch, watch, name, size, on) != 0) {
        free(watch);
        return -COHORT_ENOMEM;
    }
    c->w.watches[c->w.count++] = watch;
    if (c->w.count == 1)
        feed_add(&c->server->watch.feed, &c->w.link, c);
    return 1;
}

static void remove_at(struct conn *c, uint32_t i)
{
    ASSERT(i < c->w.count);
    struct watch *watch = c->w.watches[i];
    watch_index_remove(&c->server->watch, watch);
    free(watch);
    memmove(&c->w.watches[i], &c->w.watches[i + 1],
            (c->w.count - i - 1) * sizeof(*c->w.watches));
    c->w.count--;
    if (c->w.count == 0) {
        feed_remove(&c->server->watch.feed, &c->w.link);
        c->w.last_seq = 0;
        c->w.last_rev = 0;
    }
}

bool watch_remove(struct conn *c, const uint8_t *name, size_t size,
                  enum watch_on on)
{
    int i = find(c, name, size, on);
    if (i < 0)
        return false;
    remove_at(c, (uint32_t)i);
    return true;
}

void watch_start_behind(struct conn *c, uint64_t from)
{
    ASSERT(c->w.count > 0);
    uint64_t seq;
    bool retained = kv_changes_resume(&c->server->kv->changes, from, &seq);
    ASSERT(retained); /* cmd_watch.c refused a compacted FROM */
    set_behind(c, true, seq);
}

static void drop_all(struct conn *c)
{
    while (c->w.count > 0)
        remove_at(c, c->w.count - 1);
    free(c->w.watches);
    c->w.watches = NULL;
    c->w.capacity = 0;
}

void watch_conn_gone(struct conn *c)
{
    drop_all(c);
}

/* Cut c off: one error after the replies owed, then close. */
static void cut(struct conn *c, const char *why)
{
    drop_all(c);
    c->server->watch.watchers_cut++;
    conn_reply_error(c, why);
    c->input_stopped = true;
}

/* ------------------------------------------------------------ delivery */

/* A group's view as recorded (kv_changes_group_view()): the array
 * [member, data, member, data, ...] in join order. */
static void write_view(struct resp_buf *out, const uint8_t *value,
                       size_t value_size)
{
    struct cursor in = cursor_make(value, value_size);
    uint32_t count = cursor_u32(&in);
    resp_write_array(out, 2 * (size_t)count);
    for (uint32_t i = 0; i < 2 * count; i++) {
        uint32_t size = cursor_u32(&in);
        const uint8_t *bytes = cursor_take(&in, size);
        ASSERT(bytes != NULL || size == 0);
        resp_write_bulk(out, bytes, size);
    }
    ASSERT(in.ok && in.left == 0);
}

/* One event, as the push ["watch", revision, kind, key, value or null]
 * (an array on RESP2); a group's view as ["watch", view, "group", group,
 * [member, data, ...]]. */
static void write_event(struct resp_buf *out, uint64_t revision, uint8_t kind,
                        const uint8_t *key, size_t key_size,
                        const uint8_t *value, size_t value_size)
{
    const char *name = kv_change_kind_name(kind);
    resp_write_push(out, 5);
    resp_write_bulk(out, "watch", 5);
    resp_write_integer(out, (int64_t)revision);
    resp_write_bulk(out, name, strlen(name));
    resp_write_bulk(out, key, key_size);
    if (kind == KV_CHANGE_SET)
        resp_write_bulk(out, value, value_size);
    else if (kind == KV_CHANGE_GROUP)
        write_view(out, value, value_size);
    else
        resp_write_null(out);
}

static bool mid_revision(const struct conn *c, uint64_t revision)
{
    return c->w.last_seq != 0 && c->w.last_rev == revision;
}

/* Whether c takes the event at revision: one of its watches matches the
 * event's key (group's, if group) and the event is after it. */
static bool conn_wants(const struct conn *c, uint64_t revision,
                       const uint8_t *key, size_t key_size, bool group)
{
    for (uint32_t i = 0; i < c->w.count; i++) {
        const struct watch *watch = c->w.watches[i];
        if (revision > watch->after &&
            watch_target_matches(watch->target, key, key_size, group))
            return true;
    }
    return false;
}

/* Whether the event at revision may go to c's output now: within a
 * revision c has started, as long as the output is under
 * WATCH_OUTPUT_HARD_MAX (so a revision's events arrive together); else if
 * there is room. */
static bool may_write(const struct conn *c, uint64_t revision)
{
    if (mid_revision(c, revision))
        return !c->closing && c->out.size <= WATCH_OUTPUT_HARD_MAX;
    return pubsub_has_room(c) && !read_pace_feed_held(c->server);
}

/* The live event being delivered, encoded once per protocol. */
struct live {
    struct server *server;
    uint64_t seq, revision;
    uint8_t kind;
    const uint8_t *key, *value;
    size_t key_size, value_size;
    struct resp_buf encoded[2]; /* RESP2, RESP3; size 0 until needed */
};

static void append_encoded(struct live *e, struct conn *c)
{
    struct resp_buf *b = &e->encoded[c->proto == 3];
    if (b->size == 0)
        write_event(b, e->revision, e->kind, e->key, e->key_size, e->value,
                    e->value_size);
    resp_write_raw(&c->out, b->data, b->size);
    read_pace_count(e->server, b->size);
}

static void written(struct conn *c, uint64_t seq, uint64_t revision)
{
    c->w.last_seq = seq + 1;
    c->w.last_rev = revision;
    c->server->watch.events_delivered++;
    server_mark_dirty(c->server, c);
}

static void deliver_to(void *ctx, struct watch_target *t)
{
    struct live *e = ctx;
    for (uint32_t i = 0; i < t->count; i++) {
        struct watch *watch = t->watches[i];
        struct conn *c = watch->conn;
        if (e->revision <= watch->after || c->w.link.behind ||
            c->w.last_seq == e->seq + 1)
            continue; /* not its event, or the ring has it, or it has it */
        if (!may_write(c, e->revision)) {
            set_behind(c, true, e->seq);
            continue;
        }
        append_encoded(e, c);
        written(c, e->seq, e->revision);
    }
}

void watch_deliver(void *ctx, uint64_t seq, uint64_t revision, uint8_t kind,
                   const uint8_t *key, size_t key_size, const uint8_t *value,
                   size_t value_size)
{
    struct server *s = ctx;
    if (s->watch.feed.count == 0)
        return;
    struct live e = {.server = s,
                     .seq = seq,
                     .revision = revision,
                     .kind = kind,
                     .key = key,
                     .value = value,
                     .key_size = key_size,
                     .value_size = value_size};
    resp_buf_init(&e.encoded[0], 2);
    resp_buf_init(&e.encoded[1], 3);
    watch_index_match(&s->watch, key, key_size, kind == KV_CHANGE_GROUP,
                      deliver_to, &e);
    resp_buf_deinit(&e.encoded[0]);
    resp_buf_deinit(&e.encoded[1]);
}

void watch_reset(struct server *s, uint64_t floor)
{
    char why[256];
    snprintf(why, sizeof(why),
             "ERR this member installed a snapshot at revision %" PRIu64
             " and cannot deliver the changes before it; watch again with "
             "COHORT.WATCH ... FROM <last revision seen>",
             floor);
    watch_cut_all(s, why);
}

void watch_cut_all(struct server *s, const char *why)
{
    while (s->watch.feed.head)
        cut(s->watch.feed.head->conn, why);
}

/* The revision c has every event of: the one before its next. */
static uint64_t resume_revision(const struct conn *c)
{
    uint64_t rev = c->w.last_rev;
    for (uint32_t i = 0; i < c->w.count; i++)
        if (c->w.watches[i]->after > rev)
            rev = c->w.watches[i]->after;
    return rev;
}

/* One revision's events for c passed WATCH_OUTPUT_HARD_MAX unread: c has
 * part of revision, so it resumes from the one before. */
static void cut_mid_revision(struct conn *c, uint64_t revision)
{
    char why[256];
    snprintf(why, sizeof(why),
             "ERR watcher too slow: the unread events of revision %" PRIu64
             " passed the output limit; resume with COHORT.WATCH ... FROM "
             "%" PRIu64 " (events of revision %" PRIu64 " come again)",
             revision, revision - 1, revision);
    cut(c, why);
}

/* Feed behind watcher c from kv->changes while it has room. Returns
 * whether the turn's delivery budget is spent. */
static bool pump(struct conn *c)
{
    const struct history *h = &c->server->kv->changes;
    ASSERT(c->w.link.behind);
    if (c->w.link.resume < h->first_seq) {
        char why[320];
        uint64_t rev = resume_revision(c);
        snprintf(why, sizeof(why),
                 "ERR watcher fell behind: the changes after revision "
                 "%" PRIu64 " are compacted on this member (the oldest FROM "
                 "it accepts is %" PRIu64 "); resume with COHORT.WATCH ... "
                 "FROM %" PRIu64 " on a member that retains them, or re-read "
                 "and watch from COHORT.GET ... WITHREV",
                 rev, h->floor, rev);
        cut(c, why);
        return read_pace_spent(c->server);
    }
    uint64_t end = history_next_seq(h);
    for (uint64_t seq = c->w.link.resume; seq < end; seq++) {
        const struct history_entry *e =
            history_at(h, (uint32_t)(seq - h->first_seq));
        c->w.link.resume = seq;
        if (!conn_wants(c, e->position, history_channel(e), e->channel_size,
                        kv_change_kind(e) == KV_CHANGE_GROUP))
            continue;
        if (!may_write(c, e->position)) {
            if (mid_revision(c, e->position) && !c->closing)
                cut_mid_revision(c, e->position);
            return read_pace_spent(c->server);
        }
        size_t before = c->out.size;
        write_event(&c->out, e->position, kv_change_kind(e), history_channel(e),
                    e->channel_size, kv_change_value(e),
                    kv_change_value_size(e));
        read_pace_count(c->server, c->out.size - before);
        written(c, seq, e->position);
    }
    set_behind(c, false, 0);
    return read_pace_spent(c->server);
}

void watch_pump_all(struct server *s)
{
    read_pace_pump_feed(s, &s->watch.feed, pump);
}
