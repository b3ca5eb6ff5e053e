/* tls_relay.h — moves bytes between one TLS connection and one plain socket.
 *
 * Used by the front end (TLS from an agency <-> the ROUTER's ipc socket) and
 * by the dialer (the DEALER's ipc socket <-> TLS to the gateway). Both sockets
 * are non-blocking; the owner calls jx_tls_relay_pump whenever either is
 * ready, then asks which events to wait for next. One large buffer per
 * direction keeps system calls few: a pump moves everything that is ready.
 *
 * Optionally a jx_zmtp_filter sits on the TLS-to-plain direction (the front
 * end's check of the client greeting and READY); once it is done the bytes
 * pass untouched.
 *
 * End of stream: when one side closes, what is buffered for the other side
 * is still written; then the pump reports the relay finished.
 */
#ifndef JX_TLS_RELAY_H
#define JX_TLS_RELAY_H

#include "error.h"
#include "zmtp.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { JX_TLS_RELAY_BUFFER_DEFAULT = 256 * 1024 };

typedef struct {
    uint8_t *data;
    size_t capacity;
    size_t head; /* first byte not yet written */
    size_t tail; /* one past the last byte read */
} jx_relay_buffer;

typedef enum { JX_RELAY_IDLE, JX_RELAY_WANTS_READ, JX_RELAY_WANTS_WRITE } jx_relay_wait;

typedef struct {
    SSL *ssl;     /* NULL until the TLS side is up; owned (freed by release) */
    int tls_fd;   /* -1 when none; owned */
    int plain_fd; /* -1 when none; owned */
    jx_relay_buffer to_plain;
    jx_relay_buffer to_tls;
    jx_zmtp_filter *filter; /* owned; freed when done */
    bool tls_closed;
    bool plain_closed;
    bool tls_clean_close; /* the peer sent close_notify */
    jx_relay_wait tls_read_wait;
    jx_relay_wait tls_write_wait;
    bool plain_read_blocked;
    bool plain_write_blocked;
    bool more; /* the last pump stopped early: pump again without waiting */
    /* Front end: release the client's bytes to the ROUTER in the order a
     * libzmq peer sends them: its signature; its major version once the
     * ROUTER's signature has come; the rest of its greeting once the
     * ROUTER's major version has come; its READY once the ROUTER's whole
     * greeting has come; anything after READY once the ROUTER's own READY
     * has come. libzmq 4.3.4 drops or stalls a peer whose bytes run ahead of
     * that (a message before the ROUTER has sent READY is taken for a bad
     * handshake command), and a client is free to send everything at once;
     * `openssl s_client` does. */
    bool pace_greeting;
    uint64_t bytes_to_plain;
    uint64_t filtered_bytes;   /* filter output so far */
    uint64_t client_ready_end; /* offset after the client's READY in the forwarded stream */
    uint64_t router_ready_end; /* offset after the ROUTER's READY in its stream */
    uint8_t router_head[9];    /* the ROUTER's first frame header after its greeting */
    uint64_t bytes_from_tls;
    uint64_t bytes_from_plain;
} jx_tls_relay;

/* Sets up empty buffers of buffer_size bytes each and no sockets. */
int jx_tls_relay_init(jx_tls_relay *self, size_t buffer_size, jx_error *err);

/* Sends close_notify when the TLS side is still up (best effort, without
 * waiting), closes both sockets, frees SSL, filter and buffers. Safe twice. */
void jx_tls_relay_release(jx_tls_relay *self);

/* Moves every byte that can move now. Returns 0 while the relay goes on, 1
 * when one side has closed and everything buffered for the other side has
 * been written, -1 with err (PROTOCOL from the filter, TLS, IO) on failure.
 * With ssl NULL only the plain side is read (into to_tls) and written. */
int jx_tls_relay_pump(jx_tls_relay *self, jx_error *err);

/* Poll events (EPOLLIN / EPOLLOUT bits) to wait for on each socket after a
 * pump that returned 0. When `more` is set, pump again soon in any case. */
uint32_t jx_tls_relay_tls_events(const jx_tls_relay *self);
uint32_t jx_tls_relay_plain_events(const jx_tls_relay *self);

#endif
