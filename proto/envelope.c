/* envelope.c — seal and open signed envelopes.
 *
 * The header is signed as bytes, never re-encoded: open verifies the exact
 * bytes it received, so sender and verifier need not agree on an encoder.
 * Every byte of untrusted input is decoded here, after its size is checked,
 * and this is the function the envelope fuzz harness targets.
 */
#include "envelope.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t signature_context[] = JX_ENVELOPE_SIGNATURE_CONTEXT;
#define CONTEXT_LEN (sizeof signature_context - 1)

/* Header fields every later stage relies on: ids in their syntax, a digest
 * of the right size, no control characters that could forge log lines. */
static int check_header_fields(const Justx__V1__Header *header, jx_error *err)
{
    if (!jx_message_id_is_valid(header->message_id))
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                            "header message_id \"%.40s\" is not a lower-case canonical UUID",
                            jx_text_is_printable(header->message_id, 40) ? header->message_id : "?");
    if (!jx_agency_id_is_valid(header->sender))
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                            "header sender is not an agency id (1-64 of A-Z, 0-9, '-')");
    if (header->n_recipients > JX_RECIPIENTS_MAX)
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                            "header names %zu recipients; at most %d are allowed",
                            header->n_recipients, JX_RECIPIENTS_MAX);
    for (size_t i = 0; i < header->n_recipients; i++)
        if (!jx_agency_id_is_valid(header->recipients[i]))
            return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                                "header recipient %zu is not an agency id", i + 1);
    if (header->type[0] == '\0' || !jx_text_is_printable(header->type, JX_HEADER_TEXT_MAX))
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER, "header type is empty or malformed");
    if (!jx_text_is_printable(header->case_id, JX_HEADER_TEXT_MAX))
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                            "header case_id is longer than %d characters or has control "
                            "characters",
                            JX_HEADER_TEXT_MAX);
    if (header->correlation_id[0] != '\0' && !jx_message_id_is_valid(header->correlation_id))
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                            "header correlation_id is not a lower-case canonical UUID");
    if (header->created_at_ms <= 0)
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER, "header created_at_ms is not set");
    if (header->payload_sha256.len != SHA256_DIGEST_LENGTH)
        return jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                            "header payload_sha256 has %zu bytes; a SHA-256 digest has 32",
                            header->payload_sha256.len);
    return 0;
}

int jx_envelope_build(jx_signer *signer, const uint8_t *header, size_t header_len,
                      const uint8_t *payload, size_t payload_len, uint8_t **envelope_out,
                      size_t *envelope_len, jx_error *err)
{
    uint8_t signature[JX_SIGNATURE_MAX];
    size_t signature_len = 0;
    if (jx_signer_sign(signer, signature_context, CONTEXT_LEN, header, header_len, signature,
                       &signature_len, err) != 0)
        return -1;

    Justx__V1__Envelope envelope = JUSTX__V1__ENVELOPE__INIT;
    envelope.header.data = (uint8_t *)header;
    envelope.header.len = header_len;
    envelope.payload.data = (uint8_t *)payload;
    envelope.payload.len = payload_len;
    envelope.signature.data = signature;
    envelope.signature.len = signature_len;
    envelope.signer_cert.data = (uint8_t *)jx_signer_cert_der(signer, &envelope.signer_cert.len);

    size_t size = justx__v1__envelope__get_packed_size(&envelope);
    uint8_t *packed = malloc(size ? size : 1);
    if (packed == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory packing an envelope of %zu bytes",
                            size);
    justx__v1__envelope__pack(&envelope, packed);
    *envelope_out = packed;
    *envelope_len = size;
    return 0;
}

int jx_envelope_seal(jx_signer *signer, const jx_seal_params *params, const uint8_t *payload,
                     size_t payload_len, uint8_t **envelope_out, size_t *envelope_len,
                     char message_id[JX_MESSAGE_ID_MAX], jx_error *err)
{
    const char *agency = jx_signer_agency(signer);
    if (agency[0] == '\0')
        return jx_error_set(err, JX_ERR_NO_AGENCY_IDENTITY,
                            "the signing certificate carries no agency identity, so it cannot "
                            "send messages");
    const jx_message_type *type = jx_registry_find(params->type);
    if (type == NULL)
        return jx_error_set(err, JX_ERR_UNKNOWN_TYPE, "message type \"%s\" is not known to justx",
                            params->type ? params->type : "");
    if (params->recipient_count > JX_RECIPIENTS_MAX)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "%zu recipients; at most %d are allowed",
                            params->recipient_count, JX_RECIPIENTS_MAX);
    for (size_t i = 0; i < params->recipient_count; i++)
        if (!jx_agency_id_is_valid(params->recipients[i]))
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "recipient \"%s\" is not an agency id (1-64 of A-Z, 0-9, '-')",
                                params->recipients[i]);
    ProtobufCMessage *decoded = protobuf_c_message_unpack(type->descriptor, NULL, payload_len,
                                                          payload);
    if (decoded == NULL)
        return jx_error_set(err, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE,
                            "the %zu-byte payload is not a valid %s", payload_len, type->name);
    protobuf_c_message_free_unpacked(decoded, NULL);

    int64_t now = params->created_at_ms ? params->created_at_ms : jx_now_ms();
    if (params->message_id) {
        if (!jx_message_id_is_valid(params->message_id))
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "message id \"%s\" is not a lower-case canonical UUID",
                                params->message_id);
        memcpy(message_id, params->message_id, JX_MESSAGE_ID_MAX);
    } else if (jx_message_id_new(now, message_id, err) != 0) {
        return -1;
    }

    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(payload, payload_len, digest);
    Justx__V1__Header header = JUSTX__V1__HEADER__INIT;
    header.message_id = message_id;
    header.sender = (char *)agency;
    header.recipients = (char **)params->recipients;
    header.n_recipients = params->recipient_count;
    header.type = (char *)type->name;
    header.case_id = (char *)(params->case_id ? params->case_id : "");
    header.correlation_id = (char *)(params->correlation_id ? params->correlation_id : "");
    header.created_at_ms = now;
    header.expires_at_ms = params->expires_at_ms;
    header.payload_sha256.data = digest;
    header.payload_sha256.len = sizeof digest;

    /* The rules open applies, applied before signing: a sender learns of a
     * malformed header now, not from a REJECTED receipt later. */
    if (check_header_fields(&header, err) != 0) {
        if (err)
            err->code = JX_ERR_INVALID_ARGUMENT;
        return -1;
    }
    size_t header_len = justx__v1__header__get_packed_size(&header);
    size_t certificate_len = 0;
    jx_signer_cert_der(signer, &certificate_len);
    if (payload_len + header_len + certificate_len + JX_SIGNATURE_MAX > JX_ENVELOPE_MAX_DEFAULT)
        return jx_error_set(err, JX_ERR_TOO_LARGE,
                            "a %zu-byte payload makes an envelope over the %d-byte limit of "
                            "justx; send large files in parts",
                            payload_len, JX_ENVELOPE_MAX_DEFAULT);
    uint8_t *header_bytes = malloc(header_len);
    if (header_bytes == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory packing a header");
    justx__v1__header__pack(&header, header_bytes);
    int rc = jx_envelope_build(signer, header_bytes, header_len, payload, payload_len,
                               envelope_out, envelope_len, err);
    free(header_bytes);
    return rc;
}

void jx_opened_destroy(jx_opened **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_opened *self = *self_p;
    if (self->payload)
        protobuf_c_message_free_unpacked(self->payload, NULL);
    if (self->header)
        justx__v1__header__free_unpacked(self->header, NULL);
    if (self->envelope)
        justx__v1__envelope__free_unpacked(self->envelope, NULL);
    free(self);
    *self_p = NULL;
}

static jx_opened *open_envelope(jx_trust *trust, const uint8_t *bytes, size_t len,
                                const jx_open_params *params, bool check_signature,
                                jx_error *err)
{
    static const jx_open_params defaults = {0};
    if (params == NULL)
        params = &defaults;
    size_t max = params->max_envelope_bytes ? params->max_envelope_bytes
                                            : (size_t)JX_ENVELOPE_MAX_DEFAULT;
    int64_t now = params->now_ms ? params->now_ms : jx_now_ms();
    if (len > max) {
        jx_error_set(err, JX_ERR_TOO_LARGE, "the envelope has %zu bytes; the limit is %zu", len,
                     max);
        return NULL;
    }

    jx_opened *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory opening an envelope");
        return NULL;
    }
    self->envelope = justx__v1__envelope__unpack(NULL, len, bytes);
    if (self->envelope == NULL) {
        jx_error_set(err, JX_ERR_MALFORMED_ENVELOPE,
                     "the %zu received bytes are not a justx envelope (protobuf decoding failed)",
                     len);
        goto failed;
    }
    Justx__V1__Envelope *envelope = self->envelope;
    if (envelope->header.len == 0 || envelope->signature.len == 0 ||
        envelope->signer_cert.len == 0) {
        jx_error_set(err, JX_ERR_MALFORMED_ENVELOPE,
                     "the envelope lacks its %s",
                     envelope->header.len == 0      ? "header"
                     : envelope->signature.len == 0 ? "signature"
                                                    : "signer certificate");
        goto failed;
    }
    self->header = justx__v1__header__unpack(NULL, envelope->header.len, envelope->header.data);
    if (self->header == NULL) {
        jx_error_set(err, JX_ERR_MALFORMED_HEADER,
                     "the envelope's %zu header bytes are not a justx header",
                     envelope->header.len);
        goto failed;
    }
    Justx__V1__Header *header = self->header;
    if (check_header_fields(header, err) != 0)
        goto failed;

    self->signer = jx_trust_verify_der(trust, envelope->signer_cert.data, envelope->signer_cert.len,
                                       now, err);
    if (self->signer == NULL)
        goto failed;
    if (strcmp(self->signer->agency, header->sender) != 0) {
        jx_error_set(err, JX_ERR_SENDER_MISMATCH,
                     "the header names sender %s but the message is signed by %s", header->sender,
                     self->signer->agency);
        goto failed;
    }
    if (params->transport_identity && strcmp(params->transport_identity, header->sender) != 0) {
        jx_error_set(err, JX_ERR_SENDER_MISMATCH,
                     "the message from %s arrived on the connection of %s", header->sender,
                     params->transport_identity);
        goto failed;
    }
    if (check_signature &&
        jx_signature_verify(self->signer->public_key, signature_context, CONTEXT_LEN,
                            envelope->header.data, envelope->header.len, envelope->signature.data,
                            envelope->signature.len, err) != 0) {
        jx_error_set(err, JX_ERR_BAD_SIGNATURE,
                     "the signature on message %s does not verify with the key of %s's "
                     "certificate",
                     header->message_id, header->sender);
        goto failed;
    }

    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(envelope->payload.data, envelope->payload.len, digest);
    if (memcmp(digest, header->payload_sha256.data, sizeof digest) != 0) {
        jx_error_set(err, JX_ERR_PAYLOAD_DIGEST_MISMATCH,
                     "the payload of message %s is not the one the sender signed (SHA-256 "
                     "differs)",
                     header->message_id);
        goto failed;
    }
    self->type = jx_registry_find(header->type);
    if (self->type == NULL) {
        jx_error_set(err, JX_ERR_UNKNOWN_TYPE, "message %s has type \"%.100s\", unknown to justx",
                     header->message_id, header->type);
        goto failed;
    }
    self->payload = protobuf_c_message_unpack(self->type->descriptor, NULL, envelope->payload.len,
                                              envelope->payload.data);
    if (self->payload == NULL) {
        jx_error_set(err, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE,
                     "the payload of message %s does not decode as %s", header->message_id,
                     self->type->name);
        goto failed;
    }

    if (params->max_clock_skew_ms > 0 &&
        (header->created_at_ms > now + params->max_clock_skew_ms ||
         header->created_at_ms < now - params->max_clock_skew_ms)) {
        jx_error_set(err, JX_ERR_CLOCK_SKEW,
                     "message %s was created %lld ms from the gateway's clock; at most %lld ms "
                     "are allowed (check the sender's clock)",
                     header->message_id, (long long)(header->created_at_ms - now),
                     (long long)params->max_clock_skew_ms);
        goto failed;
    }
    if (header->expires_at_ms != 0 && header->expires_at_ms <= now) {
        jx_error_set(err, JX_ERR_MESSAGE_EXPIRED, "message %s expired %lld ms ago",
                     header->message_id, (long long)(now - header->expires_at_ms));
        goto failed;
    }
    return self;

failed:
    jx_opened_destroy(&self);
    return NULL;
}

jx_opened *jx_envelope_open(jx_trust *trust, const uint8_t *bytes, size_t len,
                            const jx_open_params *params, jx_error *err)
{
    return open_envelope(trust, bytes, len, params, true, err);
}

jx_opened *jx_envelope_open_stored(jx_trust *trust, const uint8_t *bytes, size_t len,
                                   const jx_open_params *params, jx_error *err)
{
    return open_envelope(trust, bytes, len, params, false, err);
}
