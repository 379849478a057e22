/* feed — the connections of a member that receive a stream in log order
 * (pub/sub's messages, pubsub.c; watches' key changes, watch.c), and which
 * of them are behind: fed from a history ring by the prepare handle, from
 * their `resume` point, rather than live as ops are applied.
 *
 * Fairness: a loop turn's delivery budget (read_pace.c) runs out part
 * way down the list, so whoever is first is served first. The list is
 * rotated to start at the first link that was not served (feed_rotate()),
 * and the walks start at the head (the pumps', and pub/sub's live
 * delivery; a watch's live events follow the watch index): under sustained
 * fan-out every connection takes its turn at waiting, not always the same ones
 * at the tail (which are also the ones cut off when the history drops a
 * message).
 *
 * Invariants: (1) a link is on its feed's list iff `linked`; (2)
 * feed->count counts the listed links and feed->behind those with
 * `behind` set; an unlisted link is not behind; (3) tail is the last
 * listed link (NULL iff head is).
 */
#ifndef COHORT_SERVER_FEED_H
#define COHORT_SERVER_FEED_H

#include <stdbool.h>
#include <stdint.h>

struct conn;

struct feed_link {
    struct feed_link *prev, *next;
    struct conn *conn;
    bool linked;
    bool behind;
    uint64_t resume; /* behind: where the ring feeds it from */
};

struct feed {
    struct feed_link *head, *tail;
    uint32_t count;  /* linked */
    uint32_t behind; /* of which behind */
};

/* List l, c's link (not listed: asserted). */
void feed_add(struct feed *f, struct feed_link *l, struct conn *c);
/* Unlist l (listed: asserted); it is no longer behind. */
void feed_remove(struct feed *f, struct feed_link *l);
void feed_set_behind(struct feed *f, struct feed_link *l, bool behind,
                     uint64_t resume);
/* Make l (listed) the head, the links before it following the old tail,
 * in order. */
void feed_rotate(struct feed *f, struct feed_link *l);
/* Call pump on the connection of each behind link, from the head; pump
 * may unlist the link it is given (a cut), not others. It returns true
 * when the turn's budget is spent: the walk stops, and the list is
 * rotated to start at the next link, so that those not served go first
 * next time. Callers start a walk only with budget left, so that every
 * link pumped had its go. */
void feed_pump_all(struct feed *f, bool (*pump)(struct conn *c));

#endif
