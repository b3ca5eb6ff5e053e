/* send.c — `justx send`: hand a message to the agency's adapter and,
 * optionally, wait for what the gateway says about it.
 *
 * The message is durable in the outbox before its id is printed; whatever
 * happens after that (timeout, Ctrl-C, gateway down), the next start of an
 * adapter on the same state_dir sends it. Waiting for DELIVERED means every
 * recipient the gateway resolved (named in the ACCEPTED receipt's journal
 * record) has acknowledged it.
 */
#include "cli.h"
#include "message_json.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_usage(FILE *out)
{
    fprintf(out,
            "usage: justx send -c ADAPTER.conf --type TYPE (--json FILE | --binary FILE)\n"
            "                  [--to AGENCY]... [--case-id ID] [--correlation-id ID]\n"
            "                  [--message-id UUID] [--expires-in SECONDS]\n"
            "                  [--wait ACCEPTED|DELIVERED | --no-wait] [--timeout SECONDS] [-v]\n"
            "       justx send -c ADAPTER.conf --envelope FILE [--wait ...] [--timeout ...]\n\n"
            "Seals the payload with the agency's key (from ADAPTER.conf), stores it in the\n"
            "adapter's durable outbox and prints its message id. The payload is JSON\n"
            "(protobuf JSON mapping) or serialized protobuf of TYPE, e.g.\n"
            "justx.v1.SentenceOrder; FILE may be - for standard input. Without --to the\n"
            "gateway's routes choose the recipients.\n\n"
            "  --envelope FILE    relay an envelope sealed elsewhere (e.g. by `justx seal`),\n"
            "                     as it is; the gateway checks it like any other\n"
            "  --wait ACCEPTED    wait until the gateway has journaled it\n"
            "  --wait DELIVERED   wait until every recipient has acknowledged it\n"
            "  --no-wait          return as soon as it is in the outbox\n"
            "  --timeout SECONDS  how long to wait (default 30)\n"
            "  -v, --verbose      print the adapter's log lines\n\n"
            "Without --wait or --no-wait, waits up to --timeout for ACCEPTED and, if the\n"
            "gateway cannot be reached, leaves the message in the outbox (exit status 0):\n"
            "the next adapter started on the same state_dir sends it.\n\n"
            "Exit status: 0 sent (and the receipt waited for came), 1 REJECTED, EXPIRED,\n"
            "timed out waiting, or failed, 2 usage error.\n");
}

typedef struct {
    size_t seen; /* receipts already reported */
    size_t count;
    bool accepted;
    bool rejected;
    char reason[JX_ERROR_MESSAGE_MAX + 64];
    json_t *recipients; /* from the ACCEPTED receipt's journal record */
    json_t *delivered;  /* recipient names */
    json_t *expired;
} progress;

static int note_receipt(const jx_adapter_store_receipt *receipt, void *arg)
{
    progress *p = arg;
    p->count++;
    if (p->count > p->seen) {
        if (strcmp(receipt->status, "REJECTED") == 0)
            fprintf(stderr, "justx send: REJECTED: %s: %s\n", receipt->reason_code,
                    receipt->reason);
        else if (receipt->recipient[0])
            fprintf(stderr, "justx send: %s for %s\n", receipt->status, receipt->recipient);
        else
            fprintf(stderr, "justx send: %s (journal record %llu)\n", receipt->status,
                    (unsigned long long)receipt->journal_index);
    }
    if (strcmp(receipt->status, "ACCEPTED") == 0) {
        p->accepted = true;
        if (p->recipients == NULL)
            p->recipients =
                jx_message_json_accepted_recipients(receipt->receipt, receipt->receipt_len);
    } else if (strcmp(receipt->status, "REJECTED") == 0) {
        p->rejected = true;
        snprintf(p->reason, sizeof p->reason, "%s: %s", receipt->reason_code, receipt->reason);
    } else if (strcmp(receipt->status, "DELIVERED") == 0) {
        json_array_append_new(p->delivered, json_string(receipt->recipient));
    } else if (strcmp(receipt->status, "EXPIRED") == 0) {
        json_array_append_new(p->expired, json_string(receipt->recipient));
    }
    return 0;
}

static bool contains(const json_t *array, const char *text)
{
    size_t i;
    const json_t *item;
    json_array_foreach(array, i, item) if (strcmp(json_string_value(item), text) == 0) return true;
    return false;
}

/* 1 the wanted state is reached, 0 not yet, -1 it never will be. */
static int judge(const progress *p, bool want_delivered)
{
    if (p->rejected || json_array_size(p->expired) > 0)
        return -1;
    if (!want_delivered)
        return p->accepted ? 1 : 0;
    if (!p->accepted)
        return 0;
    if (p->recipients == NULL)
        return json_array_size(p->delivered) > 0 ? 1 : 0;
    size_t i;
    const json_t *item;
    json_array_foreach(p->recipients, i,
                       item) if (!contains(p->delivered, json_string_value(item))) return 0;
    return 1;
}

int cli_send(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"type", required_argument, NULL, 't'},
        {"json", required_argument, NULL, 'j'},
        {"binary", required_argument, NULL, 'b'},
        {"envelope", required_argument, NULL, 'E'},
        {"to", required_argument, NULL, 'r'},
        {"case-id", required_argument, NULL, 'C'},
        {"correlation-id", required_argument, NULL, 'R'},
        {"message-id", required_argument, NULL, 'm'},
        {"expires-in", required_argument, NULL, 'e'},
        {"wait", required_argument, NULL, 'w'},
        {"no-wait", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_path = NULL, *json_file = NULL, *binary_file = NULL, *wait = NULL;
    const char *envelope_file = NULL;
    const char *recipients[JX_RECIPIENTS_MAX];
    jx_seal_params params = {0};
    long long expires_in = 0, timeout_s = 30;
    bool no_wait = false, verbose = false;
    int option;
    optind = 1;
    while ((option = getopt_long(argc, argv, "c:vh", options, NULL)) != -1) {
        switch (option) {
        case 'c':
            config_path = optarg;
            break;
        case 't':
            params.type = optarg;
            break;
        case 'j':
            json_file = optarg;
            break;
        case 'b':
            binary_file = optarg;
            break;
        case 'E':
            envelope_file = optarg;
            break;
        case 'C':
            params.case_id = optarg;
            break;
        case 'R':
            params.correlation_id = optarg;
            break;
        case 'm':
            params.message_id = optarg;
            break;
        case 'w':
            wait = optarg;
            break;
        case 'n':
            no_wait = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'r':
            if (cli_add_recipient("send", &params, recipients, optarg) != 0)
                return CLI_USAGE;
            break;
        case 'e':
        case 'T':
            if (!cli_parse_integer(optarg, 1, 100LL * 365 * 86400,
                                   option == 'e' ? &expires_in : &timeout_s)) {
                fprintf(stderr, "justx send: --%s wants a positive number of seconds\n",
                        option == 'e' ? "expires-in" : "timeout");
                return CLI_USAGE;
            }
            break;
        case 'h':
            send_usage(stdout);
            return CLI_OK;
        default:
            send_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (envelope_file && (params.type || json_file || binary_file)) {
        fprintf(stderr, "justx send: --envelope is sent as it is: no --type, --json or --binary\n");
        return CLI_USAGE;
    }
    if (!config_path || optind != argc ||
        (!envelope_file && (!params.type || (json_file == NULL) == (binary_file == NULL)))) {
        fprintf(stderr, "justx send: -c, --type and one of --json or --binary (or --envelope) "
                        "are needed\n");
        send_usage(stderr);
        return CLI_USAGE;
    }
    if (wait && strcmp(wait, "ACCEPTED") != 0 && strcmp(wait, "DELIVERED") != 0) {
        fprintf(stderr, "justx send: --wait takes ACCEPTED or DELIVERED, not %s\n", wait);
        return CLI_USAGE;
    }
    if (wait && no_wait) {
        fprintf(stderr, "justx send: --wait and --no-wait exclude each other\n");
        return CLI_USAGE;
    }
    if (params.correlation_id && !jx_message_id_is_valid(params.correlation_id)) {
        fprintf(stderr, "justx send: --correlation-id wants the id of the message this one "
                        "answers (a lower-case UUID)\n");
        return CLI_USAGE;
    }
    if (params.message_id && !jx_message_id_is_valid(params.message_id)) {
        fprintf(stderr, "justx send: --message-id wants a lower-case UUID\n");
        return CLI_USAGE;
    }
    params.recipients = recipients;

    int status = CLI_FAILED;
    jx_error err = {0};
    uint8_t *payload = NULL;
    size_t payload_len = 0;
    cli_session session = {0};
    progress p = {.delivered = json_array(), .expired = json_array()};

    /* A sealed envelope is read as it is, like a binary payload. */
    if (cli_read_payload(params.type, json_file, envelope_file ? envelope_file : binary_file,
                         &payload, &payload_len, &err) != 0)
        goto failed;
    if (cli_session_start(&session, "send", config_path, verbose) != 0)
        goto done;
    if (expires_in > 0)
        params.expires_at_ms = jx_now_ms() + expires_in * 1000;
    char message_id[JX_MESSAGE_ID_MAX];
    if (envelope_file ? jx_adapter_submit(session.adapter, payload, payload_len, message_id, &err)
                      : jx_adapter_send(session.adapter, &params, payload, payload_len,
                                        message_id, &err))
        goto failed;
    printf("%s\n", message_id);
    fflush(stdout);
    if (no_wait) {
        status = CLI_OK;
        goto done;
    }

    bool want_delivered = wait && strcmp(wait, "DELIVERED") == 0;
    int64_t deadline = jx_transport_monotonic_ms() + timeout_s * 1000;
    int verdict = 0;
    for (;;) {
        p.count = 0;
        json_array_clear(p.delivered);
        json_array_clear(p.expired);
        if (jx_adapter_store_receipts_for(jx_adapter_get_store(session.adapter), message_id,
                                          note_receipt, &p, &err) != 0)
            goto failed;
        p.seen = p.count;
        verdict = judge(&p, want_delivered);
        if (verdict != 0 || jx_transport_monotonic_ms() >= deadline)
            break;
        /* sleeps up to 100 ms, waking early when a receipt is stored */
        if (jx_adapter_wait_receipt(session.adapter, message_id, "REJECTED", NULL, 100, &err) < 0)
            goto failed;
    }
    if (verdict > 0) {
        status = CLI_OK;
    } else if (verdict < 0) {
        if (p.rejected)
            fprintf(stderr, "justx send: the gateway refused message %s: %s\n", message_id,
                    p.reason);
        else
            fprintf(stderr, "justx send: message %s expired before every recipient took it\n",
                    message_id);
    } else {
        char link[JX_ERROR_MESSAGE_MAX + 64];
        fprintf(stderr,
                "justx send: no %s receipt for %s within %lld s (link %s); the message stays "
                "in the outbox of %s and is sent again by the next adapter started there\n",
                want_delivered ? "complete DELIVERED" : "ACCEPTED", message_id, timeout_s,
                cli_link_words(session.adapter, link, sizeof link), session.conf->state_dir);
        status = wait ? CLI_FAILED : CLI_OK;
    }
    goto done;

failed:
    cli_print_error("send", &err);
done:
    cli_session_stop(&session);
    json_decref(p.recipients);
    json_decref(p.delivered);
    json_decref(p.expired);
    free(payload);
    return status;
}
