/* adapter_config.h — an agency adapter's configuration file (libconfig).
 *
 * One file serves the `justx` CLI and the `justx-adapter` daemon of an
 * agency (conf/adapter.conf is the commented example):
 *
 *   adapter: {
 *     agency_cert = "pki/KG-PROBATION.pem";  agency_key = "pki/KG-PROBATION.key";
 *     ca = "pki/ca.pem";  crls = [ "pki/crl.pem" ];
 *     state_dir = "state";
 *     gateway = "127.0.0.1:7443";  gateway_name = "localhost";   # name optional
 *     gateway_cert = "pki/gateway.pem";  gateway_origin = "justx.demo/gateway";
 *     ack_delay_ms = 5;                                          # optional
 *     dropbox = { dir = "dropbox"; poll_ms = 500; };             # optional group
 *     http = { listen = "127.0.0.1:8480"; max_body_bytes = 8388608; };  # optional group
 *   };
 *
 * Invariants of a loaded jx_adapter_conf (the loader returns one of these or
 * NULL with the first problem):
 *  - every setting was known, of the right type and in range; a typo is an
 *    error naming the file and line, never silently ignored;
 *  - every path is absolute: relative paths are taken relative to the
 *    directory of the file, so a process may chdir freely;
 *  - http.listen is a loopback address (127.0.0.0/8, ::1 or "localhost"):
 *    the HTTP API has no authentication of its own and must never be
 *    reachable from another machine.
 *
 * Errors are JX_ERR_CONFIG "<file>:<line>: <problem>" (the file as named by
 * the caller), or JX_ERR_IO when the file cannot be read.
 *
 * The type is jx_adapter_conf (the library's run-time settings are
 * jx_adapter_config in adapter.h; jx_adapter_conf_fill bridges the two).
 */
#ifndef JX_ADAPTER_CONF_H
#define JX_ADAPTER_CONF_H

#include "adapter.h"
#include "error.h"

#include <stddef.h>
#include <sys/socket.h>

enum {
    JX_ADAPTER_CONF_POLL_MS_DEFAULT = 500,
    JX_ADAPTER_CONF_HTTP_BODY_DEFAULT = 8 * 1024 * 1024,
};

typedef struct {
    char *path; /* as the caller named it */
    char *agency_cert;
    char *agency_key;
    char *ca;
    char **crls;
    size_t n_crls;
    char *state_dir;
    char *gateway;      /* "host:port" */
    char *gateway_name; /* NULL: the host part of gateway */
    char *gateway_cert;
    char *gateway_origin;
    int ack_delay_ms;  /* 0: the library's default */
    char *dropbox_dir; /* NULL: no drop-box */
    int dropbox_poll_ms;
    char *http_listen; /* NULL: no HTTP API */
    size_t http_max_body_bytes;
} jx_adapter_conf;

/* Loads and validates path. NULL and err on failure. */
jx_adapter_conf *jx_adapter_conf_load(const char *path, jx_error *err);
void jx_adapter_conf_destroy(jx_adapter_conf **self_p);

/* Fills the library's settings from conf. Strings are borrowed from conf,
 * which must outlive the adapter; the caller may then set log and callbacks. */
void jx_adapter_conf_fill(const jx_adapter_conf *conf, jx_adapter_config *config);

/* Parses a loopback "host:port" (host 127.x.x.x, localhost, or [::1]; port
 * 0-65535) into address. -1 with JX_ERR_INVALID_ARGUMENT when it is not one. */
int jx_adapter_conf_parse_loopback(const char *text, struct sockaddr_storage *address,
                                   socklen_t *address_len, jx_error *err);

#endif
