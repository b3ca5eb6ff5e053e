/* http_api.c — the adapter's local HTTP/JSON API (libmicrohttpd), described
 * in docs/adapter-api.yaml.
 *
 *   GET  /v1/health                               link state and counts
 *   POST /v1/messages                             send (a submission, message_json.h)
 *   GET  /v1/messages?unconsumed=true&after=N     received messages, without payloads
 *   GET  /v1/messages/{sender}/{id}               one, with its payload
 *   POST /v1/messages/{sender}/{id}/consume       the agency system has taken it
 *   GET  /v1/receipts?since=N                     receipts after sequence N
 *   GET  /v1/receipts/{messageId}                 what became of one message
 *
 * Boundaries: the server listens on a loopback address only (checked by the
 * configuration loader and again here). The API has no authentication of its
 * own, so it also refuses what a web browser on the same machine could be
 * tricked into sending: a request with an Origin header, a Host header that
 * is not a loopback name (DNS rebinding), and a POST whose Content-Type is not
 * application/json (a cross-site form cannot send that without a CORS
 * preflight, which is never granted). The body size is checked against
 * Content-Length before any byte is read, and again while reading.
 *
 * libmicrohttpd runs every request on its one internal polling thread.
 */
#include "daemon.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    LIST_LIMIT_DEFAULT = 100,
    LIST_LIMIT_MAX = 1000,
};

struct jx_http_api {
    jx_daemon *daemon;
    struct MHD_Daemon *mhd;
    size_t max_body;
    int port;
};

typedef struct {
    char *body;
    size_t len;
    size_t capacity;
    bool too_large; /* the body went over the limit; len counts what was thrown away */
    bool answered;  /* a response was queued before the body was read */
} request;

/* ---- responses ---- */

static enum MHD_Result respond_json(struct MHD_Connection *connection, unsigned status,
                                    json_t *value)
{
    char *text = value ? json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);
    if (text == NULL) {
        static const char fallback[] = "{\"code\":\"SYSTEM\",\"reason\":\"out of memory\"}";
        text = strdup(fallback);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        if (text == NULL)
            return MHD_NO;
    }
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

/* Replaces every byte that does not belong to a valid UTF-8 sequence with
 * '?': a reason may quote a URL path or cut a quoted value in the middle of
 * a character, and JSON text must be UTF-8. */
static void make_utf8(char *text)
{
    unsigned char *p = (unsigned char *)text;
    while (*p) {
        size_t extra = *p < 0x80             ? 0
                       : (*p & 0xe0) == 0xc0 ? 1
                       : (*p & 0xf0) == 0xe0 ? 2
                       : (*p & 0xf8) == 0xf0 ? 3
                                             : 4;
        bool valid = extra < 4 && !(extra == 1 && *p < 0xc2);
        for (size_t i = 1; valid && i <= extra; i++)
            valid = (p[i] & 0xc0) == 0x80;
        if (!valid) {
            *p++ = '?';
            continue;
        }
        p += extra + 1;
    }
}

static enum MHD_Result respond_error(struct MHD_Connection *connection, unsigned status,
                                     const char *code, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result respond_error(struct MHD_Connection *connection, unsigned status,
                                     const char *code, const char *format, ...)
{
    char reason[JX_ERROR_MESSAGE_MAX + 64];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    make_utf8(reason);
    json_t *body = json_pack("{s:s, s:s}", "code", code, "reason", reason);
    if (body == NULL) {
        /* what make_utf8 does not catch (overlong forms, surrogates) */
        for (char *p = reason; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        body = json_pack("{s:s, s:s}", "code", code, "reason", reason);
    }
    return respond_json(connection, status, body);
}

static enum MHD_Result respond_jx_error(struct MHD_Connection *connection, unsigned status,
                                        const jx_error *err)
{
    return respond_error(connection, status, jx_error_code_name(err->code), "%s", err->message);
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *connection, const char *method,
                                          const char *url, const char *allowed)
{
    json_t *body = json_pack("{s:s, s:s}", "code", "METHOD_NOT_ALLOWED", "reason", "");
    char reason[300];
    snprintf(reason, sizeof reason, "%.16s is not allowed on %.200s; use %s", method, url, allowed);
    json_object_set_new(body, "reason", json_string(reason));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allowed);
    enum MHD_Result rc = MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, response);
    MHD_destroy_response(response);
    return rc;
}

/* ---- query arguments ---- */

/* A non-negative integer argument; -1 when it is present but not one. */
static long long query_integer(struct MHD_Connection *connection, const char *name,
                               long long fallback)
{
    const char *text = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, name);
    if (text == NULL || text[0] == '\0')
        return fallback;
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    return (*end != '\0' || value < 0) ? -1 : value;
}

/* ---- handlers ---- */

static enum MHD_Result get_health(jx_http_api *api, struct MHD_Connection *connection)
{
    jx_error link_error = {0}, err;
    jx_tls_dialer_state state = jx_adapter_link_state(api->daemon->adapter, &link_error);
    jx_adapter_store_counts counts;
    if (jx_adapter_store_count(api->daemon->store, &counts, &err) != 0)
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    json_t *link = json_pack("{s:s}", "state", jx_tls_dialer_state_name(state));
    if (link_error.code != JX_OK) {
        json_object_set_new(link, "lastErrorCode",
                            json_string(jx_error_code_name(link_error.code)));
        json_object_set_new(link, "lastError", json_string(link_error.message));
    }
    json_t *body = json_pack(
        "{s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:b}", "status",
        state == JX_TLS_DIALER_CONNECTED ? "ok" : "degraded", "agency",
        jx_adapter_agency(api->daemon->adapter), "link", link, "counts", "outboxPending",
        (json_int_t)counts.outbox_pending, "sent", (json_int_t)counts.sent, "inbox",
        (json_int_t)counts.inbox, "inboxUnconsumed", (json_int_t)counts.inbox_unconsumed,
        "receipts", (json_int_t)counts.receipts, "dropbox", api->daemon->conf->dropbox_dir != NULL);
    return respond_json(connection, MHD_HTTP_OK, body);
}

static bool is_json_content(struct MHD_Connection *connection)
{
    const char *type =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type == NULL)
        return false;
    size_t len = strlen("application/json");
    return strncasecmp(type, "application/json", len) == 0 &&
           (type[len] == '\0' || type[len] == ';' || type[len] == ' ');
}

static enum MHD_Result post_message(jx_http_api *api, struct MHD_Connection *connection, request *r)
{
    if (!is_json_content(connection))
        return respond_error(connection, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
                             "a message is sent as Content-Type: application/json");
    jx_submission submission;
    jx_error err;
    if (jx_submission_parse(r->body ? r->body : "", r->len, &submission, &err) != 0)
        return respond_jx_error(connection, MHD_HTTP_BAD_REQUEST, &err);
    char message_id[JX_MESSAGE_ID_MAX];
    bool duplicate = false;
    int rc = jx_daemon_send(api->daemon, &submission, message_id, &duplicate, &err);
    enum MHD_Result result;
    if (rc != 0) {
        unsigned status = err.code == JX_ERR_DUPLICATE ? MHD_HTTP_CONFLICT
                          : (err.code == JX_ERR_INVALID_ARGUMENT || err.code == JX_ERR_TOO_LARGE ||
                             err.code == JX_ERR_PAYLOAD_NOT_DECLARED_TYPE)
                              ? MHD_HTTP_BAD_REQUEST
                              : MHD_HTTP_INTERNAL_SERVER_ERROR;
        jx_daemon_log("level=warning event=http_send_failed code=%s reason=\"%s\"",
                      jx_error_code_name(err.code), err.message);
        result = respond_jx_error(connection, status, &err);
    } else {
        jx_daemon_log("level=info event=http_sent message_id=%s type=%s%s", message_id,
                      submission.type, duplicate ? " duplicate=true" : "");
        result =
            respond_json(connection, duplicate ? MHD_HTTP_OK : MHD_HTTP_ACCEPTED,
                         json_pack("{s:s, s:b}", "messageId", message_id, "duplicate", duplicate));
    }
    jx_submission_clear(&submission);
    return result;
}

typedef struct {
    json_t *array;
    int64_t last;
} listing;

static int list_inbox_entry(const jx_adapter_store_inbox_entry *entry, void *arg)
{
    listing *list = arg;
    json_array_append_new(list->array, jx_message_json_inbox_summary(entry));
    list->last = entry->sequence;
    return 0;
}

static enum MHD_Result get_messages(jx_http_api *api, struct MHD_Connection *connection)
{
    const char *unconsumed =
        MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "unconsumed");
    if (unconsumed && strcmp(unconsumed, "true") != 0 && strcmp(unconsumed, "false") != 0)
        return respond_error(connection, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT",
                             "query argument unconsumed must be true or false");
    long long after = query_integer(connection, "after", 0);
    long long limit = query_integer(connection, "limit", LIST_LIMIT_DEFAULT);
    if (after < 0 || limit < 1 || limit > LIST_LIMIT_MAX)
        return respond_error(connection, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT",
                             "query arguments: after must be a sequence number >= 0 and limit a "
                             "number from 1 to %d",
                             LIST_LIMIT_MAX);
    listing list = {.array = json_array(), .last = after};
    jx_error err;
    if (jx_adapter_store_inbox_list(api->daemon->store,
                                    unconsumed && strcmp(unconsumed, "true") == 0, after,
                                    (size_t)limit, list_inbox_entry, &list, &err) != 0) {
        json_decref(list.array);
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    }
    return respond_json(
        connection, MHD_HTTP_OK,
        json_pack("{s:o, s:I}", "messages", list.array, "next", (json_int_t)list.last));
}

/* sender and id come from the URL and are checked before they reach the
 * store; this answers the request when one of them is not valid. */
static enum MHD_Result bad_message_key(struct MHD_Connection *connection, const char *sender,
                                       const char *id)
{
    if (!jx_agency_id_is_valid(sender))
        return respond_error(connection, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT",
                             "\"%.64s\" in the path is not an agency id", sender);
    return respond_error(connection, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT",
                         "\"%.64s\" in the path is not a message id (a lower-case UUID)", id);
}

static enum MHD_Result get_message(jx_http_api *api, struct MHD_Connection *connection,
                                   const char *sender, const char *id)
{
    jx_adapter_store_inbox_entry *entry = NULL;
    jx_error err;
    int found = jx_adapter_store_inbox_get(api->daemon->store, sender, id, &entry, &err);
    if (found < 0)
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    if (found == 0)
        return respond_error(connection, MHD_HTTP_NOT_FOUND, "NOT_FOUND",
                             "no message %s from %s has been received", id, sender);
    json_t *message = jx_daemon_render_message(api->daemon, entry, &err);
    jx_adapter_store_inbox_entry_destroy(&entry);
    if (message == NULL)
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    return respond_json(connection, MHD_HTTP_OK, message);
}

static enum MHD_Result consume_message(jx_http_api *api, struct MHD_Connection *connection,
                                       const char *sender, const char *id)
{
    jx_error err;
    int rc = jx_adapter_store_inbox_consume(api->daemon->store, sender, id, jx_now_ms(), &err);
    if (rc < 0 && err.code == JX_ERR_NOT_FOUND)
        return respond_error(connection, MHD_HTTP_NOT_FOUND, "NOT_FOUND",
                             "no message %s from %s has been received", id, sender);
    if (rc < 0)
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    jx_daemon_log("level=info event=http_consumed sender=%s message_id=%s%s", sender, id,
                  rc == 0 ? " already=true" : "");
    return respond_json(connection, MHD_HTTP_OK,
                        json_pack("{s:s, s:s, s:b, s:b}", "sender", sender, "messageId", id,
                                  "consumed", 1, "alreadyConsumed", rc == 0));
}

typedef struct {
    json_t *array;
    int64_t last;
    bool evidence;
} receipt_listing;

static int list_receipt(const jx_adapter_store_receipt *receipt, void *arg)
{
    receipt_listing *list = arg;
    json_array_append_new(list->array, jx_message_json_receipt(receipt, list->evidence));
    list->last = receipt->sequence;
    return 0;
}

static enum MHD_Result get_receipts(jx_http_api *api, struct MHD_Connection *connection)
{
    long long since = query_integer(connection, "since", 0);
    long long limit = query_integer(connection, "limit", LIST_LIMIT_DEFAULT);
    const char *evidence =
        MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "evidence");
    if (since < 0 || limit < 1 || limit > LIST_LIMIT_MAX)
        return respond_error(connection, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT",
                             "query arguments: since must be a sequence number >= 0 and limit a "
                             "number from 1 to %d",
                             LIST_LIMIT_MAX);
    receipt_listing list = {.array = json_array(),
                            .last = since,
                            .evidence = evidence && strcmp(evidence, "true") == 0};
    jx_error err;
    if (jx_adapter_store_receipts_list(api->daemon->store, since, (size_t)limit, list_receipt,
                                       &list, &err) != 0) {
        json_decref(list.array);
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    }
    return respond_json(
        connection, MHD_HTTP_OK,
        json_pack("{s:o, s:I}", "receipts", list.array, "next", (json_int_t)list.last));
}

static enum MHD_Result get_message_receipts(jx_http_api *api, struct MHD_Connection *connection,
                                            const char *id)
{
    if (!jx_message_id_is_valid(id))
        return respond_error(connection, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT",
                             "\"%.64s\" in the path is not a message id (a lower-case UUID)", id);
    receipt_listing list = {.array = json_array(), .evidence = true};
    jx_adapter_store_sent_entry *sent = NULL;
    jx_error err;
    int found = jx_adapter_store_sent_get(api->daemon->store, id, &sent, &err);
    if (found < 0 ||
        jx_adapter_store_receipts_for(api->daemon->store, id, list_receipt, &list, &err) != 0) {
        json_decref(list.array);
        jx_adapter_store_sent_entry_destroy(&sent);
        return respond_jx_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, &err);
    }
    if (found == 0 && json_array_size(list.array) == 0) {
        json_decref(list.array);
        return respond_error(connection, MHD_HTTP_NOT_FOUND, "NOT_FOUND",
                             "this adapter has sent no message %s and has no receipt for it", id);
    }
    json_t *body = json_pack("{s:s}", "messageId", id);
    if (sent) {
        json_object_set_new(body, "status", json_string(sent->status));
        json_object_set_new(body, "type", json_string(sent->type));
        if (sent->case_id[0])
            json_object_set_new(body, "caseId", json_string(sent->case_id));
        json_object_set_new(body, "createdAtMs", json_integer(sent->created_at_ms));
        json_object_set_new(body, "updatedAtMs", json_integer(sent->updated_at_ms));
        json_object_set_new(body, "deliveredCount", json_integer(sent->delivered_count));
        json_object_set_new(body, "expiredCount", json_integer(sent->expired_count));
        json_object_set_new(body, "inOutbox", json_boolean(sent->in_outbox));
    }
    json_object_set_new(body, "receipts", list.array);
    jx_adapter_store_sent_entry_destroy(&sent);
    return respond_json(connection, MHD_HTTP_OK, body);
}

/* ---- routing ---- */

/* Splits url ("/v1/messages/A/B/consume") into at most max parts. */
static size_t split_path(char *url, char **parts, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *part = strtok_r(url, "/", &save); part;
         part = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return max + 1;
        parts[n++] = part;
    }
    return n;
}

static enum MHD_Result route(jx_http_api *api, struct MHD_Connection *connection, const char *url,
                             const char *method, request *r)
{
    char path[512];
    if (strlen(url) >= sizeof path)
        return respond_error(connection, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such resource");
    snprintf(path, sizeof path, "%s", url);
    char *parts[6];
    size_t n = split_path(path, parts, 5);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (n < 2 || strcmp(parts[0], "v1") != 0 || n > 5)
        goto not_found;
    if (n == 2 && strcmp(parts[1], "health") == 0)
        return get ? get_health(api, connection)
                   : method_not_allowed(connection, method, url, "GET");
    if (strcmp(parts[1], "messages") == 0) {
        if (n == 2) {
            if (post)
                return post_message(api, connection, r);
            return get ? get_messages(api, connection)
                       : method_not_allowed(connection, method, url, "GET, POST");
        }
        if (n == 4 || (n == 5 && strcmp(parts[4], "consume") == 0)) {
            if (!jx_agency_id_is_valid(parts[2]) || !jx_message_id_is_valid(parts[3]))
                return bad_message_key(connection, parts[2], parts[3]);
            if (n == 4)
                return get ? get_message(api, connection, parts[2], parts[3])
                           : method_not_allowed(connection, method, url, "GET");
            return post ? consume_message(api, connection, parts[2], parts[3])
                        : method_not_allowed(connection, method, url, "POST");
        }
    }
    if (strcmp(parts[1], "receipts") == 0 && n <= 3) {
        if (!get)
            return method_not_allowed(connection, method, url, "GET");
        return n == 2 ? get_receipts(api, connection)
                      : get_message_receipts(api, connection, parts[2]);
    }
not_found:
    return respond_error(connection, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no resource %.200s", url);
}

/* Host must name the loopback interface: a page that rebinds its own DNS
 * name to 127.0.0.1 still sends its name in Host. */
static bool host_is_loopback(const char *host)
{
    if (host == NULL)
        return true; /* HTTP/1.0 clients may omit it */
    char name[128];
    snprintf(name, sizeof name, "%s", host);
    char *colon = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    if (name[0] == '[') {
        if (colon == NULL)
            return false;
        colon[1] = '\0';
        return strcmp(name, "[::1]") == 0;
    }
    if (colon)
        *colon = '\0';
    if (strcasecmp(name, "localhost") == 0)
        return true;
    struct in_addr address;
    return inet_pton(AF_INET, name, &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    jx_http_api *api = cls;
    request *r = *con_cls;
    if (r == NULL) {
        /* First call: headers only. Refuse early what must not be read. */
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        if (MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Origin") != NULL) {
            r->answered = true;
            return respond_error(connection, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                                 "requests from web pages (with an Origin header) are refused");
        }
        if (!host_is_loopback(
                MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))) {
            r->answered = true;
            return respond_error(connection, MHD_HTTP_FORBIDDEN, "FORBIDDEN",
                                 "the Host header must name the loopback interface");
        }
        const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > api->max_body) {
            r->answered = true;
            return respond_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, "TOO_LARGE",
                                 "the request body has %s bytes; the limit is %zu", length,
                                 api->max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t chunk = *upload_data_size;
        *upload_data_size = 0;
        if (r->answered)
            return MHD_YES;
        if (r->too_large || r->len + chunk > api->max_body) {
            /* Chunked, or lying about its length. libmicrohttpd 0.9 cannot
             * answer before the body is read, so the rest is read and thrown
             * away (memory stays bounded) and 413 follows; a client that
             * goes on far past the limit is cut off. */
            if (!r->too_large) {
                r->too_large = true;
                free(r->body);
                r->body = NULL;
                r->capacity = 0;
            }
            r->len += chunk;
            return r->len > 4 * api->max_body ? MHD_NO : MHD_YES;
        }
        if (r->len + chunk + 1 > r->capacity) {
            size_t capacity = r->capacity ? r->capacity : 4096;
            while (capacity < r->len + chunk + 1)
                capacity *= 2;
            char *bigger = realloc(r->body, capacity);
            if (bigger == NULL)
                return MHD_NO;
            r->body = bigger;
            r->capacity = capacity;
        }
        memcpy(r->body + r->len, upload_data, chunk);
        r->len += chunk;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->answered)
        return MHD_YES;
    if (r->too_large)
        return respond_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, "TOO_LARGE",
                             "the request body is larger than the limit of %zu bytes",
                             api->max_body);
    return route(api, connection, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)connection;
    (void)code;
    request *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void on_mhd_error(void *cls, const char *format, va_list args)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, format, args);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    for (char *p = text; *p; p++)
        if (*p == '"')
            *p = '\'';
    jx_daemon_log("level=warning event=http_error detail=\"%s\"", text);
}

jx_http_api *jx_http_api_new(jx_daemon *daemon, const char *listen, size_t max_body_bytes,
                             jx_error *err)
{
    struct sockaddr_storage address;
    socklen_t address_len;
    if (jx_adapter_conf_parse_loopback(listen, &address, &address_len, err) != 0)
        return NULL;
    jx_http_api *self = calloc(1, sizeof *self);
    if (self == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "out of memory starting the HTTP API");
        return NULL;
    }
    self->daemon = daemon;
    self->max_body = max_body_bytes ? max_body_bytes : JX_ADAPTER_CONF_HTTP_BODY_DEFAULT;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = address.ss_family == AF_INET6
                        ? ntohs(((struct sockaddr_in6 *)&address)->sin6_port)
                        : ntohs(((struct sockaddr_in *)&address)->sin_port);
    /* The logger goes first, or libmicrohttpd prints to stderr on its own. */
    self->mhd = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, self, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (self->mhd == NULL) {
        jx_error_set(err, JX_ERR_IO, "cannot listen on %s for the HTTP API (in use?)", listen);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->mhd, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? (int)info->port : (int)port;
    return self;
}

void jx_http_api_destroy(jx_http_api **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    if ((*self_p)->mhd)
        MHD_stop_daemon((*self_p)->mhd);
    free(*self_p);
    *self_p = NULL;
}

int jx_http_api_port(const jx_http_api *self)
{
    return self->port;
}
