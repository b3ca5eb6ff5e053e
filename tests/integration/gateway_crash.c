/* gateway_crash.c — kill -9 the gateway while 5,000 messages stream through.
 *
 * Three senders run in their own threads, each through its own adapter:
 *   prosecutor -> probation          ProbationReferral   (REFERRALS)
 *   probation  -> court, prosecutor  StatusUpdate        (UPDATES, fan-out)
 *   court      -> probation, prison  SentenceOrder       (ORDERS, fan-out)
 * spreading its messages over STREAM_MS. Meanwhile the main thread kills
 * the gateway with SIGKILL at random moments (KILLS times, and once stops
 * it with SIGTERM under load; the seed is printed and can be set with
 * JX_TEST_SEED) and restarts it after a random pause.
 *
 * Afterwards, within a time bound:
 *   - every message each adapter put into its outbox was answered ACCEPTED
 *     by a receipt that verified (none REJECTED, none left in an outbox);
 *   - every accepted message is in the inbox of every recipient its route
 *     names, and no inbox holds anything else: inbox counts equal the
 *     distinct (sender, id) pairs expected (the adapters de-duplicate);
 *   - every sender holds a DELIVERED receipt per recipient;
 *   - per (sender, recipient), messages arrived in acceptance order;
 *   - the gateway stops cleanly, and `justx-audit verify` accepts the
 *     journal, which holds an ACCEPTED record for every message.
 */
#include "gwtest.h"

#include "journal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef JX_AUDIT_BIN
#error "JX_AUDIT_BIN must name the justx-audit executable"
#endif

enum {
    REFERRALS = 2000,
    UPDATES = 1500,
    ORDERS = 1500,
    TOTAL = REFERRALS + UPDATES + ORDERS,
    KILLS = 4,
    CLEAN_STOP_AT = 2, /* the third interruption is SIGTERM, the others SIGKILL */
    PAYLOAD_BYTES = 1024,
    STREAM_MS = 10000, /* each sender spreads its messages over this long */
    CONVERGE_MS = 150000,
};

static const char COURT[] = "KG-COURT-BISHKEK";
static const char PROSECUTOR[] = "KG-PROSECUTOR";
static const char PROBATION[] = "KG-PROBATION";
static const char PRISON[] = "KG-PRISON";

typedef struct {
    const char *sender;
    const char *type;
    const char *recipients[2];
    int n_recipients;
    int count;
    jx_adapter *adapter;
    atomic_int sent;
    pthread_t thread;
} stream;

static void *send_stream(void *arg)
{
    stream *s = arg;
    uint8_t *payload;
    size_t len;
    gwt_payload(s->type, "CRASH/26", PAYLOAD_BYTES, &payload, &len);
    int64_t begun = gwt_monotonic_ms();
    for (int i = 0; i < s->count; i++) {
        /* paced, so that the kills fall while messages are streaming */
        int64_t due = begun + (int64_t)STREAM_MS * i / s->count;
        int64_t now = gwt_monotonic_ms();
        if (due > now)
            gwt_sleep_ms((int)(due - now));
        char case_id[48], id[JX_MESSAGE_ID_MAX];
        snprintf(case_id, sizeof case_id, "%s-%05d", s->sender, i);
        jx_seal_params params = {.type = s->type, .case_id = case_id};
        jx_error err;
        if (jx_adapter_send(s->adapter, &params, payload, len, id, &err) != 0)
            gwt_fail(__FILE__, __LINE__, "%s: send %d: %s", s->sender, i, err.message);
        atomic_fetch_add(&s->sent, 1);
    }
    free(payload);
    return NULL;
}

/* ---- what the senders' stores say ------------------------------------------------------ */

typedef struct {
    char sender[JX_AGENCY_ID_MAX];
    char id[JX_MESSAGE_ID_MAX];
    uint64_t accepted_index; /* from the ACCEPTED receipt */
    int stream;
} accepted_message;

static int compare_message(const void *a, const void *b)
{
    const accepted_message *x = a, *y = b;
    int order = strcmp(x->sender, y->sender);
    return order ? order : strcmp(x->id, y->id);
}

typedef struct {
    int pending, accepted, delivered_complete, rejected, other;
    int want_deliveries;
} sent_summary;

static int summarise_sent(const jx_adapter_store_sent_entry *entry, void *arg)
{
    sent_summary *summary = arg;
    if (strcmp(entry->status, "PENDING") == 0)
        summary->pending++;
    else if (strcmp(entry->status, "REJECTED") == 0)
        summary->rejected++;
    else if (strcmp(entry->status, "ACCEPTED") == 0 || strcmp(entry->status, "DELIVERED") == 0)
        summary->accepted++;
    else
        summary->other++;
    if (entry->delivered_count >= summary->want_deliveries)
        summary->delivered_complete++;
    return 0;
}

static sent_summary summarise(stream *s)
{
    sent_summary summary = {.want_deliveries = s->n_recipients};
    jx_error err;
    GWT_CHECK(jx_adapter_store_sent_list(jx_adapter_get_store(s->adapter), 0, 0, summarise_sent,
                                         &summary, &err) == 0);
    return summary;
}

typedef struct {
    accepted_message *messages;
    size_t count;
    int stream;
    const char *sender;
} collect_context;

static int collect_accepted(const jx_adapter_store_receipt *receipt, void *arg)
{
    collect_context *context = arg;
    if (strcmp(receipt->status, "ACCEPTED") != 0)
        return 0;
    GWT_CHECK(context->count < TOTAL);
    accepted_message *m = &context->messages[context->count++];
    snprintf(m->sender, sizeof m->sender, "%s", context->sender);
    snprintf(m->id, sizeof m->id, "%s", receipt->message_id);
    m->accepted_index = receipt->journal_index;
    m->stream = context->stream;
    return 0;
}

/* ---- what the recipients' inboxes say ---------------------------------------------------- */

typedef struct {
    const char *recipient;
    accepted_message *accepted;
    size_t n_accepted;
    stream *streams;
    int entries;
    int unexpected;
    int out_of_order;
    uint64_t last_index[3]; /* per stream: the acceptance index of the last arrival */
    uint8_t *seen;          /* per accepted message: arrived here */
} inbox_context;

static bool stream_reaches(const stream *s, const char *recipient)
{
    for (int i = 0; i < s->n_recipients; i++)
        if (strcmp(s->recipients[i], recipient) == 0)
            return true;
    return false;
}

static int check_inbox_entry(const jx_adapter_store_inbox_entry *entry, void *arg)
{
    inbox_context *context = arg;
    context->entries++;
    accepted_message key;
    snprintf(key.sender, sizeof key.sender, "%s", entry->sender);
    snprintf(key.id, sizeof key.id, "%s", entry->message_id);
    accepted_message *found = bsearch(&key, context->accepted, context->n_accepted,
                                      sizeof key, compare_message);
    if (found == NULL || !stream_reaches(&context->streams[found->stream], context->recipient)) {
        context->unexpected++;
        fprintf(stderr, "%s holds %s from %s, which nobody sent it\n", context->recipient,
                entry->message_id, entry->sender);
        return 0;
    }
    size_t at = (size_t)(found - context->accepted);
    if (context->seen[at]++)
        fprintf(stderr, "%s holds %s from %s twice\n", context->recipient, entry->message_id,
                entry->sender);
    uint64_t *last = &context->last_index[found->stream];
    if (found->accepted_index < *last) {
        if (context->out_of_order++ < 5)
            fprintf(stderr,
                    "%s: %s from %s (accepted at %llu) arrived after one accepted at %llu\n",
                    context->recipient, entry->message_id, entry->sender,
                    (unsigned long long)found->accepted_index, (unsigned long long)*last);
    } else {
        *last = found->accepted_index;
    }
    return 0;
}

/* ---- the journal -------------------------------------------------------------------------- */

typedef struct {
    int accepted, started, stopped;
    accepted_message *messages;
    size_t n_messages;
    uint8_t *journaled;
} journal_context;

static int count_journal(void *arg, uint64_t index, const Justx__V1__JournalRecord *record)
{
    (void)index;
    journal_context *context = arg;
    if (record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__GATEWAY_STARTED)
        context->started++;
    if (record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__GATEWAY_STOPPED)
        context->stopped++;
    if (record->event == JUSTX__V1__JOURNAL_RECORD__EVENT__ACCEPTED) {
        context->accepted++;
        accepted_message key;
        snprintf(key.sender, sizeof key.sender, "%s", record->sender);
        snprintf(key.id, sizeof key.id, "%s", record->message_id);
        accepted_message *found = bsearch(&key, context->messages, context->n_messages,
                                          sizeof key, compare_message);
        if (found)
            context->journaled[found - context->messages] = 1;
    }
    return 0;
}

static void test_crash(void)
{
    unsigned seed = getenv("JX_TEST_SEED") ? (unsigned)strtoul(getenv("JX_TEST_SEED"), NULL, 10)
                                           : (unsigned)jx_now_ms();
    printf("  seed %u (set JX_TEST_SEED to repeat)\n", seed);
    srand(seed);
    gwt_config_options options = {.retry_initial_ms = 200, .retry_max_ms = 1000};
    gwt_env *env = gwt_env_new("crash", &options);
    gwt_gateway_start(env);

    stream streams[3] = {
        {.sender = PROSECUTOR, .type = "justx.v1.ProbationReferral",
         .recipients = {PROBATION}, .n_recipients = 1, .count = REFERRALS},
        {.sender = PROBATION, .type = "justx.v1.StatusUpdate",
         .recipients = {COURT, PROSECUTOR}, .n_recipients = 2, .count = UPDATES},
        {.sender = COURT, .type = "justx.v1.SentenceOrder",
         .recipients = {PROBATION, PRISON}, .n_recipients = 2, .count = ORDERS},
    };
    for (int i = 0; i < 3; i++)
        streams[i].adapter = gwt_adapter_new(env, streams[i].sender, NULL, NULL);
    jx_adapter *prison = gwt_adapter_new(env, PRISON, NULL, NULL);
    jx_adapter *inbox_of[4] = {streams[0].adapter, streams[1].adapter, streams[2].adapter, prison};
    const char *inbox_agency[4] = {PROSECUTOR, PROBATION, COURT, PRISON};

    int64_t started = gwt_monotonic_ms();
    for (int i = 0; i < 3; i++)
        GWT_CHECK(pthread_create(&streams[i].thread, NULL, send_stream, &streams[i]) == 0);

    /* The crashes, at random moments while the messages stream. */
    for (int stop = 0; stop < KILLS + 1; stop++) {
        gwt_sleep_ms(800 + rand() % 1200);
        int sent = 0;
        for (int i = 0; i < 3; i++)
            sent += atomic_load(&streams[i].sent);
        json_t *status = gwt_gateway_status(env);
        json_int_t accepted =
            status ? json_integer_value(json_object_get(json_object_get(status, "totals"),
                                                        "accepted"))
                   : -1;
        json_decref(status);
        /* One of the interruptions is a clean stop under load: SIGTERM
         * must finish the batch in hand and exit 0 promptly. */
        bool clean = stop == CLEAN_STOP_AT;
        if (clean)
            gwt_gateway_stop(env);
        else
            gwt_gateway_kill(env);
        int down = 50 + rand() % 500;
        printf("  %s at %.1f s: %d handed to adapters, %lld accepted by this process; "
               "down %d ms\n",
               clean ? "SIGTERM" : "kill -9", (double)(gwt_monotonic_ms() - started) / 1000.0,
               sent, (long long)accepted, down);
        gwt_sleep_ms(down);
        gwt_gateway_start(env);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(streams[i].thread, NULL);
    printf("  all %d messages handed to the adapters after %.1f s\n", TOTAL,
           (double)(gwt_monotonic_ms() - started) / 1000.0);

    /* Convergence: every outbox empty, every inbox full, every DELIVERED in. */
    int expected_inbox[4] = {UPDATES, REFERRALS + ORDERS, UPDATES, ORDERS};
    int64_t deadline = gwt_monotonic_ms() + CONVERGE_MS;
    bool done = false;
    int64_t last_report = 0;
    while (!done) {
        done = true;
        char progress[512];
        size_t used = 0;
        for (int i = 0; i < 3; i++) {
            sent_summary s = summarise(&streams[i]);
            done = done && s.pending == 0 && s.delivered_complete == streams[i].count;
            used += (size_t)snprintf(progress + used, sizeof progress - used,
                                     "%s accepted %d/%d delivered %d; ", streams[i].sender,
                                     s.accepted + s.rejected, streams[i].count,
                                     s.delivered_complete);
        }
        for (int r = 0; r < 4; r++) {
            int64_t inbox = gwt_adapter_inbox_count(inbox_of[r]);
            done = done && inbox >= expected_inbox[r];
            used += (size_t)snprintf(progress + used, sizeof progress - used, "%s inbox %lld/%d; ",
                                     inbox_agency[r], (long long)inbox, expected_inbox[r]);
        }
        int64_t now = gwt_monotonic_ms();
        if (done || now - last_report > 10000) {
            printf("  %.1f s: %s\n", (double)(now - started) / 1000.0, progress);
            last_report = now;
        }
        if (!done && now > deadline)
            gwt_fail(__FILE__, __LINE__, "no convergence within %d ms after the crashes: %s",
                     CONVERGE_MS, progress);
        if (!done)
            gwt_sleep_ms(250);
    }
    printf("  converged %.1f s after the start, %d gateway processes\n",
           (double)(gwt_monotonic_ms() - started) / 1000.0, env->starts);

    /* Every message was ACCEPTED (by a receipt the adapter verified). */
    accepted_message *accepted = calloc(TOTAL, sizeof *accepted);
    collect_context collect = {accepted, 0, 0, NULL};
    for (int i = 0; i < 3; i++) {
        sent_summary s = summarise(&streams[i]);
        GWT_CHECKF(s.rejected == 0 && s.other == 0 && s.accepted == streams[i].count,
                   "%s: %d accepted, %d rejected, %d other, of %d", streams[i].sender, s.accepted,
                   s.rejected, s.other, streams[i].count);
        collect.stream = i;
        collect.sender = streams[i].sender;
        jx_error err;
        GWT_CHECK(jx_adapter_receipts(streams[i].adapter, 0, 0, collect_accepted, &collect,
                                      &err) == 0);
    }
    GWT_CHECKF(collect.count == TOTAL, "%zu ACCEPTED receipts stored, expected %d", collect.count,
               TOTAL);
    qsort(accepted, TOTAL, sizeof *accepted, compare_message);
    for (size_t i = 1; i < TOTAL; i++)
        GWT_CHECK(compare_message(&accepted[i - 1], &accepted[i]) != 0);

    /* Every recipient has exactly what its routes give it, in order. */
    for (int r = 0; r < 4; r++) {
        inbox_context context = {.recipient = inbox_agency[r], .accepted = accepted,
                                 .n_accepted = TOTAL, .streams = streams,
                                 .seen = calloc(TOTAL, 1)};
        jx_error err;
        GWT_CHECK(jx_adapter_store_inbox_list(jx_adapter_get_store(inbox_of[r]), false, 0, 0,
                                              check_inbox_entry, &context, &err) == 0);
        int missing = 0;
        for (size_t i = 0; i < TOTAL; i++)
            if (stream_reaches(&streams[accepted[i].stream], inbox_agency[r]) &&
                !context.seen[i] && missing++ < 5)
                fprintf(stderr, "%s never received %s from %s\n", inbox_agency[r], accepted[i].id,
                        accepted[i].sender);
        printf("  %-17s inbox %d (expected %d), missing %d, unexpected %d, out of order %d\n",
               inbox_agency[r], context.entries, expected_inbox[r], missing, context.unexpected,
               context.out_of_order);
        GWT_CHECK(missing == 0 && context.unexpected == 0);
        GWT_CHECK(context.entries == expected_inbox[r]);
        GWT_CHECKF(context.out_of_order == 0,
                   "%s received messages out of acceptance order", inbox_agency[r]);
        free(context.seen);
    }

    for (int i = 0; i < 3; i++)
        jx_adapter_destroy(&streams[i].adapter);
    jx_adapter_destroy(&prison);
    gwt_gateway_stop(env);

    /* The journal: every message ACCEPTED, and an auditor's verify passes. */
    journal_context journal = {.messages = accepted, .n_messages = TOTAL,
                               .journaled = calloc(TOTAL, 1)};
    uint64_t records = gwt_journal_scan(env, count_journal, &journal);
    int unjournaled = 0;
    for (size_t i = 0; i < TOTAL; i++)
        unjournaled += !journal.journaled[i];
    printf("  journal: %llu records, %d ACCEPTED (%d messages), %d starts, %d clean stops\n",
           (unsigned long long)records, journal.accepted, TOTAL, journal.started,
           journal.stopped);
    GWT_CHECKF(unjournaled == 0, "%d accepted messages have no ACCEPTED journal record",
               unjournaled);
    GWT_CHECK(journal.started == env->starts);
    GWT_CHECKF(journal.stopped == 2, "%d GATEWAY_STOPPED records; two clean stops were made",
               journal.stopped);
    free(journal.journaled);

    char journal_dir[400];
    snprintf(journal_dir, sizeof journal_dir, "%s/journal", env->state);
    const char *argv[] = {JX_AUDIT_BIN, "verify", journal_dir, "--key",
                          gwt_pki(env, "gateway.pem"), "--origin", env->origin, NULL};
    char *out = NULL, *err_text = NULL;
    int rc = gwt_run(argv, 60000, &out, &err_text);
    printf("  justx-audit verify: exit %d\n%s%s", rc, out, err_text);
    GWT_CHECKF(rc == 0, "justx-audit verify failed after the crashes (exit %d)", rc);
    free(out);
    free(err_text);
    free(accepted);
    gwt_env_destroy(&env);
}

int main(int argc, char **argv)
{
    static const gwt_test tests[] = {
        {"crash", test_crash, NULL},
    };
    return gwt_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
