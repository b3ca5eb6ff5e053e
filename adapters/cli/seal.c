/* seal.c — `justx seal`: sign a JSON or binary payload into an envelope file. */
#include "cli.h"
#include "envelope.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void seal_usage(FILE *out)
{
    fprintf(out,
            "usage: justx seal --type TYPE --cert CERT.pem --key KEY.pem\n"
            "                  (--json FILE | --binary FILE) --out ENVELOPE\n"
            "                  [--to AGENCY]... [--case-id ID] [--correlation-id ID]\n"
            "                  [--expires-in SECONDS] [--message-id UUID]\n\n"
            "Signs a payload with the agency's key and writes the envelope to ENVELOPE.\n"
            "The payload is JSON (protobuf JSON mapping) or serialized protobuf of TYPE,\n"
            "e.g. justx.v1.SentenceOrder; FILE may be - for standard input. Without --to\n"
            "the gateway's routes choose the recipients. Prints the message id.\n");
}

int cli_seal(int argc, char **argv)
{
    static const struct option options[] = {
        {"type", required_argument, NULL, 't'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"json", required_argument, NULL, 'j'},
        {"binary", required_argument, NULL, 'b'},
        {"out", required_argument, NULL, 'o'},
        {"to", required_argument, NULL, 'r'},
        {"case-id", required_argument, NULL, 'C'},
        {"correlation-id", required_argument, NULL, 'R'},
        {"expires-in", required_argument, NULL, 'e'},
        {"message-id", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cert = NULL, *key = NULL, *json_file = NULL, *binary_file = NULL, *out = NULL;
    const char *recipients[JX_RECIPIENTS_MAX];
    jx_seal_params params = {0};
    long long expires_in = 0;
    int option;
    optind = 1;
    while ((option = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (option) {
        case 't': params.type = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'j': json_file = optarg; break;
        case 'b': binary_file = optarg; break;
        case 'o': out = optarg; break;
        case 'C': params.case_id = optarg; break;
        case 'R': params.correlation_id = optarg; break;
        case 'm': params.message_id = optarg; break;
        case 'r':
            if (cli_add_recipient("seal", &params, recipients, optarg) != 0)
                return CLI_USAGE;
            break;
        case 'e':
            if (!cli_parse_integer(optarg, 1, LLONG_MAX, &expires_in)) {
                fprintf(stderr, "justx seal: --expires-in wants a positive number of seconds\n");
                return CLI_USAGE;
            }
            break;
        case 'h': seal_usage(stdout); return CLI_OK;
        default: seal_usage(stderr); return CLI_USAGE;
        }
    }
    if (!params.type || !cert || !key || !out || optind != argc ||
        (json_file == NULL) == (binary_file == NULL)) {
        fprintf(stderr, "justx seal: --type, --cert, --key, --out and one of --json or --binary "
                        "are needed\n");
        seal_usage(stderr);
        return CLI_USAGE;
    }
    params.recipients = recipients;

    int status = CLI_FAILED;
    jx_error err = {0};
    jx_signer *signer = NULL;
    uint8_t *payload = NULL, *envelope = NULL;
    size_t payload_len = 0, envelope_len = 0;
    char message_id[JX_MESSAGE_ID_MAX];

    if (cli_read_payload(params.type, json_file, binary_file, &payload, &payload_len, &err) != 0)
        goto done;
    signer = jx_signer_new(cert, key, &err);
    if (signer == NULL)
        goto done;
    if (expires_in > 0)
        params.expires_at_ms = jx_now_ms() + expires_in * 1000;
    if (jx_envelope_seal(signer, &params, payload, payload_len, &envelope, &envelope_len,
                         message_id, &err) != 0 ||
        cli_write_file(out, envelope, envelope_len, &err) != 0)
        goto done;
    printf("%s\n", message_id);
    status = CLI_OK;
done:
    if (status != CLI_OK)
        cli_print_error("seal", &err);
    jx_signer_destroy(&signer);
    free(payload);
    free(envelope);
    return status;
}
