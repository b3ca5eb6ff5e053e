/* error.h — errors as values with words: a stable code and a sentence.
 *
 * Every failure in justx is reported as a jx_error: a code from the list
 * below, whose name (jx_error_code_name) is stable and travels to agencies
 * in REJECTED receipts, and a sentence that names what was wrong and where.
 * Libraries fill a caller's jx_error; they never print and never exit.
 *
 * Codes are append-only: never renumber or rename one, agencies and
 * auditors match on the names.
 */
#ifndef JX_ERROR_H
#define JX_ERROR_H

#include <stddef.h>

typedef enum {
    JX_OK = 0,
    /* general */
    JX_ERR_SYSTEM,           /* out of memory, OS call failed */
    JX_ERR_IO,               /* a file could not be read or written */
    JX_ERR_INVALID_ARGUMENT, /* caller error: missing or bad argument */
    JX_ERR_KEY,              /* a private key or certificate file is unusable */
    JX_ERR_CONFIG,           /* configuration file invalid */
    /* envelope ingress, in checking order */
    JX_ERR_TOO_LARGE,
    JX_ERR_MALFORMED_ENVELOPE,
    JX_ERR_MALFORMED_HEADER,
    JX_ERR_BAD_CERTIFICATE,       /* signer certificate does not parse */
    JX_ERR_UNTRUSTED_CERTIFICATE, /* chain does not lead to a trust anchor */
    JX_ERR_CERTIFICATE_EXPIRED,
    JX_ERR_CERTIFICATE_NOT_YET_VALID,
    JX_ERR_CERTIFICATE_REVOKED,
    JX_ERR_NO_AGENCY_IDENTITY,    /* no urn:justx:agency: SAN URI */
    JX_ERR_SENDER_MISMATCH,       /* header sender != certificate agency (!= TLS identity) */
    JX_ERR_BAD_SIGNATURE,
    JX_ERR_PAYLOAD_DIGEST_MISMATCH,
    JX_ERR_UNKNOWN_TYPE,
    JX_ERR_PAYLOAD_NOT_DECLARED_TYPE,
    JX_ERR_CLOCK_SKEW,
    JX_ERR_MESSAGE_EXPIRED,
    JX_ERR_DUPLICATE,
    JX_ERR_NOT_PERMITTED,         /* no route lets this sender send this type */
    JX_ERR_UNKNOWN_RECIPIENT,
    /* JSON mapping */
    JX_ERR_JSON_SYNTAX,
    JX_ERR_JSON_UNKNOWN_FIELD,
    JX_ERR_JSON_WRONG_TYPE,
    JX_ERR_JSON_BAD_VALUE,
    /* transport */
    JX_ERR_TLS,                   /* handshake or TLS I/O failed */
    JX_ERR_NO_CLIENT_CERTIFICATE,
    JX_ERR_HANDSHAKE_TIMEOUT,
    JX_ERR_PROTOCOL,              /* ZMTP greeting/command not acceptable */
    JX_ERR_TOO_MANY_CONNECTIONS,
    /* journal */
    JX_ERR_JOURNAL_CORRUPT,
    JX_ERR_JOURNAL_TORN_TAIL,
    JX_ERR_CHECKPOINT_INVALID,
    JX_ERR_PROOF_INVALID,
    JX_ERR_NOT_FOUND,
    JX_ERR_TLS_VERSION,           /* peer offers no TLS version we accept */
    JX_ERR_STORE_CORRUPT,         /* a local SQLite store is damaged or not ours */
    JX_ERR__COUNT
} jx_error_code;

enum { JX_ERROR_MESSAGE_MAX = 512 };

typedef struct {
    jx_error_code code;
    char message[JX_ERROR_MESSAGE_MAX];
} jx_error;

/* Stable upper-case name of a code, e.g. "BAD_SIGNATURE". */
const char *jx_error_code_name(jx_error_code code);

/* Fills err (if not NULL) with code and a printf-formatted sentence; returns -1
 * so that callers can write `return jx_error_set(err, ...);`. */
int jx_error_set(jx_error *err, jx_error_code code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Like jx_error_set, and appends OpenSSL's queued error text (then clears the
 * queue) so that "why" from libcrypto reaches the sentence. */
int jx_error_set_openssl(jx_error *err, jx_error_code code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

void jx_error_clear(jx_error *err);

#endif
