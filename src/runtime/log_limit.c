/* log_limit — see log_limit.h. */
#include "runtime/log_limit.h"

void log_limit_init(struct log_limit *l, uint64_t window_ms, uint32_t burst)
{
    *l = (struct log_limit){.window_ms = window_ms, .burst = burst};
}

bool log_limit_allow(struct log_limit *l, uint64_t now_ms, uint64_t *suppressed)
{
    if (now_ms < l->window_start_ms ||
        now_ms - l->window_start_ms >= l->window_ms) {
        l->window_start_ms = now_ms;
        l->in_window = 0;
    }
    if (l->in_window >= l->burst) {
        l->suppressed++;
        return false;
    }
    l->in_window++;
    *suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}
