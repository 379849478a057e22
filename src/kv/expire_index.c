/* expire_index — a min-heap of records by expiry. See expire_index.h. */
#include "kv/expire_index.h"

#include <stdlib.h>

#include "common/assert.h"
#include "common/grow.h"
#include "kv/kv.h"

void kv_expire_index_init(struct kv_expire_index *x)
{
    x->items = NULL;
    x->count = 0;
    x->cap = 0;
}

void kv_expire_index_deinit(struct kv_expire_index *x)
{
    free(x->items);
    kv_expire_index_init(x);
}

void kv_expire_index_clear(struct kv_expire_index *x)
{
    x->count = 0;
}

static uint64_t at(const struct kv_expire_index *x, uint64_t i)
{
    return x->items[i]->expire_at_ms;
}

static void place(struct kv_expire_index *x, uint64_t i, struct kv_record *r)
{
    x->items[i] = r;
    r->expire_pos = i;
}

static void sift_up(struct kv_expire_index *x, uint64_t i)
{
    struct kv_record *r = x->items[i];
    while (i > 0 && x->items[(i - 1) / 2]->expire_at_ms > r->expire_at_ms) {
        place(x, i, x->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(x, i, r);
}

static void sift_down(struct kv_expire_index *x, uint64_t i)
{
    struct kv_record *r = x->items[i];
    for (;;) {
        uint64_t child = 2 * i + 1;
        if (child >= x->count)
            break;
        if (child + 1 < x->count && at(x, child + 1) < at(x, child))
            child++;
        if (at(x, child) >= r->expire_at_ms)
            break;
        place(x, i, x->items[child]);
        i = child;
    }
    place(x, i, r);
}

static void push(struct kv_expire_index *x, struct kv_record *r)
{
    if (!grow_array_u64((void **)&x->items, &x->cap, x->count + 1,
                        sizeof(*x->items), 64))
        cohort_assert_fail("out of memory indexing a key's expiry", __FILE__,
                           __LINE__);
    place(x, x->count++, r);
    sift_up(x, x->count - 1);
}

void kv_expire_index_remove(struct kv_expire_index *x, struct kv_record *r)
{
    uint64_t i = r->expire_pos;
    ASSERT(i < x->count && x->items[i] == r);
    struct kv_record *last = x->items[--x->count];
    if (i == x->count)
        return;
    place(x, i, last);
    sift_up(x, i);
    sift_down(x, last->expire_pos);
}

void kv_expire_index_update(struct kv_expire_index *x, struct kv_record *r,
                            uint64_t old_ms)
{
    if (old_ms == 0 && r->expire_at_ms == 0)
        return;
    if (old_ms == 0) {
        push(x, r);
        return;
    }
    if (r->expire_at_ms == 0) {
        kv_expire_index_remove(x, r);
        return;
    }
    sift_up(x, r->expire_pos);
    sift_down(x, r->expire_pos);
}

void kv_expire_index_moved(struct kv_expire_index *x, struct kv_record *r)
{
    ASSERT(r->expire_pos < x->count);
    x->items[r->expire_pos] = r;
}

size_t kv_expire_index_due(const struct kv_expire_index *x, uint64_t now_ms,
                           size_t max, kv_expire_visit_fn fn, void *ctx)
{
    ASSERT(max <= KV_EXPIRE_VISIT_MAX);
    /* Depth first over the heap's nodes that are due: each visited node
     * pushes at most two children, so the stack holds <= visited + 1. */
    uint64_t stack[2 * KV_EXPIRE_VISIT_MAX + 2];
    size_t top = 0, visited = 0;
    if (x->count > 0)
        stack[top++] = 0;
    while (top > 0 && visited < max) {
        uint64_t i = stack[--top];
        if (at(x, i) > now_ms)
            continue;
        visited++;
        if (!fn(ctx, x->items[i]))
            break;
        for (uint64_t c = 2 * i + 1; c <= 2 * i + 2 && c < x->count; c++)
            stack[top++] = c;
    }
    return visited;
}

uint64_t kv_expire_index_count_due(const struct kv_expire_index *x,
                                   uint64_t now_ms)
{
    /* Breadth first would need a queue; count by walking the array with an
     * explicit stack that may grow: due nodes form a subtree at the root. */
    uint64_t n = 0;
    uint64_t stack[128];
    size_t top = 0;
    if (x->count > 0 && at(x, 0) <= now_ms)
        stack[top++] = 0;
    while (top > 0) {
        uint64_t i = stack[--top];
        n++;
        for (uint64_t c = 2 * i + 1; c <= 2 * i + 2 && c < x->count; c++) {
            if (at(x, c) > now_ms)
                continue;
            /* Depth first: the stack holds at most one pending sibling per
             * level, and the heap has fewer than 128 levels. */
            ASSERT(top < sizeof(stack) / sizeof(stack[0]));
            stack[top++] = c;
        }
    }
    return n;
}

bool kv_expire_index_any_between(const struct kv_expire_index *x,
                                 uint64_t from_ms, uint64_t to_ms)
{
    uint64_t stack[2 * KV_EXPIRE_VISIT_MAX + 2];
    size_t top = 0, visited = 0;
    if (x->count > 0)
        stack[top++] = 0;
    while (top > 0) {
        uint64_t i = stack[--top];
        if (at(x, i) > to_ms)
            continue;
        if (at(x, i) > from_ms || ++visited > KV_EXPIRE_VISIT_MAX)
            return true;
        for (uint64_t c = 2 * i + 1; c <= 2 * i + 2 && c < x->count; c++)
            stack[top++] = c;
    }
    return false;
}

uint64_t kv_expire_index_first(const struct kv_expire_index *x)
{
    return x->count > 0 ? at(x, 0) : 0;
}

bool kv_expire_index_valid(const struct kv_expire_index *x,
                           uint64_t expires_count)
{
    if (x->count != expires_count)
        return false;
    for (uint64_t i = 0; i < x->count; i++) {
        const struct kv_record *r = x->items[i];
        if (r->expire_at_ms == 0 || r->expire_pos != i)
            return false;
        if (i > 0 && at(x, (i - 1) / 2) > r->expire_at_ms)
            return false;
    }
    return true;
}
