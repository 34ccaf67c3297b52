/* outparse.h — the model's output split into content, reasoning and tool
 * calls, as it streams (the Qwen3 family's markers, as vLLM's qwen3 reasoning
 * parser and hermes tool parser read them):
 *
 *   <think> ... </think>          reasoning_content (a leading <think> only, or
 *                                 from the start when the prompt ended in one)
 *   <tool_call>{json}</tool_call> a tool call: {"name": ..., "arguments": {...}}
 *   anything else                 content
 *
 * Text arrives in pieces that may split a marker anywhere; what could still
 * be the start of a marker is held back until it is decided.  A tool call
 * whose JSON does not parse, or has no string name, is given back as content
 * (marker included) and counted as malformed.  Reasoning loses the newline
 * after <think> and the newlines before </think>; content loses the newlines
 * right after </think>.
 */
#ifndef HOST_TEXT_OUTPARSE_H
#define HOST_TEXT_OUTPARSE_H

#include <stddef.h>
#include <stdint.h>
#include "text/obuf.h"


struct nc_toolcall {
	char *name;
	char *arguments;	/* a JSON object, compact, as OpenAI's arguments string */
};

/* Where parsed output goes; the caller drains content and reasoning (set len
 * to 0) and takes the calls from calls[taken..n). */
struct nc_outsink {
	struct nc_obuf content, reasoning;
	struct nc_toolcall *calls;
	uint32_t n, cap;
};

struct nc_outparse {
	int think, tools;	/* which markers to read */
	int state;		/* 0 content, 1 reasoning, 2 inside a tool call */
	int started;		/* content other than whitespace has been seen */
	int skip_nl;		/* drop newlines: after <think>, after </think> */
	uint32_t held_nl;	/* reasoning newlines not yet known to be inner */
	struct nc_obuf hold, call;
	uint32_t malformed;
};

/* think: read <think> reasoning (in_reasoning: the prompt ended inside one);
 * tools: read <tool_call> blocks. */
void nc_outparse_init(struct nc_outparse *p, int think, int in_reasoning, int tools);
/* 0, or -ENOMEM. */
int nc_outparse_feed(struct nc_outparse *p, const char *s, size_t n, struct nc_outsink *o);
/* End of output: whatever is held goes out as what it is. */
int nc_outparse_finish(struct nc_outparse *p, struct nc_outsink *o);
void nc_outparse_free(struct nc_outparse *p);
void nc_outsink_free(struct nc_outsink *o);

#endif
