/* segment.c — the journal's segment file format: header, record frames, CRC32C.
 *
 * Every length is checked against the bytes available before anything is
 * read; a frame is only reported OK once its checksum matched.
 */
#include "segment.h"

#include <stdio.h>
#include <string.h>

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ---- */

static uint32_t crc_table[8][256];
static bool crc_table_ready;
static int crc_hardware = -1;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
        crc_table[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_table_ready = true;
}

/* Slicing-by-8 in software; the table is built on first use (a race only
 * builds the same table twice). */
static uint32_t crc32c_software(uint32_t crc, const uint8_t *p, size_t len)
{
    if (!crc_table_ready)
        crc_table_init();
    while (len >= 8) {
        uint32_t low = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                              (uint32_t)p[3] << 24);
        crc = crc_table[7][low & 0xff] ^ crc_table[6][(low >> 8) & 0xff] ^
              crc_table[5][(low >> 16) & 0xff] ^ crc_table[4][low >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hardware(uint32_t crc, const uint8_t *p,
                                                                  size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t jx_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (crc_hardware < 0) {
        __builtin_cpu_init();
        crc_hardware = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (crc_hardware)
        return ~crc32c_hardware(crc, data, len);
#endif
    return ~crc32c_software(crc, data, len);
}

/* ---- big-endian helpers ---- */

static void put_u32(uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t)(value >> 24);
    out[1] = (uint8_t)(value >> 16);
    out[2] = (uint8_t)(value >> 8);
    out[3] = (uint8_t)value;
}

static uint32_t get_u32(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

void jx_segment_header_encode(uint8_t out[JX_SEGMENT_HEADER_SIZE], uint64_t first_index)
{
    memcpy(out, JX_SEGMENT_MAGIC, 8);
    put_u32(out + 8, (uint32_t)(first_index >> 32));
    put_u32(out + 12, (uint32_t)first_index);
}

bool jx_segment_header_decode(const uint8_t *bytes, size_t len, uint64_t *first_index)
{
    if (len < JX_SEGMENT_HEADER_SIZE || memcmp(bytes, JX_SEGMENT_MAGIC, 8) != 0)
        return false;
    *first_index = (uint64_t)get_u32(bytes + 8) << 32 | get_u32(bytes + 12);
    return true;
}

size_t jx_frame_encode(uint8_t *out, const uint8_t *record, uint32_t record_len)
{
    memcpy(out, JX_FRAME_MAGIC, 4);
    put_u32(out + 4, record_len);
    memcpy(out + JX_FRAME_HEADER_SIZE, record, record_len);
    uint32_t crc = jx_crc32c(0, out, JX_FRAME_HEADER_SIZE + (size_t)record_len);
    put_u32(out + JX_FRAME_HEADER_SIZE + record_len, crc);
    return (size_t)record_len + JX_FRAME_OVERHEAD;
}

jx_frame_status jx_frame_parse(const uint8_t *bytes, size_t available, const uint8_t **record,
                               uint32_t *record_len, size_t *frame_len)
{
    if (available < 4)
        return memcmp(bytes, JX_FRAME_MAGIC, available) == 0 ? JX_FRAME_TRUNCATED
                                                             : JX_FRAME_BAD_MAGIC;
    if (memcmp(bytes, JX_FRAME_MAGIC, 4) != 0)
        return JX_FRAME_BAD_MAGIC;
    if (available < JX_FRAME_HEADER_SIZE)
        return JX_FRAME_TRUNCATED;
    uint32_t len = get_u32(bytes + 4);
    if (len == 0 || len > JX_RECORD_MAX)
        return JX_FRAME_BAD_LENGTH;
    if (available < JX_FRAME_OVERHEAD || available - JX_FRAME_OVERHEAD < len)
        return JX_FRAME_TRUNCATED;
    uint32_t stored = get_u32(bytes + JX_FRAME_HEADER_SIZE + len);
    if (jx_crc32c(0, bytes, JX_FRAME_HEADER_SIZE + (size_t)len) != stored)
        return JX_FRAME_BAD_CHECKSUM;
    *record = bytes + JX_FRAME_HEADER_SIZE;
    *record_len = len;
    *frame_len = (size_t)len + JX_FRAME_OVERHEAD;
    return JX_FRAME_OK;
}

const char *jx_frame_status_text(jx_frame_status status)
{
    switch (status) {
    case JX_FRAME_OK:
        return "valid record";
    case JX_FRAME_TRUNCATED:
        return "record cut short";
    case JX_FRAME_BAD_MAGIC:
        return "no record marker";
    case JX_FRAME_BAD_LENGTH:
        return "impossible record length";
    case JX_FRAME_BAD_CHECKSUM:
        return "checksum mismatch";
    }
    return "unknown frame status";
}

size_t jx_frame_resync(const uint8_t *bytes, size_t available, size_t from)
{
    for (size_t at = from; at + JX_FRAME_OVERHEAD <= available; at++) {
        const uint8_t *hit = memmem(bytes + at, available - at, JX_FRAME_MAGIC, 4);
        if (!hit)
            break;
        at = (size_t)(hit - bytes);
        const uint8_t *record;
        uint32_t record_len;
        size_t frame_len;
        if (jx_frame_parse(bytes + at, available - at, &record, &record_len, &frame_len) ==
            JX_FRAME_OK)
            return at;
    }
    return available;
}

void jx_segment_name(char out[JX_SEGMENT_NAME_MAX], uint32_t number)
{
    snprintf(out, JX_SEGMENT_NAME_MAX, "journal-%08u.seg", number);
}

bool jx_segment_name_parse(const char *name, uint32_t *number)
{
    /* Exactly "journal-" 8 digits ".seg": editors' backup files and the like
     * must not be mistaken for segments. */
    if (strlen(name) != 20 || strncmp(name, "journal-", 8) != 0 || strcmp(name + 16, ".seg") != 0)
        return false;
    uint32_t value = 0;
    for (int i = 8; i < 16; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        value = value * 10 + (uint32_t)(name[i] - '0');
    }
    *number = value;
    return true;
}

bool jx_record_peek_index(const uint8_t *record, size_t len, uint64_t *index)
{
    if (len == 0 || record[0] != 0x08) {
        *index = 0;
        return true;
    }
    uint64_t value = 0;
    for (size_t i = 1; i < len && i <= 10; i++) {
        value |= (uint64_t)(record[i] & 0x7f) << (7 * (i - 1));
        if (!(record[i] & 0x80)) {
            *index = value;
            return true;
        }
    }
    return false;
}
