/* test_outparse.c — content, reasoning and tool calls from scripted output
 * streams, whatever the token boundaries: every case is fed whole, one byte
 * at a time, split at every point into two pieces, and in random pieces,
 * and must come out the same. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "text/outparse.h"
#include "rng.h"

struct tcase {
	const char *name;
	int think, in_reasoning, tools;
	const char *in;
	const char *content, *reasoning;
	const char *calls;	/* "name(args)" joined by ";" */
	uint32_t malformed;
};

static const struct tcase cases[] = {
	{ "reasoning then answer", 1, 0, 0, "<think>\nLet me see: 2+2.\nIt is 4.\n</think>\n\nThe answer is 4.",
	  "The answer is 4.", "Let me see: 2+2.\nIt is 4.", "", 0 },
	{ "prompt ended in <think>", 1, 1, 0, "Step one.\n\n</think>\n\nDone.",
	  "Done.", "Step one.", "", 0 },
	{ "thinking off: no markers", 1, 0, 0, "Plain answer.", "Plain answer.", "", "", 0 },
	{ "reasoning parser off", 0, 0, 0, "<think>x</think>y", "<think>x</think>y", "", "", 0 },
	{ "<think> after content is content", 1, 0, 0, "Hi <think>no</think>", "Hi <think>no</think>", "", "", 0 },
	{ "two tool calls", 0, 0, 1,
	  "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>\n"
	  "<tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</tool_call>",
	  "Let me check.\n\n", "", "get_weather({\"city\":\"Paris\",\"days\":2});now({})", 0 },
	{ "reasoning, then a tool call", 1, 0, 1,
	  "<think>\nNeed the weather.\n</think>\n\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"q\": \"</tool\"}}\n</tool_call>",
	  "", "Need the weather.", "w({\"q\":\"</tool\"})", 0 },
	{ "malformed tool JSON stays text", 0, 0, 1, "a<tool_call>{oops}</tool_call>b",
	  "a<tool_call>{oops}</tool_call>b", "", "", 1 },
	{ "tool call without a name", 0, 0, 1, "<tool_call>{\"arguments\": {}}</tool_call>",
	  "<tool_call>{\"arguments\": {}}</tool_call>", "", "", 1 },
	{ "cut-off tool call stays text", 0, 0, 1, "x<tool_call>\n{\"name\": \"f\", \"argu",
	  "x<tool_call>\n{\"name\": \"f\", \"argu", "", "", 1 },
	{ "tools off: the block is content", 0, 0, 0, "<tool_call>{\"name\":\"f\"}</tool_call>",
	  "<tool_call>{\"name\":\"f\"}</tool_call>", "", "", 0 },
	{ "near-markers are content", 1, 0, 1, "<thin <tool_cal <3 </think",
	  "<thin <tool_cal <3 </think", "", "", 0 },
	{ "unfinished reasoning", 1, 0, 0, "<think>\nstill thinking\n\n", "", "still thinking", "", 0 },
	{ "multibyte text", 1, 0, 1, "<think>\n日本語で考える\n</think>\n\nはい 👋<tool_call>{\"name\":\"é\",\"arguments\":{\"k\":\"ü\"}}</tool_call>",
	  "はい 👋", "日本語で考える", "é({\"k\":\"ü\"})", 0 },
};

struct result {
	struct nc_obuf content, reasoning, calls;
	uint32_t malformed;
};

/* Feed s split at the given cut points. */
static void run(const struct tcase *c, const size_t *cuts, size_t ncuts, struct result *r)
{
	struct nc_outparse p;
	struct nc_outsink o = { 0 };
	size_t at = 0, n = strlen(c->in);

	memset(r, 0, sizeof(*r));
	nc_outparse_init(&p, c->think, c->in_reasoning, c->tools);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		assert_int_equal(nc_outparse_feed(&p, c->in + at, end - at, &o), 0);
		/* drain as a streaming server would */
		nc_obuf_put(&r->content, o.content.p ? o.content.p : "", o.content.len);
		nc_obuf_put(&r->reasoning, o.reasoning.p ? o.reasoning.p : "", o.reasoning.len);
		o.content.len = o.reasoning.len = 0;
		at = end;
	}
	assert_int_equal(nc_outparse_finish(&p, &o), 0);
	nc_obuf_put(&r->content, o.content.p ? o.content.p : "", o.content.len);
	nc_obuf_put(&r->reasoning, o.reasoning.p ? o.reasoning.p : "", o.reasoning.len);
	nc_obuf_put(&r->calls, "", 0);
	for (uint32_t i = 0; i < o.n; i++) {
		if (i)
			nc_obuf_put(&r->calls, ";", 1);
		nc_obuf_put(&r->calls, o.calls[i].name, strlen(o.calls[i].name));
		nc_obuf_put(&r->calls, "(", 1);
		nc_obuf_put(&r->calls, o.calls[i].arguments, strlen(o.calls[i].arguments));
		nc_obuf_put(&r->calls, ")", 1);
	}
	nc_obuf_put(&r->content, "", 0);
	nc_obuf_put(&r->reasoning, "", 0);
	r->malformed = p.malformed;
	nc_outparse_free(&p);
	nc_outsink_free(&o);
}

static void expect(const struct tcase *c, struct result *r, const char *how)
{
	if (strcmp(r->content.p, c->content) || strcmp(r->reasoning.p, c->reasoning) ||
	    strcmp(r->calls.p, c->calls) || r->malformed != c->malformed)
		fail_msg("%s (%s): content [%s] reasoning [%s] calls [%s] malformed %u", c->name, how,
			 r->content.p, r->reasoning.p, r->calls.p, r->malformed);
	nc_obuf_free(&r->content);
	nc_obuf_free(&r->reasoning);
	nc_obuf_free(&r->calls);
}

static void test_streams(void **state)
{
	struct rng g = { 77 };

	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct tcase *c = &cases[k];
		size_t n = strlen(c->in), *cuts = malloc((n + 1) * sizeof(*cuts));
		struct result r;

		run(c, NULL, 0, &r);
		expect(c, &r, "whole");
		for (size_t i = 0; i < n; i++)
			cuts[i] = i + 1;
		run(c, cuts, n ? n - 1 : 0, &r);
		expect(c, &r, "byte by byte");
		for (size_t i = 1; i < n; i++) {
			char how[32];

			snprintf(how, sizeof(how), "split at %zu", i);
			cuts[0] = i;
			run(c, cuts, 1, &r);
			expect(c, &r, how);
		}
		for (int t = 0; t < 20; t++) {
			size_t m = 0, at = 0;

			while (at < n) {
				at += 1 + (size_t)rng_below(&g, 6);
				if (at < n)
					cuts[m++] = at;
			}
			run(c, cuts, m, &r);
			expect(c, &r, "random pieces");
		}
		printf("# %-36s ok (%zu bytes, every split)\n", c->name, n);
		free(cuts);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
