/* receipt.c — build receipts from journal records, proofs and checkpoints. */
#include "receipt.h"

#include "justx/v1/envelope.pb-c.h"
#include "justx/v1/journal.pb-c.h"

#include <stdlib.h>

static int receipt_status(Justx__V1__JournalRecord__Event event)
{
    switch (event) {
    case JUSTX__V1__JOURNAL_RECORD__EVENT__ACCEPTED: return JUSTX__V1__RECEIPT__STATUS__ACCEPTED;
    case JUSTX__V1__JOURNAL_RECORD__EVENT__REJECTED: return JUSTX__V1__RECEIPT__STATUS__REJECTED;
    case JUSTX__V1__JOURNAL_RECORD__EVENT__ACKNOWLEDGED:
        return JUSTX__V1__RECEIPT__STATUS__DELIVERED;
    case JUSTX__V1__JOURNAL_RECORD__EVENT__EXPIRED: return JUSTX__V1__RECEIPT__STATUS__EXPIRED;
    default: return -1;
    }
}

int jx_receipt_build(jx_journal *journal, uint64_t index, const jx_receipt_checkpoint *checkpoint,
                     uint8_t **out, size_t *out_len, jx_error *err)
{
    uint8_t *record_bytes = NULL;
    size_t record_len = 0;
    Justx__V1__JournalRecord *record = NULL;
    int rc = -1;
    if (index >= checkpoint->size)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "journal record %llu is not covered by the checkpoint of %llu records",
                            (unsigned long long)index, (unsigned long long)checkpoint->size);
    if (jx_journal_read(journal, index, &record_bytes, &record_len, err) != 0)
        return -1;
    record = justx__v1__journal_record__unpack(NULL, record_len, record_bytes);
    int status = record ? receipt_status(record->event) : -1;
    if (status < 0) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "journal record %llu does not report on a message",
                     (unsigned long long)index);
        goto done;
    }

    uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
    size_t proof_count = 0;
    if (jx_journal_inclusion_proof(journal, index, checkpoint->size, proof, &proof_count, err) !=
        0)
        goto done;
    ProtobufCBinaryData proof_items[JX_MERKLE_MAX_PROOF];
    for (size_t i = 0; i < proof_count; i++) {
        proof_items[i].data = proof[i];
        proof_items[i].len = JX_HASH_SIZE;
    }

    Justx__V1__Receipt receipt = JUSTX__V1__RECEIPT__INIT;
    receipt.message_id = record->message_id;
    receipt.sender = record->sender;
    receipt.status = (Justx__V1__Receipt__Status)status;
    receipt.reason_code = record->reason_code;
    receipt.reason = record->reason;
    receipt.recipient = record->recipient;
    receipt.issued_at_ms = record->time_ms;
    receipt.journal_index = index;
    receipt.journal_record.data = record_bytes;
    receipt.journal_record.len = record_len;
    receipt.checkpoint.data = (uint8_t *)checkpoint->note;
    receipt.checkpoint.len = checkpoint->note_len;
    receipt.n_inclusion_proof = proof_count;
    receipt.inclusion_proof = proof_items;

    *out_len = justx__v1__receipt__get_packed_size(&receipt);
    *out = malloc(*out_len ? *out_len : 1);
    if (*out == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory building a receipt");
        goto done;
    }
    justx__v1__receipt__pack(&receipt, *out);
    rc = 0;
done:
    if (record)
        justx__v1__journal_record__free_unpacked(record, NULL);
    free(record_bytes);
    return rc;
}
