/* test_config.c — loading the gateway configuration (gateway/config.c).
 *
 * The example conf/gateway.conf must load with the values it writes; a
 * minimal file must get every documented default; each file in
 * tests/data/conf/ that should be refused is refused with JX_ERR_CONFIG, the
 * line marked "# expect-error" in that file, and a fragment of the sentence.
 * The digest is checked against SHA-256 computed here with OpenSSL, and
 * check_files against the real development PKI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "registry.h"
#include "routes.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA    JX_SOURCE_DIR "/tests/data/conf/"
#define EXAMPLE JX_SOURCE_DIR "/conf/gateway.conf"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = malloc(1 << 20);
    assert_non_null(text);
    *len = fread(text, 1, (1 << 20) - 1, f);
    text[*len] = '\0';
    fclose(f);
    return text;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* A fresh directory under the build tree for files a test writes. */
static void scratch_dir(char out[PATH_MAX], const char *name)
{
    snprintf(out, PATH_MAX, "%s/test-config-scratch", JX_BINARY_DIR);
    mkdir(out, 0700);
    snprintf(out, PATH_MAX, "%s/test-config-scratch/%s-%ld", JX_BINARY_DIR, name, (long)getpid());
    mkdir(out, 0700);
}

static char *real_dir_of(const char *path)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    *strrchr(copy, '/') = '\0';
    char *real = realpath(copy, NULL);
    assert_non_null(real);
    return real;
}

static const jx_agency_config *agency(const jx_gateway_config *cfg, const char *id)
{
    const jx_agency_config *found = jx_gateway_config_find_agency(cfg, id);
    assert_non_null(found);
    assert_string_equal(found->id, id);
    return found;
}

static uint64_t type_bit(const char *name)
{
    size_t n;
    const jx_message_type *all = jx_registry_all(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, name) == 0)
            return UINT64_C(1) << i;
    fail_msg("type %s not in the registry", name);
    return 0;
}

static uint64_t bits(const char *a, const char *b, const char *c, const char *d)
{
    uint64_t out = 0;
    const char *names[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++)
        if (names[i])
            out |= type_bit(names[i]);
    return out;
}

#define SO  "justx.v1.SentenceOrder"
#define PR  "justx.v1.ProbationReferral"
#define RNA "justx.v1.RiskNeedsAssessment"
#define CT  "justx.v1.CaseTransfer"
#define SU  "justx.v1.StatusUpdate"

/* ---- the example ---- */

static void example_loads(void **state)
{
    (void)state;
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(EXAMPLE, &err);
    if (cfg == NULL)
        fail_msg("conf/gateway.conf refused: %s", err.message);
    char *dir = real_dir_of(EXAMPLE);
    char want[PATH_MAX + 64];

    assert_string_equal(cfg->id, "justx.demo/gateway");
    assert_string_equal(cfg->listen, "127.0.0.1:7443");
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 7443);
    assert_string_equal(cfg->state_dir, dir);
    assert_int_equal(cfg->log_level, JX_GATEWAY_LOG_INFO);
    snprintf(want, sizeof want, "%s/pki/gateway.pem", dir);
    assert_string_equal(cfg->tls.certificate, want);
    snprintf(want, sizeof want, "%s/pki/gateway.key", dir);
    assert_string_equal(cfg->tls.key, want);
    assert_int_equal(cfg->tls.n_trust_anchors, 1);
    snprintf(want, sizeof want, "%s/pki/ca.pem", dir);
    assert_string_equal(cfg->tls.trust_anchors[0], want);
    assert_int_equal(cfg->tls.n_crls, 1);
    snprintf(want, sizeof want, "%s/pki/crl.pem", dir);
    assert_string_equal(cfg->tls.crls[0], want);
    assert_int_equal(cfg->tls.min_version, TLS1_3_VERSION);
    assert_int_equal(cfg->limits.max_message_bytes, 4 * 1024 * 1024);
    assert_int_equal(cfg->limits.default_ttl_ms, INT64_C(30) * 86400000);
    assert_int_equal(cfg->limits.max_ttl_ms, INT64_C(90) * 86400000);

    assert_int_equal(cfg->n_agencies, 5);
    const char *ids[] = {"KG-COURT-BISHKEK", "KG-PROSECUTOR", "KG-PROBATION", "KG-PRISON",
                         "LV-PROBATION"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(cfg->agencies[i].id, ids[i]);
    const jx_agency_config *court = agency(cfg, "KG-COURT-BISHKEK");
    assert_string_equal(court->name, "Bishkek City Court");
    assert_int_equal(court->send_types, bits(SO, SU, NULL, NULL));
    assert_int_equal(court->receive_types, bits(RNA, SU, NULL, NULL));
    assert_int_equal(agency(cfg, "KG-PROSECUTOR")->send_types, bits(PR, NULL, NULL, NULL));
    assert_int_equal(agency(cfg, "KG-PROSECUTOR")->receive_types, bits(SU, RNA, NULL, NULL));
    assert_int_equal(agency(cfg, "KG-PROBATION")->send_types, bits(RNA, SU, CT, NULL));
    assert_int_equal(agency(cfg, "KG-PROBATION")->receive_types, bits(SO, PR, CT, SU));
    assert_int_equal(agency(cfg, "KG-PROBATION")->max_adapters, 4);
    assert_int_equal(agency(cfg, "KG-PRISON")->send_types, bits(SU, NULL, NULL, NULL));
    assert_int_equal(agency(cfg, "KG-PRISON")->receive_types, bits(SO, SU, NULL, NULL));
    assert_int_equal(agency(cfg, "KG-PRISON")->max_adapters, 16);
    assert_int_equal(agency(cfg, "LV-PROBATION")->receive_types, bits(CT, SU, NULL, NULL));
    assert_null(jx_gateway_config_find_agency(cfg, "KG-NOBODY"));
    assert_null(jx_gateway_config_find_agency(cfg, ""));
    assert_int_equal(jx_gateway_config_agency_index(cfg, "KG-PRISON"), 3);

    assert_int_equal(cfg->n_routes, 6);
    const jx_route_config *order = &cfg->routes[2];
    assert_string_equal(order->name, "sentence-order");
    assert_string_equal(order->from, "KG-COURT-BISHKEK");
    assert_string_equal(order->type, SO);
    assert_int_equal(order->n_to, 2);
    assert_string_equal(order->to[0], "KG-PROBATION");
    assert_string_equal(order->to[1], "KG-PRISON");
    assert_int_equal(order->to_agency[1], 3);

    free(dir);
    jx_gateway_config_destroy(&cfg);
    assert_null(cfg);
    jx_gateway_config_destroy(&cfg); /* safe twice */
}

static void example_digest_is_sha256_of_file(void **state)
{
    (void)state;
    size_t len;
    char *text = slurp(EXAMPLE, &len);
    uint8_t want[32];
    assert_int_equal(EVP_Digest(text, len, want, NULL, EVP_sha256(), NULL), 1);
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(EXAMPLE, &err);
    assert_non_null(cfg);
    assert_memory_equal(jx_gateway_config_digest(cfg), want, 32);
    jx_gateway_config_destroy(&cfg);
    free(text);
}

static void digest_changes_with_bytes(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    scratch_dir(dir, "digest");
    snprintf(path, sizeof path, "%s/gateway.conf", dir);
    size_t len;
    char *text = slurp(DATA "minimal.conf", &len);
    write_file(path, text);
    jx_error err = {0};
    jx_gateway_config *a = jx_gateway_config_load(path, &err);
    assert_non_null(a);
    /* The same settings with one more comment: a different file, a different digest. */
    char *more = malloc(len + 32);
    snprintf(more, len + 32, "%s# edited\n", text);
    write_file(path, more);
    jx_gateway_config *b = jx_gateway_config_load(path, &err);
    assert_non_null(b);
    assert_memory_not_equal(jx_gateway_config_digest(a), jx_gateway_config_digest(b), 32);
    jx_gateway_config_destroy(&a);
    jx_gateway_config_destroy(&b);
    unlink(path);
    rmdir(dir);
    free(more);
    free(text);
}

/* ---- defaults ---- */

static void minimal_gets_defaults(void **state)
{
    (void)state;
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(DATA "minimal.conf", &err);
    if (cfg == NULL)
        fail_msg("minimal.conf refused: %s", err.message);
    char *dir = real_dir_of(DATA "minimal.conf");
    char want[PATH_MAX + 64];

    assert_string_equal(cfg->id, "justx/gateway");
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 0);
    snprintf(want, sizeof want, "%s/state", dir);
    assert_string_equal(cfg->state_dir, want);
    assert_string_equal(cfg->tls.key, "/etc/justx/gateway.key"); /* absolute stays */
    assert_int_equal(cfg->tls.n_trust_anchors, 2);
    assert_int_equal(cfg->tls.n_crls, 0);
    assert_int_equal(cfg->log_level, JX_GATEWAY_LOG_INFO);
    assert_int_equal(cfg->tls.min_version, TLS1_3_VERSION);
    assert_int_equal(cfg->tls.handshake_timeout_ms, 10000);
    assert_int_equal(cfg->tls.max_connections, 1024);
    assert_int_equal(cfg->tls.max_connections_per_agency, 16);
    assert_int_equal(cfg->journal.checkpoint_every_records, 1000);
    assert_int_equal(cfg->journal.checkpoint_every_ms, 1000);
    assert_int_equal(cfg->journal.segment_bytes, 64 * 1024 * 1024);
    assert_int_equal(cfg->limits.max_message_bytes, 4 * 1024 * 1024);
    assert_int_equal(cfg->limits.max_clock_skew_ms, 300000);
    assert_int_equal(cfg->limits.default_ttl_ms, INT64_C(2592000000));
    assert_int_equal(cfg->limits.max_ttl_ms, INT64_C(7776000000));
    assert_int_equal(cfg->limits.retry_initial_ms, 1000);
    assert_int_equal(cfg->limits.retry_max_ms, 300000);
    assert_int_equal(cfg->limits.group_commit_max_messages, 256);
    assert_int_equal(cfg->limits.group_commit_max_delay_ms, 2);

    assert_string_equal(agency(cfg, "A")->name, "A"); /* the id when no name */
    assert_int_equal(agency(cfg, "A")->max_adapters, 16);
    assert_int_equal(agency(cfg, "A")->send_types, bits(SO, PR, RNA, CT) | type_bit(SU));
    assert_string_equal(agency(cfg, "B")->name, "Agency B");
    assert_int_equal(agency(cfg, "B")->max_adapters, 2);
    assert_int_equal(agency(cfg, "B")->send_types, 0);
    assert_int_equal(cfg->n_routes, 0);
    free(dir);
    jx_gateway_config_destroy(&cfg);
}

/* libconfig 1.5 wraps 2592000000 (no L suffix) to a negative int; the
 * loader reads the literal again. */
static void large_literals_without_suffix(void **state)
{
    (void)state;
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(DATA "patterns.conf", &err);
    if (cfg == NULL)
        fail_msg("patterns.conf refused: %s", err.message);
    assert_int_equal(cfg->limits.default_ttl_ms, INT64_C(2592000000));
    assert_int_equal(cfg->limits.max_ttl_ms, INT64_C(7776000000));
    jx_gateway_config_destroy(&cfg);
}

/* ---- refusals ---- */

/* The 1-based line holding "# expect-error" in the file, or 0. */
static int marked_line(const char *path)
{
    size_t len;
    char *text = slurp(path, &len);
    int line = 1, found = 0;
    for (char *p = text; *p && !found; p++) {
        if (strncmp(p, "# expect-error", 14) == 0)
            found = line;
        if (*p == '\n')
            line++;
    }
    free(text);
    return found;
}

/* The 1-based line of the first occurrence of needle. */
static int line_of(const char *path, const char *needle)
{
    size_t len;
    char *text = slurp(path, &len);
    char *at = strstr(text, needle);
    assert_non_null(at);
    int line = 1;
    for (char *p = text; p < at; p++)
        line += *p == '\n';
    free(text);
    return line;
}

static void assert_refused(const char *name, const char *fragment)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s", DATA, name);
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(path, &err);
    if (cfg != NULL)
        fail_msg("%s was accepted", name);
    assert_int_equal(err.code, JX_ERR_CONFIG);
    char prefix[PATH_MAX + 32];
    int line = marked_line(path);
    if (line > 0)
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    else
        snprintf(prefix, sizeof prefix, "%s: ", path);
    if (strncmp(err.message, prefix, strlen(prefix)) != 0)
        fail_msg("%s: expected the message to start with '%s', got '%s'", name, prefix,
                 err.message);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("%s: expected '%s' in '%s'", name, fragment, err.message);
}

static void syntax_error(void **state)
{
    (void)state;
    assert_refused("syntax-error.conf", "syntax error");
}

static void unknown_setting_suggests(void **state)
{
    (void)state;
    assert_refused("unknown-setting.conf",
                   "unknown setting 'lisen' in gateway (did you mean 'listen'?)");
}

static void misplaced_setting(void **state)
{
    (void)state;
    assert_refused("misplaced-setting.conf",
                   "unknown setting 'max_message_bytes' in gateway (it belongs in gateway.limits)");
}

static void duplicate_agency(void **state)
{
    (void)state;
    assert_refused("duplicate-agency.conf", "agency KG-COURT is defined twice (first on line 7)");
}

static void invalid_agency_id(void **state)
{
    (void)state;
    assert_refused("invalid-agency-id.conf", "agency id 'kg-court' is not valid");
}

static void undefined_recipient(void **state)
{
    (void)state;
    assert_refused("undefined-recipient.conf",
                   "names KG-PROBATON, which is not a defined agency (did you mean KG-PROBATION?)");
}

static void unknown_type(void **state)
{
    (void)state;
    assert_refused("unknown-type.conf",
                   "unknown message type 'justx.v1.SentencOrder' in 'send' of agency KG-COURT "
                   "(did you mean 'justx.v1.SentenceOrder'?)");
    assert_refused("short-type-name.conf", "(did you mean 'justx.v1.SentenceOrder'?)");
    assert_refused("protocol-type.conf", "'justx.v1.Ack' in 'send' of agency KG-COURT is a "
                                         "protocol type");
}

static void missing_listen(void **state)
{
    (void)state;
    assert_refused("missing-listen.conf", "missing required setting 'listen' in gateway");
}

static void bad_limits(void **state)
{
    (void)state;
    assert_refused("bad-limit.conf", "'max_message_bytes' in gateway.limits is 104857600 bytes "
                                     "(100 MiB); it must be between 1024 bytes (1 KiB) and "
                                     "67108864 bytes (64 MiB)");
    assert_refused("ttl-order.conf", "'default_ttl_ms' in gateway.limits is 8640000000 ms (100 "
                                     "days), more than 'max_ttl_ms'");
}

static void wrong_value_type(void **state)
{
    (void)state;
    assert_refused("wrong-value-type.conf",
                   "'trust_anchors' in gateway.tls must be a list of strings");
    assert_refused("bad-listen.conf", "write an IPv6 address as [address]:port");
}

static void route_permissions(void **state)
{
    (void)state;
    assert_refused("recipient-may-not-receive.conf",
                   "route 'assessment': recipient KG-PRISON may not receive "
                   "justx.v1.RiskNeedsAssessment (its 'receive' list on line 8 allows "
                   "justx.v1.SentenceOrder)");
    assert_refused("sender-may-not-send.conf",
                   "route 'prison-orders': KG-PRISON may not send justx.v1.SentenceOrder");
    assert_refused("from-matches-nothing.conf",
                   "'from' pattern 'LV-*' of route #1 matches no agency");
}

static void include_refused(void **state)
{
    (void)state;
    assert_refused("include.conf", "@include is not supported");
}

/* Small files written on the spot for cases that need no file of their own. */
static void refused_inline(const char *body, int line, const char *fragment)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    scratch_dir(dir, "inline");
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    write_file(path, body);
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(path, &err);
    if (cfg != NULL)
        fail_msg("accepted: %s", body);
    assert_int_equal(err.code, JX_ERR_CONFIG);
    char prefix[PATH_MAX + 64];
    if (line > 0)
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    else
        snprintf(prefix, sizeof prefix, "%s: ", path);
    if (strncmp(err.message, prefix, strlen(prefix)) != 0 || strstr(err.message, fragment) == NULL)
        fail_msg("expected '%s...%s', got '%s'", prefix, fragment, err.message);
    unlink(path);
    rmdir(dir);
}

#define GATEWAY_OK                                                                                 \
    "gateway = { listen = \"127.0.0.1:1\"; state_dir = \".\";\n"                                   \
    "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; }; };\n"

static void inline_refusals(void **state)
{
    (void)state;
    refused_inline(GATEWAY_OK "agencys = ( { id = \"A\"; } );\n", 3,
                   "unknown setting 'agencys' in the top level (did you mean 'agencies'?)");
    refused_inline(GATEWAY_OK, 0, "missing required setting 'agencies'");
    refused_inline("agencies = ( { id = \"A\"; } );\n", 0, "missing required group 'gateway'");
    refused_inline(GATEWAY_OK "agencies = ( );\n", 3, "'agencies' is empty");
    refused_inline(GATEWAY_OK "agencies = ( { id = \"A\"; max_adapters = \"2\"; } );\n", 3,
                   "'max_adapters' in agency A must be an integer, not a string");
    refused_inline(GATEWAY_OK "agencies = ( { id = \"A\"; sned = [ ]; } );\n", 3,
                   "unknown setting 'sned' in agency #1 (did you mean 'send'?)");
    refused_inline(GATEWAY_OK "agencies = ( { id = \"A\"; send = [ \"justx.v2.*\" ]; } );\n", 3,
                   "type pattern 'justx.v2.*' in 'send' of agency A matches no document type");
    refused_inline(GATEWAY_OK "agencies = ( { id = \"A\"; send = [ 7 ]; } );\n", 3,
                   "element 1 of 'send' in agency A must be a string, not an integer");
    refused_inline("gateway = { listen = \"h:1\"; state_dir = \".\"; log_level = \"loud\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; }; };\n"
                   "agencies = ( { id = \"A\"; } );\n",
                   1, "'log_level' in gateway is 'loud'");
    refused_inline("gateway = { listen = \"h:1\"; state_dir = \".\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ ];\n"
                   "  min_version = \"1.1\"; }; };\nagencies = ( { id = \"A\"; } );\n",
                   2, "'trust_anchors' in gateway.tls must not be empty");
    refused_inline("gateway = { listen = \"h:1\"; state_dir = \".\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ];\n"
                   "  min_version = \"1.1\"; }; };\nagencies = ( { id = \"A\"; } );\n",
                   3, "'min_version' in gateway.tls is '1.1'; it must be \"1.3\" or \"1.2\"");
    refused_inline("gateway = { listen = \"h:70000\"; state_dir = \".\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; }; };\n"
                   "agencies = ( { id = \"A\"; } );\n",
                   1, "the port must be a number from 0 to 65535");
    refused_inline("gateway = { id = \"my gateway\"; listen = \"h:1\"; state_dir = \".\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; }; };\n"
                   "agencies = ( { id = \"A\"; } );\n",
                   1, "may hold no spaces");
    refused_inline("gateway = { listen = \"h:1\"; state_dir = \".\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; };\n"
                   "  limits = { max_message_bytes = 99999999999999999999; }; };\n"
                   "agencies = ( { id = \"A\"; } );\n",
                   3, "'max_message_bytes' in gateway.limits is too large for a 64-bit integer");
    refused_inline("gateway = { listen = \"h:1\"; state_dir = \".\";\n"
                   "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; };\n"
                   "  limits = { retry_initial_ms = 600000; }; };\n"
                   "agencies = ( { id = \"A\"; } );\n",
                   3, "'retry_initial_ms' in gateway.limits (600000) is more than 'retry_max_ms'");
    /* Routes. */
    const char *two = GATEWAY_OK "agencies = ( { id = \"A\"; send = [ \"justx.v1.*\" ]; },\n"
                                 "  { id = \"B\"; receive = [ \"justx.v1.StatusUpdate\" ]; } );\n";
    char body[2048];
    snprintf(
        body, sizeof body,
        "%sroutes = ( { from = \"A\"; type = \"justx.v1.StatusUpdate\"; to = [ \"A\" ]; } );\n",
        two);
    refused_inline(body, 5, "route #1 sends A's messages back to A itself");
    snprintf(
        body, sizeof body,
        "%sroutes = ( { from = \"A\"; type = \"justx.v1.StatusUpdate\"; to = [ \"B\", \"B\" ]; "
        "} );\n",
        two);
    refused_inline(body, 5, "'to' of route #1 lists B twice");
    snprintf(
        body, sizeof body,
        "%sroutes = ( { from = \"A\"; type = \"justx.v1.StatusUpdate\"; to = [ \"B*\" ]; } );\n",
        two);
    refused_inline(body, 5, "'to' of route #1 lists agency ids, not patterns: 'B*'");
    snprintf(body, sizeof body,
             "%sroutes = ( { from = \"A\"; type = \"justx.v1.StatusUpdate\"; to = [ ]; } );\n",
             two);
    refused_inline(body, 5, "'to' in route #1 must not be empty");
    snprintf(body, sizeof body, "%sroutes = ( { from = \"A\"; to = [ \"B\" ]; } );\n", two);
    refused_inline(body, 5, "missing required setting 'type' in route #1");
    snprintf(
        body, sizeof body,
        "%sroutes = ( { name = \"x\"; from = \"A\"; type = \"justx.v1.*\"; to = [ \"B\" ]; },\n"
        "  { name = \"x\"; from = \"A\"; type = \"justx.v1.*\"; to = [ \"B\" ]; } );\n",
        two);
    refused_inline(body, 6, "two routes are named 'x' (the first on line 5)");
    snprintf(body, sizeof body,
             "%sroutes = ( { name = \"cases\"; from = \"A\"; type = \"justx.v1.Case*\";\n"
             "  to = [ \"B\" ]; } );\n",
             two);
    refused_inline(body, 6,
                   "route 'cases': recipient B may receive none of the types this route "
                   "carries (justx.v1.CaseTransfer)");
    snprintf(body, sizeof body,
             "%sroutes = ( { from = \"B\"; type = \"justx.v1.*\"; to = [ \"A\" ]; } );\n", two);
    refused_inline(body, 5, "B may send no type matching 'justx.v1.*'");
    snprintf(body, sizeof body,
             "%sroutes = ( { from = \"C\"; type = \"justx.v1.*\"; to = [ \"A\" ]; } );\n", two);
    refused_inline(body, 5, "'from' of route #1 names C, which is not a defined agency");
}

static void missing_file_is_io(void **state)
{
    (void)state;
    jx_error err = {0};
    assert_null(jx_gateway_config_load(DATA "no-such-file.conf", &err));
    assert_int_equal(err.code, JX_ERR_IO);
    assert_non_null(strstr(err.message, "no-such-file.conf: cannot open"));
    assert_null(jx_gateway_config_load(DATA, &err)); /* a directory */
    assert_int_equal(err.code, JX_ERR_IO);
}

/* ---- files ---- */

/* The example, copied into a state directory next to the development PKI,
 * names files that exist; without the PKI it names the first missing one. */
static void check_files_against_dev_pki(void **state)
{
    (void)state;
    char dir[PATH_MAX], conf[PATH_MAX + 32], pki[PATH_MAX + 32];
    scratch_dir(dir, "files");
    snprintf(conf, sizeof conf, "%s/gateway.conf", dir);
    snprintf(pki, sizeof pki, "%s/pki", dir);
    size_t len;
    char *text = slurp(EXAMPLE, &len);
    write_file(conf, text);
    free(text);

    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(conf, &err);
    assert_non_null(cfg);
    assert_int_equal(jx_gateway_config_check_files(cfg, &err), -1);
    assert_int_equal(err.code, JX_ERR_CONFIG);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:%d: tls.certificate", conf,
             line_of(conf, "certificate = \"pki/gateway.pem\""));
    if (strncmp(err.message, want, strlen(want)) != 0)
        fail_msg("expected '%s...', got '%s'", want, err.message);
    assert_non_null(strstr(err.message, "No such file or directory"));

    assert_int_equal(symlink(JX_PKI_DIR, pki), 0);
    if (jx_gateway_config_check_files(cfg, &err) != 0)
        fail_msg("check_files: %s", err.message);
    jx_gateway_config_destroy(&cfg);
    unlink(pki);
    unlink(conf);
    rmdir(dir);
}

/* ---- printing ---- */

static void print_shows_tables(void **state)
{
    (void)state;
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(EXAMPLE, &err);
    assert_non_null(cfg);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(jx_gateway_config_print(cfg, out), 0);
    fclose(out);
    const char *expected[] = {
        "gateway id      justx.demo/gateway",
        "5 agencies",
        "  KG-PRISON         State Penitentiary Service of the Kyrgyz Republic                 "
        "StatusUpdate                                     SentenceOrder, StatusUpdate\n",
        "6 routes",
        "sentence-order      KG-COURT-BISHKEK  justx.v1.SentenceOrder        KG-PROBATION, "
        "KG-PRISON\n",
        "KG-COURT-BISHKEK  justx.v1.SentenceOrder        KG-PROBATION (sentence-order), KG-PRISON "
        "(sentence-order)\n",
        "KG-PRISON         justx.v1.StatusUpdate         (no route: refused)\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (strstr(text, expected[i]) == NULL)
            fail_msg("missing from --check output: '%s'\n%s", expected[i], text);
    free(text);
    jx_gateway_config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_loads),
        cmocka_unit_test(example_digest_is_sha256_of_file),
        cmocka_unit_test(digest_changes_with_bytes),
        cmocka_unit_test(minimal_gets_defaults),
        cmocka_unit_test(large_literals_without_suffix),
        cmocka_unit_test(syntax_error),
        cmocka_unit_test(unknown_setting_suggests),
        cmocka_unit_test(misplaced_setting),
        cmocka_unit_test(duplicate_agency),
        cmocka_unit_test(invalid_agency_id),
        cmocka_unit_test(undefined_recipient),
        cmocka_unit_test(unknown_type),
        cmocka_unit_test(missing_listen),
        cmocka_unit_test(bad_limits),
        cmocka_unit_test(wrong_value_type),
        cmocka_unit_test(route_permissions),
        cmocka_unit_test(include_refused),
        cmocka_unit_test(inline_refusals),
        cmocka_unit_test(missing_file_is_io),
        cmocka_unit_test(check_files_against_dev_pki),
        cmocka_unit_test(print_shows_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
