/* ingress.c — decide ACCEPT, REJECT or DUPLICATE for one submitted envelope. */
#include "ingress.h"

#include "justx/v1/envelope.pb-c.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* What a rejected envelope claimed about itself, if its header decodes:
 * lets the sender match the REJECTED receipt to its message, also when it
 * was too large (the frame is in memory anyway; the socket bounds its size).
 * Only ids in their proper syntax are kept, so a forged header cannot inject
 * text. */
static void remember_claims(const uint8_t *bytes, size_t len, jx_ingress_result *result)
{
    Justx__V1__Envelope *envelope = justx__v1__envelope__unpack(NULL, len, bytes);
    if (envelope == NULL)
        return;
    Justx__V1__Header *header =
        justx__v1__header__unpack(NULL, envelope->header.len, envelope->header.data);
    if (header) {
        if (jx_message_id_is_valid(header->message_id))
            memcpy(result->message_id, header->message_id, JX_MESSAGE_ID_MAX);
        if (jx_registry_find(header->type))
            snprintf(result->type, sizeof result->type, "%s", header->type);
        if (jx_text_is_printable(header->case_id, JX_HEADER_TEXT_MAX))
            snprintf(result->case_id, sizeof result->case_id, "%s", header->case_id);
        justx__v1__header__free_unpacked(header, NULL);
    }
    justx__v1__envelope__free_unpacked(envelope, NULL);
}

static void reject(jx_ingress_result *result, const uint8_t *bytes, size_t len)
{
    result->verdict = JX_INGRESS_REJECT;
    jx_opened_destroy(&result->opened);
    remember_claims(bytes, len, result);
}

void jx_ingress_check(const jx_ingress *ingress, const char *agency, const uint8_t *bytes,
                      size_t len, int64_t now_ms, jx_ingress_result *result)
{
    const jx_gateway_config *config = ingress->config;
    size_t max = (size_t)config->limits.max_message_bytes;
    memset(result, 0, sizeof *result);

    jx_open_params params = {
        .now_ms = now_ms,
        .max_envelope_bytes = max,
        .max_clock_skew_ms = config->limits.max_clock_skew_ms,
        .transport_identity = agency,
    };
    result->opened = jx_envelope_open(ingress->trust, bytes, len, &params, &result->error);
    if (result->opened == NULL) {
        reject(result, bytes, len);
        return;
    }
    Justx__V1__Header *header = result->opened->header;
    memcpy(result->message_id, header->message_id, JX_MESSAGE_ID_MAX);
    snprintf(result->type, sizeof result->type, "%s", header->type);
    snprintf(result->case_id, sizeof result->case_id, "%s", header->case_id);
    SHA256(result->opened->envelope->header.data, result->opened->envelope->header.len,
           result->header_sha256);

    jx_spool_message original;
    int found = jx_spool_find(ingress->spool, header->sender, header->message_id, &original,
                              &result->error);
    if (found < 0) {
        reject(result, bytes, len);
        return;
    }
    if (found) {
        if (memcmp(original.header_sha256, result->header_sha256, 32) != 0) {
            jx_error_set(&result->error, JX_ERR_DUPLICATE,
                         "message id %s was already used by %s for a different message; "
                         "every message needs a new id",
                         header->message_id, header->sender);
            reject(result, bytes, len);
            return;
        }
        result->verdict = JX_INGRESS_DUPLICATE;
        result->original_index = original.journal_index;
        jx_opened_destroy(&result->opened);
        return;
    }

    if (!result->opened->type->is_document) {
        jx_error_set(&result->error, JX_ERR_NOT_PERMITTED,
                     "%s is a protocol message, not a document agencies may send each other",
                     header->type);
        reject(result, bytes, len);
        return;
    }
    if (jx_routes_resolve(config, header->sender, header->type,
                          (const char *const *)header->recipients, header->n_recipients,
                          &result->routes, &result->error) != 0) {
        reject(result, bytes, len);
        return;
    }

    int64_t latest = now_ms + config->limits.max_ttl_ms;
    result->expires_at_ms = header->expires_at_ms ? header->expires_at_ms
                                                  : now_ms + config->limits.default_ttl_ms;
    if (result->expires_at_ms > latest)
        result->expires_at_ms = latest;
    result->verdict = JX_INGRESS_ACCEPT;
}

void jx_ingress_result_release(jx_ingress_result *result)
{
    jx_opened_destroy(&result->opened);
    jx_route_decision_release(&result->routes);
}
