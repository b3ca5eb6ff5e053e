/* gateway_reload.c — SIGHUP: a new route takes effect without dropping
 * connections; a broken file keeps the old routes and the log says why; a
 * new CRL cuts a revoked agency off everywhere at once.
 *
 * The court's adapter connects once. A StatusUpdate from the court has no
 * route and is REJECTED NOT_PERMITTED. The file gains a route and the
 * gateway gets SIGHUP: the same message type is now ACCEPTED and delivered
 * to probation, over connections made before the reload (same routing ids
 * in --status, no link state change in the adapters, no connection closed
 * in the gateway's log), and the journal holds CONFIG_CHANGED with the new
 * file's SHA-256. Then the file is broken and SIGHUP sent again: the log
 * says reload_refused, naming the file and line; the routes of the last
 * good file still carry messages, and nothing new is journaled.
 *
 * crl_reload: TEST-ED25519 is an agency (the test's own file) and sends with
 * crl.pem in force: ACCEPTED. The file switches to crl-ed25519-revoked.pem
 * (which also revokes TEST-ED25519) and the gateway gets SIGHUP. Then the
 * TLS front end closes TEST-ED25519's connection made before the reload
 * (event=dropped reason=CERTIFICATE_REVOKED) and refuses every new one
 * (event=refused reason=CERTIFICATE_REVOKED), what it sent on the dropped
 * link is never accepted, an envelope TEST-ED25519 signed is REJECTED
 * CERTIFICATE_REVOKED (it was SENDER_MISMATCH before, on the court's link),
 * and the court's connection from before the reload, and new ones, work on.
 */
#include "gwtest.h"

#include "journal.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

enum { WAIT_MS = 20000 };

static const char COURT[] = "KG-COURT-BISHKEK";
static const char PROBATION[] = "KG-PROBATION";
static const char STATUS[] = "justx.v1.StatusUpdate";

static const char court_status_route[] =
    "  { name = \"court-status\"; from = \"KG-COURT-BISHKEK\"; type = \"justx.v1.StatusUpdate\";\n"
    "    to = [ \"KG-PROBATION\" ]; }";

/* A route to an agency the file does not define: a configuration error. */
static const char broken_route[] =
    "  { name = \"court-status\"; from = \"KG-COURT-BISHKEK\"; type = \"justx.v1.StatusUpdate\";\n"
    "    to = [ \"KG-PROBATION\" ]; },\n"
    "  { name = \"to-nowhere\"; from = \"KG-COURT-BISHKEK\"; type = \"justx.v1.StatusUpdate\";\n"
    "    to = [ \"KG-NOBODY\" ]; }";

static void send_status(jx_adapter *court, char id[JX_MESSAGE_ID_MAX])
{
    uint8_t *payload;
    size_t len;
    gwt_payload(STATUS, "UD-5/26", 512, &payload, &len);
    jx_seal_params params = {.type = STATUS, .case_id = "UD-5/26"};
    jx_error err;
    GWT_CHECKF(jx_adapter_send(court, &params, payload, len, id, &err) == 0, "%s", err.message);
    free(payload);
}

/* The receipt the message got first: ACCEPTED or REJECTED, with its code. */
static const char *outcome(jx_adapter *court, const char *id, char **code)
{
    int64_t deadline = gwt_monotonic_ms() + WAIT_MS;
    while (gwt_monotonic_ms() < deadline) {
        if ((*code = gwt_adapter_receipt_code(court, id, "ACCEPTED", NULL)))
            return "ACCEPTED";
        if ((*code = gwt_adapter_receipt_code(court, id, "REJECTED", NULL)))
            return "REJECTED";
        gwt_sleep_ms(20);
    }
    gwt_fail(__FILE__, __LINE__, "no receipt for %s within %d ms", id, WAIT_MS);
}

/* The routing ids of the connected adapters, as "AGENCY/N AGENCY/M ...". */
static void routing_ids(gwt_env *env, char *out, size_t size)
{
    json_t *status = gwt_gateway_status(env);
    GWT_CHECK(status != NULL);
    json_t *adapters = json_object_get(status, "adapters");
    GWT_CHECK(json_is_array(adapters));
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(adapters); i++)
        used += (size_t)snprintf(
            out + used, size - used, "%s%s", i ? " " : "",
            json_string_value(json_object_get(json_array_get(adapters, i), "routingId")));
    json_decref(status);
}

static int file_line_of(const char *path, const char *needle)
{
    FILE *in = fopen(path, "r");
    GWT_CHECK(in != NULL);
    char line[1024];
    int number = 0, found = 0;
    while (!found && fgets(line, sizeof line, in)) {
        number++;
        if (strstr(line, needle))
            found = number;
    }
    fclose(in);
    return found;
}

static void file_sha256(const char *path, uint8_t digest[32])
{
    FILE *in = fopen(path, "rb");
    GWT_CHECK(in != NULL);
    uint8_t buffer[65536];
    size_t len = fread(buffer, 1, sizeof buffer, in);
    fclose(in);
    SHA256(buffer, len, digest);
}

typedef struct {
    int changes;
    uint8_t digest[32];
} config_records;

static int collect_config(void *arg, uint64_t index, const Justx__V1__JournalRecord *record)
{
    (void)index;
    config_records *found = arg;
    if (record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__CONFIG_CHANGED) {
        found->changes++;
        GWT_CHECK(record->config_sha256.len == 32);
        memcpy(found->digest, record->config_sha256.data, 32);
    }
    return 0;
}

static void test_reload(void)
{
    gwt_env *env = gwt_env_new("reload", NULL);
    gwt_gateway_start(env);
    gwt_log *court_log = gwt_log_new("court");
    gwt_log *probation_log = gwt_log_new("probation");
    jx_adapter *court = gwt_adapter_new(env, COURT, NULL, court_log);
    jx_adapter *probation = gwt_adapter_new(env, PROBATION, NULL, probation_log);
    GWT_CHECK(gwt_adapter_wait_connected(court, WAIT_MS));
    GWT_CHECK(gwt_adapter_wait_connected(probation, WAIT_MS));

    /* No route yet. */
    char id[JX_MESSAGE_ID_MAX];
    char *code = NULL;
    send_status(court, id);
    const char *answer = outcome(court, id, &code);
    GWT_CHECKF(strcmp(answer, "REJECTED") == 0 && strcmp(code, "NOT_PERMITTED") == 0,
               "before the reload a court StatusUpdate was %s %s", answer, code);
    free(code);

    /* Both adapters have said HELLO by now, so both are in --status. */
    char before[512];
    int64_t deadline = gwt_monotonic_ms() + WAIT_MS;
    do {
        routing_ids(env, before, sizeof before);
    } while (!(strstr(before, COURT) && strstr(before, PROBATION)) &&
             gwt_monotonic_ms() < deadline && (gwt_sleep_ms(100), true));
    GWT_CHECKF(strstr(before, COURT) && strstr(before, PROBATION), "--status lists only: %s",
               before);
    const char *const link_events[] = {"event=link", NULL};
    int court_links = gwt_log_count(court_log, link_events);
    int probation_links = gwt_log_count(probation_log, link_events);

    /* Reload with a new route. */
    size_t mark = gwt_gateway_log_mark(env);
    gwt_config_options with_route = {.extra_routes = court_status_route};
    gwt_config_write(env, &with_route);
    uint8_t new_digest[32];
    file_sha256(env->config, new_digest);
    gwt_gateway_reload(env);
    const char *const reloaded[] = {"event=reloaded", "routes=7", NULL};
    GWT_CHECKF(gwt_gateway_log_wait(env, mark, 1, WAIT_MS, reloaded),
               "no event=reloaded routes=7 within %d ms of SIGHUP", WAIT_MS);

    send_status(court, id);
    answer = outcome(court, id, &code);
    GWT_CHECKF(strcmp(answer, "ACCEPTED") == 0, "after the reload the StatusUpdate was %s %s",
               answer, code);
    free(code);
    jx_adapter_message *message = NULL;
    jx_error err;
    GWT_CHECKF(jx_adapter_receive(probation, WAIT_MS, &message, &err) == 1,
               "probation did not receive the newly routed message");
    GWT_CHECK(strcmp(message->opened->header->message_id, id) == 0);
    GWT_CHECK(jx_adapter_consume(probation, COURT, id, &err) == 1);
    jx_adapter_message_destroy(&message);
    GWT_CHECK(jx_adapter_wait_receipt(court, id, "DELIVERED", PROBATION, WAIT_MS, &err) == 1);

    /* Same connections as before the reload. */
    char after[512];
    routing_ids(env, after, sizeof after);
    GWT_CHECKF(strcmp(before, after) == 0, "connections before the reload: %s; after: %s", before,
               after);
    GWT_CHECK(gwt_log_count(court_log, link_events) == court_links);
    GWT_CHECK(gwt_log_count(probation_log, link_events) == probation_links);
    GWT_CHECK(jx_adapter_link_state(court, NULL) == JX_TLS_DIALER_CONNECTED);
    const char *const closed[] = {"event=closed", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, mark, closed) == 0);

    config_records records = {0};
    gwt_journal_scan(env, collect_config, &records);
    GWT_CHECKF(records.changes == 1, "%d CONFIG_CHANGED records, expected 1", records.changes);
    GWT_CHECKF(memcmp(records.digest, new_digest, 32) == 0,
               "the CONFIG_CHANGED record does not carry the new file's SHA-256");

    /* Reload with a broken file: refused, old routes stay. */
    mark = gwt_gateway_log_mark(env);
    gwt_config_options broken = {.extra_routes = broken_route};
    gwt_config_write(env, &broken);
    int bad_line = file_line_of(env->config, "KG-NOBODY");
    GWT_CHECK(bad_line > 0);
    gwt_gateway_reload(env);
    const char *const refused[] = {"event=reload_refused", NULL};
    GWT_CHECKF(gwt_gateway_log_wait(env, mark, 1, WAIT_MS, refused),
               "no event=reload_refused within %d ms of SIGHUP with a broken file", WAIT_MS);
    char *line = gwt_gateway_log_find(env, mark, refused);
    char where[400];
    snprintf(where, sizeof where, "gateway.conf:%d", bad_line);
    char where_before[400];
    snprintf(where_before, sizeof where_before, "gateway.conf:%d", bad_line - 1);
    printf("  %s\n", line);
    GWT_CHECKF(strstr(line, "KG-NOBODY") != NULL, "the refusal does not name the problem: %s",
               line);
    GWT_CHECKF(strstr(line, where) != NULL || strstr(line, where_before) != NULL,
               "the refusal does not name %s: %s", where, line);
    free(line);
    const char *const reloaded_again[] = {"event=reloaded", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, mark, reloaded_again) == 0);

    send_status(court, id);
    answer = outcome(court, id, &code);
    GWT_CHECKF(strcmp(answer, "ACCEPTED") == 0,
               "after the refused reload the good route no longer works: %s %s", answer, code);
    free(code);
    GWT_CHECK(jx_adapter_receive(probation, WAIT_MS, &message, &err) == 1);
    GWT_CHECK(strcmp(message->opened->header->message_id, id) == 0);
    jx_adapter_message_destroy(&message);
    /* (--status cannot be asked now: it reads the broken file; see
     * status_after_refused_reload.) */
    GWT_CHECK(gwt_gateway_log_count_since(env, mark, closed) == 0);
    const char *const gone[] = {"event=adapter_gone", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, 0, gone) == 0);
    GWT_CHECK(gwt_log_count(court_log, link_events) == court_links);
    records.changes = 0;
    gwt_journal_scan(env, collect_config, &records);
    GWT_CHECK(records.changes == 1);

    jx_adapter_destroy(&court);
    jx_adapter_destroy(&probation);
    gwt_log_destroy(&court_log);
    gwt_log_destroy(&probation_log);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* After a refused reload the running gateway works on with the previous
 * configuration, and that is when an administrator asks it how it is. */
static void test_status_after_refused_reload(void)
{
    gwt_env *env = gwt_env_new("statusrefused", NULL);
    gwt_gateway_start(env);
    size_t mark = gwt_gateway_log_mark(env);
    gwt_config_options broken = {.extra_routes = broken_route};
    gwt_config_write(env, &broken);
    gwt_gateway_reload(env);
    const char *const refused[] = {"event=reload_refused", NULL};
    GWT_CHECK(gwt_gateway_log_wait(env, mark, 1, WAIT_MS, refused));
    json_t *status = gwt_gateway_status(env);
    GWT_CHECKF(status != NULL,
               "justx-gateway --status fails while the gateway runs, because it validates the "
               "(broken) file instead of only finding the control socket");
    json_decref(status);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- crl_reload ----------------------------------------------------------------- */

static const char ED25519[] = "TEST-ED25519";

/* The gateway file of crl_reload: TEST-ED25519 may send StatusUpdates to
 * probation, and so may the court; crl names the CRL in the env's pki/. */
static void write_crl_config(gwt_env *env, const char *crl)
{
    char *text = NULL;
    int n = asprintf(
        &text,
        "# written by tests/integration/gateway_reload.c (crl_reload)\n"
        "gateway:\n"
        "{\n"
        "  id = \"%s\";\n"
        "  listen = \"127.0.0.1:%d\";\n"
        "  state_dir = \"state\";\n"
        "  tls:\n"
        "  {\n"
        "    certificate = \"pki/gateway.pem\";\n"
        "    key = \"pki/gateway.key\";\n"
        "    trust_anchors = [ \"pki/ca.pem\" ];\n"
        "    crls = [ \"pki/%s\" ];\n"
        "  };\n"
        "  journal: { checkpoint_every_ms = 1000; };\n"
        "};\n"
        "\n"
        "agencies =\n"
        "(\n"
        "  { id = \"TEST-ED25519\"; name = \"Test agency with an Ed25519 key\";\n"
        "    send = [ \"justx.v1.StatusUpdate\" ]; },\n"
        "  { id = \"KG-COURT-BISHKEK\"; name = \"Bishkek City Court\";\n"
        "    send = [ \"justx.v1.StatusUpdate\" ]; },\n"
        "  { id = \"KG-PROBATION\"; name = \"Probation Department\";\n"
        "    receive = [ \"justx.v1.StatusUpdate\" ]; }\n"
        ");\n"
        "\n"
        "routes =\n"
        "(\n"
        "  { name = \"ed25519-status\"; from = \"TEST-ED25519\"; type = \"justx.v1.StatusUpdate\";\n"
        "    to = [ \"KG-PROBATION\" ]; },\n"
        "  { name = \"court-status\"; from = \"KG-COURT-BISHKEK\"; type = "
        "\"justx.v1.StatusUpdate\";\n"
        "    to = [ \"KG-PROBATION\" ]; }\n"
        ");\n",
        env->origin, env->port, crl);
    GWT_CHECK(n > 0);
    gwt_config_write_text(env, text);
    free(text);
}

/* A StatusUpdate sealed by signer (its agency is the sender). */
static uint8_t *seal_status(jx_signer *signer, size_t *len, char id[JX_MESSAGE_ID_MAX])
{
    uint8_t *payload;
    size_t payload_len;
    gwt_payload(STATUS, "UD-7/26", 512, &payload, &payload_len);
    jx_seal_params params = {.type = STATUS, .case_id = "UD-7/26"};
    uint8_t *envelope = NULL;
    jx_error err;
    GWT_CHECKF(jx_envelope_seal(signer, &params, payload, payload_len, &envelope, len, id,
                                &err) == 0,
               "seal: %s", err.message);
    free(payload);
    return envelope;
}

/* Sends what signer seals on link; the receipt must say status (and code,
 * for REJECTED). */
static void expect_receipt(gwt_link *link, jx_signer *signer, const char *what,
                           const char *status, const char *code)
{
    char id[JX_MESSAGE_ID_MAX];
    size_t len;
    uint8_t *bytes = seal_status(signer, &len, id);
    gwt_link_send(link, "SEND", bytes, len);
    free(bytes);
    jx_checked_receipt checked;
    GWT_CHECKF(gwt_link_receipt(link, WAIT_MS, &checked, NULL) == 1, "%s: no receipt within %d ms",
               what, WAIT_MS);
    const Justx__V1__Receipt *receipt = checked.receipt;
    const char *got = jx_receipt_status_name(receipt->status);
    GWT_CHECKF(strcmp(receipt->message_id, id) == 0, "%s: the receipt names message %s", what,
               receipt->message_id);
    GWT_CHECKF(strcmp(got, status) == 0 && (code == NULL || strcmp(receipt->reason_code, code) == 0),
               "%s: %s %s (\"%s\"), expected %s %s", what, got, receipt->reason_code,
               receipt->reason, status, code ? code : "");
    printf("  %-58s %s %s\n", what, got, receipt->reason_code);
    jx_checked_receipt_release(&checked);
}

static void test_crl_reload(void)
{
    gwt_env *env = gwt_env_new("crlreload", NULL);
    write_crl_config(env, "crl.pem");
    gwt_gateway_start(env);
    jx_signer *ed25519 = gwt_signer(env, ED25519);
    jx_signer *court = gwt_signer(env, COURT);
    gwt_link *ed25519_before = gwt_link_new(env, ED25519, "ed25519-before");
    gwt_link *court_before = gwt_link_new(env, COURT, "court-before");

    expect_receipt(ed25519_before, ed25519, "TEST-ED25519 before the reload", "ACCEPTED", NULL);
    expect_receipt(court_before, court, "the court before the reload", "ACCEPTED", NULL);
    /* The control for the message check below: the certificate is good, only
     * the link is not TEST-ED25519's. */
    expect_receipt(court_before, ed25519, "signed by TEST-ED25519, on the court's link",
                   "REJECTED", "SENDER_MISMATCH");

    size_t mark = gwt_gateway_log_mark(env);
    write_crl_config(env, "crl-ed25519-revoked.pem");
    gwt_gateway_reload(env);
    const char *const reloaded[] = {"event=reloaded", NULL};
    GWT_CHECKF(gwt_gateway_log_wait(env, mark, 1, WAIT_MS, reloaded),
               "no event=reloaded within %d ms of SIGHUP", WAIT_MS);

    /* The connection from before the reload is closed by the front end as
     * part of the reload (so before event=reloaded), and only that one. */
    const char *const dropped[] = {"event=dropped", "reason=CERTIFICATE_REVOKED",
                                   "agency=TEST-ED25519", NULL};
    GWT_CHECKF(gwt_gateway_log_count_since(env, mark, dropped) == 1,
               "TEST-ED25519's connection was not dropped by the reload");
    const char *const any_dropped[] = {"event=dropped", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, mark, any_dropped) == 1);
    char *line = gwt_gateway_log_find(env, mark, dropped);
    printf("  %s\n", line);
    free(line);

    /* What TEST-ED25519 sends on that link now never reaches the broker:
     * its dialer cannot get a connection back. */
    char id[JX_MESSAGE_ID_MAX];
    size_t len;
    uint8_t *bytes = seal_status(ed25519, &len, id);
    gwt_link_send(ed25519_before, "SEND", bytes, len);
    free(bytes);
    jx_checked_receipt checked;
    GWT_CHECKF(gwt_link_receipt(ed25519_before, 2000, &checked, NULL) == 0,
               "a message on TEST-ED25519's link from before the reload got a receipt");
    GWT_CHECK(gwt_link_state(ed25519_before) != JX_TLS_DIALER_CONNECTED);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACCEPTED, id, NULL) == 0);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_REJECTED, id, NULL) == 0);
    gwt_link_destroy(&ed25519_before);

    /* A new connection of TEST-ED25519 is refused in the TLS handshake. */
    size_t before_attempt = gwt_gateway_log_mark(env);
    gwt_link *fresh = gwt_link_dial(env, ED25519, "ed25519-after");
    const char *const failed[] = {"event=attempt_failed", NULL};
    int64_t deadline = gwt_monotonic_ms() + WAIT_MS;
    while (gwt_log_count(gwt_link_log(fresh), failed) < 2 && gwt_monotonic_ms() < deadline)
        gwt_sleep_ms(20);
    GWT_CHECKF(gwt_log_count(gwt_link_log(fresh), failed) >= 2,
               "a new TEST-ED25519 dialer did not fail twice within %d ms", WAIT_MS);
    GWT_CHECK(gwt_link_state(fresh) != JX_TLS_DIALER_CONNECTED);
    const char *const refused[] = {"event=refused", "reason=CERTIFICATE_REVOKED", "TEST-ED25519",
                                   NULL};
    GWT_CHECKF(gwt_gateway_log_count_since(env, before_attempt, refused) >= 2,
               "the gateway did not log the new connections' refusals as CERTIFICATE_REVOKED");
    const char *const connected[] = {"event=connected", "agency=TEST-ED25519", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, mark, connected) == 0);
    line = gwt_gateway_log_find(env, before_attempt, refused);
    printf("  %s\n", line);
    free(line);
    gwt_link_destroy(&fresh);

    /* Messages TEST-ED25519 signed are refused by the broker too. */
    expect_receipt(court_before, ed25519, "signed by TEST-ED25519 after the reload", "REJECTED",
                   "CERTIFICATE_REVOKED");

    /* The court is not affected: the same connection, and a new one. */
    GWT_CHECK(gwt_link_state(court_before) == JX_TLS_DIALER_CONNECTED);
    expect_receipt(court_before, court, "the court after the reload, connection from before",
                   "ACCEPTED", NULL);
    gwt_link *court_after = gwt_link_new(env, COURT, "court-after");
    expect_receipt(court_after, court, "the court after the reload, new connection", "ACCEPTED",
                   NULL);
    const char *const court_closed[] = {"agency=KG-COURT-BISHKEK", "event=closed", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, mark, court_closed) == 0);

    gwt_link_destroy(&court_after);
    gwt_link_destroy(&court_before);
    jx_signer_destroy(&ed25519);
    jx_signer_destroy(&court);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

int main(int argc, char **argv)
{
    static const gwt_test tests[] = {
        {"reload", test_reload, NULL},
        {"crl_reload", test_crl_reload, NULL},
        {"status_after_refused_reload", test_status_after_refused_reload,
         "--status loads and validates the whole configuration file, so after a refused "
         "reload it cannot reach the running gateway"},
    };
    return gwt_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
