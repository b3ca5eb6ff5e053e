/* trust.h — trust anchors, CRLs, and agency identities taken from certificates.
 *
 * An agency's identity is the URI urn:justx:agency:<ID> in the subjectAltName
 * of a certificate whose chain verifies against the configured anchors and is
 * not revoked. Verifying a chain is expensive compared with one signature
 * check, so successful verifications are cached by the SHA-256 fingerprint of
 * the certificate's DER bytes; a cached entry is still checked against its
 * validity dates on every use. The cache lives as long as the jx_trust: a new
 * CRL or configuration means a new jx_trust, hence an empty cache.
 *
 * Thread safety: one jx_trust may be used from several threads.
 */
#ifndef JX_TRUST_H
#define JX_TRUST_H

#include "error.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>

/* Longest agency id plus its terminating NUL. Ids are 1..64 characters of
 * A-Z, 0-9 and '-'. */
enum { JX_AGENCY_ID_MAX = 65 };

typedef struct jx_trust jx_trust;

/* What a verified certificate tells: who, with which key, until when.
 * Borrowed from the jx_trust; valid until jx_trust_destroy. */
typedef struct {
    char agency[JX_AGENCY_ID_MAX];
    EVP_PKEY *public_key;
    int64_t not_before_ms;
    int64_t not_after_ms;
    uint8_t fingerprint[32]; /* SHA-256 of the certificate's DER */
} jx_identity;

/* Creates a trust store with the anchors in ca_file (PEM, one or more
 * certificates). Returns NULL and fills err on failure. */
jx_trust *jx_trust_new(const char *ca_file, jx_error *err);
void jx_trust_destroy(jx_trust **self_p);

/* Adds more anchors (PEM file with one or more certificates). */
int jx_trust_add_anchors(jx_trust *self, const char *ca_file, jx_error *err);

/* Adds a CRL (PEM or DER). Once any CRL is added, every leaf certificate must
 * be covered by a CRL from its issuer. */
int jx_trust_add_crl(jx_trust *self, const char *crl_file, jx_error *err);

/* Verifies a DER certificate at time now_ms (ms since the epoch): chain to an
 * anchor, validity, revocation, agency SAN. Returns the identity (borrowed)
 * or NULL with err set to UNTRUSTED_CERTIFICATE, CERTIFICATE_EXPIRED,
 * CERTIFICATE_NOT_YET_VALID, CERTIFICATE_REVOKED, NO_AGENCY_IDENTITY or
 * BAD_CERTIFICATE. */
const jx_identity *jx_trust_verify_der(jx_trust *self, const uint8_t *der, size_t der_len,
                                       int64_t now_ms, jx_error *err);

/* The same for a parsed certificate (e.g. a TLS peer); chain may hold
 * untrusted intermediates the peer sent, or be NULL. */
const jx_identity *jx_trust_verify_x509(jx_trust *self, X509 *cert, STACK_OF(X509) *chain,
                                        int64_t now_ms, jx_error *err);

/* Calls each for every certificate verified so far (the cache), e.g. to list
 * those about to expire. Stops when each returns non-zero. */
typedef int (*jx_trust_identity_fn)(void *arg, const jx_identity *identity);
void jx_trust_each_identity(jx_trust *self, jx_trust_identity_fn each, void *arg);

/* The store to hand to OpenSSL (SSL_CTX_set1_verify_cert_store): same
 * anchors, same CRLs, same flags. Borrowed. */
X509_STORE *jx_trust_store(jx_trust *self);

/* Maps an X509_V_ERR_* verification result to a justx code and sentence. */
int jx_trust_error_from_verify_result(jx_error *err, int verify_result, const char *subject);

/* Reads the agency id from cert's SAN URI urn:justx:agency:<ID> into agency.
 * NO_AGENCY_IDENTITY when there is none, or more than one, or it is malformed. */
int jx_cert_agency_id(X509 *cert, char agency[JX_AGENCY_ID_MAX], jx_error *err);

/* Milliseconds since the Unix epoch, from the real-time clock. */
int64_t jx_now_ms(void);

#endif
