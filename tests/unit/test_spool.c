/* test_spool.c — the gateway's spool: order, duplicates, acknowledgement,
 * expiry, receipts owed, and what survives a reopen. */
#include "spool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/jx-spool-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/spool.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char command[160];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    return system(command) == 0 ? 0 : -1;
}

static jx_spool *open_spool(void)
{
    jx_error err;
    jx_spool *spool = jx_spool_open(path, &err);
    if (spool == NULL)
        fail_msg("open: %s", err.message);
    return spool;
}

static void add(jx_spool *spool, const char *id, int64_t expires, const char *const *to, size_t n,
                uint8_t tag)
{
    jx_error err;
    uint8_t envelope[100];
    memset(envelope, tag, sizeof envelope);
    jx_spool_message message = {.sender = "KG-COURT-BISHKEK", .message_id = id,
                                .type = "justx.v1.SentenceOrder", .case_id = "UD-1",
                                .journal_index = tag, .accepted_at_ms = 1000,
                                .expires_at_ms = expires, .envelope = envelope,
                                .envelope_len = sizeof envelope};
    memset(message.header_sha256, tag, 32);
    assert_int_equal(jx_spool_add(spool, &message, to, n, &err), 0);
    assert_true(message.seq > 0);
}

typedef struct {
    int64_t seqs[16];
    uint8_t first_bytes[16];
    size_t count;
} collected;

static int collect(void *arg, const jx_spool_message *message)
{
    collected *c = arg;
    c->seqs[c->count] = message->seq;
    c->first_bytes[c->count++] = message->envelope_len ? message->envelope[0] : 0;
    return 0;
}

static void order_acknowledgement_and_reopen(void **state)
{
    (void)state;
    jx_error err;
    jx_spool *spool = open_spool();
    const char *both[] = {"KG-PROBATION", "KG-PRISON"};
    assert_int_equal(jx_spool_begin(spool, &err), 0);
    add(spool, "0190f2a0-0000-7000-8000-000000000001", 1LL << 50, both, 2, 1);
    add(spool, "0190f2a0-0000-7000-8000-000000000002", 1LL << 50, both, 1, 2);
    add(spool, "0190f2a0-0000-7000-8000-000000000003", 1LL << 50, both, 2, 3);
    assert_int_equal(jx_spool_commit(spool, &err), 0);

    collected probation = {0};
    assert_int_equal(jx_spool_pending(spool, "KG-PROBATION", 0, 10, collect, &probation, &err), 0);
    assert_int_equal(probation.count, 3);
    assert_true(probation.seqs[0] < probation.seqs[1] && probation.seqs[1] < probation.seqs[2]);
    assert_int_equal(probation.first_bytes[2], 3);
    collected prison = {0};
    assert_int_equal(jx_spool_pending(spool, "KG-PRISON", 0, 10, collect, &prison, &err), 0);
    assert_int_equal(prison.count, 2);

    /* an acknowledgement by digest, for the right recipient only */
    uint8_t digest[32];
    memset(digest, 1, 32);
    jx_spool_message found;
    assert_int_equal(jx_spool_find_pending(spool, "KG-PRISON", digest, &found, &err), 1);
    assert_string_equal(found.message_id, "0190f2a0-0000-7000-8000-000000000001");
    assert_int_equal(jx_spool_find_pending(spool, "LV-PROBATION", digest, &found, &err), 0);
    assert_int_equal(jx_spool_begin(spool, &err), 0);
    assert_int_equal(jx_spool_finish_delivery(spool, found.seq, "KG-PRISON",
                                              JX_DELIVERY_ACKNOWLEDGED, &err),
                     0);
    assert_int_equal(jx_spool_commit(spool, &err), 0);
    assert_int_equal(jx_spool_find_pending(spool, "KG-PRISON", digest, &found, &err), 0);
    jx_spool_destroy(&spool);
    jx_spool_destroy(&spool);

    /* after a reopen: the same pending deliveries, the duplicate check */
    spool = open_spool();
    prison = (collected){0};
    assert_int_equal(jx_spool_pending(spool, "KG-PRISON", 0, 10, collect, &prison, &err), 0);
    assert_int_equal(prison.count, 1);
    assert_int_equal(prison.first_bytes[0], 3);
    assert_int_equal(jx_spool_find(spool, "KG-COURT-BISHKEK",
                                   "0190f2a0-0000-7000-8000-000000000002", &found, &err),
                     1);
    assert_int_equal(found.journal_index, 2);
    assert_int_equal(jx_spool_find(spool, "KG-PROSECUTOR", "0190f2a0-0000-7000-8000-000000000002",
                                   &found, &err),
                     0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    jx_spool_destroy(&spool);
}

static void uncommitted_batch_is_lost(void **state)
{
    (void)state;
    jx_error err;
    jx_spool *spool = open_spool();
    const char *to[] = {"LV-PROBATION"};
    assert_int_equal(jx_spool_begin(spool, &err), 0);
    add(spool, "0190f2a0-0000-7000-8000-0000000000aa", 1LL << 50, to, 1, 9);
    jx_spool_rollback(spool);
    collected latvia = {0};
    assert_int_equal(jx_spool_pending(spool, "LV-PROBATION", 0, 10, collect, &latvia, &err), 0);
    assert_int_equal(latvia.count, 0);
    jx_spool_destroy(&spool);
}

static int count_expired(void *arg, const jx_spool_message *message, const char *recipient)
{
    (void)message;
    assert_string_equal(recipient, "KG-PRISON");
    (*(int *)arg)++;
    return 0;
}

static int collect_receipt(void *arg, int64_t id, uint64_t journal_index)
{
    collected *c = arg;
    c->seqs[c->count] = id;
    c->first_bytes[c->count++] = (uint8_t)journal_index;
    return 0;
}

static void expiry_and_receipts(void **state)
{
    (void)state;
    jx_error err;
    jx_spool *spool = open_spool();
    const char *to[] = {"KG-PRISON"};
    assert_int_equal(jx_spool_begin(spool, &err), 0);
    add(spool, "0190f2a0-0000-7000-8000-0000000000e1", 5000, to, 1, 21);
    assert_int_equal(jx_spool_commit(spool, &err), 0);
    int expired = 0;
    assert_int_equal(jx_spool_expired(spool, 4999, 10, count_expired, &expired, &err), 0);
    assert_int_equal(expired, 0);
    assert_int_equal(jx_spool_expired(spool, 5000, 10, count_expired, &expired, &err), 0);
    assert_int_equal(expired, 1);

    assert_int_equal(jx_spool_begin(spool, &err), 0);
    assert_int_equal(jx_spool_queue_receipt(spool, "KG-COURT-BISHKEK", 77, &err), 0);
    assert_int_equal(jx_spool_queue_receipt(spool, "KG-COURT-BISHKEK", 78, &err), 0);
    assert_int_equal(jx_spool_commit(spool, &err), 0);
    collected owed = {0};
    assert_int_equal(jx_spool_queued_receipts(spool, "KG-COURT-BISHKEK", 0, 10, collect_receipt,
                                              &owed, &err),
                     0);
    assert_int_equal(owed.count, 2);
    assert_int_equal(owed.first_bytes[1], 78);
    /* another agency cannot confirm them away; the owner can */
    assert_int_equal(jx_spool_begin(spool, &err), 0);
    assert_int_equal(jx_spool_drop_receipt(spool, "KG-PRISON", owed.seqs[0], &err), 0);
    assert_int_equal(jx_spool_drop_receipt(spool, "KG-COURT-BISHKEK", owed.seqs[0], &err), 0);
    assert_int_equal(jx_spool_commit(spool, &err), 0);
    int64_t after_first = owed.seqs[0];
    owed = (collected){0};
    assert_int_equal(jx_spool_queued_receipts(spool, "KG-COURT-BISHKEK", 0, 10, collect_receipt,
                                              &owed, &err),
                     0);
    assert_int_equal(owed.count, 1);
    assert_true(owed.seqs[0] > after_first);
    /* ids are never reused, even after every row is gone */
    assert_int_equal(jx_spool_begin(spool, &err), 0);
    assert_int_equal(jx_spool_drop_receipt(spool, "KG-COURT-BISHKEK", owed.seqs[0], &err), 0);
    assert_int_equal(jx_spool_queue_receipt(spool, "KG-COURT-BISHKEK", 79, &err), 0);
    assert_int_equal(jx_spool_commit(spool, &err), 0);
    int64_t last = owed.seqs[0];
    owed = (collected){0};
    jx_spool_queued_receipts(spool, "KG-COURT-BISHKEK", 0, 10, collect_receipt, &owed, &err);
    assert_int_equal(owed.count, 1);
    assert_true(owed.seqs[0] > last);
    jx_spool_destroy(&spool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_acknowledgement_and_reopen),
        cmocka_unit_test(uncommitted_batch_is_lost),
        cmocka_unit_test(expiry_and_receipts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
