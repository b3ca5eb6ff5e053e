/* gwtest_process.c — the test environment and the justx-gateway child process.
 *
 * The env's directory is private (mkdtemp, 0700): it holds copies of the dev
 * PKI's keys, and the gateway's run/ sockets must sit in a private place.
 * The gateway child gets PR_SET_PDEATHSIG so it cannot outlive a test that
 * crashed or aborted; note that the signal follows the *thread* that forked,
 * so tests start gateways from their main thread.
 */
#include "gwtest.h"

#include "checkpoint.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef JX_PKI_DIR
#error "JX_PKI_DIR must name the dev PKI directory"
#endif
#ifndef JX_GATEWAY_BIN
#error "JX_GATEWAY_BIN must name the justx-gateway executable"
#endif

static gwt_env *current_env; /* for gwt_fail: dump the gateway log, stop the child */

void gwt_fail(const char *file, int line, const char *format, ...)
{
    fprintf(stderr, "%s:%d: ", file, line);
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    if (current_env) {
        gwt_gateway_log_dump(current_env);
        fprintf(stderr, "(test directory %s kept)\n", current_env->dir);
        if (current_env->pid > 0)
            kill(current_env->pid, SIGKILL);
    }
    abort();
}

int gwt_main(int argc, char **argv, const gwt_test *tests, size_t count)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ran = 0;
    for (size_t i = 0; i < count; i++) {
        bool wanted = argc < 2 && tests[i].known_bug == NULL;
        for (int a = 1; a < argc && !wanted; a++)
            wanted = strcmp(argv[a], tests[i].name) == 0;
        if (!wanted && argc < 2 && tests[i].known_bug) {
            printf("skip %s (known bug: %s)\n", tests[i].name, tests[i].known_bug);
            continue;
        }
        if (!wanted)
            continue;
        printf("start %s\n", tests[i].name);
        int64_t started = gwt_monotonic_ms();
        tests[i].run();
        printf("ok %s (%lld ms)\n", tests[i].name, (long long)(gwt_monotonic_ms() - started));
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test of that name; tests:");
        for (size_t i = 0; i < count; i++)
            fprintf(stderr, " %s", tests[i].name);
        fputc('\n', stderr);
        return 2;
    }
    return 0;
}

void gwt_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int64_t gwt_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- files -------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    struct stat st;
    GWT_CHECK(stat(from, &st) == 0);
    FILE *in = fopen(from, "rb");
    GWT_CHECK(in != NULL);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 0777);
    GWT_CHECK(fd >= 0);
    char buffer[8192];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0)
        GWT_CHECK(write(fd, buffer, n) == (ssize_t)n);
    GWT_CHECK(fchmod(fd, st.st_mode & 0777) == 0);
    close(fd);
    fclose(in);
}

static void copy_pki(gwt_env *env)
{
    GWT_CHECK(mkdir(env->pki, 0700) == 0);
    DIR *dir = opendir(JX_PKI_DIR);
    if (dir == NULL)
        gwt_fail(__FILE__, __LINE__, "cannot open the dev PKI %s: %s", JX_PKI_DIR,
                 strerror(errno));
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char from[600], to[600];
        snprintf(from, sizeof from, "%s/%s", JX_PKI_DIR, entry->d_name);
        snprintf(to, sizeof to, "%s/%s", env->pki, entry->d_name);
        struct stat st;
        if (stat(from, &st) == 0 && S_ISREG(st.st_mode))
            copy_file(from, to);
    }
    closedir(dir);
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (dir) {
            struct dirent *entry;
            while ((entry = readdir(dir)) != NULL) {
                if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                    continue;
                char child[1024];
                snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
                remove_tree(child);
            }
            closedir(dir);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static char *read_file(const char *path, size_t from, size_t *len)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        *len = 0;
        return calloc(1, 1);
    }
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    size_t start = from < (size_t)size ? from : (size_t)size;
    fseek(in, (long)start, SEEK_SET);
    size_t want = (size_t)size - start;
    char *text = malloc(want + 1);
    GWT_CHECK(text != NULL);
    size_t got = fread(text, 1, want, in);
    text[got] = '\0';
    fclose(in);
    *len = got;
    return text;
}

/* A port nobody listens on now. The gateway sets SO_REUSEADDR, so the port
 * can be bound again at once after a restart. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    GWT_CHECK(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    GWT_CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    socklen_t len = sizeof addr;
    GWT_CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

/* ---- configuration --------------------------------------------------------------- */

/* The agencies and routes of conf/gateway.conf, so that the tests exercise
 * the same permissions the example documents. */
static const char agencies_and_routes[] =
    "agencies =\n"
    "(\n"
    "  { id = \"KG-COURT-BISHKEK\"; name = \"Bishkek City Court\";\n"
    "    send = [ \"justx.v1.SentenceOrder\", \"justx.v1.StatusUpdate\" ];\n"
    "    receive = [ \"justx.v1.RiskNeedsAssessment\", \"justx.v1.StatusUpdate\" ]; },\n"
    "  { id = \"KG-PROSECUTOR\"; name = \"General Prosecutor's Office\";\n"
    "    send = [ \"justx.v1.ProbationReferral\" ];\n"
    "    receive = [ \"justx.v1.StatusUpdate\", \"justx.v1.RiskNeedsAssessment\" ]; },\n"
    "  { id = \"KG-PROBATION\"; name = \"Probation Department\";\n"
    "    send = [ \"justx.v1.RiskNeedsAssessment\", \"justx.v1.StatusUpdate\", "
    "\"justx.v1.CaseTransfer\" ];\n"
    "    receive = [ \"justx.v1.SentenceOrder\", \"justx.v1.ProbationReferral\",\n"
    "                \"justx.v1.CaseTransfer\", \"justx.v1.StatusUpdate\" ];\n"
    "    max_adapters = 4; },\n"
    "  { id = \"KG-PRISON\"; name = \"State Penitentiary Service\";\n"
    "    send = [ \"justx.v1.StatusUpdate\" ];\n"
    "    receive = [ \"justx.v1.SentenceOrder\", \"justx.v1.StatusUpdate\" ]; },\n"
    "  { id = \"LV-PROBATION\"; name = \"State Probation Service of Latvia\";\n"
    "    send = [ \"justx.v1.StatusUpdate\" ];\n"
    "    receive = [ \"justx.v1.CaseTransfer\", \"justx.v1.StatusUpdate\" ]; }\n"
    ");\n"
    "\n"
    "routes =\n"
    "(\n"
    "  { name = \"referral\"; from = \"KG-PROSECUTOR\"; type = \"justx.v1.ProbationReferral\";\n"
    "    to = [ \"KG-PROBATION\" ]; },\n"
    "  { name = \"assessment\"; from = \"KG-PROBATION\"; type = "
    "\"justx.v1.RiskNeedsAssessment\";\n"
    "    to = [ \"KG-PROSECUTOR\", \"KG-COURT-BISHKEK\" ]; },\n"
    "  { name = \"sentence-order\"; from = \"KG-COURT-BISHKEK\"; type = "
    "\"justx.v1.SentenceOrder\";\n"
    "    to = [ \"KG-PROBATION\", \"KG-PRISON\" ]; },\n"
    "  { name = \"probation-status\"; from = \"KG-PROBATION\"; type = "
    "\"justx.v1.StatusUpdate\";\n"
    "    to = [ \"KG-COURT-BISHKEK\", \"KG-PROSECUTOR\" ]; },\n"
    "  { name = \"transfer-to-latvia\"; from = \"KG-PROBATION\"; type = "
    "\"justx.v1.CaseTransfer\";\n"
    "    to = [ \"LV-PROBATION\" ]; },\n"
    "  { name = \"latvia-status\"; from = \"LV-PROBATION\"; type = \"justx.v1.StatusUpdate\";\n"
    "    to = [ \"KG-PROBATION\" ]; }%s%s\n"
    ");\n";

void gwt_config_write_text(gwt_env *env, const char *text)
{
    /* Written beside and renamed, so a reload never reads half a file. */
    char temporary[320];
    snprintf(temporary, sizeof temporary, "%s.new", env->config);
    FILE *out = fopen(temporary, "w");
    GWT_CHECK(out != NULL);
    GWT_CHECK(fputs(text, out) >= 0);
    GWT_CHECK(fclose(out) == 0);
    GWT_CHECK(rename(temporary, env->config) == 0);
}

#define OR(value, fallback) ((value) ? (value) : (fallback))

void gwt_config_write(gwt_env *env, const gwt_config_options *options)
{
    static const gwt_config_options none = {0};
    if (options == NULL)
        options = &none;
    char routes[8192];
    snprintf(routes, sizeof routes, agencies_and_routes, options->extra_routes ? ",\n" : "",
             options->extra_routes ? options->extra_routes : "");
    char *text = NULL;
    int n = asprintf(
        &text,
        "# written by tests/integration/support/gwtest_process.c\n"
        "gateway:\n"
        "{\n"
        "  id = \"%s\";\n"
        "  listen = \"127.0.0.1:%d\";\n"
        "  state_dir = \"state\";\n"
        "  log_level = \"%s\";\n"
        "  tls:\n"
        "  {\n"
        "    certificate = \"pki/gateway.pem\";\n"
        "    key = \"pki/gateway.key\";\n"
        "    trust_anchors = [ \"pki/ca.pem\" ];\n"
        "    crls = [ \"pki/crl.pem\" ];\n"
        "  };\n"
        "  journal:\n"
        "  {\n"
        "    checkpoint_every_records = 1000;\n"
        "    checkpoint_every_ms = %lld;\n"
        "  };\n"
        "  limits:\n"
        "  {\n"
        "    max_message_bytes = %lld;\n"
        "    max_clock_skew_ms = %lld;\n"
        "    retry_initial_ms = %lld;\n"
        "    retry_max_ms = %lld;\n"
        "  };\n"
        "};\n\n%s",
        env->origin, env->port, OR(options->log_level, "info"),
        (long long)OR(options->checkpoint_every_ms, 1000),
        (long long)OR(options->max_message_bytes, 4194304),
        (long long)OR(options->max_clock_skew_ms, 300000),
        (long long)OR(options->retry_initial_ms, 500),
        (long long)OR(options->retry_max_ms, 2000), routes);
    GWT_CHECK(n > 0);
    gwt_config_write_text(env, text);
    free(text);
}

/* ---- the env ---------------------------------------------------------------------- */

const char *gwt_pki(const gwt_env *env, const char *file)
{
    static __thread char paths[16][512];
    static __thread unsigned next;
    char *path = paths[next++ % 16];
    snprintf(path, 512, "%s/%s", env->pki, file);
    return path;
}

gwt_env *gwt_env_new(const char *name, const gwt_config_options *options)
{
    signal(SIGPIPE, SIG_IGN);
    gwt_env *env = calloc(1, sizeof *env);
    GWT_CHECK(env != NULL);
    snprintf(env->dir, sizeof env->dir, "/tmp/gwt-%s-XXXXXX", name);
    GWT_CHECK(mkdtemp(env->dir) != NULL);
    snprintf(env->pki, sizeof env->pki, "%s/pki", env->dir);
    snprintf(env->config, sizeof env->config, "%s/gateway.conf", env->dir);
    snprintf(env->state, sizeof env->state, "%s/state", env->dir);
    snprintf(env->log_path, sizeof env->log_path, "%s/gateway.log", env->dir);
    snprintf(env->origin, sizeof env->origin, "justx.test/%s", name);
    copy_pki(env);
    env->port = free_port();
    jx_error err;
    env->gateway_key = jx_checkpoint_load_public_key(gwt_pki(env, "gateway.pem"), &err);
    if (env->gateway_key == NULL)
        gwt_fail(__FILE__, __LINE__, "gateway key: %s", err.message);
    gwt_config_write(env, options);
    current_env = env;
    return env;
}

void gwt_env_destroy(gwt_env **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    gwt_env *env = *self_p;
    if (env->pid > 0) {
        kill(env->pid, SIGTERM);
        for (int waited = 0; waited < 10000 && gwt_gateway_running(env); waited += 20)
            gwt_sleep_ms(20);
        if (env->pid > 0)
            gwt_gateway_kill(env);
    }
    EVP_PKEY_free(env->gateway_key);
    if (getenv("JX_TEST_KEEP"))
        fprintf(stderr, "test directory kept: %s\n", env->dir);
    else
        remove_tree(env->dir);
    if (current_env == env)
        current_env = NULL;
    free(env);
    *self_p = NULL;
}

/* ---- the gateway process -------------------------------------------------------------- */

size_t gwt_gateway_log_mark(gwt_env *env)
{
    struct stat st;
    return stat(env->log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

static bool line_has_all(const char *line, size_t len, const char *const *words)
{
    char buffer[4096];
    if (len >= sizeof buffer)
        len = sizeof buffer - 1;
    memcpy(buffer, line, len);
    buffer[len] = '\0';
    for (const char *const *word = words; *word; word++)
        if (strstr(buffer, *word) == NULL)
            return false;
    return true;
}

/* Calls back for each matching line; returns the count. */
static int scan_log(gwt_env *env, size_t mark, const char *const *words, char **first)
{
    size_t len;
    char *text = read_file(env->log_path, mark, &len);
    int count = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (line_has_all(line, n, words)) {
            if (count == 0 && first)
                *first = strndup(line, n);
            count++;
        }
        if (end == NULL)
            break;
        line = end + 1;
    }
    free(text);
    return count;
}

int gwt_gateway_log_count_since(gwt_env *env, size_t mark, const char *const *words)
{
    return scan_log(env, mark, words, NULL);
}

char *gwt_gateway_log_find(gwt_env *env, size_t mark, const char *const *words)
{
    char *first = NULL;
    scan_log(env, mark, words, &first);
    return first;
}

bool gwt_gateway_log_wait(gwt_env *env, size_t mark, int want, int timeout_ms,
                          const char *const *words)
{
    int64_t deadline = gwt_monotonic_ms() + timeout_ms;
    do {
        if (scan_log(env, mark, words, NULL) >= want)
            return true;
        gwt_sleep_ms(20);
    } while (gwt_monotonic_ms() < deadline);
    return scan_log(env, mark, words, NULL) >= want;
}

void gwt_gateway_log_dump(gwt_env *env)
{
    size_t len;
    char *text = read_file(env->log_path, 0, &len);
    /* The tail is what explains a failure; long logs are cut at the front. */
    const char *from = len > 60000 ? text + len - 60000 : text;
    fprintf(stderr, "---- gateway log %s (%zu bytes%s) ----\n%s---- end of gateway log ----\n",
            env->log_path, len, len > 60000 ? ", last 60000 shown" : "", from);
    free(text);
}

bool gwt_gateway_running(gwt_env *env)
{
    if (env->pid <= 0)
        return false;
    int status;
    pid_t done = waitpid(env->pid, &status, WNOHANG);
    if (done == env->pid) {
        env->pid = 0;
        return false;
    }
    return true;
}

void gwt_gateway_start(gwt_env *env)
{
    GWT_CHECK(env->pid == 0);
    size_t mark = gwt_gateway_log_mark(env);
    pid_t parent = getpid();
    pid_t pid = fork();
    GWT_CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(env->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            close(null);
        }
        signal(SIGPIPE, SIG_DFL);
        execl(JX_GATEWAY_BIN, JX_GATEWAY_BIN, "-c", env->config, (char *)NULL);
        _exit(127);
    }
    env->pid = pid;
    env->starts++;
    int64_t deadline = gwt_monotonic_ms() + 20000;
    const char *const started[] = {"event=started", NULL};
    while (gwt_monotonic_ms() < deadline) {
        if (scan_log(env, mark, started, NULL) > 0)
            return;
        if (!gwt_gateway_running(env))
            gwt_fail(__FILE__, __LINE__, "justx-gateway exited instead of starting");
        gwt_sleep_ms(10);
    }
    gwt_fail(__FILE__, __LINE__, "justx-gateway did not log event=started within 20 s");
}

void gwt_gateway_stop(gwt_env *env)
{
    GWT_CHECK(env->pid > 0);
    GWT_CHECK(kill(env->pid, SIGTERM) == 0);
    int status = 0;
    int64_t deadline = gwt_monotonic_ms() + 15000;
    for (;;) {
        pid_t done = waitpid(env->pid, &status, WNOHANG);
        if (done == env->pid)
            break;
        if (gwt_monotonic_ms() > deadline)
            gwt_fail(__FILE__, __LINE__, "justx-gateway did not stop within 15 s of SIGTERM");
        gwt_sleep_ms(10);
    }
    env->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        gwt_fail(__FILE__, __LINE__, "justx-gateway stopped with status %d (signal %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void gwt_gateway_kill(gwt_env *env)
{
    GWT_CHECK(env->pid > 0);
    kill(env->pid, SIGKILL);
    int status;
    GWT_CHECK(waitpid(env->pid, &status, 0) == env->pid);
    env->pid = 0;
}

void gwt_gateway_reload(gwt_env *env)
{
    GWT_CHECK(env->pid > 0);
    GWT_CHECK(kill(env->pid, SIGHUP) == 0);
}

/* ---- other programs ---------------------------------------------------------------------- */

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    GWT_CHECK(text != NULL);
    lseek(fd, 0, SEEK_SET);
    ssize_t n;
    while ((n = read(fd, text + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            cap *= 2;
            text = realloc(text, cap);
            GWT_CHECK(text != NULL);
        }
    }
    text[len] = '\0';
    return text;
}

static int temporary_fd(void)
{
    char path[] = "/tmp/gwt-output-XXXXXX";
    int fd = mkstemp(path);
    GWT_CHECK(fd >= 0);
    unlink(path);
    return fd;
}

int gwt_run(const char *const *argv, int timeout_ms, char **out, char **err_text)
{
    int out_fd = temporary_fd(), err_fd = temporary_fd();
    pid_t pid = fork();
    GWT_CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    int64_t deadline = gwt_monotonic_ms() + timeout_ms;
    bool timed_out = false;
    for (;;) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            break;
        if (gwt_monotonic_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            timed_out = true;
            break;
        }
        gwt_sleep_ms(10);
    }
    if (out)
        *out = slurp_fd(out_fd);
    if (err_text)
        *err_text = slurp_fd(err_fd);
    close(out_fd);
    close(err_fd);
    if (timed_out || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

json_t *gwt_gateway_status(gwt_env *env)
{
    const char *argv[] = {JX_GATEWAY_BIN, "-c", env->config, "--status", NULL};
    char *out = NULL, *err_text = NULL;
    int rc = gwt_run(argv, 10000, &out, &err_text);
    json_t *status = NULL;
    if (rc == 0) {
        json_error_t error;
        status = json_loads(out, 0, &error);
        if (status == NULL)
            fprintf(stderr, "--status printed no JSON (%s):\n%s\n", error.text, out);
    } else {
        fprintf(stderr, "--status exited %d: %s\n", rc, err_text);
    }
    free(out);
    free(err_text);
    return status;
}
