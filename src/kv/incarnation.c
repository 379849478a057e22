/* incarnation — the group's incarnation op. See incarnation.h. */
#include "kv/incarnation.h"

#include <inttypes.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "kv/command.h"
#include "kv/kv.h"

size_t kv_incarnation_encode(uint64_t incarnation, uint8_t *out, size_t out_cap)
{
    if (incarnation == 0)
        return 0;
    uint8_t value[8];
    put_u64(value, incarnation);
    struct resp_arg arg = {.ptr = (const char *)value, .size = sizeof(value)};
    struct kv_write w = {
        .type = KV_CMD_INCARNATION, .arg_count = 1, .args = &arg};
    size_t size = kv_command_size(&w);
    ASSERT(size <= KV_INCARNATION_BODY_MAX);
    if (out == NULL || out_cap < size)
        return 0;
    size_t n = kv_command_encode(&w, out, out_cap);
    ASSERT(n == size);
    return n;
}

uint64_t kv_incarnation(const struct kv *kv)
{
    return kv->incarnation;
}

const char *kv_incarnation_check_header(const struct kv_command *c)
{
    ASSERT(c->type == KV_CMD_INCARNATION);
    if (c->flags != 0)
        return "flags on INCARNATION";
    return c->arg_count == 1 ? NULL : "INCARNATION needs 1 argument";
}

void kv_incarnation_apply(struct kv *kv, uint64_t op, struct kv_command *c,
                          struct resp_buf *r)
{
    ASSERT(c->type == KV_CMD_INCARNATION);
    ASSERT(c->arg_count == 1); /* kv_incarnation_check_header() */
    const uint8_t *value;
    size_t size;
    kv_command_next_arg(c, &value, &size);
    uint64_t incarnation = size == 8 ? get_u64(value) : 0;
    if (incarnation == 0) {
        /* kv_incarnation_encode() never writes such a body. */
        kv->malformed_ops++;
        resp_write_errorf(
            r, "ERR malformed INCARNATION in log entry at op %" PRIu64 ": %s",
            op, size == 8 ? "zero" : "the value is not 8 bytes");
        return;
    }
    if (kv->incarnation != 0) {
        resp_write_integer(r, 0);
        return;
    }
    kv->incarnation = incarnation;
    resp_write_integer(r, 1);
}
