/* zmtp.h — checks and rewrites the start of a client's ZMTP 3.x stream; no I/O.
 *
 * The TLS front end (tls_frontend.c) sits between an agency's DEALER and the
 * gateway's ROUTER. Before it relays a client's bytes unchanged it passes them
 * through a jx_zmtp_filter, which
 *   - checks the greeting (RFC 23 / RFC 37): signature, major version >= 3,
 *     mechanism NULL; a greeting is forwarded only as far as it has been
 *     checked, so a refused one never reaches the ROUTER complete;
 *   - replaces the READY command by one whose "Identity" property is the
 *     routing id the front end chose from the verified certificate; any
 *     Identity the peer sent is dropped, every other property is kept.
 * After READY the filter is done and bytes flow through untouched.
 *
 * This is the one place that parses untrusted ZMTP bytes; it has a fuzz
 * harness (tests/fuzz/fuzz_zmtp.c). Every length is checked before the bytes
 * it covers are read.
 *
 * Routing ids are "<AGENCY-ID>/<serial>", e.g. "KG-PROBATION/17": the agency
 * from the certificate, then a serial the front end gives each connection so
 * that one agency can have several adapters connected at once.
 */
#ifndef JX_ZMTP_H
#define JX_ZMTP_H

#include "error.h"
#include "trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    JX_ZMTP_SIGNATURE_SIZE = 10,
    JX_ZMTP_GREETING_SIZE = 64,
    /* Largest READY body accepted from a client: Socket-Type, Identity and a
     * few application metadata properties fit many times over. */
    JX_ZMTP_READY_BODY_MAX = 8192,
    /* ZMTP limits an identity to 255 octets. */
    JX_ZMTP_ROUTING_ID_MAX = 255,
    /* Most bytes one jx_zmtp_filter_push can write to its output: the whole
     * greeting, then a READY frame with a long header and our Identity. */
    JX_ZMTP_FILTER_OUTPUT_MAX =
        JX_ZMTP_GREETING_SIZE + 9 + JX_ZMTP_READY_BODY_MAX + 1 + 8 + 4 + JX_ZMTP_ROUTING_ID_MAX,
};

/* What a complete greeting said. */
typedef struct {
    uint8_t major;
    uint8_t minor;
    char mechanism[21]; /* NUL-terminated; always "NULL" once accepted */
    bool as_server;
} jx_zmtp_greeting;

/* Checks the first len bytes a client sent as its greeting.
 * Returns -1 with err PROTOCOL when they cannot start an acceptable greeting;
 * 0 when more bytes are needed, with *checked_len the number of leading bytes
 * checked so far (safe to forward); 1 when the first 64 bytes are an
 * acceptable greeting (*checked_len = 64; greeting filled when not NULL). */
int jx_zmtp_greeting_check(const uint8_t *bytes, size_t len, size_t *checked_len,
                           jx_zmtp_greeting *greeting, jx_error *err);

/* Reads one READY command frame at the start of in and writes its rewrite to
 * out: the same properties in the same order without any "Identity"
 * (compared case-insensitively), then Identity = routing_id.
 * Returns -1 with err PROTOCOL when in does not start with an acceptable READY
 * command (or err INVALID_ARGUMENT when out_cap or routing_id are unusable),
 * 0 when in is a correct but incomplete prefix, 1 when done: *in_used bytes
 * of in were the READY frame, *out_len bytes were written to out. out_cap must
 * be at least JX_ZMTP_FILTER_OUTPUT_MAX - JX_ZMTP_GREETING_SIZE. */
int jx_zmtp_ready_rewrite(const uint8_t *in, size_t in_len, const uint8_t *routing_id,
                          size_t routing_id_len, uint8_t *out, size_t out_cap, size_t *in_used,
                          size_t *out_len, jx_error *err);

/* Writes "<agency>/<serial>" into out (NUL-terminated). Returns its length,
 * or -1 with err INVALID_ARGUMENT when agency is not a valid agency id. */
int jx_zmtp_routing_id_make(const char *agency, uint64_t serial,
                            char out[JX_ZMTP_ROUTING_ID_MAX + 1], jx_error *err);

/* Reads the agency id back from a routing id the front end made (as the
 * gateway's ROUTER reports it in the first frame of a message). Returns 0, or
 * -1 with err INVALID_ARGUMENT when routing_id is not of that form. */
int jx_zmtp_routing_id_agency(const uint8_t *routing_id, size_t len, char agency[JX_AGENCY_ID_MAX],
                              jx_error *err);

/* A filter over the client-to-gateway byte stream of one connection. */
typedef struct jx_zmtp_filter jx_zmtp_filter;

/* Makes a filter that gives the connection routing_id (1..255 bytes, not
 * starting with a zero byte, which libzmq reserves). NULL and err on failure. */
jx_zmtp_filter *jx_zmtp_filter_new(const uint8_t *routing_id, size_t routing_id_len, jx_error *err);
void jx_zmtp_filter_destroy(jx_zmtp_filter **self_p);

/* Feeds in_len client bytes. Writes the bytes to forward to out (out_cap must
 * be at least JX_ZMTP_FILTER_OUTPUT_MAX) and their number to *out_len.
 * Returns -1 with err PROTOCOL when the client must be refused (and keeps
 * refusing afterwards); 0 when all input was taken and more is needed; 1 when
 * the READY command has been rewritten: *in_used bytes of in were taken, the
 * rest (and everything after) must be relayed unchanged. */
int jx_zmtp_filter_push(jx_zmtp_filter *self, const uint8_t *in, size_t in_len, size_t *in_used,
                        uint8_t *out, size_t out_cap, size_t *out_len, jx_error *err);

/* True once READY has been rewritten. */
bool jx_zmtp_filter_done(const jx_zmtp_filter *self);

#endif
