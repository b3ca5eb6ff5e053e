/* audit_proof.c — `justx-audit prove` and `verify-proof`: one record, offline.
 *
 * A proof file is a c2sp.org/tlog-proof@v1 text:
 *
 *     c2sp.org/tlog-proof@v1
 *     extra <base64 of the record's bytes as stored in the journal>
 *     index <record index>
 *     <base64 hash>          one per line: the RFC 9162 inclusion proof,
 *     ...                    from the leaf's sibling up
 *     <empty line>
 *     <the checkpoint, a signed note, verbatim>
 *
 * The "extra" line carries the record so that the file stands alone; it is
 * not trusted: the verifier hashes it into the signed root. `prove
 * --record-out FILE` also writes the raw record, and `verify-proof --record
 * FILE` checks against such a file instead of (or as well as) the extra line.
 */
#include "audit.h"

#include "base64.h"
#include "checkpoint.h"
#include "journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PROOF_HEADER "c2sp.org/tlog-proof@v1"

static const char prove_usage[] =
    "usage: justx-audit prove DIR --index N [--checkpoint latest|SIZE]\n"
    "                             [--output FILE] [--record-out FILE] [--json]\n"
    "\n"
    "Writes an inclusion proof of record N in the c2sp.org/tlog-proof@v1 format:\n"
    "the record itself (base64, on the \"extra\" line), its index, the Merkle\n"
    "inclusion proof, and the gateway's signed checkpoint it leads to. Anyone\n"
    "with the gateway's public key can check it with verify-proof.\n"
    "\n"
    "  --index N           the record's index\n"
    "  --checkpoint C      \"latest\" (default): the newest checkpoint covering N;\n"
    "                      or the tree size of a specific checkpoint\n"
    "  --output FILE       write the proof there instead of stdout\n"
    "  --record-out FILE   also write the record's raw bytes there\n"
    "  --json              print {index, treeSize, root, proof, record, checkpoint}\n"
    "                      as JSON instead of the proof text\n"
    "\n"
    "Exit status: 0 written, 1 no checkpoint covers N or the journal is damaged,\n"
    "2 usage error.\n";

static const char verify_usage[] =
    "usage: justx-audit verify-proof PROOF --key GATEWAY_KEY [--record FILE]\n"
    "                                [--origin NAME] [--json]\n"
    "\n"
    "Checks a proof written by prove with nothing but the gateway's public key:\n"
    "the checkpoint's signature, and that the record hashes into its root at\n"
    "the stated index.\n"
    "\n"
    "  --key FILE      the gateway's public key or certificate (PEM, Ed25519)\n"
    "  --record FILE   the record's raw bytes (default: the proof's extra line;\n"
    "                  when both are there they must be equal)\n"
    "  --origin NAME   require this checkpoint origin\n"
    "  --json          print the result and the record as JSON\n"
    "\n"
    "Exit status: 0 the proof holds, 1 it does not, 2 usage error.\n";

static bool parse_u64(const char *text, uint64_t *out)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || *end || text[0] == '-' || text[0] == '+')
        return false;
    *out = value;
    return true;
}

static char *read_text_file(const char *path, size_t *len, size_t max)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    char *data = malloc(max + 1);
    size_t got = data ? fread(data, 1, max + 1, file) : 0;
    fclose(file);
    if (!data || got > max) {
        free(data);
        errno = EFBIG;
        return NULL;
    }
    data[got] = '\0';
    *len = got;
    return data;
}

int audit_command_prove(int argc, char **argv)
{
    const char *index_text = NULL, *checkpoint_text = NULL, *output = NULL, *record_out = NULL,
               *json_flag = NULL;
    const audit_option options[] = {
        {"--index", true, &index_text}, {"--checkpoint", true, &checkpoint_text},
        {"--output", true, &output},    {"--record-out", true, &record_out},
        {"--json", false, &json_flag},  {NULL, false, NULL}};
    const char *positional[1];
    int count;
    int parsed = audit_parse_args(argc, argv, options, positional, 1, &count, prove_usage);
    if (parsed != 0)
        return parsed > 0 ? AUDIT_EXIT_OK : AUDIT_EXIT_USAGE;
    uint64_t index, wanted_size = 0;
    bool latest = !checkpoint_text || strcmp(checkpoint_text, "latest") == 0;
    if (count != 1 || !parse_u64(index_text, &index) ||
        (!latest && !parse_u64(checkpoint_text, &wanted_size))) {
        fprintf(stderr,
                "justx-audit prove: give DIR, --index N and optionally --checkpoint "
                "latest|SIZE\n\n%s",
                prove_usage);
        return AUDIT_EXIT_USAGE;
    }
    const char *dir = positional[0];
    int status = AUDIT_EXIT_FAILED;
    audit_report report = {0};
    audit_checkpoint *checkpoints = NULL;
    size_t checkpoint_count = 0;
    jx_journal *journal = NULL;
    uint8_t *record = NULL;
    size_t record_len = 0;
    char *record64 = NULL;
    FILE *out = NULL;
    jx_error err;

    audit_read_checkpoints(dir, NULL, NULL, &report, &checkpoints, &checkpoint_count);
    const audit_checkpoint *chosen = NULL;
    for (size_t i = 0; i < checkpoint_count; i++) {
        const audit_checkpoint *c = &checkpoints[i];
        if (!c->parsed || c->checkpoint.size <= index)
            continue;
        if (latest || c->checkpoint.size == wanted_size)
            chosen = c; /* the last one in file order wins */
    }
    if (!chosen) {
        fprintf(stderr,
                "justx-audit prove: no checkpoint in %s/checkpoints %s record %" PRIu64 "\n", dir,
                latest ? "covers" : "of that size covers", index);
        goto done;
    }
    jx_journal_options journal_options = {.read_only = true};
    journal = jx_journal_open(dir, &journal_options, NULL, &err);
    if (!journal) {
        fprintf(stderr, "justx-audit prove: %s\n", err.message);
        goto done;
    }
    uint64_t size = chosen->checkpoint.size;
    uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE], leaf[JX_HASH_SIZE];
    size_t proof_count = 0;
    if (jx_journal_read(journal, index, &record, &record_len, &err) != 0 ||
        jx_journal_inclusion_proof(journal, index, size, proof, &proof_count, &err) != 0) {
        fprintf(stderr, "justx-audit prove: %s\n", err.message);
        goto done;
    }
    /* Never hand out a proof that does not hold: check it against the
     * signed root before writing it. */
    jx_merkle_leaf_hash(record, record_len, leaf);
    if (jx_merkle_verify_inclusion(index, size, leaf, proof, proof_count, chosen->checkpoint.root,
                                   &err) != 0) {
        fprintf(stderr,
                "justx-audit prove: the journal does not reproduce the checkpoint's root for "
                "record %" PRIu64 " (%s); run justx-audit verify\n",
                index, err.message);
        goto done;
    }
    record64 = malloc(jx_base64_encoded_length(record_len) + 1);
    if (!record64)
        goto done;
    jx_base64_encode(record, record_len, record64);
    if (record_out) {
        FILE *raw = fopen(record_out, "wb");
        if (!raw || fwrite(record, 1, record_len, raw) != record_len || fclose(raw) != 0) {
            perror(record_out);
            goto done;
        }
    }
    out = output ? fopen(output, "w") : stdout;
    if (!out) {
        perror(output);
        goto done;
    }
    if (json_flag) {
        json_t *object = json_object();
        char root64[64];
        jx_base64_encode(chosen->checkpoint.root, JX_HASH_SIZE, root64);
        json_object_set_new(object, "index", json_integer((json_int_t)index));
        json_object_set_new(object, "treeSize", json_integer((json_int_t)size));
        json_object_set_new(object, "root", json_string(root64));
        json_t *hashes = json_array();
        for (size_t i = 0; i < proof_count; i++) {
            char hash64[64];
            jx_base64_encode(proof[i], JX_HASH_SIZE, hash64);
            json_array_append_new(hashes, json_string(hash64));
        }
        json_object_set_new(object, "proof", hashes);
        json_object_set_new(object, "record", json_string(record64));
        json_object_set_new(object, "checkpoint", json_string(chosen->note));
        json_dumpf(object, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(object);
    } else {
        fprintf(out, PROOF_HEADER "\nextra %s\nindex %" PRIu64 "\n", record64, index);
        for (size_t i = 0; i < proof_count; i++) {
            char hash64[64];
            jx_base64_encode(proof[i], JX_HASH_SIZE, hash64);
            fprintf(out, "%s\n", hash64);
        }
        fprintf(out, "\n%s", chosen->note);
    }
    if (fflush(out) != 0 || (output && fclose(out) != 0)) {
        perror(output ? output : "stdout");
        out = NULL;
        goto done;
    }
    out = NULL;
    status = AUDIT_EXIT_OK;
done:
    if (out && out != stdout)
        fclose(out);
    free(record64);
    free(record);
    jx_journal_destroy(&journal);
    audit_checkpoints_free(checkpoints, checkpoint_count);
    audit_report_free(&report);
    return status;
}

typedef struct {
    uint64_t index;
    uint8_t hashes[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
    size_t count;
    uint8_t *extra;
    size_t extra_len;
    const char *checkpoint; /* points into the text */
    size_t checkpoint_len;
} parsed_proof;

/* Parses the proof text; false with a reason in why. */
static bool parse_proof(const char *text, size_t len, parsed_proof *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof *p);
    size_t at = 0;
    int line_number = 0;
    bool have_index = false;
    while (at < len) {
        const char *newline = memchr(text + at, '\n', len - at);
        if (!newline) {
            snprintf(why, why_len, "line %d does not end with a newline", line_number + 1);
            return false;
        }
        const char *line = text + at;
        size_t line_len = (size_t)(newline - line);
        at += line_len + 1;
        line_number++;
        if (line_number == 1) {
            if (line_len != strlen(PROOF_HEADER) || memcmp(line, PROOF_HEADER, line_len) != 0) {
                snprintf(why, why_len, "the first line is not \"%s\"", PROOF_HEADER);
                return false;
            }
            continue;
        }
        if (line_len == 0) {
            if (!have_index) {
                snprintf(why, why_len, "no index line before the checkpoint");
                return false;
            }
            p->checkpoint = text + at;
            p->checkpoint_len = len - at;
            return true;
        }
        if (line_number == 2 && line_len > 6 && memcmp(line, "extra ", 6) == 0) {
            size_t cap = (line_len - 6) / 4 * 3 + 3;
            p->extra = malloc(cap);
            if (!p->extra ||
                !jx_base64_decode(line + 6, line_len - 6, p->extra, cap, &p->extra_len)) {
                snprintf(why, why_len, "the extra line is not base64");
                return false;
            }
            continue;
        }
        if (!have_index) {
            char number[32];
            if (line_len < 7 || line_len - 6 >= sizeof number || memcmp(line, "index ", 6) != 0) {
                snprintf(why, why_len, "line %d should be \"index N\"", line_number);
                return false;
            }
            memcpy(number, line + 6, line_len - 6);
            number[line_len - 6] = '\0';
            if (!parse_u64(number, &p->index) || (number[0] == '0' && number[1])) {
                snprintf(why, why_len, "line %d: \"%s\" is not an index", line_number, number);
                return false;
            }
            have_index = true;
            continue;
        }
        size_t hash_len = 0;
        if (p->count == JX_MERKLE_MAX_PROOF ||
            !jx_base64_decode(line, line_len, p->hashes[p->count], JX_HASH_SIZE, &hash_len) ||
            hash_len != JX_HASH_SIZE) {
            snprintf(why, why_len, "line %d is not a base64 SHA-256 hash", line_number);
            return false;
        }
        p->count++;
    }
    snprintf(why, why_len, "no checkpoint after the proof hashes");
    return false;
}

int audit_command_verify_proof(int argc, char **argv)
{
    const char *key_path = NULL, *record_path = NULL, *origin = NULL, *json_flag = NULL;
    const audit_option options[] = {{"--key", true, &key_path},
                                    {"--record", true, &record_path},
                                    {"--origin", true, &origin},
                                    {"--json", false, &json_flag},
                                    {NULL, false, NULL}};
    const char *positional[1];
    int count;
    int parsed = audit_parse_args(argc, argv, options, positional, 1, &count, verify_usage);
    if (parsed != 0)
        return parsed > 0 ? AUDIT_EXIT_OK : AUDIT_EXIT_USAGE;
    if (count != 1 || !key_path) {
        fprintf(stderr, "justx-audit verify-proof: give PROOF and --key\n\n%s", verify_usage);
        return AUDIT_EXIT_USAGE;
    }
    jx_error err;
    EVP_PKEY *key = jx_checkpoint_load_public_key(key_path, &err);
    if (!key) {
        fprintf(stderr, "justx-audit verify-proof: %s\n", err.message);
        return AUDIT_EXIT_USAGE;
    }
    int status = AUDIT_EXIT_FAILED;
    char why[600] = "";
    size_t text_len = 0, record_len = 0;
    char *text = read_text_file(positional[0], &text_len, 4 * 1024 * 1024 + 65536);
    char *record_file = NULL;
    const uint8_t *record = NULL;
    parsed_proof proof = {0};
    jx_checkpoint checkpoint = {0};
    uint8_t leaf[JX_HASH_SIZE] = {0};
    Justx__V1__JournalRecord *decoded = NULL;
    if (!text) {
        snprintf(why, sizeof why, "cannot read %s: %s", positional[0], strerror(errno));
        goto report;
    }
    if (!parse_proof(text, text_len, &proof, why, sizeof why))
        goto report;
    if (record_path) {
        record_file = read_text_file(record_path, &record_len, 16 * 1024 * 1024);
        if (!record_file) {
            snprintf(why, sizeof why, "cannot read %s: %s", record_path, strerror(errno));
            goto report;
        }
        record = (const uint8_t *)record_file;
        if (proof.extra &&
            (proof.extra_len != record_len || memcmp(proof.extra, record, record_len) != 0)) {
            snprintf(why, sizeof why, "the record in %s differs from the one in the proof",
                     record_path);
            goto report;
        }
    } else if (proof.extra) {
        record = proof.extra;
        record_len = proof.extra_len;
    } else {
        snprintf(why, sizeof why, "the proof carries no record; give it with --record");
        goto report;
    }
    if (jx_checkpoint_verify(proof.checkpoint, proof.checkpoint_len, key, origin, &checkpoint,
                             &err) != 0) {
        snprintf(why, sizeof why, "checkpoint: %s", err.message);
        goto report;
    }
    jx_merkle_leaf_hash(record, record_len, leaf);
    if (jx_merkle_verify_inclusion(proof.index, checkpoint.size, leaf, proof.hashes, proof.count,
                                   checkpoint.root, &err) != 0) {
        snprintf(why, sizeof why, "inclusion: %s", err.message);
        goto report;
    }
    decoded = justx__v1__journal_record__unpack(NULL, record_len, record);
    if (!decoded) {
        snprintf(why, sizeof why, "the record is in the tree but is not a JournalRecord");
        goto report;
    }
    if (decoded->index != proof.index) {
        snprintf(why, sizeof why, "the record carries index %" PRIu64 " but sits at %" PRIu64,
                 decoded->index, proof.index);
        goto report;
    }
    status = AUDIT_EXIT_OK;
report:
    if (json_flag) {
        json_t *object = json_object();
        json_object_set_new(object, "ok", json_boolean(status == AUDIT_EXIT_OK));
        if (status != AUDIT_EXIT_OK)
            json_object_set_new(object, "error", json_string(why));
        else {
            char iso[AUDIT_TIME_MAX];
            json_object_set_new(object, "index", json_integer((json_int_t)proof.index));
            json_object_set_new(object, "treeSize", json_integer((json_int_t)checkpoint.size));
            json_object_set_new(object, "origin", json_string(checkpoint.origin));
            if (checkpoint.time_ms >= 0) {
                audit_format_time(checkpoint.time_ms, iso);
                json_object_set_new(object, "checkpointTime", json_string(iso));
            }
            json_object_set_new(object, "record", audit_record_json(decoded, leaf));
        }
        json_dumpf(object, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(object);
    } else if (status == AUDIT_EXIT_OK) {
        char iso[AUDIT_TIME_MAX] = "an unknown time";
        if (checkpoint.time_ms >= 0)
            audit_format_time(checkpoint.time_ms, iso);
        printf("verified: record %" PRIu64 " is in the journal of %s: included in the tree of "
               "%" PRIu64 " records signed at %s\n",
               proof.index, checkpoint.origin, checkpoint.size, iso);
        audit_record_print(decoded, stdout);
    } else {
        printf("NOT VERIFIED: %s\n", why);
    }
    if (decoded)
        justx__v1__journal_record__free_unpacked(decoded, NULL);
    free(proof.extra);
    free(record_file);
    free(text);
    EVP_PKEY_free(key);
    return status;
}
