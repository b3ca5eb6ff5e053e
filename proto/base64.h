/* base64.h — standard base64 (RFC 4648 section 4, with padding), strict.
 *
 * Checkpoints, signed notes and proofs are text in which every hash and
 * signature is base64; the decoder accepts only the canonical encoding, so
 * one value has one spelling.
 */
#ifndef JX_BASE64_H
#define JX_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of len bytes, without a terminating NUL. */
size_t jx_base64_encoded_length(size_t len);

/* Writes the encoding and a NUL into out (jx_base64_encoded_length + 1 bytes). */
void jx_base64_encode(const uint8_t *data, size_t len, char *out);

/* Decodes text[0..text_len) into out (at most out_capacity bytes). false when
 * the text is not canonical padded base64 or does not fit. */
bool jx_base64_decode(const char *text, size_t text_len, uint8_t *out, size_t out_capacity,
                      size_t *out_len);

#endif
