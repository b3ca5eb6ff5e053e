/* config_reader.c — reads settings out of a parsed libconfig file and says
 * precisely what is wrong with them.
 *
 * Shared by gateway/config.c and adapters/adapter_config.c, so both files
 * are held to the same rules and their mistakes are reported in the same
 * words. A reader knows the file's name (for sentences), its absolute
 * directory (for relative paths) and every group's names (for "it belongs
 * in ..."); it keeps nothing from the tree it reads.
 */
#include "config_reader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer text is a mistake (a pasted certificate, a runaway quote). */
enum { TEXT_MAX = 1024 };

struct jx_config_reader {
    char *path; /* as the caller named it */
    char *dir;  /* absolute directory of the file */
    jx_error *err;
    const jx_config_reader_group *groups;
    size_t n_groups;
};

int jx_config_reader_out_of_memory(jx_config_reader *self)
{
    return jx_error_set(self->err, JX_ERR_SYSTEM,
                        "%s: out of memory while loading the configuration", self->path);
}

char *jx_config_reader_copy(jx_config_reader *self, const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL)
        jx_config_reader_out_of_memory(self);
    return copy;
}

/* The directory the file's relative paths start from. */
static char *directory_of(jx_config_reader *self)
{
    char *copy = jx_config_reader_copy(self, self->path);
    if (copy == NULL)
        return NULL;
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    char *absolute = realpath(dir, NULL);
    if (absolute == NULL)
        jx_error_set(self->err, JX_ERR_IO, "%s: cannot resolve the file's directory: %s",
                     self->path, strerror(errno));
    free(copy);
    return absolute;
}

jx_config_reader *jx_config_reader_new(const char *path, const jx_config_reader_group *groups,
                                       size_t n_groups, jx_error *err)
{
    jx_config_reader *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL) {
        jx_error_set(err, JX_ERR_SYSTEM, "%s: out of memory while loading the configuration", path);
        goto failed;
    }
    self->err = err;
    self->groups = groups;
    self->n_groups = n_groups;
    if ((self->dir = directory_of(self)) == NULL)
        goto failed;
    return self;
failed:
    jx_config_reader_destroy(&self);
    return NULL;
}

void jx_config_reader_destroy(jx_config_reader **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    jx_config_reader *self = *self_p;
    free(self->path);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

const char *jx_config_reader_directory(const jx_config_reader *self)
{
    return self->dir;
}

/* ---- errors ---- */

static int vfail(jx_config_reader *self, int line, const char *format, va_list args)
{
    char problem[JX_ERROR_MESSAGE_MAX];
    vsnprintf(problem, sizeof problem, format, args);
    if (line > 0)
        return jx_error_set(self->err, JX_ERR_CONFIG, "%s:%d: %s", self->path, line, problem);
    return jx_error_set(self->err, JX_ERR_CONFIG, "%s: %s", self->path, problem);
}

int jx_config_reader_fail_at(jx_config_reader *self, const config_setting_t *setting,
                             const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int line = setting ? (int)config_setting_source_line(setting) : 0;
    vfail(self, line, format, args);
    va_end(args);
    return -1;
}

int jx_config_reader_fail_line(jx_config_reader *self, int line, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vfail(self, line, format, args);
    va_end(args);
    return -1;
}

const char *jx_config_reader_type_words(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP:
        return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a floating-point number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    case CONFIG_TYPE_LIST:
        return "a list ( ... )";
    default:
        return "an unknown kind of value";
    }
}

/* ---- suggestions ---- */

size_t jx_config_reader_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    /* Three rows: two back (for swaps), the last one, this one. */
    size_t before[64] = {0}, previous[64], row[64];
    for (size_t j = 0; j <= lb; j++)
        previous[j] = j;
    for (size_t i = 1; i <= la; i++) {
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (previous[j] + 1 < best)
                best = previous[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < best)
                best = before[j - 2] + 1;
            row[j] = best;
        }
        memcpy(before, previous, sizeof before);
        memcpy(previous, row, sizeof previous);
    }
    return previous[lb];
}

const char *jx_config_reader_closest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_distance = SIZE_MAX;
    size_t limit = strlen(word) <= 4 ? 1 : (strlen(word) <= 8 ? 2 : 3);
    for (size_t i = 0; i < n; i++) {
        size_t d = jx_config_reader_edit_distance(word, candidates[i]);
        if (d < best_distance) {
            best_distance = d;
            best = candidates[i];
        }
    }
    return best_distance <= limit ? best : NULL;
}

static size_t count_names(const char *const *names)
{
    size_t n = 0;
    while (names[n])
        n++;
    return n;
}

/* A typo first, then a setting put in the wrong group, else the names the
 * group does take. */
int jx_config_reader_check_members(jx_config_reader *self, const config_setting_t *group,
                                   const char *where, const char *const *names)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *member = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(member);
        if (name == NULL)
            continue;
        bool known = false;
        for (const char *const *k = names; *k; k++)
            known = known || strcmp(*k, name) == 0;
        if (known)
            continue;
        const char *suggestion = jx_config_reader_closest(name, names, count_names(names));
        if (suggestion)
            return jx_config_reader_fail_at(self, member,
                                            "unknown setting '%s' in %s (did you mean '%s'?)", name,
                                            where, suggestion);
        for (size_t g = 0; g < self->n_groups; g++)
            for (const char *const *k = self->groups[g].names; *k; k++)
                if (strcmp(*k, name) == 0 && self->groups[g].names != names)
                    return jx_config_reader_fail_at(self, member,
                                                    "unknown setting '%s' in %s (it belongs in %s)",
                                                    name, where, self->groups[g].where);
        char known_list[300] = "";
        for (const char *const *k = names; *k; k++) {
            if (k != names)
                strncat(known_list, ", ", sizeof known_list - strlen(known_list) - 1);
            strncat(known_list, *k, sizeof known_list - strlen(known_list) - 1);
        }
        return jx_config_reader_fail_at(self, member,
                                        "unknown setting '%s' in %s (known settings: %s)", name,
                                        where, known_list);
    }
    return 0;
}

/* ---- values ---- */

int jx_config_reader_get_group(jx_config_reader *self, const config_setting_t *parent,
                               const char *where, const char *name, bool required,
                               config_setting_t **out)
{
    *out = config_setting_get_member(parent, name);
    if (*out == NULL)
        return required ? jx_config_reader_fail_at(self, parent,
                                                   "missing required group '%s' in %s", name, where)
                        : 0;
    if (config_setting_type(*out) != CONFIG_TYPE_GROUP)
        return jx_config_reader_fail_at(self, *out, "'%s' in %s must be a group { ... }, not %s",
                                        name, where,
                                        jx_config_reader_type_words(config_setting_type(*out)));
    return 0;
}

/* A copy of a string setting's text, which must be one non-empty printable
 * line of at most TEXT_MAX characters; NULL with the error otherwise. */
static char *copy_text(jx_config_reader *self, const config_setting_t *setting, const char *name,
                       const char *where)
{
    const char *text = config_setting_get_string(setting);
    if (text[0] == '\0') {
        jx_config_reader_fail_at(self, setting, "'%s' in %s must not be empty", name, where);
        return NULL;
    }
    if (strlen(text) > TEXT_MAX) {
        jx_config_reader_fail_at(self, setting, "'%s' in %s is longer than %d characters", name,
                                 where, TEXT_MAX);
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            jx_config_reader_fail_at(self, setting, "'%s' in %s contains a control character", name,
                                     where);
            return NULL;
        }
    return jx_config_reader_copy(self, text);
}

/* group's member name into *setting (and *found, unless NULL); -1 when it
 * is required and absent. */
static int find_member(jx_config_reader *self, const config_setting_t *group, const char *where,
                       const char *name, bool required, const config_setting_t **setting,
                       const config_setting_t **found)
{
    *setting = config_setting_get_member(group, name);
    if (found)
        *found = *setting;
    if (*setting == NULL && required)
        return jx_config_reader_fail_at(self, group, "missing required setting '%s' in %s", name,
                                        where);
    return 0;
}

int jx_config_reader_get_string(jx_config_reader *self, const config_setting_t *group,
                                const char *where, const char *name, bool required, char **out,
                                const config_setting_t **found)
{
    const config_setting_t *setting = NULL;
    if (find_member(self, group, where, name, required, &setting, found) < 0)
        return -1;
    if (setting == NULL)
        return 0;
    if (config_setting_type(setting) != CONFIG_TYPE_STRING)
        return jx_config_reader_fail_at(
            self, setting, "'%s' in %s must be a string (in double quotes), not %s", name, where,
            jx_config_reader_type_words(config_setting_type(setting)));
    *out = copy_text(self, setting, name, where);
    return *out ? 0 : -1;
}

void jx_config_reader_free_list(char **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int jx_config_reader_get_string_list(jx_config_reader *self, const config_setting_t *group,
                                     const char *where, const char *name, bool required,
                                     char ***out, size_t *n_out, const config_setting_t **found)
{
    *out = NULL;
    *n_out = 0;
    const config_setting_t *setting = NULL;
    if (find_member(self, group, where, name, required, &setting, found) < 0)
        return -1;
    if (setting == NULL)
        return 0;
    int type = config_setting_type(setting);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return jx_config_reader_fail_at(
            self, setting, "'%s' in %s must be a list of strings, e.g. [ \"a\", \"b\" ], not %s",
            name, where, jx_config_reader_type_words(type));
    int n = config_setting_length(setting);
    if (n == 0 && required)
        return jx_config_reader_fail_at(self, setting, "'%s' in %s must not be empty", name, where);
    char **list = calloc((size_t)n + 1, sizeof *list);
    if (list == NULL)
        return jx_config_reader_out_of_memory(self);
    for (int i = 0; i < n; i++) {
        const config_setting_t *element = config_setting_get_elem(setting, (unsigned)i);
        if (config_setting_type(element) != CONFIG_TYPE_STRING) {
            jx_config_reader_fail_at(
                self, element, "element %d of '%s' in %s must be a string, not %s", i + 1, name,
                where, jx_config_reader_type_words(config_setting_type(element)));
            goto failed;
        }
        list[i] = copy_text(self, element, name, where);
        if (list[i] == NULL)
            goto failed;
    }
    *out = list;
    *n_out = (size_t)n;
    return 0;
failed:
    jx_config_reader_free_list(list, (size_t)n);
    return -1;
}

/* path made absolute against the file's directory ("./x" and "." too). */
static char *resolve_path(jx_config_reader *self, const char *path)
{
    if (path[0] == '/')
        return jx_config_reader_copy(self, path);
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if (strcmp(path, ".") == 0 || path[0] == '\0')
        return jx_config_reader_copy(self, self->dir);
    size_t size = strlen(self->dir) + 1 + strlen(path) + 1;
    char *joined = malloc(size);
    if (joined == NULL) {
        jx_config_reader_out_of_memory(self);
        return NULL;
    }
    snprintf(joined, size, "%s/%s", self->dir, path);
    return joined;
}

static int line_of(const config_setting_t *setting)
{
    return setting ? (int)config_setting_source_line(setting) : 0;
}

int jx_config_reader_get_path(jx_config_reader *self, const config_setting_t *group,
                              const char *where, const char *name, bool required, char **out,
                              int *line)
{
    char *raw = NULL;
    const config_setting_t *setting = NULL;
    if (jx_config_reader_get_string(self, group, where, name, required, &raw, &setting) < 0)
        return -1;
    if (line)
        *line = line_of(setting);
    if (raw == NULL)
        return 0;
    *out = resolve_path(self, raw);
    free(raw);
    return *out ? 0 : -1;
}

int jx_config_reader_get_path_list(jx_config_reader *self, const config_setting_t *group,
                                   const char *where, const char *name, bool required, char ***out,
                                   size_t *n, int *line)
{
    const config_setting_t *setting = NULL;
    if (jx_config_reader_get_string_list(self, group, where, name, required, out, n, &setting) < 0)
        return -1;
    if (line)
        *line = line_of(setting);
    for (size_t i = 0; i < *n; i++) {
        char *resolved = resolve_path(self, (*out)[i]);
        if (resolved == NULL) {
            jx_config_reader_free_list(*out, *n);
            *out = NULL;
            *n = 0;
            return -1;
        }
        free((*out)[i]);
        (*out)[i] = resolved;
    }
    return 0;
}

int jx_config_reader_find_integer(jx_config_reader *self, const config_setting_t *group,
                                  const char *where, const char *name,
                                  const config_setting_t **found, int64_t *value)
{
    *found = group ? config_setting_get_member(group, name) : NULL;
    if (*found == NULL)
        return 0;
    int type = config_setting_type(*found);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return jx_config_reader_fail_at(self, *found, "'%s' in %s must be an integer, not %s", name,
                                        where, jx_config_reader_type_words(type));
    *value = (int64_t)config_setting_get_int64(*found);
    return 0;
}

int jx_config_reader_get_integer(jx_config_reader *self, const config_setting_t *group,
                                 const char *where, const char *name, int64_t fallback, int64_t min,
                                 int64_t max, int64_t *out)
{
    const config_setting_t *setting = NULL;
    int64_t value = fallback;
    *out = fallback;
    if (jx_config_reader_find_integer(self, group, where, name, &setting, &value) < 0)
        return -1;
    if (setting == NULL)
        return 0;
    if (value < min || value > max)
        return jx_config_reader_fail_at(
            self, setting, "'%s' in %s is %lld; it must be between %lld and %lld", name, where,
            (long long)value, (long long)min, (long long)max);
    *out = value;
    return 0;
}
