/* broker.c — the gateway's main loop: ingress, group commit, delivery, receipts.
 *
 * One thread owns the ROUTER socket, the journal and the spool. Messages are
 * taken off the socket as long as some are waiting (up to the group-commit
 * limit); each is checked, journaled (written, not yet synced) and spooled
 * (inside one SQLite transaction). Then the batch is committed:
 *
 *   1. journal fdatasync        — the audit record of every decision is durable
 *   2. spool COMMIT (fsync)     — accepted messages and owed receipts are durable
 *   3. checkpoint signed        — one Ed25519 signature for the whole batch
 *   4. receipts sent            — ACCEPTED / REJECTED / duplicates, each with
 *                                 its record and inclusion proof
 *   5. deliveries pumped        — to every recipient connected now
 *
 * Nothing is answered before 1 and 2, so a receipt always describes durable
 * state; a crash between 1 and 2 leaves an ACCEPTED record whose sender got
 * no receipt and will send again (the record then appears twice in the
 * journal, the message is delivered once).
 *
 * Delivery: per recipient agency, the connection that most recently said
 * HELLO receives. Pending messages go out in acceptance order, at most
 * DELIVERY_WINDOW unacknowledged at a time. Without progress for the retry
 * delay (doubling up to limits.retry_max_ms) everything unacknowledged is
 * sent again from the oldest; the adapter de-duplicates.
 */
#include "broker.h"

#include "checkpoint.h"
#include "ingress.h"
#include "journal.h"
#include "justx/v1/envelope.pb-c.h"
#include "receipt.h"
#include "routes.h"
#include "spool.h"
#include "tls_frontend.h"
#include "zmtp.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

enum {
    ROUTING_ID_MAX = 256,
    DELIVERY_WINDOW = 512,
    HELLO_TIMEOUT_MS = 3 * JX_TRANSPORT_HEARTBEAT_DEFAULT_MS + 1000,
    EXPIRY_SCAN_MS = 1000,
    ACK_DIGESTS_MAX = 1024,
    PATH_MAX_LEN = 4096,
};

/* A connected adapter, known by the routing id the front end gave it. */
typedef struct {
    uint8_t id[ROUTING_ID_MAX];
    size_t id_len;
    char agency[JX_AGENCY_ID_MAX];
    int64_t connected_ms;
    int64_t last_hello_ms;
} connection;

/* Delivery state of one recipient agency. */
typedef struct {
    char agency[JX_AGENCY_ID_MAX];
    connection *active;         /* NULL: nobody to deliver to */
    int64_t sent_through;       /* highest spool seq sent on the active connection */
    int in_flight;              /* sent and not yet acknowledged (approximate) */
    int64_t retry_delay_ms;
    int64_t retry_at_ms;        /* resend everything unacknowledged at this time */
    int64_t receipts_sent_through; /* highest queued-receipt id sent on active */
    bool wants_pump;
} agency_state;

/* A receipt to send once the batch is durable. */
typedef struct {
    uint8_t routing_id[ROUTING_ID_MAX];
    size_t routing_id_len;
    uint64_t journal_index;
} reply;

typedef struct {
    uint64_t accepted, rejected, duplicates, acknowledged, expired, delivered_sends;
} counters;

struct jx_broker {
    jx_gateway_config *config;
    jx_log_fn log;
    void *log_arg;
    char run_dir[PATH_MAX_LEN];

    jx_trust *trust;
    jx_journal *journal;
    jx_spool *spool;
    EVP_PKEY *checkpoint_key;
    jx_tls_frontend *frontend;
    jx_trust *frontend_trust;

    void *zmq;
    void *router;
    void *control;

    connection **connections; /* sorted by routing id */
    size_t n_connections;
    agency_state *agencies;   /* sorted by agency id */
    size_t n_agencies;

    /* the batch being built */
    bool in_batch;
    int64_t batch_opened_ms; /* monotonic */
    size_t batch_events;     /* frames handled since the batch opened */
    reply *replies;
    size_t n_replies, cap_replies;
    size_t batch_messages;

    /* the newest checkpoint, which receipts point to */
    char *note;
    size_t note_len;
    uint64_t note_size;
    uint64_t persisted_size;
    int64_t persisted_at_ms;

    uint8_t (*certificates)[32]; /* journaled signer certificates, sorted */
    size_t n_certificates, cap_certificates;

    int64_t next_expiry_scan_ms;
    counters totals;
    int64_t started_ms;
};

/* ---- logging ---------------------------------------------------------- */

static void broker_log(jx_broker *self, jx_gateway_log_level level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void broker_log(jx_broker *self, jx_gateway_log_level level, const char *format, ...)
{
    if (self->log == NULL || level < self->config->log_level)
        return;
    char line[2048];
    int used = snprintf(line, sizeof line, "level=%s ", jx_gateway_log_level_name(level));
    va_list args;
    va_start(args, format);
    vsnprintf(line + used, sizeof line - (size_t)used, format, args);
    va_end(args);
    self->log(self->log_arg, line);
}

/* ---- connections and agencies ------------------------------------------ */

static int compare_connection(const void *key, const void *element)
{
    const connection *a = key, *b = *(connection *const *)element;
    size_t shorter = a->id_len < b->id_len ? a->id_len : b->id_len;
    int order = memcmp(a->id, b->id, shorter);
    return order ? order : (a->id_len > b->id_len) - (a->id_len < b->id_len);
}

static connection *find_connection(jx_broker *self, const uint8_t *id, size_t id_len)
{
    connection key;
    /* bsearch with a NULL array is undefined even for zero elements. */
    if (id_len > ROUTING_ID_MAX || self->n_connections == 0)
        return NULL;
    memcpy(key.id, id, id_len);
    key.id_len = id_len;
    connection **found = bsearch(&key, self->connections, self->n_connections,
                                 sizeof *self->connections, compare_connection);
    return found ? *found : NULL;
}

static agency_state *find_agency(jx_broker *self, const char *agency)
{
    size_t low = 0, high = self->n_agencies;
    while (low < high) {
        size_t middle = (low + high) / 2;
        int order = strcmp(agency, self->agencies[middle].agency);
        if (order == 0)
            return &self->agencies[middle];
        if (order < 0)
            high = middle;
        else
            low = middle + 1;
    }
    return NULL;
}

/* Agency states exist for every configured agency; a reload adds new ones
 * and keeps the state of those that stay. */
static int sync_agencies(jx_broker *self)
{
    for (size_t i = 0; i < self->config->n_agencies; i++) {
        const char *id = self->config->agencies[i].id;
        if (find_agency(self, id))
            continue;
        agency_state *grown =
            realloc(self->agencies, (self->n_agencies + 1) * sizeof *self->agencies);
        if (grown == NULL)
            return -1;
        self->agencies = grown;
        size_t at = 0;
        while (at < self->n_agencies && strcmp(self->agencies[at].agency, id) < 0)
            at++;
        memmove(&self->agencies[at + 1], &self->agencies[at],
                (self->n_agencies - at) * sizeof *self->agencies);
        memset(&self->agencies[at], 0, sizeof *self->agencies);
        snprintf(self->agencies[at].agency, JX_AGENCY_ID_MAX, "%s", id);
        self->agencies[at].retry_delay_ms = self->config->limits.retry_initial_ms;
        self->n_agencies++;
        /* active pointers stay valid: they point at connections, not states */
    }
    return 0;
}

static void format_routing_id(const connection *peer, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)peer->id_len, (const char *)peer->id);
}

/* Makes peer the connection deliveries go to, starting over from the oldest
 * unacknowledged message. */
static void activate(jx_broker *self, agency_state *state, connection *peer)
{
    if (state->active != peer) {
        char name[ROUTING_ID_MAX + 1];
        format_routing_id(peer, name, sizeof name);
        broker_log(self, JX_GATEWAY_LOG_INFO, "event=delivering_to agency=%s routing_id=%s",
                   state->agency, name);
    }
    state->active = peer;
    state->sent_through = 0;
    state->in_flight = 0;
    state->receipts_sent_through = 0;
    state->retry_delay_ms = self->config->limits.retry_initial_ms;
    state->retry_at_ms = 0;
    state->wants_pump = true;
}

static connection *add_connection(jx_broker *self, const uint8_t *id, size_t id_len,
                                  const char *agency, int64_t now)
{
    connection *peer = calloc(1, sizeof *peer);
    connection **grown =
        realloc(self->connections, (self->n_connections + 1) * sizeof *self->connections);
    if (peer == NULL || grown == NULL) {
        free(peer);
        if (grown)
            self->connections = grown;
        return NULL;
    }
    self->connections = grown;
    memcpy(peer->id, id, id_len);
    peer->id_len = id_len;
    snprintf(peer->agency, sizeof peer->agency, "%s", agency);
    peer->connected_ms = now;
    size_t at = 0;
    while (at < self->n_connections && compare_connection(peer, &self->connections[at]) > 0)
        at++;
    memmove(&self->connections[at + 1], &self->connections[at],
            (self->n_connections - at) * sizeof *self->connections);
    self->connections[at] = peer;
    self->n_connections++;
    return peer;
}

/* Forgets a connection that went away; its agency falls back to the other
 * connection that said HELLO most recently, if any. */
static void drop_connection(jx_broker *self, connection *peer, const char *why)
{
    char name[ROUTING_ID_MAX + 1];
    format_routing_id(peer, name, sizeof name);
    broker_log(self, JX_GATEWAY_LOG_INFO, "event=adapter_gone routing_id=%s reason=%s", name, why);
    agency_state *state = find_agency(self, peer->agency);
    size_t at = 0;
    while (at < self->n_connections && self->connections[at] != peer)
        at++;
    if (at < self->n_connections) {
        memmove(&self->connections[at], &self->connections[at + 1],
                (self->n_connections - at - 1) * sizeof *self->connections);
        self->n_connections--;
    }
    if (state && state->active == peer) {
        connection *best = NULL;
        for (size_t i = 0; i < self->n_connections; i++)
            if (strcmp(self->connections[i]->agency, peer->agency) == 0 &&
                (best == NULL || self->connections[i]->last_hello_ms > best->last_hello_ms))
                best = self->connections[i];
        state->active = NULL;
        if (best)
            activate(self, state, best);
    }
    free(peer);
}

/* ---- sending ------------------------------------------------------------ */

/* Sends frames to a routing id; false when the peer is gone (the ROUTER is
 * in mandatory mode, so an unknown peer is an error, not a silent drop). */
static bool send_frames(jx_broker *self, const uint8_t *id, size_t id_len, const char *command,
                        const void *body, size_t body_len, const char *extra)
{
    if (zmq_send(self->router, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return false;
    int more = body || extra ? ZMQ_SNDMORE : 0;
    if (zmq_send(self->router, command, strlen(command), more | ZMQ_DONTWAIT) < 0)
        return false;
    if (body && zmq_send(self->router, body, body_len, (extra ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) <
                    0)
        return false;
    if (extra && zmq_send(self->router, extra, strlen(extra), ZMQ_DONTWAIT) < 0)
        return false;
    return true;
}

static int send_receipt(jx_broker *self, const uint8_t *id, size_t id_len, uint64_t index,
                        const char *queue_id, jx_error *err)
{
    jx_receipt_checkpoint checkpoint = {self->note, self->note_len, self->note_size};
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (jx_receipt_build(self->journal, index, &checkpoint, &bytes, &len, err) != 0)
        return -1;
    bool sent = send_frames(self, id, id_len, "RECEIPT", bytes, len, queue_id);
    free(bytes);
    return sent ? 0 : 1;
}

/* ---- the batch ------------------------------------------------------------ */

static int batch_begin(jx_broker *self, jx_error *err)
{
    if (self->in_batch)
        return 0;
    if (jx_spool_begin(self->spool, err) != 0)
        return -1;
    self->in_batch = true;
    self->batch_opened_ms = jx_transport_monotonic_ms();
    self->batch_events = 0;
    self->n_replies = 0;
    self->batch_messages = 0;
    return 0;
}

static int add_reply(jx_broker *self, const uint8_t *id, size_t id_len, uint64_t index)
{
    if (self->n_replies == self->cap_replies) {
        size_t capacity = self->cap_replies ? self->cap_replies * 2 : 64;
        reply *grown = realloc(self->replies, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        self->replies = grown;
        self->cap_replies = capacity;
    }
    reply *r = &self->replies[self->n_replies++];
    memcpy(r->routing_id, id, id_len);
    r->routing_id_len = id_len;
    r->journal_index = index;
    return 0;
}

static int journal_one(jx_broker *self, const jx_journal_entry *entry, uint64_t *index,
                       jx_error *err)
{
    return jx_journal_append_nosync(self->journal, entry, 1, index, err);
}

/* Signs a checkpoint of everything durable: persisted in the journal's
 * checkpoint file every N records or T ms, otherwise only handed out in
 * receipts (it stays verifiable against the journal). */
static int refresh_checkpoint(jx_broker *self, int64_t now, jx_error *err)
{
    uint64_t size = jx_journal_durable_size(self->journal);
    if (size == self->note_size && self->note)
        return 0;
    const jx_gateway_config *config = self->config;
    bool persist = size - self->persisted_size >= (uint64_t)config->journal.checkpoint_every_records ||
                   now - self->persisted_at_ms >= config->journal.checkpoint_every_ms;
    char *note = NULL;
    size_t note_len = 0;
    if (persist) {
        if (jx_journal_checkpoint(self->journal, self->checkpoint_key, config->id, now, &note,
                                  &note_len, err) != 0)
            return -1;
        self->persisted_size = size;
        self->persisted_at_ms = now;
    } else {
        uint8_t root[JX_HASH_SIZE];
        if (jx_journal_root(self->journal, size, root, err) != 0)
            return -1;
        note = jx_checkpoint_sign(config->id, size, root, now, self->checkpoint_key, &note_len,
                                  err);
        if (note == NULL)
            return -1;
    }
    free(self->note);
    self->note = note;
    self->note_len = note_len;
    self->note_size = size;
    return 0;
}

static void pump_all(jx_broker *self, int64_t now);

static int batch_commit(jx_broker *self, int64_t now, jx_error *err)
{
    if (!self->in_batch)
        return 0;
    if (jx_journal_sync(self->journal, err) != 0)
        return -1;
    if (jx_spool_commit(self->spool, err) != 0)
        return -1;
    self->in_batch = false;
    if (refresh_checkpoint(self, now, err) != 0)
        return -1;
    for (size_t i = 0; i < self->n_replies; i++) {
        const reply *r = &self->replies[i];
        jx_error receipt_err;
        if (send_receipt(self, r->routing_id, r->routing_id_len, r->journal_index, NULL,
                         &receipt_err) < 0)
            broker_log(self, JX_GATEWAY_LOG_ERROR, "event=receipt_failed index=%llu reason=%s",
                       (unsigned long long)r->journal_index, receipt_err.message);
    }
    self->n_replies = 0;
    pump_all(self, now);
    return 0;
}

/* ---- certificates ------------------------------------------------------------ */

static int compare_fingerprint(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int remember_certificate(void *arg, const uint8_t sha256[32])
{
    jx_broker *self = arg;
    if (self->n_certificates == self->cap_certificates) {
        size_t capacity = self->cap_certificates ? self->cap_certificates * 2 : 64;
        void *grown = realloc(self->certificates, capacity * 32);
        if (grown == NULL)
            return -1;
        self->certificates = grown;
        self->cap_certificates = capacity;
    }
    size_t at = self->n_certificates;
    while (at > 0 && memcmp(self->certificates[at - 1], sha256, 32) > 0)
        at--;
    memmove(self->certificates[at + 1], self->certificates[at], (self->n_certificates - at) * 32);
    memcpy(self->certificates[at], sha256, 32);
    self->n_certificates++;
    return 0;
}

/* Journals a signer certificate the first time a record relies on it, so an
 * auditor can check every signature from the journal alone. */
static int journal_certificate_once(jx_broker *self, const jx_opened *opened, int64_t now,
                                    jx_error *err)
{
    const uint8_t *fingerprint = opened->signer->fingerprint;
    if (self->n_certificates &&
        bsearch(fingerprint, self->certificates, self->n_certificates, 32, compare_fingerprint))
        return 0;
    jx_journal_entry entry = {
        .event = JX_EVENT_CERTIFICATE,
        .time_ms = now,
        .sender = opened->signer->agency,
        .signer_cert_sha256 = fingerprint,
        .certificate = opened->envelope->signer_cert.data,
        .certificate_len = opened->envelope->signer_cert.len,
    };
    uint64_t index;
    if (journal_one(self, &entry, &index, err) != 0 ||
        jx_spool_add_certificate(self->spool, fingerprint, err) != 0)
        return -1;
    if (remember_certificate(self, fingerprint) != 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory remembering a certificate");
    return 0;
}

/* ---- SEND ------------------------------------------------------------------- */

static int handle_send(jx_broker *self, connection *peer, const uint8_t *bytes, size_t len,
                       int64_t now, jx_error *err)
{
    jx_ingress ingress = {self->trust, self->config, self->spool};
    jx_ingress_result result;
    jx_ingress_check(&ingress, peer->agency, bytes, len, now, &result);
    int rc = -1;
    uint64_t index = 0;
    const char **recipients = NULL;
    if (batch_begin(self, err) != 0)
        goto done;

    if (result.verdict == JX_INGRESS_DUPLICATE) {
        self->totals.duplicates++;
        broker_log(self, JX_GATEWAY_LOG_INFO,
                   "event=duplicate sender=%s message_id=%s original_index=%llu", peer->agency,
                   result.message_id, (unsigned long long)result.original_index);
        if (add_reply(self, peer->id, peer->id_len, result.original_index) != 0)
            goto out_of_memory;
        rc = 0;
        goto done;
    }
    if (result.verdict == JX_INGRESS_REJECT) {
        self->totals.rejected++;
        const char *code = jx_error_code_name(result.error.code);
        jx_journal_entry entry = {
            .event = JX_EVENT_REJECTED,
            .time_ms = now,
            .message_id = result.message_id,
            .sender = peer->agency,
            .type = result.type,
            .case_id = result.case_id,
            .reason_code = code,
            .reason = result.error.message,
        };
        if (journal_one(self, &entry, &index, err) != 0)
            goto done;
        broker_log(self, JX_GATEWAY_LOG_WARNING,
                   "event=rejected sender=%s message_id=%s code=%s reason=\"%s\" index=%llu",
                   peer->agency, result.message_id[0] ? result.message_id : "-", code,
                   result.error.message, (unsigned long long)index);
        if (add_reply(self, peer->id, peer->id_len, index) != 0)
            goto out_of_memory;
        rc = 0;
        goto done;
    }

    /* ACCEPT */
    const jx_opened *opened = result.opened;
    const Justx__V1__Header *header = opened->header;
    /* every recipient the routes gave: a fan-out is never cut short */
    size_t n_recipients = result.routes.count;
    recipients = malloc((n_recipients ? n_recipients : 1) * sizeof *recipients);
    if (recipients == NULL)
        goto out_of_memory;
    for (size_t i = 0; i < n_recipients; i++)
        recipients[i] = result.routes.recipients[i].agency;
    if (journal_certificate_once(self, opened, now, err) != 0)
        goto done;
    jx_journal_entry entry = {
        .event = JX_EVENT_ACCEPTED,
        .time_ms = now,
        .message_id = header->message_id,
        .sender = header->sender,
        .type = header->type,
        .case_id = header->case_id,
        .header = opened->envelope->header.data,
        .header_len = opened->envelope->header.len,
        .signature = opened->envelope->signature.data,
        .signature_len = opened->envelope->signature.len,
        .payload_sha256 = header->payload_sha256.data,
        .signer_cert_sha256 = opened->signer->fingerprint,
        .recipients = recipients,
        .recipients_count = n_recipients,
    };
    if (journal_one(self, &entry, &index, err) != 0)
        goto done;
    jx_spool_message message = {
        .sender = header->sender,
        .message_id = header->message_id,
        .type = header->type,
        .case_id = header->case_id,
        .journal_index = index,
        .accepted_at_ms = now,
        .expires_at_ms = result.expires_at_ms,
        .envelope = bytes,
        .envelope_len = len,
    };
    memcpy(message.header_sha256, result.header_sha256, 32);
    if (jx_spool_add(self->spool, &message, recipients, n_recipients, err) != 0)
        goto done;
    self->totals.accepted++;
    for (size_t i = 0; i < n_recipients; i++) {
        agency_state *state = find_agency(self, recipients[i]);
        if (state)
            state->wants_pump = true;
    }
    if (self->config->log_level <= JX_GATEWAY_LOG_INFO) {
        char list[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < n_recipients && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? "," : "",
                                     recipients[i]);
        broker_log(self, JX_GATEWAY_LOG_INFO,
                   "event=accepted sender=%s message_id=%s type=%s case_id=\"%s\" to=%s "
                   "route=\"%s\" index=%llu",
                   header->sender, header->message_id, header->type, header->case_id, list,
                   n_recipients ? result.routes.recipients[0].route_label : "",
                   (unsigned long long)index);
    }
    if (add_reply(self, peer->id, peer->id_len, index) != 0)
        goto out_of_memory;
    self->batch_messages++;
    rc = 0;
    goto done;

out_of_memory:
    jx_error_set(err, JX_ERR_SYSTEM, "out of memory answering a message");
done:
    free(recipients);
    jx_ingress_result_release(&result);
    return rc;
}

/* ---- ACK ------------------------------------------------------------------------ */

/* A recipient's signed Ack: every message it names is finished for that
 * recipient, journaled as ACKNOWLEDGED with the whole signed Ack, and its
 * sender is owed a DELIVERED receipt. A bad Ack is logged and ignored: the
 * messages stay pending and are offered again. */
static int handle_ack(jx_broker *self, connection *peer, const uint8_t *bytes, size_t len,
                      int64_t now, jx_error *err)
{
    jx_open_params params = {.now_ms = now,
                             .max_envelope_bytes = (size_t)self->config->limits.max_message_bytes,
                             .transport_identity = peer->agency};
    jx_error ack_err;
    jx_opened *opened = jx_envelope_open(self->trust, bytes, len, &params, &ack_err);
    if (opened == NULL || strcmp(opened->type->name, "justx.v1.Ack") != 0) {
        broker_log(self, JX_GATEWAY_LOG_WARNING, "event=bad_ack agency=%s code=%s reason=\"%s\"",
                   peer->agency, opened ? "NOT_AN_ACK" : jx_error_code_name(ack_err.code),
                   opened ? "the ACK frame does not carry a justx.v1.Ack" : ack_err.message);
        jx_opened_destroy(&opened);
        return 0;
    }
    const Justx__V1__Ack *ack = (const Justx__V1__Ack *)opened->payload;
    agency_state *state = find_agency(self, peer->agency);
    int rc = -1;
    if (batch_begin(self, err) != 0)
        goto done;
    if (journal_certificate_once(self, opened, now, err) != 0)
        goto done;
    size_t count = ack->n_header_sha256 < ACK_DIGESTS_MAX ? ack->n_header_sha256 : ACK_DIGESTS_MAX;
    for (size_t i = 0; i < count; i++) {
        if (ack->header_sha256[i].len != 32)
            continue;
        jx_spool_message message;
        int found =
            jx_spool_find_pending(self->spool, peer->agency, ack->header_sha256[i].data, &message,
                                  err);
        if (found < 0)
            goto done;
        if (found == 0)
            continue; /* already acknowledged, expired, or not for this agency */
        jx_journal_entry entry = {
            .event = JX_EVENT_ACKNOWLEDGED,
            .time_ms = now,
            .message_id = message.message_id,
            .sender = message.sender,
            .recipient = peer->agency,
            .type = message.type,
            .case_id = message.case_id,
            .header = opened->envelope->header.data,
            .header_len = opened->envelope->header.len,
            .signature = opened->envelope->signature.data,
            .signature_len = opened->envelope->signature.len,
            .signer_cert_sha256 = opened->signer->fingerprint,
            .ack_envelope = bytes,
            .ack_envelope_len = len,
        };
        uint64_t index;
        if (journal_one(self, &entry, &index, err) != 0 ||
            jx_spool_finish_delivery(self->spool, message.seq, peer->agency,
                                     JX_DELIVERY_ACKNOWLEDGED, err) != 0 ||
            jx_spool_queue_receipt(self->spool, message.sender, index, err) != 0)
            goto done;
        self->totals.acknowledged++;
        broker_log(self, JX_GATEWAY_LOG_INFO,
                   "event=acknowledged recipient=%s sender=%s message_id=%s index=%llu",
                   peer->agency, message.sender, message.message_id, (unsigned long long)index);
        agency_state *sender_state = find_agency(self, message.sender);
        if (sender_state)
            sender_state->wants_pump = true;
        if (state && state->in_flight > 0)
            state->in_flight--;
    }
    if (state) {
        state->retry_delay_ms = self->config->limits.retry_initial_ms;
        state->retry_at_ms = now + state->retry_delay_ms;
        state->wants_pump = true;
    }
    rc = 0;
done:
    jx_opened_destroy(&opened);
    return rc;
}

/* ---- delivery ---------------------------------------------------------------------- */

typedef struct {
    jx_broker *self;
    agency_state *state;
    bool gone;
    int sent;
} pump_context;

static int deliver_one(void *arg, const jx_spool_message *message)
{
    pump_context *context = arg;
    agency_state *state = context->state;
    if (message->envelope_len == 0)
        return 0;
    if (!send_frames(context->self, state->active->id, state->active->id_len, "DELIVER",
                     message->envelope, message->envelope_len, NULL)) {
        context->gone = errno == EHOSTUNREACH;
        return 1;
    }
    state->sent_through = message->seq;
    state->in_flight++;
    context->sent++;
    context->self->totals.delivered_sends++;
    return 0;
}

static int send_queued_receipt(void *arg, int64_t id, uint64_t journal_index)
{
    pump_context *context = arg;
    agency_state *state = context->state;
    char queue_id[32];
    snprintf(queue_id, sizeof queue_id, "%lld", (long long)id);
    jx_error err;
    int rc = send_receipt(context->self, state->active->id, state->active->id_len, journal_index,
                          queue_id, &err);
    if (rc > 0) {
        context->gone = errno == EHOSTUNREACH;
        return 1;
    }
    if (rc < 0)
        broker_log(context->self, JX_GATEWAY_LOG_ERROR,
                   "event=receipt_failed agency=%s index=%llu reason=\"%s\"", state->agency,
                   (unsigned long long)journal_index, err.message);
    state->receipts_sent_through = id;
    return 0;
}

static void pump(jx_broker *self, agency_state *state, int64_t now)
{
    state->wants_pump = false;
    if (state->active == NULL)
        return;
    pump_context context = {self, state, false, 0};
    jx_error err;
    for (;;) { /* every queued receipt, 256 per query */
        int64_t before = state->receipts_sent_through;
        if (jx_spool_queued_receipts(self->spool, state->agency, state->receipts_sent_through,
                                     256, send_queued_receipt, &context, &err) != 0) {
            broker_log(self, JX_GATEWAY_LOG_ERROR, "event=spool_error reason=\"%s\"",
                       err.message);
            break;
        }
        if (context.gone || state->receipts_sent_through == before)
            break;
    }
    while (!context.gone && state->active && state->in_flight < DELIVERY_WINDOW) {
        int before = context.sent;
        if (jx_spool_pending(self->spool, state->agency, state->sent_through,
                             (size_t)(DELIVERY_WINDOW - state->in_flight), deliver_one, &context,
                             &err) != 0) {
            broker_log(self, JX_GATEWAY_LOG_ERROR, "event=spool_error reason=\"%s\"",
                       err.message);
            break;
        }
        if (context.sent == before)
            break;
    }
    if (context.sent > 0 && state->retry_at_ms == 0)
        state->retry_at_ms = now + state->retry_delay_ms;
    if (context.gone)
        drop_connection(self, state->active, "unreachable");
}

static void pump_all(jx_broker *self, int64_t now)
{
    for (size_t i = 0; i < self->n_agencies; i++)
        if (self->agencies[i].wants_pump)
            pump(self, &self->agencies[i], now);
}

/* Without acknowledgements for the retry delay, everything unacknowledged
 * goes out again, from the oldest, and the delay doubles. */
static void retry_due(jx_broker *self, int64_t now)
{
    for (size_t i = 0; i < self->n_agencies; i++) {
        agency_state *state = &self->agencies[i];
        if (state->active == NULL || state->retry_at_ms == 0 || now < state->retry_at_ms)
            continue;
        if (state->in_flight > 0) {
            broker_log(self, JX_GATEWAY_LOG_INFO,
                       "event=redeliver agency=%s unacknowledged=%d delay_ms=%lld", state->agency,
                       state->in_flight, (long long)state->retry_delay_ms);
            state->sent_through = 0;
            state->in_flight = 0;
            state->retry_delay_ms *= 2;
            if (state->retry_delay_ms > self->config->limits.retry_max_ms)
                state->retry_delay_ms = self->config->limits.retry_max_ms;
            state->retry_at_ms = now + state->retry_delay_ms;
            pump(self, state, now);
        } else {
            state->retry_at_ms = 0;
        }
    }
}

/* ---- expiry ------------------------------------------------------------------------ */

static int expire_one(void *arg, const jx_spool_message *message, const char *recipient)
{
    jx_broker *self = arg;
    jx_error err;
    char reason[256];
    snprintf(reason, sizeof reason,
             "%s did not acknowledge the message before it expired (%lld ms after acceptance)",
             recipient, (long long)(message->expires_at_ms - message->accepted_at_ms));
    jx_journal_entry entry = {
        .event = JX_EVENT_EXPIRED,
        .message_id = message->message_id,
        .sender = message->sender,
        .recipient = recipient,
        .type = message->type,
        .case_id = message->case_id,
        .reason_code = jx_error_code_name(JX_ERR_MESSAGE_EXPIRED),
        .reason = reason,
    };
    uint64_t index;
    if (journal_one(self, &entry, &index, &err) != 0 ||
        jx_spool_finish_delivery(self->spool, message->seq, recipient, JX_DELIVERY_EXPIRED,
                                 &err) != 0 ||
        jx_spool_queue_receipt(self->spool, message->sender, index, &err) != 0) {
        broker_log(self, JX_GATEWAY_LOG_ERROR, "event=expiry_failed reason=\"%s\"", err.message);
        return -1;
    }
    self->totals.expired++;
    broker_log(self, JX_GATEWAY_LOG_WARNING,
               "event=expired sender=%s message_id=%s recipient=%s index=%llu", message->sender,
               message->message_id, recipient, (unsigned long long)index);
    agency_state *sender_state = find_agency(self, message->sender);
    if (sender_state)
        sender_state->wants_pump = true;
    return 0;
}

static int expire_due(jx_broker *self, int64_t now, jx_error *err)
{
    if (now < self->next_expiry_scan_ms)
        return 0;
    self->next_expiry_scan_ms = now + EXPIRY_SCAN_MS;
    if (batch_begin(self, err) != 0)
        return -1;
    if (jx_spool_expired(self->spool, now, 1000, expire_one, self, err) != 0 ||
        jx_spool_prune(self->spool, now - 24 * 3600 * 1000LL, err) != 0)
        return -1;
    return 0;
}

/* ---- frames from adapters ---------------------------------------------------------- */

static void hello(jx_broker *self, connection *peer, int64_t now)
{
    peer->last_hello_ms = now;
    agency_state *state = find_agency(self, peer->agency);
    if (state && state->active != peer) {
        activate(self, state, peer);
    } else if (state) {
        /* Queued receipts sent but not confirmed by now are offered again:
         * confirmed ones are gone from the spool, so only those go out. */
        state->receipts_sent_through = 0;
        state->wants_pump = true;
    }
}

static int handle_receipt_ok(jx_broker *self, connection *peer, zmq_msg_t *frames, int count,
                             jx_error *err)
{
    if (batch_begin(self, err) != 0)
        return -1;
    for (int i = 2; i < count; i++) {
        char text[32];
        size_t len = zmq_msg_size(&frames[i]);
        if (len == 0 || len >= sizeof text)
            continue;
        memcpy(text, zmq_msg_data(&frames[i]), len);
        text[len] = '\0';
        char *end;
        long long id = strtoll(text, &end, 10);
        if (*end == '\0' && jx_spool_drop_receipt(self->spool, peer->agency, id, err) != 0)
            return -1;
    }
    agency_state *state = find_agency(self, peer->agency);
    if (state)
        state->wants_pump = true; /* more may be owed than one pump sent */
    return 0;
}

enum { FRAMES_MAX = 64 };

/* Reads one multipart message: [routing id][command][body...]. */
static int receive_message(void *socket, zmq_msg_t *frames, int *count)
{
    *count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = *count < FRAMES_MAX ? &frames[*count] : &scratch;
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(frame);
            return -1;
        }
        more = zmq_msg_more(frame);
        if (frame == &scratch)
            zmq_msg_close(frame); /* frames beyond the limit are read and dropped */
        else
            (*count)++;
    }
    return 0;
}

static int handle_router_message(jx_broker *self, int64_t now, jx_error *err)
{
    zmq_msg_t frames[FRAMES_MAX];
    int count = 0;
    if (receive_message(self->router, frames, &count) != 0)
        return errno == EAGAIN ? 1 : jx_error_set(err, JX_ERR_SYSTEM, "ROUTER receive: %s",
                                                  zmq_strerror(errno));
    int rc = 0;
    if (count < 2)
        goto done;
    const uint8_t *id = zmq_msg_data(&frames[0]);
    size_t id_len = zmq_msg_size(&frames[0]);
    connection *peer = find_connection(self, id, id_len);
    if (peer == NULL) {
        char agency[JX_AGENCY_ID_MAX];
        if (id_len > ROUTING_ID_MAX ||
            jx_zmtp_routing_id_agency(id, id_len, agency, NULL) != 0) {
            broker_log(self, JX_GATEWAY_LOG_WARNING,
                       "event=unknown_peer detail=\"routing id not made by the TLS front end\"");
            goto done;
        }
        if (jx_gateway_config_find_agency(self->config, agency) == NULL) {
            broker_log(self, JX_GATEWAY_LOG_WARNING,
                       "event=unregistered_agency agency=%s detail=\"certificate is trusted but "
                       "the agency is not in the configuration\"",
                       agency);
        }
        peer = add_connection(self, id, id_len, agency, now);
        if (peer == NULL) {
            rc = jx_error_set(err, JX_ERR_SYSTEM, "out of memory adding a connection");
            goto done;
        }
        char name[ROUTING_ID_MAX + 1];
        format_routing_id(peer, name, sizeof name);
        broker_log(self, JX_GATEWAY_LOG_INFO, "event=adapter_seen agency=%s routing_id=%s",
                   agency, name);
    }
    size_t command_len = zmq_msg_size(&frames[1]);
    const char *command = zmq_msg_data(&frames[1]);
#define IS(name) (command_len == strlen(name) && memcmp(command, name, command_len) == 0)
    if (IS("HELLO")) {
        hello(self, peer, now);
    } else if (IS("SEND") && count == 3) {
        rc = handle_send(self, peer, zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), now,
                         err);
    } else if (IS("ACK") && count == 3) {
        peer->last_hello_ms = now;
        rc = handle_ack(self, peer, zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), now,
                        err);
    } else if (IS("RECEIPT-OK")) {
        rc = handle_receipt_ok(self, peer, frames, count, err);
    } else {
        broker_log(self, JX_GATEWAY_LOG_WARNING,
                   "event=protocol_error agency=%s detail=\"unknown command or frame count\"",
                   peer->agency);
    }
#undef IS
done:
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

static void drop_silent_connections(jx_broker *self, int64_t now)
{
    for (size_t i = 0; i < self->n_connections;) {
        connection *peer = self->connections[i];
        int64_t last = peer->last_hello_ms ? peer->last_hello_ms : peer->connected_ms;
        if (now - last > HELLO_TIMEOUT_MS)
            drop_connection(self, peer, "no_hello");
        else
            i++;
    }
}

/* ---- administration ---------------------------------------------------------------- */

static int add_depth(void *arg, const char *recipient, int64_t pending, int64_t oldest)
{
    json_t *depths = arg;
    json_array_append_new(depths, json_pack("{s:s, s:I, s:I}", "recipient", recipient, "pending",
                                            (json_int_t)pending, "oldestAcceptedAtMs",
                                            (json_int_t)oldest));
    return 0;
}

typedef struct {
    int64_t before_ms;
    json_t *list;
} expiring_context;

static int add_expiring(void *arg, const jx_identity *identity)
{
    expiring_context *context = arg;
    if (identity->not_after_ms < context->before_ms)
        json_array_append_new(context->list,
                              json_pack("{s:s, s:I}", "agency", identity->agency, "notAfterMs",
                                        (json_int_t)identity->not_after_ms));
    return 0;
}

static json_t *status_json(jx_broker *self, int64_t now)
{
    json_t *adapters = json_array();
    for (size_t i = 0; i < self->n_connections; i++) {
        connection *peer = self->connections[i];
        char name[ROUTING_ID_MAX + 1];
        format_routing_id(peer, name, sizeof name);
        agency_state *state = find_agency(self, peer->agency);
        json_array_append_new(adapters,
                              json_pack("{s:s, s:s, s:I, s:I, s:b}", "routingId", name, "agency",
                                        peer->agency, "connectedAtMs",
                                        (json_int_t)peer->connected_ms, "lastHelloAtMs",
                                        (json_int_t)peer->last_hello_ms, "receivesDeliveries",
                                        state && state->active == peer));
    }
    json_t *depths = json_array();
    jx_error err;
    jx_spool_depths(self->spool, add_depth, depths, &err);
    double uptime = (double)(now - self->started_ms) / 1000.0;
    expiring_context expiring = {now + 30LL * 24 * 3600 * 1000, json_array()};
    jx_trust_each_identity(self->trust, add_expiring, &expiring);
    return json_pack(
        "{s:s, s:I, s:f, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:f}, s:{s:I, s:I}, s:o}",
        "gateway", self->config->id, "port", (json_int_t)jx_broker_port(self), "uptimeSeconds",
        uptime, "adapters", adapters, "spool", depths, "totals", "accepted",
        (json_int_t)self->totals.accepted, "rejected", (json_int_t)self->totals.rejected,
        "duplicates", (json_int_t)self->totals.duplicates, "acknowledged",
        (json_int_t)self->totals.acknowledged, "expired", (json_int_t)self->totals.expired,
        "acceptedPerSecond", uptime > 0 ? (double)self->totals.accepted / uptime : 0.0,
        "journal", "records", (json_int_t)jx_journal_size(self->journal), "checkpointSize",
        (json_int_t)self->note_size, "certificatesExpiringWithin30Days", expiring.list);
}

static void handle_control(jx_broker *self, int64_t now)
{
    zmq_msg_t request;
    zmq_msg_init(&request);
    if (zmq_msg_recv(&request, self->control, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&request);
        return;
    }
    bool is_status = zmq_msg_size(&request) == 6 && memcmp(zmq_msg_data(&request), "status", 6) == 0;
    while (zmq_msg_more(&request)) { /* the REP socket needs the whole request read */
        zmq_msg_close(&request);
        zmq_msg_init(&request);
        zmq_msg_recv(&request, self->control, 0);
    }
    zmq_msg_close(&request);
    json_t *answer = is_status ? status_json(self, now)
                               : json_pack("{s:s}", "error", "unknown command; try \"status\"");
    char *text = json_dumps(answer, JSON_INDENT(2));
    zmq_send(self->control, text, strlen(text), 0);
    free(text);
    json_decref(answer);
}

static jx_trust *load_trust(const jx_gateway_config *config, jx_error *err)
{
    jx_trust *trust = jx_trust_new(config->tls.trust_anchors[0], err);
    for (size_t i = 1; trust && i < config->tls.n_trust_anchors; i++)
        if (jx_trust_add_anchors(trust, config->tls.trust_anchors[i], err) != 0)
            jx_trust_destroy(&trust);
    for (size_t i = 0; trust && i < config->tls.n_crls; i++)
        if (jx_trust_add_crl(trust, config->tls.crls[i], err) != 0)
            jx_trust_destroy(&trust);
    return trust;
}

/* SIGHUP: the new file replaces the configuration only when it is valid;
 * either way the log says what happened, and a change is journaled with the
 * file's digest. */
static int reload(jx_broker *self, int64_t now, jx_error *err)
{
    jx_error load_err;
    jx_gateway_config *fresh = jx_gateway_config_load(self->config->path, &load_err);
    if (fresh == NULL) {
        broker_log(self, JX_GATEWAY_LOG_ERROR,
                   "event=reload_refused code=%s reason=\"%s\" detail=\"the previous "
                   "configuration stays in force\"",
                   jx_error_code_name(load_err.code), load_err.message);
        return 0;
    }
    /* New anchors and CRLs apply to every message from now on, and to the
     * TLS front end (a trust of its own, as at start): new handshakes verify
     * against them and connections whose certificate they reject are closed,
     * so a revoked agency is cut off at once. Nothing is applied unless both
     * build and the front end has switched. */
    jx_trust *fresh_trust = load_trust(fresh, &load_err);
    jx_trust *fresh_frontend_trust = fresh_trust ? load_trust(fresh, &load_err) : NULL;
    if (fresh_frontend_trust == NULL ||
        jx_tls_frontend_set_trust(self->frontend, fresh_frontend_trust, &load_err) != 0) {
        broker_log(self, JX_GATEWAY_LOG_ERROR,
                   "event=reload_refused code=%s reason=\"%s\" detail=\"the previous "
                   "configuration stays in force\"",
                   jx_error_code_name(load_err.code), load_err.message);
        jx_trust_destroy(&fresh_frontend_trust);
        jx_trust_destroy(&fresh_trust);
        jx_gateway_config_destroy(&fresh);
        return 0;
    }
    /* The front end has let go of its previous trust. (Should journaling
     * fail below, the gateway stops: no half-applied reload keeps running.) */
    jx_trust_destroy(&self->frontend_trust);
    self->frontend_trust = fresh_frontend_trust;
    if (batch_begin(self, err) != 0) {
        jx_trust_destroy(&fresh_trust);
        jx_gateway_config_destroy(&fresh);
        return -1;
    }
    jx_journal_entry entry = {
        .event = JX_EVENT_CONFIG_CHANGED,
        .time_ms = now,
        .config_sha256 = jx_gateway_config_digest(fresh),
        .detail = fresh->path,
    };
    uint64_t index;
    if (journal_one(self, &entry, &index, err) != 0) {
        jx_trust_destroy(&fresh_trust);
        jx_gateway_config_destroy(&fresh);
        return -1;
    }
    jx_trust_destroy(&self->trust);
    self->trust = fresh_trust;
    char digest[65];
    for (int i = 0; i < 32; i++)
        sprintf(digest + 2 * i, "%02x", jx_gateway_config_digest(fresh)[i]);
    jx_gateway_config_destroy(&self->config);
    self->config = fresh;
    if (sync_agencies(self) != 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory applying a configuration");
    broker_log(self, JX_GATEWAY_LOG_INFO,
               "event=reloaded agencies=%zu routes=%zu config_sha256=%s index=%llu",
               fresh->n_agencies, fresh->n_routes, digest, (unsigned long long)index);
    return 0;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static void frontend_log(void *arg, const char *line)
{
    jx_broker *self = arg;
    if (self->log)
        self->log(self->log_arg, line);
}

jx_broker *jx_broker_new(jx_gateway_config *config, jx_log_fn log, void *log_arg, jx_error *err)
{
    jx_broker *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_gateway_config_destroy(&config);
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory starting the gateway");
        return NULL;
    }
    self->config = config;
    self->log = log;
    self->log_arg = log_arg;
    self->started_ms = jx_now_ms();
    char path[PATH_MAX_LEN + 64];

    if (strlen(config->state_dir) > PATH_MAX_LEN - 64) {
        jx_error_set(err, JX_ERR_CONFIG, "%s: state_dir is longer than %d characters",
                     config->path, PATH_MAX_LEN - 64);
        goto failed;
    }
    if (jx_transport_private_dir(config->state_dir, err) != 0)
        goto failed;
    snprintf(self->run_dir, sizeof self->run_dir, "%s/run", config->state_dir);
    if (jx_transport_private_dir(self->run_dir, err) != 0)
        goto failed;

    jx_journal_recovery recovery;
    jx_journal_options options = {.segment_max_bytes = (uint64_t)config->journal.segment_bytes};
    snprintf(path, sizeof path, "%s/journal", config->state_dir);
    self->journal = jx_journal_open(path, &options, &recovery, err);
    if (self->journal == NULL)
        goto failed;
    if (recovery.torn_tail)
        broker_log(self, JX_GATEWAY_LOG_WARNING,
                   "event=journal_tail_repaired segment=%s offset=%llu bytes_cut=%llu "
                   "detail=\"an incomplete record from a crash was cut off; it was never "
                   "acknowledged\"",
                   recovery.torn_segment, (unsigned long long)recovery.torn_offset,
                   (unsigned long long)recovery.torn_bytes);
    broker_log(self, JX_GATEWAY_LOG_INFO, "event=journal_opened records=%llu checkpoints=%llu",
               (unsigned long long)recovery.records, (unsigned long long)recovery.checkpoints);

    snprintf(path, sizeof path, "%s/spool.db", config->state_dir);
    self->spool = jx_spool_open(path, err);
    if (self->spool == NULL || jx_spool_certificates(self->spool, remember_certificate, self, err))
        goto failed;
    self->checkpoint_key = jx_checkpoint_load_private_key(config->tls.key, err);
    if (self->checkpoint_key == NULL)
        goto failed;
    self->trust = load_trust(config, err);
    self->frontend_trust = self->trust ? load_trust(config, err) : NULL;
    if (self->frontend_trust == NULL)
        goto failed;
    if (sync_agencies(self) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory starting the gateway");
        goto failed;
    }

    self->zmq = zmq_ctx_new();
    self->router = zmq_socket(self->zmq, ZMQ_ROUTER);
    self->control = zmq_socket(self->zmq, ZMQ_REP);
    int one = 1, linger = 0;
    /* The socket's hard limit must let every envelope a justx adapter can
     * seal arrive whole, so that one over the configured limit is answered
     * with a REJECTED receipt instead of a dropped connection. */
    int64_t max_size = (config->limits.max_message_bytes > JX_ENVELOPE_MAX_DEFAULT
                            ? config->limits.max_message_bytes
                            : JX_ENVELOPE_MAX_DEFAULT) +
                       65536;
    zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->control, ZMQ_LINGER, &linger, sizeof linger);
    int hwm = 100000;
    zmq_setsockopt(self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (jx_transport_set_heartbeat(self->router, JX_TRANSPORT_HEARTBEAT_DEFAULT_MS, err) != 0)
        goto failed;
    char endpoint[PATH_MAX_LEN + 64];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/router.ipc", self->run_dir);
    if (zmq_bind(self->router, endpoint) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        goto failed;
    }
    char control_endpoint[PATH_MAX_LEN + 64];
    snprintf(control_endpoint, sizeof control_endpoint, "ipc://%s/control.ipc", self->run_dir);
    if (zmq_bind(self->control, control_endpoint) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot bind %s: %s", control_endpoint,
                     zmq_strerror(errno));
        goto failed;
    }

    jx_tls_frontend_config frontend = {
        .listen = config->listen,
        .cert_file = config->tls.certificate,
        .key_file = config->tls.key,
        .trust = self->frontend_trust,
        .tls_min_version = config->tls.min_version,
        .router_endpoint = endpoint,
        .handshake_timeout_ms = (int)config->tls.handshake_timeout_ms,
        .max_connections = config->tls.max_connections,
        .max_connections_per_agency = config->tls.max_connections_per_agency,
        .log = frontend_log,
        .log_arg = self,
    };
    self->frontend = jx_tls_frontend_new(&frontend, err);
    if (self->frontend == NULL)
        goto failed;

    jx_journal_entry started = {
        .event = JX_EVENT_GATEWAY_STARTED,
        .config_sha256 = jx_gateway_config_digest(config),
        .detail = config->path,
    };
    if (jx_journal_append(self->journal, &started, 1, NULL, err) != 0 ||
        refresh_checkpoint(self, jx_now_ms(), err) != 0)
        goto failed;
    broker_log(self, JX_GATEWAY_LOG_INFO,
               "event=started gateway=%s listen=%s port=%d agencies=%zu routes=%zu state_dir=%s",
               config->id, config->listen, jx_tls_frontend_port(self->frontend),
               config->n_agencies, config->n_routes, config->state_dir);
    return self;

failed:
    jx_broker_destroy(&self);
    return NULL;
}

int jx_broker_port(const jx_broker *self)
{
    return self->frontend ? jx_tls_frontend_port(self->frontend) : 0;
}

/* Group commit: a batch is made durable once it holds
 * limits.group_commit_max_messages frames or has been open for
 * limits.group_commit_max_delay_ms, whichever comes first. Waiting a moment
 * for more is what makes one fsync and one checkpoint signature serve many
 * messages when they arrive one by one. */
static bool batch_due(const jx_broker *self, int64_t monotonic_now)
{
    const jx_gateway_config *config = self->config;
    return self->in_batch &&
           (self->batch_events >= (size_t)config->limits.group_commit_max_messages ||
            monotonic_now - self->batch_opened_ms >= config->limits.group_commit_max_delay_ms);
}

int jx_broker_run(jx_broker *self, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload_flag,
                  jx_error *err)
{
    zmq_pollitem_t items[] = {
        {self->router, 0, ZMQ_POLLIN, 0},
        {self->control, 0, ZMQ_POLLIN, 0},
    };
    while (!*stop) {
        int timeout = 100;
        if (self->in_batch) {
            int64_t left = self->batch_opened_ms + self->config->limits.group_commit_max_delay_ms -
                           jx_transport_monotonic_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int ready = zmq_poll(items, 2, timeout);
        if (ready < 0 && errno != EINTR)
            return jx_error_set(err, JX_ERR_SYSTEM, "poll: %s", zmq_strerror(errno));
        int64_t now = jx_now_ms();
        if (*reload_flag) {
            *reload_flag = 0;
            if (reload(self, now, err) != 0)
                return -1;
        }
        if (ready > 0 && (items[0].revents & ZMQ_POLLIN)) {
            /* Take what is waiting, up to what completes the batch. */
            size_t limit = (size_t)self->config->limits.group_commit_max_messages;
            for (size_t taken = 0; taken < limit; taken++) {
                int rc = handle_router_message(self, now, err);
                if (rc < 0)
                    return -1;
                if (rc > 0)
                    break;
                if (self->in_batch && ++self->batch_events >= limit)
                    break;
            }
        }
        if (ready > 0 && (items[1].revents & ZMQ_POLLIN))
            handle_control(self, now);
        if (expire_due(self, now, err) != 0)
            return -1;
        if (batch_due(self, jx_transport_monotonic_ms()) && batch_commit(self, now, err) != 0)
            return -1;
        if (self->in_batch)
            continue; /* nothing leaves before the batch is durable (batch_commit pumps) */
        retry_due(self, now);
        drop_silent_connections(self, now);
        if (now - self->persisted_at_ms >= self->config->journal.checkpoint_every_ms &&
            self->persisted_size < jx_journal_durable_size(self->journal)) {
            if (refresh_checkpoint(self, now, err) != 0)
                return -1;
        }
        pump_all(self, now);
    }
    /* SIGTERM: no new intake; what is in the batch is finished. */
    return batch_commit(self, jx_now_ms(), err);
}

void jx_broker_destroy(jx_broker **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_broker *self = *self_p;
    jx_tls_frontend_destroy(&self->frontend);
    if (self->in_batch)
        jx_spool_rollback(self->spool);
    if (self->journal && self->checkpoint_key) {
        jx_journal_entry stopped = {.event = JX_EVENT_GATEWAY_STOPPED};
        jx_error err;
        char *note = NULL;
        if (jx_journal_append(self->journal, &stopped, 1, NULL, &err) == 0)
            jx_journal_checkpoint(self->journal, self->checkpoint_key, self->config->id, 0, &note,
                                  NULL, &err);
        free(note);
        broker_log(self, JX_GATEWAY_LOG_INFO, "event=stopped records=%llu",
                   (unsigned long long)jx_journal_size(self->journal));
    }
    if (self->router)
        zmq_close(self->router);
    if (self->control)
        zmq_close(self->control);
    if (self->zmq)
        zmq_ctx_term(self->zmq);
    for (size_t i = 0; i < self->n_connections; i++)
        free(self->connections[i]);
    free(self->connections);
    free(self->agencies);
    free(self->replies);
    free(self->certificates);
    free(self->note);
    jx_journal_destroy(&self->journal);
    jx_spool_destroy(&self->spool);
    EVP_PKEY_free(self->checkpoint_key);
    jx_trust_destroy(&self->trust);
    jx_trust_destroy(&self->frontend_trust);
    jx_gateway_config_destroy(&self->config);
    free(self);
    *self_p = NULL;
}
