/* reexec — re-execute this process's binary. See reexec.h. */
#include "runtime/reexec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/logline.h"

extern char **environ;

static char binary_path[PATH_MAX];

void reexec_init(void)
{
    ssize_t n =
        readlink("/proc/self/exe", binary_path, sizeof(binary_path) - 1);
    binary_path[n > 0 ? n : 0] = '\0';
}

/* Every descriptor above 2 close-on-exec (those of libuv, the transport,
 * the storage thread's files, and any the embedding left open). */
static void mark_cloexec(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        for (int fd = 3; fd < 65536; fd++)
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        return;
    }
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd <= 2 || fd == self)
            continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0)
            (void)fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(d);
}

int reexec_self(char *const argv[], struct cohort_err *err)
{
    mark_cloexec();
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    if (binary_path[0] != '\0' && access(binary_path, X_OK) == 0) {
        execve(binary_path, argv, environ);
        logline(LOGLINE_WARN, "execve %s: %s; running the old binary again",
                binary_path, strerror(errno));
    } else if (binary_path[0] != '\0') {
        logline(LOGLINE_WARN,
                "%s is gone (%s); running the binary this process was "
                "started from again",
                binary_path, strerror(errno));
    }
    execve("/proc/self/exe", argv, environ);
    return err_sys(err, errno, "execve /proc/self/exe (%s)", binary_path);
}
