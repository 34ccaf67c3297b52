/* sched.c — slots, FIFO and event delivery. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/sched.h"

enum { R_FREE = 0, R_QUEUED, R_RUNNING };

struct req {
	int state;
	uint64_t id;
	uint32_t slot;
	uint32_t generated;
	uint32_t cached;	/* prompt positions the card restored from its prefix cache */
	int cancel_sent;
	struct nc_sched_req r;
};

struct nc_sched {
	pthread_mutex_t lock;
	struct nc_engine *e;
	uint32_t cap;		/* table entries: slots + queue */
	uint32_t queue_cap;
	struct req *tab;
	uint64_t *fifo;		/* ids waiting, oldest at head */
	uint32_t fhead, fcount;
	uint64_t next_id;
	struct nc_sched_stats st;
	int failed;		/* the card failed: every request got an error */
	int resetting;		/* a poller is resetting the card (outside the lock) */
	int reset;		/* reset a failed card (not --no-card-reset) */
	int reset_failed;	/* a reset did not bring it back: failed for good */
	char why[600];
};

struct nc_sched *nc_sched_new(struct nc_engine *e, uint32_t queue_cap)
{
	struct nc_sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->e = e;
	s->queue_cap = queue_cap;
	s->reset = !e->o.no_reset;
	s->cap = e->n_seqs + queue_cap;
	s->tab = calloc(s->cap, sizeof(*s->tab));
	s->fifo = calloc(queue_cap ? queue_cap : 1, sizeof(*s->fifo));
	s->next_id = 1;
	if (!s->tab || !s->fifo || pthread_mutex_init(&s->lock, NULL)) {
		free(s->tab);
		free(s->fifo);
		free(s);
		return NULL;
	}
	return s;
}

void nc_sched_free(struct nc_sched *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->tab);
	free(s->fifo);
	free(s);
}

/* Handles carry their table index in the low bits: id = n * cap + index. */
static struct req *find(struct nc_sched *s, uint64_t id)
{
	struct req *q = &s->tab[id % s->cap];

	return q->state != R_FREE && q->id == id ? q : NULL;
}

static struct req *alloc_req(struct nc_sched *s)
{
	for (uint32_t i = 0; i < s->cap; i++) {
		uint64_t id = s->next_id++;
		struct req *q = &s->tab[id % s->cap];

		if (q->state == R_FREE) {
			memset(q, 0, sizeof(*q));
			q->id = id;
			return q;
		}
	}
	return NULL;
}

static void deliver(struct req *q, struct nc_sched_event *ev)
{
	ev->id = q->id;
	ev->prompt_tokens = q->r.n_ids;
	ev->completion_tokens = q->generated;
	ev->cached_tokens = q->cached;
	if (q->r.on_event)
		q->r.on_event(q->r.user, ev);
	if (ev->last)
		q->state = R_FREE;
}

static void release(struct req *q)
{
	if (q->r.release) {
		q->r.release(q->r.user);
		q->r.release = NULL;
	}
	q->r.ids = NULL;
}

/* Put a request on a free slot: 0, or -EBUSY if none, -EINVAL if refused. */
static int start(struct nc_sched *s, struct req *q, char *err, size_t errlen)
{
	int rc = nc_engine_submit_ex(s->e, q->r.ids, q->r.n_ids, q->r.max_new, 0, &q->r.smp,
				     q->r.stop, q->r.n_stop, q->id, &q->slot, err, errlen);

	if (rc)
		return strstr(err, "sequences busy") ? -EBUSY : -EINVAL;
	release(q);
	q->state = R_RUNNING;
	s->st.started++;
	return 0;
}

/* The card failed: every request running or waiting ends with an error now
 * (its client is told at once, not when it times out). */
static void fail_all(struct nc_sched *s)
{
	snprintf(s->why, sizeof(s->why), "the card failed: %s",
		 s->e->ctrl->error[0] ? s->e->ctrl->error : "no reason given");
	s->failed = 1;
	for (uint32_t i = 0; i < s->cap; i++) {
		struct req *q = &s->tab[i];
		struct nc_sched_event ev = { .kind = NC_EV_ERROR, .token = -1, .last = 1,
					     .error = s->why };

		if (q->state != R_RUNNING && q->state != R_QUEUED)
			continue;
		release(q);
		s->st.errors++;
		deliver(q, &ev);
	}
	s->fcount = 0;
}

int nc_sched_submit(struct nc_sched *s, const struct nc_sched_req *r, uint64_t *id,
		    char *err, size_t errlen)
{
	struct req *q;
	int rc;

	if (!r->ids || r->n_ids == 0 || r->max_new == 0 || r->n_stop > FW_MAX_STOP) {
		snprintf(err, errlen, "request needs a prompt, max_new >= 1 and <= %u stop ids",
			 FW_MAX_STOP);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	if (s->failed) {
		snprintf(err, errlen, "%s", s->why);
		pthread_mutex_unlock(&s->lock);
		return -EIO;
	}
	q = alloc_req(s);
	if (!q) {
		s->st.refused_busy++;
		pthread_mutex_unlock(&s->lock);
		snprintf(err, errlen, "busy: all slots and the queue are full");
		return -EBUSY;
	}
	q->r = *r;
	rc = s->fcount ? -EBUSY : start(s, q, err, errlen);
	if (rc == -EBUSY) {
		if (s->fcount == s->queue_cap) {
			s->st.refused_busy++;
			q->state = R_FREE;
			pthread_mutex_unlock(&s->lock);
			snprintf(err, errlen, "busy: %u requests already queued", s->queue_cap);
			return -EBUSY;
		}
		q->state = R_QUEUED;
		s->fifo[(s->fhead + s->fcount++) % s->queue_cap] = q->id;
		rc = 0;
	}
	if (rc == 0) {
		s->st.submitted++;
		*id = q->id;
	} else {
		q->state = R_FREE;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void drop_from_fifo(struct nc_sched *s, uint64_t id)
{
	uint32_t w = 0;

	for (uint32_t i = 0; i < s->fcount; i++) {
		uint64_t v = s->fifo[(s->fhead + i) % s->queue_cap];
		if (v != id)
			s->fifo[(s->fhead + w++) % s->queue_cap] = v;
	}
	s->fcount = w;
}

int nc_sched_cancel(struct nc_sched *s, uint64_t id)
{
	struct req *q;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	q = find(s, id);
	if (!q) {
		rc = -ENOENT;
	} else if (q->state == R_QUEUED) {
		struct nc_sched_event ev = { .kind = NC_EV_DONE, .token = -1, .last = 1,
					     .finish = FW_FIN_CANCEL };
		drop_from_fifo(s, id);
		release(q);
		s->st.cancelled++;
		deliver(q, &ev);
	} else if (!q->cancel_sent) {
		q->cancel_sent = 1;
		rc = nc_engine_cancel(s->e, q->slot) ? -EAGAIN : 0;
		if (rc)
			q->cancel_sent = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void on_result(struct nc_sched *s, const struct fw_res *res, int *events)
{
	struct req *q = find(s, res->tag);
	struct nc_sched_event ev = { 0 };

	if (!q || q->state != R_RUNNING)
		return;
	if (res->kind == FW_RES_ACK) {
		if (res->op == FW_OP_SUBMIT && res->status == 0)
			q->cached = res->value;
		if (res->op != FW_OP_SUBMIT || res->status == 0)
			return;
		ev.kind = NC_EV_ERROR;
		ev.last = 1;
		ev.error = "request refused by the card";
		s->st.errors++;
	} else if (res->kind == FW_RES_TOKEN) {
		ev.kind = res->token >= 0 ? NC_EV_TOKEN : NC_EV_DONE;
		ev.token = res->token;
		ev.logprob = res->logprob;
		ev.index = q->generated;
		ev.last = (res->flags & FW_RF_LAST) != 0;
		ev.finish = res->finish;
		ev.step_ns = res->step_ns;
		ev.batch = res->batch;
		if (res->token >= 0) {
			q->generated++;
			s->st.tokens++;
		}
		if (ev.last) {
			s->st.completed++;
			s->st.cancelled += res->finish == FW_FIN_CANCEL;
		}
	} else {
		return;
	}
	deliver(q, &ev);
	(*events)++;
}

static void admit(struct nc_sched *s)
{
	char err[256];

	while (s->fcount) {
		struct req *q = find(s, s->fifo[s->fhead]);
		int rc = q ? start(s, q, err, sizeof(err)) : 0;

		if (rc == -EBUSY)
			return;
		s->fhead = (s->fhead + 1) % s->queue_cap;
		s->fcount--;
		if (rc) {
			struct nc_sched_event ev = { .kind = NC_EV_ERROR, .token = -1, .last = 1,
						     .error = err };
			release(q);
			s->st.errors++;
			deliver(q, &ev);
		}
	}
}

int nc_sched_poll(struct nc_sched *s)
{
	struct fw_res res;
	int events = 0, rc;

	pthread_mutex_lock(&s->lock);
	if (s->resetting) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	while ((rc = nc_engine_poll(s->e, &res)) > 0)
		on_result(s, &res, &events);
	if (rc == 0)
		admit(s);
	else if (!s->failed)
		fail_all(s);
	if (rc < 0 && s->reset && !s->reset_failed) {
		/* bring the card back; new requests are refused meanwhile (the
		 * engine is this poller's alone: nothing runs on the card) */
		char err[300];
		int ok;

		s->resetting = 1;
		snprintf(s->why, sizeof(s->why), "the card failed (%s) and is being reset;"
			 " retry shortly", s->e->ctrl->error[0] ? s->e->ctrl->error :
			 "no reason given");
		pthread_mutex_unlock(&s->lock);
		ok = nc_engine_reset(s->e, err, sizeof(err)) == 0;
		pthread_mutex_lock(&s->lock);
		s->resetting = 0;
		if (ok) {
			s->failed = 0;
		} else {
			s->reset_failed = 1;
			snprintf(s->why, sizeof(s->why), "the card failed (%s) and %s",
				 s->e->last_fault, err);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? -1 : events;
}

const char *nc_sched_fault_news(struct nc_sched *s, struct nc_fault_seen *seen, char *buf,
				size_t len)
{
	const char *line = NULL;

	pthread_mutex_lock(&s->lock);
	if (s->e->resets > seen->resets) {
		snprintf(buf, len, "the card failed (%s); reset in %.2f s, serving again",
			 s->e->last_fault, s->e->reset_ns * 1e-9);
		seen->resets = s->e->resets;
		seen->failed = 0;
		line = buf;
	} else if (s->failed && !s->resetting && !seen->failed) {
		snprintf(buf, len, "%s; requests now get errors", s->why);
		seen->failed = 1;
		line = buf;
	}
	pthread_mutex_unlock(&s->lock);
	return line;
}

void nc_sched_get_stats(struct nc_sched *s, struct nc_sched_stats *st)
{
	struct fw_ctrl *ctrl = s->e->ctrl;

	pthread_mutex_lock(&s->lock);
	*st = s->st;
	st->active = 0;
	for (uint32_t i = 0; i < s->cap; i++)
		st->active += s->tab[i].state == R_RUNNING;
	st->queued = s->fcount;
	st->queue_cap = s->queue_cap;
	st->slots = s->e->n_seqs;
	st->resetting = s->resetting;
	st->faults = s->e->faults;
	st->resets = s->e->resets;
	st->reset_ns = s->e->reset_ns;
	pthread_mutex_unlock(&s->lock);
	st->steps = atomic_load_explicit(&ctrl->steps, memory_order_relaxed);
	st->step_rows = atomic_load_explicit(&ctrl->step_rows, memory_order_relaxed);
	st->step_ns_total = atomic_load_explicit(&ctrl->step_ns_total, memory_order_relaxed);
	nc_engine_pool_stats(s->e, st);
}

uint32_t nc_sched_queue_pos(struct nc_sched *s, uint64_t id)
{
	uint32_t pos = 0;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->fcount; i++)
		if (s->fifo[(s->fhead + i) % s->queue_cap] == id) {
			pos = i + 1;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return pos;
}
