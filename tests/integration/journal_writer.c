/* journal_writer.c — test tool: make, damage and check journals.
 *
 *   journal_writer create DIR --key KEY --origin NAME --count N
 *                  [--batch B] [--checkpoint-every K] [--segment-size S]
 *       N deterministic records (record i: message "msg-i", case "CASE-(i/7)",
 *       varying event, sender and size), a checkpoint every K records and
 *       one at the end.
 *   journal_writer crash DIR --key KEY --origin NAME [--segment-size S] [--seed X]
 *       appends random batches forever; after each append returns prints
 *       "durable <last index>" (flushed): the contract the crash test checks.
 *   journal_writer check DIR --durable FILE
 *       opens the journal (recovery runs), and checks that every index listed
 *       as durable in FILE is there with the content it was written with.
 *   journal_writer frames DIR
 *       prints "<segment> <offset> <frame length> <index>" for every frame.
 *   journal_writer flip DIR SEGMENT OFFSET       xor one byte with 0x5a
 *   journal_writer delete DIR INDEX              remove one record's frame
 *   journal_writer swap DIR I J                  exchange two frames (same segment)
 *   journal_writer rewrite DIR INDEX             change record INDEX's sender and
 *       re-frame it with a valid checksum: tampering that checksums cannot see
 *
 * Record content is a pure function of the index, so check can tell a
 * record from a stranger.
 */
#include "checkpoint.h"
#include "journal.h"
#include "segment.h"

#include "justx/v1/journal.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *option(int argc, char **argv, const char *name, const char *fallback)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return fallback;
}

static void die(const char *what, const jx_error *err)
{
    fprintf(stderr, "journal_writer: %s: %s\n", what, err ? err->message : strerror(errno));
    exit(1);
}

/* Deterministic content of record index. */
typedef struct {
    char message_id[32];
    char case_id[32];
    uint8_t header[2048];
    size_t header_len;
    uint8_t digest[32];
    jx_journal_entry entry;
} made_entry;

static const char *const agencies[] = {"KG-COURT-BISHKEK", "KG-PROSECUTOR", "KG-PROBATION",
                                       "KG-PRISON", "LV-PROBATION"};

static void make_entry(uint64_t index, made_entry *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->message_id, sizeof m->message_id, "msg-%" PRIu64, index);
    snprintf(m->case_id, sizeof m->case_id, "CASE-%" PRIu64, index / 7);
    uint64_t x = index * 0x9E3779B97F4A7C15u + 1;
    m->header_len = (size_t)(x >> 40) % 1500;
    for (size_t i = 0; i < m->header_len; i++)
        m->header[i] = (uint8_t)(x >> (i % 56));
    for (int i = 0; i < 32; i++)
        m->digest[i] = (uint8_t)(index + (uint64_t)i);
    static const jx_journal_event events[] = {JX_EVENT_ACCEPTED, JX_EVENT_DELIVERED,
                                              JX_EVENT_ACKNOWLEDGED, JX_EVENT_REJECTED};
    jx_journal_event event = events[index % 4];
    m->entry = (jx_journal_entry){
        .event = event,
        .time_ms = 1735689600000 + (int64_t)index * 1000, /* 2025-01-01 onwards */
        .message_id = m->message_id,
        .sender = agencies[index % 5],
        .recipient = event == JX_EVENT_ACCEPTED ? NULL : agencies[(index + 2) % 5],
        .type = index % 2 ? "justx.v1.SentenceOrder" : "justx.v1.ProbationReferral",
        .case_id = m->case_id,
        .header = m->header,
        .header_len = m->header_len,
        .payload_sha256 = m->digest,
        .reason_code = event == JX_EVENT_REJECTED ? "BAD_SIGNATURE" : NULL,
        .reason = event == JX_EVENT_REJECTED ? "the signature does not verify" : NULL,
    };
}

static jx_journal *open_or_die(const char *dir, uint64_t segment_size)
{
    jx_journal_options options = {.segment_max_bytes = segment_size};
    jx_journal_recovery recovery;
    jx_error err;
    jx_journal *journal = jx_journal_open(dir, &options, &recovery, &err);
    if (!journal)
        die("open", &err);
    if (recovery.torn_tail)
        fprintf(stderr,
                "journal_writer: recovered: cut %" PRIu64 " torn bytes at byte %" PRIu64 " of %s\n",
                recovery.torn_bytes, recovery.torn_offset, recovery.torn_segment);
    return journal;
}

static int command_create(int argc, char **argv, const char *dir)
{
    const char *key_path = option(argc, argv, "--key", NULL);
    const char *origin = option(argc, argv, "--origin", "justx/JX-GATEWAY");
    uint64_t count = strtoull(option(argc, argv, "--count", "100"), NULL, 10);
    uint64_t batch = strtoull(option(argc, argv, "--batch", "16"), NULL, 10);
    uint64_t every = strtoull(option(argc, argv, "--checkpoint-every", "50"), NULL, 10);
    uint64_t segment = strtoull(option(argc, argv, "--segment-size", "0"), NULL, 10);
    jx_error err;
    EVP_PKEY *key = key_path ? jx_checkpoint_load_private_key(key_path, &err) : NULL;
    if (!key)
        die("--key", key_path ? &err : NULL);
    jx_journal *journal = open_or_die(dir, segment);
    made_entry *made = calloc(batch, sizeof *made);
    jx_journal_entry *entries = calloc(batch, sizeof *entries);
    uint64_t next_checkpoint = every;
    while (jx_journal_size(journal) < count) {
        uint64_t first = jx_journal_size(journal);
        uint64_t n = count - first < batch ? count - first : batch;
        if (every && first + n > next_checkpoint)
            n = next_checkpoint - first;
        for (uint64_t i = 0; i < n; i++) {
            make_entry(first + i, &made[i]);
            entries[i] = made[i].entry;
        }
        if (jx_journal_append(journal, entries, n, NULL, &err) != 0)
            die("append", &err);
        if (every && jx_journal_size(journal) == next_checkpoint) {
            if (jx_journal_checkpoint(journal, key, origin,
                                      1735689600000 + (int64_t)jx_journal_size(journal) * 1000,
                                      NULL, NULL, &err) != 0)
                die("checkpoint", &err);
            next_checkpoint += every;
        }
    }
    if (jx_journal_checkpoint(journal, key, origin, 1735689600000 + (int64_t)count * 1000 + 1, NULL,
                              NULL, &err) != 0)
        die("checkpoint", &err);
    free(made);
    free(entries);
    jx_journal_destroy(&journal);
    EVP_PKEY_free(key);
    return 0;
}

static _Noreturn void command_crash(int argc, char **argv, const char *dir)
{
    const char *key_path = option(argc, argv, "--key", NULL);
    const char *origin = option(argc, argv, "--origin", "justx/JX-GATEWAY");
    uint64_t segment = strtoull(option(argc, argv, "--segment-size", "65536"), NULL, 10);
    uint64_t seed = strtoull(option(argc, argv, "--seed", "1"), NULL, 10) * 2654435761u + 7;
    jx_error err;
    EVP_PKEY *key = key_path ? jx_checkpoint_load_private_key(key_path, &err) : NULL;
    if (!key)
        die("--key", key_path ? &err : NULL);
    jx_journal *journal = open_or_die(dir, segment);
    made_entry made[64];
    jx_journal_entry entries[64];
    for (uint64_t round = 0;; round++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        uint64_t n = 1 + seed % 64;
        uint64_t first = jx_journal_size(journal);
        for (uint64_t i = 0; i < n; i++) {
            make_entry(first + i, &made[i]);
            entries[i] = made[i].entry;
        }
        if (jx_journal_append(journal, entries, n, NULL, &err) != 0)
            die("append", &err);
        /* Only now may anyone be told these records are durable. */
        printf("durable %" PRIu64 "\n", first + n - 1);
        fflush(stdout);
        if (round % 16 == 15 &&
            jx_journal_checkpoint(journal, key, origin, 0, NULL, NULL, &err) != 0)
            die("checkpoint", &err);
    }
}

static int command_check(int argc, char **argv, const char *dir)
{
    const char *durable_path = option(argc, argv, "--durable", NULL);
    FILE *durable = durable_path ? fopen(durable_path, "r") : NULL;
    if (!durable)
        die("--durable", NULL);
    int64_t highest = -1;
    char line[128];
    while (fgets(line, sizeof line, durable)) {
        unsigned long long index;
        /* A line cut short by the kill has no newline: it was never whole. */
        if (strchr(line, '\n') && sscanf(line, "durable %llu", &index) == 1 &&
            (int64_t)index > highest)
            highest = (int64_t)index;
    }
    fclose(durable);
    jx_journal *journal = open_or_die(dir, 65536);
    uint64_t size = jx_journal_size(journal);
    int failures = 0;
    if ((int64_t)size <= highest) {
        fprintf(stderr,
                "journal_writer check: record %" PRId64 " was reported durable but the "
                "journal holds only %" PRIu64 " records\n",
                highest, size);
        failures++;
    }
    for (uint64_t index = 0; index < size; index++) {
        uint8_t *bytes;
        size_t len;
        jx_error err;
        if (jx_journal_read(journal, index, &bytes, &len, &err) != 0) {
            fprintf(stderr, "journal_writer check: %s\n", err.message);
            failures++;
            continue;
        }
        Justx__V1__JournalRecord *record = justx__v1__journal_record__unpack(NULL, len, bytes);
        made_entry want;
        make_entry(index, &want);
        if (!record || record->index != index || strcmp(record->message_id, want.message_id) != 0 ||
            record->header.len != want.header_len ||
            (want.header_len && memcmp(record->header.data, want.header, want.header_len) != 0)) {
            fprintf(stderr, "journal_writer check: record %" PRIu64 " is not what was written\n",
                    index);
            failures++;
        }
        if (record)
            justx__v1__journal_record__free_unpacked(record, NULL);
        free(bytes);
    }
    printf("check: %" PRIu64 " records, highest reported durable %" PRId64 ", %d failure(s)\n",
           size, highest, failures);
    jx_journal_destroy(&journal);
    return failures ? 1 : 0;
}

/* ---- raw frame surgery for the tamper tests ---- */

typedef struct {
    uint32_t segment;
    size_t offset;
    size_t length;
    uint64_t index;
} frame_info;

static uint8_t *load(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        die(path, NULL);
    struct stat st;
    fstat(fileno(file), &st);
    uint8_t *data = malloc((size_t)st.st_size + 1);
    *len = fread(data, 1, (size_t)st.st_size, file);
    fclose(file);
    return data;
}

static void store(const char *path, const uint8_t *data, size_t len)
{
    FILE *file = fopen(path, "wb");
    if (!file || fwrite(data, 1, len, file) != len || fclose(file) != 0)
        die(path, NULL);
}

static void segment_path(const char *dir, uint32_t number, char *out, size_t out_len)
{
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, number);
    snprintf(out, out_len, "%s/%s", dir, name);
}

/* Every frame of every segment, in order. */
static frame_info *list_frames(const char *dir, size_t *count)
{
    frame_info *frames = NULL;
    size_t n = 0, capacity = 0;
    for (uint32_t s = 0;; s++) {
        char path[4096];
        segment_path(dir, s, path, sizeof path);
        if (access(path, F_OK) != 0)
            break;
        size_t len;
        uint8_t *data = load(path, &len);
        size_t at = JX_SEGMENT_HEADER_SIZE;
        while (at < len) {
            const uint8_t *record;
            uint32_t record_len;
            size_t frame_len;
            if (jx_frame_parse(data + at, len - at, &record, &record_len, &frame_len) !=
                JX_FRAME_OK)
                break;
            if (n == capacity) {
                capacity = capacity ? 2 * capacity : 256;
                frames = realloc(frames, capacity * sizeof *frames);
            }
            uint64_t index;
            jx_record_peek_index(record, record_len, &index);
            frames[n++] = (frame_info){s, at, frame_len, index};
            at += frame_len;
        }
        free(data);
    }
    *count = n;
    return frames;
}

static const frame_info *find_frame(const frame_info *frames, size_t count, uint64_t index)
{
    for (size_t i = 0; i < count; i++)
        if (frames[i].index == index)
            return &frames[i];
    fprintf(stderr, "journal_writer: no record %" PRIu64 "\n", index);
    exit(1);
}

static int command_frames(const char *dir)
{
    size_t count;
    frame_info *frames = list_frames(dir, &count);
    for (size_t i = 0; i < count; i++) {
        char name[JX_SEGMENT_NAME_MAX];
        jx_segment_name(name, frames[i].segment);
        printf("%s %zu %zu %" PRIu64 "\n", name, frames[i].offset, frames[i].length,
               frames[i].index);
    }
    free(frames);
    return 0;
}

static int command_flip(const char *dir, const char *segment, const char *offset_text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, segment);
    size_t len, offset = strtoull(offset_text, NULL, 10);
    uint8_t *data = load(path, &len);
    if (offset >= len)
        die("offset beyond the file", NULL);
    data[offset] ^= 0x5a;
    store(path, data, len);
    free(data);
    return 0;
}

/* Replaces frame f's bytes in its segment by replacement (may be empty). */
static void replace_frame(const char *dir, const frame_info *f, const uint8_t *replacement,
                          size_t replacement_len)
{
    char path[4096];
    segment_path(dir, f->segment, path, sizeof path);
    size_t len;
    uint8_t *data = load(path, &len);
    size_t new_len = len - f->length + replacement_len;
    uint8_t *out = malloc(new_len + 1);
    memcpy(out, data, f->offset);
    if (replacement_len)
        memcpy(out + f->offset, replacement, replacement_len);
    memcpy(out + f->offset + replacement_len, data + f->offset + f->length,
           len - f->offset - f->length);
    store(path, out, new_len);
    free(out);
    free(data);
}

static int command_delete(const char *dir, const char *index_text)
{
    size_t count;
    frame_info *frames = list_frames(dir, &count);
    const frame_info *f = find_frame(frames, count, strtoull(index_text, NULL, 10));
    replace_frame(dir, f, NULL, 0);
    free(frames);
    return 0;
}

static int command_swap(const char *dir, const char *i_text, const char *j_text)
{
    size_t count;
    frame_info *frames = list_frames(dir, &count);
    const frame_info *a = find_frame(frames, count, strtoull(i_text, NULL, 10));
    const frame_info *b = find_frame(frames, count, strtoull(j_text, NULL, 10));
    if (a->segment != b->segment || a->offset > b->offset)
        die("swap needs I < J in the same segment", NULL);
    char path[4096];
    segment_path(dir, a->segment, path, sizeof path);
    size_t len;
    uint8_t *data = load(path, &len);
    uint8_t *out = malloc(len + 1);
    size_t at = 0;
    memcpy(out, data, a->offset);
    at = a->offset;
    memcpy(out + at, data + b->offset, b->length);
    at += b->length;
    memcpy(out + at, data + a->offset + a->length, b->offset - a->offset - a->length);
    at += b->offset - a->offset - a->length;
    memcpy(out + at, data + a->offset, a->length);
    at += a->length;
    memcpy(out + at, data + b->offset + b->length, len - b->offset - b->length);
    store(path, out, len);
    free(out);
    free(data);
    free(frames);
    return 0;
}

static int command_rewrite(const char *dir, const char *index_text)
{
    size_t count;
    frame_info *frames = list_frames(dir, &count);
    const frame_info *f = find_frame(frames, count, strtoull(index_text, NULL, 10));
    char path[4096];
    segment_path(dir, f->segment, path, sizeof path);
    size_t len;
    uint8_t *data = load(path, &len);
    Justx__V1__JournalRecord *record = justx__v1__journal_record__unpack(
        NULL, f->length - JX_FRAME_OVERHEAD, data + f->offset + JX_FRAME_HEADER_SIZE);
    if (!record)
        die("record does not decode", NULL);
    char *original_sender = record->sender;
    record->sender = "FORGED-AGENCY";
    size_t record_len = justx__v1__journal_record__get_packed_size(record);
    uint8_t *frame = malloc(record_len + JX_FRAME_OVERHEAD);
    justx__v1__journal_record__pack(record, frame + JX_FRAME_HEADER_SIZE);
    size_t frame_len = jx_frame_encode(frame, frame + JX_FRAME_HEADER_SIZE, (uint32_t)record_len);
    record->sender = original_sender; /* the forged one is not the allocator's */
    justx__v1__journal_record__free_unpacked(record, NULL);
    free(data);
    replace_frame(dir, f, frame, frame_len);
    free(frame);
    free(frames);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: journal_writer create|crash|check|frames|flip|delete|swap|"
                        "rewrite DIR ...\n");
        return 2;
    }
    const char *command = argv[1], *dir = argv[2];
    if (strcmp(command, "create") == 0)
        return command_create(argc, argv, dir);
    if (strcmp(command, "crash") == 0)
        command_crash(argc, argv, dir);
    if (strcmp(command, "check") == 0)
        return command_check(argc, argv, dir);
    if (strcmp(command, "frames") == 0)
        return command_frames(dir);
    if (strcmp(command, "flip") == 0 && argc == 5)
        return command_flip(dir, argv[3], argv[4]);
    if (strcmp(command, "delete") == 0 && argc == 4)
        return command_delete(dir, argv[3]);
    if (strcmp(command, "swap") == 0 && argc == 5)
        return command_swap(dir, argv[3], argv[4]);
    if (strcmp(command, "rewrite") == 0 && argc == 4)
        return command_rewrite(dir, argv[3]);
    fprintf(stderr, "journal_writer: bad command line\n");
    return 2;
}
