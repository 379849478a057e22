/* bench/hist — see hist.h. Bucket index: values below 2^HIST_SUB_BITS map to
 * themselves; a larger value with its top bit at position e maps to row
 * e - HIST_SUB_BITS + 1 and, within the row, to its next HIST_SUB_BITS bits. */
#include "bench/hist.h"

#include <assert.h>
#include <string.h>

/* The row of the largest value with its own bucket, HIST_EXP_MAX, is the
 * last row of the array. */
static_assert((HIST_EXP_MAX - HIST_SUB_BITS + 1) * HIST_SUB_COUNT +
                      HIST_SUB_COUNT - 1 ==
                  HIST_BUCKET_COUNT - 1,
              "bucket_of() stays inside counts[]");

static uint32_t bucket_of(uint64_t value)
{
    if (value < HIST_SUB_COUNT)
        return (uint32_t)value;
    uint32_t top = 63u - (uint32_t)__builtin_clzll(value);
    if (top > HIST_EXP_MAX)
        return HIST_BUCKET_COUNT - 1;
    uint32_t shift = top - HIST_SUB_BITS;
    uint32_t row = shift + 1;
    uint32_t sub = (uint32_t)(value >> shift) & (HIST_SUB_COUNT - 1);
    return row * HIST_SUB_COUNT + sub;
}

/* The largest value that maps to bucket index. */
static uint64_t bucket_upper(uint32_t index)
{
    uint32_t row = index / HIST_SUB_COUNT;
    uint32_t sub = index % HIST_SUB_COUNT;
    if (row == 0)
        return sub;
    uint32_t shift = row - 1;
    uint64_t base = ((uint64_t)HIST_SUB_COUNT | sub) << shift;
    return base + ((uint64_t)1 << shift) - 1;
}

void hist_init(struct hist *hist)
{
    memset(hist, 0, sizeof(*hist));
    hist->min_ns = UINT64_MAX;
}

void hist_record(struct hist *hist, uint64_t value_ns)
{
    hist->counts[bucket_of(value_ns)]++;
    hist->count++;
    hist->sum_ns += (double)value_ns;
    if (value_ns > hist->max_ns)
        hist->max_ns = value_ns;
    if (value_ns < hist->min_ns)
        hist->min_ns = value_ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (uint32_t i = 0; i < HIST_BUCKET_COUNT; i++)
        into->counts[i] += from->counts[i];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    if (from->min_ns < into->min_ns)
        into->min_ns = from->min_ns;
}

uint64_t hist_quantile(const struct hist *hist, double fraction)
{
    if (hist->count == 0)
        return 0;
    if (fraction >= 1.0)
        return hist->max_ns;
    uint64_t rank = (uint64_t)(fraction * (double)hist->count);
    if ((double)rank < fraction * (double)hist->count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKET_COUNT; i++) {
        seen += hist->counts[i];
        if (seen >= rank) {
            uint64_t upper = bucket_upper(i);
            return upper < hist->max_ns ? upper : hist->max_ns;
        }
    }
    return hist->max_ns;
}

double hist_mean(const struct hist *hist)
{
    return hist->count ? hist->sum_ns / (double)hist->count : 0.0;
}
