/* test_envelope.c — seal/open round trips and every rejection, with the dev PKI. */
#include "envelope.h"
#include "justx/v1/documents.pb-c.h"

#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static jx_trust *trust;

static jx_signer *load_signer(const char *agency)
{
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/%s.pem", JX_PKI_DIR, agency);
    snprintf(key, sizeof key, "%s/%s.key", JX_PKI_DIR, agency);
    jx_error err;
    jx_signer *signer = jx_signer_new(cert, key, &err);
    if (signer == NULL)
        fail_msg("loading %s: %s", agency, err.message);
    return signer;
}

static int setup(void **state)
{
    (void)state;
    jx_error err;
    trust = jx_trust_new(JX_PKI_DIR "/ca.pem", &err);
    if (trust == NULL || jx_trust_add_crl(trust, JX_PKI_DIR "/crl.pem", &err) != 0) {
        fprintf(stderr, "trust: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jx_trust_destroy(&trust);
    jx_trust_destroy(&trust); /* safe twice */
    return 0;
}

/* A payload of each document type with enough fields set to matter. */
static Justx__V1__Person person = JUSTX__V1__PERSON__INIT;
static Justx__V1__Authority court = JUSTX__V1__AUTHORITY__INIT;

static uint8_t *sample_payload(const char *type, size_t *len)
{
    person.family_name = "Asanov";
    person.given_names = "Bakyt";
    person.date_of_birth = "1990-04-12";
    person.personal_id = "21204199000123";
    person.sex = JUSTX__V1__SEX__SEX_MALE;
    court.name = "Pervomaisky District Court of Bishkek";
    court.agency_id = "KG-COURT-BISHKEK";

    Justx__V1__SentenceOrder order = JUSTX__V1__SENTENCE_ORDER__INIT;
    order.person = &person;
    order.court = &court;
    order.case_number = "UD-1234/26";
    order.sentence_kind = JUSTX__V1__SENTENCE_KIND__SENTENCE_KIND_PROBATION;
    order.term_days = 730;
    order.fine_amount_minor = 5000000000LL;
    Justx__V1__ProbationReferral referral = JUSTX__V1__PROBATION_REFERRAL__INIT;
    referral.person = &person;
    referral.case_number = "PR-77/26";
    referral.purpose = JUSTX__V1__PROBATION_REFERRAL__PURPOSE__PURPOSE_PRE_SENTENCE_REPORT;
    Justx__V1__RiskNeedsAssessment assessment = JUSTX__V1__RISK_NEEDS_ASSESSMENT__INIT;
    assessment.person = &person;
    assessment.instrument = "LSI-R";
    assessment.total_score = 17;
    assessment.risk_of_reoffending = JUSTX__V1__RISK_LEVEL__RISK_LEVEL_MEDIUM;
    Justx__V1__CaseTransfer transfer = JUSTX__V1__CASE_TRANSFER__INIT;
    transfer.person = &person;
    transfer.receiving_agency = "LV-PROBATION";
    transfer.reason = JUSTX__V1__CASE_TRANSFER__REASON__REASON_INTERNATIONAL_PROBATION_TRANSFER;
    Justx__V1__StatusUpdate update = JUSTX__V1__STATUS_UPDATE__INIT;
    update.person = &person;
    update.status = JUSTX__V1__STATUS_UPDATE__STATUS__STATUS_UNDER_SUPERVISION;
    update.effective_at_ms = 1790000000000LL;
    Justx__V1__Ack ack = JUSTX__V1__ACK__INIT;
    uint8_t digest[32] = {1, 2, 3};
    ProtobufCBinaryData acked[] = {{32, digest}};
    ack.n_header_sha256 = 1;
    ack.header_sha256 = acked;
    ack.received_at_ms = 1790000000000LL;
    Justx__V1__Receipt receipt = JUSTX__V1__RECEIPT__INIT;
    receipt.message_id = "0190f2a0-0000-7000-8000-000000000001";
    receipt.status = JUSTX__V1__RECEIPT__STATUS__ACCEPTED;

    const ProtobufCMessage *messages[] = {&order.base,    &referral.base, &assessment.base,
                                          &transfer.base, &update.base,   &ack.base,
                                          &receipt.base};
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        if (strcmp(messages[i]->descriptor->name, type) == 0) {
            *len = protobuf_c_message_get_packed_size(messages[i]);
            uint8_t *bytes = malloc(*len + 1);
            protobuf_c_message_pack(messages[i], bytes);
            return bytes;
        }
    }
    fail_msg("no sample for %s", type);
    return NULL;
}

static uint8_t *seal(const char *agency, const char *type, size_t *len, char id[37])
{
    jx_signer *signer = load_signer(agency);
    size_t payload_len;
    uint8_t *payload = sample_payload(type, &payload_len);
    const char *recipients[] = {"KG-PROBATION", "KG-PRISON"};
    jx_seal_params params = {.type = type, .recipients = recipients, .recipient_count = 2,
                             .case_id = "UD-1234/26"};
    uint8_t *envelope = NULL;
    jx_error err;
    if (jx_envelope_seal(signer, &params, payload, payload_len, &envelope, len, id, &err) != 0)
        fail_msg("seal %s by %s: %s", type, agency, err.message);
    free(payload);
    jx_signer_destroy(&signer);
    return envelope;
}

static void expect_rejection(const uint8_t *bytes, size_t len, const jx_open_params *params,
                             jx_error_code expected)
{
    jx_error err = {0};
    jx_opened *opened = jx_envelope_open(trust, bytes, len, params, &err);
    if (opened != NULL) {
        jx_opened_destroy(&opened);
        fail_msg("expected %s, but the envelope opened", jx_error_code_name(expected));
    }
    if (err.code != expected)
        fail_msg("expected %s, got %s: %s", jx_error_code_name(expected),
                 jx_error_code_name(err.code), err.message);
    assert_true(strlen(err.message) > 10);
}

static void round_trip_every_type(void **state)
{
    (void)state;
    size_t count;
    const jx_message_type *types = jx_registry_all(&count);
    for (size_t i = 0; i < count; i++) {
        char id[37];
        size_t len;
        uint8_t *bytes = seal("KG-COURT-BISHKEK", types[i].name, &len, id);
        jx_error err;
        jx_opened *opened = jx_envelope_open(trust, bytes, len, NULL, &err);
        if (opened == NULL)
            fail_msg("open %s: %s", types[i].name, err.message);
        assert_string_equal(opened->header->message_id, id);
        assert_true(jx_message_id_is_valid(id));
        assert_int_equal(id[14], '7'); /* UUID version 7 */
        assert_string_equal(opened->header->sender, "KG-COURT-BISHKEK");
        assert_string_equal(opened->signer->agency, "KG-COURT-BISHKEK");
        assert_string_equal(opened->header->type, types[i].name);
        assert_ptr_equal(opened->type, &types[i]);
        assert_int_equal(opened->header->n_recipients, 2);
        assert_string_equal(opened->header->recipients[1], "KG-PRISON");
        assert_string_equal(opened->header->case_id, "UD-1234/26");

        size_t sample_len;
        uint8_t *sample = sample_payload(types[i].name, &sample_len);
        size_t repacked_len = protobuf_c_message_get_packed_size(opened->payload);
        uint8_t *repacked = malloc(repacked_len + 1);
        protobuf_c_message_pack(opened->payload, repacked);
        assert_int_equal(repacked_len, sample_len);
        assert_memory_equal(repacked, sample, sample_len);
        free(repacked);
        free(sample);
        jx_opened_destroy(&opened);
        jx_opened_destroy(&opened);
        free(bytes);
    }
}

static void every_key_type(void **state)
{
    (void)state;
    const char *agencies[] = {"KG-PROBATION", "TEST-RSA", "TEST-ED25519"};
    for (size_t i = 0; i < 3; i++) {
        char id[37];
        size_t len;
        uint8_t *bytes = seal(agencies[i], "justx.v1.StatusUpdate", &len, id);
        jx_error err;
        jx_opened *opened = jx_envelope_open(trust, bytes, len, NULL, &err);
        if (opened == NULL)
            fail_msg("%s: %s", agencies[i], err.message);
        assert_string_equal(opened->signer->agency, agencies[i]);
        jx_opened_destroy(&opened);
        /* a flipped signature byte fails for every key type */
        Justx__V1__Envelope *envelope = justx__v1__envelope__unpack(NULL, len, bytes);
        envelope->signature.data[envelope->signature.len / 2] ^= 0x01;
        uint8_t *tampered = malloc(len);
        justx__v1__envelope__pack(envelope, tampered);
        expect_rejection(tampered, len, NULL, JX_ERR_BAD_SIGNATURE);
        justx__v1__envelope__free_unpacked(envelope, NULL);
        free(tampered);
        free(bytes);
    }
}

/* Finds needle in the envelope bytes so a test can flip a byte inside one field. */
static size_t find(const uint8_t *bytes, size_t len, const char *needle)
{
    size_t needle_len = strlen(needle);
    for (size_t i = 0; i + needle_len <= len; i++)
        if (memcmp(bytes + i, needle, needle_len) == 0)
            return i;
    fail_msg("\"%s\" not found", needle);
    return 0;
}

static void flipped_bytes(void **state)
{
    (void)state;
    char id[37];
    size_t len;
    uint8_t *bytes = seal("KG-COURT-BISHKEK", "justx.v1.SentenceOrder", &len, id);

    /* header: a byte of the case id, still a well-formed header */
    size_t at = find(bytes, len, "UD-1234/26");
    bytes[at] ^= 0x02;
    expect_rejection(bytes, len, NULL, JX_ERR_BAD_SIGNATURE);
    bytes[at] ^= 0x02;

    /* payload: a byte of the person's name */
    at = find(bytes, len, "Asanov");
    bytes[at] ^= 0x02;
    expect_rejection(bytes, len, NULL, JX_ERR_PAYLOAD_DIGEST_MISMATCH);
    bytes[at] ^= 0x02;

    jx_error err;
    jx_opened *opened = jx_envelope_open(trust, bytes, len, NULL, &err);
    assert_non_null(opened); /* restored bytes open again */
    jx_opened_destroy(&opened);
    free(bytes);
}

/* Builds a header with chosen fields and signs it as it is. */
static uint8_t *build(const char *signer_agency, const char *sender, const char *type,
                      const uint8_t *payload, size_t payload_len, int64_t created_at_ms,
                      int64_t expires_at_ms, size_t *len)
{
    jx_signer *signer = load_signer(signer_agency);
    uint8_t digest[32];
    SHA256(payload, payload_len, digest);
    Justx__V1__Header header = JUSTX__V1__HEADER__INIT;
    char id[37];
    jx_message_id_new(jx_now_ms(), id, NULL);
    header.message_id = id;
    header.sender = (char *)sender;
    header.type = (char *)type;
    header.created_at_ms = created_at_ms ? created_at_ms : jx_now_ms();
    header.expires_at_ms = expires_at_ms;
    header.payload_sha256.data = digest;
    header.payload_sha256.len = 32;
    size_t header_len = justx__v1__header__get_packed_size(&header);
    uint8_t header_bytes[1024];
    justx__v1__header__pack(&header, header_bytes);
    uint8_t *out = NULL;
    jx_error err;
    if (jx_envelope_build(signer, header_bytes, header_len, payload, payload_len, &out, len,
                          &err) != 0)
        fail_msg("build: %s", err.message);
    jx_signer_destroy(&signer);
    return out;
}

static void certificate_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *agency;
        jx_error_code expected;
    } cases[] = {
        {"FOREIGN-AGENCY", JX_ERR_UNTRUSTED_CERTIFICATE},
        {"TEST-EXPIRED", JX_ERR_CERTIFICATE_EXPIRED},
        {"TEST-NOT-YET-VALID", JX_ERR_CERTIFICATE_NOT_YET_VALID},
        {"TEST-REVOKED", JX_ERR_CERTIFICATE_REVOKED},
        {"TEST-NOSAN", JX_ERR_NO_AGENCY_IDENTITY},
    };
    size_t payload_len;
    uint8_t *payload = sample_payload("justx.v1.StatusUpdate", &payload_len);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *bytes = build(cases[i].agency, cases[i].agency, "justx.v1.StatusUpdate", payload,
                               payload_len, 0, 0, &len);
        expect_rejection(bytes, len, NULL, cases[i].expected);
        free(bytes);
    }
    free(payload);
}

static void sealing_needs_an_agency_certificate(void **state)
{
    (void)state;
    jx_signer *signer = load_signer("TEST-NOSAN");
    size_t payload_len;
    uint8_t *payload = sample_payload("justx.v1.StatusUpdate", &payload_len);
    jx_seal_params params = {.type = "justx.v1.StatusUpdate"};
    uint8_t *out = NULL;
    size_t len;
    char id[37];
    jx_error err;
    assert_int_equal(jx_envelope_seal(signer, &params, payload, payload_len, &out, &len, id, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_NO_AGENCY_IDENTITY);
    params.type = "justx.v1.Nothing";
    jx_signer_destroy(&signer);
    signer = load_signer("KG-PRISON");
    assert_int_equal(jx_envelope_seal(signer, &params, payload, payload_len, &out, &len, id, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_UNKNOWN_TYPE);
    params.type = "justx.v1.SentenceOrder";
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(jx_envelope_seal(signer, &params, garbage, sizeof garbage, &out, &len, id,
                                      &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE);
    /* the header rules open applies are applied before signing */
    params.type = "justx.v1.StatusUpdate";
    params.correlation_id = "not-a-message-id";
    assert_int_equal(jx_envelope_seal(signer, &params, payload, payload_len, &out, &len, id, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "correlation_id"));
    params.correlation_id = NULL;
    params.case_id = "line\nbreak";
    assert_int_equal(jx_envelope_seal(signer, &params, payload, payload_len, &out, &len, id, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    jx_signer_destroy(&signer);
    free(payload);
}

static void header_and_type_rejections(void **state)
{
    (void)state;
    size_t payload_len, len;
    uint8_t *payload = sample_payload("justx.v1.StatusUpdate", &payload_len);

    uint8_t *bytes = build("KG-PRISON", "KG-PROBATION", "justx.v1.StatusUpdate", payload,
                           payload_len, 0, 0, &len);
    expect_rejection(bytes, len, NULL, JX_ERR_SENDER_MISMATCH);
    free(bytes);

    bytes = build("KG-PRISON", "KG-PRISON", "justx.v1.StatusUpdate", payload, payload_len, 0, 0,
                  &len);
    jx_open_params from_other = {.transport_identity = "KG-PROBATION"};
    expect_rejection(bytes, len, &from_other, JX_ERR_SENDER_MISMATCH);
    jx_open_params too_small = {.max_envelope_bytes = len - 1};
    expect_rejection(bytes, len, &too_small, JX_ERR_TOO_LARGE);
    for (size_t cut = 0; cut < len; cut++)
        expect_rejection(bytes, cut, NULL, JX_ERR_MALFORMED_ENVELOPE);
    free(bytes);

    bytes = build("KG-PRISON", "KG-PRISON", "justx.v1.Nothing", payload, payload_len, 0, 0, &len);
    expect_rejection(bytes, len, NULL, JX_ERR_UNKNOWN_TYPE);
    free(bytes);

    const uint8_t garbage[] = {0x22, 0x7f, 0x01}; /* field 4, length 127, 1 byte present */
    bytes = build("KG-PRISON", "KG-PRISON", "justx.v1.SentenceOrder", garbage, sizeof garbage, 0,
                  0, &len);
    expect_rejection(bytes, len, NULL, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE);
    free(bytes);

    /* StatusUpdate bytes declared as SentenceOrder: field 4 has the wrong wire type */
    bytes = build("KG-PRISON", "KG-PRISON", "justx.v1.SentenceOrder", payload, payload_len, 0, 0,
                  &len);
    expect_rejection(bytes, len, NULL, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE);
    free(bytes);

    int64_t now = jx_now_ms();
    bytes = build("KG-PRISON", "KG-PRISON", "justx.v1.StatusUpdate", payload, payload_len,
                  now - 600000, 0, &len);
    jx_open_params skew = {.max_clock_skew_ms = 300000};
    expect_rejection(bytes, len, &skew, JX_ERR_CLOCK_SKEW);
    free(bytes);

    bytes = build("KG-PRISON", "KG-PRISON", "justx.v1.StatusUpdate", payload, payload_len, now,
                  now - 1, &len);
    expect_rejection(bytes, len, NULL, JX_ERR_MESSAGE_EXPIRED);
    free(bytes);

    const uint8_t not_protobuf[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    expect_rejection(not_protobuf, sizeof not_protobuf, NULL, JX_ERR_MALFORMED_ENVELOPE);
    free(payload);
}

static void cached_certificate_still_expires(void **state)
{
    (void)state;
    char id[37];
    size_t len;
    uint8_t *bytes = seal("LV-PROBATION", "justx.v1.CaseTransfer", &len, id);
    jx_error err;
    for (int i = 0; i < 3; i++) { /* the first fills the cache, the rest hit it */
        jx_opened *opened = jx_envelope_open(trust, bytes, len, NULL, &err);
        assert_non_null(opened);
        jx_opened_destroy(&opened);
    }
    jx_open_params in_2100 = {.now_ms = 4102444800000LL};
    expect_rejection(bytes, len, &in_2100, JX_ERR_CERTIFICATE_EXPIRED);
    free(bytes);
}

/* Reopening stored bytes skips only the signature: the digest still ties the
 * payload to the header, and the certificate is still checked. */
static void stored_envelopes_skip_only_the_signature(void **state)
{
    (void)state;
    char id[37];
    size_t len;
    uint8_t *bytes = seal("KG-PROSECUTOR", "justx.v1.ProbationReferral", &len, id);
    jx_error err;
    jx_opened *opened = jx_envelope_open_stored(trust, bytes, len, NULL, &err);
    assert_non_null(opened);
    assert_string_equal(opened->header->message_id, id);
    jx_opened_destroy(&opened);
    size_t at = find(bytes, len, "Asanov");
    bytes[at] ^= 0x02;
    opened = jx_envelope_open_stored(trust, bytes, len, NULL, &err);
    assert_null(opened);
    assert_int_equal(err.code, JX_ERR_PAYLOAD_DIGEST_MISMATCH);
    free(bytes);
}

static void key_files_must_be_private(void **state)
{
    (void)state;
    char path[] = "/tmp/jx-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *in = fopen(JX_PKI_DIR "/KG-PRISON.key", "r");
    char buffer[4096];
    size_t n = fread(buffer, 1, sizeof buffer, in);
    fclose(in);
    assert_int_equal(write(fd, buffer, n), (ssize_t)n);
    close(fd);
    chmod(path, 0644);
    jx_error err;
    jx_signer *signer = jx_signer_new(JX_PKI_DIR "/KG-PRISON.pem", path, &err);
    assert_null(signer);
    assert_int_equal(err.code, JX_ERR_KEY);
    assert_non_null(strstr(err.message, "0600"));
    chmod(path, 0600);
    signer = jx_signer_new(JX_PKI_DIR "/KG-PROBATION.pem", path, &err);
    assert_null(signer); /* key of another certificate */
    assert_int_equal(err.code, JX_ERR_KEY);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_type),
        cmocka_unit_test(every_key_type),
        cmocka_unit_test(flipped_bytes),
        cmocka_unit_test(certificate_rejections),
        cmocka_unit_test(sealing_needs_an_agency_certificate),
        cmocka_unit_test(header_and_type_rejections),
        cmocka_unit_test(cached_certificate_still_expires),
        cmocka_unit_test(stored_envelopes_skip_only_the_signature),
        cmocka_unit_test(key_files_must_be_private),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
