/* vfs_fault — fault-injecting, crash-simulating wrapper around a vfs. See
 * vfs_fault.h for the model.
 *
 * The wrapper keeps, per inode (a file as opened, independent of its name),
 * a copy of its durable contents, refreshed by every successful sync; per
 * name, the inode it points to now and the one it points to durably; and a
 * list of the unsynced writes with copies of their bytes. A crash rebuilds
 * the inner tree from the durable names and contents plus a prefix of the
 * unsynced writes. It is a test tool: simple and thorough, not fast. */
#include "storage/vfs_fault.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"

#define NO_INODE (-1)

struct fault_inode {
    uint8_t *image; /* durable contents */
    uint64_t image_size;
    bool used;
};

struct fault_name {
    char *path;
    int32_t current; /* inode the name points to now, or NO_INODE */
    int32_t durable; /* inode it points to on disk, or NO_INODE */
    int32_t crash;   /* during a crash: what it points to after */
};

enum fault_name_op_kind {
    NAME_CREATE = 1,
    NAME_RENAME = 2,
    NAME_UNLINK = 3,
};

/* A name change not yet made durable by a sync_dir. */
struct fault_name_op {
    enum fault_name_op_kind kind;
    char *path; /* created, renamed to, or unlinked */
    char *from; /* NAME_RENAME: renamed from */
    int32_t inode;
};

struct fault_write {
    int32_t inode;
    uint64_t offset;
    uint8_t *data;
    size_t size;
};

struct fault_file {
    struct vfs_file *inner; /* NULL once a crash killed the handle */
    int32_t inode;
    struct fault_file *next;
    uint64_t written_end; /* the end of the furthest write through it */
    uint64_t waited_end;  /* bytes below this were waited for (stats) */
    char path[VFS_PATH_MAX];
};

static struct vfs_fault *fault_of(struct vfs *vfs)
{
    ASSERT(vfs != NULL);
    return (struct vfs_fault *)vfs; /* vfs is the first member */
}

static struct fault_file *file_of(struct vfs_file *file)
{
    ASSERT(file != NULL);
    return (struct fault_file *)file;
}

static int no_memory(struct cohort_err *err, const char *what)
{
    return err_set(err, -COHORT_ENOMEM, "vfs_fault: out of memory (%s)", what);
}

/* Grow an array to hold one more element. */
static int grow(void **array, uint32_t count, uint32_t *cap, size_t elem)
{
    if (!grow_array_u32(array, cap, (size_t)count + 1, elem, 16))
        return -COHORT_ENOMEM;
    return 0;
}

/* Operation gates: power-off and the countdowns. */

static int gate_op(struct vfs_fault *f, const char *what, const char *path,
                   struct cohort_err *err)
{
    f->stats.ops++;
    if (!f->powered_off && f->power_off_in > 0) {
        f->power_off_in--;
        if (f->power_off_in == 0)
            f->powered_off = true;
        return 0;
    }
    if (f->powered_off)
        return err_sys(err, EIO, "%s %.900s (power is off)", what, path);
    return 0;
}

static int gate_countdown(uint64_t *in, int errnum, const char *what,
                          const char *path, struct cohort_err *err)
{
    if (*in == 0)
        return 0;
    if (--*in > 0)
        return 0;
    return err_sys(err, errnum, "%s %.900s (injected)", what, path);
}

static int gate_write(struct vfs_fault *f, const char *what, const char *path,
                      struct cohort_err *err)
{
    f->stats.writes++;
    int rc = gate_op(f, what, path, err);
    if (rc != 0)
        return rc;
    return gate_countdown(&f->fail_write_in, f->fail_write_errnum, what, path,
                          err);
}

static int gate_sync(struct vfs_fault *f, const char *what, const char *path,
                     struct cohort_err *err)
{
    f->stats.syncs++;
    int rc = gate_op(f, what, path, err);
    if (rc != 0)
        return rc;
    return gate_countdown(&f->fail_sync_in, f->fail_sync_errnum, what, path,
                          err);
}

static int check_alive(const struct fault_file *ff, struct cohort_err *err)
{
    if (ff->inner)
        return 0;
    return err_sys(err, EIO, "%s: handle died in a simulated crash", ff->path);
}

/* The model: names and inodes. */

static struct fault_name *name_find(struct vfs_fault *f, const char *path)
{
    for (uint32_t i = 0; i < f->name_count; i++)
        if (strcmp(f->names[i].path, path) == 0)
            return &f->names[i];
    return NULL;
}

static struct fault_name *name_add(struct vfs_fault *f, const char *path)
{
    if (grow((void **)&f->names, f->name_count, &f->name_cap,
             sizeof(*f->names)) != 0)
        return NULL;
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    struct fault_name *n = &f->names[f->name_count++];
    n->path = copy;
    n->current = NO_INODE;
    n->durable = NO_INODE;
    return n;
}

/* A new inode whose durable contents are a copy of data (may be NULL). */
static int32_t inode_add(struct vfs_fault *f, const uint8_t *data,
                         uint64_t size)
{
    if (grow((void **)&f->inodes, f->inode_count, &f->inode_cap,
             sizeof(*f->inodes)) != 0)
        return NO_INODE;
    uint8_t *image = NULL;
    if (size) {
        image = malloc((size_t)size);
        if (!image)
            return NO_INODE;
        memcpy(image, data, (size_t)size);
    }
    struct fault_inode *in = &f->inodes[f->inode_count];
    in->image = image;
    in->image_size = size;
    in->used = true;
    return (int32_t)f->inode_count++;
}

/* Make sure the model knows path if the inner vfs has it: a file the
 * wrapper has not seen yet is durable as it is now. Returns the name, or
 * NULL with *rc = 0 if the file does not exist. */
static struct fault_name *name_adopt(struct vfs_fault *f, const char *path,
                                     int *rc, struct cohort_err *err)
{
    *rc = 0;
    struct fault_name *n = name_find(f, path);
    if (n && n->current != NO_INODE)
        return n;
    uint8_t *data;
    size_t size;
    struct cohort_err ignored;
    int ret = vfs_read_file(f->inner, path, &data, &size, &ignored);
    if (ret == -COHORT_ENOTFOUND)
        return n;
    if (ret != 0) {
        *rc = err_set(err, ret, "vfs_fault: adopt %.900s: %s", path,
                      ignored.message);
        return NULL;
    }
    int32_t inode = inode_add(f, data, size);
    free(data);
    if (!n)
        n = name_add(f, path);
    if (inode == NO_INODE || !n) {
        *rc = no_memory(err, "adopt");
        return NULL;
    }
    n->current = inode;
    n->durable = inode;
    return n;
}

static int name_op_add(struct vfs_fault *f, enum fault_name_op_kind kind,
                       const char *path, const char *from, int32_t inode)
{
    if (grow((void **)&f->name_ops, f->name_op_count, &f->name_op_cap,
             sizeof(*f->name_ops)) != 0)
        return -COHORT_ENOMEM;
    char *p = strdup(path);
    char *q = from ? strdup(from) : NULL;
    if (!p || (from && !q)) {
        free(p);
        free(q);
        return -COHORT_ENOMEM;
    }
    f->name_ops[f->name_op_count++] = (struct fault_name_op){
        .kind = kind, .path = p, .from = q, .inode = inode};
    return 0;
}

static void name_op_free(struct fault_name_op *op)
{
    free(op->path);
    free(op->from);
}

/* The vfs operations. */

static int fault_open_inner(struct vfs_fault *f, const char *path, int flags,
                            struct vfs_file **inner, bool *created,
                            struct cohort_err *err)
{
    *created = false;
    int rc = vfs_open(f->inner, path, flags & ~(VFS_CREATE | VFS_EXCLUSIVE),
                      inner, err);
    if (rc == 0 && (flags & VFS_CREATE) && (flags & VFS_EXCLUSIVE)) {
        vfs_close(f->inner, *inner);
        return err_set(err, -COHORT_EEXIST, "create %.900s: %s", path,
                       strerror(EEXIST));
    }
    if (rc != -COHORT_ENOTFOUND || !(flags & VFS_CREATE))
        return rc;
    rc = gate_op(f, "create", path, err);
    if (rc != 0)
        return rc;
    err_clear(err);
    rc = vfs_open(f->inner, path, flags, inner, err);
    *created = rc == 0;
    return rc;
}

static int fault_open(struct vfs *vfs, const char *path, int flags,
                      struct vfs_file **file, struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = calloc(1, sizeof(*ff));
    if (!ff)
        return no_memory(err, "open");
    snprintf(ff->path, sizeof(ff->path), "%s", path);
    bool created;
    int rc = fault_open_inner(f, path, flags, &ff->inner, &created, err);
    if (rc != 0) {
        free(ff);
        return rc;
    }
    struct fault_name *n;
    if (created) {
        n = name_find(f, path);
        if (!n)
            n = name_add(f, path);
        ff->inode = n ? inode_add(f, NULL, 0) : NO_INODE;
        if (n)
            n->current = ff->inode;
        if (ff->inode != NO_INODE &&
            name_op_add(f, NAME_CREATE, path, NULL, ff->inode) != 0)
            rc = no_memory(err, "open");
    } else {
        n = name_adopt(f, path, &rc, err);
        ff->inode = n ? n->current : NO_INODE;
    }
    if (rc != 0 || ff->inode == NO_INODE) {
        vfs_close(f->inner, ff->inner);
        free(ff);
        return rc ? rc : no_memory(err, "open");
    }
    ff->next = f->files;
    f->files = ff;
    *file = (struct vfs_file *)ff;
    return 0;
}

static void fault_close(struct vfs *vfs, struct vfs_file *file)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    struct fault_file **link = &f->files;
    while (*link && *link != ff)
        link = &(*link)->next;
    ASSERT(*link == ff); /* closing a handle this vfs did not open */
    *link = ff->next;
    if (ff->inner)
        vfs_close(f->inner, ff->inner);
    free(ff);
}

static int fault_read(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                      void *buf, size_t size, size_t *done,
                      struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc != 0)
        return rc;
    return vfs_read(f->inner, ff->inner, offset, buf, size, done, err);
}

static int fault_write(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                       const void *buf, size_t size, struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc == 0)
        rc = gate_write(f, "write", ff->path, err);
    if (rc != 0)
        return rc;
    if (grow((void **)&f->pending, f->pending_count, &f->pending_cap,
             sizeof(*f->pending)) != 0)
        return no_memory(err, "write");
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return no_memory(err, "write");
    rc = vfs_write(f->inner, ff->inner, offset, buf, size, err);
    if (rc != 0) {
        free(copy);
        return rc;
    }
    if (size)
        memcpy(copy, buf, size);
    f->pending[f->pending_count++] = (struct fault_write){
        .inode = ff->inode, .offset = offset, .data = copy, .size = size};
    if (offset + size > ff->written_end)
        ff->written_end = offset + size;
    if (ff->written_end - ff->waited_end > f->stats.unwaited_max)
        f->stats.unwaited_max = ff->written_end - ff->waited_end;
    return 0;
}

/* Passed on to the inner vfs and counted; it changes nothing about what a
 * crash keeps (only sync does). */
static int fault_writeback(struct vfs *vfs, struct vfs_file *file,
                           uint64_t offset, uint64_t size, bool wait,
                           struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc != 0)
        return rc;
    f->stats.writebacks++;
    if (size > f->stats.writeback_max_size)
        f->stats.writeback_max_size = size;
    if (wait) {
        f->stats.writeback_waits++;
        if (offset <= ff->waited_end && offset + size > ff->waited_end)
            ff->waited_end = offset + size;
    }
    return vfs_writeback(f->inner, ff->inner, offset, size, wait, err);
}

/* Drop the unsynced writes of one inode (they are durable now). */
static void pending_drop_inode(struct vfs_fault *f, int32_t inode)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < f->pending_count; i++) {
        if (f->pending[i].inode == inode)
            free(f->pending[i].data);
        else
            f->pending[kept++] = f->pending[i];
    }
    f->pending_count = kept;
}

static int fault_sync(struct vfs *vfs, struct vfs_file *file,
                      struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc == 0)
        rc = gate_sync(f, "fdatasync", ff->path, err);
    if (rc == 0)
        rc = vfs_sync(f->inner, ff->inner, err);
    if (rc == 0)
        ff->waited_end = ff->written_end;
    uint64_t size = 0;
    if (rc == 0)
        rc = vfs_size(f->inner, ff->inner, &size, err);
    if (rc != 0)
        return rc;
    uint8_t *image = malloc(size ? (size_t)size : 1);
    if (!image)
        return no_memory(err, "sync");
    size_t done;
    rc = vfs_read(f->inner, ff->inner, 0, image, (size_t)size, &done, err);
    if (rc != 0) {
        free(image);
        return rc;
    }
    ASSERT(done == size);
    struct fault_inode *in = &f->inodes[ff->inode];
    ASSERT(in->used);
    free(in->image);
    in->image = image;
    in->image_size = size;
    pending_drop_inode(f, ff->inode);
    return 0;
}

static int fault_allocate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                          struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc == 0)
        rc = gate_write(f, "allocate", ff->path, err);
    if (rc != 0)
        return rc;
    return vfs_allocate(f->inner, ff->inner, size, err);
}

static int fault_truncate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                          struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc == 0)
        rc = gate_write(f, "truncate", ff->path, err);
    if (rc != 0)
        return rc;
    return vfs_truncate(f->inner, ff->inner, size, err);
}

static int fault_size(struct vfs *vfs, struct vfs_file *file, uint64_t *size,
                      struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    struct fault_file *ff = file_of(file);
    int rc = check_alive(ff, err);
    if (rc != 0)
        return rc;
    return vfs_size(f->inner, ff->inner, size, err);
}

static int fault_rename(struct vfs *vfs, const char *from, const char *to,
                        struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    int rc = gate_op(f, "rename", from, err);
    if (rc != 0)
        return rc;
    /* Adopting may grow f->names, so names are looked up again below. */
    name_adopt(f, from, &rc, err);
    if (rc == 0)
        name_adopt(f, to, &rc, err);
    if (rc == 0 && !name_find(f, to) && !name_add(f, to))
        rc = no_memory(err, "rename");
    if (rc == 0)
        rc = vfs_rename(f->inner, from, to, err);
    if (rc != 0)
        return rc;
    struct fault_name *src = name_find(f, from);
    struct fault_name *dst = name_find(f, to);
    ASSERT(src != NULL); /* the inner rename found the file */
    ASSERT(dst != NULL);
    int32_t inode = src->current;
    src->current = NO_INODE;
    dst->current = inode;
    if (name_op_add(f, NAME_RENAME, to, from, inode) != 0)
        return no_memory(err, "rename");
    return 0;
}

static int fault_unlink(struct vfs *vfs, const char *path,
                        struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    int rc = gate_op(f, "unlink", path, err);
    if (rc != 0)
        return rc;
    struct fault_name *n = name_adopt(f, path, &rc, err);
    if (rc != 0)
        return rc;
    rc = vfs_unlink(f->inner, path, err);
    if (rc != 0 || !n)
        return rc;
    int32_t inode = n->current;
    n->current = NO_INODE;
    if (name_op_add(f, NAME_UNLINK, path, NULL, inode) != 0)
        return no_memory(err, "unlink");
    return 0;
}

static int fault_mkdir(struct vfs *vfs, const char *path,
                       struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    int rc = gate_op(f, "mkdir", path, err);
    if (rc != 0)
        return rc;
    return vfs_mkdir(f->inner, path, err);
}

static int fault_sync_dir(struct vfs *vfs, const char *path,
                          struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    int rc = gate_sync(f, "fsync directory", path, err);
    if (rc == 0)
        rc = vfs_sync_dir(f->inner, path, err);
    if (rc != 0)
        return rc;
    char dir[VFS_PATH_MAX];
    for (uint32_t i = 0; i < f->name_count; i++) {
        vfs_path_dir(dir, f->names[i].path);
        if (strcmp(dir, path) == 0)
            f->names[i].durable = f->names[i].current;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < f->name_op_count; i++) {
        vfs_path_dir(dir, f->name_ops[i].path);
        if (strcmp(dir, path) == 0)
            name_op_free(&f->name_ops[i]);
        else
            f->name_ops[kept++] = f->name_ops[i];
    }
    f->name_op_count = kept;
    return 0;
}

static int fault_list(struct vfs *vfs, const char *path, vfs_list_fn fn,
                      void *ctx, struct cohort_err *err)
{
    struct vfs_fault *f = fault_of(vfs);
    return vfs_list(f->inner, path, fn, ctx, err);
}

void vfs_fault_init(struct vfs_fault *f, struct vfs *inner)
{
    ASSERT(inner != NULL);
    memset(f, 0, sizeof(*f));
    f->vfs = (struct vfs){
        .open = fault_open,
        .close = fault_close,
        .read = fault_read,
        .write = fault_write,
        .sync = fault_sync,
        .allocate = fault_allocate,
        .truncate = fault_truncate,
        .size = fault_size,
        .rename = fault_rename,
        .unlink = fault_unlink,
        .mkdir = fault_mkdir,
        .sync_dir = fault_sync_dir,
        .list = fault_list,
        .writeback = fault_writeback,
    };
    f->inner = inner;
}

static void name_ops_clear(struct vfs_fault *f)
{
    for (uint32_t i = 0; i < f->name_op_count; i++)
        name_op_free(&f->name_ops[i]);
    f->name_op_count = 0;
}

static void model_free(struct vfs_fault *f)
{
    name_ops_clear(f);
    for (uint32_t i = 0; i < f->pending_count; i++)
        free(f->pending[i].data);
    f->pending_count = 0;
    for (uint32_t i = 0; i < f->inode_count; i++)
        free(f->inodes[i].image);
    f->inode_count = 0;
    for (uint32_t i = 0; i < f->name_count; i++)
        free(f->names[i].path);
    f->name_count = 0;
}

void vfs_fault_deinit(struct vfs_fault *f)
{
    ASSERT(f->files == NULL); /* every handle closed */
    model_free(f);
    free(f->pending);
    free(f->name_ops);
    free(f->inodes);
    free(f->names);
    memset(f, 0, sizeof(*f));
}

void vfs_fault_fail_write(struct vfs_fault *f, uint64_t nth, int errnum)
{
    ASSERT(nth >= 1);
    ASSERT(errnum > 0);
    f->fail_write_in = nth;
    f->fail_write_errnum = errnum;
}

void vfs_fault_fail_sync(struct vfs_fault *f, uint64_t nth, int errnum)
{
    ASSERT(nth >= 1);
    ASSERT(errnum > 0);
    f->fail_sync_in = nth;
    f->fail_sync_errnum = errnum;
}

void vfs_fault_power_off_after(struct vfs_fault *f, uint64_t n)
{
    ASSERT(!f->powered_off);
    if (n == 0)
        f->powered_off = true;
    else
        f->power_off_in = n;
}

uint64_t vfs_fault_unsynced_bytes(const struct vfs_fault *f)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < f->pending_count; i++)
        sum += f->pending[i].size;
    return sum;
}

uint32_t vfs_fault_unsynced_names(const struct vfs_fault *f)
{
    return f->name_op_count;
}

const struct vfs_fault_stats *vfs_fault_stats(const struct vfs_fault *f)
{
    return &f->stats;
}

/* Crash: the contents each inode has after the crash. images[i] is a
 * malloc'd copy of inode i's durable image plus the kept unsynced bytes. */
struct crash_image {
    uint8_t *data;
    uint64_t size;
};

static int image_apply(struct crash_image *im, uint64_t offset,
                       const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint64_t end = offset + size;
    if (end > im->size) {
        uint8_t *p = realloc(im->data, (size_t)end);
        if (!p)
            return -COHORT_ENOMEM;
        memset(p + im->size, 0, (size_t)(end - im->size));
        im->data = p;
        im->size = end;
    }
    memcpy(im->data + offset, data, size);
    return 0;
}

static int crash_images(struct vfs_fault *f, uint64_t keep,
                        struct crash_image *images)
{
    for (uint32_t i = 0; i < f->inode_count; i++) {
        struct fault_inode *in = &f->inodes[i];
        images[i].size = 0;
        images[i].data = NULL;
        if (in->image_size &&
            image_apply(&images[i], 0, in->image, (size_t)in->image_size))
            return -COHORT_ENOMEM;
    }
    for (uint32_t i = 0; i < f->pending_count && keep > 0; i++) {
        const struct fault_write *w = &f->pending[i];
        size_t n = w->size < keep ? w->size : (size_t)keep;
        if (image_apply(&images[w->inode], w->offset, w->data, n))
            return -COHORT_ENOMEM;
        keep -= n;
    }
    return 0;
}

/* What each name points to after the crash: durable, plus the kept name
 * changes replayed in order. A kept rename shows the file at its new name
 * even if the create before it was lost. */
static void crash_names(struct vfs_fault *f, uint64_t keep)
{
    for (uint32_t i = 0; i < f->name_count; i++)
        f->names[i].crash = f->names[i].durable;
    for (uint32_t i = 0; i < f->name_op_count; i++) {
        const struct fault_name_op *op = &f->name_ops[i];
        if (!((keep >> (i < 63 ? i : 63)) & 1))
            continue;
        struct fault_name *n = name_find(f, op->path);
        ASSERT(n != NULL); /* names outlive their ops */
        if (op->kind == NAME_UNLINK) {
            if (n->crash == op->inode)
                n->crash = NO_INODE;
            continue;
        }
        n->crash = op->inode;
        if (op->kind == NAME_RENAME) {
            struct fault_name *src = name_find(f, op->from);
            ASSERT(src != NULL);
            if (src->crash == op->inode)
                src->crash = NO_INODE;
        }
    }
}

/* Rewrite the inner tree: every name as it is after the crash, nothing
 * else. */
static int crash_rebuild(struct vfs_fault *f, const struct crash_image *images,
                         struct cohort_err *err)
{
    for (uint32_t i = 0; i < f->name_count; i++) {
        if (f->names[i].current == NO_INODE)
            continue;
        int rc = vfs_unlink(f->inner, f->names[i].path, err);
        if (rc != 0 && rc != -COHORT_ENOTFOUND)
            return rc;
    }
    for (uint32_t i = 0; i < f->name_count; i++) {
        struct fault_name *n = &f->names[i];
        if (n->crash == NO_INODE)
            continue;
        const struct crash_image *im = &images[n->crash];
        struct vfs_file *file;
        int rc = vfs_open(f->inner, n->path, VFS_CREATE, &file, err);
        if (rc != 0)
            return rc;
        rc = vfs_write(f->inner, file, 0, im->data, (size_t)im->size, err);
        vfs_close(f->inner, file);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* After the rebuild each durable name gets an inode of its own holding what
 * it holds now; names that did not survive are forgotten. */
static int crash_remodel(struct vfs_fault *f, const struct crash_image *images)
{
    uint32_t old_count = f->inode_count;
    struct fault_inode *old = f->inodes;
    f->inodes = NULL;
    f->inode_count = 0;
    f->inode_cap = 0;
    int rc = 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < f->name_count; i++) {
        struct fault_name n = f->names[i];
        if (n.crash == NO_INODE) {
            free(n.path);
            continue;
        }
        const struct crash_image *im = &images[n.crash];
        n.current = inode_add(f, im->data, im->size);
        n.durable = n.current;
        if (n.current == NO_INODE)
            rc = -COHORT_ENOMEM;
        f->names[kept++] = n;
    }
    f->name_count = kept;
    for (uint32_t i = 0; i < old_count; i++)
        free(old[i].image);
    free(old);
    return rc;
}

int vfs_fault_crash(struct vfs_fault *f, uint64_t keep_bytes,
                    uint64_t keep_names, struct cohort_err *err)
{
    for (struct fault_file *ff = f->files; ff; ff = ff->next) {
        if (ff->inner)
            vfs_close(f->inner, ff->inner);
        ff->inner = NULL;
    }
    struct crash_image *images =
        calloc(f->inode_count ? f->inode_count : 1, sizeof(*images));
    if (!images)
        return no_memory(err, "crash");
    uint32_t image_count = f->inode_count;
    int rc = crash_images(f, keep_bytes, images);
    crash_names(f, keep_names);
    if (rc == 0)
        rc = crash_rebuild(f, images, err);
    if (rc == 0)
        rc = crash_remodel(f, images);
    for (uint32_t i = 0; i < image_count; i++)
        free(images[i].data);
    free(images);
    for (uint32_t i = 0; i < f->pending_count; i++)
        free(f->pending[i].data);
    f->pending_count = 0;
    name_ops_clear(f);
    f->powered_off = false;
    f->power_off_in = 0;
    f->fail_write_in = 0;
    f->fail_sync_in = 0;
    if (rc == -COHORT_ENOMEM)
        return no_memory(err, "crash");
    return rc;
}
