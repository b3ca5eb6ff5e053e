/* fuzz_submission.c — libFuzzer harness for the adapter's submission parser
 * (adapters/daemon/message_json.c): the one place where the drop-box's
 * outbox files and the HTTP API's POST bodies, written by agency systems,
 * are parsed.
 *
 * Whatever the bytes, jx_submission_parse must not crash, leak or read out
 * of bounds; when it refuses, it says why and leaves the submission empty;
 * when it accepts, what it returns is what jx_adapter_send may seal: a
 * document type, valid recipient and message ids, and a payload that
 * decodes as the type.
 *
 * Built as a libFuzzer binary when JX_FUZZ is ON, and always as a replay
 * program (with replay_main.c) that runs every file of the given corpus
 * directories through the same function.
 */
#include "message_json.h"
#include "registry.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jx_submission submission;
    jx_error err = {0};
    if (jx_submission_parse((const char *)data, size, &submission, &err) != 0) {
        if (err.code == JX_OK || err.message[0] == '\0' || submission.type != NULL ||
            submission.payload != NULL)
            abort();
        return 0;
    }
    const jx_message_type *type = jx_registry_find(submission.type);
    if (type == NULL || !type->is_document || submission.payload == NULL)
        abort();
    for (size_t i = 0; i < submission.n_to; i++)
        if (!jx_agency_id_is_valid(submission.to[i]))
            abort();
    if ((submission.message_id && !jx_message_id_is_valid(submission.message_id)) ||
        (submission.correlation_id && !jx_message_id_is_valid(submission.correlation_id)))
        abort();
    ProtobufCMessage *payload = protobuf_c_message_unpack(
        type->descriptor, NULL, submission.payload_len, submission.payload);
    if (payload == NULL)
        abort();
    protobuf_c_message_free_unpacked(payload, NULL);
    jx_seal_params params;
    jx_submission_params(&submission, 1, &params);
    if (params.type != submission.type || params.recipient_count != submission.n_to)
        abort();
    jx_submission_clear(&submission);
    return 0;
}
