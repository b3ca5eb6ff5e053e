/* audit_main.c — justx-audit: the auditor's tool over journal files.
 *
 * Each command lives in its own file (audit_verify.c, audit_query.c,
 * audit_proof.c); this file only dispatches. Exit status everywhere: 0 all
 * verified (or found), 1 something does not verify, 2 usage error.
 */
#include "audit.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: justx-audit COMMAND [ARGS] [--json]\n"
    "\n"
    "Verifies and reads a justx audit journal without trusting the gateway.\n"
    "\n"
    "commands:\n"
    "  verify DIR --key KEY          recompute everything; check every checkpoint\n"
    "  trail DIR --message-id ID     every record of one message, in order\n"
    "  trail DIR --case-id ID        every record of one case, in order\n"
    "  search DIR [filters]          records by agency, type, event, time range\n"
    "  export DIR --format jsonl|csv every record, for other tools\n"
    "  prove DIR --index N           an inclusion proof (c2sp.org/tlog-proof@v1)\n"
    "  verify-proof PROOF --key KEY  check a proof with the public key alone\n"
    "\n"
    "\"justx-audit COMMAND --help\" describes each command. KEY is the gateway's\n"
    "Ed25519 public key or certificate in PEM. The journal format is described\n"
    "in docs/journal-format.md.\n"
    "\n"
    "Exit status: 0 verified, 1 something does not verify, 2 usage error.\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"verify", audit_command_verify}, {"trail", audit_command_trail},
        {"search", audit_command_search}, {"export", audit_command_export},
        {"prove", audit_command_prove},   {"verify-proof", audit_command_verify_proof},
    };
    if (argc < 2) {
        fputs(usage, stderr);
        return AUDIT_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return AUDIT_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "justx-audit: unknown command \"%s\"\n\n%s", argv[1], usage);
    return AUDIT_EXIT_USAGE;
}
