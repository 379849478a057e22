/* cli/cmd_status — `cohort status [host:port]`: the cluster as one member
 * sees it, from that member's INFO replication and persistence sections
 * (roles, lag and health; the disk, snapshots). */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/resp.h"

static int connect_to(const char *addr, char *why, size_t why_size)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host)) {
        snprintf(why, why_size, "expected host:port");
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(why, why_size, "%s", gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Whether addr looks like host:port with a port number 1..65535. */
static bool address_format_ok(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

int cmd_status(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7001";
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: cohort status [host:port]   (default 127.0.0.1:7001)\n"
               "Show the view, primary, members, roles, lag and health as "
               "that member sees them.\n");
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "cohort status: takes one host:port; see 'cohort "
                        "status --help'\n");
        return 2;
    }
    if (argc > 1)
        addr = argv[1];
    if (!address_format_ok(addr)) {
        bool number =
            addr[0] != '\0' && strspn(addr, "0123456789") == strlen(addr);
        fprintf(stderr, "cohort status: '%s' is not host:port%s%s%s\n", addr,
                number ? "; did you mean 127.0.0.1:" : " (e.g. 127.0.0.1:7001)",
                number ? addr : "", number ? "?" : "");
        return 2;
    }
    char why[256];
    int fd = connect_to(addr, why, sizeof(why));
    if (fd < 0) {
        fprintf(stderr,
                "cohort status: cannot connect to %s: %s; is the "
                "cluster running (cohort up)?\n",
                addr, why);
        return 1;
    }
    struct resp_buf out;
    resp_buf_init(&out, 2);
    struct resp_arg args[] = {
        {"INFO", 4}, {"replication", 11}, {"persistence", 11}};
    resp_write_command(&out, 3, args);
    if (write(fd, out.data, out.size) != (ssize_t)out.size) {
        fprintf(stderr, "cohort status: write to %s: %s\n", addr,
                strerror(errno));
        close(fd);
        resp_buf_deinit(&out);
        return 1;
    }
    resp_buf_deinit(&out);
    char buf[1 << 16];
    size_t have = 0;
    struct resp_node nodes[4];
    struct resp_reply reply = {.nodes = nodes, .node_capacity = 4};
    struct resp_reply_limits limits = {8, sizeof(buf), 16};
    struct cohort_err err;
    enum resp_result r = RESP_NEED_MORE;
    while (r == RESP_NEED_MORE && have < sizeof(buf)) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n <= 0) {
            fprintf(stderr, "cohort status: no answer from %s: %s\n", addr,
                    n == 0 ? "connection closed" : strerror(errno));
            close(fd);
            return 1;
        }
        have += (size_t)n;
        r = resp_reply_parse(buf, have, &limits, &reply, &err);
    }
    close(fd);
    if (r != RESP_COMPLETE || reply.node_count < 1) {
        fprintf(stderr,
                "cohort status: %s did not answer INFO as a cohort "
                "server does\n",
                addr);
        return 1;
    }
    const struct resp_node *node = &nodes[0];
    if (node->type == RESP_TYPE_ERROR) {
        fprintf(stderr, "cohort status: %s: %.*s\n", addr, (int)node->len,
                node->str);
        return 1;
    }
    printf("cohort status of %s\n%.*s", addr, (int)node->len, node->str);
    return 0;
}
