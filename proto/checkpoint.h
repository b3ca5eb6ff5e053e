/* checkpoint.h — signed tree heads as C2SP signed notes (tlog-checkpoint), Ed25519.
 *
 * A checkpoint is the note text
 *
 *     <origin>\n<tree size, decimal>\n<root hash, base64>\ntime <ms since epoch>\n
 *
 * followed by a blank line and one signature line per signer,
 *
 *     — <key name> base64(key ID || Ed25519 signature over the text)\n
 *
 * where the key ID is the first four bytes of SHA-256(key name || 0x0A ||
 * 0x01 || 32-byte public key) (c2sp.org/signed-note, signature type 0x01).
 * The "time" line is a tlog-checkpoint extension line: the gateway's clock
 * when it signed. The gateway signs with its key name equal to the origin.
 *
 * Verifying needs only the public key and, optionally, the expected name.
 */
#ifndef JX_CHECKPOINT_H
#define JX_CHECKPOINT_H

#include "error.h"
#include "merkle.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    JX_NOTE_NAME_MAX = 256,
    JX_NOTE_MAX = 64 * 1024, /* longest note accepted */
};

typedef struct {
    char origin[JX_NOTE_NAME_MAX];
    uint64_t size;
    uint8_t root[JX_HASH_SIZE];
    int64_t time_ms;                 /* -1 when the note has no time line */
    char key_name[JX_NOTE_NAME_MAX]; /* the name whose signature verified */
} jx_checkpoint;

/* Loads an Ed25519 public key from a PEM file holding a public key or an
 * X.509 certificate. KEY when the file is unusable or the key is not Ed25519. */
EVP_PKEY *jx_checkpoint_load_public_key(const char *path, jx_error *err);

/* Loads an Ed25519 private key (PEM). */
EVP_PKEY *jx_checkpoint_load_private_key(const char *path, jx_error *err);

/* The 4-byte key ID of (key_name, Ed25519 key). */
int jx_note_key_id(const char *key_name, EVP_PKEY *key, uint8_t id[4], jx_error *err);

/* The verifier key text "<name>+<hex key ID>+<base64(0x01 || public key)>"
 * that Go's sumdb/note and other C2SP tools accept. Caller frees. */
char *jx_note_verifier_key(const char *key_name, EVP_PKEY *key, jx_error *err);

/* Signs note text (non-empty, ending in "\n", no blank line) with key under
 * key_name. Returns the whole note, NUL-terminated; caller frees. */
char *jx_note_sign(const char *text, size_t text_len, const char *key_name, EVP_PKEY *key,
                   size_t *note_len, jx_error *err);

/* Checks note: well-formed, and a signature line whose key ID matches
 * (key_name, key) verifies. key_name NULL accepts any name whose key ID
 * matches this key. A signature from the key that fails rejects the note.
 * On success *text_len is the length of the signed text and signer (if not
 * NULL) receives the name. CHECKPOINT_INVALID otherwise. */
int jx_note_open(const char *note, size_t note_len, const char *key_name, EVP_PKEY *key,
                 size_t *text_len, char signer[JX_NOTE_NAME_MAX], jx_error *err);

/* Signs a checkpoint; the key name is the origin. Caller frees. */
char *jx_checkpoint_sign(const char *origin, uint64_t size, const uint8_t root[JX_HASH_SIZE],
                         int64_t time_ms, EVP_PKEY *key, size_t *note_len, jx_error *err);

/* Parses a checkpoint's text (or a whole note: the signatures are ignored)
 * without checking any signature. CHECKPOINT_INVALID when malformed. */
int jx_checkpoint_parse(const char *note, size_t len, jx_checkpoint *out, jx_error *err);

/* Verifies a signed checkpoint with public_key. origin NULL accepts any
 * origin, as long as the key name equals it; otherwise both must equal
 * origin. */
int jx_checkpoint_verify(const char *note, size_t len, EVP_PKEY *public_key, const char *origin,
                         jx_checkpoint *out, jx_error *err);

/* Finds the end of the note starting at text[0] in a file of concatenated
 * notes: its text, the blank line, and every following signature line.
 * Returns the note's length; *complete is false when the bytes end before
 * the note does (a torn final write), and the length is then all of len. */
size_t jx_note_extent(const char *text, size_t len, bool *complete);

#endif
