/* openai.h — the OpenAI-compatible JSON of /v1/completions and
 * /v1/chat/completions: request parsing and validation, response and
 * server-sent-event chunk building, and stop-string matching over streamed
 * text.  Pure functions (no I/O, no scheduler): host/api/http.c drives them.
 *
 * Errors carry the HTTP status and the fields of OpenAI's error object
 * {"error":{"message","type","param","code"}}.
 */
#ifndef HOST_API_OPENAI_H
#define HOST_API_OPENAI_H

#include <stddef.h>
#include <stdint.h>
#include "text/obuf.h"

enum oai_kind {
	OAI_COMPLETION,		/* POST /v1/completions */
	OAI_CHAT,		/* POST /v1/chat/completions */
};

#define OAI_MAX_STOP	4	/* stop strings per request (as OpenAI) */
#define OAI_STOP_LEN	256	/* bytes per stop string */
#define OAI_MAX_MSGS	256	/* chat messages per request */
#define OAI_MAX_STOP_IDS 6	/* stop_token_ids per request (extension) */

/* What the server allows; the parser checks requests against it. */
struct oai_limits {
	const char *model;	/* served model name; requests must name it */
	uint32_t max_tokens;	/* cap on max_tokens */
	uint32_t vocab;		/* token ids of an id prompt must be below this */
};

struct oai_msg {
	char *role;
	char *content;		/* text parts joined; "" for null content */
};

struct oai_req {
	enum oai_kind kind;
	char *prompt;		/* completions: text prompt, or NULL when ids */
	int32_t *ids;		/* completions: prompt given as token ids */
	uint32_t n_ids;
	struct oai_msg *msgs;	/* chat */
	uint32_t n_msgs;
	uint32_t max_tokens;	/* 0: not given (server picks the default) */
	float temperature;	/* default 1, as OpenAI */
	float top_p;		/* default 1 (off) */
	uint32_t top_k;		/* extension; 0 off */
	uint64_t seed;
	int has_seed;
	char *stop[OAI_MAX_STOP];
	uint32_t n_stop;
	int32_t stop_ids[OAI_MAX_STOP_IDS];	/* extension: end at these token ids */
	uint32_t n_stop_ids;
	int stream;
	int include_usage;	/* stream_options.include_usage */
	int logprobs;		/* per-token logprobs of the chosen tokens wanted */
	int tools;		/* chat: tools given and tool_choice not "none": read
				   <tool_call> blocks in the output */
};

struct oai_error {
	int status;		/* HTTP status */
	const char *type;	/* "invalid_request_error", ... */
	const char *param;	/* offending field, or NULL */
	const char *code;	/* machine code, or NULL */
	char message[256];
};

void oai_set_error(struct oai_error *e, int status, const char *type, const char *param,
		   const char *code, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Parse and validate a request body.  0, or -1 with e filled (4xx).  Unknown
 * fields are ignored; known fields of the wrong type or out of range are
 * refused.  On success free r with oai_req_free. */
int oai_parse(enum oai_kind kind, const char *body, size_t len, const struct oai_limits *lim,
	      struct oai_req *r, struct oai_error *e);
void oai_req_free(struct oai_req *r);

/* {"error":{...}} as a malloc'd string (NULL only when out of memory). */
char *oai_error_json(const struct oai_error *e);

/* One chosen token's logprob, for the logprobs objects. */
struct oai_tok_lp {
	char *text;		/* the token decoded alone */
	float logprob;
	uint32_t offset;	/* completions: byte offset of the token in the text */
};

/* A whole response (non-streamed) or one chunk of a streamed one. */
struct oai_result {
	enum oai_kind kind;
	const char *id;		/* "cmpl-..." / "chatcmpl-..." */
	long long created;	/* unix seconds */
	const char *model;
	const char *text;	/* generated text (whole, or this chunk's delta) */
	const char *finish;	/* "stop" | "length" | NULL (not finished) */
	int role;		/* chat chunk: carry "role":"assistant" */
	int logprobs;		/* include a logprobs object (else null) */
	const struct oai_tok_lp *lp;
	uint32_t n_lp;
	int usage;		/* include usage */
	int usage_only;		/* chunk: "choices":[] with usage (include_usage) */
	uint32_t prompt_tokens, completion_tokens;
	uint32_t cached_tokens;		/* of prompt_tokens, restored from the prefix cache */
	const char *reasoning;	/* chat: reasoning_content (whole, or this chunk's delta) */
	const struct oai_call *calls;	/* chat: tool calls (all, or this chunk's new ones) */
	uint32_t n_calls, call_base;	/* call_base: index of calls[0] among the response's */
};

/* A tool call of the response. */
struct oai_call {
	const char *id, *name, *arguments;
};

/* Non-streamed response JSON, malloc'd. */
char *oai_response_json(const struct oai_result *r);
/* One server-sent event "data: {...}\n\n" for a streamed chunk, malloc'd. */
char *oai_chunk_sse(const struct oai_result *r);
/* "data: <json>\n\n", malloc'd. */
char *oai_sse(const char *json);
#define OAI_SSE_DONE "data: [DONE]\n\n"


/* Stop strings over text that arrives in pieces (a stop string may span
 * pieces, that is token boundaries).  Text that could still be the start of
 * a stop string is held back; what is certainly output is appended to out.
 * Like OpenAI, the stop string itself and everything after it is dropped. */
struct oai_stopper {
	char *const *stop;	/* not owned */
	uint32_t n;
	struct nc_obuf hold;
	int hit;		/* a stop string was found */
};

void oai_stop_init(struct oai_stopper *s, char *const *stop, uint32_t n);
/* 1 if a stop string completed (later feeds are ignored), 0 if not,
 * -ENOMEM. */
int oai_stop_feed(struct oai_stopper *s, const char *in, size_t n, struct nc_obuf *out);
/* End of generation without a stop: release the held-back text. */
int oai_stop_finish(struct oai_stopper *s, struct nc_obuf *out);
void oai_stop_free(struct oai_stopper *s);

#endif
