/* test_config_reader.c — the libconfig walk both loaders share
 * (proto/config_reader.c).
 *
 * Each case writes a small configuration to a fresh directory under the
 * build tree, parses it with libconfig and reads it through a reader, then
 * checks the value, or the code and the whole sentence with the file and
 * line: unknown names (suggestion, wrong group, the names known), wrong
 * types, text rules, integer ranges, paths relative to the file's directory
 * and the suggestion distance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config_reader.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const root_names[] = {"server", "client", NULL};
static const char *const server_names[] = {"listen", "certificate", "anchors", "workers", NULL};
static const char *const client_names[] = {"retry_ms", "name", NULL};
static const jx_config_reader_group groups[] = {
    {"the top level", root_names},
    {"server", server_names},
    {"client", client_names},
};

/* One parsed file and its reader. */
typedef struct {
    char dir[PATH_MAX]; /* as realpath gives it */
    char path[PATH_MAX];
    config_t parsed;
    jx_config_reader *reader;
    jx_error err;
} fixture;

static int n_fixtures;

/* Writes text to a fresh directory's test.conf, parses it and makes a
 * reader for it. */
static fixture *load(const char *text)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char dir[PATH_MAX / 2];
    snprintf(dir, sizeof dir, "%s/test-config-reader-scratch", JX_BINARY_DIR);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/test-config-reader-scratch/%ld-%d", JX_BINARY_DIR, (long)getpid(),
             n_fixtures++);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_non_null(realpath(dir, f->dir));
    snprintf(f->path, sizeof f->path, "%s/test.conf", dir);
    FILE *file = fopen(f->path, "w");
    assert_non_null(file);
    assert_true(fputs(text, file) >= 0);
    assert_int_equal(fclose(file), 0);
    config_init(&f->parsed);
    assert_int_equal(config_read_file(&f->parsed, f->path), CONFIG_TRUE);
    f->reader = jx_config_reader_new(f->path, groups, sizeof groups / sizeof groups[0], &f->err);
    assert_non_null(f->reader);
    return f;
}

static void unload(fixture **f_p)
{
    fixture *f = *f_p;
    jx_config_reader_destroy(&f->reader);
    assert_null(f->reader);
    jx_config_reader_destroy(&f->reader); /* safe twice */
    config_destroy(&f->parsed);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    *f_p = NULL;
}

static config_setting_t *root(fixture *f)
{
    return config_root_setting(&f->parsed);
}

static config_setting_t *server(fixture *f)
{
    config_setting_t *group = config_setting_get_member(root(f), "server");
    assert_non_null(group);
    return group;
}

/* The error is JX_ERR_CONFIG with exactly "<file>:<line>: <problem>". */
static void assert_problem(const fixture *f, int line, const char *problem)
{
    char want[JX_ERROR_MESSAGE_MAX + PATH_MAX];
    if (line > 0)
        snprintf(want, sizeof want, "%s:%d: %s", f->path, line, problem);
    else
        snprintf(want, sizeof want, "%s: %s", f->path, problem);
    assert_int_equal(f->err.code, JX_ERR_CONFIG);
    assert_string_equal(f->err.message, want);
}

static int check_server(fixture *f)
{
    return jx_config_reader_check_members(f->reader, server(f), "server", server_names);
}

static void unknown_setting_suggests_the_closest_name(void **state)
{
    (void)state;
    fixture *f = load("server: {\n  listen = \"x\";\n  certificat = \"c.pem\";\n};\n");
    assert_int_equal(check_server(f), -1);
    assert_problem(f, 3, "unknown setting 'certificat' in server (did you mean 'certificate'?)");
    unload(&f);

    /* A swap of neighbours is one edit. */
    f = load("server: {\n  lsiten = \"x\";\n};\n");
    assert_int_equal(check_server(f), -1);
    assert_problem(f, 2, "unknown setting 'lsiten' in server (did you mean 'listen'?)");
    unload(&f);
}

static void unknown_setting_names_its_group_or_the_known_names(void **state)
{
    (void)state;
    fixture *f = load("server: {\n  listen = \"x\";\n\n  retry_ms = 5;\n};\n");
    assert_int_equal(check_server(f), -1);
    assert_problem(f, 4, "unknown setting 'retry_ms' in server (it belongs in client)");
    unload(&f);

    f = load("server: { listen = \"x\"; };\nfrobnicate = 1;\n");
    assert_int_equal(
        jx_config_reader_check_members(f->reader, root(f), "the top level", root_names), -1);
    assert_problem(
        f, 2, "unknown setting 'frobnicate' in the top level (known settings: server, client)");
    unload(&f);

    f = load("server: { listen = \"x\"; workers = 2; };\n");
    assert_int_equal(check_server(f), 0);
    unload(&f);
}

static void wrong_type_sentences(void **state)
{
    (void)state;
    fixture *f = load("server: {\n  listen = 7443;\n  workers = 2.5;\n  anchors = \"ca.pem\";\n};\n"
                      "client = 5;\n");
    char *text = NULL;
    assert_int_equal(
        jx_config_reader_get_string(f->reader, server(f), "server", "listen", true, &text, NULL),
        -1);
    assert_null(text);
    assert_problem(f, 2, "'listen' in server must be a string (in double quotes), not an integer");

    int64_t workers = 0;
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, server(f), "server", "workers", 4, 1, 64, &workers),
        -1);
    assert_problem(f, 3, "'workers' in server must be an integer, not a floating-point number");

    char **list = NULL;
    size_t n = 0;
    assert_int_equal(jx_config_reader_get_string_list(f->reader, server(f), "server", "anchors",
                                                      true, &list, &n, NULL),
                     -1);
    assert_problem(f, 4,
                   "'anchors' in server must be a list of strings, e.g. [ \"a\", \"b\" ], not a "
                   "string");

    config_setting_t *client = NULL;
    assert_int_equal(
        jx_config_reader_get_group(f->reader, root(f), "the top level", "client", false, &client),
        -1);
    assert_problem(f, 6, "'client' in the top level must be a group { ... }, not an integer");
    unload(&f);
}

static void missing_and_optional_settings(void **state)
{
    (void)state;
    fixture *f = load("\nserver: {\n  workers = 3;\n};\n");
    char *text = NULL;
    const config_setting_t *found = server(f);
    assert_int_equal(
        jx_config_reader_get_string(f->reader, server(f), "server", "listen", false, &text, &found),
        0);
    assert_null(text);
    assert_null(found);
    assert_int_equal(
        jx_config_reader_get_string(f->reader, server(f), "server", "listen", true, &text, NULL),
        -1);
    assert_problem(f, 2, "missing required setting 'listen' in server");

    config_setting_t *client = root(f);
    assert_int_equal(
        jx_config_reader_get_group(f->reader, root(f), "the top level", "client", false, &client),
        0);
    assert_null(client);
    assert_int_equal(
        jx_config_reader_get_group(f->reader, root(f), "the top level", "client", true, &client),
        -1);
    /* The root has no line of its own. */
    assert_problem(f, 0, "missing required group 'client' in the top level");
    unload(&f);
}

static void text_must_be_one_printable_line(void **state)
{
    (void)state;
    char long_text[1100 + 64];
    snprintf(long_text, sizeof long_text, "server: {\n  listen = \"%01100d\";\n};\n", 0);
    fixture *f = load(long_text);
    char *text = NULL;
    assert_int_equal(
        jx_config_reader_get_string(f->reader, server(f), "server", "listen", true, &text, NULL),
        -1);
    assert_problem(f, 2, "'listen' in server is longer than 1024 characters");
    unload(&f);

    f = load("server: {\n  listen = \"\";\n  certificate = \"a\\tb\";\n};\n");
    assert_int_equal(
        jx_config_reader_get_string(f->reader, server(f), "server", "listen", true, &text, NULL),
        -1);
    assert_problem(f, 2, "'listen' in server must not be empty");
    assert_int_equal(jx_config_reader_get_string(f->reader, server(f), "server", "certificate",
                                                 true, &text, NULL),
                     -1);
    assert_problem(f, 3, "'certificate' in server contains a control character");
    unload(&f);
}

static void integer_range_and_fallback(void **state)
{
    (void)state;
    fixture *f = load("server: {\n  workers = 64;\n};\nclient: {\n  retry_ms = 0;\n};\n");
    config_setting_t *client = config_setting_get_member(root(f), "client");
    int64_t value = 0;
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, server(f), "server", "workers", 4, 1, 64, &value),
        0);
    assert_int_equal(value, 64); /* max is inclusive */
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, server(f), "server", "workers", 4, 1, 63, &value),
        -1);
    assert_problem(f, 2, "'workers' in server is 64; it must be between 1 and 63");
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, client, "client", "retry_ms", 10, 0, 1000, &value),
        0);
    assert_int_equal(value, 0); /* min is inclusive, and 0 is not "absent" */
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, client, "client", "retry_ms", 10, 1, 1000, &value),
        -1);
    assert_problem(f, 5, "'retry_ms' in client is 0; it must be between 1 and 1000");

    /* Absent setting, absent group: the fallback, unchecked. */
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, client, "client", "timeout", 99, 1, 10, &value), 0);
    assert_int_equal(value, 99);
    value = 0;
    assert_int_equal(
        jx_config_reader_get_integer(f->reader, NULL, "client", "retry_ms", 7, 1, 10, &value), 0);
    assert_int_equal(value, 7);

    const config_setting_t *found = NULL;
    value = -1;
    assert_int_equal(
        jx_config_reader_find_integer(f->reader, server(f), "server", "workers", &found, &value),
        0);
    assert_non_null(found);
    assert_int_equal(value, 64);
    assert_int_equal(
        jx_config_reader_find_integer(f->reader, server(f), "server", "listen", &found, &value), 0);
    assert_null(found);
    assert_int_equal(value, 64); /* untouched */
    unload(&f);
}

static void paths_are_relative_to_the_file(void **state)
{
    (void)state;
    fixture *f = load("server: {\n  certificate = \"pki/gw.pem\";\n  listen = \"./here\";\n"
                      "  workers = \".\";\n  anchors = [ \"/etc/ca.pem\", \"./a/../ca.pem\" ];\n"
                      "};\n");
    /* The reader resolves against the file's directory, not the working
     * directory: run from elsewhere. */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    assert_string_equal(jx_config_reader_directory(f->reader), f->dir);

    char want[PATH_MAX + 64];
    char *path = NULL;
    int line = -1;
    assert_int_equal(jx_config_reader_get_path(f->reader, server(f), "server", "certificate", true,
                                               &path, &line),
                     0);
    snprintf(want, sizeof want, "%s/pki/gw.pem", f->dir);
    assert_string_equal(path, want);
    assert_int_equal(line, 2);
    free(path);

    assert_int_equal(
        jx_config_reader_get_path(f->reader, server(f), "server", "listen", true, &path, NULL), 0);
    snprintf(want, sizeof want, "%s/here", f->dir);
    assert_string_equal(path, want);
    free(path);

    assert_int_equal(
        jx_config_reader_get_path(f->reader, server(f), "server", "workers", true, &path, NULL), 0);
    assert_string_equal(path, f->dir);
    free(path);

    path = NULL;
    line = -1;
    assert_int_equal(
        jx_config_reader_get_path(f->reader, server(f), "server", "key", false, &path, &line), 0);
    assert_null(path);
    assert_int_equal(line, 0);

    char **list = NULL;
    size_t n = 0;
    assert_int_equal(jx_config_reader_get_path_list(f->reader, server(f), "server", "anchors", true,
                                                    &list, &n, &line),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(line, 5);
    assert_string_equal(list[0], "/etc/ca.pem");
    snprintf(want, sizeof want, "%s/a/../ca.pem", f->dir);
    assert_string_equal(list[1], want);
    assert_null(list[2]);
    jx_config_reader_free_list(list, n);
    assert_int_equal(chdir(cwd), 0);
    unload(&f);
}

static void lists_required_optional_and_elements(void **state)
{
    (void)state;
    fixture *f = load("server: {\n  anchors = [ ];\n};\nclient: {\n  name = ( \"a\", 2 );\n};\n");
    config_setting_t *client = config_setting_get_member(root(f), "client");
    char **list = NULL;
    size_t n = 5;
    assert_int_equal(jx_config_reader_get_path_list(f->reader, server(f), "server", "anchors",
                                                    false, &list, &n, NULL),
                     0);
    assert_int_equal(n, 0);
    jx_config_reader_free_list(list, n);
    assert_int_equal(jx_config_reader_get_path_list(f->reader, server(f), "server", "anchors", true,
                                                    &list, &n, NULL),
                     -1);
    assert_problem(f, 2, "'anchors' in server must not be empty");
    assert_int_equal(jx_config_reader_get_string_list(f->reader, client, "client", "name", false,
                                                      &list, &n, NULL),
                     -1);
    assert_null(list);
    assert_problem(f, 5, "element 2 of 'name' in client must be a string, not an integer");
    assert_int_equal(jx_config_reader_get_string_list(f->reader, client, "client", "other", false,
                                                      &list, &n, NULL),
                     0);
    assert_null(list);
    assert_int_equal(n, 0);
    unload(&f);
}

static void suggestions_stay_close(void **state)
{
    (void)state;
    assert_int_equal(jx_config_reader_edit_distance("send", "send"), 0);
    assert_int_equal(jx_config_reader_edit_distance("sned", "send"), 1);
    assert_int_equal(jx_config_reader_edit_distance("", "abc"), 3);
    assert_int_equal(jx_config_reader_edit_distance("kitten", "sitting"), 3);
    char long_name[80];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(jx_config_reader_edit_distance(long_name, long_name), SIZE_MAX);

    const char *names[] = {"id", "name", "receive", "max_adapters"};
    assert_string_equal(jx_config_reader_closest("nmae", names, 4), "name");
    assert_null(jx_config_reader_closest("xy", names, 4)); /* 2 edits: too far for 2 letters */
    assert_string_equal(jx_config_reader_closest("recieve", names, 4), "receive");
    assert_string_equal(jx_config_reader_closest("max_adaptors", names, 4), "max_adapters");
    assert_null(jx_config_reader_closest("anything", names, 0));
}

static void reader_needs_the_directory(void **state)
{
    (void)state;
    jx_error err = {0};
    jx_config_reader *reader =
        jx_config_reader_new("/nonexistent-justx-dir/x.conf", groups, 3, &err);
    assert_null(reader);
    assert_int_equal(err.code, JX_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent-justx-dir/x.conf: cannot resolve the "
                                        "file's directory"));

    /* A bare name is in the working directory. */
    reader = jx_config_reader_new("bare.conf", groups, 3, &err);
    assert_non_null(reader);
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_string_equal(jx_config_reader_directory(reader), cwd);
    assert_int_equal(jx_config_reader_fail_line(reader, 0, "no line %d", 1), -1);
    assert_string_equal(err.message, "bare.conf: no line 1");
    assert_int_equal(jx_config_reader_fail_line(reader, 12, "line"), -1);
    assert_string_equal(err.message, "bare.conf:12: line");
    jx_config_reader_destroy(&reader);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_setting_suggests_the_closest_name),
        cmocka_unit_test(unknown_setting_names_its_group_or_the_known_names),
        cmocka_unit_test(wrong_type_sentences),
        cmocka_unit_test(missing_and_optional_settings),
        cmocka_unit_test(text_must_be_one_printable_line),
        cmocka_unit_test(integer_range_and_fallback),
        cmocka_unit_test(paths_are_relative_to_the_file),
        cmocka_unit_test(lists_required_optional_and_elements),
        cmocka_unit_test(suggestions_stay_close),
        cmocka_unit_test(reader_needs_the_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
