/* tls_relay.c — the byte pump between a TLS connection and a plain socket.
 *
 * Invariants:
 * - A buffer's bytes [head, tail) are read and not yet written. It is
 *   compacted only before a read into it; OpenSSL tolerates the move because
 *   the contexts set SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, and a retried
 *   SSL_write always gets at least the bytes it got before (tail only grows
 *   while head waits).
 * - While a filter is present no client byte reaches to_plain except through
 *   it.
 * - A pump does a bounded amount of work (PUMP_ROUNDS passes over the four
 *   directions) so that one busy connection cannot starve the others; when
 *   it stops early it sets `more` and the owner pumps again without waiting.
 */
#include "tls_relay.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    PUMP_ROUNDS = 16,
    FILTER_STAGE = 4096,
    /* Room the filter needs in to_plain: its output plus the bytes of one
     * read that follow the READY command and pass unchanged. */
    FILTER_ROOM = JX_ZMTP_FILTER_OUTPUT_MAX + FILTER_STAGE,
};

static size_t buffered(const jx_relay_buffer *b)
{
    return b->tail - b->head;
}

/* Makes free space at the end; moves the data down when less than `want`
 * bytes are free there. Returns the free space. */
static size_t make_room(jx_relay_buffer *b, size_t want)
{
    if (b->head == b->tail)
        b->head = b->tail = 0;
    if (b->capacity - b->tail < want && b->head > 0) {
        memmove(b->data, b->data + b->head, b->tail - b->head);
        b->tail -= b->head;
        b->head = 0;
    }
    return b->capacity - b->tail;
}

int jx_tls_relay_init(jx_tls_relay *self, size_t buffer_size, jx_error *err)
{
    memset(self, 0, sizeof *self);
    self->tls_fd = -1;
    self->plain_fd = -1;
    if (buffer_size < 2 * FILTER_ROOM)
        buffer_size = 2 * FILTER_ROOM;
    self->to_plain.data = malloc(buffer_size);
    self->to_tls.data = malloc(buffer_size);
    if (self->to_plain.data == NULL || self->to_tls.data == NULL) {
        jx_tls_relay_release(self);
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory for relay buffers");
    }
    self->to_plain.capacity = buffer_size;
    self->to_tls.capacity = buffer_size;
    return 0;
}

void jx_tls_relay_release(jx_tls_relay *self)
{
    if (self->ssl) {
        if (!self->tls_closed && SSL_is_init_finished(self->ssl))
            SSL_shutdown(self->ssl); /* close_notify if the socket takes it; no waiting */
        SSL_free(self->ssl);
        self->ssl = NULL;
    }
    ERR_clear_error();
    if (self->tls_fd >= 0)
        close(self->tls_fd);
    if (self->plain_fd >= 0)
        close(self->plain_fd);
    self->tls_fd = self->plain_fd = -1;
    jx_zmtp_filter_destroy(&self->filter);
    free(self->to_plain.data);
    free(self->to_tls.data);
    self->to_plain.data = self->to_tls.data = NULL;
    self->to_plain.capacity = self->to_tls.capacity = 0;
}

static bool closed_errno(int e)
{
    return e == EPIPE || e == ECONNRESET || e == ENOTCONN || e == ETIMEDOUT;
}

/* Classifies a failed SSL_read/SSL_write. Returns 0 (wait or closed) or -1. */
static int tls_failure(jx_tls_relay *self, int ret, jx_relay_wait *wait, jx_error *err)
{
    int saved_errno = errno;
    switch (SSL_get_error(self->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        *wait = JX_RELAY_WANTS_READ;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        *wait = JX_RELAY_WANTS_WRITE;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        self->tls_closed = true;
        self->tls_clean_close = true;
        return 0;
    case SSL_ERROR_SYSCALL:
        if (saved_errno == 0 || closed_errno(saved_errno)) {
            self->tls_closed = true;
            ERR_clear_error();
            return 0;
        }
        self->tls_closed = true;
        return jx_error_set(err, JX_ERR_IO, "TLS socket error: %s", strerror(saved_errno));
    case SSL_ERROR_SSL:
        self->tls_closed = true;
        if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return 0;
        }
        return jx_error_set_openssl(err, JX_ERR_TLS, "TLS connection failed");
    default:
        self->tls_closed = true;
        return jx_error_set_openssl(err, JX_ERR_TLS, "TLS connection failed");
    }
}

static int tls_read_step(jx_tls_relay *self, bool *progress, jx_error *err)
{
    self->tls_read_wait = JX_RELAY_IDLE;
    if (self->ssl == NULL || self->tls_closed || self->plain_closed)
        return 0;
    jx_relay_buffer *b = &self->to_plain;
    uint8_t stage[FILTER_STAGE];
    size_t room;
    uint8_t *into;
    size_t len;
    if (self->filter) {
        room = make_room(b, FILTER_ROOM);
        if (room < FILTER_ROOM)
            return 0;
        into = stage;
        len = sizeof stage;
    } else {
        room = make_room(b, b->capacity / 2);
        if (room == 0)
            return 0;
        into = b->data + b->tail;
        len = room > INT_MAX ? INT_MAX : room;
    }
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(self->ssl, into, (int)len);
    if (n <= 0) {
        int rc = tls_failure(self, n, &self->tls_read_wait, err);
        if (self->tls_closed)
            *progress = true;
        return rc;
    }
    *progress = true;
    self->bytes_from_tls += (uint64_t)n;
    if (self->filter == NULL) {
        b->tail += (size_t)n;
        return 0;
    }
    size_t used, out_len;
    int rc = jx_zmtp_filter_push(self->filter, stage, (size_t)n, &used, b->data + b->tail, room,
                                 &out_len, err);
    if (rc < 0)
        return -1;
    b->tail += out_len;
    self->filtered_bytes += out_len;
    if (rc == 1) {
        self->client_ready_end = self->filtered_bytes;
        memcpy(b->data + b->tail, stage + used, (size_t)n - used);
        b->tail += (size_t)n - used;
        jx_zmtp_filter_destroy(&self->filter);
    }
    return 0;
}

static int tls_write_step(jx_tls_relay *self, bool *progress, jx_error *err)
{
    self->tls_write_wait = JX_RELAY_IDLE;
    jx_relay_buffer *b = &self->to_tls;
    if (self->ssl == NULL || self->tls_closed || buffered(b) == 0)
        return 0;
    size_t len = buffered(b) > INT_MAX ? INT_MAX : buffered(b);
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(self->ssl, b->data + b->head, (int)len);
    if (n <= 0) {
        int rc = tls_failure(self, n, &self->tls_write_wait, err);
        if (self->tls_closed)
            *progress = true;
        return rc;
    }
    *progress = true;
    b->head += (size_t)n;
    return 0;
}

/* How far into the forwarded stream the client may be, given how much of
 * its handshake the ROUTER has sent (see pace_greeting). */
static uint64_t greeting_allowance(const jx_tls_relay *self)
{
    uint64_t from = self->bytes_from_plain;
    if (from < JX_ZMTP_SIGNATURE_SIZE)
        return JX_ZMTP_SIGNATURE_SIZE;
    if (from < JX_ZMTP_SIGNATURE_SIZE + 1)
        return JX_ZMTP_SIGNATURE_SIZE + 1;
    if (from < JX_ZMTP_GREETING_SIZE)
        return JX_ZMTP_GREETING_SIZE;
    if (self->router_ready_end != 0 && from >= self->router_ready_end)
        return UINT64_MAX;
    if (self->client_ready_end != 0)
        return self->client_ready_end;
    return UINT64_MAX - 1; /* READY not complete yet: to_plain holds no more than it */
}

/* Notes the header of the ROUTER's first frame after its greeting (its
 * READY) as its bytes pass, to learn where that frame ends. Our own ROUTER
 * wrote these bytes; they are not untrusted input. */
static void watch_router_ready(jx_tls_relay *self, const uint8_t *bytes, size_t n)
{
    uint64_t start = self->bytes_from_plain;
    const uint64_t head_start = JX_ZMTP_GREETING_SIZE, head_end = JX_ZMTP_GREETING_SIZE + 9;
    for (uint64_t pos = start > head_start ? start : head_start; pos < start + n && pos < head_end;
         pos++)
        self->router_head[pos - head_start] = bytes[pos - start];
    uint64_t have = start + n > head_start ? start + n - head_start : 0;
    bool is_long = have >= 1 && (self->router_head[0] & 0x02);
    if (have >= 9 && is_long) {
        uint64_t size = 0;
        for (int i = 1; i < 9; i++)
            size = size << 8 | self->router_head[i];
        self->router_ready_end = head_start + 9 + size;
    } else if (have >= 2 && !is_long) {
        self->router_ready_end = head_start + 2 + self->router_head[1];
    }
}

static int plain_read_step(jx_tls_relay *self, bool *progress, jx_error *err)
{
    self->plain_read_blocked = false;
    jx_relay_buffer *b = &self->to_tls;
    if (self->plain_fd < 0 || self->plain_closed || self->tls_closed)
        return 0;
    size_t room = make_room(b, b->capacity / 2);
    if (room == 0)
        return 0;
    ssize_t n = recv(self->plain_fd, b->data + b->tail, room, 0);
    if (n > 0) {
        *progress = true;
        if (self->pace_greeting && self->router_ready_end == 0)
            watch_router_ready(self, b->data + b->tail, (size_t)n);
        b->tail += (size_t)n;
        self->bytes_from_plain += (uint64_t)n;
        return 0;
    }
    if (n == 0 || closed_errno(errno)) {
        *progress = true;
        self->plain_closed = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        self->plain_read_blocked = true;
        return 0;
    }
    self->plain_closed = true;
    return jx_error_set(err, JX_ERR_IO, "local socket read failed: %s", strerror(errno));
}

static int plain_write_step(jx_tls_relay *self, bool *progress, jx_error *err)
{
    self->plain_write_blocked = false;
    jx_relay_buffer *b = &self->to_plain;
    if (self->plain_fd < 0 || self->plain_closed || buffered(b) == 0)
        return 0;
    size_t len = buffered(b);
    if (self->pace_greeting) {
        uint64_t allowed = greeting_allowance(self);
        if (allowed == UINT64_MAX) {
            self->pace_greeting = false;
        } else {
            if (self->bytes_to_plain >= allowed)
                return 0; /* the ROUTER's next handshake bytes will wake us */
            if (len > allowed - self->bytes_to_plain)
                len = (size_t)(allowed - self->bytes_to_plain);
        }
    }
    ssize_t n = send(self->plain_fd, b->data + b->head, len, MSG_NOSIGNAL);
    if (n >= 0) {
        *progress = true;
        b->head += (size_t)n;
        self->bytes_to_plain += (uint64_t)n;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        self->plain_write_blocked = true;
        return 0;
    }
    self->plain_closed = true;
    *progress = true;
    if (closed_errno(errno))
        return 0;
    return jx_error_set(err, JX_ERR_IO, "local socket write failed: %s", strerror(errno));
}

static bool finished(const jx_tls_relay *self)
{
    if (self->plain_closed &&
        (self->ssl == NULL || self->tls_closed || buffered(&self->to_tls) == 0))
        return true;
    if (self->tls_closed && (self->plain_closed || buffered(&self->to_plain) == 0))
        return true;
    return false;
}

int jx_tls_relay_pump(jx_tls_relay *self, jx_error *err)
{
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        bool progress = false;
        if (tls_read_step(self, &progress, err) < 0 || plain_write_step(self, &progress, err) < 0 ||
            plain_read_step(self, &progress, err) < 0 || tls_write_step(self, &progress, err) < 0)
            return -1;
        if (finished(self))
            return 1;
        if (!progress) {
            self->more = false;
            return 0;
        }
    }
    self->more = true;
    return 0;
}

uint32_t jx_tls_relay_tls_events(const jx_tls_relay *self)
{
    uint32_t events = 0;
    if (self->tls_read_wait == JX_RELAY_WANTS_READ || self->tls_write_wait == JX_RELAY_WANTS_READ)
        events |= EPOLLIN;
    if (self->tls_read_wait == JX_RELAY_WANTS_WRITE || self->tls_write_wait == JX_RELAY_WANTS_WRITE)
        events |= EPOLLOUT;
    return events;
}

uint32_t jx_tls_relay_plain_events(const jx_tls_relay *self)
{
    uint32_t events = 0;
    if (self->plain_read_blocked)
        events |= EPOLLIN;
    if (self->plain_write_blocked)
        events |= EPOLLOUT;
    return events;
}
