/* message — the peer messages of the protocol and their wire encoding.
 *
 * Every message is a fixed 72-byte header followed by entry_count log entries
 * (each a 64-byte entry header and its body, see entry.h). Fields a type does
 * not use are zero. message_decode() checks everything a peer could get wrong
 * (bounds, types, replica index, entry checksums, op continuity and the hash
 * chain) so that the core only ever sees well-formed messages.
 *
 * Header layout, little-endian:
 *     0  u8  type            enum message_type
 *     1  u8  from            sender's replica index
 *     2  u8  status          RECOVERY-RESPONSE: sender's enum replica_status
 *     3  u8  flags           enum message_flags
 *     4  u32 view
 *     8  u32 epoch
 *    12  u32 last_normal_view
 *    16  u64 op
 *    24  u64 commit
 *    32  u64 view_op
 *    40  u64 checksum
 *    48  u64 base_op
 *    56  u64 nonce
 *    64  u32 entry_count
 *    68  u32 magic           MESSAGE_MAGIC (a version check as well)
 *
 * Per type (op, commit, checksum, base_op; entries always start at base_op+1
 * and the first entry's parent is `checksum`):
 *   PREPARE            primary's op, commit, checksum at base_op; entries
 *   PREPARE_OK         op durable and matching; checksum of entry at op
 *   COMMIT             op = commit; checksum of the entry at commit
 *   START_VIEW_CHANGE  view = the view the sender votes to move to
 *   DO_VIEW_CHANGE     sender's op, commit, last_normal_view; entries after
 *                      base_op (= sender's commit), checksum at base_op
 *   START_VIEW         primary's op, commit, view_op; entries after base_op
 *   GET_STATE          base_op (entries wanted from base_op+1), the
 *                      sender's checksum at base_op, commit, nonce
 *   NEW_STATE          responder's status, op, commit, view_op; entries
 *                      after base_op
 *   RECOVERY           nonce
 *   RECOVERY_RESPONSE  nonce, sender's status, op, commit, last_normal_view
 *   PING               primary's view, nonce = read round (see "Read index"
 *                      in docs/PROTOCOL.md); nothing touches the disk
 *   PONG               backup's view (NORMAL, equal to the PING's), nonce
 *                      echoed
 */
#ifndef COHORT_MESSAGE_H
#define COHORT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/entry.h"

#define MESSAGE_HEADER_SIZE 72
#define MESSAGE_MAGIC 0x31434f43u /* "COC1": cohort protocol version 1 */

enum message_type {
    MSG_PREPARE = 1,
    MSG_PREPARE_OK = 2,
    MSG_COMMIT = 3,
    MSG_START_VIEW_CHANGE = 4,
    MSG_DO_VIEW_CHANGE = 5,
    MSG_START_VIEW = 6,
    MSG_GET_STATE = 7,
    MSG_NEW_STATE = 8,
    MSG_RECOVERY = 9,
    MSG_RECOVERY_RESPONSE = 10,
    MSG_PING = 11,
    MSG_PONG = 12,
    MSG_TYPE_MAX = 12,
};

enum message_flags {
    MSG_FLAG_INTACT = 1,   /* RECOVERY_RESPONSE: sender's log is undamaged */
    MSG_FLAG_FRESH = 2,    /* RECOVERY_RESPONSE: sender never stored anything */
    MSG_FLAG_SNAPSHOT = 4, /* NEW_STATE: what was asked is compacted; a
                              snapshot is on its way instead */
};

struct message {
    uint8_t type;
    uint8_t from;
    uint8_t status;
    uint8_t flags;
    uint32_t view;
    uint32_t epoch;
    uint32_t last_normal_view;
    uint64_t op;
    uint64_t commit;
    uint64_t view_op;
    uint64_t checksum;
    uint64_t base_op;
    uint64_t nonce;
    uint32_t entry_count;
    /* Encoded entries; after message_decode() they point into the decoded
     * buffer and have been verified. */
    const uint8_t *entries;
    size_t entries_size;
};

/* Bytes needed for a message with these entries. */
size_t message_size(uint32_t entry_count, size_t bodies_size);

/* Encode m's header (with m->entry_count entries to follow) and then each of
 * entries[0..m->entry_count) into out (capacity size). Returns the encoded
 * size, or 0 if it does not fit. The entries must continue from base_op. */
size_t message_encode(const struct message *m, const struct entry *entries,
                      uint8_t *out, size_t size);

/* Decode and validate untrusted bytes. replica_count bounds `from`. On
 * success fills m (its entries borrow from data) and returns true. */
bool message_decode(const uint8_t *data, size_t size, uint32_t replica_count,
                    struct message *m);

/* Iterate over a decoded message's entries: start with *offset = 0; each
 * call fills e (body borrowed from the message) and returns false at the end.
 */
bool message_entry_next(const struct message *m, size_t *offset,
                        struct entry *e);

const char *message_type_name(uint8_t type);

#endif
