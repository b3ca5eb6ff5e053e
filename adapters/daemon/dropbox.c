/* dropbox.c — the drop-box: folders through which an agency system that
 * only handles files sends and receives messages.
 *
 *   outbox/     the agency system puts submissions here (write, then rename;
 *               names starting with '.' or ending in .tmp are left alone)
 *   sent/       <message-id>.json: a submission that is in the adapter's
 *               durable outbox, under the id it was sent with
 *   rejected/   <name> and <name>.error: a submission that cannot be sent,
 *               and why (error code and a sentence naming the JSON path)
 *   inbox/      <sender>_<message-id>.json: received, verified messages
 *   receipts/   <message-id>_<STATUS>[_<recipient>].json
 *   .state/     the drop-box's own bookkeeping (work/, receipts.cursor)
 *
 * Every file is written atomically (a hidden temporary name in the same
 * folder, fsync, rename), so an agency system never reads half a file; the
 * folder itself is fsynced once per batch, before anything that depends on
 * the files being there. Folders are created with mode 0700.
 *
 * Exactly once, across crashes at any point (group commit: up to 64 files
 * per step, each step one disk sync):
 * - submissions are first renamed to .state/work/<id>.json, which fixes
 *   their message ids, and work/ is fsynced; they are then sealed with those
 *   ids into the adapter's outbox in one transaction and moved to sent/.
 *   After a crash, files left in work/ are finished: one whose id the store
 *   already knows is only moved to sent/, never sealed a second time;
 * - received messages are written to inbox/ and the folder fsynced before
 *   they are marked consumed in the store; a crash in between writes the
 *   same files again (same names);
 * - receipts are written in store order, the folder fsynced, and then a
 *   cursor file remembers the last one written; a crash in between writes
 *   receipt files again.
 */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    PATH_MAX_LEN = 4096,
    DIR_MAX_LEN = 3000,         /* leaves room for folder and file names in PATH_MAX_LEN */
    FILE_MAX = 8 * 1024 * 1024, /* a submission file; the HTTP API's default body limit */
    SCAN_MAX = 1000,            /* files per poll, so receipts and inbox keep flowing */
    SEND_BATCH = 64,            /* files sealed into the outbox in one transaction */
    BATCH = 256,
};

struct jx_dropbox {
    jx_daemon *daemon;
    char dir[DIR_MAX_LEN];
    int poll_ms;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int64_t receipt_cursor;
    int64_t last_bad_sequence; /* inbox entry last reported as unreadable */
};

/* ---- files ---- */

static int make_dir(const char *path, jx_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return jx_error_set(err, JX_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return jx_error_set(err, JX_ERR_IO, "%s is not a directory", path);
    return 0;
}

static int sync_folder(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* dir/name, atomically: hidden temporary, fsync, rename, and (when
 * sync_dir) fsync of dir. A caller writing a batch syncs dir once itself
 * before it relies on the files being there. */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len,
                        bool sync_dir, jx_error *err)
{
    char temporary[PATH_MAX_LEN], final[PATH_MAX_LEN];
    if (snprintf(temporary, sizeof temporary, "%s/.%s.%d.tmp", dir, name, (int)getpid()) >=
            (int)sizeof temporary ||
        snprintf(final, sizeof final, "%s/%s", dir, name) >= (int)sizeof final)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "path %s/%s is too long", dir, name);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot create %s: %s", temporary, strerror(errno));
    size_t written = 0;
    while (written < len) {
        ssize_t n = write(fd, data + written, len - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        written += (size_t)n;
    }
    int saved = errno;
    if (written < len || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(temporary);
        return jx_error_set(err, JX_ERR_IO, "cannot write %s: %s", temporary, strerror(saved));
    }
    if (close(fd) != 0 || rename(temporary, final) != 0) {
        saved = errno;
        unlink(temporary);
        return jx_error_set(err, JX_ERR_IO, "cannot write %s: %s", final, strerror(saved));
    }
    if (sync_dir && sync_folder(dir) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot sync %s: %s", dir, strerror(errno));
    return 0;
}

static int write_json(const char *dir, const char *name, const json_t *value, bool sync_dir,
                      jx_error *err)
{
    char *text = json_dumps(value, JSON_INDENT(2));
    if (text == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory writing %s/%s", dir, name);
    size_t len = strlen(text);
    /* a trailing newline, as text files have */
    char *line = realloc(text, len + 2);
    if (line == NULL) {
        free(text);
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory writing %s/%s", dir, name);
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    int rc = write_atomic(dir, name, line, len + 1, sync_dir, err);
    free(line);
    return rc;
}

/* from_dir/from_name to to_dir/to_name, then (when sync) fsync of to_dir. */
static int move_file(const jx_dropbox *self, const char *from_dir, const char *from_name,
                     const char *to_dir, const char *to_name, bool sync, jx_error *err)
{
    char from[PATH_MAX_LEN], to[PATH_MAX_LEN], to_folder[DIR_MAX_LEN + 100];
    snprintf(from, sizeof from, "%s/%s/%s", self->dir, from_dir, from_name);
    snprintf(to_folder, sizeof to_folder, "%s/%s", self->dir, to_dir);
    snprintf(to, sizeof to, "%s/%s", to_folder, to_name);
    if (rename(from, to) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot move %s to %s: %s", from, to, strerror(errno));
    if (sync && sync_folder(to_folder) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot sync %s: %s", to_folder, strerror(errno));
    return 0;
}

static void sync_subfolder(const jx_dropbox *self, const char *folder)
{
    char path[DIR_MAX_LEN + 100];
    snprintf(path, sizeof path, "%s/%s", self->dir, folder);
    if (sync_folder(path) != 0)
        jx_daemon_log("level=error event=dropbox_error reason=\"cannot sync %s: %s\"", path,
                      strerror(errno));
}

/* Reads a submission file, refusing anything but a regular file of at most
 * FILE_MAX bytes (size checked before reading). */
static char *read_submission(const char *path, size_t *len, jx_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "%s is a symbolic link, not a file", path);
        else
            jx_error_set(err, errno == ENOENT ? JX_ERR_NOT_FOUND : JX_ERR_IO, "cannot open %s: %s",
                         path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "%s is not a regular file", path);
        goto done;
    }
    if (st.st_size > FILE_MAX) {
        jx_error_set(err, JX_ERR_TOO_LARGE, "the file has %lld bytes; the limit is %d",
                     (long long)st.st_size, FILE_MAX);
        goto done;
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading %s", path);
        goto done;
    }
    size_t used = 0;
    while (used < (size_t)st.st_size) {
        ssize_t n = read(fd, text + used, (size_t)st.st_size - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    text[used] = '\0';
    *len = used;
done:
    close(fd);
    return text;
}

/* ---- sending ---- */

/* Errors after which the same file may well go through next time. */
static bool is_transient(jx_error_code code)
{
    return code == JX_ERR_SYSTEM || code == JX_ERR_IO || code == JX_ERR_STORE_CORRUPT;
}

/* Writes rejected/<name>.error first, then moves the file next to it, so an
 * agency system that sees the file finds the reason beside it. */
static void reject(jx_dropbox *self, const char *from_dir, const char *from_name, const char *name,
                   const jx_error *why)
{
    char folder[DIR_MAX_LEN + 100], error_name[300], text[JX_ERROR_MESSAGE_MAX + 64];
    snprintf(folder, sizeof folder, "%s/rejected", self->dir);
    snprintf(error_name, sizeof error_name, "%s.error", name);
    int len = snprintf(text, sizeof text, "%s: %s\n", jx_error_code_name(why->code), why->message);
    jx_error err;
    if (write_atomic(folder, error_name, text, (size_t)len, true, &err) != 0 ||
        move_file(self, from_dir, from_name, "rejected", name, true, &err) != 0) {
        jx_daemon_log("level=error event=dropbox_error file=%s reason=\"%s\"", name, err.message);
        return;
    }
    jx_daemon_log("level=warning event=dropbox_rejected file=%s code=%s reason=\"%s\"", name,
                  jx_error_code_name(why->code), why->message);
}

/* Seals .state/work/<id>.json with that id and moves it to sent/. The file's
 * own messageId, if any, is id. */
static void send_work_file(jx_dropbox *self, const char *id, const char *original_name)
{
    char path[PATH_MAX_LEN], name[64];
    snprintf(path, sizeof path, "%s/.state/work/%s.json", self->dir, id);
    snprintf(name, sizeof name, "%s.json", id);
    jx_error err = {0};
    size_t len = 0;
    jx_submission submission = {0};
    char *text = read_submission(path, &len, &err);
    if (text == NULL) {
        if (!is_transient(err.code) && err.code != JX_ERR_NOT_FOUND)
            reject(self, ".state/work", name, original_name, &err);
        return;
    }
    int parsed = jx_submission_parse(text, len, &submission, &err);
    free(text);
    if (parsed != 0) {
        reject(self, ".state/work", name, original_name, &err);
        return;
    }
    if (submission.message_id == NULL || strcmp(submission.message_id, id) != 0) {
        free(submission.message_id);
        submission.message_id = strdup(id);
    }
    char message_id[JX_MESSAGE_ID_MAX];
    bool duplicate = false;
    if (submission.message_id == NULL ||
        jx_daemon_send(self->daemon, &submission, message_id, &duplicate, &err) != 0) {
        if (submission.message_id == NULL)
            jx_error_set(&err, JX_ERR_SYSTEM, "out of memory");
        if (is_transient(err.code))
            jx_daemon_log("level=error event=dropbox_send_failed file=%s message_id=%s code=%s "
                          "reason=\"%s\" detail=\"retried at the next poll\"",
                          original_name, id, jx_error_code_name(err.code), err.message);
        else
            reject(self, ".state/work", name, original_name, &err);
        jx_submission_clear(&submission);
        return;
    }
    if (move_file(self, ".state/work", name, "sent", name, true, &err) != 0)
        jx_daemon_log("level=error event=dropbox_error message_id=%s reason=\"%s\"", id,
                      err.message);
    else
        jx_daemon_log("level=info event=dropbox_sent file=%s message_id=%s type=%s%s",
                      original_name, message_id, submission.type,
                      duplicate ? " duplicate=true" : "");
    jx_submission_clear(&submission);
}

/* One outbox file on its way: checked, its id fixed by its name in work/. */
typedef struct {
    const char *name; /* its name in outbox/, borrowed from the scan's list */
    char id[JX_MESSAGE_ID_MAX];
    jx_submission submission; /* its message_id is id */
} picked;

/* Checks outbox/<name> and renames it to work/<id>.json, which fixes its
 * message id (work/ is synced by the caller before anything is sealed).
 * true when it is to be sent; a malformed file goes to rejected/. */
static bool pick(jx_dropbox *self, const char *name, picked *out)
{
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/outbox/%s", self->dir, name);
    jx_error err = {0};
    size_t len = 0;
    memset(out, 0, sizeof *out);
    out->name = name;
    char *text = read_submission(path, &len, &err);
    if (text == NULL) {
        if (err.code != JX_ERR_NOT_FOUND && !is_transient(err.code))
            reject(self, "outbox", name, name, &err);
        return false; /* NOT_FOUND: taken away meanwhile */
    }
    int parsed = jx_submission_parse(text, len, &out->submission, &err);
    free(text);
    if (parsed != 0) {
        reject(self, "outbox", name, name, &err);
        return false;
    }
    if (out->submission.message_id)
        snprintf(out->id, sizeof out->id, "%s", out->submission.message_id);
    else if (jx_message_id_new(jx_now_ms(), out->id, &err) != 0 ||
             (out->submission.message_id = strdup(out->id)) == NULL) {
        jx_daemon_log("level=error event=dropbox_error file=%s reason=\"cannot make a message "
                      "id\"",
                      name);
        jx_submission_clear(&out->submission);
        return false;
    }
    char work_name[64];
    snprintf(work_name, sizeof work_name, "%s.json", out->id);
    if (move_file(self, "outbox", name, ".state/work", work_name, false, &err) != 0) {
        jx_daemon_log("level=error event=dropbox_error file=%s reason=\"%s\"", name, err.message);
        jx_submission_clear(&out->submission);
        return false;
    }
    jx_daemon_log("level=info event=dropbox_picked_up file=%s message_id=%s", name, out->id);
    return true;
}

/* Seals the picked files into the outbox in one transaction (one disk sync
 * for all: the outbox's group commit) and moves them to sent/. If the batch
 * fails, each file is tried on its own, so one bad file cannot hold up the
 * others. */
static void send_picked(jx_dropbox *self, picked *batch, size_t count)
{
    if (count == 0)
        return;
    sync_subfolder(self, ".state/work");
    const jx_submission *submissions[SEND_BATCH];
    bool duplicate[SEND_BATCH];
    char ids[SEND_BATCH][JX_MESSAGE_ID_MAX];
    for (size_t i = 0; i < count; i++)
        submissions[i] = &batch[i].submission;
    jx_error err = {0};
    if (jx_daemon_send_many(self->daemon, submissions, count, ids, duplicate, &err) != 0) {
        jx_daemon_log("level=warning event=dropbox_batch_failed files=%zu code=%s reason=\"%s\" "
                      "detail=\"sending them one by one\"",
                      count, jx_error_code_name(err.code), err.message);
        for (size_t i = 0; i < count; i++)
            send_work_file(self, batch[i].id, batch[i].name);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.json", batch[i].id);
        if (move_file(self, ".state/work", name, "sent", name, false, &err) != 0)
            jx_daemon_log("level=error event=dropbox_error message_id=%s reason=\"%s\"",
                          batch[i].id, err.message);
        else
            jx_daemon_log("level=info event=dropbox_sent file=%s message_id=%s type=%s%s",
                          batch[i].name, batch[i].id, batch[i].submission.type,
                          duplicate[i] ? " duplicate=true" : "");
    }
    sync_subfolder(self, "sent");
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the regular files in dir that an agency system has finished
 * writing, sorted, at most SCAN_MAX. */
static size_t list_ready(const char *dir, char **names, size_t max)
{
    DIR *listing = opendir(dir);
    if (listing == NULL)
        return 0;
    size_t n = 0;
    struct dirent *entry;
    while (n < max && (entry = readdir(listing)) != NULL) {
        const char *name = entry->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || (len >= 4 && strcmp(name + len - 4, ".tmp") == 0) || len > 200)
            continue;
        if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN && entry->d_type != DT_LNK)
            continue;
        if ((names[n] = strdup(name)) != NULL)
            n++;
    }
    closedir(listing);
    qsort(names, n, sizeof *names, compare_names);
    return n;
}

static bool still_there(const char *folder, const char *name)
{
    char path[PATH_MAX_LEN];
    if (snprintf(path, sizeof path, "%s/%s", folder, name) >= (int)sizeof path)
        return false;
    return access(path, F_OK) == 0;
}

/* Returns the number of files that left outbox/ or work/ (a file whose
 * sending failed for a passing reason stays, and is no progress). */
static size_t scan(jx_dropbox *self)
{
    char folder[PATH_MAX_LEN];
    char **names = calloc(SCAN_MAX, sizeof *names);
    size_t handled = 0;
    if (names == NULL)
        return 0;
    /* First what a crash left half done. */
    snprintf(folder, sizeof folder, "%s/.state/work", self->dir);
    size_t n = list_ready(folder, names, SCAN_MAX);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        char id[JX_MESSAGE_ID_MAX] = "";
        if (len == 41 && strcmp(names[i] + 36, ".json") == 0)
            snprintf(id, sizeof id, "%.36s", names[i]);
        if (jx_message_id_is_valid(id)) {
            jx_daemon_log("level=info event=dropbox_resumed message_id=%s", id);
            send_work_file(self, id, names[i]);
            handled += still_there(folder, names[i]) ? 0 : 1;
        }
        free(names[i]);
    }
    snprintf(folder, sizeof folder, "%s/outbox", self->dir);
    n = list_ready(folder, names, SCAN_MAX);
    picked batch[SEND_BATCH];
    for (size_t first = 0; first < n && !atomic_load(&self->stop); first += SEND_BATCH) {
        size_t last = first + SEND_BATCH < n ? first + SEND_BATCH : n, count = 0;
        for (size_t i = first; i < last; i++)
            if (pick(self, names[i], &batch[count]))
                count++;
        send_picked(self, batch, count);
        for (size_t i = 0; i < count; i++)
            jx_submission_clear(&batch[i].submission);
        for (size_t i = first; i < last; i++)
            handled += still_there(folder, names[i]) ? 0 : 1;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return handled;
}

/* ---- receiving ---- */

typedef struct {
    char sender[80];
    char message_id[80];
    char name[200];
} inbox_written;

/* Writes up to BATCH received messages to inbox/, syncs the folder once, and
 * only then marks them consumed, in one store batch (one disk sync). A crash
 * in between writes the same files again. Returns the number written. */
static size_t export_inbox(jx_dropbox *self)
{
    char folder[PATH_MAX_LEN];
    snprintf(folder, sizeof folder, "%s/inbox", self->dir);
    inbox_written *written = calloc(BATCH, sizeof *written);
    if (written == NULL)
        return 0;
    int64_t after = 0;
    size_t count = 0;
    jx_error err;
    while (count < BATCH && !atomic_load(&self->stop)) {
        jx_adapter_store_inbox_entry *entry = NULL;
        int found =
            jx_adapter_store_inbox_next_unconsumed(self->daemon->store, after, &entry, &err);
        if (found <= 0) {
            if (found < 0)
                jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
            break;
        }
        after = entry->sequence;
        json_t *message = jx_daemon_render_message(self->daemon, entry, &err);
        inbox_written *item = &written[count];
        snprintf(item->sender, sizeof item->sender, "%s", entry->sender);
        snprintf(item->message_id, sizeof item->message_id, "%s", entry->message_id);
        char sender[80], id[80];
        jx_message_json_file_part(entry->sender, sender, sizeof sender);
        jx_message_json_file_part(entry->message_id, id, sizeof id);
        snprintf(item->name, sizeof item->name, "%s_%s.json", sender, id);
        if (message == NULL) {
            if (entry->sequence > self->last_bad_sequence)
                jx_daemon_log("level=error event=inbox_unreadable sender=%s message_id=%s code=%s "
                              "reason=\"%s\"",
                              entry->sender, entry->message_id, jx_error_code_name(err.code),
                              err.message);
            self->last_bad_sequence = entry->sequence;
        } else {
            json_object_del(message, "consumed");
            if (write_json(folder, item->name, message, false, &err) != 0)
                jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
            else
                count++;
            json_decref(message);
        }
        jx_adapter_store_inbox_entry_destroy(&entry);
    }
    if (count > 0 && sync_folder(folder) != 0) {
        jx_daemon_log("level=error event=dropbox_error reason=\"cannot sync %s: %s\"", folder,
                      strerror(errno));
        count = 0; /* not durable: not consumed; written again next time */
    }
    if (count > 0) {
        jx_adapter_store *store = self->daemon->store;
        bool batched = jx_adapter_store_batch_begin(store, &err) == 0;
        int64_t now = jx_now_ms();
        for (size_t i = 0; i < count; i++)
            if (jx_adapter_store_inbox_consume(store, written[i].sender, written[i].message_id, now,
                                               &err) < 0)
                jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
        if (batched && jx_adapter_store_batch_commit(store, &err) != 0) {
            jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
            count = 0;
        }
        for (size_t i = 0; i < count; i++)
            jx_daemon_log("level=info event=dropbox_received file=%s", written[i].name);
    }
    free(written);
    return count;
}

typedef struct {
    jx_dropbox *self;
    char folder[PATH_MAX_LEN];
    bool failed;
} receipt_export;

static int export_one_receipt(const jx_adapter_store_receipt *receipt, void *arg)
{
    receipt_export *export = arg;
    char id[80], recipient[80], name[256];
    jx_message_json_file_part(receipt->message_id, id, sizeof id);
    jx_message_json_file_part(receipt->recipient, recipient, sizeof recipient);
    snprintf(name, sizeof name, "%s_%s%s%s.json", id, receipt->status, recipient[0] ? "_" : "",
             recipient);
    json_t *object = jx_message_json_receipt(receipt, true);
    jx_error err;
    int rc = object ? write_json(export->folder, name, object, false, &err)
                    : jx_error_set(&err, JX_ERR_SYSTEM, "out of memory");
    json_decref(object);
    if (rc != 0) {
        jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
        export->failed = true;
        return 1;
    }
    export->self->receipt_cursor = receipt->sequence;
    return 0;
}

static void save_cursor(jx_dropbox *self)
{
    char folder[PATH_MAX_LEN], text[32];
    snprintf(folder, sizeof folder, "%s/.state", self->dir);
    int len = snprintf(text, sizeof text, "%lld\n", (long long)self->receipt_cursor);
    jx_error err;
    if (write_atomic(folder, "receipts.cursor", text, (size_t)len, true, &err) != 0)
        jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
}

static void load_cursor(jx_dropbox *self)
{
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/.state/receipts.cursor", self->dir);
    FILE *file = fopen(path, "r");
    long long value = 0;
    if (file) {
        if (fscanf(file, "%lld", &value) != 1 || value < 0)
            value = 0;
        fclose(file);
    }
    self->receipt_cursor = value;
}

/* Returns the number of receipts written. */
static size_t export_receipts(jx_dropbox *self)
{
    receipt_export export = {.self = self};
    int64_t start = self->receipt_cursor;
    snprintf(export.folder, sizeof export.folder, "%s/receipts", self->dir);
    for (int round = 0; round < 16 && !atomic_load(&self->stop); round++) {
        int64_t before = self->receipt_cursor;
        jx_error err;
        if (jx_adapter_store_receipts_list(self->daemon->store, before, BATCH, export_one_receipt,
                                           &export, &err) != 0)
            jx_daemon_log("level=error event=dropbox_error reason=\"%s\"", err.message);
        if (self->receipt_cursor != before && sync_folder(export.folder) != 0) {
            /* not durable: the cursor stays, and the files are written again */
            jx_daemon_log("level=error event=dropbox_error reason=\"cannot sync %s: %s\"",
                          export.folder, strerror(errno));
            self->receipt_cursor = before;
            break;
        }
        if (self->receipt_cursor != before)
            save_cursor(self);
        if (export.failed || self->receipt_cursor - before < BATCH)
            break;
    }
    return (size_t)(self->receipt_cursor - start);
}

/* ---- the thread ---- */

static void *dropbox_thread(void *arg)
{
    jx_dropbox *self = arg;
    while (!atomic_load(&self->stop)) {
        size_t done = scan(self) + export_inbox(self) + export_receipts(self);
        if (done > 0)
            continue; /* more may be waiting: sleep only when idle */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t total = until.tv_nsec + (int64_t)self->poll_ms * 1000000;
        until.tv_sec += total / 1000000000;
        until.tv_nsec = total % 1000000000;
        pthread_mutex_lock(&self->lock);
        if (!atomic_load(&self->stop))
            pthread_cond_timedwait(&self->wake, &self->lock, &until);
        pthread_mutex_unlock(&self->lock);
    }
    return NULL;
}

jx_dropbox *jx_dropbox_new(jx_daemon *daemon, const char *dir, int poll_ms, jx_error *err)
{
    static const char *const folders[] = {"",       "/outbox",   "/sent",   "/rejected",
                                          "/inbox", "/receipts", "/.state", "/.state/work"};
    if (strlen(dir) >= DIR_MAX_LEN) {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "drop-box path %s is too long", dir);
        return NULL;
    }
    jx_dropbox *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory starting the drop-box");
        return NULL;
    }
    self->daemon = daemon;
    self->poll_ms = poll_ms > 0 ? poll_ms : JX_ADAPTER_CONF_POLL_MS_DEFAULT;
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, "%s%s", dir, folders[i]);
        if (make_dir(path, err) != 0)
            goto failed;
    }
    load_cursor(self);
    if (pthread_create(&self->thread, NULL, dropbox_thread, self) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "cannot start the drop-box thread");
        goto failed;
    }
    self->thread_started = true;
    return self;
failed:
    jx_dropbox_destroy(&self);
    return NULL;
}

void jx_dropbox_destroy(jx_dropbox **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_dropbox *self = *self_p;
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        atomic_store(&self->stop, true);
        pthread_cond_broadcast(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->wake);
    free(self);
    *self_p = NULL;
}
