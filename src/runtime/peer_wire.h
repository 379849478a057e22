/* peer_wire — the bytes of a replica-to-replica connection, apart from any
 * socket: the handshake each side sends first, and the header in front of
 * every frame. Pure functions over buffers (no I/O, no allocation), so the
 * decoding of untrusted peer bytes can be fuzzed on its own
 * (tests/fuzz/transport_fuzz.c); transport.c does the I/O around them.
 *
 *     handshake, 40 bytes, little-endian      frame
 *      0 u32 magic "COHP"                      0 u32 payload size
 *      4 u32 peer protocol version (2)         4 u32 CRC-32C of the payload
 *      8 u64 cluster id                        8 payload (one message)
 *     16 u32 replica id of the sender
 *     20 u32 replica count
 *     24 16 bytes: the sender's token, or zeros (transport.h says when)
 *
 * Invariants: (1) peer_wire_handshake_check() accepts a handshake only if
 * magic, version, cluster id and replica count equal ours and the id is a
 * valid replica other than us (and the one we dialed, if we dialed);
 * (2) peer_wire_frame_next() reads only the avail bytes it is given, and
 * hands out a payload only whole, at most frame_size_max bytes, and with a
 * matching CRC. */
#ifndef COHORT_PEER_WIRE_H
#define COHORT_PEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define TRANSPORT_MAGIC 0x50484f43u /* "COHP" */
#define TRANSPORT_VERSION 3u        /* 3: peer messages with 64-bit views */
#define TRANSPORT_TOKEN_SIZE 16u
#define PEER_WIRE_HANDSHAKE_SIZE (24u + TRANSPORT_TOKEN_SIZE)
#define PEER_WIRE_FRAME_HEADER_SIZE 8u
#define PEER_WIRE_NONE UINT32_MAX /* no replica: refused, or any */

/* Who we are, as the handshake says it. */
struct peer_wire_self {
    uint64_t cluster_id;
    uint32_t self;
    uint32_t replica_count;
    const uint8_t *token; /* TRANSPORT_TOKEN_SIZE bytes; NULL: zeros */
};

void peer_wire_handshake_encode(const struct peer_wire_self *me,
                                uint8_t out[PEER_WIRE_HANDSHAKE_SIZE]);

/* Check the PEER_WIRE_HANDSHAKE_SIZE bytes at in, sent by the peer `who`
 * (its address, for the message). expected is the replica we dialed, or
 * PEER_WIRE_NONE for a connection we accepted. Returns the peer's replica
 * id, or PEER_WIRE_NONE with one line in why (why_size bytes) that names
 * the peer, what is wrong and the likely fix. The token (the last
 * TRANSPORT_TOKEN_SIZE bytes) is not checked here: any value is valid. */
uint32_t peer_wire_handshake_check(const struct peer_wire_self *me,
                                   const uint8_t *in, uint32_t expected,
                                   const char *who, char *why, size_t why_size);

enum peer_wire_frame_result {
    PEER_WIRE_FRAME_MORE = 1, /* incomplete: need more bytes */
    PEER_WIRE_FRAME_OK,       /* a whole frame whose CRC matched */
    PEER_WIRE_FRAME_BAD,      /* over the size limit, or a CRC mismatch */
};

struct peer_wire_frame {
    const uint8_t *payload; /* OK: points into the buffer */
    uint32_t size;          /* OK: payload bytes */
    size_t need; /* OK: bytes the frame took; MORE: bytes it will take */
};

/* Look at the frame that starts at buf, of which avail bytes are here.
 * MORE: out->need (> avail) is the size of the whole frame, or of the
 * header while the header is incomplete. BAD: why says what is wrong
 * (without naming the peer); the connection must be closed. */
enum peer_wire_frame_result
peer_wire_frame_next(const uint8_t *buf, size_t avail, uint32_t frame_size_max,
                     struct peer_wire_frame *out, char *why, size_t why_size);

/* The header for a frame carrying size bytes of payload. */
void peer_wire_frame_header(const uint8_t *payload, uint32_t size,
                            uint8_t out[PEER_WIRE_FRAME_HEADER_SIZE]);

#endif
