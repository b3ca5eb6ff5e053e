/* registry.c — the table of message types justx knows. */
#include "registry.h"

#include "justx/v1/documents.pb-c.h"
#include "justx/v1/envelope.pb-c.h"

#include <string.h>

static const jx_message_type types[] = {
    {"justx.v1.SentenceOrder", &justx__v1__sentence_order__descriptor, true},
    {"justx.v1.ProbationReferral", &justx__v1__probation_referral__descriptor, true},
    {"justx.v1.RiskNeedsAssessment", &justx__v1__risk_needs_assessment__descriptor, true},
    {"justx.v1.CaseTransfer", &justx__v1__case_transfer__descriptor, true},
    {"justx.v1.StatusUpdate", &justx__v1__status_update__descriptor, true},
    {"justx.v1.Ack", &justx__v1__ack__descriptor, false},
    {"justx.v1.Receipt", &justx__v1__receipt__descriptor, false},
};

const jx_message_type *jx_registry_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

const jx_message_type *jx_registry_all(size_t *count)
{
    *count = sizeof types / sizeof types[0];
    return types;
}
