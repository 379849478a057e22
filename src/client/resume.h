/* client/resume — where a watch of libcohort-client resumes after a
 * reconnect, so that the application gets every event exactly once and in
 * order. Pure: no I/O.
 *
 * The server sends a watch's events in revision order, and one revision
 * (one op: an MSET, a transaction) may carry several events, always in the
 * same order on every member (they come from the deterministic apply). A
 * connection may break between two events of one revision, so the last
 * revision delivered may be incomplete: the watch resumes FROM the
 * revision before it and drops the events of that revision it already
 * delivered, by count.
 *
 * Invariants: (1) last is the highest revision delivered (or the watch's
 * starting point when at_last is 0); (2) at_last counts the events of
 * revision last delivered; (3) skip <= at_last, the replayed events of
 * revision last still to drop after a resume; (4) a delivered event's
 * revision is >= last, so delivery is in order with no event twice. */
#ifndef COHORT_CLIENT_RESUME_H
#define COHORT_CLIENT_RESUME_H

#include <stdbool.h>
#include <stdint.h>

struct client_resume {
    uint64_t last;
    uint32_t at_last;
    uint32_t skip;
};

/* Start after revision after (the events above it are wanted). */
void client_resume_init(struct client_resume *r, uint64_t after);
/* A new connection: the FROM revision to ask for (events above it). */
uint64_t client_resume_from(struct client_resume *r);
/* An event of revision rev arrived: true to deliver it, false if it is
 * one already delivered. */
bool client_resume_accept(struct client_resume *r, uint64_t rev);

#endif
