/* test_session.c — the server's per-request protocol state (host/net/session):
 * sequence numbers, window, cumulative + selective ACKs, fast retransmit,
 * the RTO timer, FINAL give-up, dead clients, duplicates and tombstones. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "net/session.h"

#define MS 1000000ull

struct sent {
	uint32_t seq, first;
	uint16_t n;
	uint8_t final, retrans;
	uint32_t text_len;
};

struct fake {
	struct sent log[4096];
	unsigned n, accepted, cancels;
	struct nc_sess_table *t;
	int finish_on_cancel;
};

static int f_send(void *ctx, struct nc_sess *s, const struct nc_sess_pkt *p,
		  int retrans, uint64_t now)
{
	struct fake *f = ctx;

	(void)s;
	(void)now;
	if (f->n < 4096)
		f->log[f->n++] = (struct sent){ p->seq, p->first, p->n, p->final,
						(uint8_t)retrans, p->text_len };
	return 0;
}

static void f_accepted(void *ctx, struct nc_sess *s)
{
	(void)s;
	((struct fake *)ctx)->accepted++;
}

static void f_cancel(void *ctx, struct nc_sess *s)
{
	struct fake *f = ctx;

	f->cancels++;
	if (f->finish_on_cancel)
		nc_sess_finish(f->t, s, NC_FIN_CANCEL, 0, 0);
}

static const struct nc_sess_ops ops = { f_send, f_accepted, f_cancel };

static struct nc_peer peer(uint16_t port)
{
	struct nc_peer p = { .addr = { 10, 0, 0, 1 }, .port = port, .family = 4 };
	return p;
}

static void setup_table(struct nc_sess_table *t, struct fake *f, uint32_t recs,
			uint32_t streams)
{
	struct nc_sess_cfg c = NC_SESS_DEFAULT_CFG;

	c.max_sessions = recs;
	c.max_streams = streams;
	c.tok_cap = 512;
	c.text_cap = 4096;
	memset(f, 0, sizeof(*f));
	f->t = t;
	assert_int_equal(nc_sess_init(t, &c, &ops, f), 0);
}

static void ack(struct nc_sess_table *t, struct nc_sess *s, uint32_t next,
		uint64_t sack, uint64_t now)
{
	struct nc_ack a = { .next = next, .sack = sack };

	assert_int_equal(nc_sess_ack(t, s, &a, now), 0);
}

static void test_stream_in_order(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1000);
	struct nc_sess *s;

	(void)st;
	setup_table(&t, &f, 8, 2);
	s = nc_sess_admit(&t, &p, 42, 0);
	assert_non_null(s);
	assert_ptr_equal(nc_sess_find(&t, &p, 42), s);
	assert_null(nc_sess_find(&t, &p, 43));
	assert_int_equal(nc_sess_dup(&t, s, 0), 1);	/* nothing acked: ACCEPTED again */
	nc_sess_running(&t, s);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(nc_sess_token(&t, s, 100 + i, 1000, (const uint8_t *)"ab", 2, i * MS), 0);
	assert_int_equal(f.n, 5);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(f.log[i].seq, i);
		assert_int_equal(f.log[i].first, i);
		assert_int_equal(f.log[i].n, 1);
		assert_int_equal(f.log[i].text_len, 2);
		assert_int_equal(s->st->tok[i].id, 100 + i);
	}
	ack(&t, s, 2, 0, 5 * MS);
	assert_int_equal(nc_sess_dup(&t, s, 5 * MS), 0);	/* acked: ignore */
	nc_sess_finish(&t, s, NC_FIN_LENGTH, 0, 6 * MS);
	assert_int_equal(f.n, 6);
	assert_true(f.log[5].final);
	assert_int_equal(f.log[5].seq, 5);
	assert_int_equal(s->state, NC_SS_DRAINING);
	ack(&t, s, 6, 0, 7 * MS);
	assert_int_equal(s->state, NC_SS_TOMB);
	assert_null(s->st);
	assert_int_equal(t.stats.live, 0);
	assert_int_equal(t.stats.tombs, 1);
	/* late duplicate of a finished request: ignored */
	assert_ptr_equal(nc_sess_find(&t, &p, 42), s);
	assert_int_equal(nc_sess_dup(&t, s, 8 * MS), 0);
	/* tombstone lasts 30 s */
	nc_sess_tick(&t, 29000 * MS);
	assert_non_null(nc_sess_find(&t, &p, 42));
	nc_sess_tick(&t, 31000 * MS);
	assert_null(nc_sess_find(&t, &p, 42));
	assert_int_equal(t.stats.tomb_expired, 1);
	nc_sess_fini(&t);
}

static void test_window_batches(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1001);
	struct nc_sess *s;

	(void)st;
	setup_table(&t, &f, 8, 2);
	s = nc_sess_admit(&t, &p, 7, 0);
	nc_sess_running(&t, s);
	for (uint32_t i = 0; i < NC_SESS_WINDOW + 100; i++)
		nc_sess_token(&t, s, i, 0, NULL, 0, MS);
	assert_int_equal(f.n, NC_SESS_WINDOW);	/* window full: the rest waits */
	assert_int_equal(s->tok_sent, NC_SESS_WINDOW);
	ack(&t, s, 1, 0, 2 * MS);		/* one slot opens: 64 tokens in one packet */
	assert_int_equal(f.n, NC_SESS_WINDOW + 1);
	assert_int_equal(f.log[NC_SESS_WINDOW].n, NC_MAX_TOK_PER_PKT);
	assert_int_equal(f.log[NC_SESS_WINDOW].first, NC_SESS_WINDOW);
	ack(&t, s, 2, 0, 3 * MS);
	assert_int_equal(f.log[NC_SESS_WINDOW + 1].n, 100 - NC_MAX_TOK_PER_PKT);
	assert_int_equal(s->tok_sent, NC_SESS_WINDOW + 100);
	/* an ACK beyond what was sent is refused */
	struct nc_ack bad = { .next = 1000 };
	assert_int_equal(nc_sess_ack(&t, s, &bad, 4 * MS), -NC_E_FIELD);
	nc_sess_fini(&t);
}

static void test_sack_fast_retransmit(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1002);
	struct nc_sess *s;

	(void)st;
	setup_table(&t, &f, 8, 2);
	s = nc_sess_admit(&t, &p, 9, 0);
	nc_sess_running(&t, s);
	for (uint32_t i = 0; i < 6; i++)
		nc_sess_token(&t, s, i, 0, NULL, 0, 0);
	f.n = 0;
	/* 0..1 received, 2 lost, 3 and 5 received: 2 and 4 resent (older than RTO/4) */
	ack(&t, s, 2, 1u | 4u, 10 * MS);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.log[0].seq, 2);
	assert_true(f.log[0].retrans);
	assert_int_equal(f.log[1].seq, 4);
	/* the same ACK again right away: too recent to resend */
	ack(&t, s, 2, 1u | 4u, 11 * MS);
	assert_int_equal(f.n, 2);
	ack(&t, s, 6, 0, 12 * MS);
	assert_int_equal(s->una, 6);
	assert_int_equal(t.stats.retrans_fast, 2);
	nc_sess_fini(&t);
}

static void test_rto_and_final_giveup(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1003);
	struct nc_sess *s;
	uint64_t now = 0;
	int i;

	(void)st;
	setup_table(&t, &f, 8, 2);
	s = nc_sess_admit(&t, &p, 11, 0);
	nc_sess_running(&t, s);
	nc_sess_token(&t, s, 5, 0, NULL, 0, 0);
	nc_sess_finish(&t, s, NC_FIN_STOP, 0, 0);
	assert_int_equal(f.n, 2);
	nc_sess_tick(&t, 19 * MS);
	assert_int_equal(f.n, 2);
	nc_sess_tick(&t, 20 * MS);		/* RTO: both resent, RTO doubles */
	assert_int_equal(f.n, 4);
	assert_int_equal(s->rto_ns, 40 * MS);
	/* The client is alive (keepalive ACKs) but FINAL keeps getting lost:
	 * FINAL is resent, at most 1 s apart, as long as the client may wait
	 * for it, well beyond 8 expiries (the old give-up, ~3.3 s, was shorter
	 * than the client's own 10 s idle timeout). */
	now = 20 * MS;
	for (i = 0; i < 30; i++) {
		now += s->rto_ns;
		ack(&t, s, 1, 0, now - MS);
		nc_sess_tick(&t, now);
		assert_int_equal(s->state, NC_SS_DRAINING);
		assert_true(f.log[f.n - 1].final && f.log[f.n - 1].retrans);
	}
	assert_true(now > 20000 * MS);
	assert_int_equal(s->rto_ns, 1000 * MS);
	assert_int_equal(t.stats.final_giveups, 0);
	/* Silent client: given up after the dead-client time (10 s), not before. */
	{
		uint64_t last = now - MS;

		while (s->state != NC_SS_TOMB && now < last + 20000 * MS) {
			now += 100 * MS;
			nc_sess_tick(&t, now);
			if (s->state == NC_SS_TOMB)
				break;
			assert_true(now - last < 10000 * MS);
		}
		assert_int_equal(s->state, NC_SS_TOMB);
		assert_true(now - last >= 10000 * MS && now - last < 10100 * MS);
	}
	assert_int_equal(t.stats.final_giveups, 1);
	assert_int_equal(t.stats.dead_clients, 0);
	assert_int_equal(t.stats.live, 0);
	nc_sess_fini(&t);
}

/* The root cause of slow/failed first tokens under loss: a client that
 * heard nothing resends its REQUEST.  The server must answer it (ACCEPTED
 * and, at once, the stream packets it already sent, whatever its backed-off
 * RTO says) and count it as a sign of life, so that neither the dead-client
 * timer nor the FINAL give-up drops a request whose client is still
 * resending. */
static void test_dup_request_before_any_ack(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1005);
	struct nc_sess *s;
	uint64_t now;
	unsigned n0;

	(void)st;
	setup_table(&t, &f, 8, 2);
	s = nc_sess_admit(&t, &p, 21, 0);
	nc_sess_running(&t, s);
	for (uint32_t i = 0; i < 3; i++)
		nc_sess_token(&t, s, 50 + i, 0, NULL, 0, i * MS);
	nc_sess_finish(&t, s, NC_FIN_LENGTH, 0, 3 * MS);
	assert_int_equal(f.n, 4);		/* 3 TOKENs and FINAL, all lost */
	/* RTO backs off: 20, 40, 80, 160, 320, 640 ms, then 1 s */
	for (now = 3 * MS; s->rto_ns < 1000 * MS;) {
		now += s->rto_ns;
		nc_sess_tick(&t, now);
	}
	assert_int_equal(s->state, NC_SS_DRAINING);
	n0 = f.n;
	now += 10 * MS;
	/* the client's resent REQUEST: ACCEPTED again and everything resent now */
	assert_int_equal(nc_sess_dup(&t, s, now), 1);
	assert_int_equal(f.n, n0 + 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(f.log[n0 + i].seq, i);
		assert_true(f.log[n0 + i].retrans);
	}
	assert_true(f.log[n0 + 3].final);
	assert_int_equal(s->rto_ns, 20 * MS);
	assert_int_equal(t.stats.dup_accepted, 1);
	/* resends keep it alive past 10 s from admission */
	nc_sess_dup(&t, s, 7000 * MS);
	nc_sess_tick(&t, 12000 * MS);
	assert_int_equal(s->state, NC_SS_DRAINING);
	assert_int_equal(t.stats.final_giveups, 0);
	/* the client got it all: FINAL acknowledged, later dups ignored */
	ack(&t, s, 4, 0, 12001 * MS);
	assert_int_equal(s->state, NC_SS_TOMB);
	n0 = f.n;
	assert_int_equal(nc_sess_dup(&t, s, 12002 * MS), 0);
	assert_int_equal(f.n, n0);
	nc_sess_fini(&t);
}

static void test_dead_client_and_queue(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1004);
	struct nc_sess *s;

	(void)st;
	setup_table(&t, &f, 8, 2);
	f.finish_on_cancel = 1;
	s = nc_sess_admit(&t, &p, 13, 0);
	s->in_sched = 1;
	nc_sess_tick(&t, 999 * MS);
	assert_int_equal(f.accepted, 0);
	nc_sess_tick(&t, 1000 * MS);		/* queued: ACCEPTED every second */
	assert_int_equal(f.accepted, 1);
	ack(&t, s, 0, 0, 5000 * MS);		/* keepalive */
	nc_sess_tick(&t, 14999 * MS);
	assert_int_equal(f.cancels, 0);
	nc_sess_tick(&t, 15000 * MS);		/* 10 s without ACK: cancelled, no FINAL */
	assert_int_equal(f.cancels, 1);
	assert_int_equal(s->state, NC_SS_TOMB);
	assert_int_equal(t.stats.dead_clients, 1);
	nc_sess_fini(&t);
}

static void test_bounds(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1005);
	struct nc_sess *a, *b;

	(void)st;
	setup_table(&t, &f, 2, 1);
	a = nc_sess_admit(&t, &p, 1, 0);
	assert_non_null(a);
	assert_null(nc_sess_admit(&t, &p, 2, 0));	/* one stream buffer */
	assert_int_equal(t.stats.streams_full, 1);
	nc_sess_finish(&t, a, NC_FIN_CANCEL, 0, 0);	/* cancelled while queued */
	assert_int_equal(f.n, 1);
	assert_true(f.log[0].final);
	ack(&t, a, 1, 0, MS);
	assert_int_equal(a->state, NC_SS_TOMB);
	b = nc_sess_admit(&t, &p, 2, 2 * MS);
	assert_non_null(b);
	nc_sess_abort(&t, b);
	assert_null(nc_sess_find(&t, &p, 2));
	/* records full of tombstones: the oldest is evicted */
	b = nc_sess_admit(&t, &p, 3, 3 * MS);
	nc_sess_finish(&t, b, NC_FIN_CANCEL, 0, 3 * MS);
	ack(&t, b, 1, 0, 3 * MS);
	assert_int_equal(t.stats.tombs, 2);
	assert_non_null(nc_sess_admit(&t, &p, 4, 4 * MS));
	assert_int_equal(t.stats.tomb_evicted, 1);
	assert_null(nc_sess_find(&t, &p, 1));
	assert_non_null(nc_sess_find(&t, &p, 3));
	nc_sess_fini(&t);
}

static void test_text_split(void **st)
{
	struct nc_sess_table t;
	struct fake f;
	struct nc_peer p = peer(1006);
	struct nc_sess *s;
	uint8_t piece[300];

	(void)st;
	memset(piece, 'x', sizeof(piece));
	setup_table(&t, &f, 4, 1);
	s = nc_sess_admit(&t, &p, 21, 0);
	nc_sess_running(&t, s);
	/* fill the window so tokens pile up, then check packet text bounds */
	for (uint32_t i = 0; i < NC_SESS_WINDOW; i++)
		nc_sess_token(&t, s, i, 0, NULL, 0, 0);
	for (uint32_t i = 0; i < 10; i++)
		nc_sess_token(&t, s, i, 0, piece, sizeof(piece), 0);
	f.n = 0;
	ack(&t, s, 2, 0, MS);
	assert_int_equal(f.n, 2);
	for (unsigned i = 0; i < f.n; i++)
		assert_true(f.log[i].text_len + 16u * f.log[i].n + 48 <= NC_MAX_PKT);
	assert_int_equal(f.log[0].n, 4);	/* 4 x 300 bytes fit, 5 do not */
	assert_int_equal(f.log[1].n, 4);
	assert_int_equal(f.log[0].text_len, 300u * f.log[0].n);
	nc_sess_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_in_order),
		cmocka_unit_test(test_window_batches),
		cmocka_unit_test(test_sack_fast_retransmit),
		cmocka_unit_test(test_rto_and_final_giveup),
		cmocka_unit_test(test_dup_request_before_any_ack),
		cmocka_unit_test(test_dead_client_and_queue),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_text_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
