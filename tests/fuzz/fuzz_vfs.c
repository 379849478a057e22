/* fuzz_vfs — an in-memory struct vfs for the fuzzers. See fuzz_vfs.h. */
#include "fuzz_vfs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

struct fuzz_inode {
    uint8_t *data;
    size_t size, cap;
    uint32_t refs; /* names and handles */
};

struct fuzz_name {
    char *path;
    bool is_dir;
    struct fuzz_inode *inode; /* NULL for a directory */
};

struct fuzz_file {
    struct fuzz_inode *inode;
    bool read_only;
};

static struct fuzz_vfs *of(struct vfs *vfs)
{
    return (struct fuzz_vfs *)vfs;
}

static void inode_put(struct fuzz_inode *in)
{
    ASSERT(in->refs > 0);
    if (--in->refs > 0)
        return;
    free(in->data);
    free(in);
}

static struct fuzz_name *lookup(struct fuzz_vfs *fv, const char *path)
{
    for (uint32_t i = 0; i < fv->name_count; i++)
        if (strcmp(fv->names[i].path, path) == 0)
            return &fv->names[i];
    return NULL;
}

static struct fuzz_name *add_name(struct fuzz_vfs *fv, const char *path)
{
    if (fv->name_count == fv->name_cap) {
        fv->name_cap = fv->name_cap ? fv->name_cap * 2 : 16;
        fv->names = realloc(fv->names, fv->name_cap * sizeof(*fv->names));
        ASSERT(fv->names);
    }
    struct fuzz_name *n = &fv->names[fv->name_count++];
    memset(n, 0, sizeof(*n));
    n->path = strdup(path);
    ASSERT(n->path);
    return n;
}

static void remove_name(struct fuzz_vfs *fv, struct fuzz_name *n)
{
    if (n->inode)
        inode_put(n->inode);
    free(n->path);
    *n = fv->names[--fv->name_count];
}

static struct fuzz_inode *inode_new(void)
{
    struct fuzz_inode *in = calloc(1, sizeof(*in));
    ASSERT(in);
    in->refs = 1;
    return in;
}

static int resize(struct fuzz_inode *in, size_t size, const char *what,
                  struct cohort_err *err)
{
    if (size > FUZZ_VFS_FILE_MAX)
        return err_set(err, -COHORT_ENOSPC,
                       "%s: %zu bytes: over the fuzz "
                       "vfs's file limit",
                       what, size);
    if (size > in->cap) {
        size_t cap = in->cap ? in->cap : 256;
        while (cap < size)
            cap *= 2;
        in->data = realloc(in->data, cap);
        ASSERT(in->data);
        in->cap = cap;
    }
    if (size > in->size)
        memset(in->data + in->size, 0, size - in->size);
    in->size = size;
    return 0;
}

static int fz_open(struct vfs *vfs, const char *path, int flags,
                   struct vfs_file **file, struct cohort_err *err)
{
    struct fuzz_vfs *fv = of(vfs);
    struct fuzz_name *n = lookup(fv, path);
    if (n && n->is_dir)
        return err_set(err, -COHORT_EIO, "open %s: is a directory", path);
    if (n && (flags & VFS_CREATE) && (flags & VFS_EXCLUSIVE))
        return err_set(err, -COHORT_EEXIST, "create %s: exists", path);
    if (!n && !(flags & VFS_CREATE))
        return err_set(err, -COHORT_ENOTFOUND, "open %s: not found", path);
    if (!n) {
        n = add_name(fv, path);
        n->inode = inode_new();
    }
    struct fuzz_file *f = calloc(1, sizeof(*f));
    ASSERT(f);
    f->inode = n->inode;
    f->inode->refs++;
    f->read_only = (flags & VFS_READ_ONLY) != 0;
    *file = (struct vfs_file *)f;
    return 0;
}

static void fz_close(struct vfs *vfs, struct vfs_file *file)
{
    (void)vfs;
    struct fuzz_file *f = (struct fuzz_file *)file;
    inode_put(f->inode);
    free(f);
}

static int fz_read(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                   void *buf, size_t size, size_t *done, struct cohort_err *err)
{
    (void)vfs;
    (void)err;
    struct fuzz_inode *in = ((struct fuzz_file *)file)->inode;
    size_t n = 0;
    if (offset < in->size) {
        n = in->size - (size_t)offset;
        n = n < size ? n : size;
        memcpy(buf, in->data + offset, n);
    }
    *done = n;
    return 0;
}

static int fz_write(struct vfs *vfs, struct vfs_file *file, uint64_t offset,
                    const void *buf, size_t size, struct cohort_err *err)
{
    (void)vfs;
    struct fuzz_file *f = (struct fuzz_file *)file;
    ASSERT(!f->read_only);
    struct fuzz_inode *in = f->inode;
    if (offset > FUZZ_VFS_FILE_MAX || size > FUZZ_VFS_FILE_MAX - offset)
        return err_set(err, -COHORT_ENOSPC, "write at %llu: over the limit",
                       (unsigned long long)offset);
    if (offset + size > in->size) {
        int rc = resize(in, (size_t)offset + size, "write", err);
        if (rc != 0)
            return rc;
    }
    memcpy(in->data + offset, buf, size);
    return 0;
}

static int fz_sync(struct vfs *vfs, struct vfs_file *file,
                   struct cohort_err *err)
{
    (void)vfs;
    (void)file;
    (void)err;
    return 0;
}

static int fz_allocate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                       struct cohort_err *err)
{
    (void)vfs;
    struct fuzz_inode *in = ((struct fuzz_file *)file)->inode;
    if (size <= in->size)
        return 0;
    if (size > FUZZ_VFS_FILE_MAX)
        return err_set(err, -COHORT_ENOSPC, "allocate: over the limit");
    return resize(in, (size_t)size, "allocate", err);
}

static int fz_truncate(struct vfs *vfs, struct vfs_file *file, uint64_t size,
                       struct cohort_err *err)
{
    (void)vfs;
    struct fuzz_inode *in = ((struct fuzz_file *)file)->inode;
    if (size > FUZZ_VFS_FILE_MAX)
        return err_set(err, -COHORT_ENOSPC, "truncate: over the limit");
    return resize(in, (size_t)size, "truncate", err);
}

static int fz_size(struct vfs *vfs, struct vfs_file *file, uint64_t *size,
                   struct cohort_err *err)
{
    (void)vfs;
    (void)err;
    *size = ((struct fuzz_file *)file)->inode->size;
    return 0;
}

static int fz_rename(struct vfs *vfs, const char *from, const char *to,
                     struct cohort_err *err)
{
    struct fuzz_vfs *fv = of(vfs);
    struct fuzz_name *src = lookup(fv, from);
    if (!src)
        return err_set(err, -COHORT_ENOTFOUND, "rename %s: not found", from);
    if (strcmp(from, to) == 0)
        return 0;
    struct fuzz_name *dst = lookup(fv, to);
    if (dst) {
        remove_name(fv, dst);
        src = lookup(fv, from); /* the table moved */
    }
    free(src->path);
    src->path = strdup(to);
    ASSERT(src->path);
    return 0;
}

static int fz_unlink(struct vfs *vfs, const char *path, struct cohort_err *err)
{
    struct fuzz_vfs *fv = of(vfs);
    struct fuzz_name *n = lookup(fv, path);
    if (!n || n->is_dir)
        return err_set(err, -COHORT_ENOTFOUND, "unlink %s: not found", path);
    remove_name(fv, n);
    return 0;
}

static int fz_mkdir(struct vfs *vfs, const char *path, struct cohort_err *err)
{
    struct fuzz_vfs *fv = of(vfs);
    if (lookup(fv, path))
        return err_set(err, -COHORT_EEXIST, "mkdir %s: exists", path);
    add_name(fv, path)->is_dir = true;
    return 0;
}

static int fz_sync_dir(struct vfs *vfs, const char *path,
                       struct cohort_err *err)
{
    (void)vfs;
    (void)path;
    (void)err;
    return 0;
}

/* The names directly inside dir. */
static int fz_list(struct vfs *vfs, const char *path, vfs_list_fn fn, void *ctx,
                   struct cohort_err *err)
{
    struct fuzz_vfs *fv = of(vfs);
    struct fuzz_name *d = lookup(fv, path);
    if (!d || !d->is_dir)
        return err_set(err, -COHORT_ENOTFOUND, "list %s: not found", path);
    size_t len = strlen(path);
    /* fn may unlink or create names: walk a copy of the matching ones. */
    uint32_t count = 0;
    char **names = calloc(fv->name_count + 1, sizeof(*names));
    ASSERT(names);
    for (uint32_t i = 0; i < fv->name_count; i++) {
        const char *p = fv->names[i].path;
        if (strncmp(p, path, len) == 0 && p[len] == '/' && p[len + 1] &&
            !strchr(p + len + 1, '/')) {
            names[count] = strdup(p + len + 1);
            ASSERT(names[count]);
            count++;
        }
    }
    int rc = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (rc == 0)
            rc = fn(ctx, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

void fuzz_vfs_init(struct fuzz_vfs *fv)
{
    memset(fv, 0, sizeof(*fv));
    fv->vfs = (struct vfs){
        .open = fz_open,
        .close = fz_close,
        .read = fz_read,
        .write = fz_write,
        .sync = fz_sync,
        .allocate = fz_allocate,
        .truncate = fz_truncate,
        .size = fz_size,
        .rename = fz_rename,
        .unlink = fz_unlink,
        .mkdir = fz_mkdir,
        .sync_dir = fz_sync_dir,
        .list = fz_list,
    };
}

void fuzz_vfs_deinit(struct fuzz_vfs *fv)
{
    while (fv->name_count > 0)
        remove_name(fv, &fv->names[fv->name_count - 1]);
    free(fv->names);
    fv->names = NULL;
    fv->name_cap = 0;
}

void fuzz_vfs_put(struct fuzz_vfs *fv, const char *path, const void *data,
                  size_t size)
{
    struct fuzz_name *n = lookup(fv, path);
    if (n)
        remove_name(fv, n);
    n = add_name(fv, path);
    n->inode = inode_new();
    struct cohort_err err;
    ASSERT(resize(n->inode, size, "put", &err) == 0);
    if (size)
        memcpy(n->inode->data, data, size);
}

void fuzz_vfs_mkdir(struct fuzz_vfs *fv, const char *path)
{
    if (!lookup(fv, path))
        add_name(fv, path)->is_dir = true;
}

const uint8_t *fuzz_vfs_get(struct fuzz_vfs *fv, const char *path, size_t *size)
{
    struct fuzz_name *n = lookup(fv, path);
    if (!n || n->is_dir)
        return NULL;
    *size = n->inode->size;
    return n->inode->data;
}
