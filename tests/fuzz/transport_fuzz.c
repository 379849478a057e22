/* transport_fuzz — what a replica does with the bytes a peer sends on the
 * peer port, apart from the socket: the handshake of peer protocol 3
 * (peer_link_input: HELLO, AUTH), then the frame stream as transport.c's
 * conn_parse runs it (length check, peer_link_open), each accepted
 * protocol payload handed to message_decode() as the node does. Checks:
 *
 *   - a link is READY only for a peer whose HELLO named a valid replica
 *     other than us (the one we dialed, if we dialed); a refusal says why,
 *     naming the peer;
 *   - with a cluster secret, no input makes a link READY: a proof needs
 *     the secret and our fresh nonce, which no input can know;
 *   - frames come out whole, within frame_size_max, with matching CRCs;
 *     and the stream cut into the pieces a socket might deliver gives the
 *     same frames and the same verdict as the stream read in one go.
 *
 * Input: byte 0 picks our side: bit 0..1 our replica id, bit 2 whether we
 * dialed (expect replica (self + 1) % 3), bit 3 a small frame_size_max,
 * bit 4 a cluster secret (else no authentication); byte 1 is the piece size
 * for the cut stream (0: 1 byte). Then the peer's bytes: HELLO
 * (PEER_LINK_HELLO_SIZE), AUTH (PEER_LINK_AUTH_SIZE), frames.
 * tests/fuzz/corpus/transport holds valid exchanges (tests/fuzz/corpus_gen.c).
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "core/message.h"
#include "runtime/peer_link.h"

#define CLUSTER_ID 0xc0ffee0011223344ull
#define REPLICAS 3u
#define FRAMES_MAX 4096
#define WHO "1.2.3.4:5"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted;

/* The peer_auth of replica self, mode NONE or SECRET (read from a secret
 * file made once in the temp directory and removed at once). */
static struct peer_auth *auth_for(uint32_t self, bool secret)
{
    static struct peer_auth *cache[2][REPLICAS];
    if (cache[secret][self] != NULL)
        return cache[secret][self];
    char file[64];
    snprintf(file, sizeof(file), "/tmp/cohort-fuzz-XXXXXX");
    int fd = mkstemp(file);
    ASSERT(fd >= 0);
    static const char text[] = "0123456789abcdef0123456789abcdef\n";
    ASSERT(write(fd, text, sizeof(text) - 1) == sizeof(text) - 1);
    close(fd);
    for (uint32_t i = 0; i < REPLICAS; i++) {
        struct peer_auth_config c = {.cluster_id = CLUSTER_ID,
                                     .self = i,
                                     .replica_count = REPLICAS,
                                     .secret_file = secret ? file : NULL};
        char warn[400];
        struct cohort_err err;
        if (cache[secret][i] == NULL)
            cache[secret][i] = peer_auth_open(&c, warn, sizeof(warn), &err);
        ASSERT(cache[secret][i] != NULL);
    }
    unlink(file);
    return cache[secret][self];
}

/* What one run saw: the frames (offset in the frame stream, size), and
 * how it ended. */
struct verdict {
    size_t offsets[FRAMES_MAX];
    uint32_t sizes[FRAMES_MAX];
    uint32_t count;
    bool ready;
    bool refused;
    bool bad;
    uint32_t peer;
};

struct run {
    struct peer_link *link;
    struct peer_buf frames; /* bytes after the AUTH */
    size_t parsed;          /* frame bytes consumed */
    uint32_t max;
    uint32_t dialed;
    struct verdict *v;
};

static void on_frame(struct run *r, const uint8_t *payload, uint32_t size)
{
    struct verdict *v = r->v;
    ASSERT(size <= r->max);
    if (v->count < FRAMES_MAX) {
        v->offsets[v->count] = r->parsed;
        v->sizes[v->count] = size;
    }
    v->count++;
    /* The node's first payload byte: 1 is a protocol message. */
    struct message m;
    if (size >= 1 && payload[0] == 1)
        (void)message_decode(payload + 1, size - 1, REPLICAS, &m);
}

/* Deliver the whole frames that have arrived, as conn_parse does. */
static void parse(struct run *r)
{
    size_t header = peer_link_header_size(r->link);
    while (!r->v->bad) {
        size_t avail = r->frames.size - r->parsed;
        if (avail < header)
            return;
        const uint8_t *at = r->frames.data + r->parsed;
        uint32_t size = get_u32(at);
        if (size > r->max) {
            r->v->bad = true;
            return;
        }
        if (avail < header + (size_t)size)
            return;
        char why[200];
        why[0] = '\0';
        if (!peer_link_open(r->link, at, at + header, size, why, sizeof(why))) {
            ASSERT(why[0] != '\0');
            r->v->bad = true;
            return;
        }
        on_frame(r, at + header, size);
        r->parsed += header + size;
    }
}

/* Feed n more bytes of the peer's stream; false once it is over. */
static bool feed(struct run *r, const uint8_t *in, size_t n)
{
    struct verdict *v = r->v;
    if (v->ready && r->dialed != PEER_LINK_NOBODY) {
        /* Frames flow from the dialer only: on_dial_read closes a link
         * we dialed that sends more. */
        v->bad = v->bad || n > 0;
        return !v->bad;
    }
    if (v->ready) {
        ASSERT(peer_buf_reserve(&r->frames, n ? n : 1));
        memcpy(r->frames.data + r->frames.size, in, n);
        r->frames.size += n;
        parse(r);
        return !v->bad;
    }
    struct peer_buf plain = {0};
    long used = peer_link_input(r->link, in, n, &plain);
    free(plain.data); /* TLS only */
    if (used < 0) {
        ASSERT(strstr(peer_link_error(r->link), WHO) != NULL);
        v->refused = true;
        return false;
    }
    ASSERT((size_t)used <= n);
    if (peer_link_state(r->link) != PEER_LINK_READY) {
        ASSERT((size_t)used == n);
        return true;
    }
    v->ready = true;
    v->peer = peer_link_peer(r->link);
    return feed(r, in + used, n - (size_t)used);
}

static void run(struct verdict *v, struct peer_auth *auth, uint32_t dialed,
                uint32_t max, const uint8_t *stream, size_t n, size_t piece)
{
    memset(v, 0, sizeof(*v));
    struct run r = {.max = max, .dialed = dialed, .v = v};
    r.link = peer_link_new(auth, dialed, WHO, 0);
    ASSERT(r.link != NULL);
    for (size_t at = 0; at < n;) {
        size_t k = n - at < piece ? n - at : piece;
        if (!feed(&r, stream + at, k))
            break;
        at += k;
    }
    peer_link_free(r.link);
    free(r.frames.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t self = (data[0] & 3u) % REPLICAS;
    uint32_t dialed = (data[0] & 4) ? (self + 1) % REPLICAS : PEER_LINK_NOBODY;
    uint32_t max = (data[0] & 8) ? 64 : (1u << 20);
    bool secret = (data[0] & 16) != 0;
    size_t piece = data[1] ? data[1] : 1;
    struct peer_auth *auth = auth_for(self, secret);
    /* An exact-size copy of the stream, so ASan sees a read past it. */
    size_t n = size - 2;
    uint8_t *stream = malloc(n ? n : 1);
    ASSERT(stream);
    memcpy(stream, data + 2, n);

    static struct verdict whole, cut;
    run(&whole, auth, dialed, max, stream, n, n ? n : 1);
    run(&cut, auth, dialed, max, stream, n, piece);
    if (whole.ready) {
        ASSERT(!secret);
        ASSERT(whole.peer < REPLICAS && whole.peer != self);
        ASSERT(dialed == PEER_LINK_NOBODY || whole.peer == dialed);
    }
    ASSERT(cut.ready == whole.ready);
    ASSERT(cut.refused == whole.refused);
    ASSERT(cut.bad == whole.bad);
    ASSERT(cut.count == whole.count);
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
