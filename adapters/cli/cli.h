/* cli.h — what the justx command's subcommands share: files and exit codes. */
#ifndef JX_CLI_H
#define JX_CLI_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

/* Exit statuses of every justx command. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Reads a whole file ("-" is standard input) of at most max bytes into a new
 * NUL-terminated buffer (caller frees). The size is checked before reading. */
uint8_t *cli_read_file(const char *path, size_t max, size_t *len, jx_error *err);

/* Writes data to path atomically (a temporary file in the same directory,
 * fsync, rename), so a reader never sees half a file. */
int cli_write_file(const char *path, const uint8_t *data, size_t len, jx_error *err);

int cli_seal(int argc, char **argv);
int cli_open(int argc, char **argv);

#endif
