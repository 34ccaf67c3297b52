/* metrics.h — counters and latency histograms shared by the front ends.
 *
 * Updated lock-free from the data-plane lcore and the HTTP threads (relaxed
 * atomics: each value is exact, a reader may see them mid-update relative to
 * each other).  Histograms have log2 buckets of nanoseconds: bucket i counts
 * values in [2^i, 2^(i+1)) ns, so 1 us .. 17 s fit in 34 buckets.
 */
#ifndef HOST_API_METRICS_H
#define HOST_API_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define NC_HIST_BUCKETS 40

struct nc_hist {
	_Atomic uint64_t bucket[NC_HIST_BUCKETS];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

void nc_hist_add(struct nc_hist *h, uint64_t ns);
/* Approximate quantile (q in [0,1]) in ns: the upper edge of the bucket. */
uint64_t nc_hist_quantile(const struct nc_hist *h, double q);

struct nc_metrics {
	/* requests by front end and outcome */
	_Atomic uint64_t udp_requests, http_requests;
	_Atomic uint64_t requests_ok, requests_error, requests_busy, requests_cancelled;
	_Atomic uint64_t prompt_tokens, completion_tokens;
	_Atomic uint64_t tool_calls_malformed;	/* <tool_call> blocks given back as text */
	_Atomic uint64_t requests_unauthorized;	/* without a valid API key (401) */
	/* latency at the NIC (UDP) or the socket (HTTP) */
	struct nc_hist ttft;		/* request rx -> first token tx */
	struct nc_hist itl;		/* token tx -> next token tx */
	struct nc_hist card_step;	/* card compute time of the step behind a token */
	struct nc_hist overhead;	/* per token: latency minus card time */
	/* data plane */
	_Atomic uint64_t rx_packets, tx_packets, rx_dropped, payload_copied_bytes;
	/* card (filled by whoever renders, from the scheduler / shim) */
	_Atomic uint64_t hbm_bytes_per_token;
};

/* Prometheus text exposition of m plus the gauges given, into buf.
 * Returns the length (may exceed cap: then the output is truncated). */
struct nc_sched_stats;
size_t nc_metrics_render(const struct nc_metrics *m, const struct nc_sched_stats *st,
			 char *buf, size_t cap);

#endif
