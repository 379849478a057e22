/* peer_link — one peer connection's handshake and frame protection. See
 * peer_link.h for the protocol; this file is the mechanism.
 *
 * Input is consumed by state: HELLO bytes into hello_in; in TLS mode every
 * later byte goes into the TLS session, whose plaintext is the AUTH and then
 * frames; otherwise AUTH bytes into auth_in, and what follows belongs to the
 * caller. Output in clear (HELLO, AUTH without TLS) waits in clear_out and
 * leaves before any TLS record, which all come after our HELLO.
 *
 * Invariants: (1) state only moves forward; (2) READY implies the peer's
 * HELLO passed every check and, per mode, its certificate named it (TLS) or
 * its proof verified (SECRET); (3) the frame sequence number counts frames
 * sealed (dialer) or opened (acceptor) on this link, so both ends agree.
 */
#include "runtime/peer_link.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "common/crc32c.h"

#define WHO_MAX 80u
#define ERROR_MAX 480u
#define CLEAR_OUT_MAX (PEER_LINK_HELLO_SIZE + PEER_LINK_AUTH_SIZE)
#define TLS_RECORD_MAX 16384u
#define TLS_RECORD_OVERHEAD 32u /* header, nonce, tag: 29 at most */
#define TLS_READ_STEP 16384u
#define PROOF_LABEL "cohort peer proof v3"
#define FRAMES_LABEL "cohort peer frames v3"

static_assert(PEER_LINK_HELLO_SIZE ==
                  4 + 4 + 8 + 4 + 4 + 4 + 4 + PEER_LINK_NONCE_SIZE,
              "hello layout");
static_assert(PEER_LINK_AUTH_SIZE == PEER_AUTH_HASH_SIZE + PEER_AUTH_TOKEN_SIZE,
              "auth layout");

struct peer_link {
    const struct peer_auth *auth;
    enum peer_auth_mode mode;
    enum peer_link_state state;
    uint32_t dialed; /* PEER_LINK_NOBODY: we accepted */
    uint32_t peer;
    uint32_t incarnation;      /* our tag in the HELLO; 0: not known */
    uint32_t peer_incarnation; /* the peer's, once its HELLO passed */
    char who[WHO_MAX];
    char error[ERROR_MAX];
    uint8_t hello_out[PEER_LINK_HELLO_SIZE];
    uint8_t hello_in[PEER_LINK_HELLO_SIZE];
    uint32_t hello_in_size;
    uint8_t auth_in[PEER_LINK_AUTH_SIZE];
    uint32_t auth_in_size;
    uint8_t clear_out[CLEAR_OUT_MAX];
    size_t clear_begin, clear_end;
    struct tls_session *tls;
    struct peer_mac *mac; /* SECRET, once READY */
    uint64_t seq;
    uint8_t scratch[TLS_RECORD_MAX]; /* TLS: a small frame, whole */
};

bool peer_buf_reserve(struct peer_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->size)
        return false;
    return grow_bytes(&b->data, &b->cap, b->size + more, 4096);
}

__attribute__((format(printf, 2, 3))) static void
link_fail(struct peer_link *l, const char *fmt, ...)
{
    if (l->state == PEER_LINK_FAILED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error, sizeof(l->error), fmt, ap);
    va_end(ap);
    l->state = PEER_LINK_FAILED;
}

static bool dialer(const struct peer_link *l)
{
    return l->dialed != PEER_LINK_NOBODY;
}

static void clear_append(struct peer_link *l, const uint8_t *data, size_t n)
{
    ASSERT(l->clear_end + n <= sizeof(l->clear_out));
    memcpy(l->clear_out + l->clear_end, data, n);
    l->clear_end += n;
}

/* ---- HELLO --------------------------------------------------------------- */

static void hello_encode(struct peer_link *l, const uint8_t *nonce)
{
    const struct peer_auth *a = l->auth;
    struct writer w = writer_make(l->hello_out, sizeof(l->hello_out));
    writer_u32(&w, PEER_LINK_MAGIC);
    writer_u32(&w, PEER_LINK_VERSION);
    writer_u64(&w, peer_auth_cluster(a));
    writer_u32(&w, peer_auth_self(a));
    writer_u32(&w, peer_auth_replica_count(a));
    writer_u32(&w, (uint32_t)l->mode);
    writer_u32(&w, l->incarnation);
    writer_bytes(&w, nonce, PEER_LINK_NONCE_SIZE);
    ASSERT(w.ok);
    ASSERT(w.left == 0);
}

/* The magic and version, as soon as they are in: a program that is not a
 * cohort replica, or one of another version, is told so without waiting
 * for bytes it will never send. */
static bool hello_prefix_ok(struct peer_link *l)
{
    const uint8_t *h = l->hello_in;
    if (l->hello_in_size >= 4 && get_u32(h) != PEER_LINK_MAGIC) {
        link_fail(l,
                  "peer %s did not send a cohort peer handshake (magic "
                  "0x%08" PRIx32 ", want 0x%08" PRIx32
                  "): is another program connecting to the peer port?",
                  l->who, get_u32(h), PEER_LINK_MAGIC);
        return false;
    }
    if (l->hello_in_size >= 8 && get_u32(h + 4) != PEER_LINK_VERSION) {
        link_fail(l,
                  "peer %s speaks peer protocol version %" PRIu32
                  " but we speak %u: run the same cohort version on every "
                  "replica",
                  l->who, get_u32(h + 4), PEER_LINK_VERSION);
        return false;
    }
    return true;
}

/* The rest of the peer's HELLO. Returns the peer's id, or NOBODY after
 * failing the link with the reason. */
static uint32_t hello_check(struct peer_link *l)
{
    const struct peer_auth *a = l->auth;
    const char *who = l->who;
    struct cursor c = cursor_make(l->hello_in + 8, PEER_LINK_HELLO_SIZE - 8);
    uint64_t cluster = cursor_u64(&c);
    uint32_t id = cursor_u32(&c);
    uint32_t count = cursor_u32(&c);
    uint32_t mode = cursor_u32(&c);
    uint32_t incarnation = cursor_u32(&c);
    ASSERT(c.ok);
    uint32_t self = peer_auth_self(a);
    if (cluster != peer_auth_cluster(a))
        link_fail(l,
                  "peer %s claims cluster 0x%" PRIx64
                  " but we are cluster 0x%" PRIx64
                  ": is it from another cluster's config?",
                  who, cluster, peer_auth_cluster(a));
    else if (count != peer_auth_replica_count(a))
        link_fail(l,
                  "peer %s says the group has %" PRIu32
                  " replicas but we have %" PRIu32
                  ": is the peer list the same on every replica?",
                  who, count, peer_auth_replica_count(a));
    else if (id >= count)
        link_fail(
            l, "peer %s claims replica id %" PRIu32 " but ids go 0..%" PRIu32,
            who, id, count - 1);
    else if (id == self)
        link_fail(l,
                  "peer %s claims to be replica %" PRIu32
                  ", which is us: is one id configured on two replicas?",
                  who, id);
    else if (dialer(l) && id != l->dialed)
        link_fail(l,
                  "peer %s claims to be replica %" PRIu32
                  " but our config has replica %" PRIu32
                  " there: is the peer list in the same order on every "
                  "replica?",
                  who, id, l->dialed);
    else if (mode != (uint32_t)l->mode)
        link_fail(l,
                  "peer %s (replica %" PRIu32 ") authenticates peers with %s "
                  "but we use %s: give every replica the same "
                  "--cluster-secret-file or --peer-tls-* options",
                  who, id,
                  mode <= PEER_AUTH_TLS
                      ? peer_auth_mode_name((enum peer_auth_mode)mode)
                      : "an unknown method",
                  peer_auth_mode_name(l->mode));
    else if (incarnation != 0 && l->incarnation != 0 &&
             incarnation != l->incarnation) {
        char why[ERROR_MAX];
        link_fail(l, "%s",
                  peer_link_incarnation_mismatch(
                      who, id, incarnation, l->incarnation, why, sizeof(why)));
    } else {
        l->peer_incarnation = incarnation;
        return id;
    }
    return PEER_LINK_NOBODY;
}

/* ---- AUTH ---------------------------------------------------------------- */

/* The proof of the side whose role is 'D' (dialer) or 'A' (acceptor). */
static void proof_compute(const struct peer_link *l, uint8_t role,
                          const uint8_t *token,
                          uint8_t out[PEER_AUTH_HASH_SIZE])
{
    const uint8_t *hd = dialer(l) ? l->hello_out : l->hello_in;
    const uint8_t *ha = dialer(l) ? l->hello_in : l->hello_out;
    struct peer_auth_part parts[] = {
        {PROOF_LABEL, sizeof(PROOF_LABEL) - 1},
        {&role, 1},
        {hd, PEER_LINK_HELLO_SIZE},
        {ha, PEER_LINK_HELLO_SIZE},
        {token, PEER_AUTH_TOKEN_SIZE},
    };
    peer_auth_hmac(l->auth, parts, sizeof(parts) / sizeof(parts[0]), out);
}

/* Our AUTH: the proof (SECRET) and our token (both sides: the acceptor's
 * tells the dialer which process listens at the address it dialed). */
static void auth_encode(const struct peer_link *l,
                        uint8_t out[PEER_LINK_AUTH_SIZE])
{
    memset(out, 0, PEER_LINK_AUTH_SIZE);
    uint8_t *token = out + PEER_AUTH_HASH_SIZE;
    peer_auth_token(l->auth, token);
    if (l->mode == PEER_AUTH_SECRET)
        proof_compute(l, dialer(l) ? 'D' : 'A', token, out);
}

static void frame_key(const struct peer_link *l,
                      uint8_t out[PEER_AUTH_HASH_SIZE])
{
    const uint8_t *hd = dialer(l) ? l->hello_out : l->hello_in;
    const uint8_t *ha = dialer(l) ? l->hello_in : l->hello_out;
    struct peer_auth_part parts[] = {
        {FRAMES_LABEL, sizeof(FRAMES_LABEL) - 1},
        {hd, PEER_LINK_HELLO_SIZE},
        {ha, PEER_LINK_HELLO_SIZE},
    };
    peer_auth_hmac(l->auth, parts, sizeof(parts) / sizeof(parts[0]), out);
}

/* The peer's AUTH is in: check its proof, keep its token, and the link is
 * READY. */
static void auth_done(struct peer_link *l)
{
    ASSERT(l->auth_in_size == PEER_LINK_AUTH_SIZE);
    const uint8_t *token = l->auth_in + PEER_AUTH_HASH_SIZE;
    if (l->mode == PEER_AUTH_SECRET) {
        uint8_t want[PEER_AUTH_HASH_SIZE];
        proof_compute(l, dialer(l) ? 'A' : 'D', token, want);
        if (!peer_auth_equal(want, l->auth_in, sizeof(want))) {
            link_fail(l,
                      "peer %s (claiming to be replica %" PRIu32
                      ") did not prove it holds the cluster secret: is "
                      "--cluster-secret-file the same on every replica?",
                      l->who, l->peer);
            return;
        }
        uint8_t key[PEER_AUTH_HASH_SIZE];
        frame_key(l, key);
        l->mac = peer_mac_new(l->auth, key);
    }
    (void)token;
    l->state = PEER_LINK_READY;
}

/* ---- TLS ----------------------------------------------------------------- */

/* The handshake just completed: the certificate must name the replica the
 * HELLO claimed. Then our AUTH goes inside TLS. */
static void tls_established(struct peer_link *l)
{
    char want[PEER_AUTH_URI_MAX], have[256];
    peer_auth_uri(l->auth, l->peer, want, sizeof(want));
    if (!tls_session_peer_uri(l->tls, "cohort://", have, sizeof(have))) {
        link_fail(l,
                  "peer %s (claiming to be replica %" PRIu32
                  ") presented a certificate with no cohort:// URI name; "
                  "it needs URI:%s",
                  l->who, l->peer, want);
        return;
    }
    if (strcmp(have, want) != 0) {
        link_fail(l,
                  "peer %s claims to be replica %" PRIu32
                  " but its certificate names %s, not %s: each replica "
                  "needs its own certificate",
                  l->who, l->peer, have, want);
        return;
    }
    uint8_t out[PEER_LINK_AUTH_SIZE];
    auth_encode(l, out);
    struct cohort_err err;
    if (tls_write(l->tls, out, sizeof(out), &err) != 0) {
        link_fail(l, "peer %s: %s", l->who, err.message);
        return;
    }
    l->state = PEER_LINK_AUTH;
}

/* Read plaintext: the rest of the AUTH, then frames into plain. */
static void tls_read_all(struct peer_link *l, struct peer_buf *plain)
{
    struct cohort_err err;
    while (l->state == PEER_LINK_AUTH) {
        long n = tls_read(l->tls, l->auth_in + l->auth_in_size,
                          PEER_LINK_AUTH_SIZE - l->auth_in_size, &err);
        if (n < 0)
            link_fail(l, "peer %s: %s", l->who, err.message);
        if (n <= 0)
            return;
        l->auth_in_size += (uint32_t)n;
        if (l->auth_in_size == PEER_LINK_AUTH_SIZE)
            auth_done(l);
    }
    while (l->state == PEER_LINK_READY) {
        if (!peer_buf_reserve(plain, TLS_READ_STEP)) {
            link_fail(l, "peer %s: out of memory for received frames", l->who);
            return;
        }
        long n = tls_read(l->tls, plain->data + plain->size,
                          plain->cap - plain->size, &err);
        if (n < 0)
            link_fail(l, "peer %s: %s", l->who, err.message);
        if (n <= 0)
            return;
        plain->size += (size_t)n;
    }
}

static void tls_progress(struct peer_link *l, struct peer_buf *plain)
{
    if (l->state == PEER_LINK_TLS) {
        struct cohort_err err;
        int rc = tls_handshake(l->tls, &err);
        if (rc < 0)
            link_fail(l,
                      "peer %s (claiming to be replica %" PRIu32
                      "): %s; are both certificates signed by the CA in "
                      "--peer-tls-ca-cert-file?",
                      l->who, l->peer, err.message);
        if (rc <= 0)
            return;
        tls_established(l);
    }
    tls_read_all(l, plain);
}

/* ---- input --------------------------------------------------------------- */

static void hello_done(struct peer_link *l, struct peer_buf *plain)
{
    uint32_t id = hello_check(l);
    if (id == PEER_LINK_NOBODY)
        return;
    l->peer = id;
    if (l->mode != PEER_AUTH_TLS) {
        uint8_t out[PEER_LINK_AUTH_SIZE];
        auth_encode(l, out);
        clear_append(l, out, sizeof(out));
        l->state = PEER_LINK_AUTH;
        return;
    }
    struct tls_context *ctx =
        peer_auth_tls(l->auth, dialer(l) ? TLS_CLIENT : TLS_SERVER);
    l->tls = tls_session_new(ctx);
    if (l->tls == NULL) {
        link_fail(l, "peer %s: out of memory for a TLS session", l->who);
        return;
    }
    l->state = PEER_LINK_TLS;
    tls_progress(l, plain); /* the client speaks first */
}

static size_t take(uint8_t *dst, uint32_t *have, uint32_t want,
                   const uint8_t *src, size_t size)
{
    size_t n = want - *have;
    if (n > size)
        n = size;
    memcpy(dst + *have, src, n);
    *have += (uint32_t)n;
    return n;
}

long peer_link_input(struct peer_link *l, const uint8_t *data, size_t size,
                     struct peer_buf *plain)
{
    size_t used = 0;
    while (used < size && l->state != PEER_LINK_FAILED) {
        if (l->state == PEER_LINK_HELLO) {
            used += take(l->hello_in, &l->hello_in_size, PEER_LINK_HELLO_SIZE,
                         data + used, size - used);
            if (!hello_prefix_ok(l))
                break;
            if (l->hello_in_size == PEER_LINK_HELLO_SIZE)
                hello_done(l, plain);
        } else if (l->mode == PEER_AUTH_TLS) {
            if (tls_feed(l->tls, data + used, size - used) != 0)
                link_fail(l, "peer %s: out of memory for TLS input", l->who);
            used = size;
            tls_progress(l, plain);
        } else if (l->state == PEER_LINK_AUTH) {
            used += take(l->auth_in, &l->auth_in_size, PEER_LINK_AUTH_SIZE,
                         data + used, size - used);
            if (l->auth_in_size == PEER_LINK_AUTH_SIZE)
                auth_done(l);
        } else {
            break; /* READY without TLS: the rest are frames */
        }
    }
    return l->state == PEER_LINK_FAILED ? -1 : (long)used;
}

/* ---- the link ------------------------------------------------------------ */

uint32_t peer_link_incarnation_tag(uint64_t incarnation)
{
    if (incarnation == 0)
        return 0;
    uint32_t tag = (uint32_t)(incarnation ^ (incarnation >> 32));
    return tag != 0 ? tag : 1;
}

const char *peer_link_incarnation_mismatch(const char *who, uint32_t id,
                                           uint32_t theirs, uint32_t ours,
                                           char *out, size_t size)
{
    snprintf(out, size,
             "peer %s (replica %" PRIu32 ") holds another incarnation of "
             "this cluster (tag %08" PRIx32 ", ours %08" PRIx32
             "): one of the two data directories is from another "
             "deployment with the same flags; stop that replica and take it "
             "out and back in with an empty --data-dir (cohort remove %" PRIu32
             ", then cohort add)",
             who, id, theirs, ours, id);
    return out;
}

struct peer_link *peer_link_new(const struct peer_auth *auth, uint32_t dialed,
                                const char *who, uint64_t incarnation)
{
    uint8_t nonce[PEER_LINK_NONCE_SIZE];
    struct cohort_err err;
    if (peer_auth_random(nonce, sizeof(nonce), &err) != 0)
        return NULL;
    struct peer_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->auth = auth;
    l->mode = peer_auth_mode(auth);
    l->state = PEER_LINK_HELLO;
    l->dialed = dialed;
    l->peer = PEER_LINK_NOBODY;
    l->incarnation = peer_link_incarnation_tag(incarnation);
    snprintf(l->who, sizeof(l->who), "%s", who);
    hello_encode(l, nonce);
    clear_append(l, l->hello_out, sizeof(l->hello_out));
    return l;
}

void peer_link_free(struct peer_link *l)
{
    if (l == NULL)
        return;
    tls_session_free(l->tls);
    peer_mac_free(l->mac);
    free(l);
}

enum peer_link_state peer_link_state(const struct peer_link *l)
{
    return l->state;
}

const char *peer_link_error(const struct peer_link *l)
{
    return l->error;
}

uint32_t peer_link_peer(const struct peer_link *l)
{
    return l->peer;
}

uint32_t peer_link_peer_incarnation(const struct peer_link *l)
{
    return l->peer_incarnation;
}

uint32_t peer_link_hello_received(const struct peer_link *l)
{
    return l->hello_in_size;
}

const uint8_t *peer_link_peer_token(const struct peer_link *l)
{
    ASSERT(l->state == PEER_LINK_READY);
    return l->auth_in + PEER_AUTH_HASH_SIZE;
}

size_t peer_link_output_size(const struct peer_link *l)
{
    size_t n = l->clear_end - l->clear_begin;
    if (l->tls != NULL)
        n += tls_output_size(l->tls);
    return n;
}

size_t peer_link_output_take(struct peer_link *l, uint8_t *out, size_t cap)
{
    size_t n = l->clear_end - l->clear_begin;
    if (n > cap)
        n = cap;
    memcpy(out, l->clear_out + l->clear_begin, n);
    l->clear_begin += n;
    if (l->clear_begin == l->clear_end)
        l->clear_begin = l->clear_end = 0;
    if (l->clear_end == 0 && l->tls != NULL && n < cap)
        n += tls_output_take(l->tls, out + n, cap - n);
    return n;
}

/* ---- frames -------------------------------------------------------------- */

size_t peer_link_header_size(const struct peer_link *l)
{
    return l->mode == PEER_AUTH_SECRET ? 4u + PEER_LINK_TAG_SIZE : 8u;
}

size_t peer_link_sealed_size(const struct peer_link *l, size_t size)
{
    size_t n = peer_link_header_size(l) + size;
    if (l->mode == PEER_AUTH_TLS)
        n += (n / TLS_RECORD_MAX + 2) * TLS_RECORD_OVERHEAD;
    return n;
}

bool peer_link_seal(struct peer_link *l, const uint8_t *payload, uint32_t size,
                    uint8_t header[PEER_LINK_HEADER_MAX])
{
    ASSERT(l->state == PEER_LINK_READY);
    ASSERT(dialer(l));
    put_u32(header, size);
    if (l->mode == PEER_AUTH_SECRET) {
        peer_mac_tag(l->mac, l->seq++, payload, size, header + 4,
                     PEER_LINK_TAG_SIZE);
        return true;
    }
    put_u32(header + 4, crc32c(0, payload, size));
    if (l->mode == PEER_AUTH_NONE)
        return true;
    /* TLS: one record for a small frame, header and payload together. */
    struct cohort_err err;
    int rc;
    if (8u + (size_t)size <= sizeof(l->scratch)) {
        memcpy(l->scratch, header, 8);
        memcpy(l->scratch + 8, payload, size);
        rc = tls_write(l->tls, l->scratch, 8u + (size_t)size, &err);
    } else {
        rc = tls_write(l->tls, header, 8, &err);
        if (rc == 0)
            rc = tls_write(l->tls, payload, size, &err);
    }
    if (rc != 0)
        link_fail(l, "replica %" PRIu32 " at %s: %s", l->peer, l->who,
                  err.message);
    return rc == 0;
}

bool peer_link_open(struct peer_link *l, const uint8_t *header,
                    const uint8_t *payload, uint32_t size, char *why,
                    size_t why_size)
{
    ASSERT(l->state == PEER_LINK_READY);
    ASSERT(!dialer(l));
    if (l->mode == PEER_AUTH_SECRET) {
        uint8_t tag[PEER_LINK_TAG_SIZE];
        peer_mac_tag(l->mac, l->seq, payload, size, tag, sizeof(tag));
        if (!peer_auth_equal(tag, header + 4, sizeof(tag))) {
            snprintf(why, why_size,
                     "frame %" PRIu64 " of %" PRIu32
                     " bytes whose MAC does not match (altered, replayed or "
                     "reordered on the way)",
                     l->seq, size);
            return false;
        }
        l->seq++;
        return true;
    }
    uint32_t want = get_u32(header + 4);
    uint32_t got = crc32c(0, payload, size);
    if (got == want)
        return true;
    snprintf(why, why_size,
             "a frame of %" PRIu32 " bytes whose header says CRC-32C "
             "0x%08" PRIx32 " but the payload has 0x%08" PRIx32,
             size, want, got);
    return false;
}
