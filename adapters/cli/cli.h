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

/* ---- commands that run as a short-lived adapter (adapter_session.c) ---- */

#include "adapter.h"
#include "adapter_config.h"

#include <stdbool.h>

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
