/* meta_fuzz — meta_open() over a fuzzed metadata file (two slots of 4 KiB)
 * on an in-memory vfs, then what a replica does next: write the next
 * record and reopen. Checks:
 *
 *   - meta_open() fails cleanly (CLOSED, a message) or loads a record that
 *     meta_write() would accept: a replica count in 1..COHORT_REPLICAS_MAX
 *     and a last normal view not above the view (meta_write() ASSERTs both,
 *     so a record that breaks them would crash the replica on its own
 *     file), and a seq in 1..2^64-2 (meta_write() needs seq + 1);
 *   - writing the record with view + 1 succeeds, and a reopen loads exactly
 *     it, at seq + 1.
 *
 * Input: the two slots' records: bytes 0..63 are the file's bytes 0..63
 * (slot 0), bytes 64..127 its bytes 4096..4159 (slot 1); the rest of the
 * file is zeros, and a shorter input makes a shorter file, which reads as
 * zeros past its end. Only a slot's first 64 bytes are ever read, so this
 * keeps the corpus small. tests/fuzz/corpus/meta holds files meta_write()
 * produced (tests/fuzz/corpus_gen.c).
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "fuzz_vfs.h"
#include "storage/meta.h"

#define META_PATH "m/meta"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * META_RECORD_SIZE)
        return 0;
    static uint8_t file[META_FILE_SIZE];
    memset(file, 0, sizeof(file));
    size_t n0 = size < META_RECORD_SIZE ? size : META_RECORD_SIZE;
    memcpy(file, data, n0);
    size_t file_size = n0;
    if (size > META_RECORD_SIZE) {
        memcpy(file + META_SLOT_SIZE, data + META_RECORD_SIZE,
               size - META_RECORD_SIZE);
        file_size = META_SLOT_SIZE + size - META_RECORD_SIZE;
    }
    struct fuzz_vfs fv;
    fuzz_vfs_init(&fv);
    fuzz_vfs_mkdir(&fv, "m");
    fuzz_vfs_put(&fv, META_PATH, file, file_size);
    struct meta m;
    struct meta_record rec;
    bool present = false;
    struct cohort_err err;
    if (meta_open(&m, &fv.vfs, META_PATH, &rec, &present, &err) != 0) {
        ASSERT(err.code < 0);
        ASSERT(err.message[0] != '\0');
        ASSERT(!present);
        fuzz_vfs_deinit(&fv);
        return 0;
    }
    ASSERT(present);
    ASSERT(rec.meta.replica_count >= 1);
    ASSERT(rec.meta.replica_count <= COHORT_REPLICAS_MAX);
    ASSERT(rec.meta.last_normal_view <= rec.meta.view);
    uint64_t seq = meta_seq(&m);
    ASSERT(seq >= 1);

    struct meta_record next = rec;
    if (next.meta.view < UINT32_MAX)
        next.meta.view++;
    ASSERT(seq < UINT64_MAX);
    ASSERT(meta_write(&m, &next, &err) == 0);
    meta_close(&m);
    struct meta_record back;
    ASSERT(meta_open(&m, &fv.vfs, META_PATH, &back, &present, &err) == 0);
    ASSERT(present);
    ASSERT(meta_seq(&m) == seq + 1);
    ASSERT(back.cluster_id == next.cluster_id);
    ASSERT(back.meta.view == next.meta.view);
    ASSERT(back.meta.last_normal_view == next.meta.last_normal_view);
    ASSERT(back.meta.epoch == next.meta.epoch);
    ASSERT(back.meta.replica_count == next.meta.replica_count);
    ASSERT(back.meta.flags == next.meta.flags);
    meta_close(&m);
    fuzz_vfs_deinit(&fv);
    accepted++;
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "meta_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
