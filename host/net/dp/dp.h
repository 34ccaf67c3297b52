/* dp.h — the DPDK data plane of `nextcard serve` (docs/dataplane.md).
 *
 * One port, one RX and one TX queue, one polling lcore that does
 * everything: rx_burst, L2-L4 checks, the protocol (host/net/session.c),
 * nc_sched_poll (token events build their packets in place), timers,
 * tx_burst.  Nothing on that lcore allocates from the heap, locks (beyond
 * the scheduler's uncontended mutex) or prints.
 */
#ifndef HOST_NET_DP_H
#define HOST_NET_DP_H

#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "api/metrics.h"
#include "api/openai.h"
#include "model/sched.h"
#include "net/dp/dp_card.h"
#include "net/dp/dp_text.h"
#include "net/reasm.h"
#include "net/session.h"

#define DP_BURST	32
#define DP_TXQ_MAX	512	/* packets queued for one tx flush */
#define DP_SAMPLES	(1u << 16)	/* exact latency samples kept for the summary */
#define DP_RL_SLOTS	1024	/* malformed-reply rate limiter, by source address */
#define DP_RL_PER_SEC	100

/* Where a reply goes: the peer's MAC, IPv4 address and UDP port. */
struct dp_peer {
	struct rte_ether_addr mac;
	uint32_t ip;		/* network order */
	uint16_t port;		/* network order */
};

/* Data-plane state of a live request, indexed like its session's stream. */
struct dp_req {
	struct dp_peer to;
	struct rte_mbuf *hold;	/* request packet whose prompt ids the card reads */
	uint32_t reasm_handle;	/* or: reassembly buffer holding them */
	uint8_t has_reasm;
	uint8_t text_out;
	uint8_t started;	/* the scheduler put it on a slot */
	uint64_t rx_tsc;	/* rx_burst return of its (last) packet */
	uint64_t last_tx_tsc;	/* previous token's tx */
	uint32_t tokens_timed;
	struct dp_detok detok;
	int32_t *ids;		/* tokenized text / realigned ids, ctx entries */
	int32_t stop[16];
	/* stop strings (flag STOP_TEXT): matched over the detokenized text */
	uint8_t n_stop_str;
	uint8_t stop_hit;	/* a stop string matched: tokens after it are dropped */
	uint8_t stop_cancel;	/* ... and the scheduler must still be told */
	char *stop_ptr[NC_MAX_STOP_STR];
	char stop_buf[NC_MAX_STOP_SECT];	/* the strings, NUL-terminated */
	struct oai_stopper stopper;	/* hold buffer preallocated (DP_STOP_BUF) */
	struct nc_obuf stop_out;	/* what the matcher releases, preallocated */
};

/* Text the stop matcher holds or releases at once: a stop string's worth
 * plus one detokenized piece, with room to spare, so the lcore never
 * allocates. */
#define DP_STOP_BUF	2048

/* Exact samples (ring) for the exit summary; histograms go to metrics. */
struct dp_samples {
	uint64_t *v;
	uint32_t n, next;
};

/* A token packet waiting for tx_burst: timed at the flush. */
struct dp_txmeta {
	int32_t req;		/* stream index, -1: not a token packet */
	uint16_t n_tokens;
	uint8_t first;		/* carries the request's first token */
	uint64_t card_ns;	/* card time of its last token's step */
	uint64_t ev_tsc;	/* poll that delivered the event */
};

struct dp_counters {
	uint64_t rx_bursts, rx_nonempty, arp_replies, icmp_replies;
	uint64_t drop_short, drop_ether, drop_arp, drop_ip_hdr, drop_ip_csum,
		 drop_not_ours, drop_ip_frag, drop_proto, drop_udp_len,
		 drop_udp_port, drop_udp_csum, drop_segs, drop_icmp;
	uint64_t csum_zero, csum_partial;
	uint64_t nc_bad_magic, nc_malformed, nc_version, nc_server_type,
		 nc_rate_limited, nc_unknown_req, nc_errors_sent;
	uint64_t req_ok, req_dup, req_busy, req_bad, req_text, req_frag_done;
	uint64_t frag_drop[8];
	uint64_t acks_unknown, cancels;
	uint64_t tx_nombuf, tx_dropped, tx_token_pkts, tx_retrans;
	uint64_t ids_zero_copy, ids_realigned, card_failed;
	uint64_t stop_text_hits;	/* requests ended by a stop string */
	uint64_t loops, polls_with_events;
	uint64_t inj_rx_drops, inj_tx_drops;	/* --inject-loss-pct */
};

struct dp {
	struct nc_fault_seen fault_seen;	/* what the log said of the card */
	/* config */
	uint16_t port_id;
	uint16_t udp_port;	/* network order */
	uint32_t ip;		/* network order */
	struct rte_ether_addr mac;
	char model_name[65];
	uint32_t vocab, ctx, max_stop;
	int32_t eos;		/* appended to stop ids, -1 none */
	uint64_t idle_exit_ns;	/* 0: run until signalled */
	uint32_t loss_ppm;	/* test hook: drop this share of rx and tx frames */
	uint64_t rng;		/* xorshift state of the loss hook */
	/* resources */
	struct rte_mempool *pool;
	struct dp_card *card;
	struct nc_tokenizer *tok;
	struct nc_sess_table sess;
	struct nc_reasm reasm;
	struct nc_metrics *m;
	struct dp_req *reqs;	/* sess.cfg.max_streams */
	uint32_t stop_cancels;	/* requests with stop_cancel set */
	/* clock: TSC -> CLOCK_MONOTONIC_RAW ns */
	uint64_t tsc_hz, tsc0, ns0, ns_mult;	/* ns = ns0 + (tsc - tsc0) * mult >> 32 */
	uint64_t now_tsc;	/* current loop iteration */
	uint64_t poll_tsc;	/* start of the current dp_card_poll */
	uint64_t last_ours_tsc;	/* last protocol packet for us (idle exit) */
	/* tx */
	struct rte_mbuf *txq[DP_TXQ_MAX];
	struct dp_txmeta txm[DP_TXQ_MAX];
	uint32_t ntx;
	/* reply rate limit for malformed packets */
	struct { uint32_t ip, sec, count; } rl[DP_RL_SLOTS];
	/* latency, exact */
	struct dp_samples s_ttft, s_itl, s_card, s_over, s_host;
	struct dp_counters c;
};

static inline uint64_t dp_ns(const struct dp *d, uint64_t tsc)
{
	return d->ns0 + (uint64_t)(((__uint128_t)(tsc - d->tsc0) * d->ns_mult) >> 32);
}

static inline uint64_t dp_tsc_to_ns(const struct dp *d, uint64_t dt)
{
	return (uint64_t)(((__uint128_t)dt * d->ns_mult) >> 32);
}

/* The loss-injection hook: 1 when this frame is to be lost. */
static inline int dp_lose(struct dp *d)
{
	if (!d->loss_ppm)
		return 0;
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng % 1000000 < d->loss_ppm;
}

/* dp_net.c: L2-L4. */
void dp_rx(struct dp *d, struct rte_mbuf *m, uint64_t rx_tsc);
/* A new packet to `to` with room for len bytes of UDP payload; NULL when the
 * pool is empty.  *payload points at it. */
struct rte_mbuf *dp_udp_alloc(struct dp *d, const struct dp_peer *to, uint16_t len,
			      uint8_t **payload);
/* Finish IP/UDP lengths and checksums of a packet from dp_udp_alloc whose
 * payload turned out len bytes, and queue it for tx. */
void dp_udp_send(struct dp *d, struct rte_mbuf *m, uint16_t len,
		 const struct dp_txmeta *meta);
void dp_tx_queue(struct dp *d, struct rte_mbuf *m, const struct dp_txmeta *meta);
void dp_tx_flush(struct dp *d);

/* dp_proto.c: the wire protocol.  Returns 1 if it kept the mbuf. */
int dp_proto_rx(struct dp *d, struct rte_mbuf *m, const uint8_t *pl, uint16_t len,
		const struct dp_peer *from, uint64_t rx_tsc);
int dp_proto_init(struct dp *d, const struct nc_sess_cfg *scfg, char *err, size_t errlen);
void dp_proto_fini(struct dp *d);
void dp_card_event(void *user, const struct dp_card_ev *ev);
void dp_proto_tick(struct dp *d, uint64_t now_ns);
/* After dp_card_poll: cancel in the scheduler the requests a stop string
 * ended (the card's event callback must not call back into dp_card). */
void dp_proto_after_poll(struct dp *d);
/* Shutdown: cancel everything in the scheduler and wait for it to end. */
void dp_proto_drain(struct dp *d);

extern struct dp *dp_self;	/* the card's callbacks carry only a session */

#endif
