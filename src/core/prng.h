/* prng — a small deterministic pseudo-random generator (xoshiro256**, seeded
 * through splitmix64). The core and the simulator draw every random choice
 * from one of these, so a run is reproduced exactly by its seed. */
#ifndef COHORT_PRNG_H
#define COHORT_PRNG_H

#include <stdbool.h>
#include <stdint.h>

struct prng {
    uint64_t s[4];
};

void prng_init(struct prng *p, uint64_t seed);
uint64_t prng_next(struct prng *p);
/* Uniform in [0, bound); bound > 0. */
uint64_t prng_below(struct prng *p, uint64_t bound);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t prng_range(struct prng *p, uint64_t lo, uint64_t hi);
/* True with probability ppm / 1,000,000. */
bool prng_chance(struct prng *p, uint32_t ppm);

#endif
