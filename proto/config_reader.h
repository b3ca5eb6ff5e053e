/* config_reader.h — reads settings out of a parsed libconfig file and says
 * precisely what is wrong with them.
 *
 * The gateway's and the adapter's configuration loaders both walk a libconfig
 * tree the same way: each group is checked for unknown names before its
 * settings are read, so a typo is reported as a typo (with a suggestion, or
 * the group the setting belongs in) and not as the missing setting it hides;
 * every value is checked for its type and range; the first problem stops the
 * load. This module holds that shared walk; the loaders keep only what is
 * theirs (the settings they know, units, cross-checks).
 *
 * Invariants:
 *  - every failure fills the caller's jx_error with JX_ERR_CONFIG and
 *    "<file>:<line>: <problem>" (or "<file>: <problem>" when there is no
 *    line), the file as the caller named it; out of memory is JX_ERR_SYSTEM;
 *  - every path a reader returns is absolute: a relative one is taken
 *    relative to the directory of the file, so a process may chdir freely;
 *  - text settings are non-empty, at most 1024 characters and hold no
 *    control characters.
 *
 * Ownership: strings and lists a reader returns belong to the caller (free
 * lists with jx_config_reader_free_list); the reader borrows the caller's
 * jx_error and group table, which must outlive it.
 */
#ifndef JX_CONFIG_READER_H
#define JX_CONFIG_READER_H

#include "error.h"

#include <libconfig.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jx_config_reader jx_config_reader;

/* A group of a file and the names it may hold; the table of all of them
 * lets "unknown setting 'poll_ms' in adapter" add "(it belongs in
 * adapter.dropbox)". */
typedef struct {
    const char *where;        /* "the top level", "gateway.tls", "an agency" */
    const char *const *names; /* NULL-terminated */
} jx_config_reader_group;

/* A reader for the file at path (copied), whose directory must exist:
 * relative paths in the file are taken from it. Problems are reported into
 * err for the reader's whole life. NULL with err filled (JX_ERR_IO when the
 * directory cannot be resolved) on failure. */
jx_config_reader *jx_config_reader_new(const char *path, const jx_config_reader_group *groups,
                                       size_t n_groups, jx_error *err);
void jx_config_reader_destroy(jx_config_reader **self_p);

/* The absolute directory of the file (borrowed). */
const char *jx_config_reader_directory(const jx_config_reader *self);

/* Fill the error with the problem at setting's line (no line when setting
 * is NULL or has none) or at line (none when 0); both return -1. */
int jx_config_reader_fail_at(jx_config_reader *self, const config_setting_t *setting,
                             const char *format, ...) __attribute__((format(printf, 3, 4)));
int jx_config_reader_fail_line(jx_config_reader *self, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills the error with JX_ERR_SYSTEM "<file>: out of memory ..."; -1. */
int jx_config_reader_out_of_memory(jx_config_reader *self);

/* A copy of text for the caller, or NULL with the out-of-memory error. */
char *jx_config_reader_copy(jx_config_reader *self, const char *text);

/* "an integer", "a group { ... }": a libconfig type in words. */
const char *jx_config_reader_type_words(int type);

/* Edit distance counting a swap of neighbours as one edit (optimal string
 * alignment), since "sned" for "send" is a typo like any other. Names of 64
 * characters or more are never close (SIZE_MAX). */
size_t jx_config_reader_edit_distance(const char *a, const char *b);

/* The candidate closest to word within a distance that still looks like a
 * typo (1 for words of up to 4 characters, 2 up to 8, else 3), or NULL. */
const char *jx_config_reader_closest(const char *word, const char *const *candidates, size_t n);

/* Every member of group must be one of names (NULL-terminated); where
 * names group in sentences ("gateway.tls"). */
int jx_config_reader_check_members(jx_config_reader *self, const config_setting_t *group,
                                   const char *where, const char *const *names);

/* The group name of parent; *out NULL when it is optional and absent. */
int jx_config_reader_get_group(jx_config_reader *self, const config_setting_t *parent,
                               const char *where, const char *name, bool required,
                               config_setting_t **out);

/* A text setting copied into *out, which stays NULL when the setting is
 * optional and absent; found (may be NULL) gets the setting or NULL. */
int jx_config_reader_get_string(jx_config_reader *self, const config_setting_t *group,
                                const char *where, const char *name, bool required, char **out,
                                const config_setting_t **found);

/* A list or array of text settings, copied into a NULL-terminated list of
 * *n strings. A required one must hold at least one; an optional one may be
 * empty, or absent (*out NULL, *n 0). found (may be NULL) gets the setting
 * or NULL. On failure *out is NULL. */
int jx_config_reader_get_string_list(jx_config_reader *self, const config_setting_t *group,
                                     const char *where, const char *name, bool required,
                                     char ***out, size_t *n, const config_setting_t **found);

/* Like get_string and get_string_list, with each path made absolute against
 * the file's directory. line (may be NULL) gets the setting's line, 0 when
 * it is absent, for problems found later with the files named. */
int jx_config_reader_get_path(jx_config_reader *self, const config_setting_t *group,
                              const char *where, const char *name, bool required, char **out,
                              int *line);
int jx_config_reader_get_path_list(jx_config_reader *self, const config_setting_t *group,
                                   const char *where, const char *name, bool required, char ***out,
                                   size_t *n, int *line);

/* An integer setting as libconfig read it: *found NULL (and *value untouched)
 * when group (which may be NULL: an optional group that is absent) has no
 * such member, -1 when the setting is not an integer. */
int jx_config_reader_find_integer(jx_config_reader *self, const config_setting_t *group,
                                  const char *where, const char *name,
                                  const config_setting_t **found, int64_t *value);

/* An integer setting from min to max, fallback when absent (group may be
 * NULL: an optional group that is absent). */
int jx_config_reader_get_integer(jx_config_reader *self, const config_setting_t *group,
                                 const char *where, const char *name, int64_t fallback, int64_t min,
                                 int64_t max, int64_t *out);

/* Frees n strings of a list the reader made, and the list; NULL is fine. */
void jx_config_reader_free_list(char **list, size_t n);

#endif
