/* receipt.h — receipts as proofs: a journal record, its inclusion proof, and
 * the signed checkpoint the proof leads to.
 *
 * A receipt is built from the journal alone (the record at an index) when it
 * is sent, so that nothing but the journal and a queue of indices has to be
 * durable for receipts, and one checkpoint signature serves a whole batch.
 */
#ifndef JX_RECEIPT_H
#define JX_RECEIPT_H

#include "error.h"
#include "journal.h"

#include <stddef.h>
#include <stdint.h>

/* A checkpoint signed by the gateway, covering the first size records. */
typedef struct {
    const char *note;
    size_t note_len;
    uint64_t size;
} jx_receipt_checkpoint;

/* Builds the serialized Receipt for journal record index, which must be an
 * ACCEPTED, REJECTED, ACKNOWLEDGED (receipt status DELIVERED, carrying the
 * recipient's signed Ack from the record) or EXPIRED record below
 * checkpoint->size. *out is freed with free(). */
int jx_receipt_build(jx_journal *journal, uint64_t index, const jx_receipt_checkpoint *checkpoint,
                     uint8_t **out, size_t *out_len, jx_error *err);

#endif
