/* replica_fuzz — the protocol core behind message_decode(): the input, read
 * as a script, drives a group of three replica cores (fuzz_group.h) in
 * which a replica in some state (the first byte picks: fresh, primary,
 * backup with a log, in a view change) is fed hostile messages, built
 * field by field with values near its own state and at the edges of the
 * ranges, raw bytes, and honest messages with one field patched, between
 * honest deliveries, ticks, storage rounds, requests and reads. No core
 * may assert: replica_invariants() runs after every step (and the
 * DEBUG_ASSERTs under make fuzz).
 *
 * libFuzzer: make fuzz (tests/fuzz/README.md). Plain program: -DFUZZ_MAIN
 * (tests/fuzz/fuzz_main.h) replays tests/fuzz/corpus/replica (pseudo-random
 * scripts from tests/fuzz/corpus_gen.c, one per starting state) and
 * mutations of it, as ctest's fuzz/replica does. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_group.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs in which at least one hostile message passed message_decode()
 * and so reached the core's handlers. */
static uint64_t accepted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t before = fuzz_group_stats()->injected_decoded;
    fuzz_group_run(data, size);
    if (fuzz_group_stats()->injected_decoded > before)
        accepted++;
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "replica_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
