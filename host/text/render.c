/* render.c — chat requests to prompt text through the model's template. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "text/jinja.h"
#include "text/render.h"
#include "text/tokenizer.h"

#define MAX_TEMPLATE (1u << 20)

struct nc_jinja *nc_render_compile(const struct nc_tokenizer *tok, const char *override,
				   char *err, size_t errlen)
{
	const char *src = tok ? nc_tok_chat_template(tok) : NULL;
	char *buf = NULL, e2[200];
	struct nc_jinja *t;

	if (override) {
		FILE *f = fopen(override, "rb");
		size_t n = 0;

		if (!f) {
			snprintf(err, errlen, "chat template %s: cannot open", override);
			return NULL;
		}
		buf = malloc(MAX_TEMPLATE + 1);
		if (buf)
			n = fread(buf, 1, MAX_TEMPLATE + 1, f);
		fclose(f);
		if (!buf || n > MAX_TEMPLATE) {
			free(buf);
			snprintf(err, errlen, "chat template %s: %s", override,
				 buf ? "larger than 1 MiB" : "out of memory");
			return NULL;
		}
		buf[n] = 0;
		src = buf;
	}
	if (!src) {
		snprintf(err, errlen, "the model has no chat template (tokenizer_config.json"
			 " chat_template, or chat_template.jinja); give one with --chat-template");
		return NULL;
	}
	t = nc_jinja_compile(src, strlen(src), e2, sizeof(e2));
	if (!t)
		snprintf(err, errlen, "chat template %s not supported: %s",
			 override ? override : "of the model", e2);
	free(buf);
	return t;
}

/* Text parts of a content list, "\n" between them (vLLM's string format). */
static char *join_parts(const cJSON *parts)
{
	size_t n = 0;
	const cJSON *p;
	char *s;

	cJSON_ArrayForEach(p, parts) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");

		if (cJSON_IsString(t))
			n += strlen(t->valuestring) + 1;
	}
	s = malloc(n + 1);
	if (!s)
		return NULL;
	n = 0;
	cJSON_ArrayForEach(p, parts) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");

		if (!cJSON_IsString(t))
			continue;
		if (n)
			s[n++] = '\n';
		memcpy(s + n, t->valuestring, strlen(t->valuestring));
		n += strlen(t->valuestring);
	}
	s[n] = 0;
	return s;
}

static int fix_message(cJSON *m, char *err, size_t errlen)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
	cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
	cJSON *call;

	if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role"))) {
		snprintf(err, errlen, "each message needs a string role");
		return -1;
	}
	if (!c || cJSON_IsNull(c)) {
		cJSON *e = cJSON_CreateString("");

		if (!e || (c ? !cJSON_ReplaceItemInObjectCaseSensitive(m, "content", e) :
			   !cJSON_AddItemToObject(m, "content", e)))
			return snprintf(err, errlen, "out of memory"), -1;
	} else if (cJSON_IsArray(c)) {
		char *s = join_parts(c);
		cJSON *e = s ? cJSON_CreateString(s) : NULL;

		free(s);
		if (!e || !cJSON_ReplaceItemInObjectCaseSensitive(m, "content", e))
			return snprintf(err, errlen, "out of memory"), -1;
	} else if (!cJSON_IsString(c)) {
		snprintf(err, errlen, "message content must be a string, a list of parts or null");
		return -1;
	}
	cJSON_ArrayForEach(call, calls) {
		cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
		cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
		cJSON *obj;

		if (!cJSON_IsString(args))
			continue;
		obj = cJSON_Parse(args->valuestring);
		if (cJSON_IsObject(obj))
			cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", obj);
		else
			cJSON_Delete(obj);
	}
	return 0;
}

cJSON *nc_render_vars(const struct nc_tokenizer *tok, const cJSON *req, int add_generation_prompt,
		      char *err, size_t errlen)
{
	static const char *const specials[] = { "bos_token", "eos_token", "pad_token", "unk_token" };
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
	const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
	const cJSON *agp = cJSON_GetObjectItemCaseSensitive(req, "add_generation_prompt");
	const cJSON *kw = cJSON_GetObjectItemCaseSensitive(req, "chat_template_kwargs");
	cJSON *v = cJSON_CreateObject(), *m, *x;

	if (!v)
		return snprintf(err, errlen, "out of memory"), NULL;
	if (!cJSON_IsArray(msgs) || !cJSON_GetArraySize(msgs)) {
		snprintf(err, errlen, "messages must be a non-empty list");
		goto fail;
	}
	if (tools && !cJSON_IsArray(tools) && !cJSON_IsNull(tools)) {
		snprintf(err, errlen, "tools must be a list");
		goto fail;
	}
	if (kw && !cJSON_IsObject(kw) && !cJSON_IsNull(kw)) {
		snprintf(err, errlen, "chat_template_kwargs must be an object");
		goto fail;
	}
	/* first what the caller may override through chat_template_kwargs */
	for (size_t k = 0; tok && k < sizeof(specials) / sizeof(specials[0]); k++) {
		const char *s = nc_tok_special(tok, specials[k]);

		if (s && !cJSON_AddStringToObject(v, specials[k], s))
			goto oom;
	}
	cJSON_ArrayForEach(x, kw) {
		cJSON *d = cJSON_Duplicate(x, 1);

		if (!d)
			goto oom;
		cJSON_DeleteItemFromObjectCaseSensitive(v, x->string);
		cJSON_AddItemToObject(v, x->string, d);
	}
	if (!(m = cJSON_Duplicate(msgs, 1)))
		goto oom;
	cJSON_DeleteItemFromObjectCaseSensitive(v, "messages");
	cJSON_AddItemToObject(v, "messages", m);
	cJSON_ArrayForEach(x, m)
		if (fix_message(x, err, errlen))
			goto fail;
	cJSON_DeleteItemFromObjectCaseSensitive(v, "tools");
	cJSON_DeleteItemFromObjectCaseSensitive(v, "documents");
	cJSON_DeleteItemFromObjectCaseSensitive(v, "add_generation_prompt");
	if (!cJSON_AddItemToObject(v, "tools", cJSON_IsArray(tools) ? cJSON_Duplicate(tools, 1) :
					       cJSON_CreateNull()) ||
	    !cJSON_AddNullToObject(v, "documents") ||
	    !cJSON_AddBoolToObject(v, "add_generation_prompt",
				   cJSON_IsBool(agp) ? cJSON_IsTrue(agp) : add_generation_prompt))
		goto oom;
	return v;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	cJSON_Delete(v);
	return NULL;
}

char *nc_render_chat(const struct nc_jinja *t, const struct nc_tokenizer *tok, const cJSON *req,
		     int add_generation_prompt, size_t *len, char *err, size_t errlen)
{
	cJSON *v = nc_render_vars(tok, req, add_generation_prompt, err, errlen);
	char *out;

	if (!v)
		return NULL;
	out = nc_jinja_render(t, v, len, err, errlen);
	cJSON_Delete(v);
	return out;
}
