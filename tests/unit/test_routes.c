/* test_routes.c — routing decisions (gateway/routes.c) over real configuration files.
 *
 * The demo story of conf/gateway.conf, route by route; explicit recipients
 * allowed and refused; the refusal codes; patterns and self-exclusion in
 * tests/data/conf/patterns.conf; and, for a generated configuration of 60
 * agencies and 300 routes, every (sender, type, recipients) decision compared
 * with a direct reading of the routing rules that does not use the
 * precomputed table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "registry.h"
#include "routes.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXAMPLE  JX_SOURCE_DIR "/conf/gateway.conf"
#define PATTERNS JX_SOURCE_DIR "/tests/data/conf/patterns.conf"

#define SO  "justx.v1.SentenceOrder"
#define PR  "justx.v1.ProbationReferral"
#define RNA "justx.v1.RiskNeedsAssessment"
#define CT  "justx.v1.CaseTransfer"
#define SU  "justx.v1.StatusUpdate"

static jx_gateway_config *load(const char *path)
{
    jx_error err = {0};
    jx_gateway_config *cfg = jx_gateway_config_load(path, &err);
    if (cfg == NULL)
        fail_msg("%s refused: %s", path, err.message);
    return cfg;
}

static int setup_example(void **state)
{
    *state = load(EXAMPLE);
    return 0;
}

static int setup_patterns(void **state)
{
    *state = load(PATTERNS);
    return 0;
}

static int teardown(void **state)
{
    jx_gateway_config *cfg = *state;
    jx_gateway_config_destroy(&cfg);
    return 0;
}

/* Expects exactly the recipients (agency:route label pairs) in order. */
static void expect_routed(const jx_gateway_config *cfg, const char *sender, const char *type,
                          const char *const *requested, size_t n_requested, const char *expected)
{
    jx_route_decision decision = {0};
    jx_error err = {0};
    if (jx_routes_resolve(cfg, sender, type, requested, n_requested, &decision, &err) != 0)
        fail_msg("%s from %s refused: %s", type, sender, err.message);
    char got[1024] = "";
    for (size_t i = 0; i < decision.count; i++) {
        const jx_route_recipient *r = &decision.recipients[i];
        /* The fields agree with the configuration. */
        assert_string_equal(cfg->agencies[r->agency_index].id, r->agency);
        assert_true(r->route_index < cfg->n_routes);
        assert_string_equal(cfg->routes[r->route_index].label, r->route_label);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s:%s", i ? " " : "", r->agency,
                 r->route_label);
    }
    if (strcmp(got, expected) != 0)
        fail_msg("%s from %s: expected [%s], got [%s]", type, sender, expected, got);
    jx_route_decision_release(&decision);
    assert_null(decision.recipients);
}

static void expect_refused(const jx_gateway_config *cfg, const char *sender, const char *type,
                           const char *const *requested, size_t n_requested, jx_error_code code,
                           const char *sentence)
{
    jx_route_decision decision = {0};
    jx_error err = {0};
    if (jx_routes_resolve(cfg, sender, type, requested, n_requested, &decision, &err) == 0)
        fail_msg("%s from %s was routed to %zu recipients", type, sender, decision.count);
    assert_int_equal(decision.count, 0);
    if (err.code != code || strcmp(err.message, sentence) != 0)
        fail_msg("expected %s '%s', got %s '%s'", jx_error_code_name(code), sentence,
                 jx_error_code_name(err.code), err.message);
    jx_route_decision_release(&decision);
}

/* ---- the demo story ---- */

static void demo_story_by_routes(void **state)
{
    const jx_gateway_config *cfg = *state;
    expect_routed(cfg, "KG-PROSECUTOR", PR, NULL, 0, "KG-PROBATION:route 'referral'");
    expect_routed(cfg, "KG-PROBATION", RNA, NULL, 0,
                  "KG-PROSECUTOR:route 'assessment' KG-COURT-BISHKEK:route 'assessment'");
    /* Fan-out: one order, two recipients. */
    expect_routed(cfg, "KG-COURT-BISHKEK", SO, NULL, 0,
                  "KG-PROBATION:route 'sentence-order' KG-PRISON:route 'sentence-order'");
    expect_routed(
        cfg, "KG-PROBATION", SU, NULL, 0,
        "KG-COURT-BISHKEK:route 'probation-status' KG-PROSECUTOR:route 'probation-status'");
    expect_routed(cfg, "KG-PROBATION", CT, NULL, 0, "LV-PROBATION:route 'transfer-to-latvia'");
    expect_routed(cfg, "LV-PROBATION", SU, NULL, 0, "KG-PROBATION:route 'latvia-status'");

    jx_route_decision decision = {0};
    jx_error err = {0};
    assert_int_equal(jx_routes_resolve(cfg, "KG-COURT-BISHKEK", SO, NULL, 0, &decision, &err), 0);
    assert_int_equal(decision.count, 2);
    assert_int_equal(decision.recipients[0].route_index, 2);
    assert_int_equal(decision.recipients[1].agency_index, 3);
    jx_route_decision_release(&decision);
    jx_route_decision_release(&decision); /* safe twice */
}

static void explicit_recipients_allowed(void **state)
{
    const jx_gateway_config *cfg = *state;
    const char *prison[] = {"KG-PRISON"};
    expect_routed(cfg, "KG-COURT-BISHKEK", SO, prison, 1, "KG-PRISON:route 'sentence-order'");
    /* Requested order is kept; duplicates collapse. */
    const char *both[] = {"KG-PRISON", "KG-PROBATION", "KG-PRISON"};
    expect_routed(cfg, "KG-COURT-BISHKEK", SO, both, 3,
                  "KG-PRISON:route 'sentence-order' KG-PROBATION:route 'sentence-order'");
    const char *court[] = {"KG-COURT-BISHKEK"};
    expect_routed(cfg, "KG-PROBATION", RNA, court, 1, "KG-COURT-BISHKEK:route 'assessment'");
}

static void explicit_recipients_refused(void **state)
{
    const jx_gateway_config *cfg = *state;
    /* LV-PROBATION may not receive sentence orders at all. */
    const char *latvia[] = {"KG-PROBATION", "LV-PROBATION"};
    expect_refused(cfg, "KG-COURT-BISHKEK", SO, latvia, 2, JX_ERR_NOT_PERMITTED,
                   "the recipient LV-PROBATION may not receive justx.v1.SentenceOrder");
    /* LV-PROBATION may receive status updates, but no route carries
     * KG-PROBATION's to it. */
    const char *lv[] = {"LV-PROBATION"};
    expect_refused(cfg, "KG-PROBATION", SU, lv, 1, JX_ERR_NOT_PERMITTED,
                   "no route carries justx.v1.StatusUpdate from KG-PROBATION to LV-PROBATION");
    const char *self[] = {"KG-PROBATION"};
    expect_refused(cfg, "KG-PROBATION", SU, self, 1, JX_ERR_NOT_PERMITTED,
                   "KG-PROBATION may not address a message to itself");
}

static void unknown_recipient(void **state)
{
    const jx_gateway_config *cfg = *state;
    const char *nobody[] = {"KG-PRISON", "KG-NOBODY"};
    expect_refused(cfg, "KG-COURT-BISHKEK", SO, nobody, 2, JX_ERR_UNKNOWN_RECIPIENT,
                   "the recipient KG-NOBODY is not an agency of this gateway");
    /* Header strings are untrusted: the sentence keeps printable ASCII and
     * at most 64 characters of them. */
    char hostile[200];
    memset(hostile, 'A', sizeof hostile - 1);
    hostile[sizeof hostile - 1] = '\0';
    hostile[0] = '\n';
    hostile[1] = '\033';
    const char *bad[] = {hostile};
    char expected[256];
    snprintf(expected, sizeof expected, "the recipient ??%.*s... is not an agency of this gateway",
             62, hostile + 2);
    expect_refused(cfg, "KG-COURT-BISHKEK", SO, bad, 1, JX_ERR_UNKNOWN_RECIPIENT, expected);
}

static void sender_not_allowed(void **state)
{
    const jx_gateway_config *cfg = *state;
    expect_refused(cfg, "KG-PRISON", SO, NULL, 0, JX_ERR_NOT_PERMITTED,
                   "KG-PRISON may not send justx.v1.SentenceOrder");
    expect_refused(cfg, "KG-NOBODY", SU, NULL, 0, JX_ERR_NOT_PERMITTED,
                   "the sender KG-NOBODY is not an agency of this gateway");
    /* Allowed to send, but no route: refused, not dropped. */
    expect_refused(cfg, "KG-PRISON", SU, NULL, 0, JX_ERR_NOT_PERMITTED,
                   "no route carries justx.v1.StatusUpdate from KG-PRISON");
    expect_refused(cfg, "KG-PROSECUTOR", "justx.v1.Nothing", NULL, 0, JX_ERR_UNKNOWN_TYPE,
                   "justx.v1.Nothing is not a message type this gateway knows");
    expect_refused(cfg, "KG-PROSECUTOR", "justx.v1.Ack", NULL, 0, JX_ERR_NOT_PERMITTED,
                   "justx.v1.Ack is a protocol message, not a document: the gateway does not "
                   "route it");
}

/* ---- patterns ---- */

static void patterns_and_self_exclusion(void **state)
{
    const jx_gateway_config *cfg = *state;
    /* The court matches KG-* (kg-status names the court itself: left out),
     * * (archive) and its own court-docs. */
    expect_routed(cfg, "KG-COURT", SU, NULL, 0,
                  "KG-PROBATION:route 'kg-status' ARCHIVE:route #2 KG-PRISON:route 'court-docs'");
    /* court-docs says justx.v1.* but prison and probation may not receive
     * case transfers: only the archive gets one. */
    expect_routed(cfg, "KG-COURT", CT, NULL, 0, "ARCHIVE:route #2");
    expect_routed(cfg, "KG-COURT", SO, NULL, 0,
                  "ARCHIVE:route #2 KG-PRISON:route 'court-docs' KG-PROBATION:route 'court-docs'");
    expect_routed(cfg, "KG-PRISON", SU, NULL, 0,
                  "KG-COURT:route 'kg-status' KG-PROBATION:route 'kg-status' ARCHIVE:route #2");
    expect_routed(cfg, "LV-PROBATION", SU, NULL, 0, "ARCHIVE:route #2");
    const char *prison[] = {"KG-PRISON"};
    expect_refused(cfg, "KG-COURT", CT, prison, 1, JX_ERR_NOT_PERMITTED,
                   "the recipient KG-PRISON may not receive justx.v1.CaseTransfer");
    expect_refused(cfg, "ARCHIVE", SU, NULL, 0, JX_ERR_NOT_PERMITTED,
                   "ARCHIVE may not send justx.v1.StatusUpdate");
}

/* ---- explain ---- */

static char *explain(const jx_gateway_config *cfg, const char *sender, const char *type,
                     const char *const *requested, size_t n, int expected_rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    int rc = jx_routes_explain(cfg, sender, type, requested, n, out);
    fclose(out);
    if (rc != expected_rc)
        fail_msg("explain returned %d, expected %d:\n%s", rc, expected_rc, text);
    return text;
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("expected '%s' in:\n%s", needle, text);
}

static void explain_in_words(void **state)
{
    const jx_gateway_config *cfg = *state;
    char *text = explain(cfg, "KG-COURT-BISHKEK", SO, NULL, 0, 0);
    assert_contains(text, "A message of type justx.v1.SentenceOrder from KG-COURT-BISHKEK (Bishkek "
                          "City Court), with no recipients in its header, so the routes decide:\n");
    assert_contains(text, "route 'sentence-order' (line ");
    assert_contains(text, "Accepted for 2 recipients:\n");
    assert_contains(text, "  -> KG-PROBATION  by route 'sentence-order'");
    assert_contains(text, "  -> KG-PRISON     by route 'sentence-order'");
    free(text);

    text = explain(cfg, "KG-PRISON", SO, NULL, 0, 1);
    assert_contains(text, "KG-PRISON may not send justx.v1.SentenceOrder: its 'send' list");
    assert_contains(text,
                    "Refused (NOT_PERMITTED): KG-PRISON may not send justx.v1.SentenceOrder.");
    free(text);

    const char *lv[] = {"LV-PROBATION"};
    text = explain(cfg, "KG-COURT-BISHKEK", SO, lv, 1, 1);
    assert_contains(text, "addressed in its header to LV-PROBATION:");
    assert_contains(text, "Refused (NOT_PERMITTED): the recipient LV-PROBATION may not receive");
    free(text);
}

static void explain_leaves_out(void **state)
{
    const jx_gateway_config *cfg = *state;
    char *text = explain(cfg, "KG-COURT", CT, NULL, 0, 0);
    assert_contains(text, "leaves out KG-PRISON: it may not receive justx.v1.CaseTransfer");
    assert_contains(text, "Accepted for 1 recipient:\n  -> ARCHIVE  by route #2");
    free(text);
    text = explain(cfg, "KG-COURT", SU, NULL, 0, 0);
    assert_contains(text, "leaves out KG-COURT: that is the sender itself");
    free(text);
}

/* ---- a large generated configuration against the rules read directly ---- */

enum { N_AGENCIES = 60, N_ROUTES = 300 };

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The rules of routes.h, applied without the table. Returns the code (0
 * when routed) and the recipients as "ID:route-index ...". */
static jx_error_code reference(const jx_gateway_config *cfg, const char *sender, size_t t,
                               const char *const *requested, size_t n_requested, char *out,
                               size_t size)
{
    out[0] = '\0';
    long a = -1;
    for (size_t i = 0; i < cfg->n_agencies; i++)
        if (strcmp(cfg->agencies[i].id, sender) == 0)
            a = (long)i;
    if (a < 0 || !((cfg->agencies[a].send_types >> t) & 1))
        return JX_ERR_NOT_PERMITTED;
    /* Everything the routes give, first route per recipient. */
    size_t ids[N_AGENCIES], via[N_AGENCIES], n = 0;
    for (size_t r = 0; r < cfg->n_routes; r++) {
        const jx_route_config *route = &cfg->routes[r];
        if (fnmatch(route->from, sender, 0) != 0 || !((route->types >> t) & 1))
            continue;
        for (size_t k = 0; k < route->n_to; k++) {
            size_t q = route->to_agency[k];
            bool seen = false;
            for (size_t i = 0; i < n; i++)
                seen |= ids[i] == q;
            if (seen || q == (size_t)a || !((cfg->agencies[q].receive_types >> t) & 1))
                continue;
            ids[n] = q;
            via[n++] = r;
        }
    }
    if (n_requested == 0) {
        if (n == 0)
            return JX_ERR_NOT_PERMITTED;
        for (size_t i = 0; i < n; i++)
            snprintf(out + strlen(out), size - strlen(out), "%s:%zu ", cfg->agencies[ids[i]].id,
                     via[i]);
        return JX_OK;
    }
    char done[N_AGENCIES] = {0};
    for (size_t j = 0; j < n_requested; j++) {
        long q = -1;
        for (size_t i = 0; i < cfg->n_agencies; i++)
            if (strcmp(cfg->agencies[i].id, requested[j]) == 0)
                q = (long)i;
        if (q < 0) {
            out[0] = '\0';
            return JX_ERR_UNKNOWN_RECIPIENT;
        }
        if (done[q])
            continue;
        long found = -1;
        for (size_t i = 0; i < n; i++)
            if (ids[i] == (size_t)q)
                found = (long)i;
        if (found < 0) {
            out[0] = '\0';
            return JX_ERR_NOT_PERMITTED;
        }
        done[q] = 1;
        snprintf(out + strlen(out), size - strlen(out), "%s:%zu ", requested[j], via[found]);
    }
    return JX_OK;
}

static void generated_matches_reference(void **state)
{
    (void)state;
    size_t n_types;
    const jx_message_type *types = jx_registry_all(&n_types);
    const char *documents[8];
    size_t n_documents = 0;
    for (size_t i = 0; i < n_types; i++)
        if (types[i].is_document)
            documents[n_documents++] = types[i].name;

    /* Agencies AG-00..AG-59 in three "countries" (prefix AG-0, AG-1, ...),
     * each sending a random non-empty subset of the documents and receiving
     * another; routes from an id, a prefix pattern or "*", for a name or
     * "justx.v1.*", kept only when the loader's own rules would accept them
     * (so the file is valid by construction). */
    uint8_t send[N_AGENCIES], receive[N_AGENCIES];
    for (size_t a = 0; a < N_AGENCIES; a++) {
        send[a] = (uint8_t)(1 + rng() % 31);
        receive[a] = (uint8_t)(1 + rng() % 31);
    }
    char dir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/test-routes-scratch-%ld", JX_BINARY_DIR, (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/generated.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "gateway = { listen = \"127.0.0.1:0\"; state_dir = \".\";\n"
               "  tls = { certificate = \"c\"; key = \"k\"; trust_anchors = [ \"a\" ]; }; };\n");
    fprintf(f, "agencies = (\n");
    for (size_t a = 0; a < N_AGENCIES; a++) {
        fprintf(f, "  { id = \"AG-%02zu\"; send = [", a);
        for (size_t d = 0, first = 1; d < 5; d++)
            if (send[a] >> d & 1) {
                fprintf(f, "%s\"%s\"", first ? " " : ", ", documents[d]);
                first = 0;
            }
        fprintf(f, " ]; receive = [");
        for (size_t d = 0, first = 1; d < 5; d++)
            if (receive[a] >> d & 1) {
                fprintf(f, "%s\"%s\"", first ? " " : ", ", documents[d]);
                first = 0;
            }
        fprintf(f, " ]; }%s\n", a + 1 < N_AGENCIES ? "," : "");
    }
    fprintf(f, ");\nroutes = (\n");
    size_t written = 0;
    while (written < N_ROUTES) {
        char from[16];
        uint64_t kind = rng() % 4;
        size_t a = rng() % N_AGENCIES;
        if (kind == 0)
            snprintf(from, sizeof from, "*");
        else if (kind == 1)
            snprintf(from, sizeof from, "AG-%zu*", a / 10);
        else
            snprintf(from, sizeof from, "AG-%02zu", a);
        bool all_types = rng() % 3 == 0;
        size_t d = rng() % 5;
        uint8_t route_types = all_types ? 31 : (uint8_t)(1u << d);
        /* Types the matching senders can send through this route. */
        uint8_t carried = 0;
        for (size_t s = 0; s < N_AGENCIES; s++) {
            char id[8];
            snprintf(id, sizeof id, "AG-%02zu", s);
            if (fnmatch(from, id, 0) == 0)
                carried |= send[s] & route_types;
        }
        if (carried == 0)
            continue;
        size_t to[4], n_to = 0;
        size_t want = 1 + rng() % 4;
        for (size_t tries = 0; tries < 40 && n_to < want; tries++) {
            size_t q = rng() % N_AGENCIES;
            bool ok = (receive[q] & carried) != 0 && !(kind >= 2 && q == a);
            for (size_t i = 0; i < n_to; i++)
                ok &= to[i] != q;
            if (!all_types && !(receive[q] >> d & 1))
                ok = false;
            if (ok)
                to[n_to++] = q;
        }
        if (n_to == 0)
            continue;
        fprintf(f, "  { from = \"%s\"; type = \"%s\"; to = [", from,
                all_types ? "justx.v1.*" : documents[d]);
        for (size_t i = 0; i < n_to; i++)
            fprintf(f, "%s\"AG-%02zu\"", i ? ", " : " ", to[i]);
        fprintf(f, " ]; }%s\n", written + 1 < N_ROUTES ? "," : "");
        written++;
    }
    fprintf(f, ");\n");
    assert_int_equal(fclose(f), 0);

    jx_gateway_config *cfg = load(path);
    assert_int_equal(cfg->n_routes, N_ROUTES);
    jx_route_decision decision = {0};
    size_t routed = 0, refused = 0;
    for (size_t a = 0; a < N_AGENCIES; a++) {
        char sender[8];
        snprintf(sender, sizeof sender, "AG-%02zu", a);
        for (size_t t = 0; t < n_types; t++) {
            for (size_t trial = 0; trial < 6; trial++) {
                /* Trial 0: the routes decide; then random requested lists,
                 * sometimes with an unknown agency or a duplicate. */
                char names[4][8];
                const char *requested[4];
                size_t n_requested = trial == 0 ? 0 : 1 + rng() % 4;
                for (size_t i = 0; i < n_requested; i++) {
                    uint64_t pick = rng() % (N_AGENCIES + 3);
                    snprintf(names[i], sizeof names[i], "AG-%02u", (unsigned)pick);
                    requested[i] = names[i];
                }
                if (n_requested > 1 && rng() % 4 == 0)
                    requested[n_requested - 1] = requested[0];
                char want[2048], got[2048] = "";
                jx_error_code want_code =
                    types[t].is_document
                        ? reference(cfg, sender, t, requested, n_requested, want, sizeof want)
                        : JX_ERR_NOT_PERMITTED;
                jx_error err = {0};
                int rc = jx_routes_resolve(cfg, sender, types[t].name, requested, n_requested,
                                           &decision, &err);
                jx_error_code got_code = rc == 0 ? JX_OK : err.code;
                if (want_code == JX_OK) {
                    for (size_t i = 0; i < decision.count; i++)
                        snprintf(got + strlen(got), sizeof got - strlen(got), "%s:%zu ",
                                 decision.recipients[i].agency, decision.recipients[i].route_index);
                    routed++;
                } else {
                    want[0] = '\0';
                    refused++;
                }
                if (got_code != want_code || strcmp(got, want) != 0)
                    fail_msg("%s %s (%zu requested): expected %s [%s], got %s [%s] %s", sender,
                             types[t].name, n_requested, jx_error_code_name(want_code), want,
                             jx_error_code_name(got_code), got, rc ? err.message : "");
            }
        }
    }
    /* Both outcomes were exercised, many times. */
    assert_true(routed > 200);
    assert_true(refused > 200);
    jx_route_decision_release(&decision);
    jx_gateway_config_destroy(&cfg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(demo_story_by_routes, setup_example, teardown),
        cmocka_unit_test_setup_teardown(explicit_recipients_allowed, setup_example, teardown),
        cmocka_unit_test_setup_teardown(explicit_recipients_refused, setup_example, teardown),
        cmocka_unit_test_setup_teardown(unknown_recipient, setup_example, teardown),
        cmocka_unit_test_setup_teardown(sender_not_allowed, setup_example, teardown),
        cmocka_unit_test_setup_teardown(patterns_and_self_exclusion, setup_patterns, teardown),
        cmocka_unit_test_setup_teardown(explain_in_words, setup_example, teardown),
        cmocka_unit_test_setup_teardown(explain_leaves_out, setup_patterns, teardown),
        cmocka_unit_test(generated_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
