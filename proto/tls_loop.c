/* tls_loop.c — the epoll thread under the TLS front end and the TLS dialer.
 *
 * See tls_loop.h for the invariants. The only state shared with other
 * threads is `stop` (atomic) and the eventfd that wakes the thread (to read
 * `stop`, or to run after_batch for the side); the links belong to the
 * thread once it runs.
 */
#include "tls_loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { EVENT_BATCH = 64 };

struct jx_tls_loop {
    jx_log_fn log;
    void *log_arg;
    int epoll_fd;
    int wake_fd;
    jx_tls_watch listen_watch;
    jx_tls_watch wake_watch;
    jx_tls_link *links;
    jx_tls_link *graveyard;
    jx_tls_loop_handlers handlers;
    void *owner;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
};

int jx_tls_loop_watch(jx_tls_loop *self, int fd, jx_tls_watch *w, uint32_t events)
{
    if (fd < 0 || w->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    int rc;
    if (events == 0)
        rc = epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    else if (w->events == 0)
        rc = epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    else
        rc = epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    if (rc == 0)
        w->events = events;
    return rc;
}

int jx_tls_loop_accept(jx_tls_loop *self, int listen_fd, struct sockaddr_storage *addr)
{
    for (;;) {
        socklen_t addr_len = sizeof *addr;
        int fd = accept4(listen_fd, (struct sockaddr *)addr, addr ? &addr_len : NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            jx_transport_log(self->log, self->log_arg, "event=error detail=\"accept failed: %s\"",
                             strerror(errno));
        return -1;
    }
}

void jx_tls_loop_add(jx_tls_loop *self, jx_tls_link *link)
{
    link->tls_watch = (jx_tls_watch){.which = JX_TLS_WATCH_TLS, .link = link, .events = 0};
    link->plain_watch = (jx_tls_watch){.which = JX_TLS_WATCH_PLAIN, .link = link, .events = 0};
    link->prev = NULL;
    link->next = self->links;
    if (self->links)
        self->links->prev = link;
    self->links = link;
}

void jx_tls_loop_kill(jx_tls_loop *self, jx_tls_link *link)
{
    if (link->dead)
        return;
    link->dead = true;
    jx_tls_loop_watch(self, link->relay.tls_fd, &link->tls_watch, 0);
    jx_tls_loop_watch(self, link->relay.plain_fd, &link->plain_watch, 0);
    if (link->prev)
        link->prev->next = link->next;
    else
        self->links = link->next;
    if (link->next)
        link->next->prev = link->prev;
    link->prev = NULL;
    link->next = self->graveyard;
    self->graveyard = link;
}

jx_tls_link *jx_tls_loop_links(const jx_tls_loop *self)
{
    return self->links;
}

static void bury(jx_tls_loop *self)
{
    while (self->graveyard) {
        jx_tls_link *link = self->graveyard;
        self->graveyard = link->next;
        jx_tls_relay_release(&link->relay);
        free(link);
    }
}

static void *loop_thread(void *arg)
{
    jx_tls_loop *self = arg;
    /* OpenSSL writes to sockets with write(2): a peer that vanished must
     * give EPIPE here, not kill the process. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

    struct epoll_event events[EVENT_BATCH];
    while (!atomic_load(&self->stop)) {
        int n =
            epoll_wait(self->epoll_fd, events, EVENT_BATCH, self->handlers.timeout_ms(self->owner));
        if (n < 0 && errno != EINTR) {
            jx_transport_log(self->log, self->log_arg,
                             "event=error detail=\"epoll_wait failed: %s\"", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            jx_tls_watch *w = events[i].data.ptr;
            if (w->which == JX_TLS_WATCH_LISTEN) {
                self->handlers.accept(self->owner);
            } else if (w->which == JX_TLS_WATCH_WAKE) {
                uint64_t value;
                if (read(self->wake_fd, &value, sizeof value) < 0 && errno != EAGAIN)
                    break;
            } else if (!w->link->dead) {
                self->handlers.ready(self->owner, w->link, w->which);
            }
        }
        self->handlers.after_batch(self->owner);
        bury(self);
    }
    return NULL;
}

jx_tls_loop *jx_tls_loop_new(int listen_fd, jx_log_fn log, void *log_arg, jx_error *err)
{
    jx_tls_loop *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory for the TLS event loop");
        return NULL;
    }
    self->log = log;
    self->log_arg = log_arg;
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->epoll_fd < 0 || self->wake_fd < 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "cannot make epoll or eventfd: %s", strerror(errno));
        goto fail;
    }
    self->listen_watch = (jx_tls_watch){.which = JX_TLS_WATCH_LISTEN};
    self->wake_watch = (jx_tls_watch){.which = JX_TLS_WATCH_WAKE};
    if (jx_tls_loop_watch(self, listen_fd, &self->listen_watch, EPOLLIN) != 0 ||
        jx_tls_loop_watch(self, self->wake_fd, &self->wake_watch, EPOLLIN) != 0) {
        jx_error_set(err, JX_ERR_SYSTEM, "epoll_ctl failed: %s", strerror(errno));
        goto fail;
    }
    return self;
fail:
    jx_tls_loop_destroy(&self);
    return NULL;
}

int jx_tls_loop_start(jx_tls_loop *self, const jx_tls_loop_handlers *handlers, void *owner,
                      const char *name, jx_error *err)
{
    self->handlers = *handlers;
    self->owner = owner;
    if (pthread_create(&self->thread, NULL, loop_thread, self) != 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "cannot start the %s thread", name);
    self->thread_started = true;
    return 0;
}

void jx_tls_loop_wake(jx_tls_loop *self)
{
    uint64_t one = 1;
    if (write(self->wake_fd, &one, sizeof one) < 0) {
        /* Only EAGAIN is possible (the counter near 2^64 - 1, which the thread
         * resets on every wake-up); the thread is being woken anyway. */
    }
}

void jx_tls_loop_stop(jx_tls_loop *self)
{
    if (self == NULL || !self->thread_started)
        return;
    atomic_store(&self->stop, true);
    jx_tls_loop_wake(self);
    pthread_join(self->thread, NULL);
    self->thread_started = false;
}

void jx_tls_loop_destroy(jx_tls_loop **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_tls_loop *self = *self_p;
    jx_tls_loop_stop(self);
    while (self->links)
        jx_tls_loop_kill(self, self->links);
    bury(self);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    free(self);
    *self_p = NULL;
}
