/* gwtest_link.c — a raw adapter-to-gateway link, receipt checks, journal reads.
 *
 * gwt_link is what an adapter is made of minus all its care: a TLS dialer
 * with an agency's certificate and a DEALER that sends exactly the frames
 * the test gives it (docs/protocol.md). It lets tests submit bytes no
 * adapter would produce (random bytes, flipped signatures, forged headers,
 * the same envelope twice) and read the gateway's answers frame by frame.
 */
#include "gwtest.h"

#include "journal.h"
#include "justx/v1/journal.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

struct gwt_link {
    gwt_env *env;
    char agency[JX_AGENCY_ID_MAX];
    char dir[400];
    jx_tls_dialer *dialer;
    jx_signer *signer;
    void *zmq;
    void *dealer;
    gwt_log *log;
};

gwt_link *gwt_link_dial(gwt_env *env, const char *agency, const char *name)
{
    gwt_link *self = calloc(1, sizeof *self);
    GWT_CHECK(self != NULL);
    self->env = env;
    snprintf(self->agency, sizeof self->agency, "%s", agency);
    char links[320];
    snprintf(links, sizeof links, "%s/links", env->dir);
    mkdir(links, 0700);
    snprintf(self->dir, sizeof self->dir, "%s/%s", links, name ? name : agency);
    GWT_CHECK(mkdir(self->dir, 0700) == 0);
    self->log = gwt_log_new(name ? name : agency);
    char endpoint[480], gateway[64], cert[128], key[128];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/dialer.ipc", self->dir);
    snprintf(gateway, sizeof gateway, "127.0.0.1:%d", env->port);
    snprintf(cert, sizeof cert, "%s.pem", agency);
    snprintf(key, sizeof key, "%s.key", agency);
    jx_tls_dialer_config config = {
        .local_endpoint = endpoint,
        .gateway = gateway,
        .gateway_name = "localhost",
        .ca_file = gwt_pki(env, "ca.pem"),
        .cert_file = gwt_pki(env, cert),
        .key_file = gwt_pki(env, key),
        .backoff_min_ms = 50,
        .backoff_max_ms = 500,
        .log = gwt_log_line,
        .log_arg = self->log,
    };
    jx_error err;
    self->dialer = jx_tls_dialer_new(&config, &err);
    if (self->dialer == NULL)
        gwt_fail(__FILE__, __LINE__, "dialer for %s: %s", agency, err.message);
    self->signer = gwt_signer(env, agency);
    self->zmq = zmq_ctx_new();
    self->dealer = zmq_socket(self->zmq, ZMQ_DEALER);
    int linger = 0, reconnect = 50, hwm = 100000;
    zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->dealer, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
    zmq_setsockopt(self->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    GWT_CHECK(jx_transport_set_heartbeat(self->dealer, JX_TRANSPORT_HEARTBEAT_DEFAULT_MS, &err) ==
              0);
    GWT_CHECK(zmq_connect(self->dealer, endpoint) == 0);
    return self;
}

gwt_link *gwt_link_new(gwt_env *env, const char *agency, const char *name)
{
    gwt_link *self = gwt_link_dial(env, agency, name);
    int64_t deadline = gwt_monotonic_ms() + 20000;
    while (jx_tls_dialer_get_state(self->dialer, NULL) != JX_TLS_DIALER_CONNECTED) {
        if (gwt_monotonic_ms() > deadline) {
            gwt_log_dump(self->log);
            gwt_fail(__FILE__, __LINE__, "raw link of %s not CONNECTED within 20 s", agency);
        }
        gwt_sleep_ms(10);
    }
    return self;
}

gwt_log *gwt_link_log(gwt_link *self)
{
    return self->log;
}

void gwt_link_destroy(gwt_link **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gwt_link *self = *self_p;
    if (self->dealer)
        zmq_close(self->dealer);
    if (self->zmq)
        zmq_ctx_term(self->zmq);
    jx_tls_dialer_destroy(&self->dialer);
    jx_signer_destroy(&self->signer);
    gwt_log_destroy(&self->log);
    free(self);
    *self_p = NULL;
}

jx_tls_dialer_state gwt_link_state(gwt_link *self)
{
    return jx_tls_dialer_get_state(self->dialer, NULL);
}

void gwt_link_send(gwt_link *self, const char *command, const void *body, size_t len)
{
    GWT_CHECK(zmq_send(self->dealer, command, strlen(command), body ? ZMQ_SNDMORE : 0) ==
              (int)strlen(command));
    if (body)
        GWT_CHECK(zmq_send(self->dealer, body, len, 0) == (int)len);
}

void gwt_frame_release(gwt_frame *frame)
{
    free(frame->body);
    memset(frame, 0, sizeof *frame);
}

int gwt_link_next(gwt_link *self, int timeout_ms, gwt_frame *out)
{
    memset(out, 0, sizeof *out);
    zmq_pollitem_t item = {.socket = self->dealer, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) != 1)
        return 0;
    int part = 0, more = 1;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        GWT_CHECK(zmq_msg_recv(&frame, self->dealer, 0) >= 0);
        size_t len = zmq_msg_size(&frame);
        if (part == 0) {
            snprintf(out->command, sizeof out->command, "%.*s",
                     (int)(len < sizeof out->command ? len : sizeof out->command - 1),
                     (const char *)zmq_msg_data(&frame));
        } else if (part == 1) {
            out->body = malloc(len ? len : 1);
            GWT_CHECK(out->body != NULL);
            memcpy(out->body, zmq_msg_data(&frame), len);
            out->body_len = len;
        } else if (part == 2) {
            snprintf(out->extra, sizeof out->extra, "%.*s",
                     (int)(len < sizeof out->extra ? len : sizeof out->extra - 1),
                     (const char *)zmq_msg_data(&frame));
        }
        more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        part++;
    }
    return 1;
}

int gwt_link_receipt(gwt_link *self, int timeout_ms, jx_checked_receipt *out, int *skipped)
{
    int64_t deadline = gwt_monotonic_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - gwt_monotonic_ms();
        if (left <= 0)
            return 0;
        gwt_frame frame;
        if (!gwt_link_next(self, (int)left, &frame))
            return 0;
        if (strcmp(frame.command, "RECEIPT") != 0) {
            if (skipped)
                (*skipped)++;
            gwt_frame_release(&frame);
            continue;
        }
        jx_error err;
        if (gwt_receipt_check(self->env, frame.body, frame.body_len, out, &err) != 0)
            gwt_fail(__FILE__, __LINE__, "a receipt to %s does not verify: %s (%s)", self->agency,
                     err.message, jx_error_code_name(err.code));
        if (frame.extra[0]) { /* a queued receipt: tell the gateway it arrived */
            GWT_CHECK(zmq_send(self->dealer, "RECEIPT-OK", 10, ZMQ_SNDMORE) == 10);
            GWT_CHECK(zmq_send(self->dealer, frame.extra, strlen(frame.extra), 0) ==
                      (int)strlen(frame.extra));
        }
        gwt_frame_release(&frame);
        return 1;
    }
}

void gwt_link_ack(gwt_link *self, const uint8_t (*digests)[32], size_t count)
{
    ProtobufCBinaryData items[64];
    GWT_CHECK(count <= 64);
    for (size_t i = 0; i < count; i++) {
        items[i].data = (uint8_t *)digests[i];
        items[i].len = 32;
    }
    Justx__V1__Ack ack = JUSTX__V1__ACK__INIT;
    ack.n_header_sha256 = count;
    ack.header_sha256 = items;
    ack.received_at_ms = jx_now_ms();
    size_t payload_len = justx__v1__ack__get_packed_size(&ack);
    uint8_t *payload = malloc(payload_len + 1);
    GWT_CHECK(payload != NULL);
    justx__v1__ack__pack(&ack, payload);
    jx_seal_params params = {.type = "justx.v1.Ack"};
    uint8_t *envelope = NULL;
    size_t envelope_len = 0;
    char id[JX_MESSAGE_ID_MAX];
    jx_error err;
    if (jx_envelope_seal(self->signer, &params, payload, payload_len, &envelope, &envelope_len, id,
                         &err) != 0)
        gwt_fail(__FILE__, __LINE__, "sealing an Ack: %s", err.message);
    gwt_link_send(self, "ACK", envelope, envelope_len);
    free(envelope);
    free(payload);
}

/* ---- receipts and the journal ------------------------------------------------------- */

int gwt_receipt_check(gwt_env *env, const uint8_t *bytes, size_t len, jx_checked_receipt *out,
                      jx_error *err)
{
    return jx_receipt_check(bytes, len, env->gateway_key, env->origin, NULL, out, err);
}

uint64_t gwt_journal_scan(gwt_env *env, gwt_record_fn each, void *arg)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/journal", env->state);
    jx_journal_options options = {.read_only = true, .temporary_dir = env->dir};
    jx_error err;
    jx_journal *journal = jx_journal_open(dir, &options, NULL, &err);
    if (journal == NULL)
        gwt_fail(__FILE__, __LINE__, "cannot open the journal %s: %s", dir, err.message);
    uint64_t size = jx_journal_size(journal);
    for (uint64_t i = 0; i < size; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (jx_journal_read(journal, i, &bytes, &len, &err) != 0)
            gwt_fail(__FILE__, __LINE__, "journal record %llu: %s", (unsigned long long)i,
                     err.message);
        Justx__V1__JournalRecord *record = justx__v1__journal_record__unpack(NULL, len, bytes);
        free(bytes);
        GWT_CHECK(record != NULL);
        int stop = each ? each(arg, i, record) : 0;
        justx__v1__journal_record__free_unpacked(record, NULL);
        if (stop)
            break;
    }
    jx_journal_destroy(&journal);
    return size;
}

typedef struct {
    int event;
    const char *message_id;
    const char *recipient;
    int count;
} count_context;

static int count_record(void *arg, uint64_t index, const Justx__V1__JournalRecord *record)
{
    (void)index;
    count_context *context = arg;
    if ((int)record->event == context->event &&
        (context->message_id == NULL || strcmp(record->message_id, context->message_id) == 0) &&
        (context->recipient == NULL || strcmp(record->recipient, context->recipient) == 0))
        context->count++;
    return 0;
}

int gwt_journal_count(gwt_env *env, int event, const char *message_id, const char *recipient)
{
    count_context context = {event, message_id, recipient, 0};
    gwt_journal_scan(env, count_record, &context);
    return context.count;
}
