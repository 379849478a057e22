/* loghist — power-of-two histograms. See loghist.h. */
#include "runtime/loghist.h"

#include <string.h>

#include "common/assert.h"

void loghist_init(struct loghist *h)
{
    memset(h, 0, sizeof(*h));
}

uint32_t loghist_bucket(uint64_t v)
{
    if (v <= 1)
        return 0;
    /* v - 1 has its top bit at position e: 2^e <= v - 1 < 2^(e+1), so
     * 2^e < v <= 2^(e+1), bucket e + 1. */
    return 64u - (uint32_t)__builtin_clzll(v - 1);
}

void loghist_record(struct loghist *h, uint64_t v)
{
    uint32_t k = loghist_bucket(v);
    DEBUG_ASSERT(k < LOGHIST_BUCKETS);
    h->buckets[k]++;
    h->count++;
    h->sum += v;
}

uint64_t loghist_count_at_most(const struct loghist *h, uint32_t k)
{
    ASSERT(k < LOGHIST_BUCKETS);
    uint64_t n = 0;
    for (uint32_t i = 0; i <= k; i++)
        n += h->buckets[i];
    return n;
}
