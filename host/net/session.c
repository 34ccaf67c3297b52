/* session.c — per-request server state of protocol v1 (see session.h). */
#include "net/session.h"

#include <stdlib.h>
#include <string.h>

#define IDX(t, s)	((uint32_t)((s) - (t)->s) + 1)	/* index + 1 */
#define REC(t, i)	(&(t)->s[(i) - 1])
#define RESEND_BURST	16	/* timer resends at most this many at once */

static uint32_t hash_key(const struct nc_peer *p, uint64_t rid)
{
	uint64_t h = rid * 0x9e3779b97f4a7c15ull;

	for (unsigned i = 0; i < sizeof(p->addr); i++)
		h = (h ^ p->addr[i]) * 0x100000001b3ull;
	h = (h ^ p->port ^ (uint64_t)p->family << 16) * 0x100000001b3ull;
	return (uint32_t)(h ^ h >> 32);
}

static int same_key(const struct nc_sess *s, const struct nc_peer *p,
		    uint64_t rid)
{
	return s->rid == rid && s->peer.port == p->port &&
	       s->peer.family == p->family &&
	       !memcmp(s->peer.addr, p->addr, sizeof(p->addr));
}

int nc_sess_init(struct nc_sess_table *t, const struct nc_sess_cfg *cfg,
		 const struct nc_sess_ops *ops, void *ctx)
{
	size_t per, i;
	uint8_t *m;

	memset(t, 0, sizeof(*t));
	if (!cfg->max_sessions || !cfg->max_streams || !cfg->tok_cap ||
	    cfg->max_streams > cfg->max_sessions || !cfg->window ||
	    cfg->window > NC_SESS_WINDOW || cfg->max_sessions > (1u << 24) ||
	    !cfg->rto_min_ns || cfg->rto_max_ns < cfg->rto_min_ns || !ops->send)
		return -NC_E_INVAL;
	t->cfg = *cfg;
	t->ops = *ops;
	t->ctx = ctx;
	for (t->nbuckets = 1; t->nbuckets < 2 * cfg->max_sessions;)
		t->nbuckets <<= 1;
	per = (size_t)cfg->tok_cap * (sizeof(struct nc_token_out) + sizeof(uint32_t)) +
	      ((cfg->text_cap + 7u) & ~7u);
	t->s = calloc(cfg->max_sessions, sizeof(*t->s));
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	t->streams = calloc(cfg->max_streams, sizeof(*t->streams));
	t->mem = calloc(cfg->max_streams, per);
	if (!t->s || !t->bucket || !t->streams || !t->mem) {
		nc_sess_fini(t);
		return -NC_E_NOMEM;
	}
	for (i = 0; i < cfg->max_sessions; i++)
		t->s[i].hnext = i + 1 < cfg->max_sessions ? (uint32_t)i + 2 : 0;
	t->free_head = 1;
	m = t->mem;
	for (i = 0; i < cfg->max_streams; i++) {
		struct nc_stream *st = &t->streams[i];

		st->tok = (struct nc_token_out *)m;
		m += (size_t)cfg->tok_cap * sizeof(struct nc_token_out);
		st->text_end = (uint32_t *)m;
		m += (size_t)cfg->tok_cap * sizeof(uint32_t);
		st->text = m;
		m += (cfg->text_cap + 7u) & ~7u;
		st->next_free = i + 1 < cfg->max_streams ? (uint32_t)i + 2 : 0;
	}
	t->stream_free = 1;
	return 0;
}

void nc_sess_fini(struct nc_sess_table *t)
{
	free(t->s);
	free(t->bucket);
	free(t->streams);
	free(t->mem);
	memset(t, 0, sizeof(*t));
}

struct nc_sess *nc_sess_find(struct nc_sess_table *t,
			     const struct nc_peer *peer, uint64_t rid)
{
	uint32_t i = t->bucket[hash_key(peer, rid) & (t->nbuckets - 1)];

	while (i) {
		struct nc_sess *s = REC(t, i);

		if (same_key(s, peer, rid))
			return s;
		i = s->hnext;
	}
	return NULL;
}

/* Doubly linked lists (live requests, tombstones) through lnext/lprev. */
static void list_add_tail(struct nc_sess_table *t, uint32_t *head,
			  uint32_t *tail, struct nc_sess *s)
{
	uint32_t i = IDX(t, s);

	s->lnext = 0;
	s->lprev = tail ? *tail : 0;
	if (tail) {
		if (*tail)
			REC(t, *tail)->lnext = i;
		else
			*head = i;
		*tail = i;
		return;
	}
	/* no tail pointer: push at the head */
	s->lprev = 0;
	s->lnext = *head;
	if (*head)
		REC(t, *head)->lprev = i;
	*head = i;
}

static void list_del(struct nc_sess_table *t, uint32_t *head, uint32_t *tail,
		     struct nc_sess *s)
{
	if (s->lprev)
		REC(t, s->lprev)->lnext = s->lnext;
	else
		*head = s->lnext;
	if (s->lnext)
		REC(t, s->lnext)->lprev = s->lprev;
	else if (tail)
		*tail = s->lprev;
	s->lnext = s->lprev = 0;
}

static void hash_del(struct nc_sess_table *t, struct nc_sess *s)
{
	uint32_t *pp = &t->bucket[hash_key(&s->peer, s->rid) & (t->nbuckets - 1)];
	uint32_t i = IDX(t, s);

	while (*pp && *pp != i)
		pp = &REC(t, *pp)->hnext;
	if (*pp)
		*pp = s->hnext;
}

static void stream_put(struct nc_sess_table *t, struct nc_sess *s)
{
	if (!s->st)
		return;
	s->st->next_free = t->stream_free;
	t->stream_free = (uint32_t)(s->st - t->streams) + 1;
	s->st = NULL;
}

static void rec_free(struct nc_sess_table *t, struct nc_sess *s)
{
	hash_del(t, s);
	memset(s, 0, sizeof(*s));
	s->hnext = t->free_head;
	t->free_head = IDX(t, s);
}

static void tomb_pop(struct nc_sess_table *t)
{
	struct nc_sess *s = REC(t, t->tomb_head);

	list_del(t, &t->tomb_head, &t->tomb_tail, s);
	t->stats.tombs--;
	rec_free(t, s);
}

struct nc_sess *nc_sess_admit(struct nc_sess_table *t,
			      const struct nc_peer *peer, uint64_t rid,
			      uint64_t now_ns)
{
	struct nc_sess *s;
	struct nc_stream *st;
	uint32_t b;

	if (!t->stream_free) {
		t->stats.streams_full++;
		return NULL;
	}
	if (!t->free_head) {
		if (!t->tomb_head) {
			t->stats.table_full++;
			return NULL;
		}
		tomb_pop(t);
		t->stats.tomb_evicted++;
	}
	s = REC(t, t->free_head);
	t->free_head = s->hnext;
	st = &t->streams[t->stream_free - 1];
	t->stream_free = st->next_free;
	memset(s, 0, sizeof(*s));
	memset(st->win, 0, sizeof(st->win));
	s->peer = *peer;
	s->rid = rid;
	s->st = st;
	s->state = NC_SS_QUEUED;
	s->rto_ns = t->cfg.rto_min_ns;
	s->rx_ns = now_ns;
	s->last_ack_ns = now_ns;
	s->last_accepted_ns = now_ns;
	s->max_tokens = t->cfg.tok_cap;
	b = hash_key(peer, rid) & (t->nbuckets - 1);
	s->hnext = t->bucket[b];
	t->bucket[b] = IDX(t, s);
	list_add_tail(t, &t->live_head, NULL, s);
	t->stats.live++;
	t->stats.admitted++;
	return s;
}

void nc_sess_abort(struct nc_sess_table *t, struct nc_sess *s)
{
	list_del(t, &t->live_head, NULL, s);
	t->stats.live--;
	t->stats.admitted--;
	stream_put(t, s);
	rec_free(t, s);
}

static void tombstone(struct nc_sess_table *t, struct nc_sess *s, uint64_t now)
{
	list_del(t, &t->live_head, NULL, s);
	t->stats.live--;
	stream_put(t, s);
	s->state = NC_SS_TOMB;
	s->tomb_until = now + t->cfg.tomb_ns;
	list_add_tail(t, &t->tomb_head, &t->tomb_tail, s);
	t->stats.tombs++;
}


void nc_sess_running(struct nc_sess_table *t, struct nc_sess *s)
{
	(void)t;
	if (s->state == NC_SS_QUEUED)
		s->state = NC_SS_RUNNING;
}

static void send_pkt(struct nc_sess_table *t, struct nc_sess *s,
		     struct nc_sess_pkt *p, int retrans, uint64_t now)
{
	p->sent_ns = now;
	if (t->ops.send(t->ctx, s, p, retrans, now) == 0) {
		t->stats.pkts_sent++;
		t->stats.finals_sent += p->final;
	}
}

int nc_sess_dup(struct nc_sess_table *t, struct nc_sess *s, uint64_t now_ns)
{
	uint32_t win = t->cfg.window, seq, sent = 0;

	t->stats.dup_requests++;
	if (s->state == NC_SS_TOMB || !s->st)
		return 0;
	s->last_ack_ns = now_ns;	/* the client is alive */
	if (s->any_ack)
		return 0;
	t->stats.dup_accepted++;
	/* It heard nothing: whatever was sent got lost.  Do not leave the
	 * first tokens to a timer that may have backed off to a second. */
	for (seq = s->una; seq < s->next_seq && sent < RESEND_BURST; seq++) {
		struct nc_sess_pkt *p = &s->st->win[seq % win];

		if (p->acked)
			continue;
		send_pkt(t, s, p, 1, now_ns);
		t->stats.retrans_rto++;
		sent++;
	}
	s->rto_ns = t->cfg.rto_min_ns;
	return 1;
}

/* Text bytes that fit a TOKEN packet of n tokens. */
static uint32_t text_room(uint32_t n)
{
	return NC_MAX_PKT - NC_HDR_LEN - NC_TOK_HDR_LEN - NC_TOK_ENTRY_LEN * n;
}

/* Put produced tokens (then FINAL) into packets while the window allows. */
static void pump(struct nc_sess_table *t, struct nc_sess *s, uint64_t now)
{
	struct nc_stream *st = s->st;
	uint32_t win = t->cfg.window;

	while (s->state != NC_SS_DRAINING && s->next_seq < s->una + win) {
		struct nc_sess_pkt *p = &st->win[s->next_seq % win];

		memset(p, 0, sizeof(*p));
		p->seq = s->next_seq;
		if (s->tok_sent < s->n_tok) {
			uint32_t f = s->tok_sent, n = s->n_tok - f, off;

			if (n > NC_MAX_TOK_PER_PKT)
				n = NC_MAX_TOK_PER_PKT;
			off = f ? st->text_end[f - 1] : 0;
			while (n > 1 && st->text_end[f + n - 1] - off > text_room(n))
				n--;
			p->first = f;
			p->n = (uint16_t)n;
			p->text_off = off;
			p->text_len = st->text_end[f + n - 1] - off;
			if (p->text_len > text_room(n)) {	/* cannot happen with sane pieces */
				p->text_len = 0;
				t->stats.text_dropped++;
			}
			s->tok_sent += n;
		} else if (s->final_set) {
			p->first = s->n_tok;
			p->final = 1;
			s->final_seq = p->seq;
			s->state = NC_SS_DRAINING;
		} else {
			return;
		}
		s->next_seq++;
		send_pkt(t, s, p, 0, now);
	}
	if (s->tok_sent < s->n_tok)
		t->stats.window_stalls++;
}

int nc_sess_token(struct nc_sess_table *t, struct nc_sess *s, uint32_t id,
		  uint32_t card_ns, const uint8_t *text, uint32_t text_len,
		  uint64_t now_ns)
{
	struct nc_stream *st = s->st;

	if (!st || s->final_set || s->n_tok >= s->max_tokens ||
	    s->n_tok >= t->cfg.tok_cap)
		return -1;
	if (s->state == NC_SS_QUEUED)
		s->state = NC_SS_RUNNING;
	st->tok[s->n_tok] = (struct nc_token_out){ .id = id, .card_ns = card_ns };
	if (text_len && s->text_len + text_len <= t->cfg.text_cap) {
		memcpy(st->text + s->text_len, text, text_len);
		s->text_len += text_len;
	} else if (text_len) {
		t->stats.text_dropped++;
	}
	st->text_end[s->n_tok] = s->text_len;
	s->n_tok++;
	t->stats.tokens++;
	if (!s->dead)
		pump(t, s, now_ns);
	return 0;
}

void nc_sess_finish(struct nc_sess_table *t, struct nc_sess *s, uint8_t reason,
		    uint16_t err_code, uint64_t now_ns)
{
	s->in_sched = 0;
	if (s->state == NC_SS_TOMB || s->state == NC_SS_FREE || s->final_set)
		return;
	if (s->dead) {
		tombstone(t, s, now_ns);
		return;
	}
	s->final_set = 1;
	s->final_reason = reason;
	s->final_err = err_code;
	pump(t, s, now_ns);
}

void nc_sess_end(struct nc_sess_table *t, struct nc_sess *s, uint64_t now_ns)
{
	s->in_sched = 0;
	if (s->state != NC_SS_TOMB && s->state != NC_SS_FREE)
		tombstone(t, s, now_ns);
}

static int is_acked(const struct nc_sess *s, uint32_t seq, uint32_t win)
{
	const struct nc_sess_pkt *p = &s->st->win[seq % win];

	return p->seq == seq && p->acked;
}

int nc_sess_ack(struct nc_sess_table *t, struct nc_sess *s,
		const struct nc_ack *a, uint64_t now_ns)
{
	uint32_t win = t->cfg.window, seq, hi = 0, old_una = s->una;

	if (!s->st)
		return 0;	/* tombstone: late ACK, nothing to do */
	t->stats.acks++;
	if (a->next > s->next_seq) {
		t->stats.acks_bad++;
		return -NC_E_FIELD;
	}
	s->last_ack_ns = now_ns;
	if (a->next > 0 || a->sack)
		s->any_ack = 1;
	if (a->next < s->una && !a->sack)
		t->stats.acks_stale++;
	for (seq = s->una; seq < a->next; seq++)
		s->st->win[seq % win].acked = 1;
	for (unsigned i = 0; i < NC_ACK_SACK_BITS; i++) {
		if (!(a->sack >> i & 1))
			continue;
		seq = a->next + 1 + i;
		if (seq >= s->next_seq)
			break;
		if (seq >= s->una) {
			s->st->win[seq % win].acked = 1;
			hi = seq;
		}
	}
	while (s->una < s->next_seq && is_acked(s, s->una, win))
		s->una++;
	if (s->una != old_una) {
		s->rto_ns = t->cfg.rto_min_ns;
		s->expiries = 0;
	}
	for (seq = s->una; seq < hi; seq++) {	/* fast retransmit */
		struct nc_sess_pkt *p = &s->st->win[seq % win];

		if (p->acked || now_ns - p->sent_ns < s->rto_ns / 4)
			continue;
		send_pkt(t, s, p, 1, now_ns);
		t->stats.retrans_fast++;
	}
	if (s->state == NC_SS_DRAINING && s->una > s->final_seq) {
		tombstone(t, s, now_ns);
		return 0;
	}
	pump(t, s, now_ns);
	return 0;
}

/* Retransmission timer of one live request. */
static void rto_check(struct nc_sess_table *t, struct nc_sess *s, uint64_t now)
{
	uint32_t win = t->cfg.window, seq, sent = 0;

	if (s->una >= s->next_seq || now - s->st->win[s->una % win].sent_ns < s->rto_ns)
		return;
	s->expiries++;
	for (seq = s->una; seq < s->next_seq && sent < RESEND_BURST; seq++) {
		struct nc_sess_pkt *p = &s->st->win[seq % win];

		if (p->acked)
			continue;
		send_pkt(t, s, p, 1, now);
		t->stats.retrans_rto++;
		sent++;
	}
	s->rto_ns = s->rto_ns * 2 > t->cfg.rto_max_ns ? t->cfg.rto_max_ns : s->rto_ns * 2;
}

void nc_sess_tick(struct nc_sess_table *t, uint64_t now_ns)
{
	uint32_t i = t->live_head;

	while (i) {
		struct nc_sess *s = REC(t, i);

		i = s->lnext;
		if (s->state == NC_SS_QUEUED && t->ops.accepted &&
		    now_ns - s->last_accepted_ns >= t->cfg.accepted_every_ns) {
			s->last_accepted_ns = now_ns;
			t->ops.accepted(t->ctx, s);
		}
		/* FINAL is resent (RTO, at most 1 s apart) for as long as the
		 * client may still be waiting for it: until it is acknowledged
		 * or the client has been silent for the dead-client time. */
		if (s->state == NC_SS_DRAINING &&
		    now_ns - s->last_ack_ns >= t->cfg.dead_ns) {
			t->stats.final_giveups++;
			tombstone(t, s, now_ns);
			continue;
		}
		if ((s->state == NC_SS_QUEUED || s->state == NC_SS_RUNNING) &&
		    !s->dead && now_ns - s->last_ack_ns >= t->cfg.dead_ns) {
			s->dead = 1;
			s->cancel_asked = 1;
			t->stats.dead_clients++;
			if (s->in_sched && t->ops.cancel)
				t->ops.cancel(t->ctx, s);	/* may finish s */
			else
				tombstone(t, s, now_ns);
			continue;
		}
		if (s->state != NC_SS_TOMB && !s->dead)
			rto_check(t, s, now_ns);
	}
	while (t->tomb_head && REC(t, t->tomb_head)->tomb_until <= now_ns) {
		tomb_pop(t);
		t->stats.tomb_expired++;
	}
}
