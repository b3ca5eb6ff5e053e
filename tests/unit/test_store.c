/* test_store.c — the adapter's durable store: outbox, sent, inbox, receipts,
 * file mode, damaged files, threads, and SIGKILL in the middle of writing. */
#include "store.h"

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char directory[64];
static char path[128];

static int remove_entry(const char *name, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(name);
}

static int setup(void **state)
{
    (void)state;
    strcpy(directory, "/tmp/jx-store-XXXXXX");
    if (mkdtemp(directory) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/adapter.db", directory);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(directory, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static jx_adapter_store *open_store(void)
{
    jx_error err;
    jx_adapter_store *store = jx_adapter_store_new(path, &err);
    if (store == NULL)
        fail_msg("opening %s: %s", path, err.message);
    return store;
}

static void digest_fill(uint8_t digest[32], uint8_t value)
{
    memset(digest, value, 32);
}

/* ---- outbox ---- */

typedef struct {
    char ids[16][40];
    int64_t sequences[16];
    size_t count;
    size_t stop_after; /* 0: never stop */
} id_list;

static int collect_outbox(const jx_adapter_store_outbox_entry *entry, void *arg)
{
    id_list *list = arg;
    assert_true(list->count < 16);
    snprintf(list->ids[list->count], sizeof list->ids[0], "%s", entry->message_id);
    list->sequences[list->count] = entry->sequence;
    list->count++;
    return list->stop_after && list->count == list->stop_after;
}

static void test_outbox_order_and_reopen(void **state)
{
    (void)state;
    jx_error err;
    jx_adapter_store *store = open_store();
    char id[40], envelope[64];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        snprintf(envelope, sizeof envelope, "envelope %d", i);
        assert_int_equal(jx_adapter_store_outbox_add(store, id, "justx.v1.SentenceOrder", "CASE-1",
                                                     "KG-PROBATION,KG-PRISON",
                                                     (const uint8_t *)envelope, strlen(envelope),
                                                     1000 + i, &err),
                         1);
    }
    /* The same message again changes nothing; a different one with its id is refused. */
    assert_int_equal(jx_adapter_store_outbox_add(store, "m-2", "justx.v1.SentenceOrder", "CASE-1",
                                                 "", (const uint8_t *)"envelope 2", 10, 5, &err),
                     0);
    assert_int_equal(jx_adapter_store_outbox_add(store, "m-2", "justx.v1.SentenceOrder", "CASE-1",
                                                 "", (const uint8_t *)"envelope X", 10, 5, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_DUPLICATE);
    assert_non_null(strstr(err.message, "m-2"));
    assert_non_null(strstr(err.message, path));

    /* Iterate with _next: insertion order, growing sequences. */
    jx_adapter_store_outbox_entry *entry = NULL;
    int64_t after = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(jx_adapter_store_outbox_next(store, after, &entry, &err), 1);
        snprintf(id, sizeof id, "m-%d", i);
        snprintf(envelope, sizeof envelope, "envelope %d", i);
        assert_string_equal(entry->message_id, id);
        assert_string_equal(entry->type, "justx.v1.SentenceOrder");
        assert_string_equal(entry->case_id, "CASE-1");
        assert_string_equal(entry->recipients, "KG-PROBATION,KG-PRISON");
        assert_int_equal(entry->envelope_len, strlen(envelope));
        assert_memory_equal(entry->envelope, envelope, strlen(envelope));
        assert_int_equal(entry->created_at_ms, 1000 + i);
        assert_true(entry->sequence > after);
        after = entry->sequence;
        jx_adapter_store_outbox_entry_destroy(&entry);
        jx_adapter_store_outbox_entry_destroy(&entry); /* safe twice */
        assert_null(entry);
    }
    assert_int_equal(jx_adapter_store_outbox_next(store, after, &entry, &err), 0);
    assert_null(entry);

    /* List with a limit, and a callback that stops early. */
    id_list list = {0};
    assert_int_equal(jx_adapter_store_outbox_list(store, 0, 2, collect_outbox, &list, &err), 0);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.ids[1], "m-1");
    memset(&list, 0, sizeof list);
    list.stop_after = 3;
    assert_int_equal(jx_adapter_store_outbox_list(store, 0, 0, collect_outbox, &list, &err), 0);
    assert_int_equal(list.count, 3);

    assert_int_equal(jx_adapter_store_outbox_remove(store, "m-1", &err), 1);
    assert_int_equal(jx_adapter_store_outbox_remove(store, "m-1", &err), 0);
    jx_adapter_store_destroy(&store);
    jx_adapter_store_destroy(&store); /* safe twice */
    assert_null(store);

    /* Everything survives close and reopen, in order, without the removed one. */
    store = open_store();
    memset(&list, 0, sizeof list);
    assert_int_equal(jx_adapter_store_outbox_list(store, 0, 0, collect_outbox, &list, &err), 0);
    assert_int_equal(list.count, 4);
    const char *expected[] = {"m-0", "m-2", "m-3", "m-4"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(list.ids[i], expected[i]);
        if (i > 0)
            assert_true(list.sequences[i] > list.sequences[i - 1]);
    }
    /* Sequences are never reused: a new entry comes after all of them. */
    assert_int_equal(jx_adapter_store_outbox_add(store, "m-5", "justx.v1.StatusUpdate", NULL, NULL,
                                                 (const uint8_t *)"e5", 2, 2000, &err),
                     1);
    assert_int_equal(jx_adapter_store_outbox_next(store, list.sequences[3], &entry, &err), 1);
    assert_string_equal(entry->message_id, "m-5");
    assert_string_equal(entry->case_id, "");
    assert_string_equal(entry->recipients, "");
    jx_adapter_store_outbox_entry_destroy(&entry);

    /* sent knows all six, the removed one no longer in the outbox. */
    jx_adapter_store_sent_entry *sent = NULL;
    assert_int_equal(jx_adapter_store_sent_get(store, "m-1", &sent, &err), 1);
    assert_string_equal(sent->status, "PENDING");
    assert_false(sent->in_outbox);
    assert_int_equal(sent->created_at_ms, 1001);
    jx_adapter_store_sent_entry_destroy(&sent);
    assert_int_equal(jx_adapter_store_sent_get(store, "m-3", &sent, &err), 1);
    assert_true(sent->in_outbox);
    jx_adapter_store_sent_entry_destroy(&sent);
    assert_int_equal(jx_adapter_store_sent_get(store, "nope", &sent, &err), 0);
    assert_null(sent);

    jx_adapter_store_counts counts;
    assert_int_equal(jx_adapter_store_count(store, &counts, &err), 0);
    assert_int_equal(counts.outbox_pending, 5);
    assert_int_equal(counts.sent, 6);
    assert_int_equal(counts.inbox, 0);
    assert_int_equal(counts.receipts, 0);

    /* Bad arguments are refused with words, not a crash. */
    assert_int_equal(
        jx_adapter_store_outbox_add(store, "", "t", NULL, NULL, (const uint8_t *)"e", 1, 0, &err),
        -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    jx_adapter_store_destroy(&store);
}

/* ---- inbox ---- */

typedef struct {
    char ids[16][40];
    bool consumed[16];
    size_t count;
    jx_adapter_store *store; /* when set, the callback consumes what it sees */
} inbox_seen;

static int collect_inbox(const jx_adapter_store_inbox_entry *entry, void *arg)
{
    inbox_seen *seen = arg;
    assert_true(seen->count < 16);
    snprintf(seen->ids[seen->count], sizeof seen->ids[0], "%s", entry->message_id);
    seen->consumed[seen->count] = entry->consumed;
    seen->count++;
    if (seen->store) {
        jx_error err;
        /* Calling the store from a callback must neither deadlock nor
         * disturb the listing. */
        assert_int_equal(
            jx_adapter_store_inbox_consume(seen->store, entry->sender, entry->message_id, 7, &err),
            1);
    }
    return 0;
}

static void test_inbox_dedup_and_consume(void **state)
{
    (void)state;
    jx_error err;
    jx_adapter_store *store = open_store();
    uint8_t digest[32];
    const char *senders[] = {"KG-PROSECUTOR", "KG-COURT-BISHKEK", "KG-PROSECUTOR"};
    const char *ids[] = {"a-1", "a-2", "a-3"};
    for (int i = 0; i < 3; i++) {
        digest_fill(digest, (uint8_t)(i + 1));
        char envelope[32];
        snprintf(envelope, sizeof envelope, "inbound %d", i);
        assert_int_equal(jx_adapter_store_inbox_add(
                             store, senders[i], ids[i], digest, "justx.v1.ProbationReferral",
                             "CASE-7", (const uint8_t *)envelope, strlen(envelope), 500 + i, &err),
                         1);
    }
    /* A redelivery of the same message: 0, nothing changes. */
    digest_fill(digest, 1);
    assert_int_equal(jx_adapter_store_inbox_add(store, "KG-PROSECUTOR", "a-1", digest, "x", "y",
                                                (const uint8_t *)"other bytes", 11, 999, &err),
                     0);
    /* The same id from another sender is another message. */
    assert_int_equal(jx_adapter_store_inbox_add(store, "KG-PRISON", "a-1", digest, "x", "",
                                                (const uint8_t *)"p", 1, 600, &err),
                     1);
    /* The same (sender, id) with another header: the sender reused an id. */
    digest_fill(digest, 9);
    assert_int_equal(jx_adapter_store_inbox_add(store, "KG-PROSECUTOR", "a-1", digest, "x", "",
                                                (const uint8_t *)"q", 1, 601, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_DUPLICATE);
    assert_non_null(strstr(err.message, "KG-PROSECUTOR"));
    assert_non_null(strstr(err.message, "a-1"));

    jx_adapter_store_inbox_entry *entry = NULL;
    assert_int_equal(jx_adapter_store_inbox_get(store, "KG-PROSECUTOR", "a-1", &entry, &err), 1);
    assert_memory_equal(entry->envelope, "inbound 0", 9);
    assert_int_equal(entry->envelope_len, 9);
    assert_int_equal(entry->received_at_ms, 500);
    assert_string_equal(entry->type, "justx.v1.ProbationReferral");
    assert_string_equal(entry->case_id, "CASE-7");
    digest_fill(digest, 1);
    assert_memory_equal(entry->header_sha256, digest, 32);
    assert_false(entry->consumed);
    jx_adapter_store_inbox_entry_destroy(&entry);
    assert_int_equal(jx_adapter_store_inbox_get(store, "KG-PRISON", "a-2", &entry, &err), 0);
    assert_null(entry);

    /* next_unconsumed walks in arrival order. */
    assert_int_equal(jx_adapter_store_inbox_next_unconsumed(store, 0, &entry, &err), 1);
    assert_string_equal(entry->message_id, "a-1");
    assert_string_equal(entry->sender, "KG-PROSECUTOR");
    int64_t first = entry->sequence;
    jx_adapter_store_inbox_entry_destroy(&entry);
    assert_int_equal(jx_adapter_store_inbox_next_unconsumed(store, first, &entry, &err), 1);
    assert_string_equal(entry->message_id, "a-2");
    jx_adapter_store_inbox_entry_destroy(&entry);

    /* Consuming is idempotent and takes the message out of "next unconsumed". */
    assert_int_equal(jx_adapter_store_inbox_consume(store, "KG-PROSECUTOR", "a-1", 800, &err), 1);
    assert_int_equal(jx_adapter_store_inbox_consume(store, "KG-PROSECUTOR", "a-1", 900, &err), 0);
    assert_int_equal(jx_adapter_store_inbox_consume(store, "KG-PROSECUTOR", "zzz", 900, &err), -1);
    assert_int_equal(err.code, JX_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "zzz"));
    assert_int_equal(jx_adapter_store_inbox_next_unconsumed(store, 0, &entry, &err), 1);
    assert_string_equal(entry->message_id, "a-2");
    jx_adapter_store_inbox_entry_destroy(&entry);
    assert_int_equal(jx_adapter_store_inbox_consume(store, "KG-COURT-BISHKEK", "a-2", 801, &err),
                     1);
    jx_adapter_store_destroy(&store);

    /* Consumption survives a restart; listing all vs. only unconsumed. */
    store = open_store();
    assert_int_equal(jx_adapter_store_inbox_get(store, "KG-PROSECUTOR", "a-1", &entry, &err), 1);
    assert_true(entry->consumed);
    assert_int_equal(entry->consumed_at_ms, 800);
    jx_adapter_store_inbox_entry_destroy(&entry);
    inbox_seen seen = {0};
    assert_int_equal(jx_adapter_store_inbox_list(store, false, 0, 0, collect_inbox, &seen, &err),
                     0);
    assert_int_equal(seen.count, 4);
    assert_string_equal(seen.ids[0], "a-1");
    assert_string_equal(seen.ids[3], "a-1"); /* KG-PRISON's */
    assert_true(seen.consumed[0]);
    assert_false(seen.consumed[2]);
    memset(&seen, 0, sizeof seen);
    seen.store = store;
    assert_int_equal(jx_adapter_store_inbox_list(store, true, 0, 0, collect_inbox, &seen, &err), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.ids[0], "a-3");
    assert_string_equal(seen.ids[1], "a-1");
    /* The callback consumed them: nothing is left to hand out. */
    assert_int_equal(jx_adapter_store_inbox_next_unconsumed(store, 0, &entry, &err), 0);

    jx_adapter_store_counts counts;
    assert_int_equal(jx_adapter_store_count(store, &counts, &err), 0);
    assert_int_equal(counts.inbox, 4);
    assert_int_equal(counts.inbox_unconsumed, 0);
    jx_adapter_store_destroy(&store);
}

/* ---- receipts ---- */

typedef struct {
    char text[16][80];
    int64_t last_sequence;
    size_t count;
} receipt_seen;

static int collect_receipt(const jx_adapter_store_receipt *receipt, void *arg)
{
    receipt_seen *seen = arg;
    assert_true(seen->count < 16);
    snprintf(seen->text[seen->count], sizeof seen->text[0], "%s %s %s %llu %.*s",
             receipt->message_id, receipt->status, receipt->recipient,
             (unsigned long long)receipt->journal_index, (int)receipt->receipt_len,
             (const char *)receipt->receipt);
    assert_true(receipt->sequence > seen->last_sequence);
    seen->last_sequence = receipt->sequence;
    seen->count++;
    return 0;
}

static void add_receipt(jx_adapter_store *store, const char *id, const char *status,
                        const char *recipient, uint64_t index, int expected)
{
    jx_error err;
    char bytes[32];
    snprintf(bytes, sizeof bytes, "r%llu", (unsigned long long)index);
    int rc = jx_adapter_store_receipt_add(store, id, status, recipient, "", "", index,
                                          (const uint8_t *)bytes, strlen(bytes),
                                          (int64_t)(10000 + index), &err);
    if (rc != expected)
        fail_msg("receipt %s %s %s: got %d, expected %d (%s)", id, status, recipient, rc, expected,
                 rc < 0 ? err.message : "");
}

static const char *sent_status(jx_adapter_store *store, const char *id)
{
    static char status[16];
    jx_error err;
    jx_adapter_store_sent_entry *sent = NULL;
    assert_int_equal(jx_adapter_store_sent_get(store, id, &sent, &err), 1);
    snprintf(status, sizeof status, "%s", sent->status);
    jx_adapter_store_sent_entry_destroy(&sent);
    return status;
}

static void test_receipts(void **state)
{
    (void)state;
    jx_error err;
    jx_adapter_store *store = open_store();
    const char *ids[] = {"s-1", "s-2", "s-3"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(jx_adapter_store_outbox_add(store, ids[i], "justx.v1.SentenceOrder", "C",
                                                     "", (const uint8_t *)ids[i], 3, i, &err),
                         1);

    add_receipt(store, "s-1", "ACCEPTED", NULL, 10, 1);
    add_receipt(store, "s-1", "ACCEPTED", "", 10, 0); /* resent: the same receipt again */
    assert_string_equal(sent_status(store, "s-1"), "ACCEPTED");
    /* ACCEPTED took s-1 out of the outbox in the same transaction. */
    jx_adapter_store_outbox_entry *entry = NULL;
    assert_int_equal(jx_adapter_store_outbox_next(store, 0, &entry, &err), 1);
    assert_string_equal(entry->message_id, "s-2");
    jx_adapter_store_outbox_entry_destroy(&entry);

    receipt_seen seen = {0};
    assert_int_equal(jx_adapter_store_receipts_list(store, 0, 0, collect_receipt, &seen, &err), 0);
    assert_int_equal(seen.count, 1);
    int64_t cursor = seen.last_sequence;

    add_receipt(store, "s-1", "DELIVERED", "KG-PROBATION", 11, 1);
    add_receipt(store, "s-1", "DELIVERED", "KG-PRISON", 12, 1);
    add_receipt(store, "s-1", "DELIVERED", "KG-PRISON", 12, 0);
    /* A DELIVERED overtaking its ACCEPTED (after a reconnect): the status
     * stays DELIVERED when the ACCEPTED comes. */
    add_receipt(store, "s-2", "DELIVERED", "KG-PRISON", 14, 1);
    add_receipt(store, "s-2", "ACCEPTED", "", 13, 1);
    assert_string_equal(sent_status(store, "s-2"), "DELIVERED");
    add_receipt(store, "s-3", "REJECTED", "", 15, 1);
    assert_string_equal(sent_status(store, "s-3"), "REJECTED");
    /* A receipt about a message this store never sent is kept all the same. */
    add_receipt(store, "elsewhere", "EXPIRED", "LV-PROBATION", (uint64_t)1 << 40, 1);

    /* Polling from the cursor sees exactly the new ones, in order. */
    memset(&seen, 0, sizeof seen);
    seen.last_sequence = cursor;
    assert_int_equal(jx_adapter_store_receipts_list(store, cursor, 0, collect_receipt, &seen, &err),
                     0);
    assert_int_equal(seen.count, 6);
    assert_string_equal(seen.text[0], "s-1 DELIVERED KG-PROBATION 11 r11");
    assert_string_equal(seen.text[5],
                        "elsewhere EXPIRED LV-PROBATION 1099511627776 r1099511627776");
    cursor = seen.last_sequence;
    memset(&seen, 0, sizeof seen);
    seen.last_sequence = cursor;
    assert_int_equal(jx_adapter_store_receipts_list(store, cursor, 0, collect_receipt, &seen, &err),
                     0);
    assert_int_equal(seen.count, 0);

    memset(&seen, 0, sizeof seen);
    assert_int_equal(jx_adapter_store_receipts_for(store, "s-1", collect_receipt, &seen, &err), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.text[0], "s-1 ACCEPTED  10 r10");
    assert_string_equal(seen.text[2], "s-1 DELIVERED KG-PRISON 12 r12");

    jx_adapter_store_sent_entry *sent = NULL;
    assert_int_equal(jx_adapter_store_sent_get(store, "s-1", &sent, &err), 1);
    assert_string_equal(sent->status, "DELIVERED");
    assert_int_equal(sent->delivered_count, 2);
    assert_int_equal(sent->expired_count, 0);
    assert_int_equal(sent->updated_at_ms, 10012);
    jx_adapter_store_sent_entry_destroy(&sent);

    jx_adapter_store_counts counts;
    assert_int_equal(jx_adapter_store_count(store, &counts, &err), 0);
    assert_int_equal(counts.outbox_pending, 0);
    assert_int_equal(counts.receipts, 7);

    assert_int_equal(jx_adapter_store_receipt_add(store, "s-1", "LOST", "", "", "", 1,
                                                  (const uint8_t *)"x", 1, 0, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "LOST"));
    jx_adapter_store_destroy(&store);

    /* Receipts and their order survive a restart. */
    store = open_store();
    memset(&seen, 0, sizeof seen);
    assert_int_equal(jx_adapter_store_receipts_list(store, 0, 3, collect_receipt, &seen, &err), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.text[2], "s-1 DELIVERED KG-PRISON 12 r12");
    jx_adapter_store_destroy(&store);
}

/* ---- the file ---- */

static void test_file_mode(void **state)
{
    (void)state;
    /* With umask 0 SQLite on its own would make the file 0644. */
    mode_t old_umask = umask(0);
    jx_adapter_store *store = open_store();
    umask(old_umask);
    jx_error err;
    assert_int_equal(
        jx_adapter_store_outbox_add(store, "f-1", "t", "", "", (const uint8_t *)"e", 1, 0, &err),
        1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(stat(wal, &st), 0); /* WAL mode is on */
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(jx_adapter_store_path(store), path);
    jx_adapter_store_destroy(&store);
}

static void write_file(const char *name, const void *bytes, size_t len)
{
    FILE *file = fopen(name, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(bytes, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
}

static void expect_refused(const char *name, jx_error_code code, const char *words)
{
    jx_error err;
    jx_adapter_store *store = jx_adapter_store_new(name, &err);
    if (store != NULL)
        fail_msg("%s was opened but should have been refused", name);
    if (err.code != code || strstr(err.message, name) == NULL || strstr(err.message, words) == NULL)
        fail_msg("%s: expected %s with \"%s\", got %s: %s", name, jx_error_code_name(code), words,
                 jx_error_code_name(err.code), err.message);
}

static void test_damaged_and_foreign_files(void **state)
{
    (void)state;
    char name[160];

    /* Random bytes. */
    uint8_t garbage[8192];
    srand(42);
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)rand();
    snprintf(name, sizeof name, "%s/garbage.db", directory);
    write_file(name, garbage, sizeof garbage);
    expect_refused(name, JX_ERR_STORE_CORRUPT, "not a database");

    /* A few bytes of text. */
    snprintf(name, sizeof name, "%s/short.db", directory);
    write_file(name, "hello, world\n", 13);
    expect_refused(name, JX_ERR_STORE_CORRUPT, "not a database");

    /* A real store whose pages were overwritten in the middle. */
    jx_error err;
    jx_adapter_store *store = open_store();
    uint8_t big[4000];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "c-%d", i);
        assert_int_equal(
            jx_adapter_store_outbox_add(store, id, "t", "", "", big, sizeof big, i, &err), 1);
    }
    jx_adapter_store_destroy(&store); /* checkpoints the WAL into the file */
    FILE *file = fopen(path, "r+b");
    assert_non_null(file);
    assert_int_equal(fseek(file, 4096, SEEK_SET), 0); /* page 2 onwards: schema and rows */
    assert_int_equal(fwrite(garbage, 1, sizeof garbage, file), sizeof garbage);
    assert_int_equal(fclose(file), 0);
    store = jx_adapter_store_new(path, &err);
    if (store != NULL) {
        /* SQLite may only notice when it reads the damaged pages. */
        jx_adapter_store_counts counts;
        int rc = jx_adapter_store_count(store, &counts, &err);
        jx_adapter_store_destroy(&store);
        assert_int_equal(rc, -1);
    }
    assert_int_equal(err.code, JX_ERR_STORE_CORRUPT);
    assert_non_null(strstr(err.message, path));

    /* Another program's SQLite database is not touched. */
    snprintf(name, sizeof name, "%s/other.db", directory);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(name, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(name, JX_ERR_STORE_CORRUPT, "something else");

    /* A store from a newer justx. */
    snprintf(name, sizeof name, "%s/newer.db", directory);
    store = jx_adapter_store_new(name, &err);
    assert_non_null(store);
    jx_adapter_store_destroy(&store);
    assert_int_equal(sqlite3_open(name, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(name, JX_ERR_STORE_CORRUPT, "newer");

    /* A directory that does not exist. */
    expect_refused("/nonexistent-jx-dir/adapter.db", JX_ERR_IO, "No such file");
}

/* ---- threads ---- */

enum { THREAD_MESSAGES = 50 };

static void *thread_adder(void *arg)
{
    jx_adapter_store *store = arg;
    static _Atomic int next_thread;
    int thread = next_thread++;
    for (int i = 0; i < THREAD_MESSAGES; i++) {
        char id[32];
        jx_error err;
        snprintf(id, sizeof id, "t%d-%d", thread, i);
        if (jx_adapter_store_outbox_add(store, id, "t", "", "", (const uint8_t *)id, strlen(id), i,
                                        &err) != 1)
            return strdup(err.message);
        uint8_t digest[32] = {(uint8_t)thread, (uint8_t)i};
        if (jx_adapter_store_inbox_add(store, "KG-PRISON", id, digest, "t", "", (const uint8_t *)id,
                                       strlen(id), i, &err) != 1)
            return strdup(err.message);
    }
    return NULL;
}

static int count_outbox(const jx_adapter_store_outbox_entry *entry, void *arg)
{
    (void)entry;
    (*(int *)arg)++;
    return 0;
}

static void test_threads_share_one_store(void **state)
{
    (void)state;
    jx_adapter_store *store = open_store();
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, thread_adder, store), 0);
    /* Read while they write. */
    for (int i = 0; i < 20; i++) {
        int seen = 0;
        jx_error err;
        assert_int_equal(jx_adapter_store_outbox_list(store, 0, 0, count_outbox, &seen, &err), 0);
    }
    for (int i = 0; i < 3; i++) {
        void *failure = NULL;
        pthread_join(threads[i], &failure);
        if (failure)
            fail_msg("thread %d: %s", i, (char *)failure);
    }
    jx_adapter_store_counts counts;
    jx_error err;
    assert_int_equal(jx_adapter_store_count(store, &counts, &err), 0);
    assert_int_equal(counts.outbox_pending, 3 * THREAD_MESSAGES);
    assert_int_equal(counts.inbox_unconsumed, 3 * THREAD_MESSAGES);
    jx_adapter_store_destroy(&store);
}

/* Two handles on one file, as the daemon and the CLI in two processes would
 * have: each sees what the other committed. */
static void test_two_handles_on_one_file(void **state)
{
    (void)state;
    jx_error err;
    jx_adapter_store *daemon = open_store();
    jx_adapter_store *cli = open_store();
    assert_int_equal(
        jx_adapter_store_outbox_add(daemon, "h-1", "t", "", "", (const uint8_t *)"e", 1, 0, &err),
        1);
    jx_adapter_store_sent_entry *sent = NULL;
    assert_int_equal(jx_adapter_store_sent_get(cli, "h-1", &sent, &err), 1);
    assert_true(sent->in_outbox);
    jx_adapter_store_sent_entry_destroy(&sent);
    add_receipt(cli, "h-1", "ACCEPTED", "", 1, 1);
    add_receipt(daemon, "h-1", "ACCEPTED", "", 1, 0);
    jx_adapter_store_outbox_entry *entry = NULL;
    assert_int_equal(jx_adapter_store_outbox_next(daemon, 0, &entry, &err), 0);
    jx_adapter_store_destroy(&cli);
    jx_adapter_store_destroy(&daemon);
}

/* ---- SIGKILL in the middle ---- */

enum { CRASH_ROUNDS = 20 };

/* The child adds outbox entries as fast as it can and reports each id on the
 * pipe only after the call returned. Whatever it reported must be there
 * after it is killed, whenever that happens. */
static void crash_child(int fd, int round)
{
    jx_error err;
    jx_adapter_store *store = jx_adapter_store_new(path, &err);
    if (store == NULL)
        _exit(2);
    uint8_t envelope[2048];
    memset(envelope, round, sizeof envelope);
    for (int i = 0;; i++) {
        char line[48];
        int n = snprintf(line, sizeof line, "k%02d-%06d\n", round, i);
        line[n - 1] = '\0';
        envelope[0] = (uint8_t)i;
        if (jx_adapter_store_outbox_add(store, line, "justx.v1.StatusUpdate", "", "", envelope,
                                        sizeof envelope, i, &err) != 1)
            _exit(3);
        line[n - 1] = '\n';
        if (write(fd, line, (size_t)n) != n)
            _exit(4);
    }
}

static void test_sigkill_loses_nothing_reported(void **state)
{
    (void)state;
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    size_t reported_total = 0;
    static char buffer[1 << 20];
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(fds[1], round);
        }
        close(fds[1]);
        struct timespec delay = {0, (long)(10 + rand() % 140) * 1000000L};
        nanosleep(&delay, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("round %d: the child ended on its own (status %d) before the kill", round,
                     WEXITSTATUS(status));

        size_t used = 0;
        ssize_t n;
        while ((n = read(fds[0], buffer + used, sizeof buffer - 1 - used)) > 0)
            used += (size_t)n;
        close(fds[0]);
        buffer[used] = '\0';

        jx_adapter_store *store = open_store();
        size_t reported = 0;
        for (char *line = strtok(buffer, "\n"); line; line = strtok(NULL, "\n")) {
            /* A line cut by the kill is not a report. */
            if (strlen(line) != 10)
                continue;
            jx_adapter_store_sent_entry *sent = NULL;
            jx_error err;
            if (jx_adapter_store_sent_get(store, line, &sent, &err) != 1 || !sent->in_outbox)
                fail_msg("round %d (seed %u): %s was reported stored but is not in %s", round, seed,
                         line, path);
            jx_adapter_store_sent_entry_destroy(&sent);
            reported++;
        }
        reported_total += reported;
        jx_adapter_store_destroy(&store);
    }
    /* If the child never got to report anything, the test proved nothing. */
    if (reported_total == 0)
        fail_msg("no child reported a stored message in %d rounds", CRASH_ROUNDS);
    print_message("SIGKILL test: %zu reported messages in %d rounds, all present\n", reported_total,
                  CRASH_ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox_order_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbox_dedup_and_consume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_and_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_one_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_on_one_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_loses_nothing_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
