/* jinja.h — the subset of Jinja2 that LLM chat templates use, rendered the
 * way Hugging Face renders them (trim_blocks, lstrip_blocks, loop controls,
 * `tojson` as json.dumps with ensure_ascii off, raise_exception()).
 *
 * Statements: if/elif/else, for (with else, `loop.*`, `k, v` unpacking,
 * break/continue), set (names and namespace attributes), comments and
 * whitespace control.  Expressions: literals, lists, dicts, attribute and
 * item access, slices, calls of the string and dict methods templates use,
 * filters, tests, arithmetic, comparison, `in`, `~`, boolean operators,
 * conditional expressions.  Anything else is refused when the template is
 * compiled, with the line and what was not understood, so an unknown
 * template never renders wrongly in silence.
 *
 * Templates and variables may be hostile: recursion, output size, loop
 * iterations and memory are bounded, and every failure is an error message.
 */
#ifndef HOST_TEXT_JINJA_H
#define HOST_TEXT_JINJA_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct nc_jinja;

/* Compile a template: NULL with a one-line reason in err on failure. */
struct nc_jinja *nc_jinja_compile(const char *src, size_t len, char *err, size_t errlen);
void nc_jinja_free(struct nc_jinja *t);
/* The source as compiled (newlines normalised). */
const char *nc_jinja_source(const struct nc_jinja *t);

/* Render with the members of vars (a JSON object) as the template's
 * variables; JSON null is None, absent names are undefined.  Returns the
 * output (malloc'd, NUL-terminated, *outlen bytes) or NULL with err set
 * (a raise_exception() message, a type error, a limit). */
char *nc_jinja_render(const struct nc_jinja *t, const cJSON *vars, size_t *outlen, char *err,
		      size_t errlen);

#endif
