/* Tests for peer_auth and peer_link: two links in one process (a dialer,
 * replica 1, and an acceptor, replica 0), the bytes each emits handed to the
 * other by the test, in every mode; and forgers that know less than a
 * replica does (a wrong secret, a recorded handshake, a reflected proof, a
 * certificate of another replica or another CA). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "runtime/peer_link.h"
#include "test_certs.h"

#define CLUSTER 0x1234abcdull
#define REPLICAS 3
#define ROUNDS_MAX 50

static struct test_certs certs;
static char secret_path[2][300];

static int setup(void **state)
{
    (void)state;
    test_certs_make(&certs, CLUSTER, REPLICAS);
    test_cert_make(&certs, "stranger", "cohort://000000001234abcd/replica/1",
                   true);
    const char *secrets[2] = {"correct horse battery staple\n",
                              "another cluster's secret!!\n"};
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof(name), "secret%d", i);
        test_certs_path(&certs, name, secret_path[i], sizeof(secret_path[i]));
        FILE *f = fopen(secret_path[i], "w");
        assert_non_null(f);
        fputs(secrets[i], f);
        fclose(f);
        chmod(secret_path[i], 0600);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_certs_remove(&certs);
    return 0;
}

struct files {
    char cert[300], key[300], ca[300];
};

/* A replica's peer_auth in mode; secret picks the secret file (0 or 1), or
 * for TLS the certificate name ("r<self>" when NULL). */
static struct peer_auth *auth_open_mode(enum peer_auth_mode mode, uint32_t self,
                                        int secret, struct cohort_err *err)
{
    static struct files f;
    struct peer_auth_config c = {
        .cluster_id = CLUSTER, .self = self, .replica_count = REPLICAS};
    if (mode == PEER_AUTH_SECRET)
        c.secret_file = secret_path[secret];
    if (mode == PEER_AUTH_TLS) {
        char name[32];
        snprintf(name, sizeof(name), "r%u.pem", self);
        c.tls_cert_file = test_certs_path(&certs, name, f.cert, sizeof(f.cert));
        snprintf(name, sizeof(name), "r%u.key", self);
        c.tls_key_file = test_certs_path(&certs, name, f.key, sizeof(f.key));
        c.tls_ca_file = test_certs_path(&certs, "ca.pem", f.ca, sizeof(f.ca));
    }
    char warn[300];
    return peer_auth_open(&c, warn, sizeof(warn), err);
}

static struct peer_auth *auth_new(enum peer_auth_mode mode, uint32_t self,
                                  int secret)
{
    struct cohort_err err;
    struct peer_auth *a = auth_open_mode(mode, self, secret, &err);
    if (a == NULL)
        fail_msg("peer_auth_open: %s", err.message);
    assert_int_equal(peer_auth_mode(a), mode);
    return a;
}

/* One end: a link, the plaintext it yielded, and the bytes it let pass
 * (frames after the handshake, without TLS). */
struct end {
    struct peer_link *link;
    struct peer_buf plain;
    uint8_t wire[1 << 16];
    size_t wire_size;
};

static void end_free(struct end *e)
{
    peer_link_free(e->link);
    free(e->plain.data);
    e->link = NULL;
    e->plain = (struct peer_buf){0};
}

/* Hand everything from emitted to to. Records what passed (for replay) in
 * record, if given. */
static void move(struct end *from, struct end *to, uint8_t *record,
                 size_t *record_size)
{
    uint8_t buf[1 << 16];
    size_t n = peer_link_output_take(from->link, buf, sizeof(buf));
    if (n == 0)
        return;
    if (record != NULL) {
        memcpy(record + *record_size, buf, n);
        *record_size += n;
    }
    if (peer_link_state(to->link) == PEER_LINK_FAILED)
        return;
    long used = peer_link_input(to->link, buf, n, &to->plain);
    if (used < 0)
        return;
    memcpy(to->wire + to->wire_size, buf + used, n - (size_t)used);
    to->wire_size += n - (size_t)used;
}

static bool settled(const struct end *e)
{
    enum peer_link_state s = peer_link_state(e->link);
    return s == PEER_LINK_READY || s == PEER_LINK_FAILED;
}

static void pump(struct end *d, struct end *a)
{
    for (int i = 0; i < ROUNDS_MAX; i++) {
        move(d, a, NULL, NULL);
        move(a, d, NULL, NULL);
        if (settled(d) && settled(a) && peer_link_output_size(d->link) == 0 &&
            peer_link_output_size(a->link) == 0)
            return;
    }
    fail_msg("the handshake did not settle in %d rounds", ROUNDS_MAX);
}

static void connect_pair(struct end *d, struct end *a, struct peer_auth *ad,
                         struct peer_auth *aa)
{
    memset(d, 0, sizeof(*d));
    memset(a, 0, sizeof(*a));
    d->link = peer_link_new(ad, 0, "127.0.0.1:7101", 0);
    a->link = peer_link_new(aa, PEER_LINK_NOBODY, "127.0.0.1:50000", 0);
    assert_non_null(d->link);
    assert_non_null(a->link);
    pump(d, a);
}

/* Seal a frame on the dialer; returns the bytes that go on the wire. */
static size_t seal(struct end *d, const uint8_t *payload, uint32_t size,
                   uint8_t *out)
{
    uint8_t header[PEER_LINK_HEADER_MAX];
    size_t before = peer_link_output_size(d->link);
    assert_int_equal(before, 0);
    assert_true(peer_link_seal(d->link, payload, size, header));
    size_t hs = peer_link_header_size(d->link);
    size_t n = peer_link_output_size(d->link);
    if (n > 0) { /* TLS */
        assert_true(n <= peer_link_sealed_size(d->link, size));
        return peer_link_output_take(d->link, out, n);
    }
    memcpy(out, header, hs);
    memcpy(out + hs, payload, size);
    assert_int_equal(hs + size, peer_link_sealed_size(d->link, size));
    return hs + size;
}

/* Feed wire bytes to the acceptor and open every whole frame in what it
 * yields; returns the frames opened, stopping at the first that fails (why
 * in why). */
static int open_frames(struct end *a, const uint8_t *wire, size_t n, char *why,
                       size_t why_size)
{
    struct peer_buf *in = &a->plain;
    if (n > 0) {
        long used = peer_link_input(a->link, wire, n, in);
        assert_true(used >= 0);
        if ((size_t)used < n) {
            assert_true(peer_buf_reserve(in, n - (size_t)used));
            memcpy(in->data + in->size, wire + used, n - (size_t)used);
            in->size += n - (size_t)used;
        }
    }
    size_t hs = peer_link_header_size(a->link);
    size_t off = 0;
    int opened = 0;
    why[0] = '\0';
    while (in->size - off >= hs) {
        uint32_t size = get_u32(in->data + off);
        if (in->size - off < hs + size)
            break;
        if (!peer_link_open(a->link, in->data + off, in->data + off + hs, size,
                            why, why_size))
            return opened;
        opened++;
        off += hs + size;
    }
    memmove(in->data, in->data + off, in->size - off);
    in->size -= off;
    return opened;
}

static const enum peer_auth_mode modes[] = {PEER_AUTH_NONE, PEER_AUTH_SECRET,
                                            PEER_AUTH_TLS};

static void links_complete_in_every_mode_and_carry_the_token(void **state)
{
    (void)state;
    for (size_t m = 0; m < 3; m++) {
        struct peer_auth *ad = auth_new(modes[m], 1, 0);
        struct peer_auth *aa = auth_new(modes[m], 0, 0);
        struct end d, a;
        connect_pair(&d, &a, ad, aa);
        assert_int_equal(peer_link_state(d.link), PEER_LINK_READY);
        assert_int_equal(peer_link_state(a.link), PEER_LINK_READY);
        assert_int_equal(peer_link_peer(d.link), 0);
        assert_int_equal(peer_link_peer(a.link), 1);
        /* Each side learns the other's token: the acceptor's tells the
         * dialer which process answers at the address it dialed. */
        uint8_t token[PEER_AUTH_TOKEN_SIZE], token_a[PEER_AUTH_TOKEN_SIZE];
        peer_auth_token(ad, token);
        peer_auth_token(aa, token_a);
        assert_memory_not_equal(token, token_a, sizeof(token));
        assert_memory_equal(peer_link_peer_token(a.link), token, sizeof(token));
        assert_memory_equal(peer_link_peer_token(d.link), token_a,
                            sizeof(token_a));
        assert_int_equal(d.wire_size + a.wire_size, 0);
        assert_int_equal(a.plain.size, 0);
        end_free(&d);
        end_free(&a);
        peer_auth_free(ad);
        peer_auth_free(aa);
    }
}

static void sealed_frames_open_in_order_in_every_mode(void **state)
{
    (void)state;
    static uint8_t payload[100000], wire[200000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13u);
    uint32_t sizes[] = {0, 1, 72, 16000, 16376, 16377, 100000};
    for (size_t m = 0; m < 3; m++) {
        struct peer_auth *ad = auth_new(modes[m], 1, 0);
        struct peer_auth *aa = auth_new(modes[m], 0, 0);
        struct end d, a;
        connect_pair(&d, &a, ad, aa);
        size_t total = 0;
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
            total += seal(&d, payload, sizes[k], wire + total);
        char why[200];
        /* Byte by byte at first, then the rest at once. */
        int opened = 0;
        for (size_t k = 0; k < 100; k++)
            opened += open_frames(&a, wire + k, 1, why, sizeof(why));
        opened += open_frames(&a, wire + 100, total - 100, why, sizeof(why));
        if (opened != 7)
            fail_msg("mode %s: %d frames opened: %s",
                     peer_auth_mode_name(modes[m]), opened, why);
        end_free(&d);
        end_free(&a);
        peer_auth_free(ad);
        peer_auth_free(aa);
    }
}

static void a_wrong_secret_is_refused_by_both_sides(void **state)
{
    (void)state;
    struct peer_auth *ad = auth_new(PEER_AUTH_SECRET, 1, 1);
    struct peer_auth *aa = auth_new(PEER_AUTH_SECRET, 0, 0);
    struct end d, a;
    connect_pair(&d, &a, ad, aa);
    assert_int_equal(peer_link_state(a.link), PEER_LINK_FAILED);
    assert_int_equal(peer_link_state(d.link), PEER_LINK_FAILED);
    assert_non_null(strstr(peer_link_error(a.link),
                           "did not prove it holds the cluster secret"));
    assert_non_null(strstr(peer_link_error(d.link), "127.0.0.1:7101"));
    end_free(&d);
    end_free(&a);
    peer_auth_free(ad);
    peer_auth_free(aa);
}

/* Frames cannot be altered, replayed, reordered or dropped. */
static void frames_with_a_bad_mac_fail(void **state)
{
    (void)state;
    struct peer_auth *ad = auth_new(PEER_AUTH_SECRET, 1, 0);
    struct peer_auth *aa = auth_new(PEER_AUTH_SECRET, 0, 0);
    uint8_t f[3][64];
    size_t n[3];
    const uint8_t payload[] = "PREPARE op 7";
    char why[200];
    for (int k = 0; k < 4; k++) {
        struct end d, a;
        connect_pair(&d, &a, ad, aa);
        for (int i = 0; i < 3; i++)
            n[i] = seal(&d, payload, sizeof(payload), f[i]);
        assert_int_equal(open_frames(&a, f[0], n[0], why, sizeof(why)), 1);
        if (k == 0) { /* altered */
            f[1][n[1] - 1] ^= 1;
            assert_int_equal(open_frames(&a, f[1], n[1], why, sizeof(why)), 0);
        } else if (k == 1) { /* replayed */
            assert_int_equal(open_frames(&a, f[0], n[0], why, sizeof(why)), 0);
        } else if (k == 2) { /* f1 dropped: f2 out of order */
            assert_int_equal(open_frames(&a, f[2], n[2], why, sizeof(why)), 0);
        } else { /* in order: all open */
            assert_int_equal(open_frames(&a, f[1], n[1], why, sizeof(why)), 1);
            assert_int_equal(open_frames(&a, f[2], n[2], why, sizeof(why)), 1);
        }
        if (k < 3)
            assert_non_null(strstr(why, "MAC does not match"));
        end_free(&d);
        end_free(&a);
    }
    peer_auth_free(ad);
    peer_auth_free(aa);
}

/* A forger that recorded a replica's whole handshake (and a frame after
 * it) replays it to the acceptor: the acceptor's new nonce makes the
 * recorded proof worthless. */
static void a_recorded_handshake_cannot_be_replayed(void **state)
{
    (void)state;
    struct peer_auth *ad = auth_new(PEER_AUTH_SECRET, 1, 0);
    struct peer_auth *aa = auth_new(PEER_AUTH_SECRET, 0, 0);
    struct end d, a;
    memset(&d, 0, sizeof(d));
    memset(&a, 0, sizeof(a));
    d.link = peer_link_new(ad, 0, "127.0.0.1:7101", 0);
    a.link = peer_link_new(aa, PEER_LINK_NOBODY, "127.0.0.1:50000", 0);
    static uint8_t record[4096];
    size_t record_size = 0;
    for (int i = 0; i < 5; i++) {
        move(&d, &a, record, &record_size);
        move(&a, &d, NULL, NULL);
    }
    assert_int_equal(peer_link_state(a.link), PEER_LINK_READY);
    record_size += seal(&d, (const uint8_t *)"x", 1, record + record_size);
    struct end a2;
    memset(&a2, 0, sizeof(a2));
    a2.link = peer_link_new(aa, PEER_LINK_NOBODY, "127.0.0.1:50001", 0);
    assert_true(peer_link_input(a2.link, record, record_size, &a2.plain) < 0);
    assert_non_null(strstr(peer_link_error(a2.link), "did not prove"));
    end_free(&d);
    end_free(&a);
    end_free(&a2);
    peer_auth_free(ad);
    peer_auth_free(aa);
}

/* A forger sends its own HELLO as replica 1, then hands the acceptor's
 * own proof back as its AUTH: the roles differ, so it fails. */
static void a_reflected_proof_is_refused(void **state)
{
    (void)state;
    struct peer_auth *aa = auth_new(PEER_AUTH_SECRET, 0, 0);
    struct end a;
    memset(&a, 0, sizeof(a));
    a.link = peer_link_new(aa, PEER_LINK_NOBODY, "127.0.0.1:50000", 0);
    uint8_t hello[PEER_LINK_HELLO_SIZE] = {0};
    put_u32(hello, PEER_LINK_MAGIC);
    put_u32(hello + 4, PEER_LINK_VERSION);
    put_u64(hello + 8, CLUSTER);
    put_u32(hello + 16, 1);
    put_u32(hello + 20, REPLICAS);
    put_u32(hello + 24, PEER_AUTH_SECRET);
    assert_int_equal(peer_link_input(a.link, hello, sizeof(hello), &a.plain),
                     (long)sizeof(hello));
    uint8_t out[PEER_LINK_HELLO_SIZE + PEER_LINK_AUTH_SIZE];
    assert_int_equal(peer_link_output_take(a.link, out, sizeof(out)),
                     sizeof(out));
    const uint8_t *their_auth = out + PEER_LINK_HELLO_SIZE;
    assert_true(
        peer_link_input(a.link, their_auth, PEER_LINK_AUTH_SIZE, &a.plain) < 0);
    assert_non_null(strstr(peer_link_error(a.link), "did not prove"));
    end_free(&a);
    peer_auth_free(aa);
}

static void hellos_that_do_not_fit_are_refused_with_the_fix(void **state)
{
    (void)state;
    struct peer_auth *aa = auth_new(PEER_AUTH_SECRET, 0, 0);
    struct {
        uint32_t offset, value;
        uint32_t send; /* bytes sent: the refusal comes without the rest */
        const char *want;
    } cases[] = {
        {0, 0x4f4c4c45, 4, "did not send a cohort peer handshake"},
        {4, 2, 8, "speaks peer protocol version 2 but we speak 3"},
        {16, 7, 48, "claims replica id 7 but ids go 0..2"},
        {16, 0, 48, "which is us"},
        {20, 5, 48, "says the group has 5 replicas"},
        {24, PEER_AUTH_NONE, 48,
         "authenticates peers with none but we use cluster-secret"},
        {24, PEER_AUTH_TLS, 48, "with mtls but we use cluster-secret"},
        {24, 9, 48, "an unknown method"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t hello[PEER_LINK_HELLO_SIZE] = {0};
        put_u32(hello, PEER_LINK_MAGIC);
        put_u32(hello + 4, PEER_LINK_VERSION);
        put_u64(hello + 8, CLUSTER);
        put_u32(hello + 16, 1);
        put_u32(hello + 20, REPLICAS);
        put_u32(hello + 24, PEER_AUTH_SECRET);
        put_u32(hello + cases[i].offset, cases[i].value);
        struct peer_buf plain = {0};
        struct peer_link *l = peer_link_new(aa, PEER_LINK_NOBODY, "x:1", 0);
        assert_true(peer_link_input(l, hello, cases[i].send, &plain) < 0);
        if (strstr(peer_link_error(l), cases[i].want) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, peer_link_error(l),
                     cases[i].want);
        /* Our HELLO only: no AUTH for a peer whose HELLO failed. */
        assert_int_equal(peer_link_output_size(l), PEER_LINK_HELLO_SIZE);
        peer_link_free(l);
    }
    peer_auth_free(aa);
}

/* Two replicas whose data belong to different group incarnations refuse
 * each other, on both sides, naming the fix; a side that knows none yet
 * (0, or a version before incarnations) is let in, and the peer's tag is
 * kept for the transport's later check. */
static void hellos_of_another_incarnation_are_refused(void **state)
{
    (void)state;
    struct {
        uint64_t dialer, acceptor;
        bool ready;
    } cases[] = {
        {0x1111222233334444ull, 0x1111222233334444ull, true},
        {0, 0x1111222233334444ull, true},
        {0x1111222233334444ull, 0, true},
        {0, 0, true},
        {0x1111222233334444ull, 0x5555666677778888ull, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peer_auth *ad = auth_new(PEER_AUTH_SECRET, 1, 0);
        struct peer_auth *aa = auth_new(PEER_AUTH_SECRET, 0, 0);
        struct end d, a;
        memset(&d, 0, sizeof(d));
        memset(&a, 0, sizeof(a));
        d.link = peer_link_new(ad, 0, "127.0.0.1:7101", cases[i].dialer);
        a.link = peer_link_new(aa, PEER_LINK_NOBODY, "127.0.0.1:50000",
                               cases[i].acceptor);
        pump(&d, &a);
        enum peer_link_state want =
            cases[i].ready ? PEER_LINK_READY : PEER_LINK_FAILED;
        if (peer_link_state(d.link) != want || peer_link_state(a.link) != want)
            fail_msg("case %zu: states %d and %d", i, peer_link_state(d.link),
                     peer_link_state(a.link));
        if (cases[i].ready) {
            assert_int_equal(peer_link_peer_incarnation(a.link),
                             peer_link_incarnation_tag(cases[i].dialer));
            assert_int_equal(peer_link_peer_incarnation(d.link),
                             peer_link_incarnation_tag(cases[i].acceptor));
        } else {
            assert_non_null(strstr(peer_link_error(a.link),
                                   "another incarnation of this cluster"));
            assert_non_null(strstr(peer_link_error(a.link), "cohort remove 1"));
            assert_non_null(
                strstr(peer_link_error(d.link), "127.0.0.1:7101 (replica 0)"));
        }
        end_free(&d);
        end_free(&a);
        peer_auth_free(ad);
        peer_auth_free(aa);
    }
    /* The tag: 0 only for 0, folded from both halves. */
    assert_int_equal(peer_link_incarnation_tag(0), 0);
    assert_int_equal(peer_link_incarnation_tag(0x0000000100000001ull), 1);
    assert_int_equal(peer_link_incarnation_tag(0x1234567800000000ull),
                     0x12345678u);
}

/* A forger holding a certificate signed by the CA for replica 2 claims to
 * be replica 1; one with a certificate from another CA claims replica 1
 * too. */
static void certificates_that_do_not_name_the_hello_are_refused(void **state)
{
    (void)state;
    struct peer_auth *aa = auth_new(PEER_AUTH_TLS, 0, 0);
    const char *names[] = {"r2", "stranger"};
    const char *want[] = {"its certificate names "
                          "cohort://000000001234abcd/replica/2, not "
                          "cohort://000000001234abcd/replica/1",
                          "certificate"};
    for (int k = 0; k < 2; k++) {
        struct files f;
        char name[32];
        snprintf(name, sizeof(name), "%s.pem", names[k]);
        test_certs_path(&certs, name, f.cert, sizeof(f.cert));
        snprintf(name, sizeof(name), "%s.key", names[k]);
        test_certs_path(&certs, name, f.key, sizeof(f.key));
        test_certs_path(&certs, "ca.pem", f.ca, sizeof(f.ca));
        struct tls_files tf = {f.cert, f.key, f.ca, true};
        struct cohort_err err;
        struct tls_context *ctx = tls_context_open(&tf, TLS_CLIENT, &err);
        assert_non_null(ctx);
        struct tls_session *forger = tls_session_new(ctx);
        struct peer_link *l = peer_link_new(aa, PEER_LINK_NOBODY, "x:1", 0);
        struct peer_buf plain = {0};
        uint8_t hello[PEER_LINK_HELLO_SIZE] = {0};
        put_u32(hello, PEER_LINK_MAGIC);
        put_u32(hello + 4, PEER_LINK_VERSION);
        put_u64(hello + 8, CLUSTER);
        put_u32(hello + 16, 1);
        put_u32(hello + 20, REPLICAS);
        put_u32(hello + 24, PEER_AUTH_TLS);
        assert_true(peer_link_input(l, hello, sizeof(hello), &plain) >= 0);
        uint8_t buf[1 << 16];
        size_t n = peer_link_output_take(l, buf, sizeof(buf)); /* HELLO */
        assert_int_equal(n, PEER_LINK_HELLO_SIZE);
        for (int round = 0; round < ROUNDS_MAX; round++) {
            if (tls_handshake(forger, &err) < 0)
                break;
            n = tls_output_take(forger, buf, sizeof(buf));
            if (n > 0 && peer_link_input(l, buf, n, &plain) < 0)
                break;
            n = peer_link_output_take(l, buf, sizeof(buf));
            tls_feed(forger, buf, n);
        }
        assert_int_equal(peer_link_state(l), PEER_LINK_FAILED);
        if (strstr(peer_link_error(l), want[k]) == NULL)
            fail_msg("'%s' lacks '%s'", peer_link_error(l), want[k]);
        peer_link_free(l);
        free(plain.data);
        tls_session_free(forger);
        tls_context_free(ctx);
    }
    peer_auth_free(aa);
}

static void bad_configurations_are_one_line_errors(void **state)
{
    (void)state;
    char short_path[300], r1[2][300], ca[300];
    test_certs_path(&certs, "short", short_path, sizeof(short_path));
    FILE *f = fopen(short_path, "w");
    fputs("tooshort\n", f);
    fclose(f);
    test_certs_path(&certs, "r1.pem", r1[0], sizeof(r1[0]));
    test_certs_path(&certs, "r1.key", r1[1], sizeof(r1[1]));
    test_certs_path(&certs, "ca.pem", ca, sizeof(ca));
    struct {
        struct peer_auth_config c;
        const char *want;
    } cases[] = {
        {{.secret_file = short_path}, "holds 8 bytes; use at least 16"},
        {{.secret_file = "/nonexistent/secret"}, "/nonexistent/secret"},
        {{.secret_file = secret_path[0], .tls_ca_file = ca}, "one of them"},
        {{.tls_cert_file = r1[0], .tls_key_file = r1[1]},
         "--peer-tls-ca-cert-file is missing"},
        {{.tls_cert_file = r1[0], .tls_key_file = r1[1], .tls_ca_file = ca},
         "does not name this replica: its certificate needs the subject "
         "alternative name URI:cohort://000000001234abcd/replica/0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peer_auth_config c = cases[i].c;
        c.cluster_id = CLUSTER;
        c.self = 0;
        c.replica_count = REPLICAS;
        char warn[300];
        struct cohort_err err;
        assert_null(peer_auth_open(&c, warn, sizeof(warn), &err));
        assert_int_equal(err.code, -COHORT_ECONFIG);
        if (strstr(err.message, cases[i].want) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err.message,
                     cases[i].want);
    }
    /* A secret others can read works, with a warning. */
    chmod(short_path, 0644);
    f = fopen(short_path, "w");
    fputs("0123456789abcdef0123\n", f);
    fclose(f);
    struct peer_auth_config c = {.cluster_id = CLUSTER,
                                 .self = 0,
                                 .replica_count = REPLICAS,
                                 .secret_file = short_path};
    char warn[300];
    struct cohort_err err;
    struct peer_auth *a = peer_auth_open(&c, warn, sizeof(warn), &err);
    assert_non_null(a);
    assert_non_null(strstr(warn, "can be read by other users (mode 0644)"));
    peer_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(links_complete_in_every_mode_and_carry_the_token),
        cmocka_unit_test(sealed_frames_open_in_order_in_every_mode),
        cmocka_unit_test(a_wrong_secret_is_refused_by_both_sides),
        cmocka_unit_test(frames_with_a_bad_mac_fail),
        cmocka_unit_test(a_recorded_handshake_cannot_be_replayed),
        cmocka_unit_test(a_reflected_proof_is_refused),
        cmocka_unit_test(hellos_that_do_not_fit_are_refused_with_the_fix),
        cmocka_unit_test(hellos_of_another_incarnation_are_refused),
        cmocka_unit_test(certificates_that_do_not_name_the_hello_are_refused),
        cmocka_unit_test(bad_configurations_are_one_line_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
