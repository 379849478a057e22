/* feed — a stream's receiving connections. See feed.h. */
#include "server/feed.h"

#include <stddef.h>

#include "common/assert.h"

void feed_add(struct feed *f, struct feed_link *l, struct conn *c)
{
    ASSERT(!l->linked);
    l->prev = NULL;
    l->next = f->head;
    if (f->head)
        f->head->prev = l;
    else
        f->tail = l;
    f->head = l;
    l->conn = c;
    l->linked = true;
    l->behind = false;
    l->resume = 0;
    f->count++;
}

void feed_set_behind(struct feed *f, struct feed_link *l, bool behind,
                     uint64_t resume)
{
    ASSERT(l->linked || !behind);
    if (behind && !l->behind)
        f->behind++;
    if (!behind && l->behind) {
        ASSERT(f->behind > 0);
        f->behind--;
    }
    l->behind = behind;
    l->resume = resume;
}

void feed_remove(struct feed *f, struct feed_link *l)
{
    ASSERT(l->linked);
    feed_set_behind(f, l, false, 0);
    if (l->prev)
        l->prev->next = l->next;
    else
        f->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        f->tail = l->prev;
    l->prev = l->next = NULL;
    l->linked = false;
    ASSERT(f->count > 0);
    f->count--;
}

void feed_rotate(struct feed *f, struct feed_link *l)
{
    ASSERT(l->linked);
    if (l == f->head)
        return;
    f->tail->next = f->head;
    f->head->prev = f->tail;
    f->tail = l->prev;
    f->tail->next = NULL;
    l->prev = NULL;
    f->head = l;
}

void feed_pump_all(struct feed *f, bool (*pump)(struct conn *c))
{
    if (f->behind == 0)
        return;
    struct feed_link *l = f->head;
    while (l) {
        struct feed_link *next = l->next;
        if (l->behind && pump(l->conn)) {
            if (next) /* else the walk was through: start at the head */
                feed_rotate(f, next);
            return;
        }
        l = next;
    }
}
