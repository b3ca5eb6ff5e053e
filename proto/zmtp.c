/* zmtp.c — checks a client's ZMTP 3.x greeting and rewrites its READY command.
 *
 * Wire facts used here (RFC 23 ZMTP 3.0, RFC 37 ZMTP 3.1):
 *   greeting = %xFF 8OCTET %x7F   signature; bit 0 of octet 9 set means
 *                                 "versioned" (a ZMTP 1.0 peer clears it)
 *              major minor        version; we require major >= 3
 *              20OCTET            mechanism, ASCII padded with zeros; "NULL"
 *              as-server          0 or 1
 *              31OCTET            filler, not interpreted
 *   frame    = flags (bit 2 command, bit 1 long size, bit 0 more; others 0)
 *              size (1 octet, or 8 octets big-endian when long) body
 *   command  = name-size name data; READY data is a list of properties:
 *              name-size (1..255) name value-size (4 octets BE) value
 *
 * libzmq sends its greeting in three pieces and waits for its peer's pieces
 * in between (signature, then major version, then the rest), so the greeting
 * check reports how far it has checked: the front end forwards exactly that
 * much and the two ends keep moving. The mechanism is checked only when the
 * greeting is complete, so a refused greeting never reaches the ROUTER whole.
 */
#include "zmtp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    FLAG_MORE = 0x01,
    FLAG_LONG = 0x02,
    FLAG_COMMAND = 0x04,
    MAJOR_OFFSET = 10,
    MINOR_OFFSET = 11,
    MECHANISM_OFFSET = 12,
    MECHANISM_SIZE = 20,
    AS_SERVER_OFFSET = 32,
    /* Header of the READY frame we write: flags + 8-octet size at most. */
    FRAME_HEADER_MAX = 9,
};

static const char READY_NAME[] = "READY";
static const char IDENTITY_NAME[] = "Identity";

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void write_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint64_t read_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void write_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Writes the mechanism field, printable characters only, for an error text. */
static void mechanism_text(const uint8_t *field, char out[MECHANISM_SIZE + 1])
{
    size_t i = 0;
    for (; i < MECHANISM_SIZE && field[i] != 0; i++)
        out[i] = (field[i] >= 0x20 && field[i] < 0x7f) ? (char)field[i] : '?';
    out[i] = '\0';
}

int jx_zmtp_greeting_check(const uint8_t *bytes, size_t len, size_t *checked_len,
                           jx_zmtp_greeting *greeting, jx_error *err)
{
    *checked_len = 0;
    if (len == 0)
        return 0;
    if (bytes[0] != 0xff)
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP greeting does not start with 0xFF: an unversioned (ZMTP 1.0) "
                            "peer, or not ZMTP at all");
    if (len < JX_ZMTP_SIGNATURE_SIZE) {
        *checked_len = len;
        return 0;
    }
    if ((bytes[9] & 0x01) == 0)
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP greeting signature octet 10 is 0x%02x: an unversioned "
                            "(ZMTP 1.0) peer",
                            bytes[9]);
    if (len <= MAJOR_OFFSET) {
        *checked_len = len;
        return 0;
    }
    if (bytes[MAJOR_OFFSET] < 3)
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP major version %u refused: version 3 or later is required",
                            bytes[MAJOR_OFFSET]);
    if (len < JX_ZMTP_GREETING_SIZE) {
        /* The minor version is harmless; the mechanism waits until complete. */
        *checked_len = len <= MINOR_OFFSET ? len : MINOR_OFFSET + 1;
        return 0;
    }

    const uint8_t *mechanism = bytes + MECHANISM_OFFSET;
    bool is_null = memcmp(mechanism, "NULL", 4) == 0;
    for (size_t i = 4; is_null && i < MECHANISM_SIZE; i++)
        is_null = mechanism[i] == 0;
    if (!is_null) {
        char text[MECHANISM_SIZE + 1];
        mechanism_text(mechanism, text);
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP security mechanism \"%s\" refused: only NULL is accepted "
                            "(TLS protects the link)",
                            text);
    }
    if (bytes[AS_SERVER_OFFSET] > 1)
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP greeting as-server field is %u, must be 0 or 1",
                            bytes[AS_SERVER_OFFSET]);
    if (greeting) {
        greeting->major = bytes[MAJOR_OFFSET];
        greeting->minor = bytes[MINOR_OFFSET];
        memcpy(greeting->mechanism, "NULL", 5);
        greeting->as_server = bytes[AS_SERVER_OFFSET] == 1;
    }
    *checked_len = JX_ZMTP_GREETING_SIZE;
    return 1;
}

static bool property_name_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '+';
}

int jx_zmtp_ready_rewrite(const uint8_t *in, size_t in_len, const uint8_t *routing_id,
                          size_t routing_id_len, uint8_t *out, size_t out_cap, size_t *in_used,
                          size_t *out_len, jx_error *err)
{
    *in_used = 0;
    *out_len = 0;
    if (routing_id_len == 0 || routing_id_len > JX_ZMTP_ROUTING_ID_MAX || routing_id[0] == 0)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "routing id must be 1..255 bytes not starting with a zero byte");
    if (out_cap < JX_ZMTP_FILTER_OUTPUT_MAX - JX_ZMTP_GREETING_SIZE)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "READY rewrite needs an output buffer of %d bytes, got %zu",
                            JX_ZMTP_FILTER_OUTPUT_MAX - JX_ZMTP_GREETING_SIZE, out_cap);
    if (in_len == 0)
        return 0;

    uint8_t flags = in[0];
    if ((flags & FLAG_COMMAND) == 0)
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP client sent a message frame before its READY command");
    if ((flags & ~(FLAG_COMMAND | FLAG_LONG)) != 0)
        return jx_error_set(err, JX_ERR_PROTOCOL, "ZMTP command frame has invalid flags 0x%02x",
                            flags);
    size_t header_len = (flags & FLAG_LONG) ? 9 : 2;
    if (in_len < header_len)
        return 0;
    uint64_t body_len = (flags & FLAG_LONG) ? read_u64(in + 1) : in[1];
    if (body_len > JX_ZMTP_READY_BODY_MAX)
        return jx_error_set(err, JX_ERR_PROTOCOL,
                            "ZMTP command of %" PRIu64 " bytes refused: READY may be at most %d",
                            body_len, JX_ZMTP_READY_BODY_MAX);
    /* A complete name is enough to refuse a command that is not READY early. */
    const uint8_t *body = in + header_len;
    size_t have = in_len - header_len;
    if (body_len == 0)
        return jx_error_set(err, JX_ERR_PROTOCOL, "ZMTP command frame is empty");
    if (have >= 1) {
        size_t name_len = body[0];
        if (name_len + 1 > body_len)
            return jx_error_set(err, JX_ERR_PROTOCOL,
                                "ZMTP command name of %zu bytes overruns its %" PRIu64
                                "-byte frame",
                                name_len, body_len);
        if (have >= 1 + name_len &&
            (name_len != sizeof READY_NAME - 1 || memcmp(body + 1, READY_NAME, name_len) != 0))
            return jx_error_set(err, JX_ERR_PROTOCOL,
                                "ZMTP client's first command is not READY (NULL mechanism)");
    }
    if (have < body_len)
        return 0;

    /* Walk the properties; copy all but Identity to the output body, which
     * starts after the largest possible frame header. */
    uint8_t *out_body = out + FRAME_HEADER_MAX;
    size_t out_body_len = 0;
    out_body[out_body_len++] = (uint8_t)(sizeof READY_NAME - 1);
    memcpy(out_body + out_body_len, READY_NAME, sizeof READY_NAME - 1);
    out_body_len += sizeof READY_NAME - 1;

    size_t pos = 1 + (sizeof READY_NAME - 1);
    unsigned properties = 0;
    while (pos < body_len) {
        size_t start = pos;
        size_t name_len = body[pos++];
        if (name_len == 0)
            return jx_error_set(err, JX_ERR_PROTOCOL, "ZMTP READY property %u has an empty name",
                                properties + 1);
        if (body_len - pos < name_len)
            return jx_error_set(err, JX_ERR_PROTOCOL,
                                "ZMTP READY property %u name overruns the command", properties + 1);
        const uint8_t *name = body + pos;
        for (size_t i = 0; i < name_len; i++)
            if (!property_name_char(name[i]))
                return jx_error_set(err, JX_ERR_PROTOCOL,
                                    "ZMTP READY property %u name has an invalid character",
                                    properties + 1);
        pos += name_len;
        if (body_len - pos < 4)
            return jx_error_set(err, JX_ERR_PROTOCOL,
                                "ZMTP READY property %u value size overruns the command",
                                properties + 1);
        uint32_t value_len = read_u32(body + pos);
        pos += 4;
        if (body_len - pos < value_len)
            return jx_error_set(err, JX_ERR_PROTOCOL,
                                "ZMTP READY property %u value of %" PRIu32
                                " bytes overruns the command",
                                properties + 1, value_len);
        pos += value_len;
        properties++;
        bool is_identity = name_len == sizeof IDENTITY_NAME - 1 &&
                           strncasecmp((const char *)name, IDENTITY_NAME, name_len) == 0;
        if (!is_identity) {
            memcpy(out_body + out_body_len, body + start, pos - start);
            out_body_len += pos - start;
        }
    }

    out_body[out_body_len++] = (uint8_t)(sizeof IDENTITY_NAME - 1);
    memcpy(out_body + out_body_len, IDENTITY_NAME, sizeof IDENTITY_NAME - 1);
    out_body_len += sizeof IDENTITY_NAME - 1;
    write_u32(out_body + out_body_len, (uint32_t)routing_id_len);
    out_body_len += 4;
    memcpy(out_body + out_body_len, routing_id, routing_id_len);
    out_body_len += routing_id_len;

    size_t out_header_len;
    if (out_body_len <= 255) {
        out[0] = FLAG_COMMAND;
        out[1] = (uint8_t)out_body_len;
        out_header_len = 2;
    } else {
        out[0] = FLAG_COMMAND | FLAG_LONG;
        write_u64(out + 1, out_body_len);
        out_header_len = 9;
    }
    memmove(out + out_header_len, out_body, out_body_len);
    *in_used = header_len + (size_t)body_len;
    *out_len = out_header_len + out_body_len;
    return 1;
}

static bool valid_agency_id(const char *agency, size_t len)
{
    if (len == 0 || len >= JX_AGENCY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = agency[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

int jx_zmtp_routing_id_make(const char *agency, uint64_t serial,
                            char out[JX_ZMTP_ROUTING_ID_MAX + 1], jx_error *err)
{
    if (agency == NULL || !valid_agency_id(agency, strlen(agency)))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "routing id needs a valid agency id (1..64 of A-Z, 0-9, '-')");
    int n = snprintf(out, JX_ZMTP_ROUTING_ID_MAX + 1, "%s/%" PRIu64, agency, serial);
    return n;
}

int jx_zmtp_routing_id_agency(const uint8_t *routing_id, size_t len, char agency[JX_AGENCY_ID_MAX],
                              jx_error *err)
{
    const uint8_t *slash = routing_id ? memchr(routing_id, '/', len) : NULL;
    if (slash == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "routing id is not of the form AGENCY/SERIAL");
    size_t agency_len = (size_t)(slash - routing_id);
    if (!valid_agency_id((const char *)routing_id, agency_len))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "routing id does not start with a valid agency id");
    size_t digits = len - agency_len - 1;
    if (digits == 0 || digits > 20)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "routing id serial must be 1..20 decimal digits");
    for (size_t i = agency_len + 1; i < len; i++)
        if (routing_id[i] < '0' || routing_id[i] > '9')
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "routing id serial must be decimal digits");
    memcpy(agency, routing_id, agency_len);
    agency[agency_len] = '\0';
    return 0;
}

typedef enum { STAGE_GREETING, STAGE_READY, STAGE_DONE, STAGE_REFUSED } filter_stage;

struct jx_zmtp_filter {
    filter_stage stage;
    uint8_t routing_id[JX_ZMTP_ROUTING_ID_MAX];
    size_t routing_id_len;
    /* Client bytes of the current stage not yet complete. */
    uint8_t buffer[FRAME_HEADER_MAX + JX_ZMTP_READY_BODY_MAX];
    size_t buffered;
    size_t greeting_forwarded;
    jx_error refusal;
};

jx_zmtp_filter *jx_zmtp_filter_new(const uint8_t *routing_id, size_t routing_id_len, jx_error *err)
{
    if (routing_id == NULL || routing_id_len == 0 || routing_id_len > JX_ZMTP_ROUTING_ID_MAX ||
        routing_id[0] == 0) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "routing id must be 1..255 bytes not starting with a zero byte");
        return NULL;
    }
    jx_zmtp_filter *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory for a ZMTP filter");
        return NULL;
    }
    memcpy(self->routing_id, routing_id, routing_id_len);
    self->routing_id_len = routing_id_len;
    self->stage = STAGE_GREETING;
    return self;
}

void jx_zmtp_filter_destroy(jx_zmtp_filter **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

bool jx_zmtp_filter_done(const jx_zmtp_filter *self)
{
    return self->stage == STAGE_DONE;
}

static int filter_refuse(jx_zmtp_filter *self, jx_error *err)
{
    self->stage = STAGE_REFUSED;
    if (err)
        *err = self->refusal;
    return -1;
}

int jx_zmtp_filter_push(jx_zmtp_filter *self, const uint8_t *in, size_t in_len, size_t *in_used,
                        uint8_t *out, size_t out_cap, size_t *out_len, jx_error *err)
{
    *in_used = 0;
    *out_len = 0;
    if (self->stage == STAGE_REFUSED) {
        if (err)
            *err = self->refusal;
        return -1;
    }
    if (self->stage == STAGE_DONE)
        return 1;
    if (out_cap < JX_ZMTP_FILTER_OUTPUT_MAX)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "ZMTP filter needs an output buffer of %d bytes, got %zu",
                            JX_ZMTP_FILTER_OUTPUT_MAX, out_cap);

    size_t used = 0;
    if (self->stage == STAGE_GREETING) {
        size_t take = JX_ZMTP_GREETING_SIZE - self->buffered;
        if (take > in_len)
            take = in_len;
        memcpy(self->buffer + self->buffered, in, take);
        self->buffered += take;
        used += take;
        size_t checked;
        int rc =
            jx_zmtp_greeting_check(self->buffer, self->buffered, &checked, NULL, &self->refusal);
        if (rc < 0)
            return filter_refuse(self, err);
        memcpy(out, self->buffer + self->greeting_forwarded, checked - self->greeting_forwarded);
        *out_len = checked - self->greeting_forwarded;
        self->greeting_forwarded = checked;
        if (rc == 0) {
            *in_used = used;
            return 0;
        }
        self->stage = STAGE_READY;
        self->buffered = 0;
    }

    /* STAGE_READY: gather the frame; bytes beyond it stay with the caller. */
    size_t previous = self->buffered;
    size_t take = sizeof self->buffer - self->buffered;
    if (take > in_len - used)
        take = in_len - used;
    memcpy(self->buffer + self->buffered, in + used, take);
    self->buffered += take;
    size_t frame_len, ready_len;
    int rc = jx_zmtp_ready_rewrite(self->buffer, self->buffered, self->routing_id,
                                   self->routing_id_len, out + *out_len, out_cap - *out_len,
                                   &frame_len, &ready_len, &self->refusal);
    if (rc < 0)
        return filter_refuse(self, err);
    if (rc == 0) {
        /* The size limit was checked on the header, so the buffer, which
         * holds the largest acceptable frame, cannot be full here. */
        *in_used = used + take;
        return 0;
    }
    *out_len += ready_len;
    *in_used = used + (frame_len - previous);
    self->stage = STAGE_DONE;
    self->buffered = 0;
    return 1;
}
