/* feed — the connections of a member that receive a stream in log order
 * (pub/sub's messages, pubsub.c; watches' key changes, watch.c), and which
 * of them are behind: fed from a history ring by the prepare handle, from
 * their `resume` point, rather than live as ops are applied.
 *
 * Invariants: (1) a link is on its feed's list iff `linked`; (2)
 * feed->count counts the listed links and feed->behind those with
 * `behind` set; an unlisted link is not behind.
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
    struct feed_link *head;
    uint32_t count;  /* linked */
    uint32_t behind; /* of which behind */
};

/* List l, c's link (not listed: asserted). */
void feed_add(struct feed *f, struct feed_link *l, struct conn *c);
/* Unlist l (listed: asserted); it is no longer behind. */
void feed_remove(struct feed *f, struct feed_link *l);
void feed_set_behind(struct feed *f, struct feed_link *l, bool behind,
                     uint64_t resume);
/* Call pump on the connection of each behind link; pump may unlist the
 * link it is given (a cut), not others. */
void feed_pump_all(struct feed *f, void (*pump)(struct conn *c));

#endif
