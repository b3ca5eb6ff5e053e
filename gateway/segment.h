/* segment.h — the journal's segment file format: header, record frames, CRC32C.
 *
 * This is the one place that parses segment bytes; the journal's recovery
 * and justx-audit both go through it. The format is documented byte by byte
 * in docs/journal-format.md and at the top of journal.c:
 *
 *   segment  = header frame*
 *   header   = "JXJSEG1\n" first-index:u64be                      (16 bytes)
 *   frame    = "JXR1" length:u32be record[length] crc32c:u32be   (length + 12)
 *
 * The CRC32C (Castagnoli) covers magic, length and record. It detects torn
 * writes and media errors; tamper evidence comes from the Merkle tree, not
 * from the checksum.
 */
#ifndef JX_SEGMENT_H
#define JX_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    JX_SEGMENT_HEADER_SIZE = 16,
    JX_FRAME_HEADER_SIZE = 8,
    JX_FRAME_OVERHEAD = 12,
    /* Longest record accepted; anything longer is a corrupt length field. */
    JX_RECORD_MAX = 16 * 1024 * 1024,
    JX_SEGMENT_NAME_MAX = 32,
};

#define JX_SEGMENT_MAGIC "JXJSEG1\n"
#define JX_FRAME_MAGIC   "JXR1"

typedef enum {
    JX_FRAME_OK = 0,
    JX_FRAME_TRUNCATED,    /* the bytes end inside the frame */
    JX_FRAME_BAD_MAGIC,    /* no frame starts here */
    JX_FRAME_BAD_LENGTH,   /* length 0 or above JX_RECORD_MAX */
    JX_FRAME_BAD_CHECKSUM, /* CRC32C does not match */
} jx_frame_status;

/* CRC32C of data, continuing from crc (0 to start). Uses the SSE4.2
 * instruction when the CPU has it. */
uint32_t jx_crc32c(uint32_t crc, const void *data, size_t len);

void jx_segment_header_encode(uint8_t out[JX_SEGMENT_HEADER_SIZE], uint64_t first_index);

/* false when the magic is wrong or fewer than 16 bytes are given. */
bool jx_segment_header_decode(const uint8_t *bytes, size_t len, uint64_t *first_index);

/* Writes the frame of record into out (record_len + JX_FRAME_OVERHEAD bytes);
 * returns the frame length. */
size_t jx_frame_encode(uint8_t *out, const uint8_t *record, uint32_t record_len);

/* Parses the frame at bytes[0..available). On JX_FRAME_OK, *record and
 * *record_len point into bytes and *frame_len is the frame's length. */
jx_frame_status jx_frame_parse(const uint8_t *bytes, size_t available, const uint8_t **record,
                               uint32_t *record_len, size_t *frame_len);

/* A few words for a status, e.g. "checksum mismatch". */
const char *jx_frame_status_text(jx_frame_status status);

/* The first frame that parses at or after offset `from`, or `available`
 * when there is none: where a scan resumes after damage. */
size_t jx_frame_resync(const uint8_t *bytes, size_t available, size_t from);

/* "journal-00000012.seg" for number 12. */
void jx_segment_name(char out[JX_SEGMENT_NAME_MAX], uint32_t number);

/* true when name is a segment file name; *number receives its number. */
bool jx_segment_name_parse(const char *name, uint32_t *number);

/* The index field of a serialized JournalRecord without decoding the rest:
 * protobuf-c writes fields in number order, so a record starts with field 1
 * (tag 0x08) unless the index is 0, which proto3 leaves out. false when the
 * varint is malformed. */
bool jx_record_peek_index(const uint8_t *record, size_t len, uint64_t *index);

#endif
