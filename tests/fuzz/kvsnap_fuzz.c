/* kvsnap_fuzz — kv_restore() on a fuzzed store snapshot stream (kv/
 * snapshot.h): the header, the records, the users (acl_decode), the
 * sessions (kv_sessions_decode), the address table (kv_addresses_decode),
 * the incarnation and the trailer, as a replica reads them from a
 * snapshot file on its disk or from a peer's state transfer. Checks:
 *
 *   - restore never crashes and returns 0 or a negative code with a
 *     message; on failure the store is left empty (no key, op 0) and its
 *     invariants hold;
 *   - the table never outgrows what the records read so far justify
 *     (kv/snapshot.h): once n are in, what kv_reserve() gives for
 *     max(KV_RESTORE_RESERVE_KEYS, KV_RESTORE_TRUST_FACTOR * (n - 1))
 *     keys; a header's key count alone does not size it;
 *   - on success the store's invariants hold (the sessions' too), and the
 *     writer and the reader agree: the store written again restores into a
 *     store with another hash seed with the same state hash and op, and
 *     that one writes the same bytes.
 *
 * Input: byte 0 is flags, byte 1 a piece size, then the stream. Flag
 * bit 0: fix the checksums first (header, records, sections, the trailer's
 * stream checksum; not the state hash), walking the stream as the format
 * says, so that mutations reach the decoders behind them. Bit 1: the
 * reader hands out at most piece size + 1 bytes per call.
 * tests/fuzz/corpus/kvsnap holds streams kv_snapshot_write() produced
 * (tests/fuzz/corpus_gen.c): keys with expiries, users, sessions with a
 * lock and a group, an address table, an incarnation.
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "kv/kv.h"
#include "kv/session.h"
#include "kv/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted; /* streams restored */

struct reader {
    const struct kv *kv; /* being restored */
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t piece; /* 0: no bound */
};

/* The slots kv_reserve() gives a fresh table for keys keys. */
static uint64_t slots_for(uint64_t keys)
{
    uint64_t slots = KV_SLOT_COUNT_MIN;
    while (keys * 4 > slots * 3)
        slots *= 2;
    return slots;
}

static int read_input(void *ctx, void *out, size_t size, size_t *got)
{
    struct reader *r = ctx;
    /* The table last grew before the latest record went in, for at most
     * KV_RESTORE_TRUST_FACTOR times the records in before it (or doubled,
     * which is less). */
    uint64_t in = r->kv->key_count;
    uint64_t keys = in > 0 ? KV_RESTORE_TRUST_FACTOR * (in - 1) : 0;
    if (keys < KV_RESTORE_RESERVE_KEYS)
        keys = KV_RESTORE_RESERVE_KEYS;
    ASSERT(r->kv->slot_count <= slots_for(keys));
    size_t n = r->size - r->pos;
    if (n > size)
        n = size;
    if (r->piece && n > r->piece)
        n = r->piece;
    if (n)
        memcpy(out, r->data + r->pos, n);
    r->pos += n;
    *got = n;
    return 0;
}

struct stream {
    uint8_t *data;
    size_t size;
    size_t cap;
};

static int write_output(void *ctx, const void *data, size_t size)
{
    struct stream *s = ctx;
    if (s->size + size > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->size + size)
            cap *= 2;
        uint8_t *p = realloc(s->data, cap);
        ASSERT(p != NULL);
        s->data = p;
        s->cap = cap;
    }
    memcpy(s->data + s->size, data, size);
    s->size += size;
    return 0;
}

/* Walk the stream in b as the format lays it out, as far as its sizes are
 * plausible, rewriting the checksums if fix. A record or section that
 * claims far more bytes than the input has is restored too: the reader
 * grows its buffer as the bytes arrive (until 2026-12-07 it allocated the
 * claim, up to 513 MiB or 1 GiB for the sessions, and this target skipped
 * such inputs, which held it to 60 a second under ASan). */
static void walk(uint8_t *b, size_t size, bool fix)
{
    if (size < KV_SNAPSHOT_HEADER_SIZE)
        return;
    if (fix)
        put_u32(b + 36, crc32c(0, b, 36));
    uint16_t format = get_u16(b + 4);
    if (format < 1 || format > KV_SNAPSHOT_FORMAT)
        return;
    unsigned parts = format - 1u;
    size_t meta = KV_SNAPSHOT_RECORD_META_SIZE + (parts & 2 ? 8u : 0u);
    uint64_t key_count = get_u64(b + 16);
    size_t pos = KV_SNAPSHOT_HEADER_SIZE;
    for (uint64_t i = 0; i < key_count; i++) {
        if (size - pos < meta)
            return;
        uint32_t key_size = get_u32(b + pos);
        uint32_t value_size = get_u32(b + pos + 4);
        uint64_t data = (uint64_t)key_size + value_size;
        if (data > size - pos - meta || size - pos - meta - data < 4)
            return;
        size_t end = pos + meta + (size_t)data;
        if (fix)
            put_u32(b + end, crc32c(0, b + pos, end - pos));
        pos = end + 4;
    }
    static const unsigned section_bits[] = {1, 4, 8, 16};
    for (size_t i = 0; i < sizeof(section_bits) / sizeof(section_bits[0]);
         i++) {
        if (!(parts & section_bits[i]))
            continue;
        if (size - pos < 8)
            return;
        uint64_t n = get_u32(b + pos + 4);
        if (n > size - pos - 8 || size - pos - 8 - n < 4)
            return;
        size_t end = pos + 8 + (size_t)n;
        if (fix)
            put_u32(b + end, crc32c(0, b + pos, end - pos));
        pos = end + 4;
    }
    if (fix && size - pos >= KV_SNAPSHOT_TRAILER_SIZE)
        put_u32(b + pos + 12, crc32c(0, b, pos + 12));
}

static struct kv_config config(uint64_t seed)
{
    struct kv_config c = kv_config_default();
    c.hash_seed = seed;
    return c;
}

static int restore(struct kv *kv, const uint8_t *data, size_t size,
                   size_t piece)
{
    struct reader r = {kv, data, size, 0, piece};
    struct cohort_err err;
    err_clear(&err);
    int rc = kv_restore(kv, read_input, &r, &err);
    ASSERT(rc <= 0);
    ASSERT(r.pos <= size);
    ASSERT(kv_invariants_hold(kv));
    ASSERT(kv_sessions_invariants_hold(&kv->sessions));
    if (rc != 0) {
        ASSERT(err.message[0] != '\0');
        ASSERT(kv->key_count == 0 && kv->op == 0);
    }
    return rc;
}

static void write_all(const struct kv *kv, struct stream *s)
{
    struct cohort_err err;
    s->size = 0;
    ASSERT(kv_snapshot_write(kv, write_output, s, &err) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 256 * 1024)
        return 0;
    uint8_t flags = data[0];
    size_t piece = flags & 2 ? (size_t)data[1] + 1 : 0;
    size -= 2;
    uint8_t *stream = malloc(size ? size : 1);
    ASSERT(stream != NULL);
    memcpy(stream, data + 2, size);
    walk(stream, size, flags & 1);

    struct kv a, b;
    struct kv_config ca = config(0), cb = config(0x9e3779b97f4a7c15ull);
    ASSERT(kv_init(&a, &ca) == 0);
    ASSERT(kv_init(&b, &cb) == 0);
    if (restore(&a, stream, size, piece) == 0) {
        accepted++;
        struct stream w1 = {0}, w2 = {0};
        write_all(&a, &w1);
        ASSERT(restore(&b, w1.data, w1.size, 0) == 0);
        ASSERT(kv_state_hash(&a) == kv_state_hash(&b));
        ASSERT(a.op == b.op && a.key_count == b.key_count);
        write_all(&b, &w2);
        ASSERT(w1.size == w2.size && memcmp(w1.data, w2.data, w1.size) == 0);
        free(w1.data);
        free(w2.data);
    }
    kv_deinit(&a);
    kv_deinit(&b);
    free(stream);
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "kvsnap_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
