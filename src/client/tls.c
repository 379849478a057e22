/* client/tls — the TLS context of a handle. See tls.h. */
#include "client/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *reason(void)
{
    unsigned long code = ERR_get_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    return r ? r : "unknown OpenSSL error";
}

void *client_tls_ctx_new(const struct cohort_client_options *o,
                         struct cohort_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        err_set(err, -COHORT_ENOMEM, "TLS context: %s", reason());
        return NULL;
    }
    (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = o->tls_ca_cert_file
                 ? SSL_CTX_load_verify_locations(ctx, o->tls_ca_cert_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        err_set(err, -COHORT_ECONFIG, "TLS CA file %s: %s",
                o->tls_ca_cert_file ? o->tls_ca_cert_file : "(system)",
                reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->tls_cert_file != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(
             ctx, o->tls_key_file ? o->tls_key_file : o->tls_cert_file,
             SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ctx) != 1)) {
        err_set(err, -COHORT_ECONFIG, "TLS client certificate %s: %s",
                o->tls_cert_file, reason());
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void client_tls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}
