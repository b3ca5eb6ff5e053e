/* audit_scan.c — justx-audit's own reading of segment files, damage and all.
 *
 * After a damaged frame the scan looks for the next place where a complete,
 * checksum-valid frame starts and resumes there, so that everything after
 * the damage is still checked and the records there still reach the caller
 * (and the recomputed tree). The index sequence is checked against the
 * previous record's index, so a missing, extra or moved record is reported
 * where it happens rather than at every later record.
 */
#include "audit.h"

#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void audit_report_add(audit_report *report, audit_severity severity, const char *file,
                      int64_t offset, int64_t index, int64_t checkpoint, const char *format, ...)
{
    if (report->count == report->capacity) {
        size_t capacity = report->capacity ? 2 * report->capacity : 16;
        audit_problem *grown = realloc(report->problems, capacity * sizeof *grown);
        if (!grown)
            return; /* the counts below still make the exit status right */
        report->problems = grown;
        report->capacity = capacity;
    }
    if (severity == AUDIT_ERROR)
        report->errors++;
    else
        report->warnings++;
    audit_problem *problem = &report->problems[report->count++];
    problem->severity = severity;
    snprintf(problem->file, sizeof problem->file, "%s", file ? file : "");
    problem->offset = offset;
    problem->index = index;
    problem->checkpoint = checkpoint;
    va_list args;
    va_start(args, format);
    vsnprintf(problem->message, sizeof problem->message, format, args);
    va_end(args);
}

void audit_report_free(audit_report *report)
{
    free(report->problems);
    memset(report, 0, sizeof *report);
}

void audit_report_print(const audit_report *report, FILE *out)
{
    for (size_t i = 0; i < report->count; i++) {
        const audit_problem *p = &report->problems[i];
        /* "error: journal-00000001.seg byte 1234, record 17: ..." */
        char where[160] = "";
        size_t used = 0;
        if (p->file[0])
            used += (size_t)snprintf(where + used, sizeof where - used, " %s", p->file);
        if (p->offset >= 0)
            used +=
                (size_t)snprintf(where + used, sizeof where - used, " byte %" PRId64, p->offset);
        if (p->checkpoint >= 0)
            used += (size_t)snprintf(where + used, sizeof where - used, "%s checkpoint #%" PRId64,
                                     used ? "," : "", p->checkpoint);
        if (p->index >= 0)
            used += (size_t)snprintf(where + used, sizeof where - used, "%s record %" PRId64,
                                     used ? "," : "", p->index);
        fprintf(out, "%s:%s: %s\n", p->severity == AUDIT_ERROR ? "error" : "warning", where,
                p->message);
    }
}

json_t *audit_report_json(const audit_report *report)
{
    json_t *array = json_array();
    for (size_t i = 0; i < report->count; i++) {
        const audit_problem *p = &report->problems[i];
        json_t *item = json_object();
        json_object_set_new(item, "severity",
                            json_string(p->severity == AUDIT_ERROR ? "error" : "warning"));
        if (p->file[0])
            json_object_set_new(item, "file", json_string(p->file));
        if (p->offset >= 0)
            json_object_set_new(item, "offset", json_integer(p->offset));
        if (p->index >= 0)
            json_object_set_new(item, "index", json_integer(p->index));
        if (p->checkpoint >= 0)
            json_object_set_new(item, "checkpoint", json_integer(p->checkpoint));
        json_object_set_new(item, "message", json_string(p->message));
        json_array_append_new(array, item);
    }
    return array;
}

static int compare_numbers(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    struct stat st;
    uint8_t *data = NULL;
    if (fstat(fileno(file), &st) == 0) {
        data = malloc(st.st_size ? (size_t)st.st_size : 1);
        if (data && fread(data, 1, (size_t)st.st_size, file) != (size_t)st.st_size) {
            free(data);
            data = NULL;
        }
        *len = (size_t)st.st_size;
    }
    fclose(file);
    return data;
}

typedef struct {
    audit_report *report;
    audit_record_fn fn;
    void *ctx;
    uint64_t position;
    int64_t previous_index; /* -1 before the first record */
    bool stopped;
    /* The current segment's header, checked against its first record. */
    bool header_pending;
    uint64_t header_first_index;
} scan_state;

static void deliver(scan_state *state, const char *name, size_t offset, const uint8_t *bytes,
                    size_t len)
{
    audit_record item = {.segment = name,
                         .offset = offset,
                         .position = state->position,
                         .bytes = bytes,
                         .len = len,
                         .record = NULL};
    Justx__V1__JournalRecord *record = justx__v1__journal_record__unpack(NULL, len, bytes);
    jx_merkle_leaf_hash(bytes, len, item.leaf);
    if (!record) {
        audit_report_add(state->report, AUDIT_ERROR, name, (int64_t)offset,
                         (int64_t)state->position, -1,
                         "the record's checksum is right but it is not a JournalRecord");
    } else {
        int64_t expected = state->previous_index + 1;
        if ((int64_t)record->index != expected) {
            if ((int64_t)record->index > expected)
                audit_report_add(state->report, AUDIT_ERROR, name, (int64_t)offset,
                                 (int64_t)state->position, -1,
                                 "record carries index %" PRIu64 " where %" PRId64
                                 " was due: %" PRId64 " record(s) missing or moved",
                                 record->index, expected, (int64_t)record->index - expected);
            else
                audit_report_add(state->report, AUDIT_ERROR, name, (int64_t)offset,
                                 (int64_t)state->position, -1,
                                 "record carries index %" PRIu64 " where %" PRId64
                                 " was due: out of order or duplicated",
                                 record->index, expected);
        }
        if (state->header_pending && record->index != state->header_first_index)
            audit_report_add(state->report, AUDIT_ERROR, name, 0, -1, -1,
                             "segment header says it starts at record %" PRIu64
                             " but its first record is %" PRIu64,
                             state->header_first_index, record->index);
        state->header_pending = false;
        state->previous_index = (int64_t)record->index;
    }
    item.record = record;
    if (state->fn && !state->stopped && state->fn(state->ctx, &item) != 0)
        state->stopped = true;
    if (record)
        justx__v1__journal_record__free_unpacked(record, NULL);
    state->position++;
}

static void scan_frames(scan_state *state, const char *name, const uint8_t *bytes, size_t len,
                        bool last)
{
    size_t at = JX_SEGMENT_HEADER_SIZE;
    while (at < len && !state->stopped) {
        const uint8_t *record;
        uint32_t record_len;
        size_t frame_len;
        jx_frame_status status =
            jx_frame_parse(bytes + at, len - at, &record, &record_len, &frame_len);
        if (status == JX_FRAME_OK) {
            deliver(state, name, at, record, record_len);
            at += frame_len;
            continue;
        }
        size_t next = jx_frame_resync(bytes, len, at + 1);
        if (next == len && last)
            audit_report_add(state->report, AUDIT_WARNING, name, (int64_t)at, -1, -1,
                             "%s, and nothing valid after it (%zu bytes): the torn end of a "
                             "write interrupted by a crash, which the gateway cuts off when it "
                             "next starts; no record there was ever reported durable",
                             jx_frame_status_text(status), len - at);
        else if (next == len)
            audit_report_add(state->report, AUDIT_ERROR, name, (int64_t)at, -1, -1,
                             "%s; the remaining %zu bytes of this closed segment hold no valid "
                             "record (truncated or overwritten)",
                             jx_frame_status_text(status), len - at);
        else
            audit_report_add(state->report, AUDIT_ERROR, name, (int64_t)at, -1, -1,
                             "%s; %zu bytes skipped up to the next valid record at byte %zu",
                             jx_frame_status_text(status), next - at, next);
        at = next;
    }
}

int audit_scan(const char *dir, audit_report *report, audit_record_fn fn, void *ctx,
               audit_scan_totals *totals)
{
    scan_state state = {.report = report, .fn = fn, .ctx = ctx, .previous_index = -1};
    DIR *listing = opendir(dir);
    if (!listing) {
        audit_report_add(report, AUDIT_ERROR, NULL, -1, -1, -1, "cannot read directory %s: %s", dir,
                         strerror(errno));
        return -1;
    }
    uint32_t *numbers = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(listing)) != NULL) {
        uint32_t number;
        if (!jx_segment_name_parse(entry->d_name, &number))
            continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            uint32_t *grown = realloc(numbers, capacity * sizeof *numbers);
            if (!grown)
                break;
            numbers = grown;
        }
        numbers[count++] = number;
    }
    closedir(listing);
    if (count == 0) {
        audit_report_add(report, AUDIT_ERROR, NULL, -1, -1, -1,
                         "%s holds no journal segment files (journal-NNNNNNNN.seg)", dir);
        free(numbers);
        return -1;
    }
    qsort(numbers, count, sizeof *numbers, compare_numbers);
    uint32_t expected_number = 0;
    for (size_t i = 0; i < count && !state.stopped; i++) {
        char name[JX_SEGMENT_NAME_MAX], path[4096];
        jx_segment_name(name, numbers[i]);
        if (numbers[i] != expected_number) {
            char missing[JX_SEGMENT_NAME_MAX];
            jx_segment_name(missing, expected_number);
            audit_report_add(report, AUDIT_ERROR, missing, -1, (int64_t)state.position, -1,
                             "segment file missing (%u of them before %s)",
                             numbers[i] - expected_number, name);
        }
        expected_number = numbers[i] + 1;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t len = 0;
        uint8_t *bytes = read_whole(path, &len);
        if (!bytes) {
            audit_report_add(report, AUDIT_ERROR, name, -1, -1, -1, "cannot read %s: %s", path,
                             strerror(errno));
            continue;
        }
        bool last = i + 1 == count;
        uint64_t first_index;
        if (!jx_segment_header_decode(bytes, len, &first_index)) {
            if (last && len < JX_SEGMENT_HEADER_SIZE)
                audit_report_add(report, AUDIT_WARNING, name, 0, -1, -1,
                                 "segment header incomplete (%zu bytes): a segment being "
                                 "created when the gateway stopped",
                                 len);
            else
                audit_report_add(report, AUDIT_ERROR, name, 0, -1, -1,
                                 "not a valid segment header");
        } else {
            state.header_pending = true;
            state.header_first_index = first_index;
        }
        scan_frames(&state, name, bytes, len, last);
        if (state.header_pending && first_index != (uint64_t)(state.previous_index + 1))
            audit_report_add(report, AUDIT_ERROR, name, 0, -1, -1,
                             "segment header says it starts at record %" PRIu64
                             " but holds no record and the one before it is %" PRId64,
                             first_index, state.previous_index);
        state.header_pending = false;
        free(bytes);
    }
    if (totals) {
        totals->records = state.position;
        totals->segments = count;
    }
    free(numbers);
    return 0;
}
