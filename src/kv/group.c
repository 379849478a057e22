/* group — application groups of sessions. See group.h. */
#include "kv/group.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/grow.h"

/* Part of the state hash: never change. */
#define GROUP_DIGEST_SEED 0x636f686f72746770ull /* "cohortgp" */

static void hash_bytes(XXH3_state_t *st, const uint8_t *p, uint32_t size)
{
    uint8_t n[4];
    put_u32(n, size);
    XXH3_64bits_update(st, n, sizeof(n));
    if (size > 0)
        XXH3_64bits_update(st, p, size);
}

static uint64_t group_digest(const struct kv_group *g)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st); /* see kv.c's record_digest() */
    XXH3_64bits_reset_withSeed(&st, GROUP_DIGEST_SEED);
    hash_bytes(&st, g->name, g->name_size);
    uint8_t meta[12];
    put_u64(meta, g->view);
    put_u32(meta + 8, g->count);
    XXH3_64bits_update(&st, meta, sizeof(meta));
    for (uint32_t i = 0; i < g->count; i++) {
        const struct kv_group_member *m = &g->members[i];
        hash_bytes(&st, m->name, m->name_size);
        hash_bytes(&st, m->data, m->data_size);
        uint8_t s[8];
        put_u64(s, m->session);
        XXH3_64bits_update(&st, s, sizeof(s));
    }
    return XXH3_64bits_digest(&st);
}

static void redigest(struct kv_sessions *t, struct kv_group *g)
{
    t->digest_sum -= g->digest;
    g->digest = group_digest(g);
    t->digest_sum += g->digest;
}

static bool bytes_eq(const uint8_t *a, uint32_t a_size, const uint8_t *b,
                     size_t b_size)
{
    return a_size == b_size && (b_size == 0 || memcmp(a, b, b_size) == 0);
}

static uint8_t *copy_of(const uint8_t *p, size_t size)
{
    uint8_t *c = malloc(size ? size : 1);
    if (c == NULL)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    if (size)
        memcpy(c, p, size);
    return c;
}

/* A growth that failed stops the process: a committed op must apply. */
static void must_grow(bool grown)
{
    if (!grown)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
}

struct kv_group *kv_group_find(struct kv_sessions *t, const uint8_t *name,
                               size_t name_size)
{
    for (uint64_t i = 0; i < t->group_count; i++)
        if (bytes_eq(t->groups[i].name, t->groups[i].name_size, name,
                     name_size))
            return &t->groups[i];
    return NULL;
}

static struct kv_group *group_new(struct kv_sessions *t, const uint8_t *name,
                                  size_t name_size)
{
    must_grow(grow_array_u64((void **)&t->groups, &t->group_capacity,
                             t->group_count + 1, sizeof(*t->groups), 4));
    struct kv_group *g = &t->groups[t->group_count++];
    memset(g, 0, sizeof(*g));
    g->name = copy_of(name, name_size);
    g->name_size = (uint32_t)name_size;
    g->digest = group_digest(g);
    t->digest_sum += g->digest;
    return g;
}

static void member_free(struct kv_group_member *m)
{
    free(m->name);
    free(m->data);
}

static void group_free(struct kv_sessions *t, struct kv_group *g)
{
    t->digest_sum -= g->digest;
    for (uint32_t i = 0; i < g->count; i++)
        member_free(&g->members[i]);
    free(g->members);
    free(g->name);
    *g = t->groups[--t->group_count];
}

static void member_add(struct kv_group *g, const uint8_t *name,
                       size_t name_size, const uint8_t *data, size_t data_size,
                       uint64_t session)
{
    must_grow(grow_array_u32((void **)&g->members, &g->capacity,
                             (size_t)g->count + 1, sizeof(*g->members), 4));
    g->members[g->count++] =
        (struct kv_group_member){.name = copy_of(name, name_size),
                                 .data = copy_of(data, data_size),
                                 .name_size = (uint32_t)name_size,
                                 .data_size = (uint32_t)data_size,
                                 .session = session};
}

/* g has a new view at op: tell the hook. */
static void view_made(const struct kv_sessions *t, const struct kv_group *g,
                      uint64_t op)
{
    if (t->view_hook != NULL)
        t->view_hook(t->view_hook_ctx, g, op);
}

enum kv_group_result kv_group_join(struct kv_sessions *t, const uint8_t *group,
                                   size_t group_size, const uint8_t *member,
                                   size_t member_size, const uint8_t *data,
                                   size_t data_size, uint64_t session,
                                   uint64_t op, uint64_t *holder)
{
    struct kv_group *g = kv_group_find(t, group, group_size);
    if (g == NULL) {
        if (t->group_count >= KV_GROUPS_MAX)
            return KV_GROUP_FULL;
        g = group_new(t, group, group_size);
    }
    for (uint32_t i = 0; i < g->count; i++) {
        struct kv_group_member *m = &g->members[i];
        if (!bytes_eq(m->name, m->name_size, member, member_size))
            continue;
        if (m->session != session) {
            *holder = m->session;
            return KV_GROUP_TAKEN;
        }
        if (bytes_eq(m->data, m->data_size, data, data_size))
            return KV_GROUP_UNCHANGED;
        free(m->data);
        m->data = copy_of(data, data_size);
        m->data_size = (uint32_t)data_size;
        g->view = op;
        redigest(t, g);
        view_made(t, g, op);
        return KV_GROUP_CHANGED;
    }
    if (g->count >= KV_GROUP_MEMBERS_MAX)
        return KV_GROUP_FULL;
    member_add(g, member, member_size, data, data_size, session);
    g->view = op;
    redigest(t, g);
    view_made(t, g, op);
    return KV_GROUP_CHANGED;
}

/* Remove member i of g at op; frees g if it empties. */
static void member_remove(struct kv_sessions *t, struct kv_group *g, uint32_t i,
                          uint64_t op)
{
    member_free(&g->members[i]);
    memmove(&g->members[i], &g->members[i + 1],
            (g->count - i - 1) * sizeof(g->members[0]));
    g->count--;
    g->view = op;
    view_made(t, g, op);
    if (g->count == 0)
        group_free(t, g);
    else
        redigest(t, g);
}

bool kv_group_leave(struct kv_sessions *t, const uint8_t *group,
                    size_t group_size, const uint8_t *member,
                    size_t member_size, uint64_t op)
{
    struct kv_group *g = kv_group_find(t, group, group_size);
    for (uint32_t i = 0; g != NULL && i < g->count; i++) {
        if (bytes_eq(g->members[i].name, g->members[i].name_size, member,
                     member_size)) {
            member_remove(t, g, i, op);
            return true;
        }
    }
    return false;
}

void kv_group_session_ended(struct kv_sessions *t, uint64_t session,
                            uint64_t op)
{
    uint64_t gi = 0;
    while (gi < t->group_count) {
        struct kv_group *g = &t->groups[gi];
        uint32_t i = 0;
        bool freed = false;
        while (!freed && i < g->count) {
            if (g->members[i].session != session) {
                i++;
                continue;
            }
            freed = g->count == 1;
            member_remove(t, g, i, op);
        }
        if (!freed)
            gi++; /* freed: the last group moved into slot gi */
    }
}

void kv_group_clear_all(struct kv_sessions *t)
{
    while (t->group_count > 0)
        group_free(t, &t->groups[t->group_count - 1]);
}

size_t kv_group_encoded_size(const struct kv_sessions *t)
{
    size_t size = 8;
    for (uint64_t i = 0; i < t->group_count; i++) {
        const struct kv_group *g = &t->groups[i];
        size += 16 + (size_t)g->name_size;
        for (uint32_t j = 0; j < g->count; j++)
            size +=
                16 + (size_t)g->members[j].name_size + g->members[j].data_size;
    }
    return size;
}

static int name_cmp(const void *a, const void *b)
{
    const struct kv_group *x = *(const struct kv_group *const *)a;
    const struct kv_group *y = *(const struct kv_group *const *)b;
    size_t n = x->name_size < y->name_size ? x->name_size : y->name_size;
    int c = n ? memcmp(x->name, y->name, n) : 0;
    if (c != 0)
        return c;
    return (x->name_size > y->name_size) - (x->name_size < y->name_size);
}

/* Groups in name order: the snapshot does not depend on the history. */
void kv_group_encode(const struct kv_sessions *t, struct writer *w)
{
    writer_u64(w, t->group_count);
    const struct kv_group **order = NULL;
    if (t->group_count > 0) {
        order = malloc(t->group_count * sizeof(*order));
        if (order == NULL)
            cohort_assert_fail("out of memory writing a snapshot", __FILE__,
                               __LINE__);
        for (uint64_t i = 0; i < t->group_count; i++)
            order[i] = &t->groups[i];
        qsort(order, t->group_count, sizeof(*order), name_cmp);
    }
    for (uint64_t i = 0; i < t->group_count; i++) {
        const struct kv_group *g = order[i];
        writer_u32(w, g->name_size);
        writer_bytes(w, g->name, g->name_size);
        writer_u64(w, g->view);
        writer_u32(w, g->count);
        for (uint32_t j = 0; j < g->count; j++) {
            const struct kv_group_member *m = &g->members[j];
            writer_u32(w, m->name_size);
            writer_bytes(w, m->name, m->name_size);
            writer_u32(w, m->data_size);
            writer_bytes(w, m->data, m->data_size);
            writer_u64(w, m->session);
        }
    }
    free(order);
}

static bool group_valid(struct kv_sessions *t, const struct kv_group *g)
{
    if (g->count == 0 || g->view == 0)
        return false;
    for (uint32_t i = 0; i < g->count; i++) {
        const struct kv_group_member *m = &g->members[i];
        if (kv_sessions_find(t, m->session) == NULL)
            return false;
        for (uint32_t k = 0; k < i; k++)
            if (bytes_eq(g->members[k].name, g->members[k].name_size, m->name,
                         m->name_size))
                return false;
    }
    return true;
}

static const uint8_t *take_bytes(struct cursor *in, uint32_t size_max,
                                 uint32_t *size)
{
    *size = cursor_u32(in);
    if (*size > size_max) {
        in->ok = false;
        return NULL;
    }
    return cursor_take(in, *size);
}

int kv_group_decode(struct kv_sessions *t, struct cursor *in, uint32_t size_max,
                    const char **why)
{
    uint64_t count = cursor_u64(in);
    *why = "groups truncated or out of range";
    if (!in->ok || count > KV_GROUPS_MAX)
        return -COHORT_ECORRUPT;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t size, n;
        const uint8_t *name = take_bytes(in, size_max, &size);
        uint64_t view = cursor_u64(in);
        n = cursor_u32(in);
        if (!in->ok || n > KV_GROUP_MEMBERS_MAX ||
            kv_group_find(t, name, size) != NULL)
            return -COHORT_ECORRUPT;
        struct kv_group *g = group_new(t, name, size);
        g->view = view;
        for (uint32_t j = 0; j < n && in->ok; j++) {
            uint32_t ms, ds;
            const uint8_t *m = take_bytes(in, size_max, &ms);
            const uint8_t *d = take_bytes(in, UINT32_MAX, &ds);
            uint64_t session = cursor_u64(in);
            if (in->ok)
                member_add(g, m, ms, d, ds, session);
        }
        redigest(t, g);
        if (!in->ok || !group_valid(t, g))
            return -COHORT_ECORRUPT;
    }
    return 0;
}

bool kv_group_invariants_hold(const struct kv_sessions *t)
{
    for (uint64_t i = 0; i < t->group_count; i++) {
        const struct kv_group *g = &t->groups[i];
        if (!group_valid((struct kv_sessions *)t, g))
            return false;
        if (g->digest != group_digest(g))
            return false;
    }
    return true;
}
