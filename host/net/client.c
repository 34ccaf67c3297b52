/* client.c — libnextcard-client over kernel UDP sockets. */
#include "net/client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Reorder slots: seq next+1 .. next+64 must map to distinct slots. */
#define RWIN		128
#define MAX_RTO_MS	2000
#define CANCEL_TRIES	3
/* Nothing retransmits the ACK of FINAL, and a server that misses it
 * resends FINAL to a client that may be gone: send it this many times. */
#define FINAL_ACKS	3

struct nc_client {
	int fd;
	struct nc_client_opts o;
	uint8_t rx[NC_MAX_PKT + 1];	/* +1 catches oversized datagrams */
	uint8_t tx[NC_MAX_PKT];
	uint8_t req[NC_MAX_PKT];	/* the single-packet REQUEST, for resends */
	uint8_t *body;			/* NC_MAX_BODY, the encoded request */
	uint8_t (*ooo)[NC_MAX_PKT];	/* out-of-order packets, RWIN slots */
	uint16_t ooo_len[RWIN];		/* 0 = empty */
	uint32_t ooo_seq[RWIN];
	uint64_t *samples;		/* inter-token gaps */
	uint32_t ping_seq;
	uint64_t last_rid;		/* the previous request, finished */
	uint32_t last_next;		/* its ACK: every seq received */
};

/* State of one nc_client_generate() call. */
struct gen {
	struct nc_client *cl;
	struct nc_gen_result *res;
	nc_token_cb cb;
	void *user;
	uint64_t rid;
	uint32_t body_len;
	int nfrag;		/* 0: single REQUEST packet */
	int req_len;
	uint64_t t0, last_rx, last_tok;
	uint64_t next_req, next_ack, next_cancel;
	unsigned rto_ms, cancels;
	int heard;		/* ACCEPTED, TOKEN or FINAL seen */
	int cancelling;
	int done;		/* FINAL delivered */
	uint32_t next;		/* lowest seq not yet delivered */
	int need_ack;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void opts_default(struct nc_client_opts *o)
{
	if (!o->req_rto_ms)
		o->req_rto_ms = 200;
	if (!o->req_tries)
		o->req_tries = 6;
	if (!o->idle_timeout_ms)
		o->idle_timeout_ms = 10000;
	if (!o->ack_every_ms)
		o->ack_every_ms = 50;
	if (!o->max_samples)
		o->max_samples = 65536;
}

static int connect_udp(const char *host, uint16_t port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai, *a;
	char pstr[8];
	int fd = -1, rcvbuf = 1 << 20;

	snprintf(pstr, sizeof(pstr), "%u", port);
	if (getaddrinfo(host, pstr, &hints, &ai))
		return -NC_E_RESOLVE;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd < 0)
			continue;
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -NC_E_SOCK;
	/* Token bursts must not overflow the default buffer. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return fd;
}

int nc_client_open(struct nc_client **out, const char *host, uint16_t port,
		   const struct nc_client_opts *opts)
{
	struct nc_client *cl;
	int fd;

	if (!out || !host || !port)
		return -NC_E_INVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -NC_E_NOMEM;
	if (opts)
		cl->o = *opts;
	opts_default(&cl->o);
	cl->body = malloc(NC_MAX_BODY);
	cl->ooo = malloc(sizeof(*cl->ooo) * RWIN);
	cl->samples = malloc(sizeof(*cl->samples) * cl->o.max_samples);
	fd = -NC_E_NOMEM;
	if (cl->body && cl->ooo && cl->samples)
		fd = connect_udp(host, port);
	if (fd < 0) {
		cl->fd = -1;
		nc_client_close(cl);
		return fd;
	}
	cl->fd = fd;
	*out = cl;
	return 0;
}

void nc_client_close(struct nc_client *cl)
{
	if (!cl)
		return;
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->body);
	free(cl->ooo);
	free(cl->samples);
	free(cl);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t nc_percentile(uint64_t *v, uint32_t n, unsigned p)
{
	uint64_t rank;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	rank = ((uint64_t)p * n + 99) / 100;	/* ceil(p/100 * n) */
	return v[rank ? rank - 1 : 0];
}

static int send_buf(struct gen *g, const uint8_t *buf, int len)
{
	if (len < 0)
		return len;
	if (send(g->cl->fd, buf, (size_t)len, 0) < 0) {
		if (errno == ECONNREFUSED)
			return -NC_E_REFUSED;
		/* A full socket buffer is a lost packet: timers recover. */
		if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			return -NC_E_SOCK;
	}
	g->res->pkts_tx++;
	return 0;
}

static int send_pkt(struct gen *g, int len)
{
	return send_buf(g, g->cl->tx, len);
}

static int send_request(struct gen *g, uint16_t flags)
{
	struct nc_client *cl = g->cl;
	int i, err;

	g->res->req_sends++;
	if (!g->nfrag) {
		nc_put16(cl->req + 4, flags);
		return send_buf(g, cl->req, g->req_len);
	}
	for (i = 0; i < g->nfrag; i++) {
		err = send_pkt(g, nc_build_frag(cl->tx, sizeof(cl->tx), g->rid,
						flags, cl->body, g->body_len,
						(uint16_t)i));
		if (err)
			return err;
	}
	return 0;
}

/* SACK bit i: seq next + 1 + i is held in the reorder slots. */
static uint64_t sack_bits(const struct gen *g)
{
	const struct nc_client *cl = g->cl;
	uint64_t bits = 0;
	unsigned i;

	for (i = 0; i < NC_ACK_SACK_BITS; i++) {
		uint32_t seq = g->next + 1 + i, s = seq % RWIN;

		if (cl->ooo_len[s] && cl->ooo_seq[s] == seq)
			bits |= 1ull << i;
	}
	return bits;
}

static int send_ack(struct gen *g, uint64_t now)
{
	struct nc_ack a = { g->next, sack_bits(g) };

	g->need_ack = 0;
	g->next_ack = now + g->cl->o.ack_every_ms * 1000000ull;
	g->res->acks_tx++;
	return send_pkt(g, nc_build_ack(g->cl->tx, sizeof(g->cl->tx), g->rid,
					&a));
}

static int send_cancel(struct gen *g, uint64_t now)
{
	g->cancelling = 1;
	g->cancels++;
	g->next_cancel = now + g->cl->o.req_rto_ms * 1000000ull;
	return send_pkt(g, nc_build_cancel(g->cl->tx, sizeof(g->cl->tx),
					   g->rid, 0));
}

static void record_gap(struct gen *g, uint64_t t)
{
	struct nc_gen_result *r = g->res;

	if (!r->delivered)
		r->ttft_ns = t - g->t0;
	else if (r->n_itl < g->cl->o.max_samples)
		g->cl->samples[r->n_itl++] = t - g->last_tok;
	g->last_tok = t;
}

static int deliver_tokens(struct gen *g, const struct nc_token_view *t,
			  uint64_t t_arr)
{
	struct nc_token_event ev = { .rx_ns = t->rx_ns, .recv_ns = t_arr };
	unsigned i;

	if (t->first_index != g->res->delivered)
		return -NC_E_PROTO;	/* tokens must tile the completion */
	for (i = 0; i < t->n_tokens; i++) {
		ev.index = g->res->delivered;
		ev.id = nc_wire_tok_id(t, i);
		ev.card_ns = nc_tok_card_ns(t, i);
		ev.tx_ns = nc_tok_tx_ns(t, i);
		ev.text = i ? NULL : t->text;
		ev.text_len = i ? 0 : t->text_len;
		record_gap(g, t_arr);
		g->res->delivered++;
		if (!g->cancelling && g->cb && g->cb(g->user, &ev))
			return send_cancel(g, t_arr);
	}
	return 0;
}

static int deliver(struct gen *g, const struct nc_pkt *v, uint64_t t_arr)
{
	struct nc_gen_result *r = g->res;

	g->next++;
	if (v->h.type == NC_T_TOKEN)
		return deliver_tokens(g, &v->u.tok, t_arr);
	if (v->u.fin.completion_tokens != r->delivered)
		return -NC_E_PROTO;
	r->finish = v->u.fin.reason;
	r->err_code = v->u.fin.err_code;
	r->prompt_tokens = v->u.fin.prompt_tokens;
	r->completion_tokens = v->u.fin.completion_tokens;
	g->done = 1;
	return 0;
}

/* Deliver stored packets that have become in-order. */
static int drain_ooo(struct gen *g, uint64_t t_arr)
{
	struct nc_client *cl = g->cl;
	struct nc_pkt v;
	int err = 0;

	while (!g->done && !err) {
		uint32_t s = g->next % RWIN;

		if (!cl->ooo_len[s] || cl->ooo_seq[s] != g->next)
			break;
		if (nc_parse(cl->ooo[s], cl->ooo_len[s], &v))
			return -NC_E_PROTO;
		cl->ooo_len[s] = 0;
		err = deliver(g, &v, t_arr);
	}
	return err;
}

/* A TOKEN or FINAL: deliver in order, hold early ones, drop the rest. */
static int on_seq(struct gen *g, const struct nc_pkt *v, size_t len,
		  uint64_t t_arr)
{
	struct nc_client *cl = g->cl;
	uint32_t seq = v->h.seq, s = seq % RWIN;
	int err;

	g->need_ack = 1;
	if (g->done || seq < g->next) {
		g->res->dup_rx++;
		return 0;
	}
	if (seq == g->next) {
		err = deliver(g, v, t_arr);
		return err ? err : drain_ooo(g, t_arr);
	}
	if (seq - g->next > NC_ACK_SACK_BITS) {
		g->res->beyond_window++;
		return 0;
	}
	if (cl->ooo_len[s] && cl->ooo_seq[s] == seq) {
		g->res->dup_rx++;
		return 0;
	}
	memcpy(cl->ooo[s], cl->rx, len);
	cl->ooo_len[s] = (uint16_t)len;
	cl->ooo_seq[s] = seq;
	g->res->ooo_rx++;
	return 0;
}

static int on_error(struct gen *g, const struct nc_error_view *e)
{
	struct nc_gen_result *r = g->res;
	size_t n = e->msg_len;

	r->err_code = e->code;
	r->err_detail = e->detail;
	memcpy(r->err_msg, e->msg, n);
	r->err_msg[n] = 0;
	return -NC_E_SERVER;
}

/* Acknowledge the previous request's FINAL again (it was resent). */
static void ack_previous(struct gen *g)
{
	struct nc_ack a = { g->cl->last_next, 0 };

	g->res->acks_tx++;
	send_pkt(g, nc_build_ack(g->cl->tx, sizeof(g->cl->tx), g->cl->last_rid, &a));
}

static int on_packet(struct gen *g, size_t len, uint64_t t)
{
	struct nc_pkt v;

	if (nc_parse(g->cl->rx, len, &v)) {
		g->res->bad_rx++;
		return 0;
	}
	if (v.h.rid != g->rid && !(v.h.type == NC_T_ERROR && !v.h.rid &&
				   !g->heard)) {
		g->res->foreign_rx++;	/* late packets of an older request */
		if (v.h.type == NC_T_FINAL && g->cl->last_rid &&
		    v.h.rid == g->cl->last_rid)	/* our last ACK was lost */
			ack_previous(g);
		return 0;
	}
	g->res->pkts_rx++;
	g->last_rx = t;
	switch (v.h.type) {
	case NC_T_ACCEPTED:
		g->heard = 1;
		return 0;
	case NC_T_TOKEN:
	case NC_T_FINAL:
		g->heard = 1;
		return on_seq(g, &v, len, t);
	case NC_T_ERROR:
		return on_error(g, &v.u.err);
	}
	return 0;
}

/* Read everything queued on the socket. */
static int drain_socket(struct gen *g)
{
	struct nc_client *cl = g->cl;
	ssize_t n;
	int err;

	for (;;) {
		n = recv(cl->fd, cl->rx, sizeof(cl->rx), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return errno == ECONNREFUSED ? -NC_E_REFUSED : -NC_E_SOCK;
		}
		err = on_packet(g, (size_t)n, now_ns());
		if (err || g->done)
			return err;
	}
}

/* Resend the request, keep the server's view fresh, or give up. */
static int run_timers(struct gen *g, uint64_t now)
{
	const struct nc_client_opts *o = &g->cl->o;

	if (now - g->last_rx >= o->idle_timeout_ms * 1000000ull) {
		send_cancel(g, now);
		return -NC_E_TIMEOUT;
	}
	if (g->cancelling && now >= g->next_cancel) {
		if (g->cancels >= CANCEL_TRIES)
			return -NC_E_ABORTED;
		return send_cancel(g, now);
	}
	if (!g->heard && now >= g->next_req) {
		if (g->res->req_sends >= o->req_tries)
			return -NC_E_TIMEOUT;
		g->rto_ms = g->rto_ms * 2 > MAX_RTO_MS ? MAX_RTO_MS : g->rto_ms * 2;
		g->next_req = now + g->rto_ms * 1000000ull;
		return send_request(g, NC_F_RETRANS);
	}
	if (g->heard && (g->need_ack || now >= g->next_ack))
		return send_ack(g, now);
	return 0;
}

static int poll_ms(const struct gen *g, uint64_t now)
{
	uint64_t due = g->last_rx + g->cl->o.idle_timeout_ms * 1000000ull;

	if (!g->heard && g->next_req < due)
		due = g->next_req;
	if (g->heard && g->next_ack < due)
		due = g->next_ack;
	if (g->cancelling && g->next_cancel < due)
		due = g->next_cancel;
	return due <= now ? 0 : (int)((due - now + 999999) / 1000000);
}

static int gen_loop(struct gen *g)
{
	struct pollfd pfd = { .fd = g->cl->fd, .events = POLLIN };
	int err;

	while (!g->done) {
		uint64_t now = now_ns();

		err = run_timers(g, now);
		if (err)
			return err;
		if (poll(&pfd, 1, poll_ms(g, now)) < 0 && errno != EINTR)
			return -NC_E_SOCK;
		if (pfd.revents & (POLLIN | POLLERR)) {
			err = drain_socket(g);
			if (err)
				return err;
		}
	}
	return g->cancelling ? -NC_E_ABORTED : 0;
}

static uint64_t new_rid(void)
{
	uint64_t rid = 0;

	if (getrandom(&rid, sizeof(rid), 0) != sizeof(rid))
		rid = now_ns() ^ (uint64_t)getpid() << 40;
	return rid ? rid : 1;
}

static void finish_stats(struct gen *g)
{
	struct nc_gen_result *r = g->res;
	uint64_t *s = g->cl->samples;

	r->total_ns = now_ns() - g->t0;
	r->itl_p50_ns = nc_percentile(s, r->n_itl, 50);
	r->itl_p90_ns = nc_percentile(s, r->n_itl, 90);
	r->itl_p99_ns = nc_percentile(s, r->n_itl, 99);
	r->itl_max_ns = nc_percentile(s, r->n_itl, 100);
}

static int encode(struct gen *g, const struct nc_request *rq)
{
	int n = nc_build_request_body(g->cl->body, NC_MAX_BODY, rq);

	if (n < 0)
		return n;
	g->body_len = (uint32_t)n;
	if (NC_HDR_LEN + (size_t)n <= NC_MAX_PKT) {
		g->req_len = nc_build_request(g->cl->req, sizeof(g->cl->req),
					      g->rid, 0, rq);
		return g->req_len < 0 ? g->req_len : 0;
	}
	g->nfrag = nc_frag_count(g->body_len);
	return g->nfrag < 0 ? g->nfrag : 0;
}

int nc_client_generate(struct nc_client *cl, const struct nc_request *rq,
		       nc_token_cb cb, void *user, struct nc_gen_result *res)
{
	struct nc_gen_result dummy;
	struct gen g = { .cl = cl, .cb = cb, .user = user };
	int err;

	if (!cl || !rq)
		return -NC_E_INVAL;
	g.res = res ? res : &dummy;
	memset(g.res, 0, sizeof(*g.res));
	memset(cl->ooo_len, 0, sizeof(cl->ooo_len));
	g.rid = new_rid();
	err = encode(&g, rq);
	if (err)
		return err;
	g.t0 = g.last_rx = now_ns();
	g.rto_ms = cl->o.req_rto_ms;
	g.next_req = g.t0 + g.rto_ms * 1000000ull;
	g.next_ack = g.t0;
	err = send_request(&g, 0);
	if (!err)
		err = gen_loop(&g);
	if (g.done && !err) {	/* acknowledge FINAL */
		for (int i = 0; i < FINAL_ACKS; i++)
			send_ack(&g, now_ns());
		cl->last_rid = g.rid;
		cl->last_next = g.next;
	}
	finish_stats(&g);
	return err;
}

int nc_client_ping(struct nc_client *cl, unsigned timeout_ms,
		   struct nc_pong *pong, uint64_t *rtt_ns)
{
	struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };
	uint64_t t0 = now_ns(), end = t0 + timeout_ms * 1000000ull, now;
	uint32_t seq = ++cl->ping_seq;
	struct nc_pkt v;
	ssize_t n;

	n = nc_build_ping(cl->tx, sizeof(cl->tx), seq, t0);
	if (send(cl->fd, cl->tx, (size_t)n, 0) < 0)
		return errno == ECONNREFUSED ? -NC_E_REFUSED : -NC_E_SOCK;
	while ((now = now_ns()) < end) {
		if (poll(&pfd, 1, (int)((end - now) / 1000000 + 1)) <= 0)
			continue;
		n = recv(cl->fd, cl->rx, sizeof(cl->rx), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ECONNREFUSED)
				return -NC_E_REFUSED;
			continue;
		}
		if (nc_parse(cl->rx, (size_t)n, &v) || v.h.type != NC_T_PONG ||
		    v.h.seq != seq)
			continue;
		*pong = v.u.pong;
		*rtt_ns = now_ns() - t0;
		return 0;
	}
	return -NC_E_TIMEOUT;
}
