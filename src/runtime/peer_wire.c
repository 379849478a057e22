/* peer_wire — handshake and frame header encoding. See peer_wire.h. */
#include "runtime/peer_wire.h"

#include <inttypes.h>
#include <stdio.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"

static_assert(PEER_WIRE_HANDSHAKE_SIZE ==
                  4 + 4 + 8 + 4 + 4 + TRANSPORT_TOKEN_SIZE,
              "handshake layout");

void peer_wire_handshake_encode(const struct peer_wire_self *me,
                                uint8_t out[PEER_WIRE_HANDSHAKE_SIZE])
{
    ASSERT(me->self < me->replica_count);
    struct writer w = writer_make(out, PEER_WIRE_HANDSHAKE_SIZE);
    writer_u32(&w, TRANSPORT_MAGIC);
    writer_u32(&w, TRANSPORT_VERSION);
    writer_u64(&w, me->cluster_id);
    writer_u32(&w, me->self);
    writer_u32(&w, me->replica_count);
    static const uint8_t zeros[TRANSPORT_TOKEN_SIZE];
    writer_bytes(&w, me->token ? me->token : zeros, TRANSPORT_TOKEN_SIZE);
    ASSERT(w.ok);
    ASSERT(w.left == 0);
}

uint32_t peer_wire_handshake_check(const struct peer_wire_self *me,
                                   const uint8_t *in, uint32_t expected,
                                   const char *who, char *why, size_t why_size)
{
    struct cursor c = cursor_make(in, PEER_WIRE_HANDSHAKE_SIZE);
    uint32_t magic = cursor_u32(&c);
    uint32_t version = cursor_u32(&c);
    uint64_t cluster = cursor_u64(&c);
    uint32_t id = cursor_u32(&c);
    uint32_t count = cursor_u32(&c);
    ASSERT(c.ok);
    if (magic != TRANSPORT_MAGIC)
        snprintf(why, why_size,
                 "peer %s did not send a cohort peer handshake (magic "
                 "0x%08" PRIx32 ", want 0x%08" PRIx32
                 "): is another program connecting to the peer port?",
                 who, magic, TRANSPORT_MAGIC);
    else if (version != TRANSPORT_VERSION)
        snprintf(why, why_size,
                 "peer %s speaks peer protocol version %" PRIu32
                 " but we speak %u: run the same cohort version on "
                 "every replica",
                 who, version, TRANSPORT_VERSION);
    else if (cluster != me->cluster_id)
        snprintf(why, why_size,
                 "peer %s claims cluster 0x%" PRIx64
                 " but we are cluster 0x%" PRIx64
                 ": is it from another cluster's config?",
                 who, cluster, me->cluster_id);
    else if (count != me->replica_count)
        snprintf(why, why_size,
                 "peer %s says the group has %" PRIu32
                 " replicas but we have %" PRIu32
                 ": is the peer list the same on every replica?",
                 who, count, me->replica_count);
    else if (id >= count)
        snprintf(why, why_size,
                 "peer %s claims replica id %" PRIu32 " but ids go 0..%" PRIu32,
                 who, id, count - 1);
    else if (id == me->self)
        snprintf(why, why_size,
                 "peer %s claims to be replica %" PRIu32
                 ", which is us: is one id configured on two replicas?",
                 who, id);
    else if (expected != PEER_WIRE_NONE && id != expected)
        snprintf(why, why_size,
                 "peer %s claims to be replica %" PRIu32
                 " but our config has replica %" PRIu32
                 " there: is the peer list in the same order on every "
                 "replica?",
                 who, id, expected);
    else
        return id;
    return PEER_WIRE_NONE;
}

enum peer_wire_frame_result
peer_wire_frame_next(const uint8_t *buf, size_t avail, uint32_t frame_size_max,
                     struct peer_wire_frame *out, char *why, size_t why_size)
{
    out->payload = NULL;
    out->size = 0;
    out->need = PEER_WIRE_FRAME_HEADER_SIZE;
    if (avail < PEER_WIRE_FRAME_HEADER_SIZE)
        return PEER_WIRE_FRAME_MORE;
    uint32_t size = get_u32(buf);
    if (size > frame_size_max) {
        snprintf(why, why_size,
                 "a frame of %" PRIu32 " bytes; our limit is %" PRIu32
                 " (frame_size_max; is it the same on every replica?)",
                 size, frame_size_max);
        return PEER_WIRE_FRAME_BAD;
    }
    out->need = PEER_WIRE_FRAME_HEADER_SIZE + (size_t)size;
    if (avail < out->need)
        return PEER_WIRE_FRAME_MORE;
    const uint8_t *payload = buf + PEER_WIRE_FRAME_HEADER_SIZE;
    uint32_t want = get_u32(buf + 4);
    uint32_t got = crc32c(0, payload, size);
    if (got != want) {
        snprintf(why, why_size,
                 "a frame of %" PRIu32 " bytes whose header says CRC-32C "
                 "0x%08" PRIx32 " but the payload has 0x%08" PRIx32,
                 size, want, got);
        return PEER_WIRE_FRAME_BAD;
    }
    out->payload = payload;
    out->size = size;
    ASSERT(out->need <= avail);
    return PEER_WIRE_FRAME_OK;
}

void peer_wire_frame_header(const uint8_t *payload, uint32_t size,
                            uint8_t out[PEER_WIRE_FRAME_HEADER_SIZE])
{
    put_u32(out, size);
    put_u32(out + 4, crc32c(0, payload, size));
}
