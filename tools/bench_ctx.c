/* bench_ctx.c — decode time against context length, and what the prefix
 * cache does to time to first token, side by side in one run.
 *
 *   build/tools/bench_ctx [--model DIR] [--max N] [--plan CONFIG.json]
 *
 * One sequence at a time on the emulated card decodes 16 tokens after a
 * prompt of L = 1K, 8K, 32K (and 128K with --max 131072) positions.  Each
 * prompt extends the one before, so the prefix cache restores the earlier
 * prefill and the run prefills the longest context once.  For each L: decode
 * ms/token, HBM bytes read per token (the card's meter), the ratios to 1K,
 * and the floor of bytes the card must read (weights + state + KV) with its
 * ratio.  Then at 8K: time to first token cold (FW_SUB_NOCACHE) and warm (the
 * 8K prefix restored, 64 new positions).  Last, the same floor ratios for the
 * config --plan names (default: Qwen3-Next-80B-A3B, int4 experts, KV f32
 * and bf16):
 * what the per-token time of a card bound by HBM does against context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model/config.h"
#include "model/engine.h"
#include "model/image.h"
#include "model/quant.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct point {
	uint32_t len;
	double ms_tok, bytes_tok, ttft, restored;
};

/* Prompt ids[0..len), 17 new tokens; decode timed from the first token. */
static int run(struct nc_engine *e, const int32_t *ids, uint32_t len, uint32_t flags,
	       struct point *pt)
{
	struct nc_card_snap s0, s1;
	struct fw_res r;
	uint32_t seq, got = 0;
	double t0 = now(), t1 = 0;
	char err[256];

	if (nc_engine_submit(e, ids, len, 17, flags, NULL, 0, 0, &seq, err, sizeof(err))) {
		fprintf(stderr, "bench_ctx: %s\n", err);
		return -1;
	}
	memset(pt, 0, sizeof(*pt));
	pt->len = len;
	for (;;) {
		if (nc_engine_wait(e, &r, 3600000) <= 0) {
			fprintf(stderr, "bench_ctx: card stalled: %s\n", e->ctrl->error);
			return -1;
		}
		if (r.kind == FW_RES_ACK && r.op == FW_OP_SUBMIT)
			pt->restored = r.value;
		if (r.kind != FW_RES_TOKEN)
			continue;
		if (got++ == 0) {
			pt->ttft = now() - t0;
			nc_engine_snapshot(e, &s0);
			t1 = now();
		}
		if (r.flags & FW_RF_LAST)
			break;
	}
	nc_engine_snapshot(e, &s1);
	double rd = 0;
	uint64_t steps = s1.steps - s0.steps;

	for (int k = 0; k < KRNL_COUNT; k++)
		rd += (double)(s1.st.krnl_rd[k] - s0.st.krnl_rd[k]);
	if (!steps)
		return -1;
	pt->ms_tok = (now() - t1) * 1e3 / steps;
	pt->bytes_tok = rd / steps;
	return 0;
}

/* Weights + state a token at position pos reads at least. */
static double floor_at(const struct fw_model_cfg *c, uint32_t pos)
{
	return nc_active_floor(c) + nc_state_floor(c, pos);
}

static int plan(const char *path)
{
	static const uint32_t lens[] = { 1024, 8192, 32768, 131072, 262144 };
	struct fw_model_cfg c;
	struct nc_quant_plan q;
	char err[256];

	if (nc_config_load_path(path, &c, err, sizeof(err)) ||
	    nc_quant_plan_parse("experts=int4:64", &q, err, sizeof(err))) {
		fprintf(stderr, "bench_ctx: --plan %s: %s\n", path, err);
		return -1;
	}
	if (q.set[NC_TC_EXPERT])
		c.dt_expert = q.dt[NC_TC_EXPERT];
	printf("\nfloor for %s (experts int4:64), one sequence:\n", path);
	printf("%8s %14s %16s %8s %16s %8s %14s\n", "context", "weights B", "state+KV f32 B",
	       "x 1K", "state+KV bf16 B", "x 1K", "ms @ 460 GB/s");
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct fw_model_cfg b = c;
		double f, fb;

		c.dt_kv = KRNL_FMT_F32;
		b.dt_kv = KRNL_FMT_BF16;
		f = floor_at(&c, lens[i] - 1);
		fb = floor_at(&b, lens[i] - 1);
		printf("%8u %14.0f %16.0f %8.2f %16.0f %8.2f %14.2f\n", lens[i], nc_active_floor(&c),
		       nc_state_floor(&c, lens[i] - 1), f / floor_at(&c, lens[0] - 1),
		       nc_state_floor(&b, lens[i] - 1), fb / floor_at(&b, lens[0] - 1),
		       fb / 460e9 * 1e3);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct nc_engine_opts o = { .model_dir = "build/bench/long" };
	const char *plan_cfg = "tests/data/loader/qwen3-next-80b-a3b.config.json";
	uint32_t lens[4] = { 1024, 8192, 32768, 131072 }, nl = 3, max = 32768;
	struct point pts[4], cold, warm;
	struct nc_engine *e;
	char err[512];
	int32_t *ids;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc)
			o.model_dir = argv[++i];
		else if (!strcmp(argv[i], "--max") && i + 1 < argc)
			max = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--plan") && i + 1 < argc)
			plan_cfg = argv[++i];
		else {
			fprintf(stderr, "usage: bench_ctx [--model DIR] [--max N] [--plan CONFIG]\n");
			return 2;
		}
	}
	if (max >= 131072)
		nl = 4;
	o.ctx_limit = lens[nl - 1] + 64;
	if (nc_engine_open(&e, &o, err, sizeof(err))) {
		fprintf(stderr, "bench_ctx: %s\n", err);
		return 1;
	}
	ids = malloc(sizeof(*ids) * (lens[nl - 1] + 64));
	if (!ids)
		return 1;
	for (uint32_t i = 0; i < lens[nl - 1] + 64; i++)
		ids[i] = (int32_t)((i * 2654435761u >> 7) % e->cfg.vocab);
	printf("model %s, emulated card, one sequence, 16 decode tokens per context\n",
	       o.model_dir);
	printf("%8s %10s %14s %12s %10s %10s %14s %10s\n", "context", "restored", "prefill s",
	       "ms/token", "x 1K", "HBM B/tok", "floor B/tok", "floor x");
	for (uint32_t i = 0; i < nl; i++) {
		double f;

		if (run(e, ids, lens[i], 0, &pts[i])) {
			nc_engine_close(e);
			return 1;
		}
		f = floor_at(&e->cfg, lens[i] - 1);
		printf("%8u %10.0f %14.2f %12.3f %10.2f %10.0f %14.0f %10.2f\n", lens[i],
		       pts[i].restored, pts[i].ttft, pts[i].ms_tok, pts[i].ms_tok / pts[0].ms_tok,
		       pts[i].bytes_tok, f, f / floor_at(&e->cfg, lens[0] - 1));
	}
	/* TTFT at 8K + 64: cold, then with the 8K prefix restored */
	if (run(e, ids, 8192 + 64, FW_SUB_NOCACHE, &cold) || run(e, ids, 8192 + 64, 0, &warm)) {
		nc_engine_close(e);
		return 1;
	}
	printf("\ntime to first token, %u-position prompt: cold %.3f s, prefix cache %.3f s"
	       " (%.0f positions restored): x %.1f\n", 8192 + 64, cold.ttft, warm.ttft,
	       warm.restored, cold.ttft / warm.ttft);
	nc_engine_close(e);
	free(ids);
	return plan(plan_cfg) ? 1 : 0;
}
