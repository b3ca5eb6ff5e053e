/* audit.h — shared parts of justx-audit: reading a journal without trusting it.
 *
 * justx-audit never opens a journal through the writer's recovery path (that
 * would cut torn tails and trust derived files). It reads the segment files
 * itself, frame by frame, reports every damaged place with its position and
 * carries on after it, so that one run shows all problems.
 *
 * Problems are collected in an audit_report; each names where it is: a
 * segment file (or the checkpoint file) and byte offset, and the record
 * index or checkpoint number when known. Errors make the exit status 1;
 * warnings (a torn tail a crash left behind) do not.
 */
#ifndef JX_AUDIT_H
#define JX_AUDIT_H

#include "checkpoint.h"
#include "merkle.h"

#include "justx/v1/journal.pb-c.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { AUDIT_EXIT_OK = 0, AUDIT_EXIT_FAILED = 1, AUDIT_EXIT_USAGE = 2 };

typedef enum { AUDIT_ERROR, AUDIT_WARNING } audit_severity;

typedef struct {
    audit_severity severity;
    char file[64];      /* segment file name, "checkpoints", or "" */
    int64_t offset;     /* byte offset in file, -1 when none */
    int64_t index;      /* record index, -1 when none */
    int64_t checkpoint; /* checkpoint number (0-based), -1 when none */
    char message[512];
} audit_problem;

typedef struct {
    audit_problem *problems;
    size_t count;
    size_t capacity;
    size_t errors;
    size_t warnings;
} audit_report;

void audit_report_add(audit_report *report, audit_severity severity, const char *file,
                      int64_t offset, int64_t index, int64_t checkpoint, const char *format, ...)
    __attribute__((format(printf, 7, 8)));
void audit_report_free(audit_report *report);

/* Prints the problems to out, one line each ("error: journal-00000000.seg
 * byte 1234, record 17: ..."). */
void audit_report_print(const audit_report *report, FILE *out);

/* The problems as a JSON array. */
json_t *audit_report_json(const audit_report *report);

/* One valid frame as the scan found it. */
typedef struct {
    const char *segment;  /* file name */
    uint64_t offset;      /* byte offset of the frame */
    uint64_t position;    /* leaf position: valid frames before it */
    const uint8_t *bytes; /* the record as stored */
    size_t len;
    const Justx__V1__JournalRecord *record; /* decoded; NULL if it does not decode */
    uint8_t leaf[JX_HASH_SIZE];
} audit_record;

/* Returns 0 to go on, nonzero to stop the scan. */
typedef int (*audit_record_fn)(void *ctx, const audit_record *record);

typedef struct {
    uint64_t records;
    uint64_t segments;
} audit_scan_totals;

/* Reads every segment of the journal in dir, checking framing, checksums,
 * headers, segment numbering and the index sequence, adding each problem to
 * report, and calls fn for every valid frame in order. -1 when dir cannot
 * be read at all (also added to report). */
int audit_scan(const char *dir, audit_report *report, audit_record_fn fn, void *ctx,
               audit_scan_totals *totals);

/* ---- checkpoints ---- */

typedef struct {
    uint64_t offset; /* byte offset in the checkpoint file */
    char *note;      /* the whole note, NUL-terminated */
    size_t len;
    bool parsed;              /* the text is a well-formed checkpoint */
    bool signature_ok;        /* a signature by the given key verified */
    jx_checkpoint checkpoint; /* valid when parsed */
} audit_checkpoint;

/* Reads DIR/checkpoints. With key, checks each note's signature (and its
 * origin when origin is not NULL). Malformed or badly signed notes are
 * errors in report, an incomplete last note a warning. A missing file is
 * no checkpoints. */
int audit_read_checkpoints(const char *dir, EVP_PKEY *key, const char *origin, audit_report *report,
                           audit_checkpoint **list, size_t *count);
void audit_checkpoints_free(audit_checkpoint *list, size_t count);

/* ---- record presentation ---- */

/* "2023-11-14T22:13:20.123Z". */
enum { AUDIT_TIME_MAX = 48 };
void audit_format_time(int64_t time_ms, char out[AUDIT_TIME_MAX]);

/* Parses an ISO 8601 date or date-time (UTC unless an offset is given) into
 * ms since the epoch; false when malformed. */
bool audit_parse_time(const char *text, int64_t *time_ms);

/* The record in the protobuf JSON mapping (lowerCamelCase, 64-bit integers
 * as strings, bytes as base64, enum names), plus "time" (ISO 8601) and, when
 * leaf is not NULL, "leafHash". */
json_t *audit_record_json(const Justx__V1__JournalRecord *record, const uint8_t *leaf);

/* One line for people: index, time, event, message, sender -> recipient... */
void audit_record_print(const Justx__V1__JournalRecord *record, FILE *out);

/* ---- commands (audit_*.c); each returns the exit status ---- */

int audit_command_verify(int argc, char **argv);
int audit_command_trail(int argc, char **argv);
int audit_command_search(int argc, char **argv);
int audit_command_export(int argc, char **argv);
int audit_command_prove(int argc, char **argv);
int audit_command_verify_proof(int argc, char **argv);

/* ---- small argument parser shared by the commands ---- */

typedef struct {
    const char *name; /* "--key" */
    bool takes_value;
    const char **value; /* receives the value, or "" for a flag that is set */
} audit_option;

/* Parses argv[1..] (argv[0] is the command): options from the table and up
 * to max_positional positional arguments. On a usage error prints it to
 * stderr with the command's usage and returns -1; on --help prints usage to
 * stdout and returns 1; otherwise 0. */
int audit_parse_args(int argc, char **argv, const audit_option *options, const char **positional,
                     int max_positional, int *positional_count, const char *usage);

#endif
