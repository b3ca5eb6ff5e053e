/* envelope.h — sealing and opening signed envelopes.
 *
 * seal: build a Header (message id, times, payload digest), sign
 *       "justx/v1 envelope header\n" || header bytes with the agency key,
 *       attach the signer certificate, serialize the Envelope.
 * open: the checks an envelope must pass, in this order, each with its own
 *       error code: size; envelope and header decode; header fields; signer
 *       certificate (chain, dates, revocation, agency SAN — cached); sender ==
 *       certificate agency (== transport identity when given); signature;
 *       payload digest; known type; payload decodes as that type; clock skew
 *       and expiry.
 */
#ifndef JX_ENVELOPE_H
#define JX_ENVELOPE_H

#include "error.h"
#include "justx/v1/envelope.pb-c.h"
#include "message_id.h"
#include "registry.h"
#include "signature.h"
#include "trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The context string signed before the header bytes: it keeps an envelope
 * signature from ever being valid as any other kind of justx signature. */
#define JX_ENVELOPE_SIGNATURE_CONTEXT "justx/v1 envelope header\n"

enum {
    JX_ENVELOPE_MAX_DEFAULT = 16 * 1024 * 1024, /* bytes */
    JX_RECIPIENTS_MAX = 64,
    JX_HEADER_TEXT_MAX = 256, /* case id, correlation id, type name */
};

typedef struct {
    const char *type;                /* registry name, e.g. "justx.v1.SentenceOrder" */
    const char *const *recipients;   /* agency ids; none: the gateway's routes decide */
    size_t recipient_count;
    const char *case_id;             /* may be NULL */
    const char *correlation_id;      /* may be NULL */
    int64_t expires_at_ms;           /* 0: the gateway's default time to live */
    int64_t created_at_ms;           /* 0: now */
    const char *message_id;          /* NULL: a new UUIDv7 */
} jx_seal_params;

/* Seals payload (serialized protobuf of params->type) into a new serialized
 * Envelope in *envelope_out (caller frees with free()). Refuses a payload that
 * does not decode as the type. message_id receives the message id. */
int jx_envelope_seal(jx_signer *signer, const jx_seal_params *params, const uint8_t *payload,
                     size_t payload_len, uint8_t **envelope_out, size_t *envelope_len,
                     char message_id[JX_MESSAGE_ID_MAX], jx_error *err);

/* Lower level: signs the given header bytes as they are and packs the
 * envelope. For tests and tools that must build unusual headers. */
int jx_envelope_build(jx_signer *signer, const uint8_t *header, size_t header_len,
                      const uint8_t *payload, size_t payload_len, uint8_t **envelope_out,
                      size_t *envelope_len, jx_error *err);

typedef struct {
    int64_t now_ms;            /* 0: the real-time clock */
    size_t max_envelope_bytes; /* 0: JX_ENVELOPE_MAX_DEFAULT */
    int64_t max_clock_skew_ms; /* 0: creation time not checked */
    const char *transport_identity; /* agency the message arrived from, or NULL */
} jx_open_params;

/* A verified envelope. Read-only; every field is owned by the jx_opened. */
typedef struct {
    Justx__V1__Envelope *envelope; /* decoded envelope: header, payload, signature bytes */
    Justx__V1__Header *header;     /* decoded from envelope->header */
    const jx_message_type *type;   /* the payload's type */
    ProtobufCMessage *payload;     /* decoded payload */
    const jx_identity *signer;     /* borrowed from the jx_trust */
} jx_opened;

/* Opens and verifies a serialized envelope. params may be NULL (defaults).
 * Returns NULL with err set on the first check that fails. */
jx_opened *jx_envelope_open(jx_trust *trust, const uint8_t *bytes, size_t len,
                            const jx_open_params *params, jx_error *err);
/* For an envelope this process opened with jx_envelope_open before and kept
 * in its own private storage since (an adapter's inbox): every check but the
 * signature, which was verified on arrival. Never use it for bytes that
 * came from anywhere else. */
jx_opened *jx_envelope_open_stored(jx_trust *trust, const uint8_t *bytes, size_t len,
                                   const jx_open_params *params, jx_error *err);

void jx_opened_destroy(jx_opened **self_p);

#endif
