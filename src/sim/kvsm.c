/* kvsm — the simulator's int64 key-value state machine. See kvsm.h. */
#include "sim/kvsm.h"

#include <string.h>
#include <xxhash.h>

#include "common/assert.h"
#include "common/bytes.h"

static_assert(KVSM_KEYS <= 256, "a key is one byte");
static_assert(KVSM_STATE_SIZE == KVSM_KEYS * 9, "a state slot is 9 bytes");

void kvsm_init(struct kvsm *k)
{
    memset(k, 0, sizeof(*k));
}

void kvsm_cmd_encode(const struct kvsm_cmd *cmd, uint8_t out[KVSM_BODY_SIZE])
{
    out[0] = cmd->kind;
    out[1] = cmd->key;
    put_u64(out + 2, (uint64_t)cmd->arg);
    put_u64(out + 10, (uint64_t)cmd->arg2);
}

bool kvsm_cmd_decode(const uint8_t *body, size_t size, struct kvsm_cmd *cmd)
{
    if (size != KVSM_BODY_SIZE)
        return false;
    cmd->kind = body[0];
    cmd->key = body[1];
    cmd->arg = (int64_t)get_u64(body + 2);
    cmd->arg2 = (int64_t)get_u64(body + 10);
    if (cmd->kind < KVSM_GET || cmd->kind > KVSM_DEL)
        return false;
    return cmd->key < KVSM_KEYS;
}

void kvsm_reply_encode(const struct kvsm_reply *reply,
                       uint8_t out[KVSM_REPLY_SIZE])
{
    out[0] = reply->result;
    put_u64(out + 1, (uint64_t)reply->value);
}

bool kvsm_reply_decode(const uint8_t *data, size_t size,
                       struct kvsm_reply *reply)
{
    if (size != KVSM_REPLY_SIZE)
        return false;
    reply->result = data[0];
    reply->value = (int64_t)get_u64(data + 1);
    return true;
}

struct kvsm_reply kvsm_exec(struct kvsm *k, const struct kvsm_cmd *cmd)
{
    ASSERT(cmd->key < KVSM_KEYS);
    struct kvsm_reply r = {1, 0};
    int64_t *v = &k->value[cmd->key];
    bool *present = &k->present[cmd->key];
    switch (cmd->kind) {
    case KVSM_GET:
        r.result = *present;
        r.value = *present ? *v : 0;
        break;
    case KVSM_SET:
        *v = cmd->arg;
        *present = true;
        break;
    case KVSM_CAS:
        r.result = *present && *v == cmd->arg;
        if (r.result)
            *v = cmd->arg2;
        r.value = *present ? *v : 0;
        break;
    case KVSM_INCR: {
        int64_t sum;
        if (__builtin_add_overflow(*v, cmd->arg, &sum)) {
            r.result = 0; /* fails and changes nothing, as in Redis */
            r.value = *v;
            break;
        }
        *v = sum;
        *present = true;
        r.value = sum;
        break;
    }
    case KVSM_DEL:
        r.result = *present;
        *present = false;
        *v = 0;
        break;
    default:
        UNREACHABLE();
    }
    ASSERT(*present || *v == 0);
    return r;
}

size_t kvsm_apply(struct kvsm *k, const uint8_t *body, size_t body_size,
                  uint8_t *reply, size_t reply_max)
{
    ASSERT(reply_max >= KVSM_REPLY_SIZE);
    struct kvsm_cmd cmd;
    struct kvsm_reply r = {KVSM_RESULT_BAD, 0};
    if (kvsm_cmd_decode(body, body_size, &cmd))
        r = kvsm_exec(k, &cmd);
    kvsm_reply_encode(&r, reply);
    return KVSM_REPLY_SIZE;
}

void kvsm_encode(const struct kvsm *k, uint8_t out[KVSM_STATE_SIZE])
{
    for (uint32_t i = 0; i < KVSM_KEYS; i++) {
        out[i * 9] = k->present[i];
        put_u64(out + i * 9 + 1, (uint64_t)k->value[i]);
    }
}

bool kvsm_restore(struct kvsm *k, const uint8_t *data, size_t size)
{
    if (size != KVSM_STATE_SIZE)
        return false;
    struct kvsm next;
    for (uint32_t i = 0; i < KVSM_KEYS; i++) {
        if (data[i * 9] > 1)
            return false;
        next.present[i] = data[i * 9];
        next.value[i] = (int64_t)get_u64(data + i * 9 + 1);
        if (!next.present[i] && next.value[i] != 0)
            return false;
    }
    *k = next;
    return true;
}

uint64_t kvsm_hash(const struct kvsm *k)
{
    uint8_t raw[KVSM_STATE_SIZE];
    kvsm_encode(k, raw);
    return XXH3_64bits(raw, sizeof(raw));
}

size_t kvsm_sm_apply(void *ctx, uint64_t op, uint64_t timestamp_ms,
                     const uint8_t *body, size_t body_size, uint8_t *reply,
                     size_t reply_size_max)
{
    (void)op;
    (void)timestamp_ms;
    return kvsm_apply(ctx, body, body_size, reply, reply_size_max);
}

const char *kvsm_kind_name(uint8_t kind)
{
    switch (kind) {
    case KVSM_GET:
        return "GET";
    case KVSM_SET:
        return "SET";
    case KVSM_CAS:
        return "CAS";
    case KVSM_INCR:
        return "INCR";
    case KVSM_DEL:
        return "DEL";
    default:
        return "?";
    }
}
