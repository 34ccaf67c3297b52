/* dp_card.c — engine + scheduler behind dp_card.h (see there for why). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/engine.h"
#include "model/sched.h"
#include "net/dp/dp_card.h"
#include "net/proto.h"

#if __has_include("api/http.h")
#include "api/http.h"
#define DP_HAVE_HTTP 1
#else
#define DP_HAVE_HTTP 0
#endif

struct dp_card {
	struct nc_engine *e;
	struct nc_sched *s;
	uint32_t queue_cap;
#if DP_HAVE_HTTP
	struct nc_http *http;
#endif
};

/* One card per process: the scheduler's callback has only the request's
 * user pointer, so the data plane's handler lives here. */
static dp_card_event_fn dp_event_fn;

static int map_finish(uint32_t f)
{
	switch (f) {
	case FW_FIN_STOP: return DP_FIN_STOP;
	case FW_FIN_CANCEL: return DP_FIN_CANCEL;
	case FW_FIN_LENGTH:
	case FW_FIN_CTX: return DP_FIN_LENGTH;
	default: return DP_FIN_LENGTH;
	}
}

static void on_event(void *user, const struct nc_sched_event *ev)
{
	struct dp_card_ev o = {
		.token = ev->token, .index = ev->index, .last = ev->last,
		.step_ns = ev->step_ns, .batch = ev->batch, .error = ev->error,
	};

	switch (ev->kind) {
	case NC_EV_TOKEN: o.kind = DP_EV_TOKEN; break;
	case NC_EV_DONE: o.kind = DP_EV_DONE; break;
	default: o.kind = DP_EV_ERROR; break;
	}
	if (o.last)
		o.finish = o.kind == DP_EV_ERROR ? DP_FIN_ERROR : map_finish(ev->finish);
	dp_event_fn(user, &o);
}

/* Run the engine's own threads (the emulated card) off the polling CPUs:
 * they inherit the affinity of the thread that creates them. */
static int open_engine(struct nc_engine **e, const struct nc_engine_opts *o,
		       uint64_t keep_off, char *err, size_t errlen)
{
	cpu_set_t old, set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int moved = 0, rc;

	CPU_ZERO(&set);
	for (long i = 0; i < ncpu && i < 64; i++)
		if (!(keep_off >> i & 1))
			CPU_SET(i, &set);
	if (keep_off && CPU_COUNT(&set) &&
	    !pthread_getaffinity_np(pthread_self(), sizeof(old), &old))
		moved = !pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	rc = nc_engine_open(e, o, err, errlen);
	if (moved)
		pthread_setaffinity_np(pthread_self(), sizeof(old), &old);
	return rc;
}

int dp_card_open(struct dp_card **out, const char *model_dir, const char *card,
		 const char *board, const char *quant, uint32_t ctx,
		 const struct nc_engine_opts *pool, uint32_t queue_cap,
		 uint64_t keep_off, dp_card_event_fn fn, char *err, size_t errlen)
{
	struct nc_engine_opts o = { .model_dir = model_dir, .card = card,
				    .board = board, .ctx_limit = ctx, .quant = quant,
				    .verbose = 1, .seqs = pool->seqs, .kv_pages = pool->kv_pages,
				    .prefix_every = pool->prefix_every,
				    .prefix_budget = pool->prefix_budget, .kv = pool->kv,
				    .watchdog_ms = pool->watchdog_ms,
				    .inject_fault = pool->inject_fault, .mtp = pool->mtp,
				    .spec = pool->spec };
	struct dp_card *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dp_event_fn = fn;
	if (open_engine(&c->e, &o, keep_off, err, errlen)) {
		free(c);
		return -1;
	}
	c->queue_cap = queue_cap;
	c->s = nc_sched_new(c->e, queue_cap);
	if (!c->s) {
		snprintf(err, errlen, "out of memory for the scheduler");
		nc_engine_close(c->e);
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void dp_card_close(struct dp_card *c)
{
	if (!c)
		return;
	nc_sched_free(c->s);
	nc_engine_close(c->e);
	free(c);
}

void dp_card_info(const struct dp_card *c, struct dp_card_info *info)
{
	info->vocab = c->e->cfg.vocab;
	info->ctx = c->e->ctrl->ctx_limit ? c->e->ctrl->ctx_limit : 4096;
	info->slots = c->e->n_seqs;
	info->queue_cap = c->queue_cap;
	_Static_assert(FW_MAX_STOP >= NC_MAX_STOP + 1, "the wire's stop ids and end-of-sequence fit the card");
	info->max_stop = FW_MAX_STOP;
	info->load_ns = c->e->load_ns;
	info->backend = shim_backend(c->e->card);
}

int dp_card_submit(struct dp_card *c, const struct dp_card_req *r,
		   uint64_t *handle, char *err, size_t errlen)
{
	struct nc_sched_req q = {
		.ids = r->ids, .n_ids = r->n_ids, .max_new = r->max_new,
		.smp = { .temperature = r->temperature, .top_p = r->top_p,
			 .top_k = r->top_k, .seed = r->seed },
		.n_stop = r->n_stop, .on_event = on_event, .release = r->release,
		.user = r->user,
	};

	if (r->n_stop > FW_MAX_STOP) {
		snprintf(err, errlen, "at most %u stop ids", FW_MAX_STOP);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < r->n_stop; i++)
		q.stop[i] = r->stop[i];
	return nc_sched_submit(c->s, &q, handle, err, errlen);
}

int dp_card_cancel(struct dp_card *c, uint64_t handle)
{
	return nc_sched_cancel(c->s, handle);
}

int dp_card_poll(struct dp_card *c)
{
	return nc_sched_poll(c->s);
}

uint32_t dp_card_queue_pos(struct dp_card *c, uint64_t handle)
{
	return nc_sched_queue_pos(c->s, handle);
}

void dp_card_stats(struct dp_card *c, struct dp_card_stats *st)
{
	struct nc_sched_stats s;

	nc_sched_get_stats(c->s, &s);
	st->active = s.active;
	st->queued = s.queued;
	st->queue_cap = s.queue_cap;
	st->slots = s.slots;
	st->steps = s.steps;
	st->tokens = s.tokens;
	st->refused_busy = s.refused_busy;
	st->spec = s.spec;
	st->drafted = s.drafted;
	st->accepted = s.accepted;
}

const char *dp_card_fault_news(struct dp_card *c, struct nc_fault_seen *seen, char *buf,
			       size_t len)
{
	return nc_sched_fault_news(c->s, seen, buf, len);
}

#if DP_HAVE_HTTP
int dp_card_http_start(struct dp_card *c, uint16_t port, const char *model_name,
		       const struct nc_tokenizer *tok, struct nc_metrics *m,
		       char *err, size_t errlen)
{
	struct nc_http_opts o = { .port = port, .model_name = model_name };

	return nc_http_start(&c->http, &o, c->s, c->e, tok, m, err, errlen) ? -1 : 0;
}

struct stopper {
	struct nc_http *h;
	atomic_int done;
};

static void *stop_thread(void *arg)
{
	struct stopper *st = arg;

	nc_http_stop(st->h);
	atomic_store(&st->done, 1);
	return NULL;
}

void dp_card_http_stop(struct dp_card *c)
{
	struct stopper st = { .h = c->http };
	pthread_t th;

	if (!c->http)
		return;
	if (pthread_create(&th, NULL, stop_thread, &st)) {
		nc_http_stop(c->http);	/* no thread: stop without polling */
	} else {
		while (!atomic_load(&st.done))
			nc_sched_poll(c->s);
		pthread_join(th, NULL);
	}
	c->http = NULL;
}
#else
/* HOOK(http): host/api/http.h is not in this tree yet; --http-port refuses. */
int dp_card_http_start(struct dp_card *c, uint16_t port, const char *model_name,
		       const struct nc_tokenizer *tok, struct nc_metrics *m,
		       char *err, size_t errlen)
{
	snprintf(err, errlen, "this build has no HTTP layer (host/api/http.h)");
	return -1;
}

void dp_card_http_stop(struct dp_card *c)
{
}
#endif
