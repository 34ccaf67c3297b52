/* test_proto.c — wire protocol v1 parser/builders and request reassembly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/proto.h"
#include "net/reasm.h"

#define SEED 0x6e63u

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static int setup(void **state)
{
	rng_state = 0x9e3779b97f4a7c15ull ^ SEED;
	return 0;
}

/* A random but valid request; ids/text live in caller storage. */
static void rand_request(struct nc_request *rq, uint32_t *stop, uint32_t *ids,
			 uint32_t max_ids, char *text, char *model)
{
	static const char *const models[] = { NULL, "", "qwen3-next-80b-a3b",
					      "fortune-13m", "tiny-a" };
	uint32_t i;

	memset(rq, 0, sizeof(*rq));
	rq->s.max_tokens = 1 + rnd_below(100000);
	rq->s.temperature = (float)rnd_below(2001) / 1000.0f;
	rq->s.top_p = (float)(1 + rnd_below(1000)) / 1000.0f;
	rq->s.top_k = rnd_below(200);
	rq->s.seed = rnd();
	rq->s.flags = rnd_below(4);
	strcpy(model, models[rnd_below(5)] ? models[rnd_below(4) + 1] : "");
	rq->model = rnd_below(2) ? model : NULL;
	rq->n_stop = (uint16_t)rnd_below(NC_MAX_STOP + 1);
	for (i = 0; i < rq->n_stop; i++)
		stop[i] = (uint32_t)rnd();
	rq->stop = stop;
	if (rnd_below(4)) {
		rq->n_prompt = 1 + rnd_below(max_ids);
		for (i = 0; i < rq->n_prompt; i++)
			ids[i] = (uint32_t)rnd();
		rq->prompt = ids;
	} else {
		rq->text_len = 1 + rnd_below(300);
		for (i = 0; i < rq->text_len; i++)
			text[i] = (char)(' ' + rnd_below(95));
		rq->text = text;
	}
}

static void check_request(const struct nc_request *rq,
			  const struct nc_request_view *v)
{
	size_t mlen = rq->model ? strlen(rq->model) : 0;
	uint32_t i;

	assert_int_equal(v->s.max_tokens, rq->s.max_tokens);
	assert_true(v->s.temperature == rq->s.temperature);
	assert_true(v->s.top_p == rq->s.top_p);
	assert_int_equal(v->s.top_k, rq->s.top_k);
	assert_true(v->s.seed == rq->s.seed);
	assert_int_equal(v->s.flags, rq->s.flags);
	assert_int_equal(v->model_len, mlen);
	assert_memory_equal(v->model, mlen ? rq->model : "", mlen);
	assert_int_equal(v->n_stop, rq->n_stop);
	for (i = 0; i < rq->n_stop; i++)
		assert_int_equal(nc_id_at(v->stop_ids, i), rq->stop[i]);
	assert_int_equal(v->n_prompt, rq->n_prompt);
	for (i = 0; i < rq->n_prompt; i++)
		assert_int_equal(nc_id_at(v->prompt_ids, i), rq->prompt[i]);
	assert_int_equal(v->text_len, rq->text_len);
	if (rq->text_len)
		assert_memory_equal(v->text, rq->text, rq->text_len);
}

static int in_buf(const void *p, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;

	return q >= buf && q <= buf + len;
}

/* Every strict prefix and a one-byte extension must be rejected. */
static void check_truncations(const uint8_t *pkt, int len)
{
	uint8_t buf[NC_MAX_PKT + 1];
	struct nc_pkt v;
	int n;

	for (n = 0; n < len; n++) {
		memcpy(buf, pkt, (size_t)n);
		assert_true(nc_parse(buf, (size_t)n, &v) < 0);
	}
	if (len < NC_MAX_PKT) {
		memcpy(buf, pkt, (size_t)len);
		buf[len] = 0;
		assert_true(nc_parse(buf, (size_t)len + 1, &v) < 0);
	}
}

static void test_request_roundtrip(void **state)
{
	static uint32_t ids[400], stop[NC_MAX_STOP];
	static char text[400], model[80];
	uint8_t pkt[NC_MAX_PKT];
	struct nc_request rq;
	struct nc_pkt v;
	uint64_t copied;
	int i, n;

	for (i = 0; i < 300; i++) {
		uint64_t rid = rnd();

		rand_request(&rq, stop, ids, 300, text, model);
		n = nc_build_request(pkt, sizeof(pkt), rid, 0, &rq);
		if (n == -NC_E_TOO_LONG) {
			assert_true(nc_request_body_len(&rq) + NC_HDR_LEN >
				    NC_MAX_PKT);
			continue;
		}
		assert_true(n > 0);
		copied = nc_proto_copied_bytes();
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_true(nc_proto_copied_bytes() == copied);	/* zero copy */
		assert_int_equal(v.h.type, NC_T_REQUEST);
		assert_true(v.h.rid == rid);
		check_request(&rq, &v.u.req);
		assert_true(in_buf(v.u.req.prompt_ids, pkt, (size_t)n));
		assert_true(in_buf(v.u.req.text, pkt, (size_t)n));
		if (i < 40)
			check_truncations(pkt, n);
	}
}

/* Stop strings: random sets round-trip, in place, with every truncation. */
static void test_stop_strings_roundtrip(void **state)
{
	static const char *pool[] = { "friend", "\n\nQ:", "h\xc3\xa9", "\xe2\x82\xac!",
				      "x", "</s>", "\t" };
	static char long_str[NC_MAX_STOP_STR_LEN + 1];
	const char *stop[NC_MAX_STOP_STR];
	static uint8_t pkt[NC_MAX_PKT];
	uint32_t ids[3] = { 5, 6, 7 };
	struct nc_request rq;
	struct nc_pkt v;
	int n;

	memset(long_str, 'z', NC_MAX_STOP_STR_LEN);
	for (int i = 0; i < 200; i++) {
		unsigned k = 1 + rnd_below(NC_MAX_STOP_STR), tl = rnd_below(8);
		uint64_t copied;

		memset(&rq, 0, sizeof(rq));
		rq.s.max_tokens = 9;
		rq.s.top_p = 1.0f;
		rq.s.flags = rnd_below(2) ? NC_RQ_TEXT_OUT : 0;
		rq.model = rnd_below(2) ? "tiny-a" : NULL;
		if (tl) {	/* text lengths 1..7: every padding */
			rq.text = "abcdefg";
			rq.text_len = tl;
		} else {
			rq.prompt = ids;
			rq.n_prompt = 3;
		}
		for (unsigned j = 0; j < k; j++)
			stop[j] = i == 0 ? long_str :
				  pool[rnd_below(sizeof(pool) / sizeof(pool[0]))];
		rq.stop_str = stop;
		rq.n_stop_str = (uint8_t)k;
		n = nc_build_request(pkt, sizeof(pkt), 77, 0, &rq);
		assert_true(n > 0);
		copied = nc_proto_copied_bytes();
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_true(nc_proto_copied_bytes() == copied);	/* zero copy */
		assert_true(v.u.req.s.flags & NC_RQ_STOP_TEXT);
		assert_int_equal(v.u.req.n_stop_str, k);
		assert_int_equal(v.u.req.text_len, rq.text_len);
		for (unsigned j = 0; j < k; j++) {
			assert_int_equal(v.u.req.stop_str_len[j], strlen(stop[j]));
			assert_string_equal((const char *)v.u.req.stop_str[j], stop[j]);
			assert_true(in_buf(v.u.req.stop_str[j], pkt, (size_t)n));
		}
		/* body length formula: stop_len (u32, 4-aligned) then the strings */
		{
			size_t base = NC_HDR_LEN + NC_REQ_FIXED_LEN +
				      (rq.model ? 8 : 0) + 4u * rq.n_prompt +
				      ((tl + 3u) & ~3u);
			size_t sl = 0;

			for (unsigned j = 0; j < k; j++)
				sl += strlen(stop[j]) + 1;
			assert_int_equal(base % 4, 0);
			assert_int_equal(nc_le32(pkt + base), sl);
			assert_int_equal((size_t)n, base + 4 + sl);
		}
		if (i < 60)
			check_truncations(pkt, n);
	}
}

/* Malformed stop sections, each on an otherwise valid request. */
static void test_stop_strings_malformed(void **state)
{
	const char *two[] = { "ab", "cd" };
	uint8_t good[NC_MAX_PKT], pkt[NC_MAX_PKT];
	struct nc_request rq = { .s = { .max_tokens = 4, .top_p = 1.0f },
				 .text = "hi!", .text_len = 3,	/* one pad byte */
				 .stop_str = two, .n_stop_str = 2 };
	const char *five[] = { "a", "b", "c", "d", "e" }, *bad[] = { "" };
	static char big[NC_MAX_STOP_STR_LEN + 2];
	struct nc_pkt v;
	int n, sect;

	n = nc_build_request(good, sizeof(good), 9, 0, &rq);
	assert_true(n > 0);
	assert_int_equal(nc_parse(good, (size_t)n, &v), 0);
	sect = n - 6;	/* "ab\0cd\0" */
	assert_int_equal(nc_le32(good + sect - 4), 6);
	assert_int_equal(good[sect - 5], 0);	/* text padding */
#define MUT(stmt, want) do { \
		memcpy(pkt, good, (size_t)n); \
		stmt; \
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), (want)); \
	} while (0)
	MUT(pkt[sect - 5] = 'x', -NC_E_FIELD);		/* padding not zero */
	MUT(pkt[n - 1] = 'x', -NC_E_FIELD);		/* no final NUL */
	MUT(pkt[sect] = 0, -NC_E_FIELD);		/* empty first string */
	MUT(pkt[sect + 2] = 0; pkt[sect + 3] = 0, -NC_E_FIELD);	/* empty second */
	MUT(pkt[sect + 1] = 0xff, -NC_E_UTF8);		/* not UTF-8 */
	MUT(pkt[sect + 3] = 0xc0; pkt[sect + 4] = 0xaf, -NC_E_UTF8);	/* overlong */
	MUT(nc_put32(pkt + sect - 4, 0), -NC_E_FIELD);	/* stop_len 0 */
	MUT(nc_put32(pkt + sect - 4, 1), -NC_E_FIELD);	/* stop_len 1 */
	MUT(nc_put32(pkt + sect - 4, 5), -NC_E_LEN);	/* shorter than the body */
	MUT(nc_put32(pkt + sect - 4, 7), -NC_E_SHORT);	/* longer */
	MUT(nc_put32(pkt + sect - 4, NC_MAX_STOP_SECT + 1), -NC_E_FIELD);
	/* flag clear: the section is extra bytes */
	MUT(pkt[24 + 24] = 0, -NC_E_LEN);
	/* a request names itself (request id not 0) and carries seq 0 */
	MUT(memset(pkt + 8, 0, 8), -NC_E_FIELD);
	MUT(nc_put32(pkt + 16, 1), -NC_E_FIELD);
	/* the builder refuses what the parser refuses */
	rq.stop_str = five;
	rq.n_stop_str = 5;
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 9, 0, &rq), -NC_E_FIELD);
	rq.stop_str = bad;
	rq.n_stop_str = 1;
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 9, 0, &rq), -NC_E_FIELD);
	memset(big, 'q', NC_MAX_STOP_STR_LEN + 1);
	bad[0] = big;
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 9, 0, &rq), -NC_E_FIELD);
	bad[0] = "\xff";
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 9, 0, &rq), -NC_E_UTF8);
	rq.n_stop_str = 0;
	rq.s.flags = NC_RQ_STOP_TEXT;	/* the flag without strings */
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 9, 0, &rq), -NC_E_FIELD);
#undef MUT
}

static void test_token_roundtrip(void **state)
{
	struct nc_token_out toks[NC_MAX_TOK_PER_PKT];
	uint8_t pkt[NC_MAX_PKT], text[64];
	struct nc_pkt v;
	uint64_t copied;
	int i, n;

	for (i = 0; i < 500; i++) {
		unsigned cnt = 1 + rnd_below(NC_MAX_TOK_PER_PKT), k;
		uint16_t tl = (uint16_t)rnd_below(sizeof(text));
		uint32_t seq = (uint32_t)rnd(), first = (uint32_t)rnd();
		uint64_t rid = rnd(), rx = rnd();

		for (k = 0; k < cnt; k++) {
			toks[k].id = (uint32_t)rnd();
			toks[k].card_ns = (uint32_t)rnd();
			toks[k].tx_ns = rnd();
		}
		for (k = 0; k < tl; k++)
			text[k] = (uint8_t)('a' + rnd_below(26));
		n = nc_build_token(pkt, sizeof(pkt), rid, seq, NC_F_RETRANS,
				   first, rx, toks, cnt, text, tl);
		assert_true(n > 0);
		copied = nc_proto_copied_bytes();
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_true(nc_proto_copied_bytes() == copied);
		assert_int_equal(v.h.type, NC_T_TOKEN);
		assert_int_equal(v.h.flags, NC_F_RETRANS);
		assert_true(v.h.rid == rid && v.h.seq == seq);
		assert_int_equal(v.u.tok.n_tokens, cnt);
		assert_int_equal(v.u.tok.first_index, first);
		assert_true(v.u.tok.rx_ns == rx);
		for (k = 0; k < cnt; k++) {
			assert_int_equal(nc_wire_tok_id(&v.u.tok, k), toks[k].id);
			assert_int_equal(nc_tok_card_ns(&v.u.tok, k),
					 toks[k].card_ns);
			assert_true(nc_tok_tx_ns(&v.u.tok, k) == toks[k].tx_ns);
		}
		assert_int_equal(v.u.tok.text_len, tl);
		assert_memory_equal(v.u.tok.text, text, tl);
		assert_true(in_buf(v.u.tok.entries, pkt, (size_t)n));
		if (i < 30)
			check_truncations(pkt, n);
	}
	assert_int_equal(nc_build_token(pkt, sizeof(pkt), 1, 0, 0, 0, 0, toks,
					0, NULL, 0), -NC_E_FIELD);
	assert_int_equal(nc_build_token(pkt, 100, 1, 0, 0, 0, 0, toks, 8,
					NULL, 0), -NC_E_NOSPACE);
}

/* The small fixed-layout types, with random values. */
static void test_small_roundtrip(void **state)
{
	uint8_t pkt[NC_MAX_PKT];
	struct nc_pkt v;
	int i, n;

	for (i = 0; i < 300; i++) {
		uint64_t rid = rnd();
		uint32_t seq = (uint32_t)rnd();
		struct nc_accepted a = { (uint32_t)rnd(), (uint32_t)rnd(),
					 (uint16_t)rnd(), rnd() };
		struct nc_final f = { (uint8_t)(1 + rnd_below(4)), 0,
				      (uint32_t)rnd(), (uint32_t)rnd(),
				      rnd(), rnd() };
		struct nc_ack k = { (uint32_t)rnd(), rnd() };
		struct nc_pong p = { rnd(), rnd(), (uint16_t)rnd(),
				     (uint16_t)rnd(), (uint32_t)rnd(),
				     (uint32_t)rnd(), (uint32_t)rnd() };
		const char *msg = "prompt exceeds 65536 tokens";
		struct nc_error_view e = { (uint16_t)(1 + rnd_below(NC_WE_MAX_)),
					   (uint8_t)rnd_below(11), 1,
					   (uint32_t)rnd(),
					   (uint16_t)rnd_below(28),
					   (const uint8_t *)msg };
		uint64_t ts = rnd();

		if (f.reason == NC_FIN_ERROR)
			f.err_code = (uint16_t)(1 + rnd_below(NC_WE_MAX_));

		n = nc_build_accepted(pkt, sizeof(pkt), rid, &a);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_ACCEPTED);
		assert_true(v.h.rid == rid);
		assert_int_equal(v.u.acc.queue_pos, a.queue_pos);
		assert_int_equal(v.u.acc.prompt_tokens, a.prompt_tokens);
		assert_int_equal(v.u.acc.window, a.window);
		assert_true(v.u.acc.rx_ns == a.rx_ns);
		check_truncations(pkt, n);

		n = nc_build_final(pkt, sizeof(pkt), rid, seq, 0, &f);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_FINAL);
		assert_int_equal(v.h.seq, seq);
		assert_int_equal(v.u.fin.reason, f.reason);
		assert_int_equal(v.u.fin.err_code, f.err_code);
		assert_int_equal(v.u.fin.prompt_tokens, f.prompt_tokens);
		assert_int_equal(v.u.fin.completion_tokens, f.completion_tokens);
		assert_true(v.u.fin.rx_ns == f.rx_ns && v.u.fin.tx_ns == f.tx_ns);
		check_truncations(pkt, n);

		n = nc_build_ack(pkt, sizeof(pkt), rid, &k);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_ACK);
		assert_true(v.u.ack.next == k.next && v.u.ack.sack == k.sack);
		check_truncations(pkt, n);

		n = nc_build_cancel(pkt, sizeof(pkt), rid, 0);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_CANCEL);
		assert_true(v.h.rid == rid);
		check_truncations(pkt, n);

		n = nc_build_ping(pkt, sizeof(pkt), seq, ts);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_PING);
		assert_true(v.u.ping.client_ns == ts && v.h.seq == seq);
		check_truncations(pkt, n);

		n = nc_build_pong(pkt, sizeof(pkt), seq, &p);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_PONG);
		assert_memory_equal(&v.u.pong, &p, sizeof(p));
		check_truncations(pkt, n);

		n = nc_build_error(pkt, sizeof(pkt), rid, seq, &e);
		assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
		assert_int_equal(v.h.type, NC_T_ERROR);
		assert_int_equal(v.u.err.code, e.code);
		assert_int_equal(v.u.err.bad_type, e.bad_type);
		assert_int_equal(v.u.err.detail, e.detail);
		assert_int_equal(v.u.err.msg_len, e.msg_len);
		assert_memory_equal(v.u.err.msg, msg, e.msg_len);
		/* The message is variable-length, but a cut packet no longer
		 * matches the header's payload length. */
		check_truncations(pkt, n);
	}
}

static void test_header_errors(void **state)
{
	uint8_t pkt[NC_MAX_PKT];
	struct nc_pkt v;
	int n = nc_build_cancel(pkt, sizeof(pkt), 42, 0);

	assert_int_equal(n, NC_HDR_LEN);
	pkt[0] = 'X';
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_MAGIC);
	pkt[0] = NC_MAGIC0;
	pkt[2] = 2;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_VERSION);
	assert_int_equal(nc_err_to_wire(-NC_E_VERSION), NC_WE_VERSION);
	/* A version-2 packet is recognised even when shorter than v1's header. */
	assert_int_equal(nc_parse(pkt, 8, &v), -NC_E_VERSION);
	pkt[2] = 0;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_VERSION);
	pkt[2] = NC_VERSION;
	pkt[3] = 0;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_TYPE);
	pkt[3] = NC_T_MAX_ + 1;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_TYPE);
	pkt[3] = NC_T_CANCEL;
	pkt[4] = 0x80;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_FLAGS);
	pkt[4] = 0;
	pkt[6] = 20;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_HDRLEN);
	pkt[6] = 26;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_HDRLEN);
	pkt[6] = NC_HDR_LEN;
	pkt[20] = 1;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_LEN);
	pkt[20] = 0;
	pkt[22] = 1;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_FIELD);
	pkt[22] = 0;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
	assert_int_equal(nc_parse(pkt, NC_MAX_PKT + 1, &v), -NC_E_LEN);
	assert_string_equal(nc_strerror(-NC_E_VERSION),
			    "unsupported protocol version");
	assert_string_equal(nc_strerror(-9999), "unknown error");

	/* A longer header (a future extension) is skipped. */
	memset(pkt, 0, sizeof(pkt));
	n = nc_build_ping(pkt, sizeof(pkt), 7, 99);
	memmove(pkt + 32, pkt + NC_HDR_LEN, 8);
	memset(pkt + NC_HDR_LEN, 0, 8);
	pkt[6] = 32;
	assert_int_equal(nc_parse(pkt, 40, &v), 0);
	assert_true(v.u.ping.client_ns == 99);
}

static void test_request_field_errors(void **state)
{
	uint32_t ids[3] = { 1, 2, 3 };
	struct nc_request rq = { .s = { .max_tokens = 8, .temperature = 0.7f,
					.top_p = 0.9f },
				 .prompt = ids, .n_prompt = 3 };
	uint8_t pkt[NC_MAX_PKT];
	struct nc_pkt v;
	int n;

	n = nc_build_request(pkt, sizeof(pkt), 5, 0, &rq);
	assert_int_equal(n, NC_HDR_LEN + NC_REQ_FIXED_LEN + 12);
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
	pkt[NC_HDR_LEN] = 0;	/* max_tokens = 0 */
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_FIELD);
	pkt[NC_HDR_LEN] = 8;
	nc_put32(pkt + NC_HDR_LEN + 4, 0x7fc00000);	/* NaN temperature */
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_FIELD);

	rq.s.top_p = 0.0f;
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 5, 0, &rq),
			 -NC_E_FIELD);
	rq.s.top_p = 1.0f;
	rq.text = "both";
	rq.text_len = 4;
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 5, 0, &rq),
			 -NC_E_FIELD);
	rq.n_prompt = 0;
	rq.text = "\xc0\xaf";	/* overlong '/' */
	rq.text_len = 2;
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 5, 0, &rq),
			 -NC_E_UTF8);
	rq.text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";
	rq.text_len = (uint32_t)strlen(rq.text);
	rq.model = "bad model";
	assert_int_equal(nc_build_request(pkt, sizeof(pkt), 5, 0, &rq),
			 -NC_E_FIELD);
	rq.model = "fortune-13m";
	n = nc_build_request(pkt, sizeof(pkt), 5, 0, &rq);
	assert_true(n > 0);
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), 0);
	assert_int_equal(v.u.req.text_len, rq.text_len);
	/* Corrupt the model padding, then a UTF-8 byte of the text. */
	pkt[NC_HDR_LEN + NC_REQ_FIXED_LEN + 11] = 'x';
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_FIELD);
	pkt[NC_HDR_LEN + NC_REQ_FIXED_LEN + 11] = 0;
	pkt[n - 1] = 0xff;
	assert_int_equal(nc_parse(pkt, (size_t)n, &v), -NC_E_UTF8);
}

/* Random bytes, and valid packets with random bytes changed. */
static void test_garbage(void **state)
{
	uint8_t pkt[NC_MAX_PKT], good[NC_MAX_PKT];
	struct nc_token_out t[4] = { { 1, 2, 3 }, { 4, 5, 6 } };
	struct nc_pkt v;
	int i, n, ok = 0;

	for (i = 0; i < 20000; i++) {
		size_t len = rnd_below(NC_MAX_PKT + 1), k;

		for (k = 0; k < len; k++)
			pkt[k] = (uint8_t)rnd();
		if (len >= 4 && rnd_below(2)) {
			pkt[0] = NC_MAGIC0;
			pkt[1] = NC_MAGIC1;
			pkt[2] = NC_VERSION;
		}
		(void)nc_parse(pkt, len, &v);
	}
	n = nc_build_token(good, sizeof(good), 3, 4, 0, 0, 0, t, 2, NULL, 0);
	for (i = 0; i < 20000; i++) {
		memcpy(pkt, good, (size_t)n);
		pkt[rnd_below((uint32_t)n)] = (uint8_t)rnd();
		if (nc_parse(pkt, (size_t)n, &v) == 0) {
			ok++;
			assert_true(in_buf(v.u.tok.entries, pkt, (size_t)n));
			assert_true(v.u.tok.n_tokens * NC_TOK_ENTRY_LEN +
				    NC_TOK_HDR_LEN <= n - NC_HDR_LEN);
		}
	}
	assert_true(ok > 0 && ok < 20000);
}

/* ---- reassembly --------------------------------------------------------- */

struct frag_set {
	uint8_t pkt[NC_MAX_FRAGS][NC_MAX_PKT];
	int len[NC_MAX_FRAGS];
	int count;
	uint8_t body[NC_MAX_BODY];
	uint32_t body_len;
};

static struct frag_set fs;
static uint32_t big_ids[NC_MAX_BODY / 4];

/* Build a fragmented request with n_ids prompt ids. */
static void make_frags(struct frag_set *s, uint64_t rid, uint32_t n_ids)
{
	struct nc_request rq = { .s = { .max_tokens = 16, .top_p = 1.0f },
				 .prompt = big_ids, .n_prompt = n_ids };
	uint32_t i;
	int n;

	for (i = 0; i < n_ids; i++)
		big_ids[i] = (uint32_t)rnd() % 151936;
	n = nc_build_request_body(s->body, sizeof(s->body), &rq);
	assert_true(n > 0);
	s->body_len = (uint32_t)n;
	s->count = nc_frag_count(s->body_len);
	assert_true(s->count > 0);
	for (i = 0; i < (uint32_t)s->count; i++) {
		s->len[i] = nc_build_frag(s->pkt[i], NC_MAX_PKT, rid, 0, s->body,
					  s->body_len, (uint16_t)i);
		assert_true(s->len[i] > 0);
	}
	check_truncations(s->pkt[0], s->len[0]);
	check_truncations(s->pkt[s->count - 1], s->len[s->count - 1]);
}

static int feed(struct nc_reasm *r, const struct nc_peer *p, int i,
		uint64_t now, struct nc_reasm_done *d)
{
	struct nc_pkt v;

	assert_int_equal(nc_parse(fs.pkt[i], (size_t)fs.len[i], &v), 0);
	assert_int_equal(v.h.type, NC_T_REQUEST_FRAG);
	return nc_reasm_add(r, p, v.h.rid, &v.u.frag, now, d);
}

static struct nc_peer peer_of(uint32_t ip, uint16_t port)
{
	struct nc_peer p;

	memset(&p, 0, sizeof(p));
	p.family = 4;
	nc_put32(p.addr, ip);
	p.port = port;
	return p;
}

static void check_done(const struct nc_reasm_done *d, uint32_t n_ids)
{
	struct nc_request_view v;
	uint32_t i;

	assert_int_equal(d->len, fs.body_len);
	assert_memory_equal(d->body, fs.body, fs.body_len);
	assert_int_equal(nc_parse_request_body(d->body, d->len, &v), 0);
	assert_int_equal(v.n_prompt, n_ids);
	for (i = 0; i < n_ids; i++)
		assert_int_equal(nc_id_at(v.prompt_ids, i), big_ids[i]);
}

static void shuffle(int *o, int n)
{
	int i;

	for (i = 0; i < n; i++)
		o[i] = i;
	for (i = n - 1; i > 0; i--) {
		int j = (int)rnd_below((uint32_t)i + 1), t = o[i];

		o[i] = o[j];
		o[j] = t;
	}
}

enum order { IN_ORDER, REVERSED, SHUFFLED, DUPLICATED };

static void reasm_order(enum order ord)
{
	struct nc_reasm_cfg cfg = NC_REASM_DEFAULT_CFG;
	struct nc_peer p = peer_of(0x7f000001, 4000);
	struct nc_reasm_done d;
	struct nc_reasm r;
	int order[NC_MAX_FRAGS], i, rc = 0, round;

	assert_int_equal(nc_reasm_init(&r, &cfg), 0);
	for (round = 0; round < 10; round++) {
		uint32_t n_ids = 400 + rnd_below(60000);

		make_frags(&fs, rnd(), n_ids);
		shuffle(order, fs.count);
		rc = 0;
		for (i = 0; i < fs.count; i++) {
			int k = ord == IN_ORDER ? i :
				ord == REVERSED ? fs.count - 1 - i : order[i];

			assert_int_equal(rc, 0);
			rc = feed(&r, &p, k, 1000 + (uint64_t)i, &d);
			if (ord == DUPLICATED && rc == 0)
				assert_int_equal(feed(&r, &p, k, 1000, &d),
						 -NC_E_DUP);
		}
		assert_int_equal(rc, 1);
		check_done(&d, n_ids);
		/* Late duplicates of a finished request are not a new one. */
		assert_int_equal(feed(&r, &p, 0, 2000, &d), -NC_E_DUP);
		nc_reasm_release(&r, d.handle);
		assert_int_equal(r.st.active, 0);
		assert_int_equal(r.st.blocks_used, 0);
	}
	assert_int_equal(r.st.completed, 10);
	assert_int_equal(r.st.conflict + r.st.pool_full + r.st.timeout, 0);
	nc_reasm_fini(&r);
}

static void test_reasm_in_order(void **state) { reasm_order(IN_ORDER); }
static void test_reasm_reversed(void **state) { reasm_order(REVERSED); }
static void test_reasm_shuffled(void **state) { reasm_order(SHUFFLED); }
static void test_reasm_dups(void **state) { reasm_order(DUPLICATED); }

static void test_reasm_drop_and_timeout(void **state)
{
	struct nc_reasm_cfg cfg = NC_REASM_DEFAULT_CFG;
	struct nc_peer p = peer_of(0x0a000001, 999);
	struct nc_reasm_done d;
	struct nc_reasm r;
	int i;

	assert_int_equal(nc_reasm_init(&r, &cfg), 0);
	make_frags(&fs, 77, 3000);
	for (i = 0; i < fs.count; i++)
		if (i != 2)	/* lost */
			assert_int_equal(feed(&r, &p, i, 10, &d), 0);
	assert_int_equal(r.st.active, 1);
	assert_int_equal(nc_reasm_expire(&r, 10 + cfg.timeout_ns - 1), 0);
	assert_int_equal(nc_reasm_expire(&r, 10 + cfg.timeout_ns), 1);
	assert_int_equal(r.st.active, 0);
	assert_int_equal(r.st.blocks_used, 0);
	assert_int_equal(r.st.timeout, 1);
	/* A client resend after the timeout completes from scratch. */
	for (i = 0; i < fs.count; i++)
		assert_int_equal(feed(&r, &p, i, cfg.timeout_ns * 2, &d),
				 i + 1 == fs.count);
	check_done(&d, 3000);
	nc_reasm_release(&r, d.handle);
	/* A stale partial is replaced on the next fragment even unswept. */
	assert_int_equal(feed(&r, &p, 0, 5 * cfg.timeout_ns, &d), 0);
	assert_int_equal(feed(&r, &p, 1, 7 * cfg.timeout_ns, &d), 0);
	assert_int_equal(r.st.timeout, 2);
	assert_int_equal(r.st.active, 1);
	nc_reasm_fini(&r);
}

static void test_reasm_conflict(void **state)
{
	struct nc_reasm_cfg cfg = NC_REASM_DEFAULT_CFG;
	struct nc_peer p = peer_of(0x0a000002, 1);
	struct nc_reasm_done d;
	struct nc_reasm r;
	struct nc_pkt v;

	assert_int_equal(nc_reasm_init(&r, &cfg), 0);
	make_frags(&fs, 5, 2000);
	assert_int_equal(feed(&r, &p, 1, 1, &d), 0);
	/* Same index, different bytes: the partial is discarded. */
	fs.pkt[1][NC_HDR_LEN + NC_FRAG_HDR_LEN + 5] ^= 1;
	assert_int_equal(feed(&r, &p, 1, 2, &d), -NC_E_CONFLICT);
	assert_int_equal(r.st.active, 0);
	/* Different total length for the same request id. */
	assert_int_equal(feed(&r, &p, 0, 3, &d), 0);
	assert_int_equal(nc_parse(fs.pkt[0], (size_t)fs.len[0], &v), 0);
	v.u.frag.total_len += 4;
	assert_int_equal(nc_reasm_add(&r, &p, 5, &v.u.frag, 4, &d),
			 -NC_E_CONFLICT);
	assert_int_equal(r.st.conflict, 2);
	/* The same request id from another port is another request. */
	assert_int_equal(feed(&r, &p, 0, 5, &d), 0);
	p.port = 2;
	assert_int_equal(feed(&r, &p, 0, 5, &d), 0);
	assert_int_equal(r.st.active, 2);
	nc_reasm_fini(&r);
}

static void test_reasm_bounds(void **state)
{
	struct nc_reasm_cfg cfg = NC_REASM_DEFAULT_CFG;
	struct nc_peer p = peer_of(0x0a000003, 5);
	struct nc_reasm_done d;
	struct nc_reasm r;
	uint64_t rid;

	cfg.arena_bytes = 512 * 1024;
	cfg.client_bytes = NC_MAX_BODY + 8192;
	cfg.client_partials = 3;
	assert_int_equal(nc_reasm_init(&r, &cfg), 0);
	/* A maximal body (256 KiB) fits one client once, not twice. */
	make_frags(&fs, 1, (NC_MAX_BODY - NC_REQ_FIXED_LEN) / 4);
	assert_int_equal(fs.body_len, NC_MAX_BODY);
	assert_int_equal(fs.count, nc_frag_count(NC_MAX_BODY));
	assert_int_equal(feed(&r, &p, 0, 1, &d), 0);
	assert_true(nc_reasm_client_bytes(&r, &p) <= cfg.client_bytes);
	for (rid = 2; rid < 5; rid++) {
		make_frags(&fs, rid, 5000);	/* 10 more blocks: over */
		assert_int_equal(feed(&r, &p, 0, 1, &d), -NC_E_CLIENT_LIMIT);
	}
	assert_int_equal(r.st.client_limit, 3);
	/* Three small ones from another address, then the count bound. */
	p = peer_of(0x0a000004, 5);
	for (rid = 10; rid < 13; rid++) {
		make_frags(&fs, rid, 1000);
		assert_int_equal(feed(&r, &p, 0, 1, &d), 0);
	}
	make_frags(&fs, 13, 1000);
	assert_int_equal(feed(&r, &p, 0, 1, &d), -NC_E_CLIENT_LIMIT);
	/* A third address wanting 256 KiB finds the arena full: nothing is
	 * old enough to evict yet, so it is dropped... */
	p = peer_of(0x0a000005, 5);
	make_frags(&fs, 20, (NC_MAX_BODY - NC_REQ_FIXED_LEN) / 4);
	assert_int_equal(feed(&r, &p, 0, 2, &d), -NC_E_POOL_FULL);
	assert_true(r.st.blocks_used <= r.nblocks);
	/* ...and later the oldest partial is evicted to make room. */
	assert_int_equal(feed(&r, &p, 0, 2 + cfg.evict_age_ns, &d), 0);
	assert_true(r.st.evicted >= 1);
	assert_int_equal(r.st.timeout, 0);
	assert_true(r.st.blocks_used <= r.nblocks);
	nc_reasm_fini(&r);
}

/* 1000 clients each starting a request at once: memory stays bounded,
 * and after the timeout everything is reclaimed. */
static void test_reasm_many_clients(void **state)
{
	struct nc_reasm_cfg cfg = NC_REASM_DEFAULT_CFG;
	struct nc_reasm_done d;
	struct nc_reasm r;
	uint32_t c, ok = 0;

	cfg.max_partials = 256;
	cfg.arena_bytes = 1u << 20;
	assert_int_equal(nc_reasm_init(&r, &cfg), 0);
	make_frags(&fs, 9, 2000);
	for (c = 0; c < 1000; c++) {
		struct nc_peer p = peer_of(0x0b000000 + c, (uint16_t)c);
		int rc = feed(&r, &p, (int)(c % (uint32_t)fs.count), 100, &d);

		assert_true(rc == 0 || rc == -NC_E_POOL_FULL);
		ok += rc == 0;
		assert_true(r.st.active <= cfg.max_partials);
		assert_true(r.st.blocks_used <= r.nblocks);
	}
	assert_true(ok > 0 && ok <= cfg.max_partials);
	assert_int_equal(r.st.pool_full, 1000 - ok);
	assert_int_equal(nc_reasm_expire(&r, 100 + cfg.timeout_ns), ok);
	assert_int_equal(r.st.active, 0);
	assert_int_equal(r.st.blocks_used, 0);
	/* Afterwards a whole request still goes through. */
	{
		struct nc_peer p = peer_of(0x0c000001, 1);
		int i, rc = 0;

		for (i = 0; i < fs.count; i++)
			rc = feed(&r, &p, i, 2 * cfg.timeout_ns, &d);
		assert_int_equal(rc, 1);
	}
	nc_reasm_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_request_roundtrip, setup),
		cmocka_unit_test_setup(test_stop_strings_roundtrip, setup),
		cmocka_unit_test_setup(test_stop_strings_malformed, setup),
		cmocka_unit_test_setup(test_token_roundtrip, setup),
		cmocka_unit_test_setup(test_small_roundtrip, setup),
		cmocka_unit_test_setup(test_header_errors, setup),
		cmocka_unit_test_setup(test_request_field_errors, setup),
		cmocka_unit_test_setup(test_garbage, setup),
		cmocka_unit_test_setup(test_reasm_in_order, setup),
		cmocka_unit_test_setup(test_reasm_reversed, setup),
		cmocka_unit_test_setup(test_reasm_shuffled, setup),
		cmocka_unit_test_setup(test_reasm_dups, setup),
		cmocka_unit_test_setup(test_reasm_drop_and_timeout, setup),
		cmocka_unit_test_setup(test_reasm_conflict, setup),
		cmocka_unit_test_setup(test_reasm_bounds, setup),
		cmocka_unit_test_setup(test_reasm_many_clients, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
