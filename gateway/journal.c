/* journal.c — append-only Merkle journal: write, recover, prove.
 *
 * FILES in the journal directory (mode 0700):
 *
 *   journal-00000000.seg, journal-00000001.seg, ...   the records (the truth)
 *   checkpoints                                        signed checkpoints
 *   tree.hashes                                        Merkle nodes (derived)
 *   tree.state                                         hint for a fast reopen (derived)
 *   LOCK                                               held by the one writer
 *
 * SEGMENT FORMAT (all integers big-endian; see also docs/journal-format.md):
 *
 *   offset 0   8 bytes   magic "JXJSEG1\n" (4A 58 4A 53 45 47 31 0A)
 *   offset 8   8 bytes   index of the segment's first record, uint64
 *   offset 16  frames, back to back, to the end of the file:
 *     4 bytes   magic "JXR1" (4A 58 52 31)
 *     4 bytes   L, length of the record, uint32, 1 <= L <= 16 MiB
 *     L bytes   the record: a serialized justx.v1.JournalRecord
 *     4 bytes   CRC32C (Castagnoli) of the 8 + L bytes before it, uint32
 *
 * Segment numbers are consecutive from 0; a segment is closed once the next
 * frame would take it past segment_max_bytes (default 64 MiB). Record
 * indices are consecutive from 0 across segments, and each record holds its
 * own index (field 1). Record i is leaf i of the RFC 9162 Merkle tree, whose
 * leaf hash is SHA-256(0x00 || the L record bytes as stored).
 *
 * CHECKPOINT FILE: signed notes (checkpoint.h) written back to back; a note
 * ends after the signature lines that follow its blank line.
 *
 * WHAT IS FSYNCED BEFORE WHAT:
 *
 *   1. A new segment's header is written, and the previous segment is
 *      fdatasynced complete before the first record goes into the new one.
 *   2. jx_journal_append writes the whole batch of frames, then one
 *      fdatasync of the active segment, then (if a segment was created since
 *      the last sync) an fsync of the directory, and only then returns: a
 *      record reported durable survives power loss.
 *   3. jx_journal_checkpoint first does 2, then flushes and fdatasyncs
 *      tree.hashes, then signs the durable size and root, then appends the
 *      note to "checkpoints" and fdatasyncs it. So a checkpoint never covers
 *      a record that is not durable, nor tree nodes that are not.
 *   4. tree.hashes is otherwise written lazily and never trusted blindly;
 *      tree.state is written (temporary file, fsync, rename, fsync of the
 *      directory) only at a clean close.
 *
 * RECOVERY AT OPEN:
 *
 *   Every frame of every segment is checked (magic, length, CRC32C, index).
 *   A bad frame in the last segment after which no valid frame follows is a
 *   torn tail: it is cut off (ftruncate, fdatasync) and reported. Any other
 *   bad frame, a missing segment, a bad header or an index out of sequence
 *   is JOURNAL_CORRUPT naming the segment file and byte offset: the journal
 *   refuses to open rather than write on top of damage. An incomplete last
 *   checkpoint note is cut off too. A checkpoint covering more records than
 *   remain, or whose root the records do not reproduce, is JOURNAL_CORRUPT.
 *
 *   The tree file is trusted up to the largest size whose root matches the
 *   latest checkpoint or tree.state; the leaves after that are recomputed
 *   from the records. Opening after a clean stop or a recent checkpoint
 *   therefore hashes only the records written since.
 */
#include "journal.h"

#include "base64.h"
#include "checkpoint.h"
#include "segment.h"
#include "tree.h"
#include "trust.h"

#include "justx/v1/journal.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    DEFAULT_SEGMENT_MAX = 64 * 1024 * 1024,
    MAX_SEGMENT_MAX = 1024 * 1024 * 1024,
    MIN_SEGMENT_MAX = 4096,
};

#define CHECKPOINT_FILE "checkpoints"
#define TREE_FILE       "tree.hashes"
#define TREE_STATE_FILE "tree.state"
#define LOCK_FILE       "LOCK"

typedef struct {
    uint32_t number;
    uint64_t first_index;
    uint64_t count;
    uint64_t bytes;
} segment_info;

struct jx_journal {
    char *dir;
    int dir_fd;
    int lock_fd;
    jx_journal_options options;
    segment_info *segments;
    size_t segment_count;
    size_t segment_capacity;
    int active_fd;
    int read_fd;
    uint32_t read_number;
    uint32_t *offsets; /* offsets[i]: frame of record i within its segment */
    uint64_t offsets_capacity;
    uint64_t size;
    uint64_t durable;
    bool dir_dirty;
    jx_tree *tree;
    int checkpoint_fd;
    uint64_t checkpoint_bytes;
    char *latest_note;
    size_t latest_note_len;
    uint64_t latest_size;
    int64_t latest_time_ms;
    bool failed;
    uint8_t *buffer;
    size_t buffer_capacity;
};

static const char *const event_names[] = {
    [JX_EVENT_UNSPECIFIED] = "UNSPECIFIED",
    [JX_EVENT_ACCEPTED] = "ACCEPTED",
    [JX_EVENT_REJECTED] = "REJECTED",
    [JX_EVENT_DELIVERED] = "DELIVERED",
    [JX_EVENT_ACKNOWLEDGED] = "ACKNOWLEDGED",
    [JX_EVENT_EXPIRED] = "EXPIRED",
    [JX_EVENT_CONFIG_CHANGED] = "CONFIG_CHANGED",
    [JX_EVENT_GATEWAY_STARTED] = "GATEWAY_STARTED",
    [JX_EVENT_GATEWAY_STOPPED] = "GATEWAY_STOPPED",
    [JX_EVENT_CERTIFICATE] = "CERTIFICATE",
};

const char *jx_journal_event_name(jx_journal_event event)
{
    if ((int)event < 0 || (size_t)event >= sizeof event_names / sizeof event_names[0])
        return NULL;
    return event_names[event];
}

jx_journal_event jx_journal_event_from_name(const char *name)
{
    for (size_t i = 1; i < sizeof event_names / sizeof event_names[0]; i++)
        if (strcasecmp(name, event_names[i]) == 0)
            return (jx_journal_event)i;
    return JX_EVENT_UNSPECIFIED;
}

/* ---- small file helpers ---- */

static char *path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

static int write_at(int fd, const void *data, size_t len, uint64_t offset, const char *what,
                    jx_error *err)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t wrote = pwrite(fd, p, len, (off_t)offset);
        if (wrote < 0) {
            if (errno == EINTR)
                continue;
            return jx_error_set(err, JX_ERR_IO, "cannot write %s at byte %" PRIu64 ": %s", what,
                                offset, strerror(errno));
        }
        p += wrote;
        len -= (size_t)wrote;
        offset += (uint64_t)wrote;
    }
    return 0;
}

/* Reads a whole file into *data (caller frees). */
static int read_file(int dir_fd, const char *name, uint8_t **data, size_t *len, bool *exists,
                     jx_error *err)
{
    *data = NULL;
    *len = 0;
    *exists = false;
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return jx_error_set(err, JX_ERR_IO, "cannot open %s: %s", name, strerror(errno));
    }
    *exists = true;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot stat %s: %s", name, strerror(errno));
        goto done;
    }
    size_t size = (size_t)st.st_size;
    *data = malloc(size ? size : 1);
    if (!*data) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading %s (%zu bytes)", name, size);
        goto done;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, *data + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            jx_error_set(err, JX_ERR_IO, "cannot read %s: %s", name,
                         n < 0 ? strerror(errno) : "file shrank while reading");
            free(*data);
            *data = NULL;
            goto done;
        }
        got += (size_t)n;
    }
    *len = size;
    rc = 0;
done:
    close(fd);
    return rc;
}

static int sync_dir(jx_journal *self, jx_error *err)
{
    if (fsync(self->dir_fd) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot fsync journal directory %s: %s", self->dir,
                            strerror(errno));
    self->dir_dirty = false;
    return 0;
}

/* ---- segment bookkeeping ---- */

static segment_info *active_segment(jx_journal *self)
{
    return self->segment_count ? &self->segments[self->segment_count - 1] : NULL;
}

static int add_segment(jx_journal *self, uint32_t number, uint64_t first_index, jx_error *err)
{
    if (self->segment_count == self->segment_capacity) {
        size_t capacity = self->segment_capacity ? 2 * self->segment_capacity : 16;
        void *grown = realloc(self->segments, capacity * sizeof *self->segments);
        if (!grown)
            return jx_error_set(err, JX_ERR_SYSTEM, "out of memory listing segments");
        self->segments = grown;
        self->segment_capacity = capacity;
    }
    self->segments[self->segment_count++] = (segment_info){
        .number = number, .first_index = first_index, .count = 0, .bytes = JX_SEGMENT_HEADER_SIZE};
    return 0;
}

static int push_offset(jx_journal *self, uint64_t index, uint32_t offset, jx_error *err)
{
    if (index >= self->offsets_capacity) {
        uint64_t capacity = self->offsets_capacity ? 2 * self->offsets_capacity : 4096;
        while (capacity <= index)
            capacity *= 2;
        void *grown = realloc(self->offsets, capacity * sizeof *self->offsets);
        if (!grown)
            return jx_error_set(err, JX_ERR_SYSTEM, "out of memory indexing %" PRIu64 " records",
                                index);
        self->offsets = grown;
        self->offsets_capacity = capacity;
    }
    self->offsets[index] = offset;
    return 0;
}

static segment_info *segment_of(jx_journal *self, uint64_t index)
{
    size_t low = 0, high = self->segment_count;
    while (high - low > 1) {
        size_t mid = (low + high) / 2;
        if (self->segments[mid].first_index <= index)
            low = mid;
        else
            high = mid;
    }
    return &self->segments[low];
}

static int segment_fd(jx_journal *self, const segment_info *segment, jx_error *err)
{
    if (segment == active_segment(self) && self->active_fd >= 0)
        return self->active_fd;
    if (self->read_fd >= 0 && self->read_number == segment->number)
        return self->read_fd;
    if (self->read_fd >= 0)
        close(self->read_fd);
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, segment->number);
    self->read_fd = openat(self->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (self->read_fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot open segment %s/%s: %s", self->dir, name,
                            strerror(errno));
    self->read_number = segment->number;
    return self->read_fd;
}

static int create_segment(jx_journal *self, uint32_t number, uint64_t first_index, jx_error *err)
{
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, number);
    int fd = openat(self->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot create segment %s/%s: %s", self->dir, name,
                            strerror(errno));
    uint8_t header[JX_SEGMENT_HEADER_SIZE];
    jx_segment_header_encode(header, first_index);
    if (write_at(fd, header, sizeof header, 0, name, err) != 0 ||
        add_segment(self, number, first_index, err) != 0) {
        close(fd);
        return -1;
    }
    if (self->active_fd >= 0)
        close(self->active_fd);
    self->active_fd = fd;
    self->dir_dirty = true;
    return 0;
}

/* ---- recovery ---- */

/* Scans one segment's bytes; on damage decides between torn tail (last
 * segment, nothing valid after) and corruption. */
static int scan_segment(jx_journal *self, segment_info *segment, const uint8_t *bytes, size_t len,
                        bool last, jx_journal_recovery *recovery, jx_error *err)
{
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, segment->number);
    size_t at = JX_SEGMENT_HEADER_SIZE;
    while (at < len) {
        const uint8_t *record;
        uint32_t record_len;
        size_t frame_len;
        jx_frame_status status =
            jx_frame_parse(bytes + at, len - at, &record, &record_len, &frame_len);
        if (status != JX_FRAME_OK) {
            size_t next = jx_frame_resync(bytes, len, at + 1);
            if (!last || next < len)
                return jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                                    "journal %s is corrupt: %s at byte %zu of segment %s "
                                    "(record %" PRIu64 "), and valid records follow it",
                                    self->dir, jx_frame_status_text(status), at, name, self->size);
            recovery->torn_tail = true;
            snprintf(recovery->torn_segment, sizeof recovery->torn_segment, "%s", name);
            recovery->torn_offset = at;
            recovery->torn_bytes = len - at;
            break;
        }
        uint64_t index;
        if (!jx_record_peek_index(record, record_len, &index) || index != self->size)
            return jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                                "journal %s is corrupt: the record at byte %zu of segment %s "
                                "does not carry index %" PRIu64 " as its position requires",
                                self->dir, at, name, self->size);
        if (push_offset(self, self->size, (uint32_t)at, err) != 0)
            return -1;
        self->size++;
        segment->count++;
        at += frame_len;
    }
    segment->bytes = at;
    return 0;
}

static int compare_numbers(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int list_segments(jx_journal *self, uint32_t **numbers, size_t *count, jx_error *err)
{
    *numbers = NULL;
    *count = 0;
    int fd = dup(self->dir_fd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return jx_error_set(err, JX_ERR_IO, "cannot list journal directory %s: %s", self->dir,
                            strerror(errno));
    }
    rewinddir(dir);
    size_t capacity = 0;
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir(dir)) != NULL) {
        uint32_t number;
        if (!jx_segment_name_parse(entry->d_name, &number))
            continue;
        if (*count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            void *grown = realloc(*numbers, capacity * sizeof **numbers);
            if (!grown) {
                rc = jx_error_set(err, JX_ERR_SYSTEM, "out of memory listing segments");
                break;
            }
            *numbers = grown;
        }
        (*numbers)[(*count)++] = number;
    }
    closedir(dir);
    if (rc == 0 && *count)
        qsort(*numbers, *count, sizeof **numbers, compare_numbers);
    return rc;
}

static int recover_segments(jx_journal *self, jx_journal_recovery *recovery, jx_error *err)
{
    uint32_t *numbers = NULL;
    size_t count = 0;
    uint8_t *bytes = NULL;
    int rc = -1;
    if (list_segments(self, &numbers, &count, err) != 0)
        goto done;
    for (size_t i = 0; i < count; i++) {
        char name[JX_SEGMENT_NAME_MAX];
        jx_segment_name(name, numbers[i]);
        if (numbers[i] != i) {
            char missing[JX_SEGMENT_NAME_MAX];
            jx_segment_name(missing, (uint32_t)i);
            jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                         "journal %s is corrupt: segment %s is missing (next present is %s)",
                         self->dir, missing, name);
            goto done;
        }
        size_t len;
        bool exists;
        free(bytes);
        if (read_file(self->dir_fd, name, &bytes, &len, &exists, err) != 0)
            goto done;
        bool last = i + 1 == count;
        if (add_segment(self, numbers[i], self->size, err) != 0)
            goto done;
        segment_info *segment = active_segment(self);
        if (len < JX_SEGMENT_HEADER_SIZE && last) {
            /* Created, header not yet on disk: the crash came before any
             * record of it could have been reported durable. */
            recovery->torn_tail = true;
            snprintf(recovery->torn_segment, sizeof recovery->torn_segment, "%s", name);
            recovery->torn_offset = 0;
            recovery->torn_bytes = len;
            segment->bytes = 0;
            break;
        }
        uint64_t first_index;
        if (!jx_segment_header_decode(bytes, len, &first_index)) {
            jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                         "journal %s is corrupt: segment %s has no valid header at byte 0",
                         self->dir, name);
            goto done;
        }
        if (first_index != self->size) {
            jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                         "journal %s is corrupt: segment %s starts at record %" PRIu64
                         " but the segments before it end at %" PRIu64,
                         self->dir, name, first_index, self->size);
            goto done;
        }
        if (scan_segment(self, segment, bytes, len, last, recovery, err) != 0)
            goto done;
    }
    rc = 0;
done:
    free(bytes);
    free(numbers);
    return rc;
}

/* Cuts the torn tail of the last segment (or rewrites a torn header) and
 * opens it for appending. */
static int open_active_segment(jx_journal *self, jx_journal_recovery *recovery, jx_error *err)
{
    segment_info *segment = active_segment(self);
    if (!segment)
        return create_segment(self, 0, 0, err);
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, segment->number);
    int fd = openat(self->dir_fd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot open segment %s/%s: %s", self->dir, name,
                            strerror(errno));
    self->active_fd = fd;
    if (segment->bytes < JX_SEGMENT_HEADER_SIZE) {
        uint8_t header[JX_SEGMENT_HEADER_SIZE];
        jx_segment_header_encode(header, segment->first_index);
        if (ftruncate(fd, 0) != 0 || write_at(fd, header, sizeof header, 0, name, err) != 0)
            return jx_error_set(err, JX_ERR_IO, "cannot rewrite the header of %s/%s", self->dir,
                                name);
        segment->bytes = JX_SEGMENT_HEADER_SIZE;
    } else if (recovery->torn_tail && ftruncate(fd, (off_t)segment->bytes) != 0) {
        return jx_error_set(err, JX_ERR_IO,
                            "cannot cut the torn tail of %s/%s at byte %" PRIu64 ": %s", self->dir,
                            name, segment->bytes, strerror(errno));
    }
    /* What a killed predecessor wrote may still sit in the page cache only;
     * make it durable before anything builds on it. */
    if (fdatasync(fd) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot fdatasync %s/%s: %s", self->dir, name,
                            strerror(errno));
    return 0;
}

static int recover_checkpoints(jx_journal *self, jx_journal_recovery *recovery, jx_error *err)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    bool exists;
    int rc = -1;
    if (read_file(self->dir_fd, CHECKPOINT_FILE, &bytes, &len, &exists, err) != 0)
        return -1;
    size_t at = 0;
    while (at < len) {
        bool complete;
        size_t note_len = jx_note_extent((const char *)bytes + at, len - at, &complete);
        if (!complete) {
            recovery->torn_checkpoint = true;
            break;
        }
        jx_checkpoint parsed;
        jx_error parse_err;
        if (jx_checkpoint_parse((const char *)bytes + at, note_len, &parsed, &parse_err) != 0) {
            jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                         "journal %s is corrupt: the checkpoint at byte %zu of %s is malformed: %s",
                         self->dir, at, CHECKPOINT_FILE, parse_err.message);
            goto done;
        }
        if (parsed.size > self->size) {
            jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                         "journal %s is corrupt: the checkpoint at byte %zu of %s covers %" PRIu64
                         " records but the segments hold only %" PRIu64
                         "; durable records were lost",
                         self->dir, at, CHECKPOINT_FILE, parsed.size, self->size);
            goto done;
        }
        free(self->latest_note);
        self->latest_note = malloc(note_len + 1);
        if (!self->latest_note) {
            jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading checkpoints");
            goto done;
        }
        memcpy(self->latest_note, bytes + at, note_len);
        self->latest_note[note_len] = '\0';
        self->latest_note_len = note_len;
        self->latest_size = parsed.size;
        self->latest_time_ms = parsed.time_ms;
        recovery->checkpoints++;
        at += note_len;
    }
    self->checkpoint_bytes = at;
    if (!self->options.read_only) {
        self->checkpoint_fd =
            openat(self->dir_fd, CHECKPOINT_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (self->checkpoint_fd < 0) {
            jx_error_set(err, JX_ERR_IO, "cannot open %s/%s: %s", self->dir, CHECKPOINT_FILE,
                         strerror(errno));
            goto done;
        }
        if (!exists)
            self->dir_dirty = true;
        if (recovery->torn_checkpoint &&
            (ftruncate(self->checkpoint_fd, (off_t)at) != 0 || fdatasync(self->checkpoint_fd))) {
            jx_error_set(err, JX_ERR_IO, "cannot cut the torn end of %s/%s: %s", self->dir,
                         CHECKPOINT_FILE, strerror(errno));
            goto done;
        }
    }
    rc = 0;
done:
    free(bytes);
    return rc;
}

/* tree.state: "size <n>\nroot <base64>\n". */
static bool read_tree_state(jx_journal *self, uint64_t *size, uint8_t root[JX_HASH_SIZE])
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    bool exists;
    jx_error ignored;
    bool ok = false;
    if (read_file(self->dir_fd, TREE_STATE_FILE, &bytes, &len, &exists, &ignored) != 0 || !exists)
        goto done;
    char text[256];
    if (len >= sizeof text)
        goto done;
    memcpy(text, bytes, len);
    text[len] = '\0';
    char root64[64];
    unsigned long long value;
    size_t root_len = 0;
    if (sscanf(text, "size %llu\nroot %63s\n", &value, root64) == 2 &&
        jx_base64_decode(root64, strlen(root64), root, JX_HASH_SIZE, &root_len) &&
        root_len == JX_HASH_SIZE) {
        *size = value;
        ok = true;
    }
done:
    free(bytes);
    return ok;
}

static int write_tree_state(jx_journal *self, jx_error *err)
{
    uint8_t root[JX_HASH_SIZE];
    if (jx_tree_root(self->tree, self->size, root, err) != 0)
        return -1;
    char root64[64], text[128];
    jx_base64_encode(root, sizeof root, root64);
    int len = snprintf(text, sizeof text, "size %" PRIu64 "\nroot %s\n", self->size, root64);
    int fd = openat(self->dir_fd, TREE_STATE_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot write %s/%s: %s", self->dir,
                            TREE_STATE_FILE ".tmp", strerror(errno));
    int rc = write_at(fd, text, (size_t)len, 0, TREE_STATE_FILE ".tmp", err);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = jx_error_set(err, JX_ERR_IO, "cannot fdatasync %s: %s", TREE_STATE_FILE ".tmp",
                          strerror(errno));
    close(fd);
    if (rc == 0 && renameat(self->dir_fd, TREE_STATE_FILE ".tmp", self->dir_fd, TREE_STATE_FILE))
        rc = jx_error_set(err, JX_ERR_IO, "cannot rename %s into place: %s", TREE_STATE_FILE,
                          strerror(errno));
    if (rc == 0)
        rc = sync_dir(self, err);
    return rc;
}

/* Leaf hashes of records [from, size) into the tree. */
static int rehash_records(jx_journal *self, uint64_t from, jx_journal_recovery *recovery,
                          jx_error *err)
{
    for (uint64_t i = from; i < self->size; i++) {
        uint8_t *record = NULL;
        size_t record_len = 0;
        uint8_t leaf[JX_HASH_SIZE];
        if (jx_journal_read(self, i, &record, &record_len, err) != 0)
            return -1;
        jx_merkle_leaf_hash(record, record_len, leaf);
        free(record);
        if (jx_tree_append(self->tree, leaf, err) != 0)
            return -1;
        recovery->rehashed++;
    }
    return 0;
}

/* Does the tree reproduce root at size? */
static bool tree_matches(jx_tree *tree, uint64_t size, const uint8_t root[JX_HASH_SIZE])
{
    uint8_t computed[JX_HASH_SIZE];
    jx_error ignored;
    return size <= jx_tree_size(tree) && jx_tree_root(tree, size, computed, &ignored) == 0 &&
           memcmp(computed, root, JX_HASH_SIZE) == 0;
}

static int recover_tree(jx_journal *self, jx_journal_recovery *recovery, jx_error *err)
{
    char *path = path_join(self->dir, TREE_FILE);
    if (!path)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory");
    bool read_only = self->options.read_only;
    jx_error open_err;
    self->tree = jx_tree_open(path, !read_only, read_only, &open_err);
    if (!self->tree && !read_only) {
        /* Derived data: a tree file that cannot be used is rebuilt. */
        unlink(path);
        self->tree = jx_tree_open(path, true, false, err);
    }
    free(path);
    if (!self->tree && !read_only)
        return -1;

    /* The largest prefix the tree file is known to hold correctly: the size
     * of the latest checkpoint or of the last clean close, if the tree
     * reproduces the root recorded there. */
    uint64_t trusted = 0;
    jx_checkpoint latest;
    bool have_checkpoint =
        self->latest_note &&
        jx_checkpoint_parse(self->latest_note, self->latest_note_len, &latest, &open_err) == 0;
    if (self->tree) {
        if (have_checkpoint && tree_matches(self->tree, latest.size, latest.root))
            trusted = latest.size;
        uint64_t state_size;
        uint8_t state_root[JX_HASH_SIZE];
        if (read_tree_state(self, &state_size, state_root) && state_size > trusted &&
            state_size <= self->size && tree_matches(self->tree, state_size, state_root))
            trusted = state_size;
    }
    if (read_only) {
        /* Nothing may be written: a tree that is not exactly right is
         * rebuilt from scratch in a temporary file. */
        if (!self->tree || trusted != self->size || jx_tree_size(self->tree) != self->size) {
            jx_tree_destroy(&self->tree);
            const char *tmp =
                self->options.temporary_dir ? self->options.temporary_dir : getenv("TMPDIR");
            self->tree = jx_tree_open_temporary(tmp && *tmp ? tmp : "/tmp", err);
            if (!self->tree)
                return -1;
        }
    } else if (jx_tree_truncate(self->tree, trusted, err) != 0) {
        return -1;
    }
    if (rehash_records(self, jx_tree_size(self->tree), recovery, err) != 0)
        return -1;
    if (have_checkpoint && !tree_matches(self->tree, latest.size, latest.root))
        return jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                            "journal %s is corrupt: the first %" PRIu64
                            " records do not reproduce the root of the latest checkpoint in %s",
                            self->dir, latest.size, CHECKPOINT_FILE);
    return 0;
}

/* ---- open / close ---- */

static int open_directory(jx_journal *self, jx_error *err)
{
    struct stat st;
    if (stat(self->dir, &st) != 0) {
        if (errno != ENOENT || self->options.read_only)
            return jx_error_set(err, errno == ENOENT ? JX_ERR_NOT_FOUND : JX_ERR_IO,
                                "cannot open journal directory %s: %s", self->dir, strerror(errno));
        if (mkdir(self->dir, 0700) != 0)
            return jx_error_set(err, JX_ERR_IO, "cannot create journal directory %s: %s", self->dir,
                                strerror(errno));
        /* The new directory's entry must be durable in its parent too. */
        char *parent = path_join(self->dir, "..");
        int parent_fd = parent ? open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (parent_fd >= 0) {
            fsync(parent_fd);
            close(parent_fd);
        }
        free(parent);
    } else if (!S_ISDIR(st.st_mode)) {
        return jx_error_set(err, JX_ERR_IO, "journal path %s is not a directory", self->dir);
    }
    self->dir_fd = open(self->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot open journal directory %s: %s", self->dir,
                            strerror(errno));
    if (self->options.read_only)
        return 0;
    self->lock_fd = openat(self->dir_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot create %s/%s: %s", self->dir, LOCK_FILE,
                            strerror(errno));
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return jx_error_set(err, JX_ERR_IO,
                            "journal %s is in use by another process (%s is locked)", self->dir,
                            LOCK_FILE);
    return 0;
}

jx_journal *jx_journal_open(const char *dir, const jx_journal_options *options,
                            jx_journal_recovery *recovery, jx_error *err)
{
    jx_journal_recovery local_recovery;
    if (!recovery)
        recovery = &local_recovery;
    memset(recovery, 0, sizeof *recovery);
    jx_journal *self = calloc(1, sizeof *self);
    if (!self || !(self->dir = strdup(dir))) {
        free(self);
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory opening journal %s", dir);
        return NULL;
    }
    self->dir_fd = self->lock_fd = self->active_fd = self->read_fd = self->checkpoint_fd = -1;
    self->latest_time_ms = -1;
    if (options)
        self->options = *options;
    if (self->options.segment_max_bytes == 0)
        self->options.segment_max_bytes = DEFAULT_SEGMENT_MAX;
    if (self->options.segment_max_bytes < MIN_SEGMENT_MAX ||
        self->options.segment_max_bytes > MAX_SEGMENT_MAX) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                     "segment size %" PRIu64 " is outside 4 KiB .. 1 GiB",
                     self->options.segment_max_bytes);
        goto fail;
    }
    if (open_directory(self, err) != 0 || recover_segments(self, recovery, err) != 0)
        goto fail;
    if (!self->options.read_only && open_active_segment(self, recovery, err) != 0)
        goto fail;
    if (recover_checkpoints(self, recovery, err) != 0 || recover_tree(self, recovery, err) != 0)
        goto fail;
    if (!self->options.read_only && self->dir_dirty && sync_dir(self, err) != 0)
        goto fail;
    self->durable = self->size;
    recovery->records = self->size;
    return self;
fail:
    jx_journal_destroy(&self);
    return NULL;
}

void jx_journal_destroy(jx_journal **self_p)
{
    if (!self_p || !*self_p)
        return;
    jx_journal *self = *self_p;
    if (!self->options.read_only && !self->failed && self->tree && self->active_fd >= 0) {
        /* A clean stop leaves a tree that the next open can trust at once. */
        if (jx_journal_sync(self, NULL) == 0 && jx_tree_sync(self->tree, NULL) == 0)
            write_tree_state(self, NULL);
    }
    jx_tree_destroy(&self->tree);
    if (self->active_fd >= 0)
        close(self->active_fd);
    if (self->read_fd >= 0)
        close(self->read_fd);
    if (self->checkpoint_fd >= 0)
        close(self->checkpoint_fd);
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    if (self->dir_fd >= 0)
        close(self->dir_fd);
    free(self->segments);
    free(self->offsets);
    free(self->latest_note);
    free(self->buffer);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

/* ---- appending ---- */

static const char *or_empty(const char *text)
{
    return text ? text : "";
}

static ProtobufCBinaryData bytes_of(const uint8_t *data, size_t len)
{
    return (ProtobufCBinaryData){.len = data ? len : 0, .data = (uint8_t *)data};
}

static void entry_to_record(const jx_journal_entry *entry, uint64_t index,
                            Justx__V1__JournalRecord *record)
{
    justx__v1__journal_record__init(record);
    record->index = index;
    record->event = (Justx__V1__JournalRecord__Event)entry->event;
    record->time_ms = entry->time_ms ? entry->time_ms : jx_now_ms();
    /* protobuf-c takes non-const pointers but only reads them when packing. */
    record->message_id = (char *)or_empty(entry->message_id);
    record->sender = (char *)or_empty(entry->sender);
    record->recipient = (char *)or_empty(entry->recipient);
    record->type = (char *)or_empty(entry->type);
    record->case_id = (char *)or_empty(entry->case_id);
    record->header = bytes_of(entry->header, entry->header_len);
    record->signature = bytes_of(entry->signature, entry->signature_len);
    record->payload_sha256 = bytes_of(entry->payload_sha256, JX_HASH_SIZE);
    record->reason_code = (char *)or_empty(entry->reason_code);
    record->reason = (char *)or_empty(entry->reason);
    record->config_sha256 = bytes_of(entry->config_sha256, JX_HASH_SIZE);
    record->signer_cert_sha256 = bytes_of(entry->signer_cert_sha256, JX_HASH_SIZE);
    record->n_recipients = entry->recipients ? entry->recipients_count : 0;
    record->recipients = (char **)entry->recipients;
    record->ack_envelope = bytes_of(entry->ack_envelope, entry->ack_envelope_len);
    record->payload = bytes_of(entry->payload, entry->payload_len);
    record->certificate = bytes_of(entry->certificate, entry->certificate_len);
    record->detail = (char *)or_empty(entry->detail);
}

static int reserve_buffer(jx_journal *self, size_t needed, jx_error *err)
{
    if (needed <= self->buffer_capacity)
        return 0;
    size_t capacity = self->buffer_capacity ? self->buffer_capacity : 64 * 1024;
    while (capacity < needed)
        capacity *= 2;
    void *grown = realloc(self->buffer, capacity);
    if (!grown)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory buffering %zu journal bytes",
                            needed);
    self->buffer = grown;
    self->buffer_capacity = capacity;
    return 0;
}

/* After a failed write or fsync the file's state is unknown (and a retried
 * fsync may report success for lost data), so the journal stops here. */
static int fail_journal(jx_journal *self)
{
    self->failed = true;
    return -1;
}

/* Writes buffer[0..len) holding `count` frames (starting with record
 * self->size) to the end of the active segment, then indexes them. */
static int write_frames(jx_journal *self, size_t len, size_t count, jx_error *err)
{
    segment_info *segment = active_segment(self);
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, segment->number);
    if (write_at(self->active_fd, self->buffer, len, segment->bytes, name, err) != 0) {
        /* Leave no partial frame behind for the next append to follow. */
        if (ftruncate(self->active_fd, (off_t)segment->bytes) != 0) {
            /* Recovery at the next open will cut it off as a torn tail. */
        }
        return fail_journal(self);
    }
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *record;
        uint32_t record_len;
        size_t frame_len;
        jx_frame_parse(self->buffer + at, len - at, &record, &record_len, &frame_len);
        uint8_t leaf[JX_HASH_SIZE];
        jx_merkle_leaf_hash(record, record_len, leaf);
        if (push_offset(self, self->size, (uint32_t)(segment->bytes + at), err) != 0 ||
            jx_tree_append(self->tree, leaf, err) != 0)
            return fail_journal(self);
        self->size++;
        segment->count++;
        at += frame_len;
    }
    segment->bytes += len;
    return 0;
}

static int roll_segment(jx_journal *self, jx_error *err)
{
    segment_info *segment = active_segment(self);
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, segment->number);
    if (fdatasync(self->active_fd) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot fdatasync %s/%s: %s", self->dir, name,
                     strerror(errno));
        return fail_journal(self);
    }
    if (create_segment(self, segment->number + 1, self->size, err) != 0)
        return fail_journal(self);
    return 0;
}

int jx_journal_append_nosync(jx_journal *self, const jx_journal_entry *entries, size_t count,
                             uint64_t *first_index, jx_error *err)
{
    if (self->options.read_only)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "journal %s is open read-only",
                            self->dir);
    if (self->failed)
        return jx_error_set(err, JX_ERR_IO,
                            "journal %s refuses appends after an earlier write error; reopen it "
                            "to recover",
                            self->dir);
    if (first_index)
        *first_index = self->size;
    size_t used = 0, pending = 0;
    for (size_t i = 0; i < count; i++) {
        Justx__V1__JournalRecord record;
        entry_to_record(&entries[i], self->size + pending, &record);
        size_t record_len = justx__v1__journal_record__get_packed_size(&record);
        if (record_len == 0 || record_len > JX_RECORD_MAX)
            return jx_error_set(err, JX_ERR_TOO_LARGE,
                                "journal record %zu of the batch is %zu bytes, the limit is %d", i,
                                record_len, JX_RECORD_MAX);
        size_t frame_len = record_len + JX_FRAME_OVERHEAD;
        segment_info *segment = active_segment(self);
        if (segment->bytes + used + frame_len > self->options.segment_max_bytes &&
            segment->count + pending > 0) {
            if (pending && write_frames(self, used, pending, err) != 0)
                return -1;
            used = pending = 0;
            if (roll_segment(self, err) != 0)
                return -1;
        }
        if (reserve_buffer(self, used + frame_len, err) != 0)
            return -1;
        uint8_t *frame = self->buffer + used;
        justx__v1__journal_record__pack(&record, frame + JX_FRAME_HEADER_SIZE);
        jx_frame_encode(frame, frame + JX_FRAME_HEADER_SIZE, (uint32_t)record_len);
        used += frame_len;
        pending++;
    }
    if (pending && write_frames(self, used, pending, err) != 0)
        return -1;
    return 0;
}

int jx_journal_sync(jx_journal *self, jx_error *err)
{
    if (self->failed)
        return jx_error_set(err, JX_ERR_IO,
                            "journal %s refuses to sync after an earlier write error", self->dir);
    if (self->durable == self->size && !self->dir_dirty)
        return 0;
    if (fdatasync(self->active_fd) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot fdatasync the active segment of journal %s: %s",
                     self->dir, strerror(errno));
        return fail_journal(self);
    }
    if (self->dir_dirty && sync_dir(self, err) != 0)
        return fail_journal(self);
    self->durable = self->size;
    return 0;
}

int jx_journal_append(jx_journal *self, const jx_journal_entry *entries, size_t count,
                      uint64_t *first_index, jx_error *err)
{
    if (jx_journal_append_nosync(self, entries, count, first_index, err) != 0)
        return -1;
    return jx_journal_sync(self, err);
}

uint64_t jx_journal_size(const jx_journal *self)
{
    return self->size;
}

uint64_t jx_journal_durable_size(const jx_journal *self)
{
    return self->durable;
}

const char *jx_journal_dir(const jx_journal *self)
{
    return self->dir;
}

/* ---- reading and proving ---- */

int jx_journal_read(jx_journal *self, uint64_t index, uint8_t **record, size_t *record_len,
                    jx_error *err)
{
    *record = NULL;
    *record_len = 0;
    if (index >= self->size)
        return jx_error_set(err, JX_ERR_NOT_FOUND,
                            "journal %s has no record %" PRIu64 " (it holds %" PRIu64 ")",
                            self->dir, index, self->size);
    segment_info *segment = segment_of(self, index);
    uint64_t offset = self->offsets[index];
    uint64_t end = index + 1 < segment->first_index + segment->count ? self->offsets[index + 1]
                                                                     : segment->bytes;
    size_t frame_len = (size_t)(end - offset);
    int fd = segment_fd(self, segment, err);
    if (fd < 0)
        return -1;
    uint8_t *frame = malloc(frame_len);
    if (!frame)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading record %" PRIu64, index);
    char name[JX_SEGMENT_NAME_MAX];
    jx_segment_name(name, segment->number);
    ssize_t got = pread(fd, frame, frame_len, (off_t)offset);
    const uint8_t *body;
    uint32_t body_len;
    size_t parsed_len;
    if (got != (ssize_t)frame_len) {
        free(frame);
        return jx_error_set(
            err, JX_ERR_IO, "cannot read record %" PRIu64 " at byte %" PRIu64 " of %s/%s: %s",
            index, offset, self->dir, name, got < 0 ? strerror(errno) : "file too short");
    }
    if (jx_frame_parse(frame, frame_len, &body, &body_len, &parsed_len) != JX_FRAME_OK ||
        parsed_len != frame_len) {
        free(frame);
        return jx_error_set(err, JX_ERR_JOURNAL_CORRUPT,
                            "record %" PRIu64 " at byte %" PRIu64 " of %s/%s no longer matches "
                            "its checksum",
                            index, offset, self->dir, name);
    }
    memmove(frame, body, body_len);
    *record = frame;
    *record_len = body_len;
    return 0;
}

int jx_journal_iterate(jx_journal *self, uint64_t from, jx_journal_visit_fn visit, void *ctx,
                       jx_error *err)
{
    for (uint64_t index = from; index < self->size; index++) {
        uint8_t *record;
        size_t record_len;
        if (jx_journal_read(self, index, &record, &record_len, err) != 0)
            return -1;
        int rc = visit(ctx, index, record, record_len);
        free(record);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int jx_journal_leaf_hash(jx_journal *self, uint64_t index, uint8_t out[JX_HASH_SIZE], jx_error *err)
{
    return jx_tree_leaf(self->tree, index, out, err);
}

int jx_journal_root(jx_journal *self, uint64_t size, uint8_t out[JX_HASH_SIZE], jx_error *err)
{
    return jx_tree_root(self->tree, size, out, err);
}

int jx_journal_inclusion_proof(jx_journal *self, uint64_t index, uint64_t size,
                               uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err)
{
    return jx_tree_inclusion_proof(self->tree, index, size, proof, count, err);
}

int jx_journal_consistency_proof(jx_journal *self, uint64_t size1, uint64_t size2,
                                 uint8_t proof[][JX_HASH_SIZE], size_t *count, jx_error *err)
{
    return jx_tree_consistency_proof(self->tree, size1, size2, proof, count, err);
}

/* ---- checkpoints ---- */

int jx_journal_checkpoint(jx_journal *self, EVP_PKEY *key, const char *origin, int64_t time_ms,
                          char **note_out, size_t *note_len_out, jx_error *err)
{
    if (note_out)
        *note_out = NULL;
    if (self->options.read_only)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "journal %s is open read-only",
                            self->dir);
    if (jx_journal_sync(self, err) != 0)
        return -1;
    if (jx_tree_sync(self->tree, err) != 0)
        return fail_journal(self);
    uint8_t root[JX_HASH_SIZE];
    if (jx_tree_root(self->tree, self->durable, root, err) != 0)
        return -1;
    size_t note_len = 0;
    char *note = jx_checkpoint_sign(origin, self->durable, root, time_ms ? time_ms : jx_now_ms(),
                                    key, &note_len, err);
    if (!note)
        return -1;
    if (write_at(self->checkpoint_fd, note, note_len, self->checkpoint_bytes, CHECKPOINT_FILE,
                 err) != 0) {
        free(note);
        return fail_journal(self);
    }
    if (fdatasync(self->checkpoint_fd) != 0) {
        jx_error_set(err, JX_ERR_IO, "cannot fdatasync %s/%s: %s", self->dir, CHECKPOINT_FILE,
                     strerror(errno));
        free(note);
        return fail_journal(self);
    }
    if (self->dir_dirty && sync_dir(self, err) != 0) {
        free(note);
        return fail_journal(self);
    }
    self->checkpoint_bytes += note_len;
    jx_checkpoint parsed;
    jx_checkpoint_parse(note, note_len, &parsed, NULL);
    free(self->latest_note);
    self->latest_note = note;
    self->latest_note_len = note_len;
    self->latest_size = self->durable;
    self->latest_time_ms = parsed.time_ms;
    if (note_out) {
        *note_out = strdup(note);
        if (!*note_out)
            return jx_error_set(err, JX_ERR_SYSTEM, "out of memory");
    }
    if (note_len_out)
        *note_len_out = note_len;
    return 0;
}

int jx_journal_latest_checkpoint(jx_journal *self, char **note, size_t *note_len, uint64_t *size,
                                 int64_t *time_ms, jx_error *err)
{
    if (note)
        *note = NULL;
    if (!self->latest_note)
        return jx_error_set(err, JX_ERR_NOT_FOUND, "journal %s has no checkpoint yet", self->dir);
    if (note && !(*note = strdup(self->latest_note)))
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory");
    if (note_len)
        *note_len = self->latest_note_len;
    if (size)
        *size = self->latest_size;
    if (time_ms)
        *time_ms = self->latest_time_ms;
    return 0;
}

int jx_journal_checkpoint_covering(jx_journal *self, uint64_t index, char **note, size_t *note_len,
                                   jx_error *err)
{
    *note = NULL;
    if (!self->latest_note || self->latest_size <= index)
        return jx_error_set(err, JX_ERR_NOT_FOUND,
                            "no checkpoint of journal %s covers record %" PRIu64 " yet", self->dir,
                            index);
    return jx_journal_latest_checkpoint(self, note, note_len, NULL, NULL, err);
}
