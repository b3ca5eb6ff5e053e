/* audit_signatures.c — justx-audit verify checks every signature in the
 * journal with the certificates the journal recorded.
 *
 * A journal is written here the way the gateway writes one (CERTIFICATE
 * before the first record relying on it, then ACCEPTED records with the
 * sender's header and signature) and properly checkpointed with the
 * gateway's key, so that its Merkle tree and checkpoints are all in order.
 * One ACCEPTED record carries a header the sender never signed (a gateway
 * lying about what it received), one names a certificate the journal never
 * recorded. `justx-audit verify` must verify the good signature, name the
 * forged record by its index, and count the unverifiable one.
 *
 * usage: audit_signatures JUSTX_AUDIT PKI_DIR WORK_DIR
 */
#include "checkpoint.h"
#include "envelope.h"
#include "journal.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(condition, ...)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void die(const char *what, const jx_error *err)
{
    fprintf(stderr, "audit_signatures: %s: %s\n", what, err->message);
    exit(1);
}

/* A sealed StatusUpdate from agency; fills the envelope's decoded parts. */
static Justx__V1__Envelope *sealed(jx_signer *signer, const char *case_id)
{
    uint8_t payload[] = {0x20, 0x02}; /* status = STATUS_UNDER_SUPERVISION */
    jx_seal_params params = {.type = "justx.v1.StatusUpdate", .case_id = case_id};
    uint8_t *bytes = NULL;
    size_t len = 0;
    char id[JX_MESSAGE_ID_MAX];
    jx_error err;
    if (jx_envelope_seal(signer, &params, payload, sizeof payload, &bytes, &len, id, &err) != 0)
        die("seal", &err);
    Justx__V1__Envelope *envelope = justx__v1__envelope__unpack(NULL, len, bytes);
    free(bytes);
    return envelope;
}

static void append(jx_journal *journal, const jx_journal_entry *entry)
{
    jx_error err;
    if (jx_journal_append(journal, entry, 1, NULL, &err) != 0)
        die("append", &err);
}

static void accepted(jx_journal *journal, const Justx__V1__Envelope *envelope,
                     const uint8_t *header, size_t header_len, const uint8_t cert_sha256[32])
{
    Justx__V1__Header *decoded = justx__v1__header__unpack(NULL, header_len, header);
    jx_journal_entry entry = {
        .event = JX_EVENT_ACCEPTED,
        .message_id = decoded->message_id,
        .sender = decoded->sender,
        .type = decoded->type,
        .case_id = decoded->case_id,
        .header = header,
        .header_len = header_len,
        .signature = envelope->signature.data,
        .signature_len = envelope->signature.len,
        .payload_sha256 = decoded->payload_sha256.data,
        .signer_cert_sha256 = cert_sha256,
    };
    append(journal, &entry);
    justx__v1__header__free_unpacked(decoded, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: audit_signatures JUSTX_AUDIT PKI_DIR WORK_DIR\n");
        return 2;
    }
    const char *audit = argv[1], *pki = argv[2], *work = argv[3];
    char path[2048], cert[1024], key[1024];
    snprintf(path, sizeof path, "rm -rf '%s' && mkdir -p '%s'", work, work);
    if (system(path) != 0)
        return 1;
    snprintf(cert, sizeof cert, "%s/KG-PROBATION.pem", pki);
    snprintf(key, sizeof key, "%s/KG-PROBATION.key", pki);
    jx_error err;
    jx_signer *signer = jx_signer_new(cert, key, &err);
    if (signer == NULL)
        die("signer", &err);
    snprintf(path, sizeof path, "%s/gateway.key", pki);
    EVP_PKEY *gateway_key = jx_checkpoint_load_private_key(path, &err);
    if (gateway_key == NULL)
        die("gateway key", &err);
    snprintf(path, sizeof path, "%s/journal", work);
    jx_journal *journal = jx_journal_open(path, NULL, NULL, &err);
    if (journal == NULL)
        die("journal", &err);

    size_t der_len;
    const uint8_t *der = jx_signer_cert_der(signer, &der_len);
    uint8_t cert_sha256[32];
    SHA256(der, der_len, cert_sha256);
    jx_journal_entry certificate = {.event = JX_EVENT_CERTIFICATE,
                                    .sender = "KG-PROBATION",
                                    .signer_cert_sha256 = cert_sha256,
                                    .certificate = der,
                                    .certificate_len = der_len};
    append(journal, &certificate); /* record 0 */

    Justx__V1__Envelope *good = sealed(signer, "GOOD-1");
    accepted(journal, good, good->header.data, good->header.len, cert_sha256); /* record 1 */

    /* record 2: the signature of one header under another header's bytes */
    Justx__V1__Envelope *other = sealed(signer, "FORGED-2");
    accepted(journal, good, other->header.data, other->header.len, cert_sha256);

    /* record 3: a certificate the journal never recorded */
    uint8_t unknown[32];
    memset(unknown, 0x5a, sizeof unknown);
    accepted(journal, other, other->header.data, other->header.len, unknown);

    char *note = NULL;
    if (jx_journal_checkpoint(journal, gateway_key, "justx.test/gateway", 0, &note, NULL, &err) !=
        0)
        die("checkpoint", &err);
    free(note);
    jx_journal_destroy(&journal);

    char command[4096];
    snprintf(command, sizeof command, "'%s' verify '%s/journal' --key '%s/gateway.pub' --json",
             audit, work, pki);
    FILE *out = popen(command, "r");
    json_error_t json_err;
    json_t *report = json_loadf(out, 0, &json_err);
    int status = pclose(out);
    CHECK(report != NULL, "verify --json printed no JSON: %s", json_err.text);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "verify should exit 1, status %d", status);
    if (report) {
        CHECK(json_integer_value(json_object_get(report, "signaturesVerified")) == 1,
              "one signature verifies");
        CHECK(json_integer_value(json_object_get(report, "signaturesWithoutCertificate")) == 1,
              "one signature has no journaled certificate");
        CHECK(json_integer_value(json_object_get(report, "errors")) == 1, "exactly one error");
        json_t *problems = json_object_get(report, "problems");
        char *text = json_dumps(problems, JSON_COMPACT);
        CHECK(text && strstr(text, "does not verify") != NULL,
              "the problem says the signature does not verify: %s", text ? text : "");
        size_t i;
        json_t *problem;
        bool at_record_2 = false;
        json_array_foreach(problems, i, problem) {
            if (json_integer_value(json_object_get(problem, "index")) == 2)
                at_record_2 = true;
        }
        CHECK(at_record_2, "the problem names record 2: %s", text ? text : "");
        free(text);
        json_decref(report);
    }

    justx__v1__envelope__free_unpacked(good, NULL);
    justx__v1__envelope__free_unpacked(other, NULL);
    EVP_PKEY_free(gateway_key);
    jx_signer_destroy(&signer);
    if (failures == 0)
        printf("ok: forged record named, good signature verified, unknown certificate counted\n");
    return failures ? 1 : 0;
}
