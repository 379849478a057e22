/* logline — the process's log lines: one format for every line a cohort
 * process writes to stderr about its own life (the replica, its transport,
 * storage and RESP server, and `cohort up`):
 *
 *     2025-06-01T09:30:12.345Z WARN r1 cannot reach replica 2 at ...
 *
 * an ISO-8601 UTC timestamp with milliseconds, a level (INFO, WARN, ERROR),
 * the source (rN for replica N, or the command, e.g. "up"), the message.
 *
 * Invariants: (1) a line is written with one write(2) of at most
 * LOGLINE_SIZE_MAX bytes, so lines from several threads (the loop, the
 * storage thread) or processes sharing a terminal never interleave inside a
 * line; (2) a message never spans lines: a newline in it becomes a space;
 * (3) ERROR lines are written even when quiet.
 *
 * The source is process-wide state, set once by logline_setup() before any
 * thread starts. The protocol core never logs: it has its trace callback,
 * and the runtime logs what its actions mean (e.g. a view change's cause). */
#ifndef COHORT_LOGLINE_H
#define COHORT_LOGLINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define LOGLINE_SIZE_MAX 1024

enum logline_level {
    LOGLINE_INFO = 0,
    LOGLINE_WARN = 1,
    LOGLINE_ERROR = 2,
};

/* Name the source of this process's lines ("r1", "up"; copied) and whether
 * INFO and WARN lines are dropped. Call before any thread starts. */
void logline_setup(const char *source, bool quiet);

/* Write one line. */
__attribute__((format(printf, 2, 3))) void logline(enum logline_level level,
                                                   const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void
logline_v(enum logline_level level, const char *fmt, va_list ap);

/* Format one line into out (capacity size), without the trailing newline:
 * the timestamp of wall-clock time real_ms (ms since 1970), level, source.
 * Returns the line's length. For tests and for logline_v(). */
size_t logline_format(char *out, size_t size, long long real_ms,
                      enum logline_level level, const char *source,
                      const char *message);

#endif
