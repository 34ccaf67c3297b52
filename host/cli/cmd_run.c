/* cmd_run.c — `nextcard score` and `nextcard generate`: one sequence through
 * the card, teacher-forced or greedy.
 *
 *   nextcard score    --model DIR --ids 5,17,42 --logits-out FILE [--mtp-logits-out FILE]
 *   nextcard generate --model DIR --ids 5,17,42 --max-new N [--stats] [--stop-ids 1,2]
 * Common: [--card emu|xrt[:N]] [--threads N] [--board DTB] [--quant SPEC] [--ctx N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "model/engine.h"
#include "model/sched.h"
#include "model/image.h"
#include "krnl_types.h"

struct run_args {
	struct nc_engine_opts eo;
	int32_t *ids, *stop;
	uint32_t n_ids, n_stop, max_new;
	const char *logits_out, *mtp_out;
	int stats;
	float temperature, top_p;
	uint32_t top_k;
	uint64_t seed;
};

static int usage(const char *cmd, const char *why)
{
	fprintf(stderr, "nextcard %s: %s (usage: nextcard %s --model DIR --ids 1,2,3 %s"
		"[--card emu|xrt[:N]] [--threads N] [--board DTB] [--quant int8|int4[:G]|SPEC] [--ctx N] "
		NC_POOL_USAGE ")\n",
		cmd, why, cmd,
		strcmp(cmd, "score") ? "--max-new N [--stats] [--stop-ids 1,2] [--temperature T --top-k K --top-p P --seed S] "
				     : "--logits-out FILE and/or --mtp-logits-out FILE ");
	return 2;
}

static int parse(const char *cmd, int argc, char **argv, struct run_args *a)
{
	static const struct option opts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "ids", required_argument, 0, 'i' },
		{ "card", required_argument, 0, 'c' },
		{ "threads", required_argument, 0, 'j' },
		{ "board", required_argument, 0, 'b' },
		{ "quant", required_argument, 0, 'Q' },
		{ "ctx", required_argument, 0, 'x' },
		{ "max-new", required_argument, 0, 'n' },
		{ "logits-out", required_argument, 0, 'o' },
		{ "mtp-logits-out", required_argument, 0, 'M' },
		{ "stop-ids", required_argument, 0, 's' },
		{ "stats", no_argument, 0, 'S' },
		{ "temperature", required_argument, 0, 'T' },
		{ "top-k", required_argument, 0, 'K' },
		{ "top-p", required_argument, 0, 'P' },
		{ "seed", required_argument, 0, 'D' },
		NC_POOL_OPTS,
		{ 0, 0, 0, 0 },
	};
	char err[256];
	int o;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int po = nc_pool_opt(o, optarg, &a->eo, err, sizeof(err));

		if (po < 0)
			return usage(cmd, err);
		if (po)
			continue;
		switch (o) {
		case 'm': a->eo.model_dir = optarg; break;
		case 'c': a->eo.card = optarg; break;
		case 'j':
			if (nc_parse_u32(optarg, 1, 16, &a->eo.threads))
				return usage(cmd, "--threads wants a number 1..16");
			break;
		case 'b': a->eo.board = optarg; break;
		case 'Q': a->eo.quant = optarg; break;
		case 'o': a->logits_out = optarg; break;
		case 'M': a->mtp_out = optarg; a->eo.mtp = 1; break;
		case 'S': a->stats = 1; break;
		case 'T':
			if (nc_parse_float(optarg, 0.0f, 100.0f, &a->temperature))
				return usage(cmd, "--temperature wants a number 0..100");
			break;
		case 'P':
			if (nc_parse_float(optarg, 0.0f, 1.0f, &a->top_p) || a->top_p == 0.0f)
				return usage(cmd, "--top-p wants a number in (0, 1]");
			break;
		case 'K':
			if (nc_parse_u32(optarg, 0, 1u << 20, &a->top_k))
				return usage(cmd, "--top-k wants a number");
			break;
		case 'D': {
			uint32_t seed;
			if (nc_parse_u32(optarg, 0, UINT32_MAX, &seed))
				return usage(cmd, "--seed wants a number 0..4294967295");
			a->seed = seed;
			break;
		}
		case 'x':
			if (nc_parse_u32(optarg, 1, 1u << 20, &a->eo.ctx_limit))
				return usage(cmd, "--ctx wants a number 1..1048576");
			break;
		case 'n':
			if (nc_parse_u32(optarg, 1, 1u << 20, &a->max_new))
				return usage(cmd, "--max-new wants a number 1..1048576");
			break;
		case 'i':
			free(a->ids);
			if (nc_parse_ids(optarg, &a->ids, &a->n_ids, err, sizeof(err)))
				return usage(cmd, err);
			break;
		case 's':
			free(a->stop);
			if (nc_parse_ids(optarg, &a->stop, &a->n_stop, err, sizeof(err)))
				return usage(cmd, err);
			if (a->n_stop > FW_MAX_STOP)
				return usage(cmd, "too many --stop-ids");
			break;
		default:
			return usage(cmd, "unknown or incomplete option");
		}
	}
	if (optind < argc)
		return usage(cmd, "unexpected argument");
	if (!a->eo.model_dir)
		return usage(cmd, "--model is required");
	if (!a->ids)
		return usage(cmd, "--ids is required");
	if (!strcmp(cmd, "score") && !a->logits_out && !a->mtp_out)
		return usage(cmd, "--logits-out or --mtp-logits-out is required");
	if (strcmp(cmd, "score") && a->mtp_out)
		return usage(cmd, "--mtp-logits-out is for score");
	if (strcmp(cmd, "score") && !a->max_new)
		return usage(cmd, "--max-new is required");
	return 0;
}

/* The next result of the request: 0, or -1 after a one-line error (card
 * failed or stalled, request refused). */
static int next_result(const char *cmd, struct nc_engine *e, struct fw_res *r)
{
	int w = nc_engine_wait(e, r, 60000);

	if (w <= 0) {
		fprintf(stderr, "nextcard %s: card %s: %s\n", cmd, w ? "failed" : "timed out",
			e->ctrl->error);
		return -1;
	}
	if (r->kind == FW_RES_ACK && r->status) {
		fprintf(stderr, "nextcard %s: request refused: %s\n", cmd, e->ctrl->error);
		return -1;
	}
	return 0;
}

static void free_args(struct run_args *a)
{
	free(a->ids);
	free(a->stop);
}

/* Teacher-forced logits rows of ids to path: the model's (n rows), or with
 * FW_SUB_MTP the MTP head's (n - 1 rows: row p drafts token p + 2). */
static int score_to(struct nc_engine *e, const struct run_args *a, uint32_t flags,
		    const char *path)
{
	uint32_t want = flags & FW_SUB_MTP ? a->n_ids - 1 : a->n_ids, got = 0, slot;
	float *row = malloc((size_t)e->cfg.vocab * sizeof(float));
	FILE *f = fopen(path, "wb");
	struct fw_res r;
	char err[512];
	int rc = 1;

	if (!row || !f) {
		fprintf(stderr, "nextcard score: cannot write %s\n", path);
		goto out;
	}
	if (nc_engine_submit(e, a->ids, a->n_ids, 1, FW_SUB_LOGITS | flags, NULL, 0, 0, &slot,
			     err, sizeof(err))) {
		fprintf(stderr, "nextcard score: %s\n", err);
		goto out;
	}
	for (;;) {
		if (next_result("score", e, &r))
			goto out;
		if ((r.flags & FW_RF_LOGITS) && got < want) {
			if (nc_engine_take_logits(e, r.logits_row, row) ||
			    fwrite(row, sizeof(float), e->cfg.vocab, f) != e->cfg.vocab) {
				fprintf(stderr, "nextcard score: cannot write %s\n", path);
				goto out;
			}
			got++;
		}
		if (r.kind != FW_RES_ACK && (r.flags & FW_RF_LAST))
			break;
	}
	rc = got == want ? 0 : 1;
	if (rc)
		fprintf(stderr, "nextcard score: %u of %u logits rows came back\n", got, want);
out:
	if (f && fclose(f) && !rc) {
		fprintf(stderr, "nextcard score: cannot write %s\n", path);
		rc = 1;
	}
	free(row);
	return rc;
}

int cmd_score(int argc, char **argv)
{
	struct run_args a = { 0 };
	struct nc_engine *e = NULL;
	char err[512];
	int rc = parse("score", argc, argv, &a);

	if (rc)
		goto out;
	rc = 1;
	if (a.mtp_out && a.n_ids < 2) {
		fprintf(stderr, "nextcard score: --mtp-logits-out wants 2 ids or more (row p"
			" drafts token p + 2 from token p + 1)\n");
		goto out;
	}
	a.eo.verbose = 1;
	if (nc_engine_open(&e, &a.eo, err, sizeof(err))) {
		fprintf(stderr, "nextcard score: %s\n", err);
		goto out;
	}
	rc = (a.logits_out && score_to(e, &a, 0, a.logits_out)) ||
	     (a.mtp_out && score_to(e, &a, FW_SUB_MTP, a.mtp_out));
out:
	nc_engine_close(e);
	free_args(&a);
	return rc;
}

/* Each kernel's traffic, calls and time between two snapshots, per token of t. */
static void kernel_lines(const struct nc_card_snap *a, const struct nc_card_snap *b, double t)
{
	for (int k = 0; k < KRNL_COUNT; k++) {
		double calls = (double)(b->st.krnl_calls[k] - a->st.krnl_calls[k]);
		if (calls)
			printf("stats:   %-20s read %12.0f  written %10.0f  calls %6.1f  per token"
			       "  %8.1f us\n",
			       krnl_names[k], (b->st.krnl_rd[k] - a->st.krnl_rd[k]) / t,
			       (b->st.krnl_wr[k] - a->st.krnl_wr[k]) / t, calls / t,
			       (double)(b->st.krnl_ns[k] - a->st.krnl_ns[k]) / t / 1e3);
	}
}

/* Decode steps only: from the step after the first token to the end; then
 * the prefill's kernels, per prompt token (p: the snapshot at submit). */
static void print_stats(struct nc_engine *e, const struct nc_card_snap *p,
			const struct nc_card_snap *a, const struct nc_card_snap *b,
			uint32_t n_prompt, double prefill_s)
{
	/* per generated token: one a step, or more with MTP drafts accepted */
	double t = (double)(b->tokens - a->tokens), steps = (double)(b->steps - a->steps);
	double total = 0, tot_w = 0;
	double ebytes = (double)krnl_expert_bytes(e->cfg.dt_expert, e->cfg.hidden, e->cfg.moe_inter);
	double fetched = (double)(b->st.experts_fetched - a->st.experts_fetched);
	double ewb = (double)(b->st.expert_weight_bytes - a->st.expert_weight_bytes);

	if (t == 0) {
		printf("stats: no decode step measured (use --max-new 2 or more)\n");
		return;
	}
	for (int k = 0; k < KRNL_COUNT; k++)
		total += (double)(b->st.krnl_rd[k] - a->st.krnl_rd[k]);
	tot_w = (double)(b->st.fw_rd - a->st.fw_rd);
	printf("stats: %.0f decode steps measured, %.0f tokens generated (prefill excluded)\n",
	       steps, t);
	if (e->spec) {
		double dr = (double)(b->drafted - a->drafted), ac = (double)(b->accepted - a->accepted);

		printf("stats: speculative (MTP, 1 draft a step): %.0f drafts verified, %.0f accepted"
		       " (acceptance %.1f%%), %.3f tokens per step\n", dr, ac,
		       dr ? 100.0 * ac / dr : 0.0, steps ? t / steps : 0.0);
		if (steps && t) {
			/* what a step that verifies a draft must read (two rows'
			 * experts, the head), per token emitted at this rate */
			double sf = nc_step_floor(&e->cfg, 1, 1) * steps / t;

			printf("stats: speculative step floor per token %.0f bytes (plain %.0f, ratio"
			       " %.3f); measured/floor %.3f\n", sf, nc_step_floor(&e->cfg, 1, 0),
			       nc_step_floor(&e->cfg, 1, 0) / sf, total / t / sf);
		}
	}
	printf("stats: hbm bytes read per generated token %.0f (kernels), firmware control %.0f\n",
	       total / t, tot_w / t);
	double wf = nc_active_floor(&e->cfg), sf = 0;
	/* decode steps ran positions n_prompt .. n_prompt + t - 1 */
	for (uint32_t i = 0; i < (uint32_t)t; i++)
		sf += nc_state_floor(&e->cfg, n_prompt + i) / t;
	printf("stats: active-weight floor per token %.0f bytes (%s), ratio %.3f\n",
	       wf, e->formats, total / t / wf);
	printf("stats: step floor per token %.0f bytes (weights + %.0f of recurrent state and"
	       " KV read), ratio %.3f\n", wf + sf, sf, total / t / (wf + sf));
	double dec_s = (double)(b->ns - a->ns) / 1e9;
	printf("stats: prefill %u tokens in %.3f s (%.1f tokens/s, first token included);"
	       " decode %.1f tokens/s; effective bandwidth %.2f GB/s\n", n_prompt, prefill_s,
	       prefill_s > 0 ? n_prompt / prefill_s : 0.0, dec_s > 0 ? t / dec_s : 0.0,
	       dec_s > 0 ? total / dec_s / 1e9 : 0.0);
	{
		struct nc_sched_stats ps = { 0 };

		nc_engine_pool_stats(e, &ps);
		printf("stats: state pool: %u KV pages of %u positions (%u free), %u state handles"
		       " (%u free); prefix cache %u snapshots, %.1f MiB, hits %llu, misses %llu,"
		       " positions restored %llu, evicted %llu; preempted %llu\n", ps.pages,
		       ps.page_pos, ps.pages_free, ps.blocks, ps.blocks_free, ps.snaps,
		       ps.snap_bytes / 1048576.0, (unsigned long long)ps.prefix_hits,
		       (unsigned long long)ps.prefix_misses, (unsigned long long)ps.prefix_tokens,
		       (unsigned long long)ps.prefix_evicted, (unsigned long long)ps.preempted);
	}
	if (b->st.cu_threads)
		printf("stats: emulated card on %u CU thread%s, %.1f kernel calls per token split"
		       " across them\n", b->st.cu_threads, b->st.cu_threads == 1 ? "" : "s",
		       (double)(b->st.split_calls - a->st.split_calls) / t);
	kernel_lines(a, b, t);
	printf("stats: expert weight bytes per token %.0f = distinct experts %.2f x %.0f bytes"
	       " (%s); rows served per expert fetch %.2f\n", ewb / t, fetched / t, ebytes,
	       ewb == fetched * ebytes ? "equal" : "MISMATCH",
	       fetched ? (double)(b->st.expert_rows - a->st.expert_rows) / fetched : 0.0);
	fetched = (double)(a->st.experts_fetched - p->st.experts_fetched);
	printf("stats: prefill (%u prompt tokens, first token included), per prompt token:"
	       " rows served per expert fetch %.2f\n", n_prompt,
	       fetched ? (double)(a->st.expert_rows - p->st.expert_rows) / fetched : 0.0);
	kernel_lines(p, a, n_prompt);
}

int cmd_generate(int argc, char **argv)
{
	struct run_args a = { 0 };
	struct nc_engine *e = NULL;
	struct fw_res r;
	char err[512];
	int32_t *out = NULL;
	uint32_t slot, n = 0;
	struct nc_card_snap s0 = { 0 }, s1, sp;
	int rc = parse("generate", argc, argv, &a);

	if (rc)
		goto out;
	rc = 1;
	out = malloc(a.max_new * sizeof(*out));
	a.eo.verbose = 1;
	if (!out || nc_engine_open(&e, &a.eo, err, sizeof(err))) {
		fprintf(stderr, "nextcard generate: %s\n", out ? err : "out of memory");
		goto out;
	}
	struct nc_sampling smp = { .temperature = a.temperature, .top_p = a.top_p,
				   .top_k = a.top_k, .seed = a.seed };
	nc_engine_snapshot(e, &sp);
	if (nc_engine_submit_ex(e, a.ids, a.n_ids, a.max_new, 0, &smp, a.stop, a.n_stop, 0,
				&slot, err, sizeof(err))) {
		fprintf(stderr, "nextcard generate: %s\n", err);
		goto out;
	}
	for (;;) {
		if (next_result("generate", e, &r))
			goto out;
		if (r.kind != FW_RES_TOKEN)
			continue;
		if (r.flags & FW_RF_FIRST)
			nc_engine_snapshot(e, &s0);	/* prefill done: decode steps from here */
		if (r.token >= 0 && n < a.max_new)
			out[n++] = r.token;
		if (r.flags & FW_RF_LAST)
			break;
	}
	nc_print_ids(out, n);
	if (r.finish == FW_FIN_CTX)	/* fewer tokens than asked: say why */
		fprintf(stderr, "nextcard generate: stopped after %u tokens at the context limit of"
			" %u positions (--ctx)\n", n, e->ctrl->ctx);
	if (a.stats) {
		nc_engine_snapshot(e, &s1);
		print_stats(e, &sp, &s0, &s1, a.n_ids, (double)(s0.ns - sp.ns) / 1e9);
	}
	rc = 0;
out:
	free(out);
	nc_engine_close(e);
	free_args(&a);
	return rc;
}
