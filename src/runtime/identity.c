/* identity — see identity.h. */
#include "runtime/identity.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "runtime/logline.h"
#include "storage/vfs.h"

#define IDENTITY_HEAD "cohort data directory\nreplica "
#define IDENTITY_MAX 64u

/* The replica id in the file's bytes, or false if they are not exactly
 * IDENTITY_HEAD, a decimal number without leading zeros, and "\n". */
static bool identity_parse(const uint8_t *data, size_t size, uint32_t *id)
{
    size_t head = strlen(IDENTITY_HEAD);
    if (size <= head + 1 || size > IDENTITY_MAX ||
        memcmp(data, IDENTITY_HEAD, head) != 0 || data[size - 1] != '\n')
        return false;
    uint64_t n = 0;
    size_t digits = size - 1 - head;
    if (digits > 4 || (digits > 1 && data[head] == '0'))
        return false;
    for (size_t i = head; i < size - 1; i++) {
        if (data[i] < '0' || data[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(data[i] - '0');
    }
    *id = (uint32_t)n;
    return true;
}

static int identity_write(struct vfs *vfs, const char *data_dir, uint32_t self,
                          struct cohort_err *err)
{
    char text[IDENTITY_MAX];
    int len = snprintf(text, sizeof(text), IDENTITY_HEAD "%" PRIu32 "\n", self);
    return vfs_replace_file(vfs, data_dir, IDENTITY_FILE, text, (size_t)len,
                            err);
}

/* Whether data_dir already holds a replica's state (its metadata). */
static bool has_data(struct vfs *vfs, const char *data_dir)
{
    char meta[VFS_PATH_MAX];
    struct cohort_err ignored;
    if (vfs_path_join(meta, data_dir, "meta", &ignored) != 0)
        return false;
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = vfs_read_file(vfs, meta, &data, &size, &ignored);
    free(data);
    return rc != -COHORT_ENOTFOUND;
}

int identity_check(const char *data_dir, uint32_t self, struct cohort_err *err)
{
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    if (vfs_path_join(path, data_dir, IDENTITY_FILE, err) != 0)
        return -COHORT_EINVAL;
    uint8_t *data = NULL;
    size_t size = 0;
    struct cohort_err read_err;
    int rc = vfs_read_file(vfs, path, &data, &size, &read_err);
    if (rc == -COHORT_ENOTFOUND) {
        if (has_data(vfs, data_dir))
            logline(LOGLINE_INFO,
                    "data directory %s has no identity file: recording it "
                    "as replica %" PRIu32 "'s",
                    data_dir, self);
        return identity_write(vfs, data_dir, self, err);
    }
    if (rc != 0) {
        err_set(err, rc, "data directory %s: read %s: %s", data_dir,
                IDENTITY_FILE, read_err.message);
        return rc;
    }
    uint32_t id = 0;
    bool ok = identity_parse(data, size, &id);
    free(data);
    if (!ok)
        return err_set(err, -COHORT_ECONFIG,
                       "data directory %s: %s is damaged (want \"cohort data "
                       "directory\" and \"replica N\" lines); if this is "
                       "replica %" PRIu32 "'s directory, write those two "
                       "lines into it",
                       data_dir, path, self);
    if (id != self)
        return err_set(err, -COHORT_ECONFIG,
                       "data directory %s holds replica %" PRIu32
                       "'s state, not replica %" PRIu32
                       "'s: start it with --id %" PRIu32
                       ", or take replica %" PRIu32
                       " out and back in with an empty --data-dir "
                       "(cohort remove, then cohort add)",
                       data_dir, id, self, id, self);
    return 0;
}

#define INCARNATION_HEAD "cohort incarnation "
#define INCARNATION_SIZE (sizeof(INCARNATION_HEAD) - 1u + 16u + 1u)

int identity_incarnation_read(const char *data_dir, uint64_t *incarnation,
                              struct cohort_err *err)
{
    *incarnation = 0;
    struct vfs *vfs = vfs_posix();
    char path[VFS_PATH_MAX];
    if (vfs_path_join(path, data_dir, INCARNATION_FILE, err) != 0)
        return -COHORT_EINVAL;
    uint8_t *data = NULL;
    size_t size = 0;
    struct cohort_err read_err;
    int rc = vfs_read_file(vfs, path, &data, &size, &read_err);
    if (rc == -COHORT_ENOTFOUND)
        return 0;
    if (rc != 0)
        return err_set(err, rc, "data directory %s: read %s: %s", data_dir,
                       INCARNATION_FILE, read_err.message);
    size_t head = strlen(INCARNATION_HEAD);
    uint64_t x = 0;
    bool ok = size == INCARNATION_SIZE &&
              memcmp(data, INCARNATION_HEAD, head) == 0 &&
              data[size - 1] == '\n';
    for (size_t i = head; ok && i < size - 1; i++) {
        uint8_t ch = data[i];
        int digit = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                             : -1;
        ok = digit >= 0;
        x = x << 4 | (uint64_t)(ok ? digit : 0);
    }
    free(data);
    if (!ok || x == 0)
        return err_set(err, -COHORT_ECONFIG,
                       "data directory %s: %s is damaged (want one line "
                       "\"cohort incarnation\" and 16 hex digits); delete it "
                       "and the replica learns the group's incarnation again "
                       "from its data",
                       data_dir, path);
    *incarnation = x;
    return 0;
}

int identity_incarnation_write(const char *data_dir, uint64_t incarnation,
                               struct cohort_err *err)
{
    ASSERT(incarnation != 0);
    char text[INCARNATION_SIZE + 1];
    int len = snprintf(text, sizeof(text), INCARNATION_HEAD "%016" PRIx64 "\n",
                       incarnation);
    ASSERT(len == (int)INCARNATION_SIZE);
    return vfs_replace_file(vfs_posix(), data_dir, INCARNATION_FILE, text,
                            (size_t)len, err);
}
