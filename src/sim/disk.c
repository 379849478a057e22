/* sim/disk — the simulated disk, a struct vfs in memory. See disk.h.
 *
 * Files are inodes with two images: `data`, what reads see (the page
 * cache), and `durable`, what survives a power loss, plus the list of
 * changes (writes and resizes) made to data since the last sync, in order.
 * A sync replays them onto durable; a power loss rebuilds data from durable
 * and a prefix of them. Names work the same way: `names` is what lookups
 * see, `durable` what survives, and name_ops the changes in between. */
#include "sim/disk.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"

#define PPM 1000000u

enum change_kind {
    CHANGE_WRITE = 1,
    CHANGE_RESIZE = 2,
};

struct change {
    uint8_t kind;
    uint64_t offset; /* WRITE */
    uint64_t size;   /* WRITE: bytes; RESIZE: the new file size */
    uint8_t *bytes;  /* WRITE */
};

struct sim_inode {
    bool used;
    uint8_t *data;
    uint64_t size, cap;
    uint8_t *durable;
    uint64_t durable_size, durable_cap;
    struct change *changes;
    uint32_t change_count, change_cap;
    uint32_t handles; /* open handles of the current generation */
};

struct sim_name {
    char *path;
    uint32_t inode;
};

enum name_op_kind {
    NAME_CREATE = 1,
    NAME_RENAME = 2,
    NAME_UNLINK = 3,
};

struct sim_name_op {
    uint8_t kind;
    char *from; /* RENAME */
    char *path; /* CREATE, UNLINK; RENAME: the target */
    uint32_t inode;
};

struct sim_file {
    uint32_t inode;
    uint32_t generation;
    bool read_only;
    char path[VFS_PATH_MAX];
};

static struct sim_disk *disk_of(struct vfs *vfs)
{
    return (struct sim_disk *)vfs;
}

static struct sim_file *file_of(struct vfs_file *f)
{
    return (struct sim_file *)f;
}

/* Room for one element past count (the simulator stops when out of
 * memory). */
static void *grow(void *array, uint32_t count, uint32_t *cap, size_t elem)
{
    bool grown = grow_array_u32(&array, cap, (size_t)count + 1, elem, 16);
    ASSERT(grown);
    return array;
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    ASSERT(p);
    memcpy(p, s, n);
    return p;
}

static bool chance(struct sim_disk *d, uint32_t ppm)
{
    return ppm && prng_chance(d->prng, ppm);
}

/* ------------------------------------------------------------ bytes */

/* Make buf hold size bytes (zero-filled growth). */
static void resize_bytes(uint8_t **buf, uint64_t *size, uint64_t *cap,
                         uint64_t new_size)
{
    void *p = *buf;
    bool grown = grow_array_u64(&p, cap, new_size, 1, 256);
    ASSERT(grown);
    *buf = p;
    if (new_size > *size)
        memset(*buf + *size, 0, new_size - *size);
    *size = new_size;
}

static void write_bytes(uint8_t **buf, uint64_t *size, uint64_t *cap,
                        uint64_t offset, const uint8_t *src, uint64_t n)
{
    if (n == 0)
        return;
    if (offset + n > *size)
        resize_bytes(buf, size, cap, offset + n);
    memcpy(*buf + offset, src, n);
}

static void change_apply(uint8_t **buf, uint64_t *size, uint64_t *cap,
                         const struct change *ch, uint64_t keep)
{
    if (ch->kind == CHANGE_RESIZE)
        resize_bytes(buf, size, cap, ch->size);
    else
        write_bytes(buf, size, cap, ch->offset, ch->bytes, keep);
}

static void changes_clear(struct sim_inode *in)
{
    for (uint32_t i = 0; i < in->change_count; i++)
        free(in->changes[i].bytes);
    in->change_count = 0;
}

static void change_add(struct sim_inode *in, uint8_t kind, uint64_t offset,
                       uint64_t size, const void *bytes)
{
    in->changes = grow(in->changes, in->change_count, &in->change_cap,
                       sizeof(*in->changes));
    struct change *ch = &in->changes[in->change_count++];
    ch->kind = kind;
    ch->offset = offset;
    ch->size = size;
    ch->bytes = NULL;
    if (kind == CHANGE_WRITE) {
        ch->bytes = malloc(size ? size : 1);
        ASSERT(ch->bytes);
        memcpy(ch->bytes, bytes, size);
    }
}

/* ------------------------------------------------------------ inodes */

static uint32_t inode_new(struct sim_disk *d)
{
    for (uint32_t i = 0; i < d->inode_count; i++)
        if (!d->inodes[i].used) {
            d->inodes[i].used = true;
            return i;
        }
    d->inodes =
        grow(d->inodes, d->inode_count, &d->inode_cap, sizeof(*d->inodes));
    struct sim_inode *in = &d->inodes[d->inode_count];
    memset(in, 0, sizeof(*in));
    in->used = true;
    return d->inode_count++;
}

static void inode_free(struct sim_inode *in)
{
    changes_clear(in);
    free(in->changes);
    free(in->data);
    free(in->durable);
    memset(in, 0, sizeof(*in));
}

/* ------------------------------------------------------------ names */

static int32_t name_find(struct sim_name *names, uint32_t count,
                         const char *path)
{
    for (uint32_t i = 0; i < count; i++)
        if (!strcmp(names[i].path, path))
            return (int32_t)i;
    return -1;
}

static void name_set(struct sim_name **names, uint32_t *count, uint32_t *cap,
                     const char *path, uint32_t inode)
{
    int32_t i = name_find(*names, *count, path);
    if (i >= 0) {
        (*names)[i].inode = inode;
        return;
    }
    *names = grow(*names, *count, cap, sizeof(**names));
    (*names)[*count] = (struct sim_name){copy_string(path), inode};
    (*count)++;
}

static void name_remove(struct sim_name *names, uint32_t *count,
                        const char *path)
{
    int32_t i = name_find(names, *count, path);
    if (i < 0)
        return;
    free(names[i].path);
    names[i] = names[--*count];
}

static void name_op_add(struct sim_disk *d, uint8_t kind, const char *from,
                        const char *path, uint32_t inode)
{
    d->name_ops = grow(d->name_ops, d->name_op_count, &d->name_op_cap,
                       sizeof(*d->name_ops));
    d->name_ops[d->name_op_count++] = (struct sim_name_op){
        .kind = kind,
        .from = from ? copy_string(from) : NULL,
        .path = copy_string(path),
        .inode = inode,
    };
}

/* Apply a name change to the durable names. */
static void name_op_apply(struct sim_disk *d, const struct sim_name_op *op)
{
    switch (op->kind) {
    case NAME_CREATE:
        name_set(&d->durable, &d->durable_count, &d->durable_cap, op->path,
                 op->inode);
        break;
    case NAME_RENAME:
        name_remove(d->durable, &d->durable_count, op->from);
        name_set(&d->durable, &d->durable_count, &d->durable_cap, op->path,
                 op->inode);
        break;
    case NAME_UNLINK:
        name_remove(d->durable, &d->durable_count, op->path);
        break;
    }
}

static void name_op_free(struct sim_name_op *op)
{
    free(op->from);
    free(op->path);
}

static bool in_dir(const char *path, const char *dir)
{
    char parent[VFS_PATH_MAX];
    vfs_path_dir(parent, path);
    return !strcmp(parent, dir);
}

static bool dir_exists(const struct sim_disk *d, const char *dir)
{
    if (!strcmp(dir, "/") || !strcmp(dir, "."))
        return true;
    for (uint32_t i = 0; i < d->dir_count; i++)
        if (!strcmp(d->dirs[i], dir))
            return true;
    return false;
}

__attribute__((format(printf, 2, 3))) static void trace(struct sim_disk *d,
                                                        const char *fmt, ...)
{
    if (!d->trace)
        return;
    char line[VFS_PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    d->trace(d->trace_ctx, line);
}

/* ------------------------------------------------------------ spots */

static void spot_add(struct sim_disk *d, uint32_t inode, uint64_t offset,
                     uint64_t size)
{
    d->spots = grow(d->spots, d->spot_count, &d->spot_cap, sizeof(*d->spots));
    d->spots[d->spot_count++] = (struct sim_spot){inode, offset, size};
}

/* Spots past a file's new end are gone with the bytes. */
static void spots_truncated(struct sim_disk *d, uint32_t inode, uint64_t size)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < d->spot_count; i++) {
        const struct sim_spot *p = &d->spots[i];
        if (p->inode != inode || p->offset < size)
            d->spots[kept++] = *p;
    }
    d->spot_count = kept;
}

static bool inode_named(const struct sim_disk *d, uint32_t inode)
{
    for (uint32_t k = 0; k < d->name_count; k++)
        if (d->names[k].inode == inode)
            return true;
    for (uint32_t k = 0; k < d->durable_count; k++)
        if (d->durable[k].inode == inode)
            return true;
    return false;
}

/* Whether a power loss could bring a name of inode back. */
static bool inode_pending(const struct sim_disk *d, uint32_t inode)
{
    for (uint32_t k = 0; k < d->name_op_count; k++)
        if (d->name_ops[k].inode == inode)
            return true;
    return false;
}

/* A file no name holds, nor could hold after a power loss, and no handle
 * holds, is gone: its bytes are free (as a file system frees an unlinked
 * file's blocks at its last close). */
static void inode_reclaim(struct sim_disk *d, uint32_t inode)
{
    struct sim_inode *in = &d->inodes[inode];
    if (!in->used || in->handles > 0 || inode_named(d, inode) ||
        inode_pending(d, inode))
        return;
    inode_free(in);
    spots_truncated(d, inode, 0);
}

static void reclaim_all(struct sim_disk *d)
{
    for (uint32_t i = 0; i < d->inode_count; i++)
        inode_reclaim(d, i);
}

bool sim_disk_damaged(const struct sim_disk *d)
{
    if (d->misdirect_armed)
        return true;
    for (uint32_t i = 0; i < d->spot_count; i++)
        if (inode_named(d, d->spots[i].inode))
            return true;
    return false;
}

/* ------------------------------------------------------------ gates */

static int frozen_error(struct sim_disk *d, const char *what, const char *path,
                        struct cohort_err *err)
{
    (void)d;
    return err_set(err, -COHORT_EIO, "%s %.900s: %s (simulated power loss)",
                   what, path, strerror(EIO));
}

/* Every call passes here first: once the power is off, nothing works. */
static int powered(struct sim_disk *d, const char *what, const char *path,
                   struct cohort_err *err)
{
    return d->frozen ? frozen_error(d, what, path, err) : 0;
}

/* Every mutating call passes here first (after powered()). */
static int gate(struct sim_disk *d, const char *what, const char *path,
                struct cohort_err *err)
{
    if (d->frozen)
        return frozen_error(d, what, path, err);
    if (d->power_off_in) {
        if (--d->power_off_in == 0) {
            d->frozen = true;
            return frozen_error(d, what, path, err);
        }
    }
    return 0;
}

static int alive(struct sim_disk *d, const struct sim_file *f,
                 struct cohort_err *err)
{
    if (f->generation != d->generation)
        return err_set(err, -COHORT_EIO,
                       "%.900s: %s (the handle died in a simulated crash)",
                       f->path, strerror(EIO));
    return 0;
}

/* ------------------------------------------------------------ vfs calls */

static int disk_open(struct vfs *vfs, const char *path, int flags,
                     struct vfs_file **file, struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    int rc = powered(d, "open", path, err);
    if (rc != 0)
        return rc;
    int32_t i = name_find(d->names, d->name_count, path);
    if (i >= 0 && (flags & VFS_CREATE) && (flags & VFS_EXCLUSIVE))
        return err_set(err, -COHORT_EEXIST, "create %.900s: %s", path,
                       strerror(EEXIST));
    uint32_t inode;
    if (i >= 0) {
        inode = d->names[i].inode;
    } else {
        char parent[VFS_PATH_MAX];
        vfs_path_dir(parent, path);
        if (!(flags & VFS_CREATE) || !dir_exists(d, parent))
            return err_set(err, -COHORT_ENOTFOUND, "open %.900s: %s", path,
                           strerror(ENOENT));
        rc = gate(d, "create", path, err);
        if (rc != 0)
            return rc;
        inode = inode_new(d);
        trace(d, "create %s", path);
        name_set(&d->names, &d->name_count, &d->name_cap, path, inode);
        name_op_add(d, NAME_CREATE, NULL, path, inode);
    }
    struct sim_file *f = calloc(1, sizeof(*f));
    ASSERT(f);
    f->inode = inode;
    f->generation = d->generation;
    d->inodes[inode].handles++;
    f->read_only = (flags & VFS_READ_ONLY) != 0;
    snprintf(f->path, sizeof(f->path), "%s", path);
    *file = (struct vfs_file *)f;
    return 0;
}

static void disk_close(struct vfs *vfs, struct vfs_file *file)
{
    struct sim_disk *d = disk_of(vfs);
    struct sim_file *f = file_of(file);
    if (f->generation == d->generation) { /* else it died in a crash */
        ASSERT(d->inodes[f->inode].handles > 0);
        d->inodes[f->inode].handles--;
        inode_reclaim(d, f->inode);
    }
    free(f);
}

static int disk_read(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                     void *buf, size_t size, size_t *done,
                     struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    struct sim_file *f = file_of(file);
    int rc = alive(d, f, err);
    if (rc == 0)
        rc = powered(d, "read", f->path, err);
    if (rc != 0)
        return rc;
    if (chance(d, d->config.read_eio_ppm)) {
        d->stats.eio_reads++;
        return err_set(err, -COHORT_EIO,
                       "read %.900s at %" PRIu64 ": %s (simulated)", f->path,
                       offset, strerror(EIO));
    }
    const struct sim_inode *in = &d->inodes[f->inode];
    uint64_t n = 0;
    if (offset < in->size)
        n = in->size - offset < size ? in->size - offset : size;
    if (n)
        memcpy(buf, in->data + offset, n);
    *done = (size_t)n;
    return 0;
}

static int no_space(struct sim_disk *d, uint64_t grow_by, const char *path,
                    struct cohort_err *err)
{
    if (!d->capacity || sim_disk_used(d) + grow_by <= d->capacity)
        return 0;
    d->stats.enospc++;
    return err_set(err, -COHORT_ENOSPC, "write %.900s: %s (simulated)", path,
                   strerror(ENOSPC));
}

/* Where a misdirected write of size bytes lands instead of offset. */
static uint64_t misdirect(struct sim_disk *d, const struct sim_inode *in,
                          uint64_t offset, uint64_t size)
{
    uint64_t end = in->size > offset + size ? in->size : offset + size;
    uint64_t slots = (end - size) / 8u + 1u;
    uint64_t to = prng_below(d->prng, slots) * 8u;
    if (to == offset)
        to = offset >= 8u ? offset - 8u : offset + 8u;
    return to;
}

static int disk_write(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                      const void *buf, size_t size, struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    struct sim_file *f = file_of(file);
    int rc = alive(d, f, err);
    if (rc == 0)
        rc = gate(d, "write", f->path, err);
    if (rc != 0)
        return rc;
    struct sim_inode *in = &d->inodes[f->inode];
    uint64_t end = offset + size;
    rc = no_space(d, end > in->size ? end - in->size : 0, f->path, err);
    if (rc != 0)
        return rc;
    if (chance(d, d->config.write_eio_ppm)) {
        d->stats.eio_writes++;
        return err_set(err, -COHORT_EIO,
                       "write %.900s at %" PRIu64 ": %s (simulated)", f->path,
                       offset, strerror(EIO));
    }
    d->stats.writes++;
    trace(d, "write %s at %" PRIu64 " size %zu", f->path, offset, size);
    if (d->misdirect_armed && size > 0 &&
        strncmp(f->path, d->misdirect_prefix, strlen(d->misdirect_prefix)) ==
            0) {
        d->misdirect_armed = false;
        d->stats.misdirected++;
        spot_add(d, f->inode, offset, size); /* never written */
        offset = misdirect(d, in, offset, size);
        write_bytes(&in->data, &in->size, &in->cap, offset, buf, size);
        change_add(in, CHANGE_WRITE, offset, size, buf);
        spot_add(d, f->inode, offset, size); /* overwritten */
        return 0;
    }
    write_bytes(&in->data, &in->size, &in->cap, offset, buf, size);
    change_add(in, CHANGE_WRITE, offset, size, buf);
    return 0;
}

static int resize(struct sim_disk *d, struct sim_file *f, uint64_t size,
                  bool only_grow, struct cohort_err *err)
{
    int rc = alive(d, f, err);
    if (rc == 0)
        rc = gate(d, "resize", f->path, err);
    if (rc != 0)
        return rc;
    struct sim_inode *in = &d->inodes[f->inode];
    if (only_grow && size <= in->size)
        return 0;
    rc = no_space(d, size > in->size ? size - in->size : 0, f->path, err);
    if (rc != 0)
        return rc;
    trace(d, "resize %s to %" PRIu64, f->path, size);
    resize_bytes(&in->data, &in->size, &in->cap, size);
    change_add(in, CHANGE_RESIZE, 0, size, NULL);
    return 0;
}

static int disk_allocate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                         struct cohort_err *err)
{
    return resize(disk_of(vfs), file_of(file), size, true, err);
}

static int disk_truncate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                         struct cohort_err *err)
{
    return resize(disk_of(vfs), file_of(file), size, false, err);
}

static int disk_sync(struct vfs *vfs, struct vfs_file *file,
                     struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    struct sim_file *f = file_of(file);
    int rc = alive(d, f, err);
    if (rc == 0)
        rc = gate(d, "sync", f->path, err);
    if (rc != 0)
        return rc;
    struct sim_inode *in = &d->inodes[f->inode];
    if (chance(d, d->config.sync_eio_ppm)) {
        /* After a failed fsync the kernel may have dropped the dirty
         * pages: what reads see may be the old bytes from now on. */
        d->stats.eio_syncs++;
        if (prng_chance(d->prng, PPM / 2)) {
            in->size = 0;
            write_bytes(&in->data, &in->size, &in->cap, 0, in->durable,
                        in->durable_size);
            in->size = in->durable_size;
            changes_clear(in);
        }
        return err_set(err, -COHORT_EIO, "fdatasync %.900s: %s (simulated)",
                       f->path, strerror(EIO));
    }
    d->stats.syncs++;
    trace(d, "sync %s", f->path);
    for (uint32_t i = 0; i < in->change_count; i++) {
        const struct change *ch = &in->changes[i];
        change_apply(&in->durable, &in->durable_size, &in->durable_cap, ch,
                     ch->size);
        if (ch->kind == CHANGE_RESIZE)
            spots_truncated(d, f->inode, ch->size);
    }
    changes_clear(in);
    return 0;
}

static int disk_size(struct vfs *vfs, struct vfs_file *file, uint64_t *size,
                     struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    struct sim_file *f = file_of(file);
    int rc = alive(d, f, err);
    if (rc == 0)
        rc = powered(d, "stat", f->path, err);
    if (rc != 0)
        return rc;
    *size = d->inodes[f->inode].size;
    return 0;
}

static int disk_rename(struct vfs *vfs, const char *from, const char *to,
                       struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    int rc = powered(d, "rename", from, err);
    if (rc != 0)
        return rc;
    int32_t i = name_find(d->names, d->name_count, from);
    if (i < 0)
        return err_set(err, -COHORT_ENOTFOUND, "rename %.900s: %s", from,
                       strerror(ENOENT));
    rc = gate(d, "rename", from, err);
    if (rc != 0)
        return rc;
    uint32_t inode = d->names[i].inode;
    trace(d, "rename %s to %s", from, to);
    int32_t replaced = name_find(d->names, d->name_count, to);
    uint32_t old = replaced >= 0 ? d->names[replaced].inode : inode;
    name_remove(d->names, &d->name_count, from);
    name_set(&d->names, &d->name_count, &d->name_cap, to, inode);
    name_op_add(d, NAME_RENAME, from, to, inode);
    inode_reclaim(d, old);
    return 0;
}

static int disk_unlink(struct vfs *vfs, const char *path,
                       struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    int rc = powered(d, "unlink", path, err);
    if (rc != 0)
        return rc;
    int32_t i = name_find(d->names, d->name_count, path);
    if (i < 0)
        return err_set(err, -COHORT_ENOTFOUND, "unlink %.900s: %s", path,
                       strerror(ENOENT));
    rc = gate(d, "unlink", path, err);
    if (rc != 0)
        return rc;
    uint32_t inode = d->names[i].inode;
    trace(d, "unlink %s", path);
    name_remove(d->names, &d->name_count, path);
    name_op_add(d, NAME_UNLINK, NULL, path, inode);
    inode_reclaim(d, inode);
    return 0;
}

static int disk_mkdir(struct vfs *vfs, const char *path, struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    int rc = powered(d, "mkdir", path, err);
    if (rc != 0)
        return rc;
    if (dir_exists(d, path))
        return err_set(err, -COHORT_EEXIST, "mkdir %.900s: %s", path,
                       strerror(EEXIST));
    char parent[VFS_PATH_MAX];
    vfs_path_dir(parent, path);
    if (!dir_exists(d, parent))
        return err_set(err, -COHORT_ENOTFOUND, "mkdir %.900s: %s", path,
                       strerror(ENOENT));
    rc = gate(d, "mkdir", path, err);
    if (rc != 0)
        return rc;
    d->dirs = grow(d->dirs, d->dir_count, &d->dir_cap, sizeof(*d->dirs));
    d->dirs[d->dir_count++] = copy_string(path);
    return 0;
}

static int disk_sync_dir(struct vfs *vfs, const char *path,
                         struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    int rc = powered(d, "sync", path, err);
    if (rc != 0)
        return rc;
    if (!dir_exists(d, path))
        return err_set(err, -COHORT_ENOTFOUND, "open %.900s: %s", path,
                       strerror(ENOENT));
    rc = gate(d, "sync", path, err);
    if (rc != 0)
        return rc;
    trace(d, "sync directory %s", path);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < d->name_op_count; i++) {
        struct sim_name_op *op = &d->name_ops[i];
        if (in_dir(op->path, path)) {
            name_op_apply(d, op);
            name_op_free(op);
        } else {
            d->name_ops[kept++] = *op;
        }
    }
    d->name_op_count = kept;
    reclaim_all(d); /* names durably gone */
    return 0;
}

static int disk_list(struct vfs *vfs, const char *path, vfs_list_fn fn,
                     void *ctx, struct cohort_err *err)
{
    struct sim_disk *d = disk_of(vfs);
    int rc = powered(d, "list", path, err);
    if (rc != 0)
        return rc;
    if (!dir_exists(d, path))
        return err_set(err, -COHORT_ENOTFOUND, "list %.900s: %s", path,
                       strerror(ENOENT));
    /* Names in a fixed order (creation order of the table), copied first:
     * the callback may unlink. */
    uint32_t n = 0;
    char **list = calloc(d->name_count + d->dir_count + 1, sizeof(*list));
    ASSERT(list);
    for (uint32_t i = 0; i < d->name_count; i++)
        if (in_dir(d->names[i].path, path))
            list[n++] = copy_string(d->names[i].path);
    for (uint32_t i = 0; i < d->dir_count; i++)
        if (in_dir(d->dirs[i], path))
            list[n++] = copy_string(d->dirs[i]);
    for (uint32_t i = 0; i < n; i++) {
        const char *slash = strrchr(list[i], '/');
        if (rc == 0)
            rc = fn(ctx, slash ? slash + 1 : list[i]);
        free(list[i]);
    }
    free(list);
    return rc;
}

/* ------------------------------------------------------------ faults */

/* Keep the first `keep` changes of in (the rest are lost), the next one
 * torn at a sector boundary if torn. */
static void power_loss_inode(struct sim_disk *d, struct sim_inode *in)
{
    uint32_t keep = (uint32_t)prng_below(d->prng, in->change_count + 1u);
    in->size = 0;
    write_bytes(&in->data, &in->size, &in->cap, 0, in->durable,
                in->durable_size);
    in->size = in->durable_size;
    for (uint32_t i = 0; i < keep; i++)
        change_apply(&in->data, &in->size, &in->cap, &in->changes[i],
                     in->changes[i].size);
    if (keep < in->change_count) {
        d->stats.lost_writes += in->change_count - keep;
        const struct change *ch = &in->changes[keep];
        if (ch->kind == CHANGE_WRITE && ch->size > 0 &&
            chance(d, d->config.torn_ppm)) {
            /* Sectors reach the platter in order; cut between two. */
            uint64_t sector =
                d->config.sector_size ? d->config.sector_size : 512u;
            uint64_t first = (ch->offset / sector + 1u) * sector;
            uint64_t end = ch->offset + ch->size;
            if (first < end) {
                uint64_t cuts = (end - 1u - first) / sector + 1u;
                uint64_t cut = first + prng_below(d->prng, cuts) * sector;
                change_apply(&in->data, &in->size, &in->cap, ch,
                             cut - ch->offset);
                d->stats.torn++;
            }
        }
    }
    /* What survived is what is on the platter now. */
    changes_clear(in);
    in->durable_size = 0;
    write_bytes(&in->durable, &in->durable_size, &in->durable_cap, 0, in->data,
                in->size);
    in->durable_size = in->size;
}

static void power_loss_names(struct sim_disk *d)
{
    uint32_t keep = (uint32_t)prng_below(d->prng, d->name_op_count + 1u);
    for (uint32_t i = 0; i < d->name_op_count; i++) {
        if (i < keep)
            name_op_apply(d, &d->name_ops[i]);
        name_op_free(&d->name_ops[i]);
    }
    d->name_op_count = 0;
    for (uint32_t i = 0; i < d->name_count; i++)
        free(d->names[i].path);
    d->name_count = 0;
    for (uint32_t i = 0; i < d->durable_count; i++)
        name_set(&d->names, &d->name_count, &d->name_cap, d->durable[i].path,
                 d->durable[i].inode);
}

void sim_disk_crash(struct sim_disk *d, bool power)
{
    d->generation++;
    d->frozen = false;
    d->power_off_in = 0;
    d->misdirect_armed = false;
    for (uint32_t i = 0; i < d->inode_count; i++)
        d->inodes[i].handles = 0; /* every handle died */
    if (!power) {
        reclaim_all(d); /* unlinked files the process still held */
        return;
    }
    d->stats.power_losses++;
    trace(d,
          "POWER LOSS: %u name changes and the unsynced writes of %u "
          "files at stake",
          d->name_op_count, d->inode_count);
    power_loss_names(d);
    for (uint32_t i = 0; i < d->inode_count; i++) {
        struct sim_inode *in = &d->inodes[i];
        if (!in->used)
            continue;
        bool named = false;
        for (uint32_t k = 0; k < d->name_count && !named; k++)
            named = d->names[k].inode == i;
        if (named) {
            power_loss_inode(d, in);
        } else {
            inode_free(in); /* no name survived: the file is gone */
            spots_truncated(d, i, 0);
        }
    }
}

void sim_disk_power_off_after(struct sim_disk *d, uint64_t n)
{
    d->power_off_in = n ? n : 1;
}

void sim_disk_power_stays_on(struct sim_disk *d)
{
    d->power_off_in = 0;
}

bool sim_disk_powered_off(const struct sim_disk *d)
{
    return d->frozen;
}

/* The end of the last nonzero synced byte of in, plus one. */
static uint64_t synced_extent(const struct sim_inode *in)
{
    uint64_t end = in->durable_size;
    while (end > 0 && in->durable[end - 1] == 0)
        end--;
    return end;
}

bool sim_disk_corrupt(struct sim_disk *d, const char *prefix, char *path,
                      uint64_t *offset)
{
    uint32_t candidates = 0;
    size_t len = strlen(prefix);
    for (uint32_t i = 0; i < d->durable_count; i++) {
        const struct sim_inode *in = &d->inodes[d->durable[i].inode];
        candidates +=
            !strncmp(d->durable[i].path, prefix, len) && synced_extent(in) > 0;
    }
    if (candidates == 0)
        return false;
    uint32_t pick = (uint32_t)prng_below(d->prng, candidates);
    for (uint32_t i = 0; i < d->durable_count; i++) {
        struct sim_inode *in = &d->inodes[d->durable[i].inode];
        if (strncmp(d->durable[i].path, prefix, len) ||
            synced_extent(in) == 0 || pick-- > 0)
            continue;
        uint64_t at = prng_below(d->prng, synced_extent(in));
        uint8_t bit = (uint8_t)(1u << prng_below(d->prng, 8));
        in->durable[at] ^= bit;
        if (at < in->size)
            in->data[at] ^= bit;
        spot_add(d, d->durable[i].inode, at, 1);
        d->stats.corruptions++;
        snprintf(path, VFS_PATH_MAX, "%s", d->durable[i].path);
        *offset = at;
        return true;
    }
    UNREACHABLE();
}

void sim_disk_misdirect_next(struct sim_disk *d, const char *prefix)
{
    d->misdirect_armed = true;
    snprintf(d->misdirect_prefix, sizeof(d->misdirect_prefix), "%s", prefix);
}

void sim_disk_set_capacity(struct sim_disk *d, uint64_t capacity)
{
    d->capacity = capacity;
}

uint64_t sim_disk_used(const struct sim_disk *d)
{
    uint64_t used = 0;
    for (uint32_t i = 0; i < d->inode_count; i++)
        if (d->inodes[i].used)
            used += d->inodes[i].size;
    return used;
}

/* ------------------------------------------------------------ lifecycle */

void sim_disk_init(struct sim_disk *d, struct prng *prng,
                   const struct sim_disk_config *config)
{
    memset(d, 0, sizeof(*d));
    d->prng = prng;
    d->config = *config;
    d->vfs = (struct vfs){
        .open = disk_open,
        .close = disk_close,
        .read = disk_read,
        .write = disk_write,
        .sync = disk_sync,
        .allocate = disk_allocate,
        .truncate = disk_truncate,
        .size = disk_size,
        .rename = disk_rename,
        .unlink = disk_unlink,
        .mkdir = disk_mkdir,
        .sync_dir = disk_sync_dir,
        .list = disk_list,
    };
}

void sim_disk_copy_files(const struct sim_disk *from, struct sim_disk *to)
{
    ASSERT(to->inode_count == 0 && to->name_count == 0 && to->dir_count == 0);
    for (uint32_t i = 0; i < from->dir_count; i++) {
        to->dirs =
            grow(to->dirs, to->dir_count, &to->dir_cap, sizeof(*to->dirs));
        to->dirs[to->dir_count++] = copy_string(from->dirs[i]);
    }
    for (uint32_t i = 0; i < from->name_count; i++) {
        const struct sim_inode *src = &from->inodes[from->names[i].inode];
        uint32_t n = inode_new(to);
        struct sim_inode *in = &to->inodes[n];
        write_bytes(&in->data, &in->size, &in->cap, 0, src->data, src->size);
        write_bytes(&in->durable, &in->durable_size, &in->durable_cap, 0,
                    src->data, src->size);
        name_set(&to->names, &to->name_count, &to->name_cap,
                 from->names[i].path, n);
        name_set(&to->durable, &to->durable_count, &to->durable_cap,
                 from->names[i].path, n);
    }
}

void sim_disk_deinit(struct sim_disk *d)
{
    for (uint32_t i = 0; i < d->inode_count; i++)
        inode_free(&d->inodes[i]);
    free(d->inodes);
    for (uint32_t i = 0; i < d->name_count; i++)
        free(d->names[i].path);
    free(d->names);
    for (uint32_t i = 0; i < d->durable_count; i++)
        free(d->durable[i].path);
    free(d->durable);
    for (uint32_t i = 0; i < d->name_op_count; i++)
        name_op_free(&d->name_ops[i]);
    free(d->name_ops);
    for (uint32_t i = 0; i < d->dir_count; i++)
        free(d->dirs[i]);
    free(d->dirs);
    free(d->spots);
    memset(d, 0, sizeof(*d));
}
