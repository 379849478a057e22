/* logline — the process's log lines. See logline.h. */
#include "runtime/logline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"

static struct {
    char source[32];
    bool quiet;
} state = {"cohort", false};

void logline_setup(const char *source, bool quiet)
{
    snprintf(state.source, sizeof(state.source), "%s", source);
    state.quiet = quiet;
}

static const char *level_name(enum logline_level level)
{
    switch (level) {
    case LOGLINE_INFO:
        return "INFO";
    case LOGLINE_WARN:
        return "WARN";
    case LOGLINE_ERROR:
        return "ERROR";
    }
    return "?";
}

size_t logline_format(char *out, size_t size, long long real_ms,
                      enum logline_level level, const char *source,
                      const char *message)
{
    ASSERT(size >= 64);
    time_t s = (time_t)(real_ms / 1000);
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    int n = snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(real_ms % 1000),
                     level_name(level), source, message);
    ASSERT(n >= 0);
    size_t len = (size_t)n < size ? (size_t)n : size - 1;
    for (size_t i = 0; i < len; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
    return len;
}

void logline_v(enum logline_level level, const char *fmt, va_list ap)
{
    if (state.quiet && level != LOGLINE_ERROR)
        return;
    char message[LOGLINE_SIZE_MAX];
    vsnprintf(message, sizeof(message), fmt, ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long real_ms =
        (long long)ts.tv_sec * 1000 + (long long)(ts.tv_nsec / 1000000);
    char line[LOGLINE_SIZE_MAX];
    size_t len = logline_format(line, sizeof(line) - 1, real_ms, level,
                                state.source, message);
    line[len++] = '\n';
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(STDERR_FILENO, line + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report it */
        done += (size_t)w;
    }
}

void logline(enum logline_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logline_v(level, fmt, ap);
    va_end(ap);
}
