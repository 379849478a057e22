/* wal_fuzz — wal_open() (segment listing, record scan, torn-tail versus
 * damage judgement) over fuzzed segment files on an in-memory vfs, then
 * what a replica does next: append the op after the recovered log, sync,
 * reopen. Checks:
 *
 *   - wal_open() fails cleanly (CLOSED, a message) or recovers a log whose
 *     entries verify, have consecutive ops from base + 1, chain onto the
 *     base by checksum, and stop below any damaged op;
 *   - appending the op after the recovered log (as the repair from peers
 *     would, after damage) and syncing succeeds;
 *   - reopening then, against what the metadata would now say (the log
 *     exists and reached that op), recovers exactly the old log plus that
 *     op, with no damage and no torn tail: what the wal wrote itself is
 *     always clean.
 *
 * Input: byte 0 is flags (bit 0: torn writes possible; bit 1: 8 KiB
 * segments instead of 4 KiB; bit 2: a struct wal_expect follows: u64 base
 * op, u64 base checksum, u64 log_end_min, u32 log_end_check; bit 3: the
 * metadata says the log exists). Then up to WAL_FUZZ_FILES files, each a
 * u64 first op (the name; 0 gives a name the wal must ignore), a u8 kind
 * (bit 0: the ".log.tmp" twin; bit 1: zero-pad to the segment size, as a
 * preallocated segment is), a u16 size and that many bytes (cut at the
 * end of the input); all little-endian. tests/fuzz/corpus/wal holds
 * segments the wal wrote (tests/fuzz/corpus_gen.c).
 *
 * libFuzzer: make fuzz (build-fuzz/). Plain program: -DFUZZ_MAIN
 * (tests/fuzz/fuzz_main.h), as ctest's fuzz/wal runs it. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "fuzz_vfs.h"
#include "storage/wal.h"

#define WAL_FUZZ_FILES 6
#define WAL_FUZZ_DIR "w/wal"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted;

/* Lay the input's files out in the vfs and read the expectation. */
static void load_files(struct fuzz_vfs *fv, const uint8_t *data, size_t size,
                       uint64_t segment_size, struct wal_expect *expect)
{
    struct cursor c = cursor_make(data, size);
    uint8_t flags = cursor_u8(&c);
    memset(expect, 0, sizeof(*expect));
    if (flags & 4) {
        expect->base.op = cursor_u64(&c);
        expect->base.checksum = cursor_u64(&c);
        expect->log_end_min = cursor_u64(&c);
        expect->log_end_check = cursor_u32(&c);
    }
    expect->log_exists = (flags & 8) != 0;
    uint8_t *pad = calloc(1, segment_size);
    ASSERT(pad);
    for (int i = 0; i < WAL_FUZZ_FILES && c.ok && c.left > 0; i++) {
        uint64_t first = cursor_u64(&c);
        uint8_t kind = cursor_u8(&c);
        uint16_t n = cursor_u16(&c);
        if (!c.ok)
            break;
        size_t take = n <= c.left ? n : c.left;
        const uint8_t *bytes = cursor_take(&c, take);
        char path[VFS_PATH_MAX];
        if (first == 0)
            snprintf(path, sizeof(path), "%s/junk%d", WAL_FUZZ_DIR, i);
        else
            snprintf(path, sizeof(path), "%s/%020" PRIu64 ".log%s",
                     WAL_FUZZ_DIR, first, (kind & 1) ? ".tmp" : "");
        const uint8_t *content = bytes;
        size_t content_size = take;
        if ((kind & 2) && take < segment_size) {
            memset(pad, 0, segment_size);
            memcpy(pad, bytes, take);
            content = pad;
            content_size = segment_size;
        }
        fuzz_vfs_put(fv, path, content, content_size);
    }
    free(pad);
}

/* The recovered log is well formed; returns its entry count. */
static uint64_t check_recovery(const struct wal *w,
                               const struct wal_recovery *rec,
                               const struct wal_position *base)
{
    uint64_t n = rec->entry_count;
    for (uint64_t i = 0; i < n; i++) {
        const struct entry *e = &rec->entries[i];
        ASSERT(entry_verify(&e->h, e->body));
        ASSERT(e->h.op == base->op + 1 + i);
        ASSERT(e->h.parent ==
               (i ? rec->entries[i - 1].h.checksum : base->checksum));
    }
    ASSERT(wal_op_last(w) == base->op + n);
    ASSERT(rec->damaged_op == 0 || rec->damaged_op > wal_op_last(w));
    ASSERT(rec->damaged_op == 0 || rec->damage.message[0] != '\0');
    ASSERT(!rec->torn_tail || rec->torn.message[0] != '\0');
    return n;
}

/* What the replica appends after recovery: the next op, chained on. */
static void next_entry(const struct wal_recovery *rec,
                       const struct wal_position *base, struct entry *e,
                       uint8_t *body)
{
    uint64_t n = rec->entry_count;
    uint64_t op = base->op + n + 1;
    memset(body, 'z', 8);
    e->h = (struct entry_header){
        .parent = n ? rec->entries[n - 1].h.checksum : base->checksum,
        .op = op,
        .client_id = 9,
        .request_no = op,
        .view = 3,
        .body_size = 8,
        .kind = ENTRY_CLIENT,
    };
    e->body = body;
    entry_seal(&e->h, e->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct wal_config config;
    wal_config_defaults(&config);
    config.segment_size = (data[0] & 2) ? 8192 : 4096;
    config.torn_writes_possible = (data[0] & 1) != 0;
    struct fuzz_vfs fv;
    fuzz_vfs_init(&fv);
    fuzz_vfs_mkdir(&fv, "w");
    fuzz_vfs_mkdir(&fv, WAL_FUZZ_DIR);
    struct wal_expect expect;
    load_files(&fv, data, size, config.segment_size, &expect);
    if (expect.base.op >= ENTRY_OP_MAX) {
        fuzz_vfs_deinit(&fv); /* no log can follow: the replica's own */
        return 0;
    }

    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    if (wal_open(&w, &fv.vfs, WAL_FUZZ_DIR, &config, &expect, &rec, &err)) {
        ASSERT(err.code < 0);
        ASSERT(err.message[0] != '\0');
        ASSERT(wal_state(&w) == WAL_CLOSED);
        fuzz_vfs_deinit(&fv);
        return 0;
    }
    uint64_t n = check_recovery(&w, &rec, &expect.base);
    uint64_t *sums = malloc((n + 1) * sizeof(*sums));
    ASSERT(sums);
    for (uint64_t i = 0; i < n; i++)
        sums[i] = rec.entries[i].h.checksum;
    bool damaged = rec.damaged_op != 0;

    struct entry e;
    uint8_t body[8];
    next_entry(&rec, &expect.base, &e, body);
    if (e.h.op > ENTRY_OP_MAX) {
        /* A log that claims the last op there is: no op can follow. */
        free(sums);
        wal_close(&w);
        fuzz_vfs_deinit(&fv);
        return 0;
    }
    wal_recovery_release(&w);
    ASSERT(wal_append(&w, &e, 0, &err) == 0);
    struct wal_position pos;
    if (wal_sync(&w, &pos, &err) != 0) {
        fprintf(stderr, "wal_fuzz: sync after recovery: %s\n", err.message);
        ASSERT(!"sync after recovery failed");
    }
    ASSERT(pos.op == e.h.op);
    ASSERT(pos.checksum == e.h.checksum);
    wal_close(&w);

    /* What the metadata says now: the log exists and reached e. */
    expect.log_exists = true;
    expect.log_end_min = e.h.op;
    expect.log_end_check = (uint32_t)e.h.checksum;
    ASSERT(wal_open(&w, &fv.vfs, WAL_FUZZ_DIR, &config, &expect, &rec, &err) ==
           0);
    if (rec.damaged_op || rec.torn_tail)
        fprintf(stderr, "wal_fuzz: after the wal's own append: %s%s\n",
                rec.damage.message, rec.torn.message);
    ASSERT(rec.damaged_op == 0);
    ASSERT(!rec.torn_tail);
    ASSERT(check_recovery(&w, &rec, &expect.base) == n + 1);
    for (uint64_t i = 0; i < n; i++)
        ASSERT(rec.entries[i].h.checksum == sums[i]);
    ASSERT(rec.entries[n].h.checksum == e.h.checksum);
    if (n > 0 && !damaged)
        accepted++;
    free(sums);
    wal_close(&w);
    fuzz_vfs_deinit(&fv);
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "wal_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
