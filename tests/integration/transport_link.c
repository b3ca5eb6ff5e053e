/* transport_link.c — the TLS link end to end: DEALER -> dialer -> TLS -> front end -> ROUTER.
 *
 * Real libzmq sockets, real TLS with the dev PKI, real threads (the front
 * end's and the dialer's), loopback TCP on an ephemeral port. Checks that
 * messages cross in both directions, that the ROUTER sees the certificate's
 * agency whatever routing id the DEALER asks for, that one agency can have
 * two adapters at once, that the per-agency limit holds, that the dialer
 * refuses a gateway with the wrong name, and that the link comes back after
 * the gateway side restarts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transport_harness.h"

enum { WAIT_MS = 15000 };

typedef struct {
    char rid[JX_ZMTP_ROUTING_ID_MAX + 1];
    char agency[JX_AGENCY_ID_MAX];
    uint8_t *payload;
    size_t len;
} routed;

/* Receives [routing id][payload] on the ROUTER. */
static void router_receive(void *router, routed *out)
{
    if (!wait_readable(router, WAIT_MS))
        fail_msg("ROUTER received nothing within %d ms", WAIT_MS);
    zmq_msg_t part;
    zmq_msg_init(&part);
    assert_true(zmq_msg_recv(&part, router, 0) >= 0);
    size_t rid_len = zmq_msg_size(&part);
    assert_true(rid_len > 0 && rid_len <= JX_ZMTP_ROUTING_ID_MAX);
    memcpy(out->rid, zmq_msg_data(&part), rid_len);
    out->rid[rid_len] = '\0';
    assert_true(zmq_msg_more(&part));
    jx_error err;
    if (jx_zmtp_routing_id_agency((const uint8_t *)out->rid, rid_len, out->agency, &err) != 0)
        fail_msg("routing id \"%s\" is not AGENCY/SERIAL: %s", out->rid, err.message);
    assert_int_equal(zmq_msg_recv(&part, router, 0) >= 0, 1);
    assert_false(zmq_msg_more(&part));
    out->len = zmq_msg_size(&part);
    out->payload = malloc(out->len + 1);
    memcpy(out->payload, zmq_msg_data(&part), out->len);
    out->payload[out->len] = 0;
    zmq_msg_close(&part);
}

static void router_send(void *router, const char *rid, const void *data, size_t len)
{
    assert_int_equal(zmq_send(router, rid, strlen(rid), ZMQ_SNDMORE), (int)strlen(rid));
    assert_int_equal(zmq_send(router, data, len, 0), (int)len);
}

static void dealer_expect(void *dealer, const void *data, size_t len)
{
    if (!wait_readable(dealer, WAIT_MS))
        fail_msg("DEALER received nothing within %d ms", WAIT_MS);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    assert_true(zmq_msg_recv(&msg, dealer, 0) >= 0);
    assert_int_equal(zmq_msg_size(&msg), len);
    assert_memory_equal(zmq_msg_data(&msg), data, len);
    zmq_msg_close(&msg);
}

static jx_tls_dialer_state wait_state(adapter_side *a, jx_tls_dialer_state want, int timeout_ms,
                                      jx_error *last)
{
    jx_tls_dialer_state state = JX_TLS_DIALER_IDLE;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        state = jx_tls_dialer_get_state(a->dialer, last);
        if (state == want)
            break;
        sleep_ms(10);
    }
    return state;
}

/* The front end counts a connection once its pump returns, a moment after
 * the bytes it relayed may have reached the ROUTER. */
static int wait_relaying(gateway_side *g, int want)
{
    int n = 0;
    for (int waited = 0; waited <= WAIT_MS; waited += 10) {
        n = jx_tls_frontend_relaying(g->frontend);
        if (n == want)
            break;
        sleep_ms(10);
    }
    return n;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* Many messages, small and larger than the relay buffers, both ways. */
static void messages_cross_both_ways(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {.with_crl = true};
    gateway_start(&g, zctx, &opt);
    adapter_side a;
    adapter_start(&a, zctx, g.port, "KG-PROBATION", NULL, 1000);

    enum { COUNT = 300 };
    static const size_t sizes[] = {1, 2048, 100, 700 * 1024, 0, 65536, 17, 300000};
    uint8_t *buf = malloc(700 * 1024);
    for (unsigned i = 0; i < COUNT; i++) {
        size_t len = sizes[i % 8];
        fill(buf, len, i);
        assert_int_equal(zmq_send(a.dealer, buf, len, 0), (int)len);
    }
    char rid[JX_ZMTP_ROUTING_ID_MAX + 1] = "";
    for (unsigned i = 0; i < COUNT; i++) {
        routed r;
        router_receive(g.router, &r);
        assert_string_equal(r.agency, "KG-PROBATION");
        if (i == 0)
            strcpy(rid, r.rid);
        assert_string_equal(r.rid, rid);
        size_t len = sizes[i % 8];
        fill(buf, len, i);
        assert_int_equal(r.len, len);
        assert_memory_equal(r.payload, buf, len);
        free(r.payload);
        /* Echo back with a different pattern. */
        fill(buf, len, i + 1000);
        router_send(g.router, rid, buf, len);
    }
    for (unsigned i = 0; i < COUNT; i++) {
        size_t len = sizes[i % 8];
        fill(buf, len, i + 1000);
        dealer_expect(a.dealer, buf, len);
    }
    free(buf);

    jx_error last;
    assert_int_equal(jx_tls_dialer_get_state(a.dialer, &last), JX_TLS_DIALER_CONNECTED);
    assert_int_equal(wait_relaying(&g, 1), 1);
    const char *connected[] = {"event=connected", "agency=KG-PROBATION", rid, "TLSv1.3", NULL};
    assert_int_equal(log_count(&g.log, connected), 1);

    adapter_stop(&a);
    const char *closed[] = {"event=closed", rid, NULL};
    assert_true(log_wait(&g.log, 1, WAIT_MS, closed));
    gateway_stop(&g);
    zmq_ctx_term(zctx);
}

/* A DEALER that asks for another agency's routing id is still itself. */
static void peer_cannot_choose_identity(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {0};
    gateway_start(&g, zctx, &opt);
    const char *spoofs[] = {"LV-PROBATION/1", "KG-COURT-BISHKEK"};
    for (int i = 0; i < 2; i++) {
        adapter_side a;
        adapter_start(&a, zctx, g.port, "KG-PRISON", spoofs[i], 1000);
        assert_int_equal(zmq_send(a.dealer, "who am i", 8, 0), 8);
        routed r;
        router_receive(g.router, &r);
        assert_string_equal(r.agency, "KG-PRISON");
        assert_string_not_equal(r.rid, spoofs[i]);
        assert_memory_equal(r.rid, "KG-PRISON/", 10);
        free(r.payload);
        /* The spoofed id is not a route to anyone. */
        errno = 0;
        assert_int_equal(zmq_send(g.router, spoofs[i], strlen(spoofs[i]), ZMQ_SNDMORE), -1);
        assert_int_equal(errno, EHOSTUNREACH);
        router_send(g.router, r.rid, "you are KG-PRISON", 17);
        dealer_expect(a.dealer, "you are KG-PRISON", 17);
        adapter_stop(&a);
    }
    gateway_stop(&g);
    zmq_ctx_term(zctx);
}

/* Two adapters of one agency: two routing ids, each reachable on its own. */
static void two_adapters_of_one_agency(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {0};
    gateway_start(&g, zctx, &opt);
    adapter_side a, b;
    adapter_start(&a, zctx, g.port, "KG-COURT-BISHKEK", NULL, 1000);
    adapter_start(&b, zctx, g.port, "KG-COURT-BISHKEK", NULL, 1000);
    assert_int_equal(zmq_send(a.dealer, "from-a", 6, 0), 6);
    assert_int_equal(zmq_send(b.dealer, "from-b", 6, 0), 6);
    routed r1, r2;
    router_receive(g.router, &r1);
    router_receive(g.router, &r2);
    assert_string_equal(r1.agency, "KG-COURT-BISHKEK");
    assert_string_equal(r2.agency, "KG-COURT-BISHKEK");
    assert_string_not_equal(r1.rid, r2.rid);
    routed *ra = strcmp((char *)r1.payload, "from-a") == 0 ? &r1 : &r2;
    routed *rb = ra == &r1 ? &r2 : &r1;
    assert_string_equal((char *)ra->payload, "from-a");
    assert_string_equal((char *)rb->payload, "from-b");
    assert_int_equal(wait_relaying(&g, 2), 2);
    router_send(g.router, rb->rid, "to-b", 4);
    router_send(g.router, ra->rid, "to-a", 4);
    dealer_expect(a.dealer, "to-a", 4);
    dealer_expect(b.dealer, "to-b", 4);
    free(r1.payload);
    free(r2.payload);
    adapter_stop(&a);
    adapter_stop(&b);
    gateway_stop(&g);
    zmq_ctx_term(zctx);
}

/* max_connections_per_agency = 1: the second adapter is refused, backs off,
 * and gets in once the first leaves. */
static void per_agency_limit(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {.max_per_agency = 1};
    gateway_start(&g, zctx, &opt);
    adapter_side a, b;
    adapter_start(&a, zctx, g.port, "LV-PROBATION", NULL, 300);
    assert_int_equal(zmq_send(a.dealer, "a", 1, 0), 1);
    routed r;
    router_receive(g.router, &r);
    free(r.payload);

    adapter_start(&b, zctx, g.port, "LV-PROBATION", NULL, 300);
    assert_int_equal(zmq_send(b.dealer, "b", 1, 0), 1);
    const char *refused[] = {"event=refused", "reason=TOO_MANY_CONNECTIONS", "agency=LV-PROBATION",
                             NULL};
    if (!log_wait(&g.log, 1, WAIT_MS, refused)) {
        log_dump(&g.log);
        fail_msg("no TOO_MANY_CONNECTIONS refusal");
    }
    jx_error last;
    assert_int_equal(wait_state(&b, JX_TLS_DIALER_BACKING_OFF, WAIT_MS, &last),
                     JX_TLS_DIALER_BACKING_OFF);
    assert_int_not_equal(last.code, JX_OK);
    assert_false(wait_readable(g.router, 300)); /* b's message did not get through */

    adapter_stop(&a);
    router_receive(g.router, &r);
    assert_string_equal(r.agency, "LV-PROBATION");
    assert_string_equal((char *)r.payload, "b");
    free(r.payload);
    assert_int_equal(wait_state(&b, JX_TLS_DIALER_CONNECTED, WAIT_MS, &last),
                     JX_TLS_DIALER_CONNECTED);
    adapter_stop(&b);
    gateway_stop(&g);
    zmq_ctx_term(zctx);
}

/* The dialer checks the gateway's name: a gateway that cannot prove it is
 * "gateway.example.org" is never sent a byte. */
static void dialer_checks_gateway_name(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {0};
    gateway_start(&g, zctx, &opt);
    char dir[64], endpoint[128], gateway[64];
    private_dir(dir);
    snprintf(endpoint, sizeof endpoint, "ipc://%s/dialer.ipc", dir);
    snprintf(gateway, sizeof gateway, "127.0.0.1:%d", g.port);
    log_capture log;
    log_init(&log, "dialer");
    jx_tls_dialer_config config = {
        .local_endpoint = endpoint,
        .gateway = gateway,
        .gateway_name = "gateway.example.org",
        .ca_file = pki_path("ca.pem"),
        .cert_file = pki_path("KG-PROBATION.pem"),
        .key_file = pki_path("KG-PROBATION.key"),
        .log = log_line,
        .log_arg = &log,
    };
    jx_error err;
    jx_tls_dialer *dialer = jx_tls_dialer_new(&config, &err);
    assert_non_null(dialer);
    void *dealer = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(dealer, endpoint), 0);
    zmq_send(dealer, "x", 1, ZMQ_DONTWAIT);
    const char *failed[] = {"event=attempt_failed", "reason=UNTRUSTED_CERTIFICATE",
                            "gateway.example.org", NULL};
    if (!log_wait(&log, 1, WAIT_MS, failed)) {
        log_dump(&log);
        fail_msg("dialer did not refuse the misnamed gateway");
    }
    jx_error last;
    assert_int_equal(jx_tls_dialer_get_state(dialer, &last), JX_TLS_DIALER_BACKING_OFF);
    assert_int_equal(last.code, JX_ERR_UNTRUSTED_CERTIFICATE);
    const char *connected[] = {"event=connected", NULL};
    assert_int_equal(log_count(&g.log, connected), 0);
    zmq_close(dealer);
    jx_tls_dialer_destroy(&dialer);
    jx_tls_dialer_destroy(&dialer);
    log_free(&log);
    remove_private_dir(dir);
    gateway_stop(&g);
    zmq_ctx_term(zctx);
}

/* The gateway side (front end and ROUTER) goes away and comes back on the
 * same port; the adapter's DEALER works again without being touched. */
static void link_survives_gateway_restart(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    gateway_side g;
    gateway_options opt = {0};
    gateway_start(&g, zctx, &opt);
    int port = g.port;
    adapter_side a;
    adapter_start(&a, zctx, port, "KG-PROSECUTOR", NULL, 500);
    assert_int_equal(zmq_send(a.dealer, "before", 6, 0), 6);
    routed r;
    router_receive(g.router, &r);
    assert_string_equal((char *)r.payload, "before");
    router_send(g.router, r.rid, "ok-before", 9);
    dealer_expect(a.dealer, "ok-before", 9);
    free(r.payload);

    gateway_stop(&g);
    jx_error last;
    assert_int_equal(wait_state(&a, JX_TLS_DIALER_BACKING_OFF, WAIT_MS, &last),
                     JX_TLS_DIALER_BACKING_OFF);
    sleep_ms(700); /* let a few attempts fail against the closed port */
    const char *failed[] = {"event=attempt_failed", "Connection refused", NULL};
    assert_true(log_count(&a.log, failed) >= 1);

    opt.port = port;
    gateway_start(&g, zctx, &opt);
    assert_int_equal(zmq_send(a.dealer, "after", 5, 0), 5);
    router_receive(g.router, &r);
    assert_string_equal(r.agency, "KG-PROSECUTOR");
    assert_string_equal((char *)r.payload, "after");
    router_send(g.router, r.rid, "ok-after", 8);
    dealer_expect(a.dealer, "ok-after", 8);
    free(r.payload);
    assert_int_equal(wait_state(&a, JX_TLS_DIALER_CONNECTED, WAIT_MS, &last),
                     JX_TLS_DIALER_CONNECTED);
    adapter_stop(&a);
    gateway_stop(&g);
    zmq_ctx_term(zctx);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages_cross_both_ways),
        cmocka_unit_test(peer_cannot_choose_identity),
        cmocka_unit_test(two_adapters_of_one_agency),
        cmocka_unit_test(per_agency_limit),
        cmocka_unit_test(dialer_checks_gateway_name),
        cmocka_unit_test(link_survives_gateway_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
