/* bench/hist — a log-bucketed latency histogram for the load generators.
 * Recording is one array increment: no allocation, no per-op storage. Values
 * are nanoseconds; each bucket spans at most 1/64 (1.6 %) of its value, so
 * percentiles are exact to two significant digits. Histograms merge, so each
 * connection or thread can keep its own and the report adds them up. */
#ifndef COHORT_BENCH_HIST_H
#define COHORT_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
/* Values below 2^(HIST_EXP_MAX + 1) ns (2.4 hours) get their own bucket;
 * larger ones land in the last bucket. Row 0 holds the values below
 * HIST_SUB_COUNT exactly; row r >= 1 holds those whose top bit is bit
 * r + HIST_SUB_BITS - 1, so the rows run to HIST_EXP_MAX - HIST_SUB_BITS + 1.
 */
#define HIST_EXP_MAX 42
#define HIST_ROW_COUNT (HIST_EXP_MAX - HIST_SUB_BITS + 2)
#define HIST_BUCKET_COUNT (HIST_ROW_COUNT * HIST_SUB_COUNT)

struct hist {
    uint64_t counts[HIST_BUCKET_COUNT];
    uint64_t count;
    uint64_t max_ns;
    uint64_t min_ns;
    double sum_ns;
};

void hist_init(struct hist *hist);
void hist_record(struct hist *hist, uint64_t value_ns);
/* Add every sample of from into into. */
void hist_merge(struct hist *into, const struct hist *from);
/* The smallest recorded value v such that at least fraction (0..1] of the
 * samples are <= v, reported as the upper edge of its bucket (never above
 * the true maximum). 0 when the histogram is empty. */
uint64_t hist_quantile(const struct hist *hist, double fraction);
double hist_mean(const struct hist *hist);

#endif
