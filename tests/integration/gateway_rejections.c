/* gateway_rejections.c — every ingress rejection reaches the sender as a
 * signed, verifiable REJECTED receipt.
 *
 * A raw link with the court's certificate submits, one by one, envelopes
 * that fail each check of DESIGN.md's ingress list (and the ways a route
 * refuses), and one that passes. For each SEND the test reads the RECEIPT,
 * checks it with the gateway's public key alone (checkpoint signature,
 * inclusion proof, record matches receipt), and checks the status, the
 * stable reason code, the sentence, the message id the sender can match it
 * by (when the header could be read at all) and the journal record behind
 * it. Nothing may be dropped silently and nothing refused may be delivered.
 */
#include "gwtest.h"

#include "journal.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WAIT_MS = 20000, MAX_MESSAGE = 32768 };

static const char COURT[] = "KG-COURT-BISHKEK";
static const char ORDER[] = "justx.v1.SentenceOrder";

/* A header built field by field, for envelopes jx_envelope_seal refuses to make. */
typedef struct {
    const char *message_id; /* NULL: a new one */
    const char *sender;
    const char *type;
    const char *const *recipients;
    size_t n_recipients;
    int64_t created_at_ms; /* 0: now */
    int64_t expires_at_ms;
    const uint8_t *payload;
    size_t payload_len;
} forged_header;

static uint8_t *forge(jx_signer *signer, const forged_header *h, size_t *len, char *id_out)
{
    char id[JX_MESSAGE_ID_MAX];
    jx_error err;
    if (h->message_id)
        snprintf(id, sizeof id, "%s", h->message_id);
    else
        GWT_CHECK(jx_message_id_new(jx_now_ms(), id, &err) == 0);
    if (id_out)
        snprintf(id_out, JX_MESSAGE_ID_MAX, "%s", id);
    uint8_t digest[32];
    SHA256(h->payload, h->payload_len, digest);
    Justx__V1__Header header = JUSTX__V1__HEADER__INIT;
    header.message_id = id;
    header.sender = (char *)h->sender;
    header.recipients = (char **)h->recipients;
    header.n_recipients = h->n_recipients;
    header.type = (char *)h->type;
    header.case_id = "UD-REJ/26";
    header.created_at_ms = h->created_at_ms ? h->created_at_ms : jx_now_ms();
    header.expires_at_ms = h->expires_at_ms;
    header.payload_sha256.data = digest;
    header.payload_sha256.len = 32;
    size_t header_len = justx__v1__header__get_packed_size(&header);
    uint8_t *header_bytes = malloc(header_len);
    justx__v1__header__pack(&header, header_bytes);
    uint8_t *envelope = NULL;
    GWT_CHECKF(jx_envelope_build(signer, header_bytes, header_len, h->payload, h->payload_len,
                                 &envelope, len, &err) == 0,
               "jx_envelope_build: %s", err.message);
    free(header_bytes);
    return envelope;
}

static uint8_t *seal(jx_signer *signer, const jx_seal_params *params, size_t payload_size,
                     size_t *len, char id[JX_MESSAGE_ID_MAX])
{
    uint8_t *payload;
    size_t payload_len;
    gwt_payload(params->type, "UD-REJ/26", payload_size, &payload, &payload_len);
    uint8_t *envelope = NULL;
    jx_error err;
    GWT_CHECKF(jx_envelope_seal(signer, params, payload, payload_len, &envelope, len, id, &err) ==
                   0,
               "seal: %s", err.message);
    free(payload);
    return envelope;
}

/* Re-packs an envelope after change() altered it. */
static uint8_t *tamper(uint8_t *bytes, size_t *len, void (*change)(Justx__V1__Envelope *))
{
    Justx__V1__Envelope *envelope = justx__v1__envelope__unpack(NULL, *len, bytes);
    GWT_CHECK(envelope != NULL);
    change(envelope);
    size_t out_len = justx__v1__envelope__get_packed_size(envelope);
    uint8_t *out = malloc(out_len);
    justx__v1__envelope__pack(envelope, out);
    justx__v1__envelope__free_unpacked(envelope, NULL);
    free(bytes);
    *len = out_len;
    return out;
}

static void flip_signature(Justx__V1__Envelope *e)
{
    e->signature.data[e->signature.len - 1] ^= 0x01;
}

static void flip_payload(Justx__V1__Envelope *e)
{
    e->payload.data[e->payload.len / 2] ^= 0x20;
}

/* Sends bytes on link and checks the answer: a REJECTED receipt that
 * verifies, with code, a sentence, the claimed message id (or none; NULL:
 * not checked), a
 * REJECTED journal record from the link's agency. Returns the index. */
static uint64_t expect_rejected(gwt_link *link, const char *agency, const char *what,
                                const uint8_t *bytes, size_t len, const char *code,
                                const char *message_id)
{
    gwt_link_send(link, "SEND", bytes, len);
    jx_checked_receipt checked;
    GWT_CHECKF(gwt_link_receipt(link, WAIT_MS, &checked, NULL) == 1,
               "%s: no receipt within %d ms: dropped silently", what, WAIT_MS);
    const Justx__V1__Receipt *receipt = checked.receipt;
    GWT_CHECKF(receipt->status == JUSTX__V1__RECEIPT__STATUS__REJECTED,
               "%s: receipt says %s, expected REJECTED %s", what,
               jx_receipt_status_name(receipt->status), code);
    GWT_CHECKF(strcmp(receipt->reason_code, code) == 0,
               "%s: reason code %s (\"%s\"), expected %s", what, receipt->reason_code,
               receipt->reason, code);
    GWT_CHECKF(strlen(receipt->reason) > 10, "%s: the reason \"%s\" says nothing", what,
               receipt->reason);
    GWT_CHECKF(message_id == NULL || strcmp(receipt->message_id, message_id) == 0,
               "%s: receipt names message \"%s\", the sender needs \"%s\"", what,
               receipt->message_id, message_id);
    GWT_CHECKF(strcmp(receipt->sender, agency) == 0, "%s: receipt names sender %s", what,
               receipt->sender);
    const Justx__V1__JournalRecord *record = checked.record;
    GWT_CHECK(record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__REJECTED);
    GWT_CHECK(strcmp(record->reason, receipt->reason) == 0);
    GWT_CHECK(record->n_recipients == 0);
    uint64_t index = receipt->journal_index;
    printf("  %-44s %-26s index=%llu \"%s\"\n", what, code, (unsigned long long)index,
           receipt->reason);
    jx_checked_receipt_release(&checked);
    return index;
}

static uint64_t expect_accepted(gwt_link *link, const char *what, const uint8_t *bytes,
                                size_t len, const char *message_id)
{
    gwt_link_send(link, "SEND", bytes, len);
    jx_checked_receipt checked;
    GWT_CHECKF(gwt_link_receipt(link, WAIT_MS, &checked, NULL) == 1, "%s: no receipt", what);
    GWT_CHECKF(checked.receipt->status == JUSTX__V1__RECEIPT__STATUS__ACCEPTED,
               "%s: %s %s (%s)", what, jx_receipt_status_name(checked.receipt->status),
               checked.receipt->reason_code, checked.receipt->reason);
    GWT_CHECK(strcmp(checked.receipt->message_id, message_id) == 0);
    uint64_t index = checked.receipt->journal_index;
    jx_checked_receipt_release(&checked);
    return index;
}

static void test_every_reason(void)
{
    gwt_config_options options = {.max_message_bytes = MAX_MESSAGE};
    gwt_env *env = gwt_env_new("rejections", &options);
    gwt_gateway_start(env);
    gwt_link *link = gwt_link_new(env, COURT, NULL);
    jx_signer *court = gwt_signer(env, COURT);
    char id[JX_MESSAGE_ID_MAX];
    size_t len;
    uint8_t *bytes;
    int rejected = 0;
    uint8_t *order_payload;
    size_t order_payload_len;
    gwt_payload(ORDER, "UD-REJ/26", 1024, &order_payload, &order_payload_len);

    /* size */
    jx_seal_params big = {.type = ORDER};
    bytes = seal(court, &big, MAX_MESSAGE + 8000, &len, id);
    GWT_CHECK(len > MAX_MESSAGE);
    /* Today the gateway does not read the header of an oversized envelope,
     * so the receipt names no message; oversized_via_adapter shows what that
     * does to an adapter. The id is not checked here. */
    expect_rejected(link, COURT, "oversized envelope", bytes, len, "TOO_LARGE", NULL);
    free(bytes), rejected++;

    /* envelope and header decode */
    uint8_t garbage[300];
    srand(5);
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)rand();
    garbage[0] = 0x0f; /* field 1 with wire type 7, which does not exist: never decodes */
    expect_rejected(link, COURT, "random bytes", garbage, sizeof garbage,
                    "MALFORMED_ENVELOPE", "");
    rejected++;
    expect_rejected(link, COURT, "empty SEND body", (const uint8_t *)"", 0,
                    "MALFORMED_ENVELOPE", "");
    rejected++;
    uint8_t *not_header = NULL;
    GWT_CHECK(jx_envelope_build(court, garbage, 40, order_payload, order_payload_len,
                                &not_header, &len, NULL) == 0);
    expect_rejected(link, COURT, "header bytes that are no header", not_header, len,
                    "MALFORMED_HEADER", "");
    free(not_header), rejected++;
    forged_header bad_id = {.message_id = "not-a-uuid",
                            .sender = COURT,
                            .type = ORDER,
                            .payload = order_payload,
                            .payload_len = order_payload_len};
    bytes = forge(court, &bad_id, &len, NULL);
    expect_rejected(link, COURT, "message id not a UUID", bytes, len, "MALFORMED_HEADER",
                    "");
    free(bytes), rejected++;

    /* signer certificate */
    static const struct {
        const char *signer, *code;
    } certificates[] = {
        {"FOREIGN-AGENCY", "UNTRUSTED_CERTIFICATE"},
        {"TEST-REVOKED", "CERTIFICATE_REVOKED"},
        {"TEST-EXPIRED", "CERTIFICATE_EXPIRED"},
        {"TEST-NOSAN", "NO_AGENCY_IDENTITY"},
    };
    for (size_t i = 0; i < sizeof certificates / sizeof certificates[0]; i++) {
        jx_signer *other = gwt_signer(env, certificates[i].signer);
        forged_header h = {.sender = strcmp(certificates[i].signer, "TEST-NOSAN") == 0
                                         ? COURT
                                         : certificates[i].signer,
                           .type = ORDER,
                           .payload = order_payload,
                           .payload_len = order_payload_len};
        bytes = forge(other, &h, &len, id);
        char what[96];
        snprintf(what, sizeof what, "signed with %s's certificate", certificates[i].signer);
        expect_rejected(link, COURT, what, bytes, len, certificates[i].code, id);
        free(bytes), rejected++;
        jx_signer_destroy(&other);
    }

    /* identity: header sender, certificate, TLS connection */
    forged_header as_prosecutor = {.sender = "KG-PROSECUTOR",
                                   .type = ORDER,
                                   .payload = order_payload,
                                   .payload_len = order_payload_len};
    bytes = forge(court, &as_prosecutor, &len, id);
    expect_rejected(link, COURT, "header sender is another agency", bytes, len,
                    "SENDER_MISMATCH", id);
    free(bytes), rejected++;
    jx_signer *prosecutor = gwt_signer(env, "KG-PROSECUTOR");
    jx_seal_params referral = {.type = "justx.v1.ProbationReferral"};
    bytes = seal(prosecutor, &referral, 1024, &len, id);
    expect_rejected(link, COURT, "another agency's message on this link", bytes, len,
                    "SENDER_MISMATCH", id);
    free(bytes), rejected++;
    jx_signer_destroy(&prosecutor);

    /* signature and payload digest */
    jx_seal_params order = {.type = ORDER};
    bytes = seal(court, &order, 1024, &len, id);
    bytes = tamper(bytes, &len, flip_signature);
    expect_rejected(link, COURT, "signature with a flipped bit", bytes, len, "BAD_SIGNATURE",
                    id);
    free(bytes), rejected++;
    bytes = seal(court, &order, 1024, &len, id);
    bytes = tamper(bytes, &len, flip_payload);
    expect_rejected(link, COURT, "payload changed after signing", bytes, len,
                    "PAYLOAD_DIGEST_MISMATCH", id);
    free(bytes), rejected++;

    /* type */
    forged_header unknown = {.sender = COURT,
                             .type = "justx.v1.Sentence",
                             .payload = order_payload,
                             .payload_len = order_payload_len};
    bytes = forge(court, &unknown, &len, id);
    expect_rejected(link, COURT, "unknown type", bytes, len, "UNKNOWN_TYPE", id);
    free(bytes), rejected++;
    static const uint8_t not_an_order[] = {0x0a, 0x05, 0x01, 0x02}; /* truncated field 1 */
    forged_header mistyped = {.sender = COURT,
                              .type = ORDER,
                              .payload = not_an_order,
                              .payload_len = sizeof not_an_order};
    bytes = forge(court, &mistyped, &len, id);
    expect_rejected(link, COURT, "payload is not the declared type", bytes, len,
                    "PAYLOAD_NOT_DECLARED_TYPE", id);
    free(bytes), rejected++;

    /* time */
    jx_seal_params old = {.type = ORDER, .created_at_ms = jx_now_ms() - 3600 * 1000};
    bytes = seal(court, &old, 1024, &len, id);
    expect_rejected(link, COURT, "created an hour ago (clock skew)", bytes, len,
                    "CLOCK_SKEW", id);
    free(bytes), rejected++;
    jx_seal_params future = {.type = ORDER, .created_at_ms = jx_now_ms() + 3600 * 1000};
    bytes = seal(court, &future, 1024, &len, id);
    expect_rejected(link, COURT, "created an hour ahead (clock skew)", bytes, len,
                    "CLOCK_SKEW", id);
    free(bytes), rejected++;
    jx_seal_params expired = {.type = ORDER, .expires_at_ms = jx_now_ms() - 1000};
    bytes = seal(court, &expired, 1024, &len, id);
    expect_rejected(link, COURT, "expired a second ago", bytes, len, "MESSAGE_EXPIRED", id);
    free(bytes), rejected++;

    /* duplicate id with other content */
    jx_seal_params original = {.type = ORDER, .case_id = "UD-ORIGINAL/26"};
    bytes = seal(court, &original, 1024, &len, id);
    char original_id[JX_MESSAGE_ID_MAX];
    snprintf(original_id, sizeof original_id, "%s", id);
    expect_accepted(link, "the original", bytes, len, original_id);
    free(bytes);
    jx_seal_params reused = {.type = ORDER, .case_id = "UD-OTHER/26", .message_id = original_id};
    bytes = seal(court, &reused, 1024, &len, id);
    expect_rejected(link, COURT, "message id reused for other content", bytes, len,
                    "DUPLICATE", original_id);
    free(bytes), rejected++;

    /* permissions and routes */
    static const char *const prosecutor_only[] = {"KG-PROSECUTOR"};
    static const char *const probation_only[] = {"KG-PROBATION"};
    static const char *const nobody[] = {"XX-NOBODY"};
    static const char *const court_itself[] = {"KG-COURT-BISHKEK"};
    static const struct {
        const char *what, *type;
        const char *const *to;
        size_t n_to;
        const char *code;
    } routing[] = {
        {"sender may not send this type", "justx.v1.ProbationReferral", NULL, 0, "NOT_PERMITTED"},
        {"no route for this type from the sender", "justx.v1.StatusUpdate", NULL, 0,
         "NOT_PERMITTED"},
        {"no route to the recipient named", "justx.v1.StatusUpdate", probation_only, 1,
         "NOT_PERMITTED"},
        {"recipient may not receive this type", ORDER, prosecutor_only, 1, "NOT_PERMITTED"},
        {"recipient is not an agency", ORDER, nobody, 1, "UNKNOWN_RECIPIENT"},
        {"addressed to the sender itself", ORDER, court_itself, 1, "NOT_PERMITTED"},
        {"a protocol message (Ack) as a document", "justx.v1.Ack", NULL, 0, "NOT_PERMITTED"},
    };
    for (size_t i = 0; i < sizeof routing / sizeof routing[0]; i++) {
        uint8_t ack_payload[2] = {0};
        jx_seal_params params = {.type = routing[i].type,
                                 .recipients = routing[i].to,
                                 .recipient_count = routing[i].n_to};
        if (strcmp(routing[i].type, "justx.v1.Ack") == 0) {
            jx_error err;
            GWT_CHECK(jx_envelope_seal(court, &params, ack_payload, 0, &bytes, &len, id, &err) ==
                      0);
        } else {
            bytes = seal(court, &params, 1024, &len, id);
        }
        expect_rejected(link, COURT, routing[i].what, bytes, len, routing[i].code, id);
        free(bytes), rejected++;
    }

    /* Every rejection is in the journal, nothing refused was accepted, and
     * nobody was sent anything but the original order. */
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_REJECTED, NULL, NULL) == rejected);
    GWT_CHECK(gwt_journal_count(env, JX_EVENT_ACCEPTED, NULL, NULL) == 1);
    const char *const warning[] = {"event=rejected", "sender=KG-COURT-BISHKEK", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, 0, warning) == rejected);

    free(order_payload);
    jx_signer_destroy(&court);
    gwt_link_destroy(&link);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* An agency whose certificate the CA issued but which the configuration does
 * not list: the TLS link comes up, and its messages are refused in words. */
static void test_unregistered_sender(void)
{
    gwt_env *env = gwt_env_new("unregistered", NULL);
    gwt_gateway_start(env);
    gwt_link *link = gwt_link_new(env, "TEST-RSA", NULL);
    jx_signer *signer = gwt_signer(env, "TEST-RSA");
    jx_seal_params params = {.type = "justx.v1.StatusUpdate"};
    size_t len;
    char id[JX_MESSAGE_ID_MAX];
    uint8_t *bytes = seal(signer, &params, 512, &len, id);
    expect_rejected(link, "TEST-RSA", "sender is not an agency of this gateway", bytes, len,
                    "NOT_PERMITTED", id);
    free(bytes);
    const char *const logged[] = {"event=unregistered_agency", "agency=TEST-RSA", NULL};
    GWT_CHECK(gwt_gateway_log_count_since(env, 0, logged) >= 1);
    jx_signer_destroy(&signer);
    gwt_link_destroy(&link);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

/* The same refusals through a real adapter: it must learn REJECTED for the
 * message it sent (so the message leaves its outbox), and the messages
 * queued behind an oversized one must still go through. Two sizes: over
 * the configured limit, and over it by more than the 64 KiB slack the
 * gateway gives its ZeroMQ socket (ZMQ_MAXMSGSIZE). */
static void oversized_via_adapter(size_t size)
{
    gwt_config_options options = {.max_message_bytes = MAX_MESSAGE};
    gwt_env *env = gwt_env_new("oversized", &options);
    gwt_gateway_start(env);
    jx_adapter *court = gwt_adapter_new(env, COURT, NULL, NULL);
    uint8_t *payload;
    size_t payload_len;
    jx_error err;
    char big_id[JX_MESSAGE_ID_MAX], small_id[JX_MESSAGE_ID_MAX];
    jx_seal_params params = {.type = ORDER};
    gwt_payload(ORDER, "UD-BIG/26", size, &payload, &payload_len);
    GWT_CHECK(jx_adapter_send(court, &params, payload, payload_len, big_id, &err) == 0);
    free(payload);
    gwt_payload(ORDER, "UD-SMALL/26", 1024, &payload, &payload_len);
    GWT_CHECK(jx_adapter_send(court, &params, payload, payload_len, small_id, &err) == 0);
    free(payload);
    int accepted = jx_adapter_wait_receipt(court, small_id, "ACCEPTED", NULL, WAIT_MS, &err);
    int refused = jx_adapter_wait_receipt(court, big_id, "REJECTED", NULL, 5000, &err);
    const char *const disconnects[] = {"event=closed", NULL};
    int dropped = gwt_gateway_log_count_since(env, 0, disconnects);
    char *code = gwt_adapter_receipt_code(court, big_id, "REJECTED", NULL);
    printf("  %zu-byte payload: small message %s, big message %s%s%s, %d connections closed\n",
           size, accepted == 1 ? "ACCEPTED" : "not answered",
           refused == 1 ? "REJECTED " : "not answered", code ? code : "",
           refused == 1 ? "" : " (the adapter keeps it in its outbox)", dropped);
    GWT_CHECKF(accepted == 1, "the message behind an oversized one was not accepted");
    GWT_CHECKF(refused == 1 && code && strcmp(code, "TOO_LARGE") == 0,
               "the adapter never learns that its oversized message %s was refused", big_id);
    free(code);
    jx_adapter_destroy(&court);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

static void test_oversized_via_adapter(void)
{
    oversized_via_adapter(MAX_MESSAGE + 8000);
}

static void test_far_oversized_via_adapter(void)
{
    oversized_via_adapter(MAX_MESSAGE + 100000);
}

int main(int argc, char **argv)
{
    static const gwt_test tests[] = {
        {"every_reason", test_every_reason, NULL},
        {"unregistered_sender", test_unregistered_sender, NULL},
        {"oversized_via_adapter", test_oversized_via_adapter,
         "a TOO_LARGE receipt names no message id (ingress.c remember_claims stops at the "
         "size limit), so the adapter cannot match it and resends the message forever"},
        {"far_oversized_via_adapter", test_far_oversized_via_adapter,
         "an envelope over max_message_bytes + 64 KiB hits ZMQ_MAXMSGSIZE: the connection is "
         "closed with no receipt and no journal record, and the adapter reconnects in a loop"},
    };
    return gwt_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
