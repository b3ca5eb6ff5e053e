/* open.c — `justx open`: verify an envelope file as the gateway or a
 * recipient would, and print who sent what. */
#include "cli.h"
#include "envelope.h"
#include "json.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void open_usage(FILE *out)
{
    fprintf(out,
            "usage: justx open --ca CA.pem [--crl CRL.pem]... [--sender AGENCY]\n"
            "                  [--max-size BYTES] [--json] ENVELOPE\n\n"
            "Verifies ENVELOPE (- for standard input): the signer's certificate against the\n"
            "trust anchors in CA.pem and the CRLs, the signature, the payload digest and the\n"
            "payload type. Prints the header and the payload as JSON. --sender also requires\n"
            "the message to come from that agency. Exit status 1 and the reason when any\n"
            "check fails.\n");
}

static json_t *opened_to_json(const jx_opened *opened, jx_error *err)
{
    json_t *header = jx_json_from_message(&opened->header->base, err);
    json_t *payload = header ? jx_json_from_message(opened->payload, err) : NULL;
    if (payload == NULL) {
        json_decref(header);
        return NULL;
    }
    char fingerprint[65];
    for (int i = 0; i < 32; i++)
        sprintf(fingerprint + 2 * i, "%02x", opened->signer->fingerprint[i]);
    return json_pack("{s:b, s:s, s:s, s:o, s:o}", "verified", 1, "signer", opened->signer->agency,
                     "signerCertificateSha256", fingerprint, "header", header, "payload",
                     payload);
}

int cli_open(int argc, char **argv)
{
    static const struct option options[] = {
        {"ca", required_argument, NULL, 'a'},      {"crl", required_argument, NULL, 'l'},
        {"sender", required_argument, NULL, 's'},  {"max-size", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *ca = NULL;
    const char *crls[16];
    size_t crl_count = 0;
    bool as_json = false;
    jx_open_params params = {0};
    int option;
    optind = 1;
    while ((option = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (option) {
        case 'a': ca = optarg; break;
        case 'l':
            if (crl_count == sizeof crls / sizeof crls[0]) {
                fprintf(stderr, "justx open: at most 16 CRL files\n");
                return CLI_USAGE;
            }
            crls[crl_count++] = optarg;
            break;
        case 's': params.transport_identity = optarg; break;
        case 'm': params.max_envelope_bytes = strtoull(optarg, NULL, 10); break;
        case 'j': as_json = true; break;
        case 'h': open_usage(stdout); return CLI_OK;
        default: open_usage(stderr); return CLI_USAGE;
        }
    }
    if (ca == NULL || optind != argc - 1) {
        fprintf(stderr, "justx open: --ca and one envelope file are needed\n");
        open_usage(stderr);
        return CLI_USAGE;
    }
    const char *path = argv[optind];
    size_t limit = params.max_envelope_bytes ? params.max_envelope_bytes
                                             : (size_t)JX_ENVELOPE_MAX_DEFAULT;

    int status = CLI_FAILED;
    jx_error err = {0};
    jx_trust *trust = NULL;
    jx_opened *opened = NULL;
    json_t *report = NULL;
    size_t len = 0;
    /* One byte over the limit is read so that open reports TOO_LARGE itself. */
    uint8_t *bytes = cli_read_file(path, limit + 1, &len, &err);
    if (bytes == NULL)
        goto done;
    trust = jx_trust_new(ca, &err);
    if (trust == NULL)
        goto done;
    for (size_t i = 0; i < crl_count; i++)
        if (jx_trust_add_crl(trust, crls[i], &err) != 0)
            goto done;
    opened = jx_envelope_open(trust, bytes, len, &params, &err);
    if (opened == NULL)
        goto done;
    report = opened_to_json(opened, &err);
    if (report == NULL)
        goto done;
    if (as_json) {
        json_dumpf(report, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        printf("verified: message %s of type %s from %s\n", opened->header->message_id,
               opened->type->name, opened->signer->agency);
        printf("signer certificate SHA-256: %s\n",
               json_string_value(json_object_get(report, "signerCertificateSha256")));
        printf("header:\n");
        json_dumpf(json_object_get(report, "header"), stdout, JSON_INDENT(2));
        printf("\npayload:\n");
        json_dumpf(json_object_get(report, "payload"), stdout, JSON_INDENT(2));
        putchar('\n');
    }
    status = CLI_OK;
done:
    if (status != CLI_OK) {
        if (as_json) {
            json_t *failure = json_pack("{s:b, s:s, s:s}", "verified", 0, "code",
                                        jx_error_code_name(err.code), "reason", err.message);
            json_dumpf(failure, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(failure);
        }
        fprintf(stderr, "justx open: rejected: %s: %s\n", jx_error_code_name(err.code),
                err.message);
    }
    json_decref(report);
    jx_opened_destroy(&opened);
    jx_trust_destroy(&trust);
    free(bytes);
    return status;
}
