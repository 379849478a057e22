/* snapshot_stream — bytes from the slicing loop to the snapshot thread.
 * See snapshot_stream.h. */
#include "runtime/snapshot_stream.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

struct snapshot_stream_chunk {
    struct snapshot_stream_chunk *next;
    size_t size;
    uint8_t data[SNAPSHOT_STREAM_CHUNK];
};

/* Chunks kept for the next snapshot: enough for a full stream. */
#define FREE_MAX (SNAPSHOT_STREAM_HIGH / SNAPSHOT_STREAM_CHUNK + 4u)

int snapshot_stream_init(struct snapshot_stream *s, void (*wake)(void *ctx),
                         void *wake_ctx)
{
    memset(s, 0, sizeof(*s));
    if (pthread_mutex_init(&s->mu, NULL) != 0)
        return -COHORT_EIO;
    if (pthread_cond_init(&s->cond, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        return -COHORT_EIO;
    }
    s->wake = wake;
    s->wake_ctx = wake_ctx;
    atomic_init(&s->failed, false);
    return 0;
}

static void free_list(struct snapshot_stream_chunk *c)
{
    while (c) {
        struct snapshot_stream_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void snapshot_stream_destroy(struct snapshot_stream *s)
{
    free(s->fill);
    free_list(s->ready_head);
    free_list(s->queue_head);
    free_list(s->free_list);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

/* Under mu: keep c for reuse, or free it past FREE_MAX. */
static void give_back(struct snapshot_stream *s,
                      struct snapshot_stream_chunk *c)
{
    if (s->free_count >= FREE_MAX) {
        free(c);
        return;
    }
    c->next = s->free_list;
    s->free_list = c;
    s->free_count++;
}

static void give_back_list(struct snapshot_stream *s,
                           struct snapshot_stream_chunk *c)
{
    while (c) {
        struct snapshot_stream_chunk *next = c->next;
        give_back(s, c);
        c = next;
    }
}

void snapshot_stream_reset(struct snapshot_stream *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->fill)
        give_back(s, s->fill);
    give_back_list(s, s->ready_head);
    give_back_list(s, s->queue_head);
    s->fill = NULL;
    s->ready_head = s->ready_tail = NULL;
    s->ready_bytes = 0;
    s->queue_head = s->queue_tail = NULL;
    s->queued = 0;
    s->ended = false;
    s->end_rc = 0;
    err_clear(&s->end_err);
    s->wake_wanted = false;
    atomic_store(&s->failed, false);
    pthread_mutex_unlock(&s->mu);
}

static struct snapshot_stream_chunk *take_chunk(struct snapshot_stream *s)
{
    pthread_mutex_lock(&s->mu);
    struct snapshot_stream_chunk *c = s->free_list;
    if (c) {
        s->free_list = c->next;
        s->free_count--;
    }
    pthread_mutex_unlock(&s->mu);
    if (!c)
        c = malloc(sizeof(*c));
    if (c) {
        c->next = NULL;
        c->size = 0;
    }
    return c;
}

/* The loop: the filled chunk joins the ready list. */
static void fill_done(struct snapshot_stream *s)
{
    struct snapshot_stream_chunk *c = s->fill;
    s->fill = NULL;
    if (s->ready_tail)
        s->ready_tail->next = c;
    else
        s->ready_head = c;
    s->ready_tail = c;
    s->ready_bytes += c->size;
}

int snapshot_stream_append(void *ctx, const void *data, size_t size)
{
    struct snapshot_stream *s = ctx;
    if (atomic_load(&s->failed))
        return -COHORT_EIO;
    const uint8_t *p = data;
    while (size > 0) {
        if (!s->fill && !(s->fill = take_chunk(s)))
            return -COHORT_ENOMEM;
        size_t n = SNAPSHOT_STREAM_CHUNK - s->fill->size;
        if (n > size)
            n = size;
        memcpy(s->fill->data + s->fill->size, p, n);
        s->fill->size += n;
        p += n;
        size -= n;
        if (s->fill->size == SNAPSHOT_STREAM_CHUNK)
            fill_done(s);
    }
    return 0;
}

void snapshot_stream_publish(struct snapshot_stream *s)
{
    if (!s->ready_head)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->queue_tail)
        s->queue_tail->next = s->ready_head;
    else
        s->queue_head = s->ready_head;
    s->queue_tail = s->ready_tail;
    s->queued += s->ready_bytes;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    s->ready_head = s->ready_tail = NULL;
    s->ready_bytes = 0;
}

bool snapshot_stream_has_room(struct snapshot_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool room = s->queued < SNAPSHOT_STREAM_HIGH;
    if (!room)
        s->wake_wanted = true;
    pthread_mutex_unlock(&s->mu);
    return room;
}

bool snapshot_stream_failed(const struct snapshot_stream *s)
{
    return atomic_load(&((struct snapshot_stream *)s)->failed);
}

void snapshot_stream_end(struct snapshot_stream *s, int rc,
                         const struct cohort_err *err)
{
    if (rc == 0) {
        if (s->fill && s->fill->size > 0)
            fill_done(s);
        snapshot_stream_publish(s);
    }
    pthread_mutex_lock(&s->mu);
    ASSERT(!s->ended);
    s->ended = true;
    s->end_rc = rc;
    if (rc != 0 && err && err->code != 0)
        s->end_err = *err;
    else if (rc != 0)
        err_set(&s->end_err, rc, "the snapshot was dropped");
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

int snapshot_stream_read(struct snapshot_stream *s,
                         int (*write)(void *wctx, const void *data,
                                      size_t size),
                         void *wctx, struct cohort_err *err)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->queue_head && !s->ended)
            pthread_cond_wait(&s->cond, &s->mu);
        if (s->ended && s->end_rc != 0) {
            int rc = s->end_rc;
            *err = s->end_err;
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
        struct snapshot_stream_chunk *c = s->queue_head;
        if (!c) { /* ended, everything written */
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        s->queue_head = c->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
        pthread_mutex_unlock(&s->mu);

        int rc = write(wctx, c->data, c->size);

        pthread_mutex_lock(&s->mu);
        s->queued -= c->size;
        give_back(s, c);
        bool wake = false;
        if (rc != 0) {
            atomic_store(&s->failed, true);
            wake = true;
        } else if (s->wake_wanted && s->queued <= SNAPSHOT_STREAM_LOW) {
            s->wake_wanted = false;
            wake = true;
        }
        pthread_mutex_unlock(&s->mu);
        if (wake && s->wake)
            s->wake(s->wake_ctx);
        if (rc != 0)
            return err_set(err, rc, "write a snapshot's bytes");
    }
}
