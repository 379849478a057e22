/* runtime/snapshot_stream: every byte the loop appends reaches the thread's
 * writer, in order, once; the loop stops at the bound and the thread wakes
 * it when there is room again; a failed write stops the stream and wakes
 * the loop; the loop's error, or a dropped stream, reaches the thread even
 * when it waits on an empty stream; chunks are reused from one snapshot to
 * the next. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/snapshot_stream.h"

struct sink {
    struct snapshot_stream *s;
    uint8_t *out;
    size_t out_size, out_cap;
    size_t writes;
    size_t fail_at;  /* if not 0: the write with this number fails */
    atomic_bool *go; /* if set: the first write waits for it */
    int rc;          /* snapshot_stream_read's */
    struct cohort_err err;
};

static atomic_int wakes;

static void count_wake(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&wakes, 1);
}

static int sink_write(void *ctx, const void *data, size_t size)
{
    struct sink *k = ctx;
    while (k->go && !atomic_load(k->go))
        usleep(100);
    k->writes++;
    if (k->fail_at && k->writes == k->fail_at)
        return -COHORT_ENOSPC;
    assert_true(k->out_size + size <= k->out_cap);
    memcpy(k->out + k->out_size, data, size);
    k->out_size += size;
    return 0;
}

static void *reader(void *arg)
{
    struct sink *k = arg;
    err_clear(&k->err);
    k->rc = snapshot_stream_read(k->s, sink_write, k, &k->err);
    return NULL;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Wait up to 10 s for wakes to pass seen; false if it did not. */
static bool woken_after(int seen)
{
    for (int i = 0; i < 100000; i++) {
        if (atomic_load(&wakes) > seen)
            return true;
        usleep(100);
    }
    return false;
}

/* Stream total bytes in appends of 1 B to 1 MiB, as the node does: a
 * "slice" of appends while there is room, published after each. */
static void stream_through(struct snapshot_stream *s, size_t total,
                           uint64_t seed)
{
    uint8_t *in = malloc(total);
    assert_non_null(in);
    uint64_t x = seed;
    for (size_t i = 0; i < total; i++)
        in[i] = (uint8_t)rng_next(&x);
    atomic_bool go = false;
    struct sink k = {.s = s, .out = malloc(total), .out_cap = total, .go = &go};
    assert_non_null(k.out);
    snapshot_stream_reset(s);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader, &k), 0);
    size_t at = 0, full = 0;
    while (at < total) {
        int seen = atomic_load(&wakes);
        if (!snapshot_stream_has_room(s)) {
            /* The writer has not written a byte yet, so the bound is what
             * stopped us: at most one slice past it. */
            full++;
            if (full == 1)
                assert_true(at <= SNAPSHOT_STREAM_HIGH + (3u << 20));
            atomic_store(&go, true);
            assert_true(woken_after(seen));
            continue;
        }
        for (int i = 0; i < 3 && at < total; i++) {
            size_t n = rng_next(&x) % 4 == 0 ? rng_next(&x) % (1u << 20) + 1
                                             : rng_next(&x) % 300 + 1;
            if (n > total - at)
                n = total - at;
            assert_int_equal(snapshot_stream_append(s, in + at, n), 0);
            at += n;
        }
        snapshot_stream_publish(s);
    }
    atomic_store(&go, true);
    snapshot_stream_end(s, 0, NULL);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(k.rc, 0);
    assert_true(full > 0); /* the bound was reached */
    assert_int_equal(k.out_size, total);
    assert_memory_equal(k.out, in, total);
    free(in);
    free(k.out);
}

static void bytes_arrive_in_order_and_the_bound_holds(void **state)
{
    (void)state;
    struct snapshot_stream s;
    assert_int_equal(snapshot_stream_init(&s, count_wake, NULL), 0);
    stream_through(&s, 40u << 20, 7);
    /* Again, from reused chunks, ending in a partial one. */
    stream_through(&s, (24u << 20) + 12345, 99);
    snapshot_stream_destroy(&s);
}

static void a_failed_write_stops_the_stream_and_wakes_the_loop(void **state)
{
    (void)state;
    struct snapshot_stream s;
    assert_int_equal(snapshot_stream_init(&s, count_wake, NULL), 0);
    snapshot_stream_reset(&s);
    struct sink k = {
        .s = &s, .out = malloc(1u << 20), .out_cap = 1u << 20, .fail_at = 2};
    assert_non_null(k.out);
    pthread_t t;
    int seen = atomic_load(&wakes);
    assert_int_equal(pthread_create(&t, NULL, reader, &k), 0);
    static uint8_t block[SNAPSHOT_STREAM_CHUNK];
    memset(block, 'x', sizeof(block));
    for (int i = 0; i < 4; i++)
        assert_int_equal(snapshot_stream_append(&s, block, sizeof(block)), 0);
    snapshot_stream_publish(&s);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(k.rc, -COHORT_ENOSPC);
    assert_true(atomic_load(&wakes) > seen);
    assert_true(snapshot_stream_failed(&s));
    assert_int_equal(snapshot_stream_append(&s, block, 10), -COHORT_EIO);
    snapshot_stream_end(&s, -COHORT_ECLOSED, NULL);
    /* The next snapshot starts clean. */
    snapshot_stream_reset(&s);
    assert_false(snapshot_stream_failed(&s));
    assert_int_equal(snapshot_stream_append(&s, block, 10), 0);
    snapshot_stream_end(&s, -COHORT_ECLOSED, NULL);
    free(k.out);
    snapshot_stream_destroy(&s);
}

static void the_loops_error_reaches_the_thread(void **state)
{
    (void)state;
    struct snapshot_stream s;
    assert_int_equal(snapshot_stream_init(&s, count_wake, NULL), 0);
    /* With bytes still queued. */
    snapshot_stream_reset(&s);
    static uint8_t block[SNAPSHOT_STREAM_CHUNK];
    assert_int_equal(snapshot_stream_append(&s, block, sizeof(block)), 0);
    snapshot_stream_publish(&s);
    struct cohort_err why;
    err_set(&why, -COHORT_ECORRUPT, "the slices differ from the store");
    snapshot_stream_end(&s, -COHORT_ECORRUPT, &why);
    struct sink k = {.s = &s, .out = malloc(1u << 20), .out_cap = 1u << 20};
    assert_non_null(k.out);
    reader(&k);
    assert_int_equal(k.rc, -COHORT_ECORRUPT);
    assert_string_equal(k.err.message, "the slices differ from the store");
    assert_int_equal(k.writes, 0);

    /* A thread waiting on an empty stream, dropped by the loop. */
    snapshot_stream_reset(&s);
    k.writes = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader, &k), 0);
    usleep(20000);
    snapshot_stream_end(&s, -COHORT_ECLOSED, NULL);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(k.rc, -COHORT_ECLOSED);
    assert_non_null(strstr(k.err.message, "dropped"));

    /* An empty stream ended well writes nothing and succeeds. */
    snapshot_stream_reset(&s);
    snapshot_stream_end(&s, 0, NULL);
    reader(&k);
    assert_int_equal(k.rc, 0);
    assert_int_equal(k.writes, 0);
    free(k.out);
    snapshot_stream_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_arrive_in_order_and_the_bound_holds),
        cmocka_unit_test(a_failed_write_stops_the_stream_and_wakes_the_loop),
        cmocka_unit_test(the_loops_error_reaches_the_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
