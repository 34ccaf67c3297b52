/* proto.c — nextcard wire protocol v1: validation-first parser and builders.
 * Layouts are in docs/protocol.md; offsets here follow it field by field. */
#include "net/proto.h"

#include <math.h>
#include <string.h>

/* Payload sizes of the fixed-layout types. */
#define ACC_LEN		24
#define FINAL_LEN	32
#define ACK_LEN		16
#define PING_LEN	8
#define PONG_LEN	32
#define ERR_FIXED_LEN	8
#define FRAG_MIN_STRIDE	64

static _Thread_local uint64_t copied_bytes;

uint64_t nc_proto_copied_bytes(void)
{
	return copied_bytes;
}

/* Every payload memcpy goes through here so it is counted. */
static void copy_counted(uint8_t *dst, const void *src, size_t n)
{
	if (!n)
		return;
	memcpy(dst, src, n);
	copied_bytes += n;
}

static const char *const err_names[NC_E_MAX_] = {
	[NC_OK] = "success",
	[NC_E_SHORT] = "packet truncated",
	[NC_E_MAGIC] = "bad magic",
	[NC_E_VERSION] = "unsupported protocol version",
	[NC_E_TYPE] = "unknown packet type",
	[NC_E_HDRLEN] = "bad header length",
	[NC_E_LEN] = "length fields disagree with packet size",
	[NC_E_FLAGS] = "reserved flag set",
	[NC_E_FIELD] = "field out of range",
	[NC_E_UTF8] = "invalid UTF-8",
	[NC_E_NOSPACE] = "buffer too small",
	[NC_E_TOO_LONG] = "request too long",
	[NC_E_POOL_FULL] = "reassembly pool full",
	[NC_E_CLIENT_LIMIT] = "per-client reassembly limit",
	[NC_E_DUP] = "duplicate fragment",
	[NC_E_CONFLICT] = "conflicting fragment",
	[NC_E_NOMEM] = "out of memory",
	[NC_E_INVAL] = "invalid argument",
	[NC_E_SOCK] = "socket error",
	[NC_E_RESOLVE] = "cannot resolve host",
	[NC_E_REFUSED] = "connection refused (no server on that port)",
	[NC_E_TIMEOUT] = "timed out waiting for the server",
	[NC_E_SERVER] = "server returned an error",
	[NC_E_PROTO] = "server broke the protocol",
	[NC_E_ABORTED] = "aborted by caller",
};

const char *nc_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= NC_E_MAX_ || !err_names[err])
		return "unknown error";
	return err_names[err];
}

const char *nc_wire_err_name(int code)
{
	static const char *const n[NC_WE_MAX_ + 1] = {
		[NC_WE_MALFORMED] = "malformed",
		[NC_WE_VERSION] = "unsupported version",
		[NC_WE_TOO_LONG] = "too long",
		[NC_WE_BUSY] = "busy",
		[NC_WE_UNKNOWN_REQUEST] = "unknown request",
		[NC_WE_INTERNAL] = "internal",
		[NC_WE_UNKNOWN_MODEL] = "unknown model",
		[NC_WE_TIMEOUT] = "timeout",
	};

	if (code <= 0 || code > NC_WE_MAX_)
		return "unknown";
	return n[code];
}

const char *nc_type_name(int type)
{
	static const char *const n[NC_T_MAX_ + 1] = {
		[NC_T_REQUEST] = "REQUEST", [NC_T_REQUEST_FRAG] = "REQUEST_FRAG",
		[NC_T_ACCEPTED] = "ACCEPTED", [NC_T_TOKEN] = "TOKEN",
		[NC_T_FINAL] = "FINAL", [NC_T_ACK] = "ACK",
		[NC_T_CANCEL] = "CANCEL", [NC_T_PING] = "PING",
		[NC_T_PONG] = "PONG", [NC_T_ERROR] = "ERROR",
	};

	if (type <= 0 || type > NC_T_MAX_)
		return "?";
	return n[type];
}

const char *nc_finish_name(int reason)
{
	switch (reason) {
	case NC_FIN_STOP: return "stop";
	case NC_FIN_LENGTH: return "length";
	case NC_FIN_CANCEL: return "cancel";
	case NC_FIN_ERROR: return "error";
	}
	return "?";
}

int nc_err_to_wire(int err)
{
	switch (err < 0 ? -err : err) {
	case NC_E_VERSION: return NC_WE_VERSION;
	case NC_E_TOO_LONG: return NC_WE_TOO_LONG;
	case NC_E_POOL_FULL:
	case NC_E_CLIENT_LIMIT: return NC_WE_BUSY;
	case NC_E_NOMEM: return NC_WE_INTERNAL;
	}
	return NC_WE_MALFORMED;
}

int nc_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		unsigned need, k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (len - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* ---- parsing ---------------------------------------------------------- */

int nc_parse_hdr(const uint8_t *b, size_t len, struct nc_hdr *h)
{
	if (len < 4)
		return -NC_E_SHORT;
	if (b[0] != NC_MAGIC0 || b[1] != NC_MAGIC1)
		return -NC_E_MAGIC;
	h->version = b[2];
	h->type = b[3];
	/* Bytes 0..3 mean the same in every version: check version first. */
	if (h->version != NC_VERSION)
		return -NC_E_VERSION;
	if (len < NC_HDR_LEN)
		return -NC_E_SHORT;
	if (len > NC_MAX_PKT)
		return -NC_E_LEN;
	h->flags = nc_le16(b + 4);
	h->hdr_len = nc_le16(b + 6);
	h->rid = nc_le64(b + 8);
	h->seq = nc_le32(b + 16);
	h->payload_len = nc_le16(b + 20);
	if (h->type == 0 || h->type > NC_T_MAX_)
		return -NC_E_TYPE;
	if (h->hdr_len < NC_HDR_LEN || h->hdr_len % 4 || h->hdr_len > len)
		return -NC_E_HDRLEN;
	if ((size_t)h->hdr_len + h->payload_len != len)
		return -NC_E_LEN;
	if (h->flags & ~NC_F_ALL)
		return -NC_E_FLAGS;
	if (nc_le16(b + 22))
		return -NC_E_FIELD;
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

static float le_float(const uint8_t *p)
{
	uint32_t u = nc_le32(p);
	float f;

	memcpy(&f, &u, sizeof(f));	/* a 4-byte bit cast, not payload */
	return f;
}

static int check_sampling(const struct nc_wire_sampling *s)
{
	if (s->max_tokens < 1)
		return -NC_E_FIELD;
	if (!isfinite(s->temperature) || s->temperature < 0.0f ||
	    s->temperature > 100.0f)
		return -NC_E_FIELD;
	if (!(s->top_p > 0.0f && s->top_p <= 1.0f))
		return -NC_E_FIELD;
	if (s->flags & ~NC_RQ_ALL)
		return -NC_E_FLAGS;
	return 0;
}

static int check_model(const uint8_t *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (m[i] < 0x21 || m[i] > 0x7e)
			return -NC_E_FIELD;
	return 0;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* The stop-strings section: n bytes of 1..NC_MAX_STOP_STR strings, each
 * 1..NC_MAX_STOP_STR_LEN bytes of UTF-8 and its NUL. */
static int parse_stop_strings(const uint8_t *p, uint32_t n,
			      struct nc_request_view *r)
{
	uint32_t off = 0;

	if (n == 0 || p[n - 1] != 0)
		return -NC_E_FIELD;
	while (off < n) {
		const uint8_t *z = memchr(p + off, 0, n - off);
		uint32_t sl = (uint32_t)(z - (p + off));	/* z found: p[n-1] is 0 */

		if (sl == 0 || sl > NC_MAX_STOP_STR_LEN ||
		    r->n_stop_str == NC_MAX_STOP_STR)
			return -NC_E_FIELD;
		if (!nc_utf8_valid(p + off, sl))
			return -NC_E_UTF8;
		r->stop_str[r->n_stop_str] = p + off;
		r->stop_str_len[r->n_stop_str++] = (uint16_t)sl;
		off += sl + 1;
	}
	return 0;
}

int nc_parse_request_body(const uint8_t *b, size_t len,
			  struct nc_request_view *r)
{
	uint64_t need;
	size_t off;
	int err;

	if (len > NC_MAX_BODY)
		return -NC_E_TOO_LONG;
	if (len < NC_REQ_FIXED_LEN)
		return -NC_E_SHORT;
	r->s.max_tokens = nc_le32(b);
	r->s.temperature = le_float(b + 4);
	r->s.top_p = le_float(b + 8);
	r->s.top_k = nc_le32(b + 12);
	r->s.seed = nc_le64(b + 16);
	r->s.flags = nc_le32(b + 24);
	r->model_len = nc_le16(b + 28);
	r->n_stop = nc_le16(b + 30);
	r->n_prompt = nc_le32(b + 32);
	r->text_len = nc_le32(b + 36);
	err = check_sampling(&r->s);
	if (err)
		return err;
	if (r->model_len > NC_MAX_MODEL_LEN || r->n_stop > NC_MAX_STOP)
		return -NC_E_FIELD;
	if (!r->n_prompt == !r->text_len)
		return -NC_E_FIELD;	/* exactly one prompt form */
	r->stop_len = 0;
	r->n_stop_str = 0;
	need = NC_REQ_FIXED_LEN + pad4(r->model_len) + 4ull * r->n_stop +
	       4ull * r->n_prompt + r->text_len;
	if (r->s.flags & NC_RQ_STOP_TEXT) {
		/* text padded to 4, then u32 stop_len and the strings */
		need = NC_REQ_FIXED_LEN + pad4(r->model_len) + 4ull * r->n_stop +
		       4ull * r->n_prompt + pad4(r->text_len) + 4;
		if (need > NC_MAX_BODY)
			return -NC_E_TOO_LONG;
		if (need > len)
			return -NC_E_SHORT;
		r->stop_len = nc_le32(b + need - 4);
		if (r->stop_len < 2 || r->stop_len > NC_MAX_STOP_SECT)
			return -NC_E_FIELD;
		need += r->stop_len;
	}
	if (need > NC_MAX_BODY)
		return -NC_E_TOO_LONG;
	if (need > len)
		return -NC_E_SHORT;
	if (need != len)
		return -NC_E_LEN;
	off = NC_REQ_FIXED_LEN;
	r->model = b + off;
	if (check_model(r->model, r->model_len) ||
	    !all_zero(b + off + r->model_len, pad4(r->model_len) - r->model_len))
		return -NC_E_FIELD;
	off += pad4(r->model_len);
	r->stop_ids = b + off;
	off += 4u * r->n_stop;
	r->prompt_ids = b + off;
	off += 4u * r->n_prompt;
	r->text = b + off;
	if (!nc_utf8_valid(r->text, r->text_len))
		return -NC_E_UTF8;
	if (r->s.flags & NC_RQ_STOP_TEXT) {
		off += r->text_len;
		if (!all_zero(b + off, pad4(r->text_len) - r->text_len))
			return -NC_E_FIELD;
		off += pad4(r->text_len) - r->text_len + 4;
		return parse_stop_strings(b + off, r->stop_len, r);
	}
	return 0;
}

static int parse_frag(const uint8_t *p, size_t n, struct nc_frag_view *f)
{
	uint32_t count, last;

	if (n < NC_FRAG_HDR_LEN)
		return -NC_E_SHORT;
	f->total_len = nc_le32(p);
	f->stride = nc_le16(p + 4);
	f->index = nc_le16(p + 6);
	f->count = nc_le16(p + 8);
	if (nc_le16(p + 10))
		return -NC_E_FIELD;
	if (f->total_len > NC_MAX_BODY)
		return -NC_E_TOO_LONG;
	if (f->stride < FRAG_MIN_STRIDE || f->stride > NC_FRAG_STRIDE ||
	    f->stride % 4 || f->total_len == 0)
		return -NC_E_FIELD;
	count = (f->total_len + f->stride - 1) / f->stride;
	if (count > NC_MAX_FRAGS)
		return -NC_E_TOO_LONG;
	if (f->count != count || f->index >= count)
		return -NC_E_FIELD;
	last = f->total_len - (count - 1) * f->stride;
	f->data_len = (uint16_t)(f->index + 1u == count ? last : f->stride);
	f->data = p + NC_FRAG_HDR_LEN;
	if (n - NC_FRAG_HDR_LEN != f->data_len)
		return n - NC_FRAG_HDR_LEN < f->data_len ? -NC_E_SHORT : -NC_E_LEN;
	return 0;
}

static int parse_token(const uint8_t *p, size_t n, struct nc_token_view *t)
{
	size_t need;

	if (n < NC_TOK_HDR_LEN)
		return -NC_E_SHORT;
	t->n_tokens = nc_le16(p);
	t->text_len = nc_le16(p + 2);
	t->first_index = nc_le32(p + 4);
	t->rx_ns = nc_le64(p + 16);
	if (nc_le64(p + 8))
		return -NC_E_FIELD;
	if (t->n_tokens < 1 || t->n_tokens > NC_MAX_TOK_PER_PKT)
		return -NC_E_FIELD;
	need = NC_TOK_HDR_LEN + (size_t)t->n_tokens * NC_TOK_ENTRY_LEN +
	       t->text_len;
	if (n != need)
		return n < need ? -NC_E_SHORT : -NC_E_LEN;
	t->entries = p + NC_TOK_HDR_LEN;
	t->text = t->entries + (size_t)t->n_tokens * NC_TOK_ENTRY_LEN;
	if (!nc_utf8_valid(t->text, t->text_len))
		return -NC_E_UTF8;
	return 0;
}

static int parse_final(const uint8_t *p, struct nc_final *f)
{
	f->reason = p[0];
	f->err_code = nc_le16(p + 2);
	f->prompt_tokens = nc_le32(p + 4);
	f->completion_tokens = nc_le32(p + 8);
	f->rx_ns = nc_le64(p + 16);
	f->tx_ns = nc_le64(p + 24);
	if (p[1] || nc_le32(p + 12))
		return -NC_E_FIELD;
	if (f->reason < NC_FIN_STOP || f->reason > NC_FIN_ERROR)
		return -NC_E_FIELD;
	if ((f->reason == NC_FIN_ERROR) != (f->err_code != 0) ||
	    f->err_code > NC_WE_MAX_)
		return -NC_E_FIELD;
	return 0;
}

static int parse_error(const uint8_t *p, size_t n, struct nc_error_view *e)
{
	if (n < ERR_FIXED_LEN)
		return -NC_E_SHORT;
	e->code = nc_le16(p);
	e->bad_type = p[2];
	e->max_version = p[3];
	e->detail = nc_le32(p + 4);
	e->msg_len = (uint16_t)(n - ERR_FIXED_LEN);
	e->msg = p + ERR_FIXED_LEN;
	if (e->code < 1 || e->code > NC_WE_MAX_ || !e->max_version)
		return -NC_E_FIELD;
	if (e->msg_len > NC_MAX_ERR_MSG)
		return -NC_E_LEN;
	if (!nc_utf8_valid(e->msg, e->msg_len))
		return -NC_E_UTF8;
	return 0;
}

/* Fixed-size payloads: exact length or an error saying which way it is off. */
static int want_len(size_t have, size_t want)
{
	if (have == want)
		return 0;
	return have < want ? -NC_E_SHORT : -NC_E_LEN;
}

static int parse_fixed(const uint8_t *p, size_t n, struct nc_pkt *o)
{
	static const uint8_t len_of[NC_T_MAX_ + 1] = {
		[NC_T_ACCEPTED] = ACC_LEN, [NC_T_FINAL] = FINAL_LEN,
		[NC_T_ACK] = ACK_LEN, [NC_T_CANCEL] = 0,
		[NC_T_PING] = PING_LEN, [NC_T_PONG] = PONG_LEN,
	};
	int err = want_len(n, len_of[o->h.type]);

	if (err)
		return err;
	switch (o->h.type) {
	case NC_T_ACCEPTED:
		o->u.acc.queue_pos = nc_le32(p);
		o->u.acc.prompt_tokens = nc_le32(p + 4);
		o->u.acc.window = nc_le16(p + 8);
		o->u.acc.rx_ns = nc_le64(p + 16);
		return nc_le16(p + 10) || nc_le32(p + 12) ? -NC_E_FIELD : 0;
	case NC_T_FINAL:
		return parse_final(p, &o->u.fin);
	case NC_T_ACK:
		o->u.ack.next = nc_le32(p);
		o->u.ack.sack = nc_le64(p + 8);
		return nc_le32(p + 4) ? -NC_E_FIELD : 0;
	case NC_T_PING:
		o->u.ping.client_ns = nc_le64(p);
		return 0;
	case NC_T_PONG:
		o->u.pong.client_ns = nc_le64(p);
		o->u.pong.server_ns = nc_le64(p + 8);
		o->u.pong.slots_total = nc_le16(p + 16);
		o->u.pong.slots_busy = nc_le16(p + 18);
		o->u.pong.queue_depth = nc_le32(p + 20);
		o->u.pong.queue_max = nc_le32(p + 24);
		o->u.pong.flags = nc_le32(p + 28);
		return 0;
	}
	return 0;	/* CANCEL: empty */
}

int nc_parse(const uint8_t *buf, size_t len, struct nc_pkt *o)
{
	const uint8_t *p;
	size_t n;
	int err;

	err = nc_parse_hdr(buf, len, &o->h);
	if (err)
		return err;
	p = buf + o->h.hdr_len;
	n = o->h.payload_len;
	o->payload = p;
	/* a request names itself with a non-zero id and carries seq 0 */
	if ((o->h.type == NC_T_REQUEST || o->h.type == NC_T_REQUEST_FRAG) &&
	    (o->h.rid == 0 || o->h.seq != 0))
		return -NC_E_FIELD;
	switch (o->h.type) {
	case NC_T_REQUEST:
		return nc_parse_request_body(p, n, &o->u.req);
	case NC_T_REQUEST_FRAG:
		return parse_frag(p, n, &o->u.frag);
	case NC_T_TOKEN:
		return parse_token(p, n, &o->u.tok);
	case NC_T_ERROR:
		return parse_error(p, n, &o->u.err);
	}
	return parse_fixed(p, n, o);
}

/* ---- building --------------------------------------------------------- */

/* Write the common header; returns the packet length or an error. */
static int put_hdr(uint8_t *b, size_t cap, uint8_t type, uint16_t flags,
		   uint64_t rid, uint32_t seq, size_t payload_len)
{
	size_t total = NC_HDR_LEN + payload_len;

	if (total > NC_MAX_PKT)
		return -NC_E_TOO_LONG;
	if (total > cap)
		return -NC_E_NOSPACE;
	if (flags & ~NC_F_ALL)
		return -NC_E_FLAGS;
	b[0] = NC_MAGIC0;
	b[1] = NC_MAGIC1;
	b[2] = NC_VERSION;
	b[3] = type;
	nc_put16(b + 4, flags);
	nc_put16(b + 6, NC_HDR_LEN);
	nc_put64(b + 8, rid);
	nc_put32(b + 16, seq);
	nc_put16(b + 20, (uint16_t)payload_len);
	nc_put16(b + 22, 0);
	return (int)total;
}

static void put_float(uint8_t *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	nc_put32(p, u);
}

/* Bytes of the stop-strings section (after stop_len), or a negative nc_err. */
static long stop_strings_len(const struct nc_request *rq)
{
	long n = 0;

	if (rq->n_stop_str > NC_MAX_STOP_STR || !rq->stop_str)
		return -NC_E_FIELD;
	for (unsigned i = 0; i < rq->n_stop_str; i++) {
		size_t sl = rq->stop_str[i] ? strlen(rq->stop_str[i]) : 0;

		if (sl == 0 || sl > NC_MAX_STOP_STR_LEN)
			return -NC_E_FIELD;
		n += (long)sl + 1;
	}
	return n;
}

long nc_request_body_len(const struct nc_request *rq)
{
	size_t mlen = rq->model ? strlen(rq->model) : 0;
	uint64_t n;

	if (mlen > NC_MAX_MODEL_LEN || rq->n_stop > NC_MAX_STOP)
		return -NC_E_FIELD;
	n = NC_REQ_FIXED_LEN + pad4(mlen) + 4ull * rq->n_stop +
	    4ull * rq->n_prompt + rq->text_len;
	if (rq->n_stop_str) {
		long sl = stop_strings_len(rq);

		if (sl < 0)
			return sl;
		n = NC_REQ_FIXED_LEN + pad4(mlen) + 4ull * rq->n_stop +
		    4ull * rq->n_prompt + pad4(rq->text_len) + 4 + (uint64_t)sl;
	} else if (rq->s.flags & NC_RQ_STOP_TEXT) {
		return -NC_E_FIELD;	/* the flag needs strings */
	}
	if (n > NC_MAX_BODY)
		return -NC_E_TOO_LONG;
	return (long)n;
}

static void put_ids(uint8_t *p, const uint32_t *ids, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		nc_put32(p + 4 * (size_t)i, ids[i]);
}

int nc_build_request_body(uint8_t *b, size_t cap, const struct nc_request *rq)
{
	long len = nc_request_body_len(rq);
	size_t mlen = rq->model ? strlen(rq->model) : 0, off;
	int err;

	if (len < 0)
		return (int)len;
	if ((size_t)len > cap)
		return -NC_E_NOSPACE;
	err = check_sampling(&rq->s);
	if (err)
		return err;
	if (!rq->n_prompt == !rq->text_len ||
	    check_model((const uint8_t *)(rq->model ? rq->model : ""), mlen))
		return -NC_E_FIELD;
	if (rq->text_len && !nc_utf8_valid((const uint8_t *)rq->text,
					   rq->text_len))
		return -NC_E_UTF8;
	for (unsigned i = 0; i < rq->n_stop_str; i++)
		if (!nc_utf8_valid((const uint8_t *)rq->stop_str[i],
				   strlen(rq->stop_str[i])))
			return -NC_E_UTF8;
	nc_put32(b, rq->s.max_tokens);
	put_float(b + 4, rq->s.temperature);
	put_float(b + 8, rq->s.top_p);
	nc_put32(b + 12, rq->s.top_k);
	nc_put64(b + 16, rq->s.seed);
	nc_put32(b + 24, rq->n_stop_str ? rq->s.flags | NC_RQ_STOP_TEXT : rq->s.flags);
	nc_put16(b + 28, (uint16_t)mlen);
	nc_put16(b + 30, rq->n_stop);
	nc_put32(b + 32, rq->n_prompt);
	nc_put32(b + 36, rq->text_len);
	off = NC_REQ_FIXED_LEN;
	memset(b + off, 0, pad4(mlen));
	copy_counted(b + off, rq->model, mlen);
	off += pad4(mlen);
	put_ids(b + off, rq->stop, rq->n_stop);
	off += 4u * rq->n_stop;
	put_ids(b + off, rq->prompt, rq->n_prompt);
	off += 4u * rq->n_prompt;
	copy_counted(b + off, rq->text, rq->text_len);
	if (rq->n_stop_str) {
		off += rq->text_len;
		memset(b + off, 0, pad4(rq->text_len) - rq->text_len);
		off += pad4(rq->text_len) - rq->text_len;
		nc_put32(b + off, (uint32_t)((size_t)len - off - 4));
		off += 4;
		for (unsigned i = 0; i < rq->n_stop_str; i++) {
			size_t sl = strlen(rq->stop_str[i]) + 1;	/* with its NUL */

			copy_counted(b + off, rq->stop_str[i], sl);
			off += sl;
		}
	}
	return (int)len;
}

int nc_build_request(uint8_t *b, size_t cap, uint64_t rid, uint16_t flags,
		     const struct nc_request *rq)
{
	long len = nc_request_body_len(rq);
	int n, err;

	if (len < 0)
		return (int)len;
	n = put_hdr(b, cap, NC_T_REQUEST, flags, rid, 0, (size_t)len);
	if (n < 0)
		return n;
	err = nc_build_request_body(b + NC_HDR_LEN, cap - NC_HDR_LEN, rq);
	return err < 0 ? err : n;
}

int nc_frag_count(uint32_t total_len)
{
	uint32_t c;

	if (!total_len)
		return -NC_E_FIELD;
	if (total_len > NC_MAX_BODY)
		return -NC_E_TOO_LONG;
	c = (total_len + NC_FRAG_STRIDE - 1) / NC_FRAG_STRIDE;
	return c > NC_MAX_FRAGS ? -NC_E_TOO_LONG : (int)c;
}

int nc_build_frag(uint8_t *b, size_t cap, uint64_t rid, uint16_t flags,
		  const uint8_t *body, uint32_t total, uint16_t index)
{
	int count = nc_frag_count(total), n;
	size_t off, dlen;
	uint8_t *p;

	if (count < 0)
		return count;
	if (index >= count)
		return -NC_E_INVAL;
	off = (size_t)index * NC_FRAG_STRIDE;
	dlen = index + 1 == count ? total - off : NC_FRAG_STRIDE;
	n = put_hdr(b, cap, NC_T_REQUEST_FRAG, flags, rid, 0,
		    NC_FRAG_HDR_LEN + dlen);
	if (n < 0)
		return n;
	p = b + NC_HDR_LEN;
	nc_put32(p, total);
	nc_put16(p + 4, NC_FRAG_STRIDE);
	nc_put16(p + 6, index);
	nc_put16(p + 8, (uint16_t)count);
	nc_put16(p + 10, 0);
	copy_counted(p + NC_FRAG_HDR_LEN, body + off, dlen);
	return n;
}

int nc_build_accepted(uint8_t *b, size_t cap, uint64_t rid,
		      const struct nc_accepted *a)
{
	int n = put_hdr(b, cap, NC_T_ACCEPTED, 0, rid, 0, ACC_LEN);
	uint8_t *p = b + NC_HDR_LEN;

	if (n < 0)
		return n;
	nc_put32(p, a->queue_pos);
	nc_put32(p + 4, a->prompt_tokens);
	nc_put16(p + 8, a->window);
	nc_put16(p + 10, 0);
	nc_put32(p + 12, 0);
	nc_put64(p + 16, a->rx_ns);
	return n;
}

int nc_build_token(uint8_t *b, size_t cap, uint64_t rid, uint32_t seq,
		   uint16_t flags, uint32_t first_index, uint64_t rx_ns,
		   const struct nc_token_out *toks, unsigned cnt,
		   const uint8_t *text, uint16_t text_len)
{
	size_t plen = NC_TOK_HDR_LEN + (size_t)cnt * NC_TOK_ENTRY_LEN + text_len;
	uint8_t *p = b + NC_HDR_LEN, *e;
	unsigned i;
	int n;

	if (cnt < 1 || cnt > NC_MAX_TOK_PER_PKT)
		return -NC_E_FIELD;
	if (text_len && !nc_utf8_valid(text, text_len))
		return -NC_E_UTF8;
	n = put_hdr(b, cap, NC_T_TOKEN, flags, rid, seq, plen);
	if (n < 0)
		return n;
	nc_put16(p, (uint16_t)cnt);
	nc_put16(p + 2, text_len);
	nc_put32(p + 4, first_index);
	nc_put64(p + 8, 0);
	nc_put64(p + 16, rx_ns);
	for (i = 0; i < cnt; i++) {
		e = p + NC_TOK_HDR_LEN + (size_t)i * NC_TOK_ENTRY_LEN;
		nc_put32(e, toks[i].id);
		nc_put32(e + 4, toks[i].card_ns);
		nc_put64(e + 8, toks[i].tx_ns);
	}
	copy_counted(p + NC_TOK_HDR_LEN + (size_t)cnt * NC_TOK_ENTRY_LEN,
		     text, text_len);
	return n;
}

int nc_build_final(uint8_t *b, size_t cap, uint64_t rid, uint32_t seq,
		   uint16_t flags, const struct nc_final *f)
{
	uint8_t *p = b + NC_HDR_LEN;
	int n;

	if (f->reason < NC_FIN_STOP || f->reason > NC_FIN_ERROR ||
	    (f->reason == NC_FIN_ERROR) != (f->err_code != 0) ||
	    f->err_code > NC_WE_MAX_)
		return -NC_E_FIELD;
	n = put_hdr(b, cap, NC_T_FINAL, flags, rid, seq, FINAL_LEN);
	if (n < 0)
		return n;
	p[0] = f->reason;
	p[1] = 0;
	nc_put16(p + 2, f->err_code);
	nc_put32(p + 4, f->prompt_tokens);
	nc_put32(p + 8, f->completion_tokens);
	nc_put32(p + 12, 0);
	nc_put64(p + 16, f->rx_ns);
	nc_put64(p + 24, f->tx_ns);
	return n;
}

int nc_build_ack(uint8_t *b, size_t cap, uint64_t rid, const struct nc_ack *a)
{
	int n = put_hdr(b, cap, NC_T_ACK, 0, rid, 0, ACK_LEN);
	uint8_t *p = b + NC_HDR_LEN;

	if (n < 0)
		return n;
	nc_put32(p, a->next);
	nc_put32(p + 4, 0);
	nc_put64(p + 8, a->sack);
	return n;
}

int nc_build_cancel(uint8_t *b, size_t cap, uint64_t rid, uint16_t flags)
{
	return put_hdr(b, cap, NC_T_CANCEL, flags, rid, 0, 0);
}

int nc_build_ping(uint8_t *b, size_t cap, uint32_t seq, uint64_t client_ns)
{
	int n = put_hdr(b, cap, NC_T_PING, 0, 0, seq, PING_LEN);

	if (n >= 0)
		nc_put64(b + NC_HDR_LEN, client_ns);
	return n;
}

int nc_build_pong(uint8_t *b, size_t cap, uint32_t seq, const struct nc_pong *q)
{
	int n = put_hdr(b, cap, NC_T_PONG, 0, 0, seq, PONG_LEN);
	uint8_t *p = b + NC_HDR_LEN;

	if (n < 0)
		return n;
	nc_put64(p, q->client_ns);
	nc_put64(p + 8, q->server_ns);
	nc_put16(p + 16, q->slots_total);
	nc_put16(p + 18, q->slots_busy);
	nc_put32(p + 20, q->queue_depth);
	nc_put32(p + 24, q->queue_max);
	nc_put32(p + 28, q->flags);
	return n;
}

int nc_build_error(uint8_t *b, size_t cap, uint64_t rid, uint32_t seq,
		   const struct nc_error_view *e)
{
	uint8_t *p = b + NC_HDR_LEN;
	int n;

	if (e->code < 1 || e->code > NC_WE_MAX_ || !e->max_version)
		return -NC_E_FIELD;
	if (e->msg_len > NC_MAX_ERR_MSG)
		return -NC_E_TOO_LONG;
	if (!nc_utf8_valid(e->msg, e->msg_len))
		return -NC_E_UTF8;
	n = put_hdr(b, cap, NC_T_ERROR, 0, rid, seq, ERR_FIXED_LEN + e->msg_len);
	if (n < 0)
		return n;
	nc_put16(p, e->code);
	p[2] = e->bad_type;
	p[3] = e->max_version;
	nc_put32(p + 4, e->detail);
	copy_counted(p + ERR_FIXED_LEN, e->msg, e->msg_len);
	return n;
}
