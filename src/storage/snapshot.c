/* snapshot — snapshot files: streamed writing, whole-file verification,
 * chunked reading and receiving. See snapshot.h for the format. */
#include "storage/snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/entry.h"

#define SNAPSHOT_MAGIC 0x4e534f43u         /* "COSN" */
#define SNAPSHOT_TRAILER_MAGIC 0x45534f43u /* "COSE" */
#define SNAPSHOT_BUFFER_SIZE (64u * 1024)
#define SNAPSHOT_NAME_MAX 48 /* "snapshot-%020llu.snap.recv" and NUL */
/* The writer hands each chunk of this many bytes to writeback as soon as it
 * is written, and waits for the chunk before it: a snapshot keeps at most
 * about two chunks of dirty pages instead of all of it until the final
 * fdatasync (Redis's rdb-save-incremental-fsync). Otherwise the kernel
 * holds a big snapshot's pages (up to dirty_background_ratio, GiBs) and
 * the fdatasync writes them in one burst, which the replicas' WAL syncs on
 * the same disk queue behind. */
#define SNAPSHOT_WRITEBACK_CHUNK (8u << 20)

static_assert(SNAPSHOT_HEADER_SIZE == 64, "header layout");
static_assert(SNAPSHOT_TRAILER_SIZE == 32, "trailer layout");

enum snapshot_name_kind {
    NAME_FINAL = 0,     /* snapshot-<op>.snap */
    NAME_WRITING = 1,   /* snapshot-<op>.snap.tmp */
    NAME_RECEIVING = 2, /* snapshot-<op>.snap.recv */
};

static const char *const name_suffix[] = {"", ".tmp", ".recv"};

static int snapshot_path(char *out, const char *dir, uint64_t op,
                         enum snapshot_name_kind kind, struct cohort_err *err)
{
    char name[SNAPSHOT_NAME_MAX];
    snprintf(name, sizeof(name), "snapshot-%020" PRIu64 ".snap%s", op,
             name_suffix[kind]);
    return vfs_path_join(out, dir, name, err);
}

int snapshot_temp_path(char *out, const char *dir, uint64_t op,
                       struct cohort_err *err)
{
    return snapshot_path(out, dir, op, NAME_WRITING, err);
}

/* "snapshot-<20 digits>.snap" plus a suffix: its op and kind. */
static bool parse_name(const char *name, uint64_t *op,
                       enum snapshot_name_kind *kind)
{
    if (strncmp(name, "snapshot-", 9) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 9; i < 29; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (strncmp(name + 29, ".snap", 5) != 0)
        return false;
    for (int k = NAME_FINAL; k <= NAME_RECEIVING; k++) {
        if (strcmp(name + 34, name_suffix[k]) == 0) {
            *op = v;
            *kind = (enum snapshot_name_kind)k;
            return true;
        }
    }
    return false;
}

static void header_encode(const struct snapshot_info *info, uint8_t *out)
{
    ASSERT(info->view <= VIEW_MAX);
    memset(out, 0, SNAPSHOT_HEADER_SIZE);
    put_u32(out + 0, SNAPSHOT_MAGIC);
    put_u32(out + 4, SNAPSHOT_FORMAT_VERSION);
    put_u64(out + 8, info->op);
    put_u64(out + 16, info->checksum);
    put_u64(out + 24, info->timestamp_ms);
    put_u64(out + 32, info->view);
    put_u32(out + 40, info->epoch);
    put_u64(out + 48, info->client_table_size);
    put_u32(out + 60, crc32c(0, out, 60));
}

static const char *header_decode(const uint8_t *in, struct snapshot_info *info)
{
    if (get_u32(in) != SNAPSHOT_MAGIC)
        return "has a bad magic number";
    if (get_u32(in + 60) != crc32c(0, in, 60))
        return "has a header that fails its checksum";
    uint32_t version = get_u32(in + 4);
    if (version != 1 && version != SNAPSHOT_FORMAT_VERSION)
        return "has an unknown format version";
    memset(info, 0, sizeof(*info));
    info->op = get_u64(in + 8);
    info->checksum = get_u64(in + 16);
    info->timestamp_ms = get_u64(in + 24);
    if (info->op > ENTRY_OP_MAX)
        return "has an op beyond any log (corrupt)";
    if (version == 1) { /* a 32-bit view */
        info->view = get_u32(in + 32);
        info->epoch = get_u32(in + 36);
        info->client_table_size = get_u64(in + 40);
        return NULL;
    }
    info->view = get_u64(in + 32);
    info->epoch = get_u32(in + 40);
    info->client_table_size = get_u64(in + 48);
    if (get_u32(in + 44) != 0 || get_u32(in + 56) != 0)
        return "has nonzero reserved bytes";
    if (info->view > VIEW_MAX)
        return "has a view beyond the largest view";
    return NULL;
}

/* Delete finished snapshots and leftover temp files older than op. Best
 * effort: a file left behind is deleted next time. */
struct cleanup {
    const char *dir;
    uint64_t keep_op;
    struct vfs *vfs;
    uint64_t ops[64];
    enum snapshot_name_kind kinds[64];
    uint32_t count;
};

static int on_cleanup_entry(void *ctx, const char *name)
{
    struct cleanup *c = ctx;
    uint64_t op;
    enum snapshot_name_kind kind;
    if (!parse_name(name, &op, &kind) || op >= c->keep_op)
        return 0;
    if (c->count == 64)
        return 1; /* the rest next time */
    c->ops[c->count] = op;
    c->kinds[c->count] = kind;
    c->count++;
    return 0;
}

static void delete_older(struct vfs *vfs, const char *dir, uint64_t keep_op)
{
    struct cleanup c = {.dir = dir, .keep_op = keep_op, .vfs = vfs};
    struct cohort_err ignored;
    int rc = vfs_list(vfs, dir, on_cleanup_entry, &c, &ignored);
    if (rc < 0)
        return;
    for (uint32_t i = 0; i < c.count; i++) {
        char path[VFS_PATH_MAX];
        if (snapshot_path(path, dir, c.ops[i], c.kinds[i], &ignored) == 0)
            vfs_unlink(vfs, path, &ignored);
    }
    if (c.count)
        vfs_sync_dir(vfs, dir, &ignored);
}

/* Rename a synced temp file into place and make that durable. */
static int publish(struct vfs *vfs, const char *dir, const char *temp,
                   uint64_t op, struct cohort_err *err)
{
    char path[VFS_PATH_MAX];
    int rc = snapshot_path(path, dir, op, NAME_FINAL, err);
    if (rc == 0)
        rc = vfs_rename(vfs, temp, path, err);
    if (rc == 0)
        rc = vfs_sync_dir(vfs, dir, err);
    if (rc != 0)
        return rc;
    delete_older(vfs, dir, op);
    return 0;
}

/* Writing. */

static int writer_flush(struct snapshot_writer *w, struct cohort_err *err)
{
    if (w->buf_size == 0)
        return 0;
    int rc = vfs_write(w->vfs, w->file, w->offset, w->buf, w->buf_size, err);
    if (rc != 0) {
        w->failed = true;
        return err_wrap(err, "snapshot at op %" PRIu64, w->info.op);
    }
    w->offset += w->buf_size;
    w->buf_size = 0;
    if (w->offset - w->writeback_from < SNAPSHOT_WRITEBACK_CHUNK)
        return 0;
    /* Wait for the previous chunk, then start this one. */
    rc = 0;
    if (w->writeback_from > w->writeback_prev)
        rc = vfs_writeback(w->vfs, w->file, w->writeback_prev,
                           w->writeback_from - w->writeback_prev, true, err);
    if (rc == 0)
        rc = vfs_writeback(w->vfs, w->file, w->writeback_from,
                           w->offset - w->writeback_from, false, err);
    if (rc != 0) {
        w->failed = true;
        return err_wrap(err, "snapshot at op %" PRIu64, w->info.op);
    }
    w->writeback_prev = w->writeback_from;
    w->writeback_from = w->offset;
    return 0;
}

static int writer_put(struct snapshot_writer *w, const void *data, size_t size,
                      struct cohort_err *err)
{
    ASSERT(w->writing);
    ASSERT(!w->failed);
    w->crc = crc32c(w->crc, data, size);
    const uint8_t *p = data;
    while (size > 0) {
        size_t n = w->buf_cap - w->buf_size;
        if (n > size)
            n = size;
        memcpy(w->buf + w->buf_size, p, n);
        w->buf_size += n;
        p += n;
        size -= n;
        if (w->buf_size == w->buf_cap) {
            int rc = writer_flush(w, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int snapshot_write_begin(struct snapshot_writer *w, struct vfs *vfs,
                         const char *dir, const struct snapshot_info *info,
                         const uint8_t *client_table, struct cohort_err *err)
{
    ASSERT(info->op >= 1);
    ASSERT(info->client_table_size == 0 || client_table != NULL);
    memset(w, 0, sizeof(*w));
    w->vfs = vfs;
    w->info = *info;
    w->info.state_size = 0;
    w->info.file_size = 0;
    if (strlen(dir) + SNAPSHOT_NAME_MAX >= VFS_PATH_MAX)
        return err_set(err, -COHORT_EINVAL,
                       "snapshot: directory path too long: %.200s", dir);
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    int rc = snapshot_path(w->temp, dir, info->op, NAME_WRITING, err);
    if (rc == 0)
        rc = vfs_mkdir_durable(vfs, dir, err);
    w->buf = malloc(SNAPSHOT_BUFFER_SIZE);
    if (rc == 0 && !w->buf)
        rc = err_set(err, -COHORT_ENOMEM, "snapshot: out of memory");
    if (rc == 0) {
        struct cohort_err ignored;
        vfs_unlink(vfs, w->temp, &ignored);
        rc = vfs_open(vfs, w->temp, VFS_CREATE | VFS_EXCLUSIVE, &w->file, err);
    }
    if (rc != 0) {
        free(w->buf);
        memset(w, 0, sizeof(*w));
        return err_wrap(err, "snapshot at op %" PRIu64, info->op);
    }
    w->buf_cap = SNAPSHOT_BUFFER_SIZE;
    w->writing = true;
    uint8_t header[SNAPSHOT_HEADER_SIZE];
    header_encode(&w->info, header);
    rc = writer_put(w, header, sizeof(header), err);
    if (rc == 0 && info->client_table_size)
        rc = writer_put(w, client_table, (size_t)info->client_table_size, err);
    return rc;
}

int snapshot_write(struct snapshot_writer *w, const void *data, size_t size,
                   struct cohort_err *err)
{
    int rc = writer_put(w, data, size, err);
    if (rc == 0)
        w->info.state_size += size;
    return rc;
}

int snapshot_write_end(struct snapshot_writer *w, struct snapshot_info *info,
                       struct cohort_err *err)
{
    ASSERT(w->writing);
    ASSERT(!w->failed);
    uint64_t file_size = w->offset + w->buf_size + SNAPSHOT_TRAILER_SIZE;
    ASSERT(file_size == SNAPSHOT_HEADER_SIZE + w->info.client_table_size +
                            w->info.state_size + SNAPSHOT_TRAILER_SIZE);
    uint8_t trailer[SNAPSHOT_TRAILER_SIZE];
    memset(trailer, 0, sizeof(trailer));
    put_u32(trailer + 0, SNAPSHOT_TRAILER_MAGIC);
    put_u64(trailer + 8, w->info.state_size);
    put_u64(trailer + 16, file_size);
    uint32_t crc = crc32c(w->crc, trailer, SNAPSHOT_TRAILER_SIZE - 4);
    put_u32(trailer + 28, crc);
    int rc = writer_put(w, trailer, sizeof(trailer), err);
    if (rc == 0)
        rc = writer_flush(w, err);
    if (rc != 0)
        return rc; /* writer_flush() named the snapshot */
    rc = vfs_sync(w->vfs, w->file, err);
    if (rc == 0) {
        vfs_close(w->vfs, w->file);
        w->file = NULL;
        rc = publish(w->vfs, w->dir, w->temp, w->info.op, err);
    }
    if (rc != 0) {
        w->failed = true;
        return err_wrap(err, "snapshot at op %" PRIu64, w->info.op);
    }
    ASSERT(w->offset == file_size);
    w->info.file_size = file_size;
    if (info)
        *info = w->info;
    free(w->buf);
    memset(w, 0, sizeof(*w));
    return 0;
}

void snapshot_write_abort(struct snapshot_writer *w)
{
    if (!w->writing)
        return;
    if (w->file)
        vfs_close(w->vfs, w->file);
    struct cohort_err ignored;
    vfs_unlink(w->vfs, w->temp, &ignored);
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* Reading and verifying. */

static int corrupt(const char *path, uint64_t offset, const char *what,
                   struct cohort_err *err)
{
    return err_set(err, -COHORT_ECORRUPT,
                   "%.600s offset %" PRIu64 ": snapshot %s", path, offset,
                   what);
}

static int read_exact(struct snapshot_reader *r, uint64_t offset, void *buf,
                      size_t size, struct cohort_err *err)
{
    size_t done;
    int rc = vfs_read(r->vfs, r->file, offset, buf, size, &done, err);
    if (rc == 0 && done != size)
        rc = corrupt(r->path, offset + done, "ends early", err);
    return rc;
}

/* Check the trailer against the header and the file size. */
static int verify_trailer(struct snapshot_reader *r, uint64_t file_size,
                          uint32_t *crc_stored, struct cohort_err *err)
{
    uint64_t at = file_size - SNAPSHOT_TRAILER_SIZE;
    uint8_t trailer[SNAPSHOT_TRAILER_SIZE];
    int rc = read_exact(r, at, trailer, sizeof(trailer), err);
    if (rc != 0)
        return rc;
    if (get_u32(trailer) != SNAPSHOT_TRAILER_MAGIC)
        return corrupt(r->path, at, "trailer has a bad magic number", err);
    r->info.state_size = get_u64(trailer + 8);
    r->info.file_size = get_u64(trailer + 16);
    if (r->info.file_size != file_size || r->info.state_size > file_size ||
        SNAPSHOT_HEADER_SIZE + r->info.client_table_size + r->info.state_size +
                SNAPSHOT_TRAILER_SIZE !=
            file_size)
        return corrupt(r->path, at, "trailer sizes do not match the file", err);
    *crc_stored = get_u32(trailer + 28);
    return 0;
}

/* Checksum every byte before the trailer's crc field. */
static int verify_crc(struct snapshot_reader *r, uint64_t file_size,
                      uint32_t crc_stored, struct cohort_err *err)
{
    uint8_t *buf = malloc(SNAPSHOT_BUFFER_SIZE);
    if (!buf)
        return err_set(err, -COHORT_ENOMEM, "snapshot: out of memory");
    uint64_t end = file_size - 4, at = 0;
    uint32_t crc = 0;
    int rc = 0;
    while (rc == 0 && at < end) {
        size_t n = end - at < SNAPSHOT_BUFFER_SIZE ? (size_t)(end - at)
                                                   : SNAPSHOT_BUFFER_SIZE;
        rc = read_exact(r, at, buf, n, err);
        if (rc == 0)
            crc = crc32c(crc, buf, n);
        at += n;
    }
    free(buf);
    if (rc == 0 && crc != crc_stored)
        rc = err_set(err, -COHORT_ECORRUPT,
                     "%.600s offset 0..%" PRIu64
                     ": snapshot fails its checksum (corrupt; it cannot be "
                     "used)",
                     r->path, file_size);
    return rc;
}

static int verify(struct snapshot_reader *r, struct cohort_err *err)
{
    uint64_t file_size;
    int rc = vfs_size(r->vfs, r->file, &file_size, err);
    if (rc != 0)
        return rc;
    if (file_size < SNAPSHOT_HEADER_SIZE + SNAPSHOT_TRAILER_SIZE)
        return corrupt(r->path, file_size, "is shorter than its header", err);
    uint8_t header[SNAPSHOT_HEADER_SIZE];
    rc = read_exact(r, 0, header, sizeof(header), err);
    if (rc != 0)
        return rc;
    const char *why = header_decode(header, &r->info);
    if (why)
        return corrupt(r->path, 0, why, err);
    if (r->info.client_table_size >
        file_size - SNAPSHOT_HEADER_SIZE - SNAPSHOT_TRAILER_SIZE)
        return corrupt(r->path, 40, "client table is larger than the file",
                       err);
    uint32_t crc_stored = 0;
    rc = verify_trailer(r, file_size, &crc_stored, err);
    if (rc == 0)
        rc = verify_crc(r, file_size, crc_stored, err);
    return rc;
}

int snapshot_open(struct snapshot_reader *r, struct vfs *vfs, const char *path,
                  struct cohort_err *err)
{
    memset(r, 0, sizeof(*r));
    if (strlen(path) >= VFS_PATH_MAX)
        return err_set(err, -COHORT_EINVAL, "snapshot: path too long");
    r->vfs = vfs;
    snprintf(r->path, sizeof(r->path), "%s", path);
    int rc = vfs_open(vfs, path, VFS_READ_ONLY, &r->file, err);
    if (rc != 0)
        return rc;
    rc = verify(r, err);
    if (rc != 0) {
        snapshot_close(r);
        return rc;
    }
    ASSERT(r->info.file_size >= SNAPSHOT_HEADER_SIZE + SNAPSHOT_TRAILER_SIZE);
    return 0;
}

struct latest {
    uint64_t ops[64];
    uint32_t count;
};

static int on_latest_entry(void *ctx, const char *name)
{
    struct latest *l = ctx;
    uint64_t op;
    enum snapshot_name_kind kind;
    if (!parse_name(name, &op, &kind) || kind != NAME_FINAL)
        return 0;
    if (l->count < 64) {
        l->ops[l->count++] = op;
        return 0;
    }
    /* Keep the 64 newest: replace the oldest if this one is newer. */
    uint32_t oldest = 0;
    for (uint32_t i = 1; i < l->count; i++)
        if (l->ops[i] < l->ops[oldest])
            oldest = i;
    if (l->ops[oldest] < op)
        l->ops[oldest] = op;
    return 0;
}

static int compare_op_descending(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

int snapshot_open_latest(struct snapshot_reader *r, struct vfs *vfs,
                         const char *dir, struct cohort_err *err)
{
    memset(r, 0, sizeof(*r));
    struct latest l = {.count = 0};
    int rc = vfs_list(vfs, dir, on_latest_entry, &l, err);
    if (rc != 0 && rc != -COHORT_ENOTFOUND)
        return rc;
    if (l.count == 0)
        return err_set(err, -COHORT_ENOTFOUND, "no snapshot in %.600s", dir);
    qsort(l.ops, l.count, sizeof(l.ops[0]), compare_op_descending);
    struct cohort_err first = {0};
    for (uint32_t i = 0; i < l.count; i++) {
        char path[VFS_PATH_MAX];
        rc = snapshot_path(path, dir, l.ops[i], NAME_FINAL, err);
        if (rc == 0)
            rc = snapshot_open(r, vfs, path, err);
        if (rc == 0) {
            r->skipped = first;
            return 0;
        }
        if (i == 0)
            first = *err;
    }
    *err = first;
    return first.code;
}

const struct snapshot_info *snapshot_info(const struct snapshot_reader *r)
{
    return &r->info;
}

int snapshot_read_client_table(struct snapshot_reader *r, uint8_t *buf,
                               struct cohort_err *err)
{
    ASSERT(r->file != NULL);
    return read_exact(r, SNAPSHOT_HEADER_SIZE, buf,
                      (size_t)r->info.client_table_size, err);
}

int snapshot_read_state(struct snapshot_reader *r, uint64_t offset, void *buf,
                        size_t size, size_t *done, struct cohort_err *err)
{
    ASSERT(r->file != NULL);
    *done = 0;
    if (offset >= r->info.state_size)
        return 0;
    if (size > r->info.state_size - offset)
        size = (size_t)(r->info.state_size - offset);
    uint64_t at = SNAPSHOT_HEADER_SIZE + r->info.client_table_size + offset;
    int rc = read_exact(r, at, buf, size, err);
    if (rc == 0)
        *done = size;
    return rc;
}

int snapshot_read_chunk(struct snapshot_reader *r, uint64_t offset, void *buf,
                        size_t size, size_t *done, struct cohort_err *err)
{
    ASSERT(r->file != NULL);
    *done = 0;
    if (offset >= r->info.file_size)
        return 0;
    if (size > r->info.file_size - offset)
        size = (size_t)(r->info.file_size - offset);
    int rc = read_exact(r, offset, buf, size, err);
    if (rc == 0)
        *done = size;
    return rc;
}

void snapshot_close(struct snapshot_reader *r)
{
    if (r->file)
        vfs_close(r->vfs, r->file);
    r->file = NULL;
}

/* Receiving. */

int snapshot_receive_begin(struct snapshot_receiver *rc, struct vfs *vfs,
                           const char *dir, uint64_t op, uint64_t file_size,
                           struct cohort_err *err)
{
    memset(rc, 0, sizeof(*rc));
    if (op == 0 || file_size < SNAPSHOT_HEADER_SIZE + SNAPSHOT_TRAILER_SIZE)
        return err_set(err, -COHORT_EINVAL,
                       "snapshot: a peer offered op %" PRIu64 " of %" PRIu64
                       " bytes, which cannot be a snapshot",
                       op, file_size);
    if (strlen(dir) + SNAPSHOT_NAME_MAX >= VFS_PATH_MAX)
        return err_set(err, -COHORT_EINVAL,
                       "snapshot: directory path too long: %.200s", dir);
    rc->vfs = vfs;
    rc->op = op;
    rc->file_size = file_size;
    snprintf(rc->dir, sizeof(rc->dir), "%s", dir);
    int ret = snapshot_path(rc->temp, dir, op, NAME_RECEIVING, err);
    if (ret == 0)
        ret = vfs_mkdir_durable(vfs, dir, err);
    if (ret == 0) {
        struct cohort_err ignored;
        vfs_unlink(vfs, rc->temp, &ignored);
        ret =
            vfs_open(vfs, rc->temp, VFS_CREATE | VFS_EXCLUSIVE, &rc->file, err);
    }
    if (ret != 0)
        return err_wrap(err, "receive snapshot at op %" PRIu64, op);
    rc->receiving = true;
    return 0;
}

int snapshot_receive_chunk(struct snapshot_receiver *rc, uint64_t offset,
                           const void *data, size_t size,
                           struct cohort_err *err)
{
    ASSERT(rc->receiving);
    if (offset > rc->received || offset + size > rc->file_size ||
        offset + size < offset)
        return err_set(err, -COHORT_EINVAL,
                       "receive snapshot at op %" PRIu64 ": chunk at offset "
                       "%" PRIu64 " of %zu bytes does not fit (have %" PRIu64
                       " of %" PRIu64 " bytes; resume at %" PRIu64 ")",
                       rc->op, offset, size, rc->received, rc->file_size,
                       rc->received);
    int ret = vfs_write(rc->vfs, rc->file, offset, data, size, err);
    if (ret != 0)
        return err_wrap(err, "receive snapshot at op %" PRIu64, rc->op);
    if (offset + size > rc->received)
        rc->received = offset + size;
    return 0;
}

int snapshot_receive_end(struct snapshot_receiver *rc,
                         struct snapshot_info *info, struct cohort_err *err)
{
    ASSERT(rc->receiving);
    if (rc->received != rc->file_size)
        return err_set(err, -COHORT_EINVAL,
                       "receive snapshot at op %" PRIu64 ": have %" PRIu64
                       " of %" PRIu64 " bytes",
                       rc->op, rc->received, rc->file_size);
    int ret = vfs_sync(rc->vfs, rc->file, err);
    vfs_close(rc->vfs, rc->file);
    rc->file = NULL;
    struct snapshot_reader r;
    if (ret == 0)
        ret = snapshot_open(&r, rc->vfs, rc->temp, err);
    if (ret == 0) {
        if (r.info.op != rc->op)
            ret = corrupt(rc->temp, 8, "holds another op than offered", err);
        if (info)
            *info = r.info;
        snapshot_close(&r);
    }
    if (ret == 0)
        ret = publish(rc->vfs, rc->dir, rc->temp, rc->op, err);
    if (ret != 0)
        return err_wrap(err, "receive snapshot at op %" PRIu64, rc->op);
    memset(rc, 0, sizeof(*rc));
    return 0;
}

void snapshot_receive_abort(struct snapshot_receiver *rc)
{
    if (!rc->receiving)
        return;
    if (rc->file)
        vfs_close(rc->vfs, rc->file);
    struct cohort_err ignored;
    vfs_unlink(rc->vfs, rc->temp, &ignored);
    memset(rc, 0, sizeof(*rc));
}
