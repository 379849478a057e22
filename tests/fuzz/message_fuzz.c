/* message_fuzz — feeds arbitrary bytes to the two decoders of untrusted
 * binary input: message_decode() (peer messages) and wal_record_decode()
 * (log records read from disk). Checks that a decode either fails or
 * yields a message whose entries all lie inside the input, continue from
 * base_op, chain by checksum and verify; and that re-encoding a decoded
 * message gives back the same bytes.
 *
 * libFuzzer: make fuzz (tests/fuzz/README.md). Plain program: -DFUZZ_MAIN
 * (tests/fuzz/fuzz_main.h) replays tests/fuzz/corpus/message (valid
 * messages and records from tests/fuzz/corpus_gen.c) and mutations of it,
 * as ctest's fuzz/message does. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "core/message.h"
#include "storage/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted;

static void check_message(const uint8_t *data, size_t size)
{
    struct message m;
    if (!message_decode(data, size, 5, &m))
        return;
    ASSERT(m.from < 5);
    ASSERT(m.entries_size <= size);
    size_t offset = 0;
    uint64_t parent = m.checksum;
    uint32_t count = 0;
    struct entry entries[64];
    struct entry e;
    while (message_entry_next(&m, &offset, &e)) {
        ASSERT(e.h.op == m.base_op + 1 + count);
        ASSERT(e.h.parent == parent);
        ASSERT(entry_verify(&e.h, e.body));
        ASSERT(e.body >= data && e.body + e.h.body_size <= data + size);
        parent = e.h.checksum;
        if (count < 64)
            entries[count] = e;
        count++;
    }
    ASSERT(count == m.entry_count);
    accepted++;
    if (count <= 64) {
        uint8_t *again = malloc(size);
        ASSERT(again);
        size_t n = message_encode(&m, entries, again, size);
        ASSERT(n == size);
        ASSERT(memcmp(again, data, size) == 0);
        free(again);
    }
}

static void check_record(const uint8_t *data, size_t size)
{
    struct entry e;
    uint64_t record_size = 0, commit = 0;
    const char *reason = NULL;
    if (wal_record_decode(data, size, &e, &commit, &record_size, &reason) !=
        0) {
        ASSERT(reason != NULL);
        return;
    }
    ASSERT(record_size <= size);
    accepted++;
    ASSERT(e.body >= data && e.body + e.h.body_size <= data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copies so a sanitizer sees any read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    ASSERT(copy);
    memcpy(copy, data, size);
    check_message(copy, size);
    check_record(copy, size);
    free(copy);
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "message_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
