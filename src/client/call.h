/* client/call — the retry state machine of one library call: what each
 * attempt's outcome means for the write, whether to try again, and which
 * error the caller gets when the deadline passes. Pure: time comes in as
 * now_ms, nothing here touches a socket, so the blocking driver
 * (client.c) and a future poll-loop driver share it.
 *
 * Invariants: (1) maybe_applied only goes from false to true within a
 * call: once an attempt of a write may have reached a member, only a reply
 * to a later attempt settles it, and a -TRYAGAIN to a later attempt does
 * not (it speaks for that attempt only); (2) a call ends exactly once,
 * CALL_DONE with a reply or CALL_FAIL with call->error; (3) after the
 * deadline no attempt starts; (4) backoff_ms stays within
 * [CALL_BACKOFF_MIN_MS, CALL_BACKOFF_MAX_MS].
 *
 * What an outcome means (docs: README "Errors say whether a write took
 * effect"): -TRYAGAIN, -REMOVED (the member was removed from the group:
 * the next attempt goes to another) and a failure before the whole
 * command was sent say this attempt did not take effect; -UNKNOWN, a closed
 * connection or a timeout after the whole command was sent say it may have; any
 * other reply is the answer, except "-ERR client session expired", which says
 * the group forgot the client (see client_call_step). A hedge (no reply
 * within the hedge delay) says the attempt may have taken effect, and the
 * next attempt starts at once on another member while the hedged one may
 * still answer: the first answer of either is the call's (the server's
 * client table applies the request once and answers every copy with the
 * same reply, or the older copy, still in flight, with "-UNKNOWN request
 * ... was sent again while in flight"). */
#ifndef COHORT_CLIENT_CALL_H
#define COHORT_CLIENT_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"

#define CALL_BACKOFF_MIN_MS 10u
#define CALL_BACKOFF_MAX_MS 200u

enum call_event {
    /* No connection, or it failed before the whole command was written. */
    CALL_EV_NOT_SENT = 1,
    /* The whole command was written, then the connection closed, timed
     * out or sent bytes that are not RESP. */
    CALL_EV_LOST = 2,
    /* A reply arrived (the node tree of resp_reply_parse). */
    CALL_EV_REPLY = 3,
    /* The whole command was written and no reply came within the hedge
     * delay: the attempt's connection stays open for a late reply (see
     * client_call_late) while the same request is sent to another member
     * at once, without backoff. */
    CALL_EV_HEDGE = 4,
};

enum call_step {
    CALL_DONE = 1,  /* the reply is the answer */
    CALL_RETRY = 2, /* try again at retry_at_ms, on a new connection */
    CALL_RENEW = 3, /* draw a new client id, number from 1, then retry */
    CALL_FAIL = 4,  /* give up: call->error */
};

struct client_call {
    bool is_write;
    bool maybe_applied; /* some attempt may have taken effect */
    bool renewed;       /* the client id was renewed during this call */
    uint32_t attempts;  /* attempts that ended (hedged ones too) */
    uint32_t hedges;    /* attempts hedged (CALL_EV_HEDGE) */
    uint32_t backoff_ms;
    uint64_t deadline_ms; /* monotonic */
    uint64_t retry_at_ms; /* CALL_RETRY: the next attempt's time */
    int error;            /* CALL_FAIL: -COHORT_ENOTAPPLIED, ... */
};

void client_call_start(struct client_call *call, bool is_write, uint64_t now_ms,
                       uint32_t deadline_ms);
/* Whether another attempt may start at now_ms. */
bool client_call_may_attempt(const struct client_call *call, uint64_t now_ms);
/* Feed one attempt's outcome (reply: the tree, for CALL_EV_REPLY only).
 * CALL_RETRY past the deadline becomes CALL_FAIL with the error the
 * attempts so far justify. */
enum call_step client_call_step(struct client_call *call, enum call_event ev,
                                const struct resp_node *reply, uint64_t now_ms);
/* A hedged attempt's connection (CALL_EV_HEDGE) ended while a later
 * attempt runs (ev: CALL_EV_LOST or CALL_EV_REPLY with reply): CALL_DONE
 * when the reply is the answer (the later attempt is then abandoned), else
 * CALL_RETRY, which means "drop that connection, the call goes on" (a
 * -TRYAGAIN, -UNKNOWN or "session expired" speaks for that attempt only,
 * and the write stays maybe applied). Not an attempt: counts nothing. */
enum call_step client_call_late(struct client_call *call, enum call_event ev,
                                const struct resp_node *reply);
/* The deadline passed (or another reason to stop): the error for it. */
int client_call_expired_error(const struct client_call *call);

/* Whether argv[0] (and argv[1] for ACL) name a store write that COHORT.REQ
 * wraps: SET, DEL, INCR, INCRBY, DECR, DECRBY, MSET, CAS, ACL
 * SETUSER/DELUSER. Case-insensitive. */
bool client_command_is_write(uint32_t argc, const struct resp_arg *argv);

/* Whether an error reply starts with the code word (e.g. "TRYAGAIN"). */
bool client_reply_is_error_code(const struct resp_node *reply,
                                const char *code);

#endif
