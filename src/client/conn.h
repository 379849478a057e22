/* client/conn — one RESP connection of the client library to one member: a
 * non-blocking connect, commands queued and flushed, one reply read at a
 * time, over TCP or TLS (OpenSSL on the socket). Nothing here waits: the
 * caller polls the fd for client_conn_wants() and bounds every wait with
 * its own deadline.
 *
 * Invariants: (1) fd < 0 exactly when closed, and then have == 0 and
 * nothing is queued; (2) after client_conn_read() returns 0, nodes[0,
 * node_count) borrow buf[0, consumed) until client_conn_consume(); (3) any
 * failure closes the connection, so a late reply to an abandoned attempt is
 * never read as the answer to a later one. */
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
    bool readonly;   /* READONLY was sent on it */
    bool connecting; /* a non-blocking connect is under way */
    bool reading;    /* a reply is awaited */
    void *ssl;       /* SSL *, when the connection speaks TLS */
    bool handshaking;
    short ssl_want; /* POLLIN or POLLOUT: what TLS last waited for */
    /* The last TLS failure was the member's certificate (set on failure,
     * cleared at the next connect). */
    bool cert_rejected;
    struct resp_buf out;
    size_t out_sent;
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

/* Every call below is non-blocking: 0 done, 1 not yet (wait for the fd:
 * client_conn_wants()), or a negative code with err filled and the
 * connection closed. */

/* Split a member address, "host:port" or "[v6]:port", into host (without
 * the brackets, NUL-terminated in host_size bytes) and port, with
 * common/hostport.h's addr_split(). False unless the host is non-empty and
 * fits, an IPv6 host is in brackets and the port is decimal in 1..65535.
 * port may be NULL. */
bool client_addr_split(const char *addr, char *host, size_t host_size,
                       uint16_t *port);

/* Start connecting to addr ("host:port", see client_addr_split()). Name
 * resolution (getaddrinfo) blocks: give numeric addresses where that
 * matters. */
int client_conn_connect(struct client_conn *c, const char *addr,
                        struct cohort_err *err);
/* Whether the connect finished. */
int client_conn_connect_done(struct client_conn *c, struct cohort_err *err);
/* Start TLS on the connected socket with ctx (an SSL_CTX *), checking the
 * server certificate against host (an IP address or a DNS name). */
int client_conn_tls_start(struct client_conn *c, void *ctx, const char *host,
                          struct cohort_err *err);
/* Whether the TLS handshake finished. */
int client_conn_handshake(struct client_conn *c, struct cohort_err *err);
/* Queue a command (RESP multibulk) behind what is unsent. */
int client_conn_queue(struct client_conn *c, uint32_t argc,
                      const struct resp_arg *argv, struct cohort_err *err);
/* Send what is queued. */
int client_conn_flush(struct client_conn *c, struct cohort_err *err);
/* Whether every queued byte was handed to the kernel. */
bool client_conn_flushed(const struct client_conn *c);
/* Read until one reply is complete: nodes[0, node_count). */
int client_conn_read(struct client_conn *c, struct cohort_err *err);
/* Drop the bytes of the reply read last. */
void client_conn_consume(struct client_conn *c);
/* What the connection waits for: POLLIN or POLLOUT (0: nothing). */
short client_conn_wants(const struct client_conn *c);

#endif
