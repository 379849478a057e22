/* kv — the store's hash table and records. See kv.h. */
#include "kv/kv.h"

#include <stdlib.h>
#include <string.h>
/* For XXH3_state_t on the stack (the streaming digest). */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "cohort.h"
#include "common/assert.h"
#include "common/bytes.h"
#include "kv/changes.h"
#include "kv/snapshot.h"

/* The seed of record digests. Unlike config.hash_seed it is part of the
 * state hash, so it must never change: every replica and every version must
 * compute the same digest for the same record. */
#define KV_DIGEST_SEED 0x636f686f72746b76ull /* "cohortkv" */

static_assert(KV_SLOT_COUNT_MIN >= 4, "the table grows at 3/4 full");
static_assert((KV_SLOT_COUNT_MIN & (KV_SLOT_COUNT_MIN - 1)) == 0,
              "slot counts are powers of two");
static_assert(KV_KEY_SIZE_LIMIT <= UINT32_MAX, "key sizes are u32");
static_assert(KV_VALUE_SIZE_LIMIT <= UINT32_MAX / 2, "value sizes are u32");
static_assert(KV_KEY_SIZE_MAX_DEFAULT <= KV_KEY_SIZE_LIMIT, "default key");
static_assert(KV_VALUE_SIZE_MAX_DEFAULT <= KV_VALUE_SIZE_LIMIT,
              "default value");

struct kv_config kv_config_default(void)
{
    struct kv_config config = {
        .key_size_max = KV_KEY_SIZE_MAX_DEFAULT,
        .value_size_max = KV_VALUE_SIZE_MAX_DEFAULT,
        .hash_seed = 0,
    };
    return config;
}

static uint64_t key_hash(const struct kv *kv, const uint8_t *key,
                         size_t key_size)
{
    return XXH3_64bits_withSeed(key_size ? key : (const uint8_t *)"", key_size,
                                kv->config.hash_seed);
}

/* The record's contribution to the state hash: its metadata, key and value,
 * with the sizes so that the key/value boundary counts. */
static uint64_t record_digest(const struct kv_record *r)
{
    uint8_t meta[40];
    put_u32(meta + 0, r->key_size);
    put_u32(meta + 4, r->value_size);
    put_u64(meta + 8, r->version);
    put_u64(meta + 16, r->create_op);
    put_u64(meta + 24, r->mod_op);
    put_u64(meta + 32, r->expire_at_ms);
    /* A record without expiry hashes as before expiry existed, so older
     * snapshots' state hashes still check out. */
    size_t meta_size = r->expire_at_ms != 0 ? 40 : 32;
    XXH3_state_t state;
    /* A state on the stack must be initialised before a seeded reset:
     * xxHash 0.8.1 compares the seed with the state's old one and, when the
     * stack garbage happens to match, keeps a garbage secret (found with
     * valgrind, as snapshots whose state hash did not match their
     * records). */
    XXH3_INITSTATE(&state);
    XXH3_64bits_reset_withSeed(&state, KV_DIGEST_SEED);
    XXH3_64bits_update(&state, meta, meta_size);
    if (r->key_size + (size_t)r->value_size > 0)
        XXH3_64bits_update(&state, r->data,
                           (size_t)r->key_size + r->value_size);
    return XXH3_64bits_digest(&state);
}

static size_t record_alloc_size(size_t key_size, size_t value_size)
{
    return sizeof(struct kv_record) + key_size + value_size;
}

static bool key_equal(const struct kv_record *r, const uint8_t *key,
                      size_t key_size)
{
    if (r->key_size != key_size)
        return false;
    return key_size == 0 || memcmp(r->data, key, key_size) == 0;
}

/* The index of the slot holding key, or of the empty slot where it would
 * go. The table is never full, so the probe ends. */
static uint64_t probe(const struct kv *kv, uint64_t hash, const uint8_t *key,
                      size_t key_size, bool *found)
{
    uint64_t mask = kv->slot_count - 1;
    uint64_t i = hash & mask;
    for (uint64_t n = 0; n < kv->slot_count; n++, i = (i + 1) & mask) {
        const struct kv_slot *slot = &kv->slots[i];
        if (slot->record == NULL) {
            *found = false;
            return i;
        }
        if (slot->hash == hash && key_equal(slot->record, key, key_size)) {
            *found = true;
            return i;
        }
    }
    UNREACHABLE();
}

/* Move every record into a new table of slot_count slots. Returns 0, or
 * -COHORT_ENOMEM with the table unchanged. */
static int resize(struct kv *kv, uint64_t slot_count)
{
    ASSERT(slot_count >= KV_SLOT_COUNT_MIN);
    ASSERT(kv->key_count * 4 <= slot_count * 3);
    if (slot_count > SIZE_MAX / sizeof(struct kv_slot))
        return -COHORT_ENOMEM;
    struct kv_slot *slots = calloc((size_t)slot_count, sizeof(*slots));
    if (slots == NULL)
        return -COHORT_ENOMEM;
    uint64_t mask = slot_count - 1;
    for (uint64_t i = 0; i < kv->slot_count; i++) {
        const struct kv_slot *from = &kv->slots[i];
        if (from->record == NULL)
            continue;
        uint64_t j = from->hash & mask;
        while (slots[j].record != NULL)
            j = (j + 1) & mask;
        slots[j] = *from;
    }
    free(kv->slots);
    kv->memory_size -= kv->slot_count * sizeof(struct kv_slot);
    kv->memory_size += slot_count * sizeof(struct kv_slot);
    kv->slots = slots;
    kv->slot_count = slot_count;
    kv->table_resizes++;
    return 0;
}

static bool config_valid(const struct kv_config *config)
{
    if (config->key_size_max < 1 || config->key_size_max > KV_KEY_SIZE_LIMIT)
        return false;
    if (config->value_size_max < 1 ||
        config->value_size_max > KV_VALUE_SIZE_LIMIT)
        return false;
    return config->history_count_max <= HISTORY_COUNT_LIMIT;
}

int kv_init(struct kv *kv, const struct kv_config *config)
{
    memset(kv, 0, sizeof(*kv));
    if (!config_valid(config))
        return -COHORT_EINVAL;
    kv->config = *config;
    kv->slots = calloc(KV_SLOT_COUNT_MIN, sizeof(struct kv_slot));
    if (kv->slots == NULL)
        return -COHORT_ENOMEM;
    kv->slot_count = KV_SLOT_COUNT_MIN;
    kv->memory_size = KV_SLOT_COUNT_MIN * sizeof(struct kv_slot);
    resp_buf_init(&kv->apply_reply, 2);
    acl_init(&kv->acl);
    kv_sessions_init(&kv->sessions);
    kv->sessions.view_hook = kv_changes_group_view;
    kv->sessions.view_hook_ctx = kv;
    kv_index_init(&kv->index, config->hash_seed);
    kv_expire_index_init(&kv->expiry);
    uint32_t count_max = config->history_count_max ? config->history_count_max
                                                   : HISTORY_COUNT_MAX_DEFAULT;
    uint64_t bytes_max = config->history_bytes_max ? config->history_bytes_max
                                                   : HISTORY_BYTES_MAX_DEFAULT;
    int rc = history_init(&kv->history, count_max, bytes_max);
    if (rc == 0)
        rc = history_init(&kv->changes, count_max, bytes_max);
    kv->changes.shared_positions = true;
    if (rc != 0) {
        kv_deinit(kv);
        return rc;
    }
    return 0;
}

/* Empty the hash table, freeing its records unless keep (the snapshot
 * being written took them). */
static void drop_records(struct kv *kv, bool keep)
{
    for (uint64_t i = 0; i < kv->slot_count; i++) {
        if (!keep)
            free(kv->slots[i].record);
        kv->slots[i].record = NULL;
    }
}

void kv_deinit(struct kv *kv)
{
    kv_snapshot_abort(kv);
    kv_index_clear(&kv->index);
    kv_expire_index_deinit(&kv->expiry);
    if (kv->slots != NULL)
        drop_records(kv, false);
    free(kv->slots);
    resp_buf_deinit(&kv->apply_reply);
    free(kv->txn_body);
    history_deinit(&kv->history);
    history_deinit(&kv->changes);
    kv->txn_body = NULL;
    kv->txn_body_capacity = 0;
    acl_deinit(&kv->acl);
    kv_sessions_deinit(&kv->sessions);
    memset(kv, 0, sizeof(*kv));
}

/* Remove every key, recording nothing. */
static void flush_keys(struct kv *kv)
{
    ASSERT(kv->slots != NULL);
    bool taken = kv_snapshot_take_records(kv);
    if (!taken)
        kv_index_clear(&kv->index);
    kv_expire_index_clear(&kv->expiry);
    drop_records(kv, taken);
    kv->key_count = 0;
    kv->data_size = 0;
    kv->digest_sum = 0;
    kv->expires_count = 0;
    kv->memory_size = kv->slot_count * sizeof(struct kv_slot);
    /* Give the memory back; an empty table of any size is still valid, so a
     * failed allocation here only keeps the larger one. */
    if (kv->slot_count > KV_SLOT_COUNT_MIN)
        (void)resize(kv, KV_SLOT_COUNT_MIN);
    ASSERT(kv->memory_size == kv->slot_count * sizeof(struct kv_slot));
}

void kv_flush(struct kv *kv)
{
    const struct kv_index_node *n = kv_index_seek(&kv->index, NULL, 0);
    for (; n != NULL; n = kv_index_next(n))
        kv_changes_record(kv, kv->op, KV_CHANGE_DEL, kv_record_key(n->record),
                          n->record->key_size, NULL, 0);
    flush_keys(kv);
}

void kv_clear(struct kv *kv)
{
    flush_keys(kv);
    kv->op = 0;
    history_reset(&kv->history, 0);
    history_reset(&kv->changes, 0);
    kv->time_ms = 0;
    acl_clear(&kv->acl);
    kv_sessions_clear(&kv->sessions);
    kv_addresses_clear(&kv->addresses);
    kv->addresses_changes++;
    kv->incarnation = 0;
}

const struct kv_record *kv_get(const struct kv *kv, const uint8_t *key,
                               size_t key_size)
{
    bool found;
    uint64_t i = probe(kv, key_hash(kv, key, key_size), key, key_size, &found);
    return found ? kv->slots[i].record : NULL;
}

int kv_reserve(struct kv *kv, uint64_t keys)
{
    if (keys > KV_RESERVE_KEYS_MAX)
        return -COHORT_ENOMEM;
    uint64_t slot_count = kv->slot_count;
    while (keys * 4 > slot_count * 3)
        slot_count *= 2;
    return slot_count == kv->slot_count ? 0 : resize(kv, slot_count);
}

/* Whether one more key fits: the table grows at three quarters full. */
static bool has_room(const struct kv *kv)
{
    return (kv->key_count + 1) * 4 <= kv->slot_count * 3;
}

int kv_reserve_when_full(struct kv *kv, uint64_t keys)
{
    return has_room(kv) ? 0 : kv_reserve(kv, keys);
}

/* Make room for one more key: grow at three quarters full. */
static int reserve_one(struct kv *kv)
{
    if (has_room(kv))
        return 0;
    return resize(kv, kv->slot_count * 2);
}

/* Insert a key known to be absent. Returns 0 or -COHORT_ENOMEM with the
 * store unchanged. */
static int insert_new(struct kv *kv, uint64_t hash, const uint8_t *key,
                      size_t key_size, const uint8_t *value, size_t value_size,
                      const struct kv_record *meta)
{
    if (kv->slicer != NULL)
        kv_snapshot_note_create(kv, key, key_size);
    size_t alloc_size = record_alloc_size(key_size, value_size);
    struct kv_record *r = malloc(alloc_size);
    if (r == NULL)
        return -COHORT_ENOMEM;
    int rc = reserve_one(kv);
    if (rc != 0) {
        free(r);
        return rc;
    }
    r->version = meta->version;
    r->create_op = meta->create_op;
    r->mod_op = meta->mod_op;
    r->expire_at_ms = 0;
    r->key_size = (uint32_t)key_size;
    r->value_size = (uint32_t)value_size;
    if (key_size)
        memcpy(r->data, key, key_size);
    if (value_size)
        memcpy(r->data + key_size, value, value_size);
    r->digest = record_digest(r);
    rc = kv_index_insert(&kv->index, r);
    if (rc != 0) {
        free(r);
        return rc;
    }

    bool found;
    uint64_t i = probe(kv, hash, key, key_size, &found);
    ASSERT(!found);
    kv->slots[i].hash = hash;
    kv->slots[i].record = r;
    kv->key_count++;
    kv->data_size += key_size + value_size;
    kv->memory_size += alloc_size;
    kv->digest_sum += r->digest;
    ASSERT(kv->key_count * 4 <= kv->slot_count * 3);
    return 0;
}

/* Replace the value of the record in slot as a change made by op. */
static int replace(struct kv *kv, struct kv_slot *slot, const uint8_t *value,
                   size_t value_size, uint64_t op)
{
    struct kv_record *r = slot->record;
    ASSERT(op >= r->mod_op);
    if (kv->slicer != NULL)
        kv_snapshot_note_change(kv, r);
    if (r->value_size != value_size) {
        size_t old_size = record_alloc_size(r->key_size, r->value_size);
        size_t new_size = record_alloc_size(r->key_size, value_size);
        struct kv_index_node *node =
            kv_index_find(&kv->index, kv_record_key(r), r->key_size);
        struct kv_record *moved = realloc(r, new_size);
        if (moved == NULL)
            return -COHORT_ENOMEM;
        r = moved;
        slot->record = r;
        node->record = r;
        if (r->expire_at_ms != 0)
            kv_expire_index_moved(&kv->expiry, r);
        kv->memory_size = kv->memory_size - old_size + new_size;
        kv->data_size = kv->data_size - r->value_size + value_size;
        r->value_size = (uint32_t)value_size;
    }
    if (value_size)
        memcpy(r->data + r->key_size, value, value_size);
    if (r->mod_op != op)
        r->version++;
    r->mod_op = op;
    kv->digest_sum -= r->digest;
    r->digest = record_digest(r);
    kv->digest_sum += r->digest;
    return 0;
}

int kv_put(struct kv *kv, const uint8_t *key, size_t key_size,
           const uint8_t *value, size_t value_size, uint64_t op)
{
    ASSERT(key_size <= KV_KEY_SIZE_LIMIT);
    ASSERT(value_size <= KV_VALUE_SIZE_LIMIT);
    ASSERT(op >= 1);
    ASSERT(op >= kv->op);
    uint64_t hash = key_hash(kv, key, key_size);
    bool found;
    uint64_t i = probe(kv, hash, key, key_size, &found);
    int rc;
    if (found) {
        rc = replace(kv, &kv->slots[i], value, value_size, op);
    } else {
        struct kv_record meta = {.version = 1, .create_op = op, .mod_op = op};
        rc = insert_new(kv, hash, key, key_size, value, value_size, &meta);
    }
    if (rc == 0) {
        kv->op = op;
        kv_changes_record(kv, op, KV_CHANGE_SET, key, key_size, value,
                          value_size);
    }
    return rc;
}

static bool meta_valid(const struct kv *kv, uint64_t version,
                       uint64_t create_op, uint64_t mod_op)
{
    if (version < 1 || create_op < 1)
        return false;
    if (create_op > mod_op || mod_op > kv->op)
        return false;
    return version - 1 <= mod_op - create_op;
}

int kv_insert(struct kv *kv, const uint8_t *key, size_t key_size,
              const uint8_t *value, size_t value_size, uint64_t version,
              uint64_t create_op, uint64_t mod_op)
{
    if (key_size > KV_KEY_SIZE_LIMIT || value_size > KV_VALUE_SIZE_LIMIT)
        return -COHORT_EINVAL;
    if (!meta_valid(kv, version, create_op, mod_op))
        return -COHORT_EINVAL;
    uint64_t hash = key_hash(kv, key, key_size);
    bool found;
    (void)probe(kv, hash, key, key_size, &found);
    if (found)
        return -COHORT_EEXIST;
    struct kv_record meta = {
        .version = version, .create_op = create_op, .mod_op = mod_op};
    return insert_new(kv, hash, key, key_size, value, value_size, &meta);
}

/* Empty slot hole and shift later records of its cluster back into it, so
 * that every record stays reachable from its home slot without tombstones
 * (Knuth, TAOCP vol. 3, 6.4 Algorithm R). */
static void remove_slot(struct kv *kv, uint64_t hole)
{
    uint64_t mask = kv->slot_count - 1;
    uint64_t j = hole;
    for (uint64_t n = 0; n < kv->slot_count; n++) {
        j = (j + 1) & mask;
        if (kv->slots[j].record == NULL)
            break;
        uint64_t home = kv->slots[j].hash & mask;
        /* The record at j may move to the hole unless its home lies
         * cyclically in (hole, j]. */
        bool stays =
            hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        kv->slots[hole] = kv->slots[j];
        hole = j;
    }
    kv->slots[hole].record = NULL;
    kv->slots[hole].hash = 0;
}

bool kv_expire_set(struct kv *kv, const uint8_t *key, size_t key_size,
                   uint64_t expire_at_ms)
{
    bool found;
    uint64_t i = probe(kv, key_hash(kv, key, key_size), key, key_size, &found);
    if (!found)
        return false;
    struct kv_record *r = kv->slots[i].record;
    if (kv->slicer != NULL)
        kv_snapshot_note_change(kv, r);
    uint64_t old_ms = r->expire_at_ms;
    kv->expires_count -= old_ms != 0;
    kv->expires_count += expire_at_ms != 0;
    r->expire_at_ms = expire_at_ms;
    kv_expire_index_update(&kv->expiry, r, old_ms);
    kv->digest_sum -= r->digest;
    r->digest = record_digest(r);
    kv->digest_sum += r->digest;
    return true;
}

/* Remove key, recording a change of kind. */
static bool del(struct kv *kv, const uint8_t *key, size_t key_size,
                uint8_t kind)
{
    bool found;
    uint64_t i = probe(kv, key_hash(kv, key, key_size), key, key_size, &found);
    if (!found)
        return false;
    struct kv_record *r = kv->slots[i].record;
    if (kv->slicer != NULL)
        kv_snapshot_note_change(kv, r);
    kv_changes_record(kv, kv->op, kind, key, key_size, NULL, 0);
    ASSERT(kv->key_count > 0);
    kv->key_count--;
    if (r->expire_at_ms != 0) {
        kv->expires_count--;
        kv_expire_index_remove(&kv->expiry, r);
    }
    kv->data_size -= (uint64_t)r->key_size + r->value_size;
    kv->memory_size -= record_alloc_size(r->key_size, r->value_size);
    kv->digest_sum -= r->digest;
    kv_index_remove(&kv->index, key, key_size);
    free(r);
    remove_slot(kv, i);
    /* Shrink below an eighth full; a failure keeps the larger table. */
    if (kv->slot_count > KV_SLOT_COUNT_MIN &&
        kv->key_count * 8 < kv->slot_count)
        (void)resize(kv, kv->slot_count / 2);
    return true;
}

bool kv_del(struct kv *kv, const uint8_t *key, size_t key_size)
{
    return del(kv, key, key_size, KV_CHANGE_DEL);
}

bool kv_del_expired(struct kv *kv, const uint8_t *key, size_t key_size)
{
    return del(kv, key, key_size, KV_CHANGE_EXPIRE);
}

uint64_t kv_state_hash(const struct kv *kv)
{
    uint8_t raw[56];
    put_u64(raw, kv->digest_sum);
    put_u64(raw + 8, kv->key_count);
    put_u64(raw + 16, kv->acl.digest);
    put_u64(raw + 24, kv->sessions.count);
    put_u64(raw + 32, kv->sessions.digest_sum);
    put_u64(raw + 40, kv->addresses.digest);
    put_u64(raw + 48, kv->incarnation);
    /* A store that never had an ACL change (or has no session, no
     * address, no incarnation) hashes as before the ACL (sessions,
     * addresses, incarnations) existed, so older snapshots check out. */
    size_t size = kv->acl.digest != 0 ? 24 : 16;
    if (kv->sessions.count != 0)
        size = 40;
    if (kv->addresses.count != 0)
        size = 48;
    if (kv->incarnation != 0)
        size = 56;
    return XXH3_64bits_withSeed(raw, size, KV_DIGEST_SEED);
}

uint64_t kv_record_cost(size_t key_size, size_t value_size)
{
    return record_alloc_size(key_size, value_size) + KV_SLOT_BYTES_PER_KEY;
}

uint64_t kv_used_memory(const struct kv *kv)
{
    uint64_t table = kv->slot_count * sizeof(struct kv_slot);
    ASSERT(kv->memory_size >= table);
    return kv->memory_size - table + kv->key_count * KV_SLOT_BYTES_PER_KEY;
}

void kv_stats(const struct kv *kv, struct kv_stats *stats)
{
    stats->key_count = kv->key_count;
    stats->data_size = kv->data_size;
    stats->memory_size = kv->memory_size;
    stats->slot_count = kv->slot_count;
    stats->malformed_ops = kv->malformed_ops;
    stats->expires_count = kv->expires_count;
    stats->expired_keys = kv->expired_keys;
    stats->session_count = kv->sessions.count;
    stats->sessions_expired = kv->sessions.expired;
    stats->lock_count = kv->sessions.lock_count;
    stats->group_count = kv->sessions.group_count;
}

static uint64_t reverse_bits(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    return __builtin_bswap64(v);
}

uint64_t kv_scan(const struct kv *kv, uint64_t cursor, kv_scan_fn fn, void *ctx)
{
    uint64_t mask = kv->slot_count - 1;
    uint64_t home = cursor & mask;
    uint64_t j = home;
    for (uint64_t n = 0; n < kv->slot_count; n++) {
        const struct kv_slot *s = &kv->slots[j];
        if (s->record == NULL)
            break;
        if ((s->hash & mask) == home)
            fn(ctx, s->record);
        j = (j + 1) & mask;
    }
    /* Set the bits above the mask, then add one to the reversed cursor:
     * the next bucket in reverse-binary order (Redis's dictScan). */
    cursor |= ~mask;
    cursor = reverse_bits(cursor);
    cursor++;
    return reverse_bits(cursor);
}

const struct kv_record *kv_random(const struct kv *kv, uint64_t random)
{
    if (kv->key_count == 0)
        return NULL;
    uint64_t mask = kv->slot_count - 1;
    uint64_t j = random & mask;
    while (kv->slots[j].record == NULL)
        j = (j + 1) & mask;
    return kv->slots[j].record;
}

static bool record_valid(const struct kv *kv, uint64_t i)
{
    const struct kv_slot *slot = &kv->slots[i];
    const struct kv_record *r = slot->record;
    if (slot->hash != key_hash(kv, r->data, r->key_size))
        return false;
    bool found;
    if (probe(kv, slot->hash, r->data, r->key_size, &found) != i || !found)
        return false;
    if (r->key_size > KV_KEY_SIZE_LIMIT || r->value_size > KV_VALUE_SIZE_LIMIT)
        return false;
    if (!meta_valid(kv, r->version, r->create_op, r->mod_op))
        return false;
    return r->digest == record_digest(r);
}

bool kv_invariants_hold(const struct kv *kv)
{
    uint64_t count = 0, data = 0, digests = 0, expires = 0;
    uint64_t memory = kv->slot_count * sizeof(struct kv_slot);
    if (kv->slot_count < KV_SLOT_COUNT_MIN)
        return false;
    if ((kv->slot_count & (kv->slot_count - 1)) != 0)
        return false;
    for (uint64_t i = 0; i < kv->slot_count; i++) {
        const struct kv_record *r = kv->slots[i].record;
        if (r == NULL)
            continue;
        if (!record_valid(kv, i))
            return false;
        count++;
        data += (uint64_t)r->key_size + r->value_size;
        memory += record_alloc_size(r->key_size, r->value_size);
        digests += r->digest;
        expires += r->expire_at_ms != 0;
    }
    if (!kv_index_valid(&kv->index, kv->key_count))
        return false;
    for (const struct kv_index_node *n = kv->index.head[0]; n;
         n = kv_index_next(n)) {
        const struct kv_record *r = n->record;
        if (kv_get(kv, kv_record_key(r), r->key_size) != r)
            return false;
    }
    if (expires != kv->expires_count ||
        !kv_expire_index_valid(&kv->expiry, kv->expires_count))
        return false;
    if (!kv_addresses_invariants_hold(&kv->addresses))
        return false;
    return count == kv->key_count && data == kv->data_size &&
           memory == kv->memory_size && digests == kv->digest_sum &&
           count * 4 <= kv->slot_count * 3;
}
