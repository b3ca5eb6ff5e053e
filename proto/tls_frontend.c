/* tls_frontend.c — accepts agencies' TLS connections and relays them to the ROUTER.
 *
 * Invariants:
 * - No byte from a client reaches the ROUTER before its certificate has
 *   verified and its agency id is known, and none except through the ZMTP
 *   filter until the filter has rewritten READY (tls_relay.c).
 * - A connection is a link of the loop (tls_loop.c) from accept until it is
 *   killed; the loop keeps killed ones until its batch of events is done,
 *   and has a socket in the epoll set only while it is waited for.
 * - Everything here runs on the loop's thread except new/destroy, the
 *   two getters (atomics) and set_trust, which only leaves the new trust in
 *   a mailbox (under handover_lock) and waits for the loop's thread to
 *   switch to it. So self->ctx and self->trust are only ever touched by one
 *   thread, and the switch happens between two batches of events.
 * - A connection verifies against the store it started its handshake with
 *   (the SSL holds its own reference to it); trust_generation says which.
 *   No connection relays a byte to the ROUTER under an older generation
 *   than the current one without having been checked against the current
 *   trust: established ones are checked at the switch, handshakes under way
 *   in start_relay.
 */
#include "tls_frontend.h"

#include "tls_context.h"
#include "tls_loop.h"
#include "tls_relay.h"
#include "transport.h"
#include "zmtp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    DEFAULT_HANDSHAKE_TIMEOUT_MS = 10000,
    DEFAULT_MAX_CONNECTIONS = 1024,
    DEFAULT_MAX_PER_AGENCY = 16,
    /* The thread takes an offer after its current batch of events; this much
     * longer means it is stuck or gone. */
    TRUST_HANDOVER_TIMEOUT_MS = 5000,
};

typedef enum { CONN_TLS_HANDSHAKE, CONN_RELAY } conn_state;

typedef struct {
    jx_tls_link link; /* first: the loop's link is the connection */
    conn_state state;
    bool counted_relaying;
    int64_t deadline_ms; /* 0 once READY has gone through */
    uint64_t trust_generation; /* the trust its certificate was last verified against */
    uint32_t handshake_events;
    char peer[64];
    char agency[JX_AGENCY_ID_MAX];
    char routing_id[JX_ZMTP_ROUTING_ID_MAX + 1];
    jx_error verify_error;
} connection;

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
    int port;
    jx_tls_loop *loop;
    atomic_int relaying;
    int connection_count;
    uint64_t serial;
    jx_trust *trust;           /* in force; the loop's thread only, once it runs */
    uint64_t trust_generation; /* bumped by every switch */

    /* jx_tls_frontend_set_trust -> the loop's thread */
    pthread_mutex_t caller_lock;  /* one caller at a time */
    pthread_mutex_t handover_lock;
    pthread_cond_t handover_done;
    jx_trust *offered;            /* under handover_lock; NULL once taken */
    bool answered;                /* under handover_lock */
    jx_error answer;              /* under handover_lock */
};

/* ---- logging and bookkeeping ------------------------------------------ */

#define emit(self, ...) jx_transport_log((self)->log, (self)->log_arg, __VA_ARGS__)

static connection *connection_of(jx_tls_link *link)
{
    return (connection *)link; /* the link is the connection's first member */
}

static void kill_connection(jx_tls_frontend *self, connection *conn)
{
    if (conn->link.dead)
        return;
    if (conn->counted_relaying)
        atomic_fetch_sub(&self->relaying, 1);
    self->connection_count--;
    jx_tls_loop_kill(self->loop, &conn->link);
}

static void refuse(jx_tls_frontend *self, connection *conn, const jx_error *why)
{
    char detail[JX_ERROR_MESSAGE_MAX];
    jx_transport_log_quote(why->message, detail, sizeof detail);
    emit(self, "event=refused reason=%s peer=%s%s%s detail=\"%s\"", jx_error_code_name(why->code),
         conn->peer, conn->agency[0] ? " agency=" : "", conn->agency, detail);
    kill_connection(self, conn);
}

static void close_relay(jx_tls_frontend *self, connection *conn, const char *why)
{
    char detail[JX_ERROR_MESSAGE_MAX];
    jx_transport_log_quote(why, detail, sizeof detail);
    emit(self,
         "event=closed agency=%s routing_id=%s peer=%s bytes_in=%llu bytes_out=%llu "
         "detail=\"%s\"",
         conn->agency, conn->routing_id, conn->peer,
         (unsigned long long)conn->link.relay.bytes_from_tls,
         (unsigned long long)conn->link.relay.bytes_from_plain, detail);
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
    for (jx_tls_link *l = jx_tls_loop_links(self->loop); l; l = l->next)
        if (connection_of(l)->state == CONN_RELAY && strcmp(connection_of(l)->agency, agency) == 0)
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

/* Verifies the client certificate of a connection past its TLS handshake
 * again, against the trust in force (same anchors, CRLs and agency SAN rule
 * as the handshake; the chain is what the client sent). */
static int recheck(jx_tls_frontend *self, connection *conn, jx_error *why)
{
    SSL *ssl = conn->link.relay.ssl;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL)
        return jx_error_set(why, JX_ERR_NO_CLIENT_CERTIFICATE, "client presented no certificate");
    const jx_identity *identity =
        jx_trust_verify_x509(self->trust, peer, SSL_get_peer_cert_chain(ssl), jx_now_ms(), why);
    if (identity == NULL)
        return -1;
    if (strcmp(identity->agency, conn->agency) != 0)
        return jx_error_set(why, JX_ERR_NO_AGENCY_IDENTITY,
                            "client certificate names agency %s, the connection %s",
                            identity->agency, conn->agency);
    conn->trust_generation = self->trust_generation;
    return 0;
}

/* The TLS handshake is done: check the per-agency limit, name the connection,
 * connect it to the ROUTER and start relaying through the ZMTP filter. */
static void start_relay(jx_tls_frontend *self, connection *conn)
{
    jx_error why;
    if (conn->agency[0] == '\0') {
        /* The callback always fills it for a verified leaf; be strict anyway. */
        X509 *peer = SSL_get0_peer_certificate(conn->link.relay.ssl);
        if (peer == NULL || jx_cert_agency_id(peer, conn->agency, &why) != 0) {
            if (peer == NULL)
                jx_error_set(&why, JX_ERR_NO_CLIENT_CERTIFICATE, "client presented no certificate");
            conn->agency[0] = '\0';
            refuse(self, conn, &why);
            return;
        }
    }
    /* The handshake began before the trust store was replaced: what it
     * verified against is no longer in force. */
    if (conn->trust_generation != self->trust_generation && recheck(self, conn, &why) != 0) {
        refuse(self, conn, &why);
        return;
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
    conn->link.relay.filter =
        jx_zmtp_filter_new((const uint8_t *)conn->routing_id, (size_t)rid_len, &why);
    if (conn->link.relay.filter == NULL) {
        refuse(self, conn, &why);
        return;
    }
    int fd = connect_router(self, &why);
    if (fd < 0) {
        refuse(self, conn, &why);
        return;
    }
    conn->link.relay.plain_fd = fd;
    conn->link.relay.pace_greeting = true;
    conn->state = CONN_RELAY;
    /* Read-ahead may already hold the client's greeting: pump now. */
    pump(self, conn);
}

static void handshake(jx_tls_frontend *self, connection *conn)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(conn->link.relay.ssl);
    if (rc == 1) {
        jx_tls_loop_watch(self->loop, conn->link.relay.tls_fd, &conn->link.tls_watch, 0);
        start_relay(self, conn);
        return;
    }
    int ssl_error = SSL_get_error(conn->link.relay.ssl, rc);
    if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
        uint32_t events = ssl_error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
        if (jx_tls_loop_watch(self->loop, conn->link.relay.tls_fd, &conn->link.tls_watch, events) !=
            0) {
            jx_error why;
            jx_error_set(&why, JX_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
            refuse(self, conn, &why);
        }
        return;
    }
    jx_error why;
    handshake_failure(conn, ssl_error, &why);
    conn->link.relay.tls_closed = true; /* no close_notify on a failed handshake */
    refuse(self, conn, &why);
}

static void pump(jx_tls_frontend *self, connection *conn)
{
    jx_error err;
    jx_error_clear(&err);
    bool filtering = conn->link.relay.filter != NULL;
    int rc = jx_tls_relay_pump(&conn->link.relay, &err);
    if (rc < 0) {
        if (filtering)
            refuse(self, conn, &err);
        else
            close_relay(self, conn, err.message);
        return;
    }
    if (filtering && conn->link.relay.filter == NULL) {
        conn->deadline_ms = 0;
        conn->counted_relaying = true;
        atomic_fetch_add(&self->relaying, 1);
        char tls[96];
        jx_tls_context_describe(conn->link.relay.ssl, tls, sizeof tls);
        emit(self, "event=connected agency=%s routing_id=%s peer=%s tls=%s", conn->agency,
             conn->routing_id, conn->peer, tls);
    }
    if (rc == 1) {
        if (conn->link.relay.filter != NULL) {
            jx_error why;
            jx_error_set(&why, JX_ERR_PROTOCOL,
                         conn->link.relay.tls_closed
                             ? "client closed the connection before completing ZMTP READY"
                             : "gateway ROUTER closed the connection during the ZMTP handshake");
            refuse(self, conn, &why);
        } else {
            close_relay(self, conn,
                        conn->link.relay.tls_closed ? "agency closed the connection"
                                                    : "gateway ROUTER closed the connection");
        }
        return;
    }
    if (jx_tls_loop_watch(self->loop, conn->link.relay.tls_fd, &conn->link.tls_watch,
                          jx_tls_relay_tls_events(&conn->link.relay)) != 0 ||
        jx_tls_loop_watch(self->loop, conn->link.relay.plain_fd, &conn->link.plain_watch,
                          jx_tls_relay_plain_events(&conn->link.relay)) != 0)
        close_relay(self, conn, "epoll_ctl failed");
}

/* ---- accepting ----------------------------------------------------------- */

static void accept_connections(void *owner)
{
    jx_tls_frontend *self = owner;
    for (;;) {
        struct sockaddr_storage addr;
        int fd = jx_tls_loop_accept(self->loop, self->listen_fd, &addr);
        if (fd < 0)
            return;
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
        jx_transport_tune_tcp(fd);

        connection *conn = calloc(1, sizeof *conn);
        jx_error err;
        if (conn == NULL || jx_tls_relay_init(&conn->link.relay, self->buffer_size, &err) != 0) {
            emit(self, "event=error peer=%s detail=\"out of memory for a connection\"", peer);
            free(conn);
            close(fd);
            continue;
        }
        conn->link.relay.tls_fd = fd;
        conn->trust_generation = self->trust_generation;
        snprintf(conn->peer, sizeof conn->peer, "%s", peer);
        conn->deadline_ms = jx_transport_monotonic_ms() + self->handshake_timeout_ms;
        conn->state = CONN_TLS_HANDSHAKE;
        jx_tls_loop_add(self->loop, &conn->link);
        self->connection_count++;

        SSL *ssl = SSL_new(self->ctx);
        /* Its own reference to the store in force: a switch during this
         * handshake neither frees it nor changes it half way. */
        if (ssl == NULL || SSL_set1_verify_cert_store(ssl, jx_trust_store(self->trust)) != 1 ||
            SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            jx_error why;
            jx_error_set_openssl(&why, JX_ERR_SYSTEM, "cannot start TLS");
            refuse(self, conn, &why);
            continue;
        }
        conn->link.relay.ssl = ssl;
        SSL_set_app_data(ssl, conn);
        SSL_set_accept_state(ssl);
        handshake(self, conn);
    }
}

/* ---- replacing the trust store ----------------------------------------- */

/* Right after a switch: every connection past its TLS handshake is checked
 * against the new trust, and closed if it no longer passes. (Those still in
 * their handshake are checked in start_relay.) */
static void drop_untrusted(jx_tls_frontend *self)
{
    jx_tls_link *next;
    for (jx_tls_link *l = jx_tls_loop_links(self->loop); l; l = next) {
        next = l->next;
        connection *conn = connection_of(l);
        jx_error why;
        if (conn->state != CONN_RELAY || recheck(self, conn, &why) == 0)
            continue;
        if (conn->link.relay.filter != NULL) { /* READY not through: not connected yet */
            refuse(self, conn, &why);
            continue;
        }
        char detail[JX_ERROR_MESSAGE_MAX];
        jx_transport_log_quote(why.message, detail, sizeof detail);
        emit(self,
             "event=dropped reason=%s agency=%s routing_id=%s peer=%s bytes_in=%llu "
             "bytes_out=%llu detail=\"the replaced trust store no longer accepts the client "
             "certificate: %s\"",
             jx_error_code_name(why.code), conn->agency, conn->routing_id, conn->peer,
             (unsigned long long)conn->link.relay.bytes_from_tls,
             (unsigned long long)conn->link.relay.bytes_from_plain, detail);
        kill_connection(self, conn);
    }
}

/* On the loop's thread: takes the trust jx_tls_frontend_set_trust offered,
 * if any, switches to it and answers. */
static void take_offered_trust(jx_tls_frontend *self)
{
    pthread_mutex_lock(&self->handover_lock);
    jx_trust *trust = self->offered;
    self->offered = NULL;
    pthread_mutex_unlock(&self->handover_lock);
    if (trust == NULL)
        return;
    jx_error answer;
    jx_error_clear(&answer);
    if (SSL_CTX_set1_verify_cert_store(self->ctx, jx_trust_store(trust)) != 1) {
        jx_error_set_openssl(&answer, JX_ERR_SYSTEM,
                             "cannot attach the new trust store to the TLS front end");
    } else {
        self->trust = trust;
        self->trust_generation++;
        emit(self, "event=trust_replaced generation=%llu",
             (unsigned long long)self->trust_generation);
        drop_untrusted(self);
    }
    pthread_mutex_lock(&self->handover_lock);
    self->answer = answer;
    self->answered = true;
    pthread_cond_signal(&self->handover_done);
    pthread_mutex_unlock(&self->handover_lock);
}

int jx_tls_frontend_set_trust(jx_tls_frontend *self, jx_trust *trust, jx_error *err)
{
    if (self == NULL || trust == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "replacing the TLS front end's trust store needs both");
    pthread_mutex_lock(&self->caller_lock);
    pthread_mutex_lock(&self->handover_lock);
    self->offered = trust;
    self->answered = false;
    pthread_mutex_unlock(&self->handover_lock);
    jx_tls_loop_wake(self->loop);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += TRUST_HANDOVER_TIMEOUT_MS / 1000;
    int rc = 0;
    pthread_mutex_lock(&self->handover_lock);
    while (!self->answered && rc == 0) {
        /* Once taken, the switch is under way and is waited for to the end:
         * only an offer nobody took may be withdrawn. */
        if (self->offered == NULL)
            pthread_cond_wait(&self->handover_done, &self->handover_lock);
        else if (pthread_cond_timedwait(&self->handover_done, &self->handover_lock,
                                        &deadline) == ETIMEDOUT &&
                 self->offered != NULL) {
            self->offered = NULL;
            rc = jx_error_set(err, JX_ERR_SYSTEM,
                              "the TLS front end's thread did not take the new trust store "
                              "within %d ms; the previous one stays in force",
                              TRUST_HANDOVER_TIMEOUT_MS);
        }
    }
    if (rc == 0 && self->answer.code != JX_OK) {
        if (err)
            *err = self->answer;
        rc = -1;
    }
    pthread_mutex_unlock(&self->handover_lock);
    pthread_mutex_unlock(&self->caller_lock);
    return rc;
}

/* ---- the loop's handlers ------------------------------------------------ */

static void check_deadlines(jx_tls_frontend *self, int64_t now)
{
    jx_tls_link *next;
    for (jx_tls_link *l = jx_tls_loop_links(self->loop); l; l = next) {
        next = l->next;
        connection *conn = connection_of(l);
        if (conn->deadline_ms != 0 && now >= conn->deadline_ms) {
            jx_error why;
            jx_error_set(&why, JX_ERR_HANDSHAKE_TIMEOUT, "no %s within %d ms of connecting",
                         conn->state == CONN_TLS_HANDSHAKE ? "TLS handshake" : "ZMTP READY",
                         self->handshake_timeout_ms);
            conn->link.relay.tls_closed = conn->state == CONN_TLS_HANDSHAKE;
            refuse(self, conn, &why);
        }
    }
}

static int next_timeout(void *owner)
{
    jx_tls_frontend *self = owner;
    int64_t now = jx_transport_monotonic_ms();
    int64_t timeout = 1000;
    for (jx_tls_link *l = jx_tls_loop_links(self->loop); l; l = l->next) {
        if (l->relay.more)
            return 0;
        int64_t deadline_ms = connection_of(l)->deadline_ms;
        if (deadline_ms != 0 && deadline_ms - now < timeout)
            timeout = deadline_ms - now;
    }
    return timeout < 0 ? 0 : (int)timeout;
}

static void on_ready(void *owner, jx_tls_link *link, jx_tls_watch_side which)
{
    (void)which; /* the state says what either socket is waited for */
    connection *conn = connection_of(link);
    if (conn->state == CONN_TLS_HANDSHAKE)
        handshake(owner, conn);
    else
        pump(owner, conn);
}

static void after_batch(void *owner)
{
    jx_tls_frontend *self = owner;
    take_offered_trust(self);
    jx_tls_link *next;
    for (jx_tls_link *l = jx_tls_loop_links(self->loop); l; l = next) {
        next = l->next;
        if (l->relay.more && connection_of(l)->state == CONN_RELAY)
            pump(self, connection_of(l));
    }
    check_deadlines(self, jx_transport_monotonic_ms());
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
    pthread_condattr_t monotonic;
    if (self == NULL || pthread_condattr_init(&monotonic) != 0) {
        free(self);
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory for the TLS front end");
        return NULL;
    }
    /* The hand-over deadline must not move with the wall clock. */
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_mutex_init(&self->caller_lock, NULL);
    pthread_mutex_init(&self->handover_lock, NULL);
    pthread_cond_init(&self->handover_done, &monotonic);
    pthread_condattr_destroy(&monotonic);
    self->trust = config->trust;
    self->listen_fd = -1;
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
    self->loop = jx_tls_loop_new(self->listen_fd, self->log, self->log_arg, err);
    if (self->loop == NULL)
        goto fail;
    emit(self, "event=listening address=%s port=%d router=%s min_tls=%s", config->listen,
         self->port, config->router_endpoint, self->min_version == TLS1_2_VERSION ? "1.2" : "1.3");
    static const jx_tls_loop_handlers handlers = {
        .accept = accept_connections,
        .ready = on_ready,
        .after_batch = after_batch,
        .timeout_ms = next_timeout,
    };
    if (jx_tls_loop_start(self->loop, &handlers, self, "TLS front end", err) != 0)
        goto fail;
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
    /* A connection holds nothing beyond its link, so the loop frees them
     * all; the counters go with the front end. */
    jx_tls_loop_destroy(&self->loop);
    if (self->listen_fd >= 0)
        close(self->listen_fd);
    SSL_CTX_free(self->ctx);
    pthread_cond_destroy(&self->handover_done);
    pthread_mutex_destroy(&self->handover_lock);
    pthread_mutex_destroy(&self->caller_lock);
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
