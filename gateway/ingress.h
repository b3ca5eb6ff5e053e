/* ingress.h — the checks a submitted envelope must pass before the gateway
 * accepts it, in the order DESIGN.md gives.
 *
 * size; envelope and header decode; signer certificate (chain, validity,
 * revocation); signer == TLS identity == Header.sender; signature; payload
 * digest; payload type; clock skew and expiry; duplicate (sender, message
 * id); a route for this sender, type and recipients. Every failure is a
 * verdict with a stable code and a sentence: the broker journals it and
 * answers with a REJECTED receipt; nothing is dropped silently.
 */
#ifndef JX_INGRESS_H
#define JX_INGRESS_H

#include "config.h"
#include "envelope.h"
#include "routes.h"
#include "spool.h"

typedef enum {
    JX_INGRESS_ACCEPT,
    JX_INGRESS_REJECT,
    JX_INGRESS_DUPLICATE,
} jx_ingress_verdict;

typedef struct {
    jx_ingress_verdict verdict;
    jx_error error;             /* REJECT: why */
    jx_opened *opened;          /* ACCEPT: the verified envelope (owned) */
    jx_route_decision routes;   /* ACCEPT: the recipients and their routes */
    int64_t expires_at_ms;      /* ACCEPT: the header's, or now + default TTL, capped */
    uint8_t header_sha256[32];  /* ACCEPT, DUPLICATE */
    uint64_t original_index;    /* DUPLICATE: journal index of the original ACCEPTED */
    /* REJECT: what the header claimed, when it could be decoded (for the
     * journal and for the sender to match the receipt); else "". */
    char message_id[JX_MESSAGE_ID_MAX];
    char type[JX_HEADER_TEXT_MAX + 1];
    char case_id[JX_HEADER_TEXT_MAX + 1];
} jx_ingress_result;

typedef struct {
    jx_trust *trust;
    const jx_gateway_config *config;
    jx_spool *spool;
} jx_ingress;

/* Checks bytes received from agency (the TLS identity) at now_ms. The result
 * must be released with jx_ingress_result_release. */
void jx_ingress_check(const jx_ingress *ingress, const char *agency, const uint8_t *bytes,
                      size_t len, int64_t now_ms, jx_ingress_result *result);

void jx_ingress_result_release(jx_ingress_result *result);

#endif
