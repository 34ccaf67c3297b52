/* nextcard_cli.c — `nextcard-cli`: send one request, stream its tokens.
 *
 * Tokens go to stdout as they arrive; latency figures go to stderr at the
 * end. Exit 0 on a finished generation, 1 on a failure (one line on
 * stderr), 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/client.h"

#define MAX_IDS		65536

struct cli {
	const char *host;
	uint16_t port;
	const char *text;
	uint32_t *ids;
	uint32_t n_ids;
	struct nc_request rq;
	struct nc_client_opts opts;
	const char *stop[NC_MAX_STOP_STR];	/* --stop, in order */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nextcard-cli [--host H] [--port P] (--ids 1,2,3 | \"text prompt\")\n"
		"                    [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
		"                    [--seed S] [--model NAME] [--timeout-ms MS]\n"
		"                    [--stop STR]... (up to %u)\n"
		"Streams tokens to stdout; TTFT and inter-token latency go to stderr.\n"
		"--stop ends generation (reason stop) where the text contains STR; the\n"
		"text is cut before it (1..%u bytes of UTF-8 each).\n"
		"Defaults: --host 127.0.0.1 --port %u --max-tokens 128 --temperature 0\n"
		"          --top-k 0 (off) --top-p 1 --timeout-ms 10000 (silence allowed)\n",
		NC_MAX_STOP_STR, NC_MAX_STOP_STR_LEN, NC_DEFAULT_PORT);
}

static int bad(const char *opt, const char *val)
{
	fprintf(stderr, "nextcard-cli: invalid value for --%s: '%s' (see --help)\n",
		opt, val);
	return 2;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_float(const char *s, float lo, float hi, float *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = (float)v;
	return 0;
}

/* "1,2,3" -> ids; no empty items, each a u32. */
static int parse_ids(const char *s, uint32_t *ids, uint32_t *n)
{
	const char *p = s;
	char *end;

	*n = 0;
	for (;;) {
		unsigned long long v;

		if (*p < '0' || *p > '9' || *n >= MAX_IDS)
			return -1;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno || v > UINT32_MAX)
			return -1;
		ids[(*n)++] = (uint32_t)v;
		if (!*end)
			return 0;
		if (*end != ',')
			return -1;
		p = end + 1;
	}
}

enum { O_HOST = 1, O_PORT, O_IDS, O_MAXTOK, O_TEMP, O_TOPK, O_TOPP, O_SEED,
       O_MODEL, O_TIMEOUT, O_STOP, O_HELP };

static int parse_opt(struct cli *c, int opt, const char *name, const char *v)
{
	uint64_t u;

	switch (opt) {
	case O_HOST: c->host = v; return 0;
	case O_MODEL: c->rq.model = v; return 0;
	case O_PORT:
		if (parse_u64(v, 65535, &u) || !u)
			return bad(name, v);
		c->port = (uint16_t)u;
		return 0;
	case O_IDS:
		return parse_ids(v, c->ids, &c->n_ids) || !c->n_ids ?
		       bad(name, v) : 0;
	case O_MAXTOK:
		if (parse_u64(v, UINT32_MAX, &u) || !u)
			return bad(name, v);
		c->rq.s.max_tokens = (uint32_t)u;
		return 0;
	case O_TEMP:
		return parse_float(v, 0.0f, 100.0f, &c->rq.s.temperature) ?
		       bad(name, v) : 0;
	case O_TOPP:
		if (parse_float(v, 0.0f, 1.0f, &c->rq.s.top_p) ||
		    c->rq.s.top_p <= 0.0f)
			return bad(name, v);
		return 0;
	case O_TOPK:
		if (parse_u64(v, UINT32_MAX, &u))
			return bad(name, v);
		c->rq.s.top_k = (uint32_t)u;
		return 0;
	case O_SEED:
		if (parse_u64(v, UINT64_MAX, &u))
			return bad(name, v);
		c->rq.s.seed = u;
		c->rq.s.flags |= NC_RQ_SEED;
		return 0;
	case O_TIMEOUT:
		if (parse_u64(v, 3600000, &u) || !u)
			return bad(name, v);
		c->opts.idle_timeout_ms = (unsigned)u;
		return 0;
	case O_STOP:
		if (!*v || strlen(v) > NC_MAX_STOP_STR_LEN ||
		    !nc_utf8_valid((const uint8_t *)v, strlen(v)))
			return bad(name, v);
		if (c->rq.n_stop_str == NC_MAX_STOP_STR) {
			fprintf(stderr, "nextcard-cli: at most %u --stop strings\n",
				NC_MAX_STOP_STR);
			return 2;
		}
		c->stop[c->rq.n_stop_str++] = v;
		c->rq.stop_str = c->stop;
		return 0;
	}
	if (opt == O_HELP) {
		usage(stdout);
		return -1;
	}
	fprintf(stderr, "nextcard-cli: unknown option or missing value: '%s' (see --help)\n",
		name);
	return 2;
}

static int parse_args(struct cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "ids", required_argument, NULL, O_IDS },
		{ "max-tokens", required_argument, NULL, O_MAXTOK },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "top-k", required_argument, NULL, O_TOPK },
		{ "top-p", required_argument, NULL, O_TOPP },
		{ "seed", required_argument, NULL, O_SEED },
		{ "model", required_argument, NULL, O_MODEL },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "stop", required_argument, NULL, O_STOP },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int opt, idx, err;

	opterr = 0;	/* our own one-line messages */
	while ((opt = getopt_long(argc, argv, "", lo, &idx)) != -1) {
		err = parse_opt(c, opt, opt > 0 && opt <= O_HELP ?
				lo[opt - 1].name : argv[optind - 1], optarg);
		if (err)
			return err;
	}
	if (optind < argc)
		c->text = argv[optind++];
	if (optind < argc || !c->text == !c->n_ids) {
		fprintf(stderr, "nextcard-cli: give exactly one prompt: --ids or a text argument (see --help)\n");
		return 2;
	}
	if (c->text && (!*c->text || !nc_utf8_valid((const uint8_t *)c->text,
						     strlen(c->text)))) {
		fprintf(stderr, "nextcard-cli: the text prompt must be non-empty UTF-8\n");
		return 2;
	}
	return 0;
}

struct out {
	int ids_mode;	/* prompt was ids: print ids */
	int pkt_text;	/* current packet carried a text piece */
	uint32_t n;
};

/* Text prompts print the server's text pieces (a text prompt is only accepted
 * by a server that detokenizes; a special token's piece is empty); id prompts
 * print ids. */
static int on_token(void *user, const struct nc_token_event *ev)
{
	struct out *o = user;

	o->pkt_text = !o->ids_mode;
	if (o->pkt_text) {
		if (ev->text_len)
			fwrite(ev->text, 1, ev->text_len, stdout);
	} else
		printf("%s%u", o->n ? "," : "", ev->id);
	o->n++;
	fflush(stdout);
	return 0;
}

static void print_stats(const struct nc_gen_result *r)
{
	fprintf(stderr,
		"finish=%s prompt_tokens=%u completion_tokens=%u\n"
		"ttft_ms=%.3f itl_ms p50=%.3f p90=%.3f p99=%.3f max=%.3f (n=%u)\n"
		"total_ms=%.3f packets rx=%u tx=%u resent_requests=%u out_of_order=%u duplicates=%u\n",
		nc_finish_name(r->finish), r->prompt_tokens, r->completion_tokens,
		r->ttft_ns / 1e6, r->itl_p50_ns / 1e6, r->itl_p90_ns / 1e6,
		r->itl_p99_ns / 1e6, r->itl_max_ns / 1e6, r->n_itl,
		r->total_ns / 1e6, r->pkts_rx, r->pkts_tx,
		r->req_sends ? r->req_sends - 1 : 0, r->ooo_rx, r->dup_rx);
}

static int fail(int err, const struct nc_gen_result *r)
{
	if (err == -NC_E_SERVER)
		fprintf(stderr, "nextcard-cli: server error: %s%s%s%s\n",
			nc_wire_err_name(r->err_code), *r->err_msg ? " (" : "",
			r->err_msg, *r->err_msg ? ")" : "");
	else
		fprintf(stderr, "nextcard-cli: %s\n", nc_strerror(err));
	return 1;
}

static int run(struct cli *c)
{
	struct nc_gen_result res;
	struct nc_client *cl;
	struct out o = { .ids_mode = !c->text };
	int err;

	if (c->text) {
		c->rq.text = c->text;
		c->rq.text_len = (uint32_t)strlen(c->text);
		c->rq.s.flags |= NC_RQ_TEXT_OUT;
	} else {
		c->rq.prompt = c->ids;
		c->rq.n_prompt = c->n_ids;
	}
	err = nc_client_open(&cl, c->host, c->port, &c->opts);
	if (err) {
		fprintf(stderr, "nextcard-cli: %s:%u: %s\n", c->host, c->port,
			nc_strerror(err));
		return 1;
	}
	memset(&res, 0, sizeof(res));
	err = nc_client_generate(cl, &c->rq, on_token, &o, &res);
	nc_client_close(cl);
	if (o.n)
		putchar('\n');
	if (err)
		return fail(err, &res);
	print_stats(&res);
	if (res.finish == NC_FIN_ERROR) {
		fprintf(stderr, "nextcard-cli: generation failed: %s\n",
			nc_wire_err_name(res.err_code));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint32_t ids[MAX_IDS];
	struct cli c = {
		.host = "127.0.0.1", .port = NC_DEFAULT_PORT, .ids = ids,
		.rq = { .s = { .max_tokens = 128, .temperature = 0.0f,
			       .top_p = 1.0f } },
	};
	int err = parse_args(&c, argc, argv);

	if (err)
		return err < 0 ? 0 : err;
	return run(&c);
}
