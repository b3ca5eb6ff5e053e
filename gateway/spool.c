/* spool.c — accepted messages, their pending deliveries, owed receipts (SQLite).
 *
 * Durability: WAL journal mode with synchronous=FULL, so COMMIT returns only
 * after the WAL is fsynced. The broker commits the spool batch and fsyncs the
 * audit journal before it answers ACCEPTED; a crash before that loses only
 * messages nobody was told were accepted.
 *
 * Space: a message's envelope is dropped when its last delivery finishes; the
 * row itself stays until its expiry (it is the duplicate check) and is then
 * pruned.
 *
 * Sequence numbers (messages.seq, receipts.id) are AUTOINCREMENT: never
 * reused even after every row was deleted, because the broker keeps "sent
 * through seq N" cursors that a reused smaller number would hide behind.
 */
#include "spool.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

enum { SCHEMA_VERSION = 2 };

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS messages ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  sender TEXT NOT NULL,"
    "  message_id TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  case_id TEXT NOT NULL,"
    "  header_sha256 BLOB NOT NULL,"
    "  journal_index INTEGER NOT NULL,"
    "  accepted_at_ms INTEGER NOT NULL,"
    "  expires_at_ms INTEGER NOT NULL,"
    "  UNIQUE (sender, message_id));"
    /* Envelopes apart from the metadata: the rows every delivery and ack
     * touches stay small, and a delivered envelope is freed by one delete. */
    "CREATE TABLE IF NOT EXISTS envelopes ("
    "  seq INTEGER PRIMARY KEY REFERENCES messages (seq) ON DELETE CASCADE,"
    "  envelope BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_by_header ON messages (header_sha256);"
    "CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at_ms);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  seq INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,"
    "  recipient TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  PRIMARY KEY (recipient, seq)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (recipient, seq) "
    "  WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS deliveries_by_seq ON deliveries (seq);"
    "CREATE TABLE IF NOT EXISTS receipts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  agency TEXT NOT NULL,"
    "  journal_index INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS receipts_by_agency ON receipts (agency, id);"
    /* signer certificates already written to the journal (CERTIFICATE) */
    "CREATE TABLE IF NOT EXISTS certificates ("
    "  sha256 BLOB PRIMARY KEY) WITHOUT ROWID;";

enum statement {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT_MESSAGE,
    ST_INSERT_ENVELOPE,
    ST_INSERT_DELIVERY,
    ST_FIND,
    ST_FIND_PENDING,
    ST_PENDING,
    ST_FINISH,
    ST_COUNT_PENDING,
    ST_DROP_ENVELOPE,
    ST_EXPIRED,
    ST_PRUNE,
    ST_QUEUE_RECEIPT,
    ST_QUEUED_RECEIPTS,
    ST_DROP_RECEIPT,
    ST_DEPTHS,
    ST_CERTIFICATES,
    ST_ADD_CERTIFICATE,
    ST__COUNT
};

#define MESSAGE_COLUMNS                                                                            \
    "m.seq, m.sender, m.message_id, m.type, m.case_id, m.header_sha256, m.journal_index, "       \
    "m.accepted_at_ms, m.expires_at_ms"

static const char *const statement_sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_MESSAGE] =
        "INSERT INTO messages (sender, message_id, type, case_id, header_sha256, journal_index, "
        "accepted_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_INSERT_ENVELOPE] = "INSERT INTO envelopes (seq, envelope) VALUES (?1, ?2)",
    [ST_INSERT_DELIVERY] = "INSERT OR IGNORE INTO deliveries (seq, recipient, state) "
                           "VALUES (?1, ?2, 0)",
    [ST_FIND] = "SELECT " MESSAGE_COLUMNS " FROM messages m WHERE sender = ?1 AND message_id = ?2",
    /* CROSS JOIN fixes the order: the digest index finds the one message,
     * then the delivery's primary key; the other order would walk every
     * pending delivery of the recipient for each acknowledged digest. */
    [ST_FIND_PENDING] = "SELECT " MESSAGE_COLUMNS " FROM messages m INDEXED BY messages_by_header "
                        "CROSS JOIN deliveries d ON d.recipient = ?1 AND d.seq = m.seq "
                        "WHERE m.header_sha256 = ?2 AND d.state = 0",
    [ST_PENDING] = "SELECT " MESSAGE_COLUMNS ", e.envelope FROM deliveries d "
                   "JOIN messages m ON m.seq = d.seq JOIN envelopes e ON e.seq = d.seq "
                   "WHERE d.recipient = ?1 AND d.state = 0 AND d.seq > ?2 "
                   "ORDER BY d.seq LIMIT ?3",
    [ST_FINISH] = "UPDATE deliveries SET state = ?3 WHERE seq = ?1 AND recipient = ?2 "
                  "AND state = 0",
    [ST_COUNT_PENDING] = "SELECT count(*) FROM deliveries WHERE seq = ?1 AND state = 0",
    [ST_DROP_ENVELOPE] = "DELETE FROM envelopes WHERE seq = ?1",
    [ST_EXPIRED] = "SELECT " MESSAGE_COLUMNS ", d.recipient FROM messages m JOIN deliveries d "
                   "ON d.seq = m.seq WHERE m.expires_at_ms <= ?1 AND d.state = 0 "
                   "ORDER BY m.seq LIMIT ?2",
    [ST_PRUNE] = "DELETE FROM messages WHERE expires_at_ms < ?1 AND NOT EXISTS "
                 "(SELECT 1 FROM deliveries d WHERE d.seq = messages.seq AND d.state = 0)",
    [ST_QUEUE_RECEIPT] = "INSERT INTO receipts (agency, journal_index) VALUES (?1, ?2)",
    [ST_QUEUED_RECEIPTS] = "SELECT id, journal_index FROM receipts WHERE agency = ?1 AND id > ?2 "
                           "ORDER BY id LIMIT ?3",
    [ST_DROP_RECEIPT] = "DELETE FROM receipts WHERE id = ?2 AND agency = ?1",
    [ST_CERTIFICATES] = "SELECT sha256 FROM certificates",
    [ST_ADD_CERTIFICATE] = "INSERT OR IGNORE INTO certificates (sha256) VALUES (?1)",
    [ST_DEPTHS] = "SELECT d.recipient, count(*), min(m.accepted_at_ms) FROM deliveries d "
                  "JOIN messages m ON m.seq = d.seq WHERE d.state = 0 GROUP BY d.recipient "
                  "ORDER BY d.recipient",
};

struct jx_spool {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *statements[ST__COUNT];
    /* Copies of the strings of the last row found, so that statements can be
     * reset at once (an open read statement would hold back WAL checkpoints). */
    char found_sender[72], found_message_id[40], found_type[264], found_case_id[264];
};

static int sqlite_error(jx_spool *self, jx_error *err, const char *doing)
{
    return jx_error_set(err, JX_ERR_IO, "spool %s: cannot %s: %s", self->path, doing,
                        sqlite3_errmsg(self->db));
}

static sqlite3_stmt *statement(jx_spool *self, enum statement which)
{
    sqlite3_stmt *stmt = self->statements[which];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

jx_spool *jx_spool_open(const char *path, jx_error *err)
{
    jx_spool *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL) {
        free(self);
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory opening spool %s", path);
        return NULL;
    }
    /* Create the file with owner-only permissions before SQLite touches it. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        jx_error_set(err, JX_ERR_IO, "cannot create spool %s", path);
        goto failed;
    }
    close(fd);
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite_error(self, err, "open the database");
        goto failed;
    }
    sqlite3_busy_timeout(self->db, 5000);
    char *message = NULL;
    if (sqlite3_exec(self->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                     "PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456; "
                     "PRAGMA wal_autocheckpoint=16384;",
                     NULL, NULL, &message) != SQLITE_OK ||
        sqlite3_exec(self->db, schema, NULL, NULL, &message) != SQLITE_OK) {
        jx_error_set(err, JX_ERR_IO, "spool %s is not a usable justx spool: %s", path,
                     message ? message : sqlite3_errmsg(self->db));
        sqlite3_free(message);
        goto failed;
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", SCHEMA_VERSION);
    sqlite3_exec(self->db, pragma, NULL, NULL, NULL);
    for (int i = 0; i < ST__COUNT; i++) {
        if (sqlite3_prepare_v3(self->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &self->statements[i], NULL) != SQLITE_OK) {
            sqlite_error(self, err, "prepare its statements");
            goto failed;
        }
    }
    return self;
failed:
    jx_spool_destroy(&self);
    return NULL;
}

void jx_spool_destroy(jx_spool **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_spool *self = *self_p;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(self->statements[i]);
    sqlite3_close(self->db);
    free(self->path);
    free(self);
    *self_p = NULL;
}

static int step_done(jx_spool *self, sqlite3_stmt *stmt, jx_error *err, const char *doing)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_error(self, err, doing);
}

int jx_spool_begin(jx_spool *self, jx_error *err)
{
    return step_done(self, statement(self, ST_BEGIN), err, "begin a batch");
}

int jx_spool_commit(jx_spool *self, jx_error *err)
{
    return step_done(self, statement(self, ST_COMMIT), err, "commit a batch");
}

void jx_spool_rollback(jx_spool *self)
{
    sqlite3_step(statement(self, ST_ROLLBACK));
    sqlite3_reset(self->statements[ST_ROLLBACK]);
}

int jx_spool_add(jx_spool *self, jx_spool_message *message, const char *const *recipients,
                 size_t recipient_count, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_INSERT_MESSAGE);
    sqlite3_bind_text(stmt, 1, message->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, message->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, message->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, message->case_id ? message->case_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 5, message->header_sha256, 32, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, (sqlite3_int64)message->journal_index);
    sqlite3_bind_int64(stmt, 7, message->accepted_at_ms);
    sqlite3_bind_int64(stmt, 8, message->expires_at_ms);
    if (step_done(self, stmt, err, "store an accepted message") != 0)
        return -1;
    message->seq = sqlite3_last_insert_rowid(self->db);
    stmt = statement(self, ST_INSERT_ENVELOPE);
    sqlite3_bind_int64(stmt, 1, message->seq);
    sqlite3_bind_blob(stmt, 2, message->envelope, (int)message->envelope_len, SQLITE_STATIC);
    if (step_done(self, stmt, err, "store an accepted envelope") != 0)
        return -1;
    for (size_t i = 0; i < recipient_count; i++) {
        stmt = statement(self, ST_INSERT_DELIVERY);
        sqlite3_bind_int64(stmt, 1, message->seq);
        sqlite3_bind_text(stmt, 2, recipients[i], -1, SQLITE_STATIC);
        if (step_done(self, stmt, err, "store a delivery") != 0)
            return -1;
    }
    return 0;
}

/* Reads MESSAGE_COLUMNS (and the envelope at column 9 when with_envelope). */
static void read_message(sqlite3_stmt *stmt, jx_spool_message *out, bool with_envelope)
{
    memset(out, 0, sizeof *out);
    out->seq = sqlite3_column_int64(stmt, 0);
    out->sender = (const char *)sqlite3_column_text(stmt, 1);
    out->message_id = (const char *)sqlite3_column_text(stmt, 2);
    out->type = (const char *)sqlite3_column_text(stmt, 3);
    out->case_id = (const char *)sqlite3_column_text(stmt, 4);
    if (sqlite3_column_bytes(stmt, 5) == 32)
        memcpy(out->header_sha256, sqlite3_column_blob(stmt, 5), 32);
    out->journal_index = (uint64_t)sqlite3_column_int64(stmt, 6);
    out->accepted_at_ms = sqlite3_column_int64(stmt, 7);
    out->expires_at_ms = sqlite3_column_int64(stmt, 8);
    if (with_envelope) {
        out->envelope = sqlite3_column_blob(stmt, 9);
        out->envelope_len = (size_t)sqlite3_column_bytes(stmt, 9);
    }
}

static int find_one(jx_spool *self, sqlite3_stmt *stmt, jx_spool_message *out, jx_error *err)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        read_message(stmt, out, false);
        snprintf(self->found_sender, sizeof self->found_sender, "%s", out->sender);
        snprintf(self->found_message_id, sizeof self->found_message_id, "%s", out->message_id);
        snprintf(self->found_type, sizeof self->found_type, "%s", out->type);
        snprintf(self->found_case_id, sizeof self->found_case_id, "%s", out->case_id);
        out->sender = self->found_sender;
        out->message_id = self->found_message_id;
        out->type = self->found_type;
        out->case_id = self->found_case_id;
        sqlite3_reset(stmt);
        return 1;
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : sqlite_error(self, err, "look up a message");
}

int jx_spool_find(jx_spool *self, const char *sender, const char *message_id,
                  jx_spool_message *out, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_FIND);
    sqlite3_bind_text(stmt, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, message_id, -1, SQLITE_STATIC);
    return find_one(self, stmt, out, err);
}

int jx_spool_find_pending(jx_spool *self, const char *recipient, const uint8_t header_sha256[32],
                          jx_spool_message *out, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_FIND_PENDING);
    sqlite3_bind_text(stmt, 1, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, header_sha256, 32, SQLITE_STATIC);
    return find_one(self, stmt, out, err);
}

int jx_spool_pending(jx_spool *self, const char *recipient, int64_t after, size_t limit,
                     jx_spool_each_fn each, void *arg, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_PENDING);
    sqlite3_bind_text(stmt, 1, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, after);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        jx_spool_message message;
        read_message(stmt, &message, true);
        if (each(arg, &message) != 0)
            break;
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : sqlite_error(self, err, "list pending messages");
}

int jx_spool_finish_delivery(jx_spool *self, int64_t seq, const char *recipient,
                             jx_delivery_state state, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_FINISH);
    sqlite3_bind_int64(stmt, 1, seq);
    sqlite3_bind_text(stmt, 2, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 3, (int)state);
    if (step_done(self, stmt, err, "finish a delivery") != 0)
        return -1;
    stmt = statement(self, ST_COUNT_PENDING);
    sqlite3_bind_int64(stmt, 1, seq);
    int64_t still_pending = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 1;
    sqlite3_reset(stmt);
    if (still_pending > 0)
        return 0;
    stmt = statement(self, ST_DROP_ENVELOPE);
    sqlite3_bind_int64(stmt, 1, seq);
    return step_done(self, stmt, err, "reclaim a delivered message");
}

int jx_spool_expired(jx_spool *self, int64_t now_ms, size_t limit, jx_spool_expired_fn each,
                     void *arg, jx_error *err)
{
    /* Collected first: the callback finishes deliveries, which would disturb
     * a statement still stepping over them. */
    typedef struct {
        jx_spool_message message;
        char *strings[5];
    } expired_row;
    sqlite3_stmt *stmt = statement(self, ST_EXPIRED);
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)limit);
    expired_row *rows = calloc(limit ? limit : 1, sizeof *rows);
    size_t count = 0;
    int rc = SQLITE_DONE;
    while (rows && count < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        expired_row *row = &rows[count++];
        read_message(stmt, &row->message, false);
        row->strings[0] = strdup(row->message.sender);
        row->strings[1] = strdup(row->message.message_id);
        row->strings[2] = strdup(row->message.type);
        row->strings[3] = strdup(row->message.case_id);
        row->strings[4] = strdup((const char *)sqlite3_column_text(stmt, 9));
        row->message.sender = row->strings[0];
        row->message.message_id = row->strings[1];
        row->message.type = row->strings[2];
        row->message.case_id = row->strings[3];
    }
    sqlite3_reset(stmt);
    int result = rows == NULL ? jx_error_set(err, JX_ERR_SYSTEM, "out of memory listing expiry")
                 : rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                         : sqlite_error(self, err, "list expired");
    for (size_t i = 0; i < count; i++) {
        if (result == 0 && each(arg, &rows[i].message, rows[i].strings[4]) != 0)
            result = -1;
        for (int k = 0; k < 5; k++)
            free(rows[i].strings[k]);
    }
    free(rows);
    return result;
}

int jx_spool_prune(jx_spool *self, int64_t now_ms, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_PRUNE);
    sqlite3_bind_int64(stmt, 1, now_ms);
    return step_done(self, stmt, err, "prune finished messages");
}

int jx_spool_queue_receipt(jx_spool *self, const char *agency, uint64_t journal_index,
                           jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_QUEUE_RECEIPT);
    sqlite3_bind_text(stmt, 1, agency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (sqlite3_int64)journal_index);
    return step_done(self, stmt, err, "queue a receipt");
}

int jx_spool_queued_receipts(jx_spool *self, const char *agency, int64_t after, size_t limit,
                             jx_spool_receipt_fn each, void *arg, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_QUEUED_RECEIPTS);
    sqlite3_bind_text(stmt, 1, agency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, after);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (each(arg, sqlite3_column_int64(stmt, 0), (uint64_t)sqlite3_column_int64(stmt, 1)) != 0)
            break;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_error(self, err, "list receipts");
}

int jx_spool_drop_receipt(jx_spool *self, const char *agency, int64_t id, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_DROP_RECEIPT);
    sqlite3_bind_text(stmt, 1, agency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, id);
    return step_done(self, stmt, err, "drop a sent receipt");
}

int jx_spool_depths(jx_spool *self, jx_spool_depth_fn each, void *arg, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_DEPTHS);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (each(arg, (const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int64(stmt, 1),
                 sqlite3_column_int64(stmt, 2)) != 0)
            break;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_error(self, err, "count the spool");
}

int jx_spool_certificates(jx_spool *self, jx_spool_certificate_fn each, void *arg, jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_CERTIFICATES);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        if (sqlite3_column_bytes(stmt, 0) == 32 && each(arg, sqlite3_column_blob(stmt, 0)) != 0)
            break;
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : sqlite_error(self, err, "list certificates");
}

int jx_spool_add_certificate(jx_spool *self, const uint8_t sha256[32], jx_error *err)
{
    sqlite3_stmt *stmt = statement(self, ST_ADD_CERTIFICATE);
    sqlite3_bind_blob(stmt, 1, sha256, 32, SQLITE_STATIC);
    return step_done(self, stmt, err, "record a journaled certificate");
}
