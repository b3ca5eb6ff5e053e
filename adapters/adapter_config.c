/* adapter_config.c — loads and validates an agency adapter's libconfig file.
 *
 * The walk mirrors gateway/config.c: each group is checked for unknown names
 * before its settings are read, so a typo is reported as a typo (with a
 * suggestion) and not as the missing setting it hides; the first problem
 * stops the load and names the file and line. Paths are made absolute
 * against the file's directory.
 */
#include "adapter_config.h"

#include <libconfig.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An adapter configuration is a few hundred bytes; a wrong path (a journal
 * segment, /dev/zero) must fail fast. */
enum { CONF_FILE_MAX = 1024 * 1024 };

static const char *const root_names[] = {"adapter", NULL};
static const char *const adapter_names[] = {"agency_cert",
                                            "agency_key",
                                            "ca",
                                            "crls",
                                            "state_dir",
                                            "gateway",
                                            "gateway_name",
                                            "gateway_cert",
                                            "gateway_origin",
                                            "ack_delay_ms",
                                            "dropbox",
                                            "http",
                                            NULL};
static const char *const dropbox_names[] = {"dir", "poll_ms", NULL};
static const char *const http_names[] = {"listen", "max_body_bytes", NULL};

static const struct {
    const char *group;
    const char *const *names;
} all_groups[] = {
    {"the top level", root_names},
    {"adapter", adapter_names},
    {"adapter.dropbox", dropbox_names},
    {"adapter.http", http_names},
};

typedef struct {
    const char *path;
    char *dir; /* absolute directory of the file */
    jx_error *err;
} loader;

static int fail_at(loader *l, const config_setting_t *setting, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(loader *l, const config_setting_t *setting, const char *format, ...)
{
    char problem[JX_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(problem, sizeof problem, format, args);
    va_end(args);
    int line = setting ? (int)config_setting_source_line(setting) : 0;
    if (line > 0)
        return jx_error_set(l->err, JX_ERR_CONFIG, "%s:%d: %s", l->path, line, problem);
    return jx_error_set(l->err, JX_ERR_CONFIG, "%s: %s", l->path, problem);
}

static int out_of_memory(loader *l)
{
    return jx_error_set(l->err, JX_ERR_SYSTEM, "%s: out of memory while loading the configuration",
                        l->path);
}

static const char *type_words(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:
        return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a floating-point number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    case CONFIG_TYPE_LIST:
        return "a list ( ... )";
    default:
        return "an unknown kind of value";
    }
}

/* Edit distance with adjacent swaps counted as one edit; names are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t before[64] = {0}, previous[64], row[64];
    for (size_t j = 0; j <= lb; j++)
        previous[j] = j;
    for (size_t i = 1; i <= la; i++) {
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (previous[j] + 1 < best)
                best = previous[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < best)
                best = before[j - 2] + 1;
            row[j] = best;
        }
        memcpy(before, previous, sizeof before);
        memcpy(previous, row, sizeof previous);
    }
    return previous[lb];
}

static int check_members(loader *l, const config_setting_t *group, const char *where,
                         const char *const *names)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *member = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(member);
        if (name == NULL)
            continue;
        bool known = false;
        for (const char *const *k = names; *k; k++)
            known = known || strcmp(*k, name) == 0;
        if (known)
            continue;
        const char *suggestion = NULL;
        size_t best = SIZE_MAX, limit = strlen(name) <= 4 ? 1 : (strlen(name) <= 8 ? 2 : 3);
        for (const char *const *k = names; *k; k++) {
            size_t d = edit_distance(name, *k);
            if (d < best) {
                best = d;
                suggestion = *k;
            }
        }
        if (best <= limit)
            return fail_at(l, member, "unknown setting '%s' in %s (did you mean '%s'?)", name,
                           where, suggestion);
        for (size_t g = 0; g < sizeof all_groups / sizeof all_groups[0]; g++)
            for (const char *const *k = all_groups[g].names; *k; k++)
                if (strcmp(*k, name) == 0 && all_groups[g].names != names)
                    return fail_at(l, member, "unknown setting '%s' in %s (it belongs in %s)", name,
                                   where, all_groups[g].group);
        char known_list[300] = "";
        for (const char *const *k = names; *k; k++) {
            if (k != names)
                strncat(known_list, ", ", sizeof known_list - strlen(known_list) - 1);
            strncat(known_list, *k, sizeof known_list - strlen(known_list) - 1);
        }
        return fail_at(l, member, "unknown setting '%s' in %s (known settings: %s)", name, where,
                       known_list);
    }
    return 0;
}

static int get_group(loader *l, const config_setting_t *parent, const char *where, const char *name,
                     bool required, config_setting_t **out)
{
    *out = config_setting_get_member(parent, name);
    if (*out == NULL)
        return required ? fail_at(l, parent, "missing required group '%s' in %s", name, where) : 0;
    if (config_setting_type(*out) != CONFIG_TYPE_GROUP)
        return fail_at(l, *out, "'%s' in %s must be a group { ... }, not %s", name, where,
                       type_words(config_setting_type(*out)));
    return 0;
}

static int check_text(loader *l, const config_setting_t *setting, const char *name,
                      const char *where, const char *text)
{
    if (text[0] == '\0')
        return fail_at(l, setting, "'%s' in %s must not be empty", name, where);
    if (strlen(text) > 1024)
        return fail_at(l, setting, "'%s' in %s is longer than 1024 characters", name, where);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return fail_at(l, setting, "'%s' in %s contains a control character", name, where);
    return 0;
}

/* A string setting; *out stays NULL when optional and absent. */
static int get_string(loader *l, const config_setting_t *group, const char *where, const char *name,
                      bool required, char **out, const config_setting_t **found)
{
    const config_setting_t *setting = config_setting_get_member(group, name);
    if (found)
        *found = setting;
    if (setting == NULL)
        return required ? fail_at(l, group, "missing required setting '%s' in %s", name, where) : 0;
    if (config_setting_type(setting) != CONFIG_TYPE_STRING)
        return fail_at(l, setting, "'%s' in %s must be a string (in double quotes), not %s", name,
                       where, type_words(config_setting_type(setting)));
    const char *text = config_setting_get_string(setting);
    if (check_text(l, setting, name, where, text) < 0)
        return -1;
    *out = strdup(text);
    return *out ? 0 : out_of_memory(l);
}

static char *resolve_path(loader *l, const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if (strcmp(path, ".") == 0 || path[0] == '\0')
        return strdup(l->dir);
    size_t size = strlen(l->dir) + 1 + strlen(path) + 1;
    char *joined = malloc(size);
    if (joined)
        snprintf(joined, size, "%s/%s", l->dir, path);
    return joined;
}

static int get_path(loader *l, const config_setting_t *group, const char *where, const char *name,
                    bool required, char **out)
{
    char *raw = NULL;
    if (get_string(l, group, where, name, required, &raw, NULL) < 0)
        return -1;
    if (raw == NULL)
        return 0;
    *out = resolve_path(l, raw);
    free(raw);
    return *out ? 0 : out_of_memory(l);
}

static int get_integer(loader *l, const config_setting_t *group, const char *where,
                       const char *name, long long fallback, long long min, long long max,
                       long long *out)
{
    *out = fallback;
    if (group == NULL)
        return 0;
    const config_setting_t *setting = config_setting_get_member(group, name);
    if (setting == NULL)
        return 0;
    int type = config_setting_type(setting);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return fail_at(l, setting, "'%s' in %s must be an integer, not %s", name, where,
                       type_words(type));
    long long value = config_setting_get_int64(setting);
    if (value < min || value > max)
        return fail_at(l, setting, "'%s' in %s is %lld; it must be between %lld and %lld", name,
                       where, value, min, max);
    *out = value;
    return 0;
}

static int get_path_list(loader *l, const config_setting_t *group, const char *where,
                         const char *name, char ***out, size_t *n_out)
{
    const config_setting_t *setting = config_setting_get_member(group, name);
    *out = NULL;
    *n_out = 0;
    if (setting == NULL)
        return 0;
    int type = config_setting_type(setting);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return fail_at(l, setting,
                       "'%s' in %s must be an array of strings [ \"...\", ... ], not %s", name,
                       where, type_words(type));
    int n = config_setting_length(setting);
    if (n == 0)
        return 0;
    char **list = calloc((size_t)n, sizeof *list);
    if (list == NULL)
        return out_of_memory(l);
    *out = list;
    for (int i = 0; i < n; i++) {
        const config_setting_t *element = config_setting_get_elem(setting, (unsigned)i);
        if (config_setting_type(element) != CONFIG_TYPE_STRING)
            return fail_at(l, element, "element %d of '%s' in %s must be a string, not %s", i + 1,
                           name, where, type_words(config_setting_type(element)));
        const char *text = config_setting_get_string(element);
        if (check_text(l, element, name, where, text) < 0)
            return -1;
        list[i] = resolve_path(l, text);
        if (list[i] == NULL)
            return out_of_memory(l);
        *n_out = (size_t)i + 1;
    }
    return 0;
}

/* "host:port" with a port 1-65535; IPv6 hosts in brackets. */
static bool is_host_port(const char *text)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0')
        return false;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

int jx_adapter_conf_parse_loopback(const char *text, struct sockaddr_storage *address,
                                   socklen_t *address_len, jx_error *err)
{
    memset(address, 0, sizeof *address);
    const char *colon = text ? strrchr(text, ':') : NULL;
    if (colon == NULL || colon[1] == '\0')
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "\"%s\" is not host:port (e.g. \"127.0.0.1:8480\")", text ? text : "");
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 0 || port > 65535)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "\"%s\" has no valid port (0-65535)",
                            text);
    size_t host_len = (size_t)(colon - text);
    char host[64];
    if (host_len >= sizeof host)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "the host in \"%s\" is too long", text);
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        /* 127.0.0.0/8 is loopback; anything else could face a network. */
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "%s is not a loopback address; the HTTP API listens only on "
                                "127.0.0.0/8 or [::1]",
                                host);
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *address_len = sizeof *v4;
        return 0;
    }
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1) {
            if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
                return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                    "[%s] is not a loopback address; the HTTP API listens only "
                                    "on 127.0.0.0/8 or [::1]",
                                    host + 1);
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)port);
            *address_len = sizeof *v6;
            return 0;
        }
    }
    return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                        "\"%s\" is not a loopback IP address (127.0.0.1, [::1] or localhost)",
                        host);
}

static int parse_adapter(loader *l, const config_setting_t *root, jx_adapter_conf *conf)
{
    config_setting_t *adapter = NULL, *dropbox = NULL, *http = NULL;
    const char *where = "adapter";
    if (get_group(l, root, "the top level", "adapter", true, &adapter) < 0 ||
        check_members(l, adapter, where, adapter_names) < 0)
        return -1;
    const config_setting_t *gateway_setting = NULL;
    long long ack_delay = 0;
    if (get_path(l, adapter, where, "agency_cert", true, &conf->agency_cert) < 0 ||
        get_path(l, adapter, where, "agency_key", true, &conf->agency_key) < 0 ||
        get_path(l, adapter, where, "ca", true, &conf->ca) < 0 ||
        get_path_list(l, adapter, where, "crls", &conf->crls, &conf->n_crls) < 0 ||
        get_path(l, adapter, where, "state_dir", true, &conf->state_dir) < 0 ||
        get_string(l, adapter, where, "gateway", true, &conf->gateway, &gateway_setting) < 0)
        return -1;
    if (!is_host_port(conf->gateway))
        return fail_at(l, gateway_setting,
                       "'gateway' in adapter must be \"host:port\" with a port 1-65535, not "
                       "\"%s\"",
                       conf->gateway);
    if (get_string(l, adapter, where, "gateway_name", false, &conf->gateway_name, NULL) < 0 ||
        get_path(l, adapter, where, "gateway_cert", true, &conf->gateway_cert) < 0 ||
        get_string(l, adapter, where, "gateway_origin", true, &conf->gateway_origin, NULL) < 0 ||
        get_integer(l, adapter, where, "ack_delay_ms", 0, 0, 10000, &ack_delay) < 0)
        return -1;
    conf->ack_delay_ms = (int)ack_delay;

    if (get_group(l, adapter, where, "dropbox", false, &dropbox) < 0)
        return -1;
    long long poll_ms = JX_ADAPTER_CONF_POLL_MS_DEFAULT;
    if (dropbox) {
        if (check_members(l, dropbox, "adapter.dropbox", dropbox_names) < 0 ||
            get_path(l, dropbox, "adapter.dropbox", "dir", true, &conf->dropbox_dir) < 0 ||
            get_integer(l, dropbox, "adapter.dropbox", "poll_ms", JX_ADAPTER_CONF_POLL_MS_DEFAULT,
                        10, 60000, &poll_ms) < 0)
            return -1;
    }
    conf->dropbox_poll_ms = (int)poll_ms;

    if (get_group(l, adapter, where, "http", false, &http) < 0)
        return -1;
    long long body_max = JX_ADAPTER_CONF_HTTP_BODY_DEFAULT;
    if (http) {
        const config_setting_t *listen_setting = NULL;
        if (check_members(l, http, "adapter.http", http_names) < 0 ||
            get_string(l, http, "adapter.http", "listen", true, &conf->http_listen,
                       &listen_setting) < 0 ||
            get_integer(l, http, "adapter.http", "max_body_bytes",
                        JX_ADAPTER_CONF_HTTP_BODY_DEFAULT, 1024, 64 * 1024 * 1024, &body_max) < 0)
            return -1;
        struct sockaddr_storage address;
        socklen_t address_len;
        jx_error problem;
        if (jx_adapter_conf_parse_loopback(conf->http_listen, &address, &address_len, &problem) < 0)
            return fail_at(l, listen_setting, "'listen' in adapter.http: %s", problem.message);
    }
    conf->http_max_body_bytes = (size_t)body_max;
    return 0;
}

static char *directory_of(loader *l)
{
    char *copy = strdup(l->path);
    if (copy == NULL) {
        out_of_memory(l);
        return NULL;
    }
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    char *absolute = realpath(dir, NULL);
    if (absolute == NULL)
        jx_error_set(l->err, JX_ERR_IO, "%s: cannot resolve the file's directory: %s", l->path,
                     strerror(errno));
    free(copy);
    return absolute;
}

jx_adapter_conf *jx_adapter_conf_load(const char *path, jx_error *err)
{
    if (path == NULL || path[0] == '\0') {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no configuration file named");
        return NULL;
    }
    loader l = {.path = path, .err = err};
    config_t parsed;
    config_init(&parsed);
    jx_adapter_conf *conf = calloc(1, sizeof *conf);
    if (conf == NULL || (conf->path = strdup(path)) == NULL) {
        out_of_memory(&l);
        goto failed;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        jx_error_set(err, JX_ERR_IO, "%s: cannot open the configuration file: %s", path,
                     strerror(errno));
        goto failed;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONF_FILE_MAX) {
        jx_error_set(err, JX_ERR_CONFIG, "%s: not a regular file of at most 1 MiB", path);
        goto failed;
    }
    if ((l.dir = directory_of(&l)) == NULL)
        goto failed;
    config_set_include_dir(&parsed, l.dir);
    if (config_read_file(&parsed, path) != CONFIG_TRUE) {
        const char *problem = config_error_text(&parsed);
        if (config_error_type(&parsed) == CONFIG_ERR_FILE_IO)
            jx_error_set(err, JX_ERR_IO, "%s: cannot read the configuration file", path);
        else
            jx_error_set(err, JX_ERR_CONFIG, "%s:%d: %s", path, config_error_line(&parsed),
                         problem ? problem : "syntax error");
        goto failed;
    }
    const config_setting_t *root = config_root_setting(&parsed);
    if (check_members(&l, root, "the top level", root_names) < 0 ||
        parse_adapter(&l, root, conf) < 0)
        goto failed;
    free(l.dir);
    config_destroy(&parsed);
    return conf;
failed:
    free(l.dir);
    config_destroy(&parsed);
    jx_adapter_conf_destroy(&conf);
    return NULL;
}

void jx_adapter_conf_destroy(jx_adapter_conf **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_adapter_conf *self = *self_p;
    free(self->path);
    free(self->agency_cert);
    free(self->agency_key);
    free(self->ca);
    for (size_t i = 0; i < self->n_crls; i++)
        free(self->crls[i]);
    free(self->crls);
    free(self->state_dir);
    free(self->gateway);
    free(self->gateway_name);
    free(self->gateway_cert);
    free(self->gateway_origin);
    free(self->dropbox_dir);
    free(self->http_listen);
    free(self);
    *self_p = NULL;
}

void jx_adapter_conf_fill(const jx_adapter_conf *conf, jx_adapter_config *config)
{
    memset(config, 0, sizeof *config);
    config->state_dir = conf->state_dir;
    config->gateway = conf->gateway;
    config->gateway_name = conf->gateway_name;
    config->gateway_cert = conf->gateway_cert;
    config->gateway_origin = conf->gateway_origin;
    config->ca_file = conf->ca;
    config->crl_files = (const char *const *)conf->crls;
    config->n_crl_files = conf->n_crls;
    config->cert_file = conf->agency_cert;
    config->key_file = conf->agency_key;
    config->ack_delay_ms = conf->ack_delay_ms;
}
