/* session.h — the server side of protocol v1, per request, without I/O.
 *
 * docs/protocol.md sections 7-9: the (client address, port, request id)
 * table used for duplicate detection and tombstones, stream sequence
 * numbers, the replay window, ACK processing (cumulative + SACK), fast
 * retransmit, the retransmission timer, the dead-client timer, periodic
 * ACCEPTED while queued.  The data plane owns the wire: it asks the table
 * for decisions and the table calls back (struct nc_sess_ops) when a
 * packet must go out or a request must be stopped.
 *
 * Everything is allocated by nc_sess_init(): session records (cheap, also
 * used for tombstones) and stream buffers (the tokens and text of a live
 * request, kept until acknowledged).  Nothing allocates afterwards.  Time
 * is given by the caller in ns.  Not thread-safe: one table per lcore.
 */
#ifndef HOST_NET_SESSION_H
#define HOST_NET_SESSION_H

#include <stdint.h>

#include "net/proto.h"
#include "net/reasm.h"

#define NC_SESS_WINDOW		64	/* replay window, packets (v1 maximum) */

struct nc_sess_cfg {
	uint32_t max_sessions;	/* records: live requests + tombstones */
	uint32_t max_streams;	/* live requests (queued, running, draining) */
	uint32_t tok_cap;	/* tokens one completion may hold */
	uint32_t text_cap;	/* text bytes one completion may hold */
	uint16_t window;	/* packets, 1..NC_SESS_WINDOW */
	uint64_t rto_min_ns;	/* 20 ms */
	uint64_t rto_max_ns;	/* 1 s */
	uint64_t dead_ns;	/* no ACK for this long: the client is gone (10 s):
				 * cancel a queued/running request, give up
				 * on FINAL of a draining one.  At least the
				 * client's idle timeout (docs/protocol.md 8.2) */
	uint64_t tomb_ns;	/* tombstone lifetime (30 s) */
	uint64_t accepted_every_ns;	/* ACCEPTED while queued (1 s) */
};

#define NC_SESS_DEFAULT_CFG { \
	.max_sessions = 16384, .max_streams = 160, .tok_cap = 4096, \
	.text_cap = 32768, .window = NC_SESS_WINDOW, \
	.rto_min_ns = 20000000ull, .rto_max_ns = 1000000000ull, \
	.dead_ns = 10000000000ull, \
	.tomb_ns = 30000000000ull, .accepted_every_ns = 1000000000ull }

enum nc_sess_state {
	NC_SS_FREE = 0,
	NC_SS_QUEUED,		/* admitted, waiting for a card slot */
	NC_SS_RUNNING,		/* generating */
	NC_SS_DRAINING,		/* FINAL sent, waiting for its ACK */
	NC_SS_TOMB,		/* finished; key remembered against duplicates */
};

/* One stream packet of the replay window (indexed by seq % window). */
struct nc_sess_pkt {
	uint32_t seq;
	uint32_t first;		/* completion index of its first token */
	uint16_t n;		/* tokens; 0 for FINAL */
	uint8_t final;
	uint8_t acked;
	uint32_t text_off;	/* its text piece in the stream's text buffer */
	uint32_t text_len;
	uint64_t sent_ns;	/* last (re)transmission */
};

/* The tokens and text of one live request. */
struct nc_stream {
	struct nc_token_out *tok;	/* tok_cap */
	uint32_t *text_end;	/* tok_cap: text bytes produced up to token i */
	uint8_t *text;		/* text_cap */
	struct nc_sess_pkt win[NC_SESS_WINDOW];
	uint32_t next_free;	/* free list, index + 1 */
};

struct nc_sess {
	struct nc_peer peer;
	uint64_t rid;
	uint8_t state;		/* enum nc_sess_state */
	uint8_t text_out;	/* client asked for text pieces */
	uint8_t any_ack;	/* the client acknowledged a stream packet */
	uint8_t final_set;	/* the end of generation is known */
	uint8_t final_reason;	/* enum nc_finish */
	uint8_t dead;		/* cancelled for silence: no FINAL */
	uint8_t in_sched;	/* the scheduler still calls back for it */
	uint8_t cancel_asked;	/* CANCEL received or dead: stop asked */
	uint16_t final_err;
	uint16_t mac_idx;	/* data plane: where to send (peer MAC slot) */
	uint32_t prompt_tokens;
	uint32_t max_tokens;	/* after clamping to tok_cap / context */
	uint32_t n_tok;		/* tokens produced */
	uint32_t tok_sent;	/* tokens placed into packets */
	uint32_t text_len;	/* text bytes produced */
	uint32_t una;		/* oldest unacknowledged seq */
	uint32_t next_seq;	/* next seq to assign */
	uint32_t final_seq;
	uint32_t expiries;	/* RTO expiries without ACK progress */
	uint64_t rto_ns;
	uint64_t rx_ns;		/* request received (last fragment) */
	uint64_t last_ack_ns;	/* liveness: last ACK, resent REQUEST or admission */
	uint64_t last_accepted_ns;
	uint64_t tomb_until;
	uint64_t handle;	/* scheduler handle */
	uint64_t first_tx_ns;	/* data plane: latency bookkeeping */
	uint64_t last_tx_ns;
	struct nc_stream *st;	/* NULL once tombstoned */
	uint32_t hnext;		/* hash chain, index + 1 */
	uint32_t lnext, lprev;	/* live list or tombstone FIFO, index + 1 */
	void *user;		/* data plane's own per-request state */
};

struct nc_sess_stats {
	uint64_t admitted, dup_requests, dup_accepted, table_full, streams_full;
	uint64_t tokens, pkts_sent, finals_sent, retrans_fast, retrans_rto;
	uint64_t acks, acks_bad, acks_stale, window_stalls;
	uint64_t dead_clients, final_giveups, tomb_evicted, tomb_expired;
	uint64_t text_dropped;	/* pieces left empty: text buffer full */
	uint32_t live, tombs;
};

struct nc_sess_table;

/* What the table asks of the data plane. */
struct nc_sess_ops {
	/* Put stream packet win[seq % window] of s on the wire (retrans: a
	 * resend, set RETRANS).  The first send fills the tx_ns of its tokens
	 * (s->st->tok[first..first+n)) before building.  Return 0 if it went
	 * out, < 0 if it could not (no buffer): the timer resends it. */
	int (*send)(void *ctx, struct nc_sess *s, const struct nc_sess_pkt *p,
		    int retrans, uint64_t now_ns);
	/* Send ACCEPTED for a queued request (periodic). */
	void (*accepted)(void *ctx, struct nc_sess *s);
	/* Stop generation of s (dead client); the scheduler's final event
	 * comes later through nc_sess_finish(). */
	void (*cancel)(void *ctx, struct nc_sess *s);
};

struct nc_sess_table {
	struct nc_sess_cfg cfg;
	struct nc_sess_ops ops;
	void *ctx;
	struct nc_sess *s;		/* max_sessions */
	uint32_t *bucket;		/* index + 1 */
	uint32_t nbuckets;		/* power of two */
	uint32_t free_head;		/* free records, index + 1 */
	uint32_t live_head;		/* queued/running/draining, index + 1 */
	uint32_t tomb_head, tomb_tail;	/* tombstones, oldest first */
	struct nc_stream *streams;	/* max_streams */
	uint32_t stream_free;		/* index + 1 */
	void *mem;			/* token/text storage of all streams */
	struct nc_sess_stats stats;
};

/* Errors: -NC_E_INVAL, -NC_E_NOMEM. */
int nc_sess_init(struct nc_sess_table *t, const struct nc_sess_cfg *cfg,
		 const struct nc_sess_ops *ops, void *ctx);
void nc_sess_fini(struct nc_sess_table *t);

/* The record for a key (live or tombstone), or NULL. */
struct nc_sess *nc_sess_find(struct nc_sess_table *t,
			     const struct nc_peer *peer, uint64_t rid);

/* A new live request (state QUEUED) with a stream buffer.  When the table
 * is full the oldest tombstone is evicted.  NULL when no stream buffer or
 * record is left (answer BUSY). */
struct nc_sess *nc_sess_admit(struct nc_sess_table *t,
			      const struct nc_peer *peer, uint64_t rid,
			      uint64_t now_ns);

/* Give a record back at once (admission failed after nc_sess_admit). */
void nc_sess_abort(struct nc_sess_table *t, struct nc_sess *s);

/* A duplicate REQUEST arrived.  A live request counts it as a sign of life
 * (the client is still there, waiting).  When the client has acknowledged
 * nothing yet it heard nothing: the stream packets already sent are resent
 * at once (RTO back to its minimum) and 1 is returned: send ACCEPTED
 * again.  0: ignore it (tombstone, or the client is already streaming). */
int nc_sess_dup(struct nc_sess_table *t, struct nc_sess *s, uint64_t now_ns);

/* The scheduler put it on a slot. */
void nc_sess_running(struct nc_sess_table *t, struct nc_sess *s);

/* A token was sampled: keep it (with its text piece) and send what the
 * window allows.  Tokens beyond max_tokens or tok_cap are refused (-1). */
int nc_sess_token(struct nc_sess_table *t, struct nc_sess *s, uint32_t id,
		  uint32_t card_ns, const uint8_t *text, uint32_t text_len,
		  uint64_t now_ns);

/* Generation ended (the scheduler's last event for it): queue FINAL with
 * this reason and send what the window allows.  A dead request goes
 * straight to a tombstone. */
void nc_sess_finish(struct nc_sess_table *t, struct nc_sess *s, uint8_t reason,
		    uint16_t err_code, uint64_t now_ns);

/* The scheduler's last event came but no FINAL is due (an ERROR packet
 * ended it before any token): remember the key as a tombstone. */
void nc_sess_end(struct nc_sess_table *t, struct nc_sess *s, uint64_t now_ns);

/* An ACK for s.  Returns 0, or -NC_E_FIELD for an ACK beyond what was
 * sent (ignored, counted). */
int nc_sess_ack(struct nc_sess_table *t, struct nc_sess *s,
		const struct nc_ack *a, uint64_t now_ns);

/* Timers: retransmission, dead clients, ACCEPTED while queued,
 * tombstone expiry.  Call every millisecond or so. */
void nc_sess_tick(struct nc_sess_table *t, uint64_t now_ns);

/* Completion index and token count of the FINAL: tokens generated. */
static inline uint32_t nc_sess_completion(const struct nc_sess *s)
{
	return s->n_tok;
}

/* Requests that are not finished yet (queued, running or draining). */
static inline uint32_t nc_sess_live(const struct nc_sess_table *t)
{
	return t->stats.live;
}

#endif
