/* Tests for tls: a client and a server session in one process, the bytes
 * each writes handed to the other by the test (no sockets), with
 * certificates made by test_certs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/tls.h"
#include "test_certs.h"

#define CLUSTER 0xc0ffee
#define PUMP_ROUNDS_MAX 50
#define BIG_SIZE (100 * 1024)

static struct test_certs certs;

static int setup(void **state)
{
    (void)state;
    test_certs_make(&certs, CLUSTER, 2);
    test_cert_make(&certs, "stranger", "cohort://0000000000c0ffee/replica/1",
                   true);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_certs_remove(&certs);
    return 0;
}

struct paths {
    char cert[300], key[300], ca[300];
};

static struct tls_files files_for(struct paths *p, const char *name,
                                  bool verify_peer)
{
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    test_certs_path(&certs, file, p->cert, sizeof(p->cert));
    snprintf(file, sizeof(file), "%s.key", name);
    test_certs_path(&certs, file, p->key, sizeof(p->key));
    test_certs_path(&certs, "ca.pem", p->ca, sizeof(p->ca));
    struct tls_files f = {p->cert, p->key, p->ca, verify_peer};
    return f;
}

static struct tls_context *context(const char *name, enum tls_role role)
{
    struct paths p;
    struct tls_files f = files_for(&p, name, true);
    struct cohort_err err;
    struct tls_context *ctx = tls_context_open(&f, role, &err);
    if (ctx == NULL)
        fail_msg("tls_context_open(%s): %s", name, err.message);
    return ctx;
}

/* Move what from wrote to to. */
static void move(struct tls_session *from, struct tls_session *to)
{
    uint8_t buf[8192];
    size_t n;
    while ((n = tls_output_take(from, buf, sizeof(buf))) > 0)
        assert_int_equal(tls_feed(to, buf, n), 0);
}

/* Run both handshakes to the end. Returns 1 when both completed, or the
 * first failure's code, with its message in err. */
static int pump(struct tls_session *client, struct tls_session *server,
                struct cohort_err *err)
{
    for (int round = 0; round < PUMP_ROUNDS_MAX; round++) {
        int c = tls_handshake(client, err);
        if (c < 0)
            return c;
        move(client, server);
        int s = tls_handshake(server, err);
        if (s < 0)
            return s;
        move(server, client);
        if (c == 1 && s == 1)
            return 1;
    }
    fail_msg("the handshake did not finish in %d rounds", PUMP_ROUNDS_MAX);
    return -1;
}

/* Read everything available into out; returns the count. */
static size_t read_all(struct tls_session *s, uint8_t *out, size_t cap)
{
    struct cohort_err err;
    size_t got = 0;
    long n;
    while ((n = tls_read(s, out + got, cap - got, &err)) > 0)
        got += (size_t)n;
    assert_true(n == 0);
    return got;
}

static void handshake_then_data_both_ways_and_peer_names(void **state)
{
    (void)state;
    struct tls_context *cc = context("r1", TLS_CLIENT);
    struct tls_context *sc = context("r0", TLS_SERVER);
    struct tls_session *client = tls_session_new(cc);
    struct tls_session *server = tls_session_new(sc);
    /* Sessions hold their own reference: the contexts may go. */
    tls_context_free(cc);
    tls_context_free(sc);
    struct cohort_err err;
    assert_int_equal(pump(client, server, &err), 1);
    char uri[128];
    assert_true(tls_session_peer_uri(server, "cohort://", uri, sizeof(uri)));
    assert_string_equal(uri, "cohort://0000000000c0ffee/replica/1");
    assert_true(tls_session_peer_uri(client, "cohort://", uri, sizeof(uri)));
    assert_string_equal(uri, "cohort://0000000000c0ffee/replica/0");
    assert_false(tls_session_peer_uri(client, "https://", uri, sizeof(uri)));

    static uint8_t big[BIG_SIZE], got[BIG_SIZE];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7u);
    assert_int_equal(tls_write(client, big, sizeof(big), &err), 0);
    assert_true(tls_output_size(client) > sizeof(big));
    move(client, server);
    assert_int_equal(read_all(server, got, sizeof(got)), sizeof(big));
    assert_memory_equal(got, big, sizeof(big));
    assert_int_equal(tls_write(server, (const uint8_t *)"pong", 4, &err), 0);
    move(server, client);
    assert_int_equal(read_all(client, got, sizeof(got)), 4);
    assert_memory_equal(got, "pong", 4);
    tls_session_free(client);
    tls_session_free(server);
}

static void a_byte_changed_on_the_way_fails_the_read(void **state)
{
    (void)state;
    struct tls_context *cc = context("r1", TLS_CLIENT);
    struct tls_context *sc = context("r0", TLS_SERVER);
    struct tls_session *client = tls_session_new(cc);
    struct tls_session *server = tls_session_new(sc);
    struct cohort_err err;
    assert_int_equal(pump(client, server, &err), 1);
    assert_int_equal(tls_write(client, (const uint8_t *)"hello", 5, &err), 0);
    uint8_t wire[256];
    size_t n = tls_output_take(client, wire, sizeof(wire));
    assert_true(n > 10);
    wire[n - 3] ^= 1;
    assert_int_equal(tls_feed(server, wire, n), 0);
    uint8_t out[16];
    assert_true(tls_read(server, out, sizeof(out), &err) < 0);
    assert_non_null(strstr(err.message, "TLS read"));
    tls_session_free(client);
    tls_session_free(server);
    tls_context_free(cc);
    tls_context_free(sc);
}

/* A certificate from a CA the other side does not trust fails the
 * handshake, with the verification error in the message. */
static void untrusted_certificates_fail_the_handshake(void **state)
{
    (void)state;
    struct tls_context *stranger_c = context("stranger", TLS_CLIENT);
    struct tls_context *stranger_s = context("stranger", TLS_SERVER);
    struct tls_context *cc = context("r1", TLS_CLIENT);
    struct tls_context *sc = context("r0", TLS_SERVER);
    struct {
        struct tls_context *client, *server;
    } cases[] = {{stranger_c, sc}, {cc, stranger_s}};
    for (size_t i = 0; i < 2; i++) {
        struct tls_session *client = tls_session_new(cases[i].client);
        struct tls_session *server = tls_session_new(cases[i].server);
        struct cohort_err err;
        assert_true(pump(client, server, &err) < 0);
        if (strstr(err.message, "certificate") == NULL)
            fail_msg("case %zu: '%s' does not mention the certificate", i,
                     err.message);
        tls_session_free(client);
        tls_session_free(server);
    }
    tls_context_free(stranger_c);
    tls_context_free(stranger_s);
    tls_context_free(cc);
    tls_context_free(sc);
}

static void
a_server_that_verifies_refuses_a_client_without_a_certificate(void **state)
{
    (void)state;
    struct paths p;
    struct tls_files f = files_for(&p, "r1", true);
    f.cert_file = NULL;
    f.key_file = NULL;
    struct cohort_err err;
    struct tls_context *cc = tls_context_open(&f, TLS_CLIENT, &err);
    assert_non_null(cc);
    struct tls_context *sc = context("r0", TLS_SERVER);
    struct tls_session *client = tls_session_new(cc);
    struct tls_session *server = tls_session_new(sc);
    assert_true(pump(client, server, &err) < 0);
    tls_session_free(client);
    tls_session_free(server);
    tls_context_free(cc);
    tls_context_free(sc);
}

static void bad_files_are_one_line_errors_naming_the_file(void **state)
{
    (void)state;
    struct paths p;
    struct tls_files f = files_for(&p, "r0", true);
    struct cohort_err err;
    f.cert_file = "/nonexistent/cert.pem";
    assert_null(tls_context_open(&f, TLS_SERVER, &err));
    assert_int_equal(err.code, -COHORT_ECONFIG);
    assert_non_null(strstr(err.message, "/nonexistent/cert.pem"));
    assert_null(strchr(err.message, '\n'));

    struct paths q;
    struct tls_files g = files_for(&q, "r1", true);
    f = files_for(&p, "r0", true);
    f.key_file = g.key_file; /* another certificate's key */
    assert_null(tls_context_open(&f, TLS_SERVER, &err));
    if (strstr(err.message, "does not match") == NULL)
        fail_msg("%s", err.message);

    f = files_for(&p, "r0", true);
    f.ca_file = "/nonexistent/ca.pem";
    assert_null(tls_context_open(&f, TLS_SERVER, &err));
    assert_non_null(strstr(err.message, "/nonexistent/ca.pem"));
}

static void a_context_names_its_own_certificate(void **state)
{
    (void)state;
    struct tls_context *ctx = context("r1", TLS_SERVER);
    char uri[128];
    assert_true(tls_context_uri(ctx, "cohort://", uri, sizeof(uri)));
    assert_string_equal(uri, "cohort://0000000000c0ffee/replica/1");
    char tiny[8];
    assert_false(tls_context_uri(ctx, "cohort://", tiny, sizeof(tiny)));
    tls_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_then_data_both_ways_and_peer_names),
        cmocka_unit_test(a_byte_changed_on_the_way_fails_the_read),
        cmocka_unit_test(untrusted_certificates_fail_the_handshake),
        cmocka_unit_test(
            a_server_that_verifies_refuses_a_client_without_a_certificate),
        cmocka_unit_test(bad_files_are_one_line_errors_naming_the_file),
        cmocka_unit_test(a_context_names_its_own_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
