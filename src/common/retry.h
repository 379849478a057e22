/* retry — the state of a background activity that can fail for a while
 * (writing the log on a full disk, taking a snapshot): bounded exponential
 * backoff between attempts, and when a run of failures starts and ends, so
 * that its owner logs one line at each end and nothing in between, however
 * long the run lasts. INFO shows the state.
 *
 * Pure: time comes in as arguments (a monotonic now_ms, and a wall-clock
 * wall_ms only for display); nothing is logged or allocated here.
 *
 * Invariants: (1) failures == 0 exactly when the activity is healthy (its
 * latest attempt worked, or none failed yet); (2) delay_min_ms <= delay_ms
 * <= delay_max_ms, doubling with each failure of a run, back to the
 * minimum after a success; (3) retry_failed() returns true once per run
 * (its first failure) and retry_succeeded() nonzero once per run (its
 * end). */
#ifndef COHORT_RETRY_H
#define COHORT_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define RETRY_ERROR_MAX 512

struct retry {
    uint32_t delay_min_ms, delay_max_ms;
    uint32_t delay_ms;           /* the wait after the latest failure */
    uint64_t failures;           /* in the current run; 0: healthy */
    uint64_t failures_total;     /* since start */
    uint64_t since_ms;           /* monotonic: the run's first failure */
    uint64_t since_wall_ms;      /* the same on the wall clock (0: unknown) */
    uint64_t next_ms;            /* monotonic: the next attempt is due */
    char error[RETRY_ERROR_MAX]; /* the latest failure's message */
};

void retry_init(struct retry *r, uint32_t delay_min_ms, uint32_t delay_max_ms);
/* A failed attempt at now_ms (wall_ms: the same instant on the wall clock,
 * or 0). Returns true if it starts a run of failures (log it). The next
 * attempt is due at r->next_ms, r->delay_ms from now. */
bool retry_failed(struct retry *r, uint64_t now_ms, uint64_t wall_ms,
                  const char *error);
/* A successful attempt. Returns the number of failures of the run it ends
 * (0: none; log the end otherwise); r->since_ms still says when the run
 * began. */
uint64_t retry_succeeded(struct retry *r);
/* Whether an attempt is due at now_ms (always, when healthy). */
bool retry_due(const struct retry *r, uint64_t now_ms);
/* Whether r is in a run of failures. */
bool retry_failing(const struct retry *r);

#endif
