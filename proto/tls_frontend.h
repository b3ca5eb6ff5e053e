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
 * The anchors and CRLs can be replaced while it runs
 * (jx_tls_frontend_set_trust, used by the gateway's reload): new handshakes
 * use the new ones at once, and an established connection whose certificate
 * they no longer accept is closed; the others stay up.
 *
 * Log lines are key=value, e.g.
 *   event=refused reason=CERTIFICATE_REVOKED peer=127.0.0.1:40512 detail="..."
 *   event=connected agency=KG-PROBATION routing_id=KG-PROBATION/3 peer=... tls=...
 *   event=closed routing_id=KG-PROBATION/3 bytes_in=... bytes_out=... detail="..."
 *   event=dropped reason=CERTIFICATE_REVOKED agency=... routing_id=... detail="..."
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
                                       outlive the front end or its replacement by
                                       jx_tls_frontend_set_trust */
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

/* Replaces the trust store client certificates are verified against, e.g.
 * after the configuration (anchors, CRLs) was reloaded. The front end's own
 * thread makes the switch between two batches of events; the caller waits
 * for it (at most 5 s). From then on:
 *  - every handshake that starts verifies against trust;
 *  - a handshake already under way finishes against the previous store and
 *    is checked against trust before its first byte reaches the ROUTER
 *    (refused like any other handshake if trust rejects it);
 *  - every connection past its handshake whose certificate trust rejects
 *    (revoked, expired, anchor gone) is closed, one line
 *    "event=dropped reason=<CODE> ..." each, so that a revoked agency stops
 *    sending *and receiving* at once; connections trust still accepts stay
 *    up, untouched.
 * Ownership: trust is borrowed, like config->trust: it must outlive the front
 * end or the next successful call. When this returns 0 the front end no
 * longer touches the previous trust (a handshake still verifying against the
 * previous X509_STORE holds its own OpenSSL reference to it), so the caller
 * may destroy the previous one at once. On -1 nothing changed: the previous
 * trust stays in force and the caller still owns both (SYSTEM: the thread did
 * not take it in time, or OpenSSL could not attach it; INVALID_ARGUMENT).
 * Callers are served one at a time. Never call it from the log callback: that
 * runs on the front end's thread, which would wait for itself. */
int jx_tls_frontend_set_trust(jx_tls_frontend *self, jx_trust *trust, jx_error *err);

/* The TCP port actually listened on (useful with port 0). */
int jx_tls_frontend_port(const jx_tls_frontend *self);

/* Connections whose TLS handshake and ZMTP READY went through and are being
 * relayed now. */
int jx_tls_frontend_relaying(const jx_tls_frontend *self);

#endif
