/* relay — passing on replies that are already RESP: a write's reply from the
 * node (kv_apply() writes RESP2, and the client table keeps it that way) and
 * a reply relayed from the primary (the link speaks RESP2). A RESP3 client
 * gets the RESP3 form: the two differ only in nulls ("$-1" and "*-1" against
 * "_") and in replies that are maps (a flat array of pairs in RESP2), so
 * relaying rewrites those and copies everything else.
 *
 * Pure: no sockets, no node. Unit-tested in tests/unit/server_relay_test.c.
 */
#ifndef COHORT_SERVER_RELAY_H
#define COHORT_SERVER_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/resp.h"

/* Append one complete RESP2 reply (reply[0, size)) to out in out's
 * protocol. Bytes that are not one well-formed RESP2 reply are copied as
 * they are: the caller has already checked them, this only never reads
 * past the end. */
void relay_reply(struct resp_buf *out, const char *reply, size_t size);

/* relay_reply() for a reply that RESP3 makes a map and RESP2 a flat array
 * of name/value pairs (KVINFO): for a RESP3 client, a top-level array of
 * 2n elements becomes a map of n pairs. */
void relay_reply_map(struct resp_buf *out, const char *reply, size_t size);

/* Whether reply is the node's "client session expired" rejection: the
 * request was not applied because the replicated client table forgot its
 * client (idle too long, or evicted when the table was full). */
bool relay_is_session_expired(const char *reply, size_t size);

/* What a replica answers a forward link (COHORT.NOFORWARD, and only such a
 * link) for a command it did not run because it is not the primary of a
 * normal view (DRIVER_NOT_PRIMARY): the command certainly did not take
 * effect there, and the primary is elsewhere. The word after TRYAGAIN
 * marks it for the backup, which re-sends the command to the new primary
 * (forward.c) instead of relaying it; a client of an older backup that
 * relays it still sees a -TRYAGAIN. */
#define RELAY_NOT_PRIMARY_HOP                                                  \
    "TRYAGAIN NOTPRIMARY this replica is not the primary (a forwarded "        \
    "command is not forwarded again, and was not executed); retry"

/* Whether reply is that bounce: "-TRYAGAIN NOTPRIMARY ...", or the text
 * older servers sent for it ("-TRYAGAIN this replica is not the primary (a
 * forwarded command is not forwarded again)", also only ever for
 * DRIVER_NOT_PRIMARY on a forward link). */
bool relay_is_not_primary_hop(const char *reply, size_t size);

#endif
