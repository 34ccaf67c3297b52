/* http.c — the OpenAI-compatible HTTP API on libmicrohttpd (see http.h).
 *
 * One thread per connection (libmicrohttpd's own).  A completion request is
 * parsed (openai.c), tokenised, and submitted to the scheduler as a "job".
 * The scheduler's callback only queues raw events on the job under the job's
 * lock; the connection thread takes them, detokenises, matches stop strings
 * and writes JSON or server-sent events.  A job is shared by the two sides
 * and freed when both have let go (the scheduler after its last event).
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "api/http.h"
#include "api/keys.h"
#include "api/metrics.h"
#include "api/openai.h"
#include "model/sched.h"
#include "text/jinja.h"
#include "text/outparse.h"
#include "text/render.h"
#include "text/tokenizer.h"

#define DEFAULT_BODY	(1u << 20)
#define DEFAULT_CAP	4096u
#define DEFAULT_TOKENS	16u	/* completions' max_tokens default (OpenAI's) */
#define WAIT_MS		50	/* how often a waiting request checks its client */

struct nc_http {
	struct MHD_Daemon *d;
	struct nc_sched *s;
	struct nc_engine *e;
	const struct nc_tokenizer *tok;
	struct nc_metrics *m;
	char model[128];
	size_t max_body;
	uint32_t max_tokens;
	int32_t eos, im_end;
	struct nc_jinja *tmpl;	/* the chat template */
	int think;		/* it writes <think> blocks: read reasoning out of the output */
	cJSON *script;		/* tests: scripted outputs, taken in turn by chat requests */
	struct nc_keys *keys;	/* NULL: no keys asked for */
	const char *keys_path;
	_Atomic uint32_t script_next;
	long long started;
	uint16_t port;
	atomic_int stopping;
	_Atomic uint32_t live;	/* jobs not yet freed */
	_Atomic uint64_t seq;
};

enum route { RT_NONE, RT_COMPLETIONS, RT_CHAT, RT_MODELS, RT_MODEL, RT_HEALTH, RT_READY,
	     RT_METRICS, RT_APPLY_TEMPLATE };

/* For a model without a chat template: ChatML, as the Qwen family writes it. */
static const char chatml[] =
	"{% for message in messages %}{{ '<|im_start|>' + message.role + '\n' + message.content"
	" + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
	"{{ '<|im_start|>assistant\n' }}{% endif %}";

/* Per HTTP request, from the first header to the end of the upload. */
struct conn {
	enum route rt;
	struct nc_obuf body;
	int too_big;
	uint64_t t_rx;
	int key;		/* the caller's key slot, -1 */
	uint32_t retry_after;	/* seconds, with a 429 over quota */
};

struct ev {
	enum nc_ev_kind kind;
	int32_t token;
	float logprob;
	uint32_t finish;
	uint64_t step_ns;
	uint32_t cached;
	int last;
};

struct job {
	struct nc_http *h;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	/* filled by the scheduler's callback, under mu */
	struct ev *q;
	uint32_t qhead, qn, qcap;
	int ended;		/* the scheduler sent its last event */
	char card_err[160];
	/* the connection thread's own */
	uint64_t sid;
	int32_t stop_ids[FW_MAX_STOP];	/* as submitted */
	uint32_t n_stop_ids;
	int32_t *ids;
	uint32_t n_ids, max_new;
	struct oai_req req;
	int fd;
	char id[48];
	long long created;
	struct nc_detok dt;
	struct oai_stopper stop;
	struct nc_obuf text;	/* whole text, or the delta not yet streamed */
	struct oai_tok_lp *lp;
	uint32_t n_lp, cap_lp;
	size_t dec_bytes;	/* bytes decoded so far (logprob text offsets) */
	uint32_t completion;
	uint32_t cached;	/* prompt tokens the card restored from its prefix cache */
	const char *finish;	/* set when the request is over for the client */
	const char *fail;	/* why it ended badly: card error, client gone, ... */
	int counted;		/* outcome counted in the metrics */
	uint64_t t_rx, t_last, step_ns;
	uint64_t t_check;	/* last look at the client, the server and the card */
	int sent_first;
	/* streaming */
	struct nc_obuf out;
	size_t out_off;
	int sse_done;
	/* chat output split into content, reasoning and tool calls */
	int parse;
	struct nc_outparse op;
	struct nc_outsink os;
	struct nc_obuf content;	/* parsed content, whole or the delta not yet streamed */
	struct nc_obuf reason;	/* reasoning, likewise */
	struct oai_call *calls;	/* os.calls with ids, for the response */
	uint32_t calls_named;	/* calls[0 .. calls_named) have their ids */
	uint32_t calls_sent;	/* streamed so far */
	int key;		/* key slot charged for this request, or -1 */
	uint32_t key_charged;	/* tokens admission charged */
	/* tests (--script-output): the text this request says instead */
	const char *script;
	size_t script_len, script_off;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

/* ---- responses ------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, char *body,
				 const char *type)
{
	static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
			    "\"param\":null,\"code\":null}}";
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (!body) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		type = "application/json";
		r = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
	} else {
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	}
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json)
{
	return send_body(c, status, json, "application/json");
}

static enum MHD_Result send_error(struct MHD_Connection *c, const struct oai_error *e)
{
	return send_json(c, (unsigned)e->status, oai_error_json(e));
}

static enum MHD_Result send_err(struct MHD_Connection *c, int status, const char *type,
				const char *code, const char *msg)
{
	struct oai_error e;

	oai_set_error(&e, status, type, NULL, code, "%s", msg);
	return send_error(c, &e);
}

/* 429 over a key's quota, with the seconds to wait. */
static enum MHD_Result send_retry(struct MHD_Connection *c, const struct oai_error *e,
				  uint32_t secs)
{
	char *json = oai_error_json(e), v[16];
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (!json)
		return send_body(c, 500, NULL, NULL);
	r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(json);
		return MHD_NO;
	}
	snprintf(v, sizeof(v), "%u", secs ? secs : 1);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
	rc = MHD_queue_response(c, MHD_HTTP_TOO_MANY_REQUESTS, r);
	MHD_destroy_response(r);
	return rc;
}

static uint64_t now_ns(void);

/* Charge the caller's key for a request of j's size, or 429. */
static int admit_key(struct nc_http *h, struct job *j, struct conn *cs, struct oai_error *e)
{
	const char *why = NULL;
	uint32_t want = j->n_ids + j->max_new, wait;

	if (!h->keys || cs->key < 0)
		return 0;
	wait = nc_keys_admit(h->keys, cs->key, want, now_ns(), &why);
	if (wait) {
		cs->retry_after = wait;
		oai_set_error(e, 429, "requests", NULL, "rate_limit_exceeded",
			      "rate limit reached for this key (%s); retry after %u s", why, wait);
		return -1;
	}
	j->key = cs->key;
	j->key_charged = want;
	return 0;
}

/* ---- jobs ------------------------------------------------------------ */

static void job_free(struct job *j)
{
	struct nc_http *h = j->h;

	if (j->key >= 0)
		nc_keys_done(h->keys, j->key, j->key_charged, j->n_ids + j->completion);
	for (uint32_t i = 0; i < j->n_lp; i++)
		free(j->lp[i].text);
	free(j->lp);
	free(j->q);
	free(j->ids);
	oai_req_free(&j->req);
	oai_stop_free(&j->stop);
	nc_obuf_free(&j->text);
	nc_obuf_free(&j->out);
	nc_obuf_free(&j->reason);
	nc_obuf_free(&j->content);
	nc_outparse_free(&j->op);
	for (uint32_t i = 0; i < j->calls_named; i++)
		free((char *)j->calls[i].id);
	free(j->calls);
	nc_outsink_free(&j->os);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
	atomic_fetch_sub_explicit(&h->live, 1, memory_order_release);
}

static void job_put(struct job *j)
{
	int last;

	pthread_mutex_lock(&j->mu);
	last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (last)
		job_free(j);
}

static struct job *job_new(struct nc_http *h)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;

	if (!j)
		return NULL;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	j->h = h;
	j->refs = 1;
	j->fd = -1;
	j->key = -1;
	atomic_fetch_add_explicit(&h->live, 1, memory_order_relaxed);
	return j;
}

/* The scheduler's callback: runs under the scheduler lock, only queues. */
static void on_event(void *user, const struct nc_sched_event *ev)
{
	struct job *j = user;

	pthread_mutex_lock(&j->mu);
	if (j->qn < j->qcap) {
		struct ev *q = &j->q[(j->qhead + j->qn++) % j->qcap];

		q->kind = ev->kind;
		q->token = ev->token;
		q->logprob = ev->logprob;
		q->finish = ev->finish;
		q->step_ns = ev->step_ns;
		q->cached = ev->cached_tokens;
		q->last = ev->last;
	}
	if (ev->kind == NC_EV_ERROR)
		snprintf(j->card_err, sizeof(j->card_err), "%s", ev->error ? ev->error : "card error");
	if (ev->last)
		j->ended = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (ev->last)
		job_put(j);
}

static int client_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char c;

	if (fd < 0 || poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return 1;
	return (p.revents & POLLIN) && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static int card_failed(const struct nc_http *h)
{
	return atomic_load_explicit(&h->e->ctrl->state, memory_order_relaxed) == FW_ST_FAILED;
}

static void job_cancel(struct job *j)
{
	for (int i = 0; i < 20; i++) {
		int ended;

		pthread_mutex_lock(&j->mu);
		ended = j->ended;
		pthread_mutex_unlock(&j->mu);
		if (ended || nc_sched_cancel(j->h->s, j->sid) != -EAGAIN)
			return;
		usleep(5000);
	}
}

/* Why the request should end early, or NULL: the client left, the server
 * stops or the card failed.  Checked at most every WAIT_MS. */
static const char *should_abort(struct job *j)
{
	uint64_t t = now_ns();

	if (t - j->t_check < WAIT_MS * 1000000ull)
		return NULL;
	j->t_check = t;
	if (client_gone(j->fd))
		return "client disconnected";
	if (atomic_load(&j->h->stopping))
		return "server shutting down";
	if (card_failed(j->h))
		return "the card failed";
	return NULL;
}

/* Next event: 1, or 0 when the request must end early (j->fail says why;
 * the request is cancelled). */
static int job_next(struct job *j, struct ev *ev)
{
	if ((j->fail = should_abort(j)))
		goto abort;
	pthread_mutex_lock(&j->mu);
	while (!j->qn) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += WAIT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) != ETIMEDOUT || j->qn)
			continue;
		pthread_mutex_unlock(&j->mu);
		if ((j->fail = should_abort(j)))
			goto abort;
		pthread_mutex_lock(&j->mu);
	}
	*ev = j->q[j->qhead];
	j->qhead = (j->qhead + 1) % j->qcap;
	j->qn--;
	pthread_mutex_unlock(&j->mu);
	return 1;
abort:
	job_cancel(j);
	return 0;
}

static int is_stop_id(const struct job *j, int32_t t)
{
	for (uint32_t i = 0; i < j->n_stop_ids; i++)
		if (t == j->stop_ids[i])
			return 1;
	return 0;
}

/* Token ids that end a request: the client's stop_token_ids, and for chat
 * the end of a turn (<|im_end|>) and of text (eos).  A completion is a raw
 * continuation: eos does not end it unless listed (it is left out of the
 * text all the same, as special tokens are). */
static void add_stop_id(struct job *j, int32_t t)
{
	if (t >= 0 && !is_stop_id(j, t) && j->n_stop_ids < FW_MAX_STOP)
		j->stop_ids[j->n_stop_ids++] = t;
}

static int add_lp(struct job *j, int32_t tok, float logprob)
{
	char buf[64], *s;
	long n = nc_tok_decode(j->h->tok, &tok, 1, buf, sizeof(buf) - 1);

	if (n < 0)
		return -1;
	if (j->n_lp == j->cap_lp) {
		uint32_t cap = j->cap_lp ? 2 * j->cap_lp : 16;
		struct oai_tok_lp *p = realloc(j->lp, cap * sizeof(*p));

		if (!p)
			return -1;
		j->lp = p;
		j->cap_lp = cap;
	}
	s = malloc((size_t)n + 1);
	if (!s)
		return -1;
	if ((size_t)n < sizeof(buf)) {
		memcpy(s, buf, (size_t)n);
	} else if (nc_tok_decode(j->h->tok, &tok, 1, s, (size_t)n) != n) {
		free(s);
		return -1;
	}
	s[n] = 0;
	j->lp[j->n_lp++] = (struct oai_tok_lp){ .text = s, .logprob = logprob,
						.offset = (uint32_t)j->dec_bytes };
	return 0;
}

static void lp_clear(struct job *j)
{
	for (uint32_t i = 0; i < j->n_lp; i++)
		free(j->lp[i].text);
	j->n_lp = 0;
}

/* Decode one token through the detokenizer and the stop strings. */
static int push_token(struct job *j, int32_t tok)
{
	char buf[128], *big = NULL, *p = buf;
	long n = nc_detok_push(&j->dt, j->h->tok, tok, buf, sizeof(buf));
	int rc;

	if (n > (long)sizeof(buf)) {
		big = malloc((size_t)n);
		if (!big)
			return -1;
		p = big;
		n = nc_detok_push(&j->dt, j->h->tok, tok, big, (size_t)n);
	}
	if (n < 0) {
		free(big);
		return -1;
	}
	j->dec_bytes += (size_t)n;
	rc = oai_stop_feed(&j->stop, p, (size_t)n, &j->text);
	free(big);
	return rc;
}

static const char *finish_name(uint32_t fin)
{
	return fin == FW_FIN_STOP ? "stop" : "length";
}

/* Take one event.  1 when the request is over for the client (j->finish
 * set, or j->fail on a card error), 0 to go on, -1 out of memory. */
static int take(struct job *j, const struct ev *ev)
{
	struct nc_http *h = j->h;
	char tail[16];
	long n;
	int hit = 0;

	if (ev->kind == NC_EV_ERROR) {
		j->fail = j->card_err[0] ? j->card_err : "the card refused the request";
		return 1;
	}
	j->cached = ev->cached;
	if (ev->kind == NC_EV_TOKEN) {
		j->completion++;
		j->step_ns = ev->step_ns;
		ADD(h->m->completion_tokens, 1);
		nc_hist_add(&h->m->card_step, ev->step_ns);
		if (j->script) {
			/* tests: a few characters of the script per token */
			size_t a = j->script_off, b = a + 3 < j->script_len ? a + 3 : j->script_len;

			while (b < j->script_len && ((unsigned char)j->script[b] & 0xc0) == 0x80)
				b++;
			if (ev->last)	/* the card stopped first: the rest at once */
				b = j->script_len;
			j->script_off = b;
			hit = oai_stop_feed(&j->stop, j->script + a, b - a, &j->text);
			if (hit < 0)
				return -1;
			if (!hit && b == j->script_len) {
				if (oai_stop_finish(&j->stop, &j->text))
					return -1;
				hit = 1;
			}
		} else if (!(ev->last && ev->finish == FW_FIN_STOP && is_stop_id(j, ev->token))) {
			if (j->req.logprobs && add_lp(j, ev->token, ev->logprob))
				return -1;
			hit = push_token(j, ev->token);
			if (hit < 0)
				return -1;
		}
	}
	if (hit) {
		j->finish = "stop";
		if (!ev->last)
			job_cancel(j);
		return 1;
	}
	if (!ev->last)
		return 0;
	if (ev->kind == NC_EV_DONE && ev->finish == FW_FIN_CANCEL) {
		j->fail = "cancelled";
		return 1;
	}
	n = nc_detok_flush(&j->dt, tail, sizeof(tail));
	if (n > 0 && oai_stop_feed(&j->stop, tail, (size_t)n, &j->text) < 0)
		return -1;
	if (j->stop.hit) {
		j->finish = "stop";
		return 1;
	}
	if (oai_stop_finish(&j->stop, &j->text))
		return -1;
	j->finish = finish_name(ev->finish);
	return 1;
}

/* The text the stop strings let through (j->text, taken), split into content
 * (j->content), reasoning (j->reason) and tool calls (j->os), as it streams;
 * at the end (the request finished) whatever the parser held. */
static int route(struct job *j, int rc)
{
	if (!j->parse || rc < 0)
		return rc;
	if (nc_outparse_feed(&j->op, j->text.p ? j->text.p : "", j->text.len, &j->os) ||
	    (rc == 1 && j->finish && nc_outparse_finish(&j->op, &j->os)))
		return -1;
	nc_obuf_clear(&j->text);
	if (nc_obuf_put(&j->content, j->os.content.p ? j->os.content.p : "", j->os.content.len) ||
	    nc_obuf_put(&j->reason, j->os.reasoning.p ? j->os.reasoning.p : "",
			j->os.reasoning.len))
		return -1;
	j->os.content.len = j->os.reasoning.len = 0;
	if (j->os.n > j->calls_named) {
		/* new calls: an id each; the parser's array may have moved, so
		 * every entry points into it again */
		struct oai_call *c = realloc(j->calls, j->os.n * sizeof(*c));

		if (!c)
			return -1;
		j->calls = c;
		for (; j->calls_named < j->os.n; j->calls_named++) {
			char id[64];

			snprintf(id, sizeof(id), "call_%.16s%u", j->id + strlen(j->id) - 16,
				 j->calls_named);
			if (!(c[j->calls_named].id = strdup(id)))
				return -1;
		}
		for (uint32_t i = 0; i < j->os.n; i++) {
			c[i].name = j->os.calls[i].name;
			c[i].arguments = j->os.calls[i].arguments;
		}
	}
	if (rc == 1 && j->finish && j->os.n && !strcmp(j->finish, "stop"))
		j->finish = "tool_calls";
	if (rc == 1 && j->op.malformed)
		ADD(j->h->m->tool_calls_malformed, j->op.malformed);
	return rc;
}

static void count_outcome(struct job *j)
{
	struct nc_metrics *m = j->h->m;

	if (j->counted)
		return;
	j->counted = 1;
	if (j->finish)
		ADD(m->requests_ok, 1);
	else if (j->fail && !strcmp(j->fail, "client disconnected"))
		ADD(m->requests_cancelled, 1);
	else
		ADD(m->requests_error, 1);
}

static void fill_result(const struct job *j, struct oai_result *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = j->req.kind;
	r->id = j->id;
	r->created = j->created;
	r->model = j->h->model;
	r->text = j->text.p ? j->text.p : "";
	r->logprobs = j->req.logprobs;
	r->lp = j->lp;
	r->n_lp = j->n_lp;
	r->prompt_tokens = j->n_ids;
	r->completion_tokens = j->completion;
	r->cached_tokens = j->cached;
	if (j->parse) {
		r->text = j->content.p ? j->content.p : "";
		r->reasoning = j->reason.p ? j->reason.p : "";
		r->calls = j->calls + j->calls_sent;
		r->n_calls = j->os.n - j->calls_sent;
		r->call_base = j->calls_sent;
	}
}

/* ---- streaming -------------------------------------------------------- */

static int out_put(struct job *j, char *s)
{
	int rc = s ? nc_obuf_put(&j->out, s, strlen(s)) : -1;

	free(s);
	return rc;
}

/* A chunk with the text decoded so far; records socket latencies. */
static int stream_delta(struct job *j, const char *finish)
{
	struct nc_metrics *m = j->h->m;
	struct oai_result r;
	uint64_t t, lat;

	if (!j->text.len && !j->content.len && !j->n_lp && !finish && !j->reason.len &&
	    j->calls_sent == j->os.n)
		return 0;
	int said = j->text.len || j->content.len || j->reason.len || j->n_lp ||
		   j->calls_sent != j->os.n;

	fill_result(j, &r);
	r.finish = finish;
	if (out_put(j, oai_chunk_sse(&r)))
		return -1;
	j->calls_sent = j->os.n;
	nc_obuf_clear(&j->reason);
	nc_obuf_clear(&j->content);
	if (said) {
		t = now_ns();
		lat = t - (j->sent_first ? j->t_last : j->t_rx);
		nc_hist_add(j->sent_first ? &m->itl : &m->ttft, lat);
		if (lat > j->step_ns)
			nc_hist_add(&m->overhead, lat - j->step_ns);
		j->t_last = t;
		j->sent_first = 1;
	}
	nc_obuf_clear(&j->text);
	lp_clear(j);
	return 0;
}

static int stream_end(struct job *j)
{
	struct oai_result r;

	if (j->finish) {
		if (stream_delta(j, j->finish))
			return -1;
		if (j->req.include_usage) {
			fill_result(j, &r);
			r.usage = r.usage_only = 1;
			if (out_put(j, oai_chunk_sse(&r)))
				return -1;
		}
	} else {
		struct oai_error e;

		oai_set_error(&e, 500, "server_error", NULL, "generation_failed", "%s", j->fail);
		char *json = oai_error_json(&e);
		int rc = json ? out_put(j, oai_sse(json)) : -1;

		free(json);
		if (rc)
			return -1;
	}
	count_outcome(j);
	j->sse_done = 1;
	return nc_obuf_put(&j->out, OAI_SSE_DONE, strlen(OAI_SSE_DONE));
}

/* Wait for events until there is something to send.  0 or -1 (abort). */
static int stream_fill(struct job *j)
{
	struct ev ev;
	int rc;

	while (!j->out.len) {
		if (!job_next(j, &ev)) {
			count_outcome(j);
			if (strcmp(j->fail, "client disconnected"))
				return stream_end(j);
			return -1;
		}
		rc = route(j, take(j, &ev));
		if (rc < 0)
			return -1;
		if (rc)
			return stream_end(j);
		if (stream_delta(j, NULL))
			return -1;
	}
	return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct job *j = cls;
	size_t n;

	(void)pos;
	if (j->out_off == j->out.len) {
		nc_obuf_clear(&j->out);
		j->out_off = 0;
		if (j->sse_done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (stream_fill(j))
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = j->out.len - j->out_off;
	if (n > max)
		n = max;
	memcpy(buf, j->out.p + j->out_off, n);
	j->out_off += n;
	return (ssize_t)n;
}

static void sse_free(void *cls)
{
	struct job *j = cls;

	if (!j->sse_done) {
		if (!j->fail)
			j->fail = "client disconnected";
		job_cancel(j);
		count_outcome(j);
	}
	job_put(j);
}

/* ---- completions ------------------------------------------------------ */

/* The prompt text of a chat request body through the chat template. */
static char *render_body(struct nc_http *h, const char *body, size_t len, struct oai_error *e)
{
	cJSON *req = cJSON_ParseWithLength(body, len);
	char msg[240], *text = NULL;
	size_t n;

	if (!cJSON_IsObject(req)) {
		oai_set_error(e, 400, "invalid_request_error", NULL, "invalid_json",
			      "the body is not a JSON object");
	} else if (!(text = nc_render_chat(h->tmpl, h->tok, req, 1, &n, msg, sizeof(msg)))) {
		oai_set_error(e, 400, "invalid_request_error", "messages", "chat_template",
			      "the chat template cannot render this request: %s", msg);
	}
	cJSON_Delete(req);
	return text;
}

static int build_prompt(struct nc_http *h, struct job *j, const struct conn *cs,
			struct oai_error *e)
{
	struct oai_req *r = &j->req;
	char *text = r->prompt, *chat = NULL;
	long n;

	if (r->ids) {
		j->ids = r->ids;
		j->n_ids = r->n_ids;
		r->ids = NULL;
		return 0;
	}
	if (r->kind == OAI_CHAT) {
		size_t k;

		chat = render_body(h, cs->body.p, cs->body.len, e);
		if (!chat)
			return -1;
		text = chat;
		/* the prompt may leave the model inside a <think> block */
		for (k = strlen(chat); k && (chat[k - 1] == '\n' || chat[k - 1] == ' '); k--)
			;
		j->parse = h->think || r->tools;
		if (h->script && cJSON_GetArraySize(h->script) > 0) {
			uint32_t at = atomic_fetch_add(&h->script_next, 1) %
				      (uint32_t)cJSON_GetArraySize(h->script);
			const cJSON *s = cJSON_GetArrayItem(h->script, (int)at);

			j->script = cJSON_IsString(s) ? s->valuestring : "";
			j->script_len = strlen(j->script);
		}
		nc_outparse_init(&j->op, h->think, h->think && k >= 7 &&
				 !memcmp(chat + k - 7, "<think>", 7), r->tools);
	}
	n = nc_tok_encode(h->tok, text, strlen(text), NULL, 0);
	if (n >= 0) {
		j->ids = malloc(((size_t)n + 1) * sizeof(*j->ids));
		if (!j->ids)
			goto nomem;
		n = nc_tok_encode(h->tok, text, strlen(text), j->ids, (size_t)n + 1);
	}
	free(chat);
	if (n < 0) {
		oai_set_error(e, 400, "invalid_request_error", "prompt", "invalid_value",
			      "cannot tokenize the prompt");
		return -1;
	}
	j->n_ids = (uint32_t)n;
	return 0;
nomem:
	free(chat);
	oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
	return -1;
}

/* Lengths against the card's context and prompt buffer; picks max_new. */
static int check_lengths(struct nc_http *h, struct job *j, struct oai_error *e)
{
	uint32_t ctx = h->e->ctrl->ctx, pcap = h->e->ctrl->prompt_cap, want;
	uint32_t room = j->n_ids < ctx ? ctx - j->n_ids : 0;
	const char *param = j->req.kind == OAI_CHAT ? "messages" : "prompt";

	if (j->n_ids == 0) {
		oai_set_error(e, 400, "invalid_request_error", param, "invalid_value",
			      "the prompt is empty");
		return -1;
	}
	if (j->n_ids > pcap || room == 0) {
		oai_set_error(e, 400, "invalid_request_error", param, "context_length_exceeded",
			      "the prompt has %u tokens; this server takes at most %u",
			      j->n_ids, (pcap < ctx - 1 ? pcap : ctx - 1));
		return -1;
	}
	want = j->req.max_tokens;
	if (!want) {
		want = j->req.kind == OAI_CHAT ? h->max_tokens : DEFAULT_TOKENS;
		if (want > h->max_tokens)
			want = h->max_tokens;
		if (want > room)
			want = room;
	} else if (want > room) {
		oai_set_error(e, 400, "invalid_request_error", "max_tokens",
			      "context_length_exceeded",
			      "this model's maximum context length is %u tokens, but %u were "
			      "requested (%u in the prompt, %u for the completion)",
			      ctx, j->n_ids + want, j->n_ids, want);
		return -1;
	}
	j->max_new = want;
	return 0;
}

static int submit(struct nc_http *h, struct job *j, struct oai_error *e)
{
	struct nc_sched_req sr = { .ids = j->ids, .n_ids = j->n_ids, .max_new = j->max_new,
				   .on_event = on_event, .user = j };
	char err[256];
	int rc;

	sr.smp.temperature = j->req.temperature;
	sr.smp.top_p = j->req.top_p;
	sr.smp.top_k = j->req.top_k;
	sr.smp.seed = j->req.has_seed ? j->req.seed
				      : mix64(now_ns() ^ atomic_fetch_add(&h->seq, 1) << 32);
	for (uint32_t i = 0; i < j->req.n_stop_ids; i++)
		add_stop_id(j, j->req.stop_ids[i]);
	if (j->req.kind == OAI_CHAT) {
		add_stop_id(j, h->im_end);
		add_stop_id(j, h->eos);
	}
	memcpy(sr.stop, j->stop_ids, sizeof(sr.stop));
	sr.n_stop = j->n_stop_ids;
	j->qcap = j->max_new + 2;
	j->q = calloc(j->qcap, sizeof(*j->q));
	if (!j->q) {
		oai_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
		return -1;
	}
	j->refs++;		/* the scheduler's reference, dropped at its last event */
	rc = nc_sched_submit(h->s, &sr, &j->sid, err, sizeof(err));
	if (rc == 0)
		return 0;
	j->refs--;
	if (rc == -EBUSY) {
		ADD(h->m->requests_busy, 1);
		oai_set_error(e, 429, "server_busy", NULL, "server_busy",
			      "the card is busy (%s); retry later", err);
	} else if (rc == -EIO) {	/* failed, or being reset */
		oai_set_error(e, 503, "server_error", NULL, "card_unavailable", "%s", err);
	} else {
		oai_set_error(e, 400, "invalid_request_error", NULL, "invalid_value", "%s", err);
	}
	return -1;
}

static enum MHD_Result reply_whole(struct MHD_Connection *c, struct job *j)
{
	struct oai_result r;
	struct ev ev;
	int rc = 0;

	while (rc == 0) {
		if (!job_next(j, &ev))
			break;
		rc = route(j, take(j, &ev));
	}
	count_outcome(j);
	if (rc < 0 || !j->finish) {
		int gone = j->fail && !strcmp(j->fail, "client disconnected");

		if (gone)
			return MHD_NO;
		return send_err(c, 500, "server_error", "generation_failed",
				rc < 0 ? "out of memory" : j->fail);
	}
	fill_result(j, &r);
	r.finish = j->finish;
	r.usage = 1;
	return send_json(c, MHD_HTTP_OK, oai_response_json(&r));
}

static enum MHD_Result start_stream(struct MHD_Connection *c, struct job *j)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (j->req.kind == OAI_CHAT) {
		struct oai_result r;

		fill_result(j, &r);
		r.role = 1;
		r.logprobs = 0;
		if (out_put(j, oai_chunk_sse(&r)))
			j->out.len = 0;	/* the role chunk is optional */
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, j, sse_free);
	if (!resp) {
		j->fail = "out of memory";
		job_cancel(j);
		count_outcome(j);
		job_put(j);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	/* from here the response owns the connection's reference: sse_free
	 * drops it when the stream is over or could not be queued */
	rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result do_completion(struct nc_http *h, struct MHD_Connection *c,
				     struct conn *cs)
{
	enum oai_kind kind = cs->rt == RT_CHAT ? OAI_CHAT : OAI_COMPLETION;
	struct oai_limits lim = { h->model, h->max_tokens, h->e->cfg.vocab };
	const union MHD_ConnectionInfo *ci;
	struct oai_error e;
	struct job *j;
	enum MHD_Result rc;

	ADD(h->m->http_requests, 1);
	j = job_new(h);
	if (!j)
		return send_body(c, 500, NULL, NULL);
	j->t_rx = cs->t_rx;
	j->created = (long long)time(NULL);
	snprintf(j->id, sizeof(j->id), "%s-%016llx", kind == OAI_CHAT ? "chatcmpl" : "cmpl",
		 (unsigned long long)mix64(now_ns() + atomic_fetch_add(&h->seq, 1)));
	if (oai_parse(kind, cs->body.p, cs->body.len, &lim, &j->req, &e) ||
	    build_prompt(h, j, cs, &e) || check_lengths(h, j, &e) ||
	    admit_key(h, j, cs, &e) || submit(h, j, &e)) {
		if (e.status == 429 && cs->key >= 0) {
			job_put(j);
			return send_retry(c, &e, cs->retry_after);
		}
		if (e.status != 429)
			ADD(h->m->requests_error, 1);
		job_put(j);
		return send_error(c, &e);
	}
	ADD(h->m->prompt_tokens, j->n_ids);
	nc_detok_init(&j->dt);
	j->dt.skip_special = 1;
	oai_stop_init(&j->stop, j->req.stop, j->req.n_stop);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	j->fd = ci ? ci->connect_fd : -1;
	if (j->req.stream)
		return start_stream(c, j);
	rc = reply_whole(c, j);
	job_put(j);
	return rc;
}

/* ---- other endpoints -------------------------------------------------- */

static char *model_json(struct nc_http *h, int list)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "{\"id\":\"%s\",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"nextcard\","
			 "\"context_length\":%u,\"max_tokens\":%u}",
			 h->model, h->started, h->e->ctrl->ctx, h->max_tokens);
	char *s = malloc(sizeof(buf) + 64);

	if (!s || n < 0 || (size_t)n >= sizeof(buf)) {
		free(s);
		return NULL;
	}
	if (list)
		sprintf(s, "{\"object\":\"list\",\"data\":[%s]}", buf);
	else
		strcpy(s, buf);
	return s;
}

static const char *card_state_name(uint32_t st)
{
	static const char *const n[] = { "off", "booted", "configured", "running", "failed" };

	return st < sizeof(n) / sizeof(n[0]) ? n[st] : "unknown";
}

/* Liveness: the process answers (200), whatever the card's state. */
static enum MHD_Result do_health(struct nc_http *h, struct MHD_Connection *c)
{
	struct nc_sched_stats st;
	uint32_t state = atomic_load_explicit(&h->e->ctrl->state, memory_order_relaxed);
	char *s = malloc(512);

	nc_sched_get_stats(h->s, &st);
	if (s)
		snprintf(s, 512,
			 "{\"status\":\"ok\",\"model\":\"%s\",\"card\":\"%s\","
			 "\"card_state\":\"%s\",\"slots\":%u,\"slots_active\":%u,\"queue\":%u,"
			 "\"queue_capacity\":%u,\"context_length\":%u}",
			 h->model, shim_backend(h->e->card), card_state_name(state), st.slots,
			 st.active, st.queued, st.queue_cap, h->e->ctrl->ctx);
	return send_json(c, MHD_HTTP_OK, s);
}

/* Readiness: 200 while the card runs the model; 503 with the card's state
 * and its last error otherwise (a balancer sends nothing here). */
static enum MHD_Result do_ready(struct nc_http *h, struct MHD_Connection *c)
{
	struct nc_sched_stats st;
	uint32_t state;
	int ok;
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;

	nc_sched_get_stats(h->s, &st);
	state = atomic_load_explicit(&h->e->ctrl->state, memory_order_acquire);
	ok = state == FW_ST_RUNNING && !st.resetting;
	if (o) {
		cJSON_AddBoolToObject(o, "ready", ok);
		cJSON_AddStringToObject(o, "card_state", st.resetting ? "resetting" :
					card_state_name(state));
		if (!ok && !st.resetting)
			cJSON_AddStringToObject(o, "error", h->e->ctrl->error);
		cJSON_AddNumberToObject(o, "card_faults", (double)st.faults);
		cJSON_AddNumberToObject(o, "card_resets", (double)st.resets);
		if (st.faults)	/* the card's error at the last fault */
			cJSON_AddStringToObject(o, "last_fault", h->e->last_fault);
		s = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
	}
	return send_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, s);
}

static enum MHD_Result do_metrics(struct nc_http *h, struct MHD_Connection *c)
{
	struct nc_sched_stats st;
	struct shim_stats ss;
	uint64_t rd = 0;
	size_t cap = 1 << 16, n;
	char *buf = NULL;

	nc_sched_get_stats(h->s, &st);
	shim_get_stats(h->e->card, &ss);
	for (int k = 0; k < KRNL_COUNT; k++)
		rd += ss.krnl_rd[k];
	if (st.steps)
		atomic_store_explicit(&h->m->hbm_bytes_per_token, rd / st.steps,
				      memory_order_relaxed);
	for (;;) {
		char *p = realloc(buf, cap);

		if (!p)
			break;
		buf = p;
		n = nc_metrics_render(h->m, &st, buf, cap);
		n += (size_t)snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0,
				      "# HELP nextcard_hbm_read_bytes_total HBM bytes read by the kernels.\n"
				      "# TYPE nextcard_hbm_read_bytes_total counter\n"
				      "nextcard_hbm_read_bytes_total %llu\n"
				      "# HELP nextcard_sched_submitted_total Requests the scheduler accepted.\n"
				      "# TYPE nextcard_sched_submitted_total counter\n"
				      "nextcard_sched_submitted_total %llu\n"
				      "# HELP nextcard_sched_completed_total Requests the scheduler finished.\n"
				      "# TYPE nextcard_sched_completed_total counter\n"
				      "nextcard_sched_completed_total %llu\n"
				      "# HELP nextcard_sched_tokens_total Tokens the scheduler delivered.\n"
				      "# TYPE nextcard_sched_tokens_total counter\n"
				      "nextcard_sched_tokens_total %llu\n",
				      (unsigned long long)rd, (unsigned long long)st.submitted,
				      (unsigned long long)st.completed, (unsigned long long)st.tokens);
		if (h->keys) {
			/* usage by key name (never the key) */
			static struct nc_key_usage u[NC_KEYS_MAX];
			static pthread_mutex_t umu = PTHREAD_MUTEX_INITIALIZER;
			static const char *const what[3][2] = {
				{ "nextcard_key_requests_total", "Requests admitted, by API key name." },
				{ "nextcard_key_tokens_total", "Prompt and completion tokens, by API key name." },
				{ "nextcard_key_refused_total", "Requests over a key's quota (429), by API key name." },
			};

			pthread_mutex_lock(&umu);
			uint32_t nu = nc_keys_usage(h->keys, u, NC_KEYS_MAX);
			for (int w = 0; w < 3; w++) {
				n += (size_t)snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0,
						      "# HELP %s %s\n# TYPE %s counter\n", what[w][0],
						      what[w][1], what[w][0]);
				for (uint32_t i = 0; i < nu; i++)
					n += (size_t)snprintf(n < cap ? buf + n : NULL, n < cap ? cap - n : 0,
							      "%s{key=\"%s\"} %llu\n", what[w][0], u[i].name,
							      (unsigned long long)(w == 0 ? u[i].requests :
										   w == 1 ? u[i].tokens : u[i].refused));
			}
			pthread_mutex_unlock(&umu);
		}
		if (n < cap)
			return send_body(c, MHD_HTTP_OK, buf, "text/plain; version=0.0.4");
		cap = n + 1;
	}
	free(buf);
	return send_body(c, 500, NULL, NULL);
}

/* ---- routing ---------------------------------------------------------- */

static enum route route_of(const char *url, const char **method_want)
{
	static const struct { const char *url, *method; enum route rt; } tab[] = {
		{ "/v1/completions", "POST", RT_COMPLETIONS },
		{ "/v1/chat/completions", "POST", RT_CHAT },
		{ "/v1/models", "GET", RT_MODELS },
		{ "/health", "GET", RT_HEALTH },
		{ "/ready", "GET", RT_READY },
		{ "/metrics", "GET", RT_METRICS },
		{ "/apply-template", "POST", RT_APPLY_TEMPLATE },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (!strcmp(url, tab[i].url)) {
			*method_want = tab[i].method;
			return tab[i].rt;
		}
	}
	if (!strncmp(url, "/v1/models/", 11)) {
		*method_want = "GET";
		return RT_MODEL;
	}
	*method_want = NULL;
	return RT_NONE;
}

static enum MHD_Result dispatch(struct nc_http *h, struct MHD_Connection *c, struct conn *cs,
				const char *url)
{
	cs->key = -1;
	if (h->keys && cs->rt != RT_HEALTH && cs->rt != RT_READY && cs->rt != RT_METRICS &&
	    cs->rt != RT_NONE) {
		cs->key = nc_keys_find(h->keys, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
									    MHD_HTTP_HEADER_AUTHORIZATION));
		if (cs->key < 0) {
			ADD(h->m->requests_unauthorized, 1);
			return send_err(c, 401, "invalid_request_error", "invalid_api_key",
					"a valid API key is required: send it as 'Authorization: Bearer KEY'");
		}
	}
	switch (cs->rt) {
	case RT_COMPLETIONS:
	case RT_CHAT:
		if (cs->too_big) {
			char msg[96];

			ADD(h->m->http_requests, 1);
			ADD(h->m->requests_error, 1);
			snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes",
				 h->max_body);
			return send_err(c, 413, "invalid_request_error", "request_too_large", msg);
		}
		return do_completion(h, c, cs);
	case RT_MODELS:
		return send_json(c, MHD_HTTP_OK, model_json(h, 1));
	case RT_MODEL:
		if (strcmp(url + 11, h->model))
			return send_err(c, 404, "invalid_request_error", "model_not_found",
					"no such model");
		return send_json(c, MHD_HTTP_OK, model_json(h, 0));
	case RT_HEALTH:
		return do_health(h, c);
	case RT_READY:
		return do_ready(h, c);
	case RT_METRICS:
		return do_metrics(h, c);
	case RT_APPLY_TEMPLATE: {
		/* llama.cpp server's convention: the rendered prompt, nothing run */
		struct oai_error e;
		char *text;
		cJSON *o;

		if (cs->too_big)
			return send_err(c, 413, "invalid_request_error", "request_too_large",
					"the request body is too large");
		text = render_body(h, cs->body.p, cs->body.len, &e);
		if (!text)
			return send_error(c, &e);
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "prompt", text)) {
			cJSON_Delete(o);
			free(text);
			return send_body(c, 500, NULL, NULL);
		}
		free(text);
		char *json = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		return send_json(c, MHD_HTTP_OK, json);
	}
	default:
		return send_err(c, 404, "invalid_request_error", "not_found", "no such endpoint");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **con_cls)
{
	struct nc_http *h = cls;
	struct conn *cs = *con_cls;
	const char *want;

	(void)version;
	if (!cs) {
		enum route rt = route_of(url, &want);
		const char *cl;

		if (want && strcmp(method, want)) {
			struct MHD_Response *r;
			char msg[64];
			enum MHD_Result rc;
			struct oai_error e;

			snprintf(msg, sizeof(msg), "use %s on %s", want, url);
			oai_set_error(&e, 405, "invalid_request_error", NULL, "method_not_allowed",
				      "%s", msg);
			char *json = oai_error_json(&e);
			if (!json)
				return MHD_NO;
			r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
			if (!r) {
				free(json);
				return MHD_NO;
			}
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
			MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, want);
			rc = MHD_queue_response(c, 405, r);
			MHD_destroy_response(r);
			return rc;
		}
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		cs->rt = rt;
		cs->t_rx = now_ns();
		*con_cls = cs;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > h->max_body) {
			cs->too_big = 1;
			return dispatch(h, c, cs, url);	/* refuse before reading the body */
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!cs->too_big && cs->body.len + *upload_size > h->max_body)
			cs->too_big = 1;
		if (!cs->too_big && nc_obuf_put(&cs->body, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	return dispatch(h, c, cs, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *cs = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cs) {
		nc_obuf_free(&cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

/* ---- start / stop ----------------------------------------------------- */

static int parse_bind(const char *bind, uint16_t port, struct sockaddr_storage *sa, int *v6)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, bind, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*v6 = 0;
		return 0;
	}
	if (inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*v6 = 1;
		return 0;
	}
	return -1;
}


static int is_loopback(const char *bind)
{
	return !strncmp(bind, "127.", 4) || !strcmp(bind, "::1") || !strcmp(bind, "localhost");
}

int nc_http_reload_keys(struct nc_http *h, char *err, size_t errlen)
{
	if (!h->keys) {
		snprintf(err, errlen, "no --keys file to reload");
		return -1;
	}
	return nc_keys_reload(h->keys, h->keys_path, err, errlen);
}

int nc_http_start(struct nc_http **out, const struct nc_http_opts *o, struct nc_sched *s,
		  struct nc_engine *e, const struct nc_tokenizer *tok, struct nc_metrics *m,
		  char *err, size_t errlen)
{
	const char *bind = o->bind ? o->bind : "127.0.0.1";
	const union MHD_DaemonInfo *di;
	struct sockaddr_storage sa;
	struct nc_http *h;
	int v6;

	*out = NULL;
	if (!s || !e || !tok || !m) {
		snprintf(err, errlen, "http: scheduler, engine, tokenizer and metrics are required");
		return -1;
	}
	if (parse_bind(bind, o->port, &sa, &v6)) {
		snprintf(err, errlen, "http: --bind '%s' is not an IPv4 or IPv6 address", bind);
		return -1;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "http: out of memory");
		return -1;
	}
	h->s = s;
	h->e = e;
	h->tok = tok;
	h->m = m;
	snprintf(h->model, sizeof(h->model), "%s", o->model_name ? o->model_name : "nextcard");
	h->max_body = o->max_body ? o->max_body : DEFAULT_BODY;
	h->max_tokens = o->max_tokens ? o->max_tokens : DEFAULT_CAP;
	h->eos = nc_tok_eos_id(tok);
	h->im_end = nc_tok_id(tok, "<|im_end|>");
	h->started = (long long)time(NULL);
	if (!o->keys && !o->insecure_public && !is_loopback(bind)) {
		snprintf(err, errlen, "http: --bind %s without --keys would open the port to anyone:"
			 " give --keys FILE, or --insecure-public if the network is trusted", bind);
		free(h);
		return -1;
	}
	if (o->keys && nc_keys_load(&h->keys, o->keys, err, errlen)) {
		free(h);
		return -1;
	}
	h->keys_path = o->keys;
	if (o->chat_template || nc_tok_chat_template(tok)) {
		char e2[300];

		h->tmpl = nc_render_compile(tok, o->chat_template, e2, sizeof(e2));
		if (!h->tmpl) {
			snprintf(err, errlen, "http: %s", e2);
			nc_keys_free(h->keys);
			free(h);
			return -1;
		}
		h->think = strstr(nc_jinja_source(h->tmpl), "</think>") != NULL;
	} else {
		h->tmpl = nc_jinja_compile(chatml, sizeof(chatml) - 1, NULL, 0);
		if (!h->tmpl) {
			snprintf(err, errlen, "http: out of memory");
			nc_keys_free(h->keys);
			free(h);
			return -1;
		}
	}
	if (o->script_output) {
		FILE *f = fopen(o->script_output, "rb");
		char buf[1 << 16];
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = 0;
		h->script = cJSON_Parse(buf);
		if (!cJSON_IsArray(h->script)) {
			snprintf(err, errlen, "http: --script-output %s: not a JSON list of strings",
				 o->script_output);
			cJSON_Delete(h->script);
			nc_jinja_free(h->tmpl);
			nc_keys_free(h->keys);
			free(h);
			return -1;
		}
	}
	h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0),
				o->port, NULL, NULL, on_request, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				MHD_OPTION_CONNECTION_LIMIT,
				(unsigned int)(o->max_conns ? o->max_conns : 256),
				MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				(unsigned int)o->max_conns_per_ip,
				MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)(o->idle_timeout_s ? o->idle_timeout_s : 60),
				MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
				MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "http: cannot listen on %s port %u: %s", bind, o->port,
			 errno ? strerror(errno) : "libmicrohttpd refused");
		nc_jinja_free(h->tmpl);
		cJSON_Delete(h->script);
		nc_keys_free(h->keys);
			free(h);
		return -1;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : o->port;
	*out = h;
	return 0;
}

uint16_t nc_http_port(const struct nc_http *h)
{
	return h->port;
}

void nc_http_stop(struct nc_http *h)
{
	if (!h)
		return;
	atomic_store(&h->stopping, 1);
	MHD_stop_daemon(h->d);
	/* jobs the scheduler still holds drain as the owner keeps polling */
	for (int i = 0; i < 200 && atomic_load_explicit(&h->live, memory_order_acquire); i++)
		usleep(10000);
	if (atomic_load_explicit(&h->live, memory_order_acquire)) {
		fprintf(stderr, "nextcard http: %u requests still on the card at stop; not freeing\n",
			atomic_load(&h->live));
		return;
	}
	nc_jinja_free(h->tmpl);
	cJSON_Delete(h->script);
	nc_keys_free(h->keys);
	free(h);
}
