/* reexec — replace this process by a fresh run of its own binary, for
 * COHORT.REJUVENATE (a rolling restart, `cohort rejuvenate`).
 *
 * The binary is found again by the path it was started from (reexec_init()
 * reads /proc/self/exe at start), not through /proc/self/exe at restart
 * time: that link names the file this process was loaded from, so after an
 * upgrade that replaced the file by a rename (install(1), a package
 * manager) it would run the old, deleted binary again. Exec'ing the path
 * picks up the binary installed there now; if nothing is there any more,
 * the old image (/proc/self/exe) is run, with a warning.
 *
 * Invariants: (1) the new image inherits no descriptor but 0, 1 and 2
 * (every other one is marked close-on-exec first; the data directory's
 * lock is already released by the caller and is O_CLOEXEC anyway, so the
 * restarted replica can take it again); (2) the PID stays the same. */
#ifndef COHORT_REEXEC_H
#define COHORT_REEXEC_H

#include "common/err.h"

/* Remember the path of the running binary (call once, at start). */
void reexec_init(void);
/* Mark every descriptor above 2 close-on-exec and execve the binary with
 * argv and the current environment. Returns only on failure (with err). */
int reexec_self(char *const argv[], struct cohort_err *err);

#endif
