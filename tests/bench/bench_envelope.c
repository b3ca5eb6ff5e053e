/* bench_envelope.c — seals/s and opens/s of 2 KiB envelopes, next to the raw
 * OpenSSL sign and verify rate for the same key measured in the same run.
 *
 * "Raw" is EVP_DigestSign / EVP_DigestVerify over the same bytes an envelope
 * signature covers (context string plus header), with an already-parsed key:
 * the cost no implementation can avoid. open/raw close to 1 means chain
 * validation, decoding and hashing have left the steady state.
 *
 * usage: bench_envelope PKI_DIR [SECONDS_PER_MEASUREMENT]
 */
#include "envelope.h"
#include "justx/v1/documents.pb-c.h"

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* A sentence order of about 2 KiB: the person, the court, provisions,
 * conditions and a small attachment. */
static uint8_t *sample_order(size_t *len)
{
    static uint8_t attachment_bytes[1400];
    memset(attachment_bytes, 'J', sizeof attachment_bytes);
    Justx__V1__Person person = JUSTX__V1__PERSON__INIT;
    person.family_name = "Asanov";
    person.given_names = "Bakyt Ermekovich";
    person.date_of_birth = "1990-04-12";
    person.personal_id = "21204199000123";
    person.personal_id_country = "KG";
    person.address = "Bishkek, Chui Avenue 120, apt. 45";
    Justx__V1__Authority court = JUSTX__V1__AUTHORITY__INIT;
    court.agency_id = "KG-COURT-BISHKEK";
    court.name = "Pervomaisky District Court of Bishkek";
    court.official_name = "A. Toktogulova";
    court.official_role = "judge";
    Justx__V1__LegalProvision provision = JUSTX__V1__LEGAL_PROVISION__INIT;
    provision.code = "Criminal Code of the Kyrgyz Republic";
    provision.article = "209";
    provision.part = "part 1";
    provision.description = "Fraud";
    Justx__V1__LegalProvision *provisions[] = {&provision};
    Justx__V1__ProbationCondition condition = JUSTX__V1__PROBATION_CONDITION__INIT;
    condition.code = "REPORT_WEEKLY";
    condition.description = "Report to the probation office every Monday";
    Justx__V1__ProbationCondition *conditions[] = {&condition};
    Justx__V1__Attachment attachment = JUSTX__V1__ATTACHMENT__INIT;
    attachment.file_name = "judgment-extract.txt";
    attachment.content_type = "text/plain";
    attachment.content.data = attachment_bytes;
    attachment.content.len = sizeof attachment_bytes;
    Justx__V1__Attachment *attachments[] = {&attachment};
    Justx__V1__SentenceOrder order = JUSTX__V1__SENTENCE_ORDER__INIT;
    order.person = &person;
    order.court = &court;
    order.case_number = "UD-1234/26";
    order.n_provisions = 1;
    order.provisions = provisions;
    order.sentence_kind = JUSTX__V1__SENTENCE_KIND__SENTENCE_KIND_PROBATION;
    order.term_days = 730;
    order.probation_period_days = 730;
    order.n_conditions = 1;
    order.conditions = conditions;
    order.decision_date = "2026-11-02";
    order.entry_into_force_date = "2026-11-17";
    order.supervising_office = "Probation Department, Pervomaisky district";
    order.n_attachments = 1;
    order.attachments = attachments;
    *len = justx__v1__sentence_order__get_packed_size(&order);
    uint8_t *bytes = malloc(*len);
    justx__v1__sentence_order__pack(&order, bytes);
    return bytes;
}

static void die(const char *what, const jx_error *err)
{
    fprintf(stderr, "bench_envelope: %s: %s: %s\n", what, jx_error_code_name(err->code),
            err->message);
    exit(1);
}

/* The raw operation: the same EVP calls on the same bytes, no envelope work. */
static void raw_once(EVP_PKEY *key, int sign, const uint8_t *data, size_t len,
                     const uint8_t *signature, size_t signature_len)
{
    const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    uint8_t out[JX_SIGNATURE_MAX];
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    EVP_PKEY_CTX *key_context = NULL;
    int ok;
    if (sign) {
        size_t out_len = sizeof out;
        ok = EVP_DigestSignInit(context, &key_context, md, NULL, key) == 1;
        if (ok && EVP_PKEY_get_id(key) == EVP_PKEY_RSA)
            ok = EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, 32) == 1;
        ok = ok && EVP_DigestSign(context, out, &out_len, data, len) == 1;
    } else {
        ok = EVP_DigestVerifyInit(context, &key_context, md, NULL, key) == 1;
        if (ok && EVP_PKEY_get_id(key) == EVP_PKEY_RSA)
            ok = EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, 32) == 1;
        ok = ok && EVP_DigestVerify(context, signature, signature_len, data, len) == 1;
    }
    EVP_MD_CTX_free(context);
    if (!ok) {
        fprintf(stderr, "bench_envelope: raw %s failed\n", sign ? "sign" : "verify");
        exit(1);
    }
}

/* Rounds alternate between the justx operation and the raw one, so that a
 * change in the machine's load during the run hits both alike. */
enum { ROUND = 20 };

static void bench_agency(const char *pki, const char *agency, jx_trust *trust, double seconds)
{
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/%s.pem", pki, agency);
    snprintf(key, sizeof key, "%s/%s.key", pki, agency);
    jx_error err;
    jx_signer *signer = jx_signer_new(cert, key, &err);
    if (signer == NULL)
        die("loading the key", &err);
    size_t payload_len;
    uint8_t *payload = sample_order(&payload_len);
    const char *recipients[] = {"KG-PROBATION", "KG-PRISON"};
    jx_seal_params params = {.type = "justx.v1.SentenceOrder", .recipients = recipients,
                             .recipient_count = 2, .case_id = "UD-1234/26"};
    uint8_t *envelope = NULL;
    size_t envelope_len = 0;
    char id[JX_MESSAGE_ID_MAX];
    if (jx_envelope_seal(signer, &params, payload, payload_len, &envelope, &envelope_len, id,
                         &err) != 0)
        die("seal", &err);

    Justx__V1__Envelope *decoded = justx__v1__envelope__unpack(NULL, envelope_len, envelope);
    size_t context_len = strlen(JX_ENVELOPE_SIGNATURE_CONTEXT);
    size_t signed_len = context_len + decoded->header.len;
    uint8_t *signed_bytes = malloc(signed_len);
    memcpy(signed_bytes, JX_ENVELOPE_SIGNATURE_CONTEXT, context_len);
    memcpy(signed_bytes + context_len, decoded->header.data, decoded->header.len);
    FILE *key_file = fopen(key, "r");
    EVP_PKEY *private_key = PEM_read_PrivateKey(key_file, NULL, NULL, NULL);
    fclose(key_file);
    EVP_PKEY *public_key = jx_signer_public_key(signer);

    double seal_time = 0, sign_time = 0, open_time = 0, verify_time = 0;
    long seals = 0, signs = 0, opens = 0, verifies = 0;
    double start = seconds_now();
    while (seconds_now() - start < 2 * seconds) {
        double t = seconds_now();
        for (int i = 0; i < ROUND; i++) {
            uint8_t *again = NULL;
            size_t again_len;
            if (jx_envelope_seal(signer, &params, payload, payload_len, &again, &again_len, id,
                                 &err) != 0)
                die("seal", &err);
            free(again);
        }
        seal_time += seconds_now() - t, seals += ROUND;
        t = seconds_now();
        for (int i = 0; i < ROUND; i++)
            raw_once(private_key, 1, signed_bytes, signed_len, NULL, 0);
        sign_time += seconds_now() - t, signs += ROUND;
        t = seconds_now();
        for (int i = 0; i < ROUND; i++) {
            jx_opened *opened = jx_envelope_open(trust, envelope, envelope_len, NULL, &err);
            if (opened == NULL)
                die("open", &err);
            jx_opened_destroy(&opened);
        }
        open_time += seconds_now() - t, opens += ROUND;
        t = seconds_now();
        for (int i = 0; i < ROUND; i++)
            raw_once(public_key, 0, signed_bytes, signed_len, decoded->signature.data,
                     decoded->signature.len);
        verify_time += seconds_now() - t, verifies += ROUND;
    }
    double seal_rate = seals / seal_time, raw_sign = signs / sign_time;
    double open_rate = opens / open_time, raw_verify = verifies / verify_time;
    printf("%-16s %-8s envelope %5zu B | seal %8.0f/s  raw sign %8.0f/s  (%3.0f%%) | "
           "open %8.0f/s  raw verify %8.0f/s  (%3.0f%%)\n",
           agency, EVP_PKEY_get0_type_name(private_key), envelope_len, seal_rate, raw_sign,
           100 * seal_rate / raw_sign, open_rate, raw_verify, 100 * open_rate / raw_verify);
    EVP_PKEY_free(private_key);
    free(signed_bytes);
    justx__v1__envelope__free_unpacked(decoded, NULL);
    free(envelope);
    free(payload);
    jx_signer_destroy(&signer);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_envelope PKI_DIR [SECONDS_PER_MEASUREMENT]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    char ca[512], crl[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", argv[1]);
    snprintf(crl, sizeof crl, "%s/crl.pem", argv[1]);
    jx_error err;
    jx_trust *trust = jx_trust_new(ca, &err);
    if (trust == NULL || jx_trust_add_crl(trust, crl, &err) != 0)
        die("trust", &err);
    printf("one thread, %.1f s per key, justx and raw operations in alternating rounds of %d; "
           "open includes decode, cached chain check, signature, digest and payload decode\n",
           2 * seconds, ROUND);
    bench_agency(argv[1], "KG-COURT-BISHKEK", trust, seconds);
    bench_agency(argv[1], "TEST-ED25519", trust, seconds);
    bench_agency(argv[1], "TEST-RSA", trust, seconds);
    jx_trust_destroy(&trust);
    return 0;
}
