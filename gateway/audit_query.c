/* audit_query.c — `justx-audit trail`, `search` and `export`: records for people.
 *
 * All three read the segments with the same damage-reporting scan as verify;
 * problems found on the way go to stderr and make the exit status 1, so an
 * export of a damaged journal cannot pass for a complete one.
 */
#include "audit.h"

#include "journal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *message_id;
    const char *case_id;
    const char *agency;
    const char *type;
    jx_journal_event event;
    bool has_event;
    int64_t since_ms;
    int64_t until_ms;
    bool json;
    json_t *matches; /* --json: collected records */
    uint64_t match_count;
} query;

static bool matches_query(const query *q, const Justx__V1__JournalRecord *r)
{
    if (q->message_id && strcmp(r->message_id, q->message_id) != 0)
        return false;
    if (q->case_id && strcmp(r->case_id, q->case_id) != 0)
        return false;
    if (q->type && strcmp(r->type, q->type) != 0)
        return false;
    if (q->has_event && (jx_journal_event)r->event != q->event)
        return false;
    if (r->time_ms < q->since_ms || r->time_ms >= q->until_ms)
        return false;
    if (q->agency) {
        bool involved = strcmp(r->sender, q->agency) == 0 || strcmp(r->recipient, q->agency) == 0;
        for (size_t i = 0; i < r->n_recipients && !involved; i++)
            involved = strcmp(r->recipients[i], q->agency) == 0;
        if (!involved)
            return false;
    }
    return true;
}

static int collect(void *ctx, const audit_record *item)
{
    query *q = ctx;
    if (!item->record || !matches_query(q, item->record))
        return 0;
    q->match_count++;
    if (q->json)
        json_array_append_new(q->matches, audit_record_json(item->record, item->leaf));
    else
        audit_record_print(item->record, stdout);
    return 0;
}

static int run_query(const char *command, const char *dir, query *q)
{
    audit_report report = {0};
    q->matches = json_array();
    audit_scan(dir, &report, collect, q, NULL);
    if (q->json) {
        json_t *out = json_object();
        json_object_set_new(out, "records", q->matches);
        json_object_set_new(out, "count", json_integer((json_int_t)q->match_count));
        json_object_set_new(out, "problems", audit_report_json(&report));
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else {
        json_decref(q->matches);
        if (q->match_count == 0)
            printf("no matching records\n");
    }
    if (report.count) {
        fprintf(stderr, "justx-audit %s: the journal has problems (run verify):\n", command);
        audit_report_print(&report, stderr);
    }
    int status = report.errors || q->match_count == 0 ? AUDIT_EXIT_FAILED : AUDIT_EXIT_OK;
    audit_report_free(&report);
    return status;
}

static const char trail_usage[] =
    "usage: justx-audit trail DIR (--message-id ID | --case-id ID) [--json]\n"
    "\n"
    "Prints every record of one message (accepted or rejected, delivered,\n"
    "acknowledged, expired) or of one case, in journal order.\n"
    "\n"
    "  --message-id ID   records of this message id\n"
    "  --case-id ID      records of this case id\n"
    "  --json            the records as a JSON object on stdout\n"
    "\n"
    "Exit status: 0 records found, 1 none found or the journal is damaged,\n"
    "2 usage error.\n";

int audit_command_trail(int argc, char **argv)
{
    const char *message_id = NULL, *case_id = NULL, *json_flag = NULL;
    const audit_option options[] = {{"--message-id", true, &message_id},
                                    {"--case-id", true, &case_id},
                                    {"--json", false, &json_flag},
                                    {NULL, false, NULL}};
    const char *positional[1];
    int count;
    int parsed = audit_parse_args(argc, argv, options, positional, 1, &count, trail_usage);
    if (parsed != 0)
        return parsed > 0 ? AUDIT_EXIT_OK : AUDIT_EXIT_USAGE;
    if (count != 1 || (!message_id == !case_id)) {
        fprintf(stderr,
                "justx-audit trail: give DIR and exactly one of --message-id, "
                "--case-id\n\n%s",
                trail_usage);
        return AUDIT_EXIT_USAGE;
    }
    query q = {.message_id = message_id,
               .case_id = case_id,
               .since_ms = INT64_MIN,
               .until_ms = INT64_MAX,
               .json = json_flag != NULL};
    return run_query("trail", positional[0], &q);
}

static const char search_usage[] =
    "usage: justx-audit search DIR [--agency A] [--type T] [--event E]\n"
    "                              [--since TIME] [--until TIME] [--json]\n"
    "\n"
    "Prints the records that match every filter given, in journal order.\n"
    "\n"
    "  --agency A     A is the sender, the recipient or one of the recipients\n"
    "  --type T       payload type, e.g. justx.v1.SentenceOrder\n"
    "  --event E      ACCEPTED, REJECTED, DELIVERED, ACKNOWLEDGED, EXPIRED,\n"
    "                 CONFIG_CHANGED, GATEWAY_STARTED or GATEWAY_STOPPED\n"
    "  --since TIME   at or after TIME (ISO 8601, e.g. 2025-03-01 or\n"
    "                 2025-03-01T12:00:00Z; UTC unless an offset is given)\n"
    "  --until TIME   before TIME\n"
    "  --json         the records as a JSON object on stdout\n"
    "\n"
    "Exit status: 0 records found, 1 none found or the journal is damaged,\n"
    "2 usage error.\n";

int audit_command_search(int argc, char **argv)
{
    const char *agency = NULL, *type = NULL, *event = NULL, *since = NULL, *until = NULL,
               *json_flag = NULL;
    const audit_option options[] = {{"--agency", true, &agency}, {"--type", true, &type},
                                    {"--event", true, &event},   {"--since", true, &since},
                                    {"--until", true, &until},   {"--json", false, &json_flag},
                                    {NULL, false, NULL}};
    const char *positional[1];
    int count;
    int parsed = audit_parse_args(argc, argv, options, positional, 1, &count, search_usage);
    if (parsed != 0)
        return parsed > 0 ? AUDIT_EXIT_OK : AUDIT_EXIT_USAGE;
    if (count != 1) {
        fprintf(stderr, "justx-audit search: give the journal directory\n\n%s", search_usage);
        return AUDIT_EXIT_USAGE;
    }
    query q = {.agency = agency,
               .type = type,
               .since_ms = INT64_MIN,
               .until_ms = INT64_MAX,
               .json = json_flag != NULL};
    if (event) {
        q.event = jx_journal_event_from_name(event);
        q.has_event = true;
        if (q.event == JX_EVENT_UNSPECIFIED) {
            fprintf(stderr, "justx-audit search: unknown event \"%s\"\n\n%s", event, search_usage);
            return AUDIT_EXIT_USAGE;
        }
    }
    if ((since && !audit_parse_time(since, &q.since_ms)) ||
        (until && !audit_parse_time(until, &q.until_ms))) {
        fprintf(stderr, "justx-audit search: \"%s\" is not an ISO 8601 date or time\n\n%s",
                since && !audit_parse_time(since, &q.since_ms) ? since : until, search_usage);
        return AUDIT_EXIT_USAGE;
    }
    return run_query("search", positional[0], &q);
}

/* ---- export ---- */

static const char export_usage[] =
    "usage: justx-audit export DIR --format jsonl|csv [--output FILE]\n"
    "\n"
    "Writes every record: as JSON lines (the protobuf JSON mapping of\n"
    "justx.v1.JournalRecord plus \"time\" and \"leafHash\"), or as CSV with the\n"
    "columns index,time,event,message_id,sender,recipient,recipients,type,\n"
    "case_id,reason_code,reason,payload_sha256,leaf_hash (hashes in hex;\n"
    "recipients separated by spaces).\n"
    "\n"
    "  --format F     jsonl or csv\n"
    "  --output FILE  write there instead of stdout\n"
    "\n"
    "Exit status: 0 exported, 1 the journal is damaged (the export is then\n"
    "incomplete and the problems go to stderr), 2 usage error.\n";

typedef struct {
    FILE *out;
    bool csv;
    uint64_t count;
} exporter;

static void csv_field(FILE *out, const char *text, bool last)
{
    bool quote = strpbrk(text, ",\"\r\n") != NULL;
    if (quote) {
        fputc('"', out);
        for (const char *p = text; *p; p++) {
            if (*p == '"')
                fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    } else {
        fputs(text, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

static void hex(const uint8_t *data, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", data[i]);
    out[2 * len] = '\0';
}

static int export_record(void *ctx, const audit_record *item)
{
    exporter *e = ctx;
    const Justx__V1__JournalRecord *r = item->record;
    if (!r)
        return 0;
    e->count++;
    if (!e->csv) {
        json_t *object = audit_record_json(r, item->leaf);
        json_dumpf(object, e->out, JSON_COMPACT);
        fputc('\n', e->out);
        json_decref(object);
        return 0;
    }
    char index[32], iso[AUDIT_TIME_MAX], digest[2 * JX_HASH_SIZE + 1] = "",
                                                                   leaf[2 * JX_HASH_SIZE + 1];
    snprintf(index, sizeof index, "%" PRIu64, r->index);
    audit_format_time(r->time_ms, iso);
    if (r->payload_sha256.len == JX_HASH_SIZE)
        hex(r->payload_sha256.data, JX_HASH_SIZE, digest);
    hex(item->leaf, JX_HASH_SIZE, leaf);
    size_t recipients_len = 1;
    for (size_t i = 0; i < r->n_recipients; i++)
        recipients_len += strlen(r->recipients[i]) + 1;
    char *recipients = calloc(1, recipients_len);
    for (size_t i = 0; recipients && i < r->n_recipients; i++) {
        if (i)
            strcat(recipients, " ");
        strcat(recipients, r->recipients[i]);
    }
    const char *event = jx_journal_event_name((jx_journal_event)r->event);
    csv_field(e->out, index, false);
    csv_field(e->out, iso, false);
    csv_field(e->out, event ? event : "", false);
    csv_field(e->out, r->message_id, false);
    csv_field(e->out, r->sender, false);
    csv_field(e->out, r->recipient, false);
    csv_field(e->out, recipients ? recipients : "", false);
    csv_field(e->out, r->type, false);
    csv_field(e->out, r->case_id, false);
    csv_field(e->out, r->reason_code, false);
    csv_field(e->out, r->reason, false);
    csv_field(e->out, digest, false);
    csv_field(e->out, leaf, true);
    free(recipients);
    return 0;
}

int audit_command_export(int argc, char **argv)
{
    const char *format = NULL, *output = NULL;
    const audit_option options[] = {
        {"--format", true, &format}, {"--output", true, &output}, {NULL, false, NULL}};
    const char *positional[1];
    int count;
    int parsed = audit_parse_args(argc, argv, options, positional, 1, &count, export_usage);
    if (parsed != 0)
        return parsed > 0 ? AUDIT_EXIT_OK : AUDIT_EXIT_USAGE;
    if (count != 1 || !format || (strcmp(format, "jsonl") != 0 && strcmp(format, "csv") != 0)) {
        fprintf(stderr, "justx-audit export: give DIR and --format jsonl or csv\n\n%s",
                export_usage);
        return AUDIT_EXIT_USAGE;
    }
    exporter e = {.out = stdout, .csv = strcmp(format, "csv") == 0};
    if (output && !(e.out = fopen(output, "w"))) {
        perror(output);
        return AUDIT_EXIT_FAILED;
    }
    if (e.csv)
        fputs("index,time,event,message_id,sender,recipient,recipients,type,case_id,"
              "reason_code,reason,payload_sha256,leaf_hash\r\n",
              e.out);
    audit_report report = {0};
    audit_scan(positional[0], &report, export_record, &e, NULL);
    int status = AUDIT_EXIT_OK;
    if (fflush(e.out) != 0 || (output && fclose(e.out) != 0)) {
        perror(output ? output : "stdout");
        status = AUDIT_EXIT_FAILED;
    }
    if (report.count) {
        fprintf(stderr, "justx-audit export: the journal has problems (run verify):\n");
        audit_report_print(&report, stderr);
    }
    if (report.errors)
        status = AUDIT_EXIT_FAILED;
    audit_report_free(&report);
    return status;
}
