/* test_transport.c — address parsing, private ipc endpoints and heartbeats (transport.c),
 * and the start-up checks of the front end and dialer that need no peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tls_dialer.h"
#include "tls_frontend.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static void split_addresses(void **state)
{
    (void)state;
    char host[64], port[16];
    jx_error err;
    assert_int_equal(
        jx_transport_split_address("127.0.0.1:7443", host, sizeof host, port, sizeof port, &err),
        0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "7443");
    assert_int_equal(
        jx_transport_split_address("[::1]:0", host, sizeof host, port, sizeof port, &err), 0);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "0");
    assert_int_equal(jx_transport_split_address("gateway.example.org:https", host, sizeof host,
                                                port, sizeof port, &err),
                     0);
    assert_string_equal(host, "gateway.example.org");
    const char *bad[] = {"", "nohost", ":7443", "host:", "[::1]7443", "[::1:7443"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(
            jx_transport_split_address(bad[i], host, sizeof host, port, sizeof port, &err), -1);
        assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    }
}

static void private_ipc_requires_0700(void **state)
{
    (void)state;
    char dir[] = "/tmp/jx-transport-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/router.ipc", dir);
    struct sockaddr_un addr;
    jx_error err;
    assert_int_equal(jx_transport_private_ipc(endpoint, &addr, &err), 0);
    assert_string_equal(addr.sun_path, endpoint + 6);

    chmod(dir, 0750);
    assert_int_equal(jx_transport_private_ipc(endpoint, &addr, &err), -1);
    assert_int_equal(err.code, JX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "0700"));
    chmod(dir, 0700);

    assert_int_equal(jx_transport_private_ipc("tcp://127.0.0.1:1", &addr, &err), -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    assert_int_equal(jx_transport_private_ipc("ipc://relative/x.ipc", &addr, &err), -1);
    assert_int_equal(jx_transport_private_ipc("ipc:///nonexistent-jx-dir/x.ipc", &addr, &err), -1);
    assert_int_equal(err.code, JX_ERR_CONFIG);
    char longer[200];
    snprintf(longer, sizeof longer, "ipc://%s/%0120d.ipc", dir, 0);
    assert_int_equal(jx_transport_private_ipc(longer, &addr, &err), -1);
    rmdir(dir);
}

static void heartbeat_options_set(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *socket = zmq_socket(ctx, ZMQ_DEALER);
    jx_error err;
    assert_int_equal(jx_transport_set_heartbeat(socket, 2000, &err), 0);
    int value = 0;
    size_t size = sizeof value;
    zmq_getsockopt(socket, ZMQ_HEARTBEAT_IVL, &value, &size);
    assert_int_equal(value, 2000);
    zmq_getsockopt(socket, ZMQ_HEARTBEAT_TIMEOUT, &value, &size);
    assert_int_equal(value, 6000);
    zmq_getsockopt(socket, ZMQ_HEARTBEAT_TTL, &value, &size);
    assert_int_equal(value, 6000);
    assert_int_equal(jx_transport_set_heartbeat(socket, 0, &err), -1);
    zmq_close(socket);
    zmq_ctx_term(ctx);
}

/* The front end will not start with its ROUTER in a shared directory, nor
 * with a key that does not match its certificate. */
static void frontend_startup_checks(void **state)
{
    (void)state;
    jx_error err;
    jx_trust *trust = jx_trust_new(JX_PKI_DIR "/ca.pem", &err);
    assert_non_null(trust);
    jx_tls_frontend_config config = {
        .listen = "127.0.0.1:0",
        .cert_file = JX_PKI_DIR "/gateway.pem",
        .key_file = JX_PKI_DIR "/gateway.key",
        .trust = trust,
        .router_endpoint = "ipc:///tmp/router.ipc", /* /tmp is 1777 */
    };
    assert_null(jx_tls_frontend_new(&config, &err));
    assert_int_equal(err.code, JX_ERR_CONFIG);

    char dir[] = "/tmp/jx-transport-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/router.ipc", dir);
    config.router_endpoint = endpoint;
    config.key_file = JX_PKI_DIR "/KG-PROBATION.key";
    assert_null(jx_tls_frontend_new(&config, &err));
    assert_int_equal(err.code, JX_ERR_KEY);
    config.key_file = JX_PKI_DIR "/gateway.key";
    config.tls_min_version = 0x0301; /* TLS 1.0 */
    assert_null(jx_tls_frontend_new(&config, &err));
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    config.tls_min_version = 0;
    jx_tls_frontend *frontend = jx_tls_frontend_new(&config, &err);
    assert_non_null(frontend);
    assert_true(jx_tls_frontend_port(frontend) > 0);
    assert_int_equal(jx_tls_frontend_relaying(frontend), 0);
    jx_tls_frontend_destroy(&frontend);
    jx_tls_frontend_destroy(&frontend);
    assert_null(frontend);
    rmdir(dir);
    jx_trust_destroy(&trust);
}

/* The dialer replaces a stale socket file but nothing else, and starts IDLE. */
static void dialer_startup_checks(void **state)
{
    (void)state;
    char dir[] = "/tmp/jx-transport-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char endpoint[128], path[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/dialer.ipc", dir);
    snprintf(path, sizeof path, "%s/dialer.ipc", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    jx_tls_dialer_config config = {
        .local_endpoint = endpoint,
        .gateway = "127.0.0.1:9",
        .ca_file = JX_PKI_DIR "/ca.pem",
        .cert_file = JX_PKI_DIR "/KG-PROBATION.pem",
        .key_file = JX_PKI_DIR "/KG-PROBATION.key",
    };
    jx_error err;
    assert_null(jx_tls_dialer_new(&config, &err));
    assert_int_equal(err.code, JX_ERR_CONFIG);
    unlink(path);

    jx_tls_dialer *dialer = jx_tls_dialer_new(&config, &err);
    assert_non_null(dialer);
    jx_error last;
    assert_int_equal(jx_tls_dialer_get_state(dialer, &last), JX_TLS_DIALER_IDLE);
    assert_int_equal(last.code, JX_OK);
    assert_string_equal(jx_tls_dialer_state_name(JX_TLS_DIALER_BACKING_OFF), "BACKING_OFF");
    jx_tls_dialer_destroy(&dialer);
    assert_int_equal(access(path, F_OK), -1); /* socket file removed */

    /* A socket file left behind (here: by a dialer we do not destroy
     * cleanly) is replaced. */
    dialer = jx_tls_dialer_new(&config, &err);
    assert_non_null(dialer);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    jx_tls_dialer *second = jx_tls_dialer_new(&config, &err);
    assert_non_null(second);
    jx_tls_dialer_destroy(&second);
    jx_tls_dialer_destroy(&dialer);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_addresses),       cmocka_unit_test(private_ipc_requires_0700),
        cmocka_unit_test(heartbeat_options_set), cmocka_unit_test(frontend_startup_checks),
        cmocka_unit_test(dialer_startup_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
