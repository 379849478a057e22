/* view_log — the log line of a view notification: the view, its primary,
 * this replica's role, and why this replica left its previous view (the
 * core's struct cohort_view_why in words), e.g.
 *
 *     view 2: primary is replica 2; this replica is backup; why: replica 1
 *     suspected replica 0, the primary of view 1, after 153 ms of silence
 */
#ifndef COHORT_VIEW_LOG_H
#define COHORT_VIEW_LOG_H

#include <stddef.h>

#include "cohort.h"

/* The cause as one lowercase word, for metric labels and JSON:
 * "suspected", "lost_quorum", "votes", "timeout", "recovery", "learned",
 * "unknown". */
const char *view_cause_name(enum cohort_view_cause cause);
/* The number of causes (enum cohort_view_cause runs from 0 to this - 1). */
#define VIEW_CAUSE_COUNT 10u

/* One word for a role (INFO's view history): primary, backup, recovering,
 * changing, learner, outside. */
const char *view_role_token(enum cohort_role role);
/* Write the line (INFO) to the log. */
void view_log(const struct cohort_view_info *v);
/* The line's text into out (capacity size); returns out. */
const char *view_log_format(const struct cohort_view_info *v, char *out,
                            size_t size);

#endif
