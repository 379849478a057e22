/* session — the table of sessions. See session.h. */
#include "kv/session.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/grow.h"
#include "common/bytes.h"
#include "kv/group.h"
#include "kv/lock.h"

/* Like kv.c's record digest seed, part of the state hash: never change. */
#define SESSION_DIGEST_SEED 0x636f686f72747373ull /* "cohortss" */

static uint64_t session_digest(const struct kv_session *s)
{
    uint8_t meta[28];
    put_u64(meta, s->id);
    put_u64(meta + 8, s->ttl_ms);
    put_u64(meta + 16, s->deadline_ms);
    put_u32(meta + 24, s->key_count);
    XXH3_state_t state;
    XXH3_INITSTATE(&state); /* see kv.c's record_digest() */
    XXH3_64bits_reset_withSeed(&state, SESSION_DIGEST_SEED);
    XXH3_64bits_update(&state, meta, sizeof(meta));
    for (uint32_t i = 0; i < s->key_count; i++) {
        const struct kv_session_key *k = &s->keys[i];
        uint8_t kmeta[12];
        put_u32(kmeta, k->key_size);
        put_u64(kmeta + 4, k->mod_op);
        XXH3_64bits_update(&state, kmeta, sizeof(kmeta));
        if (k->key_size > 0)
            XXH3_64bits_update(&state, k->key, k->key_size);
    }
    return XXH3_64bits_digest(&state);
}

static void redigest(struct kv_sessions *t, struct kv_session *s)
{
    t->digest_sum -= s->digest;
    s->digest = session_digest(s);
    t->digest_sum += s->digest;
}

void kv_sessions_init(struct kv_sessions *t)
{
    memset(t, 0, sizeof(*t));
}

static void free_session(struct kv_session *s)
{
    for (uint32_t i = 0; i < s->key_count; i++)
        free(s->keys[i].key);
    free(s->keys);
    s->keys = NULL;
    s->key_count = 0;
    s->key_capacity = 0;
}

void kv_sessions_clear(struct kv_sessions *t)
{
    for (uint64_t i = 0; i < t->count; i++)
        free_session(&t->items[i]);
    t->count = 0;
    kv_lock_clear_all(t);
    kv_group_clear_all(t);
    t->digest_sum = 0;
}

void kv_sessions_deinit(struct kv_sessions *t)
{
    kv_sessions_clear(t);
    free(t->items);
    free(t->locks);
    free(t->groups);
    memset(t, 0, sizeof(*t));
}

struct kv_session *kv_sessions_find(struct kv_sessions *t, uint64_t id)
{
    uint64_t lo = 0, hi = t->count;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (t->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->count && t->items[lo].id == id ? &t->items[lo] : NULL;
}

int kv_sessions_add(struct kv_sessions *t, uint64_t id, uint64_t ttl_ms,
                    uint64_t deadline_ms)
{
    ASSERT(id != 0);
    ASSERT(t->count == 0 || t->items[t->count - 1].id < id);
    if (!grow_array_u64((void **)&t->items, &t->capacity, t->count + 1,
                        sizeof(*t->items), 16))
        return -COHORT_ENOMEM;
    struct kv_session *s = &t->items[t->count++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->ttl_ms = ttl_ms;
    s->deadline_ms = deadline_ms;
    s->digest = session_digest(s);
    t->digest_sum += s->digest;
    return 0;
}

void kv_sessions_remove(struct kv_sessions *t, uint64_t i)
{
    ASSERT(i < t->count);
    t->digest_sum -= t->items[i].digest;
    free_session(&t->items[i]);
    memmove(&t->items[i], &t->items[i + 1],
            (t->count - i - 1) * sizeof(t->items[0]));
    t->count--;
}

static bool key_is(const struct kv_session_key *k, const uint8_t *key,
                   size_t key_size)
{
    return k->key_size == key_size &&
           (key_size == 0 || memcmp(k->key, key, key_size) == 0);
}

int kv_sessions_attach(struct kv_sessions *t, struct kv_session *s,
                       const uint8_t *key, size_t key_size, uint64_t mod_op)
{
    for (uint32_t i = 0; i < s->key_count; i++) {
        if (key_is(&s->keys[i], key, key_size)) {
            s->keys[i].mod_op = mod_op;
            redigest(t, s);
            return 0;
        }
    }
    if (s->key_count >= KV_SESSION_KEYS_MAX)
        return -COHORT_ENOSPC;
    if (!grow_array_u32((void **)&s->keys, &s->key_capacity,
                        (size_t)s->key_count + 1, sizeof(*s->keys), 4))
        return -COHORT_ENOMEM;
    uint8_t *copy = malloc(key_size ? key_size : 1);
    if (copy == NULL)
        return -COHORT_ENOMEM;
    if (key_size)
        memcpy(copy, key, key_size);
    s->keys[s->key_count++] = (struct kv_session_key){
        .key = copy, .key_size = (uint32_t)key_size, .mod_op = mod_op};
    redigest(t, s);
    return 0;
}

void kv_sessions_set_deadline(struct kv_sessions *t, struct kv_session *s,
                              uint64_t deadline_ms)
{
    s->deadline_ms = deadline_ms;
    redigest(t, s);
}

size_t kv_sessions_encoded_size(const struct kv_sessions *t)
{
    size_t size = 8;
    for (uint64_t i = 0; i < t->count; i++) {
        const struct kv_session *s = &t->items[i];
        size += 28;
        for (uint32_t k = 0; k < s->key_count; k++)
            size += 12 + (size_t)s->keys[k].key_size;
    }
    return size + kv_lock_encoded_size(t) + kv_group_encoded_size(t);
}

void kv_sessions_encode(const struct kv_sessions *t, uint8_t *out, size_t size)
{
    struct writer w = writer_make(out, size);
    writer_u64(&w, t->count);
    for (uint64_t i = 0; i < t->count; i++) {
        const struct kv_session *s = &t->items[i];
        writer_u64(&w, s->id);
        writer_u64(&w, s->ttl_ms);
        writer_u64(&w, s->deadline_ms);
        writer_u32(&w, s->key_count);
        for (uint32_t k = 0; k < s->key_count; k++) {
            writer_u32(&w, s->keys[k].key_size);
            writer_bytes(&w, s->keys[k].key, s->keys[k].key_size);
            writer_u64(&w, s->keys[k].mod_op);
        }
    }
    kv_lock_encode(t, &w);
    kv_group_encode(t, &w);
    ASSERT(w.ok);
    ASSERT(w.left == 0);
}

/* One session's keys from in into s (just added). */
static int decode_keys(struct kv_sessions *t, struct kv_session *s,
                       struct cursor *in, uint32_t key_count,
                       uint32_t key_size_max, const char **why)
{
    for (uint32_t k = 0; k < key_count; k++) {
        uint32_t size = cursor_u32(in);
        if (size > key_size_max) {
            *why = "ephemeral key over max-key-size";
            return -COHORT_ECORRUPT;
        }
        const uint8_t *key = cursor_take(in, size);
        uint64_t mod_op = cursor_u64(in);
        if (!in->ok) {
            *why = "sessions truncated";
            return -COHORT_ECORRUPT;
        }
        uint32_t before = s->key_count;
        int rc = kv_sessions_attach(t, s, key, size, mod_op);
        if (rc == -COHORT_ENOMEM)
            return rc;
        if (rc != 0 || s->key_count == before) {
            *why = "ephemeral key repeated";
            return -COHORT_ECORRUPT;
        }
    }
    return 0;
}

static int decode_all(struct kv_sessions *t, struct cursor *in,
                      uint32_t key_size_max, const char **why)
{
    uint64_t count = cursor_u64(in);
    if (!in->ok || count > KV_SESSIONS_MAX) {
        *why = "session count out of range";
        return -COHORT_ECORRUPT;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t id = cursor_u64(in);
        uint64_t ttl_ms = cursor_u64(in);
        uint64_t deadline_ms = cursor_u64(in);
        uint32_t key_count = cursor_u32(in);
        if (!in->ok) {
            *why = "sessions truncated";
            return -COHORT_ECORRUPT;
        }
        if (id == 0 || (t->count > 0 && t->items[t->count - 1].id >= id) ||
            ttl_ms < KV_SESSION_TTL_MIN_MS || ttl_ms > KV_SESSION_TTL_MAX_MS ||
            key_count > KV_SESSION_KEYS_MAX) {
            *why = "session id, ttl or key count out of range";
            return -COHORT_ECORRUPT;
        }
        int rc = kv_sessions_add(t, id, ttl_ms, deadline_ms);
        if (rc == 0)
            rc = decode_keys(t, &t->items[t->count - 1], in, key_count,
                             key_size_max, why);
        if (rc != 0)
            return rc;
    }
    int rc = kv_lock_decode(t, in, key_size_max, why);
    if (rc == 0)
        rc = kv_group_decode(t, in, key_size_max, why);
    if (rc != 0)
        return rc;
    if (in->left != 0) {
        *why = "trailing bytes after the sessions";
        return -COHORT_ECORRUPT;
    }
    return 0;
}

int kv_sessions_decode(struct kv_sessions *t, const uint8_t *data, size_t size,
                       uint32_t key_size_max, const char **why)
{
    ASSERT(t->count == 0);
    struct cursor in = cursor_make(data, size);
    int rc = decode_all(t, &in, key_size_max, why);
    if (rc != 0)
        kv_sessions_clear(t);
    return rc;
}

bool kv_sessions_invariants_hold(const struct kv_sessions *t)
{
    uint64_t sum = 0;
    if (t->count > KV_SESSIONS_MAX)
        return false;
    for (uint64_t i = 0; i < t->count; i++) {
        const struct kv_session *s = &t->items[i];
        if (s->id == 0 || (i > 0 && t->items[i - 1].id >= s->id))
            return false;
        if (s->digest != session_digest(s))
            return false;
        if (s->key_count > KV_SESSION_KEYS_MAX)
            return false;
        for (uint32_t a = 0; a < s->key_count; a++)
            for (uint32_t b = a + 1; b < s->key_count; b++)
                if (key_is(&s->keys[a], s->keys[b].key, s->keys[b].key_size))
                    return false;
        sum += s->digest;
    }
    for (uint64_t i = 0; i < t->lock_count; i++)
        sum += t->locks[i].digest;
    for (uint64_t i = 0; i < t->group_count; i++)
        sum += t->groups[i].digest;
    return sum == t->digest_sum && kv_lock_invariants_hold(t) &&
           kv_group_invariants_hold(t);
}
