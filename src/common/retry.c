/* retry — backoff and the ends of a run of failures. See retry.h. */
#include "common/retry.h"

#include <stdio.h>
#include <string.h>

#include "common/assert.h"

void retry_init(struct retry *r, uint32_t delay_min_ms, uint32_t delay_max_ms)
{
    ASSERT(delay_min_ms > 0);
    ASSERT(delay_min_ms <= delay_max_ms);
    memset(r, 0, sizeof(*r));
    r->delay_min_ms = delay_min_ms;
    r->delay_max_ms = delay_max_ms;
    r->delay_ms = delay_min_ms;
}

bool retry_failed(struct retry *r, uint64_t now_ms, uint64_t wall_ms,
                  const char *error)
{
    snprintf(r->error, sizeof(r->error), "%s", error);
    r->failures_total++;
    bool first = r->failures++ == 0;
    if (first) {
        r->delay_ms = r->delay_min_ms;
        r->since_ms = now_ms;
        r->since_wall_ms = wall_ms;
    } else {
        uint64_t doubled = (uint64_t)r->delay_ms * 2;
        r->delay_ms =
            doubled < r->delay_max_ms ? (uint32_t)doubled : r->delay_max_ms;
    }
    ASSERT(r->delay_ms >= r->delay_min_ms);
    ASSERT(r->delay_ms <= r->delay_max_ms);
    r->next_ms = now_ms + r->delay_ms;
    return first;
}

uint64_t retry_succeeded(struct retry *r)
{
    uint64_t ended = r->failures;
    r->failures = 0;
    r->delay_ms = r->delay_min_ms;
    r->next_ms = 0;
    return ended;
}

bool retry_due(const struct retry *r, uint64_t now_ms)
{
    return r->failures == 0 || now_ms >= r->next_ms;
}

bool retry_failing(const struct retry *r)
{
    return r->failures > 0;
}
