/* cli.h — what the justx command's subcommands share: files, command-line
 * conventions and exit codes. */
#ifndef JX_CLI_H
#define JX_CLI_H

#include "envelope.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of every justx command. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* ---- command_line.c ---- */

/* Parses text, all of it, as a decimal number from min to max into *value;
 * false (and *value untouched) when it is not one. */
bool cli_parse_integer(const char *text, long long min, long long max, long long *value);

/* Adds a --to agency to params, whose recipients array is recipients (room
 * for JX_RECIPIENTS_MAX); prints "justx COMMAND: at most ..." and returns -1
 * when it is full. */
int cli_add_recipient(const char *command, jx_seal_params *params, const char **recipients,
                      const char *agency);

/* "justx COMMAND: CODE: sentence" on standard error. */
void cli_print_error(const char *command, const jx_error *err);

/* ---- files.c ---- */

/* Reads a whole file ("-" is standard input) of at most max bytes into a new
 * NUL-terminated buffer (caller frees). The size is checked before reading. */
uint8_t *cli_read_file(const char *path, size_t max, size_t *len, jx_error *err);

/* Writes data to path atomically (a temporary file in the same directory,
 * fsync, rename), so a reader never sees half a file. */
int cli_write_file(const char *path, const uint8_t *data, size_t len, jx_error *err);

/* The payload of a message to seal, in *payload (caller frees): json_file
 * (protobuf JSON mapping of type, encoded here) or, when json_file is NULL,
 * binary_file as it is. Either may be "-" (standard input); at most
 * JX_ENVELOPE_MAX_DEFAULT bytes are read. */
int cli_read_payload(const char *type, const char *json_file, const char *binary_file,
                     uint8_t **payload, size_t *payload_len, jx_error *err);

int cli_seal(int argc, char **argv);
int cli_open(int argc, char **argv);

/* ---- commands that run as a short-lived adapter (adapter_session.c) ---- */

#include "adapter.h"
#include "adapter_config.h"

typedef struct {
    const char *command; /* "send", ... for messages */
    bool verbose;        /* print every library log line, not only trouble */
    jx_adapter_conf *conf;
    jx_adapter *adapter;
} cli_session;

/* Loads the adapter configuration and starts an adapter; prints the reason
 * and returns -1 when it cannot. */
int cli_session_start(cli_session *session, const char *command, const char *config_path,
                      bool verbose);
void cli_session_stop(cli_session *session);

/* "CONNECTED", or "BACKING_OFF (last error TLS: ...)", in buffer. */
const char *cli_link_words(jx_adapter *adapter, char *buffer, size_t size);

int cli_send(int argc, char **argv);
int cli_recv(int argc, char **argv);
int cli_receipts(int argc, char **argv);
int cli_status(int argc, char **argv);

#endif
