/* dp_main.c — `nextcard serve`: the appliance daemon.
 *
 *   nextcard serve [EAL args] -- --model DIR [--port UDP] [--ip A.B.C.D]
 *       [--queue N] [--card emu|xrt[:N]] [--board DTB] [--ctx N]
 *       [--http-port P] [--exit-after-idle-ms MS] [--dead-ms MS]
 *
 * In the order of DPDK's sample apps: EAL init, app args, the model on the
 * card, mempool, port, then the polling loop on the main lcore until
 * SIGINT/SIGTERM (or idle exit), then stop, close, rte_eal_cleanup and a
 * summary of counters and latency on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "net/dp/dp.h"
#include "net/proto.h"

#define NB_MBUF		4095
#define MBUF_CACHE	256
#define NB_RXD		1024
#define NB_TXD		1024
#define TICK_US		1000

static volatile sig_atomic_t force_quit;

static void on_signal(int sig)
{
	(void)sig;
	force_quit = 1;
}

struct serve_opts {
	const char *model, *card, *board, *quant;
	uint16_t port, http_port;
	uint32_t ip;		/* network order */
	uint32_t queue, ctx;
	uint64_t idle_exit_ms, dead_ms;
	uint32_t loss_ppm;
	struct nc_engine_opts pool;	/* the state pool's options */
};

static int usage(const char *why)
{
	fprintf(stderr, "nextcard serve: %s (usage: nextcard serve [EAL args] -- --model DIR"
		" [--port UDP] [--ip A.B.C.D] [--queue N] [--card emu|xrt[:N]] [--threads N] [--board DTB]"
		" [--quant int8|int4[:G]|SPEC] [--ctx N] [--http-port P] [--exit-after-idle-ms MS] [--dead-ms MS]"
		" [--inject-loss-pct N (tests: lose N%% of rx and tx frames)] " NC_POOL_USAGE ")\n", why);
	return 2;
}


static int parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "ip", required_argument, NULL, 'i' },
		{ "queue", required_argument, NULL, 'q' },
		{ "card", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 'j' },
		{ "board", required_argument, NULL, 'b' },
		{ "quant", required_argument, NULL, 'Q' },
		{ "ctx", required_argument, NULL, 'x' },
		{ "http-port", required_argument, NULL, 'H' },
		{ "exit-after-idle-ms", required_argument, NULL, 'E' },
		{ "dead-ms", required_argument, NULL, 'D' },
		{ "inject-loss-pct", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		NC_POOL_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	char err[160];
	struct in_addr a;
	uint64_t v;
	int c;

	opterr = 0;
	optind = 0;	/* EAL used getopt before us: full reset */
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int po = nc_pool_opt(c, optarg, &o->pool, err, sizeof(err));

		if (po < 0)
			return usage(err);
		if (po)
			continue;
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'c': o->card = optarg; break;
		case 'j': {	/* the emulated card's CU threads */
			static char spec[32];

			if (nc_parse_u64(optarg, 1, 16, &v))
				return usage("--threads wants 1..16");
			snprintf(spec, sizeof(spec), "emu:%u", (unsigned)v);
			o->card = spec;
			break;
		}
		case 'b': o->board = optarg; break;
		case 'Q': o->quant = optarg; break;
		case 'p':
			if (nc_parse_u64(optarg, 1, 65535, &v))
				return usage("--port wants 1..65535");
			o->port = (uint16_t)v;
			break;
		case 'H':
			if (nc_parse_u64(optarg, 1, 65535, &v))
				return usage("--http-port wants 1..65535");
			o->http_port = (uint16_t)v;
			break;
		case 'i':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				return usage("--ip wants an IPv4 address A.B.C.D");
			o->ip = a.s_addr;
			break;
		case 'q':
			if (nc_parse_u64(optarg, 1, 4096, &v))
				return usage("--queue wants 1..4096");
			o->queue = (uint32_t)v;
			break;
		case 'x':
			if (nc_parse_u64(optarg, 2, 1u << 20, &v))
				return usage("--ctx wants 2..1048576");
			o->ctx = (uint32_t)v;
			break;
		case 'E':
			if (nc_parse_u64(optarg, 1, 86400000, &v))
				return usage("--exit-after-idle-ms wants 1..86400000");
			o->idle_exit_ms = v;
			break;
		case 'D':
			if (nc_parse_u64(optarg, 10, 3600000, &v))
				return usage("--dead-ms wants 10..3600000");
			o->dead_ms = v;
			break;
		case 'L':
			if (nc_parse_u64(optarg, 0, 50, &v))
				return usage("--inject-loss-pct wants 0..50");
			o->loss_ppm = (uint32_t)v * 10000;
			break;
		case 'h':
			usage("help");
			return 1;
		default:
			return usage("unknown or incomplete option after --");
		}
	}
	if (optind < argc)
		return usage("unexpected argument after --");
	if (!o->model)
		return usage("--model is required");
	return 0;
}

/* Let the IPv4 header (14 bytes in) start 4-byte aligned, as Linux's
 * NET_IP_ALIGN does: then every u32 of a request body, prompt ids included,
 * is aligned in the mbuf and the card reads the ids where they arrived. */
static void ip_align(struct rte_mempool *mp, void *opaque, void *obj, unsigned idx)
{
	struct rte_mbuf *m = obj;

	(void)mp;
	(void)opaque;
	(void)idx;
	m->buf_addr = (char *)m->buf_addr + 2;
	m->buf_iova += 2;
	m->buf_len -= 2;
	rte_pktmbuf_reset_headroom(m);
}

static int port_init(struct dp *d, char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nrx = NB_RXD, ntx = NB_TXD;
	int rc;

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(d->port_id, &info);
	if (rc == 0)
		rc = rte_eth_dev_configure(d->port_id, 1, 1, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(d->port_id, &nrx, &ntx);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(d->port_id, 0, nrx,
					    rte_eth_dev_socket_id(d->port_id), NULL, d->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(d->port_id, 0, ntx,
					    rte_eth_dev_socket_id(d->port_id), NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(d->port_id);
	if (rc == 0)
		rc = rte_eth_macaddr_get(d->port_id, &d->mac);
	if (rc) {
		snprintf(err, errlen, "port %u (%s): %s", d->port_id,
			 rc == 0 ? "?" : info.driver_name ? info.driver_name : "?",
			 rte_strerror(-rc));
		return -1;
	}
	return 0;
}

static void clock_init(struct dp *d)
{
	struct timespec ts;

	d->tsc_hz = rte_get_tsc_hz();
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	d->tsc0 = rte_rdtsc();
	d->ns0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	d->ns_mult = (uint64_t)(((__uint128_t)1000000000ull << 32) / d->tsc_hz);
}

static int samples_init(struct dp *d)
{
	struct dp_samples *all[] = { &d->s_ttft, &d->s_itl, &d->s_card, &d->s_over, &d->s_host };

	for (unsigned i = 0; i < RTE_DIM(all); i++) {
		all[i]->v = calloc(DP_SAMPLES, sizeof(uint64_t));
		if (!all[i]->v)
			return -1;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_pct(const char *name, struct dp_samples *s)
{
	uint32_t n = s->n;

	if (!n) {
		printf("latency %-10s n=0\n", name);
		return;
	}
	qsort(s->v, n, sizeof(uint64_t), cmp_u64);
	printf("latency %-10s n=%u p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n", name, n,
	       s->v[(n - 1) * 50 / 100] / 1e3, s->v[(n - 1) * 90 / 100] / 1e3,
	       s->v[(n - 1) * 99 / 100] / 1e3, s->v[n - 1] / 1e3);
}

#define M(x) atomic_load_explicit(&d->m->x, memory_order_relaxed)

static void summary(struct dp *d, double secs)
{
	const struct dp_counters *c = &d->c;
	const struct nc_sess_stats *ss = &d->sess.stats;
	const struct nc_reasm_stats *rs = &d->reasm.st;

	printf("nextcard serve: stopped after %.1f s\n", secs);
	printf("stats rx_packets=%lu tx_packets=%lu rx_dropped=%lu payload_copied_bytes=%lu"
	       " ids_zero_copy=%lu ids_realigned=%lu stop_text_hits=%lu\n",
	       M(rx_packets), M(tx_packets), M(rx_dropped), M(payload_copied_bytes),
	       c->ids_zero_copy, c->ids_realigned, c->stop_text_hits);
	printf("stats requests ok=%lu dup=%lu busy=%lu bad=%lu text=%lu frag_completed=%lu"
	       " finished_ok=%lu errors=%lu cancelled=%lu prompt_tokens=%lu completion_tokens=%lu\n",
	       c->req_ok, c->req_dup, c->req_busy, c->req_bad, c->req_text, c->req_frag_done,
	       M(requests_ok), M(requests_error), M(requests_cancelled), M(prompt_tokens),
	       M(completion_tokens));
	printf("stats drops short=%lu ether=%lu arp=%lu ip_hdr=%lu ip_csum=%lu not_ours=%lu"
	       " ip_frag=%lu proto=%lu udp_len=%lu udp_port=%lu udp_csum=%lu segs=%lu icmp=%lu"
	       " bad_magic=%lu malformed=%lu version=%lu server_type=%lu\n",
	       c->drop_short, c->drop_ether, c->drop_arp, c->drop_ip_hdr, c->drop_ip_csum,
	       c->drop_not_ours, c->drop_ip_frag, c->drop_proto, c->drop_udp_len,
	       c->drop_udp_port, c->drop_udp_csum, c->drop_segs, c->drop_icmp,
	       c->nc_bad_magic, c->nc_malformed, c->nc_version, c->nc_server_type);
	printf("stats replies arp=%lu icmp=%lu errors=%lu rate_limited=%lu unknown_request=%lu"
	       " cancels=%lu csum_zero=%lu csum_partial=%lu\n",
	       c->arp_replies, c->icmp_replies, c->nc_errors_sent, c->nc_rate_limited,
	       c->nc_unknown_req, c->cancels, c->csum_zero, c->csum_partial);
	printf("stats frags offered=%lu stored=%lu completed=%lu dup=%lu conflict=%lu"
	       " pool_full=%lu client_limit=%lu too_long=%lu timeout=%lu evicted=%lu"
	       " bytes_copied=%lu active=%u\n",
	       rs->frags, rs->stored, rs->completed, rs->dup, rs->conflict, rs->pool_full,
	       rs->client_limit, rs->too_long, rs->timeout, rs->evicted, rs->bytes_copied,
	       rs->active);
	printf("stats stream token_pkts=%lu retrans=%lu retrans_fast=%lu retrans_rto=%lu"
	       " acks=%lu acks_bad=%lu window_stalls=%lu dead_clients=%lu final_giveups=%lu"
	       " live=%u tombs=%u tx_nombuf=%lu tx_dropped=%lu injected_loss rx=%lu tx=%lu\n",
	       c->tx_token_pkts, c->tx_retrans, ss->retrans_fast, ss->retrans_rto, ss->acks,
	       ss->acks_bad, ss->window_stalls, ss->dead_clients, ss->final_giveups, ss->live,
	       ss->tombs, c->tx_nombuf, c->tx_dropped, c->inj_rx_drops, c->inj_tx_drops);
	{
		struct dp_card_stats cs;

		dp_card_stats(d->card, &cs);
		printf("stats speculative drafts_per_step=%u drafted=%lu accepted=%lu"
		       " acceptance=%.3f tokens_per_step=%.3f\n", cs.spec, cs.drafted, cs.accepted,
		       cs.drafted ? (double)cs.accepted / (double)cs.drafted : 0.0,
		       cs.steps ? (double)cs.tokens / (double)cs.steps : 0.0);
	}
	print_pct("ttft", &d->s_ttft);
	print_pct("itl", &d->s_itl);
	print_pct("card", &d->s_card);
	print_pct("overhead", &d->s_over);
	print_pct("event_tx", &d->s_host);
	fflush(stdout);
}

/* The polling loop (main lcore). */
static void dp_loop(struct dp *d)
{
	struct rte_mbuf *pkts[DP_BURST];
	uint64_t tick = d->tsc_hz * TICK_US / 1000000, last_tick = rte_rdtsc();
	uint64_t idle = d->idle_exit_ns ? d->idle_exit_ns / 1000 * (d->tsc_hz / 1000000) : 0;

	d->last_ours_tsc = last_tick;

	while (!force_quit) {
		uint16_t nb = rte_eth_rx_burst(d->port_id, 0, pkts, DP_BURST);
		uint64_t t = rte_rdtsc();

		d->now_tsc = t;
		if (nb) {
			for (uint16_t i = 0; i < nb; i++)
				dp_rx(d, pkts[i], t);
		}
		d->poll_tsc = rte_rdtsc();
		if (dp_card_poll(d->card) < 0) {
			/* the requests in flight got their errors and the poll
			 * reset the card (the port waits meanwhile); if the reset
			 * failed, go on answering (new requests get INTERNAL
			 * errors) until stopped */
			char line[600];
			const char *msg = dp_card_fault_news(d->card, &d->fault_seen, line,
							     sizeof(line));

			if (msg) {
				fprintf(stderr, "nextcard serve: %s\n", msg);
				d->c.card_failed++;
			}
		}
		dp_proto_after_poll(d);
		if (t - last_tick >= tick) {
			last_tick = t;
			dp_proto_tick(d, dp_ns(d, t));
		}
		dp_tx_flush(d);
		if (!idle)
			continue;
		for (uint32_t i = d->sess.live_head; i; i = d->sess.s[i - 1].lnext)
			if (d->sess.s[i - 1].in_sched) {
				d->last_ours_tsc = t;
				break;
			}
		if (t - d->last_ours_tsc > idle)
			break;
	}
}

static const char *model_base(const char *dir, char *buf, size_t len)
{
	size_t n = strlen(dir);
	const char *b;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	b = dir + n;
	while (b > dir && b[-1] != '/')
		b--;
	snprintf(buf, len, "%.*s", (int)(dir + n - b), b);
	return buf;
}

static uint64_t lcore_mask(void)
{
	uint64_t mask = 0;
	unsigned lc;

	RTE_LCORE_FOREACH(lc) {
		int cpu = rte_lcore_to_cpu_id((int)lc);

		if (cpu >= 0 && cpu < 64)
			mask |= 1ull << cpu;
	}
	return mask;
}

int cmd_serve(int argc, char **argv)
{
	static struct nc_metrics metrics;
	struct serve_opts o = { .port = NC_DEFAULT_PORT, .queue = 64, .card = "emu",
				.dead_ms = 10000 };
	struct nc_sess_cfg scfg = NC_SESS_DEFAULT_CFG;
	struct dp_card_info ci;
	struct dp *d = NULL;
	struct timespec t0, t1;
	char err[512], ipbuf[INET_ADDRSTRLEN];
	int ret, rc = 1, port_up = 0, http = 0;

	inet_pton(AF_INET, "10.77.0.2", &o.ip);
	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		fprintf(stderr, "nextcard serve: EAL init failed: %s (check the EAL arguments"
			" before --)\n", rte_strerror(rte_errno));
		return 2;
	}
	argc -= ret;
	argv += ret;
	ret = parse_args(argc, argv, &o);
	if (ret) {
		rte_eal_cleanup();
		return ret == 1 ? 0 : ret;
	}
	d = rte_zmalloc_socket("nc_dp", sizeof(*d), RTE_CACHE_LINE_SIZE, rte_socket_id());
	if (!d) {
		fprintf(stderr, "nextcard serve: out of DPDK memory for the data-plane state\n");
		goto out;
	}
	d->m = &metrics;
	d->eos = -1;
	d->ip = o.ip;
	d->udp_port = rte_cpu_to_be_16(o.port);
	d->idle_exit_ns = o.idle_exit_ms * 1000000ull;
	d->loss_ppm = o.loss_ppm;
	d->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	model_base(o.model, d->model_name, sizeof(d->model_name));
	clock_init(d);
	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "nextcard serve: no DPDK port found (give one, e.g."
			" --vdev=net_af_packet0,iface=IF or --vdev=net_pcap0,rx_pcap=IN,tx_pcap=OUT)\n");
		goto out;
	}
	d->port_id = 0;
	RTE_ETH_FOREACH_DEV(d->port_id)
		break;
	/* The emulated card's CU threads default to the cores the DPDK lcores
	 * leave (a polling lcore and a CU thread on one core slow both). */
	static char emu_spec[32];
	if (!strcmp(o.card, "emu") && !getenv("NEXTCARD_THREADS")) {
		long nc = sysconf(_SC_NPROCESSORS_ONLN) - (long)rte_lcore_count();

		snprintf(emu_spec, sizeof(emu_spec), "emu:%ld", nc < 1 ? 1 : nc > 16 ? 16 : nc);
		o.card = emu_spec;
	}
	if (dp_card_open(&d->card, o.model, o.card, o.board, o.quant, o.ctx, &o.pool, o.queue,
			 lcore_mask(),
			 dp_card_event, err, sizeof(err))) {
		fprintf(stderr, "nextcard serve: model %s: %s\n", o.model, err);
		goto out;
	}
	dp_card_info(d->card, &ci);
	d->vocab = ci.vocab;
	d->ctx = ci.ctx;
	d->max_stop = ci.max_stop < 16 ? ci.max_stop : 16;
	if (dp_text_load(&d->tok, o.model, &d->eos, err, sizeof(err)))
		d->tok = NULL;	/* no usable tokenizer.json: id prompts only */
	scfg.max_streams = ci.slots + 2 * o.queue;
	scfg.tok_cap = d->ctx;
	scfg.text_cap = d->tok ? 16 * d->ctx : 8;
	scfg.dead_ns = o.dead_ms * 1000000ull;
	if (dp_proto_init(d, &scfg, err, sizeof(err)) || samples_init(d)) {
		fprintf(stderr, "nextcard serve: %s\n", *err ? err : "out of memory");
		goto out;
	}
	d->pool = rte_pktmbuf_pool_create("nc_mbuf", NB_MBUF, MBUF_CACHE, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (!d->pool) {
		fprintf(stderr, "nextcard serve: mbuf pool: %s (give EAL more memory: -m)\n",
			rte_strerror(rte_errno));
		goto out;
	}
	rte_mempool_obj_iter(d->pool, ip_align, NULL);
	if (port_init(d, err, sizeof(err))) {
		fprintf(stderr, "nextcard serve: %s\n", err);
		goto out;
	}
	port_up = 1;
	if (o.http_port) {
		if (dp_card_http_start(d->card, o.http_port, d->model_name, d->tok, d->m,
				       err, sizeof(err))) {
			fprintf(stderr, "nextcard serve: http port %u: %s\n", o.http_port, err);
			goto out;
		}
		http = 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	inet_ntop(AF_INET, &d->ip, ipbuf, sizeof(ipbuf));
	printf("nextcard serve: port %u mac " RTE_ETHER_ADDR_PRT_FMT " ip %s udp %u;"
	       " model %s (%s, %u slots, queue %u, ctx %u, vocab %u%s) loaded in %.1f ms;"
	       " lcore %u; http %s; ready\n",
	       d->port_id, RTE_ETHER_ADDR_BYTES(&d->mac), ipbuf, o.port, d->model_name,
	       ci.backend, ci.slots, o.queue, d->ctx, d->vocab,
	       d->tok ? ", tokenizer" : ", ids only", ci.load_ns / 1e6, rte_lcore_id(),
	       http ? "on" : "off");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dp_loop(d);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (http)
		dp_card_http_stop(d->card);
	dp_proto_drain(d);
	dp_tx_flush(d);
	rc = d->c.card_failed ? 1 : 0;
	if (d->c.card_failed)
		fprintf(stderr, "nextcard serve: the card failed; stopping\n");
	summary(d, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
out:
	if (port_up) {
		rte_eth_dev_stop(d->port_id);
		rte_eth_dev_close(d->port_id);
	}
	if (d) {
		dp_proto_fini(d);
		if (port_up)	/* every mbuf back: nothing held past shutdown */
			printf("stats mbufs_in_use_after_close=%u\n",
			       rte_mempool_in_use_count(d->pool));
		dp_card_close(d->card);
		dp_text_free(d->tok);
		free(d->s_ttft.v);
		free(d->s_itl.v);
		free(d->s_card.v);
		free(d->s_over.v);
		free(d->s_host.v);
		rte_mempool_free(d->pool);
		rte_free(d);
	}
	rte_eal_cleanup();
	return rc;
}
