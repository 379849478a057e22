/* address — the replicas' address table. See address.h. */
#include "kv/address.h"

#include <inttypes.h>
#include <string.h>

#include <xxhash.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/resp.h"
#include "kv/command.h"
#include "kv/kv.h"

/* The seed of the table's digest: part of the state hash, never to
 * change. */
#define ADDRESS_DIGEST_SEED 0x636f686f72746164ull /* "cohortad" */

static_assert(KV_ADDRESS_MAX <= 255u, "sizes fit the table's strings");
static_assert(COHORT_REPLICAS_MAX <= 255u, "ids fit a u32 argument");
static_assert(KV_ADDRESS_BODY_MAX ==
                  KV_COMMAND_HEADER_SIZE + 3u * 4u + 4u + 2u * KV_ADDRESS_MAX,
              "header, three sized arguments: the id and two addresses");

/* An address as bytes: 1..KV_ADDRESS_MAX of printable ASCII, no space or
 * comma (an embedded NUL is not printable), with a ':'. */
static bool bytes_valid(const uint8_t *p, size_t size)
{
    if (size < 1 || size > KV_ADDRESS_MAX)
        return false;
    bool colon = false;
    for (size_t i = 0; i < size; i++) {
        if (p[i] <= ' ' || p[i] > '~' || p[i] == ',')
            return false;
        colon |= p[i] == ':';
    }
    return colon;
}

bool kv_address_valid(const char *text)
{
    if (text == NULL)
        return false;
    /* strnlen: an over-long text is refused without reading it all. */
    size_t size = strnlen(text, KV_ADDRESS_MAX + 1);
    return bytes_valid((const uint8_t *)text, size);
}

size_t kv_address_encode(uint32_t id, const char *peer, const char *client,
                         uint8_t *out, size_t out_cap)
{
    if (id >= COHORT_REPLICAS_MAX || !kv_address_valid(peer) ||
        !kv_address_valid(client))
        return 0;
    uint8_t id_bytes[4];
    put_u32(id_bytes, id);
    struct resp_arg args[3] = {
        {.ptr = (const char *)id_bytes, .size = sizeof(id_bytes)},
        {.ptr = peer, .size = strlen(peer)},
        {.ptr = client, .size = strlen(client)},
    };
    struct kv_write w = {.type = KV_CMD_ADDRESS, .arg_count = 3, .args = args};
    size_t size = kv_command_size(&w);
    ASSERT(size <= KV_ADDRESS_BODY_MAX);
    if (out == NULL || out_cap < size)
        return 0;
    size_t n = kv_command_encode(&w, out, out_cap);
    ASSERT(n == size);
    return n;
}

bool kv_address_get(const struct kv *kv, uint32_t id, const char **peer,
                    const char **client)
{
    if (id >= COHORT_REPLICAS_MAX || !kv->addresses.entries[id].set)
        return false;
    const struct kv_address_entry *e = &kv->addresses.entries[id];
    DEBUG_ASSERT(kv_address_valid(e->peer));
    DEBUG_ASSERT(kv_address_valid(e->client));
    if (peer != NULL)
        *peer = e->peer;
    if (client != NULL)
        *client = e->client;
    return true;
}

uint64_t kv_address_changes(const struct kv *kv)
{
    return kv->addresses_changes;
}

void kv_addresses_clear(struct kv_addresses *a)
{
    memset(a, 0, sizeof(*a));
    ASSERT(a->count == 0);
}

size_t kv_addresses_encoded_size(const struct kv_addresses *a)
{
    size_t size = 4;
    for (uint32_t id = 0; id < COHORT_REPLICAS_MAX; id++) {
        const struct kv_address_entry *e = &a->entries[id];
        if (e->set)
            size += 4 + 4 + strlen(e->peer) + 4 + strlen(e->client);
    }
    ASSERT(size <= KV_ADDRESSES_ENCODED_MAX);
    return size;
}

void kv_addresses_encode(const struct kv_addresses *a, uint8_t *out,
                         size_t size)
{
    ASSERT(size == kv_addresses_encoded_size(a));
    struct writer w = writer_make(out, size);
    writer_u32(&w, a->count);
    for (uint32_t id = 0; id < COHORT_REPLICAS_MAX; id++) {
        const struct kv_address_entry *e = &a->entries[id];
        if (!e->set)
            continue;
        size_t peer_size = strlen(e->peer), client_size = strlen(e->client);
        writer_u32(&w, id);
        writer_u32(&w, (uint32_t)peer_size);
        writer_bytes(&w, e->peer, peer_size);
        writer_u32(&w, (uint32_t)client_size);
        writer_bytes(&w, e->client, client_size);
    }
    ASSERT(w.ok);
    ASSERT(w.left == 0);
}

/* The table's share of the state hash: a digest of its canonical encoding,
 * 0 when empty (kv_state_hash() then leaves it out). */
static uint64_t addresses_digest(const struct kv_addresses *a)
{
    if (a->count == 0)
        return 0;
    uint8_t data[KV_ADDRESSES_ENCODED_MAX];
    size_t size = kv_addresses_encoded_size(a);
    kv_addresses_encode(a, data, size);
    return XXH3_64bits_withSeed(data, size, ADDRESS_DIGEST_SEED);
}

/* Set id's entry from bytes already checked by bytes_valid(). */
static void entry_set(struct kv_addresses *a, uint32_t id, const uint8_t *peer,
                      size_t peer_size, const uint8_t *client,
                      size_t client_size)
{
    ASSERT(id < COHORT_REPLICAS_MAX);
    ASSERT(bytes_valid(peer, peer_size));
    ASSERT(bytes_valid(client, client_size));
    struct kv_address_entry *e = &a->entries[id];
    if (!e->set)
        a->count++;
    e->set = true;
    memset(e->peer, 0, sizeof(e->peer));
    memset(e->client, 0, sizeof(e->client));
    memcpy(e->peer, peer, peer_size);
    memcpy(e->client, client, client_size);
}

int kv_addresses_decode(struct kv_addresses *a, const uint8_t *data,
                        size_t size, const char **why)
{
    kv_addresses_clear(a);
    struct cursor in = cursor_make(data, size);
    uint32_t count = cursor_u32(&in);
    *why = NULL;
    if (!in.ok)
        *why = "address table shorter than its count";
    else if (count < 1 || count > COHORT_REPLICAS_MAX)
        *why = "address table count out of range";
    int64_t last_id = -1;
    for (uint32_t i = 0; *why == NULL && i < count; i++) {
        uint32_t id = cursor_u32(&in);
        uint32_t peer_size = cursor_u32(&in);
        const uint8_t *peer = cursor_take(&in, peer_size);
        uint32_t client_size = cursor_u32(&in);
        const uint8_t *client = cursor_take(&in, client_size);
        if (!in.ok)
            *why = "address table truncated";
        else if (id >= COHORT_REPLICAS_MAX)
            *why = "address table id out of range";
        else if ((int64_t)id <= last_id)
            *why = "address table ids out of order or repeated";
        else if (!bytes_valid(peer, peer_size))
            *why = "invalid peer address in the address table";
        else if (!bytes_valid(client, client_size))
            *why = "invalid client address in the address table";
        else
            entry_set(a, id, peer, peer_size, client, client_size);
        last_id = id;
    }
    if (*why == NULL && in.left != 0)
        *why = "trailing bytes after the address table";
    if (*why != NULL) {
        kv_addresses_clear(a);
        return -COHORT_ECORRUPT;
    }
    ASSERT(a->count == count);
    a->digest = addresses_digest(a);
    DEBUG_ASSERT(kv_addresses_invariants_hold(a));
    return 0;
}

const char *kv_address_check_header(const struct kv_command *c)
{
    ASSERT(c->type == KV_CMD_ADDRESS);
    if (c->flags != 0)
        return "flags on ADDRESS";
    return c->arg_count == 3 ? NULL : "ADDRESS needs 3 arguments";
}

void kv_address_apply(struct kv *kv, uint64_t op, struct kv_command *c,
                      struct resp_buf *r)
{
    ASSERT(c->type == KV_CMD_ADDRESS);
    ASSERT(c->arg_count == 3); /* kv_address_check_header() */
    const uint8_t *id_bytes, *peer, *client;
    size_t id_size, peer_size, client_size;
    kv_command_next_arg(c, &id_bytes, &id_size);
    kv_command_next_arg(c, &peer, &peer_size);
    kv_command_next_arg(c, &client, &client_size);
    const char *why = NULL;
    uint32_t id = id_size == 4 ? get_u32(id_bytes) : UINT32_MAX;
    if (id_size != 4)
        why = "the id is not 4 bytes";
    else if (id >= COHORT_REPLICAS_MAX)
        why = "replica id out of range";
    else if (!bytes_valid(peer, peer_size))
        why = "invalid peer address";
    else if (!bytes_valid(client, client_size))
        why = "invalid client address";
    if (why != NULL) {
        /* kv_address_encode() never writes such a body. */
        kv->malformed_ops++;
        resp_write_errorf(
            r, "ERR malformed ADDRESS in log entry at op %" PRIu64 ": %s", op,
            why);
        return;
    }
    entry_set(&kv->addresses, id, peer, peer_size, client, client_size);
    kv->addresses.digest = addresses_digest(&kv->addresses);
    kv->addresses_changes++;
    DEBUG_ASSERT(kv_addresses_invariants_hold(&kv->addresses));
    resp_write_simple(r, "OK");
}

bool kv_addresses_invariants_hold(const struct kv_addresses *a)
{
    uint32_t count = 0;
    for (uint32_t id = 0; id < COHORT_REPLICAS_MAX; id++) {
        const struct kv_address_entry *e = &a->entries[id];
        if (e->peer[KV_ADDRESS_MAX] != '\0' ||
            e->client[KV_ADDRESS_MAX] != '\0')
            return false;
        if (!e->set) {
            if (e->peer[0] != '\0' || e->client[0] != '\0')
                return false;
            continue;
        }
        if (!kv_address_valid(e->peer) || !kv_address_valid(e->client))
            return false;
        count++;
    }
    return count == a->count && a->digest == addresses_digest(a);
}
