/* base64.c — standard base64 (RFC 4648 section 4, with padding), strict.
 *
 * OpenSSL does the coding; this file adds the strictness: a text decodes only
 * if it is exactly the canonical encoding of its bytes (checked by encoding
 * them again), so one value has one spelling in notes and proofs.
 */
#include "base64.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

size_t jx_base64_encoded_length(size_t len)
{
    return (len + 2) / 3 * 4;
}

void jx_base64_encode(const uint8_t *data, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, data, (int)len); /* writes the NUL too */
}

bool jx_base64_decode(const char *text, size_t text_len, uint8_t *out, size_t out_capacity,
                      size_t *out_len)
{
    if (text_len % 4 != 0 || text_len > (size_t)INT32_MAX / 2)
        return false;
    size_t padding = 0;
    if (text_len > 0 && text[text_len - 1] == '=')
        padding = text_len > 1 && text[text_len - 2] == '=' ? 2 : 1;
    size_t decoded_len = text_len / 4 * 3 - padding;
    if (decoded_len > out_capacity)
        return false;
    uint8_t stack[768] = {0};
    uint8_t *decoded = text_len / 4 * 3 <= sizeof stack ? stack : malloc(text_len / 4 * 3 + 1);
    char *again = malloc(text_len + 1);
    bool ok = false;
    if (decoded == NULL || again == NULL)
        goto done;
    /* EVP_DecodeBlock counts the zero bytes the padding stands for. */
    if (text_len > 0 &&
        EVP_DecodeBlock(decoded, (const unsigned char *)text, (int)text_len) < 0)
        goto done;
    jx_base64_encode(decoded, decoded_len, again);
    if (memcmp(again, text, text_len) != 0)
        goto done; /* not canonical: stray bits, or characters OpenSSL skipped */
    memcpy(out, decoded, decoded_len);
    *out_len = decoded_len;
    ok = true;
done:
    if (decoded != stack)
        free(decoded);
    free(again);
    return ok;
}
