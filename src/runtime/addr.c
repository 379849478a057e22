/* addr — "host:port" parsing, resolution and formatting. See addr.h. */
#include "runtime/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"

int addr_resolve(const char *host, uint16_t port, struct sockaddr_storage *out,
                 struct cohort_err *err)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return 0;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &found);
    if (rc != 0)
        return err_set(err, -COHORT_ECONFIG, "cannot resolve host '%s': %s",
                       host, gai_strerror(rc));
    int result = err_set(err, -COHORT_ECONFIG,
                         "host '%s' has no IPv4 or IPv6 address", host);
    for (struct addrinfo *ai = found; ai != NULL; ai = ai->ai_next) {
        bool usable = (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
                      ai->ai_addrlen <= sizeof(*out);
        if (!usable)
            continue;
        memcpy(out, ai->ai_addr, ai->ai_addrlen);
        if (ai->ai_family == AF_INET)
            v4->sin_port = htons(port);
        else
            v6->sin6_port = htons(port);
        err_clear(err);
        result = 0;
        break;
    }
    freeaddrinfo(found);
    return result;
}

int addr_parse(const char *text, struct sockaddr_storage *out,
               struct cohort_err *err)
{
    char host[ADDR_HOST_MAX];
    uint16_t port = 0;
    int rc = addr_split(text, host, sizeof(host), &port, err);
    if (rc != 0)
        return rc;
    return addr_resolve(host, port, out, err);
}

socklen_t addr_size(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return (socklen_t)sizeof(struct sockaddr_in6);
    return (socklen_t)sizeof(struct sockaddr_in);
}

uint16_t addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

void addr_format(const struct sockaddr *sa, char *buf, size_t size)
{
    ASSERT(size > 0);
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host)) != NULL) {
            snprintf(buf, size, "%s:%u", host, (unsigned)addr_port(sa));
            return;
        }
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host)) != NULL) {
            snprintf(buf, size, "[%s]:%u", host, (unsigned)addr_port(sa));
            return;
        }
    }
    snprintf(buf, size, "?");
}

static int listen_error(struct cohort_err *err, int errnum, const char *text,
                        const char *port_flag)
{
    if (errnum == EADDRINUSE)
        return err_set(err, -COHORT_EADDRINUSE,
                       "listen %s: address in use; is another cohort server "
                       "running? pick another %s",
                       text, port_flag);
    if (errnum == EADDRNOTAVAIL)
        return err_set(err, -COHORT_ECONFIG,
                       "listen %s: not an address of this machine; fix the "
                       "address or the bind host",
                       text);
    if (errnum == EACCES)
        return err_set(err, -COHORT_ECONFIG,
                       "listen %s: permission denied; ports below 1024 need "
                       "privileges, pick another %s",
                       text, port_flag);
    return err_sys(err, errnum, "listen %s", text);
}

int addr_listen(struct sockaddr_storage *addr, int backlog,
                const char *port_flag, struct cohort_err *err)
{
    struct sockaddr *sa = (struct sockaddr *)addr;
    char text[ADDR_TEXT_MAX];
    addr_format(sa, text, sizeof(text));
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_sys(err, errno, "listen %s: socket", text);
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, sa, addr_size(sa)) != 0 || listen(fd, backlog) != 0) {
        int errnum = errno;
        close(fd);
        return listen_error(err, errnum, text, port_flag);
    }
    socklen_t size = (socklen_t)sizeof(*addr);
    if (getsockname(fd, sa, &size) != 0) {
        int errnum = errno;
        close(fd);
        return err_sys(err, errnum, "listen %s: getsockname", text);
    }
    return fd;
}
