/* client/discover — reading the group's layout from one member's INFO
 * replication text: which client address is the primary's and which
 * addresses the members have. Pure text parsing; the caller fetched it.
 *
 * Invariants: (1) only whole lines are read ("primary:" and
 * "member<i>:addr=" lines; other lines are ignored, so newer fields do not
 * break it); (2) an address is copied only if it fits, NUL-terminated;
 * (3) at most CLIENT_DISCOVER_MEMBERS_MAX members are reported. */
#ifndef COHORT_CLIENT_DISCOVER_H
#define COHORT_CLIENT_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>

#define CLIENT_ADDR_MAX 256u
#define CLIENT_DISCOVER_MEMBERS_MAX 16u

struct client_layout {
    bool is_primary;  /* the member that answered says role:primary */
    bool has_primary; /* a known primary address ("?" is none) */
    char primary[CLIENT_ADDR_MAX];
    size_t member_count;
    char members[CLIENT_DISCOVER_MEMBERS_MAX][CLIENT_ADDR_MAX];
};

/* Parse INFO replication text[0, size) into out (cleared first): the
 * "role:", "primary:" and "member<i>:addr=" lines. */
void client_layout_parse(const char *text, size_t size,
                         struct client_layout *out);

#endif
