/* test_json.c — the generic JSON mapping: round trips for every registry type,
 * the example documents in tests/data/json/, each rule of the protobuf JSON
 * mapping, each error with its path, and random mutations that must never
 * crash (run under ASan/UBSan in the sanitizer build).
 *
 * Fully populated messages are made by a filler that walks the descriptors
 * itself, so a field added to a schema is covered without touching this file;
 * its output is compared after packing, i.e. by protobuf-c's own encoder.
 */
#include "json.h"
#include "justx/v1/documents.pb-c.h"
#include "justx/v1/envelope.pb-c.h"
#include "registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

enum { FILL_DEPTH_MAX = 4 };

static const struct {
    const char *file;
    const char *type;
} examples[] = {
    {"sentence_order.json", "justx.v1.SentenceOrder"},
    {"probation_referral.json", "justx.v1.ProbationReferral"},
    {"risk_needs_assessment.json", "justx.v1.RiskNeedsAssessment"},
    {"case_transfer.json", "justx.v1.CaseTransfer"},
    {"status_update.json", "justx.v1.StatusUpdate"},
};
#define EXAMPLE_COUNT (sizeof examples / sizeof examples[0])

/* --- helpers --- */

static char *read_example(const char *file, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/json/%s", JX_SOURCE_DIR, file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return text;
}

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(*len ? *len : 1);
    assert_non_null(bytes);
    assert_int_equal(protobuf_c_message_pack(msg, bytes), *len);
    return bytes;
}

static void assert_same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
}

/* An independent lowerCamelCase conversion, as the test's oracle. */
static void camel(const char *name, char *out, size_t size)
{
    size_t n = 0;
    for (const char *c = name; *c && n + 1 < size; c++) {
        if (*c == '_' && c[1] >= 'a' && c[1] <= 'z') {
            out[n++] = (char)(c[1] - 32);
            c++;
        } else if (*c != '_') {
            out[n++] = *c;
        }
    }
    out[n] = '\0';
}

static ProtobufCMessage *decode_text(const ProtobufCMessageDescriptor *d, const char *text,
                                     jx_error *err)
{
    jx_error_clear(err);
    return jx_json_text_to_message(d, text, strlen(text), err);
}

/* Decoding text must fail with code, and the sentence must contain fragment. */
static void expect_error(const ProtobufCMessageDescriptor *d, const char *text, jx_error_code code,
                         const char *fragment)
{
    jx_error err;
    ProtobufCMessage *msg = decode_text(d, text, &err);
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
        fail_msg("accepted %s", text);
    }
    if (err.code != code)
        fail_msg("%s: expected %s, got %s: %s", text, jx_error_code_name(code),
                 jx_error_code_name(err.code), err.message);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.message, fragment);
}

/* Decodes text (which must succeed) and returns its re-encoding as JSON. */
static json_t *reencode(const ProtobufCMessageDescriptor *d, const char *text)
{
    jx_error err;
    ProtobufCMessage *msg = decode_text(d, text, &err);
    if (msg == NULL)
        fail_msg("%s: %s", text, err.message);
    json_t *json = jx_json_from_message(msg, &err);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (json == NULL)
        fail_msg("encode: %s", err.message);
    return json;
}

/* --- a filler that sets every field, from the descriptors --- */

static ProtobufCMessage *fill_message(const ProtobufCMessageDescriptor *d, int depth,
                                      unsigned *counter);

static void fill_value(const ProtobufCFieldDescriptor *f, void *member, int depth,
                       unsigned *counter)
{
    unsigned k = ++*counter;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
        /* negative int32s take ten bytes on the wire: worth covering */
        *(int32_t *)member = (k % 2) ? (int32_t)(100000 + k) : -(int32_t)(7 + k);
        break;
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)member = -(int32_t)(1000 + k);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)member = 4000000000u + k;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)member = (k % 2) ? INT64_C(1767605400000) + k : INT64_MIN + k;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)member = UINT64_MAX - k;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)member = 1.5f + (float)k;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)member = -2.25 * k;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)member = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)member = e->values[e->n_values - 1].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char text[128];
        snprintf(text, sizeof text, "%s-%u Жаңы \"quoted\"\n", f->name, k);
        *(char **)member = strdup(text);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bytes = member;
        bytes->len = 3 + k % 5;
        bytes->data = malloc(bytes->len);
        for (size_t i = 0; i < bytes->len; i++)
            bytes->data[i] = i == 0 ? 0x00 : i == 1 ? 0xff : (uint8_t)(k * 31 + i);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (depth < FILL_DEPTH_MAX)
            *(ProtobufCMessage **)member = fill_message(f->descriptor, depth + 1, counter);
        break;
    }
}

static ProtobufCMessage *fill_message(const ProtobufCMessageDescriptor *d, int depth,
                                      unsigned *counter)
{
    ProtobufCMessage *msg = malloc(d->sizeof_message);
    assert_non_null(msg);
    protobuf_c_message_init(d, msg);
    char *base = (char *)msg;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *chosen = (uint32_t *)(void *)(base + f->quantifier_offset);
            if (*chosen != 0)
                continue;
            *chosen = f->id;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 2 + *counter % 2;
            size_t size =
                f->type == PROTOBUF_C_TYPE_BYTES     ? sizeof(ProtobufCBinaryData)
                : f->type == PROTOBUF_C_TYPE_STRING  ? sizeof(char *)
                : f->type == PROTOBUF_C_TYPE_MESSAGE ? sizeof(void *)
                : f->type == PROTOBUF_C_TYPE_BOOL    ? sizeof(protobuf_c_boolean)
                : (f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                   f->type == PROTOBUF_C_TYPE_SINT64 || f->type == PROTOBUF_C_TYPE_FIXED64 ||
                   f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_DOUBLE)
                    ? 8
                    : 4;
            char *array = calloc(n, size);
            for (size_t j = 0; j < n; j++)
                fill_value(f, array + j * size, depth, counter);
            *(void **)(void *)(base + f->offset) = array;
            *(size_t *)(void *)(base + f->quantifier_offset) = n;
        } else {
            fill_value(f, base + f->offset, depth, counter);
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_MESSAGE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(protobuf_c_boolean *)(void *)(base + f->quantifier_offset) = 1;
        }
    }
    return msg;
}

/* Every field of every object is in the JSON (proves the filler and the
 * encoder together left nothing out). */
static void assert_every_field(const ProtobufCMessageDescriptor *d, const json_t *object, int depth)
{
    assert_true(json_is_object(object));
    uint32_t chosen_oneof_offsets[16];
    size_t oneofs = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            bool seen = false;
            for (size_t j = 0; j < oneofs; j++)
                seen |= chosen_oneof_offsets[j] == f->quantifier_offset;
            if (seen)
                continue;
            chosen_oneof_offsets[oneofs++] = f->quantifier_offset;
        }
        char name[128];
        camel(f->name, name, sizeof name);
        const json_t *value = json_object_get(object, name);
        if (value == NULL)
            fail_msg("%s.%s is missing from the JSON", d->name, name);
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || depth >= FILL_DEPTH_MAX)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t index;
            const json_t *element;
            json_array_foreach(value, index, element)
                assert_every_field(f->descriptor, element, depth + 1);
        } else {
            assert_every_field(f->descriptor, value, depth + 1);
        }
    }
}

/* --- round trips --- */

static void round_trip(const ProtobufCMessageDescriptor *d, const char *type)
{
    unsigned counter = 0;
    jx_error err;
    ProtobufCMessage *original = fill_message(d, 0, &counter);
    size_t original_len;
    uint8_t *original_bytes = pack(original, &original_len);

    /* json_t both ways */
    json_t *json = jx_json_from_message(original, &err);
    if (json == NULL)
        fail_msg("%s: %s", type, err.message);
    assert_every_field(d, json, 0);
    ProtobufCMessage *decoded = jx_json_to_message(d, json, &err);
    if (decoded == NULL)
        fail_msg("%s: %s", type, err.message);
    size_t decoded_len;
    uint8_t *decoded_bytes = pack(decoded, &decoded_len);
    assert_same_bytes(original_bytes, original_len, decoded_bytes, decoded_len);

    /* text both ways, pretty */
    char *text = jx_json_text_from_message(original, JX_JSON_PRETTY, &err);
    assert_non_null(text);
    assert_non_null(strchr(text, '\n'));
    ProtobufCMessage *from_text = jx_json_text_to_message(d, text, strlen(text), &err);
    if (from_text == NULL)
        fail_msg("%s: %s", type, err.message);
    size_t from_text_len;
    uint8_t *from_text_bytes = pack(from_text, &from_text_len);
    assert_same_bytes(original_bytes, original_len, from_text_bytes, from_text_len);

    /* serialized payload both ways, compact */
    char *payload_text = jx_json_encode_payload(type, original_bytes, original_len, 0, &err);
    if (payload_text == NULL)
        fail_msg("%s: %s", type, err.message);
    assert_null(strchr(payload_text, '\n'));
    uint8_t *payload_bytes;
    size_t payload_len;
    if (jx_json_decode_payload(type, payload_text, strlen(payload_text), &payload_bytes,
                               &payload_len, &err) != 0)
        fail_msg("%s: %s", type, err.message);
    assert_same_bytes(original_bytes, original_len, payload_bytes, payload_len);

    free(payload_bytes);
    free(payload_text);
    free(from_text_bytes);
    protobuf_c_message_free_unpacked(from_text, NULL);
    free(text);
    free(decoded_bytes);
    protobuf_c_message_free_unpacked(decoded, NULL);
    json_decref(json);
    free(original_bytes);
    protobuf_c_message_free_unpacked(original, NULL);
}

static void test_round_trip_every_registry_type(void **state)
{
    (void)state;
    size_t count;
    const jx_message_type *types = jx_registry_all(&count);
    assert_true(count >= 5);
    for (size_t i = 0; i < count; i++)
        round_trip(types[i].descriptor, types[i].name);
}

/* The examples are canonical: decoding and re-encoding gives the same JSON,
 * and their attachments carry the right digests. */
static void test_examples_decode_and_reencode(void **state)
{
    (void)state;
    for (size_t i = 0; i < EXAMPLE_COUNT; i++) {
        size_t len;
        char *text = read_example(examples[i].file, &len);
        const jx_message_type *type = jx_registry_find(examples[i].type);
        assert_non_null(type);
        jx_error err;
        ProtobufCMessage *msg = jx_json_text_to_message(type->descriptor, text, len, &err);
        if (msg == NULL)
            fail_msg("%s: %s", examples[i].file, err.message);

        json_t *again = jx_json_from_message(msg, &err);
        assert_non_null(again);
        json_t *original = json_loadb(text, len, 0, NULL);
        assert_non_null(original);
        if (!json_equal(original, again)) {
            char *shown = json_dumps(again, JSON_INDENT(2));
            fail_msg("%s re-encodes differently:\n%s", examples[i].file, shown);
        }

        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name(type->descriptor, "attachments");
        assert_non_null(field);
        size_t n = *(size_t *)(void *)((char *)msg + field->quantifier_offset);
        Justx__V1__Attachment **attachments =
            *(Justx__V1__Attachment ***)(void *)((char *)msg + field->offset);
        for (size_t j = 0; j < n; j++) {
            uint8_t digest[SHA256_DIGEST_LENGTH];
            SHA256(attachments[j]->content.data, attachments[j]->content.len, digest);
            assert_int_equal(attachments[j]->sha256.len, sizeof digest);
            assert_memory_equal(attachments[j]->sha256.data, digest, sizeof digest);
        }

        /* and through the payload functions */
        uint8_t *bytes;
        size_t bytes_len;
        assert_int_equal(
            jx_json_decode_payload(examples[i].type, text, len, &bytes, &bytes_len, &err), 0);
        char *text_again = jx_json_encode_payload(examples[i].type, bytes, bytes_len, 0, &err);
        assert_non_null(text_again);
        json_t *parsed_again = json_loads(text_again, 0, NULL);
        assert_true(json_equal(original, parsed_again));

        json_decref(parsed_again);
        free(text_again);
        free(bytes);
        json_decref(original);
        json_decref(again);
        protobuf_c_message_free_unpacked(msg, NULL);
        free(text);
    }
}

/* --- the rules of the mapping --- */

static void test_int64_as_string(void **state)
{
    (void)state;
    jx_error err;
    Justx__V1__SentenceOrder order = JUSTX__V1__SENTENCE_ORDER__INIT;
    order.fine_amount_minor = INT64_C(123456789012345);
    order.term_days = 730;
    json_t *json = jx_json_from_message(&order.base, &err);
    assert_non_null(json);
    assert_true(json_is_string(json_object_get(json, "fineAmountMinor")));
    assert_string_equal(json_string_value(json_object_get(json, "fineAmountMinor")),
                        "123456789012345");
    assert_true(json_is_integer(json_object_get(json, "termDays")));
    assert_int_equal(json_integer_value(json_object_get(json, "termDays")), 730);
    json_decref(json);

    Justx__V1__StatusUpdate update = JUSTX__V1__STATUS_UPDATE__INIT;
    update.effective_at_ms = INT64_MIN;
    json = jx_json_from_message(&update.base, &err);
    assert_string_equal(json_string_value(json_object_get(json, "effectiveAtMs")),
                        "-9223372036854775808");
    json_decref(json);

    Justx__V1__Receipt receipt = JUSTX__V1__RECEIPT__INIT;
    receipt.journal_index = UINT64_MAX;
    json = jx_json_from_message(&receipt.base, &err);
    assert_string_equal(json_string_value(json_object_get(json, "journalIndex")),
                        "18446744073709551615");
    Justx__V1__Receipt *back =
        (Justx__V1__Receipt *)jx_json_to_message(&justx__v1__receipt__descriptor, json, &err);
    assert_non_null(back);
    assert_true(back->journal_index == UINT64_MAX);
    protobuf_c_message_free_unpacked(&back->base, NULL);
    json_decref(json);

    /* on input: numbers, strings, exponents, extremes */
    const ProtobufCMessageDescriptor *d = &justx__v1__sentence_order__descriptor;
    static const struct {
        const char *text;
        int64_t value;
    } accepted[] = {
        {"{\"fineAmountMinor\": 1767605400000}", INT64_C(1767605400000)},
        {"{\"fineAmountMinor\": \"-42\"}", -42},
        {"{\"fineAmountMinor\": \"9223372036854775807\"}", INT64_MAX},
        {"{\"fineAmountMinor\": \"-9223372036854775808\"}", INT64_MIN},
        {"{\"fineAmountMinor\": 1e3}", 1000},
        {"{\"fineAmountMinor\": \"1e3\"}", 1000},
        {"{\"fineAmountMinor\": 5.0}", 5},
        {"{\"fine_amount_minor\": 9007199254740993}", INT64_C(9007199254740993)},
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        Justx__V1__SentenceOrder *msg =
            (Justx__V1__SentenceOrder *)decode_text(d, accepted[i].text, &err);
        if (msg == NULL)
            fail_msg("%s: %s", accepted[i].text, err.message);
        assert_true(msg->fine_amount_minor == accepted[i].value);
        protobuf_c_message_free_unpacked(&msg->base, NULL);
    }
    expect_error(&justx__v1__receipt__descriptor, "{\"journalIndex\": -1}", JX_ERR_JSON_BAD_VALUE,
                 "receipt.journalIndex: -1 is out of range for uint64");
    expect_error(&justx__v1__receipt__descriptor, "{\"journalIndex\": \"18446744073709551616\"}",
                 JX_ERR_JSON_BAD_VALUE, "out of range for uint64");
    expect_error(&justx__v1__receipt__descriptor, "{\"journalIndex\": \"-1\"}",
                 JX_ERR_JSON_BAD_VALUE, "out of range for uint64");
}

static void test_bytes_base64(void **state)
{
    (void)state;
    jx_error err;
    static uint8_t binary[] = {0x00, 0xff, 0xfe, 0x01, 0x00};
    Justx__V1__Attachment attachment = JUSTX__V1__ATTACHMENT__INIT;
    attachment.content.data = binary;
    attachment.content.len = sizeof binary;
    json_t *json = jx_json_from_message(&attachment.base, &err);
    assert_string_equal(json_string_value(json_object_get(json, "content")), "AP/+AQA=");
    json_decref(json);

    /* standard, URL-safe, padded or not: all the same bytes */
    const char *spellings[] = {"AP/+AQA=", "AP/+AQA", "AP_-AQA=", "AP_-AQA"};
    for (size_t i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"content\": \"%s\"}", spellings[i]);
        Justx__V1__Attachment *msg =
            (Justx__V1__Attachment *)decode_text(&justx__v1__attachment__descriptor, text, &err);
        if (msg == NULL)
            fail_msg("%s: %s", text, err.message);
        assert_int_equal(msg->content.len, sizeof binary);
        assert_memory_equal(msg->content.data, binary, sizeof binary);
        protobuf_c_message_free_unpacked(&msg->base, NULL);
    }

    /* every byte value, at every length mod 3 */
    uint8_t all[258];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(255 - i % 256);
    for (size_t len = 0; len <= sizeof all; len += (len < 8 ? 1 : 83)) {
        attachment.content.data = all;
        attachment.content.len = len;
        json = jx_json_from_message(&attachment.base, &err);
        Justx__V1__Attachment *msg = (Justx__V1__Attachment *)jx_json_to_message(
            &justx__v1__attachment__descriptor, json, &err);
        assert_non_null(msg);
        assert_int_equal(msg->content.len, len);
        if (len > 0)
            assert_memory_equal(msg->content.data, all, len);
        protobuf_c_message_free_unpacked(&msg->base, NULL);
        json_decref(json);
    }

    const char *invalid[] = {
        "AP/+A", "A===", "AP*+", "AP/+AQ=A", "AP/+ AQA=", "=", "AQA==", "AQ=", "\\u00e9AAA"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"attachments\": [{}, {\"content\": \"%s\"}]}", invalid[i]);
        expect_error(&justx__v1__sentence_order__descriptor, text, JX_ERR_JSON_BAD_VALUE,
                     "sentenceOrder.attachments[1].content: ");
    }
}

static void test_defaults_omitted(void **state)
{
    (void)state;
    jx_error err;
    Justx__V1__SentenceOrder order = JUSTX__V1__SENTENCE_ORDER__INIT;
    json_t *json = jx_json_from_message(&order.base, &err);
    assert_int_equal(json_object_size(json), 0);
    json_decref(json);

    Justx__V1__Person person = JUSTX__V1__PERSON__INIT;
    char *empty = strdup(""); /* an empty string that is not the default pointer */
    person.address = empty;
    order.person = &person;
    order.case_number = "UD-1234/26";
    order.term_days = 0;
    order.sentence_kind = JUSTX__V1__SENTENCE_KIND__SENTENCE_KIND_UNSPECIFIED;
    json = jx_json_from_message(&order.base, &err);
    assert_int_equal(json_object_size(json), 2);
    /* a set submessage stays, even when empty */
    assert_true(json_is_object(json_object_get(json, "person")));
    assert_int_equal(json_object_size(json_object_get(json, "person")), 0);
    assert_string_equal(json_string_value(json_object_get(json, "caseNumber")), "UD-1234/26");
    json_decref(json);
    free(empty);

    /* null on input means the default, for any field */
    json = reencode(&justx__v1__sentence_order__descriptor,
                    "{\"person\": null, \"provisions\": null, \"termDays\": null, "
                    "\"sentenceKind\": null, \"fineAmountMinor\": null, \"caseNumber\": null}");
    assert_int_equal(json_object_size(json), 0);
    json_decref(json);

    /* explicit defaults on input vanish on output */
    json = reencode(&justx__v1__sentence_order__descriptor,
                    "{\"termDays\": 0, \"caseNumber\": \"\", \"provisions\": [], "
                    "\"sentenceKind\": \"SENTENCE_KIND_UNSPECIFIED\", \"fineAmountMinor\": \"0\"}");
    assert_int_equal(json_object_size(json), 0);
    json_decref(json);
}

static void test_field_names_and_enums(void **state)
{
    (void)state;
    /* original proto names are accepted and come back as lowerCamelCase */
    json_t *json = reencode(&justx__v1__sentence_order__descriptor,
                            "{\"case_number\": \"UD-1/26\", \"person\": {\"family_name\": "
                            "\"Asanov\", \"date_of_birth\": \"1994-03-15\", \"sex\": 1}, "
                            "\"sentence_kind\": \"SENTENCE_KIND_FINE\", \"termDays\": \"365\"}");
    json_t *expected =
        json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:i}", "caseNumber", "UD-1/26", "person",
                  "familyName", "Asanov", "dateOfBirth", "1994-03-15", "sex", "SEX_MALE",
                  "sentenceKind", "SENTENCE_KIND_FINE", "termDays", 365);
    assert_true(json_equal(json, expected));
    json_decref(expected);
    json_decref(json);

    /* an enum number this schema does not name survives both ways */
    json = reencode(&justx__v1__person__descriptor, "{\"sex\": 42}");
    assert_int_equal(json_integer_value(json_object_get(json, "sex")), 42);
    json_decref(json);

    /* nested enum of a message */
    json = reencode(&justx__v1__case_transfer__descriptor,
                    "{\"reason\": \"REASON_INTERNATIONAL_PROBATION_TRANSFER\"}");
    assert_string_equal(json_string_value(json_object_get(json, "reason")),
                        "REASON_INTERNATIONAL_PROBATION_TRANSFER");
    json_decref(json);
}

/* --- errors, each naming its path --- */

static void test_errors(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &justx__v1__sentence_order__descriptor;

    expect_error(d, "{\n  \"caseNumber\": \"UD-1/26\",\n  \"termDays\": 12,,\n}",
                 JX_ERR_JSON_SYNTAX, "line 3");
    expect_error(d, "{\"caseNumber\": \"a\", \"caseNumber\": \"b\"}", JX_ERR_JSON_SYNTAX,
                 "duplicate");
    expect_error(d, "", JX_ERR_JSON_SYNTAX, "line 1");
    expect_error(d, "{} trailing", JX_ERR_JSON_SYNTAX, "line 1");

    expect_error(d, "{\"person\": {\"familyName\": \"Asanov\", \"birthDate\": \"1994-03-15\"}}",
                 JX_ERR_JSON_UNKNOWN_FIELD,
                 "sentenceOrder.person.birthDate is not a field of justx.v1.Person");
    expect_error(d, "{\"conditions\": [{}, {\"code\": \"CURFEW\", \"hours\": 8}]}",
                 JX_ERR_JSON_UNKNOWN_FIELD,
                 "sentenceOrder.conditions[1].hours is not a field of justx.v1.ProbationCondition");
    expect_error(d, "{\"CaseNumber\": \"x\"}", JX_ERR_JSON_UNKNOWN_FIELD,
                 "sentenceOrder.CaseNumber is not a field of justx.v1.SentenceOrder");

    expect_error(d, "{\"person\": \"Asanov\"}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.person: expected an object (justx.v1.Person), got a string");
    expect_error(d, "{\"caseNumber\": 1234}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.caseNumber: expected a string, got an integer");
    expect_error(d, "{\"provisions\": {\"article\": \"205\"}}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.provisions: expected an array, got an object");
    expect_error(d, "{\"conditions\": [{\"code\": \"A\"}, {\"code\": \"B\"}, {\"code\": 7}]}",
                 JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.conditions[2].code: expected a string, got an integer");
    expect_error(d, "{\"person\": {\"citizenships\": [\"KG\", null]}}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.person.citizenships[1]: expected a string, got null");
    expect_error(d, "{\"termDays\": true}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.termDays: expected an integer (int32), got true");
    expect_error(d, "{\"sentenceKind\": [1]}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.sentenceKind: expected a value name of justx.v1.SentenceKind");
    expect_error(d, "{\"attachments\": [{\"content\": 12}]}", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder.attachments[0].content: expected a base64 string, got an integer");
    expect_error(d, "[]", JX_ERR_JSON_WRONG_TYPE,
                 "sentenceOrder: expected an object (justx.v1.SentenceOrder), got an array");

    expect_error(d, "{\"sentenceKind\": \"SENTENCE_KIND_DEATH\"}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.sentenceKind: \"SENTENCE_KIND_DEATH\" is not a value of "
                 "justx.v1.SentenceKind");
    expect_error(d, "{\"person\": {\"sex\": \"male\"}}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.person.sex: \"male\" is not a value of justx.v1.Sex");
    expect_error(d, "{\"attachments\": [{\"content\": \"not base64!\"}]}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.attachments[0].content: \"not base64!\" is not valid base64");
    expect_error(d, "{\"termDays\": 3000000000}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.termDays: 3000000000 is out of range for int32");
    expect_error(d, "{\"termDays\": \"-2147483649\"}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.termDays: \"-2147483649\" is out of range for int32");
    expect_error(d, "{\"termDays\": 1e10}", JX_ERR_JSON_BAD_VALUE, "out of range for int32");
    expect_error(d, "{\"termDays\": 1.5}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.termDays: 1.5 is not an integer");
    expect_error(d, "{\"fineAmountMinor\": \"12abc\"}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.fineAmountMinor: \"12abc\" is not an integer");
    expect_error(d, "{\"fineAmountMinor\": \"0x10\"}", JX_ERR_JSON_BAD_VALUE, "is not an integer");
    expect_error(d, "{\"fineAmountMinor\": \" 12\"}", JX_ERR_JSON_BAD_VALUE, "is not an integer");
    expect_error(d, "{\"fineAmountMinor\": \"\"}", JX_ERR_JSON_BAD_VALUE, "is not an integer");
    expect_error(d, "{\"fineAmountMinor\": \"9223372036854775808\"}", JX_ERR_JSON_BAD_VALUE,
                 "out of range for int64");
    expect_error(d, "{\"fineAmountMinor\": 1e19}", JX_ERR_JSON_BAD_VALUE, "out of range for int64");
    expect_error(d, "{\"caseNumber\": \"a\", \"case_number\": \"b\"}", JX_ERR_JSON_BAD_VALUE,
                 "sentenceOrder.caseNumber is given twice");

    /* errors of the payload functions */
    jx_error err;
    uint8_t *bytes = (uint8_t *)"x";
    size_t len = 1;
    assert_int_equal(jx_json_decode_payload("justx.v1.Verdict", "{}", 2, &bytes, &len, &err), -1);
    assert_int_equal(err.code, JX_ERR_UNKNOWN_TYPE);
    assert_non_null(strstr(err.message, "justx.v1.Verdict"));
    assert_null(bytes);
    assert_null(jx_json_encode_payload("justx.v1.Verdict", (const uint8_t *)"", 0, 0, &err));
    assert_int_equal(err.code, JX_ERR_UNKNOWN_TYPE);
    static const uint8_t garbage[] = {0x0a, 0x05, 0x01}; /* field 1, 5 bytes promised, 1 given */
    assert_null(jx_json_encode_payload("justx.v1.SentenceOrder", garbage, sizeof garbage, 0, &err));
    assert_int_equal(err.code, JX_ERR_PAYLOAD_NOT_DECLARED_TYPE);
    assert_int_equal(jx_json_decode_payload("justx.v1.StatusUpdate", "{\"status\": \"DONE\"}",
                                            strlen("{\"status\": \"DONE\"}"), &bytes, &len, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_JSON_BAD_VALUE);
    assert_non_null(strstr(err.message, "statusUpdate.status: \"DONE\""));
}

/* A string that is not UTF-8 (protobuf-c does not check on unpack) cannot
 * become JSON; a string with a NUL cannot become a protobuf-c string. */
static void test_strings_must_be_utf8(void **state)
{
    (void)state;
    jx_error err;
    Justx__V1__Person person = JUSTX__V1__PERSON__INIT;
    person.family_name = "Asanov\xff";
    assert_null(jx_json_from_message(&person.base, &err));
    assert_int_equal(err.code, JX_ERR_JSON_BAD_VALUE);
    assert_string_equal(err.message, "person.familyName is not valid UTF-8");
    person.family_name = "\xed\xa0\x80"; /* an encoded surrogate */
    assert_null(jx_json_from_message(&person.base, &err));
    person.family_name = "\xc0\xaf"; /* overlong '/' */
    assert_null(jx_json_from_message(&person.base, &err));
    person.family_name = "Асанов 🙂";
    json_t *json = jx_json_from_message(&person.base, &err);
    assert_non_null(json);
    json_decref(json);

    json = json_pack("{s:s%}", "familyName", "A\0B", (size_t)3);
    assert_null(jx_json_to_message(&justx__v1__person__descriptor, json, &err));
    assert_int_equal(err.code, JX_ERR_JSON_BAD_VALUE);
    assert_non_null(strstr(err.message, "person.familyName: the string contains a NUL"));
    json_decref(json);
    expect_error(&justx__v1__person__descriptor, "{\"familyName\": \"A\\u0000B\"}",
                 JX_ERR_JSON_SYNTAX, "line 1");
}

/* --- scalar types and oneofs the schemas do not use yet ---
 *
 * A descriptor written by hand in the layout protoc-c generates, for
 *   message Scalars {
 *     double ratio = 1; float weight = 2; bool flag = 3; uint32 count = 4;
 *     sint64 delta = 5; fixed64 stamp = 6; repeated int32 values = 7 [packed];
 *     optional int32 limit = 8;
 *     oneof choice { string text = 9; int32 number = 10; }
 *     repeated bytes blobs = 11; repeated double samples = 12;
 *   }
 * The build generates code only for the justx schemas, and the mapping must
 * already handle these types per descriptor. */
typedef struct {
    ProtobufCMessage base;
    double ratio;
    float weight;
    protobuf_c_boolean flag;
    uint32_t count;
    int64_t delta;
    uint64_t stamp;
    size_t n_values;
    int32_t *values;
    protobuf_c_boolean has_limit;
    int32_t limit;
    uint32_t choice_case;
    union {
        char *text;
        int32_t number;
    };
    size_t n_blobs;
    ProtobufCBinaryData *blobs;
    size_t n_samples;
    double *samples;
} Scalars;

static void scalars_init(ProtobufCMessage *msg);

#define SCALAR_FIELD(name_, id_, label_, type_, quantifier_, member_, flags_)                      \
    {                                                                                              \
        name_, id_, PROTOBUF_C_LABEL_##label_, PROTOBUF_C_TYPE_##type_, quantifier_,               \
            offsetof(Scalars, member_), NULL, NULL, flags_, 0, NULL, NULL                          \
    }
static const ProtobufCFieldDescriptor scalars_fields[] = {
    SCALAR_FIELD("ratio", 1, NONE, DOUBLE, 0, ratio, 0),
    SCALAR_FIELD("weight", 2, NONE, FLOAT, 0, weight, 0),
    SCALAR_FIELD("flag", 3, NONE, BOOL, 0, flag, 0),
    SCALAR_FIELD("count", 4, NONE, UINT32, 0, count, 0),
    SCALAR_FIELD("delta", 5, NONE, SINT64, 0, delta, 0),
    SCALAR_FIELD("stamp", 6, NONE, FIXED64, 0, stamp, 0),
    SCALAR_FIELD("values", 7, REPEATED, INT32, offsetof(Scalars, n_values), values,
                 PROTOBUF_C_FIELD_FLAG_PACKED),
    SCALAR_FIELD("limit", 8, OPTIONAL, INT32, offsetof(Scalars, has_limit), limit, 0),
    SCALAR_FIELD("text", 9, NONE, STRING, offsetof(Scalars, choice_case), text,
                 PROTOBUF_C_FIELD_FLAG_ONEOF),
    SCALAR_FIELD("number", 10, NONE, INT32, offsetof(Scalars, choice_case), number,
                 PROTOBUF_C_FIELD_FLAG_ONEOF),
    SCALAR_FIELD("blobs", 11, REPEATED, BYTES, offsetof(Scalars, n_blobs), blobs, 0),
    SCALAR_FIELD("samples", 12, REPEATED, DOUBLE, offsetof(Scalars, n_samples), samples,
                 PROTOBUF_C_FIELD_FLAG_PACKED),
};
/* indices of the fields in name order */
static const unsigned scalars_by_name[] = {10, 3, 4, 2, 7, 9, 0, 11, 5, 8, 6, 1};
static const ProtobufCIntRange scalars_ranges[] = {{1, 0}, {0, 12}};
static const ProtobufCMessageDescriptor scalars_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Scalars",
    "Scalars",
    "Scalars",
    "test",
    sizeof(Scalars),
    12,
    scalars_fields,
    scalars_by_name,
    1,
    scalars_ranges,
    scalars_init,
    NULL,
    NULL,
    NULL,
};

static void scalars_init(ProtobufCMessage *msg)
{
    memset(msg, 0, sizeof(Scalars));
    msg->descriptor = &scalars_descriptor;
}

static void test_other_scalar_types_and_oneof(void **state)
{
    (void)state;
    jx_error err;
    /* the name index must really be sorted, or lookups by proto name fail */
    for (size_t i = 1; i < 12; i++)
        assert_true(strcmp(scalars_fields[scalars_by_name[i - 1]].name,
                           scalars_fields[scalars_by_name[i]].name) < 0);

    json_t *json = reencode(&scalars_descriptor,
                            "{\"ratio\": 0.1, \"weight\": 2.5, \"flag\": true, \"count\": "
                            "\"4294967295\", \"delta\": -5, \"stamp\": \"18446744073709551615\", "
                            "\"values\": [1, -2, \"3\"], \"limit\": 0, \"number\": 0, "
                            "\"blobs\": [\"\", \"AA==\"], \"samples\": [\"NaN\", \"Infinity\", "
                            "\"-Infinity\", -0.5, \"1e-3\"]}");
    json_t *expected =
        json_pack("{s:f, s:f, s:b, s:I, s:s, s:s, s:[i,i,i], s:i, s:i, s:[s,s], s:[s,s,s,f,f]}",
                  "ratio", 0.1, "weight", 2.5, "flag", 1, "count", (json_int_t)4294967295, "delta",
                  "-5", "stamp", "18446744073709551615", "values", 1, -2, 3, "limit", 0, "number",
                  0, "blobs", "", "AA==", "samples", "NaN", "Infinity", "-Infinity", -0.5, 0.001);
    if (!json_equal(json, expected))
        fail_msg("got %s", json_dumps(json, 0));
    json_decref(expected);
    json_decref(json);

    /* a oneof member holding its default is still written; the other is not */
    json = reencode(&scalars_descriptor, "{\"text\": \"\", \"limit\": null}");
    assert_int_equal(json_object_size(json), 1);
    assert_string_equal(json_string_value(json_object_get(json, "text")), "");
    json_decref(json);
    json = reencode(&scalars_descriptor, "{\"text\": null, \"number\": 5}");
    assert_int_equal(json_integer_value(json_object_get(json, "number")), 5);
    json_decref(json);

    expect_error(&scalars_descriptor, "{\"text\": \"a\", \"number\": 5}", JX_ERR_JSON_BAD_VALUE,
                 "scalars: text and number belong to the same oneof");
    expect_error(&scalars_descriptor, "{\"weight\": 1e39}", JX_ERR_JSON_BAD_VALUE,
                 "scalars.weight: 1e+39 is out of range for float");
    expect_error(&scalars_descriptor, "{\"ratio\": \"fast\"}", JX_ERR_JSON_BAD_VALUE,
                 "scalars.ratio: \"fast\" is not a number");
    expect_error(&scalars_descriptor, "{\"ratio\": \"nan\"}", JX_ERR_JSON_BAD_VALUE,
                 "is not a number");
    expect_error(&scalars_descriptor, "{\"flag\": \"true\"}", JX_ERR_JSON_WRONG_TYPE,
                 "scalars.flag: expected true or false, got a string");
    expect_error(&scalars_descriptor, "{\"count\": -1}", JX_ERR_JSON_BAD_VALUE,
                 "scalars.count: -1 is out of range for uint32");
    expect_error(&scalars_descriptor, "{\"count\": 4294967296}", JX_ERR_JSON_BAD_VALUE,
                 "out of range for uint32");
    expect_error(&scalars_descriptor, "{\"values\": [1, 2.5]}", JX_ERR_JSON_BAD_VALUE,
                 "scalars.values[1]: 2.5 is not an integer");

    /* packed bytes survive a round trip through JSON too */
    Scalars original;
    scalars_init(&original.base);
    int32_t values[] = {-1, 0, 2147483647};
    double samples[] = {1.0 / 3.0, -1e300, 5e-324};
    uint8_t blob[] = {0x00, 0xff};
    ProtobufCBinaryData blobs[] = {{sizeof blob, blob}};
    original.ratio = 3.141592653589793;
    original.weight = 0.1f;
    original.delta = INT64_MIN;
    original.n_values = 3;
    original.values = values;
    original.n_samples = 3;
    original.samples = samples;
    original.n_blobs = 1;
    original.blobs = blobs;
    original.has_limit = 1;
    original.limit = 0;
    original.choice_case = 9;
    original.text = "Ж";
    size_t original_len;
    uint8_t *original_bytes = pack(&original.base, &original_len);
    json = jx_json_from_message(&original.base, &err);
    assert_non_null(json);
    assert_int_equal(json_integer_value(json_object_get(json, "limit")), 0);
    ProtobufCMessage *back = jx_json_to_message(&scalars_descriptor, json, &err);
    assert_non_null(back);
    size_t back_len;
    uint8_t *back_bytes = pack(back, &back_len);
    assert_same_bytes(original_bytes, original_len, back_bytes, back_len);
    free(back_bytes);
    protobuf_c_message_free_unpacked(back, NULL);
    json_decref(json);
    free(original_bytes);
}

/* --- recursion is bounded --- */

/* message Node { Node child = 1; string label = 2; }, by hand as above: the
 * justx schemas are not recursive, but a descriptor may be. */
typedef struct Node {
    ProtobufCMessage base;
    struct Node *child;
    char *label;
} Node;

static const ProtobufCMessageDescriptor node_descriptor;
static void node_init(ProtobufCMessage *msg)
{
    memset(msg, 0, sizeof(Node));
    msg->descriptor = &node_descriptor;
    ((Node *)msg)->label = (char *)protobuf_c_empty_string;
}
static const ProtobufCFieldDescriptor node_fields[] = {
    {"child", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_MESSAGE, 0, offsetof(Node, child),
     &node_descriptor, NULL, 0, 0, NULL, NULL},
    {"label", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(Node, label), NULL,
     &protobuf_c_empty_string, 0, 0, NULL, NULL},
};
static const unsigned node_by_name[] = {0, 1};
static const ProtobufCIntRange node_ranges[] = {{1, 0}, {0, 2}};
static const ProtobufCMessageDescriptor node_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.Node",
    "Node",
    "Node",
    "test",
    sizeof(Node),
    2,
    node_fields,
    node_by_name,
    1,
    node_ranges,
    node_init,
    NULL,
    NULL,
    NULL,
};

static char *nested_nodes(int depth)
{
    char *text = malloc((size_t)depth * 12 + 64);
    size_t n = 0;
    for (int i = 0; i < depth - 1; i++)
        n += (size_t)sprintf(text + n, "{\"child\": ");
    n += (size_t)sprintf(text + n, "{\"label\": \"leaf\"}");
    for (int i = 0; i < depth - 1; i++)
        text[n++] = '}';
    text[n] = '\0';
    return text;
}

static void test_depth_is_bounded(void **state)
{
    (void)state;
    jx_error err;
    char *text = nested_nodes(64);
    ProtobufCMessage *msg = decode_text(&node_descriptor, text, &err);
    if (msg == NULL)
        fail_msg("64 levels: %s", err.message);
    json_t *json = jx_json_from_message(msg, &err);
    assert_non_null(json);
    json_decref(json);
    free(text);

    text = nested_nodes(65);
    expect_error(&node_descriptor, text, JX_ERR_JSON_BAD_VALUE, "messages nested more than 64");
    free(text);

    /* and on output: put the 64-level message under one more node */
    Node top;
    node_init(&top.base);
    top.child = (Node *)msg;
    assert_null(jx_json_from_message(&top.base, &err));
    assert_int_equal(err.code, JX_ERR_JSON_BAD_VALUE);
    assert_non_null(strstr(err.message, "messages nested more than 64"));
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* Untrusted text quoted in a sentence stays one line of valid UTF-8. */
static void test_error_sentences_are_safe(void **state)
{
    (void)state;
    jx_error err;
    json_t *json = json_pack("{s:i}", "bad\nkey\x01 ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ", 1);
    assert_null(jx_json_to_message(&justx__v1__person__descriptor, json, &err));
    assert_int_equal(err.code, JX_ERR_JSON_UNKNOWN_FIELD);
    assert_null(strchr(err.message, '\n'));
    assert_null(strchr(err.message, '\x01'));
    assert_non_null(strstr(err.message, "person.bad?key? ЖЖ"));
    assert_non_null(strstr(err.message, "... is not a field of justx.v1.Person"));
    json_t *sentence = json_string(err.message); /* NULL if not valid UTF-8 */
    assert_non_null(sentence);
    json_decref(sentence);
    json_decref(json);

    /* jansson's syntax error quotes raw input: a newline, bytes not UTF-8 */
    const char *raw[] = {"{\"\\\nr\": \"\"}", "{\"a\xff\xfe\": 1}", "{\"\xd0\": 1}"};
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        assert_null(decode_text(&justx__v1__person__descriptor, raw[i], &err));
        assert_int_equal(err.code, JX_ERR_JSON_SYNTAX);
        assert_null(strchr(err.message, '\n'));
        sentence = json_string(err.message);
        if (sentence == NULL)
            fail_msg("not UTF-8: %s", err.message);
        json_decref(sentence);
    }

    json = json_pack("{s:s}", "sex",
                     "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ");
    assert_null(jx_json_to_message(&justx__v1__person__descriptor, json, &err));
    assert_int_equal(err.code, JX_ERR_JSON_BAD_VALUE);
    sentence = json_string(err.message);
    assert_non_null(sentence);
    json_decref(sentence);
    json_decref(json);
}

/* --- random mutations must never crash --- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* How the mutated inputs fared, by error code (JX_OK: decoded): the test
 * checks that mutations reach past the parser into every kind of check. */
static unsigned outcomes[JX_ERR__COUNT];

static void try_all_types(const char *text, size_t len)
{
    size_t count;
    const jx_message_type *types = jx_registry_all(&count);
    for (size_t i = 0; i < count; i++) {
        jx_error err;
        ProtobufCMessage *msg = jx_json_text_to_message(types[i].descriptor, text, len, &err);
        outcomes[msg ? JX_OK : err.code]++;
        if (msg == NULL) {
            assert_true(err.code == JX_ERR_JSON_SYNTAX || err.code == JX_ERR_JSON_UNKNOWN_FIELD ||
                        err.code == JX_ERR_JSON_WRONG_TYPE || err.code == JX_ERR_JSON_BAD_VALUE);
            assert_true(strlen(err.message) > 0);
            continue;
        }
        char *again = jx_json_text_from_message(msg, 0, &err);
        assert_non_null(again);
        free(again);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

static const char *const tokens[] = {
    "null",
    "true",
    "1e999",
    "-",
    "\"\\u0000\"",
    "[",
    "{",
    "]",
    "}",
    "\"AAAA\"",
    ",",
    ":",
    "99999999999999999999",
    "\"SEX_MALE\"",
    "-0",
    "\"=\"",
    "\"\\ud800\"",
    "1.5",
    "\"x\":",
    "[[[[[[[[",
    "\"personal_id\"",
    "\"NaN\"",
    "\"\\\"\"",
};

static void mutate_text(char *text, size_t *len, size_t cap)
{
    size_t at = *len ? rng() % *len : 0;
    switch (rng() % 5) {
    case 0: /* flip a bit */
        if (*len)
            text[at] ^= (char)(1u << (rng() % 8));
        break;
    case 1: /* replace a byte with a JSON-significant one */
        if (*len)
            text[at] = "{}[]\",:0-9eE.\\ntf"[rng() % 18];
        break;
    case 2: { /* delete a run */
        size_t run = 1 + rng() % 16;
        if (at + run > *len)
            run = *len - at;
        memmove(text + at, text + at + run, *len - at - run);
        *len -= run;
        break;
    }
    case 3: { /* insert a token */
        const char *token = tokens[rng() % (sizeof tokens / sizeof tokens[0])];
        size_t n = strlen(token);
        if (*len + n < cap) {
            memmove(text + at + n, text + at, *len - at);
            memcpy(text + at, token, n);
            *len += n;
        }
        break;
    }
    default: { /* copy a run elsewhere */
        size_t run = 1 + rng() % 32;
        size_t from = *len ? rng() % *len : 0;
        if (from + run > *len)
            run = *len - from;
        if (*len + run < cap) {
            char piece[32];
            memcpy(piece, text + from, run);
            memmove(text + at + run, text + at, *len - at);
            memcpy(text + at, piece, run);
            *len += run;
        }
        break;
    }
    }
}

/* Picks the n-th node of the tree (pre-order) and replaces it. */
static bool replace_node(json_t *node, size_t *n, json_t *replacement)
{
    if (json_is_object(node)) {
        const char *key;
        json_t *child;
        json_object_foreach(node, key, child)
        {
            if ((*n)-- == 0) {
                json_object_set_new(node, key, replacement);
                return true;
            }
            if (replace_node(child, n, replacement))
                return true;
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *child;
        json_array_foreach(node, i, child)
        {
            if ((*n)-- == 0) {
                json_array_set_new(node, i, replacement);
                return true;
            }
            if (replace_node(child, n, replacement))
                return true;
        }
    }
    return false;
}

static json_t *random_value(void)
{
    switch (rng() % 14) {
    case 0:
        return json_null();
    case 1:
        return json_true();
    case 2:
        return json_integer((json_int_t)rng());
    case 3:
        return json_integer(-1);
    case 4:
        return json_real(1.5);
    case 5:
        return json_real(-1e300);
    case 6:
        return json_string("");
    case 7:
        return json_string("NaN");
    case 8:
        return json_string("AP/+AQA");
    case 9:
        return json_string("SEX_FEMALE");
    case 10:
        return json_object();
    case 11:
        return json_pack("[n]");
    case 12:
        return json_pack("{s:s}", "familyName", "Asanov");
    default:
        return json_string("-9223372036854775809");
    }
}

static void test_random_mutations_never_crash(void **state)
{
    (void)state;
    size_t count;
    const jx_message_type *types = jx_registry_all(&count);
    for (size_t e = 0; e < EXAMPLE_COUNT; e++) {
        size_t original_len;
        char *original = read_example(examples[e].file, &original_len);
        size_t cap = original_len + 4096;
        char *text = malloc(cap);
        assert_non_null(text);
        for (int round = 0; round < 1000; round++) {
            size_t len = original_len;
            memcpy(text, original, len);
            int mutations = 1 + (int)(rng() % 4);
            for (int m = 0; m < mutations; m++)
                mutate_text(text, &len, cap);
            try_all_types(text, len);
        }

        json_t *tree = json_loadb(original, original_len, 0, NULL);
        assert_non_null(tree);
        for (int round = 0; round < 1000; round++) {
            json_t *copy = json_deep_copy(tree);
            int mutations = 1 + (int)(rng() % 3);
            for (int m = 0; m < mutations; m++) {
                size_t n = rng() % 200;
                json_t *value = random_value();
                if (!replace_node(copy, &n, value))
                    json_decref(value);
            }
            for (size_t t = 0; t < count; t++) {
                jx_error err;
                ProtobufCMessage *msg = jx_json_to_message(types[t].descriptor, copy, &err);
                outcomes[msg ? JX_OK : err.code]++;
                if (msg != NULL) {
                    json_t *again = jx_json_from_message(msg, &err);
                    assert_non_null(again);
                    json_decref(again);
                    protobuf_c_message_free_unpacked(msg, NULL);
                }
            }
            json_decref(copy);
        }
        json_decref(tree);
        free(text);
        free(original);
    }
    jx_error_code expected[] = {JX_OK, JX_ERR_JSON_SYNTAX, JX_ERR_JSON_UNKNOWN_FIELD,
                                JX_ERR_JSON_WRONG_TYPE, JX_ERR_JSON_BAD_VALUE};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        print_message("%-20s %u\n", jx_error_code_name(expected[i]), outcomes[expected[i]]);
        assert_true(outcomes[expected[i]] > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_registry_type),
        cmocka_unit_test(test_examples_decode_and_reencode),
        cmocka_unit_test(test_int64_as_string),
        cmocka_unit_test(test_bytes_base64),
        cmocka_unit_test(test_defaults_omitted),
        cmocka_unit_test(test_field_names_and_enums),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_strings_must_be_utf8),
        cmocka_unit_test(test_other_scalar_types_and_oneof),
        cmocka_unit_test(test_depth_is_bounded),
        cmocka_unit_test(test_error_sentences_are_safe),
        cmocka_unit_test(test_random_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
