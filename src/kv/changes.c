/* changes — recording key change events. See changes.h. */
#include "kv/changes.h"

#include <stdlib.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "kv/kv.h"

void kv_changes_record(struct kv *kv, uint64_t revision, uint8_t kind,
                       const uint8_t *key, size_t key_size,
                       const uint8_t *value, size_t value_size)
{
    if (kind == KV_CHANGE_DEL || kind == KV_CHANGE_EXPIRE)
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
    case KV_CHANGE_GROUP:
        return "group";
    default:
        UNREACHABLE();
    }
}

void kv_changes_group_view(void *ctx, const struct kv_group *g, uint64_t op)
{
    size_t size = 4;
    for (uint32_t i = 0; i < g->count; i++)
        size += 8 + (size_t)g->members[i].name_size + g->members[i].data_size;
    uint8_t *view = malloc(size);
    if (view == NULL)
        cohort_assert_fail("out of memory recording a group's view", __FILE__,
                           __LINE__);
    struct writer w = writer_make(view, size);
    writer_u32(&w, g->count);
    for (uint32_t i = 0; i < g->count; i++) {
        const struct kv_group_member *m = &g->members[i];
        writer_u32(&w, m->name_size);
        writer_bytes(&w, m->name, m->name_size);
        writer_u32(&w, m->data_size);
        writer_bytes(&w, m->data, m->data_size);
    }
    ASSERT(w.ok && w.left == 0);
    kv_changes_record(ctx, op, KV_CHANGE_GROUP, g->name, g->name_size, view,
                      size);
    free(view);
}
