/* client/reply — the public reply tree (struct cohort_reply) built from the
 * codec's node array: every string copied and NUL-terminated, so the tree
 * owns its memory and outlives the connection's buffer.
 *
 * Invariants: (1) a tree is built whole or not at all (NULL on allocation
 * failure, nothing leaked); (2) an aggregate's elements count equals its
 * children in the node array (a map: twice its pairs). */
#ifndef COHORT_CLIENT_REPLY_H
#define COHORT_CLIENT_REPLY_H

#include <stdint.h>

#include "cohort_client.h"
#include "common/resp.h"

/* The tree of nodes[0] (node_count > 0), or NULL when out of memory. */
struct cohort_reply *client_reply_build(const struct resp_node *nodes,
                                        uint32_t node_count);

#endif
