/* message_fuzz — feeds arbitrary bytes to the two decoders of untrusted
 * binary input: message_decode() (peer messages) and wal_record_decode()
 * (log records read from disk). Checks that a decode either fails or
 * yields a message whose entries all lie inside the input, continue from
 * base_op, chain by checksum and verify; and that re-encoding a decoded
 * message gives back the same bytes.
 *
 * With libFuzzer:
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *         tests/fuzz/message_fuzz.c src/core/message.c src/common/entry.c \
 *         src/storage/wal.c src/storage/wal_recover.c src/storage/vfs_posix.c \
 *         src/common/err.c src/common/crc32c.c -lxxhash -lm -o
 * /tmp/message_fuzz /tmp/message_fuzz -max_total_time=60 /tmp/message_corpus
 * Without it (CI): compile with -DFUZZ_MAIN; it mutates valid messages and
 * records from a fixed pseudo-random sequence, INPUT_COUNT times. */
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
    uint64_t record_size = 0;
    const char *reason = NULL;
    if (wal_record_decode(data, size, &e, &record_size, &reason) != 0) {
        ASSERT(reason != NULL);
        return;
    }
    ASSERT(record_size <= size);
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
#ifndef INPUT_COUNT
#define INPUT_COUNT 100000
#endif

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A valid PREPARE with a few chained entries, and a valid WAL record. */
static size_t seed_message(uint8_t *out, size_t cap, int which)
{
    struct entry entries[3];
    uint8_t bodies[3][8];
    uint64_t parent = 77;
    for (int i = 0; i < 3; i++) {
        memset(bodies[i], 'a' + i, sizeof(bodies[i]));
        entries[i].h = (struct entry_header){
            .parent = parent,
            .op = 11 + (uint64_t)i,
            .client_id = 5,
            .request_no = (uint64_t)i + 1,
            .timestamp_ms = 1000,
            .view = 2,
            .body_size = (uint32_t)(i * 3),
            .kind = ENTRY_CLIENT,
        };
        entries[i].body = bodies[i];
        entry_seal(&entries[i].h, entries[i].body);
        parent = entries[i].h.checksum;
    }
    if (which == 1) {
        uint64_t n = wal_record_size(entries[2].h.body_size);
        ASSERT(n <= cap);
        wal_record_encode(&entries[2], out);
        return n;
    }
    struct message m = {.type = MSG_PREPARE,
                        .from = 1,
                        .view = 2,
                        .op = 13,
                        .commit = 10,
                        .checksum = 77,
                        .base_op = 10,
                        .entry_count = 3};
    return message_encode(&m, entries, out, cap);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            FILE *f = fopen(argv[i], "rb");
            if (!f)
                continue;
            static uint8_t buf[1 << 20];
            size_t n = fread(buf, 1, sizeof(buf), f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, n);
        }
        return 0;
    }
    uint8_t seeds[2][1024];
    size_t seed_sizes[2];
    for (int i = 0; i < 2; i++)
        seed_sizes[i] = seed_message(seeds[i], sizeof(seeds[i]), i);
    /* The seeds themselves must decode. */
    struct message m;
    ASSERT(message_decode(seeds[0], seed_sizes[0], 5, &m));
    uint8_t buf[1100];
    for (long i = 0; i < INPUT_COUNT; i++) {
        int s = (int)(next() % 2);
        size_t size = seed_sizes[s];
        memcpy(buf, seeds[s], size);
        int flips = 1 + (int)(next() % 4);
        for (int k = 0; k < flips; k++) {
            switch (next() % 4) {
            case 0: /* flip a bit */
                if (size)
                    buf[next() % size] ^= (uint8_t)(1u << (next() % 8));
                break;
            case 1: /* truncate */
                size = (size_t)(next() % (size + 1));
                break;
            case 2: /* a random byte */
                if (size)
                    buf[next() % size] = (uint8_t)next();
                break;
            default: /* append junk */
                if (size < sizeof(buf) - 8) {
                    for (int j = 0; j < 8; j++)
                        buf[size++] = (uint8_t)next();
                }
                break;
            }
        }
        LLVMFuzzerTestOneInput(buf, size);
    }
    printf("message_fuzz: %d inputs, all checks passed\n", INPUT_COUNT);
    return 0;
}
#endif
