/* fuzz_jinja.c — chat templates and requests from arbitrary bytes.
 *
 * Input: a template, then (after the first 0xff byte, if any) a JSON request.
 * The template is compiled and rendered with the request's variables as
 * host/text/render.c builds them (or fixed ones): every failure must come
 * back as an error message, nothing may crash, leak or run away (the
 * interpreter's own limits bound time and memory). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja.h"
#include "text/render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed[] =
	"{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\","
	"\"content\":\"<tool_response>x</tool_response>\"},{\"role\":\"assistant\",\"content\":"
	"\"<think>r</think>a\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":"
	"\"{\\\"a\\\":[1,2.5,null]}\"}}]},{\"role\":\"tool\",\"content\":\"t\"}],\"tools\":"
	"[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"chat_template_kwargs\":"
	"{\"enable_thinking\":false}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t tlen = sep ? (size_t)(sep - data) : size;
	char err[256], *out;
	struct nc_jinja *t;
	cJSON *req, *vars;
	size_t n;

	if (size > 1 << 16)
		return 0;
	err[0] = 0;
	t = nc_jinja_compile((const char *)data, tlen, err, sizeof(err));
	if (!t) {
		if (!err[0])
			abort();
		return 0;
	}
	req = sep ? cJSON_ParseWithLength((const char *)sep + 1, size - tlen - 1) : NULL;
	if (!req)
		req = cJSON_Parse(fixed);
	vars = nc_render_vars(NULL, req, 1, err, sizeof(err));
	out = nc_jinja_render(t, vars ? vars : req, &n, err, sizeof(err));
	if (!out && !err[0])
		abort();
	if (out && strlen(out) > n)
		abort();
	free(out);
	cJSON_Delete(vars);
	cJSON_Delete(req);
	nc_jinja_free(t);
	return 0;
}
