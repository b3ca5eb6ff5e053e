/* tls_context.c — makes the SSL_CTX of each side of the transport.
 *
 * Session resumption is off on purpose: a resumed session skips certificate
 * verification, and a certificate revoked by a CRL loaded since must not keep
 * working. The cost is one full handshake per TCP connection, which for
 * long-lived adapter links is nothing.
 */
#include "tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* AES-GCM first: with AES instructions it costs a fraction of ChaCha20. */
static const char TLS13_SUITES[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const char TLS12_CIPHERS[] = "ECDHE+AESGCM:ECDHE+CHACHA20";

/* A TLS read buffer this large lets read-ahead take several records (up to
 * 16 KiB each) from the kernel in one system call. */
enum { READ_BUFFER_LEN = 256 * 1024, VERIFY_DEPTH = 4 };

static SSL_CTX *context_common(const SSL_METHOD *method, const char *cert_file,
                               const char *key_file, int min_version, jx_error *err)
{
    if (min_version == 0)
        min_version = TLS1_3_VERSION;
    if (min_version != TLS1_3_VERSION && min_version != TLS1_2_VERSION) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "minimum TLS version must be TLS 1.3 or TLS 1.2");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        jx_error_set_openssl(err, JX_ERR_SYSTEM, "cannot make a TLS context");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, min_version) ||
        !SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
        jx_error_set_openssl(err, JX_ERR_SYSTEM, "cannot set TLS versions or cipher suites");
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, READ_BUFFER_LEN);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        jx_error_set_openssl(err, JX_ERR_KEY, "cannot load TLS certificate %s", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        jx_error_set_openssl(err, JX_ERR_KEY, "cannot load TLS private key %s", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        jx_error_set_openssl(err, JX_ERR_KEY, "private key %s does not match certificate %s",
                             key_file, cert_file);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *jx_tls_context_server(const char *cert_file, const char *key_file, jx_trust *trust,
                               int min_version, SSL_verify_cb verify_callback, jx_error *err)
{
    if (trust == NULL) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "TLS front end needs a trust store");
        return NULL;
    }
    SSL_CTX *ctx = context_common(TLS_server_method(), cert_file, key_file, min_version, err);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_num_tickets(ctx, 0);
    if (SSL_CTX_set1_verify_cert_store(ctx, jx_trust_store(trust)) != 1) {
        jx_error_set_openssl(err, JX_ERR_SYSTEM, "cannot attach the trust store to TLS");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_callback);
    SSL_CTX_set_verify_depth(ctx, VERIFY_DEPTH);
    return ctx;
}

SSL_CTX *jx_tls_context_client(const char *cert_file, const char *key_file, const char *ca_file,
                               int min_version, jx_error *err)
{
    SSL_CTX *ctx = context_common(TLS_client_method(), cert_file, key_file, min_version, err);
    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        jx_error_set_openssl(err, JX_ERR_KEY, "cannot load gateway trust anchors %s", ca_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_verify_depth(ctx, VERIFY_DEPTH);
    return ctx;
}

int jx_tls_context_expect_name(SSL *ssl, const char *name, jx_error *err)
{
    if (name == NULL || *name == '\0')
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "the gateway's expected certificate name is missing");
    unsigned char addr[16];
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
            return jx_error_set_openssl(err, JX_ERR_INVALID_ARGUMENT,
                                        "cannot require gateway IP address %s", name);
        return 0;
    }
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, name) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1)
        return jx_error_set_openssl(err, JX_ERR_INVALID_ARGUMENT, "cannot require gateway name %s",
                                    name);
    return 0;
}

void jx_tls_context_describe(const SSL *ssl, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
