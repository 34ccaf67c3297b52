/* bench_spec.c — what MTP speculative decoding buys, measured side by side
 * in one run, then modelled for the 80B.
 *
 *   build/tools/bench_spec [--model DIR] [--config 80B-config.json]
 *
 * Measured (emulated card, fortune-13m and its trained MTP head): the four
 * reference prompts decode their reference continuations (greedy) at batch 1
 * (one at a time) and batch 8 (each prompt twice, together), plain and with
 * --speculative mtp.  Over the decode steps only: tokens/s, HBM bytes read per
 * emitted token (the card's traffic counters), tokens per step, acceptance.
 * On a real card a step is bound by its HBM bytes, so bytes per emitted token
 * is the figure that carries over; the emulator's wall time is C simulation.
 *
 * Modelled (the 80B config): weight bytes per emitted token of a plain step
 * and of a step verifying one draft per row (nc_step_floor), at batch 1 and
 * 16, for acceptance rates a (tokens per step 1 + a).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model/config.h"
#include "model/engine.h"
#include "model/image.h"
#include "krnl_types.h"

#define REF "/reference/mtp-reference.safetensors"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct prompt {
	int32_t *ids;
	uint32_t n, gen;
};

struct tally {
	double secs, bytes, tokens, steps, drafted, accepted;
};

/* One round: the prompts together; decode window from the moment each has its
 * first token to the end. */
static int round_of(struct nc_engine *e, const struct prompt *p, uint32_t np, struct tally *t)
{
	struct nc_card_snap s0, s1;
	uint32_t slot, first = 0, done = 0;
	char err[256];
	double t0 = 0;

	for (uint32_t i = 0; i < np; i++)
		if (nc_engine_submit(e, p[i].ids, p[i].n, p[i].gen, 0, NULL, 0, 0, &slot, err,
				     sizeof(err))) {
			fprintf(stderr, "bench_spec: %s\n", err);
			return -1;
		}
	while (done < np) {
		struct fw_res r;

		if (nc_engine_wait(e, &r, 600000) <= 0) {
			fprintf(stderr, "bench_spec: card stalled: %s\n", e->ctrl->error);
			return -1;
		}
		if (r.kind != FW_RES_TOKEN)
			continue;
		if ((r.flags & FW_RF_FIRST) && ++first == np) {
			nc_engine_snapshot(e, &s0);
			t0 = now();
		}
		done += !!(r.flags & FW_RF_LAST);
	}
	nc_engine_snapshot(e, &s1);
	t->secs += now() - t0;
	for (int k = 0; k < KRNL_COUNT; k++)
		t->bytes += (double)(s1.st.krnl_rd[k] - s0.st.krnl_rd[k]);
	t->tokens += (double)(s1.tokens - s0.tokens);
	t->steps += (double)(s1.steps - s0.steps);
	t->drafted += (double)(s1.drafted - s0.drafted);
	t->accepted += (double)(s1.accepted - s0.accepted);
	return 0;
}

static int measure(const char *dir, uint32_t spec, uint32_t batch, const struct prompt *p,
		   uint32_t np, struct tally *t)
{
	struct nc_engine_opts o = { .model_dir = dir, .spec = spec, .prefix_every = NC_PREFIX_OFF };
	struct prompt q[8];
	struct nc_engine *e;
	char err[512];
	int rc = 0;

	memset(t, 0, sizeof(*t));
	if (nc_engine_open(&e, &o, err, sizeof(err))) {
		fprintf(stderr, "bench_spec: %s\n", err);
		return -1;
	}
	if (batch == 1) {
		for (uint32_t i = 0; !rc && i < np; i++)
			rc = round_of(e, &p[i], 1, t);
	} else {
		for (uint32_t i = 0; i < batch && i < 8; i++)
			q[i] = p[i % np];
		rc = round_of(e, q, batch < 8 ? batch : 8, t);
	}
	nc_engine_close(e);
	return rc;
}

static int load_prompts(const char *dir, struct prompt *p, uint32_t *np)
{
	static const char *sfx[4] = { "0", "1", "2", "long" };
	char path[512], err[256], name[32];
	struct st_set st = { 0 };

	snprintf(path, sizeof(path), "%s%s", dir, REF);
	if (st_open_file(&st, path, err, sizeof(err))) {
		fprintf(stderr, "bench_spec: %s\n", err);
		return -1;
	}
	*np = 0;
	for (int i = 0; i < 4; i++) {
		const struct st_tensor *t, *pl;
		int64_t v;

		snprintf(name, sizeof(name), "tokens_%s", sfx[i]);
		t = st_find(&st, name);
		snprintf(name, sizeof(name), "prompt_len_%s", sfx[i]);
		pl = st_find(&st, name);
		if (!t || !pl || t->dtype != ST_I64)
			continue;
		memcpy(&v, pl->data, 8);
		p[*np].n = (uint32_t)v;
		p[*np].gen = (uint32_t)t->shape[0] - p[*np].n;
		p[*np].ids = malloc(p[*np].n * sizeof(int32_t));
		for (uint32_t k = 0; k < p[*np].n; k++) {
			memcpy(&v, (const uint8_t *)t->data + 8 * k, 8);
			p[*np].ids[k] = (int32_t)v;
		}
		(*np)++;
	}
	st_close(&st);
	return *np ? 0 : -1;
}

static void model_80b(const char *cfg_dir, double a_ours)
{
	struct fw_model_cfg c;
	char err[256];
	const double as[3] = { a_ours, 0.65, 0.88 };
	const char *an[3] = { "ours (fortune-13m)", "0.65 (Qwen MTP, pooled)", "0.88 (Qwen MTP, K=1)" };
	static const uint32_t batch[2] = { 1, 16 };

	if (nc_config_load_path(cfg_dir, &c, err, sizeof(err))) {
		fprintf(stderr, "bench_spec: %s (no 80B model)\n", err);
		return;
	}
	c.dt_kv = KRNL_FMT_BF16;
	printf("\nmodelled, Qwen3-Next-80B-A3B (%s), weights bf16: weight bytes per emitted token\n",
	       cfg_dir);
	printf("(one step of B rows; with MTP each row also verifies a draft: 2B rows of"
	       " experts, the head's layer and a second lm_head pass)\n");
	printf("%-6s %-12s %14s %14s %10s\n", "batch", "mode", "bytes/step", "bytes/token",
	       "vs plain");
	for (int bi = 0; bi < 2; bi++) {
		uint32_t b = batch[bi];
		double plain = nc_step_floor(&c, b, 0), spec = nc_step_floor(&c, b, 1);

		printf("%-6u %-12s %12.0f M %12.0f M %10s   (%.1f distinct experts a layer)\n", b,
		       "plain", plain / 1e6, plain / b / 1e6, "1.000", nc_distinct_experts(&c, b));
		for (int i = 0; i < 3; i++) {
			double per = spec / (b * (1.0 + as[i]));

			printf("%-6u %-12s %12.0f M %12.0f M %10.3f   a = %.3f, %s; %.1f experts\n", b,
			       "mtp", spec / 1e6, per / 1e6, (plain / b) / per, as[i], an[i],
			       nc_distinct_experts(&c, 2.0 * b));
		}
	}
}

int main(int argc, char **argv)
{
	const char *dir = "assets/fortune-13m";
	const char *big = "tests/data/loader/qwen3-next-80b-a3b.config.json";
	struct prompt p[4];
	struct tally t[2][2];
	static const uint32_t batch[2] = { 1, 8 };
	uint32_t np;
	double a_ours = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--model"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--config"))
			big = argv[i + 1];
	}
	if (load_prompts(dir, p, &np))
		return 1;
	printf("bench_spec: %s, %u reference prompts (greedy), decode steps only\n", dir, np);
	printf("%-6s %-6s %10s %16s %12s %12s %14s\n", "batch", "mode", "tokens/s",
	       "HBM B/token", "tok/step", "acceptance", "B/token ratio");
	for (int bi = 0; bi < 2; bi++) {
		for (uint32_t s = 0; s < 2; s++)
			if (measure(dir, s, batch[bi], p, np, &t[bi][s]))
				return 1;
		for (uint32_t s = 0; s < 2; s++) {
			const struct tally *x = &t[bi][s];
			double bt = x->bytes / x->tokens, b0 = t[bi][0].bytes / t[bi][0].tokens;

			printf("%-6u %-6s %10.1f %16.0f %12.3f %12s %14.3f\n", batch[bi],
			       s ? "mtp" : "plain", x->tokens / x->secs, bt, x->tokens / x->steps,
			       s ? "" : "-", b0 / bt);
			if (s) {
				printf("%-6s %-6s %10s %16s %12s %11.1f%%  (%0.f of %.0f drafts)\n", "", "",
				       "", "", "", 100.0 * x->accepted / x->drafted, x->accepted,
				       x->drafted);
				if (bi == 0)
					a_ours = x->accepted / x->drafted;
			}
		}
	}
	printf("speed-up of mtp over plain, tokens/s: batch 1 %.3f, batch 8 %.3f (emulated card)\n",
	       (t[0][1].tokens / t[0][1].secs) / (t[0][0].tokens / t[0][0].secs),
	       (t[1][1].tokens / t[1][1].secs) / (t[1][0].tokens / t[1][0].secs));
	{
		/* the step model against the counters, batch 1: bytes of a step
		 * that verifies a draft over a plain step */
		struct fw_model_cfg c;
		char err[256];

		if (!nc_config_load(dir, &c, err, sizeof(err))) {
			c.dt_attn = c.dt_expert = c.dt_shared = c.dt_head = c.dt_router = KRNL_FMT_BF16;
			printf("step bytes, mtp over plain, batch 1: measured %.3f, modelled %.3f"
			       " (weights only, experts routed independently)\n",
			       (t[0][1].bytes / t[0][1].steps) / (t[0][0].bytes / t[0][0].steps),
			       nc_step_floor(&c, 1, 1) / nc_step_floor(&c, 1, 0));
		}
	}
	model_80b(big, a_ours);
	for (uint32_t i = 0; i < np; i++)
		free(p[i].ids);
	return 0;
}
