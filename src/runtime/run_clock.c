/* run_clock — the replica's protocol clock. See run_clock.h. */
#include "runtime/run_clock.h"

#include "common/assert.h"

void run_clock_init(struct run_clock *c, uint64_t raw_ms, uint64_t step_max_ms)
{
    ASSERT(step_max_ms >= 1);
    c->raw_ms = raw_ms;
    c->now_ms = raw_ms;
    c->step_max_ms = step_max_ms;
    c->stalled_ms = 0;
    c->stalls = 0;
}

uint64_t run_clock_read(struct run_clock *c, uint64_t raw_ms)
{
    if (raw_ms <= c->raw_ms)
        return c->now_ms;
    uint64_t step = raw_ms - c->raw_ms;
    if (step > c->step_max_ms) {
        c->stalled_ms += step - c->step_max_ms;
        c->stalls++;
        step = c->step_max_ms;
    }
    c->raw_ms = raw_ms;
    c->now_ms += step;
    return c->now_ms;
}
