/* fuzz_proto.c — parse arbitrary packets and reassemble arbitrary fragments.
 *
 * Input: a sequence of records [len u16 LE][ctl u8][len bytes]. Each record
 * is parsed as one packet; ctl picks the client (low 3 bits) and how far the
 * clock moves (high bits), so timeouts and eviction run too. Fragments go to
 * a small reassembler so the pool-full and per-client paths are reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/proto.h"
#include "net/reasm.h"

/* Check that a parsed view stays inside the packet. */
static void check_inside(const uint8_t *b, size_t n, const void *p, size_t len)
{
	const uint8_t *q = p;

	if (q < b || q + len > b + n)
		abort();
}

/* Rebuild a TOKEN packet from its view: the bytes must come back. */
static void rebuild_token(const uint8_t *b, size_t n, const struct nc_pkt *v)
{
	struct nc_token_out t[NC_MAX_TOK_PER_PKT];
	uint8_t out[NC_MAX_PKT];
	unsigned i;
	int len;

	if (v->h.hdr_len != NC_HDR_LEN)
		return;
	for (i = 0; i < v->u.tok.n_tokens; i++) {
		t[i].id = nc_wire_tok_id(&v->u.tok, i);
		t[i].card_ns = nc_tok_card_ns(&v->u.tok, i);
		t[i].tx_ns = nc_tok_tx_ns(&v->u.tok, i);
	}
	len = nc_build_token(out, sizeof(out), v->h.rid, v->h.seq, v->h.flags,
			     v->u.tok.first_index, v->u.tok.rx_ns, t,
			     v->u.tok.n_tokens, v->u.tok.text,
			     v->u.tok.text_len);
	if (len != (int)n || memcmp(out, b, n))
		abort();
}

static void check_request(const struct nc_request_view *r, const uint8_t *b,
			  size_t n)
{
	uint64_t sum = 0;
	uint32_t i;

	check_inside(b, n, r->model, r->model_len);
	check_inside(b, n, r->stop_ids, 4u * r->n_stop);
	check_inside(b, n, r->prompt_ids, 4ull * r->n_prompt);
	check_inside(b, n, r->text, r->text_len);
	for (i = 0; i < r->n_prompt; i++)
		sum += nc_id_at(r->prompt_ids, i);
	if (sum == 0xdeadbeefcafeull)	/* keep the reads */
		abort();
	if (!(r->s.flags & NC_RQ_STOP_TEXT) != !r->n_stop_str ||
	    r->n_stop_str > NC_MAX_STOP_STR)
		abort();
	for (i = 0; i < r->n_stop_str; i++) {
		/* each string and its NUL inside; a C string of its length */
		check_inside(b, n, r->stop_str[i], r->stop_str_len[i] + 1u);
		if (r->stop_str_len[i] < 1 || r->stop_str_len[i] > NC_MAX_STOP_STR_LEN ||
		    strlen((const char *)r->stop_str[i]) != r->stop_str_len[i])
			abort();
	}
}

/* Rebuild a request body from its view: the bytes must come back. */
static void rebuild_request(const struct nc_request_view *r, const uint8_t *body,
			    size_t n)
{
	const char *stop[NC_MAX_STOP_STR];
	uint32_t stop_ids[NC_MAX_STOP], *ids;
	char model[NC_MAX_MODEL_LEN + 1];
	struct nc_request rq = { .s = r->s };
	uint8_t *out;
	uint32_t i;
	int len;

	ids = malloc(4 * (size_t)r->n_prompt + 4);
	out = malloc(n + 1);
	if (!ids || !out)
		abort();
	memcpy(model, r->model, r->model_len);
	model[r->model_len] = 0;
	for (i = 0; i < r->n_stop; i++)
		stop_ids[i] = nc_id_at(r->stop_ids, i);
	for (i = 0; i < r->n_prompt; i++)
		ids[i] = nc_id_at(r->prompt_ids, i);
	for (i = 0; i < r->n_stop_str; i++)
		stop[i] = (const char *)r->stop_str[i];
	rq.model = model;
	rq.stop = stop_ids;
	rq.n_stop = r->n_stop;
	rq.prompt = ids;
	rq.n_prompt = r->n_prompt;
	rq.text = (const char *)r->text;
	rq.text_len = r->text_len;
	rq.stop_str = stop;
	rq.n_stop_str = r->n_stop_str;
	len = nc_build_request_body(out, n, &rq);
	if (len != (int)n || memcmp(out, body, n))
		abort();
	free(out);
	free(ids);
}

static void handle(struct nc_reasm *r, const uint8_t *b, size_t n, uint8_t ctl,
		   uint64_t now)
{
	struct nc_reasm_done d;
	struct nc_request_view rv;
	struct nc_peer peer;
	struct nc_pkt v;

	if (nc_parse(b, n, &v))
		return;
	check_inside(b, n, v.payload, v.h.payload_len);
	if (v.h.type == NC_T_TOKEN)
		rebuild_token(b, n, &v);
	if (v.h.type == NC_T_REQUEST) {
		check_request(&v.u.req, b, n);
		rebuild_request(&v.u.req, v.payload, v.h.payload_len);
	}
	if (v.h.type != NC_T_REQUEST_FRAG)
		return;
	memset(&peer, 0, sizeof(peer));
	peer.family = 4;
	peer.addr[3] = ctl & 3;
	peer.port = ctl & 4;
	if (nc_reasm_add(r, &peer, v.h.rid, &v.u.frag, now, &d) != 1)
		return;
	if (d.len != v.u.frag.total_len)
		abort();
	if (!nc_parse_request_body(d.body, d.len, &rv)) {
		check_request(&rv, d.body, d.len);
		rebuild_request(&rv, d.body, d.len);
	}
	nc_reasm_release(r, d.handle);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nc_reasm_cfg cfg = NC_REASM_DEFAULT_CFG;
	struct nc_reasm r;
	uint64_t now = 1;
	size_t off = 0;

	/* Small bounds so a few fragments reach every limit. */
	cfg.arena_bytes = 24 * NC_REASM_BLOCK;
	cfg.max_partials = 6;
	cfg.client_bytes = 16 * NC_REASM_BLOCK;
	cfg.client_partials = 3;
	cfg.timeout_ns = 1000;
	cfg.evict_age_ns = 250;
	if (nc_reasm_init(&r, &cfg))
		abort();
	if (size <= NC_MAX_PKT)
		handle(&r, data, size, 0, now);	/* the whole input as a packet */
	while (off + 3 <= size) {
		size_t n = nc_le16(data + off) % (NC_MAX_PKT + 1);
		uint8_t ctl = data[off + 2];
		uint8_t *pkt;

		off += 3;
		if (n > size - off)
			n = size - off;
		/* An exact-size copy so ASan sees reads past the packet end. */
		pkt = malloc(n ? n : 1);
		if (!pkt)
			abort();
		memcpy(pkt, data + off, n);
		handle(&r, pkt, n, ctl, now);
		free(pkt);
		now += (uint64_t)(ctl >> 3) * 40;
		off += n;
	}
	nc_reasm_expire(&r, now);
	nc_reasm_fini(&r);
	return 0;
}
