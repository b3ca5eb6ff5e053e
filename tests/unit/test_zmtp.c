/* test_zmtp.c — greeting checks, READY rewrite and the stream filter (zmtp.c).
 *
 * The READY frames are built here byte by byte as RFC 23/37 describe them,
 * and the rewritten frames are parsed back by an independent reader below, so
 * the tests do not trust zmtp.c to check itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "zmtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- builders ------------------------------------------------------- */

static size_t make_greeting(uint8_t out[64], uint8_t major, uint8_t minor, const char *mechanism)
{
    memset(out, 0, 64);
    out[0] = 0xff;
    out[8] = 0x01; /* libzmq puts a length of 1 here */
    out[9] = 0x7f;
    out[10] = major;
    out[11] = minor;
    memcpy(out + 12, mechanism, strlen(mechanism));
    return 64;
}

typedef struct {
    uint8_t bytes[20000];
    size_t len;
} frame;

static void body_add_property(uint8_t *body, size_t *len, const char *name, const void *value,
                              size_t value_len)
{
    size_t name_len = strlen(name);
    body[(*len)++] = (uint8_t)name_len;
    memcpy(body + *len, name, name_len);
    *len += name_len;
    body[(*len)++] = (uint8_t)(value_len >> 24);
    body[(*len)++] = (uint8_t)(value_len >> 16);
    body[(*len)++] = (uint8_t)(value_len >> 8);
    body[(*len)++] = (uint8_t)value_len;
    memcpy(body + *len, value, value_len);
    *len += value_len;
}

/* A READY command with the given (name, value) properties; NULL ends them. */
static void make_ready(frame *f, const char *name, ...)
{
    uint8_t body[16384];
    size_t len = 0;
    body[len++] = 5;
    memcpy(body + len, "READY", 5);
    len += 5;
    va_list args;
    va_start(args, name);
    for (const char *n = name; n != NULL; n = va_arg(args, const char *)) {
        const char *value = va_arg(args, const char *);
        body_add_property(body, &len, n, value, strlen(value));
    }
    va_end(args);
    if (len <= 255) {
        f->bytes[0] = 0x04;
        f->bytes[1] = (uint8_t)len;
        memcpy(f->bytes + 2, body, len);
        f->len = 2 + len;
    } else {
        f->bytes[0] = 0x06;
        for (int i = 0; i < 8; i++)
            f->bytes[1 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        memcpy(f->bytes + 9, body, len);
        f->len = 9 + len;
    }
}

/* ---- independent reader of a READY frame ----------------------------- */

typedef struct {
    char name[256];
    uint8_t value[JX_ZMTP_READY_BODY_MAX];
    size_t value_len;
} property;

/* Returns the number of properties, or -1 when the frame is not a READY. */
static int read_ready(const uint8_t *bytes, size_t len, property *props, int max)
{
    if (len < 2 || (bytes[0] & 0x04) == 0)
        return -1;
    size_t header = (bytes[0] & 0x02) ? 9 : 2;
    uint64_t body_len = 0;
    if (header == 9)
        for (int i = 0; i < 8; i++)
            body_len = body_len << 8 | bytes[1 + i];
    else
        body_len = bytes[1];
    if (header + body_len != len)
        return -1;
    if ((bytes[0] & 0x02) && body_len <= 255)
        return -1; /* we expect the short form whenever it fits */
    const uint8_t *body = bytes + header;
    if (body[0] != 5 || memcmp(body + 1, "READY", 5) != 0)
        return -1;
    size_t pos = 6;
    int n = 0;
    while (pos < body_len) {
        if (n == max)
            return -1;
        size_t name_len = body[pos++];
        memcpy(props[n].name, body + pos, name_len);
        props[n].name[name_len] = '\0';
        pos += name_len;
        uint32_t vlen = (uint32_t)body[pos] << 24 | (uint32_t)body[pos + 1] << 16 |
                        (uint32_t)body[pos + 2] << 8 | body[pos + 3];
        pos += 4;
        memcpy(props[n].value, body + pos, vlen);
        props[n].value_len = vlen;
        pos += vlen;
        n++;
    }
    return pos == body_len ? n : -1;
}

static const char RID[] = "KG-PROBATION/7";

static int rewrite(const frame *f, uint8_t *out, size_t *out_len, jx_error *err)
{
    size_t used;
    int rc = jx_zmtp_ready_rewrite(f->bytes, f->len, (const uint8_t *)RID, strlen(RID), out,
                                   JX_ZMTP_FILTER_OUTPUT_MAX, &used, out_len, err);
    if (rc == 1)
        assert_int_equal(used, f->len);
    return rc;
}

static void assert_value(const property *p, const char *name, const char *value)
{
    assert_string_equal(p->name, name);
    assert_int_equal(p->value_len, strlen(value));
    assert_memory_equal(p->value, value, p->value_len);
}

/* ---- greeting -------------------------------------------------------- */

static void greeting_3_0_and_3_1_accepted(void **state)
{
    (void)state;
    for (uint8_t minor = 0; minor <= 1; minor++) {
        uint8_t g[64];
        make_greeting(g, 3, minor, "NULL");
        size_t checked;
        jx_zmtp_greeting info;
        jx_error err;
        assert_int_equal(jx_zmtp_greeting_check(g, 64, &checked, &info, &err), 1);
        assert_int_equal(checked, 64);
        assert_int_equal(info.major, 3);
        assert_int_equal(info.minor, minor);
        assert_string_equal(info.mechanism, "NULL");
        assert_false(info.as_server);
    }
}

/* libzmq waits for its peer's signature and major version before sending
 * more, so the checked prefix must grow exactly through those points. */
static void greeting_prefix_progress(void **state)
{
    (void)state;
    uint8_t g[64];
    make_greeting(g, 3, 1, "NULL");
    for (size_t len = 0; len < 64; len++) {
        size_t checked = 99;
        assert_int_equal(jx_zmtp_greeting_check(g, len, &checked, NULL, NULL), 0);
        size_t expected = len <= 12 ? len : 12;
        assert_int_equal(checked, expected);
    }
}

static void greeting_old_versions_refused(void **state)
{
    (void)state;
    uint8_t g[64];
    size_t checked;
    jx_error err;

    make_greeting(g, 2, 0, "NULL"); /* ZMTP 2.0: revision 0x01 in practice, and 2 */
    assert_int_equal(jx_zmtp_greeting_check(g, 11, &checked, NULL, &err), -1);
    assert_int_equal(err.code, JX_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "major version 2"));
    g[10] = 0x01; /* ZMTP 2.0 as libzmq 3.x sends it */
    assert_int_equal(jx_zmtp_greeting_check(g, 12, &checked, NULL, &err), -1);
    assert_non_null(strstr(err.message, "major version 1"));

    /* ZMTP 1.0: a length-prefixed identity frame, no 0xFF. */
    uint8_t v10[] = {0x01, 0x00};
    assert_int_equal(jx_zmtp_greeting_check(v10, sizeof v10, &checked, NULL, &err), -1);
    assert_int_equal(err.code, JX_ERR_PROTOCOL);
    /* ZMTP 1.0 with a long length: 0xFF but bit 0 of octet 10 clear. */
    make_greeting(g, 3, 0, "NULL");
    g[9] = 0x00;
    assert_int_equal(jx_zmtp_greeting_check(g, 10, &checked, NULL, &err), -1);
    assert_non_null(strstr(err.message, "ZMTP 1.0"));
}

static void greeting_mechanisms_refused(void **state)
{
    (void)state;
    const char *mechanisms[] = {"CURVE", "PLAIN", "GSSAPI", "NULLX", "null"};
    for (size_t i = 0; i < sizeof mechanisms / sizeof *mechanisms; i++) {
        uint8_t g[64];
        make_greeting(g, 3, 0, mechanisms[i]);
        size_t checked;
        jx_error err;
        /* Incomplete: not refused yet, and the mechanism not forwarded. */
        assert_int_equal(jx_zmtp_greeting_check(g, 63, &checked, NULL, &err), 0);
        assert_int_equal(checked, 12);
        assert_int_equal(jx_zmtp_greeting_check(g, 64, &checked, NULL, &err), -1);
        assert_int_equal(err.code, JX_ERR_PROTOCOL);
        assert_non_null(strstr(err.message, mechanisms[i]));
    }
    /* Garbage after "NULL" in the padding is another mechanism. */
    uint8_t g[64];
    make_greeting(g, 3, 0, "NULL");
    g[12 + 19] = 'X';
    size_t checked;
    assert_int_equal(jx_zmtp_greeting_check(g, 64, &checked, NULL, NULL), -1);
}

static void greeting_as_server_checked(void **state)
{
    (void)state;
    uint8_t g[64];
    make_greeting(g, 3, 1, "NULL");
    size_t checked;
    g[32] = 2;
    assert_int_equal(jx_zmtp_greeting_check(g, 64, &checked, NULL, NULL), -1);
    g[32] = 1;
    jx_zmtp_greeting info;
    assert_int_equal(jx_zmtp_greeting_check(g, 64, &checked, &info, NULL), 1);
    assert_true(info.as_server);
}

/* ---- READY ----------------------------------------------------------- */

static void ready_identity_replaced(void **state)
{
    (void)state;
    frame f;
    make_ready(&f, "Socket-Type", "DEALER", "Identity", "KG-PRISON", NULL);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t out_len;
    assert_int_equal(rewrite(&f, out, &out_len, NULL), 1);
    property props[8];
    assert_int_equal(read_ready(out, out_len, props, 8), 2);
    assert_value(&props[0], "Socket-Type", "DEALER");
    assert_value(&props[1], "Identity", RID);
}

static void ready_identity_inserted_when_absent(void **state)
{
    (void)state;
    frame f;
    make_ready(&f, "Socket-Type", "DEALER", NULL);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t out_len;
    assert_int_equal(rewrite(&f, out, &out_len, NULL), 1);
    property props[8];
    assert_int_equal(read_ready(out, out_len, props, 8), 2);
    assert_value(&props[0], "Socket-Type", "DEALER");
    assert_value(&props[1], "Identity", RID);
}

static void ready_every_identity_removed_others_kept(void **state)
{
    (void)state;
    frame f;
    make_ready(&f, "Identity", "LV-PROBATION/1", "Socket-Type", "DEALER", "identity", "x", "X-Case",
               "42", "IDENTITY", "", "Resource", "/a", NULL);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t out_len;
    assert_int_equal(rewrite(&f, out, &out_len, NULL), 1);
    property props[8];
    assert_int_equal(read_ready(out, out_len, props, 8), 4);
    assert_value(&props[0], "Socket-Type", "DEALER");
    assert_value(&props[1], "X-Case", "42");
    assert_value(&props[2], "Resource", "/a");
    assert_value(&props[3], "Identity", RID);
}

/* Our Identity can push a short frame over 255 bytes: the long form is used. */
static void ready_grows_into_long_frame(void **state)
{
    (void)state;
    char big[240];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    frame f;
    make_ready(&f, "X-Big", big, NULL);
    assert_int_equal(f.bytes[0], 0x04);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t out_len;
    assert_int_equal(rewrite(&f, out, &out_len, NULL), 1);
    assert_int_equal(out[0], 0x06);
    property props[8];
    assert_int_equal(read_ready(out, out_len, props, 8), 2);
    assert_value(&props[0], "X-Big", big);
    assert_value(&props[1], "Identity", RID);

    /* And a long input frame that fits the limit is accepted. */
    char *large = malloc(JX_ZMTP_READY_BODY_MAX - 100);
    memset(large, 'w', JX_ZMTP_READY_BODY_MAX - 101);
    large[JX_ZMTP_READY_BODY_MAX - 101] = '\0';
    make_ready(&f, "Socket-Type", "DEALER", "X-Large", large, NULL);
    assert_int_equal(rewrite(&f, out, &out_len, NULL), 1);
    assert_int_equal(read_ready(out, out_len, props, 8), 3);
    assert_value(&props[1], "X-Large", large);
    free(large);
}

static void ready_incomplete_needs_more(void **state)
{
    (void)state;
    frame f;
    make_ready(&f, "Socket-Type", "DEALER", "Identity", "abc", NULL);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    for (size_t len = 0; len < f.len; len++) {
        size_t used, out_len;
        assert_int_equal(jx_zmtp_ready_rewrite(f.bytes, len, (const uint8_t *)RID, strlen(RID), out,
                                               sizeof out, &used, &out_len, NULL),
                         0);
        assert_int_equal(used, 0);
    }
}

static void expect_refused(const uint8_t *bytes, size_t len, const char *words)
{
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t used, out_len;
    jx_error err;
    jx_error_clear(&err);
    int rc = jx_zmtp_ready_rewrite(bytes, len, (const uint8_t *)RID, strlen(RID), out, sizeof out,
                                   &used, &out_len, &err);
    if (rc != -1)
        fail_msg("expected refusal (%s), got %d", words, rc);
    assert_int_equal(err.code, JX_ERR_PROTOCOL);
    if (strstr(err.message, words) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err.message, words);
}

static void ready_oversized_refused(void **state)
{
    (void)state;
    /* A long frame announcing more than the limit, refused on its header. */
    uint8_t header[9] = {0x06, 0, 0, 0, 0, 0, 0, 0x20, 0x01};
    expect_refused(header, sizeof header, "at most");
    uint8_t huge[9] = {0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_refused(huge, sizeof huge, "at most");
    /* One byte over the limit. */
    uint64_t over = JX_ZMTP_READY_BODY_MAX + 1;
    uint8_t over_header[9] = {
        0x06, 0, 0, 0, 0, 0, (uint8_t)(over >> 16), (uint8_t)(over >> 8), (uint8_t)over};
    expect_refused(over_header, sizeof over_header, "at most");
}

static void ready_malformed_refused(void **state)
{
    (void)state;
    /* Message frame (not a command) first. */
    uint8_t message[] = {0x00, 0x03, 'a', 'b', 'c'};
    expect_refused(message, sizeof message, "message frame");
    /* MORE flag on a command; reserved bits. */
    uint8_t more[] = {0x05, 0x06, 5, 'R', 'E', 'A', 'D', 'Y'};
    expect_refused(more, sizeof more, "flags");
    uint8_t reserved[] = {0x84, 0x06, 5, 'R', 'E', 'A', 'D', 'Y'};
    expect_refused(reserved, sizeof reserved, "flags");
    /* Another command first: refused as soon as its name is complete. */
    uint8_t ping[] = {0x04, 0x0a, 4, 'P', 'I', 'N', 'G'};
    expect_refused(ping, sizeof ping, "not READY");
    uint8_t lower[] = {0x04, 0x06, 5, 'r', 'e', 'a', 'd', 'y'};
    expect_refused(lower, sizeof lower, "not READY");
    /* Name longer than the frame. */
    uint8_t name_overrun[] = {0x04, 0x03, 5, 'R', 'E'};
    expect_refused(name_overrun, sizeof name_overrun, "overruns");
    uint8_t empty[] = {0x04, 0x00};
    expect_refused(empty, sizeof empty, "empty");

    frame f;
    make_ready(&f, "Socket-Type", "DEALER", NULL);
    /* Value size larger than the rest of the frame. */
    frame g = f;
    g.bytes[2 + 6 + 1 + 11 + 3] = 0x40;
    expect_refused(g.bytes, g.len, "overruns");
    /* A lone trailing byte: a property with an empty name. */
    g = f;
    g.bytes[1]++;
    g.bytes[g.len++] = 0;
    expect_refused(g.bytes, g.len, "empty name");
    /* Trailing bytes that start a name but stop before the value size. */
    g = f;
    g.bytes[1] += 3;
    g.bytes[g.len++] = 2;
    g.bytes[g.len++] = 'X';
    g.bytes[g.len++] = 'Y';
    expect_refused(g.bytes, g.len, "value size");
    /* A name character RFC 37 does not allow. */
    g = f;
    g.bytes[2 + 6 + 1 + 3] = ' ';
    expect_refused(g.bytes, g.len, "invalid character");
}

static void ready_bad_arguments(void **state)
{
    (void)state;
    frame f;
    make_ready(&f, "Socket-Type", "DEALER", NULL);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t used, out_len;
    jx_error err;
    assert_int_equal(jx_zmtp_ready_rewrite(f.bytes, f.len, (const uint8_t *)"\0x", 2, out,
                                           sizeof out, &used, &out_len, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    assert_int_equal(jx_zmtp_ready_rewrite(f.bytes, f.len, (const uint8_t *)RID, strlen(RID), out,
                                           100, &used, &out_len, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
}

/* ---- filter ---------------------------------------------------------- */

/* Feeds greeting + READY + message bytes in chunks of `chunk` bytes and
 * checks what comes out and where the filter stops taking input. */
static void filter_run(size_t chunk)
{
    uint8_t stream[1024];
    size_t len = make_greeting(stream, 3, 1, "NULL");
    frame ready;
    make_ready(&ready, "Socket-Type", "DEALER", "Identity", "KG-COURT-BISHKEK/1", NULL);
    memcpy(stream + len, ready.bytes, ready.len);
    len += ready.len;
    size_t ready_end = len;
    const uint8_t message[] = {0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
    memcpy(stream + len, message, sizeof message);
    len += sizeof message;

    jx_error err;
    jx_zmtp_filter *filter = jx_zmtp_filter_new((const uint8_t *)RID, strlen(RID), &err);
    assert_non_null(filter);
    uint8_t forwarded[4096];
    size_t forwarded_len = 0;
    size_t pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        size_t n = len - pos < chunk ? len - pos : chunk;
        uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
        size_t used, out_len;
        rc = jx_zmtp_filter_push(filter, stream + pos, n, &used, out, sizeof out, &out_len, &err);
        assert_int_not_equal(rc, -1);
        memcpy(forwarded + forwarded_len, out, out_len);
        forwarded_len += out_len;
        pos += used;
        if (rc == 0)
            assert_int_equal(used, n);
    }
    assert_int_equal(rc, 1);
    assert_true(jx_zmtp_filter_done(filter));
    assert_int_equal(pos, ready_end);
    assert_true(forwarded_len > 64);
    assert_memory_equal(forwarded, stream, 64);
    property props[4];
    assert_int_equal(read_ready(forwarded + 64, forwarded_len - 64, props, 4), 2);
    assert_value(&props[0], "Socket-Type", "DEALER");
    assert_value(&props[1], "Identity", RID);
    jx_zmtp_filter_destroy(&filter);
    jx_zmtp_filter_destroy(&filter);
    assert_null(filter);
}

static void filter_any_chunking(void **state)
{
    (void)state;
    const size_t chunks[] = {1, 2, 3, 7, 10, 11, 63, 64, 65, 100, 4096};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++)
        filter_run(chunks[i]);
}

static void filter_refusal_sticks(void **state)
{
    (void)state;
    uint8_t g[64];
    make_greeting(g, 3, 0, "CURVE");
    jx_zmtp_filter *filter = jx_zmtp_filter_new((const uint8_t *)RID, strlen(RID), NULL);
    uint8_t out[JX_ZMTP_FILTER_OUTPUT_MAX];
    size_t used, out_len;
    jx_error err;
    assert_int_equal(jx_zmtp_filter_push(filter, g, 40, &used, out, sizeof out, &out_len, &err), 0);
    assert_int_equal(out_len, 12);
    assert_int_equal(
        jx_zmtp_filter_push(filter, g + 40, 24, &used, out, sizeof out, &out_len, &err), -1);
    assert_int_equal(out_len, 0);
    assert_non_null(strstr(err.message, "CURVE"));
    jx_error again;
    assert_int_equal(jx_zmtp_filter_push(filter, g, 1, &used, out, sizeof out, &out_len, &again),
                     -1);
    assert_string_equal(again.message, err.message);
    jx_zmtp_filter_destroy(&filter);
    assert_null(jx_zmtp_filter_new((const uint8_t *)"", 0, &err));
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
}

/* ---- routing ids ----------------------------------------------------- */

static void routing_id_round_trip(void **state)
{
    (void)state;
    char rid[JX_ZMTP_ROUTING_ID_MAX + 1];
    jx_error err;
    int n = jx_zmtp_routing_id_make("KG-PROBATION", 18446744073709551615u, rid, &err);
    assert_int_equal(n, (int)strlen("KG-PROBATION/18446744073709551615"));
    assert_string_equal(rid, "KG-PROBATION/18446744073709551615");
    char agency[JX_AGENCY_ID_MAX];
    assert_int_equal(jx_zmtp_routing_id_agency((const uint8_t *)rid, (size_t)n, agency, &err), 0);
    assert_string_equal(agency, "KG-PROBATION");

    assert_int_equal(jx_zmtp_routing_id_make("kg-probation", 1, rid, &err), -1);
    assert_int_equal(jx_zmtp_routing_id_make("", 1, rid, &err), -1);
    const char *bad[] = {"KG-PROBATION",   "KG-PROBATION/",   "/1",
                         "KG PROBATION/1", "KG-PROBATION/1a", "KG-PROBATION/123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            jx_zmtp_routing_id_agency((const uint8_t *)bad[i], strlen(bad[i]), agency, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greeting_3_0_and_3_1_accepted),
        cmocka_unit_test(greeting_prefix_progress),
        cmocka_unit_test(greeting_old_versions_refused),
        cmocka_unit_test(greeting_mechanisms_refused),
        cmocka_unit_test(greeting_as_server_checked),
        cmocka_unit_test(ready_identity_replaced),
        cmocka_unit_test(ready_identity_inserted_when_absent),
        cmocka_unit_test(ready_every_identity_removed_others_kept),
        cmocka_unit_test(ready_grows_into_long_frame),
        cmocka_unit_test(ready_incomplete_needs_more),
        cmocka_unit_test(ready_oversized_refused),
        cmocka_unit_test(ready_malformed_refused),
        cmocka_unit_test(ready_bad_arguments),
        cmocka_unit_test(filter_any_chunking),
        cmocka_unit_test(filter_refusal_sticks),
        cmocka_unit_test(routing_id_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
