/* prng — xoshiro256** seeded by splitmix64. See prng.h. */
#include "core/prng.h"

#include "common/assert.h"

__extension__ typedef unsigned __int128 u128;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void prng_init(struct prng *p, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        p->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t prng_next(struct prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t prng_below(struct prng *p, uint64_t bound)
{
    ASSERT(bound > 0);
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t x = prng_next(p);
    u128 m = (__uint128_t)x * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = -bound % bound;
        while (low < threshold) {
            x = prng_next(p);
            m = (__uint128_t)x * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

uint64_t prng_range(struct prng *p, uint64_t lo, uint64_t hi)
{
    ASSERT(lo <= hi);
    if (hi - lo == UINT64_MAX)
        return prng_next(p);
    return lo + prng_below(p, hi - lo + 1);
}

bool prng_chance(struct prng *p, uint32_t ppm)
{
    if (ppm == 0)
        return false;
    return prng_below(p, 1000000) < ppm;
}
