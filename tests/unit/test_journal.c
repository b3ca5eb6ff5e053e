/* test_journal.c — the journal on real files: append, reopen, recover, prove.
 *
 * Each test works in its own fresh directory under the build tree. Damage
 * is done the way it happens: bytes cut off the end (a torn write), bytes
 * flipped in the middle (media error or tampering), files removed.
 */
#include "checkpoint.h"
#include "journal.h"
#include "merkle.h"
#include "segment.h"

#include "justx/v1/journal.pb-c.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char test_dir[1024];

static int make_dir(void **state)
{
    (void)state;
    static int counter;
    snprintf(test_dir, sizeof test_dir, "%s/test-journal-%d-%d", JX_BINARY_DIR, (int)getpid(),
             counter++);
    char command[1200];
    snprintf(command, sizeof command, "rm -rf '%s'", test_dir);
    return system(command);
}

static int remove_dir(void **state)
{
    (void)state;
    char command[1200];
    snprintf(command, sizeof command, "rm -rf '%s'", test_dir);
    return system(command);
}

static void segment_path(char *out, size_t len, uint32_t number)
{
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, number);
    snprintf(out, len, "%s/%s", test_dir, name);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void flip_byte(const char *path, off_t offset)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, offset), 1);
    byte ^= 0x20;
    assert_int_equal(pwrite(fd, &byte, 1, offset), 1);
    close(fd);
}

/* Byte offset of frame k in a segment file, found by walking the frames. */
static off_t frame_offset(const char *path, unsigned k)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    static uint8_t bytes[1 << 20];
    size_t len = fread(bytes, 1, sizeof bytes, file);
    fclose(file);
    size_t at = JX_SEGMENT_HEADER_SIZE;
    for (unsigned i = 0; i < k; i++) {
        const uint8_t *record;
        uint32_t record_len;
        size_t frame_len;
        assert_int_equal(jx_frame_parse(bytes + at, len - at, &record, &record_len, &frame_len),
                         JX_FRAME_OK);
        at += frame_len;
    }
    return (off_t)at;
}

static void cut_file(const char *path, off_t size)
{
    assert_int_equal(truncate(path, size), 0);
}

/* A recognisable record: message id "m-<n>", sender alternating. */
static jx_journal_entry make_entry(uint64_t n, char *id, size_t id_len)
{
    snprintf(id, id_len, "m-%llu", (unsigned long long)n);
    static const uint8_t digest[32] = {1, 2, 3};
    jx_journal_entry entry = {
        .event = (n % 3 == 0) ? JX_EVENT_ACCEPTED : JX_EVENT_DELIVERED,
        .time_ms = 1700000000000 + (int64_t)n,
        .message_id = id,
        .sender = n % 2 ? "KG-PROBATION" : "KG-COURT-BISHKEK",
        .recipient = "LV-PROBATION",
        .type = "justx.v1.SentenceOrder",
        .case_id = "CASE-1",
        .payload_sha256 = digest,
    };
    return entry;
}

static void append_records(jx_journal *journal, uint64_t from, uint64_t count)
{
    for (uint64_t n = from; n < from + count; n++) {
        char id[32];
        jx_journal_entry entry = make_entry(n, id, sizeof id);
        uint64_t index;
        jx_error err;
        if (jx_journal_append(journal, &entry, 1, &index, &err) != 0)
            fail_msg("%s", err.message);
        assert_int_equal(index, n);
    }
}

static void check_record(jx_journal *journal, uint64_t n)
{
    uint8_t *bytes;
    size_t len;
    jx_error err;
    if (jx_journal_read(journal, n, &bytes, &len, &err) != 0)
        fail_msg("%s", err.message);
    Justx__V1__JournalRecord *record = justx__v1__journal_record__unpack(NULL, len, bytes);
    assert_non_null(record);
    char id[32];
    snprintf(id, sizeof id, "m-%llu", (unsigned long long)n);
    assert_int_equal(record->index, n);
    assert_string_equal(record->message_id, id);
    assert_int_equal(record->time_ms, 1700000000000 + (int64_t)n);
    /* The tree's leaf is the hash of exactly these bytes. */
    uint8_t leaf[JX_HASH_SIZE], stored[JX_HASH_SIZE];
    jx_merkle_leaf_hash(bytes, len, leaf);
    assert_int_equal(jx_journal_leaf_hash(journal, n, stored, &err), 0);
    assert_memory_equal(leaf, stored, JX_HASH_SIZE);
    justx__v1__journal_record__free_unpacked(record, NULL);
    free(bytes);
}

static jx_journal *open_journal(uint64_t segment_max, jx_journal_recovery *recovery)
{
    jx_journal_options options = {.segment_max_bytes = segment_max};
    jx_error err;
    jx_journal *journal = jx_journal_open(test_dir, &options, recovery, &err);
    if (!journal)
        fail_msg("%s", err.message);
    return journal;
}

static EVP_PKEY *gateway_key(void)
{
    jx_error err;
    EVP_PKEY *key = jx_checkpoint_load_private_key(JX_PKI_DIR "/gateway.key", &err);
    if (!key)
        fail_msg("%s", err.message);
    return key;
}

static void test_append_reopen_iterate(void **state)
{
    (void)state;
    jx_journal_recovery recovery;
    jx_journal *journal = open_journal(0, &recovery);
    struct stat st;
    assert_int_equal(stat(test_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(recovery.records, 0);
    append_records(journal, 0, 100);
    assert_int_equal(jx_journal_size(journal), 100);
    assert_int_equal(jx_journal_durable_size(journal), 100);
    uint8_t root_before[JX_HASH_SIZE];
    jx_error err;
    assert_int_equal(jx_journal_root(journal, 100, root_before, &err), 0);
    jx_journal_destroy(&journal);
    jx_journal_destroy(&journal); /* safe twice */

    journal = open_journal(0, &recovery);
    assert_int_equal(recovery.records, 100);
    assert_false(recovery.torn_tail);
    /* A clean close left a tree.state hint: nothing had to be rehashed. */
    assert_int_equal(recovery.rehashed, 0);
    for (uint64_t n = 0; n < 100; n++)
        check_record(journal, n);
    uint8_t root_after[JX_HASH_SIZE];
    assert_int_equal(jx_journal_root(journal, 100, root_after, &err), 0);
    assert_memory_equal(root_before, root_after, JX_HASH_SIZE);
    /* Appending continues the sequence. */
    append_records(journal, 100, 5);
    check_record(journal, 104);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(jx_journal_read(journal, 105, &bytes, &len, &err), -1);
    assert_int_equal(err.code, JX_ERR_NOT_FOUND);
    /* A second writer is locked out. */
    assert_null(jx_journal_open(test_dir, NULL, NULL, &err));
    assert_int_equal(err.code, JX_ERR_IO);
    jx_journal_destroy(&journal);
}

typedef struct {
    uint64_t next;
    uint64_t stop_at;
} iteration;

static int visit_record(void *ctx, uint64_t index, const uint8_t *record, size_t record_len)
{
    iteration *it = ctx;
    assert_int_equal(index, it->next);
    Justx__V1__JournalRecord *decoded = justx__v1__journal_record__unpack(NULL, record_len, record);
    assert_non_null(decoded);
    assert_int_equal(decoded->index, index);
    justx__v1__journal_record__free_unpacked(decoded, NULL);
    it->next++;
    return index == it->stop_at ? 7 : 0;
}

static void test_iterate(void **state)
{
    (void)state;
    jx_journal *journal = open_journal(4096, NULL);
    append_records(journal, 0, 120);
    jx_error err;
    iteration it = {.next = 35, .stop_at = UINT64_MAX};
    assert_int_equal(jx_journal_iterate(journal, 35, visit_record, &it, &err), 0);
    assert_int_equal(it.next, 120);
    it = (iteration){.next = 0, .stop_at = 10};
    assert_int_equal(jx_journal_iterate(journal, 0, visit_record, &it, &err), 7);
    assert_int_equal(it.next, 11);
    it = (iteration){.next = 120, .stop_at = UINT64_MAX};
    assert_int_equal(jx_journal_iterate(journal, 120, visit_record, &it, &err), 0);
    assert_int_equal(it.next, 120);
    jx_journal_destroy(&journal);
}

static void test_group_commit(void **state)
{
    (void)state;
    jx_journal *journal = open_journal(0, NULL);
    jx_journal_entry entries[50];
    char ids[50][32];
    for (int i = 0; i < 50; i++)
        entries[i] = make_entry((uint64_t)i, ids[i], sizeof ids[i]);
    uint64_t first = 99;
    jx_error err;
    assert_int_equal(jx_journal_append(journal, entries, 50, &first, &err), 0);
    assert_int_equal(first, 0);
    assert_int_equal(jx_journal_durable_size(journal), 50);
    for (int i = 0; i < 50; i++)
        entries[i] = make_entry((uint64_t)(50 + i), ids[i], sizeof ids[i]);
    /* Without sync: appended and readable, not yet durable. */
    assert_int_equal(jx_journal_append_nosync(journal, entries, 20, &first, &err), 0);
    assert_int_equal(first, 50);
    assert_int_equal(jx_journal_size(journal), 70);
    assert_int_equal(jx_journal_durable_size(journal), 50);
    check_record(journal, 69);
    assert_int_equal(jx_journal_append_nosync(journal, entries + 20, 30, &first, &err), 0);
    assert_int_equal(first, 70);
    assert_int_equal(jx_journal_sync(journal, &err), 0);
    assert_int_equal(jx_journal_durable_size(journal), 100);
    for (uint64_t n = 0; n < 100; n++)
        check_record(journal, n);
    jx_journal_destroy(&journal);
}

static void test_segment_rollover(void **state)
{
    (void)state;
    /* 4 KiB segments hold about 40 of these records. */
    jx_journal *journal = open_journal(4096, NULL);
    jx_journal_entry entries[300];
    char ids[300][32];
    for (int i = 0; i < 300; i++)
        entries[i] = make_entry((uint64_t)i, ids[i], sizeof ids[i]);
    jx_error err;
    assert_int_equal(jx_journal_append(journal, entries, 150, NULL, &err), 0);
    append_records(journal, 150, 150);
    char path[1200];
    int segments = 0;
    for (uint32_t s = 0;; s++) {
        segment_path(path, sizeof path, s);
        if (access(path, F_OK) != 0)
            break;
        assert_true(file_size(path) <= 4096);
        segments++;
    }
    assert_true(segments >= 5);
    jx_journal_destroy(&journal);
    jx_journal_recovery recovery;
    journal = open_journal(4096, &recovery);
    assert_int_equal(recovery.records, 300);
    for (uint64_t n = 0; n < 300; n++)
        check_record(journal, n);
    jx_journal_destroy(&journal);

    /* A missing segment in the middle refuses to open, naming it. */
    segment_path(path, sizeof path, 2);
    assert_int_equal(unlink(path), 0);
    assert_null(jx_journal_open(test_dir, NULL, NULL, &err));
    assert_int_equal(err.code, JX_ERR_JOURNAL_CORRUPT);
    assert_non_null(strstr(err.message, "journal-00000002.seg"));
}

static void test_torn_tail(void **state)
{
    (void)state;
    jx_journal *journal = open_journal(0, NULL);
    append_records(journal, 0, 20);
    jx_journal_destroy(&journal);
    char path[1200];
    segment_path(path, sizeof path, 0);
    off_t full = file_size(path);
    /* Cut the last record short by a few bytes: a write torn by a crash. */
    cut_file(path, full - 5);
    jx_journal_recovery recovery;
    journal = open_journal(0, &recovery);
    assert_true(recovery.torn_tail);
    assert_int_equal(recovery.records, 19);
    assert_string_equal(recovery.torn_segment, "journal-00000000.seg");
    assert_int_equal(recovery.torn_bytes + recovery.torn_offset, (uint64_t)full - 5);
    assert_int_equal(file_size(path), (off_t)recovery.torn_offset);
    for (uint64_t n = 0; n < 19; n++)
        check_record(journal, n);
    /* The index of the lost record is given out again. */
    append_records(journal, 19, 3);
    jx_journal_destroy(&journal);

    /* Garbage after the last record (a torn frame header) is cut too. */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "JXR1\0\0", 6), 6);
    close(fd);
    journal = open_journal(0, &recovery);
    assert_true(recovery.torn_tail);
    assert_int_equal(recovery.torn_bytes, 6);
    assert_int_equal(recovery.records, 22);
    jx_journal_destroy(&journal);

    /* A corrupt (not short) last record is a torn tail as well. */
    off_t size = file_size(path);
    flip_byte(path, size - 2);
    journal = open_journal(0, &recovery);
    assert_true(recovery.torn_tail);
    assert_int_equal(recovery.records, 21);
    jx_journal_destroy(&journal);
}

static void test_corruption_in_the_middle(void **state)
{
    (void)state;
    jx_journal *journal = open_journal(0, NULL);
    append_records(journal, 0, 30);
    jx_journal_destroy(&journal);
    char path[1200];
    segment_path(path, sizeof path, 0);
    /* Flip a byte inside the body of the third record. */
    off_t total = file_size(path);
    off_t third = frame_offset(path, 2);
    flip_byte(path, third + 12);
    jx_error err;
    assert_null(jx_journal_open(test_dir, NULL, NULL, &err));
    assert_int_equal(err.code, JX_ERR_JOURNAL_CORRUPT);
    assert_non_null(strstr(err.message, "journal-00000000.seg"));
    char where[64];
    snprintf(where, sizeof where, "byte %lld ", (long long)third);
    assert_non_null(strstr(err.message, where));
    /* Nothing was cut: the damage is left for the auditor to see. */
    assert_int_equal(file_size(path), total);
    /* Read-only opening refuses as well. */
    jx_journal_options options = {.read_only = true};
    assert_null(jx_journal_open(test_dir, &options, NULL, &err));
    assert_int_equal(err.code, JX_ERR_JOURNAL_CORRUPT);
}

static void test_corruption_in_an_earlier_segment(void **state)
{
    (void)state;
    jx_journal *journal = open_journal(4096, NULL);
    append_records(journal, 0, 200);
    jx_journal_destroy(&journal);
    char path[1200];
    segment_path(path, sizeof path, 1);
    /* Cutting the end of a closed segment is not a torn tail. */
    cut_file(path, file_size(path) - 3);
    jx_error err;
    assert_null(jx_journal_open(test_dir, NULL, NULL, &err));
    assert_int_equal(err.code, JX_ERR_JOURNAL_CORRUPT);
    assert_non_null(strstr(err.message, "journal-00000001.seg"));
}

static void test_checkpoints_and_proofs(void **state)
{
    (void)state;
    EVP_PKEY *key = gateway_key();
    jx_journal *journal = open_journal(0, NULL);
    jx_error err;
    char *note = NULL;
    assert_int_equal(jx_journal_latest_checkpoint(journal, &note, NULL, NULL, NULL, &err), -1);
    assert_int_equal(err.code, JX_ERR_NOT_FOUND);
    append_records(journal, 0, 37);
    size_t note_len;
    assert_int_equal(
        jx_journal_checkpoint(journal, key, "justx/JX-GATEWAY", 0, &note, &note_len, &err), 0);
    EVP_PKEY *public_key = jx_checkpoint_load_public_key(JX_PKI_DIR "/gateway.pem", &err);
    assert_non_null(public_key);
    jx_checkpoint checkpoint;
    assert_int_equal(
        jx_checkpoint_verify(note, note_len, public_key, "justx/JX-GATEWAY", &checkpoint, &err), 0);
    assert_int_equal(checkpoint.size, 37);
    free(note);

    /* Every record's inclusion proof verifies against the signed root. */
    for (uint64_t n = 0; n < 37; n++) {
        uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE], leaf[JX_HASH_SIZE];
        size_t count;
        assert_int_equal(jx_journal_inclusion_proof(journal, n, 37, proof, &count, &err), 0);
        assert_int_equal(jx_journal_leaf_hash(journal, n, leaf, &err), 0);
        assert_int_equal(
            jx_merkle_verify_inclusion(n, 37, leaf, proof, count, checkpoint.root, &err), 0);
    }
    append_records(journal, 37, 26);
    assert_int_equal(jx_journal_checkpoint(journal, key, "justx/JX-GATEWAY", 0, NULL, NULL, &err),
                     0);
    uint8_t root63[JX_HASH_SIZE], proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
    size_t count;
    assert_int_equal(jx_journal_root(journal, 63, root63, &err), 0);
    assert_int_equal(jx_journal_consistency_proof(journal, 37, 63, proof, &count, &err), 0);
    assert_int_equal(
        jx_merkle_verify_consistency(37, 63, checkpoint.root, root63, proof, count, &err), 0);
    assert_int_equal(jx_journal_checkpoint_covering(journal, 62, &note, NULL, &err), 0);
    free(note);
    assert_int_equal(jx_journal_checkpoint_covering(journal, 63, &note, NULL, &err), -1);
    jx_journal_destroy(&journal);

    /* Reopen without tree.state: the checkpoint vouches for the tree file. */
    char path[1200];
    snprintf(path, sizeof path, "%s/tree.state", test_dir);
    assert_int_equal(unlink(path), 0);
    jx_journal_recovery recovery;
    journal = open_journal(0, &recovery);
    assert_int_equal(recovery.checkpoints, 2);
    assert_int_equal(recovery.rehashed, 0);
    jx_journal_destroy(&journal);
    /* Without the tree file at all (tree.state is back and now useless):
     * rebuilt from the records. */
    snprintf(path, sizeof path, "%s/tree.hashes", test_dir);
    assert_int_equal(unlink(path), 0);
    journal = open_journal(0, &recovery);
    assert_int_equal(recovery.rehashed, 63);
    uint8_t again[JX_HASH_SIZE];
    assert_int_equal(jx_journal_root(journal, 63, again, &err), 0);
    assert_memory_equal(again, root63, JX_HASH_SIZE);
    jx_journal_destroy(&journal);

    /* A torn checkpoint write is cut off at open. */
    snprintf(path, sizeof path, "%s/checkpoints", test_dir);
    off_t size = file_size(path);
    cut_file(path, size - 10);
    journal = open_journal(0, &recovery);
    assert_true(recovery.torn_checkpoint);
    assert_int_equal(recovery.checkpoints, 1);
    uint64_t latest_size;
    assert_int_equal(jx_journal_latest_checkpoint(journal, NULL, NULL, &latest_size, NULL, &err),
                     0);
    assert_int_equal(latest_size, 37);
    jx_journal_destroy(&journal);

    /* Records gone that a checkpoint covers: refused, never papered over. */
    char segment[1200];
    segment_path(segment, sizeof segment, 0);
    cut_file(segment, frame_offset(segment, 30) + 7);
    assert_null(jx_journal_open(test_dir, NULL, NULL, &err));
    assert_int_equal(err.code, JX_ERR_JOURNAL_CORRUPT);
    assert_non_null(strstr(err.message, "checkpoint"));
    EVP_PKEY_free(public_key);
    EVP_PKEY_free(key);
}

static void test_read_only(void **state)
{
    (void)state;
    jx_journal *journal = open_journal(0, NULL);
    append_records(journal, 0, 10);
    uint8_t root[JX_HASH_SIZE];
    jx_error err;
    assert_int_equal(jx_journal_root(journal, 10, root, &err), 0);
    jx_journal_destroy(&journal);
    char path[1200];
    segment_path(path, sizeof path, 0);
    off_t size = file_size(path);
    cut_file(path, size - 4);
    /* Read-only: the torn tail is ignored, not cut, and the stale tree is
     * rebuilt in a temporary file. */
    jx_journal_options options = {.read_only = true};
    jx_journal_recovery recovery;
    journal = jx_journal_open(test_dir, &options, &recovery, &err);
    assert_non_null(journal);
    assert_true(recovery.torn_tail);
    assert_int_equal(recovery.records, 9);
    assert_int_equal(file_size(path), size - 4);
    check_record(journal, 8);
    char id[32];
    jx_journal_entry entry = make_entry(9, id, sizeof id);
    assert_int_equal(jx_journal_append(journal, &entry, 1, NULL, &err), -1);
    jx_journal_destroy(&journal);
}

static void test_event_names(void **state)
{
    (void)state;
    assert_string_equal(jx_journal_event_name(JX_EVENT_GATEWAY_STOPPED), "GATEWAY_STOPPED");
    assert_int_equal(jx_journal_event_from_name("delivered"), JX_EVENT_DELIVERED);
    assert_int_equal(jx_journal_event_from_name("nonsense"), JX_EVENT_UNSPECIFIED);
    assert_null(jx_journal_event_name((jx_journal_event)99));
    /* The C enum mirrors the schema's. */
    assert_int_equal(JX_EVENT_CONFIG_CHANGED, JUSTX__V1__JOURNAL_RECORD__EVENT__CONFIG_CHANGED);
    assert_int_equal(JX_EVENT_GATEWAY_STOPPED, JUSTX__V1__JOURNAL_RECORD__EVENT__GATEWAY_STOPPED);
}

static void test_crc32c(void **state)
{
    (void)state;
    /* The CRC-32C check value (RFC 3720 appendix B.4 and every CRC catalogue). */
    assert_int_equal(jx_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(jx_crc32c(0, zeros, 32), 0x8A9136AAu);
    /* Incremental equals one-shot. */
    assert_int_equal(jx_crc32c(jx_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_event_names),
        cmocka_unit_test_setup_teardown(test_append_reopen_iterate, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_group_commit, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_iterate, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_segment_rollover, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_torn_tail, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_corruption_in_the_middle, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_corruption_in_an_earlier_segment, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_checkpoints_and_proofs, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_read_only, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
