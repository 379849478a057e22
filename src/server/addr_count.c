/* addr_count — connections per remote address. See addr_count.h. */
#include "server/addr_count.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"

#define ADDR_COUNTS_MIN 64u

void addr_key_from(const struct sockaddr *sa, struct addr_key *key)
{
    memset(key, 0, sizeof(*key));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        key->family = 4;
        memcpy(key->bytes, &v4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            key->family = 4;
            memcpy(key->bytes, v6->sin6_addr.s6_addr + 12, 4);
        } else {
            key->family = 6;
            memcpy(key->bytes, v6->sin6_addr.s6_addr, 16);
        }
    }
}

bool addr_key_is_loopback(const struct addr_key *key)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};
    if (key->family == 4)
        return key->bytes[0] == 127;
    if (key->family == 6)
        return memcmp(key->bytes, v6_loopback, 16) == 0;
    return true; /* not an IP address: a local socket */
}

void addr_counts_init(struct addr_counts *t)
{
    memset(t, 0, sizeof(*t));
}

void addr_counts_deinit(struct addr_counts *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static uint32_t home(const struct addr_counts *t, const struct addr_key *key)
{
    return (uint32_t)XXH3_64bits(key, sizeof(*key)) & (t->capacity - 1);
}

static bool same(const struct addr_key *a, const struct addr_key *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* The slot holding key, or the empty slot where it would go. */
static uint32_t find(const struct addr_counts *t, const struct addr_key *key)
{
    ASSERT(t->capacity > 0);
    uint32_t i = home(t, key);
    while (t->slots[i].count != 0 && !same(&t->slots[i].key, key))
        i = (i + 1) & (t->capacity - 1);
    return i;
}

static bool grow(struct addr_counts *t)
{
    uint32_t capacity = t->capacity ? t->capacity * 2 : ADDR_COUNTS_MIN;
    if (capacity < t->capacity)
        return false;
    struct addr_count_slot *slots = calloc(capacity, sizeof(*slots));
    if (slots == NULL)
        return false;
    struct addr_counts bigger = {slots, capacity, 0};
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (t->slots[i].count == 0)
            continue;
        uint32_t j = find(&bigger, &t->slots[i].key);
        bigger.slots[j] = t->slots[i];
        bigger.used++;
    }
    ASSERT(bigger.used == t->used);
    free(t->slots);
    *t = bigger;
    return true;
}

uint32_t addr_counts_add(struct addr_counts *t, const struct addr_key *key)
{
    if (key->family == 0)
        return 0;
    if ((t->used + 1) * 2 > t->capacity && !grow(t))
        return 0;
    uint32_t i = find(t, key);
    if (t->slots[i].count == 0) {
        t->slots[i].key = *key;
        t->used++;
    }
    ASSERT(t->slots[i].count < UINT32_MAX);
    return ++t->slots[i].count;
}

/* Empty slot i and shift back the entries after it that probed past it
 * (invariant 3). */
static void delete_at(struct addr_counts *t, uint32_t i)
{
    uint32_t mask = t->capacity - 1;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (t->slots[j].count == 0)
            break;
        uint32_t h = home(t, &t->slots[j].key);
        /* Entry j may move to i if i lies cyclically in [h, j). */
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    memset(&t->slots[i], 0, sizeof(t->slots[i]));
    t->used--;
}

void addr_counts_remove(struct addr_counts *t, const struct addr_key *key)
{
    if (key->family == 0 || t->capacity == 0)
        return;
    uint32_t i = find(t, key);
    ASSERT(t->slots[i].count > 0); /* it was counted */
    if (--t->slots[i].count == 0)
        delete_at(t, i);
}

uint32_t addr_counts_get(const struct addr_counts *t,
                         const struct addr_key *key)
{
    if (key->family == 0 || t->capacity == 0)
        return 0;
    return t->slots[find(t, key)].count;
}
