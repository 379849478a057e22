/* snapshot — writing and restoring the store. See snapshot.h. */
#include "kv/snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "common/crc32c.h"

#define SNAPSHOT_MAGIC 0x53564b43u             /* "CKVS" read little-endian */
#define SNAPSHOT_END_MAGIC 0x45564b43u         /* "CKVE" */
#define SNAPSHOT_ACL_MAGIC 0x41564b43u         /* "CKVA" */
#define SNAPSHOT_SESSIONS_MAGIC 0x53534b43u    /* "CKSS" */
#define SNAPSHOT_ADDRESS_MAGIC 0x44414b43u     /* "CKAD" */
#define SNAPSHOT_INCARNATION_MAGIC 0x4e494b43u /* "CKIN" */
/* The largest ACL section restore reads (10000 users with every list full
 * would be more; such a group cannot snapshot, and says so). */
#define SNAPSHOT_ACL_SIZE_MAX (256u << 20)
#define SNAPSHOT_SESSIONS_SIZE_MAX (1024u << 20)

static_assert(KV_SNAPSHOT_HEADER_SIZE == 40, "header layout");
static_assert(KV_SNAPSHOT_RECORD_META_SIZE == 32, "record layout");
static_assert(KV_SNAPSHOT_TRAILER_SIZE == 16, "trailer layout");

/* The writing side: every byte goes through the running checksum. */
struct out {
    int (*write)(void *ctx, const void *data, size_t size);
    void *ctx;
    uint32_t crc;
    uint64_t offset;
    int rc; /* the first error; later writes are skipped */
};

static void out_bytes(struct out *o, const void *data, size_t size)
{
    if (o->rc != 0 || size == 0)
        return;
    o->crc = crc32c(o->crc, data, size);
    o->rc = o->write(o->ctx, data, size);
    ASSERT(o->rc <= 0);
    o->offset += size;
}

/* Format 1 while the acl has never changed, so that such a snapshot is
 * still read by a version from before the acl; 3 and 4 (with each record's
 * expiry) only while a key has one, 5 to 8 (sessions) only while a session
 * exists, 9 to 16 (the address table) only while it has an entry, for the
 * same reason. */
static uint16_t format_of(const struct kv *kv)
{
    uint16_t format = kv->acl.initialized ? 2 : 1;
    format = kv->expires_count > 0 ? format + 2 : format;
    format = kv->sessions.count > 0 ? format + 4 : format;
    format = kv->addresses.count > 0 ? format + 8 : format;
    return kv->incarnation != 0 ? format + 16 : format;
}

static bool format_has_acl(uint16_t format)
{
    return ((format - 1) & 1) != 0;
}

static bool format_has_expiry(uint16_t format)
{
    return ((format - 1) & 2) != 0;
}

static bool format_has_sessions(uint16_t format)
{
    return ((format - 1) & 4) != 0;
}

static bool format_has_addresses(uint16_t format)
{
    return ((format - 1) & 8) != 0;
}

static bool format_has_incarnation(uint16_t format)
{
    return ((format - 1) & 16) != 0;
}

static size_t meta_size(uint16_t format)
{
    return format_has_expiry(format) ? KV_SNAPSHOT_RECORD_META_SIZE + 8
                                     : KV_SNAPSHOT_RECORD_META_SIZE;
}

static void write_header(struct out *o, const struct kv *kv)
{
    uint8_t h[KV_SNAPSHOT_HEADER_SIZE];
    put_u32(h + 0, SNAPSHOT_MAGIC);
    put_u16(h + 4, format_of(kv));
    put_u16(h + 6, 0);
    put_u64(h + 8, kv->op);
    put_u64(h + 16, kv->key_count);
    put_u64(h + 24, kv->data_size);
    put_u32(h + 32, 0);
    put_u32(h + 36, crc32c(0, h, 36));
    out_bytes(o, h, sizeof(h));
}

static void encode_meta(uint8_t *m, const struct kv_record *r)
{
    put_u32(m + 0, r->key_size);
    put_u32(m + 4, r->value_size);
    put_u64(m + 8, r->version);
    put_u64(m + 16, r->create_op);
    put_u64(m + 24, r->mod_op);
    put_u64(m + 32, r->expire_at_ms);
}

static void write_record(struct out *o, const struct kv_record *r,
                         size_t meta_bytes)
{
    uint8_t meta[KV_SNAPSHOT_RECORD_META_SIZE + 8];
    encode_meta(meta, r);
    size_t data_size = (size_t)r->key_size + r->value_size;
    uint32_t crc = crc32c(0, meta, meta_bytes);
    crc = crc32c(crc, r->data, data_size);
    uint8_t tail[4];
    put_u32(tail, crc);
    out_bytes(o, meta, meta_bytes);
    out_bytes(o, r->data, data_size);
    out_bytes(o, tail, sizeof(tail));
}

static void write_acl(struct out *o, const struct kv *kv, uint8_t *acl,
                      size_t size)
{
    if (!format_has_acl(format_of(kv)))
        return;
    uint8_t h[8];
    put_u32(h, SNAPSHOT_ACL_MAGIC);
    put_u32(h + 4, (uint32_t)size);
    uint32_t crc = crc32c(crc32c(0, h, sizeof(h)), acl, size);
    uint8_t tail[4];
    put_u32(tail, crc);
    out_bytes(o, h, sizeof(h));
    out_bytes(o, acl, size);
    out_bytes(o, tail, sizeof(tail));
}

/* Formats 5 to 8: the sessions, after the users. */
static int write_sessions(struct out *o, const struct kv *kv)
{
    if (!format_has_sessions(format_of(kv)))
        return 0;
    size_t size = kv_sessions_encoded_size(&kv->sessions);
    if (size > SNAPSHOT_SESSIONS_SIZE_MAX)
        return -COHORT_ETOOBIG;
    uint8_t *data = malloc(size);
    if (data == NULL)
        return -COHORT_ENOMEM;
    kv_sessions_encode(&kv->sessions, data, size);
    uint8_t h[8];
    put_u32(h, SNAPSHOT_SESSIONS_MAGIC);
    put_u32(h + 4, (uint32_t)size);
    uint8_t tail[4];
    put_u32(tail, crc32c(crc32c(0, h, sizeof(h)), data, size));
    out_bytes(o, h, sizeof(h));
    out_bytes(o, data, size);
    out_bytes(o, tail, sizeof(tail));
    free(data);
    return 0;
}

/* Formats 9 to 16: the address table, after the sessions. */
static void write_addresses(struct out *o, const struct kv *kv)
{
    if (!format_has_addresses(format_of(kv)))
        return;
    uint8_t data[KV_ADDRESSES_ENCODED_MAX];
    size_t size = kv_addresses_encoded_size(&kv->addresses);
    kv_addresses_encode(&kv->addresses, data, size);
    uint8_t h[8];
    put_u32(h, SNAPSHOT_ADDRESS_MAGIC);
    put_u32(h + 4, (uint32_t)size);
    uint8_t tail[4];
    put_u32(tail, crc32c(crc32c(0, h, sizeof(h)), data, size));
    out_bytes(o, h, sizeof(h));
    out_bytes(o, data, size);
    out_bytes(o, tail, sizeof(tail));
}

/* Formats 17 to 32: the group's incarnation, after the address table. */
static void write_incarnation(struct out *o, const struct kv *kv)
{
    if (!format_has_incarnation(format_of(kv)))
        return;
    uint8_t data[8];
    put_u64(data, kv->incarnation);
    uint8_t h[8];
    put_u32(h, SNAPSHOT_INCARNATION_MAGIC);
    put_u32(h + 4, (uint32_t)sizeof(data));
    uint8_t tail[4];
    put_u32(tail, crc32c(crc32c(0, h, sizeof(h)), data, sizeof(data)));
    out_bytes(o, h, sizeof(h));
    out_bytes(o, data, sizeof(data));
    out_bytes(o, tail, sizeof(tail));
}

static void write_trailer(struct out *o, uint64_t state_hash)
{
    uint8_t t[KV_SNAPSHOT_TRAILER_SIZE];
    put_u32(t + 0, SNAPSHOT_END_MAGIC);
    put_u64(t + 4, state_hash);
    out_bytes(o, t, 12);
    put_u32(t + 12, o->crc);
    out_bytes(o, t + 12, 4);
}

/* A snapshot being written: the stream is the store as of its start (op),
 * whether it is written at once (kv_snapshot_write) or in slices while the
 * store changes (kv_snapshot_begin). Records go out in key order; last is
 * the key of the last one written. A key not yet written that changes, is
 * deleted or is created meanwhile is first noted in pre: a copy of its
 * record as of the start, or an absence marker (version 0) for a key
 * created since. The walk merges the store's index with pre, and pre wins
 * a tie. */
struct kv_slicer {
    struct out o;
    size_t meta_bytes;
    /* The store at the start: checked against what was written. */
    uint64_t op, key_count, digest_sum, state_hash;
    uint64_t written, written_digest;
    /* The users, sessions and address table, encoded at the start: they
     * follow the records. */
    uint8_t *tail;
    size_t tail_size, tail_cap;
    uint8_t *last;
    size_t last_size, last_cap;
    bool started; /* a record was walked: last is set */
    bool walked;  /* every record was walked */
    struct kv_index pre;
    /* After a FLUSHALL or a restore mid-walk: the store's index and its
     * records as they were, which the walk goes on through (nothing changes
     * them any more) and which are freed at its end. */
    struct kv_index retired;
    bool has_retired;
};

static int tail_append(void *ctx, const void *data, size_t size)
{
    struct kv_slicer *s = ctx;
    if (size > SIZE_MAX - s->tail_size ||
        !grow_bytes(&s->tail, &s->tail_cap, s->tail_size + size, 256))
        return -COHORT_ENOMEM;
    memcpy(s->tail + s->tail_size, data, size);
    s->tail_size += size;
    return 0;
}

/* Free the records of x, and its nodes. */
static void free_index(struct kv_index *x)
{
    for (const struct kv_index_node *n = kv_index_seek(x, NULL, 0); n != NULL;
         n = kv_index_next(n))
        free((void *)n->record);
    kv_index_clear(x);
}

static void slicer_free(struct kv_slicer *s)
{
    free_index(&s->pre);
    if (s->has_retired)
        free_index(&s->retired);
    s->has_retired = false;
    free(s->tail);
    free(s->last);
    s->tail = s->last = NULL;
}

/* Write the header and encode what follows the records. */
static int slicer_start(struct kv_slicer *s, const struct kv *kv,
                        int (*write)(void *ctx, const void *data, size_t size),
                        void *ctx, struct cohort_err *err)
{
    memset(s, 0, sizeof(*s));
    kv_index_init(&s->pre, kv->config.hash_seed);
    s->o = (struct out){.write = write, .ctx = ctx};
    s->meta_bytes = meta_size(format_of(kv));
    s->op = kv->op;
    s->key_count = kv->key_count;
    s->digest_sum = kv->digest_sum;
    s->state_hash = kv_state_hash(kv);
    size_t acl_size = kv->acl.initialized ? acl_encoded_size(&kv->acl) : 0;
    if (acl_size > SNAPSHOT_ACL_SIZE_MAX)
        return err_set(err, -COHORT_ETOOBIG,
                       "snapshot: the users take %zu bytes, over the %u a "
                       "snapshot holds; delete users or rules",
                       acl_size, SNAPSHOT_ACL_SIZE_MAX);
    uint8_t *acl = acl_size ? malloc(acl_size) : NULL;
    if (acl_size && acl == NULL)
        return err_set(err, -COHORT_ENOMEM,
                       "snapshot: no memory for the %zu bytes of users",
                       acl_size);
    if (acl)
        acl_encode(&kv->acl, acl, acl_size);
    struct out tail = {.write = tail_append, .ctx = s};
    write_acl(&tail, kv, acl, acl_size);
    free(acl);
    int rc = write_sessions(&tail, kv);
    if (rc != 0)
        return err_set(err, rc,
                       "snapshot: cannot write the %" PRIu64
                       " sessions: %s; close unused sessions",
                       kv->sessions.count, cohort_strerror(rc));
    write_addresses(&tail, kv);
    write_incarnation(&tail, kv);
    if (tail.rc != 0)
        return err_set(err, tail.rc,
                       "snapshot: no memory for the users, "
                       "sessions and addresses");
    write_header(&s->o, kv);
    return 0;
}

/* Whether key comes after the last record walked (so is not written yet). */
static bool slicer_ahead(const struct kv_slicer *s, const uint8_t *key,
                         size_t key_size)
{
    if (s->walked || s->has_retired)
        return false; /* the walk no longer reads the store */
    return !s->started ||
           kv_key_compare(key, key_size, s->last, s->last_size) > 0;
}

/* The first node of x past the last key walked. */
static const struct kv_index_node *slicer_next(const struct kv_slicer *s,
                                               const struct kv_index *x)
{
    if (!s->started)
        return kv_index_seek(x, NULL, 0);
    const struct kv_index_node *n = kv_index_seek(x, s->last, s->last_size);
    if (n != NULL &&
        kv_key_compare(kv_record_key(n->record), n->record->key_size, s->last,
                       s->last_size) == 0)
        n = kv_index_next(n);
    return n;
}

/* Walk on through index (the store's) and pre for about budget bytes of
 * records. */
static void slicer_walk(struct kv_slicer *s, const struct kv_index *index,
                        size_t budget)
{
    const struct kv_index_node *a = slicer_next(s, index);
    const struct kv_index_node *b = slicer_next(s, &s->pre);
    const struct kv_record *last = NULL;
    size_t spent = 0;
    while ((a != NULL || b != NULL) && s->o.rc == 0 && spent < budget) {
        int c =
            a == NULL ? 1
            : b == NULL
                ? -1
                : kv_key_compare(kv_record_key(a->record), a->record->key_size,
                                 kv_record_key(b->record), b->record->key_size);
        const struct kv_record *r;
        if (c < 0) {
            r = a->record;
            a = kv_index_next(a);
        } else {
            r = b->record;
            b = kv_index_next(b);
            if (c == 0)
                a = kv_index_next(a);
        }
        last = r;
        spent += 64;
        if (r->version == 0)
            continue; /* created after the start */
        write_record(&s->o, r, s->meta_bytes);
        s->written++;
        s->written_digest += r->digest;
        spent += (size_t)r->key_size + r->value_size;
    }
    if (a == NULL && b == NULL)
        s->walked = true;
    if (last == NULL || s->walked)
        return;
    if (!grow_bytes_exact(&s->last, &s->last_cap, last->key_size)) {
        s->o.rc = -COHORT_ENOMEM;
        return;
    }
    if (last->key_size) /* the empty key leaves s->last NULL */
        memcpy(s->last, kv_record_key(last), last->key_size);
    s->last_size = last->key_size;
    s->started = true;
}

/* After the walk: the sections and the trailer, and the check that the
 * records written are exactly the store's at the start. */
static int slicer_finish(struct kv_slicer *s, struct cohort_err *err)
{
    out_bytes(&s->o, s->tail, s->tail_size);
    write_trailer(&s->o, s->state_hash);
    if (s->o.rc != 0)
        return err_set(err, s->o.rc, "snapshot: write at byte %" PRIu64 ": %s",
                       s->o.offset, cohort_strerror(s->o.rc));
    if (s->written != s->key_count || s->written_digest != s->digest_sum)
        return err_set(err, -COHORT_ECORRUPT,
                       "snapshot of op %" PRIu64 ": wrote %" PRIu64
                       " records, not the %" PRIu64
                       " the store held (a bug); the snapshot is not used",
                       s->op, s->written, s->key_count);
    return 0;
}

int kv_snapshot_write(const struct kv *kv,
                      int (*write)(void *ctx, const void *data, size_t size),
                      void *ctx, struct cohort_err *err)
{
    /* Records in key order, as the ordered index holds them: a walk of its
     * bottom level, no sort and no array of the keys (a snapshot of 10M
     * keys used to sort 80 MB of pointers in the forked child). */
    ASSERT(kv->index.count == kv->key_count);
    struct kv_slicer s;
    int rc = slicer_start(&s, kv, write, ctx, err);
    if (rc == 0) {
        slicer_walk(&s, &kv->index, SIZE_MAX);
        rc = slicer_finish(&s, err);
    }
    slicer_free(&s);
    return rc;
}

int kv_snapshot_begin(struct kv *kv,
                      int (*write)(void *ctx, const void *data, size_t size),
                      void *ctx, struct cohort_err *err)
{
    ASSERT(kv->slicer == NULL);
    struct kv_slicer *s = malloc(sizeof(*s));
    if (s == NULL)
        return err_set(err, -COHORT_ENOMEM, "snapshot: out of memory");
    int rc = slicer_start(s, kv, write, ctx, err);
    if (rc != 0) {
        slicer_free(s);
        free(s);
        return rc;
    }
    kv->slicer = s;
    return 0;
}

int kv_snapshot_step(struct kv *kv, size_t budget, bool *done,
                     struct cohort_err *err)
{
    struct kv_slicer *s = kv->slicer;
    ASSERT(s != NULL);
    if (!s->walked)
        slicer_walk(s, s->has_retired ? &s->retired : &kv->index, budget);
    *done = s->walked || s->o.rc != 0;
    if (!*done)
        return 0;
    int rc = slicer_finish(s, err);
    kv_snapshot_abort(kv);
    return rc;
}

void kv_snapshot_abort(struct kv *kv)
{
    if (kv->slicer == NULL)
        return;
    slicer_free(kv->slicer);
    free(kv->slicer);
    kv->slicer = NULL;
}

/* Whether pre holds key already. */
static bool pre_has(const struct kv_slicer *s, const uint8_t *key,
                    size_t key_size)
{
    const struct kv_index_node *n = kv_index_seek(&s->pre, key, key_size);
    return n != NULL && kv_key_compare(kv_record_key(n->record),
                                       n->record->key_size, key, key_size) == 0;
}

static void pre_add(struct kv_slicer *s, const struct kv_record *r,
                    size_t data_size)
{
    struct kv_record *copy = malloc(sizeof(*copy) + data_size);
    if (copy == NULL) {
        s->o.rc = -COHORT_ENOMEM; /* the snapshot fails; nothing is wrong */
        return;
    }
    memcpy(copy, r, sizeof(*copy) + data_size);
    if (kv_index_insert(&s->pre, copy) != 0) {
        free(copy);
        s->o.rc = -COHORT_ENOMEM;
    }
}

void kv_snapshot_note_change(struct kv *kv, const struct kv_record *r)
{
    struct kv_slicer *s = kv->slicer;
    if (s == NULL || s->o.rc != 0 ||
        !slicer_ahead(s, kv_record_key(r), r->key_size) ||
        pre_has(s, kv_record_key(r), r->key_size))
        return;
    pre_add(s, r, (size_t)r->key_size + r->value_size);
}

void kv_snapshot_note_create(struct kv *kv, const uint8_t *key, size_t key_size)
{
    struct kv_slicer *s = kv->slicer;
    if (s == NULL || s->o.rc != 0 || !slicer_ahead(s, key, key_size) ||
        pre_has(s, key, key_size))
        return;
    struct kv_record *marker = calloc(1, sizeof(*marker) + key_size);
    if (marker == NULL) {
        s->o.rc = -COHORT_ENOMEM;
        return;
    }
    marker->key_size = (uint32_t)key_size; /* version 0: absent */
    memcpy(marker->data, key, key_size);
    if (kv_index_insert(&s->pre, marker) != 0) {
        free(marker);
        s->o.rc = -COHORT_ENOMEM;
    }
}

bool kv_snapshot_take_records(struct kv *kv)
{
    struct kv_slicer *s = kv->slicer;
    /* After a first flush the store holds only keys made since, which the
     * walk does not read. */
    if (s == NULL || s->walked || s->o.rc != 0 || s->has_retired)
        return false;
    s->retired = kv->index;
    s->has_retired = true;
    kv->records_handed_to_slicer++;
    kv_index_init(&kv->index, kv->config.hash_seed);
    return true;
}

/* The reading side: every byte goes through the running checksum. */
struct in {
    int (*read)(void *ctx, void *data, size_t size, size_t *got);
    void *ctx;
    uint32_t crc;
    uint64_t offset;
    struct cohort_err *err;
};

static int in_bytes(struct in *in, void *data, size_t size, const char *what)
{
    size_t done = 0;
    while (done < size) {
        size_t got = 0;
        int rc = in->read(in->ctx, (uint8_t *)data + done, size - done, &got);
        if (rc != 0)
            return err_set(in->err, rc,
                           "snapshot: read at byte %" PRIu64 ": %s",
                           in->offset + done, cohort_strerror(rc));
        ASSERT(got <= size - done);
        if (got == 0)
            return err_set(in->err, -COHORT_ECORRUPT,
                           "snapshot: truncated at byte %" PRIu64
                           " (reading %s)",
                           in->offset + done, what);
        done += got;
    }
    in->crc = crc32c(in->crc, data, size);
    in->offset += size;
    return 0;
}

/* The first allocation in_bytes_growing() makes for a payload, and how much
 * it reads before growing again. */
#define SNAPSHOT_READ_GROW_MIN (64u << 10)

/* in_bytes() of size bytes into *data (capacity *cap, grow.h), growing it
 * as the bytes arrive rather than to the size claimed: each step reads
 * max(SNAPSHOT_READ_GROW_MIN, what it read so far) more, so a stream that
 * claims 1 GiB and ends early has made this buffer at most
 * max(SNAPSHOT_READ_GROW_MIN, twice the bytes it sent). A buffer already
 * large enough is not touched. At least one byte is allocated, even for
 * size 0. -COHORT_ENOMEM names `what` and the byte offset `at`. */
static int in_bytes_growing(struct in *in, uint8_t **data, size_t *cap,
                            size_t size, const char *what, uint64_t at)
{
    size_t done = 0;
    bool grown = grow_bytes_exact(data, cap, 1);
    while (grown && done < size) {
        size_t step =
            done < SNAPSHOT_READ_GROW_MIN ? SNAPSHOT_READ_GROW_MIN : done;
        if (step > size - done)
            step = size - done;
        if (!(grown = grow_bytes_exact(data, cap, done + step)))
            break;
        ASSERT(*cap >= done + step);
        int rc = in_bytes(in, *data + done, step, what);
        if (rc != 0)
            return rc;
        done += step;
    }
    if (!grown)
        return err_set(in->err, -COHORT_ENOMEM,
                       "snapshot: no memory for %s at byte %" PRIu64, what, at);
    ASSERT(done == size);
    return 0;
}

static int corrupt(struct in *in, uint64_t at, const char *what)
{
    return err_set(in->err, -COHORT_ECORRUPT,
                   "snapshot: corrupt at byte %" PRIu64 ": %s", at, what);
}

struct header {
    uint16_t format;
    uint64_t op;
    uint64_t key_count;
    uint64_t data_size;
};

static int read_header(struct in *in, struct header *h)
{
    uint8_t b[KV_SNAPSHOT_HEADER_SIZE];
    int rc = in_bytes(in, b, sizeof(b), "the header");
    if (rc != 0)
        return rc;
    if (get_u32(b) != SNAPSHOT_MAGIC)
        return corrupt(in, 0, "not a cohort kv snapshot (bad magic)");
    if (get_u32(b + 36) != crc32c(0, b, 36))
        return corrupt(in, 0, "header checksum mismatch");
    h->format = get_u16(b + 4);
    if (h->format < 1 || h->format > KV_SNAPSHOT_FORMAT)
        return err_set(in->err, -COHORT_ENOTSUP,
                       "snapshot: format %u; this version reads formats 1 "
                       "to %u (upgrade cohort)",
                       h->format, KV_SNAPSHOT_FORMAT);
    if (get_u16(b + 6) != 0 || get_u32(b + 32) != 0)
        return corrupt(in, 0, "reserved header field not zero");
    h->op = get_u64(b + 8);
    h->key_count = get_u64(b + 16);
    h->data_size = get_u64(b + 24);
    return 0;
}

/* Scratch space for one record and the key before it, grown to the largest
 * record seen (the limits bound it), so that a small snapshot does not cost
 * a buffer of max-value-size, and grown as a record's bytes arrive, so that
 * a record's claimed size does not either (in_bytes_growing()). */
struct scratch {
    uint8_t *data; /* key and value of the record being read */
    size_t data_cap;
    uint8_t *prev_key; /* key of the record before it */
    size_t prev_key_cap;
    size_t prev_key_size;
    bool have_prev;
};

static int key_compare(const uint8_t *a, size_t a_size, const uint8_t *b,
                       size_t b_size)
{
    size_t common = a_size < b_size ? a_size : b_size;
    int c = common ? memcmp(a, b, common) : 0;
    if (c != 0)
        return c;
    return (a_size > b_size) - (a_size < b_size);
}

/* Check a record's sizes before reading its bytes: the largest any store
 * allows bound what a corrupt size can make us read. Not the local
 * max-key-size and max-value-size: a store written under larger ones is
 * this group's state (kv_apply_config()). */
static int check_sizes(struct in *in, uint64_t at, uint32_t key_size,
                       uint32_t value_size)
{
    if (key_size > KV_KEY_SIZE_LIMIT)
        return err_set(in->err, -COHORT_ECORRUPT,
                       "snapshot: corrupt at byte %" PRIu64 ": key of %" PRIu32
                       " bytes is over the largest allowed, %u",
                       at, key_size, KV_KEY_SIZE_LIMIT);
    if (value_size > KV_VALUE_SIZE_LIMIT)
        return err_set(in->err, -COHORT_ECORRUPT,
                       "snapshot: corrupt at byte %" PRIu64
                       ": value of %" PRIu32 " bytes is over the largest "
                       "allowed, %u",
                       at, value_size, KV_VALUE_SIZE_LIMIT);
    return 0;
}

/* Before inserting a record: if the table is full, size it for what the
 * header claims, but for no more than KV_RESTORE_TRUST_FACTOR times the
 * records in so far (kv/snapshot.h). Best effort: on failure the insert
 * doubles the table as usual. */
static void reserve_in_stages(struct kv *kv, uint64_t key_count_claimed)
{
    uint64_t keys = kv->key_count * KV_RESTORE_TRUST_FACTOR;
    if (keys > key_count_claimed)
        keys = key_count_claimed;
    if (keys > KV_RESERVE_KEYS_MAX)
        keys = KV_RESERVE_KEYS_MAX;
    (void)kv_reserve_when_full(kv, keys);
}

static int read_record(struct in *in, struct kv *kv, struct scratch *s,
                       size_t meta_bytes, uint64_t key_count_claimed)
{
    uint64_t at = in->offset;
    uint8_t meta[KV_SNAPSHOT_RECORD_META_SIZE + 8] = {0};
    int rc = in_bytes(in, meta, meta_bytes, "a record");
    if (rc != 0)
        return rc;
    uint32_t key_size = get_u32(meta + 0);
    uint32_t value_size = get_u32(meta + 4);
    if ((rc = check_sizes(in, at, key_size, value_size)) != 0)
        return rc;
    size_t data_size = (size_t)key_size + value_size;
    /* Grown as the bytes arrive, never NULL (an empty key with an empty
     * value, which Redis allows, still gets a byte): the key and value
     * pointers below are offsets of it. */
    if ((rc = in_bytes_growing(in, &s->data, &s->data_cap, data_size,
                               "a record", at)) != 0)
        return rc;
    uint8_t tail[4];
    if ((rc = in_bytes(in, tail, sizeof(tail), "a record checksum")) != 0)
        return rc;
    uint32_t crc = crc32c(crc32c(0, meta, meta_bytes), s->data, data_size);
    if (get_u32(tail) != crc)
        return corrupt(in, at, "record checksum mismatch");
    if (s->have_prev &&
        key_compare(s->prev_key, s->prev_key_size, s->data, key_size) >= 0)
        return corrupt(in, at, "keys out of order or repeated");
    if (!grow_bytes_exact(&s->prev_key, &s->prev_key_cap, key_size))
        return err_set(in->err, -COHORT_ENOMEM,
                       "snapshot: no memory for a record at byte %" PRIu64, at);
    reserve_in_stages(kv, key_count_claimed);
    rc = kv_insert(kv, s->data, key_size, s->data + key_size, value_size,
                   get_u64(meta + 8), get_u64(meta + 16), get_u64(meta + 24));
    if (rc == -COHORT_ENOMEM)
        return err_set(in->err, rc,
                       "snapshot: no memory for the record at "
                       "byte %" PRIu64,
                       at);
    if (rc == -COHORT_EEXIST)
        return corrupt(in, at, "key repeated");
    if (rc != 0)
        return corrupt(in, at, "record version or ops out of range");
    if (get_u64(meta + 32) != 0)
        (void)kv_expire_set(kv, s->data, key_size, get_u64(meta + 32));
    if (key_size)
        memcpy(s->prev_key, s->data, key_size);
    s->prev_key_size = key_size;
    s->have_prev = true;
    return 0;
}

/* One optional section after the records: u32 magic, u32 size, size bytes,
 * u32 CRC-32C of all before it. Its payload in *data (malloc'd, the caller
 * frees it) once the magic, the bound and the checksum hold; `name` ("the
 * users") and `hint` (after the bad-magic message) name it in errors. */
static int read_section(struct in *in, uint32_t magic, uint32_t size_max,
                        const char *name, const char *hint, uint8_t **data,
                        uint32_t *size)
{
    uint64_t at = in->offset;
    uint8_t h[8];
    *data = NULL;
    int rc = in_bytes(in, h, sizeof(h), name);
    if (rc != 0)
        return rc;
    *size = get_u32(h + 4);
    if (get_u32(h) != magic)
        return err_set(in->err, -COHORT_ECORRUPT,
                       "snapshot: corrupt at byte %" PRIu64
                       ": bad magic of %s%s",
                       at, name, hint);
    if (*size > size_max)
        return err_set(in->err, -COHORT_ECORRUPT,
                       "snapshot: corrupt at byte %" PRIu64 ": %s: too large",
                       at, name);
    /* Grown as the bytes arrive: the size is the sender's word. */
    size_t cap = 0;
    char what[64];
    snprintf(what, sizeof(what), "the checksum of %s", name);
    uint8_t tail[4];
    rc = in_bytes_growing(in, data, &cap, *size, name, at);
    if (rc == 0)
        rc = in_bytes(in, tail, sizeof(tail), what);
    if (rc == 0 &&
        get_u32(tail) != crc32c(crc32c(0, h, sizeof(h)), *data, *size))
        rc = err_set(in->err, -COHORT_ECORRUPT,
                     "snapshot: corrupt at byte %" PRIu64
                     ": checksum mismatch in %s",
                     at, name);
    if (rc != 0) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

/* Format 2: the users, after the records. */
static int read_acl(struct in *in, struct kv *kv)
{
    uint64_t at = in->offset;
    uint8_t *data;
    uint32_t size;
    int rc = read_section(in, SNAPSHOT_ACL_MAGIC, SNAPSHOT_ACL_SIZE_MAX,
                          "the users", " (wrong key count?)", &data, &size);
    if (rc != 0)
        return rc;
    char why[ACL_ERROR_MAX];
    if ((rc = acl_decode(&kv->acl, data, size, why)) != 0)
        rc = err_set(in->err, rc == -COHORT_ENOMEM ? rc : -COHORT_ECORRUPT,
                     "snapshot: corrupt at byte %" PRIu64 ": the users: %s", at,
                     why);
    free(data);
    return rc;
}

static int read_sessions(struct in *in, struct kv *kv)
{
    uint64_t at = in->offset;
    uint8_t *data;
    uint32_t size;
    int rc =
        read_section(in, SNAPSHOT_SESSIONS_MAGIC, SNAPSHOT_SESSIONS_SIZE_MAX,
                     "the sessions", "", &data, &size);
    if (rc != 0)
        return rc;
    const char *why = NULL;
    if ((rc = kv_sessions_decode(&kv->sessions, data, size, KV_KEY_SIZE_LIMIT,
                                 &why)) != 0)
        rc = err_set(in->err, rc == -COHORT_ENOMEM ? rc : -COHORT_ECORRUPT,
                     "snapshot: corrupt at byte %" PRIu64 ": the sessions: %s",
                     at, why ? why : "no memory");
    free(data);
    return rc;
}

/* Formats 9 to 16: the address table. */
static int read_addresses(struct in *in, struct kv *kv)
{
    uint64_t at = in->offset;
    uint8_t *data;
    uint32_t size;
    int rc = read_section(in, SNAPSHOT_ADDRESS_MAGIC, KV_ADDRESSES_ENCODED_MAX,
                          "the address table", "", &data, &size);
    if (rc != 0)
        return rc;
    const char *why = NULL;
    if (kv_addresses_decode(&kv->addresses, data, size, &why) != 0)
        rc = err_set(in->err, -COHORT_ECORRUPT,
                     "snapshot: corrupt at byte %" PRIu64 ": %s", at, why);
    free(data);
    return rc;
}

/* Formats 17 to 32: the incarnation, 8 bytes, nonzero. */
static int read_incarnation(struct in *in, struct kv *kv)
{
    uint64_t at = in->offset;
    uint8_t *data;
    uint32_t size;
    int rc = read_section(in, SNAPSHOT_INCARNATION_MAGIC, 8, "the incarnation",
                          "", &data, &size);
    if (rc != 0)
        return rc;
    kv->incarnation = size == 8 ? get_u64(data) : 0;
    free(data);
    if (kv->incarnation == 0)
        return corrupt(in, at, "the incarnation is not 8 nonzero bytes");
    return 0;
}

static int read_trailer(struct in *in, const struct kv *kv)
{
    uint64_t at = in->offset;
    uint8_t t[KV_SNAPSHOT_TRAILER_SIZE];
    int rc = in_bytes(in, t, 12, "the trailer");
    if (rc != 0)
        return rc;
    uint32_t crc = in->crc;
    if ((rc = in_bytes(in, t + 12, 4, "the trailer")) != 0)
        return rc;
    if (get_u32(t) != SNAPSHOT_END_MAGIC)
        return corrupt(in, at, "bad trailer magic (wrong key count?)");
    if (get_u32(t + 12) != crc)
        return corrupt(in, at, "snapshot checksum mismatch");
    if (get_u64(t + 4) != kv_state_hash(kv))
        return corrupt(in, at, "state hash mismatch");
    return 0;
}

static int restore_records(struct in *in, struct kv *kv, const struct header *h)
{
    struct scratch s = {0};
    int rc = 0;
    for (uint64_t i = 0; i < h->key_count && rc == 0; i++)
        rc = read_record(in, kv, &s, meta_size(h->format), h->key_count);
    free(s.data);
    free(s.prev_key);
    return rc;
}

static int restore_all(struct in *in, struct kv *kv)
{
    struct header h = {0};
    int rc = read_header(in, &h);
    if (rc != 0)
        return rc;
    kv->op = h.op;
    /* Best effort, and bounded (kv/snapshot.h): a count the records then
     * contradict is refused below. Past it the table grows in stages
     * (reserve_in_stages()). */
    (void)kv_reserve(kv, h.key_count < KV_RESTORE_RESERVE_KEYS
                             ? h.key_count
                             : KV_RESTORE_RESERVE_KEYS);
    if ((rc = restore_records(in, kv, &h)) != 0)
        return rc;
    if (format_has_acl(h.format) && (rc = read_acl(in, kv)) != 0)
        return rc;
    if (format_has_sessions(h.format) && (rc = read_sessions(in, kv)) != 0)
        return rc;
    if (format_has_addresses(h.format) && (rc = read_addresses(in, kv)) != 0)
        return rc;
    if (format_has_incarnation(h.format) &&
        (rc = read_incarnation(in, kv)) != 0)
        return rc;
    if ((rc = read_trailer(in, kv)) != 0)
        return rc;
    /* The header's counts are covered by its checksum and the records by
     * theirs; both must tell the same story. */
    if (kv->key_count != h.key_count || kv->data_size != h.data_size)
        return corrupt(in, 0, "header counts do not match the records");
    DEBUG_ASSERT(kv_invariants_hold(kv));
    return 0;
}

int kv_restore(struct kv *kv,
               int (*read)(void *ctx, void *data, size_t size, size_t *got),
               void *ctx, struct cohort_err *err)
{
    kv_clear(kv); /* which bumps kv->addresses_changes */
    struct in in = {.read = read, .ctx = ctx, .err = err};
    int rc = restore_all(&in, kv);
    if (rc != 0)
        kv_clear(kv);
    ASSERT(rc <= 0);
    /* The messages up to the snapshot's op were published before it: this
     * member never applied them and cannot replay them. */
    history_reset(&kv->history, kv->op);
    history_reset(&kv->changes, kv->op);
    if (kv->publish_hook.reset != NULL)
        kv->publish_hook.reset(kv->publish_hook.ctx, kv->op);
    return rc;
}
