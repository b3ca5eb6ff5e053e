/* signature.c — signing keys, and the per-key-type signature rule. */
#include "signature.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct jx_signer {
    EVP_PKEY *key;
    EVP_PKEY *public_key;
    uint8_t *cert_der;
    size_t cert_der_len;
    char agency[JX_AGENCY_ID_MAX];
};

/* Ed25519 signs the message itself (no pre-hash), so the two parts must be
 * joined; headers are small, so the copy is cheap. */
static uint8_t *join_parts(const uint8_t *part1, size_t part1_len, const uint8_t *part2,
                           size_t part2_len, uint8_t *stack_buffer, size_t stack_size)
{
    size_t total = part1_len + part2_len;
    uint8_t *joined = total <= stack_size ? stack_buffer : malloc(total ? total : 1);
    if (joined == NULL)
        return NULL;
    if (part1_len)
        memcpy(joined, part1, part1_len);
    if (part2_len)
        memcpy(joined + part1_len, part2, part2_len);
    return joined;
}

/* Sets the digest and padding rule the key's type calls for. */
static int configure(EVP_MD_CTX *md_context, EVP_PKEY *key, int signing)
{
    EVP_PKEY_CTX *key_context = NULL;
    const EVP_MD *digest = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    int ok = signing ? EVP_DigestSignInit(md_context, &key_context, digest, NULL, key)
                     : EVP_DigestVerifyInit(md_context, &key_context, digest, NULL, key);
    if (ok != 1)
        return -1;
    if (EVP_PKEY_get_id(key) == EVP_PKEY_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, 32) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(key_context, EVP_sha256()) != 1)
            return -1;
    }
    return 0;
}

jx_signer *jx_signer_new(const char *cert_file, const char *key_file, jx_error *err)
{
    jx_signer *self = calloc(1, sizeof *self);
    X509 *cert = NULL;
    FILE *file = NULL;
    struct stat key_stat;
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory loading a signing key");
        return NULL;
    }

    file = fopen(cert_file, "r");
    if (file == NULL) {
        jx_error_set(err, JX_ERR_IO, "cannot read certificate %s", cert_file);
        goto failed;
    }
    cert = PEM_read_X509(file, NULL, NULL, NULL);
    fclose(file);
    if (cert == NULL) {
        jx_error_set_openssl(err, JX_ERR_KEY, "%s holds no PEM certificate", cert_file);
        goto failed;
    }

    file = fopen(key_file, "r");
    if (file == NULL) {
        jx_error_set(err, JX_ERR_IO, "cannot read private key %s", key_file);
        goto failed;
    }
    if (fstat(fileno(file), &key_stat) == 0 && (key_stat.st_mode & 077) != 0) {
        fclose(file);
        jx_error_set(err, JX_ERR_KEY,
                     "private key %s may be read by other users (mode %03o); make it 0600",
                     key_file, (unsigned)(key_stat.st_mode & 0777));
        goto failed;
    }
    self->key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    fclose(file);
    if (self->key == NULL) {
        jx_error_set_openssl(err, JX_ERR_KEY, "%s holds no usable PEM private key", key_file);
        goto failed;
    }
    if (X509_check_private_key(cert, self->key) != 1) {
        jx_error_set_openssl(err, JX_ERR_KEY, "private key %s does not belong to certificate %s",
                             key_file, cert_file);
        goto failed;
    }
    self->public_key = X509_get_pubkey(cert);
    int der_len = i2d_X509(cert, &self->cert_der);
    if (der_len <= 0 || self->public_key == NULL) {
        jx_error_set_openssl(err, JX_ERR_KEY, "cannot encode certificate %s", cert_file);
        goto failed;
    }
    self->cert_der_len = (size_t)der_len;
    if (jx_cert_agency_id(cert, self->agency, NULL) != 0)
        self->agency[0] = '\0';
    X509_free(cert);
    return self;

failed:
    X509_free(cert);
    jx_signer_destroy(&self);
    return NULL;
}

void jx_signer_destroy(jx_signer **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_signer *self = *self_p;
    EVP_PKEY_free(self->key);
    EVP_PKEY_free(self->public_key);
    OPENSSL_free(self->cert_der);
    free(self);
    *self_p = NULL;
}

const char *jx_signer_agency(const jx_signer *self)
{
    return self->agency;
}

const uint8_t *jx_signer_cert_der(const jx_signer *self, size_t *der_len)
{
    *der_len = self->cert_der_len;
    return self->cert_der;
}

EVP_PKEY *jx_signer_public_key(const jx_signer *self)
{
    return self->public_key;
}

int jx_signer_sign(jx_signer *self, const uint8_t *part1, size_t part1_len, const uint8_t *part2,
                   size_t part2_len, uint8_t *signature, size_t *signature_len, jx_error *err)
{
    uint8_t stack_buffer[4096];
    uint8_t *joined = join_parts(part1, part1_len, part2, part2_len, stack_buffer,
                                 sizeof stack_buffer);
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int rc = -1;
    size_t length = JX_SIGNATURE_MAX;
    if (joined == NULL || context == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory while signing");
        goto done;
    }
    if (configure(context, self->key, 1) != 0 ||
        EVP_DigestSign(context, signature, &length, joined, part1_len + part2_len) != 1) {
        jx_error_set_openssl(err, JX_ERR_KEY, "signing with the %s key failed",
                             EVP_PKEY_get0_type_name(self->key));
        goto done;
    }
    *signature_len = length;
    rc = 0;
done:
    EVP_MD_CTX_free(context);
    if (joined != stack_buffer)
        free(joined);
    return rc;
}

int jx_signature_verify(EVP_PKEY *key, const uint8_t *part1, size_t part1_len,
                        const uint8_t *part2, size_t part2_len, const uint8_t *signature,
                        size_t signature_len, jx_error *err)
{
    uint8_t stack_buffer[4096];
    uint8_t *joined = join_parts(part1, part1_len, part2, part2_len, stack_buffer,
                                 sizeof stack_buffer);
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int rc = -1;
    if (joined == NULL || context == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory while verifying a signature");
        goto done;
    }
    if (configure(context, key, 0) != 0 ||
        EVP_DigestVerify(context, signature, signature_len, joined, part1_len + part2_len) != 1) {
        jx_error_set(err, JX_ERR_BAD_SIGNATURE,
                     "the %s signature does not match the signed bytes",
                     EVP_PKEY_get0_type_name(key));
        ERR_clear_error();
        goto done;
    }
    rc = 0;
done:
    EVP_MD_CTX_free(context);
    if (joined != stack_buffer)
        free(joined);
    return rc;
}
