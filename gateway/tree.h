/* tree.h — a file-backed Merkle tree: every complete subtree's hash, post-order.
 *
 * The file is "JXTREE1\n" plus 8 zero bytes, then 32-byte node hashes in the
 * order jx_merkle_stored_index gives (each leaf hash followed by the nodes it
 * completes). It only ever grows at the end, and any subtree hash is one
 * pread away, so roots and proofs of any tree size cost O(log n) reads.
 *
 * The file is derived data: the journal rebuilds it from the segments when
 * it is missing or stale, and justx-audit verify never reads it.
 *
 * Appended nodes are buffered in memory and written by jx_tree_flush (and
 * automatically when the buffer fills); jx_tree_sync also fdatasyncs.
 * Not thread-safe: one user at a time.
 */
#ifndef JX_TREE_H
#define JX_TREE_H

#include "error.h"
#include "merkle.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct jx_tree jx_tree;

/* Opens (or with create, creates) the tree file at path. A trailing partial
 * node or half-written group of nodes is cut off when writable. read_only
 * opens without writing anything; appends then fail. */
jx_tree *jx_tree_open(const char *path, bool create, bool read_only, jx_error *err);

/* A tree in an anonymous temporary file in directory dir (e.g. "/tmp"),
 * gone when destroyed. */
jx_tree *jx_tree_open_temporary(const char *dir, jx_error *err);

/* Flushes (when writable) and closes. */
void jx_tree_destroy(jx_tree **self_p);

/* Number of leaves. */
uint64_t jx_tree_size(const jx_tree *self);

int jx_tree_append(jx_tree *self, const uint8_t leaf[JX_HASH_SIZE], jx_error *err);
int jx_tree_flush(jx_tree *self, jx_error *err);
int jx_tree_sync(jx_tree *self, jx_error *err);

/* Cuts the tree back to its first size leaves. */
int jx_tree_truncate(jx_tree *self, uint64_t size, jx_error *err);

/* Root of the first size leaves (size <= jx_tree_size). */
int jx_tree_root(jx_tree *self, uint64_t size, uint8_t out[JX_HASH_SIZE], jx_error *err);

/* Hash of leaf index. */
int jx_tree_leaf(jx_tree *self, uint64_t index, uint8_t out[JX_HASH_SIZE], jx_error *err);

/* Proofs within the first size leaves (RFC 9162 2.1.3.1 and 2.1.4.1). */
int jx_tree_inclusion_proof(jx_tree *self, uint64_t index, uint64_t size,
                            uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err);
int jx_tree_consistency_proof(jx_tree *self, uint64_t size1, uint64_t size2,
                              uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err);

#endif
