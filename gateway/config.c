/* config.c — loads and validates the gateway's libconfig file.
 *
 * The file is read once into memory: its SHA-256 is the digest the journal
 * records on reload, and libconfig parses those same bytes, so what is
 * journaled is exactly what was checked. Validation walks the tree in file
 * order and stops at the first problem, which it reports with the line of the
 * setting at fault; every group is checked for unknown names first, so a typo
 * is reported as a typo and not as the missing setting it hides. That walk is
 * proto/config_reader.h, shared with the adapter's loader; what is left here
 * is the gateway's own: its settings, units in sentences, 64-bit literals,
 * type patterns, agencies and routes.
 *
 * Type permissions are kept as bit sets over jx_registry_all(), which holds
 * fewer than 64 types; only document types are ever set (Ack and Receipt are
 * protocol types the gateway makes or consumes itself, never routes).
 */
#include "config.h"

#include "config_reader.h"
#include "message_id.h"
#include "registry.h"
#include "routes.h"

#include <libconfig.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bigger than any sensible configuration (a few hundred routes is ~100 KiB),
 * small enough that a wrong path (a journal segment, /dev/zero) fails fast. */
enum { CONFIG_FILE_MAX = 4 * 1024 * 1024 };

enum {
    KIB = 1024,
    MIB = 1024 * 1024,
};
#define SECOND_MS INT64_C(1000)
#define MINUTE_MS (60 * SECOND_MS)
#define HOUR_MS   (60 * MINUTE_MS)
#define DAY_MS    (24 * HOUR_MS)

/* ---- names of settings, per group (for typo detection) ---- */

static const char *const root_names[] = {"gateway", "agencies", "routes", NULL};
static const char *const gateway_names[] = {"id",  "listen",  "state_dir", "log_level",
                                            "tls", "journal", "limits",    NULL};
static const char *const tls_names[] = {"certificate",
                                        "key",
                                        "trust_anchors",
                                        "crls",
                                        "min_version",
                                        "handshake_timeout_ms",
                                        "max_connections",
                                        "max_connections_per_agency",
                                        NULL};
static const char *const journal_names[] = {"checkpoint_every_records", "checkpoint_every_ms",
                                            "segment_bytes", NULL};
static const char *const limits_names[] = {"max_message_bytes",
                                           "max_clock_skew_ms",
                                           "default_ttl_ms",
                                           "max_ttl_ms",
                                           "retry_initial_ms",
                                           "retry_max_ms",
                                           "group_commit_max_messages",
                                           "group_commit_max_delay_ms",
                                           NULL};
static const char *const agency_names[] = {"id", "name", "send", "receive", "max_adapters", NULL};
static const char *const route_names[] = {"name", "from", "type", "to", NULL};

/* Where each name belongs, to say "it belongs in gateway.limits" when a
 * known setting is put in the wrong group. */
static const jx_config_reader_group all_groups[] = {
    {"the top level", root_names},    {"gateway", gateway_names},
    {"gateway.tls", tls_names},       {"gateway.journal", journal_names},
    {"gateway.limits", limits_names}, {"an agency", agency_names},
    {"a route", route_names},
};

typedef struct {
    jx_config_reader *reader;
    const char *text; /* the file's bytes, NUL-terminated */
    jx_gateway_config *cfg;
    const jx_message_type *types;
    size_t n_types;
} loader;

/* ---- small helpers ---- */

static bool has_glob(const char *text)
{
    return strpbrk(text, "*?[") != NULL;
}

typedef enum { UNIT_COUNT, UNIT_BYTES, UNIT_MS } value_unit;

/* "67108864 bytes (64 MiB)", "300000 ms (5 minutes)" or the plain number. */
static void describe(char *out, size_t size, int64_t value, value_unit unit)
{
    static const struct {
        value_unit unit;
        int64_t scale;
        const char *one, *many;
    } scales[] = {
        {UNIT_BYTES, MIB, "MiB", "MiB"},           {UNIT_BYTES, KIB, "KiB", "KiB"},
        {UNIT_MS, DAY_MS, "day", "days"},          {UNIT_MS, HOUR_MS, "hour", "hours"},
        {UNIT_MS, MINUTE_MS, "minute", "minutes"}, {UNIT_MS, SECOND_MS, "s", "s"},
    };
    const char *word = unit == UNIT_BYTES ? " bytes" : (unit == UNIT_MS ? " ms" : "");
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
        if (scales[i].unit == unit && value > 0 && value % scales[i].scale == 0) {
            int64_t n = value / scales[i].scale;
            snprintf(out, size, "%lld%s (%lld %s)", (long long)value, word, (long long)n,
                     n == 1 ? scales[i].one : scales[i].many);
            return;
        }
    snprintf(out, size, "%lld%s", (long long)value, word);
}

/* libconfig 1.5 reads a decimal literal above 2^31-1 without an L suffix
 * as a 32-bit int, wrapped ("2592000000" becomes -1702967296), and
 * saturates 64-bit literals that overflow. Milliseconds in days exceed
 * 2^31, so rather than surprise people we read the literal again from the
 * setting's line: "name = <number>" or "name : <number>". Returns 1 with
 * *value when found, 0 when the line holds no such literal, -1 when the
 * literal overflows 64 bits. */
static int literal_integer(const loader *l, const config_setting_t *setting, const char *name,
                           int64_t *value)
{
    int line = (int)config_setting_source_line(setting);
    const char *p = l->text;
    for (int n = 1; n < line && p; n++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (p == NULL || line <= 0)
        return 0;
    const char *end_of_line = strchr(p, '\n');
    size_t name_len = strlen(name);
    for (const char *at = p; (at = strstr(at, name)) != NULL; at += name_len) {
        if (end_of_line && at >= end_of_line)
            return 0;
        bool word_start = at == l->text ||
                          !(at[-1] == '_' || at[-1] == '-' || (at[-1] >= 'a' && at[-1] <= 'z') ||
                            (at[-1] >= 'A' && at[-1] <= 'Z') || (at[-1] >= '0' && at[-1] <= '9'));
        const char *q = at + name_len;
        while (*q == ' ' || *q == '\t')
            q++;
        if (!word_start || (*q != '=' && *q != ':'))
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (!(*q == '-' || *q == '+' || (*q >= '0' && *q <= '9')))
            return 0;
        char *end = NULL;
        errno = 0;
        /* libconfig reads "010" as ten: decimal unless 0x. */
        const char *digits = (*q == '-' || *q == '+') ? q + 1 : q;
        int base = (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) ? 16 : 10;
        long long parsed = strtoll(q, &end, base);
        if (errno == ERANGE)
            return -1;
        if (end == q)
            return 0;
        *value = (int64_t)parsed;
        return 1;
    }
    return 0;
}

/* An integer setting with a default and a range; group may be NULL (an
 * optional group that is absent): then the default. Unlike the shared
 * reader's, values above 2^31 are read from the literal and sentences give
 * the unit. */
static int get_integer(loader *l, const config_setting_t *group, const char *where,
                       const char *name, int64_t fallback, int64_t min, int64_t max,
                       value_unit unit, int64_t *out)
{
    const config_setting_t *setting = NULL;
    int64_t value = fallback;
    *out = fallback;
    if (jx_config_reader_find_integer(l->reader, group, where, name, &setting, &value) < 0)
        return -1;
    if (setting == NULL)
        return 0;
    if (literal_integer(l, setting, name, &value) < 0)
        return jx_config_reader_fail_at(
            l->reader, setting, "'%s' in %s is too large for a 64-bit integer", name, where);
    if (value < min || value > max) {
        char v[64], lo[64], hi[64];
        describe(v, sizeof v, value, unit);
        describe(lo, sizeof lo, min, unit);
        describe(hi, sizeof hi, max, unit);
        return jx_config_reader_fail_at(l->reader, setting,
                                        "'%s' in %s is %s; it must be between %s and %s", name,
                                        where, v, lo, hi);
    }
    *out = value;
    return 0;
}

static int get_int(loader *l, const config_setting_t *group, const char *where, const char *name,
                   int fallback, int min, int max, int *out)
{
    int64_t value;
    if (get_integer(l, group, where, name, fallback, min, max, UNIT_COUNT, &value) < 0)
        return -1;
    *out = (int)value;
    return 0;
}

/* ---- type names and patterns ---- */

/* Bits of the document types a name or pattern matches; 0 with an error
 * when it matches none or names a type that is not a document. */
static int type_bits(loader *l, const config_setting_t *setting, const char *text, const char *what,
                     uint64_t *bits)
{
    *bits = 0;
    if (!has_glob(text)) {
        const jx_message_type *found = jx_registry_find(text);
        if (found == NULL) {
            const char *names[64] = {0};
            size_t n = 0;
            for (size_t i = 0; i < l->n_types; i++)
                if (l->types[i].is_document)
                    names[n++] = l->types[i].name;
            const char *suggestion = jx_config_reader_closest(text, names, n);
            if (suggestion == NULL)
                for (size_t i = 0; i < n; i++) {
                    const char *dot = strrchr(names[i], '.');
                    if (dot && strcmp(dot + 1, text) == 0)
                        suggestion = names[i];
                }
            if (suggestion)
                return jx_config_reader_fail_at(
                    l->reader, setting, "unknown message type '%s' in %s (did you mean '%s'?)",
                    text, what, suggestion);
            return jx_config_reader_fail_at(
                l->reader, setting,
                "unknown message type '%s' in %s (types are full names such as "
                "'justx.v1.SentenceOrder', or patterns such as 'justx.v1.*')",
                text, what);
        }
        if (!found->is_document)
            return jx_config_reader_fail_at(
                l->reader, setting,
                "'%s' in %s is a protocol type, not a document: the gateway does not "
                "route it",
                text, what);
        *bits = UINT64_C(1) << (size_t)(found - l->types);
        return 0;
    }
    for (size_t i = 0; i < l->n_types; i++)
        if (l->types[i].is_document && fnmatch(text, l->types[i].name, 0) == 0)
            *bits |= UINT64_C(1) << i;
    if (*bits == 0)
        return jx_config_reader_fail_at(
            l->reader, setting, "type pattern '%s' in %s matches no document type", text, what);
    return 0;
}

/* "justx.v1.A, justx.v1.B" for the types in bits. */
static void type_list(const loader *l, uint64_t bits, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < l->n_types; i++) {
        if (!(bits & (UINT64_C(1) << i)))
            continue;
        if (out[0])
            strncat(out, ", ", size - strlen(out) - 1);
        strncat(out, l->types[i].name, size - strlen(out) - 1);
    }
    if (out[0] == '\0')
        snprintf(out, size, "nothing");
}

static int list_type_bits(loader *l, const config_setting_t *group, const char *list_name,
                          const char *where, uint64_t *bits)
{
    *bits = 0;
    const config_setting_t *list = config_setting_get_member(group, list_name);
    if (list == NULL)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "'%s' of %s", list_name, where);
    for (int i = 0; i < config_setting_length(list); i++) {
        const config_setting_t *element = config_setting_get_elem(list, (unsigned)i);
        uint64_t one;
        if (type_bits(l, element, config_setting_get_string(element), what, &one) < 0)
            return -1;
        *bits |= one;
    }
    return 0;
}

/* ---- the gateway section ---- */

static int parse_listen(loader *l, const config_setting_t *setting, const char *text)
{
    jx_gateway_config *cfg = l->cfg;
    const char *host_start = text, *host_end, *port_text;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return jx_config_reader_fail_at(
                l->reader, setting,
                "'listen' in gateway is '%s'; write an IPv6 address as [address]:port", text);
        host_start = text + 1;
        host_end = close;
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return jx_config_reader_fail_at(
                l->reader, setting,
                "'listen' in gateway is '%s'; it must be host:port, e.g. "
                "127.0.0.1:7443",
                text);
        if (memchr(text, ':', (size_t)(colon - text)) != NULL)
            return jx_config_reader_fail_at(
                l->reader, setting,
                "'listen' in gateway is '%s'; write an IPv6 address as [address]:port", text);
        host_end = colon;
        port_text = colon + 1;
    }
    if (host_end == host_start)
        return jx_config_reader_fail_at(l->reader, setting,
                                        "'listen' in gateway is '%s'; the host is missing", text);
    for (const char *p = host_start; p < host_end; p++)
        if (*p == ' ' || *p == '/' || *p == '[' || *p == ']')
            return jx_config_reader_fail_at(
                l->reader, setting, "'listen' in gateway is '%s'; the host is not valid", text);
    char *end = NULL;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (port_text[0] < '0' || port_text[0] > '9' || *end != '\0' || errno || port < 0 ||
        port > 65535)
        return jx_config_reader_fail_at(
            l->reader, setting,
            "'listen' in gateway is '%s'; the port must be a number from 0 to 65535", text);
    cfg->listen_host = strndup(host_start, (size_t)(host_end - host_start));
    if (cfg->listen_host == NULL)
        return jx_config_reader_out_of_memory(l->reader);
    cfg->listen_port = (uint16_t)port;
    return 0;
}

/* The checkpoint origin goes into signed notes: no spaces, no '+'
 * (c2sp.org/signed-note key names), printable ASCII. */
static int check_gateway_id(loader *l, const config_setting_t *setting, const char *id)
{
    if (strlen(id) >= 256)
        return jx_config_reader_fail_at(l->reader, setting,
                                        "'id' in gateway is longer than 255 characters");
    for (const char *p = id; *p; p++)
        if (*p <= ' ' || *p == '+' || *p > '~')
            return jx_config_reader_fail_at(
                l->reader, setting,
                "'id' in gateway is '%s'; it names the gateway in signed checkpoints and "
                "may hold no spaces, '+' or non-ASCII characters",
                id);
    return 0;
}

static int parse_tls(loader *l, const config_setting_t *gateway)
{
    jx_gateway_config *cfg = l->cfg;
    config_setting_t *tls;
    if (jx_config_reader_get_group(l->reader, gateway, "gateway", "tls", true, &tls) < 0)
        return -1;
    if (jx_config_reader_check_members(l->reader, tls, "gateway.tls", tls_names) < 0)
        return -1;
    const char *where = "gateway.tls";
    if (jx_config_reader_get_path(l->reader, tls, where, "certificate", true, &cfg->tls.certificate,
                                  &cfg->lines.certificate) < 0 ||
        jx_config_reader_get_path(l->reader, tls, where, "key", true, &cfg->tls.key,
                                  &cfg->lines.key) < 0 ||
        jx_config_reader_get_path_list(l->reader, tls, where, "trust_anchors", true,
                                       &cfg->tls.trust_anchors, &cfg->tls.n_trust_anchors,
                                       &cfg->lines.trust_anchors) < 0 ||
        jx_config_reader_get_path_list(l->reader, tls, where, "crls", false, &cfg->tls.crls,
                                       &cfg->tls.n_crls, &cfg->lines.crls) < 0)
        return -1;

    char *version = NULL;
    const config_setting_t *version_setting = NULL;
    if (jx_config_reader_get_string(l->reader, tls, where, "min_version", false, &version,
                                    &version_setting) < 0)
        return -1;
    cfg->tls.min_version = TLS1_3_VERSION;
    if (version) {
        bool ok = true;
        if (strcmp(version, "1.3") == 0)
            cfg->tls.min_version = TLS1_3_VERSION;
        else if (strcmp(version, "1.2") == 0)
            cfg->tls.min_version = TLS1_2_VERSION;
        else
            ok = false;
        if (!ok) {
            jx_config_reader_fail_at(
                l->reader, version_setting,
                "'min_version' in gateway.tls is '%s'; it must be \"1.3\" or \"1.2\"", version);
            free(version);
            return -1;
        }
        free(version);
    }
    if (get_integer(l, tls, where, "handshake_timeout_ms", 10 * SECOND_MS, 100, 10 * MINUTE_MS,
                    UNIT_MS, &cfg->tls.handshake_timeout_ms) < 0 ||
        get_int(l, tls, where, "max_connections", 1024, 1, 100000, &cfg->tls.max_connections) < 0 ||
        get_int(l, tls, where, "max_connections_per_agency", 16, 1, 100000,
                &cfg->tls.max_connections_per_agency) < 0)
        return -1;
    if (cfg->tls.max_connections_per_agency > cfg->tls.max_connections)
        return jx_config_reader_fail_at(
            l->reader, config_setting_get_member(tls, "max_connections_per_agency"),
            "'max_connections_per_agency' in gateway.tls (%d) is more than "
            "'max_connections' (%d)",
            cfg->tls.max_connections_per_agency, cfg->tls.max_connections);
    return 0;
}

static int parse_journal(loader *l, const config_setting_t *gateway)
{
    jx_gateway_config *cfg = l->cfg;
    config_setting_t *journal;
    if (jx_config_reader_get_group(l->reader, gateway, "gateway", "journal", false, &journal) < 0)
        return -1;
    if (journal &&
        jx_config_reader_check_members(l->reader, journal, "gateway.journal", journal_names) < 0)
        return -1;
    const char *where = "gateway.journal";
    if (get_integer(l, journal, where, "checkpoint_every_records", 1000, 1, 1000000, UNIT_COUNT,
                    &cfg->journal.checkpoint_every_records) < 0 ||
        get_integer(l, journal, where, "checkpoint_every_ms", SECOND_MS, 1, HOUR_MS, UNIT_MS,
                    &cfg->journal.checkpoint_every_ms) < 0 ||
        get_integer(l, journal, where, "segment_bytes", 64 * MIB, MIB, INT64_C(1024) * MIB,
                    UNIT_BYTES, &cfg->journal.segment_bytes) < 0)
        return -1;
    return 0;
}

static int parse_limits(loader *l, const config_setting_t *gateway)
{
    jx_gateway_config *cfg = l->cfg;
    config_setting_t *limits;
    if (jx_config_reader_get_group(l->reader, gateway, "gateway", "limits", false, &limits) < 0)
        return -1;
    if (limits &&
        jx_config_reader_check_members(l->reader, limits, "gateway.limits", limits_names) < 0)
        return -1;
    const char *where = "gateway.limits";
    if (get_integer(l, limits, where, "max_message_bytes", 4 * MIB, KIB, 64 * MIB, UNIT_BYTES,
                    &cfg->limits.max_message_bytes) < 0 ||
        get_integer(l, limits, where, "max_clock_skew_ms", 5 * MINUTE_MS, 0, DAY_MS, UNIT_MS,
                    &cfg->limits.max_clock_skew_ms) < 0 ||
        get_integer(l, limits, where, "default_ttl_ms", 30 * DAY_MS, MINUTE_MS, 3650 * DAY_MS,
                    UNIT_MS, &cfg->limits.default_ttl_ms) < 0 ||
        get_integer(l, limits, where, "max_ttl_ms", 90 * DAY_MS, MINUTE_MS, 3650 * DAY_MS, UNIT_MS,
                    &cfg->limits.max_ttl_ms) < 0 ||
        get_integer(l, limits, where, "retry_initial_ms", SECOND_MS, 10, HOUR_MS, UNIT_MS,
                    &cfg->limits.retry_initial_ms) < 0 ||
        get_integer(l, limits, where, "retry_max_ms", 5 * MINUTE_MS, 10, DAY_MS, UNIT_MS,
                    &cfg->limits.retry_max_ms) < 0 ||
        get_integer(l, limits, where, "group_commit_max_messages", 256, 1, 65536, UNIT_COUNT,
                    &cfg->limits.group_commit_max_messages) < 0 ||
        get_integer(l, limits, where, "group_commit_max_delay_ms", 2, 0, SECOND_MS, UNIT_MS,
                    &cfg->limits.group_commit_max_delay_ms) < 0)
        return -1;
    /* Cross-checks name the setting that would have to change. */
    if (cfg->limits.default_ttl_ms > cfg->limits.max_ttl_ms) {
        const config_setting_t *at = config_setting_get_member(limits, "default_ttl_ms");
        if (at == NULL)
            at = config_setting_get_member(limits, "max_ttl_ms");
        char d[64], m[64];
        describe(d, sizeof d, cfg->limits.default_ttl_ms, UNIT_MS);
        describe(m, sizeof m, cfg->limits.max_ttl_ms, UNIT_MS);
        return jx_config_reader_fail_at(
            l->reader, at, "'default_ttl_ms' in gateway.limits is %s, more than 'max_ttl_ms', %s",
            d, m);
    }
    if (cfg->limits.retry_initial_ms > cfg->limits.retry_max_ms) {
        const config_setting_t *at = config_setting_get_member(limits, "retry_initial_ms");
        if (at == NULL)
            at = config_setting_get_member(limits, "retry_max_ms");
        return jx_config_reader_fail_at(
            l->reader, at,
            "'retry_initial_ms' in gateway.limits (%lld) is more than 'retry_max_ms' "
            "(%lld)",
            (long long)cfg->limits.retry_initial_ms, (long long)cfg->limits.retry_max_ms);
    }
    return 0;
}

static const char *const level_names[] = {"debug", "info", "warning", "error"};

const char *jx_gateway_log_level_name(jx_gateway_log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof level_names / sizeof level_names[0])
        return "info";
    return level_names[level];
}

static int parse_gateway(loader *l, const config_setting_t *root)
{
    jx_gateway_config *cfg = l->cfg;
    config_setting_t *gateway;
    if (jx_config_reader_get_group(l->reader, root, "the file", "gateway", true, &gateway) < 0)
        return -1;
    if (jx_config_reader_check_members(l->reader, gateway, "gateway", gateway_names) < 0)
        return -1;

    const config_setting_t *setting = NULL;
    if (jx_config_reader_get_string(l->reader, gateway, "gateway", "id", false, &cfg->id,
                                    &setting) < 0)
        return -1;
    if (cfg->id == NULL && (cfg->id = jx_config_reader_copy(l->reader, "justx/gateway")) == NULL)
        return -1;
    if (setting && check_gateway_id(l, setting, cfg->id) < 0)
        return -1;

    if (jx_config_reader_get_string(l->reader, gateway, "gateway", "listen", true, &cfg->listen,
                                    &setting) < 0 ||
        parse_listen(l, setting, cfg->listen) < 0)
        return -1;
    if (jx_config_reader_get_path(l->reader, gateway, "gateway", "state_dir", true, &cfg->state_dir,
                                  &cfg->lines.state_dir) < 0)
        return -1;

    char *level = NULL;
    if (jx_config_reader_get_string(l->reader, gateway, "gateway", "log_level", false, &level,
                                    &setting) < 0)
        return -1;
    cfg->log_level = JX_GATEWAY_LOG_INFO;
    if (level) {
        size_t i;
        for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
            if (strcmp(level, level_names[i]) == 0)
                break;
        if (i == sizeof level_names / sizeof level_names[0]) {
            jx_config_reader_fail_at(
                l->reader, setting,
                "'log_level' in gateway is '%s'; it must be \"debug\", \"info\", \"warning\" "
                "or \"error\"",
                level);
            free(level);
            return -1;
        }
        cfg->log_level = (jx_gateway_log_level)i;
        free(level);
    }
    if (parse_tls(l, gateway) < 0 || parse_journal(l, gateway) < 0 || parse_limits(l, gateway) < 0)
        return -1;
    return 0;
}

/* ---- agencies ---- */

static int compare_agency_order(const void *a, const void *b, void *agencies)
{
    const jx_agency_config *list = agencies;
    return strcmp(list[*(const size_t *)a].id, list[*(const size_t *)b].id);
}

long jx_gateway_config_agency_index(const jx_gateway_config *self, const char *id)
{
    if (self == NULL || id == NULL)
        return -1;
    size_t low = 0, high = self->n_agencies;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        size_t index = self->agency_order[mid];
        int c = strcmp(id, self->agencies[index].id);
        if (c == 0)
            return (long)index;
        if (c < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return -1;
}

const jx_agency_config *jx_gateway_config_find_agency(const jx_gateway_config *self, const char *id)
{
    long index = jx_gateway_config_agency_index(self, id);
    return index < 0 ? NULL : &self->agencies[index];
}

/* Suggests a defined agency id close to an unknown one. */
static const char *closest_agency(const jx_gateway_config *cfg, const char *id)
{
    const char *best = NULL;
    size_t best_distance = SIZE_MAX;
    for (size_t i = 0; i < cfg->n_agencies; i++) {
        size_t d = jx_config_reader_edit_distance(id, cfg->agencies[i].id);
        if (d < best_distance) {
            best_distance = d;
            best = cfg->agencies[i].id;
        }
    }
    return best_distance <= 3 ? best : NULL;
}

static int parse_agency(loader *l, const config_setting_t *element, size_t index)
{
    jx_gateway_config *cfg = l->cfg;
    jx_agency_config *agency = &cfg->agencies[index];
    agency->line = (int)config_setting_source_line(element);

    char where[128];
    snprintf(where, sizeof where, "agency #%zu", index + 1);
    if (config_setting_type(element) != CONFIG_TYPE_GROUP)
        return jx_config_reader_fail_at(l->reader, element,
                                        "%s must be a group { id = ...; ... }, not %s", where,
                                        jx_config_reader_type_words(config_setting_type(element)));
    if (jx_config_reader_check_members(l->reader, element, where, agency_names) < 0)
        return -1;

    const config_setting_t *id_setting = NULL;
    if (jx_config_reader_get_string(l->reader, element, where, "id", true, &agency->id,
                                    &id_setting) < 0)
        return -1;
    if (!jx_agency_id_is_valid(agency->id))
        return jx_config_reader_fail_at(
            l->reader, id_setting,
            "agency id '%s' is not valid: it must be 1 to 64 characters of A-Z, 0-9 "
            "and '-'",
            agency->id);
    snprintf(where, sizeof where, "agency %s", agency->id);
    for (size_t i = 0; i < index; i++)
        if (strcmp(cfg->agencies[i].id, agency->id) == 0)
            return jx_config_reader_fail_at(l->reader, id_setting,
                                            "agency %s is defined twice (first on line %d)",
                                            agency->id, cfg->agencies[i].line);

    const config_setting_t *name_setting = NULL;
    if (jx_config_reader_get_string(l->reader, element, where, "name", false, &agency->name,
                                    &name_setting) < 0)
        return -1;
    if (name_setting && strlen(agency->name) > 200)
        return jx_config_reader_fail_at(l->reader, name_setting,
                                        "'name' of %s is longer than 200 characters", where);
    if (agency->name == NULL &&
        (agency->name = jx_config_reader_copy(l->reader, agency->id)) == NULL)
        return -1;

    if (jx_config_reader_get_string_list(l->reader, element, where, "send", false, &agency->send,
                                         &agency->n_send, NULL) < 0 ||
        jx_config_reader_get_string_list(l->reader, element, where, "receive", false,
                                         &agency->receive, &agency->n_receive, NULL) < 0)
        return -1;
    if (list_type_bits(l, element, "send", where, &agency->send_types) < 0 ||
        list_type_bits(l, element, "receive", where, &agency->receive_types) < 0)
        return -1;
    if (get_int(l, element, where, "max_adapters", cfg->tls.max_connections_per_agency, 1,
                cfg->tls.max_connections, &agency->max_adapters) < 0)
        return -1;
    return 0;
}

static int parse_agencies(loader *l, const config_setting_t *root)
{
    jx_gateway_config *cfg = l->cfg;
    const config_setting_t *agencies = config_setting_get_member(root, "agencies");
    if (agencies == NULL)
        return jx_config_reader_fail_line(
            l->reader, 0, "missing required setting 'agencies' (a list of agencies)");
    if (config_setting_type(agencies) != CONFIG_TYPE_LIST)
        return jx_config_reader_fail_at(l->reader, agencies,
                                        "'agencies' must be a list ( { ... }, { ... } ), not %s",
                                        jx_config_reader_type_words(config_setting_type(agencies)));
    int n = config_setting_length(agencies);
    if (n == 0)
        return jx_config_reader_fail_at(l->reader, agencies,
                                        "'agencies' is empty; define at least one agency");
    cfg->agencies = calloc((size_t)n, sizeof *cfg->agencies);
    cfg->agency_order = calloc((size_t)n, sizeof *cfg->agency_order);
    if (cfg->agencies == NULL || cfg->agency_order == NULL)
        return jx_config_reader_out_of_memory(l->reader);
    for (int i = 0; i < n; i++) {
        cfg->n_agencies = (size_t)i + 1;
        if (parse_agency(l, config_setting_get_elem(agencies, (unsigned)i), (size_t)i) < 0)
            return -1;
    }
    for (size_t i = 0; i < cfg->n_agencies; i++)
        cfg->agency_order[i] = i;
    qsort_r(cfg->agency_order, cfg->n_agencies, sizeof *cfg->agency_order, compare_agency_order,
            cfg->agencies);
    return 0;
}

/* ---- routes ---- */

/* Bits of the agencies a `from` matches, as a list of indexes. */
static size_t senders_of(const jx_gateway_config *cfg, const char *from, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_agencies; i++)
        if (fnmatch(from, cfg->agencies[i].id, 0) == 0)
            out[n++] = i;
    return n;
}

static int check_route_permissions(loader *l, const config_setting_t *element,
                                   const jx_route_config *route, const size_t *senders,
                                   size_t n_senders)
{
    const jx_gateway_config *cfg = l->cfg;
    bool exact_from = !has_glob(route->from);
    bool exact_type = !has_glob(route->type);
    char types[512];

    /* The types this route can carry: those some matching sender may send. */
    uint64_t carried = 0;
    for (size_t i = 0; i < n_senders; i++)
        carried |= cfg->agencies[senders[i]].send_types & route->types;
    if (carried == 0) {
        const config_setting_t *at = config_setting_get_member(element, "type");
        if (exact_from) {
            const jx_agency_config *sender = &cfg->agencies[senders[0]];
            type_list(l, sender->send_types, types, sizeof types);
            if (exact_type)
                return jx_config_reader_fail_at(
                    l->reader, at, "%s: %s may not send %s (its 'send' list on line %d allows %s)",
                    route->label, sender->id, route->type, sender->line, types);
            return jx_config_reader_fail_at(
                l->reader, at,
                "%s: %s may send no type matching '%s' (its 'send' list on line %d "
                "allows %s)",
                route->label, sender->id, route->type, sender->line, types);
        }
        return jx_config_reader_fail_at(
            l->reader, at, "%s carries nothing: no agency matching '%s' may send %s%s",
            route->label, route->from, exact_type ? "" : "a type matching ", route->type);
    }

    const config_setting_t *to = config_setting_get_member(element, "to");
    for (size_t k = 0; k < route->n_to; k++) {
        const jx_agency_config *recipient = &cfg->agencies[route->to_agency[k]];
        const config_setting_t *at = config_setting_get_elem(to, (unsigned)k);
        if (exact_from && strcmp(recipient->id, route->from) == 0)
            return jx_config_reader_fail_at(l->reader, at,
                                            "%s sends %s's messages back to %s itself",
                                            route->label, route->from, route->from);
        if ((recipient->receive_types & carried) == 0) {
            type_list(l, recipient->receive_types, types, sizeof types);
            if (exact_type)
                return jx_config_reader_fail_at(
                    l->reader, at,
                    "%s: recipient %s may not receive %s (its 'receive' list on line "
                    "%d allows %s)",
                    route->label, recipient->id, route->type, recipient->line, types);
            char carried_list[512];
            type_list(l, carried, carried_list, sizeof carried_list);
            return jx_config_reader_fail_at(
                l->reader, at,
                "%s: recipient %s may receive none of the types this route carries "
                "(%s); its 'receive' list on line %d allows %s",
                route->label, recipient->id, carried_list, recipient->line, types);
        }
    }
    return 0;
}

static int parse_route(loader *l, const config_setting_t *element, size_t index, size_t *senders)
{
    jx_gateway_config *cfg = l->cfg;
    jx_route_config *route = &cfg->routes[index];
    route->line = (int)config_setting_source_line(element);

    char where[300];
    snprintf(where, sizeof where, "route #%zu", index + 1);
    if (config_setting_type(element) != CONFIG_TYPE_GROUP)
        return jx_config_reader_fail_at(l->reader, element,
                                        "%s must be a group { from = ...; ... }, not %s", where,
                                        jx_config_reader_type_words(config_setting_type(element)));
    if (jx_config_reader_check_members(l->reader, element, where, route_names) < 0)
        return -1;

    const config_setting_t *setting = NULL;
    if (jx_config_reader_get_string(l->reader, element, where, "name", false, &route->name,
                                    &setting) < 0)
        return -1;
    if (route->name) {
        if (strlen(route->name) > 100)
            return jx_config_reader_fail_at(l->reader, setting,
                                            "'name' of %s is longer than 100 characters", where);
        for (size_t i = 0; i < index; i++)
            if (cfg->routes[i].name && strcmp(cfg->routes[i].name, route->name) == 0)
                return jx_config_reader_fail_at(l->reader, setting,
                                                "two routes are named '%s' (the first on line %d)",
                                                route->name, cfg->routes[i].line);
        snprintf(where, sizeof where, "route '%s'", route->name);
    }
    route->label = jx_config_reader_copy(l->reader, where);
    if (route->label == NULL)
        return -1;

    if (jx_config_reader_get_string(l->reader, element, where, "from", true, &route->from,
                                    &setting) < 0)
        return -1;
    size_t n_senders = senders_of(cfg, route->from, senders);
    if (n_senders == 0) {
        if (has_glob(route->from))
            return jx_config_reader_fail_at(l->reader, setting,
                                            "'from' pattern '%s' of %s matches no agency",
                                            route->from, where);
        const char *suggestion = closest_agency(cfg, route->from);
        if (suggestion)
            return jx_config_reader_fail_at(
                l->reader, setting,
                "'from' of %s names %s, which is not a defined agency (did you mean "
                "%s?)",
                where, route->from, suggestion);
        return jx_config_reader_fail_at(l->reader, setting,
                                        "'from' of %s names %s, which is not a defined agency",
                                        where, route->from);
    }

    if (jx_config_reader_get_string(l->reader, element, where, "type", true, &route->type,
                                    &setting) < 0)
        return -1;
    char what[340];
    snprintf(what, sizeof what, "'type' of %s", where);
    if (type_bits(l, setting, route->type, what, &route->types) < 0)
        return -1;

    const config_setting_t *to = NULL;
    if (jx_config_reader_get_string_list(l->reader, element, where, "to", true, &route->to,
                                         &route->n_to, &to) < 0)
        return -1;
    route->to_agency = calloc(route->n_to, sizeof *route->to_agency);
    if (route->to_agency == NULL)
        return jx_config_reader_out_of_memory(l->reader);
    for (size_t k = 0; k < route->n_to; k++) {
        const config_setting_t *at = config_setting_get_elem(to, (unsigned)k);
        const char *id = route->to[k];
        if (has_glob(id))
            return jx_config_reader_fail_at(
                l->reader, at, "'to' of %s lists agency ids, not patterns: '%s'", where, id);
        long found = jx_gateway_config_agency_index(cfg, id);
        if (found < 0) {
            const char *suggestion = closest_agency(cfg, id);
            if (suggestion)
                return jx_config_reader_fail_at(
                    l->reader, at,
                    "'to' of %s names %s, which is not a defined agency (did you mean "
                    "%s?)",
                    where, id, suggestion);
            return jx_config_reader_fail_at(
                l->reader, at, "'to' of %s names %s, which is not a defined agency", where, id);
        }
        for (size_t j = 0; j < k; j++)
            if (route->to_agency[j] == (size_t)found)
                return jx_config_reader_fail_at(l->reader, at, "'to' of %s lists %s twice", where,
                                                id);
        route->to_agency[k] = (size_t)found;
    }
    return check_route_permissions(l, element, route, senders, n_senders);
}

static int parse_routes(loader *l, const config_setting_t *root)
{
    jx_gateway_config *cfg = l->cfg;
    const config_setting_t *routes = config_setting_get_member(root, "routes");
    if (routes == NULL)
        return 0;
    if (config_setting_type(routes) != CONFIG_TYPE_LIST)
        return jx_config_reader_fail_at(l->reader, routes,
                                        "'routes' must be a list ( { ... }, { ... } ), not %s",
                                        jx_config_reader_type_words(config_setting_type(routes)));
    int n = config_setting_length(routes);
    if (n == 0)
        return 0;
    cfg->routes = calloc((size_t)n, sizeof *cfg->routes);
    size_t *senders = calloc(cfg->n_agencies, sizeof *senders);
    if (cfg->routes == NULL || senders == NULL) {
        free(senders);
        return jx_config_reader_out_of_memory(l->reader);
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        cfg->n_routes = (size_t)i + 1;
        rc = parse_route(l, config_setting_get_elem(routes, (unsigned)i), (size_t)i, senders);
    }
    free(senders);
    return rc;
}

/* ---- reading the file ---- */

static int read_file(const char *path, jx_error *err, char **text_out, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_IO, "%s: cannot open the configuration file: %s", path,
                            strerror(errno));
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        jx_error_set(err, JX_ERR_IO, "%s: not a regular file", path);
        goto failed;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        jx_error_set(err, JX_ERR_CONFIG, "%s: the file is larger than %d MiB", path,
                     CONFIG_FILE_MAX / MIB);
        goto failed;
    }
    size_t capacity = (size_t)st.st_size + 1, len = 0;
    text = malloc(capacity + 1);
    if (text == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "%s: out of memory while loading the configuration", path);
        goto failed;
    }
    /* Read to the end even if the file grew since fstat, up to the limit. */
    for (;;) {
        if (len == capacity) {
            if (capacity > CONFIG_FILE_MAX) {
                jx_error_set(err, JX_ERR_CONFIG, "%s: the file is larger than %d MiB", path,
                             CONFIG_FILE_MAX / MIB);
                goto failed;
            }
            char *bigger = realloc(text, 2 * capacity + 1);
            if (bigger == NULL) {
                jx_error_set(err, JX_ERR_SYSTEM,
                             "%s: out of memory while loading the configuration", path);
                goto failed;
            }
            text = bigger;
            capacity *= 2;
        }
        ssize_t got = read(fd, text + len, capacity - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            jx_error_set(err, JX_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            goto failed;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        free(text);
        return jx_error_set(err, JX_ERR_CONFIG,
                            "%s: the file contains a NUL byte; it is not a text file", path);
    }
    *text_out = text;
    *len_out = len;
    return 0;
failed:
    free(text);
    close(fd);
    return -1;
}

/* Settings read from an @include carry the included file's name; settings
 * from the string we parsed carry none. */
static const config_setting_t *find_included(const config_setting_t *setting)
{
    if (config_setting_source_file(setting) != NULL)
        return setting;
    int type = config_setting_type(setting);
    if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY)
        for (int i = 0; i < config_setting_length(setting); i++) {
            const config_setting_t *found =
                find_included(config_setting_get_elem(setting, (unsigned)i));
            if (found)
                return found;
        }
    return NULL;
}

jx_gateway_config *jx_gateway_config_load(const char *path, jx_error *err)
{
    if (path == NULL || path[0] == '\0') {
        jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no configuration file named");
        return NULL;
    }
    loader l = {0};
    l.types = jx_registry_all(&l.n_types);
    if (l.n_types > 64) {
        jx_error_set(err, JX_ERR_SYSTEM, "the registry holds more than 64 types");
        return NULL;
    }
    config_t parsed;
    config_init(&parsed);
    char *text = NULL;
    size_t len = 0;
    jx_gateway_config *cfg = NULL;
    if (read_file(path, err, &text, &len) < 0)
        goto failed;
    l.text = text;
    l.reader =
        jx_config_reader_new(path, all_groups, sizeof all_groups / sizeof all_groups[0], err);
    if (l.reader == NULL)
        goto failed;
    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        jx_config_reader_out_of_memory(l.reader);
        goto failed;
    }
    l.cfg = cfg;
    if ((cfg->path = jx_config_reader_copy(l.reader, path)) == NULL)
        goto failed;
    if (EVP_Digest(text, len, cfg->digest, NULL, EVP_sha256(), NULL) != 1) {
        jx_error_set_openssl(err, JX_ERR_SYSTEM, "%s: SHA-256 failed", path);
        goto failed;
    }

    config_set_include_dir(&parsed, jx_config_reader_directory(l.reader));
    if (config_read_string(&parsed, text) != CONFIG_TRUE) {
        const char *file = config_error_file(&parsed);
        const char *problem = config_error_text(&parsed);
        int line = config_error_line(&parsed);
        if (file && strcmp(file, path) != 0)
            jx_error_set(err, JX_ERR_CONFIG, "%s:%d: %s (in a file included from %s)", file, line,
                         problem ? problem : "syntax error", path);
        else
            jx_config_reader_fail_line(l.reader, line, "%s", problem ? problem : "syntax error");
        goto failed;
    }
    const config_setting_t *root = config_root_setting(&parsed);
    const config_setting_t *included = find_included(root);
    if (included) {
        jx_error_set(err, JX_ERR_CONFIG,
                     "%s: @include is not supported (settings come from %s, line %d): the digest "
                     "journaled on reload covers one file, so put everything in it",
                     path, config_setting_source_file(included),
                     (int)config_setting_source_line(included));
        goto failed;
    }
    if (jx_config_reader_check_members(l.reader, root, "the top level", root_names) < 0)
        goto failed;
    if (parse_gateway(&l, root) < 0 || parse_agencies(&l, root) < 0 || parse_routes(&l, root) < 0)
        goto failed;
    if (jx_route_table_build(cfg, err) < 0)
        goto failed;

    free(text);
    jx_config_reader_destroy(&l.reader);
    config_destroy(&parsed);
    return cfg;
failed:
    free(text);
    jx_config_reader_destroy(&l.reader);
    config_destroy(&parsed);
    jx_gateway_config_destroy(&cfg);
    return NULL;
}

void jx_gateway_config_destroy(jx_gateway_config **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_gateway_config *self = *self_p;
    jx_route_table_destroy(&self->table);
    for (size_t i = 0; i < self->n_agencies; i++) {
        jx_agency_config *agency = &self->agencies[i];
        free(agency->id);
        free(agency->name);
        jx_config_reader_free_list(agency->send, agency->n_send);
        jx_config_reader_free_list(agency->receive, agency->n_receive);
    }
    free(self->agencies);
    free(self->agency_order);
    for (size_t i = 0; i < self->n_routes; i++) {
        jx_route_config *route = &self->routes[i];
        free(route->name);
        free(route->label);
        free(route->from);
        free(route->type);
        jx_config_reader_free_list(route->to, route->n_to);
        free(route->to_agency);
    }
    free(self->routes);
    free(self->path);
    free(self->id);
    free(self->listen);
    free(self->listen_host);
    free(self->state_dir);
    free(self->tls.certificate);
    free(self->tls.key);
    jx_config_reader_free_list(self->tls.trust_anchors, self->tls.n_trust_anchors);
    jx_config_reader_free_list(self->tls.crls, self->tls.n_crls);
    free(self);
    *self_p = NULL;
}

const uint8_t *jx_gateway_config_digest(const jx_gateway_config *self)
{
    return self ? self->digest : NULL;
}

/* ---- checking files ---- */

static int check_readable(const jx_gateway_config *self, int line, const char *what,
                          const char *path, jx_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jx_error_set(err, JX_ERR_CONFIG, "%s:%d: %s '%s' cannot be read: %s", self->path,
                            line, what, path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st);
    close(fd);
    if (rc < 0 || !S_ISREG(st.st_mode))
        return jx_error_set(err, JX_ERR_CONFIG, "%s:%d: %s '%s' is not a regular file", self->path,
                            line, what, path);
    return 0;
}

int jx_gateway_config_check_files(const jx_gateway_config *self, jx_error *err)
{
    if (check_readable(self, self->lines.certificate, "tls.certificate", self->tls.certificate,
                       err) < 0 ||
        check_readable(self, self->lines.key, "tls.key", self->tls.key, err) < 0)
        return -1;
    for (size_t i = 0; i < self->tls.n_trust_anchors; i++)
        if (check_readable(self, self->lines.trust_anchors, "tls.trust_anchors",
                           self->tls.trust_anchors[i], err) < 0)
            return -1;
    for (size_t i = 0; i < self->tls.n_crls; i++)
        if (check_readable(self, self->lines.crls, "tls.crls", self->tls.crls[i], err) < 0)
            return -1;
    struct stat st;
    if (stat(self->state_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return jx_error_set(err, JX_ERR_CONFIG, "%s:%d: state_dir '%s' is not a directory",
                                self->path, self->lines.state_dir, self->state_dir);
        return 0;
    }
    if (errno != ENOENT)
        return jx_error_set(err, JX_ERR_CONFIG, "%s:%d: state_dir '%s': %s", self->path,
                            self->lines.state_dir, self->state_dir, strerror(errno));
    /* Absent is fine if the daemon can make it: its parent must exist. */
    char *parent = strdup(self->state_dir);
    if (parent == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory");
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
    int rc = 0;
    if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode))
        rc = jx_error_set(err, JX_ERR_CONFIG,
                          "%s:%d: state_dir '%s' does not exist and neither does its parent",
                          self->path, self->lines.state_dir, self->state_dir);
    free(parent);
    return rc;
}

/* ---- printing ---- */

/* "SentenceOrder, StatusUpdate": short names keep the table narrow; all
 * routable types live in justx.v1. */
static void short_type_list(uint64_t bits, char *out, size_t size)
{
    size_t n_types;
    const jx_message_type *types = jx_registry_all(&n_types);
    out[0] = '\0';
    for (size_t i = 0; i < n_types; i++) {
        if (!(bits & (UINT64_C(1) << i)))
            continue;
        const char *dot = strrchr(types[i].name, '.');
        if (out[0])
            strncat(out, ", ", size - strlen(out) - 1);
        strncat(out, dot ? dot + 1 : types[i].name, size - strlen(out) - 1);
    }
    if (out[0] == '\0')
        snprintf(out, size, "-");
}

/* The name, or "#N" for a route without one. */
static const char *route_column(const jx_route_config *route, size_t index)
{
    static _Thread_local char number[32];
    if (route->name)
        return route->name;
    snprintf(number, sizeof number, "#%zu", index + 1);
    return number;
}

static int width_of(const char *text, int current)
{
    int w = (int)strlen(text);
    return w > current ? w : current;
}

int jx_gateway_config_print(const jx_gateway_config *self, FILE *out)
{
    char a[64], b[64];
    fprintf(out, "configuration %s\n", self->path);
    fprintf(out, "  gateway id      %s\n", self->id);
    fprintf(out, "  listen          %s\n", self->listen);
    fprintf(out, "  state_dir       %s\n", self->state_dir);
    fprintf(out, "  log_level       %s\n", jx_gateway_log_level_name(self->log_level));
    fprintf(out, "  tls             TLS %s or later, certificate %s\n",
            self->tls.min_version == TLS1_2_VERSION ? "1.2" : "1.3", self->tls.certificate);
    fprintf(out,
            "                  %zu trust anchor file(s), %zu CRL file(s), at most %d "
            "connections (%d per agency)\n",
            self->tls.n_trust_anchors, self->tls.n_crls, self->tls.max_connections,
            self->tls.max_connections_per_agency);
    describe(a, sizeof a, self->limits.max_message_bytes, UNIT_BYTES);
    describe(b, sizeof b, self->limits.max_clock_skew_ms, UNIT_MS);
    fprintf(out, "  limits          message at most %s, clock skew at most %s\n", a, b);
    describe(a, sizeof a, self->limits.default_ttl_ms, UNIT_MS);
    describe(b, sizeof b, self->limits.max_ttl_ms, UNIT_MS);
    fprintf(out, "                  time to live %s by default, %s at most\n", a, b);
    fprintf(out,
            "                  retry after %lld ms doubling to %lld ms; group commit of "
            "%lld messages or %lld ms\n",
            (long long)self->limits.retry_initial_ms, (long long)self->limits.retry_max_ms,
            (long long)self->limits.group_commit_max_messages,
            (long long)self->limits.group_commit_max_delay_ms);
    fprintf(out,
            "  journal         checkpoint every %lld records or %lld ms; segments of %lld "
            "bytes\n",
            (long long)self->journal.checkpoint_every_records,
            (long long)self->journal.checkpoint_every_ms, (long long)self->journal.segment_bytes);
    fprintf(out, "  digest          sha256:");
    for (size_t i = 0; i < JX_CONFIG_DIGEST_SIZE; i++)
        fprintf(out, "%02x", self->digest[i]);
    fprintf(out, "\n\n");

    /* Agencies. */
    int w_id = (int)strlen("AGENCY"), w_name = (int)strlen("NAME"),
        w_send = (int)strlen("MAY SEND");
    char list[512];
    for (size_t i = 0; i < self->n_agencies; i++) {
        w_id = width_of(self->agencies[i].id, w_id);
        w_name = width_of(self->agencies[i].name, w_name);
        short_type_list(self->agencies[i].send_types, list, sizeof list);
        w_send = width_of(list, w_send);
    }
    fprintf(out, "%zu agenc%s\n", self->n_agencies, self->n_agencies == 1 ? "y" : "ies");
    fprintf(out, "  %-*s  %-*s  %-*s  %s\n", w_id, "AGENCY", w_name, "NAME", w_send, "MAY SEND",
            "MAY RECEIVE");
    for (size_t i = 0; i < self->n_agencies; i++) {
        const jx_agency_config *agency = &self->agencies[i];
        char receive[512];
        short_type_list(agency->send_types, list, sizeof list);
        short_type_list(agency->receive_types, receive, sizeof receive);
        fprintf(out, "  %-*s  %-*s  %-*s  %s\n", w_id, agency->id, w_name, agency->name, w_send,
                list, receive);
    }

    /* Routes as written. */
    fprintf(out, "\n%zu route%s\n", self->n_routes, self->n_routes == 1 ? "" : "s");
    if (self->n_routes > 0) {
        int w_label = (int)strlen("ROUTE"), w_from = (int)strlen("FROM"),
            w_type = (int)strlen("TYPE");
        for (size_t i = 0; i < self->n_routes; i++) {
            w_label = width_of(route_column(&self->routes[i], i), w_label);
            w_from = width_of(self->routes[i].from, w_from);
            w_type = width_of(self->routes[i].type, w_type);
        }
        fprintf(out, "  %4s  %-*s  %-*s  %-*s  %s\n", "LINE", w_label, "ROUTE", w_from, "FROM",
                w_type, "TYPE", "TO");
        for (size_t i = 0; i < self->n_routes; i++) {
            const jx_route_config *route = &self->routes[i];
            fprintf(out, "  %4d  %-*s  %-*s  %-*s  ", route->line, w_label, route_column(route, i),
                    w_from, route->from, w_type, route->type);
            for (size_t k = 0; k < route->n_to; k++)
                fprintf(out, "%s%s", k ? ", " : "", route->to[k]);
            fprintf(out, "\n");
        }
    }
    fprintf(out, "\n");
    if (jx_route_table_print(self, out) < 0)
        return -1;
    return ferror(out) ? -1 : 0;
}
