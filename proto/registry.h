/* registry.h — the message types justx knows: type name <-> protobuf-c descriptor.
 *
 * A type name is the fully qualified protobuf name ("justx.v1.SentenceOrder").
 * Documents are what agencies send each other; protocol types (Ack, Receipt)
 * travel in envelopes too but are produced by adapters and the gateway.
 */
#ifndef JX_REGISTRY_H
#define JX_REGISTRY_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;
    const ProtobufCMessageDescriptor *descriptor;
    bool is_document;
} jx_message_type;

/* The type with that name, or NULL. */
const jx_message_type *jx_registry_find(const char *name);

/* All known types; *count receives their number. */
const jx_message_type *jx_registry_all(size_t *count);

#endif
