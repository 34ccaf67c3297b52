/* test_client.c — libnextcard-client against a lossy fake server on
 * 127.0.0.1. The fake server uses the protocol builders, drops a seeded
 * fraction of what it sends (and optionally of what it receives), and
 * serves retransmissions from ACK gaps and its own timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/client.h"
#include "net/proto.h"
#include "net/reasm.h"

#define MAXP		2048	/* packets the fake server can hold */
#define SERVER_LIFE_NS	(20ull * 1000000000ull)
#define RTO_NS		(20ull * 1000000)

enum mode { M_TOKENS, M_BUSY };

struct fake {
	/* configuration */
	enum mode mode;
	uint32_t n_tokens;
	unsigned tx_drop_pct, rx_drop_pct;
	uint64_t rng;
	const uint32_t *want_prompt;	/* expected prompt, NULL: don't check */
	uint32_t want_n;
	/* socket and thread */
	int fd;
	uint16_t port;
	pthread_t th;
	volatile int stop;
	struct sockaddr_in peer;
	/* stream state */
	int started;
	uint64_t rid;
	uint8_t pkt[MAXP][NC_MAX_PKT];
	int len[MAXP];
	uint32_t ntok_before[MAXP];	/* tokens in packets before this one */
	uint64_t sent_ns[MAXP];
	uint8_t acked[MAXP];
	uint32_t npkts, sent_upto, ack_next;
	uint8_t pong[NC_MAX_PKT];
	struct nc_reasm reasm;
	/* results */
	int prompt_ok;
	unsigned requests, dup_requests, retrans, fast_retrans, dropped, cancels, pings;
	unsigned final_acks;		/* ACKs that acknowledge FINAL */
	/* the request before this one: its FINAL is resent when the next starts */
	int replay_old_final;
	uint64_t old_rid;
	uint32_t old_npkts;
	unsigned old_final_acks;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rng(struct fake *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return f->rng;
}

static int coin(struct fake *f, unsigned pct)
{
	return next_rng(f) % 100 < pct;
}

static void fake_send(struct fake *f, const uint8_t *p, int len)
{
	if (len <= 0)
		abort();	/* no cmocka asserts off the main thread */
	if (coin(f, f->tx_drop_pct)) {
		f->dropped++;
		return;
	}
	sendto(f->fd, p, (size_t)len, 0, (struct sockaddr *)&f->peer,
	       sizeof(f->peer));
}

static uint32_t token_id(uint32_t k)
{
	return (k * 7919u + 13u) % 151936u;
}

/* Build the whole answer up front: 1-3 tokens a packet, then FINAL. */
static void build_stream(struct fake *f, uint32_t prompt_tokens)
{
	struct nc_token_out t[3];
	struct nc_final fin = { .reason = NC_FIN_STOP };
	uint32_t k = 0, n;

	f->npkts = 0;
	while (k < f->n_tokens) {
		n = 1 + (uint32_t)(next_rng(f) % 3);
		if (n > f->n_tokens - k)
			n = f->n_tokens - k;
		for (uint32_t i = 0; i < n; i++)
			t[i] = (struct nc_token_out){ token_id(k + i), 1000 + i,
						      mono_ns() };
		f->ntok_before[f->npkts] = k;
		f->len[f->npkts] = nc_build_token(f->pkt[f->npkts], NC_MAX_PKT,
						  f->rid, f->npkts, 0, k, 1, t,
						  n, NULL, 0);
		f->npkts++;
		k += n;
		if (f->npkts >= MAXP - 1)
			abort();
	}
	fin.prompt_tokens = prompt_tokens;
	fin.completion_tokens = k;
	f->ntok_before[f->npkts] = k;
	f->len[f->npkts] = nc_build_final(f->pkt[f->npkts], NC_MAX_PKT, f->rid,
					  f->npkts, 0, &fin);
	f->npkts++;
}

static void send_seq(struct fake *f, uint32_t seq, int retrans)
{
	if (retrans) {
		f->pkt[seq][4] |= NC_F_RETRANS;
		f->retrans++;
	}
	f->sent_ns[seq] = mono_ns();
	fake_send(f, f->pkt[seq], f->len[seq]);
}

static void start(struct fake *f, const struct nc_pkt *v,
		  const struct nc_request_view *rq)
{
	uint8_t b[NC_MAX_PKT];
	struct nc_accepted acc = { .prompt_tokens = rq->n_prompt,
				   .window = 64 };
	struct nc_error_view e = { NC_WE_BUSY, NC_T_REQUEST, 1, 250, 10,
				   (const uint8_t *)"queue full" };

	f->requests++;
	if (f->started && v->h.rid == f->rid) {
		f->dup_requests++;	/* deduplicated: acknowledge again */
		fake_send(f, b, nc_build_accepted(b, sizeof(b), f->rid, &acc));
		return;
	}
	if (f->mode == M_BUSY) {
		fake_send(f, b, nc_build_error(b, sizeof(b), v->h.rid, 0, &e));
		return;
	}
	if (f->replay_old_final && f->started && f->npkts) {
		/* as if the ACK of the last FINAL was lost: resend it */
		f->old_rid = f->rid;
		f->old_npkts = f->npkts;
		f->pkt[f->npkts - 1][4] |= NC_F_RETRANS;
		fake_send(f, f->pkt[f->npkts - 1], f->len[f->npkts - 1]);
	}
	f->started = 1;
	f->sent_upto = f->ack_next = 0;
	memset(f->acked, 0, sizeof(f->acked));
	f->rid = v->h.rid;
	f->prompt_ok = 1;
	if (f->want_prompt) {
		f->prompt_ok = rq->n_prompt == f->want_n;
		for (uint32_t i = 0; f->prompt_ok && i < f->want_n; i++)
			f->prompt_ok = nc_id_at(rq->prompt_ids, i) ==
				       f->want_prompt[i];
	}
	build_stream(f, rq->n_prompt);
	fake_send(f, b, nc_build_accepted(b, sizeof(b), f->rid, &acc));
}

/* Cut the stream at what was sent and end it with FINAL(cancel). */
static void cancel(struct fake *f)
{
	struct nc_final fin = { .reason = NC_FIN_CANCEL };
	uint32_t seq = f->sent_upto;

	f->cancels++;
	if (f->npkts && f->pkt[f->npkts - 1][3] == NC_T_FINAL &&
	    f->npkts - 1 < seq)
		return;		/* FINAL already out */
	fin.completion_tokens = f->ntok_before[seq];
	f->len[seq] = nc_build_final(f->pkt[seq], NC_MAX_PKT, f->rid, seq, 0,
				     &fin);
	f->npkts = seq + 1;
}

static void on_ack(struct fake *f, const struct nc_ack *a)
{
	uint32_t s, hi = a->next;
	uint64_t now = mono_ns();

	for (s = f->ack_next; s < a->next && s < f->npkts; s++)
		f->acked[s] = 1;
	if (a->next > f->ack_next)
		f->ack_next = a->next;
	for (unsigned i = 0; i < NC_ACK_SACK_BITS; i++) {
		s = a->next + 1 + i;
		if ((a->sack >> i & 1) && s < f->npkts) {
			f->acked[s] = 1;
			hi = s;
		}
	}
	/* Holes below the highest selectively acked packet were lost. */
	for (s = a->next; s < hi && s < f->sent_upto; s++)
		if (!f->acked[s] && now - f->sent_ns[s] > RTO_NS / 4) {
			send_seq(f, s, 1);
			f->fast_retrans++;
		}
}

static void on_packet(struct fake *f, const uint8_t *b, size_t n)
{
	struct nc_reasm_done d;
	struct nc_request_view rq;
	struct nc_pkt v;
	struct nc_peer peer = { .family = 4 };
	struct nc_pong pong = { .slots_total = 4, .slots_busy = 1,
				.queue_max = 64 };

	if (coin(f, f->rx_drop_pct) || nc_parse(b, n, &v))
		return;
	switch (v.h.type) {
	case NC_T_REQUEST:
		start(f, &v, &v.u.req);
		break;
	case NC_T_REQUEST_FRAG:
		if (nc_reasm_add(&f->reasm, &peer, v.h.rid, &v.u.frag,
				 mono_ns(), &d) != 1)
			break;
		if (!nc_parse_request_body(d.body, d.len, &rq))
			start(f, &v, &rq);
		nc_reasm_release(&f->reasm, d.handle);
		break;
	case NC_T_ACK:
		if (f->started && v.h.rid == f->rid) {
			f->final_acks += f->npkts && v.u.ack.next == f->npkts;
			on_ack(f, &v.u.ack);
		} else if (f->old_rid && v.h.rid == f->old_rid &&
			   v.u.ack.next == f->old_npkts) {
			f->old_final_acks++;
		}
		break;
	case NC_T_CANCEL:
		if (f->started && v.h.rid == f->rid)
			cancel(f);
		break;
	case NC_T_PING:
		f->pings++;
		pong.client_ns = v.u.ping.client_ns;
		fake_send(f, f->pong, nc_build_pong(f->pong, NC_MAX_PKT,
						    v.h.seq, &pong));
		break;
	}
}

/* New packets at one per millisecond; old unacked ones on a timer. */
static void pump(struct fake *f)
{
	unsigned burst = 0;
	uint64_t now;

	if (!f->started)
		return;
	if (f->sent_upto < f->npkts)
		send_seq(f, f->sent_upto++, 0);
	now = mono_ns();	/* after the send: ages never go negative */
	for (uint32_t s = f->ack_next; s < f->sent_upto && burst < 16; s++)
		if (!f->acked[s] && now - f->sent_ns[s] > RTO_NS) {
			send_seq(f, s, 1);
			burst++;
		}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
	uint64_t end = mono_ns() + SERVER_LIFE_NS;
	uint8_t b[NC_MAX_PKT + 1];
	socklen_t sl;
	ssize_t n;

	while (!f->stop && mono_ns() < end) {
		if (poll(&pfd, 1, 1) > 0) {
			sl = sizeof(f->peer);
			n = recvfrom(f->fd, b, sizeof(b), MSG_DONTWAIT,
				     (struct sockaddr *)&f->peer, &sl);
			if (n > 0)
				on_packet(f, b, (size_t)n);
		}
		pump(f);
	}
	return NULL;
}

static struct fake *fake_start(enum mode mode, uint32_t n_tokens,
			       unsigned tx_drop, unsigned rx_drop, uint64_t seed)
{
	static struct fake fk;
	struct nc_reasm_cfg rc = NC_REASM_DEFAULT_CFG;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t sl = sizeof(a);
	struct fake *f = &fk;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->n_tokens = n_tokens;
	f->tx_drop_pct = tx_drop;
	f->rx_drop_pct = rx_drop;
	f->rng = seed * 0x9e3779b97f4a7c15ull | 1;
	rc.arena_bytes = 1 << 20;
	rc.max_partials = 4;
	assert_int_equal(nc_reasm_init(&f->reasm, &rc), 0);
	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(f->fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &sl), 0);
	f->port = ntohs(a.sin_port);
	return f;
}

static void fake_run(struct fake *f)
{
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	f->stop = 1;
	pthread_join(f->th, NULL);
	close(f->fd);
	nc_reasm_fini(&f->reasm);
}

/* What the callback saw. */
struct seen {
	uint32_t count;
	uint32_t cancel_at;	/* 0: never */
	int bad;		/* out of order, repeated or wrong id */
};

static int on_token(void *user, const struct nc_token_event *ev)
{
	struct seen *s = user;

	if (ev->index != s->count || ev->id != token_id(ev->index))
		s->bad++;
	s->count++;
	return s->cancel_at && s->count == s->cancel_at;
}

static const struct nc_client_opts fast = {
	.req_rto_ms = 60, .req_tries = 8, .idle_timeout_ms = 3000,
	.ack_every_ms = 10,
};

static struct nc_request ids_request(const uint32_t *ids, uint32_t n)
{
	struct nc_request rq = { .s = { .max_tokens = 4096, .temperature = 0.8f,
					.top_p = 0.95f, .top_k = 40, .seed = 7,
					.flags = NC_RQ_SEED },
				 .model = "fortune-13m", .prompt = ids,
				 .n_prompt = n };
	return rq;
}

static void run_lossy(uint32_t n_tokens, uint32_t n_prompt, unsigned rx_drop,
		      uint64_t seed)
{
	static uint32_t ids[20000];
	struct fake *f = fake_start(M_TOKENS, n_tokens, 10, rx_drop, seed);
	struct nc_request rq;
	struct nc_gen_result res;
	struct nc_client *cl;
	struct seen s = { 0 };

	for (uint32_t i = 0; i < n_prompt; i++)
		ids[i] = (uint32_t)(i * 31u + seed) % 151936u;
	f->want_prompt = ids;
	f->want_n = n_prompt;
	rq = ids_request(ids, n_prompt);
	fake_run(f);
	assert_int_equal(nc_client_open(&cl, "127.0.0.1", f->port, &fast), 0);
	assert_int_equal(nc_client_generate(cl, &rq, on_token, &s, &res), 0);
	nc_client_close(cl);
	fake_stop(f);

	assert_int_equal(s.bad, 0);
	assert_int_equal(s.count, n_tokens);
	assert_int_equal(res.delivered, n_tokens);
	assert_int_equal(res.finish, NC_FIN_STOP);
	assert_int_equal(res.completion_tokens, n_tokens);
	assert_int_equal(res.prompt_tokens, n_prompt);
	assert_true(f->prompt_ok);
	assert_true(f->dropped > 0);	/* the loss really happened */
	assert_true(f->retrans > 0);
	assert_int_equal(res.n_itl, n_tokens - 1);
	assert_true(res.ttft_ns > 0);
	assert_true(res.itl_p50_ns <= res.itl_p90_ns);
	assert_true(res.itl_p90_ns <= res.itl_p99_ns);
	assert_true(res.itl_p99_ns <= res.itl_max_ns);
	print_message("tokens %u: server sent-drop %u retrans %u (fast %u); client ooo %u "
		      "dup %u acks %u req_sends %u ttft %.2f ms p50 %.3f ms\n",
		      n_tokens, f->dropped, f->retrans, f->fast_retrans, res.ooo_rx, res.dup_rx,
		      res.acks_tx, res.req_sends, res.ttft_ns / 1e6,
		      res.itl_p50_ns / 1e6);
}

static void test_lossy_short_prompt(void **state)
{
	run_lossy(400, 12, 0, 1);
}

/* Long prompt: fragmented, and the server also loses 10% of what it gets,
 * so the client must resend the request and keep ACKing. */
static void test_lossy_long_prompt(void **state)
{
	run_lossy(300, 9000, 10, 2);
}

static void test_busy(void **state)
{
	struct fake *f = fake_start(M_BUSY, 0, 0, 0, 3);
	uint32_t ids[2] = { 1, 2 };
	struct nc_request rq = ids_request(ids, 2);
	struct nc_gen_result res;
	struct nc_client *cl;
	struct seen s = { 0 };

	fake_run(f);
	assert_int_equal(nc_client_open(&cl, "127.0.0.1", f->port, &fast), 0);
	assert_int_equal(nc_client_generate(cl, &rq, on_token, &s, &res),
			 -NC_E_SERVER);
	nc_client_close(cl);
	fake_stop(f);
	assert_int_equal(res.err_code, NC_WE_BUSY);
	assert_int_equal(res.err_detail, 250);
	assert_string_equal(res.err_msg, "queue full");
	assert_int_equal(s.count, 0);
}

static void test_cancel(void **state)
{
	struct fake *f = fake_start(M_TOKENS, 600, 10, 0, 4);
	uint32_t ids[3] = { 5, 6, 7 };
	struct nc_request rq = ids_request(ids, 3);
	struct nc_gen_result res;
	struct nc_client *cl;
	struct seen s = { .cancel_at = 25 };

	fake_run(f);
	assert_int_equal(nc_client_open(&cl, "127.0.0.1", f->port, &fast), 0);
	assert_int_equal(nc_client_generate(cl, &rq, on_token, &s, &res),
			 -NC_E_ABORTED);
	nc_client_close(cl);
	fake_stop(f);
	assert_int_equal(s.count, 25);	/* no callbacks after cancelling */
	assert_int_equal(s.bad, 0);
	assert_true(f->cancels >= 1);
	assert_int_equal(res.finish, NC_FIN_CANCEL);
	assert_true(res.delivered >= 25 && res.delivered < 600);
}

/* Nobody listens: the client fails fast and within its bounds. */
static void test_no_server(void **state)
{
	struct nc_client_opts o = { .req_rto_ms = 20, .req_tries = 3,
				    .idle_timeout_ms = 1000 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t sl = sizeof(a);
	uint32_t ids[1] = { 1 };
	struct nc_request rq = ids_request(ids, 1);
	struct nc_client *cl;
	uint64_t t0;
	int fd, rc;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	close(fd);
	assert_int_equal(nc_client_open(&cl, "127.0.0.1", ntohs(a.sin_port),
					&o), 0);
	t0 = mono_ns();
	rc = nc_client_generate(cl, &rq, NULL, NULL, NULL);
	assert_true(rc == -NC_E_REFUSED || rc == -NC_E_TIMEOUT);
	assert_true(mono_ns() - t0 < 2000000000ull);
	nc_client_close(cl);
	assert_int_equal(nc_client_open(&cl, "no-such-host.invalid", 1, &o),
			 -NC_E_RESOLVE);
}

/* Nothing retransmits the ACK of FINAL: the client sends it several times,
 * and acknowledges FINAL again when a resend of it shows up during its next
 * request, so the server does not keep a finished stream waiting. */
static void test_final_ack(void **state)
{
	struct fake *f = fake_start(M_TOKENS, 5, 0, 0, 6);
	uint32_t ids[2] = { 3, 4 };
	struct nc_request rq = ids_request(ids, 2);
	struct nc_gen_result res;
	struct nc_client *cl;
	struct seen s = { 0 };
	uint64_t end;

	f->replay_old_final = 1;
	fake_run(f);
	assert_int_equal(nc_client_open(&cl, "127.0.0.1", f->port, &fast), 0);
	assert_int_equal(nc_client_generate(cl, &rq, on_token, &s, &res), 0);
	assert_int_equal(s.count, 5);
	for (end = mono_ns() + 1000000000ull; f->final_acks < 3 && mono_ns() < end;)
		usleep(1000);
	assert_int_equal(f->final_acks, 3);
	/* second request: the fake server first resends the first FINAL */
	s = (struct seen){ 0 };
	assert_int_equal(nc_client_generate(cl, &rq, on_token, &s, &res), 0);
	assert_int_equal(s.count, 5);
	assert_true(res.foreign_rx >= 1);
	for (end = mono_ns() + 1000000000ull; !f->old_final_acks && mono_ns() < end;)
		usleep(1000);
	nc_client_close(cl);
	fake_stop(f);
	assert_true(f->old_final_acks >= 1);
}

static void test_ping(void **state)
{
	struct fake *f = fake_start(M_TOKENS, 1, 0, 0, 5);
	struct nc_client *cl;
	struct nc_pong p;
	uint64_t rtt;

	fake_run(f);
	assert_int_equal(nc_client_open(&cl, "127.0.0.1", f->port, &fast), 0);
	assert_int_equal(nc_client_ping(cl, 1000, &p, &rtt), 0);
	assert_int_equal(p.slots_total, 4);
	assert_int_equal(p.queue_max, 64);
	assert_true(rtt > 0);
	nc_client_close(cl);
	fake_stop(f);
	assert_int_equal(f->pings, 1);
}

static void test_percentile(void **state)
{
	uint64_t v[100];

	for (int i = 0; i < 100; i++)
		v[i] = (uint64_t)(100 - i);
	assert_int_equal(nc_percentile(v, 100, 50), 50);
	assert_int_equal(nc_percentile(v, 100, 99), 99);
	assert_int_equal(nc_percentile(v, 100, 100), 100);
	assert_int_equal(nc_percentile(v, 1, 90), 1);
	assert_int_equal(nc_percentile(v, 0, 50), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentile),
		cmocka_unit_test(test_lossy_short_prompt),
		cmocka_unit_test(test_lossy_long_prompt),
		cmocka_unit_test(test_busy),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_no_server),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_final_ack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
