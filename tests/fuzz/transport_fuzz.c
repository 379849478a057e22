/* transport_fuzz — what a replica does with the bytes a peer sends on the
 * peer port, apart from the socket: the handshake check, then the frame
 * stream (peer_wire_frame_next, as transport.c's conn_parse runs it), each
 * accepted protocol payload handed to message_decode() as the node does.
 * Checks:
 *
 *   - a handshake is accepted only if it is exactly what a valid peer
 *     encodes (re-encoding the peer's fields gives the same 24 bytes), and
 *     a refusal says why, naming the peer;
 *   - frames come out whole, within frame_size_max, with matching CRCs,
 *     inside the buffer; MORE asks for more than is there; and the stream
 *     cut into the pieces a socket might deliver gives the same frames and
 *     the same verdict as the stream read in one go.
 *
 * Input: byte 0 picks our side: bit 0..1 our replica id, bit 2 whether we
 * dialed (expect replica (self + 1) % 3), bit 3 a small frame_size_max;
 * byte 1 is the piece size for the cut stream (0: 1 byte). Then the
 * handshake (PEER_WIRE_HANDSHAKE_SIZE bytes), then the frame stream.
 * tests/fuzz/corpus/transport holds valid exchanges (tests/fuzz/corpus_gen.c).
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "core/message.h"
#include "runtime/peer_wire.h"

#define CLUSTER_ID 0xc0ffee0011223344ull
#define REPLICAS 3u
#define FRAMES_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted;

static void check_handshake(const struct peer_wire_self *me, const uint8_t *hs,
                            uint32_t expected, uint32_t *from)
{
    char why[400];
    why[0] = '\0';
    uint32_t id = peer_wire_handshake_check(me, hs, expected, "1.2.3.4:5", why,
                                            sizeof(why));
    *from = id;
    if (id == PEER_WIRE_NONE) {
        ASSERT(strstr(why, "1.2.3.4:5") != NULL);
        return;
    }
    ASSERT(id < me->replica_count);
    ASSERT(id != me->self);
    ASSERT(expected == PEER_WIRE_NONE || id == expected);
    struct peer_wire_self peer = {.cluster_id = me->cluster_id,
                                  .self = id,
                                  .replica_count = me->replica_count,
                                  .token = hs + PEER_WIRE_HANDSHAKE_SIZE -
                                           TRANSPORT_TOKEN_SIZE};
    uint8_t again[PEER_WIRE_HANDSHAKE_SIZE];
    peer_wire_handshake_encode(&peer, again);
    ASSERT(memcmp(again, hs, sizeof(again)) == 0);
}

/* A frame seen: its offset in the stream and size, or how it ended. */
struct verdict {
    size_t offsets[FRAMES_MAX];
    uint32_t sizes[FRAMES_MAX];
    uint32_t count;
    bool bad;
    size_t consumed;
};

static void on_frame(struct verdict *v, const uint8_t *stream,
                     const struct peer_wire_frame *f, size_t off, uint32_t max)
{
    ASSERT(f->size <= max);
    ASSERT(f->need == PEER_WIRE_FRAME_HEADER_SIZE + (size_t)f->size);
    ASSERT(f->payload == stream + off + PEER_WIRE_FRAME_HEADER_SIZE);
    uint8_t header[PEER_WIRE_FRAME_HEADER_SIZE];
    peer_wire_frame_header(f->payload, f->size, header);
    ASSERT(memcmp(header, stream + off, sizeof(header)) == 0);
    if (v->count < FRAMES_MAX) {
        v->offsets[v->count] = off;
        v->sizes[v->count] = f->size;
    }
    v->count++;
    /* The node's first payload byte: 1 is a protocol message (the node's
     * snapshot chunk frames, 2 and 3, are not decoded here). */
    struct message m;
    if (f->size >= 1 && f->payload[0] == 1)
        (void)message_decode(f->payload + 1, f->size - 1, REPLICAS, &m);
}

/* Parse what has arrived (avail bytes of stream from *off), as conn_parse
 * does; returns false once the stream was refused. */
static bool parse(struct verdict *v, const uint8_t *stream, size_t *off,
                  size_t avail, uint32_t max)
{
    for (;;) {
        struct peer_wire_frame f;
        char why[200];
        enum peer_wire_frame_result r = peer_wire_frame_next(
            stream + *off, avail - *off, max, &f, why, sizeof(why));
        if (r == PEER_WIRE_FRAME_MORE) {
            ASSERT(f.need > avail - *off);
            return true;
        }
        if (r == PEER_WIRE_FRAME_BAD) {
            ASSERT(why[0] != '\0');
            v->bad = true;
            return false;
        }
        ASSERT(r == PEER_WIRE_FRAME_OK);
        ASSERT(f.need <= avail - *off);
        on_frame(v, stream, &f, *off, max);
        *off += f.need;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 + PEER_WIRE_HANDSHAKE_SIZE)
        return 0;
    struct peer_wire_self me = {.cluster_id = CLUSTER_ID,
                                .self = (data[0] & 3u) % REPLICAS,
                                .replica_count = REPLICAS};
    uint32_t expected =
        (data[0] & 4) ? (me.self + 1) % REPLICAS : PEER_WIRE_NONE;
    uint32_t max = (data[0] & 8) ? 64 : (1u << 20);
    size_t piece = data[1] ? data[1] : 1;
    uint32_t from;
    check_handshake(&me, data + 2, expected, &from);
    if (from == PEER_WIRE_NONE)
        return 0;
    /* An exact-size copy of the stream, so ASan sees a read past it. */
    size_t n = size - 2 - PEER_WIRE_HANDSHAKE_SIZE;
    uint8_t *stream = malloc(n ? n : 1);
    ASSERT(stream);
    memcpy(stream, data + 2 + PEER_WIRE_HANDSHAKE_SIZE, n);

    static struct verdict whole, cut;
    memset(&whole, 0, sizeof(whole));
    memset(&cut, 0, sizeof(cut));
    size_t off = 0;
    parse(&whole, stream, &off, n, max);
    whole.consumed = off;
    off = 0;
    for (size_t avail = 0; avail < n;) {
        avail = n - avail < piece ? n : avail + piece;
        if (!parse(&cut, stream, &off, avail, max))
            break;
    }
    cut.consumed = off;
    ASSERT(cut.bad == whole.bad);
    ASSERT(cut.count == whole.count);
    ASSERT(cut.consumed == whole.consumed);
    uint32_t k = whole.count < FRAMES_MAX ? whole.count : FRAMES_MAX;
    for (uint32_t i = 0; i < k; i++) {
        ASSERT(cut.offsets[i] == whole.offsets[i]);
        ASSERT(cut.sizes[i] == whole.sizes[i]);
    }
    if (whole.count > 0 && !whole.bad)
        accepted++;
    free(stream);
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "transport_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
