/* main.c — justx-adapter: an agency's adapter as a daemon, for agency
 * systems that do not link C: a drop-box folder and a local HTTP/JSON API.
 *
 *   justx-adapter -c FILE          run until SIGTERM or SIGINT
 *   justx-adapter -c FILE --check  validate FILE and exit
 *
 * main owns the process-wide state: the signal flag, the log lock and the
 * jx_daemon the drop-box and HTTP threads share. Stopping is ordered so
 * that nothing is cut off half way: the HTTP server and the drop-box thread
 * finish what they are doing and stop, then the adapter's I/O thread flushes
 * its acknowledgements and stops. Whatever is in the outbox is sent by the
 * next start.
 */
#include "daemon.h"

#include "json.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static void log_write(const char *line)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "ts=%s.%03ldZ %s\n", stamp, now.tv_nsec / 1000000, line);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void jx_daemon_log(const char *format, ...)
{
    char line[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    log_write(line);
}

static void library_log(void *arg, const char *line)
{
    (void)arg;
    log_write(line);
}

int jx_daemon_send_many(jx_daemon *daemon, const jx_submission *const *submissions, size_t count,
                        char (*message_ids)[JX_MESSAGE_ID_MAX], bool *duplicate, jx_error *err)
{
    jx_adapter_outgoing *outgoing = calloc(count ? count : 1, sizeof *outgoing);
    size_t *index = calloc(count ? count : 1, sizeof *index);
    if (outgoing == NULL || index == NULL) {
        free(outgoing);
        free(index);
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory sending %zu messages", count);
    }
    int rc = -1;
    size_t n = 0;
    int64_t now = jx_now_ms();
    pthread_mutex_lock(&daemon->send_lock);
    for (size_t i = 0; i < count; i++) {
        const jx_submission *submission = submissions[i];
        duplicate[i] = false;
        if (submission->message_id) {
            snprintf(message_ids[i], JX_MESSAGE_ID_MAX, "%s", submission->message_id);
            jx_adapter_store_sent_entry *sent = NULL;
            int found =
                jx_adapter_store_sent_get(daemon->store, submission->message_id, &sent, err);
            jx_adapter_store_sent_entry_destroy(&sent);
            if (found < 0)
                goto done;
            if (found > 0) {
                duplicate[i] = true;
                continue;
            }
        }
        jx_submission_params(submission, now, &outgoing[n].params);
        outgoing[n].payload = submission->payload;
        outgoing[n].payload_len = submission->payload_len;
        index[n++] = i;
    }
    if (n > 0 && jx_adapter_send_many(daemon->adapter, outgoing, n, err) != 0)
        goto done;
    for (size_t k = 0; k < n; k++)
        memcpy(message_ids[index[k]], outgoing[k].message_id, JX_MESSAGE_ID_MAX);
    rc = 0;
done:
    pthread_mutex_unlock(&daemon->send_lock);
    free(outgoing);
    free(index);
    return rc;
}

int jx_daemon_send(jx_daemon *daemon, const jx_submission *submission,
                   char message_id[JX_MESSAGE_ID_MAX], bool *duplicate, jx_error *err)
{
    const jx_submission *one = submission;
    char ids[1][JX_MESSAGE_ID_MAX];
    if (jx_daemon_send_many(daemon, &one, 1, ids, duplicate, err) != 0)
        return -1;
    memcpy(message_id, ids[0], JX_MESSAGE_ID_MAX);
    return 0;
}

json_t *jx_daemon_render_message(jx_daemon *daemon, const jx_adapter_store_inbox_entry *entry,
                                 jx_error *err)
{
    /* The store is a file: what is shown must be what the sender signed. */
    jx_open_params params = {.now_ms = entry->received_at_ms};
    jx_opened *opened =
        jx_envelope_open(daemon->trust, entry->envelope, entry->envelope_len, &params, err);
    if (opened == NULL)
        return NULL;
    json_t *object = jx_message_json_received(opened, entry->sequence, entry->received_at_ms,
                                              entry->consumed, err);
    jx_opened_destroy(&opened);
    return object;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: justx-adapter -c FILE [--check]\n\n"
            "Runs an agency's justx adapter with the configuration FILE (libconfig; see\n"
            "conf/adapter.conf): the link to the gateway, the durable outbox and inbox, and\n"
            "for agency systems the drop-box folder (adapter.dropbox) and the local HTTP/JSON\n"
            "API (adapter.http; docs/adapter-api.yaml). SIGTERM or SIGINT stops cleanly.\n\n"
            "  --check   validate FILE and exit\n\n"
            "Log lines (key=value) go to standard error. Exit status: 0 success, 1 failure,\n"
            "2 usage error.\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *path = NULL;
    bool check_only = false;
    int option;
    while ((option = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (option) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    jx_error err = {0};
    jx_adapter_conf *conf = jx_adapter_conf_load(path, &err);
    if (conf == NULL) {
        fprintf(stderr, "justx-adapter: %s: %s\n", jx_error_code_name(err.code), err.message);
        return 1;
    }
    if (check_only) {
        printf("%s: valid (state_dir %s, gateway %s, drop-box %s, HTTP API %s)\n", path,
               conf->state_dir, conf->gateway, conf->dropbox_dir ? conf->dropbox_dir : "off",
               conf->http_listen ? conf->http_listen : "off");
        jx_adapter_conf_destroy(&conf);
        return 0;
    }

    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    jx_daemon daemon = {.conf = conf};
    pthread_mutex_init(&daemon.send_lock, NULL);
    jx_dropbox *dropbox = NULL;
    jx_http_api *http = NULL;

    daemon.trust = jx_trust_new(conf->ca, &err);
    if (daemon.trust == NULL)
        goto done;
    for (size_t i = 0; i < conf->n_crls; i++)
        if (jx_trust_add_crl(daemon.trust, conf->crls[i], &err) != 0)
            goto done;
    jx_adapter_config config;
    jx_adapter_conf_fill(conf, &config);
    config.log = library_log;
    daemon.adapter = jx_adapter_new(&config, &err);
    if (daemon.adapter == NULL)
        goto done;
    daemon.store = jx_adapter_get_store(daemon.adapter);
    if (conf->dropbox_dir) {
        dropbox = jx_dropbox_new(&daemon, conf->dropbox_dir, conf->dropbox_poll_ms, &err);
        if (dropbox == NULL)
            goto done;
    }
    if (conf->http_listen) {
        http = jx_http_api_new(&daemon, conf->http_listen, conf->http_max_body_bytes, &err);
        if (http == NULL)
            goto done;
    }
    jx_daemon_log("level=info event=started agency=%s pid=%d state_dir=%s gateway=%s dropbox=%s "
                  "http=%s http_port=%d",
                  jx_adapter_agency(daemon.adapter), (int)getpid(), conf->state_dir, conf->gateway,
                  conf->dropbox_dir ? conf->dropbox_dir : "off",
                  conf->http_listen ? conf->http_listen : "off", http ? jx_http_api_port(http) : 0);
    /* Polled: the signal may land on any thread, and a flag checked just
     * before pause() could miss it. */
    while (!stop_requested) {
        struct timespec nap = {0, 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    jx_daemon_log("level=info event=stopping agency=%s", jx_adapter_agency(daemon.adapter));
    status = 0;
done:
    if (status != 0)
        jx_daemon_log("level=error event=fatal code=%s reason=\"%s\"", jx_error_code_name(err.code),
                      err.message);
    jx_http_api_destroy(&http);
    jx_dropbox_destroy(&dropbox);
    jx_adapter_destroy(&daemon.adapter);
    jx_trust_destroy(&daemon.trust);
    pthread_mutex_destroy(&daemon.send_lock);
    if (status == 0)
        jx_daemon_log("level=info event=stopped");
    jx_adapter_conf_destroy(&conf);
    return status;
}
