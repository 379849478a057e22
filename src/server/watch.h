/* watch — watches on this member's connections (COHORT.WATCH KEY|PREFIX
 * ... [FROM rev], COHORT.UNWATCH; the commands are cmd_watch.c's) and the
 * delivery of key change events to them.
 *
 * Every member records each key change it applies in kv->changes
 * (kv/changes.h) and calls watch_deliver() here, so every member delivers
 * the same events in the same order, the log's, whatever member a client
 * watches on. This is the design of pub/sub (pubsub.c) applied to changes:
 *
 * - Delivery: a watcher that is caught up gets an event written to its
 *   output as it is applied. One that cannot take it (output over
 *   CONN_OUTPUT_SOFT_MAX, or on RESP2 a reply still owed) becomes `behind`
 *   and is fed from kv->changes, from its `link.resume`, by
 *   watch_pump_all() as its output drains. A behind watcher whose next
 *   event has left the ring is cut off with one error naming the revision
 *   to resume from and the oldest one retained, and the connection
 *   closes: each watcher gets every event of its watches once, in order,
 *   or an error, never a gap. FROM rev starts a connection behind, at the
 *   first event after rev. Output space is checked only between
 *   revisions, so the events of one revision reach a connection together.
 *
 * - Index: watched keys, prefixes and groups are targets in three sorted
 *   arrays, each target listing its watches. A key change looks up its
 *   key among the key targets and each of its prefixes (up to the longest
 *   watched one) among the prefix targets: O(key length * log targets)
 *   per event, not O(watchers); a group's new view (kv/changes.h's
 *   KV_CHANGE_GROUP) looks up its group among the group targets only.
 *   Then each matching watch is written (the event is encoded once per
 *   protocol, and copied).
 *
 * - Bounds: a connection holds at most WATCH_PER_CONN_MAX watches; its
 *   memory is those plus an output of about CONN_OUTPUT_SOFT_MAX (a
 *   revision's events beyond it are allowed, and a connection whose
 *   output passes WATCH_OUTPUT_HARD_MAX is cut off).
 *
 * Invariants: (1) a watch is listed in its target, and a target exists
 * iff it lists a watch; (2) a connection is on server->watch.feed
 * (feed.h) iff it has a watch; (3) a behind connection has been given
 * every event of its watches numbered below w.link.resume and none at or
 * above it.
 */
#ifndef COHORT_SERVER_WATCH_H
#define COHORT_SERVER_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/feed.h"

struct conn;
struct server;
struct resp_buf;
struct resp_arg;

#define WATCH_PER_CONN_MAX 1000u
#define WATCH_OUTPUT_HARD_MAX (64u * 1024 * 1024)

struct watch_target;

/* One watch of a connection: events of its target after revision
 * `after`. */
struct watch {
    struct watch_target *target;
    struct conn *conn;
    uint64_t after;
};

/* What a watch follows: one key's changes, those of every key under a
 * prefix, or an application group's views (kv/group.h). */
enum watch_on {
    WATCH_ON_KEY,
    WATCH_ON_PREFIX,
    WATCH_ON_GROUP,
};
#define WATCH_ON_COUNT 3

/* A key, prefix or group somebody watches, and its watches. */
struct watch_target {
    uint8_t *name; /* owned */
    uint32_t size;
    enum watch_on on;
    struct watch **watches;
    uint32_t count, capacity;
};

/* A connection's watches and where its delivery stands. */
struct conn_watch {
    struct watch **watches; /* in the order made */
    uint32_t count, capacity;
    /* On server->watch.feed while count > 0; when behind, link.resume is
     * the sequence number of the next event to consider. */
    struct feed_link link;
    uint64_t last_seq; /* the last event written, +1 (0: none) */
    uint64_t last_rev; /* the revision of the last event written */
};

/* The targets of one kind, sorted by name. */
struct watch_targets {
    struct watch_target **items;
    uint32_t count, capacity;
};

struct server_watch {
    struct watch_targets on[WATCH_ON_COUNT]; /* by enum watch_on */
    uint32_t prefix_size_max;                /* the longest watched prefix */
    struct feed feed;                        /* the connections with a watch */
    uint64_t events_delivered;
    uint64_t watchers_cut;
};

/* Add a watch of the key, prefix or group `name` to c for the events after
 * revision `after`. Returns 1 if added, 0 if c had it, -COHORT_ENOSPC at
 * WATCH_PER_CONN_MAX, -COHORT_ENOMEM. */
int watch_add(struct conn *c, const uint8_t *name, size_t size,
              enum watch_on on, uint64_t after);
/* Remove c's watch; returns whether it had it. */
bool watch_remove(struct conn *c, const uint8_t *name, size_t size,
                  enum watch_on on);
/* c (which has watches) is given the events after revision `from` out of
 * kv->changes (FROM). */
void watch_start_behind(struct conn *c, uint64_t from);
/* c is being torn down: drop its watches. */
void watch_conn_gone(struct conn *c);
/* Deliver what behind watchers have room for (the prepare handle). */
void watch_pump_all(struct server *s);

/* The kv hooks (pubsub_open() installs them with pub/sub's). */
void watch_deliver(void *ctx, uint64_t seq, uint64_t revision, uint8_t kind,
                   const uint8_t *key, size_t key_size, const uint8_t *value,
                   size_t value_size);
void watch_reset(struct server *s, uint64_t floor);
/* Cut off every watcher with the error why (pubsub_cut_all()). */
void watch_cut_all(struct server *s, const char *why);

/* ---- watch_index.c: the targets, independent of connections. */

/* Link watch (conn and after set) under the target (name, on), creating
 * it; sets watch->target. Returns 0 or -COHORT_ENOMEM (nothing linked). */
int watch_index_add(struct server_watch *w, struct watch *watch,
                    const uint8_t *name, size_t size, enum watch_on on);
/* Unlink watch; its target goes when it lists no watch. */
void watch_index_remove(struct server_watch *w, struct watch *watch);
/* Call fn for each target matching an event on name: for a key change
 * (group false) the key's own target, then the watched prefixes of the
 * key, shortest first; for a group's new view (group true) the group's
 * target. */
typedef void (*watch_match_fn)(void *ctx, struct watch_target *t);
void watch_index_match(const struct server_watch *w, const uint8_t *name,
                       size_t size, bool group, watch_match_fn fn, void *ctx);
/* Whether an event on name (a group's view if group) is one t follows. */
bool watch_target_matches(const struct watch_target *t, const uint8_t *name,
                          size_t size, bool group);
/* Invariant (1) and the order of the arrays, O(targets + watches). */
bool watch_index_valid(const struct server_watch *w);

#endif
