/* gwtest.h — support for the gateway's integration tests: a real
 * justx-gateway process on loopback, real adapters, and a raw protocol link.
 *
 * A test makes a gwt_env (a private temporary directory holding a copy of
 * the dev PKI, a gateway.conf with a free TCP port, the gateway's state
 * directory and its log file), starts the gateway with fork/exec, and talks
 * to it through jx_adapter instances or gwt_link (a TLS dialer and a DEALER
 * speaking docs/protocol.md frame by frame, for frames no adapter would
 * send). Every wait is bounded; a helper that cannot do its job aborts the
 * test with a message that says what it waited for, and the gateway's log.
 *
 * Invariants:
 *  - the gateway child dies with the test (PR_SET_PDEATHSIG), so a failed
 *    test leaves no process behind; gwt_env_destroy stops it and removes the
 *    directory unless JX_TEST_KEEP is set in the environment;
 *  - the port is fixed for the life of the env, so restarts (SIGKILL, then
 *    gwt_gateway_start again) come back where the adapters dial;
 *  - the gateway's stderr is appended to <dir>/gateway.log across restarts;
 *    gwt_gateway_log_* search it from the start, or from a mark.
 *
 * Names are gwt_* (gateway test) to keep them apart from the libraries'.
 */
#ifndef JX_GWTEST_H
#define JX_GWTEST_H

#include "adapter.h"
#include "envelope.h"
#include "receipt_check.h"
#include "tls_dialer.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fails the test program: prints where and why, then aborts. */
#define GWT_CHECK(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            gwt_fail(__FILE__, __LINE__, "check failed: %s", #cond);                               \
    } while (0)

/* The same with a sentence saying what was expected. */
#define GWT_CHECKF(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            gwt_fail(__FILE__, __LINE__, __VA_ARGS__);                                             \
    } while (0)

void gwt_fail(const char *file, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* A test program is a list of tests run in order (or only those named on
 * the command line); each prints "ok NAME (N ms)". A failed check aborts the
 * program, so ctest sees the failure with the message and the gateway log. */
typedef struct {
    const char *name;
    void (*run)(void);
    /* A test that shows a known, reported bug: skipped unless named on the
     * command line (gateway.cmake registers it as a DISABLED ctest). */
    const char *known_bug;
} gwt_test;
int gwt_main(int argc, char **argv, const gwt_test *tests, size_t count);

void gwt_sleep_ms(int ms);
int64_t gwt_monotonic_ms(void);

/* ---- log capture (adapters and links log through this) ------------------ */

typedef struct gwt_log gwt_log;
gwt_log *gwt_log_new(const char *tag);
void gwt_log_destroy(gwt_log **self_p);
/* A jx_log_fn; arg is the gwt_log. Echoes to stderr when JX_TEST_VERBOSE is set. */
void gwt_log_line(void *arg, const char *line);
/* Lines containing every word of the NULL-terminated list. */
int gwt_log_count(gwt_log *self, const char *const *words);
void gwt_log_dump(gwt_log *self);

/* ---- the environment and the gateway process ---------------------------- */

/* What the test configuration differs in; zero means the default shown. */
typedef struct {
    int64_t max_message_bytes;    /* 4 MiB */
    int64_t max_clock_skew_ms;    /* 5 min */
    int64_t retry_initial_ms;     /* 500 */
    int64_t retry_max_ms;         /* 2000 */
    int64_t checkpoint_every_ms;  /* 1000 */
    const char *extra_routes;     /* libconfig route groups appended to the default routes */
    const char *log_level;        /* "info" */
} gwt_config_options;

typedef struct {
    char dir[256];         /* private temporary directory */
    char pki[300];         /* dir/pki: copy of the dev PKI */
    char config[300];      /* dir/gateway.conf */
    char state[300];       /* dir/state: the gateway's state_dir */
    char log_path[300];    /* dir/gateway.log */
    char origin[64];       /* the gateway's id, its checkpoint origin */
    int port;
    pid_t pid;             /* 0 when not running */
    int starts;            /* gateway processes started so far */
    EVP_PKEY *gateway_key; /* public key from pki/gateway.pem */
} gwt_env;

/* Makes the directory, copies the PKI, picks a port, writes the config. */
gwt_env *gwt_env_new(const char *name, const gwt_config_options *options);
/* Stops the gateway (SIGTERM, then SIGKILL after 10 s) and removes everything. */
void gwt_env_destroy(gwt_env **self_p);

/* (Re)writes dir/gateway.conf from options. */
void gwt_config_write(gwt_env *env, const gwt_config_options *options);
/* Writes text as dir/gateway.conf as it is (for broken files). */
void gwt_config_write_text(gwt_env *env, const char *text);

/* A path under env->pki, e.g. gwt_pki(env, "KG-PROBATION.pem"); one of 16
 * rotating static buffers. */
const char *gwt_pki(const gwt_env *env, const char *file);

/* Starts justx-gateway -c dir/gateway.conf and waits (up to 20 s) for its
 * "event=started" line; fails the test if it exits instead. */
void gwt_gateway_start(gwt_env *env);
/* SIGTERM and wait for a clean exit (status 0 required). */
void gwt_gateway_stop(gwt_env *env);
/* SIGKILL and reap. */
void gwt_gateway_kill(gwt_env *env);
/* SIGHUP. */
void gwt_gateway_reload(gwt_env *env);
/* True while the child runs (reaps it when it has exited). */
bool gwt_gateway_running(gwt_env *env);

/* Size of the log now: a mark for _log_count_since. */
size_t gwt_gateway_log_mark(gwt_env *env);
/* Lines after mark containing every word of the NULL-terminated list. */
int gwt_gateway_log_count_since(gwt_env *env, size_t mark, const char *const *words);
/* Waits until at least want such lines exist; false on timeout. */
bool gwt_gateway_log_wait(gwt_env *env, size_t mark, int want, int timeout_ms,
                          const char *const *words);
/* The first such line after mark (caller frees), or NULL. */
char *gwt_gateway_log_find(gwt_env *env, size_t mark, const char *const *words);
void gwt_gateway_log_dump(gwt_env *env);

/* Runs a program (argv[0] is a path) with a time limit, capturing stdout and
 * stderr (caller frees; either out pointer may be NULL). Returns the exit
 * status, or -1 when it was killed or timed out. */
int gwt_run(const char *const *argv, int timeout_ms, char **out, char **err_text);

/* justx-gateway --status, parsed. NULL when it failed. */
json_t *gwt_gateway_status(gwt_env *env);

/* ---- adapters ----------------------------------------------------------- */

/* An adapter for agency with state in dir/adapters/<name> (name: agency when
 * NULL), logging into log (may be NULL). Fails the test on error. */
jx_adapter *gwt_adapter_new(gwt_env *env, const char *agency, const char *name, gwt_log *log);

/* Waits until the adapter's link is CONNECTED. */
bool gwt_adapter_wait_connected(jx_adapter *adapter, int timeout_ms);

/* Receipt status of message_id with status (recipient may be NULL): the
 * first matching receipt's reason code (caller frees), or NULL. */
char *gwt_adapter_receipt_code(jx_adapter *adapter, const char *message_id, const char *status,
                               const char *recipient);

/* Inbox entries (received, whatever their consumed state). */
int64_t gwt_adapter_inbox_count(jx_adapter *adapter);

/* ---- payloads ----------------------------------------------------------- */

/* A valid serialized document of type (any of the five document types) for
 * case case_number, padded with text to about size bytes (0: small). Caller
 * frees *out. */
void gwt_payload(const char *type, const char *case_number, size_t size, uint8_t **out,
                 size_t *len);

/* Seals a document with the agency's key from the env's PKI (agency is the
 * certificate file's stem: "KG-COURT-BISHKEK", "TEST-REVOKED", ...). */
jx_signer *gwt_signer(const gwt_env *env, const char *agency);

/* ---- the raw link --------------------------------------------------------- */

typedef struct gwt_link gwt_link;

/* A TLS dialer with agency's certificate and a DEALER on it; waits until
 * the link is CONNECTED (fails the test after 20 s). */
gwt_link *gwt_link_new(gwt_env *env, const char *agency, const char *name);
/* The same without waiting: for a connection that is expected to fail. */
gwt_link *gwt_link_dial(gwt_env *env, const char *agency, const char *name);
void gwt_link_destroy(gwt_link **self_p);
/* The link's dialer log (borrowed). */
gwt_log *gwt_link_log(gwt_link *self);
jx_tls_dialer_state gwt_link_state(gwt_link *self);

/* Sends [command] or [command][body]. */
void gwt_link_send(gwt_link *self, const char *command, const void *body, size_t len);

/* One message from the gateway: its command, first body frame and the
 * optional third frame (a queued receipt's id). */
typedef struct {
    char command[32];
    uint8_t *body;
    size_t body_len;
    char extra[64];
} gwt_frame;

/* Waits up to timeout_ms for the next message; 1 and *out (release with
 * gwt_frame_release), 0 on timeout. */
int gwt_link_next(gwt_link *self, int timeout_ms, gwt_frame *out);
void gwt_frame_release(gwt_frame *frame);

/* Waits for the next RECEIPT (other commands are counted in *skipped when
 * not NULL, and dropped), checks it against the gateway's key (fails the
 * test if it does not verify) and fills out. 1, or 0 on timeout. */
int gwt_link_receipt(gwt_link *self, int timeout_ms, jx_checked_receipt *out, int *skipped);

/* Sends a signed ACK for header digests (as the recipient agency). */
void gwt_link_ack(gwt_link *self, const uint8_t (*digests)[32], size_t count);

/* ---- receipts and the journal --------------------------------------------- */

/* Checks receipt bytes against the env's gateway key and origin. */
int gwt_receipt_check(gwt_env *env, const uint8_t *bytes, size_t len, jx_checked_receipt *out,
                      jx_error *err);

/* Calls each for every record of the env's journal (opened read-only), in
 * index order; stops when each returns non-zero. Returns the record count. */
typedef int (*gwt_record_fn)(void *arg, uint64_t index, const Justx__V1__JournalRecord *record);
uint64_t gwt_journal_scan(gwt_env *env, gwt_record_fn each, void *arg);

/* Records whose event is `event` (JX_EVENT_*) and, when not NULL, whose
 * message id and recipient match. */
int gwt_journal_count(gwt_env *env, int event, const char *message_id, const char *recipient);

#endif
