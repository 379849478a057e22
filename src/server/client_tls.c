/* client_tls — OpenSSL sessions over memory BIOs. See client_tls.h. */
#include "server/client_tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cohort.h"

struct client_tls_context {
    SSL_CTX *ctx;
};

struct client_tls_session {
    SSL *ssl;
    BIO *in;  /* ciphertext from the peer (SSL reads it) */
    BIO *out; /* ciphertext for the peer (SSL writes it) */
    /* Plaintext written before the handshake ended. */
    char *pending;
    size_t pending_size;
    char error[256];
};

/* OpenSSL's reason for the last failure, or fallback. */
static void last_error(char *out, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    unsigned long next;
    while ((next = ERR_get_error()) != 0)
        e = next; /* the last one is the most specific */
    if (e == 0) {
        snprintf(out, size, "%s", fallback);
        return;
    }
    const char *reason = ERR_reason_error_string(e);
    snprintf(out, size, "%s", reason ? reason : fallback);
}

/* ------------------------------------------------------------ contexts */

static int load_failed(SSL_CTX *ctx, struct cohort_err *err, const char *flag,
                       const char *file, const char *what)
{
    char why[200];
    last_error(why, sizeof(why), "unreadable");
    SSL_CTX_free(ctx);
    return err_set(err, -COHORT_ECONFIG, "%s %s: cannot load the %s: %s",
                   flag ? flag : "TLS file", file, what, why);
}

static int load_files(SSL_CTX *ctx, const struct client_tls_config *c,
                      struct cohort_err *err)
{
    if (c->cert_file &&
        SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1)
        return load_failed(ctx, err, c->cert_flag, c->cert_file, "certificate");
    if (c->key_file &&
        SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1)
        return load_failed(ctx, err, c->key_flag, c->key_file, "private key");
    if (c->cert_file && c->key_file && SSL_CTX_check_private_key(ctx) != 1)
        return load_failed(ctx, err, c->key_flag, c->key_file,
                           "private key (it does not match the certificate)");
    if (c->ca_file && SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1)
        return load_failed(ctx, err, c->ca_flag, c->ca_file, "CA certificates");
    if (c->ca_file && c->role == CLIENT_TLS_ROLE_SERVER) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca_file);
        if (names == NULL)
            return load_failed(ctx, err, c->ca_flag, c->ca_file, "CA names");
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    return 0;
}

struct client_tls_context *
client_tls_context_load(const struct client_tls_config *c,
                        struct cohort_err *err)
{
    ERR_clear_error();
    if (c->role == CLIENT_TLS_ROLE_SERVER && (!c->cert_file || !c->key_file)) {
        err_set(err, -COHORT_ECONFIG,
                "a TLS server needs a certificate and a key (%s, %s)",
                c->cert_flag ? c->cert_flag : "cert",
                c->key_flag ? c->key_flag : "key");
        return NULL;
    }
    if (c->verify != CLIENT_TLS_VERIFY_NONE && !c->ca_file) {
        err_set(err, -COHORT_ECONFIG,
                "checking the peer's certificate needs CA certificates (%s)",
                c->ca_flag ? c->ca_flag : "ca");
        return NULL;
    }
    SSL_CTX *ctx =
        SSL_CTX_new(c->role == CLIENT_TLS_ROLE_SERVER ? TLS_server_method()
                                                      : TLS_client_method());
    if (ctx == NULL) {
        err_set(err, -COHORT_ENOMEM, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char sid[] = "cohort";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (load_files(ctx, c, err) != 0)
        return NULL; /* ctx freed */
    int mode =
        c->verify == CLIENT_TLS_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER;
    if (c->verify == CLIENT_TLS_VERIFY_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    struct client_tls_context *t = malloc(sizeof(*t));
    if (t == NULL) {
        SSL_CTX_free(ctx);
        err_set(err, -COHORT_ENOMEM, "TLS: cannot create a context");
        return NULL;
    }
    t->ctx = ctx;
    return t;
}

void client_tls_context_free(struct client_tls_context *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ctx); /* sessions hold their own references */
    free(ctx);
}

/* ------------------------------------------------------------ sessions */

struct client_tls_session *
client_tls_session_new(struct client_tls_context *ctx)
{
    struct client_tls_session *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
        BIO_free(t->in);
        BIO_free(t->out);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    /* An empty input BIO means "more to come", not EOF. */
    BIO_set_mem_eof_return(t->in, -1);
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both now */
    if (SSL_is_server(t->ssl))
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return t;
}

void client_tls_session_free(struct client_tls_session *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t->pending);
    free(t);
}

bool client_tls_session_set_host(struct client_tls_session *t, const char *host)
{
    ERR_clear_error();
    return SSL_set_tlsext_host_name(t->ssl, host) == 1 &&
           SSL_set1_host(t->ssl, host) == 1;
}

bool client_tls_session_feed(struct client_tls_session *t, const void *data,
                             size_t size)
{
    while (size > 0) {
        int n = size > INT_MAX ? INT_MAX : (int)size;
        int wrote = BIO_write(t->in, data, n);
        if (wrote <= 0)
            return false;
        data = (const char *)data + wrote;
        size -= (size_t)wrote;
    }
    return true;
}

static void session_error(struct client_tls_session *t, int ret)
{
    long verify = SSL_get_verify_result(t->ssl);
    if (verify != X509_V_OK) {
        snprintf(t->error, sizeof(t->error), "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
        return;
    }
    char why[200];
    last_error(why, sizeof(why), "protocol error");
    snprintf(t->error, sizeof(t->error), "%s (SSL error %d)", why,
             SSL_get_error(t->ssl, ret));
}

/* Plaintext written before the handshake ended goes once it has. */
static bool flush_pending(struct client_tls_session *t)
{
    if (t->pending_size == 0 || !SSL_is_init_finished(t->ssl))
        return true;
    size_t size = t->pending_size;
    t->pending_size = 0;
    bool ok = client_tls_session_write(t, t->pending, size);
    free(t->pending);
    t->pending = NULL;
    return ok;
}

enum client_tls_result client_tls_session_read(struct client_tls_session *t,
                                               void *buf, size_t size,
                                               size_t *got)
{
    *got = 0;
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, size > INT_MAX ? INT_MAX : (int)size);
    if (!flush_pending(t))
        return CLIENT_TLS_ERROR;
    if (n > 0) {
        *got = (size_t)n;
        return CLIENT_TLS_OK;
    }
    switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return CLIENT_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return CLIENT_TLS_CLOSED;
    default:
        session_error(t, n);
        return CLIENT_TLS_ERROR;
    }
}

static bool keep_pending(struct client_tls_session *t, const void *data,
                         size_t size)
{
    char *p = realloc(t->pending, t->pending_size + size);
    if (p == NULL)
        return false;
    memcpy(p + t->pending_size, data, size);
    t->pending = p;
    t->pending_size += size;
    return true;
}

bool client_tls_session_write(struct client_tls_session *t, const void *data,
                              size_t size)
{
    if (!SSL_is_init_finished(t->ssl) || t->pending_size > 0)
        return keep_pending(t, data, size);
    ERR_clear_error();
    while (size > 0) {
        int n = size > INT_MAX ? INT_MAX : (int)size;
        int wrote = SSL_write(t->ssl, data, n);
        if (wrote <= 0) {
            session_error(t, wrote);
            return false;
        }
        data = (const char *)data + wrote;
        size -= (size_t)wrote;
    }
    return true;
}

size_t client_tls_session_output(struct client_tls_session *t,
                                 const char **data)
{
    char *p = NULL;
    long n = BIO_get_mem_data(t->out, &p);
    *data = p;
    return n > 0 ? (size_t)n : 0;
}

void client_tls_session_output_clear(struct client_tls_session *t)
{
    (void)BIO_reset(t->out);
}

void client_tls_session_close(struct client_tls_session *t)
{
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

bool client_tls_session_established(const struct client_tls_session *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *client_tls_session_error(const struct client_tls_session *t)
{
    return t->error[0] ? t->error : "no error";
}

bool client_tls_session_peer_name(const struct client_tls_session *t, char *out,
                                  size_t size)
{
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (cert == NULL)
        return false;
    bool ok = SSL_get_verify_result(t->ssl) == X509_V_OK &&
              X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
                                        NID_commonName, out, (int)size) > 0;
    X509_free(cert);
    return ok;
}
