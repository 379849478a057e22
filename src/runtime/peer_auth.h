/* peer_auth — how the replicas of a group prove who they are to each other:
 * the configured mode and its keys, shared by every peer connection of a
 * transport (runtime/peer_link runs the handshake of one connection).
 *
 * Modes:
 *   PEER_AUTH_SECRET  a cluster secret (--cluster-secret-file, at least 16
 *                     bytes) that every replica holds: a challenge-response
 *                     handshake proves knowledge of it, bound to both
 *                     replica ids and fresh nonces, and every frame carries
 *                     an HMAC-SHA-256 tag (cut to 16 bytes) over a
 *                     per-connection key and sequence number.
 *   PEER_AUTH_TLS     mutual TLS: each replica's certificate (chained to
 *                     the configured CA) names it with the URI
 *                     subject-alternative name
 *                     cohort://<cluster id, 16 hex digits>/replica/<id>.
 *   PEER_AUTH_NONE    neither: peers are trusted by address, so every
 *                     address in --peers must be a loopback one, and only
 *                     loopback connections are accepted.
 *
 * Also here: this process's token (transport.h), drawn at open, and the
 * HMAC-SHA-256 the link uses. Owns OpenSSL objects; runtime only.
 */
#ifndef COHORT_PEER_AUTH_H
#define COHORT_PEER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "common/err.h"
#include "runtime/tls.h"

#define PEER_AUTH_TOKEN_SIZE 16u
#define PEER_AUTH_SECRET_MIN 16u
#define PEER_AUTH_SECRET_MAX 4096u
#define PEER_AUTH_HASH_SIZE 32u /* SHA-256 */
/* Room for "cohort://<16 hex>/replica/<id>". */
#define PEER_AUTH_URI_MAX 64u

enum peer_auth_mode {
    PEER_AUTH_NONE = 0,
    PEER_AUTH_SECRET = 1,
    PEER_AUTH_TLS = 2,
};

struct peer_auth_config {
    uint64_t cluster_id;
    uint32_t self;
    uint32_t replica_count;
    const char *secret_file;   /* NULL: no cluster secret */
    const char *tls_cert_file; /* all three, or none */
    const char *tls_key_file;
    const char *tls_ca_file;
};

struct peer_auth;

/* Load the secret or the certificates and draw the token. Returns NULL
 * with err naming the file or option and the fix (-COHORT_ECONFIG): both
 * modes configured, a TLS option missing, a secret too short, a
 * certificate that does not name this replica. warn (capacity warn_size)
 * receives one line worth a warning (a secret file others may read), or
 * "". The strings in config are not kept. */
struct peer_auth *peer_auth_open(const struct peer_auth_config *config,
                                 char *warn, size_t warn_size,
                                 struct cohort_err *err);
void peer_auth_free(struct peer_auth *a);

enum peer_auth_mode peer_auth_mode(const struct peer_auth *a);
const char *peer_auth_mode_name(enum peer_auth_mode mode);
uint64_t peer_auth_cluster(const struct peer_auth *a);
uint32_t peer_auth_self(const struct peer_auth *a);
uint32_t peer_auth_replica_count(const struct peer_auth *a);
/* One line for the start-up log saying how peers are authenticated. */
void peer_auth_describe(const struct peer_auth *a, char *out, size_t size);
void peer_auth_token(const struct peer_auth *a,
                     uint8_t out[PEER_AUTH_TOKEN_SIZE]);
/* The URI a certificate must name to be replica id of this cluster. */
void peer_auth_uri(const struct peer_auth *a, uint32_t id, char *out,
                   size_t size);
/* TLS mode: the contexts for connections we dial (client) and accept
 * (server). */
struct tls_context *peer_auth_tls(const struct peer_auth *a,
                                  enum tls_role role);

/* Whether an address is a loopback one (127.0.0.0/8, ::1, or IPv4-mapped
 * 127.x): the only peers PEER_AUTH_NONE accepts. */
bool peer_auth_loopback(const struct sockaddr *sa);

/* HMAC-SHA-256 keyed with the cluster secret over the concatenation of
 * parts (count of them, each data and size). */
struct peer_auth_part {
    const void *data;
    size_t size;
};
void peer_auth_hmac(const struct peer_auth *a,
                    const struct peer_auth_part *parts, size_t count,
                    uint8_t out[PEER_AUTH_HASH_SIZE]);

/* A frame MAC: HMAC-SHA-256 with one key, reset for every message. */
struct peer_mac;
struct peer_mac *peer_mac_new(const struct peer_auth *a,
                              const uint8_t key[PEER_AUTH_HASH_SIZE]);
void peer_mac_free(struct peer_mac *m);
/* The tag of (u64 seq, u32 size, data), its first tag_size bytes. */
void peer_mac_tag(struct peer_mac *m, uint64_t seq, const uint8_t *data,
                  uint32_t size, uint8_t *tag, size_t tag_size);

/* Constant-time comparison. */
bool peer_auth_equal(const void *a, const void *b, size_t size);
/* Fill out with random bytes (getrandom). */
int peer_auth_random(void *out, size_t size, struct cohort_err *err);

#endif
