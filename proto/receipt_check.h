/* receipt_check.h — checking a gateway receipt with the gateway's public key alone.
 *
 * A receipt is evidence: the journal record it reports, an inclusion proof
 * from that record to a checkpoint, and the checkpoint signed by the gateway
 * (docs/protocol.md). Checking it needs no trust in the link it came over.
 */
#ifndef JX_RECEIPT_CHECK_H
#define JX_RECEIPT_CHECK_H

#include "error.h"
#include "justx/v1/envelope.pb-c.h"
#include "justx/v1/journal.pb-c.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

enum { JX_RECEIPT_MAX = 4 * 1024 * 1024 };

/* Remembers the last checkpoint whose signature verified, so a batch of
 * receipts under one checkpoint costs one signature check. */
typedef struct {
    uint8_t note_sha256[32];
    int valid;
} jx_receipt_check_cache;

typedef struct {
    Justx__V1__Receipt *receipt;       /* decoded receipt */
    Justx__V1__JournalRecord *record;  /* decoded journal record it carries */
    uint64_t checkpoint_size;
} jx_checked_receipt;

/* Decodes and checks bytes: the checkpoint's signature by gateway_key under
 * origin, the inclusion proof of the record in it, and that the receipt says
 * what the record says. cache may be NULL. PROOF_INVALID, CHECKPOINT_INVALID
 * or MALFORMED_ENVELOPE on failure. Release out with jx_checked_receipt_release. */
int jx_receipt_check(const uint8_t *bytes, size_t len, EVP_PKEY *gateway_key, const char *origin,
                     jx_receipt_check_cache *cache, jx_checked_receipt *out, jx_error *err);

void jx_checked_receipt_release(jx_checked_receipt *checked);

/* "ACCEPTED", "REJECTED", "DELIVERED", "EXPIRED" or "UNSPECIFIED". */
const char *jx_receipt_status_name(int status);

#endif
