/* addr — "host:port" addresses for the peer transport and the RESP server.
 *
 * Accepted forms: "127.0.0.1:7101", "[::1]:7101", "localhost:7101". A numeric
 * host is parsed directly; a name is looked up once, synchronously, with
 * getaddrinfo() (the first result wins), so call these at start-up, never on
 * the loop's hot path. Every failure fills err with one line that quotes the
 * text and says what is wrong with it.
 */
#ifndef COHORT_ADDR_H
#define COHORT_ADDR_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "common/err.h"
#include "common/hostport.h"

/* Longest host part we accept (a DNS name is at most 253 characters). */
#define ADDR_HOST_MAX 256
/* Room for any formatted numeric address: "[" IPv6 "]:" port. */
#define ADDR_TEXT_MAX 64

/* Resolve host and port into out (AF_INET or AF_INET6). Returns 0, or
 * -COHORT_ECONFIG when the host is neither numeric nor a known name. */
int addr_resolve(const char *host, uint16_t port, struct sockaddr_storage *out,
                 struct cohort_err *err);

/* addr_split() then addr_resolve(). */
int addr_parse(const char *text, struct sockaddr_storage *out,
               struct cohort_err *err);

/* Open a listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR)
 * on addr, and write the address actually bound back into addr (the port the
 * kernel picked for port 0). Returns the socket, or a negative code with err
 * naming the address and the fix: -COHORT_EADDRINUSE ("listen
 * 127.0.0.1:7101: address in use; is another cohort server running? pick
 * another <port_flag>", where port_flag names the option that sets the
 * port, e.g. "port in --clients"), -COHORT_ECONFIG for an address this machine
 * does not have or a privileged port, -COHORT_EIO otherwise. */
int addr_listen(struct sockaddr_storage *addr, int backlog,
                const char *port_flag, struct cohort_err *err);

/* The length to pass to bind() or connect() for this address. */
socklen_t addr_size(const struct sockaddr *sa);

/* The port of an AF_INET or AF_INET6 address, 0 otherwise. */
uint16_t addr_port(const struct sockaddr *sa);

/* Format as "1.2.3.4:5" or "[::1]:5" into buf (ADDR_TEXT_MAX is always
 * enough); "?" for another family. Never fails, always terminates buf. */
void addr_format(const struct sockaddr *sa, char *buf, size_t size);

#endif
