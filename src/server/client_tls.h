/* client_tls — TLS (OpenSSL) over memory BIOs, for the clients' TLS port.
 *
 * A session never touches a socket: its owner moves ciphertext between the
 * socket and the session (client_tls_session_feed() what arrived, send what
 * client_tls_session_output() holds) and plaintext between the session and its
 * own buffers (client_tls_session_read(), client_tls_session_write()). So a
 * session serves a libuv stream of the RESP server's TLS port
 * (src/server/tls_port.c) with no threads and no blocking: the handshake
 * advances inside client_tls_session_read() as ciphertext arrives, and its
 * replies wait in the output like any other bytes.
 *
 * A context holds the certificate, key and CA of one side; loading a new one
 * (a certificate reload) leaves the sessions of the old one working: each
 * session keeps its context alive until it is freed.
 *
 * Threads: a context may be shared by sessions of one thread; a session
 * belongs to one thread. The OpenSSL error queue is cleared before every
 * call, so errors never leak from one session into another.
 */
#ifndef COHORT_SERVER_CLIENT_TLS_H
#define COHORT_SERVER_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Ciphertext read from a socket at a time. */
#define CLIENT_TLS_READ_SIZE 16384u

enum client_tls_role {
    CLIENT_TLS_ROLE_SERVER,
    CLIENT_TLS_ROLE_CLIENT,
};

/* Whether to ask for and check the peer's certificate (against ca_file). */
enum client_tls_verify {
    CLIENT_TLS_VERIFY_NONE,     /* no client certificate asked for */
    CLIENT_TLS_VERIFY_OPTIONAL, /* asked for; checked if one is given */
    CLIENT_TLS_VERIFY_REQUIRED, /* asked for, required and checked */
};

struct client_tls_config {
    enum client_tls_role role;
    const char *cert_file; /* PEM chain; a server needs one */
    const char *key_file;  /* PEM private key of cert_file */
    const char *ca_file;   /* PEM CAs the peer's certificate must chain to */
    enum client_tls_verify verify;
    /* The option names to quote in errors ("--tls-cert-file"). */
    const char *cert_flag, *key_flag, *ca_flag;
};

struct client_tls_context;
struct client_tls_session;

enum client_tls_result {
    CLIENT_TLS_OK,     /* bytes were read */
    CLIENT_TLS_WANT,   /* nothing yet: feed more ciphertext */
    CLIENT_TLS_CLOSED, /* the peer closed the session (close_notify) */
    CLIENT_TLS_ERROR,  /* a failed handshake or bad record:
                          client_tls_session_error() */
};

/* Load certificates and keys (TLS 1.2 and later). On failure returns NULL
 * and err names the file, the option that set it and OpenSSL's reason. */
struct client_tls_context *
client_tls_context_load(const struct client_tls_config *config,
                        struct cohort_err *err);
/* Drop the caller's reference; sessions keep theirs. NULL is fine. */
void client_tls_context_free(struct client_tls_context *ctx);

/* A new session of ctx (NULL if out of memory). */
struct client_tls_session *
client_tls_session_new(struct client_tls_context *ctx);
void client_tls_session_free(struct client_tls_session *t);
/* Client side: the name to send (SNI) and to check the server's
 * certificate against when verifying. Returns false if out of memory. */
bool client_tls_session_set_host(struct client_tls_session *t,
                                 const char *host);

/* Ciphertext from the peer, queued for client_tls_session_read(). Returns false
 * if out of memory. */
bool client_tls_session_feed(struct client_tls_session *t, const void *data,
                             size_t size);
/* Up to size (> 0) bytes of plaintext, advancing the handshake first. */
enum client_tls_result client_tls_session_read(struct client_tls_session *t,
                                               void *buf, size_t size,
                                               size_t *got);
/* Queue plaintext; before the handshake ends it waits in the session.
 * Returns false on an error (client_tls_session_error()) or out of memory. */
bool client_tls_session_write(struct client_tls_session *t, const void *data,
                              size_t size);
/* Ciphertext for the peer, and taking it all out. */
size_t client_tls_session_output(struct client_tls_session *t,
                                 const char **data);
void client_tls_session_output_clear(struct client_tls_session *t);
/* Queue a close_notify (send the output, then close). */
void client_tls_session_close(struct client_tls_session *t);

bool client_tls_session_established(const struct client_tls_session *t);
/* Why the last call failed, in one line. */
const char *client_tls_session_error(const struct client_tls_session *t);
/* The verified peer certificate's subject common name; false if none. */
bool client_tls_session_peer_name(const struct client_tls_session *t, char *out,
                                  size_t size);

#endif
