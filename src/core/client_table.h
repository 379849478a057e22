/* client_table — exactly-once requests: per client, the last request number
 * applied, the op that applied it and the reply, so a retried request is
 * answered from here instead of being applied twice.
 *
 * It is part of the replicated state: every replica changes it only while
 * applying committed ops, with the timestamps the primary stamped on them, so
 * all replicas hold the same table at the same op; it travels in snapshots
 * (client_table_encode(), sorted by client id so the bytes are canonical).
 *
 * Invariants: (1) at most capacity clients; (2) a client's request_no only
 * grows; (3) an idle client is forgotten when log time passes its last
 * request by expiry_ms, or when the table is full and it is the least
 * recently active (ties broken by the smaller client id).
 */
#ifndef COHORT_CLIENT_TABLE_H
#define COHORT_CLIENT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client_record {
    uint64_t client_id; /* 0: slot empty */
    uint64_t request_no;
    uint64_t op;
    uint64_t timestamp_ms;
    uint32_t reply_size; /* the reply's size, kept or not */
    bool reply_kept;     /* false: larger than reply_keep_max, not stored */
};

struct client_table {
    uint32_t capacity;   /* clients */
    uint32_t slot_count; /* hash slots: a power of two >= 2 * capacity */
    uint32_t count;
    uint32_t reply_keep_max; /* replies up to this size are kept */
    struct client_record *slots;
    uint8_t *replies; /* slot_count * reply_keep_max */
};

/* Replies larger than reply_keep_max are not kept (memory is slot_count *
 * reply_keep_max): a retry of such a request learns it was applied, but not
 * its reply. */
bool client_table_init(struct client_table *t, uint32_t capacity,
                       uint32_t reply_keep_max);
void client_table_deinit(struct client_table *t);
void client_table_clear(struct client_table *t);

/* The record of client_id, or NULL. Valid until the next change. */
const struct client_record *client_table_find(const struct client_table *t,
                                              uint64_t client_id);
/* The stored reply of a record (reply_kept must be true). */
const uint8_t *client_table_reply(const struct client_table *t,
                                  const struct client_record *rec);
/* Record that request_no of client_id was applied by op with this reply
 * (copied). Evicts the least recently active client if full. Returns the
 * stored record. */
const struct client_record *
client_table_record(struct client_table *t, uint64_t client_id,
                    uint64_t request_no, uint64_t op, uint64_t timestamp_ms,
                    const uint8_t *reply, uint32_t reply_size);
/* Forget every client whose last request is older than now_ms - expiry_ms
 * (log time). Returns how many were forgotten. */
uint32_t client_table_expire(struct client_table *t, uint64_t now_ms,
                             uint64_t expiry_ms);

/* Bytes needed to encode a full table. */
size_t client_table_encoded_size_max(const struct client_table *t);
/* Encode canonically (sorted by client id). Returns the size written. */
size_t client_table_encode(const struct client_table *t, uint8_t *out,
                           size_t size);
/* Replace the table with decoded bytes (untrusted). Returns false, leaving
 * the table empty, if the bytes are malformed or exceed the limits. */
bool client_table_decode(struct client_table *t, const uint8_t *data,
                         size_t size);

#endif
