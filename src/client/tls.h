/* client/tls — the TLS context of a handle: OpenSSL's SSL_CTX set up from
 * the options (TLS 1.2 or later, the server certificate verified against
 * the CA file or the system's CAs, an optional client certificate for
 * servers with --tls-auth-clients yes).
 *
 * Invariant: a context is made whole or not at all (NULL, err filled with
 * the file and OpenSSL's reason). */
#ifndef COHORT_CLIENT_TLS_H
#define COHORT_CLIENT_TLS_H

#include "cohort_client.h"
#include "common/err.h"

/* An SSL_CTX * for o, or NULL with err. */
void *client_tls_ctx_new(const struct cohort_client_options *o,
                         struct cohort_err *err);
void client_tls_ctx_free(void *ctx);

#endif
