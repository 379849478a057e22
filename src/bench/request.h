/* bench/request — the bytes of the load generator's requests and what their
 * replies mean. Pure: no sockets, clocks or allocation, so the engine can
 * build a request into a preallocated slot and the tests can check it.
 *
 * A request is a header, then for SET the value and a trailing CRLF:
 *
 *     *3\r\n$3\r\nSET\r\n$<klen>\r\nk<n>\r\n$<vsize>\r\n <value> \r\n
 *
 * so one shared value buffer serves every SET in flight (the engine sends it
 * with writev and never copies it). Keys are "k<n>" in decimal. */
#ifndef COHORT_BENCH_REQUEST_H
#define COHORT_BENCH_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/resp.h"

enum bench_op {
    BENCH_OP_SET = 0,
    BENCH_OP_GET = 1,
    BENCH_OP_READONLY = 2, /* connection setup for local reads */
    BENCH_OP_PING = 3,
    /* What EXEC commits for MULTI, INCR x 5, EXEC: one log op,
     * COHORT.EXEC 0 5 (2 INCR k<n>) ... (2 INCR k<n+4>). */
    BENCH_OP_EXEC = 4,
    /* PUBLISH k<n> <value>: the value follows, as SET's. */
    BENCH_OP_PUBLISH = 5,
};

#define BENCH_EXEC_COMMANDS 5

/* Room for the longest header: EXEC of five 20-digit keys. */
#define BENCH_HEADER_MAX 320

/* What a reply to a request says. */
enum bench_reply {
    BENCH_REPLY_OK = 0,    /* the answer the op expects */
    BENCH_REPLY_RETRY = 1, /* -TRYAGAIN, -MOVED, -UNKNOWN, -LOADING, ...:
                              this member cannot serve it now; reconnect */
    BENCH_REPLY_ERROR = 2, /* any other error reply (-ERR ...) */
    BENCH_REPLY_WRONG = 3, /* not an error, but not what the op returns */
};

/* Write the request header of op on key into out (BENCH_HEADER_MAX bytes)
 * and return its length. For SET the value of value_size bytes and "\r\n"
 * follow on the wire; the other ops are complete in the header. */
size_t bench_request_header(char *out, enum bench_op op, uint64_t key,
                            size_t value_size);

/* Whether the value and the trailing CRLF follow op's header. */
static inline bool bench_op_has_value(enum bench_op op)
{
    return op == BENCH_OP_SET || op == BENCH_OP_PUBLISH;
}

/* Classify the reply (nodes[0] of a parsed tree) to a request of op. */
enum bench_reply bench_reply_classify(enum bench_op op,
                                      const struct resp_node *reply);

#endif
