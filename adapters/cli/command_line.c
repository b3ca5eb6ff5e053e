/* command_line.c — the command-line conventions the justx subcommands share:
 * whole numbers (seconds, sequence numbers) and --to lists in their
 * arguments, and the line that reports a failure. A caller prints its own
 * sentence when a number is refused: the ranges differ. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

bool cli_parse_integer(const char *text, long long min, long long max, long long *value)
{
    char *end;
    long long parsed = strtoll(text, &end, 10);
    if (*end != '\0' || parsed < min || parsed > max)
        return false;
    *value = parsed;
    return true;
}

int cli_add_recipient(const char *command, jx_seal_params *params, const char **recipients,
                      const char *agency)
{
    if (params->recipient_count == JX_RECIPIENTS_MAX) {
        fprintf(stderr, "justx %s: at most %d recipients\n", command, JX_RECIPIENTS_MAX);
        return -1;
    }
    recipients[params->recipient_count++] = agency;
    return 0;
}

void cli_print_error(const char *command, const jx_error *err)
{
    fprintf(stderr, "justx %s: %s: %s\n", command, jx_error_code_name(err->code), err->message);
}
