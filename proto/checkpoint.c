/* checkpoint.c — signed tree heads as C2SP signed notes (tlog-checkpoint), Ed25519.
 *
 * Note text is untrusted input here: every line is bounded and checked
 * (UTF-8 is not decoded, but control characters other than newline are
 * refused, as the signed-note specification requires) before it is used.
 */
#include "checkpoint.h"

#include "base64.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM_DASH_SPACE "\xE2\x80\x94 "
enum { EM_DASH_SPACE_LEN = 4, ED25519_KEY = 32, ED25519_SIG = 64, MAX_SIGNATURE = 4 + 1024 };

static bool is_ed25519(EVP_PKEY *key)
{
    return key && EVP_PKEY_is_a(key, "ED25519");
}

EVP_PKEY *jx_checkpoint_load_public_key(const char *path, jx_error *err)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        jx_error_set(err, JX_ERR_KEY, "cannot open public key file %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *key = PEM_read_PUBKEY(file, NULL, NULL, NULL);
    if (!key) {
        /* Not a bare public key: perhaps the gateway's certificate. */
        rewind(file);
        X509 *cert = PEM_read_X509(file, NULL, NULL, NULL);
        if (cert) {
            key = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    fclose(file);
    if (!key) {
        jx_error_set_openssl(err, JX_ERR_KEY,
                             "%s holds neither a PEM public key nor a PEM certificate", path);
        return NULL;
    }
    if (!is_ed25519(key)) {
        EVP_PKEY_free(key);
        jx_error_set(err, JX_ERR_KEY, "the key in %s is not an Ed25519 key", path);
        return NULL;
    }
    return key;
}

EVP_PKEY *jx_checkpoint_load_private_key(const char *path, jx_error *err)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        jx_error_set(err, JX_ERR_KEY, "cannot open private key file %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    fclose(file);
    if (!key) {
        jx_error_set_openssl(err, JX_ERR_KEY, "%s holds no PEM private key", path);
        return NULL;
    }
    if (!is_ed25519(key)) {
        EVP_PKEY_free(key);
        jx_error_set(err, JX_ERR_KEY, "the key in %s is not an Ed25519 key", path);
        return NULL;
    }
    return key;
}

static bool valid_key_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= JX_NOTE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == '+' || c == 0x7f)
            return false;
    }
    return true;
}

int jx_note_key_id(const char *key_name, EVP_PKEY *key, uint8_t id[4], jx_error *err)
{
    uint8_t raw[ED25519_KEY];
    size_t raw_len = sizeof raw;
    if (!is_ed25519(key) || !EVP_PKEY_get_raw_public_key(key, raw, &raw_len) ||
        raw_len != ED25519_KEY)
        return jx_error_set_openssl(err, JX_ERR_KEY, "key for %s is not an Ed25519 key", key_name);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    const uint8_t separator[2] = {0x0A, 0x01};
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, key_name, strlen(key_name)) &&
             EVP_DigestUpdate(ctx, separator, 2) && EVP_DigestUpdate(ctx, raw, raw_len) &&
             EVP_DigestFinal_ex(ctx, digest, &digest_len);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return jx_error_set_openssl(err, JX_ERR_SYSTEM, "SHA-256 failed");
    memcpy(id, digest, 4);
    return 0;
}

char *jx_note_verifier_key(const char *key_name, EVP_PKEY *key, jx_error *err)
{
    uint8_t id[4], typed[1 + ED25519_KEY];
    size_t raw_len = ED25519_KEY;
    if (jx_note_key_id(key_name, key, id, err) != 0)
        return NULL;
    typed[0] = 0x01;
    EVP_PKEY_get_raw_public_key(key, typed + 1, &raw_len);
    char encoded[64];
    jx_base64_encode(typed, sizeof typed, encoded);
    size_t len = strlen(key_name) + 1 + 8 + 1 + strlen(encoded) + 1;
    char *out = malloc(len);
    if (!out) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory");
        return NULL;
    }
    snprintf(out, len, "%s+%02x%02x%02x%02x+%s", key_name, id[0], id[1], id[2], id[3], encoded);
    return out;
}

/* The text rules of c2sp.org/signed-note: non-empty, ends in a newline, no
 * control characters but newline. Our texts also never hold a blank line,
 * so that a file of notes splits unambiguously. */
static int check_text(const char *text, size_t len, jx_error *err)
{
    if (len == 0 || text[len - 1] != '\n')
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID, "note text must end with a newline");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "note text holds control character 0x%02x at byte %zu", c, i);
        if (c == '\n' && (i == 0 || text[i - 1] == '\n'))
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "note text holds an empty line at byte %zu", i);
    }
    return 0;
}

char *jx_note_sign(const char *text, size_t text_len, const char *key_name, EVP_PKEY *key,
                   size_t *note_len, jx_error *err)
{
    if (!valid_key_name(key_name)) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "key name \"%s\" must be non-empty, without spaces or '+'", key_name);
        return NULL;
    }
    if (check_text(text, text_len, err) != 0)
        return NULL;
    uint8_t blob[4 + ED25519_SIG];
    if (jx_note_key_id(key_name, key, blob, err) != 0)
        return NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = ED25519_SIG;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, blob + 4, &sig_len, (const uint8_t *)text, text_len) == 1 &&
             sig_len == ED25519_SIG;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        jx_error_set_openssl(err, JX_ERR_KEY, "Ed25519 signing with key %s failed", key_name);
        return NULL;
    }
    char encoded[128];
    jx_base64_encode(blob, sizeof blob, encoded);
    size_t len = text_len + 1 + EM_DASH_SPACE_LEN + strlen(key_name) + 1 + strlen(encoded) + 1;
    char *note = malloc(len + 1);
    if (!note) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory");
        return NULL;
    }
    memcpy(note, text, text_len);
    snprintf(note + text_len, len + 1 - text_len, "\n" EM_DASH_SPACE "%s %s\n", key_name, encoded);
    if (note_len)
        *note_len = len;
    return note;
}

size_t jx_note_extent(const char *text, size_t len, bool *complete)
{
    *complete = false;
    const char *blank = memmem(text, len, "\n\n", 2);
    if (!blank)
        return len;
    size_t at = (size_t)(blank - text) + 2;
    size_t end = 0;
    while (at < len) {
        if (len - at < EM_DASH_SPACE_LEN || memcmp(text + at, EM_DASH_SPACE, EM_DASH_SPACE_LEN))
            break;
        const char *newline = memchr(text + at, '\n', len - at);
        if (!newline)
            return len; /* a signature line cut short */
        at = (size_t)(newline - text) + 1;
        end = at;
    }
    if (end == 0)
        return len;
    *complete = true;
    return end;
}

int jx_note_open(const char *note, size_t note_len, const char *key_name, EVP_PKEY *key,
                 size_t *text_len, char signer[JX_NOTE_NAME_MAX], jx_error *err)
{
    if (note_len > JX_NOTE_MAX)
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID, "note of %zu bytes is too long",
                            note_len);
    if (memchr(note, '\0', note_len))
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID, "note holds a NUL byte");
    /* The text ends at the last blank line (c2sp.org/signed-note). */
    size_t split = 0;
    bool found = false;
    for (size_t i = note_len; i-- > 1;)
        if (note[i] == '\n' && note[i - 1] == '\n') {
            split = i; /* note[split] is the blank line's newline */
            found = true;
            break;
        }
    if (!found || note_len == 0 || note[note_len - 1] != '\n')
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                            "note has no blank line before its signatures or does not end "
                            "with a newline");
    size_t tlen = split;
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)note[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "note text holds control character 0x%02x at byte %zu", c, i);
    }
    uint8_t want_id[4];
    bool verified = false;
    size_t at = split + 1;
    int lines = 0;
    while (at < note_len) {
        const char *newline = memchr(note + at, '\n', note_len - at);
        size_t line_len = (size_t)(newline - (note + at));
        const char *line = note + at;
        if (++lines > 100)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID, "note has over 100 signatures");
        if (line_len < EM_DASH_SPACE_LEN || memcmp(line, EM_DASH_SPACE, EM_DASH_SPACE_LEN) != 0)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "line at byte %zu of the note is not a signature line", at);
        const char *name = line + EM_DASH_SPACE_LEN;
        const char *space = memchr(name, ' ', line_len - EM_DASH_SPACE_LEN);
        if (!space || space == name || (size_t)(space - name) >= JX_NOTE_NAME_MAX)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "signature line at byte %zu has no key name", at);
        char this_name[JX_NOTE_NAME_MAX];
        memcpy(this_name, name, (size_t)(space - name));
        this_name[space - name] = '\0';
        const char *b64 = space + 1;
        size_t b64_len = (size_t)(line + line_len - b64);
        uint8_t blob[MAX_SIGNATURE];
        size_t blob_len = 0;
        if (!valid_key_name(this_name) ||
            !jx_base64_decode(b64, b64_len, blob, sizeof blob, &blob_len) || blob_len < 5)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "signature line at byte %zu is malformed", at);
        at += line_len + 1;
        /* Lines from other keys (witnesses, rotated keys) are ignored. */
        if (key_name && strcmp(this_name, key_name) != 0)
            continue;
        if (jx_note_key_id(this_name, key, want_id, err) != 0)
            return -1;
        if (memcmp(blob, want_id, 4) != 0)
            continue;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok = ctx && blob_len == 4 + ED25519_SIG &&
                 EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
                 EVP_DigestVerify(ctx, blob + 4, ED25519_SIG, (const uint8_t *)note, tlen) == 1;
        EVP_MD_CTX_free(ctx);
        if (!ok)
            return jx_error_set_openssl(err, JX_ERR_CHECKPOINT_INVALID,
                                        "signature by %s does not verify", this_name);
        if (!verified && signer)
            snprintf(signer, JX_NOTE_NAME_MAX, "%s", this_name);
        verified = true;
    }
    if (!verified)
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                            key_name ? "note carries no signature by key %s"
                                     : "note carries no signature by the given key%s",
                            key_name ? key_name : "");
    *text_len = tlen;
    return 0;
}

char *jx_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[JX_HASH_SIZE],
                         int64_t time_ms, EVP_PKEY *key, size_t *note_len, jx_error *err)
{
    char root64[64];
    jx_base64_encode(root, JX_HASH_SIZE, root64);
    char text[JX_NOTE_NAME_MAX + 128];
    int len = snprintf(text, sizeof text, "%s\n%" PRIu64 "\n%s\ntime %" PRId64 "\n", origin, size,
                       root64, time_ms);
    if (len < 0 || (size_t)len >= sizeof text) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "checkpoint origin is too long");
        return NULL;
    }
    return jx_note_sign(text, (size_t)len, origin, key, note_len, err);
}

/* Decimal without sign or leading zeros ("0" alone is fine). */
static bool parse_decimal(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return false;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *out = value;
    return true;
}

int jx_checkpoint_parse(const char *note, size_t len, jx_checkpoint *out, jx_error *err)
{
    memset(out, 0, sizeof *out);
    out->time_ms = -1;
    const char *lines[3];
    size_t lengths[3];
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        const char *newline = at < len ? memchr(note + at, '\n', len - at) : NULL;
        if (!newline)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "checkpoint has fewer than three lines");
        lines[i] = note + at;
        lengths[i] = (size_t)(newline - lines[i]);
        at += lengths[i] + 1;
    }
    if (lengths[0] == 0 || lengths[0] >= JX_NOTE_NAME_MAX)
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                            "checkpoint origin line is empty "
                            "or too long");
    memcpy(out->origin, lines[0], lengths[0]);
    out->origin[lengths[0]] = '\0';
    if (!parse_decimal(lines[1], lengths[1], &out->size))
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                            "checkpoint tree size \"%.*s\" is not a decimal number",
                            (int)(lengths[1] > 40 ? 40 : lengths[1]), lines[1]);
    size_t root_len = 0;
    if (!jx_base64_decode(lines[2], lengths[2], out->root, sizeof out->root, &root_len) ||
        root_len != JX_HASH_SIZE)
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                            "checkpoint root hash is not 32 bytes of base64");
    /* Extension lines until the blank line; only "time" means something. */
    while (at < len && note[at] != '\n') {
        const char *newline = memchr(note + at, '\n', len - at);
        if (!newline)
            return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                                "checkpoint text does not end with a newline");
        size_t line_len = (size_t)(newline - (note + at));
        uint64_t time_ms;
        if (line_len > 5 && memcmp(note + at, "time ", 5) == 0 &&
            parse_decimal(note + at + 5, line_len - 5, &time_ms) && time_ms <= INT64_MAX)
            out->time_ms = (int64_t)time_ms;
        at += line_len + 1;
    }
    return 0;
}

int jx_checkpoint_verify(const char *note, size_t len, EVP_PKEY *public_key, const char *origin,
                         jx_checkpoint *out, jx_error *err)
{
    jx_checkpoint parsed;
    size_t text_len = 0;
    if (jx_checkpoint_parse(note, len, &parsed, err) != 0)
        return -1;
    if (origin && strcmp(parsed.origin, origin) != 0)
        return jx_error_set(err, JX_ERR_CHECKPOINT_INVALID,
                            "checkpoint origin is \"%s\", expected \"%s\"", parsed.origin, origin);
    /* The log's key name is its origin (c2sp.org/tlog-checkpoint). */
    if (jx_note_open(note, len, parsed.origin, public_key, &text_len, parsed.key_name, err) != 0)
        return -1;
    if (out)
        *out = parsed;
    return 0;
}
