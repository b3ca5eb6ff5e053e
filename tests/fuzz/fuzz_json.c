/* fuzz_json.c — libFuzzer harness for json.c, the JSON mapping agencies'
 * systems feed through the CLI, the drop-box and the local HTTP API.
 *
 * Each input is JSON text, decoded as every type of the registry. Whenever a
 * decode succeeds, the mapping must be a fixed point from there on: the
 * message encodes, the encoding decodes again to a message that packs to the
 * same bytes, and that message encodes to the same text. A failed decode
 * must carry one of the JSON error codes and a sentence. Violations abort(),
 * so libFuzzer reports them; memory errors are the sanitizers' to find.
 *
 * Built two ways (tests/fuzz/json.cmake): with clang -fsanitize=fuzzer when
 * JX_FUZZ is ON, and always as a replay program (with replay_main.c) that runs
 * every file of the given corpus directories through the same function.
 */
#include "json.h"
#include "registry.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(*len ? *len : 1);
    if (bytes == NULL || protobuf_c_message_pack(msg, bytes) != *len)
        abort();
    return bytes;
}

static void check_fixed_point(const ProtobufCMessageDescriptor *descriptor,
                              const ProtobufCMessage *msg)
{
    jx_error err;
    char *text = jx_json_text_from_message(msg, 0, &err);
    if (text == NULL)
        abort(); /* a message decoded from JSON holds only valid UTF-8 */
    ProtobufCMessage *again = jx_json_text_to_message(descriptor, text, strlen(text), &err);
    if (again == NULL)
        abort();
    size_t len, again_len;
    uint8_t *bytes = pack(msg, &len);
    uint8_t *again_bytes = pack(again, &again_len);
    if (len != again_len || memcmp(bytes, again_bytes, len) != 0)
        abort();
    char *text_again = jx_json_text_from_message(again, 0, &err);
    if (text_again == NULL || strcmp(text, text_again) != 0)
        abort();
    free(text_again);
    free(again_bytes);
    free(bytes);
    protobuf_c_message_free_unpacked(again, NULL);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count;
    const jx_message_type *types = jx_registry_all(&count);
    for (size_t i = 0; i < count; i++) {
        jx_error err;
        jx_error_clear(&err);
        ProtobufCMessage *msg =
            jx_json_text_to_message(types[i].descriptor, (const char *)data, size, &err);
        if (msg == NULL) {
            if (err.code != JX_ERR_JSON_SYNTAX && err.code != JX_ERR_JSON_UNKNOWN_FIELD &&
                err.code != JX_ERR_JSON_WRONG_TYPE && err.code != JX_ERR_JSON_BAD_VALUE)
                abort();
            if (err.message[0] == '\0' || strchr(err.message, '\n') != NULL)
                abort();
            continue;
        }
        check_fixed_point(types[i].descriptor, msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    return 0;
}
