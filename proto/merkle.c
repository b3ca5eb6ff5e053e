/* merkle.c — RFC 9162 Merkle tree arithmetic: hashes, compact ranges, proofs.
 *
 * Proofs are produced top-down (walking from the root towards the leaf or the
 * old tree's edge) and then reversed, since RFC 9162 lists them leaf-first.
 * Verification follows the RFC 9162 algorithms step by step; they reject
 * proofs that are too long or too short for the claimed sizes, which is what
 * keeps a verifier from accepting a proof for another index or size.
 */
#include "merkle.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

/* EVP_sha256() would make OpenSSL look the algorithm up on every digest;
 * fetching it once keeps a node hash at a few hundred nanoseconds. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* SHA-256 over prefix || a || b. Digest failures only happen when libcrypto
 * cannot allocate; the output is then zeroed, which no proof will match. */
static void hash3(uint8_t prefix, const void *a, size_t a_len, const void *b, size_t b_len,
                  uint8_t out[JX_HASH_SIZE])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    if (!ctx || !EVP_DigestInit_ex(ctx, sha256(), NULL) || !EVP_DigestUpdate(ctx, &prefix, 1) ||
        (a_len && !EVP_DigestUpdate(ctx, a, a_len)) ||
        (b_len && !EVP_DigestUpdate(ctx, b, b_len)) || !EVP_DigestFinal_ex(ctx, out, &out_len))
        memset(out, 0, JX_HASH_SIZE);
    EVP_MD_CTX_free(ctx);
}

void jx_merkle_leaf_hash(const void *data, size_t len, uint8_t out[JX_HASH_SIZE])
{
    hash3(0x00, data, len, NULL, 0, out);
}

void jx_merkle_node_hash(const uint8_t left[JX_HASH_SIZE], const uint8_t right[JX_HASH_SIZE],
                         uint8_t out[JX_HASH_SIZE])
{
    uint8_t buffer[2 * JX_HASH_SIZE];
    memcpy(buffer, left, JX_HASH_SIZE);
    memcpy(buffer + JX_HASH_SIZE, right, JX_HASH_SIZE);
    hash3(0x01, buffer, sizeof buffer, NULL, 0, out);
}

void jx_merkle_empty_root(uint8_t out[JX_HASH_SIZE])
{
    unsigned int out_len = 0;
    if (!EVP_Digest("", 0, out, &out_len, sha256(), NULL))
        memset(out, 0, JX_HASH_SIZE);
}

uint64_t jx_merkle_stored_count(uint64_t size)
{
    return 2 * size - (uint64_t)__builtin_popcountll(size);
}

uint64_t jx_merkle_stored_index(unsigned level, uint64_t index)
{
    /* The node completes when its last leaf is appended; before that leaf,
     * stored_count(last) nodes exist, and the leaf and the nodes below this
     * one on the same right edge come first. */
    uint64_t last = ((index + 1) << level) - 1;
    return jx_merkle_stored_count(last) + level;
}

void jx_merkle_frontier_init(jx_merkle_frontier *frontier)
{
    memset(frontier, 0, sizeof *frontier);
}

int jx_merkle_frontier_append(jx_merkle_frontier *frontier, const uint8_t leaf[JX_HASH_SIZE],
                              jx_merkle_node_sink sink, void *sink_ctx, jx_error *err)
{
    uint64_t size = frontier->size;
    if (size >= (UINT64_C(1) << 62))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "Merkle tree is full (%llu leaves)",
                            (unsigned long long)size);
    uint8_t hash[JX_HASH_SIZE];
    memcpy(hash, leaf, JX_HASH_SIZE);
    if (sink && sink(sink_ctx, 0, size, hash, err) != 0)
        return -1;
    unsigned level = 0;
    /* Each set low bit of size is a perfect subtree that the new leaf
     * completes into one twice as big. */
    while (size & (UINT64_C(1) << level)) {
        jx_merkle_node_hash(frontier->nodes[level], hash, hash);
        level++;
        if (sink && sink(sink_ctx, level, size >> level, hash, err) != 0)
            return -1;
    }
    memcpy(frontier->nodes[level], hash, JX_HASH_SIZE);
    frontier->size = size + 1;
    return 0;
}

void jx_merkle_frontier_root(const jx_merkle_frontier *frontier, uint8_t out[JX_HASH_SIZE])
{
    uint64_t size = frontier->size;
    if (size == 0) {
        jx_merkle_empty_root(out);
        return;
    }
    unsigned level = (unsigned)__builtin_ctzll(size);
    uint8_t root[JX_HASH_SIZE];
    memcpy(root, frontier->nodes[level], JX_HASH_SIZE);
    for (level++; level < JX_MERKLE_MAX_LEVELS; level++)
        if (size & (UINT64_C(1) << level))
            jx_merkle_node_hash(frontier->nodes[level], root, root);
    memcpy(out, root, JX_HASH_SIZE);
}

int jx_merkle_frontier_load(jx_merkle_frontier *frontier, uint64_t size,
                            jx_merkle_node_reader reader, void *ctx, jx_error *err)
{
    jx_merkle_frontier_init(frontier);
    uint64_t begin = 0;
    for (int level = JX_MERKLE_MAX_LEVELS - 1; level >= 0; level--) {
        if (!(size & (UINT64_C(1) << level)))
            continue;
        if (reader(ctx, (unsigned)level, begin >> level, frontier->nodes[level], err) != 0)
            return -1;
        begin += UINT64_C(1) << level;
    }
    frontier->size = size;
    return 0;
}

int jx_merkle_range_root(jx_merkle_node_reader reader, void *ctx, uint64_t begin, uint64_t end,
                         uint8_t out[JX_HASH_SIZE], jx_error *err)
{
    if (begin >= end) {
        if (begin == 0 && end == 0) {
            jx_merkle_empty_root(out);
            return 0;
        }
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "empty Merkle range [%llu, %llu)",
                            (unsigned long long)begin, (unsigned long long)end);
    }
    /* Split [begin, end) into perfect subtrees from the left, each the
     * largest that is aligned at its start and fits; for a node range they
     * shrink left to right and fold right-to-left into the range's root. */
    uint8_t parts[JX_MERKLE_MAX_LEVELS][JX_HASH_SIZE];
    unsigned count = 0;
    uint64_t at = begin;
    while (at < end) {
        unsigned level = at ? (unsigned)__builtin_ctzll(at) : JX_MERKLE_MAX_LEVELS - 1;
        while (level > 0 && (level >= 63 || (UINT64_C(1) << level) > end - at))
            level--;
        if (count == JX_MERKLE_MAX_LEVELS)
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "Merkle range [%llu, %llu) is not a tree node",
                                (unsigned long long)begin, (unsigned long long)end);
        if (reader(ctx, level, at >> level, parts[count], err) != 0)
            return -1;
        count++;
        at += UINT64_C(1) << level;
    }
    uint8_t root[JX_HASH_SIZE];
    memcpy(root, parts[count - 1], JX_HASH_SIZE);
    for (unsigned i = count - 1; i-- > 0;)
        jx_merkle_node_hash(parts[i], root, root);
    memcpy(out, root, JX_HASH_SIZE);
    return 0;
}

/* Largest power of two strictly smaller than n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = UINT64_C(1) << (63 - __builtin_clzll(n - 1));
    return k;
}

static void reverse_hashes(uint8_t proof[][JX_HASH_SIZE], size_t count)
{
    for (size_t i = 0; i < count / 2; i++) {
        uint8_t swap[JX_HASH_SIZE];
        memcpy(swap, proof[i], JX_HASH_SIZE);
        memcpy(proof[i], proof[count - 1 - i], JX_HASH_SIZE);
        memcpy(proof[count - 1 - i], swap, JX_HASH_SIZE);
    }
}

int jx_merkle_inclusion_proof(jx_merkle_node_reader reader, void *ctx, uint64_t index,
                              uint64_t size, uint8_t proof[][JX_HASH_SIZE], size_t *count,
                              jx_error *err)
{
    *count = 0;
    if (index >= size)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "no leaf %llu in a Merkle tree of %llu leaves",
                            (unsigned long long)index, (unsigned long long)size);
    uint64_t begin = 0, end = size;
    size_t n = 0;
    while (end - begin > 1) {
        uint64_t k = split_point(end - begin);
        if (index < begin + k) {
            if (jx_merkle_range_root(reader, ctx, begin + k, end, proof[n], err) != 0)
                return -1;
            end = begin + k;
        } else {
            if (jx_merkle_range_root(reader, ctx, begin, begin + k, proof[n], err) != 0)
                return -1;
            begin += k;
        }
        n++;
    }
    reverse_hashes(proof, n);
    *count = n;
    return 0;
}

int jx_merkle_consistency_proof(jx_merkle_node_reader reader, void *ctx, uint64_t size1,
                                uint64_t size2, uint8_t proof[][JX_HASH_SIZE], size_t *count,
                                jx_error *err)
{
    *count = 0;
    if (size1 > size2)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "no consistency proof from %llu leaves to fewer (%llu)",
                            (unsigned long long)size1, (unsigned long long)size2);
    if (size1 == 0 || size1 == size2)
        return 0;
    /* SUBPROOF(m, D[begin:end], whole) of RFC 9162 2.1.4.1, unrolled. */
    uint64_t begin = 0, end = size2;
    bool whole = true;
    size_t n = 0;
    for (;;) {
        if (size1 == end) {
            if (!whole) {
                if (jx_merkle_range_root(reader, ctx, begin, end, proof[n], err) != 0)
                    return -1;
                n++;
            }
            break;
        }
        uint64_t k = split_point(end - begin);
        if (size1 - begin <= k) {
            if (jx_merkle_range_root(reader, ctx, begin + k, end, proof[n], err) != 0)
                return -1;
            end = begin + k;
        } else {
            if (jx_merkle_range_root(reader, ctx, begin, begin + k, proof[n], err) != 0)
                return -1;
            begin += k;
            whole = false;
        }
        n++;
    }
    reverse_hashes(proof, n);
    *count = n;
    return 0;
}

int jx_merkle_root_from_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[JX_HASH_SIZE],
                                  const uint8_t proof[][JX_HASH_SIZE], size_t count,
                                  uint8_t root_out[JX_HASH_SIZE], jx_error *err)
{
    if (index >= size)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "leaf index %llu is outside a tree of %llu leaves",
                            (unsigned long long)index, (unsigned long long)size);
    uint64_t fn = index, sn = size - 1;
    uint8_t r[JX_HASH_SIZE];
    memcpy(r, leaf, JX_HASH_SIZE);
    for (size_t i = 0; i < count; i++) {
        if (sn == 0)
            return jx_error_set(err, JX_ERR_PROOF_INVALID,
                                "inclusion proof has %zu hashes, too many for leaf %llu of %llu",
                                count, (unsigned long long)index, (unsigned long long)size);
        if ((fn & 1) || fn == sn) {
            jx_merkle_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            jx_merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "inclusion proof has %zu hashes, too few for leaf %llu of %llu", count,
                            (unsigned long long)index, (unsigned long long)size);
    memcpy(root_out, r, JX_HASH_SIZE);
    return 0;
}

int jx_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[JX_HASH_SIZE],
                               const uint8_t proof[][JX_HASH_SIZE], size_t count,
                               const uint8_t root[JX_HASH_SIZE], jx_error *err)
{
    uint8_t computed[JX_HASH_SIZE];
    if (jx_merkle_root_from_inclusion(index, size, leaf, proof, count, computed, err) != 0)
        return -1;
    if (memcmp(computed, root, JX_HASH_SIZE) != 0)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "inclusion proof for leaf %llu leads to another root than the "
                            "tree of %llu leaves has",
                            (unsigned long long)index, (unsigned long long)size);
    return 0;
}

int jx_merkle_verify_consistency(uint64_t size1, uint64_t size2, const uint8_t root1[JX_HASH_SIZE],
                                 const uint8_t root2[JX_HASH_SIZE],
                                 const uint8_t proof[][JX_HASH_SIZE], size_t count, jx_error *err)
{
    if (size1 > size2)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "tree of %llu leaves cannot be a prefix of one of %llu",
                            (unsigned long long)size1, (unsigned long long)size2);
    if (size1 == size2) {
        if (count != 0 || memcmp(root1, root2, JX_HASH_SIZE) != 0)
            return jx_error_set(err, JX_ERR_PROOF_INVALID,
                                "two trees of %llu leaves with different roots",
                                (unsigned long long)size1);
        return 0;
    }
    if (size1 == 0) {
        if (count != 0)
            return jx_error_set(err, JX_ERR_PROOF_INVALID,
                                "consistency proof from the empty tree must be empty");
        return 0;
    }
    if (count == 0)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "empty consistency proof from %llu to %llu leaves",
                            (unsigned long long)size1, (unsigned long long)size2);
    /* When size1 is a power of two the old root is a node of the new tree
     * and the proof starts above it: the RFC prepends root1. */
    bool prepend = (size1 & (size1 - 1)) == 0;
    size_t total = count + (prepend ? 1 : 0);
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[JX_HASH_SIZE], sr[JX_HASH_SIZE];
    const uint8_t *first = prepend ? root1 : proof[0];
    memcpy(fr, first, JX_HASH_SIZE);
    memcpy(sr, first, JX_HASH_SIZE);
    for (size_t i = 1; i < total; i++) {
        const uint8_t *c = prepend ? proof[i - 1] : proof[i];
        if (sn == 0)
            return jx_error_set(err, JX_ERR_PROOF_INVALID,
                                "consistency proof from %llu to %llu leaves is too long",
                                (unsigned long long)size1, (unsigned long long)size2);
        if ((fn & 1) || fn == sn) {
            jx_merkle_node_hash(c, fr, fr);
            jx_merkle_node_hash(c, sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            jx_merkle_node_hash(sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "consistency proof from %llu to %llu leaves is too short",
                            (unsigned long long)size1, (unsigned long long)size2);
    if (memcmp(fr, root1, JX_HASH_SIZE) != 0 || memcmp(sr, root2, JX_HASH_SIZE) != 0)
        return jx_error_set(err, JX_ERR_PROOF_INVALID,
                            "tree of %llu leaves is not a prefix of the tree of %llu leaves",
                            (unsigned long long)size1, (unsigned long long)size2);
    return 0;
}
