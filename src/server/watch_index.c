/* watch_index — the watched keys and prefixes, each with its watches: two
 * arrays of targets sorted by name (bytewise, a prefix first), found by
 * binary search. See watch.h. */
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"
#include "kv/kv_index.h"
#include "server/watch.h"

/* The index in list (count entries) of the first target >= name;
 * *found if it is name. */
static uint32_t search(struct watch_target *const *list, uint32_t count,
                       const uint8_t *name, size_t size, bool *found)
{
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (kv_key_compare(list[mid]->name, list[mid]->size, name, size) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < count &&
             kv_key_compare(list[lo]->name, list[lo]->size, name, size) == 0;
    return lo;
}

static int reserve(void **array, uint32_t *capacity, uint32_t count,
                   size_t item)
{
    if (count < *capacity)
        return 0;
    uint32_t more = *capacity ? 2 * *capacity : 4;
    void *p = realloc(*array, (size_t)more * item);
    if (p == NULL)
        return -COHORT_ENOMEM;
    *array = p;
    *capacity = more;
    return 0;
}

/* The target name/prefix, created (and placed) if new; NULL if out of
 * memory. */
static struct watch_target *target_get(struct server_watch *w,
                                       const uint8_t *name, size_t size,
                                       bool prefix)
{
    struct watch_target ***list = prefix ? &w->prefixes : &w->keys;
    uint32_t *count = prefix ? &w->prefix_count : &w->key_count;
    uint32_t *capacity = prefix ? &w->prefix_capacity : &w->key_capacity;
    bool found;
    uint32_t i = search(*list, *count, name, size, &found);
    if (found)
        return (*list)[i];
    if (size > UINT32_MAX ||
        reserve((void **)list, capacity, *count, sizeof(**list)) != 0)
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
    t->prefix = prefix;
    memmove(&(*list)[i + 1], &(*list)[i], (*count - i) * sizeof(**list));
    (*list)[i] = t;
    (*count)++;
    if (prefix && size > w->prefix_size_max)
        w->prefix_size_max = (uint32_t)size;
    return t;
}

static void target_free(struct server_watch *w, struct watch_target *t)
{
    ASSERT(t->count == 0);
    struct watch_target **list = t->prefix ? w->prefixes : w->keys;
    uint32_t *count = t->prefix ? &w->prefix_count : &w->key_count;
    bool found;
    uint32_t i = search(list, *count, t->name, t->size, &found);
    ASSERT(found && list[i] == t);
    memmove(&list[i], &list[i + 1], (*count - i - 1) * sizeof(*list));
    (*count)--;
    if (*count == 0) {
        free(list);
        if (t->prefix) {
            w->prefixes = NULL;
            w->prefix_capacity = 0;
            w->prefix_size_max = 0;
        } else {
            w->keys = NULL;
            w->key_capacity = 0;
        }
    }
    free(t->watches);
    free(t->name);
    free(t);
}

int watch_index_add(struct server_watch *w, struct watch *watch,
                    const uint8_t *name, size_t size, bool prefix)
{
    struct watch_target *t = target_get(w, name, size, prefix);
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

void watch_index_match(const struct server_watch *w, const uint8_t *key,
                       size_t key_size, watch_match_fn fn, void *ctx)
{
    bool found;
    uint32_t i;
    if (w->key_count > 0) {
        i = search(w->keys, w->key_count, key, key_size, &found);
        if (found)
            fn(ctx, w->keys[i]);
    }
    if (w->prefix_count == 0)
        return;
    size_t longest =
        key_size < w->prefix_size_max ? key_size : w->prefix_size_max;
    for (size_t n = 0; n <= longest; n++) {
        i = search(w->prefixes, w->prefix_count, key, n, &found);
        if (found)
            fn(ctx, w->prefixes[i]);
    }
}

static bool list_valid(struct watch_target *const *list, uint32_t count,
                       bool prefix)
{
    for (uint32_t i = 0; i < count; i++) {
        const struct watch_target *t = list[i];
        if (t->prefix != prefix || t->count == 0)
            return false;
        if (i > 0 && kv_key_compare(list[i - 1]->name, list[i - 1]->size,
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
    return list_valid(w->keys, w->key_count, false) &&
           list_valid(w->prefixes, w->prefix_count, true);
}
