/* checkpoint_file — see checkpoint_file.h. */
#include "storage/checkpoint_file.h"

#include <inttypes.h>
#include <stdlib.h>

#include "common/bytes.h"
#include "common/crc32c.h"

#define MAGIC 0x50434f43u /* "COCP" read as a little-endian u32 */
#define NOTE_SIZE 16u

size_t checkpoint_file_size(size_t count)
{
    return CHECKPOINT_FILE_HEADER + count * NOTE_SIZE;
}

void checkpoint_file_encode(uint8_t *buf, uint64_t cluster_id,
                            const uint64_t *op, const uint64_t *checksum,
                            size_t count)
{
    put_u32(buf, MAGIC);
    put_u32(buf + 8, CHECKPOINT_FILE_VERSION);
    put_u32(buf + 12, (uint32_t)count);
    put_u64(buf + 16, cluster_id);
    for (size_t i = 0; i < count; i++) {
        uint8_t *p = buf + CHECKPOINT_FILE_HEADER + i * NOTE_SIZE;
        put_u64(p, op[i]);
        put_u64(p + 8, checksum[i]);
    }
    size_t size = checkpoint_file_size(count);
    put_u32(buf + 4, crc32c(0, buf + 8, size - 8));
}

int checkpoint_file_decode(const uint8_t *data, size_t size,
                           uint64_t cluster_id, uint64_t *op,
                           uint64_t *checksum, size_t max, size_t *count,
                           struct cohort_err *err)
{
    *count = 0;
    if (size < CHECKPOINT_FILE_HEADER || get_u32(data) != MAGIC)
        return err_set(err, -COHORT_ECORRUPT, "not a checkpoints file");
    uint32_t version = get_u32(data + 8);
    if (version != CHECKPOINT_FILE_VERSION)
        return err_set(err, -COHORT_ECORRUPT,
                       "format %" PRIu32 ", this cohort reads format %u",
                       version, CHECKPOINT_FILE_VERSION);
    uint32_t n = get_u32(data + 12);
    if (n > max || size != checkpoint_file_size(n))
        return err_set(err, -COHORT_ECORRUPT,
                       "%zu bytes do not hold the %" PRIu32 " notes it names",
                       size, n);
    if (get_u32(data + 4) != crc32c(0, data + 8, size - 8))
        return err_set(err, -COHORT_ECORRUPT, "checksum mismatch");
    uint64_t cluster = get_u64(data + 16);
    if (cluster != cluster_id)
        return err_set(err, -COHORT_ECORRUPT,
                       "written by cluster %016" PRIx64 ", not %016" PRIx64,
                       cluster, cluster_id);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p =
            data + CHECKPOINT_FILE_HEADER + (size_t)i * NOTE_SIZE;
        op[i] = get_u64(p);
        checksum[i] = get_u64(p + 8);
        if (op[i] == 0 || (i > 0 && op[i] <= op[i - 1]))
            return err_set(err, -COHORT_ECORRUPT,
                           "note %" PRIu32 " (op %" PRIu64 ") out of order", i,
                           op[i]);
    }
    *count = n;
    return 0;
}

int checkpoint_file_read(struct vfs *vfs, const char *data_dir,
                         uint64_t cluster_id, uint64_t *op, uint64_t *checksum,
                         size_t max, size_t *count, struct cohort_err *err)
{
    *count = 0;
    char path[VFS_PATH_MAX];
    int rc = vfs_path_join(path, data_dir, CHECKPOINT_FILE, err);
    if (rc != 0)
        return rc;
    struct vfs_file *file;
    rc = vfs_open(vfs, path, VFS_READ_ONLY, &file, err);
    if (rc != 0)
        return rc;
    uint64_t size = 0;
    rc = vfs_size(vfs, file, &size, err);
    if (rc == 0 && size > checkpoint_file_size(max))
        rc = err_set(err, -COHORT_ECORRUPT,
                     "%" PRIu64 " bytes, more than %zu notes take", size, max);
    uint8_t *data = NULL;
    if (rc == 0 && !(data = malloc(size ? (size_t)size : 1)))
        rc = err_set(err, -COHORT_ENOMEM, "out of memory for %" PRIu64 " bytes",
                     size);
    size_t done = 0;
    if (rc == 0)
        rc = vfs_read(vfs, file, 0, data, (size_t)size, &done, err);
    vfs_close(vfs, file);
    if (rc == 0)
        rc = checkpoint_file_decode(data, done, cluster_id, op, checksum, max,
                                    count, err);
    free(data);
    return rc;
}

int checkpoint_file_write(struct vfs *vfs, const char *data_dir,
                          const uint8_t *data, size_t size,
                          struct cohort_err *err)
{
    return vfs_replace_file(vfs, data_dir, CHECKPOINT_FILE, data, size, err);
}
