/* log_limit — keeps a stream of similar warnings (peer connections refused,
 * say) from flooding the log when someone outside makes them on purpose:
 * at most `burst` lines per window of `window_ms`, and the count of those
 * left out is reported on the first line let through after them.
 *
 * Invariant: every event is either logged or counted in `suppressed`, and
 * a count is reported once, on the next line allowed. The caller counts
 * the events themselves elsewhere (metrics), so nothing is lost but text.
 * Pure: the caller gives the time. */
#ifndef COHORT_LOG_LIMIT_H
#define COHORT_LOG_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct log_limit {
    uint64_t window_ms;
    uint32_t burst;
    uint64_t window_start_ms;
    uint32_t in_window;  /* lines allowed in the current window */
    uint64_t suppressed; /* left out since the last line allowed */
};

void log_limit_init(struct log_limit *l, uint64_t window_ms, uint32_t burst);

/* Whether a line may be written at now_ms. When it may, *suppressed gets
 * the number of lines left out before it (then reset), for the caller to
 * append; when not, the line is counted as left out. */
bool log_limit_allow(struct log_limit *l, uint64_t now_ms,
                     uint64_t *suppressed);

#endif
