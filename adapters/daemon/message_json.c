/* message_json.c — submissions in, received messages and receipts out, as JSON.
 *
 * A submission is untrusted input from a local agency system: it is parsed
 * here, once, member by member, and every problem is reported with the JSON
 * path of the member at fault. The payload is decoded by proto/json.c from
 * the type's descriptor and packed, so what is sealed is protobuf that
 * jx_envelope_seal accepts.
 */
#include "message_json.h"

#include "json.h"
#include "justx/v1/journal.pb-c.h"
#include "registry.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ten years: longer than any gateway's max_ttl_ms, short enough to keep the
 * arithmetic in range. */
#define EXPIRES_IN_MAX_SECONDS (INT64_C(10) * 366 * 24 * 3600)

static const char *json_kind(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

/* A printable string of at most max bytes, or NULL (absent or null) when
 * optional. */
static int take_text(const json_t *object, const char *name, bool required, size_t max, char **out,
                     jx_error *err)
{
    const json_t *value = json_object_get(object, name);
    *out = NULL;
    if (value == NULL || json_is_null(value)) {
        if (required)
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "message.%s is missing", name);
        return 0;
    }
    if (!json_is_string(value))
        return jx_error_set(err, JX_ERR_JSON_WRONG_TYPE, "message.%s: expected a string, got %s",
                            name, json_kind(value));
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len == 0 && required)
        return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "message.%s must not be empty", name);
    if (len > max)
        return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                            "message.%s has %zu bytes; at most %zu are allowed", name, len, max);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                                "message.%s contains a control character", name);
    if (len == 0)
        return 0;
    *out = strdup(text);
    if (*out == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading message.%s", name);
    return 0;
}

static int take_recipients(const json_t *object, jx_submission *s, jx_error *err)
{
    const json_t *to = json_object_get(object, "to");
    if (to == NULL || json_is_null(to))
        return 0;
    if (!json_is_array(to))
        return jx_error_set(err, JX_ERR_JSON_WRONG_TYPE,
                            "message.to: expected an array of agency ids, got %s", json_kind(to));
    size_t n = json_array_size(to);
    if (n > JX_RECIPIENTS_MAX)
        return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                            "message.to names %zu recipients; at most %d are allowed", n,
                            JX_RECIPIENTS_MAX);
    if (n == 0)
        return 0;
    s->to = calloc(n, sizeof *s->to);
    if (s->to == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading message.to");
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(to, i);
        if (!json_is_string(item))
            return jx_error_set(err, JX_ERR_JSON_WRONG_TYPE,
                                "message.to[%zu]: expected a string, got %s", i, json_kind(item));
        const char *id = json_string_value(item);
        if (!jx_agency_id_is_valid(id))
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                                "message.to[%zu]: \"%.64s\" is not an agency id (1-64 characters "
                                "of A-Z, 0-9 and '-')",
                                i, id);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->to[j], id) == 0)
                return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                                    "message.to[%zu]: %s is named twice", i, id);
        if ((s->to[i] = strdup(id)) == NULL)
            return jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading message.to");
        s->n_to = i + 1;
    }
    return 0;
}

static int take_expiry(const json_t *object, jx_submission *s, jx_error *err)
{
    const json_t *value = json_object_get(object, "expiresInSeconds");
    if (value == NULL || json_is_null(value))
        return 0;
    long long seconds = 0;
    if (json_is_integer(value)) {
        seconds = json_integer_value(value);
    } else if (json_is_string(value)) {
        /* the protobuf JSON mapping writes 64-bit integers as strings */
        const char *text = json_string_value(value);
        char *end = NULL;
        seconds = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0')
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                                "message.expiresInSeconds: \"%.32s\" is not a whole number", text);
    } else {
        return jx_error_set(err, JX_ERR_JSON_WRONG_TYPE,
                            "message.expiresInSeconds: expected a whole number of seconds, got %s",
                            json_kind(value));
    }
    if (seconds <= 0 || seconds > EXPIRES_IN_MAX_SECONDS)
        return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                            "message.expiresInSeconds is %lld; it must be between 1 and %lld",
                            seconds, (long long)EXPIRES_IN_MAX_SECONDS);
    s->expires_in_seconds = seconds;
    return 0;
}

int jx_submission_parse(const char *text, size_t len, jx_submission *s, jx_error *err)
{
    static const char *const known[] = {
        "type", "to", "caseId", "correlationId", "messageId", "expiresInSeconds", "payload", NULL};
    memset(s, 0, sizeof *s);
    json_error_t syntax;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &syntax);
    if (root == NULL)
        return jx_error_set(err, JX_ERR_JSON_SYNTAX, "JSON syntax error at line %d, column %d: %s",
                            syntax.line, syntax.column, syntax.text);
    ProtobufCMessage *decoded = NULL;
    int rc = -1;
    if (!json_is_object(root)) {
        jx_error_set(err, JX_ERR_JSON_WRONG_TYPE, "message: expected an object, got %s",
                     json_kind(root));
        goto done;
    }
    const char *key;
    json_t *member;
    json_object_foreach(root, key, member)
    {
        bool is_known = false;
        for (const char *const *k = known; *k; k++)
            is_known = is_known || strcmp(*k, key) == 0;
        if (!is_known) {
            jx_error_set(err, JX_ERR_JSON_UNKNOWN_FIELD,
                         "message.%.64s is not a member of a message (known: type, to, caseId, "
                         "correlationId, messageId, expiresInSeconds, payload)",
                         key);
            goto done;
        }
    }
    if (take_text(root, "type", true, JX_HEADER_TEXT_MAX, &s->type, err) < 0)
        goto done;
    const jx_message_type *type = jx_registry_find(s->type);
    if (type == NULL) {
        jx_error_set(err, JX_ERR_UNKNOWN_TYPE,
                     "message.type: %.100s is not a message type justx knows", s->type);
        goto done;
    }
    if (!type->is_document) {
        jx_error_set(err, JX_ERR_UNKNOWN_TYPE,
                     "message.type: %s is a protocol type that adapters make themselves, not a "
                     "document an agency sends",
                     s->type);
        goto done;
    }
    if (take_recipients(root, s, err) < 0 ||
        take_text(root, "caseId", false, JX_HEADER_TEXT_MAX, &s->case_id, err) < 0 ||
        take_text(root, "correlationId", false, JX_HEADER_TEXT_MAX, &s->correlation_id, err) < 0 ||
        take_text(root, "messageId", false, JX_MESSAGE_ID_MAX, &s->message_id, err) < 0 ||
        take_expiry(root, s, err) < 0)
        goto done;
    /* The gateway refuses a header whose correlation id is not a message id;
     * better said here, with the member's path, than in a REJECTED receipt. */
    if (s->correlation_id && !jx_message_id_is_valid(s->correlation_id)) {
        jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                     "message.correlationId: \"%.64s\" is not the id of a message (a UUID in "
                     "lower-case 8-4-4-4-12 form)",
                     s->correlation_id);
        goto done;
    }
    if (s->message_id && !jx_message_id_is_valid(s->message_id)) {
        jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                     "message.messageId: \"%s\" is not a UUID in lower-case 8-4-4-4-12 form",
                     s->message_id);
        goto done;
    }
    const json_t *payload = json_object_get(root, "payload");
    if (payload == NULL || json_is_null(payload)) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "message.payload is missing");
        goto done;
    }
    if (!json_is_object(payload)) {
        jx_error_set(
            err, JX_ERR_JSON_WRONG_TYPE,
            "message.payload: expected an object (%s in the protobuf JSON mapping), got %s",
            s->type, json_kind(payload));
        goto done;
    }
    jx_error inner;
    decoded = jx_json_to_message(type->descriptor, payload, &inner);
    if (decoded == NULL) {
        jx_error_set(err, inner.code, "message.payload: %s", inner.message);
        goto done;
    }
    s->payload_len = protobuf_c_message_get_packed_size(decoded);
    s->payload = malloc(s->payload_len ? s->payload_len : 1);
    if (s->payload == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory packing message.payload");
        goto done;
    }
    protobuf_c_message_pack(decoded, s->payload);
    rc = 0;
done:
    if (decoded)
        protobuf_c_message_free_unpacked(decoded, NULL);
    json_decref(root);
    if (rc != 0)
        jx_submission_clear(s);
    return rc;
}

void jx_submission_clear(jx_submission *s)
{
    if (s == NULL)
        return;
    free(s->type);
    for (size_t i = 0; i < s->n_to; i++)
        free(s->to[i]);
    free(s->to);
    free(s->case_id);
    free(s->correlation_id);
    free(s->message_id);
    free(s->payload);
    memset(s, 0, sizeof *s);
}

void jx_submission_params(const jx_submission *s, int64_t now_ms, jx_seal_params *params)
{
    memset(params, 0, sizeof *params);
    params->type = s->type;
    params->recipients = (const char *const *)s->to;
    params->recipient_count = s->n_to;
    params->case_id = s->case_id;
    params->correlation_id = s->correlation_id;
    params->message_id = s->message_id;
    if (s->expires_in_seconds > 0)
        params->expires_at_ms = now_ms + s->expires_in_seconds * 1000;
}

/* ---- output ---- */

static void set_text_if(json_t *object, const char *name, const char *text)
{
    if (text && text[0] != '\0')
        json_object_set_new(object, name, json_string(text));
}

static json_t *base64(const uint8_t *bytes, size_t len)
{
    if (len > 64 * 1024 * 1024)
        return NULL;
    char *text = malloc(4 * ((len + 2) / 3) + 1);
    if (text == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)text, bytes, (int)len);
    json_t *value = json_string(text);
    free(text);
    return value;
}

json_t *jx_message_json_received(const jx_opened *opened, int64_t sequence, int64_t received_at_ms,
                                 bool consumed, jx_error *err)
{
    const Justx__V1__Header *header = opened->header;
    json_t *payload = jx_json_from_message(opened->payload, err);
    if (payload == NULL)
        return NULL;
    json_t *object = json_object();
    json_t *recipients = json_array();
    if (object == NULL || recipients == NULL) {
        json_decref(object);
        json_decref(recipients);
        json_decref(payload);
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory writing a message as JSON");
        return NULL;
    }
    json_object_set_new(object, "sender", json_string(opened->signer->agency));
    json_object_set_new(object, "messageId", json_string(header->message_id));
    json_object_set_new(object, "type", json_string(header->type));
    set_text_if(object, "caseId", header->case_id);
    set_text_if(object, "correlationId", header->correlation_id);
    for (size_t i = 0; i < header->n_recipients; i++)
        json_array_append_new(recipients, json_string(header->recipients[i]));
    json_object_set_new(object, "recipients", recipients);
    json_object_set_new(object, "createdAtMs", json_integer(header->created_at_ms));
    if (header->expires_at_ms)
        json_object_set_new(object, "expiresAtMs", json_integer(header->expires_at_ms));
    json_object_set_new(object, "receivedAtMs", json_integer(received_at_ms));
    json_object_set_new(object, "sequence", json_integer(sequence));
    json_object_set_new(object, "consumed", json_boolean(consumed));
    char fingerprint[65];
    for (int i = 0; i < 32; i++)
        snprintf(fingerprint + 2 * i, 3, "%02x", opened->signer->fingerprint[i]);
    json_object_set_new(object, "signerCertificateSha256", json_string(fingerprint));
    json_object_set_new(object, "payload", payload);
    return object;
}

json_t *jx_message_json_inbox_summary(const jx_adapter_store_inbox_entry *entry)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    json_object_set_new(object, "sender", json_string(entry->sender));
    json_object_set_new(object, "messageId", json_string(entry->message_id));
    json_object_set_new(object, "type", json_string(entry->type));
    set_text_if(object, "caseId", entry->case_id);
    json_object_set_new(object, "receivedAtMs", json_integer(entry->received_at_ms));
    json_object_set_new(object, "sequence", json_integer(entry->sequence));
    json_object_set_new(object, "consumed", json_boolean(entry->consumed));
    if (entry->consumed)
        json_object_set_new(object, "consumedAtMs", json_integer(entry->consumed_at_ms));
    return object;
}

json_t *jx_message_json_accepted_recipients(const uint8_t *bytes, size_t len)
{
    Justx__V1__Receipt *receipt = justx__v1__receipt__unpack(NULL, len, bytes);
    if (receipt == NULL)
        return NULL;
    json_t *array = NULL;
    Justx__V1__JournalRecord *record = justx__v1__journal_record__unpack(
        NULL, receipt->journal_record.len, receipt->journal_record.data);
    if (record && record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__ACCEPTED) {
        array = json_array();
        for (size_t i = 0; array && i < record->n_recipients; i++)
            json_array_append_new(array, json_string(record->recipients[i]));
    }
    if (record)
        justx__v1__journal_record__free_unpacked(record, NULL);
    justx__v1__receipt__free_unpacked(receipt, NULL);
    return array;
}

json_t *jx_message_json_receipt(const jx_adapter_store_receipt *r, bool with_evidence)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    json_object_set_new(object, "sequence", json_integer(r->sequence));
    json_object_set_new(object, "messageId", json_string(r->message_id));
    json_object_set_new(object, "status", json_string(r->status));
    set_text_if(object, "recipient", r->recipient);
    set_text_if(object, "reasonCode", r->reason_code);
    set_text_if(object, "reason", r->reason);
    json_object_set_new(object, "journalIndex", json_integer((json_int_t)r->journal_index));
    json_object_set_new(object, "receivedAtMs", json_integer(r->received_at_ms));
    Justx__V1__Receipt *decoded = justx__v1__receipt__unpack(NULL, r->receipt_len, r->receipt);
    if (decoded) {
        json_object_set_new(object, "issuedAtMs", json_integer(decoded->issued_at_ms));
        justx__v1__receipt__free_unpacked(decoded, NULL);
    }
    if (strcmp(r->status, "ACCEPTED") == 0) {
        json_t *recipients = jx_message_json_accepted_recipients(r->receipt, r->receipt_len);
        if (recipients)
            json_object_set_new(object, "recipients", recipients);
    }
    if (with_evidence) {
        json_t *evidence = base64(r->receipt, r->receipt_len);
        if (evidence)
            json_object_set_new(object, "evidence", evidence);
    }
    return object;
}

void jx_message_json_file_part(const char *text, char *out, size_t size)
{
    size_t used = 0;
    for (const char *p = text; *p && used + 1 < size; p++) {
        char c = *p;
        bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || (c == '.' && used > 0);
        out[used++] = safe ? c : '_';
    }
    out[used] = '\0';
}
