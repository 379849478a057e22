/* err — error codes (the table in include/cohort.h) and a one-line error
 * message that I/O-facing code fills and callers add context to:
 *
 *     err_sys(err, errno, "write %s at %llu", path, off);
 *     err_wrap(err, "append op %llu", op);
 *
 * reads "append op 912: write data/wal/000042 at 4096: No space left on
 * device". The message is bounded; a longer one is cut, never overflowed. */
#ifndef COHORT_ERR_H
#define COHORT_ERR_H

#include "cohort.h"

#define COHORT_ERR_MESSAGE_MAX 512

struct cohort_err {
    int code; /* negative COHORT_E* code, 0 when no error */
    char message[COHORT_ERR_MESSAGE_MAX];
};

void err_clear(struct cohort_err *err);
/* Set the error: code (negative) and a message. Returns code. err may be
 * NULL, then only the code is returned. */
int err_set(struct cohort_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set from an errno value: message is "<fmt>: strerror(errnum)"; the code is
 * mapped from errnum (ENOSPC -> -COHORT_ENOSPC, otherwise -COHORT_EIO). */
int err_sys(struct cohort_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* err_sys() for a call on a file or directory (open, mkdir, list...): a
 * permission, not-a-directory, is-a-directory or read-only error also says
 * what to do ("...: Permission denied: give the user running cohort access
 * to it (chown or chmod)"). */
int err_file(struct cohort_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the current message with context: "<fmt>: <old message>". Returns
 * the current code. */
int err_wrap(struct cohort_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
