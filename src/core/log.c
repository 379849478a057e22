/* log — the in-memory log: a slot ring for headers and a byte ring for
 * bodies. See log.h. */
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

bool log_init(struct log *l, uint32_t ops_max, uint64_t bytes_max)
{
    ASSERT(ops_max > 0);
    memset(l, 0, sizeof(*l));
    l->ops_max = ops_max;
    l->bytes_max = bytes_max;
    l->slots = calloc(ops_max, sizeof(*l->slots));
    l->arena = malloc(bytes_max ? bytes_max : 1);
    if (!l->slots || !l->arena) {
        log_deinit(l);
        return false;
    }
    return true;
}

void log_deinit(struct log *l)
{
    free(l->slots);
    free(l->arena);
    l->slots = NULL;
    l->arena = NULL;
}

void log_reset(struct log *l, uint64_t base, uint64_t base_checksum,
               uint64_t base_timestamp_ms)
{
    l->base = base;
    l->op = base;
    l->base_checksum = base_checksum;
    l->base_timestamp_ms = base_timestamp_ms;
    l->head = 0;
    l->tail = 0;
    l->bytes = 0;
}

static struct log_slot *slot(const struct log *l, uint64_t op)
{
    return &l->slots[op % l->ops_max];
}

/* Find ring room for n bytes; see the invariants in log.h. Data occupies
 * [head, tail) when tail >= head, else [head, end) and [0, tail). A wrapped
 * tail stays strictly below head so the two layouts never look alike. */
static bool arena_place(const struct log *l, uint64_t n, uint64_t *offset)
{
    if (l->op == l->base) {
        if (n > l->bytes_max)
            return false;
        *offset = 0;
        return true;
    }
    if (l->tail >= l->head) {
        if (l->bytes_max - l->tail >= n) {
            *offset = l->tail;
            return true;
        }
        if (l->head > n) {
            *offset = 0;
            return true;
        }
        return false;
    }
    if (l->head - l->tail > n) {
        *offset = l->tail;
        return true;
    }
    return false;
}

bool log_has_room(const struct log *l, uint32_t body_size)
{
    uint64_t offset;
    if (l->op - l->base >= l->ops_max)
        return false;
    return arena_place(l, body_size, &offset);
}

bool log_append(struct log *l, const struct entry *e)
{
    ASSERT(e->h.op == l->op + 1);
    uint64_t parent;
    ASSERT(log_checksum(l, l->op, &parent));
    ASSERT(e->h.parent == parent);
    if (l->op - l->base >= l->ops_max)
        return false;
    uint64_t offset;
    if (!arena_place(l, e->h.body_size, &offset))
        return false;
    if (l->op == l->base) {
        l->head = offset;
        l->tail = offset;
    }
    struct log_slot *s = slot(l, e->h.op);
    s->h = e->h;
    s->body_offset = offset;
    if (e->h.body_size)
        memcpy(l->arena + offset, e->body, e->h.body_size);
    l->tail = offset + e->h.body_size;
    l->bytes += e->h.body_size;
    l->op = e->h.op;
    return true;
}

void log_truncate(struct log *l, uint64_t op)
{
    ASSERT(op >= l->base);
    ASSERT(op <= l->op);
    while (l->op > op) {
        l->bytes -= slot(l, l->op)->h.body_size;
        l->op--;
    }
    if (l->op == l->base) {
        l->head = 0;
        l->tail = 0;
        ASSERT(l->bytes == 0);
        return;
    }
    const struct log_slot *last = slot(l, l->op);
    l->tail = last->body_offset + last->h.body_size;
}

void log_compact(struct log *l, uint64_t op)
{
    ASSERT(op >= l->base);
    ASSERT(op <= l->op);
    if (op == l->base)
        return;
    const struct log_slot *s = slot(l, op);
    uint64_t checksum = s->h.checksum;
    uint64_t timestamp = s->h.timestamp_ms;
    for (uint64_t o = l->base + 1; o <= op; o++)
        l->bytes -= slot(l, o)->h.body_size;
    l->base = op;
    l->base_checksum = checksum;
    l->base_timestamp_ms = timestamp;
    if (l->op == l->base) {
        l->head = 0;
        l->tail = 0;
        ASSERT(l->bytes == 0);
        return;
    }
    l->head = slot(l, op + 1)->body_offset;
}

const struct entry_header *log_header(const struct log *l, uint64_t op)
{
    if (op <= l->base || op > l->op)
        return NULL;
    const struct log_slot *s = slot(l, op);
    DEBUG_ASSERT(s->h.op == op);
    return &s->h;
}

bool log_entry(const struct log *l, uint64_t op, struct entry *out)
{
    if (op <= l->base || op > l->op)
        return false;
    const struct log_slot *s = slot(l, op);
    ASSERT(s->h.op == op);
    out->h = s->h;
    out->body = l->arena + s->body_offset;
    return true;
}

bool log_checksum(const struct log *l, uint64_t op, uint64_t *checksum)
{
    if (op == l->base) {
        *checksum = l->base_checksum;
        return true;
    }
    const struct entry_header *h = log_header(l, op);
    if (!h)
        return false;
    *checksum = h->checksum;
    return true;
}

uint64_t log_last_timestamp(const struct log *l)
{
    if (l->op == l->base)
        return l->base_timestamp_ms;
    return slot(l, l->op)->h.timestamp_ms;
}

uint32_t log_free_ranges(const struct log *l, struct log_range out[2])
{
    uint32_t n = 0;
    if (l->op == l->base) {
        if (l->bytes_max)
            out[n++] = (struct log_range){0, l->bytes_max};
        return n;
    }
    if (l->tail >= l->head) { /* bodies in [head, tail) */
        if (l->head > 0)
            out[n++] = (struct log_range){0, l->head};
        if (l->bytes_max > l->tail)
            out[n++] = (struct log_range){l->tail, l->bytes_max - l->tail};
        return n;
    }
    /* Wrapped: bodies in [head, end of the last one before the wrap) and
     * [0, tail), with tail < head. */
    out[n++] = (struct log_range){l->tail, l->head - l->tail};
    return n;
}
