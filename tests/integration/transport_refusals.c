/* transport_refusals.c — the front end refuses what it must, and says why.
 *
 * An independent TLS client, `openssl s_client`, connects to a real front
 * end (dev PKI, CRL loaded, TLS 1.3 required, a real ROUTER behind it) with
 * no certificate, a foreign CA's, an expired, a revoked and a SAN-less one,
 * and over TLS 1.2; and over a valid link it sends a ZMTP 2.0 greeting and a
 * CURVE greeting. Raw TCP clients check the handshake timeout and the
 * connection limit. Each case asserts the front end's log line and its
 * reason. A positive control (good certificate, valid ZMTP) shows that the
 * same client invocation does get through, so the refusals mean something.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transport_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef JX_OPENSSL_COMMAND
#define JX_OPENSSL_COMMAND "openssl"
#endif

enum { WAIT_MS = 10000 };

static gateway_side gateway;
static void *zctx;

static int setup(void **state)
{
    (void)state;
    zctx = zmq_ctx_new();
    gateway_options opt = {.with_crl = true, .handshake_timeout_ms = 1000};
    gateway_start(&gateway, zctx, &opt);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gateway_stop(&gateway);
    zmq_ctx_term(zctx);
    return 0;
}

/* Runs s_client in the background with stdin from `input` (a file path or
 * NULL for /dev/null). cert: an agency name from the PKI or NULL. */
typedef struct {
    pid_t pid;
    char output[64];
} client;

static void client_start(client *c, const char *cert, const char *input, bool tls12)
{
    snprintf(c->output, sizeof c->output, "/tmp/jx-sclient-XXXXXX");
    int out = mkstemp(c->output);
    assert_true(out >= 0);
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%d", gateway.port);
    char cert_path[512], key_path[512];
    const char *argv[24];
    int n = 0;
    argv[n++] = JX_OPENSSL_COMMAND;
    argv[n++] = "s_client";
    argv[n++] = "-connect";
    argv[n++] = connect;
    argv[n++] = "-servername";
    argv[n++] = "localhost";
    argv[n++] = "-CAfile";
    argv[n++] = pki_path("ca.pem");
    argv[n++] = "-verify_return_error";
    argv[n++] = "-ign_eof"; /* stay until the server closes: it must be the one to refuse */
    if (tls12)
        argv[n++] = "-tls1_2";
    if (cert) {
        snprintf(cert_path, sizeof cert_path, "%s/%s.pem", JX_PKI_DIR, cert);
        snprintf(key_path, sizeof key_path, "%s/%s.key", JX_PKI_DIR, cert);
        argv[n++] = "-cert";
        argv[n++] = cert_path;
        argv[n++] = "-key";
        argv[n++] = key_path;
    }
    argv[n] = NULL;
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int in = open(input ? input : "/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out);
}

/* Waits for s_client to exit (the server closed); kills it after timeout_ms.
 * Returns true when it exited by itself. */
static bool client_finish(client *c, int timeout_ms)
{
    int status;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            unlink(c->output);
            return true;
        }
        sleep_ms(10);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &status, 0);
    unlink(c->output);
    return false;
}

static void client_dump(const client *c)
{
    FILE *f = fopen(c->output, "r");
    if (f == NULL)
        return;
    char line[512];
    fprintf(stderr, "---- s_client output ----\n");
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* One refusal: s_client with cert (and input), then exactly one more log line
 * "event=refused reason=<reason>" mentioning every extra word, and the server
 * closes the connection. */
static void expect_refusal(const char *cert, const char *input, bool tls12, const char *reason,
                           const char *word)
{
    char reason_key[64];
    snprintf(reason_key, sizeof reason_key, "reason=%s ", reason);
    const char *words[] = {"event=refused", reason_key, "peer=127.0.0.1:", word, NULL};
    int before = log_count(&gateway.log, words);
    client c;
    client_start(&c, cert, input, tls12);
    bool logged = log_wait(&gateway.log, before + 1, WAIT_MS, words);
    if (!logged) {
        client_dump(&c);
        log_dump(&gateway.log);
    }
    bool closed_by_server = client_finish(&c, WAIT_MS);
    if (!logged)
        fail_msg("no \"event=refused reason=%s\" line mentioning \"%s\"", reason, word ? word : "");
    assert_true(closed_by_server);
    const char *connected[] = {"event=connected", NULL};
    assert_int_equal(log_count(&gateway.log, connected), 0);
}

static void write_file(char path[64], const void *data, size_t len)
{
    snprintf(path, 64, "/tmp/jx-zmtp-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static size_t zmtp3_greeting(uint8_t *out, const char *mechanism)
{
    memset(out, 0, 64);
    out[0] = 0xff;
    out[8] = 0x01;
    out[9] = 0x7f;
    out[10] = 3;
    out[11] = 1;
    memcpy(out + 12, mechanism, strlen(mechanism));
    return 64;
}

static void no_client_certificate(void **state)
{
    (void)state;
    expect_refusal(NULL, NULL, false, "NO_CLIENT_CERTIFICATE", "no certificate");
}

static void foreign_ca(void **state)
{
    (void)state;
    expect_refusal("FOREIGN-AGENCY", NULL, false, "UNTRUSTED_CERTIFICATE", "FOREIGN-AGENCY");
}

static void expired(void **state)
{
    (void)state;
    expect_refusal("TEST-EXPIRED", NULL, false, "CERTIFICATE_EXPIRED", "TEST-EXPIRED");
}

static void revoked(void **state)
{
    (void)state;
    expect_refusal("TEST-REVOKED", NULL, false, "CERTIFICATE_REVOKED", "revoked");
}

static void no_agency_san(void **state)
{
    (void)state;
    expect_refusal("TEST-NOSAN", NULL, false, "NO_AGENCY_IDENTITY", "TEST-NOSAN");
}

static void tls12_when_13_required(void **state)
{
    (void)state;
    expect_refusal("KG-PROBATION", NULL, true, "TLS_VERSION", "TLS version");
}

/* ZMTP 2.0 (libzmq 3.x): signature, revision 0x01, socket type. */
static void zmtp20_greeting(void **state)
{
    (void)state;
    const uint8_t greeting[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0x01, 0x05, 0x00, 0x00};
    char path[64];
    write_file(path, greeting, sizeof greeting);
    expect_refusal("KG-PROBATION", path, false, "PROTOCOL", "major version 1");
    unlink(path);
}

static void curve_mechanism(void **state)
{
    (void)state;
    uint8_t greeting[64];
    zmtp3_greeting(greeting, "CURVE");
    char path[64];
    write_file(path, greeting, sizeof greeting);
    expect_refusal("KG-PROBATION", path, false, "PROTOCOL", "CURVE");
    unlink(path);
}

/* TLS done, then silence: dropped at the handshake timeout (1 s here). */
static void silent_after_tls(void **state)
{
    (void)state;
    expect_refusal("KG-PRISON", NULL, false, "HANDSHAKE_TIMEOUT", "ZMTP READY");
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* A TCP client that says nothing at all is dropped at the timeout. */
static void silent_tcp_client(void **state)
{
    (void)state;
    const char *words[] = {"event=refused", "reason=HANDSHAKE_TIMEOUT", "TLS handshake", NULL};
    int before = log_count(&gateway.log, words);
    int64_t start = jx_transport_monotonic_ms();
    int fd = tcp_connect(gateway.port);
    char byte;
    assert_int_equal(recv(fd, &byte, 1, 0), 0); /* closed by the server, not timed out */
    int64_t elapsed = jx_transport_monotonic_ms() - start;
    assert_true(elapsed >= 900 && elapsed < 5000);
    close(fd);
    assert_true(log_wait(&gateway.log, before + 1, WAIT_MS, words));
}

/* max_connections = 2 on a second front end: the third is refused at once. */
static void connection_limit(void **state)
{
    (void)state;
    gateway_side small;
    gateway_options opt = {.max_connections = 2, .handshake_timeout_ms = 5000};
    gateway_start(&small, zctx, &opt);
    int a = tcp_connect(small.port);
    int b = tcp_connect(small.port);
    sleep_ms(100);
    int c = tcp_connect(small.port);
    char byte;
    assert_int_equal(recv(c, &byte, 1, 0), 0);
    const char *words[] = {"event=refused", "reason=TOO_MANY_CONNECTIONS", "limit", NULL};
    assert_true(log_wait(&small.log, 1, WAIT_MS, words));
    assert_int_equal(log_count(&small.log, words), 1);
    close(a);
    close(b);
    close(c);
    gateway_stop(&small);
}

/* The control: the same s_client invocation with a good certificate and a
 * valid ZMTP 3.1 greeting and READY is accepted, and the ROUTER sees the
 * certificate's agency. Runs last: the other cases assert no "connected". */
static void positive_control(void **state)
{
    (void)state;
    uint8_t stream[256];
    size_t len = zmtp3_greeting(stream, "NULL");
    const uint8_t ready[] = {0x04, 0x29, 5,   'R', 'E', 'A', 'D', 'Y', 11,  'S', 'o',
                             'c',  'k',  'e', 't', '-', 'T', 'y', 'p', 'e', 0,   0,
                             0,    6,    'D', 'E', 'A', 'L', 'E', 'R', 8,   'I', 'd',
                             'e',  'n',  't', 'i', 't', 'y', 0,   0,   0,   0};
    assert_int_equal(sizeof ready, 2 + 0x29);
    memcpy(stream + len, ready, sizeof ready);
    len += sizeof ready;
    /* One message frame "hi". */
    const uint8_t message[] = {0x00, 0x02, 'h', 'i'};
    memcpy(stream + len, message, sizeof message);
    len += sizeof message;
    char path[64];
    write_file(path, stream, len);
    client c;
    client_start(&c, "KG-PROBATION", path, false);
    const char *words[] = {"event=connected", "agency=KG-PROBATION", NULL};
    bool ok = log_wait(&gateway.log, 1, WAIT_MS, words);
    bool got = ok && wait_readable(gateway.router, WAIT_MS);
    if (!ok || !got) {
        client_dump(&c);
        log_dump(&gateway.log);
    }
    assert_true(ok);
    assert_true(got);
    char rid[256];
    int n = zmq_recv(gateway.router, rid, sizeof rid - 1, 0);
    assert_true(n > 0);
    rid[n] = '\0';
    assert_memory_equal(rid, "KG-PROBATION/", 13);
    char body[16];
    assert_int_equal(zmq_recv(gateway.router, body, sizeof body, 0), 2);
    assert_memory_equal(body, "hi", 2);
    client_finish(&c, 0);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_client_certificate),
        cmocka_unit_test(foreign_ca),
        cmocka_unit_test(expired),
        cmocka_unit_test(revoked),
        cmocka_unit_test(no_agency_san),
        cmocka_unit_test(tls12_when_13_required),
        cmocka_unit_test(zmtp20_greeting),
        cmocka_unit_test(curve_mechanism),
        cmocka_unit_test(silent_after_tls),
        cmocka_unit_test(silent_tcp_client),
        cmocka_unit_test(connection_limit),
        cmocka_unit_test(positive_control),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
