/* gateway_admin.c — the administrator's commands of the real justx-gateway.
 *
 *   check_example  --check on conf/gateway.conf (copied next to the dev PKI,
 *                  as the demo does): exit 0, agencies and route table printed
 *   check_broken   --check on copies of the example with one mistake each
 *                  (a misspelt setting, a syntax error, an unknown type in a
 *                  route, a missing key file): exit 1, and the message names
 *                  the file, the line and the problem
 *   explain        --explain for the fan-out route (both recipients, the
 *                  route and its line), and for refused messages (exit 1, why)
 *   status         --status while running: JSON with the connected adapters,
 *                  spool depth per recipient with the oldest message, totals;
 *                  and a clear failure when no gateway runs
 */
#include "gwtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef JX_SOURCE_DIR
#error "JX_SOURCE_DIR must name the source tree"
#endif

enum { WAIT_MS = 20000, TOOL_MS = 15000 };

static char *read_text(const char *path)
{
    FILE *in = fopen(path, "rb");
    GWT_CHECKF(in != NULL, "cannot read %s", path);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    GWT_CHECK(fread(text, 1, (size_t)size, in) == (size_t)size);
    text[size] = '\0';
    fclose(in);
    return text;
}

static void write_text(const char *path, const char *text)
{
    FILE *out = fopen(path, "wb");
    GWT_CHECK(out != NULL);
    GWT_CHECK(fputs(text, out) >= 0);
    GWT_CHECK(fclose(out) == 0);
}

/* Copies conf/gateway.conf into the env's directory (beside pki/) as name,
 * with the first occurrence of old replaced by new (old NULL: unchanged).
 * Returns the line the replacement starts on. */
static int example_variant(gwt_env *env, const char *name, const char *old, const char *new,
                           char path[400])
{
    char *text = read_text(JX_SOURCE_DIR "/conf/gateway.conf");
    snprintf(path, 400, "%s/%s", env->dir, name);
    int line = 0;
    if (old) {
        char *at = strstr(text, old);
        GWT_CHECKF(at != NULL,
                   "conf/gateway.conf no longer contains \"%s\"; update this test's mistakes", old);
        line = 1;
        for (const char *p = text; p < at; p++)
            line += *p == '\n';
        size_t old_len = strlen(old), new_len = strlen(new), len = strlen(text);
        char *changed = malloc(len - old_len + new_len + 1);
        size_t prefix = (size_t)(at - text);
        memcpy(changed, text, prefix);
        memcpy(changed + prefix, new, new_len);
        strcpy(changed + prefix + new_len, at + old_len);
        free(text);
        text = changed;
    }
    write_text(path, text);
    free(text);
    return line;
}

static int gateway_tool(const char *config, const char *const *extra, char **out, char **err)
{
    const char *argv[16] = {JX_GATEWAY_BIN, "-c", config};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return gwt_run(argv, TOOL_MS, out, err);
}

static void test_check_example(void)
{
    gwt_env *env = gwt_env_new("checkexample", NULL);
    char path[400];
    example_variant(env, "gateway.conf", NULL, NULL, path);
    const char *const check[] = {"--check", NULL};
    char *out = NULL, *err = NULL;
    int rc = gateway_tool(path, check, &out, &err);
    GWT_CHECKF(rc == 0, "--check on the example exited %d: %s", rc, err);
    static const char *const expected[] = {
        "KG-COURT-BISHKEK", "KG-PROSECUTOR",    "KG-PROBATION", "KG-PRISON",
        "LV-PROBATION",     "sentence-order",   "referral",     "transfer-to-latvia",
        "justx.demo/gateway", "justx.v1.SentenceOrder",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        GWT_CHECKF(strstr(out, expected[i]) != NULL, "--check output lacks %s:\n%s", expected[i],
                   out);
    free(out);
    free(err);
    gwt_env_destroy(&env);
}

static void test_check_broken(void)
{
    gwt_env *env = gwt_env_new("checkbroken", NULL);
    static const struct {
        const char *file, *old, *new, *words;
        int slack; /* lines after the mistake the parser may name too */
    } mistakes[] = {
        {"typo.conf", "max_adapters = 4;", "max_adaptors = 4;", "max_adaptors", 0},
        {"syntax.conf", "name = \"referral\";", "name \"referral\";", NULL, 1},
        {"type.conf", "type = \"justx.v1.ProbationReferral\";",
         "type = \"justx.v1.ProbationReferal\";", "justx.v1.ProbationReferal", 0},
        {"key.conf", "key = \"pki/gateway.key\";", "key = \"pki/missing.key\";", "missing.key", 0},
    };
    const char *const check[] = {"--check", NULL};
    for (size_t i = 0; i < sizeof mistakes / sizeof mistakes[0]; i++) {
        char path[400];
        int line = example_variant(env, mistakes[i].file, mistakes[i].old, mistakes[i].new, path);
        char *out = NULL, *err = NULL;
        int rc = gateway_tool(path, check, &out, &err);
        printf("  %-12s exit %d: %s", mistakes[i].file, rc, err);
        GWT_CHECKF(rc == 1, "--check on %s exited %d, expected 1", mistakes[i].file, rc);
        bool named = false;
        for (int at = line; at <= line + mistakes[i].slack && !named; at++) {
            char where[450];
            snprintf(where, sizeof where, "%s:%d", path, at);
            named = strstr(err, where) != NULL;
        }
        GWT_CHECKF(named, "--check on %s does not name %s:%d: %s", mistakes[i].file, path, line,
                   err);
        GWT_CHECKF(mistakes[i].words == NULL || strstr(err, mistakes[i].words),
                   "--check on %s does not say what is wrong (%s): %s", mistakes[i].file,
                   mistakes[i].words, err);
        GWT_CHECKF(strstr(out, "routes") == NULL, "a broken file's routes were printed: %s", out);
        free(out);
        free(err);
    }
    /* no file at all */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/absent.conf", env->dir);
    char *err = NULL;
    int rc = gateway_tool(missing, check, NULL, &err);
    GWT_CHECKF(rc == 1 && strstr(err, "absent.conf"), "--check on a missing file: %d %s", rc,
               err);
    free(err);
    gwt_env_destroy(&env);
}

static void test_explain(void)
{
    gwt_env *env = gwt_env_new("explain", NULL);
    char path[400];
    example_variant(env, "gateway.conf", NULL, NULL, path);
    char *text = read_text(path);
    /* A route's line is where its group opens. */
    const char *name = strstr(text, "name = \"sentence-order\"");
    GWT_CHECK(name != NULL);
    const char *open = name;
    while (open > text && *open != '{')
        open--;
    int route_line = 1;
    for (const char *p = text; p < open; p++)
        route_line += *p == '\n';
    free(text);

    const char *const fan_out[] = {"--explain", "--from", "KG-COURT-BISHKEK", "--type",
                                   "justx.v1.SentenceOrder", NULL};
    char *out = NULL, *err = NULL;
    int rc = gateway_tool(path, fan_out, &out, &err);
    printf("%s", out);
    GWT_CHECKF(rc == 0, "--explain of the fan-out exited %d: %s", rc, err);
    char line_ref[32];
    snprintf(line_ref, sizeof line_ref, "line %d", route_line);
    static const char *const words[] = {"KG-PROBATION", "KG-PRISON", "sentence-order",
                                        "2 recipients"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        GWT_CHECKF(strstr(out, words[i]) != NULL, "--explain does not say %s", words[i]);
    GWT_CHECKF(strstr(out, line_ref) != NULL, "--explain does not name the route's %s",
               line_ref);
    free(out);
    free(err);

    static const struct {
        const char *const argv[10];
        const char *because;
    } refused[] = {
        {{"--explain", "--from", "KG-COURT-BISHKEK", "--type", "justx.v1.StatusUpdate", NULL},
         "no route"},
        {{"--explain", "--from", "KG-COURT-BISHKEK", "--type", "justx.v1.SentenceOrder", "--to",
          "KG-PROSECUTOR", NULL},
         "may not receive"},
        {{"--explain", "--from", "KG-PRISON", "--type", "justx.v1.SentenceOrder", NULL},
         "may not send"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        rc = gateway_tool(path, refused[i].argv, &out, &err);
        GWT_CHECKF(rc == 1, "--explain of a refused message exited %d", rc);
        GWT_CHECKF(strstr(out, "NOT_PERMITTED") && strstr(out, refused[i].because),
                   "--explain does not say NOT_PERMITTED, %s:\n%s%s", refused[i].because, out,
                   err);
        free(out);
        free(err);
    }
    gwt_env_destroy(&env);
}

static json_t *find_by(json_t *array, const char *key, const char *value)
{
    for (size_t i = 0; i < json_array_size(array); i++) {
        json_t *item = json_array_get(array, i);
        const char *text = json_string_value(json_object_get(item, key));
        if (text && strcmp(text, value) == 0)
            return item;
    }
    return NULL;
}

static void test_status(void)
{
    gwt_env *env = gwt_env_new("status", NULL);
    /* not running: a clear failure, not a hang */
    const char *const status_argv[] = {"--status", NULL};
    char *err = NULL;
    int rc = gateway_tool(env->config, status_argv, NULL, &err);
    GWT_CHECKF(rc == 1 && strstr(err, "running"), "--status without a gateway: %d %s", rc, err);
    free(err);

    gwt_gateway_start(env);
    /* The control socket answers anyone who can reach it: its directory
     * must be the gateway user's alone. */
    char run[400];
    snprintf(run, sizeof run, "%s/run", env->state);
    struct stat st;
    GWT_CHECK(stat(run, &st) == 0);
    GWT_CHECKF((st.st_mode & 077) == 0, "%s has mode %o; the control socket must be private", run,
               (unsigned)(st.st_mode & 0777));
    jx_adapter *court = gwt_adapter_new(env, "KG-COURT-BISHKEK", NULL, NULL);
    jx_adapter *probation = gwt_adapter_new(env, "KG-PROBATION", NULL, NULL);
    uint8_t *payload;
    size_t len;
    gwt_payload("justx.v1.SentenceOrder", "UD-9/26", 512, &payload, &len);
    jx_seal_params params = {.type = "justx.v1.SentenceOrder", .case_id = "UD-9/26"};
    char id[JX_MESSAGE_ID_MAX];
    jx_error error;
    int64_t before = jx_now_ms();
    GWT_CHECK(jx_adapter_send(court, &params, payload, len, id, &error) == 0);
    free(payload);
    /* probation takes it; the prison is offline, so it waits in the spool */
    GWT_CHECK(jx_adapter_wait_receipt(court, id, "DELIVERED", "KG-PROBATION", WAIT_MS, &error) ==
              1);

    json_t *status = gwt_gateway_status(env);
    GWT_CHECK(status != NULL);
    char *text = json_dumps(status, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
    GWT_CHECK(strcmp(json_string_value(json_object_get(status, "gateway")), env->origin) == 0);
    GWT_CHECK(json_integer_value(json_object_get(status, "port")) == env->port);
    json_t *adapters = json_object_get(status, "adapters");
    json_t *court_row = find_by(adapters, "agency", "KG-COURT-BISHKEK");
    json_t *probation_row = find_by(adapters, "agency", "KG-PROBATION");
    GWT_CHECKF(court_row && probation_row, "--status does not list both connected adapters");
    GWT_CHECK(strncmp(json_string_value(json_object_get(court_row, "routingId")),
                      "KG-COURT-BISHKEK/", 17) == 0);
    GWT_CHECK(json_is_true(json_object_get(probation_row, "receivesDeliveries")));
    GWT_CHECK(find_by(adapters, "agency", "KG-PRISON") == NULL);
    json_t *spool = json_object_get(status, "spool");
    json_t *prison = find_by(spool, "recipient", "KG-PRISON");
    GWT_CHECKF(prison != NULL, "--status shows no spool depth for the offline prison");
    GWT_CHECK(json_integer_value(json_object_get(prison, "pending")) == 1);
    json_int_t oldest = json_integer_value(json_object_get(prison, "oldestAcceptedAtMs"));
    GWT_CHECK(oldest >= before - 1000 && oldest <= jx_now_ms());
    json_t *done = find_by(spool, "recipient", "KG-PROBATION");
    GWT_CHECK(done == NULL || json_integer_value(json_object_get(done, "pending")) == 0);
    json_t *totals = json_object_get(status, "totals");
    GWT_CHECK(json_integer_value(json_object_get(totals, "accepted")) == 1);
    GWT_CHECK(json_integer_value(json_object_get(totals, "acknowledged")) == 1);
    GWT_CHECK(json_is_array(json_object_get(status, "certificatesExpiringWithin30Days")));
    GWT_CHECK(json_integer_value(json_object_get(json_object_get(status, "journal"), "records")) >=
              3);
    json_decref(status);

    jx_adapter_destroy(&court);
    jx_adapter_destroy(&probation);
    gwt_gateway_stop(env);
    gwt_env_destroy(&env);
}

int main(int argc, char **argv)
{
    static const gwt_test tests[] = {
        {"check_example", test_check_example, NULL},
        {"check_broken", test_check_broken, NULL},
        {"explain", test_explain, NULL},
        {"status", test_status, NULL},
    };
    return gwt_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
