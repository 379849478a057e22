/* prom — the Prometheus text exposition format (version 0.0.4), written
 * into a byte buffer: "# HELP" and "# TYPE" lines per metric family, then
 * one `name{label="value",...} number` line per sample.
 *
 * Pure: no sockets, no clock. Label values are escaped as the format asks
 * (backslash, double quote, newline); names and label names are the
 * caller's constants. Histograms come from runtime/loghist: bucket k holds
 * the values at most 2^k of the recorded unit, exported as `le` = 2^k times
 * a scale (1e-6 turns microseconds into seconds), cumulative, then "+Inf",
 * _sum and _count, as the format requires. */
#ifndef COHORT_PROM_H
#define COHORT_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"
#include "runtime/loghist.h"

/* Room for a formatted label set such as `command="set",outcome="ok"`. */
#define PROM_LABELS_MAX 256

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(struct resp_buf *out, const char *name, const char *type,
                 const char *help);
/* One sample. labels: a formatted label set without braces, or NULL/"". */
void prom_u64(struct resp_buf *out, const char *name, const char *labels,
              uint64_t value);
void prom_double(struct resp_buf *out, const char *name, const char *labels,
                 double value);
/* A histogram's samples: name_bucket for le = 2^k * scale, k from k_first
 * to k_last (bucket k_first also counts everything below it), then
 * le="+Inf", name_sum (sum * scale) and name_count. */
void prom_histogram(struct resp_buf *out, const char *name, const char *labels,
                    const struct loghist *h, uint32_t k_first, uint32_t k_last,
                    double scale);
/* Append `name="value"` (escaped; a comma first when labels is not empty)
 * to the label set in labels (capacity size); a value that does not fit is
 * cut. */
void prom_label(char *labels, size_t size, const char *name, const char *value);

#endif
