/* pubsub — subscriptions and delivery: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
 * PUNSUBSCRIBE, COHORT.SUBSCRIBE ... [FROM position] and PUBSUB, on this
 * member's connections.
 *
 * PUBLISH is a store write (kv/command.h): it goes through the log, and
 * every member's apply retains the message in the store's history
 * (kv/history.h) at its position (the op) and calls pubsub_deliver() here.
 * So every member delivers the same messages in the same order, the log's;
 * subscribers are local to a member and not replicated.
 *
 * Delivery: a subscriber that is caught up gets a message written to its
 * output as it is applied. One that cannot take it now (its output is over
 * CONN_OUTPUT_SOFT_MAX, or on RESP2 an earlier reply is still owed) becomes
 * `behind`: from then on the prepare handle feeds it from the history, from
 * its `ps.link.resume` position, as its output drains, until it has caught
 * up. A subscriber whose resume message has left the history (the ring is
 * bounded) is cut off: it gets one error naming the position, and the
 * connection closes. So each subscriber gets every message of its
 * channels once, in log order, or an error: never a gap. COHORT.SUBSCRIBE
 * FROM p starts a connection behind at p + 1.
 *
 * Each subscription has an `after` position: it is delivered messages at
 * positions above it (the op applied when it was made, or FROM's p).
 *
 * Cost: a message is matched against every subscribed connection's
 * subscriptions, O(subscriptions) per message on every member, inside
 * apply; enough for thousands of subscriptions, not for millions (a
 * connection holds at most PUBSUB_SUBS_PER_CONN_MAX).
 *
 * Invariants: (1) a connection is on server->pubsub.feed (feed.h) iff its
 * ps.count > 0; (2) a behind connection has been given every message of
 * its subscriptions below ps.link.resume, and none at or above it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"
#include "kv/acl.h"
#include "kv/history.h"
#include "kv/kv.h"
#include "server/command.h"
#include "server/internal.h"

/* ------------------------------------------------------------ matching */

static bool sub_matches(const struct pubsub_sub *sub, const uint8_t *channel,
                        size_t channel_size)
{
    if (sub->pattern)
        return acl_glob_match(sub->name, sub->size, channel, channel_size);
    return sub->size == channel_size &&
           (channel_size == 0 || memcmp(sub->name, channel, channel_size) == 0);
}

/* Whether any of c's subscriptions takes the message at position. */
static bool conn_wants(const struct conn *c, uint64_t position,
                       const uint8_t *channel, size_t channel_size,
                       uint64_t *count)
{
    bool wants = false;
    for (uint32_t i = 0; i < c->ps.count; i++) {
        const struct pubsub_sub *sub = &c->ps.subs[i];
        if (position > sub->after && sub_matches(sub, channel, channel_size)) {
            wants = true;
            (*count)++;
        }
    }
    return wants;
}

/* The message as each matching subscription of c receives it: channels
 * first, then patterns, as Redis. */
static void write_messages(struct conn *c, uint64_t position,
                           const uint8_t *channel, size_t channel_size,
                           const uint8_t *message, size_t message_size)
{
    struct resp_buf *out = &c->out;
    size_t before = out->size;
    size_t extra = c->ps.positioned ? 1 : 0;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < c->ps.count; i++) {
            const struct pubsub_sub *sub = &c->ps.subs[i];
            if (sub->pattern != (pass == 1) || position <= sub->after ||
                !sub_matches(sub, channel, channel_size))
                continue;
            if (sub->pattern) {
                resp_write_push(out, 4 + extra);
                resp_write_bulk(out, "pmessage", 8);
                resp_write_bulk(out, sub->name, sub->size);
            } else {
                resp_write_push(out, 3 + extra);
                resp_write_bulk(out, "message", 7);
            }
            resp_write_bulk(out, channel, channel_size);
            resp_write_bulk(out, message, message_size);
            if (extra)
                resp_write_integer(out, (int64_t)position);
            c->server->pubsub.messages_delivered++;
        }
    }
    read_pace_count(c->server, out->size - before);
    server_mark_dirty(c->server, c);
}

bool pubsub_has_room(const struct conn *c)
{
    if (c->closing || c->input_stopped)
        return false;
    if (c->proto == 2 && c->head != NULL)
        return false; /* it would overtake a reply still owed */
    return c->out.size + c->writing_buf.size < CONN_OUTPUT_SOFT_MAX;
}

/* ------------------------------------------------------------ the list */

static void set_behind(struct conn *c, bool behind, uint64_t next)
{
    feed_set_behind(&c->server->pubsub.feed, &c->ps.link, behind, next);
}

int pubsub_sub_add(struct conn *c, const char *name, size_t size, bool pattern,
                   uint64_t after)
{
    for (uint32_t i = 0; i < c->ps.count; i++) {
        const struct pubsub_sub *sub = &c->ps.subs[i];
        if (sub->pattern == pattern && sub->size == size &&
            (size == 0 || memcmp(sub->name, name, size) == 0))
            return 0;
    }
    if (size > UINT32_MAX || c->ps.count >= PUBSUB_SUBS_PER_CONN_MAX)
        return -COHORT_ENOSPC;
    if (!grow_array_u32((void **)&c->ps.subs, &c->ps.capacity,
                        (size_t)c->ps.count + 1, sizeof(*c->ps.subs), 4))
        return -COHORT_ENOMEM;
    char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return -COHORT_ENOMEM;
    if (size > 0)
        memcpy(copy, name, size);
    c->ps.subs[c->ps.count++] = (struct pubsub_sub){.name = copy,
                                                    .size = (uint32_t)size,
                                                    .pattern = pattern,
                                                    .after = after};
    if (pattern)
        c->ps.patterns++;
    else
        c->ps.channels++;
    if (c->ps.count == 1)
        feed_add(&c->server->pubsub.feed, &c->ps.link, c);
    return 1;
}

static void sub_remove_at(struct conn *c, uint32_t i)
{
    ASSERT(i < c->ps.count);
    struct pubsub_sub *sub = &c->ps.subs[i];
    if (sub->pattern)
        c->ps.patterns--;
    else
        c->ps.channels--;
    free(sub->name);
    memmove(sub, sub + 1, (c->ps.count - i - 1) * sizeof(*sub));
    c->ps.count--;
    if (c->ps.count == 0) {
        feed_remove(&c->server->pubsub.feed, &c->ps.link);
        c->ps.positioned = false;
    }
}

void pubsub_sub_truncate(struct conn *c, uint32_t count)
{
    ASSERT(count <= c->ps.count);
    while (c->ps.count > count)
        sub_remove_at(c, c->ps.count - 1);
}

bool pubsub_sub_remove(struct conn *c, const char *name, size_t size,
                       bool pattern)
{
    for (uint32_t i = 0; i < c->ps.count; i++) {
        const struct pubsub_sub *sub = &c->ps.subs[i];
        if (sub->pattern == pattern && sub->size == size &&
            (size == 0 || memcmp(sub->name, name, size) == 0)) {
            sub_remove_at(c, i);
            return true;
        }
    }
    return false;
}

void pubsub_start_behind(struct conn *c, uint64_t from)
{
    ASSERT(c->ps.count > 0);
    set_behind(c, true, from);
}

static void drop_all(struct conn *c)
{
    while (c->ps.count > 0)
        sub_remove_at(c, c->ps.count - 1);
    free(c->ps.subs);
    c->ps.subs = NULL;
    c->ps.capacity = 0;
}

void pubsub_conn_gone(struct conn *c)
{
    drop_all(c);
}

/* Cut c off: one error after the replies owed, then close. */
static void cut(struct conn *c, const char *why)
{
    drop_all(c);
    c->server->pubsub.subscribers_cut++;
    conn_reply_error(c, why);
    c->input_stopped = true;
}

/* ------------------------------------------------------------ delivery */

uint64_t pubsub_receivers(const struct server *s, uint64_t op)
{
    uint32_t i = (uint32_t)(op % PUBSUB_COUNTS);
    return s->pubsub.counted_op[i] == op ? s->pubsub.counted[i] : 0;
}

static uint64_t pubsub_deliver(void *ctx, uint64_t position,
                               const uint8_t *channel, size_t channel_size,
                               const uint8_t *message, size_t message_size)
{
    struct server *s = ctx;
    uint64_t count = 0;
    struct feed_link *first_held = NULL; /* by the budget */
    for (struct feed_link *l = s->pubsub.feed.head; l; l = l->next) {
        struct conn *c = l->conn;
        if (!conn_wants(c, position, channel, channel_size, &count))
            continue;
        if (c->ps.link.behind)
            continue; /* the history has it; pump delivers it in turn */
        bool room = pubsub_has_room(c);
        if (!room || read_pace_feed_held(s)) {
            if (room && !first_held)
                first_held = l;
            set_behind(c, true, position);
            continue;
        }
        write_messages(c, position, channel, channel_size, message,
                       message_size);
    }
    if (first_held && first_held->linked) /* first next time (feed.h) */
        feed_rotate(&s->pubsub.feed, first_held);
    uint32_t i = (uint32_t)(position % PUBSUB_COUNTS);
    s->pubsub.counted_op[i] = position;
    s->pubsub.counted[i] = count;
    return count;
}

static void pubsub_reset(void *ctx, uint64_t floor)
{
    struct server *s = ctx;
    char why[256];
    snprintf(why, sizeof(why),
             "ERR this member installed a snapshot at op %" PRIu64
             " and cannot deliver the messages before it; resubscribe with "
             "COHORT.SUBSCRIBE ... FROM <last position seen>",
             floor);
    while (s->pubsub.feed.head)
        cut(s->pubsub.feed.head->conn, why);
    watch_reset(s, floor);
}

void pubsub_cut_all(struct server *s, const char *why)
{
    while (s->pubsub.feed.head)
        cut(s->pubsub.feed.head->conn, why);
    watch_cut_all(s, why);
}

/* Feed behind subscriber c from the history while it has room. Returns
 * whether the turn's delivery budget is spent. */
static bool pump(struct conn *c)
{
    const struct history *h = &c->server->kv->history;
    ASSERT(c->ps.link.behind);
    if (c->ps.link.resume <= h->floor) {
        char why[256];
        snprintf(why, sizeof(why),
                 "ERR subscriber fell behind: the messages after position "
                 "%" PRIu64 " are no longer retained on this member (it "
                 "accepts FROM %" PRIu64
                 " on); resume with COHORT.SUBSCRIBE ... FROM %" PRIu64
                 " on a member that retains them",
                 c->ps.link.resume - 1, h->floor, c->ps.link.resume - 1);
        cut(c, why);
        return read_pace_spent(c->server);
    }
    for (uint32_t i = history_find(h, c->ps.link.resume); i < h->count; i++) {
        if (!pubsub_has_room(c) || read_pace_feed_held(c->server))
            return read_pace_spent(c->server);
        const struct history_entry *e = history_at(h, i);
        uint64_t count = 0;
        if (conn_wants(c, e->position, history_channel(e), e->channel_size,
                       &count))
            write_messages(c, e->position, history_channel(e), e->channel_size,
                           history_message(e), e->message_size);
        c->ps.link.resume = e->position + 1;
    }
    set_behind(c, false, 0);
    return read_pace_spent(c->server);
}

void pubsub_pump_all(struct server *s)
{
    read_pace_pump_feed(s, &s->pubsub.feed, pump);
}

void pubsub_open(struct server *s)
{
    struct kv_publish_hook hook = {
        .ctx = s,
        .deliver = pubsub_deliver,
        .reset = pubsub_reset,
        .change = watch_deliver,
    };
    node_set_publish_hook(s->node, &hook);
}

void pubsub_close(struct server *s)
{
    node_set_publish_hook(s->node, NULL);
}
