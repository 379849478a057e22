/* test_certs — certificates for the TLS tests, made with OpenSSL's API in a
 * temporary directory (no openssl command needed, no keys in the tree).
 *
 * test_certs_make() creates a directory holding a CA ("ca.pem") and, for each
 * replica i < count, "r<i>.pem" and "r<i>.key": a P-256 certificate signed by
 * that CA naming URI:cohort://<cluster, 16 hex digits>/replica/<i>. Further
 * certificates come from test_cert_make(): any URI, signed by the CA or by a
 * second CA of its own ("other-ca.pem"), which the replicas do not trust. */
#ifndef COHORT_TEST_CERTS_H
#define COHORT_TEST_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEST_CERTS_PATH_MAX 256

struct test_certs {
    char dir[TEST_CERTS_PATH_MAX];
};

/* Fails the test (cmocka) on any error. */
void test_certs_make(struct test_certs *c, uint64_t cluster, uint32_t count);
/* "<name>.pem" and "<name>.key" naming uri (NULL: no URI), signed by the CA
 * or, if untrusted, by the other CA. */
void test_cert_make(const struct test_certs *c, const char *name,
                    const char *uri, bool untrusted);
/* The path of a file in the directory, into out. */
const char *test_certs_path(const struct test_certs *c, const char *file,
                            char *out, size_t size);
/* Remove the directory and everything in it. */
void test_certs_remove(struct test_certs *c);

#endif
