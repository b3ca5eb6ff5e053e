/* store.c — an agency adapter's durable local store: outbox, sent, inbox, receipts.
 *
 * One SQLite file per adapter. Invariants:
 *
 * - A change is committed before the function that makes it returns success:
 *   WAL journal with synchronous=FULL fsyncs the WAL at every commit. Each
 *   change that touches several tables (outbox + sent, receipt + sent +
 *   outbox) is one transaction, so a crash never leaves half of it.
 * - Write transactions start with BEGIN IMMEDIATE: a check-then-insert (is
 *   this id known already?) holds the write lock from the check on, also
 *   against another process using the same file.
 * - The file is created by us with mode 0600 before SQLite opens it; SQLite
 *   gives its -wal and -shm files the mode of the database file.
 * - The schema version is PRAGMA user_version and the file is marked with
 *   PRAGMA application_id. migrations[v] takes a file from version v to v+1;
 *   an empty file (version 0) runs them all. A file of a newer version, or a
 *   foreign SQLite file, is refused rather than touched.
 * - Every statement is prepared once at open and reset after each use. All
 *   use of the connection happens under self->lock; callbacks are called
 *   after the rows were copied and the lock released, so a callback can use
 *   the store again without deadlock or disturbing a running statement.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "JXAS": justx adapter store. */
#define STORE_APPLICATION_ID  0x4a584153
#define STORE_BUSY_TIMEOUT_MS 5000

/* migrations[v] brings a file from schema version v to v + 1. Append only. */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE outbox ("
    "  sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  message_id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  case_id TEXT NOT NULL,"
    "  recipients TEXT NOT NULL,"
    "  envelope BLOB NOT NULL,"
    "  created_at_ms INTEGER NOT NULL);"
    "CREATE TABLE sent ("
    "  sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  message_id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  case_id TEXT NOT NULL,"
    "  recipients TEXT NOT NULL,"
    "  envelope_sha256 BLOB NOT NULL CHECK (length(envelope_sha256) = 32),"
    "  created_at_ms INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN"
    "    ('PENDING', 'ACCEPTED', 'REJECTED', 'DELIVERED', 'EXPIRED')),"
    "  updated_at_ms INTEGER NOT NULL);"
    "CREATE TABLE inbox ("
    "  sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  sender TEXT NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  header_sha256 BLOB NOT NULL CHECK (length(header_sha256) = 32),"
    "  type TEXT NOT NULL,"
    "  case_id TEXT NOT NULL,"
    "  envelope BLOB NOT NULL,"
    "  received_at_ms INTEGER NOT NULL,"
    "  consumed_at_ms INTEGER,"
    "  UNIQUE (sender, message_id));"
    "CREATE INDEX inbox_unconsumed ON inbox (sequence) WHERE consumed_at_ms IS NULL;"
    "CREATE TABLE receipts ("
    "  sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  message_id TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('ACCEPTED', 'REJECTED', 'DELIVERED', 'EXPIRED')),"
    "  recipient TEXT NOT NULL,"
    "  reason_code TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  journal_index INTEGER NOT NULL,"
    "  receipt BLOB NOT NULL,"
    "  received_at_ms INTEGER NOT NULL,"
    "  UNIQUE (message_id, status, recipient));",
};
enum { SCHEMA_VERSION = sizeof migrations / sizeof migrations[0] };

#define OUTBOX_COLUMNS "sequence, message_id, type, case_id, recipients, envelope, created_at_ms"
#define SENT_COLUMNS                                                                               \
    "s.sequence, s.message_id, s.type, s.case_id, s.recipients, s.created_at_ms, s.status,"        \
    " s.updated_at_ms,"                                                                            \
    " (SELECT count(*) FROM receipts r WHERE r.message_id = s.message_id"                          \
    "   AND r.status = 'DELIVERED'),"                                                              \
    " (SELECT count(*) FROM receipts r WHERE r.message_id = s.message_id"                          \
    "   AND r.status = 'EXPIRED'),"                                                                \
    " EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = s.message_id)"
#define INBOX_COLUMNS                                                                              \
    "sequence, sender, message_id, header_sha256, type, case_id, envelope, received_at_ms,"        \
    " consumed_at_ms"
#define RECEIPT_COLUMNS                                                                            \
    "sequence, message_id, status, recipient, reason_code, reason, journal_index, receipt,"        \
    " received_at_ms"

/* The rank that keeps a sent status from moving back; see store.h. */
#define STATUS_RANK(column)                                                                        \
    "(CASE " column " WHEN 'PENDING' THEN 0 WHEN 'ACCEPTED' THEN 1 WHEN 'DELIVERED' THEN 2"        \
    " WHEN 'EXPIRED' THEN 2 ELSE 3 END)"

typedef enum {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_SAVEPOINT,
    SQL_RELEASE,
    SQL_ROLLBACK_TO,
    SQL_SENT_DIGEST,
    SQL_OUTBOX_INSERT,
    SQL_SENT_INSERT,
    SQL_OUTBOX_AFTER,
    SQL_OUTBOX_DELETE,
    SQL_SENT_GET,
    SQL_SENT_AFTER,
    SQL_SENT_ADVANCE,
    SQL_INBOX_DIGEST,
    SQL_INBOX_INSERT,
    SQL_INBOX_GET,
    SQL_INBOX_AFTER,
    SQL_INBOX_UNCONSUMED_AFTER,
    SQL_INBOX_CONSUME,
    SQL_RECEIPT_INSERT,
    SQL_RECEIPTS_FOR,
    SQL_RECEIPTS_AFTER,
    SQL_COUNT,
    SQL__COUNT
} statement_id;

static const char *const statement_sql[SQL__COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_SAVEPOINT] = "SAVEPOINT operation",
    [SQL_RELEASE] = "RELEASE operation",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO operation",
    [SQL_SENT_DIGEST] = "SELECT envelope_sha256 FROM sent WHERE message_id = ?1",
    [SQL_OUTBOX_INSERT] = "INSERT INTO outbox (message_id, type, case_id, recipients, envelope,"
                          " created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQL_SENT_INSERT] = "INSERT INTO sent (message_id, type, case_id, recipients, envelope_sha256,"
                        " created_at_ms, status, updated_at_ms)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'PENDING', ?6)",
    [SQL_OUTBOX_AFTER] = "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE sequence > ?1"
                         " ORDER BY sequence LIMIT ?2",
    [SQL_OUTBOX_DELETE] = "DELETE FROM outbox WHERE message_id = ?1",
    [SQL_SENT_GET] = "SELECT " SENT_COLUMNS " FROM sent s WHERE s.message_id = ?1",
    [SQL_SENT_AFTER] = "SELECT " SENT_COLUMNS " FROM sent s WHERE s.sequence > ?1"
                       " ORDER BY s.sequence LIMIT ?2",
    [SQL_SENT_ADVANCE] =
        "UPDATE sent SET status = ?2, updated_at_ms = ?3"
        " WHERE message_id = ?1 AND " STATUS_RANK("status") " <= " STATUS_RANK("?2"),
    [SQL_INBOX_DIGEST] = "SELECT header_sha256 FROM inbox WHERE sender = ?1 AND message_id = ?2",
    [SQL_INBOX_INSERT] = "INSERT INTO inbox (sender, message_id, header_sha256, type, case_id,"
                         " envelope, received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQL_INBOX_GET] = "SELECT " INBOX_COLUMNS " FROM inbox WHERE sender = ?1 AND message_id = ?2",
    [SQL_INBOX_AFTER] = "SELECT " INBOX_COLUMNS " FROM inbox WHERE sequence > ?1"
                        " ORDER BY sequence LIMIT ?2",
    [SQL_INBOX_UNCONSUMED_AFTER] = "SELECT " INBOX_COLUMNS " FROM inbox WHERE sequence > ?1"
                                   " AND consumed_at_ms IS NULL ORDER BY sequence LIMIT ?2",
    [SQL_INBOX_CONSUME] = "UPDATE inbox SET consumed_at_ms = ?3"
                          " WHERE sender = ?1 AND message_id = ?2 AND consumed_at_ms IS NULL",
    [SQL_RECEIPT_INSERT] = "INSERT INTO receipts (message_id, status, recipient, reason_code,"
                           " reason, journal_index, receipt, received_at_ms)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                           " ON CONFLICT (message_id, status, recipient) DO NOTHING",
    [SQL_RECEIPTS_FOR] = "SELECT " RECEIPT_COLUMNS " FROM receipts WHERE message_id = ?1"
                         " ORDER BY sequence",
    [SQL_RECEIPTS_AFTER] = "SELECT " RECEIPT_COLUMNS " FROM receipts WHERE sequence > ?1"
                           " ORDER BY sequence LIMIT ?2",
    [SQL_COUNT] = "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM sent),"
                  " (SELECT count(*) FROM inbox),"
                  " (SELECT count(*) FROM inbox WHERE consumed_at_ms IS NULL),"
                  " (SELECT count(*) FROM receipts)",
};

struct jx_adapter_store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *statements[SQL__COUNT];
    pthread_mutex_t lock; /* recursive: a batch holds it across calls */
    bool in_batch;        /* inside jx_adapter_store_batch_begin/commit */
};

/* ---- errors ---- */

/* Fills err with "<what>: <SQLite's reason>" and a code that says what kind
 * of failure it was. Must be called with the lock held, before anything else
 * touches the connection, so that sqlite3_errmsg is still this failure's. */
static int store_fail(jx_adapter_store *self, jx_error *err, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int store_fail(jx_adapter_store *self, jx_error *err, const char *format, ...)
{
    char what[JX_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);

    int rc = self->db ? sqlite3_extended_errcode(self->db) & 0xff : SQLITE_NOMEM;
    const char *reason = self->db ? sqlite3_errmsg(self->db) : "out of memory";
    switch (rc) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return jx_error_set(err, JX_ERR_STORE_CORRUPT,
                            "%s: %s (the file is damaged or is not a justx adapter store)", what,
                            reason);
    case SQLITE_NOMEM:
        return jx_error_set(err, JX_ERR_SYSTEM, "%s: %s", what, reason);
    default:
        return jx_error_set(err, JX_ERR_IO, "%s: %s", what, reason);
    }
}

/* ---- small helpers ---- */

static const char *text_or_empty(const char *text)
{
    return text ? text : "";
}

static sqlite3_stmt *statement(jx_adapter_store *self, statement_id id)
{
    return self->statements[id];
}

/* Leaves a statement ready for its next use and drops references to the
 * caller's buffers. */
static void statement_done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

static int bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    return sqlite3_bind_text(stmt, index, text_or_empty(text), -1, SQLITE_STATIC);
}

static int bind_blob(sqlite3_stmt *stmt, int index, const void *bytes, size_t len)
{
    /* sqlite3_bind_blob wants a non-NULL pointer for an empty blob to store
     * a blob rather than NULL. */
    static const uint8_t empty[1];
    return sqlite3_bind_blob64(stmt, index, len ? bytes : empty, len, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. Returns SQLITE_DONE or the error. */
static int step_once(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE; /* PRAGMAs may answer with a row we do not need */
    return rc;
}

/* Inside a caller's batch, each operation is a savepoint: it still succeeds
 * or fails as a whole, and the batch's COMMIT makes them all durable. */
static int transaction_begin(jx_adapter_store *self)
{
    sqlite3_stmt *stmt = statement(self, self->in_batch ? SQL_SAVEPOINT : SQL_BEGIN);
    int rc = step_once(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int transaction_commit(jx_adapter_store *self)
{
    sqlite3_stmt *stmt = statement(self, self->in_batch ? SQL_RELEASE : SQL_COMMIT);
    int rc = step_once(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Rolls back if a transaction is open; keeps the failure's errmsg intact by
 * being called only after store_fail. */
static void transaction_rollback(jx_adapter_store *self)
{
    if (sqlite3_get_autocommit(self->db))
        return;
    if (self->in_batch) {
        sqlite3_stmt *stmt = statement(self, SQL_ROLLBACK_TO);
        sqlite3_step(stmt);
        sqlite3_reset(stmt);
        stmt = statement(self, SQL_RELEASE);
        sqlite3_step(stmt);
        sqlite3_reset(stmt);
        return;
    }
    sqlite3_stmt *stmt = statement(self, SQL_ROLLBACK);
    sqlite3_step(stmt);
    sqlite3_reset(stmt);
}

static char *column_text(sqlite3_stmt *stmt, int column)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    return strdup(text ? (const char *)text : "");
}

static uint8_t *column_blob(sqlite3_stmt *stmt, int column, size_t *len)
{
    const void *bytes = sqlite3_column_blob(stmt, column);
    int n = sqlite3_column_bytes(stmt, column);
    uint8_t *copy = malloc(n > 0 ? (size_t)n : 1);
    if (copy && n > 0)
        memcpy(copy, bytes, (size_t)n);
    *len = n > 0 ? (size_t)n : 0;
    return copy;
}

static void column_digest(sqlite3_stmt *stmt, int column, uint8_t digest[32])
{
    memset(digest, 0, 32);
    if (sqlite3_column_bytes(stmt, column) == 32)
        memcpy(digest, sqlite3_column_blob(stmt, column), 32);
}

static bool column_is_digest(sqlite3_stmt *stmt, int column, const uint8_t digest[32])
{
    return sqlite3_column_bytes(stmt, column) == 32 &&
           memcmp(sqlite3_column_blob(stmt, column), digest, 32) == 0;
}

static int sha256(const uint8_t *bytes, size_t len, uint8_t digest[32])
{
    return EVP_Digest(bytes, len, digest, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* SQL LIMIT for "at most limit rows, 0: all". */
static int64_t sql_limit(size_t limit)
{
    return limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit;
}

/* ---- rows to entries ---- */

/* The _destroy contract (free, set the caller's pointer to NULL, safe twice)
 * for every entry type; free_entry frees one entry and its fields. */
static void entry_destroy(void **entry_p, void (*free_entry)(void *entry))
{
    if (entry_p == NULL || *entry_p == NULL)
        return;
    free_entry(*entry_p);
    *entry_p = NULL;
}

/* How the rows of one table become entries: read copies the current row of
 * a statement (NULL when out of memory), free_entry frees such a copy, what
 * says what was being read in error sentences. */
typedef struct {
    void *(*read)(sqlite3_stmt *stmt);
    void (*free_entry)(void *entry);
    const char *what;
} row_kind;

static void outbox_entry_free(void *entry)
{
    jx_adapter_store_outbox_entry *outbox = entry;
    free(outbox->message_id);
    free(outbox->type);
    free(outbox->case_id);
    free(outbox->recipients);
    free(outbox->envelope);
    free(outbox);
}

void jx_adapter_store_outbox_entry_destroy(jx_adapter_store_outbox_entry **entry_p)
{
    entry_destroy((void **)entry_p, outbox_entry_free);
}

static void *outbox_entry_read(sqlite3_stmt *stmt)
{
    jx_adapter_store_outbox_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return NULL;
    entry->sequence = sqlite3_column_int64(stmt, 0);
    entry->message_id = column_text(stmt, 1);
    entry->type = column_text(stmt, 2);
    entry->case_id = column_text(stmt, 3);
    entry->recipients = column_text(stmt, 4);
    entry->envelope = column_blob(stmt, 5, &entry->envelope_len);
    entry->created_at_ms = sqlite3_column_int64(stmt, 6);
    if (!entry->message_id || !entry->type || !entry->case_id || !entry->recipients ||
        !entry->envelope)
        jx_adapter_store_outbox_entry_destroy(&entry);
    return entry;
}

static const row_kind OUTBOX_ROWS = {outbox_entry_read, outbox_entry_free, "read the outbox"};

static void sent_entry_free(void *entry)
{
    jx_adapter_store_sent_entry *sent = entry;
    free(sent->message_id);
    free(sent->type);
    free(sent->case_id);
    free(sent->recipients);
    free(sent->status);
    free(sent);
}

void jx_adapter_store_sent_entry_destroy(jx_adapter_store_sent_entry **entry_p)
{
    entry_destroy((void **)entry_p, sent_entry_free);
}

static void *sent_entry_read(sqlite3_stmt *stmt)
{
    jx_adapter_store_sent_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return NULL;
    entry->sequence = sqlite3_column_int64(stmt, 0);
    entry->message_id = column_text(stmt, 1);
    entry->type = column_text(stmt, 2);
    entry->case_id = column_text(stmt, 3);
    entry->recipients = column_text(stmt, 4);
    entry->created_at_ms = sqlite3_column_int64(stmt, 5);
    entry->status = column_text(stmt, 6);
    entry->updated_at_ms = sqlite3_column_int64(stmt, 7);
    entry->delivered_count = sqlite3_column_int64(stmt, 8);
    entry->expired_count = sqlite3_column_int64(stmt, 9);
    entry->in_outbox = sqlite3_column_int(stmt, 10) != 0;
    if (!entry->message_id || !entry->type || !entry->case_id || !entry->recipients ||
        !entry->status)
        jx_adapter_store_sent_entry_destroy(&entry);
    return entry;
}

static const row_kind SENT_ROWS = {sent_entry_read, sent_entry_free, "read the sent messages"};

static void inbox_entry_free(void *entry)
{
    jx_adapter_store_inbox_entry *inbox = entry;
    free(inbox->sender);
    free(inbox->message_id);
    free(inbox->type);
    free(inbox->case_id);
    free(inbox->envelope);
    free(inbox);
}

void jx_adapter_store_inbox_entry_destroy(jx_adapter_store_inbox_entry **entry_p)
{
    entry_destroy((void **)entry_p, inbox_entry_free);
}

static void *inbox_entry_read(sqlite3_stmt *stmt)
{
    jx_adapter_store_inbox_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return NULL;
    entry->sequence = sqlite3_column_int64(stmt, 0);
    entry->sender = column_text(stmt, 1);
    entry->message_id = column_text(stmt, 2);
    column_digest(stmt, 3, entry->header_sha256);
    entry->type = column_text(stmt, 4);
    entry->case_id = column_text(stmt, 5);
    entry->envelope = column_blob(stmt, 6, &entry->envelope_len);
    entry->received_at_ms = sqlite3_column_int64(stmt, 7);
    entry->consumed = sqlite3_column_type(stmt, 8) != SQLITE_NULL;
    entry->consumed_at_ms = entry->consumed ? sqlite3_column_int64(stmt, 8) : 0;
    if (!entry->sender || !entry->message_id || !entry->type || !entry->case_id || !entry->envelope)
        jx_adapter_store_inbox_entry_destroy(&entry);
    return entry;
}

static const row_kind INBOX_ROWS = {inbox_entry_read, inbox_entry_free, "read the inbox"};

static void receipt_free(void *entry)
{
    jx_adapter_store_receipt *receipt = entry;
    free(receipt->message_id);
    free(receipt->status);
    free(receipt->recipient);
    free(receipt->reason_code);
    free(receipt->reason);
    free(receipt->receipt);
    free(receipt);
}

void jx_adapter_store_receipt_destroy(jx_adapter_store_receipt **receipt_p)
{
    entry_destroy((void **)receipt_p, receipt_free);
}

static void *receipt_read(sqlite3_stmt *stmt)
{
    jx_adapter_store_receipt *receipt = calloc(1, sizeof *receipt);
    if (receipt == NULL)
        return NULL;
    receipt->sequence = sqlite3_column_int64(stmt, 0);
    receipt->message_id = column_text(stmt, 1);
    receipt->status = column_text(stmt, 2);
    receipt->recipient = column_text(stmt, 3);
    receipt->reason_code = column_text(stmt, 4);
    receipt->reason = column_text(stmt, 5);
    /* Stored as SQLite's signed 64-bit integer; journal indexes stay far
     * below 2^63, and the cast round-trips every value anyway. */
    receipt->journal_index = (uint64_t)sqlite3_column_int64(stmt, 6);
    receipt->receipt = column_blob(stmt, 7, &receipt->receipt_len);
    receipt->received_at_ms = sqlite3_column_int64(stmt, 8);
    if (!receipt->message_id || !receipt->status || !receipt->recipient || !receipt->reason_code ||
        !receipt->reason || !receipt->receipt)
        jx_adapter_store_receipt_destroy(&receipt);
    return receipt;
}

static const row_kind RECEIPT_ROWS = {receipt_read, receipt_free, "read the receipts"};

/* Rows copied out of a finished statement, to hand to callbacks after the
 * lock is released. */
typedef struct {
    const row_kind *kind;
    void **rows;
    size_t count;
    size_t capacity;
} row_list;

static void row_list_clear(row_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        list->kind->free_entry(list->rows[i]);
    free(list->rows);
    list->rows = NULL;
    list->count = list->capacity = 0;
}

/* Steps stmt (already bound) to the end, copying each row into list. Returns
 * 0, or -1 with err filled ("cannot <what>"). Resets stmt in any case. Lock
 * held. */
static int rows_collect(jx_adapter_store *self, sqlite3_stmt *stmt, row_list *list, jx_error *err)
{
    const char *what = list->kind->what;
    int result = -1;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (list->count == list->capacity) {
            size_t capacity = list->capacity ? list->capacity * 2 : 16;
            void **rows = realloc(list->rows, capacity * sizeof *rows);
            if (rows == NULL) {
                jx_error_set(err, JX_ERR_SYSTEM, "cannot %s of %s: out of memory", what,
                             self->path);
                goto done;
            }
            list->rows = rows;
            list->capacity = capacity;
        }
        void *row = list->kind->read(stmt);
        if (row == NULL) {
            jx_error_set(err, JX_ERR_SYSTEM, "cannot %s of %s: out of memory", what, self->path);
            goto done;
        }
        list->rows[list->count++] = row;
    }
    if (rc != SQLITE_DONE) {
        store_fail(self, err, "cannot %s of %s", what, self->path);
        goto done;
    }
    result = 0;
done:
    statement_done(stmt);
    return result;
}

/* Copies into list, under the lock, the rows of statement id (a "sequence >
 * ?1 ... LIMIT ?2" query) after after_sequence, at most limit (0: all). */
static int rows_after(jx_adapter_store *self, statement_id id, int64_t after_sequence, size_t limit,
                      row_list *list, jx_error *err)
{
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, id);
    sqlite3_bind_int64(stmt, 1, after_sequence);
    sqlite3_bind_int64(stmt, 2, sql_limit(limit));
    int result = rows_collect(self, stmt, list, err);
    pthread_mutex_unlock(&self->lock);
    return result;
}

/* Runs a statement expected to give at most one row and copies it into
 * *row_p. Returns 1, 0 (no row) or -1. Resets stmt. Lock held. */
static int row_fetch(jx_adapter_store *self, sqlite3_stmt *stmt, const row_kind *kind, void **row_p,
                     jx_error *err)
{
    int result = -1;
    *row_p = NULL;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        result = 0;
    } else if (rc == SQLITE_ROW) {
        *row_p = kind->read(stmt);
        if (*row_p == NULL)
            jx_error_set(err, JX_ERR_SYSTEM, "cannot %s of %s: out of memory", kind->what,
                         self->path);
        else
            result = 1;
    } else {
        store_fail(self, err, "cannot %s of %s", kind->what, self->path);
    }
    statement_done(stmt);
    return result;
}

/* The first row of statement id (as for rows_after) after after_sequence,
 * under the lock: 1 and *row_p, 0 when there is none, -1. */
static int row_after(jx_adapter_store *self, statement_id id, const row_kind *kind,
                     int64_t after_sequence, void **row_p, jx_error *err)
{
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, id);
    sqlite3_bind_int64(stmt, 1, after_sequence);
    sqlite3_bind_int64(stmt, 2, 1);
    int result = row_fetch(self, stmt, kind, row_p, err);
    pthread_mutex_unlock(&self->lock);
    return result;
}

/* ---- open and close ---- */

/* Creates path with mode 0600 if it does not exist, and makes the new
 * directory entry durable. SQLite would create it with 0644. */
static int file_create_private(const char *path, jx_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        return jx_error_set(err, JX_ERR_IO, "cannot create the adapter store %s: %s", path,
                            strerror(errno));
    }
    close(fd);

    char *copy = strdup(path);
    if (copy == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "cannot create %s: out of memory", path);
    char *slash = strrchr(copy, '/');
    const char *directory = ".";
    if (slash == copy)
        directory = "/";
    else if (slash) {
        *slash = '\0';
        directory = copy;
    }
    int result = 0;
    int dir_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) != 0)
        result = jx_error_set(err, JX_ERR_IO, "cannot make the creation of %s durable: %s", path,
                              strerror(errno));
    if (dir_fd >= 0)
        close(dir_fd);
    free(copy);
    return result;
}

/* Runs one PRAGMA (or other one-off statement) and returns its first column
 * as an integer in *value (may be NULL). Lock held or not yet shared. */
static int exec_pragma(jx_adapter_store *self, const char *sql, int64_t *value, jx_error *err)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(self->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return store_fail(self, err, "cannot open the adapter store %s (%s)", self->path, sql);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && value)
        *value = sqlite3_column_int64(stmt, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_fail(self, err, "cannot open the adapter store %s (%s)", self->path, sql);
        sqlite3_finalize(stmt);
        return -1;
    }
    sqlite3_finalize(stmt);
    return 0;
}

/* Brings the schema to SCHEMA_VERSION, one transaction per step. The
 * version is read again inside each transaction, so two processes opening a
 * new file at once do not both create the tables. */
static int schema_migrate(jx_adapter_store *self, jx_error *err)
{
    for (;;) {
        if (exec_pragma(self, "BEGIN IMMEDIATE", NULL, err) != 0)
            return -1;
        int64_t version = 0, application_id = 0, objects = 0;
        if (exec_pragma(self, "PRAGMA user_version", &version, err) != 0 ||
            exec_pragma(self, "PRAGMA application_id", &application_id, err) != 0 ||
            exec_pragma(self, "SELECT count(*) FROM sqlite_schema", &objects, err) != 0)
            goto fail;
        if (version == SCHEMA_VERSION && application_id == STORE_APPLICATION_ID) {
            exec_pragma(self, "ROLLBACK", NULL, NULL);
            return 0;
        }
        if (version == 0 ? (objects != 0 || application_id != 0)
                         : application_id != STORE_APPLICATION_ID) {
            jx_error_set(err, JX_ERR_STORE_CORRUPT,
                         "cannot open the adapter store %s: it is an SQLite database of something "
                         "else (application id %lld, %lld schema objects)",
                         self->path, (long long)application_id, (long long)objects);
            goto fail;
        }
        if (version < 0 || version > SCHEMA_VERSION) {
            jx_error_set(err, JX_ERR_STORE_CORRUPT,
                         "cannot open the adapter store %s: its schema version %lld is newer than "
                         "this justx knows (%d); use a newer justx",
                         self->path, (long long)version, SCHEMA_VERSION);
            goto fail;
        }
        if (sqlite3_exec(self->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK) {
            store_fail(self, err,
                       "cannot bring the adapter store %s from schema version %lld to %lld",
                       self->path, (long long)version, (long long)version + 1);
            goto fail;
        }
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)version + 1);
        if (exec_pragma(self, sql, NULL, err) != 0)
            goto fail;
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", STORE_APPLICATION_ID);
        if (exec_pragma(self, sql, NULL, err) != 0 || exec_pragma(self, "COMMIT", NULL, err) != 0)
            goto fail;
    }
fail:
    if (!sqlite3_get_autocommit(self->db))
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

jx_adapter_store *jx_adapter_store_new(const char *path, jx_error *err)
{
    if (path == NULL || *path == '\0') {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "the adapter store needs a file path");
        return NULL;
    }
    jx_adapter_store *self = calloc(1, sizeof *self);
    pthread_mutexattr_t recursive;
    pthread_mutexattr_init(&recursive);
    pthread_mutexattr_settype(&recursive, PTHREAD_MUTEX_RECURSIVE);
    if (self == NULL || (self->path = strdup(path)) == NULL ||
        pthread_mutex_init(&self->lock, &recursive) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "cannot open the adapter store %s: out of memory", path);
        if (self)
            free(self->path);
        free(self);
        return NULL;
    }
    if (file_create_private(path, err) != 0)
        goto fail;
    /* NOMUTEX: self->lock already serialises every use of the connection. */
    int rc = sqlite3_open_v2(
        path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        if (self->db)
            store_fail(self, err, "cannot open the adapter store %s", path);
        else
            jx_error_set(err, JX_ERR_SYSTEM, "cannot open the adapter store %s: out of memory",
                         path);
        goto fail;
    }
    sqlite3_busy_timeout(self->db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(self->db, 1);

    /* journal_mode is the first statement that reads the file, so a file
     * that is not a database fails here, with SQLite's "file is not a
     * database". */
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(self->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        store_fail(self, err, "cannot open the adapter store %s", path);
        sqlite3_finalize(stmt);
        goto fail;
    }
    const unsigned char *mode = sqlite3_column_text(stmt, 0);
    if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
        jx_error_set(err, JX_ERR_IO,
                     "cannot open the adapter store %s: SQLite refused write-ahead logging "
                     "(journal mode %s)",
                     path, mode ? (const char *)mode : "unknown");
        sqlite3_finalize(stmt);
        goto fail;
    }
    sqlite3_finalize(stmt);
    if (exec_pragma(self, "PRAGMA synchronous = FULL", NULL, err) != 0 ||
        exec_pragma(self, "PRAGMA foreign_keys = ON", NULL, err) != 0)
        goto fail;
    if (schema_migrate(self, err) != 0)
        goto fail;

    for (int i = 0; i < SQL__COUNT; i++) {
        if (sqlite3_prepare_v3(self->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &self->statements[i], NULL) != SQLITE_OK) {
            store_fail(self, err, "cannot open the adapter store %s (preparing \"%.60s\")", path,
                       statement_sql[i]);
            goto fail;
        }
    }
    return self;
fail:
    jx_adapter_store_destroy(&self);
    return NULL;
}

void jx_adapter_store_destroy(jx_adapter_store **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_adapter_store *self = *self_p;
    for (int i = 0; i < SQL__COUNT; i++)
        sqlite3_finalize(self->statements[i]);
    /* Closing checkpoints the WAL into the database when we are the last
     * connection; the WAL stays consistent if that does not happen. */
    sqlite3_close(self->db);
    pthread_mutex_destroy(&self->lock);
    free(self->path);
    free(self);
    *self_p = NULL;
}

const char *jx_adapter_store_path(jx_adapter_store *self)
{
    return self ? self->path : NULL;
}

/* ---- outbox ---- */

int jx_adapter_store_batch_begin(jx_adapter_store *self, jx_error *err)
{
    pthread_mutex_lock(&self->lock);
    if (self->in_batch || transaction_begin(self) != 0) {
        if (self->in_batch)
            jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "a batch of %s is already open", self->path);
        else
            store_fail(self, err, "cannot begin a batch in %s", self->path);
        pthread_mutex_unlock(&self->lock);
        return -1;
    }
    self->in_batch = true;
    return 0;
}

int jx_adapter_store_batch_commit(jx_adapter_store *self, jx_error *err)
{
    self->in_batch = false;
    int rc = 0;
    if (transaction_commit(self) != 0) {
        rc = store_fail(self, err, "cannot commit a batch in %s", self->path);
        transaction_rollback(self);
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* Inserts a row for message into outbox or sent, whose first six columns
 * are alike: id, type, case id, recipients, a blob (the envelope for
 * outbox, its digest for sent) and the creation time. Returns SQLite's. */
static int message_row_insert(jx_adapter_store *self, statement_id id,
                              const jx_adapter_store_new_message *message, const void *blob,
                              size_t blob_len)
{
    sqlite3_stmt *stmt = statement(self, id);
    bind_text(stmt, 1, message->message_id);
    bind_text(stmt, 2, message->type);
    bind_text(stmt, 3, message->case_id);
    bind_text(stmt, 4, message->recipients);
    bind_blob(stmt, 5, blob, blob_len);
    sqlite3_bind_int64(stmt, 6, message->created_at_ms);
    int rc = sqlite3_step(stmt);
    statement_done(stmt);
    return rc;
}

/* Inserts one message into outbox and sent inside the caller's transaction,
 * with the lock held. 1 added, 0 already there with the same bytes, -1 with
 * err (DUPLICATE for an id reused with other bytes). */
static int outbox_insert(jx_adapter_store *self, const jx_adapter_store_new_message *message,
                         jx_error *err)
{
    if (message->message_id == NULL || *message->message_id == '\0' || message->type == NULL ||
        message->envelope == NULL || message->envelope_len == 0)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "adding to the outbox needs a message id, a type and an envelope");
    uint8_t digest[32];
    if (sha256(message->envelope, message->envelope_len, digest) != 0)
        return jx_error_set_openssl(err, JX_ERR_SYSTEM, "cannot hash message %s",
                                    message->message_id);
    sqlite3_stmt *stmt = statement(self, SQL_SENT_DIGEST);
    bind_text(stmt, 1, message->message_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        bool same = column_is_digest(stmt, 0, digest);
        statement_done(stmt);
        if (same)
            return 0;
        return jx_error_set(err, JX_ERR_DUPLICATE,
                            "cannot add message %s to the outbox of %s: a different message with "
                            "this id was sent before",
                            message->message_id, self->path);
    }
    statement_done(stmt);
    if (rc == SQLITE_DONE &&
        message_row_insert(self, SQL_OUTBOX_INSERT, message, message->envelope,
                           message->envelope_len) == SQLITE_DONE &&
        message_row_insert(self, SQL_SENT_INSERT, message, digest, sizeof digest) == SQLITE_DONE)
        return 1;
    return store_fail(self, err, "cannot add message %s to the outbox of %s", message->message_id,
                      self->path);
}

int jx_adapter_store_outbox_add_many(jx_adapter_store *self,
                                     const jx_adapter_store_new_message *messages, size_t count,
                                     jx_error *err)
{
    if (self == NULL || (messages == NULL && count > 0))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no messages to add to the outbox");
    pthread_mutex_lock(&self->lock);
    int result = -1;
    if (transaction_begin(self) != 0) {
        store_fail(self, err, "cannot add %zu messages to the outbox of %s", count, self->path);
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        if (outbox_insert(self, &messages[i], err) < 0) {
            transaction_rollback(self);
            goto done;
        }
    }
    if (transaction_commit(self) != 0) {
        store_fail(self, err, "cannot add %zu messages to the outbox of %s", count, self->path);
        transaction_rollback(self);
        goto done;
    }
    result = 0;
done:
    pthread_mutex_unlock(&self->lock);
    return result;
}

int jx_adapter_store_outbox_add(jx_adapter_store *self, const char *message_id, const char *type,
                                const char *case_id, const char *recipients,
                                const uint8_t *envelope, size_t envelope_len, int64_t created_at_ms,
                                jx_error *err)
{
    if (self == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no store to add to");
    jx_adapter_store_new_message message = {message_id, type,         case_id,      recipients,
                                            envelope,   envelope_len, created_at_ms};
    pthread_mutex_lock(&self->lock);
    int result = -1;
    if (transaction_begin(self) != 0) {
        store_fail(self, err, "cannot add message %s to the outbox of %s", message_id, self->path);
        goto done;
    }
    result = outbox_insert(self, &message, err);
    if (result <= 0) {
        transaction_rollback(self); /* nothing was written */
    } else if (transaction_commit(self) != 0) {
        store_fail(self, err, "cannot add message %s to the outbox of %s", message_id, self->path);
        transaction_rollback(self);
        result = -1;
    }
done:
    pthread_mutex_unlock(&self->lock);
    return result;
}

int jx_adapter_store_outbox_next(jx_adapter_store *self, int64_t after_sequence,
                                 jx_adapter_store_outbox_entry **entry_p, jx_error *err)
{
    if (self == NULL || entry_p == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "outbox_next needs a store and entry_p");
    return row_after(self, SQL_OUTBOX_AFTER, &OUTBOX_ROWS, after_sequence, (void **)entry_p, err);
}

int jx_adapter_store_outbox_list(jx_adapter_store *self, int64_t after_sequence, size_t limit,
                                 jx_adapter_store_outbox_fn *fn, void *arg, jx_error *err)
{
    if (self == NULL || fn == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "outbox_list needs a store and fn");
    row_list list = {.kind = &OUTBOX_ROWS};
    int result = rows_after(self, SQL_OUTBOX_AFTER, after_sequence, limit, &list, err);
    for (size_t i = 0; result == 0 && i < list.count; i++)
        if (fn(list.rows[i], arg) != 0)
            break;
    row_list_clear(&list);
    return result;
}

int jx_adapter_store_outbox_remove(jx_adapter_store *self, const char *message_id, jx_error *err)
{
    if (self == NULL || message_id == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "removing from the outbox needs a message id");
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, SQL_OUTBOX_DELETE);
    bind_text(stmt, 1, message_id);
    int rc = sqlite3_step(stmt);
    int result = sqlite3_changes(self->db) > 0 ? 1 : 0;
    if (rc != SQLITE_DONE)
        result = store_fail(self, err, "cannot remove message %s from the outbox of %s", message_id,
                            self->path);
    statement_done(stmt);
    pthread_mutex_unlock(&self->lock);
    return result;
}

/* ---- sent ---- */

int jx_adapter_store_sent_get(jx_adapter_store *self, const char *message_id,
                              jx_adapter_store_sent_entry **entry_p, jx_error *err)
{
    if (self == NULL || message_id == NULL || entry_p == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "sent_get needs a message id");
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, SQL_SENT_GET);
    bind_text(stmt, 1, message_id);
    int result = row_fetch(self, stmt, &SENT_ROWS, (void **)entry_p, err);
    pthread_mutex_unlock(&self->lock);
    return result;
}

int jx_adapter_store_sent_list(jx_adapter_store *self, int64_t after_sequence, size_t limit,
                               jx_adapter_store_sent_fn *fn, void *arg, jx_error *err)
{
    if (self == NULL || fn == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "sent_list needs a store and fn");
    row_list list = {.kind = &SENT_ROWS};
    int result = rows_after(self, SQL_SENT_AFTER, after_sequence, limit, &list, err);
    for (size_t i = 0; result == 0 && i < list.count; i++)
        if (fn(list.rows[i], arg) != 0)
            break;
    row_list_clear(&list);
    return result;
}

/* ---- inbox ---- */

int jx_adapter_store_inbox_add(jx_adapter_store *self, const char *sender, const char *message_id,
                               const uint8_t header_sha256[32], const char *type,
                               const char *case_id, const uint8_t *envelope, size_t envelope_len,
                               int64_t received_at_ms, jx_error *err)
{
    if (self == NULL || sender == NULL || *sender == '\0' || message_id == NULL ||
        *message_id == '\0' || header_sha256 == NULL || type == NULL || envelope == NULL ||
        envelope_len == 0)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "adding to the inbox needs a sender, a message id, a header digest, "
                            "a type and an envelope");
    int result = -1;
    pthread_mutex_lock(&self->lock);
    if (transaction_begin(self) != 0) {
        store_fail(self, err, "cannot add message %s from %s to the inbox of %s", message_id,
                   sender, self->path);
        goto done;
    }
    sqlite3_stmt *stmt = statement(self, SQL_INBOX_DIGEST);
    bind_text(stmt, 1, sender);
    bind_text(stmt, 2, message_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        bool same = column_is_digest(stmt, 0, header_sha256);
        statement_done(stmt);
        transaction_rollback(self);
        if (same)
            result = 0;
        else
            jx_error_set(err, JX_ERR_DUPLICATE,
                         "%s sent message id %s twice for different messages (the headers "
                         "differ); the first one, in %s, is kept",
                         sender, message_id, self->path);
        goto done;
    }
    statement_done(stmt);
    if (rc != SQLITE_DONE)
        goto fail;

    stmt = statement(self, SQL_INBOX_INSERT);
    bind_text(stmt, 1, sender);
    bind_text(stmt, 2, message_id);
    bind_blob(stmt, 3, header_sha256, 32);
    bind_text(stmt, 4, type);
    bind_text(stmt, 5, case_id);
    bind_blob(stmt, 6, envelope, envelope_len);
    sqlite3_bind_int64(stmt, 7, received_at_ms);
    rc = sqlite3_step(stmt);
    statement_done(stmt);
    if (rc != SQLITE_DONE || transaction_commit(self) != 0)
        goto fail;
    result = 1;
    goto done;
fail:
    store_fail(self, err, "cannot add message %s from %s to the inbox of %s", message_id, sender,
               self->path);
    transaction_rollback(self);
done:
    pthread_mutex_unlock(&self->lock);
    return result;
}

int jx_adapter_store_inbox_get(jx_adapter_store *self, const char *sender, const char *message_id,
                               jx_adapter_store_inbox_entry **entry_p, jx_error *err)
{
    if (self == NULL || sender == NULL || message_id == NULL || entry_p == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "inbox_get needs a sender and a message id");
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, SQL_INBOX_GET);
    bind_text(stmt, 1, sender);
    bind_text(stmt, 2, message_id);
    int result = row_fetch(self, stmt, &INBOX_ROWS, (void **)entry_p, err);
    pthread_mutex_unlock(&self->lock);
    return result;
}

int jx_adapter_store_inbox_next_unconsumed(jx_adapter_store *self, int64_t after_sequence,
                                           jx_adapter_store_inbox_entry **entry_p, jx_error *err)
{
    if (self == NULL || entry_p == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "inbox_next_unconsumed needs a store and entry_p");
    return row_after(self, SQL_INBOX_UNCONSUMED_AFTER, &INBOX_ROWS, after_sequence,
                     (void **)entry_p, err);
}

int jx_adapter_store_inbox_list(jx_adapter_store *self, bool only_unconsumed,
                                int64_t after_sequence, size_t limit, jx_adapter_store_inbox_fn *fn,
                                void *arg, jx_error *err)
{
    if (self == NULL || fn == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "inbox_list needs a store and fn");
    row_list list = {.kind = &INBOX_ROWS};
    int result = rows_after(self, only_unconsumed ? SQL_INBOX_UNCONSUMED_AFTER : SQL_INBOX_AFTER,
                            after_sequence, limit, &list, err);
    for (size_t i = 0; result == 0 && i < list.count; i++)
        if (fn(list.rows[i], arg) != 0)
            break;
    row_list_clear(&list);
    return result;
}

int jx_adapter_store_inbox_consume(jx_adapter_store *self, const char *sender,
                                   const char *message_id, int64_t consumed_at_ms, jx_error *err)
{
    if (self == NULL || sender == NULL || message_id == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "inbox_consume needs a sender and a message id");
    int result = -1;
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, SQL_INBOX_CONSUME);
    bind_text(stmt, 1, sender);
    bind_text(stmt, 2, message_id);
    sqlite3_bind_int64(stmt, 3, consumed_at_ms);
    int rc = sqlite3_step(stmt);
    int changed = sqlite3_changes(self->db);
    if (rc != SQLITE_DONE) {
        store_fail(self, err, "cannot mark message %s from %s as taken in %s", message_id, sender,
                   self->path);
        statement_done(stmt);
        goto done;
    }
    statement_done(stmt);
    if (changed > 0) {
        result = 1;
        goto done;
    }
    /* Nothing changed: consumed before, or not there at all. */
    stmt = statement(self, SQL_INBOX_DIGEST);
    bind_text(stmt, 1, sender);
    bind_text(stmt, 2, message_id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        result = 0;
    else if (rc == SQLITE_DONE)
        jx_error_set(err, JX_ERR_NOT_FOUND, "there is no message %s from %s in the inbox of %s",
                     message_id, sender, self->path);
    else
        store_fail(self, err, "cannot mark message %s from %s as taken in %s", message_id, sender,
                   self->path);
    statement_done(stmt);
done:
    pthread_mutex_unlock(&self->lock);
    return result;
}

/* ---- receipts ---- */

static bool receipt_status_is_valid(const char *status)
{
    return strcmp(status, "ACCEPTED") == 0 || strcmp(status, "REJECTED") == 0 ||
           strcmp(status, "DELIVERED") == 0 || strcmp(status, "EXPIRED") == 0;
}

int jx_adapter_store_receipt_add(jx_adapter_store *self, const char *message_id, const char *status,
                                 const char *recipient, const char *reason_code, const char *reason,
                                 uint64_t journal_index, const uint8_t *receipt, size_t receipt_len,
                                 int64_t received_at_ms, jx_error *err)
{
    if (self == NULL || message_id == NULL || *message_id == '\0' || status == NULL ||
        (receipt == NULL && receipt_len > 0))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "adding a receipt needs a message id and a status");
    if (!receipt_status_is_valid(status))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "a receipt for message %s has status \"%s\"; expected ACCEPTED, "
                            "REJECTED, DELIVERED or EXPIRED",
                            message_id, status);
    if (journal_index > INT64_MAX)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "a receipt for message %s has journal index %llu, beyond 2^63",
                            message_id, (unsigned long long)journal_index);
    int result = -1;
    pthread_mutex_lock(&self->lock);
    if (transaction_begin(self) != 0)
        goto fail;
    sqlite3_stmt *stmt = statement(self, SQL_RECEIPT_INSERT);
    bind_text(stmt, 1, message_id);
    bind_text(stmt, 2, status);
    bind_text(stmt, 3, recipient);
    bind_text(stmt, 4, reason_code);
    bind_text(stmt, 5, reason);
    sqlite3_bind_int64(stmt, 6, (int64_t)journal_index);
    bind_blob(stmt, 7, receipt, receipt_len);
    sqlite3_bind_int64(stmt, 8, received_at_ms);
    int rc = sqlite3_step(stmt);
    int changed = sqlite3_changes(self->db);
    statement_done(stmt);
    if (rc != SQLITE_DONE)
        goto fail;
    if (changed == 0) {
        transaction_rollback(self);
        result = 0;
        goto done;
    }

    stmt = statement(self, SQL_SENT_ADVANCE);
    bind_text(stmt, 1, message_id);
    bind_text(stmt, 2, status);
    sqlite3_bind_int64(stmt, 3, received_at_ms);
    rc = sqlite3_step(stmt);
    statement_done(stmt);
    if (rc != SQLITE_DONE)
        goto fail;

    stmt = statement(self, SQL_OUTBOX_DELETE);
    bind_text(stmt, 1, message_id);
    rc = sqlite3_step(stmt);
    statement_done(stmt);
    if (rc != SQLITE_DONE || transaction_commit(self) != 0)
        goto fail;
    result = 1;
    goto done;
fail:
    store_fail(self, err, "cannot add the %s receipt for message %s to %s", status, message_id,
               self->path);
    transaction_rollback(self);
done:
    pthread_mutex_unlock(&self->lock);
    return result;
}

int jx_adapter_store_receipts_for(jx_adapter_store *self, const char *message_id,
                                  jx_adapter_store_receipt_fn *fn, void *arg, jx_error *err)
{
    if (self == NULL || message_id == NULL || fn == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "receipts_for needs a store, a message id and fn");
    row_list list = {.kind = &RECEIPT_ROWS};
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, SQL_RECEIPTS_FOR);
    bind_text(stmt, 1, message_id);
    int result = rows_collect(self, stmt, &list, err);
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; result == 0 && i < list.count; i++)
        if (fn(list.rows[i], arg) != 0)
            break;
    row_list_clear(&list);
    return result;
}

int jx_adapter_store_receipts_list(jx_adapter_store *self, int64_t since_sequence, size_t limit,
                                   jx_adapter_store_receipt_fn *fn, void *arg, jx_error *err)
{
    if (self == NULL || fn == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "receipts_list needs a store and fn");
    row_list list = {.kind = &RECEIPT_ROWS};
    int result = rows_after(self, SQL_RECEIPTS_AFTER, since_sequence, limit, &list, err);
    for (size_t i = 0; result == 0 && i < list.count; i++)
        if (fn(list.rows[i], arg) != 0)
            break;
    row_list_clear(&list);
    return result;
}

/* ---- status ---- */

int jx_adapter_store_count(jx_adapter_store *self, jx_adapter_store_counts *counts, jx_error *err)
{
    if (self == NULL || counts == NULL)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "count needs a store and counts");
    memset(counts, 0, sizeof *counts);
    int result = -1;
    pthread_mutex_lock(&self->lock);
    sqlite3_stmt *stmt = statement(self, SQL_COUNT);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        store_fail(self, err, "cannot count the messages in %s", self->path);
    } else {
        counts->outbox_pending = sqlite3_column_int64(stmt, 0);
        counts->sent = sqlite3_column_int64(stmt, 1);
        counts->inbox = sqlite3_column_int64(stmt, 2);
        counts->inbox_unconsumed = sqlite3_column_int64(stmt, 3);
        counts->receipts = sqlite3_column_int64(stmt, 4);
        result = 0;
    }
    statement_done(stmt);
    pthread_mutex_unlock(&self->lock);
    return result;
}
