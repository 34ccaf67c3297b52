/* metrics.c — histograms and the Prometheus text rendering. */
#include <stdarg.h>
#include <stdio.h>
#include "api/metrics.h"
#include "model/sched.h"

void nc_hist_add(struct nc_hist *h, uint64_t ns)
{
	unsigned b = 0;

	while (b + 1 < NC_HIST_BUCKETS && (ns >> (b + 1)))
		b++;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

uint64_t nc_hist_quantile(const struct nc_hist *h, double q)
{
	uint64_t n = atomic_load_explicit(&h->count, memory_order_relaxed), acc = 0;

	if (n == 0)
		return 0;
	for (unsigned b = 0; b < NC_HIST_BUCKETS; b++) {
		acc += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
		if ((double)acc >= q * (double)n)
			return 2ull << b;
	}
	return 2ull << (NC_HIST_BUCKETS - 1);
}

struct out {
	char *buf;
	size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL,
		      o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
	put(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
	    (unsigned long long)v);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
	put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

/* Cumulative buckets in seconds, as Prometheus histograms want. */
static void hist(struct out *o, const char *name, const char *help, const struct nc_hist *h)
{
	uint64_t acc = 0;

	put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (unsigned b = 9; b < 35; b++) {	/* 1 us .. 34 s */
		acc = 0;
		for (unsigned i = 0; i <= b; i++)
			acc += LD(h->bucket[i]);
		put(o, "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)(2ull << b) * 1e-9,
		    (unsigned long long)acc);
	}
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
	    (unsigned long long)LD(h->count), name, (double)LD(h->sum_ns) * 1e-9, name,
	    (unsigned long long)LD(h->count));
}

size_t nc_metrics_render(const struct nc_metrics *m, const struct nc_sched_stats *st,
			 char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };

	if (cap)
		buf[0] = 0;
	counter(&o, "nextcard_udp_requests_total", "Requests received over UDP.", LD(m->udp_requests));
	counter(&o, "nextcard_http_requests_total", "Completion requests received over HTTP.", LD(m->http_requests));
	counter(&o, "nextcard_requests_ok_total", "Requests that finished.", LD(m->requests_ok));
	counter(&o, "nextcard_requests_error_total", "Requests refused or failed.", LD(m->requests_error));
	counter(&o, "nextcard_requests_busy_total", "Requests refused because every sequence and the queue were full.", LD(m->requests_busy));
	counter(&o, "nextcard_requests_cancelled_total", "Requests cancelled.", LD(m->requests_cancelled));
	counter(&o, "nextcard_requests_unauthorized_total", "Requests without a valid API key (401).", LD(m->requests_unauthorized));
	counter(&o, "nextcard_tool_calls_malformed_total", "Tool-call blocks in the output that did not parse, given back as text.", LD(m->tool_calls_malformed));
	counter(&o, "nextcard_prompt_tokens_total", "Prompt tokens processed.", LD(m->prompt_tokens));
	counter(&o, "nextcard_completion_tokens_total", "Tokens generated.", LD(m->completion_tokens));
	counter(&o, "nextcard_rx_packets_total", "Packets received on the data-plane port.", LD(m->rx_packets));
	counter(&o, "nextcard_tx_packets_total", "Packets sent on the data-plane port.", LD(m->tx_packets));
	counter(&o, "nextcard_rx_dropped_total", "Received packets dropped (malformed, not for us).", LD(m->rx_dropped));
	counter(&o, "nextcard_payload_copied_bytes_total", "Payload bytes memcpy'd on the data path.", LD(m->payload_copied_bytes));
	hist(&o, "nextcard_ttft_seconds", "Time to first token, request rx to token tx.", &m->ttft);
	hist(&o, "nextcard_itl_seconds", "Inter-token latency between token packets.", &m->itl);
	hist(&o, "nextcard_card_step_seconds", "Card compute time of the step behind each token.", &m->card_step);
	hist(&o, "nextcard_overhead_seconds", "Per-token latency not spent computing on the card.", &m->overhead);
	gauge(&o, "nextcard_hbm_bytes_per_token", "HBM bytes read per token step (last measured).", (double)LD(m->hbm_bytes_per_token));
	if (st) {
		gauge(&o, "nextcard_slots", "Sequences the card keeps at once (live sequence ids).", st->slots);
		gauge(&o, "nextcard_slots_active", "Sequences running a request.", st->active);
		gauge(&o, "nextcard_queue_depth", "Requests waiting for a slot.", st->queued);
		gauge(&o, "nextcard_queue_capacity", "Requests that may wait.", st->queue_cap);
		counter(&o, "nextcard_card_steps_total", "Token steps run on the card.", st->steps);
		counter(&o, "nextcard_card_step_rows_total", "Sequence rows over all steps.", st->step_rows);
		gauge(&o, "nextcard_card_compute_seconds_total", "Card time spent in token steps.", (double)st->step_ns_total * 1e-9);
		gauge(&o, "nextcard_card_state", "Card state: 1 booted, 2 configured, 3 running, 4 failed.", st->card_state);
		gauge(&o, "nextcard_card_ready", "1 while the card runs the model (GET /ready 200).", st->card_state == 3 && !st->resetting);
		gauge(&o, "nextcard_card_resetting", "1 while a failed card is being reset.", st->resetting);
		counter(&o, "nextcard_card_faults_total", "Card faults seen (each failed the requests it held).", st->faults);
		counter(&o, "nextcard_card_resets_total", "Resets that brought a failed card back.", st->resets);
		gauge(&o, "nextcard_card_reset_seconds", "How long the last reset took (boot, configure, weights).", (double)st->reset_ns * 1e-9);
		gauge(&o, "nextcard_pool_live_sequences", "Sequences holding card state.", st->live_seqs);
		gauge(&o, "nextcard_pool_kv_pages", "KV pages in the card's pool.", st->pages);
		gauge(&o, "nextcard_pool_kv_pages_free", "KV pages free.", st->pages_free);
		gauge(&o, "nextcard_pool_kv_page_positions", "Positions per KV page.", st->page_pos);
		gauge(&o, "nextcard_pool_state_blocks", "State handles (sequences + snapshots).", st->blocks);
		gauge(&o, "nextcard_pool_state_blocks_free", "State handles free.", st->blocks_free);
		gauge(&o, "nextcard_prefix_snapshots", "Snapshots held (prefix cache and rollback points).", st->snaps);
		gauge(&o, "nextcard_prefix_cache_bytes", "Bytes the prefix cache holds.", (double)st->snap_bytes);
		counter(&o, "nextcard_prefix_hits_total", "Requests that restored a cached prefix.", st->prefix_hits);
		counter(&o, "nextcard_prefix_misses_total", "Requests that found no cached prefix.", st->prefix_misses);
		counter(&o, "nextcard_prefix_tokens_total", "Prompt positions not recomputed thanks to the cache.", st->prefix_tokens);
		counter(&o, "nextcard_prefix_stored_total", "Snapshots taken for the prefix cache.", st->prefix_stored);
		counter(&o, "nextcard_prefix_evicted_total", "Prefix snapshots evicted (LRU).", st->prefix_evicted);
		counter(&o, "nextcard_preempted_total", "Sequences whose state was dropped to free KV pages.", st->preempted);
		counter(&o, "nextcard_preempt_replayed_positions_total", "Positions recomputed after preemption.", st->replayed);
		gauge(&o, "nextcard_spec_drafts_per_step", "MTP drafts verified per step (0: speculative decoding off).", st->spec);
		counter(&o, "nextcard_spec_drafted_total", "MTP drafts verified.", st->drafted);
		counter(&o, "nextcard_spec_accepted_total", "MTP drafts accepted: tokens that took no step of their own.", st->accepted);
		gauge(&o, "nextcard_spec_acceptance_ratio", "Accepted over verified drafts since start.", st->drafted ? (double)st->accepted / (double)st->drafted : 0.0);
	}
	return o.len;
}
