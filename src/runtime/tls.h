/* tls — TLS with OpenSSL over memory BIOs, for connections whose bytes
 * someone else moves (a libuv stream): this module does no I/O.
 *
 * The caller feeds what it read from the socket in (tls_feed), drives the
 * handshake (tls_handshake), reads and writes plaintext (tls_read,
 * tls_write), and sends whatever tls_output_take() hands it, in order.
 * Used by the peer transport (mutual TLS between replicas) and meant for
 * client TLS as well:
 *
 *     struct tls_files f = {.cert_file = ..., .key_file = ...,
 *                           .ca_file = ..., .verify_peer = true};
 *     struct tls_context *ctx = tls_context_open(&f, TLS_SERVER, &err);
 *     struct tls_session *s = tls_session_new(ctx);   // per connection
 *     on read:  tls_feed(s, bytes, n); then tls_handshake() until it returns
 *               1, then tls_read() until it returns 0;
 *     to send:  tls_write(s, plain, n);
 *     always:   move tls_output_take() bytes to the socket.
 *
 * A context is one SSL_CTX: this process's certificate chain and key, the
 * CA certificates that peers must chain to, and whether a peer certificate
 * is demanded (a server asks for a client certificate only then; a client
 * always verifies the server's). Host names are not checked: the caller
 * decides who a verified peer is, from its certificate's URI names
 * (tls_session_peer_uri). A context can be freed while sessions made from
 * it live (they hold a reference), so reloading certificates is opening a
 * new context for new connections. TLS 1.2 at least; no session tickets.
 *
 * Errors are one line each, naming the file or what the peer got wrong
 * ("certificate verify failed: unable to get local issuer certificate").
 */
#ifndef COHORT_TLS_H
#define COHORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum tls_role { TLS_CLIENT, TLS_SERVER };

struct tls_files {
    const char *cert_file; /* PEM: our certificate, then its chain (a
                              client may have none: NULL) */
    const char *key_file;  /* PEM: its private key (NULL with cert_file) */
    const char *ca_file;   /* PEM: CAs a peer's certificate must chain to;
                              NULL: none (then verify_peer must be false) */
    bool verify_peer;      /* demand and verify the peer's certificate */
};

struct tls_context;
struct tls_session;

/* Load the files and build a context; NULL with err naming the file and
 * the fix (-COHORT_ECONFIG) on failure. */
struct tls_context *tls_context_open(const struct tls_files *files,
                                     enum tls_role role,
                                     struct cohort_err *err);
void tls_context_free(struct tls_context *ctx);
/* The first URI subject-alternative name of our own certificate that
 * starts with prefix, into out (capacity size); false if there is none. */
bool tls_context_uri(const struct tls_context *ctx, const char *prefix,
                     char *out, size_t size);

/* A new connection's state, as the context's role; NULL if out of
 * memory. */
struct tls_session *tls_session_new(struct tls_context *ctx);
void tls_session_free(struct tls_session *s);

/* Bytes read from the socket. Returns 0, or -COHORT_ENOMEM. */
int tls_feed(struct tls_session *s, const uint8_t *data, size_t size);
/* Advance the handshake with what was fed: 1 once it is complete (the
 * peer's certificate verified, if asked for), 0 while it needs more input,
 * or -COHORT_EPROTO with err saying why it failed. */
int tls_handshake(struct tls_session *s, struct cohort_err *err);
/* Plaintext received: returns the bytes put in out (at most cap), 0 when
 * no more is available now, or -COHORT_EPROTO (a bad record, or the peer
 * closed the session) with err saying why. */
long tls_read(struct tls_session *s, uint8_t *out, size_t cap,
              struct cohort_err *err);
/* Encrypt all of data (size > 0) into the output. Returns 0, or
 * -COHORT_EPROTO with err. Only after the handshake. */
int tls_write(struct tls_session *s, const uint8_t *data, size_t size,
              struct cohort_err *err);
/* Encrypted bytes waiting to go to the socket, and taking them (up to
 * cap; returns how many). */
size_t tls_output_size(const struct tls_session *s);
size_t tls_output_take(struct tls_session *s, uint8_t *out, size_t cap);
/* The first URI subject-alternative name of the peer's verified
 * certificate that starts with prefix; false if none (or no
 * certificate). */
bool tls_session_peer_uri(const struct tls_session *s, const char *prefix,
                          char *out, size_t size);

#endif
