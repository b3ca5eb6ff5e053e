/* gateway_delivery.c — store-and-forward through the real justx-gateway.
 *
 *   fan_out    a SentenceOrder from the court reaches probation and prison;
 *              the court gets ACCEPTED and one DELIVERED per recipient, each
 *              carrying that recipient's signed Ack of exactly this message;
 *              a header naming one recipient narrows the fan-out to it
 *   offline    50 referrals to probation while its adapter is down: after it
 *              starts, all 50 arrive once each, in acceptance order
 *   expiry     a message with a 2 s lifetime to recipients that are offline
 *              gives the sender EXPIRED per recipient, and is never delivered
 *   expiry_unacknowledged  a connected recipient that never acknowledges is
 *              offered the message again until it expires, then no more
 *   duplicate  the same envelope sent twice on a raw link: both SENDs get the
 *              ACCEPTED receipt of the same journal record, and it is
 *              delivered once — with the recipient online, with it offline,
 *              and after a gateway restart
 *   forged_acks  only the recipient's own Ack on its own link finishes a delivery
 *   two_adapters  the adapter that said HELLO last receives; when it leaves,
 *              the other gets what it had not acknowledged
 *   receipt_backlog  (known bug) receipts owed to an agency that was away
 *              reach it promptly when it comes back
 */
#include "gwtest.h"

#include "journal.h"
#include "justx/v1/documents.pb-c.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WAIT_MS = 30000 };

static const char COURT[] = "KG-COURT-BISHKEK";
static const char PROSECUTOR[] = "KG-PROSECUTOR";
static const char PROBATION[] = "KG-PROBATION";
static const char PRISON[] = "KG-PRISON";
static const char ORDER[] = "justx.v1.SentenceOrder";
static const char REFERRAL[] = "justx.v1.ProbationReferral";

static void send_document(jx_adapter *adapter, const char *type, const char *case_id,
                          int64_t expires_at_ms, char id[JX_MESSAGE_ID_MAX])
{
    uint8_t *payload;
    size_t len;
    gwt_payload(type, case_id, 2048, &payload, &len);
    jx_seal_params params = {.type = type, .case_id = case_id, .expires_at_ms = expires_at_ms};
    jx_error err;
    GWT_CHECKF(jx_adapter_send(adapter, &params, payload, len, id, &err) == 0, "send: %s",
               err.message);
    free(payload);
}

static void wait_receipt(jx_adapter *adapter, const char *id, const char *status,
                         const char *recipient)
{
    jx_error err;
    int rc = jx_adapter_wait_receipt(adapter, id, status, recipient, WAIT_MS, &err);
    GWT_CHECKF(rc == 1, "no %s receipt%s%s for %s within %d ms (rc %d)", status,
               recipient ? " from " : "", recipient ? recipient : "", id, WAIT_MS, rc);
}

typedef struct {
    const char *status;
    const char *recipient;
    uint8_t *bytes;
    size_t len;
} stored_receipt;

static int find_stored(const jx_adapter_store_receipt *receipt, void *arg)
{
    stored_receipt *want = arg;
    if (want->bytes == NULL && strcmp(receipt->status, want->status) == 0 &&
        (want->recipient == NULL || strcmp(receipt->recipient, want->recipient) == 0)) {
        want->bytes = malloc(receipt->receipt_len);
        memcpy(want->bytes, receipt->receipt, receipt->receipt_len);
        want->len = receipt->receipt_len;
    }
    return 0;
}

/* The stored receipt, checked again here with the gateway's key alone. */
static void checked_receipt(gwt_env *env, jx_adapter *adapter, const char *id, const char *status,
                            const char *recipient, jx_checked_receipt *out)
{
    stored_receipt want = {status, recipient, NULL, 0};
    jx_error err;
    GWT_CHECK(jx_adapter_store_receipts_for(jx_adapter_get_store(adapter), id, find_stored, &want,
                                            &err) == 0);
    GWT_CHECKF(want.bytes != NULL, "no stored %s receipt for %s", status, id);
    GWT_CHECKF(gwt_receipt_check(env, want.bytes, want.len, out, &err) == 0,
               "%s receipt for %s does not verify: %s", status, id, err.message);
    free(want.bytes);
    GWT_CHECK(strcmp(out->receipt->message_id, id) == 0);
    GWT_CHECK(strcmp(jx_receipt_status_name(out->receipt->status), status) == 0);
}

/* ---- fan-out ------------------------------------------------------------------------- */

/* The DELIVERED receipt carries the recipient's own signed Ack naming the
 * SHA-256 of exactly the header the sender signed. */
static void check_delivered(gwt_env *env, jx_adapter *court, const char *id, const char *recipient,
                            const uint8_t header_sha256[32])
{
    jx_checked_receipt checked;
    checked_receipt(env, court, id, "DELIVERED", recipient, &checked);
    GWT_CHECK(strcmp(checked.receipt->recipient, recipient) == 0);
    jx_error err;
    jx_trust *trust = jx_trust_new(gwt_pki(env, "ca.pem"), &err);
    GWT_CHECK(trust != NULL);
    jx_opened *ack = jx_envelope_open(trust, checked.record->ack_envelope.data,
                                      checked.record->ack_envelope.len, NULL, &err);
    GWT_CHECKF(ack != NULL, "the Ack in the DELIVERED receipt does not verify: %s", err.message);
    GWT_CHECK(strcmp(ack->signer->agency, recipient) == 0);
    GWT_CHECK(strcmp(ack->type->name, "justx.v1.Ack") == 0);
    const Justx__V1__Ack *payload = (const Justx__V1__Ack *)ack->payload;
    bool named = false;
    for (size_t i = 0; i < payload->n_header_sha256; i++)
        named = named || (payload->header_sha256[i].len == 32 &&
                          memcmp(payload->header_sha256[i].data, header_sha256, 32) == 0);
    GWT_CHECKF(named, "%s's Ack does not name the message's header digest", recipient);
    jx_opened_destroy(&ack);
    jx_trust_destroy(&trust);
    jx_checked_receipt_release(&checked);
}

/* Receives the next message, checks it is id from sender, consumes it and
 * returns the SHA-256 of its header. */
static void receive_one(jx_adapter *adapter, const char *sender, const char *id,
                        uint8_t header_sha256[32])
{
    jx_adapter_message *message = NULL;
    jx_error err;
    int rc = jx_adapter_receive(adapter, WAIT_MS, &message, &err);
    GWT_CHECKF(rc == 1, "%s received nothing within %d ms (rc %d)", jx_adapter_agency(adapter),
               WAIT_MS, rc);
    const Justx__V1__Header *header = message->opened->header;
    GWT_CHECKF(strcmp(header->message_id, id) == 0, "%s received %s, expected %s",
               jx_adapter_agency(adapter), header->message_id, id);
    GWT_CHECK(strcmp(header->sender, sender) == 0);
    GWT_CHECK(strcmp(message->opened->signer->agency, sender) == 0);
    if (header_sha256)
        SHA256(message->opened->envelope->header.data, message->opened->envelope->header.len,
               header_sha256);
    GWT_CHECK(jx_adapter_consume(adapter, header->sender, header->message_id, &err) == 1);
    jx_adapter_message_destroy(&message);
}

static void test_fan_out(void)
{
    gwt_env *env = gwt_env_new("fanout", NULL);
    gwt_gateway_start(env);
    jx_adapter *court = gwt_adapter_new(env, COURT, NULL, NULL);
    jx_adapter *probation = gwt_adapter_new(env, PROBATION, NULL, NULL);
    jx_adapter *prison = gwt_adapter_new(env, PRISON, NULL, NULL);

    char id[JX_MESSAGE_ID_MAX];
    send_document(court, ORDER, "UD-1234/26", 0, id);
    wait_receipt(court, id, "ACCEPTED", NULL);

    uint8_t at_probation[32], at_prison[32];
    receive_one(probation, COURT, id, at_probation);
    receive_one(prison, COURT, id, at_prison);
    GWT_CHECK(memcmp(at_probation, at_prison, 32) == 0);
    wait_receipt(court, id, "DELIVERED", PROBATION);
    wait_receipt(court, id, "DELIVERED", PRISON);

    jx_checked_receipt accepted;
    checked_receipt(env, court, id, "ACCEPTED", NULL, &accepted);
    /* The ACCEPTED record names both recipients, by the route. */
    GWT_CHECK(accepted.record->n_recipients == 2);
    GWT_CHECK(strcmp(accepted.record->recipients[0], PROBATION) == 0 ||
              strcmp(accepted.record->recipients[1], PROBATION) == 0);
    GWT_CHECK(strcmp(accepted.record->recipients[0], PRISON) == 0 ||
              strcmp(accepted.record->recipients[1], PRISON) == 0);
    jx_checked_receipt_release(&accepted);
    check_delivered(env, court, id, PROBATION, at_probation);
    check_delivered(env, court, id, PRISON, at_prison);

    /* Nothing else arrives, and the journal tells the same story. */
    jx_adapter_message *extra = NULL;
    jx_error err;
    GWT_CHECK(jx_adapter_receive(probation, 1000, &extra, &err) == 0);
    GWT_CHECK(jx_adapter_receive(prison, 0, &extra, &err) == 0);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACCEPTED, id, NULL) == 1);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, id, PROBATION) == 1);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, id, PRISON) == 1);

    /* A header that names one recipient of the route narrows the fan-out. */
    uint8_t *payload;
    size_t len;
    gwt_payload(ORDER, "UD-1235/26", 1024, &payload, &len);
    const char *const only_prison[] = {PRISON};
    jx_seal_params narrowed = {.type = ORDER, .recipients = only_prison, .recipient_count = 1};
    char narrowed_id[JX_MESSAGE_ID_MAX];
    GWT_CHECK(jx_adapter_send(court, &narrowed, payload, len, narrowed_id, &err) == 0);
    free(payload);
    receive_one(prison, COURT, narrowed_id, NULL);
    wait_receipt(court, narrowed_id, "DELIVERED", PRISON);
    GWT_CHECK(jx_adapter_receive(probation, 1000, &extra, &err) == 0);
    jx_checked_receipt narrowed_accepted;
    checked_receipt(env, court, narrowed_id, "ACCEPTED", NULL, &narrowed_accepted);
    GWT_CHECK(narrowed_accepted.record->n_recipients == 1);
    GWT_CHECK(strcmp(narrowed_accepted.record->recipients[0], PRISON) == 0);
    jx_checked_receipt_release(&narrowed_accepted);

    jx_adapter_destroy(&court);
    jx_adapter_destroy(&probation);
    jx_adapter_destroy(&prison);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- a recipient offline for a while ------------------------------------------------ */

enum { OFFLINE_MESSAGES = 50 };

static void test_offline(void)
{
    gwt_env *env = gwt_env_new("offline", NULL);
    gwt_gateway_start(env);
    jx_adapter *prosecutor = gwt_adapter_new(env, PROSECUTOR, NULL, NULL);

    char ids[OFFLINE_MESSAGES][JX_MESSAGE_ID_MAX];
    for (int i = 0; i < OFFLINE_MESSAGES; i++) {
        char case_id[32];
        snprintf(case_id, sizeof case_id, "REF-%03d/26", i);
        send_document(prosecutor, REFERRAL, case_id, 0, ids[i]);
    }
    /* Acceptance order is the journal order of the ACCEPTED records. */
    uint64_t accepted_index[OFFLINE_MESSAGES];
    for (int i = 0; i < OFFLINE_MESSAGES; i++) {
        wait_receipt(prosecutor, ids[i], "ACCEPTED", NULL);
        jx_checked_receipt checked;
        checked_receipt(env, prosecutor, ids[i], "ACCEPTED", NULL, &checked);
        accepted_index[i] = checked.receipt->journal_index;
        jx_checked_receipt_release(&checked);
    }
    for (int i = 1; i < OFFLINE_MESSAGES; i++)
        GWT_CHECKF(accepted_index[i] > accepted_index[i - 1],
                   "message %d was accepted (index %llu) before message %d (index %llu): the "
                   "adapter sent its outbox out of order",
                   i, (unsigned long long)accepted_index[i], i - 1,
                   (unsigned long long)accepted_index[i - 1]);

    /* Offline for a while: longer than the first retry delays. */
    gwt_sleep_ms(2000);
    json_t *status = gwt_gateway_status(env);
    GWT_CHECK(status != NULL);
    json_t *spool = json_object_get(status, "spool");
    json_int_t pending = -1;
    for (size_t i = 0; i < json_array_size(spool); i++) {
        json_t *row = json_array_get(spool, i);
        if (strcmp(json_string_value(json_object_get(row, "recipient")), PROBATION) == 0)
            pending = json_integer_value(json_object_get(row, "pending"));
    }
    GWT_CHECKF(pending == OFFLINE_MESSAGES, "--status shows %lld pending for %s, expected %d",
               (long long)pending, PROBATION, OFFLINE_MESSAGES);
    json_decref(status);

    jx_adapter *probation = gwt_adapter_new(env, PROBATION, NULL, NULL);
    int64_t previous_sequence = 0;
    for (int i = 0; i < OFFLINE_MESSAGES; i++) {
        jx_adapter_message *message = NULL;
        jx_error err;
        int rc = jx_adapter_receive(probation, WAIT_MS, &message, &err);
        GWT_CHECKF(rc == 1, "probation received %d of %d messages, then nothing for %d ms", i,
                   OFFLINE_MESSAGES, WAIT_MS);
        GWT_CHECKF(strcmp(message->opened->header->message_id, ids[i]) == 0,
                   "arrival %d is %s (case %s); acceptance order says %s", i,
                   message->opened->header->message_id, message->opened->header->case_id, ids[i]);
        GWT_CHECK(message->sequence > previous_sequence);
        previous_sequence = message->sequence;
        GWT_CHECK(jx_adapter_consume(probation, PROSECUTOR, ids[i], &err) == 1);
        jx_adapter_message_destroy(&message);
    }
    for (int i = 0; i < OFFLINE_MESSAGES; i++)
        wait_receipt(prosecutor, ids[i], "DELIVERED", PROBATION);
    jx_adapter_message *extra = NULL;
    jx_error err;
    GWT_CHECK(jx_adapter_receive(probation, 2000, &extra, &err) == 0);
    GWT_CHECK(gwt_adapter_inbox_count(probation) == OFFLINE_MESSAGES);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, NULL, PROBATION) == OFFLINE_MESSAGES);

    jx_adapter_destroy(&prosecutor);
    jx_adapter_destroy(&probation);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- expiry ----------------------------------------------------------------------------- */

static void test_expiry(void)
{
    gwt_env *env = gwt_env_new("expiry", NULL);
    gwt_gateway_start(env);
    jx_adapter *court = gwt_adapter_new(env, COURT, NULL, NULL);

    char id[JX_MESSAGE_ID_MAX];
    int64_t expires_at = jx_now_ms() + 2000;
    send_document(court, ORDER, "UD-77/26", expires_at, id);
    wait_receipt(court, id, "ACCEPTED", NULL);
    wait_receipt(court, id, "EXPIRED", PROBATION);
    wait_receipt(court, id, "EXPIRED", PRISON);
    const char *recipients[] = {PROBATION, PRISON};
    for (int i = 0; i < 2; i++) {
        jx_checked_receipt checked;
        checked_receipt(env, court, id, "EXPIRED", recipients[i], &checked);
        GWT_CHECK(strcmp(checked.receipt->recipient, recipients[i]) == 0);
        GWT_CHECKF(strcmp(checked.receipt->reason_code, "MESSAGE_EXPIRED") == 0,
                   "EXPIRED receipt has reason code \"%s\"", checked.receipt->reason_code);
        GWT_CHECKF(checked.receipt->issued_at_ms >= expires_at,
                   "EXPIRED issued %lld ms before the message expired",
                   (long long)(expires_at - checked.receipt->issued_at_ms));
        jx_checked_receipt_release(&checked);
    }

    /* The recipients come online afterwards: nothing is delivered. */
    jx_adapter *probation = gwt_adapter_new(env, PROBATION, NULL, NULL);
    GWT_CHECK(gwt_adapter_wait_connected(probation, WAIT_MS));
    jx_adapter_message *message = NULL;
    jx_error err;
    GWT_CHECK(jx_adapter_receive(probation, 3000, &message, &err) == 0);
    GWT_CHECK(gwt_adapter_inbox_count(probation) == 0);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_EXPIRED, id, NULL) == 2);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, id, NULL) == 0);

    jx_adapter_destroy(&court);
    jx_adapter_destroy(&probation);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* A recipient that is connected but never acknowledges: the message is
 * offered again with backoff until it expires, then EXPIRED goes to the
 * sender and the offers stop. */
static void test_expiry_unacknowledged(void)
{
    gwt_config_options options = {.retry_initial_ms = 200, .retry_max_ms = 400};
    gwt_env *env = gwt_env_new("expiryunacked", &options);
    gwt_gateway_start(env);
    jx_adapter *court = gwt_adapter_new(env, COURT, NULL, NULL);
    gwt_link *probation = gwt_link_new(env, PROBATION, NULL);
    gwt_link_send(probation, "HELLO", NULL, 0);
    gwt_sleep_ms(200);

    char id[JX_MESSAGE_ID_MAX];
    int64_t expires_at = jx_now_ms() + 2000;
    send_document(court, ORDER, "UD-78/26", expires_at, id);
    int offers = 0, late_offers = 0;
    int64_t until = gwt_monotonic_ms() + 7000;
    while (gwt_monotonic_ms() < until) {
        gwt_frame frame;
        if (!gwt_link_next(probation, 100, &frame))
            continue;
        if (strcmp(frame.command, "DELIVER") == 0) {
            offers++;
            /* the expiry scan runs every second; more slack for a busy machine */
            late_offers += jx_now_ms() > expires_at + 3000;
        }
        gwt_frame_release(&frame);
        if (offers == 1)
            gwt_link_send(probation, "HELLO", NULL, 0);
    }
    printf("  offered %d times, %d of them more than 3 s after the expiry\n", offers,
           late_offers);
    GWT_CHECKF(offers >= 2, "an unacknowledged message was offered only %d times in 2 s", offers);
    GWT_CHECKF(late_offers == 0, "an expired message was offered %d more times", late_offers);
    wait_receipt(court, id, "EXPIRED", PROBATION);
    wait_receipt(court, id, "EXPIRED", PRISON);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, id, NULL) == 0);
    gwt_link_destroy(&probation);
    jx_adapter_destroy(&court);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- duplicates on the raw link ----------------------------------------------------------- */

static void seal(gwt_env *env, const char *agency, const char *type, uint8_t **envelope,
                 size_t *len, char id[JX_MESSAGE_ID_MAX], uint8_t header_sha256[32])
{
    uint8_t *payload;
    size_t payload_len;
    gwt_payload(type, "UD-DUP/26", 1024, &payload, &payload_len);
    jx_signer *signer = gwt_signer(env, agency);
    jx_seal_params params = {.type = type, .case_id = "UD-DUP/26"};
    jx_error err;
    GWT_CHECK(jx_envelope_seal(signer, &params, payload, payload_len, envelope, len, id, &err) ==
              0);
    Justx__V1__Envelope *unpacked = justx__v1__envelope__unpack(NULL, *len, *envelope);
    SHA256(unpacked->header.data, unpacked->header.len, header_sha256);
    justx__v1__envelope__free_unpacked(unpacked, NULL);
    jx_signer_destroy(&signer);
    free(payload);
}

/* The next ACCEPTED/REJECTED receipt for id (DELIVERED and others for other
 * messages are skipped). */
static uint64_t expect_accepted(gwt_link *link, const char *id)
{
    int64_t deadline = gwt_monotonic_ms() + WAIT_MS;
    while (gwt_monotonic_ms() < deadline) {
        jx_checked_receipt checked;
        if (!gwt_link_receipt(link, (int)(deadline - gwt_monotonic_ms()), &checked, NULL))
            break;
        Justx__V1__Receipt *receipt = checked.receipt;
        if (receipt->status == JUSTX__V1__RECEIPT__STATUS__DELIVERED ||
            strcmp(receipt->message_id, id) != 0) {
            jx_checked_receipt_release(&checked);
            continue;
        }
        GWT_CHECKF(receipt->status == JUSTX__V1__RECEIPT__STATUS__ACCEPTED,
                   "%s answered %s (%s: %s)", id, jx_receipt_status_name(receipt->status),
                   receipt->reason_code, receipt->reason);
        uint64_t index = receipt->journal_index;
        jx_checked_receipt_release(&checked);
        return index;
    }
    gwt_fail(__FILE__, __LINE__, "no ACCEPTED receipt for %s within %d ms", id, WAIT_MS);
}

/* Reads the recipients' links for ms, acknowledging every DELIVER at once
 * (as an adapter does, so that nothing is redelivered for want of an ack);
 * counts[i] receives how many DELIVERs on links[i] carried the header digest. */
static void count_deliveries(gwt_link *const *links, int *counts, size_t n,
                             const uint8_t header_sha256[32], int ms)
{
    for (size_t i = 0; i < n; i++)
        counts[i] = 0;
    int64_t deadline = gwt_monotonic_ms() + ms;
    while (gwt_monotonic_ms() < deadline) {
        for (size_t i = 0; i < n; i++) {
            gwt_frame frame;
            while (gwt_link_next(links[i], 10, &frame)) {
                if (strcmp(frame.command, "DELIVER") == 0) {
                    Justx__V1__Envelope *envelope =
                        justx__v1__envelope__unpack(NULL, frame.body_len, frame.body);
                    GWT_CHECK(envelope != NULL);
                    uint8_t digest[32];
                    SHA256(envelope->header.data, envelope->header.len, digest);
                    justx__v1__envelope__free_unpacked(envelope, NULL);
                    counts[i] += memcmp(digest, header_sha256, 32) == 0;
                    gwt_link_ack(links[i], (const uint8_t(*)[32])digest, 1);
                }
                gwt_frame_release(&frame);
            }
        }
    }
}

static void test_duplicate(void)
{
    gwt_env *env = gwt_env_new("duplicate", NULL);
    gwt_gateway_start(env);
    gwt_link *court = gwt_link_new(env, COURT, NULL);
    gwt_link *probation = gwt_link_new(env, PROBATION, NULL);
    gwt_link_send(court, "HELLO", NULL, 0);
    gwt_link_send(probation, "HELLO", NULL, 0);

    /* A: the recipient is online and acknowledges at once. */
    uint8_t *first = NULL, first_digest[32];
    size_t first_len;
    char first_id[JX_MESSAGE_ID_MAX];
    seal(env, COURT, ORDER, &first, &first_len, first_id, first_digest);
    gwt_link_send(court, "SEND", first, first_len);
    uint64_t index = expect_accepted(court, first_id);
    int counts[2];
    count_deliveries(&probation, counts, 1, first_digest, 1500);
    GWT_CHECK(counts[0] == 1);
    gwt_link_send(court, "SEND", first, first_len);
    GWT_CHECKF(expect_accepted(court, first_id) == index,
               "the duplicate's receipt names another journal record than the original's");
    count_deliveries(&probation, counts, 1, first_digest, 2500);
    GWT_CHECKF(counts[0] == 0, "the duplicate was delivered %d more times", counts[0]);

    /* B: the recipient (prison) is offline while the envelope comes twice. */
    uint8_t *second = NULL, second_digest[32];
    size_t second_len;
    char second_id[JX_MESSAGE_ID_MAX];
    seal(env, COURT, ORDER, &second, &second_len, second_id, second_digest);
    gwt_link_send(court, "SEND", second, second_len);
    gwt_link_send(court, "SEND", second, second_len);
    uint64_t second_index = expect_accepted(court, second_id);
    GWT_CHECK(expect_accepted(court, second_id) == second_index);
    gwt_link *prison = gwt_link_new(env, PRISON, NULL);
    gwt_link_send(prison, "HELLO", NULL, 0);
    gwt_link *recipients[] = {probation, prison};
    count_deliveries(recipients, counts, 2, second_digest, 3000);
    GWT_CHECKF(counts[0] == 1 && counts[1] == 1,
               "an envelope sent twice was delivered %d times to probation, %d to prison",
               counts[0], counts[1]);
    /* the first order went to prison too, once */
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, first_id, PRISON) == 1);

    /* C: after a crash and restart the duplicate is still recognised. */
    gwt_gateway_kill(env);
    gwt_gateway_start(env);
    gwt_sleep_ms(300);
    gwt_link_send(court, "SEND", first, first_len);
    GWT_CHECK(expect_accepted(court, first_id) == index);
    gwt_link_send(prison, "HELLO", NULL, 0);
    gwt_link_send(probation, "HELLO", NULL, 0);
    count_deliveries(recipients, counts, 2, first_digest, 2500);
    GWT_CHECKF(counts[0] == 0 && counts[1] == 0,
               "after a restart the duplicate was delivered again (%d, %d)", counts[0], counts[1]);

    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACCEPTED, first_id, NULL) == 1);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACCEPTED, second_id, NULL) == 1);
    free(first);
    free(second);
    gwt_link_destroy(&court);
    gwt_link_destroy(&probation);
    gwt_link_destroy(&prison);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- acknowledgements that are not the recipient's ----------------------------------------- */

/* Only the recipient's own signed Ack, on its own connection, finishes a
 * delivery: the prison acknowledging probation's referral, or the prison's
 * link carrying an Ack probation signed, changes nothing, and the referral
 * still reaches probation. */
static void test_forged_acks(void)
{
    gwt_env *env = gwt_env_new("forgedacks", NULL);
    gwt_gateway_start(env);
    jx_adapter *prosecutor = gwt_adapter_new(env, PROSECUTOR, NULL, NULL);
    char id[JX_MESSAGE_ID_MAX];
    send_document(prosecutor, REFERRAL, "REF-FORGED/26", 0, id);
    wait_receipt(prosecutor, id, "ACCEPTED", NULL);
    jx_checked_receipt accepted;
    checked_receipt(env, prosecutor, id, "ACCEPTED", NULL, &accepted);
    uint8_t digest[32];
    SHA256(accepted.record->header.data, accepted.record->header.len, digest);
    jx_checked_receipt_release(&accepted);

    /* The prison acknowledges a message that is not its own. */
    gwt_link *prison = gwt_link_new(env, PRISON, NULL);
    gwt_link_send(prison, "HELLO", NULL, 0);
    size_t mark = gwt_gateway_log_mark(env);
    gwt_link_ack(prison, (const uint8_t(*)[32])digest, 1);

    /* The prison's link carries an Ack signed by probation. */
    jx_signer *probation_key = gwt_signer(env, PROBATION);
    ProtobufCBinaryData item = {32, digest};
    Justx__V1__Ack ack = JUSTX__V1__ACK__INIT;
    ack.n_header_sha256 = 1;
    ack.header_sha256 = &item;
    ack.received_at_ms = jx_now_ms();
    uint8_t payload[128];
    size_t payload_len = justx__v1__ack__pack(&ack, payload);
    jx_seal_params params = {.type = "justx.v1.Ack"};
    uint8_t *envelope;
    size_t envelope_len;
    char ack_id[JX_MESSAGE_ID_MAX];
    jx_error err;
    GWT_CHECK(jx_envelope_seal(probation_key, &params, payload, payload_len, &envelope,
                               &envelope_len, ack_id, &err) == 0);
    gwt_link_send(prison, "ACK", envelope, envelope_len);
    free(envelope);
    jx_signer_destroy(&probation_key);
    const char *const bad_ack[] = {"event=bad_ack", "agency=KG-PRISON", "SENDER_MISMATCH", NULL};
    GWT_CHECKF(gwt_gateway_log_wait(env, mark, 1, WAIT_MS, bad_ack),
               "the gateway did not log the Ack signed by another agency as bad");

    gwt_sleep_ms(1000);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, NULL, NULL) == 0);
    char *code = gwt_adapter_receipt_code(prosecutor, id, "DELIVERED", NULL);
    GWT_CHECKF(code == NULL, "a forged Ack produced a DELIVERED receipt");

    jx_adapter *probation = gwt_adapter_new(env, PROBATION, NULL, NULL);
    receive_one(probation, PROSECUTOR, id, NULL);
    wait_receipt(prosecutor, id, "DELIVERED", PROBATION);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, id, PROBATION) == 1);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, NULL, NULL) == 1);

    gwt_link_destroy(&prison);
    jx_adapter_destroy(&prosecutor);
    jx_adapter_destroy(&probation);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- two adapters of one agency ------------------------------------------------------------ */

/* Deliveries go to the adapter that said HELLO most recently; when it goes
 * away, what it had not acknowledged is offered to the other one. */
static void test_two_adapters(void)
{
    gwt_env *env = gwt_env_new("twoadapters", NULL);
    gwt_gateway_start(env);
    jx_adapter *prosecutor = gwt_adapter_new(env, PROSECUTOR, NULL, NULL);
    gwt_link *first = gwt_link_new(env, PROBATION, "probation-1");
    gwt_link *second = gwt_link_new(env, PROBATION, "probation-2");
    gwt_link_send(first, "HELLO", NULL, 0);
    gwt_sleep_ms(100);
    gwt_link_send(second, "HELLO", NULL, 0);
    gwt_sleep_ms(200);

    char id[JX_MESSAGE_ID_MAX];
    send_document(prosecutor, REFERRAL, "REF-TWO/26", 0, id);
    wait_receipt(prosecutor, id, "ACCEPTED", NULL);
    /* the second said HELLO last: it gets the message; it does not ack */
    gwt_frame frame;
    int64_t deadline = gwt_monotonic_ms() + WAIT_MS;
    bool delivered = false;
    while (!delivered && gwt_monotonic_ms() < deadline && gwt_link_next(second, 1000, &frame)) {
        delivered = strcmp(frame.command, "DELIVER") == 0;
        gwt_frame_release(&frame);
    }
    GWT_CHECKF(delivered, "the adapter that said HELLO last got no DELIVER");
    while (gwt_link_next(first, 300, &frame)) {
        GWT_CHECKF(strcmp(frame.command, "DELIVER") != 0,
                   "the adapter that said HELLO first got a DELIVER too");
        gwt_frame_release(&frame);
    }

    /* The second goes away; the first must get the message and ack it. */
    gwt_link_destroy(&second);
    uint8_t digest[32];
    delivered = false;
    deadline = gwt_monotonic_ms() + WAIT_MS;
    /* No HELLO from the first meanwhile: the gateway must notice by itself
     * that the second is gone (its next send to it fails). */
    while (!delivered && gwt_monotonic_ms() < deadline) {
        if (!gwt_link_next(first, 1000, &frame))
            continue;
        if (strcmp(frame.command, "DELIVER") == 0) {
            Justx__V1__Envelope *envelope =
                justx__v1__envelope__unpack(NULL, frame.body_len, frame.body);
            SHA256(envelope->header.data, envelope->header.len, digest);
            justx__v1__envelope__free_unpacked(envelope, NULL);
            delivered = true;
        }
        gwt_frame_release(&frame);
    }
    GWT_CHECKF(delivered, "after the receiving adapter left, the other got nothing");
    gwt_link_ack(first, (const uint8_t(*)[32])digest, 1);
    wait_receipt(prosecutor, id, "DELIVERED", PROBATION);

    gwt_link_destroy(&first);
    jx_adapter_destroy(&prosecutor);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* ---- receipts owed to an agency that was away ------------------------------------------ */

enum { BACKLOG = 1200, BACKLOG_MS = 8000 };

/* The prosecutor sends BACKLOG referrals and goes offline; probation takes
 * them all; the gateway now owes the prosecutor BACKLOG DELIVERED receipts.
 * When the prosecutor's adapter comes back, they should all arrive about as
 * fast as the link carries them — not a few hundred per heartbeat. */
static void test_receipt_backlog(void)
{
    gwt_env *env = gwt_env_new("backlog", NULL);
    gwt_gateway_start(env);
    jx_adapter *prosecutor = gwt_adapter_new(env, PROSECUTOR, NULL, NULL);
    static char ids[BACKLOG][JX_MESSAGE_ID_MAX];
    for (int i = 0; i < BACKLOG; i++)
        send_document(prosecutor, REFERRAL, "REF-BACKLOG/26", 0, ids[i]);
    for (int i = 0; i < BACKLOG; i++)
        wait_receipt(prosecutor, ids[i], "ACCEPTED", NULL);
    jx_adapter_destroy(&prosecutor);

    jx_adapter *probation = gwt_adapter_new(env, PROBATION, NULL, NULL);
    int64_t deadline = gwt_monotonic_ms() + 60000;
    while (gwt_journal_count(env, JX_EVENT_ACKNOWLEDGED, NULL, PROBATION) < BACKLOG) {
        GWT_CHECKF(gwt_monotonic_ms() < deadline, "probation did not take the %d referrals",
                   BACKLOG);
        gwt_sleep_ms(200);
    }

    int64_t back = gwt_monotonic_ms();
    prosecutor = gwt_adapter_new(env, PROSECUTOR, NULL, NULL);
    int delivered = 0;
    for (int i = 0; i < BACKLOG; i++) {
        jx_error err;
        int64_t left = back + 60000 - gwt_monotonic_ms();
        if (jx_adapter_wait_receipt(prosecutor, ids[i], "DELIVERED", PROBATION,
                                    left > 0 ? (int)left : 0, &err) != 1)
            break;
        delivered++;
    }
    int64_t took = gwt_monotonic_ms() - back;
    printf("  %d of %d DELIVERED receipts owed to the prosecutor arrived %lld ms after it came "
           "back\n",
           delivered, BACKLOG, (long long)took);
    GWT_CHECK(delivered == BACKLOG);
    GWT_CHECKF(took < BACKLOG_MS,
               "%d queued receipts took %lld ms to reach the adapter (bound %d ms): the gateway "
               "sends 256 per pump and pumps them again only at the next HELLO",
               BACKLOG, (long long)took, BACKLOG_MS);
    jx_adapter_destroy(&prosecutor);
    jx_adapter_destroy(&probation);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

int main(int argc, char **argv)
{
    static const gwt_test tests[] = {
        {"fan_out", test_fan_out, NULL},
        {"offline", test_offline, NULL},
        {"expiry", test_expiry, NULL},
        {"expiry_unacknowledged", test_expiry_unacknowledged, NULL},
        {"duplicate", test_duplicate, NULL},
        {"forged_acks", test_forged_acks, NULL},
        {"two_adapters", test_two_adapters, NULL},
        {"receipt_backlog", test_receipt_backlog,
         "broker.c pump() sends at most 256 queued receipts and nothing pumps again until the "
         "next HELLO (5 s), so a backlog drains at about 50 receipts a second"},
    };
    return gwt_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
