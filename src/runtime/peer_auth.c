/* peer_auth — the peer authentication mode, its keys and its crypto. See
 * peer_auth.h.
 *
 * Invariants: (1) exactly one mode, fixed at open; (2) in SECRET mode the
 * secret is at least PEER_AUTH_SECRET_MIN bytes; (3) in TLS mode our own
 * certificate names this replica of this cluster, checked at open so that a
 * wrong certificate is a start-up error, not a group that never connects.
 */
#include "runtime/peer_auth.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/assert.h"
#include "common/bytes.h"

struct peer_auth {
    enum peer_auth_mode mode;
    uint64_t cluster_id;
    uint32_t self;
    uint32_t replica_count;
    uint8_t token[PEER_AUTH_TOKEN_SIZE];
    uint8_t secret[PEER_AUTH_SECRET_MAX];
    size_t secret_size;
    char source[256]; /* the secret file or the CA file, for the log */
    EVP_MAC *hmac;
    struct tls_context *tls_client;
    struct tls_context *tls_server;
};

struct peer_mac {
    EVP_MAC_CTX *ctx;
};

int peer_auth_random(void *out, size_t size, struct cohort_err *err)
{
    uint8_t *p = out;
    while (size > 0) {
        ssize_t n = getrandom(p, size, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_sys(err, errno, "getrandom for the peer handshake");
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

bool peer_auth_equal(const void *a, const void *b, size_t size)
{
    return CRYPTO_memcmp(a, b, size) == 0;
}

bool peer_auth_loopback(const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        const uint8_t *b = (const uint8_t *)&in->sin_addr.s_addr;
        return b[0] == 127;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    const uint8_t *b = in6->sin6_addr.s6_addr;
    if (memcmp(b, mapped, sizeof(mapped)) == 0)
        return b[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

/* ---- the secret file ----------------------------------------------------- */

/* Read the secret, without trailing whitespace (a newline from an editor or
 * `openssl rand -hex 32 >file`). */
static int secret_load(struct peer_auth *a, const char *path, char *warn,
                       size_t warn_size, struct cohort_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return err_set(err, -COHORT_ECONFIG,
                       "--cluster-secret-file %s: %s; create it with "
                       "`openssl rand -hex 32 > %s` and copy it to every "
                       "replica",
                       path, strerror(errno), path);
    size_t n = fread(a->secret, 1, sizeof(a->secret), f);
    int more = fgetc(f);
    struct stat st;
    bool loose = fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0;
    fclose(f);
    while (n > 0 && (a->secret[n - 1] == '\n' || a->secret[n - 1] == '\r' ||
                     a->secret[n - 1] == ' ' || a->secret[n - 1] == '\t'))
        n--;
    if (more != EOF)
        return err_set(err, -COHORT_ECONFIG,
                       "--cluster-secret-file %s is over %u bytes; a secret "
                       "of 32 random bytes is plenty (`openssl rand -hex 32`)",
                       path, PEER_AUTH_SECRET_MAX);
    if (n < PEER_AUTH_SECRET_MIN)
        return err_set(err, -COHORT_ECONFIG,
                       "--cluster-secret-file %s holds %zu bytes; use at "
                       "least %u random bytes, e.g. `openssl rand -hex 32 > "
                       "%s`",
                       path, n, PEER_AUTH_SECRET_MIN, path);
    a->secret_size = n;
    snprintf(a->source, sizeof(a->source), "%s", path);
    if (loose)
        snprintf(warn, warn_size,
                 "--cluster-secret-file %s can be read by other users (mode "
                 "%04o): chmod 600 %s",
                 path, (unsigned)(st.st_mode & 0777), path);
    return 0;
}

/* ---- TLS ----------------------------------------------------------------- */

static int tls_load(struct peer_auth *a, const struct peer_auth_config *c,
                    struct cohort_err *err)
{
    const char *missing = c->tls_cert_file == NULL  ? "--peer-tls-cert-file"
                          : c->tls_key_file == NULL ? "--peer-tls-key-file"
                                                    : "--peer-tls-ca-cert-file";
    if (c->tls_cert_file == NULL || c->tls_key_file == NULL ||
        c->tls_ca_file == NULL)
        return err_set(err, -COHORT_ECONFIG,
                       "peer TLS needs --peer-tls-cert-file, "
                       "--peer-tls-key-file and --peer-tls-ca-cert-file; "
                       "%s is missing",
                       missing);
    struct tls_files files = {
        .cert_file = c->tls_cert_file,
        .key_file = c->tls_key_file,
        .ca_file = c->tls_ca_file,
        .verify_peer = true,
    };
    a->tls_client = tls_context_open(&files, TLS_CLIENT, err);
    if (a->tls_client != NULL)
        a->tls_server = tls_context_open(&files, TLS_SERVER, err);
    if (a->tls_server == NULL)
        return err_wrap(err, "peer TLS");
    char want[PEER_AUTH_URI_MAX], have[256];
    peer_auth_uri(a, a->self, want, sizeof(want));
    if (!tls_context_uri(a->tls_client, want, have, sizeof(have)) ||
        strcmp(have, want) != 0)
        return err_set(err, -COHORT_ECONFIG,
                       "--peer-tls-cert-file %s does not name this replica: "
                       "its certificate needs the subject alternative name "
                       "URI:%s (the cluster part is cluster-id, which "
                       "--cluster-id sets)",
                       c->tls_cert_file, want);
    snprintf(a->source, sizeof(a->source), "%s", c->tls_ca_file);
    return 0;
}

/* ---- open ---------------------------------------------------------------- */

static int auth_setup(struct peer_auth *a, const struct peer_auth_config *c,
                      char *warn, size_t warn_size, struct cohort_err *err)
{
    bool tls = c->tls_cert_file != NULL || c->tls_key_file != NULL ||
               c->tls_ca_file != NULL;
    if (tls && c->secret_file != NULL)
        return err_set(err, -COHORT_ECONFIG,
                       "both --cluster-secret-file and --peer-tls-* are set; "
                       "authenticate peers with one of them");
    if (peer_auth_random(a->token, sizeof(a->token), err) != 0)
        return err->code;
    if (c->secret_file != NULL) {
        a->mode = PEER_AUTH_SECRET;
        a->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (a->hmac == NULL)
            return err_set(err, -COHORT_ECONFIG,
                           "OpenSSL has no HMAC; is libssl3 installed?");
        return secret_load(a, c->secret_file, warn, warn_size, err);
    }
    if (tls) {
        a->mode = PEER_AUTH_TLS;
        return tls_load(a, c, err);
    }
    a->mode = PEER_AUTH_NONE;
    return 0;
}

struct peer_auth *peer_auth_open(const struct peer_auth_config *config,
                                 char *warn, size_t warn_size,
                                 struct cohort_err *err)
{
    ASSERT(config->self < config->replica_count);
    warn[0] = '\0';
    struct peer_auth *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        err_set(err, -COHORT_ENOMEM, "peer authentication: out of memory");
        return NULL;
    }
    a->cluster_id = config->cluster_id;
    a->self = config->self;
    a->replica_count = config->replica_count;
    if (auth_setup(a, config, warn, warn_size, err) != 0) {
        peer_auth_free(a);
        return NULL;
    }
    return a;
}

void peer_auth_free(struct peer_auth *a)
{
    if (a == NULL)
        return;
    EVP_MAC_free(a->hmac);
    tls_context_free(a->tls_client);
    tls_context_free(a->tls_server);
    OPENSSL_cleanse(a->secret, sizeof(a->secret));
    free(a);
}

enum peer_auth_mode peer_auth_mode(const struct peer_auth *a)
{
    return a->mode;
}

const char *peer_auth_mode_name(enum peer_auth_mode mode)
{
    switch (mode) {
    case PEER_AUTH_SECRET:
        return "cluster-secret";
    case PEER_AUTH_TLS:
        return "mtls";
    case PEER_AUTH_NONE:
        break;
    }
    return "none";
}

uint64_t peer_auth_cluster(const struct peer_auth *a)
{
    return a->cluster_id;
}

uint32_t peer_auth_self(const struct peer_auth *a)
{
    return a->self;
}

uint32_t peer_auth_replica_count(const struct peer_auth *a)
{
    return a->replica_count;
}

void peer_auth_describe(const struct peer_auth *a, char *out, size_t size)
{
    char uri[PEER_AUTH_URI_MAX];
    switch (a->mode) {
    case PEER_AUTH_SECRET:
        snprintf(out, size,
                 "peers authenticate with the cluster secret in %s "
                 "(challenge-response, HMAC-SHA-256 on every frame)",
                 a->source);
        return;
    case PEER_AUTH_TLS:
        peer_auth_uri(a, a->self, uri, sizeof(uri));
        snprintf(out, size,
                 "peers authenticate with mutual TLS: CA %s, this replica "
                 "is %s",
                 a->source, uri);
        return;
    case PEER_AUTH_NONE:
        break;
    }
    snprintf(out, size,
             "peers are not authenticated (no --cluster-secret-file or "
             "--peer-tls-*): accepting peer connections from loopback "
             "addresses only");
}

void peer_auth_token(const struct peer_auth *a,
                     uint8_t out[PEER_AUTH_TOKEN_SIZE])
{
    memcpy(out, a->token, PEER_AUTH_TOKEN_SIZE);
}

void peer_auth_uri(const struct peer_auth *a, uint32_t id, char *out,
                   size_t size)
{
    snprintf(out, size, "cohort://%016" PRIx64 "/replica/%" PRIu32,
             a->cluster_id, id);
}

struct tls_context *peer_auth_tls(const struct peer_auth *a, enum tls_role role)
{
    ASSERT(a->mode == PEER_AUTH_TLS);
    return role == TLS_CLIENT ? a->tls_client : a->tls_server;
}

/* ---- HMAC-SHA-256 -------------------------------------------------------- */

static EVP_MAC_CTX *mac_ctx_new(const struct peer_auth *a, const uint8_t *key,
                                size_t key_size)
{
    ASSERT(a->hmac != NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(a->hmac);
    ASSERT(ctx != NULL); /* out of memory */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_MAC_init(ctx, key, key_size, params);
    ASSERT(ok == 1);
    return ctx;
}

static void mac_final(EVP_MAC_CTX *ctx, uint8_t out[PEER_AUTH_HASH_SIZE])
{
    size_t n = 0;
    int ok = EVP_MAC_final(ctx, out, &n, PEER_AUTH_HASH_SIZE);
    ASSERT(ok == 1);
    ASSERT(n == PEER_AUTH_HASH_SIZE);
}

void peer_auth_hmac(const struct peer_auth *a,
                    const struct peer_auth_part *parts, size_t count,
                    uint8_t out[PEER_AUTH_HASH_SIZE])
{
    ASSERT(a->mode == PEER_AUTH_SECRET);
    EVP_MAC_CTX *ctx = mac_ctx_new(a, a->secret, a->secret_size);
    for (size_t i = 0; i < count; i++)
        if (parts[i].size > 0)
            EVP_MAC_update(ctx, parts[i].data, parts[i].size);
    mac_final(ctx, out);
    EVP_MAC_CTX_free(ctx);
}

struct peer_mac *peer_mac_new(const struct peer_auth *a,
                              const uint8_t key[PEER_AUTH_HASH_SIZE])
{
    struct peer_mac *m = calloc(1, sizeof(*m));
    ASSERT(m != NULL);
    m->ctx = mac_ctx_new(a, key, PEER_AUTH_HASH_SIZE);
    return m;
}

void peer_mac_free(struct peer_mac *m)
{
    if (m == NULL)
        return;
    EVP_MAC_CTX_free(m->ctx);
    free(m);
}

void peer_mac_tag(struct peer_mac *m, uint64_t seq, const uint8_t *data,
                  uint32_t size, uint8_t *tag, size_t tag_size)
{
    ASSERT(tag_size <= PEER_AUTH_HASH_SIZE);
    uint8_t head[12];
    put_u64(head, seq);
    put_u32(head + 8, size);
    /* A NULL key re-initializes with the key set at peer_mac_new(). */
    int ok = EVP_MAC_init(m->ctx, NULL, 0, NULL);
    ASSERT(ok == 1);
    EVP_MAC_update(m->ctx, head, sizeof(head));
    if (size > 0)
        EVP_MAC_update(m->ctx, data, size);
    uint8_t full[PEER_AUTH_HASH_SIZE];
    mac_final(m->ctx, full);
    memcpy(tag, full, tag_size);
}
