/* tls_dialer.h — the adapter's side of the transport: local ipc in, TLS to the gateway out.
 *
 * The agency process's DEALER connects to a private local endpoint
 * (ipc://<dir>/dialer.ipc, <dir> of mode 0700) on which the dialer listens.
 * For each local connection the dialer opens a TLS connection to the
 * gateway, verifying the gateway's chain against ca_file and its name, and
 * presenting the agency certificate; then it relays bytes both ways.
 *
 * When the TLS link drops, the dialer closes the local connection too; the
 * DEALER notices only a reconnect (libzmq reconnects by itself and re-sends
 * what it had not delivered), and the dialer dials again. Attempts that fail
 * before the gateway has answered are spaced by an exponential backoff
 * (backoff_min_ms doubling up to backoff_max_ms), reset by a link that
 * carried bytes from the gateway. The state is observable by a getter and a
 * callback.
 *
 * One thread, started by jx_tls_dialer_new and stopped by destroy.
 */
#ifndef JX_TLS_DIALER_H
#define JX_TLS_DIALER_H

#include "error.h"
#include "transport.h"

#include <stddef.h>

typedef enum {
    JX_TLS_DIALER_IDLE,       /* no local connection to carry */
    JX_TLS_DIALER_CONNECTING, /* dialing, in TLS handshake, or waiting for the gateway's greeting */
    JX_TLS_DIALER_CONNECTED,  /* the gateway has answered on the link */
    JX_TLS_DIALER_BACKING_OFF /* the last attempt failed or the link dropped; retry pending */
} jx_tls_dialer_state;

typedef void (*jx_tls_dialer_state_fn)(void *arg, jx_tls_dialer_state state,
                                       const jx_error *last_error);

typedef struct {
    const char *local_endpoint; /* "ipc://<dir>/dialer.ipc", <dir> mode 0700 */
    const char *gateway;        /* "host:port" */
    const char *gateway_name;   /* DNS name or IP the gateway certificate must carry;
                                   NULL: the host part of gateway */
    const char *ca_file;        /* anchors for the gateway's chain, PEM */
    const char *cert_file;      /* agency certificate (chain), PEM */
    const char *key_file;       /* its private key, PEM */
    int tls_min_version;        /* 0 or TLS1_3_VERSION: TLS 1.3; TLS1_2_VERSION allows 1.2 */
    int backoff_min_ms;         /* 0: 100 */
    int backoff_max_ms;         /* 0: 10000 */
    int connect_timeout_ms;     /* TCP + TLS + the gateway's first bytes; 0: 10000 */
    size_t buffer_size;         /* per direction per link; 0: 256 KiB */
    jx_log_fn log;              /* may be NULL */
    void *log_arg;
    jx_tls_dialer_state_fn on_state; /* may be NULL; called from the dialer thread */
    void *state_arg;
} jx_tls_dialer_config;

typedef struct jx_tls_dialer jx_tls_dialer;

/* Loads the TLS files, listens on the local endpoint, starts the thread.
 * NULL and err on failure. */
jx_tls_dialer *jx_tls_dialer_new(const jx_tls_dialer_config *config, jx_error *err);

/* Stops the thread, closes every link and removes the local socket file. */
void jx_tls_dialer_destroy(jx_tls_dialer **self_p);

/* The current state; last_error (may be NULL) receives the last failure, or
 * code OK when there has been none. Thread-safe. */
jx_tls_dialer_state jx_tls_dialer_get_state(jx_tls_dialer *self, jx_error *last_error);

/* "IDLE", "CONNECTING", "CONNECTED", "BACKING_OFF". */
const char *jx_tls_dialer_state_name(jx_tls_dialer_state state);

#endif
