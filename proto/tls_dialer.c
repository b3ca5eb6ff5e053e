/* tls_dialer.c — carries an adapter's local ZeroMQ connections to the gateway over TLS.
 *
 * A link (struct tunnel) is one accepted local connection and the TLS
 * connection made for it:
 *   WAITING    the local side is open; the TLS side waits for the backoff
 *   CONNECTING non-blocking TCP connect in progress
 *   HANDSHAKE  TLS handshake in progress
 *   RELAY      bytes flow; "established" once the gateway has sent a byte
 *              (the ROUTER's greeting: the front end accepted us)
 * Invariants:
 * - Bytes from the DEALER stay in the link's buffer until the TLS side is
 *   in RELAY; an attempt that fails before RELAY therefore loses nothing and
 *   the local side can wait for the next one. A failure in RELAY closes the
 *   local side too, since some of its bytes went to a gateway connection
 *   that is gone; the DEALER reconnects and starts its handshake afresh.
 * - `next_attempt_ms` is shared by every link: failures before the gateway
 *   has answered double the backoff; an established link resets it.
 * - A link is a link of the loop (tls_loop.c): killed ones wait there until
 *   the current epoll batch is done.
 */
#include "tls_dialer.h"

#include "tls_context.h"
#include "tls_loop.h"
#include "tls_relay.h"
#include "trust.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    DEFAULT_BACKOFF_MIN_MS = 100,
    DEFAULT_BACKOFF_MAX_MS = 10000,
    DEFAULT_CONNECT_TIMEOUT_MS = 10000,
};

typedef enum { LINK_WAITING, LINK_CONNECTING, LINK_HANDSHAKE, LINK_RELAY } link_state;

typedef struct {
    /* First, so that the loop's link is the tunnel. link.relay.ssl and
     * link.relay.tls_fd are set only in RELAY. */
    jx_tls_link link;
    link_state state;
    int tcp_fd; /* the TLS side's socket before RELAY */
    SSL *ssl;   /* the TLS side before RELAY */
    bool established;
    int64_t deadline_ms; /* 0 = none */
    unsigned serial;
} tunnel;

struct jx_tls_dialer {
    char host[256];
    char port[32];
    char gateway_name[256];
    char local_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int backoff_min_ms;
    int backoff_max_ms;
    int backoff_ms;
    int connect_timeout_ms;
    size_t buffer_size;
    int64_t next_attempt_ms;
    jx_log_fn log;
    void *log_arg;
    jx_tls_dialer_state_fn on_state;
    void *state_arg;
    SSL_CTX *ctx;
    int listen_fd;
    jx_tls_loop *loop;
    unsigned serial;
    pthread_mutex_t lock; /* guards state and last_error */
    jx_tls_dialer_state state;
    jx_error last_error;
};

/* ---- logging and state -------------------------------------------------- */

#define emit(self, ...) jx_transport_log((self)->log, (self)->log_arg, __VA_ARGS__)

const char *jx_tls_dialer_state_name(jx_tls_dialer_state state)
{
    switch (state) {
    case JX_TLS_DIALER_IDLE:
        return "IDLE";
    case JX_TLS_DIALER_CONNECTING:
        return "CONNECTING";
    case JX_TLS_DIALER_CONNECTED:
        return "CONNECTED";
    case JX_TLS_DIALER_BACKING_OFF:
        return "BACKING_OFF";
    }
    return "UNKNOWN";
}

/* Sets the observable state; error (may be NULL) becomes the last error. */
static void set_state(jx_tls_dialer *self, jx_tls_dialer_state state, const jx_error *error)
{
    pthread_mutex_lock(&self->lock);
    bool changed = self->state != state || error != NULL;
    self->state = state;
    if (error)
        self->last_error = *error;
    jx_error last = self->last_error;
    pthread_mutex_unlock(&self->lock);
    if (changed && self->on_state)
        self->on_state(self->state_arg, state, &last);
}

jx_tls_dialer_state jx_tls_dialer_get_state(jx_tls_dialer *self, jx_error *last_error)
{
    pthread_mutex_lock(&self->lock);
    jx_tls_dialer_state state = self->state;
    if (last_error)
        *last_error = self->last_error;
    pthread_mutex_unlock(&self->lock);
    return state;
}

/* ---- links --------------------------------------------------------------- */

static tunnel *tunnel_of(jx_tls_link *link)
{
    return (tunnel *)link; /* the link is the tunnel's first member */
}

static bool no_links(jx_tls_dialer *self)
{
    return jx_tls_loop_links(self->loop) == NULL;
}

/* Closes the TLS side of a link that is not relaying yet. */
static void drop_attempt(jx_tls_dialer *self, tunnel *l)
{
    if (l->tcp_fd >= 0)
        jx_tls_loop_watch(self->loop, l->tcp_fd, &l->link.tls_watch, 0);
    SSL_free(l->ssl);
    l->ssl = NULL;
    ERR_clear_error();
    if (l->tcp_fd >= 0)
        close(l->tcp_fd);
    l->tcp_fd = -1;
    l->state = LINK_WAITING;
    l->deadline_ms = 0;
}

static void kill_link(jx_tls_dialer *self, tunnel *l)
{
    if (l->link.dead)
        return;
    drop_attempt(self, l);
    jx_tls_loop_kill(self->loop, &l->link);
}

/* An attempt failed before the gateway answered: back off. The local side
 * waits for the next attempt unless bytes of it were already sent. */
static void attempt_failed(jx_tls_dialer *self, tunnel *l, const jx_error *why)
{
    char detail[JX_ERROR_MESSAGE_MAX];
    jx_transport_log_quote(why->message, detail, sizeof detail);
    int64_t now = jx_transport_monotonic_ms();
    self->next_attempt_ms = now + self->backoff_ms;
    emit(self, "event=attempt_failed link=%u gateway=%s:%s reason=%s retry_in_ms=%d detail=\"%s\"",
         l->serial, self->host, self->port, jx_error_code_name(why->code), self->backoff_ms,
         detail);
    self->backoff_ms =
        self->backoff_ms * 2 > self->backoff_max_ms ? self->backoff_max_ms : self->backoff_ms * 2;
    set_state(self, JX_TLS_DIALER_BACKING_OFF, why);
    if (l->state == LINK_RELAY)
        kill_link(self, l);
    else
        drop_attempt(self, l);
}

/* An established link ended: close the local side so the DEALER reconnects. */
static void link_ended(jx_tls_dialer *self, tunnel *l, const jx_error *why)
{
    char detail[JX_ERROR_MESSAGE_MAX];
    jx_transport_log_quote(why->message, detail, sizeof detail);
    emit(self, "event=disconnected link=%u reason=%s bytes_out=%llu bytes_in=%llu detail=\"%s\"",
         l->serial, jx_error_code_name(why->code),
         (unsigned long long)l->link.relay.bytes_from_plain,
         (unsigned long long)l->link.relay.bytes_from_tls, detail);
    self->backoff_ms = self->backoff_min_ms;
    self->next_attempt_ms = jx_transport_monotonic_ms() + self->backoff_min_ms;
    set_state(self, JX_TLS_DIALER_BACKING_OFF, why);
    kill_link(self, l);
}

/* ---- relaying ------------------------------------------------------------ */

static void pump(jx_tls_dialer *self, tunnel *l)
{
    jx_error err;
    jx_error_clear(&err);
    int rc = jx_tls_relay_pump(&l->link.relay, &err);
    if (l->state == LINK_RELAY && !l->established && l->link.relay.bytes_from_tls > 0) {
        l->established = true;
        l->deadline_ms = 0;
        self->backoff_ms = self->backoff_min_ms;
        char tls[96];
        jx_tls_context_describe(l->link.relay.ssl, tls, sizeof tls);
        emit(self, "event=connected link=%u gateway=%s:%s tls=%s", l->serial, self->host,
             self->port, tls);
        set_state(self, JX_TLS_DIALER_CONNECTED, NULL);
    }
    if (rc != 0) {
        bool local_closed = l->link.relay.plain_closed && !l->link.relay.tls_closed;
        if (rc > 0 && local_closed) {
            emit(self, "event=local_closed link=%u bytes_out=%llu bytes_in=%llu", l->serial,
                 (unsigned long long)l->link.relay.bytes_from_plain,
                 (unsigned long long)l->link.relay.bytes_from_tls);
            kill_link(self, l);
            if (no_links(self))
                set_state(self, JX_TLS_DIALER_IDLE, NULL);
            return;
        }
        if (rc > 0)
            jx_error_set(&err, JX_ERR_TLS, "the gateway closed the TLS connection");
        if (l->state == LINK_RELAY && !l->established) {
            attempt_failed(self, l, &err);
        } else if (l->state == LINK_RELAY) {
            link_ended(self, l, &err);
        } else {
            kill_link(self, l); /* the local side went away while waiting */
            if (no_links(self))
                set_state(self, JX_TLS_DIALER_IDLE, NULL);
        }
        return;
    }
    int tls_fd = l->state == LINK_RELAY ? l->link.relay.tls_fd : -1;
    if ((tls_fd >= 0 && jx_tls_loop_watch(self->loop, tls_fd, &l->link.tls_watch,
                                          jx_tls_relay_tls_events(&l->link.relay)) != 0) ||
        jx_tls_loop_watch(self->loop, l->link.relay.plain_fd, &l->link.plain_watch,
                          jx_tls_relay_plain_events(&l->link.relay)) != 0) {
        jx_error why;
        jx_error_set(&why, JX_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
        link_ended(self, l, &why);
    }
}

/* ---- dialing -------------------------------------------------------------- */

static void handshake(jx_tls_dialer *self, tunnel *l)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(l->ssl);
    if (rc == 1) {
        jx_tls_loop_watch(self->loop, l->tcp_fd, &l->link.tls_watch, 0);
        l->link.relay.ssl = l->ssl;
        l->link.relay.tls_fd = l->tcp_fd;
        l->ssl = NULL;
        l->tcp_fd = -1;
        l->state = LINK_RELAY;
        pump(self, l);
        return;
    }
    int ssl_error = SSL_get_error(l->ssl, rc);
    if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
        jx_tls_loop_watch(self->loop, l->tcp_fd, &l->link.tls_watch,
                          ssl_error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
        return;
    }
    jx_error why;
    long verify = SSL_get_verify_result(l->ssl);
    if (verify != X509_V_OK) {
        char subject[300];
        snprintf(subject, sizeof subject, "of gateway %s", self->gateway_name);
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
            jx_error_set(&why, JX_ERR_UNTRUSTED_CERTIFICATE,
                         "the gateway's certificate does not name %s", self->gateway_name);
        else
            jx_trust_error_from_verify_result(&why, (int)verify, subject);
        ERR_clear_error();
    } else if (ssl_error == SSL_ERROR_SYSCALL) {
        jx_error_set(&why, JX_ERR_TLS, "the gateway closed the connection during the handshake");
        ERR_clear_error();
    } else {
        jx_error_set_openssl(&why, JX_ERR_TLS, "TLS handshake with the gateway failed");
    }
    attempt_failed(self, l, &why);
}

static void start_handshake(jx_tls_dialer *self, tunnel *l)
{
    jx_error why;
    l->ssl = SSL_new(self->ctx);
    if (l->ssl == NULL || SSL_set_fd(l->ssl, l->tcp_fd) != 1) {
        jx_error_set_openssl(&why, JX_ERR_SYSTEM, "cannot start TLS");
        attempt_failed(self, l, &why);
        return;
    }
    if (jx_tls_context_expect_name(l->ssl, self->gateway_name, &why) != 0) {
        attempt_failed(self, l, &why);
        return;
    }
    SSL_set_connect_state(l->ssl);
    l->state = LINK_HANDSHAKE;
    handshake(self, l);
}

static void start_attempt(jx_tls_dialer *self, tunnel *l)
{
    jx_error why;
    set_state(self, JX_TLS_DIALER_CONNECTING, NULL);
    l->deadline_ms = jx_transport_monotonic_ms() + self->connect_timeout_ms;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(self->host, self->port, &hints, &list);
    if (rc != 0) {
        jx_error_set(&why, JX_ERR_IO, "cannot resolve gateway %s: %s", self->host,
                     gai_strerror(rc));
        attempt_failed(self, l, &why);
        return;
    }
    l->tcp_fd = socket(list->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->tcp_fd < 0) {
        freeaddrinfo(list);
        jx_error_set(&why, JX_ERR_SYSTEM, "cannot make a socket: %s", strerror(errno));
        attempt_failed(self, l, &why);
        return;
    }
    jx_transport_tune_tcp(l->tcp_fd);
    l->link.tls_watch.events = 0; /* the new socket is in no epoll set yet */
    rc = connect(l->tcp_fd, list->ai_addr, list->ai_addrlen);
    int e = errno;
    freeaddrinfo(list);
    if (rc == 0) {
        start_handshake(self, l);
        return;
    }
    if (e != EINPROGRESS) {
        jx_error_set(&why, JX_ERR_IO, "cannot connect to gateway %s:%s: %s", self->host, self->port,
                     strerror(e));
        attempt_failed(self, l, &why);
        return;
    }
    l->state = LINK_CONNECTING;
    jx_tls_loop_watch(self->loop, l->tcp_fd, &l->link.tls_watch, EPOLLOUT);
}

static void connect_done(jx_tls_dialer *self, tunnel *l)
{
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(l->tcp_fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    if (error != 0) {
        jx_error why;
        jx_error_set(&why, JX_ERR_IO, "cannot connect to gateway %s:%s: %s", self->host, self->port,
                     strerror(error));
        attempt_failed(self, l, &why);
        return;
    }
    start_handshake(self, l);
}

/* ---- the loop's handlers -------------------------------------------------- */

static void accept_local(void *owner)
{
    jx_tls_dialer *self = owner;
    for (;;) {
        int fd = jx_tls_loop_accept(self->loop, self->listen_fd, NULL);
        if (fd < 0)
            return;
        tunnel *l = calloc(1, sizeof *l);
        jx_error err;
        if (l == NULL || jx_tls_relay_init(&l->link.relay, self->buffer_size, &err) != 0) {
            emit(self, "event=error detail=\"out of memory for a link\"");
            free(l);
            close(fd);
            continue;
        }
        l->serial = ++self->serial;
        l->tcp_fd = -1;
        l->link.relay.plain_fd = fd;
        l->state = LINK_WAITING;
        jx_tls_loop_add(self->loop, &l->link);
        emit(self, "event=local_connected link=%u", l->serial);
        pump(self, l);
    }
}

static void on_ready(void *owner, jx_tls_link *link, jx_tls_watch_side which)
{
    jx_tls_dialer *self = owner;
    tunnel *l = tunnel_of(link);
    if (which == JX_TLS_WATCH_PLAIN || l->state == LINK_RELAY) {
        pump(self, l);
        return;
    }
    if (l->state == LINK_CONNECTING)
        connect_done(self, l);
    else if (l->state == LINK_HANDSHAKE)
        handshake(self, l);
}

static void run_timers(void *owner)
{
    jx_tls_dialer *self = owner;
    int64_t now = jx_transport_monotonic_ms();
    jx_tls_link *next;
    for (jx_tls_link *link = jx_tls_loop_links(self->loop); link; link = next) {
        next = link->next;
        tunnel *l = tunnel_of(link);
        if (l->link.dead)
            continue;
        if (l->deadline_ms != 0 && now >= l->deadline_ms) {
            jx_error why;
            jx_error_set(&why, JX_ERR_HANDSHAKE_TIMEOUT,
                         "the gateway %s:%s did not answer within %d ms", self->host, self->port,
                         self->connect_timeout_ms);
            attempt_failed(self, l, &why);
        } else if (l->state == LINK_WAITING && now >= self->next_attempt_ms) {
            start_attempt(self, l);
        } else if (l->state == LINK_RELAY && l->link.relay.more) {
            pump(self, l);
        }
    }
}

static int next_timeout(void *owner)
{
    jx_tls_dialer *self = owner;
    int64_t now = jx_transport_monotonic_ms();
    int64_t timeout = 1000;
    for (jx_tls_link *link = jx_tls_loop_links(self->loop); link; link = link->next) {
        tunnel *l = tunnel_of(link);
        int64_t due = INT64_MAX;
        if (l->link.relay.more)
            return 0;
        if (l->state == LINK_WAITING)
            due = self->next_attempt_ms;
        if (l->deadline_ms != 0 && l->deadline_ms < due)
            due = l->deadline_ms;
        if (due != INT64_MAX && due - now < timeout)
            timeout = due - now;
    }
    return timeout < 0 ? 0 : (int)timeout;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int listen_local(jx_tls_dialer *self, const char *endpoint, jx_error *err)
{
    struct sockaddr_un addr;
    if (jx_transport_private_ipc(endpoint, &addr, err) != 0)
        return -1;
    /* A socket file left by a dead dialer is ours to replace; anything else
     * at that path is not. */
    struct stat st;
    if (lstat(addr.sun_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return jx_error_set(err, JX_ERR_CONFIG,
                                "%s exists and is not a socket; not replacing it", addr.sun_path);
        unlink(addr.sun_path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "cannot make a unix socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        close(fd);
        return jx_error_set(err, JX_ERR_IO, "cannot listen on %s: %s", endpoint, strerror(e));
    }
    snprintf(self->local_path, sizeof self->local_path, "%s", addr.sun_path);
    self->listen_fd = fd;
    return 0;
}

jx_tls_dialer *jx_tls_dialer_new(const jx_tls_dialer_config *config, jx_error *err)
{
    if (config == NULL || config->local_endpoint == NULL || config->gateway == NULL ||
        config->ca_file == NULL || config->cert_file == NULL || config->key_file == NULL) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "TLS dialer needs local_endpoint, gateway, ca_file, cert_file and key_file");
        return NULL;
    }
    jx_tls_dialer *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory for the TLS dialer");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->listen_fd = -1;
    self->log = config->log;
    self->log_arg = config->log_arg;
    self->on_state = config->on_state;
    self->state_arg = config->state_arg;
    self->backoff_min_ms =
        config->backoff_min_ms > 0 ? config->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
    self->backoff_max_ms =
        config->backoff_max_ms > 0 ? config->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (self->backoff_max_ms < self->backoff_min_ms)
        self->backoff_max_ms = self->backoff_min_ms;
    self->backoff_ms = self->backoff_min_ms;
    self->connect_timeout_ms =
        config->connect_timeout_ms > 0 ? config->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    self->buffer_size = config->buffer_size > 0 ? config->buffer_size : JX_TLS_RELAY_BUFFER_DEFAULT;
    self->state = JX_TLS_DIALER_IDLE;
    jx_error_clear(&self->last_error);

    if (jx_transport_split_address(config->gateway, self->host, sizeof self->host, self->port,
                                   sizeof self->port, err) != 0)
        goto fail;
    snprintf(self->gateway_name, sizeof self->gateway_name, "%s",
             config->gateway_name ? config->gateway_name : self->host);
    self->ctx = jx_tls_context_client(config->cert_file, config->key_file, config->ca_file,
                                      config->tls_min_version, err);
    if (self->ctx == NULL)
        goto fail;
    if (listen_local(self, config->local_endpoint, err) != 0)
        goto fail;
    self->loop = jx_tls_loop_new(self->listen_fd, self->log, self->log_arg, err);
    if (self->loop == NULL)
        goto fail;
    emit(self, "event=listening local=%s gateway=%s:%s name=%s", config->local_endpoint, self->host,
         self->port, self->gateway_name);
    static const jx_tls_loop_handlers handlers = {
        .accept = accept_local,
        .ready = on_ready,
        .after_batch = run_timers,
        .timeout_ms = next_timeout,
    };
    if (jx_tls_loop_start(self->loop, &handlers, self, "TLS dialer", err) != 0)
        goto fail;
    return self;
fail:
    jx_tls_dialer_destroy(&self);
    return NULL;
}

void jx_tls_dialer_destroy(jx_tls_dialer **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_tls_dialer *self = *self_p;
    jx_tls_loop_stop(self->loop);
    self->on_state = NULL; /* no callbacks from destroy */
    /* Killing a link closes the socket and SSL of an attempt in progress,
     * which the loop does not know of. */
    while (self->loop && !no_links(self))
        kill_link(self, tunnel_of(jx_tls_loop_links(self->loop)));
    jx_tls_loop_destroy(&self->loop);
    if (self->listen_fd >= 0) {
        close(self->listen_fd);
        unlink(self->local_path);
    }
    SSL_CTX_free(self->ctx);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}
