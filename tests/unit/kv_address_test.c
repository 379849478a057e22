/* The replicas' address table in the store's state (kv/address.h): the
 * KV_CMD_ADDRESS op applied from the log (sets, replaces, refuses bad ids,
 * addresses and hostile bodies), the change counter, the state hash,
 * snapshots (formats 9 to 16 only while the table has an entry; a
 * corrupted or hostile section refused) and FLUSHALL leaving it alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "kv/address.h"
#include "kv/command.h"
#include "kv/kv.h"
#include "kv/snapshot.h"
#include "kv_run.h"

/* Apply the ADDRESS op kv_address_encode() builds: its reply. */
static const char *set_address(struct kv_run *t, uint32_t id, const char *peer,
                               const char *client)
{
    uint8_t body[KV_ADDRESS_BODY_MAX];
    size_t n = kv_address_encode(id, peer, client, body, sizeof(body));
    assert_true(n > 0);
    return kv_run_apply(t, 1000, body, n);
}

static void assert_address(const struct kv *kv, uint32_t id, const char *peer,
                           const char *client)
{
    const char *p = NULL, *c = NULL;
    assert_true(kv_address_get(kv, id, &p, &c));
    assert_string_equal(p, peer);
    assert_string_equal(c, client);
}

static void apply_sets_and_replaces(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    uint64_t empty_hash = kv_state_hash(&t.kv);
    uint64_t changes = kv_address_changes(&t.kv);
    for (uint32_t id = 0; id < COHORT_REPLICAS_MAX; id++)
        assert_false(kv_address_get(&t.kv, id, NULL, NULL));
    assert_false(kv_address_get(&t.kv, COHORT_REPLICAS_MAX, NULL, NULL));

    assert_string_equal(set_address(&t, 2, "10.0.0.2:7000", "10.0.0.2:6379"),
                        "+OK\r\n");
    assert_int_equal(kv_address_changes(&t.kv), changes + 1);
    assert_address(&t.kv, 2, "10.0.0.2:7000", "10.0.0.2:6379");
    assert_false(kv_address_get(&t.kv, 1, NULL, NULL));
    assert_int_equal(t.kv.addresses.count, 1);
    uint64_t hash = kv_state_hash(&t.kv);
    assert_int_not_equal(hash, empty_hash); /* the table is state */

    /* Replacing: the new pair, the same count, another hash. */
    assert_string_equal(set_address(&t, 2, "[::1]:7002", "host-b:6380"),
                        "+OK\r\n");
    assert_int_equal(kv_address_changes(&t.kv), changes + 2);
    assert_address(&t.kv, 2, "[::1]:7002", "host-b:6380");
    assert_int_equal(t.kv.addresses.count, 1);
    assert_int_not_equal(kv_state_hash(&t.kv), hash);
    /* A shorter address leaves nothing of the longer one behind. */
    assert_string_equal(set_address(&t, 2, "a:1", "b:2"), "+OK\r\n");
    assert_address(&t.kv, 2, "a:1", "b:2");

    /* Every id, the largest addresses. */
    char longest[KV_ADDRESS_MAX + 1];
    memset(longest, 'h', KV_ADDRESS_MAX);
    longest[KV_ADDRESS_MAX - 5] = ':';
    longest[KV_ADDRESS_MAX] = '\0';
    for (uint32_t id = 0; id < COHORT_REPLICAS_MAX; id++)
        assert_string_equal(set_address(&t, id, longest, "c:1"), "+OK\r\n");
    assert_int_equal(t.kv.addresses.count, COHORT_REPLICAS_MAX);
    assert_address(&t.kv, COHORT_REPLICAS_MAX - 1, longest, "c:1");

    /* Two replicas applying the same ops hold the same table and hash. */
    struct kv_run u;
    kv_run_init(&u, NULL);
    for (uint32_t id = COHORT_REPLICAS_MAX; id-- > 0;)
        set_address(&u, id, longest, "c:1");
    assert_int_equal(kv_state_hash(&u.kv), kv_state_hash(&t.kv));
    assert_int_equal(t.kv.malformed_ops, 0);
    kv_run_deinit(&u);
    kv_run_deinit(&t);
}

static void addresses_are_validated(void **s)
{
    (void)s;
    assert_true(kv_address_valid("127.0.0.1:7000"));
    assert_true(kv_address_valid("[fe80::1%eth0]:1"));
    assert_true(kv_address_valid(":"));
    assert_false(kv_address_valid(NULL));
    assert_false(kv_address_valid(""));
    assert_false(kv_address_valid("localhost"));   /* no ':' */
    assert_false(kv_address_valid("a b:1"));       /* space */
    assert_false(kv_address_valid("a:1,b:2"));     /* comma */
    assert_false(kv_address_valid("a:1\t"));       /* control */
    assert_false(kv_address_valid("a:\x7f"));      /* DEL */
    assert_false(kv_address_valid("h\xc3\xa9:1")); /* not ASCII */
    char text[KV_ADDRESS_MAX + 2];
    memset(text, 'a', sizeof(text));
    text[0] = ':';
    text[KV_ADDRESS_MAX] = '\0';
    assert_true(kv_address_valid(text));
    text[KV_ADDRESS_MAX] = 'a';
    text[KV_ADDRESS_MAX + 1] = '\0';
    assert_false(kv_address_valid(text)); /* 256 bytes */

    uint8_t body[KV_ADDRESS_BODY_MAX];
    size_t n = kv_address_encode(0, "a:1", "b:2", body, sizeof(body));
    assert_int_equal(n, KV_COMMAND_HEADER_SIZE + 4 + 4 + 4 + 3 + 4 + 3);
    assert_int_equal(kv_address_encode(0, "a:1", "b:2", body, n), n);
    assert_int_equal(kv_address_encode(0, "a:1", "b:2", body, n - 1), 0);
    assert_int_equal(kv_address_encode(0, "a:1", "b:2", NULL, 0), 0);
    assert_int_equal(kv_address_encode(COHORT_REPLICAS_MAX, "a:1", "b:2", body,
                                       sizeof(body)),
                     0);
    assert_int_equal(kv_address_encode(0, "a", "b:2", body, sizeof(body)), 0);
    assert_int_equal(kv_address_encode(0, "a:1", "b,c:2", body, sizeof(body)),
                     0);
    assert_int_equal(kv_address_encode(0, "a:1", text, body, sizeof(body)), 0);

    /* No client command name reaches the op. */
    struct resp_arg name = {"address", 7};
    assert_int_equal(kv_command_class(&name), KV_CLASS_NONE);
    name = (struct resp_arg){"cohort.address", 14};
    assert_int_equal(kv_command_class(&name), KV_CLASS_NONE);
}

/* A body framed as kv/command.h says, with any arguments: what a hostile
 * log may hold. */
static size_t frame(uint8_t *out, size_t cap, uint16_t flags, uint32_t argc,
                    const struct resp_arg *args)
{
    struct writer w = writer_make(out, cap);
    writer_u8(&w, KV_COMMAND_FORMAT);
    writer_u8(&w, KV_CMD_ADDRESS);
    writer_u16(&w, flags);
    writer_u32(&w, argc);
    for (uint32_t i = 0; i < argc; i++) {
        writer_u32(&w, (uint32_t)args[i].size);
        writer_bytes(&w, args[i].ptr, args[i].size);
    }
    assert_true(w.ok);
    return cap - w.left;
}

/* Apply body and check it was refused as malformed: an error reply,
 * counted, and the table, its hash and the change counter untouched. */
static void assert_refused(struct kv_run *t, const uint8_t *body, size_t size,
                           const char *why)
{
    uint64_t hash = kv_state_hash(&t->kv);
    uint64_t changes = kv_address_changes(&t->kv);
    uint64_t malformed = t->kv.malformed_ops;
    struct kv_address_entry before[COHORT_REPLICAS_MAX];
    uint32_t count = t->kv.addresses.count;
    memcpy(before, t->kv.addresses.entries, sizeof(before));
    const char *reply = kv_run_apply(t, 1000, body, size);
    if (strncmp(reply, "-ERR malformed", 14) != 0 || !strstr(reply, why))
        fail_msg("expected a malformed error with \"%s\", got \"%s\"", why,
                 reply);
    assert_int_equal(t->kv.malformed_ops, malformed + 1);
    assert_int_equal(kv_state_hash(&t->kv), hash);
    assert_int_equal(kv_address_changes(&t->kv), changes);
    assert_int_equal(t->kv.addresses.count, count);
    assert_memory_equal(t->kv.addresses.entries, before, sizeof(before));
}

static void bad_ids_and_addresses_in_the_log_are_refused(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    set_address(&t, 1, "a:1", "b:2");
    uint8_t body[1024];
    uint8_t id1[4], id7[4], idbig[4];
    put_u32(id1, 1);
    put_u32(id7, COHORT_REPLICAS_MAX);
    put_u32(idbig, UINT32_MAX);
    char longest[KV_ADDRESS_MAX + 2];
    memset(longest, 'x', sizeof(longest));
    longest[0] = ':';
    struct {
        struct resp_arg args[3];
        const char *why;
    } cases[] = {
        {{{(char *)id7, 4}, {"c:1", 3}, {"d:2", 3}}, "replica id out of range"},
        {{{(char *)idbig, 4}, {"c:1", 3}, {"d:2", 3}},
         "replica id out of range"},
        {{{(char *)id1, 3}, {"c:1", 3}, {"d:2", 3}}, "not 4 bytes"},
        {{{"\1\0\0\0\0", 5}, {"c:1", 3}, {"d:2", 3}}, "not 4 bytes"},
        {{{(char *)id1, 4}, {"", 0}, {"d:2", 3}}, "invalid peer address"},
        {{{(char *)id1, 4}, {"c1", 2}, {"d:2", 3}}, "invalid peer address"},
        {{{(char *)id1, 4}, {"c:1", 3}, {"d 2:1", 5}},
         "invalid client address"},
        {{{(char *)id1, 4}, {"c:1", 3}, {"d:2,e:3", 7}},
         "invalid client address"},
        {{{(char *)id1, 4}, {"c:\0", 3}, {"d:2", 3}}, "invalid peer address"},
        {{{(char *)id1, 4}, {longest, KV_ADDRESS_MAX + 1}, {"d:2", 3}},
         "invalid peer address"},
        {{{(char *)id1, 4}, {"c:1", 3}, {longest, KV_ADDRESS_MAX + 1}},
         "invalid client address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = frame(body, sizeof(body), 0, 3, cases[i].args);
        assert_refused(&t, body, n, cases[i].why);
    }
    assert_address(&t.kv, 1, "a:1", "b:2");
    assert_int_equal(t.kv.addresses.count, 1);
    kv_run_deinit(&t);
}

static void malformed_bodies_are_counted_not_asserted(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    set_address(&t, 3, "a:1", "b:2");
    uint8_t good[KV_ADDRESS_BODY_MAX];
    size_t good_size = kv_address_encode(4, "c:3", "d:4", good, sizeof(good));
    assert_true(good_size > 0);
    /* Every truncation of a good body. */
    for (size_t cut = 0; cut < good_size; cut++)
        assert_refused(&t, good, cut, "malformed");
    /* A trailing byte. */
    uint8_t body[1024];
    memcpy(body, good, good_size);
    body[good_size] = 0;
    assert_refused(&t, body, good_size + 1, "trailing bytes");
    /* A length far beyond the body (the last argument's). */
    memcpy(body, good, good_size);
    put_u32(body + good_size - 3 - 4, UINT32_MAX);
    assert_refused(&t, body, good_size, "truncated");
    put_u32(body + good_size - 3 - 4, 4);
    assert_refused(&t, body, good_size, "truncated");
    /* The id argument's length too. */
    memcpy(body, good, good_size);
    put_u32(body + KV_COMMAND_HEADER_SIZE, 0x80000000u);
    assert_refused(&t, body, good_size, "truncated");
    /* An argument count of 4G. */
    memcpy(body, good, good_size);
    put_u32(body + 4, UINT32_MAX);
    assert_refused(&t, body, good_size, "ADDRESS needs 3 arguments");
    /* Flags, and the wrong number of arguments, framed well. */
    uint8_t id[4];
    put_u32(id, 4);
    const struct resp_arg args[4] = {
        {(char *)id, 4}, {"c:3", 3}, {"d:4", 3}, {"e:5", 3}};
    size_t n = frame(body, sizeof(body), 1, 3, args);
    assert_refused(&t, body, n, "flags on ADDRESS");
    n = frame(body, sizeof(body), 0, 2, args);
    assert_refused(&t, body, n, "ADDRESS needs 3 arguments");
    n = frame(body, sizeof(body), 0, 4, args);
    assert_refused(&t, body, n, "ADDRESS needs 3 arguments");
    n = frame(body, sizeof(body), 0, 0, args);
    assert_refused(&t, body, n, "ADDRESS needs 3 arguments");
    /* The good body still applies. */
    assert_string_equal(kv_run_apply(&t, 1000, good, good_size), "+OK\r\n");
    assert_address(&t.kv, 4, "c:3", "d:4");
    assert_address(&t.kv, 3, "a:1", "b:2");
    kv_run_deinit(&t);
}

static struct kv_run_buf snap;

static uint16_t snapshot(const struct kv *kv)
{
    return kv_run_snapshot(kv, &snap);
}

static int restore(struct kv *kv, struct cohort_err *err)
{
    return kv_run_restore(kv, &snap, err);
}

static void snapshots_keep_the_table(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    assert_int_equal(snapshot(&t.kv), 1); /* no entry: the old format */
    size_t old_size = snap.size;
    set_address(&t, 0, "p0:7000", "c0:6379");
    set_address(&t, 5, "p5:7005", "c5:6384");
    assert_int_equal(snapshot(&t.kv), 9);
    /* The table is one section before the trailer. */
    size_t section = 8 + kv_addresses_encoded_size(&t.kv.addresses) + 4;
    assert_int_equal(snap.size, old_size + section);
    assert_memory_equal(snap.data + old_size - 16, "CKAD", 4);

    struct kv copy;
    struct kv_config config = t.kv.config;
    assert_int_equal(kv_init(&copy, &config), 0);
    uint64_t changes = kv_address_changes(&copy);
    struct cohort_err err;
    assert_int_equal(restore(&copy, &err), 0);
    assert_true(kv_address_changes(&copy) > changes);
    assert_int_equal(kv_state_hash(&copy), kv_state_hash(&t.kv));
    assert_true(kv_invariants_hold(&copy));
    assert_address(&copy, 0, "p0:7000", "c0:6379");
    assert_address(&copy, 5, "p5:7005", "c5:6384");
    assert_false(kv_address_get(&copy, 1, NULL, NULL));
    assert_int_equal(copy.addresses.count, 2);
    /* The copy writes the same bytes. */
    struct kv_run_buf first = snap;
    snapshot(&copy);
    assert_int_equal(snap.size, first.size);
    assert_memory_equal(snap.data, first.data, snap.size);

    /* With users, expiries and a session the bits add up: 16. */
    kv_run_line(&t, 1000, "ACL SETUSER carol on >pw ~k* +get");
    kv_run_line(&t, 1000, "SET e v PX 100000");
    kv_run_line(&t, 1000, "COHORT.SESSION OPEN 5000");
    assert_int_equal(snapshot(&t.kv), 16);
    assert_int_equal(restore(&copy, &err), 0);
    assert_int_equal(kv_state_hash(&copy), kv_state_hash(&t.kv));
    assert_address(&copy, 5, "p5:7005", "c5:6384");

    /* Restoring a snapshot without the table empties it, and counts. */
    struct kv_run plain;
    kv_run_init(&plain, NULL);
    kv_run_line(&plain, 1000, "SET k v");
    assert_int_equal(snapshot(&plain.kv), 1);
    changes = kv_address_changes(&copy);
    assert_int_equal(restore(&copy, &err), 0);
    assert_int_equal(copy.addresses.count, 0);
    assert_false(kv_address_get(&copy, 0, NULL, NULL));
    assert_true(kv_address_changes(&copy) > changes);
    assert_int_equal(kv_state_hash(&copy), kv_state_hash(&plain.kv));
    kv_run_deinit(&plain);
    kv_deinit(&copy);
    kv_run_deinit(&t);
}

/* Restore of the snapshot in snap fails, naming why, and leaves the store
 * empty. */
static void assert_restore_refused(struct kv *kv, const char *why)
{
    struct cohort_err err;
    assert_int_equal(restore(kv, &err), -COHORT_ECORRUPT);
    if (!strstr(err.message, why))
        fail_msg("expected \"%s\" in \"%s\"", why, err.message);
    assert_int_equal(kv->op, 0);
    assert_int_equal(kv->key_count, 0);
    assert_int_equal(kv->addresses.count, 0);
    assert_true(kv_invariants_hold(kv));
}

/* Replace the payload of the snapshot's address section (which starts at
 * section_at) with size bytes of data, claiming claimed_size, with a right
 * checksum: what a hostile peer could send. The trailer follows, unchanged
 * (restore stops before it). */
static void rewrite_section(size_t section_at, const uint8_t *data, size_t size,
                            uint32_t claimed_size)
{
    uint8_t trailer[16];
    memcpy(trailer, snap.data + snap.size - 16, 16);
    uint8_t *h = snap.data + section_at;
    put_u32(h + 4, claimed_size);
    memcpy(h + 8, data, size);
    put_u32(h + 8 + size, crc32c(crc32c(0, h, 8), data, size));
    memcpy(h + 8 + size + 4, trailer, 16);
    snap.size = section_at + 8 + size + 4 + 16;
}

static void corrupted_sections_are_refused(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    set_address(&t, 1, "p1:7001", "c1:6380");
    set_address(&t, 2, "p2:7002", "c2:6381");
    assert_int_equal(snapshot(&t.kv), 9);
    struct kv_run_buf good = snap;
    size_t payload = kv_addresses_encoded_size(&t.kv.addresses);
    size_t section_at = good.size - 16 - (8 + payload + 4);
    assert_memory_equal(good.data + section_at, "CKAD", 4);
    struct kv kv;
    assert_int_equal(kv_init(&kv, &t.kv.config), 0);

    /* Any flipped bit in the section is caught by the section's checks. */
    for (size_t i = section_at; i < section_at + 8 + payload + 4; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            snap = good;
            snap.data[i] ^= (uint8_t)(1u << bit);
            struct cohort_err err;
            assert_int_equal(restore(&kv, &err), -COHORT_ECORRUPT);
            assert_non_null(strstr(err.message, "address table"));
            assert_int_equal(kv.addresses.count, 0);
        }
    }
    /* Truncated inside the section. */
    for (size_t cut = section_at; cut < good.size - 16; cut++) {
        snap = good;
        snap.size = cut;
        assert_restore_refused(&kv, "truncated");
    }

    /* Hostile payloads behind a good checksum. */
    uint8_t p[KV_ADDRESSES_ENCODED_MAX + 64];
    struct writer w;
#define ENTRY(id, peer, client)                                                \
    do {                                                                       \
        writer_u32(&w, (id));                                                  \
        writer_u32(&w, (uint32_t)strlen(peer));                                \
        writer_bytes(&w, (peer), strlen(peer));                                \
        writer_u32(&w, (uint32_t)strlen(client));                              \
        writer_bytes(&w, (client), strlen(client));                            \
    } while (0)
#define HOSTILE(why)                                                           \
    do {                                                                       \
        assert_true(w.ok);                                                     \
        snap = good;                                                           \
        size_t n_ = sizeof(p) - w.left;                                        \
        rewrite_section(section_at, p, n_, (uint32_t)n_);                      \
        assert_restore_refused(&kv, (why));                                    \
    } while (0)

    /* First: the rewriter itself gives a good snapshot back. */
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 2);
    ENTRY(1, "p1:7001", "c1:6380");
    ENTRY(2, "p2:7002", "c2:6381");
    snap = good;
    rewrite_section(section_at, p, sizeof(p) - w.left,
                    (uint32_t)(sizeof(p) - w.left));
    assert_memory_equal(snap.data, good.data, good.size);

    w = writer_make(p, sizeof(p));
    writer_u32(&w, 0);
    HOSTILE("count out of range");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, COHORT_REPLICAS_MAX + 1);
    HOSTILE("count out of range");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 3); /* one entry more than present */
    ENTRY(1, "p1:7001", "c1:6380");
    ENTRY(2, "p2:7002", "c2:6381");
    HOSTILE("address table truncated");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1); /* one entry fewer */
    ENTRY(1, "p1:7001", "c1:6380");
    ENTRY(2, "p2:7002", "c2:6381");
    HOSTILE("trailing bytes");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 2);
    ENTRY(2, "p2:7002", "c2:6381");
    ENTRY(1, "p1:7001", "c1:6380");
    HOSTILE("out of order or repeated");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 2);
    ENTRY(1, "p1:7001", "c1:6380");
    ENTRY(1, "p2:7002", "c2:6381");
    HOSTILE("out of order or repeated");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1);
    ENTRY(COHORT_REPLICAS_MAX, "p1:7001", "c1:6380");
    HOSTILE("id out of range");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1);
    ENTRY(1, "", "c1:6380");
    HOSTILE("invalid peer address");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1);
    ENTRY(1, "p1:7001", "c1 6380");
    HOSTILE("invalid client address");
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1);
    ENTRY(1, "p1:7001", "c1,:6380");
    HOSTILE("invalid client address");
    char longest[KV_ADDRESS_MAX + 2];
    memset(longest, 'x', KV_ADDRESS_MAX + 1);
    longest[0] = ':';
    longest[KV_ADDRESS_MAX + 1] = '\0';
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1);
    ENTRY(1, longest, "c1:6380");
    HOSTILE("invalid peer address");
    /* A size field of 4G inside the payload. */
    w = writer_make(p, sizeof(p));
    writer_u32(&w, 1);
    writer_u32(&w, 1);
    writer_u32(&w, UINT32_MAX);
    writer_bytes(&w, "p1:7001", 7);
    HOSTILE("address table truncated");
    /* A section size over the largest table: refused before reading. */
    snap = good;
    put_u32(snap.data + section_at + 4, KV_ADDRESSES_ENCODED_MAX + 1);
    assert_restore_refused(&kv, "the address table: too large");
    snap = good;
    put_u32(snap.data + section_at + 4, UINT32_MAX);
    assert_restore_refused(&kv, "the address table: too large");
    /* A bad magic. */
    snap = good;
    memcpy(snap.data + section_at, "CKAX", 4);
    assert_restore_refused(&kv, "bad magic of the address table");
#undef ENTRY
#undef HOSTILE

    /* And the good one still loads. */
    snap = good;
    struct cohort_err err;
    assert_int_equal(restore(&kv, &err), 0);
    assert_address(&kv, 2, "p2:7002", "c2:6381");
    kv_deinit(&kv);
    kv_run_deinit(&t);
}

static void flushall_keeps_the_table(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET k v");
    set_address(&t, 6, "p6:7006", "c6:6385");
    uint64_t changes = kv_address_changes(&t.kv);
    assert_string_equal(kv_run_line(&t, 1000, "FLUSHALL"), "+OK\r\n");
    assert_int_equal(t.kv.key_count, 0);
    assert_address(&t.kv, 6, "p6:7006", "c6:6385");
    assert_int_equal(kv_address_changes(&t.kv), changes);
    assert_string_equal(kv_run_line(&t, 1000, "FLUSHDB"), "+OK\r\n");
    assert_address(&t.kv, 6, "p6:7006", "c6:6385");
    /* kv_clear() (a restore's first step) does empty it, and counts. */
    kv_clear(&t.kv);
    assert_false(kv_address_get(&t.kv, 6, NULL, NULL));
    assert_int_equal(kv_address_changes(&t.kv), changes + 1);
    assert_true(kv_invariants_hold(&t.kv));
    kv_run_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apply_sets_and_replaces),
        cmocka_unit_test(addresses_are_validated),
        cmocka_unit_test(bad_ids_and_addresses_in_the_log_are_refused),
        cmocka_unit_test(malformed_bodies_are_counted_not_asserted),
        cmocka_unit_test(snapshots_keep_the_table),
        cmocka_unit_test(corrupted_sections_are_refused),
        cmocka_unit_test(flushall_keeps_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
