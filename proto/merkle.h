/* merkle.h — RFC 9162 Merkle tree arithmetic: hashes, compact ranges, proofs.
 *
 * The tree is the one of RFC 9162 section 2.1 (identical to RFC 6962):
 * leaf hash SHA-256(0x00 || data), node hash SHA-256(0x01 || left || right),
 * the tree over n leaves splits at the largest power of two smaller than n.
 *
 * This module holds no storage. Proof generation reads "perfect" subtree
 * hashes through a caller's reader callback: the node at (level, index) is
 * the root of the 2^level leaves [index * 2^level, (index + 1) * 2^level).
 * Every hash a proof needs is either such a node or the root of a range on
 * the tree's right edge, which is folded from O(log n) of them, so a proof
 * costs O(log n) reads.
 *
 * The compact range (jx_merkle_frontier) holds the roots of the perfect
 * subtrees on the right edge of the tree, one per set bit of the size; it is
 * all an appender needs to produce the root, O(log n) work per leaf.
 *
 * Nodes of an append-only tree complete in post-order, so they can be stored
 * in an append-only file: jx_merkle_stored_index gives a node's position in
 * that order (the layout of Go's sumdb tlog "stored hashes").
 */
#ifndef JX_MERKLE_H
#define JX_MERKLE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    JX_HASH_SIZE = 32,
    /* Levels of a tree of at most 2^63 leaves, and the longest proof. */
    JX_MERKLE_MAX_LEVELS = 64,
    JX_MERKLE_MAX_PROOF = 66,
};

/* SHA-256(0x00 || data). */
void jx_merkle_leaf_hash(const void *data, size_t len, uint8_t out[JX_HASH_SIZE]);

/* SHA-256(0x01 || left || right). out may alias left or right. */
void jx_merkle_node_hash(const uint8_t left[JX_HASH_SIZE], const uint8_t right[JX_HASH_SIZE],
                         uint8_t out[JX_HASH_SIZE]);

/* Root of the empty tree, SHA-256 of no bytes. */
void jx_merkle_empty_root(uint8_t out[JX_HASH_SIZE]);

/* Position of node (level, index) in post-order storage, and the number of
 * nodes stored for a tree of size leaves (2 * size - popcount(size)). */
uint64_t jx_merkle_stored_index(unsigned level, uint64_t index);
uint64_t jx_merkle_stored_count(uint64_t size);

/* Reads the hash of the perfect subtree (level, index); returns 0 or -1 with
 * err filled. */
typedef int (*jx_merkle_node_reader)(void *ctx, unsigned level, uint64_t index,
                                     uint8_t out[JX_HASH_SIZE], jx_error *err);

/* Receives every perfect subtree completed by an append, in post-order. */
typedef int (*jx_merkle_node_sink)(void *ctx, unsigned level, uint64_t index,
                                   const uint8_t hash[JX_HASH_SIZE], jx_error *err);

/* The compact range [0, size): nodes[level] is valid iff bit `level` of size
 * is set, and is the root of the perfect subtree of 2^level leaves there. */
typedef struct {
    uint64_t size;
    uint8_t nodes[JX_MERKLE_MAX_LEVELS][JX_HASH_SIZE];
} jx_merkle_frontier;

void jx_merkle_frontier_init(jx_merkle_frontier *frontier);

/* Appends one leaf hash; sink (may be NULL) receives the leaf and every
 * node it completes. Fails only when the sink fails, and then leaves the
 * frontier unchanged. */
int jx_merkle_frontier_append(jx_merkle_frontier *frontier, const uint8_t leaf[JX_HASH_SIZE],
                              jx_merkle_node_sink sink, void *sink_ctx, jx_error *err);

/* Root of the tree the frontier describes (the empty root for size 0). */
void jx_merkle_frontier_root(const jx_merkle_frontier *frontier, uint8_t out[JX_HASH_SIZE]);

/* Rebuilds the frontier of a tree of size leaves from stored nodes. */
int jx_merkle_frontier_load(jx_merkle_frontier *frontier, uint64_t size,
                            jx_merkle_node_reader reader, void *ctx, jx_error *err);

/* Root of the leaves [begin, end), for ranges that are nodes of some RFC 9162
 * tree: begin is a multiple of the largest power of two below end - begin
 * (any range starting at 0 qualifies). */
int jx_merkle_range_root(jx_merkle_node_reader reader, void *ctx, uint64_t begin, uint64_t end,
                         uint8_t out[JX_HASH_SIZE], jx_error *err);

/* Inclusion proof (RFC 9162 2.1.3.1) of leaf index in the tree of size
 * leaves: *count hashes into proof, from the leaf's sibling upwards. */
int jx_merkle_inclusion_proof(jx_merkle_node_reader reader, void *ctx, uint64_t index,
                              uint64_t size, uint8_t proof[][JX_HASH_SIZE], size_t *count,
                              jx_error *err);

/* Consistency proof (RFC 9162 2.1.4.1) from size1 to size2 leaves; empty when
 * size1 is 0 or equals size2. */
int jx_merkle_consistency_proof(jx_merkle_node_reader reader, void *ctx, uint64_t size1,
                                uint64_t size2, uint8_t proof[][JX_HASH_SIZE], size_t *count,
                                jx_error *err);

/* Root implied by an inclusion proof (RFC 9162 2.1.3.2), or -1 with
 * PROOF_INVALID when the proof has the wrong shape for index and size. */
int jx_merkle_root_from_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[JX_HASH_SIZE],
                                  const uint8_t proof[][JX_HASH_SIZE], size_t count,
                                  uint8_t root_out[JX_HASH_SIZE], jx_error *err);

/* 0 when the proof shows leaf at index in the tree of that size and root;
 * -1 with PROOF_INVALID otherwise. */
int jx_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[JX_HASH_SIZE],
                               const uint8_t proof[][JX_HASH_SIZE], size_t count,
                               const uint8_t root[JX_HASH_SIZE], jx_error *err);

/* 0 when the proof shows the tree (size1, root1) is a prefix of the tree
 * (size2, root2) (RFC 9162 2.1.4.2); -1 with PROOF_INVALID otherwise. */
int jx_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[JX_HASH_SIZE],
                                 const uint8_t root2[JX_HASH_SIZE],
                                 const uint8_t proof[][JX_HASH_SIZE], size_t count, jx_error *err);

#endif
