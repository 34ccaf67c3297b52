/* openai.c — OpenAI request/response JSON and stop strings (see openai.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/openai.h"

#define T_INVALID "invalid_request_error"

void oai_set_error(struct oai_error *e, int status, const char *type, const char *param,
		   const char *code, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->type = type;
	e->param = param;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/* ---- request ---------------------------------------------------------- */

/* A field, with JSON null taken as absent. */
static const cJSON *field(const cJSON *root, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);

	return j && !cJSON_IsNull(j) ? j : NULL;
}

static int bad_type(struct oai_error *e, const char *key, const char *want)
{
	oai_set_error(e, 400, T_INVALID, key, "invalid_type", "'%s' must be %s", key, want);
	return -1;
}

static int bad_value(struct oai_error *e, const char *key, const char *want)
{
	oai_set_error(e, 400, T_INVALID, key, "invalid_value", "'%s' must be %s", key, want);
	return -1;
}

static int unsupported(struct oai_error *e, const char *key, const char *why)
{
	oai_set_error(e, 400, T_INVALID, key, "unsupported_parameter", "'%s': %s", key, why);
	return -1;
}

static int is_int(const cJSON *j)
{
	return cJSON_IsNumber(j) && isfinite(j->valuedouble) &&
	       j->valuedouble == floor(j->valuedouble);
}

/* Number field in [lo, hi]; *out untouched when absent.  0 or -1. */
static int get_num(const cJSON *root, const char *key, double lo, double hi, const char *range,
		   float *out, struct oai_error *e)
{
	const cJSON *j = field(root, key);

	if (!j)
		return 0;
	if (!cJSON_IsNumber(j))
		return bad_type(e, key, "a number");
	if (!(j->valuedouble >= lo && j->valuedouble <= hi))
		return bad_value(e, key, range);
	*out = (float)j->valuedouble;
	return 0;
}

/* Integer field in [lo, hi]; returns 1 if present, 0 if absent, -1 bad. */
static int get_int(const cJSON *root, const char *key, double lo, double hi, const char *range,
		   double *out, struct oai_error *e)
{
	const cJSON *j = field(root, key);

	if (!j)
		return 0;
	if (!is_int(j))
		return bad_type(e, key, "an integer");
	if (j->valuedouble < lo || j->valuedouble > hi)
		return bad_value(e, key, range);
	*out = j->valuedouble;
	return 1;
}

static int get_bool(const cJSON *root, const char *key, int *out, struct oai_error *e)
{
	const cJSON *j = field(root, key);

	if (!j)
		return 0;
	if (!cJSON_IsBool(j))
		return bad_type(e, key, "a boolean");
	*out = cJSON_IsTrue(j);
	return 0;
}

static int parse_stop(const cJSON *root, struct oai_req *r, struct oai_error *e)
{
	const cJSON *j = field(root, "stop"), *it;
	int n = 0;

	if (!j)
		return 0;
	if (cJSON_IsString(j)) {
		n = 1;
	} else if (cJSON_IsArray(j)) {
		n = cJSON_GetArraySize(j);
		if (n > OAI_MAX_STOP)
			return bad_value(e, "stop", "at most 4 strings");
	} else {
		return bad_type(e, "stop", "a string or an array of strings");
	}
	for (int i = 0; i < n; i++) {
		it = cJSON_IsString(j) ? j : cJSON_GetArrayItem(j, i);
		if (!cJSON_IsString(it))
			return bad_type(e, "stop", "a string or an array of strings");
		size_t l = strlen(it->valuestring);
		if (l == 0 || l > OAI_STOP_LEN)
			return bad_value(e, "stop", "strings of 1..256 bytes");
		r->stop[r->n_stop] = strdup(it->valuestring);
		if (!r->stop[r->n_stop])
			goto nomem;
		r->n_stop++;
	}
	return 0;
nomem:
	oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
	return -1;
}

/* stop_token_ids (extension, as vLLM): token ids that end the generation. */
static int parse_stop_ids(const cJSON *root, const struct oai_limits *lim, struct oai_req *r,
			  struct oai_error *e)
{
	const cJSON *j = field(root, "stop_token_ids"), *it;

	if (!j)
		return 0;
	if (!cJSON_IsArray(j))
		return bad_type(e, "stop_token_ids", "an array of token ids");
	if (cJSON_GetArraySize(j) > OAI_MAX_STOP_IDS)
		return bad_value(e, "stop_token_ids", "at most 6 token ids");
	cJSON_ArrayForEach(it, j) {
		if (!is_int(it))
			return bad_type(e, "stop_token_ids", "an array of token ids");
		if (it->valuedouble < 0 || it->valuedouble >= (double)lim->vocab)
			return bad_value(e, "stop_token_ids", "token ids inside the vocabulary");
		r->stop_ids[r->n_stop_ids++] = (int32_t)it->valuedouble;
	}
	return 0;
}

/* Token-id array: non-empty, every element an id below vocab. */
static int parse_ids(const cJSON *a, const struct oai_limits *lim, struct oai_req *r,
		     struct oai_error *e)
{
	int n = cJSON_GetArraySize(a), i = 0;
	const cJSON *it;

	if (n == 0)
		return bad_value(e, "prompt", "a non-empty string or array of token ids");
	r->ids = malloc((size_t)n * sizeof(*r->ids));
	if (!r->ids) {
		oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
		return -1;
	}
	cJSON_ArrayForEach(it, a) {
		if (!is_int(it))
			return bad_type(e, "prompt", "a string or an array of token ids");
		if (it->valuedouble < 0 || it->valuedouble >= (double)lim->vocab) {
			oai_set_error(e, 400, T_INVALID, "prompt", "invalid_value",
				      "token id %.0f at %d is outside the vocabulary (0..%u)",
				      it->valuedouble, i, lim->vocab - 1);
			return -1;
		}
		r->ids[i++] = (int32_t)it->valuedouble;
	}
	r->n_ids = (uint32_t)n;
	return 0;
}

static int parse_prompt(const cJSON *root, const struct oai_limits *lim, struct oai_req *r,
			struct oai_error *e)
{
	const cJSON *j = field(root, "prompt"), *first;

	if (!j) {
		oai_set_error(e, 400, T_INVALID, "prompt", "missing_required_parameter",
			      "'prompt' is required");
		return -1;
	}
	if (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 1) {
		/* a batch of one: ["text"] or [[ids]] */
		first = cJSON_GetArrayItem(j, 0);
		if (cJSON_IsString(first) || cJSON_IsArray(first))
			j = first;
	}
	if (cJSON_IsString(j)) {
		r->prompt = strdup(j->valuestring);
		if (!r->prompt) {
			oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
			return -1;
		}
		return 0;
	}
	if (!cJSON_IsArray(j))
		return bad_type(e, "prompt", "a string or an array of token ids");
	first = cJSON_GetArrayItem(j, 0);
	if (first && (cJSON_IsString(first) || cJSON_IsArray(first)))
		return unsupported(e, "prompt", "only one prompt per request (no batches)");
	return parse_ids(j, lim, r, e);
}

static const char *const roles[] = { "system", "developer", "user", "assistant", "tool" };

/* content: string, null, or an array of {"type":"text","text":...} parts. */
static int parse_content(const cJSON *c, struct oai_msg *m, struct oai_error *e)
{
	struct nc_obuf b = { 0 };
	const cJSON *part;

	if (!c || cJSON_IsNull(c)) {
		m->content = strdup("");
		goto done;
	}
	if (cJSON_IsString(c)) {
		m->content = strdup(c->valuestring);
		goto done;
	}
	if (!cJSON_IsArray(c))
		return bad_type(e, "messages", "messages whose content is a string or an array of text parts");
	cJSON_ArrayForEach(part, c) {
		const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
		const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");

		if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "text") || !cJSON_IsString(tx)) {
			nc_obuf_free(&b);
			return unsupported(e, "messages", "only text content parts are supported");
		}
		if (nc_obuf_put(&b, tx->valuestring, strlen(tx->valuestring))) {
			nc_obuf_free(&b);
			goto done;
		}
	}
	m->content = b.p ? b.p : strdup("");
done:
	if (!m->content) {
		oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
		return -1;
	}
	return 0;
}

static int parse_messages(const cJSON *root, struct oai_req *r, struct oai_error *e)
{
	const cJSON *j = field(root, "messages"), *it;
	int n;

	if (!j) {
		oai_set_error(e, 400, T_INVALID, "messages", "missing_required_parameter",
			      "'messages' is required");
		return -1;
	}
	if (!cJSON_IsArray(j))
		return bad_type(e, "messages", "an array of messages");
	n = cJSON_GetArraySize(j);
	if (n < 1 || n > OAI_MAX_MSGS)
		return bad_value(e, "messages", "an array of 1..256 messages");
	r->msgs = calloc((size_t)n, sizeof(*r->msgs));
	if (!r->msgs) {
		oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
		return -1;
	}
	cJSON_ArrayForEach(it, j) {
		const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
		struct oai_msg *m = &r->msgs[r->n_msgs];
		size_t k;

		if (!cJSON_IsObject(it))
			return bad_type(e, "messages", "an array of message objects");
		if (!cJSON_IsString(role))
			return bad_type(e, "messages", "messages with a string 'role'");
		for (k = 0; k < sizeof(roles) / sizeof(roles[0]); k++)
			if (!strcmp(role->valuestring, roles[k]))
				break;
		if (k == sizeof(roles) / sizeof(roles[0]))
			return bad_value(e, "messages",
					 "messages with role system, developer, user, assistant or tool");
		m->role = strdup(role->valuestring);
		r->n_msgs++;
		if (!m->role) {
			oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
			return -1;
		}
		if (parse_content(cJSON_GetObjectItemCaseSensitive(it, "content"), m, e))
			return -1;
	}
	return 0;
}

static int parse_logprobs(const cJSON *root, struct oai_req *r, struct oai_error *e)
{
	double v = 0;
	int rc;

	if (r->kind == OAI_COMPLETION) {
		/* integer: how many alternatives; the chosen token's logprob is
		 * always given, alternatives never (top_logprobs: null) */
		rc = get_int(root, "logprobs", 0, 5, "an integer 0..5", &v, e);
		if (rc < 0)
			return -1;
		r->logprobs = rc;
		return 0;
	}
	if (get_bool(root, "logprobs", &r->logprobs, e))
		return -1;
	rc = get_int(root, "top_logprobs", 0, 20, "an integer 0..20", &v, e);
	if (rc < 0)
		return -1;
	if (rc && v > 0)
		return unsupported(e, "top_logprobs",
				   "the card returns only the chosen token's logprob");
	return 0;
}

/* Fields accepted only at their neutral value. */
static int parse_neutral(const cJSON *root, struct oai_req *r, struct oai_error *e)
{
	static const char *const pen[] = { "presence_penalty", "frequency_penalty" };
	const cJSON *j;
	float f = 0;
	double v;
	int b = 0, rc;

	for (size_t i = 0; i < 2; i++) {
		if (get_num(root, pen[i], -2, 2, "a number -2..2", &f, e))
			return -1;
		if (f != 0)
			return unsupported(e, pen[i], "penalties are not supported (only 0)");
	}
	j = field(root, "logit_bias");
	if (j && !cJSON_IsObject(j))
		return bad_type(e, "logit_bias", "an object");
	if (j && j->child)
		return unsupported(e, "logit_bias", "logit_bias is not supported");
	j = field(root, "user");
	if (j && !cJSON_IsString(j))
		return bad_type(e, "user", "a string");
	if (r->kind == OAI_COMPLETION) {
		if (get_bool(root, "echo", &b, e))
			return -1;
		if (b)
			return unsupported(e, "echo", "echo is not supported");
		rc = get_int(root, "best_of", 1, 1e9, "an integer >= 1", &v, e);
		if (rc < 0)
			return -1;
		if (rc && v != 1)
			return unsupported(e, "best_of", "only best_of 1 is supported");
		j = field(root, "suffix");
		if (j && !cJSON_IsString(j))
			return bad_type(e, "suffix", "a string");
		if (j && j->valuestring[0])
			return unsupported(e, "suffix", "suffix is not supported");
	} else {
		const cJSON *it, *tc = field(root, "tool_choice");

		j = field(root, "tools");
		if (j && !cJSON_IsArray(j) && !cJSON_IsNull(j))
			return bad_type(e, "tools", "an array of tools");
		const cJSON *arr = cJSON_IsArray(j) ? j : NULL;

		cJSON_ArrayForEach(it, arr) {
			const cJSON *ty = cJSON_GetObjectItemCaseSensitive(it, "type");
			const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "function");
			const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");

			if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "function") ||
			    !cJSON_IsString(nm) || !nm->valuestring[0])
				return bad_type(e, "tools", "tools of type 'function' with a function name");
		}
		if (tc && !cJSON_IsNull(tc) && !(cJSON_IsString(tc) &&
		    (!strcmp(tc->valuestring, "auto") || !strcmp(tc->valuestring, "none"))))
			return unsupported(e, "tool_choice", "only 'auto' and 'none' are supported (the"
					   " model decides whether to call a tool)");
		r->tools = cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0 &&
			   !(cJSON_IsString(tc) && !strcmp(tc->valuestring, "none"));
		j = field(root, "chat_template_kwargs");
		if (j && !cJSON_IsObject(j) && !cJSON_IsNull(j))
			return bad_type(e, "chat_template_kwargs", "an object");
		j = field(root, "response_format");
		if (j) {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
			if (!cJSON_IsObject(j) || !cJSON_IsString(t))
				return bad_type(e, "response_format", "an object with a string 'type'");
			if (strcmp(t->valuestring, "text"))
				return unsupported(e, "response_format", "only type 'text' is supported");
		}
	}
	return 0;
}

static int parse_sampling(const cJSON *root, const struct oai_limits *lim, struct oai_req *r,
			  struct oai_error *e)
{
	double v;
	int rc;

	if (get_num(root, "temperature", 0, 2, "a number 0..2", &r->temperature, e))
		return -1;
	if (get_num(root, "top_p", 0, 1, "a number in (0, 1]", &r->top_p, e))
		return -1;
	if (r->top_p <= 0)
		return bad_value(e, "top_p", "a number in (0, 1]");
	rc = get_int(root, "top_k", 0, lim->vocab, "an integer 0..vocabulary size", &v, e);
	if (rc < 0)
		return -1;
	r->top_k = rc ? (uint32_t)v : 0;
	rc = get_int(root, "seed", -9223372036854775808.0, 9223372036854775807.0,
		     "a 64-bit integer", &v, e);
	if (rc < 0)
		return -1;
	if (rc) {
		r->has_seed = 1;
		r->seed = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
	}
	return 0;
}

static int parse_root(const cJSON *root, const struct oai_limits *lim, struct oai_req *r,
		      struct oai_error *e)
{
	const cJSON *j;
	double v;
	int rc;

	if (!cJSON_IsObject(root)) {
		oai_set_error(e, 400, T_INVALID, NULL, "invalid_json",
			      "the request body must be a JSON object");
		return -1;
	}
	j = field(root, "model");
	if (!j) {
		oai_set_error(e, 400, T_INVALID, "model", "missing_required_parameter",
			      "'model' is required");
		return -1;
	}
	if (!cJSON_IsString(j))
		return bad_type(e, "model", "a string");
	if (lim->model && strcmp(j->valuestring, lim->model)) {
		oai_set_error(e, 404, T_INVALID, "model", "model_not_found",
			      "the model '%.80s' does not exist (this server has '%.80s')",
			      j->valuestring, lim->model);
		return -1;
	}
	if (r->kind == OAI_COMPLETION ? parse_prompt(root, lim, r, e) : parse_messages(root, r, e))
		return -1;
	rc = get_int(root, "max_tokens", 1, 1e12, "an integer >= 1", &v, e);
	if (rc < 0)
		return -1;
	if (!rc && r->kind == OAI_CHAT) {
		rc = get_int(root, "max_completion_tokens", 1, 1e12, "an integer >= 1", &v, e);
		if (rc < 0)
			return -1;
	}
	if (rc && v > lim->max_tokens) {
		oai_set_error(e, 400, T_INVALID, "max_tokens", "max_tokens_too_large",
			      "max_tokens is %.0f, this server allows at most %u", v,
			      lim->max_tokens);
		return -1;
	}
	r->max_tokens = rc ? (uint32_t)v : 0;
	rc = get_int(root, "n", 1, 1e9, "an integer >= 1", &v, e);
	if (rc < 0)
		return -1;
	if (rc && v != 1)
		return unsupported(e, "n", "only n = 1 is supported");
	if (parse_sampling(root, lim, r, e) || parse_stop(root, r, e) ||
	    parse_stop_ids(root, lim, r, e) ||
	    get_bool(root, "stream", &r->stream, e) || parse_logprobs(root, r, e) ||
	    parse_neutral(root, r, e))
		return -1;
	j = field(root, "stream_options");
	if (j) {
		if (!cJSON_IsObject(j))
			return bad_type(e, "stream_options", "an object");
		if (get_bool(j, "include_usage", &r->include_usage, e))
			return -1;
	}
	return 0;
}

int oai_parse(enum oai_kind kind, const char *body, size_t len, const struct oai_limits *lim,
	      struct oai_req *r, struct oai_error *e)
{
	cJSON *root;
	int rc;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->temperature = 1.0f;
	r->top_p = 1.0f;
	if (!body || len == 0) {
		oai_set_error(e, 400, T_INVALID, NULL, "invalid_json", "the request body is empty");
		return -1;
	}
	root = cJSON_ParseWithLength(body, len);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		long off = at && at >= body && at <= body + len ? (long)(at - body) : -1;

		oai_set_error(e, 400, T_INVALID, NULL, "invalid_json",
			      "the request body is not valid JSON (near byte %ld)", off);
		return -1;
	}
	rc = parse_root(root, lim, r, e);
	cJSON_Delete(root);
	if (rc)
		oai_req_free(r);
	return rc;
}

void oai_req_free(struct oai_req *r)
{
	free(r->prompt);
	free(r->ids);
	for (uint32_t i = 0; i < r->n_msgs; i++) {
		free(r->msgs[i].role);
		free(r->msgs[i].content);
	}
	free(r->msgs);
	for (uint32_t i = 0; i < r->n_stop; i++)
		free(r->stop[i]);
	memset(r, 0, sizeof(*r));
}

/* ---- responses -------------------------------------------------------- */

static char *print_free(cJSON *root)
{
	char *s = root ? cJSON_PrintUnformatted(root) : NULL;

	cJSON_Delete(root);
	return s;
}

char *oai_error_json(const struct oai_error *e)
{
	cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");

	if (!o) {
		cJSON_Delete(root);
		return NULL;
	}
	cJSON_AddStringToObject(o, "message", e->message);
	cJSON_AddStringToObject(o, "type", e->type ? e->type : T_INVALID);
	if (e->param)
		cJSON_AddStringToObject(o, "param", e->param);
	else
		cJSON_AddNullToObject(o, "param");
	if (e->code)
		cJSON_AddStringToObject(o, "code", e->code);
	else
		cJSON_AddNullToObject(o, "code");
	return print_free(root);
}

static void add_logprobs(cJSON *choice, const struct oai_result *r)
{
	cJSON *lp;

	if (!r->logprobs) {
		cJSON_AddNullToObject(choice, "logprobs");
		return;
	}
	lp = cJSON_AddObjectToObject(choice, "logprobs");
	if (!lp)
		return;
	if (r->kind == OAI_CHAT) {
		cJSON *content = cJSON_AddArrayToObject(lp, "content");

		for (uint32_t i = 0; content && i < r->n_lp; i++) {
			cJSON *t = cJSON_CreateObject(), *bytes = cJSON_CreateArray();
			const unsigned char *p = (const unsigned char *)r->lp[i].text;

			cJSON_AddItemToArray(content, t);
			cJSON_AddStringToObject(t, "token", r->lp[i].text);
			cJSON_AddNumberToObject(t, "logprob", r->lp[i].logprob);
			for (; p && *p; p++)
				cJSON_AddItemToArray(bytes, cJSON_CreateNumber(*p));
			cJSON_AddItemToObject(t, "bytes", bytes);
			cJSON_AddArrayToObject(t, "top_logprobs");
		}
		cJSON_AddNullToObject(lp, "refusal");
		return;
	}
	cJSON *toks = cJSON_AddArrayToObject(lp, "tokens");
	cJSON *lps = cJSON_AddArrayToObject(lp, "token_logprobs");

	cJSON_AddNullToObject(lp, "top_logprobs");
	cJSON *offs = cJSON_AddArrayToObject(lp, "text_offset");
	for (uint32_t i = 0; toks && lps && offs && i < r->n_lp; i++) {
		cJSON_AddItemToArray(toks, cJSON_CreateString(r->lp[i].text));
		cJSON_AddItemToArray(lps, cJSON_CreateNumber(r->lp[i].logprob));
		cJSON_AddItemToArray(offs, cJSON_CreateNumber(r->lp[i].offset));
	}
}

static void add_usage(cJSON *root, const struct oai_result *r)
{
	cJSON *u = cJSON_AddObjectToObject(root, "usage");

	if (!u)
		return;
	cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens);
	cJSON_AddNumberToObject(u, "total_tokens",
				(double)r->prompt_tokens + r->completion_tokens);
	cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
	if (d)
		cJSON_AddNumberToObject(d, "cached_tokens", r->cached_tokens);
}

static cJSON *build(const struct oai_result *r, int chunk)
{
	cJSON *root = cJSON_CreateObject(), *choices, *c, *msg;
	const char *object = r->kind == OAI_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
						 : "text_completion";

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "id", r->id);
	cJSON_AddStringToObject(root, "object", object);
	cJSON_AddNumberToObject(root, "created", (double)r->created);
	cJSON_AddStringToObject(root, "model", r->model);
	choices = cJSON_AddArrayToObject(root, "choices");
	if (!choices)
		goto fail;
	if (!r->usage_only) {
		c = cJSON_CreateObject();
		if (!c)
			goto fail;
		cJSON_AddItemToArray(choices, c);
		cJSON_AddNumberToObject(c, "index", 0);
		if (r->kind == OAI_CHAT) {
			msg = cJSON_AddObjectToObject(c, chunk ? "delta" : "message");
			if (!msg)
				goto fail;
			if (!chunk || r->role)
				cJSON_AddStringToObject(msg, "role", "assistant");
			if (!chunk && r->n_calls && !(r->text && r->text[strspn(r->text, " \n\t")]))
				cJSON_AddNullToObject(msg, "content");	/* only calls */
			else if (!chunk || (r->text && r->text[0]) || r->role)
				cJSON_AddStringToObject(msg, "content", r->text ? r->text : "");
			if (r->reasoning && (r->reasoning[0] || !chunk))
				cJSON_AddStringToObject(msg, "reasoning_content", r->reasoning);
			if (r->n_calls) {
				cJSON *arr = cJSON_AddArrayToObject(msg, "tool_calls");

				for (uint32_t i = 0; arr && i < r->n_calls; i++) {
					cJSON *tc = cJSON_CreateObject(), *fn;

					if (!tc)
						goto fail;
					cJSON_AddItemToArray(arr, tc);
					if (chunk)
						cJSON_AddNumberToObject(tc, "index", r->call_base + i);
					cJSON_AddStringToObject(tc, "id", r->calls[i].id);
					cJSON_AddStringToObject(tc, "type", "function");
					fn = cJSON_AddObjectToObject(tc, "function");
					if (!fn)
						goto fail;
					cJSON_AddStringToObject(fn, "name", r->calls[i].name);
					cJSON_AddStringToObject(fn, "arguments", r->calls[i].arguments);
				}
			}
		} else {
			cJSON_AddStringToObject(c, "text", r->text ? r->text : "");
		}
		add_logprobs(c, r);
		if (r->finish)
			cJSON_AddStringToObject(c, "finish_reason", r->finish);
		else
			cJSON_AddNullToObject(c, "finish_reason");
	}
	if (r->usage)
		add_usage(root, r);
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}

char *oai_response_json(const struct oai_result *r)
{
	return print_free(build(r, 0));
}

char *oai_sse(const char *json)
{
	size_t n = strlen(json) + sizeof("data: \n\n");
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "data: %s\n\n", json);
	return s;
}

char *oai_chunk_sse(const struct oai_result *r)
{
	char *json = print_free(build(r, 1)), *s;

	if (!json)
		return NULL;
	s = oai_sse(json);
	free(json);
	return s;
}

/* ---- buffers and stop strings ------------------------------------------ */

void oai_stop_init(struct oai_stopper *s, char *const *stop, uint32_t n)
{
	memset(s, 0, sizeof(*s));
	s->stop = stop;
	s->n = n;
}

/* Longest proper prefix of a stop string that the held text ends with. */
static size_t partial_tail(const struct oai_stopper *s)
{
	size_t best = 0;

	for (uint32_t i = 0; i < s->n; i++) {
		size_t sl = strlen(s->stop[i]);
		size_t k = sl - 1 < s->hold.len ? sl - 1 : s->hold.len;

		for (; k > best; k--)
			if (!memcmp(s->hold.p + s->hold.len - k, s->stop[i], k)) {
				best = k;
				break;
			}
	}
	return best;
}

int oai_stop_feed(struct oai_stopper *s, const char *in, size_t n, struct nc_obuf *out)
{
	size_t first = SIZE_MAX, keep;
	int rc;

	if (s->hit)
		return 1;
	if (s->n == 0)
		return nc_obuf_put(out, in, n);
	if (nc_obuf_put(&s->hold, in, n))
		return -ENOMEM;
	for (uint32_t i = 0; i < s->n; i++) {
		const char *at = memmem(s->hold.p, s->hold.len, s->stop[i], strlen(s->stop[i]));

		if (at && (size_t)(at - s->hold.p) < first)
			first = (size_t)(at - s->hold.p);
	}
	if (first != SIZE_MAX) {
		s->hit = 1;
		rc = nc_obuf_put(out, s->hold.p, first);
		nc_obuf_clear(&s->hold);
		return rc ? -ENOMEM : 1;
	}
	keep = partial_tail(s);
	if (nc_obuf_put(out, s->hold.p, s->hold.len - keep))
		return -ENOMEM;
	memmove(s->hold.p, s->hold.p + s->hold.len - keep, keep);
	s->hold.len = keep;
	s->hold.p[keep] = 0;	/* hold.p is set: the put above made it */
	return 0;
}

int oai_stop_finish(struct oai_stopper *s, struct nc_obuf *out)
{
	int rc = 0;

	if (!s->hit && s->hold.len)
		rc = nc_obuf_put(out, s->hold.p, s->hold.len);
	nc_obuf_clear(&s->hold);
	return rc;
}

void oai_stop_free(struct oai_stopper *s)
{
	nc_obuf_free(&s->hold);
}
