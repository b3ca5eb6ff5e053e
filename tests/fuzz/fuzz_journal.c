/* fuzz_journal.c — fuzz harness for the journal's parsers of untrusted bytes.
 *
 * justx-audit reads journals an attacker may have edited, and verify-proof
 * reads proofs anyone may hand in; the parsers there are segment.c (frames,
 * headers, resynchronisation), checkpoint.c (signed notes, checkpoints) and
 * base64.c. Each input is run through all of them, checking bounds and
 * round-trip invariants. Built as a libFuzzer binary when JX_FUZZ is ON, and
 * always as a replay program (with replay_main.c) over the seed corpus.
 */
#include "base64.h"
#include "checkpoint.h"
#include "segment.h"

#include "justx/v1/journal.pb-c.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *fixed_key(void)
{
    static EVP_PKEY *key;
    if (!key) {
        uint8_t seed[32];
        for (int i = 0; i < 32; i++)
            seed[i] = (uint8_t)(i * 7 + 1);
        key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    }
    return key;
}

static void fuzz_segment(const uint8_t *data, size_t size)
{
    uint64_t first;
    jx_segment_header_decode(data, size, &first);
    size_t at = JX_SEGMENT_HEADER_SIZE < size ? JX_SEGMENT_HEADER_SIZE : 0;
    while (at < size) {
        const uint8_t *record;
        uint32_t record_len;
        size_t frame_len;
        if (jx_frame_parse(data + at, size - at, &record, &record_len, &frame_len) ==
            JX_FRAME_OK) {
            if (frame_len > size - at || record < data + at ||
                record + record_len > data + at + frame_len)
                abort();
            uint64_t index;
            jx_record_peek_index(record, record_len, &index);
            Justx__V1__JournalRecord *decoded =
                justx__v1__journal_record__unpack(NULL, record_len, record);
            if (decoded)
                justx__v1__journal_record__free_unpacked(decoded, NULL);
            at += frame_len;
            continue;
        }
        size_t next = jx_frame_resync(data, size, at + 1);
        if (next <= at || next > size)
            abort();
        at = next;
    }
}

static void fuzz_note(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    bool complete;
    size_t extent = jx_note_extent(text, size, &complete);
    if (extent > size || (!complete && extent != size))
        abort();
    jx_checkpoint checkpoint;
    jx_error err;
    if (jx_checkpoint_parse(text, size, &checkpoint, &err) == 0 && checkpoint.time_ms >= 0) {
        /* What parses, signs, verifies and parses back to the same values
         * (when the origin is a valid key name). */
        size_t len;
        char *note = jx_checkpoint_sign(checkpoint.origin, checkpoint.size, checkpoint.root,
                                        checkpoint.time_ms, fixed_key(), &len, &err);
        if (note) {
            jx_checkpoint again;
            if (jx_checkpoint_verify(note, len, fixed_key(), checkpoint.origin, &again, &err) != 0 ||
                again.size != checkpoint.size || again.time_ms != checkpoint.time_ms ||
                memcmp(again.root, checkpoint.root, sizeof again.root) != 0)
                abort();
            free(note);
        }
    }
    size_t text_len;
    if (jx_note_open(text, size, NULL, fixed_key(), &text_len, NULL, &err) == 0 &&
        text_len >= size)
        abort();
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
    static uint8_t decoded[1 << 20];
    static char encoded[(1 << 20) * 2];
    size_t len;
    if (size > sizeof decoded)
        return;
    if (jx_base64_decode((const char *)data, size, decoded, sizeof decoded, &len)) {
        jx_base64_encode(decoded, len, encoded);
        if (strlen(encoded) != size || memcmp(encoded, data, size) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_segment(data, size);
    fuzz_note(data, size);
    fuzz_base64(data, size);
    return 0;
}
