/* client/conn — one blocking RESP connection of the client library to one
 * member, with every wait bounded by a deadline (monotonic ms): a connect,
 * sending a command, reading one reply. The socket is non-blocking and
 * waits happen in poll(), so a frozen member costs at most the deadline.
 *
 * Invariants: (1) fd < 0 exactly when closed, and then have == 0; (2) after
 * client_conn_recv() returns 0, nodes[0, node_count) borrow buf[0,
 * consumed) until client_conn_consume(); (3) any failure closes the
 * connection, so a late reply to an abandoned attempt is never read as the
 * answer to a later one. */
#ifndef COHORT_CLIENT_CONN_H
#define COHORT_CLIENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/resp.h"

/* The largest reply accepted (a reply above it is a protocol error). */
#define CLIENT_REPLY_SIZE_MAX (512u * 1024u * 1024u)

struct client_conn {
    int fd;
    uint32_t member;
    bool readonly; /* READONLY was sent on it */
    char *buf;
    size_t cap, have, consumed;
    struct resp_node *nodes;
    uint32_t node_cap, node_count;
};

/* Monotonic milliseconds. */
uint64_t client_now_ms(void);

void client_conn_init(struct client_conn *c);
/* Free the buffers and close. */
void client_conn_deinit(struct client_conn *c);
void client_conn_close(struct client_conn *c);
/* Connect to addr ("host:port") by deadline_ms. -COHORT_EIO with err. */
int client_conn_open(struct client_conn *c, const char *addr,
                     uint64_t deadline_ms, struct cohort_err *err);
/* Write all of data by deadline_ms. -COHORT_EIO with err (and closed) if
 * any byte was left unsent. */
int client_conn_send(struct client_conn *c, const char *data, size_t size,
                     uint64_t deadline_ms, struct cohort_err *err);
/* Read one reply by deadline_ms into nodes[0, node_count). -COHORT_EIO
 * (closed, timed out), -COHORT_EPROTO (not RESP) or -COHORT_ENOMEM, with
 * err and the connection closed. */
int client_conn_recv(struct client_conn *c, uint64_t deadline_ms,
                     struct cohort_err *err);
/* Drop the bytes of the reply read last. */
void client_conn_consume(struct client_conn *c);

#endif
