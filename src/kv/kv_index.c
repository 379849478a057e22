#include "kv/kv_index.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"
#include "kv/kv.h"

void kv_index_init(struct kv_index *x, uint64_t seed)
{
    memset(x, 0, sizeof(*x));
    x->level = 1;
    x->rng = seed ^ 0x6a09e667f3bcc908ull;
}

void kv_index_clear(struct kv_index *x)
{
    struct kv_index_node *n = x->head[0];
    while (n != NULL) {
        struct kv_index_node *next = n->next[0];
        free(n);
        n = next;
    }
    uint64_t rng = x->rng;
    memset(x, 0, sizeof(*x));
    x->level = 1;
    x->rng = rng;
}

int kv_key_compare(const uint8_t *a, size_t a_size, const uint8_t *b,
                   size_t b_size)
{
    size_t common = a_size < b_size ? a_size : b_size;
    int c = common ? memcmp(a, b, common) : 0;
    if (c != 0)
        return c;
    return (a_size > b_size) - (a_size < b_size);
}

static int node_compare(const struct kv_index_node *n, const uint8_t *key,
                        size_t key_size)
{
    return kv_key_compare(kv_record_key(n->record), n->record->key_size, key,
                          key_size);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t random_level(struct kv_index *x)
{
    uint64_t bits = splitmix64(&x->rng);
    uint32_t level = 1;
    while (level < KV_INDEX_LEVEL_MAX && (bits & 3) == 0) {
        level++;
        bits >>= 2;
    }
    return level;
}

/* The node whose next[level] is link, or NULL if link is head[level]. */
static struct kv_index_node *
node_of_link(struct kv_index *x, struct kv_index_node **link, uint32_t level)
{
    if (link == &x->head[level])
        return NULL;
    return (struct kv_index_node *)((char *)(link - level) -
                                    offsetof(struct kv_index_node, next));
}

/* Fill links[i] with the link, at level i, after which key belongs: the
 * last link at that level that points to a key < key. */
static void find_links(struct kv_index *x, const uint8_t *key, size_t key_size,
                       struct kv_index_node **links[KV_INDEX_LEVEL_MAX])
{
    struct kv_index_node **at = NULL; /* the next[] array of a node */
    for (uint32_t i = x->level; i-- > 0;) {
        struct kv_index_node **link = at ? &at[i] : &x->head[i];
        while (*link != NULL && node_compare(*link, key, key_size) < 0) {
            at = (*link)->next;
            link = &at[i];
        }
        links[i] = link;
    }
}

int kv_index_insert(struct kv_index *x, const struct kv_record *r)
{
    struct kv_index_node **links[KV_INDEX_LEVEL_MAX];
    if (x->tail[0] != NULL &&
        node_compare(x->tail[0], kv_record_key(r), r->key_size) < 0) {
        /* Past the last key (a restore adds keys in order): after the last
         * node of every level, without a search. */
        for (uint32_t i = 0; i < x->level; i++)
            links[i] = x->tail[i] ? &x->tail[i]->next[i] : &x->head[i];
    } else {
        find_links(x, kv_record_key(r), r->key_size, links);
    }
    ASSERT(*links[0] == NULL ||
           node_compare(*links[0], kv_record_key(r), r->key_size) != 0);
    uint32_t level = random_level(x);
    size_t size = sizeof(struct kv_index_node) + level * sizeof(void *);
    struct kv_index_node *n = malloc(size);
    if (n == NULL)
        return -COHORT_ENOMEM;
    for (uint32_t i = x->level; i < level; i++)
        links[i] = &x->head[i];
    if (level > x->level)
        x->level = level;
    n->record = r;
    n->level = level;
    for (uint32_t i = 0; i < level; i++) {
        n->next[i] = *links[i];
        *links[i] = n;
        if (n->next[i] == NULL)
            x->tail[i] = n;
    }
    x->count++;
    x->memory_size += size;
    return 0;
}

void kv_index_remove(struct kv_index *x, const uint8_t *key, size_t key_size)
{
    struct kv_index_node **links[KV_INDEX_LEVEL_MAX];
    find_links(x, key, key_size, links);
    struct kv_index_node *n = *links[0];
    ASSERT(n != NULL && node_compare(n, key, key_size) == 0);
    for (uint32_t i = 0; i < n->level; i++) {
        ASSERT(*links[i] == n);
        *links[i] = n->next[i];
        if (x->tail[i] == n)
            x->tail[i] = node_of_link(x, links[i], i);
    }
    while (x->level > 1 && x->head[x->level - 1] == NULL)
        x->level--;
    x->count--;
    x->memory_size -= sizeof(struct kv_index_node) + n->level * sizeof(void *);
    free(n);
}

struct kv_index_node *kv_index_find(struct kv_index *x, const uint8_t *key,
                                    size_t key_size)
{
    struct kv_index_node **links[KV_INDEX_LEVEL_MAX];
    find_links(x, key, key_size, links);
    struct kv_index_node *n = *links[0];
    ASSERT(n != NULL && node_compare(n, key, key_size) == 0);
    return n;
}

const struct kv_index_node *kv_index_seek(const struct kv_index *x,
                                          const uint8_t *key, size_t key_size)
{
    struct kv_index_node **links[KV_INDEX_LEVEL_MAX];
    /* find_links() only reads through x here. */
    find_links((struct kv_index *)x, key, key_size, links);
    return *links[0];
}

bool kv_index_valid(const struct kv_index *x, uint64_t key_count)
{
    if (x->count != key_count || x->level < 1 || x->level > KV_INDEX_LEVEL_MAX)
        return false;
    uint64_t n = 0, memory = 0;
    const struct kv_index_node *prev = NULL;
    for (const struct kv_index_node *c = x->head[0]; c; c = c->next[0]) {
        if (prev != NULL && node_compare(prev, kv_record_key(c->record),
                                         c->record->key_size) >= 0)
            return false;
        if (c->level < 1 || c->level > x->level)
            return false;
        memory += sizeof(struct kv_index_node) + c->level * sizeof(void *);
        prev = c;
        n++;
    }
    if (x->tail[0] != prev)
        return false;
    for (uint32_t i = 1; i < x->level; i++) {
        uint64_t at_level = 0;
        const struct kv_index_node *last = NULL;
        for (const struct kv_index_node *c = x->head[i]; c; c = c->next[i]) {
            at_level++;
            last = c;
        }
        if (at_level > n || x->tail[i] != last)
            return false;
    }
    for (uint32_t i = x->level; i < KV_INDEX_LEVEL_MAX; i++)
        if (x->head[i] != NULL || x->tail[i] != NULL)
            return false;
    return n == key_count && memory == x->memory_size;
}
