/* recv.c — `justx recv`: take the next message the agency has received.
 *
 * The adapter verified the message end to end when it arrived and stored it
 * before acknowledging it; jx_adapter_receive verifies it again from the
 * store. The message is consumed (never handed out again, by this command,
 * the daemon's drop-box or its HTTP API) only after it has been printed and
 * standard output flushed without error, unless --keep.
 */
#include "cli.h"
#include "message_json.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void recv_usage(FILE *out)
{
    fprintf(out, "usage: justx recv -c ADAPTER.conf [--timeout SECONDS] [--json] [--keep] [-v]\n\n"
                 "Prints the oldest received message the agency system has not taken yet:\n"
                 "sender, message id, type, case and the payload as JSON (protobuf JSON\n"
                 "mapping), and marks it as taken, so that it is never handed out again.\n\n"
                 "  --timeout SECONDS  wait this long for a message to arrive (default 10; 0:\n"
                 "                     only what is stored already)\n"
                 "  --json             print the message as one JSON object on one line\n"
                 "  --keep             do not mark it as taken\n"
                 "  -v, --verbose      print the adapter's log lines\n\n"
                 "Exit status: 0 a message was printed, 1 none came in time or failure, 2 usage\n"
                 "error.\n");
}

int cli_recv(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},
        {"keep", no_argument, NULL, 'k'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_path = NULL;
    long long timeout_s = 10;
    bool as_json = false, keep = false, verbose = false;
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
        case 'k':
            keep = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'T':
            if (!cli_parse_integer(optarg, 0, 86400, &timeout_s)) {
                fprintf(stderr, "justx recv: --timeout wants 0 to 86400 seconds\n");
                return CLI_USAGE;
            }
            break;
        case 'h':
            recv_usage(stdout);
            return CLI_OK;
        default:
            recv_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (config_path == NULL || optind != argc) {
        fprintf(stderr, "justx recv: -c ADAPTER.conf is needed\n");
        recv_usage(stderr);
        return CLI_USAGE;
    }

    int status = CLI_FAILED;
    jx_error err = {0};
    cli_session session = {0};
    jx_adapter_message *message = NULL;
    json_t *object = NULL;
    if (cli_session_start(&session, "recv", config_path, verbose) != 0)
        return CLI_FAILED;
    int got = jx_adapter_receive(session.adapter, (int)(timeout_s * 1000), &message, &err);
    if (got < 0)
        goto failed;
    if (got == 0) {
        char link[JX_ERROR_MESSAGE_MAX + 64];
        fprintf(stderr, "justx recv: no message within %lld s (link %s)\n", timeout_s,
                cli_link_words(session.adapter, link, sizeof link));
        goto done;
    }
    object = jx_message_json_received(message->opened, message->sequence, message->received_at_ms,
                                      false, &err);
    if (object == NULL)
        goto failed;
    json_object_del(object, "consumed");
    const Justx__V1__Header *header = message->opened->header;
    if (as_json) {
        if (json_dumpf(object, stdout, JSON_COMPACT) != 0)
            goto output_failed;
        putchar('\n');
    } else {
        printf("message %s\nfrom: %s\ntype: %s\n", header->message_id,
               message->opened->signer->agency, header->type);
        if (header->case_id[0])
            printf("case: %s\n", header->case_id);
        if (header->correlation_id[0])
            printf("in answer to: %s\n", header->correlation_id);
        printf("payload:\n");
        if (json_dumpf(json_object_get(object, "payload"), stdout, JSON_INDENT(2)) != 0)
            goto output_failed;
        putchar('\n');
    }
    /* Consumed only once the agency system surely has it. */
    if (fflush(stdout) != 0 || ferror(stdout))
        goto output_failed;
    if (!keep && jx_adapter_consume(session.adapter, message->opened->signer->agency,
                                    header->message_id, &err) < 0)
        goto failed;
    status = CLI_OK;
    goto done;

output_failed:
    fprintf(stderr, "justx recv: cannot write the message to standard output; it was not taken\n");
    goto done;
failed:
    cli_print_error("recv", &err);
done:
    json_decref(object);
    jx_adapter_message_destroy(&message);
    cli_session_stop(&session);
    return status;
}
