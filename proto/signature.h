/* signature.h — making and checking signatures with the key type a certificate names.
 *
 * One rule per key type, so that any verifier (including the openssl command
 * line) reproduces it: ECDSA keys sign SHA-256 digests (DER-encoded r,s); RSA
 * keys use PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt; Ed25519 keys
 * use pure Ed25519 over the bytes.
 */
#ifndef JX_SIGNATURE_H
#define JX_SIGNATURE_H

#include "error.h"
#include "trust.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

enum { JX_SIGNATURE_MAX = 1024 };

/* A private key and its certificate: an agency's, or the gateway's. */
typedef struct jx_signer jx_signer;

/* Loads a PEM certificate and its PEM private key (refusing a key file that
 * others may read, and a key that does not match the certificate). The agency
 * id is read from the certificate if it carries one (the gateway's does not). */
jx_signer *jx_signer_new(const char *cert_file, const char *key_file, jx_error *err);
void jx_signer_destroy(jx_signer **self_p);

/* Signs the concatenation of part1 and part2 (either may be empty) into
 * signature (JX_SIGNATURE_MAX bytes), setting *signature_len. */
int jx_signer_sign(jx_signer *self, const uint8_t *part1, size_t part1_len, const uint8_t *part2,
                   size_t part2_len, uint8_t *signature, size_t *signature_len, jx_error *err);

/* The agency id from the certificate, or "" when it has none. */
const char *jx_signer_agency(const jx_signer *self);
/* The certificate as DER; borrowed. */
const uint8_t *jx_signer_cert_der(const jx_signer *self, size_t *der_len);
/* The public key; borrowed. */
EVP_PKEY *jx_signer_public_key(const jx_signer *self);

/* Checks a signature over part1 || part2 with key. 0 when it verifies; -1 and
 * BAD_SIGNATURE otherwise. */
int jx_signature_verify(EVP_PKEY *key, const uint8_t *part1, size_t part1_len,
                        const uint8_t *part2, size_t part2_len, const uint8_t *signature,
                        size_t signature_len, jx_error *err);

#endif
