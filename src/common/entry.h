/* entry — one log entry (one op): its 72-byte header and its body, the same
 * bytes on the wire (PREPARE, DO-VIEW-CHANGE, START-VIEW, NEW-STATE) and in
 * the write-ahead log.
 *
 * Entries form a hash chain: each header carries the checksum of the previous
 * entry (its parent). Two logs whose entries at op n have the same checksum
 * are therefore equal in every op up to n; the protocol compares logs by
 * comparing one checksum.
 *
 * Header layout, little-endian, 72 bytes (8-byte aligned, so a body that
 * follows it in a WAL record or a message starts aligned):
 *     0  u64 checksum      XXH3-64 of bytes 8..71 and the body
 *     8  u64 parent        checksum of the entry at op - 1
 *    16  u64 op            1..ENTRY_OP_MAX
 *    24  u64 client_id     0 for entries not from a client
 *    32  u64 request_no    likewise
 *    40  u64 timestamp_ms  log time stamped by the primary
 *    48  u64 view          view in which the op was first prepared
 *                          (0..VIEW_MAX)
 *    56  u32 body_size
 *    60  u32 epoch
 *    64  u16 kind          enum entry_kind
 *    66  u16 reserved      zero
 *    68  u32 reserved      zero
 *
 * (Until log format 3 and peer protocol 3 the header was 64 bytes with a
 * 32-bit view at 48; views became 64-bit so that no view number can wrap.)
 */
#ifndef COHORT_ENTRY_H
#define COHORT_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENTRY_HEADER_SIZE 72
/* The largest op an entry may carry. No group gets near 2^63 ops, and the
 * bound lets op + 1 and op + count never wrap, so a decoded header (from a
 * peer or a file) with a larger op is refused like any corrupt one. */
#define ENTRY_OP_MAX (UINT64_MAX >> 1)
/* The largest view number anything carries: an entry, a peer message, the
 * metadata, a snapshot. Views are 64-bit and view + 1 never wraps below
 * this bound; a field above it is corrupt or forged (docs/PROTOCOL.md,
 * "Message validation"). */
#define VIEW_MAX (UINT64_MAX >> 1)

enum entry_kind {
    ENTRY_CLIENT = 1,   /* a client request: body is the command */
    ENTRY_NOOP = 2,     /* orders nothing; body empty */
    ENTRY_RECONFIG = 3, /* the last entry of its epoch (the wedge): body is
                           the next epoch's membership_pack(), 8 bytes */
};

struct entry_header {
    uint64_t checksum;
    uint64_t parent;
    uint64_t op;
    uint64_t client_id;
    uint64_t request_no;
    uint64_t timestamp_ms;
    uint64_t view;
    uint32_t body_size;
    uint32_t epoch;
    uint16_t kind;
};

/* An entry as the core holds it: the header and a borrowed body pointer. */
struct entry {
    struct entry_header h;
    const uint8_t *body;
};

/* The checksum of the header (except the checksum field) and the body. */
uint64_t entry_checksum(const struct entry_header *h, const uint8_t *body);
/* Set h->checksum from h and body. */
void entry_seal(struct entry_header *h, const uint8_t *body);

/* Encode the header into ENTRY_HEADER_SIZE bytes at out. */
void entry_header_encode(const struct entry_header *h, uint8_t *out);
/* Decode ENTRY_HEADER_SIZE bytes of untrusted input. Returns false if a
 * field is out of range: op 0 or above ENTRY_OP_MAX, view above VIEW_MAX,
 * an unknown kind, a client entry without client id or request number, a
 * no-op with a client or a body, reserved bytes not zero. The checksum is
 * checked by entry_verify(), which needs the body too. */
bool entry_header_decode(const uint8_t *in, struct entry_header *h);
/* True if h->checksum matches the header and body. */
bool entry_verify(const struct entry_header *h, const uint8_t *body);

#endif
