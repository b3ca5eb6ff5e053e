/* message_id.h — message ids: UUIDv7 in canonical lower-case text form.
 *
 * UUIDv7 (RFC 9562) puts the creation time in the first 48 bits, so ids sort
 * by time, which keeps spool and journal indexes local.
 */
#ifndef JX_MESSAGE_ID_H
#define JX_MESSAGE_ID_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 36 characters and a NUL. */
enum { JX_MESSAGE_ID_MAX = 37 };

/* Writes a new UUIDv7 for time now_ms into id. */
int jx_message_id_new(int64_t now_ms, char id[JX_MESSAGE_ID_MAX], jx_error *err);

/* True when text is a UUID in canonical lower-case 8-4-4-4-12 form. */
bool jx_message_id_is_valid(const char *text);

/* True when text is an agency id: 1-64 characters of A-Z, 0-9 and '-'. */
bool jx_agency_id_is_valid(const char *text);

/* True when text has at most max bytes and no control characters: what a
 * header may carry in free-text fields (case id, type), so that it can go
 * into a log line or journal record without forging another. */
bool jx_text_is_printable(const char *text, size_t max);

#endif
