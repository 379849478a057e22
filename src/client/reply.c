/* client/reply — the public reply tree. See reply.h. */
#include "client/reply.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

static enum cohort_reply_type type_of(enum resp_type t)
{
    switch (t) {
    case RESP_TYPE_SIMPLE:
        return COHORT_REPLY_STATUS;
    case RESP_TYPE_ERROR:
    case RESP_TYPE_BLOB_ERROR:
        return COHORT_REPLY_ERROR;
    case RESP_TYPE_INTEGER:
        return COHORT_REPLY_INTEGER;
    case RESP_TYPE_NULL:
        return COHORT_REPLY_NIL;
    case RESP_TYPE_ARRAY:
    case RESP_TYPE_SET:
    case RESP_TYPE_PUSH:
        return COHORT_REPLY_ARRAY;
    case RESP_TYPE_MAP:
        return COHORT_REPLY_MAP;
    case RESP_TYPE_DOUBLE:
        return COHORT_REPLY_DOUBLE;
    case RESP_TYPE_BOOLEAN:
        return COHORT_REPLY_BOOLEAN;
    case RESP_TYPE_BULK:
    case RESP_TYPE_VERBATIM:
    case RESP_TYPE_BIG_NUMBER:
        break;
    }
    return COHORT_REPLY_STRING;
}

COHORT_API void cohort_reply_free(struct cohort_reply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        cohort_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static bool copy_scalar(struct cohort_reply *r, const struct resp_node *n)
{
    r->integer = n->integer;
    r->dbl = n->dbl;
    if (n->str == NULL)
        return true;
    r->str = malloc(n->len + 1);
    if (r->str == NULL)
        return false;
    memcpy(r->str, n->str, n->len);
    r->str[n->len] = '\0';
    r->len = n->len;
    return true;
}

/* Build the subtree at nodes[i]; NULL when out of memory. */
static struct cohort_reply *build(const struct resp_node *nodes,
                                  uint32_t node_count, uint32_t i)
{
    ASSERT(i < node_count);
    const struct resp_node *n = &nodes[i];
    struct cohort_reply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->type = type_of(n->type);
    size_t children = resp_node_children(n);
    if (children == 0) {
        if (!copy_scalar(r, n)) {
            cohort_reply_free(r);
            return NULL;
        }
        return r;
    }
    r->element = calloc(children, sizeof(*r->element));
    if (r->element == NULL) {
        free(r);
        return NULL;
    }
    uint32_t child = i + 1;
    for (size_t k = 0; k < children; k++) {
        ASSERT(child < node_count);
        r->element[k] = build(nodes, node_count, child);
        r->elements = k + 1;
        if (r->element[k] == NULL) {
            cohort_reply_free(r);
            return NULL;
        }
        child = nodes[child].next;
    }
    ASSERT(child == n->next);
    return r;
}

struct cohort_reply *client_reply_build(const struct resp_node *nodes,
                                        uint32_t node_count)
{
    ASSERT(node_count > 0);
    return build(nodes, node_count, 0);
}
