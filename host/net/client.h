/* client.h — libnextcard-client: talk to a nextcard appliance over UDP.
 *
 * Kernel sockets, one request at a time per client. The client sends the
 * request (fragmented when long), resends it until the server answers,
 * ACKs token packets with a selective-ack bitmap so the server retransmits
 * what was lost, and hands tokens to a callback in order, exactly once.
 * Protocol: docs/protocol.md.
 */
#ifndef HOST_NET_CLIENT_H
#define HOST_NET_CLIENT_H

#include <stdint.h>

#include "net/proto.h"

struct nc_client_opts {
	unsigned req_rto_ms;	/* first REQUEST resend timer (200) */
	unsigned req_tries;	/* REQUEST sends before giving up (6) */
	unsigned idle_timeout_ms;	/* fail when silent this long (10000) */
	unsigned ack_every_ms;	/* keepalive ACK period while waiting (50) */
	uint32_t max_samples;	/* latency samples kept per request (65536) */
};

/* One delivered token. */
struct nc_token_event {
	uint32_t index;		/* position in the completion, from 0 */
	uint32_t id;
	uint32_t card_ns;	/* card compute time of this token */
	uint64_t rx_ns;		/* server NIC clock: request received */
	uint64_t tx_ns;		/* server NIC clock: token queued for tx */
	uint64_t recv_ns;	/* client CLOCK_MONOTONIC at arrival */
	const uint8_t *text;	/* text piece of the packet (first token only) */
	uint16_t text_len;
};

/* Return non-zero to cancel the request. */
typedef int (*nc_token_cb)(void *user, const struct nc_token_event *ev);

struct nc_gen_result {
	uint8_t finish;		/* enum nc_finish, 0 if none arrived */
	uint16_t err_code;	/* enum nc_wire_err from FINAL or ERROR */
	uint32_t err_detail;
	char err_msg[NC_MAX_ERR_MSG + 1];
	uint32_t prompt_tokens;
	uint32_t completion_tokens;
	uint32_t delivered;	/* tokens handed to the callback */
	uint64_t ttft_ns;	/* first REQUEST send -> first token */
	uint64_t total_ns;
	uint32_t n_itl;		/* inter-token gaps measured */
	uint64_t itl_p50_ns, itl_p90_ns, itl_p99_ns, itl_max_ns;
	/* Counters. */
	uint32_t pkts_tx, pkts_rx, acks_tx, req_sends, dup_rx, ooo_rx,
		 beyond_window, bad_rx, foreign_rx;
};

struct nc_client;

/* Resolve host and connect a UDP socket. opts may be NULL for defaults.
 * Errors: -NC_E_RESOLVE, -NC_E_SOCK, -NC_E_NOMEM, -NC_E_INVAL. */
int nc_client_open(struct nc_client **out, const char *host, uint16_t port,
		   const struct nc_client_opts *opts);

/* Run one request to completion. Returns 0 when a FINAL arrived (its
 * reason is in res->finish), or -NC_E_TIMEOUT, -NC_E_REFUSED,
 * -NC_E_SERVER (res->err_code says why), -NC_E_PROTO, -NC_E_ABORTED,
 * -NC_E_SOCK, or a builder error for a bad request. res may be NULL. */
int nc_client_generate(struct nc_client *cl, const struct nc_request *rq,
		       nc_token_cb cb, void *user, struct nc_gen_result *res);

/* PING the server; fills *pong and the round trip. */
int nc_client_ping(struct nc_client *cl, unsigned timeout_ms,
		   struct nc_pong *pong, uint64_t *rtt_ns);

void nc_client_close(struct nc_client *cl);

/* Nearest-rank percentile (p in 0..100) of n values, sorting them. */
uint64_t nc_percentile(uint64_t *v, uint32_t n, unsigned p);

#endif
