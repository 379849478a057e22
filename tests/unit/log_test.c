/* core/log: the body ring keeps every entry's body intact through appends,
 * truncations and compactions, and log_free_ranges() never reports a byte
 * of a body held (the runtime gives those ranges' memory back, which zeroes
 * them); what it reports covers the ring's free space, so that memory is
 * given back. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"

#define ARENA 4096u

static uint64_t next_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t pattern(uint64_t op, uint32_t i)
{
    return (uint8_t)(op * 131u + i * 7u + 1u);
}

/* Append op l->op + 1 with a body of size bytes; false if no room. */
static bool append(struct log *l, uint32_t size)
{
    static uint8_t body[ARENA];
    uint64_t op = l->op + 1;
    for (uint32_t i = 0; i < size; i++)
        body[i] = pattern(op, i);
    uint64_t parent;
    assert_true(log_checksum(l, l->op, &parent));
    struct entry e = {.h = {.op = op,
                            .parent = parent,
                            .checksum = op * 1000003u + size,
                            .body_size = size},
                      .body = body};
    return log_append(l, &e);
}

/* What the runtime's madvise does to the free ranges: their bytes are gone.
 * Returns the free bytes reported. */
static uint64_t scrub_free(struct log *l)
{
    struct log_range r[2];
    uint32_t n = log_free_ranges(l, r);
    assert_true(n <= 2);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_true(r[i].size > 0);
        assert_true(r[i].offset + r[i].size <= l->bytes_max);
        memset(l->arena + r[i].offset, 0xEE, r[i].size);
        total += r[i].size;
    }
    if (n == 2)
        assert_true(r[0].offset + r[0].size <= r[1].offset);
    return total;
}

static void assert_bodies_intact(const struct log *l, uint64_t seed)
{
    for (uint64_t op = l->base + 1; op <= l->op; op++) {
        struct entry e;
        assert_true(log_entry(l, op, &e));
        for (uint32_t i = 0; i < e.h.body_size; i++)
            if (e.body[i] != pattern(op, i))
                fail_msg("seed %" PRIu64 ": op %" PRIu64
                         " byte %u was overwritten",
                         seed, op, i);
    }
}

/* Random appends (bodies of 0 to a third of the ring), truncations and
 * compactions; after each, the free ranges are scrubbed and every body
 * held is checked. */
static void free_ranges_never_cover_a_body(void **state)
{
    (void)state;
    uint64_t wrapped = 0, full = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        uint64_t x = seed;
        struct log l;
        assert_true(log_init(&l, 64, ARENA));
        log_reset(&l, 10, 77, 0);
        for (int step = 0; step < 400; step++) {
            uint64_t r = next_rand(&x);
            uint64_t held = l.op - l.base;
            if (r % 10 < 6) {
                uint32_t size = (uint32_t)((r >> 8) % (ARENA / 3));
                if (!append(&l, size))
                    full++;
            } else if (r % 10 < 7 && held > 0) {
                log_truncate(&l, l.op - (r >> 8) % (held < 3 ? held : 3));
            } else if (held > 0) {
                log_compact(&l, l.base + 1 + (r >> 8) % held);
            }
            if (l.op > l.base && l.tail < l.head)
                wrapped++;
            uint64_t free_bytes = scrub_free(&l);
            /* Everything but the bodies (and, wrapped, the gap at the
             * ring's end, less than one body) is reported. */
            uint64_t gap = l.bytes_max - l.bytes - free_bytes;
            assert_true(free_bytes + l.bytes <= l.bytes_max);
            assert_true(gap < ARENA / 3);
            assert_bodies_intact(&l, seed);
        }
        log_deinit(&l);
    }
    assert_true(wrapped > 1000); /* the wrapped layout was exercised */
    assert_true(full > 100);     /* and a full ring */
}

static void an_empty_log_frees_the_whole_ring(void **state)
{
    (void)state;
    struct log l;
    assert_true(log_init(&l, 8, ARENA));
    log_reset(&l, 0, 0, 0);
    struct log_range r[2];
    assert_int_equal(log_free_ranges(&l, r), 1);
    assert_int_equal(r[0].offset, 0);
    assert_int_equal(r[0].size, ARENA);
    assert_true(append(&l, 1000));
    assert_true(append(&l, 1000));
    log_compact(&l, 1);
    /* The first body's bytes are free again, the second's are not. */
    assert_int_equal(log_free_ranges(&l, r), 2);
    assert_int_equal(r[0].offset, 0);
    assert_int_equal(r[0].size, 1000);
    assert_int_equal(r[1].offset, 2000);
    assert_int_equal(r[1].size, ARENA - 2000);
    log_compact(&l, 2);
    assert_int_equal(log_free_ranges(&l, r), 1);
    assert_int_equal(r[0].size, ARENA);
    log_deinit(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(free_ranges_never_cover_a_body),
        cmocka_unit_test(an_empty_log_frees_the_whole_ring),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
