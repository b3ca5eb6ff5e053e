/* gwtest_agency.c — what the agencies in the tests are made of: adapters on
 * the env's PKI, signers, documents with realistic fields, and log capture.
 */
#include "gwtest.h"

#include "justx/v1/documents.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- log capture ------------------------------------------------------------------- */

struct gwt_log {
    pthread_mutex_t lock;
    char *text;
    size_t len, cap;
    char tag[64];
};

gwt_log *gwt_log_new(const char *tag)
{
    gwt_log *self = calloc(1, sizeof *self);
    GWT_CHECK(self != NULL);
    pthread_mutex_init(&self->lock, NULL);
    snprintf(self->tag, sizeof self->tag, "%s", tag);
    return self;
}

void gwt_log_destroy(gwt_log **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free((*self_p)->text);
    free(*self_p);
    *self_p = NULL;
}

void gwt_log_line(void *arg, const char *line)
{
    gwt_log *self = arg;
    if (self == NULL)
        return;
    if (getenv("JX_TEST_VERBOSE"))
        fprintf(stderr, "[%s] %s\n", self->tag, line);
    size_t n = strlen(line);
    pthread_mutex_lock(&self->lock);
    if (self->len + n + 2 > self->cap) {
        size_t cap = (self->cap + n + 2) * 2;
        char *text = realloc(self->text, cap);
        GWT_CHECK(text != NULL);
        self->text = text;
        self->cap = cap;
    }
    memcpy(self->text + self->len, line, n);
    self->len += n;
    self->text[self->len++] = '\n';
    self->text[self->len] = '\0';
    pthread_mutex_unlock(&self->lock);
}

int gwt_log_count(gwt_log *self, const char *const *words)
{
    int count = 0;
    pthread_mutex_lock(&self->lock);
    const char *line = self->text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char buffer[4096];
        if (n >= sizeof buffer)
            n = sizeof buffer - 1;
        memcpy(buffer, line, n);
        buffer[n] = '\0';
        bool all = true;
        for (const char *const *word = words; *word && all; word++)
            all = strstr(buffer, *word) != NULL;
        count += all;
        line = end ? end + 1 : NULL;
    }
    pthread_mutex_unlock(&self->lock);
    return count;
}

void gwt_log_dump(gwt_log *self)
{
    pthread_mutex_lock(&self->lock);
    fprintf(stderr, "---- %s log ----\n%s---- end of %s log ----\n", self->tag,
            self->text ? self->text : "", self->tag);
    pthread_mutex_unlock(&self->lock);
}

/* ---- signers and adapters ----------------------------------------------------------- */

jx_signer *gwt_signer(const gwt_env *env, const char *agency)
{
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s.pem", agency);
    snprintf(key, sizeof key, "%s.key", agency);
    jx_error err;
    jx_signer *signer = jx_signer_new(gwt_pki(env, cert), gwt_pki(env, key), &err);
    if (signer == NULL)
        gwt_fail(__FILE__, __LINE__, "signer for %s: %s", agency, err.message);
    return signer;
}

jx_adapter *gwt_adapter_new(gwt_env *env, const char *agency, const char *name, gwt_log *log)
{
    char adapters[320], state_dir[400], gateway[64], cert[128], key[128];
    snprintf(adapters, sizeof adapters, "%s/adapters", env->dir);
    mkdir(adapters, 0700);
    snprintf(state_dir, sizeof state_dir, "%s/%s", adapters, name ? name : agency);
    snprintf(gateway, sizeof gateway, "127.0.0.1:%d", env->port);
    snprintf(cert, sizeof cert, "%s.pem", agency);
    snprintf(key, sizeof key, "%s.key", agency);
    const char *crls[] = {gwt_pki(env, "crl.pem")};
    jx_adapter_config config = {
        .state_dir = state_dir,
        .gateway = gateway,
        .gateway_name = "localhost",
        .gateway_cert = gwt_pki(env, "gateway.pem"),
        .gateway_origin = env->origin,
        .ca_file = gwt_pki(env, "ca.pem"),
        .crl_files = crls,
        .n_crl_files = 1,
        .cert_file = gwt_pki(env, cert),
        .key_file = gwt_pki(env, key),
        .log = log ? gwt_log_line : NULL,
        .log_arg = log,
    };
    jx_error err;
    jx_adapter *adapter = jx_adapter_new(&config, &err);
    if (adapter == NULL)
        gwt_fail(__FILE__, __LINE__, "adapter for %s: %s", agency, err.message);
    return adapter;
}

bool gwt_adapter_wait_connected(jx_adapter *adapter, int timeout_ms)
{
    int64_t deadline = gwt_monotonic_ms() + timeout_ms;
    do {
        if (jx_adapter_link_state(adapter, NULL) == JX_TLS_DIALER_CONNECTED)
            return true;
        gwt_sleep_ms(10);
    } while (gwt_monotonic_ms() < deadline);
    return false;
}

typedef struct {
    const char *status;
    const char *recipient;
    char *code;
} code_match;

static int match_code(const jx_adapter_store_receipt *receipt, void *arg)
{
    code_match *match = arg;
    if (match->code == NULL && strcmp(receipt->status, match->status) == 0 &&
        (match->recipient == NULL || strcmp(receipt->recipient, match->recipient) == 0))
        match->code = strdup(receipt->reason_code ? receipt->reason_code : "");
    return 0;
}

char *gwt_adapter_receipt_code(jx_adapter *adapter, const char *message_id, const char *status,
                               const char *recipient)
{
    code_match match = {status, recipient, NULL};
    jx_error err;
    GWT_CHECK(jx_adapter_store_receipts_for(jx_adapter_get_store(adapter), message_id, match_code,
                                            &match, &err) == 0);
    return match.code;
}

int64_t gwt_adapter_inbox_count(jx_adapter *adapter)
{
    jx_adapter_store_counts counts;
    jx_error err;
    GWT_CHECK(jx_adapter_store_count(jx_adapter_get_store(adapter), &counts, &err) == 0);
    return counts.inbox;
}

/* ---- documents ------------------------------------------------------------------------ */

static char *padding(size_t size)
{
    char *text = malloc(size + 1);
    GWT_CHECK(text != NULL);
    static const char words[] = "The person reports to the district probation office weekly. ";
    for (size_t i = 0; i < size; i++)
        text[i] = words[i % (sizeof words - 1)];
    text[size] = '\0';
    return text;
}

void gwt_payload(const char *type, const char *case_number, size_t size, uint8_t **out,
                 size_t *len)
{
    Justx__V1__Person person = JUSTX__V1__PERSON__INIT;
    person.family_name = "Asanov";
    person.given_names = "Bakyt";
    person.date_of_birth = "1990-04-12";
    person.personal_id = "21204199000123";
    person.personal_id_country = "KG";
    person.sex = JUSTX__V1__SEX__SEX_MALE;
    Justx__V1__Authority authority = JUSTX__V1__AUTHORITY__INIT;
    authority.agency_id = "KG-COURT-BISHKEK";
    authority.name = "Pervomaisky District Court of Bishkek";
    char *pad = padding(size > 400 ? size - 400 : 0);
    ProtobufCMessage *message = NULL;

    Justx__V1__SentenceOrder order = JUSTX__V1__SENTENCE_ORDER__INIT;
    Justx__V1__ProbationReferral referral = JUSTX__V1__PROBATION_REFERRAL__INIT;
    Justx__V1__StatusUpdate update = JUSTX__V1__STATUS_UPDATE__INIT;
    Justx__V1__RiskNeedsAssessment assessment = JUSTX__V1__RISK_NEEDS_ASSESSMENT__INIT;
    Justx__V1__CaseTransfer transfer = JUSTX__V1__CASE_TRANSFER__INIT;
    if (strcmp(type, "justx.v1.SentenceOrder") == 0) {
        order.person = &person;
        order.court = &authority;
        order.case_number = (char *)case_number;
        order.sentence_kind = JUSTX__V1__SENTENCE_KIND__SENTENCE_KIND_PROBATION;
        order.term_days = 730;
        order.probation_period_days = 730;
        order.decision_date = "2026-11-02";
        order.entry_into_force_date = "2026-11-17";
        order.supervising_office = pad;
        message = &order.base;
    } else if (strcmp(type, "justx.v1.ProbationReferral") == 0) {
        referral.person = &person;
        referral.referring_authority = &authority;
        referral.case_number = (char *)case_number;
        referral.purpose = JUSTX__V1__PROBATION_REFERRAL__PURPOSE__PURPOSE_PRE_SENTENCE_REPORT;
        referral.grounds = pad;
        referral.respond_by_date = "2026-12-01";
        message = &referral.base;
    } else if (strcmp(type, "justx.v1.StatusUpdate") == 0) {
        update.person = &person;
        update.reporting_authority = &authority;
        update.case_number = (char *)case_number;
        update.status = JUSTX__V1__STATUS_UPDATE__STATUS__STATUS_UNDER_SUPERVISION;
        update.effective_at_ms = 1790000000000;
        update.details = pad;
        message = &update.base;
    } else if (strcmp(type, "justx.v1.RiskNeedsAssessment") == 0) {
        assessment.person = &person;
        assessment.assessor = &authority;
        assessment.case_number = (char *)case_number;
        assessment.instrument = "LSI-R";
        assessment.total_score = 17;
        assessment.recommendation = pad;
        message = &assessment.base;
    } else if (strcmp(type, "justx.v1.CaseTransfer") == 0) {
        transfer.person = &person;
        transfer.transferring_authority = &authority;
        transfer.receiving_agency = "LV-PROBATION";
        transfer.case_number = (char *)case_number;
        transfer.reason = JUSTX__V1__CASE_TRANSFER__REASON__REASON_CHANGE_OF_RESIDENCE;
        transfer.reason_details = pad;
        message = &transfer.base;
    } else {
        gwt_fail(__FILE__, __LINE__, "gwt_payload: no document of type %s", type);
    }
    *len = protobuf_c_message_get_packed_size(message);
    *out = malloc(*len ? *len : 1);
    GWT_CHECK(*out != NULL);
    protobuf_c_message_pack(message, *out);
    free(pad);
}
