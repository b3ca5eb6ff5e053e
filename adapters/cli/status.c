/* status.c — `justx status`: can this agency reach the gateway, and what is
 * waiting in its adapter's store.
 *
 * Starts a short-lived adapter, waits up to --timeout for its link to come
 * up (a failed TLS handshake shows with its reason), and reports the store's
 * counts. While it runs, it also sends whatever waits in the outbox.
 */
#include "cli.h"

#include <jansson.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void status_usage(FILE *out)
{
    fprintf(out, "usage: justx status -c ADAPTER.conf [--timeout SECONDS] [--json] [-v]\n\n"
                 "Connects to the gateway as the agency's adapter and reports the link state\n"
                 "(CONNECTED, or why not) and the adapter's store: messages waiting in the\n"
                 "outbox, sent, received, not yet taken by the agency system, and receipts.\n\n"
                 "  --timeout SECONDS  how long to try to connect (default 5)\n"
                 "  --json             one JSON object\n\n"
                 "Exit status: 0 connected, 1 not connected or failure, 2 usage error.\n");
}

int cli_status(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"timeout", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},         {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    const char *config_path = NULL;
    long long timeout_s = 5;
    bool as_json = false, verbose = false;
    int option;
    optind = 1;
    while ((option = getopt_long(argc, argv, "c:vh", options, NULL)) != -1) {
        switch (option) {
        case 'c':
            config_path = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'T':
            if (!cli_parse_integer(optarg, 0, 3600, &timeout_s)) {
                fprintf(stderr, "justx status: --timeout wants 0 to 3600 seconds\n");
                return CLI_USAGE;
            }
            break;
        case 'h':
            status_usage(stdout);
            return CLI_OK;
        default:
            status_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (config_path == NULL || optind != argc) {
        fprintf(stderr, "justx status: -c ADAPTER.conf is needed\n");
        status_usage(stderr);
        return CLI_USAGE;
    }
    cli_session session;
    if (cli_session_start(&session, "status", config_path, verbose) != 0)
        return CLI_FAILED;
    int64_t deadline = jx_transport_monotonic_ms() + timeout_s * 1000;
    jx_error last = {0}, err = {0};
    jx_tls_dialer_state state;
    for (;;) {
        state = jx_adapter_link_state(session.adapter, &last);
        if (state == JX_TLS_DIALER_CONNECTED || jx_transport_monotonic_ms() >= deadline)
            break;
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    jx_adapter_store_counts counts;
    int status = CLI_FAILED;
    if (jx_adapter_store_count(jx_adapter_get_store(session.adapter), &counts, &err) != 0) {
        cli_print_error("status", &err);
        goto done;
    }
    if (as_json) {
        json_t *object =
            json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I}}", "agency",
                      jx_adapter_agency(session.adapter), "gateway", session.conf->gateway, "link",
                      jx_tls_dialer_state_name(state), "counts", "outboxPending",
                      (json_int_t)counts.outbox_pending, "sent", (json_int_t)counts.sent, "inbox",
                      (json_int_t)counts.inbox, "inboxUnconsumed",
                      (json_int_t)counts.inbox_unconsumed, "receipts", (json_int_t)counts.receipts);
        if (object && last.code != JX_OK && state != JX_TLS_DIALER_CONNECTED) {
            json_object_set_new(object, "lastErrorCode",
                                json_string(jx_error_code_name(last.code)));
            json_object_set_new(object, "lastError", json_string(last.message));
        }
        json_dumpf(object, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(object);
    } else {
        printf("agency:    %s\n", jx_adapter_agency(session.adapter));
        printf("gateway:   %s\n", session.conf->gateway);
        if (state == JX_TLS_DIALER_CONNECTED || last.code == JX_OK)
            printf("link:      %s\n", jx_tls_dialer_state_name(state));
        else
            printf("link:      %s (last error %s: %s)\n", jx_tls_dialer_state_name(state),
                   jx_error_code_name(last.code), last.message);
        printf("state dir: %s\n", session.conf->state_dir);
        printf("outbox:    %lld waiting for the gateway's answer\n",
               (long long)counts.outbox_pending);
        printf("sent:      %lld\n", (long long)counts.sent);
        printf("inbox:     %lld received, %lld not yet taken\n", (long long)counts.inbox,
               (long long)counts.inbox_unconsumed);
        printf("receipts:  %lld\n", (long long)counts.receipts);
    }
    status = state == JX_TLS_DIALER_CONNECTED ? CLI_OK : CLI_FAILED;
done:
    cli_session_stop(&session);
    return status;
}
