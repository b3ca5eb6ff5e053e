/* json.h — protobuf messages to and from JSON, driven by protobuf-c descriptors.
 *
 * The mapping is the protobuf JSON mapping (protobuf.dev, proto3 "JSON
 * Mapping"), worked out from the descriptors alone, never per type:
 *
 *   field names   lowerCamelCase of the proto field name on output; the
 *                 original snake_case name is accepted on input too
 *   enums         the value's name ("SENTENCE_KIND_PROBATION"); a number is
 *                 accepted on input; an unknown number is written as a number
 *   int64, uint64, sint64, fixed64, sfixed64
 *                 decimal strings ("1767605400000"); JSON numbers accepted on
 *                 input when they are exact integers in range (jansson reads
 *                 integers into a long long: a uint64 above 2^63-1 must come
 *                 as a string)
 *   int32, uint32 and the other 32-bit integers
 *                 numbers; decimal strings accepted on input
 *   float, double numbers (17 significant digits, so doubles round-trip);
 *                 "NaN", "Infinity", "-Infinity" as strings
 *   bool          true / false
 *   bytes         standard base64 with padding; URL-safe and unpadded base64
 *                 accepted on input
 *   repeated      arrays; messages: objects
 *   null          accepted on input for any field: the field keeps its default
 *
 * Fields holding their proto3 default (0, "", empty bytes, empty repeated,
 * unset submessage, enum value 0) are left out of the output. Fields with
 * explicit presence (proto3 `optional`, oneof members, proto2) are written
 * whenever they are present, even when the value is the default. Unknown
 * fields of a decoded message are not written (the JSON mapping has no place
 * for them).
 *
 * Errors name the path of the offending element, starting with the message's
 * name in lowerCamelCase: "sentenceOrder.conditions[2].code: expected a
 * string, got an integer". Codes: JX_ERR_JSON_SYNTAX (with line and column),
 * JX_ERR_JSON_UNKNOWN_FIELD, JX_ERR_JSON_WRONG_TYPE, JX_ERR_JSON_BAD_VALUE,
 * JX_ERR_UNKNOWN_TYPE, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE, JX_ERR_SYSTEM.
 */
#ifndef JX_JSON_H
#define JX_JSON_H

#include "error.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Flags for the functions that produce JSON text. */
enum {
    JX_JSON_PRETTY = 1 << 0, /* two-space indentation and newlines; default is compact */
};

/* Encodes msg as a new JSON object (caller json_decref's it). Returns NULL
 * and fills err when a string is not valid UTF-8 or memory runs out. */
json_t *jx_json_from_message(const ProtobufCMessage *msg, jx_error *err);

/* Decodes a JSON object into a new message of the descriptor's type; free
 * with protobuf_c_message_free_unpacked(msg, NULL). Returns NULL and fills
 * err on the first element that does not fit the descriptor. */
ProtobufCMessage *jx_json_to_message(const ProtobufCMessageDescriptor *descriptor,
                                     const json_t *object, jx_error *err);

/* Like jx_json_to_message, from JSON text of len bytes (need not be
 * NUL-terminated). Syntax errors and duplicate keys are JX_ERR_JSON_SYNTAX
 * with jansson's line and column. */
ProtobufCMessage *jx_json_text_to_message(const ProtobufCMessageDescriptor *descriptor,
                                          const char *text, size_t len, jx_error *err);

/* Encodes msg as JSON text, NUL-terminated; the caller frees it with free().
 * flags: JX_JSON_PRETTY or 0. */
char *jx_json_text_from_message(const ProtobufCMessage *msg, int flags, jx_error *err);

/* Serialized protobuf of the registry type `type` ("justx.v1.SentenceOrder")
 * to JSON text (caller frees with free()). JX_ERR_UNKNOWN_TYPE for a type not
 * in the registry, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE when the bytes do not
 * decode as that type. */
char *jx_json_encode_payload(const char *type, const uint8_t *bytes, size_t len, int flags,
                             jx_error *err);

/* JSON text of a message of the registry type `type` to its serialized
 * protobuf in *bytes_out (caller frees with free()) and *len_out. Returns 0,
 * or -1 with err filled. */
int jx_json_decode_payload(const char *type, const char *text, size_t len, uint8_t **bytes_out,
                           size_t *len_out, jx_error *err);

#endif
