/* audit_verify.c — `justx-audit verify`: recompute everything, trust nothing.
 *
 * The tree is rebuilt from the segment files into a temporary file (the
 * journal's own tree.hashes is never read); every checkpoint's signature is
 * checked with the public key alone, its root compared with the root the
 * records give at its size, and each checkpoint shown consistent with the
 * one before it by an RFC 9162 consistency proof between the two signed
 * roots. Every sender's and recipient's signature in ACCEPTED and
 * ACKNOWLEDGED records is checked with the certificate the journal recorded
 * for it (CERTIFICATE records), and the signed header must say what the
 * record says. Every problem is reported with where it is.
 */
#include "audit.h"

#include "base64.h"
#include "checkpoint.h"
#include "envelope.h"
#include "tree.h"

#include <openssl/sha.h>
#include <openssl/x509.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: justx-audit verify DIR --key GATEWAY_KEY [--origin NAME] [--json]\n"
    "\n"
    "Verifies the journal in DIR without trusting the gateway or any derived file:\n"
    "  - every record's frame, checksum and index sequence, in every segment;\n"
    "  - every checkpoint's Ed25519 signature, with GATEWAY_KEY alone;\n"
    "  - that each checkpoint's root equals the root recomputed from the records;\n"
    "  - that each checkpoint is consistent with the one before it;\n"
    "  - every signature in ACCEPTED and ACKNOWLEDGED records, with the signer's\n"
    "    certificate as the journal recorded it, and that the signed header says\n"
    "    what the record says.\n"
    "Every problem is reported with its place (file, byte offset, record index).\n"
    "\n"
    "  --key FILE      the gateway's public key or certificate (PEM, Ed25519)\n"
    "  --origin NAME   require this checkpoint origin (and key name)\n"
    "  --json          one JSON object on stdout instead of text\n"
    "\n"
    "Exit status: 0 verified, 1 a problem found, 2 usage error.\n";

int audit_read_checkpoints(const char *dir, EVP_PKEY *key, const char *origin, audit_report *report,
                           audit_checkpoint **list, size_t *count)
{
    *list = NULL;
    *count = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    FILE *file = fopen(path, "rb");
    if (!file) {
        if (errno == ENOENT)
            return 0;
        audit_report_add(report, AUDIT_ERROR, "checkpoints", -1, -1, -1, "cannot read %s: %s", path,
                         strerror(errno));
        return -1;
    }
    char *bytes = NULL;
    size_t len = 0, capacity = 0;
    for (;;) {
        if (len == capacity) {
            capacity = capacity ? 2 * capacity : 65536;
            char *grown = realloc(bytes, capacity);
            if (!grown)
                break;
            bytes = grown;
        }
        size_t got = fread(bytes + len, 1, capacity - len, file);
        if (got == 0)
            break;
        len += got;
    }
    fclose(file);
    size_t at = 0, allocated = 0;
    while (at < len) {
        bool complete;
        size_t note_len = jx_note_extent(bytes + at, len - at, &complete);
        int64_t number = (int64_t)*count;
        if (!complete) {
            audit_report_add(report, AUDIT_WARNING, "checkpoints", (int64_t)at, -1, number,
                             "incomplete last checkpoint (%zu bytes): a write interrupted by a "
                             "crash, cut off when the gateway next starts",
                             len - at);
            break;
        }
        if (*count == allocated) {
            allocated = allocated ? 2 * allocated : 64;
            audit_checkpoint *grown = realloc(*list, allocated * sizeof *grown);
            if (!grown)
                break;
            *list = grown;
        }
        audit_checkpoint *item = &(*list)[(*count)++];
        memset(item, 0, sizeof *item);
        item->offset = at;
        item->len = note_len;
        item->note = strndup(bytes + at, note_len);
        jx_error err;
        if (jx_checkpoint_parse(bytes + at, note_len, &item->checkpoint, &err) != 0) {
            audit_report_add(report, AUDIT_ERROR, "checkpoints", (int64_t)at, -1, number,
                             "malformed checkpoint: %s", err.message);
        } else {
            item->parsed = true;
            if (key) {
                if (jx_checkpoint_verify(bytes + at, note_len, key, origin, &item->checkpoint,
                                         &err) == 0)
                    item->signature_ok = true;
                else
                    audit_report_add(report, AUDIT_ERROR, "checkpoints", (int64_t)at, -1, number,
                                     "checkpoint of size %" PRIu64 " fails verification: %s",
                                     item->checkpoint.size, err.message);
            }
        }
        at += note_len;
    }
    free(bytes);
    return 0;
}

void audit_checkpoints_free(audit_checkpoint *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i].note);
    free(list);
}

/* A signer key from a CERTIFICATE record. */
typedef struct {
    uint8_t sha256[32];
    EVP_PKEY *key;
    char agency[JX_AGENCY_ID_MAX];
} journaled_key;

typedef struct {
    jx_tree *tree;
    audit_report *report;
    journaled_key *keys;
    size_t n_keys, cap_keys;
    uint64_t verified, unchecked;
} verify_context;

static void learn_certificate(verify_context *context, const audit_record *at)
{
    const Justx__V1__JournalRecord *record = at->record;
    uint8_t digest[32];
    SHA256(record->certificate.data, record->certificate.len, digest);
    const unsigned char *cursor = record->certificate.data;
    X509 *cert = d2i_X509(NULL, &cursor, (long)record->certificate.len);
    journaled_key entry = {0};
    if (cert == NULL || record->signer_cert_sha256.len != 32 ||
        memcmp(digest, record->signer_cert_sha256.data, 32) != 0 ||
        jx_cert_agency_id(cert, entry.agency, NULL) != 0 ||
        (entry.key = X509_get_pubkey(cert)) == NULL) {
        audit_report_add(context->report, AUDIT_ERROR, at->segment, (int64_t)at->offset,
                         (int64_t)at->position, -1,
                         "the CERTIFICATE record holds no usable agency certificate matching "
                         "its digest");
        X509_free(cert);
        return;
    }
    X509_free(cert);
    memcpy(entry.sha256, digest, 32);
    if (context->n_keys == context->cap_keys) {
        size_t capacity = context->cap_keys ? context->cap_keys * 2 : 16;
        journaled_key *grown = realloc(context->keys, capacity * sizeof *grown);
        if (grown == NULL) {
            EVP_PKEY_free(entry.key);
            return;
        }
        context->keys = grown;
        context->cap_keys = capacity;
    }
    context->keys[context->n_keys++] = entry;
}

static const journaled_key *find_key(const verify_context *context, const uint8_t *sha256)
{
    for (size_t i = context->n_keys; i-- > 0;)
        if (memcmp(context->keys[i].sha256, sha256, 32) == 0)
            return &context->keys[i];
    return NULL;
}

/* The signed header must name the message and the agency the record names:
 * the sender for ACCEPTED; for ACKNOWLEDGED the signer is the recipient. */
static void check_signature(verify_context *context, const audit_record *at)
{
    const Justx__V1__JournalRecord *record = at->record;
    const journaled_key *signer = record->signer_cert_sha256.len == 32
                                      ? find_key(context, record->signer_cert_sha256.data)
                                      : NULL;
    if (signer == NULL) {
        context->unchecked++;
        return;
    }
    static const char envelope_context[] = JX_ENVELOPE_SIGNATURE_CONTEXT;
    jx_error err;
    bool accepted = record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__ACCEPTED;
    const char *expected_signer = accepted ? record->sender : record->recipient;
    Justx__V1__Header *header =
        justx__v1__header__unpack(NULL, record->header.len, record->header.data);
    const char *problem = NULL;
    if (jx_signature_verify(signer->key, (const uint8_t *)envelope_context,
                            sizeof envelope_context - 1, record->header.data, record->header.len,
                            record->signature.data, record->signature.len, &err) != 0)
        problem = "the signature does not verify with the signer's journaled certificate";
    else if (strcmp(signer->agency, expected_signer) != 0)
        problem = "the signing certificate belongs to another agency than the record names";
    else if (header == NULL || strcmp(header->sender, signer->agency) != 0 ||
             (accepted && strcmp(header->message_id, record->message_id) != 0))
        problem = "the signed header does not name the message and sender the record names";
    if (problem)
        audit_report_add(context->report, AUDIT_ERROR, at->segment, (int64_t)at->offset,
                         (int64_t)at->position, -1, "%s record of %s: %s",
                         accepted ? "ACCEPTED" : "ACKNOWLEDGED", record->message_id, problem);
    else
        context->verified++;
    if (header)
        justx__v1__header__free_unpacked(header, NULL);
}

static int append_leaf(void *ctx, const audit_record *at)
{
    verify_context *context = ctx;
    jx_error err;
    const Justx__V1__JournalRecord *record = at->record;
    if (record && record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__CERTIFICATE)
        learn_certificate(context, at);
    else if (record && record->signature.len > 0 &&
             (record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__ACCEPTED ||
              record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__ACKNOWLEDGED))
        check_signature(context, at);
    return jx_tree_append(context->tree, at->leaf, &err);
}

static void root_text(const uint8_t root[JX_HASH_SIZE], char out[64])
{
    jx_base64_encode(root, JX_HASH_SIZE, out);
}

int audit_command_verify(int argc, char **argv)
{
    const char *key_path = NULL, *origin = NULL, *json_flag = NULL, *dir = NULL;
    const audit_option options[] = {{"--key", true, &key_path},
                                    {"--origin", true, &origin},
                                    {"--json", false, &json_flag},
                                    {NULL, false, NULL}};
    const char *positional[1];
    int positional_count;
    int parsed = audit_parse_args(argc, argv, options, positional, 1, &positional_count, usage);
    if (parsed != 0)
        return parsed > 0 ? AUDIT_EXIT_OK : AUDIT_EXIT_USAGE;
    if (positional_count != 1 || !key_path) {
        fprintf(stderr, "justx-audit verify: %s\n\n%s",
                positional_count != 1 ? "give the journal directory" : "--key is required", usage);
        return AUDIT_EXIT_USAGE;
    }
    dir = positional[0];
    bool json = json_flag != NULL;
    jx_error err;
    EVP_PKEY *key = jx_checkpoint_load_public_key(key_path, &err);
    if (!key) {
        fprintf(stderr, "justx-audit verify: %s\n", err.message);
        return AUDIT_EXIT_USAGE;
    }
    const char *tmp = getenv("TMPDIR");
    jx_tree *tree = jx_tree_open_temporary(tmp && *tmp ? tmp : "/tmp", &err);
    if (!tree) {
        fprintf(stderr, "justx-audit verify: %s\n", err.message);
        EVP_PKEY_free(key);
        return AUDIT_EXIT_FAILED;
    }

    audit_report report = {0};
    audit_scan_totals totals = {0};
    verify_context scanned = {.tree = tree, .report = &report};
    audit_scan(dir, &report, append_leaf, &scanned, &totals);
    audit_checkpoint *checkpoints = NULL;
    size_t checkpoint_count = 0;
    audit_read_checkpoints(dir, key, origin, &report, &checkpoints, &checkpoint_count);

    uint64_t records = jx_tree_size(tree);
    bool *matches = calloc(checkpoint_count ? checkpoint_count : 1, sizeof *matches);
    size_t matching = 0, consistent_pairs = 0;
    for (size_t i = 0; i < checkpoint_count; i++) {
        audit_checkpoint *c = &checkpoints[i];
        if (!c->parsed)
            continue;
        if (c->checkpoint.size > records) {
            audit_report_add(&report, AUDIT_ERROR, "checkpoints", (int64_t)c->offset, -1,
                             (int64_t)i,
                             "checkpoint covers %" PRIu64 " records but the journal holds only "
                             "%" PRIu64 ": records were removed or cut off",
                             c->checkpoint.size, records);
            continue;
        }
        uint8_t root[JX_HASH_SIZE];
        if (jx_tree_root(tree, c->checkpoint.size, root, &err) != 0) {
            audit_report_add(&report, AUDIT_ERROR, "checkpoints", (int64_t)c->offset, -1,
                             (int64_t)i, "cannot recompute the root: %s", err.message);
            continue;
        }
        if (memcmp(root, c->checkpoint.root, JX_HASH_SIZE) != 0) {
            /* The largest earlier checkpoint that still matches bounds
             * where the change can be. */
            uint64_t intact = 0;
            for (size_t k = 0; k < i; k++)
                if (matches[k] && checkpoints[k].checkpoint.size > intact &&
                    checkpoints[k].checkpoint.size < c->checkpoint.size)
                    intact = checkpoints[k].checkpoint.size;
            char want[64], got[64], where[128] = "";
            root_text(c->checkpoint.root, want);
            root_text(root, got);
            if (intact)
                snprintf(where, sizeof where,
                         " (the first %" PRIu64 " still match an earlier checkpoint, so the "
                         "change lies in records %" PRIu64 "..%" PRIu64 ")",
                         intact, intact, c->checkpoint.size - 1);
            audit_report_add(&report, AUDIT_ERROR, "checkpoints", (int64_t)c->offset, -1,
                             (int64_t)i,
                             "the first %" PRIu64 " records give root %s but the checkpoint "
                             "signed %s: records among them were altered, removed, reordered "
                             "or inserted%s",
                             c->checkpoint.size, got, want, where);
            continue;
        }
        matches[i] = true;
        matching++;
    }
    /* Each checkpoint against the previous well-formed one. */
    size_t previous = SIZE_MAX;
    for (size_t i = 0; i < checkpoint_count; i++) {
        audit_checkpoint *c = &checkpoints[i];
        if (!c->parsed)
            continue;
        if (previous != SIZE_MAX) {
            audit_checkpoint *p = &checkpoints[previous];
            uint64_t size1 = p->checkpoint.size, size2 = c->checkpoint.size;
            if (size2 < size1) {
                audit_report_add(&report, AUDIT_ERROR, "checkpoints", (int64_t)c->offset, -1,
                                 (int64_t)i,
                                 "checkpoint of size %" PRIu64 " follows one of size %" PRIu64
                                 ": the log shrank",
                                 size2, size1);
            } else if (size1 == size2 &&
                       memcmp(p->checkpoint.root, c->checkpoint.root, JX_HASH_SIZE) != 0) {
                audit_report_add(&report, AUDIT_ERROR, "checkpoints", (int64_t)c->offset, -1,
                                 (int64_t)i,
                                 "checkpoint #%zu and this one both have size %" PRIu64
                                 " but different roots: two histories were signed",
                                 previous, size1);
            } else if (matches[previous] && matches[i]) {
                uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
                size_t count = 0;
                if (jx_tree_consistency_proof(tree, size1, size2, proof, &count, &err) != 0 ||
                    jx_merkle_verify_consistency(size1, size2, p->checkpoint.root,
                                                 c->checkpoint.root, proof, count, &err) != 0)
                    audit_report_add(&report, AUDIT_ERROR, "checkpoints", (int64_t)c->offset, -1,
                                     (int64_t)i, "not consistent with checkpoint #%zu: %s",
                                     previous, err.message);
                else
                    consistent_pairs++;
            }
            if (c->checkpoint.time_ms >= 0 && p->checkpoint.time_ms > c->checkpoint.time_ms)
                audit_report_add(&report, AUDIT_WARNING, "checkpoints", (int64_t)c->offset, -1,
                                 (int64_t)i,
                                 "signed at an earlier time than checkpoint #%zu (clock set "
                                 "back?)",
                                 previous);
        }
        previous = i;
    }
    if (checkpoint_count == 0)
        audit_report_add(&report, AUDIT_WARNING, "checkpoints", -1, -1, -1,
                         "no signed checkpoint: the records are intact as far as their "
                         "checksums go, but nothing signed vouches for them");

    uint8_t full_root[JX_HASH_SIZE];
    char full_root_text[64];
    jx_tree_root(tree, records, full_root, &err);
    root_text(full_root, full_root_text);
    const audit_checkpoint *latest = NULL;
    for (size_t i = checkpoint_count; i-- > 0;)
        if (checkpoints[i].parsed) {
            latest = &checkpoints[i];
            break;
        }
    bool ok = report.errors == 0;
    if (json) {
        json_t *out = json_object();
        json_object_set_new(out, "ok", json_boolean(ok));
        json_object_set_new(out, "directory", json_string(dir));
        json_object_set_new(out, "records", json_integer((json_int_t)records));
        json_object_set_new(out, "segments", json_integer((json_int_t)totals.segments));
        json_object_set_new(out, "root", json_string(full_root_text));
        json_object_set_new(out, "checkpoints", json_integer((json_int_t)checkpoint_count));
        json_object_set_new(out, "checkpointsMatchingRecords", json_integer((json_int_t)matching));
        json_object_set_new(out, "consistentPairs", json_integer((json_int_t)consistent_pairs));
        json_object_set_new(out, "signaturesVerified", json_integer((json_int_t)scanned.verified));
        json_object_set_new(out, "signaturesWithoutCertificate",
                            json_integer((json_int_t)scanned.unchecked));
        if (latest) {
            json_t *l = json_object();
            char root64[64], iso[AUDIT_TIME_MAX];
            root_text(latest->checkpoint.root, root64);
            json_object_set_new(l, "origin", json_string(latest->checkpoint.origin));
            json_object_set_new(l, "size", json_integer((json_int_t)latest->checkpoint.size));
            json_object_set_new(l, "root", json_string(root64));
            if (latest->checkpoint.time_ms >= 0) {
                audit_format_time(latest->checkpoint.time_ms, iso);
                json_object_set_new(l, "time", json_string(iso));
            }
            json_object_set_new(out, "latestCheckpoint", l);
        }
        json_object_set_new(out, "errors", json_integer((json_int_t)report.errors));
        json_object_set_new(out, "warnings", json_integer((json_int_t)report.warnings));
        json_object_set_new(out, "problems", audit_report_json(&report));
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else {
        printf("journal %s: %" PRIu64 " records in %" PRIu64 " segment(s), %zu checkpoint(s)\n",
               dir, records, totals.segments, checkpoint_count);
        printf("root of all %" PRIu64 " records: %s\n", records, full_root_text);
        if (latest) {
            char iso[AUDIT_TIME_MAX] = "unknown time";
            if (latest->checkpoint.time_ms >= 0)
                audit_format_time(latest->checkpoint.time_ms, iso);
            printf("latest checkpoint: %s, size %" PRIu64 ", signed %s\n",
                   latest->checkpoint.origin, latest->checkpoint.size, iso);
        }
        printf("%zu of %zu checkpoint(s) match the records; %zu consecutive pair(s) proved "
               "consistent\n",
               matching, checkpoint_count, consistent_pairs);
        printf("%" PRIu64 " signature(s) verified with the certificates the journal recorded",
               scanned.verified);
        if (scanned.unchecked)
            printf("; %" PRIu64 " without a journaled certificate, not checked",
                   scanned.unchecked);
        printf("\n");
        audit_report_print(&report, stdout);
        if (ok)
            printf("verified: no errors%s\n", report.warnings ? " (see warnings above)" : "");
        else
            printf("NOT VERIFIED: %zu error(s), %zu warning(s)\n", report.errors, report.warnings);
    }
    free(matches);
    audit_checkpoints_free(checkpoints, checkpoint_count);
    audit_report_free(&report);
    jx_tree_destroy(&tree);
    for (size_t i = 0; i < scanned.n_keys; i++)
        EVP_PKEY_free(scanned.keys[i].key);
    free(scanned.keys);
    EVP_PKEY_free(key);
    return ok ? AUDIT_EXIT_OK : AUDIT_EXIT_FAILED;
}
