/* config.h — the gateway's configuration: load, validate, print.
 *
 * A configuration is a libconfig file with three top-level settings:
 * `gateway` (identity, listen address, state directory, TLS, journal,
 * limits), `agencies` (who exists and which types each may send and receive)
 * and `routes` (which sender's type goes to whom). docs/configuration.md
 * describes every setting and its default.
 *
 * Invariants of a loaded jx_gateway_config (jx_gateway_config_load either
 * returns one of these or NULL with the first error):
 *  - every setting was known (typos are errors, never ignored), had the right
 *    type and a value in range; defaults are filled in;
 *  - every path is absolute: relative paths in the file are taken relative
 *    to the directory the file is in, so the daemon may chdir freely;
 *  - agency ids are valid and unique; every type name or pattern in a send
 *    list, receive list or route names at least one document type of the
 *    registry; every route's senders may send what it carries and its
 *    recipients may receive it; every recipient is a defined agency;
 *  - the struct is read-only after load; it may be shared between threads.
 *    A reload makes a new one, so pointers into it (agency ids, route names
 *    in a jx_route_decision) stay valid until it is destroyed.
 *
 * Errors are JX_ERR_CONFIG with "<file>:<line>: <problem>" (the file as the
 * caller named it). Only the first problem is reported.
 *
 * @include is refused: the digest journaled on reload must cover the whole
 * configuration, and it is the SHA-256 of this one file's bytes.
 */
#ifndef JX_GATEWAY_CONFIG_H
#define JX_GATEWAY_CONFIG_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { JX_CONFIG_DIGEST_SIZE = 32 };

typedef enum {
    JX_GATEWAY_LOG_DEBUG = 0,
    JX_GATEWAY_LOG_INFO,
    JX_GATEWAY_LOG_WARNING,
    JX_GATEWAY_LOG_ERROR,
} jx_gateway_log_level;

/* An agency. send_types and receive_types are the effective permissions:
 * bit i stands for jx_registry_all()[i] (document types only). */
typedef struct {
    char *id;
    char *name;  /* display name; the id when the file gives none */
    char **send; /* type names and patterns as written */
    size_t n_send;
    char **receive;
    size_t n_receive;
    uint64_t send_types;
    uint64_t receive_types;
    int max_adapters; /* connections at once; gateway.tls.max_connections_per_agency by default */
    int line;
} jx_agency_config;

/* A route. Recipients are agency ids (indexes into cfg->agencies in to_agency). */
typedef struct {
    char *name;  /* NULL when the file gives none */
    char *label; /* name, or "route #N" (1-based), for messages */
    char *from;  /* an agency id or an fnmatch pattern */
    char *type;  /* a type name or an fnmatch pattern */
    char **to;
    size_t *to_agency;
    size_t n_to;
    uint64_t types; /* document types `type` matches (same bits as agencies) */
    int line;
} jx_route_config;

typedef struct jx_route_table jx_route_table; /* precomputed routing, routes.c */

typedef struct {
    char *path;                            /* as the caller named it, for messages */
    uint8_t digest[JX_CONFIG_DIGEST_SIZE]; /* SHA-256 of the file's bytes */

    char *id;          /* gateway name, the checkpoint origin */
    char *listen;      /* "host:port" as written */
    char *listen_host; /* without brackets for IPv6 */
    uint16_t listen_port;
    char *state_dir; /* absolute; holds journal/, spool.db, run/ */
    jx_gateway_log_level log_level;

    struct {
        char *certificate; /* absolute paths */
        char *key;
        char **trust_anchors;
        size_t n_trust_anchors;
        char **crls;
        size_t n_crls;
        int min_version; /* TLS1_3_VERSION (0x0304) or TLS1_2_VERSION (0x0303) */
        int64_t handshake_timeout_ms;
        int max_connections;
        int max_connections_per_agency;
    } tls;

    struct {
        int64_t checkpoint_every_records;
        int64_t checkpoint_every_ms;
        int64_t segment_bytes;
    } journal;

    struct {
        int64_t max_message_bytes;
        int64_t max_clock_skew_ms;
        int64_t default_ttl_ms;
        int64_t max_ttl_ms;
        int64_t retry_initial_ms;
        int64_t retry_max_ms;
        int64_t group_commit_max_messages;
        int64_t group_commit_max_delay_ms;
    } limits;

    jx_agency_config *agencies; /* in file order */
    size_t n_agencies;
    jx_route_config *routes; /* in file order */
    size_t n_routes;

    /* private */
    size_t *agency_order; /* agency indexes sorted by id, for lookup */
    jx_route_table *table;
    struct {
        int state_dir, certificate, key, trust_anchors, crls;
    } lines;
} jx_gateway_config;

/* Reads, parses and validates the file at path. NULL and err (JX_ERR_CONFIG,
 * or JX_ERR_IO when the file cannot be read) on failure. */
jx_gateway_config *jx_gateway_config_load(const char *path, jx_error *err);

void jx_gateway_config_destroy(jx_gateway_config **self_p);

/* SHA-256 of the file's bytes (JX_CONFIG_DIGEST_SIZE bytes), for the
 * journal's CONFIG_CHANGED record. Borrowed. */
const uint8_t *jx_gateway_config_digest(const jx_gateway_config *self);

/* The agency with that id, or NULL. O(log n). */
const jx_agency_config *jx_gateway_config_find_agency(const jx_gateway_config *self,
                                                      const char *id);

/* Index of the agency with that id in self->agencies, or -1. */
long jx_gateway_config_agency_index(const jx_gateway_config *self, const char *id);

/* Checks what the loader does not: that the TLS files can be opened for
 * reading and the state directory exists (or its parent does, so the daemon
 * can make it). Errors as for load ("<file>:<line>: tls.key '...': ..."). */
int jx_gateway_config_check_files(const jx_gateway_config *self, jx_error *err);

/* Writes the gateway settings, the agencies (id, name, may send, may
 * receive) and the route table as aligned text tables, for
 * `justx-gateway --check`. Returns 0, or -1 when out reports a write error. */
int jx_gateway_config_print(const jx_gateway_config *self, FILE *out);

/* "debug", "info", "warning", "error". */
const char *jx_gateway_log_level_name(jx_gateway_log_level level);

#endif
