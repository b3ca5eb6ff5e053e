/* broker.h — the gateway's heart: the ROUTER socket, group commit, delivery,
 * receipts and administration, in one thread.
 *
 * The broker owns the journal, the spool and the configuration. The TLS
 * front end runs in its own thread and only relays bytes to the broker's
 * private ipc endpoint.
 */
#ifndef JX_BROKER_H
#define JX_BROKER_H

#include "config.h"
#include "error.h"
#include "transport.h"

#include <signal.h>

typedef struct jx_broker jx_broker;

/* Opens the state directory (journal, spool, private sockets), recovers the
 * journal, starts the TLS front end. Takes ownership of config. */
jx_broker *jx_broker_new(jx_gateway_config *config, jx_log_fn log, void *log_arg, jx_error *err);

/* Runs until *stop becomes non-zero; reloads the configuration from its
 * file whenever *reload is non-zero (and clears it). Returns 0 after a clean
 * stop, -1 with err when the journal or spool failed (the gateway must not
 * go on accepting then). */
int jx_broker_run(jx_broker *self, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
                  jx_error *err);

/* Journals GATEWAY_STOPPED, closes everything. */
void jx_broker_destroy(jx_broker **self_p);

/* The TCP port the front end listens on. */
int jx_broker_port(const jx_broker *self);

#endif
