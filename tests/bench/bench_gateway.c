/* bench_gateway.c — end to end through a real gateway: several agencies send
 * signed 2 KiB messages, the gateway accepts each only after its group commit
 * is on disk, delivers it, the recipients verify, store and acknowledge it.
 *
 * Prints messages per second end to end, latency from sealing to the
 * recipient's application (p50, p99), the gateway's CPU time per message
 * (from /proc, user + system, all its threads) next to the cost of one ECDSA
 * P-256 verification measured in the same run, and the adapters' CPU.
 *
 * usage: bench_gateway GATEWAY_BINARY PKI_DIR CONF_TEMPLATE [MESSAGES] [BATCH] [WINDOW]
 *
 * WINDOW (default 1000) bounds the deliveries outstanding at once: large for
 * throughput, 1 with BATCH 1 for the latency of a lone message.
 *
 * The gateway runs as its own process on a free loopback port; the five
 * agency adapters (libjustx-adapter) run as threads of this process.
 */
#include "adapter.h"
#include "justx/v1/documents.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { AGENCIES = 5, FLOWS = 4 };

static const char *const agencies[AGENCIES] = {"KG-COURT-BISHKEK", "KG-PROSECUTOR",
                                               "KG-PROBATION", "KG-PRISON", "LV-PROBATION"};

/* Who sends what to whom; the routes of conf/gateway.conf carry these. */
static const struct {
    int sender;
    const char *type;
    int recipients;
} flows[FLOWS] = {
    {1, "justx.v1.ProbationReferral", 1},   /* prosecutor -> probation */
    {0, "justx.v1.SentenceOrder", 2},       /* court -> probation, prison */
    {2, "justx.v1.RiskNeedsAssessment", 2}, /* probation -> prosecutor, court */
    {4, "justx.v1.StatusUpdate", 1},        /* Latvia -> probation */
};

static jx_adapter *adapters[AGENCIES];
static atomic_long deliveries_expected, deliveries_seen;
static long total_messages, batch_size, window;
static int64_t *latencies; /* ms, one per delivery */
static atomic_long latency_count;
static atomic_bool stopping;

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void die(const char *what, const jx_error *err)
{
    fprintf(stderr, "bench_gateway: %s: %s: %s\n", what, err ? jx_error_code_name(err->code) : "",
            err ? err->message : strerror(errno));
    exit(1);
}

/* About 2 KiB of document: identity, case number and a 1.7 KiB attachment. */
static uint8_t *payload_for(const char *type, size_t *len)
{
    static uint8_t filler[1700];
    memset(filler, 'J', sizeof filler);
    static Justx__V1__Person person = JUSTX__V1__PERSON__INIT;
    person.family_name = "Asanov";
    person.given_names = "Bakyt";
    person.date_of_birth = "1990-04-12";
    person.personal_id = "21204199000123";
    static Justx__V1__Attachment attachment = JUSTX__V1__ATTACHMENT__INIT;
    attachment.file_name = "case-file.txt";
    attachment.content_type = "text/plain";
    attachment.content.data = filler;
    attachment.content.len = sizeof filler;
    static Justx__V1__Attachment *attachments[] = {&attachment};
    ProtobufCMessage *message;
    Justx__V1__ProbationReferral referral = JUSTX__V1__PROBATION_REFERRAL__INIT;
    Justx__V1__SentenceOrder order = JUSTX__V1__SENTENCE_ORDER__INIT;
    Justx__V1__RiskNeedsAssessment assessment = JUSTX__V1__RISK_NEEDS_ASSESSMENT__INIT;
    Justx__V1__StatusUpdate update = JUSTX__V1__STATUS_UPDATE__INIT;
    if (strcmp(type, "justx.v1.ProbationReferral") == 0) {
        referral.person = &person, referral.case_number = "PR-77/26";
        referral.n_attachments = 1, referral.attachments = attachments;
        message = &referral.base;
    } else if (strcmp(type, "justx.v1.SentenceOrder") == 0) {
        order.person = &person, order.case_number = "UD-1234/26";
        order.n_attachments = 1, order.attachments = attachments;
        message = &order.base;
    } else if (strcmp(type, "justx.v1.RiskNeedsAssessment") == 0) {
        assessment.person = &person, assessment.case_number = "PR-77/26";
        assessment.n_attachments = 1, assessment.attachments = attachments;
        message = &assessment.base;
    } else {
        update.person = &person, update.case_number = "LV-9/26";
        update.n_attachments = 1, update.attachments = attachments;
        message = &update.base;
    }
    *len = protobuf_c_message_get_packed_size(message);
    uint8_t *bytes = malloc(*len);
    protobuf_c_message_pack(message, bytes);
    return bytes;
}

static void *sender_thread(void *arg)
{
    int flow = (int)(intptr_t)arg;
    jx_adapter *adapter = adapters[flows[flow].sender];
    size_t payload_len;
    uint8_t *payload = payload_for(flows[flow].type, &payload_len);
    long share = total_messages / FLOWS;
    jx_adapter_outgoing *batch = calloc((size_t)batch_size, sizeof *batch);
    for (long sent = 0; sent < share && !atomic_load(&stopping);) {
        /* Flow control: at most WINDOW deliveries outstanding overall. */
        while (atomic_load(&deliveries_expected) - atomic_load(&deliveries_seen) >= window)
            usleep(200);
        long count = share - sent < batch_size ? share - sent : batch_size;
        for (long i = 0; i < count; i++) {
            batch[i].params = (jx_seal_params){.type = flows[flow].type, .case_id = "BENCH"};
            batch[i].payload = payload;
            batch[i].payload_len = payload_len;
        }
        atomic_fetch_add(&deliveries_expected, count * flows[flow].recipients);
        jx_error err;
        if (jx_adapter_send_many(adapter, batch, (size_t)count, &err) != 0)
            die("send", &err);
        sent += count;
    }
    free(batch);
    free(payload);
    return NULL;
}

typedef struct {
    char sender[JX_AGENCY_ID_MAX];
    char message_id[JX_MESSAGE_ID_MAX];
} taken;

/* Takes what arrived, records latency, consumes it in one store batch. */
static void *receiver_thread(void *arg)
{
    jx_adapter *adapter = adapters[(intptr_t)arg];
    taken *batch = calloc((size_t)batch_size, sizeof *batch);
    int64_t after = 0;
    while (!atomic_load(&stopping)) {
        long count = 0;
        jx_adapter_message *message = NULL;
        jx_error err;
        while (count < batch_size) {
            int got = jx_adapter_receive_after(adapter, after, count ? 0 : 100, &message, &err);
            if (got < 0)
                die("receive", &err);
            if (got == 0)
                break;
            after = message->sequence;
            long slot = atomic_fetch_add(&latency_count, 1);
            if (slot < total_messages * 2)
                latencies[slot] = jx_now_ms() - message->opened->header->created_at_ms;
            snprintf(batch[count].sender, JX_AGENCY_ID_MAX, "%s", message->opened->header->sender);
            snprintf(batch[count].message_id, JX_MESSAGE_ID_MAX, "%s",
                     message->opened->header->message_id);
            count++;
            jx_adapter_message_destroy(&message);
        }
        if (count == 0)
            continue;
        jx_adapter_store *store = jx_adapter_get_store(adapter);
        if (jx_adapter_store_batch_begin(store, &err) != 0)
            die("consume", &err);
        for (long i = 0; i < count; i++)
            if (jx_adapter_consume(adapter, batch[i].sender, batch[i].message_id, &err) < 0)
                die("consume", &err);
        if (jx_adapter_store_batch_commit(store, &err) != 0)
            die("consume", &err);
        atomic_fetch_add(&deliveries_seen, count);
    }
    free(batch);
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &size) != 0)
        die("free port", NULL);
    close(fd);
    return ntohs(address.sin_port);
}

/* The example configuration with a free port and quiet logging. */
static void write_config(const char *template_path, const char *dir, int port)
{
    FILE *in = fopen(template_path, "r");
    if (in == NULL)
        die(template_path, NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/gateway.conf", dir);
    FILE *out = fopen(path, "w");
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        if (strstr(line, "listen = \"127.0.0.1:7443\""))
            fprintf(out, "  listen = \"127.0.0.1:%d\";\n", port);
        else if (strstr(line, "log_level = "))
            fprintf(out, "  log_level = \"warning\";\n");
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
}

static double process_cpu_seconds(pid_t pid)
{
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL || fgets(text, sizeof text, file) == NULL)
        die("reading /proc", NULL);
    fclose(file);
    const char *fields = strrchr(text, ')') + 2; /* field 3 onwards */
    unsigned long utime = 0, stime = 0;
    sscanf(fields, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* One ECDSA P-256 verification, the way the gateway does it: over a header
 * of the same size, with the key of a certificate. Microseconds. */
static double verify_cost_us(const char *pki)
{
    char cert[600];
    snprintf(cert, sizeof cert, "%s/KG-COURT-BISHKEK.pem", pki);
    char key[600];
    snprintf(key, sizeof key, "%s/KG-COURT-BISHKEK.key", pki);
    jx_error err;
    jx_signer *signer = jx_signer_new(cert, key, &err);
    if (signer == NULL)
        die("signer", &err);
    uint8_t data[230], signature[JX_SIGNATURE_MAX];
    memset(data, 7, sizeof data);
    size_t signature_len;
    jx_signer_sign(signer, NULL, 0, data, sizeof data, signature, &signature_len, &err);
    long count = 0;
    double start = now_seconds(), elapsed;
    do {
        for (int i = 0; i < 100; i++)
            if (jx_signature_verify(jx_signer_public_key(signer), NULL, 0, data, sizeof data,
                                    signature, signature_len, &err) != 0)
                die("verify", &err);
        count += 100;
        elapsed = now_seconds() - start;
    } while (elapsed < 1.0);
    jx_signer_destroy(&signer);
    return elapsed * 1e6 / (double)count;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_gateway GATEWAY_BINARY PKI_DIR CONF_TEMPLATE [MESSAGES] "
                        "[BATCH] [WINDOW]\n");
        return 2;
    }
    const char *gateway = argv[1], *pki = argv[2], *template_path = argv[3];
    total_messages = argc > 4 ? atol(argv[4]) : 20000;
    batch_size = argc > 5 ? atol(argv[5]) : 64;
    window = argc > 6 ? atol(argv[6]) : 1000;
    total_messages -= total_messages % FLOWS;
    latencies = calloc((size_t)total_messages * 2, sizeof *latencies);

    char dir[] = "/tmp/jx-bench-XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", NULL);
    char link_path[600];
    snprintf(link_path, sizeof link_path, "%s/pki", dir);
    char absolute_pki[4096];
    if (realpath(pki, absolute_pki) == NULL || symlink(absolute_pki, link_path) != 0)
        die("pki link", NULL);
    int port = free_port();
    write_config(template_path, dir, port);

    double verify_us = verify_cost_us(pki);

    char conf[600], log_path[600];
    snprintf(conf, sizeof conf, "%s/gateway.conf", dir);
    snprintf(log_path, sizeof log_path, "%s/gateway.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log_path, "w", stderr);
        execl(gateway, gateway, "-c", conf, (char *)NULL);
        _exit(127);
    }
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", port);
    for (int i = 0; i < 100; i++) { /* wait for the listener */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&to, sizeof to) == 0;
        close(fd);
        if (ok)
            break;
        usleep(50000);
    }

    char gateway_cert[600], ca[600], crl[600];
    snprintf(gateway_cert, sizeof gateway_cert, "%s/gateway.pem", pki);
    snprintf(ca, sizeof ca, "%s/ca.pem", pki);
    snprintf(crl, sizeof crl, "%s/crl.pem", pki);
    const char *crls[] = {crl};
    for (int i = 0; i < AGENCIES; i++) {
        char state[700], cert[600], key[600];
        snprintf(state, sizeof state, "%s/%s", dir, agencies[i]);
        snprintf(cert, sizeof cert, "%s/%s.pem", pki, agencies[i]);
        snprintf(key, sizeof key, "%s/%s.key", pki, agencies[i]);
        jx_adapter_config config = {
            .state_dir = state, .gateway = address, .gateway_cert = gateway_cert,
            .gateway_origin = "justx.demo/gateway", .ca_file = ca, .crl_files = crls,
            .n_crl_files = 1, .cert_file = cert, .key_file = key,
        };
        jx_error err;
        adapters[i] = jx_adapter_new(&config, &err);
        if (adapters[i] == NULL)
            die("adapter", &err);
    }
    sleep(1); /* links up */

    double gateway_cpu_before = process_cpu_seconds(pid);
    double self_cpu_before = self_cpu_seconds();
    double start = now_seconds();
    pthread_t senders[FLOWS], receivers[AGENCIES];
    for (int i = 0; i < AGENCIES; i++)
        pthread_create(&receivers[i], NULL, receiver_thread, (void *)(intptr_t)i);
    for (int i = 0; i < FLOWS; i++)
        pthread_create(&senders[i], NULL, sender_thread, (void *)(intptr_t)i);
    for (int i = 0; i < FLOWS; i++)
        pthread_join(senders[i], NULL);
    long expected = atomic_load(&deliveries_expected);
    double deadline = now_seconds() + 120;
    while (atomic_load(&deliveries_seen) < expected && now_seconds() < deadline)
        usleep(2000);
    double elapsed = now_seconds() - start;
    double gateway_cpu = process_cpu_seconds(pid) - gateway_cpu_before;
    double self_cpu = self_cpu_seconds() - self_cpu_before;
    long seen = atomic_load(&deliveries_seen);
    atomic_store(&stopping, true);
    for (int i = 0; i < AGENCIES; i++)
        pthread_join(receivers[i], NULL);

    long samples = atomic_load(&latency_count);
    if (samples > total_messages * 2)
        samples = total_messages * 2;
    qsort(latencies, (size_t)samples, sizeof *latencies, compare_int64);
    double gateway_us = gateway_cpu * 1e6 / (double)total_messages;
    printf("messages        %ld sent (2 KiB documents, 4 senders, 4 recipients, batches of %ld, "
           "at most %ld deliveries outstanding), %ld deliveries expected, %ld received\n",
           total_messages, batch_size, window, expected, seen);
    printf("throughput      %.0f messages/s end to end (%.0f deliveries/s), %.2f s\n",
           (double)total_messages / elapsed, (double)seen / elapsed, elapsed);
    printf("latency         p50 %lld ms, p99 %lld ms (sealed by the sender -> in the recipient's "
           "application)\n",
           samples ? (long long)latencies[samples / 2] : -1,
           samples ? (long long)latencies[samples * 99 / 100] : -1);
    printf("gateway CPU     %.1f us per message (user+system, all threads); one ECDSA P-256 "
           "verify here: %.1f us; ratio %.2f\n",
           gateway_us, verify_us, gateway_us / verify_us);
    printf("adapters CPU    %.1f us per message (5 adapters in the benchmark process: seal, "
           "outbox, verify, inbox, acks)\n",
           self_cpu * 1e6 / (double)total_messages);

    for (int i = 0; i < AGENCIES; i++)
        jx_adapter_destroy(&adapters[i]);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    free(latencies);
    if (getenv("JX_BENCH_KEEP") == NULL) {
        char command[700];
        snprintf(command, sizeof command, "rm -rf '%s'", dir);
        if (system(command) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return seen == expected ? 0 : 1;
}
