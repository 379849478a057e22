/* entry — log entry header encoding and the hash chain checksum. See entry.h.
 */
#include "common/entry.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/assert.h"
#include "common/bytes.h"

static_assert(ENTRY_HEADER_SIZE == 72, "the entry header is 72 bytes");
static_assert(ENTRY_HEADER_SIZE % 8 == 0, "a body after a header is aligned");

void entry_header_encode(const struct entry_header *h, uint8_t *out)
{
    put_u64(out + 0, h->checksum);
    put_u64(out + 8, h->parent);
    put_u64(out + 16, h->op);
    put_u64(out + 24, h->client_id);
    put_u64(out + 32, h->request_no);
    put_u64(out + 40, h->timestamp_ms);
    put_u64(out + 48, h->view);
    put_u32(out + 56, h->body_size);
    put_u32(out + 60, h->epoch);
    put_u16(out + 64, h->kind);
    put_u16(out + 66, 0);
    put_u32(out + 68, 0);
}

bool entry_header_decode(const uint8_t *in, struct entry_header *h)
{
    h->checksum = get_u64(in + 0);
    h->parent = get_u64(in + 8);
    h->op = get_u64(in + 16);
    h->client_id = get_u64(in + 24);
    h->request_no = get_u64(in + 32);
    h->timestamp_ms = get_u64(in + 40);
    h->view = get_u64(in + 48);
    h->body_size = get_u32(in + 56);
    h->epoch = get_u32(in + 60);
    h->kind = get_u16(in + 64);
    if (get_u16(in + 66) != 0 || get_u32(in + 68) != 0)
        return false;
    if (h->op == 0 || h->op > ENTRY_OP_MAX || h->view > VIEW_MAX)
        return false;
    switch (h->kind) {
    case ENTRY_CLIENT: /* the client table needs both (client_table.h) */
        return h->client_id != 0 && h->request_no != 0;
    case ENTRY_NOOP:
        return h->client_id == 0 && h->request_no == 0 && h->body_size == 0;
    case ENTRY_RECONFIG:
        return h->client_id == 0 && h->request_no == 0 && h->body_size == 8 &&
               h->epoch < UINT32_MAX;
    default:
        return false;
    }
}

uint64_t entry_checksum(const struct entry_header *h, const uint8_t *body)
{
    uint8_t raw[ENTRY_HEADER_SIZE];
    entry_header_encode(h, raw);
    XXH3_state_t state;
    XXH3_INITSTATE(&state); /* see kv.c record_digest() */
    XXH3_64bits_reset(&state);
    XXH3_64bits_update(&state, raw + 8, ENTRY_HEADER_SIZE - 8);
    if (h->body_size)
        XXH3_64bits_update(&state, body, h->body_size);
    uint64_t sum = XXH3_64bits_digest(&state);
    /* 0 means "no entry" (the parent of op 1); never produce it. */
    return sum ? sum : 1;
}

void entry_seal(struct entry_header *h, const uint8_t *body)
{
    h->checksum = entry_checksum(h, body);
    ASSERT(entry_verify(h, body));
}

bool entry_verify(const struct entry_header *h, const uint8_t *body)
{
    return entry_checksum(h, body) == h->checksum;
}
