/* error.c — stable error code names and the sentence buffer. */
#include "error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const code_names[JX_ERR__COUNT] = {
    [JX_OK] = "OK",
    [JX_ERR_SYSTEM] = "SYSTEM",
    [JX_ERR_IO] = "IO",
    [JX_ERR_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [JX_ERR_KEY] = "KEY",
    [JX_ERR_CONFIG] = "CONFIG",
    [JX_ERR_TOO_LARGE] = "TOO_LARGE",
    [JX_ERR_MALFORMED_ENVELOPE] = "MALFORMED_ENVELOPE",
    [JX_ERR_MALFORMED_HEADER] = "MALFORMED_HEADER",
    [JX_ERR_BAD_CERTIFICATE] = "BAD_CERTIFICATE",
    [JX_ERR_UNTRUSTED_CERTIFICATE] = "UNTRUSTED_CERTIFICATE",
    [JX_ERR_CERTIFICATE_EXPIRED] = "CERTIFICATE_EXPIRED",
    [JX_ERR_CERTIFICATE_NOT_YET_VALID] = "CERTIFICATE_NOT_YET_VALID",
    [JX_ERR_CERTIFICATE_REVOKED] = "CERTIFICATE_REVOKED",
    [JX_ERR_NO_AGENCY_IDENTITY] = "NO_AGENCY_IDENTITY",
    [JX_ERR_SENDER_MISMATCH] = "SENDER_MISMATCH",
    [JX_ERR_BAD_SIGNATURE] = "BAD_SIGNATURE",
    [JX_ERR_PAYLOAD_DIGEST_MISMATCH] = "PAYLOAD_DIGEST_MISMATCH",
    [JX_ERR_UNKNOWN_TYPE] = "UNKNOWN_TYPE",
    [JX_ERR_PAYLOAD_NOT_DECLARED_TYPE] = "PAYLOAD_NOT_DECLARED_TYPE",
    [JX_ERR_CLOCK_SKEW] = "CLOCK_SKEW",
    [JX_ERR_MESSAGE_EXPIRED] = "MESSAGE_EXPIRED",
    [JX_ERR_DUPLICATE] = "DUPLICATE",
    [JX_ERR_NOT_PERMITTED] = "NOT_PERMITTED",
    [JX_ERR_UNKNOWN_RECIPIENT] = "UNKNOWN_RECIPIENT",
    [JX_ERR_JSON_SYNTAX] = "JSON_SYNTAX",
    [JX_ERR_JSON_UNKNOWN_FIELD] = "JSON_UNKNOWN_FIELD",
    [JX_ERR_JSON_WRONG_TYPE] = "JSON_WRONG_TYPE",
    [JX_ERR_JSON_BAD_VALUE] = "JSON_BAD_VALUE",
    [JX_ERR_TLS] = "TLS",
    [JX_ERR_NO_CLIENT_CERTIFICATE] = "NO_CLIENT_CERTIFICATE",
    [JX_ERR_HANDSHAKE_TIMEOUT] = "HANDSHAKE_TIMEOUT",
    [JX_ERR_PROTOCOL] = "PROTOCOL",
    [JX_ERR_TOO_MANY_CONNECTIONS] = "TOO_MANY_CONNECTIONS",
    [JX_ERR_JOURNAL_CORRUPT] = "JOURNAL_CORRUPT",
    [JX_ERR_JOURNAL_TORN_TAIL] = "JOURNAL_TORN_TAIL",
    [JX_ERR_CHECKPOINT_INVALID] = "CHECKPOINT_INVALID",
    [JX_ERR_PROOF_INVALID] = "PROOF_INVALID",
    [JX_ERR_NOT_FOUND] = "NOT_FOUND",
    [JX_ERR_TLS_VERSION] = "TLS_VERSION",
    [JX_ERR_STORE_CORRUPT] = "STORE_CORRUPT",
};

const char *jx_error_code_name(jx_error_code code)
{
    if ((int)code < 0 || code >= JX_ERR__COUNT || code_names[code] == NULL)
        return "UNKNOWN_ERROR";
    return code_names[code];
}

static void error_format(jx_error *err, jx_error_code code, const char *format, va_list args)
{
    err->code = code;
    vsnprintf(err->message, sizeof err->message, format, args);
}

int jx_error_set(jx_error *err, jx_error_code code, const char *format, ...)
{
    if (err) {
        va_list args;
        va_start(args, format);
        error_format(err, code, format, args);
        va_end(args);
    }
    return -1;
}

int jx_error_set_openssl(jx_error *err, jx_error_code code, const char *format, ...)
{
    if (err) {
        va_list args;
        va_start(args, format);
        error_format(err, code, format, args);
        va_end(args);
        unsigned long ssl_error = ERR_peek_last_error();
        if (ssl_error != 0) {
            size_t used = strlen(err->message);
            char reason[256];
            ERR_error_string_n(ssl_error, reason, sizeof reason);
            snprintf(err->message + used, sizeof err->message - used, " (%s)", reason);
        }
    }
    ERR_clear_error();
    return -1;
}

void jx_error_clear(jx_error *err)
{
    if (err) {
        err->code = JX_OK;
        err->message[0] = '\0';
    }
}
