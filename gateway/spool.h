/* spool.h — the gateway's durable store of accepted messages until every
 * recipient has acknowledged them or they expired (SQLite).
 *
 * The spool also answers "have I accepted this (sender, message id) before?"
 * for as long as the message could still be delivered, and holds receipts
 * owed to agencies that are not connected. Writes happen inside a batch
 * (jx_spool_begin ... jx_spool_commit): the gateway's group commit, one fsync
 * for many messages. Single-threaded: the broker thread owns it.
 */
#ifndef JX_SPOOL_H
#define JX_SPOOL_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jx_spool jx_spool;

typedef enum {
    JX_DELIVERY_PENDING = 0,
    JX_DELIVERY_ACKNOWLEDGED = 1,
    JX_DELIVERY_EXPIRED = 2,
} jx_delivery_state;

/* One accepted message. Strings are borrowed from the caller when adding and
 * from the spool (valid until the next spool call) when reading. */
typedef struct {
    int64_t seq; /* acceptance order, assigned by the spool */
    const char *sender;
    const char *message_id;
    const char *type;
    const char *case_id;
    uint8_t header_sha256[32];
    uint64_t journal_index; /* of the ACCEPTED record */
    int64_t accepted_at_ms;
    int64_t expires_at_ms;
    const uint8_t *envelope;
    size_t envelope_len;
} jx_spool_message;

/* Opens or creates the spool database at path (mode 0600). */
jx_spool *jx_spool_open(const char *path, jx_error *err);
void jx_spool_destroy(jx_spool **self_p);

int jx_spool_begin(jx_spool *self, jx_error *err);
/* Commits the batch; durable (fsync) when it returns 0. */
int jx_spool_commit(jx_spool *self, jx_error *err);
void jx_spool_rollback(jx_spool *self);

/* Adds an accepted message with one pending delivery per recipient; sets
 * message->seq. */
int jx_spool_add(jx_spool *self, jx_spool_message *message, const char *const *recipients,
                 size_t recipient_count, jx_error *err);

/* Looks up a message by (sender, message id): 1 found (fills out), 0 not. */
int jx_spool_find(jx_spool *self, const char *sender, const char *message_id,
                  jx_spool_message *out, jx_error *err);

/* The pending message for recipient whose header digest is header_sha256:
 * 1 found (fills out, without the envelope), 0 not pending for that recipient. */
int jx_spool_find_pending(jx_spool *self, const char *recipient, const uint8_t header_sha256[32],
                          jx_spool_message *out, jx_error *err);

/* Calls each for up to limit pending deliveries to recipient with seq > after,
 * in acceptance order; stops early when each returns non-zero. */
typedef int (*jx_spool_each_fn)(void *arg, const jx_spool_message *message);
int jx_spool_pending(jx_spool *self, const char *recipient, int64_t after, size_t limit,
                     jx_spool_each_fn each, void *arg, jx_error *err);

/* Marks a delivery acknowledged or expired; when no delivery of the message is
 * pending any more, its envelope is dropped to reclaim space. */
int jx_spool_finish_delivery(jx_spool *self, int64_t seq, const char *recipient,
                             jx_delivery_state state, jx_error *err);

/* Pending deliveries whose message expired at or before now_ms: each is
 * called with the message (envelope not loaded) and the recipient. */
typedef int (*jx_spool_expired_fn)(void *arg, const jx_spool_message *message,
                                   const char *recipient);
int jx_spool_expired(jx_spool *self, int64_t now_ms, size_t limit, jx_spool_expired_fn each,
                     void *arg, jx_error *err);

/* Forgets finished messages that expired before now_ms: past their expiry a
 * resend is refused as expired, so the duplicate check no longer needs them. */
int jx_spool_prune(jx_spool *self, int64_t now_ms, jx_error *err);

/* Receipts owed to an agency (DELIVERED, EXPIRED), kept until its adapter
 * confirms it got them. A receipt is named by the journal record it reports;
 * its bytes are built from the journal when it is sent. */
int jx_spool_queue_receipt(jx_spool *self, const char *agency, uint64_t journal_index,
                           jx_error *err);
typedef int (*jx_spool_receipt_fn)(void *arg, int64_t id, uint64_t journal_index);
int jx_spool_queued_receipts(jx_spool *self, const char *agency, int64_t after, size_t limit,
                             jx_spool_receipt_fn each, void *arg, jx_error *err);
/* Forgets a queued receipt; only agency's own receipts can be dropped. */
int jx_spool_drop_receipt(jx_spool *self, const char *agency, int64_t id, jx_error *err);

/* The signer certificates already journaled (by SHA-256 of their DER), so
 * each is written to the journal once. */
typedef int (*jx_spool_certificate_fn)(void *arg, const uint8_t sha256[32]);
int jx_spool_certificates(jx_spool *self, jx_spool_certificate_fn each, void *arg, jx_error *err);
int jx_spool_add_certificate(jx_spool *self, const uint8_t sha256[32], jx_error *err);

/* Per recipient: pending deliveries and the oldest one's acceptance time. */
typedef int (*jx_spool_depth_fn)(void *arg, const char *recipient, int64_t pending,
                                 int64_t oldest_accepted_ms);
int jx_spool_depths(jx_spool *self, jx_spool_depth_fn each, void *arg, jx_error *err);

#endif
