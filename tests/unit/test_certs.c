/* test_certs — see test_certs.h. */
#include "test_certs.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

const char *test_certs_path(const struct test_certs *c, const char *file,
                            char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", c->dir, file);
    assert_true(n > 0 && (size_t)n < size);
    return out;
}

static EVP_PKEY *key_new(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    return key;
}

static void write_key(const struct test_certs *c, const char *name,
                      EVP_PKEY *key)
{
    char path[TEST_CERTS_PATH_MAX + 32];
    char file[64];
    snprintf(file, sizeof(file), "%s.key", name);
    FILE *f = fopen(test_certs_path(c, file, path, sizeof(path)), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL),
                     1);
    fclose(f);
}

static void write_cert(const struct test_certs *c, const char *name, X509 *cert)
{
    char path[TEST_CERTS_PATH_MAX + 32];
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    FILE *f = fopen(test_certs_path(c, file, path, sizeof(path)), "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, cert), 1);
    fclose(f);
}

static EVP_PKEY *read_key(const struct test_certs *c, const char *name)
{
    char path[TEST_CERTS_PATH_MAX + 32];
    char file[64];
    snprintf(file, sizeof(file), "%s.key", name);
    FILE *f = fopen(test_certs_path(c, file, path, sizeof(path)), "r");
    assert_non_null(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(key);
    return key;
}

static X509 *read_cert(const struct test_certs *c, const char *name)
{
    char path[TEST_CERTS_PATH_MAX + 32];
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    FILE *f = fopen(test_certs_path(c, file, path, sizeof(path)), "r");
    assert_non_null(f);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(cert);
    return cert;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A certificate for key named cn, signed by issuer_key (self-signed when
 * issuer is NULL). */
static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer,
                      EVP_PKEY *issuer_key, const char *uri, bool ca)
{
    static long serial = 1;
    X509 *cert = X509_new();
    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 365);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer ? issuer : cert;
    if (ca) {
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert, signer, NID_basic_constraints, "CA:FALSE");
    }
    if (uri != NULL) {
        char san[200];
        snprintf(san, sizeof(san), "URI:%s", uri);
        add_ext(cert, signer, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) >
                0);
    return cert;
}

static void ca_make(const struct test_certs *c, const char *name)
{
    EVP_PKEY *key = key_new();
    X509 *cert = cert_new(key, name, NULL, NULL, NULL, true);
    write_key(c, name, key);
    write_cert(c, name, cert);
    X509_free(cert);
    EVP_PKEY_free(key);
}

void test_cert_make(const struct test_certs *c, const char *name,
                    const char *uri, bool untrusted)
{
    const char *ca_name = untrusted ? "other-ca" : "ca";
    X509 *ca = read_cert(c, ca_name);
    EVP_PKEY *ca_key = read_key(c, ca_name);
    EVP_PKEY *key = key_new();
    X509 *cert = cert_new(key, name, ca, ca_key, uri, false);
    write_key(c, name, key);
    write_cert(c, name, cert);
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
}

void test_certs_make(struct test_certs *c, uint64_t cluster, uint32_t count)
{
    snprintf(c->dir, sizeof(c->dir), "/tmp/cohort-certs-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    ca_make(c, "ca");
    ca_make(c, "other-ca");
    for (uint32_t i = 0; i < count; i++) {
        char name[16], uri[80];
        snprintf(name, sizeof(name), "r%u", i);
        snprintf(uri, sizeof(uri), "cohort://%016" PRIx64 "/replica/%u",
                 cluster, i);
        test_cert_make(c, name, uri, false);
    }
}

void test_certs_remove(struct test_certs *c)
{
    char cmd[TEST_CERTS_PATH_MAX + 16];
    if (c->dir[0] == '\0' || strncmp(c->dir, "/tmp/cohort-certs-", 18) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", c->dir);
    int rc = system(cmd);
    (void)rc;
    c->dir[0] = '\0';
}
