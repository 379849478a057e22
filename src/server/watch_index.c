/* watch_index — the watched keys, prefixes and groups, each with its
 * watches: one array of targets per kind, sorted by name (bytewise, a
 * prefix first), found by binary search. See watch.h. */
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/grow.h"
#include "kv/kv_index.h"
#include "server/watch.h"

/* The index in list of the first target >= name; *found if it is name. */
static uint32_t search(const struct watch_targets *list, const uint8_t *name,
                       size_t size, bool *found)
{
    uint32_t lo = 0, hi = list->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct watch_target *t = list->items[mid];
        if (kv_key_compare(t->name, t->size, name, size) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < list->count &&
             kv_key_compare(list->items[lo]->name, list->items[lo]->size, name,
                            size) == 0;
    return lo;
}

/* Room for one item past count. */
static int reserve(void **array, uint32_t *capacity, uint32_t count,
                   size_t item)
{
    if (!grow_array_u32(array, capacity, (size_t)count + 1, item, 4))
        return -COHORT_ENOMEM;
    return 0;
}

/* The target (name, on), created (and placed) if new; NULL if out of
 * memory. */
static struct watch_target *target_get(struct server_watch *w,
                                       const uint8_t *name, size_t size,
                                       enum watch_on on)
{
    struct watch_targets *list = &w->on[on];
    bool found;
    uint32_t i = search(list, name, size, &found);
    if (found)
        return list->items[i];
    if (size > UINT32_MAX || reserve((void **)&list->items, &list->capacity,
                                     list->count, sizeof(*list->items)) != 0)
        return NULL;
    struct watch_target *t = calloc(1, sizeof(*t));
    uint8_t *copy = malloc(size ? size : 1);
    if (t == NULL || copy == NULL) {
        free(t);
        free(copy);
        return NULL;
    }
    if (size > 0)
        memcpy(copy, name, size);
    t->name = copy;
    t->size = (uint32_t)size;
    t->on = on;
    memmove(&list->items[i + 1], &list->items[i],
            (list->count - i) * sizeof(*list->items));
    list->items[i] = t;
    list->count++;
    if (on == WATCH_ON_PREFIX && size > w->prefix_size_max)
        w->prefix_size_max = (uint32_t)size;
    return t;
}

static void target_free(struct server_watch *w, struct watch_target *t)
{
    ASSERT(t->count == 0);
    struct watch_targets *list = &w->on[t->on];
    bool found;
    uint32_t i = search(list, t->name, t->size, &found);
    ASSERT(found && list->items[i] == t);
    memmove(&list->items[i], &list->items[i + 1],
            (list->count - i - 1) * sizeof(*list->items));
    list->count--;
    if (list->count == 0) {
        free(list->items);
        list->items = NULL;
        list->capacity = 0;
        if (t->on == WATCH_ON_PREFIX)
            w->prefix_size_max = 0;
    }
    free(t->watches);
    free(t->name);
    free(t);
}

int watch_index_add(struct server_watch *w, struct watch *watch,
                    const uint8_t *name, size_t size, enum watch_on on)
{
    ASSERT(on < WATCH_ON_COUNT);
    struct watch_target *t = target_get(w, name, size, on);
    if (t == NULL)
        return -COHORT_ENOMEM;
    if (reserve((void **)&t->watches, &t->capacity, t->count,
                sizeof(*t->watches)) != 0) {
        if (t->count == 0)
            target_free(w, t);
        return -COHORT_ENOMEM;
    }
    t->watches[t->count++] = watch;
    watch->target = t;
    return 0;
}

void watch_index_remove(struct server_watch *w, struct watch *watch)
{
    struct watch_target *t = watch->target;
    ASSERT(t != NULL);
    for (uint32_t i = 0; i < t->count; i++) {
        if (t->watches[i] != watch)
            continue;
        memmove(&t->watches[i], &t->watches[i + 1],
                (t->count - i - 1) * sizeof(*t->watches));
        t->count--;
        watch->target = NULL;
        if (t->count == 0)
            target_free(w, t);
        return;
    }
    UNREACHABLE();
}

/* fn on the target (name, on) if it is watched. */
static void match_one(const struct server_watch *w, enum watch_on on,
                      const uint8_t *name, size_t size, watch_match_fn fn,
                      void *ctx)
{
    const struct watch_targets *list = &w->on[on];
    if (list->count == 0)
        return;
    bool found;
    uint32_t i = search(list, name, size, &found);
    if (found)
        fn(ctx, list->items[i]);
}

void watch_index_match(const struct server_watch *w, const uint8_t *name,
                       size_t size, bool group, watch_match_fn fn, void *ctx)
{
    if (group) {
        match_one(w, WATCH_ON_GROUP, name, size, fn, ctx);
        return;
    }
    match_one(w, WATCH_ON_KEY, name, size, fn, ctx);
    if (w->on[WATCH_ON_PREFIX].count == 0)
        return;
    size_t longest = size < w->prefix_size_max ? size : w->prefix_size_max;
    for (size_t n = 0; n <= longest; n++)
        match_one(w, WATCH_ON_PREFIX, name, n, fn, ctx);
}

bool watch_target_matches(const struct watch_target *t, const uint8_t *name,
                          size_t size, bool group)
{
    if (group != (t->on == WATCH_ON_GROUP))
        return false;
    if (size < t->size || (t->on != WATCH_ON_PREFIX && size != t->size))
        return false;
    return t->size == 0 || memcmp(t->name, name, t->size) == 0;
}

static bool list_valid(const struct watch_targets *list, enum watch_on on)
{
    for (uint32_t i = 0; i < list->count; i++) {
        const struct watch_target *t = list->items[i];
        if (t->on != on || t->count == 0)
            return false;
        if (i > 0 &&
            kv_key_compare(list->items[i - 1]->name, list->items[i - 1]->size,
                           t->name, t->size) >= 0)
            return false;
        for (uint32_t j = 0; j < t->count; j++)
            if (t->watches[j]->target != t)
                return false;
    }
    return true;
}

bool watch_index_valid(const struct server_watch *w)
{
    for (uint32_t on = 0; on < WATCH_ON_COUNT; on++)
        if (!list_valid(&w->on[on], (enum watch_on)on))
            return false;
    return true;
}
