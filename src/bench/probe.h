/* bench/probe — one command on a fresh blocking connection, with a timeout,
 * for the checks around a run: is a member reachable (PING), and which
 * member is the primary and what is its process id (INFO). Not for the hot
 * path: it allocates and blocks. */
#ifndef COHORT_BENCH_PROBE_H
#define COHORT_BENCH_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "bench/bench.h"
#include "common/err.h"
#include "common/resp.h"

/* Send the command argv[0..argc) to member and read one reply. On success
 * returns 0, the reply's type in *type and its text (simple, error or bulk
 * string; empty for other types) NUL-terminated in text, cut to text_size.
 * On failure returns a negative code with err naming the member and what
 * went wrong ("127.0.0.1:7001: connect: Connection refused"). */
int probe_command(const struct bench_member *member, uint32_t argc,
                  const char *const *argv, uint32_t timeout_ms,
                  enum resp_type *type, char *text, size_t text_size,
                  struct cohort_err *err);

struct probe_primary {
    char addr[BENCH_MEMBER_TEXT_MAX]; /* client address, as INFO reports */
    uint32_t index;                   /* replica index (its --id) */
    int64_t pid;                      /* process_id from the primary */
    uint64_t view;
};

/* Ask the members (in order) for the primary with INFO replication, then
 * ask the primary itself (INFO server replication) for its process id and
 * check it agrees that it is the primary. Retries through view changes
 * until timeout_ms. Returns 0, or a negative code with err saying why. */
int probe_primary(const struct bench_member *members, uint32_t member_count,
                  uint32_t timeout_ms, struct probe_primary *out,
                  struct cohort_err *err);

#endif
