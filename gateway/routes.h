/* routes.h — where a message goes: routing decisions over a loaded configuration.
 *
 * Rules (docs/configuration.md, "Routing"):
 *  - the sender must be a defined agency whose send list covers the type;
 *  - with no recipients in the header, the message goes to the union, in
 *    route order and without duplicates, of `to` of every route matching
 *    (sender, type), leaving out the sender itself and agencies that may not
 *    receive the type; an empty union is NOT_PERMITTED;
 *  - with recipients in the header, each must be a defined agency
 *    (UNKNOWN_RECIPIENT), may receive the type and be in `to` of a route
 *    matching (sender, type) (NOT_PERMITTED otherwise); duplicates collapse.
 *
 * The loader precomputes, for every (agency, document type), the recipients
 * the routes give and the first route that names each, so a decision costs a
 * binary search for the sender and a scan of a short list; it allocates only
 * when a decision's buffer must grow (reuse one jx_route_decision per
 * thread and it stops allocating).
 */
#ifndef JX_GATEWAY_ROUTES_H
#define JX_GATEWAY_ROUTES_H

#include "config.h"
#include "error.h"

#include <stddef.h>
#include <stdio.h>

/* One recipient of a decision and the route that allowed it. Strings are
 * borrowed from the configuration the decision was made with. */
typedef struct {
    const char *agency;      /* recipient agency id */
    size_t agency_index;     /* index in cfg->agencies */
    size_t route_index;      /* index in cfg->routes (0-based) */
    const char *route_label; /* the route's name, or "route #N" */
} jx_route_recipient;

/* Zero-initialise ({0}) before first use; release with
 * jx_route_decision_release. Each resolve overwrites the previous content. */
typedef struct {
    jx_route_recipient *recipients;
    size_t count;
    size_t capacity;
} jx_route_decision;

/* Decides the recipients of a message of `type` from `sender`, with the
 * header's recipients `requested` (n_requested may be 0). Returns 0 and fills
 * out, or -1 with err: NOT_PERMITTED (sender may not send the type, no route,
 * recipient not allowed), UNKNOWN_RECIPIENT (a requested recipient is not a
 * defined agency), UNKNOWN_TYPE (type is not in the registry; a protocol
 * type such as Ack is NOT_PERMITTED), SYSTEM (out of memory). The sentences quote untrusted names
 * sanitised and shortened. */
int jx_routes_resolve(const jx_gateway_config *cfg, const char *sender, const char *type,
                      const char *const *requested, size_t n_requested, jx_route_decision *out,
                      jx_error *err);

void jx_route_decision_release(jx_route_decision *decision);

/* Writes in words where a message of `type` from `sender` (with those
 * requested recipients) would go and by which route, or why it would be
 * refused, for the explain command. Returns 0 when the message would be
 * routed, 1 when it would be refused, -1 when out reports a write error. */
int jx_routes_explain(const jx_gateway_config *cfg, const char *sender, const char *type,
                      const char *const *requested, size_t n_requested, FILE *out);

/* Used by the loader: precomputes the routing table of a validated
 * configuration into cfg->table. */
int jx_route_table_build(jx_gateway_config *cfg, jx_error *err);
void jx_route_table_destroy(jx_route_table **self_p);

/* Writes the effective routing (for each sender and type, the recipients
 * and routes) as a table; part of jx_gateway_config_print. */
int jx_route_table_print(const jx_gateway_config *cfg, FILE *out);

#endif
