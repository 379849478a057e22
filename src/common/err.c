/* err — error codes, names and one-line messages. See err.h. */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

const char *cohort_assert_context;

void cohort_assert_fail(const char *expr, const char *file, int line)
{
    /* tidy: allow printing: an assertion's report is its last words. */
    fprintf(stderr, "cohort: assertion failed: %s at %s:%d%s%s\n", expr, file,
            line, cohort_assert_context ? " " : "",
            cohort_assert_context ? cohort_assert_context : "");
    fflush(stderr);
    abort();
}

const char *cohort_strerror(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case 0:
        return "success";
#define COHORT_ERROR_TEXT(name, value, text)                                   \
    case value:                                                                \
        return text;
        COHORT_ERRORS(COHORT_ERROR_TEXT)
#undef COHORT_ERROR_TEXT
    default:
        return "unknown error";
    }
}

const char *cohort_err_name(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case 0:
        return "OK";
#define COHORT_ERROR_NAME(name, value, text)                                   \
    case value:                                                                \
        return #name;
        COHORT_ERRORS(COHORT_ERROR_NAME)
#undef COHORT_ERROR_NAME
    default:
        return "EUNKNOWN";
    }
}

const char *cohort_version(void)
{
    return COHORT_VERSION;
}

void err_clear(struct cohort_err *err)
{
    if (!err)
        return;
    err->code = 0;
    err->message[0] = '\0';
}

__attribute__((format(printf, 2, 0))) static void
err_vformat(struct cohort_err *err, const char *fmt, va_list ap)
{
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
}

int err_set(struct cohort_err *err, int code, const char *fmt, ...)
{
    ASSERT(code < 0);
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    err_vformat(err, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

__attribute__((format(printf, 4, 0))) static int
err_vsys(struct cohort_err *err, int errnum, const char *hint, const char *fmt,
         va_list ap)
{
    int code = errnum == ENOSPC ? -COHORT_ENOSPC : -COHORT_EIO;
    if (!err)
        return code;
    char head[COHORT_ERR_MESSAGE_MAX];
    vsnprintf(head, sizeof(head), fmt, ap);
    /* Precisions keep the sum inside the buffer: the message is cut, never
     * overflowed, and the compiler can see that. */
    snprintf(err->message, sizeof(err->message), "%.*s: %.90s%.110s",
             hint[0] ? 300 : 400, head, strerror(errnum), hint);
    err->code = code;
    return code;
}

int err_sys(struct cohort_err *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = err_vsys(err, errnum, "", fmt, ap);
    va_end(ap);
    return code;
}

/* What a user does about a call on a path that failed with errnum; "" when
 * it is not theirs to fix. */
static const char *file_hint(int errnum)
{
    switch (errnum) {
    case EACCES:
    case EPERM:
        return ": give the user running cohort access to it (chown or chmod)";
    case ENOTDIR:
        return ": a part of the path is a file; pass a directory";
    case EISDIR:
        return ": pass the path of a file";
    case EROFS:
        return ": pass a path on a writable file system";
    default:
        return "";
    }
}

int err_file(struct cohort_err *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = err_vsys(err, errnum, file_hint(errnum), fmt, ap);
    va_end(ap);
    return code;
}

int err_wrap(struct cohort_err *err, const char *fmt, ...)
{
    if (!err)
        return -COHORT_EIO;
    char head[COHORT_ERR_MESSAGE_MAX];
    char old[COHORT_ERR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof(old));
    snprintf(err->message, sizeof(err->message), "%.160s: %.340s", head, old);
    return err->code;
}
