/* history — the retained messages. See history.h. */
#include "kv/history.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"

static_assert(HISTORY_COUNT_LIMIT <= UINT32_MAX / 2, "ring indexes are u32");

int history_init(struct history *h, uint32_t count_max, uint64_t bytes_max)
{
    memset(h, 0, sizeof(*h));
    if (count_max == 0 || count_max > HISTORY_COUNT_LIMIT)
        return -COHORT_EINVAL;
    h->count_max = count_max;
    h->bytes_max = bytes_max;
    return 0;
}

static void drop_oldest(struct history *h)
{
    ASSERT(h->count > 0);
    struct history_entry *e = h->ring[h->head];
    ASSERT(e != NULL);
    uint64_t cost = history_entry_cost(e->channel_size, e->message_size);
    ASSERT(h->bytes >= cost);
    h->bytes -= cost;
    ASSERT(e->position > h->floor ||
           (h->shared_positions && e->position == h->floor));
    h->floor = e->position;
    h->ring[h->head] = NULL;
    h->head = h->head + 1 == h->capacity ? 0 : h->head + 1;
    h->count--;
    h->evicted++;
    h->first_seq++;
}

static void release_buf(uint8_t *buf, size_t size, bool mapped)
{
    if (mapped)
        munmap(buf, size);
    else
        free(buf);
}

void history_deinit(struct history *h)
{
    while (h->count > 0)
        drop_oldest(h);
    free(h->ring);
    release_buf(h->buf, h->buf_size, h->buf_mapped);
    memset(h, 0, sizeof(*h));
}

/* Double the slots (up to count_max), the entries moved to 0..count-1. */
static int grow(struct history *h)
{
    ASSERT(h->capacity < h->count_max);
    uint32_t capacity = h->capacity ? 2 * h->capacity : 16;
    if (capacity > h->count_max)
        capacity = h->count_max;
    struct history_entry **ring = calloc(capacity, sizeof(*ring));
    if (ring == NULL)
        return -COHORT_ENOMEM;
    for (uint32_t i = 0; i < h->count; i++)
        ring[i] = h->ring[((uint64_t)h->head + i) % h->capacity];
    free(h->ring);
    h->ring = ring;
    h->capacity = capacity;
    h->head = 0;
    return 0;
}

void history_reset(struct history *h, uint64_t floor)
{
    while (h->count > 0)
        drop_oldest(h);
    ASSERT(h->bytes == 0);
    h->head = 0;
    h->tail = 0;
    h->floor = floor;
    h->last = floor;
}

uint64_t history_entry_cost(size_t channel_size, size_t message_size)
{
    return sizeof(struct history_entry) + (uint64_t)channel_size +
           (uint64_t)message_size;
}

/* The bytes an entry of this cost takes in the ring: entries start
 * 8-byte aligned. */
static size_t footprint(uint64_t cost)
{
    return (size_t)((cost + 7) & ~(uint64_t)7);
}

/* The most the byte ring grows to: twice bytes_max, room for the entries'
 * alignment (under half an entry's cost) and a wrap's unused end, so
 * neither makes the ring evict below its budget. */
static size_t buf_max(const struct history *h)
{
    uint64_t max = h->bytes_max < (UINT64_C(1) << 40) ? 2 * h->bytes_max
                                                      : UINT64_C(1) << 41;
    return max < SIZE_MAX ? (size_t)max : SIZE_MAX;
}

/* Move the entries, in order, to the start of a buffer at least twice as
 * big (at most buf_max()) with room for n more bytes. Entries are only
 * reached through h->ring (history_at() each time), so moving them is
 * safe between appends. */
static int grow_buf(struct history *h, size_t n)
{
    size_t live = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        const struct history_entry *e = history_at(h, i);
        live += footprint(history_entry_cost(e->channel_size, e->message_size));
    }
    size_t max = buf_max(h);
    size_t size = h->buf_size ? h->buf_size : 4096;
    while (size < max && (size < 2 * h->buf_size || size - live < n))
        size = size > max / 2 ? max : 2 * size;
    if (size - live < n)
        return -COHORT_ENOMEM; /* at buf_max(): the caller evicts */
    bool mapped = size > HISTORY_MAP_MIN;
    uint8_t *buf;
    if (mapped) {
        /* Past HISTORY_MAP_MIN, reserve the most the ring can take: pages
         * are only backed as the ring reaches them, and it never moves
         * again. Doubling on would copy the entries and fault in a fresh
         * buffer each time, a loop stall of 30-100 ms at the last steps
         * (the p99.9 of a fresh replica's first seconds of 100 B writes
         * went from ~17 ms to ~100 ms). */
        size = max;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        buf = p == MAP_FAILED ? NULL : p;
        /* A forked child (a backup, or a snapshot whose thread could not
         * start) writes the store, never the history: without the ring it
         * copies fewer page tables, and the ring's writes meanwhile take
         * no copy-on-write faults. Best effort. */
        if (buf)
            (void)madvise(buf, size, MADV_DONTFORK);
    } else {
        buf = malloc(size);
    }
    if (buf == NULL)
        return -COHORT_ENOMEM;
    size_t at = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        uint32_t slot = (uint32_t)(((uint64_t)h->head + i) % h->capacity);
        struct history_entry *e = h->ring[slot];
        size_t f =
            footprint(history_entry_cost(e->channel_size, e->message_size));
        memcpy(buf + at, e, f);
        h->ring[slot] = (struct history_entry *)(buf + at);
        at += f;
    }
    release_buf(h->buf, h->buf_size, h->buf_mapped);
    h->buf = buf;
    h->buf_size = size;
    h->buf_mapped = mapped;
    h->tail = at;
    if (at > h->extent)
        h->extent = at;
    return 0;
}

/* Where an entry of n bytes goes in the ring now, or SIZE_MAX if it does
 * not fit without evicting. In use is [head, tail) when tail > head, else
 * (wrapped) [head, the end of the entries before the wrap) and [0, tail).
 * The start is taken as soon as it has room, so the ring stays about as
 * long as what the live entries need instead of creeping over all of
 * buf_size. */
static size_t place(const struct history *h, size_t n)
{
    if (h->count == 0)
        return n <= h->buf_size ? 0 : SIZE_MAX;
    size_t head = (size_t)((const uint8_t *)h->ring[h->head] - h->buf);
    if (h->tail > head) {
        if (n <= head)
            return 0;
        return n <= h->buf_size - h->tail ? h->tail : SIZE_MAX;
    }
    return n <= head - h->tail ? h->tail : SIZE_MAX;
}

/* Append {channel, tag (if tagged), message}; see history_append(). */
static int append(struct history *h, uint64_t position, const void *channel,
                  size_t channel_size, const uint8_t *tag, const void *message,
                  size_t message_size)
{
    size_t tag_size = tag != NULL ? 1 : 0;
    ASSERT(h->count_max > 0);
    ASSERT(position > h->last || (h->shared_positions && position == h->last));
    ASSERT(channel_size <= UINT32_MAX && message_size < UINT32_MAX);
    uint64_t cost = history_entry_cost(channel_size, tag_size + message_size);
    size_t n = footprint(cost);
    if (cost > h->bytes_max) {
        /* Retaining it would mean retaining nothing else: keep nothing,
         * and say so through the floor. */
        history_reset(h, position);
        h->first_seq++; /* its number, never to be read */
        return 0;
    }
    if (h->count == h->capacity && h->capacity < h->count_max && grow(h) != 0)
        return -COHORT_ENOMEM;
    while (h->count == h->count_max || h->bytes + cost > h->bytes_max)
        drop_oldest(h);
    size_t at;
    while ((at = place(h, n)) == SIZE_MAX) {
        if (h->buf_size < buf_max(h) && grow_buf(h, n) == 0)
            continue; /* now it fits */
        if (h->count == 0)
            return -COHORT_ENOMEM; /* no memory for a ring that holds it */
        drop_oldest(h);
    }
    struct history_entry *e = (struct history_entry *)(h->buf + at);
    h->tail = at + n;
    if (h->tail > h->extent)
        h->extent = h->tail;
    e->position = position;
    e->channel_size = (uint32_t)channel_size;
    e->message_size = (uint32_t)(tag_size + message_size);
    if (channel_size > 0)
        memcpy(e->data, channel, channel_size);
    if (tag != NULL)
        e->data[channel_size] = *tag;
    if (message_size > 0)
        memcpy(e->data + channel_size + tag_size, message, message_size);
    ASSERT(h->count < h->capacity);
    uint32_t slot = (uint32_t)(((uint64_t)h->head + h->count) % h->capacity);
    ASSERT(h->ring[slot] == NULL);
    h->ring[slot] = e;
    h->count++;
    h->bytes += cost;
    h->last = position;
    ASSERT(h->bytes <= h->bytes_max);
    return 0;
}

int history_append(struct history *h, uint64_t position, const void *channel,
                   size_t channel_size, const void *message,
                   size_t message_size)
{
    return append(h, position, channel, channel_size, NULL, message,
                  message_size);
}

int history_append_tagged(struct history *h, uint64_t position,
                          const void *channel, size_t channel_size, uint8_t tag,
                          const void *message, size_t message_size)
{
    return append(h, position, channel, channel_size, &tag, message,
                  message_size);
}

const struct history_entry *history_at(const struct history *h, uint32_t i)
{
    ASSERT(i < h->count);
    uint32_t slot = (uint32_t)(((uint64_t)h->head + i) % h->capacity);
    ASSERT(h->ring[slot] != NULL);
    return h->ring[slot];
}

uint32_t history_find(const struct history *h, uint64_t position)
{
    uint32_t lo = 0, hi = h->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (history_at(h, mid)->position < position)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
