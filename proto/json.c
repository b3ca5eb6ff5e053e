/* json.c — protobuf messages to and from JSON by the protobuf JSON mapping,
 * worked out from protobuf-c descriptors alone (see json.h for the mapping).
 *
 * Decoding builds the message directly, in the memory layout protobuf-c's own
 * unpacker produces, so that protobuf_c_message_free_unpacked(msg, NULL)
 * frees it (the default allocator is malloc/free):
 *   - the message is malloc(sizeof_message), set up by protobuf_c_message_init,
 *     so unset strings point at the descriptor's default, which
 *     free_unpacked never frees;
 *   - a set string is its own malloc'd copy; bytes are a malloc'd buffer in
 *     ProtobufCBinaryData.data (NULL when empty); a submessage is built the
 *     same way, recursively;
 *   - a repeated field is one calloc'd array with its count in the quantifier;
 *   - a oneof member sets the case to its field id (free_unpacked frees only
 *     the selected member); a scalar with explicit presence sets has_<field>.
 * Every step leaves the message in that layout (arrays are calloc'd and
 * counted before their elements are filled, a member is written only once
 * its value is complete), so after an error the partial message is freed
 * with free_unpacked as well. We build directly rather than pack+unpack
 * because packing needs the very same layout, and going through the wire
 * format would double the work for nothing.
 *
 * Output follows protobuf-c's packer on presence: a field is written exactly
 * when the packer would put it on the wire, except that proto3 implicit-
 * presence fields holding their default are left out, as the mapping asks.
 *
 * Invariants: every error names the path of the offending element; recursion
 * is bounded by DEPTH_MAX; no input can make us read outside a json_t or a
 * member the descriptor describes.
 */
#include "json.h"

#include "registry.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    PATH_TEXT_MAX = 256,
    FIELD_NAME_MAX = 128,  /* longest JSON field name we produce, with its NUL */
    DEPTH_MAX = 64,        /* nested messages; only recursive schemas come near */
    NUMBER_TEXT_MAX = 64,  /* longest numeric string we try to parse */
    QUOTE_MAX = 60,        /* bytes of untrusted text quoted in an error */
    SYNTAX_TEXT_MAX = 200, /* bytes of jansson's error text quoted */
};

/* Base64 goes through OpenSSL's int-sized interfaces: keep both the input
 * and the output of a conversion below INT_MAX. */
#define BASE64_BYTES_MAX ((size_t)(INT_MAX / 4) * 3)

typedef struct {
    char text[PATH_TEXT_MAX];
    size_t len;
    int depth;
} json_path;

/* --- paths and names --- */

/* protoc's ToJsonName: drop each '_' and upper-case the letter after it. */
static int json_field_name(const char *proto_name, char out[FIELD_NAME_MAX])
{
    size_t n = 0;
    bool upper = false;
    for (const char *c = proto_name; *c != '\0'; c++) {
        if (*c == '_') {
            upper = true;
            continue;
        }
        if (n + 1 >= FIELD_NAME_MAX)
            return -1;
        out[n++] = (upper && *c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A') : *c;
        upper = false;
    }
    out[n] = '\0';
    return 0;
}

/* The root of every path: the message's own name in lowerCamelCase. */
static void path_init(json_path *path, const ProtobufCMessageDescriptor *descriptor)
{
    const char *name = descriptor->short_name ? descriptor->short_name : "message";
    snprintf(path->text, sizeof path->text, "%s", name);
    if (path->text[0] >= 'A' && path->text[0] <= 'Z')
        path->text[0] = (char)(path->text[0] - 'A' + 'a');
    path->len = strlen(path->text);
    path->depth = 0;
}

/* Appends to the path; returns the length to restore with path_pop. A path
 * too long for the buffer is cut, never overrun. */
__attribute__((format(printf, 2, 3))) static size_t path_push(json_path *path, const char *format,
                                                              ...)
{
    size_t saved = path->len;
    if (path->len + 1 < sizeof path->text) {
        va_list args;
        va_start(args, format);
        vsnprintf(path->text + path->len, sizeof path->text - path->len, format, args);
        va_end(args);
        path->len += strlen(path->text + path->len);
    }
    return saved;
}

static void path_pop(json_path *path, size_t saved)
{
    path->len = saved;
    path->text[saved] = '\0';
}

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
        return "a number with a fraction or exponent";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "an unknown JSON value";
}

static const char *proto_type_name(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
        return "int32";
    case PROTOBUF_C_TYPE_SINT32:
        return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32:
        return "sfixed32";
    case PROTOBUF_C_TYPE_INT64:
        return "int64";
    case PROTOBUF_C_TYPE_SINT64:
        return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64:
        return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32:
        return "uint32";
    case PROTOBUF_C_TYPE_FIXED32:
        return "fixed32";
    case PROTOBUF_C_TYPE_UINT64:
        return "uint64";
    case PROTOBUF_C_TYPE_FIXED64:
        return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT:
        return "float";
    case PROTOBUF_C_TYPE_DOUBLE:
        return "double";
    case PROTOBUF_C_TYPE_BOOL:
        return "bool";
    case PROTOBUF_C_TYPE_ENUM:
        return "enum";
    case PROTOBUF_C_TYPE_STRING:
        return "string";
    case PROTOBUF_C_TYPE_BYTES:
        return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE:
        return "message";
    }
    return "unknown type";
}

/* Length of the valid RFC 3629 UTF-8 character at s (at most len bytes
 * available): no overlong forms, no surrogates, nothing above U+10FFFF.
 * 0 when s does not start a valid character. */
static size_t utf8_character(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t follow;
    uint32_t code, min;
    if ((c & 0xE0) == 0xC0) {
        follow = 1, code = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        follow = 2, code = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        follow = 3, code = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len <= follow)
        return 0;
    for (size_t k = 1; k <= follow; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (s[k] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return follow + 1;
}

/* protobuf-c does not check the strings it unpacks; jansson insists on UTF-8. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_character(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Untrusted text quoted in an error sentence, cut to fit out (size bytes,
 * with room for "..."): control characters and bytes that are not UTF-8
 * become '?', so the sentence stays one line of valid UTF-8 that can itself
 * go into JSON or a log. */
static const char *quote_text(const char *text, size_t len, char *out, size_t size)
{
    const unsigned char *in = (const unsigned char *)text;
    size_t i = 0, n = 0;
    while (i < len) {
        size_t character = utf8_character(in + i, len - i);
        size_t width = character ? character : 1;
        if (n + width + 4 > size)
            break;
        if (character == 0 || in[i] < 0x20 || in[i] == 0x7f)
            out[n++] = '?';
        else
            memcpy(out + n, in + i, width), n += width;
        i += width;
    }
    if (i < len)
        out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
    return out;
}

/* The shortest %g form that reads back as the same double, so that a
 * sentence quotes 1e+39 rather than 9.9999999999999994e+38. */
static void render_real(double real, char *out, size_t size)
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(out, size, "%.*g", precision, real);
        if (strtod(out, NULL) == real)
            return;
    }
}

/* A short rendering of a scalar JSON value for error sentences. */
static void json_render(const json_t *value, char *out, size_t size)
{
    char quoted[QUOTE_MAX + 4];
    if (json_is_integer(value))
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    else if (json_is_real(value))
        render_real(json_real_value(value), out, size);
    else if (json_is_string(value))
        snprintf(
            out, size, "\"%s\"",
            quote_text(json_string_value(value), json_string_length(value), quoted, sizeof quoted));
    else
        snprintf(out, size, "%s", json_kind(value));
}

/* Same in-memory element sizes as protobuf-c's repeated arrays. */
static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

/* --- encoding: message -> JSON --- */

static json_t *encode_message(const ProtobufCMessage *msg, json_path *path, jx_error *err);

static json_t *out_of_memory(jx_error *err, const json_path *path)
{
    jx_error_set(err, JX_ERR_SYSTEM, "out of memory encoding %s as JSON", path->text);
    return NULL;
}

/* Mirrors protobuf-c's packer, except that proto3 implicit-presence fields
 * holding their default are absent (the packer writes some of them). */
static bool field_present(const ProtobufCFieldDescriptor *field, const ProtobufCMessage *msg)
{
    const char *base = (const char *)msg;
    const void *member = base + field->offset;
    bool pointer_type =
        field->type == PROTOBUF_C_TYPE_MESSAGE || field->type == PROTOBUF_C_TYPE_STRING;

    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(const void *)(base + field->quantifier_offset) > 0;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(const void *)(base + field->quantifier_offset) != field->id)
            return false;
        if (pointer_type) {
            const void *pointer = *(const void *const *)member;
            return pointer != NULL && pointer != field->default_value;
        }
        return true;
    }
    if (field->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (pointer_type) {
            const void *pointer = *(const void *const *)member;
            return pointer != NULL && pointer != field->default_value;
        }
        return *(const protobuf_c_boolean *)(const void *)(base + field->quantifier_offset);
    }

    switch (field->type) { /* PROTOBUF_C_LABEL_NONE: proto3 implicit presence */
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)member != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)member != 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)member != 0; /* -0 counts as 0, as the mapping says */
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)member != 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member != 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *text = *(const char *const *)member;
        return text != NULL && text[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const ProtobufCMessage *const *)member != NULL;
    }
    return false;
}

static json_t *encode_floating(double value)
{
    if (isnan(value))
        return json_string("NaN");
    if (isinf(value))
        return json_string(value > 0 ? "Infinity" : "-Infinity");
    return json_real(value);
}

static json_t *encode_bytes(const ProtobufCBinaryData *bytes, json_path *path, jx_error *err)
{
    if (bytes->len == 0)
        return json_string("");
    if (bytes->len > BASE64_BYTES_MAX) {
        jx_error_set(err, JX_ERR_TOO_LARGE, "%s: %zu bytes are too many to encode as base64",
                     path->text, bytes->len);
        return NULL;
    }
    size_t text_len = (bytes->len + 2) / 3 * 4;
    unsigned char *text = malloc(text_len + 1);
    if (text == NULL)
        return out_of_memory(err, path);
    int written = EVP_EncodeBlock(text, bytes->data, (int)bytes->len);
    json_t *value = json_stringn_nocheck((const char *)text, (size_t)written);
    free(text);
    if (value == NULL)
        return out_of_memory(err, path);
    return value;
}

/* One value of the field's type at member (a singular member or one element
 * of a repeated array). */
static json_t *encode_value(const ProtobufCFieldDescriptor *field, const void *member,
                            json_path *path, jx_error *err)
{
    char number[32];
    json_t *value = NULL;

    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        value = json_integer(*(const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        value = json_integer(*(const uint32_t *)member);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(number, sizeof number, "%" PRId64, *(const int64_t *)member);
        value = json_string(number);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(number, sizeof number, "%" PRIu64, *(const uint64_t *)member);
        value = json_string(number);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        value = encode_floating(*(const float *)member);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        value = encode_floating(*(const double *)member);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        value = json_boolean(*(const protobuf_c_boolean *)member);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int number_value = *(const int *)member;
        const ProtobufCEnumValue *known =
            protobuf_c_enum_descriptor_get_value(field->descriptor, number_value);
        /* proto3 enums are open: a number this schema does not name survives */
        value = known ? json_string(known->name) : json_integer(number_value);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *text = *(const char *const *)member;
        if (text == NULL)
            text = "";
        size_t len = strlen(text);
        if (!utf8_valid((const unsigned char *)text, len)) {
            jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s is not valid UTF-8", path->text);
            return NULL;
        }
        value = json_stringn_nocheck(text, len);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return encode_bytes((const ProtobufCBinaryData *)member, path, err);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
        /* only a required or repeated member can be NULL here: the packer
         * writes it as an empty message, and so do we */
        if (sub != NULL)
            return encode_message(sub, path, err);
        value = json_object();
        break;
    }
    }
    if (value == NULL)
        return out_of_memory(err, path);
    return value;
}

static json_t *encode_repeated(const ProtobufCFieldDescriptor *field, const ProtobufCMessage *msg,
                               json_path *path, jx_error *err)
{
    const char *base = (const char *)msg;
    size_t count = *(const size_t *)(const void *)(base + field->quantifier_offset);
    const char *elements = *(const char *const *)(const void *)(base + field->offset);
    size_t size = element_size(field->type);

    json_t *array = json_array();
    if (array == NULL)
        return out_of_memory(err, path);
    for (size_t i = 0; i < count; i++) {
        size_t saved = path_push(path, "[%zu]", i);
        json_t *value = encode_value(field, elements + i * size, path, err);
        if (value == NULL || json_array_append_new(array, value) != 0) {
            if (value != NULL)
                out_of_memory(err, path);
            json_decref(array);
            return NULL;
        }
        path_pop(path, saved);
    }
    return array;
}

static json_t *encode_message(const ProtobufCMessage *msg, json_path *path, jx_error *err)
{
    const ProtobufCMessageDescriptor *descriptor = msg->descriptor;
    if (path->depth >= DEPTH_MAX) {
        jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: messages nested more than %d deep",
                     path->text, DEPTH_MAX);
        return NULL;
    }
    json_t *object = json_object();
    if (object == NULL)
        return out_of_memory(err, path);

    path->depth++;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        if (!field_present(field, msg))
            continue;
        char name[FIELD_NAME_MAX];
        if (json_field_name(field->name, name) != 0) {
            jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "%s: field name %.64s... is too long",
                         path->text, field->name);
            goto fail;
        }
        size_t saved = path_push(path, ".%s", name);
        json_t *value = field->label == PROTOBUF_C_LABEL_REPEATED
                            ? encode_repeated(field, msg, path, err)
                            : encode_value(field, (const char *)msg + field->offset, path, err);
        if (value == NULL)
            goto fail;
        if (json_object_set_new(object, name, value) != 0) {
            out_of_memory(err, path);
            goto fail;
        }
        path_pop(path, saved);
    }
    path->depth--;
    return object;

fail:
    json_decref(object);
    return NULL;
}

json_t *jx_json_from_message(const ProtobufCMessage *msg, jx_error *err)
{
    if (msg == NULL || msg->descriptor == NULL) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no message to encode as JSON");
        return NULL;
    }
    json_path path;
    path_init(&path, msg->descriptor);
    return encode_message(msg, &path, err);
}

/* --- decoding: JSON -> message --- */

static ProtobufCMessage *decode_message(const ProtobufCMessageDescriptor *descriptor,
                                        const json_t *object, json_path *path, jx_error *err);

static int wrong_type(jx_error *err, const json_path *path, const char *expected,
                      const json_t *value)
{
    return jx_error_set(err, JX_ERR_JSON_WRONG_TYPE, "%s: expected %s, got %s", path->text,
                        expected, json_kind(value));
}

static int out_of_range(jx_error *err, const json_path *path, const json_t *value,
                        ProtobufCType type)
{
    char shown[96];
    json_render(value, shown, sizeof shown);
    return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: %s is out of range for %s", path->text,
                        shown, proto_type_name(type));
}

static int not_an_integer(jx_error *err, const json_path *path, const json_t *value,
                          ProtobufCType type)
{
    char shown[96];
    json_render(value, shown, sizeof shown);
    return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: %s is not an integer, as %s requires",
                        path->text, shown, proto_type_name(type));
}

/* The text of a numeric JSON string, or NULL when it cannot be a number:
 * strtod would otherwise accept hex, "inf", leading blanks and a '+'. */
static const char *number_text(const json_t *value)
{
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len == 0 || len >= NUMBER_TEXT_MAX || strlen(text) != len)
        return NULL;
    if (!(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            return NULL;
    }
    return text;
}

/* Integers arrive as JSON integers, as numbers with an exponent or a zero
 * fraction (1e3, 5.0), or as strings holding either form. */
static int decode_signed(const ProtobufCFieldDescriptor *field, const json_t *value, int64_t min,
                         int64_t max, int64_t *out, const json_path *path, jx_error *err)
{
    double real;
    if (json_is_integer(value)) {
        json_int_t number = json_integer_value(value);
        if (number < min || number > max)
            return out_of_range(err, path, value, field->type);
        *out = number;
        return 0;
    } else if (json_is_real(value)) {
        real = json_real_value(value);
    } else if (json_is_string(value)) {
        const char *text = number_text(value);
        if (text == NULL)
            return not_an_integer(err, path, value, field->type);
        char *end;
        errno = 0;
        long long number = strtoll(text, &end, 10);
        if (end != text && *end == '\0') {
            if (errno == ERANGE || number < min || number > max)
                return out_of_range(err, path, value, field->type);
            *out = number;
            return 0;
        }
        errno = 0;
        real = strtod(text, &end);
        if (end == text || *end != '\0')
            return not_an_integer(err, path, value, field->type);
    } else {
        char expected[64];
        snprintf(expected, sizeof expected, "an integer (%s)", proto_type_name(field->type));
        return wrong_type(err, path, expected, value);
    }

    if (!isfinite(real) || real < -9223372036854775808.0 || real >= 9223372036854775808.0)
        return out_of_range(err, path, value, field->type);
    int64_t number = (int64_t)real;
    if ((double)number != real)
        return not_an_integer(err, path, value, field->type);
    if (number < min || number > max)
        return out_of_range(err, path, value, field->type);
    *out = number;
    return 0;
}

static int decode_unsigned(const ProtobufCFieldDescriptor *field, const json_t *value, uint64_t max,
                           uint64_t *out, const json_path *path, jx_error *err)
{
    double real;
    if (json_is_integer(value)) {
        json_int_t number = json_integer_value(value);
        if (number < 0 || (uint64_t)number > max)
            return out_of_range(err, path, value, field->type);
        *out = (uint64_t)number;
        return 0;
    } else if (json_is_real(value)) {
        real = json_real_value(value);
    } else if (json_is_string(value)) {
        const char *text = number_text(value);
        if (text == NULL)
            return not_an_integer(err, path, value, field->type);
        char *end;
        errno = 0;
        /* strtoull would wrap "-1" around to the largest value */
        if (text[0] == '-') {
            long long number = strtoll(text, &end, 10);
            if (end != text && *end == '\0') {
                if (errno == ERANGE || number != 0)
                    return out_of_range(err, path, value, field->type);
                *out = 0;
                return 0;
            }
        } else {
            unsigned long long number = strtoull(text, &end, 10);
            if (end != text && *end == '\0') {
                if (errno == ERANGE || number > max)
                    return out_of_range(err, path, value, field->type);
                *out = number;
                return 0;
            }
        }
        errno = 0;
        real = strtod(text, &end);
        if (end == text || *end != '\0')
            return not_an_integer(err, path, value, field->type);
    } else {
        char expected[64];
        snprintf(expected, sizeof expected, "an integer (%s)", proto_type_name(field->type));
        return wrong_type(err, path, expected, value);
    }

    if (!isfinite(real) || real < 0 || real >= 18446744073709551616.0)
        return out_of_range(err, path, value, field->type);
    uint64_t number = (uint64_t)real;
    if ((double)number != real)
        return not_an_integer(err, path, value, field->type);
    if (number > max)
        return out_of_range(err, path, value, field->type);
    *out = number;
    return 0;
}

static int decode_floating(const ProtobufCFieldDescriptor *field, const json_t *value, double *out,
                           const json_path *path, jx_error *err)
{
    double real;
    if (json_is_integer(value)) {
        real = (double)json_integer_value(value);
    } else if (json_is_real(value)) {
        real = json_real_value(value);
    } else if (json_is_string(value)) {
        const char *text = json_string_value(value);
        if (strcmp(text, "NaN") == 0) {
            *out = NAN;
            return 0;
        } else if (strcmp(text, "Infinity") == 0) {
            *out = INFINITY;
            return 0;
        } else if (strcmp(text, "-Infinity") == 0) {
            *out = -INFINITY;
            return 0;
        }
        const char *number = number_text(value);
        char *end = NULL;
        if (number != NULL)
            real = strtod(number, &end);
        if (number == NULL || end == number || *end != '\0') {
            char shown[96];
            json_render(value, shown, sizeof shown);
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: %s is not a number", path->text,
                                shown);
        }
    } else {
        return wrong_type(err, path, "a number", value);
    }
    if (!isfinite(real) ||
        (field->type == PROTOBUF_C_TYPE_FLOAT && (real > FLT_MAX || real < -FLT_MAX)))
        return out_of_range(err, path, value, field->type);
    *out = real;
    return 0;
}

static int decode_enum(const ProtobufCFieldDescriptor *field, const json_t *value, int32_t *out,
                       const json_path *path, jx_error *err)
{
    const ProtobufCEnumDescriptor *descriptor = field->descriptor;
    if (json_is_string(value)) {
        const ProtobufCEnumValue *known =
            protobuf_c_enum_descriptor_get_value_by_name(descriptor, json_string_value(value));
        if (known == NULL) {
            char shown[96];
            json_render(value, shown, sizeof shown);
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: %s is not a value of %s",
                                path->text, shown, descriptor->name);
        }
        *out = known->value;
        return 0;
    }
    if (json_is_integer(value)) {
        json_int_t number = json_integer_value(value);
        if (number < INT32_MIN || number > INT32_MAX)
            return out_of_range(err, path, value, PROTOBUF_C_TYPE_ENUM);
        *out = (int32_t)number;
        return 0;
    }
    char expected[160];
    snprintf(expected, sizeof expected, "a value name of %s or its number", descriptor->name);
    return wrong_type(err, path, expected, value);
}

static int decode_base64(const json_t *value, ProtobufCBinaryData *out, const json_path *path,
                         jx_error *err)
{
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    size_t padding = 0;
    while (len > 0 && text[len - 1] == '=' && padding < 2) {
        len--;
        padding++;
    }
    if (len == 0 && padding == 0) {
        out->data = NULL;
        out->len = 0;
        return 0;
    }
    if (len / 4 * 3 > BASE64_BYTES_MAX)
        return jx_error_set(err, JX_ERR_TOO_LARGE, "%s: %zu characters of base64 are too many",
                            path->text, len);
    /* a lone sixth of a byte, or padding that does not complete a quantum */
    if (len % 4 == 1 || (padding > 0 && (len + padding) % 4 != 0))
        goto invalid;

    /* OpenSSL decodes standard, padded base64 only: translate the URL-safe
     * alphabet and restore the padding first. */
    size_t padded_len = (len + 3) / 4 * 4;
    char *padded = malloc(padded_len + 1);
    uint8_t *data = malloc(padded_len / 4 * 3);
    if (padded == NULL || data == NULL) {
        free(padded);
        free(data);
        return jx_error_set(err, JX_ERR_SYSTEM, "%s: out of memory decoding base64", path->text);
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/')) {
            free(padded);
            free(data);
            goto invalid;
        }
        padded[i] = c;
    }
    memset(padded + len, '=', padded_len - len);
    padded[padded_len] = '\0';
    int decoded = EVP_DecodeBlock(data, (const unsigned char *)padded, (int)padded_len);
    free(padded);
    if (decoded < 0 || (size_t)decoded < padded_len - len) {
        free(data);
        goto invalid;
    }
    /* EVP_DecodeBlock counts the zero bytes the padding stands for */
    out->len = (size_t)decoded - (padded_len - len);
    out->data = data;
    return 0;

invalid:;
    char shown[96];
    json_render(value, shown, sizeof shown);
    return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: %s is not valid base64", path->text,
                        shown);
}

/* Decodes one value of the field's type into member (a singular member or
 * one element of a repeated array), writing member only on success. */
static int decode_value(const ProtobufCFieldDescriptor *field, const json_t *value, void *member,
                        json_path *path, jx_error *err)
{
    int64_t signed_number;
    uint64_t unsigned_number;
    double real;

    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (decode_signed(field, value, INT32_MIN, INT32_MAX, &signed_number, path, err) != 0)
            return -1;
        *(int32_t *)member = (int32_t)signed_number;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (decode_signed(field, value, INT64_MIN, INT64_MAX, &signed_number, path, err) != 0)
            return -1;
        *(int64_t *)member = signed_number;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (decode_unsigned(field, value, UINT32_MAX, &unsigned_number, path, err) != 0)
            return -1;
        *(uint32_t *)member = (uint32_t)unsigned_number;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (decode_unsigned(field, value, UINT64_MAX, &unsigned_number, path, err) != 0)
            return -1;
        *(uint64_t *)member = unsigned_number;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (decode_floating(field, value, &real, path, err) != 0)
            return -1;
        *(float *)member = (float)real;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (decode_floating(field, value, &real, path, err) != 0)
            return -1;
        *(double *)member = real;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(value))
            return wrong_type(err, path, "true or false", value);
        *(protobuf_c_boolean *)member = json_is_true(value);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return decode_enum(field, value, (int32_t *)member, path, err);
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(value))
            return wrong_type(err, path, "a string", value);
        const char *text = json_string_value(value);
        size_t len = json_string_length(value);
        /* jansson's parser refuses both, but a caller's json_t may hold them */
        if (memchr(text, '\0', len) != NULL)
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                                "%s: the string contains a NUL character", path->text);
        if (!utf8_valid((const unsigned char *)text, len))
            return jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s is not valid UTF-8", path->text);
        char *copy = malloc(len + 1);
        if (copy == NULL)
            return jx_error_set(err, JX_ERR_SYSTEM, "%s: out of memory", path->text);
        memcpy(copy, text, len + 1);
        *(char **)member = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (!json_is_string(value))
            return wrong_type(err, path, "a base64 string", value);
        return decode_base64(value, (ProtobufCBinaryData *)member, path, err);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *descriptor = field->descriptor;
        ProtobufCMessage *sub = decode_message(descriptor, value, path, err);
        if (sub == NULL)
            return -1;
        *(ProtobufCMessage **)member = sub;
        return 0;
    }
    }
    return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "%s: field type %d is not supported",
                        path->text, (int)field->type);
}

static int decode_repeated(const ProtobufCFieldDescriptor *field, ProtobufCMessage *msg,
                           const json_t *value, json_path *path, jx_error *err)
{
    char *base = (char *)msg;
    if (!json_is_array(value))
        return wrong_type(err, path, "an array", value);
    size_t count = json_array_size(value);
    if (count == 0)
        return 0;
    char *elements = calloc(count, element_size(field->type));
    if (elements == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "%s: out of memory for %zu elements", path->text,
                            count);
    /* counted before filled: free_unpacked copes with the zeroed rest */
    *(void **)(void *)(base + field->offset) = elements;
    *(size_t *)(void *)(base + field->quantifier_offset) = count;

    size_t size = element_size(field->type);
    for (size_t i = 0; i < count; i++) {
        size_t saved = path_push(path, "[%zu]", i);
        if (decode_value(field, json_array_get(value, i), elements + i * size, path, err) != 0)
            return -1;
        path_pop(path, saved);
    }
    return 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *descriptor,
                                                  const char *key)
{
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        char name[FIELD_NAME_MAX];
        if (json_field_name(descriptor->fields[i].name, name) == 0 && strcmp(name, key) == 0)
            return &descriptor->fields[i];
    }
    return protobuf_c_message_descriptor_get_field_by_name(descriptor, key);
}

static const char *field_display_name(const ProtobufCFieldDescriptor *field,
                                      char name[FIELD_NAME_MAX])
{
    return json_field_name(field->name, name) == 0 ? name : field->name;
}

static ProtobufCMessage *decode_message(const ProtobufCMessageDescriptor *descriptor,
                                        const json_t *object, json_path *path, jx_error *err)
{
    if (!json_is_object(object)) {
        char expected[160];
        snprintf(expected, sizeof expected, "an object (%s)", descriptor->name);
        wrong_type(err, path, expected, object);
        return NULL;
    }
    if (path->depth >= DEPTH_MAX) {
        jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s: messages nested more than %d deep",
                     path->text, DEPTH_MAX);
        return NULL;
    }

    const char **given_as = calloc(descriptor->n_fields + 1, sizeof *given_as);
    ProtobufCMessage *msg = malloc(descriptor->sizeof_message);
    if (given_as == NULL || msg == NULL) {
        free(given_as);
        free(msg);
        jx_error_set(err, JX_ERR_SYSTEM, "%s: out of memory", path->text);
        return NULL;
    }
    protobuf_c_message_init(descriptor, msg);
    char *base = (char *)msg;

    path->depth++;
    const char *key;
    json_t *value;
    /* jansson's iteration does not modify the object */
    json_object_foreach((json_t *)object, key, value)
    {
        const ProtobufCFieldDescriptor *field = find_field(descriptor, key);
        if (field == NULL) {
            char quoted[QUOTE_MAX + 4];
            jx_error_set(err, JX_ERR_JSON_UNKNOWN_FIELD, "%s.%s is not a field of %s", path->text,
                         quote_text(key, strlen(key), quoted, sizeof quoted), descriptor->name);
            goto fail;
        }
        char name[FIELD_NAME_MAX];
        const char *shown = field_display_name(field, name);
        size_t index = (size_t)(field - descriptor->fields);
        if (given_as[index] != NULL) {
            jx_error_set(err, JX_ERR_JSON_BAD_VALUE, "%s.%s is given twice, as \"%s\" and \"%s\"",
                         path->text, shown, given_as[index], key);
            goto fail;
        }
        given_as[index] = key;
        if (json_is_null(value))
            continue; /* null means the default, for every field type */

        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t chosen = *(uint32_t *)(void *)(base + field->quantifier_offset);
            if (chosen != 0) {
                const ProtobufCFieldDescriptor *other =
                    protobuf_c_message_descriptor_get_field(descriptor, chosen);
                char other_name[FIELD_NAME_MAX];
                jx_error_set(err, JX_ERR_JSON_BAD_VALUE,
                             "%s: %s and %s belong to the same oneof; give at most one", path->text,
                             other ? field_display_name(other, other_name) : "?", shown);
                goto fail;
            }
        }

        size_t saved = path_push(path, ".%s", shown);
        int rc;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = decode_repeated(field, msg, value, path, err);
        } else {
            rc = decode_value(field, value, base + field->offset, path, err);
            if (rc == 0 && (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(uint32_t *)(void *)(base + field->quantifier_offset) = field->id;
            else if (rc == 0 && field->label == PROTOBUF_C_LABEL_OPTIONAL &&
                     field->type != PROTOBUF_C_TYPE_STRING &&
                     field->type != PROTOBUF_C_TYPE_MESSAGE)
                *(protobuf_c_boolean *)(void *)(base + field->quantifier_offset) = 1;
        }
        if (rc != 0)
            goto fail;
        path_pop(path, saved);
    }
    path->depth--;
    free(given_as);
    return msg;

fail:
    free(given_as);
    protobuf_c_message_free_unpacked(msg, NULL);
    return NULL;
}

ProtobufCMessage *jx_json_to_message(const ProtobufCMessageDescriptor *descriptor,
                                     const json_t *object, jx_error *err)
{
    if (descriptor == NULL || object == NULL) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no descriptor or no JSON to decode");
        return NULL;
    }
    json_path path;
    path_init(&path, descriptor);
    return decode_message(descriptor, object, &path, err);
}

/* --- text and payload conveniences --- */

ProtobufCMessage *jx_json_text_to_message(const ProtobufCMessageDescriptor *descriptor,
                                          const char *text, size_t len, jx_error *err)
{
    if (descriptor == NULL || (text == NULL && len > 0)) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no descriptor or no JSON text to decode");
        return NULL;
    }
    json_error_t syntax;
    /* DECODE_ANY: a top-level value that is not an object is a wrong type,
     * which names what was found, rather than a bare syntax error */
    json_t *root =
        json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &syntax);
    if (root == NULL) {
        /* jansson quotes the offending input, which may hold anything */
        char quoted[SYNTAX_TEXT_MAX];
        jx_error_set(err, JX_ERR_JSON_SYNTAX, "JSON syntax error at line %d, column %d: %s",
                     syntax.line, syntax.column,
                     quote_text(syntax.text, strlen(syntax.text), quoted, sizeof quoted));
        return NULL;
    }
    ProtobufCMessage *msg = jx_json_to_message(descriptor, root, err);
    json_decref(root);
    return msg;
}

char *jx_json_text_from_message(const ProtobufCMessage *msg, int flags, jx_error *err)
{
    json_t *object = jx_json_from_message(msg, err);
    if (object == NULL)
        return NULL;
    char *text = json_dumps(object, (flags & JX_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT);
    json_decref(object);
    if (text == NULL)
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory writing JSON text");
    return text;
}

static const jx_message_type *find_type(const char *type, jx_error *err)
{
    const jx_message_type *found = jx_registry_find(type);
    if (found == NULL)
        jx_error_set(err, JX_ERR_UNKNOWN_TYPE, "%s is not a message type justx knows",
                     type ? type : "(no type)");
    return found;
}

char *jx_json_encode_payload(const char *type, const uint8_t *bytes, size_t len, int flags,
                             jx_error *err)
{
    const jx_message_type *found = find_type(type, err);
    if (found == NULL)
        return NULL;
    if (bytes == NULL && len > 0) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no payload bytes to encode");
        return NULL;
    }
    static const uint8_t empty[1];
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(found->descriptor, NULL, len, bytes ? bytes : empty);
    if (msg == NULL) {
        jx_error_set(err, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE,
                     "the payload (%zu bytes) does not decode as %s", len, found->name);
        return NULL;
    }
    char *text = jx_json_text_from_message(msg, flags, err);
    protobuf_c_message_free_unpacked(msg, NULL);
    return text;
}

int jx_json_decode_payload(const char *type, const char *text, size_t len, uint8_t **bytes_out,
                           size_t *len_out, jx_error *err)
{
    *bytes_out = NULL;
    *len_out = 0;
    const jx_message_type *found = find_type(type, err);
    if (found == NULL)
        return -1;
    ProtobufCMessage *msg = jx_json_text_to_message(found->descriptor, text, len, err);
    if (msg == NULL)
        return -1;
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(size ? size : 1);
    if (bytes == NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory packing a %zu-byte %s", size,
                            found->name);
    }
    protobuf_c_message_pack(msg, bytes);
    protobuf_c_message_free_unpacked(msg, NULL);
    *bytes_out = bytes;
    *len_out = size;
    return 0;
}
