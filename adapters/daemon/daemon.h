/* daemon.h — what the parts of the justx-adapter daemon share.
 *
 * main.c owns one jx_daemon: the configuration, the adapter (link, I/O
 * thread, store), a trust store of its own for re-verifying stored messages
 * before they are shown, and the log. The drop-box thread and the HTTP
 * server's thread use it at the same time: the store and the trust store are
 * thread-safe, and every call into the adapter's application API goes
 * through jx_daemon_send, which serialises them (adapter.h allows one
 * application thread at a time).
 */
#ifndef JX_DAEMON_H
#define JX_DAEMON_H

#include "adapter.h"
#include "adapter_config.h"
#include "message_json.h"

#include <pthread.h>
#include <stdbool.h>

typedef struct {
    const jx_adapter_conf *conf;
    jx_adapter *adapter;
    jx_adapter_store *store; /* the adapter's, borrowed */
    jx_trust *trust;         /* anchors and CRLs of conf, for showing stored messages */
    pthread_mutex_t send_lock;
} jx_daemon;

/* One key=value log line to stderr, with a timestamp. Thread-safe. */
void jx_daemon_log(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Sends a parsed submission. When the submission names a message id that
 * this adapter has sent already, nothing is sent again and *duplicate is
 * set: a retried POST or a drop-box file picked up again after a crash is
 * sent once. message_id receives the id. 0, or -1 with err. */
int jx_daemon_send(jx_daemon *daemon, const jx_submission *submission,
                   char message_id[JX_MESSAGE_ID_MAX], bool *duplicate, jx_error *err);

/* Like jx_daemon_send for count submissions that all carry a message id,
 * stored in one outbox transaction (one disk sync): all or none. */
int jx_daemon_send_many(jx_daemon *daemon, const jx_submission *const *submissions, size_t count,
                        char (*message_ids)[JX_MESSAGE_ID_MAX], bool *duplicate, jx_error *err);

/* Opens a stored envelope again (signature, certificate, as of its arrival
 * time) and renders it as JSON (message_json.h). NULL and err. */
json_t *jx_daemon_render_message(jx_daemon *daemon, const jx_adapter_store_inbox_entry *entry,
                                 jx_error *err);

/* ---- the drop-box (dropbox.c) ---- */

typedef struct jx_dropbox jx_dropbox;

/* Creates the drop-box folders (0700) and starts its thread. */
jx_dropbox *jx_dropbox_new(jx_daemon *daemon, const char *dir, int poll_ms, jx_error *err);
void jx_dropbox_destroy(jx_dropbox **self_p);

/* ---- the HTTP API (http_api.c) ---- */

typedef struct jx_http_api jx_http_api;

/* Listens on the loopback address listen ("127.0.0.1:8480"; port 0 picks
 * one) and serves on libmicrohttpd's own thread. */
jx_http_api *jx_http_api_new(jx_daemon *daemon, const char *listen, size_t max_body_bytes,
                             jx_error *err);
void jx_http_api_destroy(jx_http_api **self_p);
/* The port it listens on. */
int jx_http_api_port(const jx_http_api *self);

#endif
