/* bench_journal.c — how fast the audit journal makes records durable and proves them.
 *
 * 1. Durable appends per second: records of --size bytes (default 1 KiB, the
 *    serialized JournalRecord), appended in batches of --batch (default 256)
 *    with jx_journal_append: one fdatasync per batch (group commit). Every
 *    record is hashed into the Merkle tree on the way, as in the gateway.
 * 2. Inclusion proofs in a journal of --proof-records (default 1,000,000):
 *    the journal is built (fdatasync every 4096 records), closed, reopened
 *    (timed: the clean-close path, then without tree.state, i.e. rehashing
 *    every record), then --proofs random inclusion proofs at the full size
 *    are timed one by one (warm page cache), and again after evicting the
 *    tree file from the page cache before each proof (cold).
 *
 * Numbers go to stdout; nothing is asserted about them (STYLE.md: never a
 * timed test). The data directory is removed at the end unless --keep.
 *
 * usage: bench_journal [--dir DIR] [--records N] [--batch B] [--size BYTES]
 *                      [--proof-records M] [--proofs P] [--keep]
 */
#include "journal.h"
#include "merkle.h"

#include "justx/v1/journal.pb-c.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *option(int argc, char **argv, const char *name, const char *fallback)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

static bool flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

static void die(const char *what, const jx_error *err)
{
    fprintf(stderr, "bench_journal: %s: %s\n", what, err->message);
    exit(1);
}

/* An ACCEPTED-like record whose serialization is exactly size bytes (as far
 * as the index's varint length allows). */
typedef struct {
    uint8_t header[64 * 1024];
    uint8_t signature[64];
    uint8_t digest[32];
    char message_id[40];
    jx_journal_entry entry;
} bench_entry;

static size_t packed_size(const jx_journal_entry *entry, uint64_t index)
{
    Justx__V1__JournalRecord record = JUSTX__V1__JOURNAL_RECORD__INIT;
    record.index = index;
    record.event = (Justx__V1__JournalRecord__Event)entry->event;
    record.time_ms = entry->time_ms;
    record.message_id = (char *)entry->message_id;
    record.sender = (char *)entry->sender;
    record.type = (char *)entry->type;
    record.case_id = (char *)entry->case_id;
    record.header = (ProtobufCBinaryData){entry->header_len, (uint8_t *)entry->header};
    record.signature = (ProtobufCBinaryData){entry->signature_len, (uint8_t *)entry->signature};
    record.payload_sha256 = (ProtobufCBinaryData){32, (uint8_t *)entry->payload_sha256};
    return justx__v1__journal_record__get_packed_size(&record);
}

static void make_entry(bench_entry *b, size_t size)
{
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < sizeof b->header; i++)
        b->header[i] = (uint8_t)(i * 31 + 7);
    memset(b->signature, 0x5a, sizeof b->signature);
    memset(b->digest, 0xa5, sizeof b->digest);
    snprintf(b->message_id, sizeof b->message_id, "0190f3a2-7b1c-7d2e-9f00-123456789abc");
    b->entry = (jx_journal_entry){
        .event = JX_EVENT_ACCEPTED,
        .time_ms = 1735689600000,
        .message_id = b->message_id,
        .sender = "KG-COURT-BISHKEK",
        .type = "justx.v1.SentenceOrder",
        .case_id = "1-234/2025",
        .header = b->header,
        .header_len = 0,
        .signature = b->signature,
        .signature_len = sizeof b->signature,
        .payload_sha256 = b->digest,
    };
    size_t base = packed_size(&b->entry, 100000);
    size_t header_len = size > base + 3 ? size - base - 3 : 0;
    if (header_len > sizeof b->header)
        header_len = sizeof b->header;
    b->entry.header_len = header_len;
    while (b->entry.header_len > 0 && packed_size(&b->entry, 100000) > size)
        b->entry.header_len--;
    /* The header's length prefix grows in steps; fill up to the size. */
    while (b->entry.header_len + 1 < sizeof b->header) {
        b->entry.header_len++;
        if (packed_size(&b->entry, 100000) > size) {
            b->entry.header_len--;
            break;
        }
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void remove_tree(const char *dir)
{
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        fprintf(stderr, "bench_journal: could not remove %s\n", dir);
}

static void bench_appends(const char *dir, uint64_t records, size_t batch, size_t size)
{
    remove_tree(dir);
    jx_error err;
    jx_journal *journal = jx_journal_open(dir, NULL, NULL, &err);
    if (!journal)
        die("open", &err);
    bench_entry *b = malloc(sizeof *b);
    make_entry(b, size);
    jx_journal_entry *entries = malloc(batch * sizeof *entries);
    for (size_t i = 0; i < batch; i++)
        entries[i] = b->entry;
    size_t batches = (size_t)((records + batch - 1) / batch);
    double *latency = malloc(batches * sizeof *latency);
    double start = now_seconds();
    uint64_t done = 0;
    for (size_t k = 0; k < batches; k++) {
        size_t n = records - done < batch ? (size_t)(records - done) : batch;
        double t0 = now_seconds();
        if (jx_journal_append(journal, entries, n, NULL, &err) != 0)
            die("append", &err);
        latency[k] = now_seconds() - t0;
        done += n;
    }
    double elapsed = now_seconds() - start;
    /* Index 0 is omitted from the encoding (proto3 default); measure a
     * record further in. */
    uint8_t *record;
    size_t record_len;
    if (jx_journal_read(journal, records / 2, &record, &record_len, &err) != 0)
        die("read", &err);
    free(record);
    qsort(latency, batches, sizeof *latency, compare_double);
    printf("durable appends: %" PRIu64 " records of %zu bytes, batches of %zu (one fdatasync "
           "each)\n",
           records, record_len, batch);
    printf("  %.0f records/s, %.1f MB/s; %.3f s total\n", (double)records / elapsed,
           (double)records * (double)(record_len + 12) / elapsed / 1e6, elapsed);
    printf("  batch latency (append + fdatasync): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           latency[batches / 2] * 1e3, latency[batches * 99 / 100] * 1e3,
           latency[batches - 1] * 1e3);
    free(latency);
    free(entries);
    free(b);
    jx_journal_destroy(&journal);
}

static void time_proofs(jx_journal *journal, const char *dir, uint64_t size, int proofs, bool cold)
{
    char tree_path[4200];
    snprintf(tree_path, sizeof tree_path, "%s/tree.hashes", dir);
    int tree_fd = open(tree_path, O_RDONLY);
    double *times = malloc((size_t)proofs * sizeof *times);
    uint64_t seed = 88172645463325252u;
    uint8_t root[JX_HASH_SIZE];
    jx_error err;
    if (jx_journal_root(journal, size, root, &err) != 0)
        die("root", &err);
    size_t total_hashes = 0;
    for (int i = 0; i < proofs; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        uint64_t index = seed % size;
        uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE], leaf[JX_HASH_SIZE];
        size_t count;
        if (cold && tree_fd >= 0) {
            fdatasync(tree_fd);
            posix_fadvise(tree_fd, 0, 0, POSIX_FADV_DONTNEED);
        }
        double t0 = now_seconds();
        if (jx_journal_inclusion_proof(journal, index, size, proof, &count, &err) != 0)
            die("proof", &err);
        times[i] = now_seconds() - t0;
        total_hashes += count;
        /* Every proof is checked, outside the timing. */
        if (jx_journal_leaf_hash(journal, index, leaf, &err) != 0 ||
            jx_merkle_verify_inclusion(index, size, leaf, proof, count, root, &err) != 0)
            die("verify", &err);
    }
    double sum = 0;
    for (int i = 0; i < proofs; i++)
        sum += times[i];
    qsort(times, (size_t)proofs, sizeof *times, compare_double);
    printf("  %s page cache: %d random proofs, %.1f hashes each: mean %.1f us, p50 %.1f us, "
           "p99 %.1f us, max %.1f us\n",
           cold ? "cold (tree file evicted before each)" : "warm", proofs,
           (double)total_hashes / proofs, sum / proofs * 1e6, times[proofs / 2] * 1e6,
           times[proofs * 99 / 100] * 1e6, times[proofs - 1] * 1e6);
    free(times);
    if (tree_fd >= 0)
        close(tree_fd);
}

static void bench_proofs(const char *dir, uint64_t records, size_t size, int proofs)
{
    remove_tree(dir);
    jx_error err;
    jx_journal *journal = jx_journal_open(dir, NULL, NULL, &err);
    if (!journal)
        die("open", &err);
    bench_entry *b = malloc(sizeof *b);
    make_entry(b, size);
    enum { BUILD_BATCH = 4096 };
    jx_journal_entry *entries = malloc(BUILD_BATCH * sizeof *entries);
    for (size_t i = 0; i < BUILD_BATCH; i++)
        entries[i] = b->entry;
    double start = now_seconds();
    for (uint64_t done = 0; done < records;) {
        size_t n = records - done < BUILD_BATCH ? (size_t)(records - done) : BUILD_BATCH;
        if (jx_journal_append(journal, entries, n, NULL, &err) != 0)
            die("append", &err);
        done += n;
    }
    double built = now_seconds() - start;
    jx_journal_destroy(&journal);
    printf("inclusion proofs: journal of %" PRIu64 " records built in %.1f s\n", records, built);

    jx_journal_recovery recovery;
    start = now_seconds();
    journal = jx_journal_open(dir, NULL, &recovery, &err);
    if (!journal)
        die("reopen", &err);
    printf("  open after a clean close: %.2f s (%" PRIu64 " records rehashed)\n",
           now_seconds() - start, recovery.rehashed);
    jx_journal_destroy(&journal);
    char state[4200];
    snprintf(state, sizeof state, "%s/tree.state", dir);
    unlink(state);
    start = now_seconds();
    journal = jx_journal_open(dir, NULL, &recovery, &err);
    if (!journal)
        die("reopen", &err);
    printf("  open with no checkpoint or tree.state (as after a crash): %.2f s (%" PRIu64
           " records rehashed)\n",
           now_seconds() - start, recovery.rehashed);
    time_proofs(journal, dir, records, proofs, false);
    time_proofs(journal, dir, records, proofs, true);
    jx_journal_destroy(&journal);
    free(entries);
    free(b);
}

int main(int argc, char **argv)
{
    const char *dir = option(argc, argv, "--dir", "bench-journal-data");
    uint64_t records = strtoull(option(argc, argv, "--records", "200000"), NULL, 10);
    size_t batch = strtoul(option(argc, argv, "--batch", "256"), NULL, 10);
    size_t size = strtoul(option(argc, argv, "--size", "1024"), NULL, 10);
    uint64_t proof_records = strtoull(option(argc, argv, "--proof-records", "1000000"), NULL, 10);
    int proofs = atoi(option(argc, argv, "--proofs", "1000"));
    if (records == 0 || batch == 0 || proof_records == 0 || proofs <= 0 || size < 64) {
        fprintf(stderr, "bench_journal: counts must be positive and --size at least 64\n");
        return 2;
    }
    bench_appends(dir, records, batch, size);
    bench_proofs(dir, proof_records, size, proofs);
    if (!flag(argc, argv, "--keep"))
        remove_tree(dir);
    return 0;
}
