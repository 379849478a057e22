/* meta — crash-atomic metadata in two checksummed slots. See meta.h. */
#include "storage/meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"

#define META_MAGIC 0x544d4f43u /* "COMT" */

static_assert(META_RECORD_SIZE <= META_SLOT_SIZE, "a record fits its slot");

/* The crc of a slot whose record is size bytes: bytes 0..4 and 8..size. */
static uint32_t slot_crc(const uint8_t *p, uint32_t size)
{
    uint32_t crc = crc32c(0, p, 4);
    return crc32c(crc, p + 8, size - 8);
}

static uint32_t record_size_of(uint32_t version)
{
    if (version >= 4)
        return META_RECORD_SIZE;
    return version == 3 ? META_RECORD_SIZE_V3 : META_RECORD_SIZE_V2;
}

void meta_slot_encode(const struct meta_record *record, uint64_t seq,
                      uint8_t *out)
{
    ASSERT(seq >= 1);
    ASSERT(record->meta.view <= VIEW_MAX);
    memset(out, 0, META_RECORD_SIZE);
    put_u32(out + 0, META_MAGIC);
    put_u32(out + 8, META_FORMAT_VERSION);
    put_u64(out + 16, seq);
    put_u64(out + 24, record->cluster_id);
    put_u64(out + 32, record->meta.view);
    put_u64(out + 40, record->meta.last_normal_view);
    put_u32(out + 48, record->meta.epoch);
    put_u32(out + 52, record->meta.replica_count);
    put_u32(out + 56, record->meta.flags);
    put_u32(out + 60, record->log_end_check);
    put_u64(out + 64, record->log_end_min);
    put_u64(out + 72, record->meta.membership);
    put_u64(out + 80, record->meta.epoch_op);
    put_u64(out + 88, record->meta.epoch_checksum);
    put_u32(out + 4, slot_crc(out, META_RECORD_SIZE));
}

/* Formats 1 and 2: 32-bit views, the bound in format 2 only. */
static const char *decode_v2(const uint8_t *in, uint32_t version,
                             struct meta_record *record)
{
    record->meta.view = get_u32(in + 32);
    record->meta.last_normal_view = get_u32(in + 36);
    record->meta.epoch = get_u32(in + 40);
    record->meta.replica_count = get_u32(in + 44);
    record->meta.flags = get_u32(in + 48);
    record->log_end_check = get_u32(in + 52);
    record->log_end_min = get_u64(in + 56);
    if (version < 2 && (record->log_end_min != 0 || record->log_end_check))
        return "has nonzero reserved bytes";
    return NULL;
}

/* Format 3 is format 4 without the epoch's membership (epoch 0 only);
 * format 4 adds bytes 72..95. */
static void decode_v3(const uint8_t *in, uint32_t version,
                      struct meta_record *record)
{
    if (version >= 4) {
        record->meta.membership = get_u64(in + 72);
        record->meta.epoch_op = get_u64(in + 80);
        record->meta.epoch_checksum = get_u64(in + 88);
    }
    record->meta.view = get_u64(in + 32);
    record->meta.last_normal_view = get_u64(in + 40);
    record->meta.epoch = get_u32(in + 48);
    record->meta.replica_count = get_u32(in + 52);
    record->meta.flags = get_u32(in + 56);
    record->log_end_check = get_u32(in + 60);
    record->log_end_min = get_u64(in + 64);
}

const char *meta_slot_decode(const uint8_t *in, struct meta_record *record,
                             uint64_t *seq)
{
    if (get_u32(in) != META_MAGIC)
        return "has a bad magic number";
    uint32_t version = get_u32(in + 8);
    if (version > META_FORMAT_VERSION)
        return get_u32(in + 4) == slot_crc(in, META_RECORD_SIZE)
                   ? "was written by a newer cohort (unknown format version)"
                   : "fails its checksum";
    if (get_u32(in + 4) != slot_crc(in, record_size_of(version)))
        return "fails its checksum";
    if (version == 0 || get_u32(in + 12) != 0)
        return "has an invalid format version";
    memset(record, 0, sizeof(*record));
    record->format_version = version;
    *seq = get_u64(in + 16);
    record->cluster_id = get_u64(in + 24);
    const char *why = NULL;
    if (version < 3)
        why = decode_v2(in, version, record);
    else
        decode_v3(in, version, record);
    if (why)
        return why;
    if (*seq == 0)
        return "has sequence number 0";
    /* No run of writes reaches it, and the next write would need seq + 1:
     * only damage that kept the checksum valid makes it. */
    if (*seq == UINT64_MAX)
        return "has an impossible sequence number";
    if (record->meta.replica_count == 0 ||
        record->meta.replica_count > COHORT_REPLICAS_MAX)
        return "has an impossible replica count";
    if (record->meta.view > VIEW_MAX)
        return "has a view beyond the largest view";
    if (record->meta.last_normal_view > record->meta.view)
        return "has a last normal view above its view";
    return NULL;
}

static int meta_fail(struct meta *m, int rc, struct cohort_err *err)
{
    ASSERT(rc < 0);
    m->state = META_FAILED;
    snprintf(m->failure, sizeof(m->failure), "%s",
             err ? err->message : cohort_strerror(rc));
    return rc;
}

static void temp_path(const struct meta *m, char *out)
{
    int n = snprintf(out, VFS_PATH_MAX, "%s.tmp", m->path);
    ASSERT(n > 0 && n < VFS_PATH_MAX); /* meta_open() checked the length */
}

/* A slot intact but of a newer format: never read past it as if bad. A
 * newer format may have a longer record, so its checksum is tried over
 * every record size that fits the slot. */
static bool slot_is_newer(const uint8_t *p)
{
    if (get_u32(p) != META_MAGIC || get_u32(p + 8) <= META_FORMAT_VERSION)
        return false;
    for (uint32_t size = META_RECORD_SIZE_V2; size <= META_SLOT_SIZE; size += 8)
        if (get_u32(p + 4) == slot_crc(p, size))
            return true;
    return false;
}

/* Pick the newest valid slot of the file image. */
static int load_slots(const struct meta *m, const uint8_t *image,
                      struct meta_record *record, uint64_t *seq,
                      struct cohort_err *err)
{
    struct meta_record slot[2];
    uint64_t slot_seq[2] = {0, 0};
    const char *why[2];
    for (uint32_t i = 0; i < 2; i++) {
        const uint8_t *p = image + i * META_SLOT_SIZE;
        if (slot_is_newer(p))
            return err_set(err, -COHORT_ENOTSUP,
                           "%.600s offset %" PRIu32 ": metadata format %" PRIu32
                           " is newer than this build reads (%u): upgrade "
                           "cohort",
                           m->path, i * META_SLOT_SIZE, get_u32(p + 8),
                           META_FORMAT_VERSION);
        why[i] = meta_slot_decode(p, &slot[i], &slot_seq[i]);
    }
    if (why[0] && why[1])
        return err_set(err, -COHORT_ECORRUPT,
                       "%.500s: both metadata slots are bad (offset 0 %s; "
                       "offset %u %s): this replica's view is unknown, so "
                       "it must not start",
                       m->path, why[0], META_SLOT_SIZE, why[1]);
    int newest = why[0] ? 1 : why[1] ? 0 : (slot_seq[1] > slot_seq[0] ? 1 : 0);
    *record = slot[newest];
    *seq = slot_seq[newest];
    ASSERT(*seq >= 1);
    return 0;
}

int meta_open(struct meta *m, struct vfs *vfs, const char *path,
              struct meta_record *record, bool *present, struct cohort_err *err)
{
    ASSERT(vfs != NULL);
    ASSERT(present != NULL);
    memset(m, 0, sizeof(*m));
    *present = false;
    if (strlen(path) + 5 >= VFS_PATH_MAX)
        return err_set(err, -COHORT_EINVAL, "meta: path too long: %.200s",
                       path);
    m->vfs = vfs;
    snprintf(m->path, sizeof(m->path), "%s", path);
    char temp[VFS_PATH_MAX];
    temp_path(m, temp);
    struct cohort_err ignored;
    vfs_unlink(vfs, temp, &ignored); /* a creation a crash interrupted */
    int rc = vfs_open(vfs, path, 0, &m->file, err);
    if (rc == -COHORT_ENOTFOUND) {
        err_clear(err);
        m->file = NULL;
        m->state = META_OPEN;
        return 0;
    }
    if (rc != 0)
        return err_wrap(err, "meta: open");
    /* A short file reads as zeros past its end: invalid slots. */
    uint8_t image[META_FILE_SIZE];
    memset(image, 0, sizeof(image));
    size_t done;
    rc = vfs_read(vfs, m->file, 0, image, sizeof(image), &done, err);
    if (rc == 0)
        rc = load_slots(m, image, record, &m->seq, err);
    /* What we read may be a write a killed process never synced, still in
     * the page cache: make it durable before the replica acts on it. */
    if (rc == 0)
        rc = vfs_sync(vfs, m->file, err);
    if (rc == 0) {
        char dir[VFS_PATH_MAX];
        vfs_path_dir(dir, path);
        rc = vfs_sync_dir(vfs, dir, err);
    }
    if (rc != 0) {
        vfs_close(vfs, m->file);
        memset(m, 0, sizeof(*m));
        return rc;
    }
    m->state = META_OPEN;
    m->newest = *record;
    *present = true;
    return 0;
}

/* The first write: a temp file holding the record in slot 1 (seq 1),
 * synced, renamed into place, directory synced (invariant 3). */
static int meta_create(struct meta *m, const struct meta_record *record,
                       struct cohort_err *err)
{
    char temp[VFS_PATH_MAX], dir[VFS_PATH_MAX];
    temp_path(m, temp);
    vfs_path_dir(dir, m->path);
    struct cohort_err ignored;
    vfs_unlink(m->vfs, temp, &ignored);
    struct vfs_file *file;
    int rc = vfs_open(m->vfs, temp, VFS_CREATE | VFS_EXCLUSIVE, &file, err);
    if (rc != 0)
        return err_wrap(err, "meta: create");
    uint8_t image[META_FILE_SIZE];
    memset(image, 0, sizeof(image));
    meta_slot_encode(record, 1, image + 1 * META_SLOT_SIZE);
    bool fatal = false;
    rc = vfs_write(m->vfs, file, 0, image, sizeof(image), err);
    if (rc == 0) {
        rc = vfs_sync(m->vfs, file, err);
        fatal = rc != 0;
    }
    if (rc == 0)
        rc = vfs_rename(m->vfs, temp, m->path, err);
    if (rc == 0) {
        rc = vfs_sync_dir(m->vfs, dir, err);
        fatal = rc != 0;
    }
    if (rc != 0) {
        vfs_close(m->vfs, file);
        vfs_unlink(m->vfs, temp, &ignored);
        err_wrap(err, "meta: create");
        return fatal ? meta_fail(m, rc, err) : rc;
    }
    m->file = file;
    m->seq = 1;
    m->newest = *record;
    m->newest.format_version = META_FORMAT_VERSION;
    return 0;
}

int meta_write(struct meta *m, const struct meta_record *record,
               struct cohort_err *err)
{
    ASSERT(m->state != META_CLOSED);
    ASSERT(record->meta.replica_count >= 1);
    ASSERT(record->meta.replica_count <= COHORT_REPLICAS_MAX);
    ASSERT(record->meta.last_normal_view <= record->meta.view);
    ASSERT(record->meta.view <= VIEW_MAX);
    if (m->state == META_FAILED)
        return err_set(err, -COHORT_EIO,
                       "meta %.300s failed earlier and must be reopened "
                       "(restart the replica): %.150s",
                       m->path, m->failure);
    if (!m->file)
        return meta_create(m, record, err);
    uint64_t seq = m->seq + 1;
    uint64_t offset = (seq % 2) * META_SLOT_SIZE;
    uint8_t slot[META_RECORD_SIZE];
    meta_slot_encode(record, seq, slot);
    DEBUG_ASSERT(meta_slot_decode(slot, &(struct meta_record){0},
                                  &(uint64_t){0}) == NULL);
    int rc = vfs_write(m->vfs, m->file, offset, slot, sizeof(slot), err);
    if (rc != 0)
        return err_wrap(err, "meta: write seq %" PRIu64, seq);
    rc = vfs_sync(m->vfs, m->file, err);
    if (rc != 0)
        return meta_fail(m, err_wrap(err, "meta: write seq %" PRIu64, seq),
                         err);
    m->seq = seq;
    m->newest = *record;
    m->newest.format_version = META_FORMAT_VERSION;
    return 0;
}

int meta_write_log_end(struct meta *m, uint64_t op, uint64_t checksum,
                       struct cohort_err *err)
{
    ASSERT(m->seq > 0);
    struct meta_record record = m->newest;
    record.log_end_min = op;
    record.log_end_check = op ? (uint32_t)checksum : 0;
    return meta_write(m, &record, err);
}

void meta_close(struct meta *m)
{
    if (m->file)
        vfs_close(m->vfs, m->file);
    memset(m, 0, sizeof(*m));
}

uint64_t meta_seq(const struct meta *m)
{
    return m->seq;
}

uint64_t meta_log_end_min(const struct meta *m)
{
    return m->seq ? m->newest.log_end_min : 0;
}
