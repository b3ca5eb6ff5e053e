/* receipts.c — `justx receipts`: what the gateway said about the messages
 * this agency sent.
 *
 * Reads the adapter's store only (no link): receipts are stored by whichever
 * adapter process received them, the daemon or a CLI command, so this shows
 * them all. Each receipt was verified against the gateway's signed
 * checkpoint before it was stored.
 */
#include "cli.h"
#include "message_json.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void receipts_usage(FILE *out)
{
    fprintf(out, "usage: justx receipts -c ADAPTER.conf [--message-id ID] [--since N] [--json]\n\n"
                 "Lists the receipts stored for messages this agency sent, oldest first: ACCEPTED\n"
                 "(journaled by the gateway), REJECTED (with the reason), DELIVERED and EXPIRED\n"
                 "(per recipient).\n\n"
                 "  --message-id ID  only the receipts of that message, and its state\n"
                 "  --since N        only receipts after sequence number N (for polling)\n"
                 "  --json           one JSON object per line, with the receipt as evidence\n"
                 "                   (base64 of the serialized Receipt)\n\n"
                 "Exit status: 0 success (also when there are none), 1 failure, 2 usage error.\n");
}

typedef struct {
    bool as_json;
    size_t count;
} printer;

static void format_time(int64_t ms, char *out, size_t size)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_receipt(const jx_adapter_store_receipt *receipt, void *arg)
{
    printer *p = arg;
    p->count++;
    if (p->as_json) {
        json_t *object = jx_message_json_receipt(receipt, true);
        if (object) {
            json_dumpf(object, stdout, JSON_COMPACT);
            putchar('\n');
        }
        json_decref(object);
        return 0;
    }
    char when[32];
    format_time(receipt->received_at_ms, when, sizeof when);
    printf("%-6lld %s  %s  %-9s %-18s journal=%llu", (long long)receipt->sequence, when,
           receipt->message_id, receipt->status, receipt->recipient[0] ? receipt->recipient : "-",
           (unsigned long long)receipt->journal_index);
    if (receipt->reason_code[0])
        printf("  %s: %s", receipt->reason_code, receipt->reason);
    putchar('\n');
    return 0;
}

int cli_receipts(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"message-id", required_argument, NULL, 'm'},
        {"since", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    const char *config_path = NULL, *message_id = NULL;
    long long since = 0;
    printer p = {0};
    int option;
    optind = 1;
    while ((option = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (option) {
        case 'c':
            config_path = optarg;
            break;
        case 'm':
            message_id = optarg;
            break;
        case 'j':
            p.as_json = true;
            break;
        case 's':
            if (!cli_parse_integer(optarg, 0, LLONG_MAX, &since)) {
                fprintf(stderr, "justx receipts: --since wants a sequence number >= 0\n");
                return CLI_USAGE;
            }
            break;
        case 'h':
            receipts_usage(stdout);
            return CLI_OK;
        default:
            receipts_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (config_path == NULL || optind != argc) {
        fprintf(stderr, "justx receipts: -c ADAPTER.conf is needed\n");
        receipts_usage(stderr);
        return CLI_USAGE;
    }
    if (message_id && !jx_message_id_is_valid(message_id)) {
        fprintf(stderr, "justx receipts: --message-id wants a lower-case UUID\n");
        return CLI_USAGE;
    }

    int status = CLI_FAILED;
    jx_error err = {0};
    jx_adapter_store *store = NULL;
    jx_adapter_store_sent_entry *sent = NULL;
    jx_adapter_conf *conf = jx_adapter_conf_load(config_path, &err);
    if (conf == NULL)
        goto failed;
    struct stat st;
    if (stat(conf->state_dir, &st) != 0) {
        jx_error_set(&err, JX_ERR_NOT_FOUND,
                     "the adapter's state directory %s does not exist (%s): it has not run yet",
                     conf->state_dir, strerror(errno));
        goto failed;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter.db", conf->state_dir);
    store = jx_adapter_store_new(path, &err);
    if (store == NULL)
        goto failed;
    if (message_id) {
        int found = jx_adapter_store_sent_get(store, message_id, &sent, &err);
        if (found < 0)
            goto failed;
        if (found > 0 && !p.as_json)
            printf("message %s (%s%s%s): %s, %lld delivered, %lld expired%s\n", message_id,
                   sent->type, sent->case_id[0] ? ", case " : "", sent->case_id, sent->status,
                   (long long)sent->delivered_count, (long long)sent->expired_count,
                   sent->in_outbox ? ", waiting in the outbox" : "");
        if (jx_adapter_store_receipts_for(store, message_id, print_receipt, &p, &err) != 0)
            goto failed;
        if (found == 0 && p.count == 0)
            fprintf(stderr, "justx receipts: this adapter has sent no message %s\n", message_id);
    } else if (jx_adapter_store_receipts_list(store, since, 0, print_receipt, &p, &err) != 0) {
        goto failed;
    }
    status = CLI_OK;
    goto done;
failed:
    cli_print_error("receipts", &err);
done:
    jx_adapter_store_sent_entry_destroy(&sent);
    jx_adapter_store_destroy(&store);
    jx_adapter_conf_destroy(&conf);
    return status;
}
