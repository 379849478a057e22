/* metrics — what the RESP server counts per command for the metrics
 * endpoint (server/exporter): how many ended in each outcome, and a latency
 * histogram, from the moment a command is dispatched to the moment its
 * reply is complete (for a write: committed on a majority and applied; for
 * a forwarded command: the primary's answer relayed).
 *
 * The outcome is read from the reply's first bytes: a reply that is not an
 * error is "ok"; an error's code word names the outcome ("-TRYAGAIN ..." is
 * tryagain), and code words without an outcome of their own count as
 * "err". Recording is a few additions into fixed arrays: no allocation,
 * and one clock read at each end (uv_hrtime, a vDSO call).
 *
 * Pure: no clock here (the caller passes the latency), unit-tested in
 * tests/unit/server_metrics_test.c. */
#ifndef COHORT_SERVER_METRICS_H
#define COHORT_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/loghist.h"

enum metrics_outcome {
    METRICS_OK = 0,
    METRICS_ERR,      /* -ERR and any code word not below */
    METRICS_TRYAGAIN, /* certainly not applied: view change, busy, moved */
    METRICS_UNKNOWN,  /* proposed, outcome unknown */
    METRICS_OOM,      /* over maxmemory */
    METRICS_NOAUTH,   /* authentication required or failed */
    METRICS_NOPERM,   /* not allowed by the user's ACL */
    METRICS_REMOVED,  /* this member was removed from the group */
    METRICS_OUTCOMES,
};

/* The outcome's label: "ok", "err", "tryagain", "unknown", "oom",
 * "noauth", "noperm", "removed". */
const char *metrics_outcome_name(enum metrics_outcome outcome);
/* The outcome of a reply (RESP2 or RESP3 bytes). */
enum metrics_outcome metrics_outcome_of(const char *reply, size_t size);

/* Commands of the command table (server/command.c) that get their own
 * counters; the table is checked against it at compile time. */
#define METRICS_COMMANDS_MAX 96u

struct metrics_command {
    uint64_t outcomes[METRICS_OUTCOMES];
    struct loghist latency_us;
};

struct server_metrics {
    struct metrics_command commands[METRICS_COMMANDS_MAX];
    uint64_t unknown_commands; /* names not in the table */
};

/* Command `command` (its index in the command table) ended with this reply
 * after latency_ns. */
void metrics_command_done(struct server_metrics *m, uint32_t command,
                          const char *reply, size_t size, uint64_t latency_ns);

#endif
