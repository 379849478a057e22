#include "common/grow.h"

#include <stdlib.h>

#include "common/assert.h"

/* Reallocate *array to next items of item_size bytes (the caller checked
 * that the product fits). */
static bool resize(void **array, size_t next, size_t item_size)
{
    ASSERT(next > 0);
    ASSERT(next <= SIZE_MAX / item_size);
    /* tidy: allow realloc: growable arrays grow with what is put in them;
     * the server, store, storage and simulator use them, never the core. */
    void *p = realloc(*array, next * item_size);
    if (p == NULL)
        return false;
    *array = p;
    return true;
}

/* The doubling policy for a capacity of at most items_max items: the new
 * capacity for need (> capacity), or 0 if need does not fit. */
static size_t doubled(size_t capacity, size_t need, size_t min_capacity,
                      size_t items_max)
{
    ASSERT(need > capacity);
    if (need > items_max)
        return 0;
    size_t next = capacity > min_capacity ? capacity : min_capacity;
    if (next == 0)
        next = 1;
    while (next < need)
        next = next > items_max / 2 ? need : next * 2;
    if (next > items_max) /* a min_capacity past the limit */
        next = need;
    ASSERT(next >= need);
    return next;
}

static bool grow_limited(void **array, size_t *capacity, size_t need,
                         size_t item_size, size_t min_capacity,
                         size_t items_max)
{
    ASSERT(item_size > 0);
    if (need <= *capacity)
        return true;
    if (items_max > SIZE_MAX / item_size)
        items_max = SIZE_MAX / item_size;
    size_t next = doubled(*capacity, need, min_capacity, items_max);
    if (next == 0 || !resize(array, next, item_size))
        return false;
    *capacity = next;
    return true;
}

bool grow_array(void **array, size_t *capacity, size_t need, size_t item_size,
                size_t min_capacity)
{
    return grow_limited(array, capacity, need, item_size, min_capacity,
                        SIZE_MAX);
}

bool grow_array_u32(void **array, uint32_t *capacity, size_t need,
                    size_t item_size, uint32_t min_capacity)
{
    size_t cap = *capacity;
    if (!grow_limited(array, &cap, need, item_size, min_capacity, UINT32_MAX))
        return false;
    ASSERT(cap <= UINT32_MAX);
    *capacity = (uint32_t)cap;
    return true;
}

bool grow_array_u64(void **array, uint64_t *capacity, uint64_t need,
                    size_t item_size, size_t min_capacity)
{
    if (need <= *capacity)
        return true;
    if (need > SIZE_MAX)
        return false;
    /* need > *capacity, so the capacity fits in size_t as well. */
    size_t cap = (size_t)*capacity;
    if (!grow_array(array, &cap, (size_t)need, item_size, min_capacity))
        return false;
    *capacity = cap;
    return true;
}

bool grow_bytes(uint8_t **data, size_t *capacity, size_t need,
                size_t min_capacity)
{
    void *p = *data;
    if (!grow_array(&p, capacity, need, 1, min_capacity))
        return false;
    *data = p;
    return true;
}

bool grow_bytes_exact(uint8_t **data, size_t *capacity, size_t need)
{
    if (need <= *capacity)
        return true;
    void *p = *data;
    if (!resize(&p, need, 1))
        return false;
    *data = p;
    *capacity = need;
    return true;
}
