/* store.h — an agency adapter's durable local store (one SQLite file).
 *
 * What an adapter must not lose or repeat lives here:
 *
 * - the outbox: envelopes the agency system handed over that the gateway has
 *   not yet answered; after every (re)connect the adapter sends all of them
 *   again, in insertion order (the gateway de-duplicates resends);
 * - sent: one row per message ever put into the outbox, with the state the
 *   receipts so far say it is in (PENDING until the first receipt);
 * - the inbox: messages received and verified end to end, unique per
 *   (sender, message id), so that a redelivery after a reconnect is
 *   recognised even across restarts, and marked consumed once the agency
 *   system took them, so they are never handed out twice;
 * - receipts: every receipt received, unique per (message id, status,
 *   recipient), numbered so that callers can poll for new ones.
 *
 * Durability: every function that changes something has committed it with
 * fsync (SQLite WAL, synchronous=FULL) before it returns success. A crash or
 * SIGKILL after a successful return loses nothing.
 *
 * Sequences: outbox, inbox, sent and receipts each number their rows with a
 * sequence that only grows and is never reused, even after deletions, so
 * "everything after sequence N" is a stable cursor.
 *
 * Thread safety: one jx_adapter_store may be used from several threads (an
 * internal mutex serialises calls). Several processes may open the same file
 * (e.g. the CLI reading status while the daemon runs); a writer waits up to
 * five seconds for another process's write to finish.
 *
 * Ownership: strings passed in are copied. Entries returned through a `**`
 * out parameter belong to the caller, who frees them with the matching
 * _destroy function. Entries passed to a callback are borrowed for the
 * duration of the call only. Callbacks run without the store's lock held, so
 * they may call the store again.
 */
#ifndef JX_ADAPTER_STORE_H
#define JX_ADAPTER_STORE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jx_adapter_store jx_adapter_store;

/* A message waiting in the outbox. */
typedef struct {
    int64_t sequence; /* insertion order */
    char *message_id;
    char *type;
    char *case_id;     /* "" when none */
    char *recipients;  /* as given to _outbox_add, e.g. "KG-PROBATION,KG-PRISON"; "" for routes */
    uint8_t *envelope; /* the serialized, signed Envelope */
    size_t envelope_len;
    int64_t created_at_ms;
} jx_adapter_store_outbox_entry;

/* A message that was put into the outbox, and what became of it. */
typedef struct {
    int64_t sequence;
    char *message_id;
    char *type;
    char *case_id;
    char *recipients;
    int64_t created_at_ms;
    char *status;            /* PENDING, ACCEPTED, REJECTED, DELIVERED or EXPIRED */
    int64_t updated_at_ms;   /* when status last changed; created_at_ms while PENDING */
    int64_t delivered_count; /* DELIVERED receipts so far (one per recipient) */
    int64_t expired_count;   /* EXPIRED receipts so far (one per recipient) */
    bool in_outbox;          /* still waiting to be (re)sent */
} jx_adapter_store_sent_entry;

/* A received, verified message. */
typedef struct {
    int64_t sequence; /* arrival order */
    char *sender;
    char *message_id;
    uint8_t header_sha256[32];
    char *type;
    char *case_id;
    uint8_t *envelope;
    size_t envelope_len;
    int64_t received_at_ms;
    bool consumed;          /* the agency system has taken it */
    int64_t consumed_at_ms; /* 0 while not consumed */
} jx_adapter_store_inbox_entry;

/* A receipt about a message this agency sent. */
typedef struct {
    int64_t sequence; /* arrival order */
    char *message_id;
    char *status;      /* ACCEPTED, REJECTED, DELIVERED or EXPIRED */
    char *recipient;   /* "" unless DELIVERED or EXPIRED */
    char *reason_code; /* "" when none */
    char *reason;      /* "" when none */
    uint64_t journal_index;
    uint8_t *receipt; /* the serialized Receipt, kept as evidence */
    size_t receipt_len;
    int64_t received_at_ms;
} jx_adapter_store_receipt;

typedef struct {
    int64_t outbox_pending;   /* messages waiting for ACCEPTED or REJECTED */
    int64_t sent;             /* messages ever put into the outbox */
    int64_t inbox;            /* messages ever received */
    int64_t inbox_unconsumed; /* received and not yet taken by the agency system */
    int64_t receipts;
} jx_adapter_store_counts;

/* Callbacks for the _list functions: return 0 to go on, anything else to
 * stop (the _list function then still returns 0). */
typedef int(jx_adapter_store_outbox_fn)(const jx_adapter_store_outbox_entry *entry, void *arg);
typedef int(jx_adapter_store_sent_fn)(const jx_adapter_store_sent_entry *entry, void *arg);
typedef int(jx_adapter_store_inbox_fn)(const jx_adapter_store_inbox_entry *entry, void *arg);
typedef int(jx_adapter_store_receipt_fn)(const jx_adapter_store_receipt *receipt, void *arg);

/* Opens the store at path, creating it (mode 0600) when it does not exist,
 * and bringing its schema up to date. The directory must exist. A file that
 * is not an adapter store, is damaged, or was written by a newer justx is
 * refused with an error naming the file. Returns NULL and fills err on
 * failure. */
jx_adapter_store *jx_adapter_store_new(const char *path, jx_error *err);
void jx_adapter_store_destroy(jx_adapter_store **self_p);

/* The file's path as given to _new (borrowed). */
const char *jx_adapter_store_path(jx_adapter_store *self);

/* ---- batches ---- */

/* Group commit: between batch_begin and batch_commit every call of this
 * thread joins one transaction, made durable by one sync at commit; each call
 * still succeeds or fails as a whole (a savepoint). Other threads wait until
 * the batch is committed, so nothing they are told is durable depends on it.
 * Nothing written in a batch is durable before batch_commit returns 0. */
int jx_adapter_store_batch_begin(jx_adapter_store *self, jx_error *err);
int jx_adapter_store_batch_commit(jx_adapter_store *self, jx_error *err);

/* ---- outbox ---- */

/* Puts a sealed envelope into the outbox and records it in sent, in one
 * transaction. Returns 1 when added, 0 when this message id is already known
 * with the same envelope bytes (nothing changes, it is not queued again),
 * -1 with DUPLICATE when the id is known with different bytes. */
int jx_adapter_store_outbox_add(jx_adapter_store *self, const char *message_id, const char *type,
                                const char *case_id, const char *recipients,
                                const uint8_t *envelope, size_t envelope_len, int64_t created_at_ms,
                                jx_error *err);

/* One message for jx_adapter_store_outbox_add_many; strings borrowed. */
typedef struct {
    const char *message_id;
    const char *type;
    const char *case_id;
    const char *recipients;
    const uint8_t *envelope;
    size_t envelope_len;
    int64_t created_at_ms;
} jx_adapter_store_new_message;

/* Adds count messages in one transaction (one fsync for all: group commit
 * for a drop-box sweep or a batch of sends). All or none: returns 0 when
 * every one is stored (or already was, with the same bytes), -1 and nothing
 * stored on the first failure. */
int jx_adapter_store_outbox_add_many(jx_adapter_store *self,
                                     const jx_adapter_store_new_message *messages, size_t count,
                                     jx_error *err);

/* The first outbox entry with a sequence greater than after_sequence (start
 * with 0). Returns 1 and sets *entry_p, 0 when there is none, -1 on error. */
int jx_adapter_store_outbox_next(jx_adapter_store *self, int64_t after_sequence,
                                 jx_adapter_store_outbox_entry **entry_p, jx_error *err);

/* Calls fn for outbox entries after after_sequence in insertion order, at
 * most limit of them (0: all). */
int jx_adapter_store_outbox_list(jx_adapter_store *self, int64_t after_sequence, size_t limit,
                                 jx_adapter_store_outbox_fn *fn, void *arg, jx_error *err);

/* Takes a message out of the outbox; its sent row stays. Returns 1 when it
 * was there, 0 when it was not (already removed), -1 on error. Receipts
 * remove the message on their own (see _receipt_add). */
int jx_adapter_store_outbox_remove(jx_adapter_store *self, const char *message_id, jx_error *err);

void jx_adapter_store_outbox_entry_destroy(jx_adapter_store_outbox_entry **entry_p);

/* ---- sent ---- */

/* Returns 1 and sets *entry_p, 0 when the message id is unknown, -1. */
int jx_adapter_store_sent_get(jx_adapter_store *self, const char *message_id,
                              jx_adapter_store_sent_entry **entry_p, jx_error *err);

/* Calls fn for sent messages after after_sequence in the order they were
 * put into the outbox, at most limit (0: all). */
int jx_adapter_store_sent_list(jx_adapter_store *self, int64_t after_sequence, size_t limit,
                               jx_adapter_store_sent_fn *fn, void *arg, jx_error *err);

void jx_adapter_store_sent_entry_destroy(jx_adapter_store_sent_entry **entry_p);

/* ---- inbox ---- */

/* Stores a received message that has been verified. Returns 1 when new, 0
 * when (sender, message_id) is already stored with the same header digest
 * (a redelivery: nothing changes), -1 with DUPLICATE when it is stored with
 * a different header digest (the sender reused a message id). */
int jx_adapter_store_inbox_add(jx_adapter_store *self, const char *sender, const char *message_id,
                               const uint8_t header_sha256[32], const char *type,
                               const char *case_id, const uint8_t *envelope, size_t envelope_len,
                               int64_t received_at_ms, jx_error *err);

/* Returns 1 and sets *entry_p, 0 when there is no such message, -1. */
int jx_adapter_store_inbox_get(jx_adapter_store *self, const char *sender, const char *message_id,
                               jx_adapter_store_inbox_entry **entry_p, jx_error *err);

/* The oldest unconsumed message with a sequence greater than after_sequence
 * (start with 0). Returns 1 and sets *entry_p, 0 when there is none, -1. */
int jx_adapter_store_inbox_next_unconsumed(jx_adapter_store *self, int64_t after_sequence,
                                           jx_adapter_store_inbox_entry **entry_p, jx_error *err);

/* Calls fn for inbox messages after after_sequence in arrival order, only
 * the unconsumed ones when only_unconsumed, at most limit (0: all). */
int jx_adapter_store_inbox_list(jx_adapter_store *self, bool only_unconsumed,
                                int64_t after_sequence, size_t limit, jx_adapter_store_inbox_fn *fn,
                                void *arg, jx_error *err);

/* Marks a message as taken by the agency system. Returns 1 when it was
 * unconsumed, 0 when it was consumed already (nothing changes), -1 with
 * NOT_FOUND when there is no such message. */
int jx_adapter_store_inbox_consume(jx_adapter_store *self, const char *sender,
                                   const char *message_id, int64_t consumed_at_ms, jx_error *err);

void jx_adapter_store_inbox_entry_destroy(jx_adapter_store_inbox_entry **entry_p);

/* ---- receipts ---- */

/* Stores a receipt (status: ACCEPTED, REJECTED, DELIVERED or EXPIRED;
 * recipient may be NULL or ""). Returns 1 when new, 0 when a receipt with the
 * same (message_id, status, recipient) is stored already (nothing changes).
 * In the same transaction a new receipt takes the message out of the outbox
 * (any receipt means the gateway has answered it) and advances its sent
 * status; a status never moves back (PENDING < ACCEPTED < DELIVERED, EXPIRED
 * < REJECTED), so receipts arriving out of order after a reconnect are fine.
 * A receipt for a message id not in sent is stored all the same. */
int jx_adapter_store_receipt_add(jx_adapter_store *self, const char *message_id, const char *status,
                                 const char *recipient, const char *reason_code, const char *reason,
                                 uint64_t journal_index, const uint8_t *receipt, size_t receipt_len,
                                 int64_t received_at_ms, jx_error *err);

/* Calls fn for every receipt about message_id, in arrival order. */
int jx_adapter_store_receipts_for(jx_adapter_store *self, const char *message_id,
                                  jx_adapter_store_receipt_fn *fn, void *arg, jx_error *err);

/* Calls fn for receipts after since_sequence in arrival order, at most limit
 * (0: all). Poll by passing the last sequence seen. */
int jx_adapter_store_receipts_list(jx_adapter_store *self, int64_t since_sequence, size_t limit,
                                   jx_adapter_store_receipt_fn *fn, void *arg, jx_error *err);

void jx_adapter_store_receipt_destroy(jx_adapter_store_receipt **receipt_p);

/* ---- status ---- */

int jx_adapter_store_count(jx_adapter_store *self, jx_adapter_store_counts *counts, jx_error *err);

#endif
