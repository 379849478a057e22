/* message — encoding and validation of peer messages. See message.h. */
#include "core/message.h"

#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"

static_assert(MESSAGE_HEADER_SIZE == 80, "message header is 80 bytes");
static_assert(MESSAGE_HEADER_SIZE % 8 == 0, "entries start aligned");

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
    put_u32(out + 4, m->epoch);
    put_u64(out + 8, m->view);
    put_u64(out + 16, m->last_normal_view);
    put_u64(out + 24, m->op);
    put_u64(out + 32, m->commit);
    put_u64(out + 40, m->view_op);
    put_u64(out + 48, m->checksum);
    put_u64(out + 56, m->base_op);
    put_u64(out + 64, m->nonce);
    put_u32(out + 72, m->entry_count);
    put_u32(out + 76, MESSAGE_MAGIC);
}

size_t message_encode(const struct message *m, const struct entry *entries,
                      uint8_t *out, size_t size)
{
    ASSERT(m->type >= 1 && m->type <= MSG_TYPE_MAX);
    ASSERT(m->view <= VIEW_MAX); /* the core never goes past it */
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

/* The header fields each type uses (docs in message.h); the others must
 * be zero. view and epoch are every type's. */
enum field {
    F_STATUS = 1 << 0,
    F_FLAGS = 1 << 1,
    F_LNV = 1 << 2,
    F_OP = 1 << 3,
    F_COMMIT = 1 << 4,
    F_VIEW_OP = 1 << 5,
    F_CHECKSUM = 1 << 6,
    F_BASE_OP = 1 << 7,
    F_NONCE = 1 << 8,
    F_ENTRIES = 1 << 9,
};

static const uint16_t type_fields[MSG_TYPE_MAX + 1] = {
    [MSG_PREPARE] =
        F_OP | F_COMMIT | F_VIEW_OP | F_CHECKSUM | F_BASE_OP | F_ENTRIES,
    [MSG_PREPARE_OK] = F_OP | F_CHECKSUM,
    [MSG_COMMIT] = F_OP | F_COMMIT | F_VIEW_OP | F_CHECKSUM,
    [MSG_START_VIEW_CHANGE] = F_FLAGS,
    [MSG_DO_VIEW_CHANGE] =
        F_FLAGS | F_LNV | F_OP | F_COMMIT | F_CHECKSUM | F_BASE_OP | F_ENTRIES,
    [MSG_START_VIEW] =
        F_OP | F_COMMIT | F_VIEW_OP | F_CHECKSUM | F_BASE_OP | F_ENTRIES,
    [MSG_GET_STATE] = F_FLAGS | F_COMMIT | F_CHECKSUM | F_BASE_OP | F_NONCE,
    [MSG_NEW_STATE] = F_STATUS | F_FLAGS | F_OP | F_COMMIT | F_VIEW_OP |
                      F_CHECKSUM | F_BASE_OP | F_NONCE | F_ENTRIES,
    [MSG_RECOVERY] = F_FLAGS | F_NONCE,
    [MSG_RECOVERY_RESPONSE] =
        F_STATUS | F_FLAGS | F_LNV | F_OP | F_COMMIT | F_NONCE,
    [MSG_PING] = F_NONCE,
    [MSG_PONG] = F_NONCE,
    [MSG_START_EPOCH] = F_OP | F_CHECKSUM | F_NONCE,
    [MSG_EPOCH_STARTED] = F_OP,
    [MSG_NEW_EPOCH] = F_OP | F_CHECKSUM | F_NONCE,
};

/* Every field a type does not use is zero. */
static bool unused_fields_zero(const struct message *m, uint16_t used)
{
    const struct {
        uint16_t field;
        uint64_t value;
    } fields[] = {
        {F_STATUS, m->status},        {F_FLAGS, m->flags},
        {F_LNV, m->last_normal_view}, {F_OP, m->op},
        {F_COMMIT, m->commit},        {F_VIEW_OP, m->view_op},
        {F_CHECKSUM, m->checksum},    {F_BASE_OP, m->base_op},
        {F_NONCE, m->nonce},          {F_ENTRIES, m->entry_count},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!(used & fields[i].field) && fields[i].value != 0)
            return false;
    return true;
}

/* Ranges that hold for every type: views, ops, status and flags values. */
static bool fields_in_range(const struct message *m)
{
    if (m->view > VIEW_MAX || m->last_normal_view > m->view)
        return false;
    if (m->op > ENTRY_OP_MAX || m->commit > ENTRY_OP_MAX ||
        m->base_op > ENTRY_OP_MAX)
        return false;
    if (m->view_op > ENTRY_OP_MAX && m->view_op != MESSAGE_VIEW_OP_UNKNOWN)
        return false;
    if (m->status > 3) /* enum replica_status: 1..3 */
        return false;
    if (m->type == MSG_NEW_STATE || m->type == MSG_RECOVERY_RESPONSE)
        return m->status >= 1;
    return true;
}

/* How each type's fields relate (message.h), as the senders in src/core
 * make them; a message that breaks a rule is malformed or forged. */
static bool type_rules_hold(const struct message *m)
{
    uint64_t end = m->base_op + m->entry_count; /* both bounded: no wrap */
    switch (m->type) {
    case MSG_PREPARE:
        return m->commit <= m->op && m->view_op <= m->op && end <= m->op;
    case MSG_COMMIT:
        return m->commit <= m->op && m->view_op <= m->op;
    case MSG_START_VIEW_CHANGE:
        return m->view >= 1 && !(m->flags & ~(uint32_t)MSG_FLAG_RESIGNED);
    case MSG_DO_VIEW_CHANGE:
        return m->commit <= m->op && m->base_op == m->commit && end == m->op &&
               !(m->flags & ~(uint32_t)MSG_FLAG_RESIGNED);
    case MSG_START_VIEW:
        return m->commit <= m->op && m->view_op <= m->op && end == m->op;
    case MSG_GET_STATE:
        return m->commit <= m->base_op &&
               !(m->flags & ~(uint32_t)MSG_FLAG_CATCH_UP);
    case MSG_NEW_STATE:
        if (m->flags & ~(uint32_t)MSG_FLAG_SNAPSHOT)
            return false;
        if ((m->flags & MSG_FLAG_SNAPSHOT) && m->entry_count)
            return false;
        return m->commit <= m->op && end <= m->op;
    case MSG_RECOVERY:
        return !(m->flags & ~(uint32_t)MSG_FLAG_SPARE);
    case MSG_RECOVERY_RESPONSE:
        if (m->flags & ~(uint32_t)(MSG_FLAG_INTACT | MSG_FLAG_FRESH))
            return false;
        return m->commit <= m->op;
    case MSG_START_EPOCH:
    case MSG_NEW_EPOCH: /* the membership is checked by the core */
        return m->epoch >= 1 && m->view == 0 && m->op >= 1 &&
               m->checksum != 0 && m->nonce != 0;
    case MSG_EPOCH_STARTED:
        return m->epoch >= 1 && m->view == 0 && m->op >= 1;
    default:
        return true;
    }
}

static bool header_decode(struct cursor *c, uint32_t replica_count,
                          struct message *m)
{
    memset(m, 0, sizeof(*m));
    m->type = cursor_u8(c);
    m->from = cursor_u8(c);
    m->status = cursor_u8(c);
    m->flags = cursor_u8(c);
    m->epoch = cursor_u32(c);
    m->view = cursor_u64(c);
    m->last_normal_view = cursor_u64(c);
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
    return unused_fields_zero(m, type_fields[m->type]) && fields_in_range(m) &&
           type_rules_hold(m);
}

bool message_sender(const uint8_t *data, size_t size, uint32_t *from)
{
    if (size < MESSAGE_HEADER_SIZE)
        return false;
    *from = data[1]; /* the layout in message.h */
    return true;
}

bool message_decode(const uint8_t *data, size_t size, uint32_t replica_count,
                    struct message *m)
{
    struct cursor c = cursor_make(data, size);
    if (!header_decode(&c, replica_count, m))
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
        "?",         "PREPARE",     "PREPARE_OK",        "COMMIT",
        "SVC",       "DVC",         "START_VIEW",        "GET_STATE",
        "NEW_STATE", "RECOVERY",    "RECOVERY_RESPONSE", "PING",
        "PONG",      "START_EPOCH", "EPOCH_STARTED",     "NEW_EPOCH",
    };
    return type <= MSG_TYPE_MAX ? names[type] : "?";
}
