/* receipt_check.c — verify receipts: checkpoint signature, inclusion proof, consistency. */
#include "receipt_check.h"

#include "checkpoint.h"
#include "merkle.h"

#include <openssl/sha.h>
#include <string.h>

const char *jx_receipt_status_name(int status)
{
    switch (status) {
    case JUSTX__V1__RECEIPT__STATUS__ACCEPTED: return "ACCEPTED";
    case JUSTX__V1__RECEIPT__STATUS__REJECTED: return "REJECTED";
    case JUSTX__V1__RECEIPT__STATUS__DELIVERED: return "DELIVERED";
    case JUSTX__V1__RECEIPT__STATUS__EXPIRED: return "EXPIRED";
    default: return "UNSPECIFIED";
    }
}

static Justx__V1__JournalRecord__Event event_for(Justx__V1__Receipt__Status status)
{
    switch (status) {
    case JUSTX__V1__RECEIPT__STATUS__ACCEPTED: return JUSTX__V1__JOURNAL_RECORD__EVENT__ACCEPTED;
    case JUSTX__V1__RECEIPT__STATUS__REJECTED: return JUSTX__V1__JOURNAL_RECORD__EVENT__REJECTED;
    case JUSTX__V1__RECEIPT__STATUS__DELIVERED:
        return JUSTX__V1__JOURNAL_RECORD__EVENT__ACKNOWLEDGED;
    case JUSTX__V1__RECEIPT__STATUS__EXPIRED: return JUSTX__V1__JOURNAL_RECORD__EVENT__EXPIRED;
    default: return JUSTX__V1__JOURNAL_RECORD__EVENT__EVENT_UNSPECIFIED;
    }
}

void jx_checked_receipt_release(jx_checked_receipt *checked)
{
    if (checked->record)
        justx__v1__journal_record__free_unpacked(checked->record, NULL);
    if (checked->receipt)
        justx__v1__receipt__free_unpacked(checked->receipt, NULL);
    checked->record = NULL;
    checked->receipt = NULL;
}

int jx_receipt_check(const uint8_t *bytes, size_t len, EVP_PKEY *gateway_key, const char *origin,
                     jx_receipt_check_cache *cache, jx_checked_receipt *out, jx_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > JX_RECEIPT_MAX)
        return jx_error_set(err, JX_ERR_TOO_LARGE, "a receipt of %zu bytes is over the limit",
                            len);
    out->receipt = justx__v1__receipt__unpack(NULL, len, bytes);
    if (out->receipt == NULL)
        return jx_error_set(err, JX_ERR_MALFORMED_ENVELOPE, "the %zu bytes are not a receipt", len);
    Justx__V1__Receipt *receipt = out->receipt;

    uint8_t note_digest[32];
    SHA256(receipt->checkpoint.data, receipt->checkpoint.len, note_digest);
    jx_checkpoint checkpoint;
    const char *note = (const char *)receipt->checkpoint.data;
    if (cache && cache->valid && memcmp(cache->note_sha256, note_digest, 32) == 0) {
        /* the very bytes whose signature verified before */
        if (jx_checkpoint_parse(note, receipt->checkpoint.len, &checkpoint, err) != 0)
            goto failed;
    } else {
        if (jx_checkpoint_verify(note, receipt->checkpoint.len, gateway_key, origin, &checkpoint,
                                 err) != 0)
            goto failed;
        if (cache) {
            memcpy(cache->note_sha256, note_digest, 32);
            cache->valid = 1;
        }
    }
    out->checkpoint_size = checkpoint.size;

    if (receipt->n_inclusion_proof > JX_MERKLE_MAX_PROOF) {
        jx_error_set(err, JX_ERR_PROOF_INVALID, "the receipt's proof has %zu hashes, too many",
                     receipt->n_inclusion_proof);
        goto failed;
    }
    uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
    for (size_t i = 0; i < receipt->n_inclusion_proof; i++) {
        if (receipt->inclusion_proof[i].len != JX_HASH_SIZE) {
            jx_error_set(err, JX_ERR_PROOF_INVALID, "proof hash %zu is not 32 bytes", i);
            goto failed;
        }
        memcpy(proof[i], receipt->inclusion_proof[i].data, JX_HASH_SIZE);
    }
    uint8_t leaf[JX_HASH_SIZE];
    jx_merkle_leaf_hash(receipt->journal_record.data, receipt->journal_record.len, leaf);
    if (jx_merkle_verify_inclusion(receipt->journal_index, checkpoint.size, leaf,
                                   (const uint8_t(*)[JX_HASH_SIZE])proof,
                                   receipt->n_inclusion_proof, checkpoint.root, err) != 0) {
        jx_error_set(err, JX_ERR_PROOF_INVALID,
                     "journal record %llu is not in the gateway's signed tree of %llu records",
                     (unsigned long long)receipt->journal_index,
                     (unsigned long long)checkpoint.size);
        goto failed;
    }

    out->record = justx__v1__journal_record__unpack(NULL, receipt->journal_record.len,
                                                    receipt->journal_record.data);
    Justx__V1__JournalRecord *record = out->record;
    if (record == NULL || record->index != receipt->journal_index ||
        record->event != event_for(receipt->status) ||
        strcmp(record->message_id, receipt->message_id) != 0 ||
        strcmp(record->sender, receipt->sender) != 0 ||
        strcmp(record->recipient, receipt->recipient) != 0 ||
        strcmp(record->reason_code, receipt->reason_code) != 0) {
        jx_error_set(err, JX_ERR_PROOF_INVALID,
                     "the receipt for %s does not say what its journal record %llu says",
                     receipt->message_id, (unsigned long long)receipt->journal_index);
        goto failed;
    }
    return 0;
failed:
    jx_checked_receipt_release(out);
    return -1;
}
