/* tls_context.h — the OpenSSL contexts of the TLS front end and the dialer.
 *
 * Both sides: TLS 1.3 unless TLS 1.2 is configured as the minimum; only
 * forward-secret AEAD suites; no renegotiation; no session resumption (each
 * connection's certificate is verified against the current anchors and CRLs);
 * partial writes and moving write buffers, so the relays can hand OpenSSL
 * whatever their buffers hold; read-ahead, so one read system call fills many
 * TLS records.
 */
#ifndef JX_TLS_CONTEXT_H
#define JX_TLS_CONTEXT_H

#include "error.h"
#include "trust.h"

#include <openssl/ssl.h>

/* Gateway side: our certificate (chain file, PEM) and key; client
 * certificates required and verified against trust's store (anchors, CRLs);
 * verify_callback sees every verification step (may be NULL).
 * min_version is 0 (TLS 1.3), TLS1_3_VERSION or TLS1_2_VERSION. */
SSL_CTX *jx_tls_context_server(const char *cert_file, const char *key_file, jx_trust *trust,
                               int min_version, SSL_verify_cb verify_callback, jx_error *err);

/* Adapter side: presents cert_file/key_file, verifies the server's chain
 * against the anchors in ca_file (the name is checked per connection with
 * jx_tls_context_expect_name). */
SSL_CTX *jx_tls_context_client(const char *cert_file, const char *key_file, const char *ca_file,
                               int min_version, jx_error *err);

/* Makes ssl require that the server certificate carry name: an IP address
 * (v4 or v6) is matched against IP SANs, anything else against DNS names, and
 * is sent as SNI. */
int jx_tls_context_expect_name(SSL *ssl, const char *name, jx_error *err);

/* "TLSv1.3/TLS_AES_128_GCM_SHA256" for log lines. */
void jx_tls_context_describe(const SSL *ssl, char *out, size_t size);

#endif
