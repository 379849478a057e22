/* message_decode() against the rules in core/message.h: for every type a
 * well-formed message decodes, and each way a peer could get one field
 * wrong (a range, commit above op, a view above VIEW_MAX, a last normal view
 * above the view, a field the type does not use, an entry run that does
 * not end where the type says) is refused. The core (replica.c) drops and
 * counts what this refuses; replica_test checks that end of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "core/message.h"

#define REPLICAS 3

/* Header offsets (message.h). */
#define AT_VIEW 8
#define AT_LNV 16
#define AT_OP 24
#define AT_COMMIT 32
#define AT_VIEW_OP 40
#define AT_BASE_OP 56
#define AT_COUNT 72
#define AT_MAGIC 76

/* A well-formed message of each type, as the senders in src/core make
 * them (no entries: the entry checks have their own cases below). */
static struct message valid(enum message_type type)
{
    struct message m = {.type = (uint8_t)type, .from = 1, .view = 6};
    switch (type) {
    case MSG_PREPARE:
        m.op = 5, m.commit = 3, m.view_op = 2, m.base_op = 5;
        m.checksum = 77;
        break;
    case MSG_PREPARE_OK:
        m.op = 5, m.checksum = 77;
        break;
    case MSG_COMMIT:
        m.op = 5, m.commit = 5, m.view_op = 2, m.checksum = 77;
        break;
    case MSG_START_VIEW_CHANGE:
        break;
    case MSG_DO_VIEW_CHANGE:
        m.last_normal_view = 4, m.op = 4, m.commit = 4, m.base_op = 4;
        m.checksum = 77;
        break;
    case MSG_START_VIEW:
        m.op = 4, m.commit = 3, m.view_op = 4, m.base_op = 4;
        m.checksum = 77;
        break;
    case MSG_GET_STATE:
        m.commit = 3, m.base_op = 4, m.checksum = 77, m.nonce = 9;
        break;
    case MSG_NEW_STATE:
        m.status = 1, m.op = 5, m.commit = 4, m.view_op = 2, m.base_op = 5;
        m.checksum = 77, m.nonce = 9;
        break;
    case MSG_RECOVERY_RESPONSE:
        m.status = 1, m.flags = MSG_FLAG_INTACT, m.last_normal_view = 4;
        m.op = 5, m.commit = 4, m.nonce = 9;
        break;
    case MSG_RECOVERY:
    case MSG_PING:
    case MSG_PONG:
        m.nonce = 9;
        break;
    case MSG_START_EPOCH:
    case MSG_NEW_EPOCH:
        m.epoch = 2, m.view = 0, m.op = 5, m.checksum = 77, m.nonce = 0x2103;
        break;
    case MSG_EPOCH_STARTED:
        m.epoch = 2, m.view = 0, m.op = 5;
        break;
    }
    return m;
}

static size_t encode(const struct message *m, uint8_t *buf, size_t size)
{
    size_t n = message_encode(m, NULL, buf, size);
    assert_true(n > 0);
    return n;
}

static bool decodes(const uint8_t *buf, size_t n)
{
    struct message out;
    return message_decode(buf, n, REPLICAS, &out);
}

static void every_type_decodes_as_its_sender_makes_it(void **state)
{
    (void)state;
    for (int t = 1; t <= MSG_TYPE_MAX; t++) {
        struct message m = valid((enum message_type)t);
        uint8_t buf[MESSAGE_HEADER_SIZE];
        size_t n = encode(&m, buf, sizeof(buf));
        struct message out;
        assert_true(message_decode(buf, n, REPLICAS, &out));
        assert_int_equal(out.type, t);
        assert_int_equal(out.view, m.view);
        assert_int_equal(out.op, m.op);
        assert_int_equal(out.commit, m.commit);
    }
}

/* One field of a valid message of `type` set to `value` (the raw u64 at
 * `at`, so that values message_encode() refuses can be written too). */
struct forged {
    const char *what;
    enum message_type type;
    unsigned at;
    uint64_t value;
};

static const struct forged forgeries[] = {
    /* Issue 17: commit above op crashed the receiver of a DVC. */
    {"DO-VIEW-CHANGE commit above op", MSG_DO_VIEW_CHANGE, AT_COMMIT, 9},
    {"DO-VIEW-CHANGE base_op not its commit", MSG_DO_VIEW_CHANGE, AT_BASE_OP,
     3},
    {"DO-VIEW-CHANGE op past its entries", MSG_DO_VIEW_CHANGE, AT_OP, 8},
    {"DO-VIEW-CHANGE last normal view above view", MSG_DO_VIEW_CHANGE, AT_LNV,
     7},
    {"PREPARE commit above op", MSG_PREPARE, AT_COMMIT, 6},
    {"PREPARE view_op above op", MSG_PREPARE, AT_VIEW_OP, 6},
    {"PREPARE entries past op", MSG_PREPARE, AT_BASE_OP, 6},
    {"COMMIT commit above op", MSG_COMMIT, AT_COMMIT, 6},
    {"COMMIT view_op above op", MSG_COMMIT, AT_VIEW_OP, 6},
    {"START-VIEW commit above op", MSG_START_VIEW, AT_COMMIT, 5},
    {"START-VIEW view_op above op", MSG_START_VIEW, AT_VIEW_OP, 5},
    {"START-VIEW op past its entries", MSG_START_VIEW, AT_OP, 5},
    {"GET-STATE commit above base_op", MSG_GET_STATE, AT_COMMIT, 5},
    {"NEW-STATE commit above op", MSG_NEW_STATE, AT_COMMIT, 6},
    {"NEW-STATE entries past op", MSG_NEW_STATE, AT_BASE_OP, 6},
    {"RECOVERY-RESPONSE commit above op", MSG_RECOVERY_RESPONSE, AT_COMMIT, 6},
    {"RECOVERY-RESPONSE last normal view above view", MSG_RECOVERY_RESPONSE,
     AT_LNV, 7},
    /* Issue 17: a vote for view 2^32 - 1 wrapped; views are 64-bit now,
     * and above VIEW_MAX they are refused. */
    {"START-VIEW-CHANGE view above VIEW_MAX", MSG_START_VIEW_CHANGE, AT_VIEW,
     VIEW_MAX + 1},
    {"START-VIEW-CHANGE view UINT64_MAX", MSG_START_VIEW_CHANGE, AT_VIEW,
     UINT64_MAX},
    {"START-VIEW-CHANGE for view 0", MSG_START_VIEW_CHANGE, AT_VIEW, 0},
    {"PING view above VIEW_MAX", MSG_PING, AT_VIEW, VIEW_MAX + 1},
    {"PREPARE op above ENTRY_OP_MAX", MSG_PREPARE, AT_OP, ENTRY_OP_MAX + 1},
    {"COMMIT op above ENTRY_OP_MAX", MSG_COMMIT, AT_OP, UINT64_MAX},
    {"NEW-STATE base_op above ENTRY_OP_MAX", MSG_NEW_STATE, AT_BASE_OP,
     ENTRY_OP_MAX + 1},
    /* Fields a type does not use are zero. */
    {"START-VIEW-CHANGE with an op", MSG_START_VIEW_CHANGE, AT_OP, 1},
    {"PREPARE-OK with a commit", MSG_PREPARE_OK, AT_COMMIT, 1},
    {"PING with a last normal view", MSG_PING, AT_LNV, 1},
    {"RECOVERY with a base_op", MSG_RECOVERY, AT_BASE_OP, 1},
    {"COMMIT with an entry count", MSG_COMMIT, AT_COUNT, 1},
    /* Sizes: entries announced but not carried. */
    {"PREPARE with entries it does not carry", MSG_PREPARE, AT_COUNT, 1},
    {"NEW-STATE claiming 2^32 - 1 entries", MSG_NEW_STATE, AT_COUNT,
     UINT32_MAX},
    {"a message of another protocol version", MSG_PING, AT_MAGIC, 0x31434f43u},
    /* Epochs: the first view of an epoch is 0, E is an op, and only the
     * START/NEW_EPOCH types carry a membership. */
    {"START-EPOCH for view 1", MSG_START_EPOCH, AT_VIEW, 1},
    {"NEW-EPOCH at op 0", MSG_NEW_EPOCH, AT_OP, 0},
    {"EPOCH-STARTED with a commit", MSG_EPOCH_STARTED, AT_COMMIT, 1},
};

static void each_forged_field_is_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(forgeries) / sizeof(forgeries[0]); i++) {
        const struct forged *f = &forgeries[i];
        struct message m = valid(f->type);
        uint8_t buf[MESSAGE_HEADER_SIZE];
        size_t n = encode(&m, buf, sizeof(buf));
        assert_true(decodes(buf, n));
        if (f->at == AT_COUNT || f->at == AT_MAGIC)
            put_u32(buf + f->at, (uint32_t)f->value);
        else
            put_u64(buf + f->at, f->value);
        if (decodes(buf, n))
            fail_msg("decoded: %s", f->what);
    }
}

/* The byte-sized fields: type, sender, status, flags. */
static void bad_type_sender_status_and_flags_are_refused(void **state)
{
    (void)state;
    uint8_t buf[MESSAGE_HEADER_SIZE];
    struct message m = valid(MSG_RECOVERY_RESPONSE);
    size_t n = encode(&m, buf, sizeof(buf));
    const struct {
        unsigned at;
        uint8_t value;
    } cases[] = {
        {0, 0},                /* type 0 */
        {0, MSG_TYPE_MAX + 1}, /* no such type */
        {1, REPLICAS},         /* sender beyond the group */
        {2, 0},                /* status missing */
        {2, 4},                /* no such status */
        {3, 0x80},             /* an unknown flag */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t copy[MESSAGE_HEADER_SIZE];
        memcpy(copy, buf, n);
        copy[cases[i].at] = cases[i].value;
        if (decodes(copy, n))
            fail_msg("decoded with byte %u = %u", cases[i].at, cases[i].value);
    }
    m = valid(MSG_NEW_STATE);
    m.flags = MSG_FLAG_INTACT; /* a RECOVERY-RESPONSE flag */
    n = encode(&m, buf, sizeof(buf));
    assert_false(decodes(buf, n));
    m = valid(MSG_GET_STATE);
    m.flags = MSG_FLAG_CATCH_UP; /* its one flag */
    n = encode(&m, buf, sizeof(buf));
    assert_true(decodes(buf, n));
    m.flags = MSG_FLAG_SNAPSHOT; /* NEW-STATE's */
    n = encode(&m, buf, sizeof(buf));
    assert_false(decodes(buf, n));
    m = valid(MSG_RECOVERY);
    m.flags = MSG_FLAG_SPARE; /* its one flag: a spare asks to be added */
    n = encode(&m, buf, sizeof(buf));
    assert_true(decodes(buf, n));
    m.flags = MSG_FLAG_SPARE | MSG_FLAG_INTACT; /* RECOVERY-RESPONSE's */
    n = encode(&m, buf, sizeof(buf));
    assert_false(decodes(buf, n));
    m = valid(MSG_RECOVERY_RESPONSE);
    m.flags = MSG_FLAG_SPARE; /* RECOVERY's */
    n = encode(&m, buf, sizeof(buf));
    assert_false(decodes(buf, n));
    /* A vote and a DO-VIEW-CHANGE may say the primary resigned; no other
     * type, and no other flag on those two. */
    const uint8_t view_change[] = {MSG_START_VIEW_CHANGE, MSG_DO_VIEW_CHANGE};
    for (size_t i = 0; i < sizeof(view_change); i++) {
        m = valid(view_change[i]);
        m.flags = MSG_FLAG_RESIGNED;
        n = encode(&m, buf, sizeof(buf));
        assert_true(decodes(buf, n));
        m.flags = MSG_FLAG_RESIGNED | MSG_FLAG_SPARE;
        n = encode(&m, buf, sizeof(buf));
        assert_false(decodes(buf, n));
        m.flags = MSG_FLAG_INTACT;
        n = encode(&m, buf, sizeof(buf));
        assert_false(decodes(buf, n));
    }
    const uint8_t others[] = {MSG_PREPARE, MSG_START_VIEW, MSG_PING,
                              MSG_RECOVERY};
    for (size_t i = 0; i < sizeof(others); i++) {
        m = valid(others[i]);
        m.flags = MSG_FLAG_RESIGNED;
        n = encode(&m, buf, sizeof(buf));
        assert_false(decodes(buf, n));
    }
    m = valid(MSG_START_EPOCH);
    m.epoch = 0; /* no epoch starts at 0 */
    n = encode(&m, buf, sizeof(buf));
    assert_false(decodes(buf, n));
}

static struct entry entry_at(uint64_t op, uint64_t parent, uint64_t view)
{
    struct entry e = {.h = {.parent = parent,
                            .op = op,
                            .client_id = 1,
                            .request_no = op,
                            .view = view,
                            .kind = ENTRY_CLIENT}};
    entry_seal(&e.h, NULL);
    return e;
}

/* Write entry e (no body) over the k-th entry of an encoded message. */
static void put_entry(uint8_t *buf, uint32_t k, const struct entry *e)
{
    entry_header_encode(&e->h, buf + MESSAGE_HEADER_SIZE +
                                   (size_t)k * ENTRY_HEADER_SIZE);
}

/* Entries: a DVC carries exactly commit+1..op, the chain holds, and each
 * entry header is in range (views up to VIEW_MAX, a client entry names its
 * client). Each bad entry below is sealed, so only the rule is broken. */
static void entry_runs_must_match_the_header(void **state)
{
    (void)state;
    uint8_t buf[MESSAGE_HEADER_SIZE + 4 * ENTRY_HEADER_SIZE];
    struct message m = valid(MSG_DO_VIEW_CHANGE);
    m.commit = m.base_op = 2;
    m.op = 4;
    m.entry_count = 2;
    struct entry e[2];
    e[0] = entry_at(3, m.checksum, 4);
    e[1] = entry_at(4, e[0].h.checksum, 4);
    size_t n = message_encode(&m, e, buf, sizeof(buf));
    assert_true(n > 0);
    assert_true(decodes(buf, n));
    uint8_t good[sizeof(buf)];
    memcpy(good, buf, n);
    /* One entry fewer than op - commit. */
    put_u32(buf + AT_COUNT, 1);
    assert_false(decodes(buf, n - ENTRY_HEADER_SIZE));
    const struct entry bad[] = {
        entry_at(4, 12345, 4),                      /* a broken chain */
        entry_at(5, e[0].h.checksum, 4),            /* not the next op */
        entry_at(4, e[0].h.checksum, VIEW_MAX + 1), /* a view too high */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(buf, good, n);
        put_entry(buf, 1, &bad[i]);
        assert_false(decodes(buf, n));
    }
    struct entry anonymous = entry_at(4, e[0].h.checksum, 4);
    anonymous.h.client_id = 0; /* a client entry without a client */
    entry_seal(&anonymous.h, NULL);
    memcpy(buf, good, n);
    put_entry(buf, 1, &anonymous);
    assert_false(decodes(buf, n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_decodes_as_its_sender_makes_it),
        cmocka_unit_test(each_forged_field_is_refused),
        cmocka_unit_test(bad_type_sender_status_and_flags_are_refused),
        cmocka_unit_test(entry_runs_must_match_the_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
