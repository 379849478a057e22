/* message — the peer messages of the protocol and their wire encoding.
 *
 * Every message is a fixed 80-byte header followed by entry_count log entries
 * (each an entry header and its body, see entry.h). message_decode() checks
 * everything a peer could get wrong without knowing the receiver's state
 * (bounds, types, replica index, magic, each field against its type's
 * rules, entry checksums, op continuity and the hash chain) so that the core
 * only ever sees well-formed messages; the core then checks what depends on
 * its state (its own index, epoch, view distance, message size; see
 * docs/PROTOCOL.md, "Message validation").
 *
 * Header layout, little-endian (peer protocol 3: 64-bit views):
 *     0  u8  type            enum message_type
 *     1  u8  from            sender's replica index
 *     2  u8  status          NEW-STATE, RECOVERY-RESPONSE: sender's enum
 *                            replica_status (1..3)
 *     3  u8  flags           enum message_flags
 *     4  u32 epoch
 *     8  u64 view            0..VIEW_MAX
 *    16  u64 last_normal_view <= view
 *    24  u64 op              0..ENTRY_OP_MAX
 *    32  u64 commit          <= op, where both are used
 *    40  u64 view_op
 *    48  u64 checksum
 *    56  u64 base_op         0..ENTRY_OP_MAX
 *    64  u64 nonce
 *    72  u32 entry_count
 *    76  u32 magic           MESSAGE_MAGIC (a version check as well)
 *
 * Per type (entries always start at base_op+1 and the first entry's parent
 * is `checksum`); every field a type does not use must be zero:
 *   PREPARE            primary's op, commit, view_op, checksum at base_op;
 *                      entries; base_op + entry_count <= op, view_op <= op
 *   PREPARE_OK         op durable and matching; checksum of entry at op
 *   COMMIT             op, commit, view_op <= op; checksum of the entry at
 *                      commit
 *   START_VIEW_CHANGE  view (>= 1) = the view the sender votes to move to;
 *                      flags RESIGNED
 *   DO_VIEW_CHANGE     sender's op, commit, last_normal_view; entries after
 *                      base_op = commit up to op (base_op + count == op);
 *                      checksum at base_op; flags RESIGNED
 *   START_VIEW         primary's op, commit, view_op <= op; entries after
 *                      base_op up to op (base_op + count == op)
 *   GET_STATE          base_op (entries wanted from base_op+1) >= commit,
 *                      the sender's checksum at base_op, nonce, flags
 *                      CATCH_UP
 *   NEW_STATE          responder's status, op, commit, view_op (any value:
 *                      only a primary's counts), flags SNAPSHOT; entries
 *                      after base_op, base_op + entry_count <= op
 *   RECOVERY           nonce, flags SPARE
 *   RECOVERY_RESPONSE  nonce, sender's status, flags INTACT|FRESH, op,
 *                      commit, last_normal_view
 *   PING               primary's view, nonce = read round (see "Read index"
 *                      in docs/PROTOCOL.md); nothing touches the disk
 *   PONG               backup's view (NORMAL, equal to the PING's), nonce
 *                      echoed
 *   START_EPOCH        epoch e+1 (>= 1), view 0; op = E, the op of the
 *                      committed RECONFIG entry that ends epoch e; checksum
 *                      of entry E (nonzero); nonce = membership_pack() of
 *                      epoch e+1 (see "Epochs" in docs/PROTOCOL.md)
 *   EPOCH_STARTED      epoch e+1, view 0, op = E: the answer to START_EPOCH
 *   NEW_EPOCH          as START_EPOCH: the answer to a message of an older
 *                      epoch
 * Every type carries view and epoch.
 */
#ifndef COHORT_MESSAGE_H
#define COHORT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/entry.h"

#define MESSAGE_HEADER_SIZE 80
#define MESSAGE_MAGIC 0x32434f43u /* "COC2": 64-bit views */
/* NEW-STATE's view_op from a replica that does not know it. */
#define MESSAGE_VIEW_OP_UNKNOWN UINT64_MAX

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
    MSG_START_EPOCH = 13,
    MSG_EPOCH_STARTED = 14,
    MSG_NEW_EPOCH = 15,
    MSG_TYPE_MAX = 15,
};

enum message_flags {
    MSG_FLAG_INTACT = 1,   /* RECOVERY_RESPONSE: sender's log is undamaged */
    MSG_FLAG_FRESH = 2,    /* RECOVERY_RESPONSE: sender never stored anything */
    MSG_FLAG_SNAPSHOT = 4, /* NEW_STATE: what was asked is compacted; a
                              snapshot is on its way instead */
    MSG_FLAG_CATCH_UP = 8, /* GET_STATE: committed entries only, for a
                              member fetching the log through the start of
                              its epoch; any replica serves it, recovering
                              or removed ones too */
    MSG_FLAG_SPARE = 16,   /* RECOVERY: the sender is a spare outside the
                              membership and asks to be added as a
                              learner */
    MSG_FLAG_RESIGNED = 32, /* START_VIEW_CHANGE, DO_VIEW_CHANGE: the sender
                               left its view because that view's primary
                               resigned (a leadership transfer); a report
                               only, no rule depends on it */
};

struct message {
    uint8_t type;
    uint8_t from;
    uint8_t status;
    uint8_t flags;
    uint32_t epoch;
    uint64_t view;
    uint64_t last_normal_view;
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

/* Decode and validate untrusted bytes (see the header comment for what is
 * checked). replica_count bounds `from`. On success fills m (its entries
 * borrow from data) and returns true. */
bool message_decode(const uint8_t *data, size_t size, uint32_t replica_count,
                    struct message *m);

/* The sender a message's header names (its `from` field), read without
 * decoding the rest: false if data is too short to hold a header. The
 * runtime checks it against the replica its connection authenticated before
 * the message goes further (driver_frame()). */
bool message_sender(const uint8_t *data, size_t size, uint32_t *from);

/* Iterate over a decoded message's entries: start with *offset = 0; each
 * call fills e (body borrowed from the message) and returns false at the end.
 */
bool message_entry_next(const struct message *m, size_t *offset,
                        struct entry *e);

const char *message_type_name(uint8_t type);

#endif
