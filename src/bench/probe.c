/* bench/probe — see probe.h. */
#include "bench/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "runtime/addr.h"

#define PROBE_REPLY_MAX (1u << 20)
#define PROBE_ARGS_MAX 8

static int connect_timeout(const struct bench_member *m, uint32_t timeout_ms,
                           struct cohort_err *err)
{
    const struct sockaddr *sa = (const struct sockaddr *)&m->addr;
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_sys(err, errno, "%s: socket", m->text);
    if (connect(fd, sa, addr_size(sa)) != 0 && errno != EINPROGRESS) {
        err_sys(err, errno, "%s: connect", m->text);
        close(fd);
        return -COHORT_EIO;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n = poll(&p, 1, (int)timeout_ms);
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (n == 1)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (n != 1 || so_error != 0) {
        if (n == 1)
            err_sys(err, so_error, "%s: connect", m->text);
        else
            err_set(err, -COHORT_EIO, "%s: connect: no answer in %u ms",
                    m->text, timeout_ms);
        close(fd);
        return -COHORT_EIO;
    }
    /* Blocking from here on, with the same timeout for each send and read. */
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {(time_t)(timeout_ms / 1000),
                         (suseconds_t)(timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static int send_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static void copy_text(const struct resp_node *node, char *text, size_t size)
{
    size_t n = 0;
    if (node->str &&
        (node->type == RESP_TYPE_SIMPLE || node->type == RESP_TYPE_ERROR ||
         node->type == RESP_TYPE_BULK || node->type == RESP_TYPE_VERBATIM))
        n = node->len < size - 1 ? node->len : size - 1;
    if (n > 0)
        memcpy(text, node->str, n);
    text[n] = '\0';
}

/* Read one reply from fd into buf (grown as needed) and copy it out. */
static int read_reply(int fd, const struct bench_member *m,
                      enum resp_type *type, char *text, size_t text_size,
                      struct cohort_err *err)
{
    static const struct resp_reply_limits limits = {8, PROBE_REPLY_MAX, 1024};
    char *buf = malloc(PROBE_REPLY_MAX);
    if (!buf)
        return err_set(err, -COHORT_ENOMEM, "out of memory");
    size_t have = 0;
    struct resp_node nodes[64];
    struct resp_reply reply = {.nodes = nodes, .node_capacity = 64};
    struct cohort_err perr;
    enum resp_result r = RESP_NEED_MORE;
    int rc = 0;
    while (r == RESP_NEED_MORE) {
        ssize_t n = recv(fd, buf + have, PROBE_REPLY_MAX - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n == 0
                     ? err_set(err, -COHORT_EIO,
                               "%s: connection closed before a reply", m->text)
                 : errno == EAGAIN ? err_set(err, -COHORT_EIO,
                                             "%s: no reply in time", m->text)
                                   : err_sys(err, errno, "%s: read", m->text);
            break;
        }
        have += (size_t)n;
        r = resp_reply_parse(buf, have, &limits, &reply, &perr);
        if (r == RESP_NEED_MORE && have == PROBE_REPLY_MAX)
            r = RESP_ERROR;
    }
    if (rc == 0 && r != RESP_COMPLETE)
        rc = err_set(err, -COHORT_EPROTO,
                     "%s: the reply is not RESP; is this a Redis-protocol "
                     "port?",
                     m->text);
    if (rc == 0) {
        *type = nodes[0].type;
        copy_text(&nodes[0], text, text_size);
    }
    free(buf);
    return rc;
}

int probe_command(const struct bench_member *member, uint32_t argc,
                  const char *const *argv, uint32_t timeout_ms,
                  enum resp_type *type, char *text, size_t text_size,
                  struct cohort_err *err)
{
    if (argc == 0 || argc > PROBE_ARGS_MAX || text_size == 0)
        return err_set(err, -COHORT_EINVAL, "bad probe command");
    int fd = connect_timeout(member, timeout_ms, err);
    if (fd < 0)
        return fd;
    struct resp_arg args[PROBE_ARGS_MAX];
    for (uint32_t i = 0; i < argc; i++)
        args[i] = (struct resp_arg){argv[i], strlen(argv[i])};
    struct resp_buf out;
    resp_buf_init(&out, 2);
    resp_write_command(&out, argc, args);
    int rc = 0;
    if (!out.ok)
        rc = err_set(err, -COHORT_ENOMEM, "out of memory");
    else if (send_all(fd, out.data, out.size) != 0)
        rc = err_sys(err, errno, "%s: write", member->text);
    else
        rc = read_reply(fd, member, type, text, text_size, err);
    resp_buf_deinit(&out);
    close(fd);
    return rc;
}

/* The value of "name:value" in INFO text, copied into out; false if absent. */
static bool info_field(const char *info, const char *name, char *out,
                       size_t size)
{
    size_t name_len = strlen(name);
    for (const char *line = info; *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > name_len && !memcmp(line, name, name_len) &&
            line[name_len] == ':') {
            size_t n = len - name_len - 1;
            if (n >= size)
                n = size - 1;
            memcpy(out, line + name_len + 1, n);
            out[n] = '\0';
            return true;
        }
        line += len;
        if (*line)
            line += 2;
    }
    return false;
}

/* One attempt over the members; 0 when the primary is found and agrees. */
static int primary_attempt(const struct bench_member *members, uint32_t count,
                           uint32_t timeout_ms, char *info, size_t info_size,
                           struct probe_primary *out, struct cohort_err *err)
{
    static const char *const repl[] = {"INFO", "replication"};
    static const char *const both[] = {"INFO", "server", "replication"};
    enum resp_type type;
    char field[BENCH_MEMBER_TEXT_MAX];
    int rc = -COHORT_EIO;
    for (uint32_t i = 0; i < count; i++) {
        rc = probe_command(&members[i], 2, repl, timeout_ms, &type, info,
                           info_size, err);
        if (rc != 0)
            continue;
        if (type != RESP_TYPE_BULK || !info_field(info, "role", field, 32)) {
            rc = err_set(err, -COHORT_EPROTO,
                         "%s: INFO replication has no role; is it a cohort "
                         "server?",
                         members[i].text);
            continue;
        }
        if (!info_field(info, "primary", out->addr, sizeof(out->addr))) {
            rc = err_set(err, -COHORT_EAGAIN, "%s: no primary (role %s)",
                         members[i].text, field);
            continue;
        }
        break;
    }
    if (rc != 0)
        return rc;
    struct bench_member primary;
    memset(&primary, 0, sizeof(primary));
    snprintf(primary.text, sizeof(primary.text), "%s", out->addr);
    rc = addr_parse(out->addr, &primary.addr, err);
    if (rc == 0)
        rc = probe_command(&primary, 3, both, timeout_ms, &type, info,
                           info_size, err);
    if (rc != 0)
        return rc;
    char role[32], pid[32], index[16], view[16];
    if (!info_field(info, "role", role, sizeof(role)) ||
        !info_field(info, "process_id", pid, sizeof(pid)) ||
        !info_field(info, "self_index", index, sizeof(index)) ||
        !info_field(info, "view", view, sizeof(view)))
        return err_set(err, -COHORT_EPROTO,
                       "%s: INFO lacks role, process_id, self_index or view",
                       out->addr);
    if (strcmp(role, "primary") != 0)
        return err_set(err, -COHORT_EAGAIN, "%s: named primary but is %s",
                       out->addr, role);
    out->pid = strtoll(pid, NULL, 10);
    out->index = (uint32_t)strtoul(index, NULL, 10);
    out->view = strtoull(view, NULL, 10);
    return 0;
}

int probe_primary(const struct bench_member *members, uint32_t member_count,
                  uint32_t timeout_ms, struct probe_primary *out,
                  struct cohort_err *err)
{
    size_t info_size = 64u * 1024u;
    char *info = malloc(info_size);
    if (!info)
        return err_set(err, -COHORT_ENOMEM, "out of memory");
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc;
    for (;;) {
        memset(out, 0, sizeof(*out));
        uint32_t attempt_ms = timeout_ms < 1000 ? timeout_ms : 1000;
        rc = primary_attempt(members, member_count, attempt_ms, info, info_size,
                             out, err);
        clock_gettime(CLOCK_MONOTONIC, &t);
        double spent_ms = (double)(t.tv_sec - t0.tv_sec) * 1e3 +
                          (double)(t.tv_nsec - t0.tv_nsec) / 1e6;
        if (rc == 0 || spent_ms >= (double)timeout_ms)
            break;
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    free(info);
    return rc;
}
