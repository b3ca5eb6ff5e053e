/* transport.h — socket plumbing shared by the TLS front end and the TLS dialer.
 *
 * Addresses are "host:port" (IPv6 as "[::1]:port"); private endpoints are
 * "ipc://<dir>/<name>" whose <dir> must be a directory of mode 0700 owned by
 * this process's user, so that no other local user can reach the plain side
 * of the TLS link.
 *
 * Heartbeats: the TLS relays pass ZMTP PING/PONG through unchanged, so dead
 * links are noticed end to end by ZeroMQ itself. Call
 * jx_transport_set_heartbeat on the gateway's ROUTER and on every adapter
 * DEALER before connecting or binding it.
 */
#ifndef JX_TRANSPORT_H
#define JX_TRANSPORT_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

/* Receives one key=value log line per event, from the thread that saw it.
 * Library code never prints; the daemon decides where lines go. */
typedef void (*jx_log_fn)(void *arg, const char *line);

/* Formats one line and hands it to log; nothing happens when log is NULL. */
void jx_transport_log(jx_log_fn log, void *arg, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies a sentence into out so that it can stand between the quotes of a
 * log value: quotes and backslashes become ', control characters spaces. */
void jx_transport_log_quote(const char *in, char *out, size_t size);

/* Heartbeat interval that the gateway and adapters use unless configured. */
enum { JX_TRANSPORT_HEARTBEAT_DEFAULT_MS = 5000 };

/* Splits "host:port" / "[v6]:port" into host and port (numeric or service). */
int jx_transport_split_address(const char *address, char *host, size_t host_size, char *port,
                               size_t port_size, jx_error *err);

/* Creates directory path (if needed) and makes it owner-only (0700): for
 * state directories and the folders that hold private ipc sockets. */
int jx_transport_private_dir(const char *path, jx_error *err);

/* Fills addr from an "ipc://" endpoint after checking that the directory that
 * holds it is private (mode 0700, owned by us). */
int jx_transport_private_ipc(const char *endpoint, struct sockaddr_un *addr, jx_error *err);

/* Sets ZMQ_HEARTBEAT_IVL to interval_ms and ZMQ_HEARTBEAT_TIMEOUT and
 * ZMQ_HEARTBEAT_TTL to three intervals on a ZeroMQ socket: a peer silent for
 * three intervals is disconnected (and a DEALER then reconnects). */
int jx_transport_set_heartbeat(void *zmq_socket, int interval_ms, jx_error *err);

/* Milliseconds from the monotonic clock, for timeouts. */
int64_t jx_transport_monotonic_ms(void);

/* Writes "host:port" of a socket address (for log lines). */
void jx_transport_format_sockaddr(const void *sockaddr, char *out, size_t size);

/* TCP_NODELAY (ZMTP frames are small and each is waited for) and
 * SO_KEEPALIVE on a TLS side's socket; best effort. */
void jx_transport_tune_tcp(int fd);

/* Puts fd in non-blocking, close-on-exec mode. */
int jx_transport_nonblocking(int fd, jx_error *err);

#endif
