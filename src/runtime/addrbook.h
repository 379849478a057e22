/* addrbook — where each replica id is: its peer and client addresses, as
 * this process uses them. They start as --peers / --clients; a committed
 * COHORT.ADDRESS (the store's address table, kv/address.h) moves an id
 * elsewhere, and the node copies every such move here and into the file
 * <data-dir>/addresses, so that a restart reaches the members where they
 * are now, before it has replayed the log that moved them.
 *
 * The file is text, one moved id per line after a fixed head:
 *
 *     cohort addresses
 *     <id> <peer host:port> <client host:port>
 *
 * written to a temporary file, synced, renamed over the old one and the
 * directory synced. Its bytes are hostile: anything but that exact format
 * (an id out of range or twice, an address kv_address_valid() refuses) is
 * refused with a one-line message naming the file and the fix. */
#ifndef COHORT_ADDRBOOK_H
#define COHORT_ADDRBOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "cohort.h"
#include "common/err.h"

#define ADDRBOOK_FILE "addresses"
#define ADDRBOOK_TEXT_MAX 256u /* KV_ADDRESS_MAX + the NUL */

struct addrbook {
    uint32_t count; /* ids 0..count-1: the --peers universe */
    char peer[COHORT_REPLICAS_MAX][ADDRBOOK_TEXT_MAX];
    char client[COHORT_REPLICAS_MAX][ADDRBOOK_TEXT_MAX];
    bool moved[COHORT_REPLICAS_MAX]; /* set by a COHORT.ADDRESS */
};

/* The flags' addresses for ids 0..count-1 (count <= COHORT_REPLICAS_MAX);
 * false if one is longer than an address may be. */
bool addrbook_init(struct addrbook *b, uint32_t count, const char *const *peer,
                   const char *const *client);
/* Apply <data_dir>/addresses over the flags' addresses, if it exists. 0
 * (also when there is no file), or -COHORT_ECONFIG with the message. */
int addrbook_load(struct addrbook *b, const char *data_dir,
                  struct cohort_err *err);
/* Write the moved ids to <data_dir>/addresses, durably. */
int addrbook_save(const struct addrbook *b, const char *data_dir,
                  struct cohort_err *err);

#endif
