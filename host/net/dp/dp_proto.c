/* dp_proto.c — protocol v1 on the data-plane lcore: requests (zero copy
 * into the scheduler), fragments, ACK, CANCEL, PING, ERROR replies, and the
 * token events of the card turned into TOKEN/FINAL packets in place. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "net/dp/dp.h"
#include "net/proto.h"

_Static_assert((int)DP_FIN_STOP == (int)NC_FIN_STOP &&
	       (int)DP_FIN_LENGTH == (int)NC_FIN_LENGTH &&
	       (int)DP_FIN_CANCEL == (int)NC_FIN_CANCEL &&
	       (int)DP_FIN_ERROR == (int)NC_FIN_ERROR,
	       "dp_card finish reasons are the wire's");

#define BUSY_RETRY_MS	100

struct dp *dp_self;

static inline struct dp_req *req_of(struct dp *d, const struct nc_sess *s)
{
	return &d->reqs[s->st - d->sess.streams];
}

static inline uint64_t now_ns(struct dp *d)
{
	return dp_ns(d, rte_rdtsc());
}

static void to_peer(const struct dp_peer *p, struct nc_peer *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, &p->ip, 4);
	out->port = rte_be_to_cpu_16(p->port);
	out->family = 4;
}

/* At most DP_RL_PER_SEC answers to malformed packets per source address. */
static int rl_allow(struct dp *d, uint32_t ip)
{
	uint32_t slot = (ip * 2654435761u) >> 22 & (DP_RL_SLOTS - 1);
	uint32_t sec = (uint32_t)(d->now_tsc / d->tsc_hz);

	if (d->rl[slot].ip != ip || d->rl[slot].sec != sec) {
		d->rl[slot].ip = ip;
		d->rl[slot].sec = sec;
		d->rl[slot].count = 0;
	}
	if (d->rl[slot].count >= DP_RL_PER_SEC) {
		d->c.nc_rate_limited++;
		return 0;
	}
	d->rl[slot].count++;
	return 1;
}

/* ERROR reply; limited: a reply to a malformed packet (rate-limited, no text). */
static void send_error(struct dp *d, const struct dp_peer *to, uint64_t rid,
		       uint32_t seq, uint16_t code, uint8_t bad_type,
		       uint32_t detail, const char *msg, int limited)
{
	struct nc_error_view e = { .code = code, .bad_type = bad_type,
				   .max_version = NC_VERSION, .detail = detail };
	struct rte_mbuf *m;
	uint8_t *pl;
	int len;

	if (limited && !rl_allow(d, to->ip))
		return;
	if (msg && !limited) {
		e.msg = (const uint8_t *)msg;
		e.msg_len = (uint16_t)strnlen(msg, NC_MAX_ERR_MSG);
	}
	m = dp_udp_alloc(d, to, NC_MAX_PKT, &pl);
	if (!m)
		return;
	len = nc_build_error(pl, NC_MAX_PKT, rid, seq, &e);
	if (len < 0) {
		rte_pktmbuf_free(m);
		return;
	}
	d->c.nc_errors_sent++;
	dp_udp_send(d, m, (uint16_t)len, NULL);
}

static void send_accepted(struct dp *d, struct nc_sess *s, uint32_t queue_pos)
{
	struct dp_req *r = req_of(d, s);
	struct nc_accepted a = { .queue_pos = queue_pos,
				 .prompt_tokens = s->prompt_tokens,
				 .window = d->sess.cfg.window, .rx_ns = s->rx_ns };
	struct rte_mbuf *m;
	uint8_t *pl;
	int len;

	m = dp_udp_alloc(d, &r->to, NC_MAX_PKT, &pl);
	if (!m)
		return;
	len = nc_build_accepted(pl, NC_MAX_PKT, s->rid, &a);
	if (len < 0) {
		rte_pktmbuf_free(m);
		return;
	}
	dp_udp_send(d, m, (uint16_t)len, NULL);
}

/* queue_pos of a session's request: 1 + the requests ahead of it, 0 when it
 * runs. */
static uint32_t queue_pos(struct dp *d, const struct nc_sess *s)
{
	return s->state == NC_SS_QUEUED ? dp_card_queue_pos(d->card, s->handle) : 0;
}

/* Session callbacks. */
static int ops_send(void *ctx, struct nc_sess *s, const struct nc_sess_pkt *p,
		    int retrans, uint64_t now)
{
	struct dp *d = ctx;
	struct dp_req *r = req_of(d, s);
	uint16_t flags = retrans ? NC_F_RETRANS : 0;
	struct dp_txmeta meta = { .req = -1 };
	struct rte_mbuf *m;
	uint8_t *pl;
	int len;

	m = dp_udp_alloc(d, &r->to, NC_MAX_PKT, &pl);
	if (!m)
		return -1;
	if (p->final) {
		struct nc_final f = {
			.reason = s->final_reason, .err_code = s->final_err,
			.prompt_tokens = s->prompt_tokens,
			.completion_tokens = s->n_tok, .rx_ns = s->rx_ns,
		};
		if (!retrans)
			s->last_tx_ns = now;
		f.tx_ns = s->last_tx_ns;
		len = nc_build_final(pl, NC_MAX_PKT, s->rid, p->seq, flags, &f);
	} else {
		struct nc_token_out *t = &s->st->tok[p->first];

		if (!retrans) {
			for (unsigned i = 0; i < p->n; i++)
				t[i].tx_ns = now;
			meta.req = (int32_t)(s->st - d->sess.streams);
			meta.n_tokens = p->n;
			meta.first = p->first == 0;
			meta.card_ns = t[p->n - 1].card_ns;
			meta.ev_tsc = d->poll_tsc;
			d->c.tx_token_pkts++;
		}
		len = nc_build_token(pl, NC_MAX_PKT, s->rid, p->seq, flags, p->first,
				     s->rx_ns, t, p->n, s->st->text + p->text_off,
				     (uint16_t)p->text_len);
	}
	if (len < 0) {
		rte_pktmbuf_free(m);
		return -1;
	}
	d->c.tx_retrans += retrans != 0;
	dp_udp_send(d, m, (uint16_t)len, meta.req >= 0 ? &meta : NULL);
	return 0;
}

static void ops_accepted(void *ctx, struct nc_sess *s)
{
	struct dp *d = ctx;

	send_accepted(d, s, queue_pos(d, s));
}

static void ops_cancel(void *ctx, struct nc_sess *s)
{
	struct dp *d = ctx;

	if (s->in_sched)
		dp_card_cancel(d->card, s->handle);
}

/* The scheduler is done with the prompt memory. */
static void release_prompt(void *user)
{
	struct dp *d = dp_self;
	struct nc_sess *s = user;
	struct dp_req *r;

	if (!s->st)
		return;
	r = req_of(d, s);
	if (r->hold) {
		rte_pktmbuf_free(r->hold);
		r->hold = NULL;
	}
	if (r->has_reasm) {
		nc_reasm_release(&d->reasm, r->reasm_handle);
		r->has_reasm = 0;
	}
	if (!s->cancel_asked) {
		r->started = 1;
		nc_sess_running(&d->sess, s);
	}
}

/* Text of a token through the stop matcher: what may go out now is left in
 * r->stop_out; 1 when a stop string completed. */
static int stop_feed(struct dp *d, struct dp_req *r, const char *in, long n, int last)
{
	int hit;

	nc_obuf_clear(&r->stop_out);
	hit = oai_stop_feed(&r->stopper, in, (size_t)n, &r->stop_out);
	if (hit == 0 && last)
		hit = oai_stop_finish(&r->stopper, &r->stop_out);
	if (hit < 0) {	/* cannot happen: both buffers are preallocated */
		nc_obuf_clear(&r->stop_out);
		return 0;
	}
	if (hit == 1)
		d->c.stop_text_hits++;
	return hit;
}

void dp_card_event(void *user, const struct dp_card_ev *ev)
{
	struct dp *d = dp_self;
	struct nc_sess *s = user;
	struct dp_req *r;
	char text[512];
	const char *piece = text;
	long n = 0;

	if (!s->st)
		return;
	r = req_of(d, s);
	if (ev->kind == DP_EV_TOKEN && !r->stop_hit) {	/* after a stop: dropped */
		if ((r->text_out || r->n_stop_str) && d->tok)
			n = dp_text_detok_push(&r->detok, d->tok, ev->token, ev->last,
					       text, sizeof(text));
		if (r->n_stop_str && d->tok) {
			if (stop_feed(d, r, text, n, ev->last) == 1) {
				r->stop_hit = 1;
				if (!ev->last) {	/* told to the scheduler after the poll */
					r->stop_cancel = 1;
					d->stop_cancels++;
				}
			}
			piece = r->stop_out.p;
			n = (long)r->stop_out.len;
		}
		if (!r->text_out)
			n = 0;	/* matched, not sent: the ids still are */
		nc_sess_token(&d->sess, s, (uint32_t)ev->token,
			      ev->step_ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ev->step_ns,
			      (const uint8_t *)piece, (uint32_t)n, now_ns(d));
		atomic_fetch_add_explicit(&d->m->completion_tokens, 1, memory_order_relaxed);
	}
	if (!ev->last)
		return;
	d->c.polls_with_events++;
	if (r->stop_cancel) {	/* ended before the cancel went out */
		r->stop_cancel = 0;
		d->stop_cancels--;
	}
	if (ev->kind == DP_EV_ERROR && s->n_tok == 0) {
		send_error(d, &r->to, s->rid, 0, NC_WE_INTERNAL, NC_T_REQUEST, 0,
			   ev->error, 0);
		atomic_fetch_add_explicit(&d->m->requests_error, 1, memory_order_relaxed);
		nc_sess_end(&d->sess, s, now_ns(d));
		return;
	}
	if (r->stop_hit) {	/* a stop string ended it, whatever the card says */
		atomic_fetch_add_explicit(&d->m->requests_ok, 1, memory_order_relaxed);
		nc_sess_finish(&d->sess, s, NC_FIN_STOP, 0, now_ns(d));
		return;
	}
	if (ev->kind == DP_EV_ERROR)
		atomic_fetch_add_explicit(&d->m->requests_error, 1, memory_order_relaxed);
	else if (ev->finish == DP_FIN_CANCEL)
		atomic_fetch_add_explicit(&d->m->requests_cancelled, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&d->m->requests_ok, 1, memory_order_relaxed);
	nc_sess_finish(&d->sess, s, (uint8_t)ev->finish,
		       ev->kind == DP_EV_ERROR ? NC_WE_INTERNAL : 0, now_ns(d));
}

void dp_proto_after_poll(struct dp *d)
{
	uint32_t i = d->sess.live_head;

	while (i && d->stop_cancels) {
		struct nc_sess *s = &d->sess.s[i - 1];
		struct dp_req *r;

		i = s->lnext;
		if (!s->st)
			continue;
		r = req_of(d, s);
		if (!r->stop_cancel)
			continue;
		r->stop_cancel = 0;	/* first: cancel may end it synchronously */
		d->stop_cancels--;
		if (!s->in_sched || s->cancel_asked)
			continue;
		if (dp_card_cancel(d->card, s->handle) == -EAGAIN && s->in_sched) {
			r->stop_cancel = 1;	/* the card's ring was full: next poll */
			d->stop_cancels++;
		}
	}
}

/* Check the body's model, stop ids and prompt; 0 or an ERROR already sent. */
static int check_body(struct dp *d, const struct dp_peer *from, uint64_t rid,
		      const struct nc_request_view *v)
{
	uint32_t limit = d->ctx;	/* a prompt as long as the context still says one token */

	if (v->model_len && (v->model_len != strlen(d->model_name) ||
			     memcmp(v->model, d->model_name, v->model_len))) {
		send_error(d, from, rid, 0, NC_WE_UNKNOWN_MODEL, NC_T_REQUEST, 0,
			   "unknown model", 0);
		return -1;
	}
	if (v->n_stop > d->max_stop) {
		send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST, 0,
			   "too many stop ids for this card", 0);
		return -1;
	}
	for (uint32_t i = 0; i < v->n_stop; i++)
		if (nc_id_at(v->stop_ids, i) >= d->vocab) {
			send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST,
				   d->vocab, "stop id outside the vocabulary", 0);
			return -1;
		}
	if (v->n_stop_str && !d->tok) {
		send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST, 0,
			   "stop strings not supported", 0);
		return -1;
	}
	if (v->text_len) {
		if (!d->tok) {
			send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST, 0,
				   "text prompts not supported", 0);
			return -1;
		}
		return 0;
	}
	if (v->n_prompt > limit) {
		send_error(d, from, rid, 0, NC_WE_TOO_LONG, NC_T_REQUEST, limit,
			   "prompt longer than the context", 0);
		return -1;
	}
	for (uint32_t i = 0; i < v->n_prompt; i++)
		if (nc_id_at(v->prompt_ids, i) >= d->vocab) {
			send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST,
				   d->vocab, "prompt id outside the vocabulary", 0);
			return -1;
		}
	return 0;
}

/* The prompt as the card reads it: in place when aligned (zero copy),
 * else realigned or tokenized into r->ids.  Returns the count, or -1 with
 * an ERROR sent. */
static long prompt_ids(struct dp *d, struct dp_req *r, const struct dp_peer *from,
		       uint64_t rid, const struct nc_request_view *v,
		       const int32_t **ids)
{
	uint32_t limit = d->ctx;	/* a prompt as long as the context still says one token */
	long n;

	if (v->text_len) {
		n = dp_text_encode(d->tok, v->text, v->text_len, r->ids, limit);
		d->c.req_text++;
		if (n > (long)limit) {
			send_error(d, from, rid, 0, NC_WE_TOO_LONG, NC_T_REQUEST, limit,
				   "prompt longer than the context", 0);
			return -1;
		}
		if (n <= 0) {
			send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST, 0,
				   "text prompt gives no tokens", 0);
			return -1;
		}
		*ids = r->ids;
		return n;
	}
	if (((uintptr_t)v->prompt_ids & 3) == 0) {
		*ids = (const int32_t *)(const void *)v->prompt_ids;
		d->c.ids_zero_copy++;
		return v->n_prompt;
	}
	memcpy(r->ids, v->prompt_ids, (size_t)v->n_prompt * 4);	/* LE host */
	atomic_fetch_add_explicit(&d->m->payload_copied_bytes, (uint64_t)v->n_prompt * 4,
				  memory_order_relaxed);
	d->c.ids_realigned++;
	*ids = r->ids;
	return v->n_prompt;
}

/* The request's stop strings, copied (the packet or reassembly buffer goes
 * back before generation ends), and a matcher that keeps its buffer. */
static void stop_setup(struct dp *d, struct dp_req *r, const struct nc_request_view *v)
{
	struct nc_obuf hold = r->stopper.hold;
	size_t off = 0;

	r->n_stop_str = v->n_stop_str;
	r->stop_hit = 0;
	r->stop_cancel = 0;
	for (uint32_t i = 0; i < v->n_stop_str; i++) {
		memcpy(r->stop_buf + off, v->stop_str[i], v->stop_str_len[i] + 1u);
		r->stop_ptr[i] = r->stop_buf + off;
		off += v->stop_str_len[i] + 1u;
	}
	if (off)
		atomic_fetch_add_explicit(&d->m->payload_copied_bytes, off,
					  memory_order_relaxed);
	oai_stop_init(&r->stopper, r->stop_ptr, r->n_stop_str);
	r->stopper.hold = hold;
	nc_obuf_clear(&r->stopper.hold);
	nc_obuf_clear(&r->stop_out);
}

/* A complete request body.  m: the packet holding it (zero copy), or NULL
 * when it sits in the reassembly buffer `handle`.  Returns 1 if m is kept. */
static int handle_request(struct dp *d, struct rte_mbuf *m, int reasm,
			  uint32_t handle, const struct nc_request_view *v,
			  const struct dp_peer *from, uint64_t rid, uint64_t rx_tsc)
{
	struct nc_peer key;
	struct nc_sess *s;
	struct dp_req *r;
	struct dp_card_req q = { 0 };
	const int32_t *ids = NULL;
	char err[160];
	long n;
	int rc, keep;

	to_peer(from, &key);
	s = nc_sess_find(&d->sess, &key, rid);
	if (s) {
		d->c.req_dup++;
		if (nc_sess_dup(&d->sess, s, dp_ns(d, rx_tsc)))
			send_accepted(d, s, queue_pos(d, s));
		goto drop;
	}
	if (check_body(d, from, rid, v)) {
		d->c.req_bad++;
		goto drop;
	}
	s = nc_sess_admit(&d->sess, &key, rid, dp_ns(d, rx_tsc));
	if (!s) {
		d->c.req_busy++;
		atomic_fetch_add_explicit(&d->m->requests_busy, 1, memory_order_relaxed);
		send_error(d, from, rid, 0, NC_WE_BUSY, NC_T_REQUEST, BUSY_RETRY_MS,
			   "busy: no room for another request", 0);
		goto drop;
	}
	r = req_of(d, s);
	r->to = *from;
	r->hold = NULL;
	r->has_reasm = 0;
	r->started = 0;
	r->rx_tsc = rx_tsc;
	r->last_tx_tsc = 0;
	r->text_out = (v->s.flags & NC_RQ_TEXT_OUT) != 0;
	dp_text_detok_init(&r->detok);
	stop_setup(d, r, v);
	n = prompt_ids(d, r, from, rid, v, &ids);
	if (n < 0) {
		d->c.req_bad++;
		nc_sess_abort(&d->sess, s);
		goto drop;
	}
	s->prompt_tokens = (uint32_t)n;
	s->text_out = r->text_out;
	s->max_tokens = v->s.max_tokens;
	/* the token after the last position needs no position of its own */
	if (s->max_tokens > d->ctx - (uint32_t)n + 1)
		s->max_tokens = d->ctx - (uint32_t)n + 1;
	if (s->max_tokens > d->sess.cfg.tok_cap)
		s->max_tokens = d->sess.cfg.tok_cap;
	for (uint32_t i = 0; i < v->n_stop; i++)
		r->stop[q.n_stop++] = (int32_t)nc_id_at(v->stop_ids, i);
	if (d->eos >= 0 && q.n_stop < d->max_stop) {
		uint32_t i;

		for (i = 0; i < q.n_stop && r->stop[i] != d->eos; i++)
			;
		if (i == q.n_stop)
			r->stop[q.n_stop++] = d->eos;
	}
	keep = ids != r->ids;
	if (keep) {	/* the card reads the ids where they are */
		if (reasm) {
			r->has_reasm = 1;
			r->reasm_handle = handle;
		} else {
			r->hold = m;
		}
	}
	q.ids = ids;
	q.n_ids = (uint32_t)n;
	q.max_new = s->max_tokens;
	q.temperature = v->s.temperature;
	q.top_p = v->s.top_p;
	q.top_k = v->s.top_k;
	q.seed = v->s.flags & NC_RQ_SEED ? v->s.seed : rid ^ rx_tsc;
	q.stop = r->stop;
	q.release = release_prompt;
	q.user = s;
	s->in_sched = 1;
	rc = dp_card_submit(d->card, &q, &s->handle, err, sizeof(err));
	if (rc) {
		s->in_sched = 0;
		r->hold = NULL;
		r->has_reasm = 0;
		nc_sess_abort(&d->sess, s);
		if (rc == -EBUSY) {
			d->c.req_busy++;
			atomic_fetch_add_explicit(&d->m->requests_busy, 1, memory_order_relaxed);
			send_error(d, from, rid, 0, NC_WE_BUSY, NC_T_REQUEST,
				   BUSY_RETRY_MS, "busy: queue full", 0);
		} else if (rc == -EIO) {	/* the card failed */
			send_error(d, from, rid, 0, NC_WE_INTERNAL, NC_T_REQUEST, 0, err, 0);
		} else {
			d->c.req_bad++;
			send_error(d, from, rid, 0, NC_WE_MALFORMED, NC_T_REQUEST, 0, err, 0);
		}
		goto drop;
	}
	d->c.req_ok++;
	atomic_fetch_add_explicit(&d->m->udp_requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&d->m->prompt_tokens, (uint64_t)n, memory_order_relaxed);
	send_accepted(d, s, r->started ? 0 : dp_card_queue_pos(d->card, s->handle));
	if (reasm && !keep)
		nc_reasm_release(&d->reasm, handle);
	/* a kept mbuf or buffer goes back in release_prompt() (maybe already) */
	return !reasm && keep;
drop:
	if (reasm)
		nc_reasm_release(&d->reasm, handle);
	return 0;
}

static int frag_reason(int rc)
{
	switch (-rc) {
	case NC_E_DUP: return 0;
	case NC_E_CONFLICT: return 1;
	case NC_E_POOL_FULL: return 2;
	case NC_E_CLIENT_LIMIT: return 3;
	case NC_E_TOO_LONG: return 4;
	default: return 5;
	}
}

static void handle_frag(struct dp *d, const struct nc_pkt *p,
			const struct dp_peer *from, uint64_t rx_tsc)
{
	struct nc_reasm_done done;
	struct nc_request_view v;
	struct nc_peer key;
	struct nc_sess *s;
	uint64_t copied = d->reasm.st.bytes_copied;
	int rc;

	to_peer(from, &key);
	s = nc_sess_find(&d->sess, &key, p->h.rid);
	if (s) {	/* resent fragments of a request already admitted */
		if (p->u.frag.index == 0) {
			d->c.req_dup++;
			if (nc_sess_dup(&d->sess, s, dp_ns(d, rx_tsc)))
				send_accepted(d, s, queue_pos(d, s));
		}
		return;
	}
	rc = nc_reasm_add(&d->reasm, &key, p->h.rid, &p->u.frag, dp_ns(d, rx_tsc), &done);
	atomic_fetch_add_explicit(&d->m->payload_copied_bytes,
				  d->reasm.st.bytes_copied - copied, memory_order_relaxed);
	if (rc == 0)
		return;
	if (rc < 0) {
		d->c.frag_drop[frag_reason(rc)]++;
		if (rc == -NC_E_TOO_LONG)
			send_error(d, from, p->h.rid, 0, NC_WE_TOO_LONG, NC_T_REQUEST_FRAG,
				   d->reasm.cfg.client_bytes, "request too long", 0);
		else if (rc == -NC_E_POOL_FULL || rc == -NC_E_CLIENT_LIMIT)
			send_error(d, from, p->h.rid, 0, NC_WE_BUSY, NC_T_REQUEST_FRAG,
				   BUSY_RETRY_MS, "busy: reassembly full", 0);
		else if (rc == -NC_E_CONFLICT)
			send_error(d, from, p->h.rid, 0, NC_WE_MALFORMED, NC_T_REQUEST_FRAG,
				   0, NULL, 1);
		return;
	}
	d->c.req_frag_done++;
	rc = nc_parse_request_body(done.body, done.len, &v);
	if (rc < 0) {
		d->c.req_bad++;
		send_error(d, from, p->h.rid, 0, (uint16_t)nc_err_to_wire(rc),
			   NC_T_REQUEST_FRAG, rc == -NC_E_TOO_LONG ? NC_MAX_BODY : 0, NULL, 1);
		nc_reasm_release(&d->reasm, done.handle);
		return;
	}
	handle_request(d, NULL, 1, done.handle, &v, from, p->h.rid, rx_tsc);
}

static void handle_ack_cancel(struct dp *d, const struct nc_pkt *p,
			      const struct dp_peer *from)
{
	struct nc_peer key;
	struct nc_sess *s;

	to_peer(from, &key);
	s = nc_sess_find(&d->sess, &key, p->h.rid);
	if (!s) {
		if (p->h.type == NC_T_ACK)
			d->c.acks_unknown++;
		d->c.nc_unknown_req++;
		send_error(d, from, p->h.rid, p->h.seq, NC_WE_UNKNOWN_REQUEST,
			   p->h.type, 0, NULL, 1);
		return;
	}
	if (s->state == NC_SS_TOMB)
		return;
	if (p->h.type == NC_T_ACK) {
		nc_sess_ack(&d->sess, s, &p->u.ack, dp_ns(d, d->now_tsc));
		return;
	}
	d->c.cancels++;
	if (!s->cancel_asked) {
		s->cancel_asked = 1;
		if (s->in_sched)
			dp_card_cancel(d->card, s->handle);
	}
}

static void handle_ping(struct dp *d, const struct nc_pkt *p,
			const struct dp_peer *from)
{
	struct dp_card_stats st;
	struct nc_pong pong;
	struct rte_mbuf *m;
	uint8_t *pl;
	int len;

	dp_card_stats(d->card, &st);
	pong = (struct nc_pong){
		.client_ns = p->u.ping.client_ns, .server_ns = dp_ns(d, d->now_tsc),
		.slots_total = (uint16_t)st.slots, .slots_busy = (uint16_t)st.active,
		.queue_depth = st.queued, .queue_max = st.queue_cap,
	};
	m = dp_udp_alloc(d, from, NC_MAX_PKT, &pl);
	if (!m)
		return;
	len = nc_build_pong(pl, NC_MAX_PKT, p->h.seq, &pong);
	if (len < 0) {
		rte_pktmbuf_free(m);
		return;
	}
	/* PONG carries the PING's request id */
	nc_put64(pl + 8, p->h.rid);
	dp_udp_send(d, m, (uint16_t)len, NULL);
}

static int is_server_type(uint8_t t)
{
	return t == NC_T_ACCEPTED || t == NC_T_TOKEN || t == NC_T_FINAL ||
	       t == NC_T_PONG || t == NC_T_ERROR;
}

int dp_proto_rx(struct dp *d, struct rte_mbuf *m, const uint8_t *pl, uint16_t len,
		const struct dp_peer *from, uint64_t rx_tsc)
{
	struct nc_pkt p;
	int rc;

	if (len < 4 || pl[0] != NC_MAGIC0 || pl[1] != NC_MAGIC1) {
		d->c.nc_bad_magic++;	/* not ours: no answer */
		atomic_fetch_add_explicit(&d->m->rx_dropped, 1, memory_order_relaxed);
		return 0;
	}
	d->last_ours_tsc = rx_tsc;
	if (is_server_type(pl[3])) {
		d->c.nc_server_type++;	/* never answer server packets */
		atomic_fetch_add_explicit(&d->m->rx_dropped, 1, memory_order_relaxed);
		return 0;
	}
	rc = nc_parse(pl, len, &p);
	if (rc < 0) {
		uint64_t rid = 0;
		uint32_t seq = 0;

		atomic_fetch_add_explicit(&d->m->rx_dropped, 1, memory_order_relaxed);
		if (rc == -NC_E_VERSION) {
			d->c.nc_version++;
			send_error(d, from, 0, 0, NC_WE_VERSION, pl[3], NC_VERSION, NULL, 1);
			return 0;
		}
		d->c.nc_malformed++;
		if (len >= NC_HDR_LEN) {	/* v1 layout: fields are readable */
			rid = nc_le64(pl + 8);
			seq = nc_le32(pl + 16);
		}
		/* the type byte was read (is_server_type above): name it, even
		 * when it is no type we know; TOO_LONG says the limit */
		send_error(d, from, rid, seq, (uint16_t)nc_err_to_wire(rc), pl[3],
			   rc == -NC_E_TOO_LONG ? NC_MAX_BODY : 0, NULL, 1);
		return 0;
	}
	switch (p.h.type) {
	case NC_T_REQUEST:
		return handle_request(d, m, 0, 0, &p.u.req, from, p.h.rid, rx_tsc);
	case NC_T_REQUEST_FRAG:
		handle_frag(d, &p, from, rx_tsc);
		return 0;
	case NC_T_ACK:
	case NC_T_CANCEL:
		handle_ack_cancel(d, &p, from);
		return 0;
	case NC_T_PING:
		handle_ping(d, &p, from);
		return 0;
	default:
		d->c.nc_server_type++;
		return 0;
	}
}

int dp_proto_init(struct dp *d, const struct nc_sess_cfg *scfg, char *err, size_t errlen)
{
	static const struct nc_sess_ops ops = { ops_send, ops_accepted, ops_cancel };
	struct nc_reasm_cfg rcfg = NC_REASM_DEFAULT_CFG;
	int rc;

	dp_self = d;
	rc = nc_sess_init(&d->sess, scfg, &ops, d);
	if (rc) {
		snprintf(err, errlen, "session table: %s", nc_strerror(rc));
		return -1;
	}
	rc = nc_reasm_init(&d->reasm, &rcfg);
	if (rc) {
		snprintf(err, errlen, "reassembly pool: %s", nc_strerror(rc));
		return -1;
	}
	d->reqs = calloc(scfg->max_streams, sizeof(*d->reqs));
	if (!d->reqs) {
		snprintf(err, errlen, "out of memory for %u requests", scfg->max_streams);
		return -1;
	}
	for (uint32_t i = 0; i < scfg->max_streams; i++) {
		struct dp_req *r = &d->reqs[i];

		r->ids = calloc(d->ctx, sizeof(int32_t));
		r->stopper.hold.p = calloc(1, DP_STOP_BUF);
		r->stopper.hold.cap = DP_STOP_BUF;
		r->stop_out.p = calloc(1, DP_STOP_BUF);
		r->stop_out.cap = DP_STOP_BUF;
		if (!r->ids || !r->stopper.hold.p || !r->stop_out.p) {
			snprintf(err, errlen, "out of memory for prompt buffers");
			return -1;
		}
	}
	return 0;
}

void dp_proto_fini(struct dp *d)
{
	if (d->reqs) {
		for (uint32_t i = 0; i < d->sess.cfg.max_streams; i++) {
			if (d->reqs[i].hold)
				rte_pktmbuf_free(d->reqs[i].hold);
			free(d->reqs[i].ids);
			oai_stop_free(&d->reqs[i].stopper);
			nc_obuf_free(&d->reqs[i].stop_out);
		}
		free(d->reqs);
		d->reqs = NULL;
	}
	nc_reasm_fini(&d->reasm);
	nc_sess_fini(&d->sess);
}

void dp_proto_tick(struct dp *d, uint64_t now)
{
	unsigned n;

	nc_sess_tick(&d->sess, now);
	n = nc_reasm_expire(&d->reasm, now);
	d->c.frag_drop[6] += n;
}

/* Cancel every request the scheduler still holds and poll until they end
 * (bounded: 2 s), so prompt memory and mbufs come back before shutdown. */
void dp_proto_drain(struct dp *d)
{
	uint64_t until = rte_rdtsc() + 2 * d->tsc_hz;
	int busy;

	do {
		uint32_t i = d->sess.live_head;

		busy = 0;
		while (i) {
			struct nc_sess *s = &d->sess.s[i - 1];

			i = s->lnext;
			if (!s->in_sched)
				continue;
			busy = 1;
			if (!s->cancel_asked) {
				s->cancel_asked = 1;
				dp_card_cancel(d->card, s->handle);
			}
		}
		d->poll_tsc = rte_rdtsc();
		if (dp_card_poll(d->card) < 0)
			break;
		dp_tx_flush(d);
	} while (busy && rte_rdtsc() < until);
}
