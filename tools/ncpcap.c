/* ncpcap.c — craft request pcaps for `nextcard serve` replay tests and
 * decode what it sent, one line per frame.
 *
 *   ncpcap gen basic   OUT.pcap --ids 1,2,3 --max-tokens N
 *   ncpcap gen hostile OUT.pcap --ids 1,2,3 --max-tokens N
 *   ncpcap dump IN.pcap
 *
 * Addresses: client 10.77.0.1 (02:00:00:00:00:01), appliance 10.77.0.2 at
 * net_pcap's fixed MAC 02:70:63:61:70:00, UDP port 7437.  dump checks every
 * IPv4/UDP/ICMP checksum and parses every protocol packet (nc_parse).
 * Plain C, no libpcap: the classic pcap format is a 24-byte header and a
 * 16-byte header per frame.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/proto.h"

#define MAXF	2048
#define SPORT	7437

static const uint8_t srv_mac[6] = { 0x02, 0x70, 0x63, 0x61, 0x70, 0x00 };
static const uint8_t cli_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static uint32_t srv_ip, cli_ip;	/* network order */
static FILE *out;
static uint32_t frames, ts_us;

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void pcap_header(void)
{
	uint32_t h[6] = { 0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1 };

	fwrite(h, sizeof(h), 1, out);
}

static void frame(const uint8_t *f, size_t n)
{
	uint32_t h[4] = { 1, ts_us, (uint32_t)n, (uint32_t)n };

	ts_us += 10;
	fwrite(h, sizeof(h), 1, out);
	fwrite(f, 1, n, out);
	frames++;
}

/* How to break a UDP frame on purpose. */
enum { OK = 0, BAD_IPSUM = 1, BAD_UDPSUM = 2, ZERO_UDPSUM = 4, IP_MF = 8,
       TRUNC_IP = 16 };

static void udp_frame(uint32_t src, uint16_t sport, const uint8_t *pl, size_t n,
		      int how)
{
	uint8_t f[MAXF + 64];
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint32_t ps;
	uint16_t s;

	memcpy(f, srv_mac, 6);
	memcpy(f + 6, cli_mac, 6);
	put_be16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put_be16(ip + 2, (uint16_t)(28 + n + (how & TRUNC_IP ? 100 : 0)));
	put_be16(ip + 6, how & IP_MF ? 0x2000 : 0x4000);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &srv_ip, 4);
	s = ~csum(ip, 20, 0);
	if (how & BAD_IPSUM)
		s ^= 0x5a5a;
	put_be16(ip + 10, s);
	put_be16(udp, sport);
	put_be16(udp + 2, SPORT);
	put_be16(udp + 4, (uint16_t)(8 + n));
	put_be16(udp + 6, 0);
	memcpy(udp + 8, pl, n);
	ps = csum(ip + 12, 8, 0) + 17 + (uint32_t)(8 + n);
	s = ~csum(udp, 8 + n, ps);
	if (s == 0)
		s = 0xffff;
	if (how & BAD_UDPSUM)
		s ^= 0x0101;
	if (how & ZERO_UDPSUM)
		s = 0;
	put_be16(udp + 6, s);
	frame(f, 42 + n);
}

static void arp_request(void)
{
	uint8_t f[42];

	memset(f, 0xff, 6);
	memcpy(f + 6, cli_mac, 6);
	put_be16(f + 12, 0x0806);
	put_be16(f + 14, 1);
	put_be16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put_be16(f + 20, 1);
	memcpy(f + 22, cli_mac, 6);
	memcpy(f + 28, &cli_ip, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, &srv_ip, 4);
	frame(f, sizeof(f));
}

static void icmp_echo(void)
{
	uint8_t f[14 + 20 + 16];
	uint8_t *ip = f + 14, *ic = ip + 20;

	memcpy(f, srv_mac, 6);
	memcpy(f + 6, cli_mac, 6);
	put_be16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put_be16(ip + 2, 36);
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, &cli_ip, 4);
	memcpy(ip + 16, &srv_ip, 4);
	put_be16(ip + 10, ~csum(ip, 20, 0));
	memset(ic, 0, 16);
	ic[0] = 8;
	put_be16(ic + 4, 0x1234);
	put_be16(ic + 6, 1);
	memcpy(ic + 8, "nextcard", 8);
	put_be16(ic + 2, ~csum(ic, 16, 0));
	frame(f, sizeof(f));
}

static struct nc_request base_rq(const uint32_t *ids, uint32_t n, uint32_t max_tokens)
{
	struct nc_request rq = { .s = { .max_tokens = max_tokens, .top_p = 1.0f },
				 .prompt = ids, .n_prompt = n };
	return rq;
}

static void request(uint32_t src, uint16_t sport, uint64_t rid,
		    const struct nc_request *rq, int how)
{
	uint8_t b[NC_MAX_PKT];
	int n = nc_build_request(b, sizeof(b), rid, 0, rq);

	if (n < 0) {
		fprintf(stderr, "ncpcap: request: %s\n", nc_strerror(n));
		exit(1);
	}
	udp_frame(src, sport, b, (size_t)n, how);
}

/* All fragments of rq at stride (or only the first `only` of them). */
static void fragments(uint32_t src, uint16_t sport, uint64_t rid,
		      const struct nc_request *rq, int only)
{
	static uint8_t body[NC_MAX_BODY];
	uint8_t b[NC_MAX_PKT];
	int len = nc_build_request_body(body, sizeof(body), rq), count;

	if (len < 0) {
		fprintf(stderr, "ncpcap: body: %s\n", nc_strerror(len));
		exit(1);
	}
	count = nc_frag_count((uint32_t)len);
	for (int i = 0; i < count && (!only || i < only); i++) {
		int n = nc_build_frag(b, sizeof(b), rid, 0, body, (uint32_t)len, (uint16_t)i);

		if (n < 0) {
			fprintf(stderr, "ncpcap: frag: %s\n", nc_strerror(n));
			exit(1);
		}
		udp_frame(src, sport, b, (size_t)n, OK);
	}
}

/* A small-stride fragment by hand (nc_build_frag always uses 1436). */
static void frag_small(uint32_t src, uint16_t sport, uint64_t rid, const uint8_t *body,
		       uint32_t total, uint16_t stride, uint16_t index)
{
	uint8_t b[NC_MAX_PKT];
	uint16_t count = (uint16_t)((total + stride - 1) / stride);
	uint32_t off = (uint32_t)index * stride;
	uint32_t len = index + 1 == count ? total - off : stride;

	memset(b, 0, sizeof(b));
	b[0] = 'N';
	b[1] = 'C';
	b[2] = NC_VERSION;
	b[3] = NC_T_REQUEST_FRAG;
	nc_put16(b + 6, NC_HDR_LEN);
	nc_put64(b + 8, rid);
	nc_put16(b + 20, (uint16_t)(NC_FRAG_HDR_LEN + len));
	nc_put32(b + 24, total);
	nc_put16(b + 28, stride);
	nc_put16(b + 30, index);
	nc_put16(b + 32, count);
	memcpy(b + 36, body + off, len);
	udp_frame(src, sport, b, 36 + len, OK);
}

static void raw(uint32_t src, uint16_t sport, const uint8_t *p, size_t n, int how)
{
	udp_frame(src, sport, p, n, how);
}

static void gen_basic(const uint32_t *ids, uint32_t n, uint32_t max_tokens)
{
	struct nc_request rq = base_rq(ids, n, max_tokens);
	uint8_t b[NC_MAX_PKT], body[4096];
	int len, blen;

	arp_request();
	icmp_echo();
	request(cli_ip, 40001, 0x1111, &rq, OK);
	len = nc_build_ping(b, sizeof(b), 77, 12345);
	raw(cli_ip, 40002, b, (size_t)len, OK);
	/* malformed: reserved header u16 not zero */
	len = nc_build_request(b, sizeof(b), 0x2222, 0, &rq);
	b[22] = 1;
	raw(cli_ip, 40003, b, (size_t)len, OK);
	/* unsupported version */
	len = nc_build_request(b, sizeof(b), 0x3333, 0, &rq);
	b[2] = 2;
	raw(cli_ip, 40004, b, (size_t)len, OK);
	/* the same prompt in 64-byte fragments, last one first */
	blen = nc_build_request_body(body, sizeof(body), &rq);
	for (int i = (blen + 63) / 64 - 1; i >= 0; i--)
		frag_small(cli_ip, 40005, 0x4444, body, (uint32_t)blen, 64, (uint16_t)i);
	/* a text prompt (tiny-a has no tokenizer) */
	{
		struct nc_request t = { .s = { .max_tokens = 4, .top_p = 1.0f },
					.text = "hello", .text_len = 5 };
		request(cli_ip, 40006, 0x5555, &t, OK);
	}
	/* UDP checksum 0 is legal IPv4: served */
	request(cli_ip, 40007, 0x6666, &rq, ZERO_UDPSUM);
	/* a duplicate of the first request: ACCEPTED again, no second stream */
	request(cli_ip, 40001, 0x1111, &rq, OK);
}

/* Stop strings (a model with a tokenizer): text prompt `text`, greedy,
 *   0x7771 with TEXT_OUT and the stop strings,
 *   0x7772 the same without TEXT_OUT (ids only, up to the matching token),
 *   0x7773 TEXT_OUT, no stop string (the whole continuation),
 *   0x7774 TEXT_OUT and stop strings never produced (held text released),
 *   0x7775 a malformed stop section (an empty string): ERROR. */
static void gen_stop(const char *text, const char **stop, unsigned n_stop,
		     uint32_t max_tokens)
{
	/* " G", " Greg", ... are held back until "ck" rules the first out;
	 * the last token "A" is held until the end flushes it */
	static const char *never[] = { " Gregory pecan", "A\tnever" };
	struct nc_request rq = { .s = { .max_tokens = max_tokens, .top_p = 1.0f,
					.flags = NC_RQ_TEXT_OUT },
				 .text = text, .text_len = (uint32_t)strlen(text),
				 .stop_str = stop, .n_stop_str = (uint8_t)n_stop };
	uint8_t b[NC_MAX_PKT];
	int len;

	arp_request();
	request(cli_ip, 40011, 0x7771, &rq, OK);
	rq.s.flags = 0;
	request(cli_ip, 40012, 0x7772, &rq, OK);
	rq.s.flags = NC_RQ_TEXT_OUT;
	rq.n_stop_str = 0;
	request(cli_ip, 40013, 0x7773, &rq, OK);
	rq.stop_str = never;
	rq.n_stop_str = 2;
	request(cli_ip, 40014, 0x7774, &rq, OK);
	/* the first byte of the first string zeroed: an empty string */
	len = nc_build_request(b, sizeof(b), 0x7775, 0, &rq);
	b[len - (int)(strlen(never[0]) + strlen(never[1]) + 2)] = 0;
	raw(cli_ip, 40015, b, (size_t)len, OK);
}

static void gen_hostile(const uint32_t *ids, uint32_t n, uint32_t max_tokens)
{
	struct nc_request rq = base_rq(ids, n, max_tokens);
	uint8_t b[MAXF], big[NC_MAX_BODY / 2];
	uint32_t big_ids[2000];
	int len;

	/* three well-formed requests first */
	for (int i = 0; i < 3; i++)
		request(cli_ip, (uint16_t)(41001 + i), 0xA001 + (uint64_t)i, &rq, OK);
	/* truncated: magic only; header cut; IP length beyond the frame */
	memcpy(b, "NC\x01\x01", 4);
	raw(cli_ip, 42001, b, 4, OK);
	len = nc_build_request(b, sizeof(b), 0xB001, 0, &rq);
	raw(cli_ip, 42002, b, 20, OK);
	raw(cli_ip, 42003, b, (size_t)len - 4, OK);	/* payload_len disagrees */
	raw(cli_ip, 42004, b, (size_t)len, TRUNC_IP);
	/* oversized datagram (1600 bytes) */
	memset(b, 0, sizeof(b));
	len = nc_build_request(b, sizeof(b), 0xB002, 0, &rq);
	raw(cli_ip, 42005, b, 1600, OK);
	/* bad checksums, IP fragment */
	len = nc_build_request(b, sizeof(b), 0xB003, 0, &rq);
	raw(cli_ip, 42006, b, (size_t)len, BAD_IPSUM);
	raw(cli_ip, 42007, b, (size_t)len, BAD_UDPSUM);
	raw(cli_ip, 42008, b, (size_t)len, IP_MF);
	/* wrong versions, unknown type, garbage */
	for (int v = 0; v < 4; v++) {
		len = nc_build_request(b, sizeof(b), 0xB010 + (uint64_t)v, 0, &rq);
		b[2] = (uint8_t)(v == 1 ? 9 : v + 2);
		raw(cli_ip, (uint16_t)(42010 + v), b, (size_t)len, OK);
	}
	len = nc_build_request(b, sizeof(b), 0xB020, 0, &rq);
	b[3] = 200;
	raw(cli_ip, 42020, b, (size_t)len, OK);
	/* a request claiming 70,000 prompt ids: a body past the limit */
	len = nc_build_request(b, sizeof(b), 0xB021, 0, &rq);
	b[NC_HDR_LEN + 32] = 70000 & 0xff;
	b[NC_HDR_LEN + 33] = 70000 >> 8 & 0xff;
	b[NC_HDR_LEN + 34] = 70000 >> 16 & 0xff;
	b[NC_HDR_LEN + 35] = 0;
	raw(cli_ip, 42021, b, (size_t)len, OK);
	srand(7);
	for (int i = 0; i < 200; i++) {
		size_t gl = (size_t)(rand() % 1400) + 1;

		for (size_t k = 0; k < gl; k++)
			b[k] = (uint8_t)rand();
		if (i % 2) {	/* half of them look like ours */
			b[0] = 'N';
			b[1] = 'C';
			b[2] = 1;
		}
		raw(cli_ip, (uint16_t)(43000 + i), b, gl, OK);
	}
	/* a server-type packet (must never be answered) */
	len = nc_build_ping(b, sizeof(b), 1, 1);
	b[3] = NC_T_TOKEN;
	raw(cli_ip, 42030, b, (size_t)len, OK);
	/* ACKs and CANCELs for requests never made */
	for (int i = 0; i < 50; i++) {
		struct nc_ack a = { .next = 3, .sack = 5 };

		len = nc_build_ack(b, sizeof(b), 0xC000 + (uint64_t)i, &a);
		raw(ip4("10.77.0.6"), 44000, b, (size_t)len, OK);
		len = nc_build_cancel(b, sizeof(b), 0xC100 + (uint64_t)i, 0);
		raw(ip4("10.77.0.6"), 44001, b, (size_t)len, OK);
	}
	/* reassembly that never completes: first fragments of long bodies */
	for (uint32_t i = 0; i < 2000; i++)
		big_ids[i] = ids[i % n];
	{
		struct nc_request l = base_rq(big_ids, 2000, 4);

		for (int i = 0; i < 6; i++)	/* per-address limit is 4 */
			fragments(cli_ip, (uint16_t)(45000 + i), 0xD000 + (uint64_t)i, &l, 2);
		/* conflicting fragments of one key */
		fragments(ip4("10.77.0.5"), 45100, 0xD100, &l, 1);
		len = nc_build_request_body(big, sizeof(big), &l);
		big[100] ^= 0xff;
		len = nc_build_frag(b, sizeof(b), 0xD100, 0, big, (uint32_t)len, 0);
		raw(ip4("10.77.0.5"), 45100, b, (size_t)len, OK);
		/* fragment flood from 1100 addresses: pool (1024) then BUSY */
		for (uint32_t i = 0; i < 1100; i++) {
			char a[32];

			snprintf(a, sizeof(a), "10.78.%u.%u", i / 250, i % 250 + 1);
			fragments(ip4(a), 46000, 0xE000 + (uint64_t)i, &l, 1);
		}
	}
	/* 1000 clients at once: one address, 1000 ports and request ids */
	{
		struct nc_request q = base_rq(ids, n, 2);

		for (int i = 0; i < 1000; i++)
			request(ip4("10.77.0.9"), (uint16_t)(20000 + i), 0xF0000 + (uint64_t)i,
				&q, OK);
	}
}

/* Decoding. */
static void dump_nc(const uint8_t *p, size_t n, uint16_t dport)
{
	struct nc_pkt v;
	int rc = nc_parse(p, n, &v);

	if (rc < 0) {
		printf("nc BAD %s len=%zu\n", nc_strerror(rc), n);
		return;
	}
	printf("nc %s rid=0x%llx seq=%u dport=%u retrans=%d", nc_type_name(v.h.type),
	       (unsigned long long)v.h.rid, v.h.seq, dport,
	       (v.h.flags & NC_F_RETRANS) != 0);
	switch (v.h.type) {
	case NC_T_ACCEPTED:
		printf(" queue_pos=%u prompt_tokens=%u window=%u", v.u.acc.queue_pos,
		       v.u.acc.prompt_tokens, v.u.acc.window);
		break;
	case NC_T_TOKEN:
		printf(" first=%u n=%u ids=", v.u.tok.first_index, v.u.tok.n_tokens);
		for (unsigned i = 0; i < v.u.tok.n_tokens; i++)
			printf("%s%u", i ? "," : "", nc_wire_tok_id(&v.u.tok, i));
		printf(" card_ns=%u tx_after_rx_ns=%llu text_len=%u", nc_tok_card_ns(&v.u.tok, 0),
		       (unsigned long long)(nc_tok_tx_ns(&v.u.tok, 0) - v.u.tok.rx_ns),
		       v.u.tok.text_len);
		if (v.u.tok.text_len) {	/* C escapes: one line per packet */
			printf(" text=\"");
			for (unsigned i = 0; i < v.u.tok.text_len; i++) {
				uint8_t c = v.u.tok.text[i];

				if (c == '\\' || c == '"')
					printf("\\%c", c);
				else if (c == '\n')
					printf("\\n");
				else if (c == '\t')
					printf("\\t");
				else if (c < 0x20 || c == 0x7f)
					printf("\\x%02x", c);
				else
					putchar(c);
			}
			putchar('"');
		}
		break;
	case NC_T_FINAL:
		printf(" reason=%s err=%u prompt_tokens=%u completion_tokens=%u",
		       nc_finish_name(v.u.fin.reason), v.u.fin.err_code,
		       v.u.fin.prompt_tokens, v.u.fin.completion_tokens);
		break;
	case NC_T_PONG:
		printf(" client_ns=%llu slots_total=%u slots_busy=%u queue_depth=%u queue_max=%u",
		       (unsigned long long)v.u.pong.client_ns, v.u.pong.slots_total,
		       v.u.pong.slots_busy, v.u.pong.queue_depth, v.u.pong.queue_max);
		break;
	case NC_T_ERROR:
		printf(" code=%s bad_type=%u max_version=%u detail=%u msg=\"%.*s\"",
		       nc_wire_err_name(v.u.err.code), v.u.err.bad_type, v.u.err.max_version,
		       v.u.err.detail, (int)v.u.err.msg_len, (const char *)v.u.err.msg);
		break;
	}
	printf("\n");
}

static void dump_frame(const uint8_t *f, size_t n)
{
	const uint8_t *ip = f + 14, *l4;
	uint16_t type, tot, ulen;
	char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
	int ipok, l4ok;
	uint32_t ps;

	if (n < 14) {
		printf("short len=%zu\n", n);
		return;
	}
	type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == 0x0806 && n >= 42) {
		inet_ntop(AF_INET, f + 28, s, sizeof(s));
		inet_ntop(AF_INET, f + 38, d, sizeof(d));
		printf("arp op=%u sha=%02x:%02x:%02x:%02x:%02x:%02x sip=%s tip=%s"
		       " tha=%02x:%02x:%02x:%02x:%02x:%02x\n",
		       f[20] << 8 | f[21], f[22], f[23], f[24], f[25], f[26], f[27], s, d,
		       f[32], f[33], f[34], f[35], f[36], f[37]);
		return;
	}
	if (type != 0x0800 || n < 34) {
		printf("ether type=0x%04x len=%zu\n", type, n);
		return;
	}
	tot = (uint16_t)(ip[2] << 8 | ip[3]);
	ipok = csum(ip, 20, 0) == 0xffff && 14u + tot <= n;
	inet_ntop(AF_INET, ip + 12, s, sizeof(s));
	inet_ntop(AF_INET, ip + 16, d, sizeof(d));
	l4 = ip + (ip[0] & 15) * 4;
	if (ip[9] == 1) {
		l4ok = csum(l4, tot - (size_t)(l4 - ip), 0) == 0xffff;
		printf("icmp type=%u id=0x%04x seq=%u src=%s dst=%s ipsum=%s icmpsum=%s data=%.8s\n",
		       l4[0], l4[4] << 8 | l4[5], l4[6] << 8 | l4[7], s, d, ipok ? "ok" : "BAD",
		       l4ok ? "ok" : "BAD", (const char *)l4 + 8);
		return;
	}
	if (ip[9] != 17) {
		printf("ip proto=%u\n", ip[9]);
		return;
	}
	ulen = (uint16_t)(l4[4] << 8 | l4[5]);
	ps = csum(ip + 12, 8, 0) + 17 + ulen;
	l4ok = csum(l4, ulen, ps) == 0xffff && (l4[6] | l4[7]);
	printf("udp src=%s:%u dst=%s:%u ipsum=%s udpsum=%s ", s, l4[0] << 8 | l4[1], d,
	       l4[2] << 8 | l4[3], ipok ? "ok" : "BAD", l4ok ? "ok" : "BAD");
	dump_nc(l4 + 8, ulen - 8u, (uint16_t)(l4[2] << 8 | l4[3]));
}

static int dump(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint32_t gh[6], rh[4];
	static uint8_t buf[65536];

	if (!f || fread(gh, sizeof(gh), 1, f) != 1 || (gh[0] != 0xa1b2c3d4 && gh[0] != 0xa1b23c4d)) {
		fprintf(stderr, "ncpcap: %s: not a pcap file\n", path);
		return 1;
	}
	while (fread(rh, sizeof(rh), 1, f) == 1) {
		if (rh[2] > sizeof(buf) || fread(buf, 1, rh[2], f) != rh[2])
			break;
		dump_frame(buf, rh[2]);
	}
	fclose(f);
	return 0;
}

static int parse_ids(const char *s, uint32_t *ids, uint32_t *n)
{
	char *end;

	*n = 0;
	while (*s && *n < 1024) {
		errno = 0;
		ids[(*n)++] = (uint32_t)strtoul(s, &end, 10);
		if (errno || end == s)
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return *n ? 0 : -1;
}

int main(int argc, char **argv)
{
	uint32_t ids[1024], n = 0, max_tokens = 16;
	const char *text = NULL, *stop[NC_MAX_STOP_STR];
	unsigned n_stop = 0;

	srv_ip = ip4("10.77.0.2");
	cli_ip = ip4("10.77.0.1");
	if (argc == 3 && !strcmp(argv[1], "dump"))
		return dump(argv[2]);
	if (argc < 4 || strcmp(argv[1], "gen")) {
		fprintf(stderr, "usage: ncpcap gen basic|hostile OUT.pcap --ids 1,2 [--max-tokens N]"
			" | ncpcap gen stop OUT.pcap --text T --stop S... [--max-tokens N]"
			" | ncpcap dump IN.pcap\n");
		return 2;
	}
	for (int i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--ids") && !parse_ids(argv[i + 1], ids, &n))
			continue;
		if (!strcmp(argv[i], "--text")) {
			text = argv[i + 1];
			continue;
		}
		if (!strcmp(argv[i], "--stop") && n_stop < NC_MAX_STOP_STR) {
			stop[n_stop++] = argv[i + 1];
			continue;
		}
		if (!strcmp(argv[i], "--max-tokens")) {
			max_tokens = (uint32_t)strtoul(argv[i + 1], NULL, 10);
			continue;
		}
		fprintf(stderr, "ncpcap: bad option %s\n", argv[i]);
		return 2;
	}
	if (!strcmp(argv[2], "stop") ? !text || !n_stop : !n) {
		fprintf(stderr, "ncpcap: --ids (stop: --text and --stop) required\n");
		return 2;
	}
	out = fopen(argv[3], "wb");
	if (!out) {
		fprintf(stderr, "ncpcap: %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	pcap_header();
	if (!strcmp(argv[2], "basic"))
		gen_basic(ids, n, max_tokens);
	else if (!strcmp(argv[2], "hostile"))
		gen_hostile(ids, n, max_tokens);
	else if (!strcmp(argv[2], "stop"))
		gen_stop(text, stop, n_stop, max_tokens);
	else {
		fprintf(stderr, "ncpcap: unknown scenario %s\n", argv[2]);
		return 2;
	}
	fclose(out);
	fprintf(stderr, "ncpcap: %u frames to %s\n", frames, argv[3]);
	return 0;
}
