/* trust.c — trust anchors, CRLs, agency identities, and the verification cache.
 *
 * Invariants:
 * - A cache entry exists only for a certificate that verified (chain, dates,
 *   CRLs, agency SAN) against this trust's anchors and CRLs. Entries are never
 *   evicted: their number is bounded by how many certificates the trusted CAs
 *   issued, not by anything a peer sends, and borrowed jx_identity pointers
 *   stay valid for the life of the jx_trust. Failed verifications are not
 *   cached, so a revoked or forged certificate costs a full check each time.
 * - A hit is re-checked against the certificate's validity dates and the
 *   earliest CRL nextUpdate, so a cached certificate still expires on time.
 */
#include "trust.h"

#include "message_id.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AGENCY_URI_PREFIX "urn:justx:agency:"

typedef struct {
    jx_identity **slots; /* open addressing by fingerprint; NULL = empty */
    size_t capacity;     /* power of two */
    size_t count;
} identity_cache;

struct jx_trust {
    X509_STORE *store;
    bool have_crls;
    int64_t crl_next_update_ms; /* earliest nextUpdate of the loaded CRLs */
    pthread_mutex_t lock;
    identity_cache cache;
};

int64_t jx_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t asn1_time_to_ms(const ASN1_TIME *time)
{
    struct tm tm;
    if (time == NULL || !ASN1_TIME_to_tm(time, &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

static void format_time(int64_t ms, char *out, size_t size)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A name for sentences: the subject CN if there is one, else the full subject. */
static void certificate_name(X509 *cert, char *out, size_t size)
{
    X509_NAME *subject = X509_get_subject_name(cert);
    if (X509_NAME_get_text_by_NID(subject, NID_commonName, out, (int)size) > 0)
        return;
    X509_NAME_oneline(subject, out, (int)size);
}

jx_trust *jx_trust_new(const char *ca_file, jx_error *err)
{
    jx_trust *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory creating the trust store");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->store = X509_STORE_new();
    self->cache.capacity = 64;
    self->cache.slots = calloc(self->cache.capacity, sizeof *self->cache.slots);
    if (self->store == NULL || self->cache.slots == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory creating the trust store");
        jx_trust_destroy(&self);
        return NULL;
    }
    if (jx_trust_add_anchors(self, ca_file, err) != 0)
        jx_trust_destroy(&self);
    return self;
}

void jx_trust_destroy(jx_trust **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_trust *self = *self_p;
    for (size_t i = 0; i < self->cache.capacity; i++) {
        if (self->cache.slots && self->cache.slots[i]) {
            EVP_PKEY_free(self->cache.slots[i]->public_key);
            free(self->cache.slots[i]);
        }
    }
    free(self->cache.slots);
    X509_STORE_free(self->store);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int jx_trust_add_anchors(jx_trust *self, const char *ca_file, jx_error *err)
{
    BIO *bio = BIO_new_file(ca_file, "r");
    if (bio == NULL)
        return jx_error_set_openssl(err, JX_ERR_IO, "cannot read trust anchors from %s", ca_file);
    int added = 0;
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(self->store, cert);
        X509_free(cert);
        if (!ok) {
            BIO_free(bio);
            return jx_error_set_openssl(err, JX_ERR_KEY, "cannot add certificate %d of %s",
                                        added + 1, ca_file);
        }
        added++;
    }
    BIO_free(bio);
    ERR_clear_error(); /* the loop ends on a "no start line" error */
    if (added == 0)
        return jx_error_set(err, JX_ERR_KEY, "%s holds no PEM certificate to trust", ca_file);
    return 0;
}

int jx_trust_add_crl(jx_trust *self, const char *crl_file, jx_error *err)
{
    BIO *bio = BIO_new_file(crl_file, "r");
    if (bio == NULL)
        return jx_error_set_openssl(err, JX_ERR_IO, "cannot read CRL %s", crl_file);
    X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    if (crl == NULL) {
        ERR_clear_error();
        BIO_reset(bio);
        crl = d2i_X509_CRL_bio(bio, NULL);
    }
    BIO_free(bio);
    if (crl == NULL)
        return jx_error_set_openssl(err, JX_ERR_KEY, "%s is not a CRL in PEM or DER form",
                                    crl_file);
    int64_t next_update = asn1_time_to_ms(X509_CRL_get0_nextUpdate(crl));
    int ok = X509_STORE_add_crl(self->store, crl);
    X509_CRL_free(crl);
    if (!ok)
        return jx_error_set_openssl(err, JX_ERR_KEY, "cannot add CRL %s", crl_file);
    X509_STORE_set_flags(self->store, X509_V_FLAG_CRL_CHECK);
    pthread_mutex_lock(&self->lock);
    if (next_update != 0 && (!self->have_crls || next_update < self->crl_next_update_ms))
        self->crl_next_update_ms = next_update;
    self->have_crls = true;
    pthread_mutex_unlock(&self->lock);
    return 0;
}

void jx_trust_each_identity(jx_trust *self, jx_trust_identity_fn each, void *arg)
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->cache.capacity; i++)
        if (self->cache.slots[i] && each(arg, self->cache.slots[i]) != 0)
            break;
    pthread_mutex_unlock(&self->lock);
}

X509_STORE *jx_trust_store(jx_trust *self)
{
    return self->store;
}

int jx_trust_error_from_verify_result(jx_error *err, int verify_result, const char *subject)
{
    switch (verify_result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return jx_error_set(err, JX_ERR_CERTIFICATE_EXPIRED, "certificate %s has expired",
                            subject);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return jx_error_set(err, JX_ERR_CERTIFICATE_NOT_YET_VALID,
                            "certificate %s is not valid yet", subject);
    case X509_V_ERR_CERT_REVOKED:
        return jx_error_set(err, JX_ERR_CERTIFICATE_REVOKED,
                            "certificate %s has been revoked by its issuer", subject);
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        return jx_error_set(err, JX_ERR_UNTRUSTED_CERTIFICATE,
                            "certificate %s cannot be checked for revocation: no CRL from its "
                            "issuer is configured",
                            subject);
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return jx_error_set(err, JX_ERR_UNTRUSTED_CERTIFICATE,
                            "certificate %s cannot be checked for revocation: the issuer's CRL "
                            "is out of date",
                            subject);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return jx_error_set(err, JX_ERR_UNTRUSTED_CERTIFICATE,
                            "certificate %s was not issued by a trusted certificate authority",
                            subject);
    default:
        return jx_error_set(err, JX_ERR_UNTRUSTED_CERTIFICATE, "certificate %s does not verify: %s",
                            subject, X509_verify_cert_error_string(verify_result));
    }
}

int jx_cert_agency_id(X509 *cert, char agency[JX_AGENCY_ID_MAX], jx_error *err)
{
    char name[256];
    certificate_name(cert, name, sizeof name);
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    int malformed = 0;
    const size_t prefix_len = strlen(AGENCY_URI_PREFIX);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *general = sk_GENERAL_NAME_value(names, i);
        if (general->type != GEN_URI)
            continue;
        const unsigned char *uri = ASN1_STRING_get0_data(general->d.uniformResourceIdentifier);
        size_t uri_len = (size_t)ASN1_STRING_length(general->d.uniformResourceIdentifier);
        if (uri_len < prefix_len || memcmp(uri, AGENCY_URI_PREFIX, prefix_len) != 0)
            continue;
        found++;
        size_t id_len = uri_len - prefix_len;
        char candidate[JX_AGENCY_ID_MAX] = "";
        if (id_len < JX_AGENCY_ID_MAX)
            memcpy(candidate, uri + prefix_len, id_len);
        /* strlen catches an embedded NUL that would shorten the id */
        if (id_len >= JX_AGENCY_ID_MAX || strlen(candidate) != id_len ||
            !jx_agency_id_is_valid(candidate))
            malformed = 1;
        else
            memcpy(agency, candidate, sizeof candidate);
    }
    GENERAL_NAMES_free(names);
    if (found == 0)
        return jx_error_set(err, JX_ERR_NO_AGENCY_IDENTITY,
                            "certificate %s carries no agency identity (no subjectAltName URI "
                            "urn:justx:agency:<ID>)",
                            name);
    if (found > 1)
        return jx_error_set(err, JX_ERR_NO_AGENCY_IDENTITY,
                            "certificate %s names %d agencies; exactly one is allowed", name,
                            found);
    if (malformed)
        return jx_error_set(err, JX_ERR_NO_AGENCY_IDENTITY,
                            "certificate %s has a malformed agency id (1-64 characters of A-Z, "
                            "0-9 and '-')",
                            name);
    return 0;
}

static size_t cache_slot(const identity_cache *cache, const uint8_t fingerprint[32])
{
    uint64_t hash;
    memcpy(&hash, fingerprint, sizeof hash);
    size_t mask = cache->capacity - 1;
    size_t slot = (size_t)hash & mask;
    while (cache->slots[slot] && memcmp(cache->slots[slot]->fingerprint, fingerprint, 32) != 0)
        slot = (slot + 1) & mask;
    return slot;
}

/* Keeps the table at most half full; entries move, identities do not. */
static int cache_grow(identity_cache *cache)
{
    identity_cache bigger = {.capacity = cache->capacity * 2, .count = cache->count};
    bigger.slots = calloc(bigger.capacity, sizeof *bigger.slots);
    if (bigger.slots == NULL)
        return -1;
    for (size_t i = 0; i < cache->capacity; i++)
        if (cache->slots[i])
            bigger.slots[cache_slot(&bigger, cache->slots[i]->fingerprint)] = cache->slots[i];
    free(cache->slots);
    *cache = bigger;
    return 0;
}

static const jx_identity *cache_lookup(jx_trust *self, const uint8_t fingerprint[32])
{
    pthread_mutex_lock(&self->lock);
    const jx_identity *found = self->cache.slots[cache_slot(&self->cache, fingerprint)];
    pthread_mutex_unlock(&self->lock);
    return found;
}

/* Inserts identity (taking ownership); returns the cached one, which may be an
 * equal entry another thread inserted first. */
static const jx_identity *cache_insert(jx_trust *self, jx_identity *identity)
{
    pthread_mutex_lock(&self->lock);
    size_t slot = cache_slot(&self->cache, identity->fingerprint);
    jx_identity *existing = self->cache.slots[slot];
    if (existing == NULL && (self->cache.count + 1) * 2 > self->cache.capacity &&
        cache_grow(&self->cache) == 0)
        slot = cache_slot(&self->cache, identity->fingerprint);
    if (existing == NULL && (self->cache.count + 1) * 2 <= self->cache.capacity) {
        self->cache.slots[slot] = identity;
        self->cache.count++;
        pthread_mutex_unlock(&self->lock);
        return identity;
    }
    pthread_mutex_unlock(&self->lock);
    EVP_PKEY_free(identity->public_key);
    free(identity);
    return existing; /* NULL only when out of memory */
}

/* Dates are re-checked on every use: the cache keeps verification, not time. */
static int check_dates(jx_trust *self, const jx_identity *identity, int64_t now_ms, jx_error *err)
{
    char when[32];
    if (now_ms < identity->not_before_ms) {
        format_time(identity->not_before_ms, when, sizeof when);
        return jx_error_set(err, JX_ERR_CERTIFICATE_NOT_YET_VALID,
                            "certificate of agency %s is not valid before %s", identity->agency,
                            when);
    }
    if (now_ms > identity->not_after_ms) {
        format_time(identity->not_after_ms, when, sizeof when);
        return jx_error_set(err, JX_ERR_CERTIFICATE_EXPIRED,
                            "certificate of agency %s expired on %s", identity->agency, when);
    }
    pthread_mutex_lock(&self->lock);
    int64_t crl_next_update = self->have_crls ? self->crl_next_update_ms : 0;
    pthread_mutex_unlock(&self->lock);
    if (crl_next_update != 0 && now_ms > crl_next_update) {
        format_time(crl_next_update, when, sizeof when);
        return jx_error_set(err, JX_ERR_UNTRUSTED_CERTIFICATE,
                            "certificate of agency %s cannot be checked for revocation: the CRL "
                            "was due for renewal on %s",
                            identity->agency, when);
    }
    return 0;
}

static const jx_identity *verify_uncached(jx_trust *self, X509 *cert, STACK_OF(X509) *chain,
                                          const uint8_t fingerprint[32], int64_t now_ms,
                                          jx_error *err)
{
    char name[256];
    certificate_name(cert, name, sizeof name);
    X509_STORE_CTX *context = X509_STORE_CTX_new();
    if (context == NULL || !X509_STORE_CTX_init(context, self->store, cert, chain)) {
        X509_STORE_CTX_free(context);
        jx_error_set_openssl(err, JX_ERR_SYSTEM, "cannot set up verification of %s", name);
        return NULL;
    }
    X509_STORE_CTX_set_time(context, 0, (time_t)(now_ms / 1000));
    int verified = X509_verify_cert(context);
    int result = X509_STORE_CTX_get_error(context);
    X509_STORE_CTX_free(context);
    ERR_clear_error();
    if (verified != 1) {
        jx_trust_error_from_verify_result(err, result, name);
        return NULL;
    }

    jx_identity *identity = calloc(1, sizeof *identity);
    if (identity == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory caching certificate %s", name);
        return NULL;
    }
    if (jx_cert_agency_id(cert, identity->agency, err) != 0) {
        free(identity);
        return NULL;
    }
    memcpy(identity->fingerprint, fingerprint, 32);
    identity->public_key = X509_get_pubkey(cert);
    identity->not_before_ms = asn1_time_to_ms(X509_get0_notBefore(cert));
    identity->not_after_ms = asn1_time_to_ms(X509_get0_notAfter(cert));
    if (identity->public_key == NULL) {
        free(identity);
        jx_error_set_openssl(err, JX_ERR_BAD_CERTIFICATE, "certificate %s has no usable public key",
                             name);
        return NULL;
    }
    const jx_identity *cached = cache_insert(self, identity);
    if (cached == NULL)
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory caching certificate %s", name);
    return cached;
}

const jx_identity *jx_trust_verify_der(jx_trust *self, const uint8_t *der, size_t der_len,
                                       int64_t now_ms, jx_error *err)
{
    uint8_t fingerprint[32];
    SHA256(der, der_len, fingerprint);
    const jx_identity *identity = cache_lookup(self, fingerprint);
    if (identity == NULL) {
        const unsigned char *cursor = der;
        X509 *cert = d2i_X509(NULL, &cursor, (long)der_len);
        if (cert == NULL || cursor != der + der_len) {
            X509_free(cert);
            jx_error_set_openssl(err, JX_ERR_BAD_CERTIFICATE,
                                 "the signer certificate (%zu bytes) is not a DER X.509 "
                                 "certificate",
                                 der_len);
            return NULL;
        }
        identity = verify_uncached(self, cert, NULL, fingerprint, now_ms, err);
        X509_free(cert);
        return identity; /* freshly verified at now_ms: dates already checked */
    }
    return check_dates(self, identity, now_ms, err) == 0 ? identity : NULL;
}

const jx_identity *jx_trust_verify_x509(jx_trust *self, X509 *cert, STACK_OF(X509) *chain,
                                        int64_t now_ms, jx_error *err)
{
    uint8_t fingerprint[32];
    unsigned int length = 0;
    if (!X509_digest(cert, EVP_sha256(), fingerprint, &length)) {
        jx_error_set_openssl(err, JX_ERR_BAD_CERTIFICATE, "cannot fingerprint a certificate");
        return NULL;
    }
    const jx_identity *identity = cache_lookup(self, fingerprint);
    if (identity == NULL)
        return verify_uncached(self, cert, chain, fingerprint, now_ms, err);
    return check_dates(self, identity, now_ms, err) == 0 ? identity : NULL;
}
