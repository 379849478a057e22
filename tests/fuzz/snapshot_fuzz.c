/* snapshot_fuzz — the snapshot reader (snapshot_open_latest: listing,
 * header, trailer and checksum verification; then reading the client
 * table, the state and raw chunks) and the receiver (a peer's chunks,
 * verified before the file is published), over fuzzed files on an
 * in-memory vfs. Checks:
 *
 *   - a snapshot is accepted only if its sizes add up to the file and its
 *     checksum matches; every read stays inside the file and gives back
 *     the file's own bytes;
 *   - written again with snapshot_write_*() from what was read, it reads
 *     back with the same info, client table and state (the reader and the
 *     writer agree on the format);
 *   - the receiver publishes a file only if it verifies and holds the op
 *     it was offered, and then the reader opens it as the latest.
 *
 * Input: byte 0 picks the mode. 0: the rest is one snapshot file. 1: a u16
 * size n, then an older snapshot of n bytes and a newer one of the rest.
 * 2: the receiver: a u64 op, a u8 chunk size, then the file's bytes sent in
 * chunks of that size (0: one chunk). tests/fuzz/corpus/snapshot holds
 * files the writer produced (tests/fuzz/corpus_gen.c).
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/entry.h"
#include "fuzz_vfs.h"
#include "storage/snapshot.h"

#define SNAP_DIR "s"
#define SNAP_AGAIN_DIR "again"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted;

static void put_snapshot(struct fuzz_vfs *fv, uint64_t op, const uint8_t *data,
                         size_t size)
{
    char path[VFS_PATH_MAX];
    snprintf(path, sizeof(path), "%s/snapshot-%020" PRIu64 ".snap", SNAP_DIR,
             op);
    fuzz_vfs_put(fv, path, data, size);
}

/* Read everything the reader offers; check it against the file's bytes,
 * then write it again and compare. */
static void check_reader(struct fuzz_vfs *fv, struct snapshot_reader *r)
{
    const struct snapshot_info info = *snapshot_info(r);
    size_t file_size;
    const uint8_t *file = fuzz_vfs_get(fv, r->path, &file_size);
    ASSERT(file != NULL);
    ASSERT(info.file_size == file_size);
    ASSERT(info.op <= ENTRY_OP_MAX); /* the next op cannot wrap */
    ASSERT(info.file_size == SNAPSHOT_HEADER_SIZE + info.client_table_size +
                                 info.state_size + SNAPSHOT_TRAILER_SIZE);
    struct cohort_err err;
    uint8_t *table = malloc(info.client_table_size + 1);
    uint8_t *state = malloc(info.state_size + 1);
    uint8_t *raw = malloc(file_size + 1);
    ASSERT(table && state && raw);
    ASSERT(snapshot_read_client_table(r, table, &err) == 0);
    ASSERT(memcmp(table, file + SNAPSHOT_HEADER_SIZE, info.client_table_size) ==
           0);
    size_t done = 0;
    for (uint64_t at = 0; at <= info.state_size; at += done) {
        ASSERT(snapshot_read_state(r, at, state + at, 777, &done, &err) == 0);
        if (done == 0)
            break;
    }
    ASSERT(memcmp(state, file + SNAPSHOT_HEADER_SIZE + info.client_table_size,
                  info.state_size) == 0);
    for (uint64_t at = 0; at <= file_size; at += done) {
        ASSERT(snapshot_read_chunk(r, at, raw + at, 1000, &done, &err) == 0);
        if (done == 0)
            break;
    }
    ASSERT(memcmp(raw, file, file_size) == 0);

    /* The writer, fed what the reader gave, makes a file that reads back
     * the same. */
    struct snapshot_writer w;
    struct snapshot_info again_info;
    ASSERT(snapshot_write_begin(&w, &fv->vfs, SNAP_AGAIN_DIR, &info, table,
                                &err) == 0);
    ASSERT(snapshot_write(&w, state, info.state_size, &err) == 0);
    ASSERT(snapshot_write_end(&w, &again_info, &err) == 0);
    struct snapshot_reader again;
    ASSERT(snapshot_open_latest(&again, &fv->vfs, SNAP_AGAIN_DIR, &err) == 0);
    const struct snapshot_info *a = snapshot_info(&again);
    ASSERT(a->op == info.op);
    ASSERT(a->checksum == info.checksum);
    ASSERT(a->timestamp_ms == info.timestamp_ms);
    ASSERT(a->view == info.view);
    ASSERT(a->epoch == info.epoch);
    ASSERT(a->client_table_size == info.client_table_size);
    ASSERT(a->state_size == info.state_size);
    ASSERT(a->file_size == info.file_size);
    snapshot_close(&again);
    free(table);
    free(state);
    free(raw);
    accepted++;
}

static void open_latest(struct fuzz_vfs *fv, const uint8_t *newer)
{
    struct snapshot_reader r;
    struct cohort_err err;
    if (snapshot_open_latest(&r, &fv->vfs, SNAP_DIR, &err) != 0) {
        ASSERT(err.code < 0);
        ASSERT(err.message[0] != '\0');
        return;
    }
    (void)newer;
    check_reader(fv, &r);
    snapshot_close(&r);
}

static void receive(struct fuzz_vfs *fv, struct cursor *c)
{
    uint64_t op = cursor_u64(c);
    size_t chunk = cursor_u8(c);
    if (!c->ok)
        return;
    struct snapshot_receiver rc;
    struct cohort_err err;
    if (snapshot_receive_begin(&rc, &fv->vfs, SNAP_DIR, op, c->left, &err)) {
        ASSERT(err.message[0] != '\0');
        return;
    }
    uint64_t at = 0;
    size_t total = c->left;
    while (at < total) {
        size_t n = chunk ? chunk : total;
        n = n < total - at ? n : (size_t)(total - at);
        ASSERT(snapshot_receive_chunk(&rc, at, cursor_take(c, n), n, &err) ==
               0);
        at += n;
    }
    struct snapshot_info info;
    if (snapshot_receive_end(&rc, &info, &err) != 0) {
        snapshot_receive_abort(&rc);
        struct snapshot_reader r;
        ASSERT(snapshot_open_latest(&r, &fv->vfs, SNAP_DIR, &err) != 0);
        return;
    }
    ASSERT(info.op == op);
    ASSERT(info.file_size == total);
    struct snapshot_reader r;
    ASSERT(snapshot_open_latest(&r, &fv->vfs, SNAP_DIR, &err) == 0);
    ASSERT(snapshot_info(&r)->op == op);
    check_reader(fv, &r);
    snapshot_close(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cursor c = cursor_make(data, size);
    uint8_t mode = cursor_u8(&c);
    if (!c.ok)
        return 0;
    struct fuzz_vfs fv;
    fuzz_vfs_init(&fv);
    fuzz_vfs_mkdir(&fv, SNAP_DIR);
    switch (mode % 3) {
    case 0:
        put_snapshot(&fv, 7, c.p, c.left);
        open_latest(&fv, c.p);
        break;
    case 1: {
        size_t n = cursor_u16(&c);
        if (!c.ok)
            break;
        n = n < c.left ? n : c.left;
        put_snapshot(&fv, 5, cursor_take(&c, n), n);
        put_snapshot(&fv, 9, c.p, c.left);
        open_latest(&fv, c.p);
        break;
    }
    default:
        receive(&fv, &c);
        break;
    }
    fuzz_vfs_deinit(&fv);
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "snapshot_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
