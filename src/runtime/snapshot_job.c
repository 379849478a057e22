/* snapshot_job — the forked snapshot child. See snapshot_job.h. */
#include "runtime/snapshot_job.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/assert.h"

/* The child's nice value: background work yields the CPU to the replicas
 * serving requests (on a small machine it otherwise takes a core). */
#define SNAPSHOT_NICE 10

void snapshot_job_init(struct snapshot_job *j)
{
    memset(j, 0, sizeof(*j));
    j->error_fd = -1;
}

bool snapshot_job_running(const struct snapshot_job *j)
{
    return j->child > 0 || j->thread_running;
}

_Noreturn static void child_main(pid_t parent, int error_fd,
                                 struct dirlock *lock,
                                 snapshot_job_write_fn write_fn, void *ctx)
{
    dirlock_forget_in_child(lock);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1); /* the parent died before prctl */
    (void)setpriority(PRIO_PROCESS, 0, SNAPSHOT_NICE); /* best effort */
    struct cohort_err err;
    err_clear(&err);
    if (write_fn(ctx, &err) == 0)
        _exit(0);
    size_t len = strnlen(err.message, sizeof(err.message));
    /* One write of at most PIPE_BUF bytes: whole or not at all. */
    if (len > 0 && write(error_fd, err.message, len) < 0)
        _exit(1);
    _exit(1);
}

bool snapshot_job_start(struct snapshot_job *j, uint64_t op,
                        struct dirlock *lock, snapshot_job_write_fn write_fn,
                        void *ctx, char *error, size_t size)
{
    ASSERT(!snapshot_job_running(j));
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        snprintf(error, size, "snapshot at op %" PRIu64 ": pipe: %s", op,
                 strerror(errno));
        return false;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_fds[0]);
        child_main(parent, pipe_fds[1], lock, write_fn, ctx);
    }
    if (pid < 0) {
        snprintf(error, size, "snapshot at op %" PRIu64 ": fork: %s", op,
                 strerror(errno));
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return false;
    }
    close(pipe_fds[1]);
    (void)fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    j->child = pid;
    j->error_fd = pipe_fds[0];
    j->op = op;
    return true;
}

static void *thread_main(void *arg)
{
    struct snapshot_job *j = arg;
    /* Linux: a thread's own nice value (its thread id as the process). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAPSHOT_NICE);
    err_clear(&j->thread_err);
    j->thread_rc = j->thread_write(j->thread_ctx, &j->thread_err);
    atomic_store_explicit(&j->thread_done, true, memory_order_release);
    return NULL;
}

bool snapshot_job_start_thread(struct snapshot_job *j, uint64_t op,
                               snapshot_job_write_fn write_fn, void *ctx,
                               void (*release)(void *ctx), char *error,
                               size_t size)
{
    ASSERT(!snapshot_job_running(j));
    j->op = op;
    j->thread_write = write_fn;
    j->thread_ctx = ctx;
    j->thread_release = release;
    j->thread_rc = 0;
    atomic_store(&j->thread_done, false);
    int rc = pthread_create(&j->thread, NULL, thread_main, j);
    if (rc != 0) {
        snprintf(error, size, "snapshot at op %" PRIu64 ": thread: %s", op,
                 strerror(rc));
        if (release)
            release(ctx);
        snapshot_job_init(j);
        return false;
    }
    j->thread_running = true;
    return true;
}

/* Join a finished (or, when closing, a running) thread. */
static void thread_reap(struct snapshot_job *j, bool *ok, char *error,
                        size_t size)
{
    pthread_join(j->thread, NULL);
    *ok = j->thread_rc == 0;
    error[0] = '\0';
    if (!*ok)
        snprintf(error, size, "%s",
                 j->thread_err.message[0] ? j->thread_err.message
                                          : "snapshot thread failed");
    if (j->thread_release)
        j->thread_release(j->thread_ctx);
}

/* The child's error line, or how it died. */
static void child_error(const struct snapshot_job *j, int status, char *out,
                        size_t size)
{
    ssize_t n = read(j->error_fd, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    if (n > 0)
        return;
    if (WIFSIGNALED(status))
        snprintf(out, size,
                 "snapshot at op %" PRIu64 ": the child was killed by signal "
                 "%d",
                 j->op, WTERMSIG(status));
    else
        snprintf(out, size,
                 "snapshot at op %" PRIu64 ": the child exited with status %d",
                 j->op, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

bool snapshot_job_reap(struct snapshot_job *j, uint64_t *op, bool *ok,
                       char *error, size_t size)
{
    if (!snapshot_job_running(j))
        return false;
    if (j->thread_running) {
        if (!atomic_load_explicit(&j->thread_done, memory_order_acquire))
            return false;
        thread_reap(j, ok, error, size);
        *op = j->op;
        snapshot_job_init(j);
        return true;
    }
    int status = 0;
    if (waitpid(j->child, &status, WNOHANG) != j->child)
        return false;
    *ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    error[0] = '\0';
    if (!*ok)
        child_error(j, status, error, size);
    *op = j->op;
    close(j->error_fd);
    snapshot_job_init(j);
    return true;
}

void snapshot_job_stop(struct snapshot_job *j)
{
    if (!snapshot_job_running(j))
        return;
    if (j->thread_running) {
        bool ok;
        char ignored[COHORT_ERR_MESSAGE_MAX];
        thread_reap(j, &ok, ignored, sizeof(ignored));
        snapshot_job_init(j);
        return;
    }
    kill(j->child, SIGKILL);
    waitpid(j->child, NULL, 0);
    close(j->error_fd);
    snapshot_job_init(j);
}
