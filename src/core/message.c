/* message — encoding and validation of peer messages. See message.h. */
#include "core/message.h"

#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"

static_assert(MESSAGE_HEADER_SIZE == 72, "message header is 72 bytes");

size_t message_size(uint32_t entry_count, size_t bodies_size)
{
    return MESSAGE_HEADER_SIZE + (size_t)entry_count * ENTRY_HEADER_SIZE +
           bodies_size;
}

static void header_encode(const struct message *m, uint8_t *out)
{
    out[0] = m->type;
    out[1] = m->from;
    out[2] = m->status;
    out[3] = m->flags;
    put_u32(out + 4, m->view);
    put_u32(out + 8, m->epoch);
    put_u32(out + 12, m->last_normal_view);
    put_u64(out + 16, m->op);
    put_u64(out + 24, m->commit);
    put_u64(out + 32, m->view_op);
    put_u64(out + 40, m->checksum);
    put_u64(out + 48, m->base_op);
    put_u64(out + 56, m->nonce);
    put_u32(out + 64, m->entry_count);
    put_u32(out + 68, MESSAGE_MAGIC);
}

size_t message_encode(const struct message *m, const struct entry *entries,
                      uint8_t *out, size_t size)
{
    ASSERT(m->type >= 1 && m->type <= MSG_TYPE_MAX);
    struct writer w = writer_make(out, size);
    uint8_t *head = writer_take(&w, MESSAGE_HEADER_SIZE);
    if (!head)
        return 0;
    header_encode(m, head);
    uint64_t parent = m->checksum;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct entry *e = &entries[i];
        ASSERT(e->h.op == m->base_op + 1 + i);
        ASSERT(e->h.parent == parent);
        uint8_t *eh = writer_take(&w, ENTRY_HEADER_SIZE);
        if (!eh)
            return 0;
        entry_header_encode(&e->h, eh);
        writer_bytes(&w, e->body, e->h.body_size);
        parent = e->h.checksum;
    }
    return w.ok ? size - w.left : 0;
}

static bool header_decode(struct cursor *c, uint32_t replica_count,
                          struct message *m)
{
    memset(m, 0, sizeof(*m));
    m->type = cursor_u8(c);
    m->from = cursor_u8(c);
    m->status = cursor_u8(c);
    m->flags = cursor_u8(c);
    m->view = cursor_u32(c);
    m->epoch = cursor_u32(c);
    m->last_normal_view = cursor_u32(c);
    m->op = cursor_u64(c);
    m->commit = cursor_u64(c);
    m->view_op = cursor_u64(c);
    m->checksum = cursor_u64(c);
    m->base_op = cursor_u64(c);
    m->nonce = cursor_u64(c);
    m->entry_count = cursor_u32(c);
    uint32_t magic = cursor_u32(c);
    if (!c->ok || magic != MESSAGE_MAGIC)
        return false;
    if (m->type < 1 || m->type > MSG_TYPE_MAX)
        return false;
    if (m->from >= replica_count)
        return false;
    return true;
}

bool message_decode(const uint8_t *data, size_t size, uint32_t replica_count,
                    struct message *m)
{
    struct cursor c = cursor_make(data, size);
    if (!header_decode(&c, replica_count, m))
        return false;
    bool carries_entries =
        m->type == MSG_PREPARE || m->type == MSG_DO_VIEW_CHANGE ||
        m->type == MSG_START_VIEW || m->type == MSG_NEW_STATE;
    if (m->entry_count && !carries_entries)
        return false;
    if (m->entry_count > c.left / ENTRY_HEADER_SIZE)
        return false;
    m->entries = c.p;
    uint64_t parent = m->checksum;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        struct entry_header h;
        const uint8_t *raw = cursor_take(&c, ENTRY_HEADER_SIZE);
        if (!raw || !entry_header_decode(raw, &h))
            return false;
        const uint8_t *body = cursor_take(&c, h.body_size);
        if (!body && h.body_size)
            return false;
        if (h.op != m->base_op + 1 + i || h.parent != parent)
            return false;
        if (!entry_verify(&h, body))
            return false;
        parent = h.checksum;
    }
    if (!c.ok || c.left != 0)
        return false;
    m->entries_size = (size_t)(c.p - m->entries);
    return true;
}

bool message_entry_next(const struct message *m, size_t *offset,
                        struct entry *e)
{
    if (*offset >= m->entries_size)
        return false;
    const uint8_t *p = m->entries + *offset;
    bool ok = entry_header_decode(p, &e->h);
    ASSERT(ok); /* message_decode() validated every entry */
    e->body = p + ENTRY_HEADER_SIZE;
    *offset += ENTRY_HEADER_SIZE + e->h.body_size;
    ASSERT(*offset <= m->entries_size);
    return true;
}

const char *message_type_name(uint8_t type)
{
    static const char *const names[] = {
        "?",         "PREPARE",  "PREPARE_OK",        "COMMIT",
        "SVC",       "DVC",      "START_VIEW",        "GET_STATE",
        "NEW_STATE", "RECOVERY", "RECOVERY_RESPONSE", "PING",
        "PONG",
    };
    return type <= MSG_TYPE_MAX ? names[type] : "?";
}
