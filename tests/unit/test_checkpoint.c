/* test_checkpoint.c — C2SP signed notes and checkpoints.
 *
 * The known answer is the example of Go's golang.org/x/mod/sumdb/note (also
 * used by other C2SP implementations): the "PeterNeumann" key pair, its
 * verifier key with key ID c74f20a3, and the signed note. Ed25519 is
 * deterministic, so signing the same text must give the same bytes; that
 * shows the key ID rule and the signature line match the ecosystem's.
 */
#include "base64.h"
#include "checkpoint.h"
#include "merkle.h"

#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char go_private[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char go_verifier[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char go_text[] = "If you think cryptography is the answer to your problem,\n"
                              "then you don't know what your problem is.\n";
static const char go_note[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

static EVP_PKEY *go_key(void)
{
    uint8_t raw[33];
    size_t len = 0;
    assert_true(jx_base64_decode(go_private, strlen(go_private), raw, sizeof raw, &len));
    assert_int_equal(len, 33);
    assert_int_equal(raw[0], 0x01); /* signature type Ed25519 */
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 1, 32);
    assert_non_null(key);
    return key;
}

static EVP_PKEY *pki_key(const char *name, bool private_key)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", JX_PKI_DIR, name);
    jx_error err;
    EVP_PKEY *key = private_key ? jx_checkpoint_load_private_key(path, &err)
                                : jx_checkpoint_load_public_key(path, &err);
    if (!key)
        fail_msg("%s", err.message);
    return key;
}

static void test_go_known_answer(void **state)
{
    (void)state;
    EVP_PKEY *key = go_key();
    jx_error err;
    char *vkey = jx_note_verifier_key("PeterNeumann", key, &err);
    assert_non_null(vkey);
    assert_string_equal(vkey, go_verifier);
    free(vkey);

    size_t note_len = 0;
    char *note = jx_note_sign(go_text, strlen(go_text), "PeterNeumann", key, &note_len, &err);
    assert_non_null(note);
    assert_int_equal(note_len, strlen(go_note));
    assert_string_equal(note, go_note);
    free(note);

    size_t text_len = 0;
    char signer[JX_NOTE_NAME_MAX];
    assert_int_equal(
        jx_note_open(go_note, strlen(go_note), "PeterNeumann", key, &text_len, signer, &err), 0);
    assert_int_equal(text_len, strlen(go_text));
    assert_string_equal(signer, "PeterNeumann");
    assert_int_equal(jx_note_open(go_note, strlen(go_note), NULL, key, &text_len, signer, &err), 0);

    /* One changed character in the text breaks it. */
    char tampered[sizeof go_note];
    memcpy(tampered, go_note, sizeof go_note);
    tampered[12] = 'C';
    assert_int_equal(
        jx_note_open(tampered, strlen(tampered), "PeterNeumann", key, &text_len, signer, &err), -1);
    assert_int_equal(err.code, JX_ERR_CHECKPOINT_INVALID);
    /* Another name: the key ID differs, so no signature by that key. */
    assert_int_equal(
        jx_note_open(go_note, strlen(go_note), "PeterNeumannX", key, &text_len, signer, &err), -1);
    EVP_PKEY_free(key);
}

static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *private_key = pki_key("gateway.key", true);
    EVP_PKEY *public_key = pki_key("gateway.pem", false); /* from the certificate */
    uint8_t root[JX_HASH_SIZE];
    jx_merkle_leaf_hash("x", 1, root);
    jx_error err;
    size_t len = 0;
    char *note =
        jx_checkpoint_sign("justx/JX-GATEWAY", 12345, root, 1700000000123, private_key, &len, &err);
    assert_non_null(note);
    assert_int_equal(strlen(note), len);
    /* Body layout: origin, size, base64 root, time extension, blank line. */
    char root64[64];
    jx_base64_encode(root, sizeof root, root64);
    char expected_body[256];
    snprintf(expected_body, sizeof expected_body,
             "justx/JX-GATEWAY\n12345\n%s\ntime 1700000000123\n\n\xE2\x80\x94 justx/JX-GATEWAY ",
             root64);
    assert_memory_equal(note, expected_body, strlen(expected_body));

    jx_checkpoint checkpoint;
    assert_int_equal(
        jx_checkpoint_verify(note, len, public_key, "justx/JX-GATEWAY", &checkpoint, &err), 0);
    assert_string_equal(checkpoint.origin, "justx/JX-GATEWAY");
    assert_int_equal(checkpoint.size, 12345);
    assert_memory_equal(checkpoint.root, root, JX_HASH_SIZE);
    assert_int_equal(checkpoint.time_ms, 1700000000123);
    assert_int_equal(jx_checkpoint_verify(note, len, public_key, NULL, &checkpoint, &err), 0);

    /* Wrong origin expected. */
    assert_int_equal(jx_checkpoint_verify(note, len, public_key, "justx/OTHER", &checkpoint, &err),
                     -1);
    /* Changed size: signature fails. */
    char *tampered = strdup(note);
    char *size_line = strstr(tampered, "12345");
    size_line[4] = '6';
    assert_int_equal(jx_checkpoint_verify(tampered, len, public_key, NULL, &checkpoint, &err), -1);
    assert_int_equal(err.code, JX_ERR_CHECKPOINT_INVALID);
    free(tampered);
    /* Another Ed25519 key (TEST-ED25519's) does not verify it. */
    EVP_PKEY *other = pki_key("TEST-ED25519.pem", false);
    assert_int_equal(jx_checkpoint_verify(note, len, other, NULL, &checkpoint, &err), -1);
    EVP_PKEY_free(other);
    /* A replaced signature: same key ID, other signature bytes. */
    tampered = strdup(note);
    char *sig = strstr(tampered, "\xE2\x80\x94 justx/JX-GATEWAY ") + 4 + 17;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    assert_int_equal(jx_checkpoint_verify(tampered, len, public_key, NULL, &checkpoint, &err), -1);
    free(tampered);

    /* Non-Ed25519 keys are refused when loading. */
    char path[1024];
    snprintf(path, sizeof path, "%s/KG-PROBATION.pem", JX_PKI_DIR);
    assert_null(jx_checkpoint_load_public_key(path, &err));
    assert_int_equal(err.code, JX_ERR_KEY);

    free(note);
    EVP_PKEY_free(private_key);
    EVP_PKEY_free(public_key);
}

static void test_note_extent(void **state)
{
    (void)state;
    EVP_PKEY *key = pki_key("gateway.key", true);
    uint8_t root[JX_HASH_SIZE] = {0};
    jx_error err;
    size_t len1, len2;
    char *one = jx_checkpoint_sign("o", 1, root, 1, key, &len1, &err);
    char *two = jx_checkpoint_sign("o", 2, root, 2, key, &len2, &err);
    assert_non_null(one);
    assert_non_null(two);
    char file[1024];
    memcpy(file, one, len1);
    memcpy(file + len1, two, len2);
    bool complete;
    assert_int_equal(jx_note_extent(file, len1 + len2, &complete), len1);
    assert_true(complete);
    assert_int_equal(jx_note_extent(file + len1, len2, &complete), len2);
    assert_true(complete);
    /* Every cut inside the second note is incomplete. */
    for (size_t cut = 1; cut < len2; cut++) {
        size_t extent = jx_note_extent(file + len1, cut, &complete);
        assert_false(complete);
        assert_int_equal(extent, cut);
    }
    jx_checkpoint parsed;
    assert_int_equal(jx_checkpoint_parse(two, len2, &parsed, &err), 0);
    assert_int_equal(parsed.size, 2);
    /* Malformed texts. */
    assert_int_equal(jx_checkpoint_parse("o\n01\nAAAA\n", 10, &parsed, &err), -1);
    assert_int_equal(jx_checkpoint_parse("o\n1\nAAAA\n", 9, &parsed, &err), -1);
    assert_int_equal(jx_checkpoint_parse("o\n1\n", 4, &parsed, &err), -1);
    /* A text with a blank line or a control character is never signed. */
    assert_null(jx_note_sign("a\n\nb\n", 5, "o", key, NULL, &err));
    assert_null(jx_note_sign("a\tb\n", 4, "o", key, NULL, &err));
    assert_null(jx_note_sign("a\n", 2, "bad name", key, NULL, &err));
    free(one);
    free(two);
    EVP_PKEY_free(key);
}

static void test_base64(void **state)
{
    (void)state;
    const char *vectors[][2] = {{"", ""},
                                {"f", "Zg=="},
                                {"fo", "Zm8="},
                                {"foo", "Zm9v"},
                                {"foob", "Zm9vYg=="},
                                {"fooba", "Zm9vYmE="},
                                {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char out[32];
        jx_base64_encode((const uint8_t *)vectors[i][0], strlen(vectors[i][0]), out);
        assert_string_equal(out, vectors[i][1]);
        uint8_t back[32];
        size_t len = 0;
        assert_true(jx_base64_decode(out, strlen(out), back, sizeof back, &len));
        assert_int_equal(len, strlen(vectors[i][0]));
        assert_memory_equal(back, vectors[i][0], len);
    }
    uint8_t out[8];
    size_t len;
    assert_false(jx_base64_decode("Zh==", 4, out, sizeof out, &len)); /* non-canonical */
    assert_false(jx_base64_decode("Zg=", 3, out, sizeof out, &len));
    assert_false(jx_base64_decode("Z!==", 4, out, sizeof out, &len));
    assert_false(jx_base64_decode("Zm9vYmFy", 8, out, 5, &len)); /* does not fit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_known_answer),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_note_extent),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
