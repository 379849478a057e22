/* hostport — the text of a "host:port" address, split: the one parser of
 * member, peer and client addresses for the server, the tools and the
 * client library (libcohort-client links it). No name lookup here; see
 * runtime/addr.h for resolving and listening.
 *
 * Accepted forms: "127.0.0.1:7101", "[::1]:7101", "localhost:7101". An IPv6
 * host must be in brackets. Every failure fills err (if not NULL) with one
 * line that quotes the text and says what is wrong with it.
 */
#ifndef COHORT_COMMON_HOSTPORT_H
#define COHORT_COMMON_HOSTPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Split text into host (without IPv6 brackets) and port. Returns 0, or
 * -COHORT_ECONFIG when there is no ':', no host, or the port is not a number
 * in 0..65535. Port 0 is allowed here; callers that dial reject it. */
int addr_split(const char *text, char *host, size_t host_size, uint16_t *port,
               struct cohort_err *err);

#endif
