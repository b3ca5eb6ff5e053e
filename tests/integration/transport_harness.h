/* transport_harness.h — shared fixtures for the transport tests and benchmark:
 * a gateway side (ROUTER on a private ipc endpoint + TLS front end) and an
 * adapter side (TLS dialer + DEALER), the dev PKI, and a log capture that
 * tests can wait on. Header-only so each test program stays one file. */
#ifndef JX_TRANSPORT_HARNESS_H
#define JX_TRANSPORT_HARNESS_H

#include "tls_dialer.h"
#include "tls_frontend.h"
#include "transport.h"
#include "trust.h"
#include "zmtp.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifndef JX_PKI_DIR
#error "JX_PKI_DIR must name the dev PKI directory"
#endif

/* ---- small helpers -------------------------------------------------------- */

#define HARNESS_CHECK(cond)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline const char *pki_path(const char *file)
{
    static char paths[16][512];
    static unsigned next;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", JX_PKI_DIR, file);
    return p;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A fresh directory of mode 0700 (mkdtemp's mode) for ipc endpoints. */
static inline void private_dir(char out[64])
{
    snprintf(out, 64, "/tmp/jx-transport-XXXXXX");
    HARNESS_CHECK(mkdtemp(out) != NULL);
}

static inline void remove_private_dir(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/router.ipc", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/dialer.ipc", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- log capture ---------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    char *text;
    size_t len;
    size_t cap;
    const char *tag;
} log_capture;

static inline void log_init(log_capture *log, const char *tag)
{
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    log->tag = tag;
}

static inline void log_free(log_capture *log)
{
    free(log->text);
    pthread_mutex_destroy(&log->lock);
}

static inline void log_line(void *arg, const char *line)
{
    log_capture *log = arg;
    if (getenv("JX_TEST_VERBOSE"))
        fprintf(stderr, "[%s] %s\n", log->tag, line);
    pthread_mutex_lock(&log->lock);
    size_t n = strlen(line);
    if (log->len + n + 2 > log->cap) {
        size_t cap = (log->cap + n + 2) * 2;
        char *text = realloc(log->text, cap);
        HARNESS_CHECK(text != NULL);
        log->text = text;
        log->cap = cap;
    }
    memcpy(log->text + log->len, line, n);
    log->len += n;
    log->text[log->len++] = '\n';
    log->text[log->len] = '\0';
    pthread_mutex_unlock(&log->lock);
}

/* Number of lines containing every one of the words (NULL-terminated). */
static inline int log_count(log_capture *log, const char *const *words)
{
    int count = 0;
    pthread_mutex_lock(&log->lock);
    const char *line = log->text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char buf[2048];
        if (n >= sizeof buf)
            n = sizeof buf - 1;
        memcpy(buf, line, n);
        buf[n] = '\0';
        bool all = true;
        for (const char *const *w = words; *w && all; w++)
            all = strstr(buf, *w) != NULL;
        count += all;
        line = end ? end + 1 : NULL;
    }
    pthread_mutex_unlock(&log->lock);
    return count;
}

/* Waits until at least `want` lines contain all the words. */
static inline bool log_wait(log_capture *log, int want, int timeout_ms, const char *const *words)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (log_count(log, words) >= want)
            return true;
        sleep_ms(10);
    }
    return false;
}

static inline void log_dump(log_capture *log)
{
    pthread_mutex_lock(&log->lock);
    fprintf(stderr, "---- %s log ----\n%s", log->tag, log->text ? log->text : "");
    pthread_mutex_unlock(&log->lock);
}

/* ---- gateway side --------------------------------------------------------- */

typedef struct {
    void *router;
    jx_tls_frontend *frontend;
    jx_trust *trust;
    char dir[64];
    char endpoint[128];
    log_capture log;
    int port;
} gateway_side;

typedef struct {
    int port; /* 0: ephemeral */
    int tls_min_version;
    int handshake_timeout_ms;
    int max_connections;
    int max_per_agency;
    bool with_crl;
    bool no_router;
} gateway_options;

static inline void gateway_start(gateway_side *g, void *zctx, const gateway_options *opt)
{
    jx_error err;
    memset(g, 0, sizeof *g);
    log_init(&g->log, "frontend");
    private_dir(g->dir);
    snprintf(g->endpoint, sizeof g->endpoint, "ipc://%s/router.ipc", g->dir);
    g->trust = jx_trust_new(pki_path("ca.pem"), &err);
    HARNESS_CHECK(g->trust != NULL);
    if (opt->with_crl)
        HARNESS_CHECK(jx_trust_add_crl(g->trust, pki_path("crl.pem"), &err) == 0);
    if (!opt->no_router) {
        g->router = zmq_socket(zctx, ZMQ_ROUTER);
        int one = 1, linger = 0;
        zmq_setsockopt(g->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
        zmq_setsockopt(g->router, ZMQ_LINGER, &linger, sizeof linger);
        HARNESS_CHECK(jx_transport_set_heartbeat(g->router, 1000, &err) == 0);
        HARNESS_CHECK(zmq_bind(g->router, g->endpoint) == 0);
    }
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", opt->port);
    jx_tls_frontend_config config = {
        .listen = listen,
        .cert_file = pki_path("gateway.pem"),
        .key_file = pki_path("gateway.key"),
        .trust = g->trust,
        .tls_min_version = opt->tls_min_version,
        .router_endpoint = g->endpoint,
        .handshake_timeout_ms = opt->handshake_timeout_ms,
        .max_connections = opt->max_connections,
        .max_connections_per_agency = opt->max_per_agency,
        .log = log_line,
        .log_arg = &g->log,
    };
    g->frontend = jx_tls_frontend_new(&config, &err);
    if (g->frontend == NULL) {
        fprintf(stderr, "front end: %s\n", err.message);
        abort();
    }
    g->port = jx_tls_frontend_port(g->frontend);
}

static inline void gateway_stop(gateway_side *g)
{
    jx_tls_frontend_destroy(&g->frontend);
    if (g->router)
        zmq_close(g->router);
    g->router = NULL;
    jx_trust_destroy(&g->trust);
    remove_private_dir(g->dir);
    log_free(&g->log);
}

/* ---- adapter side --------------------------------------------------------- */

typedef struct {
    jx_tls_dialer *dialer;
    void *dealer;
    char dir[64];
    char endpoint[128];
    log_capture log;
} adapter_side;

/* Starts a dialer with agency's certificate towards port, and a DEALER
 * connected to it (routing_id: what the DEALER asks for, or NULL). */
static inline void adapter_start(adapter_side *a, void *zctx, int port, const char *agency,
                                 const char *routing_id, int backoff_max_ms)
{
    jx_error err;
    memset(a, 0, sizeof *a);
    log_init(&a->log, agency);
    private_dir(a->dir);
    snprintf(a->endpoint, sizeof a->endpoint, "ipc://%s/dialer.ipc", a->dir);
    char gateway[64], cert[64], key[64];
    snprintf(gateway, sizeof gateway, "127.0.0.1:%d", port);
    snprintf(cert, sizeof cert, "%s.pem", agency);
    snprintf(key, sizeof key, "%s.key", agency);
    jx_tls_dialer_config config = {
        .local_endpoint = a->endpoint,
        .gateway = gateway,
        .gateway_name = "localhost",
        .ca_file = pki_path("ca.pem"),
        .cert_file = pki_path(cert),
        .key_file = pki_path(key),
        .backoff_min_ms = 50,
        .backoff_max_ms = backoff_max_ms,
        .log = log_line,
        .log_arg = &a->log,
    };
    a->dialer = jx_tls_dialer_new(&config, &err);
    if (a->dialer == NULL) {
        fprintf(stderr, "dialer: %s\n", err.message);
        abort();
    }
    a->dealer = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0, reconnect = 50;
    zmq_setsockopt(a->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(a->dealer, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
    if (routing_id)
        zmq_setsockopt(a->dealer, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    HARNESS_CHECK(jx_transport_set_heartbeat(a->dealer, 1000, &err) == 0);
    HARNESS_CHECK(zmq_connect(a->dealer, a->endpoint) == 0);
}

static inline void adapter_stop(adapter_side *a)
{
    if (a->dealer)
        zmq_close(a->dealer);
    a->dealer = NULL;
    jx_tls_dialer_destroy(&a->dialer);
    remove_private_dir(a->dir);
    log_free(&a->log);
}

static inline bool wait_readable(void *socket, int timeout_ms)
{
    zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
    return zmq_poll(&item, 1, timeout_ms) == 1;
}

#endif
