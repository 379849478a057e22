/* peer_link — one peer connection's handshake (peer protocol version 3) and
 * the protection of its frames, without I/O: the transport feeds in the
 * bytes it reads and sends the bytes it is handed, in order.
 *
 * Every replica dials every other, and frames flow only from the dialer to
 * the acceptor. The handshake, both sides at once:
 *
 *  1. HELLO, in clear, 48 bytes, little-endian: u32 magic "COHP", u32
 *     version 3, u64 cluster id, u32 replica id, u32 replica count, u32 auth
 *     mode (peer_auth.h), u32 incarnation tag, 16 random bytes (a nonce).
 *     The peer's is checked: magic, version, cluster, replica count, an id
 *     in range that is not ours (and, for a connection we dialed, the id we
 *     dialed), the same auth mode, and the same incarnation tag when both
 *     are nonzero. Each refusal is one line naming the fix. The tag is
 *     peer_link_incarnation_tag() of the group incarnation this replica's
 *     data belongs to (kv/incarnation.h), 0 while it does not know one;
 *     versions before it sent 0 there and never read it.
 *  2. In TLS mode, a TLS handshake (the dialer is the client); the peer's
 *     certificate must chain to the CA and name the id its HELLO claimed,
 *     as cohort://<cluster>/replica/<id> (peer_auth.h).
 *  3. AUTH, 48 bytes: a 32-byte proof and the 16-byte token (the sender's
 *     process token, transport.h; from the acceptor too since the address
 *     binding below, which older versions sent as zeros); inside TLS in
 *     TLS mode, else in clear. With a cluster secret the proof is
 *     HMAC-SHA-256(secret, "cohort peer proof v3" | role | HELLO of the
 *     dialer | HELLO of the acceptor | token), role 'D' or 'A' for the
 *     sender's side, and each side checks the other's: it proves knowledge
 *     of the secret, bound to both ids and both fresh nonces, so a recorded
 *     handshake cannot be replayed and a proof cannot be reflected. Without
 *     a secret the proof is zeros and ignored.
 *
 * Frames, after the handshake, one protocol message each:
 *   NONE and TLS   u32 length, u32 CRC-32C of the payload, payload (inside
 *                  TLS in TLS mode)
 *   SECRET         u32 length, 16-byte tag, payload; tag = the first 16
 *                  bytes of HMAC-SHA-256(K, u64 seq | u32 length |
 *                  payload), K = HMAC-SHA-256(secret, "cohort peer frames
 *                  v3" | HELLO of the dialer | HELLO of the acceptor), seq
 *                  counting this connection's frames from 0: a frame cannot
 *                  be altered, replayed, reordered, dropped from the middle
 *                  or moved to another connection unnoticed.
 *
 * States: HELLO -> (TLS) -> AUTH -> READY, or FAILED from any, with one
 * line saying why (peer_link_error). Invariant: a link reports READY only
 * after the peer's identity was proved as the mode demands, and
 * peer_link_peer() names that identity.
 */
#ifndef COHORT_PEER_LINK_H
#define COHORT_PEER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/peer_auth.h"

#define PEER_LINK_MAGIC 0x50484f43u /* "COHP" */
#define PEER_LINK_VERSION 3u
#define PEER_LINK_HELLO_SIZE 48u
#define PEER_LINK_AUTH_SIZE 48u
#define PEER_LINK_NONCE_SIZE 16u
#define PEER_LINK_TAG_SIZE 16u
#define PEER_LINK_HEADER_MAX (4u + PEER_LINK_TAG_SIZE)
#define PEER_LINK_NOBODY UINT32_MAX

enum peer_link_state {
    PEER_LINK_HELLO,
    PEER_LINK_TLS,
    PEER_LINK_AUTH,
    PEER_LINK_READY,
    PEER_LINK_FAILED,
};

/* A growable byte buffer (the transport's read buffer). */
struct peer_buf {
    uint8_t *data;
    size_t size;
    size_t cap;
};
/* Make room for `more` bytes after size; false when out of memory. */
bool peer_buf_reserve(struct peer_buf *b, size_t more);

struct peer_link;

/* A new link. dialed: the replica we dialed, or PEER_LINK_NOBODY for a
 * connection we accepted; who names the other end in log lines. Our HELLO
 * is in the output at once, with the tag of incarnation (0: not known).
 * NULL when out of memory or without random bytes. The auth is borrowed
 * and must outlive the link. */
struct peer_link *peer_link_new(const struct peer_auth *auth, uint32_t dialed,
                                const char *who, uint64_t incarnation);
void peer_link_free(struct peer_link *l);

enum peer_link_state peer_link_state(const struct peer_link *l);
/* After FAILED: why, one line naming the peer and the fix. */
const char *peer_link_error(const struct peer_link *l);
/* The peer's replica id once its HELLO passed (PEER_LINK_NOBODY before),
 * proved only once READY. */
uint32_t peer_link_peer(const struct peer_link *l);
/* The peer's incarnation tag once its HELLO passed (0: it knows none). */
uint32_t peer_link_peer_incarnation(const struct peer_link *l);
/* The HELLO's tag of a group incarnation: 32 bits folded from 64, never 0
 * for a nonzero incarnation; 0 for 0. */
uint32_t peer_link_incarnation_tag(uint64_t incarnation);
/* The one-line refusal for a peer of another incarnation, written to out
 * (capacity size), which is returned. */
const char *peer_link_incarnation_mismatch(const char *who, uint32_t id,
                                           uint32_t theirs, uint32_t ours,
                                           char *out, size_t size);
/* How many HELLO bytes have come in (for "it left after N bytes"). */
uint32_t peer_link_hello_received(const struct peer_link *l);
/* The token in the peer's AUTH (zeros from an acceptor of an older
 * version); READY only. */
const uint8_t *peer_link_peer_token(const struct peer_link *l);

/* Bytes read from the socket. Returns how many were consumed, or -1 when
 * the link FAILED. Before READY every byte is consumed except, on a link
 * without TLS, those after the peer's AUTH: they are frames, for the
 * caller. With TLS every byte is consumed, and plaintext that follows the
 * handshake is appended to plain (false from peer_buf_reserve fails the
 * link). */
long peer_link_input(struct peer_link *l, const uint8_t *data, size_t size,
                     struct peer_buf *plain);

/* Bytes to send, in order: HELLO, TLS records, AUTH, sealed frames. */
size_t peer_link_output_size(const struct peer_link *l);
size_t peer_link_output_take(struct peer_link *l, uint8_t *out, size_t cap);

/* Frames (READY only). The header size of this link's frames (8 or 20). */
size_t peer_link_header_size(const struct peer_link *l);
/* Seal the next frame of size bytes: writes its header into header. In TLS
 * mode the frame (header and payload) is encrypted into the output instead
 * and the caller queues peer_link_output_take() bytes; returns false if
 * that failed (the link is FAILED). Out-of-band otherwise: the caller
 * queues header then payload. */
bool peer_link_seal(struct peer_link *l, const uint8_t *payload, uint32_t size,
                    uint8_t header[PEER_LINK_HEADER_MAX]);
/* The most bytes sealing a frame of size bytes adds to the output or the
 * queue (header, and TLS records). */
size_t peer_link_sealed_size(const struct peer_link *l, size_t size);
/* Check a received frame's header against its payload (CRC or tag, the
 * next sequence number). On a mismatch returns false and fills why
 * (capacity why_size) with what was wrong. */
bool peer_link_open(struct peer_link *l, const uint8_t *header,
                    const uint8_t *payload, uint32_t size, char *why,
                    size_t why_size);

#endif
