/* cmd_http.c — `nextcard http`: the OpenAI-compatible HTTP API on its own,
 * without the DPDK data plane.  A poller thread drives the scheduler.
 *
 *   nextcard http --model DIR [--port 8080] [--bind 127.0.0.1] [--card emu|xrt[:N]] [--threads N]
 *                 [--board DTB] [--ctx N] [--queue N] [--max-tokens N]
 *                 [--max-body BYTES] [--name NAME] [--exit-after-ms N]
 *
 * Prints one "listening on" line to stdout once ready; stops on SIGINT or
 * SIGTERM (or after --exit-after-ms).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "api/http.h"
#include "api/metrics.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "model/engine.h"
#include "model/sched.h"
#include "text/tokenizer.h"

struct http_args {
	struct nc_engine_opts eo;
	struct nc_http_opts ho;
	uint32_t queue, exit_after_ms;
	char name[128];
};

struct poller {
	struct nc_sched *s;
	struct nc_engine *e;
	atomic_int stop;
	pthread_t thread;
};

static int usage(const char *why)
{
	fprintf(stderr, "nextcard http: %s (usage: nextcard http --model DIR [--port 8080] "
		"[--bind 127.0.0.1] [--card emu|xrt[:N]] [--threads N] [--board DTB] [--quant SPEC] [--ctx N] [--queue N] "
		"[--max-tokens N] [--max-body BYTES] [--name NAME] [--exit-after-ms N] "
		"[--max-conns N] [--max-conns-per-ip N] [--idle-timeout S] [--chat-template FILE] "
		"[--keys FILE] [--insecure-public] "
		NC_POOL_USAGE ")\n",
		why);
	return 2;
}

/* Model name: the last component of the model directory. */
static void default_name(const char *dir, char *out, size_t len)
{
	size_t n = strlen(dir);
	const char *b;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	for (b = dir + n; b > dir && b[-1] != '/'; b--)
		;
	snprintf(out, len, "%.*s", (int)(dir + n - b), b);
}

static int parse(int argc, char **argv, struct http_args *a)
{
	static const struct option opts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "port", required_argument, 0, 'p' },
		{ "bind", required_argument, 0, 'B' },
		{ "card", required_argument, 0, 'c' },
		{ "threads", required_argument, 0, 'j' },
		{ "board", required_argument, 0, 'b' },
		{ "quant", required_argument, 0, 'Q' },
		{ "ctx", required_argument, 0, 'x' },
		{ "queue", required_argument, 0, 'q' },
		{ "max-tokens", required_argument, 0, 'n' },
		{ "max-body", required_argument, 0, 'L' },
		{ "name", required_argument, 0, 'N' },
		{ "exit-after-ms", required_argument, 0, 'E' },
		{ "max-conns", required_argument, 0, 'C' },
		{ "max-conns-per-ip", required_argument, 0, 'I' },
		{ "idle-timeout", required_argument, 0, 'T' },
		{ "chat-template", required_argument, 0, 'J' },
		{ "script-output", required_argument, 0, 'W' },
		{ "keys", required_argument, 0, 'A' },
		{ "insecure-public", no_argument, 0, 'U' },
		NC_POOL_OPTS,
		{ 0, 0, 0, 0 },
	};
	char err[160];
	uint32_t v;
	int o;

	a->ho.port = 8080;
	a->ho.bind = "127.0.0.1";
	a->queue = 64;
	a->ho.max_tokens = 1024;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int po = nc_pool_opt(o, optarg, &a->eo, err, sizeof(err));

		if (po < 0)
			return usage(err);
		if (po)
			continue;
		switch (o) {
		case 'm': a->eo.model_dir = optarg; break;
		case 'B': a->ho.bind = optarg; break;
		case 'J': a->ho.chat_template = optarg; break;
		case 'W': a->ho.script_output = optarg; break;
		case 'A': a->ho.keys = optarg; break;
		case 'U': a->ho.insecure_public = 1; break;
		case 'c': a->eo.card = optarg; break;
		case 'j':
			if (nc_parse_u32(optarg, 1, 16, &a->eo.threads))
				return usage("--threads wants a number 1..16");
			break;
		case 'b': a->eo.board = optarg; break;
		case 'Q': a->eo.quant = optarg; break;
		case 'N':
			if (!optarg[0] || strlen(optarg) >= sizeof(a->name) || strpbrk(optarg, "\"\\/ "))
				return usage("--name wants a plain name (no quotes, slashes or spaces)");
			snprintf(a->name, sizeof(a->name), "%s", optarg);
			break;
		case 'p':
			if (nc_parse_u32(optarg, 0, 65535, &v))
				return usage("--port wants a number 0..65535 (0: any free port)");
			a->ho.port = (uint16_t)v;
			break;
		case 'x':
			if (nc_parse_u32(optarg, 1, 1u << 20, &a->eo.ctx_limit))
				return usage("--ctx wants a number 1..1048576");
			break;
		case 'q':
			if (nc_parse_u32(optarg, 0, 4096, &a->queue))
				return usage("--queue wants a number 0..4096");
			break;
		case 'n':
			if (nc_parse_u32(optarg, 1, 1u << 20, &a->ho.max_tokens))
				return usage("--max-tokens wants a number 1..1048576");
			break;
		case 'L':
			if (nc_parse_u32(optarg, 64, 1u << 30, &v))
				return usage("--max-body wants a number of bytes 64..1073741824");
			a->ho.max_body = v;
			break;
		case 'E':
			if (nc_parse_u32(optarg, 1, UINT32_MAX, &a->exit_after_ms))
				return usage("--exit-after-ms wants a number >= 1");
			break;
		case 'C':
			if (nc_parse_u32(optarg, 1, 65536, &a->ho.max_conns))
				return usage("--max-conns wants a number 1..65536");
			break;
		case 'I':
			if (nc_parse_u32(optarg, 1, 65536, &a->ho.max_conns_per_ip))
				return usage("--max-conns-per-ip wants a number 1..65536");
			break;
		case 'T':
			if (nc_parse_u32(optarg, 1, 86400, &a->ho.idle_timeout_s))
				return usage("--idle-timeout wants seconds 1..86400");
			break;
		default:
			return usage("unknown or incomplete option");
		}
	}
	if (optind < argc)
		return usage("unexpected argument");
	if (!a->eo.model_dir)
		return usage("--model is required");
	if (!a->name[0])
		default_name(a->eo.model_dir, a->name, sizeof(a->name));
	a->ho.model_name = a->name;
	return 0;
}

/* The scheduler's one poller: spins while events flow, backs off when idle. */
static void *poll_main(void *arg)
{
	struct poller *p = arg;
	unsigned idle = 0;
	struct nc_fault_seen seen = { 0 };
	char line[600];

	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		int n = nc_sched_poll(p->s);

		if (n < 0) {	/* the card failed; nc_sched_poll reset it unless told not to */
			const char *msg = nc_sched_fault_news(p->s, &seen, line, sizeof(line));

			if (msg)
				fprintf(stderr, "nextcard http: %s\n", msg);
			usleep(10000);
			continue;
		}
		if (n > 0) {
			idle = 0;
			continue;
		}
		/* 10 us doubling to 200 us; 2 ms after ~2 s without events */
		idle += idle < 100000;
		usleep(idle > 10000 ? 2000 : idle < 5 ? 10u << idle : 200);
	}
	return NULL;
}

/* Wait for SIGINT/SIGTERM (blocked in every thread) or the time limit;
 * SIGHUP loads the keys file again. */
static void wait_for_stop(const sigset_t *set, uint32_t exit_after_ms, struct nc_http *h)
{
	struct timespec ts = { exit_after_ms / 1000, (long)(exit_after_ms % 1000) * 1000000L };

	for (;;) {
		int sig = exit_after_ms ? sigtimedwait(set, NULL, &ts) : sigwaitinfo(set, NULL);

		if (sig == SIGHUP) {
			char err[256];

			if (nc_http_reload_keys(h, err, sizeof(err)))
				fprintf(stderr, "nextcard http: SIGHUP: keys not reloaded: %s\n", err);
			else
				fprintf(stderr, "nextcard http: SIGHUP: keys reloaded\n");
			continue;
		}
		if (sig > 0 || (sig < 0 && exit_after_ms))
			return;	/* a signal, or the time is up (EAGAIN; EINTR ends early) */
	}
}

int cmd_http(int argc, char **argv)
{
	struct http_args a = { 0 };
	struct nc_engine *e = NULL;
	struct nc_tokenizer *tok = NULL;
	struct nc_sched *s = NULL;
	struct nc_metrics *m = NULL;
	struct nc_http *h = NULL;
	struct poller p = { 0 };
	int started = 0, rc = parse(argc, argv, &a);
	char err[512];
	sigset_t set;

	if (rc)
		return rc;
	rc = 1;
	/* before any thread exists, so that only sigwait sees them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	a.eo.verbose = 1;
	if (nc_engine_open(&e, &a.eo, err, sizeof(err))) {
		fprintf(stderr, "nextcard http: %s\n", err);
		goto out;
	}
	if (nc_tok_load(&tok, a.eo.model_dir, err, sizeof(err))) {
		fprintf(stderr, "nextcard http: %s\n", err);
		goto out;
	}
	s = nc_sched_new(e, a.queue);
	m = calloc(1, sizeof(*m));
	if (!s || !m) {
		fprintf(stderr, "nextcard http: out of memory\n");
		goto out;
	}
	p.s = s;
	p.e = e;
	if (pthread_create(&p.thread, NULL, poll_main, &p)) {
		fprintf(stderr, "nextcard http: cannot start the poller thread\n");
		goto out;
	}
	started = 1;
	if (nc_http_start(&h, &a.ho, s, e, tok, m, err, sizeof(err))) {
		fprintf(stderr, "nextcard %s\n", err);
		goto out;
	}
	printf("nextcard http: listening on http://%s%s%s:%u (model %s, card %s, %u slots, "
	       "queue %u, context %u)\n", strchr(a.ho.bind, ':') ? "[" : "", a.ho.bind,
	       strchr(a.ho.bind, ':') ? "]" : "", nc_http_port(h), a.name, shim_backend(e->card),
	       e->n_seqs, a.queue, e->ctrl->ctx);
	if (a.ho.keys)
		printf("nextcard http: API keys from %s (SIGHUP reloads them)\n", a.ho.keys);
	else
		printf("nextcard http: no API keys (--keys FILE): %s\n", a.ho.insecure_public ?
		       "open to anyone who reaches the port (--insecure-public)" :
		       "loopback only");
	fflush(stdout);
	wait_for_stop(&set, a.exit_after_ms, h);
	nc_http_stop(h);	/* the poller still runs, so cancelled requests drain */
	printf("nextcard http: stopped\n");
	rc = 0;
out:
	if (started) {
		atomic_store(&p.stop, 1);
		pthread_join(p.thread, NULL);
	}
	nc_sched_free(s);
	free(m);
	nc_tok_free(tok);
	nc_engine_close(e);
	return rc;
}
