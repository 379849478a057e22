/* prom — Prometheus text format. See prom.h. */
#include "runtime/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"

#define PROM_LINE_MAX 512

static void put(struct resp_buf *out, const char *text)
{
    resp_write_raw(out, text, strlen(text));
}

void prom_family(struct resp_buf *out, const char *name, const char *type,
                 const char *help)
{
    char line[PROM_LINE_MAX];
    snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help,
             name, type);
    put(out, line);
}

static void sample(struct resp_buf *out, const char *name, const char *labels,
                   const char *value)
{
    char line[PROM_LINE_MAX];
    bool has = labels && labels[0];
    snprintf(line, sizeof(line), "%s%s%s%s %s\n", name, has ? "{" : "",
             has ? labels : "", has ? "}" : "", value);
    put(out, line);
}

void prom_u64(struct resp_buf *out, const char *name, const char *labels,
              uint64_t value)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, value);
    sample(out, name, labels, text);
}

static void format_double(double value, char *text, size_t size)
{
    if (isnan(value))
        snprintf(text, size, "NaN");
    else if (isinf(value))
        snprintf(text, size, value > 0 ? "+Inf" : "-Inf");
    else
        snprintf(text, size, "%.9g", value);
}

void prom_double(struct resp_buf *out, const char *name, const char *labels,
                 double value)
{
    char text[40];
    format_double(value, text, sizeof(text));
    sample(out, name, labels, text);
}

void prom_label(char *labels, size_t size, const char *name, const char *value)
{
    size_t used = strnlen(labels, size);
    ASSERT(used < size);
    int n =
        snprintf(labels + used, size - used, "%s%s=\"", used ? "," : "", name);
    if (n < 0 || (size_t)n >= size - used) {
        labels[used] = '\0';
        return;
    }
    used += (size_t)n;
    /* Leave room for the closing quote and the NUL. */
    for (const char *p = value; *p && used + 3 < size; p++) {
        char c = *p;
        if (c == '\\' || c == '"' || c == '\n') {
            labels[used++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        labels[used++] = c;
    }
    labels[used++] = '"';
    labels[used] = '\0';
}

void prom_histogram(struct resp_buf *out, const char *name, const char *labels,
                    const struct loghist *h, uint32_t k_first, uint32_t k_last,
                    double scale)
{
    ASSERT(k_first <= k_last);
    ASSERT(k_last < LOGHIST_BUCKETS);
    char metric[128], set[PROM_LABELS_MAX + 32], le[40];
    snprintf(metric, sizeof(metric), "%s_bucket", name);
    uint64_t seen = loghist_count_at_most(h, k_first);
    for (uint32_t k = k_first; k <= k_last; k++) {
        if (k > k_first)
            seen += h->buckets[k];
        format_double(ldexp(1.0, (int)k) * scale, le, sizeof(le));
        snprintf(set, sizeof(set), "%s", labels ? labels : "");
        prom_label(set, sizeof(set), "le", le);
        prom_u64(out, metric, set, seen);
    }
    snprintf(set, sizeof(set), "%s", labels ? labels : "");
    prom_label(set, sizeof(set), "le", "+Inf");
    prom_u64(out, metric, set, h->count);
    snprintf(metric, sizeof(metric), "%s_sum", name);
    prom_double(out, metric, labels, (double)h->sum * scale);
    snprintf(metric, sizeof(metric), "%s_count", name);
    prom_u64(out, metric, labels, h->count);
}
