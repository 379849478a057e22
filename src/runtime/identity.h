/* identity — which replica a data directory belongs to. The file
 * <data-dir>/identity ("cohort data directory\nreplica N\n") is written the
 * first time a replica opens the directory and checked on every start, so
 * a directory copied or swapped to another replica id is refused instead
 * of joining the group as a second copy of one replica's promises (VR's
 * safety counts each replica's durable votes once).
 *
 * A directory with data but no identity file (made before this file
 * existed, or by `cohort restore`) is adopted by the id it is started
 * with. The file's bytes are hostile: anything but the exact format is
 * refused with the fix in the message.
 *
 * <data-dir>/incarnation ("cohort incarnation <16 hex digits>\n") records
 * the group incarnation (kv/incarnation.h) this directory's data belongs
 * to, once the replica has learned it, so that the peer handshake names
 * it from the first connection of every later start, before the log is
 * replayed (runtime/peer_link.h). Written durably in place (a crash
 * leaves the old file or the new one); missing means not known yet. */
#ifndef COHORT_IDENTITY_H
#define COHORT_IDENTITY_H

#include <stdint.h>

#include "common/err.h"

#define IDENTITY_FILE "identity"

/* Check (or, for a directory without the file, write and sync) that
 * data_dir belongs to replica self. 0, or -COHORT_ECONFIG with a one-line
 * message naming the directory and the fix, or an I/O error. */
int identity_check(const char *data_dir, uint32_t self, struct cohort_err *err);

#define INCARNATION_FILE "incarnation"

/* The incarnation recorded in data_dir (*incarnation 0 when the file does
 * not exist). 0, or -COHORT_ECONFIG naming the damaged file and the fix,
 * or an I/O error. */
int identity_incarnation_read(const char *data_dir, uint64_t *incarnation,
                              struct cohort_err *err);
/* Record incarnation (nonzero) in data_dir, durably. */
int identity_incarnation_write(const char *data_dir, uint64_t incarnation,
                               struct cohort_err *err);

#endif
