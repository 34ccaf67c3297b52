/* test_openai.c — the OpenAI JSON layer of the HTTP API: request parsing and
 * validation (every refusal with its status, param and code), response and
 * server-sent-event chunk building, and stop strings that span token
 * boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/openai.h"

static const struct oai_limits lim = { "fortune-13m", 512, 4096 };

static int parse(enum oai_kind k, const char *body, struct oai_req *r, struct oai_error *e)
{
	return oai_parse(k, body, strlen(body), &lim, r, e);
}

static void test_completion_fields(void **state)
{
	struct oai_req r;
	struct oai_error e;

	(void)state;
	assert_int_equal(parse(OAI_COMPLETION,
			       "{\"model\":\"fortune-13m\",\"prompt\":\"The secret\",\"max_tokens\":40,"
			       "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"seed\":-3,"
			       "\"stop\":[\"\\n\",\"END\"],\"n\":1,\"stream\":true,\"logprobs\":1,"
			       "\"stream_options\":{\"include_usage\":true},\"user\":\"u\","
			       "\"presence_penalty\":0,\"unknown_field\":[1,2],"
			       "\"stop_token_ids\":[4093,7]}", &r, &e), 0);
	assert_string_equal(r.prompt, "The secret");
	assert_null(r.ids);
	assert_int_equal(r.max_tokens, 40);
	assert_true(r.temperature == 0.5f && r.top_p == 0.9f);
	assert_int_equal(r.top_k, 40);
	assert_true(r.has_seed);
	assert_true(r.seed == (uint64_t)-3);
	assert_int_equal(r.n_stop, 2);
	assert_string_equal(r.stop[0], "\n");
	assert_string_equal(r.stop[1], "END");
	assert_true(r.stream && r.include_usage && r.logprobs);
	assert_int_equal(r.n_stop_ids, 2);
	assert_int_equal(r.stop_ids[0], 4093);
	assert_int_equal(r.stop_ids[1], 7);
	oai_req_free(&r);

	/* defaults: OpenAI's temperature 1, top_p 1; nulls are absent */
	assert_int_equal(parse(OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\","
			       "\"temperature\":null,\"stop\":null,\"seed\":null}", &r, &e), 0);
	assert_true(r.temperature == 1.0f && r.top_p == 1.0f);
	assert_int_equal(r.max_tokens, 0);
	assert_false(r.has_seed || r.stream || r.logprobs || r.n_stop);
	oai_req_free(&r);

	/* a single stop string */
	assert_int_equal(parse(OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\","
			       "\"stop\":\"\\n\\n\"}", &r, &e), 0);
	assert_int_equal(r.n_stop, 1);
	assert_string_equal(r.stop[0], "\n\n");
	oai_req_free(&r);
}

static void test_completion_prompts(void **state)
{
	struct oai_req r;
	struct oai_error e;

	(void)state;
	assert_int_equal(parse(OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[316,3545,289]}",
			       &r, &e), 0);
	assert_null(r.prompt);
	assert_int_equal(r.n_ids, 3);
	assert_int_equal(r.ids[0], 316);
	assert_int_equal(r.ids[2], 289);
	oai_req_free(&r);

	/* batches of one */
	assert_int_equal(parse(OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[\"hi\"]}",
			       &r, &e), 0);
	assert_string_equal(r.prompt, "hi");
	oai_req_free(&r);
	assert_int_equal(parse(OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[[7,8]]}",
			       &r, &e), 0);
	assert_int_equal(r.n_ids, 2);
	oai_req_free(&r);
}

static void test_chat_messages(void **state)
{
	struct oai_req r;
	struct oai_error e;

	(void)state;
	assert_int_equal(parse(OAI_CHAT,
			       "{\"model\":\"fortune-13m\",\"messages\":["
			       "{\"role\":\"system\",\"content\":\"Be brief.\"},"
			       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},"
			       "{\"type\":\"text\",\"text\":\"there\"}]},"
			       "{\"role\":\"assistant\",\"content\":null}],"
			       "\"max_completion_tokens\":7,\"logprobs\":true,\"top_logprobs\":0}",
			       &r, &e), 0);
	assert_int_equal(r.n_msgs, 3);
	assert_string_equal(r.msgs[0].role, "system");
	assert_string_equal(r.msgs[1].content, "Hello there");
	assert_string_equal(r.msgs[2].content, "");
	assert_int_equal(r.max_tokens, 7);
	assert_true(r.logprobs);
	oai_req_free(&r);
}

/* Each refusal: status, param and code. */
static void test_refusals(void **state)
{
	static const struct {
		enum oai_kind k;
		const char *body;
		int status;
		const char *param, *code;
	} cases[] = {
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",", 400, NULL, "invalid_json" },
		{ OAI_COMPLETION, "[1,2]", 400, NULL, "invalid_json" },
		{ OAI_COMPLETION, "", 400, NULL, "invalid_json" },
		{ OAI_COMPLETION, "{\"prompt\":\"x\"}", 400, "model", "missing_required_parameter" },
		{ OAI_COMPLETION, "{\"model\":7,\"prompt\":\"x\"}", 400, "model", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"gpt-4\",\"prompt\":\"x\"}", 404, "model", "model_not_found" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\"}", 400, "prompt", "missing_required_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":{}}", 400, "prompt", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[]}", 400, "prompt", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[1,2.5]}", 400, "prompt", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[1,4096]}", 400, "prompt", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":[\"a\",\"b\"]}", 400, "prompt", "unsupported_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"max_tokens\":\"9\"}", 400, "max_tokens", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"max_tokens\":1.5}", 400, "max_tokens", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"max_tokens\":0}", 400, "max_tokens", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"max_tokens\":513}", 400, "max_tokens", "max_tokens_too_large" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"temperature\":\"hot\"}", 400, "temperature", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"temperature\":2.5}", 400, "temperature", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"temperature\":-1}", 400, "temperature", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"top_p\":0}", 400, "top_p", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"top_p\":1.1}", 400, "top_p", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"top_k\":-1}", 400, "top_k", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"seed\":1.5}", 400, "seed", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"n\":2}", 400, "n", "unsupported_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"n\":0}", 400, "n", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stream\":\"yes\"}", 400, "stream", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop\":5}", 400, "stop", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop\":[\"a\",1]}", 400, "stop", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop\":\"\"}", 400, "stop", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop_token_ids\":4093}", 400, "stop_token_ids", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop_token_ids\":[5000]}", 400, "stop_token_ids", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stop_token_ids\":[1,2,3,4,5,6,7]}", 400, "stop_token_ids", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"logprobs\":true}", 400, "logprobs", "invalid_type" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"logprobs\":9}", 400, "logprobs", "invalid_value" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"echo\":true}", 400, "echo", "unsupported_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"best_of\":3}", 400, "best_of", "unsupported_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"presence_penalty\":1}", 400, "presence_penalty", "unsupported_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"logit_bias\":{\"5\":1}}", 400, "logit_bias", "unsupported_parameter" },
		{ OAI_COMPLETION, "{\"model\":\"fortune-13m\",\"prompt\":\"x\",\"stream_options\":3}", 400, "stream_options", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\"}", 400, "messages", "missing_required_parameter" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":\"hi\"}", 400, "messages", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[]}", 400, "messages", "invalid_value" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"content\":\"hi\"}]}", 400, "messages", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, "messages", "invalid_value" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400, "messages", "unsupported_parameter" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":1}", 400, "logprobs", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_logprobs\":3}", 400, "top_logprobs", "unsupported_parameter" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{}]}", 400, "tools", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":{}}", 400, "tools", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"required\"}", 400, "tool_choice", "unsupported_parameter" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"chat_template_kwargs\":5}", 400, "chat_template_kwargs", "invalid_type" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_object\"}}", 400, "response_format", "unsupported_parameter" },
		{ OAI_CHAT, "{\"model\":\"fortune-13m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_completion_tokens\":-2}", 400, "max_completion_tokens", "invalid_value" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct oai_req r;
		struct oai_error e = { 0 };
		int rc = parse(cases[i].k, cases[i].body, &r, &e);

		if (rc != -1 || e.status != cases[i].status ||
		    (cases[i].param ? !e.param || strcmp(e.param, cases[i].param) : e.param != NULL) ||
		    !e.code || strcmp(e.code, cases[i].code) || !e.message[0])
			fail_msg("case %zu %s: rc %d status %d param %s code %s (%s)", i, cases[i].body,
				 rc, e.status, e.param ? e.param : "null", e.code ? e.code : "null",
				 e.message);
	}
}

static void test_error_json(void **state)
{
	struct oai_error e;
	char *s;
	cJSON *j, *o;

	(void)state;
	oai_set_error(&e, 400, "invalid_request_error", "top_p", "invalid_value",
		      "'%s' must be %s", "top_p", "a \"number\"");
	s = oai_error_json(&e);
	j = cJSON_Parse(s);
	o = cJSON_GetObjectItem(j, "error");
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "message")->valuestring, "'top_p' must be a \"number\"");
	assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "invalid_request_error");
	assert_string_equal(cJSON_GetObjectItem(o, "param")->valuestring, "top_p");
	assert_string_equal(cJSON_GetObjectItem(o, "code")->valuestring, "invalid_value");
	cJSON_Delete(j);
	free(s);

	oai_set_error(&e, 429, "server_busy", NULL, NULL, "busy");
	s = oai_error_json(&e);
	assert_string_equal(s, "{\"error\":{\"message\":\"busy\",\"type\":\"server_busy\","
			       "\"param\":null,\"code\":null}}");
	free(s);
}

static void test_response_json(void **state)
{
	struct oai_tok_lp lp[2] = { { "Hi", -0.5f, 0 }, { "!", -1.25f, 2 } };
	struct oai_result r = { .kind = OAI_COMPLETION, .id = "cmpl-1", .created = 1700000000,
				.model = "fortune-13m", .text = "Hi!\n\"q\"", .finish = "length",
				.usage = 1, .prompt_tokens = 5, .completion_tokens = 2,
				.cached_tokens = 3 };
	char *s;
	cJSON *j, *c, *u;

	(void)state;
	s = oai_response_json(&r);
	assert_string_equal(s,
		"{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,"
		"\"model\":\"fortune-13m\",\"choices\":[{\"index\":0,\"text\":\"Hi!\\n\\\"q\\\"\","
		"\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":5,"
		"\"completion_tokens\":2,\"total_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":3}}}");
	free(s);

	r.kind = OAI_CHAT;
	r.text = "Hi!";
	r.finish = "stop";
	r.logprobs = 1;
	r.lp = lp;
	r.n_lp = 2;
	s = oai_response_json(&r);
	j = cJSON_Parse(s);
	assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
	c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
	assert_string_equal(cJSON_GetObjectItem(c, "finish_reason")->valuestring, "stop");
	u = cJSON_GetObjectItem(c, "message");
	assert_string_equal(cJSON_GetObjectItem(u, "role")->valuestring, "assistant");
	assert_string_equal(cJSON_GetObjectItem(u, "content")->valuestring, "Hi!");
	u = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "logprobs"), "content");
	assert_int_equal(cJSON_GetArraySize(u), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(u, 1), "token")->valuestring, "!");
	assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(u, 1), "logprob")->valuedouble == -1.25);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(u, 0), "bytes")), 2);
	cJSON_Delete(j);
	free(s);

	/* completions logprobs: tokens, token_logprobs, text_offset */
	r.kind = OAI_COMPLETION;
	s = oai_response_json(&r);
	assert_non_null(strstr(s, "\"logprobs\":{\"tokens\":[\"Hi\",\"!\"],\"token_logprobs\":[-0.5,-1.25],"
				  "\"top_logprobs\":null,\"text_offset\":[0,2]}"));
	free(s);
}

static void test_sse_chunks(void **state)
{
	struct oai_result r = { .kind = OAI_CHAT, .id = "chatcmpl-1", .created = 5,
				.model = "m", .text = "", .role = 1 };
	char *s;
	size_t n;

	(void)state;
	s = oai_sse("{\"a\":1}");
	assert_string_equal(s, "data: {\"a\":1}\n\n");
	free(s);
	assert_string_equal(OAI_SSE_DONE, "data: [DONE]\n\n");

	/* the first chat chunk carries the role */
	s = oai_chunk_sse(&r);
	assert_string_equal(s, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
			       "\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
			       "{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
			       "\"finish_reason\":null}]}\n\n");
	free(s);

	/* a text delta, then a final chunk with an empty delta */
	r.role = 0;
	r.text = "ab";
	s = oai_chunk_sse(&r);
	assert_non_null(strstr(s, "\"delta\":{\"content\":\"ab\"},\"logprobs\":null,\"finish_reason\":null"));
	free(s);
	r.text = "";
	r.finish = "length";
	s = oai_chunk_sse(&r);
	assert_non_null(strstr(s, "\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\""));
	n = strlen(s);
	assert_true(n > 8 && !strncmp(s, "data: {", 7) && !strcmp(s + n - 3, "}\n\n"));
	assert_ptr_equal(strchr(s, '\n'), s + n - 2);	/* one line of JSON per event */
	free(s);

	/* include_usage: choices empty, usage present */
	r.usage = r.usage_only = 1;
	r.prompt_tokens = 3;
	r.completion_tokens = 4;
	s = oai_chunk_sse(&r);
	assert_non_null(strstr(s, "\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
				  "\"completion_tokens\":4,\"total_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":0}}"));
	free(s);

	/* completions chunk: object text_completion, text field; newlines escaped */
	struct oai_result c = { .kind = OAI_COMPLETION, .id = "cmpl-2", .created = 5,
				.model = "m", .text = "x\ny" };
	s = oai_chunk_sse(&c);
	assert_string_equal(s, "data: {\"id\":\"cmpl-2\",\"object\":\"text_completion\",\"created\":5,"
			       "\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"x\\ny\","
			       "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
	free(s);
}

/* Feed pieces; return the output text and whether a stop string was hit. */
static int run_stop(char *const *stop, uint32_t n, const char *const *pieces, char *out,
		    size_t cap)
{
	struct oai_stopper s;
	struct nc_obuf b = { 0 };
	int hit = 0;

	oai_stop_init(&s, stop, n);
	for (size_t i = 0; pieces[i] && !hit; i++)
		hit = oai_stop_feed(&s, pieces[i], strlen(pieces[i]), &b);
	if (!hit)
		assert_int_equal(oai_stop_finish(&s, &b), 0);
	assert_true(hit >= 0);
	snprintf(out, cap, "%s", b.p ? b.p : "");
	nc_obuf_free(&b);
	oai_stop_free(&s);
	return hit;
}

static void test_stop_strings(void **state)
{
	char *s1[] = { "o w" }, *s2[] = { "xyz" }, *s3[] = { "ab" };
	char *s4[] = { "END", "\n\n" }, *s5[] = { "héllo" }, *s6[] = { "abcd", "c" };
	char out[128];

	(void)state;
	/* spans three tokens; the stop string and what follows are dropped */
	assert_int_equal(run_stop(s1, 1, (const char *[]){ "Hel", "lo ", "wo", "rld", NULL }, out,
				  sizeof(out)), 1);
	assert_string_equal(out, "Hell");
	/* a partial match is held back, then released at the end */
	assert_int_equal(run_stop(s2, 1, (const char *[]){ "abx", "y", NULL }, out, sizeof(out)), 0);
	assert_string_equal(out, "abxy");
	/* a partial match that fails is released as soon as it fails */
	assert_int_equal(run_stop(s2, 1, (const char *[]){ "abx", "yq", "z", NULL }, out,
				  sizeof(out)), 0);
	assert_string_equal(out, "abxyqz");
	/* overlapping prefixes: "a","a","b" stops at the second a */
	assert_int_equal(run_stop(s3, 1, (const char *[]){ "a", "a", "b", "c", NULL }, out,
				  sizeof(out)), 1);
	assert_string_equal(out, "a");
	/* the earliest of several stops wins; a stop at the very start leaves "" */
	assert_int_equal(run_stop(s4, 2, (const char *[]){ "one\n", "\ntwo END", NULL }, out,
				  sizeof(out)), 1);
	assert_string_equal(out, "one");
	assert_int_equal(run_stop(s4, 2, (const char *[]){ "EN", "D more", NULL }, out,
				  sizeof(out)), 1);
	assert_string_equal(out, "");
	/* multi-byte UTF-8 split across pieces */
	assert_int_equal(run_stop(s5, 1, (const char *[]){ "say h\xc3", "\xa9ll", "o!", NULL }, out,
				  sizeof(out)), 1);
	assert_string_equal(out, "say ");
	/* a short stop completing inside a longer partial one */
	assert_int_equal(run_stop(s6, 2, (const char *[]){ "xab", "c", "d", NULL }, out,
				  sizeof(out)), 1);
	assert_string_equal(out, "xab");
	/* no stop strings: text passes straight through */
	assert_int_equal(run_stop(NULL, 0, (const char *[]){ "a", "b", NULL }, out, sizeof(out)), 0);
	assert_string_equal(out, "ab");
}

/* Streaming invariant: with any split of the text into pieces, the output is
 * the text cut at the first stop string. */
static void test_stop_any_split(void **state)
{
	const char *text = "the cat sat on the mat; the end";
	char *stops[] = { "on the", "mat" };
	size_t n = strlen(text);

	(void)state;
	for (size_t a = 1; a < n; a++) {
		for (size_t b = a; b < n; b += 3) {
			char p1[64], p2[64], p3[64], out[64];
			const char *pieces[] = { p1, p2, p3, NULL };

			snprintf(p1, sizeof(p1), "%.*s", (int)a, text);
			snprintf(p2, sizeof(p2), "%.*s", (int)(b - a), text + a);
			snprintf(p3, sizeof(p3), "%s", text + b);
			assert_int_equal(run_stop(stops, 2, pieces, out, sizeof(out)), 1);
			assert_string_equal(out, "the cat sat ");
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_completion_fields),
		cmocka_unit_test(test_completion_prompts),
		cmocka_unit_test(test_chat_messages),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_response_json),
		cmocka_unit_test(test_sse_chunks),
		cmocka_unit_test(test_stop_strings),
		cmocka_unit_test(test_stop_any_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
