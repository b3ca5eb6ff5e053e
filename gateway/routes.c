/* routes.c — routing decisions: the precomputed table, resolve, explain.
 *
 * The table has one cell per (agency, registry type). A cell lists, in route
 * order and without duplicates, the recipients that the routes matching
 * (that agency as sender, that type) give, each with the first route that
 * names it; the sender itself and agencies that may not receive the type are
 * left out, and a cell is empty when the agency may not send the type. It is
 * built once per configuration, so resolving is a binary search for the
 * sender, a bit test and a scan of one short list.
 *
 * Names in error sentences may come from a message header (untrusted): they
 * are quoted through quote(), which keeps printable ASCII and shortens.
 */
#include "routes.h"

#include "registry.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t start;
    size_t count;
} route_cell;

struct jx_route_table {
    size_t n_types;
    route_cell *cells;              /* [agency * n_types + type] */
    jx_route_recipient *recipients; /* the cells' lists, back to back */
    size_t n_recipients;
};

enum { QUOTE_MAX = 80 };

/* Printable ASCII only, at most 64 characters, for sentences. */
static const char *quote(char out[QUOTE_MAX], const char *text)
{
    if (text == NULL)
        return "(none)";
    size_t n = 0;
    for (const char *p = text; *p && n < 64; p++)
        out[n++] = (*p >= ' ' && *p <= '~') ? *p : '?';
    out[n] = '\0';
    if (strlen(text) > 64)
        memcpy(out + n, "...", 4);
    return out;
}

static bool bit(uint64_t bits, size_t index)
{
    return (bits >> index) & 1u;
}

/* ---- building ---- */

int jx_route_table_build(jx_gateway_config *cfg, jx_error *err)
{
    size_t n_types;
    jx_registry_all(&n_types);
    jx_route_table *table = calloc(1, sizeof *table);
    bool *matches = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *matches);
    if (table == NULL || matches == NULL)
        goto out_of_memory;
    table->n_types = n_types;
    table->cells = calloc(cfg->n_agencies * n_types, sizeof *table->cells);
    if (table->cells == NULL)
        goto out_of_memory;

    size_t capacity = 0;
    for (size_t a = 0; a < cfg->n_agencies; a++) {
        const jx_agency_config *sender = &cfg->agencies[a];
        for (size_t r = 0; r < cfg->n_routes; r++)
            matches[r] = fnmatch(cfg->routes[r].from, sender->id, 0) == 0;
        for (size_t t = 0; t < n_types; t++) {
            route_cell *cell = &table->cells[a * n_types + t];
            cell->start = table->n_recipients;
            if (!bit(sender->send_types, t))
                continue;
            for (size_t r = 0; r < cfg->n_routes; r++) {
                const jx_route_config *route = &cfg->routes[r];
                if (!matches[r] || !bit(route->types, t))
                    continue;
                for (size_t k = 0; k < route->n_to; k++) {
                    size_t q = route->to_agency[k];
                    if (q == a || !bit(cfg->agencies[q].receive_types, t))
                        continue;
                    bool seen = false;
                    for (size_t i = 0; i < cell->count && !seen; i++)
                        seen = table->recipients[cell->start + i].agency_index == q;
                    if (seen)
                        continue;
                    if (table->n_recipients == capacity) {
                        size_t bigger = capacity ? 2 * capacity : 64;
                        jx_route_recipient *grown =
                            realloc(table->recipients, bigger * sizeof *grown);
                        if (grown == NULL)
                            goto out_of_memory;
                        table->recipients = grown;
                        capacity = bigger;
                    }
                    table->recipients[table->n_recipients++] = (jx_route_recipient){
                        .agency = cfg->agencies[q].id,
                        .agency_index = q,
                        .route_index = r,
                        .route_label = route->label,
                    };
                    cell->count++;
                }
            }
        }
    }
    free(matches);
    cfg->table = table;
    return 0;
out_of_memory:
    free(matches);
    jx_route_table_destroy(&table);
    return jx_error_set(err, JX_ERR_SYSTEM, "out of memory while building the route table");
}

void jx_route_table_destroy(jx_route_table **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->cells);
    free((*self_p)->recipients);
    free(*self_p);
    *self_p = NULL;
}

/* ---- resolving ---- */

void jx_route_decision_release(jx_route_decision *decision)
{
    if (decision == NULL)
        return;
    free(decision->recipients);
    decision->recipients = NULL;
    decision->count = 0;
    decision->capacity = 0;
}

static int reserve(jx_route_decision *out, size_t n, jx_error *err)
{
    if (out->capacity >= n)
        return 0;
    size_t bigger = out->capacity ? out->capacity : 4;
    while (bigger < n)
        bigger *= 2;
    jx_route_recipient *grown = realloc(out->recipients, bigger * sizeof *grown);
    if (grown == NULL)
        return jx_error_set(err, JX_ERR_SYSTEM, "out of memory while routing");
    out->recipients = grown;
    out->capacity = bigger;
    return 0;
}

/* The type's index in the registry, or -1 with err. */
static long document_type_index(const char *type, jx_error *err)
{
    char q[QUOTE_MAX];
    const jx_message_type *found = jx_registry_find(type);
    if (found == NULL) {
        jx_error_set(err, JX_ERR_UNKNOWN_TYPE, "%s is not a message type this gateway knows",
                     quote(q, type));
        return -1;
    }
    if (!found->is_document) {
        jx_error_set(err, JX_ERR_NOT_PERMITTED,
                     "%s is a protocol message, not a document: the gateway does not route it",
                     found->name);
        return -1;
    }
    size_t n;
    return (long)(found - jx_registry_all(&n));
}

/* Checks the sender and the type; the cell of their routes. */
static const route_cell *sender_cell(const jx_gateway_config *cfg, const char *sender,
                                     const char *type, long *sender_index, jx_error *err)
{
    char q[QUOTE_MAX];
    long t = document_type_index(type, err);
    if (t < 0)
        return NULL;
    long a = jx_gateway_config_agency_index(cfg, sender);
    if (a < 0) {
        jx_error_set(err, JX_ERR_NOT_PERMITTED, "the sender %s is not an agency of this gateway",
                     quote(q, sender));
        return NULL;
    }
    if (!bit(cfg->agencies[a].send_types, (size_t)t)) {
        jx_error_set(err, JX_ERR_NOT_PERMITTED, "%s may not send %s", cfg->agencies[a].id, type);
        return NULL;
    }
    *sender_index = a;
    return &cfg->table->cells[(size_t)a * cfg->table->n_types + (size_t)t];
}

int jx_routes_resolve(const jx_gateway_config *cfg, const char *sender, const char *type,
                      const char *const *requested, size_t n_requested, jx_route_decision *out,
                      jx_error *err)
{
    if (cfg == NULL || out == NULL || (n_requested > 0 && requested == NULL))
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "jx_routes_resolve: missing argument");
    out->count = 0;
    long a;
    const route_cell *cell = sender_cell(cfg, sender, type, &a, err);
    if (cell == NULL)
        return -1;
    const jx_route_recipient *routed = cfg->table->recipients + cell->start;

    if (n_requested == 0) {
        if (cell->count == 0)
            return jx_error_set(err, JX_ERR_NOT_PERMITTED, "no route carries %s from %s", type,
                                cfg->agencies[a].id);
        if (reserve(out, cell->count, err) < 0)
            return -1;
        memcpy(out->recipients, routed, cell->count * sizeof *routed);
        out->count = cell->count;
        return 0;
    }

    if (reserve(out, n_requested, err) < 0)
        return -1;
    char q[QUOTE_MAX];
    for (size_t i = 0; i < n_requested; i++) {
        long r = jx_gateway_config_agency_index(cfg, requested[i]);
        if (r < 0) {
            out->count = 0;
            return jx_error_set(err, JX_ERR_UNKNOWN_RECIPIENT,
                                "the recipient %s is not an agency of this gateway",
                                quote(q, requested[i]));
        }
        bool duplicate = false;
        for (size_t k = 0; k < out->count && !duplicate; k++)
            duplicate = out->recipients[k].agency_index == (size_t)r;
        if (duplicate)
            continue;
        const char *id = cfg->agencies[r].id;
        const jx_route_recipient *found = NULL;
        for (size_t k = 0; k < cell->count && found == NULL; k++)
            if (routed[k].agency_index == (size_t)r)
                found = &routed[k];
        if (found == NULL) {
            out->count = 0;
            if (r == a)
                return jx_error_set(err, JX_ERR_NOT_PERMITTED,
                                    "%s may not address a message to itself", id);
            size_t t = (size_t)(cell - cfg->table->cells) % cfg->table->n_types;
            if (!bit(cfg->agencies[r].receive_types, t))
                return jx_error_set(err, JX_ERR_NOT_PERMITTED,
                                    "the recipient %s may not receive %s", id, type);
            return jx_error_set(err, JX_ERR_NOT_PERMITTED, "no route carries %s from %s to %s",
                                type, cfg->agencies[a].id, id);
        }
        out->recipients[out->count++] = *found;
    }
    return 0;
}

/* ---- explaining ---- */

static void print_route(const jx_gateway_config *cfg, size_t r, FILE *out)
{
    const jx_route_config *route = &cfg->routes[r];
    fprintf(out, "    %s (line %d): from %s, type %s, to ", route->label, route->line, route->from,
            route->type);
    for (size_t k = 0; k < route->n_to; k++)
        fprintf(out, "%s%s", k ? ", " : "", route->to[k]);
    fprintf(out, "\n");
}

int jx_routes_explain(const jx_gateway_config *cfg, const char *sender, const char *type,
                      const char *const *requested, size_t n_requested, FILE *out)
{
    char q1[QUOTE_MAX], q2[QUOTE_MAX];
    jx_error err = {0};
    jx_route_decision decision = {0};
    int verdict = jx_routes_resolve(cfg, sender, type, requested, n_requested, &decision, &err);
    if (verdict < 0 && err.code == JX_ERR_SYSTEM) {
        fprintf(out, "cannot explain: %s\n", err.message);
        return -1;
    }

    const jx_agency_config *agency = jx_gateway_config_find_agency(cfg, sender);
    fprintf(out, "A message of type %s from %s", quote(q1, type), quote(q2, sender));
    if (agency && strcmp(agency->name, agency->id) != 0)
        fprintf(out, " (%s)", agency->name);
    if (n_requested == 0) {
        fprintf(out, ", with no recipients in its header, so the routes decide:\n");
    } else {
        fprintf(out, ", addressed in its header to ");
        for (size_t i = 0; i < n_requested; i++)
            fprintf(out, "%s%s", i ? ", " : "", quote(q1, requested[i]));
        fprintf(out, ":\n");
    }

    const jx_message_type *found = jx_registry_find(type);
    size_t n_types;
    const jx_message_type *types = jx_registry_all(&n_types);
    size_t t = found ? (size_t)(found - types) : 0;
    if (agency == NULL)
        fprintf(out, "  %s is not an agency of this gateway.\n", quote(q1, sender));
    if (agency && found && found->is_document && !bit(agency->send_types, t)) {
        fprintf(out, "  %s may not send %s: its 'send' list (agency on line %d) allows ",
                agency->id, type, agency->line);
        bool first = true;
        for (size_t i = 0; i < n_types; i++)
            if (bit(agency->send_types, i)) {
                fprintf(out, "%s%s", first ? "" : ", ", types[i].name);
                first = false;
            }
        fprintf(out, "%s.\n", first ? "nothing" : "");
    } else if (agency && found && found->is_document) {
        fprintf(out, "  %s may send %s (agency on line %d).\n", agency->id, type, agency->line);
        /* Every route that matches, and what each contributes or why not. */
        bool any = false;
        for (size_t r = 0; r < cfg->n_routes; r++) {
            const jx_route_config *route = &cfg->routes[r];
            if (fnmatch(route->from, agency->id, 0) != 0 || !bit(route->types, t))
                continue;
            if (!any)
                fprintf(out, "  Routes matching (%s, %s):\n", agency->id, type);
            any = true;
            print_route(cfg, r, out);
            for (size_t k = 0; k < route->n_to; k++) {
                const jx_agency_config *to = &cfg->agencies[route->to_agency[k]];
                if (to == agency)
                    fprintf(out, "      leaves out %s: that is the sender itself\n", to->id);
                else if (!bit(to->receive_types, t))
                    fprintf(out, "      leaves out %s: it may not receive %s\n", to->id, type);
            }
        }
        if (!any)
            fprintf(out, "  No route matches (%s, %s).\n", agency->id, type);
    }

    if (verdict < 0) {
        fprintf(out, "Refused (%s): %s.\n", jx_error_code_name(err.code), err.message);
    } else {
        fprintf(out, "Accepted for %zu recipient%s:\n", decision.count,
                decision.count == 1 ? "" : "s");
        int width = 0;
        for (size_t i = 0; i < decision.count; i++)
            if ((int)strlen(decision.recipients[i].agency) > width)
                width = (int)strlen(decision.recipients[i].agency);
        for (size_t i = 0; i < decision.count; i++) {
            const jx_route_recipient *recipient = &decision.recipients[i];
            fprintf(out, "  -> %-*s  by %s (line %d)\n", width, recipient->agency,
                    recipient->route_label, cfg->routes[recipient->route_index].line);
        }
    }
    jx_route_decision_release(&decision);
    if (ferror(out))
        return -1;
    return verdict < 0 ? 1 : 0;
}

/* ---- the effective table ---- */

int jx_route_table_print(const jx_gateway_config *cfg, FILE *out)
{
    size_t n_types;
    const jx_message_type *types = jx_registry_all(&n_types);
    int w_from = (int)strlen("FROM"), w_type = (int)strlen("TYPE");
    for (size_t a = 0; a < cfg->n_agencies; a++)
        for (size_t t = 0; t < n_types; t++)
            if (bit(cfg->agencies[a].send_types, t)) {
                if ((int)strlen(cfg->agencies[a].id) > w_from)
                    w_from = (int)strlen(cfg->agencies[a].id);
                if ((int)strlen(types[t].name) > w_type)
                    w_type = (int)strlen(types[t].name);
            }
    fprintf(out, "effective routing (messages without recipients in the header)\n");
    fprintf(out, "  %-*s  %-*s  %s\n", w_from, "FROM", w_type, "TYPE", "TO (BY ROUTE)");
    for (size_t a = 0; a < cfg->n_agencies; a++) {
        for (size_t t = 0; t < n_types; t++) {
            if (!bit(cfg->agencies[a].send_types, t))
                continue;
            const route_cell *cell = &cfg->table->cells[a * n_types + t];
            fprintf(out, "  %-*s  %-*s  ", w_from, cfg->agencies[a].id, w_type, types[t].name);
            if (cell->count == 0)
                fprintf(out, "(no route: refused)");
            for (size_t i = 0; i < cell->count; i++) {
                const jx_route_recipient *recipient = &cfg->table->recipients[cell->start + i];
                const jx_route_config *route = &cfg->routes[recipient->route_index];
                if (route->name)
                    fprintf(out, "%s%s (%s)", i ? ", " : "", recipient->agency, route->name);
                else
                    fprintf(out, "%s%s (#%zu)", i ? ", " : "", recipient->agency,
                            recipient->route_index + 1);
            }
            fprintf(out, "\n");
        }
    }
    return ferror(out) ? -1 : 0;
}
