/* snapshot_stream — the bounded queue of bytes from the loop, which
 * serializes the store in slices (kv_snapshot_begin/step), to the snapshot
 * thread (runtime/snapshot_job), which writes them to the file as they
 * come.
 *
 * Why: the slices used to go to one buffer of the whole store, which the
 * thread wrote after the last slice. That buffer cost as much memory as
 * the store, so stores past 128 MiB forked instead (issue 16). Through the
 * stream, the memory is a few MiB whatever the store's size, and the file
 * is written while the loop slices.
 *
 * How: the loop appends (snapshot_stream_append, the slicer's writer) into
 * fixed-size chunks, never blocking; full chunks are published to the
 * thread once per slice (snapshot_stream_publish). The loop takes the next
 * slice only while fewer than SNAPSHOT_STREAM_HIGH bytes wait
 * (snapshot_stream_has_room); when it finds the stream full it stops
 * slicing, and the thread calls wake(wake_ctx) once the waiting bytes fall
 * to SNAPSHOT_STREAM_LOW, or when it stops reading. One append can exceed
 * the bound by what a slice writes past it (one record, or the rest of the
 * store when FLUSHALL drains the walk): the loop never waits on the disk.
 * Chunks the thread has written go back to a free list that is kept
 * between snapshots (a fresh chunk page-faults on every 4 KiB).
 *
 * The thread reads (snapshot_stream_read) until the loop ends the stream
 * (snapshot_stream_end): with 0 it has written everything; with an error
 * (the slicer's, or the node closing) it returns that error. If the
 * thread's own write fails, it stops reading, marks the stream failed and
 * wakes the loop, which then drops the slicing; appends after that are
 * dropped and fail.
 *
 * States, per snapshot: OPEN (snapshot_stream_reset, in the loop, no
 * thread reading) -> ENDED by the loop, or FAILED by the thread -> the
 * thread returns and is joined -> reset again. */
#ifndef COHORT_SNAPSHOT_STREAM_H
#define COHORT_SNAPSHOT_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SNAPSHOT_STREAM_CHUNK (256u << 10)
#define SNAPSHOT_STREAM_HIGH (8u << 20)
#define SNAPSHOT_STREAM_LOW (4u << 20)

struct snapshot_stream_chunk;

struct snapshot_stream {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* the thread waits for bytes or the end */
    void (*wake)(void *ctx);
    void *wake_ctx;
    /* The loop's alone: the chunk being filled, and full chunks not yet
     * published. */
    struct snapshot_stream_chunk *fill;
    struct snapshot_stream_chunk *ready_head, *ready_tail;
    size_t ready_bytes;
    /* Under mu. */
    struct snapshot_stream_chunk *queue_head, *queue_tail;
    size_t queued; /* bytes published and not yet written */
    struct snapshot_stream_chunk *free_list;
    size_t free_count;
    bool ended;
    int end_rc;
    struct cohort_err end_err;
    bool wake_wanted;   /* the loop stopped slicing: the stream was full */
    atomic_bool failed; /* the thread stopped reading (its write failed) */
};

/* wake(ctx) is called from the thread (it must be thread-safe, e.g.
 * uv_async_send). 0, or -COHORT_ENOMEM/-COHORT_EIO. */
int snapshot_stream_init(struct snapshot_stream *s, void (*wake)(void *ctx),
                         void *wake_ctx);
/* No thread may be reading. Frees every chunk. */
void snapshot_stream_destroy(struct snapshot_stream *s);

/* In the loop, with no thread reading: begin a new snapshot. */
void snapshot_stream_reset(struct snapshot_stream *s);
/* In the loop, the slicer's writer (ctx is the stream): copy data in.
 * -COHORT_ENOMEM, or -COHORT_EIO once the thread stopped reading. */
int snapshot_stream_append(void *ctx, const void *data, size_t size);
/* In the loop, after a slice: hand full chunks to the thread. */
void snapshot_stream_publish(struct snapshot_stream *s);
/* In the loop, before a slice: true if fewer than SNAPSHOT_STREAM_HIGH
 * bytes wait. If false, the thread will call wake() once they fall to
 * SNAPSHOT_STREAM_LOW (or it stops reading). */
bool snapshot_stream_has_room(struct snapshot_stream *s);
/* In the loop: true once the thread stopped reading (its write failed). */
bool snapshot_stream_failed(const struct snapshot_stream *s);
/* In the loop: no more bytes. rc 0 (all of them were appended) hands the
 * last partial chunk over; an error (err says why; NULL: the stream is
 * dropped) makes the thread's read return it. */
void snapshot_stream_end(struct snapshot_stream *s, int rc,
                         const struct cohort_err *err);

/* In the thread: write(wctx, data, size) every byte as it comes, until the
 * loop ends the stream. 0 if all were written, the loop's error (err), or
 * write()'s error (the stream is then failed and the loop woken). */
int snapshot_stream_read(struct snapshot_stream *s,
                         int (*write)(void *wctx, const void *data,
                                      size_t size),
                         void *wctx, struct cohort_err *err);

#endif
