/* range_mem — COHORT.RANGE's cost on a store of N keys (default 1M): the
 * ordered index's memory per key (bytes asked of malloc and bytes malloc
 * gave) and the time of one COHORT.RANGE start "" LIMIT 100 from a random
 * start, p50/p99/max over 10000 calls, in process (no network). Build and
 * run as bench/RESULTS.md says. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/command.h"
#include "kv/kv.h"

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    struct kv_config config = kv_config_default();
    struct kv kv;
    if (kv_init(&kv, &config) != 0)
        return 1;
    char key[32], value[17] = "0123456789abcdef";
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        /* Keys in a scattered order, as clients would write them. */
        uint64_t k = (i * 2654435761u) % n;
        int len =
            snprintf(key, sizeof(key), "key:%010llu", (unsigned long long)k);
        if (kv_put(&kv, (const uint8_t *)key, (size_t)len,
                   (const uint8_t *)value, 16, i + 1) != 0)
            return 1;
    }
    uint64_t load_ns = now_ns() - t0;
    uint64_t usable = 0;
    for (const struct kv_index_node *x = kv.index.head[0]; x;
         x = kv_index_next(x))
        usable += malloc_usable_size((void *)x);
    enum { CALLS = 10000 };
    static uint64_t took[CALLS];
    struct resp_buf out;
    resp_buf_init(&out, 2);
    for (int c = 0; c < CALLS; c++) {
        int len = snprintf(key, sizeof(key), "key:%010llu",
                           (unsigned long long)(((uint64_t)c * 7919) % n));
        struct resp_arg args[] = {{"COHORT.RANGE", 12},
                                  {key, (size_t)len},
                                  {"", 0},
                                  {"LIMIT", 5},
                                  {"100", 3}};
        out.size = 0;
        uint64_t s = now_ns();
        kv_query(&kv, 5, args, &out);
        took[c] = now_ns() - s;
    }
    qsort(took, CALLS, sizeof(took[0]), by_value);
    printf("keys %llu, loaded in %.2f s\n", (unsigned long long)n,
           load_ns / 1e9);
    printf("index: %.1f bytes/key asked of malloc, %.1f bytes/key usable "
           "(malloc_usable_size), levels %u\n",
           (double)kv.index.memory_size / (double)n, (double)usable / (double)n,
           kv.index.level);
    printf("store without index: %.1f bytes/key (kv memory_size)\n",
           (double)kv.memory_size / (double)n);
    printf("COHORT.RANGE LIMIT 100 (reply %zu bytes): p50 %.1f us, p99 %.1f "
           "us, max %.1f us over %d calls\n",
           out.size, took[CALLS / 2] / 1e3, took[CALLS * 99 / 100] / 1e3,
           took[CALLS - 1] / 1e3, CALLS);
    resp_buf_deinit(&out);
    kv_deinit(&kv);
    return 0;
}
