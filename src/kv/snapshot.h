/* snapshot — the store as a byte stream: written for a checkpoint or a state
 * transfer, and restored on recovery or by a new member.
 *
 * The stream is deterministic: the same state gives the same bytes on every
 * replica, whatever its table layout or hash seed, because records are
 * written in key order (bytewise, a prefix before its extensions). Two
 * replicas can therefore compare snapshots by checksum.
 *
 * Formats: 1 plain; 2 adds the users section (written once the users have
 * changed); 3 (1 with expiries) and 4 (2 with expiries) add expire_at_ms to
 * every record, written only while some key has an expiry, so a store
 * without expiries still writes what older versions read. Formats 5 to 8
 * are 1 to 4 with the sessions section (kv/session.h), written only while
 * a session exists. Formats 9 to 16 are 1 to 8 with the address table
 * (kv/address.h), written only while it has an entry. Formats 17 to 32
 * are 1 to 16 with the group's incarnation (kv/incarnation.h), written
 * only once one was applied. All 32 are read: a part is present when its
 * bit of (format - 1) is set, 1 the users, 2 the records' expiries, 4 the
 * sessions, 8 the address table, 16 the incarnation. Format 32,
 * little-endian:
 *   header, 40 bytes
 *     0  u32  magic      "CKVS"
 *     4  u16  format     KV_SNAPSHOT_FORMAT
 *     6  u16  reserved   zero
 *     8  u64  op         the last op applied (kv->op)
 *    16  u64  key_count
 *    24  u64  data_size  sum of key and value sizes
 *    32  u32  reserved   zero
 *    36  u32  crc        CRC-32C of bytes 0..35
 *   key_count records, in strictly increasing key order
 *     0  u32  key_size
 *     4  u32  value_size
 *     8  u64  version
 *    16  u64  create_op
 *    24  u64  mod_op
 *    32  u64  expire_at_ms  log time the key expires, 0 none (bit 2 only)
 *    40       key, then value (at 32 without bit 2)
 *        u32  crc        CRC-32C of the record's bytes before it
 *   the users (bit 1 only)
 *     0  u32  magic      "CKVA"
 *     4  u32  size
 *     8       acl_encode() of kv->acl, size bytes
 *        u32  crc        CRC-32C of the section's bytes before it
 *   the sessions (bit 4 only)
 *     0  u32  magic      "CKSS"
 *     4  u32  size
 *     8       kv_sessions_encode() of kv->sessions, size bytes
 *        u32  crc        CRC-32C of the section's bytes before it
 *   the address table (bit 8 only)
 *     0  u32  magic      "CKAD"
 *     4  u32  size       at most KV_ADDRESSES_ENCODED_MAX
 *     8       kv_addresses_encode() of kv->addresses, size bytes
 *        u32  crc        CRC-32C of the section's bytes before it
 *   the incarnation (bit 16 only)
 *     0  u32  magic      "CKIN"
 *     4  u32  size       8
 *     8  u64  incarnation, nonzero
 *        u32  crc        CRC-32C of the section's bytes before it
 *   trailer, 16 bytes
 *     0  u32  magic      "CKVE"
 *     4  u64  state_hash kv_state_hash() of the state
 *    12  u32  crc        CRC-32C of the whole stream before this field
 *
 * The stream ends after its trailer, so it can be embedded in a larger file
 * (restore reads exactly the stream and no more).
 */
#ifndef COHORT_KV_SNAPSHOT_H
#define COHORT_KV_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kv/kv.h"

#define KV_SNAPSHOT_FORMAT 32
#define KV_SNAPSHOT_HEADER_SIZE 40
#define KV_SNAPSHOT_RECORD_META_SIZE 32
#define KV_SNAPSHOT_TRAILER_SIZE 16

/* Stream kv through write(ctx, data, size), which returns 0 or a negative
 * COHORT_E* code. Records go in key order, walked from the ordered index.
 * Returns 0, the writer's error, or -COHORT_ENOMEM (a copy of the users);
 * err says which. Changes nothing in kv. */
int kv_snapshot_write(const struct kv *kv,
                      int (*write)(void *ctx, const void *data, size_t size),
                      void *ctx, struct cohort_err *err);

/* The same stream, written in slices while the store keeps changing: the
 * records are the store's as of kv_snapshot_begin(), whatever is applied
 * between the slices. begin writes the header (and encodes the users,
 * sessions and addresses, which follow the records); each
 * kv_snapshot_step() writes about budget more bytes of records, and the
 * last one the rest, setting *done. Until then every change to a key not
 * yet written first keeps a copy of its record as of the start (kv.c calls
 * the kv_snapshot_note_* hooks below), so the slices cost the loop their
 * budget and the store a copy of each key changed meanwhile, never a
 * stall for the whole store (issue 16). The last step checks that the
 * records written are the store's at the start (count and digest sum) and
 * fails with -COHORT_ECORRUPT if not. A failed step (the writer's error,
 * -COHORT_ENOMEM) also ends it (*done). One at a time per store. A FLUSHALL
 * or a restore hands the store's records to the walk, which goes on
 * through them at its pace and frees them at its end
 * (kv_snapshot_take_records): the store's memory is given back then, not
 * at the flush, and nothing is written at once. */
int kv_snapshot_begin(struct kv *kv,
                      int (*write)(void *ctx, const void *data, size_t size),
                      void *ctx, struct cohort_err *err);
int kv_snapshot_step(struct kv *kv, size_t budget, bool *done,
                     struct cohort_err *err);
/* Drop a snapshot being written (the writer's output is left as it is). */
void kv_snapshot_abort(struct kv *kv);

/* For kv.c, while a snapshot is written in slices: before r changes or is
 * deleted; before a key is created. */
void kv_snapshot_note_change(struct kv *kv, const struct kv_record *r);
void kv_snapshot_note_create(struct kv *kv, const uint8_t *key,
                             size_t key_size);
/* For kv.c, before every key goes (FLUSHALL, a restore): true if the walk
 * took kv->index and the records in it (kv->index is then empty, and the
 * caller must empty the hash table without freeing them); false if no walk
 * needs them (the caller frees them). */
bool kv_snapshot_take_records(struct kv *kv);

/* Replace the contents of kv (keeping its config) with the snapshot read
 * through read(ctx, data, size, &got), which returns 0 with *got bytes read
 * (fewer than size only at the end of the input) or a negative COHORT_E*
 * code. Everything is checked: magic, format, every checksum, sizes against
 * kv's limits, record metadata, key order, the state hash. On any failure
 * returns -COHORT_ECORRUPT (bad or truncated input), -COHORT_ENOTSUP (a
 * format this version does not read), -COHORT_ENOMEM or the reader's code,
 * with err naming the byte offset and what is wrong, and leaves kv empty
 * (op 0), never half loaded. */
int kv_restore(struct kv *kv,
               int (*read)(void *ctx, void *data, size_t size, size_t *got),
               void *ctx, struct cohort_err *err);
/* How kv_restore() sizes the table: the header's key count is the
 * sender's word until the records bear it out, and a header alone must not
 * make a replica allocate and clear a table for 2^30 keys. So the count is
 * trusted in stages: up front, for at most KV_RESTORE_RESERVE_KEYS keys (a
 * table of 2 MiB); then, whenever the table is full after n records, for
 * min(count, KV_RESTORE_TRUST_FACTOR * n) keys (or doubled, if that is
 * less). An honest stream of 10M keys resizes the table three times
 * (2^16 keys, 16 * 98304, then the count) instead of eight by doubling.
 * The bound: once n records are in, the table has no more slots than
 * kv_reserve() gives for max(KV_RESTORE_RESERVE_KEYS,
 * KV_RESTORE_TRUST_FACTOR * (n - 1)) keys, fewer than 8/3 of that; at 16
 * bytes a slot, about 43 slots and 683 bytes per record read, which took
 * at least 36 bytes of the stream: a lying header makes the table at most
 * about 19 times the bytes its records took, beyond the first 2 MiB. */
#define KV_RESTORE_RESERVE_KEYS (1u << 16)
#define KV_RESTORE_TRUST_FACTOR 16u

#endif
