/* loghist — a fixed histogram with power-of-two buckets, for the metrics a
 * replica exports (runtime/prom): command latencies, fsync times, batch
 * sizes, snapshot durations.
 *
 * Recording is a count-leading-zeros and three additions: no allocation, no
 * clock, no lock (the owner serializes; the persister copies its histograms
 * under its own lock). Bucket k counts the values v with 2^(k-1) < v <= 2^k
 * (bucket 0: v <= 1), so "at most 2^k" is the sum of buckets 0..k, which
 * is what a Prometheus histogram's `le` bucket holds. Values are whatever
 * unit the owner picks (microseconds for durations, ops or bytes for
 * sizes); the unit is the exporter's business.
 *
 * Invariants: (1) count is the sum of the buckets; (2) sum is the sum of
 * the recorded values (it wraps only past 2^64, 584,000 years of
 * microseconds). */
#ifndef COHORT_LOGHIST_H
#define COHORT_LOGHIST_H

#include <stdint.h>

#define LOGHIST_BUCKETS 65u /* 2^0 .. 2^64 */

struct loghist {
    uint64_t buckets[LOGHIST_BUCKETS];
    uint64_t count;
    uint64_t sum;
};

void loghist_init(struct loghist *h);
/* The bucket of v: the smallest k with v <= 2^k. */
uint32_t loghist_bucket(uint64_t v);
void loghist_record(struct loghist *h, uint64_t v);
/* How many recorded values are at most 2^k (k < LOGHIST_BUCKETS). */
uint64_t loghist_count_at_most(const struct loghist *h, uint32_t k);

#endif
