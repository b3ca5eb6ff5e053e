/* tree.c — a file-backed Merkle tree: every complete subtree's hash, post-order.
 *
 * Invariant: the file holds exactly jx_merkle_stored_count(n) nodes for some
 * n (after open repairs it), `stored` of them are on disk and `pending` more
 * wait in memory; together they are the nodes of frontier.size leaves.
 */
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TREE_MAGIC "JXTREE1\n"

enum {
    TREE_HEADER_SIZE = 16,
    /* Nodes buffered before a write; 8192 nodes = 256 KiB. */
    PENDING_FLUSH = 8192,
    /* Nodes read from the file kept in memory (direct-mapped, 160 KiB). Proofs
     * for recent records share the big old subtrees on their left, so a small
     * cache turns most of a proof's reads into memory reads. */
    CACHE_SLOTS = 4096,
};

typedef struct {
    uint64_t at_plus_one; /* stored index + 1; 0: empty */
    uint8_t hash[JX_HASH_SIZE];
} cached_node;

struct jx_tree {
    int fd;
    char *path;
    bool read_only;
    uint64_t stored;
    uint8_t (*pending)[JX_HASH_SIZE];
    size_t pending_count;
    size_t pending_capacity;
    jx_merkle_frontier frontier;
    cached_node *cache; /* CACHE_SLOTS entries of nodes on disk; may be NULL */
};

static int node_reader(void *ctx, unsigned level, uint64_t index, uint8_t out[JX_HASH_SIZE],
                       jx_error *err)
{
    jx_tree *self = ctx;
    uint64_t at = jx_merkle_stored_index(level, index);
    if (at >= self->stored + self->pending_count)
        return jx_error_set(err, JX_ERR_NOT_FOUND,
                            "Merkle node %u/%llu is beyond the end of tree file %s", level,
                            (unsigned long long)index, self->path);
    if (at >= self->stored) {
        memcpy(out, self->pending[at - self->stored], JX_HASH_SIZE);
        return 0;
    }
    cached_node *slot = self->cache ? &self->cache[at % CACHE_SLOTS] : NULL;
    if (slot && slot->at_plus_one == at + 1) {
        memcpy(out, slot->hash, JX_HASH_SIZE);
        return 0;
    }
    off_t offset = (off_t)(TREE_HEADER_SIZE + at * JX_HASH_SIZE);
    ssize_t got = pread(self->fd, out, JX_HASH_SIZE, offset);
    if (got != JX_HASH_SIZE)
        return jx_error_set(err, JX_ERR_IO, "cannot read Merkle node at byte %lld of %s: %s",
                            (long long)offset, self->path,
                            got < 0 ? strerror(errno) : "file too short");
    if (slot) {
        slot->at_plus_one = at + 1;
        memcpy(slot->hash, out, JX_HASH_SIZE);
    }
    return 0;
}

static int pending_sink(void *ctx, unsigned level, uint64_t index, const uint8_t hash[JX_HASH_SIZE],
                        jx_error *err)
{
    (void)level;
    (void)index;
    jx_tree *self = ctx;
    if (self->pending_count == self->pending_capacity) {
        size_t capacity = self->pending_capacity ? 2 * self->pending_capacity : 1024;
        void *grown = realloc(self->pending, capacity * JX_HASH_SIZE);
        if (!grown)
            return jx_error_set(err, JX_ERR_SYSTEM, "out of memory buffering Merkle nodes");
        self->pending = grown;
        self->pending_capacity = capacity;
    }
    memcpy(self->pending[self->pending_count++], hash, JX_HASH_SIZE);
    return 0;
}

static int write_all(int fd, const void *data, size_t len, off_t offset, const char *path,
                     jx_error *err)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t wrote = pwrite(fd, p, len, offset);
        if (wrote < 0) {
            if (errno == EINTR)
                continue;
            return jx_error_set(err, JX_ERR_IO, "cannot write %s at byte %lld: %s", path,
                                (long long)offset, strerror(errno));
        }
        p += wrote;
        len -= (size_t)wrote;
        offset += wrote;
    }
    return 0;
}

static jx_tree *tree_alloc(const char *path, jx_error *err)
{
    jx_tree *self = calloc(1, sizeof *self);
    if (self)
        self->path = strdup(path);
    if (!self || !self->path) {
        free(self);
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory opening tree file %s", path);
        return NULL;
    }
    self->fd = -1;
    self->cache = calloc(CACHE_SLOTS, sizeof *self->cache); /* optional: NULL reads the file */
    jx_merkle_frontier_init(&self->frontier);
    return self;
}

static int write_header(jx_tree *self, jx_error *err)
{
    uint8_t header[TREE_HEADER_SIZE] = {0};
    memcpy(header, TREE_MAGIC, 8);
    if (ftruncate(self->fd, 0) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot truncate %s: %s", self->path, strerror(errno));
    return write_all(self->fd, header, sizeof header, 0, self->path, err);
}

jx_tree *jx_tree_open(const char *path, bool create, bool read_only, jx_error *err)
{
    jx_tree *self = tree_alloc(path, err);
    if (!self)
        return NULL;
    self->read_only = read_only;
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (create && !read_only ? O_CREAT : 0);
    self->fd = open(path, flags, 0600);
    if (self->fd < 0) {
        jx_error_set(err, errno == ENOENT ? JX_ERR_NOT_FOUND : JX_ERR_IO, "cannot open %s: %s",
                     path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(self->fd, &st) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    if (file_size < TREE_HEADER_SIZE) {
        if (read_only) {
            jx_error_set(err, JX_ERR_JOURNAL_CORRUPT, "tree file %s has no header", path);
            goto fail;
        }
        if (write_header(self, err) != 0)
            goto fail;
        file_size = TREE_HEADER_SIZE;
    }
    uint8_t header[TREE_HEADER_SIZE];
    if (pread(self->fd, header, sizeof header, 0) != TREE_HEADER_SIZE ||
        memcmp(header, TREE_MAGIC, 8) != 0) {
        jx_error_set(err, JX_ERR_JOURNAL_CORRUPT, "%s is not a justx tree file (bad header)", path);
        goto fail;
    }
    /* The largest tree whose nodes are all in the file; anything after them
     * is a group of nodes cut short by a crash. */
    uint64_t nodes = (file_size - TREE_HEADER_SIZE) / JX_HASH_SIZE;
    uint64_t size = nodes / 2 + 64;
    while (size > 0 && jx_merkle_stored_count(size) > nodes)
        size--;
    self->stored = jx_merkle_stored_count(size);
    uint64_t exact = TREE_HEADER_SIZE + self->stored * JX_HASH_SIZE;
    if (exact != file_size && !read_only && ftruncate(self->fd, (off_t)exact) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot truncate %s: %s", path, strerror(errno));
        goto fail;
    }
    if (jx_merkle_frontier_load(&self->frontier, size, node_reader, self, err) != 0)
        goto fail;
    return self;
fail:
    jx_tree_destroy(&self);
    return NULL;
}

jx_tree *jx_tree_open_temporary(const char *dir, jx_error *err)
{
    jx_tree *self = tree_alloc(dir, err);
    if (!self)
        return NULL;
    self->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        /* Some file systems have no O_TMPFILE: a named file, unlinked at once. */
        char template[4096];
        snprintf(template, sizeof template, "%s/justx-tree-XXXXXX", dir);
        self->fd = mkostemp(template, O_CLOEXEC);
        if (self->fd >= 0)
            unlink(template);
    }
    if (self->fd < 0) {
        jx_error_set(err, JX_ERR_IO, "cannot create a temporary tree file in %s: %s", dir,
                     strerror(errno));
        goto fail;
    }
    if (write_header(self, err) != 0)
        goto fail;
    return self;
fail:
    jx_tree_destroy(&self);
    return NULL;
}

void jx_tree_destroy(jx_tree **self_p)
{
    if (!self_p || !*self_p)
        return;
    jx_tree *self = *self_p;
    if (self->fd >= 0) {
        if (!self->read_only)
            jx_tree_flush(self, NULL);
        close(self->fd);
    }
    free(self->pending);
    free(self->cache);
    free(self->path);
    free(self);
    *self_p = NULL;
}

uint64_t jx_tree_size(const jx_tree *self)
{
    return self->frontier.size;
}

int jx_tree_append(jx_tree *self, const uint8_t leaf[JX_HASH_SIZE], jx_error *err)
{
    if (self->read_only)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "tree file %s is open read-only",
                            self->path);
    size_t before = self->pending_count;
    if (jx_merkle_frontier_append(&self->frontier, leaf, pending_sink, self, err) != 0) {
        self->pending_count = before;
        return -1;
    }
    if (self->pending_count >= PENDING_FLUSH)
        return jx_tree_flush(self, err);
    return 0;
}

int jx_tree_flush(jx_tree *self, jx_error *err)
{
    if (self->pending_count == 0)
        return 0;
    off_t offset = (off_t)(TREE_HEADER_SIZE + self->stored * JX_HASH_SIZE);
    if (write_all(self->fd, self->pending, self->pending_count * JX_HASH_SIZE, offset, self->path,
                  err) != 0)
        return -1;
    self->stored += self->pending_count;
    self->pending_count = 0;
    return 0;
}

int jx_tree_sync(jx_tree *self, jx_error *err)
{
    if (self->read_only)
        return 0;
    if (jx_tree_flush(self, err) != 0)
        return -1;
    if (fdatasync(self->fd) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot fdatasync %s: %s", self->path, strerror(errno));
    return 0;
}

int jx_tree_truncate(jx_tree *self, uint64_t size, jx_error *err)
{
    if (size > self->frontier.size)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "cannot cut tree %s back to %llu leaves, it has %llu", self->path,
                            (unsigned long long)size, (unsigned long long)self->frontier.size);
    if (size == self->frontier.size)
        return 0;
    if (jx_tree_flush(self, err) != 0)
        return -1;
    uint64_t stored = jx_merkle_stored_count(size);
    if (ftruncate(self->fd, (off_t)(TREE_HEADER_SIZE + stored * JX_HASH_SIZE)) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot truncate %s: %s", self->path, strerror(errno));
    self->stored = stored;
    if (self->cache) /* nodes past the cut may be written again with other hashes */
        memset(self->cache, 0, CACHE_SLOTS * sizeof *self->cache);
    return jx_merkle_frontier_load(&self->frontier, size, node_reader, self, err);
}

int jx_tree_root(jx_tree *self, uint64_t size, uint8_t out[JX_HASH_SIZE], jx_error *err)
{
    if (size > self->frontier.size)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "tree %s has %llu leaves, not %llu", self->path,
                            (unsigned long long)self->frontier.size, (unsigned long long)size);
    if (size == self->frontier.size) {
        jx_merkle_frontier_root(&self->frontier, out);
        return 0;
    }
    return jx_merkle_range_root(node_reader, self, 0, size, out, err);
}

int jx_tree_leaf(jx_tree *self, uint64_t index, uint8_t out[JX_HASH_SIZE], jx_error *err)
{
    if (index >= self->frontier.size)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "tree %s has no leaf %llu", self->path,
                            (unsigned long long)index);
    return node_reader(self, 0, index, out, err);
}

int jx_tree_inclusion_proof(jx_tree *self, uint64_t index, uint64_t size,
                            uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err)
{
    if (size > self->frontier.size)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "tree %s has %llu leaves, not %llu", self->path,
                            (unsigned long long)self->frontier.size, (unsigned long long)size);
    return jx_merkle_inclusion_proof(node_reader, self, index, size, proof, count, err);
}

int jx_tree_consistency_proof(jx_tree *self, uint64_t size1, uint64_t size2,
                              uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err)
{
    if (size2 > self->frontier.size)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "tree %s has %llu leaves, not %llu", self->path,
                            (unsigned long long)self->frontier.size, (unsigned long long)size2);
    return jx_merkle_consistency_proof(node_reader, self, size1, size2, proof, count, err);
}
