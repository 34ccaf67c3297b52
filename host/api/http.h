/* http.h — the OpenAI-compatible HTTP API (management interface).
 *
 *   POST /v1/completions, POST /v1/chat/completions  (stream or not)
 *   GET  /v1/models, /v1/models/{id}, /health, /metrics
 *
 * Served by libmicrohttpd on its own threads (one per connection), bound to
 * 127.0.0.1 by default.  Requests go to the card through the scheduler; this
 * module never polls it: whoever owns the scheduler (the data-plane lcore in
 * `nextcard serve`, the poller thread of `nextcard http`) calls nc_sched_poll
 * and the events reach the request threads through a queue per request.
 * See docs/api.md for fields, errors and limits.
 */
#ifndef HOST_API_HTTP_H
#define HOST_API_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct nc_http;
struct nc_sched;
struct nc_engine;
struct nc_tokenizer;
struct nc_metrics;

struct nc_http_opts {
	const char *bind;	/* address to listen on; NULL: "127.0.0.1" */
	uint16_t port;		/* 0: any free port (see nc_http_port) */
	const char *model_name;	/* name in /v1/models and responses; NULL: "nextcard" */
	size_t max_body;	/* request body limit in bytes; 0: 1 MiB */
	uint32_t max_tokens;	/* cap on a request's max_tokens; 0: 4096 */
	/* Against slow and greedy clients (slowloris): connections at once and
	 * per client address (beyond them a connection is closed at once), and
	 * seconds a connection may stay idle (no byte either way) before it is
	 * closed.  0: 256, no per-address limit (behind a load balancer every
	 * client has its address), 60 s. */
	uint32_t max_conns, max_conns_per_ip, idle_timeout_s;
	const char *chat_template;	/* a template file instead of the model's; NULL: the
					   model's (a built-in ChatML one when it has none) */
	const char *script_output;	/* tests: a JSON list of texts that chat requests say in
					   turn instead of the model's (the card still runs) */
	const char *keys;		/* API keys file (api/keys.h); NULL: no keys, and then
					   only a loopback address may be bound ... */
	int insecure_public;		/* ... unless this is set */
};

/* Start listening.  0, or -1 with a one-line reason in err.  s, e, tok and m
 * must outlive the server; m is updated (http_requests, latencies, ...). */
int nc_http_start(struct nc_http **out, const struct nc_http_opts *o, struct nc_sched *s,
		  struct nc_engine *e, const struct nc_tokenizer *tok, struct nc_metrics *m,
		  char *err, size_t errlen);

/* Load the keys file again (SIGHUP): 0, or -1 with err (the old keys stay). */
int nc_http_reload_keys(struct nc_http *h, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
uint16_t nc_http_port(const struct nc_http *h);

/* Stop accepting, cancel requests in flight, join the server threads.  Keep
 * polling the scheduler until this returns so cancelled requests drain. */
void nc_http_stop(struct nc_http *h);

#endif
