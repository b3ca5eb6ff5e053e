/* adapter.h — libjustx-adapter: how an agency system talks to justx from C.
 *
 * An adapter holds the agency's certificate and key, a durable local store
 * (outbox, inbox, receipts) and a link to the gateway (mutual TLS, reconnected
 * by itself). The agency system:
 *
 *   - sends: jx_adapter_send seals the payload with the agency key, stores the
 *     envelope in the outbox (durable when the call returns) and returns the
 *     message id at once. The adapter sends it, and again after every
 *     reconnect, until the gateway answers ACCEPTED or REJECTED; a restart of
 *     the adapter or the gateway loses nothing.
 *   - learns what became of it: receipts (ACCEPTED, REJECTED, DELIVERED per
 *     recipient, EXPIRED) are verified against the gateway's signed
 *     checkpoint and stored; poll them with jx_adapter_receipts or get a
 *     callback.
 *   - receives: the adapter verifies every delivered message end to end
 *     itself (sender certificate chain, revocation, signature, digest; it
 *     does not trust the gateway for that), stores it, de-duplicates it by
 *     (sender, message id) and acknowledges it to the gateway with a signed
 *     Ack. jx_adapter_receive hands out each message until the agency system
 *     calls jx_adapter_consume; after that, never again.
 *
 * Threads: jx_adapter_new starts an I/O thread (and the TLS dialer's). All
 * functions may be called from any one application thread at a time;
 * callbacks run on the I/O thread.
 *
 * Example: adapters/example.c.
 */
#ifndef JX_ADAPTER_H
#define JX_ADAPTER_H

#include "envelope.h"
#include "error.h"
#include "store.h"
#include "tls_dialer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jx_adapter jx_adapter;

/* Called on the I/O thread for every receipt stored, with its status
 * ("ACCEPTED", ...). The receipt is borrowed for the call. */
typedef void (*jx_adapter_receipt_fn)(void *arg, const jx_adapter_store_receipt *receipt);

typedef struct {
    const char *state_dir;      /* adapter.db and run/ (private sockets), made 0700 */
    const char *gateway;        /* "host:port" of the gateway's TLS listener */
    const char *gateway_name;   /* name the gateway certificate must carry; NULL: host */
    const char *gateway_cert;   /* the gateway's certificate (PEM): its key signs checkpoints */
    const char *gateway_origin; /* the gateway's checkpoint origin, e.g. "justx.demo/gateway" */
    const char *ca_file;        /* trust anchors for the gateway and for senders */
    const char *const *crl_files; /* revocation lists for senders' certificates */
    size_t n_crl_files;
    const char *cert_file;      /* this agency's certificate and key */
    const char *key_file;
    int ack_delay_ms;           /* acks are batched this long at most; 0: 5 ms */
    jx_log_fn log;              /* may be NULL; key=value lines */
    void *log_arg;
    jx_adapter_receipt_fn on_receipt; /* may be NULL */
    void *receipt_arg;
} jx_adapter_config;

jx_adapter *jx_adapter_new(const jx_adapter_config *config, jx_error *err);

/* Stops the I/O thread and the link; what is in the outbox is sent after
 * the next start. Safe twice. */
void jx_adapter_destroy(jx_adapter **self_p);

/* This adapter's agency id (from its certificate). */
const char *jx_adapter_agency(const jx_adapter *self);

/* Seals payload (serialized protobuf of params->type) and stores it in the
 * outbox; message_id receives its id. The message is on its way when this
 * returns 0. */
int jx_adapter_send(jx_adapter *self, const jx_seal_params *params, const uint8_t *payload,
                    size_t payload_len, char message_id[JX_MESSAGE_ID_MAX], jx_error *err);

/* One message for jx_adapter_send_many: what to seal, and (filled in) its id. */
typedef struct {
    jx_seal_params params;
    const uint8_t *payload;
    size_t payload_len;
    char message_id[JX_MESSAGE_ID_MAX];
} jx_adapter_outgoing;

/* Seals count messages and stores them in the outbox in one transaction: one
 * disk sync for all of them (the outbox's group commit, for a drop-box sweep
 * or a batch from an agency system). All or none. */
int jx_adapter_send_many(jx_adapter *self, jx_adapter_outgoing *messages, size_t count,
                         jx_error *err);

/* Puts an envelope someone else sealed into the outbox, as it is: for
 * relaying a message that arrived outside justx. The gateway checks it like
 * any other (a foreign signature is REJECTED with the reason). message_id
 * receives the id its header claims. */
int jx_adapter_submit(jx_adapter *self, const uint8_t *envelope, size_t envelope_len,
                      char message_id[JX_MESSAGE_ID_MAX], jx_error *err);

/* A received message, verified end to end. Free with jx_adapter_message_destroy. */
typedef struct {
    int64_t sequence; /* arrival order */
    jx_opened *opened; /* header, payload (decoded), signer identity */
    uint8_t *envelope; /* the envelope exactly as the sender signed it */
    size_t envelope_len;
    int64_t received_at_ms;
} jx_adapter_message;

/* Waits up to timeout_ms (0: do not wait, -1: forever) for the oldest
 * message the agency system has not consumed. 1 and *message, 0 when none
 * came in time, -1 on error. The same message is handed out again until it
 * is consumed. */
int jx_adapter_receive(jx_adapter *self, int timeout_ms, jx_adapter_message **message,
                       jx_error *err);

/* Like jx_adapter_receive, for the oldest unconsumed message that arrived
 * after sequence `after`: lets an agency system take several messages before
 * consuming them in one store batch. */
int jx_adapter_receive_after(jx_adapter *self, int64_t after, int timeout_ms,
                             jx_adapter_message **message, jx_error *err);

/* The agency system has taken the message: it is never handed out again. */
int jx_adapter_consume(jx_adapter *self, const char *sender, const char *message_id,
                       jx_error *err);

void jx_adapter_message_destroy(jx_adapter_message **message_p);

/* Receipts stored after sequence since, oldest first (see store.h). */
int jx_adapter_receipts(jx_adapter *self, int64_t since, size_t limit,
                        jx_adapter_store_receipt_fn *each, void *arg, jx_error *err);

/* Waits up to timeout_ms for a receipt of message_id with status (e.g.
 * "ACCEPTED"; recipient may be NULL). 1 found, 0 timed out, -1 error. */
int jx_adapter_wait_receipt(jx_adapter *self, const char *message_id, const char *status,
                            const char *recipient, int timeout_ms, jx_error *err);

/* The store, for listing what was sent and received (borrowed). */
jx_adapter_store *jx_adapter_get_store(jx_adapter *self);

/* The link's state, as the dialer sees it. */
jx_tls_dialer_state jx_adapter_link_state(jx_adapter *self, jx_error *last_error);

#endif
