/* tls_frontend.c — accepts agencies' TLS connections and relays them to the ROUTER.
 *
 * Invariants:
 * - No byte from a client reaches the ROUTER before its certificate has
 *   verified and its agency id is known, and none except through the ZMTP
 *   filter until the filter has rewritten READY (tls_relay.c).
 * - A connection is in the list `connections` from accept until it is
 *   killed; killed connections wait in `graveyard` until the current batch
 *   of epoll events is done, so a later event of the same batch never
 *   touches freed memory.
 * - A socket is in the epoll set only while the connection waits for
 *   something on it; that keeps a hung-up socket whose data we cannot take
 *   yet from waking the loop over and over.
 * - Everything here runs on the front end's thread except new/destroy and
 *   the two getters (atomics).
 */
#include "tls_frontend.h"

#include "tls_context.h"
#include "tls_relay.h"
#include "transport.h"
#include "zmtp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    DEFAULT_HANDSHAKE_TIMEOUT_MS = 10000,
    DEFAULT_MAX_CONNECTIONS = 1024,
    DEFAULT_MAX_PER_AGENCY = 16,
    EVENT_BATCH = 64,
    LOG_LINE_MAX = 1024,
};

typedef struct connection connection;

typedef enum { SIDE_TLS, SIDE_PLAIN, SIDE_LISTEN, SIDE_WAKE } side;

/* What an epoll event points at. */
typedef struct {
    side which;
    connection *conn;
    uint32_t events; /* registered now; 0 = not in the epoll set */
} watch;

typedef enum { CONN_TLS_HANDSHAKE, CONN_RELAY } conn_state;

struct connection {
    watch tls_watch;
    watch plain_watch;
    conn_state state;
    jx_tls_relay relay;
    bool dead;
    bool counted_relaying;
    int64_t deadline_ms; /* 0 once READY has gone through */
    uint32_t handshake_events;
    char peer[64];
    char agency[JX_AGENCY_ID_MAX];
    char routing_id[JX_ZMTP_ROUTING_ID_MAX + 1];
    jx_error verify_error;
    connection *prev;
    connection *next;
};

struct jx_tls_frontend {
    jx_log_fn log;
    void *log_arg;
    int handshake_timeout_ms;
    int max_connections;
    int max_per_agency;
    size_t buffer_size;
    int min_version;
    struct sockaddr_un router_addr;
    SSL_CTX *ctx;
    int listen_fd;
    int epoll_fd;
    int wake_fd;
    int port;
    watch listen_watch;
    watch wake_watch;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_int relaying;
    connection *connections;
    connection *graveyard;
    int connection_count;
    uint64_t serial;
};

/* ---- logging ------------------------------------------------------------ */

static void emit(jx_tls_frontend *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(jx_tls_frontend *self, const char *format, ...)
{
    if (self->log == NULL)
        return;
    char line[LOG_LINE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    self->log(self->log_arg, line);
}

/* A sentence made safe for a quoted log value. */
static void quote_safe(const char *in, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; in[i] != '\0' && j + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[j++] = (c == '"' || c == '\\') ? '\'' : (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    out[j] = '\0';
}

/* ---- connection bookkeeping -------------------------------------------- */

static int set_watch(jx_tls_frontend *self, int fd, watch *w, uint32_t events)
{
    if (fd < 0 || w->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    int rc;
    if (events == 0)
        rc = epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    else if (w->events == 0)
        rc = epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    else
        rc = epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    if (rc == 0)
        w->events = events;
    return rc;
}

static void kill_connection(jx_tls_frontend *self, connection *conn)
{
    if (conn->dead)
        return;
    conn->dead = true;
    set_watch(self, conn->relay.tls_fd, &conn->tls_watch, 0);
    set_watch(self, conn->relay.plain_fd, &conn->plain_watch, 0);
    if (conn->counted_relaying)
        atomic_fetch_sub(&self->relaying, 1);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        self->connections = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    self->connection_count--;
    conn->prev = NULL;
    conn->next = self->graveyard;
    self->graveyard = conn;
}

static void bury(jx_tls_frontend *self)
{
    while (self->graveyard) {
        connection *conn = self->graveyard;
        self->graveyard = conn->next;
        jx_tls_relay_release(&conn->relay);
        free(conn);
    }
}

static void refuse(jx_tls_frontend *self, connection *conn, const jx_error *why)
{
    char detail[JX_ERROR_MESSAGE_MAX];
    quote_safe(why->message, detail, sizeof detail);
    emit(self, "event=refused reason=%s peer=%s%s%s detail=\"%s\"", jx_error_code_name(why->code),
         conn->peer, conn->agency[0] ? " agency=" : "", conn->agency, detail);
    kill_connection(self, conn);
}

static void close_relay(jx_tls_frontend *self, connection *conn, const char *why)
{
    char detail[JX_ERROR_MESSAGE_MAX];
    quote_safe(why, detail, sizeof detail);
    emit(self,
         "event=closed agency=%s routing_id=%s peer=%s bytes_in=%llu bytes_out=%llu "
         "detail=\"%s\"",
         conn->agency, conn->routing_id, conn->peer, (unsigned long long)conn->relay.bytes_from_tls,
         (unsigned long long)conn->relay.bytes_from_plain, detail);
    kill_connection(self, conn);
}

/* ---- certificate checks during the handshake --------------------------- */

/* Records the first reason a client certificate fails, as a justx error, and
 * takes the agency id from a leaf that verified. Refusing a leaf without an
 * agency SAN here makes OpenSSL send the client an alert. */
static int verify_callback(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    connection *conn = ssl ? SSL_get_app_data(ssl) : NULL;
    if (conn == NULL)
        return ok;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    char subject[256] = "(none)";
    if (leaf)
        X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof subject);
    if (!ok) {
        if (conn->verify_error.code == JX_OK)
            jx_trust_error_from_verify_result(&conn->verify_error, X509_STORE_CTX_get_error(store),
                                              subject);
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(store) == 0 && conn->verify_error.code == JX_OK) {
        X509 *cert = X509_STORE_CTX_get_current_cert(store);
        if (jx_cert_agency_id(cert, conn->agency, &conn->verify_error) != 0) {
            conn->agency[0] = '\0';
            X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
            return 0;
        }
    }
    return 1;
}

static void handshake_failure(connection *conn, int ssl_error, jx_error *why)
{
    if (conn->verify_error.code != JX_OK) {
        *why = conn->verify_error;
        ERR_clear_error();
        return;
    }
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
    switch (reason) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        jx_error_set(why, JX_ERR_NO_CLIENT_CERTIFICATE,
                     "client presented no certificate; an agency certificate is required");
        ERR_clear_error();
        return;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        jx_error_set_openssl(why, JX_ERR_TLS_VERSION,
                             "client offers no TLS version the gateway accepts");
        return;
    default:
        break;
    }
    if (ssl_error == SSL_ERROR_SYSCALL || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        jx_error_set(why, JX_ERR_TLS, "client closed the connection during the TLS handshake");
        ERR_clear_error();
        return;
    }
    jx_error_set_openssl(why, JX_ERR_TLS, "TLS handshake failed");
}

/* ---- the ZMTP side ------------------------------------------------------ */

static int count_agency(jx_tls_frontend *self, const char *agency)
{
    int n = 0;
    for (connection *c = self->connections; c; c = c->next)
        if (c->state == CONN_RELAY && strcmp(c->agency, agency) == 0)
            n++;
    return n;
}

static int connect_router(jx_tls_frontend *self, jx_error *err)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "cannot make a unix socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&self->router_addr, sizeof self->router_addr) != 0) {
        int e = errno;
        close(fd);
        return jx_error_set(err, JX_ERR_IO, "gateway ROUTER endpoint %s is not reachable: %s",
                            self->router_addr.sun_path, strerror(e));
    }
    return fd;
}

static void pump(jx_tls_frontend *self, connection *conn);

/* The TLS handshake is done: check the per-agency limit, name the connection,
 * connect it to the ROUTER and start relaying through the ZMTP filter. */
static void start_relay(jx_tls_frontend *self, connection *conn)
{
    jx_error why;
    if (conn->agency[0] == '\0') {
        /* The callback always fills it for a verified leaf; be strict anyway. */
        X509 *peer = SSL_get0_peer_certificate(conn->relay.ssl);
        if (peer == NULL || jx_cert_agency_id(peer, conn->agency, &why) != 0) {
            if (peer == NULL)
                jx_error_set(&why, JX_ERR_NO_CLIENT_CERTIFICATE, "client presented no certificate");
            conn->agency[0] = '\0';
            refuse(self, conn, &why);
            return;
        }
    }
    int same = count_agency(self, conn->agency);
    if (same >= self->max_per_agency) {
        jx_error_set(&why, JX_ERR_TOO_MANY_CONNECTIONS,
                     "agency %s already has %d connections, the most allowed per agency",
                     conn->agency, same);
        refuse(self, conn, &why);
        return;
    }
    self->serial++;
    int rid_len = jx_zmtp_routing_id_make(conn->agency, self->serial, conn->routing_id, &why);
    if (rid_len < 0) {
        refuse(self, conn, &why);
        return;
    }
    conn->relay.filter =
        jx_zmtp_filter_new((const uint8_t *)conn->routing_id, (size_t)rid_len, &why);
    if (conn->relay.filter == NULL) {
        refuse(self, conn, &why);
        return;
    }
    int fd = connect_router(self, &why);
    if (fd < 0) {
        refuse(self, conn, &why);
        return;
    }
    conn->relay.plain_fd = fd;
    conn->relay.pace_greeting = true;
    conn->plain_watch = (watch){.which = SIDE_PLAIN, .conn = conn, .events = 0};
    conn->state = CONN_RELAY;
    /* Read-ahead may already hold the client's greeting: pump now. */
    pump(self, conn);
}

static void handshake(jx_tls_frontend *self, connection *conn)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(conn->relay.ssl);
    if (rc == 1) {
        set_watch(self, conn->relay.tls_fd, &conn->tls_watch, 0);
        start_relay(self, conn);
        return;
    }
    int ssl_error = SSL_get_error(conn->relay.ssl, rc);
    if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
        uint32_t events = ssl_error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
        if (set_watch(self, conn->relay.tls_fd, &conn->tls_watch, events) != 0) {
            jx_error why;
            jx_error_set(&why, JX_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
            refuse(self, conn, &why);
        }
        return;
    }
    jx_error why;
    handshake_failure(conn, ssl_error, &why);
    conn->relay.tls_closed = true; /* no close_notify on a failed handshake */
    refuse(self, conn, &why);
}

static void pump(jx_tls_frontend *self, connection *conn)
{
    jx_error err;
    jx_error_clear(&err);
    bool filtering = conn->relay.filter != NULL;
    int rc = jx_tls_relay_pump(&conn->relay, &err);
    if (rc < 0) {
        if (filtering)
            refuse(self, conn, &err);
        else
            close_relay(self, conn, err.message);
        return;
    }
    if (filtering && conn->relay.filter == NULL) {
        conn->deadline_ms = 0;
        conn->counted_relaying = true;
        atomic_fetch_add(&self->relaying, 1);
        char tls[96];
        jx_tls_context_describe(conn->relay.ssl, tls, sizeof tls);
        emit(self, "event=connected agency=%s routing_id=%s peer=%s tls=%s", conn->agency,
             conn->routing_id, conn->peer, tls);
    }
    if (rc == 1) {
        if (conn->relay.filter != NULL) {
            jx_error why;
            jx_error_set(&why, JX_ERR_PROTOCOL,
                         conn->relay.tls_closed
                             ? "client closed the connection before completing ZMTP READY"
                             : "gateway ROUTER closed the connection during the ZMTP handshake");
            refuse(self, conn, &why);
        } else {
            close_relay(self, conn,
                        conn->relay.tls_closed ? "agency closed the connection"
                                               : "gateway ROUTER closed the connection");
        }
        return;
    }
    if (set_watch(self, conn->relay.tls_fd, &conn->tls_watch,
                  jx_tls_relay_tls_events(&conn->relay)) != 0 ||
        set_watch(self, conn->relay.plain_fd, &conn->plain_watch,
                  jx_tls_relay_plain_events(&conn->relay)) != 0)
        close_relay(self, conn, "epoll_ctl failed");
}

/* ---- accepting ----------------------------------------------------------- */

static void accept_connections(jx_tls_frontend *self)
{
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        int fd = accept4(self->listen_fd, (struct sockaddr *)&addr, &addr_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                emit(self, "event=error detail=\"accept failed: %s\"", strerror(errno));
            return;
        }
        char peer[64];
        jx_transport_format_sockaddr(&addr, peer, sizeof peer);
        if (self->connection_count >= self->max_connections) {
            emit(self,
                 "event=refused reason=TOO_MANY_CONNECTIONS peer=%s detail=\"the front end "
                 "already serves %d connections, its limit\"",
                 peer, self->connection_count);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);

        connection *conn = calloc(1, sizeof *conn);
        jx_error err;
        if (conn == NULL || jx_tls_relay_init(&conn->relay, self->buffer_size, &err) != 0) {
            emit(self, "event=error peer=%s detail=\"out of memory for a connection\"", peer);
            free(conn);
            close(fd);
            continue;
        }
        conn->relay.tls_fd = fd;
        snprintf(conn->peer, sizeof conn->peer, "%s", peer);
        conn->tls_watch = (watch){.which = SIDE_TLS, .conn = conn, .events = 0};
        conn->deadline_ms = jx_transport_monotonic_ms() + self->handshake_timeout_ms;
        conn->state = CONN_TLS_HANDSHAKE;
        conn->next = self->connections;
        if (self->connections)
            self->connections->prev = conn;
        self->connections = conn;
        self->connection_count++;

        SSL *ssl = SSL_new(self->ctx);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            jx_error why;
            jx_error_set_openssl(&why, JX_ERR_SYSTEM, "cannot start TLS");
            refuse(self, conn, &why);
            continue;
        }
        conn->relay.ssl = ssl;
        SSL_set_app_data(ssl, conn);
        SSL_set_accept_state(ssl);
        handshake(self, conn);
    }
}

/* ---- the thread --------------------------------------------------------- */

static void check_deadlines(jx_tls_frontend *self, int64_t now)
{
    connection *next;
    for (connection *conn = self->connections; conn; conn = next) {
        next = conn->next;
        if (conn->deadline_ms != 0 && now >= conn->deadline_ms) {
            jx_error why;
            jx_error_set(&why, JX_ERR_HANDSHAKE_TIMEOUT, "no %s within %d ms of connecting",
                         conn->state == CONN_TLS_HANDSHAKE ? "TLS handshake" : "ZMTP READY",
                         self->handshake_timeout_ms);
            conn->relay.tls_closed = conn->state == CONN_TLS_HANDSHAKE;
            refuse(self, conn, &why);
        }
    }
}

static int next_timeout(jx_tls_frontend *self, int64_t now)
{
    int64_t timeout = 1000;
    for (connection *conn = self->connections; conn; conn = conn->next) {
        if (conn->relay.more)
            return 0;
        if (conn->deadline_ms != 0 && conn->deadline_ms - now < timeout)
            timeout = conn->deadline_ms - now;
    }
    return timeout < 0 ? 0 : (int)timeout;
}

static void *frontend_thread(void *arg)
{
    jx_tls_frontend *self = arg;
    /* OpenSSL writes to sockets with write(2): a peer that vanished must
     * give EPIPE here, not kill the gateway. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

    struct epoll_event events[EVENT_BATCH];
    while (!atomic_load(&self->stop)) {
        int64_t now = jx_transport_monotonic_ms();
        int n = epoll_wait(self->epoll_fd, events, EVENT_BATCH, next_timeout(self, now));
        if (n < 0 && errno != EINTR) {
            emit(self, "event=error detail=\"epoll_wait failed: %s\"", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            watch *w = events[i].data.ptr;
            if (w->which == SIDE_LISTEN) {
                accept_connections(self);
            } else if (w->which == SIDE_WAKE) {
                uint64_t value;
                if (read(self->wake_fd, &value, sizeof value) < 0 && errno != EAGAIN)
                    break;
            } else if (!w->conn->dead) {
                if (w->conn->state == CONN_TLS_HANDSHAKE)
                    handshake(self, w->conn);
                else
                    pump(self, w->conn);
            }
        }
        connection *next;
        for (connection *conn = self->connections; conn; conn = next) {
            next = conn->next;
            if (conn->relay.more && conn->state == CONN_RELAY)
                pump(self, conn);
        }
        check_deadlines(self, jx_transport_monotonic_ms());
        bury(self);
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int open_listener(jx_tls_frontend *self, const char *address, jx_error *err)
{
    char host[256], port[32];
    if (jx_transport_split_address(address, host, sizeof host, port, sizeof port, err) != 0)
        return -1;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0)
        return jx_error_set(err, JX_ERR_CONFIG, "cannot resolve listen address %s: %s", address,
                            gai_strerror(rc));
    int fd = -1;
    int last_errno = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            last_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot listen on %s: %s", address,
                            strerror(last_errno));
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    getsockname(fd, (struct sockaddr *)&bound, &bound_len);
    self->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    self->listen_fd = fd;
    return 0;
}

jx_tls_frontend *jx_tls_frontend_new(const jx_tls_frontend_config *config, jx_error *err)
{
    if (config == NULL || config->listen == NULL || config->cert_file == NULL ||
        config->key_file == NULL || config->trust == NULL || config->router_endpoint == NULL) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "TLS front end needs listen, cert_file, key_file, trust and "
                     "router_endpoint");
        return NULL;
    }
    jx_tls_frontend *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory for the TLS front end");
        return NULL;
    }
    self->listen_fd = self->epoll_fd = self->wake_fd = -1;
    self->log = config->log;
    self->log_arg = config->log_arg;
    self->handshake_timeout_ms = config->handshake_timeout_ms > 0 ? config->handshake_timeout_ms
                                                                  : DEFAULT_HANDSHAKE_TIMEOUT_MS;
    self->max_connections =
        config->max_connections > 0 ? config->max_connections : DEFAULT_MAX_CONNECTIONS;
    self->max_per_agency = config->max_connections_per_agency > 0
                               ? config->max_connections_per_agency
                               : DEFAULT_MAX_PER_AGENCY;
    self->buffer_size = config->buffer_size > 0 ? config->buffer_size : JX_TLS_RELAY_BUFFER_DEFAULT;
    self->min_version = config->tls_min_version;

    if (jx_transport_private_ipc(config->router_endpoint, &self->router_addr, err) != 0)
        goto fail;
    self->ctx = jx_tls_context_server(config->cert_file, config->key_file, config->trust,
                                      config->tls_min_version, verify_callback, err);
    if (self->ctx == NULL)
        goto fail;
    if (open_listener(self, config->listen, err) != 0)
        goto fail;
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->epoll_fd < 0 || self->wake_fd < 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "cannot make epoll or eventfd: %s", strerror(errno));
        goto fail;
    }
    self->listen_watch = (watch){.which = SIDE_LISTEN};
    self->wake_watch = (watch){.which = SIDE_WAKE};
    if (set_watch(self, self->listen_fd, &self->listen_watch, EPOLLIN) != 0 ||
        set_watch(self, self->wake_fd, &self->wake_watch, EPOLLIN) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
        goto fail;
    }
    emit(self, "event=listening address=%s port=%d router=%s min_tls=%s", config->listen,
         self->port, config->router_endpoint, self->min_version == TLS1_2_VERSION ? "1.2" : "1.3");
    if (pthread_create(&self->thread, NULL, frontend_thread, self) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "cannot start the TLS front end thread");
        goto fail;
    }
    self->thread_started = true;
    return self;
fail:
    jx_tls_frontend_destroy(&self);
    return NULL;
}

void jx_tls_frontend_destroy(jx_tls_frontend **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_tls_frontend *self = *self_p;
    if (self->thread_started) {
        atomic_store(&self->stop, true);
        uint64_t one = 1;
        if (write(self->wake_fd, &one, sizeof one) < 0) {
            /* The eventfd cannot be full at 1; epoll_wait wakes within 1 s anyway. */
        }
        pthread_join(self->thread, NULL);
    }
    while (self->connections)
        kill_connection(self, self->connections);
    bury(self);
    if (self->listen_fd >= 0)
        close(self->listen_fd);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    SSL_CTX_free(self->ctx);
    free(self);
    *self_p = NULL;
}

int jx_tls_frontend_port(const jx_tls_frontend *self)
{
    return self->port;
}

int jx_tls_frontend_relaying(const jx_tls_frontend *self)
{
    return atomic_load(&((jx_tls_frontend *)self)->relaying);
}
