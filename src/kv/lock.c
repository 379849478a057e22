/* lock — locks with fencing tokens. See lock.h. */
#include "kv/lock.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/grow.h"

/* Part of the state hash: never change. */
#define LOCK_DIGEST_SEED 0x636f686f72746c6bull /* "cohortlk" */

static uint64_t lock_digest(const struct kv_lock *l)
{
    XXH3_state_t state;
    XXH3_INITSTATE(&state); /* see kv.c's record_digest() */
    XXH3_64bits_reset_withSeed(&state, LOCK_DIGEST_SEED);
    uint8_t meta[8];
    put_u32(meta, l->name_size);
    put_u32(meta + 4, l->count);
    XXH3_64bits_update(&state, meta, sizeof(meta));
    if (l->name_size > 0)
        XXH3_64bits_update(&state, l->name, l->name_size);
    for (uint32_t i = 0; i < l->count; i++) {
        uint8_t e[16];
        put_u64(e, l->queue[i].session);
        put_u64(e + 8, l->queue[i].token);
        XXH3_64bits_update(&state, e, sizeof(e));
    }
    return XXH3_64bits_digest(&state);
}

static void redigest(struct kv_sessions *t, struct kv_lock *l)
{
    t->digest_sum -= l->digest;
    l->digest = lock_digest(l);
    t->digest_sum += l->digest;
}

struct kv_lock *kv_lock_find(struct kv_sessions *t, const uint8_t *name,
                             size_t name_size)
{
    for (uint64_t i = 0; i < t->lock_count; i++) {
        struct kv_lock *l = &t->locks[i];
        if (l->name_size == name_size &&
            (name_size == 0 || memcmp(l->name, name, name_size) == 0))
            return l;
    }
    return NULL;
}

static void must(bool ok)
{
    if (!ok)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
}

/* A new lock with an empty queue (the caller adds its first entry). */
static struct kv_lock *lock_new(struct kv_sessions *t, const uint8_t *name,
                                size_t name_size)
{
    must(grow_array_u64((void **)&t->locks, &t->lock_capacity,
                        t->lock_count + 1, sizeof(*t->locks), 8));
    struct kv_lock *l = &t->locks[t->lock_count++];
    memset(l, 0, sizeof(*l));
    l->name = malloc(name_size ? name_size : 1);
    must(l->name != NULL);
    if (name_size)
        memcpy(l->name, name, name_size);
    l->name_size = (uint32_t)name_size;
    l->digest = lock_digest(l);
    t->digest_sum += l->digest;
    return l;
}

static void lock_free(struct kv_sessions *t, struct kv_lock *l)
{
    t->digest_sum -= l->digest;
    free(l->name);
    free(l->queue);
    uint64_t i = (uint64_t)(l - t->locks);
    t->locks[i] = t->locks[t->lock_count - 1];
    t->lock_count--;
}

static void push(struct kv_lock *l, uint64_t session, uint64_t token)
{
    must(grow_array_u32((void **)&l->queue, &l->capacity, (size_t)l->count + 1,
                        sizeof(*l->queue), 4));
    l->queue[l->count++] = (struct kv_lock_entry){session, token};
}

int64_t kv_lock_position(const struct kv_sessions *t, const uint8_t *name,
                         size_t name_size, uint64_t session, uint64_t *token)
{
    /* kv_lock_find() only looks. */
    struct kv_lock *l = kv_lock_find((struct kv_sessions *)t, name, name_size);
    for (uint32_t i = 0; l != NULL && i < l->count; i++) {
        if (l->queue[i].session != session)
            continue;
        if (i == 0)
            *token = l->queue[0].token;
        return i;
    }
    return -1;
}

enum kv_lock_result kv_lock_acquire(struct kv_sessions *t, const uint8_t *name,
                                    size_t name_size, uint64_t session,
                                    bool wait, uint64_t op, uint64_t *token)
{
    ASSERT(op != 0);
    struct kv_lock *l = kv_lock_find(t, name, name_size);
    if (l == NULL) {
        if (t->lock_count >= KV_LOCKS_MAX)
            return KV_LOCK_FULL;
        l = lock_new(t, name, name_size);
        push(l, session, op);
        redigest(t, l);
        *token = op;
        return KV_LOCK_GRANTED;
    }
    ASSERT(l->count > 0);
    if (l->queue[0].session == session) {
        *token = l->queue[0].token;
        return KV_LOCK_GRANTED;
    }
    for (uint32_t i = 1; i < l->count; i++)
        if (l->queue[i].session == session)
            return KV_LOCK_QUEUED;
    if (!wait)
        return KV_LOCK_BUSY;
    if (l->count >= KV_LOCK_WAITERS_MAX)
        return KV_LOCK_FULL;
    push(l, session, 0);
    redigest(t, l);
    return KV_LOCK_QUEUED;
}

/* Remove entry i of l; if it held the lock, grant the next at op. Frees
 * the lock when its queue empties (l is then gone). */
static void remove_entry(struct kv_sessions *t, struct kv_lock *l, uint32_t i,
                         uint64_t op)
{
    memmove(&l->queue[i], &l->queue[i + 1],
            (l->count - i - 1) * sizeof(l->queue[0]));
    l->count--;
    if (l->count == 0) {
        lock_free(t, l);
        return;
    }
    if (i == 0)
        l->queue[0].token = op;
    redigest(t, l);
}

bool kv_lock_release(struct kv_sessions *t, const uint8_t *name,
                     size_t name_size, uint64_t session, uint64_t op)
{
    struct kv_lock *l = kv_lock_find(t, name, name_size);
    if (l == NULL)
        return false;
    for (uint32_t i = 0; i < l->count; i++) {
        if (l->queue[i].session == session) {
            remove_entry(t, l, i, op);
            return true;
        }
    }
    return false;
}

void kv_lock_session_ended(struct kv_sessions *t, uint64_t session, uint64_t op)
{
    uint64_t i = 0;
    while (i < t->lock_count) {
        struct kv_lock *l = &t->locks[i];
        uint32_t j = 0;
        while (j < l->count && l->queue[j].session != session)
            j++;
        if (j == l->count) {
            i++;
            continue;
        }
        bool last = l->count == 1;
        remove_entry(t, l, j, op);
        if (!last)
            i++; /* freed: the last lock moved into slot i; look at it */
    }
}

uint64_t kv_lock_token(struct kv_sessions *t, const uint8_t *name,
                       size_t name_size)
{
    struct kv_lock *l = kv_lock_find(t, name, name_size);
    return l != NULL ? l->queue[0].token : 0;
}

void kv_lock_clear_all(struct kv_sessions *t)
{
    for (uint64_t i = 0; i < t->lock_count; i++) {
        free(t->locks[i].name);
        free(t->locks[i].queue);
    }
    t->lock_count = 0;
}

size_t kv_lock_encoded_size(const struct kv_sessions *t)
{
    size_t size = 8;
    for (uint64_t i = 0; i < t->lock_count; i++)
        size += 8 + (size_t)t->locks[i].name_size + 16u * t->locks[i].count;
    return size;
}

/* Locks are encoded in name order, so that the snapshot does not depend on
 * the table's history (removal moves the last lock). */
static int name_cmp(const void *a, const void *b)
{
    const struct kv_lock *x = *(const struct kv_lock *const *)a;
    const struct kv_lock *y = *(const struct kv_lock *const *)b;
    size_t n = x->name_size < y->name_size ? x->name_size : y->name_size;
    int c = n ? memcmp(x->name, y->name, n) : 0;
    if (c != 0)
        return c;
    return (x->name_size > y->name_size) - (x->name_size < y->name_size);
}

void kv_lock_encode(const struct kv_sessions *t, struct writer *w)
{
    writer_u64(w, t->lock_count);
    const struct kv_lock **order = NULL;
    if (t->lock_count > 0) {
        order = malloc(t->lock_count * sizeof(*order));
        must(order != NULL);
        for (uint64_t i = 0; i < t->lock_count; i++)
            order[i] = &t->locks[i];
        qsort(order, t->lock_count, sizeof(*order), name_cmp);
    }
    for (uint64_t i = 0; i < t->lock_count; i++) {
        const struct kv_lock *l = order[i];
        writer_u32(w, l->name_size);
        writer_bytes(w, l->name, l->name_size);
        writer_u32(w, l->count);
        for (uint32_t j = 0; j < l->count; j++) {
            writer_u64(w, l->queue[j].session);
            writer_u64(w, l->queue[j].token);
        }
    }
    free(order);
}

static bool entries_valid(struct kv_sessions *t, const struct kv_lock *l)
{
    for (uint32_t j = 0; j < l->count; j++) {
        const struct kv_lock_entry *e = &l->queue[j];
        if ((j == 0) != (e->token != 0))
            return false;
        if (kv_sessions_find(t, e->session) == NULL)
            return false;
        for (uint32_t k = 0; k < j; k++)
            if (l->queue[k].session == e->session)
                return false;
    }
    return l->count > 0;
}

int kv_lock_decode(struct kv_sessions *t, struct cursor *in,
                   uint32_t name_size_max, const char **why)
{
    uint64_t count = cursor_u64(in);
    if (!in->ok || count > KV_LOCKS_MAX) {
        *why = "lock count out of range";
        return -COHORT_ECORRUPT;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint32_t size = cursor_u32(in);
        const uint8_t *name =
            size <= name_size_max ? cursor_take(in, size) : NULL;
        uint32_t n = cursor_u32(in);
        if (!in->ok || name == NULL || n == 0 || n > KV_LOCK_WAITERS_MAX ||
            kv_lock_find(t, name, size) != NULL) {
            *why = "lock name or queue out of range, or repeated";
            return -COHORT_ECORRUPT;
        }
        struct kv_lock *l = lock_new(t, name, size);
        for (uint32_t j = 0; j < n; j++) {
            uint64_t session = cursor_u64(in);
            push(l, session, cursor_u64(in));
        }
        redigest(t, l);
        if (!in->ok || !entries_valid(t, l)) {
            *why = "lock queue truncated or naming no session";
            return -COHORT_ECORRUPT;
        }
    }
    return 0;
}

bool kv_lock_invariants_hold(const struct kv_sessions *t)
{
    for (uint64_t i = 0; i < t->lock_count; i++) {
        const struct kv_lock *l = &t->locks[i];
        if (!entries_valid((struct kv_sessions *)t, l))
            return false;
        if (l->digest != lock_digest(l))
            return false;
    }
    return true;
}
