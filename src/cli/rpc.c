/* cli/rpc — a blocking RESP connection for the tools. See rpc.h. */
#include "cli/rpc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int connect_addr(const char *addr, int timeout_s, struct cohort_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return err_set(err, -COHORT_EINVAL, "'%s' is not host:port", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        return err_set(err, -COHORT_EIO, "%s: %s", addr, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        err_sys(err, errno, "connect to %s", addr);
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -COHORT_EIO;
    }
    freeaddrinfo(res);
    struct timeval tv = {timeout_s, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

int cli_rpc_open(struct cli_rpc *c, const char *addr, size_t reply_size_max,
                 int timeout_s, struct cohort_err *err)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->cap = reply_size_max;
    c->buf = malloc(c->cap);
    if (c->buf == NULL)
        return err_set(err, -COHORT_ENOMEM, "a reply buffer of %zu bytes",
                       c->cap);
    int fd = connect_addr(addr, timeout_s, err);
    if (fd < 0) {
        cli_rpc_close(c);
        return fd;
    }
    c->fd = fd;
    return 0;
}

static int send_all(struct cli_rpc *c, const char *data, size_t size,
                    struct cohort_err *err)
{
    while (size > 0) {
        ssize_t n = write(c->fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_sys(err, errno, "write to %s", c->addr);
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Read until one whole reply is in the buffer. */
static int read_reply(struct cli_rpc *c, struct cohort_err *err)
{
    struct resp_reply_limits limits = {8, c->cap, CLI_RPC_NODES_MAX};
    for (;;) {
        struct resp_reply reply = {.nodes = c->nodes,
                                   .node_capacity = CLI_RPC_NODES_MAX};
        enum resp_result r =
            resp_reply_parse(c->buf, c->have, &limits, &reply, err);
        if (r == RESP_COMPLETE) {
            c->node_count = reply.node_count;
            c->consumed = reply.consumed;
            return 0;
        }
        if (r != RESP_NEED_MORE)
            return err_set(err, -COHORT_EPROTO,
                           "%s answered what cohort does not send", c->addr);
        if (c->have == c->cap)
            return err_set(err, -COHORT_ETOOBIG,
                           "%s sent a reply over %zu bytes", c->addr, c->cap);
        ssize_t n = read(c->fd, c->buf + c->have, c->cap - c->have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return err_set(err, -COHORT_EIO, "%s closed the connection",
                           c->addr);
        if (n < 0)
            return err_sys(err, errno, "read from %s", c->addr);
        c->have += (size_t)n;
    }
}

int cli_rpc_call(struct cli_rpc *c, uint32_t argc, const struct resp_arg *argv,
                 struct cohort_err *err)
{
    /* Drop the previous reply's bytes. */
    memmove(c->buf, c->buf + c->consumed, c->have - c->consumed);
    c->have -= c->consumed;
    c->consumed = 0;
    c->node_count = 0;
    struct resp_buf out;
    resp_buf_init(&out, 2);
    resp_write_command(&out, argc, argv);
    int rc = out.ok ? send_all(c, out.data, out.size, err)
                    : err_set(err, -COHORT_ENOMEM, "a command");
    resp_buf_deinit(&out);
    return rc != 0 ? rc : read_reply(c, err);
}

void cli_rpc_close(struct cli_rpc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->buf = NULL;
    c->fd = -1;
}
