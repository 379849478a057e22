/* client_table — open addressing with linear probing and backward-shift
 * deletion, so lookups stay short without tombstones. See client_table.h. */
#include "core/client_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"

#define CLIENT_TABLE_MAGIC 0x31544c43u /* "CLT1" */
#define RECORD_ENCODED_SIZE (8 + 8 + 8 + 8 + 4 + 1)

bool client_table_init(struct client_table *t, uint32_t capacity,
                       uint32_t reply_keep_max)
{
    ASSERT(capacity > 0);
    memset(t, 0, sizeof(*t));
    uint32_t slots = 4;
    while (slots < capacity * 2u)
        slots *= 2;
    t->capacity = capacity;
    t->slot_count = slots;
    t->reply_keep_max = reply_keep_max;
    t->slots = calloc(slots, sizeof(*t->slots));
    t->replies = malloc((size_t)slots * (reply_keep_max ? reply_keep_max : 1));
    if (!t->slots || !t->replies) {
        client_table_deinit(t);
        return false;
    }
    return true;
}

void client_table_deinit(struct client_table *t)
{
    free(t->slots);
    free(t->replies);
    t->slots = NULL;
    t->replies = NULL;
}

void client_table_clear(struct client_table *t)
{
    memset(t->slots, 0, (size_t)t->slot_count * sizeof(*t->slots));
    t->count = 0;
}

static uint32_t home_slot(const struct client_table *t, uint64_t client_id)
{
    uint64_t h = client_id * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & (t->slot_count - 1);
}

static uint32_t find_slot(const struct client_table *t, uint64_t client_id)
{
    uint32_t mask = t->slot_count - 1;
    uint32_t i = home_slot(t, client_id);
    for (uint32_t probes = 0; probes < t->slot_count; probes++) {
        if (t->slots[i].client_id == client_id || t->slots[i].client_id == 0)
            return i;
        i = (i + 1) & mask;
    }
    UNREACHABLE(); /* the table is never more than half full */
}

const struct client_record *client_table_find(const struct client_table *t,
                                              uint64_t client_id)
{
    ASSERT(client_id != 0);
    uint32_t i = find_slot(t, client_id);
    return t->slots[i].client_id ? &t->slots[i] : NULL;
}

const uint8_t *client_table_reply(const struct client_table *t,
                                  const struct client_record *rec)
{
    size_t index = (size_t)(rec - t->slots);
    ASSERT(index < t->slot_count);
    ASSERT(rec->reply_kept);
    return t->replies + index * t->reply_keep_max;
}

static void move_slot(struct client_table *t, uint32_t to, uint32_t from)
{
    t->slots[to] = t->slots[from];
    if (t->slots[from].reply_kept)
        memcpy(t->replies + (size_t)to * t->reply_keep_max,
               t->replies + (size_t)from * t->reply_keep_max,
               t->slots[from].reply_size);
}

/* Remove the record in slot i, shifting later members of its probe run back
 * so that every record stays reachable from its home slot. */
static void remove_slot(struct client_table *t, uint32_t i)
{
    uint32_t mask = t->slot_count - 1;
    ASSERT(t->slots[i].client_id != 0);
    t->slots[i].client_id = 0;
    t->count--;
    uint32_t hole = i;
    uint32_t j = (i + 1) & mask;
    while (t->slots[j].client_id != 0) {
        uint32_t home = home_slot(t, t->slots[j].client_id);
        /* j may move to hole if its home is not in (hole, j] cyclically. */
        bool stays =
            hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            move_slot(t, hole, j);
            t->slots[j].client_id = 0;
            hole = j;
        }
        j = (j + 1) & mask;
    }
}

static uint32_t least_recent_slot(const struct client_table *t)
{
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < t->slot_count; i++) {
        const struct client_record *r = &t->slots[i];
        if (r->client_id == 0)
            continue;
        if (best == UINT32_MAX)
            best = i;
        const struct client_record *b = &t->slots[best];
        if (r->timestamp_ms < b->timestamp_ms ||
            (r->timestamp_ms == b->timestamp_ms && r->client_id < b->client_id))
            best = i;
    }
    ASSERT(best != UINT32_MAX);
    return best;
}

const struct client_record *
client_table_record(struct client_table *t, uint64_t client_id,
                    uint64_t request_no, uint64_t op, uint64_t timestamp_ms,
                    const uint8_t *reply, uint32_t reply_size)
{
    ASSERT(client_id != 0);
    uint32_t i = find_slot(t, client_id);
    if (t->slots[i].client_id == 0) {
        if (t->count == t->capacity) {
            remove_slot(t, least_recent_slot(t));
            i = find_slot(t, client_id);
        }
        t->count++;
    } else {
        ASSERT(request_no > t->slots[i].request_no);
    }
    struct client_record *rec = &t->slots[i];
    rec->client_id = client_id;
    rec->request_no = request_no;
    rec->op = op;
    rec->timestamp_ms = timestamp_ms;
    rec->reply_size = reply_size;
    rec->reply_kept = reply != NULL && reply_size <= t->reply_keep_max;
    if (rec->reply_kept && reply_size)
        memcpy(t->replies + (size_t)i * t->reply_keep_max, reply, reply_size);
    ASSERT(t->count <= t->capacity);
    return rec;
}

uint32_t client_table_expire(struct client_table *t, uint64_t now_ms,
                             uint64_t expiry_ms)
{
    if (now_ms < expiry_ms)
        return 0;
    uint64_t cutoff = now_ms - expiry_ms;
    uint32_t forgotten = 0;
    uint32_t i = 0;
    while (i < t->slot_count) {
        const struct client_record *r = &t->slots[i];
        if (r->client_id != 0 && r->timestamp_ms < cutoff) {
            /* Backward shift may move a later record into slot i: look at
             * slot i again. */
            remove_slot(t, i);
            forgotten++;
            continue;
        }
        i++;
    }
    return forgotten;
}

size_t client_table_encoded_size_max(const struct client_table *t)
{
    return 8 + (size_t)t->capacity *
                   (RECORD_ENCODED_SIZE + (size_t)t->reply_keep_max);
}

size_t client_table_encode(const struct client_table *t, uint8_t *out,
                           size_t size)
{
    struct writer w = writer_make(out, size);
    writer_u32(&w, CLIENT_TABLE_MAGIC);
    writer_u32(&w, t->count);
    /* Canonical order: ascending client id, found by repeated minimum so no
     * scratch memory is needed (tables are small; snapshots are rare). */
    uint64_t last = 0;
    for (uint32_t n = 0; n < t->count; n++) {
        uint32_t next = UINT32_MAX;
        for (uint32_t i = 0; i < t->slot_count; i++) {
            uint64_t id = t->slots[i].client_id;
            if (id > last &&
                (next == UINT32_MAX || id < t->slots[next].client_id))
                next = i;
        }
        ASSERT(next != UINT32_MAX);
        const struct client_record *r = &t->slots[next];
        writer_u64(&w, r->client_id);
        writer_u64(&w, r->request_no);
        writer_u64(&w, r->op);
        writer_u64(&w, r->timestamp_ms);
        writer_u32(&w, r->reply_size);
        writer_u8(&w, r->reply_kept ? 1 : 0);
        if (r->reply_kept)
            writer_bytes(&w, client_table_reply(t, r), r->reply_size);
        last = r->client_id;
    }
    ASSERT(w.ok); /* callers size out with client_table_encoded_size_max() */
    return size - w.left;
}

bool client_table_decode(struct client_table *t, const uint8_t *data,
                         size_t size)
{
    client_table_clear(t);
    if (size == 0)
        return true; /* no snapshot: an empty table */
    struct cursor c = cursor_make(data, size);
    uint32_t magic = cursor_u32(&c);
    uint32_t count = cursor_u32(&c);
    if (!c.ok || magic != CLIENT_TABLE_MAGIC || count > t->capacity)
        return false;
    uint64_t last = 0;
    for (uint32_t n = 0; n < count; n++) {
        uint64_t id = cursor_u64(&c);
        uint64_t request_no = cursor_u64(&c);
        uint64_t op = cursor_u64(&c);
        uint64_t ts = cursor_u64(&c);
        uint32_t reply_size = cursor_u32(&c);
        uint8_t kept = cursor_u8(&c);
        const uint8_t *reply = kept ? cursor_take(&c, reply_size) : NULL;
        if (!c.ok || id <= last || kept > 1 ||
            (kept && reply_size > t->reply_keep_max)) {
            client_table_clear(t);
            return false;
        }
        client_table_record(t, id, request_no, op, ts, reply, reply_size);
        last = id;
    }
    if (c.left != 0) {
        client_table_clear(t);
        return false;
    }
    return true;
}
