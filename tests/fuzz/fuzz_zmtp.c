/* fuzz_zmtp.c — libFuzzer harness for zmtp.c, the front end's ZMTP parser.
 *
 * One input drives three things: the greeting check on the raw bytes, the
 * READY rewrite on the raw bytes, and a jx_zmtp_filter fed the bytes in
 * chunks whose sizes come from the first input byte, as TLS records would cut
 * them. Whatever the filter forwards must be a prefix of the input greeting
 * followed by a READY frame that the rewrite accepts again (a rewrite of a
 * rewrite): that invariant is checked with abort(), so libFuzzer reports it.
 *
 * Built two ways (tests/fuzz/zmtp.cmake): with clang -fsanitize=fuzzer when
 * JX_FUZZ is ON, and always as a replay program (with replay_main.c) that runs
 * every file of the corpus through the same function, as a ctest.
 */
#include "zmtp.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t ROUTING_ID[] = "KG-PROBATION/42";

static void check_rewrite_again(const uint8_t *ready, size_t len)
{
    static uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t used, out_len;
    int rc = jx_zmtp_ready_rewrite(ready, len, ROUTING_ID, sizeof ROUTING_ID - 1, out, sizeof out,
                                   &used, &out_len, NULL);
    /* Our own output must be a complete acceptable READY, and stable. */
    if (rc != 1 || used != len || out_len != len || memcmp(out, ready, len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    static uint8_t forwarded[JX_ZMTP_FILTER_OUTPUT_MAX * 2];
    size_t checked, used, out_len;

    jx_zmtp_greeting greeting;
    if (jx_zmtp_greeting_check(data, size, &checked, &greeting, NULL) > 0 &&
        (checked != JX_ZMTP_GREETING_SIZE || greeting.major < 3))
        abort();
    if (jx_zmtp_ready_rewrite(data, size, ROUTING_ID, sizeof ROUTING_ID - 1, out, sizeof out, &used,
                              &out_len, NULL) == 1)
        check_rewrite_again(out, out_len);

    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 97 + 1;
    const uint8_t *stream = data + 1;
    size_t len = size - 1;
    jx_zmtp_filter *filter = jx_zmtp_filter_new(ROUTING_ID, sizeof ROUTING_ID - 1, NULL);
    if (filter == NULL)
        abort();
    size_t pos = 0, forwarded_len = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        size_t n = len - pos < chunk ? len - pos : chunk;
        rc = jx_zmtp_filter_push(filter, stream + pos, n, &used, out, sizeof out, &out_len, NULL);
        if (used > n || forwarded_len + out_len > sizeof forwarded)
            abort();
        memcpy(forwarded + forwarded_len, out, out_len);
        forwarded_len += out_len;
        pos += used;
    }
    /* The greeting is forwarded verbatim and never past what was checked. */
    size_t greeting_part =
        forwarded_len < JX_ZMTP_GREETING_SIZE ? forwarded_len : JX_ZMTP_GREETING_SIZE;
    if (memcmp(forwarded, stream, greeting_part) != 0)
        abort();
    if (rc == 1) {
        if (forwarded_len <= JX_ZMTP_GREETING_SIZE || !jx_zmtp_filter_done(filter))
            abort();
        check_rewrite_again(forwarded + JX_ZMTP_GREETING_SIZE,
                            forwarded_len - JX_ZMTP_GREETING_SIZE);
    } else if (forwarded_len > 12 && forwarded_len != JX_ZMTP_GREETING_SIZE) {
        /* Short of an accepted greeting, at most 12 checked octets go out. */
        abort();
    }
    jx_zmtp_filter_destroy(&filter);
    return 0;
}
