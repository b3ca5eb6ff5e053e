/* test_merkle.c — the Merkle arithmetic against RFC 9162 / CT reference vectors.
 *
 * The vectors are those of the Certificate Transparency test suite as kept
 * in transparency-dev/merkle (testonly/constants.go and proof/verify_test.go):
 * the eight leaf inputs, the roots of every prefix, the node hashes of the
 * complete subtrees, and the published inclusion and consistency proofs. The
 * roots were also recomputed independently (a ten-line Python RFC 6962 MTH)
 * before being carried over. Randomized checks then compare the incremental
 * code with a direct recursive implementation of RFC 9162 section 2.1.
 */
#include "merkle.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
    assert_int_equal(strlen(hex), 2 * out_len);
    for (size_t i = 0; i < out_len; i++) {
        unsigned value;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &value), 1);
        out[i] = (uint8_t)value;
    }
}

static void assert_hash_hex(const uint8_t hash[JX_HASH_SIZE], const char *hex)
{
    uint8_t want[JX_HASH_SIZE];
    hex_decode(hex, want, sizeof want);
    assert_memory_equal(hash, want, JX_HASH_SIZE);
}

/* ---- an in-memory node store in post-order, fed by the frontier's sink ---- */

typedef struct {
    uint8_t (*nodes)[JX_HASH_SIZE];
    uint64_t count;
    uint64_t capacity;
    jx_merkle_frontier frontier;
    uint64_t reads;
} memory_tree;

static int memory_sink(void *ctx, unsigned level, uint64_t index, const uint8_t hash[JX_HASH_SIZE],
                       jx_error *err)
{
    (void)err;
    memory_tree *tree = ctx;
    /* Nodes must arrive exactly in stored order, or the file layout breaks. */
    assert_int_equal(jx_merkle_stored_index(level, index), tree->count);
    if (tree->count == tree->capacity) {
        tree->capacity = tree->capacity ? 2 * tree->capacity : 64;
        tree->nodes = realloc(tree->nodes, tree->capacity * JX_HASH_SIZE);
        assert_non_null(tree->nodes);
    }
    memcpy(tree->nodes[tree->count++], hash, JX_HASH_SIZE);
    return 0;
}

static int memory_reader(void *ctx, unsigned level, uint64_t index, uint8_t out[JX_HASH_SIZE],
                         jx_error *err)
{
    memory_tree *tree = ctx;
    uint64_t at = jx_merkle_stored_index(level, index);
    if (at >= tree->count)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "node %u/%llu not stored", level,
                            (unsigned long long)index);
    memcpy(out, tree->nodes[at], JX_HASH_SIZE);
    tree->reads++;
    return 0;
}

static void memory_tree_append(memory_tree *tree, const uint8_t leaf[JX_HASH_SIZE])
{
    jx_error err;
    assert_int_equal(jx_merkle_frontier_append(&tree->frontier, leaf, memory_sink, tree, &err), 0);
    assert_int_equal(tree->count, jx_merkle_stored_count(tree->frontier.size));
}

static void memory_tree_free(memory_tree *tree)
{
    free(tree->nodes);
    memset(tree, 0, sizeof *tree);
}

/* ---- the reference vectors ---- */

static const struct {
    const char *data;
    size_t len;
} leaf_inputs[8] = {
    {"", 0},
    {"\x00", 1},
    {"\x10", 1},
    {"\x20\x21", 2},
    {"\x30\x31", 2},
    {"\x40\x41\x42\x43", 4},
    {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
    {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};

static const char *const reference_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* Hashes of the complete subtrees: level 0 are the leaf hashes. */
static const char *const reference_nodes[4][8] = {
    {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"},
    {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"},
    {"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"},
    {"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"},
};

typedef struct {
    uint64_t a, b; /* leaf index and tree size, or size1 and size2 */
    size_t count;
    const char *hashes[4];
} proof_vector;

/* proof/verify_test.go numbers leaves from 1; these are zero-based. */
static const proof_vector inclusion_vectors[] = {
    {0, 1, 0, {NULL}},
    {0,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     3,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const proof_vector consistency_vectors[] = {
    {1, 1, 0, {NULL}},
    {1,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static void build_reference_tree(memory_tree *tree, unsigned leaves)
{
    memset(tree, 0, sizeof *tree);
    for (unsigned i = 0; i < leaves; i++) {
        uint8_t leaf[JX_HASH_SIZE];
        jx_merkle_leaf_hash(leaf_inputs[i].data, leaf_inputs[i].len, leaf);
        memory_tree_append(tree, leaf);
    }
}

static void test_reference_roots(void **state)
{
    (void)state;
    memory_tree tree;
    build_reference_tree(&tree, 0);
    uint8_t root[JX_HASH_SIZE];
    jx_merkle_frontier_root(&tree.frontier, root);
    assert_hash_hex(root, reference_roots[0]);
    for (unsigned size = 1; size <= 8; size++) {
        uint8_t leaf[JX_HASH_SIZE];
        jx_merkle_leaf_hash(leaf_inputs[size - 1].data, leaf_inputs[size - 1].len, leaf);
        memory_tree_append(&tree, leaf);
        jx_merkle_frontier_root(&tree.frontier, root);
        assert_hash_hex(root, reference_roots[size]);
        /* The same root read back from storage, O(log n) nodes. */
        jx_error err;
        memset(root, 0, sizeof root);
        assert_int_equal(jx_merkle_range_root(memory_reader, &tree, 0, size, root, &err), 0);
        assert_hash_hex(root, reference_roots[size]);
        jx_merkle_frontier loaded;
        assert_int_equal(jx_merkle_frontier_load(&loaded, size, memory_reader, &tree, &err), 0);
        jx_merkle_frontier_root(&loaded, root);
        assert_hash_hex(root, reference_roots[size]);
    }
    memory_tree_free(&tree);
}

static void test_reference_nodes(void **state)
{
    (void)state;
    memory_tree tree;
    build_reference_tree(&tree, 8);
    assert_int_equal(tree.count, 15);
    for (unsigned level = 0; level < 4; level++)
        for (unsigned index = 0; index < (8u >> level); index++) {
            uint8_t hash[JX_HASH_SIZE];
            jx_error err;
            assert_int_equal(memory_reader(&tree, level, index, hash, &err), 0);
            assert_hash_hex(hash, reference_nodes[level][index]);
        }
    memory_tree_free(&tree);
}

static void test_reference_inclusion_proofs(void **state)
{
    (void)state;
    memory_tree tree;
    build_reference_tree(&tree, 8);
    for (size_t v = 0; v < sizeof inclusion_vectors / sizeof inclusion_vectors[0]; v++) {
        const proof_vector *vector = &inclusion_vectors[v];
        uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
        size_t count = 99;
        jx_error err;
        memory_tree prefix;
        build_reference_tree(&prefix, (unsigned)vector->b);
        assert_int_equal(jx_merkle_inclusion_proof(memory_reader, &prefix, vector->a, vector->b,
                                                   proof, &count, &err),
                         0);
        assert_int_equal(count, vector->count);
        for (size_t i = 0; i < count; i++)
            assert_hash_hex(proof[i], vector->hashes[i]);
        /* The proof is the same when produced from the bigger tree's storage. */
        size_t count8 = 0;
        uint8_t proof8[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
        assert_int_equal(jx_merkle_inclusion_proof(memory_reader, &tree, vector->a, vector->b,
                                                   proof8, &count8, &err),
                         0);
        assert_int_equal(count8, count);
        assert_memory_equal(proof8, proof, count * JX_HASH_SIZE);

        uint8_t leaf[JX_HASH_SIZE], root[JX_HASH_SIZE];
        jx_merkle_leaf_hash(leaf_inputs[vector->a].data, leaf_inputs[vector->a].len, leaf);
        hex_decode(reference_roots[vector->b], root, sizeof root);
        assert_int_equal(
            jx_merkle_verify_inclusion(vector->a, vector->b, leaf, proof, count, root, &err), 0);
        /* Wrong index, wrong size, wrong root, truncated or extended proof. */
        assert_int_equal(
            jx_merkle_verify_inclusion(vector->a + 1, vector->b, leaf, proof, count, root, &err),
            -1);
        assert_int_equal(err.code, JX_ERR_PROOF_INVALID);
        assert_int_equal(
            jx_merkle_verify_inclusion(vector->a, vector->b * 2, leaf, proof, count, root, &err),
            -1);
        uint8_t other_root[JX_HASH_SIZE];
        hex_decode(reference_roots[vector->b - 1], other_root, sizeof other_root);
        assert_int_equal(
            jx_merkle_verify_inclusion(vector->a, vector->b, leaf, proof, count, other_root, &err),
            -1);
        if (count > 0) {
            assert_int_equal(jx_merkle_verify_inclusion(vector->a, vector->b, leaf, proof,
                                                        count - 1, root, &err),
                             -1);
            memcpy(proof[count], root, JX_HASH_SIZE);
            assert_int_equal(jx_merkle_verify_inclusion(vector->a, vector->b, leaf, proof,
                                                        count + 1, root, &err),
                             -1);
        }
        memory_tree_free(&prefix);
    }
    memory_tree_free(&tree);
}

static void test_reference_consistency_proofs(void **state)
{
    (void)state;
    memory_tree tree;
    build_reference_tree(&tree, 8);
    for (size_t v = 0; v < sizeof consistency_vectors / sizeof consistency_vectors[0]; v++) {
        const proof_vector *vector = &consistency_vectors[v];
        uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
        size_t count = 99;
        jx_error err;
        assert_int_equal(jx_merkle_consistency_proof(memory_reader, &tree, vector->a, vector->b,
                                                     proof, &count, &err),
                         0);
        assert_int_equal(count, vector->count);
        for (size_t i = 0; i < count; i++)
            assert_hash_hex(proof[i], vector->hashes[i]);
        uint8_t root1[JX_HASH_SIZE], root2[JX_HASH_SIZE];
        hex_decode(reference_roots[vector->a], root1, sizeof root1);
        hex_decode(reference_roots[vector->b], root2, sizeof root2);
        assert_int_equal(
            jx_merkle_verify_consistency(vector->a, vector->b, root1, root2, proof, count, &err),
            0);
        if (count == 0)
            continue;
        /* Swapped roots, wrong sizes, truncated proof, flipped bit. */
        assert_int_equal(
            jx_merkle_verify_consistency(vector->a, vector->b, root2, root1, proof, count, &err),
            -1);
        assert_int_equal(err.code, JX_ERR_PROOF_INVALID);
        assert_int_equal(jx_merkle_verify_consistency(vector->a + 1, vector->b, root1, root2, proof,
                                                      count, &err),
                         -1);
        assert_int_equal(jx_merkle_verify_consistency(vector->a, vector->b * 2, root1, root2, proof,
                                                      count, &err),
                         -1);
        assert_int_equal(jx_merkle_verify_consistency(vector->a, vector->b, root1, root2, proof,
                                                      count - 1, &err),
                         -1);
        for (size_t i = 0; i < count; i++) {
            proof[i][0] ^= 0x10;
            assert_int_equal(jx_merkle_verify_consistency(vector->a, vector->b, root1, root2, proof,
                                                          count, &err),
                             -1);
            proof[i][0] ^= 0x10;
        }
    }
    memory_tree_free(&tree);
}

static void test_edge_cases(void **state)
{
    (void)state;
    jx_error err;
    uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
    size_t count = 0;
    memory_tree tree;
    build_reference_tree(&tree, 3);
    /* No proof for a leaf past the end. */
    assert_int_equal(jx_merkle_inclusion_proof(memory_reader, &tree, 3, 3, proof, &count, &err),
                     -1);
    assert_int_equal(err.code, JX_ERR_NOT_FOUND);
    /* No consistency proof towards a smaller tree. */
    assert_int_equal(jx_merkle_consistency_proof(memory_reader, &tree, 3, 2, proof, &count, &err),
                     -1);
    uint8_t root[JX_HASH_SIZE], empty[JX_HASH_SIZE];
    jx_merkle_frontier_root(&tree.frontier, root);
    jx_merkle_empty_root(empty);
    assert_int_equal(jx_merkle_verify_consistency(0, 3, empty, root, proof, 0, &err), 0);
    assert_int_equal(jx_merkle_verify_consistency(3, 3, root, root, proof, 0, &err), 0);
    assert_int_equal(jx_merkle_verify_consistency(3, 3, root, empty, proof, 0, &err), -1);
    assert_int_equal(jx_merkle_verify_consistency(2, 3, empty, root, proof, 0, &err), -1);
    assert_int_equal(jx_merkle_verify_inclusion(0, 0, root, proof, 0, root, &err), -1);
    memory_tree_free(&tree);
}

/* ---- randomized checks against a direct recursive RFC 9162 implementation ---- */

static void recursive_root(uint8_t (*leaves)[JX_HASH_SIZE], uint64_t n, uint8_t out[JX_HASH_SIZE])
{
    if (n == 1) {
        memcpy(out, leaves[0], JX_HASH_SIZE);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t left[JX_HASH_SIZE], right[JX_HASH_SIZE];
    recursive_root(leaves, k, left);
    recursive_root(leaves + k, n - k, right);
    jx_merkle_node_hash(left, right, out);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_random_trees(void **state)
{
    (void)state;
    enum { MAX_LEAVES = 300 };
    static uint8_t leaves[MAX_LEAVES][JX_HASH_SIZE];
    static uint8_t roots[MAX_LEAVES + 1][JX_HASH_SIZE];
    memory_tree tree;
    memset(&tree, 0, sizeof tree);
    jx_merkle_empty_root(roots[0]);
    for (uint64_t i = 0; i < MAX_LEAVES; i++) {
        uint8_t data[40];
        size_t len = rng_next() % sizeof data;
        for (size_t b = 0; b < len; b++)
            data[b] = (uint8_t)rng_next();
        jx_merkle_leaf_hash(data, len, leaves[i]);
        memory_tree_append(&tree, leaves[i]);
        jx_merkle_frontier_root(&tree.frontier, roots[i + 1]);
        uint8_t expected[JX_HASH_SIZE];
        recursive_root(leaves, i + 1, expected);
        assert_memory_equal(roots[i + 1], expected, JX_HASH_SIZE);
    }

    jx_error err;
    uint8_t proof[JX_MERKLE_MAX_PROOF][JX_HASH_SIZE];
    size_t count;
    /* Every inclusion proof of every tree size up to MAX_LEAVES. */
    for (uint64_t size = 1; size <= MAX_LEAVES; size++) {
        for (uint64_t index = 0; index < size; index++) {
            tree.reads = 0;
            assert_int_equal(
                jx_merkle_inclusion_proof(memory_reader, &tree, index, size, proof, &count, &err),
                0);
            /* O(log n) reads: at most two per level. */
            assert_true(tree.reads <= 2 * 10);
            assert_int_equal(jx_merkle_verify_inclusion(index, size, leaves[index], proof, count,
                                                        roots[size], &err),
                             0);
            if (count > 0) {
                size_t which = rng_next() % count;
                size_t byte = rng_next() % JX_HASH_SIZE;
                proof[which][byte] ^= (uint8_t)(1u << (rng_next() % 8));
                assert_int_equal(jx_merkle_verify_inclusion(index, size, leaves[index], proof,
                                                            count, roots[size], &err),
                                 -1);
            }
            uint8_t wrong_leaf[JX_HASH_SIZE];
            memcpy(wrong_leaf, leaves[index], JX_HASH_SIZE);
            wrong_leaf[rng_next() % JX_HASH_SIZE] ^= 1;
            assert_int_equal(jx_merkle_verify_inclusion(index, size, wrong_leaf, proof, count,
                                                        roots[size], &err),
                             -1);
        }
    }
    /* Consistency proofs between random pairs of sizes, and all pairs below 64. */
    for (uint64_t size2 = 1; size2 <= MAX_LEAVES; size2++) {
        for (int trial = 0; trial < 70; trial++) {
            uint64_t size1 = size2 <= 64 ? (uint64_t)trial : rng_next() % (size2 + 1);
            if (size1 > size2)
                break;
            tree.reads = 0;
            assert_int_equal(jx_merkle_consistency_proof(memory_reader, &tree, size1, size2, proof,
                                                         &count, &err),
                             0);
            assert_true(tree.reads <= 4 * 10);
            assert_int_equal(jx_merkle_verify_consistency(size1, size2, roots[size1], roots[size2],
                                                          proof, count, &err),
                             0);
            if (count > 0) {
                size_t which = rng_next() % count;
                proof[which][rng_next() % JX_HASH_SIZE] ^= (uint8_t)(1u << (rng_next() % 8));
                assert_int_equal(jx_merkle_verify_consistency(size1, size2, roots[size1],
                                                              roots[size2], proof, count, &err),
                                 -1);
            }
            if (size1 > 0 && size1 < size2) {
                assert_int_equal(jx_merkle_verify_consistency(size1, size2, roots[size1 - 1],
                                                              roots[size2], proof, count, &err),
                                 -1);
            }
        }
    }
    memory_tree_free(&tree);
}

static void test_stored_layout(void **state)
{
    (void)state;
    /* Spot values of the post-order layout, worked out by hand. */
    assert_int_equal(jx_merkle_stored_index(0, 0), 0);
    assert_int_equal(jx_merkle_stored_index(0, 1), 1);
    assert_int_equal(jx_merkle_stored_index(1, 0), 2);
    assert_int_equal(jx_merkle_stored_index(0, 2), 3);
    assert_int_equal(jx_merkle_stored_index(0, 3), 4);
    assert_int_equal(jx_merkle_stored_index(1, 1), 5);
    assert_int_equal(jx_merkle_stored_index(2, 0), 6);
    assert_int_equal(jx_merkle_stored_count(4), 7);
    assert_int_equal(jx_merkle_stored_count(1000000), 2000000 - 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_roots),
        cmocka_unit_test(test_reference_nodes),
        cmocka_unit_test(test_reference_inclusion_proofs),
        cmocka_unit_test(test_reference_consistency_proofs),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_stored_layout),
        cmocka_unit_test(test_random_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
