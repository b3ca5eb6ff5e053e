/* message_id.c — UUIDv7 message ids and the syntax of ids justx accepts. */
#include "message_id.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int jx_message_id_new(int64_t now_ms, char id[JX_MESSAGE_ID_MAX], jx_error *err)
{
    uint8_t bytes[16];
    if (RAND_bytes(bytes + 6, 10) != 1)
        return jx_error_set_openssl(err, JX_ERR_SYSTEM, "no randomness for a message id");
    uint64_t ms = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++)
        bytes[i] = (uint8_t)(ms >> (40 - 8 * i));
    bytes[6] = (uint8_t)(0x70 | (bytes[6] & 0x0f)); /* version 7 */
    bytes[8] = (uint8_t)(0x80 | (bytes[8] & 0x3f)); /* variant 10 */
    char *out = id;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *out++ = '-';
        out += sprintf(out, "%02x", bytes[i]);
    }
    return 0;
}

bool jx_message_id_is_valid(const char *text)
{
    if (text == NULL || strlen(text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool jx_agency_id_is_valid(const char *text)
{
    if (text == NULL)
        return false;
    size_t length = strlen(text);
    if (length == 0 || length > 64)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

bool jx_text_is_printable(const char *text, size_t max)
{
    size_t length = strlen(text);
    if (length > max)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return false;
    return true;
}
