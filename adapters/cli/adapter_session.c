/* adapter_session.c — a CLI command as a short-lived adapter.
 *
 * send, recv and status start an adapter from the agency's configuration
 * file (link and I/O thread), do their job and stop it. That is safe at any
 * moment: what was handed over is in the durable outbox, and the next start
 * of any adapter on the same state_dir (the daemon or another command) sends
 * it. A daemon may run on the same state_dir meanwhile: the store is shared
 * through SQLite, and the gateway accepts several links per agency.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Library log lines: all of them with --verbose, otherwise only trouble. */
static void session_log(void *arg, const char *line)
{
    const cli_session *session = arg;
    if (session->verbose || strstr(line, "level=error") || strstr(line, "level=warning"))
        fprintf(stderr, "justx %s: %s\n", session->command, line);
}

int cli_session_start(cli_session *session, const char *command, const char *config_path,
                      bool verbose)
{
    memset(session, 0, sizeof *session);
    session->command = command;
    session->verbose = verbose;
    jx_error err = {0};
    session->conf = jx_adapter_conf_load(config_path, &err);
    if (session->conf == NULL)
        goto failed;
    jx_adapter_config config;
    jx_adapter_conf_fill(session->conf, &config);
    config.log = session_log;
    config.log_arg = session;
    session->adapter = jx_adapter_new(&config, &err);
    if (session->adapter == NULL)
        goto failed;
    return 0;
failed:
    cli_print_error(command, &err);
    cli_session_stop(session);
    return -1;
}

void cli_session_stop(cli_session *session)
{
    jx_adapter_destroy(&session->adapter);
    jx_adapter_conf_destroy(&session->conf);
}

const char *cli_link_words(jx_adapter *adapter, char *buffer, size_t size)
{
    jx_error last = {0};
    jx_tls_dialer_state state = jx_adapter_link_state(adapter, &last);
    if (last.code != JX_OK)
        snprintf(buffer, size, "%s (last error %s: %s)", jx_tls_dialer_state_name(state),
                 jx_error_code_name(last.code), last.message);
    else
        snprintf(buffer, size, "%s", jx_tls_dialer_state_name(state));
    return buffer;
}
