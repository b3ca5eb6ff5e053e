/* main.c — the justx command: an agency's tool for sealing, opening and (with
 * the adapter) sending and receiving messages. Dispatches to one file per
 * subcommand. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"seal", cli_seal, "sign a payload into an envelope file"},
    {"open", cli_open, "verify an envelope file and print its header and payload"},
    {"send", cli_send, "send a message through the agency's adapter"},
    {"recv", cli_recv, "take the next received message"},
    {"receipts", cli_receipts, "list receipts for messages this agency sent"},
    {"status", cli_status, "the adapter's link to the gateway and its queues"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: justx COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'justx COMMAND --help' describes a command. Exit status: 0 success, "
                 "1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "justx: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
