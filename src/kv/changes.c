/* changes — recording key change events. See changes.h. */
#include "kv/changes.h"

#include "common/assert.h"
#include "kv/kv.h"

void kv_changes_record(struct kv *kv, uint64_t revision, uint8_t kind,
                       const uint8_t *key, size_t key_size,
                       const uint8_t *value, size_t value_size)
{
    if (kind != KV_CHANGE_SET)
        value_size = 0;
    struct history *h = &kv->changes;
    uint64_t seq = history_next_seq(h);
    if (history_append_tagged(h, revision, key, key_size, kind, value,
                              value_size) != 0)
        cohort_assert_fail("out of memory recording a committed change",
                           __FILE__, __LINE__);
    const struct kv_publish_hook *hook = &kv->publish_hook;
    if (hook->change != NULL)
        hook->change(hook->ctx, seq, revision, kind, key, key_size, value,
                     value_size);
}

const char *kv_change_kind_name(uint8_t kind)
{
    switch (kind) {
    case KV_CHANGE_SET:
        return "set";
    case KV_CHANGE_DEL:
        return "del";
    case KV_CHANGE_EXPIRE:
        return "expire";
    default:
        UNREACHABLE();
    }
}
