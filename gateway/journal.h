/* journal.h — the gateway's audit journal: an append-only Merkle log on disk.
 *
 * Records (justx.v1.JournalRecord, proto/schema/justx/v1/journal.proto) are
 * appended to segment files in a directory; record i is leaf i of an RFC
 * 9162 Merkle tree; signed checkpoints (C2SP signed notes) commit to the
 * tree's size and root. The byte format is in docs/journal-format.md and at
 * the top of journal.c, together with what is fsynced before what.
 *
 * Usage by the gateway: open at start (recovery runs then), append batches
 * of records with one fdatasync per batch (group commit), answer ACCEPTED
 * once jx_journal_append returned, sign a checkpoint every N records or T
 * seconds, hand out proofs, destroy at stop.
 *
 * Not thread-safe: one thread appends, reads and proves at a time.
 */
#ifndef JX_JOURNAL_H
#define JX_JOURNAL_H

#include "error.h"
#include "merkle.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jx_journal jx_journal;

/* Values of JournalRecord.Event. */
typedef enum {
    JX_EVENT_UNSPECIFIED = 0,
    JX_EVENT_ACCEPTED = 1,
    JX_EVENT_REJECTED = 2,
    JX_EVENT_DELIVERED = 3,
    JX_EVENT_ACKNOWLEDGED = 4,
    JX_EVENT_EXPIRED = 5,
    JX_EVENT_CONFIG_CHANGED = 6,
    JX_EVENT_GATEWAY_STARTED = 7,
    JX_EVENT_GATEWAY_STOPPED = 8,
    JX_EVENT_CERTIFICATE = 9,
} jx_journal_event;

/* "ACCEPTED", ... ; NULL for values outside the enum. */
const char *jx_journal_event_name(jx_journal_event event);

/* The event named (case-insensitively), or JX_EVENT_UNSPECIFIED. */
jx_journal_event jx_journal_event_from_name(const char *name);

/* One record to append. Every pointer is borrowed for the duration of the
 * call and may be NULL (empty); the journal assigns the index. Byte fields
 * are (pointer, length) pairs; digests are 32 bytes when present. */
typedef struct {
    jx_journal_event event;
    int64_t time_ms; /* 0: the journal uses jx_now_ms() */
    const char *message_id;
    const char *sender;
    const char *recipient;
    const char *type;
    const char *case_id;
    const uint8_t *header;
    size_t header_len;
    const uint8_t *signature;
    size_t signature_len;
    const uint8_t *payload_sha256; /* 32 bytes or NULL */
    const char *reason_code;
    const char *reason;
    const uint8_t *config_sha256;      /* 32 bytes or NULL */
    const uint8_t *signer_cert_sha256; /* 32 bytes or NULL */
    const char *const *recipients;
    size_t recipients_count;
    const uint8_t *ack_envelope;
    size_t ack_envelope_len;
    const uint8_t *certificate; /* CERTIFICATE: DER */
    size_t certificate_len;
    const uint8_t *payload; /* kept only when the gateway is configured to */
    size_t payload_len;
    const char *detail;
} jx_journal_entry;

typedef struct {
    /* A segment is closed and a new one begun once it would grow beyond
     * this; 0 means the default of 64 MiB. At most 1 GiB. */
    uint64_t segment_max_bytes;
    /* Open without writing anything: no truncation of a torn tail (it is
     * reported and ignored), no repair of the tree file (a stale one is
     * rebuilt in a temporary file), no appends. For justx-audit. */
    bool read_only;
    /* Directory for that temporary tree file; NULL means $TMPDIR or /tmp. */
    const char *temporary_dir;
} jx_journal_options;

/* What recovery at open found and did. */
typedef struct {
    uint64_t records;      /* records in the journal after recovery */
    bool torn_tail;        /* a torn or corrupt tail record was cut off */
    char torn_segment[64]; /* its segment file */
    uint64_t torn_offset;  /* byte offset where the cut was made */
    uint64_t torn_bytes;   /* bytes cut off */
    bool torn_checkpoint;  /* an incomplete last checkpoint was cut off */
    uint64_t rehashed;     /* records whose leaf hashes were recomputed */
    uint64_t checkpoints;  /* checkpoints in the checkpoint file */
} jx_journal_recovery;

/* Opens the journal in directory dir, creating it (mode 0700) when it does
 * not exist (unless read-only), and recovers (see journal.c). options and
 * recovery may be NULL. Returns NULL with JOURNAL_CORRUPT when damage is
 * found anywhere but at the tail of the last segment, naming the segment
 * file and byte offset, or when a checkpoint covers records that are gone;
 * IO for file errors. */
jx_journal *jx_journal_open(const char *dir, const jx_journal_options *options,
                            jx_journal_recovery *recovery, jx_error *err);

/* Syncs (when writable) and closes. Safe twice. */
void jx_journal_destroy(jx_journal **self_p);

/* Appends count records and makes them durable with one fdatasync before
 * returning (group commit). *first_index (may be NULL) receives the index of
 * the first; the others follow in order. On failure nothing of the batch is
 * durable and the journal refuses further appends (JX_ERR_IO), since after a
 * failed fsync the state of the file is unknown; reopen to recover. */
int jx_journal_append(jx_journal *self, const jx_journal_entry *entries, size_t count,
                      uint64_t *first_index, jx_error *err);

/* The same without the fdatasync: the records are written (readable, in the
 * tree) but not durable until jx_journal_sync. */
int jx_journal_append_nosync(jx_journal *self, const jx_journal_entry *entries, size_t count,
                             uint64_t *first_index, jx_error *err);

/* Makes every appended record durable. */
int jx_journal_sync(jx_journal *self, jx_error *err);

/* Records appended, and records durable (<= size). */
uint64_t jx_journal_size(const jx_journal *self);
uint64_t jx_journal_durable_size(const jx_journal *self);

/* The stored bytes of record index (what the Merkle leaf hashes). Caller
 * frees *record. NOT_FOUND past the end, JOURNAL_CORRUPT when the frame's
 * checksum no longer matches. */
int jx_journal_read(jx_journal *self, uint64_t index, uint8_t **record, size_t *record_len,
                    jx_error *err);

/* Calls visit for every record from index `from` to the end, in order, with
 * the record's stored bytes (borrowed for the call). Stops early, returning
 * what visit returned, when visit returns nonzero; -1 with err on a read
 * failure; 0 otherwise. */
typedef int (*jx_journal_visit_fn)(void *ctx, uint64_t index, const uint8_t *record,
                                   size_t record_len);
int jx_journal_iterate(jx_journal *self, uint64_t from, jx_journal_visit_fn visit, void *ctx,
                       jx_error *err);

/* Leaf hash of record index, and the root of the first size records. */
int jx_journal_leaf_hash(jx_journal *self, uint64_t index, uint8_t out[JX_HASH_SIZE],
                         jx_error *err);
int jx_journal_root(jx_journal *self, uint64_t size, uint8_t out[JX_HASH_SIZE], jx_error *err);

/* Inclusion proof of record index in the tree of size records, and
 * consistency proof from size1 to size2 records; see merkle.h. */
int jx_journal_inclusion_proof(jx_journal *self, uint64_t index, uint64_t size,
                               uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err);
int jx_journal_consistency_proof(jx_journal *self, uint64_t size1, uint64_t size2,
                                 uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err);

/* Signs a checkpoint of every durable record (syncing first if needed) with
 * key under name origin, appends it durably to the checkpoint file and
 * returns the note (caller frees; note_len may be NULL). time_ms 0 means
 * now. A checkpoint of the same size as the latest is still written (it
 * refreshes the time). */
int jx_journal_checkpoint(jx_journal *self, EVP_PKEY *key, const char *origin, int64_t time_ms,
                          char **note, size_t *note_len, jx_error *err);

/* The latest checkpoint (caller frees), its tree size and time. NOT_FOUND
 * when none was signed yet. */
int jx_journal_latest_checkpoint(jx_journal *self, char **note, size_t *note_len, uint64_t *size,
                                 int64_t *time_ms, jx_error *err);

/* The newest checkpoint whose tree size is above index, i.e. one that
 * covers record index (caller frees). NOT_FOUND when none does yet. */
int jx_journal_checkpoint_covering(jx_journal *self, uint64_t index, char **note, size_t *note_len,
                                   jx_error *err);

/* Directory of the journal. Borrowed. */
const char *jx_journal_dir(const jx_journal *self);

#endif
