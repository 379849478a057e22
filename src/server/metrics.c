/* metrics — per-command counters. See metrics.h. */
#include "server/metrics.h"

#include <stdbool.h>
#include <string.h>

#include "common/assert.h"

const char *metrics_outcome_name(enum metrics_outcome outcome)
{
    switch (outcome) {
    case METRICS_OK:
        return "ok";
    case METRICS_ERR:
        return "err";
    case METRICS_TRYAGAIN:
        return "tryagain";
    case METRICS_UNKNOWN:
        return "unknown";
    case METRICS_OOM:
        return "oom";
    case METRICS_NOAUTH:
        return "noauth";
    case METRICS_NOPERM:
        return "noperm";
    case METRICS_REMOVED:
        return "removed";
    case METRICS_OUTCOMES:
        break;
    }
    return "err";
}

/* Whether the error text starts with the code word (then a space or its
 * end). */
static bool code_is(const char *text, size_t size, const char *word)
{
    size_t n = strlen(word);
    return size >= n && memcmp(text, word, n) == 0 &&
           (size == n || text[n] == ' ' || text[n] == '\r');
}

enum metrics_outcome metrics_outcome_of(const char *reply, size_t size)
{
    if (size == 0 || reply == NULL)
        return METRICS_ERR; /* every command answers something */
    const char *text = reply + 1;
    size_t rest = size - 1;
    if (reply[0] == '!') {
        /* RESP3 blob error: "!<length>\r\n<text>\r\n". */
        const char *nl = memchr(reply, '\n', size);
        if (nl == NULL)
            return METRICS_ERR;
        text = nl + 1;
        rest = size - (size_t)(text - reply);
    } else if (reply[0] != '-') {
        return METRICS_OK;
    }
    static const struct {
        const char *word;
        enum metrics_outcome outcome;
    } codes[] = {
        {"TRYAGAIN", METRICS_TRYAGAIN}, {"UNKNOWN", METRICS_UNKNOWN},
        {"OOM", METRICS_OOM},           {"NOAUTH", METRICS_NOAUTH},
        {"WRONGPASS", METRICS_NOAUTH},  {"NOPERM", METRICS_NOPERM},
        {"LOADING", METRICS_TRYAGAIN},  {"MOVED", METRICS_TRYAGAIN},
        {"REMOVED", METRICS_REMOVED},
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (code_is(text, rest, codes[i].word))
            return codes[i].outcome;
    return METRICS_ERR;
}

void metrics_command_done(struct server_metrics *m, uint32_t command,
                          const char *reply, size_t size, uint64_t latency_ns)
{
    ASSERT(command < METRICS_COMMANDS_MAX);
    struct metrics_command *c = &m->commands[command];
    c->outcomes[metrics_outcome_of(reply, size)]++;
    loghist_record(&c->latency_us, latency_ns / 1000u);
}
