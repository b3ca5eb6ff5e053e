/* audit_format.c — how justx-audit shows records and reads its arguments.
 *
 * JSON follows the protobuf JSON mapping of JournalRecord (lowerCamelCase
 * names, 64-bit integers as strings, bytes as base64, enums by name, fields
 * at their default omitted), so that an export can be read back with any
 * protobuf library; "time" and "leafHash" are added for people and tools.
 */
#include "audit.h"

#include "base64.h"
#include "journal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void audit_format_time(int64_t time_ms, char out[AUDIT_TIME_MAX])
{
    time_t seconds = (time_t)(time_ms / 1000);
    int64_t millis = time_ms % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&seconds, &tm)) {
        snprintf(out, AUDIT_TIME_MAX, "@%" PRId64, time_ms);
        return;
    }
    snprintf(out, AUDIT_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)millis);
}

static bool read_digits(const char **p, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        *value = *value * 10 + ((*p)[i] - '0');
    }
    *p += count;
    return true;
}

bool audit_parse_time(const char *text, int64_t *time_ms)
{
    const char *p = text;
    int year, month, day, hour = 0, minute = 0, second = 0, millis = 0;
    if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 2, &month) || *p++ != '-' ||
        !read_digits(&p, 2, &day))
        return false;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!read_digits(&p, 2, &hour) || *p++ != ':' || !read_digits(&p, 2, &minute))
            return false;
        if (*p == ':') {
            p++;
            if (!read_digits(&p, 2, &second))
                return false;
            if (*p == '.') {
                p++;
                int digits = 0;
                while (*p >= '0' && *p <= '9') {
                    if (digits < 3)
                        millis = millis * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return false;
                for (; digits < 3; digits++)
                    millis *= 10;
            }
        }
    }
    int offset_minutes = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!read_digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (!read_digits(&p, 2, &om))
            return false;
        offset_minutes = sign * (oh * 60 + om);
    }
    if (*p != '\0' || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
        second > 60)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = minute,
                    .tm_sec = second};
    time_t seconds = timegm(&tm);
    *time_ms = ((int64_t)seconds - (int64_t)offset_minutes * 60) * 1000 + millis;
    return true;
}

static void set_string(json_t *object, const char *key, const char *value)
{
    if (value && value[0])
        json_object_set_new(object, key, json_string(value));
}

static void set_bytes(json_t *object, const char *key, ProtobufCBinaryData value)
{
    if (value.len == 0)
        return;
    char *encoded = malloc(jx_base64_encoded_length(value.len) + 1);
    if (!encoded)
        return;
    jx_base64_encode(value.data, value.len, encoded);
    json_object_set_new(object, key, json_string(encoded));
    free(encoded);
}

static void set_int64(json_t *object, const char *key, int64_t value, bool is_unsigned)
{
    char text[32];
    if (is_unsigned)
        snprintf(text, sizeof text, "%" PRIu64, (uint64_t)value);
    else
        snprintf(text, sizeof text, "%" PRId64, value);
    json_object_set_new(object, key, json_string(text));
}

json_t *audit_record_json(const Justx__V1__JournalRecord *r, const uint8_t *leaf)
{
    json_t *object = json_object();
    /* index 0 is its default, but an audit export without it would only
     * confuse: it is always written. */
    set_int64(object, "index", (int64_t)r->index, true);
    const char *event = jx_journal_event_name((jx_journal_event)r->event);
    if (event)
        json_object_set_new(object, "event", json_string(event));
    else
        json_object_set_new(object, "event", json_integer(r->event));
    if (r->time_ms) {
        set_int64(object, "timeMs", r->time_ms, false);
        char iso[AUDIT_TIME_MAX];
        audit_format_time(r->time_ms, iso);
        json_object_set_new(object, "time", json_string(iso));
    }
    set_string(object, "messageId", r->message_id);
    set_string(object, "sender", r->sender);
    set_string(object, "recipient", r->recipient);
    set_string(object, "type", r->type);
    set_string(object, "caseId", r->case_id);
    set_bytes(object, "header", r->header);
    set_bytes(object, "signature", r->signature);
    set_bytes(object, "payloadSha256", r->payload_sha256);
    set_string(object, "reasonCode", r->reason_code);
    set_string(object, "reason", r->reason);
    set_bytes(object, "configSha256", r->config_sha256);
    set_bytes(object, "signerCertSha256", r->signer_cert_sha256);
    if (r->n_recipients) {
        json_t *list = json_array();
        for (size_t i = 0; i < r->n_recipients; i++)
            json_array_append_new(list, json_string(r->recipients[i]));
        json_object_set_new(object, "recipients", list);
    }
    set_bytes(object, "ackEnvelope", r->ack_envelope);
    set_bytes(object, "payload", r->payload);
    set_string(object, "detail", r->detail);
    if (leaf)
        set_bytes(object, "leafHash",
                  (ProtobufCBinaryData){.len = JX_HASH_SIZE, .data = (uint8_t *)leaf});
    return object;
}

void audit_record_print(const Justx__V1__JournalRecord *r, FILE *out)
{
    char iso[AUDIT_TIME_MAX];
    audit_format_time(r->time_ms, iso);
    const char *event = jx_journal_event_name((jx_journal_event)r->event);
    fprintf(out, "#%-8" PRIu64 " %s  %-15s", r->index, iso, event ? event : "?");
    if (r->message_id[0])
        fprintf(out, " %s", r->message_id);
    if (r->recipient[0] || r->n_recipients) {
        fprintf(out, " %s ->", r->sender[0] ? r->sender : "?");
        if (r->recipient[0])
            fprintf(out, " %s", r->recipient);
        for (size_t i = 0; i < r->n_recipients; i++)
            fprintf(out, "%s%s", i ? "," : " ", r->recipients[i]);
    } else if (r->sender[0]) {
        fprintf(out, " from %s", r->sender);
    }
    if (r->type[0])
        fprintf(out, "  %s", r->type);
    if (r->case_id[0])
        fprintf(out, "  case %s", r->case_id);
    if (r->reason_code[0])
        fprintf(out, "  [%s: %s]", r->reason_code, r->reason);
    if (r->detail[0])
        fprintf(out, "  (%s)", r->detail);
    fputc('\n', out);
}

int audit_parse_args(int argc, char **argv, const audit_option *options, const char **positional,
                     int max_positional, int *positional_count, const char *usage)
{
    *positional_count = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) == 0 && arg[2]) {
            const char *equals = strchr(arg, '=');
            size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);
            const audit_option *option = NULL;
            for (const audit_option *o = options; o && o->name; o++)
                if (strlen(o->name) == name_len && strncmp(o->name, arg, name_len) == 0)
                    option = o;
            if (!option) {
                fprintf(stderr, "justx-audit %s: unknown option %.*s\n\n%s", argv[0], (int)name_len,
                        arg, usage);
                return -1;
            }
            if (!option->takes_value) {
                if (equals) {
                    fprintf(stderr, "justx-audit %s: %s takes no value\n\n%s", argv[0],
                            option->name, usage);
                    return -1;
                }
                *option->value = "";
                continue;
            }
            if (equals) {
                *option->value = equals + 1;
            } else if (i + 1 < argc) {
                *option->value = argv[++i];
            } else {
                fprintf(stderr, "justx-audit %s: %s needs a value\n\n%s", argv[0], option->name,
                        usage);
                return -1;
            }
            continue;
        }
        if (*positional_count == max_positional) {
            fprintf(stderr, "justx-audit %s: unexpected argument \"%s\"\n\n%s", argv[0], arg,
                    usage);
            return -1;
        }
        positional[(*positional_count)++] = arg;
    }
    return 0;
}
