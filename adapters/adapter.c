/* adapter.c — libjustx-adapter: outbox, verified inbox, receipts, one I/O thread.
 *
 * Invariants:
 * - A message is in the outbox (SQLite, synchronous) before jx_adapter_send
 *   returns; it leaves the outbox only when a receipt that verifies against
 *   the gateway's key says ACCEPTED or REJECTED. Everything in the outbox is
 *   sent again after every (re)connect; the gateway answers a duplicate with
 *   the original receipt, so resending is always safe.
 * - A delivered message is acknowledged only after it is in the inbox; the
 *   gateway delivers again whatever was not acknowledged, and the inbox
 *   drops duplicates by (sender, message id), acknowledging them again.
 * - Only the I/O thread touches the ZeroMQ socket; the application thread
 *   wakes it through an eventfd.
 */
#include "adapter.h"

#include "checkpoint.h"
#include "justx/v1/envelope.pb-c.h"
#include "receipt_check.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/sha.h>
#include <signal.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

enum {
    ACK_BATCH_MAX = 32, /* digests per signed Ack: keeps each ACKNOWLEDGED journal record small */
    BURST_MAX = 256,    /* gateway messages stored per store batch (one sync) */
    HELLO_INTERVAL_MS = JX_TRANSPORT_HEARTBEAT_DEFAULT_MS,
    RESEND_IDLE_MS = 15000, /* outbox unanswered this long: send it again */
    SEND_BATCH = 256,
    PATH_LEN = 4096,
};

struct jx_adapter {
    char state_dir[PATH_LEN];
    char *gateway_origin;
    int ack_delay_ms;
    jx_log_fn log;
    void *log_arg;
    jx_adapter_receipt_fn on_receipt;
    void *receipt_arg;

    jx_signer *signer;
    jx_trust *trust;
    EVP_PKEY *gateway_key;
    jx_adapter_store *store;
    jx_tls_dialer *dialer;

    void *zmq;
    void *dealer; /* I/O thread only */
    int wake_fd;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_uint link_generation; /* bumped when the link (re)connects */

    pthread_mutex_t lock; /* with changed: new inbox message or receipt */
    pthread_cond_t changed;

    /* I/O thread state */
    int64_t outbox_sent_through;
    int64_t last_progress_ms;
    uint8_t ack_digests[BURST_MAX * 2][32]; /* stored, not yet acknowledged */
    size_t ack_count;
    int64_t ack_first_ms;
    char receipt_oks[BURST_MAX][24];        /* queued receipts stored, to confirm */
    size_t receipt_ok_count;
    bool stored_something;
    jx_receipt_check_cache receipt_cache;
    uint8_t last_ack_sha256[32]; /* the last recipient Ack whose signature verified */
    char last_ack_signer[JX_AGENCY_ID_MAX];
};

static int64_t monotonic_ms(void)
{
    return jx_transport_monotonic_ms();
}

static void adapter_log(jx_adapter *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void adapter_log(jx_adapter *self, const char *format, ...)
{
    if (self->log == NULL)
        return;
    char line[1024];
    int used = snprintf(line, sizeof line, "agency=%s ", jx_signer_agency(self->signer));
    va_list args;
    va_start(args, format);
    vsnprintf(line + used, sizeof line - (size_t)used, format, args);
    va_end(args);
    self->log(self->log_arg, line);
}

static void notify(jx_adapter *self)
{
    pthread_mutex_lock(&self->lock);
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
}

static void wake(jx_adapter *self)
{
    uint64_t one = 1;
    ssize_t ignored = write(self->wake_fd, &one, sizeof one);
    (void)ignored;
}

/* ---- sending ----------------------------------------------------------- */

static bool send_two(jx_adapter *self, const char *command, const void *body, size_t len)
{
    if (zmq_send(self->dealer, command, strlen(command), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return false;
    return zmq_send(self->dealer, body, len, ZMQ_DONTWAIT) >= 0;
}

static int send_outbox_entry(const jx_adapter_store_outbox_entry *entry, void *arg)
{
    jx_adapter *self = arg;
    if (!send_two(self, "SEND", entry->envelope, entry->envelope_len))
        return 1; /* the socket is full; the rest goes next round */
    self->outbox_sent_through = entry->sequence;
    return 0;
}

static void send_outbox(jx_adapter *self)
{
    jx_error err;
    if (jx_adapter_store_outbox_list(self->store, self->outbox_sent_through, SEND_BATCH,
                                     send_outbox_entry, self, &err) != 0)
        adapter_log(self, "level=error event=outbox_error reason=\"%s\"", err.message);
}

/* Signed Acks, ACK_BATCH_MAX digests each, for every message stored (and
 * committed) since the last flush. */
static void flush_acks(jx_adapter *self)
{
    for (size_t start = 0; start < self->ack_count; start += ACK_BATCH_MAX) {
        size_t count = self->ack_count - start < ACK_BATCH_MAX ? self->ack_count - start
                                                               : ACK_BATCH_MAX;
        ProtobufCBinaryData digests[ACK_BATCH_MAX];
        for (size_t i = 0; i < count; i++) {
            digests[i].data = self->ack_digests[start + i];
            digests[i].len = 32;
        }
        Justx__V1__Ack ack = JUSTX__V1__ACK__INIT;
        ack.n_header_sha256 = count;
        ack.header_sha256 = digests;
        ack.received_at_ms = jx_now_ms();
        uint8_t payload[ACK_BATCH_MAX * 40 + 32];
        size_t payload_len = justx__v1__ack__pack(&ack, payload);
        jx_seal_params params = {.type = "justx.v1.Ack"};
        uint8_t *envelope = NULL;
        size_t envelope_len = 0;
        char id[JX_MESSAGE_ID_MAX];
        jx_error err;
        if (jx_envelope_seal(self->signer, &params, payload, payload_len, &envelope,
                             &envelope_len, id, &err) != 0) {
            adapter_log(self, "level=error event=ack_failed reason=\"%s\"", err.message);
            break;
        }
        /* If the link is down the gateway delivers again and we ack again. */
        send_two(self, "ACK", envelope, envelope_len);
        free(envelope);
    }
    self->ack_count = 0;
}

static void queue_ack(jx_adapter *self, const uint8_t digest[32])
{
    if (self->ack_count == sizeof self->ack_digests / sizeof self->ack_digests[0])
        return; /* not acknowledged now: the gateway offers it again */
    if (self->ack_count == 0)
        self->ack_first_ms = monotonic_ms();
    memcpy(self->ack_digests[self->ack_count++], digest, 32);
}

/* After the store batch is durable: confirm queued receipts to the gateway. */
static void confirm_receipts(jx_adapter *self)
{
    for (size_t i = 0; i < self->receipt_ok_count; i++) {
        zmq_send(self->dealer, "RECEIPT-OK", 10, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(self->dealer, self->receipt_oks[i], strlen(self->receipt_oks[i]),
                 ZMQ_DONTWAIT);
    }
    self->receipt_ok_count = 0;
}

/* ---- receiving ----------------------------------------------------------- */

static bool addressed_to_me(const jx_adapter *self, const Justx__V1__Header *header)
{
    if (header->n_recipients == 0)
        return true; /* the gateway's routes chose the recipients */
    for (size_t i = 0; i < header->n_recipients; i++)
        if (strcmp(header->recipients[i], jx_signer_agency(self->signer)) == 0)
            return true;
    return false;
}

static void handle_deliver(jx_adapter *self, const uint8_t *bytes, size_t len)
{
    jx_error err;
    jx_opened *opened = jx_envelope_open(self->trust, bytes, len, NULL, &err);
    if (opened == NULL) {
        /* Not acknowledged: the gateway offers it again until it expires, and
         * the sender learns EXPIRED. */
        adapter_log(self, "level=error event=delivery_refused code=%s reason=\"%s\"",
                    jx_error_code_name(err.code), err.message);
        return;
    }
    const Justx__V1__Header *header = opened->header;
    if (!addressed_to_me(self, header)) {
        adapter_log(self,
                    "level=error event=delivery_refused code=NOT_A_RECIPIENT sender=%s "
                    "message_id=%s",
                    header->sender, header->message_id);
        jx_opened_destroy(&opened);
        return;
    }
    uint8_t digest[32];
    SHA256(opened->envelope->header.data, opened->envelope->header.len, digest);
    int added = jx_adapter_store_inbox_add(self->store, header->sender, header->message_id, digest,
                                           header->type, header->case_id, bytes, len,
                                           jx_now_ms(), &err);
    if (added < 0) {
        adapter_log(self, "level=error event=inbox_error code=%s reason=\"%s\"",
                    jx_error_code_name(err.code), err.message);
    } else {
        if (added > 0)
            adapter_log(self, "level=info event=received sender=%s message_id=%s type=%s",
                        header->sender, header->message_id, header->type);
        queue_ack(self, digest);
        self->stored_something = true;
    }
    jx_opened_destroy(&opened);
}

static void handle_receipt(jx_adapter *self, const uint8_t *bytes, size_t len,
                           const zmq_msg_t *queue_id)
{
    jx_checked_receipt checked;
    jx_error err;
    if (jx_receipt_check(bytes, len, self->gateway_key, self->gateway_origin,
                         &self->receipt_cache, &checked, &err) != 0) {
        adapter_log(self, "level=error event=receipt_refused code=%s reason=\"%s\"",
                    jx_error_code_name(err.code), err.message);
        return;
    }
    const Justx__V1__Receipt *receipt = checked.receipt;
    const char *status = jx_receipt_status_name(receipt->status);
    if (receipt->status == JUSTX__V1__RECEIPT__STATUS__DELIVERED) {
        /* The recipient's own signature, not the gateway's word. One Ack
         * covers a batch, so the receipts of a batch share one check. */
        uint8_t ack_digest[32];
        const ProtobufCBinaryData *ack_bytes = &checked.record->ack_envelope;
        SHA256(ack_bytes->data, ack_bytes->len, ack_digest);
        bool valid;
        if (memcmp(ack_digest, self->last_ack_sha256, 32) == 0) {
            valid = strcmp(self->last_ack_signer, receipt->recipient) == 0;
        } else {
            jx_opened *ack = jx_envelope_open(self->trust, ack_bytes->data, ack_bytes->len,
                                              NULL, &err);
            valid = ack && strcmp(ack->type->name, "justx.v1.Ack") == 0 &&
                    strcmp(ack->signer->agency, receipt->recipient) == 0;
            if (valid) {
                memcpy(self->last_ack_sha256, ack_digest, 32);
                snprintf(self->last_ack_signer, sizeof self->last_ack_signer, "%s",
                         ack->signer->agency);
            }
            jx_opened_destroy(&ack);
        }
        if (!valid) {
            adapter_log(self,
                        "level=error event=receipt_refused code=BAD_ACK message_id=%s "
                        "detail=\"the DELIVERED receipt does not carry %s's signed Ack\"",
                        receipt->message_id, receipt->recipient);
            jx_checked_receipt_release(&checked);
            return;
        }
    }
    int64_t now = jx_now_ms();
    if (jx_adapter_store_receipt_add(self->store, receipt->message_id, status, receipt->recipient,
                                     receipt->reason_code, receipt->reason,
                                     receipt->journal_index, bytes, len, now, &err) < 0) {
        adapter_log(self, "level=error event=store_error reason=\"%s\"", err.message);
        jx_checked_receipt_release(&checked);
        return;
    }
    if ((receipt->status == JUSTX__V1__RECEIPT__STATUS__ACCEPTED ||
         receipt->status == JUSTX__V1__RECEIPT__STATUS__REJECTED) &&
        receipt->message_id[0] != '\0')
        jx_adapter_store_outbox_remove(self->store, receipt->message_id, &err);
    self->last_progress_ms = monotonic_ms();
    if (receipt->status == JUSTX__V1__RECEIPT__STATUS__REJECTED)
        adapter_log(self, "level=warning event=rejected message_id=%s code=%s reason=\"%s\"",
                    receipt->message_id, receipt->reason_code, receipt->reason);
    else
        adapter_log(self, "level=info event=receipt message_id=%s status=%s recipient=%s",
                    receipt->message_id, status, receipt->recipient);
    size_t id_len = queue_id ? zmq_msg_size((zmq_msg_t *)queue_id) : 0;
    if (id_len > 0 && id_len < sizeof self->receipt_oks[0] &&
        self->receipt_ok_count < BURST_MAX) {
        memcpy(self->receipt_oks[self->receipt_ok_count], zmq_msg_data((zmq_msg_t *)queue_id),
               id_len);
        self->receipt_oks[self->receipt_ok_count++][id_len] = '\0';
    }
    if (self->on_receipt) {
        jx_adapter_store_receipt view = {
            .message_id = receipt->message_id,
            .status = (char *)status,
            .recipient = receipt->recipient,
            .reason_code = receipt->reason_code,
            .reason = receipt->reason,
            .journal_index = receipt->journal_index,
            .receipt = (uint8_t *)bytes,
            .receipt_len = len,
            .received_at_ms = now,
        };
        self->on_receipt(self->receipt_arg, &view);
    }
    jx_checked_receipt_release(&checked);
    self->stored_something = true;
}

static void handle_gateway_message(jx_adapter *self)
{
    zmq_msg_t frames[3];
    int count = 0, more = 1;
    while (more) {
        zmq_msg_t extra;
        zmq_msg_t *frame = count < 3 ? &frames[count] : &extra;
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, self->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(frame);
            break;
        }
        more = zmq_msg_more(frame);
        if (frame == &extra)
            zmq_msg_close(frame);
        else
            count++;
    }
    if (count >= 2) {
        size_t command_len = zmq_msg_size(&frames[0]);
        const char *command = zmq_msg_data(&frames[0]);
        const uint8_t *body = zmq_msg_data(&frames[1]);
        size_t body_len = zmq_msg_size(&frames[1]);
        if (command_len == 7 && memcmp(command, "DELIVER", 7) == 0)
            handle_deliver(self, body, body_len);
        else if (command_len == 7 && memcmp(command, "RECEIPT", 7) == 0)
            handle_receipt(self, body, body_len, count == 3 ? &frames[2] : NULL);
        else
            adapter_log(self, "level=warning event=protocol_error detail=\"unknown command\"");
    }
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
}

/* ---- the I/O thread ------------------------------------------------------ */

/* Stores what the gateway sent, up to BURST_MAX messages, in one store batch
 * (one sync); only once that is durable are the messages acknowledged and
 * the receipts confirmed. If the batch fails, nothing is acknowledged and the
 * gateway sends it all again. */
static void receive_burst(jx_adapter *self)
{
    jx_error err;
    size_t acks_before = self->ack_count;
    if (jx_adapter_store_batch_begin(self->store, &err) != 0) {
        adapter_log(self, "level=error event=store_error reason=\"%s\"", err.message);
        return;
    }
    for (int i = 0; i < BURST_MAX; i++) {
        int events = 0;
        size_t size = sizeof events;
        zmq_getsockopt(self->dealer, ZMQ_EVENTS, &events, &size);
        if (!(events & ZMQ_POLLIN))
            break;
        handle_gateway_message(self);
    }
    if (jx_adapter_store_batch_commit(self->store, &err) != 0) {
        adapter_log(self, "level=error event=store_error reason=\"%s\"", err.message);
        self->ack_count = acks_before;
        self->receipt_ok_count = 0;
        return;
    }
    confirm_receipts(self);
    if (self->stored_something) {
        self->stored_something = false;
        notify(self);
    }
}

static void *io_thread(void *arg)
{
    jx_adapter *self = arg;
    unsigned seen_generation = 0;
    int64_t last_hello = 0;
    self->last_progress_ms = monotonic_ms();
    while (!atomic_load(&self->stop)) {
        int64_t now = monotonic_ms();
        unsigned generation = atomic_load(&self->link_generation);
        if (generation != seen_generation) {
            /* a new link: announce ourselves and offer the whole outbox again */
            seen_generation = generation;
            self->outbox_sent_through = 0;
            last_hello = 0;
        }
        /* Nothing is sent before the first link is up: what libzmq queued
         * meanwhile would go out, and then the whole outbox again. */
        if (generation > 0) {
            if (now - last_hello >= HELLO_INTERVAL_MS) {
                zmq_send(self->dealer, "HELLO", 5, ZMQ_DONTWAIT);
                last_hello = now;
            }
            if (now - self->last_progress_ms >= RESEND_IDLE_MS) {
                self->outbox_sent_through = 0;
                self->last_progress_ms = now;
            }
            send_outbox(self);
        }

        int timeout = 100;
        if (self->ack_count > 0) {
            int64_t due = self->ack_first_ms + self->ack_delay_ms - now;
            timeout = due <= 0 ? 0 : (int)due;
        }
        zmq_pollitem_t items[] = {
            {self->dealer, 0, ZMQ_POLLIN, 0},
            {NULL, self->wake_fd, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, 2, timeout) < 0 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t value;
            ssize_t ignored = read(self->wake_fd, &value, sizeof value);
            (void)ignored;
        }
        if (items[0].revents & ZMQ_POLLIN)
            receive_burst(self);
        if (self->ack_count >= ACK_BATCH_MAX ||
            (self->ack_count > 0 && monotonic_ms() - self->ack_first_ms >= self->ack_delay_ms))
            flush_acks(self);
    }
    flush_acks(self);
    return NULL;
}

static void on_link_state(void *arg, jx_tls_dialer_state state, const jx_error *last_error)
{
    jx_adapter *self = arg;
    adapter_log(self, "level=info event=link state=%s%s%s%s", jx_tls_dialer_state_name(state),
                last_error && last_error->code ? " reason=\"" : "",
                last_error && last_error->code ? last_error->message : "",
                last_error && last_error->code ? "\"" : "");
    if (state == JX_TLS_DIALER_CONNECTED) {
        atomic_fetch_add(&self->link_generation, 1);
        wake(self);
    }
}

/* ---- life cycle ------------------------------------------------------------ */

/* Each adapter process on a state directory has its own dialer socket,
 * run/dialer-<pid>.ipc; a process killed with SIGKILL leaves its socket
 * file behind. Those whose process is gone are removed. */
static void remove_stale_sockets(const char *run_dir)
{
    DIR *listing = opendir(run_dir);
    if (listing == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(listing)) != NULL) {
        int pid = 0;
        char rest[8] = "";
        if (sscanf(entry->d_name, "dialer-%d%7s", &pid, rest) != 2 || strcmp(rest, ".ipc") != 0 ||
            pid <= 0 || pid == (int)getpid())
            continue;
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            char path[PATH_LEN + 300];
            if (snprintf(path, sizeof path, "%s/%s", run_dir, entry->d_name) < (int)sizeof path)
                unlink(path);
        }
    }
    closedir(listing);
}

jx_adapter *jx_adapter_new(const jx_adapter_config *config, jx_error *err)
{
    jx_adapter *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory starting an adapter");
        return NULL;
    }
    self->wake_fd = -1;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->changed, NULL);
    self->log = config->log;
    self->log_arg = config->log_arg;
    self->on_receipt = config->on_receipt;
    self->receipt_arg = config->receipt_arg;
    self->ack_delay_ms = config->ack_delay_ms > 0 ? config->ack_delay_ms : 5;
    self->gateway_origin = strdup(config->gateway_origin ? config->gateway_origin : "");
    char path[PATH_LEN + 64];
    if (strlen(config->state_dir) > PATH_LEN - 64) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "state directory path is too long");
        goto failed;
    }
    snprintf(self->state_dir, sizeof self->state_dir, "%s", config->state_dir);

    self->signer = jx_signer_new(config->cert_file, config->key_file, err);
    if (self->signer == NULL)
        goto failed;
    if (jx_signer_agency(self->signer)[0] == '\0') {
        jx_error_set(err, JX_ERR_NO_AGENCY_IDENTITY,
                     "certificate %s carries no agency identity (urn:justx:agency:<ID>)",
                     config->cert_file);
        goto failed;
    }
    self->trust = jx_trust_new(config->ca_file, err);
    if (self->trust == NULL)
        goto failed;
    for (size_t i = 0; i < config->n_crl_files; i++)
        if (jx_trust_add_crl(self->trust, config->crl_files[i], err) != 0)
            goto failed;
    self->gateway_key = jx_checkpoint_load_public_key(config->gateway_cert, err);
    if (self->gateway_key == NULL)
        goto failed;

    if (jx_transport_private_dir(self->state_dir, err) != 0)
        goto failed;
    snprintf(path, sizeof path, "%s/run", self->state_dir);
    if (jx_transport_private_dir(path, err) != 0)
        goto failed;
    remove_stale_sockets(path);
    snprintf(path, sizeof path, "%s/adapter.db", self->state_dir);
    self->store = jx_adapter_store_new(path, err);
    if (self->store == NULL)
        goto failed;

    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    char endpoint[PATH_LEN + 64];
    /* One endpoint per process: a daemon and a CLI may share a state_dir, and
     * a dialer replaces (and on exit removes) a socket file of the same name. */
    snprintf(endpoint, sizeof endpoint, "ipc://%s/run/dialer-%d.ipc", self->state_dir,
             (int)getpid());
    jx_tls_dialer_config dialer = {
        .local_endpoint = endpoint,
        .gateway = config->gateway,
        .gateway_name = config->gateway_name,
        .ca_file = config->ca_file,
        .cert_file = config->cert_file,
        .key_file = config->key_file,
        .log = config->log,
        .log_arg = config->log_arg,
        .on_state = on_link_state,
        .state_arg = self,
    };
    self->dialer = jx_tls_dialer_new(&dialer, err);
    if (self->dialer == NULL)
        goto failed;

    self->zmq = zmq_ctx_new();
    self->dealer = zmq_socket(self->zmq, ZMQ_DEALER);
    int linger = 0, hwm = 100000;
    zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (jx_transport_set_heartbeat(self->dealer, JX_TRANSPORT_HEARTBEAT_DEFAULT_MS, err) != 0)
        goto failed;
    if (zmq_connect(self->dealer, endpoint) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        goto failed;
    }
    if (pthread_create(&self->thread, NULL, io_thread, self) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "cannot start the adapter's I/O thread");
        goto failed;
    }
    self->thread_started = true;
    return self;

failed:
    jx_adapter_destroy(&self);
    return NULL;
}

void jx_adapter_destroy(jx_adapter **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_adapter *self = *self_p;
    if (self->thread_started) {
        atomic_store(&self->stop, true);
        wake(self);
        pthread_join(self->thread, NULL);
    }
    if (self->dealer) {
        /* give the last Acks a moment to leave; unsent ones only delay the
         * sender's DELIVERED (the gateway offers the messages again) */
        int linger = 500;
        zmq_setsockopt(self->dealer, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(self->dealer);
    }
    if (self->zmq)
        zmq_ctx_term(self->zmq);
    jx_tls_dialer_destroy(&self->dialer);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    jx_adapter_store_destroy(&self->store);
    EVP_PKEY_free(self->gateway_key);
    jx_trust_destroy(&self->trust);
    jx_signer_destroy(&self->signer);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->changed);
    free(self->gateway_origin);
    free(self);
    *self_p = NULL;
}

const char *jx_adapter_agency(const jx_adapter *self)
{
    return jx_signer_agency(self->signer);
}

jx_adapter_store *jx_adapter_get_store(jx_adapter *self)
{
    return self->store;
}

jx_tls_dialer_state jx_adapter_link_state(jx_adapter *self, jx_error *last_error)
{
    return jx_tls_dialer_get_state(self->dialer, last_error);
}

int jx_adapter_send_many(jx_adapter *self, jx_adapter_outgoing *messages, size_t count,
                         jx_error *err)
{
    typedef struct {
        uint8_t *envelope;
        char recipients[JX_RECIPIENTS_MAX * JX_AGENCY_ID_MAX];
    } sealed;
    sealed *seals = calloc(count ? count : 1, sizeof *seals);
    jx_adapter_store_new_message *rows = calloc(count ? count : 1, sizeof *rows);
    int rc = -1;
    if (seals == NULL || rows == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory sealing %zu messages", count);
        goto done;
    }
    int64_t now = jx_now_ms();
    for (size_t i = 0; i < count; i++) {
        const jx_seal_params *params = &messages[i].params;
        size_t envelope_len = 0;
        if (jx_envelope_seal(self->signer, params, messages[i].payload, messages[i].payload_len,
                             &seals[i].envelope, &envelope_len, messages[i].message_id,
                             err) != 0)
            goto done;
        size_t used = 0;
        for (size_t k = 0; k < params->recipient_count; k++)
            used += (size_t)snprintf(seals[i].recipients + used, sizeof seals[i].recipients - used,
                                     "%s%s", k ? "," : "", params->recipients[k]);
        rows[i] = (jx_adapter_store_new_message){
            .message_id = messages[i].message_id,
            .type = params->type,
            .case_id = params->case_id ? params->case_id : "",
            .recipients = seals[i].recipients,
            .envelope = seals[i].envelope,
            .envelope_len = envelope_len,
            .created_at_ms = now,
        };
    }
    if (jx_adapter_store_outbox_add_many(self->store, rows, count, err) != 0)
        goto done;
    wake(self);
    rc = 0;
done:
    for (size_t i = 0; seals && i < count; i++)
        free(seals[i].envelope);
    free(seals);
    free(rows);
    return rc;
}

int jx_adapter_send(jx_adapter *self, const jx_seal_params *params, const uint8_t *payload,
                    size_t payload_len, char message_id[JX_MESSAGE_ID_MAX], jx_error *err)
{
    jx_adapter_outgoing message = {.params = *params, .payload = payload,
                                   .payload_len = payload_len};
    if (jx_adapter_send_many(self, &message, 1, err) != 0)
        return -1;
    memcpy(message_id, message.message_id, JX_MESSAGE_ID_MAX);
    return 0;
}

int jx_adapter_submit(jx_adapter *self, const uint8_t *envelope, size_t envelope_len,
                      char message_id[JX_MESSAGE_ID_MAX], jx_error *err)
{
    if (envelope_len > JX_ENVELOPE_MAX_DEFAULT)
        return jx_error_set(err, JX_ERR_TOO_LARGE, "the envelope has %zu bytes; the limit is %d",
                            envelope_len, JX_ENVELOPE_MAX_DEFAULT);
    Justx__V1__Envelope *decoded = justx__v1__envelope__unpack(NULL, envelope_len, envelope);
    Justx__V1__Header *header =
        decoded ? justx__v1__header__unpack(NULL, decoded->header.len, decoded->header.data)
                : NULL;
    int rc = -1;
    if (header == NULL || !jx_message_id_is_valid(header->message_id)) {
        jx_error_set(err, JX_ERR_MALFORMED_ENVELOPE,
                     "the %zu bytes are not an envelope with a message id", envelope_len);
        goto done;
    }
    memcpy(message_id, header->message_id, JX_MESSAGE_ID_MAX);
    jx_adapter_store_new_message row = {
        .message_id = header->message_id,
        .type = header->type[0] ? header->type : "unknown",
        .case_id = header->case_id,
        .recipients = "",
        .envelope = envelope,
        .envelope_len = envelope_len,
        .created_at_ms = jx_now_ms(),
    };
    if (jx_adapter_store_outbox_add_many(self->store, &row, 1, err) != 0)
        goto done;
    wake(self);
    rc = 0;
done:
    if (header)
        justx__v1__header__free_unpacked(header, NULL);
    if (decoded)
        justx__v1__envelope__free_unpacked(decoded, NULL);
    return rc;
}

/* Waits on the condition until deadline (monotonic ms; -1 forever). */
static bool wait_until(jx_adapter *self, int64_t deadline)
{
    pthread_mutex_lock(&self->lock);
    bool timed_out = false;
    if (deadline < 0) {
        pthread_cond_wait(&self->changed, &self->lock);
    } else {
        int64_t left = deadline - monotonic_ms();
        if (left <= 0) {
            timed_out = true;
        } else {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t total = (int64_t)until.tv_nsec + (left > 200 ? 200 : left) * 1000000;
            until.tv_sec += total / 1000000000;
            until.tv_nsec = total % 1000000000;
            pthread_cond_timedwait(&self->changed, &self->lock, &until);
        }
    }
    pthread_mutex_unlock(&self->lock);
    return !timed_out;
}

void jx_adapter_message_destroy(jx_adapter_message **message_p)
{
    if (message_p == NULL || *message_p == NULL)
        return;
    jx_opened_destroy(&(*message_p)->opened);
    free((*message_p)->envelope);
    free(*message_p);
    *message_p = NULL;
}

int jx_adapter_receive(jx_adapter *self, int timeout_ms, jx_adapter_message **message,
                       jx_error *err)
{
    return jx_adapter_receive_after(self, 0, timeout_ms, message, err);
}

int jx_adapter_receive_after(jx_adapter *self, int64_t after, int timeout_ms,
                             jx_adapter_message **message, jx_error *err)
{
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    *message = NULL;
    for (;;) {
        jx_adapter_store_inbox_entry *entry = NULL;
        int found = jx_adapter_store_inbox_next_unconsumed(self->store, after, &entry, err);
        if (found < 0)
            return -1;
        if (found > 0) {
            /* Verified when it arrived and kept in this adapter's private
             * store since: decoded and checked again, but its signature is
             * not verified a second time. */
            jx_adapter_message *out = calloc(1, sizeof *out);
            if (out == NULL) {
                jx_adapter_store_inbox_entry_destroy(&entry);
                return jx_error_set(err, JX_ERR_SYSTEM, "out of memory receiving a message");
            }
            out->sequence = entry->sequence;
            out->received_at_ms = entry->received_at_ms;
            out->envelope = entry->envelope;
            out->envelope_len = entry->envelope_len;
            entry->envelope = NULL;
            jx_adapter_store_inbox_entry_destroy(&entry);
            jx_open_params params = {.now_ms = out->received_at_ms};
            out->opened = jx_envelope_open_stored(self->trust, out->envelope,
                                                  out->envelope_len, &params, err);
            if (out->opened == NULL) {
                jx_adapter_message_destroy(&out);
                return -1;
            }
            *message = out;
            return 1;
        }
        if (timeout_ms == 0 || !wait_until(self, deadline))
            return 0;
    }
}

int jx_adapter_consume(jx_adapter *self, const char *sender, const char *message_id,
                       jx_error *err)
{
    return jx_adapter_store_inbox_consume(self->store, sender, message_id, jx_now_ms(), err);
}

int jx_adapter_receipts(jx_adapter *self, int64_t since, size_t limit,
                        jx_adapter_store_receipt_fn *each, void *arg, jx_error *err)
{
    return jx_adapter_store_receipts_list(self->store, since, limit, each, arg, err);
}

typedef struct {
    const char *status;
    const char *recipient;
    bool found;
} receipt_match;

static int match_receipt(const jx_adapter_store_receipt *receipt, void *arg)
{
    receipt_match *match = arg;
    if (strcmp(receipt->status, match->status) == 0 &&
        (match->recipient == NULL || strcmp(receipt->recipient, match->recipient) == 0))
        match->found = true;
    return 0;
}

int jx_adapter_wait_receipt(jx_adapter *self, const char *message_id, const char *status,
                            const char *recipient, int timeout_ms, jx_error *err)
{
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    for (;;) {
        receipt_match match = {status, recipient, false};
        if (jx_adapter_store_receipts_for(self->store, message_id, match_receipt, &match, err) !=
            0)
            return -1;
        if (match.found)
            return 1;
        if (!wait_until(self, deadline))
            return 0;
    }
}
