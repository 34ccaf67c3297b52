/* proto.h — nextcard wire protocol v1 (docs/protocol.md): parse and build.
 *
 * Pure C: no sockets, no DPDK. Parsing works in place: every pointer in a
 * parsed view points into the caller's packet buffer, and multi-byte values
 * in those areas (token ids, timestamps) are read with the nc_le*() helpers
 * because a UDP payload inside an mbuf is not 4-byte aligned. Builders write
 * a whole packet into a caller buffer and return its length.
 *
 * All wire integers are little-endian.
 */
#ifndef HOST_NET_PROTO_H
#define HOST_NET_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define NC_MAGIC0		'N'
#define NC_MAGIC1		'C'
#define NC_VERSION		1
#define NC_DEFAULT_PORT		7437	/* UDP port of the appliance */
#define NC_MAX_PKT		1472	/* UDP payload bound: 1500 MTU - IPv4 - UDP */
#define NC_HDR_LEN		24
#define NC_FRAG_HDR_LEN		12
#define NC_REQ_FIXED_LEN	40
#define NC_TOK_HDR_LEN		24
#define NC_TOK_ENTRY_LEN	16
#define NC_MAX_TOK_PER_PKT	64
#define NC_MAX_MODEL_LEN	64
#define NC_MAX_STOP		16
#define NC_MAX_STOP_STR		4	/* stop strings per request (as OpenAI) */
#define NC_MAX_STOP_STR_LEN	256	/* bytes per stop string, NUL excluded */
#define NC_MAX_STOP_SECT	(NC_MAX_STOP_STR * (NC_MAX_STOP_STR_LEN + 1))
#define NC_MAX_BODY		(256u * 1024u)	/* reassembled request body */
#define NC_MAX_FRAGS		256
#define NC_FRAG_STRIDE		1436	/* NC_MAX_PKT - headers, multiple of 4 */
#define NC_MAX_ERR_MSG		256
#define NC_ACK_SACK_BITS	64

/* Packet types. */
enum nc_type {
	NC_T_REQUEST = 1,
	NC_T_REQUEST_FRAG = 2,
	NC_T_ACCEPTED = 3,
	NC_T_TOKEN = 4,
	NC_T_FINAL = 5,
	NC_T_ACK = 6,
	NC_T_CANCEL = 7,
	NC_T_PING = 8,
	NC_T_PONG = 9,
	NC_T_ERROR = 10,
	NC_T_MAX_ = 10,
};

/* Header flags; every other bit must be zero in v1. */
#define NC_F_RETRANS		0x0001u	/* this packet is a retransmission */
#define NC_F_ALL		NC_F_RETRANS

/* REQUEST body flags. */
#define NC_RQ_SEED		0x0001u	/* seed field is meaningful */
#define NC_RQ_TEXT_OUT		0x0002u	/* ask for text pieces in TOKEN packets */
#define NC_RQ_STOP_TEXT		0x0004u	/* a stop-strings section ends the body */
#define NC_RQ_ALL		(NC_RQ_SEED | NC_RQ_TEXT_OUT | NC_RQ_STOP_TEXT)

/* FINAL finish reasons. */
enum nc_finish {
	NC_FIN_STOP = 1,
	NC_FIN_LENGTH = 2,
	NC_FIN_CANCEL = 3,
	NC_FIN_ERROR = 4,
};

/* ERROR packet codes (on the wire). */
enum nc_wire_err {
	NC_WE_MALFORMED = 1,
	NC_WE_VERSION = 2,
	NC_WE_TOO_LONG = 3,
	NC_WE_BUSY = 4,
	NC_WE_UNKNOWN_REQUEST = 5,
	NC_WE_INTERNAL = 6,
	NC_WE_UNKNOWN_MODEL = 7,
	NC_WE_TIMEOUT = 8,
	NC_WE_MAX_ = 8,
};

/* Library error codes: functions return 0 (or a length) on success and a
 * negative value from this enum on failure. */
enum nc_err {
	NC_OK = 0,
	NC_E_SHORT = 1,		/* buffer shorter than a field needs */
	NC_E_MAGIC,		/* not a nextcard packet */
	NC_E_VERSION,		/* unsupported protocol version */
	NC_E_TYPE,		/* unknown packet type */
	NC_E_HDRLEN,		/* header length invalid */
	NC_E_LEN,		/* lengths disagree with the packet size */
	NC_E_FLAGS,		/* reserved flag bit set */
	NC_E_FIELD,		/* field value out of range */
	NC_E_UTF8,		/* text is not valid UTF-8 */
	NC_E_NOSPACE,		/* caller buffer too small */
	NC_E_TOO_LONG,		/* request exceeds protocol limits */
	NC_E_POOL_FULL,		/* reassembly pool exhausted */
	NC_E_CLIENT_LIMIT,	/* per-client reassembly bound reached */
	NC_E_DUP,		/* duplicate fragment, dropped */
	NC_E_CONFLICT,		/* fragment disagrees with earlier ones */
	NC_E_NOMEM,		/* allocation at init failed */
	NC_E_INVAL,		/* bad argument */
	NC_E_SOCK,		/* socket error */
	NC_E_RESOLVE,		/* host name did not resolve */
	NC_E_REFUSED,		/* ICMP port unreachable from the server */
	NC_E_TIMEOUT,		/* server did not answer in time */
	NC_E_SERVER,		/* server sent an ERROR packet */
	NC_E_PROTO,		/* server broke the protocol */
	NC_E_ABORTED,		/* the token callback asked to stop */
	NC_E_MAX_,
};

const char *nc_strerror(int err);
const char *nc_wire_err_name(int code);
const char *nc_type_name(int type);
const char *nc_finish_name(int reason);

/* Little-endian loads/stores on unaligned bytes. */
static inline uint16_t nc_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t nc_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t nc_le64(const uint8_t *p)
{
	return (uint64_t)nc_le32(p) | (uint64_t)nc_le32(p + 4) << 32;
}

static inline void nc_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void nc_put32(uint8_t *p, uint32_t v)
{
	nc_put16(p, (uint16_t)v);
	nc_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void nc_put64(uint8_t *p, uint64_t v)
{
	nc_put32(p, (uint32_t)v);
	nc_put32(p + 4, (uint32_t)(v >> 32));
}

/* i-th little-endian u32 of an id array inside a packet. */
static inline uint32_t nc_id_at(const uint8_t *ids, uint32_t i)
{
	return nc_le32(ids + 4 * (size_t)i);
}

/* Common header, decoded. */
struct nc_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint16_t hdr_len;
	uint16_t payload_len;
	uint64_t rid;		/* request id, chosen by the client */
	uint32_t seq;
};

/* Sampling and limits of a request. */
struct nc_wire_sampling {
	uint32_t max_tokens;	/* >= 1 */
	float temperature;	/* 0 = greedy, finite, <= 100 */
	float top_p;		/* (0, 1] */
	uint32_t top_k;		/* 0 = off */
	uint64_t seed;		/* used when NC_RQ_SEED is set */
	uint32_t flags;		/* NC_RQ_* */
};

/* A parsed REQUEST body; pointers into the packet or reassembly buffer. */
struct nc_request_view {
	struct nc_wire_sampling s;
	const uint8_t *model;	/* model_len bytes, not NUL-terminated */
	uint16_t model_len;
	uint16_t n_stop;
	const uint8_t *stop_ids;	/* n_stop LE u32 */
	uint32_t n_prompt;
	const uint8_t *prompt_ids;	/* n_prompt LE u32 */
	uint32_t text_len;
	const uint8_t *text;	/* UTF-8, text_len bytes */
	/* Stop strings (flag NC_RQ_STOP_TEXT; n_stop_str 0 without it).  Each
	 * is stop_str_len[i] bytes of UTF-8 followed by its NUL in the buffer,
	 * so stop_str[i] is also a C string in place. */
	uint32_t stop_len;	/* bytes of the section after its u32 length */
	uint8_t n_stop_str;
	uint16_t stop_str_len[NC_MAX_STOP_STR];
	const uint8_t *stop_str[NC_MAX_STOP_STR];
};

/* A REQUEST_FRAG packet. */
struct nc_frag_view {
	uint32_t total_len;	/* length of the whole body */
	uint16_t stride;	/* bytes carried by every fragment but the last */
	uint16_t index;
	uint16_t count;
	uint16_t data_len;
	const uint8_t *data;
};

struct nc_accepted {
	uint32_t queue_pos;	/* 0: running; n: waiting, n - 1 requests ahead */
	uint32_t prompt_tokens;
	uint16_t window;	/* server replay window, packets */
	uint64_t rx_ns;		/* NIC rx time of the request */
};

/* A TOKEN packet; entries are NC_TOK_ENTRY_LEN bytes each. */
struct nc_token_view {
	uint16_t n_tokens;
	uint16_t text_len;
	uint32_t first_index;	/* completion index of the first token */
	uint64_t rx_ns;
	const uint8_t *entries;
	const uint8_t *text;
};

static inline uint32_t nc_wire_tok_id(const struct nc_token_view *t, unsigned i)
{
	return nc_le32(t->entries + (size_t)i * NC_TOK_ENTRY_LEN);
}

static inline uint32_t nc_tok_card_ns(const struct nc_token_view *t, unsigned i)
{
	return nc_le32(t->entries + (size_t)i * NC_TOK_ENTRY_LEN + 4);
}

static inline uint64_t nc_tok_tx_ns(const struct nc_token_view *t, unsigned i)
{
	return nc_le64(t->entries + (size_t)i * NC_TOK_ENTRY_LEN + 8);
}

/* One token for the TOKEN builder. */
struct nc_token_out {
	uint32_t id;
	uint32_t card_ns;
	uint64_t tx_ns;
};

struct nc_final {
	uint8_t reason;		/* enum nc_finish */
	uint16_t err_code;	/* enum nc_wire_err when reason is ERROR */
	uint32_t prompt_tokens;
	uint32_t completion_tokens;
	uint64_t rx_ns;
	uint64_t tx_ns;
};

struct nc_ack {
	uint32_t next;		/* every seq below this was received */
	uint64_t sack;		/* bit i: seq next + 1 + i was received */
};

struct nc_ping {
	uint64_t client_ns;	/* echoed in PONG */
};

struct nc_pong {
	uint64_t client_ns;
	uint64_t server_ns;
	uint16_t slots_total;
	uint16_t slots_busy;
	uint32_t queue_depth;
	uint32_t queue_max;
	uint32_t flags;		/* bit 0: draining */
};

struct nc_error_view {
	uint16_t code;		/* enum nc_wire_err */
	uint8_t bad_type;	/* type of the offending packet, 0 if unknown */
	uint8_t max_version;	/* highest version the sender speaks */
	uint32_t detail;	/* code-specific: limit, retry-after ms, ... */
	uint16_t msg_len;
	const uint8_t *msg;	/* UTF-8, not NUL-terminated */
};

/* A parsed packet. payload points into the caller's buffer. */
struct nc_pkt {
	struct nc_hdr h;
	const uint8_t *payload;
	union {
		struct nc_request_view req;
		struct nc_frag_view frag;
		struct nc_accepted acc;
		struct nc_token_view tok;
		struct nc_final fin;
		struct nc_ack ack;
		struct nc_ping ping;
		struct nc_pong pong;
		struct nc_error_view err;
	} u;
};

/* Parse and validate a packet of len bytes. Nothing is copied.
 * Errors: -NC_E_SHORT, -NC_E_MAGIC, -NC_E_VERSION, -NC_E_TYPE, -NC_E_HDRLEN,
 * -NC_E_LEN, -NC_E_FLAGS, -NC_E_FIELD, -NC_E_UTF8, -NC_E_TOO_LONG. */
int nc_parse(const uint8_t *buf, size_t len, struct nc_pkt *out);

/* Parse only the common header (for routing before the body is checked).
 * Same errors as nc_parse, limited to the header. */
int nc_parse_hdr(const uint8_t *buf, size_t len, struct nc_hdr *out);

/* Parse a REQUEST body (a REQUEST payload or a reassembled fragment set). */
int nc_parse_request_body(const uint8_t *body, size_t len,
			  struct nc_request_view *out);

/* Map a parse error to the wire code an ERROR reply should carry. */
int nc_err_to_wire(int err);

/* Bytes of packet payload the parser/builders copied with memcpy on this
 * thread (model name and text in builders; the parser copies nothing). */
uint64_t nc_proto_copied_bytes(void);

/* A request to build. */
struct nc_request {
	struct nc_wire_sampling s;
	const char *model;	/* NULL or "" for the server's default */
	const uint32_t *stop;
	uint16_t n_stop;
	const uint32_t *prompt;
	uint32_t n_prompt;
	const char *text;	/* UTF-8 prompt; exactly one of prompt/text */
	uint32_t text_len;
	/* Stop strings (NUL-terminated UTF-8, 1..NC_MAX_STOP_STR_LEN bytes
	 * each), 0..NC_MAX_STOP_STR of them.  The builder sets
	 * NC_RQ_STOP_TEXT when n_stop_str > 0 (and refuses the flag without
	 * strings). */
	const char *const *stop_str;
	uint8_t n_stop_str;
};

/* Builders: return the packet (or body) length, or a negative nc_err. */
long nc_request_body_len(const struct nc_request *rq);
int nc_build_request_body(uint8_t *buf, size_t cap, const struct nc_request *rq);
int nc_build_request(uint8_t *buf, size_t cap, uint64_t rid, uint16_t flags,
		     const struct nc_request *rq);
int nc_frag_count(uint32_t total_len);
int nc_build_frag(uint8_t *buf, size_t cap, uint64_t rid, uint16_t flags,
		  const uint8_t *body, uint32_t total_len, uint16_t index);
int nc_build_accepted(uint8_t *buf, size_t cap, uint64_t rid,
		      const struct nc_accepted *a);
int nc_build_token(uint8_t *buf, size_t cap, uint64_t rid, uint32_t seq,
		   uint16_t flags, uint32_t first_index, uint64_t rx_ns,
		   const struct nc_token_out *toks, unsigned n,
		   const uint8_t *text, uint16_t text_len);
int nc_build_final(uint8_t *buf, size_t cap, uint64_t rid, uint32_t seq,
		   uint16_t flags, const struct nc_final *f);
int nc_build_ack(uint8_t *buf, size_t cap, uint64_t rid, const struct nc_ack *a);
int nc_build_cancel(uint8_t *buf, size_t cap, uint64_t rid, uint16_t flags);
int nc_build_ping(uint8_t *buf, size_t cap, uint32_t seq, uint64_t client_ns);
int nc_build_pong(uint8_t *buf, size_t cap, uint32_t seq,
		  const struct nc_pong *p);
int nc_build_error(uint8_t *buf, size_t cap, uint64_t rid, uint32_t seq,
		   const struct nc_error_view *e);

/* Check that s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
int nc_utf8_valid(const uint8_t *s, size_t len);

#endif
