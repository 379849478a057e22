/* client_fuzz — what libcohort-client does with a member's bytes: the
 * input is one reply as a member sends it (RESP2 or RESP3). It is parsed
 * with the client's limits; a complete reply becomes the public reply tree
 * (client_reply_build), whose shape is checked against the node array and
 * freed; a string reply is also read as INFO replication text
 * (client_layout_parse), as discovery does, and the whole input is too.
 *
 * Checks: the tree has as many elements as the nodes say and every string
 * is NUL-terminated at its length; a layout has at most
 * CLIENT_DISCOVER_MEMBERS_MAX members, and every address it reports is
 * non-empty, shorter than CLIENT_ADDR_MAX and free of spaces, commas and
 * control bytes. ASan catches reads past the input (an exact-size copy).
 *
 * Accepted (the corpus must keep producing one): a reply whose text names
 * a primary. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/discover.h"
#include "client/reply.h"
#include "common/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "client_fuzz: check failed: %s at %s:%d\n", #cond, \
                    __FILE__, __LINE__);                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define NODES_MAX 256

static unsigned long fuzz_accepted;

static void check_addr(const char *a)
{
    size_t n = strlen(a);
    CHECK(n > 0 && n < CLIENT_ADDR_MAX);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)a[i] > ' ' && a[i] != ',');
}

static bool check_layout(const char *text, size_t size)
{
    struct client_layout l;
    client_layout_parse(text, size, &l);
    CHECK(l.member_count <= CLIENT_DISCOVER_MEMBERS_MAX);
    for (size_t i = 0; i < l.member_count; i++)
        check_addr(l.members[i]);
    if (l.has_primary)
        check_addr(l.primary);
    return l.has_primary;
}

/* The tree of nodes[i] matches it; returns the index after its subtree. */
static uint32_t check_tree(const struct cohort_reply *r,
                           const struct resp_node *nodes, uint32_t i)
{
    const struct resp_node *n = &nodes[i];
    CHECK(r->elements == resp_node_children(n));
    if (r->str != NULL)
        CHECK(r->str[r->len] == '\0' && r->len == n->len);
    uint32_t child = i + 1;
    for (size_t k = 0; k < r->elements; k++)
        child = check_tree(r->element[k], nodes, child);
    CHECK(child == n->next);
    return child;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    (void)check_layout(buf, size);
    static struct resp_node nodes[NODES_MAX];
    static const struct resp_reply_limits limits = {16, 1 << 20, 1 << 16};
    struct resp_reply reply = {.nodes = nodes, .node_capacity = NODES_MAX};
    struct cohort_err err;
    if (resp_reply_parse(buf, size, &limits, &reply, &err) == RESP_COMPLETE) {
        struct cohort_reply *r = client_reply_build(nodes, reply.node_count);
        CHECK(r != NULL);
        CHECK(check_tree(r, nodes, 0) == reply.node_count);
        cohort_reply_free(r);
        if (nodes[0].str != NULL && check_layout(nodes[0].str, nodes[0].len))
            fuzz_accepted++;
    }
    free(buf);
    return 0;
}

#ifdef FUZZ_MAIN
static const char *const client_tokens[] = {
    "primary:", "member0:addr=", ",role=", "\r\n", "$", "*", "%", "?",
};

#define FUZZ_NAME "client_fuzz"
#define FUZZ_TOKENS client_tokens
#define FUZZ_ACCEPTED fuzz_accepted
#include "fuzz_main.h"
#endif
