/* message_json.h — what agency systems write and read as JSON: submissions,
 * received messages and receipts, shared by the drop-box, the HTTP API and
 * the justx CLI.
 *
 * A submission (a drop-box file, a POST /v1/messages body):
 *
 *   {"type": "justx.v1.SentenceOrder",      required, a document type
 *    "to": ["KG-PROBATION"],                optional; absent: the routes decide
 *    "caseId": "...",                                     optional
 *    "correlationId": "<UUID>",             optional; the message this one answers
 *    "messageId": "<UUID>",                 optional; makes a retry idempotent
 *    "expiresInSeconds": 86400,             optional; a number or a decimal string
 *    "payload": { ...protobuf JSON of type... }}        required
 *
 * Unknown members are errors. Errors carry a JSON path: "message.to[1]:
 * expected a string, got an integer" or "message.payload: sentenceOrder.
 * person.sex: ..." (the payload's own path from proto/json.c).
 *
 * Received messages and receipts are written with times and sequences as
 * JSON numbers (all below 2^53) and the payload in the protobuf JSON mapping.
 */
#ifndef JX_MESSAGE_JSON_H
#define JX_MESSAGE_JSON_H

#include "envelope.h"
#include "error.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *type;
    char **to;
    size_t n_to;
    char *case_id;              /* NULL when absent */
    char *correlation_id;       /* NULL when absent */
    char *message_id;           /* NULL when absent */
    int64_t expires_in_seconds; /* 0 when absent */
    uint8_t *payload;           /* serialized protobuf of type */
    size_t payload_len;
} jx_submission;

/* Parses a submission from len bytes of JSON text. 0, or -1 with err (the
 * submission is then empty). Free the parts with jx_submission_clear. */
int jx_submission_parse(const char *text, size_t len, jx_submission *submission, jx_error *err);
void jx_submission_clear(jx_submission *submission);

/* Seal parameters for jx_adapter_send, borrowing from submission; the
 * message id is the submission's when it has one. */
void jx_submission_params(const jx_submission *submission, int64_t now_ms, jx_seal_params *params);

/* A received, verified message as JSON: sender, messageId, type, caseId,
 * correlationId, recipients, createdAtMs, expiresAtMs, receivedAtMs,
 * sequence, consumed, signerCertificateSha256 and payload. NULL and err. */
json_t *jx_message_json_received(const jx_opened *opened, int64_t sequence, int64_t received_at_ms,
                                 bool consumed, jx_error *err);

/* A received message's summary from the store, without its payload. */
json_t *jx_message_json_inbox_summary(const jx_adapter_store_inbox_entry *entry);

/* A receipt as JSON: sequence, messageId, status, recipient, reasonCode,
 * reason, journalIndex, receivedAtMs, issuedAtMs, recipients (for ACCEPTED:
 * whom the gateway will deliver to) and evidence (the serialized Receipt in
 * base64) when with_evidence. */
json_t *jx_message_json_receipt(const jx_adapter_store_receipt *receipt, bool with_evidence);

/* For an ACCEPTED receipt's bytes: the recipients its journal record names,
 * as a new JSON array of strings (NULL when they cannot be read). */
json_t *jx_message_json_accepted_recipients(const uint8_t *receipt, size_t receipt_len);

/* A name safe for a file: the characters [A-Za-z0-9._-] of text, others as
 * '_', at most size - 1 of them. */
void jx_message_json_file_part(const char *text, char *out, size_t size);

#endif
