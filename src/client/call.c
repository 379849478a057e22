/* client/call — the retry state machine of one call. See call.h. */
#include "client/call.h"

#include <string.h>
#include <strings.h>

#include "cohort.h"
#include "common/assert.h"

#define EXPIRED_TEXT "ERR client session expired"

void client_call_start(struct client_call *call, bool is_write, uint64_t now_ms,
                       uint32_t deadline_ms)
{
    memset(call, 0, sizeof(*call));
    call->is_write = is_write;
    call->backoff_ms = CALL_BACKOFF_MIN_MS;
    call->deadline_ms = now_ms + deadline_ms;
    call->retry_at_ms = now_ms;
}

bool client_call_may_attempt(const struct client_call *call, uint64_t now_ms)
{
    return now_ms < call->deadline_ms;
}

int client_call_expired_error(const struct client_call *call)
{
    return call->is_write && call->maybe_applied ? -COHORT_EUNKNOWN
                                                 : -COHORT_ENOTAPPLIED;
}

bool client_reply_is_error_code(const struct resp_node *reply, const char *code)
{
    if (reply->type != RESP_TYPE_ERROR && reply->type != RESP_TYPE_BLOB_ERROR)
        return false;
    size_t n = strlen(code);
    if (reply->len < n || memcmp(reply->str, code, n) != 0)
        return false;
    return reply->len == n || reply->str[n] == ' ';
}

/* Certainly not applied, and worth another attempt: -TRYAGAIN (not now),
 * or -REMOVED (this member left the group: the engine closes the
 * connection, and the next attempt goes to another member). */
static bool reply_moves_on(const struct resp_node *reply)
{
    return client_reply_is_error_code(reply, "TRYAGAIN") ||
           client_reply_is_error_code(reply, "REMOVED");
}

static bool reply_is_expired(const struct resp_node *reply)
{
    size_t n = strlen(EXPIRED_TEXT);
    return reply->type == RESP_TYPE_ERROR && reply->len >= n &&
           memcmp(reply->str, EXPIRED_TEXT, n) == 0;
}

/* Schedule the next attempt, or fail when none fits before the deadline. */
static enum call_step retry(struct client_call *call, uint64_t now_ms)
{
    ASSERT(call->backoff_ms >= CALL_BACKOFF_MIN_MS);
    ASSERT(call->backoff_ms <= CALL_BACKOFF_MAX_MS);
    call->retry_at_ms = now_ms + call->backoff_ms;
    call->backoff_ms *= 2;
    if (call->backoff_ms > CALL_BACKOFF_MAX_MS)
        call->backoff_ms = CALL_BACKOFF_MAX_MS;
    if (call->retry_at_ms >= call->deadline_ms) {
        call->error = client_call_expired_error(call);
        return CALL_FAIL;
    }
    return CALL_RETRY;
}

/* A reply to a write that may have been applied before: the group forgot
 * the client, so nobody can say what happened to the earlier attempt. */
static enum call_step on_expired(struct client_call *call)
{
    if (call->maybe_applied || call->renewed) {
        call->error =
            call->maybe_applied ? -COHORT_EUNKNOWN : -COHORT_ENOTAPPLIED;
        return CALL_FAIL;
    }
    call->renewed = true;
    return CALL_RENEW;
}

enum call_step client_call_step(struct client_call *call, enum call_event ev,
                                const struct resp_node *reply, uint64_t now_ms)
{
    ASSERT(ev == CALL_EV_REPLY ? reply != NULL : reply == NULL);
    call->attempts++;
    switch (ev) {
    case CALL_EV_NOT_SENT:
        return retry(call, now_ms);
    case CALL_EV_LOST:
        call->maybe_applied = true;
        return retry(call, now_ms);
    case CALL_EV_HEDGE:
        /* Sent whole, unanswered so far: may have been applied. The next
         * attempt goes now, and the backoff is left as it is. */
        call->maybe_applied = true;
        call->hedges++;
        if (now_ms >= call->deadline_ms) {
            call->error = client_call_expired_error(call);
            return CALL_FAIL;
        }
        call->retry_at_ms = now_ms;
        return CALL_RETRY;
    case CALL_EV_REPLY:
        break;
    }
    if (reply_moves_on(reply))
        return retry(call, now_ms);
    if (client_reply_is_error_code(reply, "UNKNOWN")) {
        call->maybe_applied = true;
        return retry(call, now_ms);
    }
    if (call->is_write && reply_is_expired(reply)) {
        enum call_step s = on_expired(call);
        if (s == CALL_RENEW && now_ms >= call->deadline_ms) {
            call->error = -COHORT_ENOTAPPLIED;
            return CALL_FAIL;
        }
        return s;
    }
    return CALL_DONE;
}

enum call_step client_call_late(struct client_call *call, enum call_event ev,
                                const struct resp_node *reply)
{
    ASSERT(ev == CALL_EV_REPLY ? reply != NULL : reply == NULL);
    ASSERT(ev == CALL_EV_REPLY || ev == CALL_EV_LOST);
    if (ev == CALL_EV_LOST)
        call->maybe_applied = true;
    if (ev != CALL_EV_REPLY || reply_moves_on(reply))
        return CALL_RETRY;
    if (client_reply_is_error_code(reply, "UNKNOWN")) {
        call->maybe_applied = true;
        return CALL_RETRY;
    }
    if (call->is_write && reply_is_expired(reply))
        return CALL_RETRY;
    return CALL_DONE;
}

static bool name_is(const struct resp_arg *a, const char *name)
{
    size_t n = strlen(name);
    return a->size == n && strncasecmp(a->ptr, name, n) == 0;
}

bool client_command_is_write(uint32_t argc, const struct resp_arg *argv)
{
    /* The store's writes (kv/command.h, kv/strings.h), and PUBLISH. */
    static const char *const writes[] = {
        "SET",      "DEL",      "INCR",        "INCRBY", "DECR",  "DECRBY",
        "MSET",     "CAS",      "GETDEL",      "GETSET", "SETNX", "MSETNX",
        "APPEND",   "SETRANGE", "INCRBYFLOAT", "UNLINK", "COPY",  "RENAME",
        "RENAMENX", "FLUSHDB",  "FLUSHALL",    "PUBLISH"};
    if (argc == 0)
        return false;
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
        if (name_is(&argv[0], writes[i]))
            return true;
    return argc >= 2 && name_is(&argv[0], "ACL") &&
           (name_is(&argv[1], "SETUSER") || name_is(&argv[1], "DELUSER"));
}
