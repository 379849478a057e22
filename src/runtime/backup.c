/* backup — an operator's backup snapshot. See backup.h. */
#include "runtime/backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"

struct backup_write {
    struct backup *b;
    const struct driver_snapshot *snap;
    driver_state_fn state;
    void *state_ctx;
};

int backup_init(struct backup *b, const char *data_dir, struct cohort_err *err)
{
    memset(b, 0, sizeof(*b));
    snapshot_job_init(&b->job);
    int rc = vfs_path_join(b->dir, data_dir, BACKUP_DIR_NAME, err);
    if (rc == 0)
        rc = vfs_path_join(b->prev_path, b->dir, BACKUP_PREVIOUS_NAME, err);
    if (rc == 0)
        (void)unlink(b->prev_path); /* an earlier run's: nobody reads it */
    return rc;
}

static void drop_previous(struct backup *b)
{
    if (b->prev_op != 0)
        (void)unlink(b->prev_path); /* best effort: the next start retries */
    b->prev_op = 0;
}

/* The latest finished backup becomes the previous one (a hard link the
 * next writer's cleanup leaves alone), for whoever is still copying it. */
static void keep_previous(struct backup *b, uint64_t now_ns)
{
    drop_previous(b);
    if (b->state != BACKUP_DONE || b->path[0] == '\0')
        return;
    if (link(b->path, b->prev_path) != 0)
        return; /* not kept: a copy of it still going fails and restarts */
    b->prev_op = b->op;
    b->prev_size = b->size;
    b->prev_duration_us = b->duration_us;
    b->prev_used_ns = now_ns;
}

bool backup_find(struct backup *b, uint64_t op, uint64_t now_ns,
                 const char **path, uint64_t *size)
{
    if (b->state == BACKUP_DONE && b->op == op) {
        *path = b->path;
        *size = b->size;
        return true;
    }
    if (b->prev_op != 0 && b->prev_op == op) {
        b->prev_used_ns = now_ns;
        *path = b->prev_path;
        *size = b->prev_size;
        return true;
    }
    return false;
}

void backup_expire_previous(struct backup *b, uint64_t now_ns)
{
    if (b->prev_op != 0 && now_ns - b->prev_used_ns >= BACKUP_PREVIOUS_KEEP_NS)
        drop_previous(b);
}

/* In the forked child (when no thread could start): the snapshot file into
 * the backup directory. */
static int write_backup(void *ctx, struct cohort_err *err)
{
    struct backup_write *w = ctx;
    return driver_snapshot_write_dir(vfs_posix(), w->b->dir, w->snap, w->state,
                                     w->state_ctx, err);
}

int backup_start(struct backup *b, struct driver *d, struct dirlock *lock,
                 backup_thread_fn start_thread, void *thread_ctx,
                 driver_state_fn state, void *state_ctx, uint64_t now_ns,
                 bool *threaded, struct cohort_err *err)
{
    *threaded = false;
    if (b->state == BACKUP_RUNNING)
        return err_set(err, -COHORT_EAGAIN,
                       "a backup of op %" PRIu64 " is still being written",
                       b->op);
    struct driver_snapshot snap;
    int rc = driver_export(d, &snap);
    if (rc == -COHORT_EAGAIN)
        return err_set(err, rc,
                       "this replica has applied nothing yet; try again "
                       "once it has");
    if (rc != 0)
        return err_set(err, rc, "backup: out of memory for the client table");
    struct stat st;
    if (b->state == BACKUP_DONE && b->op == snap.info.op &&
        stat(b->path, &st) == 0 && (uint64_t)st.st_size == b->size)
        return 0; /* the finished one holds exactly this state: reused */
    keep_previous(b, now_ns); /* before a writer can delete its file */
    if (start_thread && start_thread(thread_ctx, &snap, &b->job, b->dir)) {
        *threaded = true;
    } else {
        struct backup_write w = {b, &snap, state, state_ctx};
        char why[COHORT_ERR_MESSAGE_MAX];
        if (!snapshot_job_start(&b->job, snap.info.op, lock, write_backup, &w,
                                why, sizeof(why)))
            return err_set(err, -COHORT_EIO, "backup: %s", why);
    }
    b->state = BACKUP_RUNNING;
    b->op = snap.info.op;
    b->size = 0;
    b->started_ns = now_ns;
    b->path[0] = '\0';
    b->error[0] = '\0';
    return 0;
}

static void backup_finish(struct backup *b, bool ok, const char *why)
{
    char name[64];
    snprintf(name, sizeof(name), "snapshot-%020" PRIu64 ".snap", b->op);
    struct cohort_err err;
    struct stat st;
    if (ok && vfs_path_join(b->path, b->dir, name, &err) != 0) {
        ok = false;
        why = err.message;
    }
    if (ok && stat(b->path, &st) != 0) {
        ok = false;
        why = "the backup file is missing after its writer finished";
    }
    if (!ok) {
        b->state = BACKUP_FAILED;
        b->path[0] = '\0';
        snprintf(b->error, sizeof(b->error), "%s", why);
        return;
    }
    b->state = BACKUP_DONE;
    b->size = (uint64_t)st.st_size;
}

bool backup_reap(struct backup *b, uint64_t now_ns)
{
    uint64_t op = 0;
    bool ok = false;
    char why[COHORT_ERR_MESSAGE_MAX];
    if (!snapshot_job_reap(&b->job, &op, &ok, why, sizeof(why)))
        return false;
    ASSERT(b->state == BACKUP_RUNNING);
    ASSERT(op == b->op);
    b->duration_us = (now_ns - b->started_ns) / 1000u;
    backup_finish(b, ok, why[0] ? why : "the backup's writer failed");
    return true;
}

void backup_stop(struct backup *b)
{
    snapshot_job_stop(&b->job);
    if (b->state == BACKUP_RUNNING)
        b->state = BACKUP_IDLE;
}

const char *backup_state_name(enum backup_state state)
{
    switch (state) {
    case BACKUP_IDLE:
        return "idle";
    case BACKUP_RUNNING:
        return "running";
    case BACKUP_DONE:
        return "done";
    case BACKUP_FAILED:
        return "failed";
    }
    return "unknown";
}
