/* client/commands — the convenience calls of libcohort-client (GET, SET,
 * INCRBY) on top of cohort_client_call(): they turn the reply into C
 * values, and an error reply into -COHORT_EREPLY with its text in
 * cohort_client_error(). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"

/* An error reply, or a reply of a type the command does not send. */
static int unexpected(struct cohort_client *c, struct cohort_reply *r,
                      const char *name)
{
    if (r->type == COHORT_REPLY_ERROR)
        err_set(&c->err, -COHORT_EREPLY, "%s: -%s", name, r->str);
    else
        err_set(&c->err, -COHORT_EPROTO, "%s: a reply of type %d", name,
                (int)r->type);
    cohort_reply_free(r);
    return c->err.code;
}

COHORT_API int cohort_client_get(struct cohort_client *c, int flags,
                                 const char *key, char **value, size_t *size)
{
    *value = NULL;
    const char *argv[2] = {"GET", key};
    struct cohort_reply *r = NULL;
    int rc = cohort_client_call(c, flags & COHORT_CALL_READ_LOCAL, 2, argv,
                                NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type == COHORT_REPLY_NIL) {
        cohort_reply_free(r);
        return -COHORT_ENOTFOUND;
    }
    if (r->type != COHORT_REPLY_STRING)
        return unexpected(c, r, "GET");
    *value = r->str; /* take the NUL-terminated copy */
    if (size != NULL)
        *size = r->len;
    r->str = NULL;
    cohort_reply_free(r);
    return 0;
}

COHORT_API int cohort_client_set(struct cohort_client *c, const char *key,
                                 const void *value, size_t size)
{
    const char *argv[3] = {"SET", key, value != NULL ? value : ""};
    size_t len[3] = {3, key ? strlen(key) : 0, size};
    struct cohort_reply *r = NULL;
    int rc = cohort_client_call(c, 0, 3, argv, len, &r);
    if (rc != 0)
        return rc;
    if (r->type != COHORT_REPLY_STATUS)
        return unexpected(c, r, "SET");
    cohort_reply_free(r);
    return 0;
}

COHORT_API int cohort_client_incrby(struct cohort_client *c, const char *key,
                                    int64_t by, int64_t *value)
{
    char by_text[24];
    snprintf(by_text, sizeof(by_text), "%" PRId64, by);
    const char *argv[3] = {"INCRBY", key, by_text};
    struct cohort_reply *r = NULL;
    int rc = cohort_client_call(c, 0, 3, argv, NULL, &r);
    if (rc != 0)
        return rc;
    if (r->type != COHORT_REPLY_INTEGER)
        return unexpected(c, r, "INCRBY");
    if (value != NULL)
        *value = r->integer;
    cohort_reply_free(r);
    return 0;
}

COHORT_API int cohort_client_incr(struct cohort_client *c, const char *key,
                                  int64_t *value)
{
    return cohort_client_incrby(c, key, 1, value);
}
