/* gateway_main.c — justx-gateway: the daemon, and its administration commands.
 *
 *   justx-gateway -c FILE                 run
 *   justx-gateway -c FILE --check         validate, print agencies and routes
 *   justx-gateway -c FILE --explain ...   where would a message go, and why
 *   justx-gateway -c FILE --status        ask the running gateway how it is
 *
 * main owns the only process-wide state: the signal flags and the log lock.
 */
#include "broker.h"
#include "config.h"
#include "routes.h"

#include <getopt.h>
#include <libconfig.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int signal_number)
{
    if (signal_number == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

/* One line per event: a UTC timestamp, then the key=value fields. Lines come
 * from the broker and the TLS front end threads, hence the lock. */
static void log_line(void *arg, const char *line)
{
    (void)arg;
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

static void usage(FILE *out)
{
    fprintf(out,
            "usage: justx-gateway -c FILE [--check | --status |\n"
            "                     --explain --from AGENCY --type TYPE [--to AGENCY]...]\n\n"
            "Runs the justx gateway with the configuration FILE (libconfig syntax; see\n"
            "conf/gateway.conf). SIGHUP reloads FILE, keeping the running configuration if\n"
            "the new one is invalid; SIGTERM stops cleanly.\n\n"
            "  --check     validate FILE and print its agencies and route table\n"
            "  --explain   say where a message of TYPE from AGENCY would go, and why\n"
            "  --status    ask the running gateway (over its private control socket) for\n"
            "              connected adapters, spool depths, totals and expiring certificates\n\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

/* --status must work when the file has just been broken (a refused reload
 * is exactly when an administrator asks), so it reads only gateway.state_dir
 * and does not validate the rest. */
static int status(const char *path)
{
    config_t file;
    config_init(&file);
    const char *state_dir = NULL;
    if (config_read_file(&file, path) != CONFIG_TRUE ||
        config_lookup_string(&file, "gateway.state_dir", &state_dir) != CONFIG_TRUE) {
        fprintf(stderr, "justx-gateway: %s: cannot read gateway.state_dir%s%s\n", path,
                config_error_text(&file) ? ": " : "",
                config_error_text(&file) ? config_error_text(&file) : "");
        config_destroy(&file);
        return 1;
    }
    char directory[4096], endpoint[8300];
    snprintf(directory, sizeof directory, "%s", path);
    if (state_dir[0] == '/')
        snprintf(endpoint, sizeof endpoint, "ipc://%s/run/control.ipc", state_dir);
    else
        snprintf(endpoint, sizeof endpoint, "ipc://%s/%s/run/control.ipc", dirname(directory),
                 state_dir);
    config_destroy(&file);
    void *context = zmq_ctx_new();
    void *request = zmq_socket(context, ZMQ_REQ);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(request, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(request, ZMQ_LINGER, &linger, sizeof linger);
    int rc = 1;
    char answer[1 << 16];
    if (zmq_connect(request, endpoint) == 0 && zmq_send(request, "status", 6, 0) == 6) {
        int len = zmq_recv(request, answer, sizeof answer - 1, 0);
        if (len >= 0) {
            answer[len < (int)sizeof answer - 1 ? len : (int)sizeof answer - 1] = '\0';
            printf("%s\n", answer);
            rc = 0;
        }
    }
    if (rc != 0)
        fprintf(stderr, "justx-gateway: no answer from the gateway at %s (is it running?)\n",
                endpoint);
    zmq_close(request);
    zmq_ctx_term(context);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
        {"explain", no_argument, NULL, 'e'},      {"from", required_argument, NULL, 'f'},
        {"type", required_argument, NULL, 't'},   {"to", required_argument, NULL, 'r'},
        {"status", no_argument, NULL, 's'},       {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *path = NULL, *from = NULL, *type = NULL;
    const char *to[64];
    size_t n_to = 0;
    int mode = 'r'; /* run */
    int option;
    while ((option = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (option) {
        case 'c': path = optarg; break;
        case 'k':
        case 'e':
        case 's': mode = option; break;
        case 'f': from = optarg; break;
        case 't': type = optarg; break;
        case 'r':
            if (n_to < sizeof to / sizeof to[0])
                to[n_to++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (path == NULL || optind != argc || (mode == 'e' && (from == NULL || type == NULL))) {
        usage(stderr);
        return 2;
    }

    /* The file is read again on SIGHUP: hold it by its absolute name, so a
     * changed working directory cannot make a reload read another file. */
    char absolute[4096];
    if (realpath(path, absolute) != NULL)
        path = absolute;
    if (mode == 's')
        return status(path);
    jx_error err = {0};
    jx_gateway_config *config = jx_gateway_config_load(path, &err);
    if (config == NULL) {
        fprintf(stderr, "justx-gateway: %s: %s\n", jx_error_code_name(err.code), err.message);
        return 1;
    }
    if (mode == 'k') {
        int rc = jx_gateway_config_check_files(config, &err);
        if (rc != 0)
            fprintf(stderr, "justx-gateway: %s: %s\n", jx_error_code_name(err.code), err.message);
        else
            jx_gateway_config_print(config, stdout);
        jx_gateway_config_destroy(&config);
        return rc == 0 ? 0 : 1;
    }
    if (mode == 'e') {
        int rc = jx_routes_explain(config, from, type, to, n_to, stdout);
        jx_gateway_config_destroy(&config);
        return rc == 0 ? 0 : 1;
    }

    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    jx_broker *broker = jx_broker_new(config, log_line, NULL, &err);
    if (broker == NULL) {
        fprintf(stderr, "justx-gateway: cannot start: %s: %s\n", jx_error_code_name(err.code),
                err.message);
        return 1;
    }
    int rc = jx_broker_run(broker, &stop_requested, &reload_requested, &err);
    if (rc != 0) {
        char line[700];
        snprintf(line, sizeof line, "level=error event=fatal code=%s reason=\"%s\"",
                 jx_error_code_name(err.code), err.message);
        log_line(NULL, line);
    }
    jx_broker_destroy(&broker);
    return rc == 0 ? 0 : 1;
}
