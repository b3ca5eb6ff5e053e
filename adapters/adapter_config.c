/* adapter_config.c — loads and validates an agency adapter's libconfig file.
 *
 * The walk is gateway/config.c's, through the same reader
 * (proto/config_reader.h): each group is checked for unknown names before its
 * settings are read, so a typo is reported as a typo (with a suggestion) and
 * not as the missing setting it hides; the first problem stops the load and
 * names the file and line. Paths are made absolute against the file's
 * directory.
 */
#include "adapter_config.h"

#include "config_reader.h"

#include <libconfig.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
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

static const jx_config_reader_group all_groups[] = {
    {"the top level", root_names},
    {"adapter", adapter_names},
    {"adapter.dropbox", dropbox_names},
    {"adapter.http", http_names},
};

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

/* crls may be left out or empty. A value that is not a list keeps the
 * sentence adapters have always printed ("must be an array of strings"),
 * which tests/integration/adapter_config.py matches. */
static int get_crls(jx_config_reader *reader, const config_setting_t *adapter,
                    jx_adapter_conf *conf)
{
    const config_setting_t *crls = config_setting_get_member(adapter, "crls");
    int type = crls ? config_setting_type(crls) : CONFIG_TYPE_LIST;
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return jx_config_reader_fail_at(
            reader, crls, "'crls' in adapter must be an array of strings [ \"...\", ... ], not %s",
            jx_config_reader_type_words(type));
    return jx_config_reader_get_path_list(reader, adapter, "adapter", "crls", false, &conf->crls,
                                          &conf->n_crls, NULL);
}

static int parse_adapter(jx_config_reader *reader, const config_setting_t *root,
                         jx_adapter_conf *conf)
{
    config_setting_t *adapter = NULL, *dropbox = NULL, *http = NULL;
    const char *where = "adapter";
    if (jx_config_reader_get_group(reader, root, "the top level", "adapter", true, &adapter) < 0 ||
        jx_config_reader_check_members(reader, adapter, where, adapter_names) < 0)
        return -1;
    const config_setting_t *gateway_setting = NULL;
    int64_t ack_delay = 0;
    if (jx_config_reader_get_path(reader, adapter, where, "agency_cert", true, &conf->agency_cert,
                                  NULL) < 0 ||
        jx_config_reader_get_path(reader, adapter, where, "agency_key", true, &conf->agency_key,
                                  NULL) < 0 ||
        jx_config_reader_get_path(reader, adapter, where, "ca", true, &conf->ca, NULL) < 0 ||
        get_crls(reader, adapter, conf) < 0 ||
        jx_config_reader_get_path(reader, adapter, where, "state_dir", true, &conf->state_dir,
                                  NULL) < 0 ||
        jx_config_reader_get_string(reader, adapter, where, "gateway", true, &conf->gateway,
                                    &gateway_setting) < 0)
        return -1;
    if (!is_host_port(conf->gateway))
        return jx_config_reader_fail_at(reader, gateway_setting,
                                        "'gateway' in adapter must be \"host:port\" with a port "
                                        "1-65535, not \"%s\"",
                                        conf->gateway);
    if (jx_config_reader_get_string(reader, adapter, where, "gateway_name", false,
                                    &conf->gateway_name, NULL) < 0 ||
        jx_config_reader_get_path(reader, adapter, where, "gateway_cert", true, &conf->gateway_cert,
                                  NULL) < 0 ||
        jx_config_reader_get_string(reader, adapter, where, "gateway_origin", true,
                                    &conf->gateway_origin, NULL) < 0 ||
        jx_config_reader_get_integer(reader, adapter, where, "ack_delay_ms", 0, 0, 10000,
                                     &ack_delay) < 0)
        return -1;
    conf->ack_delay_ms = (int)ack_delay;

    if (jx_config_reader_get_group(reader, adapter, where, "dropbox", false, &dropbox) < 0)
        return -1;
    int64_t poll_ms = JX_ADAPTER_CONF_POLL_MS_DEFAULT;
    if (dropbox) {
        where = "adapter.dropbox";
        if (jx_config_reader_check_members(reader, dropbox, where, dropbox_names) < 0 ||
            jx_config_reader_get_path(reader, dropbox, where, "dir", true, &conf->dropbox_dir,
                                      NULL) < 0 ||
            jx_config_reader_get_integer(reader, dropbox, where, "poll_ms",
                                         JX_ADAPTER_CONF_POLL_MS_DEFAULT, 10, 60000, &poll_ms) < 0)
            return -1;
    }
    conf->dropbox_poll_ms = (int)poll_ms;

    if (jx_config_reader_get_group(reader, adapter, "adapter", "http", false, &http) < 0)
        return -1;
    int64_t body_max = JX_ADAPTER_CONF_HTTP_BODY_DEFAULT;
    if (http) {
        where = "adapter.http";
        const config_setting_t *listen_setting = NULL;
        if (jx_config_reader_check_members(reader, http, where, http_names) < 0 ||
            jx_config_reader_get_string(reader, http, where, "listen", true, &conf->http_listen,
                                        &listen_setting) < 0 ||
            jx_config_reader_get_integer(reader, http, where, "max_body_bytes",
                                         JX_ADAPTER_CONF_HTTP_BODY_DEFAULT, 1024, 64 * 1024 * 1024,
                                         &body_max) < 0)
            return -1;
        struct sockaddr_storage address;
        socklen_t address_len;
        jx_error problem;
        if (jx_adapter_conf_parse_loopback(conf->http_listen, &address, &address_len, &problem) < 0)
            return jx_config_reader_fail_at(reader, listen_setting, "'listen' in adapter.http: %s",
                                            problem.message);
    }
    conf->http_max_body_bytes = (size_t)body_max;
    return 0;
}

jx_adapter_conf *jx_adapter_conf_load(const char *path, jx_error *err)
{
    if (path == NULL || path[0] == '\0') {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no configuration file named");
        return NULL;
    }
    jx_config_reader *reader = NULL;
    jx_adapter_conf *conf = NULL;
    config_t parsed;
    config_init(&parsed);
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
    reader = jx_config_reader_new(path, all_groups, sizeof all_groups / sizeof all_groups[0], err);
    if (reader == NULL)
        goto failed;
    conf = calloc(1, sizeof *conf);
    if (conf == NULL) {
        jx_config_reader_out_of_memory(reader);
        goto failed;
    }
    if ((conf->path = jx_config_reader_copy(reader, path)) == NULL)
        goto failed;
    config_set_include_dir(&parsed, jx_config_reader_directory(reader));
    if (config_read_file(&parsed, path) != CONFIG_TRUE) {
        const char *problem = config_error_text(&parsed);
        if (config_error_type(&parsed) == CONFIG_ERR_FILE_IO)
            jx_error_set(err, JX_ERR_IO, "%s: cannot read the configuration file", path);
        else
            jx_config_reader_fail_line(reader, config_error_line(&parsed), "%s",
                                       problem ? problem : "syntax error");
        goto failed;
    }
    const config_setting_t *root = config_root_setting(&parsed);
    if (jx_config_reader_check_members(reader, root, "the top level", root_names) < 0 ||
        parse_adapter(reader, root, conf) < 0)
        goto failed;
    jx_config_reader_destroy(&reader);
    config_destroy(&parsed);
    return conf;
failed:
    jx_config_reader_destroy(&reader);
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
    jx_config_reader_free_list(self->crls, self->n_crls);
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
