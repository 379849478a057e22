/* kv_fuzz — kv_apply() on a fuzzed log entry body: the store's commands
 * and transactions (COHORT.TXN, COHORT.EXEC) as every replica applies them
 * from the log. Checks:
 *
 *   - apply never crashes and answers a reply of at least one byte that
 *     fits kv_reply_size_max();
 *   - the store's invariants hold afterwards (kv_invariants_hold);
 *   - a body answered "malformed" changed nothing (the state hash is the
 *     one before) and was counted in kv->malformed_ops;
 *   - two stores with different hash seeds give the same reply and hash.
 *
 * Input: one body, applied as op 3 to a store holding a=1 and b=text
 * (ops 1 and 2). tests/fuzz/corpus/kv holds bodies kv_command_encode()
 * produced (tests/fuzz/corpus_gen.c), and an ADDRESS op's body
 * (kv_address_encode(), kv/address.h).
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "kv/command.h"
#include "kv/kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted; /* bodies applied without a malformed answer */

/* A small store so that the fuzzer reaches the limits. */
static struct kv_config config(uint64_t seed)
{
    struct kv_config c = kv_config_default();
    c.key_size_max = 64;
    c.value_size_max = 256;
    c.hash_seed = seed;
    return c;
}

static void put(struct kv *kv, const char *key, const char *value, uint64_t op)
{
    kv->op = op;
    ASSERT(kv_put(kv, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                  strlen(value), op) == 0);
}

static size_t apply(struct kv *kv, uint64_t seed, const uint8_t *body,
                    size_t size, uint8_t *reply, size_t reply_max,
                    bool *malformed)
{
    struct kv_config c = config(seed);
    ASSERT(kv_init(kv, &c) == 0);
    put(kv, "a", "1", 1);
    put(kv, "b", "text", 2);
    uint64_t hash = kv_state_hash(kv);
    size_t n = kv_apply(kv, 3, 3000, body, size, reply, reply_max);
    ASSERT(n >= 1 && n <= reply_max);
    ASSERT(kv_invariants_hold(kv));
    *malformed = kv->malformed_ops > 0;
    if (*malformed)
        ASSERT(kv_state_hash(kv) == hash);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct kv_config c = config(0);
    size_t reply_max = kv_reply_size_max(&c);
    uint8_t *r1 = malloc(reply_max);
    uint8_t *r2 = malloc(reply_max);
    ASSERT(r1 && r2);
    struct kv a, b;
    bool ma, mb;
    size_t n1 = apply(&a, 0, data, size, r1, reply_max, &ma);
    size_t n2 =
        apply(&b, 0x9e3779b97f4a7c15ull, data, size, r2, reply_max, &mb);
    ASSERT(n1 == n2 && memcmp(r1, r2, n1) == 0 && ma == mb);
    ASSERT(kv_state_hash(&a) == kv_state_hash(&b));
    if (!ma)
        accepted++;
    kv_deinit(&a);
    kv_deinit(&b);
    free(r1);
    free(r2);
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "kv_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
