/* tls_loop.h — the epoll thread under the TLS front end and the TLS dialer.
 *
 * Each side runs one thread that waits on its listening socket, on an eventfd
 * that wakes it to stop, and on the two sockets of each of its links (a TLS
 * connection and the plain socket it is relayed to). The side says what to do
 * when the listening socket is ready, when a socket of a link is ready, after
 * each batch of events, and how long the thread may sleep.
 *
 * A side's link struct starts with a jx_tls_link and is allocated with
 * malloc; the loop frees it. Invariants:
 * - A link is in the list from jx_tls_loop_add until jx_tls_loop_kill; killed
 *   links wait in a graveyard until the current batch of epoll events is
 *   done, so a later event of the same batch never touches freed memory.
 * - A socket is in the epoll set only while its link waits for something on
 *   it; that keeps a hung-up socket whose data cannot be taken yet from
 *   waking the loop over and over.
 * - Everything runs on the loop's thread except new, start, wake and destroy.
 */
#ifndef JX_TLS_LOOP_H
#define JX_TLS_LOOP_H

#include "error.h"
#include "tls_relay.h"
#include "transport.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct jx_tls_loop jx_tls_loop;
typedef struct jx_tls_link jx_tls_link;

typedef enum {
    JX_TLS_WATCH_TLS,
    JX_TLS_WATCH_PLAIN,
    JX_TLS_WATCH_LISTEN,
    JX_TLS_WATCH_WAKE
} jx_tls_watch_side;

/* What an epoll event points at. */
typedef struct {
    jx_tls_watch_side which;
    jx_tls_link *link; /* NULL for the listening socket and the eventfd */
    uint32_t events;   /* registered now; 0 = not in the epoll set */
} jx_tls_watch;

struct jx_tls_link {
    jx_tls_watch tls_watch;
    jx_tls_watch plain_watch;
    jx_tls_relay relay;
    bool dead;
    jx_tls_link *prev;
    jx_tls_link *next;
};

/* Called on the loop's thread with the owner given to jx_tls_loop_start. */
typedef struct {
    void (*accept)(void *owner); /* the listening socket is ready */
    /* a socket of a link that is not dead is ready */
    void (*ready)(void *owner, jx_tls_link *link, jx_tls_watch_side which);
    void (*after_batch)(void *owner); /* before the graveyard is emptied */
    int (*timeout_ms)(void *owner);   /* how long the next wait may last */
} jx_tls_loop_handlers;

/* Makes the epoll set and the eventfd and watches listen_fd (borrowed; the
 * side closes it). log (may be NULL) receives the loop's own error lines. */
jx_tls_loop *jx_tls_loop_new(int listen_fd, jx_log_fn log, void *log_arg, jx_error *err);

/* Starts the thread; name ("TLS dialer") goes into the error sentence. */
int jx_tls_loop_start(jx_tls_loop *self, const jx_tls_loop_handlers *handlers, void *owner,
                      const char *name, jx_error *err);

/* Wakes the thread from any thread: it finishes its current batch of events
 * and runs after_batch, where the side picks up what another thread left for
 * it (under the side's own lock). */
void jx_tls_loop_wake(jx_tls_loop *self);

/* Stops and joins the thread; links are left as they are, so the side can
 * kill each one its own way. Safe twice. */
void jx_tls_loop_stop(jx_tls_loop *self);

/* Stops the thread, frees every link (the side has killed them, see
 * jx_tls_loop_stop) and closes the epoll set and the eventfd. */
void jx_tls_loop_destroy(jx_tls_loop **self_p);

/* Registers events (EPOLLIN / EPOLLOUT; 0 removes fd) for fd under w.
 * Nothing happens for fd < 0 or events already registered. 0, or -1 with
 * errno from epoll_ctl. */
int jx_tls_loop_watch(jx_tls_loop *self, int fd, jx_tls_watch *w, uint32_t events);

/* The next connection on the listening socket, non-blocking and
 * close-on-exec, with its address in addr when addr is not NULL; -1 when
 * none is waiting (an accept failure other than that is logged). */
int jx_tls_loop_accept(jx_tls_loop *self, int listen_fd, struct sockaddr_storage *addr);

/* Puts a link, with its watches pointing at it, first in the list. */
void jx_tls_loop_add(jx_tls_loop *self, jx_tls_link *link);

/* Takes a link's relay sockets out of the epoll set and moves the link to the
 * graveyard. Safe twice. */
void jx_tls_loop_kill(jx_tls_loop *self, jx_tls_link *link);

/* The first live link (then follow ->next), NULL when there is none. */
jx_tls_link *jx_tls_loop_links(const jx_tls_loop *self);

#endif
