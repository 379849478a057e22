/* tls — TLS with OpenSSL over memory BIOs. See tls.h for the contract.
 *
 * A session is one SSL object whose read BIO holds bytes fed from the
 * socket and whose write BIO collects bytes for the socket; both are
 * memory BIOs, so no OpenSSL call ever blocks or touches a descriptor.
 *
 * Invariants: (1) tls_write() runs only after the handshake completed and
 * always takes the whole buffer (a memory BIO never refuses bytes), so
 * plaintext is never half-sent; (2) every error leaves OpenSSL's
 * per-thread error queue empty, so a later call never reports an old
 * error.
 */
#include "runtime/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/assert.h"

struct tls_context {
    SSL_CTX *ssl_ctx;
    enum tls_role role;
};

struct tls_session {
    SSL *ssl;
    BIO *in;  /* bytes from the socket; owned by ssl */
    BIO *out; /* bytes for the socket; owned by ssl */
};

/* The oldest queued OpenSSL error as text (or fallback), and the queue
 * emptied. */
static void ssl_error_text(char *out, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(out, size, "%s", fallback);
    else
        ERR_error_string_n(e, out, size);
    ERR_clear_error();
}

static int context_fail(struct tls_context *ctx, struct cohort_err *err,
                        const char *what, const char *file, const char *fix)
{
    char why[256];
    ssl_error_text(why, sizeof(why), "unknown error");
    tls_context_free(ctx);
    return err_set(err, -COHORT_ECONFIG, "TLS: %s %s: %s; %s", what, file, why,
                   fix);
}

/* Our certificate chain and its key. */
static int context_load_cert(struct tls_context *ctx, const struct tls_files *f,
                             struct cohort_err *err)
{
    SSL_CTX *c = ctx->ssl_ctx;
    if (SSL_CTX_use_certificate_chain_file(c, f->cert_file) != 1)
        return context_fail(ctx, err, "cannot load the certificate",
                            f->cert_file,
                            "it must be a readable PEM certificate");
    bool loaded =
        SSL_CTX_use_PrivateKey_file(c, f->key_file, SSL_FILETYPE_PEM) == 1;
    if (!loaded &&
        ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH)
        return context_fail(ctx, err, "cannot load the private key",
                            f->key_file,
                            "it must be a readable, unencrypted PEM key");
    if (!loaded || SSL_CTX_check_private_key(c) != 1)
        return context_fail(ctx, err, "the private key does not match",
                            f->cert_file,
                            "give the key file that belongs to this "
                            "certificate");
    return 0;
}

static int context_load(struct tls_context *ctx, const struct tls_files *f,
                        struct cohort_err *err)
{
    if (f->cert_file != NULL && context_load_cert(ctx, f, err) != 0)
        return err->code;
    if (f->ca_file != NULL &&
        SSL_CTX_load_verify_locations(ctx->ssl_ctx, f->ca_file, NULL) != 1)
        return context_fail(ctx, err, "cannot load the CA certificates",
                            f->ca_file,
                            "it must be a readable PEM file of CA "
                            "certificates");
    return 0;
}

struct tls_context *tls_context_open(const struct tls_files *files,
                                     enum tls_role role, struct cohort_err *err)
{
    ASSERT(role == TLS_CLIENT || files->cert_file != NULL);
    ASSERT((files->cert_file == NULL) == (files->key_file == NULL));
    ASSERT(!files->verify_peer || files->ca_file != NULL);
    ERR_clear_error();
    struct tls_context *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        err_set(err, -COHORT_ENOMEM, "TLS: out of memory");
        return NULL;
    }
    ctx->role = role;
    ctx->ssl_ctx = SSL_CTX_new(role == TLS_SERVER ? TLS_server_method()
                                                  : TLS_client_method());
    if (ctx->ssl_ctx == NULL) {
        context_fail(ctx, err, "cannot create a context for", "TLS",
                     "is OpenSSL installed correctly?");
        return NULL;
    }
    SSL_CTX *c = ctx->ssl_ctx;
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    int mode = SSL_VERIFY_NONE;
    if (role == TLS_CLIENT && files->ca_file != NULL)
        mode = SSL_VERIFY_PEER;
    if (role == TLS_SERVER && files->verify_peer)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, NULL);
    if (context_load(ctx, files, err) != 0)
        return NULL;
    return ctx;
}

void tls_context_free(struct tls_context *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx); /* sessions keep their own reference */
    free(ctx);
}

/* The first URI name in cert's subject-alternative names that starts with
 * prefix. */
static bool cert_uri(X509 *cert, const char *prefix, char *out, size_t size)
{
    if (cert == NULL)
        return false;
    GENERAL_NAMES *names =
        X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL)
        return false;
    bool found = false;
    size_t prefix_len = strlen(prefix);
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
        if (n->type != GEN_URI)
            continue;
        const unsigned char *data =
            ASN1_STRING_get0_data(n->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(n->d.uniformResourceIdentifier);
        if (len < 0 || (size_t)len < prefix_len || (size_t)len >= size ||
            memchr(data, 0, (size_t)len) != NULL ||
            memcmp(data, prefix, prefix_len) != 0)
            continue;
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
        found = true;
    }
    GENERAL_NAMES_free(names);
    return found;
}

bool tls_context_uri(const struct tls_context *ctx, const char *prefix,
                     char *out, size_t size)
{
    return cert_uri(SSL_CTX_get0_certificate(ctx->ssl_ctx), prefix, out, size);
}

struct tls_session *tls_session_new(struct tls_context *ctx)
{
    struct tls_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ssl = SSL_new(ctx->ssl_ctx);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    if (s->ssl == NULL || s->in == NULL || s->out == NULL) {
        BIO_free(s->in);
        BIO_free(s->out);
        SSL_free(s->ssl);
        free(s);
        ERR_clear_error();
        return NULL;
    }
    /* An empty memory BIO reports "retry", not end of file. */
    BIO_set_mem_eof_return(s->in, -1);
    SSL_set_bio(s->ssl, s->in, s->out);
    if (ctx->role == TLS_SERVER)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
    return s;
}

void tls_session_free(struct tls_session *s)
{
    if (s == NULL)
        return;
    SSL_free(s->ssl); /* frees both BIOs */
    free(s);
}

int tls_feed(struct tls_session *s, const uint8_t *data, size_t size)
{
    while (size > 0) {
        int chunk = size > (1u << 30) ? 1 << 30 : (int)size;
        int n = BIO_write(s->in, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return -COHORT_ENOMEM;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Why an SSL call that returned rc failed, as one line. */
static int session_fail(struct tls_session *s, int rc, const char *doing,
                        struct cohort_err *err)
{
    int e = SSL_get_error(s->ssl, rc);
    char why[256];
    long verify = SSL_get_verify_result(s->ssl);
    if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(why, sizeof(why), "the peer closed the TLS session");
    else if (verify != X509_V_OK)
        snprintf(why, sizeof(why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
    else
        ssl_error_text(why, sizeof(why), "the peer broke off the session");
    ERR_clear_error();
    return err_set(err, -COHORT_EPROTO, "TLS %s: %s", doing, why);
}

int tls_handshake(struct tls_session *s, struct cohort_err *err)
{
    if (SSL_is_init_finished(s->ssl))
        return 1;
    int rc = SSL_do_handshake(s->ssl);
    if (rc == 1)
        return 1;
    int e = SSL_get_error(s->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return session_fail(s, rc, "handshake", err);
}

long tls_read(struct tls_session *s, uint8_t *out, size_t cap,
              struct cohort_err *err)
{
    if (cap == 0)
        return 0;
    int want = cap > (1u << 30) ? 1 << 30 : (int)cap;
    int rc = SSL_read(s->ssl, out, want);
    if (rc > 0)
        return rc;
    int e = SSL_get_error(s->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return session_fail(s, rc, "read", err);
}

int tls_write(struct tls_session *s, const uint8_t *data, size_t size,
              struct cohort_err *err)
{
    ASSERT(size > 0);
    ASSERT(SSL_is_init_finished(s->ssl));
    size_t written = 0;
    int rc = SSL_write_ex(s->ssl, data, size, &written);
    if (rc == 1 && written == size)
        return 0;
    return session_fail(s, rc, "write", err);
}

size_t tls_output_size(const struct tls_session *s)
{
    return BIO_ctrl_pending(s->out);
}

size_t tls_output_take(struct tls_session *s, uint8_t *out, size_t cap)
{
    size_t taken = 0;
    while (taken < cap && BIO_ctrl_pending(s->out) > 0) {
        size_t left = cap - taken;
        int want = left > (1u << 30) ? 1 << 30 : (int)left;
        int n = BIO_read(s->out, out + taken, want);
        if (n <= 0)
            break;
        taken += (size_t)n;
    }
    ERR_clear_error();
    return taken;
}

bool tls_session_peer_uri(const struct tls_session *s, const char *prefix,
                          char *out, size_t size)
{
    if (SSL_get_verify_result(s->ssl) != X509_V_OK)
        return false;
    X509 *cert = SSL_get0_peer_certificate(s->ssl);
    return cert_uri(cert, prefix, out, size);
}
