/* bench_transport.c — messages per second through the TLS link versus plain ZeroMQ tcp://.
 *
 * One run measures, one after the other on loopback:
 *   plain: DEALER --tcp://127.0.0.1--> ROUTER
 *   tls:   DEALER --ipc--> dialer --TLS 1.3 over TCP--> front end --ipc--> ROUTER
 * sending COUNT messages of SIZE bytes one way, DEALER to ROUTER (the
 * direction agencies send in; the other way is the same code path). Timing
 * runs from the first send to the last message received. The gateway and
 * adapter sides each have their own ZeroMQ context, as separate processes
 * would. Prints both rates and their ratio; asserts nothing about speed.
 *
 * usage: bench_transport [COUNT [SIZE]]   (defaults 200000 and 2048)
 */
#include "transport_harness.h"

#include <inttypes.h>
#include <sys/resource.h>

typedef struct {
    void *dealer;
    long count;
    size_t size;
} sender_args;

static void *sender(void *arg)
{
    sender_args *s = arg;
    uint8_t *buf = malloc(s->size);
    memset(buf, 'm', s->size);
    for (long i = 0; i < s->count; i++) {
        memcpy(buf, &i, sizeof i < s->size ? sizeof i : s->size);
        if (zmq_send(s->dealer, buf, s->size, 0) != (int)s->size) {
            fprintf(stderr, "send failed: %s\n", zmq_strerror(zmq_errno()));
            abort();
        }
    }
    free(buf);
    return NULL;
}

/* CPU seconds (user + system) used by this process so far: the whole path,
 * both sides, runs in this process, so the difference over a run is what
 * the path costs whatever else the machine is doing. */
static double cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends count messages on dealer in a thread, receives them on router;
 * returns messages per second and, in *cpu_us, CPU microseconds per message. */
static double run(void *dealer, void *router, long count, size_t size, double *cpu_us)
{
    /* Warm up and make sure the path is connected end to end. */
    HARNESS_CHECK(zmq_send(dealer, "warm", 4, 0) == 4);
    HARNESS_CHECK(wait_readable(router, 20000));
    char rid[256], body[16];
    HARNESS_CHECK(zmq_recv(router, rid, sizeof rid, 0) > 0);
    HARNESS_CHECK(zmq_recv(router, body, sizeof body, 0) == 4);

    sender_args args = {.dealer = dealer, .count = count, .size = size};
    pthread_t thread;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    double start = now_seconds();
    double cpu_start = cpu_seconds();
    HARNESS_CHECK(pthread_create(&thread, NULL, sender, &args) == 0);
    for (long i = 0; i < count; i++) {
        HARNESS_CHECK(zmq_msg_recv(&msg, router, 0) >= 0); /* routing id */
        HARNESS_CHECK(zmq_msg_recv(&msg, router, 0) == (int)size);
        long seq;
        memcpy(&seq, zmq_msg_data(&msg), sizeof seq < size ? sizeof seq : size);
        if (size >= sizeof seq && seq != i) {
            fprintf(stderr, "message %ld arrived as %ld\n", i, seq);
            abort();
        }
    }
    double elapsed = now_seconds() - start;
    pthread_join(thread, NULL);
    *cpu_us = (cpu_seconds() - cpu_start) * 1e6 / (double)count;
    zmq_msg_close(&msg);
    return (double)count / elapsed;
}

static void set_hwm(void *socket)
{
    int hwm = 100000;
    zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
}

static double bench_plain(long count, size_t size, double *cpu_us)
{
    void *gw_ctx = zmq_ctx_new(), *ad_ctx = zmq_ctx_new();
    void *router = zmq_socket(gw_ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ad_ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    set_hwm(router);
    set_hwm(dealer);
    HARNESS_CHECK(zmq_bind(router, "tcp://127.0.0.1:*") == 0);
    char endpoint[128];
    size_t len = sizeof endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &len);
    HARNESS_CHECK(zmq_connect(dealer, endpoint) == 0);
    double rate = run(dealer, router, count, size, cpu_us);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ad_ctx);
    zmq_ctx_term(gw_ctx);
    return rate;
}

static double bench_tls(long count, size_t size, double *cpu_us, char *tls_out, size_t tls_size)
{
    void *gw_ctx = zmq_ctx_new(), *ad_ctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {.with_crl = true};
    gateway_start(&g, gw_ctx, &opt);
    set_hwm(g.router);
    adapter_side a;
    adapter_start(&a, ad_ctx, g.port, "KG-PROBATION", NULL, 1000);
    set_hwm(a.dealer);
    double rate = run(a.dealer, g.router, count, size, cpu_us);
    /* Report the negotiated protocol and suite from the front end's log. */
    pthread_mutex_lock(&g.log.lock);
    const char *connected = g.log.text ? strstr(g.log.text, "event=connected") : NULL;
    const char *tls = connected ? strstr(connected, " tls=") : NULL;
    if (tls)
        tls++;
    snprintf(tls_out, tls_size, "%.*s", tls ? (int)strcspn(tls + 4, " \n") : 1,
             tls ? tls + 4 : "?");
    pthread_mutex_unlock(&g.log.lock);
    adapter_stop(&a);
    gateway_stop(&g);
    zmq_ctx_term(ad_ctx);
    zmq_ctx_term(gw_ctx);
    return rate;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 200000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 2048;
    if (count <= 0 || size == 0) {
        fprintf(stderr, "usage: %s [COUNT [SIZE]]\n", argv[0]);
        return 2;
    }
    double plain_cpu, tls_cpu;
    double plain = bench_plain(count, size, &plain_cpu);
    char tls_name[96];
    double tls = bench_tls(count, size, &tls_cpu, tls_name, sizeof tls_name);
    printf("messages: %ld x %zu bytes, one way DEALER -> ROUTER, loopback\n", count, size);
    printf("plain tcp://   %10.0f msg/s  %8.1f MB/s  %6.2f CPU us/msg\n", plain,
           plain * (double)size / 1e6, plain_cpu);
    printf("TLS link       %10.0f msg/s  %8.1f MB/s  %6.2f CPU us/msg  (%s)\n", tls,
           tls * (double)size / 1e6, tls_cpu, tls_name);
    printf("ratio TLS/plain  %.2f\n", tls / plain);
    return 0;
}
