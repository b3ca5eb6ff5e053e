/* files.c — whole-file reads with a size limit (a message's payload among
 * them), and atomic writes. */
#include "cli.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *cli_read_file(const char *path, size_t max, size_t *len, jx_error *err)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        jx_error_set(err, JX_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size > max) {
        jx_error_set(err, JX_ERR_TOO_LARGE, "%s has %lld bytes; the limit is %zu", path,
                     (long long)st.st_size, max);
        if (fd != STDIN_FILENO)
            close(fd);
        return NULL;
    }
    size_t capacity = 65536, used = 0;
    uint8_t *data = malloc(capacity + 1);
    for (;;) {
        if (data == NULL) {
            jx_error_set(err, JX_ERR_SYSTEM, "out of memory reading %s", path);
            break;
        }
        if (used == capacity) {
            capacity *= 2;
            uint8_t *bigger = realloc(data, capacity + 1);
            if (bigger == NULL)
                free(data);
            data = bigger;
            continue;
        }
        ssize_t got = read(fd, data + used, capacity - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            jx_error_set(err, JX_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            free(data);
            data = NULL;
            break;
        }
        if (got == 0) {
            data[used] = '\0';
            *len = used;
            break;
        }
        used += (size_t)got;
        if (used > max) {
            jx_error_set(err, JX_ERR_TOO_LARGE, "%s is larger than the limit of %zu bytes", path,
                         max);
            free(data);
            data = NULL;
            break;
        }
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return data;
}

int cli_write_file(const char *path, const uint8_t *data, size_t len, jx_error *err)
{
    char temporary[4096];
    if (snprintf(temporary, sizeof temporary, "%s.tmp.%d", path, (int)getpid()) >=
        (int)sizeof temporary)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "path %s is too long", path);
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "cannot create %s: %s", temporary, strerror(errno));
    size_t written = 0;
    while (written < len) {
        ssize_t n = write(fd, data + written, len - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            unlink(temporary);
            return jx_error_set(err, JX_ERR_IO, "cannot write %s: %s", temporary,
                                strerror(saved));
        }
        written += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(temporary, path) != 0) {
        int saved = errno;
        unlink(temporary);
        return jx_error_set(err, JX_ERR_IO, "cannot write %s: %s", path, strerror(saved));
    }
    return 0;
}

int cli_read_payload(const char *type, const char *json_file, const char *binary_file,
                     uint8_t **payload, size_t *payload_len, jx_error *err)
{
    *payload = NULL;
    size_t input_len = 0;
    uint8_t *input = cli_read_file(json_file ? json_file : binary_file, JX_ENVELOPE_MAX_DEFAULT,
                                   &input_len, err);
    if (input == NULL)
        return -1;
    if (json_file == NULL) {
        *payload = input;
        *payload_len = input_len;
        return 0;
    }
    int rc =
        jx_json_decode_payload(type, (const char *)input, input_len, payload, payload_len, err);
    free(input);
    return rc;
}
