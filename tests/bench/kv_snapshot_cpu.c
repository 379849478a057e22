/* kv_snapshot_cpu — the CPU time of writing and restoring a snapshot of a
 * store of N keys (100-byte values, keys "k<random>"), in memory: no disk,
 * no fork, no cluster, so the figure is the store's own work and does not
 * swing with the machine's load the way wall-clock times do. Indicative
 * (bench/RESULTS.md), never a timing test; ctest runs it at 1,000 keys as a
 * smoke test, which fails if the restored store does not hash the same.
 *
 *   build/kv_snapshot_cpu [N]     (default 1,000,000)
 *
 * Prints: keys K snapshot B bytes: write W s cpu, restore R s cpu
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "kv/kv.h"
#include "kv/snapshot.h"

struct buf {
    uint8_t *data;
    size_t size, cap, pos;
};

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int buf_write(void *ctx, const void *data, size_t size)
{
    struct buf *b = ctx;
    if (b->size + size > b->cap) {
        size_t cap = b->cap ? b->cap : 1u << 20;
        while (cap < b->size + size)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (p == NULL)
            return -COHORT_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->size, data, size);
    b->size += size;
    return 0;
}

static int buf_read(void *ctx, void *data, size_t size, size_t *got)
{
    struct buf *b = ctx;
    size_t n = b->size - b->pos < size ? b->size - b->pos : size;
    memcpy(data, b->data + b->pos, n);
    b->pos += n;
    *got = n;
    return 0;
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000u;
    if (n == 0 || n > (1ull << 32)) {
        fprintf(stderr, "usage: kv_snapshot_cpu [N], 1 <= N <= 2^32\n");
        return 2;
    }
    struct kv_config config = kv_config_default();
    struct kv kv, copy;
    if (kv_init(&kv, &config) != 0 || kv_init(&copy, &config) != 0) {
        fprintf(stderr, "kv_snapshot_cpu: no memory for the stores\n");
        return 1;
    }
    uint8_t value[100];
    memset(value, 'v', sizeof(value));
    uint64_t state = 1;
    for (uint64_t i = 0; i < n; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "k%" PRIu64,
                           next_random(&state) % (4 * n));
        if (kv_put(&kv, (const uint8_t *)key, (size_t)len, value, sizeof(value),
                   i + 1) != 0) {
            fprintf(stderr, "kv_snapshot_cpu: no memory at key %" PRIu64 "\n",
                    i);
            return 1;
        }
    }
    struct buf b = {0};
    struct cohort_err err;
    err_clear(&err);
    double t0 = cpu_seconds();
    if (kv_snapshot_write(&kv, buf_write, &b, &err) != 0) {
        fprintf(stderr, "kv_snapshot_cpu: %s\n", err.message);
        return 1;
    }
    double t1 = cpu_seconds();
    if (kv_restore(&copy, buf_read, &b, &err) != 0) {
        fprintf(stderr, "kv_snapshot_cpu: %s\n", err.message);
        return 1;
    }
    double t2 = cpu_seconds();
    if (kv_state_hash(&copy) != kv_state_hash(&kv) ||
        copy.key_count != kv.key_count) {
        fprintf(stderr, "kv_snapshot_cpu: the restored store differs\n");
        return 1;
    }
    printf("keys %" PRIu64 " snapshot %zu bytes: write %.3f s cpu, restore "
           "%.3f s cpu\n",
           kv.key_count, b.size, t1 - t0, t2 - t1);
    free(b.data);
    kv_deinit(&copy);
    kv_deinit(&kv);
    return 0;
}
