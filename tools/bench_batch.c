/* bench_batch.c — what batching buys on the card: the same decode work run
 * with 1, 2, 4, 8, 16, 32 and 64 concurrent sequences, side by side in one
 * run (a step takes up to 64 rows, in kernel calls of 16).
 *
 *   build/tools/bench_batch [--model DIR] [--steps N]
 *
 * For each batch size B it submits B sequences (distinct prompts), lets them
 * decode N tokens each and reports, over the decode steps only (from the
 * moment every sequence has its first token), wall time per step, tokens/s,
 * HBM bytes read per step and per token (from the emulated card's traffic
 * counters), and the ratios against B = 1.  On a real card a step is bound by HBM
 * traffic, so bytes per token is the figure that carries over; the emulator's
 * wall time is C-simulation compute and only shows the same trend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model/engine.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct row {
	uint32_t b;
	double s_per_step, tok_per_s, bytes_step, bytes_tok, expert_bytes_tok;
};

/* B sequences, each decoding `steps` tokens; measured from the moment every
 * sequence has its first token (prefill done) to the end: decode only. */
static int run(struct nc_engine *e, uint32_t b, uint32_t steps, struct row *out)
{
	char err[256];
	struct nc_card_snap s0, s1;
	struct fw_res r;
	uint32_t slot, done = 0, first = 0, tokens = 0;
	int32_t ids[4];
	double t0 = 0;

	for (uint32_t s = 0; s < b; s++) {
		for (int i = 0; i < 4; i++)
			ids[i] = (int32_t)((s * 977 + i * 131 + 7) % e->cfg.vocab);
		if (nc_engine_submit(e, ids, 4, steps + 1, 0, NULL, 0, 0, &slot, err, sizeof(err))) {
			fprintf(stderr, "bench_batch: %s\n", err);
			return -1;
		}
	}
	while (done < b) {
		if (nc_engine_wait(e, &r, 600000) <= 0) {
			fprintf(stderr, "bench_batch: card stalled: %s\n", e->ctrl->error);
			return -1;
		}
		if (r.kind != FW_RES_TOKEN)
			continue;
		if (r.flags & FW_RF_FIRST && ++first == b) {
			nc_engine_snapshot(e, &s0);
			t0 = now();
		}
		done += (r.flags & FW_RF_LAST) != 0;
	}
	nc_engine_snapshot(e, &s1);
	double dt = now() - t0, rd = 0;
	uint64_t nsteps = s1.steps - s0.steps;
	tokens = (uint32_t)(s1.rows - s0.rows);	/* decode rows: one token each */
	for (int k = 0; k < KRNL_COUNT; k++)
		rd += (double)(s1.st.krnl_rd[k] - s0.st.krnl_rd[k]);
	if (!nsteps || !tokens) {
		fprintf(stderr, "bench_batch: no decode step measured (raise --steps)\n");
		return -1;
	}
	out->b = b;
	out->s_per_step = dt / nsteps;
	out->tok_per_s = tokens / dt;
	out->bytes_step = rd / nsteps;
	out->bytes_tok = rd / tokens;
	out->expert_bytes_tok = (double)(s1.st.expert_weight_bytes - s0.st.expert_weight_bytes) / tokens;
	return 0;
}

int main(int argc, char **argv)
{
	struct nc_engine_opts o = { .model_dir = "assets/fortune-13m", .ctx_limit = 512 };
	static const uint32_t sizes[] = { 1, 2, 4, 8, 16, 32, 64 };
	struct row rows[7];
	uint32_t steps = 32;
	struct nc_engine *e;
	char err[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc)
			o.model_dir = argv[++i];
		else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = (uint32_t)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_batch [--model DIR] [--steps N]\n");
			return 2;
		}
	}
	if (steps < 1 || steps > 4000) {
		fprintf(stderr, "bench_batch: --steps wants 1..4000\n");
		return 2;
	}
	if (nc_engine_open(&e, &o, err, sizeof(err))) {
		fprintf(stderr, "bench_batch: %s\n", err);
		return 1;
	}
	printf("model %s, %u decode tokens per sequence, emulated card\n", o.model_dir, steps);
	printf("%5s %12s %12s %14s %14s %16s %10s %10s\n", "seqs", "ms/step", "tokens/s",
	       "HBM B/step", "HBM B/token", "expert B/token", "tok/s x", "B/tok x");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (run(e, sizes[i], steps, &rows[i])) {
			nc_engine_close(e);
			return 1;
		}
		printf("%5u %12.3f %12.1f %14.0f %14.0f %16.0f %10.2f %10.3f\n", rows[i].b,
		       rows[i].s_per_step * 1e3, rows[i].tok_per_s, rows[i].bytes_step,
		       rows[i].bytes_tok, rows[i].expert_bytes_tok,
		       rows[i].tok_per_s / rows[0].tok_per_s, rows[i].bytes_tok / rows[0].bytes_tok);
	}
	nc_engine_close(e);
	return 0;
}
