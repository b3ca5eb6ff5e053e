/* tls_frontend.h — the gateway's TLS front end: agencies' TLS in, ROUTER's ipc out.
 *
 * The gateway's ZeroMQ ROUTER binds only a private endpoint
 * (ipc://<dir>/router.ipc, <dir> of mode 0700). The front end listens on the
 * public address, and for each TCP connection:
 *   1. completes a TLS handshake (1.3 unless 1.2 is configured) that requires
 *      a client certificate verifying against the jx_trust anchors and CRLs
 *      and carrying exactly one agency SAN URI;
 *   2. connects a unix socket to the ROUTER's endpoint and relays bytes,
 *      checking the client's ZMTP greeting (version >= 3, mechanism NULL) and
 *      rewriting its READY so that the ROUTER sees the routing id
 *      "<AGENCY-ID>/<serial>" (see zmtp.h), whatever the client asked for.
 * Steps 1 and 2 must finish within the handshake timeout. Every refused
 * connection produces one log line naming the reason.
 *
 * One thread serves every connection with epoll; jx_tls_frontend_new starts
 * it and jx_tls_frontend_destroy stops it and closes every connection.
 *
 * Log lines are key=value, e.g.
 *   event=refused reason=CERTIFICATE_REVOKED peer=127.0.0.1:40512 detail="..."
 *   event=connected agency=KG-PROBATION routing_id=KG-PROBATION/3 peer=... tls=...
 *   event=closed routing_id=KG-PROBATION/3 bytes_in=... bytes_out=... detail="..."
 * They are passed to the log callback from the front end's thread.
 */
#ifndef JX_TLS_FRONTEND_H
#define JX_TLS_FRONTEND_H

#include "error.h"
#include "transport.h"
#include "trust.h"

typedef struct {
    const char *listen;             /* "host:port"; port 0 picks a free port */
    const char *cert_file;          /* gateway certificate (chain), PEM */
    const char *key_file;           /* its private key, PEM */
    jx_trust *trust;                /* anchors and CRLs for client certificates; borrowed, must
                                       outlive the front end */
    int tls_min_version;            /* 0 or TLS1_3_VERSION: TLS 1.3; TLS1_2_VERSION allows 1.2 */
    const char *router_endpoint;    /* "ipc://<dir>/router.ipc", <dir> mode 0700 */
    int handshake_timeout_ms;       /* TLS + ZMTP greeting + READY; 0: 10000 */
    int max_connections;            /* 0: 1024 */
    int max_connections_per_agency; /* 0: 16 */
    size_t buffer_size;             /* per direction per connection; 0: 256 KiB */
    jx_log_fn log;                  /* may be NULL */
    void *log_arg;
} jx_tls_frontend_config;

typedef struct jx_tls_frontend jx_tls_frontend;

/* Loads the TLS files, binds the listening socket and starts the thread.
 * NULL and err (KEY, CONFIG, IO, INVALID_ARGUMENT, SYSTEM) on failure. */
jx_tls_frontend *jx_tls_frontend_new(const jx_tls_frontend_config *config, jx_error *err);

/* Stops the thread, closes every connection and the listening socket. */
void jx_tls_frontend_destroy(jx_tls_frontend **self_p);

/* The TCP port actually listened on (useful with port 0). */
int jx_tls_frontend_port(const jx_tls_frontend *self);

/* Connections whose TLS handshake and ZMTP READY went through and are being
 * relayed now. */
int jx_tls_frontend_relaying(const jx_tls_frontend *self);

#endif
